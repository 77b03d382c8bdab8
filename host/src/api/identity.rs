//! Who is calling, for every request, and whether they may: the HTTP side
//! of `crate::auth`. Three layers wrap the router:
//!
//! 1. [`identify`] turns the request into a [`Caller`]: a bearer token
//!    (stored, from `server.tokens`, or the admin token), a person named by
//!    the sign-in proxy (only from `auth.proxy.trusted` addresses), or
//!    nobody. A token that is unknown, revoked or expired is refused here.
//! 2. [`authorize`] looks the route up in [`RULES`] and asks the policy.
//!    A write route missing from the table is refused, so a new route
//!    cannot forget its check. Rules that depend on the target (an
//!    action's entity owner, a campaign's owner) are checked by the
//!    handler with [`Caller::require`].
//! 3. [`audit`] records every write (and every refusal) in the store
//!    before the answer leaves: who, what, target, address, outcome.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{HeaderMap, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::{ApiError, AppState};
use crate::auth::{Permission, Person, Policy, Principal, TokenHolder, token_hash};
use crate::config::{AuthMode, Cidr, Resolve};
use crate::store::{AuditEntry, now_ms};

/// The caller of a request, in its extensions.
#[derive(Debug, Clone)]
pub struct Caller {
    pub principal: Principal,
    pub address: Option<IpAddr>,
}

impl Caller {
    /// Asks the policy; a refusal is 401 or 403 with its reason.
    pub fn require(&self, state: &AppState, permission: Permission<'_>) -> Result<(), ApiError> {
        Policy {
            config: &state.config.auth,
        }
        .decide(&self.principal, permission)
        .map_err(|r| {
            if r.unauthenticated {
                ApiError::Unauthorized(r.message)
            } else {
                ApiError::Forbidden(r.message)
            }
        })
    }

    /// How the audit trail and records name the caller.
    pub fn actor(&self) -> String {
        self.principal.actor()
    }

    /// The short name fact and event sources carry (`push:ci`).
    pub fn source_name(&self) -> String {
        match &self.principal {
            Principal::Token(t) => t.name.clone(),
            Principal::Person(p) => p.user_ref.clone().unwrap_or_else(|| p.login.clone()),
            Principal::Anonymous => "anonymous".into(),
        }
    }
}

