//! Entity providers on the real server: the `everything` test plugin's
//! `providers` export pages through a loopback inventory server the test
//! controls; the host checks each entity as it checks a catalog file's,
//! keeps the last good set when discovery fails, lets an entity go only
//! after the grace period, and drops the location with the config entry.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

use crate::plugins::{entity, portal_with_docs, wasm};
use crate::support::Portal;

/// What the inventory serves: pages of entities (each a JSON value, or
/// text passed on as it is), or 500s.
#[derive(Default)]
struct Inventory {
    pages: Vec<Vec<Value>>,
    fail: bool,
}

async fn page(
    State(inv): State<Arc<Mutex<Inventory>>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let inv = inv.lock().unwrap();
    if inv.fail {
        return (StatusCode::INTERNAL_SERVER_ERROR, "inventory is down").into_response();
    }
    let i: usize = q.get("cursor").and_then(|c| c.parse().ok()).unwrap_or(0);
    let next = (i + 1 < inv.pages.len()).then(|| (i + 1).to_string());
    axum::Json(json!({"entities": inv.pages.get(i).cloned().unwrap_or_default(), "next": next}))
        .into_response()
}

async fn serve(inv: Arc<Mutex<Inventory>>) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let app = axum::Router::new()
        .route("/inventory", get(page))
        .with_state(inv);
    tokio::spawn(async move { axum::serve(listener, app).await });
    port
}

fn component(name: &str) -> Value {
    json!({
        "apiVersion": "backstage.io/v1alpha1",
        "kind": "Component",
        "metadata": {"name": name, "description": format!("{name}, discovered")},
        "spec": {"type": "service", "lifecycle": "production", "owner": "team-a"},
    })
}

fn provider_config(port: u16) -> String {
    format!(
        "[[plugins.grants]]\nid = \"everything\"\nhosts = [\"http://127.0.0.1:{port}\"]\n\
         [[catalog.providers]]\nplugin = \"everything\"\nname = \"inventory\"\n\
         config = {{ url = \"http://127.0.0.1:{port}/inventory\" }}\ngrace = \"3s\"\n"
    )
}

async fn problems_about(p: &Portal, needle: &str) -> Vec<String> {
    p.problems()
        .await
        .iter()
        .map(|pr| pr["message"].as_str().unwrap_or_default().to_string())
        .filter(|m| m.contains(needle))
        .collect()
}

