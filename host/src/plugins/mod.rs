//! The plugin runtime: WebAssembly components loaded from the plugins
//! folder, each called in a fresh sandbox with a deadline, a memory cap and
//! an output cap, reaching only what its manifest asks for and an
//! administrator granted.
//!
//! **Invariant:** only `host/src/plugins` imports wasmtime. A plugin can
//! never crash, hang or take over the host: every failure becomes a
//! [`CallError`] naming the plugin, recorded in its health.

pub mod bindings {
    //! Host bindings, one module per contract version the host links.
    //! The newest version's types are the host's own; older versions are
    //! converted into them in their own module (`v0_1`), the only code
    //! that knows them.
    pub mod v0_2 {
        //! `wit/0.2.0/greenroom-plugin.wit`, the host's own types.
        wasmtime::component::bindgen!({ path: "../wit/0.2.0", world: "plugin" });
    }
    pub mod v0_1 {
        //! `wit/0.1.0/greenroom-plugin.wit`, frozen.
        wasmtime::component::bindgen!({ path: "../wit/0.1.0", world: "plugin" });
    }
    pub use v0_2::*;
}
pub mod build;
pub mod host;
pub mod http;
pub mod inputs;
pub mod manifest;
pub mod providers;
pub mod runtime;
pub mod scaffold;
mod v0_1;
mod watch;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::{Value, json};

use crate::config::{Config, PluginsConfig, SecretGrant};
use crate::ingest::Reader;
use crate::net::Origin;
use crate::store::{Store as Db, StoredGrants};
use bindings::greenroom::plugin::types;
pub use manifest::{Manifest, ManifestError};
pub use runtime::{CallError, CallLimits, Loaded, Runtime};

/// Largest `.wasm` file accepted.
const MAX_WASM_BYTES: u64 = 200 * 1024 * 1024;

enum Slot {
    Loaded(Arc<Loaded>),
    Failed { error: String },
}

/// All plugins of a portal.
pub struct Plugins {
    runtime: Runtime,
    db: Arc<Db>,
    /// Swapped whole when greenroom.toml changes.
    config: RwLock<Arc<PluginsConfig>>,
    /// The network settings of plugin HTTP.
    guard: crate::net::Guard,
    reader: Reader,
    /// By file path.
    slots: RwLock<BTreeMap<PathBuf, Slot>>,
    /// Watch the plugins folder and the config file while they live.
    watchers: Mutex<Vec<notify::RecommendedWatcher>>,
    /// How many times each file was loaded (or failed to) since start.
    loads: Mutex<HashMap<PathBuf, u32>>,
    /// Cards by (plugin build, entity ref, entity etag), with when they
    /// were made; a new plugin build or a changed entity misses.
    cards_cache: Mutex<HashMap<CardsKey, (Instant, Vec<Value>)>>,
}

/// Plugin build hash, entity ref, entity etag.
type CardsKey = (String, String, String);

/// What `Plugins::bench` measured.
#[derive(Debug, Clone)]
pub struct BenchReport {
    pub cold_compile: Duration,
    pub cached_load: Duration,
    /// Fresh instance + trivial cards call.
    pub call_p50: Duration,
    pub call_p99: Duration,
}

