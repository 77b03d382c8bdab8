//! Webhook deliveries (`POST /api/webhooks/<plugin>`): a delivery is
//! checked against its signature before anything else (an HMAC-SHA256 of
//! the body with the secret the operator configured, compared in constant
//! time), then handed to the plugin's `webhooks` export, which says what
//! it changes: catalog files to read again or gone, and events. Events
//! are stored at once; the files are applied by partial refreshes of the
//! plugin's provider locations (the caller runs them with
//! `Refresher::refresh_page`), so only what the delivery names is read.

use hmac::{KeyInit, Mac};

use super::ServiceError;
use crate::config::IncomingWebhook;
use crate::ingest::Page;
use crate::ingest::provider;
use crate::plugins::Plugins;
use crate::plugins::runtime::CallLimits;
use crate::store::{Location, Store};

type Signature = hmac::Hmac<sha2::Sha256>;

/// How long a plugin may take over one delivery: senders give up after
/// about ten seconds (GitHub does).
const DELIVERY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(8);

/// Why a delivery is refused before any plugin sees it.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    /// The signature is missing or does not match (401).
    #[error("{0}")]
    Signature(String),
    /// The server cannot check it: the secret has no value (503).
    #[error("{0}")]
    NoSecret(String),
}

/// Checks `signature` (the header's value, `sha256=<hex>`) of `body`
/// against the secret `hook` names.
pub fn verify(hook: &IncomingWebhook, signature: Option<&str>, body: &[u8]) -> Result<(), Refused> {
    let var = format!("GREENROOM_SECRET_{}", hook.secret);
    let secret = std::env::var(&var).ok().filter(|s| !s.is_empty()).ok_or_else(|| {
        Refused::NoSecret(format!(
            "the webhook secret {} has no value: set the environment variable {var} and restart",
            hook.secret
        ))
    })?;
    let Some(signature) = signature else {
        return Err(Refused::Signature(format!(
            "the delivery has no {} header: sign it with the webhook's secret",
            hook.signature_header
        )));
    };
    let hex = signature
        .trim()
        .strip_prefix("sha256=")
        .unwrap_or(signature.trim());
    let expected = decode_hex(hex).ok_or_else(|| {
        Refused::Signature(format!("{} is not `sha256=<hex>`", hook.signature_header))
    })?;
    let mut mac =
        Signature::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(body);
    mac.verify_slice(&expected).map_err(|_| {
        Refused::Signature(format!(
            "the {} signature does not match the body: check the webhook's secret",
            hook.signature_header
        ))
    })
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

/// What a delivery changed, and the partial refreshes still to run.
pub struct Delivered {
    pub events: usize,
    pub files: usize,
    pub gone: usize,
    /// Provider locations to refresh in part, each with its page.
    pub refresh: Vec<(Location, Page)>,
}

/// Hands the verified delivery `event` (`payload`, its body) to plugin
/// `id`, stores the events it gives and answers the refreshes its files
/// need. Blocking.
pub fn deliver(
    store: &Store,
    plugins: &Plugins,
    id: &str,
    event: &str,
    payload: &str,
) -> Result<Delivered, ServiceError> {
    let Some(plugin) = plugins.enabled().into_iter().find(|p| p.manifest.id == id) else {
        return Err(ServiceError::NotFound(format!(
            "plugin {id} is not loaded or is disabled: put its .wasm in the plugins folder and enable it"
        )));
    };
    if !plugin.exports_webhooks() {
        return Err(ServiceError::Conflict(format!(
            "plugin {id} does not take webhook deliveries (contract 0.2.0 and the SDK's `webhooks` feature)"
        )));
    }
    let limits = CallLimits {
        timeout: DELIVERY_TIMEOUT,
        ..plugins.limits()
    };
    let outcome = plugin
        .webhook(event, payload, &limits)
        .map_err(|e| ServiceError::Plugin(format!("plugin {id}: {e}")))?;
    let events = outcome
        .events
        .into_iter()
        .map(|e| crate::plugins::event_record(id, e))
        .collect();
    let stored = crate::insights::put_plugin_events(store, id, events);
    let (files, gone) = (outcome.files.len(), outcome.gone.len());
    let mut refresh: Vec<(Location, Page)> = Vec::new();
    let changes = outcome
        .files
        .into_iter()
        .map(|f| (f.url.clone(), Some((f.url, f.text))))
        .chain(outcome.gone.into_iter().map(|url| (url, None)));
    for (url, file) in changes {
        let Some(location) = provider::location_for_file(store, id, &url)? else {
            return Err(ServiceError::Conflict(format!(
                "plugin {id} has no provider location to read {url} into: add a [[catalog.providers]] entry for it"
            )));
        };
        let at = match refresh.iter().position(|(l, _)| l.id == location.id) {
            Some(i) => i,
            None => {
                refresh.push((location, Page::default()));
                refresh.len() - 1
            }
        };
        match file {
            Some(file) => refresh[at].1.files.push(file),
            None => refresh[at].1.gone.push(url),
        }
    }
    Ok(Delivered {
        events: stored,
        files,
        gone,
        refresh,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_are_checked_in_full() {
        let hook = IncomingWebhook {
            secret: "WEBHOOK_UNIT_TEST".into(),
            signature_header: "X-Hub-Signature-256".into(),
            event_header: "X-GitHub-Event".into(),
        };
        // SAFETY: only this test uses the variable.
        unsafe {
            std::env::set_var(
                "GREENROOM_SECRET_WEBHOOK_UNIT_TEST",
                "It's a Secret to Everybody",
            )
        };
        // GitHub's documented example: this secret, this body.
        let good = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        assert!(verify(&hook, Some(good), b"Hello, World!").is_ok());
        assert!(matches!(
            verify(&hook, Some(good), b"Hello, World?"),
            Err(Refused::Signature(m)) if m.contains("does not match")
        ));
        assert!(matches!(
            verify(&hook, None, b"x"),
            Err(Refused::Signature(_))
        ));
        assert!(matches!(
            verify(&hook, Some("sha256=zz"), b"x"),
            Err(Refused::Signature(m)) if m.contains("not `sha256=<hex>`")
        ));
        let unset = IncomingWebhook {
            secret: "WEBHOOK_UNIT_TEST_UNSET".into(),
            ..hook
        };
        assert!(
            matches!(verify(&unset, Some(good), b"x"), Err(Refused::NoSecret(m)) if m.contains("GREENROOM_SECRET_WEBHOOK_UNIT_TEST_UNSET"))
        );
    }
}
