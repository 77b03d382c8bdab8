//! `cargo xtask bench insights --entities N`: facts and campaigns on the
//! synthetic organisation of the catalog benchmark, in a release server
//! over loopback HTTP. Pushes a `coverage.lines` fact for every component
//! (batches of 1,000), then measures the ten components with the poorest
//! coverage, and a campaign whose targets are the ~1/6 of components tagged
//! python (about 10,000 at 100,000 entities).

use std::time::{Duration, Instant};

use anyhow::bail;

use crate::bench::{Rng, Shape, append_row, generate, measure, release_bin, start, wait_ready};
use crate::http::Conn;
use crate::tools;

const TOKEN_ENV: &str = "GREENROOM_BENCH_TOKEN";

pub fn run(n: usize) -> anyhow::Result<()> {
    if n < 1000 {
        bail!("--entities must be at least 1000");
    }
    let bin = release_bin("greenroom", "greenroom")?;
    let target = tools::target_dir()?;
    // The organisation is the catalog benchmark's (generated once).
    let org = target.join(format!("bench/catalog-{n}/org"));
    generate(&org, n)?;
    let dir = target.join(format!("bench/insights-{n}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let config = dir.join("greenroom.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\ndata_dir = \"data\"\n[[server.tokens]]\nname = \"bench\"\nenv = \"{TOKEN_ENV}\"\nscopes = [\"facts:write\", \"campaigns:write\"]\n\
             [catalog]\nrefresh_interval = \"24h\"\n[[catalog.locations]]\ntype = \"file\"\ntarget = \"{}/part-*.yaml\"\n",
            org.display()
        ),
    )?;
    // SAFETY: single-threaded here; the server inherits it.
    unsafe { std::env::set_var(TOKEN_ENV, "bench-token") };
    let auth = "Authorization: Bearer bench-token\r\n";
    let server = start(&bin, &config)?;
    let mut conn = Conn::open(server.addr)?;
    wait_ready(&mut conn, Duration::from_secs(600))?;

    // A coverage figure for every component.
    let shape = Shape::of(n);
    let mut rng = Rng(7);
    let started = Instant::now();
    for batch in (0..shape.components).collect::<Vec<_>>().chunks(1000) {
        let items: Vec<serde_json::Value> = batch
            .iter()
            .map(|i| {
                serde_json::json!({
                    "entityRef": format!("component:default/svc-{i}"),
                    "facts": {"coverage.lines": (rng.below(1000) as f64) / 10.0},
                })
            })
            .collect();
        let body = serde_json::to_vec(&serde_json::json!({ "items": items }))?;
        let (status, answer) = conn.post_json("/api/facts", auth, &body)?;
        if status != 200 {
            bail!(
                "POST /api/facts answered {status}: {}",
                String::from_utf8_lossy(&answer)
            );
        }
    }
    let push = started.elapsed();
    let push_rate = shape.components as f64 / push.as_secs_f64();

    let top = measure(&mut conn, 2000, |_| {
        "/api/facts/coverage.lines/top?order=asc&limit=10&kind=component".to_string()
    })?;

    let campaign = serde_json::json!({
        "name": "bench-coverage",
        "owner": "team-0",
        "targets": "kind=component,metadata.tags=python",
        "doneWhen": "fact coverage.lines >= 70 and annotation github.com/project-slug exists",
    });
    let (status, answer) =
        conn.post_json("/api/campaigns", auth, &serde_json::to_vec(&campaign)?)?;
    if status != 201 {
        bail!(
            "POST /api/campaigns answered {status}: {}",
            String::from_utf8_lossy(&answer)
        );
    }
    let created: serde_json::Value = serde_json::from_slice(&answer)?;
    let targets = created["progress"]["total"].as_u64().unwrap_or(0);
    // The list computes every campaign's progress: here the one above.
    let compute = measure(&mut conn, 100, |_| "/api/campaigns".to_string())?;
    // The detail adds the per-team breakdown, the chase list, every
    // target's status and a 30-day burndown.
    let detail = measure(&mut conn, 20, |_| {
        "/api/campaigns/bench-coverage".to_string()
    })?;
    drop(server);

    println!(
        "facts pushed           {} in {:.1} s ({push_rate:.0}/s, batches of 1,000)",
        shape.components,
        push.as_secs_f64()
    );
    println!(
        "top 10 poorest         p50 {:.2} ms, p99 {:.2} ms (target p99 < 10 ms)",
        top.0, top.1
    );
    println!(
        "campaign, {targets} targets  progress p50 {:.0} ms, p99 {:.0} ms (target < 200 ms)",
        compute.0, compute.1
    );
    println!(
        "campaign detail        p50 {:.0} ms, p99 {:.0} ms (teams, chase list, all targets, 30-day burndown)",
        detail.0, detail.1
    );
    let row = format!(
        "| {} | {n} | {:.0}/s | {:.2} / {:.2} | {targets} | {:.0} / {:.0} | {:.0} / {:.0} |\n",
        humantime::format_rfc3339_seconds(std::time::SystemTime::now()),
        push_rate,
        top.0,
        top.1,
        compute.0,
        compute.1,
        detail.0,
        detail.1,
    );
    append_row(
        &tools::workspace_root()?.join("BENCHMARKS.md"),
        "## Facts and campaigns",
        &row,
    )
}
