//! Global search on the real server: relevance on the demo organisation
//! (a fixed set of queries with the hit people expect first), prefixes,
//! typos, filters and facets, snippets, docs pages from TechDocs, hits
//! carrying owner, facts and recent events, changes searchable at once,
//! hostile queries, and an index that rebuilds itself.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::{Portal, component, group};

async fn search(p: &Portal, query: &str) -> Value {
    let url = format!("/api/search?{}", query);
    p.ok(&url).await
}

fn q(text: &str) -> String {
    form_urlencoded::Serializer::new(String::new())
        .append_pair("q", text)
        .finish()
}

/// Waits until a search finds at least `n` hits (the index builds in the
/// background after start).
async fn until_found(p: &Portal, query: &str, n: u64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let found = search(p, query).await;
        if found["total"].as_u64().unwrap_or(0) >= n {
            return found;
        }
        assert!(
            Instant::now() < deadline,
            "never found {n} for {query}: {found}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn demo() -> Portal {
    let dir = tempfile::tempdir().unwrap();
    let mut config = crate::demo::demo_config(dir.path(), &["techdocs"]);
    config.plugins.facts_interval = Duration::ZERO;
    config.plugins.events_interval = Duration::ZERO;
    Portal::start_with(dir, config).await
}

/// What people type, and what they expect first.
#[tokio::test]
async fn relevance_on_the_demo_organisation() {
    let p = demo().await;
    until_found(&p, &q("runbook"), 1).await;
    for (query, first) in [
        ("payment-gateway", "component:default/payment-gateway"),
        ("payment gateway", "component:default/payment-gateway"),
        ("paymnt gateway", "component:default/payment-gateway"),
        ("payment-gatew", "component:default/payment-gateway"),
        ("inventory-serv", "component:default/inventory-service"),
        ("inventory", "system:default/inventory"),
        ("orders-api", "api:default/orders-api"),
        ("team-payments", "group:default/team-payments"),
        ("fraud scorer", "mlmodel:default/fraud-scorer"),
        ("priya", "user:default/priya.nair"),
        ("lon-dc2", "datacenter:default/lon-dc2"),
        ("legacy shop", "component:default/legacy-shop"),
    ] {
        let found = search(&p, &q(query)).await;
        let top = found["items"][0]["entityRef"].as_str().unwrap_or_default();
        assert_eq!(top, first, "'{query}' found first: {}", found["items"]);
    }
    // As you type: everything that starts so comes first.
    let typed = search(&p, &q("invent")).await;
    let names: Vec<&str> = typed["items"].as_array().unwrap()[..5]
        .iter()
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    assert!(names.iter().all(|n| n.contains("inventory")), "{names:?}");
    // Docs pages are searchable, and lead to their page.
    let runbook = search(&p, &format!("{}&kind=document", q("runbook"))).await;
    let item = &runbook["items"][0];
    assert_eq!(item["type"], "document");
    assert!(
        item["location"]
            .as_str()
            .unwrap()
            .starts_with("/docs/default/component/"),
        "{item}"
    );
    // `doc=entity` leaves the docs pages out.
    let entities = search(&p, &format!("{}&doc=entity", q("runbook"))).await;
    let items = entities["items"].as_array().unwrap();
    assert!(items.iter().all(|i| i["type"] == "entity"), "{entities}");
    assert!(
        (entities["total"].as_u64().unwrap())
            < (search(&p, &q("runbook")).await["total"].as_u64().unwrap()),
        "{entities}"
    );
}

#[tokio::test]
async fn filters_facets_snippets_and_paging() {
    let p = demo().await;
    until_found(&p, &q("payments"), 3).await;
    let all = search(&p, &q("payments")).await;
    let kinds: Vec<&str> = all["facets"]["kind"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k[0].as_str().unwrap())
        .collect();
    assert!(
        kinds.contains(&"component") && kinds.contains(&"api"),
        "{kinds:?}"
    );
    let apis = search(&p, &format!("{}&kind=api", q("payments"))).await;
    assert!(
        apis["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["kind"] == "api"),
        "{apis}"
    );
    let owned = search(&p, &format!("{}&owner=team-payments", q("payments"))).await;
    assert!(
        owned["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["owner"] == "group:default/team-payments"),
        "{owned}"
    );
    // Paging with the cursor covers every hit once.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page_q = match &cursor {
            Some(c) => format!("{}&limit=2&cursor={c}", q("payments")),
            None => format!("{}&limit=2", q("payments")),
        };
        let page = search(&p, &page_q).await;
        for i in page["items"].as_array().unwrap() {
            seen.push(i["location"].as_str().unwrap().to_string());
        }
        match page["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(seen.len() as u64, all["total"].as_u64().unwrap());
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), seen.len());
    // Snippets highlight what matched, and escape the rest.
    let hit = search(&p, &q("acquirers")).await["items"][0].clone();
    assert!(
        hit["snippet"]
            .as_str()
            .unwrap()
            .contains("<b>acquirers</b>"),
        "{hit}"
    );
    // Filters alone list everything of that kind.
    let teams = search(&p, "kind=group&limit=100").await;
    assert!(teams["total"].as_u64().unwrap() >= 11);
}

#[tokio::test]
async fn hits_answer_who_owns_it_what_was_deployed_and_how_it_is_doing() {
    // SAFETY: every test sets the same value.
    unsafe { std::env::set_var("GREENROOM_TEST_TOKEN_SEARCH", "search-token") };
    let config = "[[server.tokens]]\nname = \"ci\"\nenv = \"GREENROOM_TEST_TOKEN_SEARCH\"\nscopes = [\"facts:write\", \"events:write\"]\n[[catalog.locations]]\ntarget = \"catalog.yaml\"\n";
    let catalog = [
        group("team-a"),
        component("payments", "team-a"),
        component("ledger", "team-a"),
    ]
    .join("---\n");
    let p = Portal::start(config, &[("catalog.yaml", &catalog)]).await;
    let post = |path: &str, body: Value| {
        p.http
            .post(format!("{}{path}", p.base))
            .bearer_auth("search-token")
            .json(&body)
            .send()
    };
    assert!(post("/api/facts", json!({"entityRef": "payments", "facts": {"sentry.events_24h": 1520, "ci.last_status": "failure"}})).await.unwrap().status().is_success());
    assert!(post("/api/events", json!({"kind": "deployment", "entityRef": "payments", "title": "payments 2.3.1 to production", "actor": "jane"})).await.unwrap().status().is_success());
    let found = until_found(&p, &q("payments"), 1).await;
    let hit = &found["items"][0];
    assert_eq!(hit["entityRef"], "component:default/payments");
    assert_eq!(hit["owner"], "group:default/team-a");
    assert_eq!(hit["location"], "/catalog/default/component/payments");
    assert_eq!(
        hit["facts"],
        json!([{"name": "ci.last_status", "value": "failure", "url": null}, {"name": "sentry.events_24h", "value": 1520.0, "url": null}])
    );
    assert_eq!(
        hit["recentEvents"][0]["title"],
        "payments 2.3.1 to production"
    );

    // A catalog change is searchable moments later; a removal too.
    p.write(
        "catalog.yaml",
        &format!("{catalog}---\n{}", component("refunds", "team-a")),
    );
    p.refresh().await;
    let started = Instant::now();
    until_found(&p, &q("refunds"), 1).await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    p.write("catalog.yaml", &catalog);
    p.refresh().await;
    let deadline = Instant::now() + Duration::from_secs(5);
    while search(&p, &q("refunds")).await["total"] != 0 {
        assert!(
            Instant::now() < deadline,
            "a removed entity stays searchable"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn hostile_queries_are_answered_never_a_500() {
    let p = Portal::start(
        "[[catalog.locations]]\ntarget = \"catalog.yaml\"\n",
        &[(
            "catalog.yaml",
            &[group("team-a"), component("payments", "team-a")].join("---\n"),
        )],
    )
    .await;
    until_found(&p, &q("payments"), 1).await;
    // Long, but within the 8 KiB an address may have.
    let long = "payments ".repeat(600);
    for query in [
        long.as_str(),
        "title:(payments AND \"",
        "*?~^!:[]{}()\\/",
        "",
        "🚀 ünïcödé payments",
        "a",
    ] {
        let (status, body) = p.get(&format!("/api/search?{}", q(query))).await;
        assert_eq!(status, 200, "{query}: {body}");
    }
    assert_eq!(
        search(&p, &q(&long)).await["items"][0]["entityRef"],
        "component:default/payments"
    );
    assert_eq!(search(&p, &q("🚀 ünïcödé payments")).await["total"], 0);
    // Past it: refused with 414 and a reason, not a 500.
    let (status, body) = p
        .get(&format!("/api/search?{}", q(&"payments ".repeat(1200))))
        .await;
    assert_eq!(status, 414, "{body}");
    let (status, body) = p.get("/api/search?q=x&cursor=not-a-cursor").await;
    assert_eq!(status, 400, "{body}");
    let (status, _) = p.get("/api/search?q=x&limit=100000").await;
    assert_eq!(status, 200, "limits are clamped");
}

#[tokio::test]
async fn a_corrupt_or_outdated_index_is_rebuilt() {
    use greenroom::search::{SearchDoc, SearchIndex};
    let dir = tempfile::tempdir().unwrap();
    let index_dir = dir.path().join("data/search");
    // An index from an earlier run opens as it is.
    {
        let (index, fresh) = SearchIndex::open(&index_dir).unwrap();
        assert!(fresh, "a missing index is made new");
        let doc = SearchDoc {
            id: "entity:component:default/old".into(),
            doc_type: "entity".into(),
            entity_ref: "component:default/old".into(),
            name: "old".into(),
            ..Default::default()
        };
        index.add(&doc).unwrap();
        index.commit().unwrap();
    }
    {
        let (index, fresh) = SearchIndex::open(&index_dir).unwrap();
        assert!(!fresh);
        assert_eq!(index.documents(), 1);
    }
    // Corrupted, it is made new, and the portal rebuilds it from the store.
    for entry in std::fs::read_dir(&index_dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() && path.file_name().unwrap() != "greenroom-search.json" {
            std::fs::write(&path, b"garbage").unwrap();
        }
    }
    crate::support::write_files(
        dir.path(),
        &[(
            "catalog.yaml",
            &[group("team-a"), component("payments", "team-a")].join("---\n"),
        )],
    );
    let p = Portal::start_in(dir, "[[catalog.locations]]\ntarget = \"catalog.yaml\"\n").await;
    let found = until_found(&p, &q("payments"), 1).await;
    assert_eq!(found["items"][0]["entityRef"], "component:default/payments");
    assert_eq!(search(&p, &q("old")).await["total"], 0);

    // An index of another schema version is made new too.
    let other = tempfile::tempdir().unwrap();
    let other_dir = other.path().join("search");
    drop(SearchIndex::open(&other_dir).unwrap());
    std::fs::write(
        other_dir.join("greenroom-search.json"),
        "{\"schemaVersion\": 0}",
    )
    .unwrap();
    let (_, fresh) = SearchIndex::open(&other_dir).unwrap();
    assert!(fresh);
}
