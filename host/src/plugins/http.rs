//! Plugin HTTP: only to granted origins, never to private addresses unless
//! granted by address, secrets injected by the host, redirects re-checked,
//! size and time capped.

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use reqwest::Url;

/// `scheme://host:port`, the unit of an HTTP grant.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Origin {
    pub scheme: String,
    pub host: String,
    pub port: u16,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}:{}", self.scheme, self.host, self.port)
    }
}

impl Origin {
    /// Parses `https://api.github.com` or `http://127.0.0.1:9000`.
    pub fn parse(text: &str) -> Result<Origin, String> {
        let url = Url::parse(text).map_err(|e| format!("'{text}' is not a URL: {e}"))?;
        if url.path() != "/" || url.query().is_some() {
            return Err(format!("'{text}' must be only scheme://host[:port]"));
        }
        Origin::of(&url).ok_or_else(|| format!("'{text}' must be an http(s) URL with a host"))
    }

    pub fn of(url: &Url) -> Option<Origin> {
        if !matches!(url.scheme(), "http" | "https") {
            return None;
        }
        Some(Origin {
            scheme: url.scheme().to_string(),
            host: url.host_str()?.to_ascii_lowercase(),
            port: url.port_or_known_default()?,
        })
    }

    /// A grant by literal address is an explicit grant of that address,
    /// private or not. A name (even `localhost`) must resolve to public
    /// addresses.
    fn names_address(&self) -> bool {
        self.host.trim_matches(['[', ']']).parse::<IpAddr>().is_ok()
    }
}

/// Addresses a plugin may not reach unless granted by address: loopback,
/// private, link-local (cloud metadata at 169.254.169.254), unspecified,
/// shared, documentation, multicast, and their IPv6 kin.
pub fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || (o[0] == 100 && (64..128).contains(&o[1]))
                || o[0] == 0
        }
        IpAddr::V6(v6) => {
            let seg = v6.segments();
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (seg[0] & 0xfe00) == 0xfc00
                || (seg[0] & 0xffc0) == 0xfe80
                || v6
                    .to_ipv4_mapped()
                    .is_some_and(|v4| is_private(IpAddr::V4(v4)))
        }
    }
}

/// What a plugin may use: requested in its manifest and granted by an
/// administrator. Checked here, in one place.
#[derive(Debug, Clone, Default)]
pub struct Allowed {
    /// For messages that tell an administrator what to grant.
    pub plugin_id: String,
    pub origins: Vec<Origin>,
    /// Secret name → value.
    pub secrets: HashMap<String, String>,
    pub timeout: Duration,
    pub max_bytes: u64,
    /// Names the operator resolves by hand (`[plugins.resolve]`).
    pub resolve_override: HashMap<String, IpAddr>,
}

/// A request as the plugin gave it.
#[derive(Debug)]
pub struct Request {
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<Vec<u8>>,
}

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    NotGranted(String),
    Refused(String),
    Timeout,
    TooLarge,
    Transport(String),
}

const MAX_REDIRECTS: usize = 5;

impl Allowed {
    fn check_origin(&self, url: &Url) -> Result<Origin, Error> {
        let origin = Origin::of(url)
            .ok_or_else(|| Error::Refused(format!("'{url}' is not an http(s) URL")))?;
        if !self.origins.contains(&origin) {
            return Err(Error::NotGranted(format!(
                "host {origin} is not granted to plugin {}; grant it under [[plugins.grants]] in greenroom.toml (hosts = [\"{}://{}:{}\"]) if its manifest asks for it",
                self.plugin_id, origin.scheme, origin.host, origin.port
            )));
        }
        Ok(origin)
    }

