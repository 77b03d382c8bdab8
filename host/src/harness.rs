//! One plugin in an in-process host: the real runtime, sandbox and imports,
//! a catalog made of the entities given, grants and settings as given, and
//! no server. `greenroom plugin run` and the `greenroom-plugin-harness`
//! crate (tests of plugins in any language) are built on it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, anyhow, bail};
use serde_json::Value;

use crate::api::AppState;
use crate::catalog::EntityRef;
use crate::plugins::bindings::greenroom::plugin::types;
use crate::plugins::{Loaded, host::entity_record};

/// Builds a [`Harness`].
pub struct Builder {
    wasm: PathBuf,
    entities: Vec<String>,
    catalog_files: Vec<PathBuf>,
    hosts: Vec<String>,
    /// A loopback server standing in for the hosts the manifest names.
    stand_in: Option<String>,
    secrets: Vec<String>,
    settings: Vec<(String, String)>,
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
            catalog_files: Vec::new(),
            hosts: Vec::new(),
            stand_in: None,
            secrets: Vec::new(),
            settings: Vec::new(),
        }
    }
}

impl Builder {
    /// Adds an entity (one YAML document) to the fake catalog.
    pub fn entity(mut self, yaml: &str) -> Self {
        self.entities.push(yaml.to_string());
        self
    }

    /// Reads a catalog file where it is: the plugin reads files beside it
    /// (`source`), as it would beside an entity of the portal.
    pub fn catalog_file(mut self, path: impl AsRef<Path>) -> Self {
        self.catalog_files.push(path.as_ref().to_path_buf());
        self
    }

    /// A setting the plugin reads through `config` (as under
    /// `[plugins.config.<id>]` in greenroom.toml).
    pub fn setting(mut self, key: &str, value: &str) -> Self {
        self.settings.push((key.to_string(), value.to_string()));
        self
    }

    /// Grants the plugin an origin (`scheme://host:port`).
    pub fn grant_host(mut self, origin: &str) -> Self {
        self.hosts.push(origin.to_string());
        self
    }

