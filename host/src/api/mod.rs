//! The HTTP API (axum): Backstage-compatible catalog routes under
//! `/api/catalog`, Greenroom's own under `/api/`, `/healthz`, and the web
//! UI on every other path.
//!
//! **Invariant:** only `api` knows HTTP. Handlers parse requests, call the
//! store on blocking threads and shape responses; they hold no state of
//! their own beyond [`AppState`].

mod actions;
mod auth;
mod campaigns;
mod catalog;
mod docs;
mod error;
mod insights;
mod plugins;
mod search;
mod web;

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
        .merge(search::router())
        .merge(web::router(web_dir))
        .with_state(state);
    web::security_headers(router)
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
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f).await?
}

async fn healthz(State(state): State<AppState>) -> Result<Json<serde_json::Value>, ApiError> {
    let store = state.store.clone();
    let stats = blocking(move || Ok(store.stats()?)).await?;
    Ok(Json(json!({
        "status": "ok",
        "version": env!("CARGO_PKG_VERSION"),
        "ready": state.refresher.is_ready(),
        "catalog": stats,
        "search": {"documents": state.search.index.documents()},
    })))
}
