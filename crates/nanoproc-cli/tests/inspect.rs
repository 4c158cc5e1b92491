//! `nanoproc inspect`: what a component can ask for, before it runs, on real
//! components from four toolchains (Rust, componentize-js, componentize-py,
//! clang), and what `inspect`, `run` and `check` say about files that are not
//! WebAssembly.
//!
//! The JavaScript, Python and C components are built from `guests/foreign/` by
//! `xtask::foreign_guest`, which installs their toolchains under
//! `target/foreign-tools/` when missing (README: the test command).

use crate::common;
use common::*;
use serde_json::Value;
use std::path::Path;
use xtask::foreign_guest;

/// `nanoproc inspect FILE --json`, parsed.
fn inspect_json(file: &Path) -> Value {
    let run = nanoproc(&["inspect", &file.display().to_string(), "--json"]);
    assert_eq!(run.code, 0, "{run:?}");
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {run:?}"))
}

/// The families of a surface, each with its grant keys.
fn families(surface: &Value) -> Vec<(String, Vec<String>)> {
    surface["families"]
        .as_array()
        .expect("families is a list")
        .iter()
        .map(|f| {
            let keys = f["grant_keys"]
                .as_array()
                .expect("grant_keys is a list")
                .iter()
                .map(|k| k.as_str().unwrap().to_string())
                .collect();
            (f["family"].as_str().unwrap().to_string(), keys)
        })
        .collect()
}

fn keys_of(surface: &Value, family: &str) -> Vec<String> {
    families(surface)
        .into_iter()
        .find(|(f, _)| f == family)
        .map(|(_, keys)| keys)
        .unwrap_or_else(|| panic!("no family {family} in {:#}", surface["families"]))
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("{value} is not a list"))
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

/// The producers of one field (`language`, `processed-by`, `sdk`), by name.
fn producers(surface: &Value, field: &str) -> Vec<String> {
    surface["producers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["field"] == field)
        .map(|p| p["name"].as_str().unwrap().to_string())
        .collect()
}

fn sha256_of(file: &Path) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(std::fs::read(file).unwrap());
    format!(
        "sha256:{}",
        digest
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    )
}

#[test]
fn the_json_form_has_its_documented_fields_and_the_files_digest() {
    let file = guest("probe_driver");
    let s = inspect_json(&file);
    for field in [
        "kind",
        "wasi",
        "command",
        "size",
        "digest",
        "producers",
        "imports",
        "exports",
        "families",
        "notes",
    ] {
        assert!(s.get(field).is_some(), "no field {field} in {s:#}");
    }
    assert_eq!(s["kind"], "component");
    assert_eq!(strings(&s["wasi"]), ["0.2"]);
    assert_eq!(s["command"], true);
    assert_eq!(s["digest"].as_str().unwrap(), sha256_of(&file));
    assert_eq!(
        s["size"].as_u64().unwrap(),
        std::fs::metadata(&file).unwrap().len()
    );
    // A release build of this workspace's guests records no language; the
    // bindings generator and wit-component, which made the component, record
    // themselves (those of std's own WASI bindings too, deduplicated).
    let processed_by = producers(&s, "processed-by");
    for tool in ["wit-bindgen-rust", "wit-component"] {
        assert!(processed_by.contains(&tool.to_string()), "{processed_by:?}");
    }
    // Its two dependency imports are for children, not capabilities.
    let deps: Vec<&str> = s["imports"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["provider"] == "dependency")
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    assert_eq!(deps, ["test:probe/probe", "test:probe/sibling"]);
    for import in s["imports"].as_array().unwrap() {
        for key in [
            "name",
            "interface",
            "version",
            "item",
            "functions",
            "provider",
        ] {
            assert!(import.get(key).is_some(), "no {key} in {import}");
        }
        for key in ["families", "grant_keys", "served", "problem"] {
            assert!(import.get(key).is_some(), "no {key} in {import}");
        }
    }
    let exports = strings(
        &s["exports"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["name"].clone())
            .collect(),
    );
    assert!(
        exports.iter().any(|e| e.starts_with("wasi:cli/run@0.2.")),
        "{exports:?}"
    );
}

