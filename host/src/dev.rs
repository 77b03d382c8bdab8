//! `greenroom plugin dev`: a plugin author's loop. The plugin folder is
//! built (`plugin build`, any language), served by a portal of its own
//! whose catalog is the folder's `catalog-info.yaml`, and built again on
//! every saved change; each good build replaces the plugin in the running
//! portal, so a reload of the page shows the new card.
//!
//! The portal keeps its store under `<folder>/.greenroom/dev/`. The plugin
//! is granted what its manifest asks for (hosts, secrets from
//! `GREENROOM_SECRET_<NAME>`) and its actions may run.

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::config::{Config, LocationConfig};
use crate::plugins::Manifest;

/// Folders of a plugin folder that hold what builds write, not sources.
const NOT_SOURCES: &[&str] = &[
    ".greenroom",
    "target",
    "node_modules",
    ".git",
    "__pycache__",
];

/// How long the folder must be quiet after a change before a build starts
/// (an editor's save, or `git checkout`, writes several files).
const QUIET: Duration = Duration::from_millis(300);

/// What the builder thread reports.
enum Built {
    Ok {
        file: PathBuf,
        manifest: Box<Manifest>,
    },
    Failed,
}

/// What `greenroom plugin dev` is given besides the folder.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The plugin's settings, `key=value`.
    pub settings: Vec<String>,
    /// Origins granted beyond those the manifest names (for a manifest
    /// that asks for any host, `*`).
    pub hosts: Vec<String>,
}

/// Runs the dev loop for the plugin folder `dir`, serving its portal on
/// `listener`, until `shutdown` resolves.
pub async fn dev(
    dir: &Path,
    listener: tokio::net::TcpListener,
    options: &Options,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let dir = std::path::absolute(dir).with_context(|| format!("bad folder {}", dir.display()))?;
    crate::plugins::build::Toolchain::of(&dir)?;
    for host in &options.hosts {
        crate::net::Origin::parse(host).map_err(|e| anyhow::anyhow!("--host {host}: {e}"))?;
    }
    let home = dir.join(".greenroom/dev");
    std::fs::create_dir_all(&home).with_context(|| format!("cannot create {}", home.display()))?;
    let mut config = Config::in_dir(&home);
    config.server.data_dir = PathBuf::from(".");
    let mut plugin_settings = toml::Table::new();
    for pair in &options.settings {
        let (key, value) = pair
            .split_once('=')
            .with_context(|| format!("--set {pair}: write key=value"))?;
        plugin_settings.insert(key.into(), toml::Value::String(value.into()));
    }
    let entities = dir.join("catalog-info.yaml");
    if entities.is_file() {
        config.catalog.locations.push(LocationConfig {
            kind: "file".into(),
            target: entities.display().to_string(),
        });
        // Edits to the sample entity show within seconds.
        config.catalog.refresh_interval = Duration::from_secs(2);
    } else {
        eprintln!(
            "{} is missing: the portal has no entity to show the plugin on (`greenroom plugin new` writes one)",
            entities.display()
        );
    }

    // Changes are watched before the first build, so that none is missed.
    let (changed_tx, changed) = mpsc::channel();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if let Ok(event) = event {
            let _ = changed_tx.send(event.paths);
        }
    })?;
    {
        use notify::Watcher;
        watcher
            .watch(&dir, notify::RecursiveMode::Recursive)
            .with_context(|| format!("cannot watch {}", dir.display()))?;
    }
    let (built_tx, mut built) = tokio::sync::mpsc::unbounded_channel();
    let root = dir.clone();
    std::thread::Builder::new()
        .name("greenroom-plugin-dev".into())
        .spawn(move || builder(&root, &changed, &built_tx))?;

    // The portal opens with the first good build: its id names the
    // settings and the actions allowed.
    let mut shutdown = Box::pin(shutdown);
    let (file, manifest) = loop {
        tokio::select! {
            () = &mut shutdown => return Ok(()),
            next = built.recv() => match next {
                Some(Built::Ok { file, manifest }) => break (file, manifest),
                Some(Built::Failed) => {}
                None => anyhow::bail!("the build loop of {} stopped", dir.display()),
            },
        }
    };
    let id = manifest.id.clone();
    config.plugins.config.insert(id.clone(), plugin_settings);
    config.plugins.allow_actions.push(id.clone());
    let portal = crate::Portal::open(config)?;
    let state = portal.state.clone();
    install(&state, file, &manifest, &options.hosts).await?;
    let url = format!("http://{}", listener.local_addr()?);
    eprintln!(
        "serving {id} on {url}: its cards are on every entity page of {url}/catalog (API: {url}/api/cards/<kind>/<namespace>/<name>); save a change to rebuild"
    );
    let mut serving = tokio::spawn(portal.serve(listener, shutdown));
    loop {
        tokio::select! {
            result = &mut serving => return result?,
            next = built.recv() => match next {
                Some(Built::Ok { file, manifest }) if manifest.id == id => {
                    install(&state, file, &manifest, &options.hosts).await?;
                }
                Some(Built::Ok { manifest, .. }) => eprintln!(
                    "the plugin's id changed from {id} to {}: stop and start `greenroom plugin dev` again",
                    manifest.id
                ),
                Some(Built::Failed) => {}
                None => anyhow::bail!("the build loop of {} stopped", dir.display()),
            },
        }
    }
}

