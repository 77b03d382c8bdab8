//! Nudges on the real server, to loopback receivers: a Slack-compatible
//! incoming webhook and a generic signed JSON webhook (axum on 127.0.0.1)
//! and a local SMTP server (aiosmtpd). One message per team with its open
//! targets, links and reasons; retries with back-off on 500s and time-outs
//! without holding up other teams; a refusing SMTP server recorded; teams
//! without any contact listed as "no channel"; quiet hours, the minimum
//! interval and snoozes.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};

use crate::support::Portal;

const TOKEN: &str = "nudge-test-token";
const SECRET: &str = "nudge-webhook-secret";

/// What the loopback receiver was sent: (path, body, signature header,
/// when), in arrival order.
type Received = Arc<Mutex<Vec<(String, Value, Option<String>, Instant)>>>;

/// A Slack-compatible webhook at `/slack` and a generic one at `/hook`:
/// `/slack` never answers for `#slow` (a time-out); `/hook` answers 500
/// to each team's first attempt.
async fn receiver() -> (String, Received) {
    use axum::routing::post;
    let received: Received = Arc::default();
    let attempts: Arc<Mutex<HashMap<String, u32>>> = Arc::default();
    let (slack_seen, hook_seen) = (received.clone(), received.clone());
    let app = axum::Router::new()
        .route(
            "/slack",
            post(move |body: axum::Json<Value>| {
                let seen = slack_seen.clone();
                async move {
                    if body["channel"] == "#slow" {
                        tokio::time::sleep(Duration::from_secs(30)).await;
                    }
                    seen.lock()
                        .unwrap()
                        .push(("/slack".into(), body.0, None, Instant::now()));
                    axum::http::StatusCode::OK
                }
            }),
        )
        .route(
            "/hook",
            post(
                move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                    let seen = hook_seen.clone();
                    let attempts = attempts.clone();
                    async move {
                        let json: Value = serde_json::from_slice(&body).unwrap();
                        let team = json["team"]["ref"].as_str().unwrap().to_string();
                        let n = {
                            let mut a = attempts.lock().unwrap();
                            let n = a.entry(team).or_default();
                            *n += 1;
                            *n
                        };
                        if n == 1 {
                            return axum::http::StatusCode::INTERNAL_SERVER_ERROR;
                        }
                        let signature = headers
                            .get("x-greenroom-signature-256")
                            .map(|v| v.to_str().unwrap().to_string());
                        // Checked here against the bytes as sent.
                        let mut mac =
                            Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
                        mac.update(&body);
                        let want: String = mac
                            .finalize()
                            .into_bytes()
                            .iter()
                            .map(|b| format!("{b:02x}"))
                            .collect();
                        let verified =
                            signature.as_deref() == Some(format!("sha256={want}").as_str());
                        seen.lock().unwrap().push((
                            "/hook".into(),
                            json,
                            Some(if verified { "verified" } else { "bad" }.into()),
                            Instant::now(),
                        ));
                        axum::http::StatusCode::NO_CONTENT
                    }
                },
            ),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), received)
}

/// aiosmtpd on a loopback port, writing what it accepts into a folder;
/// stopped when dropped.
struct SmtpSink {
    child: std::process::Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl SmtpSink {
    fn start() -> SmtpSink {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("smtp/sink.py");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = tempfile::tempdir().unwrap();
        let mut child = std::process::Command::new("python3")
            .arg(&script)
            .arg(port.to_string())
            .arg(dir.path())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("python3 runs the SMTP sink");
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.take().unwrap()),
            &mut line,
        )
        .unwrap();
        assert_eq!(
            line.trim(),
            "ready",
            "the SMTP sink did not start: is aiosmtpd installed? `cargo xtask test` installs it (python3 -m pip install aiosmtpd==1.4.6)"
        );
        SmtpSink { child, port, dir }
    }

    /// The messages received so far, as text.
    fn messages(&self) -> Vec<String> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(self.dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "eml"))
            .collect();
        files.sort();
        files
            .iter()
            .map(|p| std::fs::read_to_string(p).unwrap())
            .collect()
    }
}

fn group(name: &str, slack: Option<&str>, email: Option<&str>) -> String {
    let annotations = slack
        .map(|c| format!("  annotations:\n    slack.com/channel: \"{c}\"\n"))
        .unwrap_or_default();
    let email = email
        .map(|e| format!("    email: {e}\n"))
        .unwrap_or_default();
    format!(
        "apiVersion: backstage.io/v1alpha1\nkind: Group\nmetadata:\n  name: {name}\n{annotations}spec:\n  type: team\n  profile:\n    displayName: Team {name}\n{email}  children: []\n"
    )
}

