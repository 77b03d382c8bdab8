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
use crate::auth::{Policy, Principal, new_token_secret, token_hash};
use crate::config::AuthMode;
use crate::store::{AuditQuery, Store, StoreError, now_ms};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/whoami", get(whoami))
        .route("/api/tokens", get(list_tokens).post(create_token))
        .route("/api/tokens/{id}", delete(revoke_token))
        .route("/api/sessions", get(list_sessions))
        .route("/api/sessions/{id}", delete(end_session))
        .route("/api/audit", get(audit))
        .route("/metrics", get(metrics))
}

/// Prometheus' text format; the gauges are read now.
async fn metrics(State(state): State<AppState>) -> Result<Response, ApiError> {
    let (store, search) = (state.store.clone(), state.search.clone());
    let plugins = state.plugins.enabled().len();
    let (entities, documents, lag, sessions) = blocking(move || {
        let entities = store.catalog.entity_count()?;
        let sessions = store.access.session_count(now_ms())?;
        Ok((entities, search.index.documents(), search.lag()?, sessions))
    })
    .await?;
    crate::metrics::gauges(entities, documents, lag, plugins, sessions);
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
        AuthMode::Oidc => "oidc",
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
            "session": p.session.as_ref().map(|s| &s.id),
        }),
        Principal::Token(t) => json!({"type": "token", "name": t.name, "scopes": t.scopes}),
    };
    // The session's anti-forgery token: the app sends it back on writes.
    let csrf = match &caller.principal {
        Principal::Person(p) => p.session.as_ref().map(|s| s.csrf.clone()),
        _ => None,
    };
    Json(json!({
        "mode": mode,
        "demoPeople": auth.mode == AuthMode::Guest && auth.demo_people,
        "requireSignIn": auth.require_sign_in(),
        "signIn": state.oidc.as_ref().map(|o| json!({"url": "/auth/sign-in", "provider": o.name()})),
        "caller": who,
        "admin": admin,
        "csrf": csrf,
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
    /// A personal token, acting for its maker (the default for anyone but
    /// administrators, who may make one too).
    personal: Option<bool>,
}

/// Makes a token; its secret is in this answer and nowhere else. An
/// administrator makes any token; anyone else signed in makes a personal
/// one, which acts for them and holds only scopes they may grant.
async fn create_token(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiJson(body): ApiJson<NewToken>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let policy = Policy {
        config: &state.config.auth,
    };
    let mut record = crate::auth::token_record(
        &body.name,
        &body.scopes,
        body.expires.as_deref(),
        body.owner,
        &caller.actor(),
    )
    .map_err(ApiError::BadRequest)?;
    let admin = policy.admin(&caller.principal);
    if body.personal.unwrap_or(!admin) || !admin {
        let user_ref = personal_owner(&policy, &caller, &record.scopes)?;
        record.owner = Some(user_ref.clone());
        record.person = Some(user_ref);
    }
    let secret = new_token_secret();
    let store = state.store.clone();
    let (stored, hash) = (record.clone(), token_hash(&secret));
    blocking(move || Ok(store.access.token_create(&stored, &hash)?)).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"token": secret, "record": record})),
    ))
}

/// The User a personal token acts for: the caller's own, when they are a
/// person signed in (not the demo's) with a User in the catalog, and
/// `scopes` hold no more than they may do themselves.
fn personal_owner(policy: &Policy, caller: &Caller, scopes: &[String]) -> Result<String, ApiError> {
    let person = match &caller.principal {
        Principal::Person(p) if !p.demo => p,
        _ => {
            return Err(ApiError::Forbidden(format!(
                "{} may not make tokens: personal tokens are made by people signed in, and other tokens by administrators",
                caller.actor()
            )));
        }
    };
    let Some(user_ref) = person.user_ref.clone() else {
        return Err(ApiError::Forbidden(format!(
            "{} has no User in the catalog, so a personal token would act for nobody; an administrator adds a User first",
            person.login
        )));
    };
    let grantable = policy.grantable_scopes(&caller.principal);
    if let Some(bad) = scopes.iter().find(|s| !grantable.contains(&s.as_str())) {
        return Err(ApiError::Forbidden(format!(
            "a personal token holds only what its person may do; {} may grant {}, not {bad}",
            caller.actor(),
            grantable.join(", ")
        )));
    }
    Ok(user_ref)
}

/// The person whose own tokens and sessions the caller may see: `None`
/// for administrators (everyone's).
fn own_scope(state: &AppState, caller: &Caller) -> Result<Option<String>, ApiError> {
    let policy = Policy {
        config: &state.config.auth,
    };
    if policy.admin(&caller.principal) {
        return Ok(None);
    }
    match &caller.principal {
        Principal::Person(p) if !p.demo => {
            p.user_ref.clone().map(Some).ok_or_else(|| {
                ApiError::Forbidden(format!("{} has no User in the catalog", p.login))
            })
        }
        _ => Err(ApiError::Forbidden(format!(
            "{} may see only its own records; sign in as a person or use an administrator's token",
            caller.actor()
        ))),
    }
}

async fn list_tokens(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Result<Json<Value>, ApiError> {
    let person = own_scope(&state, &caller)?;
    let store = state.store.clone();
    let items = blocking(move || Ok(store.access.tokens(person.as_deref())?)).await?;
    Ok(Json(json!({ "items": items })))
}

async fn revoke_token(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    end_own(
        &state,
        &caller,
        id,
        "token",
        |store, id| Ok(store.access.token(id)?.map(|t| t.person)),
        |store, id| store.access.token_revoke(id),
    )
    .await
}

/// Whose a record is: outer `None` when there is no such record, inner
/// `None` when it is nobody's (an administrator's shared token).
type Whose = fn(&Store, &str) -> Result<Option<Option<String>>, StoreError>;

/// Ends a record (a token, a session) that is the caller's own, or
/// anyone's for administrators; `end` ends it (false: it had ended).
async fn end_own(
    state: &AppState,
    caller: &Caller,
    id: String,
    what: &'static str,
    whose: Whose,
    end: fn(&Store, &str) -> Result<bool, StoreError>,
) -> Result<StatusCode, ApiError> {
    let person = own_scope(state, caller)?;
    let store = state.store.clone();
    let key = id.clone();
    let ended = blocking(move || match whose(&store, &key)? {
        Some(owner) if person.is_none() || owner == person => Ok(end(&store, &key)?),
        _ => Ok(false),
    })
    .await?;
    if ended {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound(format!(
            "no live {what} of yours with id {id}"
        )))
    }
}

/// Live sessions: everyone's for administrators, one's own otherwise.
async fn list_sessions(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Result<Json<Value>, ApiError> {
    let person = own_scope(&state, &caller)?;
    let store = state.store.clone();
    let items = blocking(move || Ok(store.access.sessions(now_ms(), person.as_deref())?)).await?;
    Ok(Json(json!({ "items": items })))
}

/// Ends a session at once (a lost laptop, someone who left).
async fn end_session(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    end_own(
        &state,
        &caller,
        id,
        "session",
        |store, id| Ok(store.access.session(id)?.map(|s| s.user_ref)),
        |store, id| store.access.session_end(id),
    )
    .await
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
    let lines = blocking(move || Ok(store.access.audit_lines(&q)?)).await?;
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
