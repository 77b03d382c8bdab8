//! GitHub's REST API as the plugin uses it: settings, one repository's
//! routes, pagination, and errors that say what to fix. Every request
//! first checks whether GitHub told us to wait, and remembers when it does.

use greenroom_plugin_sdk::PluginError;
use greenroom_plugin_sdk::host::{self, Response};
use greenroom_plugin_sdk::time::format_rfc3339;
use serde_json::Value;

/// Pages of 100 read when counting pull requests.
const MAX_PAGES: usize = 10;

/// The operator's `[plugins.config.github]`.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `https://api.github.com`, or `https://github.example.com/api/v3`.
    pub base_url: String,
    /// Where people open repositories: `https://github.com`.
    pub web_url: String,
    pub token_secret: String,
    /// The workflow file the deploy action dispatches: `deploy.yml`.
    pub deploy_workflow: String,
    /// The branch CI facts and deploys are about: `main`.
    pub deploy_ref: String,
    /// `merge`, `squash` or `rebase`.
    pub merge_method: String,
    /// How long one events poll may spend before leaving the remaining
    /// repositories to the next poll.
    pub events_budget_ms: u64,
}

impl Settings {
    pub fn load() -> Settings {
        let base_url = host::config("base_url")
            .unwrap_or_else(|| "https://api.github.com".into())
            .trim_end_matches('/')
            .to_string();
        let web_url = host::config("web_url").unwrap_or_else(|| {
            if base_url == "https://api.github.com" {
                "https://github.com".into()
            } else {
                // GitHub Enterprise serves its API under /api/v3.
                base_url.trim_end_matches("/api/v3").to_string()
            }
        });
        Settings {
            web_url: web_url.trim_end_matches('/').to_string(),
            base_url,
            token_secret: host::config("token_secret").unwrap_or_else(|| "GITHUB_TOKEN".into()),
            deploy_workflow: host::config("deploy_workflow").unwrap_or_else(|| "deploy.yml".into()),
            deploy_ref: host::config("deploy_ref").unwrap_or_else(|| "main".into()),
            merge_method: host::config("merge_method").unwrap_or_else(|| "squash".into()),
            events_budget_ms: host::config("events_budget_ms")
                .and_then(|v| v.parse().ok())
                .unwrap_or(1200),
        }
    }
}

/// One repository, `owner/name`.
pub struct Repo {
    pub slug: String,
    pub settings: Settings,
}

