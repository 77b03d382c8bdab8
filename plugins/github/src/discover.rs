//! Discovery (`providers`): every repository of an organisation, a page
//! of 100 per call. A repository with a catalog file on its default
//! branch gives the file's text, which the host reads as a catalog file;
//! one without becomes a suggested Component with its description, its
//! language as a tag and an owner from CODEOWNERS (the rule for `*`) or
//! else its top committer's team (or the committer, without one), for a
//! person to accept.
//!
//! A provider location's settings (`[[catalog.providers]] config`):
//!
//! ```toml
//! config = { organisation = "acme", topics = ["backend"], catalog_path = "catalog-info.yaml",
//!            include_archived = false, include_forks = false }
//! ```

use greenroom_plugin_sdk::{PluginError, ProviderFile, ProviderPage, Suggestion};
use serde_json::{Value, json};

use crate::api::{self, JSON, RAW, Settings};

/// Repositories per page of the organisation's list (GitHub's most).
const PER_PAGE: usize = 100;

/// Where GitHub looks for CODEOWNERS, in its order.
const CODEOWNERS: [&str; 3] = [".github/CODEOWNERS", "CODEOWNERS", "docs/CODEOWNERS"];

/// One provider location's settings.
struct Discovery {
    organisation: String,
    /// Only repositories with one of these topics (all when empty).
    topics: Vec<String>,
    catalog_path: String,
    include_archived: bool,
    include_forks: bool,
}

