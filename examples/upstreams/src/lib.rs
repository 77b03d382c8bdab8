//! Loopback stand-ins for the GitHub and Sentry REST APIs: the routes the
//! first-party plugins use, answered in the formats GitHub's and Sentry's
//! API references document, with live-looking data made up per repository
//! and project (runs and deployments minutes old, open pull requests,
//! unresolved issues with 24-hour stats).
//!
//! `cargo xtask demo` runs it so the demo shows GitHub and Sentry cards
//! without tokens or internet; the tests run it with a [`Mode`] to make the
//! upstream fail, hang, rate-limit or answer garbage. GitHub lives under
//! `/github` (as a GitHub Enterprise base URL would be), Sentry under
//! `/sentry`. Data is made deterministically from the repository's name, so
//! every run of the demo looks alike; actions change it (a merged pull
//! request leaves the list, a re-run is queued).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::{OriginalUri, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde_json::{Value, json};

/// How the upstream behaves; tests switch it.
#[derive(Debug, Clone, PartialEq)]
pub enum Mode {
    Normal,
    /// Every request answers this status with an error body.
    Status(u16),
    /// GitHub's primary rate limit (403, `x-ratelimit-remaining: 0`,
    /// `x-ratelimit-reset`) when `retry_after` is `None`, or its secondary
    /// limit (429 with `retry-after`) otherwise.
    RateLimited {
        reset_in_secs: u64,
        retry_after: Option<u64>,
    },
    /// 200 with a body cut off mid-JSON.
    Malformed,
    /// Never answers.
    Hang,
    /// Answers normally, each request this much later.
    Slow(Duration),
}

/// A request the upstream received.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    /// Path and query.
    pub path: String,
    pub authorization: Option<String>,
    pub body: String,
}

#[derive(Default)]
struct Repo {
    runs: Vec<Value>,
    deployments: Vec<Value>,
    statuses: HashMap<u64, Vec<Value>>,
    pulls: Vec<Value>,
}

struct Inner {
    mode: Mode,
    requests: Vec<Recorded>,
    repos: HashMap<String, Repo>,
    projects: HashMap<String, Vec<Value>>,
    /// Issues per Sentry project, when a test fixes it.
    issue_count: Option<usize>,
    next_id: u64,
    /// Organisations' repositories, for discovery.
    orgs: HashMap<String, Vec<OrgRepo>>,
}

type Shared = Arc<Mutex<Inner>>;

