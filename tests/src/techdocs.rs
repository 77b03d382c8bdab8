//! TechDocs, built from `plugins/techdocs`, in the real host: pages from
//! real mkdocs.yml layouts served over `/api/docs`, navigation from
//! `nav:` or from the folder, assets from the same origin, a prefilled
//! "report an issue" link, search documents, and hostile docs contained.

use std::path::Path;

use serde_json::Value;

use crate::plugins::{cache_dir, wasm};
use crate::support::{Portal, group};

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// A portal serving the fixtures' `payments` and `notes` components (plus
/// `no-docs` and `remote-docs`) with the techdocs plugin.
async fn docs_portal() -> Portal {
    let dir = tempfile::tempdir().unwrap();
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/techdocs");
    copy_dir(&fixtures, dir.path());
    std::fs::create_dir_all(dir.path().join("plugins")).unwrap();
    std::fs::copy(wasm("techdocs"), dir.path().join("plugins/techdocs.wasm")).unwrap();
    let others = format!(
        "{}---\napiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: no-docs\nspec:\n  type: service\n  lifecycle: production\n  owner: team-a\n---\napiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: remote-docs\n  annotations:\n    backstage.io/techdocs-ref: url:https://github.com/northwind/remote/tree/main\nspec:\n  type: service\n  lifecycle: production\n  owner: team-a\n",
        group("team-a")
    );
    std::fs::write(dir.path().join("others.yaml"), others).unwrap();
    // Links that lead out of the docs folder.
    std::os::unix::fs::symlink(
        "/etc/passwd",
        dir.path().join("payments/docs/img/passwd.txt"),
    )
    .unwrap();
    std::os::unix::fs::symlink("/etc/passwd", dir.path().join("payments/docs/leak.md")).unwrap();
    let config = format!(
        "[plugins]\ndir = \"plugins\"\ncache_dir = \"{}\"\ncall_timeout = \"2s\"\n{}[[catalog.locations]]\ntarget = \"payments/catalog-info.yaml\"\n[[catalog.locations]]\ntarget = \"notes/catalog-info.yaml\"\n[[catalog.locations]]\ntarget = \"others.yaml\"\n",
        cache_dir(),
        crate::plugins::POLLS_OFF
    );
    Portal::start_in(dir, &config).await
}