/// One row of `GET /api/plugins`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PluginInfo {
    pub id: Option<String>,
    pub name: Option<String>,
    pub version: Option<String>,
    pub description: Option<String>,
    pub file: String,
    pub state: &'static str,
    pub error: Option<String>,
    pub exports: Vec<String>,
    /// The contract version it was built against, e.g. `0.2.0`.
    pub contract: Option<&'static str>,
    pub requested: Option<Requested>,
    /// Config grants and stored grants together.
    pub granted: Option<StoredGrants>,
    /// The part of `granted` that greenroom.toml grants (the API cannot
    /// revoke it).
    pub configured: Option<StoredGrants>,
    pub health: Option<HealthInfo>,
    /// Times the file was loaded (or failed to load) since start: once per
    /// change, however many writes the change took.
    pub loads: u32,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Requested {
    pub hosts: Vec<String>,
    pub secrets: Vec<String>,
    pub kv_quota: u64,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthInfo {
    pub calls: u64,
    pub errors: u64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub last_error: Option<String>,
}

impl Plugins {
    pub fn new(config: &Config, db: Arc<Db>) -> anyhow::Result<Plugins> {
        let reader = Reader::for_plugins(config)?;
        let mut guard = config.outbound_guard()?;
        guard.resolve_override = config.plugins.resolve.clone();
        let plugins = config.plugins.clone();
        Ok(Plugins {
            runtime: Runtime::new(
                Some(&config.plugin_cache_dir()),
                plugins.memory_limit_mib * 1024 * 1024,
                256,
            )?,
            db,
            config: RwLock::new(Arc::new(plugins)),
            guard,
            reader,
            slots: RwLock::new(BTreeMap::new()),
            watchers: Mutex::new(Vec::new()),
            loads: Mutex::new(HashMap::new()),
            cards_cache: Mutex::new(HashMap::new()),
        })
    }

    /// Reads files and URLs within the limits of plugin reads.
    pub fn reader(&self) -> &Reader {
        &self.reader
    }

    pub fn limits(&self) -> CallLimits {
        CallLimits {
            timeout: self.config().call_timeout,
            memory_bytes: self.config().memory_limit_mib * 1024 * 1024,
            max_output_bytes: self.config().max_output_bytes,
        }
    }

    /// Loads every `.wasm` in `dir`. A file that fails is listed with its
    /// error and affects nothing else.
    pub fn load_dir(&self, dir: &Path) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            tracing::warn!(dir = %dir.display(), "plugins folder not readable");
            return;
        };
        let mut files: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "wasm"))
            .collect();
        files.sort();
        for f in files {
            self.load_file(&f);
        }
    }

    /// Watches `dir`: a new or replaced `.wasm` is loaded and swapped in
    /// (calls in flight finish on the version they started with), a deleted
    /// one is unloaded. No restart is ever needed.
    pub fn watch(self: &Arc<Self>, dir: &Path) -> anyhow::Result<()> {
        let this: Weak<Plugins> = Arc::downgrade(self);
        let watcher = watch::settled_files(
            dir,
            "greenroom-plugin-watch",
            |path| path.extension().is_some_and(|x| x == "wasm"),
            move |path, exists| {
                let Some(plugins) = this.upgrade() else {
                    return false;
                };
                if exists {
                    plugins.load_file(path);
                } else {
                    plugins.unload(path);
                }
                true
            },
        )?;
        self.keep(watcher);
        Ok(())
    }

    /// Watches the config file: when it changes and reads well, plugin
    /// grants, settings and call limits apply to every plugin at once,
    /// without a restart. A file that does not read is logged and ignored.
    pub fn watch_config(self: &Arc<Self>, file: &Path) -> anyhow::Result<()> {
        let dir = file.parent().unwrap_or(Path::new("."));
        let wanted = file.file_name().map(ToOwned::to_owned);
        let this: Weak<Plugins> = Arc::downgrade(self);
        let watcher = watch::settled_files(
            dir,
            "greenroom-config-watch",
            move |path| path.file_name() == wanted.as_deref(),
            move |path, exists| {
                let Some(plugins) = this.upgrade() else {
                    return false;
                };
                if exists {
                    match crate::config::Config::load(path) {
                        Ok(config) => plugins.reconfigure(config.plugins),
                        Err(e) => {
                            tracing::error!(
                                "config change not applied, the running portal keeps its settings: {e:#}"
                            )
                        }
                    }
                }
                true
            },
        )?;
        self.keep(watcher);
        Ok(())
    }

    fn keep(&self, watcher: notify::RecommendedWatcher) {
        self.watchers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(watcher);
    }

    /// The plugins section in force.
    pub fn config(&self) -> Arc<PluginsConfig> {
        self.config
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Applies a changed `[plugins]` section: grants, settings and call
    /// limits at once (every plugin is loaded again with them); what was
    /// fixed at start (the folder, the memory pool, the poll intervals,
    /// pinned addresses, actions allowed) is kept and named in the log.
    pub fn reconfigure(&self, mut new: PluginsConfig) {
        let old = self.config();
        let fixed: Vec<&str> = [
            ("dir", old.dir != new.dir),
            ("cache_dir", old.cache_dir != new.cache_dir),
            (
                "memory_limit_mib",
                old.memory_limit_mib != new.memory_limit_mib,
            ),
            ("facts_interval", old.facts_interval != new.facts_interval),
            (
                "events_interval",
                old.events_interval != new.events_interval,
            ),
            ("resolve", old.resolve != new.resolve),
            ("allow_actions", old.allow_actions != new.allow_actions),
        ]
        .into_iter()
        .filter_map(|(name, changed)| changed.then_some(name))
        .collect();
        if !fixed.is_empty() {
            tracing::warn!(
                "config change: [plugins] {} apply after a restart",
                fixed.join(", ")
            );
        }
        new.memory_limit_mib = old.memory_limit_mib;
        *self.config.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(new);
        self.cards_cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
        let files: Vec<PathBuf> = self
            .slots
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .keys()
            .cloned()
            .collect();
        for file in &files {
            self.load_file(file);
        }
        tracing::info!(
            plugins = files.len(),
            "config change: plugin grants and settings applied"
        );
    }

    /// Forgets the plugin that was in `file`.
    pub fn unload(&self, file: &Path) {
        if self
            .slots
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(file)
            .is_some()
        {
            tracing::info!(file = %file.display(), "plugin unloaded");
        }
    }

    /// Loads (or replaces) the plugin in `file`.
    pub fn load_file(&self, file: &Path) {
        *self
            .loads
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(file.to_path_buf())
            .or_default() += 1;
        let slot = match self.try_load(file) {
            Ok(loaded) => {
                tracing::info!(plugin = %loaded.manifest.id, version = %loaded.manifest.version, file = %file.display(), contract = loaded.contract, exports = ?loaded.exports, "plugin loaded");
                Slot::Loaded(Arc::new(loaded))
            }
            Err(e) => {
                let error = format!("{}: {e:#}", file.display());
                Slot::Failed { error }
            }
        };
        let mut slots = self.slots.write().unwrap_or_else(|p| p.into_inner());
        // The same failure again (the file touched, not fixed) is not
        // logged again.
        if let Slot::Failed { error } = &slot
            && !matches!(slots.get(file), Some(Slot::Failed { error: before }) if before == error)
        {
            tracing::error!("plugin not loaded: {error}");
        }
        slots.insert(file.to_path_buf(), slot);
    }

    fn try_load(&self, file: &Path) -> anyhow::Result<Loaded> {
        let size = std::fs::metadata(file)?.len();
        if size > MAX_WASM_BYTES {
            anyhow::bail!("is {size} bytes, over the {MAX_WASM_BYTES}-byte limit for plugins");
        }
        let bytes = std::fs::read(file)?;
        let manifest = Manifest::from_wasm(&bytes)?;
        if let Some(other) = self
            .loaded()
            .into_iter()
            .find(|l| l.manifest.id == manifest.id && l.file != file)
        {
            anyhow::bail!(
                "declares id '{}', already used by {}",
                manifest.id,
                other.file.display()
            );
        }
        let (component, hash) = self.runtime.compile(&bytes)?;
        let grants = self.grants(&manifest);
        let ctx = host::CallContext {
            plugin_id: manifest.id.clone(),
            memory_bytes: self.config().memory_limit_mib * 1024 * 1024,
            db: self.db.clone(),
            // A plugin asks for its kv quota; the operator caps it.
            kv_quota: manifest.kv_quota.min(self.config().max_kv_quota_bytes),
            http: Arc::new(self.allowed(&manifest, &grants)),
            reader: self.reader.clone(),
            settings: Arc::new(self.config().settings(&manifest.id)),
        };
        let disabled = grants.disabled;
        let mut loaded = Loaded::new(
            &self.runtime,
            manifest,
            file.to_path_buf(),
            &component,
            hash,
            ctx,
        )?;
        loaded.disabled = disabled;
        Ok(loaded)
    }

    /// What an administrator granted: the config's grants plus the stored
    /// ones. `allowed` intersects them with what the manifest requests.
    fn grants(&self, manifest: &Manifest) -> StoredGrants {
        let mut g = self
            .db
            .plugin_state
            .grants(&manifest.id)
            .ok()
            .flatten()
            .unwrap_or_default();
        let configured = self.configured_grants(&manifest.id);
        g.hosts.extend(configured.hosts);
        for name in configured.secrets {
            let hosts = configured
                .secret_hosts
                .get(&name)
                .cloned()
                .unwrap_or_default();
            g.add_secrets([SecretGrant::bound(&name, hosts)]);
        }
        g
    }

    /// What greenroom.toml grants a plugin.
    fn configured_grants(&self, id: &str) -> StoredGrants {
        let mut g = StoredGrants::default();
        for c in self.config().grants.iter().filter(|c| c.id == id) {
            g.hosts.extend(c.hosts.iter().cloned());
            g.add_secrets(c.secret_grants());
        }
        g
    }

    fn allowed(&self, manifest: &Manifest, grants: &StoredGrants) -> http::Allowed {
        let requested: Vec<Origin> = manifest
            .hosts
            .iter()
            .filter_map(|h| Origin::parse(h).ok())
            .collect();
        let any = manifest.hosts.iter().any(|h| h == manifest::ANY_HOST);
        let granted = |hosts: &[String]| -> Vec<Origin> {
            hosts
                .iter()
                .filter_map(|h| Origin::parse(h).ok())
                .filter(|o| any || requested.contains(o))
                .collect()
        };
        let origins = granted(&grants.hosts);
        let mut secrets = HashMap::new();
        for name in grants
            .secrets
            .iter()
            .filter(|s| manifest.secrets.contains(s))
        {
            // A secret is sent only to the origins it is bound to: those
            // written with it, or else the plugin's one granted origin.
            let bound = match grants.secret_hosts.get(name) {
                Some(hosts) => granted(hosts),
                None if origins.len() == 1 => origins.clone(),
                None => Vec::new(),
            };
            let secret = http::Secret {
                value: std::env::var(format!("GREENROOM_SECRET_{name}")).ok(),
                origins: bound,
            };
            secrets.insert(name.clone(), secret);
        }
        http::Allowed {
            plugin_id: manifest.id.clone(),
            origins,
            secrets,
            declared_secrets: manifest.secrets.clone(),
            timeout: self.config().http_timeout,
            max_bytes: self.config().http_max_bytes,
            guard: self.guard.clone(),
        }
    }

    /// A plugin's cards for an entity as JSON, from cache while fresh
    /// (unless `fresh`). Failures are not cached: a plugin that recovers
    /// shows at once.
    pub fn cards(
        &self,
        plugin: &Loaded,
        entity: &types::Entity,
        etag: &str,
        fresh: bool,
    ) -> Result<Vec<Value>, CallError> {
        let key = (
            plugin.hash.clone(),
            entity.entity_ref.clone(),
            etag.to_string(),
        );
        let ttl = self.config().cards_ttl;
        if !fresh
            && let Some((made, cards)) = self
                .cards_cache
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(&key)
            && made.elapsed() < ttl
        {
            return Ok(cards.clone());
        }
        let cards: Vec<Value> = plugin
            .cards(entity, &self.limits())?
            .iter()
            .map(|c| card_json(plugin, c))
            .collect();
        let mut cache = self.cards_cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= 10_000 {
            cache.retain(|_, (made, _)| made.elapsed() < ttl);
        }
        cache.insert(key, (Instant::now(), cards.clone()));
        Ok(cards)
    }

    /// Measures a plugin: cold compile, cached load, and `calls` cards calls
    /// (each a fresh instance) on a sample entity (none for `calls` 0).
    pub fn bench(&self, file: &Path, calls: usize) -> anyhow::Result<BenchReport> {
        let bytes = std::fs::read(file)?;
        let started = Instant::now();
        wasmtime::component::Component::new(&self.runtime.engine, &bytes)?;
        let cold = started.elapsed();
        self.runtime.compile(&bytes)?;
        let started = Instant::now();
        self.runtime.compile(&bytes)?;
        let cached = started.elapsed();
        let loaded = self.try_load(file)?;
        let entity = types::Entity {
            entity_ref: "component:default/bench".into(),
            kind: "Component".into(),
            namespace: "default".into(),
            name: "bench".into(),
            json: r#"{"apiVersion":"backstage.io/v1alpha1","kind":"Component","metadata":{"name":"bench","namespace":"default"},"spec":{"type":"service","lifecycle":"production","owner":"team-a"}}"#.into(),
        };
        let limits = self.limits();
        for _ in 0..calls.min(200) {
            loaded.cards(&entity, &limits)?;
        }
        let mut samples = Vec::with_capacity(calls);
        for _ in 0..calls {
            let t = Instant::now();
            loaded.cards(&entity, &limits)?;
            samples.push(t.elapsed());
        }
        samples.sort();
        // With no calls asked for (a plugin without cards), only the
        // compile figures mean anything.
        let at = |q: f64| {
            samples
                .get(((samples.len().max(1) - 1) as f64 * q).round() as usize)
                .copied()
                .unwrap_or_default()
        };
        Ok(BenchReport {
            cold_compile: cold,
            cached_load: cached,
            call_p50: at(0.5),
            call_p99: at(0.99),
        })
    }

    /// Reads, compiles and checks a plugin file without loading it: what
    /// `greenroom plugin inspect` shows and `install` requires.
    pub fn inspect(&self, file: &Path) -> anyhow::Result<(Manifest, runtime::Interfaces)> {
        self.runtime.inspect(&std::fs::read(file)?)
    }

    /// Replaces a plugin's stored grants (or toggles it) and reloads it so
    /// the change applies to the next call. `None` when no such plugin.
    pub fn update_grants(
        &self,
        id: &str,
        change: impl FnOnce(&mut StoredGrants),
    ) -> anyhow::Result<Option<PluginInfo>> {
        let Some(plugin) = self.loaded().into_iter().find(|l| l.manifest.id == id) else {
            return Ok(None);
        };
        let mut grants = self.db.plugin_state.grants(id)?.unwrap_or_default();
        change(&mut grants);
        self.db.plugin_state.set_grants(id, &grants)?;
        self.load_file(&plugin.file);
        Ok(self
            .list()
            .into_iter()
            .find(|i| i.id.as_deref() == Some(id)))
    }

    /// Loaded plugins that are not disabled.
    pub fn enabled(&self) -> Vec<Arc<Loaded>> {
        self.loaded().into_iter().filter(|l| !l.disabled).collect()
    }

    pub fn loaded(&self) -> Vec<Arc<Loaded>> {
        self.slots
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .filter_map(|s| match s {
                Slot::Loaded(l) => Some(l.clone()),
                Slot::Failed { .. } => None,
            })
            .collect()
    }

    pub fn list(&self) -> Vec<PluginInfo> {
        let loads = self.loads.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let loads = |file: &Path| loads.get(file).copied().unwrap_or(0);
        let slots = self.slots.read().unwrap_or_else(|p| p.into_inner());
        slots
            .iter()
            .map(|(file, slot)| match slot {
                Slot::Loaded(l) => {
                    let grants = self.grants(&l.manifest);
                    let h = l.health.lock().unwrap_or_else(|p| p.into_inner());
                    let (p50, p95) = h.percentiles();
                    PluginInfo {
                        id: Some(l.manifest.id.clone()),
                        name: Some(l.manifest.name.clone()),
                        version: Some(l.manifest.version.clone()),
                        description: Some(l.manifest.description.clone()),
                        file: file.display().to_string(),
                        state: if l.disabled { "disabled" } else { "loaded" },
                        error: None,
                        exports: l.exports.clone(),
                        contract: Some(l.contract),
                        requested: Some(Requested {
                            hosts: l.manifest.hosts.clone(),
                            secrets: l.manifest.secrets.clone(),
                            kv_quota: l.manifest.kv_quota,
                        }),
                        granted: Some(grants),
                        configured: Some(self.configured_grants(&l.manifest.id)),
                        health: Some(HealthInfo {
                            calls: h.calls,
                            errors: h.errors,
                            p50_ms: p50,
                            p95_ms: p95,
                            last_error: h.last_error.clone(),
                        }),
                        loads: loads(file),
                    }
                }
                Slot::Failed { error } => PluginInfo {
                    id: None,
                    name: None,
                    version: None,
                    description: None,
                    file: file.display().to_string(),
                    state: "failed",
                    error: Some(error.clone()),
                    exports: Vec::new(),
                    contract: None,
                    requested: None,
                    granted: None,
                    configured: None,
                    health: None,
                    loads: loads(file),
                },
            })
            .collect()
    }
}

