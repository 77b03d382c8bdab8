//! Who may do what (issue 12): every write route refuses callers without
//! the right, people signed in through a proxy are trusted only from the
//! proxy, API tokens are records that can be revoked and expire, every
//! write is in the audit trail, and oversized bodies are refused.

use serde_json::{Value, json};

use crate::support::{Portal, component, group};

const PEOPLE: &str = "apiVersion: backstage.io/v1alpha1\nkind: User\nmetadata:\n  name: jane\nspec:\n  profile:\n    email: jane@example.com\n  memberOf: [platform]\n---\napiVersion: backstage.io/v1alpha1\nkind: User\nmetadata:\n  name: dan\nspec:\n  profile:\n    email: dan@example.com\n  memberOf: [checkout-api]\n---\napiVersion: backstage.io/v1alpha1\nkind: Group\nmetadata:\n  name: checkout-api\nspec:\n  type: team\n  parent: checkout\n  children: []\n";

fn catalog() -> String {
    [
        group("platform"),
        group("checkout"),
        PEOPLE.to_string(),
        component("svc", "checkout"),
    ]
    .join("---\n")
}

async fn portal(auth: &str) -> Portal {
    Portal::start(
        &format!(
            "[[server.tokens]]\nname = \"events-only\"\nenv = \"GREENROOM_ACCESS_EVENTS\"\nscopes = [\"events:write\"]\n[[catalog.locations]]\ntarget = \"catalog.yaml\"\n{auth}"
        ),
        &[("catalog.yaml", &catalog())],
    )
    .await
}

