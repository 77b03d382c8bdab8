//! The HTTP API (axum): Backstage-compatible catalog routes under
//! `/api/catalog`, Greenroom's own under `/api/`, `/healthz`, and the web
//! UI on every other path.
//!
//! **Invariant:** only `api` knows HTTP. Handlers parse requests, call the
//! store on blocking threads and shape responses; they hold no state of
//! their own beyond [`AppState`].

mod actions;
mod admin;
mod campaigns;
mod catalog;
mod docs;
mod error;
pub mod identity;
mod insights;
mod nudges;
mod plugins;
mod scorecards;
mod search;
mod signin;
mod suggestions;
mod web;
mod webhooks;

use std::sync::Arc;

use axum::extract::{FromRequest, State};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

pub use error::ApiError;

use crate::config::Config;
use crate::scheduler::Refresher;
use crate::store::Store;

/// Everything a handler may use; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<Store>,
    pub refresher: Arc<Refresher>,
    pub plugins: Arc<crate::plugins::Plugins>,
    /// Polls plugins for facts and events.
    pub insights: Arc<crate::scheduler::insights::Insights>,
    /// The search index and what keeps it current.
    pub search: Arc<crate::search::indexer::Indexer>,
    pub config: Arc<Config>,
    /// Per-address limits on failed sign-ins and token routes.
    pub limits: Arc<identity::Limits>,
    /// The OpenID Connect provider, in `auth.mode = "oidc"`.
    pub oidc: Option<Arc<crate::oidc::Oidc>>,
    /// Tells teams about their open campaign targets.
    pub notifier: Arc<crate::campaigns::notify::Notifier>,
    /// Campaign evaluations kept until the catalog or a fact moves.
    pub evaluations: Arc<crate::campaigns::Evaluations>,
}

/// The whole HTTP surface; used by `serve` and by tests.
pub fn app(state: AppState) -> Router {
    let web_dir = state.config.web_dir();
    let router = Router::new()
        .route("/healthz", get(healthz))
        .nest("/api/catalog", catalog::router())
        .merge(plugins::router())
        .merge(actions::router())
        .merge(docs::router())
        .merge(insights::router())
        .merge(campaigns::router())
        .merge(scorecards::router())
        .merge(search::router())
        .merge(suggestions::router())
        .merge(webhooks::router())
        .merge(admin::router())
        .merge(signin::router())
        .merge(web::router(web_dir))
        // The last layer added runs first: identify the caller, open the
        // audit record around everything after, then authorize.
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            identity::authorize,
        ))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            identity::audit,
        ))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            identity::identify,
        ))
        .route_layer(axum::middleware::from_fn(track))
        .layer(axum::extract::DefaultBodyLimit::max(
            state.config.server.max_body_bytes,
        ))
        .with_state(state.clone());
    let hosts = Arc::new(state.config.host_names().unwrap_or_default());
    let limit = state.config.server.max_body_bytes;
    web::security_headers(router)
        .layer(axum::middleware::from_fn(move |req, next| {
            limit_body(limit, req, next)
        }))
        .layer(axum::middleware::from_fn(move |req, next| {
            check_host(hosts.clone(), req, next)
        }))
}

/// Counts every routed request by method, route pattern and status, with
/// its latency (`/metrics`).
async fn track(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let started = std::time::Instant::now();
    let method = req.method().as_str().to_string();
    let route = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |m| m.as_str().to_string());
    let response = next.run(req).await;
    crate::metrics::request(
        &method,
        &route,
        response.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    response
}

/// Longest request address accepted (414 above).
const MAX_URL_BYTES: usize = 8 * 1024;
/// Most header bytes accepted (431 above); hyper also refuses more than
/// 100 headers.
const MAX_HEADER_BYTES: usize = 32 * 1024;

/// A body announced larger than `server.max_body_bytes` is refused before
/// it is read, with 413 and what to do; one that turns out larger while
/// read is refused by the extractors' limit, also with 413.
async fn limit_body(
    limit: usize,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let announced = req
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if req.uri().to_string().len() > MAX_URL_BYTES {
        return ApiError::UriTooLong(format!(
            "the address is over {MAX_URL_BYTES} bytes; put long filters in fewer, shorter parameters"
        ))
        .into_response();
    }
    let header_bytes: usize = req
        .headers()
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len() + 4)
        .sum();
    if header_bytes > MAX_HEADER_BYTES {
        return ApiError::HeadersTooLarge(format!(
            "the request's headers are {header_bytes} bytes, over {MAX_HEADER_BYTES}"
        ))
        .into_response();
    }
    if announced.is_some_and(|n| n > limit as u64) {
        return ApiError::TooLarge(format!(
            "the request body is {} bytes, over the limit of {limit} (server.max_body_bytes); send less, or an operator raises the limit",
            announced.unwrap_or_default()
        ))
        .into_response();
    }
    next.run(req).await
}

