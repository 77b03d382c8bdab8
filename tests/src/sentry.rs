//! The Sentry plugin, built from `plugins/sentry`, in the real host against
//! a loopback Sentry answering "List a Project's Issues" in its documented
//! format.

use greenroom_upstreams::{Mode, Upstreams};
use serde_json::Value;

use crate::coverage::facts;
use crate::plugins::{by_plugin, cards, error_text, fresh_error, portal};
use crate::support::Portal;

/// Grants and settings for a first-party plugin talking to `upstream`
/// with the token `secret` (whose value is `test-<secret>`).
pub(crate) fn upstream_config(
    plugin: &str,
    secret: &str,
    upstream: &Upstreams,
    settings: &str,
) -> String {
    // SAFETY: every test sets the same value for the same secret.
    unsafe {
        std::env::set_var(
            format!("GREENROOM_SECRET_{secret}"),
            format!("test-{}", secret.to_lowercase()),
        )
    };
    format!(
        "[plugins.config.{plugin}]\n{settings}\n[[plugins.grants]]\nid = \"{plugin}\"\nhosts = [\"{}\"]\nsecrets = [\"{secret}\"]\n",
        upstream.origin()
    )
}

async fn sentry_portal(upstream: &Upstreams, settings: &str, names: &[(&str, &str)]) -> Portal {
    let settings = format!("base_url = \"{}\"\n{settings}", upstream.sentry_url());
    portal(
        &["sentry"],
        names,
        &upstream_config("sentry", "SENTRY_TOKEN", upstream, &settings),
    )
    .await
}

/// What the upstream itself holds for a project: its issues, all pages.
async fn all_issues(upstream: &Upstreams, project: &str) -> Vec<Value> {
    let url = format!(
        "{}/api/0/projects/northwind/{project}/issues/?limit=100",
        upstream.sentry_url()
    );
    let mut out = Vec::new();
    let mut next = Some(url);
    while let Some(url) = next.take() {
        let resp = reqwest::get(&url).await.unwrap();
        let link = resp.headers()["link"].to_str().unwrap().to_string();
        out.extend(resp.json::<Vec<Value>>().await.unwrap());
        if link.contains("rel=\"next\"; results=\"true\"") {
            let next_part = link.split(", ").nth(1).unwrap();
            next = Some(next_part[1..next_part.find('>').unwrap()].to_string());
        }
    }
    out
}

#[tokio::test]
async fn shows_top_unresolved_issues_and_counts_them_across_pages() {
    let upstream = Upstreams::start("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    upstream.set_issue_count(230);
    let p = sentry_portal(
        &upstream,
        "organization = \"northwind\"",
        &[
            ("payments", "\"sentry.io/project-slug\": \"payments\""),
            ("search", "\"sentry.io/project-slug\": \"northwind/search\""),
            ("no-sentry", ""),
        ],
    )
    .await;
    let cards = cards(&p, "payments").await;
    let card = by_plugin(&cards, "sentry");
    assert_eq!(card["title"], "Sentry", "{card}");
    let table = card["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["type"] == "table")
        .unwrap();
    assert_eq!(
        table["columns"],
        serde_json::json!(["Issue", "Events", "Users", "Last seen"])
    );
    let rows = table["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 5, "the top five");
    let expected = all_issues(&upstream, "payments").await;
    let first = &expected[0];
    assert_eq!(
        rows[0][0]["label"],
        format!(
            "{} {}",
            first["shortId"].as_str().unwrap(),
            first["title"].as_str().unwrap()
        )
    );
    assert_eq!(rows[0][0]["href"], first["permalink"]);
    assert_eq!(rows[0][1]["text"], first["count"]);
    assert_eq!(rows[0][2]["text"], first["userCount"].to_string());
    assert!(
        rows[0][3]["text"].as_str().unwrap().ends_with("ago"),
        "{}",
        rows[0][3]
    );

    let seen = upstream.requests();
    let card_request = seen.iter().find(|r| r.path.contains("sort=freq")).unwrap();
    assert_eq!(
        card_request.path,
        "/sentry/api/0/projects/northwind/payments/issues/?query=is%3Aunresolved&statsPeriod=24h&sort=freq&limit=5"
    );
    assert_eq!(
        card_request.authorization.as_deref(),
        Some("Bearer test-sentry_token")
    );

    // Facts follow the cursor through every page.
    upstream.clear_requests();
    let facts = facts(&p, "sentry", "payments").await.unwrap();
    let events: u64 = expected
        .iter()
        .map(|i| {
            i["stats"]["24h"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p[1].as_u64().unwrap())
                .sum::<u64>()
        })
        .sum();
    assert_eq!(
        facts,
        vec![
            ("sentry.unresolved_issues".to_string(), 230.0),
            ("sentry.events_24h".to_string(), events as f64),
        ]
    );
    assert_eq!(upstream.requests().len(), 3, "three pages of 100");

    // `org/project` in the annotation wins over the configured organization.
    let cards = self::cards(&p, "search").await;
    assert_eq!(by_plugin(&cards, "sentry")["id"], "sentry-issues");
    assert!(
        upstream
            .requests()
            .iter()
            .any(|r| r.path.contains("/projects/northwind/search/"))
    );
    // No annotation, no card.
    assert!(self::cards(&p, "no-sentry").await.is_empty());
}

#[tokio::test]
async fn upstream_failures_become_clear_error_cards() {
    let upstream = Upstreams::start("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let p = sentry_portal(
        &upstream,
        "organization = \"northwind\"",
        &[
            ("payments", "\"sentry.io/project-slug\": \"payments\""),
            ("bad-slug", "\"sentry.io/project-slug\": \"pay ments?x=1\""),
        ],
    )
    .await;
    for (mode, expected) in [
        (Mode::Status(500), "Sentry answered HTTP 500"),
        (Mode::Status(502), "Sentry answered HTTP 502"),
        (Mode::Status(401), "Sentry refused the token (HTTP 401)"),
        (
            Mode::Status(404),
            "Sentry has no project northwind/payments",
        ),
        (Mode::Malformed, "Sentry answered with malformed JSON"),
        (Mode::Hang, "no answer in time"),
    ] {
        upstream.set_mode(mode.clone());
        let error = fresh_error(&p, "payments", "sentry").await;
        assert!(error.contains(expected), "{mode:?}: {error}");
    }
    let error = error_text(by_plugin(&cards(&p, "bad-slug").await, "sentry"));
    assert!(error.contains("is not a Sentry project slug"), "{error}");

    // Told to slow down, the plugin stays away until Retry-After passes.
    upstream.set_mode(Mode::RateLimited {
        reset_in_secs: 600,
        retry_after: Some(120),
    });
    let error = fresh_error(&p, "payments", "sentry").await;
    assert!(error.contains("asked us to slow down"), "{error}");
    upstream.clear_requests();
    upstream.set_mode(Mode::Normal);
    let error = fresh_error(&p, "payments", "sentry").await;
    assert!(error.contains("asked us to slow down"), "{error}");
    assert!(
        upstream.requests().is_empty(),
        "no request while rate limited"
    );
    p.ok("/healthz").await;
}

#[tokio::test]
async fn a_missing_organization_is_a_configuration_error() {
    let upstream = Upstreams::start("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let p = sentry_portal(
        &upstream,
        "",
        &[("payments", "\"sentry.io/project-slug\": \"payments\"")],
    )
    .await;
    let error = error_text(by_plugin(&cards(&p, "payments").await, "sentry"));
    assert!(
        error.contains("configuration error") && error.contains("[plugins.config.sentry]"),
        "{error}"
    );
    assert!(upstream.requests().is_empty());
}
