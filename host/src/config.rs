//! `greenroom.toml`: server address and data folder, catalog locations,
//! custom kinds, refresh and fetch limits. Unknown keys are errors, so a typo
//! never silently falls back to a default.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use serde::Deserialize;

use crate::catalog::{CustomKind, Kinds};

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub server: ServerConfig,
    #[serde(default)]
    pub catalog: CatalogConfig,
    #[serde(default)]
    pub plugins: PluginsConfig,
    #[serde(default)]
    pub search: SearchConfig,
    #[serde(default)]
    pub web: WebConfig,
    #[serde(default)]
    pub auth: AuthConfig,
    #[serde(default)]
    pub campaigns: CampaignsConfig,
    #[serde(default)]
    pub nudges: NudgesConfig,
    /// The folder relative paths in the file are taken from.
    #[serde(skip)]
    pub base_dir: PathBuf,
    /// The file it was read from (none for a config made in code).
    #[serde(skip)]
    pub file: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    #[serde(default = "default_addr")]
    pub addr: SocketAddr,
    /// Where the store (and later caches and indexes) live.
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    /// The database: unset for SQLite in `data_dir` (the default, nothing
    /// to run), or `postgres://user@host:port/db` for PostgreSQL, whose
    /// password comes from `PGPASSWORD`, never from this file.
    #[serde(default)]
    pub database: Option<String>,
    /// The environment variable holding the bearer token that admin routes
    /// (plugin grants, disable, enable) require. Unset variable: admin
    /// routes are refused.
    #[serde(default = "default_admin_token_env")]
    pub admin_token_env: String,
    /// Bearer tokens for scripts and CI, each with scopes
    /// (`facts:write`, `events:write`). The admin token has every scope.
    #[serde(default)]
    pub tokens: Vec<TokenConfig>,
    /// A proxy for every outbound request (catalog URLs, plugin HTTP),
    /// e.g. "http://proxy.internal:3128". Unset: no proxy, whatever
    /// `HTTP_PROXY`/`HTTPS_PROXY` say.
    #[serde(default)]
    pub outbound_proxy: Option<String>,
    /// The address people use to reach the portal, e.g.
    /// "https://portal.example.com"; its host is accepted in `Host`.
    #[serde(default)]
    pub public_url: Option<String>,
    /// More host names (`name` or `name:port`) the portal answers to.
    /// Addresses and `localhost` are always accepted; any other name in
    /// `Host` is refused, which defeats DNS rebinding.
    #[serde(default)]
    pub allowed_hosts: Vec<String>,
    /// Largest request body accepted (413 above).
    #[serde(default = "default_max_body")]
    pub max_body_bytes: usize,
}

fn default_max_body() -> usize {
    16 * 1024 * 1024
}

/// A named token; its value is read from the environment variable `env`,
/// never from this file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    pub name: String,
    pub env: String,
    pub scopes: Vec<String>,
}

/// Scopes a token may carry.
/// Scopes a token may carry; `admin` is every administration right.
/// `read` grants nothing beyond reading, which every token may (for
/// scripts, when reading needs a sign-in).
pub const SCOPES: &[&str] = &[
    "read",
    "facts:write",
    "events:write",
    "campaigns:write",
    "admin",
];

fn default_admin_token_env() -> String {
    "GREENROOM_ADMIN_TOKEN".into()
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            addr: default_addr(),
            data_dir: default_data_dir(),
            database: None,
            admin_token_env: default_admin_token_env(),
            tokens: Vec::new(),
            outbound_proxy: None,
            public_url: None,
            allowed_hosts: Vec::new(),
            max_body_bytes: default_max_body(),
        }
    }
}

fn default_addr() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 7007))
}