#[test]
fn the_text_form_says_what_can_be_asked_for_and_how_to_grant_it() {
    let leaf = guest("probe_leaf").display().to_string();
    let run = nanoproc(&["inspect", &leaf]);
    assert_eq!(run.code, 0, "{run:?}");
    let out = &run.stdout;
    assert!(out.contains("a WebAssembly component, WASI 0.2"), "{out}");
    assert!(
        out.contains("not a command: it can be a dependency, not a root"),
        "{out}"
    );
    assert!(out.contains(&format!("digest: {}", sha256_of(Path::new(&leaf)))));
    // The probe's operations reach files, the network, clocks and random.
    for line in [
        "    grant with grants.fs in a manifest; --dir or --dir-ro with `nanoproc run`",
        "    grant with grants.network, grants.listen in a manifest; --connect, --listen with `nanoproc run`",
    ] {
        assert!(out.lines().any(|l| l == line), "no line {line:?} in\n{out}");
    }
    let sections: Vec<&str> = out
        .lines()
        .filter(|l| !l.starts_with(' ') && l.ends_with(':'))
        .collect();
    assert_eq!(
        sections,
        ["Can ask for:", "Needs from dependencies:", "Exports:"],
        "{out}"
    );
    assert!(out.contains("  test:probe/probe ("), "{out}");
}

#[test]
fn a_javascript_component_without_http_asks_for_clocks_and_random() {
    let file = foreign_guest("js-hello");
    let s = inspect_json(&file);
    assert_eq!(s["kind"], "component");
    assert_eq!(s["command"], true);
    let clocks = keys_of(&s, "clocks");
    assert!(
        clocks.contains(&"monotonic-clock".to_string()),
        "{clocks:?}"
    );
    assert!(clocks.contains(&"wall-clock".to_string()), "{clocks:?}");
    assert!(keys_of(&s, "random").contains(&"random".to_string()));
    assert!(keys_of(&s, "stdio").contains(&"stdout".to_string()));
    assert!(
        !families(&s).iter().any(|(f, _)| f == "http"),
        "{:#}",
        s["families"]
    );
    // Everything it imports is served: it can run.
    for import in s["imports"].as_array().unwrap() {
        assert_eq!(import["served"], true, "{import}");
    }
    // componentize-js names the script's language and itself, beside the
    // languages of the engine it embeds (C11, C++14, Rust).
    assert!(
        producers(&s, "language").contains(&"JavaScript".to_string()),
        "{:#}",
        s["producers"]
    );
    assert!(producers(&s, "processed-by").contains(&"ComponentizeJS".to_string()));
}

#[test]
fn the_javascript_component_runs_with_exactly_the_clock_and_random_grants_inspect_names() {
    let file = foreign_guest("js-hello").display().to_string();
    let run = nanoproc(&["run", "--clocks", "--random", &file]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout.starts_with("hello from JavaScript: rolled "),
        "{run:?}"
    );
    // Without the wall clock it traps on Date.now, naming what it lacked.
    let run = nanoproc(&["run", "--monotonic-clock", "--random", &file]);
    assert_ne!(run.code, 0, "{run:?}");
    assert!(run.stderr.contains("wall-clock"), "{run:?}");
}

#[test]
fn a_javascript_component_with_http_asks_for_the_http_grant() {
    let file = foreign_guest("js-http");
    let s = inspect_json(&file);
    let http = s["families"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["family"] == "http")
        .unwrap_or_else(|| panic!("no http family in {:#}", s["families"]));
    assert_eq!(http["grantable"], true, "{http}");
    assert!(
        strings(&http["interfaces"])
            .iter()
            .any(|i| i.starts_with("wasi:http/outgoing-handler@0.2.")),
        "{http}"
    );
    assert_eq!(keys_of(&s, "http"), ["http"]);
    // componentize-js's wasi:http@0.2.10 is served by wasmtime-wasi-http's 0.2
    // bindings: nothing it imports is left unserved.
    let unserved: Vec<_> = s["imports"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["served"] == false)
        .collect();
    assert!(unserved.is_empty(), "{unserved:?}");
    let text = nanoproc(&["inspect", &file.display().to_string()]);
    assert_eq!(text.code, 0, "{text:?}");
    assert!(!text.stdout.contains("Cannot be served:"), "{text:?}");
    assert!(text.stdout.contains("http"), "{text:?}");
}

