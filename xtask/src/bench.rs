//! `cargo xtask bench catalog`: a synthetic organisation of N entities,
//! ingested by a release build of the real server into an empty on-disk
//! store, then measured over HTTP on loopback. Figures are printed and
//! appended to BENCHMARKS.md.

use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Subcommand;

use crate::http::Conn;
use crate::tools;

#[derive(Subcommand)]
pub enum Bench {
    /// Catalog ingest and query latency at N entities.
    Catalog {
        #[arg(long, default_value_t = 100_000)]
        entities: usize,
        /// Requests per measured query kind.
        #[arg(long, default_value_t = 2000)]
        requests: usize,
        /// `ours` (one configured location), `backstage` (a
        /// Backstage-shaped organisation registered file by file through
        /// the API, and the Backstage frontend's queries), or `all`.
        #[arg(long, default_value = "all")]
        part: Part,
        /// Where the server keeps its store: `sqlite` (the default) or
        /// `postgres` (a PostgreSQL 15 server of the benchmark's own, from
        /// Debian's packages, data in a temporary folder, fsync off).
        #[arg(long, default_value = "sqlite")]
        database: Database,
    },
    /// Plugin call latency, compile and cached load, and drop-in hot loading.
    Plugins {
        #[arg(long, default_value_t = 20_000)]
        calls: usize,
    },
    /// The first-party plugins: compile and load, a 20 MB coverage report,
    /// a 2,000-line docs page, cached cards.
    FirstParty,
    /// Facts and campaigns at N entities: pushing facts, top-N over a
    /// fact, a campaign over ~10,000 targets.
    Insights {
        #[arg(long, default_value_t = 100_000)]
        entities: usize,
    },
    /// Discovery of an organisation of N repositories through the GitHub
    /// plugin on the loopback stand-in, and signed push deliveries until
    /// their change is searchable.
    Discovery {
        #[arg(long, default_value_t = 10_000)]
        repos: usize,
    },
    /// Search at N entities plus P docs pages: full build, query latency,
    /// change to searchable.
    Search {
        #[arg(long, default_value_t = 100_000)]
        entities: usize,
        #[arg(long, default_value_t = 50_000)]
        pages: usize,
    },
    /// The web UI in headless Chromium at N entities: time from navigation
    /// to the catalog's first rows.
    Web {
        #[arg(long, default_value_t = 100_000)]
        entities: usize,
    },
    /// Concurrent clients mixing catalog pages, search, cards and fact
    /// pushes while refreshes run and a plugin loops; any 5xx fails it.
    /// `--seconds 600` is the memory soak. Without `--rate` every client
    /// sends its next request as soon as the last is answered (the
    /// server's saturation); with `--rate R` the clients together send R
    /// requests a second on a fixed schedule, and a latency counts from
    /// when its request was due (a late server is not excused by clients
    /// that waited for it).
    Load {
        #[arg(long, default_value_t = 10_000)]
        entities: usize,
        #[arg(long, default_value_t = 200)]
        clients: usize,
        #[arg(long, default_value_t = 60)]
        seconds: u64,
        #[arg(long)]
        rate: Option<f64>,
    },
}

/// The store a benchmarked server uses.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Database {
    Sqlite,
    Postgres,
}

/// Which part of the catalog benchmark to run.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Part {
    Ours,
    Backstage,
    All,
}

pub fn run(what: Bench) -> anyhow::Result<()> {
    match what {
        Bench::Catalog {
            entities,
            requests,
            part,
            database,
        } => {
            if entities < 1000 {
                bail!("--entities must be at least 1000");
            }
            if database == Database::Postgres {
                if part == Part::Backstage {
                    bail!("--database postgres measures our part only for now");
                }
                tools::ensure_debian(crate::POSTGRES_PACKAGES)?;
                return catalog_on_postgres(entities, requests);
            }
            if part != Part::Backstage {
                catalog(entities, requests)?;
            }
            if part != Part::Ours {
                crate::backstage_bench::run(entities, requests)?;
            }
            Ok(())
        }
        Bench::Plugins { calls } => plugins(calls),
        Bench::FirstParty => crate::first_party::run(),
        Bench::Insights { entities } => crate::insights_bench::run(entities),
        Bench::Search { entities, pages } => crate::search_bench::run(entities, pages),
        Bench::Discovery { repos } => crate::discovery_bench::run(repos),
        Bench::Web { entities } => crate::web_bench::run(entities),
        Bench::Load {
            entities,
            clients,
            seconds,
            rate,
        } => crate::load_bench::run(entities, clients, seconds, rate),
    }
}

/// A small deterministic generator (xorshift), so runs are comparable.
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    pub(crate) fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// The shape of a synthetic organisation of `n` entities.
#[derive(Clone, Copy)]
pub(crate) struct Shape {
    domains: usize,
    systems: usize,
    pub(crate) groups: usize,
    users: usize,
    apis: usize,
    resources: usize,
    pub(crate) components: usize,
}

impl Shape {
    pub(crate) fn of(n: usize) -> Shape {
        let domains = (n / 5000).clamp(1, 50);
        let systems = (n / 200).max(1);
        let groups = (n / 100).max(1);
        let users = n / 10;
        let apis = n * 15 / 100;
        let resources = n * 14 / 100;
        let components = n - domains - systems - groups - users - apis - resources;
        Shape {
            domains,
            systems,
            groups,
            users,
            apis,
            resources,
            components,
        }
    }
}

const LIFECYCLES: [&str; 3] = ["production", "experimental", "deprecated"];
const TYPES: [&str; 4] = ["service", "website", "library", "pipeline"];
const LANGS: [&str; 6] = ["go", "java", "python", "rust", "typescript", "kotlin"];