async fn send(
    p: &Portal,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&Value>,
) -> (u16, Value) {
    let mut req = p
        .http
        .request(method.parse().unwrap(), format!("{}{path}", p.base));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    if let Some(b) = body {
        req = req.json(b);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// Asserts an answer's status and that its error message says `says`.
fn refused(answer: &(u16, Value), status: u16, says: &str) {
    let (s, body) = answer;
    assert_eq!(*s, status, "{body}");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains(says), "{says} in {body}");
}

/// A concrete path and a body for a route of `RULES`.
fn example(path: &str) -> (String, Value) {
    let concrete = path
        .replace("{kind}", "component")
        .replace("{namespace}", "default")
        .replace("{name}", "svc")
        .replace("{plugin}", "hello")
        .replace("{action}", "rerun")
        .replace("{id}", "some-id");
    let body = match path {
        "/api/campaigns" => {
            json!({"name": "py3", "owner": "group:default/checkout", "targets": ["kind=component"], "doneWhen": "fact runtime.python >= \"3\""})
        }
        "/api/facts" => json!({"entityRef": "svc", "facts": {"x.y": 1}}),
        "/api/events" => json!({"kind": "deployment", "entityRef": "svc", "title": "svc 1.0"}),
        "/api/catalog/locations" => json!({"type": "url", "target": "https://example.com/x.yaml"}),
        "/api/tokens" => json!({"name": "x", "scopes": ["facts:write"]}),
        "/api/suggestions/decide" => json!({"entityRef": "svc", "decision": "dismiss"}),
        _ => json!({"confirmed": true}),
    };
    (concrete, body)
}

/// Every route with a rule refuses a caller who is nobody (401) and one
/// who lacks the right (403), naming what is missing; refusals are in the
/// audit trail and change nothing.
#[tokio::test]
async fn every_write_route_refuses_anonymous_and_unprivileged_callers() {
    use greenroom::api::identity::{RULES, Rule};
    // SAFETY: only this module uses the variable.
    unsafe { std::env::set_var("GREENROOM_ACCESS_EVENTS", "events-token") };
    let p = portal("").await;
    let weak = [("Authorization", "Bearer events-token")];
    let mut checked = 0;
    for (method, path, rule) in RULES {
        if matches!(rule, Rule::Read | Rule::Public) {
            continue;
        }
        let (concrete, body) = example(path);
        let (status, answer) = send(&p, method, &concrete, &[], Some(&body)).await;
        assert_eq!(status, 401, "{method} {path} anonymous: {answer}");
        assert!(
            answer["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{answer}"
        );
        // A token with another right: refused with 403, except where any
        // known caller may (a refresh) or where the token has the right.
        let lacks = match rule {
            Rule::Scope(s) => *s != "events:write",
            Rule::SignedIn => false,
            _ => true,
        };
        if lacks {
            let (status, answer) = send(&p, method, &concrete, &weak, Some(&body)).await;
            assert_eq!(
                status, 403,
                "{method} {path} with events:write only: {answer}"
            );
        }
        checked += 1;
    }
    assert!(checked >= 15, "{checked}");
    // Nothing changed: no campaign, no location, no token, no fact.
    assert_eq!(p.ok("/api/campaigns").await["items"], json!([]));
    assert_eq!(
        p.ok("/api/catalog/locations")
            .await
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let (_, tokens) = send(
        &p,
        "GET",
        "/api/tokens",
        &[("Authorization", &format!("Bearer {}", Portal::ADMIN))],
        None,
    )
    .await;
    assert_eq!(tokens["items"].as_array().unwrap().len(), 1, "{tokens}");
    // Every refusal is recorded, as denied, with who and where.
    let (_, audit) = send(
        &p,
        "GET",
        "/api/audit?limit=1000",
        &[("Authorization", &format!("Bearer {}", Portal::ADMIN))],
        None,
    )
    .await;
    let lines = audit["items"].as_array().unwrap();
    assert!(lines.len() >= checked, "{}", lines.len());
    assert!(lines.iter().all(|l| l["outcome"] == "denied"), "{audit}");
    assert!(
        lines
            .iter()
            .any(|l| l["actor"] == "anonymous" && l["address"] == "127.0.0.1")
    );
    assert!(lines.iter().any(|l| l["actor"] == "token:events-only"));
}

#[tokio::test]
async fn people_are_trusted_from_the_proxy_only_and_resolved_to_the_catalog() {
    let proxied = portal(
        "[auth]\nmode = \"proxy\"\nadmins = [\"group:default/platform\"]\n[auth.proxy]\ntrusted = [\"127.0.0.0/8\"]\n",
    )
    .await;
    let as_email = |e: &'static str| [("X-Forwarded-Email", e)];
    // Jane: found by email, in platform, so an administrator.
    let (_, me) = send(
        &proxied,
        "GET",
        "/api/whoami",
        &as_email("jane@example.com"),
        None,
    )
    .await;
    assert_eq!(me["caller"]["userRef"], "user:default/jane", "{me}");
    assert_eq!(me["admin"], true, "{me}");
    assert_eq!(me["demoPeople"], false);
    // Dan: in checkout-api, whose parent is checkout: both groups.
    let (_, me) = send(
        &proxied,
        "GET",
        "/api/whoami",
        &as_email("Dan@Example.com"),
        None,
    )
    .await;
    assert_eq!(
        me["caller"]["groups"],
        json!(["group:default/checkout", "group:default/checkout-api"]),
        "{me}"
    );
    assert_eq!(me["admin"], false);
    // Dan may act on svc (owned by checkout): past the permission check,
    // the plugin is what is missing. Naming someone else is refused.
    let (status, body) = send(
        &proxied,
        "POST",
        "/api/actions/component/default/svc/github/rerun",
        &as_email("dan@example.com"),
        Some(&json!({"confirmed": true})),
    )
    .await;
    assert_eq!(status, 404, "{body}");
    refused(
        &send(
            &proxied,
            "POST",
            "/api/actions/component/default/svc/github/rerun",
            &as_email("dan@example.com"),
            Some(&json!({"user": "jane", "confirmed": true})),
        )
        .await,
        400,
        "only for the demo",
    );
    // Jane is not in checkout, but administers.
    let (status, _) = send(
        &proxied,
        "POST",
        "/api/actions/component/default/svc/github/rerun",
        &as_email("jane@example.com"),
        Some(&json!({"confirmed": true})),
    )
    .await;
    assert_eq!(status, 404);
    // Someone the catalog does not know signs in with no groups.
    let (_, me) = send(
        &proxied,
        "GET",
        "/api/whoami",
        &as_email("new@example.com"),
        None,
    )
    .await;
    assert_eq!(me["caller"]["userRef"], Value::Null);
    assert_eq!(me["caller"]["login"], "new@example.com");
    let (status, body) = send(
        &proxied,
        "POST",
        "/api/actions/component/default/svc/github/rerun",
        &as_email("new@example.com"),
        Some(&json!({"confirmed": true})),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    // Reading needs someone outside guest mode, plugins' tabs and widgets
    // included.
    for path in [
        "/api/catalog/entities",
        "/api/tabs/component/default/svc",
        "/api/widgets",
    ] {
        let (status, _) = send(&proxied, "GET", path, &[], None).await;
        assert_eq!(status, 401, "{path}");
    }

    // The same headers from an address that is not the proxy: ignored.
    let elsewhere = portal(
        "[auth]\nmode = \"proxy\"\nadmins = [\"group:default/platform\"]\n[auth.proxy]\ntrusted = [\"10.9.9.9/32\"]\n",
    )
    .await;
    let (status, body) = send(
        &elsewhere,
        "GET",
        "/api/catalog/entities",
        &as_email("jane@example.com"),
        None,
    )
    .await;
    assert_eq!(status, 401, "{body}");
    let (status, me) = send(
        &elsewhere,
        "GET",
        "/api/whoami",
        &as_email("jane@example.com"),
        None,
    )
    .await;
    assert_eq!((status, &me["mode"]), (200, &json!("proxy")), "{me}");
    assert_eq!(me["caller"], Value::Null, "{me}");
}

#[tokio::test]
async fn tokens_are_records_that_expire_and_are_revoked_and_the_audit_trail_keeps_no_secret() {
    let p = portal("").await;
    let admin = format!("Bearer {}", Portal::ADMIN);
    let (status, made) = send(&p, "POST", "/api/tokens", &[("Authorization", &admin)], Some(&json!({"name": "ci", "scopes": ["facts:write"], "expires": "90d", "owner": "group:default/platform"}))).await;
    assert_eq!(status, 201, "{made}");
    let secret = made["token"].as_str().unwrap().to_string();
    let id = made["record"]["id"].as_str().unwrap().to_string();
    let bearer = format!("Bearer {secret}");
    let facts = json!({"entityRef": "svc", "facts": {"coverage.lines": 80}});
    let (status, body) = send(
        &p,
        "POST",
        "/api/facts",
        &[("Authorization", &bearer)],
        Some(&facts),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    // Beyond its scope.
    let (status, body) = send(
        &p,
        "POST",
        "/api/events",
        &[("Authorization", &bearer)],
        Some(&json!({"kind": "deployment", "entityRef": "svc", "title": "x"})),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    // Listed without its secret.
    let (_, list) = send(&p, "GET", "/api/tokens", &[("Authorization", &admin)], None).await;
    assert!(list.to_string().contains("\"name\":\"ci\""), "{list}");
    assert!(!list.to_string().contains(&secret[4..20]), "{list}");
    // Revoked: refused at once, saying so.
    let (status, _) = send(
        &p,
        "DELETE",
        &format!("/api/tokens/{id}"),
        &[("Authorization", &admin)],
        None,
    )
    .await;
    assert_eq!(status, 204);
    refused(
        &send(
            &p,
            "POST",
            "/api/facts",
            &[("Authorization", &bearer)],
            Some(&facts),
        )
        .await,
        401,
        "was revoked",
    );
    // Expired.
    let (_, short) = send(
        &p,
        "POST",
        "/api/tokens",
        &[("Authorization", &admin)],
        Some(&json!({"name": "brief", "scopes": ["facts:write"], "expires": "1ms"})),
    )
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let brief = format!("Bearer {}", short["token"].as_str().unwrap());
    refused(
        &send(
            &p,
            "POST",
            "/api/facts",
            &[("Authorization", &brief)],
            Some(&facts),
        )
        .await,
        401,
        "expired",
    );
    // Bad requests for tokens.
    let (status, body) = send(
        &p,
        "POST",
        "/api/tokens",
        &[("Authorization", &admin)],
        Some(&json!({"name": "x", "scopes": ["root"]})),
    )
    .await;
    assert_eq!(status, 400, "{body}");

    // The audit trail: every write with who and the outcome, as JSON and
    // as JSON lines, and no token secret anywhere in it.
    let (_, audit) = send(
        &p,
        "GET",
        "/api/audit?target=/api/facts",
        &[("Authorization", &admin)],
        None,
    )
    .await;
    let outcomes: Vec<(String, String)> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["actor"].as_str().unwrap().to_string(),
                l["outcome"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        outcomes,
        vec![
            ("token:ci".to_string(), "allowed".to_string()),
            ("anonymous".to_string(), "denied".to_string()),
            ("anonymous".to_string(), "denied".to_string()),
        ],
        "{audit}"
    );
    let export = p
        .http
        .get(format!("{}/api/audit?format=jsonl", p.base))
        .bearer_auth(Portal::ADMIN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(export.lines().count() >= 8, "{export}");
    assert!(
        export
            .lines()
            .all(|l| serde_json::from_str::<Value>(l).is_ok())
    );
    assert!(
        export.contains("\"action\":\"POST /api/tokens\""),
        "{export}"
    );
    for s in [secret.as_str(), Portal::ADMIN] {
        assert!(!export.contains(s), "a secret in the audit trail");
    }
    // Only administrators read it.
    let (status, _) = send(&p, "GET", "/api/audit", &[], None).await;
    assert_eq!(status, 401);
}

/// A 100 MB body is refused from its announced length, before it is read.
#[tokio::test]
async fn oversized_bodies_are_refused_with_413() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let p = portal("").await;
    let addr = p.base.trim_start_matches("http://").to_string();
    let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    stream
        .write_all(format!("POST /api/facts HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: 104857600\r\nConnection: close\r\n\r\n{{\"entityRef\":").as_bytes())
        .await
        .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("server.max_body_bytes"), "{answer}");
}

/// `/metrics` in Prometheus' text format: requests by route and status
/// with latency histograms, plugin calls per plugin, refreshes, and the
/// catalog's size.
#[tokio::test]
async fn metrics_count_requests_plugin_calls_and_the_catalog() {
    let p = crate::plugins::portal(&["hello"], &[("checkout", "")], "").await;
    crate::plugins::cards(&p, "checkout").await;
    p.ok("/api/catalog/entities?filter=kind=component").await;
    let resp = p
        .http
        .get(format!("{}/metrics", p.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = resp.text().await.unwrap();
    for expected in [
        "greenroom_http_requests_total{method=\"GET\",route=\"/api/catalog/entities\",status=\"200\"}",
        "greenroom_http_request_duration_seconds_bucket{method=\"GET\",route=\"/api/cards/{kind}/{namespace}/{name}\",le=\"0.5\"}",
        "greenroom_plugin_calls_total{plugin=\"hello\",outcome=\"ok\"}",
        "greenroom_plugin_call_duration_seconds_count{plugin=\"hello\"}",
        "greenroom_refreshes_total{outcome=\"ok\"}",
        "greenroom_catalog_entities 2",
        "greenroom_search_lag_changes",
    ] {
        assert!(text.contains(expected), "{expected} in\n{text}");
    }
}

/// A thousand guesses at a token from one address: after twenty failures
/// in a minute every attempt is answered 429 with `Retry-After`, even a
/// right token, and the refusals are recorded.
#[tokio::test]
async fn guessing_tokens_is_slowed_to_a_halt() {
    let p = portal("").await;
    let facts = json!({"entityRef": "svc", "facts": {"x.y": 1}});
    let mut statuses = std::collections::BTreeMap::new();
    let mut retry_after = None;
    for n in 0..1000 {
        let resp = p
            .http
            .post(format!("{}/api/facts", p.base))
            .bearer_auth(format!("grt_guess_{n}"))
            .json(&facts)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        if status == 429 {
            retry_after = resp
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_string());
        }
        *statuses.entry(status).or_insert(0) += 1;
    }
    assert_eq!(statuses.get(&401), Some(&20), "{statuses:?}");
    assert_eq!(statuses.get(&429), Some(&980), "{statuses:?}");
    let wait: u64 = retry_after.unwrap().parse().unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    // The administrator's own token from the same address waits too.
    refused(
        &send(
            &p,
            "POST",
            "/api/facts",
            &[("Authorization", &format!("Bearer {}", Portal::ADMIN))],
            Some(&facts),
        )
        .await,
        429,
        "too many failed sign-ins",
    );
    // Nothing was stored; every attempt is in the trail.
    let store = p.state.store.clone();
    let lines = tokio::task::spawn_blocking(move || {
        store.access.audit_lines(&greenroom::store::AuditQuery {
            limit: 5000,
            ..Default::default()
        })
    })
    .await
    .unwrap()
    .unwrap();
    assert_eq!(lines.iter().filter(|l| l.status == 401).count(), 20);
    assert!(lines.iter().filter(|l| l.status == 429).count() >= 980);
}

/// Campaigns: a person changes those their team owns; an administrator
/// any; someone else none.
#[tokio::test]
async fn campaigns_are_changed_by_their_owners_and_administrators() {
    let p = portal(
        "[auth]\nmode = \"proxy\"\nadmins = [\"group:default/platform\"]\n[auth.proxy]\ntrusted = [\"127.0.0.0/8\"]\n",
    )
    .await;
    let campaign = |name: &str, owner: &str| json!({"name": name, "owner": owner, "targets": ["kind=component"], "doneWhen": "fact runtime.python >= \"3\""});
    let dan = [("X-Forwarded-Email", "dan@example.com")];
    let jane = [("X-Forwarded-Email", "jane@example.com")];
    let stranger = [("X-Forwarded-Email", "new@example.com")];
    // Dan is in checkout (through checkout-api).
    let (status, body) = send(
        &p,
        "POST",
        "/api/campaigns",
        &dan,
        Some(&campaign("py3", "group:default/checkout")),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    refused(
        &send(
            &p,
            "POST",
            "/api/campaigns",
            &stranger,
            Some(&campaign("py3b", "group:default/checkout")),
        )
        .await,
        403,
        "only its owner group:default/checkout",
    );
    // Jane administers: a platform campaign, which Dan may not delete.
    let (status, _) = send(
        &p,
        "POST",
        "/api/campaigns",
        &jane,
        Some(&campaign("tls", "group:default/platform")),
    )
    .await;
    assert_eq!(status, 201);
    let (status, body) = send(&p, "DELETE", "/api/campaigns/tls", &dan, None).await;
    assert_eq!(status, 403, "{body}");
    // Nor take it over by writing it again under his team.
    let (status, body) = send(
        &p,
        "POST",
        "/api/campaigns",
        &dan,
        Some(&campaign("tls", "group:default/checkout")),
    )
    .await;
    assert_eq!(status, 409, "{body}");
    let (status, _) = send(&p, "DELETE", "/api/campaigns/py3", &dan, None).await;
    assert_eq!(status, 200);
    let (status, _) = send(&p, "DELETE", "/api/campaigns/tls", &jane, None).await;
    assert_eq!(status, 200);
}

/// Addresses over 8 KiB and headers over 32 KiB are refused with their own
/// statuses and a message; what is under the limits works.
#[tokio::test]
async fn oversized_addresses_and_headers_are_refused() {
    let p = portal("").await;
    let long = format!(
        "/api/catalog/entities?filter=metadata.name={}",
        "a".repeat(9000)
    );
    let resp = p
        .http
        .get(format!("{}{long}", p.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 414);
    assert!(resp.text().await.unwrap().contains("over 8192 bytes"));
    let mut req = p.http.get(format!("{}/api/catalog/entities", p.base));
    for i in 0..40 {
        req = req.header(format!("x-filler-{i}"), "f".repeat(1000));
    }
    let resp = req.send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 431);
    let (status, _) = send(
        &p,
        "GET",
        "/api/catalog/entities?filter=kind=component",
        &[("x-one", "fine")],
        None,
    )
    .await;
    assert_eq!(status, 200);
}
