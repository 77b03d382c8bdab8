//! Provider locations answered by plugins: `[[catalog.providers]]` names a
//! plugin and its settings; each page of a discovery is one call of the
//! plugin's `providers.discover`, with `[plugins] provider_timeout` (a page
//! may take many requests upstream) and the usual memory and output caps.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use super::Plugins;
use super::runtime::CallLimits;
use crate::config::ProviderConfig;
use crate::ingest::{Page, Providers};

/// The configured provider locations, answered by the loaded plugins.
pub struct PluginProviders {
    plugins: Arc<Plugins>,
    /// By location target (`<plugin>/<name>`).
    configs: HashMap<String, ProviderConfig>,
}

impl PluginProviders {
    pub fn new(plugins: Arc<Plugins>, configs: &[ProviderConfig]) -> PluginProviders {
        PluginProviders {
            plugins,
            configs: configs.iter().map(|c| (c.target(), c.clone())).collect(),
        }
    }
}

impl Providers for PluginProviders {
    fn page(&self, target: &str, cursor: Option<&str>) -> Result<Page, String> {
        let Some(c) = self.configs.get(target) else {
            return Err(format!(
                "no [[catalog.providers]] entry names {target}; the location goes at the next start"
            ));
        };
        let Some(plugin) = self
            .plugins
            .enabled()
            .into_iter()
            .find(|p| p.manifest.id == c.plugin)
        else {
            return Err(format!(
                "plugin {} is not loaded or is disabled: put its .wasm in the plugins folder and enable it",
                c.plugin
            ));
        };
        if !plugin.exports_providers() {
            return Err(format!(
                "plugin {} does not export providers (contract 0.2.0 and the SDK's `providers` feature)",
                c.plugin
            ));
        }
        let limits = CallLimits {
            timeout: self.plugins.config().provider_timeout,
            ..self.plugins.limits()
        };
        let config = Value::Object(c.config.clone()).to_string();
        plugin
            .discover(&c.name, &config, cursor, &limits)
            .map(|p| Page {
                entities: p.entities,
                files: p.files.into_iter().map(|f| (f.url, f.text)).collect(),
                suggestions: p
                    .suggestions
                    .into_iter()
                    .map(|s| (s.entity, s.reason))
                    .collect(),
                gone: Vec::new(),
                next: p.next,
            })
            .map_err(|e| format!("plugin {}: {e}", c.plugin))
    }

    fn grace(&self, target: &str) -> Duration {
        self.configs
            .get(target)
            .map_or(Duration::from_secs(3600), |c| c.grace)
    }
}
