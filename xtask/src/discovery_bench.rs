//! `cargo xtask bench discovery --repos N`: the GitHub plugin's discovery
//! of an organisation of N repositories (three in five with a catalog
//! file, the rest suggested) on the loopback GitHub stand-in, in a
//! release server; then signed `push` deliveries, each changing one
//! repository's catalog file, timed until the change is searchable.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::bench::{append_row, quantile_ms, release_bin, start, wait_ready};
use crate::http::Conn;
use crate::tools;

const SECRET_ENV: &str = "GREENROOM_SECRET_BENCH_WEBHOOK";
const SECRET: &str = "bench-webhook-secret";
const ORG: &str = "bench";

/// Deliveries timed.
const DELIVERIES: usize = 100;

pub fn run(repos: usize) -> anyhow::Result<()> {
    if repos < 100 {
        bail!("--repos must be at least 100");
    }
    let bin = release_bin("greenroom", "greenroom")?;
    let github = tools::build_plugin("github")?;
    let runtime = tokio::runtime::Runtime::new()?;
    let upstream = runtime.block_on(greenroom_upstreams::Upstreams::start(
        "127.0.0.1:0".parse()?,
    ))?;
    upstream.set_org(ORG, greenroom_upstreams::generated_org(ORG, repos));

    let dir = tools::target_dir()?.join(format!("bench/discovery-{repos}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("plugins"))?;
    std::fs::copy(&github, dir.join("plugins/github.wasm"))?;
    let teams: Vec<String> = (0..10)
        .map(|i| format!("apiVersion: backstage.io/v1alpha1\nkind: Group\nmetadata:\n  name: team-{i}\nspec:\n  type: team\n  children: []\n"))
        .collect();
    std::fs::write(dir.join("teams.yaml"), teams.join("---\n"))?;
    let config = dir.join("greenroom.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\ndata_dir = \"data\"\n[catalog]\nrefresh_interval = \"24h\"\n\
             [[catalog.locations]]\ntype = \"file\"\ntarget = \"teams.yaml\"\n\
             [[catalog.providers]]\nplugin = \"github\"\nname = \"{ORG}\"\nconfig = {{ organisation = \"{ORG}\" }}\n\
             [plugins]\ndir = \"plugins\"\nprovider_timeout = \"120s\"\nfacts_interval = \"0s\"\nevents_interval = \"0s\"\n\
             [plugins.config.github]\nbase_url = \"{}\"\n\
             [[plugins.grants]]\nid = \"github\"\nhosts = [\"{}\"]\nsecrets = [\"GITHUB_TOKEN\"]\n\
             [plugins.webhooks.github]\nsecret = \"BENCH_WEBHOOK\"\n",
            upstream.github_url(),
            upstream.origin()
        ),
    )?;
    // SAFETY: single-threaded here (the runtime's threads read no
    // environment); the server inherits them.
    unsafe {
        std::env::set_var(SECRET_ENV, SECRET);
        std::env::set_var("GREENROOM_SECRET_GITHUB_TOKEN", "bench-token");
    }

    // The first full discovery: from the server's start until it has
    // read every location once (the organisation's listing, every catalog
    // file, CODEOWNERS or contributors of every other repository).
    let started = Instant::now();
    let server = start(&bin, &config)?;
    let mut conn = Conn::open(server.addr)?;
    let health = wait_ready(&mut conn, Duration::from_secs(1200))?;
    let discovery = started.elapsed();
    let requests = upstream.requests().len();
    let entities = health["catalog"]["entities"].as_u64().unwrap_or(0);
    let (_, body) = conn.get("/api/suggestions?limit=1")?;
    let suggested: serde_json::Value = serde_json::from_slice(&body)?;
    let suggested = suggested["total"].as_u64().unwrap_or(0);
    let expected_files = (0..repos).filter(|i| i % 5 < 3).count() as u64;
    if entities < expected_files || suggested != (repos as u64 - expected_files) {
        bail!(
            "discovery found {entities} entities and {suggested} suggestions; expected {expected_files} repositories with files and {} without",
            repos as u64 - expected_files
        );
    }

    // Deliveries: each changes a repository's catalog file and is timed
    // until a word of the new description is found by search.
    let (mut answered, mut searchable) = (Vec::new(), Vec::new());
    for i in 0..DELIVERIES {
        let n = (i * 5 * 7919) % repos / 5 * 5;
        let name = format!("repo-{n}");
        let word = format!("hooked{i}word");
        let text = greenroom_upstreams::catalog_file(ORG, &name, &format!("team-{}", n % 10))
            .replace(&format!("{name}, described in its repository"), &word);
        upstream.set_file(ORG, &name, "catalog-info.yaml", Some(&text));
        let push = greenroom_upstreams::deliveries::push(
            ORG,
            &name,
            "main",
            (&[], &["catalog-info.yaml"], &[]),
        );
        let body = serde_json::to_vec(&push)?;
        let headers = format!(
            "X-GitHub-Event: push\r\nX-Hub-Signature-256: {}\r\n",
            greenroom_upstreams::deliveries::signature(SECRET, &body)
        );
        let t = Instant::now();
        let (status, answer) = conn.post_json("/api/webhooks/github", &headers, &body)?;
        answered.push(t.elapsed());
        if status != 200 {
            bail!(
                "the delivery for {name} answered {status}: {}",
                String::from_utf8_lossy(&answer)
            );
        }
        loop {
            let (_, found) = conn.get(&format!("/api/search?q={word}&limit=1"))?;
            let found: serde_json::Value = serde_json::from_slice(&found)?;
            if found["total"].as_u64().unwrap_or(0) > 0 {
                break;
            }
            if t.elapsed() > Duration::from_secs(60) {
                bail!("{word} was not searchable a minute after its delivery");
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        searchable.push(t.elapsed());
    }
    drop(server);
    answered.sort();
    searchable.sort();
    let (a50, a99) = (quantile_ms(&answered, 0.5), quantile_ms(&answered, 0.99));
    let (s50, s99) = (
        quantile_ms(&searchable, 0.5),
        quantile_ms(&searchable, 0.99),
    );
    println!(
        "first full discovery   {repos} repositories ({expected_files} catalog files, {suggested} suggested) in {:.1} s, {requests} requests to GitHub (target < 60 s)",
        discovery.as_secs_f64()
    );
    println!(
        "webhook push           in the catalog when answered p50 {a50:.0} ms, p99 {a99:.0} ms; searchable p50 {s50:.0} ms, p99 {s99:.0} ms (target p99 < 2 s)"
    );
    let row = format!(
        "| {} | {repos} | {expected_files} | {suggested} | {:.1} | {requests} | {a50:.0} / {a99:.0} | {s50:.0} / {s99:.0} |\n",
        humantime::format_rfc3339_seconds(std::time::SystemTime::now()),
        discovery.as_secs_f64(),
    );
    append_row(
        &tools::workspace_root()?.join("BENCHMARKS.md"),
        "## Discovery and webhooks",
        &row,
    )
    .context("cannot write BENCHMARKS.md")
}