/// Loads the plugin built in `file` into the portal (replacing the last
/// build), grants it what its manifest asks for (and `extra` origins),
/// says whether it loaded, and asks it for facts and events at once.
async fn install(
    state: &crate::api::AppState,
    file: PathBuf,
    manifest: &Manifest,
    extra: &[String],
) -> anyhow::Result<()> {
    let plugins = state.plugins.clone();
    let insights = state.insights.clone();
    let manifest = manifest.clone();
    let any = crate::plugins::manifest::ANY_HOST;
    let hosts: Vec<String> = manifest
        .hosts
        .iter()
        .filter(|h| *h != any)
        .chain(extra)
        .cloned()
        .collect();
    if manifest.hosts.iter().any(|h| h == any) && extra.is_empty() {
        eprintln!(
            "{} asks for any host: grant the ones it uses with --host https://…",
            manifest.id
        );
    }
    tokio::task::spawn_blocking(move || {
        plugins.load_file(&file);
        let wanted = crate::store::StoredGrants {
            hosts: hosts.clone(),
            secrets: manifest.secrets.clone(),
            // Each secret may go to every origin granted.
            secret_hosts: manifest
                .secrets
                .iter()
                .map(|s| (s.clone(), hosts.clone()))
                .collect::<BTreeMap<_, _>>(),
            disabled: false,
        };
        let info = |plugins: &crate::plugins::Plugins| {
            plugins
                .list()
                .into_iter()
                .find(|i| Path::new(&i.file) == file)
        };
        if info(&plugins).is_some_and(|i| i.granted.as_ref() != Some(&wanted)) {
            plugins.update_grants(&manifest.id, |g| *g = wanted)?;
        }
        match info(&plugins) {
            Some(i) if i.error.is_none() => {
                eprintln!("{} {} loaded", manifest.id, manifest.version);
                for (what, summary) in [
                    ("facts", insights.poll_facts_of(Some(&manifest.id))),
                    ("events", insights.poll_events_of(Some(&manifest.id))),
                ] {
                    if summary.calls > 0 {
                        eprintln!(
                            "  {what}: {} stored from {} calls, {} failed",
                            summary.stored, summary.calls, summary.failures
                        );
                    }
                }
            }
            Some(i) => eprintln!(
                "{} does not load, the portal keeps no version of it: {}",
                manifest.id,
                i.error.unwrap_or_default()
            ),
            None => eprintln!("{} does not load", manifest.id),
        }
        Ok(())
    })
    .await?
}

