//! GitHub: the latest workflow run per branch on an entity's page,
//! deployments and deploy-workflow runs for the activity feed, the facts
//! `ci.last_status`, `ci.success_rate_7d` and `github.open_pull_requests`,
//! and actions (re-run failed jobs, dispatch the deploy workflow, merge a
//! pull request). Works with github.com and GitHub Enterprise; see README.md.

mod api;
mod claim;
mod discover;
mod webhook;

use greenroom_plugin_sdk::host;
use greenroom_plugin_sdk::time::{ago, duration, parse_rfc3339_ms};
use greenroom_plugin_sdk::{
    Action, Badge, Card, CardBuilder, Cell, Entity, Event, Fact, FactValue, Input, InputField,
    InputKind, Link, Plugin, PluginError, ProviderPage, TextInput, Tone, WebhookOutcome,
    input_text, manifest, register_plugin,
};
use serde_json::{Value, json};

/// A branch, tag or commit as the deploy form accepts it.
const GIT_REF: &str = "[A-Za-z0-9._/-]+";
/// The deploy form's workflow inputs: `name=value` lines.
const WORKFLOW_INPUTS: &str =
    r"[A-Za-z_][A-Za-z0-9_-]*=[^\n]*(\n[A-Za-z_][A-Za-z0-9_-]*=[^\n]*)*\n?";

use api::{Repo, Settings};

manifest!(
    r#"{"id": "github", "name": "GitHub", "version": "0.1.0",
        "description": "Workflow runs, deployments, pull requests and CI facts from GitHub or GitHub Enterprise, with re-run, deploy and merge actions",
        "hosts": ["*"], "secrets": ["GITHUB_TOKEN"], "kv_quota": 65536, "applies_to": {"annotations": ["github.com/project-slug"]}}"#
);

const ANNOTATION: &str = "github.com/project-slug";

/// Branches on the card.
const BRANCHES: usize = 8;

/// Open pull requests offered for merging.
const MERGEABLE: usize = 5;

const DAY_MS: u64 = 86_400_000;

struct GitHub;

fn repo_of(entity: &Entity) -> Result<Repo, PluginError> {
    let slug = entity
        .annotation(ANNOTATION)
        .ok_or(PluginError::NotApplicable)?;
    Repo::new(slug.trim(), Settings::load())
}

/// A run's status as a badge: passed, failed, running, queued, ….
fn run_badge(run: &Value) -> Badge {
    let (label, tone) = match (run["status"].as_str(), run["conclusion"].as_str()) {
        (Some("completed"), Some("success")) => ("passed", Tone::Good),
        (Some("completed"), Some("failure")) => ("failed", Tone::Critical),
        (Some("completed"), Some("timed_out")) => ("timed out", Tone::Critical),
        (Some("completed"), Some("startup_failure")) => ("startup failure", Tone::Critical),
        (Some("completed"), Some("action_required")) => ("action required", Tone::Warning),
        (Some("completed"), Some("cancelled")) => ("cancelled", Tone::Neutral),
        (Some("completed"), Some("skipped")) => ("skipped", Tone::Neutral),
        (Some("completed"), Some("neutral")) => ("neutral", Tone::Neutral),
        (Some("in_progress"), _) => ("running", Tone::Info),
        (Some("queued" | "waiting" | "pending" | "requested"), _) => ("queued", Tone::Info),
        _ => ("unknown", Tone::Neutral),
    };
    Badge {
        label: label.into(),
        tone,
    }
}

fn time_of(value: &Value) -> Option<u64> {
    value.as_str().and_then(parse_rfc3339_ms)
}

/// How long a run took, or has been running.
fn run_duration(run: &Value, now: u64) -> String {
    let Some(started) = time_of(&run["run_started_at"]).or_else(|| time_of(&run["created_at"]))
    else {
        return String::new();
    };
    if run["status"] == "completed" {
        time_of(&run["updated_at"])
            .map(|end| duration(end.saturating_sub(started)))
            .unwrap_or_default()
    } else {
        format!("{} so far", duration(now.saturating_sub(started)))
    }
}