/// A running upstream; stops when dropped.
pub struct Upstreams {
    pub addr: SocketAddr,
    inner: Shared,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Upstreams {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Upstreams {
    /// Serves on `addr` (port 0 for any) from the current tokio runtime.
    pub async fn start(addr: SocketAddr) -> anyhow::Result<Upstreams> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        Ok(Self::serve(listener))
    }

    pub fn serve(listener: tokio::net::TcpListener) -> Upstreams {
        let addr = listener.local_addr().expect("bound");
        let inner = Arc::new(Mutex::new(Inner {
            mode: Mode::Normal,
            requests: Vec::new(),
            repos: HashMap::new(),
            projects: HashMap::new(),
            issue_count: None,
            next_id: 9_000_000_000,
            orgs: HashMap::from([("northwind-labs".to_string(), demo_org())]),
        }));
        let app = router(inner.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Upstreams { addr, inner, task }
    }

    /// The GitHub API base URL, e.g. `http://127.0.0.1:7008/github`.
    pub fn github_url(&self) -> String {
        format!("http://{}/github", self.addr)
    }

    /// The Sentry base URL, e.g. `http://127.0.0.1:7008/sentry`.
    pub fn sentry_url(&self) -> String {
        format!("http://{}/sentry", self.addr)
    }

    /// `http://127.0.0.1:<port>`, the origin to grant.
    pub fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn set_mode(&self, mode: Mode) {
        self.lock().mode = mode;
    }

    /// Makes every Sentry project have `n` unresolved issues.
    pub fn set_issue_count(&self, n: usize) {
        let mut inner = self.lock();
        inner.issue_count = Some(n);
        inner.projects.clear();
    }

    /// Makes `org` have exactly `repos` (listed in this order).
    pub fn set_org(&self, org: &str, repos: Vec<OrgRepo>) {
        self.lock().orgs.insert(org.to_string(), repos);
    }

    /// Writes (`Some`) or deletes (`None`) a file of `org/repo`.
    pub fn set_file(&self, org: &str, repo: &str, path: &str, text: Option<&str>) {
        let mut inner = self.lock();
        if let Some(r) = inner
            .orgs
            .get_mut(org)
            .and_then(|repos| repos.iter_mut().find(|r| r.name == repo))
        {
            match text {
                Some(t) => r.files.insert(path.to_string(), t.to_string()),
                None => r.files.remove(path),
            };
        }
    }

    /// What was written to `path` on `branch` of `org/repo`, if anything.
    pub fn branch_file(&self, org: &str, repo: &str, branch: &str, path: &str) -> Option<String> {
        self.lock()
            .orgs
            .get(org)?
            .iter()
            .find(|r| r.name == repo)?
            .branch_files
            .get(&(branch.to_string(), path.to_string()))
            .cloned()
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.lock().requests.clone()
    }

    pub fn clear_requests(&self) {
        self.lock().requests.clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A repository of an organisation, as the discovery routes ("list
/// organization repositories", "get repository content", "list repository
/// contributors") serve it.
#[derive(Debug, Clone, Default)]
pub struct OrgRepo {
    pub name: String,
    pub description: Option<String>,
    pub language: Option<String>,
    pub topics: Vec<String>,
    pub archived: bool,
    pub fork: bool,
    /// Files on the default branch by path: `catalog-info.yaml`,
    /// `.github/CODEOWNERS`.
    pub files: HashMap<String, String>,
    /// Logins by commits, most first.
    pub contributors: Vec<(String, u64)>,
    /// Files written to other branches ("create or update file
    /// contents"): (branch, path) to text.
    pub branch_files: HashMap<(String, String), String>,
    /// Branches made ("create a reference"): name to the commit.
    pub branches: HashMap<String, String>,
}

impl OrgRepo {
    pub fn new(name: &str) -> OrgRepo {
        OrgRepo {
            name: name.to_string(),
            ..OrgRepo::default()
        }
    }

    pub fn file(mut self, path: &str, text: &str) -> OrgRepo {
        self.files.insert(path.to_string(), text.to_string());
        self
    }
}

/// The catalog file of a generated repository: one Component.
pub fn catalog_file(org: &str, name: &str, owner: &str) -> String {
    format!(
        "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: {name}\n  description: {name}, described in its repository\n  annotations:\n    github.com/project-slug: {org}/{name}\nspec:\n  type: service\n  lifecycle: production\n  owner: {owner}\n"
    )
}

/// `n` repositories of `org` made up alike on every run: three in five
/// (`i % 5 < 3`) have a `catalog-info.yaml` owned by `team-<i % 10>`; of
/// the rest, those with an even `i` have a `.github/CODEOWNERS` naming
/// `@<org>/team-<i % 10>`, the others only contributors (the top one
/// `dev-<i % 7>`). Names are `repo-<i>`.
pub fn generated_org(org: &str, n: usize) -> Vec<OrgRepo> {
    const LANGUAGES: [&str; 5] = ["Rust", "Go", "Python", "TypeScript", "Java"];
    (0..n)
        .map(|i| {
            let name = format!("repo-{i}");
            let team = format!("team-{}", i % 10);
            let mut repo = OrgRepo {
                description: Some(format!("The {name} service")),
                language: Some(LANGUAGES[i % LANGUAGES.len()].to_string()),
                topics: vec![if i % 2 == 0 { "backend" } else { "frontend" }.to_string()],
                contributors: vec![(format!("dev-{}", i % 7), 120), ("dev-x".to_string(), 3)],
                ..OrgRepo::new(&name)
            };
            if i % 5 < 3 {
                repo = repo.file("catalog-info.yaml", &catalog_file(org, &name, &team));
            } else if i % 2 == 0 {
                repo = repo.file(
                    ".github/CODEOWNERS",
                    &format!("# Owners\n*.md @{org}/docs-team\n* @{org}/{team}\n"),
                );
            }
            repo
        })
        .collect()
}

/// The demo's organisation `northwind-labs`: three repositories with a
/// catalog file, six without (for the demo's "Unclaimed software": owners
/// from CODEOWNERS, one from its top committer, one with none).
pub fn demo_org() -> Vec<OrgRepo> {
    const ORG: &str = "northwind-labs";
    let described = |name: &str, language: &str, description: &str| OrgRepo {
        description: Some(description.to_string()),
        language: Some(language.to_string()),
        ..OrgRepo::new(name)
    };
    let owned = |repo: OrgRepo, team: &str| {
        repo.file(
            ".github/CODEOWNERS",
            &format!("# Review rules\n* @{ORG}/{team}\n"),
        )
    };
    vec![
        described(
            "warehouse-robots",
            "Python",
            "Controllers for the warehouse picking robots",
        )
        .file(
            "catalog-info.yaml",
            &catalog_file(ORG, "warehouse-robots", "team-fulfilment"),
        ),
        described(
            "courier-tracking",
            "Go",
            "Tracks parcels across courier networks",
        )
        .file(
            "catalog-info.yaml",
            &catalog_file(ORG, "courier-tracking", "team-fulfilment"),
        ),
        described(
            "search-ranking-lab",
            "Python",
            "Experiments in product search ranking",
        )
        .file(
            "catalog-info.yaml",
            &catalog_file(ORG, "search-ranking-lab", "team-ml"),
        ),
        owned(
            described(
                "price-experiments",
                "Python",
                "A/B tests of prices at checkout",
            ),
            "team-checkout",
        ),
        owned(
            described(
                "checkout-load-tests",
                "JavaScript",
                "k6 load tests of the checkout flow",
            ),
            "team-checkout",
        ),
        owned(
            described(
                "checkout-web-v2",
                "TypeScript",
                "The next checkout-web, in progress",
            ),
            "team-checkout",
        ),
        owned(
            described(
                "fraud-notebooks",
                "Jupyter Notebook",
                "Notebooks behind the fraud rules",
            ),
            "team-risk",
        ),
        OrgRepo {
            contributors: vec![
                ("omar.haddad".to_string(), 57),
                ("daniel.kim".to_string(), 4),
            ],
            ..described("status-bot", "Go", "Posts the status page to chat")
        },
        described(
            "design-tokens",
            "CSS",
            "Colours and spacing shared by the web apps",
        ),
    ]
}

fn router(inner: Shared) -> Router {
    let github = Router::new()
        .route("/orgs/{org}/repos", get(list_org_repos))
        .route("/repos/{owner}/{repo}", get(get_repo))
        .route(
            "/repos/{owner}/{repo}/contents/{*path}",
            get(get_contents).put(put_contents),
        )
        .route(
            "/repos/{owner}/{repo}/git/ref/heads/{*branch}",
            get(get_branch_ref),
        )
        .route("/repos/{owner}/{repo}/git/refs", post(create_ref))
        .route("/repos/{owner}/{repo}/contributors", get(list_contributors))
        .route("/repos/{owner}/{repo}/actions/runs", get(list_runs))
        .route(
            "/repos/{owner}/{repo}/actions/runs/{id}/rerun-failed-jobs",
            post(rerun_failed_jobs),
        )
        .route(
            "/repos/{owner}/{repo}/actions/workflows/{workflow}/dispatches",
            post(dispatch),
        )
        .route(
            "/repos/{owner}/{repo}/actions/workflows/{workflow}/runs",
            get(list_workflow_runs),
        )
        .route("/repos/{owner}/{repo}/deployments", get(list_deployments))
        .route(
            "/repos/{owner}/{repo}/deployments/{id}/statuses",
            get(list_statuses),
        )
        .route(
            "/repos/{owner}/{repo}/pulls",
            get(list_pulls).post(create_pull),
        )
        .route("/repos/{owner}/{repo}/pulls/{number}/merge", put(merge));
    let sentry = Router::new().route("/api/0/projects/{org}/{project}/issues/", get(list_issues));
    Router::new()
        .nest("/github", github)
        .nest("/sentry", sentry)
        .fallback(|| async {
            (
                StatusCode::NOT_FOUND,
                Json(json!({"message": "Not Found", "documentation_url": "https://docs.github.com/rest"})),
            )
        })
        .layer(axum::middleware::from_fn_with_state(inner.clone(), behave))
        .with_state(inner)
}

/// Records every request, then applies the [`Mode`].
async fn behave(
    State(inner): State<Shared>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let (parts, body) = request.into_parts();
    let bytes = axum::body::to_bytes(body, 1 << 20)
        .await
        .unwrap_or_default();
    let mode = {
        let mut inner = inner.lock().unwrap_or_else(|p| p.into_inner());
        inner.requests.push(Recorded {
            method: parts.method.to_string(),
            path: parts
                .uri
                .path_and_query()
                .map(|p| p.to_string())
                .unwrap_or_default(),
            authorization: parts
                .headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
            body: String::from_utf8_lossy(&bytes).into_owned(),
        });
        inner.mode.clone()
    };
    match mode {
        Mode::Normal => {
            next.run(axum::extract::Request::from_parts(parts, bytes.into()))
                .await
        }
        Mode::Slow(delay) => {
            tokio::time::sleep(delay).await;
            next.run(axum::extract::Request::from_parts(parts, bytes.into()))
                .await
        }
        Mode::Status(status) => (
            StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            Json(json!({"message": "Server Error", "detail": "Internal Error"})),
        )
            .into_response(),
        Mode::RateLimited {
            reset_in_secs,
            retry_after,
        } => {
            let reset = now_secs() + reset_in_secs;
            let mut headers = HeaderMap::new();
            headers.insert("x-ratelimit-limit", HeaderValue::from_static("5000"));
            headers.insert("x-ratelimit-resource", HeaderValue::from_static("core"));
            headers.insert("x-ratelimit-reset", reset.into());
            let status = match retry_after {
                Some(secs) => {
                    headers.insert("retry-after", secs.into());
                    headers.insert("x-ratelimit-remaining", HeaderValue::from_static("4000"));
                    StatusCode::TOO_MANY_REQUESTS
                }
                None => {
                    headers.insert("x-ratelimit-remaining", HeaderValue::from_static("0"));
                    headers.insert("x-ratelimit-used", HeaderValue::from_static("5000"));
                    StatusCode::FORBIDDEN
                }
            };
            (
                status,
                headers,
                Json(json!({
                    "message": "API rate limit exceeded for installation ID 4242.",
                    "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"
                })),
            )
                .into_response()
        }
        Mode::Malformed => (
            StatusCode::OK,
            [("content-type", "application/json")],
            "{\"total_count\": 3, \"workflow_runs\": [{\"id\": 1, \"name\": \"CI\"",
        )
            .into_response(),
        Mode::Hang => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            StatusCode::GATEWAY_TIMEOUT.into_response()
        }
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn rfc3339(secs_ago: u64) -> String {
    let at = SystemTime::now() - Duration::from_secs(secs_ago);
    humantime::format_rfc3339_seconds(at).to_string()
}

/// A small deterministic generator (splitmix64) seeded by a name.
struct Dice(u64);

impl Dice {
    fn new(name: &str) -> Dice {
        // FNV-1a.
        let seed = name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
        Dice(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }

    fn sha(&mut self) -> String {
        format!(
            "{:016x}{:016x}{:08x}",
            self.next(),
            self.next(),
            self.next() as u32
        )
    }
}

const PEOPLE: &[&str] = &[
    "amara-okafor",
    "lena-fischer",
    "tomas-novak",
    "priya-raman",
    "jonas-berg",
    "mei-lin",
    "diego-alvarez",
    "sara-haddad",
    "renovate[bot]",
];

fn user(login: &str) -> Value {
    json!({
        "login": login,
        "id": Dice::new(login).below(9_000_000) + 1_000_000,
        "type": if login.ends_with("[bot]") { "Bot" } else { "User" },
        "html_url": format!("https://github.com/{}", login.trim_end_matches("[bot]")),
        "avatar_url": format!("https://avatars.githubusercontent.com/u/{}?v=4", Dice::new(login).below(9_000_000)),
    })
}

/// A workflow run to describe in GitHub's format.
struct Run<'a> {
    id: u64,
    number: u64,
    /// Name, file and id of the workflow.
    workflow: (&'a str, &'a str, u64),
    branch: &'a str,
    status: &'a str,
    conclusion: Option<&'a str>,
    started_secs_ago: u64,
    took_secs: u64,
    actor: &'a str,
    sha: &'a str,
    title: &'a str,
}

fn run_json(slug: &str, run: Run<'_>) -> Value {
    let Run {
        id,
        number,
        workflow,
        branch,
        status,
        conclusion,
        started_secs_ago,
        took_secs,
        actor,
        sha,
        title,
    } = run;
    let (name, file, workflow_id) = workflow;
    let updated = if status == "completed" {
        started_secs_ago.saturating_sub(took_secs)
    } else {
        started_secs_ago.saturating_sub(took_secs.min(started_secs_ago))
    };
    json!({
        "id": id,
        "name": name,
        "node_id": format!("WFR_kwLO{id:x}"),
        "head_branch": branch,
        "head_sha": sha,
        "path": format!(".github/workflows/{file}"),
        "display_title": title,
        "run_number": number,
        "event": if name == "Deploy" { "workflow_dispatch" } else if branch == "main" { "push" } else { "pull_request" },
        "status": status,
        "conclusion": conclusion,
        "workflow_id": workflow_id,
        "check_suite_id": id + 7,
        "url": format!("https://api.github.com/repos/{slug}/actions/runs/{id}"),
        "html_url": format!("https://github.com/{slug}/actions/runs/{id}"),
        "pull_requests": [],
        "created_at": rfc3339(started_secs_ago),
        "updated_at": rfc3339(updated),
        "actor": user(actor),
        "triggering_actor": user(actor),
        "run_attempt": 1,
        "run_started_at": rfc3339(started_secs_ago),
        "jobs_url": format!("https://api.github.com/repos/{slug}/actions/runs/{id}/jobs"),
        "logs_url": format!("https://api.github.com/repos/{slug}/actions/runs/{id}/logs"),
        "head_commit": {"id": sha, "message": title, "timestamp": rfc3339(started_secs_ago + 60), "author": {"name": actor, "email": format!("{actor}@northwind.example")}},
        "repository": {"full_name": slug, "html_url": format!("https://github.com/{slug}")},
    })
}

const TITLES: &[&str] = &[
    "Bump serde from 1.0.210 to 1.0.215",
    "Retry idempotent requests on 503",
    "Add p99 latency alert",
    "Fix rounding of VAT on refunds",
    "Move config to environment variables",
    "Cache tenant lookups for 60 s",
    "Drop Python 2 compatibility shims",
    "Document the on-call runbook",
];

impl Repo {
    /// Runs over the last week on main and two branches, deployments over
    /// the last days (for half the repositories, one minutes ago), and
    /// a few open pull requests.
    fn generate(slug: &str, next_id: &mut u64) -> Repo {
        let mut dice = Dice::new(slug);
        let mut repo = Repo::default();
        let ci = ("CI", "ci.yml", 1000 + dice.below(1000));
        let deploy = ("Deploy", "deploy.yml", 2000 + dice.below(1000));
        let feature = format!(
            "feature/{}",
            dice.pick(&["retries", "alerts", "vat", "cache"])
        );
        let branches = ["main", feature.as_str(), "renovate/all-minor-patch"];
        let flaky = dice.below(4) == 0;
        let mut number = 300 + dice.below(900);
        // Oldest first, so run numbers grow with time.
        let mut plan: Vec<(u64, &str)> = (0..14)
            .map(|i| {
                (
                    7 * 86_400 - i * 40_000 - dice.below(20_000),
                    branches[(i % 3) as usize],
                )
            })
            .collect();
        plan.push((60 + dice.below(600), "main"));
        for (ago, branch) in plan {
            number += 1;
            *next_id += 1;
            let failed = if flaky {
                dice.below(3) == 0
            } else {
                dice.below(10) == 0
            };
            let (status, conclusion) = if ago < 300 {
                ("in_progress", None)
            } else if failed {
                ("completed", Some("failure"))
            } else {
                ("completed", Some("success"))
            };
            let actor = if branch.starts_with("renovate") {
                "renovate[bot]"
            } else {
                dice.pick(PEOPLE)
            };
            let (sha, title) = (dice.sha(), dice.pick(TITLES));
            repo.runs.push(run_json(
                slug,
                Run {
                    id: *next_id,
                    number,
                    workflow: ci,
                    branch,
                    status,
                    conclusion,
                    started_secs_ago: ago,
                    took_secs: 120 + dice.below(600),
                    actor,
                    sha: &sha,
                    title,
                },
            ));
        }
        let recent = dice.below(2) == 0;
        for i in 0..5u64 {
            *next_id += 1;
            let ago = if i == 4 && recent {
                120 + dice.below(1500)
            } else {
                86_400 * (5 - i) + dice.below(20_000)
            };
            let actor = dice.pick(&PEOPLE[..8]);
            let sha = dice.sha();
            let environment = if i % 2 == 0 { "production" } else { "staging" };
            let id = *next_id;
            repo.deployments.push(json!({
                "url": format!("https://api.github.com/repos/{slug}/deployments/{id}"),
                "id": id,
                "node_id": format!("DE_kwDO{id:x}"),
                "sha": sha,
                "ref": "main",
                "task": "deploy",
                "payload": {},
                "original_environment": environment,
                "environment": environment,
                "description": format!("Deploy {} to {environment}", &sha[..7]),
                "creator": user(actor),
                "created_at": rfc3339(ago),
                "updated_at": rfc3339(ago.saturating_sub(90)),
                "statuses_url": format!("https://api.github.com/repos/{slug}/deployments/{id}/statuses"),
                "repository_url": format!("https://api.github.com/repos/{slug}"),
                "transient_environment": false,
                "production_environment": environment == "production",
            }));
            let state = if dice.below(8) == 0 {
                "failure"
            } else {
                "success"
            };
            repo.statuses.insert(id, vec![json!({
                "id": id + 1,
                "state": state,
                "creator": user(actor),
                "description": if state == "success" { "Deployment finished successfully." } else { "Health checks failed; rolled back." },
                "environment": environment,
                "target_url": format!("https://github.com/{slug}/actions/runs/{}", id + 2),
                "log_url": format!("https://github.com/{slug}/actions/runs/{}", id + 2),
                "environment_url": format!("https://{}.{environment}.northwind.example", slug.rsplit('/').next().unwrap_or(slug)),
                "created_at": rfc3339(ago.saturating_sub(90)),
                "updated_at": rfc3339(ago.saturating_sub(90)),
                "deployment_url": format!("https://api.github.com/repos/{slug}/deployments/{id}"),
                "repository_url": format!("https://api.github.com/repos/{slug}"),
            })]);
            // The deploy workflow's run for it.
            *next_id += 1;
            number += 1;
            let conclusion = if state == "success" {
                "success"
            } else {
                "failure"
            };
            repo.runs.push(run_json(
                slug,
                Run {
                    id: *next_id,
                    number,
                    workflow: deploy,
                    branch: "main",
                    status: "completed",
                    conclusion: Some(conclusion),
                    started_secs_ago: ago + 300,
                    took_secs: 280,
                    actor,
                    sha: &sha,
                    title: &format!("Deploy to {environment}"),
                },
            ));
        }
        for i in 0..dice.below(5) {
            *next_id += 1;
            let n = 40 + dice.below(400) + i;
            let author = dice.pick(PEOPLE);
            let title = dice.pick(TITLES);
            let branch = format!(
                "{}/{}",
                author.trim_end_matches("[bot]"),
                title.split(' ').next().unwrap_or("change").to_lowercase()
            );
            let ago = 3600 + dice.below(5 * 86_400);
            repo.pulls.push(json!({
                "url": format!("https://api.github.com/repos/{slug}/pulls/{n}"),
                "id": *next_id,
                "number": n,
                "state": "open",
                "locked": false,
                "title": title,
                "user": user(author),
                "body": "",
                "labels": [],
                "draft": dice.below(5) == 0,
                "created_at": rfc3339(ago),
                "updated_at": rfc3339(ago / 2),
                "closed_at": null,
                "merged_at": null,
                "head": {"label": format!("northwind:{branch}"), "ref": branch, "sha": dice.sha()},
                "base": {"label": "northwind:main", "ref": "main", "sha": dice.sha()},
                "html_url": format!("https://github.com/{slug}/pull/{n}"),
                "author_association": "MEMBER",
                "requested_reviewers": [],
            }));
        }
        repo.runs
            .sort_by_key(|r| std::cmp::Reverse(r["run_started_at"].as_str().map(str::to_string)));
        repo.deployments
            .sort_by_key(|d| std::cmp::Reverse(d["created_at"].as_str().map(str::to_string)));
        repo
    }
}

fn with_repo<T>(inner: &Shared, slug: &str, f: impl FnOnce(&mut Repo, &mut u64) -> T) -> T {
    let mut guard = inner.lock().unwrap_or_else(|p| p.into_inner());
    let inner = &mut *guard;
    let repo = inner
        .repos
        .entry(slug.to_string())
        .or_insert_with(|| Repo::generate(slug, &mut inner.next_id));
    f(repo, &mut inner.next_id)
}

fn page_of(query: &HashMap<String, String>) -> (usize, usize) {
    let per_page = query
        .get("per_page")
        .and_then(|p| p.parse().ok())
        .unwrap_or(30usize)
        .clamp(1, 100);
    let page = query
        .get("page")
        .and_then(|p| p.parse().ok())
        .unwrap_or(1usize)
        .max(1);
    (per_page, (page - 1) * per_page)
}

/// The request's URL without its query, as links in headers carry it.
fn absolute(headers: &HeaderMap, uri: &Uri) -> String {
    let host = headers
        .get("host")
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1");
    format!("http://{host}{}", uri.path())
}

/// GitHub's `Link` header for page-based lists.
fn github_link(url: &str, total: usize, per_page: usize, offset: usize) -> HeaderMap {
    let mut headers = HeaderMap::new();
    if offset + per_page < total {
        let page = offset / per_page + 2;
        let link = format!("<{url}?per_page={per_page}&page={page}>; rel=\"next\"");
        if let Ok(v) = HeaderValue::from_str(&link) {
            headers.insert("link", v);
        }
    }
    headers
}

async fn list_runs(
    State(inner): State<Shared>,
    Path((owner, repo)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> Response {
    runs_list(
        &inner,
        &format!("{owner}/{repo}"),
        None,
        &query,
        &absolute(&headers, &uri),
    )
}

/// "List workflow runs for a workflow" (by file name).
async fn list_workflow_runs(
    State(inner): State<Shared>,
    Path((owner, repo, workflow)): Path<(String, String, String)>,
    Query(query): Query<HashMap<String, String>>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> Response {
    let slug = format!("{owner}/{repo}");
    runs_list(
        &inner,
        &slug,
        Some(&workflow),
        &query,
        &absolute(&headers, &uri),
    )
}

/// A repository's runs (of one workflow file, when given), filtered by
/// `branch` and `status` as GitHub does, one page.
fn runs_list(
    inner: &Shared,
    slug: &str,
    workflow: Option<&str>,
    query: &HashMap<String, String>,
    url: &str,
) -> Response {
    let suffix = workflow.map(|w| format!("/{w}"));
    let runs: Vec<Value> = with_repo(inner, slug, |r, _| {
        r.runs
            .iter()
            .filter(|run| {
                suffix
                    .as_ref()
                    .is_none_or(|s| run["path"].as_str().is_some_and(|p| p.ends_with(s)))
            })
            .filter(|run| {
                query
                    .get("branch")
                    .is_none_or(|b| run["head_branch"] == b.as_str())
            })
            .filter(|run| {
                query
                    .get("status")
                    .is_none_or(|s| run["status"] == s.as_str() || run["conclusion"] == s.as_str())
            })
            .cloned()
            .collect()
    });
    github_page(
        &runs,
        query,
        url,
        |page| json!({"total_count": runs.len(), "workflow_runs": page}),
    )
}

/// One page of `items` (`per_page`, `page`) with GitHub's `Link` header;
/// `body` shapes the page (a bare array, or an object around it).
fn github_page(
    items: &[Value],
    query: &HashMap<String, String>,
    url: &str,
    body: impl FnOnce(&[Value]) -> Value,
) -> Response {
    let (per_page, offset) = page_of(query);
    let page = &items[offset.min(items.len())..(offset + per_page).min(items.len())];
    (
        github_link(url, items.len(), per_page, offset),
        Json(body(page)),
    )
        .into_response()
}

async fn rerun_failed_jobs(
    State(inner): State<Shared>,
    Path((owner, repo, id)): Path<(String, String, u64)>,
) -> Response {
    let slug = format!("{owner}/{repo}");
    with_repo(&inner, &slug, |r, _| {
        let Some(run) = r.runs.iter_mut().find(|run| run["id"] == id) else {
            return (StatusCode::NOT_FOUND, Json(json!({"message": "Not Found"}))).into_response();
        };
        if run["conclusion"] != "failure" {
            return (
                StatusCode::FORBIDDEN,
                Json(json!({"message": "This workflow run cannot be rerun"})),
            )
                .into_response();
        }
        run["status"] = json!("queued");
        run["conclusion"] = Value::Null;
        run["run_attempt"] = json!(run["run_attempt"].as_u64().unwrap_or(1) + 1);
        run["updated_at"] = json!(rfc3339(0));
        (StatusCode::CREATED, Json(json!({}))).into_response()
    })
}

async fn dispatch(
    State(inner): State<Shared>,
    Path((owner, repo, workflow)): Path<(String, String, String)>,
    body: Bytes,
) -> Response {
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"message": "Problems parsing JSON"})),
        )
            .into_response();
    };
    let Some(git_ref) = body["ref"].as_str().map(str::to_string) else {
        return (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(json!({"message": "Invalid request.\n\n\"ref\" wasn't supplied."})),
        )
            .into_response();
    };
    let slug = format!("{owner}/{repo}");
    with_repo(&inner, &slug, |r, next_id| {
        let Some(template) = r
            .runs
            .iter()
            .find(|run| {
                run["path"]
                    .as_str()
                    .is_some_and(|p| p.ends_with(&format!("/{workflow}")))
            })
            .cloned()
        else {
            return (StatusCode::NOT_FOUND, Json(json!({"message": "Not Found"}))).into_response();
        };
        *next_id += 1;
        let mut run = template;
        run["id"] = json!(*next_id);
        run["status"] = json!("queued");
        run["conclusion"] = Value::Null;
        run["head_branch"] = json!(git_ref);
        run["head_sha"] = json!(Dice::new(&format!("{slug}@{next_id}")).sha());
        run["event"] = json!("workflow_dispatch");
        run["created_at"] = json!(rfc3339(0));
        run["run_started_at"] = json!(rfc3339(0));
        run["updated_at"] = json!(rfc3339(0));
        run["html_url"] = json!(format!("https://github.com/{slug}/actions/runs/{next_id}"));
        r.runs.insert(0, run);
        StatusCode::NO_CONTENT.into_response()
    })
}

async fn list_deployments(
    State(inner): State<Shared>,
    Path((owner, repo)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
    OriginalUri(uri): OriginalUri,
    request_headers: HeaderMap,
) -> Response {
    let slug = format!("{owner}/{repo}");
    let list: Vec<Value> = with_repo(&inner, &slug, |r, _| {
        r.deployments
            .iter()
            .filter(|d| {
                query
                    .get("environment")
                    .is_none_or(|e| d["environment"] == e.as_str())
            })
            .cloned()
            .collect()
    });
    github_page(&list, &query, &absolute(&request_headers, &uri), |page| {
        json!(page)
    })
}

async fn list_statuses(
    State(inner): State<Shared>,
    Path((owner, repo, id)): Path<(String, String, u64)>,
) -> Response {
    let slug = format!("{owner}/{repo}");
    with_repo(&inner, &slug, |r, _| match r.statuses.get(&id) {
        Some(list) => Json(json!(list)).into_response(),
        None => (StatusCode::NOT_FOUND, Json(json!({"message": "Not Found"}))).into_response(),
    })
}

async fn list_pulls(
    State(inner): State<Shared>,
    Path((owner, repo)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
    OriginalUri(uri): OriginalUri,
    request_headers: HeaderMap,
) -> Response {
    let slug = format!("{owner}/{repo}");
    let state = query
        .get("state")
        .map_or("open", String::as_str)
        .to_string();
    let list: Vec<Value> = with_repo(&inner, &slug, |r, _| {
        r.pulls
            .iter()
            .filter(|p| state == "all" || p["state"] == state.as_str())
            .cloned()
            .collect()
    });
    github_page(&list, &query, &absolute(&request_headers, &uri), |page| {
        json!(page)
    })
}

async fn merge(
    State(inner): State<Shared>,
    method: Method,
    Path((owner, repo, number)): Path<(String, String, u64)>,
    body: Bytes,
) -> Response {
    debug_assert_eq!(method, Method::PUT);
    let body: Value = serde_json::from_slice(&body).unwrap_or(json!({}));
    let slug = format!("{owner}/{repo}");
    with_repo(&inner, &slug, |r, _| {
        let Some(pull) = r.pulls.iter_mut().find(|p| p["number"] == number) else {
            return (StatusCode::NOT_FOUND, Json(json!({"message": "Not Found"}))).into_response();
        };
        if pull["state"] != "open" || pull["draft"] == true {
            return (
                StatusCode::METHOD_NOT_ALLOWED,
                Json(json!({"message": "Pull Request is not mergeable", "documentation_url": "https://docs.github.com/rest/pulls/pulls#merge-a-pull-request"})),
            )
                .into_response();
        }
        if let Some(sha) = body["sha"].as_str()
            && pull["head"]["sha"] != sha
        {
            return (
                StatusCode::CONFLICT,
                Json(
                    json!({"message": "Head branch was modified. Review and try the merge again."}),
                ),
            )
                .into_response();
        }
        pull["state"] = json!("closed");
        pull["merged_at"] = json!(rfc3339(0));
        let sha = Dice::new(&format!("{slug}#{number}")).sha();
        Json(json!({"sha": sha, "merged": true, "message": "Pull Request successfully merged"}))
            .into_response()
    })
}

const CULPRITS: &[(&str, &str, &str)] = &[
    (
        "TimeoutError",
        "upstream request timed out after 5000ms",
        "app.clients.http in send",
    ),
    ("KeyError", "'currency'", "app.pricing.rates in convert"),
    (
        "IntegrityError",
        "duplicate key value violates unique constraint \"orders_pkey\"",
        "app.orders.repository in insert",
    ),
    (
        "TypeError",
        "Cannot read properties of undefined (reading 'items')",
        "src/cart/summary.ts in render",
    ),
    (
        "ConnectionResetError",
        "[Errno 104] Connection reset by peer",
        "app.queue.consumer in poll",
    ),
    (
        "ValueError",
        "invalid literal for int() with base 10: ''",
        "app.api.params in page_size",
    ),
    (
        "PaymentDeclined",
        "card_declined: insufficient_funds",
        "app.payments.stripe in capture",
    ),
    (
        "OOMKilled",
        "container exceeded its memory limit",
        "worker.main in run",
    ),
    (
        "DeadlineExceeded",
        "context deadline exceeded",
        "internal/grpc/client.go in Invoke",
    ),
];

fn issues_for(org: &str, project: &str, fixed: Option<usize>) -> Vec<Value> {
    let mut dice = Dice::new(&format!("{org}/{project}"));
    let n = fixed.unwrap_or_else(|| dice.below(7) as usize);
    let short = project.to_uppercase();
    let project_id = dice.below(9000) + 1000;
    let hour = now_secs() / 3600 * 3600;
    let mut issues: Vec<Value> = (0..n)
        .map(|i| {
            let (kind, message, culprit) =
                CULPRITS[(dice.below(CULPRITS.len() as u64) as usize + i) % CULPRITS.len()];
            let id = 4_000_000_000 + dice.below(900_000_000);
            let stats: Vec<Value> = (0..24u64)
                .rev()
                .map(|h| json!([hour - h * 3600, dice.below(if i == 0 { 120 } else { 30 })]))
                .collect();
            let events_24h: u64 = stats.iter().filter_map(|s| s[1].as_u64()).sum();
            let count = events_24h + dice.below(5000);
            json!({
                "annotations": [],
                "assignedTo": null,
                "count": count.to_string(),
                "culprit": culprit,
                "firstSeen": rfc3339(86_400 * (1 + dice.below(30))),
                "hasSeen": dice.below(2) == 0,
                "id": id.to_string(),
                "isBookmarked": false,
                "isPublic": false,
                "isSubscribed": true,
                "lastSeen": rfc3339(60 + dice.below(7200)),
                "level": if kind == "OOMKilled" { "fatal" } else { "error" },
                "logger": null,
                "metadata": {"type": kind, "value": message, "title": format!("{kind}: {message}")},
                "numComments": dice.below(4),
                "permalink": format!("https://sentry.io/organizations/{org}/issues/{id}/"),
                "project": {"id": project_id.to_string(), "name": project, "slug": project},
                "shareId": null,
                "shortId": format!("{short}-{}", 1 + dice.below(400)),
                "stats": {"24h": stats},
                "status": "unresolved",
                "statusDetails": {},
                "subscriptionDetails": null,
                "title": format!("{kind}: {message}"),
                "type": "error",
                "userCount": dice.below(300),
            })
        })
        .collect();
    issues.sort_by_key(|i| {
        std::cmp::Reverse(i["count"].as_str().and_then(|c| c.parse::<u64>().ok()))
    });
    issues
}

/// Sentry's "List a Project's Issues": cursor paging through the `Link`
/// header (`rel="next"; results="true"; cursor="0:100:0"`).
async fn list_issues(
    State(inner): State<Shared>,
    Path((org, project)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
    OriginalUri(uri): OriginalUri,
    request_headers: HeaderMap,
) -> Response {
    let issues = {
        let mut guard = inner.lock().unwrap_or_else(|p| p.into_inner());
        let fixed = guard.issue_count;
        guard
            .projects
            .entry(format!("{org}/{project}"))
            .or_insert_with(|| issues_for(&org, &project, fixed))
            .clone()
    };
    let limit = query
        .get("limit")
        .and_then(|l| l.parse().ok())
        .unwrap_or(100usize)
        .clamp(1, 100);
    let offset = query
        .get("cursor")
        .and_then(|c| c.split(':').nth(1))
        .and_then(|o| o.parse().ok())
        .unwrap_or(0usize);
    let page: Vec<&Value> = issues.iter().skip(offset).take(limit).collect();
    let base = absolute(&request_headers, &uri);
    let more = offset + limit < issues.len();
    let link = format!(
        "<{base}?&cursor=0:{prev}:1>; rel=\"previous\"; results=\"{has_prev}\"; cursor=\"0:{prev}:1\", <{base}?&cursor=0:{next}:0>; rel=\"next\"; results=\"{more}\"; cursor=\"0:{next}:0\"",
        prev = offset.saturating_sub(limit),
        has_prev = offset > 0,
        next = offset + limit,
    );
    let mut headers = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_str(&link) {
        headers.insert("link", v);
    }
    (headers, Json(json!(page))).into_response()
}

fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(json!({
            "message": "Not Found",
            "documentation_url": "https://docs.github.com/rest",
            "status": "404"
        })),
    )
        .into_response()
}

fn repo_json(org: &str, id: usize, r: &OrgRepo) -> Value {
    json!({
        "id": 500_000 + id,
        "node_id": format!("R_kgDO{id:08}"),
        "name": r.name,
        "full_name": format!("{org}/{}", r.name),
        "private": true,
        "owner": {"login": org, "id": 4242, "type": "Organization"},
        "html_url": format!("https://github.com/{org}/{}", r.name),
        "description": r.description,
        "fork": r.fork,
        "url": format!("https://api.github.com/repos/{org}/{}", r.name),
        "language": r.language,
        "topics": r.topics,
        "archived": r.archived,
        "disabled": false,
        "visibility": "private",
        "default_branch": "main",
        "pushed_at": rfc3339(3600),
        "created_at": rfc3339(86_400 * 400),
        "updated_at": rfc3339(7200),
    })
}

/// "List organization repositories".
async fn list_org_repos(
    State(inner): State<Shared>,
    Path(org): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> Response {
    let inner = inner.lock().unwrap_or_else(|p| p.into_inner());
    let Some(repos) = inner.orgs.get(&org) else {
        return not_found();
    };
    let (per_page, offset) = page_of(&query);
    let page: Vec<Value> = repos
        .iter()
        .enumerate()
        .skip(offset)
        .take(per_page)
        .map(|(i, r)| repo_json(&org, i, r))
        .collect();
    (
        github_link(&absolute(&headers, &uri), repos.len(), per_page, offset),
        Json(Value::Array(page)),
    )
        .into_response()
}

/// "Get repository content" of a file: its text with the raw media type
/// (`application/vnd.github.raw+json`), else the JSON object with the
/// content in base64.
async fn get_contents(
    State(inner): State<Shared>,
    Path((owner, repo, path)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Response {
    use base64::Engine;
    let inner = inner.lock().unwrap_or_else(|p| p.into_inner());
    let Some(text) = inner
        .orgs
        .get(&owner)
        .and_then(|repos| repos.iter().find(|r| r.name == repo))
        .and_then(|r| r.files.get(&path))
    else {
        return not_found();
    };
    let raw = headers
        .get("accept")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("raw"));
    if raw {
        return (
            [(
                "content-type",
                "application/vnd.github.raw+json; charset=utf-8",
            )],
            text.clone(),
        )
            .into_response();
    }
    let name = path.rsplit('/').next().unwrap_or(&path);
    Json(json!({
        "type": "file",
        "encoding": "base64",
        "size": text.len(),
        "name": name,
        "path": path,
        "content": base64::engine::general_purpose::STANDARD.encode(text),
        "sha": format!("{:040x}", text.len()),
        "html_url": format!("https://github.com/{owner}/{repo}/blob/main/{path}"),
        "download_url": format!("https://raw.githubusercontent.com/{owner}/{repo}/main/{path}"),
    }))
    .into_response()
}

/// "List repository contributors", most commits first.
async fn list_contributors(
    State(inner): State<Shared>,
    Path((owner, repo)): Path<(String, String)>,
) -> Response {
    let inner = inner.lock().unwrap_or_else(|p| p.into_inner());
    let Some(r) = inner
        .orgs
        .get(&owner)
        .and_then(|repos| repos.iter().find(|r| r.name == repo))
    else {
        return not_found();
    };
    Json(Value::Array(
        r.contributors
            .iter()
            .enumerate()
            .map(|(i, (login, n))| {
                json!({"login": login, "id": 7000 + i, "type": "User", "contributions": n})
            })
            .collect(),
    ))
    .into_response()
}

/// Webhook deliveries as GitHub sends them: the event name (the
/// `X-GitHub-Event` header), the body, and `X-Hub-Signature-256`
/// (`sha256=` and the hex HMAC-SHA256 of the body with the webhook's
/// secret).
pub mod deliveries {
    use hmac::{KeyInit, Mac};
    use serde_json::{Value, json};

    /// `X-Hub-Signature-256` of `body` with `secret`.
    pub fn signature(secret: &str, body: &[u8]) -> String {
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes())
            .expect("HMAC takes keys of any length");
        mac.update(body);
        let bytes = mac.finalize().into_bytes();
        format!(
            "sha256={}",
            bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
        )
    }

    fn repository(org: &str, name: &str) -> Value {
        json!({
            "id": 500_001,
            "name": name,
            "full_name": format!("{org}/{name}"),
            "private": true,
            "owner": {"login": org, "type": "Organization"},
            "html_url": format!("https://github.com/{org}/{name}"),
            "default_branch": "main",
            "master_branch": "main",
        })
    }

    /// A `push` of one commit to `branch` that adds, modifies and removes
    /// the given paths.
    pub fn push(
        org: &str,
        name: &str,
        branch: &str,
        (added, modified, removed): (&[&str], &[&str], &[&str]),
    ) -> Value {
        let commit = json!({
            "id": "b1d3c0ffee5e7a11ab1e0000000000000000cafe",
            "message": "Update the catalog file",
            "timestamp": "2026-12-07T10:00:00Z",
            "author": {"name": "Dan", "username": "dan"},
            "added": added,
            "modified": modified,
            "removed": removed,
        });
        json!({
            "ref": format!("refs/heads/{branch}"),
            "before": "0000000000000000000000000000000000000000",
            "after": "b1d3c0ffee5e7a11ab1e0000000000000000cafe",
            "repository": repository(org, name),
            "pusher": {"name": "dan", "email": "dan@example.com"},
            "sender": {"login": "dan", "type": "User"},
            "commits": [commit.clone()],
            "head_commit": commit,
        })
    }

    /// A `repository` event (`created`, `deleted`, `archived`, ...).
    pub fn repository_event(org: &str, name: &str, action: &str) -> Value {
        json!({
            "action": action,
            "repository": repository(org, name),
            "sender": {"login": "dan", "type": "User"},
        })
    }

    /// A `deployment_status` event: deployment `id` of `sha` to
    /// `environment` is now `state` (`success`, `failure`, `in_progress`).
    pub fn deployment_status(
        org: &str,
        name: &str,
        (id, sha, environment, state): (u64, &str, &str, &str),
        created_at: &str,
    ) -> Value {
        json!({
            "action": "created",
            "deployment_status": {
                "id": id * 10 + 1,
                "state": state,
                "environment": environment,
                "target_url": format!("https://github.com/{org}/{name}/deployments"),
                "log_url": format!("https://github.com/{org}/{name}/actions/runs/{id}"),
                "created_at": created_at,
                "creator": {"login": "deploy-bot", "type": "Bot"},
            },
            "deployment": {
                "id": id,
                "sha": sha,
                "ref": "main",
                "environment": environment,
                "created_at": created_at,
                "creator": {"login": "dan", "type": "User"},
            },
            "repository": repository(org, name),
            "sender": {"login": "deploy-bot", "type": "Bot"},
        })
    }
}

/// An organisation's repository, changed by `f`; `None` when there is none.
fn with_org_repo<T>(
    inner: &Shared,
    owner: &str,
    repo: &str,
    f: impl FnOnce(usize, &mut OrgRepo) -> T,
) -> Option<T> {
    let mut inner = inner.lock().unwrap_or_else(|p| p.into_inner());
    let repos = inner.orgs.get_mut(owner)?;
    let (i, r) = repos.iter_mut().enumerate().find(|(_, r)| r.name == repo)?;
    Some(f(i, r))
}

/// The head commit of an organisation's default branch, made up.
const MAIN_SHA: &str = "aa11bb22cc33dd44ee55ff6600778899aabbccdd";

/// "Get a repository".
async fn get_repo(
    State(inner): State<Shared>,
    Path((owner, repo)): Path<(String, String)>,
) -> Response {
    with_org_repo(&inner, &owner, &repo, |i, r| {
        Json(repo_json(&owner, i, r)).into_response()
    })
    .unwrap_or_else(not_found)
}

/// "Get a reference" of a branch: the default one, or one made here.
async fn get_branch_ref(
    State(inner): State<Shared>,
    Path((owner, repo, branch)): Path<(String, String, String)>,
) -> Response {
    with_org_repo(&inner, &owner, &repo, |_, r| {
        let sha = match branch.as_str() {
            "main" => Some(MAIN_SHA.to_string()),
            other => r.branches.get(other).cloned(),
        };
        match sha {
            Some(sha) => Json(json!({
                "ref": format!("refs/heads/{branch}"),
                "object": {"sha": sha, "type": "commit"},
            }))
            .into_response(),
            None => not_found(),
        }
    })
    .unwrap_or_else(not_found)
}

/// "Create a reference": a branch; 422 when it exists.
async fn create_ref(
    State(inner): State<Shared>,
    Path((owner, repo)): Path<(String, String)>,
    Json(body): Json<Value>,
) -> Response {
    let (Some(name), Some(sha)) = (
        body["ref"]
            .as_str()
            .and_then(|r| r.strip_prefix("refs/heads/")),
        body["sha"].as_str(),
    ) else {
        return (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(json!({"message": "Invalid request.", "status": "422"})),
        )
            .into_response();
    };
    with_org_repo(&inner, &owner, &repo, |_, r| {
        if r.branches.contains_key(name) {
            return (
                StatusCode::UNPROCESSABLE_ENTITY,
                Json(json!({"message": "Reference already exists", "status": "422"})),
            )
                .into_response();
        }
        r.branches.insert(name.to_string(), sha.to_string());
        (
            StatusCode::CREATED,
            Json(json!({"ref": body["ref"], "object": {"sha": sha, "type": "commit"}})),
        )
            .into_response()
    })
    .unwrap_or_else(not_found)
}

/// "Create or update file contents" on a branch (`content` in base64).
async fn put_contents(
    State(inner): State<Shared>,
    Path((owner, repo, path)): Path<(String, String, String)>,
    Json(body): Json<Value>,
) -> Response {
    use base64::Engine;
    let text = body["content"]
        .as_str()
        .and_then(|c| base64::engine::general_purpose::STANDARD.decode(c).ok())
        .and_then(|b| String::from_utf8(b).ok());
    let (Some(text), Some(branch), Some(_message)) =
        (text, body["branch"].as_str(), body["message"].as_str())
    else {
        return (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(json!({"message": "Invalid request: message, content (base64) and branch are required", "status": "422"})),
        )
            .into_response();
    };
    with_org_repo(&inner, &owner, &repo, |_, r| {
        if !r.branches.contains_key(branch) {
            return not_found();
        }
        r.branch_files
            .insert((branch.to_string(), path.clone()), text.clone());
        (
            StatusCode::CREATED,
            Json(json!({
                "content": {"name": path.rsplit('/').next(), "path": path, "size": text.len(), "type": "file",
                    "html_url": format!("https://github.com/{owner}/{repo}/blob/{branch}/{path}")},
                "commit": {"sha": "c0mm17c0mm17c0mm17c0mm17c0mm17c0mm17c0mm", "message": body["message"]},
            })),
        )
            .into_response()
    })
    .unwrap_or_else(not_found)
}

/// "Create a pull request": listed with the repository's open ones.
async fn create_pull(
    State(inner): State<Shared>,
    Path((owner, repo)): Path<(String, String)>,
    Json(body): Json<Value>,
) -> Response {
    let (Some(title), Some(head), Some(base)) = (
        body["title"].as_str(),
        body["head"].as_str(),
        body["base"].as_str(),
    ) else {
        return (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(json!({"message": "Validation Failed: title, head and base are required", "status": "422"})),
        )
            .into_response();
    };
    let known = with_org_repo(&inner, &owner, &repo, |_, r| r.branches.contains_key(head));
    if known != Some(true) {
        return (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(json!({"message": format!("Validation Failed: head {head} is not a branch"), "status": "422"})),
        )
            .into_response();
    }
    let slug = format!("{owner}/{repo}");
    let pull = with_repo(&inner, &slug, |r, next_id| {
        *next_id += 1;
        let n = 1000 + r.pulls.len() as u64;
        let pull = json!({
            "url": format!("https://api.github.com/repos/{slug}/pulls/{n}"),
            "id": *next_id,
            "number": n,
            "state": "open",
            "title": title,
            "body": body["body"],
            "user": user("greenroom[bot]"),
            "draft": false,
            "created_at": rfc3339(0),
            "updated_at": rfc3339(0),
            "merged_at": null,
            "head": {"ref": head, "sha": "c0mm17c0mm17c0mm17c0mm17c0mm17c0mm17c0mm"},
            "base": {"ref": base, "sha": MAIN_SHA},
            "html_url": format!("https://github.com/{slug}/pull/{n}"),
        });
        r.pulls.insert(0, pull.clone());
        pull
    });
    (StatusCode::CREATED, Json(pull)).into_response()
}
