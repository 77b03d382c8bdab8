//! The `greenroom` command line, run as a user would.

use std::process::Command;

#[path = "../../tests/src/pg_server.rs"]
mod pg_server;

fn greenroom() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_greenroom"));
    c.env("RUST_LOG", "warn");
    c
}

const GOOD: &str = "apiVersion: backstage.io/v1alpha1\nkind: Group\nmetadata:\n  name: team-a\nspec:\n  type: team\n  children: []\n---\napiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: svc\nspec:\n  type: service\n  lifecycle: production\n  owner: team-a\n";

#[test]
fn validate_prints_path_line_col_and_fails() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("good.yaml"), GOOD).unwrap();
    let bad = "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: svc-b\n  tags: [Not-Lower]\nspec:\n  type: service\n  lifecycle: production\n";
    std::fs::write(dir.path().join("bad.yaml"), bad).unwrap();
    std::fs::write(dir.path().join("broken.yaml"), "kind: [\n").unwrap();

    let out = greenroom()
        .arg("validate")
        .arg(dir.path().join("good.yaml"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("2 valid entities, 0 problems"));

    let out = greenroom()
        .arg("validate")
        .arg(dir.path().join("bad.yaml"))
        .arg(dir.path().join("broken.yaml"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let bad_path = dir.path().join("bad.yaml").display().to_string();
    let broken_path = dir.path().join("broken.yaml").display().to_string();
    assert!(
        stdout.contains(&format!(
            "{bad_path}:5:10: component:default/svc-b: metadata.tags[0]: tag 'Not-Lower' is invalid"
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "{bad_path}:6:1: component:default/svc-b: spec.owner is required"
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("{broken_path}:2:1: YAML syntax error")),
        "{stdout}"
    );
}

#[test]
fn validate_accepts_directories_and_the_demo() {
    let demo = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/demo");
    let out = greenroom()
        .args([
            "--config",
            &format!("{demo}/greenroom.toml"),
            "validate",
            &format!("{demo}/catalog-info.yaml"),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("147 valid entities, 0 problems"),
        "{stderr}"
    );

    // A directory means every catalog-info.yaml below it.
    let out = greenroom()
        .args([
            "--config",
            &format!("{demo}/greenroom.toml"),
            "validate",
            &format!("{demo}/services"),
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("42 valid entities"));
}

fn import(config: &std::path::Path, target: &std::path::Path) -> std::process::Output {
    greenroom()
        .arg("--config")
        .arg(config)
        .arg("import")
        .arg(target)
        .output()
        .unwrap()
}

/// `greenroom migrate` copies a portal's SQLite store (named by its data
/// folder) into PostgreSQL, lists what it copied, and refuses a database
/// that already holds a portal; a portal then serves from the copy.
#[test]
fn migrate_copies_a_store_into_postgresql_once() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("catalog.yaml"), GOOD).unwrap();
    let config = dir.path().join("greenroom.toml");
    std::fs::write(&config, "[server]\ndata_dir = \"data\"\n").unwrap();
    assert!(
        import(&config, &dir.path().join("catalog.yaml"))
            .status
            .success()
    );
    let server = pg_server::pg_server();
    let url = server.database();
    let migrate = || {
        greenroom()
            .arg("--config")
            .arg(&config)
            .args(["migrate", "--from"])
            .arg(format!("sqlite:{}", dir.path().join("data").display()))
            .args(["--to", &url])
            .output()
            .unwrap()
    };
    let out = migrate();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let entities = stdout
        .lines()
        .find(|l| l.starts_with("entities "))
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(entities.trim_end().ends_with(" 2 rows"), "{entities}");
    assert!(
        stdout.contains("every table's rows are all there"),
        "{stdout}"
    );
    let out = migrate();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("already holds a portal's data"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A portal on the copy serves what the SQLite one had.
    std::fs::write(
        &config,
        format!("[server]\ndata_dir = \"served\"\ndatabase = \"{url}\"\n"),
    )
    .unwrap();
    let serving = serve(&config);
    let body = http_get(
        &serving.1,
        "/api/catalog/entities/by-name/component/default/svc",
    );
    assert_eq!(json_of(&body)["spec"]["owner"], "team-a", "{body}");
}

#[test]
fn import_registers_a_location_in_the_store() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("catalog.yaml"), GOOD).unwrap();
    std::fs::write(
        dir.path().join("greenroom.toml"),
        "[server]\ndata_dir = \"data\"\n",
    )
    .unwrap();
    let config = dir.path().join("greenroom.toml");
    let out = import(&config, &dir.path().join("catalog.yaml"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("2 added"), "{stdout}");
    // Importing again changes nothing and reuses the location.
    let out = import(&config, &dir.path().join("catalog.yaml"));
    assert!(String::from_utf8_lossy(&out.stdout).contains("0 added, 0 updated, 2 unchanged"));
    assert!(dir.path().join("data/greenroom.db").exists());

    let out = import(&config, &dir.path().join("missing.yaml"));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("missing.yaml: cannot read"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn bad_config_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("greenroom.toml");
    std::fs::write(&config, "[catalog]\nlocations = 3\n").unwrap();
    let out = greenroom()
        .arg("--config")
        .arg(&config)
        .args(["validate", "x.yaml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("greenroom.toml") && stderr.contains("locations"),
        "{stderr}"
    );
}

#[test]
fn plugin_commands_check_install_and_grant() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("greenroom.toml");
    std::fs::write(
        &config,
        "[server]\ndata_dir = \"data\"\n[plugins]\ndir = \"plugins\"\n",
    )
    .unwrap();
    let garbage = dir.path().join("garbage.wasm");
    std::fs::write(&garbage, b"\0asm\x0d\0\x01\0 not really").unwrap();
    let run = |args: &[&str]| {
        greenroom()
            .arg("--config")
            .arg(&config)
            .args(args)
            .output()
            .unwrap()
    };

    let out = run(&["plugin", "inspect", garbage.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("garbage.wasm: refused: not a WebAssembly component"),
        "{stdout}"
    );

    let out = run(&[
        "plugin",
        "run",
        garbage.to_str().unwrap(),
        "--entity",
        "nowhere.yaml",
        "--set",
        "base_url={upstream}",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("garbage.wasm: not a WebAssembly component"),
        "{stderr}"
    );

    let out = run(&["plugin", "install", garbage.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("garbage.wasm cannot be installed"));
    assert!(!dir.path().join("plugins/garbage.wasm").exists());
    assert!(
        !dir.path().join("data").exists(),
        "inspect and install touch no store and keep no compiled cache"
    );

    let out = run(&[
        "plugin",
        "grant",
        "github",
        "--host",
        "https://api.github.com",
        "--secret",
        "GITHUB_TOKEN",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run(&[
        "plugin",
        "grant",
        "github",
        "--host",
        "https://ghe.example.com",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("github is granted hosts [https://api.github.com, https://ghe.example.com] and secrets [GITHUB_TOKEN]"),
        "grants accumulate: {stdout}"
    );
    let out = run(&["plugin", "grant", "github", "--host", "not a url"]);
    assert_eq!(out.status.code(), Some(2));

    std::fs::create_dir_all(dir.path().join("plugins")).unwrap();
    std::fs::copy(&garbage, dir.path().join("plugins/broken.wasm")).unwrap();
    let out = run(&["plugin", "list"]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("broken.wasm failed"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// A running `greenroom serve`, stopped when dropped.
struct Serving(std::process::Child, String);

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn serve(config: &std::path::Path) -> Serving {
    use std::io::BufRead;
    let mut child = greenroom()
        .arg("--config")
        .arg(config)
        .args(["serve", "--addr", "127.0.0.1:0"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let base = line.trim().rsplit(' ').next().unwrap().to_string();
    assert!(base.starts_with("http://127.0.0.1:"), "{line}");
    Serving(child, base)
}

/// GETs a path with a bare HTTP/1.1 request; returns the body.
fn http_get(base: &str, path: &str) -> String {
    use std::io::{Read, Write};
    let addr = base.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    text.split_once("\r\n\r\n").unwrap().1.to_string()
}

#[test]
fn facts_push_sends_ci_facts_with_a_token() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("catalog.yaml"), GOOD).unwrap();
    let config = dir.path().join("greenroom.toml");
    std::fs::write(
        &config,
        "[server]\ndata_dir = \"data\"\n[[server.tokens]]\nname = \"ci\"\nenv = \"GREENROOM_CLI_TEST_TOKEN\"\nscopes = [\"facts:write\"]\n[[catalog.locations]]\ntarget = \"catalog.yaml\"\n",
    )
    .unwrap();
    // The server reads the token's value from its environment, inherited.
    // SAFETY: only this test uses the variable.
    unsafe { std::env::set_var("GREENROOM_CLI_TEST_TOKEN", "cli-token") };
    let server = serve(&config);
    // Ready once the first refresh finished.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !http_get(&server.1, "/healthz").contains("\"ready\":true") {
        assert!(std::time::Instant::now() < deadline, "not ready");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let push = |token: Option<&str>, entity: &str| {
        let mut c = greenroom();
        c.args(["facts", "push", "--server", &server.1, "--entity", entity])
            .args([
                "--fact",
                "coverage.lines=71.3",
                "--fact",
                "build.tag=\"1.20\"",
            ])
            .args([
                "--fact",
                "ci.green=true",
                "--url",
                "https://ci.example.com/1",
            ])
            .env_remove("GREENROOM_TOKEN");
        if let Some(t) = token {
            c.env("GREENROOM_TOKEN", t);
        }
        c.output().unwrap()
    };
    let out = push(Some("cli-token"), "svc");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "stored 3 facts about svc (3 changed)"
    );
    let facts = http_get(&server.1, "/api/entities/component/default/svc/facts");
    for expected in [
        "\"name\":\"coverage.lines\"",
        "\"value\":71.3",
        "\"value\":\"1.20\"",
        "\"value\":true",
        "\"source\":\"push:ci\"",
    ] {
        assert!(facts.contains(expected), "{expected} in {facts}");
    }
    let out = push(Some("cli-token"), "ghost");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no entity component:default/ghost"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = push(Some("wrong"), "svc");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("401"));
    let out = push(None, "svc");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("set GREENROOM_TOKEN to a token"));
}

/// A bare HTTP/1.0 exchange (no chunked answers, the connection closes at
/// the end); returns the status and the body, or `None` when the server is
/// gone.
fn http(
    base: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let addr = base.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(addr).ok()?;
    let mut request = format!(
        "{method} {path} HTTP/1.0\r\nHost: {addr}\r\nContent-Length: {}\r\nContent-Type: application/json\r\n",
        body.len()
    );
    for (k, v) in headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream.write_all(request.as_bytes()).ok()?;
    let mut text = String::new();
    stream.read_to_string(&mut text).ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status = head.split(' ').nth(1)?.parse().ok()?;
    Some((status, body.to_string()))
}

fn json_of(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// Polls `/healthz` until `done` says so, for at most `secs` seconds.
fn wait_health(
    base: &str,
    secs: u64,
    what: &str,
    done: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    loop {
        if let Some((200, body)) = http(base, "GET", "/healthz", &[], "") {
            let health = json_of(&body);
            if done(&health) {
                return health;
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "waited {secs} s for {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Every entity's ref and etag, as the API lists them.
fn etags(base: &str) -> std::collections::BTreeMap<String, String> {
    let (status, body) = http(
        base,
        "GET",
        "/api/catalog/entities?fields=kind,metadata.name,metadata.etag",
        &[],
        "",
    )
    .expect("the server answers");
    assert_eq!(status, 200, "{body}");
    json_of(&body)
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                format!("{}:{}", e["kind"], e["metadata"]["name"]),
                e["metadata"]["etag"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn integrity_check(db: &std::path::Path) {
    let conn = rusqlite::Connection::open(db).unwrap();
    let verdict: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(verdict, "ok");
}

/// kill -9 in the middle of a 100,000-entity ingest, then in the middle of
/// a burst of fact pushes and a search rebuild: after each restart the
/// store is whole, everything stored before the kill is there unchanged,
/// every acknowledged push is there, and search comes back complete.
#[test]
fn killed_mid_ingest_mid_push_and_mid_rebuild_nothing_is_lost() {
    const FILES: usize = 40;
    const PER_FILE: usize = 2_500;
    let dir = tempfile::tempdir().unwrap();
    let mut config = String::from(
        "[server]\ndata_dir = \"data\"\nadmin_token_env = \"GREENROOM_CRASH_ADMIN\"\n[[server.tokens]]\nname = \"ci\"\nenv = \"GREENROOM_CRASH_TOKEN\"\nscopes = [\"facts:write\"]\n[catalog]\nrefresh_interval = \"1h\"\n[search]\nrebuild_interval = \"0s\"\n",
    );
    let mut teams = String::new();
    for t in 0..10 {
        teams.push_str(&format!("apiVersion: backstage.io/v1alpha1\nkind: Group\nmetadata:\n  name: team-{t}\nspec:\n  type: team\n  children: []\n---\n"));
    }
    std::fs::write(dir.path().join("teams.yaml"), teams).unwrap();
    config.push_str("[[catalog.locations]]\ntarget = \"teams.yaml\"\n");
    for f in 0..FILES {
        let mut text = String::with_capacity(PER_FILE * 220);
        for i in f * PER_FILE..(f + 1) * PER_FILE {
            text.push_str(&format!(
                "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: comp-{i}\n  description: component number {i}\nspec:\n  type: service\n  lifecycle: production\n  owner: team-{}\n---\n",
                i % 10
            ));
        }
        std::fs::write(dir.path().join(format!("part-{f}.yaml")), text).unwrap();
        config.push_str(&format!(
            "[[catalog.locations]]\ntarget = \"part-{f}.yaml\"\n"
        ));
    }
    let config_path = dir.path().join("greenroom.toml");
    std::fs::write(&config_path, config).unwrap();
    let db = dir.path().join("data/greenroom.db");
    // SAFETY: only this test uses these variables.
    unsafe {
        std::env::set_var("GREENROOM_CRASH_TOKEN", "crash-token");
        std::env::set_var("GREENROOM_CRASH_ADMIN", "crash-admin");
    }

    // 1. Killed mid-ingest, once a quarter of the catalog is stored.
    let server = serve(&config_path);
    wait_health(&server.1, 600, "a quarter of the ingest", |h| {
        h["catalog"]["entities"].as_i64().unwrap_or(0) >= 25_000
    });
    let before = etags(&server.1);
    drop(server); // SIGKILL
    assert!(
        before.len() >= 25_000 && before.len() < FILES * PER_FILE + 10,
        "{}",
        before.len()
    );
    integrity_check(&db);

    // 2. Restarted: the ingest completes and nothing stored changed.
    let server = serve(&config_path);
    wait_health(&server.1, 600, "the full ingest", |h| h["ready"] == true);
    let after = etags(&server.1);
    assert_eq!(after.len(), FILES * PER_FILE + 10);
    for (r, etag) in &before {
        assert_eq!(after.get(r), Some(etag), "{r} changed or went missing");
    }

    // 3. Killed during a burst of fact pushes and a search rebuild.
    let base = server.1.clone();
    let acked = std::sync::Arc::new(std::sync::Mutex::new(Vec::<usize>::new()));
    let pushers: Vec<_> = (0..4)
        .map(|t| {
            let (base, acked) = (base.clone(), acked.clone());
            std::thread::spawn(move || {
                for n in (t..).step_by(4).take(5_000) {
                    let body = format!(
                        "{{\"entityRef\": \"comp-{n}\", \"facts\": {{\"crash.seq\": {n}}}}}"
                    );
                    match http(
                        &base,
                        "POST",
                        "/api/facts",
                        &[("Authorization", "Bearer crash-token")],
                        &body,
                    ) {
                        Some((200, _)) => acked.lock().unwrap().push(n),
                        Some((status, body)) => panic!("push {n}: {status} {body}"),
                        None => return,
                    }
                }
            })
        })
        .collect();
    let rebuild = {
        let base = base.clone();
        std::thread::spawn(move || {
            http(
                &base,
                "POST",
                "/api/search/rebuild",
                &[("Authorization", "Bearer crash-admin")],
                "",
            )
        })
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(300);
    while acked.lock().unwrap().len() < 300 {
        assert!(std::time::Instant::now() < deadline, "pushes too slow");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    drop(server); // SIGKILL, pushes in flight
    for p in pushers {
        p.join().unwrap();
    }
    assert!(
        rebuild.join().unwrap().is_none(),
        "the rebuild finished before the kill; the test proves nothing about it"
    );
    let acked = acked.lock().unwrap().clone();
    integrity_check(&db);

    // 4. Restarted: every acknowledged push is there, and search is whole.
    let server = serve(&config_path);
    wait_health(&server.1, 600, "ready", |h| h["ready"] == true);
    for n in &acked {
        let (status, body) = http(
            &server.1,
            "GET",
            &format!("/api/entities/component/default/comp-{n}/facts"),
            &[],
            "",
        )
        .unwrap();
        assert_eq!(status, 200, "{body}");
        assert!(
            body.contains("\"crash.seq\"") && body.contains(&format!("\"value\":{n}")),
            "acknowledged push {n} is missing: {body}"
        );
    }
    // The index was left mid-rebuild: it is opened (or rebuilt when
    // unreadable) and catches up with the catalog by itself.
    wait_health(&server.1, 600, "a whole search index", |h| {
        h["search"]["documents"] == FILES * PER_FILE + 10
    });
    let (status, body) = http(
        &server.1,
        "GET",
        "/api/search?q=comp-99999&doc=entity",
        &[],
        "",
    )
    .unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("component:default/comp-99999"), "{body}");
}

/// A small tmpfs mounted for one test, unmounted when dropped.
struct Mounted(std::path::PathBuf);

impl Mounted {
    fn tmpfs(at: &std::path::Path, size: &str) -> Mounted {
        std::fs::create_dir_all(at).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .output()
            .expect("mount(8) is needed to make a small full disk");
        assert!(
            out.status.success(),
            "this test mounts a {size} tmpfs as a disk to fill, which needs root (as `cargo xtask test` and CI run): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Mounted(at.to_path_buf())
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// A portal serving `GOOD` from `dir` (its store in `dir/data`) with a
/// `facts:write` token, for the tests of a data folder that cannot take
/// writes.
struct FactsPortal(Serving);

impl FactsPortal {
    const TOKEN: &str = "facts-portal-token";

    /// `extra` goes into greenroom.toml after the server settings.
    fn start(dir: &std::path::Path, extra: &str) -> FactsPortal {
        std::fs::write(dir.join("catalog.yaml"), GOOD).unwrap();
        let config = dir.join("greenroom.toml");
        std::fs::write(
            &config,
            format!("[server]\ndata_dir = \"data\"\n[[server.tokens]]\nname = \"ci\"\nenv = \"GREENROOM_FACTS_PORTAL_TOKEN\"\nscopes = [\"facts:write\"]\n{extra}\n[[catalog.locations]]\ntarget = \"catalog.yaml\"\n"),
        )
        .unwrap();
        // SAFETY: every test that sets this variable sets the same value.
        unsafe { std::env::set_var("GREENROOM_FACTS_PORTAL_TOKEN", Self::TOKEN) };
        let server = serve(&config);
        wait_health(&server.1, 60, "ready", |h| h["ready"] == true);
        FactsPortal(server)
    }

    fn push(&self, name: &str, value: &str) -> (u16, String) {
        let body = format!("{{\"entityRef\": \"svc\", \"facts\": {{\"{name}\": \"{value}\"}}}}");
        let auth = format!("Bearer {}", Self::TOKEN);
        http(
            &self.0.1,
            "POST",
            "/api/facts",
            &[("Authorization", &auth)],
            &body,
        )
        .unwrap()
    }

    /// Reads keep working: the entity and its facts, which hold `names`.
    fn assert_reads(&self, names: &[&str]) {
        let (status, body) = http(
            &self.0.1,
            "GET",
            "/api/catalog/entities/by-name/component/default/svc",
            &[],
            "",
        )
        .unwrap();
        assert_eq!(status, 200, "{body}");
        let (status, facts) = http(
            &self.0.1,
            "GET",
            "/api/entities/component/default/svc/facts",
            &[],
            "",
        )
        .unwrap();
        assert_eq!(status, 200, "{facts}");
        for name in names {
            assert!(facts.contains(&format!("\"{name}\"")), "{name} in {facts}");
        }
    }
}

/// The data folder's disk fills up: writes answer 503 with a clear
/// message, reads keep working, and once space is freed writes work again
/// with nothing lost.
#[test]
fn a_full_disk_refuses_writes_with_503_and_keeps_reads() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mount = Mounted::tmpfs(&data, "24m");
    // The search index lives beside, not on the small disk.
    let portal = FactsPortal::start(dir.path(), "[search]\ndir = \"search\"");
    let value = "x".repeat(500);
    assert_eq!(portal.push("disk.n0", &value).0, 200);

    // Fill the disk to the last byte.
    let filler = data.join("filler");
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&filler).unwrap();
        let chunk = vec![0u8; 64 * 1024];
        while f.write_all(&chunk).is_ok() {}
        let small = [0u8; 512];
        while f.write_all(&small).is_ok() {}
        let _ = f.flush();
    }
    let mut refused = None;
    for n in 1..200 {
        let (status, body) = portal.push(&format!("disk.n{n}"), &value);
        if status == 503 {
            refused = Some(body);
            break;
        }
        assert_eq!(status, 200, "{body}");
    }
    let body = refused.expect("writes kept succeeding on a full disk");
    assert!(
        body.contains("the disk holding the data folder is full")
            && body.contains("reads keep working"),
        "{body}"
    );
    portal.assert_reads(&["disk.n0"]);

    // Space again: writes work, and what was stored is all there.
    std::fs::remove_file(&filler).unwrap();
    assert_eq!(portal.push("disk.n1000", &value).0, 200);
    portal.assert_reads(&["disk.n0", "disk.n1000"]);
    drop(portal);
    integrity_check(&data.join("greenroom.db"));
    drop(mount);
}

/// Files made immutable (`chattr +i`: not even root writes them, through
/// descriptors already open too), made writable again when dropped.
struct Immutable(Vec<std::path::PathBuf>);

impl Immutable {
    fn set(paths: Vec<std::path::PathBuf>) -> Immutable {
        let out = Command::new("chattr")
            .arg("+i")
            .args(&paths)
            .output()
            .expect("chattr(1)");
        assert!(
            out.status.success(),
            "this test makes the data folder read-only with chattr +i, which needs root: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Immutable(paths)
    }
}

impl Drop for Immutable {
    fn drop(&mut self) {
        let _ = Command::new("chattr").arg("-i").args(&self.0).status();
    }
}

/// The data folder turns read-only under a running portal: writes answer
/// 503 saying so, reads keep working, and once it is writable again
/// writes work with nothing lost.
#[test]
fn a_read_only_data_folder_refuses_writes_with_503_and_keeps_reads() {
    let dir = tempfile::tempdir().unwrap();
    let portal = FactsPortal::start(dir.path(), "");
    assert_eq!(portal.push("ro.n0", "a").0, 200);
    let data = dir.path().join("data");
    let files: Vec<_> = ["greenroom.db", "greenroom.db-wal"]
        .iter()
        .map(|f| data.join(f))
        .chain([data.clone()])
        .collect();
    let frozen = Immutable::set(files);
    let (status, body) = portal.push("ro.n1", "b");
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("the data folder cannot be written"), "{body}");
    portal.assert_reads(&["ro.n0"]);
    drop(frozen);
    assert_eq!(portal.push("ro.n2", "c").0, 200);
    portal.assert_reads(&["ro.n0", "ro.n2"]);
}

/// `greenroom token create|list|revoke`: the secret is printed once, works
/// against a running portal, and stops working when revoked.
#[test]
fn tokens_are_made_listed_and_revoked_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("catalog.yaml"), GOOD).unwrap();
    let config = dir.path().join("greenroom.toml");
    std::fs::write(
        &config,
        "[server]\ndata_dir = \"data\"\n[[catalog.locations]]\ntarget = \"catalog.yaml\"\n",
    )
    .unwrap();
    let cli = |args: &[&str]| {
        let out = greenroom()
            .arg("--config")
            .arg(&config)
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).trim().to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let (code, secret, said) = cli(&[
        "token",
        "create",
        "--name",
        "ci",
        "--scope",
        "facts:write",
        "--expires",
        "90d",
        "--owner",
        "group:default/platform",
    ]);
    assert_eq!(code, Some(0), "{said}");
    assert!(
        secret.starts_with("grt_") && said.contains("shown once"),
        "{secret} {said}"
    );
    let (code, _, said) = cli(&["token", "create", "--name", "x", "--scope", "root"]);
    assert_eq!(code, Some(2));
    assert!(said.contains("unknown scope 'root'"), "{said}");
    let (_, list, _) = cli(&["token", "list"]);
    let id = list.split('\t').next().unwrap().to_string();
    assert!(
        list.contains("\tci\tfacts:write\tgroup:default/platform\tlive"),
        "{list}"
    );
    assert!(!list.contains(&secret), "{list}");

    let server = serve(&config);
    wait_health(&server.1, 60, "ready", |h| h["ready"] == true);
    let push = || {
        let auth = format!("Bearer {secret}");
        http(
            &server.1,
            "POST",
            "/api/facts",
            &[("Authorization", &auth)],
            "{\"entityRef\": \"svc\", \"facts\": {\"cli.n\": 1}}",
        )
        .unwrap()
        .0
    };
    assert_eq!(push(), 200);
    let (code, out, _) = cli(&["token", "revoke", &id]);
    assert_eq!((code, out), (Some(0), format!("revoked {id}")));
    assert_eq!(push(), 401);
    let (_, list, _) = cli(&["token", "list"]);
    assert!(list.ends_with("revoked"), "{list}");
    let (code, _, _) = cli(&["token", "revoke", &id]);
    assert_eq!(code, Some(1));
}

/// Two `greenroom serve` processes on one PostgreSQL database, as behind a
/// load balancer: a location registered through one is read and found by
/// search through the other without a refresh there; only one refreshes
/// on the clock; killed (SIGKILL) in the middle of a refresh, that one's
/// transaction leaves nothing behind, and the other takes over the
/// background work within 30 s and finishes it: no entity lost or doubled.
#[test]
fn two_replicas_share_one_database_and_hand_over_background_work() {
    const FILES: usize = 10;
    const PER_FILE: usize = 400;
    let server = pg_server::pg_server();
    let url = server.database();
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("org")).unwrap();
    let mut teams = String::new();
    for t in 0..10 {
        teams.push_str(&format!("apiVersion: backstage.io/v1alpha1\nkind: Group\nmetadata:\n  name: team-{t}\nspec:\n  type: team\n  children: []\n---\n"));
    }
    std::fs::write(dir.path().join("org/teams.yaml"), teams).unwrap();
    let write_org = |version: &str| {
        for f in 0..FILES {
            let mut text = String::new();
            for i in f * PER_FILE..(f + 1) * PER_FILE {
                text.push_str(&format!(
                    "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: comp-{i}\n  description: {version} {i}\nspec:\n  type: service\n  lifecycle: production\n  owner: team-{}\n---\n",
                    i % 10
                ));
            }
            std::fs::write(dir.path().join(format!("org/part-{f}.yaml")), text).unwrap();
        }
    };
    write_org("first");
    std::fs::write(
        dir.path().join("extra.yaml"),
        "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: extra-svc\nspec:\n  type: service\n  lifecycle: production\n  owner: team-1\n",
    )
    .unwrap();
    // Each replica has its own data folder (its search index), one database.
    let config = |name: &str| {
        let path = dir.path().join(format!("{name}.toml"));
        std::fs::write(
            &path,
            format!(
                "[server]\ndata_dir = \"{name}\"\ndatabase = \"{url}\"\nadmin_token_env = \"GREENROOM_REPLICA_ADMIN\"\n[catalog]\nrefresh_interval = \"1s\"\nallow_file_locations_from_api = true\n[search]\nrebuild_interval = \"0s\"\n[[catalog.locations]]\ntarget = \"org/*.yaml\"\n"
            ),
        )
        .unwrap();
        path
    };
    let (config_a, config_b) = (config("a"), config("b"));
    // SAFETY: only this test uses this variable.
    unsafe { std::env::set_var("GREENROOM_REPLICA_ADMIN", "replica-admin") };
    let all = FILES * PER_FILE + 10;

    let a = serve(&config_a);
    wait_health(&a.1, 300, "A's first refresh", |h| {
        h["background"] == true && h["ready"] == true && h["catalog"]["entities"] == all
    });
    let b = serve(&config_b);
    let health = wait_health(&b.1, 60, "B to start", |h| h["ready"] == true);
    assert_eq!(health["background"], false, "{health}");
    assert_eq!(health["catalog"]["entities"], all, "{health}");

    // Written through A, read and found through B.
    let extra = dir.path().join("extra.yaml").to_string_lossy().to_string();
    let (status, body) = http(
        &a.1,
        "POST",
        "/api/catalog/locations",
        &[("Authorization", "Bearer replica-admin")],
        &format!("{{\"type\": \"file\", \"target\": {extra:?}}}"),
    )
    .unwrap();
    assert_eq!(status, 201, "{body}");
    let written = std::time::Instant::now();
    loop {
        let read = http(
            &b.1,
            "GET",
            "/api/catalog/entities/by-name/component/default/extra-svc",
            &[],
            "",
        );
        let found = http(&b.1, "GET", "/api/search?q=extra-svc", &[], "")
            .map(|(_, body)| json_of(&body)["items"][0]["entityRef"].clone());
        if matches!(read, Some((200, _)))
            && found.as_ref().and_then(|r| r.as_str()) == Some("component:default/extra-svc")
        {
            break;
        }
        assert!(
            written.elapsed() < std::time::Duration::from_secs(30),
            "B never served what A wrote: {read:?} {found:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    eprintln!(
        "a location registered through A was read and found through B after {} ms",
        written.elapsed().as_millis()
    );

    // A refreshes on the clock; killed while its refresh holds the
    // catalog's lock (pg_locks shows it), its transaction is lost whole.
    let mut watch = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    let refreshing = |watch: &mut postgres::Client| -> bool {
        watch
            .query_one(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted
                 AND classid = x'6772'::INT::OID AND objid = x'65656e73'::INT::OID AND objsubid = 1",
                &[],
            )
            .unwrap()
            .get::<_, i64>(0)
            > 0
    };
    write_org("second");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !refreshing(&mut watch) {
        assert!(
            std::time::Instant::now() < deadline,
            "A never refreshed the changed files"
        );
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    drop(a); // SIGKILL
    let described = |watch: &mut postgres::Client, version: &str| -> i64 {
        watch
            .query_one(
                "SELECT count(*) FROM entities WHERE body LIKE '%\"description\":\"' || $1 || ' %'",
                &[&version],
            )
            .unwrap()
            .get(0)
    };
    assert_eq!(
        described(&mut watch, "second"),
        0,
        "the killed refresh left part of its work"
    );
    assert_eq!(described(&mut watch, "first") as usize, FILES * PER_FILE);

    // B takes the background work over and finishes it.
    wait_health(&b.1, 30, "B to take the background lease", |h| {
        h["background"] == true
    });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while (described(&mut watch, "second") as usize) < FILES * PER_FILE {
        assert!(
            std::time::Instant::now() < deadline,
            "B did not finish the refresh"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let refs: Vec<String> = watch
        .query("SELECT ref FROM entities", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let unique: std::collections::BTreeSet<&String> = refs.iter().collect();
    assert_eq!((refs.len(), unique.len()), (all + 1, all + 1));
    assert_eq!(described(&mut watch, "first"), 0);
}