impl Discovery {
    fn parse(config: &str) -> Result<Discovery, PluginError> {
        let config: Value = serde_json::from_str(config)
            .map_err(|e| PluginError::Config(format!("the provider's config is not JSON: {e}")))?;
        let text = |key: &str| config[key].as_str().map(str::to_string);
        let organisation = text("organisation")
            .or_else(|| text("organization"))
            .or_else(|| text("org"))
            .filter(|o| {
                !o.is_empty()
                    && o.chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            })
            .ok_or_else(|| {
                PluginError::Config(
                    "set config = { organisation = \"<GitHub organisation>\" } in [[catalog.providers]]"
                        .into(),
                )
            })?;
        Ok(Discovery {
            organisation,
            topics: config["topics"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(str::to_lowercase)
                .collect(),
            catalog_path: text("catalog_path")
                .unwrap_or_else(|| "catalog-info.yaml".into())
                .trim_start_matches('/')
                .to_string(),
            include_archived: config["include_archived"].as_bool().unwrap_or(false),
            include_forks: config["include_forks"].as_bool().unwrap_or(false),
        })
    }

    /// Whether `repo` (an item of the organisation's list) is discovered.
    fn wants(&self, repo: &Value) -> bool {
        let flag = |key: &str| repo[key].as_bool().unwrap_or(false);
        (self.include_archived || !flag("archived"))
            && (self.include_forks || !flag("fork"))
            && !flag("disabled")
            && (self.topics.is_empty()
                || repo["topics"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .any(|t| self.topics.iter().any(|w| w.eq_ignore_ascii_case(t))))
    }
}

/// The page of the organisation's repositories that starts at `cursor`
/// (a page number; the first when `None`).
pub fn discover(config: &str, cursor: Option<String>) -> Result<ProviderPage, PluginError> {
    let settings = Settings::load();
    let d = Discovery::parse(config)?;
    let page: usize = match cursor.as_deref() {
        None => 1,
        Some(c) => c
            .parse()
            .map_err(|_| PluginError::Internal(format!("cursor '{c}' is not a page number")))?,
    };
    let url = format!(
        "{}/orgs/{}/repos?type=all&sort=full_name&per_page={PER_PAGE}&page={page}",
        settings.base_url, d.organisation
    );
    // Webhook deliveries name repositories, not provider locations: the
    // organisation's catalog file name is remembered for them, once per
    // discovery.
    if page == 1 {
        let _ = greenroom_plugin_sdk::host::kv_set(
            &path_key(&d.organisation),
            d.catalog_path.as_bytes(),
            None,
        );
    }
    let response = api::request(&settings, "GET", &url, None, JSON)?;
    match response.status {
        200 => {}
        404 => {
            return Err(PluginError::Config(format!(
                "GitHub knows no organisation {} (HTTP 404); check the provider's organisation and that the token can see it",
                d.organisation
            )));
        }
        401 => {
            return Err(PluginError::Config(format!(
                "GitHub refused the token (HTTP 401); check the secret {}",
                settings.token_secret
            )));
        }
        status => {
            return Err(PluginError::Upstream(format!(
                "GitHub answered HTTP {status} for the repositories of {}: {}",
                d.organisation,
                response.body_excerpt(200)
            )));
        }
    }
    let Value::Array(repos) = response.json("GitHub")? else {
        return Err(PluginError::Upstream(
            "GitHub answered the repository list with something other than a list".into(),
        ));
    };
    let mut out = ProviderPage {
        entities: Vec::new(),
        files: Vec::new(),
        suggestions: Vec::new(),
        next: response.next_link().map(|_| (page + 1).to_string()),
    };
    for repo in repos.iter().filter(|r| d.wants(r)) {
        let Some(full) = repo["full_name"].as_str() else {
            continue;
        };
        let branch = repo["default_branch"].as_str().unwrap_or("main");
        match file(&settings, full, &d.catalog_path, branch)? {
            Some(text) => {
                let html = repo["html_url"]
                    .as_str()
                    .map_or_else(|| format!("{}/{full}", settings.web_url), str::to_string);
                out.files.push(ProviderFile {
                    url: format!("{html}/blob/{branch}/{}", d.catalog_path),
                    text,
                });
            }
            None => out
                .suggestions
                .push(suggest(&settings, &d, repo, full, branch)?),
        }
    }
    Ok(out)
}

/// The text of `path` at `branch` (or a commit) of `full`
/// (`owner/name`), or `None` when the repository has no such file.
pub fn file(
    settings: &Settings,
    full: &str,
    path: &str,
    branch: &str,
) -> Result<Option<String>, PluginError> {
    let url = format!(
        "{}/repos/{full}/contents/{path}?ref={branch}",
        settings.base_url
    );
    let response = api::request(settings, "GET", &url, None, RAW)?;
    match response.status {
        200 => Ok(Some(String::from_utf8_lossy(&response.body).into_owned())),
        404 => Ok(None),
        status => Err(PluginError::Upstream(format!(
            "GitHub answered HTTP {status} for {path} of {full}: {}",
            response.body_excerpt(200)
        ))),
    }
}

/// Where an organisation's catalog file name is kept.
fn path_key(organisation: &str) -> String {
    format!("catalog-path:{}", organisation.to_lowercase())
}

/// The catalog file's path in repository `full` (`owner/name`): what the
/// owner's provider location reads (`catalog-info.yaml` unless it says).
pub fn catalog_path_of(full: &str) -> String {
    let org = full.split('/').next().unwrap_or_default();
    greenroom_plugin_sdk::host::kv_get(&path_key(org))
        .and_then(|v| String::from_utf8(v).ok())
        .unwrap_or_else(|| "catalog-info.yaml".into())
}

/// A Component for a repository without a catalog file, and why.
fn suggest(
    settings: &Settings,
    d: &Discovery,
    repo: &Value,
    full: &str,
    branch: &str,
) -> Result<Suggestion, PluginError> {
    let mut reason = format!("{full} has no {}", d.catalog_path);
    let owner = match codeowner(settings, full, branch)? {
        Some((owner, path)) => {
            reason.push_str(&format!("; owner from {path}"));
            Some(owner)
        }
        None => match top_committer(settings, full)? {
            Some(login) => match team_of(&login) {
                Some(team) => {
                    reason.push_str(&format!("; owner is the team of its top committer {login}"));
                    Some(team)
                }
                None => {
                    reason.push_str("; owner is its top committer");
                    Some(format!("user:default/{login}"))
                }
            },
            None => {
                reason.push_str("; no owner found: choose one");
                None
            }
        },
    };
    let name = entity_name(repo["name"].as_str().unwrap_or(full));
    let mut metadata = json!({
        "name": name,
        "annotations": {"github.com/project-slug": full},
        "links": [{"url": repo["html_url"], "title": "Repository"}],
    });
    if let Some(text) = repo["description"].as_str().filter(|t| !t.is_empty()) {
        metadata["description"] = json!(text);
    }
    if let Some(language) = repo["language"].as_str() {
        let tag = tag_of(language);
        if !tag.is_empty() {
            metadata["tags"] = json!([tag]);
        }
    }
    let mut spec = json!({"type": "service", "lifecycle": "production"});
    if let Some(owner) = owner {
        spec["owner"] = json!(owner);
    }
    let entity = json!({
        "apiVersion": "backstage.io/v1alpha1",
        "kind": "Component",
        "metadata": metadata,
        "spec": spec,
    });
    Ok(Suggestion {
        entity: entity.to_string(),
        reason,
    })
}

/// The owner CODEOWNERS gives every file (`*`), as a catalog ref, and
/// which file said so.
fn codeowner(
    settings: &Settings,
    full: &str,
    branch: &str,
) -> Result<Option<(String, &'static str)>, PluginError> {
    for path in CODEOWNERS {
        if let Some(text) = file(settings, full, path, branch)? {
            return Ok(owner_of_all(&text).map(|o| (o, path)));
        }
    }
    Ok(None)
}

/// The first owner of the last rule for `*` (the last match wins in
/// CODEOWNERS): `@org/team` is the Group `team`, `@login` the User.
fn owner_of_all(codeowners: &str) -> Option<String> {
    codeowners
        .lines()
        .map(|l| l.split('#').next().unwrap_or_default().trim())
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            (words.next()? == "*").then(|| words.find(|w| w.starts_with('@')))?
        })
        .next_back()
        .map(
            |owner| match owner.trim_start_matches('@').split_once('/') {
                Some((_, team)) => format!("group:default/{}", entity_name(team)),
                None => format!("user:default/{}", entity_name(&owner[1..])),
            },
        )
}