fn default_data_dir() -> PathBuf {
    PathBuf::from(".greenroom")
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogConfig {
    #[serde(default)]
    pub locations: Vec<LocationConfig>,
    /// Entity provider locations: a plugin's `providers` export asked for
    /// what a source knows of, on every refresh.
    #[serde(default)]
    pub providers: Vec<ProviderConfig>,
    #[serde(default)]
    pub kinds: Vec<KindConfig>,
    /// How often every location is read again, e.g. "60s", "5m".
    #[serde(default = "default_refresh", with = "humantime_serde_compat")]
    pub refresh_interval: Duration,
    /// How long a URL location may take to answer.
    #[serde(default = "default_fetch_timeout", with = "humantime_serde_compat")]
    pub fetch_timeout: Duration,
    /// Larger catalog files (and substituted files) are refused.
    #[serde(default = "default_max_file_bytes")]
    pub max_file_bytes: u64,
    /// Whether `POST /api/catalog/locations` may register `file` locations
    /// (reading the server's disk). Off by default; URL locations are always
    /// allowed.
    #[serde(default)]
    pub allow_file_locations_from_api: bool,
    /// The origins (`scheme://host[:port]`) URL locations, substitutions
    /// and Location entities may read from. Empty: no URL is read. An
    /// origin written with a literal address (`http://10.0.0.5:8080`)
    /// allows that address even though it is private; a name must resolve
    /// to public addresses.
    #[serde(default)]
    pub allowed_origins: Vec<String>,
    /// Most files one location's refresh reads (its own, those its
    /// Location entities lead to, and substituted ones); the rest keep
    /// what they gave before.
    #[serde(default = "default_max_files_per_location")]
    pub max_files_per_location: usize,
    /// Most bytes one location's refresh reads, all files together.
    #[serde(default = "default_max_refresh_bytes")]
    pub max_refresh_bytes: u64,
}

fn default_max_files_per_location() -> usize {
    10_000
}

fn default_max_refresh_bytes() -> u64 {
    256 * 1024 * 1024
}

impl Default for CatalogConfig {
    fn default() -> Self {
        CatalogConfig {
            locations: Vec::new(),
            providers: Vec::new(),
            kinds: Vec::new(),
            refresh_interval: default_refresh(),
            fetch_timeout: default_fetch_timeout(),
            max_file_bytes: default_max_file_bytes(),
            allow_file_locations_from_api: false,
            allowed_origins: Vec::new(),
            max_files_per_location: default_max_files_per_location(),
            max_refresh_bytes: default_max_refresh_bytes(),
        }
    }
}

fn default_refresh() -> Duration {
    Duration::from_secs(60)
}

fn default_fetch_timeout() -> Duration {
    Duration::from_secs(10)
}

fn default_max_file_bytes() -> u64 {
    8 * 1024 * 1024
}

/// How people sign in, and who administers (`[auth]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// `guest` (the default: everyone reads, only tokens write) or `proxy`
    /// (an authenticating reverse proxy says who people are).
    #[serde(default)]
    pub mode: AuthMode,
    /// People and groups who administer: `["group:default/platform",
    /// "user:default/jane"]`.
    #[serde(default)]
    pub admins: Vec<String>,
    /// Whether reading needs a signed-in person or a token. Default: off in
    /// guest mode, on otherwise.
    #[serde(default)]
    pub require_sign_in: Option<bool>,
    /// Guest mode only, for demos: the web UI lets a visitor pick a catalog
    /// person, and actions run as that person. Never for real use.
    #[serde(default)]
    pub demo_people: bool,
    /// How a signed-in person is found in the catalog.
    #[serde(default)]
    pub resolve: Resolve,
    /// Whether a person with no User entity may sign in (with no groups).
    #[serde(default = "yes")]
    pub allow_unknown_people: bool,
    #[serde(default)]
    pub proxy: ProxyConfig,
    /// `auth.mode = "oidc"`: the OpenID Connect provider.
    #[serde(default)]
    pub oidc: Option<OidcConfig>,
    /// A session ends after this long without a request (`8h`).
    #[serde(default = "default_session_idle", with = "humantime_serde_compat")]
    pub session_idle: Duration,
    /// ...and this long after sign-in, whatever happens (`7d`).
    #[serde(default = "default_session_max", with = "humantime_serde_compat")]
    pub session_max: Duration,
}

impl Default for AuthConfig {
    /// What an absent `[auth]` means.
    fn default() -> Self {
        AuthConfig {
            mode: AuthMode::Guest,
            admins: Vec::new(),
            require_sign_in: None,
            demo_people: false,
            resolve: Resolve::Email,
            allow_unknown_people: true,
            proxy: ProxyConfig::default(),
            oidc: None,
            session_idle: default_session_idle(),
            session_max: default_session_max(),
        }
    }
}

fn default_session_idle() -> Duration {
    Duration::from_secs(8 * 3600)
}

fn default_session_max() -> Duration {
    Duration::from_secs(7 * 86_400)
}

/// An OpenID Connect provider (Okta, Entra ID, Google, Keycloak, Dex,
/// GitLab): the authorization code flow with PKCE.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcConfig {
    /// The issuer, e.g. "https://accounts.google.com"; its discovery
    /// document is read from `<issuer>/.well-known/openid-configuration`.
    pub issuer: String,
    pub client_id: String,
    /// The environment variable holding the client secret (never this file).
    #[serde(default = "default_client_secret_env")]
    pub client_secret_env: String,
    #[serde(default = "default_scopes")]
    pub scopes: Vec<String>,
    /// What the sign-in button says ("Sign in with Okta").
    #[serde(default = "default_provider_name")]
    pub name: String,
}

fn default_client_secret_env() -> String {
    "GREENROOM_OIDC_CLIENT_SECRET".into()
}

fn default_scopes() -> Vec<String> {
    vec!["openid".into(), "email".into(), "profile".into()]
}

fn default_provider_name() -> String {
    "your company account".into()
}

impl AuthConfig {
    pub fn require_sign_in(&self) -> bool {
        self.require_sign_in
            .unwrap_or(!matches!(self.mode, AuthMode::Guest))
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthMode {
    #[default]
    Guest,
    Proxy,
    Oidc,
}

/// Like Backstage's sign-in resolvers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Resolve {
    /// `spec.profile.email` of a User.
    #[default]
    Email,
    /// The User's `metadata.name` (the proxy's user header, or the email's
    /// local part).
    Name,
    /// The annotation `greenroom.dev/sso-subject` of a User.
    Annotation,
}

/// An authenticating reverse proxy (oauth2-proxy, Pomerium, an ingress).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProxyConfig {
    /// Addresses or CIDRs (`10.0.0.0/8`) the proxy connects from; its
    /// headers are ignored (and logged) from anywhere else.
    #[serde(default)]
    pub trusted: Vec<String>,
    #[serde(default = "default_email_headers")]
    pub email_headers: Vec<String>,
    #[serde(default = "default_user_headers")]
    pub user_headers: Vec<String>,
}

