//! OpenID Connect sign-in, the relying party's side: the authorization
//! code flow with PKCE, `state` and `nonce`. The `openidconnect` crate
//! checks the discovery document, the ID token's signature and claims; we
//! only carry its HTTP through the one guarded client ([`crate::net`]) and
//! keep the flows that are under way.
//!
//! A flow begins at [`Oidc::begin`], which remembers its PKCE verifier,
//! nonce and where to return, under its `state`, for ten minutes; the
//! browser carries the same `state` in a cookie, so a callback that this
//! browser did not start is refused. [`Oidc::finish`] takes the flow out
//! (a callback replayed later finds nothing), exchanges the code and
//! verifies the ID token.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreProviderMetadata, CoreUserInfoClaims,
};
use openidconnect::{
    AccessTokenHash, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointMaybeSet,
    EndpointNotSet, EndpointSet, IssuerUrl, Nonce, OAuth2TokenResponse, PkceCodeChallenge,
    PkceCodeVerifier, RedirectUrl, Scope, TokenResponse,
};
use reqwest::Url;

use crate::config::{Config, OidcConfig};
use crate::net::{self, Origin};

/// A flow must come back within this.
const FLOW_LIFETIME: Duration = Duration::from_secs(600);
/// Flows under way at most; past this the oldest go (each is a few hundred
/// bytes, so a flood of sign-in starts cannot grow memory without bound).
const MAX_FLOWS: usize = 10_000;
/// How long the provider's discovery document and keys are reused.
const METADATA_LIFETIME: Duration = Duration::from_secs(900);
/// Every request to the provider: one deadline, one size cap.
const PROVIDER_TIMEOUT: Duration = Duration::from_secs(10);
const PROVIDER_MAX_BYTES: u64 = 1024 * 1024;

/// A client made from a discovery document: an authorization URL; maybe
/// token and userinfo endpoints.
type Client = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// Who the provider says signed in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub subject: String,
    pub email: Option<String>,
    pub username: Option<String>,
}

/// A flow under way.
struct Flow {
    verifier: String,
    nonce: String,
    return_to: String,
    started: Instant,
}

/// The configured provider, and the flows under way.
pub struct Oidc {
    config: OidcConfig,
    redirect: RedirectUrl,
    secret: Option<String>,
    http: Http,
    metadata: tokio::sync::Mutex<Option<(Instant, CoreProviderMetadata)>>,
    flows: Mutex<HashMap<String, Flow>>,
}

/// The HTTP error type the crate's client trait wants.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct HttpError(String);

impl Oidc {
    /// The provider of `auth.oidc`, when the mode is `oidc`. The client
    /// secret is read from its environment variable now; a provider that
    /// needs none (a public client) works without it.
    pub fn new(config: &Config) -> anyhow::Result<Option<Oidc>> {
        let Some(oidc) = config.auth.oidc.clone() else {
            return Ok(None);
        };
        let issuer = Url::parse(&oidc.issuer)
            .ok()
            .and_then(|u| Origin::of(&u))
            .ok_or_else(|| {
                anyhow::anyhow!("auth.oidc.issuer '{}' is not an http(s) URL", oidc.issuer)
            })?;
        let public = config
            .server
            .public_url
            .as_deref()
            .ok_or_else(|| anyhow::anyhow!("auth.mode = \"oidc\" needs server.public_url"))?;
        let redirect = RedirectUrl::new(format!("{}/auth/callback", public.trim_end_matches('/')))
            .map_err(|e| anyhow::anyhow!("server.public_url '{public}': {e}"))?;
        let secret = std::env::var(&oidc.client_secret_env)
            .ok()
            .filter(|s| !s.is_empty());
        if secret.is_none() {
            tracing::warn!(
                variable = %oidc.client_secret_env,
                "no OpenID Connect client secret in the environment; signing in as a public client (PKCE only)"
            );
        }
        Ok(Some(Oidc {
            redirect,
            secret,
            http: Http {
                guard: config.outbound_guard()?,
                issuer,
            },
            metadata: tokio::sync::Mutex::new(None),
            flows: Mutex::new(HashMap::new()),
            config: oidc,
        }))
    }

