//! Plugin routes: the list of plugins with their health, and an entity's
//! cards from every plugin that exports `cards`.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use super::{ApiError, AppState, blocking};
use crate::catalog::EntityRef;
use crate::plugins::{CallError, card_json, error_card_json, host::entity_record};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/plugins", get(list))
        .route("/api/cards/{kind}/{namespace}/{name}", get(cards))
}

async fn list(State(state): State<AppState>) -> Json<Value> {
    Json(json!({ "items": state.plugins.list() }))
}

/// Cards for an entity: every plugin is called at once, each in its own
/// sandbox with its own deadline; a failing plugin yields an error card.
async fn cards(
    State(state): State<AppState>,
    Path((kind, namespace, name)): Path<(String, String, String)>,
) -> Result<Json<Value>, ApiError> {
    let r = EntityRef::new(&kind, &namespace, &name);
    let store = state.store.clone();
    let lookup = r.clone();
    let json = blocking(move || Ok(store.entity_by_ref(&lookup, &[])?))
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("No entity {r} found")))?;
    let entity =
        Arc::new(entity_record(json).ok_or_else(|| {
            ApiError::Internal(anyhow::anyhow!("stored entity {r} is unreadable"))
        })?);
    let limits = state.plugins.limits();
    let mut calls = tokio::task::JoinSet::new();
    for plugin in state
        .plugins
        .loaded()
        .into_iter()
        .filter(|p| p.exports_cards())
    {
        let (entity, limits) = (entity.clone(), limits.clone());
        calls.spawn_blocking(move || {
            let result = plugin.cards(&entity, &limits);
            (plugin, result)
        });
    }
    let mut out = Vec::new();
    while let Some(done) = calls.join_next().await {
        let (plugin, result) = done?;
        match result {
            Ok(cards) => out.extend(cards.iter().map(|c| card_json(&plugin, c))),
            Err(CallError::NotApplicable) => {}
            Err(e) => {
                tracing::warn!(plugin = %plugin.manifest.id, entity = %r, error = %e, "plugin card failed");
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
    Ok(Json(json!({ "entityRef": r.to_string(), "cards": out })))
}
