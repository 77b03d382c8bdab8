//! The `greenroom` command: `serve`, `validate`, `import`.

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
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
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
    Ok(greenroom::ingest::Ingestor {
        kinds: std::sync::Arc::new(config.kinds()?),
        reader: greenroom::ingest::Reader::new(
            config.catalog.max_file_bytes,
            config.catalog.fetch_timeout,
        )?,
        base_dir: std::env::current_dir()?,
    })
}

fn import(config: Config, target: &str) -> anyhow::Result<ExitCode> {
    let (kind, target) = if target.starts_with("http://") || target.starts_with("https://") {
        ("url", target.to_string())
    } else {
        let path = std::path::absolute(target).with_context(|| format!("bad path {target}"))?;
        ("file", path.to_string_lossy().into_owned())
    };
    let store = greenroom::store::Store::open(&config.store_path())?;
    let location = store.ensure_location(kind, &target, greenroom::store::Origin::Api)?;
    let summary = ingestor(&config)?.refresh(&store, &location)?;
    println!(
        "imported {kind}:{target} (location {}): {} added, {} updated, {} unchanged, {} removed",
        location.id, summary.added, summary.updated, summary.unchanged, summary.removed
    );
    let problems = store.problems(Some(&location.id))?;
    print_problems(&problems);
    Ok(if problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