    /// What the sign-in button names.
    pub fn name(&self) -> &str {
        &self.config.name
    }

    /// The provider's discovery document and keys, read again after
    /// [`METADATA_LIFETIME`] (keys rotate).
    async fn metadata(&self) -> Result<CoreProviderMetadata, String> {
        let mut cached = self.metadata.lock().await;
        if let Some((at, m)) = cached.as_ref()
            && at.elapsed() < METADATA_LIFETIME
        {
            return Ok(m.clone());
        }
        let issuer = IssuerUrl::new(self.config.issuer.clone()).map_err(|e| e.to_string())?;
        let metadata = CoreProviderMetadata::discover_async(issuer, &self.http)
            .await
            .map_err(|e| {
                format!(
                    "cannot read the identity provider's discovery document at {}/.well-known/openid-configuration: {}",
                    self.config.issuer.trim_end_matches('/'),
                    chain(&e)
                )
            })?;
        *cached = Some((Instant::now(), metadata.clone()));
        Ok(metadata)
    }

    /// The crate's client for the provider as it describes itself now.
    async fn client(&self) -> Result<Client, String> {
        Ok(CoreClient::from_provider_metadata(
            self.metadata().await?,
            ClientId::new(self.config.client_id.clone()),
            self.secret.clone().map(ClientSecret::new),
        )
        .set_redirect_uri(self.redirect.clone()))
    }

    /// Starts a flow: the provider's address to send the browser to, and
    /// the flow's `state` (for the browser's cookie).
    pub async fn begin(&self, return_to: String) -> Result<(Url, String), String> {
        let client = self.client().await?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request = client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .set_pkce_challenge(challenge);
        for scope in self.config.scopes.iter().filter(|s| *s != "openid") {
            request = request.add_scope(Scope::new(scope.clone()));
        }
        let (url, state, nonce) = request.url();
        let mut flows = self.flows.lock().unwrap_or_else(|p| p.into_inner());
        flows.retain(|_, f| f.started.elapsed() < FLOW_LIFETIME);
        if flows.len() >= MAX_FLOWS
            && let Some(oldest) = flows
                .iter()
                .min_by_key(|(_, f)| f.started)
                .map(|(k, _)| k.clone())
        {
            flows.remove(&oldest);
        }
        flows.insert(
            state.secret().clone(),
            Flow {
                verifier: verifier.secret().clone(),
                nonce: nonce.secret().clone(),
                return_to,
                started: Instant::now(),
            },
        );
        Ok((url, state.secret().clone()))
    }

    /// Finishes the flow `state` with the provider's `code`: who signed in,
    /// and where they were going. Each flow finishes at most once.
    pub async fn finish(&self, state: &str, code: &str) -> Result<(Identity, String), String> {
        let flow = self
            .flows
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(state)
            .filter(|f| f.started.elapsed() < FLOW_LIFETIME)
            .ok_or("this sign-in is unknown, already used or over ten minutes old; start again")?;
        let client = self.client().await?;
        let http = &self.http;
        let tokens = client
            .exchange_code(AuthorizationCode::new(code.to_string()))
            .map_err(|e| format!("the identity provider has no token endpoint: {e}"))?
            .set_pkce_verifier(PkceCodeVerifier::new(flow.verifier))
            .request_async(http)
            .await
            .map_err(|e| format!("the identity provider refused the code: {}", chain(&e)))?;
        let id_token = tokens.id_token().ok_or(
            "the identity provider answered without an ID token (is \"openid\" among the scopes?)",
        )?;
        let verifier = client.id_token_verifier();
        let claims = id_token
            .claims(&verifier, &Nonce::new(flow.nonce))
            .map_err(|e| format!("the ID token is not valid: {e}"))?;
        if let Some(expected) = claims.access_token_hash() {
            let alg = id_token.signing_alg().map_err(|e| e.to_string())?;
            let key = id_token.signing_key(&verifier).map_err(|e| e.to_string())?;
            let actual = AccessTokenHash::from_token(tokens.access_token(), alg, key)
                .map_err(|e| e.to_string())?;
            if actual != *expected {
                return Err("the ID token does not match its access token".into());
            }
        }
        let mut identity = Identity {
            subject: claims.subject().to_string(),
            email: verified_email(claims.email().map(|e| e.as_str()), claims.email_verified()),
            username: claims.preferred_username().map(|u| u.to_string()),
        };
        // Many providers (oidc-provider, Okta's defaults) put the profile
        // in the userinfo answer, not the ID token.
        if identity.email.is_none()
            && let Ok(request) = client.user_info(
                tokens.access_token().clone(),
                Some(claims.subject().clone()),
            )
        {
            let info: CoreUserInfoClaims = request
                .request_async(http)
                .await
                .map_err(|e| format!("the identity provider's userinfo failed: {}", chain(&e)))?;
            identity.email =
                verified_email(info.email().map(|e| e.as_str()), info.email_verified());
            if identity.username.is_none() {
                identity.username = info.preferred_username().map(|u| u.to_string());
            }
        }
        Ok((identity, flow.return_to))
    }
}

