//! Building the guest components the demo and the tests run.
//!
//! The guests are a separate Cargo workspace (`guests/`) for `wasm32-wasip2`, built
//! into `target/guests` so they share nothing with the host build but the lock on
//! that directory, which also makes concurrent test binaries wait for one build.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

mod foreign;
pub use foreign::{
    ASSEMBLYSCRIPT, C_PACKAGES, COMPONENTIZE_JS, COMPONENTIZE_PY, FOREIGN_GUESTS, foreign_guest,
    try_foreign_guest,
};

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the repository root")
        .to_path_buf()
}

/// Clears what is meant for the host's own build (flags, target, target dir) from a
/// cargo command that builds for another target or workspace.
pub fn without_host_build_flags(cmd: &mut Command) {
    for var in [
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_BUILD_TARGET",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_RUSTFLAGS",
    ] {
        cmd.env_remove(var);
    }
}

/// Builds every guest component (once per process) and returns the directory that
/// holds the `.wasm` files.
pub fn build_guests() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let root = repo_root();
            let target = root.join("target").join("guests");
            let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
            cmd.current_dir(&root)
                .args(["build", "--release", "--target", "wasm32-wasip2", "--manifest-path"])
                .arg(root.join("guests").join("Cargo.toml"))
                .arg("--target-dir")
                .arg(&target);
            without_host_build_flags(&mut cmd);
            let status = cmd.status().expect("running cargo to build the guest components");
            assert!(
                status.success(),
                "building the guest components failed; is the wasm32-wasip2 target installed? (`rustup target add wasm32-wasip2`)"
            );
            target.join("wasm32-wasip2").join("release")
        })
        .clone()
}

/// The path of one built guest component, e.g. `guest("probe_leaf")`.
pub fn guest(name: &str) -> PathBuf {
    let path = build_guests().join(format!("{name}.wasm"));
    assert!(path.is_file(), "no guest component {}", path.display());
    path
}

/// The demo's components, as its manifest names them.
pub const DEMO_COMPONENTS: [(&str, &str); 5] = [
    ("gallery_app", "app.wasm"),
    ("gallery_thumbnailer", "thumbnailer.wasm"),
    ("gallery_idgen", "idgen.wasm"),
    ("gallery_analytics", "analytics.wasm"),
    ("gallery_meta", "meta.wasm"),
];

/// Builds the guests, copies the demo's components next to its manifest and returns
/// the manifest's path.
pub fn prepare_demo() -> PathBuf {
    let demo = repo_root().join("examples").join("gallery");
    let build = demo.join("build");
    std::fs::create_dir_all(&build).expect("creating examples/gallery/build");
    for (name, file) in DEMO_COMPONENTS {
        let from = guest(name);
        let to = build.join(file);
        // Copy through a temporary name: a concurrent run never sees half a file.
        let tmp = build.join(format!(".{file}.{}", std::process::id()));
        std::fs::copy(&from, &tmp).expect("copying a demo component");
        std::fs::rename(&tmp, &to).expect("installing a demo component");
    }
    demo.join("nanoproc.toml")
}

/// The HTTP demo's components (examples/http-gallery), as its manifest names them.
pub const HTTP_DEMO_COMPONENTS: [(&str, &str); 3] = [
    ("http_gallery", "web.wasm"),
    ("gallery_thumbnailer", "thumbnailer.wasm"),
    ("http_analytics", "analytics.wasm"),
];

/// Builds the guests, copies the HTTP demo's components next to its manifest and
/// returns the manifest's path.
pub fn prepare_http_demo() -> PathBuf {
    let demo = repo_root().join("examples").join("http-gallery");
    let build = demo.join("build");
    std::fs::create_dir_all(&build).expect("creating examples/http-gallery/build");
    std::fs::create_dir_all(demo.join("thumbs")).expect("creating examples/http-gallery/thumbs");
    for (name, file) in HTTP_DEMO_COMPONENTS {
        let from = guest(name);
        let to = build.join(file);
        let tmp = build.join(format!(".{file}.{}", std::process::id()));
        std::fs::copy(&from, &tmp).expect("copying a demo component");
        std::fs::rename(&tmp, &to).expect("installing a demo component");
    }
    demo.join("nanoproc.toml")
}

/// The plugins of examples/plugin-host, as its manifests (`plugins/*.toml`) name
/// them: the Rust guest, and the JavaScript and Python ones (foreign guests).
pub const PLUGIN_DEMO_COMPONENTS: [(&str, &str); 3] = [
    ("plugin_rust", "rust.wasm"),
    ("js-plugin", "js.wasm"),
    ("py-plugin", "py.wasm"),
];

/// Builds the example host application's three plugins, copies them into
/// `examples/plugin-host/build/` (once per process) and returns the example's
/// directory.
pub fn prepare_plugin_demo() -> PathBuf {
    static PREPARED: OnceLock<PathBuf> = OnceLock::new();
    PREPARED
        .get_or_init(|| {
            let example = repo_root().join("examples").join("plugin-host");
            let build = example.join("build");
            std::fs::create_dir_all(&build).expect("creating examples/plugin-host/build");
            for (name, file) in PLUGIN_DEMO_COMPONENTS {
                let from = if name.contains('-') {
                    foreign_guest(name)
                } else {
                    guest(name)
                };
                let to = build.join(file);
                // Copy through a temporary name: another process never sees half a file.
                let tmp = build.join(format!(".{file}.{}", std::process::id()));
                std::fs::copy(&from, &tmp).expect("copying a plugin");
                std::fs::rename(&tmp, &to).expect("installing a plugin");
            }
            example
        })
        .clone()
}