/// The first team of the catalog's User `login`, if it has one.
fn team_of(login: &str) -> Option<String> {
    let user = greenroom_plugin_sdk::host::entity(&format!("user:default/{login}"))?;
    let json: Value = serde_json::from_str(&user.json).ok()?;
    json["relations"]
        .as_array()?
        .iter()
        .find(|r| r["type"] == "memberOf")
        .and_then(|r| r["targetRef"].as_str())
        .map(str::to_string)
}

/// The login with most commits.
fn top_committer(settings: &Settings, full: &str) -> Result<Option<String>, PluginError> {
    let url = format!("{}/repos/{full}/contributors?per_page=5", settings.base_url);
    let response = api::request(settings, "GET", &url, None, JSON)?;
    match response.status {
        200 => {}
        // An empty repository has no contributors (204) or none listed.
        204 | 404 => return Ok(None),
        status => {
            return Err(PluginError::Upstream(format!(
                "GitHub answered HTTP {status} for the contributors of {full}"
            )));
        }
    }
    Ok(response.json("GitHub")?.as_array().and_then(|people| {
        people
            .iter()
            .filter(|p| p["type"] != "Bot")
            .max_by_key(|p| p["contributions"].as_u64().unwrap_or(0))
            .and_then(|p| p["login"].as_str())
            .map(entity_name)
    }))
}

/// A name Backstage accepts: letters, digits, `-`, `_`, `.`, starting and
/// ending with a letter or digit, at most 63 characters.
fn entity_name(text: &str) -> String {
    let cleaned: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '-'
            }
        })
        .collect();
    let trimmed = cleaned.trim_matches(|c: char| !c.is_ascii_alphanumeric());
    let cut: String = trimmed.chars().take(63).collect();
    cut.trim_end_matches(|c: char| !c.is_ascii_alphanumeric())
        .to_string()
}

/// A language as a tag: lower case, `+` and `#` spelt out (`c++` is
/// `cpp`, `c#` is `csharp`), other signs as `-`.
fn tag_of(language: &str) -> String {
    let spelt = language
        .to_lowercase()
        .replace('+', "p")
        .replace('#', "sharp");
    entity_name(&spelt).to_lowercase()
}
