//! Plugin routes: the list of plugins with their health; an entity's cards
//! and tabs from every plugin that exports them; the homepage's widgets.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};

use super::identity::Caller;
use super::{ApiError, ApiJson, AppState, blocking};
use crate::auth::Principal;
use crate::catalog::EntityRef;
use crate::plugins::host::{entity_etag, entity_record};
use crate::plugins::{CallError, Loaded, card_json, error_card_json, panel_json};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/plugins", get(list))
        .route("/api/plugins/{id}/grants", post(grant))
        .route("/api/plugins/{id}/disable", post(disable))
        .route("/api/plugins/{id}/enable", post(enable))
        .route("/api/plugins/{id}/poll", post(poll))
        .route("/api/cards/{kind}/{namespace}/{name}", get(cards))
        .route("/api/tabs/{kind}/{namespace}/{name}", get(tabs))
        .route("/api/widgets", get(widgets))
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct GrantRequest {
    #[serde(default)]
    hosts: Vec<String>,
    /// Names, or `{"name": …, "hosts": [...]}` to bind a secret to
    /// origins.
    #[serde(default)]
    secrets: Vec<crate::config::SecretGrant>,
}

/// Replaces what an administrator grants a plugin (beyond the config's
/// grants); applies from the next call.
async fn grant(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<GrantRequest>,
) -> Result<Json<Value>, ApiError> {
    let bound = body.secrets.iter().filter_map(|s| s.hosts()).flatten();
    for h in body.hosts.iter().chain(bound) {
        crate::net::Origin::parse(h).map_err(ApiError::BadRequest)?;
    }
    change(state, id, move |g| {
        g.hosts = body.hosts;
        g.secrets.clear();
        g.secret_hosts.clear();
        g.add_secrets(body.secrets);
    })
    .await
}

async fn disable(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    change(state, id, |g| g.disabled = true).await
}

async fn enable(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    change(state, id, |g| g.disabled = false).await
}

/// Polls one plugin for facts (about every entity) and events now, rather
/// than at the next interval: what a plugin author wants after a change.
async fn poll(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let Some(plugin) = state
        .plugins
        .enabled()
        .into_iter()
        .find(|p| p.manifest.id == id)
    else {
        return Err(ApiError::NotFound(format!(
            "no enabled plugin with id {id}"
        )));
    };
    if !plugin.exports_facts() && !plugin.exports_events() {
        return Err(ApiError::BadRequest(format!(
            "plugin {id} exports neither facts nor events: there is nothing to poll"
        )));
    }
    let insights = state.insights.clone();
    let (facts, events) = blocking(move || {
        Ok((
            insights.poll_facts_of(Some(&id)),
            insights.poll_events_of(Some(&id)),
        ))
    })
    .await?;
    Ok(Json(json!({ "facts": facts, "events": events })))
}

async fn change(
    state: AppState,
    id: String,
    f: impl FnOnce(&mut crate::store::StoredGrants) + Send + 'static,
) -> Result<Json<Value>, ApiError> {
    let plugins = state.plugins.clone();
    let key = id.clone();
    match blocking(move || Ok(plugins.update_grants(&key, f)?)).await? {
        Some(info) => Ok(Json(json!(info))),
        None => Err(ApiError::NotFound(format!("no plugin with id {id}"))),
    }
}

async fn list(State(state): State<AppState>) -> Json<Value> {
    Json(json!({ "items": state.plugins.list() }))
}

/// An entity as plugins receive it, or 404.
pub(crate) async fn entity_of(
    state: &AppState,
    kind: &str,
    namespace: &str,
    name: &str,
) -> Result<
    (
        EntityRef,
        Arc<crate::plugins::bindings::greenroom::plugin::types::Entity>,
    ),
    ApiError,
> {
    let r = EntityRef::new(kind, namespace, name);
    let store = state.store.clone();
    let lookup = r.clone();
    let json = blocking(move || Ok(store.catalog.entity_by_ref(&lookup, &[])?))
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("No entity {r} found")))?;
    let entity = entity_record(json)
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("stored entity {r} is unreadable")))?;
    Ok((r, Arc::new(entity)))
}

/// Cards for an entity: every plugin is called at once, each in its own
/// sandbox with its own deadline; a failing plugin yields an error card.
async fn cards(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((kind, namespace, name)): Path<(String, String, String)>,
) -> Result<Json<Value>, ApiError> {
    let (r, entity) = entity_of(&state, &kind, &namespace, &name).await?;
    let fresh = super::wants_fresh(&headers);
    // Read once per request: every plugin's cache entry is keyed by it.
    let etag: Arc<str> = entity_etag(&entity).into();
    let answers = each_plugin(&state, Loaded::exports_cards, move |plugins, plugin| {
        plugins.cards(plugin, &entity, &etag, fresh)
    })
    .await?;
    let out = panels(answers, &r.to_string(), |_, cards| cards);
    Ok(Json(json!({ "entityRef": r.to_string(), "cards": out })))
}

