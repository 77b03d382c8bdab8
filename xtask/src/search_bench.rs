//! `cargo xtask bench search --entities N --pages P`: the catalog
//! benchmark's synthetic organisation (N minus the documented components)
//! plus components with TechDocs of ten pages each (P pages in all), in a
//! release server with the techdocs plugin. Measures a full index build
//! (`POST /api/search/rebuild`), search latency over a mix of names,
//! words, prefixes and typos, and the time from a committed catalog change
//! to a search finding it.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use anyhow::bail;

use crate::bench::{Rng, append_row, generate, measure, release_bin, start, wait_ready};
use crate::http::Conn;
use crate::tools;

const PAGES_PER_SITE: usize = 10;

const WORDS: [&str; 12] = [
    "checkout", "ledger", "latency", "retries", "runbook", "rollback", "postgres", "kafka",
    "timeout", "deploy", "alerts", "capacity",
];

fn write_docs(dir: &std::path::Path, sites: usize) -> anyhow::Result<()> {
    let mut catalog = Vec::with_capacity(sites);
    for i in 0..sites {
        let site = dir.join(format!("docs/site-{i}"));
        std::fs::create_dir_all(site.join("docs"))?;
        std::fs::write(
            site.join("mkdocs.yml"),
            format!("site_name: Handbook {i}\n"),
        )?;
        for p in 0..PAGES_PER_SITE {
            let mut page = format!("# Page {p} of handbook {i}\n\n");
            for s in 0..8 {
                let _ = writeln!(
                    page,
                    "## {} {s}\n\nHow the service handles {} and {} under load; see the {} notes for {} in region {}.\n",
                    WORDS[(i + s) % WORDS.len()],
                    WORDS[(p + s) % WORDS.len()],
                    WORDS[(i + p) % WORDS.len()],
                    WORDS[(i * 7 + s) % WORDS.len()],
                    WORDS[(p * 3 + s) % WORDS.len()],
                    i % 17
                );
            }
            let name = if p == 0 {
                "index.md".to_string()
            } else {
                format!("page-{p}.md")
            };
            std::fs::write(site.join("docs").join(name), page)?;
        }
        catalog.push(format!(
            "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: documented-{i}\n  description: A service with a handbook\n  annotations:\n    backstage.io/techdocs-ref: dir:site-{i}\nspec:\n  type: service\n  lifecycle: production\n  owner: team-{}\n",
            i % 50
        ));
    }
    std::fs::write(dir.join("docs/catalog.yaml"), catalog.join("---\n"))?;
    Ok(())
}

