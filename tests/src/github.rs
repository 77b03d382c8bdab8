//! The GitHub plugin, built from `plugins/github`, in the real host against
//! a loopback GitHub answering the REST routes it uses ("list workflow
//! runs", "list deployments" and their statuses, "list pull requests",
//! re-run, dispatch, merge) in their documented formats.

use greenroom_upstreams::{Mode, Upstreams};
use serde_json::{Value, json};

use crate::coverage::facts_of;
use crate::plugins::{by_plugin, cards, fresh_error, plugin_events, portal_with_docs, wasm};
use crate::sentry::upstream_config;
use crate::support::Portal;

const REPOS: [&str; 6] = [
    "payments",
    "checkout",
    "search",
    "ledger",
    "notifier",
    "catalog-api",
];

fn component(name: &str) -> String {
    format!(
        "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: {name}\n  annotations:\n    github.com/project-slug: northwind/{name}\nspec:\n  type: service\n  lifecycle: production\n  owner: team-a\n"
    )
}

const JANE: &str = "apiVersion: backstage.io/v1alpha1\nkind: User\nmetadata:\n  name: jane\nspec:\n  memberOf: [team-a]\n";

/// Someone in another team.
const EVE: &str = "apiVersion: backstage.io/v1alpha1\nkind: User\nmetadata:\n  name: eve\nspec:\n  memberOf: [team-b]\n";

async fn github_portal(upstream: &Upstreams, plugins: &str) -> Portal {
    let mut docs: Vec<String> = REPOS.iter().map(|r| component(r)).collect();
    docs.push(JANE.to_string());
    docs.push(EVE.to_string());
    let settings = format!("base_url = \"{}\"", upstream.github_url());
    // Guest mode with the demo's people: the request names who acts.
    let config = format!(
        "{plugins}\n{}\n[auth]\ndemo_people = true\n",
        upstream_config("github", "GITHUB_TOKEN", upstream, &settings)
    );
    let files = [(
        "github.wasm".to_string(),
        std::fs::read(wasm("github")).unwrap(),
    )];
    portal_with_docs(&files, &docs, "", &config).await
}

