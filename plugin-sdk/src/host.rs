//! Typed helpers over the host imports.

use crate::Entity;
use crate::bindings::greenroom::plugin::{catalog, config, http, kv, log, source};

pub use http::{Header, HttpError, Request, Response};
pub use log::Level;

/// Writes to the host's log, tagged with this plugin's id.
pub fn log(level: Level, message: &str) {
    log::log(level, message);
}

/// The operator's setting `key` from `[plugins.config.<id>]`, as text.
pub fn config(key: &str) -> Option<String> {
    config::get(key).filter(|v| !v.is_empty())
}

pub fn kv_get(key: &str) -> Option<Vec<u8>> {
    kv::get(key)
}

pub fn kv_set(key: &str, value: &[u8], ttl_seconds: Option<u32>) -> Result<(), String> {
    kv::set(key, value, ttl_seconds)
}

pub fn kv_delete(key: &str) {
    kv::delete(key)
}

pub fn entity(entity_ref: &str) -> Option<Entity> {
    catalog::get_entity(entity_ref)
}

pub fn query(filter: &str, limit: u32) -> Vec<Entity> {
    catalog::query(filter, limit)
}

/// Reads a file beside the entity's catalog file.
pub fn read_file(entity: &Entity, path: &str) -> Result<String, String> {
    source::read_file(&entity.entity_ref, path)
}

/// `GET url` with headers; a header value may name a secret as
/// `{{secret:NAME}}`.
pub fn get(url: &str, headers: &[(&str, &str)]) -> Result<Response, HttpError> {
    fetch("GET", url, headers, None)
}

pub fn fetch(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<Vec<u8>>,
) -> Result<Response, HttpError> {
    http::fetch(&Request {
        method: method.to_string(),
        url: url.to_string(),
        headers: headers
            .iter()
            .map(|(name, value)| Header {
                name: name.to_string(),
                value: value.to_string(),
            })
            .collect(),
        body,
    })
}

impl Response {
    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value.as_str())
    }

    /// The next page's URL from a `Link` header (`<url>; rel="next"`), as
    /// GitHub and Sentry page their lists. Sentry marks a next page without
    /// results with `results="false"`: that is no next page.
    pub fn next_link(&self) -> Option<String> {
        self.header("link")?.split(',').find_map(|part| {
            let (url, params) = part.trim().split_once(';')?;
            (params.contains("rel=\"next\"") && !params.contains("results=\"false\"")).then(|| {
                url.trim()
                    .trim_start_matches('<')
                    .trim_end_matches('>')
                    .to_string()
            })
        })
    }

    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The body as JSON; a body that is not JSON is an upstream error
    /// naming `what` answered it.
    pub fn json(&self, what: &str) -> Result<serde_json::Value, crate::PluginError> {
        serde_json::from_slice(&self.body).map_err(|e| {
            crate::PluginError::Upstream(format!("{what} answered with malformed JSON: {e}"))
        })
    }

    /// The body as text (lossy), at most `max` characters: for error
    /// messages.
    pub fn body_excerpt(&self, max: usize) -> String {
        String::from_utf8_lossy(&self.body)
            .chars()
            .take(max)
            .collect()
    }
}

impl From<HttpError> for crate::PluginError {
    /// Grants and refusals are the operator's to fix; the rest is the
    /// upstream's.
    fn from(e: HttpError) -> Self {
        use crate::PluginError;
        match e {
            HttpError::NotGranted(m) => {
                PluginError::Config(format!("{m}; an administrator must grant it"))
            }
            HttpError::Refused(m) => PluginError::Config(format!("request refused: {m}")),
            HttpError::Timeout => PluginError::Upstream("no answer in time".into()),
            HttpError::TooLarge => PluginError::Upstream(
                "the answer is larger than the portal allows (plugins.http_max_bytes)".into(),
            ),
            HttpError::Transport(m) => PluginError::Upstream(format!("cannot connect: {m}")),
        }
    }
}

/// Milliseconds since the Unix epoch, from the host's wall clock.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// When an upstream that said "slow down" may be called again (ms since
/// the epoch), if that is still ahead. `key` names the upstream, e.g. the
/// base URL.
pub fn rate_limited_until(key: &str) -> Option<u64> {
    let stored = kv::get(&format!("rate-limit:{key}"))?;
    let until: u64 = std::str::from_utf8(&stored).ok()?.parse().ok()?;
    (until > now_ms()).then_some(until)
}

/// Reads a rate-limit answer: 429, or 403 with `x-ratelimit-remaining: 0`
/// (GitHub's primary limit). Remembers until when to stay away, from
/// `retry-after` (seconds) or a reset header (`x-ratelimit-reset`,
/// `x-sentry-rate-limit-reset`; epoch seconds), and returns it. A missing
/// reset means one minute, as GitHub's documentation advises.
pub fn note_rate_limit(key: &str, response: &Response) -> Option<u64> {
    let exhausted = response.header("x-ratelimit-remaining") == Some("0")
        || response.header("x-sentry-rate-limit-remaining") == Some("0");
    if !(response.status == 429 || (response.status == 403 && exhausted)) {
        return None;
    }
    let now = now_ms();
    let number = |name: &str| {
        response
            .header(name)
            .and_then(|v| v.trim().parse::<f64>().ok())
    };
    let until = if let Some(secs) = number("retry-after") {
        now + (secs.max(0.0) * 1000.0) as u64
    } else if let Some(epoch) =
        number("x-ratelimit-reset").or_else(|| number("x-sentry-rate-limit-reset"))
    {
        ((epoch * 1000.0) as u64).max(now)
    } else {
        now + 60_000
    };
    // Never longer than an hour, whatever a header says.
    let until = until.min(now + 3_600_000);
    let ttl = ((until - now) / 1000 + 1) as u32;
    let _ = kv::set(
        &format!("rate-limit:{key}"),
        until.to_string().as_bytes(),
        Some(ttl),
    );
    Some(until)
}

/// The names in a folder beside the entity's catalog file, sorted; folders
/// end with `/`.
pub fn list_dir(entity: &Entity, path: &str) -> Result<Vec<String>, String> {
    source::list_dir(&entity.entity_ref, path)
}
