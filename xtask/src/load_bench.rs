//! `cargo xtask bench load`: many concurrent clients against a release
//! build for a while, mixing what a portal serves (catalog pages in the
//! shapes the Backstage frontend sends, search, entity pages with plugin
//! cards, fact pushes) while every location is refreshed again and again
//! and a hostile plugin loops on every call. Reports errors, latency per
//! kind of request and the server's memory over time; appends a row to
//! BENCHMARKS.md. Any 5xx fails the run.
//!
//! Two ways to send: closed (each client sends again as soon as it is
//! answered, so latency is mostly the queue of 200 waiting clients and the
//! run measures throughput at saturation) and paced (`--rate`: requests
//! are due on a fixed schedule and latency counts from when a request was
//! due, so a server that falls behind is charged for the wait).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::bench::{Rng, Shape, append_row, generate, quantile_ms, release_bin, start, wait_ready};
use crate::http::Conn;
use crate::tools;

/// What one client did: per kind, latencies and statuses.
#[derive(Default)]
struct Tally {
    latencies: BTreeMap<&'static str, Vec<Duration>>,
    server_errors: Vec<String>,
    failures: Vec<String>,
    /// Requests slower than `SLOW`: when they were due (since the start)
    /// and how long they took, to tell stalls from queueing.
    slow: Vec<(Duration, Duration)>,
}

/// A request this slow is listed in the stall timeline.
const SLOW: Duration = Duration::from_millis(250);

const TOKEN: &str = "load-bench-token";
/// Entities the hostile plugin loops on.
const LOOPING: usize = 100;