/// What the upstream holds: GET a GitHub route directly.
async fn upstream_get(upstream: &Upstreams, path: &str) -> Value {
    reqwest::get(format!("{}{path}", upstream.github_url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

fn time_ms(v: &Value) -> u64 {
    let t = humantime::parse_rfc3339(v.as_str().unwrap()).unwrap();
    t.duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

#[tokio::test]
async fn card_shows_the_latest_run_per_branch() {
    let upstream = Upstreams::start("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let p = github_portal(&upstream, "").await;
    let cards = cards(&p, "payments").await;
    let card = by_plugin(&cards, "github");
    assert_eq!(card["title"], "GitHub Actions", "{card}");
    let table = card["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["type"] == "table")
        .unwrap();
    assert_eq!(
        table["columns"],
        json!(["Branch", "Workflow", "Status", "Duration", "Actor", "Run"])
    );
    let runs = upstream_get(
        &upstream,
        "/repos/northwind/payments/actions/runs?per_page=50",
    )
    .await;
    let runs = runs["workflow_runs"].as_array().unwrap();
    let mut branches: Vec<&str> = Vec::new();
    for run in runs {
        let b = run["head_branch"].as_str().unwrap();
        if !branches.contains(&b) {
            branches.push(b);
        }
    }
    let rows = table["rows"].as_array().unwrap();
    assert_eq!(rows.len(), branches.len(), "one row per branch: {rows:?}");
    assert_eq!(rows[0][0]["text"], "main", "the default branch first");
    let latest_main = runs.iter().find(|r| r["head_branch"] == "main").unwrap();
    assert_eq!(rows[0][1]["text"], latest_main["name"]);
    assert_eq!(rows[0][4]["text"], latest_main["actor"]["login"]);
    assert_eq!(rows[0][5]["href"], latest_main["html_url"]);
    let expected_badge = match (
        latest_main["status"].as_str(),
        latest_main["conclusion"].as_str(),
    ) {
        (Some("completed"), Some("success")) => "passed",
        (Some("completed"), Some("failure")) => "failed",
        _ => "running",
    };
    assert_eq!(rows[0][2]["label"], expected_badge);
    assert!(
        rows.iter()
            .all(|r| r[3]["text"].as_str().unwrap().contains(" s")),
        "durations: {rows:?}"
    );
    let request = &upstream.requests()[0];
    assert_eq!(
        request.path,
        "/github/repos/northwind/payments/actions/runs?per_page=50"
    );
    assert_eq!(
        request.authorization.as_deref(),
        Some("Bearer test-github_token")
    );
}

#[tokio::test]
async fn facts_summarise_ci_and_pull_requests() {
    let upstream = Upstreams::start("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let p = github_portal(&upstream, "").await;
    for repo in REPOS {
        let facts = facts_of(&p, "github", repo).await.unwrap();
        let runs = upstream_get(
            &upstream,
            &format!("/repos/northwind/{repo}/actions/runs?per_page=100"),
        )
        .await;
        let ci: Vec<&Value> = runs["workflow_runs"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["head_branch"] == "main" && r["name"] == "CI")
            .collect();
        let completed: Vec<&&Value> = ci
            .iter()
            .filter(|r| r["status"] == "completed")
            .filter(|r| time_ms(&r["created_at"]) + 7 * 86_400_000 >= now_ms())
            .collect();
        let passed = completed
            .iter()
            .filter(|r| r["conclusion"] == "success")
            .count();
        let rate = (passed as f64 * 1000.0 / completed.len() as f64).round() / 10.0;
        let last = ci.iter().find(|r| r["status"] == "completed").unwrap()["conclusion"].clone();
        let pulls = upstream_get(
            &upstream,
            &format!("/repos/northwind/{repo}/pulls?state=open&per_page=100"),
        )
        .await;
        assert_eq!(
            facts,
            vec![
                ("ci.last_status".to_string(), json!(last)),
                ("ci.success_rate_7d".to_string(), json!(rate)),
                (
                    "github.open_pull_requests".to_string(),
                    json!(pulls.as_array().unwrap().len() as f64)
                ),
            ],
            "{repo}"
        );
    }
    assert!(
        upstream.requests().iter().any(|r| r.path.starts_with(
            "/github/repos/northwind/payments/actions/runs?branch=main&created=%3E%3D"
        )),
        "the facts ask GitHub for main's runs of the last week"
    );
}

#[tokio::test]
async fn events_report_recent_deployments_and_deploy_runs() {
    let upstream = Upstreams::start("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let p = github_portal(&upstream, "allow_actions = [\"github\"]").await;
    let since = now_ms() - 6 * 3_600_000;
    let events = plugin_events(&p, "github", since).await;
    let mut expected = Vec::new();
    for repo in REPOS {
        let deployments = upstream_get(
            &upstream,
            &format!("/repos/northwind/{repo}/deployments?per_page=20"),
        )
        .await;
        for d in deployments.as_array().unwrap() {
            if time_ms(&d["created_at"]) >= since {
                expected.push((
                    format!("deployment:northwind/{repo}:{}", d["id"]),
                    d.clone(),
                    repo,
                ));
            }
        }
    }
    assert!(!expected.is_empty(), "the upstream has recent deployments");
    assert_eq!(events.len(), expected.len(), "{events:?}");
    for (id, deployment, repo) in &expected {
        let event = events
            .iter()
            .find(|e| &e.id == id)
            .unwrap_or_else(|| panic!("no event {id}"));
        assert_eq!(event.kind, "deployment");
        assert_eq!(
            event.entity_ref.as_deref(),
            Some(format!("component:default/{repo}").as_str())
        );
        assert_eq!(event.at_ms, time_ms(&deployment["created_at"]));
        assert_eq!(
            event.actor.as_deref(),
            deployment["creator"]["login"].as_str()
        );
        let environment = deployment["environment"].as_str().unwrap();
        assert!(
            event.title.contains(environment) && event.title.starts_with(repo),
            "{}",
            event.title
        );
    }

    // A dispatched deploy shows as a run until its deployment exists.
    let (status, _) = run_action(
        &p,
        "payments",
        "deploy",
        json!({"user": "jane", "confirmed": true}),
    )
    .await;
    assert_eq!(status, 200);
    let events = plugin_events(&p, "github", now_ms() - 60_000).await;
    let run = events
        .iter()
        .find(|e| e.id.starts_with("run:northwind/payments:"))
        .expect("the dispatched run");
    assert!(
        run.title.starts_with("payments Deploy #") && run.title.ends_with("on main: queued"),
        "{}",
        run.title
    );
}

async fn run_action(p: &Portal, entity: &str, action: &str, body: Value) -> (u16, Value) {
    p.post(
        &format!("/api/actions/component/default/{entity}/github/{action}"),
        &body,
    )
    .await
}

async fn actions(p: &Portal, entity: &str) -> Vec<Value> {
    p.ok(&format!("/api/actions/component/default/{entity}"))
        .await["items"]
        .as_array()
        .unwrap()
        .clone()
}

#[tokio::test]
async fn actions_are_off_unless_the_operator_allows_them() {
    let upstream = Upstreams::start("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let p = github_portal(&upstream, "").await;
    let offered = actions(&p, "payments").await;
    let deploy = offered.iter().find(|a| a["id"] == "deploy").unwrap();
    assert_eq!(deploy["allowed"], false);
    assert_eq!(deploy["confirm"], true);
    let (status, body) = run_action(
        &p,
        "payments",
        "deploy",
        json!({"user": "jane", "confirmed": true}),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("allow_actions = [\"github\"]")
    );
    assert!(
        !upstream.requests().iter().any(|r| r.method != "GET"),
        "nothing was written"
    );
    assert!(
        p.ok("/api/actions/runs").await["items"]
            .as_array()
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn owners_rerun_deploy_and_merge_with_confirmation_and_a_record() {
    let upstream = Upstreams::start("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let p = github_portal(&upstream, "allow_actions = [\"github\"]").await;

    // Refused: nobody, an unknown user, someone outside the owning team,
    // no confirmation, an id not offered.
    for (body, status, says) in [
        (
            json!({"confirmed": true}),
            401,
            "running an action needs a person",
        ),
        (
            json!({"user": "nobody", "confirmed": true}),
            400,
            "no User user:default/nobody",
        ),
        (
            json!({"user": "eve", "confirmed": true}),
            403,
            "only members of its owner group:default/team-a",
        ),
        (json!({"user": "jane"}), 409, "needs confirmation"),
    ] {
        let (s, b) = run_action(&p, "payments", "deploy", body).await;
        assert_eq!(s, status, "{b}");
        assert!(
            b["error"]["message"].as_str().unwrap().contains(says),
            "{b}"
        );
    }
    let (s, b) = run_action(
        &p,
        "payments",
        "merge:99999:abc",
        json!({"user": "jane", "confirmed": true}),
    )
    .await;
    assert_eq!(s, 404, "{b}");
    // The deploy form is checked by the host before GitHub hears of it.
    for (input, says) in [
        (
            json!({"ref": "no spaces"}),
            "'Branch or tag' (ref) must match",
        ),
        (
            json!({"inputs": "not a pair"}),
            "'Workflow inputs' (inputs) must match",
        ),
        (
            json!({"force": true}),
            "'force' is not a field of 'Deploy main'",
        ),
    ] {
        let (s, b) = run_action(
            &p,
            "payments",
            "deploy",
            json!({"user": "jane", "confirmed": true, "input": input}),
        )
        .await;
        assert_eq!(s, 422, "{b}");
        let message = b["error"]["message"].as_str().unwrap();
        assert!(message.contains(says), "{message}");
    }
    assert!(
        !upstream.requests().iter().any(|r| r.method != "GET"),
        "nothing was written"
    );

    // Deploy another ref with inputs.
    let (s, b) = run_action(
        &p,
        "payments",
        "deploy",
        json!({"user": "user:default/jane", "confirmed": true, "input": {"ref": "release/2.4", "inputs": "environment=staging"}}),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["run"]["status"], "succeeded");
    assert_eq!(b["run"]["message"], "Started deploy.yml on release/2.4.");
    let dispatch = upstream
        .requests()
        .into_iter()
        .find(|r| r.method == "POST")
        .unwrap();
    assert_eq!(
        dispatch.path,
        "/github/repos/northwind/payments/actions/workflows/deploy.yml/dispatches"
    );
    assert_eq!(
        serde_json::from_str::<Value>(&dispatch.body).unwrap(),
        json!({"ref": "release/2.4", "inputs": {"environment": "staging"}})
    );

    // Merge the first mergeable pull request of any repository.
    let mut merged = None;
    for repo in REPOS {
        if let Some(merge) = actions(&p, repo)
            .await
            .into_iter()
            .find(|a| a["id"].as_str().unwrap().starts_with("merge:"))
        {
            merged = Some((repo, merge));
            break;
        }
    }
    let (repo, merge) = merged.expect("some repository has an open pull request");
    let id = merge["id"].as_str().unwrap().to_string();
    let number = id.split(':').nth(1).unwrap().to_string();
    let (s, b) = run_action(&p, repo, &id, json!({"user": "jane", "confirmed": true})).await;
    assert_eq!(s, 200, "{b}");
    assert!(
        b["run"]["message"]
            .as_str()
            .unwrap()
            .starts_with(&format!("Merged #{number} as ")),
        "{b}"
    );
    let put = upstream
        .requests()
        .into_iter()
        .find(|r| r.method == "PUT")
        .unwrap();
    assert_eq!(
        put.path,
        format!("/github/repos/northwind/{repo}/pulls/{number}/merge")
    );
    let sent: Value = serde_json::from_str(&put.body).unwrap();
    assert_eq!(sent["merge_method"], "squash");
    assert_eq!(
        sent["sha"],
        id.split(':').nth(2).unwrap(),
        "merges only the head that was shown"
    );
    assert!(
        !actions(&p, repo)
            .await
            .iter()
            .any(|a| a["id"] == id.as_str()),
        "a merged pull request is no longer offered"
    );

    // Re-run the failed jobs of a failed run somewhere.
    let mut rerun = None;
    for repo in REPOS {
        if let Some(a) = actions(&p, repo)
            .await
            .into_iter()
            .find(|a| a["id"].as_str().unwrap().starts_with("rerun:"))
        {
            rerun = Some((repo, a));
            break;
        }
    }
    let (repo, action) = rerun.expect("some repository has a failed latest run");
    let id = action["id"].as_str().unwrap();
    let (s, b) = run_action(&p, repo, id, json!({"user": "jane", "confirmed": true})).await;
    assert_eq!(s, 200, "{b}");
    let run_id = id.trim_start_matches("rerun:");
    assert!(upstream.requests().iter().any(|r| r.method == "POST"
        && r.path
            == format!("/github/repos/northwind/{repo}/actions/runs/{run_id}/rerun-failed-jobs")),);

    // An upstream failure is a failed run (502), recorded as such.
    upstream.set_mode(Mode::Status(500));
    let (s, b) = run_action(
        &p,
        "payments",
        "deploy",
        json!({"user": "jane", "confirmed": true}),
    )
    .await;
    assert_eq!(s, 502, "{b}");
    assert_eq!(b["run"]["status"], "failed");
    assert!(
        b["run"]["message"]
            .as_str()
            .unwrap()
            .contains("GitHub answered HTTP 500"),
        "{b}"
    );
    upstream.set_mode(Mode::Normal);

    let record = p.ok("/api/actions/runs").await["items"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(record.len(), 4, "{record:?}");
    assert!(
        record
            .iter()
            .all(|r| r["user"] == "user:default/jane" && r["finishedMs"].is_i64())
    );
    let statuses: Vec<&str> = record
        .iter()
        .map(|r| r["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["failed", "succeeded", "succeeded", "succeeded"]);
    assert_eq!(record[3]["action"], "deploy");
    assert_eq!(record[3]["entityRef"], "component:default/payments");
    assert_eq!(
        record[3]["input"],
        r#"{"inputs":"environment=staging","ref":"release/2.4"}"#
    );
    let payments = p
        .ok("/api/actions/runs?entity=component:default/payments")
        .await;
    let expected: Vec<&Value> = record
        .iter()
        .filter(|r| r["entityRef"] == "component:default/payments")
        .collect();
    assert_eq!(
        payments["items"]
            .as_array()
            .unwrap()
            .iter()
            .collect::<Vec<_>>(),
        expected
    );
}

#[tokio::test]
async fn upstream_failures_and_rate_limits_become_error_cards() {
    let upstream = Upstreams::start("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let p = github_portal(&upstream, "").await;
    for (mode, expected) in [
        (Mode::Status(500), "GitHub answered HTTP 500"),
        (Mode::Status(401), "GitHub refused the token (HTTP 401"),
        (
            Mode::Status(404),
            "GitHub found no actions/runs?per_page=50 in northwind/payments",
        ),
        (Mode::Malformed, "GitHub answered with malformed JSON"),
        (Mode::Hang, "no answer in time"),
    ] {
        upstream.set_mode(mode.clone());
        let error = fresh_error(&p, "payments", "github").await;
        assert!(error.contains(expected), "{mode:?}: {error}");
    }
    // GitHub's primary rate limit: 403, remaining 0, a reset time. The
    // plugin stops calling until the reset.
    upstream.set_mode(Mode::RateLimited {
        reset_in_secs: 900,
        retry_after: None,
    });
    let error = fresh_error(&p, "payments", "github").await;
    assert!(
        error.contains("GitHub rate limit reached; trying again after"),
        "{error}"
    );
    upstream.clear_requests();
    upstream.set_mode(Mode::Normal);
    let error = fresh_error(&p, "payments", "github").await;
    assert!(error.contains("rate limit"), "{error}");
    let other = cards(&p, "checkout").await;
    assert!(
        by_plugin(&other, "github")["error"]
            .as_str()
            .unwrap()
            .contains("rate limit")
    );
    assert!(upstream.requests().is_empty(), "no request until the reset");
    p.ok("/healthz").await;
}
