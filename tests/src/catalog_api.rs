//! The Backstage-compatible catalog API over HTTP on a real server.

use serde_json::{Value, json};

use crate::support::{FileServer, Portal, component, group, relations};

/// 30 components over two teams, alternating types, with tags.
fn catalog() -> String {
    let mut docs = vec![group("team-a"), group("team-b")];
    for i in 0..30 {
        let (team, ty) = (
            if i % 3 == 0 { "team-a" } else { "team-b" },
            if i % 2 == 0 { "service" } else { "website" },
        );
        docs.push(format!(
            "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: comp-{i:02}\n  title: Component {i:02}\n  tags: [t{}]\nspec:\n  type: {ty}\n  lifecycle: production\n  owner: {team}\n",
            i % 4
        ));
    }
    docs.join("---\n")
}

async fn portal() -> Portal {
    Portal::start(
        "[[catalog.locations]]\ntarget = \"catalog.yaml\"\n",
        &[("catalog.yaml", &catalog())],
    )
    .await
}

fn names(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|e| e["metadata"]["name"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn by_name_uid_and_refs() {
    let p = portal().await;
    let e = p
        .ok("/api/catalog/entities/by-name/Component/DEFAULT/Comp-03")
        .await;
    assert_eq!(e["metadata"]["name"], "comp-03");
    let uid = e["metadata"]["uid"].as_str().unwrap();
    assert!(!e["metadata"]["etag"].as_str().unwrap().is_empty());
    assert_eq!(
        p.ok(&format!("/api/catalog/entities/by-uid/{uid}")).await["metadata"]["uid"],
        uid
    );
    assert_eq!(relations(&e), vec!["ownedBy group:default/team-a"]);

    let (status, err) = p
        .get("/api/catalog/entities/by-name/component/default/nope")
        .await;
    assert_eq!(status, 404);
    assert_eq!(err["error"]["name"], "NotFoundError");
    assert!(err["error"]["message"].as_str().unwrap().contains("nope"));
    assert_eq!(err["response"]["statusCode"], 404);

    let (status, body) = p
        .post(
            "/api/catalog/entities/by-refs",
            &json!({"entityRefs": ["component:default/comp-01", "component:default/missing", "group:team-a"], "fields": ["metadata.name", "kind"]}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        body["items"],
        json!([{"kind": "Component", "metadata": {"name": "comp-01"}}, null, {"kind": "Group", "metadata": {"name": "team-a"}}])
    );
}

#[tokio::test]
async fn list_filters_orders_pages_and_projects() {
    let p = portal().await;
    // AND across keys, OR across values of one key and across filter sets.
    let a_services = p.ok("/api/catalog/entities?filter=kind=component,spec.owner=team-a,spec.type=service&fields=metadata.name").await;
    assert_eq!(
        names(&a_services),
        vec!["comp-00", "comp-06", "comp-12", "comp-18", "comp-24"]
    );
    let either = p
        .ok("/api/catalog/entities?filter=metadata.tags=t1,metadata.tags=t2&fields=metadata.name")
        .await;
    assert_eq!(either.as_array().unwrap().len(), 15);
    let sets = p.ok("/api/catalog/entities?filter=kind=group&filter=metadata.name=comp-29&fields=metadata.name").await;
    assert_eq!(names(&sets), vec!["team-a", "team-b", "comp-29"]);
    // Key existence; relation filters.
    let tagged = p
        .ok("/api/catalog/entities?filter=metadata.tags&fields=kind")
        .await;
    assert_eq!(tagged.as_array().unwrap().len(), 30);
    let owned = p.ok("/api/catalog/entities?filter=relations.ownedBy=group:default/team-a&fields=metadata.name").await;
    assert_eq!(owned.as_array().unwrap().len(), 10);
    // Order, limit, offset; projection keeps only the fields asked for.
    let page = p
        .ok("/api/catalog/entities?filter=kind=component&order=desc:metadata.name&limit=3&offset=2&fields=metadata.name,spec.type")
        .await;
    assert_eq!(
        page,
        json!([
            {"metadata": {"name": "comp-27"}, "spec": {"type": "website"}},
            {"metadata": {"name": "comp-26"}, "spec": {"type": "service"}},
            {"metadata": {"name": "comp-25"}, "spec": {"type": "website"}},
        ])
    );
    let by_type = p.ok("/api/catalog/entities?filter=kind=component&order=asc:spec.type&order=desc:metadata.name&limit=2&fields=metadata.name").await;
    assert_eq!(names(&by_type), vec!["comp-28", "comp-26"]);
    // Without a limit the whole selection is streamed.
    let all = p.ok("/api/catalog/entities").await;
    assert_eq!(all.as_array().unwrap().len(), 32);
    // Bad parameters are 400s in the error format.
    for bad in [
        "/api/catalog/entities?filter=,",
        "/api/catalog/entities?order=sideways:x",
        "/api/catalog/entities?limit=-1",
    ] {
        let (status, body) = p.get(bad).await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert_eq!(body["error"]["name"], "InputError");
    }
}

#[tokio::test]
async fn by_query_cursors_walk_forward_and_back() {
    let p = portal().await;
    let first = p.ok("/api/catalog/entities/by-query?filter=kind=component&limit=7&orderField=metadata.name,asc&fields=metadata.name").await;
    assert_eq!(first["totalItems"], 30);
    assert!(first["pageInfo"].get("prevCursor").is_none());
    let mut seen = names(&first["items"]);
    let mut page = first;
    let mut pages = vec![page.clone()];
    while let Some(next) = page["pageInfo"]["nextCursor"].as_str() {
        page = p
            .ok(&format!("/api/catalog/entities/by-query?cursor={next}"))
            .await;
        assert_eq!(page["totalItems"], 30);
        seen.extend(names(&page["items"]));
        pages.push(page.clone());
    }
    let expected: Vec<String> = (0..30).map(|i| format!("comp-{i:02}")).collect();
    assert_eq!(seen, expected);
    assert_eq!(pages.len(), 5);
    // Back from the last page gives the page before it.
    let prev = pages[4]["pageInfo"]["prevCursor"].as_str().unwrap();
    let back = p
        .ok(&format!("/api/catalog/entities/by-query?cursor={prev}"))
        .await;
    assert_eq!(names(&back["items"]), names(&pages[3]["items"]));

    let desc = p.ok("/api/catalog/entities/by-query?filter=kind=component&limit=2&orderField=metadata.name,desc&fields=metadata.name").await;
    assert_eq!(names(&desc["items"]), vec!["comp-29", "comp-28"]);
    let text = p
        .ok("/api/catalog/entities/by-query?fullTextFilterTerm=ent%2012&fields=metadata.name")
        .await;
    assert_eq!(names(&text["items"]), vec!["comp-12"]);
    let text = p.ok("/api/catalog/entities/by-query?fullTextFilterTerm=T3&fullTextFilterFields=metadata.tags&limit=50&fields=metadata.name").await;
    assert_eq!(text["totalItems"], 7);
    let (status, body) = p
        .get("/api/catalog/entities/by-query?cursor=garbage!")
        .await;
    assert_eq!(
        (status, body["error"]["name"].as_str()),
        (400, Some("InputError"))
    );
    // Cursors are signed: one changed by a single character is refused,
    // and the message says to start again.
    let cursor = pages[1]["pageInfo"]["nextCursor"].as_str().unwrap();
    let mut forged: Vec<u8> = cursor.as_bytes().to_vec();
    forged[4] = if forged[4] == b'A' { b'B' } else { b'A' };
    let forged = String::from_utf8(forged).unwrap();
    let (status, body) = p
        .get(&format!("/api/catalog/entities/by-query?cursor={forged}"))
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("was changed or made by another portal"),
        "{body}"
    );
}

#[tokio::test]
async fn facets_count_values_with_filters() {
    let p = portal().await;
    let f = p.ok("/api/catalog/entity-facets?facet=kind&facet=spec.type&facet=relations.ownedBy&filter=kind=component").await;
    assert_eq!(
        f["facets"]["kind"],
        json!([{"value": "Component", "count": 30}])
    );
    assert_eq!(
        f["facets"]["spec.type"],
        json!([{"value": "service", "count": 15}, {"value": "website", "count": 15}])
    );
    assert_eq!(
        f["facets"]["relations.ownedBy"],
        json!([{"value": "group:default/team-b", "count": 20}, {"value": "group:default/team-a", "count": 10}])
    );
    let (status, _) = p.get("/api/catalog/entity-facets").await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn locations_can_be_added_previewed_and_removed() {
    let remote = tempfile::tempdir().unwrap();
    std::fs::write(
        remote.path().join("team-c.yaml"),
        format!(
            "{}---\n{}",
            group("team-c"),
            component("remote-svc", "team-c")
        ),
    )
    .unwrap();
    std::fs::write(
        remote.path().join("team-d.yaml"),
        format!(
            "{}---\n{}---\n{}",
            group("team-d"),
            component("remote-d", "team-d"),
            component("remote-svc", "team-d")
        ),
    )
    .unwrap();
    let files = FileServer::start(remote.path()).await;
    let p = Portal::start(
        &format!(
            "[[catalog.locations]]\ntarget = \"catalog.yaml\"\n{}",
            files.allowed()
        ),
        &[("catalog.yaml", &catalog())],
    )
    .await;
    let url = files.url("team-c.yaml");

    // Locations are for administrators: anyone else is refused, and the
    // refusal is recorded.
    let (status, body) = p
        .post(
            "/api/catalog/locations",
            &json!({"type": "url", "target": url}),
        )
        .await;
    assert_eq!(status, 401, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("changing locations needs an administrator"),
        "{body}"
    );
    let (status, preview) = p
        .admin_post(
            "/api/catalog/locations?dryRun=true",
            &json!({"type": "url", "target": url}),
        )
        .await;
    assert_eq!(status, 201, "{preview}");
    assert_eq!(preview["entities"].as_array().unwrap().len(), 2);
    assert_eq!(preview["exists"], false);
    assert!(
        p.entity("component", "remote-svc").await.is_none(),
        "a dry run stores nothing"
    );

    let (status, added) = p
        .admin_post(
            "/api/catalog/locations",
            &json!({"type": "url", "target": url}),
        )
        .await;
    assert_eq!(status, 201, "{added}");
    // Read in the background, as Backstage does: the answer does not wait.
    assert_eq!(added["refresh"], "queued", "{added}");
    assert_eq!(added["entities"], json!([]));
    let id = added["location"]["id"].as_str().unwrap().to_string();
    let e = p.until_entity("component", "remote-svc").await;
    assert_eq!(
        e["metadata"]["annotations"]["backstage.io/managed-by-location"],
        format!("url:{url}")
    );
    let (status, _) = p
        .admin_post(
            "/api/catalog/locations",
            &json!({"type": "url", "target": url}),
        )
        .await;
    assert_eq!(status, 409);

    // `wait=true` answers once the location is read, with what it held:
    // here one entity the first location already claims.
    let (status, waited) = p
        .admin_post(
            "/api/catalog/locations?wait=true",
            &json!({"type": "url", "target": files.url("team-d.yaml")}),
        )
        .await;
    assert_eq!(status, 201, "{waited}");
    assert_eq!(waited["summary"]["added"], 2, "{waited}");
    assert_eq!(waited["summary"]["problems"], 1, "{waited}");
    assert!(p.entity("component", "remote-d").await.is_some());

    let locations = p.ok("/api/catalog/locations").await;
    assert_eq!(locations.as_array().unwrap().len(), 3);
    assert!(
        locations
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["data"]["target"] == url.as_str())
    );
    let loc = p.ok(&format!("/api/catalog/locations/{id}")).await;
    assert_eq!(loc["entityCount"], 2);
    let by_entity = p
        .ok("/api/catalog/locations/by-entity/component/default/remote-svc")
        .await;
    assert_eq!(by_entity["id"], id.as_str());

    // File locations through the API are off unless configured.
    let (status, body) = p
        .admin_post(
            "/api/catalog/locations",
            &json!({"type": "file", "target": "/etc/passwd"}),
        )
        .await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("allow_file_locations_from_api")
    );

    let resp = p
        .http
        .delete(format!("{}/api/catalog/locations/{id}", p.base))
        .bearer_auth(Portal::ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 204);
    assert!(p.entity("component", "remote-svc").await.is_none());
    let resp = p
        .http
        .delete(format!("{}/api/catalog/locations/{id}", p.base))
        .bearer_auth(Portal::ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 404);
}

#[tokio::test]
async fn validate_entity_and_refresh() {
    let p = portal().await;
    let (status, body) = p
        .post("/api/catalog/validate-entity", &json!({"location": "url:x", "entity": serde_yaml_like_component("ok-svc", Some("team-a"))}))
        .await;
    assert_eq!((status, body), (200, json!({"errors": []})));
    let (status, body) = p
        .post(
            "/api/catalog/validate-entity",
            &json!({"location": "url:x", "entity": serde_yaml_like_component("bad svc", None)}),
        )
        .await;
    assert_eq!(status, 400);
    let fields: Vec<&str> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert!(
        fields.contains(&"metadata.name") && fields.contains(&"spec.owner"),
        "{body}"
    );

    // Malformed JSON bodies get our error format, not axum's text.
    let resp = p
        .http
        .post(format!("{}/api/catalog/validate-entity", p.base))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["name"], "InputError");

    // Refresh picks up an edited file immediately.
    p.write(
        "catalog.yaml",
        &catalog().replace("title: Component 05", "title: Renamed Five"),
    );
    let (status, _) = p
        .post(
            "/api/catalog/refresh",
            &json!({"entityRef": "component:default/comp-05"}),
        )
        .await;
    assert_eq!(status, 401, "a refresh needs someone known");
    let (status, _) = p
        .admin_post(
            "/api/catalog/refresh",
            &json!({"entityRef": "component:default/comp-05"}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        p.entity("component", "comp-05").await.unwrap()["metadata"]["title"],
        "Renamed Five"
    );
    let (status, _) = p
        .admin_post(
            "/api/catalog/refresh",
            &json!({"entityRef": "component:default/ghost"}),
        )
        .await;
    assert_eq!(status, 404);

    let health = p.ok("/healthz").await;
    assert_eq!(health["status"], "ok");
    assert_eq!(health["catalog"]["entities"], 32);
    let (status, body) = p.get("/api/nothing-here").await;
    assert_eq!(
        (status, body["error"]["name"].as_str()),
        (404, Some("NotFoundError"))
    );
}

fn serde_yaml_like_component(name: &str, owner: Option<&str>) -> Value {
    let mut spec = json!({"type": "service", "lifecycle": "production"});
    if let Some(o) = owner {
        spec["owner"] = json!(o);
    }
    json!({"apiVersion": "backstage.io/v1alpha1", "kind": "Component", "metadata": {"name": name}, "spec": spec})
}

#[tokio::test]
async fn etag_changes_only_when_the_entity_does() {
    let p = portal().await;
    let before = p.entity("component", "comp-07").await.unwrap();
    p.refresh().await;
    let same = p.entity("component", "comp-07").await.unwrap();
    assert_eq!(before["metadata"]["etag"], same["metadata"]["etag"]);
    assert_eq!(before["metadata"]["uid"], same["metadata"]["uid"]);
    p.write(
        "catalog.yaml",
        &catalog().replace("title: Component 07", "title: Seven"),
    );
    p.refresh().await;
    let after = p.entity("component", "comp-07").await.unwrap();
    assert_ne!(before["metadata"]["etag"], after["metadata"]["etag"]);
    assert_eq!(
        before["metadata"]["uid"], after["metadata"]["uid"],
        "uid is stable across changes"
    );
}

#[tokio::test]
async fn locations_refresh_on_their_interval() {
    let p = Portal::start(
        "[catalog]\nrefresh_interval = \"100ms\"\n[[catalog.locations]]\ntarget = \"catalog.yaml\"\n",
        &[("catalog.yaml", &group("team-a"))],
    )
    .await;
    p.write(
        "catalog.yaml",
        &format!("{}---\n{}", group("team-a"), component("late", "team-a")),
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while p.entity("component", "late").await.is_none() {
        assert!(
            std::time::Instant::now() < deadline,
            "the refresh loop never picked the change up"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let (status, page) = p.get("/").await;
    assert_eq!(status, 200, "{page}");
}

#[tokio::test]
async fn a_location_taken_out_of_the_config_goes_with_its_entities() {
    let files = [
        ("a.yaml", group("team-a")),
        ("b.yaml", component("beta", "team-a")),
    ];
    let files: Vec<(&str, &str)> = files.iter().map(|(n, t)| (*n, t.as_str())).collect();
    let p = Portal::start(
        "[[catalog.locations]]\ntarget = \"a.yaml\"\n[[catalog.locations]]\ntarget = \"b.yaml\"\n",
        &files,
    )
    .await;
    assert!(p.entity("component", "beta").await.is_some());
    let dir = tempfile::tempdir().unwrap();
    let kept = p.dir.path().to_path_buf();
    let config = kept.join("greenroom.toml");
    std::fs::write(
        &config,
        "[server]\ndata_dir = \"data\"\n[[catalog.locations]]\ntarget = \"a.yaml\"\n",
    )
    .unwrap();
    let restarted =
        Portal::start_with(dir, greenroom::config::Config::load(&config).unwrap()).await;
    assert!(restarted.entity("component", "beta").await.is_none());
    assert!(restarted.entity("group", "team-a").await.is_some());
    assert_eq!(
        restarted
            .ok("/api/catalog/locations")
            .await
            .as_array()
            .unwrap()
            .len(),
        1
    );
    drop(p);
}
