//! Finding and installing what the build needs, with precise errors where
//! that is impossible.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

/// The workspace root (where the top `Cargo.toml` is).
pub fn workspace_root() -> anyhow::Result<PathBuf> {
    // At run time first: `cargo run` sets it for the checkout being run,
    // while the compile-time value names wherever this binary was built,
    // which differs when clones share a target folder.
    let manifest = std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from);
    manifest
        .parent()
        .map(PathBuf::from)
        .context("xtask is not inside the workspace")
}

/// Where cargo puts build output (honours `CARGO_TARGET_DIR`).
pub fn target_dir() -> anyhow::Result<PathBuf> {
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        return Ok(PathBuf::from(dir));
    }
    Ok(workspace_root()?.join("target"))
}

/// Runs cargo with `args` in the workspace root; fails on a non-zero exit.
pub fn cargo(args: &[&str]) -> anyhow::Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    eprintln!("xtask: cargo {}", args.join(" "));
    let status = Command::new(&cargo)
        .args(args)
        .current_dir(workspace_root()?)
        .status()
        .with_context(|| format!("cannot run {cargo}"))?;
    if !status.success() {
        bail!("`cargo {}` failed ({status})", args.join(" "));
    }
    Ok(())
}

/// Builds one plugin of the `plugins/` workspace for wasm32-wasip2 (on its
/// own: cargo unifies features across packages built together) and
/// returns the path of its `.wasm`.
pub fn build_plugin(package: &str) -> anyhow::Result<PathBuf> {
    let target = target_dir()?.join("plugins");
    let target_text = target.to_string_lossy().into_owned();
    cargo(&[
        "build",
        "--release",
        "--target",
        crate::PLUGIN_TARGET,
        "--manifest-path",
        "plugins/Cargo.toml",
        "--package",
        package,
        "--target-dir",
        &target_text,
    ])?;
    Ok(target.join(format!("{}/release/{package}.wasm", crate::PLUGIN_TARGET)))
}

/// Runs `cargo test …`, echoing its output; returns the tests passed and
/// failed, and whether cargo succeeded.
pub fn cargo_test(args: &[&str]) -> anyhow::Result<(u64, u64, bool)> {
    cargo_test_with(args, &[])
}

/// [`cargo_test`] with more environment variables.
pub fn cargo_test_with(args: &[&str], env: &[(&str, &str)]) -> anyhow::Result<(u64, u64, bool)> {
    use std::io::{BufRead, BufReader};
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let shown: Vec<String> = env.iter().map(|(k, v)| format!("{k}={v} ")).collect();
    eprintln!("xtask: {}cargo {}", shown.concat(), args.join(" "));
    let mut child = Command::new(&cargo)
        .args(args)
        .envs(env.iter().copied())
        .current_dir(workspace_root()?)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot run {cargo}"))?;
    let stdout = child.stdout.take().context("no stdout")?;
    let (mut passed, mut failed) = (0u64, 0u64);
    for line in BufReader::new(stdout).lines() {
        let line = line?;
        println!("{line}");
        if let Some(rest) = line.strip_prefix("test result: ") {
            let count = |word: &str| {
                rest.split(['.', ';'])
                    .map(str::trim)
                    .find_map(|part| {
                        part.strip_suffix(word)
                            .and_then(|n| n.trim().parse::<u64>().ok())
                    })
                    .unwrap_or(0)
            };
            passed += count(" passed");
            failed += count(" failed");
        }
    }
    let status = child.wait()?;
    if !status.success() {
        eprintln!("xtask: `cargo {}` failed ({status})", args.join(" "));
    }
    Ok((passed, failed, status.success()))
}

