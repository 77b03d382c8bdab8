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
use crate::auth::{Permission, Person, Policy, Principal, SessionRef, TokenHolder, token_hash};
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
    ("GET", "/auth/sign-in", Rule::Public),
    ("GET", "/auth/callback", Rule::Public),
    ("POST", "/auth/sign-out", Rule::SignedIn),
    ("GET", "/api/sessions", Rule::SignedIn),
    ("DELETE", "/api/sessions/{id}", Rule::SignedIn),
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
    ("POST", "/api/campaigns/dry-run", Rule::Read),
    ("POST", "/api/suggestions/decide", Rule::Owner),
    // The delivery's signature is its caller's proof (checked first by
    // the handler, with the webhook's secret).
    ("POST", "/api/webhooks/{plugin}", Rule::Public),
    ("POST", "/api/scorecards/dry-run", Rule::Read),
    ("POST", "/api/scorecards/levels", Rule::Read),
    ("DELETE", "/api/campaigns/{name}", Rule::Owner),
    ("POST", "/api/campaigns/{name}/history", Rule::Owner),
    ("POST", "/api/campaigns/{name}/nudge", Rule::Owner),
    ("POST", "/api/campaigns/{name}/snooze", Rule::Owner),
    ("POST", "/api/scorecards/{name}/nudge", Rule::Owner),
    ("POST", "/api/scorecards/{name}/snooze", Rule::Owner),
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
        "/api/plugins/{id}/poll",
        Rule::Admin("polling plugins"),
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
    // People manage their own personal tokens and sessions; the handlers
    // let administrators see and end everyone's.
    ("POST", "/api/tokens", Rule::SignedIn),
    ("DELETE", "/api/tokens/{id}", Rule::SignedIn),
    ("GET", "/api/tokens", Rule::SignedIn),
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
pub(crate) fn same(a: &str, b: &str) -> bool {
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
            person: None,
        });
    }
    for token in &server.tokens {
        if std::env::var(&token.env).is_ok_and(|v| !v.is_empty() && same(given, &v)) {
            return Ok(TokenHolder {
                name: token.name.clone(),
                scopes: token.scopes.clone(),
                person: None,
            });
        }
    }
    match state.store.access.token_by_hash(&token_hash(given))? {
        Some(t) if t.live(now_ms()) => {
            // A personal token acts for its person as the catalog knows
            // them now: one who left loses what the token could do.
            let person = match &t.person {
                Some(user_ref) => Some(person(
                    state,
                    Some(user_ref.clone()),
                    user_ref.clone(),
                    None,
                )?),
                None => None,
            };
            Ok(TokenHolder {
                name: t.name,
                scopes: t.scopes,
                person,
            })
        }
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

/// A person as the catalog knows them: their User (found by email, user
/// name, or the `greenroom.dev/sso-subject` annotation matching the
/// provider's subject) and groups. `None` when they are unknown and
/// `auth.allow_unknown_people` is off.
pub fn resolve_person(
    state: &AppState,
    email: Option<&str>,
    user: Option<&str>,
    subject: Option<&str>,
) -> Result<Option<Person>, ApiError> {
    let auth = &state.config.auth;
    let login = login_of(email, user, subject);
    let user_ref = match auth.resolve {
        Resolve::Email => match email {
            Some(e) => state.store.catalog.user_by("email", e)?,
            None => None,
        },
        Resolve::Name => {
            let name = user.or_else(|| email.and_then(|e| e.split('@').next()));
            match name {
                Some(n) => state.store.catalog.user_by("name", n)?,
                None => None,
            }
        }
        Resolve::Annotation => match subject.or(user).or(email) {
            Some(s) => state.store.catalog.user_by("annotation", s)?,
            None => None,
        },
    };
    if user_ref.is_none() && !auth.allow_unknown_people {
        return Ok(None);
    }
    Ok(Some(person(state, user_ref, login, None)?))
}

/// How records name a person: their email, else user name, else the
/// provider's subject.
pub fn login_of(email: Option<&str>, user: Option<&str>, subject: Option<&str>) -> String {
    email.or(user).or(subject).unwrap_or_default().to_string()
}

/// A person (not the demo's) with every group of their User, if any.
fn person(
    state: &AppState,
    user_ref: Option<String>,
    login: String,
    session: Option<SessionRef>,
) -> Result<Person, ApiError> {
    let groups = match &user_ref {
        Some(r) => state.store.catalog.groups_of(r)?,
        None => Vec::new(),
    };
    Ok(Person {
        user_ref,
        login,
        groups,
        demo: false,
        session,
    })
}

/// Whether the request names anyone: a bearer token, (behind the sign-in
/// proxy) an identity header, or (with OpenID Connect) a session cookie.
fn carries_identity(state: &AppState, headers: &HeaderMap) -> bool {
    let auth = &state.config.auth;
    bearer(headers).is_some()
        || (auth.mode == AuthMode::Proxy
            && (header(headers, &auth.proxy.email_headers).is_some()
                || header(headers, &auth.proxy.user_headers).is_some()))
        || (auth.mode == AuthMode::Oidc
            && super::signin::cookie(headers, super::signin::session_cookie(state)).is_some())
}

/// A session is marked as used at most this often (its idle clock).
const SEEN_EVERY_MS: i64 = 60_000;

/// The person of a live session cookie. An ended, idle or unknown session
/// is refused with why, except on public routes (who am I), which then
/// answer for nobody.
fn session_person(
    state: &AppState,
    secret: &str,
    public: bool,
) -> Result<Option<Person>, ApiError> {
    let now = now_ms();
    let idle = state.config.auth.session_idle.as_millis() as i64;
    let found = state.store.access.session_by_hash(&token_hash(secret))?;
    let why = match &found {
        Some(s) if s.live(now, idle) => None,
        Some(s) if s.ended_ms.is_some() => Some("your session ended (signed out or revoked)"),
        Some(s) if s.expires_ms <= now => Some("your session reached its time limit"),
        Some(_) => Some("your session was idle too long"),
        None => Some("this session is unknown"),
    };
    if let Some(why) = why {
        if public {
            return Ok(None);
        }
        return Err(ApiError::Unauthorized(format!(
            "{why}; sign in again at /auth/sign-in"
        )));
    }
    let Some(session) = found else {
        return Ok(None);
    };
    if now - session.seen_ms > SEEN_EVERY_MS {
        state.store.access.session_seen(&session.id, now)?;
    }
    let held = SessionRef {
        id: session.id,
        csrf: session.csrf,
    };
    Ok(Some(person(
        state,
        session.user_ref,
        session.login,
        Some(held),
    )?))
}

/// A write sent with a session cookie must come from the portal's own
/// pages: the browser's `Sec-Fetch-Site` and `Origin` say same-origin (when
/// sent), and the session's anti-forgery token comes back in
/// `X-CSRF-Token`, which another site cannot read nor send without CORS,
/// which the portal never grants.
fn check_forgery(
    state: &AppState,
    headers: &HeaderMap,
    session: &SessionRef,
) -> Result<(), ApiError> {
    let refuse = |why: &str| {
        Err(ApiError::Forbidden(format!(
            "a cross-site request was refused ({why}): writes made with a session cookie must come from this portal's pages with the X-CSRF-Token of /api/whoami"
        )))
    };
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok())
        && !matches!(site, "same-origin" | "none")
    {
        return refuse(&format!("Sec-Fetch-Site is {site}"));
    }
    if let Some(origin) = headers
        .get(axum::http::header::ORIGIN)
        .and_then(|v| v.to_str().ok())
    {
        let ours = state
            .config
            .server
            .public_url
            .as_deref()
            .and_then(|u| reqwest::Url::parse(u).ok())
            .and_then(|u| crate::net::Origin::of(&u));
        let theirs = reqwest::Url::parse(origin)
            .ok()
            .and_then(|u| crate::net::Origin::of(&u));
        if ours.is_none() || ours != theirs {
            return refuse(&format!("Origin is {origin}"));
        }
    }
    match headers.get("x-csrf-token").and_then(|v| v.to_str().ok()) {
        Some(t) if same(t, &session.csrf) => Ok(()),
        Some(_) => refuse("X-CSRF-Token does not match the session"),
        None => refuse("no X-CSRF-Token"),
    }
}

