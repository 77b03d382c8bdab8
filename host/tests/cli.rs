//! The `greenroom` command line, run as a user would.

use std::process::Command;

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
        stderr.contains("146 valid entities, 0 problems"),
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

    let out = run(&["plugin", "install", garbage.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("garbage.wasm cannot be installed"));
    assert!(!dir.path().join("plugins/garbage.wasm").exists());

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
