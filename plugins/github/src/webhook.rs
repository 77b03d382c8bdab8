//! Webhook deliveries (`webhooks`), already verified by the host:
//! - `push` to a repository's default branch that adds, changes or removes
//!   its catalog file: the file is read again at the pushed commit (or
//!   named gone), so the catalog follows within the delivery;
//! - `repository` deleted or archived: its catalog file is gone;
//! - `deployment_status`: the deployment's new state, for the activity
//!   feed ("deployed in the last 30 minutes") at once.

use greenroom_plugin_sdk::time::parse_rfc3339_ms;
use greenroom_plugin_sdk::{Event, PluginError, ProviderFile, WebhookOutcome, host};
use serde_json::Value;

use crate::api::Settings;
use crate::discover;

fn empty() -> WebhookOutcome {
    WebhookOutcome {
        files: Vec::new(),
        gone: Vec::new(),
        events: Vec::new(),
    }
}

pub fn handle(event: &str, payload: &str) -> Result<WebhookOutcome, PluginError> {
    let body: Value = serde_json::from_str(payload)
        .map_err(|e| PluginError::Upstream(format!("the {event} delivery is not JSON: {e}")))?;
    match event {
        "push" => push(&body),
        "repository" => repository(&body),
        "deployment_status" => deployment_status(&body),
        // `ping` and everything else change nothing here.
        _ => Ok(empty()),
    }
}

/// The repository's full name, page and default branch.
fn repo_of(body: &Value) -> Option<(&str, &str, &str)> {
    let r = &body["repository"];
    Some((
        r["full_name"].as_str()?,
        r["html_url"].as_str()?,
        r["default_branch"].as_str().unwrap_or("main"),
    ))
}

fn push(body: &Value) -> Result<WebhookOutcome, PluginError> {
    let mut out = empty();
    let Some((full, html, branch)) = repo_of(body) else {
        return Ok(out);
    };
    if body["ref"].as_str() != Some(&format!("refs/heads/{branch}")) {
        return Ok(out);
    }
    let path = discover::catalog_path_of(full);
    let touched = |what: &str| {
        body["commits"]
            .as_array()
            .into_iter()
            .flatten()
            .chain(std::iter::once(&body["head_commit"]))
            .any(|c| {
                c[what]
                    .as_array()
                    .is_some_and(|files| files.iter().any(|f| f.as_str() == Some(path.as_str())))
            })
    };
    let url = format!("{html}/blob/{branch}/{path}");
    let commit = body["after"].as_str().unwrap_or(branch);
    if touched("added") || touched("modified") {
        match discover::file(&Settings::load(), full, &path, commit)? {
            Some(text) => out.files.push(ProviderFile { url, text }),
            None => out.gone.push(url),
        }
    } else if touched("removed") {
        out.gone.push(url);
    }
    Ok(out)
}

fn repository(body: &Value) -> Result<WebhookOutcome, PluginError> {
    let mut out = empty();
    let Some((full, html, branch)) = repo_of(body) else {
        return Ok(out);
    };
    if matches!(body["action"].as_str(), Some("deleted" | "archived")) {
        let path = discover::catalog_path_of(full);
        out.gone.push(format!("{html}/blob/{branch}/{path}"));
    }
    Ok(out)
}

fn deployment_status(body: &Value) -> Result<WebhookOutcome, PluginError> {
    let mut out = empty();
    let (status, deployment) = (&body["deployment_status"], &body["deployment"]);
    let Some(full) = body["repository"]["full_name"].as_str() else {
        return Ok(out);
    };
    // The catalog entity of the repository, if it has one.
    let entity = host::query(
        &format!("metadata.annotations.{}={full}", crate::ANNOTATION),
        1,
    )
    .into_iter()
    .next();
    let name = entity
        .as_ref()
        .map_or_else(|| full.to_string(), |e| e.name.clone());
    let sha = deployment["sha"].as_str().unwrap_or_default();
    let environment = status["environment"]
        .as_str()
        .or(deployment["environment"].as_str())
        .unwrap_or("an environment");
    let (verb, tone) = crate::deployment_verb(status["state"].as_str().unwrap_or("pending"));
    out.events.push(Event {
        // The id the events poll gives the same deployment.
        id: format!(
            "deployment:{full}:{}",
            deployment["id"].as_u64().unwrap_or(0)
        ),
        kind: "deployment".into(),
        entity_ref: entity.map(|e| e.entity_ref),
        title: format!(
            "{name} {verb} {} to {environment}",
            &sha[..sha.len().min(7)]
        ),
        url: status["log_url"]
            .as_str()
            .or(status["target_url"].as_str())
            .map(str::to_string),
        at_ms: status["created_at"]
            .as_str()
            .and_then(parse_rfc3339_ms)
            .unwrap_or_else(host::now_ms),
        tone,
        actor: status["creator"]["login"]
            .as_str()
            .or(deployment["creator"]["login"].as_str())
            .map(str::to_string),
    });
    Ok(out)
}
