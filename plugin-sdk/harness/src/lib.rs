//! Test a plugin's `.wasm` the way the portal runs it: an in-process
//! Greenroom host (the real runtime, sandbox and imports) with a catalog
//! made of the entities the test gives, and a loopback upstream that
//! answers the routes the test gives and records what it received.
//!
//! ```no_run
//! # use greenroom_plugin_harness::{FakeUpstream, Harness};
//! # const RUNS_JSON: &str = "{}";
//! # const COMPONENT_YAML: &str = "";
//! # fn main() -> anyhow::Result<()> {
//! let upstream = FakeUpstream::start(&[("/repos/acme/pay/actions/runs", 200, RUNS_JSON)]);
//! let h = Harness::builder("target/wasm32-wasip2/release/github.wasm")
//!     .entity(COMPONENT_YAML)
//!     .grant_host(&upstream.origin())
//!     .secret("GITHUB_TOKEN", "test-token")
//!     .build()?;
//! let cards = h.cards("component:default/pay")?;
//! assert_eq!(upstream.requests()[0].authorization.as_deref(), Some("Bearer test-token"));
//! # let _ = cards;
//! # Ok(())
//! # }
//! ```

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

pub use greenroom::harness::{Builder, Harness};

/// A request the fake upstream received.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub authorization: Option<String>,
}

/// A loopback HTTP server answering fixed routes (`path`, status, JSON
/// body); anything else is 404. Lives until dropped.
pub struct FakeUpstream {
    pub addr: SocketAddr,
    requests: Arc<Mutex<Vec<Recorded>>>,
    _runtime: tokio::runtime::Runtime,
}

impl FakeUpstream {
    pub fn start(routes: &[(&str, u16, &str)]) -> FakeUpstream {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let routes: Arc<Vec<(String, u16, String)>> = Arc::new(
            routes
                .iter()
                .map(|(p, s, b)| (p.to_string(), *s, b.to_string()))
                .collect(),
        );
        let requests = Arc::new(Mutex::new(Vec::new()));
        let recorded = requests.clone();
        let app = axum::Router::new().fallback(move |req: axum::extract::Request| {
            let routes = routes.clone();
            let recorded = recorded.clone();
            async move {
                let path = req
                    .uri()
                    .path_and_query()
                    .map(|p| p.to_string())
                    .unwrap_or_default();
                recorded
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(Recorded {
                        method: req.method().to_string(),
                        path: path.clone(),
                        authorization: req
                            .headers()
                            .get("authorization")
                            .and_then(|v| v.to_str().ok())
                            .map(str::to_string),
                    });
                match routes.iter().find(|(p, _, _)| *p == path) {
                    Some((_, status, body)) => (
                        axum::http::StatusCode::from_u16(*status)
                            .unwrap_or(axum::http::StatusCode::INTERNAL_SERVER_ERROR),
                        [(axum::http::header::CONTENT_TYPE, "application/json")],
                        body.clone(),
                    ),
                    None => (
                        axum::http::StatusCode::NOT_FOUND,
                        [(axum::http::header::CONTENT_TYPE, "application/json")],
                        "{\"message\":\"Not Found\"}".to_string(),
                    ),
                }
            }
        });
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("bind 127.0.0.1");
        let addr = listener.local_addr().expect("address");
        runtime.spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeUpstream {
            addr,
            requests,
            _runtime: runtime,
        }
    }

    /// `http://127.0.0.1:<port>`, to grant.
    pub fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}
