//! Plugin HTTP: only to granted origins, secrets injected by the host and
//! only for the origins each secret is granted for. The network rules
//! (private addresses, pinning, redirects, size and time) are the host's
//! one guarded client, `crate::net`.

use std::collections::HashMap;
use std::time::Duration;

use reqwest::Url;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

use crate::net::{self, Origin};

/// A secret granted to a plugin: its value (from `GREENROOM_SECRET_<NAME>`,
/// `None` when that variable is unset) and the origins it may be sent to.
#[derive(Debug, Clone, Default)]
pub struct Secret {
    pub value: Option<String>,
    pub origins: Vec<Origin>,
}

/// What a plugin may use: requested in its manifest and granted by an
/// administrator. Checked here, in one place.
#[derive(Debug, Clone, Default)]
pub struct Allowed {
    /// For messages that tell an administrator what to grant.
    pub plugin_id: String,
    pub origins: Vec<Origin>,
    /// Secret name → value and the origins it is bound to.
    pub secrets: HashMap<String, Secret>,
    /// The secrets the plugin's manifest declares, granted or not.
    pub declared_secrets: Vec<String>,
    pub timeout: Duration,
    pub max_bytes: u64,
    pub guard: net::Guard,
}

/// A request as the plugin gave it.
#[derive(Debug)]
pub struct Request {
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<Vec<u8>>,
}

pub use net::Response;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    NotGranted(String),
    Refused(String),
    Timeout,
    TooLarge,
    Transport(String),
}

impl From<net::Error> for Error {
    fn from(e: net::Error) -> Self {
        match e {
            net::Error::NotAllowed(m) => Error::NotGranted(m),
            net::Error::Refused(m) => Error::Refused(m),
            net::Error::Timeout => Error::Timeout,
            net::Error::TooLarge { .. } => Error::TooLarge,
            net::Error::Transport(m) => Error::Transport(m),
        }
    }
}

impl Allowed {
    fn check_origin(&self, url: &Url) -> Result<Origin, net::Error> {
        let origin = Origin::of(url)
            .ok_or_else(|| net::Error::Refused(format!("'{url}' is not an http(s) URL")))?;
        if !self.origins.contains(&origin) {
            return Err(net::Error::NotAllowed(format!(
                "host {origin} is not granted to plugin {}; grant it under [[plugins.grants]] in greenroom.toml (hosts = [\"{origin}\"]) if its manifest asks for it",
                self.plugin_id
            )));
        }
        Ok(origin)
    }