/// A card as served to the web UI: `{plugin, pluginVersion, id, title,
/// nodes}`, or an error card `{plugin, id: "error", error}`.
pub fn card_json(plugin: &Loaded, card: &types::Card) -> Value {
    panel_json(plugin, &card.id, &card.title, &card.nodes)
}

/// A card, tab or widget as the API writes it.
pub fn panel_json(plugin: &Loaded, id: &str, title: &str, nodes: &[types::Node]) -> Value {
    json!({
        "plugin": plugin.manifest.id,
        "pluginVersion": plugin.manifest.version,
        "id": id,
        "title": title,
        "nodes": nodes.iter().map(node_json).collect::<Vec<_>>(),
    })
}

pub fn error_card_json(plugin: &Loaded, error: &CallError) -> Value {
    json!({
        "plugin": plugin.manifest.id,
        "pluginVersion": plugin.manifest.version,
        "id": "error",
        "title": plugin.manifest.name,
        "error": format!("{} {error}", plugin.label()),
    })
}

/// A tone as the API writes it.
/// A plugin's event as the store keeps it (`source` = `plugin:<id>`).
pub fn event_record(plugin: &str, e: types::Event) -> crate::store::EventRecord {
    crate::store::EventRecord {
        source: format!("plugin:{plugin}"),
        id: e.id,
        kind: e.kind,
        entity_ref: e.entity_ref,
        title: e.title,
        url: e.url,
        at_ms: e.at_ms as i64,
        tone: tone(e.tone).into(),
        actor: e.actor,
        owner: None,
    }
}