/// Writes the organisation as multi-document files of 500 entities.
pub(crate) fn generate(dir: &Path, n: usize) -> anyhow::Result<()> {
    let done = dir.join(".complete");
    if done.exists() {
        return Ok(());
    }
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir)?;
    let s = Shape::of(n);
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut docs: Vec<String> = Vec::with_capacity(n);
    for i in 0..s.domains {
        docs.push(format!(
            "apiVersion: backstage.io/v1alpha1\nkind: Domain\nmetadata:\n  name: domain-{i}\n  description: Business domain {i}\nspec:\n  owner: team-{}\n",
            i % s.groups
        ));
    }
    for i in 0..s.systems {
        docs.push(format!(
            "apiVersion: backstage.io/v1alpha1\nkind: System\nmetadata:\n  name: system-{i}\n  title: System {i}\nspec:\n  owner: team-{}\n  domain: domain-{}\n",
            rng.below(s.groups),
            i % s.domains
        ));
    }
    for i in 0..s.groups {
        let parent = if i == 0 {
            String::new()
        } else {
            format!("  parent: team-{}\n", (i - 1) / 8)
        };
        docs.push(format!(
            "apiVersion: backstage.io/v1alpha1\nkind: Group\nmetadata:\n  name: team-{i}\n  title: Team {i}\nspec:\n  type: team\n  profile:\n    displayName: Team {i}\n    email: team-{i}@example.com\n{parent}  children: []\n"
        ));
    }
    for i in 0..s.users {
        docs.push(format!(
            "apiVersion: backstage.io/v1alpha1\nkind: User\nmetadata:\n  name: user-{i}\nspec:\n  profile:\n    displayName: User {i}\n    email: user-{i}@example.com\n  memberOf: [team-{}]\n",
            i % s.groups
        ));
    }
    for i in 0..s.apis {
        docs.push(format!(
            "apiVersion: backstage.io/v1alpha1\nkind: API\nmetadata:\n  name: api-{i}\n  description: API number {i}\n  tags: [rest, v{}]\nspec:\n  type: openapi\n  lifecycle: {}\n  owner: team-{}\n  system: system-{}\n  definition: |\n    openapi: 3.0.3\n    info:\n      title: API {i}\n      version: 1.0.0\n    paths: {{}}\n",
            rng.below(4),
            LIFECYCLES[rng.below(3)],
            rng.below(s.groups),
            rng.below(s.systems)
        ));
    }
    for i in 0..s.resources {
        docs.push(format!(
            "apiVersion: backstage.io/v1alpha1\nkind: Resource\nmetadata:\n  name: resource-{i}\nspec:\n  type: {}\n  owner: team-{}\n  system: system-{}\n",
            ["database", "queue", "bucket", "cache"][rng.below(4)],
            rng.below(s.groups),
            rng.below(s.systems)
        ));
    }
    for i in 0..s.components {
        let lang = LANGS[rng.below(LANGS.len())];
        docs.push(format!(
            "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: svc-{i}\n  title: Service {i}\n  description: Synthetic {lang} component number {i}\n  annotations:\n    github.com/project-slug: example/svc-{i}\n    sentry.io/project-slug: svc-{i}\n  tags: [{lang}, tier-{}]\n  links:\n    - url: https://example.com/svc-{i}\n      title: Dashboard\nspec:\n  type: {}\n  lifecycle: {}\n  owner: team-{}\n  system: system-{}\n  providesApis: [api-{}]\n  consumesApis: [api-{}, api-{}]\n  dependsOn: [resource:resource-{}]\n",
            rng.below(3),
            TYPES[rng.below(TYPES.len())],
            LIFECYCLES[rng.below(3)],
            rng.below(s.groups),
            rng.below(s.systems),
            rng.below(s.apis),
            rng.below(s.apis),
            rng.below(s.apis),
            rng.below(s.resources)
        ));
    }
    for (i, chunk) in docs.chunks(500).enumerate() {
        std::fs::write(dir.join(format!("part-{i:05}.yaml")), chunk.join("---\n"))?;
    }
    std::fs::write(done, n.to_string())?;
    Ok(())
}

/// Builds `package`'s binary `bin` in release and returns its path.
pub(crate) fn release_bin(package: &str, bin: &str) -> anyhow::Result<PathBuf> {
    tools::cargo(&["build", "--release", "--package", package, "--bin", bin])?;
    Ok(tools::target_dir()?.join("release").join(bin))
}

/// Waits until the server says it is ready (its first refresh of every
/// location done), for at most `within`; returns its health answer.
pub(crate) fn wait_ready(conn: &mut Conn, within: Duration) -> anyhow::Result<serde_json::Value> {
    wait_health(conn, within, "ready", |health| health["ready"] == true)
}

/// Waits (10 minutes at most) until the portal's search index holds `n`
/// documents: it indexes in the background, behind the catalog.
pub(crate) fn wait_searchable(conn: &mut Conn, n: usize) -> anyhow::Result<serde_json::Value> {
    wait_health(
        conn,
        Duration::from_secs(600),
        "searchable (its index caught up with the catalog)",
        |health| health["search"]["documents"].as_u64() == Some(n as u64),
    )
}