impl Default for ProxyConfig {
    fn default() -> Self {
        ProxyConfig {
            trusted: Vec::new(),
            email_headers: default_email_headers(),
            user_headers: default_user_headers(),
        }
    }
}

fn default_email_headers() -> Vec<String> {
    vec!["X-Forwarded-Email".into(), "X-Auth-Request-Email".into()]
}

fn default_user_headers() -> Vec<String> {
    vec!["X-Forwarded-User".into(), "X-Auth-Request-User".into()]
}

/// An address or a CIDR block, for `auth.proxy.trusted`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    pub addr: std::net::IpAddr,
    pub bits: u8,
}

impl Cidr {
    pub fn parse(text: &str) -> Result<Cidr, String> {
        let (addr, bits) = match text.split_once('/') {
            Some((a, b)) => (a, Some(b)),
            None => (text, None),
        };
        let addr: std::net::IpAddr = addr
            .trim()
            .parse()
            .map_err(|_| format!("'{text}' is not an address or CIDR like 10.0.0.0/8"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let bits = match bits {
            Some(b) => b
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|b| *b <= max)
                .ok_or_else(|| format!("'{text}': the prefix length must be 0 to {max}"))?,
            None => max,
        };
        Ok(Cidr { addr, bits })
    }

    pub fn contains(&self, ip: std::net::IpAddr) -> bool {
        let ip = match ip {
            std::net::IpAddr::V6(v6) => v6.to_ipv4_mapped().map(std::net::IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        match (self.addr, ip) {
            (std::net::IpAddr::V4(a), std::net::IpAddr::V4(b)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.bits)).unwrap_or(0);
                u32::from(a) & mask == u32::from(b) & mask
            }
            (std::net::IpAddr::V6(a), std::net::IpAddr::V6(b)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.bits))
                    .unwrap_or(0);
                u128::from(a) & mask == u128::from(b) & mask
            }
            _ => false,
        }
    }
}

/// The web UI.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct WebConfig {
    /// The built app (`index.html` and `assets/`, as `cargo xtask web`
    /// writes them), relative to this file. Unset: the environment
    /// variable `GREENROOM_WEB_DIR`, and without it the API alone.
    #[serde(default)]
    pub dir: Option<PathBuf>,
}

/// Campaigns' history.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CampaignsConfig {
    /// How often the host looks for catalog and fact changes to record in
    /// every campaign's history ("0s": never). Nothing is evaluated when
    /// nothing changed.
    #[serde(default = "default_record_interval", with = "humantime_serde_compat")]
    pub record_interval: Duration,
    /// Days of history kept; older changes are folded into what each
    /// target was then.
    #[serde(default = "default_history_days")]
    pub history_days: u32,
}

fn default_record_interval() -> Duration {
    Duration::from_secs(60)
}

fn default_history_days() -> u32 {
    400
}

impl Default for CampaignsConfig {
    fn default() -> Self {
        CampaignsConfig {
            record_interval: default_record_interval(),
            history_days: default_history_days(),
        }
    }
}

/// Nudges: the owners of open campaign targets (and entities below a
/// scorecard level) told on a schedule and as a deadline nears, through
/// the channels configured here. A campaign or scorecard opts in with
/// `spec.nudge.every`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NudgesConfig {
    /// How often the host looks for nudges due ("0s": never).
    #[serde(default = "default_nudge_check", with = "humantime_serde_compat")]
    pub check_interval: Duration,
    /// No team hears about one campaign more often than this.
    #[serde(default = "default_min_interval", with = "humantime_serde_compat")]
    pub min_interval: Duration,
    /// Hours (UTC) in which nothing is sent, like "20:00-08:00"; what is
    /// due waits for their end.
    #[serde(default)]
    pub quiet_hours: Option<String>,
    /// Days before a deadline that bring a nudge of their own.
    #[serde(default = "default_before_deadline")]
    pub before_deadline: Vec<u32>,
    /// One attempt's deadline.
    #[serde(default = "default_nudge_timeout", with = "humantime_serde_compat")]
    pub timeout: Duration,
    /// Attempts per message before it is recorded as failed.
    #[serde(default = "default_nudge_attempts")]
    pub attempts: u32,
    /// The wait before the second attempt; doubled for each one after.
    #[serde(default = "default_nudge_backoff", with = "humantime_serde_compat")]
    pub backoff: Duration,
    #[serde(default)]
    pub slack: Option<SlackConfig>,
    #[serde(default)]
    pub webhook: Option<WebhookConfig>,
    #[serde(default)]
    pub email: Option<EmailConfig>,
}

/// A Slack-compatible incoming webhook; its URL is a secret, so it comes
/// from the environment. Teams name their channel with the
/// `slack.com/channel` annotation on their Group.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlackConfig {
    pub webhook_env: String,
}

/// A generic JSON webhook, told about every team's nudge (with the team's
/// contact), signed with HMAC-SHA256 when a secret is set.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    pub url: String,
    #[serde(default)]
    pub secret_env: Option<String>,
}

/// E-mail over SMTP to each Group's `spec.profile.email`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailConfig {
    pub smtp_host: String,
    #[serde(default = "default_smtp_port")]
    pub smtp_port: u16,
    /// `Greenroom <greenroom@example.com>`.
    pub from: String,
    /// `starttls` (default), `tls`, or `none` (a relay on this machine).
    #[serde(default = "default_smtp_tls")]
    pub tls: String,
    #[serde(default)]
    pub username_env: Option<String>,
    #[serde(default)]
    pub password_env: Option<String>,
}

