//! The coverage plugin, built from `plugins/coverage`, in the real host:
//! reports exactly as real tools write them, from the repository and from a
//! URL, and every kind of bad report turned into a clear error card.

use std::path::Path;

use serde_json::Value;

use crate::plugins::{by_plugin, cards, error_text, portal};
use crate::support::{FileServer, Portal};

const ANNOTATION: &str = "greenroom.dev/coverage-report";

fn fixture(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/coverage")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn annotation(report: &str) -> String {
    format!("\"{ANNOTATION}\": \"{report}\"")
}

/// The plugin's facts about a component, as `(name, JSON value)`.
pub(crate) async fn facts_of(
    p: &Portal,
    plugin: &str,
    name: &str,
) -> Result<Vec<(String, Value)>, String> {
    use greenroom::plugins::bindings::greenroom::plugin::types::FactValue;
    let state = p.state.clone();
    let (plugin, name) = (plugin.to_string(), name.to_string());
    tokio::task::spawn_blocking(move || {
        let loaded = state
            .plugins
            .enabled()
            .into_iter()
            .find(|l| l.manifest.id == plugin)
            .expect("plugin loaded");
        let r = greenroom::catalog::EntityRef::new("component", "default", &name);
        let json = state
            .store
            .catalog
            .entity_by_ref(&r, &[])
            .unwrap()
            .expect("entity");
        let entity = greenroom::plugins::host::entity_record(json).unwrap();
        loaded
            .facts(&entity, &state.plugins.limits())
            .map(|facts| {
                facts
                    .into_iter()
                    .map(|f| {
                        let value = match f.value {
                            FactValue::Number(n) => serde_json::json!(n),
                            FactValue::Text(t) => serde_json::json!(t),
                            FactValue::Flag(b) => serde_json::json!(b),
                        };
                        (f.name, value)
                    })
                    .collect()
            })
            .map_err(|e| e.to_string())
    })
    .await
    .unwrap()
}

/// The plugin's numeric facts about a component, as `(name, number)`.
pub(crate) async fn facts(
    p: &Portal,
    plugin: &str,
    name: &str,
) -> Result<Vec<(String, f64)>, String> {
    Ok(facts_of(p, plugin, name)
        .await?
        .into_iter()
        .map(|(n, v)| {
            let number = v
                .as_f64()
                .unwrap_or_else(|| panic!("{n} is not a number: {v}"));
            (n, number)
        })
        .collect())
}

fn field<'a>(card: &'a Value, label: &str) -> Option<&'a str> {
    card["nodes"]
        .as_array()?
        .iter()
        .find(|n| n["type"] == "field" && n["label"] == label)
        .and_then(|n| n["value"].as_str())
}

