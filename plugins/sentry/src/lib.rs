//! Sentry: the top unresolved issues of an entity's project on its page,
//! and the facts `sentry.unresolved_issues` and `sentry.events_24h`. Works
//! with sentry.io and self-hosted Sentry; see README.md.

use greenroom_plugin_sdk::host::{self, Response};
use greenroom_plugin_sdk::time::{ago, parse_rfc3339_ms};
use greenroom_plugin_sdk::{
    Card, CardBuilder, Cell, Entity, Fact, FactValue, Link, Plugin, PluginError, manifest,
    register_plugin,
};
use serde_json::Value;

manifest!(
    r#"{"id": "sentry", "name": "Sentry", "version": "0.1.0",
        "description": "Top unresolved Sentry issues per entity, and error facts",
        "hosts": ["*"], "secrets": ["SENTRY_TOKEN"], "applies_to": {"annotations": ["sentry.io/project-slug"]}}"#
);

const ANNOTATION: &str = "sentry.io/project-slug";

/// Issues on the card.
const TOP: usize = 5;

/// Pages of 100 read to count unresolved issues; more is reported as
/// at least that many.
const MAX_PAGES: usize = 10;

struct Sentry;

struct Project {
    base: String,
    /// Where people open Sentry (`web_url`, default: the base URL).
    web: String,
    org: String,
    slug: String,
    auth: String,
}

impl Project {
    /// The entity's project, from the annotation (`project` or
    /// `org/project`) and the settings `base_url`, `organization` and
    /// `token_secret`.
    fn of(entity: &Entity) -> Result<Project, PluginError> {
        let annotation = entity
            .annotation(ANNOTATION)
            .ok_or(PluginError::NotApplicable)?;
        let annotation = annotation.trim();
        let (org, slug) = match annotation.split_once('/') {
            Some((org, slug)) => (org.to_string(), slug.to_string()),
            None => (
                host::config("organization").ok_or_else(|| {
                    PluginError::Config(format!(
                        "set `organization` under [plugins.config.sentry], or write {ANNOTATION} as `org/project`"
                    ))
                })?,
                annotation.to_string(),
            ),
        };
        let valid = |s: &str| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
        };
        if !valid(&org) || !valid(&slug) {
            return Err(PluginError::Config(format!(
                "{ANNOTATION} '{annotation}' is not a Sentry project slug"
            )));
        }
        let base = host::config("base_url").unwrap_or_else(|| "https://sentry.io".into());
        let secret = host::config("token_secret").unwrap_or_else(|| "SENTRY_TOKEN".into());
        let web = host::config("web_url").unwrap_or_else(|| base.clone());
        Ok(Project {
            web: web.trim_end_matches('/').to_string(),
            base: base.trim_end_matches('/').to_string(),
            org,
            slug,
            auth: format!("Bearer {{{{secret:{secret}}}}}"),
        })
    }

    fn issues_url(&self, query: &str) -> String {
        format!(
            "{}/api/0/projects/{}/{}/issues/?query=is%3Aunresolved&statsPeriod=24h{query}",
            self.base, self.org, self.slug
        )
    }

    /// GETs a page of issues; errors say what to fix.
    fn get(&self, url: &str) -> Result<(Vec<Value>, Response), PluginError> {
        if let Some(until) = host::rate_limited_until(&self.base) {
            return Err(rate_limited(until));
        }
        let response = host::get(
            url,
            &[
                ("Authorization", &self.auth),
                ("Accept", "application/json"),
            ],
        )?;
        if let Some(until) = host::note_rate_limit(&self.base, &response) {
            return Err(rate_limited(until));
        }
        match response.status {
            200 => {}
            401 | 403 => {
                return Err(PluginError::Config(format!(
                    "Sentry refused the token (HTTP {}); check the secret named by token_secret and its scopes (event:read)",
                    response.status
                )));
            }
            404 => {
                return Err(PluginError::Config(format!(
                    "Sentry has no project {}/{} (HTTP 404); check {ANNOTATION} and `organization`",
                    self.org, self.slug
                )));
            }
            status => {
                return Err(PluginError::Upstream(format!(
                    "Sentry answered HTTP {status}: {}",
                    response.body_excerpt(200)
                )));
            }
        }
        let body = response.json("Sentry")?;
        let Value::Array(issues) = body else {
            return Err(PluginError::Upstream(
                "Sentry answered with something other than a list of issues".into(),
            ));
        };
        Ok((issues, response))
    }
}

