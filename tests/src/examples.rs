//! The example plugins of `examples/plugins`, built from their folders
//! with `greenroom plugin build` as an author builds them, and checked
//! through a real portal: cards over HTTP, facts polled and stored.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::plugins::{POLLS_OFF, cache_dir, cards, portal_with};
use crate::support::{FileServer, Portal};

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/plugins")
        .join(name)
}

/// Copies an example's sources (not what a build wrote there) into a
/// folder of its own and builds it; answers the folder and the plugin.
async fn build_example(name: &str) -> (tempfile::TempDir, Vec<u8>) {
    build_example_against(name, None).await
}

/// Like [`build_example`]; with `exports`, the world exports these worlds
/// of the frozen contract 0.1.0 (`export-cards`), whatever the folder's
/// world says. The folder carries no contract: `plugin build` supplies
/// the version the world names.
async fn build_example_against(
    name: &str,
    exports: Option<&[&str]>,
) -> (tempfile::TempDir, Vec<u8>) {
    let away = tempfile::tempdir().unwrap();
    let root = away.path().join(name);
    copy_sources(&example(name), &root);
    assert!(
        !root.join("wit/deps").exists(),
        "{name} carries its contract"
    );
    if let Some(worlds) = exports {
        let includes: String = worlds
            .iter()
            .map(|w| format!("    include greenroom:plugin/{w}@0.1.0;\n"))
            .collect();
        std::fs::create_dir_all(root.join("wit")).unwrap();
        std::fs::write(
            root.join("wit/world.wit"),
            format!("package local:example;\n\nworld plugin {{\n{includes}}}\n"),
        )
        .unwrap();
    }
    if root.join("package.json").is_file() {
        crate::harness::link_js_packages(&root);
    }
    let built = tokio::task::spawn_blocking(move || greenroom::plugins::build::build(&root))
        .await
        .unwrap()
        .unwrap_or_else(|e| panic!("plugin build of examples/plugins/{name}: {e:#}"));
    let bytes = std::fs::read(built).unwrap();
    (away, bytes)
}

fn copy_sources(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        let generated = [".greenroom", "node_modules", "target"]
            .iter()
            .any(|n| name == *n)
            || name.to_string_lossy().starts_with("greenroom_plugin_")
            || name.to_string_lossy().ends_with(".wasm");
        if generated {
            continue;
        }
        if entry.file_type().unwrap().is_dir() {
            copy_sources(&entry.path(), &to.join(&name));
        } else {
            std::fs::copy(entry.path(), to.join(&name)).unwrap();
        }
    }
}

/// The cards of `plugin` on a component's page.
async fn cards_of(p: &Portal, name: &str, plugin: &str) -> Vec<Value> {
    cards(p, name)
        .await
        .into_iter()
        .filter(|c| c["plugin"] == plugin)
        .collect()
}

/// Polls `plugin` for facts now, as an administrator does; answers how
/// many calls failed.
async fn poll(p: &Portal, plugin: &str) -> u64 {
    let (status, body) = p
        .admin_post(&format!("/api/plugins/{plugin}/poll"), &Value::Null)
        .await;
    assert_eq!(status, 200, "{body}");
    body["facts"]["failures"].as_u64().unwrap()
}