/// Each real tool's report, with the totals that tool computes itself.
#[tokio::test]
async fn reads_reports_exactly_as_real_tools_write_them() {
    let cases: [(&str, &str, f64, Option<f64>); 7] = [
        ("lcov-gcc", "lcov-gcc.info", 83.3, Some(62.5)),
        ("llvm-cov", "llvm-cov.lcov", 88.5, None),
        ("coveragepy-lcov", "coveragepy.lcov", 85.0, Some(75.0)),
        (
            "coveragepy-xml",
            "coveragepy-cobertura.xml",
            85.0,
            Some(75.0),
        ),
        ("nyc-lcov", "nyc.lcov", 86.7, Some(66.7)),
        ("nyc-xml", "nyc-cobertura.xml", 86.7, Some(66.7)),
        ("jacoco", "jacoco-cover2cover.xml", 78.6, Some(62.5)),
    ];
    let names: Vec<(String, String)> = cases
        .iter()
        .map(|(n, f, _, _)| (n.to_string(), annotation(&format!("reports/{f}"))))
        .collect();
    let names: Vec<(&str, &str)> = names
        .iter()
        .map(|(n, a)| (n.as_str(), a.as_str()))
        .collect();
    let p = portal(&["coverage"], &names, "").await;
    for (_, file, _, _) in &cases {
        p.write(&format!("reports/{file}"), &fixture(file));
    }
    for (name, file, lines, branches) in cases {
        let cards = cards(&p, name).await;
        let card = by_plugin(&cards, "coverage");
        assert_eq!(card["id"], "coverage", "{file}: {card}");
        assert_eq!(
            field(card, "Lines"),
            Some(format!("{lines:.1}%").as_str()),
            "{file}"
        );
        assert_eq!(
            field(card, "Branches").map(str::to_string),
            branches.map(|b| format!("{b:.1}%")),
            "{file}"
        );
        let mut expected = vec![("coverage.lines".to_string(), lines)];
        expected.extend(branches.map(|b| ("coverage.branches".to_string(), b)));
        assert_eq!(
            facts(&p, "coverage", name).await.unwrap(),
            expected,
            "{file}"
        );
    }

    // The least covered files, relative to the folder they share.
    let cards = cards(&p, "nyc-lcov").await;
    let table = by_plugin(&cards, "coverage")["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["type"] == "table")
        .unwrap()
        .clone();
    assert_eq!(
        table["columns"],
        serde_json::json!(["File", "Lines", "Missed lines"])
    );
    assert_eq!(
        table["rows"],
        serde_json::json!([[
            {"type": "text", "text": "cart.js"},
            {"type": "text", "text": "81.8%"},
            {"type": "text", "text": "2"}
        ]]),
        "run.js is fully covered and not listed"
    );
    let cards = self::cards(&p, "lcov-gcc").await;
    let card = by_plugin(&cards, "coverage").to_string();
    assert!(
        card.contains("\"ledger.c\""),
        "absolute CI paths are shortened: {card}"
    );
}

#[tokio::test]
async fn reads_a_report_from_a_granted_url() {
    let remote = tempfile::tempdir().unwrap();
    std::fs::write(remote.path().join("lcov.info"), fixture("nyc.lcov")).unwrap();
    let server = FileServer::start(remote.path()).await;
    let url = server.url("lcov.info");
    let grant = format!(
        "[[plugins.grants]]\nid = \"coverage\"\nhosts = [\"http://{}\"]\n",
        server.addr
    );
    let p = portal(
        &["coverage"],
        &[
            ("remote", &annotation(&url)),
            ("ungranted", &annotation("http://127.0.0.1:1/lcov.info")),
        ],
        &grant,
    )
    .await;
    let cards = cards(&p, "remote").await;
    let card = by_plugin(&cards, "coverage");
    assert_eq!(field(card, "Lines"), Some("86.7%"));
    assert!(
        card["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["type"] == "link" && n["href"] == url.as_str()),
        "{card}"
    );
    let facts = facts(&p, "coverage", "remote").await.unwrap();
    assert_eq!(facts[0], ("coverage.lines".to_string(), 86.7));

    let error = error_text(by_plugin(&self::cards(&p, "ungranted").await, "coverage"));
    assert!(
        error.contains("configuration error")
            && error.contains("127.0.0.1:1")
            && error.contains("grant"),
        "{error}"
    );
}

/// Truncated, malformed, foreign, huge, missing and unreachable reports:
/// each an error card that says what is wrong, never a host failure.
#[tokio::test]
async fn bad_reports_become_clear_error_cards() {
    let remote = tempfile::tempdir().unwrap();
    // 50 MB: over the 10 MiB default for plugin downloads and reads.
    let line = "DA:1,1\n";
    let huge = format!(
        "SF:big.rs\n{}end_of_record\n",
        line.repeat(50 * 1024 * 1024 / line.len())
    );
    std::fs::write(remote.path().join("huge.info"), &huge).unwrap();
    let server = FileServer::start(remote.path()).await;
    let grant = format!(
        "[[plugins.grants]]\nid = \"coverage\"\nhosts = [\"http://{}\"]\n",
        server.addr
    );
    let lcov = fixture("nyc.lcov");
    let xml = fixture("coveragepy-cobertura.xml");
    let files: Vec<(&str, String)> = vec![
        ("truncated.info", lcov[..lcov.len() / 2].to_string()),
        ("malformed.info", lcov.replace("DA:7,1", "DA:seven,1")),
        ("truncated.xml", xml[..xml.len() / 2].to_string()),
        ("mismatched.xml", xml.replace("</classes>", "</packages>")),
        (
            "not-a-report.txt",
            "Build passed in 3 minutes.\n".to_string(),
        ),
        ("jacoco.xml", fixture("jacoco.xml")),
        ("huge.info", huge.clone()),
    ];
    let cases: Vec<(String, String, &str)> = vec![
        (
            "truncated-lcov".into(),
            "reports/truncated.info".into(),
            "looks truncated",
        ),
        (
            "malformed-lcov".into(),
            "reports/malformed.info".into(),
            "malformed `DA` record 'DA:seven,1'",
        ),
        (
            "truncated-xml".into(),
            "reports/truncated.xml".into(),
            "truncated",
        ),
        (
            "mismatched-xml".into(),
            "reports/mismatched.xml".into(),
            "malformed Cobertura XML",
        ),
        (
            "not-a-report".into(),
            "reports/not-a-report.txt".into(),
            "not an lcov tracefile",
        ),
        (
            "jacoco-raw".into(),
            "reports/jacoco.xml".into(),
            "convert JaCoCo XML with cover2cover",
        ),
        (
            "huge-file".into(),
            "reports/huge.info".into(),
            "over the limit of 10485760 bytes (plugins.http_max_bytes)",
        ),
        (
            "missing-file".into(),
            "reports/none.info".into(),
            "file not found",
        ),
        (
            "escaping".into(),
            "../outside.info".into(),
            "leaves the entity's folder",
        ),
        (
            "huge-url".into(),
            server.url("huge.info"),
            "larger than the portal allows",
        ),
        (
            "missing-url".into(),
            server.url("none.info"),
            "answered HTTP 404",
        ),
        (
            "hanging-url".into(),
            server.url("hang"),
            "no answer in time",
        ),
        ("good".into(), "reports/good.info".into(), ""),
    ];
    let names: Vec<(String, String)> = cases
        .iter()
        .map(|(n, r, _)| (n.clone(), annotation(r)))
        .collect();
    let names: Vec<(&str, &str)> = names
        .iter()
        .map(|(n, a)| (n.as_str(), a.as_str()))
        .collect();
    let p = portal(&["coverage"], &names, &grant).await;
    for (file, text) in &files {
        p.write(&format!("reports/{file}"), text);
    }
    let cases = &cases[..cases.len() - 1];
    for (name, report, expected) in cases {
        let error = error_text(by_plugin(&cards(&p, name).await, "coverage"));
        assert!(error.contains("plugin coverage"), "{name}: {error}");
        assert!(
            error.contains(expected),
            "{name} ({report}): expected '{expected}' in: {error}"
        );
    }
    // Facts fail the same way; and reported problems with one entity's
    // report do not back the plugin off for the others.
    let error = facts(&p, "coverage", "truncated-lcov").await.unwrap_err();
    assert!(error.contains("looks truncated"), "{error}");
    p.write("reports/good.info", &lcov);
    let good = cards(&p, "good").await;
    assert_eq!(field(by_plugin(&good, "coverage"), "Lines"), Some("86.7%"));
    let health = &p.ok("/api/plugins").await["items"][0]["health"];
    assert_eq!(health["errors"], cases.len() + 1);
}
