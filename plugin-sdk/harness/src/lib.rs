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
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::{Context, anyhow, bail};
use greenroom::api::AppState;
use greenroom::catalog::EntityRef;
use greenroom::plugins::bindings::greenroom::plugin::types;
use greenroom::plugins::{Loaded, host::entity_record};
use serde_json::Value;

/// Builds a [`Harness`].
pub struct Builder {
    wasm: PathBuf,
    entities: Vec<String>,
    hosts: Vec<String>,
    secrets: Vec<String>,
}

/// A host running one plugin.
pub struct Harness {
    _dir: tempfile::TempDir,
    state: AppState,
}

impl Harness {
    pub fn builder(wasm: impl AsRef<Path>) -> Builder {
        Builder {
            wasm: wasm.as_ref().to_path_buf(),
            entities: Vec::new(),
            hosts: Vec::new(),
            secrets: Vec::new(),
        }
    }
}

impl Builder {
    /// Adds an entity (one YAML document) to the fake catalog.
    pub fn entity(mut self, yaml: &str) -> Self {
        self.entities.push(yaml.to_string());
        self
    }

    /// Grants the plugin an origin, e.g. [`FakeUpstream::origin`].
    pub fn grant_host(mut self, origin: &str) -> Self {
        self.hosts.push(origin.to_string());
        self
    }

    /// Grants a secret and gives it a value (through the environment
    /// variable `GREENROOM_SECRET_<NAME>`, shared by the whole process).
    pub fn secret(mut self, name: &str, value: &str) -> Self {
        // SAFETY: tests that use the same secret name must agree on its
        // value; nothing else in the process reads these variables.
        unsafe { std::env::set_var(format!("GREENROOM_SECRET_{name}"), value) };
        self.secrets.push(name.to_string());
        self
    }

    pub fn build(self) -> anyhow::Result<Harness> {
        let dir = tempfile::tempdir()?;
        std::fs::create_dir_all(dir.path().join("plugins"))?;
        std::fs::copy(&self.wasm, dir.path().join("plugins/plugin.wasm"))
            .with_context(|| format!("cannot read {}", self.wasm.display()))?;
        std::fs::write(
            dir.path().join("catalog.yaml"),
            self.entities.join("\n---\n"),
        )?;
        let quote = |list: &[String]| {
            list.iter()
                .map(|s| format!("{s:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let config = format!(
            "[server]\ndata_dir = \"data\"\n[plugins]\ndir = \"plugins\"\nfacts_interval = \"0s\"\nevents_interval = \"0s\"\n[[plugins.grants]]\nid = \"{{id}}\"\nhosts = [{}]\nsecrets = [{}]\n[[catalog.locations]]\ntarget = \"catalog.yaml\"\n",
            quote(&self.hosts),
            quote(&self.secrets)
        );
        // Grants are by plugin id, read from the plugin itself.
        let bytes = std::fs::read(&self.wasm)?;
        let id = greenroom::plugins::Manifest::from_wasm(&bytes)?.id;
        let path = dir.path().join("greenroom.toml");
        std::fs::write(&path, config.replace("{id}", &id))?;
        let portal = greenroom::Portal::open(greenroom::config::Config::load(&path)?)?;
        let state = portal.state;
        for location in state.store.locations()? {
            state
                .refresher
                .ingestor()
                .refresh(&state.store, &location)?;
        }
        let problems = state.store.problems(None)?;
        if let Some(p) = problems.first() {
            bail!("the test catalog is invalid: {}", p.message);
        }
        Ok(Harness { _dir: dir, state })
    }
}

impl Harness {
    fn plugin(&self) -> anyhow::Result<Arc<Loaded>> {
        if let Some(p) = self.state.plugins.loaded().into_iter().next() {
            return Ok(p);
        }
        let error = self.state.plugins.list().into_iter().find_map(|i| i.error);
        Err(anyhow!(
            "the plugin did not load: {}",
            error.unwrap_or_default()
        ))
    }

    /// An entity of the fake catalog, as plugins receive it.
    pub fn entity(&self, entity_ref: &str) -> anyhow::Result<types::Entity> {
        let r = EntityRef::parse(entity_ref, Some("component"), "default")?;
        let json = self
            .state
            .store
            .entity_by_ref(&r, &[])?
            .with_context(|| format!("no entity {r} in the test catalog"))?;
        entity_record(json).context("unreadable entity")
    }

    /// The plugin's cards for an entity, as the web UI receives them.
    pub fn cards(&self, entity_ref: &str) -> anyhow::Result<Vec<Value>> {
        let (plugin, entity) = (self.plugin()?, self.entity(entity_ref)?);
        let etag = greenroom::plugins::host::entity_etag(&entity);
        Ok(self.state.plugins.cards(&plugin, &entity, &etag, true)?)
    }

    pub fn facts(&self, entity_ref: &str) -> anyhow::Result<Vec<types::Fact>> {
        let (plugin, entity) = (self.plugin()?, self.entity(entity_ref)?);
        Ok(plugin.facts(&entity, &self.state.plugins.limits())?)
    }

    pub fn events(&self, since_ms: u64) -> anyhow::Result<Vec<types::Event>> {
        Ok(self
            .plugin()?
            .events(since_ms, &self.state.plugins.limits())?)
    }

    pub fn run_action(&self, id: &str, entity_ref: &str, input: &str) -> anyhow::Result<String> {
        let (plugin, entity) = (self.plugin()?, self.entity(entity_ref)?);
        Ok(plugin.run_action(id, &entity, input, &self.state.plugins.limits())?)
    }

    /// The plugin's health after the calls so far.
    pub fn health(&self) -> anyhow::Result<Value> {
        let info = self
            .state
            .plugins
            .list()
            .into_iter()
            .next()
            .context("no plugin")?;
        Ok(serde_json::to_value(info.health)?)
    }
}

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