fn titles(nodes: &Value) -> Vec<String> {
    nodes
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["title"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn serves_pages_with_navigation_anchors_admonitions_and_links() {
    let p = docs_portal().await;
    let home = p.ok("/api/docs/component/default/payments").await;
    assert_eq!(home["plugin"], "techdocs");
    assert_eq!(home["title"], "Home", "the nav's title");
    assert_eq!(home["path"], "");
    assert_eq!(home["source"], "index.md");
    assert_eq!(
        p.ok("/api/docs/component/default/payments/").await,
        home,
        "the home page with a trailing slash"
    );
    assert!(
        home["html"].as_str().unwrap().contains(
            "<a href=\"/docs/default/component/payments/guide/setup\" rel=\"noopener noreferrer\">setting it up</a>"
        ),
        "{}",
        home["html"]
    );
    // The nav as written, minus entries that leave the docs or are not pages.
    let nav = &home["nav"];
    assert_eq!(titles(nav), ["Home", "Guide", "Status page"]);
    assert_eq!(
        titles(&nav[1]["children"]),
        ["Guide", "Setup", "Deep dive", "FAQ"]
    );
    assert_eq!(nav[1]["children"][1]["path"], "guide/setup");
    assert_eq!(
        nav[1]["children"][1]["url"],
        "/docs/default/component/payments/guide/setup"
    );
    assert_eq!(
        nav[1]["children"][2]["children"][0]["path"],
        "guide/deep/internals"
    );
    assert_eq!(nav[2]["url"], "https://status.northwind.example");
    assert!(!nav.to_string().contains("secrets") && !nav.to_string().contains("passwords"));

    let setup = p
        .ok("/api/docs/component/default/payments/guide/setup")
        .await;
    assert_eq!(
        setup["title"], "Setting up payments",
        "front matter's title"
    );
    let html = setup["html"].as_str().unwrap();
    for expected in [
        "<h1 id=\"set-up\">Set up</h1>",
        "<h2 id=\"install\">Install</h2>",
        "<div class=\"admonition warning\">",
        "<p class=\"admonition-title\">Production credentials</p>",
        "<p>Ask in <code>#payments</code> for a <strong>sandbox</strong> key.</p>",
        "<details class=\"admonition tip\">",
        "<summary>Troubleshooting</summary>",
        "<pre><code class=\"language-bash\">make install\npayments serve --port 8080\n</code></pre>",
        "<th>Variable</th>",
        "<td><code>STRIPE_KEY</code></td>",
        "href=\"/docs/default/component/payments/guide/deep/internals#retries\"",
        "href=\"/docs/default/component/payments\"",
        "href=\"/docs/default/component/payments/guide/faq\"",
        "<img src=\"/api/docs/component/default/payments/img/flow.png\" alt=\"How a payment flows\">",
    ] {
        assert!(html.contains(expected), "missing {expected} in {html}");
    }
    let toc: Vec<(u64, String)> = setup["toc"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["level"].as_u64().unwrap(),
                t["id"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        toc,
        [
            (1, "set-up".to_string()),
            (2, "install".to_string()),
            (2, "configuration".to_string())
        ]
    );

    // Index pages answer at their folder, and `.md` addresses work too.
    assert_eq!(
        p.ok("/api/docs/component/default/payments/guide").await["source"],
        "guide/index.md"
    );
    assert_eq!(
        p.ok("/api/docs/component/default/payments/guide/faq.md")
            .await["source"],
        "guide/faq.md"
    );

    // The image, from the same origin, as an image.
    let resp = p
        .http
        .get(format!(
            "{}/api/docs/component/default/payments/img/flow.png",
            p.base
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "image/png");
    assert_eq!(resp.headers()["x-content-type-options"], "nosniff");
    let bytes = resp.bytes().await.unwrap();
    assert!(bytes.starts_with(b"\x89PNG"), "the file itself");
}

#[tokio::test]
async fn report_an_issue_links_prefill_title_url_and_selection() {
    let p = docs_portal().await;
    let page = p
        .ok("/api/docs/component/default/payments/guide/setup?selection=Never%20use%20production%20keys")
        .await;
    let url = page["reportIssueUrl"].as_str().unwrap();
    let port = p.base.rsplit(':').next().unwrap();
    assert!(url.starts_with("https://github.com/northwind/payments/issues/new?title=Docs%3A+Setting+up+payments&body="), "{url}");
    let body = url.split("&body=").nth(1).unwrap();
    let body: String = form_urlencoded::parse(format!("b={body}").as_bytes())
        .next()
        .unwrap()
        .1
        .into_owned();
    assert!(body.starts_with(&format!(
        "Page: http://127.0.0.1:{port}/docs/default/component/payments/guide/setup\n\n> Never use production keys\n"
    )), "{body}");
    assert_eq!(
        page["url"],
        format!("http://127.0.0.1:{port}/docs/default/component/payments/guide/setup")
    );

    // GitLab, from the source location, when mkdocs.yml names no repo.
    let notes = p.ok("/api/docs/component/default/notes").await;
    assert!(
        notes["reportIssueUrl"]
            .as_str()
            .unwrap()
            .starts_with("https://gitlab.northwind.example/platform/notes/-/issues/new?issue[title]=Docs%3A+Home&issue[description]="),
        "{}",
        notes["reportIssueUrl"]
    );
}

#[tokio::test]
async fn without_nav_the_folder_is_the_navigation() {
    let p = docs_portal().await;
    let notes = p.ok("/api/docs/component/default/notes").await;
    assert_eq!(notes["title"], "Home");
    assert_eq!(titles(&notes["nav"]), ["Home", "Adding notes", "Sub"]);
    assert_eq!(titles(&notes["nav"][2]["children"]), ["Storage"]);
    let storage = p.ok("/api/docs/component/default/notes/sub/storage").await;
    assert_eq!(storage["title"], "Storage", "the first heading");
    assert!(
        storage["html"]
            .as_str()
            .unwrap()
            .contains("Notes live in SQLite.")
    );
}

#[tokio::test]
async fn hostile_docs_are_sanitised_and_contained() {
    let p = docs_portal().await;
    let faq = p.ok("/api/docs/component/default/payments/guide/faq").await;
    let html = faq["html"].as_str().unwrap();
    for bad in ["<script", "stolen", "javascript:", "onerror", "onclick"] {
        assert!(!html.to_lowercase().contains(bad), "{bad} in {html}");
    }
    assert!(html.contains("Banks take up to five days."), "{html}");

    // A link out of the docs folder serves nothing, as page or as asset.
    let (status, body) = p.get("/api/docs/component/default/payments/leak").await;
    assert_eq!(status, 404, "{body}");
    let resp = p
        .http
        .get(format!(
            "{}/api/docs/component/default/payments/img/passwd.txt",
            p.base
        ))
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    assert!(
        status == 400 && text.contains("leaves the entity's folder"),
        "{status} {text}"
    );
    assert!(!text.contains("root:"));
    // Escapes in the address (clients resolve `..` themselves; an
    // encoded backslash still arrives), unknown asset types, missing pages.
    let (status, body) = p
        .get("/api/docs/component/default/payments/guide%5C..%5C..%5Csecrets")
        .await;
    assert_eq!(status, 400, "{body}");
    let (status, _) = p
        .get("/api/docs/component/default/payments/script.js")
        .await;
    assert_eq!(status, 404);
    let (status, body) = p
        .get("/api/docs/component/default/payments/guide/none")
        .await;
    assert_eq!(status, 404, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("has no docs page 'guide/none'")
    );
    // No docs, or docs elsewhere.
    let (status, _) = p.get("/api/docs/component/default/no-docs").await;
    assert_eq!(status, 404);
    let (status, body) = p.get("/api/docs/component/default/remote-docs").await;
    assert_eq!(status, 502, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("write `dir:.`"),
        "{body}"
    );
}

#[tokio::test]
async fn every_page_is_a_search_document() {
    let p = docs_portal().await;
    let state = p.state.clone();
    let documents = tokio::task::spawn_blocking(move || {
        let plugin = state.plugins.enabled().into_iter().next().unwrap();
        let r = greenroom::catalog::EntityRef::new("component", "default", "payments");
        let json = state.store.catalog.entity_by_ref(&r, &[]).unwrap().unwrap();
        let entity = greenroom::plugins::host::entity_record(json).unwrap();
        plugin
            .search_documents(&entity, &state.plugins.limits())
            .unwrap()
    })
    .await
    .unwrap();
    let found: Vec<(&str, &str)> = documents
        .iter()
        .map(|d| (d.title.as_str(), d.location.as_str()))
        .collect();
    assert_eq!(
        found,
        [
            ("Home", "/docs/default/component/payments"),
            ("Guide", "/docs/default/component/payments/guide"),
            (
                "Setting up payments",
                "/docs/default/component/payments/guide/setup"
            ),
            (
                "Internals",
                "/docs/default/component/payments/guide/deep/internals"
            ),
            ("FAQ", "/docs/default/component/payments/guide/faq"),
        ]
    );
    let setup = &documents[2].text;
    assert!(
        setup.contains("Never use production keys on a laptop."),
        "{setup}"
    );
    assert!(setup.contains("make install"), "{setup}");
    assert!(
        !setup.contains("!!!") && !setup.contains("](") && !setup.contains('|'),
        "{setup}"
    );
}
