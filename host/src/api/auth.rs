//! Bearer tokens until people sign in: the admin token (every scope) named
//! by `server.admin_token_env`, and named tokens with scopes from
//! `server.tokens`, their values read from the environment.

use axum::http::HeaderMap;

use super::{ApiError, AppState};

/// The caller of a write route: which token, for records.
pub struct Caller {
    pub token: String,
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// Compares without stopping at the first difference.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |d, (x, y)| d | (x ^ y)) == 0
}

fn admin_token(state: &AppState) -> Option<String> {
    std::env::var(&state.config.server.admin_token_env)
        .ok()
        .filter(|t| !t.is_empty())
}

/// Admin routes need `Authorization: Bearer <token>`, the token being the
/// value of the environment variable named by `server.admin_token_env`.
pub fn require_admin(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    let var = &state.config.server.admin_token_env;
    let Some(expected) = admin_token(state) else {
        return Err(ApiError::Forbidden(format!(
            "the admin API is off; set the environment variable {var} to a token to turn it on"
        )));
    };
    match bearer(headers) {
        Some(t) if same(t, &expected) => Ok(()),
        _ => Err(ApiError::Unauthorized(
            "admin routes need `Authorization: Bearer <token>`".into(),
        )),
    }
}

/// A write route needs a token with `scope`: 401 without a known token,
/// 403 with one that lacks the scope.
pub fn require_scope(
    state: &AppState,
    headers: &HeaderMap,
    scope: &str,
) -> Result<Caller, ApiError> {
    let need = || format!("`Authorization: Bearer <token>` with the scope {scope}");
    let given = bearer(headers)
        .ok_or_else(|| ApiError::Unauthorized(format!("this route needs {}", need())))?;
    if admin_token(state).is_some_and(|t| same(given, &t)) {
        return Ok(Caller {
            token: "admin".into(),
        });
    }
    for token in &state.config.server.tokens {
        let Some(value) = std::env::var(&token.env).ok().filter(|v| !v.is_empty()) else {
            continue;
        };
        if same(given, &value) {
            if token.scopes.iter().any(|s| s == scope) {
                return Ok(Caller {
                    token: token.name.clone(),
                });
            }
            return Err(ApiError::Forbidden(format!(
                "token '{}' lacks the scope {scope}; add it to its scopes in server.tokens",
                token.name
            )));
        }
    }
    Err(ApiError::Unauthorized(format!(
        "unknown token; this route needs {}",
        need()
    )))
}
