//! Plugins as real WebAssembly components, built from source by this
//! crate's build script, loaded by the real host: cards served, and every
//! kind of misbehaviour contained with a clear error while the server keeps
//! answering.

use std::path::PathBuf;
use std::sync::OnceLock;

use serde_json::Value;

use crate::support::{FileServer, Portal, group};

pub(crate) fn wasm(name: &str) -> PathBuf {
    PathBuf::from(env!("GREENROOM_TEST_PLUGINS")).join(format!("{name}.wasm"))
}

/// One compile cache for every test portal, so each plugin compiles once.
pub(crate) fn cache_dir() -> &'static str {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().unwrap())
        .path()
        .to_str()
        .unwrap()
}

pub(crate) fn entity(name: &str, annotations: &str) -> String {
    format!(
        "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: {name}\n  annotations: {{{annotations}}}\nspec:\n  type: service\n  lifecycle: production\n  owner: team-a\n"
    )
}

/// A portal with `plugins` installed and one entity per name.
pub(crate) async fn portal(plugins: &[&str], names: &[(&str, &str)], extra: &str) -> Portal {
    let files: Vec<(String, Vec<u8>)> = plugins
        .iter()
        .map(|p| (format!("{p}.wasm"), std::fs::read(wasm(p)).unwrap()))
        .collect();
    portal_with(&files, names, "", extra).await
}

/// A portal with the given files in its plugins folder, one entity per
/// name, and extra `[server]` and `[plugins]` settings.
pub(crate) async fn portal_with(
    plugin_files: &[(String, Vec<u8>)],
    names: &[(&str, &str)],
    server: &str,
    plugins: &str,
) -> Portal {
    let docs: Vec<String> = names.iter().map(|(n, a)| entity(n, a)).collect();
    portal_with_docs(plugin_files, &docs, server, plugins).await
}

/// A portal with the given plugin files, the group team-a plus `docs`
/// (YAML documents), and extra `[server]` and `[plugins]` settings.
pub(crate) async fn portal_with_docs(
    plugin_files: &[(String, Vec<u8>)],
    extra_docs: &[String],
    server: &str,
    plugins: &str,
) -> Portal {
    let mut docs = vec![group("team-a")];
    docs.extend(extra_docs.iter().cloned());
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("plugins")).unwrap();
    for (name, bytes) in plugin_files {
        std::fs::write(dir.path().join("plugins").join(name), bytes).unwrap();
    }
    std::fs::write(dir.path().join("catalog.yaml"), docs.join("---\n")).unwrap();
    let config = format!(
        "{server}\n[plugins]\ndir = \"plugins\"\ncache_dir = \"{}\"\ncall_timeout = \"1s\"\n{POLLS_OFF}{plugins}\n[[catalog.locations]]\ntarget = \"catalog.yaml\"\n",
        cache_dir()
    );
    Portal::start_in(dir, &config).await
}

/// Test portals poll plugins only when a test asks them to, so what an
/// upstream receives is what the test did.
pub(crate) const POLLS_OFF: &str = "facts_interval = \"0s\"\nevents_interval = \"0s\"\n";

pub(crate) async fn cards(p: &Portal, name: &str) -> Vec<Value> {
    p.ok(&format!("/api/cards/component/default/{name}")).await["cards"]
        .as_array()
        .unwrap()
        .clone()
}

/// A plugin's error for a component's cards, computed afresh
/// (`Cache-Control: no-cache`); fails unless the plugin's card is an error
/// card.
pub(crate) async fn fresh_error(p: &Portal, name: &str, plugin: &str) -> String {
    let cards: Value = p
        .http
        .get(format!("{}/api/cards/component/default/{name}", p.base))
        .header("cache-control", "no-cache")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    error_text(by_plugin(cards["cards"].as_array().unwrap(), plugin))
}

/// The message of an error card; fails on any other card.
pub(crate) fn error_text(card: &Value) -> String {
    assert_eq!(card["id"], "error", "expected an error card: {card}");
    card["error"].as_str().unwrap().to_string()
}

/// A plugin's events at or after `since_ms`, from its `events` export.
pub(crate) async fn plugin_events(
    p: &Portal,
    plugin: &str,
    since_ms: u64,
) -> Vec<greenroom::plugins::bindings::greenroom::plugin::types::Event> {
    let loaded = p
        .state
        .plugins
        .enabled()
        .into_iter()
        .find(|l| l.manifest.id == plugin)
        .expect("plugin loaded");
    let limits = p.state.plugins.limits();
    tokio::task::spawn_blocking(move || loaded.events(since_ms, &limits))
        .await
        .unwrap()
        .unwrap()
}

pub(crate) fn by_plugin<'a>(cards: &'a [Value], plugin: &str) -> &'a Value {
    cards
        .iter()
        .find(|c| c["plugin"] == plugin)
        .unwrap_or_else(|| panic!("no card from {plugin}: {cards:?}"))
}

