//! The `greenroom` command: `serve`, `validate`, `import`, `plugin`,
//! `facts push`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use greenroom::config::Config;
use greenroom::ingest::display_source;
use greenroom::store::ProblemRecord;

#[derive(Parser)]
#[command(name = "greenroom", version, about = "Greenroom developer portal")]
struct Cli {
    /// Config file; defaults to ./greenroom.toml when it exists.
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the portal: API, background refresh.
    Serve {
        /// Address to listen on (overrides server.addr).
        #[arg(long)]
        addr: Option<SocketAddr>,
    },
    /// Check catalog files or folders; print each problem as path:line:col: message.
    Validate {
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Register a file or URL location in the store and read it now.
    Import { target: String },
    /// Copy a SQLite store into an empty PostgreSQL database, checking
    /// every table's row count before it commits.
    Migrate {
        /// The SQLite store: a greenroom.db or the data folder holding it
        /// (`sqlite:` in front is allowed); default: this config's.
        #[arg(long)]
        from: Option<String>,
        /// The PostgreSQL database, postgres://user@host:port/db (the
        /// password from PGPASSWORD).
        #[arg(long)]
        to: String,
    },
    /// Plugins: list, inspect, install, grant.
    Plugin {
        #[command(subcommand)]
        command: PluginCommand,
    },
    /// Facts: push values from CI to a running portal.
    Facts {
        #[command(subcommand)]
        command: FactsCommand,
    },
    /// API tokens: create (the secret is printed once), list, revoke.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Makes a token and prints its secret, once; only a hash is stored.
    Create {
        #[arg(long)]
        name: String,
        /// facts:write, events:write, campaigns:write or admin; repeatable.
        #[arg(long = "scope", required = true)]
        scopes: Vec<String>,
        /// How long it lives, e.g. 90d; no expiry without it.
        #[arg(long)]
        expires: Option<String>,
        /// Whose it is, for the record, e.g. group:default/platform.
        #[arg(long)]
        owner: Option<String>,
    },
    /// Every token, without secrets.
    List,
    /// Revokes a token by id; it stops working at once.
    Revoke { id: String },
}

#[derive(Subcommand)]
enum FactsCommand {
    /// Sends facts about one entity, e.g. `--fact coverage.lines=71.3`.
    /// Numbers become numbers, true/false flags, anything else text;
    /// `name="3.11"` is text.
    Push {
        /// `[kind:][namespace/]name`; the kind defaults to component.
        #[arg(long)]
        entity: String,
        /// `name=value`, repeatable.
        #[arg(long = "fact", required = true)]
        facts: Vec<String>,
        /// Where the value can be checked (a CI run, a report).
        #[arg(long)]
        url: Option<String>,
        /// The portal (default: the config's server.addr).
        #[arg(long)]
        server: Option<String>,
        /// The environment variable holding a token with scope facts:write.
        #[arg(long, default_value = "GREENROOM_TOKEN")]
        token_env: String,
    },
}

#[derive(Subcommand)]
enum PluginCommand {
    /// The plugins in the plugins folder and whether they load.
    List,
    /// A plugin's manifest and interfaces; exits 1 when the host would refuse it.
    Inspect { file: PathBuf },
    /// Checks a plugin and puts it in the plugins folder; a running portal picks it up.
    Install { file: PathBuf },
    /// Adds a manifest (JSON file) to a component built without the Rust SDK.
    EmbedManifest {
        component: PathBuf,
        #[arg(long)]
        manifest: PathBuf,
        /// Where to write the result.
        #[arg(long, short)]
        output: PathBuf,
    },
    /// Writes a new plugin folder, ready to build: the contract, a manifest,
    /// a card, a sample entity, build.sh, test.sh and a README.
    New {
        /// The plugin's id: a-z, 0-9 and '-', starting with a letter.
        name: String,
        #[arg(long, value_enum, default_value = "rust")]
        lang: greenroom::plugins::scaffold::Lang,
        /// Where to create the folder <name>.
        #[arg(long, default_value = ".")]
        dir: PathBuf,
    },
    /// Builds a plugin folder (as `plugin new` writes them, in any of its
    /// languages) into <id>.wasm with its manifest, installing the
    /// language's toolchain from the package registries when it is missing.
    Build {
        #[arg(default_value = ".")]
        dir: PathBuf,
    },
    /// Builds a plugin folder, serves it in a portal of its own with the
    /// folder's catalog-info.yaml as the catalog, and builds and reloads it
    /// on every saved change.
    Dev {
        #[arg(default_value = ".")]
        dir: PathBuf,
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:7007")]
        addr: SocketAddr,
        /// A setting the plugin reads through `config`, key=value.
        #[arg(long = "set")]
        settings: Vec<String>,
        /// An origin granted beyond those the manifest names, e.g. for a
        /// manifest that asks for any host.
        #[arg(long = "host")]
        hosts: Vec<String>,
    },
    /// Calls a plugin built in any language in a host of its own and prints
    /// its answer as JSON: cards (the default), facts, events, actions, or
    /// run:<action-id>. Opens no store of yours.
    Run(greenroom::harness::Run),
    /// Measures a plugin: cold compile, cached load, fresh-instance cards calls.
    Bench {
        file: PathBuf,
        #[arg(long, default_value_t = 10_000)]
        calls: usize,
    },
    /// Grants a plugin hosts and secrets, in addition to what it has.
    Grant {
        id: String,
        /// `scheme://host[:port]`, e.g. https://api.github.com
        #[arg(long = "host")]
        hosts: Vec<String>,
        /// A secret name; its value comes from GREENROOM_SECRET_<NAME>.
        #[arg(long = "secret")]
        secrets: Vec<String>,
    },
}

fn main() -> ExitCode {
    // glibc gives each thread that allocates an arena of its own, up to
    // eight per core; freed memory stays in them. Two arenas held peak RSS
    // at 100,000 entities steady, where the default varied by 200 MiB
    // between identical runs (`cargo xtask bench catalog`).
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: called once, before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
    let cli = Cli::parse();
    // `plugin run` prints JSON an author reads: of the log, only problems
    // and what the plugin itself printed.
    let quiet = matches!(
        &cli.command,
        Command::Plugin {
            command: PluginCommand::Run(_)
        }
    );
    let default = if quiet {
        "warn,greenroom::plugins::runtime=info"
    } else {
        "info"
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default)),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn load_config(path: Option<&Path>) -> anyhow::Result<Config> {
    match path {
        Some(p) => Config::load(p),
        None if Path::new("greenroom.toml").exists() => Config::load(Path::new("greenroom.toml")),
        None => Ok(Config::in_dir(Path::new("."))),
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let mut config = load_config(cli.config.as_deref())?;
    match cli.command {
        Command::Serve { addr } => {
            if let Some(a) = addr {
                config.server.addr = a;
            }
            let runtime = tokio::runtime::Runtime::new()?;
            runtime.block_on(serve(config))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Validate { paths } => validate(config, &paths),
        Command::Import { target } => import(config, &target),
        Command::Migrate { from, to } => migrate(&config, from.as_deref(), &to),
        Command::Plugin { command } => plugin(config, command),
        Command::Token { command } => token(config, command),
        Command::Facts {
            command:
                FactsCommand::Push {
                    entity,
                    facts,
                    url,
                    server,
                    token_env,
                },
        } => {
            let server = server.unwrap_or_else(|| format!("http://{}", config.server.addr));
            push_facts(&server, &token_env, &entity, &facts, url.as_deref())
        }
    }
}

/// The plugin registry of a config, without a server, with its store.
fn plugins(
    config: &Config,
) -> anyhow::Result<(
    greenroom::plugins::Plugins,
    std::sync::Arc<greenroom::store::Store>,
)> {
    let store = std::sync::Arc::new(greenroom::store::Store::configured(
        config.server.database.as_deref(),
        &config.store_path(),
    )?);
    let registry = greenroom::plugins::Plugins::new(config, store.clone())?;
    Ok((registry, store))
}

/// A runtime that only checks files: no store, no compiled cache.
fn inspector(config: &Config) -> anyhow::Result<greenroom::plugins::runtime::Runtime> {
    greenroom::plugins::runtime::Runtime::new(
        None,
        config.plugins.memory_limit_mib * 1024 * 1024,
        1,
    )
}

fn plugin(config: Config, command: PluginCommand) -> anyhow::Result<ExitCode> {
    let dir = config.plugins_dir();
    let need_dir = || {
        dir.clone()
            .context("no plugins folder: set [plugins] dir in greenroom.toml")
    };
    // New, build, run, inspect, embed-manifest and install read and write only
    // the files they are given: no store of the portal's, no compiled cache.
    match command {
        PluginCommand::Inspect { file } => {
            let checked = std::fs::read(&file)
                .map_err(anyhow::Error::from)
                .and_then(|bytes| inspector(&config)?.inspect(&bytes));
            match checked {
                Ok((manifest, interfaces)) => {
                    println!(
                        "{}",
                        serde_json::to_string_pretty(
                            &serde_json::json!({"manifest": manifest, "exports": interfaces.exports, "imports": interfaces.imports})
                        )?
                    );
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => {
                    println!("{}: refused: {e:#}", file.display());
                    Ok(ExitCode::from(1))
                }
            }
        }
        PluginCommand::EmbedManifest {
            component,
            manifest,
            output,
        } => {
            let parsed = greenroom::plugins::build::read_manifest(&manifest)?;
            let bytes = std::fs::read(&component)
                .with_context(|| format!("cannot read {}", component.display()))?;
            let out = parsed
                .embed(&bytes)
                .with_context(|| format!("{}", component.display()))?;
            std::fs::write(&output, out)?;
            println!(
                "wrote {} with the manifest of {} {}",
                output.display(),
                parsed.id,
                parsed.version
            );
            Ok(ExitCode::SUCCESS)
        }
        PluginCommand::Install { file } => {
            let (manifest, _) = std::fs::read(&file)
                .map_err(anyhow::Error::from)
                .and_then(|bytes| inspector(&config)?.inspect(&bytes))
                .with_context(|| format!("{} cannot be installed", file.display()))?;
            let dir = need_dir()?;
            std::fs::create_dir_all(&dir)?;
            let target = dir.join(format!("{}.wasm", manifest.id));
            // Write beside, then rename: a watching portal never sees half a file.
            let tmp = dir.join(format!(".{}.wasm.tmp", manifest.id));
            std::fs::copy(&file, &tmp)?;
            std::fs::rename(&tmp, &target)?;
            println!(
                "installed {} {} as {}",
                manifest.id,
                manifest.version,
                target.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        PluginCommand::New { name, lang, dir } => {
            let root = greenroom::plugins::scaffold::new(&name, lang, &dir)?;
            println!(
                "created {}: `greenroom plugin build` there (or ./build.sh) builds {name}.wasm, ./test.sh shows its card",
                root.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        PluginCommand::Build { dir } => {
            let built = greenroom::plugins::build::build(&dir)?;
            println!("built {}", built.display());
            Ok(ExitCode::SUCCESS)
        }
        PluginCommand::Dev {
            dir,
            addr,
            settings,
            hosts,
        } => {
            tokio::runtime::Runtime::new()?.block_on(async {
                let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| {
                    format!("cannot listen on {addr}; choose another with --addr")
                })?;
                let options = greenroom::dev::Options { settings, hosts };
                greenroom::dev::dev(&dir, listener, &options, async {
                    let _ = tokio::signal::ctrl_c().await;
                })
                .await
            })?;
            Ok(ExitCode::SUCCESS)
        }
        PluginCommand::Run(request) => {
            let answer = greenroom::harness::run(&request)?;
            println!("{}", serde_json::to_string_pretty(&answer)?);
            Ok(ExitCode::SUCCESS)
        }
        PluginCommand::List => {
            let (registry, _) = plugins(&config)?;
            registry.load_dir(&need_dir()?);
            for p in registry.list() {
                match (&p.id, &p.error) {
                    (Some(id), _) => println!(
                        "{id} {} {} exports: {}",
                        p.version.as_deref().unwrap_or("?"),
                        p.state,
                        p.exports.join(", ")
                    ),
                    (None, Some(e)) => println!("{} failed: {e}", p.file),
                    (None, None) => println!("{} failed", p.file),
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        PluginCommand::Bench { file, calls } => {
            let (registry, _) = plugins(&config)?;
            let r = registry.bench(&file, calls)?;
            println!(
                "cold_compile_ms={:.1} cached_load_ms={:.2} call_p50_us={:.1} call_p99_us={:.1}",
                r.cold_compile.as_secs_f64() * 1e3,
                r.cached_load.as_secs_f64() * 1e3,
                r.call_p50.as_secs_f64() * 1e6,
                r.call_p99.as_secs_f64() * 1e6
            );
            Ok(ExitCode::SUCCESS)
        }
        PluginCommand::Grant { id, hosts, secrets } => {
            for h in &hosts {
                greenroom::net::Origin::parse(h).map_err(|e| anyhow::anyhow!("--host {e}"))?;
            }
            let (registry, store) = plugins(&config)?;
            let mut grants = store.plugin_state.grants(&id)?.unwrap_or_default();
            grants.hosts.extend(
                hosts
                    .into_iter()
                    .filter(|h| !grants.hosts.contains(h))
                    .collect::<Vec<_>>(),
            );
            grants.secrets.extend(
                secrets
                    .into_iter()
                    .filter(|s| !grants.secrets.contains(s))
                    .collect::<Vec<_>>(),
            );
            store.plugin_state.set_grants(&id, &grants)?;
            println!(
                "{id} is granted hosts [{}] and secrets [{}]",
                grants.hosts.join(", "),
                grants.secrets.join(", ")
            );
            // A running portal reloads a plugin whose file changes: touch it
            // so the grant applies now.
            if let Some(dir) = dir {
                registry.load_dir(&dir);
                if let Some(p) = registry.loaded().into_iter().find(|p| p.manifest.id == id) {
                    std::fs::File::options()
                        .append(true)
                        .open(&p.file)?
                        .set_modified(std::time::SystemTime::now())?;
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let addr = config.server.addr;
    let portal = greenroom::Portal::open(config)?;
    let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| {
        format!("cannot listen on {addr}; is another greenroom running? choose another with --addr")
    })?;
    let local = listener.local_addr()?;
    println!("Greenroom is serving on http://{local}");
    portal
        .serve(listener, async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
}

fn print_problems(problems: &[ProblemRecord]) {
    for p in problems {
        let path = display_source(&p.source);
        let entity = p
            .entity_ref
            .as_deref()
            .map(|r| format!("{r}: "))
            .unwrap_or_default();
        match (p.line, p.column) {
            (Some(l), Some(c)) => println!("{path}:{l}:{c}: {entity}{}", p.message),
            _ => println!("{path}: {entity}{}", p.message),
        }
    }
}

fn validate(config: Config, paths: &[PathBuf]) -> anyhow::Result<ExitCode> {
    let portal = ingestor(&config)?;
    let targets: Vec<String> = paths
        .iter()
        .map(|p| {
            std::path::absolute(p)
                .unwrap_or_else(|_| p.clone())
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    let (problems, valid) = portal.check(&targets);
    print_problems(&problems);
    eprintln!("{valid} valid entities, {} problems", problems.len());
    Ok(if problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn ingestor(config: &Config) -> anyhow::Result<greenroom::ingest::Ingestor> {
    Ok(greenroom::ingest::Ingestor::new(
        std::sync::Arc::new(greenroom::kinds(config)?),
        greenroom::ingest::Reader::for_catalog(config)?,
        std::env::current_dir()?,
        greenroom::ingest::RefreshLimits::of(&config.catalog),
    ))
}

fn migrate(config: &Config, from: Option<&str>, to: &str) -> anyhow::Result<ExitCode> {
    let from = match from {
        Some(f) => std::path::PathBuf::from(f.strip_prefix("sqlite:").unwrap_or(f)),
        None => config.store_path(),
    };
    // A data folder names the store in it.
    let from = if from.is_dir() {
        from.join("greenroom.db")
    } else {
        from
    };
    let report = greenroom::store::migrate::sqlite_to_postgres(&from, to)?;
    for copied in &report {
        println!("{:<14} {:>10} rows", copied.table, copied.target);
    }
    println!(
        "copied {} into {to}; every table's rows are all there. Set server.database = \"{to}\" to serve from it.",
        from.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn import(config: Config, target: &str) -> anyhow::Result<ExitCode> {
    let (kind, target) = if target.starts_with("http://") || target.starts_with("https://") {
        ("url", target.to_string())
    } else {
        let path = std::path::absolute(target).with_context(|| format!("bad path {target}"))?;
        ("file", path.to_string_lossy().into_owned())
    };
    let store = greenroom::store::Store::configured(
        config.server.database.as_deref(),
        &config.store_path(),
    )?;
    let location = store
        .locations
        .ensure_location(kind, &target, greenroom::store::Origin::Api)?;
    let summary = ingestor(&config)?.refresh(&store, &location)?;
    println!(
        "imported {kind}:{target} (location {}): {} added, {} updated, {} unchanged, {} removed",
        location.id, summary.added, summary.updated, summary.unchanged, summary.removed
    );
    let problems = store.locations.problems(Some(&location.id))?;
    print_problems(&problems);
    Ok(if problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// `greenroom facts push`: one POST /api/facts; the server's answer is
/// printed, and its error message when it refuses.
fn push_facts(
    server: &str,
    token_env: &str,
    entity: &str,
    facts: &[String],
    url: Option<&str>,
) -> anyhow::Result<ExitCode> {
    let token = std::env::var(token_env)
        .ok()
        .filter(|t| !t.is_empty())
        .with_context(|| {
            format!("set {token_env} to a token with the scope facts:write (server.tokens)")
        })?;
    let mut values = serde_json::Map::new();
    for fact in facts {
        let (name, value) = fact
            .split_once('=')
            .with_context(|| format!("--fact '{fact}' is not name=value"))?;
        let value = match value {
            // `name="3.11"`: text, whatever it looks like.
            v if v.len() >= 2 && v.starts_with('"') && v.ends_with('"') => {
                serde_json::Value::String(v[1..v.len() - 1].to_string())
            }
            "true" => serde_json::Value::Bool(true),
            "false" => serde_json::Value::Bool(false),
            v => v
                .parse::<f64>()
                .ok()
                .filter(|n| n.is_finite())
                .map(serde_json::Value::from)
                .unwrap_or_else(|| serde_json::Value::String(v.to_string())),
        };
        values.insert(name.trim().to_string(), value);
    }
    let mut body = serde_json::json!({"entityRef": entity, "facts": values});
    if let Some(u) = url {
        body["url"] = u.into();
    }
    let endpoint = format!("{}/api/facts", server.trim_end_matches('/'));
    let runtime = tokio::runtime::Runtime::new()?;
    let (status, answer) = runtime.block_on(async {
        let resp = reqwest::Client::new()
            .post(&endpoint)
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .with_context(|| format!("cannot reach {endpoint}"))?;
        let status = resp.status();
        let answer: serde_json::Value = resp.json().await.unwrap_or_default();
        anyhow::Ok((status, answer))
    })?;
    if status.is_success() {
        println!(
            "stored {} facts about {entity} ({} changed)",
            answer["stored"], answer["changed"]
        );
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!(
            "error: {endpoint} answered {status}: {}",
            answer["error"]["message"].as_str().unwrap_or("no message")
        );
        Ok(ExitCode::from(1))
    }
}

fn token(config: Config, command: TokenCommand) -> anyhow::Result<ExitCode> {
    let store = greenroom::store::Store::configured(
        config.server.database.as_deref(),
        &config.store_path(),
    )?;
    match command {
        TokenCommand::Create {
            name,
            scopes,
            expires,
            owner,
        } => {
            let record =
                greenroom::auth::token_record(&name, &scopes, expires.as_deref(), owner, "cli")
                    .map_err(|e| anyhow::anyhow!(e))?;
            let secret = greenroom::auth::new_token_secret();
            store
                .access
                .token_create(&record, &greenroom::auth::token_hash(&secret))?;
            eprintln!(
                "token '{}' ({}) with scopes {}; it is shown once, keep it now:",
                record.name,
                record.id,
                record.scopes.join(", ")
            );
            println!("{secret}");
        }
        TokenCommand::List => {
            let now = greenroom::store::now_ms();
            for t in store.access.tokens(None)? {
                let state = if t.revoked_ms.is_some() {
                    "revoked"
                } else if !t.live(now) {
                    "expired"
                } else {
                    "live"
                };
                println!(
                    "{}\t{}\t{}\t{}\t{}",
                    t.id,
                    t.name,
                    t.scopes.join(","),
                    t.owner.as_deref().unwrap_or("-"),
                    state
                );
            }
        }
        TokenCommand::Revoke { id } => {
            if !store.access.token_revoke(&id)? {
                eprintln!("no live token with id {id}");
                return Ok(ExitCode::from(1));
            }
            println!("revoked {id}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
