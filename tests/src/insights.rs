//! Facts and the activity feed over HTTP on the real server: pushes with
//! scoped tokens, rankings, an entity's facts with history, events by time,
//! owner and kind, and plugins polled for both.

use greenroom_upstreams::Upstreams;
use serde_json::{Value, json};

use crate::plugins::{POLLS_OFF, cache_dir, wasm};
use crate::support::{Portal, component, group};

const CI_TOKEN: &str = "ci-secret-token";
const DEPLOY_TOKEN: &str = "deploy-secret-token";

/// Sets the tokens' environment variables (the same values in every test).
fn tokens_config() -> String {
    // SAFETY: every test sets the same values.
    unsafe {
        std::env::set_var("GREENROOM_TEST_TOKEN_CI", CI_TOKEN);
        std::env::set_var("GREENROOM_TEST_TOKEN_DEPLOYS", DEPLOY_TOKEN);
    }
    "[[server.tokens]]\nname = \"ci\"\nenv = \"GREENROOM_TEST_TOKEN_CI\"\nscopes = [\"facts:write\", \"events:write\"]\n\
     [[server.tokens]]\nname = \"deploys\"\nenv = \"GREENROOM_TEST_TOKEN_DEPLOYS\"\nscopes = [\"events:write\"]\n"
        .to_string()
}

fn catalog() -> String {
    let mut docs = vec![group("team-a"), group("team-b")];
    for (name, owner) in [
        ("payments", "team-a"),
        ("checkout", "team-a"),
        ("search", "team-b"),
        ("ledger", "team-b"),
    ] {
        docs.push(component(name, owner));
    }
    docs.push("apiVersion: backstage.io/v1alpha1\nkind: API\nmetadata:\n  name: payments-api\nspec:\n  type: openapi\n  lifecycle: production\n  owner: team-a\n  definition: openapi\n".into());
    docs.join("---\n")
}

async fn portal() -> Portal {
    Portal::start(
        &format!(
            "{}[[catalog.locations]]\ntarget = \"catalog.yaml\"\n",
            tokens_config()
        ),
        &[("catalog.yaml", &catalog())],
    )
    .await
}