#[tokio::test]
async fn hello_serves_a_card_and_is_listed_with_its_exports() {
    let p = portal(&["hello"], &[("checkout", "")], "").await;
    let cards_before = cards(&p, "checkout").await;
    assert_eq!(cards_before.len(), 1, "{cards_before:?}");
    let hello = &cards_before[0];
    assert_eq!(hello["plugin"], "hello");
    assert_eq!(hello["title"], "Hello");
    assert_eq!(
        hello["nodes"][0],
        serde_json::json!({"type": "heading", "text": "Hello, checkout!"})
    );
    assert_eq!(hello["nodes"][1]["value"], "team-a");
    assert_eq!(
        hello["nodes"][2],
        serde_json::json!({"type": "badge", "label": "Component", "tone": "info"})
    );

    let list = p.ok("/api/plugins").await;
    let item = &list["items"][0];
    assert_eq!(item["id"], "hello");
    assert_eq!(item["state"], "loaded");
    assert_eq!(
        item["exports"],
        serde_json::json!(["greenroom:plugin/cards@0.2.0"]),
        "only what it implements"
    );
    assert_eq!(item["health"]["calls"], 1);
    assert_eq!(item["health"]["errors"], 0);

    // Served from cache while fresh; a changed entity asks the plugin again.
    assert_eq!(cards(&p, "checkout").await, cards_before);
    assert_eq!(p.ok("/api/plugins").await["items"][0]["health"]["calls"], 1);
    let text = std::fs::read_to_string(p.dir.path().join("catalog.yaml")).unwrap();
    p.write(
        "catalog.yaml",
        &text.replace("owner: team-a\n", "owner: team-b\n"),
    );
    p.refresh().await;
    assert_eq!(
        cards(&p, "checkout").await[0]["nodes"][1]["value"],
        "team-b"
    );
    assert_eq!(p.ok("/api/plugins").await["items"][0]["health"]["calls"], 2);
    let (status, _) = p.get("/api/cards/component/default/missing").await;
    assert_eq!(status, 404);
}

/// Each misbehaviour, in a portal of its own (a plugin that keeps failing
/// backs off, which would mask the next case).
async fn contained(name: &str) -> (String, Vec<Value>) {
    let p = portal(&["hello", "hostile"], &[(name, "")], "").await;
    let cards = cards(&p, name).await;
    assert_eq!(
        by_plugin(&cards, "hello")["title"],
        "Hello",
        "other plugins still answer"
    );
    let hostile = by_plugin(&cards, "hostile");
    let text = hostile["error"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| {
            hostile["nodes"][0]["text"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        });
    (text, cards)
}

#[tokio::test]
async fn an_infinite_loop_is_stopped_at_the_deadline() {
    let (error, _) = contained("loop").await;
    assert_eq!(
        error,
        "plugin hostile 0.1.0 did not answer within 1s and was stopped"
    );
}

#[tokio::test]
async fn a_gigabyte_allocation_hits_the_memory_cap() {
    let (error, _) = contained("alloc").await;
    assert_eq!(
        error,
        "plugin hostile 0.1.0 exceeded its memory limit of 64 MiB"
    );
}

#[tokio::test]
async fn a_hundred_megabyte_answer_is_refused() {
    let (error, _) = contained("big").await;
    assert!(
        error.contains("memory limit") || error.contains("more than"),
        "{error}"
    );
}

#[tokio::test]
async fn a_panic_and_deep_recursion_are_crashes_not_host_failures() {
    let (error, _) = contained("panic").await;
    assert_eq!(
        error,
        "plugin hostile 0.1.0 crashed: panicked (wasm `unreachable` executed)"
    );
    let (error, _) = contained("recurse").await;
    assert!(
        error.starts_with("plugin hostile 0.1.0 crashed:") && error.contains("stack overflow"),
        "{error}"
    );
}

#[tokio::test]
async fn files_and_sockets_are_out_of_reach() {
    let (text, _) = contained("files").await;
    assert!(
        text.starts_with("file error:") && !text.contains("root:"),
        "{text}"
    );
    let (text, _) = contained("socket").await;
    assert!(text.starts_with("socket error:"), "{text}");
}

#[tokio::test]
async fn http_needs_a_grant_and_a_manifest_request() {
    let remote = tempfile::tempdir().unwrap();
    let server = FileServer::start(remote.path()).await;
    let port = server.addr.port();
    let entities = [
        (
            "http-ungranted",
            "\"test/url\": \"http://127.0.0.1:1/x\"".to_string(),
        ),
        (
            "http-unrequested",
            format!("\"test/url\": \"http://127.0.0.1:{port}/x\""),
        ),
    ];
    let names: Vec<(&str, &str)> = entities.iter().map(|(n, a)| (*n, a.as_str())).collect();
    // The manifest asks for http://127.0.0.1:1 only: granting another host
    // is not enough, and asking is not enough without a grant.
    let grants =
        format!("[[plugins.grants]]\nid = \"hostile\"\nhosts = [\"http://127.0.0.1:{port}\"]\n");
    let p = portal(&["hostile"], &names, &grants).await;
    let text = |cards: Vec<Value>| cards[0]["nodes"][0]["text"].as_str().unwrap().to_string();
    let t = text(cards(&p, "http-ungranted").await);
    assert!(
        t.contains("NotGranted")
            && t.contains("not granted to plugin hostile")
            && t.contains("127.0.0.1:1"),
        "{t}"
    );
    let t = text(cards(&p, "http-unrequested").await);
    assert!(
        t.contains("NotGranted") && t.contains(&format!("127.0.0.1:{port}")),
        "{t}"
    );
    assert!(
        p.ok("/api/plugins").await["items"][0]["requested"]["hosts"][0] == "http://127.0.0.1:1"
    );
}

#[tokio::test]
async fn a_looping_plugin_costs_other_requests_nothing() {
    let p = portal(&["hello", "hostile"], &[("loop", ""), ("calm", "")], "").await;
    let base = p.base.clone();
    let http = p.http.clone();
    let looping = tokio::spawn(async move {
        http.get(format!("{base}/api/cards/component/default/loop"))
            .send()
            .await
            .unwrap();
        std::time::Instant::now()
    });
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    assert_eq!(p.ok("/healthz").await["status"], "ok");
    let calm = cards(&p, "calm").await;
    assert_eq!(by_plugin(&calm, "hello")["title"], "Hello");
    assert_eq!(by_plugin(&calm, "hostile")["nodes"][0]["text"], "fine");
    let answered = std::time::Instant::now();
    let loop_done = looping.await.unwrap();
    assert!(
        answered < loop_done,
        "other requests were answered while the loop was still running"
    );
}

#[tokio::test]
async fn invalid_files_are_listed_with_their_error_and_harm_nothing() {
    let hello = std::fs::read(wasm("hello")).unwrap();
    let files = vec![
        ("hello.wasm".to_string(), hello.clone()),
        (
            "truncated.wasm".to_string(),
            hello[..hello.len() / 2].to_vec(),
        ),
        ("garbage.wasm".to_string(), b"not wasm at all".to_vec()),
        // A core module, as a wasip1 build gives.
        ("core.wasm".to_string(), b"\0asm\x01\0\0\0".to_vec()),
    ];
    let p = portal_with(&files, &[("checkout", "")], "", "").await;
    let list = p.ok("/api/plugins").await;
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 4);
    let failed: Vec<&Value> = items.iter().filter(|i| i["state"] == "failed").collect();
    assert_eq!(failed.len(), 3, "{items:?}");
    for f in &failed {
        let error = f["error"].as_str().unwrap();
        let expected = if f["file"].as_str().unwrap().ends_with("core.wasm") {
            "core.wasm: is a core WebAssembly module, not a component"
        } else {
            ".wasm: not a WebAssembly component"
        };
        assert!(error.contains(expected), "{error}");
    }
    assert_eq!(
        cards(&p, "checkout").await.len(),
        1,
        "the good plugin still serves"
    );
}