impl Repo {
    pub fn new(slug: &str, settings: Settings) -> Result<Repo, PluginError> {
        let valid = |s: &str| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        };
        match slug.split_once('/') {
            Some((owner, name)) if valid(owner) && valid(name) && name != ".." => Ok(Repo {
                slug: slug.to_string(),
                settings,
            }),
            _ => Err(PluginError::Config(format!(
                "github.com/project-slug '{slug}' is not `owner/repository`"
            ))),
        }
    }

    pub fn web_url(&self, path: &str) -> String {
        format!("{}/{}/{path}", self.settings.web_url, self.slug)
    }

    fn api_url(&self, path: &str) -> String {
        format!("{}/repos/{}/{path}", self.settings.base_url, self.slug)
    }

    /// "List workflow runs for a repository", newest first.
    pub fn runs(&self, query: &str) -> Result<Vec<Value>, PluginError> {
        let body = self.get(&self.api_url(&format!("actions/runs?{query}")))?.0;
        runs_of(body)
    }

    /// "List workflow runs for a workflow".
    pub fn workflow_runs(&self, workflow: &str, query: &str) -> Result<Vec<Value>, PluginError> {
        let body = self
            .get(&self.api_url(&format!("actions/workflows/{workflow}/runs?{query}")))?
            .0;
        runs_of(body)
    }

    /// "Get a repository": its default branch, its page.
    pub fn info(&self) -> Result<Value, PluginError> {
        let url = format!("{}/repos/{}", self.settings.base_url, self.slug);
        Ok(self.get(&url)?.0)
    }

    /// A route of the repository that answers one object.
    pub fn object(&self, path: &str) -> Result<Value, PluginError> {
        Ok(self.get(&self.api_url(path))?.0)
    }

    /// A list route of the repository (one page).
    pub fn list(&self, path: &str) -> Result<Vec<Value>, PluginError> {
        match self.get(&self.api_url(path))?.0 {
            Value::Array(items) => Ok(items),
            _ => Err(PluginError::Upstream(format!(
                "GitHub answered {path} with something other than a list"
            ))),
        }
    }

    /// Every open pull request, following `Link: rel="next"`.
    pub fn open_pulls(&self) -> Result<Vec<Value>, PluginError> {
        let mut url = self.api_url("pulls?state=open&per_page=100");
        let mut all = Vec::new();
        for _ in 0..MAX_PAGES {
            let (body, response) = self.get(&url)?;
            match body {
                Value::Array(items) => all.extend(items),
                _ => {
                    return Err(PluginError::Upstream(
                        "GitHub answered the pull request list with something other than a list"
                            .into(),
                    ));
                }
            }
            match response.next_link() {
                Some(next) => url = next,
                None => break,
            }
        }
        Ok(all)
    }

    /// A write: POST or PUT with a JSON body; `ok` lists the statuses that
    /// mean it worked. Returns the answer's JSON (or null when empty).
    pub fn send(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
        ok: &[u16],
    ) -> Result<Value, PluginError> {
        let url = self.api_url(path);
        let response = self.request(method, &url, body)?;
        if !ok.contains(&response.status) {
            return Err(self.failure(&response, path));
        }
        if response.body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Value::Null);
        }
        response.json("GitHub")
    }

    fn get(&self, url: &str) -> Result<(Value, Response), PluginError> {
        let response = self.request("GET", url, None)?;
        if response.status != 200 {
            let path = url.split(&self.slug).nth(1).unwrap_or(url);
            return Err(self.failure(&response, path));
        }
        Ok((response.json("GitHub")?, response))
    }

    fn request(
        &self,
        method: &str,
        url: &str,
        body: Option<Value>,
    ) -> Result<Response, PluginError> {
        request(&self.settings, method, url, body, JSON)
    }

    /// What a failed answer means, in words that say what to do.
    fn failure(&self, response: &Response, path: &str) -> PluginError {
        let message = serde_json::from_slice::<Value>(&response.body)
            .ok()
            .and_then(|v| v["message"].as_str().map(str::to_string))
            .unwrap_or_else(|| response.body_excerpt(200));
        match response.status {
            401 => PluginError::Config(format!(
                "GitHub refused the token (HTTP 401: {message}); check the secret {}",
                self.settings.token_secret
            )),
            404 => PluginError::Config(format!(
                "GitHub found no {} in {} (HTTP 404); check github.com/project-slug, the plugin's settings, and that the token can see the repository",
                path.trim_start_matches('/'),
                self.slug
            )),
            status => PluginError::Upstream(format!(
                "GitHub answered HTTP {status} for {}: {message}",
                path.trim_start_matches('/')
            )),
        }
    }
}

/// GitHub's JSON media type.
pub const JSON: &str = "application/vnd.github+json";

/// A file's text rather than JSON around it ("get repository content").
pub const RAW: &str = "application/vnd.github.raw+json";

/// A request to GitHub with the token, answered `accept`; refused without
/// a request while GitHub told us to wait, and remembering when it does.
pub fn request(
    settings: &Settings,
    method: &str,
    url: &str,
    body: Option<Value>,
    accept: &str,
) -> Result<Response, PluginError> {
    let key = &settings.base_url;
    if let Some(until) = host::rate_limited_until(key) {
        return Err(rate_limited(until));
    }
    let auth = format!("Bearer {{{{secret:{}}}}}", settings.token_secret);
    let mut headers = vec![
        ("Accept", accept),
        ("X-GitHub-Api-Version", "2022-11-28"),
        ("User-Agent", "greenroom-github-plugin"),
        ("Authorization", auth.as_str()),
    ];
    if body.is_some() {
        headers.push(("Content-Type", "application/json"));
    }
    let body = body.map(|b| b.to_string().into_bytes());
    let response = host::fetch(method, url, &headers, body)?;
    if let Some(until) = host::note_rate_limit(key, &response) {
        return Err(rate_limited(until));
    }
    Ok(response)
}

fn runs_of(body: Value) -> Result<Vec<Value>, PluginError> {
    match body {
        Value::Object(mut map) => match map.remove("workflow_runs") {
            Some(Value::Array(runs)) => Ok(runs),
            _ => Err(PluginError::Upstream(
                "GitHub's answer has no workflow_runs list".into(),
            )),
        },
        _ => Err(PluginError::Upstream(
            "GitHub answered the workflow run list with something other than an object".into(),
        )),
    }
}

fn rate_limited(until: u64) -> PluginError {
    PluginError::Upstream(format!(
        "GitHub rate limit reached; trying again after {}",
        format_rfc3339(until)
    ))
}