fn service(name: &str, owner: &str) -> String {
    format!(
        "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: {name}\nspec:\n  type: service\n  lifecycle: production\n  owner: {owner}\n"
    )
}

const READY: &str = "apiVersion: greenroom.dev/v1alpha1\nkind: Scorecard\nmetadata:\n  name: ready\n  title: Ready\nspec:\n  owner: team-platform\n  targets: kind=component,spec.type=service\n  levels: [bronze, silver]\n  checks:\n    - {name: docs, level: bronze, when: annotation backstage.io/techdocs-ref exists}\n    - {name: tested, level: silver, when: fact coverage.lines >= 70}\n  nudge:\n    every: 7d\n    level: bronze\n";

const DOCS: &str = "apiVersion: greenroom.dev/v1alpha1\nkind: Campaign\nmetadata:\n  name: docs\n  title: Docs next to the code\nspec:\n  owner: team-platform\n  deadline: 2099-01-31\n  targets: kind=component,spec.type=service\n  doneWhen: annotation backstage.io/techdocs-ref exists\n  nudge:\n    every: 7d\n";

fn catalog() -> String {
    [
        group("team-platform", None, None),
        group("team-a", Some("#team-a"), Some("a@example.com")),
        group("team-b", None, Some("refuse-b@example.com")),
        group("team-c", None, None),
        group("team-d", Some("#slow"), None),
        service("payments", "team-a"),
        service("refunds", "team-a"),
        service("ledger", "team-b"),
        service("search", "team-c"),
        service("checkout", "team-d"),
        DOCS.to_string(),
    ]
    .join("---\n")
}

/// A portal with the catalog above and `extra` documents, nudging as
/// `nudges` (TOML) says.
async fn start(nudges: &str, extra: &[&str]) -> Portal {
    // SAFETY: every test sets the same values.
    unsafe {
        std::env::set_var("GREENROOM_TEST_TOKEN_NUDGES", TOKEN);
        std::env::set_var("GREENROOM_TEST_NUDGE_SECRET", SECRET);
    }
    let config = format!(
        "[[server.tokens]]\nname = \"platform\"\nenv = \"GREENROOM_TEST_TOKEN_NUDGES\"\nscopes = [\"campaigns:write\"]\n\
         [[catalog.locations]]\ntarget = \"catalog.yaml\"\n{nudges}"
    );
    let mut docs = vec![catalog()];
    docs.extend(extra.iter().map(|d| d.to_string()));
    Portal::start(&config, &[("catalog.yaml", &docs.join("---\n"))]).await
}

/// The campaign page once its nudge log has `n` rows.
async fn log_of(p: &Portal, n: usize) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let c = p.ok("/api/campaigns/docs").await;
        if c["nudges"].as_array().unwrap().len() >= n {
            return c;
        }
        assert!(
            Instant::now() < deadline,
            "{n} nudges never came: {:#}",
            c["nudges"]
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn row<'a>(log: &'a Value, team: &str, channel: &str) -> &'a Value {
    log["nudges"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["team"] == format!("group:default/{team}") && r["channel"] == channel)
        .unwrap_or_else(|| panic!("no {channel} nudge for {team}: {:#}", log["nudges"]))
}