/// Polls `/api/plugins` until `check` holds.
async fn until_plugins(p: &Portal, what: &str, check: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let list = p.ok("/api/plugins").await["items"]
            .as_array()
            .unwrap()
            .clone();
        if check(&list) {
            return list;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting until {what}: {list:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
}

#[tokio::test]
async fn dropped_in_plugins_load_swap_and_unload_without_a_restart() {
    let p = portal(&[], &[("checkout", "")], "").await;
    assert!(
        p.ok("/api/plugins").await["items"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    let target = p.dir.path().join("plugins/extra.wasm");

    std::fs::copy(wasm("hello"), &target).unwrap();
    until_plugins(&p, "hello is loaded", |l| {
        l.len() == 1 && l[0]["id"] == "hello"
    })
    .await;
    assert_eq!(cards(&p, "checkout").await[0]["plugin"], "hello");

    // Replaced in place: the new plugin serves.
    std::fs::copy(wasm("hostile"), &target).unwrap();
    until_plugins(&p, "hostile replaced hello", |l| {
        l.len() == 1 && l[0]["id"] == "hostile"
    })
    .await;
    assert_eq!(cards(&p, "checkout").await[0]["plugin"], "hostile");

    // A broken file shows its error and serves nothing.
    std::fs::write(&target, b"\0asm garbage").unwrap();
    let list = until_plugins(&p, "the broken file is listed", |l| {
        l.len() == 1 && l[0]["state"] == "failed"
    })
    .await;
    assert!(list[0]["error"].as_str().unwrap().contains("extra.wasm"));
    assert!(cards(&p, "checkout").await.is_empty());

    std::fs::remove_file(&target).unwrap();
    until_plugins(&p, "the plugin is unloaded", |l| l.is_empty()).await;
}

/// A plugin copied in many writes (as a large one is) is loaded once, when
/// the file has stopped changing, not once per write.
#[tokio::test]
async fn a_plugin_written_slowly_is_loaded_once() {
    let p = portal(&[], &[("checkout", "")], "").await;
    let bytes = std::fs::read(wasm("hello")).unwrap();
    let target = p.dir.path().join("plugins/slow.wasm");
    {
        use std::io::Write;
        let mut file = std::fs::File::create(&target).unwrap();
        for chunk in bytes.chunks(bytes.len().div_ceil(8)) {
            file.write_all(chunk).unwrap();
            file.flush().unwrap();
            tokio::time::sleep(std::time::Duration::from_millis(120)).await;
        }
    }
    let list = until_plugins(&p, "hello is loaded", |l| {
        l.len() == 1 && l[0]["state"] == "loaded"
    })
    .await;
    assert_eq!(list[0]["loads"], 1, "{list:?}");
    assert_eq!(cards(&p, "checkout").await[0]["plugin"], "hello");
}

#[tokio::test]
async fn grants_and_disabling_go_through_the_admin_api() {
    // A variable name of this test's own: tests share the environment.
    let var = "GREENROOM_TEST_ADMIN_TOKEN_GRANTS";
    // SAFETY: no other test reads or writes this variable.
    unsafe { std::env::set_var(var, "letmein") };
    let files: Vec<(String, Vec<u8>)> = ["hello", "hostile"]
        .iter()
        .map(|p| (format!("{p}.wasm"), std::fs::read(wasm(p)).unwrap()))
        .collect();
    let p = portal_with(
        &files,
        &[("checkout", "")],
        &format!("admin_token_env = \"{var}\""),
        "",
    )
    .await;
    let post = |path: &'static str, token: Option<&'static str>, body: Value| {
        let mut req = p.http.post(format!("{}{path}", p.base)).json(&body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        async move {
            let resp = req.send().await.unwrap();
            (
                resp.status().as_u16(),
                resp.json::<Value>().await.unwrap_or(Value::Null),
            )
        }
    };
    let (status, _) = post("/api/plugins/hostile/disable", None, Value::Null).await;
    assert_eq!(status, 401);
    let (status, _) = post("/api/plugins/hostile/disable", Some("wrong"), Value::Null).await;
    assert_eq!(status, 401);
    let (status, info) = post("/api/plugins/hostile/disable", Some("letmein"), Value::Null).await;
    assert_eq!(
        (status, info["state"].as_str()),
        (200, Some("disabled")),
        "{info}"
    );
    let served: Vec<String> = cards(&p, "checkout")
        .await
        .iter()
        .map(|c| c["plugin"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(served, vec!["hello"], "a disabled plugin is never called");
    let (status, _) = post("/api/plugins/hostile/enable", Some("letmein"), Value::Null).await;
    assert_eq!(status, 200);
    assert_eq!(cards(&p, "checkout").await.len(), 2);

    let (status, info) = post(
        "/api/plugins/hostile/grants",
        Some("letmein"),
        serde_json::json!({"hosts": ["http://127.0.0.1:1"], "secrets": ["TEST_SECRET"]}),
    )
    .await;
    assert_eq!(status, 200, "{info}");
    assert_eq!(
        info["granted"]["hosts"],
        serde_json::json!(["http://127.0.0.1:1"])
    );
    let (status, err) = post(
        "/api/plugins/hostile/grants",
        Some("letmein"),
        serde_json::json!({"hosts": ["not a url"]}),
    )
    .await;
    assert_eq!(status, 400, "{err}");
    let (status, _) = post("/api/plugins/nobody/enable", Some("letmein"), Value::Null).await;
    assert_eq!(status, 404);
    // SAFETY: as above.
    unsafe { std::env::remove_var(var) };
}

/// What `greenroom plugin inspect` and `install` rely on.
#[tokio::test]
async fn inspect_reads_the_manifest_and_the_interfaces() {
    let p = portal(&[], &[], "").await;
    let (manifest, interfaces) = p.state.plugins.inspect(&wasm("hostile")).unwrap();
    assert_eq!(manifest.id, "hostile");
    assert_eq!(manifest.hosts, vec!["http://127.0.0.1:1"]);
    assert_eq!(manifest.secrets, vec!["TEST_SECRET"]);
    assert_eq!(interfaces.exports, vec!["greenroom:plugin/cards@0.2.0"]);
    assert!(
        interfaces
            .imports
            .iter()
            .any(|i| i == "greenroom:plugin/http@0.2.0"),
        "{:?}",
        interfaces.imports
    );
    assert!(
        interfaces.imports.iter().any(|i| i.starts_with("wasi:")),
        "a Rust wasip2 component imports WASI"
    );
    let (hello, interfaces) = p.state.plugins.inspect(&wasm("hello")).unwrap();
    assert_eq!(hello.description, "Greets every entity and names its owner");
    assert!(
        !interfaces
            .imports
            .iter()
            .any(|i| i.contains("greenroom:plugin/http")),
        "hello asks for no network"
    );
}

#[tokio::test]
async fn host_imports_kv_catalog_and_source_work_within_bounds() {
    let p = portal(
        &["hostile"],
        &[("kv", ""), ("catalog", ""), ("source", "")],
        "",
    )
    .await;
    p.write("notes.txt", "written beside the catalog");
    let text = |cards: Vec<Value>| cards[0]["nodes"][0]["text"].as_str().unwrap().to_string();
    assert_eq!(
        text(cards(&p, "kv").await),
        "read hello; after delete None; over quota: Err(\"kv quota of 1048576 bytes exceeded\")"
    );
    assert_eq!(
        text(cards(&p, "catalog").await),
        "team group:default/team-a; components kv,catalog,source"
    );
    let t = text(cards(&p, "source").await);
    assert!(
        t.starts_with("notes Ok(\"written beside the catalog\"); escape Err("),
        "{t}"
    );
    assert!(
        t.contains("leaves the entity's folder") && !t.contains("root:"),
        "{t}"
    );
}

/// A call that runs out of time burnt a core for the whole deadline: the
/// host does not ask again for that entity at once, and a plugin that runs
/// out of time on entity after entity is paused as a whole.
#[tokio::test]
async fn a_plugin_that_ran_out_of_time_is_not_asked_again_at_once() {
    let p = portal(
        &["hostile"],
        &[("loop", ""), ("loop-2", ""), ("loop-3", ""), ("calm", "")],
        "",
    )
    .await;
    let error = |c: Vec<Value>| error_text(&c[0]);
    assert_eq!(
        error(cards(&p, "loop").await),
        "plugin hostile 0.1.0 did not answer within 1s and was stopped"
    );
    let again = error(cards(&p, "loop").await);
    assert!(
        again.contains("ran out of time on this entity 1 time(s) in a row and is not called for it again for 30 s"),
        "{again}"
    );
    let calm = cards(&p, "calm").await;
    assert_eq!(
        calm[0]["nodes"][0]["text"], "fine",
        "other entities are served"
    );
    for name in ["loop-2", "loop-3"] {
        assert!(error(cards(&p, name).await).contains("did not answer within 1s"));
    }
    let paused = fresh_error(&p, "calm", "hostile").await;
    assert!(
        paused.contains("ran out of time 3 times in the last minute and is paused for 60 s"),
        "{paused}"
    );
    let health = &p.ok("/api/plugins").await["items"][0]["health"];
    assert_eq!(health["calls"], 4, "refused calls run nothing");
}

#[tokio::test]
async fn a_plugin_that_keeps_failing_backs_off() {
    let p = portal(&["hostile"], &[("panic", "")], "").await;
    for _ in 0..3 {
        let c = cards(&p, "panic").await;
        assert!(
            c[0]["error"].as_str().unwrap().contains("panicked"),
            "{c:?}"
        );
    }
    let c = cards(&p, "panic").await;
    let error = c[0]["error"].as_str().unwrap();
    assert!(
        error.contains("is backing off after 3 failures in a row"),
        "{error}"
    );
    let health = &p.ok("/api/plugins").await["items"][0]["health"];
    assert_eq!(health["calls"], 3, "backing off calls nothing");
    assert_eq!(health["errors"], 3);
    assert!(health["lastError"].as_str().unwrap().contains("panicked"));
}

#[tokio::test]
async fn a_component_for_an_unknown_contract_version_is_refused() {
    let p = portal(&["future", "hello"], &[("checkout", "")], "").await;
    let list = p.ok("/api/plugins").await;
    let items = list["items"].as_array().unwrap();
    let future = items
        .iter()
        .find(|i| i["file"].as_str().unwrap().ends_with("future.wasm"))
        .unwrap();
    assert_eq!(future["state"], "failed");
    let error = future["error"].as_str().unwrap();
    assert!(
        error.contains("greenroom:plugin/cards@0.9.0")
            && error.contains("it loads greenroom:plugin@0.2.0, @0.1.0"),
        "{error}"
    );
    assert_eq!(
        cards(&p, "checkout").await.len(),
        1,
        "the others still serve"
    );
}

/// Every export of the contract, called through the host on a plugin that
/// implements them all; a plugin without an export says so.
#[tokio::test]
async fn every_export_of_the_contract_is_callable() {
    let p = portal(&["everything", "hello"], &[("checkout", "")], "").await;
    let list = p.ok("/api/plugins").await;
    let everything = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == "everything")
        .unwrap()
        .clone();
    let mut exports: Vec<String> = everything["exports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap().to_string())
        .collect();
    exports.sort();
    let expected: Vec<String> = [
        "actions",
        "cards",
        "docs",
        "events",
        "facts",
        "providers",
        "search",
        "tabs",
        "webhooks",
        "widgets",
    ]
    .iter()
    .map(|i| format!("greenroom:plugin/{i}@0.2.0"))
    .collect();
    assert_eq!(exports, expected);

    let plugins = p.state.plugins.clone();
    let store = p.state.store.clone();
    tokio::task::spawn_blocking(move || {
        let json = store.catalog.entity_by_ref(&greenroom::catalog::EntityRef::new("component", "default", "checkout"), &[]).unwrap().unwrap();
        let entity = greenroom::plugins::host::entity_record(json).unwrap();
        let limits = plugins.limits();
        let loaded = plugins.loaded();
        let all = loaded.iter().find(|l| l.manifest.id == "everything").unwrap();
        let hello = loaded.iter().find(|l| l.manifest.id == "hello").unwrap();

        let facts = all.facts(&entity, &limits).unwrap();
        assert_eq!(facts[0].name, "test.name_length");
        assert!(matches!(facts[0].value, greenroom::plugins::bindings::greenroom::plugin::types::FactValue::Number(n) if n == 8.0));
        let events = all.events(1_000, &limits).unwrap();
        assert_eq!((events[0].id.as_str(), events[0].at_ms, events[0].actor.as_deref()), ("deploy-1000", 1_001, Some("ada")));
        let docs = all.search_documents(&entity, &limits).unwrap();
        assert_eq!(docs[0].title, "About checkout");
        let actions = all.actions(&entity, &limits).unwrap();
        assert_eq!((actions[0].id.as_str(), actions[0].confirm), ("greet", true));
        let form = greenroom::plugins::inputs::check(
            &actions[0],
            serde_json::json!({"greeting": "hi there", "times": "2", "tone": "warm", "loud": true}).as_object().unwrap(),
        )
        .unwrap();
        let raw = serde_json::json!({});
        assert_eq!(
            all.run_action("greet", &entity, &form, &raw, "user:default/ada", &limits).unwrap(),
            "greeting=text:hi there times=number:2 tone=text:warm loud=flag:true greets checkout by user:default/ada"
        );
        let err = all.run_action("explode", &entity, &[], &raw, "user:default/ada", &limits).unwrap_err();
        assert_eq!(err.to_string(), "configuration error: no action explode");
        let tabs = all.tabs(&entity, &limits).unwrap();
        assert_eq!((tabs[0].id.as_str(), tabs[0].title.as_str(), tabs[0].nodes.len()), ("everything", "Everything", 2));
        let widgets = all.widgets(Some("user:default/ada"), &limits).unwrap();
        assert_eq!(widgets[0].title, "Welcome");
        assert!(matches!(&widgets[0].nodes[0], greenroom::plugins::bindings::greenroom::plugin::types::Node::Text(t) if t == "Hello, user:default/ada"));
        let page = all.doc_page(&entity, "guide/index.md", &limits).unwrap();
        assert_eq!((page.title.as_str(), page.nav[0].href.as_str()), ("checkout / guide/index.md", "index.md"));

        // Discovery reads its settings; without a url it says what to set.
        let err = all.discover("inv", "{}", None, &limits).unwrap_err();
        assert_eq!(err.to_string(), "configuration error: set url in the provider's config");
        assert_eq!(hello.discover("inv", "{}", None, &limits).unwrap_err().to_string(), "does not export providers");
        // A webhook delivery: the event named, the file handed back.
        let out = all.webhook("push", r#"{"file": {"url": "https://x/catalog-info.yaml", "text": "kind: Component"}}"#, &limits).unwrap();
        assert_eq!((out.events[0].title.as_str(), out.files[0].url.as_str()), ("push delivered", "https://x/catalog-info.yaml"));
        assert_eq!(all.webhook("push", "not json", &limits).unwrap_err().to_string(), "upstream error: not JSON: expected ident at line 1 column 2");
        assert_eq!(hello.webhook("push", "{}", &limits).unwrap_err().to_string(), "does not export webhooks");

        assert_eq!(hello.facts(&entity, &limits).unwrap_err().to_string(), "does not export facts");
        assert_eq!(hello.doc_page(&entity, "x", &limits).unwrap_err().to_string(), "does not export docs");
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn the_operator_caps_what_a_plugin_may_store() {
    let p = portal(&["hostile"], &[("kv", "")], "max_kv_quota_bytes = 100").await;
    let t = cards(&p, "kv").await[0]["nodes"][0]["text"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        t.ends_with("over quota: Err(\"kv quota of 100 bytes exceeded\")"),
        "{t}"
    );
}

#[tokio::test]
async fn source_reads_beside_an_entity_from_a_url_location_and_no_further() {
    let remote = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(remote.path().join("org/repo")).unwrap();
    std::fs::create_dir_all(remote.path().join("org/other")).unwrap();
    std::fs::write(
        remote.path().join("org/repo/catalog-info.yaml"),
        entity("source", ""),
    )
    .unwrap();
    std::fs::write(
        remote.path().join("org/repo/notes.txt"),
        "served beside the catalog",
    )
    .unwrap();
    std::fs::write(remote.path().join("org/other/secret.txt"), "someone else's").unwrap();
    let server = FileServer::start(remote.path()).await;
    let files: Vec<(String, Vec<u8>)> = vec![(
        "hostile.wasm".into(),
        std::fs::read(wasm("hostile")).unwrap(),
    )];
    let location = format!(
        "[[catalog.locations]]\ntype = \"url\"\ntarget = \"{}\"\n{}",
        server.url("org/repo/catalog-info.yaml"),
        server.allowed()
    );
    let p = portal_with(&files, &[], "", &location).await;
    let t = cards(&p, "source").await[0]["nodes"][0]["text"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        t.starts_with("notes Ok(\"served beside the catalog\"); escape Err("),
        "{t}"
    );
    assert!(t.contains("leaves the entity's folder"), "{t}");
}

/// The epoch deadline only interrupts running WebAssembly; a plugin waiting
/// on a host import (HTTP) must be held to the same deadline.
#[tokio::test]
async fn a_plugin_waiting_on_a_slow_upstream_is_held_to_its_deadline() {
    let remote = tempfile::tempdir().unwrap();
    let server = FileServer::start(remote.path()).await;
    let origin = format!("http://127.0.0.1:{}", server.addr.port());
    let annotation = format!("\"test/url\": \"{}\"", server.url("hang.json"));
    let files: Vec<(String, Vec<u8>)> = vec![(
        "everything.wasm".into(),
        std::fs::read(wasm("everything")).unwrap(),
    )];
    // SAFETY: every test that sets this variable sets the same value.
    unsafe { std::env::set_var("GREENROOM_SECRET_TOKEN", "harness-token") };
    let extra = format!(
        "http_timeout = \"60s\"\n[[plugins.grants]]\nid = \"everything\"\nhosts = [\"{origin}\"]\nsecrets = [\"TOKEN\"]\n"
    );
    let p = portal_with(&files, &[("slow", annotation.as_str())], "", &extra).await;
    let started = std::time::Instant::now();
    let c = cards(&p, "slow").await;
    let error = c[0]["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("did not answer within 1s") || error.contains("Timeout"),
        "{c:?}"
    );
    // Behaviour, not speed: without the clamp the HTTP wait would last the
    // full 60 s http_timeout.
    assert!(
        started.elapsed() < std::time::Duration::from_secs(30),
        "the call outlived its deadline"
    );
}

/// Loads an example plugin built by another toolchain, with the manifest
/// from its folder embedded as `greenroom plugin embed-manifest` does, and
/// checks that it is listed and serves its greeting.
async fn example_plugin_serves(example: &str, component: &str, greeting: &str) {
    let raw = std::fs::read(component).unwrap();
    let manifest_path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(format!("../examples/plugins/{example}/manifest.json"));
    let manifest: greenroom::plugins::Manifest =
        serde_json::from_str(&std::fs::read_to_string(manifest_path).unwrap()).unwrap();
    let files = vec![(format!("{example}.wasm"), manifest.embed(&raw).unwrap())];
    let p = portal_with(&files, &[("checkout", "")], "", "").await;
    let item = &p.ok("/api/plugins").await["items"][0];
    assert_eq!(item["id"], example, "{item}");
    assert!(
        item["exports"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e == "greenroom:plugin/cards@0.1.0")
    );
    // Built against 0.1.0, served through the 0.2.0 host.
    assert_eq!(item["contract"], "0.1.0", "{item}");
    let c = cards(&p, "checkout").await;
    assert_eq!(
        c[0]["nodes"][0],
        serde_json::json!({"type": "heading", "text": greeting})
    );
}

/// A plugin in C, built through WASI's preview1 adapter: its WASI imports
/// link against the empty context and it serves like any other.
#[tokio::test]
async fn a_c_plugin_built_through_the_preview1_adapter_serves() {
    example_plugin_serves(
        "c-hello",
        env!("GREENROOM_TEST_C_PLUGIN"),
        "Hello from C, checkout!",
    )
    .await;
}

/// The Rust SDK copied out of this repository (as an author vendors it, or
/// as cargo checks out a git dependency's folder) still builds: it carries
/// its contract. The plugin built with it serves a card.
#[tokio::test]
async fn the_rust_sdk_builds_from_a_copy_outside_the_repository() {
    let away = tempfile::tempdir().unwrap();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let sdk = away.path().join("sdk");
    for dir in ["", "src", "wit"] {
        std::fs::create_dir_all(sdk.join(dir)).unwrap();
        for file in std::fs::read_dir(root.join("plugin-sdk").join(dir)).unwrap() {
            let file = file.unwrap().path();
            if file.is_file() {
                std::fs::copy(&file, sdk.join(dir).join(file.file_name().unwrap())).unwrap();
            }
        }
    }
    let mine = away.path().join("mine");
    std::fs::create_dir_all(mine.join("src")).unwrap();
    std::fs::copy(sdk.join("Cargo.lock"), mine.join("Cargo.lock")).unwrap();
    // The plugins workspace's release profile, so that the dependencies it
    // compiled already are reused.
    std::fs::write(
        mine.join("Cargo.toml"),
        "[package]\nname = \"mine\"\nversion = \"0.1.0\"\nedition = \"2024\"\n[lib]\ncrate-type = [\"cdylib\"]\n[dependencies]\ngreenroom-plugin-sdk = { path = \"../sdk\", features = [\"cards\"] }\n[profile.release]\nopt-level = \"s\"\nlto = true\ncodegen-units = 1\npanic = \"abort\"\n",
    )
    .unwrap();
    std::fs::write(
        mine.join("src/lib.rs"),
        r##"use greenroom_plugin_sdk::{Card, CardBuilder, Entity, Plugin, PluginError, manifest, register_plugin};
manifest!(r#"{"id": "mine", "name": "Mine", "version": "0.1.0"}"#);
struct Mine;
impl Plugin for Mine {
    fn cards(entity: Entity) -> Result<Vec<Card>, PluginError> {
        Ok(vec![CardBuilder::new("mine", "Mine").text(&format!("built outside, {}", entity.name)).build()])
    }
}
register_plugin!(Mine);
"##,
    )
    .unwrap();
    let built = tokio::task::spawn_blocking(move || build_plugin_crate(&mine, "mine.wasm"))
        .await
        .unwrap();
    let files = vec![("mine.wasm".to_string(), std::fs::read(built).unwrap())];
    let p = portal_with(&files, &[("checkout", "")], "", "").await;
    let c = cards(&p, "checkout").await;
    assert_eq!(c[0]["nodes"][0]["text"], "built outside, checkout", "{c:?}");
}

/// Grants and settings written into greenroom.toml apply to a running
/// portal; a file that does not read changes nothing.
#[tokio::test]
async fn plugin_grants_in_the_config_apply_without_a_restart() {
    let remote = tempfile::tempdir().unwrap();
    std::fs::write(remote.path().join("status.json"), "up").unwrap();
    let server = FileServer::start(remote.path()).await;
    let origin = format!("http://127.0.0.1:{}", server.addr.port());
    let annotation = format!("\"test/url\": \"{}\"", server.url("status.json"));
    // SAFETY: every test that sets this variable sets the same value.
    unsafe { std::env::set_var("GREENROOM_SECRET_TOKEN", "harness-token") };
    let files = vec![(
        "everything.wasm".to_string(),
        std::fs::read(wasm("everything")).unwrap(),
    )];
    let p = portal_with(&files, &[("remote", annotation.as_str())], "", "").await;
    let error = fresh_error(&p, "remote", "everything").await;
    assert!(
        error.contains("is not granted to plugin everything"),
        "{error}"
    );

    let file = p.dir.path().join("greenroom.toml");
    let before = std::fs::read_to_string(&file).unwrap();
    let granted = format!(
        "{before}\n[[plugins.grants]]\nid = \"everything\"\nhosts = [\"{origin}\"]\nsecrets = [\"TOKEN\"]\n"
    );
    std::fs::write(&file, &granted).unwrap();
    let upstream = |cards: &Value| {
        cards["cards"][0]["nodes"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|n| n["type"] == "field")
            .map(|n| n["value"].as_str().unwrap_or_default().to_string())
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let fresh = || async {
        p.http
            .get(format!("{}/api/cards/component/default/remote", p.base))
            .header("cache-control", "no-cache")
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap()
    };
    loop {
        let cards = fresh().await;
        if let Some(value) = upstream(&cards) {
            assert_eq!(value, "200 up", "{cards}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the grant never applied: {cards}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }

    // A config that does not read is logged and ignored.
    std::fs::write(&file, format!("{granted}\n[[[ not toml")).unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(800)).await;
    assert_eq!(upstream(&fresh().await).as_deref(), Some("200 up"));
}

/// Builds the plugin crate in `dir` for wasm32-wasip2, offline, in the
/// plugins workspace's target folder (the SDK's dependencies are compiled
/// there already), and answers the built `file`. Blocking; fails the test
/// with cargo's output if the build fails.
pub(crate) fn build_plugin_crate(dir: &std::path::Path, file: &str) -> PathBuf {
    let target = std::path::Path::new(env!("GREENROOM_TEST_PLUGINS"))
        .ancestors()
        .nth(2)
        .unwrap()
        .to_path_buf();
    let built =
        std::process::Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args([
                "build",
                "--release",
                "--offline",
                "--target",
                "wasm32-wasip2",
            ])
            .current_dir(dir)
            .env("CARGO_TARGET_DIR", &target)
            .env_remove("RUSTFLAGS")
            .env_remove("CARGO_ENCODED_RUSTFLAGS")
            .env_remove("CARGO_BUILD_TARGET")
            .output()
            .unwrap();
    assert!(
        built.status.success(),
        "{}",
        String::from_utf8_lossy(&built.stderr)
    );
    target.join("wasm32-wasip2/release").join(file)
}

/// A plugin in Python (componentize-py).
#[tokio::test]
async fn a_python_plugin_serves() {
    example_plugin_serves(
        "python-hello",
        env!("GREENROOM_TEST_PYTHON_PLUGIN"),
        "Hello from Python, checkout!",
    )
    .await;
}

/// A granted *name* that resolves to the cloud metadata address is refused
/// after resolution. The name is pinned with `[plugins.resolve]` (the same
/// code path as DNS), since the test machine's DNS cannot be changed.
#[tokio::test]
async fn a_granted_name_resolving_to_the_metadata_address_is_refused() {
    // SAFETY: every test that sets this variable sets the same value.
    unsafe { std::env::set_var("GREENROOM_SECRET_TOKEN", "harness-token") };
    let files: Vec<(String, Vec<u8>)> = vec![(
        "everything.wasm".into(),
        std::fs::read(wasm("everything")).unwrap(),
    )];
    let extra = "[plugins.resolve]\n\"metadata.test\" = \"169.254.169.254\"\n[[plugins.grants]]\nid = \"everything\"\nhosts = [\"http://metadata.test\"]\nsecrets = [\"TOKEN\"]\n";
    let annotation = "\"test/url\": \"http://metadata.test/latest/meta-data/\"";
    let p = portal_with(&files, &[("meta", annotation)], "", extra).await;
    let c = cards(&p, "meta").await;
    let error = c[0]["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("Refused") && error.contains("metadata.test resolves to 169.254.169.254"),
        "{c:?}"
    );
}

/// A call in flight when its plugin's file is replaced finishes on the
/// version it started with; the next call gets the new one.
#[tokio::test]
async fn a_call_in_flight_finishes_on_the_old_version_when_the_file_is_replaced() {
    let files: Vec<(String, Vec<u8>)> =
        vec![("swap.wasm".into(), std::fs::read(wasm("hostile")).unwrap())];
    let p = portal_with(&files, &[("loop", "")], "", "").await;
    let (base, http) = (p.base.clone(), p.http.clone());
    let in_flight = tokio::spawn(async move {
        let resp = http
            .get(format!("{base}/api/cards/component/default/loop"))
            .send()
            .await
            .unwrap();
        resp.json::<Value>().await.unwrap()
    });
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    std::fs::copy(wasm("hello"), p.dir.path().join("plugins/swap.wasm")).unwrap();
    until_plugins(&p, "hello replaced hostile", |l| {
        l.len() == 1 && l[0]["id"] == "hello"
    })
    .await;
    let old = in_flight.await.unwrap();
    let card = &old["cards"][0];
    assert_eq!(
        card["plugin"], "hostile",
        "the call in flight stayed on the old version: {old}"
    );
    assert!(
        card["error"]
            .as_str()
            .unwrap()
            .contains("did not answer within 1s"),
        "{old}"
    );
    assert_eq!(cards(&p, "loop").await[0]["plugin"], "hello");
}

/// A plugin whose manifest names the entities it is for (`applies_to`) is
/// not run for others: no sandbox is made, no call counted, nothing shown.
#[tokio::test]
async fn a_plugin_is_run_only_for_the_entities_its_manifest_names() {
    let p = portal(
        &["coverage"],
        &[
            ("plain", ""),
            (
                "covered",
                "greenroom.dev/coverage-report: coverage/lcov.info",
            ),
        ],
        "",
    )
    .await;
    let calls = |list: Value| list["items"][0]["health"]["calls"].as_u64().unwrap();
    assert!(cards(&p, "plain").await.is_empty());
    assert_eq!(calls(p.ok("/api/plugins").await), 0);
    // The entity it is for runs it (the report is missing: an error card
    // that names the annotation).
    let shown = cards(&p, "covered").await;
    assert_eq!(calls(p.ok("/api/plugins").await), 1);
    assert!(
        shown[0]["error"]
            .as_str()
            .is_some_and(|e| e.contains("greenroom.dev/coverage-report")),
        "{shown:?}"
    );
}
