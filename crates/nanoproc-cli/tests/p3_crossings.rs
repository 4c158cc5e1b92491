//! Every crossing between WASI 0.2 and 0.3 nanoprocesses, three levels deep
//! (issue 15, part 1): a driver, a middle nanoprocess and a leaf, each a 0.2 or a
//! 0.3 component, in all eight combinations. Each level answers under its own
//! grants, a refusal at the bottom reaches the top as the middle's error, and the
//! failure and restart policies hold for a 0.3 nanoprocess as for a 0.2 one.
//! Only a tree with a 0.3 nanoprocess gets concurrency support.

use crate::common;
use common::*;
use std::path::PathBuf;

/// A component of each generation for each level.
fn generation(level: &str, async_: bool) -> String {
    let name = match (level, async_) {
        ("driver", false) => "probe_driver",
        ("driver", true) => "probe3_driver",
        ("mid", false) => "probe_mid",
        ("mid", true) => "probe3_mid",
        ("leaf", false) => "probe_leaf",
        ("leaf", true) => "probe3_leaf",
        _ => unreachable!("no such level"),
    };
    guest(name).display().to_string()
}

/// driver → mid (probe) → leaf (downstream), and driver → sib (sibling, the
/// leaf's component). `leaf` is the rest of the leaf's table.
fn chain(scene: &Scene, generations: [bool; 3], leaf: &str) -> PathBuf {
    let [driver, mid, bottom] = generations;
    scene.manifest(&format!(
        r#"[app]
root = "driver"

[nanoprocess.driver]
component = "{driver}"
deps = {{ "test:probe/probe" = "mid", "test:probe/sibling" = "sib" }}
grants.stdout = true
grants.env = ["WHO=driver", "SHARED=from-the-top"]

[nanoprocess.mid]
component = "{mid}"
deps = {{ "test:probe/downstream" = "leaf" }}
grants.env = ["WHO=mid", "SHARED"]

[nanoprocess.leaf]
component = "{leaf_c}"
grants.env = ["WHO=leaf", "SHARED"]
{leaf}

[nanoprocess.sib]
component = "{leaf_c}"
"#,
        driver = generation("driver", driver),
        mid = generation("mid", mid),
        leaf_c = generation("leaf", bottom),
    ))
}

fn label(generations: [bool; 3]) -> String {
    generations
        .iter()
        .map(|&a| if a { "0.3" } else { "0.2" })
        .collect::<Vec<_>>()
        .join(" -> ")
}

const ALL: [[bool; 3]; 8] = [
    [false, false, false],
    [false, false, true],
    [false, true, false],
    [false, true, true],
    [true, false, false],
    [true, false, true],
    [true, true, false],
    [true, true, true],
];

#[test]
fn every_crossing_three_levels_deep_answers_under_each_levels_grants() {
    for generations in ALL {
        let scene = Scene::new();
        let m = chain(&scene, generations, "on-failure = \"error\"");
        let log = scene.path("audit.jsonl");
        let (log_arg, m_arg) = (log.display().to_string(), m.display().to_string());
        let run = nanoproc(&[
            "run",
            "--audit",
            &log_arg,
            &m_arg,
            "--",
            "env:WHO",
            "child:env:WHO",
            "child:down:env:WHO",
            "child:down:env:SHARED",
            "child:down:random",
            "sibling:env:WHO",
        ]);
        let what = label(generations);
        assert_eq!(run.code, 0, "{what}: {run:?}");
        assert_eq!(run.answer("env:WHO"), "ok: driver", "{what}: {run:?}");
        assert_eq!(run.answer("child:env:WHO"), "ok: mid", "{what}: {run:?}");
        assert_eq!(run.answer("child:down:env:WHO"), "ok: leaf", "{what}");
        assert_eq!(
            run.answer("child:down:env:SHARED"),
            "ok: from-the-top",
            "{what}"
        );
        // The leaf holds no random: its trap is its own failure, an error to the
        // middle (on-failure = "error"), which answers with it; the run goes on.
        let refused = run.assert_err("child:down:random");
        assert!(
            refused.contains("driver/mid/leaf") && refused.contains("random"),
            "{what}: {refused}"
        );
        assert_eq!(run.answer("sibling:env:WHO"), "err: not present", "{what}");

        // Each decision is recorded under the nanoprocess that made the call.
        let audit = audit_lines(&log);
        let refusal = audit.iter().find(|e| e["decision"] == "refused");
        assert!(
            refusal.is_some_and(|e| e["nanoprocess"] == "driver/mid/leaf"
                && e["family"] == "random"
                && e["operation"] == "wasi:random/random.get-random-bytes"),
            "{what}: {audit:?}"
        );
    }
}

