//! Sending nudges: a Slack-compatible incoming webhook, a generic JSON
//! webhook (signed with HMAC-SHA256 when a secret is set) and e-mail over
//! SMTP, each configured in `[nudges]` with its secrets in the
//! environment. HTTP goes through the host's guarded client, allowed the
//! configured URL's origin only. Every attempt has a deadline; a failed
//! one is tried again with a doubling back-off, and every message ends in
//! the nudge log, sent or failed, with where it went or why not. Teams
//! are told concurrently, so one slow receiver holds up no other.

use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use reqwest::Url;
use serde_json::json;
use sha2::Sha256;

use super::nudge::{self, Chase, Contact, LISTED, Open, Rules};
use crate::config::NudgesConfig;
use crate::net;
use crate::store::{NudgeRecord, Store, StoreError};

/// Tells teams about their open targets.
pub struct Notifier {
    store: Arc<Store>,
    config: NudgesConfig,
    rules: Rules,
    guard: net::Guard,
    /// The portal's address, for links (`server.public_url`).
    base_url: String,
}

/// What one channel answered: where it went, or why it did not.
type Outcome = Result<String, String>;

/// Largest answer read from a webhook.
const ANSWER_BYTES: u64 = 64 * 1024;

/// Header carrying the generic webhook's signature: `sha256=<hex>`.
pub const SIGNATURE_HEADER: &str = "x-greenroom-signature-256";

impl Notifier {
    pub fn new(store: Arc<Store>, config: &crate::config::Config) -> anyhow::Result<Arc<Notifier>> {
        let nudges = config.nudges.clone();
        let rules = Rules {
            min_interval: nudges.min_interval,
            before_deadline: nudges.before_deadline.clone(),
            quiet: nudges.quiet()?,
        };
        let base_url = config
            .server
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", config.server.addr))
            .trim_end_matches('/')
            .to_string();
        Ok(Arc::new(Notifier {
            store,
            guard: config.outbound_guard()?,
            config: nudges,
            rules,
            base_url,
        }))
    }

    pub fn rules(&self) -> &Rules {
        &self.rules
    }

