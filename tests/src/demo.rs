//! The demo organisation ingests cleanly, with the relations and ownership
//! its files declare.

use std::collections::BTreeMap;
use std::path::Path;

use greenroom::config::Config;

use crate::support::{Portal, relations};

async fn demo() -> Portal {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/demo/greenroom.toml");
    let mut config = Config::load(&path).unwrap();
    let dir = tempfile::tempdir().unwrap();
    config.server.data_dir = dir.path().join("data");
    // Plugins are tested on their own; the demo's folder may not be built,
    // so neither is its discovery (a provider without its plugin is a
    // problem).
    config.plugins.dir = None;
    config.catalog.providers.clear();
    Portal::start_with(dir, config).await
}

#[tokio::test]
async fn demo_organisation_ingests_with_relations_and_ownership() {
    let p = demo().await;
    assert!(p.problems().await.is_empty(), "{:?}", p.problems().await);

    let facets = p.ok("/api/catalog/entity-facets?facet=kind").await;
    let kinds: BTreeMap<String, i64> = facets["facets"]["kind"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["value"].as_str().unwrap().to_string(),
                f["count"].as_i64().unwrap(),
            )
        })
        .collect();
    assert!(kinds["Domain"] >= 4, "{kinds:?}");
    assert!(kinds["System"] >= 8, "{kinds:?}");
    assert!(
        kinds["Component"] + kinds["API"] + kinds["Resource"] >= 60,
        "{kinds:?}"
    );
    assert_eq!(kinds["MLModel"], 3);
    assert_eq!(kinds["Datacenter"], 3);
    let teams = p
        .ok("/api/catalog/entities?filter=kind=group,spec.type=team&fields=metadata.name")
        .await;
    assert!(teams.as_array().unwrap().len() >= 8);

    // A service: owner, system, APIs both ways, dependencies.
    let order = p.entity("component", "order-service").await.unwrap();
    let rels = relations(&order);
    for expected in [
        "ownedBy group:default/team-checkout",
        "partOf system:default/checkout",
        "providesApi api:default/orders-api",
        "consumesApi api:default/payments-api",
        "dependsOn resource:default/orders-db",
    ] {
        assert!(
            rels.contains(&expected.to_string()),
            "{expected} missing from {rels:?}"
        );
    }
    let team = p.entity("group", "team-checkout").await.unwrap();
    let rels = relations(&team);
    assert!(
        rels.contains(&"ownerOf component:default/order-service".to_string()),
        "{rels:?}"
    );
    assert!(
        rels.contains(&"childOf group:default/commerce-engineering".to_string()),
        "{rels:?}"
    );
    assert!(
        rels.contains(&"hasMember user:default/priya.nair".to_string()),
        "{rels:?}"
    );
    let api = p.entity("api", "payments-api").await.unwrap();
    assert!(
        relations(&api).contains(&"apiProvidedBy component:default/payment-gateway".to_string())
    );
    assert!(relations(&api).contains(&"apiConsumedBy component:default/order-service".to_string()));
    // $text pulled the real OpenAPI definition in.
    let definition = api["spec"]["definition"].as_str().unwrap();
    assert!(definition.starts_with("openapi: 3.0.3"), "{definition}");
    assert!(definition.contains("/payments/{paymentId}/refunds"));
    let events = p.entity("api", "order-events").await.unwrap();
    assert!(
        events["spec"]["definition"]
            .as_str()
            .unwrap()
            .starts_with("asyncapi: 2.6.0")
    );

    // Ownership: every owned entity has an owner; exactly one is orphaned.
    let orphans = p.ok("/api/catalog/orphans").await;
    assert_eq!(
        orphans["items"],
        serde_json::json!([{"entityRef": "component:default/legacy-shop", "ownerRef": "group:default/team-web-legacy"}])
    );
    let legacy = p.entity("component", "legacy-shop").await.unwrap();
    assert_eq!(
        legacy["status"]["items"][0]["type"],
        "greenroom.dev/orphan-owner"
    );
    assert!(order.get("status").is_none());

    // The three campaigns, their targets from the catalog. Python versions
    // and coverage come as facts (CI, the coverage plugin); techdocs
    // adoption is in the catalog already.
    let campaigns = p.ok("/api/campaigns").await;
    let progress: Vec<(String, u64, u64)> = campaigns["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_string(),
                c["progress"]["done"].as_u64().unwrap(),
                c["progress"]["total"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        progress,
        [
            ("adopt-techdocs".to_string(), 14, 29),
            ("coverage-70".to_string(), 0, 27),
            ("python3".to_string(), 0, 15),
        ]
    );
    let chase = p.ok("/api/campaigns/adopt-techdocs").await["chase"].clone();
    assert!(
        chase[0]["contact"]["email"]
            .as_str()
            .unwrap()
            .ends_with("@northwind.example"),
        "{chase}"
    );

    // Custom kinds relate like built-in ones.
    let model = p.entity("mlmodel", "fraud-scorer").await.unwrap();
    assert!(relations(&model).contains(&"ownedBy group:default/team-risk".to_string()));
    assert!(relations(&model).contains(&"dependsOn component:default/feature-store".to_string()));
    let dc = p.entity("datacenter", "lon-dc2").await.unwrap();
    assert_eq!(dc["spec"]["lastServiced"], "2025-12-03");

    // Where each entity came from, as Backstage records it.
    let annotations = &order["metadata"]["annotations"];
    assert!(
        annotations["backstage.io/managed-by-location"]
            .as_str()
            .unwrap()
            .ends_with("services/order-service/catalog-info.yaml")
    );
    assert!(
        annotations["backstage.io/managed-by-origin-location"]
            .as_str()
            .unwrap()
            .ends_with("examples/demo/catalog-info.yaml")
    );
    for key in [
        "github.com/project-slug",
        "sentry.io/project-slug",
        "backstage.io/techdocs-ref",
        "greenroom.dev/coverage-report",
    ] {
        assert!(annotations[key].is_string(), "{key} missing");
    }
}

