//! The example host application end to end, with its three plugins built from
//! source (Rust; JavaScript with componentize-js; Python with componentize-py):
//! every plugin's transform shows in the output, the Python plugin's reach
//! outside its grants is refused and reported, and the store holds keys only under
//! the prefixes granted.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

fn plugin_host(args: &[&Path], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_plugin-host"))
        .args(args)
        // A secret in the environment the host runs in: the Python plugin looks
        // for it, and was granted no variable.
        .env("AWS_SECRET_ACCESS_KEY", "test-secret-that-must-not-leak")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running plugin-host");
    let mut input = child.stdin.take().expect("piped");
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).expect("writing its input");
    }
    drop(input);
    child.wait_with_output().expect("waiting for plugin-host")
}

/// The `key = value` lines after `store:` in the report.
fn store(report: &str) -> BTreeMap<String, String> {
    report
        .lines()
        .skip_while(|l| *l != "store:")
        .skip(1)
        .filter_map(|l| l.trim().split_once(" = "))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn three_plugins_in_three_languages_each_within_its_grants() {
    let example = xtask::prepare_plugin_demo();
    let out = plugin_host(&[&example.join("input.md")], None);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");

    // Rust: typographic quotes, dashes and ellipses. JavaScript: emphasis to
    // capitals. Python: e-mail addresses redacted, the one JavaScript capitalised
    // included.
    assert_eq!(
        stdout,
        "\u{201c}Plugins,\u{201d} she said, \u{201c}should NEVER see more than they need.\u{201d}\n\
         Write to [redacted] \u{2013} or to [redacted] \u{2013} if it\u{2019}s URGENT\u{2026}\n\
         The Rust plugin\u{2019}s count is \u{2018}private\u{2019}; the Python one will try to read it anyway.\n",
        "{stderr}"
    );
    assert!(
        stderr.contains("3 lines through rust -> js -> py (0 failed calls)"),
        "{stderr}"
    );

    // What each was refused: only the Python plugin's read of the Rust plugin's key.
    assert!(stderr.contains("  rust: nothing\n"), "{stderr}");
    assert!(stderr.contains("  js: nothing\n"), "{stderr}");
    let refusals: Vec<&str> = stderr.lines().filter(|l| l.starts_with("  py: ")).collect();
    assert_eq!(
        refusals,
        [
            "  py: kv nanoproc:plugins/kv@0.1.0#get rust/words: outside its scopes of host.kv (\"py/\")"
        ],
        "{stderr}"
    );

    // The store: each plugin's keys under its own prefix, and nothing else.
    let store = store(&stderr);
    for key in store.keys() {
        assert!(
            ["rust/", "js/", "py/"].iter().any(|p| key.starts_with(p)),
            "{key} is outside every prefix granted:\n{stderr}"
        );
    }
    assert_eq!(
        store.keys().map(String::as_str).collect::<Vec<_>>(),
        [
            "js/emphasized",
            "py/peeked",
            "py/redacted",
            "rust/last-run",
            "rust/words"
        ],
        "{stderr}"
    );
    assert_eq!(store["rust/words"], "36");
    // The Rust plugin's clock is the frozen one its manifest grants: 2024-06-01T12:00:00Z.
    assert_eq!(store["rust/last-run"], "1717243200");
    assert_eq!(store["js/emphasized"], "3");
    assert_eq!(store["py/redacted"], "2");
    // What the Python plugin saw of what it was not granted: the host's refusal,
    // as the interface's `err`, and no secret.
    let peeked = &store["py/peeked"];
    assert!(
        peeked.starts_with("rust/words refused (nanoprocess `redact` was refused"),
        "{peeked}"
    );
    assert!(
        peeked.ends_with("AWS_SECRET_ACCESS_KEY not set"),
        "{peeked}"
    );
    assert!(!stdout.contains("test-secret") && !stderr.contains("test-secret"));
}

/// A manifest that grants no `kv`: every store call is refused (and answered
/// with `err`, so the plugin carries on), and audited.
#[test]
fn a_plugin_granted_no_store_reaches_none_of_it() {
    let example = xtask::prepare_plugin_demo();
    let dir = tempfile::tempdir().expect("a temporary directory");
    let manifest = dir.path().join("rust.toml");
    std::fs::write(
        &manifest,
        format!(
            "[app]\nroot = \"quotes\"\n\n[nanoprocess.quotes]\ncomponent = {:?}\ngrants.wall-clock = \"2024-06-01T12:00:00Z\"\n",
            example.join("build").join("rust.wasm")
        ),
    )
    .expect("writing a manifest");
    let out = plugin_host(
        &[Path::new("--plugin"), &manifest],
        Some("\"one\" -- 'two'\n"),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert_eq!(
        stdout, "\u{201c}one\u{201d} \u{2013} \u{2018}two\u{2019}\n",
        "{stderr}"
    );
    let refused: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("  rust: "))
        .collect();
    // Its get of the count, and its set of the time (a refused get skips the set
    // of the count).
    assert_eq!(refused.len(), 2, "{stderr}");
    assert!(
        refused[0].starts_with("  rust: kv nanoproc:plugins/kv@0.1.0#get rust/words: "),
        "{stderr}"
    );
    assert!(
        refused[1].starts_with("  rust: kv nanoproc:plugins/kv@0.1.0#set rust/last-run: "),
        "{stderr}"
    );
    assert!(store(&stderr).is_empty(), "{stderr}");
}
