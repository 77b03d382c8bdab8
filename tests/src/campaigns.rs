//! Campaigns on the real server: defined in the catalog and through the
//! API, progress overall and per team, the teams to chase with their
//! contacts, the burndown from fact history and from the history the host
//! records of any predicate, movers, CSV, and bad definitions.

use serde_json::{Value, json};

use crate::support::Portal;

const TOKEN: &str = "campaign-test-token";

fn config() -> String {
    // SAFETY: every test sets the same value.
    unsafe { std::env::set_var("GREENROOM_TEST_TOKEN_CAMPAIGNS", TOKEN) };
    "[[server.tokens]]\nname = \"platform\"\nenv = \"GREENROOM_TEST_TOKEN_CAMPAIGNS\"\nscopes = [\"facts:write\", \"campaigns:write\"]\n\
     [[catalog.locations]]\ntarget = \"catalog.yaml\"\n\
     [campaigns]\nrecord_interval = \"1s\"\n"
        .to_string()
}

fn team(name: &str, email: &str) -> String {
    format!(
        "apiVersion: backstage.io/v1alpha1\nkind: Group\nmetadata:\n  name: {name}\n  links:\n    - url: https://chat.example.com/{name}\n      title: Chat\n    - url: mailto:{email}\n      title: Mail\nspec:\n  type: team\n  profile:\n    displayName: Team {name}\n    email: {email}\n  children: []\n"
    )
}

fn service(name: &str, owner: &str, tags: &str, annotations: &str) -> String {
    format!(
        "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: {name}\n  tags: [{tags}]\n  annotations: {{{annotations}}}\nspec:\n  type: service\n  lifecycle: production\n  owner: {owner}\n"
    )
}

const PYTHON3: &str = "apiVersion: greenroom.dev/v1alpha1\nkind: Campaign\nmetadata:\n  name: python3\n  title: Every Python service on Python 3\n  description: Python 2 is out of support.\nspec:\n  owner: team-platform\n  deadline: 2027-03-31\n  targets: kind=component,spec.type=service,metadata.tags=python\n  doneWhen: fact runtime.python >= 3\n";

const BROKEN: &str = "apiVersion: greenroom.dev/v1alpha1\nkind: Campaign\nmetadata:\n  name: broken\nspec:\n  owner: team-platform\n  targets: kind=component\n  doneWhen: fact coverage.lines >=\n";

async fn portal() -> Portal {
    let docs = [
        team("team-platform", "platform@example.com"),
        team("team-a", "a@example.com"),
        team("team-b", "b@example.com"),
        service(
            "payments",
            "team-a",
            "python",
            "\"backstage.io/techdocs-ref\": \"dir:.\"",
        ),
        service("refunds", "team-a", "python", ""),
        service("search", "team-b", "python", ""),
        service("ledger", "team-b", "python", ""),
        service("checkout", "team-b", "java", ""),
        PYTHON3.to_string(),
        BROKEN.to_string(),
    ];
    Portal::start(&config(), &[("catalog.yaml", &docs.join("---\n"))]).await
}

