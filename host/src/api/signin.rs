//! Signing in with OpenID Connect, and out: `/auth/sign-in` sends the
//! browser to the provider, `/auth/callback` takes it back and opens a
//! session, `POST /auth/sign-out` ends it. Sessions live in the store
//! (only the hash of the cookie's secret), so an administrator can end one
//! (`DELETE /api/sessions/{id}`) and it stops working at once.
//!
//! The session cookie is `HttpOnly; SameSite=Lax`, and `Secure` with the
//! `__Host-` prefix when the portal is served over https. Writes made with
//! it must pass the anti-forgery check in `identity`.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};

use super::identity::{self, Caller};
use super::{ApiError, AppState, blocking};
use crate::auth::{Principal, random_secret, token_hash};
use crate::store::{SessionRecord, now_ms};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/auth/sign-in", get(sign_in))
        .route("/auth/callback", get(callback))
        .route("/auth/sign-out", post(sign_out))
}

/// Whether the portal is served over https (then cookies are `Secure` and
/// carry the `__Host-` prefix).
fn https(state: &AppState) -> bool {
    state
        .config
        .server
        .public_url
        .as_deref()
        .is_some_and(|u| u.starts_with("https://"))
}

/// The session cookie's name.
pub fn session_cookie(state: &AppState) -> &'static str {
    if https(state) {
        "__Host-greenroom-session"
    } else {
        "greenroom-session"
    }
}

/// The cookie that ties a sign-in flow to the browser that started it.
fn flow_cookie(state: &AppState) -> &'static str {
    if https(state) {
        "__Host-greenroom-signin"
    } else {
        "greenroom-signin"
    }
}

/// The value of cookie `name` in the request.
pub fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
        .filter(|v| !v.is_empty())
}

fn set_cookie(state: &AppState, name: &str, value: &str, max_age: u64) -> HeaderValue {
    let secure = if https(state) { "; Secure" } else { "" };
    let text = format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}");
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static("x=; Max-Age=0"))
}

fn redirect(to: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        response.headers_mut().insert(header::LOCATION, v);
    }
    response
}

/// Only a path of this portal: a sign-in can never send someone elsewhere.
fn local_path(path: Option<&str>) -> String {
    match path {
        Some(p)
            if p.starts_with('/')
                && !p.starts_with("//")
                && !p.starts_with("/\\")
                && !p.chars().any(char::is_control) =>
        {
            p.to_string()
        }
        _ => "/".into(),
    }
}

fn oidc(state: &AppState) -> Result<&crate::oidc::Oidc, ApiError> {
    state.oidc.as_deref().ok_or_else(|| {
        ApiError::NotFound(
            "signing in through an identity provider is not set up here (auth.mode is not \"oidc\")"
                .into(),
        )
    })
}

#[derive(serde::Deserialize)]
struct SignInParams {
    /// Where to go once signed in (a path of the portal).
    #[serde(rename = "return")]
    return_to: Option<String>,
}

/// Sends the browser to the provider.
async fn sign_in(
    State(state): State<AppState>,
    Query(params): Query<SignInParams>,
) -> Result<Response, ApiError> {
    let provider = oidc(&state)?;
    let (url, flow) = provider
        .begin(local_path(params.return_to.as_deref()))
        .await
        .map_err(ApiError::Upstream)?;
    let mut response = redirect(url.as_str());
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(&state, flow_cookie(&state), &flow, 600),
    );
    Ok(response)
}