    /// Replaces `{{secret:NAME}}` in header values with granted secrets.
    fn inject(&self, value: &str) -> Result<String, Error> {
        let mut out = String::with_capacity(value.len());
        let mut rest = value;
        while let Some(start) = rest.find("{{secret:") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 9..];
            let end = after
                .find("}}")
                .ok_or_else(|| Error::Refused("unterminated {{secret:…}} in a header".into()))?;
            let name = &after[..end];
            let secret = self.secrets.get(name).ok_or_else(|| {
                Error::NotGranted(format!("secret {name} is not granted to this plugin"))
            })?;
            out.push_str(secret);
            rest = &after[end + 2..];
        }
        out.push_str(rest);
        Ok(out)
    }

    /// Resolves the host and refuses private addresses unless the origin
    /// was granted by address.
    async fn resolve(&self, origin: &Origin) -> Result<Vec<SocketAddr>, Error> {
        let host = origin.host.trim_matches(['[', ']']).to_string();
        let addrs: Vec<SocketAddr> = match self.resolve_override.get(&host) {
            // The operator pinned this name (like /etc/hosts, for plugins);
            // the same private-address rule applies to the answer.
            Some(ip) => vec![SocketAddr::new(*ip, origin.port)],
            None => tokio::net::lookup_host((host.as_str(), origin.port))
                .await
                .map_err(|e| Error::Transport(format!("cannot resolve {host}: {e}")))?
                .collect(),
        };
        if addrs.is_empty() {
            return Err(Error::Transport(format!("{host} has no address")));
        }
        if !origin.names_address()
            && let Some(bad) = addrs.iter().find(|a| is_private(a.ip()))
        {
            return Err(Error::Refused(format!(
                "{host} resolves to {}, a private, loopback or link-local address; grant it by address to allow it",
                bad.ip()
            )));
        }
        Ok(addrs)
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
        let timeout = timeout.min(self.timeout);
        if timeout.is_zero() {
            return Err(Error::Timeout);
        }
        let method = reqwest::Method::from_bytes(request.method.to_ascii_uppercase().as_bytes())
            .map_err(|_| Error::Refused(format!("bad method '{}'", request.method)))?;
        let mut url = Url::parse(&request.url)
            .map_err(|e| Error::Refused(format!("bad URL '{}': {e}", request.url)))?;
        // The destination is checked before any secret is looked at.
        self.check_origin(&url)?;
        let mut headers = reqwest::header::HeaderMap::new();
        for (name, value) in &request.headers {
            let value = self.inject(value)?;
            let name = reqwest::header::HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| Error::Refused(format!("bad header name '{name}'")))?;
            let value = reqwest::header::HeaderValue::from_str(&value)
                .map_err(|_| Error::Refused(format!("bad value for header {name}")))?;
            headers.insert(name, value);
        }
        let deadline = tokio::time::Instant::now() + timeout;
        for _ in 0..=MAX_REDIRECTS {
            let origin = self.check_origin(&url)?;
            let addrs = self.resolve(&origin).await?;
            // Pin the connection to the addresses just checked, so DNS cannot
            // answer differently a moment later.
            let client = reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .resolve_to_addrs(&origin.host, &addrs)
                .timeout(timeout)
                .build()
                .map_err(|e| Error::Transport(e.to_string()))?;
            let mut req = client
                .request(method.clone(), url.clone())
                .headers(headers.clone());
            if let Some(body) = &request.body {
                req = req.body(body.clone());
            }
            let send = tokio::time::timeout_at(deadline, req.send());
            let mut resp = match send.await {
                Err(_) => return Err(Error::Timeout),
                Ok(Err(e)) if e.is_timeout() => return Err(Error::Timeout),
                Ok(Err(e)) => return Err(Error::Transport(e.to_string())),
                Ok(Ok(r)) => r,
            };
            if resp.status().is_redirection()
                && let Some(location) = resp
                    .headers()
                    .get(reqwest::header::LOCATION)
                    .and_then(|v| v.to_str().ok())
            {
                url = url
                    .join(location)
                    .map_err(|e| Error::Refused(format!("bad redirect: {e}")))?;
                // Credentials never follow a redirect to another origin.
                if Origin::of(&url).as_ref() != Some(&origin) {
                    headers.remove(reqwest::header::AUTHORIZATION);
                }
                continue;
            }
            if resp.content_length().is_some_and(|n| n > self.max_bytes) {
                return Err(Error::TooLarge);
            }
            let status = resp.status().as_u16();
            let out_headers = resp
                .headers()
                .iter()
                .map(|(k, v)| {
                    (
                        k.to_string(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect();
            let mut body = Vec::new();
            loop {
                let chunk = match tokio::time::timeout_at(deadline, resp.chunk()).await {
                    Err(_) => return Err(Error::Timeout),
                    Ok(Err(e)) => return Err(Error::Transport(e.to_string())),
                    Ok(Ok(c)) => c,
                };
                let Some(chunk) = chunk else { break };
                body.extend_from_slice(&chunk);
                if body.len() as u64 > self.max_bytes {
                    return Err(Error::TooLarge);
                }
            }
            return Ok(Response {
                status,
                headers: out_headers,
                body,
            });
        }
        Err(Error::Refused(format!(
            "more than {MAX_REDIRECTS} redirects"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_parse_and_compare() {
        let o = Origin::parse("https://API.github.com").unwrap();
        assert_eq!(o.to_string(), "https://api.github.com:443");
        assert_eq!(
            Origin::of(&Url::parse("https://api.github.com/repos/x").unwrap()),
            Some(o)
        );
        assert!(Origin::parse("https://x.example/path").is_err());
        assert!(Origin::parse("ftp://x.example").is_err());
    }

    #[test]
    fn private_addresses_are_recognised() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(is_private(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["140.82.112.3", "2606:4700::1111"] {
            assert!(!is_private(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn secrets_are_injected_only_when_granted() {
        let allowed = Allowed {
            secrets: [("TOKEN".to_string(), "s3cret".to_string())].into(),
            ..Allowed::default()
        };
        assert_eq!(
            allowed.inject("Bearer {{secret:TOKEN}}").unwrap(),
            "Bearer s3cret"
        );
        assert!(
            matches!(allowed.inject("{{secret:OTHER}}"), Err(Error::NotGranted(m)) if m.contains("OTHER"))
        );
        assert!(allowed.inject("{{secret:TOKEN").is_err());
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

    fn allowed(origins: &[&str]) -> Allowed {
        Allowed {
            plugin_id: "test".into(),
            origins: origins.iter().map(|o| Origin::parse(o).unwrap()).collect(),
            secrets: [("TOKEN".to_string(), "s3cret".to_string())].into(),
            timeout: Duration::from_millis(500),
            max_bytes: 1024,
            resolve_override: HashMap::new(),
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
