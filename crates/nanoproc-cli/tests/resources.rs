//! Component resources that cross nanoprocess boundaries: a child exports
//! `resource counter` (res_child), its parent (res_parent) holds proxies to the
//! child's counters; a three-level chain (res_top -> res_mid -> res_child) where a
//! meter in the middle holds a counter below; what happens to old proxies when the
//! child fails and is restarted; forged and stale handle numbers; and `nanoproc
//! check`'s view of all of it.

use crate::common;
use common::*;

use std::path::PathBuf;

/// parent (res_parent) -> child (res_child); `child` is the rest of the child's
/// table (restart...).
fn tree(scene: &Scene, child: &str) -> PathBuf {
    scene.manifest(&format!(
        r#"[app]
root = "parent"

[nanoprocess.parent]
component = "{{res_parent}}"
grants.stdout = true
deps = {{ "test:res/counters" = "child" }}

[nanoprocess.child]
component = "{{res_child}}"
on-failure = "error"
{child}
"#
    ))
}

/// top (res_top) -> mid (res_mid) -> child (res_child).
fn chain(scene: &Scene) -> PathBuf {
    scene.manifest(
        r#"[app]
root = "top"

[nanoprocess.top]
component = "{res_top}"
grants.stdout = true
deps = { "test:res/meters" = "mid" }

[nanoprocess.mid]
component = "{res_mid}"
deps = { "test:res/counters" = "child" }

[nanoprocess.child]
component = "{res_child}"
"#,
    )
}

fn run(child: &str, ops: &[&str]) -> Run {
    let scene = Scene::new();
    run_manifest(&tree(&scene, child), ops)
}

/// Every answer printed for `op`, in order (an op may be given several times).
fn answers<'a>(run: &'a Run, op: &str) -> Vec<&'a str> {
    let prefix = format!("{op} => ");
    run.stdout
        .lines()
        .filter_map(|l| l.strip_prefix(prefix.as_str()))
        .collect()
}

/// Whether a trap message is wasmtime's refusal of a handle number.
fn refuses_the_handle(text: &str) -> bool {
    text.contains("handle index") || text.contains("unknown handle")
}

