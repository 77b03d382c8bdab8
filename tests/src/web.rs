//! How the host serves the web UI, over plain HTTP: the app for every UI
//! route, its files, the policy headers, JSON errors for the API, a clear
//! answer when the app is not built; and the API routes only the UI uses
//! (API definitions).

use std::path::PathBuf;

use serde_json::json;

use crate::support::Portal;

const API: &str = "apiVersion: backstage.io/v1alpha1\nkind: API\nmetadata:\n  name: orders\nspec:\n  type: openapi\n  lifecycle: production\n  owner: team-a\n  definition: |\n    openapi: 3.0.3\n    info:\n      title: Orders\n      version: 1.2.0\n    paths:\n      /orders:\n        get:\n          summary: List orders\n---\napiVersion: backstage.io/v1alpha1\nkind: API\nmetadata:\n  name: events\nspec:\n  type: asyncapi\n  lifecycle: production\n  owner: team-a\n  definition: '{\"asyncapi\": \"2.6.0\", \"channels\": {\"orders.placed\": {\"subscribe\": {}}}}'\n---\napiVersion: backstage.io/v1alpha1\nkind: API\nmetadata:\n  name: broken\nspec:\n  type: openapi\n  lifecycle: production\n  owner: team-a\n  definition: |\n    openapi: 3.0.3\n    paths: [unclosed\n---\napiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: svc\nspec:\n  type: service\n  lifecycle: production\n  owner: team-a\n";

fn web_dir() -> String {
    env!("GREENROOM_TEST_WEB").to_string()
}

async fn portal(web: Option<&str>) -> Portal {
    let web = web
        .map(|d| format!("[web]\ndir = \"{d}\"\n"))
        .unwrap_or_default();
    Portal::start(
        &format!("{web}[[catalog.locations]]\ntarget = \"catalog.yaml\"\n"),
        &[("catalog.yaml", API)],
    )
    .await
}

#[tokio::test]
async fn the_app_is_served_for_ui_routes_with_a_strict_policy() {
    let p = portal(Some(&web_dir())).await;
    for path in [
        "/",
        "/catalog",
        "/catalog/default/component/svc",
        "/catalog/default/component/svc/dependencies",
        "/docs/default/component/svc/guide/setup",
        "/search?query=orders",
        "/campaigns/python3",
        "/plugins",
        "/audit",
    ] {
        let r = p.fetch(path).await;
        assert_eq!(r.status(), 200, "{path}");
        let csp = r.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .to_string();
        assert!(
            csp.contains("script-src 'self' 'wasm-unsafe-eval'"),
            "{csp}"
        );
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        assert!(!csp.contains("unsafe-inline"), "{csp}");
        assert_eq!(r.headers()["x-content-type-options"], "nosniff");
        let html = r.text().await.unwrap();
        assert!(html.contains("src=\"/assets/boot.js\""), "{path}: {html}");
        assert!(!html.contains("<script>"), "no inline script: {html}");
    }
    // The app's files, with their types.
    for (file, kind) in [
        ("/assets/greenroom_web_bg.wasm", "application/wasm"),
        ("/assets/greenroom_web.js", "text/javascript"),
        ("/assets/style.css", "text/css"),
    ] {
        let r = p.fetch(file).await;
        assert_eq!(r.status(), 200, "{file}");
        assert!(
            r.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with(kind),
            "{file}: {:?}",
            r.headers()["content-type"]
        );
    }
    // Unknown pages are the app's "not found"; unknown API paths JSON.
    let r = p.fetch("/nowhere").await;
    assert_eq!(r.status(), 404);
    assert!(r.text().await.unwrap().contains("/assets/boot.js"));
    let (status, body) = p.get("/api/nowhere").await;
    assert_eq!(status, 404);
    assert_eq!(body["error"]["message"], "no route for /api/nowhere");
    let r = p.fetch("/assets/nothing.js").await;
    assert_eq!(r.status(), 404);
}

#[tokio::test]
async fn without_the_app_the_host_says_how_to_build_it() {
    // Not configured: the API's description, pointing at the build.
    let p = portal(None).await;
    let r = p.fetch("/catalog").await;
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("cargo xtask web"));
    // Configured but missing: a 503 naming the file and the command.
    let missing = PathBuf::from(web_dir()).join("not-built");
    let p = portal(Some(&missing.display().to_string())).await;
    let r = p.fetch("/catalog").await;
    assert_eq!(r.status(), 503);
    let text = r.text().await.unwrap();
    assert!(
        text.contains("not-built/index.html") && text.contains("cargo xtask web"),
        "{text}"
    );
}

#[tokio::test]
async fn api_definitions_are_served_parsed_with_their_format() {
    let p = portal(None).await;
    let orders = p.ok("/api/entities/api/default/orders/definition").await;
    assert_eq!(orders["format"], "openapi");
    assert_eq!(orders["type"], "openapi");
    assert_eq!(orders["document"]["info"]["title"], "Orders");
    assert_eq!(
        orders["document"]["paths"]["/orders"]["get"]["summary"],
        "List orders"
    );
    assert!(
        orders["text"]
            .as_str()
            .unwrap()
            .starts_with("openapi: 3.0.3")
    );
    assert_eq!(orders["error"], json!(null));

    let events = p.ok("/api/entities/api/default/events/definition").await;
    assert_eq!(events["format"], "asyncapi");
    assert!(events["document"]["channels"]["orders.placed"].is_object());

    // A definition that does not parse is still shown, with where it broke.
    let broken = p.ok("/api/entities/api/default/broken/definition").await;
    assert_eq!(broken["format"], "other");
    assert_eq!(broken["document"], json!(null));
    assert!(
        broken["error"]
            .as_str()
            .unwrap()
            .starts_with("line 3, column 1: while parsing a flow sequence"),
        "{broken}"
    );
    assert!(broken["text"].as_str().unwrap().contains("[unclosed"));

    let (s, b) = p
        .get("/api/entities/component/default/svc/definition")
        .await;
    assert_eq!(s, 404);
    assert!(
        b["error"]["message"]
            .as_str()
            .unwrap()
            .contains("has no spec.definition"),
        "{b}"
    );
    let (s, _) = p.get("/api/entities/api/default/nope/definition").await;
    assert_eq!(s, 404);
}
