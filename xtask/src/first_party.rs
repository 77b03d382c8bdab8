//! `cargo xtask bench first-party`: the first-party plugins in a release
//! host. Compile and cached load of each; a 20 MB lcov report parsed in the
//! sandbox (the whole cards call: host read, copy in, parse, card); a
//! 2,000-line TechDocs page (plugin, render, sanitise, over HTTP); and an
//! entity page's GitHub, Sentry and coverage cards served from cache.

use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::bench::{append_row, measure, measure_with, plugin_bench, release_bin, start};
use crate::http::Conn;
use crate::tools;

const PLUGINS: [&str; 4] = ["github", "sentry", "coverage", "techdocs"];

/// The GitHub/Sentry stand-in, stopped when dropped.
struct Upstream(std::process::Child, String);

impl Drop for Upstream {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_upstream(bin: &Path) -> anyhow::Result<Upstream> {
    let mut child = Command::new(bin)
        .arg("127.0.0.1:0")
        .stdout(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot start {}", bin.display()))?;
    let mut line = String::new();
    BufReader::new(child.stdout.take().context("no stdout")?).read_line(&mut line)?;
    // "GitHub at http://127.0.0.1:PORT/github and Sentry at …"
    let origin = line
        .split_whitespace()
        .find_map(|w| w.strip_suffix("/github"))
        .with_context(|| format!("the stand-in did not print its address: {line:?}"))?
        .to_string();
    Ok(Upstream(child, origin))
}

/// An lcov tracefile of about `bytes`, shaped like geninfo's output.
fn big_lcov(bytes: usize) -> String {
    let mut out = String::with_capacity(bytes + 4096);
    let mut file = 0;
    while out.len() < bytes {
        file += 1;
        let _ = writeln!(out, "TN:\nSF:src/module_{file}/lib.rs");
        for line in 1..=2000u32 {
            let hits = if (line * 7 + file) % 5 == 0 {
                0
            } else {
                line % 13
            };
            let _ = writeln!(out, "DA:{line},{hits}");
            if line % 20 == 0 {
                let _ = writeln!(out, "BRDA:{line},0,0,{}\nBRDA:{line},0,1,-", hits);
            }
        }
        out.push_str("LF:2000\nLH:1600\nend_of_record\n");
    }
    out
}

/// A 2,000-line docs page with what real pages hold: headings, prose with
/// links and code, fenced code, tables and admonitions.
fn big_page(lines: usize) -> String {
    let mut out = String::from("# Operations handbook\n\n");
    let mut section = 0;
    while out.lines().count() < lines {
        section += 1;
        let _ = write!(
            out,
            "## Section {section}\n\nThe service keeps **orders** consistent; see [setup](setup.md#install) and \
             `payments serve --port 80{section:02}` for details.\nRetries back off exponentially.\n\n\
             !!! warning \"Careful in production {section}\"\n    Run it on a replica first.\n\n    Then on the primary.\n\n\
             ```rust\nfn handler(req: Request) -> Response {{\n    let id = req.param(\"id\");\n    Response::ok(id)\n}}\n```\n\n\
             | Setting | Default | Meaning |\n|---|---|---|\n| `port` | `8080` | where it listens |\n| `retries` | `3` | attempts |\n\n\
             ![diagram](img/flow-{section}.png)\n\n"
        );
    }
    out
}

pub fn run() -> anyhow::Result<()> {
    tools::ensure_targets(&[crate::PLUGIN_TARGET])?;
    for (package, bin) in [
        ("greenroom", "greenroom"),
        ("greenroom-upstreams", "greenroom-upstreams"),
    ] {
        release_bin(package, bin)?;
    }
    let target = tools::target_dir()?;
    let bin = target.join("release/greenroom");
    let dir = target.join("bench/first-party");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("plugins"))?;
    std::fs::create_dir_all(dir.join("handbook/docs"))?;
    let wasm: Vec<(&str, std::path::PathBuf)> = PLUGINS
        .iter()
        .map(|p| Ok((*p, tools::build_plugin(p)?)))
        .collect::<anyhow::Result<_>>()?;
    let upstream = start_upstream(&target.join("release/greenroom-upstreams"))?;
    let origin = &upstream.1;

