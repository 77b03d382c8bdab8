//! A headless Chromium session driven over WebDriver (chromedriver), for
//! the browser tests and `cargo xtask bench web`. Chromium and chromedriver
//! are Debian's (`chromium`, `chromium-driver`), which `cargo xtask test`
//! installs; without them `start` says what to install.

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const CHROMEDRIVER: &str = "chromedriver";
/// How long a wait lasts before it fails.
pub const WAIT: Duration = Duration::from_secs(30);

/// A headless Chromium session; chromedriver stops with it.
pub struct Browser {
    pub client: Client,
    driver: Child,
    _profile: tempfile::TempDir,
}

impl Drop for Browser {
    fn drop(&mut self) {
        stop(&mut self.driver);
    }
}

/// Stops chromedriver and the Chromium it started: they share a process
/// group of their own, and killing only the driver would leave every
/// browser process running (each holding inotify instances and memory).
fn stop(driver: &mut Child) {
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{}", driver.id())])
        .stderr(Stdio::null())
        .status();
    let _ = driver.kill();
    let _ = driver.wait();
}

/// A port nothing listens on now (taken by the next process to bind it).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Browser {
    /// Starts chromedriver and a headless Chromium with a fresh profile and
    /// this window size.
    pub async fn start(width: u32, height: u32) -> Result<Browser, String> {
        if !std::path::Path::new(CHROMIUM).exists() {
            return Err(format!(
                "{CHROMIUM} is missing: install Debian's chromium and chromium-driver (`apt-get install -y chromium chromium-driver`; `cargo xtask test` does it)"
            ));
        }
        let port = free_port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| {
                format!(
                    "cannot start {CHROMEDRIVER} ({e}): install Debian's chromium-driver (`apt-get install -y chromium-driver`; `cargo xtask test` does it)"
                )
            })?;
        let mut driver = Kill(Some(driver));
        let profile = tempfile::tempdir().map_err(|e| e.to_string())?;
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": CHROMIUM,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--no-first-run", "--disable-background-networking", "--disable-component-update",
                    "--disable-sync", "--disable-quic", "--hide-scrollbars",
                    format!("--window-size={width},{height}"),
                    format!("--user-data-dir={}", profile.path().display()),
                ],
            }),
        );
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + WAIT;
        let client = loop {
            match ClientBuilder::rustls()
                .map_err(|e| e.to_string())?
                .capabilities(caps.clone())
                .connect(&url)
                .await
            {
                Ok(c) => break c,
                Err(e) if Instant::now() > deadline => {
                    return Err(format!("chromedriver gave no browser session: {e}"));
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        };
        Ok(Browser {
            client,
            driver: driver.0.take().expect("driver"),
            _profile: profile,
        })
    }

    /// Waits until `expr` (JavaScript) is truthy, and returns its value.
    /// An error (an element not there yet, a page being replaced) counts
    /// as not yet.
    pub async fn until(&self, expr: &str) -> Value {
        let deadline = Instant::now() + WAIT;
        loop {
            let last = match self
                .client
                .execute(&format!("return ({expr});"), vec![])
                .await
            {
                Ok(v) if !(v.is_null() || v == false || v == "" || v == 0) => return v,
                Ok(v) => v.to_string(),
                Err(e) => e.to_string(),
            };
            if Instant::now() > deadline {
                if let Ok(png) = self.client.screenshot().await {
                    let path = std::env::temp_dir().join("greenroom-browser-timeout.png");
                    let _ = std::fs::write(&path, png);
                    eprintln!("screenshot at the timeout: {}", path.display());
                }
                panic!(
                    "waited {WAIT:?} for `{expr}` on {}; last: {last}",
                    self.client.current_url().await.unwrap()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The value of a JavaScript expression.
    pub async fn eval(&self, expr: &str) -> Value {
        self.client
            .execute(&format!("return ({expr});"), vec![])
            .await
            .unwrap()
    }

    /// Waits for an element.
    pub async fn find(&self, css: &str) -> fantoccini::elements::Element {
        self.client
            .wait()
            .at_most(WAIT)
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no element {css}: {e}"))
    }

    /// The page's text.
    pub async fn text(&self) -> String {
        self.eval("document.body.innerText")
            .await
            .as_str()
            .unwrap_or("")
            .to_string()
    }

    /// The current path and query.
    pub async fn path(&self) -> String {
        let url = self.client.current_url().await.unwrap();
        match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_string(),
        }
    }
}

/// Kills chromedriver if starting the session fails half-way.
struct Kill(Option<Child>);

impl Drop for Kill {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            stop(&mut c);
        }
    }
}