fn default_nudge_check() -> Duration {
    Duration::from_secs(300)
}

fn default_min_interval() -> Duration {
    Duration::from_secs(86_400)
}

fn default_before_deadline() -> Vec<u32> {
    vec![14, 7, 1]
}

fn default_nudge_timeout() -> Duration {
    Duration::from_secs(10)
}

fn default_nudge_attempts() -> u32 {
    3
}

fn default_nudge_backoff() -> Duration {
    Duration::from_secs(2)
}

fn default_smtp_port() -> u16 {
    587
}

fn default_smtp_tls() -> String {
    "starttls".into()
}

impl Default for NudgesConfig {
    fn default() -> Self {
        NudgesConfig {
            check_interval: default_nudge_check(),
            min_interval: default_min_interval(),
            quiet_hours: None,
            before_deadline: default_before_deadline(),
            timeout: default_nudge_timeout(),
            attempts: default_nudge_attempts(),
            backoff: default_nudge_backoff(),
            slack: None,
            webhook: None,
            email: None,
        }
    }
}

impl NudgesConfig {
    /// `quiet_hours` as minutes of the day (start, end), if set.
    pub fn quiet(&self) -> anyhow::Result<Option<(u32, u32)>> {
        let Some(text) = &self.quiet_hours else {
            return Ok(None);
        };
        let minutes = |t: &str| -> Option<u32> {
            let (h, m) = t.trim().split_once(':')?;
            let (h, m) = (h.parse::<u32>().ok()?, m.parse::<u32>().ok()?);
            (h < 24 && m < 60).then_some(h * 60 + m)
        };
        text.split_once('-')
            .and_then(|(a, b)| Some((minutes(a)?, minutes(b)?)))
            .map(Some)
            .ok_or_else(|| {
                anyhow::anyhow!("nudges.quiet_hours '{text}' is not like 20:00-08:00 (UTC)")
            })
    }

    /// Whether any channel is configured.
    pub fn any_channel(&self) -> bool {
        self.slack.is_some() || self.webhook.is_some() || self.email.is_some()
    }
}

/// Global search.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchConfig {
    /// The index folder (default: `<data_dir>/search`); rebuilt when
    /// missing, unreadable or of another schema version.
    #[serde(default)]
    pub dir: Option<PathBuf>,
    /// How often the whole index is built again, so that documents
    /// plugins derive from files (TechDocs pages) follow edits that change
    /// no entity ("0s": never). Catalog changes are followed at once
    /// regardless.
    #[serde(default = "default_rebuild_interval", with = "humantime_serde_compat")]
    pub rebuild_interval: Duration,
}

fn default_rebuild_interval() -> Duration {
    Duration::from_secs(3600)
}

impl Default for SearchConfig {
    fn default() -> Self {
        SearchConfig {
            dir: None,
            rebuild_interval: default_rebuild_interval(),
        }
    }
}

/// The plugin runtime: where plugins live, what each call may use, and
/// what administrators granted.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginsConfig {
    /// Folder of `.wasm` plugins (relative to this file); none when unset.
    #[serde(default)]
    pub dir: Option<PathBuf>,
    /// Where compiled plugins are cached (default: `<data_dir>/plugin-cache`).
    #[serde(default)]
    pub cache_dir: Option<PathBuf>,
    /// How long one call into a plugin may run.
    #[serde(default = "default_call_timeout", with = "humantime_serde_compat")]
    pub call_timeout: Duration,
    /// How long one page of an entity provider's discovery may take (it
    /// may make many requests).
    #[serde(default = "default_provider_timeout", with = "humantime_serde_compat")]
    pub provider_timeout: Duration,
    #[serde(default = "default_memory_mib")]
    pub memory_limit_mib: usize,
    /// Largest answer a call may return.
    #[serde(default = "default_max_output")]
    pub max_output_bytes: usize,
    #[serde(default = "default_fetch_timeout", with = "humantime_serde_compat")]
    pub http_timeout: Duration,
    #[serde(default = "default_http_max")]
    pub http_max_bytes: u64,
    #[serde(default)]
    pub grants: Vec<GrantConfig>,
    /// Names plugin HTTP resolves to fixed addresses, like /etc/hosts (for
    /// upstreams behind split DNS). Private addresses are still refused
    /// unless the origin is granted by address.
    #[serde(default)]
    pub resolve: HashMap<String, std::net::IpAddr>,
    /// The most kv storage any plugin gets, whatever its manifest asks.
    #[serde(default = "default_max_kv_quota")]
    pub max_kv_quota_bytes: u64,
    /// How long a plugin's cards for an entity are served from cache.
    #[serde(default = "default_cards_ttl", with = "humantime_serde_compat")]
    pub cards_ttl: Duration,
    /// Each plugin's settings, `[plugins.config.<id>]`, read by the plugin
    /// through the `config` import (values as text).
    #[serde(default)]
    pub config: HashMap<String, toml::Table>,
    /// Plugins whose actions (re-run, deploy, merge) may run from the
    /// portal. Off for every plugin unless listed here.
    #[serde(default)]
    pub allow_actions: Vec<String>,
    /// How often plugins are asked for every entity's facts ("0s": never).
    #[serde(default = "default_facts_interval", with = "humantime_serde_compat")]
    pub facts_interval: Duration,
    /// How often plugins are asked for new events ("0s": never).
    #[serde(default = "default_events_interval", with = "humantime_serde_compat")]
    pub events_interval: Duration,
    /// Plugins that receive webhook deliveries at
    /// `POST /api/webhooks/<id>`, `[plugins.webhooks.<id>]`: how a
    /// delivery is signed. A plugin not listed receives none.
    #[serde(default)]
    pub webhooks: HashMap<String, IncomingWebhook>,
}