    let report = big_lcov(20 * 1024 * 1024);
    std::fs::write(dir.join("big.info"), &report)?;
    std::fs::write(dir.join("small.info"), big_lcov(100 * 1024))?;
    std::fs::write(
        dir.join("handbook/mkdocs.yml"),
        "site_name: Handbook\nnav:\n  - Home: big.md\n",
    )?;
    std::fs::write(dir.join("handbook/docs/big.md"), big_page(2000))?;
    let component = |name: &str, annotations: &str| {
        format!(
            "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: {name}\n  annotations:\n{annotations}spec:\n  type: service\n  lifecycle: production\n  owner: team-a\n"
        )
    };
    let catalog = [
        component(
            "payments",
            "    github.com/project-slug: northwind/payments\n    sentry.io/project-slug: payments\n    greenroom.dev/coverage-report: small.info\n",
        ),
        component("big-coverage", "    greenroom.dev/coverage-report: big.info\n"),
        component("handbook", "    backstage.io/techdocs-ref: dir:handbook\n"),
    ]
    .join("---\n");
    std::fs::write(dir.join("catalog.yaml"), catalog)?;
    let config = dir.join("greenroom.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\ndata_dir = \"data\"\n[plugins]\ndir = \"plugins\"\ncall_timeout = \"10s\"\nhttp_max_bytes = 33554432\n\
             [plugins.config.github]\nbase_url = \"{origin}/github\"\n[plugins.config.sentry]\nbase_url = \"{origin}/sentry\"\norganization = \"northwind\"\n\
             [[plugins.grants]]\nid = \"github\"\nhosts = [\"{origin}\"]\nsecrets = [\"GITHUB_TOKEN\"]\n\
             [[plugins.grants]]\nid = \"sentry\"\nhosts = [\"{origin}\"]\nsecrets = [\"SENTRY_TOKEN\"]\n\
             [catalog]\nrefresh_interval = \"24h\"\n[[catalog.locations]]\ntarget = \"catalog.yaml\"\n"
        ),
    )?;
    // SAFETY: single-threaded here; the server started below inherits them.
    unsafe {
        std::env::set_var("GREENROOM_SECRET_GITHUB_TOKEN", "bench-token");
        std::env::set_var("GREENROOM_SECRET_SENTRY_TOKEN", "bench-token");
    }

    // Compile and cached load, in process.
    let mut compiled = Vec::new();
    for (name, file) in &wasm {
        let (cold, cached, _, _) = plugin_bench(&bin, &config, file, 0)?;
        let kb = std::fs::metadata(file)?.len() / 1024;
        compiled.push((*name, kb, cold, cached));
    }
    for (name, file) in &wasm {
        std::fs::copy(file, dir.join(format!("plugins/{name}.wasm")))?;
    }
    let _ = std::fs::remove_dir_all(dir.join("data"));
    let server = start(&bin, &config)?;
    let mut conn = Conn::open(server.addr)?;
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (_, body) = conn.get("/healthz")?;
        let ready = serde_json::from_slice::<serde_json::Value>(&body)?["ready"] == true;
        let (_, plugins) = conn.get("/api/plugins")?;
        let loaded = serde_json::from_slice::<serde_json::Value>(&plugins)?["items"]
            .as_array()
            .is_some_and(|items| {
                items.iter().filter(|p| p["state"] == "loaded").count() == PLUGINS.len()
            });
        if ready && loaded {
            break;
        }
        if Instant::now() > deadline {
            bail!("the portal did not load its plugins in time");
        }
        std::thread::sleep(Duration::from_millis(20));
    }

    // The whole cards call on a 20 MB report, computed afresh each time.
    let path = "/api/cards/component/default/big-coverage";
    let (_, body) = conn.get_with(path, "Cache-Control: no-cache\r\n")?;
    let cards: serde_json::Value = serde_json::from_slice(&body)?;
    if cards["cards"][0]["id"] != "coverage" {
        bail!("the 20 MB report did not give a coverage card: {cards}");
    }
    let coverage = measure_with(&mut conn, 10, "Cache-Control: no-cache\r\n", |_| {
        path.to_string()
    })?;

    // A 2,000-line docs page: plugin, render, sanitise, every request.
    let page = "/api/docs/component/default/handbook/big";
    let (status, body) = conn.get(page)?;
    if status != 200 {
        bail!(
            "the docs page answered {status}: {}",
            String::from_utf8_lossy(&body)
        );
    }
    let docs = measure(&mut conn, 200, |_| page.to_string())?;

    // An entity's GitHub, Sentry and coverage cards, from cache.
    let cards_path = "/api/cards/component/default/payments";
    let (_, body) = conn.get(cards_path)?;
    let cards: serde_json::Value = serde_json::from_slice(&body)?;
    let ok = cards["cards"]
        .as_array()
        .map_or(0, |c| c.iter().filter(|c| c.get("error").is_none()).count());
    if ok != 3 {
        bail!("expected three cards without errors: {cards}");
    }
    let cached = measure(&mut conn, 2000, |_| cards_path.to_string())?;
    drop(server);
    drop(upstream);

    let mut row = String::new();
    let now = humantime::format_rfc3339_seconds(std::time::SystemTime::now());
    for (name, kb, cold, cached_load) in &compiled {
        println!(
            "{name:<9} {kb:>4} KB  cold compile {cold:.0} ms, cached load {cached_load:.2} ms"
        );
        let _ = writeln!(
            row,
            "| {now} | {name} ({kb} KB) | {cold:.0} | {cached_load:.2} | | | |"
        );
    }
    println!(
        "coverage: 20 MB lcov, whole cards call  p50 {:.0} ms, p99 {:.0} ms (target < 1 s)",
        coverage.0, coverage.1
    );
    println!(
        "techdocs: 2,000-line page over HTTP     p50 {:.1} ms, p99 {:.1} ms (target < 50 ms)",
        docs.0, docs.1
    );
    println!(
        "cards from cache (github, sentry, coverage) p50 {:.2} ms, p99 {:.2} ms (target < 5 ms)",
        cached.0, cached.1
    );
    let _ = writeln!(
        row,
        "| {now} | all | | | {:.0} / {:.0} | {:.1} / {:.1} | {:.2} / {:.2} |",
        coverage.0, coverage.1, docs.0, docs.1, cached.0, cached.1
    );
    append_row(
        &tools::workspace_root()?.join("BENCHMARKS.md"),
        "## First-party plugins",
        &row,
    )
}