pub fn run(entities: usize, clients: usize, seconds: u64, rate: Option<f64>) -> anyhow::Result<()> {
    if let Some(r) = rate
        && !(r > 0.0 && r.is_finite())
    {
        bail!("--rate must be a positive number of requests a second, not {r}");
    }
    // Each client's gap between requests that are due.
    let period = rate.map(|r| Duration::from_secs_f64(clients as f64 / r));
    tools::ensure_targets(&[crate::PLUGIN_TARGET])?;
    let bin = release_bin("greenroom", "greenroom")?;
    let target = tools::target_dir()?;
    let dir = target.join(format!("bench/load-{entities}"));
    let org = dir.join("org");
    generate(&org, entities)?;
    let data = dir.join("data");
    let _ = std::fs::remove_dir_all(&data);
    std::fs::create_dir_all(dir.join("plugins"))?;
    for name in ["hello", "hostile"] {
        std::fs::copy(
            tools::build_plugin(name)?,
            dir.join(format!("plugins/{name}.wasm")),
        )?;
    }
    // Entities the hostile plugin loops on, asked in turn: the host must
    // bound what a plugin burns even when the entity keeps changing.
    let looping_yaml: String = (0..LOOPING)
        .map(|n| format!("---\napiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: loop-{n}\nspec:\n  type: service\n  lifecycle: production\n  owner: team-0\n"))
        .collect();
    std::fs::write(dir.join("loop.yaml"), looping_yaml)?;
    let config = dir.join("greenroom.toml");
    // Every location is read again every 5 s: a refresh is always running.
    std::fs::write(
        &config,
        "[server]\ndata_dir = \"data\"\n[[server.tokens]]\nname = \"load\"\nenv = \"GREENROOM_LOAD_TOKEN\"\nscopes = [\"facts:write\"]\n[plugins]\ndir = \"plugins\"\nfacts_interval = \"0s\"\nevents_interval = \"0s\"\n[catalog]\nrefresh_interval = \"5s\"\n[[catalog.locations]]\ntarget = \"org/part-*.yaml\"\n[[catalog.locations]]\ntarget = \"loop.yaml\"\n",
    )?;
    // SAFETY: xtask is single-threaded here; the server inherits it.
    unsafe { std::env::set_var("GREENROOM_LOAD_TOKEN", TOKEN) };
    let server = start(&bin, &config)?;
    let addr = server.addr;
    let pid = server.pid();
    wait_ready(&mut Conn::open(addr)?, Duration::from_secs(600))?;
    let pacing = match rate {
        Some(r) => format!(" at {r:.0}/s"),
        None => String::new(),
    };
    eprintln!("xtask: {clients} clients{pacing} for {seconds} s against {entities} entities");

    let stop = Arc::new(AtomicBool::new(false));
    let shape = Shape::of(entities);
    let epoch = Instant::now();
    let tallies: Vec<_> = (0..clients)
        .map(|c| {
            let stop = stop.clone();
            // Paced clients start spread over one period.
            let first_due =
                Instant::now() + period.map_or(Duration::ZERO, |p| p * c as u32 / clients as u32);
            std::thread::spawn(move || {
                client(addr, c as u64, shape, &stop, epoch, first_due, period)
            })
        })
        .collect();
    // The hostile plugin loops until its deadline on every call.
    let looping = {
        let stop = stop.clone();
        std::thread::spawn(move || -> anyhow::Result<usize> {
            let mut conn = Conn::open(addr)?;
            let mut calls = 0;
            while !stop.load(Ordering::Relaxed) {
                let (status, body) = conn.get_with(
                    &format!("/api/cards/component/default/loop-{}", calls % LOOPING),
                    "Cache-Control: no-cache\r\n",
                )?;
                if status != 200 {
                    bail!(
                        "the looping plugin's cards answered {status}: {}",
                        String::from_utf8_lossy(&body)
                    );
                }
                calls += 1;
            }
            Ok(calls)
        })
    };
    // Somebody edits the catalog: every 5 s one file's 500 components
    // get a new description, so each refresh writes as well as reads.
    let editing = {
        let stop = stop.clone();
        let file = last_part(&org)?;
        std::thread::spawn(move || -> anyhow::Result<usize> {
            let original = std::fs::read_to_string(&file)?;
            let mut edits = 0;
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_secs(5));
                edits += 1;
                std::fs::write(
                    &file,
                    original.replace(
                        "description: Synthetic",
                        &format!("description: Edit {edits} of a synthetic"),
                    ),
                )?;
            }
            std::fs::write(&file, original)?;
            Ok(edits)
        })
    };
    // Memory every 5 s.
    let rss = Arc::new(Mutex::new(Vec::new()));
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(seconds) {
        std::thread::sleep(Duration::from_secs(5).min(Duration::from_secs(seconds)));
        rss.lock()
            .unwrap()
            .push((started.elapsed().as_secs(), rss_mib(pid)?));
    }
    stop.store(true, Ordering::Relaxed);
    let mut all = Tally::default();
    for t in tallies {
        let t = t.join().map_err(|_| anyhow::anyhow!("a client panicked"))?;
        for (kind, mut l) in t.latencies {
            all.latencies.entry(kind).or_default().append(&mut l);
        }
        all.server_errors.extend(t.server_errors);
        all.failures.extend(t.failures);
        all.slow.extend(t.slow);
    }
    let loop_calls = looping
        .join()
        .map_err(|_| anyhow::anyhow!("the loop thread panicked"))??;
    let edits = editing
        .join()
        .map_err(|_| anyhow::anyhow!("the editing thread panicked"))??;
    let health: serde_json::Value = {
        let (_, body) = Conn::open(addr)?.get("/healthz")?;
        serde_json::from_slice(&body)?
    };
    drop(server);

    let total: usize = all.latencies.values().map(Vec::len).sum();
    println!(
        "clients                {clients}{pacing}, {seconds} s, {entities} entities, refresh every 5 s"
    );
    println!(
        "requests               {total} ({:.0}/s)",
        total as f64 / seconds as f64
    );
    println!("5xx                    {}", all.server_errors.len());
    println!("other failures         {}", all.failures.len());
    println!("looping plugin calls   {loop_calls}");
    println!("catalog files edited   {edits} times (500 components each)");
    let mut cells = Vec::new();
    for (kind, l) in &mut all.latencies {
        l.sort();
        let (p50, p99) = (quantile_ms(l, 0.5), quantile_ms(l, 0.99));
        println!(
            "{kind:<22} {:>7} requests, p50 {p50:.1} ms, p99 {p99:.1} ms",
            l.len()
        );
        cells.push(format!("{kind} {p50:.1} / {p99:.1}"));
    }
    let rss = rss.lock().unwrap().clone();
    let first = rss.first().map_or(0.0, |r| r.1);
    let last = rss.last().map_or(0.0, |r| r.1);
    let peak = rss.iter().map(|r| r.1).fold(0.0, f64::max);
    println!(
        "server RSS             {first:.0} MiB at 5 s, {last:.0} MiB at the end, peak {peak:.0} MiB"
    );
    // The curve, a sample a minute (or every sample of a short run), to
    // tell caches filling up from a leak.
    let step = if seconds >= 120 { 12 } else { 1 };
    let curve: Vec<String> = rss
        .iter()
        .step_by(step)
        .map(|(at, mib)| format!("{at} s {mib:.0}"))
        .collect();
    println!("RSS curve (MiB)        {}", curve.join(", "));
    println!("entities at the end    {}", health["catalog"]["entities"]);
    print_stalls(&mut all.slow);
    for e in all.server_errors.iter().chain(&all.failures).take(10) {
        println!("  {e}");
    }
    let row = format!(
        "| {} | {clients} × {seconds} s{pacing} | {entities} | {total} ({:.0}/s) | {} | {} | {} | {first:.0} → {last:.0} MiB (peak {peak:.0}) |\n",
        humantime::format_rfc3339_seconds(std::time::SystemTime::now()),
        total as f64 / seconds as f64,
        all.server_errors.len(),
        all.failures.len(),
        cells.join("; "),
    );
    append_row(
        &tools::workspace_root()?.join("BENCHMARKS.md"),
        "## Load",
        &row,
    )?;
    if !all.server_errors.is_empty() {
        bail!("{} requests answered 5xx", all.server_errors.len());
    }
    Ok(())
}