async fn send(
    p: &Portal,
    method: reqwest::Method,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> (u16, Value) {
    let mut req = p.http.request(method, format!("{}{path}", p.base));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.json(b);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

fn days_ago(n: u64) -> String {
    humantime::format_rfc3339_seconds(
        std::time::SystemTime::now() - std::time::Duration::from_secs(n * 86_400),
    )
    .to_string()
}

#[tokio::test]
async fn a_catalog_campaign_shows_progress_teams_to_chase_and_burndown() {
    let p = portal().await;
    // An invalid campaign is a catalog problem naming the predicate.
    let problems = p.problems().await;
    let broken = problems
        .iter()
        .find(|pr| pr["entityRef"] == "campaign:default/broken")
        .unwrap_or_else(|| panic!("{problems:?}"));
    let message = broken["message"].as_str().unwrap();
    assert_eq!(broken["field"], "spec.doneWhen", "{broken}");
    assert!(
        message.contains("invalid predicate 'fact coverage.lines >='")
            && message.contains("expected a value after >="),
        "{broken}"
    );

    // Python versions pushed by CI, with history: ledger moved to 3 five
    // days ago, payments two days ago; search is still on 2.7; refunds has
    // told nothing.
    let history = json!({"items": [
        {"entityRef": "payments", "facts": {"runtime.python": 2.7}, "at": days_ago(20)},
        {"entityRef": "ledger", "facts": {"runtime.python": 2.7}, "at": days_ago(20)},
        {"entityRef": "search", "facts": {"runtime.python": 2.7}, "at": days_ago(20)},
        {"entityRef": "ledger", "facts": {"runtime.python": 3.11}, "at": days_ago(5)},
        {"entityRef": "payments", "facts": {"runtime.python": 3.12}, "at": days_ago(2)},
    ]});
    let (s, b) = send(
        &p,
        reqwest::Method::POST,
        "/api/facts",
        Some(TOKEN),
        Some(&history),
    )
    .await;
    assert_eq!(s, 200, "{b}");

    let list = p.ok("/api/campaigns").await;
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "the broken one is not a campaign: {list}");
    assert_eq!(items[0]["name"], "python3");
    assert_eq!(items[0]["source"], "catalog");
    assert_eq!(
        items[0]["progress"],
        json!({"total": 4, "done": 2, "todo": 2, "percent": 50.0})
    );

    // A team's open tasks, for its page and its members' homepage.
    let mine = p.ok("/api/campaigns?owner=team-a").await;
    assert_eq!(mine["items"][0]["tasksTodo"], 1, "{mine}");
    assert_eq!(
        mine["items"][0]["tasks"],
        json!([{"entityRef": "component:default/refunds", "owner": "group:default/team-a", "reason": "no fact runtime.python (needs >= 3)"}])
    );
    let both = p
        .ok("/api/campaigns?owner=group:default/team-a,team-b")
        .await;
    assert_eq!(both["items"][0]["tasksTodo"], 2, "{both}");
    assert!(list["items"][0].get("tasks").is_none(), "{list}");
    let (s, b) = p.get("/api/campaigns?owner=group:default/").await;
    assert_eq!(s, 400, "{b}");
    // The fact names known, for the rankings page.
    let names = p.ok("/api/facts").await;
    assert_eq!(
        names["items"],
        json!([{"name": "runtime.python", "type": "number", "entities": 3}])
    );

    // Targets come a page at a time; the CSV has them all.
    let one = p.ok("/api/campaigns/python3?limit=1&offset=1").await;
    let all = p.ok("/api/campaigns/python3").await;
    assert_eq!(one["itemsTotal"], all["itemsTotal"]);
    assert!(all["itemsTotal"].as_u64().unwrap() >= 2, "{all}");
    assert_eq!(one["items"].as_array().unwrap().len(), 1);
    assert_eq!(one["items"][0], all["items"][1]);

    let c = p.ok("/api/campaigns/python3?days=21").await;
    assert_eq!(c["title"], "Every Python service on Python 3");
    assert_eq!(c["owner"], "group:default/team-platform");
    assert_eq!(c["deadline"], "2027-03-31");
    let teams: Vec<(String, u64, u64)> = c["teams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["owner"].as_str().unwrap().to_string(),
                t["progress"]["done"].as_u64().unwrap(),
                t["progress"]["total"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        teams,
        [
            ("group:default/team-a".to_string(), 1, 2),
            ("group:default/team-b".to_string(), 1, 2),
        ]
    );
    let chase = c["chase"].as_array().unwrap();
    assert_eq!(chase.len(), 2);
    let a = &chase[0];
    assert_eq!(a["contact"]["name"], "Team team-a");
    assert_eq!(a["contact"]["email"], "a@example.com");
    assert_eq!(
        a["contact"]["links"],
        json!([{"url": "https://chat.example.com/team-a", "title": "Chat"}, {"url": "mailto:a@example.com", "title": "Mail"}])
    );
    assert_eq!(
        a["targets"],
        json!([{"entityRef": "component:default/refunds", "reason": "no fact runtime.python (needs >= 3)"}])
    );
    assert_eq!(
        chase[1]["targets"][0]["reason"],
        "fact runtime.python is 2.7, needs >= 3"
    );
    // Burndown: 0 done until 5 days ago, 1 until 2 days ago, then 2.
    let burndown: Vec<u64> = c["burndown"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["done"].as_u64().unwrap())
        .collect();
    assert_eq!(burndown.len(), 21);
    assert_eq!(&burndown[..15], &[0; 15]);
    assert_eq!(&burndown[15..18], &[1, 1, 1]);
    assert_eq!(&burndown[18..], &[2, 2, 2]);
    assert!(
        c["burndown"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["total"] == 4)
    );

    let resp = p
        .http
        .get(format!("{}/api/campaigns/python3/targets.csv", p.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["content-type"], "text/csv; charset=utf-8");
    assert!(
        resp.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .contains("python3-targets.csv")
    );
    let csv = resp.text().await.unwrap();
    assert_eq!(
        csv,
        "entity,owner,status,reason\n\
         component:default/payments,group:default/team-a,done,\n\
         component:default/refunds,group:default/team-a,todo,no fact runtime.python (needs >= 3)\n\
         component:default/search,group:default/team-b,todo,\"fact runtime.python is 2.7, needs >= 3\"\n\
         component:default/ledger,group:default/team-b,done,\n"
    );
    let (s, _) = p.get("/api/campaigns/nope").await;
    assert_eq!(s, 404);

    // The evaluation just viewed is kept, but never past a change: a fact
    // moving and a catalog change are both seen at once.
    let now = json!({"items": [{"entityRef": "refunds", "facts": {"runtime.python": 3.12}}]});
    let (s, b) = send(
        &p,
        reqwest::Method::POST,
        "/api/facts",
        Some(TOKEN),
        Some(&now),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let c = p.ok("/api/campaigns/python3").await;
    assert_eq!(c["progress"]["done"], 3, "{c}");
    let docs = [
        team("team-platform", "platform@example.com"),
        team("team-a", "a@example.com"),
        team("team-b", "b@example.com"),
        service("payments", "team-a", "python", ""),
        service("refunds", "team-a", "python", ""),
        service("search", "team-b", "python", ""),
        service("ledger", "team-b", "python", ""),
        service("checkout", "team-b", "python", ""),
        PYTHON3.to_string(),
    ];
    p.write("catalog.yaml", &docs.join("---\n"));
    p.refresh().await;
    let c = p.ok("/api/campaigns/python3").await;
    assert_eq!(
        c["progress"],
        json!({"total": 5, "done": 3, "todo": 2, "percent": 60.0}),
        "checkout is a python service now: {c}"
    );
    let list = p.ok("/api/campaigns").await;
    assert_eq!(list["items"][0]["progress"]["total"], 5, "{list}");
}

#[tokio::test]
async fn campaigns_are_made_through_the_api_with_their_definition_checked() {
    let p = portal().await;
    let techdocs = json!({
        "name": "adopt-techdocs",
        "title": "Docs next to the code",
        "owner": "team-platform",
        "targets": ["kind=component,spec.type=service"],
        "doneWhen": "annotation backstage.io/techdocs-ref exists",
        "deadline": "2027-01-15",
    });
    let (s, b) = send(
        &p,
        reqwest::Method::POST,
        "/api/campaigns",
        None,
        Some(&techdocs),
    )
    .await;
    assert_eq!(s, 401, "{b}");
    let (s, b) = send(
        &p,
        reqwest::Method::POST,
        "/api/campaigns",
        Some(TOKEN),
        Some(&techdocs),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    assert_eq!(
        b["progress"],
        json!({"total": 5, "done": 1, "todo": 4, "percent": 20.0})
    );
    assert_eq!(b["source"], "api");

    // Definitions that do not read (400); the catalog's campaign keeps its
    // name and a campaign keeps its owner (409).
    for (body, status, says) in [
        (
            json!({"name": "x", "owner": "team-a", "targets": "kind=component", "doneWhen": "fact coverage.lines >= "}),
            400,
            "doneWhen: invalid predicate 'fact coverage.lines >= ': expected a value after >= (at character 23)",
        ),
        (
            json!({"name": "x", "owner": "team-a", "targets": "kind=component", "doneWhen": "coverage >= 70"}),
            400,
            "'coverage' is not `fact`, `annotation`, `label` or `spec`",
        ),
        (
            json!({"name": "Not Valid", "owner": "team-a", "targets": "kind=component", "doneWhen": "fact a exists"}),
            400,
            "name: 'Not Valid' is not a valid entity name",
        ),
        (
            json!({"name": "x", "targets": "kind=component", "doneWhen": "fact a exists"}),
            400,
            "owner: needs the owning team",
        ),
        (
            json!({"name": "x", "owner": "team-a", "doneWhen": "fact a exists"}),
            400,
            "targets: needs a catalog filter",
        ),
        (
            json!({"name": "x", "owner": "team-a", "targets": "kind=component", "doneWhen": "fact a exists", "deadline": "next spring"}),
            400,
            "deadline: \"next spring\" is not a date",
        ),
        (
            json!({"name": "python3", "owner": "team-a", "targets": "kind=component", "doneWhen": "fact a exists"}),
            409,
            "the catalog defines a campaign named python3; pick another name",
        ),
        (
            json!({"name": "adopt-techdocs", "owner": "team-b", "targets": "kind=component", "doneWhen": "fact a exists"}),
            409,
            "campaign adopt-techdocs belongs to group:default/team-platform",
        ),
    ] {
        let (s, b) = send(
            &p,
            reqwest::Method::POST,
            "/api/campaigns",
            Some(TOKEN),
            Some(&body),
        )
        .await;
        assert_eq!(s, status, "{b}");
        assert!(
            b["error"]["message"].as_str().unwrap().contains(says),
            "expected '{says}': {b}"
        );
    }

    // A dry run counts before anything is saved, for anyone who may read
    // the catalog, and says what is wrong with a definition the same way.
    let draft = json!({"targets": ["kind=component,spec.type=service"], "doneWhen": "spec.lifecycle = \"production\" and annotation backstage.io/techdocs-ref exists"});
    let (s, b) = send(
        &p,
        reqwest::Method::POST,
        "/api/campaigns/dry-run",
        None,
        Some(&draft),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(
        b["progress"],
        json!({"total": 5, "done": 1, "todo": 4, "percent": 20.0}),
        "{b}"
    );
    let teams: Vec<(&str, u64)> = b["teams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["owner"].as_str().unwrap(),
                t["progress"]["todo"].as_u64().unwrap(),
            )
        })
        .collect();
    assert!(teams.contains(&("group:default/team-b", 3)), "{b}");
    assert!(teams.contains(&("group:default/team-a", 1)), "{b}");
    assert_eq!(b["warnings"], json!([]));
    // A fact nothing has pushed (a typo) reads, but says so.
    let typo = json!({"targets": "kind=component", "doneWhen": "fact coverage.line >= 70"});
    let (s, b) = send(
        &p,
        reqwest::Method::POST,
        "/api/campaigns/dry-run",
        None,
        Some(&typo),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["progress"]["done"], 0);
    let warning = b["warnings"][0].as_str().unwrap();
    assert!(
        warning.starts_with("fact coverage.line is unknown: no entity has it yet")
            && warning.ends_with("(no fact has been pushed yet)"),
        "{b}"
    );
    let broken = json!({"targets": "kind=component", "doneWhen": "fact coverage.lines >= "});
    let (s, b) = send(
        &p,
        reqwest::Method::POST,
        "/api/campaigns/dry-run",
        None,
        Some(&broken),
    )
    .await;
    assert_eq!(s, 400, "{b}");
    assert!(
        b["error"]["message"]
            .as_str()
            .unwrap()
            .contains("expected a value after >="),
        "{b}"
    );

    let names: Vec<String> = p.ok("/api/campaigns").await["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["adopt-techdocs", "python3"]);
    let (s, _) = send(
        &p,
        reqwest::Method::DELETE,
        "/api/campaigns/adopt-techdocs",
        Some(TOKEN),
        None,
    )
    .await;
    assert_eq!(s, 200);
    let (s, _) = send(
        &p,
        reqwest::Method::DELETE,
        "/api/campaigns/python3",
        Some(TOKEN),
        None,
    )
    .await;
    assert_eq!(s, 404, "catalog campaigns go with their entity");
    assert_eq!(
        p.ok("/api/campaigns").await["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

/// The campaign page of `name` once `check` holds (the recorder runs
/// every second), or a failure showing the last page.
async fn campaign_until(p: &Portal, path: &str, check: impl Fn(&Value) -> bool) -> Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let c = p.ok(path).await;
        if check(&c) {
            return c;
        }
        assert!(std::time::Instant::now() < deadline, "never came: {c:#}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

fn refs(movers: &Value) -> Vec<&str> {
    let mut out: Vec<&str> = movers
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["entityRef"].as_str().unwrap())
        .collect();
    out.sort();
    out
}

#[tokio::test]
async fn any_campaign_has_history_burndown_and_movers() {
    let p = portal().await;
    // A campaign over an annotation: nothing in fact history to replay.
    let docs = json!({
        "name": "docs",
        "owner": "team-platform",
        "targets": "kind=component,spec.type=service",
        "doneWhen": "annotation backstage.io/techdocs-ref exists",
    });
    let (s, b) = send(
        &p,
        reqwest::Method::POST,
        "/api/campaigns",
        Some(TOKEN),
        Some(&docs),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    // Saving records where each target stands.
    let c = p.ok("/api/campaigns/docs?days=12").await;
    let recorded = c["historySince"].as_i64().expect("recorded on save");
    assert!(recorded > greenroom::store::now_ms() - 60_000, "{c}");

    // What the spreadsheet said before: ten days ago search and ledger
    // had docs (since lost), payments got them four days ago.
    let history = json!({"items": [
        {"entityRef": "payments", "status": "open", "at": days_ago(10)},
        {"entityRef": "refunds", "status": "open", "at": days_ago(10)},
        {"entityRef": "component:default/search", "status": "done", "at": days_ago(10)},
        {"entityRef": "ledger", "status": "done", "at": days_ago(10)},
        {"entityRef": "checkout", "status": "open", "at": days_ago(10)},
        {"entityRef": "payments", "status": "done", "at": days_ago(4)},
    ]});
    let (s, b) = send(
        &p,
        reqwest::Method::POST,
        "/api/campaigns/docs/history",
        None,
        Some(&history),
    )
    .await;
    assert_eq!(s, 401, "{b}");
    let (s, b) = send(
        &p,
        reqwest::Method::POST,
        "/api/campaigns/docs/history",
        Some(TOKEN),
        Some(&history),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["imported"], 6);

    let c = p.ok("/api/campaigns/docs?days=12").await;
    let done: Vec<u64> = c["burndown"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["done"].as_u64().unwrap())
        .collect();
    // Before the history: the annotations as they are (payments); from ten
    // days ago search and ledger; payments too from four days ago; today,
    // as recorded on save and evaluated now, payments alone.
    assert_eq!(
        done,
        [1, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 1],
        "{:#}",
        c["burndown"]
    );
    assert!(
        c["burndown"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["total"] == 5)
    );
    assert_eq!(refs(&c["movers"]["done"]), ["component:default/payments"]);
    assert!(
        c["movers"]["done"][0]["atMs"].as_i64().is_some(),
        "{}",
        c["movers"]
    );
    assert_eq!(
        refs(&c["movers"]["regressed"]),
        ["component:default/ledger", "component:default/search"]
    );
    assert_eq!(
        c["movers"]["regressed"][0]["reason"],
        "no annotation backstage.io/techdocs-ref"
    );
    // Per team: team-b had two of three ten days ago, none today.
    let team_b = c["teams"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["owner"] == "group:default/team-b")
        .unwrap();
    // Of its three, what was left each day.
    assert_eq!(
        team_b["left"],
        json!([3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 3]),
        "{team_b}"
    );

    // A catalog change is recorded without anyone asking: refunds gets
    // its docs, payments loses them.
    let docs_of = |name: &str| {
        if name == "refunds" {
            "\"backstage.io/techdocs-ref\": \"dir:.\""
        } else {
            ""
        }
    };
    let files = [
        team("team-platform", "platform@example.com"),
        team("team-a", "a@example.com"),
        team("team-b", "b@example.com"),
        service("payments", "team-a", "python", docs_of("payments")),
        service("refunds", "team-a", "python", docs_of("refunds")),
        service("search", "team-b", "python", ""),
        service("ledger", "team-b", "python", ""),
        service("checkout", "team-b", "java", ""),
        PYTHON3.to_string(),
    ];
    p.write("catalog.yaml", &files.join("---\n"));
    p.refresh().await;
    let c = campaign_until(&p, "/api/campaigns/docs?days=12", |c| {
        c["movers"]["done"][0]["entityRef"] == "component:default/refunds"
            && c["movers"]["done"][0]["atMs"]
                .as_i64()
                .is_some_and(|at| at > recorded)
    })
    .await;
    assert_eq!(refs(&c["movers"]["done"]), ["component:default/refunds"]);
    // payments was open a week ago: losing its docs again is no regression.
    assert_eq!(
        refs(&c["movers"]["regressed"]),
        ["component:default/ledger", "component:default/search"]
    );

    // Bad imports say which item and what to do.
    for (body, status, says) in [
        (
            json!({"items": [{"entityRef": "payments", "status": "finished", "at": days_ago(1)}]}),
            400,
            "items[0].status: expected open, done or gone",
        ),
        (
            json!({"items": [{"entityRef": "payments", "status": "done"}]}),
            400,
            "items[0].at: when it was so is required",
        ),
        (
            json!({"items": [{"entityRef": "payments", "status": "done", "at": "2999-01-01T00:00:00Z"}]}),
            400,
            "items[0].at is in the future",
        ),
        (
            json!({"items": [{"entityRef": "a:b:c/d", "status": "done", "at": days_ago(1)}]}),
            400,
            "items[0].entityRef 'a:b:c/d'",
        ),
        (json!({"rows": []}), 400, "expected {\"items\": [...]}"),
    ] {
        let (s, b) = send(
            &p,
            reqwest::Method::POST,
            "/api/campaigns/docs/history",
            Some(TOKEN),
            Some(&body),
        )
        .await;
        assert_eq!(s, status, "{b}");
        assert!(
            b["error"]["message"].as_str().unwrap().contains(says),
            "expected '{says}': {b}"
        );
    }
    let (s, _) = send(
        &p,
        reqwest::Method::POST,
        "/api/campaigns/nope/history",
        Some(TOKEN),
        Some(&history),
    )
    .await;
    assert_eq!(s, 404);

    // A deleted campaign's history goes with it.
    let (s, _) = send(
        &p,
        reqwest::Method::DELETE,
        "/api/campaigns/docs",
        Some(TOKEN),
        None,
    )
    .await;
    assert_eq!(s, 200);
    let (s, b) = send(
        &p,
        reqwest::Method::POST,
        "/api/campaigns",
        Some(TOKEN),
        Some(&docs),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    let c = p.ok("/api/campaigns/docs").await;
    assert!(c["historySince"].as_i64().unwrap() > recorded, "{c}");
    assert!(
        c["movers"]["regressed"].as_array().unwrap().is_empty(),
        "{c}"
    );
}
