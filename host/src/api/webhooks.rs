//! Webhook deliveries from a plugin's source (`POST /api/webhooks/:plugin`):
//! the signature is checked before anything else (a delivery without the
//! operator's secret is refused with 401 and the refusal is in the audit
//! trail), then the plugin says what the delivery changes; events are
//! stored and the catalog files it names are read again before the answer
//! leaves, so a push is in the catalog (and, moments later, in search)
//! when its sender hears back.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{Value, json};

use super::{ApiError, AppState, blocking};
use crate::service::webhooks::{self as service, Refused};

pub fn router() -> Router<AppState> {
    Router::new().route("/api/webhooks/{plugin}", post(receive))
}

async fn receive(
    State(state): State<AppState>,
    Path(plugin): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let Some(hook) = state.config.plugins.webhooks.get(&plugin) else {
        return Err(ApiError::NotFound(format!(
            "no webhook is configured for plugin {plugin}: add [plugins.webhooks.{plugin}] with its secret to greenroom.toml"
        )));
    };
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    service::verify(hook, header(&hook.signature_header), &body).map_err(|e| match e {
        Refused::Signature(m) => {
            tracing::warn!(plugin = %plugin, "webhook delivery refused: {m}");
            ApiError::Unauthorized(m)
        }
        Refused::NoSecret(m) => ApiError::Unavailable(m),
    })?;
    let event = header(&hook.event_header)
        .filter(|e| !e.is_empty())
        .ok_or_else(|| {
            ApiError::BadRequest(format!("the delivery has no {} header", hook.event_header))
        })?
        .to_string();
    let payload = String::from_utf8(body.to_vec())
        .map_err(|_| ApiError::BadRequest("the delivery's body is not UTF-8 text".into()))?;
    let (store, plugins, id) = (state.store.clone(), state.plugins.clone(), plugin.clone());
    let delivered = {
        let event = event.clone();
        blocking(move || Ok(service::deliver(&store, &plugins, &id, &event, &payload)?)).await?
    };
    for (location, page) in delivered.refresh {
        state
            .refresher
            .refresh_page(location, page)
            .await
            .map_err(ApiError::Internal)?;
    }
    Ok(Json(json!({
        "plugin": plugin,
        "event": event,
        "events": delivered.events,
        "files": delivered.files,
        "gone": delivered.gone,
    })))
}