/// The workflow file a run belongs to (`deploy.yml`), from its `path`
/// (`.github/workflows/deploy.yml`, sometimes with `@ref`).
fn workflow_file(run: &Value) -> &str {
    let path = run["path"].as_str().unwrap_or_default();
    let path = path.split('@').next().unwrap_or(path);
    path.rsplit('/').next().unwrap_or(path)
}

fn is_failed(run: &Value) -> bool {
    run["status"] == "completed"
        && matches!(
            run["conclusion"].as_str(),
            Some("failure" | "timed_out" | "startup_failure")
        )
}

/// The latest run per branch, the default branch first.
fn latest_per_branch<'a>(runs: &'a [Value], default_branch: &str) -> Vec<&'a Value> {
    let mut seen: Vec<&str> = Vec::new();
    let mut latest: Vec<&Value> = Vec::new();
    // Runs come newest first.
    for run in runs {
        let branch = run["head_branch"].as_str().unwrap_or_default();
        if !seen.contains(&branch) {
            seen.push(branch);
            latest.push(run);
        }
    }
    latest.sort_by_key(|r| r["head_branch"] != default_branch);
    latest.truncate(BRANCHES);
    latest
}

impl Plugin for GitHub {
    fn cards(entity: Entity) -> Result<Vec<Card>, PluginError> {
        let repo = repo_of(&entity)?;
        let runs = repo.runs("per_page=50")?;
        let now = host::now_ms();
        let mut card = CardBuilder::new("github-runs", "GitHub Actions");
        if runs.is_empty() {
            card = card.text("No workflow runs yet.");
        } else {
            let rows = latest_per_branch(&runs, &repo.settings.deploy_ref)
                .into_iter()
                .map(|run| {
                    let number = run["run_number"].as_u64().unwrap_or(0);
                    let when = time_of(&run["created_at"])
                        .map(|t| ago(t, now))
                        .unwrap_or_default();
                    vec![
                        Cell::Text(run["head_branch"].as_str().unwrap_or("?").to_string()),
                        Cell::Text(run["name"].as_str().unwrap_or("?").to_string()),
                        Cell::Badge(run_badge(run)),
                        Cell::Text(run_duration(run, now)),
                        Cell::Text(run["actor"]["login"].as_str().unwrap_or("").to_string()),
                        Cell::Link(Link {
                            label: format!("#{number} {when}"),
                            href: run["html_url"].as_str().unwrap_or_default().to_string(),
                        }),
                    ]
                })
                .collect();
            card = card.table(
                &["Branch", "Workflow", "Status", "Duration", "Actor", "Run"],
                rows,
            );
        }
        Ok(vec![
            card.link("All workflow runs", &repo.web_url("actions"))
                .build(),
        ])
    }

    fn facts(entity: Entity) -> Result<Vec<Fact>, PluginError> {
        let repo = repo_of(&entity)?;
        let now = host::now_ms();
        let branch = &repo.settings.deploy_ref;
        let week_ago = greenroom_plugin_sdk::time::format_rfc3339(now - 7 * DAY_MS);
        let runs = repo.runs(&format!(
            "branch={branch}&created=%3E%3D{}&per_page=100",
            &week_ago[..10]
        ))?;
        let runs_url = repo.web_url(&format!("actions?query=branch%3A{branch}"));
        let mut facts = Vec::new();
        // The default branch's CI, deploy runs aside.
        let ci: Vec<&Value> = runs
            .iter()
            .filter(|r| workflow_file(r) != repo.settings.deploy_workflow)
            .filter(|r| r["head_branch"] == branch.as_str())
            .collect();
        if let Some(last) = ci.iter().find(|r| r["status"] == "completed") {
            facts.push(Fact {
                name: "ci.last_status".into(),
                value: FactValue::Text(last["conclusion"].as_str().unwrap_or("unknown").into()),
                url: last["html_url"].as_str().map(str::to_string),
            });
        }
        let decided: Vec<&&Value> = ci
            .iter()
            .filter(|r| r["status"] == "completed")
            .filter(|r| time_of(&r["created_at"]).is_some_and(|t| t + 7 * DAY_MS >= now))
            .filter(|r| !matches!(r["conclusion"].as_str(), Some("cancelled" | "skipped")))
            .collect();
        if !decided.is_empty() {
            let passed = decided
                .iter()
                .filter(|r| r["conclusion"] == "success")
                .count();
            let rate = (passed as f64 * 1000.0 / decided.len() as f64).round() / 10.0;
            facts.push(Fact {
                name: "ci.success_rate_7d".into(),
                value: FactValue::Number(rate),
                url: Some(runs_url),
            });
        }
        let open = repo.open_pulls()?;
        facts.push(Fact {
            name: "github.open_pull_requests".into(),
            value: FactValue::Number(open.len() as f64),
            url: Some(repo.web_url("pulls")),
        });
        Ok(facts)
    }