/// One client: a keep-alive connection sending a mix until told to stop,
/// each request as soon as the last is answered or, with a `period`, when
/// it is due.
fn client(
    addr: std::net::SocketAddr,
    seed: u64,
    shape: Shape,
    stop: &AtomicBool,
    epoch: Instant,
    mut due: Instant,
    period: Option<Duration>,
) -> Tally {
    let mut tally = Tally::default();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (seed + 1).wrapping_mul(0x2545_F491_4F6C_DD1D));
    let mut conn = None;
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let svc = rng.below(shape.components);
        let team = rng.below(shape.groups);
        let (kind, method, path, body): (&'static str, &str, String, String) = match rng.below(20) {
            0..=3 => (
                "catalog by-query",
                "GET",
                format!(
                    "/api/catalog/entities/by-query?limit=50&filter=kind=component,spec.type=service&filter=kind=component,spec.owner=team-{team}"
                ),
                String::new(),
            ),
            4..=5 => (
                "catalog full text",
                "GET",
                format!(
                    "/api/catalog/entities/by-query?limit=20&fullTextFilterTerm=svc-{svc}&fullTextFilterFields=metadata.name,metadata.title"
                ),
                String::new(),
            ),
            6..=7 => (
                "catalog list",
                "GET",
                format!(
                    "/api/catalog/entities?filter=kind=component,spec.owner=team-{team}&limit=25"
                ),
                String::new(),
            ),
            8 => (
                "catalog facets",
                "GET",
                "/api/catalog/entity-facets?facet=kind&facet=spec.type&facet=spec.owner".into(),
                String::new(),
            ),
            9..=12 => (
                "search",
                "GET",
                format!("/api/search?q=service%20{svc}&limit=10"),
                String::new(),
            ),
            13..=14 => (
                "entity by name",
                "GET",
                format!("/api/catalog/entities/by-name/component/default/svc-{svc}"),
                String::new(),
            ),
            15..=17 => (
                "entity cards",
                "GET",
                format!("/api/cards/component/default/svc-{svc}"),
                String::new(),
            ),
            _ => (
                "fact push",
                "POST",
                "/api/facts".into(),
                format!(
                    "{{\"entityRef\": \"svc-{svc}\", \"facts\": {{\"load.n\": {n}, \"load.client\": {seed}}}}}"
                ),
            ),
        };
        let c = match &mut conn {
            Some(c) => c,
            None => match Conn::open(addr) {
                Ok(c) => conn.insert(c),
                Err(e) => {
                    tally.failures.push(format!("connect: {e}"));
                    std::thread::sleep(Duration::from_millis(50));
                    continue;
                }
            },
        };
        let t = match period {
            Some(period) => {
                let now = Instant::now();
                if due > now {
                    std::thread::sleep(due - now);
                }
                let this = due;
                due += period;
                this
            }
            None => Instant::now(),
        };
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let answer = if method == "GET" {
            c.get(&path)
        } else {
            c.post_json(
                &path,
                &format!("Authorization: Bearer {TOKEN}\r\n"),
                body.as_bytes(),
            )
        };
        let took = t.elapsed();
        if took >= SLOW {
            tally.slow.push((t.saturating_duration_since(epoch), took));
        }
        match answer {
            Ok((status, _)) if status < 400 => tally.latencies.entry(kind).or_default().push(took),
            Ok((status, body)) if status >= 500 => tally.server_errors.push(format!(
                "{method} {path}: {status} {}",
                String::from_utf8_lossy(&body)
            )),
            Ok((status, body)) => tally.failures.push(format!(
                "{method} {path}: {status} {}",
                String::from_utf8_lossy(&body)
            )),
            Err(e) => {
                tally.failures.push(format!("{method} {path}: {e:#}"));
                conn = None;
            }
        }
    }
    tally
}

/// When the slow requests were due, by second of the run: a stall shows
/// as a burst in a second or two, queueing as a spread.
fn print_stalls(slow: &mut [(Duration, Duration)]) {
    if slow.is_empty() {
        return;
    }
    slow.sort();
    let mut by_second: BTreeMap<u64, (usize, Duration)> = BTreeMap::new();
    for (at, took) in slow.iter() {
        let s = by_second.entry(at.as_secs()).or_default();
        s.0 += 1;
        s.1 = s.1.max(*took);
    }
    let cells: Vec<String> = by_second
        .iter()
        .map(|(s, (n, max))| format!("{s} s: {n} (max {} ms)", max.as_millis()))
        .collect();
    println!(
        "slower than {} ms       {} requests; by second due: {}",
        SLOW.as_millis(),
        slow.len(),
        cells.join(", ")
    );
}

/// The generated catalog's last file (all components).
fn last_part(org: &std::path::Path) -> anyhow::Result<std::path::PathBuf> {
    let mut parts: Vec<_> = std::fs::read_dir(org)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    parts.sort();
    parts.pop().context("the generated catalog has no files")
}

fn rss_mib(pid: u32) -> anyhow::Result<f64> {
    let status =
        std::fs::read_to_string(format!("/proc/{pid}/status")).context("the server is gone")?;
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no VmRSS in /proc status")?;
    Ok(kb / 1024.0)
}