/// Polls `/healthz` every 20 ms until `done` holds of its answer, for at
/// most `within` (then fails, saying the portal was not `what`).
pub(crate) fn wait_health(
    conn: &mut Conn,
    within: Duration,
    what: &str,
    done: impl Fn(&serde_json::Value) -> bool,
) -> anyhow::Result<serde_json::Value> {
    let deadline = Instant::now() + within;
    loop {
        let (_, body) = conn.get("/healthz")?;
        let health: serde_json::Value = serde_json::from_slice(&body)?;
        if done(&health) {
            return Ok(health);
        }
        if Instant::now() > deadline {
            bail!("the portal was not {what} within {within:?}: {health}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The `q` quantile of sorted samples, in milliseconds.
pub(crate) fn quantile_ms(sorted: &[Duration], q: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

pub(crate) struct Server {
    child: Child,
    pub(crate) addr: SocketAddr,
}

impl Server {
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn start(bin: &Path, config: &Path) -> anyhow::Result<Server> {
    start_at(bin, config, "127.0.0.1:0")
}

/// The same on a given address (a config that names its own URL).
pub(crate) fn start_at(bin: &Path, config: &Path, addr: &str) -> anyhow::Result<Server> {
    let mut child = Command::new(bin)
        .args([
            "--config",
            &config.to_string_lossy(),
            "serve",
            "--addr",
            addr,
        ])
        // `GREENROOM_BENCH_LOG=info` shows what the server did meanwhile.
        .env(
            "RUST_LOG",
            std::env::var("GREENROOM_BENCH_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("cannot start {}", bin.display()))?;
    let stdout = child.stdout.take().context("no stdout")?;
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line)?;
    let addr = line
        .trim()
        .rsplit("http://")
        .next()
        .and_then(|a| a.parse().ok())
        .with_context(|| format!("server did not print its address: {line:?}"))?;
    Ok(Server { child, addr })
}

/// The CPU time (user and system, seconds) a process has used so far, and
/// the bytes it has handed to `write` and its kin (MiB): measures of work
/// steadier than wall time on a shared machine.
pub(crate) fn work_so_far(pid: u32) -> anyhow::Result<(f64, f64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name, which is in parentheses: utime and
    // stime are the 12th and 13th.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .context("no command name in /proc stat")?
        .1
        .split_whitespace()
        .collect();
    let ticks: f64 = fields[11].parse::<f64>()? + fields[12].parse::<f64>()?;
    // The kernel's USER_HZ, 100 on every Linux this runs on.
    let cpu = ticks / 100.0;
    let io = std::fs::read_to_string(format!("/proc/{pid}/io"))?;
    let written: f64 = io
        .lines()
        .find_map(|l| l.strip_prefix("wchar:"))
        .and_then(|v| v.trim().parse().ok())
        .context("no wchar in /proc io")?;
    Ok((cpu, written / (1024.0 * 1024.0)))
}

pub(crate) fn peak_rss_mib(pid: u32) -> anyhow::Result<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no VmHWM in /proc status")?;
    Ok(kb / 1024.0)
}

pub(crate) fn measure(
    conn: &mut Conn,
    requests: usize,
    path: impl FnMut(usize) -> String,
) -> anyhow::Result<(f64, f64)> {
    measure_with(conn, requests, "", path)
}

pub(crate) fn measure_with(
    conn: &mut Conn,
    requests: usize,
    headers: &str,
    path: impl FnMut(usize) -> String,
) -> anyhow::Result<(f64, f64)> {
    let samples = samples(conn, requests, headers, path)?;
    Ok((quantile_ms(&samples, 0.50), quantile_ms(&samples, 0.99)))
}

/// Latencies of `requests` GETs after a warm-up (the first requests
/// prepare statements and fill caches), sorted; any non-200 is an error.
pub(crate) fn samples(
    conn: &mut Conn,
    requests: usize,
    headers: &str,
    mut path: impl FnMut(usize) -> String,
) -> anyhow::Result<Vec<Duration>> {
    for i in 0..requests.min(50) {
        conn.get_with(&path(i), headers)?;
    }
    let mut samples = Vec::with_capacity(requests);
    for i in 0..requests {
        let p = path(i);
        let t = Instant::now();
        let (status, body) = conn.get_with(&p, headers)?;
        samples.push(t.elapsed());
        if status != 200 {
            bail!(
                "GET {p} answered {status}: {}",
                String::from_utf8_lossy(&body)
            );
        }
    }
    samples.sort();
    Ok(samples)
}

/// The catalog's own rows with the store in PostgreSQL.
fn catalog_on_postgres(n: usize, requests: usize) -> anyhow::Result<()> {
    let (bin, config, _dir) = prepare(
        &format!("catalog-{n}"),
        |org| generate(org, n),
        "[[catalog.locations]]\ntype = \"file\"\ntarget = \"org/part-*.yaml\"\n",
    )?;
    let server = crate::pg_server::pg_server();
    let text = std::fs::read_to_string(&config)?.replacen(
        "[server]\n",
        &format!("[server]\ndatabase = \"{}\"\n", server.database()),
        1,
    );
    std::fs::write(&config, text)?;
    let (rows, first, _conn) = catalog_rows(&bin, &config, n, requests)?;
    let benchmarks = tools::workspace_root()?.join("BENCHMARKS.md");
    append_row(&benchmarks, "## Catalog on PostgreSQL", &rows.row(n))?;
    let row = replicas(&bin, &config, n, &first)?;
    append_row(&benchmarks, "## Replicas on PostgreSQL", &row)
}

/// Clients reading at once in the replica measurement.
const REPLICA_CLIENTS: usize = 8;
/// How long each replica measurement lasts.
const REPLICA_SECONDS: f64 = 10.0;

/// Read throughput of one replica, then of two on the same database (a
/// second `greenroom serve` with its own data folder, so its own search
/// index): [`REPLICA_CLIENTS`] clients reading by-name as fast as they are
/// answered, all on the first, then half on each. Answers the row.
fn replicas(bin: &Path, config: &Path, n: usize, first: &Server) -> anyhow::Result<String> {
    let second_config = config.with_file_name("replica-b.toml");
    let text = std::fs::read_to_string(config)?;
    if !text.contains("data_dir = \"data\"") {
        bail!("{} names no data_dir = \"data\"", config.display());
    }
    std::fs::write(
        &second_config,
        text.replacen("data_dir = \"data\"", "data_dir = \"data-b\"", 1),
    )?;
    let _ = std::fs::remove_dir_all(config.with_file_name("data-b"));
    let second = start(bin, &second_config)?;
    wait_searchable(&mut Conn::open(second.addr)?, n)?;
    let one = throughput(&[first.addr], n)?;
    let two = throughput(&[first.addr, second.addr], n)?;
    println!(
        "read throughput, one replica   {one:.0} requests/s ({REPLICA_CLIENTS} clients, by-name)"
    );
    println!(
        "read throughput, two replicas  {two:.0} requests/s ({:.2}× one)",
        two / one
    );
    Ok(format!(
        "| {} | {n} | {REPLICA_CLIENTS} | {one:.0} | {two:.0} | {:.2}× |\n",
        humantime::format_rfc3339_seconds(std::time::SystemTime::now()),
        two / one
    ))
}

/// By-name reads a second over [`REPLICA_SECONDS`], from
/// [`REPLICA_CLIENTS`] keep-alive connections spread over `servers`.
fn throughput(servers: &[SocketAddr], n: usize) -> anyhow::Result<f64> {
    let components = Shape::of(n).components;
    let until = Instant::now() + Duration::from_secs_f64(REPLICA_SECONDS);
    let clients: Vec<_> = (0..REPLICA_CLIENTS)
        .map(|c| {
            let server = servers[c % servers.len()];
            std::thread::spawn(move || -> anyhow::Result<usize> {
                let mut conn = Conn::open(server)?;
                let mut rng = Rng(1 + c as u64);
                let mut done = 0;
                while Instant::now() < until {
                    let path = format!(
                        "/api/catalog/entities/by-name/component/default/svc-{}",
                        rng.below(components)
                    );
                    let (status, body) = conn.get(&path)?;
                    if status != 200 {
                        bail!(
                            "GET {path} answered {status}: {}",
                            String::from_utf8_lossy(&body)
                        );
                    }
                    done += 1;
                }
                Ok(done)
            })
        })
        .collect();
    let mut total = 0;
    for client in clients {
        total += client
            .join()
            .map_err(|_| anyhow::anyhow!("a reading client panicked"))??;
    }
    Ok(total as f64 / REPLICA_SECONDS)
}

/// What `catalog_rows` measured.
struct CatalogRows {
    ingest: Duration,
    by_name: (f64, f64),
    list_team: (f64, f64),
    list_broad: (f64, f64),
    facets: (f64, f64),
    facets_cold: (f64, f64),
    facets_kind: (f64, f64),
    by_query: (f64, f64),
    rss: f64,
}

impl CatalogRows {
    /// Prints the figures and answers them as a BENCHMARKS.md row.
    fn row(&self, n: usize) -> String {
        let fmt = |(p50, p99): (f64, f64)| format!("{p50:.2} / {p99:.2}");
        let rate = n as f64 / self.ingest.as_secs_f64();
        println!("entities               {n}");
        println!(
            "ingest (empty store)   {:.1} s ({rate:.0} entities/s)",
            self.ingest.as_secs_f64()
        );
        println!("by-name p50/p99        {} ms", fmt(self.by_name));
        println!(
            "team list p50/p99      {} ms  (filter kind+spec.owner, order by name, limit 50)",
            fmt(self.list_team)
        );
        println!(
            "broad list p50/p99     {} ms  (filter kind+spec.lifecycle, limit 50)",
            fmt(self.list_broad)
        );
        println!(
            "facets p50/p99         {} ms  (kind, spec.type, spec.owner; cached until the next write)",
            fmt(self.facets)
        );
        println!(
            "facets uncached        {} ms  (same, Cache-Control: no-cache)",
            fmt(self.facets_cold)
        );
        println!(
            "kind facets uncached   {} ms  (spec.type, spec.owner, spec.lifecycle of components, no-cache)",
            fmt(self.facets_kind)
        );
        println!(
            "by-query p50/p99       {} ms  (kind filter, full text, order by name, 20)",
            fmt(self.by_query)
        );
        println!("server peak RSS        {:.0} MiB", self.rss);
        format!(
            "| {} | {n} | {:.1} s ({rate:.0}/s) | {} | {} | {} | {} | {} | {} | {} | {:.0} MiB |\n",
            humantime::format_rfc3339_seconds(std::time::SystemTime::now()),
            self.ingest.as_secs_f64(),
            fmt(self.by_name),
            fmt(self.list_team),
            fmt(self.list_broad),
            fmt(self.facets),
            fmt(self.facets_cold),
            fmt(self.facets_kind),
            fmt(self.by_query),
            self.rss,
        )
    }
}

/// Starts the server on `config`, times its ingest of the `n`-entity
/// organisation and measures the catalog's queries; answers the figures
/// with the server still running.
fn catalog_rows(
    bin: &Path,
    config: &Path,
    n: usize,
    requests: usize,
) -> anyhow::Result<(CatalogRows, Server, Conn)> {
    let started = Instant::now();
    let server = start(bin, config)?;
    let mut conn = Conn::open(server.addr)?;
    let health = wait_ready(&mut conn, Duration::from_secs(1800))?;
    let count = health["catalog"]["entities"].as_u64().unwrap_or(0) as usize;
    if count != n {
        bail!("ingested {count} entities, expected {n}: {health}");
    }
    let ingest = started.elapsed();
    eprintln!(
        "xtask: ingested {n} entities in {:.1} s",
        ingest.as_secs_f64()
    );
    // Queries are measured in the steady state: once the search index has
    // caught up with the ingest (it indexes in the background meanwhile).
    wait_searchable(&mut conn, n)?;
    eprintln!(
        "xtask: the search index caught up {:.1} s after the ingest",
        (started.elapsed() - ingest).as_secs_f64()
    );
    let shape = Shape::of(n);
    let mut rng = Rng(42);
    let by_name = measure(&mut conn, requests, |_| {
        format!(
            "/api/catalog/entities/by-name/component/default/svc-{}",
            rng.below(shape.components)
        )
    })?;
    let mut rng = Rng(43);
    let list_team = measure(&mut conn, requests, |_| {
        format!(
            "/api/catalog/entities?filter=kind=component,spec.owner=team-{}&order=asc:metadata.name&limit=50",
            rng.below(shape.groups)
        )
    })?;
    let mut rng = Rng(44);
    let list_broad = measure(&mut conn, requests, |_| {
        format!(
            "/api/catalog/entities?filter=kind=component,spec.lifecycle={}&limit=50",
            LIFECYCLES[rng.below(3)]
        )
    })?;
    let facets = measure(&mut conn, requests, |_| {
        "/api/catalog/entity-facets?facet=kind&facet=spec.type&facet=spec.owner".to_string()
    })?;
    // Facets are cached until the next write; `Cache-Control: no-cache`
    // measures the work itself, over the whole catalog and filtered by kind.
    let facets_cold = measure_with(
        &mut conn,
        requests / 10,
        "Cache-Control: no-cache\r\n",
        |_| "/api/catalog/entity-facets?facet=kind&facet=spec.type&facet=spec.owner".to_string(),
    )?;
    let facets_kind = measure_with(
        &mut conn,
        requests / 10,
        "Cache-Control: no-cache\r\n",
        |_| {
            "/api/catalog/entity-facets?facet=spec.type&facet=spec.owner&facet=spec.lifecycle&filter=kind=component".to_string()
        },
    )?;
    let mut rng = Rng(45);
    let by_query = measure(&mut conn, requests, |_| {
        format!(
            "/api/catalog/entities/by-query?filter=kind=component&limit=20&orderField=metadata.name,asc&fullTextFilterTerm=svc-{}",
            rng.below(shape.components)
        )
    })?;
    let rss = peak_rss_mib(server.child.id())?;
    let rows = CatalogRows {
        ingest,
        by_name,
        list_team,
        list_broad,
        facets,
        facets_cold,
        facets_kind,
        by_query,
        rss,
    };
    Ok((rows, server, conn))
}

fn catalog(n: usize, requests: usize) -> anyhow::Result<()> {
    let (bin, config, dir) = prepare(
        &format!("catalog-{n}"),
        |org| generate(org, n),
        "[[catalog.locations]]\ntype = \"file\"\ntarget = \"org/part-*.yaml\"\n",
    )?;
    let (mut rows, server, mut conn) = catalog_rows(&bin, &config, n, requests)?;
    let shape = Shape::of(n);
    // Sign-in costs: the same by-name read with a stored API token (hash,
    // lookup, policy, audit of nothing since it is a read), against none.
    let token = create_token(&bin, &config, "facts:write")?;
    let auth_header = format!("Authorization: Bearer {token}\r\n");
    let mut rng = Rng(42);
    let anonymous = measure(&mut conn, requests, |_| {
        format!(
            "/api/catalog/entities/by-name/component/default/svc-{}",
            rng.below(shape.components)
        )
    })?;
    let mut rng = Rng(42);
    let authenticated = measure_with(&mut conn, requests, &auth_header, |_| {
        format!(
            "/api/catalog/entities/by-name/component/default/svc-{}",
            rng.below(shape.components)
        )
    })?;
    let scrape = measure(&mut conn, requests / 10, |_| "/metrics".to_string())?;
    let rss = peak_rss_mib(server.child.id())?;
    drop(server);
    // The same read with a browser's session cookie, on the same store
    // served in OpenID Connect mode, after a sign-in through the test
    // provider (oidc-provider) and its login form.
    let (session_anonymous, session) =
        crate::session_bench::session_cost(&bin, &dir, requests, |rng: &mut Rng| {
            format!(
                "/api/catalog/entities/by-name/component/default/svc-{}",
                rng.below(shape.components)
            )
        })?;

    let fmt = |(p50, p99): (f64, f64)| format!("{p50:.2} / {p99:.2}");
    println!(
        "by-name anonymous      {} ms; with a token {} ms (+{:.0} µs at p50)",
        fmt(anonymous),
        fmt(authenticated),
        (authenticated.0 - anonymous.0) * 1000.0
    );
    println!(
        "by-name anonymous      {} ms; with a session {} ms (+{:.0} µs at p50)",
        fmt(session_anonymous),
        fmt(session),
        (session.0 - session_anonymous.0) * 1000.0
    );
    println!("/metrics scrape        {} ms", fmt(scrape));
    append_row(
        &tools::workspace_root()?.join("BENCHMARKS.md"),
        "## Sign-in and metrics",
        &format!(
            "| {} | {n} | {} | {} | {:+.0} | {} | {:+.0} | {} |\n",
            humantime::format_rfc3339_seconds(std::time::SystemTime::now()),
            fmt(anonymous),
            fmt(authenticated),
            (authenticated.0 - anonymous.0) * 1000.0,
            fmt(session),
            (session.0 - session_anonymous.0) * 1000.0,
            fmt(scrape),
        ),
    )?;
    rows.rss = rss;
    append_row(
        &tools::workspace_root()?.join("BENCHMARKS.md"),
        "## Catalog",
        &rows.row(n),
    )
}

/// Builds the release server and lays out `<target>/bench/<name>`: the
/// organisation `generate` writes into `org/` (kept between runs), an
/// empty `data/`, and a `greenroom.toml` with `catalog` settings added.
/// Returns the binary, the config and the benchmark's folder.
pub(crate) fn prepare(
    name: &str,
    generate: impl FnOnce(&Path) -> anyhow::Result<()>,
    catalog: &str,
) -> anyhow::Result<(PathBuf, PathBuf, PathBuf)> {
    let bin = release_bin("greenroom", "greenroom")?;
    let dir = tools::target_dir()?.join("bench").join(name);
    let org = dir.join("org");
    eprintln!("xtask: the organisation is in {}", org.display());
    generate(&org)?;
    let _ = std::fs::remove_dir_all(dir.join("data"));
    let config = dir.join("greenroom.toml");
    std::fs::write(
        &config,
        format!("[server]\ndata_dir = \"data\"\n[catalog]\nrefresh_interval = \"24h\"\n{catalog}"),
    )?;
    Ok((bin, config, dir))
}

/// A stored API token with `scope`, made by the CLI (which creates the
/// store when there is none yet).
pub(crate) fn create_token(bin: &Path, config: &Path, scope: &str) -> anyhow::Result<String> {
    let out = Command::new(bin)
        .args(["--config", &config.to_string_lossy()])
        .args(["token", "create", "--name", "bench", "--scope", scope])
        .env("RUST_LOG", "warn")
        .output()?;
    if !out.status.success() {
        bail!(
            "token create failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8(out.stdout)?.trim().to_string())
}

/// Appends a table row under `heading` in BENCHMARKS.md.
pub(crate) fn append_row(path: &PathBuf, heading: &str, row: &str) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let Some(start) = text.find(heading) else {
        bail!("{} has no '{heading}' section", path.display());
    };
    // The section's table ends at the first blank line after its header row.
    let table = text[start..]
        .find("\n|")
        .map(|i| start + i + 1)
        .context("section has no table")?;
    let end = text[table..]
        .find("\n\n")
        .map(|i| table + i + 1)
        .unwrap_or(text.len());
    let mut out = String::with_capacity(text.len() + row.len());
    out.push_str(&text[..end]);
    if !out.ends_with('\n') {
        out.push('\n');
    }
    let _ = write!(out, "{row}");
    out.push_str(&text[end..]);
    std::fs::write(path, out)?;
    eprintln!("xtask: appended the figures to {}", path.display());
    Ok(())
}

/// Builds the release host and the plugins, then measures.
fn plugins(calls: usize) -> anyhow::Result<()> {
    tools::ensure_targets(&[crate::PLUGIN_TARGET])?;
    let bin = release_bin("greenroom", "greenroom")?;
    let target = tools::target_dir()?;
    let hello = tools::build_plugin("hello")?;
    let dir = target.join("bench/plugins");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("plugins"))?;
    std::fs::write(
        dir.join("catalog.yaml"),
        "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: checkout\nspec:\n  type: service\n  lifecycle: production\n  owner: team-a\n",
    )?;
    let config = dir.join("greenroom.toml");
    std::fs::write(
        &config,
        "[server]\ndata_dir = \"data\"\n[plugins]\ndir = \"plugins\"\n[catalog]\nrefresh_interval = \"24h\"\n[[catalog.locations]]\ntarget = \"catalog.yaml\"\n",
    )?;

    // In-process: compile, cached load, fresh-instance calls.
    let (cold, cached, p50, p99) = plugin_bench(&bin, &config, &hello, calls)?;

    // Over HTTP: from dropping the file to the first card served.
    let (server, mut conn, first_drop, cached_drop) = drop_to_card(&bin, &config, &dir, &hello)?;
    // Cards over HTTP, from cache after the first call.
    let served = measure(&mut conn, 2000, |_| {
        "/api/cards/component/default/checkout".to_string()
    })?;
    drop(server);
    let page = ten_card_page(&bin, &dir)?;
    let (idle, busy) = loop_cost(&bin, &dir)?;
    let python = python_plugin(&bin, &config, &dir)?;
    // The 18 MB Python component dropped into a portal with an empty
    // compiled cache, then again with its compiled form cached.
    let python_drop = match python {
        Some(_) => {
            let (server, _, cold, cached) =
                drop_to_card(&bin, &config, &dir, &dir.join("python-hello.wasm"))?;
            drop(server);
            std::fs::remove_file(dir.join("plugins/dropped.wasm"))?;
            Some((cold, cached))
        }
        None => None,
    };
    let javascript = javascript_plugin(&bin, &config, &dir)?;
    // The same plugin source through each contract version: a 0.1.0
    // component's answers are converted into the host's 0.2.0 types.
    let old = tools::workspace_root()?.join("tests/compat/0.1.0/everything.wasm");
    let current = tools::build_plugin("everything")?;
    let (_, _, old_p50, old_p99) = plugin_bench(&bin, &config, &old, calls)?;
    let (_, _, new_p50, new_p99) = plugin_bench(&bin, &config, &current, calls)?;

    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "plugin                 hello ({} KB)",
        std::fs::metadata(&hello)?.len() / 1024
    );
    println!("instantiate + call     p50 {p50:.1} µs, p99 {p99:.1} µs (fresh Store per call)");
    println!("cold compile           {cold:.1} ms; cached load {cached:.2} ms");
    println!(
        "drop to first card     {:.0} ms (compiling), {:.0} ms (compiled form cached)",
        ms(first_drop),
        ms(cached_drop)
    );
    println!(
        "cards served (cached)  p50 {:.2} ms, p99 {:.2} ms over HTTP",
        served.0, served.1
    );
    println!(
        "10-card page, fresh    p50 {:.1} ms, p95 {:.1} ms (10 plugins, each calling a loopback upstream)",
        page.0, page.1
    );
    println!(
        "another entity's cards p50 {:.2} / p99 {:.2} ms idle, {:.2} / {:.2} ms while a plugin spins in a loop",
        idle.0, idle.1, busy.0, busy.1
    );
    let mut row = format!(
        "| {} | hello | {p50:.1} / {p99:.1} | {cold:.1} | {cached:.2} | {:.0} / {:.0} | {:.2} / {:.2} | {:.1} / {:.1} | {:.2} / {:.2} → {:.2} / {:.2} |\n",
        humantime::format_rfc3339_seconds(std::time::SystemTime::now()),
        ms(first_drop),
        ms(cached_drop),
        served.0,
        served.1,
        page.0,
        page.1,
        idle.0,
        idle.1,
        busy.0,
        busy.1
    );
    println!(
        "contract versions      everything cards p50 {new_p50:.1} µs (0.2.0), {old_p50:.1} µs (0.1.0 through the 0.2.0 host, {:+.1} %)",
        (old_p50 / new_p50 - 1.0) * 100.0
    );
    for (name, p50, p99) in [
        ("everything 0.2.0", new_p50, new_p99),
        ("everything 0.1.0", old_p50, old_p99),
    ] {
        row.push_str(&format!(
            "| {} | {name} | {p50:.1} / {p99:.1} | — | — | — | — | — | — |\n",
            humantime::format_rfc3339_seconds(std::time::SystemTime::now())
        ));
    }
    // Go and C, as committed for the compatibility suite (their cards need
    // no upstream): Go carries its runtime and garbage collector, C nothing.
    let root = tools::workspace_root()?;
    let mut compiled = Vec::new();
    for (name, file) in [
        ("go-hello 0.1.0", "tests/compat/0.1.0/go-hello.wasm"),
        ("c-hello 0.1.0", "tests/compat/0.1.0/c-hello.wasm"),
    ] {
        let file = root.join(file);
        let figures = plugin_bench(&bin, &config, &file, calls.min(2000))?;
        let size = std::fs::metadata(&file)?.len() as f64 / 1e6;
        compiled.push((format!("{name} ({size:.1} MB)"), Some(figures)));
    }
    if let Some((cold, cached)) = python_drop {
        println!(
            "python-hello drop      {:.0} ms to its first card (compiling), {:.0} ms (compiled form cached)",
            ms(cold),
            ms(cached)
        );
        row.push_str(&format!(
            "| {} | python-hello dropped in | — | — | — | {:.0} / {:.0} | — | — | — |\n",
            humantime::format_rfc3339_seconds(std::time::SystemTime::now()),
            ms(cold),
            ms(cached)
        ));
    }
    compiled.push(("js-hello".into(), javascript));
    compiled.push(("python-hello".into(), python));
    for (name, figures) in compiled {
        let Some((cold, cached, p50, p99)) = figures else {
            continue;
        };
        println!(
            "{name:<23}call p50 {p50:.0} µs, p99 {p99:.0} µs; cold compile {cold:.0} ms; cached load {cached:.1} ms"
        );
        row.push_str(&format!(
            "| {} | {name} | {p50:.0} / {p99:.0} | {cold:.0} | {cached:.1} | — | — | — | — |\n",
            humantime::format_rfc3339_seconds(std::time::SystemTime::now())
        ));
    }
    // The examples in four languages, each in its real setting.
    for f in crate::examples_bench::measure(&bin, &config, &dir, calls.min(1000))? {
        let name = format!("{} ({:.2} MB)", f.name, f.bytes as f64 / 1e6);
        println!(
            "{name:<23}cards p50 {:.0} µs, p99 {:.0} µs; cold compile {:.0} ms; cached load {:.1} ms",
            f.p50_us, f.p99_us, f.cold_ms, f.cached_ms
        );
        row.push_str(&format!(
            "| {} | {name} | {:.0} / {:.0} | {:.0} | {:.1} | — | — | — | — |\n",
            humantime::format_rfc3339_seconds(std::time::SystemTime::now()),
            f.p50_us,
            f.p99_us,
            f.cold_ms,
            f.cached_ms
        ));
    }
    append_row(
        &tools::workspace_root()?.join("BENCHMARKS.md"),
        "## Plugins",
        &row,
    )
}

/// Starts a portal on `config` with an empty store and compiled cache,
/// drops `wasm` into its plugins folder and times until its first card is
/// served over HTTP; then removes it and drops it again, compiled form
/// cached (it stays in). Answers the running portal, a connection and
/// both times.
fn drop_to_card(
    bin: &Path,
    config: &Path,
    dir: &Path,
    wasm: &Path,
) -> anyhow::Result<(Server, Conn, Duration, Duration)> {
    let dropped = dir.join("plugins/dropped.wasm");
    let _ = std::fs::remove_file(&dropped);
    let _ = std::fs::remove_dir_all(dir.join("data"));
    let server = start(bin, config)?;
    let mut conn = Conn::open(server.addr)?;
    wait_ready(&mut conn, Duration::from_secs(60))?;
    let drop_in = |conn: &mut Conn| -> anyhow::Result<Duration> {
        let started = Instant::now();
        std::fs::copy(wasm, &dropped)?;
        loop {
            let (_, body) = conn.get("/api/cards/component/default/checkout")?;
            let cards: serde_json::Value = serde_json::from_slice(&body)?;
            if cards["cards"].as_array().is_some_and(|c| !c.is_empty()) {
                return Ok(started.elapsed());
            }
            if started.elapsed() > Duration::from_secs(60) {
                bail!(
                    "{} was not served within 60 s of being dropped in",
                    wasm.display()
                );
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    };
    let first = drop_in(&mut conn)?;
    std::fs::remove_file(&dropped)?;
    std::thread::sleep(Duration::from_millis(500));
    let cached = drop_in(&mut conn)?;
    Ok((server, conn, first, cached))
}

/// An entity page with 10 plugin cards, each plugin fetching a loopback
/// upstream (with a secret) on every request: p50 and p95 in ms, with
/// `Cache-Control: no-cache` so every request calls all ten.
fn ten_card_page(bin: &Path, dir: &Path) -> anyhow::Result<(f64, f64)> {
    let wasm = std::fs::read(tools::build_plugin("everything")?)?;
    // Ten distinct plugins from one build: the manifest's id is patched in
    // place, keeping its length, so no section size changes.
    let needle = br#""id": "everything""#;
    let places: Vec<usize> = wasm
        .windows(needle.len())
        .enumerate()
        .filter(|(_, w)| *w == needle)
        .map(|(i, _)| i)
        .collect();
    if places.is_empty() {
        bail!("manifest id not found in everything.wasm");
    }
    let page_dir = dir.join("page");
    std::fs::create_dir_all(page_dir.join("plugins"))?;
    let upstream = std::net::TcpListener::bind("127.0.0.1:0")?;
    let origin = format!("http://{}", upstream.local_addr()?);
    std::thread::spawn(move || {
        for stream in upstream.incoming() {
            let Ok(mut stream) = stream else { continue };
            std::thread::spawn(move || {
                use std::io::{Read, Write};
                let mut buf = [0u8; 4096];
                let _ = stream.read(&mut buf);
                let body = r#"{"status":"green"}"#;
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            });
        }
    });
    let mut grants = String::new();
    for i in 0..10 {
        let mut copy = wasm.clone();
        let id = format!(r#""id": "everythin{i}""#);
        for &at in &places {
            copy[at..at + needle.len()].copy_from_slice(id.as_bytes());
        }
        std::fs::write(page_dir.join(format!("plugins/p{i}.wasm")), copy)?;
        let _ = writeln!(
            grants,
            "[[plugins.grants]]\nid = \"everythin{i}\"\nhosts = [\"{origin}\"]\nsecrets = [\"TOKEN\"]"
        );
    }
    std::fs::write(
        page_dir.join("catalog.yaml"),
        format!(
            "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: checkout\n  annotations:\n    test/url: {origin}/status\nspec:\n  type: service\n  lifecycle: production\n  owner: team-a\n"
        ),
    )?;
    let config = page_dir.join("greenroom.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\ndata_dir = \"data\"\n[plugins]\ndir = \"plugins\"\n{grants}[catalog]\nrefresh_interval = \"24h\"\n[[catalog.locations]]\ntarget = \"catalog.yaml\"\n"
        ),
    )?;
    // SAFETY: set before the child starts; xtask reads no other variable
    // concurrently.
    unsafe { std::env::set_var("GREENROOM_SECRET_TOKEN", "bench-token") };
    let server = start(bin, &config)?;
    let mut conn = Conn::open(server.addr)?;
    let path = "/api/cards/component/default/checkout";
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, body) = conn.get(path)?;
        let v: serde_json::Value = serde_json::from_slice(&body)?;
        let green = v["cards"].as_array().map_or(0, |c| {
            c.iter()
                .filter(|c| c["nodes"][1]["value"] == r#"200 {"status":"green"}"#)
                .count()
        });
        if green == 10 {
            break;
        }
        if Instant::now() > deadline {
            bail!("the 10-card page never showed 10 upstream cards: {v}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let samples = samples(&mut conn, 500, "Cache-Control: no-cache\r\n", |_| {
        path.to_string()
    })?;
    Ok((quantile_ms(&samples, 0.50), quantile_ms(&samples, 0.95)))
}

/// Builds `examples/plugins/python-hello` with componentize-py (installed
/// from PyPI when missing) and measures it like the Rust plugin. `None`
/// (with the reason printed) when Python tooling cannot be had here.
fn python_plugin(
    bin: &Path,
    config: &Path,
    dir: &Path,
) -> anyhow::Result<Option<(f64, f64, f64, f64)>> {
    let root = tools::workspace_root()?;
    let example = root.join("examples/plugins/python-hello");
    if let Err(e) = tools::ensure_pip_tool("componentize-py", crate::COMPONENTIZE_PY) {
        eprintln!("xtask: {e:#}; skipping the Python plugin");
        return Ok(None);
    }
    let raw = dir.join("python-raw.wasm");
    let out = dir.join("python-hello.wasm");
    let status = Command::new("componentize-py")
        .args([
            "-d",
            &root.join("wit/0.1.0").to_string_lossy(),
            "-w",
            "export-cards",
            "componentize",
            "app",
            "-o",
            &raw.to_string_lossy(),
        ])
        .current_dir(&example)
        .status()?;
    if !status.success() {
        bail!("componentize-py failed on {}", example.display());
    }
    embed_manifest(bin, config, &raw, &example.join("manifest.json"), &out)?;
    Ok(Some(plugin_bench(bin, config, &out, 500)?))
}

/// `greenroom plugin bench`: cold compile ms, cached load ms, call p50 and
/// p99 µs.
pub(crate) fn plugin_bench(
    bin: &Path,
    config: &Path,
    wasm: &Path,
    calls: usize,
) -> anyhow::Result<(f64, f64, f64, f64)> {
    let out = Command::new(bin)
        .arg("--config")
        .arg(config)
        .args(["plugin", "bench"])
        .arg(wasm)
        .args(["--calls", &calls.to_string()])
        .env("RUST_LOG", "warn")
        .output()?;
    if !out.status.success() {
        bail!(
            "plugin bench of {} failed: {}",
            wasm.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let line = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let field = |name: &str| -> anyhow::Result<f64> {
        line.split_whitespace()
            .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
            .and_then(|v| v.parse().ok())
            .with_context(|| format!("no {name} in {line:?}"))
    };
    Ok((
        field("cold_compile_ms")?,
        field("cached_load_ms")?,
        field("call_p50_us")?,
        field("call_p99_us")?,
    ))
}

/// Builds `examples/plugins/js-hello` with componentize-js (from the npm
/// registry) and measures it. `None` (with the reason printed) when Node.js
/// or the package cannot be had here.
fn javascript_plugin(
    bin: &Path,
    config: &Path,
    dir: &Path,
) -> anyhow::Result<Option<(f64, f64, f64, f64)>> {
    let root = tools::workspace_root()?;
    let example = root.join("examples/plugins/js-hello");
    let npm_ok = Command::new("npm")
        .args(["install", "--no-audit", "--no-fund", "--silent"])
        .current_dir(&example)
        .status()
        .is_ok_and(|s| s.success());
    if !npm_ok {
        eprintln!(
            "xtask: npm install of componentize-js failed or npm is missing; skipping the JavaScript plugin"
        );
        return Ok(None);
    }
    let raw = dir.join("js-raw.wasm");
    let out = dir.join("js-hello.wasm");
    let built = Command::new("node")
        .arg(example.join("build.mjs"))
        .arg(root.join("wit/0.1.0"))
        .arg(&raw)
        .status()?;
    if !built.success() {
        bail!("componentize-js failed on {}", example.display());
    }
    embed_manifest(bin, config, &raw, &example.join("manifest.json"), &out)?;
    Ok(Some(plugin_bench(bin, config, &out, 500)?))
}

/// `greenroom plugin embed-manifest`.
fn embed_manifest(
    bin: &Path,
    config: &Path,
    raw: &Path,
    manifest: &Path,
    out: &Path,
) -> anyhow::Result<()> {
    let status = Command::new(bin)
        .arg("--config")
        .arg(config)
        .args(["plugin", "embed-manifest"])
        .arg(raw)
        .arg("--manifest")
        .arg(manifest)
        .arg("-o")
        .arg(out)
        .env("RUST_LOG", "warn")
        .status()?;
    if !status.success() {
        bail!("embedding the manifest {} failed", manifest.display());
    }
    Ok(())
}

/// What a plugin stuck in a loop costs everyone else: another entity's
/// cards (two plugins, computed fresh) measured idle, then while a third
/// request keeps the looping plugin busy until its 10 s deadline.
fn loop_cost(bin: &Path, dir: &Path) -> anyhow::Result<((f64, f64), (f64, f64))> {
    let loop_dir = dir.join("loop");
    std::fs::create_dir_all(loop_dir.join("plugins"))?;
    for name in ["hello", "hostile"] {
        std::fs::copy(
            tools::build_plugin(name)?,
            loop_dir.join(format!("plugins/{name}.wasm")),
        )?;
    }
    let component = |name: &str| {
        format!(
            "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: {name}\nspec:\n  type: service\n  lifecycle: production\n  owner: team-a\n"
        )
    };
    std::fs::write(
        loop_dir.join("catalog.yaml"),
        format!("{}---\n{}", component("checkout"), component("loop")),
    )?;
    let config = loop_dir.join("greenroom.toml");
    std::fs::write(
        &config,
        "[server]\ndata_dir = \"data\"\n[plugins]\ndir = \"plugins\"\ncall_timeout = \"10s\"\n[catalog]\nrefresh_interval = \"24h\"\n[[catalog.locations]]\ntarget = \"catalog.yaml\"\n",
    )?;
    let server = start(bin, &config)?;
    let mut conn = Conn::open(server.addr)?;
    let path = "/api/cards/component/default/checkout";
    let idle = measure_with(&mut conn, 300, "Cache-Control: no-cache\r\n", |_| {
        path.to_string()
    })?;
    let addr = server.addr;
    let spinning = std::thread::spawn(move || -> anyhow::Result<Duration> {
        let started = Instant::now();
        Conn::open(addr)?.get("/api/cards/component/default/loop")?;
        Ok(started.elapsed())
    });
    std::thread::sleep(Duration::from_millis(200));
    let started = Instant::now();
    let busy = measure_with(&mut conn, 300, "Cache-Control: no-cache\r\n", |_| {
        path.to_string()
    })?;
    let measured_for = started.elapsed();
    let spun_for = spinning
        .join()
        .map_err(|_| anyhow::anyhow!("loop thread panicked"))??;
    if measured_for + Duration::from_millis(200) > spun_for {
        bail!(
            "the loop ended ({spun_for:?}) before the measurement did ({measured_for:?}); nothing was measured under load"
        );
    }
    drop(server);
    Ok((idle, busy))
}
