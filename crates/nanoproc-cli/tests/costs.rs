//! The host's resources a guest spends are charged to that guest: a result too
//! large for its parent is the child's failure, and a deep tree of calls does not
//! overflow nanoproc's own stack.

use crate::common;
use common::*;

#[test]
fn a_result_too_large_for_the_parent_is_the_childs_failure() {
    let scene = Scene::new();
    let m = scene.driver_tree(
        "grants.stdout = true\ngrants.memory = \"64 MiB\"",
        "on-failure = \"error\"",
        "",
    );
    let run = run_manifest(&m, &["child:big:40", "sibling:count"]);
    // The parent was not killed for what its child returned: it got an error
    // naming the child and carried on.
    assert_eq!(run.code, 0, "{run:?}");
    let answer = run.assert_err("child:big:40");
    assert!(
        answer.contains("nanoprocess `driver/leaf` failed")
            && answer.contains("its result of 4194")
            && answer.contains("more than its parent `driver` may still allocate"),
        "{answer}"
    );
    assert_eq!(run.answer("sibling:count"), "ok: 1", "{run:?}");
    // A result that fits crosses as before.
    let run = run_manifest(&m, &["child:big:1"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.assert_ok("child:big:1").len(), "ok: ".len() + (1 << 20));
}

/// driver -> mid0 -> mid1 -> ... -> mid(N-1) -> leaf, each mid serving
/// `downstream` to the one above it; the driver's `sibling` is a second leaf.
fn chain(scene: &Scene, mids: usize) -> std::path::PathBuf {
    chain_under(scene, "probe_driver", mids)
}

/// [`chain`] under the driver `driver` (`probe_driver`, or `probe3_driver` in
/// redteam_p3.rs); the mids and leaves are the 0.2 probes.
pub(crate) fn chain_under(scene: &Scene, driver: &str, mids: usize) -> std::path::PathBuf {
    let mut m = format!(
        "[app]\nroot = \"driver\"\n\n[nanoprocess.driver]\ncomponent = \"{}\"\n\
         deps = {{ \"test:probe/probe\" = \"mid0\", \"test:probe/sibling\" = \"sib\" }}\n\
         grants.stdout = true\n\n",
        guest(driver).display()
    );
    for i in 0..mids {
        let below = if i + 1 == mids {
            "leaf".to_string()
        } else {
            format!("mid{}", i + 1)
        };
        m.push_str(&format!(
            "[nanoprocess.mid{i}]\ncomponent = \"{{probe_mid}}\"\n\
             deps = {{ \"test:probe/downstream\" = \"{below}\" }}\n\n"
        ));
    }
    m.push_str("[nanoprocess.leaf]\ncomponent = \"{probe_leaf}\"\n\n");
    m.push_str("[nanoprocess.sib]\ncomponent = \"{probe_leaf}\"\n");
    scene.manifest(&m)
}

#[test]
fn a_deep_chain_of_calls_each_deep_in_wasm_does_not_overflow_nanoprocs_stack() {
    let scene = Scene::new();
    let mids = 48;
    let m = chain(&scene, mids);
    // Every mid recurses thousands of wasm frames before it calls the next: each
    // holds a share of the native stack while everything below it runs.
    let op = format!("child:{}count", "dive:3000:".repeat(mids));
    let run = run_manifest(&m, &[&op, "sibling:count"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.assert_ok(&op), "ok: 1");
    assert_eq!(run.answer("sibling:count"), "ok: 1", "{run:?}");
}

#[test]
fn a_tree_deeper_than_the_default_cap_runs_when_allowed() {
    let scene = Scene::new();
    let mids = 120;
    let m = chain(&scene, mids);
    let m_arg = m.display().to_string();
    // 122 levels: refused by default, with the way to allow it.
    let run = nanoproc(&["check", &m_arg]);
    assert_eq!(run.code, 125, "{run:?}");
    assert!(
        run.stderr.contains("a tree has at most 64 levels") && run.stderr.contains("--max-depth"),
        "{run:?}"
    );
    // Allowed, it is instantiated and runs on stacks sized for its depth, each
    // level deep in wasm while the levels below run.
    let op = format!("child:{}count", "dive:2000:".repeat(mids));
    let run = nanoproc(&["run", "--max-depth", "200", &m_arg, "--", &op]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.assert_ok(&op), "ok: 1");
}
