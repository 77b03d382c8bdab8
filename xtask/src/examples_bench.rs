//! The example plugins of `examples/plugins` in the plugins benchmark:
//! each built with `greenroom plugin build` as its author builds it, then
//! its size, cold compile and cached load (`plugin bench --calls 0`), and
//! its cards call in its real setting (`plugin run --repeat`: the sample
//! entity with its files, the recorded upstream on loopback, a fresh
//! sandbox per call, as the portal makes them).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

use crate::tools;

/// One example: its folder and the `plugin run` arguments of its
/// `test.sh` beyond the file and the entity.
const EXAMPLES: [(&str, &[&str]); 4] = [
    (
        "go-buildkite",
        &[
            "--upstream",
            "fixtures",
            "--set",
            "base_url={upstream}",
            "--secret",
            "BUILDKITE_TOKEN=recorded",
        ],
    ),
    (
        "python-statuspage",
        &[
            "--upstream",
            "fixtures",
            "--set",
            "base_url={upstream}",
            "--secret",
            "STATUSPAGE_TOKEN=recorded",
        ],
    ),
    ("js-runtimes", &[]),
    ("c-readme", &[]),
];

/// What one example measured.
pub struct Figures {
    pub name: String,
    pub bytes: u64,
    pub cold_ms: f64,
    pub cached_ms: f64,
    pub p50_us: f64,
    pub p99_us: f64,
}

/// Builds and measures every example under `dir`. An example whose
/// toolchain cannot be had here is skipped with the reason printed.
pub fn measure(
    bin: &Path,
    config: &Path,
    dir: &Path,
    calls: usize,
) -> anyhow::Result<Vec<Figures>> {
    let root = tools::workspace_root()?;
    // The JavaScript examples share js-hello's installed componentize-js.
    let js_packages = root.join("examples/plugins/js-hello");
    let js_ok = tools::ensure_npm_packages(&js_packages).is_ok();
    let mut all = Vec::new();
    for (name, args) in EXAMPLES {
        let folder = dir.join("examples").join(name);
        let _ = std::fs::remove_dir_all(&folder);
        copy_sources(&root.join("examples/plugins").join(name), &folder)?;
        if folder.join("package.json").is_file() {
            if !js_ok {
                eprintln!("xtask: componentize-js cannot be installed here; skipping {name}");
                continue;
            }
            std::os::unix::fs::symlink(
                js_packages.join("node_modules"),
                folder.join("node_modules"),
            )?;
        }
        let wasm = match build(bin, &folder) {
            Ok(wasm) => wasm,
            Err(e) => {
                eprintln!("xtask: skipping {name}: {e:#}");
                continue;
            }
        };
        let (cold_ms, cached_ms, _, _) = crate::bench::plugin_bench(bin, config, &wasm, 0)?;
        let (p50_us, p99_us) = timed_run(bin, &folder, &wasm, args, calls)?;
        all.push(Figures {
            name: name.to_string(),
            bytes: std::fs::metadata(&wasm)?.len(),
            cold_ms,
            cached_ms,
            p50_us,
            p99_us,
        });
    }
    Ok(all)
}

/// `greenroom plugin build <folder>`: the `.wasm` it wrote.
fn build(bin: &Path, folder: &Path) -> anyhow::Result<PathBuf> {
    let out = Command::new(bin)
        .args(["plugin", "build"])
        .arg(folder)
        .env("RUST_LOG", "warn")
        .output()?;
    if !out.status.success() {
        bail!(
            "plugin build {} failed: {}",
            folder.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let said = String::from_utf8_lossy(&out.stdout);
    said.lines()
        .find_map(|l| l.strip_prefix("built "))
        .map(PathBuf::from)
        .with_context(|| format!("plugin build said no file: {said}"))
}

/// `greenroom plugin run --repeat`: the cards call's p50 and p99 in µs.
fn timed_run(
    bin: &Path,
    folder: &Path,
    wasm: &Path,
    args: &[&str],
    calls: usize,
) -> anyhow::Result<(f64, f64)> {
    let out = Command::new(bin)
        .args(["plugin", "run"])
        .arg(wasm)
        .args(["--entity", "catalog-info.yaml"])
        .args(args)
        .args(["--repeat", &calls.to_string()])
        .current_dir(folder)
        .env("RUST_LOG", "warn")
        .output()?;
    if !out.status.success() {
        bail!(
            "plugin run {} failed: {}",
            wasm.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    if answer["cards"].as_array().is_none_or(|c| c.is_empty()) {
        bail!("{} showed no card: {answer}", wasm.display());
    }
    let figure = |name: &str| {
        answer["timing"][name]
            .as_f64()
            .with_context(|| format!("no timing.{name} in {answer}"))
    };
    Ok((figure("p50Us")?, figure("p99Us")?))
}

/// Copies an example's sources, not what a build wrote into it.
fn copy_sources(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let name = entry.file_name();
        let text = name.to_string_lossy();
        let generated = [".greenroom", "node_modules", "target"].contains(&&*text)
            || text.starts_with("greenroom_plugin_")
            || text.ends_with(".wasm");
        if generated {
            continue;
        }
        if entry.file_type()?.is_dir() {
            copy_sources(&entry.path(), &to.join(&name))?;
        } else {
            std::fs::copy(entry.path(), to.join(&name))?;
        }
    }
    Ok(())
}