/// What a route needs, beyond reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// Anyone, signed in or not (who am I, so the UI can say "sign in").
    Public,
    /// Reading, though sent as POST (by-refs, validate-entity).
    Read,
    Admin(&'static str),
    Scope(&'static str),
    SignedIn,
    /// A known caller here; the handler checks the target's owner.
    Owner,
}

/// Every route that is not a plain read, with its rule. `authorize`
/// refuses a write route that is not listed.
pub const RULES: &[(&str, &str, Rule)] = &[
    ("GET", "/api/whoami", Rule::Public),
    ("GET", "/healthz", Rule::Public),
    ("GET", "/metrics", Rule::Public),
    ("POST", "/api/catalog/entities/by-refs", Rule::Read),
    ("POST", "/api/catalog/validate-entity", Rule::Read),
    (
        "POST",
        "/api/catalog/locations",
        Rule::Admin("changing locations"),
    ),
    (
        "DELETE",
        "/api/catalog/locations/{id}",
        Rule::Admin("changing locations"),
    ),
    ("POST", "/api/catalog/refresh", Rule::SignedIn),
    ("POST", "/api/facts", Rule::Scope("facts:write")),
    ("POST", "/api/events", Rule::Scope("events:write")),
    ("POST", "/api/campaigns", Rule::Owner),
    ("DELETE", "/api/campaigns/{name}", Rule::Owner),
    (
        "POST",
        "/api/plugins/{id}/grants",
        Rule::Admin("granting plugins"),
    ),
    (
        "POST",
        "/api/plugins/{id}/disable",
        Rule::Admin("disabling plugins"),
    ),
    (
        "POST",
        "/api/plugins/{id}/enable",
        Rule::Admin("enabling plugins"),
    ),
    (
        "POST",
        "/api/search/rebuild",
        Rule::Admin("rebuilding the search index"),
    ),
    (
        "POST",
        "/api/actions/{kind}/{namespace}/{name}/{plugin}/{action}",
        Rule::Owner,
    ),
    ("POST", "/api/tokens", Rule::Admin("managing tokens")),
    ("DELETE", "/api/tokens/{id}", Rule::Admin("managing tokens")),
    ("GET", "/api/tokens", Rule::Admin("listing tokens")),
    ("GET", "/api/audit", Rule::Admin("reading the audit trail")),
];

fn is_read(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
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

fn header<'h>(headers: &'h HeaderMap, names: &[String]) -> Option<&'h str> {
    names
        .iter()
        .find_map(|n| headers.get(n.as_str()).and_then(|v| v.to_str().ok()))
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

/// The holder of a bearer token: the admin token, a `server.tokens` one,
/// or a stored one that is live.
fn token_holder(state: &AppState, given: &str) -> Result<TokenHolder, ApiError> {
    let server = &state.config.server;
    if std::env::var(&server.admin_token_env).is_ok_and(|t| !t.is_empty() && same(given, &t)) {
        return Ok(TokenHolder {
            name: "admin".into(),
            scopes: vec!["admin".into()],
        });
    }
    for token in &server.tokens {
        if std::env::var(&token.env).is_ok_and(|v| !v.is_empty() && same(given, &v)) {
            return Ok(TokenHolder {
                name: token.name.clone(),
                scopes: token.scopes.clone(),
            });
        }
    }
    match state.store.token_by_hash(&token_hash(given))? {
        Some(t) if t.live(now_ms()) => Ok(TokenHolder {
            name: t.name,
            scopes: t.scopes,
        }),
        Some(t) if t.revoked_ms.is_some() => Err(ApiError::Unauthorized(format!(
            "token '{}' was revoked; ask an administrator for a new one",
            t.name
        ))),
        Some(t) => Err(ApiError::Unauthorized(format!(
            "token '{}' expired; ask an administrator for a new one",
            t.name
        ))),
        None => Err(ApiError::Unauthorized(
            "unknown token: send `Authorization: Bearer <token>` with a token from `greenroom token create`".into(),
        )),
    }
}

/// A person as the catalog knows them: their User (found by email, name
/// or annotation) and groups. `None` when they are unknown and
/// `auth.allow_unknown_people` is off.
pub fn resolve_person(
    state: &AppState,
    email: Option<&str>,
    user: Option<&str>,
) -> Result<Option<Person>, ApiError> {
    let auth = &state.config.auth;
    let login = email.or(user).unwrap_or_default().to_string();
    let user_ref = match auth.resolve {
        Resolve::Email => match email {
            Some(e) => state.store.user_by("email", e)?,
            None => None,
        },
        Resolve::Name => {
            let name = user.or_else(|| email.and_then(|e| e.split('@').next()));
            match name {
                Some(n) => state.store.user_by("name", n)?,
                None => None,
            }
        }
        Resolve::Annotation => match user.or(email) {
            Some(s) => state.store.user_by("annotation", s)?,
            None => None,
        },
    };
    if user_ref.is_none() && !auth.allow_unknown_people {
        return Ok(None);
    }
    let groups = match &user_ref {
        Some(r) => state.store.groups_of(r)?,
        None => Vec::new(),
    };
    Ok(Some(Person {
        user_ref,
        login,
        groups,
        demo: false,
    }))
}

/// Whether the request names anyone: a bearer token, or (behind the
/// sign-in proxy) an identity header.
fn carries_identity(state: &AppState, headers: &HeaderMap) -> bool {
    let auth = &state.config.auth;
    bearer(headers).is_some()
        || (auth.mode == AuthMode::Proxy
            && (header(headers, &auth.proxy.email_headers).is_some()
                || header(headers, &auth.proxy.user_headers).is_some()))
}

fn principal_of(
    state: &AppState,
    headers: &HeaderMap,
    address: Option<IpAddr>,
) -> Result<Principal, ApiError> {
    if let Some(given) = bearer(headers) {
        return Ok(Principal::Token(token_holder(state, given)?));
    }
    let auth = &state.config.auth;
    if auth.mode == AuthMode::Proxy {
        let proxy = &auth.proxy;
        let email = header(headers, &proxy.email_headers);
        let user = header(headers, &proxy.user_headers);
        if email.is_some() || user.is_some() {
            let trusted = address.is_some_and(|a| {
                proxy
                    .trusted
                    .iter()
                    .filter_map(|c| Cidr::parse(c).ok())
                    .any(|c| c.contains(a))
            });
            if !trusted {
                tracing::warn!(
                    address = ?address,
                    "identity headers from an address that is not a trusted proxy were ignored"
                );
                return Ok(Principal::Anonymous);
            }
            return match resolve_person(state, email, user)? {
                Some(p) => Ok(Principal::Person(p)),
                None => Err(ApiError::Forbidden(format!(
                    "{} has no User in the catalog, and auth.allow_unknown_people is off; add a User with this email",
                    email.or(user).unwrap_or_default()
                ))),
            };
        }
    }
    Ok(Principal::Anonymous)
}

/// Failed sign-ins and token checks per address per minute before the
/// address is refused with 429 for the rest of the minute; and requests to
/// the token routes per address per minute.
const FAILURES_PER_MINUTE: u32 = 20;
const TOKEN_ROUTE_PER_MINUTE: u32 = 60;

/// When a window opened, and how many it has counted.
type Window = (std::time::Instant, u32);

/// Per-address counts in one-minute windows. Hand-written rather than a
/// token bucket from a crate: a blocked address must be refused *before*
/// its token is checked (or a guess could still land), which needs asking
/// "is it blocked" without spending, and a fixed window is all it takes.
#[derive(Default)]
pub struct Limits {
    windows: std::sync::Mutex<std::collections::HashMap<(IpAddr, &'static str), Window>>,
}

impl Limits {
    /// Seconds until `address` may try `what` again, if it is over `max`.
    fn blocked(&self, address: IpAddr, what: &'static str, max: u32) -> Option<u64> {
        let windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        let (start, count) = windows.get(&(address, what))?;
        let elapsed = start.elapsed().as_secs();
        (elapsed < 60 && *count >= max).then(|| 60 - elapsed)
    }

    fn count(&self, address: IpAddr, what: &'static str) {
        let mut windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        if windows.len() > 100_000 {
            windows.retain(|_, (start, _)| start.elapsed().as_secs() < 60);
        }
        let entry = windows
            .entry((address, what))
            .or_insert((std::time::Instant::now(), 0));
        if entry.0.elapsed().as_secs() >= 60 {
            *entry = (std::time::Instant::now(), 0);
        }
        entry.1 += 1;
    }
}

fn too_many(retry_after: u64, what: &str) -> Response {
    let mut response = ApiError::TooMany(format!(
        "too many {what} from this address; try again in {retry_after} s"
    ))
    .into_response();
    if let Ok(v) = axum::http::HeaderValue::from_str(&retry_after.to_string()) {
        response
            .headers_mut()
            .insert(axum::http::header::RETRY_AFTER, v);
    }
    response
}

/// Layer 1: who is calling.
pub async fn identify(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let address = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let limits = state.limits.clone();
    if let Some(a) = address {
        let failing = limits.blocked(a, "failed", FAILURES_PER_MINUTE);
        let token_route = req.uri().path().starts_with("/api/tokens");
        let busy = token_route
            .then(|| limits.blocked(a, "tokens", TOKEN_ROUTE_PER_MINUTE))
            .flatten();
        if let Some(wait) = failing.or(busy) {
            let what = if failing.is_some() {
                "failed sign-ins"
            } else {
                "token requests"
            };
            let response = too_many(wait, what);
            if !is_read(req.method()) || failing.is_some() {
                let action = format!("{} {}", req.method(), req.uri().path());
                let target = req.uri().path().to_string();
                append(&state, "anonymous".into(), action, target, address, 429).await;
            }
            return response;
        }
        if token_route {
            limits.count(a, "tokens");
        }
    }
    // Most requests carry no credential: they are nobody, without a trip
    // to a blocking thread for a store lookup that has nothing to find.
    if !carries_identity(&state, req.headers()) {
        req.extensions_mut().insert(Caller {
            principal: Principal::Anonymous,
            address,
        });
        return next.run(req).await;
    }
    let headers = req.headers().clone();
    let lookup = state.clone();
    let principal =
        match tokio::task::spawn_blocking(move || principal_of(&lookup, &headers, address)).await {
            Ok(Ok(p)) => p,
            Ok(Err(e)) => {
                if let Some(a) = address
                    && matches!(e, ApiError::Unauthorized(_) | ApiError::Forbidden(_))
                {
                    limits.count(a, "failed");
                }
                let response = e.into_response();
                // A failed sign-in is recorded whatever it asked for.
                let action = format!("{} {}", req.method(), req.uri().path());
                let target = req.uri().path().to_string();
                let status = response.status().as_u16();
                let actor = Principal::Anonymous.actor();
                append(&state, actor, action, target, address, status).await;
                return response;
            }
            Err(e) => return ApiError::from(e).into_response(),
        };
    req.extensions_mut().insert(Caller { principal, address });
    next.run(req).await
}

/// Layer 2: may they.
pub async fn authorize(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let Some(caller) = req.extensions().get::<Caller>().cloned() else {
        return ApiError::Internal(anyhow::anyhow!("no caller identified")).into_response();
    };
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string());
    let rule = route.as_deref().and_then(|r| {
        RULES
            .iter()
            .find(|(m, p, _)| *m == req.method().as_str() && *p == r)
            .map(|(_, _, rule)| *rule)
    });
    let rule = match rule {
        Some(rule) => rule,
        None if is_read(req.method()) => Rule::Read,
        // A write route nobody gave a rule: refused, not open.
        None if route.is_some() => Rule::Admin("this route (it has no permission rule)"),
        // No route: the router answers 404 or 405.
        None => return next.run(req).await,
    };
    let permission = match rule {
        Rule::Public => return next.run(req).await,
        Rule::Read => Permission::Read,
        Rule::Admin(what) => Permission::Admin(what),
        Rule::Scope(scope) => Permission::Scope(scope),
        Rule::SignedIn => Permission::SignedIn,
        // Someone known here; the handler decides, knowing the target's
        // owner. In the demo the request names the person, so the handler
        // decides alone.
        Rule::Owner
            if state.config.auth.mode == AuthMode::Guest && state.config.auth.demo_people =>
        {
            Permission::Read
        }
        Rule::Owner => Permission::SignedIn,
    };
    match caller.require(&state, permission) {
        Ok(()) => next.run(req).await,
        Err(e) => e.into_response(),
    }
}

/// Layer 3: the audit trail, for writes and for refused reads of admin
/// routes, written before the answer leaves.
pub async fn audit(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string());
    let admin_read = req.method() == Method::GET
        && RULES.iter().any(|(m, p, rule)| {
            *m == "GET" && matches!(rule, Rule::Admin(_)) && route.as_deref() == Some(*p)
        });
    if is_read(req.method()) && !admin_read {
        return next.run(req).await;
    }
    let caller = req.extensions().get::<Caller>().cloned();
    let path = req.uri().path().to_string();
    let action = format!("{} {}", req.method(), route.as_deref().unwrap_or(&path));
    let write = !is_read(req.method());
    let response = next.run(req).await;
    let status = response.status().as_u16();
    if write || matches!(status, 401 | 403) {
        let (principal, address) = match caller {
            Some(c) => (c.principal, c.address),
            None => (Principal::Anonymous, None),
        };
        append(&state, principal.actor(), action, path, address, status).await;
    }
    response
}

/// Appends one line; a failure to record is logged (the store may be
/// full), never turned into a different answer.
pub async fn append(
    state: &AppState,
    actor: String,
    action: String,
    target: String,
    address: Option<IpAddr>,
    status: u16,
) {
    let outcome = match status {
        401 | 403 | 429 => "denied",
        400.. => "error",
        _ => "allowed",
    };
    let entry = AuditEntry {
        seq: 0,
        at_ms: now_ms(),
        actor,
        action,
        target,
        address: address.map(|a| a.to_string()).unwrap_or_default(),
        outcome: outcome.into(),
        status,
    };
    let store = state.store.clone();
    let written = tokio::task::spawn_blocking(move || store.audit(&entry)).await;
    if !matches!(written, Ok(Ok(()))) {
        tracing::error!(?written, "cannot write the audit trail");
    }
}