    /// Every repository of the location's organisation, a page at a
    /// time (see `discover.rs`).
    fn discover(
        _name: String,
        config: String,
        cursor: Option<String>,
    ) -> Result<ProviderPage, PluginError> {
        discover::discover(&config, cursor)
    }

    /// Pushes, repository changes and deployment statuses, as GitHub
    /// delivers them (see `webhook.rs`).
    fn webhook(event: String, payload: String) -> Result<WebhookOutcome, PluginError> {
        webhook::handle(&event, &payload)
    }

    fn events(since_ms: u64) -> Result<Vec<Event>, PluginError> {
        let settings = Settings::load();
        let entities = host::query(&format!("metadata.annotations.{ANNOTATION}"), 500);
        if entities.is_empty() {
            return Ok(Vec::new());
        }
        // Repositories are visited round-robin within a time budget, so a
        // large catalog is covered over several polls, never in one call
        // that outlasts its deadline.
        let started = host::now_ms();
        let cursor = host::kv_get("events-cursor")
            .and_then(|v| String::from_utf8(v).ok()?.parse::<usize>().ok())
            .unwrap_or(0)
            % entities.len();
        let mut events = Vec::new();
        let mut visited = 0;
        let mut failures = Vec::new();
        while visited < entities.len() {
            if visited > 0 && host::now_ms() - started > settings.events_budget_ms {
                break;
            }
            let entity = &entities[(cursor + visited) % entities.len()];
            visited += 1;
            let Some(slug) = entity.annotation(ANNOTATION) else {
                continue;
            };
            let repo = match Repo::new(slug.trim(), settings.clone()) {
                Ok(r) => r,
                Err(_) => continue,
            };
            match repo_events(&repo, entity, since_ms) {
                Ok(mut found) => events.append(&mut found),
                Err(e) => {
                    let rate_limited =
                        matches!(&e, PluginError::Upstream(m) if m.contains("rate limit"));
                    failures.push((slug, e));
                    if rate_limited {
                        break;
                    }
                }
            }
        }
        let _ = host::kv_set(
            "events-cursor",
            ((cursor + visited) % entities.len()).to_string().as_bytes(),
            None,
        );
        // Nothing found and every repository failed: say why. Otherwise
        // the failures are logged and the events found are kept.
        if events.is_empty() && !failures.is_empty() && failures.len() == visited {
            let (slug, e) = failures.swap_remove(0);
            return Err(match e {
                PluginError::Upstream(m) => PluginError::Upstream(format!("{slug}: {m}")),
                other => other,
            });
        }
        for (slug, e) in failures {
            host::log(
                host::Level::Warn,
                &format!("events of {slug} skipped: {e:?}"),
            );
        }
        Ok(events)
    }

