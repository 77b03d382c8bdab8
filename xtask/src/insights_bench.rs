//! `cargo xtask bench insights --entities N`: facts and campaigns on the
//! synthetic organisation of the catalog benchmark, in a release server
//! over loopback HTTP. Pushes a `coverage.lines` fact for every component
//! (batches of 1,000), then measures the ten components with the poorest
//! coverage, and a campaign whose targets are the ~1/6 of components tagged
//! python (about 10,000 at 100,000 entities).

use std::time::{Duration, Instant};

use anyhow::bail;

use crate::bench::{
    Rng, Shape, append_row, generate, measure, quantile_ms, release_bin, start, wait_ready,
};
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
             [catalog]\nrefresh_interval = \"24h\"\n[[catalog.locations]]\ntype = \"file\"\ntarget = \"{}/part-*.yaml\"\n\
             [[catalog.locations]]\ntype = \"file\"\ntarget = \"scorecard.yaml\"\n",
            org.display()
        ),
    )?;
    std::fs::write(dir.join("scorecard.yaml"), SCORECARD)?;
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
    // Each view follows a fact change, so the host evaluates it again
    // rather than answering from the evaluation it keeps.
    let compute = after_change(&mut conn, auth, 100, "/api/campaigns")?;
    // The detail adds the per-team breakdown, the chase list, a page of
    // targets and a 30-day burndown.
    let detail = after_change(&mut conn, auth, 20, "/api/campaigns/bench-coverage")?;
    let history = history(&mut conn, auth, &dir.join("data"), &mut rng)?;
    // Every scorecard evaluated in full (the list's roll-ups), and one
    // entity's levels.
    let card_full = measure(&mut conn, 10, |_| "/api/scorecards".to_string())?;
    let card_entity = measure(&mut conn, 500, |i| {
        format!(
            "/api/entities/component/default/svc-{}/scorecards",
            (i * 7919) % shape.components
        )
    })?;
    // The catalog's Level facet: counts under a filter, and one page of
    // the entities at a level, both from the recorded history.
    let card_facet = measure(&mut conn, 50, |_| {
        "/api/scorecards/facet?filter=kind=component".to_string()
    })?;
    let card_page = measure(&mut conn, 50, |_| {
        "/api/scorecards/bench-readiness/entities?level=bronze&filter=kind=component&limit=25"
            .to_string()
    })?;
    drop(server);

    println!(
        "campaign history       {} changes of {} targets over 90 days: {:.1} MB on disk (target < 50 MB)",
        history.rows, history.targets, history.megabytes
    );
    println!(
        "campaign page, 90 days p50 {:.0} ms, p99 {:.0} ms (burndown from that history; target p99 < 300 ms); first view after a fact change p50 {:.0} ms, p99 {:.0} ms",
        history.page.0, history.page.1, history.page_changed.0, history.page_changed.1
    );
    println!(
        "scorecard, 8 checks    all components p50 {:.0} ms, p99 {:.0} ms (target < 2 s); one entity's level p50 {:.2} ms, p99 {:.2} ms (target < 5 ms)",
        card_full.0, card_full.1, card_entity.0, card_entity.1
    );
    println!(
        "level facet            counts p50 {:.0} ms, p99 {:.0} ms; a page at one level p50 {:.0} ms, p99 {:.0} ms",
        card_facet.0, card_facet.1, card_page.0, card_page.1
    );
    let history_row = format!(
        "| {} | {n} | {} | {} | {:.1} | {:.0} / {:.0} | {:.0} / {:.0} | {:.2} / {:.2} | {:.0} / {:.0} | {:.0} / {:.0} | {:.0} / {:.0} |\n",
        humantime::format_rfc3339_seconds(std::time::SystemTime::now()),
        history.targets,
        history.rows,
        history.megabytes,
        history.page.0,
        history.page.1,
        card_full.0,
        card_full.1,
        card_entity.0,
        card_entity.1,
        card_facet.0,
        card_facet.1,
        card_page.0,
        card_page.1,
        history.page_changed.0,
        history.page_changed.1,
    );
    append_row(
        &tools::workspace_root()?.join("BENCHMARKS.md"),
        "## Campaign history and scorecards",
        &history_row,
    )?;

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

/// Eight checks over every component: spec, annotations, labels, facts.
const SCORECARD: &str = "apiVersion: greenroom.dev/v1alpha1
kind: Scorecard
metadata:
  name: bench-readiness
spec:
  owner: team-0
  targets: kind=component
  levels: [bronze, silver, gold]
  checks:
    - {name: owner, level: bronze, when: spec owner exists}
    - {name: system, level: bronze, when: spec system exists}
    - {name: slug, level: bronze, when: annotation github.com/project-slug exists}
    - {name: sentry, level: silver, when: annotation sentry.io/project-slug exists}
    - {name: covered, level: silver, when: fact coverage.lines >= 50}
    - {name: production, level: silver, when: spec lifecycle == production}
    - {name: well-covered, level: gold, when: fact coverage.lines >= 70}
    - {name: docs, level: gold, when: annotation backstage.io/techdocs-ref exists}
";