/// What `cargo xtask demo` shows: the first-party plugins on the demo
/// organisation, GitHub and Sentry answered by the loopback stand-in the
/// demo starts, coverage from the reports in the demo's repositories, and
/// docs from their TechDocs folders.
/// The demo's greenroom.toml with its store in `dir` and the named
/// plugins (built by the tests) in `dir/plugins`.
pub(crate) fn demo_config(dir: &Path, plugins: &[&str]) -> Config {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/demo/greenroom.toml");
    let mut config = Config::load(&path).unwrap();
    config.server.data_dir = dir.join("data");
    let folder = dir.join("plugins");
    std::fs::create_dir_all(&folder).unwrap();
    for name in plugins {
        std::fs::copy(
            crate::plugins::wasm(name),
            folder.join(format!("{name}.wasm")),
        )
        .unwrap();
    }
    config.plugins.dir = Some(folder);
    config.plugins.cache_dir = Some(crate::plugins::cache_dir().into());
    config
}

/// The demo's config with these plugins, GitHub and Sentry pointed at
/// `upstream` (a test's own stand-in) instead of 127.0.0.1:7008.
pub(crate) fn live_demo_config(
    dir: &Path,
    plugins: &[&str],
    upstream: &greenroom_upstreams::Upstreams,
) -> Config {
    let mut config = demo_config(dir, plugins);
    for (plugin, url) in [
        ("github", upstream.github_url()),
        ("sentry", upstream.sentry_url()),
    ] {
        let settings = config.plugins.config.get_mut(plugin).unwrap();
        assert!(
            settings["base_url"]
                .as_str()
                .unwrap()
                .starts_with("http://127.0.0.1:7008/")
        );
        settings.insert("base_url".into(), toml::Value::String(url));
    }
    for grant in &mut config.plugins.grants {
        assert_eq!(grant.hosts, ["http://127.0.0.1:7008"]);
        grant.hosts = vec![upstream.origin()];
    }
    for secret in ["GITHUB_TOKEN", "SENTRY_TOKEN"] {
        // SAFETY: every test sets the same value for the same secret.
        unsafe {
            std::env::set_var(
                format!("GREENROOM_SECRET_{secret}"),
                format!("test-{}", secret.to_lowercase()),
            )
        };
    }
    config
}