/// Installs missing Debian packages (clang for the C plugin example) with
/// apt-get, or says exactly what to run when it cannot.
pub fn ensure_debian(packages: &[&str]) -> anyhow::Result<()> {
    let missing: Vec<&str> = packages
        .iter()
        .copied()
        .filter(|p| {
            !Command::new("dpkg")
                .args(["-s", p])
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let command = format!("apt-get install -y {}", missing.join(" "));
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    if !root || Command::new("apt-get").arg("--version").output().is_err() {
        bail!(
            "these system packages are missing: {}; install them with `sudo {command}`",
            missing.join(", ")
        );
    }
    eprintln!("xtask: installing {}", missing.join(" "));
    let _ = Command::new("apt-get").args(["update", "-qq"]).status();
    let status = Command::new("apt-get")
        .args(["install", "-y", "-qq"])
        .args(&missing)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status()?;
    if !status.success() {
        bail!("`{command}` failed; run it yourself and try again");
    }
    Ok(())
}

/// Installs a Python command-line tool from PyPI when `command --version`
/// does not run.
pub fn ensure_pip_tool(command: &str, requirement: &str) -> anyhow::Result<()> {
    if Command::new(command)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        return Ok(());
    }
    eprintln!("xtask: installing {requirement} from PyPI");
    let status = Command::new("python3")
        .args(["-m", "pip", "install", "--quiet", requirement])
        .status();
    if !status.is_ok_and(|s| s.success())
        || !Command::new(command)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    {
        bail!(
            "{command} is missing and could not be installed; run `python3 -m pip install {requirement}` and make sure {command} is on PATH"
        );
    }
    Ok(())
}

/// Installs the npm packages of `dir` (its package-lock.json, exactly)
/// unless they are there already; Node.js 20 or later must be on PATH.
pub fn ensure_npm_packages(dir: &Path) -> anyhow::Result<()> {
    let version = Command::new("node")
        .arg("--version")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    let major = version.as_deref().and_then(|v| {
        v.trim_start_matches('v')
            .split('.')
            .next()?
            .parse::<u32>()
            .ok()
    });
    if major.is_none_or(|m| m < 20) {
        bail!(
            "Node.js 20 or later is needed for the npm packages of {} (found: {}); install it (https://nodejs.org or your distribution) and run again",
            dir.display(),
            version.as_deref().unwrap_or("none")
        );
    }
    let lock = dir.join("package-lock.json");
    let installed = dir.join("node_modules/.package-lock.json");
    let current = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    if current(&installed).is_some() && current(&installed) >= current(&lock) {
        return Ok(());
    }
    eprintln!("xtask: installing the npm packages of {}", dir.display());
    let status = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
        .current_dir(dir)
        .status();
    if !status.is_ok_and(|s| s.success()) {
        bail!(
            "`npm ci` failed in {}; run it there by hand to see why (the npm registry must be reachable)",
            dir.display()
        );
    }
    Ok(())
}

/// Installs missing rustup targets (wasm32-wasip2 for plugins).
pub fn ensure_targets(targets: &[&str]) -> anyhow::Result<()> {
    ensure_rustup("target", targets, |line, t| line.trim() == t)
}

/// Installs missing rustup components (rustfmt, clippy).
pub fn ensure_components(components: &[&str]) -> anyhow::Result<()> {
    ensure_rustup("component", components, |line, c| {
        line == c || line.starts_with(&format!("{c}-"))
    })
}

/// `rustup <what> add` for each of `items` that `rustup <what> list
/// --installed` lacks.
fn ensure_rustup(
    what: &str,
    items: &[&str],
    listed: impl Fn(&str, &str) -> bool,
) -> anyhow::Result<()> {
    let Ok(out) = Command::new("rustup")
        .args([what, "list", "--installed"])
        .output()
    else {
        // Without rustup (a distribution toolchain) these must already be
        // there; cargo says so precisely if they are not.
        return Ok(());
    };
    let installed = String::from_utf8_lossy(&out.stdout);
    for item in items {
        if !installed.lines().any(|l| listed(l, item)) {
            eprintln!("xtask: installing rustup {what} {item}");
            let status = Command::new("rustup").args([what, "add", item]).status()?;
            if !status.success() {
                bail!(
                    "could not install the rustup {what} {item}; run `rustup {what} add {item}` and try again"
                );
            }
        }
    }
    Ok(())
}

/// Installs the wasm-bindgen CLI that `web/Cargo.lock` needs when it is
/// missing or of another version (from crates.io, built here: nothing is
/// downloaded from elsewhere).
pub fn ensure_wasm_bindgen() -> anyhow::Result<()> {
    let root = workspace_root()?;
    let version = greenroom_web_build::wasm_bindgen_version(&root).map_err(anyhow::Error::msg)?;
    if greenroom_web_build::installed_wasm_bindgen().as_deref() == Some(version.as_str()) {
        return Ok(());
    }
    let command = greenroom_web_build::install_command(&version);
    eprintln!("xtask: {command} (a few minutes, once)");
    cargo(&["install", "wasm-bindgen-cli", "--version", &version]).map_err(|e| {
        anyhow::anyhow!(
            "installing the wasm-bindgen CLI failed ({e}); run `{command}` yourself and try again"
        )
    })
}

/// Builds the web UI into `<target>/web-dist` and returns that folder.
pub fn build_web() -> anyhow::Result<PathBuf> {
    ensure_targets(&[greenroom_web_build::WEB_TARGET])?;
    ensure_wasm_bindgen()?;
    let target = target_dir()?;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    eprintln!("xtask: building the web UI");
    greenroom_web_build::build(
        &workspace_root()?,
        &target.join("web"),
        &target.join("web-dist"),
        &cargo,
    )
    .map_err(anyhow::Error::msg)
}