/// Refuses a request whose `Host` is a name the portal does not answer to.
/// A page on another site can make a browser send requests here under its
/// own name (DNS rebinding: `evil.example` resolving to this address), and
/// the browser would then treat the answers as same-origin to that page.
/// Addresses and `localhost` cannot be rebound, so they always pass.
async fn check_host(
    names: Arc<Vec<String>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let host = req
        .headers()
        .get(axum::http::header::HOST)
        .map(|h| h.to_str().unwrap_or("\u{fffd}"))
        .or_else(|| req.uri().host());
    if let Some(host) = host {
        let name = crate::config::strip_port(host).to_ascii_lowercase();
        let address = name
            .trim_matches(['[', ']'])
            .parse::<std::net::IpAddr>()
            .is_ok();
        let known = address || name == "localhost" || names.contains(&name);
        if !known {
            tracing::warn!(%host, "refused a request for a host name this portal does not answer to");
            return ApiError::BadRequest(format!(
                "this portal does not answer to the host name '{host}'; an administrator adds it to server.allowed_hosts or server.public_url in greenroom.toml"
            ))
            .into_response();
        }
    }
    next.run(req).await
}

/// `axum::Json`, but a bad body is answered in our own error format.
#[derive(FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct ApiJson<T>(pub T);

/// Whether a client asked for an answer computed afresh
/// (`Cache-Control: no-cache`).
pub(crate) fn wants_fresh(headers: &axum::http::HeaderMap) -> bool {
    headers
        .get(axum::http::header::CACHE_CONTROL)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("no-cache"))
}

/// Runs store work off the async executor.
/// An owner named in a query (`?owner=`): an entity ref, a bare name
/// being a group of the default namespace.
pub(crate) fn owner_ref(text: &str) -> Result<String, ApiError> {
    crate::catalog::EntityRef::parse(text, Some("group"), "default")
        .map(|r| r.to_string())
        .map_err(|e| ApiError::BadRequest(format!("owner '{text}': {e}")))
}

/// Owners named in a query, comma-separated.
pub(crate) fn owner_refs(text: &str) -> Result<Vec<String>, ApiError> {
    text.split(',')
        .map(str::trim)
        .filter(|o| !o.is_empty())
        .map(owner_ref)
        .collect()
}

pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f).await?
}

async fn healthz(State(state): State<AppState>) -> Result<Json<serde_json::Value>, ApiError> {
    // Read before the counts: "ready" then promises counts at least as
    // new as the first full refresh. Read after, a refresh committing
    // meanwhile answered ready with the counts from before it (seen on
    // PostgreSQL, where counting 100,000 entities takes a while).
    let ready = state.refresher.is_ready();
    let store = state.store.clone();
    let stats = blocking(move || Ok(store.catalog.stats()?)).await?;
    Ok(Json(json!({
        "status": "ok",
        "version": env!("CARGO_PKG_VERSION"),
        "ready": ready,
        // Whether this process refreshes and polls for its store.
        "background": state.refresher.is_leading(),
        "catalog": stats,
        "search": {"documents": state.search.index.documents()},
    })))
}

/// `?days=&limit=&offset=` of a campaign's or scorecard's page: 30 days
/// of history unless asked (at most 365), and the first 500 of its
/// targets unless asked (at most 100,000; `itemsTotal` says how many there
/// are, the CSV has them all).
#[derive(serde::Deserialize)]
pub(crate) struct DetailQuery {
    days: Option<usize>,
    limit: Option<usize>,
    offset: Option<usize>,
}

impl DetailQuery {
    pub(crate) fn days(&self) -> usize {
        self.days.unwrap_or(30).clamp(1, 365)
    }

    /// The targets asked for, out of `all`.
    pub(crate) fn page<'a, T>(&self, all: &'a [T]) -> &'a [T] {
        let limit = self.limit.unwrap_or(500).clamp(1, 100_000);
        let start = self.offset.unwrap_or(0).min(all.len());
        &all[start..(start + limit).min(all.len())]
    }
}