#[test]
fn a_python_component_asks_for_the_network_environment_and_random() {
    let file = foreign_guest("py-hello");
    let s = inspect_json(&file);
    assert_eq!(s["kind"], "component");
    assert_eq!(s["command"], true);
    // componentize-py imports all of wasi:sockets, even for a hello.
    assert_eq!(keys_of(&s, "network"), ["network", "listen"]);
    assert_eq!(keys_of(&s, "environment"), ["env", "args"]);
    let random = keys_of(&s, "random");
    assert!(random.contains(&"random".to_string()), "{random:?}");
    assert!(keys_of(&s, "filesystem").contains(&"fs".to_string()));
    // componentize-py records no Python: only its Rust runtime and the tool
    // that pre-initialises the interpreter.
    assert!(
        producers(&s, "processed-by").contains(&"component-init-transform".to_string()),
        "{:#}",
        s["producers"]
    );
    assert!(!producers(&s, "language").contains(&"Python".to_string()));
}

#[test]
fn a_c_program_is_a_preview_1_module_whose_functions_map_to_families() {
    let file = foreign_guest("c-reader");
    let s = inspect_json(&file);
    assert_eq!(s["kind"], "preview1-module");
    assert_eq!(strings(&s["wasi"]), ["preview1"]);
    assert_eq!(s["command"], true);
    assert_eq!(keys_of(&s, "filesystem"), ["fs"]);
    assert_eq!(keys_of(&s, "clocks"), ["wall-clock", "monotonic-clock"]);
    assert_eq!(keys_of(&s, "exit"), ["exit"]);
    assert!(keys_of(&s, "stdio").contains(&"stdout".to_string()));
    let clock = s["imports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == "clock_time_get")
        .expect("clock_time_get is imported");
    assert_eq!(clock["interface"], "wasi_snapshot_preview1");
    assert_eq!(clock["provider"], "wasi");
    let notes = strings(&s["notes"]);
    assert!(
        notes.iter().any(|n| n.contains("can only be a root")),
        "{notes:?}"
    );
    assert!(notes.iter().any(|n| n.contains("fd_write")), "{notes:?}");
    // clang records the C standard and itself.
    assert_eq!(producers(&s, "language"), ["C99"], "{:#}", s["producers"]);
    assert_eq!(producers(&s, "processed-by"), ["Debian clang"]);
}

#[test]
fn a_preview_1_module_as_a_dependency_is_refused_at_its_line() {
    let scene = Scene::new();
    let reader = foreign_guest("c-reader");
    let m = scene.manifest(&format!(
        r#"[app]
root = "driver"

[nanoprocess.driver]
component = "{{probe_driver}}"
deps = {{ "test:probe/probe" = "reader", "test:probe/sibling" = "sib" }}

[nanoprocess.reader]
component = "{}"

[nanoprocess.sib]
component = "{{probe_leaf}}"
"#,
        reader.display()
    ));
    let run = nanoproc(&["check", &m.display().to_string()]);
    assert_eq!(run.code, 125, "{run:?}");
    assert!(
        run.stderr.contains(&format!(
            "nanoproc.toml:9:13: driver/reader: {} is a core module (WASI preview 1), which can only be a root",
            reader.display()
        )),
        "{run:?}"
    );
    assert!(
        run.stderr.contains("cargo build --target wasm32-wasip2"),
        "{run:?}"
    );
    assert!(run.stderr.contains("wasm-tools component new"), "{run:?}");
}

/// What `inspect`, `run` and `check` say about a file that is not WebAssembly.
#[test]
fn files_that_are_not_webassembly_are_named_for_what_they_are() {
    let scene = Scene::new();
    let png = scene.path("photo.png");
    std::fs::write(&png, b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01").unwrap();
    let toml = scene.file(
        "nanoproc.toml.bak",
        "[app]\nroot = \"a\"\n\n[nanoprocess.a]\ncomponent = \"a.wasm\"\n",
    );
    let empty = scene.file("empty.wasm", "");
    let wat = scene.file("hello.wasm", ";; text\n(module (func))\n");
    let elf = Path::new("/bin/true");
    let cases: [(&Path, &str, &str); 5] = [
        (
            &png,
            "photo.png is not WebAssembly: it is a PNG image",
            "build for wasm32-wasip2",
        ),
        (
            &toml,
            "nanoproc.toml.bak is not WebAssembly: it is a TOML manifest",
            "this is a TOML manifest; name it `*.toml`",
        ),
        (
            elf,
            "/bin/true is not WebAssembly: it is a native executable (ELF)",
            "this is a native executable; build for wasm32-wasip2",
        ),
        (&empty, "empty.wasm is empty", "build it again"),
        (
            &wat,
            "hello.wasm is not WebAssembly: it is WebAssembly text (WAT) of a module",
            "wasm-tools parse",
        ),
    ];
    for (file, what, help) in cases {
        let file = file.display().to_string();
        let shown = file.strip_prefix(&format!("{}/", scene.dir.path().display()));
        let shown = shown.unwrap_or(&file);
        let expected = what.replacen(shown, &file, 1);
        for args in [
            vec!["inspect", &file],
            vec!["inspect", &file, "--json"],
            vec!["run", &file],
        ] {
            let run = nanoproc(&args);
            assert_eq!(run.code, 125, "{args:?}: {run:?}");
            assert!(run.stderr.contains(&expected), "{args:?}: {run:?}");
            assert!(run.stderr.contains(help), "{args:?}: {run:?}");
        }
        let json = nanoproc(&["inspect", &file, "--json"]);
        let error: Value = serde_json::from_str(&json.stdout).expect("one JSON object");
        assert!(
            error["error"]["message"]
                .as_str()
                .unwrap()
                .contains(&expected),
            "{json:?}"
        );
    }
    // `check` given a component named as a manifest says so, rather than that
    // it is bad TOML.
    let component = scene.path("app.toml");
    std::fs::copy(guest("probe_cmd"), &component).unwrap();
    let component = component.display().to_string();
    let run = nanoproc(&["check", &component]);
    assert_eq!(run.code, 125, "{run:?}");
    assert!(
        run.stderr.contains(&format!(
            "{component} is a WebAssembly component, not a manifest: run it with `nanoproc run {component}`"
        )),
        "{run:?}"
    );
    // And given an image, as `run` does, what it is.
    let run = nanoproc(&["check", &png.display().to_string()]);
    assert_eq!(run.code, 125, "{run:?}");
    assert!(
        run.stderr
            .contains("photo.png is not WebAssembly: it is a PNG image"),
        "{run:?}"
    );
    // A manifest that is an image, likewise.
    let fake = scene.path("fake.toml");
    std::fs::copy(&png, &fake).unwrap();
    let run = nanoproc(&["check", &fake.display().to_string()]);
    assert_eq!(run.code, 125, "{run:?}");
    assert!(
        run.stderr
            .contains("fake.toml is not a manifest: it is a PNG image"),
        "{run:?}"
    );
}

#[test]
fn guest_chosen_names_are_escaped_in_the_text_form() {
    // A producers entry with a terminal escape and a newline, added to a real
    // component as a custom section (sections may be appended to a component).
    let mut bytes = std::fs::read(guest("probe_leaf")).unwrap();
    let mut section = Vec::new();
    section.push(1u8); // one field
    for s in [&b"language"[..], b"\x1b[2Jevil\nnanoproc: forged", b"1"] {
        section.push(u8::try_from(s.len()).unwrap());
        section.extend_from_slice(s);
        if s == b"language" {
            section.push(1); // one value
        }
    }
    let name = b"producers";
    let mut payload = vec![u8::try_from(name.len()).unwrap()];
    payload.extend_from_slice(name);
    payload.extend_from_slice(&section);
    bytes.push(0); // a custom section
    bytes.push(u8::try_from(payload.len()).unwrap());
    bytes.extend_from_slice(&payload);
    let scene = Scene::new();
    let file = scene.path("evil.wasm");
    std::fs::write(&file, &bytes).unwrap();
    let run = nanoproc(&["inspect", &file.display().to_string()]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(!run.stdout.contains('\x1b'), "{run:?}");
    assert!(
        run.stdout.contains("\\u{1b}[2Jevil\\nnanoproc: forged 1"),
        "{run:?}"
    );
}

/// Truncated and bit-flipped copies of a real component: each is described or
/// refused, never a panic, not even one `surface` catches from the decoder.
#[test]
fn damaged_components_are_refused_never_a_panic() {
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};
    use std::sync::atomic::{AtomicUsize, Ordering};
    static PANICS: AtomicUsize = AtomicUsize::new(0);
    let this_test = std::thread::current().id();
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if std::thread::current().id() == this_test {
            PANICS.fetch_add(1, Ordering::SeqCst);
        }
        previous(info);
    }));
    let bytes = std::fs::read(guest("probe_leaf")).unwrap();
    let len = bytes.len();
    let mut runner = TestRunner::new(Config {
        cases: 1000,
        failure_persistence: None,
        ..Config::default()
    });
    let damage = (
        0..=len,
        proptest::collection::vec((0..len, any::<u8>()), 0..8),
    );
    runner
        .run(&damage, |(cut, flips)| {
            let mut damaged = bytes.clone();
            for (at, xor) in flips {
                damaged[at] ^= xor.max(1);
            }
            damaged.truncate(cut);
            let result = std::panic::catch_unwind(|| nanoproc_runtime::surface::inspect(&damaged));
            prop_assert!(result.is_ok(), "inspect panicked on a damaged copy");
            prop_assert_eq!(PANICS.load(Ordering::SeqCst), 0);
            if cut < 8 {
                prop_assert!(result.unwrap().is_err());
            }
            Ok(())
        })
        .unwrap();
    // The undamaged file is described: the property above is not vacuous.
    assert!(nanoproc_runtime::surface::inspect(&bytes).is_ok());
}

