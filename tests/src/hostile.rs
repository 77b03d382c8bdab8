//! Hostile input (issue 11): what one anonymous request or one catalog file
//! could do before, each refused now with a clear message and nothing
//! stored lost. Every upstream is a loopback server of the test's own; a
//! redirect to a private or metadata address is refused before any
//! connection is made.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::response::Redirect;
use axum::routing::get;
use serde_json::{Value, json};
use tokio::sync::Notify;

use crate::plugins::{cards, portal_with, wasm};
use crate::support::{FileServer, Portal, component, group};

/// A repository host on loopback: `/org/repo/catalog-info.yaml` with one
/// component whose description and links come from substitutions, each of
/// which the server answers with a redirect somewhere else.
async fn redirecting_upstream() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let catalog = |text: &'static str| {
        format!(
            "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: remote\n  description: {{$text: ./{text}}}\nspec:\n  type: service\n  lifecycle: production\n  owner: team-a\n"
        )
    };
    let app = Router::new()
        .route(
            "/org/repo/catalog-info.yaml",
            get(move || async move { catalog("metadata.txt") }),
        )
        .route(
            "/org/repo/leave/catalog-info.yaml",
            get(move || async move { catalog("notes.txt") }),
        )
        .route(
            "/org/repo/local/catalog-info.yaml",
            get(move || async move { catalog("notes.txt") }),
        )
        .route(
            "/org/repo/metadata.txt",
            get(|| async { Redirect::temporary("http://169.254.169.254/latest/meta-data/iam") }),
        )
        // Same origin, but another repository's folder.
        .route(
            "/org/repo/leave/notes.txt",
            get(|| async { Redirect::temporary("/org/other/secret.txt") }),
        )
        .route(
            "/org/repo/local/notes.txt",
            get(move || async move {
                Redirect::temporary(&format!(
                    "http://localhost:{}/org/other/secret.txt",
                    addr.port()
                ))
            }),
        )
        .route(
            "/org/other/secret.txt",
            get(|| async { "someone else's secret" }),
        );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

