//! Starting a portal on a temporary folder, and a loopback file server for
//! URL locations.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use greenroom::api::AppState;
use greenroom::config::Config;
use serde_json::Value;
use tokio::sync::oneshot;

pub use crate::pg_server::{PgServer, pg_server};

/// A running portal on 127.0.0.1 with its own folder.
pub struct Portal {
    pub dir: tempfile::TempDir,
    pub base: String,
    pub http: reqwest::Client,
    pub state: AppState,
    stop: Option<oneshot::Sender<()>>,
    /// The PostgreSQL server the portal's store is on, if it is.
    _database: Option<Arc<PgServer>>,
}

/// Whether the tests' portals keep their store in PostgreSQL
/// (`GREENROOM_TEST_STORE=postgres`; `cargo xtask test` runs the portal
/// tests that way too) rather than SQLite in their data folder.
pub fn on_postgres() -> bool {
    std::env::var("GREENROOM_TEST_STORE").is_ok_and(|v| v == "postgres")
}

impl Drop for Portal {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

/// Writes `files` (relative path, content) under `dir`.
pub fn write_files(dir: &Path, files: &[(&str, &str)]) {
    for (path, text) in files {
        let p = dir.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
}

impl Portal {
    /// Starts a portal whose `greenroom.toml` is `config_toml` (with the
    /// data folder set to the temp dir), after writing `files` beside it.
    /// Returns once the first refresh of every location finished.
    pub async fn start(config_toml: &str, files: &[(&str, &str)]) -> Portal {
        let dir = tempfile::tempdir().unwrap();
        write_files(dir.path(), files);
        Self::start_in(dir, config_toml).await
    }

    /// Starts a portal in `dir` (files already written there) whose
    /// `greenroom.toml` is `config_toml` under a `[server]` table that
    /// sets the data folder; keys at its start belong to `[server]`.
    pub async fn start_in(dir: tempfile::TempDir, config_toml: &str) -> Portal {
        let path = dir.path().join("greenroom.toml");
        std::fs::write(
            &path,
            format!("[server]\ndata_dir = \"data\"\n{config_toml}"),
        )
        .unwrap();
        Self::start_with(dir, Config::load(&path).unwrap()).await
    }

    pub async fn start_with(dir: tempfile::TempDir, config: Config) -> Portal {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        Self::start_on(dir, listener, config).await
    }

    /// Starts a portal on a listener bound beforehand (a config that names
    /// its own address, like `server.public_url`, needs the port first).
    pub async fn start_on(
        dir: tempfile::TempDir,
        listener: tokio::net::TcpListener,
        mut config: Config,
    ) -> Portal {
        let database = (on_postgres() && config.server.database.is_none()).then(|| {
            let server = pg_server();
            config.server.database = Some(server.database());
            server
        });
        let portal = greenroom::Portal::open(config).unwrap();
        let state = portal.state.clone();
        // An administrator's token, as `greenroom token create --scope
        // admin` makes one, for the tests' administrative calls.
        let record = greenroom::auth::token_record(
            "test-admin",
            &["admin".to_string()],
            None,
            None,
            "tests",
        )
        .unwrap();
        let hash = greenroom::auth::token_hash(Self::ADMIN);
        if state.store.access.token_by_hash(&hash).unwrap().is_none() {
            state.store.access.token_create(&record, &hash).unwrap();
        }
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(portal.serve(listener, async {
            let _ = stopped.await;
        }));
        let p = Portal {
            dir,
            base: format!("http://{addr}"),
            http: reqwest::Client::new(),
            state,
            stop: Some(stop),
            _database: database,
        };
        p.wait_ready().await;
        p
    }

    pub fn write(&self, rel: &str, text: &str) {
        write_files(self.dir.path(), &[(rel, text)]);
    }

    async fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok((200, h)) = self.try_get("/healthz").await
                && h["ready"] == true
            {
                return;
            }
            assert!(Instant::now() < deadline, "portal did not become ready");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Reads every location again, now.
    pub async fn refresh(&self) {
        self.state.refresher.refresh_all().await;
    }

    async fn try_get(&self, path: &str) -> reqwest::Result<(u16, Value)> {
        let resp = self.http.get(format!("{}{path}", self.base)).send().await?;
        let status = resp.status().as_u16();
        let body = resp.json().await.unwrap_or(Value::Null);
        Ok((status, body))
    }

    /// GETs a JSON path; returns status and body.
    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.try_get(path).await.unwrap()
    }

    /// GETs a path and returns the response as it came (pages, files).
    pub async fn fetch(&self, path: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap()
    }

    /// GETs a path that must answer 200.
    pub async fn ok(&self, path: &str) -> Value {
        let (status, body) = self.get(path).await;
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }

    /// The secret of the administrator token every test portal has.
    pub const ADMIN: &str = "grt_test_admin_token";

    /// POSTs as an administrator.
    pub async fn admin_post(&self, path: &str, body: &Value) -> (u16, Value) {
        self.post_as(Some(Self::ADMIN), path, body).await
    }

    /// GETs a JSON path as an administrator (reads that need a sign-in).
    pub async fn admin_get(&self, path: &str) -> Value {
        let resp = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(Self::ADMIN)
            .send()
            .await
            .unwrap();
        assert_eq!(
            resp.status().as_u16(),
            200,
            "GET {path} as an administrator"
        );
        resp.json().await.unwrap()
    }

    /// POSTs as nobody.
    pub async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        self.post_as(None, path, body).await
    }