/// A component's facts by name.
async fn facts_of(p: &Portal, name: &str) -> serde_json::Map<String, Value> {
    p.ok(&format!("/api/entities/component/default/{name}/facts"))
        .await["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["name"].as_str().unwrap().to_string(), f["value"].clone()))
        .collect()
}

/// A portal running an HTTP example against its recorded answers: the
/// example's `fixtures/` served on loopback in place of the hosts its
/// manifest names (as `greenroom plugin run --upstream` does), granted with
/// `secret` (given `value`) and `base_url` pointing there. Answers the
/// portal and the recording server.
async fn http_example_portal(
    folder: &str,
    wasm: Vec<u8>,
    upstream: &str,
    secret: (&str, &str),
    entities: &[(&str, &str)],
) -> (Portal, FileServer) {
    let server = FileServer::start(&example(folder).join("fixtures")).await;
    let origin = server.origin();
    let mut manifest = greenroom::plugins::Manifest::from_wasm(&wasm).unwrap();
    assert_eq!(
        manifest.hosts,
        [upstream],
        "the manifest asks for the real service"
    );
    manifest.hosts = vec![origin.clone()];
    let wasm = manifest.replace_in(&wasm).unwrap();
    let id = manifest.id;
    // SAFETY: each example's secret is set by its own test alone.
    unsafe { std::env::set_var(format!("GREENROOM_SECRET_{}", secret.0), secret.1) };
    let grants = format!(
        "[[plugins.grants]]\nid = \"{id}\"\nhosts = [\"{origin}\"]\nsecrets = [\"{}\"]\n[plugins.config.{id}]\nbase_url = \"{origin}\"\n",
        secret.0
    );
    let p = portal_with(&[(format!("{id}.wasm"), wasm)], entities, "", &grants).await;
    (p, server)
}

/// A portal whose components each have a folder of their own, holding
/// `files` (paths below the folders) beside their catalog-info.yaml, and
/// the plugin `wasm`.
async fn folders_portal(wasm: Vec<u8>, names: &[&str], files: &[(&str, &str)]) -> Portal {
    let dir = tempfile::tempdir().unwrap();
    for (path, text) in files {
        let path = dir.path().join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    let mut locations = String::new();
    for name in names {
        std::fs::create_dir_all(dir.path().join(name)).unwrap();
        std::fs::write(
            dir.path().join(name).join("catalog-info.yaml"),
            crate::plugins::entity(name, ""),
        )
        .unwrap();
        locations.push_str(&format!(
            "[[catalog.locations]]\ntarget = \"{name}/catalog-info.yaml\"\n"
        ));
    }
    std::fs::write(
        dir.path().join("team.yaml"),
        crate::support::group("team-a"),
    )
    .unwrap();
    std::fs::create_dir_all(dir.path().join("plugins")).unwrap();
    std::fs::write(dir.path().join("plugins/example.wasm"), wasm).unwrap();
    let config = format!(
        "[plugins]\ndir = \"plugins\"\ncache_dir = \"{}\"\n{POLLS_OFF}[[catalog.locations]]\ntarget = \"team.yaml\"\n{locations}",
        cache_dir()
    );
    Portal::start_in(dir, &config).await
}

/// The cells of a table node as text (a badge's or link's label).
fn cells(table: &Value) -> Vec<Vec<String>> {
    table["rows"]
        .as_array()
        .unwrap_or_else(|| panic!("not a table: {table}"))
        .iter()
        .map(|row| {
            row.as_array()
                .unwrap()
                .iter()
                .map(|c| {
                    c["text"]
                        .as_str()
                        .or(c["label"].as_str())
                        .unwrap()
                        .to_string()
                })
                .collect()
        })
        .collect()
}

/// Go, over HTTP: the Buildkite example asks Buildkite's builds API for the
/// entity's pipeline with the token filled in by the host, shows the builds
/// and stores whether the default branch passes.
#[tokio::test]
async fn the_go_example_shows_buildkite_builds_fetched_with_an_injected_secret() {
    let (_dir, wasm) = build_example("go-buildkite").await;
    let (p, upstream) = http_example_portal(
        "go-buildkite",
        wasm,
        "https://api.buildkite.com",
        ("BUILDKITE_TOKEN", "bk-example-token"),
        &[
            ("payments", "\"buildkite.com/pipeline-slug\": acme/payments"),
            ("unbuilt", ""),
            ("malformed", "\"buildkite.com/pipeline-slug\": payments"),
        ],
    )
    .await;
    let path = "/v2/organizations/acme/pipelines/payments/builds";

    let card = &cards_of(&p, "payments", "buildkite").await[0];
    assert_eq!(card["title"], "Buildkite", "{card}");
    let table = &card["nodes"][0];
    assert_eq!(
        table["columns"],
        json!(["Build", "State", "Branch", "Message"])
    );
    let rows = table["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 4, "{table}");
    assert_eq!(
        rows[0][0],
        json!({"type": "link", "label": "#42", "href": "https://buildkite.com/acme/payments/builds/42"})
    );
    assert_eq!(
        rows[1][1],
        json!({"type": "badge", "label": "failed", "tone": "critical"})
    );
    assert_eq!(rows[2][3]["text"], "Bump the card SDK");
    let seen = upstream.requests();
    assert_eq!(seen.len(), 1, "one call for one card");
    assert_eq!(seen[0].0, format!("{path}?per_page=5"));
    assert_eq!(
        seen[0].1.as_deref(),
        Some("Bearer bk-example-token"),
        "the host filled in the secret"
    );
    // No annotation: not applicable, so no card and no call.
    assert!(cards_of(&p, "unbuilt", "buildkite").await.is_empty());
    // A malformed annotation is the plugin's config error, on the card.
    let error = crate::plugins::fresh_error(&p, "malformed", "buildkite").await;
    assert!(
        error.contains("annotation buildkite.com/pipeline-slug is \"payments\"; write <organization>/<pipeline>"),
        "{error}"
    );
    assert_eq!(upstream.requests().len(), 1);

    // #42 runs and #41 failed on another branch: main's latest finished
    // build, #40, passed; two of the three finished builds passed.
    assert_eq!(poll(&p, "buildkite").await, 1, "the malformed annotation");
    let facts = facts_of(&p, "payments").await;
    assert_eq!(facts["buildkite.passing"], true, "{facts:?}");
    let rate = facts["buildkite.pass_rate"].as_f64().unwrap();
    assert!((rate - 200.0 / 3.0).abs() < 1e-9, "{rate}");
    assert!(facts_of(&p, "unbuilt").await.is_empty());
}

/// JavaScript, over files: the runtimes example reads the version pins
/// beside each entity's catalog file and flags end-of-life runtimes.
#[tokio::test]
async fn the_javascript_example_reads_the_runtimes_pinned_beside_each_entity() {
    let (_dir, wasm) = build_example("js-runtimes").await;
    let files: &[(&str, &str)] = &[
        ("legacy/.python-version", "2.7.18\n"),
        (
            "legacy/Dockerfile",
            "FROM docker.io/library/node:16-alpine\n",
        ),
        (
            "modern/pyproject.toml",
            "[project]\nname = \"modern\"\nrequires-python = \">=3.12\"\n",
        ),
        ("modern/go.mod", "module example.com/modern\n\ngo 1.27.1\n"),
        // 3.9 is older than 3.10, though it is the larger decimal.
        ("nine/.python-version", "3.9\n"),
        ("bare/README.md", "nothing pinned here\n"),
    ];
    let p = folders_portal(wasm, &["legacy", "modern", "nine", "bare"], files).await;
    let rows = |card: &Value| cells(&card["nodes"][0]);
    let legacy = &cards_of(&p, "legacy", "runtimes").await[0];
    assert_eq!(legacy["title"], "Runtimes");
    assert_eq!(
        rows(legacy),
        [
            [
                "Python",
                "2.7.18",
                ".python-version",
                "end of life (< 3.10)"
            ],
            ["Node.js", "16", "Dockerfile", "end of life (< 22)"],
        ]
    );
    let modern = &cards_of(&p, "modern", "runtimes").await[0];
    assert_eq!(
        rows(modern),
        [
            ["Python", "3.12", "pyproject.toml", "supported"],
            ["Go", "1.27.1", "go.mod", "supported"],
        ]
    );
    assert_eq!(
        rows(&cards_of(&p, "nine", "runtimes").await[0])[0][3],
        "end of life (< 3.10)"
    );
    assert!(cards_of(&p, "bare", "runtimes").await.is_empty());

    assert_eq!(poll(&p, "runtimes").await, 0);
    let facts = facts_of(&p, "legacy").await;
    assert_eq!(facts["runtime.python"], 2.0, "{facts:?}");
    assert_eq!(facts["runtime.python_version"], "2.7.18");
    assert_eq!(facts["runtime.node"], 16.0);
    let facts = facts_of(&p, "modern").await;
    assert_eq!(facts["runtime.go_version"], "1.27.1", "{facts:?}");
    assert!(!facts.contains_key("runtime.node"));
}

/// JavaScript against 0.1.0: js-hello, built with `plugin build` against
/// the frozen contract, still serves through today's host.
#[tokio::test]
async fn the_javascript_example_built_against_0_1_0_still_serves() {
    let (_dir, wasm) = build_example_against("js-hello", Some(&["export-cards"])).await;
    let p = portal_with(
        &[("js-hello.wasm".into(), wasm)],
        &[("checkout", "")],
        "",
        "",
    )
    .await;
    let item = &p.ok("/api/plugins").await["items"][0];
    assert_eq!(item["id"], "js-hello", "{item}");
    assert_eq!(item["contract"], "0.1.0", "{item}");
    let card = &cards_of(&p, "checkout", "js-hello").await[0];
    assert_eq!(
        card["nodes"][0],
        json!({"type": "heading", "text": "Hello from JavaScript, checkout!"})
    );
}

/// Python, over HTTP: the status page example reads Statuspage's API with
/// the key the host fills in, through the Python helper `plugin build`
/// puts on the path (the example carries no copy).
#[tokio::test]
async fn the_python_example_shows_a_status_page_read_with_an_injected_secret() {
    assert!(
        !example("python-statuspage")
            .join("greenroom_plugin.py")
            .exists()
    );
    let (_dir, wasm) = build_example("python-statuspage").await;
    let (p, upstream) = http_example_portal(
        "python-statuspage",
        wasm,
        "https://api.statuspage.io",
        ("STATUSPAGE_TOKEN", "sp-example-key"),
        &[
            ("payments", "\"statuspage.io/page-id\": pay8xk2m"),
            ("odd", "\"statuspage.io/page-id\": \"../admin\""),
        ],
    )
    .await;
    let card = &cards_of(&p, "payments", "statuspage").await[0];
    assert_eq!(card["title"], "Status page", "{card}");
    assert_eq!(
        card["nodes"][0],
        json!({"type": "badge", "label": "degraded performance", "tone": "warning"})
    );
    // The group "Payments" only gathers components: left out.
    assert_eq!(
        cells(&card["nodes"][1]),
        [
            ["Card API", "degraded performance"],
            ["Refunds", "operational"]
        ]
    );
    let seen = upstream.requests();
    assert_eq!(seen[0].0, "/v1/pages/pay8xk2m/components");
    assert_eq!(seen[0].1.as_deref(), Some("OAuth sp-example-key"));
    let error = crate::plugins::fresh_error(&p, "odd", "statuspage").await;
    assert!(error.contains("write the page's id"), "{error}");
    assert_eq!(upstream.requests().len(), 1, "a bad page id is never sent");

    assert_eq!(poll(&p, "statuspage").await, 1, "the odd page id");
    let facts = facts_of(&p, "payments").await;
    assert_eq!(facts["statuspage.operational"], false, "{facts:?}");
    assert_eq!(facts["statuspage.degraded"], 1.0);
}

/// C, over files: the README example reads README.md beside each entity.
#[tokio::test]
async fn the_c_example_reads_the_readme_beside_each_entity() {
    let (_dir, wasm) = build_example("c-readme").await;
    let long = format!(
        "# Ledger\n\n{}\n",
        "The ledger records every payment. ".repeat(12)
    );
    let files: &[(&str, &str)] = &[
        ("ledger/README.md", long.as_str()),
        ("stub/README.md", "TODO: write this\n"),
    ];
    let p = folders_portal(wasm, &["ledger", "stub", "bare"], files).await;
    let ledger = &cards_of(&p, "ledger", "c-readme").await[0];
    assert_eq!(ledger["title"], "README");
    assert_eq!(
        ledger["nodes"],
        json!([
            {"type": "badge", "label": "documented", "tone": "good"},
            {"type": "heading", "text": "Ledger"},
            {"type": "field", "label": "Words", "value": "62", "tone": null},
        ])
    );
    let stub = &cards_of(&p, "stub", "c-readme").await[0];
    assert_eq!(stub["nodes"][0]["label"], "thin", "{stub}");
    assert_eq!(
        stub["nodes"].as_array().unwrap().len(),
        2,
        "no title: {stub}"
    );
    let bare = &cards_of(&p, "bare", "c-readme").await[0];
    assert_eq!(
        bare["nodes"][0],
        json!({"type": "badge", "label": "no README.md", "tone": "critical"})
    );

    assert_eq!(poll(&p, "c-readme").await, 0);
    let facts = facts_of(&p, "ledger").await;
    assert_eq!(facts["docs.readme"], true, "{facts:?}");
    assert_eq!(facts["docs.readme_words"], 62.0);
    let facts = facts_of(&p, "bare").await;
    assert_eq!(facts["docs.readme"], false, "{facts:?}");
    assert!(!facts.contains_key("docs.readme_words"));
}
