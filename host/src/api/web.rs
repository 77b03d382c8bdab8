//! The web UI: the built Yew app (`web.dir`) is served for every UI path,
//! so links shaped like Backstage's (`/catalog/default/component/x`) open
//! the app, and its files from `/assets/`. Every response carries a strict
//! Content-Security-Policy: scripts only from this origin (WebAssembly
//! compiled from them), no inline script or style, requests only to this
//! origin, and the page is never framed.

use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use tower_http::services::ServeDir;
use tower_http::set_header::SetResponseHeaderLayer;

use super::{ApiError, AppState};

/// The policy for the app and everything else the host serves that sets
/// none of its own (docs assets set a stricter one).
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; img-src 'self' data:; font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The app's client-side routes; `/` too.
const UI_ROUTES: &[&str] = &[
    "/",
    "/catalog",
    "/catalog/{*rest}",
    "/docs",
    "/docs/{*rest}",
    "/search",
    "/campaigns",
    "/campaigns/{*rest}",
    "/facts",
    "/plugins",
    "/audit",
    "/sign-in",
];

/// Whether a request is for the app's own page (its matched `route`) or
/// one of its files (under `/assets/`, a nested service with no matched
/// route of its own): they hold no data.
pub fn is_shell(route: Option<&str>, path: &str) -> bool {
    route.is_some_and(|r| UI_ROUTES.contains(&r)) || path.starts_with("/assets/")
}

/// The UI routes, `/assets/` when the app is built, and the fallback for
/// every other path. `dir` is the built app (`Config::web_dir`, read once).
pub fn router(dir: Option<PathBuf>) -> Router<AppState> {
    let dir = dir.map(Arc::new);
    let mut router = Router::new();
    for route in UI_ROUTES {
        let dir = dir.clone();
        router = router.route(route, get(move || page(dir, StatusCode::OK)));
    }
    if let Some(dir) = &dir {
        router = router.nest_service(
            "/assets",
            tower::ServiceBuilder::new()
                .layer(SetResponseHeaderLayer::overriding(
                    header::CACHE_CONTROL,
                    HeaderValue::from_static("no-cache"),
                ))
                .service(ServeDir::new(dir.join("assets"))),
        );
    }
    // Unknown API paths get a JSON error; any other path is the app's
    // "not found" page.
    router.fallback(move |uri: Uri| {
        let dir = dir.clone();
        async move {
            if uri.path().starts_with("/api/") || uri.path() == "/api" {
                return ApiError::NotFound(format!("no route for {}", uri.path())).into_response();
            }
            page(dir, StatusCode::NOT_FOUND).await
        }
    })
}

/// Headers every response gets unless it set its own.
pub fn security_headers<S: Clone + Send + Sync + 'static>(router: Router<S>) -> Router<S> {
    router
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::REFERRER_POLICY,
            HeaderValue::from_static("strict-origin-when-cross-origin"),
        ))
}

/// The app's page, read afresh so a rebuilt app is served at once; the
/// API's description when the app is not built.
async fn page(dir: Option<Arc<PathBuf>>, status: StatusCode) -> Response {
    let Some(dir) = dir else {
        return (status, Html(include_str!("index.html"))).into_response();
    };
    let file = dir.join("index.html");
    match tokio::fs::read_to_string(&file).await {
        Ok(html) => (status, [(header::CACHE_CONTROL, "no-cache")], Html(html)).into_response(),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "The web UI is not built ({}: {e}); run `cargo xtask web`.",
                file.display()
            ),
        )
            .into_response(),
    }
}
