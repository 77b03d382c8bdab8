//! Builds the plugins workspace (first-party and purpose-built test
//! plugins) for wasm32-wasip2, so tests load real components built from
//! source. Their folder is passed to the tests as `GREENROOM_TEST_PLUGINS`.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let root = manifest_dir.parent().unwrap().to_path_buf();
    for dir in [
        "plugins",
        "plugin-sdk",
        "wit/0.1.0",
        "examples/plugins/c-hello",
        "examples/plugins/python-hello/app.py",
        "web/src",
        "web/assets",
        "web/index.html",
        "web/Cargo.toml",
        "web/Cargo.lock",
    ] {
        // Relative to this package, so the fingerprint follows the clone
        // it is built from: cargo shares one fingerprint between clones
        // of the workspace that share a target directory, and an absolute
        // path would keep watching whichever clone built first.
        println!("cargo:rerun-if-changed=../{dir}");
    }
    // OUT_DIR is <target>/<profile>/build/<pkg>/out.
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    let target_dir: &Path = out_dir.ancestors().nth(4).unwrap();
    let plugin_target = target_dir.join("plugins");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    // One cargo invocation per plugin: cargo unifies the features of
    // packages built together, and the SDK exports exactly the interfaces
    // its features enable, so building them at once would make every
    // plugin export what any of them implements.
    for package in members(&root.join("plugins/Cargo.toml")) {
        let status = Command::new(&cargo)
            .args([
                "build",
                "--release",
                "--target",
                "wasm32-wasip2",
                "--manifest-path",
            ])
            .arg(root.join("plugins/Cargo.toml"))
            .args(["--package", &package])
            .env("CARGO_TARGET_DIR", &plugin_target)
            .env_remove("RUSTFLAGS")
            .env_remove("CARGO_ENCODED_RUSTFLAGS")
            .env_remove("CARGO_BUILD_TARGET")
            .status()
            .expect("cannot run cargo to build the test plugins");
        if !status.success() {
            panic!(
                "building plugin {package} for wasm32-wasip2 failed; if the target is missing, run `rustup target add wasm32-wasip2` (cargo xtask test does it for you)"
            );
        }
    }
    let c_plugin = build_c_plugin(&root, &plugin_target.join("c"));
    println!(
        "cargo:rustc-env=GREENROOM_TEST_C_PLUGIN={}",
        c_plugin.display()
    );
    let python_plugin = build_python_plugin(&root, &plugin_target.join("python"));
    println!(
        "cargo:rustc-env=GREENROOM_TEST_PYTHON_PLUGIN={}",
        python_plugin.display()
    );
    // The web UI, for the browser tests.
    let web = greenroom_web_build::build(
        &root,
        &target_dir.join("web"),
        &target_dir.join("web-dist"),
        &cargo,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    println!("cargo:rustc-env=GREENROOM_TEST_WEB={}", web.display());
    println!(
        "cargo:rustc-env=GREENROOM_TEST_PLUGINS={}",
        plugin_target.join("wasm32-wasip2/release").display()
    );
}

/// The package names of the plugins workspace (each member's folder name).
fn members(manifest: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(manifest).expect("plugins/Cargo.toml");
    let list = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("members = ["))
        .expect("plugins/Cargo.toml lists its members on one line");
    list.split('"')
        .skip(1)
        .step_by(2)
        .map(|path| path.rsplit('/').next().unwrap_or(path).to_string())
        .collect()
}

/// Builds `examples/plugins/c-hello` the way a C author would: bindings from
/// wit-bindgen's C generator, a preview1 reactor module from clang, and a
/// component from WASI's preview1 adapter. Returns the component (without
/// a manifest: the test adds it as `greenroom plugin embed-manifest` does).
fn build_c_plugin(root: &Path, out: &Path) -> PathBuf {
    use wit_bindgen_core::wit_parser::Resolve;
    std::fs::create_dir_all(out).unwrap();
    let mut resolve = Resolve::default();
    let (pkg, _) = resolve
        .push_dir(root.join("wit/0.1.0"))
        .expect("wit/ parses");
    let world = resolve
        .select_world(&[pkg], Some("export-cards"))
        .expect("world export-cards");
    let mut files = wit_bindgen_core::Files::default();
    wit_bindgen_c::Opts::default()
        .build()
        .generate(&mut resolve, world, &mut files)
        .expect("C bindings");
    for (name, bytes) in files.iter() {
        std::fs::write(out.join(name), bytes).unwrap();
    }
    let core = out.join("core.wasm");
    let status = Command::new("clang")
        .args(["--target=wasm32-wasi", "-mexec-model=reactor", "-O2", "-o"])
        .arg(&core)
        .arg(root.join("examples/plugins/c-hello/hello.c"))
        .arg(out.join("export_cards.c"))
        .arg(out.join("export_cards_component_type.o"))
        .arg("-I")
        .arg(out)
        .status();
    if !status.is_ok_and(|s| s.success()) {
        panic!(
            "building the C plugin failed; it needs clang for wasm32-wasi: apt-get install clang lld wasi-libc libclang-rt-14-dev-wasm32 (cargo xtask test does it for you)"
        );
    }
    let component = wit_component::ComponentEncoder::default()
        .module(&std::fs::read(&core).unwrap())
        .and_then(|e| {
            e.validate(true).adapter(
                wasi_preview1_component_adapter_provider::WASI_SNAPSHOT_PREVIEW1_ADAPTER_NAME,
                wasi_preview1_component_adapter_provider::WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER,
            )
        })
        .and_then(|mut e| e.encode())
        .expect("a component from the C module and the preview1 adapter");
    let path = out.join("c-hello.wasm");
    std::fs::write(&path, component).unwrap();
    path
}

/// Builds `examples/plugins/python-hello` with componentize-py (without a
/// manifest: the test adds it).
fn build_python_plugin(root: &Path, out: &Path) -> PathBuf {
    std::fs::create_dir_all(out).unwrap();
    let path = out.join("python-hello.wasm");
    let status = Command::new("componentize-py")
        .arg("-d")
        .arg(root.join("wit/0.1.0"))
        .args(["-w", "export-cards", "componentize", "app", "-o"])
        .arg(&path)
        .current_dir(root.join("examples/plugins/python-hello"))
        .status();
    if !status.is_ok_and(|s| s.success()) {
        panic!(
            "building the Python plugin failed; it needs componentize-py: python3 -m pip install componentize-py==0.25.1 (cargo xtask test does it for you)"
        );
    }
    path
}