    fn actions(entity: Entity) -> Vec<Action> {
        let Ok(repo) = repo_of(&entity) else {
            return Vec::new();
        };
        let mut actions = Vec::new();
        if let Ok(runs) = repo.runs("per_page=50") {
            for run in latest_per_branch(&runs, &repo.settings.deploy_ref)
                .into_iter()
                .filter(|r| is_failed(r))
            {
                let id = run["id"].as_u64().unwrap_or(0);
                actions.push(Action {
                    id: format!("rerun:{id}"),
                    label: format!(
                        "Re-run failed jobs of {} #{} on {}",
                        run["name"].as_str().unwrap_or("workflow"),
                        run["run_number"].as_u64().unwrap_or(0),
                        run["head_branch"].as_str().unwrap_or("?")
                    ),
                    description: "Runs the jobs that failed again, with the same commit.".into(),
                    confirm: true,
                    inputs: Vec::new(),
                });
            }
        }
        actions.push(Action {
            id: "deploy".into(),
            label: format!("Deploy {}", repo.settings.deploy_ref),
            description: format!(
                "Starts the workflow {} on {} or another branch or tag.",
                repo.settings.deploy_workflow, repo.settings.deploy_ref
            ),
            confirm: true,
            inputs: vec![
                InputField {
                    name: "ref".into(),
                    label: "Branch or tag".into(),
                    help: None,
                    required: true,
                    kind: InputKind::Text(TextInput {
                        default: Some(repo.settings.deploy_ref.clone()),
                        max_length: Some(255),
                        pattern: Some(GIT_REF.into()),
                        multiline: false,
                    }),
                },
                InputField {
                    name: "inputs".into(),
                    label: "Workflow inputs".into(),
                    help: Some(
                        "One name=value per line, as `gh workflow run -f` takes them.".into(),
                    ),
                    required: false,
                    kind: InputKind::Text(TextInput {
                        default: None,
                        max_length: Some(4000),
                        pattern: Some(WORKFLOW_INPUTS.into()),
                        multiline: true,
                    }),
                },
            ],
        });
        if let Ok(pulls) = repo.open_pulls() {
            for pull in pulls.iter().filter(|p| p["draft"] != true).take(MERGEABLE) {
                let number = pull["number"].as_u64().unwrap_or(0);
                actions.push(Action {
                    id: format!(
                        "merge:{number}:{}",
                        pull["head"]["sha"].as_str().unwrap_or_default()
                    ),
                    label: format!(
                        "Merge #{number}: {}",
                        pull["title"].as_str().unwrap_or_default()
                    ),
                    description: format!(
                        "Merges the pull request by {} ({}), if GitHub finds it mergeable and its head has not moved.",
                        pull["user"]["login"].as_str().unwrap_or("?"),
                        repo.settings.merge_method
                    ),
                    confirm: true,
                    inputs: Vec::new(),
                });
            }
        }
        actions
    }

    fn run_action(
        id: String,
        entity: Entity,
        inputs: Vec<Input>,
        actor: String,
    ) -> Result<String, PluginError> {
        let repo = repo_of(&entity)?;
        let mut parts = id.split(':');
        match (parts.next(), parts.next(), parts.next()) {
            // Run by the host when someone accepts a suggestion of a
            // provider location with `accept = "pull-request"`; never
            // offered on an entity's page.
            (Some("catalog-pull-request"), None, None) => {
                claim::open_pull_request(&repo, &entity, &actor)
            }
            (Some("rerun"), Some(run), None) => {
                let run: u64 = run
                    .parse()
                    .map_err(|_| PluginError::Config(format!("unknown action '{id}'")))?;
                repo.send(
                    "POST",
                    &format!("actions/runs/{run}/rerun-failed-jobs"),
                    None,
                    &[201],
                )?;
                Ok(format!("Re-running the failed jobs of run {run}."))
            }
            (Some("deploy"), None, None) => {
                let git_ref = input_text(&inputs, "ref")
                    .unwrap_or(&repo.settings.deploy_ref)
                    .to_string();
                let mut body = json!({ "ref": git_ref });
                if let Some(lines) = input_text(&inputs, "inputs") {
                    // The host checked the form against WORKFLOW_INPUTS.
                    let fields: serde_json::Map<String, Value> = lines
                        .lines()
                        .filter_map(|l| l.split_once('='))
                        .map(|(k, v)| (k.trim().to_string(), Value::from(v.trim())))
                        .collect();
                    body["inputs"] = Value::Object(fields);
                }
                repo.send(
                    "POST",
                    &format!(
                        "actions/workflows/{}/dispatches",
                        repo.settings.deploy_workflow
                    ),
                    Some(body),
                    &[204],
                )?;
                Ok(format!(
                    "Started {} on {git_ref}.",
                    repo.settings.deploy_workflow
                ))
            }
            (Some("merge"), Some(number), Some(sha)) => {
                let number: u64 = number
                    .parse()
                    .map_err(|_| PluginError::Config(format!("unknown action '{id}'")))?;
                let mut body = json!({ "merge_method": repo.settings.merge_method });
                if !sha.is_empty() {
                    body["sha"] = json!(sha);
                }
                let answer =
                    repo.send("PUT", &format!("pulls/{number}/merge"), Some(body), &[200])?;
                let merged_sha = answer["sha"].as_str().unwrap_or_default();
                Ok(format!(
                    "Merged #{number} as {}.",
                    &merged_sha[..merged_sha.len().min(7)]
                ))
            }
            _ => Err(PluginError::Config(format!("unknown action '{id}'"))),
        }
    }
}

