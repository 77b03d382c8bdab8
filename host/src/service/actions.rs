//! Running a plugin action (re-run, deploy, merge): the plugin must be
//! enabled, export actions and be allowed by the operator
//! (`plugins.allow_actions`); it must offer the action on the entity now
//! (an id from an old page or made up is refused before anything runs);
//! an action that asks for confirmation needs it; the form is checked
//! against the fields the action declares; the run is recorded with the
//! acting person before the plugin is called, and its outcome after.
//!
//! Who may act is the caller's business (`auth`): the API checks the
//! acting person's permission on the entity's owner before calling this.

use serde_json::{Map, Value};

use super::ServiceError;
use crate::config::PluginsConfig;
use crate::plugins::bindings::greenroom::plugin::types;
use crate::plugins::inputs::{InputError, prepare};
use crate::plugins::{Loaded, Plugins};
use crate::store::{ActionRun, Store};

/// Whether the operator lets `plugin`'s actions run.
pub fn allowed(config: &PluginsConfig, plugin: &str) -> bool {
    config.allow_actions.iter().any(|p| p == plugin)
}

/// One request to run an action.
pub struct Run<'a> {
    pub plugin: &'a str,
    pub action: &'a str,
    pub entity: &'a types::Entity,
    /// The acting person, as the plugin and the record name them
    /// (`user:default/jane`).
    pub actor: &'a str,
    /// The person confirmed an action that asks for it.
    pub confirmed: bool,
    /// The form as sent (a JSON object).
    pub input: Map<String, Value>,
}

/// Runs `run` and records it. Answers the record: `succeeded` or `failed`
/// with the plugin's message. Blocking.
pub fn run(
    plugins: &Plugins,
    config: &PluginsConfig,
    store: &Store,
    run: Run<'_>,
) -> Result<ActionRun, ServiceError> {
    let plugin = find(plugins, config, run.plugin)?;
    let limits = plugins.limits();
    let offered = plugin.actions(run.entity, &limits).map_err(|e| {
        ServiceError::Conflict(format!("{} cannot list its actions: {e}", plugin.label()))
    })?;
    let action = offered
        .into_iter()
        .find(|a| a.id == run.action)
        .ok_or_else(|| {
            ServiceError::NotFound(format!(
                "plugin {} offers no action '{}' on {} now",
                run.plugin, run.action, run.entity.entity_ref
            ))
        })?;
    if action.confirm && !run.confirmed {
        return Err(ServiceError::Conflict(format!(
            "'{}' needs confirmation: send \"confirmed\": true once the person confirmed",
            action.label
        )));
    }
    let (checked, input) = prepare(&plugin, &action, run.input).map_err(|e| match e {
        InputError::Invalid(m) => ServiceError::Invalid(m),
        e @ InputError::Declared(_) => ServiceError::Plugin(format!("{} {e}", plugin.label())),
    })?;
    let entity_ref = &run.entity.entity_ref;
    let mut record = store.actions.action_started(
        run.plugin,
        &action.id,
        &action.label,
        entity_ref,
        run.actor,
        &input.to_string(),
    )?;
    tracing::info!(plugin = %run.plugin, action = %action.id, entity = %entity_ref, user = %run.actor, "running plugin action");
    let outcome = plugin.run_action(&action.id, run.entity, &checked, &input, run.actor, &limits);
    let (succeeded, message) = match outcome {
        Ok(message) => (true, message),
        Err(e) => (false, format!("{} {e}", plugin.label())),
    };
    store
        .actions
        .action_finished(&mut record, succeeded, &message)?;
    Ok(record)
}

/// The enabled plugin `id` with actions the operator allows.
fn find(
    plugins: &Plugins,
    config: &PluginsConfig,
    id: &str,
) -> Result<std::sync::Arc<Loaded>, ServiceError> {
    let plugin = plugins
        .enabled()
        .into_iter()
        .find(|p| p.manifest.id == id && p.exports_actions())
        .ok_or_else(|| ServiceError::NotFound(format!("no enabled plugin {id} with actions")))?;
    if !allowed(config, id) {
        return Err(ServiceError::Forbidden(format!(
            "actions of plugin {id} are off; an operator turns them on with `allow_actions = [\"{id}\"]` under [plugins] in greenroom.toml"
        )));
    }
    Ok(plugin)
}