/// Builds `dir` now and after each change to its sources, reporting every
/// build; ends when the watcher or the receiver is gone.
fn builder(
    dir: &Path,
    changed: &mpsc::Receiver<Vec<PathBuf>>,
    report: &tokio::sync::mpsc::UnboundedSender<Built>,
) {
    let mut last = None;
    loop {
        // Taken before the build: a change saved during it builds again.
        let print = fingerprint(dir);
        if last != Some(print) {
            last = Some(print);
            let started = Instant::now();
            eprintln!("building {}", dir.display());
            let result = crate::plugins::build::build(dir).and_then(|file| {
                let manifest = Manifest::from_wasm(
                    &std::fs::read(&file)
                        .with_context(|| format!("cannot read {}", file.display()))?,
                )?;
                Ok((file, manifest))
            });
            let secs = started.elapsed().as_secs_f64();
            let message = match result {
                Ok((file, manifest)) => {
                    eprintln!("built {} in {secs:.1} s", file.display());
                    Built::Ok {
                        file,
                        manifest: Box::new(manifest),
                    }
                }
                Err(e) => {
                    eprintln!("build failed after {secs:.1} s: {e:#}\nwaiting for the next change");
                    Built::Failed
                }
            };
            if report.send(message).is_err() {
                return;
            }
        }
        // A change to a source, then quiet.
        loop {
            match changed.recv() {
                Ok(paths) if paths.iter().any(|p| is_source(dir, p)) => break,
                Ok(_) => {}
                Err(_) => return,
            }
        }
        loop {
            match changed.recv_timeout(QUIET) {
                Ok(_) => {}
                Err(mpsc::RecvTimeoutError::Timeout) => break,
                Err(mpsc::RecvTimeoutError::Disconnected) => return,
            }
        }
    }
}

/// Whether `path` is one of the plugin's sources rather than something a
/// build wrote.
fn is_source(root: &Path, path: &Path) -> bool {
    let Ok(relative) = path.strip_prefix(root) else {
        return false;
    };
    let built = relative
        .components()
        .any(|c| NOT_SOURCES.iter().any(|n| c.as_os_str() == *n));
    !built && relative.extension().is_none_or(|e| e != "wasm")
}

/// A hash of every source's path and contents: builds rewrite generated
/// files (Go's bindings) with the same bytes, which must not build again.
fn fingerprint(root: &Path) -> u64 {
    let mut hasher = std::hash::DefaultHasher::new();
    let mut pending = vec![root.to_path_buf()];
    let mut files = Vec::new();
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.filter_map(Result::ok) {
            let path = entry.path();
            if !is_source(root, &path) {
                continue;
            }
            match entry.file_type() {
                Ok(t) if t.is_dir() => pending.push(path),
                Ok(t) if t.is_file() => files.push(path),
                _ => {}
            }
        }
    }
    files.sort();
    for file in files {
        file.hash(&mut hasher);
        std::fs::read(&file).unwrap_or_default().hash(&mut hasher);
    }
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_builds_write_is_not_a_source() {
        let root = Path::new("/p");
        for built in [
            "/p/.greenroom/core.wasm",
            "/p/target/release/x",
            "/p/node_modules/a/index.js",
            "/p/hello.wasm",
            "/p/__pycache__/app.pyc",
            "/elsewhere/app.py",
        ] {
            assert!(!is_source(root, Path::new(built)), "{built}");
        }
        for source in [
            "/p/app.py",
            "/p/wit/world.wit",
            "/p/src/lib.rs",
            "/p/manifest.json",
        ] {
            assert!(is_source(root, Path::new(source)), "{source}");
        }
    }

    #[test]
    fn the_fingerprint_follows_contents_not_writes() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("app.py"), "a").unwrap();
        let first = fingerprint(dir.path());
        std::fs::write(dir.path().join("app.py"), "a").unwrap();
        std::fs::create_dir_all(dir.path().join(".greenroom")).unwrap();
        std::fs::write(dir.path().join(".greenroom/x"), "built").unwrap();
        std::fs::write(dir.path().join("p.wasm"), "built").unwrap();
        assert_eq!(fingerprint(dir.path()), first);
        std::fs::write(dir.path().join("app.py"), "b").unwrap();
        assert_ne!(fingerprint(dir.path()), first);
    }
}