#[tokio::test]
async fn teams_are_nudged_on_every_channel_with_retries_and_failures_recorded() {
    let (base, received) = receiver().await;
    let smtp = SmtpSink::start();
    // SAFETY: only this test reads it.
    unsafe { std::env::set_var("GREENROOM_TEST_SLACK_WEBHOOK", format!("{base}/slack")) };
    let p = start(
        &format!(
        "[nudges]\ncheck_interval = \"1s\"\nmin_interval = \"1h\"\ntimeout = \"1s\"\nattempts = 3\nbackoff = \"100ms\"\n\
         [nudges.slack]\nwebhook_env = \"GREENROOM_TEST_SLACK_WEBHOOK\"\n\
         [nudges.webhook]\nurl = \"{base}/hook\"\nsecret_env = \"GREENROOM_TEST_NUDGE_SECRET\"\n\
         [nudges.email]\nsmtp_host = \"127.0.0.1\"\nsmtp_port = {}\ntls = \"none\"\nfrom = \"Greenroom <greenroom@example.com>\"\n",
            smtp.port
        ),
        &[],
    )
    .await;
    // On its schedule (first time: at once), every team with open
    // targets: a by Slack, e-mail and the webhook; b by e-mail (refused)
    // and the webhook; c (no contact) by the webhook; d by Slack (times
    // out) and the webhook.
    let c = log_of(&p, 8).await;
    let a = row(&c, "team-a", "slack");
    assert_eq!(
        (a["status"].as_str(), a["attempts"].as_u64()),
        (Some("sent"), Some(1)),
        "{a}"
    );
    assert_eq!(a["detail"], "#team-a");
    assert_eq!(
        a["targets"],
        json!(["component:default/payments", "component:default/refunds"])
    );
    let d = row(&c, "team-d", "slack");
    assert_eq!(d["status"], "failed", "{d}");
    assert_eq!(d["attempts"], 3);
    assert!(
        d["detail"]
            .as_str()
            .unwrap()
            .contains("no answer within 1s"),
        "{d}"
    );
    let mail_a = row(&c, "team-a", "email");
    assert_eq!(
        (mail_a["status"].as_str(), mail_a["detail"].as_str()),
        (Some("sent"), Some("a@example.com"))
    );
    let mail_b = row(&c, "team-b", "email");
    assert_eq!(mail_b["status"], "failed", "{mail_b}");
    assert_eq!(mail_b["attempts"], 3);
    assert!(
        mail_b["detail"].as_str().unwrap().contains("refused"),
        "{mail_b}"
    );
    for team in ["team-a", "team-b", "team-c", "team-d"] {
        let hook = row(&c, team, "webhook");
        assert_eq!(
            (hook["status"].as_str(), hook["attempts"].as_u64()),
            (Some("sent"), Some(2)),
            "{hook}"
        );
    }
    // The chase list says how each team is reached, or that it is not.
    let chase: HashMap<String, Value> = c["chase"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["owner"].as_str().unwrap().to_string(),
                t["channels"].clone(),
            )
        })
        .collect();
    assert_eq!(chase["group:default/team-c"], json!([]));
    assert_eq!(
        chase["group:default/team-a"],
        json!([{"kind": "slack", "to": "#team-a"}, {"kind": "email", "to": "a@example.com"}])
    );

    // What arrived: one Slack message per team with links and reasons...
    let got = received.lock().unwrap().clone();
    let slack: Vec<&Value> = got
        .iter()
        .filter(|r| r.0 == "/slack")
        .map(|r| &r.1)
        .collect();
    assert_eq!(slack.len(), 1, "{slack:?}");
    let text = slack[0]["text"].as_str().unwrap();
    assert_eq!(slack[0]["channel"], "#team-a");
    assert!(
        text.starts_with(
            "*Docs next to the code: Team team-a has 2 open, deadline 2099-01-31 (scheduled)*"
        ),
        "{text}"
    );
    assert!(
        text.contains(
            "/catalog/default/component/payments|payments>: no annotation backstage.io/techdocs-ref"
        ),
        "{text}"
    );
    assert!(
        text.contains("/campaigns/docs|Open it in Greenroom>"),
        "{text}"
    );
    // ...while team d's timed out: the slow receiver held up nobody.
    let hooks: Vec<&(String, Value, Option<String>, Instant)> =
        got.iter().filter(|r| r.0 == "/hook").collect();
    assert_eq!(hooks.len(), 4);
    assert!(
        hooks.iter().all(|h| h.2.as_deref() == Some("verified")),
        "signed with the secret"
    );
    let c_hook = hooks
        .iter()
        .find(|h| h.1["team"]["ref"] == "group:default/team-c")
        .unwrap();
    assert_eq!(c_hook.1["team"]["email"], Value::Null);
    assert_eq!(
        c_hook.1["targets"][0]["entityRef"],
        "component:default/search"
    );
    assert_eq!(
        c_hook.1["targets"][0]["reason"],
        "no annotation backstage.io/techdocs-ref"
    );
    // One e-mail, to team a.
    let mails = smtp.messages();
    assert_eq!(mails.len(), 1, "{mails:?}");
    assert!(
        mails[0].contains("X-Envelope-To: a@example.com"),
        "{}",
        mails[0]
    );
    assert!(
        mails[0].contains("Subject: [Greenroom] Docs next to the code: Team team-a has 2 open"),
        "{}",
        mails[0]
    );
    assert!(
        mails[0].contains("component:default/refunds"),
        "{}",
        mails[0]
    );

    // Within the minimum interval nobody hears again, though the check
    // runs every second; failures are tried at the next check.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let again = p.ok("/api/campaigns/docs").await;
    let sent_to_a = again["nudges"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["team"] == "group:default/team-a")
        .count();
    assert_eq!(sent_to_a, 3, "{:#}", again["nudges"]);
}