    /// Grants `origin`, a server of recorded answers standing in for the
    /// hosts the plugin's manifest names: the plugin may reach it (and send
    /// its secrets there) though its manifest does not ask for it.
    pub fn stand_in(mut self, origin: &str) -> Self {
        self.hosts.push(origin.to_string());
        self.stand_in = Some(origin.to_string());
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

        let mut targets = Vec::new();
        if !self.entities.is_empty() {
            let file = dir.path().join("catalog.yaml");
            std::fs::write(&file, self.entities.join("\n---\n"))?;
            targets.push(file);
        }
        let quote = |list: &[String]| {
            list.iter()
                .map(|s| toml::Value::String(s.clone()).to_string())
                .collect::<Vec<_>>()
                .join(", ")
        };
        // Grants are by plugin id, read from the plugin itself.
        let mut bytes = std::fs::read(&self.wasm)
            .with_context(|| format!("cannot read {}", self.wasm.display()))?;
        let mut manifest = crate::plugins::Manifest::from_wasm(&bytes)
            .map_err(|e| anyhow!("{}: {e}", self.wasm.display()))?;
        if let Some(origin) = &self.stand_in
            && !manifest
                .hosts
                .iter()
                .any(|h| h == crate::plugins::manifest::ANY_HOST)
        {
            manifest.hosts.push(origin.clone());
            bytes = manifest.replace_in(&bytes)?;
        }
        std::fs::write(dir.path().join("plugins/plugin.wasm"), &bytes)?;
        let id = manifest.id;
        let mut config = format!(
            "[server]\ndata_dir = \"data\"\n[plugins]\ndir = \"plugins\"\nfacts_interval = \"0s\"\nevents_interval = \"0s\"\n[[plugins.grants]]\nid = \"{id}\"\nhosts = [{}]\nsecrets = [{}]\n[plugins.config.\"{id}\"]\n",
            quote(&self.hosts),
            quote(&self.secrets)
        );
        for (key, value) in &self.settings {
            config.push_str(&format!(
                "{} = {}\n",
                toml::Value::String(key.clone()),
                toml::Value::String(value.clone())
            ));
        }
        for file in &self.catalog_files {
            targets.push(
                std::path::absolute(file)
                    .with_context(|| format!("cannot find {}", file.display()))?,
            );
        }
        for target in &targets {
            config.push_str(&format!(
                "[[catalog.locations]]\ntarget = {}\n",
                toml::Value::String(target.to_string_lossy().into_owned())
            ));
        }
        let path = dir.path().join("greenroom.toml");
        std::fs::write(&path, config)?;
        let portal = crate::Portal::open(crate::config::Config::load(&path)?)?;
        let state = portal.state;
        for location in state.store.locations.locations()? {
            state
                .refresher
                .ingestor()
                .refresh(&state.store, &location)?;
        }
        let problems = state.store.locations.problems(None)?;
        if let Some(p) = problems.first() {
            bail!("the catalog is invalid: {}: {}", p.source, p.message);
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

    /// The catalog's entities, in the order they were stored.
    pub fn entity_refs(&self) -> anyhow::Result<Vec<String>> {
        let mut refs = Vec::new();
        self.state.store.catalog.each_entity(500, &mut |json| {
            if let Some(e) = entity_record(json) {
                refs.push(e.entity_ref);
            }
        })?;
        Ok(refs)
    }

    /// The actions the plugin offers on an entity.
    pub fn actions(&self, entity_ref: &str) -> anyhow::Result<Vec<types::Action>> {
        let (plugin, entity) = (self.plugin()?, self.entity(entity_ref)?);
        Ok(plugin.actions(&entity, &self.state.plugins.limits())?)
    }

    /// An entity of the fake catalog, as plugins receive it.
    pub fn entity(&self, entity_ref: &str) -> anyhow::Result<types::Entity> {
        let r = EntityRef::parse(entity_ref, Some("component"), "default")?;
        let json = self
            .state
            .store
            .catalog
            .entity_by_ref(&r, &[])?
            .with_context(|| format!("no entity {r} in the test catalog"))?;
        entity_record(json).context("unreadable entity")
    }

    /// The plugin's cards for an entity, as the web UI receives them.
    pub fn cards(&self, entity_ref: &str) -> anyhow::Result<Vec<Value>> {
        let (plugin, entity) = (self.plugin()?, self.entity(entity_ref)?);
        let etag = crate::plugins::host::entity_etag(&entity);
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

    /// Runs action `id` as the portal would: offered on the entity now,
    /// `input` (a JSON object) checked against its form, `actor` acting.
    pub fn run_action(
        &self,
        id: &str,
        entity_ref: &str,
        input: &str,
        actor: &str,
    ) -> anyhow::Result<String> {
        let (plugin, entity) = (self.plugin()?, self.entity(entity_ref)?);
        let limits = self.state.plugins.limits();
        let action = plugin
            .actions(&entity, &limits)?
            .into_iter()
            .find(|a| a.id == id)
            .with_context(|| format!("the plugin offers no action '{id}' on {entity_ref}"))?;
        let sent =
            match serde_json::from_str::<Value>(if input.trim().is_empty() { "{}" } else { input })
            {
                Ok(Value::Object(o)) => o,
                _ => bail!("the action's input must be a JSON object, e.g. {{\"ref\": \"main\"}}"),
            };
        let (checked, raw) = crate::plugins::inputs::prepare(&plugin, &action, sent)?;
        Ok(plugin.run_action(id, &entity, &checked, &raw, actor, &limits)?)
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

/// A fact as `greenroom plugin run` prints it.
pub fn fact_json(f: &types::Fact) -> Value {
    let value = match &f.value {
        types::FactValue::Number(n) => serde_json::json!(n),
        types::FactValue::Text(t) => serde_json::json!(t),
        types::FactValue::Flag(b) => serde_json::json!(b),
    };
    serde_json::json!({"name": f.name, "value": value, "url": f.url})
}

/// An event as `greenroom plugin run` prints it.
pub fn event_json(e: &types::Event) -> Value {
    serde_json::json!({
        "id": e.id,
        "kind": e.kind,
        "entityRef": e.entity_ref,
        "title": e.title,
        "url": e.url,
        "atMs": e.at_ms,
        "tone": crate::plugins::tone(e.tone),
        "actor": e.actor,
    })
}

/// An action as `greenroom plugin run` prints it.
pub use crate::plugins::inputs::action_json;

/// What `greenroom plugin run` asks.
#[derive(Debug, Clone, clap::Args)]
pub struct Run {
    /// The plugin's `.wasm`.
    pub file: PathBuf,
    /// A catalog file (one or more entities). The plugin reads the files
    /// beside it, as beside an entity of the portal.
    #[arg(long)]
    pub entity: PathBuf,
    /// The entity to call for, e.g. component:default/pay (the file's
    /// first entity otherwise).
    #[arg(long = "ref")]
    pub entity_ref: Option<String>,
    /// cards, facts, events, actions or run:<action-id>.
    #[arg(long, default_value = "cards")]
    pub call: String,
    /// A setting the plugin reads through `config`, key=value; in the
    /// value, {upstream} is the --upstream server's address.
    #[arg(long = "set")]
    pub settings: Vec<String>,
    /// A secret the plugin may send, NAME=value.
    #[arg(long = "secret")]
    pub secrets: Vec<String>,
    /// An origin the plugin may reach, e.g. https://api.github.com.
    #[arg(long = "host")]
    pub hosts: Vec<String>,
    /// Serves this folder on a loopback port in place of the hosts the
    /// plugin's manifest names (granted to it, with its secrets): GET /a/b
    /// answers the file a/b.
    #[arg(long)]
    pub upstream: Option<PathBuf>,
    /// The JSON input of run:<action-id>, checked against the action's
    /// form as the portal checks it.
    #[arg(long, default_value = "{}")]
    pub input: String,
    /// Who runs run:<action-id>, as a catalog ref.
    #[arg(long = "as", default_value = "user:default/plugin-author")]
    pub actor: String,
    /// After the answer, makes the same call this many times more, each in
    /// a fresh sandbox as the portal does, and adds their timing
    /// (`timing.p50Us`, `timing.p99Us`) to the answer; not for run:.
    #[arg(long, default_value_t = 0)]
    pub repeat: usize,
}

impl Run {
    /// `call` of `file` for the first entity of `entity`, with nothing
    /// else given.
    pub fn new(file: impl Into<PathBuf>, entity: impl Into<PathBuf>, call: &str) -> Run {
        Run {
            file: file.into(),
            entity: entity.into(),
            entity_ref: None,
            call: call.into(),
            settings: Vec::new(),
            secrets: Vec::new(),
            hosts: Vec::new(),
            upstream: None,
            input: "{}".into(),
            actor: "user:default/plugin-author".into(),
            repeat: 0,
        }
    }
}

/// Calls a plugin of any language in a host of its own and answers what it
/// returned as JSON.
pub fn run(request: &Run) -> anyhow::Result<Value> {
    let served = request.upstream.as_deref().map(serve_folder).transpose()?;
    let origin = served.as_ref().map(|(origin, _)| origin.clone());
    let mut harness = Harness::builder(&request.file).catalog_file(&request.entity);
    for host in &request.hosts {
        harness = harness.grant_host(host);
    }
    if let Some(origin) = &origin {
        harness = harness.stand_in(origin);
    }
    for pair in &request.settings {
        let (key, value) = pair
            .split_once('=')
            .with_context(|| format!("--set {pair}: write key=value"))?;
        let value = value.replace("{upstream}", origin.as_deref().unwrap_or(""));
        harness = harness.setting(key, &value);
    }
    for pair in &request.secrets {
        let (name, value) = pair
            .split_once('=')
            .with_context(|| format!("--secret {pair}: write NAME=value"))?;
        harness = harness.secret(name, value);
    }
    let harness = harness.build()?;
    let target = match &request.entity_ref {
        Some(r) => r.clone(),
        None => harness
            .entity_refs()?
            .into_iter()
            .next()
            .with_context(|| format!("{} holds no entity", request.entity.display()))?,
    };
    if request.repeat > 0 && request.call.starts_with("run:") {
        bail!("--repeat: an action changes things upstream; time cards, facts, events or actions");
    }
    let mut answer = call(&harness, request, &target)?;
    if request.repeat > 0 {
        let mut samples = Vec::with_capacity(request.repeat);
        for _ in 0..request.repeat {
            let started = std::time::Instant::now();
            call(&harness, request, &target)?;
            samples.push(started.elapsed());
        }
        samples.sort();
        let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
        let micros = |d: std::time::Duration| (d.as_secs_f64() * 1e7).round() / 10.0;
        answer["timing"] = serde_json::json!({
            "calls": request.repeat,
            "p50Us": micros(at(0.5)),
            "p99Us": micros(at(0.99)),
        });
    }
    Ok(answer)
}

/// One call of `request.call` for `target`, as JSON.
fn call(harness: &Harness, request: &Run, target: &str) -> anyhow::Result<Value> {
    let list = |items: Vec<Value>| Value::Array(items);
    Ok(match request.call.as_str() {
        "cards" => serde_json::json!({ "cards": harness.cards(target)? }),
        "facts" => serde_json::json!({
            "facts": list(harness.facts(target)?.iter().map(fact_json).collect())
        }),
        "events" => {
            let day_ago = crate::store::now_ms() as u64 - 24 * 3_600_000;
            serde_json::json!({
                "events": list(harness.events(day_ago)?.iter().map(event_json).collect())
            })
        }
        "actions" => serde_json::json!({
            "actions": list(harness.actions(target)?.iter().map(action_json).collect())
        }),
        other => match other.strip_prefix("run:") {
            Some(id) => serde_json::json!({
                "message": harness.run_action(id, target, &request.input, &request.actor)?
            }),
            None => bail!("--call {other}: use cards, facts, events, actions or run:<action-id>"),
        },
    })
}

/// Serves `dir` on a loopback port until the returned runtime is dropped;
/// answers with its origin.
fn serve_folder(dir: &Path) -> anyhow::Result<(String, tokio::runtime::Runtime)> {
    if !dir.is_dir() {
        bail!("--upstream {}: not a folder", dir.display());
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
    let origin = format!("http://{}", listener.local_addr()?);
    let app = axum::Router::new().fallback_service(tower_http::services::ServeDir::new(dir));
    runtime.spawn(async move { axum::serve(listener, app).await });
    Ok((origin, runtime))
}