#[tokio::test]
async fn a_provider_fills_the_catalog_keeps_its_last_good_set_and_lets_go_after_grace() {
    let inv = Arc::new(Mutex::new(Inventory {
        pages: vec![
            vec![component("disc-a"), component("disc-b")],
            vec![
                component("disc-c"),
                // Invalid: the name breaks Backstage's rules.
                json!({"apiVersion": "backstage.io/v1alpha1", "kind": "Component", "metadata": {"name": "Bad Name!"}, "spec": {"owner": "team-a"}}),
                // Claimed first by the catalog file.
                component("claimed"),
                Value::String("not json".into()),
            ],
        ],
        fail: false,
    }));
    let port = serve(inv.clone()).await;
    let files = [(
        "everything.wasm".to_string(),
        std::fs::read(wasm("everything")).unwrap(),
    )];
    let p = portal_with_docs(&files, &[entity("claimed", "")], "", &provider_config(port)).await;

    // Every page read, each entity checked as a file's would be.
    for name in ["disc-a", "disc-b", "disc-c"] {
        let e = p
            .entity("component", name)
            .await
            .unwrap_or_else(|| panic!("{name} was not discovered"));
        assert_eq!(
            e["metadata"]["annotations"]["backstage.io/managed-by-location"],
            "provider:everything/inventory"
        );
    }
    let claimed = p.entity("component", "claimed").await.unwrap();
    assert_ne!(
        claimed["metadata"]["annotations"]["backstage.io/managed-by-location"],
        "provider:everything/inventory",
        "the catalog file claimed it first"
    );
    let bad = problems_about(&p, "page 2, entity 2").await;
    assert!(!bad.is_empty(), "{:?}", p.problems().await);
    let not_json = problems_about(&p, "page 2, entity 4: not JSON").await;
    assert_eq!(not_json.len(), 1, "{:?}", p.problems().await);
    let locations = p.ok("/api/catalog/locations").await;
    assert!(
        locations
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["data"]["type"] == "provider"
                && l["data"]["target"] == "everything/inventory"),
        "{locations}"
    );
    // Searchable like any entity.
    p.until_found("disc-c").await;

    // A discovery that fails keeps the last good set.
    inv.lock().unwrap().fail = true;
    p.refresh().await;
    for name in ["disc-a", "disc-b", "disc-c"] {
        assert!(p.entity("component", name).await.is_some(), "{name} lost");
    }
    let failed = problems_about(&p, "discovery failed").await;
    assert_eq!(failed.len(), 1, "{:?}", p.problems().await);
    assert!(failed[0].contains("500"), "{failed:?}");

    // An entity that turns invalid keeps its last good version.
    {
        let mut inv = inv.lock().unwrap();
        inv.fail = false;
        inv.pages[1][0] = json!({"apiVersion": "backstage.io/v1alpha1", "kind": "Component", "metadata": {"name": "disc-c"}, "spec": {"type": "service", "lifecycle": "production"}});
    }
    p.refresh().await;
    assert!(problems_about(&p, "discovery failed").await.is_empty());
    let c = p.entity("component", "disc-c").await.unwrap();
    assert_eq!(c["metadata"]["description"], "disc-c, discovered");
    assert!(
        p.problems()
            .await
            .iter()
            .any(|pr| pr["entityRef"] == "component:default/disc-c"),
        "{:?}",
        p.problems().await
    );

    // One the provider stops returning stays for the grace period (3 s),
    // then goes.
    inv.lock().unwrap().pages[0].retain(|e| e["metadata"]["name"] != "disc-b");
    let dropped = Instant::now();
    p.refresh().await;
    assert!(
        p.entity("component", "disc-b").await.is_some()
            || dropped.elapsed() >= Duration::from_secs(3),
        "disc-b went before its grace period"
    );
    tokio::time::sleep(Duration::from_secs(3).saturating_sub(dropped.elapsed())).await;
    p.refresh().await;
    assert!(p.entity("component", "disc-b").await.is_none());
    assert!(p.entity("component", "disc-a").await.is_some());

    // Taken out of the config, the location goes with its entities.
    let dir = tempfile::tempdir().unwrap();
    let config = p.dir.path().join("greenroom.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    let without = text.replace("[[catalog.providers]]", "[unused]");
    let without = without.split("[unused]").next().unwrap().to_string()
        + "\n[[catalog.locations]]\ntarget = \"catalog.yaml\"\n";
    std::fs::write(&config, without).unwrap();
    let restarted =
        Portal::start_with(dir, greenroom::config::Config::load(&config).unwrap()).await;
    assert!(restarted.entity("component", "claimed").await.is_some());
    assert!(restarted.entity("component", "disc-a").await.is_none());
}

/// A provider naming a plugin that is not installed, or one without the
/// export, is a problem on its location that says what to do.
#[tokio::test]
async fn a_provider_without_its_plugin_says_what_to_install() {
    let files = [(
        "hello.wasm".to_string(),
        std::fs::read(wasm("hello")).unwrap(),
    )];
    let config = "[[catalog.providers]]\nplugin = \"nowhere\"\nname = \"x\"\n\
                  [[catalog.providers]]\nplugin = \"hello\"\nname = \"y\"\n";
    let p = portal_with_docs(&files, &[], "", config).await;
    let missing = problems_about(&p, "provider:nowhere/x").await;
    assert!(
        missing
            .iter()
            .any(|m| m.contains("plugin nowhere is not loaded")),
        "{missing:?}"
    );
    let no_export = problems_about(&p, "provider:hello/y").await;
    assert!(
        no_export
            .iter()
            .any(|m| m.contains("does not export providers")),
        "{no_export:?}"
    );
}
