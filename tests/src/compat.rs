//! Components built against released contract versions, committed as they
//! were built (`tests/compat/<version>/`, with their sources and how they
//! were built), load and answer in today's host: the compatibility promise,
//! checked on every run.

use std::path::PathBuf;

use greenroom::harness::{Run, run};
use serde_json::Value;

fn built(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("compat/0.1.0/{name}"))
}

/// Calls `export` of a committed component for a component named checkout.
fn call(component: &str, export: &str) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let entity = dir.path().join("catalog-info.yaml");
    std::fs::write(
        &entity,
        "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: checkout\nspec:\n  type: service\n  lifecycle: production\n  owner: team-a\n",
    )
    .unwrap();
    run(&Run {
        input: r#"{"n":1}"#.into(),
        ..Run::new(built(component), entity, export)
    })
    .unwrap_or_else(|e| panic!("{component} {export}: {e:#}"))
}

/// Rust, through the SDK of 0.1.0: every export.
#[test]
fn a_rust_component_built_against_0_1_0_answers_every_export() {
    let cards = call("everything.wasm", "cards");
    assert_eq!(
        cards["cards"][0]["nodes"][0]["text"], "component:default/checkout",
        "{cards}"
    );
    let facts = call("everything.wasm", "facts");
    assert_eq!(facts["facts"][0]["name"], "test.name_length", "{facts}");
    assert_eq!(facts["facts"][0]["value"], 8.0, "{facts}");
    let events = call("everything.wasm", "events");
    assert_eq!(
        events["events"][0]["title"], "Deployed checkout",
        "{events}"
    );
    let actions = call("everything.wasm", "actions");
    assert_eq!(
        actions["actions"][0]["label"], "Greet checkout",
        "{actions}"
    );
    let ran = call("everything.wasm", "run:greet");
    assert_eq!(ran["message"], r#"hello checkout with {"n":1}"#, "{ran}");
}

/// C, through wit-bindgen's C generator and WASI's preview1 adapter.
#[test]
fn a_c_component_built_against_0_1_0_serves_its_card() {
    let cards = call("c-hello.wasm", "cards");
    assert_eq!(
        cards["cards"][0]["nodes"][0],
        serde_json::json!({"type": "heading", "text": "Hello from C, checkout!"}),
        "{cards}"
    );
}

/// Go, through wit-bindgen's Go generator and WASI's preview1 adapter.
#[test]
fn a_go_component_built_against_0_1_0_serves_its_card() {
    let cards = call("go-hello.wasm", "cards");
    assert_eq!(
        cards["cards"][0]["nodes"][0],
        serde_json::json!({"type": "heading", "text": "Hello from Go, checkout!"}),
        "{cards}"
    );
}