#[derive(serde::Deserialize)]
struct CallbackParams {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// Back from the provider: checks the flow, opens a session, and returns
/// the browser where it was going. Every outcome is in the audit trail.
async fn callback(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Query(params): Query<CallbackParams>,
) -> Response {
    let address = peer.ip();
    let (actor, result) = match finish(&state, &headers, params, address).await {
        Ok((session, secret, return_to)) => {
            let actor = Principal::Person(session).actor();
            let mut response = redirect(&return_to);
            let max_age = state.config.auth.session_max.as_secs();
            let cookies = response.headers_mut();
            cookies.append(
                header::SET_COOKIE,
                set_cookie(&state, session_cookie(&state), &secret, max_age),
            );
            cookies.append(
                header::SET_COOKIE,
                set_cookie(&state, flow_cookie(&state), "", 0),
            );
            (actor, response)
        }
        Err((who, e)) => {
            if matches!(
                e,
                ApiError::Unauthorized(_) | ApiError::Forbidden(_) | ApiError::BadRequest(_)
            ) {
                state.limits.failed(address);
            }
            tracing::warn!(%address, error = %e, "a sign-in failed");
            (who, e.into_response())
        }
    };
    let status = result.status().as_u16();
    identity::append(
        &state,
        actor,
        "sign-in".into(),
        "/auth/callback".into(),
        Some(address),
        status,
    )
    .await;
    result
}

/// The callback's work: the person, the new session's secret, and where to
/// go; or who it was (when known) and why not.
async fn finish(
    state: &AppState,
    headers: &HeaderMap,
    params: CallbackParams,
    address: IpAddr,
) -> Result<(crate::auth::Person, String, String), (String, ApiError)> {
    let anonymous = || Principal::Anonymous.actor();
    let provider = oidc(state).map_err(|e| (anonymous(), e))?;
    let (flow, code) = callback_code(state, headers, params).map_err(|e| (anonymous(), e))?;
    let (who, return_to) = provider.finish(&flow, &code).await.map_err(|e| {
        (
            anonymous(),
            ApiError::Unauthorized(format!("sign-in refused: {e}")),
        )
    })?;
    let lookup = state.clone();
    let found = {
        let who = who.clone();
        blocking(move || {
            identity::resolve_person(
                &lookup,
                who.email.as_deref(),
                who.username.as_deref(),
                Some(&who.subject),
            )
        })
        .await
    };
    let login = identity::login_of(
        who.email.as_deref(),
        who.username.as_deref(),
        Some(&who.subject),
    );
    let person = match found {
        Ok(Some(p)) => p,
        Ok(None) => {
            return Err((
                format!("person:{login}"),
                ApiError::Forbidden(format!(
                    "{login} has no User in the catalog, and auth.allow_unknown_people is off; an administrator adds a User for them"
                )),
            ));
        }
        Err(e) => return Err((format!("person:{login}"), e)),
    };
    let secret = open_session(state, &person, &who.subject, address)
        .await
        .map_err(|e| (format!("person:{login}"), e))?;
    Ok((person, secret, return_to))
}

/// The sign-in flow and code of a provider's callback, when the flow was
/// started in this browser and the provider signed the person in.
fn callback_code(
    state: &AppState,
    headers: &HeaderMap,
    params: CallbackParams,
) -> Result<(String, String), ApiError> {
    let flow = params.state.unwrap_or_default();
    let started_here = cookie(headers, flow_cookie(state))
        .is_some_and(|c| !flow.is_empty() && identity::same(c, &flow));
    if !started_here {
        return Err(ApiError::BadRequest(
            "this sign-in was not started in this browser (its state does not match); start again at /auth/sign-in".into(),
        ));
    }
    if let Some(error) = params.error {
        return Err(ApiError::Unauthorized(format!(
            "the identity provider did not sign you in: {error}{}",
            params
                .error_description
                .map(|d| format!(" ({d})"))
                .unwrap_or_default()
        )));
    }
    let code = params
        .code
        .ok_or_else(|| ApiError::BadRequest("the identity provider sent no code".into()))?;
    Ok((flow, code))
}

/// Stores a new session for `person` and answers its cookie's secret
/// (only its hash is stored).
async fn open_session(
    state: &AppState,
    person: &crate::auth::Person,
    subject: &str,
    address: IpAddr,
) -> Result<String, ApiError> {
    let now = now_ms();
    let secret = random_secret("grs_");
    let record = SessionRecord {
        id: uuid::Uuid::new_v4().to_string(),
        login: person.login.clone(),
        subject: subject.to_string(),
        user_ref: person.user_ref.clone(),
        address: address.to_string(),
        created_ms: now,
        seen_ms: now,
        expires_ms: now + state.config.auth.session_max.as_millis() as i64,
        ended_ms: None,
        csrf: random_secret(""),
    };
    let store = state.store.clone();
    let hash = token_hash(&secret);
    blocking(move || Ok(store.access.session_create(&record, &hash)?)).await?;
    Ok(secret)
}

/// Ends the caller's session, here and in the browser.
async fn sign_out(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Result<Response, ApiError> {
    let Principal::Person(person) = &caller.principal else {
        return Err(ApiError::BadRequest(
            "signing out ends a session; this request was not made with one".into(),
        ));
    };
    let Some(session) = person.session.clone() else {
        return Err(ApiError::BadRequest(
            "signing out ends a session; this request was not made with one".into(),
        ));
    };
    let store = state.store.clone();
    blocking(move || Ok(store.access.session_end(&session.id)?)).await?;
    let mut response = StatusCode::NO_CONTENT.into_response();
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(&state, session_cookie(&state), "", 0),
    );
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sign_in_returns_only_to_this_portal() {
        assert_eq!(local_path(Some("/catalog?x=1")), "/catalog?x=1");
        for bad in [
            "https://evil.example/",
            "//evil.example/",
            "/\\evil.example",
            "javascript:alert(1)",
            "/\nLocation: x",
        ] {
            assert_eq!(local_path(Some(bad)), "/", "{bad}");
        }
        assert_eq!(local_path(None), "/");
    }

    #[test]
    fn cookies_are_found_by_name() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; greenroom-session=s3; b=2"),
        );
        assert_eq!(cookie(&h, "greenroom-session"), Some("s3"));
        assert_eq!(cookie(&h, "greenroom"), None);
    }
}
