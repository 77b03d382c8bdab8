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
    let status = Command::new(cargo)
        .args([
            "build",
            "--release",
            "--target",
            "wasm32-wasip2",
            "--manifest-path",
        ])
        .arg(root.join("plugins/Cargo.toml"))
        .env("CARGO_TARGET_DIR", &plugin_target)
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET")
        .status()
        .expect("cannot run cargo to build the test plugins");
    if !status.success() {
        panic!(
            "building the plugins for wasm32-wasip2 failed; if the target is missing, run `rustup target add wasm32-wasip2` (cargo xtask test does it for you)"
        );
    }
    println!(
        "cargo:rustc-env=GREENROOM_TEST_PLUGINS={}",
        plugin_target.join("wasm32-wasip2/release").display()
    );
}