async fn dry_run(p: &Portal, url: &str) -> Value {
    let (status, body) = p
        .admin_post(
            "/api/catalog/locations?dryRun=true",
            &json!({"type": "url", "target": url}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    body
}

fn messages(body: &Value) -> String {
    body["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["message"].as_str().unwrap_or_default().to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test]
async fn substitutions_redirected_to_metadata_other_folders_or_loopback_names_are_refused() {
    let upstream = redirecting_upstream().await;
    let config = format!(
        "[catalog]\nallowed_origins = [\"http://{upstream}\"]\n[[catalog.locations]]\ntarget = \"a.yaml\"\n"
    );
    let p = Portal::start(&config, &[("a.yaml", &group("team-a"))]).await;

    // Cloud metadata through a redirect: refused at the redirect, before
    // any connection to that address, and nothing of it in the answer.
    let body = dry_run(&p, &format!("http://{upstream}/org/repo/catalog-info.yaml")).await;
    let text = messages(&body);
    assert!(
        text.contains("169.254.169.254:80 is not in catalog.allowed_origins"),
        "{text}"
    );
    assert_eq!(body["entities"], json!([]), "{body}");

    // A redirect within the origin but out of the catalog file's folder:
    // the folder rule holds on every hop.
    let body = dry_run(
        &p,
        &format!("http://{upstream}/org/repo/leave/catalog-info.yaml"),
    )
    .await;
    let text = messages(&body);
    assert!(text.contains("outside the catalog file's folder"), "{text}");
    assert!(
        !body.to_string().contains("someone else's secret"),
        "{body}"
    );

    // The same server by a name that resolves to loopback: not allowed.
    let body = dry_run(
        &p,
        &format!("http://{upstream}/org/repo/local/catalog-info.yaml"),
    )
    .await;
    let text = messages(&body);
    assert!(
        text.contains(&format!(
            "localhost:{} is not in catalog.allowed_origins",
            upstream.port()
        )),
        "{text}"
    );
    assert!(
        !body.to_string().contains("someone else's secret"),
        "{body}"
    );
}

#[tokio::test]
async fn url_locations_are_limited_to_allowed_origins_and_names_must_be_public() {
    let remote = tempfile::tempdir().unwrap();
    std::fs::write(
        remote.path().join("svc.yaml"),
        component("remote", "team-a"),
    )
    .unwrap();
    let server = FileServer::start(remote.path()).await;
    let port = server.addr.port();
    // Only the name `localhost` is allowed, not the address.
    let config = format!(
        "[catalog]\nallowed_origins = [\"http://localhost:{port}\"]\n[[catalog.locations]]\ntarget = \"a.yaml\"\n"
    );
    let p = Portal::start(&config, &[("a.yaml", &group("team-a"))]).await;
    let (status, body) = p
        .admin_post(
            "/api/catalog/locations",
            &json!({"type": "url", "target": server.url("svc.yaml")}),
        )
        .await;
    assert_eq!(status, 403, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains(&format!(
            "http://127.0.0.1:{port} is not in catalog.allowed_origins"
        )),
        "{message}"
    );
    // Allowed by name, but the name resolves to loopback: refused when
    // read, with the address named.
    let body = dry_run(&p, &format!("http://localhost:{port}/svc.yaml")).await;
    let text = messages(&body);
    assert!(
        text.contains("localhost resolves to") && text.contains("private, loopback"),
        "{text}"
    );
    assert!(p.entity("component", "remote").await.is_none());
}

#[tokio::test]
async fn a_slow_location_does_not_hold_the_write_lock() {
    // An upstream that answers only when the test says so.
    let release = Arc::new(Notify::new());
    let asked = Arc::new(Notify::new());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Router::new().route(
        "/slow.yaml",
        get({
            let (release, asked) = (release.clone(), asked.clone());
            move || async move {
                asked.notify_one();
                release.notified().await;
                component("slow", "team-a")
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let config = format!(
        "[catalog]\nallowed_origins = [\"http://{addr}\"]\nfetch_timeout = \"60s\"\n[[catalog.locations]]\ntarget = \"a.yaml\"\n"
    );
    let p = Portal::start(&config, &[("a.yaml", &group("team-a"))]).await;
    let (base, http) = (p.base.clone(), p.http.clone());
    let adding = tokio::spawn(async move {
        http.post(format!("{base}/api/catalog/locations?wait=true"))
            .bearer_auth(Portal::ADMIN)
            .json(&json!({"type": "url", "target": format!("http://{addr}/slow.yaml")}))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    });
    // The refresh is now waiting on the upstream. A store write goes
    // through at once; before, it waited for the download (and failed
    // after the store's 10 s busy timeout).
    asked.notified().await;
    let store = p.state.store.clone();
    let write = tokio::task::spawn_blocking(move || {
        store.plugin_state.kv_set("test", "k", b"v", None, 100)
    });
    let written = tokio::time::timeout(Duration::from_secs(30), write)
        .await
        .expect("a store write waited for a download")
        .unwrap()
        .unwrap();
    assert!(written);
    assert!(!adding.is_finished(), "the location is still being read");
    release.notify_one();
    assert_eq!(adding.await.unwrap(), 201);
    assert!(p.entity("component", "slow").await.is_some());
}

#[tokio::test]
async fn a_location_over_its_file_budget_keeps_what_the_unread_files_gave() {
    let location = |targets: &str| {
        format!(
            "apiVersion: backstage.io/v1alpha1\nkind: Location\nmetadata:\n  name: all\nspec:\n  targets: [{targets}]\n---\n{}",
            group("team-a")
        )
    };
    let p = Portal::start(
        "[catalog]\nmax_files_per_location = 3\n[[catalog.locations]]\ntarget = \"a.yaml\"\n",
        &[
            ("a.yaml", &location("./d.yaml")),
            ("b.yaml", &component("bravo", "team-a")),
            ("c.yaml", &component("charlie", "team-a")),
            ("d.yaml", &component("delta", "team-a")),
        ],
    )
    .await;
    assert!(p.entity("component", "delta").await.is_some());
    // Now a.yaml leads to three files: with a.yaml itself, d.yaml is the
    // fourth, over the budget, and keeps what it gave before.
    p.write("a.yaml", &location("./b.yaml, ./c.yaml, ./d.yaml"));
    p.refresh().await;
    let problems = p.problems().await;
    let over = problems
        .iter()
        .find(|x| x["source"].as_str().unwrap().ends_with("d.yaml"))
        .unwrap_or_else(|| panic!("{problems:?}"));
    assert!(
        over["message"]
            .as_str()
            .unwrap()
            .contains("already read 3 files (catalog.max_files_per_location)"),
        "{over}"
    );
    for name in ["bravo", "charlie", "delta"] {
        assert!(
            p.entity("component", name).await.is_some(),
            "{name} is there"
        );
    }
}

#[tokio::test]
async fn symbolic_links_do_not_lead_out_of_a_location_or_a_substitution() {
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret.txt"), "outside secret").unwrap();
    std::fs::create_dir_all(outside.path().join("svc")).unwrap();
    std::fs::write(
        outside.path().join("svc/catalog-info.yaml"),
        component("smuggled", "team-a"),
    )
    .unwrap();
    let described = "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: described\n  description: {$text: ./notes.txt}\nspec:\n  type: service\n  lifecycle: production\n  owner: team-a\n";
    let p = Portal::start(
        "[[catalog.locations]]\ntarget = \"repos\"\n",
        &[
            ("repos/team/catalog-info.yaml", &group("team-a")),
            ("repos/described/catalog-info.yaml", described),
        ],
    )
    .await;
    let repos = p.dir.path().join("repos");
    std::fs::create_dir_all(repos.join("linked")).unwrap();
    std::os::unix::fs::symlink(
        outside.path().join("svc/catalog-info.yaml"),
        repos.join("linked/catalog-info.yaml"),
    )
    .unwrap();
    std::os::unix::fs::symlink(
        outside.path().join("secret.txt"),
        repos.join("described/notes.txt"),
    )
    .unwrap();
    p.refresh().await;
    assert!(p.entity("component", "smuggled").await.is_none());
    let problems = p.problems().await;
    let text = problems
        .iter()
        .map(|x| x["message"].as_str().unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        text.contains("leaves the location's folder through a symbolic link"),
        "{text}"
    );
    assert!(
        text.contains("leaves its folder through a symbolic link"),
        "{text}"
    );
    assert!(!text.contains("outside secret"), "{text}");
    assert!(p.entity("group", "team-a").await.is_some());
}

#[tokio::test]
async fn host_names_the_portal_does_not_answer_to_are_refused() {
    let p = Portal::start(
        "allowed_hosts = [\"portal.example.com\"]\n[[catalog.locations]]\ntarget = \"a.yaml\"\n",
        &[("a.yaml", &group("team-a"))],
    )
    .await;
    let port = p.base.rsplit(':').next().unwrap().to_string();
    let with_host = |host: String| {
        let (base, http) = (p.base.clone(), p.http.clone());
        async move {
            let r = http
                .get(format!("{base}/api/catalog/entities"))
                .header("host", host)
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    // DNS rebinding: a page on evil.example whose name now resolves here.
    let (status, body) = with_host(format!("evil.example:{port}")).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("server.allowed_hosts"), "{body}");
    for host in [
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        "portal.example.com".to_string(),
        format!("PORTAL.example.com:{port}"),
    ] {
        let (status, body) = with_host(host.clone()).await;
        assert_eq!(status, 200, "{host}: {body}");
    }
}

/// `source.read-file` of a URL beside an entity is held to the plugin
/// call's deadline, not to the (here 60 s) fetch timeout.
#[tokio::test]
async fn a_plugin_reading_a_slow_file_is_held_to_its_deadline() {
    let remote = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(remote.path().join("org/repo")).unwrap();
    std::fs::write(
        remote.path().join("org/repo/catalog-info.yaml"),
        crate::plugins::entity("source", "\"test/read\": \"hang-notes.txt\""),
    )
    .unwrap();
    let server = FileServer::start(remote.path()).await;
    let files: Vec<(String, Vec<u8>)> = vec![(
        "hostile.wasm".into(),
        std::fs::read(wasm("hostile")).unwrap(),
    )];
    let extra = format!(
        "http_timeout = \"60s\"\n[[catalog.locations]]\ntype = \"url\"\ntarget = \"{}\"\n{}",
        server.url("org/repo/catalog-info.yaml"),
        server.allowed()
    );
    let p = portal_with(&files, &[], "", &extra).await;
    let started = std::time::Instant::now();
    let c = cards(&p, "source").await;
    let shown = c[0].to_string();
    assert!(
        shown.contains("no answer within") || shown.contains("did not answer within 1s"),
        "{shown}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "the read outlived the call's deadline"
    );
}

/// Links in plugin cards that the web UI must not follow reach it without
/// an address: `javascript:`, `data:`, and paths a browser reads as another
/// site.
#[tokio::test]
async fn card_links_the_ui_must_not_follow_lose_their_address() {
    let p = crate::plugins::portal(
        &["everything"],
        &[("gallery", "\"test/gallery\": \"yes\"")],
        "",
    )
    .await;
    let gallery = cards(&p, "gallery")
        .await
        .into_iter()
        .find(|c| c["id"] == "gallery")
        .expect("the gallery card");
    let nodes = gallery["nodes"].as_array().unwrap();
    let link = |label: &str| {
        nodes
            .iter()
            .find(|n| n["type"] == "link" && n["label"] == label)
            .unwrap_or_else(|| panic!("no link {label}: {gallery}"))["href"]
            .clone()
    };
    assert_eq!(link("Safe link"), "https://example.com/docs");
    assert_eq!(link("Hostile link"), "");
    let cell = nodes
        .iter()
        .find(|n| n["type"] == "table")
        .map(|t| t["rows"][0][1].clone())
        .unwrap();
    assert_eq!(cell["href"], "", "{cell}");
}

/// A file location whose Location entity points at a URL: the walk that
/// would fetch while holding the write lock stops, and the location is
/// read first and written after, with everything in it.
#[tokio::test]
async fn a_file_location_leading_to_a_url_is_read_before_it_is_written() {
    let remote = tempfile::tempdir().unwrap();
    std::fs::write(
        remote.path().join("svc.yaml"),
        component("remote", "team-a"),
    )
    .unwrap();
    let server = FileServer::start(remote.path()).await;
    let location = format!(
        "apiVersion: backstage.io/v1alpha1\nkind: Location\nmetadata:\n  name: remote\nspec:\n  target: {}\n---\n{}",
        server.url("svc.yaml"),
        group("team-a")
    );
    let p = Portal::start(
        &format!(
            "[[catalog.locations]]\ntarget = \"a.yaml\"\n{}",
            server.allowed()
        ),
        &[("a.yaml", &location)],
    )
    .await;
    assert!(p.entity("component", "remote").await.is_some());
    assert!(p.entity("group", "team-a").await.is_some());
    assert!(p.entity("location", "remote").await.is_some());
    assert_eq!(p.problems().await, Vec::<Value>::new());
}
