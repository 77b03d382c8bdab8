//! Plugin actions (re-run, deploy, merge) on an entity: what each plugin
//! offers, running one, and the record of runs.
//!
//! Actions of a plugin run only when the operator lists it in
//! `plugins.allow_actions`, as the signed-in person, when they belong to
//! the entity's owning group (or administer); every run is recorded with
//! that person before the plugin is called. In the demo only (guest mode
//! with `auth.demo_people`), the request names the demo person instead.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde_json::{Value, json};

use super::identity::Caller;
use super::plugins::entity_of;
use super::{ApiError, ApiJson, AppState, blocking};
use crate::auth::{Permission, Person, Principal};
use crate::catalog::EntityRef;
use crate::config::AuthMode;
use crate::plugins::CallError;
use crate::service::actions;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/actions/runs", get(runs))
        .route("/api/actions/{kind}/{namespace}/{name}", get(available))
        .route(
            "/api/actions/{kind}/{namespace}/{name}/{plugin}/{action}",
            post(run),
        )
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
            Ok(actions) => items.extend(actions.iter().map(|a| {
                let mut item = crate::plugins::inputs::action_json(a);
                item["plugin"] = json!(id);
                item["allowed"] = json!(actions::allowed(&state.config.plugins, id));
                item
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
    /// Demo only: the demo person running it, e.g. `user:default/jane`.
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
    Extension(caller): Extension<Caller>,
    Path((kind, namespace, name, plugin, action)): Path<(String, String, String, String, String)>,
    ApiJson(body): ApiJson<RunRequest>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let (_, entity) = entity_of(&state, &kind, &namespace, &name).await?;
    // Who acts, and may they, before anything about the plugin is said.
    let acting = acting_person(&state, &caller, body.user).await?;
    let owner = owner_of(&entity.json);
    acting.require(
        &state,
        Permission::RunAction {
            owner: owner.as_deref(),
        },
    )?;
    let actor = match &acting.principal {
        Principal::Person(p) => p.user_ref.clone().unwrap_or_else(|| p.login.clone()),
        _ => acting.actor(),
    };
    let input = match body.input {
        None => serde_json::Map::new(),
        Some(Value::Object(o)) => o,
        Some(_) => return Err(ApiError::BadRequest("input must be a JSON object".into())),
    };
    let record = blocking(move || {
        let run = actions::Run {
            plugin: &plugin,
            action: &action,
            entity: &entity,
            actor: &actor,
            confirmed: body.confirmed,
            input,
        };
        Ok(actions::run(
            &state.plugins,
            &state.config.plugins,
            &state.store,
            run,
        )?)
    })
    .await?;
    let status = if record.status == "succeeded" {
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
    let items = blocking(move || Ok(store.actions.action_runs(entity.as_deref(), limit)?)).await?;
    Ok(Json(json!({ "items": items })))
}

/// The entity's owner (`group:default/x`), from its `ownedBy` relation.
fn owner_of(entity_json: &str) -> Option<String> {
    let v: Value = serde_json::from_str(entity_json).ok()?;
    v["relations"]
        .as_array()?
        .iter()
        .find(|r| r["type"] == "ownedBy")
        .and_then(|r| r["targetRef"].as_str())
        .map(str::to_string)
}

/// Who acts (runs an action, decides about a suggestion): the caller, or
/// in the demo the person the request names (a User of the catalog, with
/// their groups).
pub(super) async fn acting_person(
    state: &AppState,
    caller: &Caller,
    named: Option<String>,
) -> Result<Caller, ApiError> {
    let Some(named) = named.filter(|u| !u.trim().is_empty()) else {
        return Ok(caller.clone());
    };
    let auth = &state.config.auth;
    if auth.mode != AuthMode::Guest || !auth.demo_people {
        return Err(ApiError::BadRequest(
            "this is done as the signed-in person; naming one in the request (\"user\") is only for the demo (auth.demo_people in guest mode)".into(),
        ));
    }
    let user_ref = EntityRef::parse(&named, Some("user"), "default")
        .map_err(|e| ApiError::BadRequest(format!("user '{named}': {e}")))?;
    if user_ref.kind != "user" {
        return Err(ApiError::BadRequest(format!(
            "user '{named}' must be a User entity ref"
        )));
    }
    let store = state.store.clone();
    let lookup = user_ref.clone();
    let groups = blocking(move || {
        if store.catalog.entity_by_ref(&lookup, &[])?.is_none() {
            return Err(ApiError::BadRequest(format!(
                "no User {lookup} in the catalog"
            )));
        }
        Ok(store.catalog.groups_of(&lookup.to_string())?)
    })
    .await?;
    Ok(Caller {
        principal: Principal::Person(Person {
            user_ref: Some(user_ref.to_string()),
            login: user_ref.name.clone(),
            groups,
            demo: true,
            session: None,
        }),
        address: caller.address,
    })
}