pub fn run(n: usize, pages: usize) -> anyhow::Result<()> {
    let sites = pages.div_ceil(PAGES_PER_SITE);
    if n < 1000 + sites {
        bail!("--entities must be at least 1000 more than the documented components ({sites})");
    }
    let bin = release_bin("greenroom", "greenroom")?;
    let techdocs = tools::build_plugin("techdocs")?;
    let target = tools::target_dir()?;
    let dir = target.join(format!("bench/search-{n}-{pages}"));
    let org = dir.join("org");
    generate(&org, n - sites)?;
    if !dir.join("docs/catalog.yaml").exists() {
        write_docs(&dir, sites)?;
    }
    let _ = std::fs::remove_dir_all(dir.join("data"));
    std::fs::create_dir_all(dir.join("plugins"))?;
    std::fs::copy(&techdocs, dir.join("plugins/techdocs.wasm"))?;
    let config = dir.join("greenroom.toml");
    std::fs::write(
        &config,
        "[server]\ndata_dir = \"data\"\n[plugins]\ndir = \"plugins\"\nfacts_interval = \"0s\"\nevents_interval = \"0s\"\n\
         [catalog]\nrefresh_interval = \"24h\"\n[[catalog.locations]]\ntarget = \"org/part-*.yaml\"\n[[catalog.locations]]\ntarget = \"docs/catalog.yaml\"\n",
    )?;
    // SAFETY: single-threaded here; the server inherits it.
    unsafe { std::env::set_var("GREENROOM_ADMIN_TOKEN", "bench-admin") };
    let server = start(&bin, &config)?;
    let mut conn = Conn::open(server.addr)?;
    wait_ready(&mut conn, Duration::from_secs(900))?;
    // A full build, timed by the server.
    let (status, body) = conn.post_json(
        "/api/search/rebuild",
        "Authorization: Bearer bench-admin\r\n",
        b"",
    )?;
    if status != 200 {
        bail!(
            "rebuild answered {status}: {}",
            String::from_utf8_lossy(&body)
        );
    }
    let rebuilt: serde_json::Value = serde_json::from_slice(&body)?;
    let documents = rebuilt["documents"].as_u64().unwrap_or(0);
    let build_s = rebuilt["tookMs"].as_f64().unwrap_or(0.0) / 1000.0;

    let mut rng = Rng(11);
    let queries = measure(&mut conn, 2000, |i| {
        let text = match i % 6 {
            0 => format!("svc-{}", rng.below(50_000)),
            1 => WORDS[rng.below(WORDS.len())].to_string(),
            2 => format!(
                "{} {}",
                WORDS[rng.below(WORDS.len())],
                WORDS[rng.below(WORDS.len())]
            ),
            3 => WORDS[rng.below(WORDS.len())][..4].to_string(),
            4 => "sinthetic pyhton".to_string(),
            _ => format!("handbook {}", rng.below(sites)),
        };
        format!("/api/search?q={}&limit=20", text.replace(' ', "+"))
    })?;

    // From a committed change to a search that finds it.
    let catalog = dir.join("docs/catalog.yaml");
    let original = std::fs::read_to_string(&catalog)?;
    let mut changes = Vec::new();
    for round in 0..5 {
        let word = format!("zebrafish{round}");
        std::fs::write(
            &catalog,
            original.replacen(
                "A service with a handbook",
                &format!("A service with a handbook about {word}"),
                1,
            ),
        )?;
        let (status, body) = conn.post_json(
            "/api/catalog/refresh",
            "",
            br#"{"entityRef": "component:default/documented-0"}"#,
        )?;
        if status != 200 {
            bail!(
                "refresh answered {status}: {}",
                String::from_utf8_lossy(&body)
            );
        }
        let committed = Instant::now();
        loop {
            let (_, body) = conn.get(&format!("/api/search?q={word}"))?;
            if serde_json::from_slice::<serde_json::Value>(&body)?["total"].as_u64() > Some(0) {
                break;
            }
            if committed.elapsed() > Duration::from_secs(30) {
                bail!("a change was not searchable within 30 s");
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        changes.push(committed.elapsed());
    }
    std::fs::write(&catalog, original)?;
    drop(server);
    changes.sort();
    let change_ms = changes[changes.len() / 2].as_secs_f64() * 1000.0;
    let change_max = changes[changes.len() - 1].as_secs_f64() * 1000.0;

    println!(
        "documents              {documents} ({n} entities, {} docs pages)",
        sites * PAGES_PER_SITE
    );
    println!("full index build       {build_s:.1} s (target < 30 s)");
    println!(
        "search                 p50 {:.2} ms, p99 {:.2} ms (target p99 < 20 ms)",
        queries.0, queries.1
    );
    println!(
        "change to searchable   median {change_ms:.0} ms, worst {change_max:.0} ms of 5 (target < 1 s)"
    );
    let row = format!(
        "| {} | {n} | {} | {documents} | {build_s:.1} | {:.2} / {:.2} | {change_ms:.0} / {change_max:.0} |\n",
        humantime::format_rfc3339_seconds(std::time::SystemTime::now()),
        sites * PAGES_PER_SITE,
        queries.0,
        queries.1,
    );
    append_row(
        &tools::workspace_root()?.join("BENCHMARKS.md"),
        "## Search",
        &row,
    )
}