#[test]
fn a_childs_counters_are_used_through_proxies() {
    let run = run(
        "",
        &[
            "new:5",
            "inc:0",
            "inc:0",
            "get:0",
            "fork:0",
            "get:1",
            "inc:1",
            "get:0",
            "total:0,1",
            "live",
        ],
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(answers(&run, "new:5"), ["ok: #0"], "{run:?}");
    assert_eq!(answers(&run, "inc:0"), ["ok: 6", "ok: 7"], "{run:?}");
    // The fork starts at the original's value and then goes its own way.
    assert_eq!(answers(&run, "fork:0"), ["ok: #1"], "{run:?}");
    assert_eq!(answers(&run, "get:1"), ["ok: 7"], "{run:?}");
    assert_eq!(answers(&run, "inc:1"), ["ok: 8"], "{run:?}");
    assert_eq!(answers(&run, "get:0"), ["ok: 7", "ok: 7"], "{run:?}");
    // Both lent to one call.
    assert_eq!(answers(&run, "total:0,1"), ["ok: 15"], "{run:?}");
    assert_eq!(answers(&run, "live"), ["ok: 2"], "{run:?}");
}

#[test]
fn drops_and_consumes_reach_the_childs_counters() {
    let run = run(
        "",
        &[
            "live",
            "new:1",
            "new:2",
            "new:3",
            "live",
            "drop:1",
            "live",
            "consume:0",
            "live",
            "fork:2",
            "live",
            "inc:3",
            "total:2,3",
            "drop:2",
            "live",
            "consume:3",
            "live",
        ],
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        answers(&run, "live"),
        [
            "ok: 0", "ok: 3", "ok: 2", "ok: 1", "ok: 2", "ok: 1", "ok: 0"
        ],
        "{run:?}"
    );
    assert_eq!(answers(&run, "drop:1"), ["ok: dropped #1"], "{run:?}");
    // `consume` takes the counter (own) and answers its last value.
    assert_eq!(answers(&run, "consume:0"), ["ok: 1"], "{run:?}");
    assert_eq!(answers(&run, "fork:2"), ["ok: #3"], "{run:?}");
    assert_eq!(answers(&run, "inc:3"), ["ok: 4"], "{run:?}");
    assert_eq!(answers(&run, "total:2,3"), ["ok: 7"], "{run:?}");
    assert_eq!(answers(&run, "consume:3"), ["ok: 4"], "{run:?}");
}

#[test]
fn many_rounds_of_passing_counters_leave_nothing_behind() {
    // Each round: a counter, a fork of it, both lent to `total`, the fork given to
    // `consume`, the original dropped. Nothing survives a round in the child.
    let round = "new:1+inc:-1+fork:-1+total:-1,-2+consume:-1+drop:-2";
    let repeat = format!("repeat:500,{round}");
    let run = run("", &[&repeat, "live", "new:7", "inc:-1"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.assert_ok(&repeat), "ok: 500 times: dropped #-2");
    assert_eq!(answers(&run, "live"), ["ok: 0"], "{run:?}");
    assert_eq!(run.assert_ok("inc:-1"), "ok: 8");
}

#[test]
fn the_parent_without_arguments_still_counts_to_seven() {
    let run = run("", &[]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.stdout.trim(), "counter: 7", "{run:?}");
}

#[test]
fn a_forged_counter_handle_traps_the_parent_that_presents_it() {
    for forged in ["forge:7", "forge:1000", "forge:0"] {
        let run = run("", &["new:1", "new:2", "live", forged]);
        assert_eq!(run.code, 134, "{forged}: {run:?}");
        assert!(
            run.stderr.contains("nanoprocess `parent` trapped"),
            "{forged}: {run:?}"
        );
        assert!(refuses_the_handle(&run.stderr), "{forged}: {run:?}");
        assert!(!run.stdout.contains("forged handle"), "{forged}: {run:?}");
        assert_eq!(answers(&run, "live"), ["ok: 2"], "{forged}: {run:?}");
    }
}

#[test]
fn a_dropped_or_given_away_counter_cannot_be_used_again() {
    for gone in ["drop:0", "consume:0"] {
        let run = run("", &["new:5", "inc:0", gone, "live", "stale:0"]);
        assert_eq!(run.code, 134, "{gone}: {run:?}");
        run.assert_ok(gone);
        assert_eq!(answers(&run, "live"), ["ok: 0"], "{gone}: {run:?}");
        assert!(
            run.stderr.contains("nanoprocess `parent` trapped"),
            "{gone}: {run:?}"
        );
        assert!(refuses_the_handle(&run.stderr), "{gone}: {run:?}");
        assert!(!run.stdout.contains("forged handle"), "{gone}: {run:?}");
    }
}

const RESTART: &str = "restart = { max = 1, within = \"10s\" }";

#[test]
fn after_the_child_restarts_old_proxies_are_harmless_and_new_counters_work() {
    let run = run(
        RESTART,
        &[
            "new:5", "new:6", "inc:0", "crash", "live", "drop:0", "new:3", "inc:2", "get:2",
            "live", "drop:1", "live",
        ],
    );
    assert_eq!(run.code, 0, "{run:?}");
    // The crash reaches the parent as an error naming the child and its panic.
    let crash = run.assert_err("crash");
    assert!(
        crash.contains("nanoprocess `parent/child` failed in test:res/counters#crash"),
        "{crash}"
    );
    assert!(crash.contains("res-child crashes on purpose"), "{crash}");
    // The restarted instance starts empty: the old counters died with the old one.
    assert_eq!(
        answers(&run, "live"),
        ["ok: 0", "ok: 1", "ok: 1"],
        "{run:?}"
    );
    // Dropping old proxies is harmless...
    assert_eq!(run.assert_ok("drop:0"), "ok: dropped #0");
    assert_eq!(run.assert_ok("drop:1"), "ok: dropped #1");
    // ...and new counters live in the new instance.
    assert_eq!(run.assert_ok("new:3"), "ok: #2");
    assert_eq!(run.assert_ok("inc:2"), "ok: 4");
    assert_eq!(run.assert_ok("get:2"), "ok: 4");
    // One restart, in nanoproc's account.
    assert!(run.stderr.contains("parent/child: restarted"), "{run:?}");
}

#[test]
fn a_call_on_an_old_proxy_after_a_restart_fails_naming_the_child() {
    // `inc` has no error case: the parent traps, with a message that names the child
    // and says the counter belonged to its earlier, failed instance.
    let run = run(RESTART, &["new:5", "crash", "new:1", "inc:1", "inc:0"]);
    assert_eq!(run.code, 134, "{run:?}");
    run.assert_err("crash");
    assert_eq!(run.assert_ok("inc:1"), "ok: 2", "the new counter works");
    assert!(answers(&run, "inc:0").is_empty(), "{run:?}");
    assert!(run.stderr.contains("parent/child"), "{run:?}");
    assert!(run.stderr.contains("earlier"), "{run:?}");
    assert!(run.stderr.contains("failed"), "{run:?}");

    // The same for an old proxy lent to a function (total borrows both).
    let run = self::run(RESTART, &["new:5", "crash", "new:1", "total:0,1"]);
    assert_eq!(run.code, 134, "{run:?}");
    assert!(answers(&run, "total:0,1").is_empty(), "{run:?}");
    assert!(run.stderr.contains("parent/child"), "{run:?}");
    assert!(run.stderr.contains("earlier"), "{run:?}");
}

#[test]
fn a_child_that_is_not_restarted_fails_every_later_call_by_name() {
    let run = run("", &["new:5", "crash", "live"]);
    run.assert_err("crash");
    // `live` has no error case either: the parent traps, naming the child.
    assert_eq!(run.code, 134, "{run:?}");
    assert!(run.stderr.contains("parent/child"), "{run:?}");
    assert!(answers(&run, "live").is_empty(), "{run:?}");
}

#[test]
fn a_three_level_chain_drops_all_the_way_down() {
    let scene = Scene::new();
    let run = run_manifest(
        &chain(&scene),
        &[
            "new:1",
            "new:10",
            "tick:0",
            "tick:1",
            "tick:1",
            "live",
            "counters-live",
            "drop:0",
            "live",
            "counters-live",
            "new:100",
            "tick:2",
            "live",
            "counters-live",
            "drop:1",
            "drop:2",
            "live",
            "counters-live",
        ],
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(answers(&run, "tick:0"), ["ok: 2"], "{run:?}");
    assert_eq!(answers(&run, "tick:1"), ["ok: 11", "ok: 12"], "{run:?}");
    assert_eq!(answers(&run, "tick:2"), ["ok: 101"], "{run:?}");
    // Meters alive in the middle, and counters alive at the bottom.
    assert_eq!(
        answers(&run, "live"),
        ["ok: 2", "ok: 1", "ok: 2", "ok: 0"],
        "{run:?}"
    );
    assert_eq!(
        answers(&run, "counters-live"),
        ["ok: 2", "ok: 1", "ok: 2", "ok: 0"],
        "{run:?}"
    );
}

#[test]
fn check_accepts_resources_across_nanoprocesses() {
    let scene = Scene::new();
    let run = check(&tree(&scene, RESTART));
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout.contains("serves  test:res/counters to parent"),
        "{run:?}"
    );
    assert!(run.stdout.contains("ok: 2 nanoprocesses"), "{run:?}");

    let scene = Scene::new();
    let run = check(&chain(&scene));
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout.contains("serves  test:res/meters to top"),
        "{run:?}"
    );
    assert!(
        run.stdout.contains("serves  test:res/counters to top/mid"),
        "{run:?}"
    );
    assert!(run.stdout.contains("top/mid/child"), "{run:?}");
    assert!(run.stdout.contains("ok: 3 nanoprocesses"), "{run:?}");
}

#[test]
fn check_refuses_a_resource_of_another_type_with_both_types() {
    // res_child_wrong's counter has no `get`, and its `consume` borrows the counter
    // instead of taking it.
    let scene = Scene::new();
    let m = scene.manifest(
        r#"[app]
root = "parent"

[nanoprocess.parent]
component = "{res_parent}"
deps = { "test:res/counters" = "child" }

[nanoprocess.child]
component = "{res_child_wrong}"
"#,
    );
    for run in [check(&m), run_manifest(&m, &["new:1"])] {
        assert_eq!(run.code, 125, "{run:?}");
        let err = &run.stderr;
        assert!(
            err.contains(
                "parent: its import test:res/counters cannot be satisfied by `parent/child`"
            ),
            "{err}"
        );
        assert!(err.contains("counter.get"), "the missing method: {err}");
        let consume = err
            .split(';')
            .chain(err.lines())
            .find(|part| part.contains("`consume`"))
            .unwrap_or_else(|| panic!("no word about consume: {err}"));
        // Both WIT types: the import's takes the counter, the export's borrows it.
        assert!(
            consume.contains("own<") && consume.contains("borrow<"),
            "both types of consume: {consume}"
        );
        assert!(
            consume.find("own<") < consume.find("borrow<"),
            "the import's type first: {consume}"
        );
        assert!(run.stdout.is_empty(), "nothing ran: {run:?}");
    }
}

#[test]
fn proxies_count_against_the_holders_handles_limit() {
    let scene = Scene::new();
    let m = scene.manifest(
        r#"[app]
root = "parent"

[nanoprocess.parent]
component = "{res_parent}"
grants = { stdout = true, handles = 3 }
deps = { "test:res/counters" = "child" }

[nanoprocess.child]
component = "{res_child}"
"#,
    );
    // Three counters fit; dropping one makes room again; a fourth at once does not.
    let run = run_manifest(
        &m,
        &[
            "new:1", "new:2", "new:3", "drop:0", "new:4", "live", "new:5",
        ],
    );
    assert_eq!(answers(&run, "live"), ["ok: 3"], "{run:?}");
    assert_eq!(run.code, 134, "{run:?}");
    assert!(
        run.stderr
            .contains("`parent` cannot take another test:res/counters#counter")
            && run.stderr.contains("its `handles` limit"),
        "{run:?}"
    );
}
