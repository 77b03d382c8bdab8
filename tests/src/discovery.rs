//! Discovery through the GitHub plugin's `providers` export, in the real
//! host against the loopback GitHub ("list organization repositories",
//! "get repository content" for catalog files and CODEOWNERS, "list
//! repository contributors"): repositories with a catalog file join the
//! catalog, the others wait as suggestions with an owner for a person to
//! claim.

use greenroom_upstreams::{OrgRepo, Upstreams, catalog_file, deliveries, generated_org};
use serde_json::{Value, json};

use crate::plugins::{portal_with_docs, wasm};
use crate::sentry::upstream_config;
use crate::support::{Portal, group};

/// The organisation's 200 generated repositories (120 with a catalog
/// file, 80 without) and four more, each for one rule.
fn acme() -> Vec<OrgRepo> {
    let mut repos = generated_org("acme", 200);
    // Archived: left out, catalog file and all.
    repos.push(OrgRepo {
        archived: true,
        ..OrgRepo::new("legacy").file(
            "catalog-info.yaml",
            &catalog_file("acme", "legacy", "team-1"),
        )
    });
    // A file with one good entity and one invalid: the good one is kept.
    repos.push(OrgRepo::new("mixed").file(
        "catalog-info.yaml",
        &format!(
            "{}---\napiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: Mixed Bad!\nspec:\n  type: service\n  lifecycle: production\n  owner: team-1\n",
            catalog_file("acme", "mixed-ok", "team-1")
        ),
    ));
    // No catalog file; CODEOWNERS has two rules for everything (the last
    // wins) and a comment.
    repos.push(OrgRepo::new("owners-twice").file(
        "CODEOWNERS",
        "# moved in 2026\n* @acme/team-old\n* @acme/team-new @jane # lead\n",
    ));
    // No catalog file, no CODEOWNERS, no contributors.
    repos.push(OrgRepo::new("nobody"));
    repos
}

async fn discovering_portal(upstream: &Upstreams) -> Portal {
    upstream.set_org("acme", acme());
    let settings = format!("base_url = \"{}\"", upstream.github_url());
    let config = format!(
        "{}[[catalog.providers]]\nplugin = \"github\"\nname = \"acme\"\nconfig = {{ organisation = \"acme\" }}\n",
        upstream_config("github", "GITHUB_TOKEN", upstream, &settings)
    );
    let mut docs: Vec<String> = (0..10).map(|i| group(&format!("team-{i}"))).collect();
    // dev-6 is in the catalog, in team-6; the other committers are not.
    docs.push("apiVersion: backstage.io/v1alpha1\nkind: User\nmetadata:\n  name: dev-6\nspec:\n  memberOf: [team-6]\n".into());
    let files = [(
        "github.wasm".to_string(),
        std::fs::read(wasm("github")).unwrap(),
    )];
    portal_with_docs(&files, &docs, "", &config).await
}

fn annotation<'v>(e: &'v Value, name: &str) -> &'v str {
    e["metadata"]["annotations"][name]
        .as_str()
        .unwrap_or_default()
}

