//! The one guarded outbound HTTP client. Every byte the host fetches from
//! the network goes through [`Guard::send`]: catalog URL locations and
//! `$text`/`$json`/`$yaml` substitutions, plugins' `source` reads and docs
//! assets (through `ingest::Reader`), and plugin HTTP (`plugins::http`).
//!
//! The rules, in one place:
//! - the caller's `allow` check runs on the first URL and again on every
//!   redirect hop (grants, allowed origins, the stay-in-the-folder rule);
//! - a name is resolved once and must resolve to public addresses only;
//!   a private, loopback, link-local or otherwise reserved address is
//!   reached only when the allowed origin names that address literally;
//! - the connection is pinned to the addresses just checked, so DNS cannot
//!   answer differently a moment later;
//! - headers that carried secrets are dropped on any redirect to another
//!   origin (and `Authorization`, `Cookie` and `Proxy-Authorization` always);
//! - one deadline covers every hop and the whole body, and the body is
//!   capped while it streams;
//! - `HTTP(S)_PROXY` from the environment is ignored; a proxy is used only
//!   when configured (`server.outbound_proxy`).

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use reqwest::Url;
use reqwest::header::{HeaderMap, HeaderName};
use tokio::time::Instant;

/// `scheme://host:port`, the unit of an HTTP grant and of
/// `catalog.allowed_origins`.
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

    /// An origin written with a literal address is an explicit allowance
    /// of that address, private or not. A name (even `localhost`) must
    /// resolve to public addresses.
    pub fn names_address(&self) -> bool {
        self.host.trim_matches(['[', ']']).parse::<IpAddr>().is_ok()
    }
}

/// Addresses the host never reaches unless allowed by address: loopback,
/// private, link-local (cloud metadata at 169.254.169.254), unspecified,
/// shared (CGNAT), benchmarking, documentation, reserved, multicast and
/// broadcast, and their IPv6 kin, including IPv6 forms that carry an IPv4
/// address (mapped, compatible, NAT64, 6to4).
pub fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_private_v4(v4),
        IpAddr::V6(v6) => {
            let seg = v6.segments();
            let embedded = |hi: u16, lo: u16| {
                let [a, b] = hi.to_be_bytes();
                let [c, d] = lo.to_be_bytes();
                Ipv4Addr::new(a, b, c, d)
            };
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (seg[0] & 0xfe00) == 0xfc00 // unique local
                || (seg[0] & 0xffc0) == 0xfe80 // link-local
                || (seg[0] & 0xffc0) == 0xfec0 // site-local (deprecated)
                || (seg[0] == 0x2001 && seg[1] == 0x0db8) // documentation
                || (seg[0] == 0x0100 && seg[1..4] == [0, 0, 0]) // discard-only
                || v6.to_ipv4_mapped().is_some_and(is_private_v4)
                // IPv4-compatible (::a.b.c.d), deprecated but still routed
                // to the IPv4 address by some stacks.
                || (seg[..6] == [0; 6] && is_private_v4(embedded(seg[6], seg[7])))
                // NAT64 (64:ff9b::/96 and the local-use 64:ff9b:1::/48)
                // reaches the embedded IPv4 address.
                || (seg[..6] == [0x64, 0xff9b, 0, 0, 0, 0]
                    && is_private_v4(embedded(seg[6], seg[7])))
                || (seg[0] == 0x64 && seg[1] == 0xff9b && seg[2] == 1)
                // 6to4 (2002::/16) carries the IPv4 address in bits 16–48.
                || (seg[0] == 0x2002 && is_private_v4(embedded(seg[1], seg[2])))
                // Teredo (2001::/32) tunnels to an address we cannot check.
                || (seg[0] == 0x2001 && seg[1] == 0)
        }
    }
}

fn is_private_v4(v4: Ipv4Addr) -> bool {
    let o = v4.octets();
    v4.is_loopback()
        || v4.is_private()
        || v4.is_link_local()
        || v4.is_unspecified()
        || v4.is_broadcast()
        || v4.is_multicast()
        || v4.is_documentation()
        || o[0] == 0 // "this network"
        || (o[0] == 100 && (64..128).contains(&o[1])) // shared (CGNAT)
        || (o[0] == 192 && o[1] == 0 && o[2] == 0) // IETF protocol assignments
        || (o[0] == 192 && o[1] == 88 && o[2] == 99) // 6to4 relay anycast
        || (o[0] == 198 && (18..20).contains(&o[1])) // benchmarking
        || o[0] >= 240 // reserved (and broadcast)
}

/// Why a guarded request did not get an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The caller's rules refuse the URL (not granted, outside the folder).
    NotAllowed(String),
    /// The request or a hop is refused by the network rules (private
    /// address, bad URL, too many redirects).
    Refused(String),
    Timeout,
    TooLarge {
        limit: u64,
    },
    /// No connection or a broken one. Deliberately without the operating
    /// system's reason: "refused" against "timed out" would let a caller
    /// map ports; the reason goes to the log.
    Transport(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NotAllowed(m) | Error::Refused(m) | Error::Transport(m) => f.write_str(m),
            Error::Timeout => f.write_str("no answer in time"),
            Error::TooLarge { limit } => write!(f, "the answer is over {limit} bytes"),
        }
    }
}