async fn post(p: &Portal, path: &str, token: Option<&str>, body: &Value) -> (u16, Value) {
    let mut req = p.http.post(format!("{}{path}", p.base)).json(body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

fn message(body: &Value) -> &str {
    body["error"]["message"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn ci_pushes_facts_with_a_scoped_token_and_bad_pushes_store_nothing() {
    let p = portal().await;
    let facts =
        json!({"entityRef": "component:default/payments", "facts": {"coverage.lines": 71.3}});
    // No token, an unknown one, one without the scope.
    let (s, b) = post(&p, "/api/facts", None, &facts).await;
    assert_eq!(s, 401, "{b}");
    assert!(message(&b).contains("facts:write"), "{b}");
    let (s, _) = post(&p, "/api/facts", Some("guess"), &facts).await;
    assert_eq!(s, 401);
    let (s, b) = post(&p, "/api/facts", Some(DEPLOY_TOKEN), &facts).await;
    assert_eq!(s, 403, "{b}");
    assert!(
        message(&b).contains("token 'deploys' lacks the scope facts:write"),
        "{b}"
    );

    let (s, b) = post(&p, "/api/facts", Some(CI_TOKEN), &facts).await;
    assert_eq!((s, &b), (200, &json!({"stored": 1, "changed": 1})));

    // Each bad push names what is wrong, and stores nothing at all (the
    // good item beside the bad one included).
    let good = json!({"entityRef": "checkout", "facts": {"coverage.lines": 80}});
    for (bad, status, says) in [
        (
            json!({"entityRef": "component:default/nope", "facts": {"coverage.lines": 1}}),
            422,
            "items[1].entityRef: no entity component:default/nope",
        ),
        (
            json!({"entityRef": "search", "facts": {"coverage.lines": {"value": 3}}}),
            400,
            "items[1].facts.coverage.lines: expected a number",
        ),
        (
            json!({"entityRef": "search", "facts": {"coverage.lines": "high"}}),
            422,
            "fact coverage.lines is given as number and as text; nothing was stored",
        ),
        (
            json!({"entityRef": "search", "facts": {"Coverage Lines": 3}}),
            400,
            "lower-case dotted words",
        ),
        (
            json!({"entityRef": "search"}),
            400,
            "items[1].facts must be an object",
        ),
        (
            json!({"entityRef": "search", "facts": {"x.y": 1}, "url": "javascript:alert(1)"}),
            400,
            "is not an http(s) URL",
        ),
    ] {
        let (s, b) = post(
            &p,
            "/api/facts",
            Some(CI_TOKEN),
            &json!({"items": [good, bad]}),
        )
        .await;
        assert_eq!(s, status, "{b}");
        assert!(message(&b).contains(says), "expected '{says}': {b}");
    }
    // A type other than the one stored.
    let text = json!({"entityRef": "search", "facts": {"coverage.lines": "high"}});
    let (s, b) = post(&p, "/api/facts", Some(CI_TOKEN), &text).await;
    assert_eq!(s, 422, "{b}");
    assert!(
        message(&b).contains("fact coverage.lines holds number values; got text"),
        "{b}"
    );
    let checkout = p.ok("/api/entities/component/default/checkout/facts").await;
    assert_eq!(checkout["items"], json!([]), "nothing stored");
    let (s, b) = p.get("/api/entities/component/default/nope/facts").await;
    assert_eq!(s, 404, "{b}");

    // History keeps each change once.
    for v in [55.0, 60.5, 60.5] {
        let body = json!({"entityRef": "payments", "facts": {"coverage.lines": v, "runtime.python": "3.11", "ci.green": true}, "url": "https://ci.example.com/run/7"});
        let (s, b) = post(&p, "/api/facts", Some(CI_TOKEN), &body).await;
        assert_eq!(s, 200, "{b}");
    }
    let payments = p.ok("/api/entities/component/default/payments/facts").await;
    let items = payments["items"].as_array().unwrap();
    let names: Vec<&str> = items.iter().map(|f| f["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["ci.green", "coverage.lines", "runtime.python"]);
    let coverage = &items[1];
    assert_eq!(coverage["value"], 60.5);
    assert_eq!(coverage["source"], "push:ci");
    assert_eq!(coverage["url"], "https://ci.example.com/run/7");
    let history: Vec<f64> = coverage["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h[1].as_f64().unwrap())
        .collect();
    assert_eq!(history, [71.3, 55.0, 60.5]);
    assert_eq!(items[0]["value"], true);
    assert_eq!(items[2]["value"], "3.11");
}

#[tokio::test]
async fn the_poorest_coverage_is_one_query() {
    let p = portal().await;
    let body = json!({"items": [
        {"entityRef": "payments", "facts": {"coverage.lines": 81.0, "runtime.python": "3.11"}},
        {"entityRef": "checkout", "facts": {"coverage.lines": 42.5}},
        {"entityRef": "search", "facts": {"coverage.lines": 67.0}},
        {"entityRef": "ledger", "facts": {"coverage.lines": 12.0}},
        {"entityRef": "api:default/payments-api", "facts": {"coverage.lines": 5.0}},
    ]});
    let (s, b) = post(&p, "/api/facts", Some(CI_TOKEN), &body).await;
    assert_eq!(s, 200, "{b}");
    let top = p
        .ok("/api/facts/coverage.lines/top?order=asc&limit=3&kind=component")
        .await;
    let rows: Vec<(&str, f64, &str)> = top["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["entityRef"].as_str().unwrap(),
                r["value"].as_f64().unwrap(),
                r["owner"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            ("component:default/ledger", 12.0, "group:default/team-b"),
            ("component:default/checkout", 42.5, "group:default/team-a"),
            ("component:default/search", 67.0, "group:default/team-b"),
        ]
    );
    let all = p
        .ok("/api/facts/coverage.lines/top?order=desc&limit=10")
        .await;
    let first = &all["items"][0];
    assert_eq!(
        (first["entityRef"].as_str(), first["value"].as_f64()),
        (Some("component:default/payments"), Some(81.0))
    );
    assert_eq!(
        all["items"].as_array().unwrap().len(),
        5,
        "every kind without `kind`"
    );
    let (s, b) = p.get("/api/facts/runtime.python/top").await;
    assert_eq!(s, 400);
    assert!(
        message(&b).contains("holds text values; only numbers rank"),
        "{b}"
    );
    let (s, _) = p.get("/api/facts/coverage.lines/top?order=sideways").await;
    assert_eq!(s, 400);
    let none = p.ok("/api/facts/never.pushed/top").await;
    assert_eq!(none["items"], json!([]));
}

#[tokio::test]
async fn deploy_scripts_announce_themselves_and_the_feed_answers_by_time_owner_and_kind() {
    let p = portal().await;
    let now = std::time::SystemTime::now();
    let ago = |mins: u64| {
        humantime::format_rfc3339_seconds(now - std::time::Duration::from_secs(mins * 60))
            .to_string()
    };
    let body = json!({"items": [
        {"kind": "deployment", "entityRef": "payments", "title": "payments 1.4.2 to production", "at": ago(5), "tone": "good", "actor": "jane", "url": "https://ci.example.com/d/1", "id": "d-1"},
        {"kind": "deployment", "entityRef": "search", "title": "search 0.9 to production", "at": ago(20)},
        {"kind": "deployment", "entityRef": "checkout", "title": "checkout 2.0 to production", "at": ago(90)},
        {"kind": "incident", "entityRef": "payments", "title": "Card payments failing", "at": ago(10), "tone": "critical"},
    ]});
    let (s, b) = post(&p, "/api/events", Some(DEPLOY_TOKEN), &body).await;
    assert_eq!((s, b["added"].as_u64()), (200, Some(4)), "{b}");
    // The same id again adds nothing.
    let again = json!({"kind": "deployment", "entityRef": "payments", "title": "payments 1.4.2 to production", "id": "d-1"});
    let (s, b) = post(&p, "/api/events", Some(CI_TOKEN), &again).await;
    assert_eq!(s, 200);
    assert_eq!(
        b["added"], 1,
        "another source (token) is another event: {b}"
    );
    let (s, b) = post(&p, "/api/events", Some(DEPLOY_TOKEN), &again).await;
    assert_eq!((s, b["added"].as_u64()), (200, Some(0)));

    let recent = p.ok("/api/events?since=30m&kind=deployment").await;
    let titles: Vec<&str> = recent["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["title"].as_str().unwrap())
        .collect();
    assert_eq!(
        titles,
        [
            "payments 1.4.2 to production",
            "payments 1.4.2 to production",
            "search 0.9 to production"
        ],
        "newest first, within 30 minutes"
    );
    let first = &recent["items"][1];
    assert_eq!(first["owner"], "group:default/team-a");
    assert_eq!(first["actor"], "jane");
    assert_eq!(first["tone"], "good");
    // The homepage's "recent activity" leaves deployments to the panel
    // beside it.
    let others = p.ok("/api/events?since=2h&except=Deployment").await;
    let kinds: Vec<&str> = others["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["incident"], "{others}");
    let team_b = p.ok("/api/events?since=2h&owner=team-b").await;
    assert_eq!(team_b["items"].as_array().unwrap().len(), 1);
    let incidents = p
        .ok("/api/events?since=1h&entity=payments&kind=incident")
        .await;
    assert_eq!(incidents["items"][0]["title"], "Card payments failing");

    for (path, says) in [
        ("/api/events?since=yesterday-ish", "a duration like 30m"),
        ("/api/events?owner=Not%20A%20Ref!", "owner"),
    ] {
        let (s, b) = p.get(path).await;
        assert_eq!(s, 400, "{path}: {b}");
        assert!(message(&b).contains(says), "{b}");
    }
    for (bad, status, says) in [
        (
            json!({"kind": "deployment", "title": "x", "entityRef": "ghost"}),
            422,
            "no entity component:default/ghost",
        ),
        (
            json!({"kind": "Deploy Now", "title": "x"}),
            400,
            "body.kind",
        ),
        (json!({"kind": "deployment"}), 400, "body.title"),
        (
            json!({"kind": "deployment", "title": "x", "tone": "purple"}),
            400,
            "body.tone",
        ),
        (
            json!({"kind": "deployment", "title": "x", "at": "last tuesday"}),
            400,
            "body.at",
        ),
    ] {
        let (s, b) = post(&p, "/api/events", Some(DEPLOY_TOKEN), &bad).await;
        assert_eq!(s, status, "{b}");
        assert!(message(&b).contains(says), "{says}: {b}");
    }
    let (s, _) = post(&p, "/api/events", None, &again).await;
    assert_eq!(s, 401);

    // Catalog changes join the feed; the first read of a location does not.
    assert!(
        p.ok("/api/events?since=1h&kind=catalog").await["items"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    p.write(
        "catalog.yaml",
        &format!("{}---\n{}", catalog(), component("refunds", "team-a")),
    );
    p.refresh().await;
    let changes = p.ok("/api/events?since=1h&kind=catalog").await;
    assert_eq!(
        changes["items"][0]["title"], "Catalog: 1 added in catalog.yaml",
        "{changes}"
    );
}

/// Plugins feed facts and events when polled: coverage facts from the
/// coverage plugin, deployments from the GitHub plugin, each stored once.
/// A plugin author need not wait for the facts interval: an administrator
/// polls one plugin now.
#[tokio::test]
async fn an_administrator_polls_a_plugin_now() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("plugins")).unwrap();
    for name in ["coverage", "hello"] {
        std::fs::copy(wasm(name), dir.path().join(format!("plugins/{name}.wasm"))).unwrap();
    }
    let mut docs = vec![group("team-a")];
    for name in ["payments", "checkout"] {
        docs.push(format!(
            "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: {name}\n  annotations:\n    greenroom.dev/coverage-report: {name}.info\nspec:\n  type: service\n  lifecycle: production\n  owner: team-a\n"
        ));
        std::fs::write(
            dir.path().join(format!("{name}.info")),
            "TN:\nSF:src/lib.rs\nDA:1,1\nDA:2,0\nend_of_record\n",
        )
        .unwrap();
    }
    std::fs::write(dir.path().join("catalog.yaml"), docs.join("---\n")).unwrap();
    let config = format!(
        "[plugins]\ndir = \"plugins\"\ncache_dir = \"{}\"\n{POLLS_OFF}[[catalog.locations]]\ntarget = \"catalog.yaml\"\n",
        cache_dir()
    );
    let p = Portal::start_in(dir, &config).await;
    let top = "/api/facts/coverage.lines/top?kind=component";
    assert!(p.ok(top).await["items"].as_array().unwrap().is_empty());

    let (status, _) = post(&p, "/api/plugins/coverage/poll", None, &Value::Null).await;
    assert_eq!(status, 401, "polling is for administrators");
    let (status, body) = p
        .admin_post("/api/plugins/coverage/poll", &Value::Null)
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["facts"]["calls"], 3, "one call per entity: {body}");
    assert_eq!(body["facts"]["stored"], 2, "{body}");
    assert_eq!(body["events"]["calls"], 0, "{body}");
    assert_eq!(p.ok(top).await["items"].as_array().unwrap().len(), 2);

    let (status, body) = p.admin_post("/api/plugins/hello/poll", &Value::Null).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        message(&body).contains("exports neither facts nor events"),
        "{body}"
    );
    let (status, _) = p.admin_post("/api/plugins/nobody/poll", &Value::Null).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn polled_plugins_feed_facts_and_the_activity_feed() {
    let upstream = Upstreams::start("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("plugins")).unwrap();
    for name in ["coverage", "github"] {
        std::fs::copy(wasm(name), dir.path().join(format!("plugins/{name}.wasm"))).unwrap();
    }
    let report = "TN:\nSF:src/lib.rs\nDA:1,1\nDA:2,0\nDA:3,1\nDA:4,1\nend_of_record\n";
    let mut docs = vec![group("team-a")];
    for name in ["payments", "checkout", "search"] {
        docs.push(format!(
            "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: {name}\n  annotations:\n    github.com/project-slug: northwind/{name}\n    greenroom.dev/coverage-report: {name}.info\nspec:\n  type: service\n  lifecycle: production\n  owner: team-a\n"
        ));
        std::fs::write(dir.path().join(format!("{name}.info")), report).unwrap();
    }
    std::fs::write(dir.path().join("catalog.yaml"), docs.join("---\n")).unwrap();
    let grants = crate::sentry::upstream_config(
        "github",
        "GITHUB_TOKEN",
        &upstream,
        &format!("base_url = \"{}\"", upstream.github_url()),
    );
    let config = format!(
        "[plugins]\ndir = \"plugins\"\ncache_dir = \"{}\"\ncall_timeout = \"2s\"\n{POLLS_OFF}{grants}[[catalog.locations]]\ntarget = \"catalog.yaml\"\n",
        cache_dir()
    );
    let p = Portal::start_in(dir, &config).await;

    let insights = p.state.insights.clone();
    let facts = tokio::task::spawn_blocking(move || insights.poll_facts())
        .await
        .unwrap();
    // 4 entities × 2 plugins; the group has nothing to say.
    assert_eq!(facts.calls, 8, "{facts:?}");
    assert_eq!(facts.failures, 0, "{facts:?}");
    let top = p.ok("/api/facts/coverage.lines/top?kind=component").await;
    assert_eq!(top["items"].as_array().unwrap().len(), 3);
    assert_eq!(top["items"][0]["value"], 75.0);
    assert_eq!(top["items"][0]["source"], "plugin:coverage");
    let payments = p.ok("/api/entities/component/default/payments/facts").await;
    let names: Vec<&str> = payments["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "ci.last_status",
            "ci.success_rate_7d",
            "coverage.lines",
            "github.open_pull_requests"
        ]
    );

    let insights = p.state.insights.clone();
    let polled = tokio::task::spawn_blocking(move || insights.poll_events())
        .await
        .unwrap();
    assert_eq!((polled.calls, polled.failures), (1, 0), "{polled:?}");
    let feed = p
        .ok("/api/events?since=7d&owner=team-a&kind=deployment&limit=500")
        .await;
    let items = feed["items"].as_array().unwrap();
    assert_eq!(items.len(), polled.stored, "{feed}");
    assert!(!items.is_empty());
    assert!(items.iter().all(|e| e["source"] == "plugin:github"));
    // Polling again stores nothing twice.
    let insights = p.state.insights.clone();
    let again = tokio::task::spawn_blocking(move || insights.poll_events())
        .await
        .unwrap();
    assert_eq!(again.stored, 0, "{again:?}");
}