#[tokio::test]
async fn demo_shows_live_looking_plugin_cards_docs_and_deployments() {
    let upstream = greenroom_upstreams::Upstreams::start("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = live_demo_config(
        dir.path(),
        &["github", "sentry", "coverage", "techdocs"],
        &upstream,
    );
    let p = Portal::start_with(dir, config).await;

    let cards = p.ok("/api/cards/component/default/payment-gateway").await["cards"]
        .as_array()
        .unwrap()
        .clone();
    let plugins: Vec<&str> = cards
        .iter()
        .map(|c| c["plugin"].as_str().unwrap())
        .collect();
    assert_eq!(plugins, ["coverage", "github", "sentry"], "{cards:?}");
    for card in &cards {
        assert!(card.get("error").is_none(), "{card}");
        let table = card["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["type"] == "table");
        assert!(
            table.is_some_and(|t| !t["rows"].as_array().unwrap().is_empty()),
            "{card}"
        );
    }
    let coverage = &cards[0]["nodes"][0];
    assert_eq!(
        (coverage["label"].as_str(), coverage["value"].as_str()),
        (Some("Lines"), Some("83.6%"))
    );
    // Links go to the real services' pages (web_url), not to the stand-in.
    assert!(
        cards[1]
            .to_string()
            .contains("https://github.com/northwind/payment-gateway/actions")
    );
    assert!(
        cards[2]
            .to_string()
            .contains("https://sentry.io/organizations/northwind/issues/")
    );

    let docs = p.ok("/api/docs/component/default/payment-gateway").await;
    assert_eq!(docs["title"], "Overview");
    assert!(
        docs["html"]
            .as_str()
            .unwrap()
            .contains("<h1 id=\"payment-gateway\">")
    );

    // "What was deployed in the last 30 minutes" has answers.
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
        - 30 * 60_000;
    let events = crate::plugins::plugin_events(&p, "github", since).await;

    // With the coverage plugin's facts, the coverage campaign moves.
    let insights = p.state.insights.clone();
    tokio::task::spawn_blocking(move || insights.poll_facts())
        .await
        .unwrap();
    let coverage = p.ok("/api/campaigns/coverage-70").await;
    assert_eq!(coverage["progress"]["done"], 13, "{}", coverage["progress"]);
    let poorest = p
        .ok("/api/facts/coverage.lines/top?limit=1&kind=component")
        .await;
    assert_eq!(
        poorest["items"][0]["entityRef"],
        "component:default/fulfilment-service"
    );
    assert!(
        events.iter().filter(|e| e.kind == "deployment").count() >= 3,
        "{events:?}"
    );

    // With the plugins' facts (coverage, CI), the production readiness
    // scorecard has services at every level.
    let card = p.ok("/api/scorecards/production-readiness").await;
    let rollup = &card["rollup"];
    // 29 components from files, 3 discovered in northwind-labs.
    assert_eq!(rollup["total"], 32, "{rollup}");
    for level in rollup["levels"].as_array().unwrap() {
        assert!(
            level[1].as_u64().unwrap() > 0,
            "nobody at {level}: {rollup}"
        );
    }
    let gateway = p
        .ok("/api/entities/component/default/payment-gateway/scorecards")
        .await;
    assert_eq!(gateway["items"][0]["level"], "gold", "{gateway}");
}

/// `items` of a demo history file, each `daysAgo` made an `at`, as
/// `cargo xtask demo` sends them.
fn dated(file: &str) -> serde_json::Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/demo")
        .join(file);
    let mut history: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let now = std::time::SystemTime::now();
    for item in history["items"].as_array_mut().unwrap() {
        let days = item["daysAgo"].as_u64().unwrap();
        item["at"] =
            humantime::format_rfc3339_seconds(now - std::time::Duration::from_secs(days * 86_400))
                .to_string()
                .into();
    }
    serde_json::json!({"items": history["items"]})
}

/// The demo's backfills give each of its three campaigns a burndown
/// that moves: two from fact history, the docs campaign (annotations) from
/// its imported spreadsheet, with this week's movers.
#[tokio::test]
async fn every_demo_campaign_has_a_burndown_that_moves() {
    let p = demo().await;
    let (s, b) = p
        .admin_post("/api/facts", &dated("facts-history.json"))
        .await;
    assert_eq!(s, 200, "{b}");
    let (s, b) = p
        .admin_post(
            "/api/campaigns/adopt-techdocs/history",
            &dated("campaign-history.json"),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    for name in ["python3", "coverage-70", "adopt-techdocs"] {
        let c = p.ok(&format!("/api/campaigns/{name}?days=61")).await;
        let done: Vec<u64> = c["burndown"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["done"].as_u64().unwrap())
            .collect();
        let distinct: std::collections::BTreeSet<u64> = done.iter().copied().collect();
        assert!(distinct.len() >= 3, "{name}: a flat burndown {done:?}");
    }
    let docs = p.ok("/api/campaigns/adopt-techdocs?days=61").await;
    let done: Vec<u64> = docs["burndown"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["done"].as_u64().unwrap())
        .collect();
    assert_eq!((done[1], done[60]), (4, 14), "{done:?}");
    assert_eq!(
        docs["movers"]["regressed"][0]["entityRef"],
        "component:default/image-resizer"
    );
    let mut done_this_week: Vec<&str> = docs["movers"]["done"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["entityRef"].as_str().unwrap())
        .collect();
    done_this_week.sort();
    assert_eq!(
        done_this_week,
        [
            "component:default/order-service",
            "component:default/warehouse-loader"
        ]
    );
}