    async fn post_as(&self, token: Option<&str>, path: &str, body: &Value) -> (u16, Value) {
        let mut req = self.http.post(format!("{}{path}", self.base)).json(body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    pub async fn entity(&self, kind: &str, name: &str) -> Option<Value> {
        match self
            .get(&format!(
                "/api/catalog/entities/by-name/{kind}/default/{name}"
            ))
            .await
        {
            (200, e) => Some(e),
            (404, _) => None,
            (s, b) => panic!("unexpected {s}: {b}"),
        }
    }

    /// The entity, once it is there (a location registered through the
    /// API is read in the background); panics after 20 s.
    pub async fn until_entity(&self, kind: &str, name: &str) -> Value {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            if let Some(e) = self.entity(kind, name).await {
                return e;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{kind} {name} never appeared"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    /// Waits (20 s at most) until search finds `q`: it indexes behind the
    /// catalog.
    pub async fn until_found(&self, q: &str) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while self.ok(&format!("/api/search?q={q}")).await["total"]
            .as_u64()
            .unwrap_or(0)
            == 0
        {
            assert!(
                std::time::Instant::now() < deadline,
                "search never found {q}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    pub async fn problems(&self) -> Vec<Value> {
        self.ok("/api/catalog/problems").await["items"]
            .as_array()
            .unwrap()
            .clone()
    }
}

/// The relations of an entity as `type targetRef` strings.
pub fn relations(entity: &Value) -> Vec<String> {
    entity["relations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            format!(
                "{} {}",
                r["type"].as_str().unwrap(),
                r["targetRef"].as_str().unwrap()
            )
        })
        .collect()
}

/// A loopback HTTP server serving files from a folder; a file whose name
/// starts with `hang` never answers, and anything missing is a 404. It
/// records each request's path (with its query) and `Authorization`.
/// Requests received: path with query, `Authorization`.
type Seen = Arc<Mutex<Vec<(String, Option<String>)>>>;

pub struct FileServer {
    pub addr: SocketAddr,
    pub root: PathBuf,
    seen: Seen,
    _stop: oneshot::Sender<()>,
}

impl FileServer {
    pub async fn start(root: &Path) -> FileServer {
        use axum::extract::{Path as UrlPath, State};
        use axum::http::{HeaderMap, StatusCode, Uri};
        type Served = (PathBuf, Seen);
        async fn file(
            State((root, seen)): State<Served>,
            uri: Uri,
            headers: HeaderMap,
            UrlPath(path): UrlPath<String>,
        ) -> Result<String, StatusCode> {
            let authorization = headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            seen.lock().unwrap().push((uri.to_string(), authorization));
            if path
                .rsplit('/')
                .next()
                .unwrap_or_default()
                .starts_with("hang")
            {
                tokio::time::sleep(Duration::from_secs(3600)).await;
            }
            std::fs::read_to_string(root.join(&path)).map_err(|_| StatusCode::NOT_FOUND)
        }
        let seen = Arc::new(Mutex::new(Vec::new()));
        let app = axum::Router::new()
            .route("/{*path}", axum::routing::get(file))
            .with_state((root.to_path_buf(), seen.clone()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await
                .unwrap();
        });
        FileServer {
            addr,
            root: root.to_path_buf(),
            seen,
            _stop: stop,
        }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The requests received so far: path with query, `Authorization`.
    pub fn requests(&self) -> Vec<(String, Option<String>)> {
        self.seen.lock().unwrap().clone()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}/{path}", self.addr)
    }

    /// `[catalog] allowed_origins` for this server, to append to a config.
    pub fn allowed(&self) -> String {
        format!(
            "\n[catalog]\nallowed_origins = [\"http://{}\"]\n",
            self.addr
        )
    }
}

/// A Component document.
pub fn component(name: &str, owner: &str) -> String {
    format!(
        "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: {name}\nspec:\n  type: service\n  lifecycle: production\n  owner: {owner}\n"
    )
}

/// A Group document.
pub fn group(name: &str) -> String {
    format!(
        "apiVersion: backstage.io/v1alpha1\nkind: Group\nmetadata:\n  name: {name}\nspec:\n  type: team\n  children: []\n"
    )
}