/// `n` as unsigned LEB128, as a WebAssembly binary writes lengths and counts.
fn leb(mut n: usize, out: &mut Vec<u8>) {
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// `text` as a WebAssembly name: its length, then its bytes.
fn wasm_name(text: &str, out: &mut Vec<u8>) {
    leb(text.len(), out);
    out.extend_from_slice(text.as_bytes());
}

/// A `producers` custom section whose `field` has the `(name, version)` values;
/// appended to a component, it is part of it.
fn producers_section(field: &str, values: &[(String, String)]) -> Vec<u8> {
    let mut body = Vec::new();
    wasm_name("producers", &mut body);
    leb(1, &mut body);
    wasm_name(field, &mut body);
    leb(values.len(), &mut body);
    for (name, version) in values {
        wasm_name(name, &mut body);
        wasm_name(version, &mut body);
    }
    let mut section = vec![0u8];
    leb(body.len(), &mut section);
    section.extend_from_slice(&body);
    section
}

#[test]
fn a_huge_producers_section_is_counted_not_listed() {
    // 270 KB of distinct entries took 13 s, at every check of a locked tree too.
    let mut bytes = std::fs::read(guest("probe_leaf")).unwrap();
    let values: Vec<(String, String)> = (0..60_000)
        .map(|i| (format!("tool{i}"), "1".to_string()))
        .collect();
    bytes.extend(producers_section("sdk", &values));
    let scene = Scene::new();
    let file = scene.path("many-producers.wasm");
    std::fs::write(&file, &bytes).unwrap();
    let surface = inspect_json(&file);
    let kept = surface["producers"].as_array().unwrap().len();
    assert_eq!(kept, nanoproc_runtime::surface::MAX_PRODUCERS);
    let own = kept - producers(&surface, "sdk").len();
    let not_kept = surface["producers_not_kept"].as_u64().unwrap();
    assert_eq!(not_kept, (values.len() - (kept - own)) as u64);
    let f = file.display().to_string();
    let text = nanoproc(&["inspect", &f]);
    assert_eq!(text.code, 0, "{text:?}");
    assert!(
        text.stdout
            .contains(&format!("\n    and {not_kept} more entries, not kept\n")),
        "{text:?}"
    );
    // A real file keeps all its entries.
    let leaf = inspect_json(&guest("probe_leaf"));
    assert_eq!(leaf["producers_not_kept"], 0);
}

/// A WASI preview 1 module importing `count` functions `fd_0`, `fd_1`... (each
/// a filesystem function nanoproc does not know, by its prefix).
fn module_importing(count: usize) -> Vec<u8> {
    let mut bytes = b"\0asm\x01\0\0\0".to_vec();
    bytes.extend_from_slice(&[1, 4, 1, 0x60, 0, 0]); // one type: [] -> []
    let mut imports = Vec::new();
    leb(count, &mut imports);
    for i in 0..count {
        wasm_name("wasi_snapshot_preview1", &mut imports);
        wasm_name(&format!("fd_{i}"), &mut imports);
        imports.extend_from_slice(&[0, 0]); // a function of type 0
    }
    bytes.push(2);
    leb(imports.len(), &mut bytes);
    bytes.extend(imports);
    bytes
}

#[test]
fn a_family_of_many_imports_names_the_first_twenty_in_text_and_all_in_json() {
    // 100 000 imports took 46 s: each was searched for among those listed.
    let scene = Scene::new();
    let file = scene.path("many-imports.wasm");
    std::fs::write(&file, module_importing(100_000)).unwrap();
    let f = file.display().to_string();
    let (text, _) = nanoproc_within(std::time::Duration::from_secs(120), &["inspect", &f]);
    assert_eq!(text.code, 0, "{text:?}");
    let first: Vec<String> = (0..20).map(|i| format!("fd_{i}")).collect();
    let line = format!(
        "\n  filesystem: {}, and 99980 more (--json lists all)\n",
        first.join(", ")
    );
    assert!(text.stdout.contains(&line), "{text:?}");
    let (json, _) = nanoproc_within(
        std::time::Duration::from_secs(120),
        &["inspect", "--json", &f],
    );
    assert_eq!(json.code, 0, "{json:?}");
    let surface: Value = serde_json::from_str(&json.stdout).unwrap();
    let listed = strings(&surface["families"][0]["interfaces"]);
    assert_eq!(listed.len(), 100_000);
    assert_eq!(listed[99_999], "fd_99999");
}

#[test]
fn components_nested_deeper_than_wasmtime_loads_are_refused_at_once() {
    // 100 000 components, each in the one before (1.2 MB): decoding took 114 s
    // and 194 MB. Built from the inside out: each level is its header, a
    // component section and the level inside.
    const HEADER: [u8; 8] = [0, b'a', b's', b'm', 0x0d, 0, 1, 0];
    let levels = 100_000;
    let mut sizes = vec![HEADER.len()];
    for i in 0..levels {
        let mut len = Vec::new();
        leb(sizes[i], &mut len);
        sizes.push(HEADER.len() + 1 + len.len() + sizes[i]);
    }
    let mut bytes = Vec::with_capacity(sizes[levels]);
    for i in (0..levels).rev() {
        bytes.extend_from_slice(&HEADER);
        bytes.push(4);
        leb(sizes[i], &mut bytes);
    }
    bytes.extend_from_slice(&HEADER);
    let scene = Scene::new();
    let file = scene.path("nested.wasm");
    std::fs::write(&file, &bytes).unwrap();
    let (run, _) = nanoproc_within(
        std::time::Duration::from_secs(60),
        &["inspect", &file.display().to_string()],
    );
    assert_eq!(run.code, 125, "{run:?}");
    assert!(
        run.stderr
            .contains("it holds more than 1000 modules and components"),
        "{run:?}"
    );
}

#[test]
fn json_escapes_characters_that_reorder_or_hide_text() {
    // serde_json leaves C1 controls (U+009B is a terminal's CSI), bidirectional
    // overrides and zero-width characters as they are.
    let evil = "a\u{202e}b\u{200b}c\u{9b}31md";
    let mut bytes = std::fs::read(guest("probe_leaf")).unwrap();
    bytes.extend(producers_section(
        "language",
        &[(evil.to_string(), "1".to_string())],
    ));
    let scene = Scene::new();
    let file = scene.path("evil.wasm");
    std::fs::write(&file, &bytes).unwrap();
    let f = file.display().to_string();
    let run = nanoproc(&["inspect", "--json", &f]);
    assert_eq!(run.code, 0, "{run:?}");
    for c in ['\u{202e}', '\u{200b}', '\u{9b}'] {
        assert!(!run.stdout.contains(c), "{c:?} in {run:?}");
    }
    assert!(run.stdout.contains(r"a\u202eb\u200bc\u009b31md"), "{run:?}");
    // Still JSON, and the same name.
    let surface: Value = serde_json::from_str(&run.stdout).unwrap();
    assert!(producers(&surface, "language").contains(&evil.to_string()));

    // The error form too, for a file named with them that is no WebAssembly.
    let named = scene.file(&format!("{evil}.wasm"), "just text\n");
    let run = nanoproc(&["inspect", "--json", &named.display().to_string()]);
    assert_eq!(run.code, 125, "{run:?}");
    for c in ['\u{202e}', '\u{200b}', '\u{9b}'] {
        assert!(!run.stdout.contains(c), "{c:?} in {run:?}");
        assert!(!run.stderr.contains(c), "{c:?} in {run:?}");
    }
    // The message names the file as the text form does, escaped.
    let error: Value = serde_json::from_str(&run.stdout).unwrap();
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains(r"a\u{202e}b\u{200b}c\u{9b}31md.wasm"),
        "{error}"
    );
}

