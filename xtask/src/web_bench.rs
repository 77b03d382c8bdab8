//! `cargo xtask bench web`: the catalog page in headless Chromium against
//! a release server holding N entities. It reports how long after
//! navigation the first rows are on screen, as the page itself records it
//! (`performance.now()` when the table renders, which counts from the
//! start of navigation): the first visit (WebAssembly compiled afresh) and
//! later visits, unfiltered and filtered by owner.

use std::time::Duration;

use anyhow::{Context, bail};
use greenroom_web_build::browser::Browser;

use crate::bench::{Rng, Shape, append_row, generate, quantile_ms, release_bin, start, wait_ready};
use crate::http::Conn;
use crate::tools;

const VISITS: usize = 20;

pub fn run(n: usize) -> anyhow::Result<()> {
    if n < 1000 {
        bail!("--entities must be at least 1000");
    }
    let web = tools::build_web()?;
    let bin = release_bin("greenroom", "greenroom")?;
    let dir = tools::target_dir()?.join(format!("bench/web-{n}"));
    generate(&dir.join("org"), n)?;
    let _ = std::fs::remove_dir_all(dir.join("data"));
    let config = dir.join("greenroom.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\ndata_dir = \"data\"\n[web]\ndir = \"{}\"\n[catalog]\nrefresh_interval = \"24h\"\n[[catalog.locations]]\ntarget = \"org/part-*.yaml\"\n",
            web.display()
        ),
    )?;
    let server = start(&bin, &config)?;
    let mut conn = Conn::open(server.addr)?;
    wait_ready(&mut conn, Duration::from_secs(900))?;
    let base = format!("http://{}", server.addr);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let shape = Shape::of(n);
    let (first, all, owner) = runtime.block_on(async {
        let b = Browser::start(1280, 900)
            .await
            .map_err(anyhow::Error::msg)?;
        let first = visit(&b, &format!("{base}/catalog")).await?;
        let mut all = Vec::new();
        for _ in 0..VISITS {
            all.push(visit(&b, &format!("{base}/catalog")).await?);
        }
        let mut rng = Rng(7);
        let mut owner = Vec::new();
        for _ in 0..VISITS {
            let team = rng.below(shape.groups);
            owner.push(visit(&b, &format!("{base}/catalog?owner=team-{team}")).await?);
        }
        anyhow::Ok((first, all, owner))
    })?;
    let (all, owner) = (sorted(all), sorted(owner));
    eprintln!(
        "xtask: catalog page at {n} entities: first visit {first:.0} ms; later p50 {:.0} / p95 {:.0} ms; by owner p50 {:.0} / p95 {:.0} ms",
        quantile_ms(&all, 0.5),
        quantile_ms(&all, 0.95),
        quantile_ms(&owner, 0.5),
        quantile_ms(&owner, 0.95),
    );
    let row = format!(
        "| {} | {n} | {first:.0} | {:.0} / {:.0} | {:.0} / {:.0} |\n",
        humantime::format_rfc3339_seconds(std::time::SystemTime::now()),
        quantile_ms(&all, 0.5),
        quantile_ms(&all, 0.95),
        quantile_ms(&owner, 0.5),
        quantile_ms(&owner, 0.95),
    );
    append_row(
        &tools::workspace_root()?.join("BENCHMARKS.md"),
        "## Web UI",
        &row,
    )
}

fn sorted(ms: Vec<f64>) -> Vec<Duration> {
    let mut d: Vec<Duration> = ms
        .into_iter()
        .map(|m| Duration::from_secs_f64(m / 1000.0))
        .collect();
    d.sort();
    d
}

/// Loads `url` afresh and returns when, after navigation, the catalog's
/// first rows were rendered (ms).
async fn visit(b: &Browser, url: &str) -> anyhow::Result<f64> {
    b.client.goto(url).await?;
    let rendered = b
        .until("document.querySelector('#catalog-table tbody tr') && document.querySelector('#catalog-table').dataset.renderedMs")
        .await;
    rendered
        .as_str()
        .and_then(|v| v.parse().ok())
        .context("the catalog page recorded no render time")
}