    pub fn check_interval(&self) -> Duration {
        self.config.check_interval
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || f(&store))
            .await
            .map_err(|e| StoreError::Corrupt(format!("a store task failed: {e}")))?
    }

    /// Sends every nudge due at `now_ms` (none in quiet hours); answers
    /// the log rows written.
    pub async fn run_due(&self, now_ms: i64) -> Result<Vec<NudgeRecord>, StoreError> {
        if self.rules.is_quiet(now_ms) || !self.config.any_channel() {
            return Ok(Vec::new());
        }
        let chases = self.blocking(nudge::all).await?;
        let mut written = Vec::new();
        for chase in chases {
            let subject = chase.subject.clone();
            let (last, snoozes) = self
                .blocking(move |s| {
                    Ok((s.nudges.last_nudged(&subject)?, s.nudges.snoozes(&subject)?))
                })
                .await?;
            let due: Vec<(String, Vec<Open>, String)> = chase
                .teams
                .iter()
                .filter(|(team, _)| {
                    !snoozes
                        .iter()
                        .any(|(t, until, _)| t == team && *until > now_ms)
                })
                .filter_map(|(team, open)| {
                    let told = last.iter().find(|(t, _)| t == team).map(|(_, at)| *at);
                    self.rules
                        .due(&chase, told, now_ms)
                        .map(|why| (team.clone(), open.clone(), why))
                })
                .collect();
            written.extend(self.tell(&chase, due, now_ms).await?);
        }
        Ok(written)
    }

    /// Tells every team of `chase` that is not snoozed now, whatever the
    /// schedule (someone pressed "nudge now").
    pub async fn now(&self, chase: &Chase, now_ms: i64) -> Result<Vec<NudgeRecord>, StoreError> {
        let subject = chase.subject.clone();
        let snoozes = self.blocking(move |s| s.nudges.snoozes(&subject)).await?;
        let due = chase
            .teams
            .iter()
            .filter(|(team, _)| {
                !snoozes
                    .iter()
                    .any(|(t, until, _)| t == team && *until > now_ms)
            })
            .map(|(team, open)| (team.clone(), open.clone(), "asked for now".to_string()))
            .collect();
        self.tell(chase, due, now_ms).await
    }

    /// Tells each team, all at once; records and answers every outcome.
    async fn tell(
        &self,
        chase: &Chase,
        due: Vec<(String, Vec<Open>, String)>,
        now_ms: i64,
    ) -> Result<Vec<NudgeRecord>, StoreError> {
        let mut contacts = Vec::with_capacity(due.len());
        for (team, _, _) in &due {
            let team = team.clone();
            contacts.push(self.blocking(move |s| nudge::contact(s, &team)).await?);
        }
        let sends = due
            .iter()
            .zip(&contacts)
            .map(|((_, open, why), contact)| self.tell_team(chase, contact, open, why, now_ms));
        let records: Vec<NudgeRecord> = futures::future::join_all(sends)
            .await
            .into_iter()
            .flatten()
            .collect();
        let written = records.clone();
        self.blocking(move |s| {
            for r in &written {
                s.nudges.record_nudge(r)?;
            }
            Ok(())
        })
        .await?;
        Ok(records)
    }

    /// One team's message on every channel that reaches it.
    async fn tell_team(
        &self,
        chase: &Chase,
        contact: &Contact,
        open: &[Open],
        why: &str,
        now_ms: i64,
    ) -> Vec<NudgeRecord> {
        let message = Message::new(chase, contact, open, why, &self.base_url);
        let record = |channel: &str, attempts: u32, outcome: Outcome| NudgeRecord {
            at_ms: now_ms,
            subject: chase.subject.clone(),
            team: contact.team.clone(),
            channel: channel.into(),
            status: if outcome.is_ok() { "sent" } else { "failed" }.into(),
            targets: open.iter().map(|o| o.entity_ref.clone()).collect(),
            attempts,
            detail: Some(outcome.unwrap_or_else(|e| e)),
        };
        let mut out = Vec::new();
        if let (Some(slack), Some(channel)) = (&self.config.slack, &contact.slack_channel) {
            let (attempts, outcome) = self.retry(|| self.slack(slack, channel, &message)).await;
            out.push(record("slack", attempts, outcome));
        }
        if let (Some(email), Some(to)) = (&self.config.email, &contact.email) {
            let (attempts, outcome) = self.retry(|| self.email(email, to, &message)).await;
            out.push(record("email", attempts, outcome));
        }
        if let Some(webhook) = &self.config.webhook {
            let (attempts, outcome) = self.retry(|| self.webhook(webhook, &message)).await;
            out.push(record("webhook", attempts, outcome));
        }
        if out.is_empty() {
            out.push(NudgeRecord {
                status: "no-channel".into(),
                channel: "none".into(),
                attempts: 0,
                detail: Some(format!(
                    "{} has no {} annotation or spec.profile.email on its Group",
                    contact.team,
                    nudge::SLACK_CHANNEL
                )),
                ..record("none", 0, Ok(String::new()))
            });
        }
        out
    }

    fn no_answer(&self) -> String {
        format!(
            "no answer within {}",
            humantime::format_duration(self.config.timeout)
        )
    }

    /// Up to `attempts` tries, each within `timeout`, waiting `backoff`
    /// and then twice as long each time between them.
    async fn retry<F, Fut>(&self, attempt: F) -> (u32, Outcome)
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Outcome>,
    {
        let mut wait = self.config.backoff;
        let mut tries = 0;
        loop {
            tries += 1;
            // Each channel keeps the deadline itself; this is a backstop.
            let backstop = self.config.timeout + Duration::from_secs(1);
            let outcome = match tokio::time::timeout(backstop, attempt()).await {
                Ok(outcome) => outcome,
                Err(_) => Err(self.no_answer()),
            };
            if outcome.is_ok() || tries >= self.config.attempts {
                return (tries, outcome);
            }
            tokio::time::sleep(wait).await;
            wait *= 2;
        }
    }

    /// POSTs `body` as JSON to `url` through the guarded client, allowed
    /// that URL's origin only.
    async fn post(&self, url: &str, body: Vec<u8>, headers: &[(&str, String)]) -> Outcome {
        let url = Url::parse(url).map_err(|e| format!("not a URL: {e}"))?;
        let origin = net::Origin::of(&url).ok_or("not an http(s) URL")?;
        let mut request = net::Request::get(url.clone());
        request.method = reqwest::Method::POST;
        request.headers.insert(
            reqwest::header::CONTENT_TYPE,
            reqwest::header::HeaderValue::from_static("application/json"),
        );
        for (name, value) in headers {
            if let (Ok(n), Ok(v)) = (
                reqwest::header::HeaderName::from_bytes(name.as_bytes()),
                reqwest::header::HeaderValue::from_str(value),
            ) {
                request.headers.insert(n, v);
            }
        }
        request.body = Some(body);
        let allow = |u: &Url| match net::Origin::of(u) {
            Some(o) if o == origin => Ok(o),
            _ => Err(net::Error::NotAllowed(format!(
                "{u}: a nudge goes to its configured origin only"
            ))),
        };
        let answer = self
            .guard
            .send(request, self.config.timeout, ANSWER_BYTES, &allow)
            .await
            .map_err(|e| match e {
                net::Error::Timeout => self.no_answer(),
                other => other.to_string(),
            })?;
        if (200..300).contains(&answer.status) {
            Ok(origin.to_string())
        } else {
            Err(format!(
                "{origin} answered {}: {}",
                answer.status,
                String::from_utf8_lossy(&answer.body[..answer.body.len().min(200)])
            ))
        }
    }

    async fn slack(
        &self,
        slack: &crate::config::SlackConfig,
        channel: &str,
        m: &Message<'_>,
    ) -> Outcome {
        let url = std::env::var(&slack.webhook_env).map_err(|_| {
            format!(
                "the Slack webhook URL is not set: export {}",
                slack.webhook_env
            )
        })?;
        let body = json!({"channel": channel, "text": m.slack_text()});
        self.post(&url, body.to_string().into_bytes(), &[])
            .await
            .map(|_| channel.to_string())
    }

    async fn webhook(&self, webhook: &crate::config::WebhookConfig, m: &Message<'_>) -> Outcome {
        let body = m.json().to_string().into_bytes();
        let mut headers = Vec::new();
        if let Some(env) = &webhook.secret_env {
            let secret = std::env::var(env)
                .map_err(|_| format!("the webhook's signing secret is not set: export {env}"))?;
            headers.push((SIGNATURE_HEADER, signature(secret.as_bytes(), &body)));
        }
        self.post(&webhook.url, body, &headers).await
    }

    async fn email(
        &self,
        email: &crate::config::EmailConfig,
        to: &str,
        m: &Message<'_>,
    ) -> Outcome {
        use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
        let message = lettre::Message::builder()
            .from(
                email
                    .from
                    .parse()
                    .map_err(|e| format!("nudges.email.from: {e}"))?,
            )
            .to(to.parse().map_err(|e| format!("{to}: {e}"))?)
            .subject(m.subject())
            .header(lettre::message::header::ContentType::TEXT_PLAIN)
            .body(m.plain_text())
            .map_err(|e| format!("cannot build the message: {e}"))?;
        let mut transport = match email.tls.as_str() {
            "tls" => AsyncSmtpTransport::<Tokio1Executor>::relay(&email.smtp_host),
            "none" => Ok(AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(
                &email.smtp_host,
            )),
            _ => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&email.smtp_host),
        }
        .map_err(|e| format!("SMTP {}: {e}", email.smtp_host))?
        .port(email.smtp_port)
        .timeout(Some(self.config.timeout));
        if let (Some(user), Some(pass)) = (&email.username_env, &email.password_env) {
            let (user, pass) = (
                std::env::var(user).map_err(|_| format!("export {user} (the SMTP user)"))?,
                std::env::var(pass).map_err(|_| format!("export {pass} (the SMTP password)"))?,
            );
            transport = transport.credentials(
                lettre::transport::smtp::authentication::Credentials::new(user, pass),
            );
        }
        transport
            .build()
            .send(message)
            .await
            .map(|_| to.to_string())
            .map_err(|e| {
                format!(
                    "SMTP {}:{} refused it: {e}",
                    email.smtp_host, email.smtp_port
                )
            })
    }
}

