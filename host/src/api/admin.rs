//! Identity routes: who am I (`/api/whoami`), API tokens for
//! administrators (`/api/tokens`), and the audit trail (`/api/audit`, as
//! JSON or JSON lines). Their permissions are in `identity::RULES`.

use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use axum::{Extension, Json, Router};
use serde_json::{Value, json};

use super::identity::Caller;
use super::{ApiError, ApiJson, AppState, blocking};
use crate::auth::{Principal, new_token_secret, token_hash};
use crate::config::AuthMode;
use crate::store::AuditQuery;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/whoami", get(whoami))
        .route("/api/tokens", get(list_tokens).post(create_token))
        .route("/api/tokens/{id}", delete(revoke_token))
        .route("/api/audit", get(audit))
        .route("/metrics", get(metrics))
}

/// Prometheus' text format; the gauges are read now.
async fn metrics(State(state): State<AppState>) -> Result<Response, ApiError> {
    let (store, search) = (state.store.clone(), state.search.clone());
    let plugins = state.plugins.enabled().len();
    let (entities, documents, lag) = blocking(move || {
        let entities = store.entity_count()?;
        Ok((entities, search.index.documents(), search.lag()?))
    })
    .await?;
    crate::metrics::gauges(entities, documents, lag, plugins);
    Ok((
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        crate::metrics::handle().render(),
    )
        .into_response())
}

/// Who the portal takes the caller for, and how people sign in: what the
/// web UI shows in its top bar (and whether it offers the demo's picker).
async fn whoami(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Json<Value> {
    let auth = &state.config.auth;
    let mode = match auth.mode {
        AuthMode::Guest => "guest",
        AuthMode::Proxy => "proxy",
    };
    let admin = caller
        .require(&state, crate::auth::Permission::Admin("-"))
        .is_ok();
    let who = match &caller.principal {
        Principal::Anonymous => Value::Null,
        Principal::Person(p) => json!({
            "type": "person",
            "userRef": p.user_ref,
            "login": p.login,
            "groups": p.groups,
        }),
        Principal::Token(t) => json!({"type": "token", "name": t.name, "scopes": t.scopes}),
    };
    Json(json!({
        "mode": mode,
        "demoPeople": auth.mode == AuthMode::Guest && auth.demo_people,
        "caller": who,
        "admin": admin,
    }))
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct NewToken {
    name: String,
    scopes: Vec<String>,
    /// `90d`, `12h`; none: no expiry.
    expires: Option<String>,
    /// Whose token it is (`group:default/platform`), for the record.
    owner: Option<String>,
}

/// Makes a token; its secret is in this answer and nowhere else.
async fn create_token(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiJson(body): ApiJson<NewToken>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let record = crate::auth::token_record(
        &body.name,
        &body.scopes,
        body.expires.as_deref(),
        body.owner,
        &caller.actor(),
    )
    .map_err(ApiError::BadRequest)?;
    let secret = new_token_secret();
    let store = state.store.clone();
    let (stored, hash) = (record.clone(), token_hash(&secret));
    blocking(move || Ok(store.token_create(&stored, &hash)?)).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"token": secret, "record": record})),
    ))
}

async fn list_tokens(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let store = state.store.clone();
    let items = blocking(move || Ok(store.tokens(None)?)).await?;
    Ok(Json(json!({ "items": items })))
}

async fn revoke_token(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let store = state.store.clone();
    let key = id.clone();
    if blocking(move || Ok(store.token_revoke(&key)?)).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound(format!("no live token with id {id}")))
    }
}

#[derive(serde::Deserialize)]
struct AuditParams {
    /// Milliseconds since the epoch, or RFC 3339.
    since: Option<String>,
    actor: Option<String>,
    target: Option<String>,
    limit: Option<usize>,
    /// `jsonl` for one JSON object a line (an export).
    format: Option<String>,
}

async fn audit(
    State(state): State<AppState>,
    Query(p): Query<AuditParams>,
) -> Result<Response, ApiError> {
    let since_ms = match p.since.as_deref() {
        None => None,
        Some(t) => Some(match t.parse::<i64>() {
            Ok(ms) => ms,
            Err(_) => humantime::parse_rfc3339_weak(t)
                .map_err(|e| ApiError::BadRequest(format!("since '{t}': {e}")))?
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i64),
        }),
    };
    let jsonl = p.format.as_deref() == Some("jsonl");
    let q = AuditQuery {
        since_ms,
        actor: p.actor,
        target: p.target,
        limit: p.limit.unwrap_or(if jsonl { 100_000 } else { 500 }),
    };
    let store = state.store.clone();
    let lines = blocking(move || Ok(store.audit_lines(&q)?)).await?;
    if jsonl {
        let mut body = String::new();
        for l in &lines {
            body.push_str(&serde_json::to_string(l).unwrap_or_default());
            body.push('\n');
        }
        return Ok(([(header::CONTENT_TYPE, "application/x-ndjson")], body).into_response());
    }
    Ok(Json(json!({ "items": lines })).into_response())
}
