//! Scorecards on the real server: levels from checks in the predicate
//! language, each entity's level and failing checks with the reason,
//! roll-ups per team and domain, an entity's scorecards, CSV, the history
//! the host records per level, a dry run, and bad definitions.

use serde_json::{Value, json};

use crate::support::Portal;

const TOKEN: &str = "scorecard-test-token";

const READINESS: &str = "apiVersion: greenroom.dev/v1alpha1
kind: Scorecard
metadata:
  name: production-readiness
  title: Production readiness
spec:
  owner: team-sre
  targets: kind=component,spec.type=service
  levels: [bronze, silver, gold]
  checks:
    - name: owner
      level: bronze
      when: spec owner exists
    - name: docs
      title: Docs next to the code
      level: bronze
      when: annotation backstage.io/techdocs-ref exists
    - name: coverage
      level: silver
      when: fact coverage.lines >= 70
    - name: ci
      level: silver
      when: fact ci.passing = true
    - name: on-call
      level: gold
      when: annotation pagerduty.com/service-id exists
";

const OVERLAPPING: &str = "apiVersion: greenroom.dev/v1alpha1
kind: Scorecard
metadata:
  name: overlapping
spec:
  owner: team-sre
  targets: kind=component
  levels: [bronze, gold, Gold]
  checks:
    - name: docs
      level: platinum
      when: annotation backstage.io/techdocs-ref exists
";

fn service(name: &str, owner: &str, system: Option<&str>, annotations: &str) -> String {
    let system = system
        .map(|s| format!("  system: {s}\n"))
        .unwrap_or_default();
    format!(
        "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: {name}\n  annotations: {{{annotations}}}\nspec:\n  type: service\n  lifecycle: production\n  owner: {owner}\n{system}"
    )
}

async fn portal() -> Portal {
    // SAFETY: every test sets the same value.
    unsafe { std::env::set_var("GREENROOM_TEST_TOKEN_SCORECARDS", TOKEN) };
    let config = "[[server.tokens]]\nname = \"ci\"\nenv = \"GREENROOM_TEST_TOKEN_SCORECARDS\"\nscopes = [\"facts:write\"]\n\
         [[catalog.locations]]\ntarget = \"catalog.yaml\"\n[campaigns]\nrecord_interval = \"1s\"\n";
    let docs = [
        "apiVersion: backstage.io/v1alpha1\nkind: Group\nmetadata:\n  name: team-a\nspec:\n  type: team\n  children: []\n".to_string(),
        "apiVersion: backstage.io/v1alpha1\nkind: Group\nmetadata:\n  name: team-b\nspec:\n  type: team\n  children: []\n".to_string(),
        "apiVersion: backstage.io/v1alpha1\nkind: Group\nmetadata:\n  name: team-sre\nspec:\n  type: team\n  children: []\n".to_string(),
        "apiVersion: backstage.io/v1alpha1\nkind: Domain\nmetadata:\n  name: payments\nspec:\n  owner: team-a\n".to_string(),
        "apiVersion: backstage.io/v1alpha1\nkind: System\nmetadata:\n  name: billing\nspec:\n  owner: team-a\n  domain: payments\n".to_string(),
        service(
            "svc-1",
            "team-a",
            Some("billing"),
            "\"backstage.io/techdocs-ref\": \"dir:.\", \"pagerduty.com/service-id\": \"P123\"",
        ),
        service("svc-2", "team-a", None, "\"backstage.io/techdocs-ref\": \"dir:.\""),
        service("svc-3", "team-b", None, ""),
        "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: site\nspec:\n  type: website\n  lifecycle: production\n  owner: team-b\n".to_string(),
        READINESS.to_string(),
        OVERLAPPING.to_string(),
    ];
    let p = Portal::start(config, &[("catalog.yaml", &docs.join("---\n"))]).await;
    let facts = json!({"items": [
        {"entityRef": "svc-1", "facts": {"coverage.lines": 81.5, "ci.passing": true}},
        {"entityRef": "svc-2", "facts": {"coverage.lines": 50, "ci.passing": true}},
        {"entityRef": "svc-3", "facts": {"coverage.lines": 90, "ci.passing": false}},
    ]});
    let resp = p
        .http
        .post(format!("{}/api/facts", p.base))
        .bearer_auth(TOKEN)
        .json(&facts)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    p
}