/// How one plugin's webhook deliveries are signed: an HMAC-SHA256 of the
/// body with a shared secret, hex in a header (GitHub's
/// `X-Hub-Signature-256: sha256=<hex>`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct IncomingWebhook {
    /// The secret's name: its value comes from the environment variable
    /// `GREENROOM_SECRET_<NAME>`, never from this file.
    pub secret: String,
    /// The header that carries the signature.
    #[serde(default = "default_signature_header")]
    pub signature_header: String,
    /// The header that names the event (`push`).
    #[serde(default = "default_event_header")]
    pub event_header: String,
}

fn default_signature_header() -> String {
    "X-Hub-Signature-256".into()
}

fn default_event_header() -> String {
    "X-GitHub-Event".into()
}

fn default_facts_interval() -> Duration {
    Duration::from_secs(15 * 60)
}

fn default_events_interval() -> Duration {
    Duration::from_secs(60)
}

impl PluginsConfig {
    /// A plugin's settings as text, the way the `config` import hands them
    /// over: strings as they are, numbers and flags as written.
    pub fn settings(&self, id: &str) -> HashMap<String, String> {
        self.config
            .get(id)
            .map(|table| {
                table
                    .iter()
                    .map(|(k, v)| {
                        let text = match v {
                            toml::Value::String(s) => s.clone(),
                            other => other.to_string(),
                        };
                        (k.clone(), text)
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
}

fn default_max_kv_quota() -> u64 {
    16 * 1024 * 1024
}

fn default_cards_ttl() -> Duration {
    Duration::from_secs(60)
}

impl Default for PluginsConfig {
    fn default() -> Self {
        PluginsConfig {
            dir: None,
            cache_dir: None,
            call_timeout: default_call_timeout(),
            provider_timeout: default_provider_timeout(),
            memory_limit_mib: default_memory_mib(),
            max_output_bytes: default_max_output(),
            http_timeout: default_fetch_timeout(),
            http_max_bytes: default_http_max(),
            grants: Vec::new(),
            resolve: Default::default(),
            max_kv_quota_bytes: default_max_kv_quota(),
            cards_ttl: default_cards_ttl(),
            config: HashMap::new(),
            allow_actions: Vec::new(),
            facts_interval: default_facts_interval(),
            events_interval: default_events_interval(),
            webhooks: HashMap::new(),
        }
    }
}

fn default_call_timeout() -> Duration {
    Duration::from_secs(2)
}

fn default_provider_timeout() -> Duration {
    Duration::from_secs(60)
}

fn default_memory_mib() -> usize {
    64
}

fn default_max_output() -> usize {
    1024 * 1024
}

fn default_http_max() -> u64 {
    10 * 1024 * 1024
}

/// What one plugin may use. Secret values come from the environment
/// variable `GREENROOM_SECRET_<NAME>`, never from this file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrantConfig {
    pub id: String,
    #[serde(default)]
    pub hosts: Vec<String>,
    #[serde(default)]
    pub secrets: Vec<SecretGrant>,
}

impl GrantConfig {
    /// The secrets with the origins each is bound to: written out, or the
    /// grant's one host.
    pub fn secret_grants(&self) -> impl Iterator<Item = SecretGrant> + '_ {
        self.secrets
            .iter()
            .map(|s| match (s, self.hosts.as_slice()) {
                (SecretGrant::Name(name), [host]) => SecretGrant::bound(name, vec![host.clone()]),
                (other, _) => other.clone(),
            })
    }
}

/// A secret granted to a plugin, bound to the origins it may be sent to:
/// `"GITHUB_TOKEN"` (bound to the grant's one host) or
/// `{ name = "GITHUB_TOKEN", hosts = ["https://api.github.com"] }`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(untagged)]
pub enum SecretGrant {
    Name(String),
    Bound(BoundSecret),
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct BoundSecret {
    pub name: String,
    pub hosts: Vec<String>,
}

impl SecretGrant {
    pub fn bound(name: &str, hosts: Vec<String>) -> SecretGrant {
        SecretGrant::Bound(BoundSecret {
            name: name.to_string(),
            hosts,
        })
    }

    pub fn name(&self) -> &str {
        match self {
            SecretGrant::Name(n) => n,
            SecretGrant::Bound(b) => &b.name,
        }
    }

    /// The origins it is bound to, when written out.
    pub fn hosts(&self) -> Option<&[String]> {
        match self {
            SecretGrant::Name(_) => None,
            SecretGrant::Bound(b) => Some(&b.hosts),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocationConfig {
    #[serde(rename = "type", default = "default_location_type")]
    pub kind: String,
    pub target: String,
}

/// `[[catalog.providers]]`: one provider location.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
    /// The id of the plugin whose `providers` export answers.
    pub plugin: String,
    /// The location's name (lower-case letters, digits and `-`); its
    /// entities are managed by `provider:<plugin>/<name>`.
    pub name: String,
    /// Settings handed to the plugin, as a JSON object.
    #[serde(default)]
    pub config: serde_json::Map<String, serde_json::Value>,
    /// How long an entity the provider stopped returning stays.
    #[serde(default = "default_provider_grace", with = "humantime_serde_compat")]
    pub grace: Duration,
    /// What accepting one of its suggestions does: `register` it in the
    /// catalog at once (the default), or open a `pull-request` adding its
    /// catalog file through the plugin (its action `catalog-pull-request`;
    /// the plugin must be in `[plugins] allow_actions`).
    #[serde(default)]
    pub accept: Accept,
}

/// See [`ProviderConfig::accept`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Accept {
    #[default]
    Register,
    PullRequest,
}

impl ProviderConfig {
    /// The location target: `<plugin>/<name>`.
    pub fn target(&self) -> String {
        format!("{}/{}", self.plugin, self.name)
    }

    /// What is wrong with the names, if anything.
    pub fn check(&self) -> Result<(), String> {
        let ok = |s: &str| {
            !s.is_empty()
                && s.len() <= 63
                && s.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        };
        if !ok(&self.plugin) || !ok(&self.name) {
            return Err(format!(
                "[[catalog.providers]] plugin '{}' name '{}': both must be lower-case letters, digits and '-' (at most 63)",
                self.plugin, self.name
            ));
        }
        Ok(())
    }
}

fn default_provider_grace() -> Duration {
    Duration::from_secs(3600)
}

fn default_location_type() -> String {
    "file".into()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KindConfig {
    /// e.g. `MLModel`.
    pub kind: String,
    /// Accepted apiVersions; empty accepts any `group/version`.
    #[serde(default)]
    pub api_versions: Vec<String>,
    /// A JSON Schema (JSON or YAML file) for the kind's `spec`.
    pub schema: PathBuf,
    #[serde(default = "yes")]
    pub owner_required: bool,
}

fn yes() -> bool {
    true
}

/// `name:port` → `name`; `[::1]:80` → `[::1]`.
pub fn strip_port(host: &str) -> &str {
    match host.rfind(':') {
        Some(i)
            if !host[i..].contains(']') && host[i + 1..].bytes().all(|b| b.is_ascii_digit()) =>
        {
            &host[..i]
        }
        _ => host,
    }
}

mod humantime_serde_compat {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_duration(&text).map_err(|e| {
            serde::de::Error::custom(format!(
                "'{text}' is not a duration like \"30s\" or \"5m\": {e}"
            ))
        })
    }
}

impl Config {
    /// Reads and checks a config file.
    pub fn load(path: &Path) -> anyhow::Result<Config> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config file {}", path.display()))?;
        let mut config: Config =
            toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        config.base_dir = path
            .parent()
            .map(Path::to_path_buf)
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or_else(|| PathBuf::from("."));
        config.base_dir = std::path::absolute(&config.base_dir).unwrap_or(config.base_dir);
        config.file = path.file_name().map(|name| config.base_dir.join(name));
        for (i, l) in config.catalog.locations.iter().enumerate() {
            if !matches!(l.kind.as_str(), "file" | "url") {
                bail!(
                    "{}: catalog.locations[{i}].type is '{}'; use \"file\" or \"url\"",
                    path.display(),
                    l.kind
                );
            }
        }
        config
            .catalog_origins()
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        config
            .outbound_guard()
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        config
            .host_names()
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        for (i, g) in config.plugins.grants.iter().enumerate() {
            for h in g
                .hosts
                .iter()
                .chain(g.secrets.iter().filter_map(SecretGrant::hosts).flatten())
            {
                crate::net::Origin::parse(h).map_err(|e| {
                    anyhow::anyhow!("{}: plugins.grants[{i}] ({}): {e}", path.display(), g.id)
                })?;
            }
            // A secret written by name alone is bound to the grant's one
            // host (`GrantConfig::secret_grants`); with several hosts,
            // which one it is for must be said.
            for s in &g.secrets {
                if let SecretGrant::Name(name) = s
                    && g.hosts.len() != 1
                {
                    bail!(
                        "{}: plugins.grants[{i}] ({}) grants secret {name} without saying where it may be sent, and the grant has {} hosts; write secrets = [{{ name = \"{name}\", hosts = [\"https://…\"] }}]",
                        path.display(),
                        g.id,
                        g.hosts.len()
                    );
                }
            }
        }
        let auth = &config.auth;
        if auth.demo_people && auth.mode != AuthMode::Guest {
            bail!(
                "{}: auth.demo_people lets anyone act as anyone; it exists only in guest mode, not with auth.mode = proxy",
                path.display()
            );
        }
        for (i, c) in auth.proxy.trusted.iter().enumerate() {
            Cidr::parse(c)
                .map_err(|e| anyhow::anyhow!("{}: auth.proxy.trusted[{i}]: {e}", path.display()))?;
        }
        match (&auth.oidc, auth.mode) {
            (None, AuthMode::Oidc) => bail!(
                "{}: auth.mode = \"oidc\" needs [auth.oidc] with issuer and client_id",
                path.display()
            ),
            (Some(_), m) if m != AuthMode::Oidc => bail!(
                "{}: [auth.oidc] is set but auth.mode is not \"oidc\"; one sign-in mode at a time",
                path.display()
            ),
            (Some(oidc), _) => {
                crate::net::Origin::of(&reqwest::Url::parse(&oidc.issuer).map_err(|e| {
                    anyhow::anyhow!(
                        "{}: auth.oidc.issuer '{}': {e}",
                        path.display(),
                        oidc.issuer
                    )
                })?)
                .ok_or_else(|| {
                    anyhow::anyhow!(
                        "{}: auth.oidc.issuer '{}' must be an http(s) URL",
                        path.display(),
                        oidc.issuer
                    )
                })?;
                if !oidc.scopes.iter().any(|s| s == "openid") {
                    bail!(
                        "{}: auth.oidc.scopes must include \"openid\"",
                        path.display()
                    );
                }
                if config.server.public_url.is_none() {
                    bail!(
                        "{}: auth.mode = \"oidc\" needs server.public_url (the provider sends people back to <public_url>/auth/callback; register that address with it)",
                        path.display()
                    );
                }
            }
            (None, _) => {}
        }
        if auth.session_idle.is_zero() || auth.session_max < auth.session_idle {
            bail!(
                "{}: auth.session_idle must be above zero and at most auth.session_max",
                path.display()
            );
        }
        config
            .nudges
            .quiet()
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        if config.nudges.attempts == 0 {
            bail!("{}: nudges.attempts must be at least 1", path.display());
        }
        if let Some(w) = &config.nudges.webhook {
            reqwest::Url::parse(&w.url).map_err(|e| {
                anyhow::anyhow!(
                    "{}: nudges.webhook.url '{}' is not a URL: {e}",
                    path.display(),
                    w.url
                )
            })?;
        }
        if let Some(e) = &config.nudges.email
            && !matches!(e.tls.as_str(), "starttls" | "tls" | "none")
        {
            bail!(
                "{}: nudges.email.tls '{}' must be starttls, tls or none",
                path.display(),
                e.tls
            );
        }
        if config.campaigns.history_days == 0 {
            bail!(
                "{}: campaigns.history_days must be at least 1 (the burndowns read the history)",
                path.display()
            );
        }
        if auth.mode == AuthMode::Proxy && auth.proxy.trusted.is_empty() {
            bail!(
                "{}: auth.mode = \"proxy\" needs auth.proxy.trusted: the addresses the sign-in proxy connects from",
                path.display()
            );
        }
        for (i, a) in auth.admins.iter().enumerate() {
            let r = crate::catalog::EntityRef::parse(a, None, "default")
                .map_err(|e| anyhow::anyhow!("{}: auth.admins[{i}] '{a}': {e}", path.display()))?;
            if !matches!(r.kind.as_str(), "user" | "group") || !a.contains(':') {
                bail!(
                    "{}: auth.admins[{i}] '{a}' must name a user or group with its kind, like group:default/platform",
                    path.display()
                );
            }
        }
        for (i, t) in config.server.tokens.iter().enumerate() {
            if let Some(bad) = t.scopes.iter().find(|s| !SCOPES.contains(&s.as_str())) {
                bail!(
                    "{}: server.tokens[{i}] ({}) has unknown scope '{bad}'; scopes are {}",
                    path.display(),
                    t.name,
                    SCOPES.join(", ")
                );
            }
        }
        Ok(config)
    }

    /// The config used when no file is given: the current folder.
    pub fn in_dir(dir: &Path) -> Config {
        Config {
            base_dir: std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf()),
            ..Config::default()
        }
    }

    /// `catalog.allowed_origins`, parsed.
    pub fn catalog_origins(&self) -> anyhow::Result<Vec<crate::net::Origin>> {
        self.catalog
            .allowed_origins
            .iter()
            .enumerate()
            .map(|(i, o)| {
                crate::net::Origin::parse(o)
                    .map_err(|e| anyhow::anyhow!("catalog.allowed_origins[{i}]: {e}"))
            })
            .collect()
    }

    /// The host names the portal answers to, beyond addresses and
    /// `localhost`: `server.public_url`'s host and `server.allowed_hosts`,
    /// lowercase, without ports.
    pub fn host_names(&self) -> anyhow::Result<Vec<String>> {
        let mut names = Vec::new();
        if let Some(u) = &self.server.public_url {
            let url = reqwest::Url::parse(u)
                .map_err(|e| anyhow::anyhow!("server.public_url '{u}' is not a URL: {e}"))?;
            let host = url
                .host_str()
                .ok_or_else(|| anyhow::anyhow!("server.public_url '{u}' has no host"))?;
            names.push(host.to_ascii_lowercase());
        }
        for h in &self.server.allowed_hosts {
            names.push(strip_port(h).to_ascii_lowercase());
        }
        Ok(names)
    }

    /// The network settings every outbound request shares.
    pub fn outbound_guard(&self) -> anyhow::Result<crate::net::Guard> {
        let proxy =
            match &self.server.outbound_proxy {
                Some(p) => Some(reqwest::Url::parse(p).map_err(|e| {
                    anyhow::anyhow!("server.outbound_proxy '{p}' is not a URL: {e}")
                })?),
                None => None,
            };
        Ok(crate::net::Guard {
            resolve_override: HashMap::new(),
            proxy,
            clients: Default::default(),
        })
    }

    pub fn resolve(&self, path: &Path) -> PathBuf {
        if path.is_absolute() {
            path.to_path_buf()
        } else {
            self.base_dir.join(path)
        }
    }

    /// Where the built web UI is, if anywhere.
    pub fn web_dir(&self) -> Option<PathBuf> {
        match &self.web.dir {
            Some(dir) => Some(self.resolve(dir)),
            None => std::env::var_os("GREENROOM_WEB_DIR")
                .filter(|d| !d.is_empty())
                .map(PathBuf::from),
        }
    }

    pub fn search_dir(&self) -> PathBuf {
        match &self.search.dir {
            Some(d) => self.resolve(d),
            None => self.resolve(&self.server.data_dir).join("search"),
        }
    }

    pub fn store_path(&self) -> PathBuf {
        self.resolve(&self.server.data_dir).join("greenroom.db")
    }

    /// Where compiled plugins are cached: `plugins.cache_dir`, or
    /// `<data_dir>/plugin-cache`.
    pub fn plugin_cache_dir(&self) -> PathBuf {
        match &self.plugins.cache_dir {
            Some(dir) => self.resolve(dir),
            None => self.resolve(&self.server.data_dir).join("plugin-cache"),
        }
    }

    /// The plugins folder, when one is configured.
    pub fn plugins_dir(&self) -> Option<PathBuf> {
        self.plugins.dir.as_ref().map(|d| self.resolve(d))
    }

    /// Loads the custom kinds' schemas.
    pub fn kinds(&self) -> anyhow::Result<Kinds> {
        let mut kinds = Kinds::default();
        for k in &self.catalog.kinds {
            let path = self.resolve(&k.schema);
            let text = std::fs::read_to_string(&path).with_context(|| {
                format!(
                    "custom kind {}: cannot read its schema {}",
                    k.kind,
                    path.display()
                )
            })?;
            let schema = if path.extension().is_some_and(|e| e == "json") {
                serde_json::from_str(&text).with_context(|| {
                    format!(
                        "custom kind {}: {} is not valid JSON",
                        k.kind,
                        path.display()
                    )
                })?
            } else {
                crate::yaml::parse_documents(&text)
                    .map_err(|e| anyhow::anyhow!("custom kind {}: {}:{e}", k.kind, path.display()))?
                    .into_iter()
                    .next()
                    .map(|d| d.value)
                    .unwrap_or_default()
            };
            kinds.add(CustomKind::new(
                &k.kind,
                k.api_versions.clone(),
                k.owner_required,
                &schema,
            )?)?;
        }
        Ok(kinds)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_bound_to_origins() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("greenroom.toml");
        std::fs::write(
            &path,
            r#"
[[plugins.grants]]
id = "github"
hosts = ["https://api.github.com"]
secrets = ["GITHUB_TOKEN"]
[[plugins.grants]]
id = "sentry"
hosts = ["https://sentry.io", "https://eu.sentry.io"]
secrets = [{ name = "SENTRY_TOKEN", hosts = ["https://sentry.io"] }]
"#,
        )
        .unwrap();
        let c = Config::load(&path).unwrap();
        assert_eq!(
            c.plugins.grants[0].secret_grants().collect::<Vec<_>>(),
            [SecretGrant::bound(
                "GITHUB_TOKEN",
                vec!["https://api.github.com".into()]
            )],
            "the simple form binds to the grant's one host"
        );
        assert_eq!(
            c.plugins.grants[1].secrets[0].hosts(),
            Some(&["https://sentry.io".to_string()][..])
        );
        // By name alone with two hosts: which one is not said, so refused.
        std::fs::write(
            &path,
            "[[plugins.grants]]\nid = \"x\"\nhosts = [\"https://a.example\", \"https://b.example\"]\nsecrets = [\"T\"]\n",
        )
        .unwrap();
        let err = Config::load(&path).unwrap_err().to_string();
        assert!(
            err.contains("grants secret T without saying where it may be sent"),
            "{err}"
        );
        std::fs::write(
            &path,
            "[catalog]\nallowed_origins = [\"https://git.example/org\"]\n",
        )
        .unwrap();
        let err = Config::load(&path).unwrap_err().to_string();
        assert!(err.contains("catalog.allowed_origins[0]"), "{err}");
    }

    #[test]
    fn reads_a_full_config_and_rejects_typos() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("m.schema.json"),
            r#"{"type": "object", "required": ["framework"]}"#,
        )
        .unwrap();
        let path = dir.path().join("greenroom.toml");
        std::fs::write(
            &path,
            r#"
[server]
addr = "127.0.0.1:9000"
[catalog]
refresh_interval = "5m"
[[catalog.locations]]
target = "catalog/all.yaml"
[[catalog.kinds]]
kind = "MLModel"
schema = "m.schema.json"
"#,
        )
        .unwrap();
        let c = Config::load(&path).unwrap();
        assert_eq!(c.server.addr.port(), 9000);
        assert_eq!(c.catalog.refresh_interval, Duration::from_secs(300));
        assert_eq!(c.catalog.locations[0].kind, "file");
        assert!(c.kinds().unwrap().get("mlmodel").is_some());

        std::fs::write(&path, "[catalog]\nrefresh_intervall = \"5m\"\n").unwrap();
        let err = Config::load(&path).unwrap_err().to_string();
        assert!(
            err.contains("refresh_intervall") && err.contains("greenroom.toml"),
            "{err}"
        );
        std::fs::write(&path, "[catalog]\nrefresh_interval = \"soon\"\n").unwrap();
        assert!(
            Config::load(&path)
                .unwrap_err()
                .to_string()
                .contains("not a duration")
        );
    }
}