#[tokio::test]
async fn quiet_hours_snoozes_and_teams_without_a_channel() {
    let (base, received) = receiver().await;
    // SAFETY: only this test reads it.
    unsafe { std::env::set_var("GREENROOM_TEST_SLACK_WEBHOOK_2", format!("{base}/slack")) };
    // Quiet all day: the schedule sends nothing; "nudge now" does.
    let p = start(
        "[nudges]\ncheck_interval = \"1s\"\nquiet_hours = \"00:00-23:59\"\ntimeout = \"1s\"\nattempts = 1\n\
         [nudges.slack]\nwebhook_env = \"GREENROOM_TEST_SLACK_WEBHOOK_2\"\n",
        &[READY],
    )
    .await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(p.ok("/api/campaigns/docs").await["nudges"], json!([]));

    // A team snoozes; only its members, the owner's tokens or admins may.
    let snooze = json!({"team": "team-a", "until": "2099-01-01"});
    let (s, b) = p.post("/api/campaigns/docs/snooze", &snooze).await;
    assert_eq!(s, 401, "{b}");
    let send = |path: &str, body: Option<&Value>| {
        let mut req = p.http.post(format!("{}{path}", p.base)).bearer_auth(TOKEN);
        if let Some(b) = body {
            req = req.json(b);
        }
        req.send()
    };
    let resp = send("/api/campaigns/docs/snooze", Some(&snooze))
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let resp = send(
        "/api/campaigns/docs/snooze",
        Some(&json!({"team": "team-a", "until": "2001-01-01"})),
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), 400);
    assert!(resp.text().await.unwrap().contains("a future date"));
    let resp = send("/api/campaigns/nope/snooze", Some(&snooze))
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);

    let (s, _) = p.post("/api/campaigns/docs/nudge", &json!({})).await;
    assert_eq!(s, 401);
    let resp = send("/api/campaigns/docs/nudge", None).await.unwrap();
    assert_eq!(resp.status(), 200);
    let sent: Value = resp.json().await.unwrap();
    let outcomes: Vec<(String, String, String)> = sent["sent"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["team"].as_str().unwrap().to_string(),
                r["channel"].as_str().unwrap().to_string(),
                r["status"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    // a is snoozed; b and c have no Slack channel: "no channel", recorded;
    // d's receiver times out.
    let mut outcomes = outcomes;
    outcomes.sort();
    assert_eq!(
        outcomes,
        [
            (
                "group:default/team-b".to_string(),
                "none".to_string(),
                "no-channel".to_string()
            ),
            (
                "group:default/team-c".to_string(),
                "none".to_string(),
                "no-channel".to_string()
            ),
            (
                "group:default/team-d".to_string(),
                "slack".to_string(),
                "failed".to_string()
            ),
        ]
    );
    let c = p.ok("/api/campaigns/docs").await;
    assert_eq!(c["snoozes"][0]["team"], "group:default/team-a");
    assert_eq!(c["snoozes"][0]["by"], "token:platform");
    let no_channel = row(&c, "team-c", "none");
    assert!(
        no_channel["detail"]
            .as_str()
            .unwrap()
            .contains("no slack.com/channel annotation or spec.profile.email"),
        "{no_channel}"
    );
    assert!(
        received
            .lock()
            .unwrap()
            .iter()
            .all(|r| r.1["channel"] != "#team-a")
    );

    // Lifting the snooze lets the next "nudge now" reach team a.
    let resp = send(
        "/api/campaigns/docs/snooze",
        Some(&json!({"team": "team-a", "until": null})),
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), 200);
    let resp = send("/api/campaigns/docs/nudge", None).await.unwrap();
    let sent: Value = resp.json().await.unwrap();
    assert!(
        sent["sent"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["team"] == "group:default/team-a" && r["status"] == "sent"),
        "{sent}"
    );
    assert!(
        received
            .lock()
            .unwrap()
            .iter()
            .any(|r| r.1["channel"] == "#team-a")
    );

    // A scorecard nudges the owners of entities below its level, each
    // with the checks it fails up to that level.
    let resp = send("/api/scorecards/ready/nudge", None).await.unwrap();
    assert_eq!(resp.status(), 200);
    let sent: Value = resp.json().await.unwrap();
    let to_a = sent["sent"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["team"] == "group:default/team-a")
        .unwrap_or_else(|| panic!("{sent}"));
    assert_eq!(
        (to_a["status"].as_str(), to_a["subject"].as_str()),
        (Some("sent"), Some("scorecard:ready"))
    );
    let text = received
        .lock()
        .unwrap()
        .iter()
        .rev()
        .find(|r| r.1["channel"] == "#team-a")
        .map(|r| r.1["text"].as_str().unwrap().to_string())
        .unwrap();
    assert!(
        text.starts_with("*Ready: bronze: Team team-a has 2 open"),
        "{text}"
    );
    assert!(
        text.contains("docs: no annotation backstage.io/techdocs-ref"),
        "{text}"
    );
    assert!(
        !text.contains("tested:"),
        "checks above the level are not asked: {text}"
    );
    let card = p.ok("/api/scorecards/ready").await;
    assert!(!card["nudges"].as_array().unwrap().is_empty(), "{card}");
}