    /// Replaces `{{secret:NAME}}` in a header value with the secret, if it
    /// is granted for `origin`. Says whether a secret was filled in.
    fn inject(&self, value: &str, origin: &Origin) -> Result<(String, bool), Error> {
        let mut out = String::with_capacity(value.len());
        let mut rest = value;
        let mut filled = false;
        while let Some(start) = rest.find("{{secret:") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 9..];
            let end = after
                .find("}}")
                .ok_or_else(|| Error::Refused("unterminated {{secret:…}} in a header".into()))?;
            let name = &after[..end];
            let id = &self.plugin_id;
            let secret = self.secrets.get(name).ok_or_else(|| {
                Error::NotGranted(if self.declared_secrets.iter().any(|s| s == name) {
                    format!(
                        "secret {name} is not granted to plugin {id}; grant it under [[plugins.grants]] in greenroom.toml (secrets = [\"{name}\"])"
                    )
                } else {
                    format!(
                        "plugin {id} uses secret {name}, which its manifest does not declare: add \"{name}\" to the manifest's \"secrets\", then an administrator grants it"
                    )
                })
            })?;
            if !secret.origins.contains(origin) {
                let bound: Vec<String> = secret.origins.iter().map(ToString::to_string).collect();
                return Err(Error::NotGranted(format!(
                    "secret {name} of plugin {id} may be sent only to {}, not to {origin}; bind it with secrets = [{{ name = \"{name}\", hosts = [\"{origin}\"] }}]",
                    if bound.is_empty() {
                        "no origin".to_string()
                    } else {
                        bound.join(", ")
                    }
                )));
            }
            let value = secret.value.as_deref().ok_or_else(|| {
                Error::NotGranted(format!(
                    "secret {name} is granted to plugin {id}, but the server has no value for it: set the environment variable GREENROOM_SECRET_{name} and restart"
                ))
            })?;
            out.push_str(value);
            filled = true;
            rest = &after[end + 2..];
        }
        out.push_str(rest);
        Ok((out, filled))
    }

    /// Performs the request, following redirects only to granted origins.
    pub async fn fetch(&self, request: Request) -> Result<Response, Error> {
        self.fetch_within(request, self.timeout).await
    }

    /// Like [`Allowed::fetch`], but done within `timeout` at most (the
    /// time left of the plugin call that asked).
    pub async fn fetch_within(
        &self,
        request: Request,
        timeout: Duration,
    ) -> Result<Response, Error> {
        let method = reqwest::Method::from_bytes(request.method.to_ascii_uppercase().as_bytes())
            .map_err(|_| Error::Refused(format!("bad method '{}'", request.method)))?;
        let url = Url::parse(&request.url)
            .map_err(|e| Error::Refused(format!("bad URL '{}': {e}", request.url)))?;
        // The destination is checked before any secret is looked at.
        let origin = self.check_origin(&url)?;
        let mut headers = HeaderMap::new();
        let mut sensitive = Vec::new();
        for (name, value) in &request.headers {
            let (value, secret) = self.inject(value, &origin)?;
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| Error::Refused(format!("bad header name '{name}'")))?;
            let mut value = HeaderValue::from_str(&value)
                .map_err(|_| Error::Refused(format!("bad value for header {name}")))?;
            if secret {
                value.set_sensitive(true);
                sensitive.push(name.clone());
            }
            headers.append(name, value);
        }
        let request = net::Request {
            method,
            url,
            headers,
            sensitive,
            body: request.body,
        };
        Ok(self
            .guard
            .send(request, timeout.min(self.timeout), self.max_bytes, &|url| {
                self.check_origin(url)
            })
            .await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin(text: &str) -> Origin {
        Origin::parse(text).unwrap()
    }

    #[test]
    fn secrets_are_injected_only_when_granted_for_the_origin() {
        let github = origin("https://api.github.com");
        let allowed = Allowed {
            plugin_id: "github".into(),
            secrets: [
                (
                    "TOKEN".to_string(),
                    Secret {
                        value: Some("s3cret".into()),
                        origins: vec![github.clone()],
                    },
                ),
                (
                    "UNSET".to_string(),
                    Secret {
                        value: None,
                        origins: vec![github.clone()],
                    },
                ),
            ]
            .into(),
            declared_secrets: vec!["TOKEN".into(), "UNSET".into(), "OTHER".into()],
            ..Allowed::default()
        };
        assert_eq!(
            allowed.inject("Bearer {{secret:TOKEN}}", &github).unwrap(),
            ("Bearer s3cret".to_string(), true)
        );
        assert_eq!(
            allowed.inject("plain", &github).unwrap(),
            ("plain".to_string(), false)
        );
        let err = allowed.inject("{{secret:OTHER}}", &github).unwrap_err();
        assert!(
            matches!(&err, Error::NotGranted(m) if m.contains("secret OTHER is not granted to plugin github")),
            "{err:?}"
        );
        // Not even declared: the fix is in the plugin, not the grants.
        let err = allowed
            .inject("{{secret:UNDECLARED}}", &github)
            .unwrap_err();
        assert!(
            matches!(&err, Error::NotGranted(m) if m.contains("uses secret UNDECLARED, which its manifest does not declare")),
            "{err:?}"
        );
        let err = allowed
            .inject("{{secret:TOKEN}}", &origin("https://evil.example"))
            .unwrap_err();
        assert!(
            matches!(&err, Error::NotGranted(m) if m.contains("only to https://api.github.com:443, not to https://evil.example:443")),
            "{err:?}"
        );
        // Granted but without a value on the server: the message says so,
        // and names the variable to set.
        let err = allowed.inject("{{secret:UNSET}}", &github).unwrap_err();
        assert!(
            matches!(&err, Error::NotGranted(m) if m.contains("set the environment variable GREENROOM_SECRET_UNSET")),
            "{err:?}"
        );
        assert!(allowed.inject("{{secret:TOKEN", &github).is_err());
    }
}

