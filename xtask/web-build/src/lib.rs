//! Builds the web UI: the `web/` crate for wasm32-unknown-unknown, then
//! `wasm-bindgen` over it, then the page and static assets beside the
//! result. The output folder holds `index.html` and `assets/`, which is
//! what the host's `[web] dir` expects.
//!
//! Used by `cargo xtask web|demo|test` and by the tests' build script, so
//! the app the browser tests open is always built from the current source.

#[cfg(feature = "browser")]
pub mod browser;

use std::path::{Path, PathBuf};
use std::process::Command;

pub const WEB_TARGET: &str = "wasm32-unknown-unknown";

/// The wasm-bindgen version `web/Cargo.lock` pins; the CLI must match it
/// exactly.
pub fn wasm_bindgen_version(root: &Path) -> Result<String, String> {
    let lock = root.join("web/Cargo.lock");
    let text = std::fs::read_to_string(&lock)
        .map_err(|e| format!("cannot read {}: {e}", lock.display()))?;
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if line == "name = \"wasm-bindgen\""
            && let Some(v) = lines
                .next()
                .and_then(|l| l.strip_prefix("version = \""))
                .and_then(|l| l.strip_suffix('"'))
        {
            return Ok(v.to_string());
        }
    }
    Err(format!("{} does not lock wasm-bindgen", lock.display()))
}

/// The `wasm-bindgen` command: on PATH, or in cargo's bin folder.
fn wasm_bindgen_command() -> PathBuf {
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")));
    match cargo_home.map(|h| h.join("bin/wasm-bindgen")) {
        Some(p) if p.exists() => p,
        _ => PathBuf::from("wasm-bindgen"),
    }
}

/// The version of the installed wasm-bindgen CLI, if any.
pub fn installed_wasm_bindgen() -> Option<String> {
    let out = Command::new(wasm_bindgen_command())
        .arg("--version")
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.split_whitespace().nth(1).map(str::to_string)
}

/// The command that installs the matching CLI.
pub fn install_command(version: &str) -> String {
    format!("cargo install wasm-bindgen-cli --version {version}")
}

/// Builds the app into `out` (made afresh), compiling in `target`.
/// `cargo` is the cargo to run. The error says what to run when a tool is
/// missing.
pub fn build(root: &Path, target: &Path, out: &Path, cargo: &str) -> Result<PathBuf, String> {
    let version = wasm_bindgen_version(root)?;
    match installed_wasm_bindgen() {
        Some(v) if v == version => {}
        Some(v) => {
            return Err(format!(
                "wasm-bindgen {v} is installed but web/Cargo.lock needs {version}; run `{}` (cargo xtask test and demo do it for you)",
                install_command(&version)
            ));
        }
        None => {
            return Err(format!(
                "the wasm-bindgen CLI is missing; run `{}` (cargo xtask test and demo do it for you)",
                install_command(&version)
            ));
        }
    }
    let status = Command::new(cargo)
        .args([
            "build",
            "--release",
            "--target",
            WEB_TARGET,
            "--manifest-path",
        ])
        .arg(root.join("web/Cargo.toml"))
        .env("CARGO_TARGET_DIR", target)
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET")
        .status()
        .map_err(|e| format!("cannot run {cargo}: {e}"))?;
    if !status.success() {
        return Err(format!(
            "building web/ for {WEB_TARGET} failed; if the target is missing, run `rustup target add {WEB_TARGET}` (cargo xtask test does it for you)"
        ));
    }
    let wasm = target.join(format!("{WEB_TARGET}/release/greenroom-web.wasm"));
    let assets = out.join("assets");
    let _ = std::fs::remove_dir_all(out);
    std::fs::create_dir_all(&assets)
        .map_err(|e| format!("cannot create {}: {e}", assets.display()))?;
    let status = Command::new(wasm_bindgen_command())
        .args([
            "--target",
            "web",
            "--no-typescript",
            "--out-name",
            "greenroom_web",
        ])
        .arg("--out-dir")
        .arg(&assets)
        .arg(&wasm)
        .status()
        .map_err(|e| format!("cannot run wasm-bindgen: {e}"))?;
    if !status.success() {
        return Err(format!("wasm-bindgen failed on {}", wasm.display()));
    }
    copy(&root.join("web/index.html"), &out.join("index.html"))?;
    let static_dir = root.join("web/assets");
    let entries = std::fs::read_dir(&static_dir)
        .map_err(|e| format!("cannot read {}: {e}", static_dir.display()))?;
    for entry in entries.flatten() {
        copy(&entry.path(), &assets.join(entry.file_name()))?;
    }
    Ok(out.to_path_buf())
}

fn copy(from: &Path, to: &Path) -> Result<(), String> {
    std::fs::copy(from, to)
        .map(|_| ())
        .map_err(|e| format!("cannot copy {} to {}: {e}", from.display(), to.display()))
}
