//! What a browser's session costs a read: the catalog bench's store served
//! again in OpenID Connect mode, a real sign-in through the test provider
//! (oidc-provider on Node, `tests/oidc`) and its login form, then the same
//! reads anonymous and with the session cookie.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};

use greenroom_web_build::browser::free_port;

use crate::bench::{Rng, measure_with, start_at, wait_ready};
use crate::http::Conn;
use crate::tools;

/// Kills the provider when dropped.
struct Provider(std::process::Child);

impl Drop for Provider {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Cookies by name (the portal's and the provider's differ).
#[derive(Default)]
struct Jar(HashMap<String, String>);

impl Jar {
    fn keep(&mut self, headers: &[(String, String)]) {
        for (_, c) in headers.iter().filter(|(k, _)| k == "set-cookie") {
            let pair = c.split(';').next().unwrap_or_default();
            if let Some((k, v)) = pair.split_once('=') {
                if v.is_empty() || c.contains("Max-Age=0") {
                    self.0.remove(k);
                } else {
                    self.0.insert(k.to_string(), v.to_string());
                }
            }
        }
    }

    fn header(&self) -> String {
        let pairs: Vec<String> = self.0.iter().map(|(k, v)| format!("{k}={v}")).collect();
        format!("Cookie: {}\r\n", pairs.join("; "))
    }
}

/// `http://host:port/path?q` as an address and a path.
fn split(url: &str) -> anyhow::Result<(SocketAddr, String)> {
    let rest = url
        .strip_prefix("http://")
        .with_context(|| format!("not an http URL: {url}"))?;
    let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    Ok((
        host.parse()?,
        if path.is_empty() {
            "/".into()
        } else {
            path.into()
        },
    ))
}

/// GETs `url` and follows redirects (each on a connection of its own)
/// until a page; returns its URL and body.
fn follow(jar: &mut Jar, mut url: String) -> anyhow::Result<(String, Vec<u8>)> {
    for _ in 0..20 {
        let (addr, path) = split(&url)?;
        let (status, headers, body) = Conn::open(addr)?.send("GET", &path, &jar.header(), b"")?;
        jar.keep(&headers);
        match headers.iter().find(|(k, _)| k == "location") {
            Some((_, to)) if (300..400).contains(&status) => {
                url = if to.starts_with('/') {
                    format!("http://{addr}{to}")
                } else {
                    to.clone()
                };
            }
            _ => return Ok((url, body)),
        }
    }
    bail!("more than 20 redirects")
}

/// Signs in as `login` at `portal` through the provider's login form;
/// returns the cookie header with the portal's session.
fn sign_in(portal: SocketAddr, login: &str) -> anyhow::Result<String> {
    let mut jar = Jar::default();
    let (at, page) = follow(&mut jar, format!("http://{portal}/auth/sign-in"))?;
    let page = String::from_utf8_lossy(&page);
    let action = page
        .split("action=\"")
        .nth(1)
        .and_then(|a| a.split('"').next())
        .with_context(|| format!("no login form at {at}"))?;
    let (provider, _) = split(&at)?;
    let form = format!("prompt=login&login={login}&password=bench");
    let (status, headers, _) = Conn::open(provider)?.send(
        "POST",
        action,
        &format!(
            "{}Content-Type: application/x-www-form-urlencoded\r\n",
            jar.header()
        ),
        form.as_bytes(),
    )?;
    jar.keep(&headers);
    let next = headers
        .iter()
        .find(|(k, _)| k == "location")
        .map(|(_, l)| l.clone())
        .with_context(|| format!("the login form answered {status} without a redirect"))?;
    let next = if next.starts_with('/') {
        format!("http://{provider}{next}")
    } else {
        next
    };
    follow(&mut jar, next)?;
    if !jar.0.contains_key("greenroom-session") {
        bail!("the sign-in through the test provider gave no session");
    }
    Ok(jar.header())
}

/// p50/p99 of `path` reads anonymous and with a session, in ms.
pub fn session_cost(
    bin: &Path,
    dir: &Path,
    requests: usize,
    mut path: impl FnMut(&mut Rng) -> String,
) -> anyhow::Result<((f64, f64), (f64, f64))> {
    let oidc = tools::workspace_root()?.join("tests/oidc");
    tools::ensure_npm_packages(&oidc)?;
    let port = free_port();
    let portal = format!("127.0.0.1:{port}");
    let secret = "bench-oidc-secret";
    let mut child = Command::new("node")
        .arg("provider.mjs")
        .arg(free_port().to_string())
        .arg(format!("http://{portal}/auth/callback"))
        .arg(secret)
        .arg(r#"{"user-1": "user-1@example.com"}"#)
        .current_dir(&oidc)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("cannot start the test identity provider (node)")?;
    let stdout = child.stdout.take().context("no stdout")?;
    let provider = Provider(child);
    // Its output is read to the end: a closed pipe would stop it.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stdout));
        let _ = tx.send(lines.next().and_then(Result::ok).unwrap_or_default());
        for _ in lines {}
    });
    let line = rx
        .recv_timeout(Duration::from_secs(30))
        .context("the test identity provider did not start within 30 s")?;
    let issuer = line
        .trim()
        .strip_prefix("ready ")
        .with_context(|| format!("the test identity provider said {line:?}"))?
        .to_string();
    let config = dir.join("greenroom-oidc.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\ndata_dir = \"data\"\npublic_url = \"http://{portal}\"\n[catalog]\nrefresh_interval = \"24h\"\n[[catalog.locations]]\ntype = \"file\"\ntarget = \"org/part-*.yaml\"\n[auth]\nmode = \"oidc\"\nrequire_sign_in = false\n[auth.oidc]\nissuer = \"{issuer}\"\nclient_id = \"greenroom\"\nclient_secret_env = \"GREENROOM_BENCH_OIDC_SECRET\"\n"
        ),
    )?;
    // SAFETY: xtask is single-threaded here; the server inherits it.
    unsafe { std::env::set_var("GREENROOM_BENCH_OIDC_SECRET", secret) };
    let server = start_at(bin, &config, &portal)?;
    let mut conn = Conn::open(server.addr)?;
    wait_ready(&mut conn, Duration::from_secs(600))?;
    let cookie = sign_in(server.addr, "user-1")?;
    let mut rng = Rng(42);
    let anonymous = measure_with(&mut conn, requests, "", |_| path(&mut rng))?;
    let mut rng = Rng(42);
    let session = measure_with(&mut conn, requests, &cookie, |_| path(&mut rng))?;
    drop(server);
    drop(provider);
    Ok((anonymous, session))
}
