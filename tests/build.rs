//! Builds the plugins workspace (first-party and purpose-built test
//! plugins) for wasm32-wasip2, so tests load real components built from
//! source. Their folder is passed to the tests as `GREENROOM_TEST_PLUGINS`.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let root = manifest_dir.parent().unwrap().to_path_buf();
    for dir in ["plugins", "plugin-sdk", "wit"] {
        println!("cargo:rerun-if-changed={}", root.join(dir).display());
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