/// Deployments (with their latest status) and deploy-workflow runs of one
/// repository at or after `since_ms`. A deploy run for a commit that has a
/// deployment is the same event and is left out.
/// How a deployment in `state` (its latest status) reads in the feed.
fn deployment_verb(state: &str) -> (&'static str, Tone) {
    match state {
        "success" => ("deployed", Tone::Good),
        "failure" | "error" => ("failed to deploy", Tone::Critical),
        "inactive" => ("deployed (since replaced)", Tone::Neutral),
        _ => ("is deploying", Tone::Info),
    }
}

fn repo_events(repo: &Repo, entity: &Entity, since_ms: u64) -> Result<Vec<Event>, PluginError> {
    let mut events = Vec::new();
    let mut deployed_shas: Vec<String> = Vec::new();
    for deployment in repo.list("deployments?per_page=20")? {
        let Some(at) = time_of(&deployment["created_at"]) else {
            continue;
        };
        if at < since_ms {
            continue;
        }
        let id = deployment["id"].as_u64().unwrap_or(0);
        let environment = deployment["environment"]
            .as_str()
            .unwrap_or("an environment");
        let sha = deployment["sha"].as_str().unwrap_or_default();
        deployed_shas.push(sha.to_string());
        let status = repo
            .list(&format!("deployments/{id}/statuses?per_page=1"))
            .ok()
            .and_then(|s| s.into_iter().next());
        let state = status
            .as_ref()
            .and_then(|s| s["state"].as_str())
            .unwrap_or("pending");
        let (verb, tone) = deployment_verb(state);
        events.push(Event {
            id: format!("deployment:{}:{id}", repo.slug),
            kind: "deployment".into(),
            entity_ref: Some(entity.entity_ref.clone()),
            title: format!(
                "{} {verb} {} to {environment}",
                entity.name,
                &sha[..sha.len().min(7)]
            ),
            url: status
                .as_ref()
                .and_then(|s| s["log_url"].as_str().or(s["target_url"].as_str()))
                .map(str::to_string)
                .or_else(|| Some(repo.web_url("deployments"))),
            at_ms: at,
            tone,
            actor: deployment["creator"]["login"].as_str().map(str::to_string),
        });
    }
    let runs = repo.workflow_runs(&repo.settings.deploy_workflow, "per_page=20")?;
    for run in runs {
        let Some(at) = time_of(&run["created_at"]) else {
            continue;
        };
        let sha = run["head_sha"].as_str().unwrap_or_default();
        if at < since_ms || deployed_shas.iter().any(|s| s == sha) {
            continue;
        }
        let badge = run_badge(&run);
        events.push(Event {
            id: format!("run:{}:{}", repo.slug, run["id"].as_u64().unwrap_or(0)),
            kind: "deployment".into(),
            entity_ref: Some(entity.entity_ref.clone()),
            title: format!(
                "{} {} #{} on {}: {}",
                entity.name,
                run["name"].as_str().unwrap_or("deploy"),
                run["run_number"].as_u64().unwrap_or(0),
                run["head_branch"].as_str().unwrap_or("?"),
                badge.label
            ),
            url: run["html_url"].as_str().map(str::to_string),
            at_ms: at,
            tone: badge.tone,
            actor: run["actor"]["login"].as_str().map(str::to_string),
        });
    }
    Ok(events)
}

register_plugin!(GitHub);
