#![no_main]
//! `Manifest::parse` on arbitrary text, then the capability checks `nanoproc check`
//! makes on what it accepts.
//!
//! Properties, besides never panicking:
//! - a rejected manifest has at least one error, and every error names a place
//!   that exists in the text (line and column inside it);
//! - an accepted manifest is a tree: the root first with no parent, every other node
//!   after its parent, named by its parent's path, and listed among its parent's deps;
//! - every grant the capability checks refuse can be pointed at in the text;
//! - a child's capabilities, when attenuation grants them, are within its parent's
//!   (`Capabilities::within`), the rule the whole model rests on.

use libfuzzer_sys::fuzz_target;
use nanoproc_caps::{Capabilities, Region, Violation, laundering};
use nanoproc_manifest::{Manifest, ManifestErrors, Node};
use std::path::Path;

/// The manifest is read "from" fuzz/fixtures, next to an (empty) `app.wasm`, so that
/// manifests naming it are valid. Parsing only checks that a component file exists;
/// it never reads one.
const MANIFEST: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/nanoproc.toml");

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Manifest::parse(Path::new(MANIFEST), text.to_owned()) {
        Err(ManifestErrors(errors)) => {
            assert!(!errors.is_empty(), "a manifest refused with no error");
            for error in &errors {
                let location = error
                    .location
                    .as_ref()
                    .unwrap_or_else(|| panic!("an error without a location: {error}"));
                assert_inside(text, location.line, location.column);
            }
        }
        Ok(manifest) => {
            assert_tree(&manifest);
            check_capabilities(&manifest, text);
        }
    }
});

/// Line and column (1-based, the column in characters) lie in `text`, or just past
/// the end of a line.
fn assert_inside(text: &str, line: usize, column: usize) {
    let lines: Vec<&str> = text.split('\n').collect();
    assert!(
        (1..=lines.len()).contains(&line),
        "line {line} of a {}-line text",
        lines.len()
    );
    let width = lines[line - 1].chars().count();
    assert!(
        (1..=width + 1).contains(&column),
        "column {column} of line {line}, {width} characters long"
    );
}

fn assert_tree(manifest: &Manifest) {
    let nodes = &manifest.nodes;
    assert!(!nodes.is_empty(), "an accepted manifest has no root");
    assert!(nodes[0].parent.is_none(), "the root has a parent");
    for (i, node) in nodes.iter().enumerate().skip(1) {
        let parent = node
            .parent
            .unwrap_or_else(|| panic!("{} is not the root but has no parent", node.path));
        assert!(parent < i, "{} comes before its parent", node.path);
        assert_eq!(node.path, format!("{}/{}", nodes[parent].path, node.name));
        assert!(
            nodes[parent].deps.iter().any(|d| d.child == i),
            "{} is not among its parent's deps",
            node.path
        );
    }
    for (i, node) in nodes.iter().enumerate() {
        for dep in &node.deps {
            let child = nodes.get(dep.child).expect("a dep points past the nodes");
            assert_eq!(
                child.parent,
                Some(i),
                "{} lists a dep that is not its child",
                node.path
            );
        }
    }
    let mut names: Vec<&str> = nodes.iter().map(|n| n.name.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), nodes.len(), "a nanoprocess appears twice");
}

/// What `check` does with the grants: the root's from the user, every child's
/// attenuated from its parent's, then the laundering check over all directories.
fn check_capabilities(manifest: &Manifest, text: &str) {
    let nodes = &manifest.nodes;
    let mut caps: Vec<Option<Capabilities>> = Vec::with_capacity(nodes.len());
    for node in nodes {
        let held = match node.parent {
            None => Capabilities::for_root(&node.grants, |_| None),
            Some(parent) => match &caps[parent] {
                Some(parent_caps) => {
                    let child = parent_caps.attenuate(&node.grants);
                    if let Ok(child) = &child {
                        assert!(
                            child.within(parent_caps),
                            "{}: attenuation granted more than the parent holds",
                            node.path
                        );
                    }
                    child
                }
                None => {
                    caps.push(None);
                    continue;
                }
            },
        };
        match held {
            Ok(held) => {
                let _ = held.summary_lines();
                caps.push(Some(held));
            }
            Err(violations) => {
                assert_located(manifest, text, node, &violations);
                caps.push(None);
            }
        }
    }
    let regions: Vec<Region<'_>> = caps
        .iter()
        .enumerate()
        .filter_map(|(owner, held)| Some((owner, held.as_ref()?)))
        .flat_map(|(owner, held)| {
            held.fs.iter().enumerate().map(move |(dir, d)| Region {
                owner,
                dir,
                host: &d.host,
                rights: d.rights,
            })
        })
        .collect();
    for found in laundering(&regions) {
        assert!(found.outer < regions.len() && found.inner < regions.len());
        assert_ne!(found.outer, found.inner);
    }
}

/// Every refused grant can be shown to the user at its line.
fn assert_located(manifest: &Manifest, text: &str, node: &Node, violations: &[Violation]) {
    assert!(
        !violations.is_empty(),
        "{}: refused with no violation",
        node.path
    );
    for v in violations {
        let span = v
            .span
            .clone()
            .or_else(|| node.grants_span.clone())
            .unwrap_or_else(|| panic!("{}: {v} points nowhere in the manifest", node.path));
        let location = manifest
            .locate(&span)
            .expect("a parsed manifest keeps its text");
        assert_inside(text, location.line, location.column);
    }
}