struct History {
    targets: usize,
    rows: usize,
    megabytes: f64,
    /// The campaign page with a 90-day burndown, p50 / p99 ms.
    page: (f64, f64),
    /// The same, each view the first after a fact changed.
    page_changed: (f64, f64),
}

/// `GET path` `requests` times, each after one component's coverage
/// changed (not timed), so nothing the host keeps until a fact moves
/// answers it: p50 / p99 ms.
fn after_change(
    conn: &mut Conn,
    auth: &str,
    requests: usize,
    path: &str,
) -> anyhow::Result<(f64, f64)> {
    // A value no earlier call wrote, so that the fact really changes.
    static CHANGES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let mut samples = Vec::with_capacity(requests);
    for i in 0..requests {
        let n = CHANGES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let fact = serde_json::json!({"items": [{
            "entityRef": format!("component:default/svc-{i}"),
            "facts": {"coverage.lines": 1000.0 + n as f64},
        }]});
        let (status, answer) = conn.post_json("/api/facts", auth, &serde_json::to_vec(&fact)?)?;
        if status != 200 {
            bail!(
                "POST /api/facts answered {status}: {}",
                String::from_utf8_lossy(&answer)
            );
        }
        let t = Instant::now();
        let (status, body) = conn.get(path)?;
        samples.push(t.elapsed());
        if status != 200 {
            bail!(
                "GET {path} answered {status}: {}",
                String::from_utf8_lossy(&body)
            );
        }
    }
    samples.sort();
    Ok((quantile_ms(&samples, 0.5), quantile_ms(&samples, 0.99)))
}

/// Bytes the campaign's history takes in the store: the `status_history`
/// table's pages (SQLite's `dbstat`, read with Debian's `sqlite3`), in the
/// share of its rows that are the campaign's (the table also holds the
/// scorecard's levels). The database file's growth says nothing here: the
/// rows fill pages the ingest freed.
fn history_bytes(data: &std::path::Path, subject: &str) -> anyhow::Result<u64> {
    tools::ensure_debian(&["sqlite3"])?;
    let out = std::process::Command::new("sqlite3")
        .arg("-readonly")
        .arg(data.join("greenroom.db"))
        .arg(format!(
            "SELECT (SELECT sum(pgsize) FROM dbstat WHERE name = 'status_history'), \
             (SELECT count(*) FROM status_history), \
             (SELECT count(*) FROM status_history WHERE subject = '{subject}')"
        ))
        .output()?;
    if !out.status.success() {
        bail!("sqlite3 failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let n: Vec<u64> = text
        .trim()
        .split('|')
        .map(|v| v.parse().unwrap_or(0))
        .collect();
    match n[..] {
        [bytes, all, mine] if all > 0 => Ok(bytes * mine / all),
        _ => bail!("sqlite3 answered '{}'", text.trim()),
    }
}

/// 90 days of the bench campaign's history as the host records it (a row
/// per change: each target opens, is done, some slip back and are done
/// again, a few go), imported through the API; what it costs in the
/// store and the campaign page reading it.
fn history(
    conn: &mut Conn,
    auth: &str,
    data: &std::path::Path,
    rng: &mut Rng,
) -> anyhow::Result<History> {
    const DAY_MS: u64 = 86_400_000;
    let (_, page) = conn.get("/api/campaigns/bench-coverage?days=1&limit=100000")?;
    let page: serde_json::Value = serde_json::from_slice(&page)?;
    let refs: Vec<String> = page["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|t| t["entityRef"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis() as u64;
    let start = now - 90 * DAY_MS;
    let mut items = Vec::new();
    for r in &refs {
        items.push(serde_json::json!({"entityRef": r, "status": "open", "at": start}));
        // Up to five changes after the first, on distinct days.
        let changes = rng.below(6) as u64;
        let mut day = 1 + rng.below(20) as u64;
        for c in 0..changes {
            if day >= 90 {
                break;
            }
            let status = if c % 2 == 0 { "done" } else { "open" };
            items.push(
                serde_json::json!({"entityRef": r, "status": status, "at": start + day * DAY_MS}),
            );
            day += 1 + rng.below(25) as u64;
        }
        if rng.below(20) == 0 {
            items.push(
                serde_json::json!({"entityRef": r, "status": "gone", "at": start + 89 * DAY_MS}),
            );
        }
    }
    for batch in items.chunks(20_000) {
        let body = serde_json::to_vec(&serde_json::json!({ "items": batch }))?;
        let (status, answer) =
            conn.post_json("/api/campaigns/bench-coverage/history", auth, &body)?;
        if status != 200 {
            bail!(
                "POST /api/campaigns/bench-coverage/history answered {status}: {}",
                String::from_utf8_lossy(&answer)
            );
        }
    }
    let bytes = history_bytes(data, "campaign:bench-coverage")?;
    let path = "/api/campaigns/bench-coverage?days=90";
    let page = measure(conn, 20, |_| path.to_string())?;
    let page_changed = after_change(conn, auth, 20, path)?;
    Ok(History {
        targets: refs.len(),
        rows: items.len(),
        megabytes: bytes as f64 / 1_048_576.0,
        page,
        page_changed,
    })
}