/// A core module importing many functions nanoproc cannot serve: the text names
/// the first 20 and counts the rest; the JSON lists them all.
#[test]
fn imports_that_cannot_be_served_are_listed_within_bounds() {
    fn leb(mut n: usize) -> Vec<u8> {
        let mut out = Vec::new();
        loop {
            let byte = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                out.push(byte);
                return out;
            }
            out.push(byte | 0x80);
        }
    }
    fn name(s: &str) -> Vec<u8> {
        let mut out = leb(s.len());
        out.extend_from_slice(s.as_bytes());
        out
    }
    fn section(id: u8, payload: Vec<u8>) -> Vec<u8> {
        let mut out = vec![id];
        out.extend(leb(payload.len()));
        out.extend(payload);
        out
    }
    let mut imports = leb(30);
    for i in 0..30 {
        imports.extend(name("env"));
        imports.extend(name(&format!("f{i}")));
        imports.extend([0x00, 0x00]);
    }
    let mut wasm = b"\0asm\x01\0\0\0".to_vec();
    wasm.extend(section(1, vec![1, 0x60, 0, 0]));
    wasm.extend(section(2, imports));
    let scene = Scene::new();
    let file = scene.path("many.wasm");
    std::fs::write(&file, wasm).unwrap();
    let run = nanoproc(&["inspect", &file.display().to_string()]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("  f19: "), "{run:?}");
    assert!(!run.stdout.contains("  f20: "), "{run:?}");
    assert!(
        run.stdout.contains("and 10 more (--json lists all)"),
        "{run:?}"
    );
    let json = inspect_json(&file);
    let problems = json["imports"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| !i["problem"].is_null())
        .count();
    assert_eq!(problems, 30);
}
