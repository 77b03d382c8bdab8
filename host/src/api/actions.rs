//! Plugin actions (re-run, deploy, merge) on an entity: what each plugin
//! offers, running one, and the record of runs.
//!
//! Until people sign in, actions of a plugin run only when the operator
//! lists it in `plugins.allow_actions`, the client names the user it acts
//! for (a User in the catalog), and every run is recorded with that user
//! before the plugin is called.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};

use super::plugins::entity_of;
use super::{ApiError, ApiJson, AppState, blocking};
use crate::catalog::EntityRef;
use crate::plugins::CallError;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/actions/runs", get(runs))
        .route("/api/actions/{kind}/{namespace}/{name}", get(available))
        .route(
            "/api/actions/{kind}/{namespace}/{name}/{plugin}/{action}",
            post(run),
        )
}

fn allowed(state: &AppState, plugin: &str) -> bool {
    state
        .config
        .plugins
        .allow_actions
        .iter()
        .any(|p| p == plugin)
}

/// Every plugin's actions on the entity, each marked `allowed` when the
/// operator lets that plugin's actions run.
async fn available(
    State(state): State<AppState>,
    Path((kind, namespace, name)): Path<(String, String, String)>,
) -> Result<Json<Value>, ApiError> {
    let (r, entity) = entity_of(&state, &kind, &namespace, &name).await?;
    let mut calls = tokio::task::JoinSet::new();
    for plugin in state
        .plugins
        .enabled()
        .into_iter()
        .filter(|p| p.exports_actions())
    {
        let (entity, limits) = (entity.clone(), state.plugins.limits());
        calls.spawn_blocking(move || {
            let result = plugin.actions(&entity, &limits);
            (plugin, result)
        });
    }
    let (mut items, mut errors) = (Vec::new(), Vec::new());
    while let Some(done) = calls.join_next().await {
        let (plugin, result) = done?;
        let id = &plugin.manifest.id;
        match result {
            Ok(actions) => items.extend(actions.into_iter().map(|a| {
                json!({
                    "plugin": id,
                    "id": a.id,
                    "label": a.label,
                    "description": a.description,
                    "confirm": a.confirm,
                    "allowed": allowed(&state, id),
                })
            })),
            Err(CallError::NotApplicable) => {}
            Err(e) => {
                errors.push(json!({"plugin": id, "error": format!("{} {e}", plugin.label())}))
            }
        }
    }
    items.sort_by(|a, b| a["plugin"].as_str().cmp(&b["plugin"].as_str()));
    Ok(Json(json!({
        "entityRef": r.to_string(),
        "items": items,
        "errors": errors,
    })))
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RunRequest {
    /// Who runs it: a User entity ref, e.g. `user:default/jane` or `jane`.
    user: Option<String>,
    /// Must be true for actions that ask for confirmation.
    #[serde(default)]
    confirmed: bool,
    /// The action's input (a JSON object).
    #[serde(default)]
    input: Option<Value>,
}

async fn run(
    State(state): State<AppState>,
    Path((kind, namespace, name, plugin_id, action_id)): Path<(
        String,
        String,
        String,
        String,
        String,
    )>,
    ApiJson(body): ApiJson<RunRequest>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let (r, entity) = entity_of(&state, &kind, &namespace, &name).await?;
    let plugin = state
        .plugins
        .enabled()
        .into_iter()
        .find(|p| p.manifest.id == plugin_id && p.exports_actions())
        .ok_or_else(|| ApiError::NotFound(format!("no enabled plugin {plugin_id} with actions")))?;
    if !allowed(&state, &plugin_id) {
        return Err(ApiError::Forbidden(format!(
            "actions of plugin {plugin_id} are off; an operator turns them on with `allow_actions = [\"{plugin_id}\"]` under [plugins] in greenroom.toml"
        )));
    }
    let user = body.user.filter(|u| !u.trim().is_empty()).ok_or_else(|| {
        ApiError::BadRequest(
            "name the user running the action: {\"user\": \"user:default/<name>\"}".into(),
        )
    })?;
    let user_ref = EntityRef::parse(&user, Some("user"), "default")
        .map_err(|e| ApiError::BadRequest(format!("user '{user}': {e}")))?;
    if user_ref.kind != "user" {
        return Err(ApiError::BadRequest(format!(
            "user '{user}' must be a User entity ref"
        )));
    }
    let store = state.store.clone();
    let lookup = user_ref.clone();
    if blocking(move || Ok(store.entity_by_ref(&lookup, &[])?))
        .await?
        .is_none()
    {
        return Err(ApiError::BadRequest(format!(
            "no User {user_ref} in the catalog"
        )));
    }
    let input = match body.input {
        None => "{}".to_string(),
        Some(v @ Value::Object(_)) => v.to_string(),
        Some(_) => return Err(ApiError::BadRequest("input must be a JSON object".into())),
    };
    // The plugin must offer the action for this entity now: an id from an
    // old page or made up is refused before anything runs.
    let limits = state.plugins.limits();
    let (offer_plugin, offer_entity, offer_limits) =
        (plugin.clone(), entity.clone(), limits.clone());
    let offered =
        tokio::task::spawn_blocking(move || offer_plugin.actions(&offer_entity, &offer_limits))
            .await?
            .map_err(|e| {
                ApiError::Conflict(format!("{} cannot list its actions: {e}", plugin.label()))
            })?;
    let action = offered
        .into_iter()
        .find(|a| a.id == action_id)
        .ok_or_else(|| {
            ApiError::NotFound(format!(
                "plugin {plugin_id} offers no action '{action_id}' on {r} now"
            ))
        })?;
    if action.confirm && !body.confirmed {
        return Err(ApiError::Conflict(format!(
            "'{}' needs confirmation: send \"confirmed\": true once the person confirmed",
            action.label
        )));
    }
    let store = state.store.clone();
    let (p, a, l, e, u, i) = (
        plugin_id.clone(),
        action.id.clone(),
        action.label.clone(),
        r.to_string(),
        user_ref.to_string(),
        input.clone(),
    );
    let mut record = blocking(move || Ok(store.action_started(&p, &a, &l, &e, &u, &i)?)).await?;
    tracing::info!(plugin = %plugin_id, action = %action.id, entity = %r, user = %user_ref, "running plugin action");
    let run_plugin = plugin.clone();
    let outcome = tokio::task::spawn_blocking(move || {
        run_plugin.run_action(&action.id, &entity, &input, &limits)
    })
    .await?;
    let (succeeded, message) = match &outcome {
        Ok(message) => (true, message.clone()),
        Err(e) => (false, format!("{} {e}", plugin.label())),
    };
    let store = state.store.clone();
    let record = blocking(move || {
        store.action_finished(&mut record, succeeded, &message)?;
        Ok(record)
    })
    .await?;
    let status = if succeeded {
        StatusCode::OK
    } else {
        StatusCode::BAD_GATEWAY
    };
    Ok((status, Json(json!({ "run": record }))))
}

#[derive(serde::Deserialize)]
struct RunsQuery {
    entity: Option<String>,
    limit: Option<usize>,
}

/// The record of runs, newest first: `?entity=component:default/x&limit=50`.
async fn runs(
    State(state): State<AppState>,
    Query(q): Query<RunsQuery>,
) -> Result<Json<Value>, ApiError> {
    let entity = match q.entity {
        Some(e) => Some(
            EntityRef::parse(&e, Some("component"), "default")
                .map_err(|err| ApiError::BadRequest(format!("entity '{e}': {err}")))?
                .to_string(),
        ),
        None => None,
    };
    let limit = q.limit.unwrap_or(50).min(500);
    let store = state.store.clone();
    let items = blocking(move || Ok(store.action_runs(entity.as_deref(), limit)?)).await?;
    Ok(Json(json!({ "items": items })))
}