fn principal_of(
    state: &AppState,
    method: &Method,
    headers: &HeaderMap,
    address: Option<IpAddr>,
    public: bool,
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
            return match resolve_person(state, email, user, user)? {
                Some(p) => Ok(Principal::Person(p)),
                None => Err(ApiError::Forbidden(format!(
                    "{} has no User in the catalog, and auth.allow_unknown_people is off; add a User with this email",
                    email.or(user).unwrap_or_default()
                ))),
            };
        }
    }
    if auth.mode == AuthMode::Oidc
        && let Some(secret) = super::signin::cookie(headers, super::signin::session_cookie(state))
        && let Some(person) = session_person(state, secret, public)?
    {
        if !is_read(method)
            && let Some(session) = &person.session
        {
            check_forgery(state, headers, session)?;
        }
        return Ok(Principal::Person(person));
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

    /// Counts a failed sign-in from `address`.
    pub fn failed(&self, address: IpAddr) {
        self.count(address, "failed");
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
    if let Some(a) = address
        && let Some(response) = rate_limited(&state, req.method(), req.uri().path(), a).await
    {
        return response;
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
    let method = req.method().clone();
    let public = rule_of(&method, req.extensions().get::<MatchedPath>()) == Some(Rule::Public);
    let lookup = state.clone();
    let principal = match tokio::task::spawn_blocking(move || {
        principal_of(&lookup, &method, &headers, address, public)
    })
    .await
    {
        Ok(Ok(p)) => p,
        Ok(Err(e)) => return refused(&state, req.method(), req.uri().path(), address, e).await,
        Err(e) => return ApiError::from(e).into_response(),
    };
    req.extensions_mut().insert(Caller { principal, address });
    next.run(req).await
}

/// The answer for an address over its limits (failed sign-ins; token and
/// sign-in routes), recorded in the audit trail unless a mere read; counts
/// a token or sign-in request otherwise.
async fn rate_limited(
    state: &AppState,
    method: &Method,
    path: &str,
    a: IpAddr,
) -> Option<Response> {
    let limits = &state.limits;
    let failing = limits.blocked(a, "failed", FAILURES_PER_MINUTE);
    // Token routes, and sign-in starts (each keeps a flow in memory).
    let token_route = path.starts_with("/api/tokens") || path.starts_with("/auth/");
    let busy = token_route
        .then(|| limits.blocked(a, "tokens", TOKEN_ROUTE_PER_MINUTE))
        .flatten();
    let Some(wait) = failing.or(busy) else {
        if token_route {
            limits.count(a, "tokens");
        }
        return None;
    };
    let what = if failing.is_some() {
        "failed sign-ins"
    } else {
        "sign-in and token requests"
    };
    if !is_read(method) || failing.is_some() {
        let action = format!("{method} {path}");
        append(
            state,
            "anonymous".into(),
            action,
            path.to_string(),
            Some(a),
            429,
        )
        .await;
    }
    Some(too_many(wait, what))
}

/// The answer to a credential that does not identify anyone: counted
/// against the address, and recorded whatever the request asked for.
async fn refused(
    state: &AppState,
    method: &Method,
    path: &str,
    address: Option<IpAddr>,
    e: ApiError,
) -> Response {
    if let Some(a) = address
        && matches!(e, ApiError::Unauthorized(_) | ApiError::Forbidden(_))
    {
        state.limits.count(a, "failed");
    }
    let response = e.into_response();
    let status = response.status().as_u16();
    let actor = Principal::Anonymous.actor();
    let action = format!("{method} {path}");
    append(state, actor, action, path.to_string(), address, status).await;
    response
}

/// The rule `RULES` gives the route, if it lists it.
fn rule_of(method: &Method, route: Option<&MatchedPath>) -> Option<Rule> {
    let route = route?.as_str();
    RULES
        .iter()
        .find(|(m, p, _)| *m == method.as_str() && *p == route)
        .map(|(_, _, rule)| *rule)
}

/// Layer 2: may they.
pub async fn authorize(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let Some(caller) = req.extensions().get::<Caller>().cloned() else {
        return ApiError::Internal(anyhow::anyhow!("no caller identified")).into_response();
    };
    let route = req.extensions().get::<MatchedPath>();
    let rule = match rule_of(req.method(), route) {
        Some(rule) => rule,
        // The web app's pages and files hold no data: they load for anyone,
        // and the app asks who is there (and offers to sign in).
        None if is_read(req.method())
            && super::web::is_shell(route.map(MatchedPath::as_str), req.uri().path()) =>
        {
            Rule::Public
        }
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
    let written = tokio::task::spawn_blocking(move || store.access.audit(&entry)).await;
    if !matches!(written, Ok(Ok(()))) {
        tracing::error!(?written, "cannot write the audit trail");
    }
}