/// `sha256=<hex HMAC-SHA256 of body>`.
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key");
    mac.update(body);
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256={hex}")
}

/// One team's nudge, in each channel's shape.
struct Message<'a> {
    chase: &'a Chase,
    contact: &'a Contact,
    open: &'a [Open],
    why: &'a str,
    base: &'a str,
}

impl<'a> Message<'a> {
    fn new(
        chase: &'a Chase,
        contact: &'a Contact,
        open: &'a [Open],
        why: &'a str,
        base: &'a str,
    ) -> Self {
        Message {
            chase,
            contact,
            open,
            why,
            base,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn headline(&self) -> String {
        let deadline = self
            .chase
            .deadline
            .as_ref()
            .map(|d| format!(", deadline {d}"))
            .unwrap_or_default();
        format!(
            "{}: {} has {} open{deadline} ({})",
            self.chase.title,
            self.contact.name,
            self.open.len(),
            self.why
        )
    }

    fn more(&self) -> Option<String> {
        (self.open.len() > LISTED).then(|| format!("and {} more", self.open.len() - LISTED))
    }

    fn subject(&self) -> String {
        format!("[Greenroom] {}", self.headline())
    }

    fn slack_text(&self) -> String {
        let mut text = format!("*{}*\n", self.headline());
        for o in self.open.iter().take(LISTED) {
            text.push_str(&format!(
                "• <{}|{}>: {}\n",
                self.url(&nudge::entity_path(&o.entity_ref)),
                nudge::short(&o.entity_ref),
                o.reason.as_deref().unwrap_or("open")
            ));
        }
        if let Some(more) = self.more() {
            text.push_str(&format!("…{more}\n"));
        }
        text.push_str(&format!(
            "<{}|Open it in Greenroom>",
            self.url(&self.chase.path)
        ));
        text
    }

    fn plain_text(&self) -> String {
        let mut text = format!("{}\n\n", self.headline());
        for o in self.open.iter().take(LISTED) {
            text.push_str(&format!(
                "- {} ({}): {}\n",
                o.entity_ref,
                self.url(&nudge::entity_path(&o.entity_ref)),
                o.reason.as_deref().unwrap_or("open")
            ));
        }
        if let Some(more) = self.more() {
            text.push_str(&format!("... {more}\n"));
        }
        text.push_str(&format!(
            "\nEverything, and how to snooze these messages: {}\n",
            self.url(&self.chase.path)
        ));
        text
    }

    fn json(&self) -> serde_json::Value {
        json!({
            "kind": "greenroom.nudge",
            "subject": self.chase.subject,
            "title": self.chase.title,
            "url": self.url(&self.chase.path),
            "deadline": self.chase.deadline,
            "reason": self.why,
            "team": {
                "ref": self.contact.team,
                "name": self.contact.name,
                "slackChannel": self.contact.slack_channel,
                "email": self.contact.email,
            },
            "open": self.open.len(),
            "targets": self.open.iter().take(LISTED).map(|o| json!({
                "entityRef": o.entity_ref,
                "url": self.url(&nudge::entity_path(&o.entity_ref)),
                "reason": o.reason,
            })).collect::<Vec<_>>(),
        })
    }
}