/// A request to send: the URL, headers (secrets already filled in), and
/// which of the headers carry secrets.
#[derive(Debug)]
pub struct Request {
    pub method: reqwest::Method,
    pub url: Url,
    pub headers: HeaderMap,
    /// Dropped on a redirect to another origin.
    pub sensitive: Vec<HeaderName>,
    pub body: Option<Vec<u8>>,
}

impl Request {
    pub fn get(url: Url) -> Request {
        Request {
            method: reqwest::Method::GET,
            url,
            headers: HeaderMap::new(),
            sensitive: Vec::new(),
            body: None,
        }
    }
}

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// Redirects followed at most.
pub const MAX_REDIRECTS: usize = 5;

/// What the operator set for every outbound request of one kind.
#[derive(Debug, Clone, Default)]
pub struct Guard {
    /// Names resolved to fixed addresses, like /etc/hosts (for upstreams
    /// behind split DNS); the private-address rule still applies.
    pub resolve_override: HashMap<String, IpAddr>,
    /// A proxy for every request; none unless configured.
    pub proxy: Option<Url>,
    /// Clients by origin host and the addresses it resolved to, shared by
    /// every clone: a client loads the trusted roots once and keeps its
    /// connections (a discovery makes thousands of requests to one host),
    /// and still reaches only the addresses checked for it.
    pub clients: Clients,
}

/// Clients kept by (host, resolved addresses); see [`Guard::clients`].
pub type Clients =
    std::sync::Arc<std::sync::Mutex<HashMap<(String, Vec<SocketAddr>), reqwest::Client>>>;

/// Clients kept at most (then the cache starts again).
const KEPT_CLIENTS: usize = 64;

/// Headers that never follow a redirect to another origin.
const CREDENTIALS: [HeaderName; 3] = [
    reqwest::header::AUTHORIZATION,
    reqwest::header::COOKIE,
    reqwest::header::PROXY_AUTHORIZATION,
];

impl Guard {
    /// Sends `request`, following redirects that `allow` accepts, and
    /// answers within `timeout` with at most `max_bytes` of body.
    pub async fn send(
        &self,
        mut request: Request,
        timeout: Duration,
        max_bytes: u64,
        allow: &(dyn Fn(&Url) -> Result<Origin, Error> + Sync),
    ) -> Result<Response, Error> {
        if timeout.is_zero() {
            return Err(Error::Timeout);
        }
        let deadline = Instant::now() + timeout;
        for _ in 0..=MAX_REDIRECTS {
            let origin = allow(&request.url)?;
            let addrs = self.resolve(&origin).await?;
            let mut send = self
                .client(&origin, &addrs)?
                .request(request.method.clone(), request.url.clone())
                .timeout(deadline.saturating_duration_since(Instant::now()))
                .headers(request.headers.clone());
            if let Some(body) = &request.body {
                send = send.body(body.clone());
            }
            let mut resp = match tokio::time::timeout_at(deadline, send.send()).await {
                Err(_) => return Err(Error::Timeout),
                Ok(Err(e)) => return Err(transport(&origin, &e)),
                Ok(Ok(r)) => r,
            };
            if resp.status().is_redirection()
                && let Some(location) = resp
                    .headers()
                    .get(reqwest::header::LOCATION)
                    .and_then(|v| v.to_str().ok())
            {
                let next = request
                    .url
                    .join(location)
                    .map_err(|e| Error::Refused(format!("bad redirect from {origin}: {e}")))?;
                if Origin::of(&next).as_ref() != Some(&origin) {
                    for name in request.sensitive.iter().chain(&CREDENTIALS) {
                        request.headers.remove(name);
                    }
                }
                // 303, and 301/302 after POST, become a GET without a body,
                // as browsers do.
                let status = resp.status().as_u16();
                if status == 303 || (matches!(status, 301 | 302) && request.method == "POST") {
                    request.method = reqwest::Method::GET;
                    request.body = None;
                }
                request.url = next;
                continue;
            }
            if let Some(len) = resp.content_length()
                && len > max_bytes
            {
                return Err(Error::TooLarge { limit: max_bytes });
            }
            let status = resp.status().as_u16();
            let headers = resp
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
                    Ok(Err(e)) => return Err(transport(&origin, &e)),
                    Ok(Ok(c)) => c,
                };
                let Some(chunk) = chunk else { break };
                body.extend_from_slice(&chunk);
                if body.len() as u64 > max_bytes {
                    return Err(Error::TooLarge { limit: max_bytes });
                }
            }
            return Ok(Response {
                status,
                headers,
                body,
            });
        }
        Err(Error::Refused(format!(
            "more than {MAX_REDIRECTS} redirects"
        )))
    }

    /// A client that reaches `origin` only at `addrs`, follows no redirect
    /// by itself and uses no proxy unless one is configured; made once per
    /// host and addresses.
    fn client(&self, origin: &Origin, addrs: &[SocketAddr]) -> Result<reqwest::Client, Error> {
        let key = (origin.host.clone(), addrs.to_vec());
        if let Some(client) = self
            .clients
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
        {
            return Ok(client.clone());
        }
        let client = self.new_client(origin, addrs)?;
        let mut kept = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        if kept.len() >= KEPT_CLIENTS {
            kept.clear();
        }
        kept.insert(key, client.clone());
        Ok(client)
    }

    fn new_client(&self, origin: &Origin, addrs: &[SocketAddr]) -> Result<reqwest::Client, Error> {
        let builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .resolve_to_addrs(&origin.host, addrs)
            .user_agent(concat!("greenroom/", env!("CARGO_PKG_VERSION")));
        let builder = match &self.proxy {
            Some(proxy) => builder.proxy(
                reqwest::Proxy::all(proxy.clone())
                    .map_err(|e| Error::Refused(format!("bad outbound proxy: {e}")))?,
            ),
            None => builder.no_proxy(),
        };
        builder
            .build()
            .map_err(|e| Error::Transport(format!("cannot make an HTTP client: {e}")))
    }

    /// Resolves the origin's host once and refuses private addresses
    /// unless the origin names its address.
    async fn resolve(&self, origin: &Origin) -> Result<Vec<SocketAddr>, Error> {
        let host = origin.host.trim_matches(['[', ']']).to_string();
        let addrs: Vec<SocketAddr> = match self.resolve_override.get(&host) {
            Some(ip) => vec![SocketAddr::new(*ip, origin.port)],
            None => tokio::net::lookup_host((host.as_str(), origin.port))
                .await
                .map_err(|e| {
                    tracing::debug!(%host, error = %e, "cannot resolve");
                    Error::Transport(format!("cannot resolve {host}"))
                })?
                .collect(),
        };
        if addrs.is_empty() {
            return Err(Error::Transport(format!("{host} has no address")));
        }
        if !origin.names_address()
            && let Some(bad) = addrs.iter().find(|a| is_private(a.ip()))
        {
            return Err(Error::Refused(format!(
                "{host} resolves to {}, a private, loopback or link-local address; allow it by address to reach it",
                bad.ip()
            )));
        }
        Ok(addrs)
    }
}