#[test]
fn only_a_tree_with_an_async_nanoprocess_gets_concurrency_support() {
    for generations in ALL {
        let scene = Scene::new();
        let m = chain(&scene, generations, "");
        let m_arg = m.display().to_string();
        let checked = nanoproc(&["check", "--json", &m_arg]);
        assert_eq!(checked.code, 0, "{checked:?}");
        let json: serde_json::Value = serde_json::from_str(&checked.stdout).unwrap();
        let any_async = generations.contains(&true);
        assert_eq!(
            json["concurrency_support"],
            any_async,
            "{}: {json}",
            label(generations)
        );
        // driver, mid, leaf, sib: the sibling is the leaf's component.
        let flags: Vec<bool> = json["nanoprocesses"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["async"].as_bool().unwrap())
            .collect();
        let [d, mid, leaf] = generations;
        assert_eq!(flags, [d, mid, leaf, leaf], "{}", label(generations));

        let text = nanoproc(&["check", &m_arg]);
        assert_eq!(
            text.stdout.contains("(async: WASI 0.3)"),
            any_async,
            "{}: {}",
            label(generations),
            text.stdout
        );
    }
}

#[test]
fn a_failed_03_dependency_is_restarted_or_stays_failed_as_its_policy_says() {
    for generations in [
        [true, true, true],
        [false, false, true],
        [true, false, true],
    ] {
        let what = label(generations);
        // Not restartable: after its failure, the next call fails at once.
        let scene = Scene::new();
        let m = chain(&scene, generations, "on-failure = \"error\"");
        let run = run_manifest(
            &m,
            &["child:down:random", "child:down:env:WHO", "child:env:WHO"],
        );
        assert_eq!(run.code, 0, "{what}: {run:?}");
        assert!(
            run.assert_err("child:down:env:WHO")
                .contains("not restartable"),
            "{what}: {run:?}"
        );
        assert_eq!(run.answer("child:env:WHO"), "ok: mid", "{what}");

        // Restartable: a fresh instance, same grants, answers the next call.
        let scene = Scene::new();
        let m = chain(
            &scene,
            generations,
            "on-failure = \"error\"\nrestart = { max = 1, within = \"60s\" }",
        );
        let run = run_manifest(
            &m,
            &[
                "child:down:random",
                "child:down:env:WHO",
                "child:down:random",
                "child:down:env:SHARED",
            ],
        );
        assert_eq!(run.code, 0, "{what}: {run:?}");
        assert_eq!(run.answer("child:down:env:WHO"), "ok: leaf", "{what}");
        // The budget of one restart is spent by the second failure.
        assert!(
            run.assert_err("child:down:env:SHARED")
                .contains("driver/mid/leaf"),
            "{what}: {run:?}"
        );
    }
}

#[test]
fn a_03_dependency_that_traps_traps_its_parent_under_the_default_policy() {
    let scene = Scene::new();
    let m = chain(&scene, [false, true, true], "");
    let run = run_manifest(&m, &["child:down:panic:boom"]);
    assert_ne!(run.code, 0, "{run:?}");
    assert!(
        run.stderr.contains("driver/mid/leaf") && run.stderr.contains("boom"),
        "{run:?}"
    );
}
