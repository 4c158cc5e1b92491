//! `cargo xtask test-tools`: everything the test suite needs beyond Rust, installed
//! if missing, so that the README's test command works on a fresh machine: the
//! system packages (Graphviz for `nanoproc graph`'s tests; clang, lld, wasi-libc and
//! the wasm32 builtins for the C test component), then the pinned componentize-js
//! and componentize-py and the foreign test components (`foreign`).
//!
//! System packages come from Debian's apt, as root (or through sudo); on another
//! system, or without the rights, this says what to install and fails.

use std::process::{Command, ExitCode};

/// Debian packages and a file each one installs, to tell whether it is there
/// without asking dpkg (which other systems lack).
const PACKAGES: &[(&str, &str)] = &[
    ("graphviz", "/usr/bin/dot"),
    ("clang", "/usr/bin/clang"),
    ("lld", "/usr/bin/wasm-ld"),
    ("wasi-libc", "/usr/include/wasm32-wasi/stdio.h"),
    ("libclang-rt-dev-wasm32", ""),
];

fn installed(package: &str, file: &str) -> bool {
    if !file.is_empty() {
        return std::path::Path::new(file).exists();
    }
    Command::new("dpkg")
        .args(["-s", package])
        .output()
        .is_ok_and(|o| o.status.success())
}

pub(crate) fn apt(args: &[&str]) -> Result<(), String> {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0"));
    let mut cmd = if root {
        Command::new("apt-get")
    } else {
        let mut sudo = Command::new("sudo");
        sudo.arg("apt-get");
        sudo
    };
    cmd.args(args).env("DEBIAN_FRONTEND", "noninteractive");
    let status = cmd.status().map_err(|e| format!("running apt-get: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("apt-get {} failed ({status})", args.join(" ")))
    }
}

pub fn run() -> ExitCode {
    let missing: Vec<&str> = PACKAGES
        .iter()
        .filter(|(p, f)| !installed(p, f))
        .map(|(p, _)| *p)
        .collect();
    if !missing.is_empty() {
        eprintln!("xtask: installing {}", missing.join(" "));
        let mut install = vec!["install", "-y", "-qq"];
        install.extend(&missing);
        if let Err(why) = apt(&["update", "-qq"]).and_then(|()| apt(&install)) {
            eprintln!(
                "xtask: {why}\nxtask: the tests need these Debian packages: {} (install them, then run this again)",
                missing.join(" ")
            );
            return ExitCode::FAILURE;
        }
    }
    foreign()
}

/// `cargo xtask foreign`: the JavaScript, Python, C and AssemblyScript test components
/// (guests/foreign), with their toolchains installed under target/foreign-tools
/// if missing.
pub fn foreign() -> ExitCode {
    for (name, _) in xtask::FOREIGN_GUESTS {
        match xtask::try_foreign_guest(name) {
            Ok(path) => println!("{}", path.display()),
            Err(why) => {
                eprintln!("xtask: {name}: {why}");
                return ExitCode::FAILURE;
            }
        }
    }
    ExitCode::SUCCESS
}
