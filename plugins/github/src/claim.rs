//! Claiming a suggested repository by pull request (a provider location
//! with `accept = "pull-request"`): the host runs the action
//! `catalog-pull-request` with the suggested entity and the owner the
//! person chose; this opens a pull request adding the catalog file, on a
//! branch of its own. The entity joins the catalog when the pull request
//! is merged (the push reaches the portal as a webhook, or at the next
//! discovery).

use base64::Engine;
use greenroom_plugin_sdk::{Entity, PluginError};
use serde_json::{Value, json};

use crate::api::Repo;
use crate::discover;

/// The branch the pull request comes from.
const BRANCH: &str = "greenroom/catalog-info";

/// Opens the pull request; answers what to tell the person.
pub fn open_pull_request(repo: &Repo, entity: &Entity, actor: &str) -> Result<String, PluginError> {
    let mut value: Value = serde_json::from_str(&entity.json)
        .map_err(|e| PluginError::Internal(format!("the entity is not JSON: {e}")))?;
    // What the host adds is not part of the file.
    if let Some(meta) = value["metadata"].as_object_mut() {
        for key in ["uid", "etag", "generation"] {
            meta.remove(key);
        }
        if let Some(a) = meta.get_mut("annotations").and_then(Value::as_object_mut) {
            a.retain(|k, _| !k.starts_with("backstage.io/managed-by"));
        }
    }
    if let Some(v) = value.as_object_mut() {
        v.remove("relations");
        v.remove("status");
    }
    let path = discover::catalog_path_of(&repo.slug);
    let base = repo.info()?["default_branch"]
        .as_str()
        .unwrap_or("main")
        .to_string();
    let head = repo.object(&format!("git/ref/heads/{base}"))?;
    let sha = head["object"]["sha"].as_str().ok_or_else(|| {
        PluginError::Upstream(format!("GitHub gave no commit for {base} of {}", repo.slug))
    })?;
    // The branch may exist from an earlier try (422): it is reused.
    repo.send(
        "POST",
        "git/refs",
        Some(json!({"ref": format!("refs/heads/{BRANCH}"), "sha": sha})),
        &[201, 422],
    )?;
    let text = format!(
        "# Added from Greenroom's \"Unclaimed software\" by {actor}.\n{}",
        yaml(&value, 0)
    );
    repo.send(
        "PUT",
        &format!("contents/{path}"),
        Some(json!({
            "message": format!("Add {path} for the software catalog"),
            "content": base64::engine::general_purpose::STANDARD.encode(text),
            "branch": BRANCH,
        })),
        &[200, 201],
    )?;
    let pull = repo.send(
        "POST",
        "pulls",
        Some(json!({
            "title": format!("Add {path} for the software catalog"),
            "head": BRANCH,
            "base": base,
            "body": format!("Describes this repository in the software catalog, owned by {}. Suggested by Greenroom's discovery and accepted by {actor}; merge it and the portal lists it.", value["spec"]["owner"].as_str().unwrap_or("(no owner)")),
        })),
        &[201],
    )?;
    Ok(format!(
        "Opened pull request #{} adding {path}: {}",
        pull["number"],
        pull["html_url"].as_str().unwrap_or_default()
    ))
}

/// A JSON value as block YAML, indented by `depth` levels (keys in the
/// order given, strings quoted where YAML would read them otherwise).
fn yaml(value: &Value, depth: usize) -> String {
    let pad = "  ".repeat(depth);
    match value {
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| match v {
                Value::Object(m) if !m.is_empty() => format!("{pad}{k}:\n{}", yaml(v, depth + 1)),
                Value::Array(a) if !a.is_empty() => format!("{pad}{k}:\n{}", yaml(v, depth + 1)),
                _ => format!("{pad}{k}: {}\n", scalar(v)),
            })
            .collect(),
        Value::Array(items) => items
            .iter()
            .map(|v| match v {
                Value::Object(m) if !m.is_empty() => {
                    let inner = yaml(v, depth + 1);
                    format!("{pad}- {}", inner.trim_start())
                }
                _ => format!("{pad}- {}\n", scalar(v)),
            })
            .collect(),
        other => format!("{pad}{}\n", scalar(other)),
    }
}

/// A scalar as YAML: plain when it cannot be misread, else JSON-quoted
/// (a JSON string is a YAML double-quoted scalar).
fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => {
            let plain = !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./:@".contains(c))
                && !s.ends_with(':')
                && s.parse::<f64>().is_err()
                && !matches!(
                    s.to_ascii_lowercase().as_str(),
                    "true" | "false" | "yes" | "no" | "on" | "off" | "null" | "~"
                );
            if plain {
                s.clone()
            } else {
                Value::String(s.clone()).to_string()
            }
        }
        Value::Object(_) => "{}".into(),
        Value::Array(_) => "[]".into(),
        other => other.to_string(),
    }
}