pub fn tone(t: types::Tone) -> &'static str {
    match t {
        types::Tone::Neutral => "neutral",
        types::Tone::Info => "info",
        types::Tone::Good => "good",
        types::Tone::Warning => "warning",
        types::Tone::Critical => "critical",
    }
}

/// A link the UI may follow keeps its address; any other is sent without
/// one (shown as text).
fn link_json(l: &types::Link) -> Value {
    json!({"label": l.label, "href": followable_href(&l.href)})
}

fn followable_href(href: &str) -> &str {
    if crate::docs::followable(href) {
        href
    } else {
        ""
    }
}

fn badge_json(b: &types::Badge) -> Value {
    json!({"label": b.label, "tone": tone(b.tone)})
}

/// A node as `{"type": "...", ...}`: the JSON the web UI renders.
pub fn node_json(n: &types::Node) -> Value {
    use types::Node;
    match n {
        Node::Heading(t) => json!({"type": "heading", "text": t}),
        Node::Text(t) => json!({"type": "text", "text": t}),
        // Rendered and sanitised here: the web UI shows `html` as is.
        Node::Markdown(t) => {
            json!({"type": "markdown", "markdown": t, "html": crate::docs::render_fragment(t)})
        }
        Node::Field(f) => {
            json!({"type": "field", "label": f.label, "value": f.value, "tone": f.tone.map(tone)})
        }
        Node::Link(l) => {
            json!({"type": "link", "label": l.label, "href": followable_href(&l.href)})
        }
        Node::Badge(b) => json!({"type": "badge", "label": b.label, "tone": tone(b.tone)}),
        Node::Progress(p) => {
            json!({"type": "progress", "value": p.value, "max": p.max, "label": p.label})
        }
        Node::Sparkline(v) => json!({"type": "sparkline", "values": v}),
        Node::Table(t) => json!({
            "type": "table",
            "columns": t.columns,
            "rows": t.rows.iter().map(|row| row.iter().map(|c| match c {
                types::Cell::Text(t) => json!({"type": "text", "text": t}),
                types::Cell::Link(l) => { let mut v = link_json(l); v["type"] = json!("link"); v }
                types::Cell::Badge(b) => { let mut v = badge_json(b); v["type"] = json!("badge"); v }
            }).collect::<Vec<_>>()).collect::<Vec<_>>(),
        }),
        Node::Code(t) => json!({"type": "code", "text": t}),
        Node::Divider => json!({"type": "divider"}),
    }
}