fn rate_limited(until: u64) -> PluginError {
    PluginError::Upstream(format!(
        "Sentry asked us to slow down; trying again after {}",
        greenroom_plugin_sdk::time::format_rfc3339(until)
    ))
}

/// Events in the last 24 hours, from an issue's hourly stats.
fn events_24h(issue: &Value) -> u64 {
    issue["stats"]["24h"]
        .as_array()
        .map(|points| points.iter().filter_map(|p| p[1].as_u64()).sum())
        .unwrap_or(0)
}

fn count(issue: &Value) -> u64 {
    // Sentry sends `count` as a string.
    match &issue["count"] {
        Value::String(s) => s.parse().unwrap_or(0),
        other => other.as_u64().unwrap_or(0),
    }
}

impl Plugin for Sentry {
    fn cards(entity: Entity) -> Result<Vec<Card>, PluginError> {
        let project = Project::of(&entity)?;
        let (issues, _) = project.get(&project.issues_url(&format!("&sort=freq&limit={TOP}")))?;
        let now = host::now_ms();
        let mut card = CardBuilder::new("sentry-issues", "Sentry");
        if issues.is_empty() {
            card = card.text("No unresolved issues.");
        } else {
            let mut hourly = vec![0f64; 24];
            for issue in &issues {
                if let Some(points) = issue["stats"]["24h"].as_array() {
                    let start = 24usize.saturating_sub(points.len());
                    for (slot, point) in hourly[start..].iter_mut().zip(points) {
                        *slot += point[1].as_f64().unwrap_or(0.0);
                    }
                }
            }
            let rows = issues
                .iter()
                .map(|issue| {
                    let title = issue["title"].as_str().unwrap_or("(untitled)");
                    let label = match issue["shortId"].as_str() {
                        Some(id) => format!("{id} {title}"),
                        None => title.to_string(),
                    };
                    let last_seen = issue["lastSeen"]
                        .as_str()
                        .and_then(parse_rfc3339_ms)
                        .map(|t| ago(t, now))
                        .unwrap_or_default();
                    vec![
                        Cell::Link(Link {
                            label,
                            href: issue["permalink"].as_str().unwrap_or_default().to_string(),
                        }),
                        Cell::Text(count(issue).to_string()),
                        Cell::Text(issue["userCount"].as_u64().unwrap_or(0).to_string()),
                        Cell::Text(last_seen),
                    ]
                })
                .collect();
            card = card
                .text("Events per hour over the last 24 hours, top issues")
                .sparkline(hourly)
                .table(&["Issue", "Events", "Users", "Last seen"], rows);
        }
        let web = format!(
            "{}/organizations/{}/issues/?query=is%3Aunresolved&project={}",
            project.web,
            project.org,
            issues
                .first()
                .and_then(|i| i["project"]["id"].as_str())
                .unwrap_or(&project.slug)
        );
        Ok(vec![
            card.link("All unresolved issues in Sentry", &web).build(),
        ])
    }

    fn facts(entity: Entity) -> Result<Vec<Fact>, PluginError> {
        let project = Project::of(&entity)?;
        let mut url = project.issues_url("&limit=100");
        let (mut unresolved, mut events) = (0u64, 0u64);
        for _ in 0..MAX_PAGES {
            let (issues, response) = project.get(&url)?;
            unresolved += issues.len() as u64;
            events += issues.iter().map(events_24h).sum::<u64>();
            match response.next_link() {
                Some(next) => url = next,
                None => break,
            }
        }
        let web = format!("{}/organizations/{}/issues/", project.web, project.org);
        Ok(vec![
            Fact {
                name: "sentry.unresolved_issues".into(),
                value: FactValue::Number(unresolved as f64),
                url: Some(web.clone()),
            },
            Fact {
                name: "sentry.events_24h".into(),
                value: FactValue::Number(events as f64),
                url: Some(web),
            },
        ])
    }
}

register_plugin!(Sentry);