/// Calls `call` for every enabled plugin that `exports`, at once, each on
/// a blocking thread.
async fn each_plugin<T: Send + 'static>(
    state: &AppState,
    exports: fn(&Loaded) -> bool,
    call: impl Fn(&crate::plugins::Plugins, &Loaded) -> Result<T, CallError> + Send + Sync + 'static,
) -> Result<Vec<(Arc<Loaded>, Result<T, CallError>)>, ApiError> {
    let call = Arc::new(call);
    let mut calls = tokio::task::JoinSet::new();
    for plugin in state.plugins.enabled().into_iter().filter(|p| exports(p)) {
        let (plugins, call) = (state.plugins.clone(), call.clone());
        calls.spawn_blocking(move || {
            let result = call(&plugins, &plugin);
            (plugin, result)
        });
    }
    let mut answers = Vec::new();
    while let Some(done) = calls.join_next().await {
        answers.push(done?);
    }
    Ok(answers)
}

/// Every plugin's panels (cards, tabs, widgets) as JSON, in plugin then id
/// order; a plugin that failed shows as an error card naming it, one with
/// nothing to say is left out. `about` names what was asked, for the log.
fn panels<T>(
    answers: Vec<(Arc<Loaded>, Result<T, CallError>)>,
    about: &str,
    to_json: impl Fn(&Loaded, T) -> Vec<Value>,
) -> Vec<Value> {
    let mut out = Vec::new();
    for (plugin, result) in answers {
        match result {
            Ok(items) => out.extend(to_json(&plugin, items)),
            Err(CallError::NotApplicable) => {}
            Err(e) => {
                if e.is_refusal() {
                    // Logged when the plugin failed; not again per request.
                    tracing::debug!(plugin = %plugin.manifest.id, about, error = %e, "plugin not called");
                } else {
                    tracing::warn!(plugin = %plugin.manifest.id, about, error = %e, "plugin failed");
                }
                out.push(error_card_json(&plugin, &e));
            }
        }
    }
    out.sort_by(|a, b| {
        a["plugin"]
            .as_str()
            .cmp(&b["plugin"].as_str())
            .then(a["id"].as_str().cmp(&b["id"].as_str()))
    });
    out
}

/// Whole tabs for an entity's page, from every plugin that exports
/// `tabs` (contract 0.2.0 on).
async fn tabs(
    State(state): State<AppState>,
    Path((kind, namespace, name)): Path<(String, String, String)>,
) -> Result<Json<Value>, ApiError> {
    let (r, entity) = entity_of(&state, &kind, &namespace, &name).await?;
    let answers = each_plugin(&state, Loaded::exports_tabs, move |plugins, plugin| {
        plugin.tabs(&entity, &plugins.limits())
    })
    .await?;
    let out = panels(answers, &r.to_string(), |plugin, tabs| {
        tabs.into_iter()
            .map(|t| panel_json(plugin, &t.id, &t.title, &t.nodes))
            .collect()
    });
    Ok(Json(json!({ "entityRef": r.to_string(), "tabs": out })))
}

/// The homepage's widgets for whoever asks: the signed-in person's own,
/// or everyone's when no one is signed in.
#[derive(serde::Deserialize)]
struct WidgetsQuery {
    /// Demo only: the person chosen in the "who are you" picker.
    #[serde(rename = "for")]
    viewer: Option<String>,
}

async fn widgets(
    State(state): State<AppState>,
    axum::Extension(caller): axum::Extension<Caller>,
    axum::extract::Query(q): axum::extract::Query<WidgetsQuery>,
) -> Result<Json<Value>, ApiError> {
    let caller = super::actions::acting_person(&state, &caller, q.viewer).await?;
    let viewer = match &caller.principal {
        Principal::Person(p) => p.user_ref.clone(),
        _ => None,
    };
    let answers = each_plugin(&state, Loaded::exports_widgets, {
        let viewer = viewer.clone();
        move |plugins, plugin| plugin.widgets(viewer.as_deref(), &plugins.limits())
    })
    .await?;
    let out = panels(
        answers,
        viewer.as_deref().unwrap_or("anyone"),
        |plugin, cards| cards.iter().map(|c| card_json(plugin, c)).collect(),
    );
    Ok(Json(json!({ "viewer": viewer, "widgets": out })))
}