#[tokio::test]
async fn github_discovery_catalogs_repositories_with_files_and_suggests_the_rest() {
    let upstream = Upstreams::start("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let p = discovering_portal(&upstream).await;

    // 120 generated repositories with a file, and the good half of
    // `mixed`; nothing of the archived one.
    let components = p
        .ok("/api/catalog/entities/by-query?filter=kind=component&limit=1")
        .await;
    assert_eq!(components["totalItems"], 121, "{components}");
    let repo0 = p.entity("component", "repo-0").await.unwrap();
    assert_eq!(
        annotation(&repo0, "backstage.io/managed-by-location"),
        "url:https://github.com/acme/repo-0/blob/main/catalog-info.yaml"
    );
    assert_eq!(
        annotation(&repo0, "backstage.io/managed-by-origin-location"),
        "provider:github/acme"
    );
    assert_eq!(repo0["spec"]["owner"], "team-0");
    assert!(p.entity("component", "mixed-ok").await.is_some());
    assert!(p.entity("component", "legacy").await.is_none());
    let problems = p.problems().await;
    let bad: Vec<&Value> = problems
        .iter()
        .filter(|pr| {
            pr.to_string()
                .contains("acme/mixed/blob/main/catalog-info.yaml")
        })
        .collect();
    assert_eq!(bad.len(), 1, "{problems:?}");
    assert_eq!(bad[0]["field"], "metadata.name", "{}", bad[0]);
    assert_eq!(bad[0]["line"], 16, "the line of the bad name: {}", bad[0]);

    // The token went with every request, never into the plugin.
    let requests = upstream.requests();
    assert!(
        requests
            .iter()
            .any(|r| r.path.starts_with("/github/orgs/acme/repos")),
        "{requests:?}"
    );
    assert!(
        requests
            .iter()
            .all(|r| r.authorization.as_deref() == Some("Bearer test-github_token"))
    );

    // The other 80 generated ones, owners-twice and nobody wait as
    // suggestions, none of them in the catalog.
    let all = p.ok("/api/suggestions?limit=1000").await;
    assert_eq!(all["total"], 82, "{all}");
    let find = |name: &str| {
        all["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["entityRef"] == format!("component:default/{name}"))
            .unwrap_or_else(|| panic!("no suggestion {name}: {all}"))
            .clone()
    };
    // repo-4: CODEOWNERS; its language a tag, its description kept.
    let four = find("repo-4");
    assert_eq!(four["owner"], "group:default/team-4");
    assert_eq!(four["provider"], "github/acme");
    assert!(
        four["reason"]
            .as_str()
            .unwrap()
            .contains("acme/repo-4 has no catalog-info.yaml")
            && four["reason"]
                .as_str()
                .unwrap()
                .contains("owner from .github/CODEOWNERS"),
        "{four}"
    );
    assert_eq!(four["entity"]["metadata"]["tags"][0], "java");
    assert_eq!(
        four["entity"]["metadata"]["description"],
        "The repo-4 service"
    );
    assert_eq!(
        annotation(&four["entity"], "github.com/project-slug"),
        "acme/repo-4"
    );
    // repo-3: no CODEOWNERS, so its top committer.
    let three = find("repo-3");
    assert_eq!(three["owner"], "user:default/dev-3");
    assert!(three["reason"].as_str().unwrap().contains("top committer"));
    // repo-13: its top committer dev-6 is in the catalog, so their team.
    let thirteen = find("repo-13");
    assert_eq!(thirteen["owner"], "group:default/team-6");
    assert!(
        thirteen["reason"]
            .as_str()
            .unwrap()
            .contains("owner is the team of its top committer dev-6"),
        "{thirteen}"
    );
    assert_eq!(find("owners-twice")["owner"], "group:default/team-new");
    let nobody = find("nobody");
    assert!(nobody["owner"].is_null(), "{nobody}");
    assert!(nobody["entity"]["spec"].get("owner").is_none(), "{nobody}");
    assert!(nobody["reason"].as_str().unwrap().contains("choose one"));
    assert!(p.entity("component", "repo-4").await.is_none());

    // A team sees its own; `none` lists those without an owner.
    let team4 = p.ok("/api/suggestions?owner=team-4").await;
    assert_eq!(team4["total"], 20, "{team4}");
    let none = p.ok("/api/suggestions?owner=none").await;
    assert_eq!(none["total"], 1, "{none}");
    let (s, _) = p.get("/api/suggestions?owner=group:").await;
    assert_eq!(s, 400);

    // Coverage: 121 of the 203 things seen are in the catalog; per team,
    // and the day's point of the trend.
    let coverage = p.ok("/api/catalog/coverage").await;
    let acme = &coverage["providers"][0];
    assert_eq!(acme["provider"], "github/acme", "{coverage}");
    assert_eq!(
        (&acme["inCatalog"], &acme["waiting"]),
        (&json!(121), &json!(82)),
        "{acme}"
    );
    assert_eq!(acme["percent"], 59.6);
    assert_eq!(coverage["total"]["percent"], 59.6);
    let team = |owner: &str| {
        acme["teams"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["owner"] == owner)
            .unwrap_or_else(|| panic!("no {owner} in {acme}"))
            .clone()
    };
    // team-0 owns 20 repositories, all with a file; team-4's 20 wait.
    assert_eq!(team("group:default/team-0")["percent"], 100.0);
    assert_eq!(
        (
            team("group:default/team-4")["inCatalog"].clone(),
            team("group:default/team-4")["waiting"].clone()
        ),
        (json!(0), json!(20))
    );
    assert_eq!(acme["trend"].as_array().unwrap().len(), 1, "{acme}");
    assert_eq!(acme["trend"][0]["inCatalog"], 121);

    // Someone adds a catalog file: at the next refresh the repository is
    // in the catalog and no longer suggested.
    upstream.set_file(
        "acme",
        "repo-3",
        "catalog-info.yaml",
        Some(&catalog_file("acme", "repo-3", "team-3")),
    );
    p.refresh().await;
    assert_eq!(
        p.entity("component", "repo-3").await.unwrap()["spec"]["owner"],
        "team-3"
    );
    let after = p.ok("/api/suggestions?limit=1").await;
    assert_eq!(after["total"], 81, "{after}");
    // The day's point moved with it.
    let trend = p.ok("/api/catalog/coverage").await["providers"][0]["trend"].clone();
    assert_eq!(trend.as_array().unwrap().len(), 1, "{trend}");
    assert_eq!(
        (&trend[0]["inCatalog"], &trend[0]["waiting"]),
        (&json!(122), &json!(81))
    );
}

/// People of the catalog, through the sign-in proxy: jane administers
/// (platform), dan is in team-4, eve in team-1.
const PEOPLE: &str = "apiVersion: backstage.io/v1alpha1\nkind: Group\nmetadata:\n  name: platform\nspec:\n  type: team\n  children: []\n---\napiVersion: backstage.io/v1alpha1\nkind: User\nmetadata:\n  name: jane\nspec:\n  profile:\n    email: jane@example.com\n  memberOf: [platform]\n---\napiVersion: backstage.io/v1alpha1\nkind: User\nmetadata:\n  name: dan\nspec:\n  profile:\n    email: dan@example.com\n  memberOf: [team-4]\n---\napiVersion: backstage.io/v1alpha1\nkind: User\nmetadata:\n  name: eve\nspec:\n  profile:\n    email: eve@example.com\n  memberOf: [team-1]\n";

async fn decide(p: &Portal, email: Option<&str>, body: Value) -> (u16, Value) {
    let mut req = p
        .http
        .post(format!("{}/api/suggestions/decide", p.base))
        .json(&body);
    if let Some(e) = email {
        req = req.header("X-Forwarded-Email", e);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn waiting(p: &Portal) -> u64 {
    p.ok("/api/suggestions?limit=1").await["total"]
        .as_u64()
        .unwrap()
}

fn says(answer: &(u16, Value), status: u16, text: &str) {
    assert_eq!(answer.0, status, "{}", answer.1);
    let message = answer.1["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains(text), "'{text}' in {}", answer.1);
}

#[tokio::test]
async fn suggestions_are_accepted_merged_or_dismissed_by_their_teams() {
    let upstream = Upstreams::start("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    upstream.set_org("acme", acme());
    let settings = format!("base_url = \"{}\"", upstream.github_url());
    let config = format!(
        "{}[[catalog.providers]]\nplugin = \"github\"\nname = \"acme\"\nconfig = {{ organisation = \"acme\" }}\n\
         [auth]\nmode = \"proxy\"\nrequire_sign_in = false\nadmins = [\"group:default/platform\"]\n[auth.proxy]\ntrusted = [\"127.0.0.0/8\"]\n",
        upstream_config("github", "GITHUB_TOKEN", &upstream, &settings)
    );
    let mut docs: Vec<String> = (0..10).map(|i| group(&format!("team-{i}"))).collect();
    docs.push(PEOPLE.to_string());
    let files = [(
        "github.wasm".to_string(),
        std::fs::read(wasm("github")).unwrap(),
    )];
    let p = portal_with_docs(&files, &docs, "", &config).await;
    let (jane, dan, eve) = (
        Some("jane@example.com"),
        Some("dan@example.com"),
        Some("eve@example.com"),
    );
    assert_eq!(waiting(&p).await, 82);

    // Nobody signed in, someone of another team, a token: refused.
    let accept4 = json!({"entityRef": "repo-4", "decision": "accept"});
    says(&decide(&p, None, accept4.clone()).await, 401, "sign in");
    says(
        &decide(&p, eve, accept4.clone()).await,
        403,
        "only members of group:default/team-4",
    );
    // Dan is in team-4: accepted with the suggested owner, in the catalog
    // when the answer comes.
    let (s, b) = decide(&p, dan, accept4.clone()).await;
    assert_eq!(s, 200, "{b}");
    let repo4 = p
        .entity("component", "repo-4")
        .await
        .expect("accepted into the catalog");
    assert_eq!(repo4["spec"]["owner"], "group:default/team-4");
    assert_eq!(
        annotation(&repo4, "backstage.io/managed-by-location"),
        "provider:github/acme"
    );
    assert_eq!(repo4["metadata"]["tags"][0], "java");
    // Decided once: not waiting any more.
    says(
        &decide(&p, dan, accept4).await,
        404,
        "no suggestion component:default/repo-4 is waiting",
    );

    // One without an owner: accepted for a team the person is in; the
    // owner must be in the catalog.
    let nobody = |owner: &str| json!({"entityRef": "nobody", "decision": "accept", "owner": owner});
    says(&decide(&p, dan, nobody("team-9")).await, 403, "team-9");
    says(
        &decide(&p, jane, nobody("ghost-team")).await,
        422,
        "not in the catalog",
    );
    let (s, b) = decide(&p, dan, nobody("team-4")).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(
        p.entity("component", "nobody").await.unwrap()["spec"]["owner"],
        "group:default/team-4"
    );
    // An administrator accepts for any team (repo-9's suggested owner is
    // its top committer, who is not in the catalog).
    let (s, b) = decide(
        &p,
        jane,
        json!({"entityRef": "component:default/repo-9", "decision": "accept", "owner": "group:default/team-9"}),
    )
    .await;
    assert_eq!(s, 200, "{b}");

    // Merged into an entity the catalog has; dismissed with a note.
    says(
        &decide(
            &p,
            dan,
            json!({"entityRef": "repo-14", "decision": "merge", "into": "ghost"}),
        )
        .await,
        422,
        "not in the catalog",
    );
    let (s, b) = decide(
        &p,
        dan,
        json!({"entityRef": "repo-14", "decision": "merge", "into": "repo-0"}),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let (s, b) = decide(
        &p,
        dan,
        json!({"entityRef": "repo-24", "decision": "dismiss", "note": "a fork of a vendor's tool"}),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    says(
        &decide(&p, dan, json!({"entityRef": "repo-34", "decision": "keep"})).await,
        400,
        "accept, merge, dismiss",
    );
    assert!(p.entity("component", "repo-14").await.is_none());
    assert!(p.entity("component", "repo-24").await.is_none());
    assert_eq!(waiting(&p).await, 82 - 5);

    // Each decision recorded: who, when, what.
    let log = p.ok("/api/suggestions/decisions").await;
    assert_eq!(log["total"], 5, "{log}");
    let last = &log["items"][0];
    assert_eq!(last["entityRef"], "component:default/repo-24");
    assert_eq!(last["decision"], "dismissed");
    assert_eq!(last["by"], "user:default/dan");
    assert_eq!(last["note"], "a fork of a vendor's tool");
    assert_eq!(last["provider"], "github/acme");
    let merged = log["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["decision"] == "merged")
        .unwrap();
    assert_eq!(merged["into"], "component:default/repo-0");

    // The next discovery keeps every decision: accepted ones stay in the
    // catalog with the owner chosen, the others stay out.
    p.refresh().await;
    assert_eq!(
        p.entity("component", "repo-4").await.unwrap()["spec"]["owner"],
        "group:default/team-4"
    );
    assert_eq!(
        p.entity("component", "nobody").await.unwrap()["spec"]["owner"],
        "group:default/team-4"
    );
    assert!(p.entity("component", "repo-24").await.is_none());
    assert_eq!(waiting(&p).await, 82 - 5);
    // Searchable like any entity.
    p.until_found("repo-4").await;
}

const HOOK_SECRET: &str = "hook-secret-for-tests";

/// Posts a delivery as GitHub would, signed with `secret` (none: no
/// signature header).
async fn deliver(p: &Portal, event: &str, body: &Value, secret: Option<&str>) -> (u16, Value) {
    let bytes = serde_json::to_vec(body).unwrap();
    let mut req = p
        .http
        .post(format!("{}/api/webhooks/github", p.base))
        .header("X-GitHub-Event", event)
        .header("X-GitHub-Delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958")
        .header("content-type", "application/json");
    if let Some(s) = secret {
        req = req.header("X-Hub-Signature-256", deliveries::signature(s, &bytes));
    }
    let resp = req.body(bytes).send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// A portal discovering the organisation `acme` of `repos` generated
/// repositories, taking GitHub's webhook deliveries signed with
/// [`HOOK_SECRET`].
async fn webhook_portal(repos: usize) -> (Upstreams, Portal) {
    let upstream = Upstreams::start("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    upstream.set_org("acme", generated_org("acme", repos));
    // SAFETY: only this module sets the variable, always to this value.
    unsafe { std::env::set_var("GREENROOM_SECRET_GITHUB_WEBHOOK_TEST", HOOK_SECRET) };
    let settings = format!("base_url = \"{}\"", upstream.github_url());
    let config = format!(
        "{}[plugins.webhooks.github]\nsecret = \"GITHUB_WEBHOOK_TEST\"\n\
         [[catalog.providers]]\nplugin = \"github\"\nname = \"acme\"\nconfig = {{ organisation = \"acme\" }}\n",
        upstream_config("github", "GITHUB_TOKEN", &upstream, &settings)
    );
    let docs: Vec<String> = (0..10).map(|i| group(&format!("team-{i}"))).collect();
    let files = [(
        "github.wasm".to_string(),
        std::fs::read(wasm("github")).unwrap(),
    )];
    let p = portal_with_docs(&files, &docs, "", &config).await;
    (upstream, p)
}

#[tokio::test]
async fn github_webhooks_refresh_only_what_they_name_and_feed_deployments() {
    let (upstream, p) = webhook_portal(20).await;
    assert_eq!(
        p.entity("component", "repo-0").await.unwrap()["spec"]["owner"],
        "team-0"
    );
    let file = |name: &str, owner: &str, words: &str| {
        catalog_file("acme", name, owner)
            .replace(&format!("{name}, described in its repository"), words)
    };
    let main_push = |name: &str, changes: (&[&str], &[&str], &[&str])| {
        deliveries::push("acme", name, "main", changes)
    };
    const CATALOG: &[&str] = &["catalog-info.yaml"];

    // A delivery not signed with the secret is refused before anything
    // else, and the refusal is in the audit trail.
    upstream.set_file(
        "acme",
        "repo-0",
        "catalog-info.yaml",
        Some(&file("repo-0", "team-9", "moved to tangerine")),
    );
    let push0 = main_push("repo-0", (&[], CATALOG, &[]));
    says(
        &deliver(&p, "push", &push0, Some("not-the-secret")).await,
        401,
        "does not match",
    );
    says(
        &deliver(&p, "push", &push0, None).await,
        401,
        "no X-Hub-Signature-256",
    );
    assert_eq!(
        p.entity("component", "repo-0").await.unwrap()["spec"]["owner"],
        "team-0"
    );
    let audit = p.admin_get("/api/audit?target=/api/webhooks/github").await;
    let refused: Vec<&Value> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["status"] == 401)
        .collect();
    assert_eq!(refused.len(), 2, "{audit}");

    // Signed: the pushed catalog file is read again before the answer.
    upstream.clear_requests();
    let (s, b) = deliver(&p, "push", &push0, Some(HOOK_SECRET)).await;
    assert_eq!((s, &b["files"]), (200, &json!(1)), "{b}");
    let repo0 = p.entity("component", "repo-0").await.unwrap();
    assert_eq!(repo0["spec"]["owner"], "team-9");
    // Only that file was read: no listing of the organisation.
    let paths: Vec<String> = upstream.requests().into_iter().map(|r| r.path).collect();
    assert_eq!(
        paths,
        [
            "/github/repos/acme/repo-0/contents/catalog-info.yaml?ref=b1d3c0ffee5e7a11ab1e0000000000000000cafe"
        ],
        "{paths:?}"
    );
    // And searchable.
    p.until_found("tangerine").await;

    // A push to another branch, or not touching the catalog file: nothing.
    let other = deliveries::push("acme", "repo-0", "feature/x", (&[], CATALOG, &[]));
    let (s, b) = deliver(&p, "push", &other, Some(HOOK_SECRET)).await;
    assert_eq!(
        (s, &b["files"], &b["gone"]),
        (200, &json!(0), &json!(0)),
        "{b}"
    );
    let readme = main_push("repo-0", (&[], &["README.md"], &[]));
    let (_, b) = deliver(&p, "push", &readme, Some(HOOK_SECRET)).await;
    assert_eq!(b["files"], 0, "{b}");

    // A file added where there was none: in the catalog.
    upstream.set_file(
        "acme",
        "repo-3",
        "catalog-info.yaml",
        Some(&file("repo-3", "team-3", "now described")),
    );
    let (s, b) = deliver(
        &p,
        "push",
        &main_push("repo-3", (CATALOG, &[], &[])),
        Some(HOOK_SECRET),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert!(p.entity("component", "repo-3").await.is_some());
    // A file removed, a repository archived: their entities go, the
    // others stay.
    upstream.set_file("acme", "repo-1", "catalog-info.yaml", None);
    let (_, b) = deliver(
        &p,
        "push",
        &main_push("repo-1", (&[], &[], CATALOG)),
        Some(HOOK_SECRET),
    )
    .await;
    assert_eq!(b["gone"], 1, "{b}");
    assert!(p.entity("component", "repo-1").await.is_none());
    let archived = deliveries::repository_event("acme", "repo-2", "archived");
    let (_, b) = deliver(&p, "repository", &archived, Some(HOOK_SECRET)).await;
    assert_eq!(b["gone"], 1, "{b}");
    assert!(p.entity("component", "repo-2").await.is_none());
    for kept in ["repo-0", "repo-3", "repo-5", "repo-6"] {
        assert!(p.entity("component", kept).await.is_some(), "{kept} lost");
    }

    // A deployment's status: in "deployed in the last 30 minutes" at once.
    let now = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    let deployed = deliveries::deployment_status(
        "acme",
        "repo-0",
        (4242, "c0ffee1234567890", "production", "success"),
        &now,
    );
    let (s, b) = deliver(&p, "deployment_status", &deployed, Some(HOOK_SECRET)).await;
    assert_eq!((s, &b["events"]), (200, &json!(1)), "{b}");
    let feed = p.ok("/api/events?since=30m&kind=deployment&limit=20").await;
    let event = feed["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["title"] == "repo-0 deployed c0ffee1 to production")
        .unwrap_or_else(|| panic!("{feed}"));
    assert_eq!(event["entityRef"], "component:default/repo-0");

    // Something GitHub sends that changes nothing here (its ping).
    let (s, _) = deliver(
        &p,
        "ping",
        &json!({"zen": "Keep it logically awesome."}),
        Some(HOOK_SECRET),
    )
    .await;
    assert_eq!(s, 200);
    // A plugin without a webhook configured hears nothing.
    let (s, b) = p.post("/api/webhooks/sentry", &json!({})).await;
    assert_eq!(s, 404, "{b}");
}

#[tokio::test]
async fn discovery_takes_only_the_topics_asked_for_and_no_forks() {
    let upstream = Upstreams::start("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let repo = |name: &str, topic: &str, fork: bool| OrgRepo {
        topics: vec![topic.to_string()],
        fork,
        ..OrgRepo::new(name).file(
            "catalog-info.yaml",
            &catalog_file("topical", name, "team-1"),
        )
    };
    upstream.set_org(
        "topical",
        vec![
            repo("api-one", "backend", false),
            repo("api-two", "Backend", false),
            repo("web-one", "frontend", false),
            repo("api-fork", "backend", true),
            OrgRepo {
                topics: vec!["frontend".into()],
                ..OrgRepo::new("web-two")
            },
        ],
    );
    let settings = format!("base_url = \"{}\"", upstream.github_url());
    let config = format!(
        "{}[[catalog.providers]]\nplugin = \"github\"\nname = \"topical\"\nconfig = {{ organisation = \"topical\", topics = [\"backend\"] }}\n",
        upstream_config("github", "GITHUB_TOKEN", &upstream, &settings)
    );
    let files = [(
        "github.wasm".to_string(),
        std::fs::read(wasm("github")).unwrap(),
    )];
    let p = portal_with_docs(&files, &[group("team-1")], "", &config).await;
    for (name, kept) in [
        ("api-one", true),
        ("api-two", true),
        ("web-one", false),
        ("api-fork", false),
    ] {
        assert_eq!(p.entity("component", name).await.is_some(), kept, "{name}");
    }
    // The frontend repository without a file is not suggested either.
    assert_eq!(waiting(&p).await, 0);
}

#[tokio::test]
async fn accepting_can_open_a_pull_request_instead() {
    let upstream = Upstreams::start("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    upstream.set_org("acme", generated_org("acme", 10));
    let settings = format!("base_url = \"{}\"", upstream.github_url());
    let provider = "[[catalog.providers]]\nplugin = \"github\"\nname = \"acme\"\nconfig = { organisation = \"acme\" }\naccept = \"pull-request\"\n";
    let config = format!(
        "{}{provider}[auth]\nmode = \"proxy\"\nrequire_sign_in = false\n[auth.proxy]\ntrusted = [\"127.0.0.0/8\"]\n",
        upstream_config("github", "GITHUB_TOKEN", &upstream, &settings)
    );
    let mut docs: Vec<String> = (0..10).map(|i| group(&format!("team-{i}"))).collect();
    docs.push(PEOPLE.to_string());
    let files = [(
        "github.wasm".to_string(),
        std::fs::read(wasm("github")).unwrap(),
    )];
    // Without the plugin's actions allowed, accepting says what to set.
    let p = portal_with_docs(&files, &docs, "", &config).await;
    let dan = Some("dan@example.com");
    let accept4 = json!({"entityRef": "repo-4", "decision": "accept"});
    says(
        &decide(&p, dan, accept4.clone()).await,
        403,
        "allow_actions",
    );
    drop(p);
    let p = portal_with_docs(
        &files,
        &docs,
        "",
        // Settings of [plugins] come first.
        &format!("allow_actions = [\"github\"]\n{config}"),
    )
    .await;
    let (s, b) = decide(&p, dan, accept4).await;
    assert_eq!(s, 200, "{b}");
    let message = b["message"].as_str().unwrap();
    assert!(
        message.starts_with("Opened pull request #")
            && message.contains(" adding catalog-info.yaml: https://github.com/acme/repo-4/pull/"),
        "{message}"
    );
    // Not in the catalog until the pull request is merged; not waiting
    // either.
    assert!(p.entity("component", "repo-4").await.is_none());
    assert_eq!(waiting(&p).await, 3);
    let log = p.ok("/api/suggestions/decisions").await;
    assert_eq!(log["items"][0]["decision"], "proposed", "{log}");
    assert_eq!(log["items"][0]["pullRequest"], message);
    // The pull request carries the catalog file, with the owner.
    let file = upstream
        .branch_file(
            "acme",
            "repo-4",
            "greenroom/catalog-info",
            "catalog-info.yaml",
        )
        .expect("the file on the pull request's branch");
    assert!(file.contains("kind: Component\n"), "{file}");
    assert!(file.contains("  name: repo-4\n"), "{file}");
    assert!(file.contains("  owner: group:default/team-4\n"), "{file}");
    assert!(
        file.contains("github.com/project-slug: acme/repo-4"),
        "{file}"
    );
    assert!(!file.contains("managed-by"), "{file}");
    let coverage = p.ok("/api/catalog/coverage").await;
    assert_eq!(coverage["providers"][0]["proposed"], 1, "{coverage}");
    // Merged: the next discovery reads the file like any other.
    upstream.set_file("acme", "repo-4", "catalog-info.yaml", Some(&file));
    p.refresh().await;
    let repo4 = p
        .entity("component", "repo-4")
        .await
        .expect("in the catalog once merged");
    assert_eq!(repo4["spec"]["owner"], "group:default/team-4");
    assert_eq!(
        annotation(&repo4, "backstage.io/managed-by-location"),
        "url:https://github.com/acme/repo-4/blob/main/catalog-info.yaml"
    );
}

/// A push delivered while a slow discovery of the same organisation runs
/// (and has already read the old file): in the catalog when answered,
/// and still there after the discovery commits what it read before.
#[tokio::test]
async fn a_webhook_lands_during_a_discovery_and_stays() {
    let (upstream, p) = webhook_portal(10).await;
    let p = std::sync::Arc::new(p);
    // Someone changed repo-0's file without a webhook reaching the
    // portal: the next discovery reads that version (team-5).
    let version = |owner: &str| catalog_file("acme", "repo-0", owner);
    upstream.set_file(
        "acme",
        "repo-0",
        "catalog-info.yaml",
        Some(&version("team-5")),
    );
    // Every request to GitHub takes 150 ms: the discovery (about 20
    // requests) takes seconds, and reads repo-0's file at its start.
    upstream.set_mode(greenroom_upstreams::Mode::Slow(
        std::time::Duration::from_millis(150),
    ));
    upstream.clear_requests();
    let discovery = {
        let p = p.clone();
        tokio::spawn(async move { p.refresh().await })
    };
    // Its requests go one after another: once it asks about repo-1, it
    // has repo-0's file as it was.
    let read = |upstream: &Upstreams| {
        upstream
            .requests()
            .iter()
            .any(|r| r.path.starts_with("/github/repos/acme/repo-1/"))
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !read(&upstream) {
        assert!(
            std::time::Instant::now() < deadline,
            "the discovery never read repo-0"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    // Then a newer change (team-7), delivered while the discovery runs.
    upstream.set_file(
        "acme",
        "repo-0",
        "catalog-info.yaml",
        Some(&version("team-7")),
    );
    let push = deliveries::push("acme", "repo-0", "main", (&[], &["catalog-info.yaml"], &[]));
    let (s, b) = deliver(&p, "push", &push, Some(HOOK_SECRET)).await;
    assert_eq!(s, 200, "{b}");
    assert!(
        !discovery.is_finished(),
        "the discovery was meant to be still running"
    );
    assert_eq!(
        p.entity("component", "repo-0").await.unwrap()["spec"]["owner"],
        "team-7"
    );
    discovery.await.unwrap();
    assert_eq!(
        p.entity("component", "repo-0").await.unwrap()["spec"]["owner"],
        "team-7",
        "the discovery's older read (team-5) won"
    );
}