fn level_counts(rollup: &Value) -> Vec<(String, u64)> {
    let mut out = vec![("none".to_string(), rollup["none"].as_u64().unwrap())];
    for l in rollup["levels"].as_array().unwrap() {
        out.push((l[0].as_str().unwrap().to_string(), l[1].as_u64().unwrap()));
    }
    out
}

fn counts(pairs: &[(&str, u64)]) -> Vec<(String, u64)> {
    pairs.iter().map(|(l, n)| (l.to_string(), *n)).collect()
}

#[tokio::test]
async fn scorecards_give_levels_reasons_rollups_and_history() {
    let p = portal().await;
    // Bad definitions are catalog problems naming the field.
    let problems = p.problems().await;
    let messages: Vec<String> = problems
        .iter()
        .filter(|pr| pr["entityRef"] == "scorecard:default/overlapping")
        .map(|pr| {
            format!(
                "{}: {}",
                pr["field"].as_str().unwrap_or(""),
                pr["message"].as_str().unwrap()
            )
        })
        .collect();
    assert!(
        messages
            .iter()
            .any(|m| m.contains("spec.levels[2]: level 'Gold' is named twice")),
        "{messages:?}"
    );
    assert!(
        messages
            .iter()
            .any(|m| m.contains("spec.checks[0].level: \"platinum\" is not one of the levels")),
        "{messages:?}"
    );

    let list = p.ok("/api/scorecards").await;
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "the broken one is not a scorecard: {list}");
    assert_eq!(items[0]["name"], "production-readiness");
    assert_eq!(
        level_counts(&items[0]["rollup"]),
        counts(&[("none", 1), ("bronze", 1), ("silver", 0), ("gold", 1)])
    );

    let card = p.ok("/api/scorecards/production-readiness").await;
    assert_eq!(card["title"], "Production readiness");
    let entity = |name: &str| {
        card["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["entityRef"] == format!("component:default/{name}"))
            .cloned()
            .unwrap_or_else(|| panic!("{name} in {card}"))
    };
    assert_eq!(entity("svc-1")["level"], "gold");
    assert_eq!(entity("svc-1")["failing"], json!([]));
    assert_eq!(entity("svc-2")["level"], "bronze");
    assert_eq!(
        entity("svc-2")["failing"],
        json!([{"check": "coverage", "level": "silver", "reason": "fact coverage.lines is 50, needs >= 70"},
               {"check": "on-call", "level": "gold", "reason": "no annotation pagerduty.com/service-id"}])
    );
    assert_eq!(entity("svc-3")["level"], Value::Null);
    assert_eq!(
        entity("svc-3")["failing"][0],
        json!({"check": "docs", "level": "bronze", "reason": "no annotation backstage.io/techdocs-ref"})
    );
    assert!(
        !card["items"].to_string().contains("component:default/site"),
        "a website is not a target"
    );
    let checks: Vec<(String, u64, u64)> = card["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_string(),
                c["passing"].as_u64().unwrap(),
                c["failing"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        checks,
        [
            ("owner".to_string(), 3, 0),
            ("docs".to_string(), 2, 1),
            ("coverage".to_string(), 2, 1),
            ("ci".to_string(), 2, 1),
            ("on-call".to_string(), 1, 2),
        ]
    );
    // Roll-ups: per team, and per domain through the system.
    let team = |owner: &str| {
        card["teams"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["owner"] == owner)
            .map(|t| level_counts(&t["rollup"]))
            .unwrap()
    };
    assert_eq!(
        team("group:default/team-a"),
        counts(&[("none", 0), ("bronze", 1), ("silver", 0), ("gold", 1)])
    );
    assert_eq!(
        team("group:default/team-b"),
        counts(&[("none", 1), ("bronze", 0), ("silver", 0), ("gold", 0)])
    );
    let domains: Vec<(String, u64)> = card["domains"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["domain"].as_str().unwrap().to_string(),
                d["rollup"]["total"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        domains,
        [
            ("(no domain)".to_string(), 2),
            ("domain:default/payments".to_string(), 1)
        ]
    );
    // Each level's history ends with today's live count.
    let gold = &card["history"][2];
    assert_eq!(gold["level"], "gold");
    let today = gold["days"].as_array().unwrap().last().unwrap();
    assert_eq!(
        (today["done"].as_u64(), today["total"].as_u64()),
        (Some(1), Some(3))
    );

    // An entity's scorecards, every check with its outcome.
    let mine = p
        .ok("/api/entities/component/default/svc-2/scorecards")
        .await;
    assert_eq!(mine["items"].as_array().unwrap().len(), 1, "{mine}");
    let s = &mine["items"][0];
    assert_eq!(s["scorecard"], "production-readiness");
    assert_eq!(s["level"], "bronze");
    assert_eq!(s["levels"], json!(["bronze", "silver", "gold"]));
    assert_eq!(
        s["checks"][1],
        json!({"name": "docs", "title": "Docs next to the code", "level": "bronze", "passed": true, "reason": null})
    );
    assert_eq!(
        s["checks"][2]["reason"],
        "fact coverage.lines is 50, needs >= 70"
    );
    let site = p
        .ok("/api/entities/component/default/site/scorecards")
        .await;
    assert_eq!(site["items"], json!([]));
    let (s, _) = p
        .get("/api/entities/component/default/nope/scorecards")
        .await;
    assert_eq!(s, 200);

    // Levels of a page of entities at once (the catalog table, search).
    let (s, b) = p
        .post(
            "/api/scorecards/levels",
            &json!({"entityRefs": ["svc-1", "component:default/svc-3", "site"]}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(
        b["items"],
        json!([
            {"entityRef": "component:default/svc-1", "levels": [{"scorecard": "production-readiness", "title": "Production readiness", "level": "gold"}]},
            {"entityRef": "component:default/svc-3", "levels": [{"scorecard": "production-readiness", "title": "Production readiness", "level": null}]},
            {"entityRef": "component:default/site", "levels": []},
        ])
    );
    let (s, _) = p.post("/api/scorecards/levels", &json!({"refs": []})).await;
    assert_eq!(s, 400);

    // CSV of every target.
    let csv = p
        .fetch("/api/scorecards/production-readiness/entities.csv")
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(
        csv,
        "entity,owner,level,failing\n\
         component:default/svc-1,group:default/team-a,gold,\n\
         component:default/svc-2,group:default/team-a,bronze,\"coverage: fact coverage.lines is 50, needs >= 70; on-call: no annotation pagerduty.com/service-id\"\n\
         component:default/svc-3,group:default/team-b,none,\"docs: no annotation backstage.io/techdocs-ref; ci: fact ci.passing is false, needs == true; on-call: no annotation pagerduty.com/service-id\"\n"
    );
    let (s, _) = p.get("/api/scorecards/nope").await;
    assert_eq!(s, 404);

    // The host records each level as entities reach it or fall back.
    let store = p.state.store.clone();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let gold = store
            .statuses
            .latest_statuses("scorecard:production-readiness/gold")
            .unwrap();
        if gold.contains(&(
            "component:default/svc-1".into(),
            greenroom::store::Status::Done,
        )) {
            assert_eq!(gold.len(), 3, "{gold:?}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "gold never recorded: {gold:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }

    // The catalog's Level facet: counts per level (as recorded) under the
    // other facets, and the entities at one level, paged like by-query.
    let facet = |body: Value| {
        let c = body["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["scorecard"] == "production-readiness")
            .cloned()
            .unwrap();
        let mut out = vec![("none".to_string(), c["none"].as_u64().unwrap())];
        for l in c["levels"].as_array().unwrap() {
            out.push((
                l["level"].as_str().unwrap().to_string(),
                l["count"].as_u64().unwrap(),
            ));
        }
        out
    };
    assert_eq!(
        facet(p.ok("/api/scorecards/facet?filter=kind=component").await),
        counts(&[("none", 1), ("bronze", 1), ("silver", 0), ("gold", 1)])
    );
    assert_eq!(
        facet(
            p.ok("/api/scorecards/facet?filter=metadata.name=svc-2")
                .await
        ),
        counts(&[("none", 0), ("bronze", 1), ("silver", 0), ("gold", 0)])
    );
    let names = |page: &Value| -> Vec<String> {
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["metadata"]["name"].as_str().unwrap().to_string())
            .collect()
    };
    let gold = p
        .ok("/api/scorecards/production-readiness/entities?level=gold&fields=metadata.name,spec.owner")
        .await;
    assert_eq!(
        (names(&gold), gold["totalItems"].as_u64()),
        (vec!["svc-1".to_string()], Some(1))
    );
    assert_eq!(gold["items"][0]["spec"], json!({"owner": "team-a"}));
    assert_eq!(gold["pageInfo"]["nextCursor"], Value::Null);
    let none = p
        .ok("/api/scorecards/production-readiness/entities?level=none")
        .await;
    assert_eq!(names(&none), ["svc-3"]);
    let filtered = p
        .ok("/api/scorecards/production-readiness/entities?level=gold&filter=spec.owner=team-b")
        .await;
    assert_eq!(filtered["totalItems"], 0);
    let later = p
        .ok("/api/scorecards/production-readiness/entities?level=gold&cursor=1")
        .await;
    assert_eq!(
        (
            names(&later).len(),
            later["pageInfo"]["prevCursor"].as_str()
        ),
        (0, Some("0"))
    );
    let (s, b) = p
        .get("/api/scorecards/production-readiness/entities?level=platinum")
        .await;
    assert_eq!(s, 400);
    assert!(
        b["error"]["message"]
            .as_str()
            .unwrap()
            .contains("its levels are bronze, silver, gold"),
        "{b}"
    );
    let (s, _) = p.get("/api/scorecards/nope/entities?level=gold").await;
    assert_eq!(s, 404);
}

#[tokio::test]
async fn a_scorecard_dry_run_counts_before_anything_is_saved() {
    let p = portal().await;
    let body = json!({
        "targets": "kind=component",
        "levels": ["basic", "good"],
        "checks": [
            {"name": "docs", "level": "basic", "when": "annotation backstage.io/techdocs-ref exists"},
            {"name": "covered", "level": "good", "when": "fact coverage.lines >= 80"},
        ],
    });
    let (s, b) = p.post("/api/scorecards/dry-run", &body).await;
    assert_eq!(s, 200, "{b}");
    // site, svc-3: no docs; svc-2: docs, 50 %; svc-1: docs, 81.5 %.
    assert_eq!(
        level_counts(&b["rollup"]),
        counts(&[("none", 2), ("basic", 1), ("good", 1)])
    );
    assert_eq!(b["checks"][1]["passing"], 2, "{b}");
    assert_eq!(b["warnings"], json!([]));
    let typo = json!({"targets": "kind=component", "checks": [{"name": "x", "when": "fact coverage.line >= 70"}]});
    let (s, b) = p.post("/api/scorecards/dry-run", &typo).await;
    assert_eq!(s, 200, "{b}");
    let warning = b["warnings"][0].as_str().unwrap();
    assert!(
        warning.starts_with("fact coverage.line is unknown")
            && warning.contains("known facts: ci.passing, coverage.lines"),
        "{b}"
    );
    for (bad, says) in [
        (
            json!({"targets": "kind=component", "levels": ["a", "A"], "checks": [{"name": "x", "when": "spec owner exists"}]}),
            "levels[1]: level 'A' is named twice",
        ),
        (
            json!({"targets": "kind=component", "checks": [{"name": "x", "when": "spec owner >="}]}),
            "checks[0].when: invalid predicate 'spec owner >='",
        ),
        (
            json!({"targets": "kind=component", "checks": []}),
            "checks: needs a list of checks",
        ),
        (
            json!({"checks": [{"name": "x", "when": "spec owner exists"}]}),
            "targets: needs a catalog filter",
        ),
    ] {
        let (s, b) = p.post("/api/scorecards/dry-run", &bad).await;
        assert_eq!(s, 400, "{b}");
        assert!(
            b["error"]["message"].as_str().unwrap().contains(says),
            "expected '{says}': {b}"
        );
    }
}