/// The crate's HTTP, through the guarded client.
struct Http {
    guard: net::Guard,
    /// The issuer's origin, reached even at a private address.
    issuer: Origin,
}

impl Http {
    /// Sends one request of the crate's through the guarded client. The
    /// issuer's own origin is reached even at a private address (it is
    /// configured); anything else the discovery document names must be
    /// https at a public address.
    async fn send(
        &self,
        request: openidconnect::HttpRequest,
    ) -> Result<openidconnect::HttpResponse, HttpError> {
        let (parts, body) = request.into_parts();
        let url = Url::parse(&parts.uri.to_string()).map_err(|e| HttpError(e.to_string()))?;
        let mut headers = reqwest::header::HeaderMap::new();
        for (name, value) in &parts.headers {
            headers.insert(name.clone(), value.clone());
        }
        let method = reqwest::Method::from_bytes(parts.method.as_str().as_bytes())
            .map_err(|e| HttpError(e.to_string()))?;
        let request = net::Request {
            method,
            url,
            headers,
            // The client secret travels in Authorization, which never
            // follows a redirect to another origin.
            sensitive: Vec::new(),
            body: (!body.is_empty()).then_some(body),
        };
        let issuer = self.issuer.clone();
        let allow = move |url: &Url| -> Result<Origin, net::Error> {
            let origin = Origin::of(url)
                .ok_or_else(|| net::Error::Refused(format!("'{url}' is not an http(s) URL")))?;
            if origin == issuer || origin.scheme == "https" && !origin.names_address() {
                Ok(origin)
            } else {
                Err(net::Error::NotAllowed(format!(
                    "the identity provider sent us to {origin}, which is neither its issuer's origin nor an https name"
                )))
            }
        };
        let response = self
            .guard
            .send(request, PROVIDER_TIMEOUT, PROVIDER_MAX_BYTES, &allow)
            .await
            .map_err(|e| HttpError(format!("the identity provider: {e}")))?;
        let mut builder = openidconnect::http::Response::builder().status(response.status);
        for (name, value) in &response.headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        builder
            .body(response.body)
            .map_err(|e| HttpError(e.to_string()))
    }
}

impl<'c> openidconnect::AsyncHttpClient<'c> for Http {
    type Error = HttpError;
    type Future = std::pin::Pin<
        Box<
            dyn std::future::Future<Output = Result<openidconnect::HttpResponse, HttpError>>
                + Send
                + 'c,
        >,
    >;

    fn call(&'c self, request: openidconnect::HttpRequest) -> Self::Future {
        Box::pin(self.send(request))
    }
}

/// An email the provider says is not verified is not used to find anyone.
fn verified_email(email: Option<&str>, verified: Option<bool>) -> Option<String> {
    match (email, verified) {
        (Some(_), Some(false)) => None,
        (Some(e), _) => Some(e.to_string()),
        (None, _) => None,
    }
}

/// An error and its causes, on one line.
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unverified_emails_find_nobody() {
        assert_eq!(verified_email(Some("a@x"), Some(false)), None);
        assert_eq!(verified_email(Some("a@x"), None), Some("a@x".into()));
        assert_eq!(verified_email(Some("a@x"), Some(true)), Some("a@x".into()));
    }
}