fn transport(origin: &Origin, e: &reqwest::Error) -> Error {
    if e.is_timeout() {
        return Error::Timeout;
    }
    tracing::debug!(%origin, error = ?e, "outbound request failed");
    Error::Transport(format!("cannot get an answer from {origin}"))
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
    fn private_and_reserved_addresses_are_recognised() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "0.1.2.3",
            "100.64.0.1",
            "192.0.0.8",
            "198.18.0.1",
            "198.19.255.255",
            "192.0.2.1",
            "240.0.0.1",
            "255.255.255.255",
            "224.0.0.1",
            "::1",
            "::",
            "fe80::1",
            "fec0::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            // IPv4-compatible, NAT64 and 6to4 forms of private addresses.
            "::127.0.0.1",
            "::a9fe:a9fe",
            "64:ff9b::a9fe:a9fe",
            "64:ff9b::7f00:1",
            "64:ff9b:1::1",
            "2002:a9fe:a9fe::1",
            "2002:7f00:1::",
            "2001::1",
            "2001:db8::1",
            "100::1",
            "ff02::1",
        ] {
            assert!(is_private(ip.parse().unwrap()), "{ip}");
        }
        for ip in [
            "140.82.112.3",
            "2606:4700::1111",
            "64:ff9b::8c52:7003",
            "2002:8c52:7003::1",
            "198.20.0.1",
        ] {
            assert!(!is_private(ip.parse().unwrap()), "{ip}");
        }
    }

    async fn answering(text: &'static str) -> SocketAddr {
        let app = axum::Router::new().fallback(move || async move { text });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        addr
    }

    async fn body(guard: &Guard, target: SocketAddr) -> String {
        let url = Url::parse(&format!("http://{target}/x")).unwrap();
        let origin = Origin::of(&url).unwrap();
        let allow = move |u: &Url| {
            Origin::of(u)
                .filter(|o| *o == origin)
                .ok_or_else(|| Error::NotAllowed(u.to_string()))
        };
        let r = guard
            .send(Request::get(url), Duration::from_secs(5), 1024, &allow)
            .await
            .unwrap();
        String::from_utf8(r.body).unwrap()
    }

    #[tokio::test]
    async fn the_proxy_environment_is_ignored_and_a_configured_proxy_used() {
        let (target, proxy) = (answering("direct").await, answering("via proxy").await);
        // SAFETY: the only HTTP clients of this test binary are the guarded
        // ones, which ignore these variables; every test sets the same value.
        unsafe {
            for var in ["HTTP_PROXY", "http_proxy", "ALL_PROXY"] {
                std::env::set_var(var, format!("http://{proxy}"));
            }
        }
        assert_eq!(body(&Guard::default(), target).await, "direct");
        let configured = Guard {
            proxy: Some(Url::parse(&format!("http://{proxy}")).unwrap()),
            ..Guard::default()
        };
        assert_eq!(body(&configured, target).await, "via proxy");
    }
}