#[cfg(test)]
mod fetch_tests {
    use std::net::SocketAddr;

    use axum::Router;
    use axum::http::HeaderMap;
    use axum::response::Redirect;
    use axum::routing::get;

    use super::*;

    async fn server() -> SocketAddr {
        let app = Router::new()
            .route(
                "/auth",
                get(|h: HeaderMap| async move {
                    h.get("authorization")
                        .map(|v| v.to_str().unwrap().to_string())
                        .unwrap_or_default()
                }),
            )
            .route(
                "/echo",
                get(|h: HeaderMap| async move {
                    let mut names: Vec<String> = h
                        .iter()
                        .map(|(k, v)| format!("{k}={}", v.to_str().unwrap_or("?")))
                        .collect();
                    names.sort();
                    names.join("\n")
                }),
            )
            .route(
                "/to-other",
                get(|h: HeaderMap| async move {
                    let to = h
                        .get("x-to")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("http://127.0.0.1:1")
                        .to_string();
                    Redirect::temporary(&format!("{to}/echo"))
                }),
            )
            .route("/big", get(|| async { "x".repeat(4096) }))
            .route(
                "/slow",
                get(|| async {
                    tokio::time::sleep(Duration::from_secs(30)).await;
                    "late"
                }),
            )
            .route(
                "/away",
                get(|| async { Redirect::temporary("http://127.0.0.2:9/elsewhere") }),
            )
            .route("/here", get(|| async { Redirect::temporary("/auth") }))
            .route(
                "/to-localhost",
                get(|h: HeaderMap| async move {
                    // Redirect to the same server by a name that resolves to loopback.
                    let port = h
                        .get("x-port")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("1")
                        .to_string();
                    Redirect::temporary(&format!("http://localhost:{port}/auth"))
                }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        addr
    }

    /// Grants `origins`; the secret TOKEN is bound to the first.
    fn allowed(origins: &[&str]) -> Allowed {
        let origins: Vec<Origin> = origins.iter().map(|o| Origin::parse(o).unwrap()).collect();
        Allowed {
            plugin_id: "test".into(),
            secrets: [(
                "TOKEN".to_string(),
                Secret {
                    value: Some("s3cret".into()),
                    origins: origins[..1].to_vec(),
                },
            )]
            .into(),
            declared_secrets: vec!["TOKEN".into()],
            origins,
            timeout: Duration::from_millis(500),
            max_bytes: 1024,
            guard: net::Guard::default(),
        }
    }

    fn request(url: String, auth: &str) -> Request {
        Request {
            method: "GET".into(),
            url,
            headers: vec![("Authorization".into(), auth.into())],
            body: None,
        }
    }

    #[tokio::test]
    async fn granted_addresses_work_with_secrets_injected() {
        let addr = server().await;
        let a = allowed(&[&format!("http://127.0.0.1:{}", addr.port())]);
        let r = a
            .fetch(request(
                format!("http://{addr}/auth"),
                "Bearer {{secret:TOKEN}}",
            ))
            .await
            .unwrap();
        assert_eq!((r.status, r.body), (200, b"Bearer s3cret".to_vec()));
        // A redirect within the granted origin is followed.
        let r = a
            .fetch(request(
                format!("http://{addr}/here"),
                "Bearer {{secret:TOKEN}}",
            ))
            .await
            .unwrap();
        assert_eq!(r.body, b"Bearer s3cret".to_vec());
    }

    #[tokio::test]
    async fn headers_that_carried_secrets_do_not_follow_a_redirect_to_another_origin() {
        let (a, b) = (server().await, server().await);
        let grants = allowed(&[
            &format!("http://127.0.0.1:{}", a.port()),
            &format!("http://127.0.0.1:{}", b.port()),
        ]);
        let echo = |r: Response| String::from_utf8(r.body).unwrap();
        let request = |path: &str| Request {
            method: "GET".into(),
            url: format!("http://{a}{path}"),
            headers: vec![
                ("X-Api-Key".into(), "{{secret:TOKEN}}".into()),
                ("Private-Token".into(), "k={{secret:TOKEN}}".into()),
                ("Cookie".into(), "session=1".into()),
                ("Accept".into(), "application/json".into()),
                ("x-to".into(), format!("http://127.0.0.1:{}", b.port())),
            ],
            body: None,
        };
        // Sent where the secret is bound, every header arrives.
        let direct = echo(grants.fetch(request("/echo")).await.unwrap());
        assert!(direct.contains("x-api-key=s3cret"), "{direct}");
        assert!(direct.contains("private-token=k=s3cret"), "{direct}");
        // Redirected to another granted origin, the secret-bearing headers
        // and credentials are gone; the others stay.
        let moved = echo(grants.fetch(request("/to-other")).await.unwrap());
        assert!(moved.contains("accept=application/json"), "{moved}");
        assert!(!moved.contains("s3cret"), "{moved}");
        assert!(!moved.contains("cookie"), "{moved}");
        // Sent straight to the other origin, the secret is refused.
        let mut req = request("/echo");
        req.url = format!("http://{b}/echo");
        let err = grants.fetch(req).await.unwrap_err();
        assert!(
            matches!(&err, Error::NotGranted(m) if m.contains("may be sent only to")),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn a_redirect_to_a_private_address_is_refused_even_when_granted_by_name() {
        let addr = server().await;
        let a = allowed(&[
            &format!("http://127.0.0.1:{}", addr.port()),
            &format!("http://localhost:{}", addr.port()),
        ]);
        let mut req = request(
            format!("http://{addr}/to-localhost"),
            "Bearer {{secret:TOKEN}}",
        );
        req.headers.push(("x-port".into(), addr.port().to_string()));
        let err = a.fetch(req).await.unwrap_err();
        assert!(
            matches!(&err, Error::Refused(m) if m.contains("localhost resolves to")),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn names_resolving_to_private_addresses_are_refused() {
        let addr = server().await;
        let a = allowed(&[&format!("http://localhost:{}", addr.port())]);
        let err = a
            .fetch(request(
                format!("http://localhost:{}/auth", addr.port()),
                "x",
            ))
            .await
            .unwrap_err();
        assert!(
            matches!(&err, Error::Refused(m) if m.contains("private, loopback or link-local")),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn redirects_sizes_and_time_are_checked() {
        let addr = server().await;
        let a = allowed(&[&format!("http://127.0.0.1:{}", addr.port())]);
        let err = a
            .fetch(request(format!("http://{addr}/away"), "x"))
            .await
            .unwrap_err();
        assert!(
            matches!(&err, Error::NotGranted(m) if m.contains("127.0.0.2:9")),
            "redirect re-checked: {err:?}"
        );
        assert_eq!(
            a.fetch(request(format!("http://{addr}/big"), "x"))
                .await
                .unwrap_err(),
            Error::TooLarge
        );
        assert_eq!(
            a.fetch(request(format!("http://{addr}/slow"), "x"))
                .await
                .unwrap_err(),
            Error::Timeout
        );
        let err = a
            .fetch(request("http://example.invalid/".into(), "x"))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::NotGranted(_)));
        let err = a
            .fetch(request(format!("http://{addr}/auth"), "{{secret:NOPE}}"))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::NotGranted(m) if m.contains("NOPE")));
    }
}
