//! What crosses an edge between nanoprocesses that use the component model's async
//! features (issue 15, part 3): an `async` function, a `stream` or a `future`,
//! wherever it is in a parameter or a result, is refused at `check` by name, with
//! why and what to write instead; ordinary functions between async components are
//! carried; an edge between async components cannot be fused.
//!
//! The guests (wit/async-edge.wit): `async_edge_child` exports `jobs` (an `async`
//! function, a stream, a future, one ordinary function), `nested` (streams and
//! futures inside records, lists, options, results, tuples and variants) and
//! `plain`; `async_edge_parent` imports `jobs` and `nested`, every function of
//! both; `async_edge_plain` calls only ordinary functions, from wit-bindgen's
//! async runtime.

use crate::common;
use common::*;

/// `app` (`root`) importing `deps` from `worker` (the async child), with `worker`'s
/// table ending in `worker_extra`.
fn tree(scene: &Scene, root: &str, deps: &str, worker_extra: &str) -> std::path::PathBuf {
    scene.file(
        "nanoproc.toml",
        &format!(
            r#"[app]
root = "app"

[nanoprocess.app]
component = "{}"
grants.stdout = true
deps = {{ {deps} }}

[nanoprocess.worker]
component = "{}"
{worker_extra}
"#,
            guest(root).display(),
            guest("async_edge_child").display(),
        ),
    )
}

const REFUSED_DEPS: &str =
    r#""test:async-edge/jobs" = "worker", "test:async-edge/nested" = "worker""#;

/// What every refused function of the two interfaces is refused with: the
/// function, what it carries and where, and the reason.
const REFUSALS: [&str; 9] = [
    "`test:async-edge/jobs#slow` is declared `async`: its caller may leave an async call pending and wait for it later among its own store's tasks, but nanoproc carries a call across a nanoprocess boundary as one blocking call into the callee's store",
    "`test:async-edge/jobs#upload` carries a stream<u8> (parameter `data`), and a stream belongs to one store: nanoproc copies values across a boundary by the canonical ABI, and a stream is not a value but one end of a channel whose other end stays in the store that made it",
    "`test:async-edge/jobs#later` carries a future<string> (the result), and a future belongs to one store",
    "`test:async-edge/nested#in-record` carries a stream<u32> (field `updates` of parameter `p`)",
    "`test:async-edge/nested#in-list` carries a future<u32> (an element of parameter `items`)",
    "`test:async-edge/nested#in-option` carries a stream<u8> (`some` of the result)",
    "`test:async-edge/nested#in-result` carries a stream<u8> (`ok` of the result)",
    "`test:async-edge/nested#in-tuple` carries a stream<string> (element 1 of parameter `t`)",
    "`test:async-edge/nested#in-variant` carries a future<string> (case `pending` of the result)",
];

#[test]
fn async_functions_streams_and_futures_are_refused_at_check_each_by_name() {
    let scene = Scene::new();
    let m = tree(&scene, "async_edge_parent", REFUSED_DEPS, "");
    let run = check(&m);
    assert_eq!(run.code, 125, "{run:?}");
    let err = &run.stderr;
    for refusal in REFUSALS {
        let (iface, _) = refusal[1..].split_once('#').unwrap();
        // At the dependency's line, from the parent's nanoprocess path.
        let whole = format!("app: cannot import {iface} from `app/worker`: {refusal}");
        assert!(err.contains(&whole), "missing {whole:?} in:\n{err}");
    }
    assert_eq!(err.matches("nanoproc.toml:7:").count(), 9, "{err}");
    // The ordinary functions beside them are not refused.
    assert!(!err.contains("jobs#add"), "{err}");
    assert!(!err.contains("nested#ping"), "{err}");
    assert!(err.contains("refused before running (9 errors)"), "{err}");
    // What to write instead.
    assert!(
        err.contains("help: declare it without `async` (`slow: func(...)`)"),
        "{err}"
    );
    assert!(
        err.contains("help: pass the data itself: a plain function taking or returning `list<u8>` once it is all there; for data that comes in pieces, a resource of the interface with a method that returns the next piece"),
        "{err}"
    );
    assert!(
        err.contains("help: pass the value itself: a plain function returning `string`, which its caller waits for"),
        "{err}"
    );
    assert!(
        err.contains(
            "help: pass the data itself: a plain function taking or returning `list<string>`"
        ),
        "{err}"
    );
    assert_eq!(
        err.matches(
            "`isolation = \"fused\"` is no way around this, as async components cannot be fused"
        )
        .count(),
        9,
        "{err}"
    );
}

#[test]
fn check_json_gives_each_refused_function_its_own_error_with_its_help() {
    let scene = Scene::new();
    let m = tree(&scene, "async_edge_parent", REFUSED_DEPS, "");
    let run = nanoproc(&["check", "--json", &m.display().to_string()]);
    assert_eq!(run.code, 125, "{run:?}");
    let out: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(out["ok"], false, "{out}");
    let errors = out["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 9, "{out:#}");
    for refusal in REFUSALS {
        let e = errors
            .iter()
            .find(|e| e["message"].as_str().unwrap().contains(refusal))
            .unwrap_or_else(|| panic!("no error says {refusal:?}: {out:#}"));
        assert_eq!(e["line"], 7, "{e}");
        assert!(
            e["file"].as_str().unwrap().ends_with("nanoproc.toml"),
            "{e}"
        );
        let help = e["help"].as_str().unwrap();
        assert!(help.contains("cannot be fused"), "{e}");
    }
}

#[test]
fn ordinary_functions_between_async_nanoprocesses_cross() {
    let scene = Scene::new();
    // The parent imports `plain`, and of `jobs` only the ordinary `add`: the
    // `async` function, the stream and the future beside it in the child's export
    // never cross, and are not held against the edge.
    let m = tree(
        &scene,
        "async_edge_plain",
        r#""test:async-edge/plain" = "worker", "test:async-edge/jobs" = "worker""#,
        "",
    );
    let run = check(&m);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout.contains("serves  test:async-edge/plain to app"),
        "{run:?}"
    );
    assert!(
        run.stdout.contains("serves  test:async-edge/jobs to app"),
        "{run:?}"
    );
    let run = run_manifest(&m, &["edge"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        run.stdout, "add 40 2 = 42\ngreet: hello, edge\njobs add 2 3 = 5\n",
        "{run:?}"
    );
}

#[test]
fn an_edge_between_async_components_cannot_be_fused() {
    let scene = Scene::new();
    let m = tree(
        &scene,
        "async_edge_plain",
        r#""test:async-edge/plain" = "worker", "test:async-edge/jobs" = "worker""#,
        "isolation = \"fused\"",
    );
    let run = check(&m);
    assert_eq!(run.code, 125, "{run:?}");
    let err = &run.stderr;
    assert!(
        err.contains("nanoproc.toml:11:13: app/worker: cannot be fused into `app`: both components use the component model's async features (WASI 0.3, `async` functions, streams or futures), and nanoproc fuses synchronous components only: a composite of async components would need concurrency-aware composition, which is not built (a known limit)"),
        "{err}"
    );
    assert!(
        err.contains("help: remove `isolation = \"fused\"`: an isolated edge carries calls between async components through ordinary (not `async`) functions"),
        "{err}"
    );
    assert!(err.contains("refused before running (1 error)"), "{err}");
}
