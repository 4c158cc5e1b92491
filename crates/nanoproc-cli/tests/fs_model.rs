//! A model-based test of the filesystem guard (`nanoproc-runtime`'s
//! `wasi/filesystem.rs`), with the real binary and a real guest.
//!
//! The per-right tests in `rights.rs` each check one operation under one grant. This
//! one checks that the rules compose: proptest picks rights for two granted
//! directories and a sequence of file operations, the `probe_cmd` guest runs them
//! through std (as ordinary guest code would), and a small reference model predicts
//! each operation's outcome (succeeded with this answer, refused by the guard, or
//! failed for an ordinary reason such as a missing file), the number of refusals in
//! the end-of-run account, and the host directories afterwards, hard links included.
//!
//! The model states the rules independently of the runtime's code:
//!
//! * each std call needs the rights of the WASI calls it makes (see [`Model::apply`]);
//!   a rename needs `rename` on both directories and `remove` on the destination
//!   (it replaces whatever had the new name);
//! * a hard link or a rename also needs the source directory to hold every right
//!   the destination holds: no right is gained through an alias;
//! * a refusal changes nothing and is counted once in the account;
//! * a directory granted no rights at all is not granted, so paths in it name nothing.

use crate::common;
use common::*;

use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use std::collections::BTreeMap;
use std::fmt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// A set of directory rights: one bit per right, in [`RIGHT_NAMES`] order.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Rights(u8);

const READ: u8 = 1 << 0;
const WRITE: u8 = 1 << 1;
const CREATE: u8 = 1 << 2;
const REMOVE: u8 = 1 << 3;
const RENAME: u8 = 1 << 4;
const LIST: u8 = 1 << 5;
const METADATA: u8 = 1 << 6;

const RIGHT_NAMES: [&str; 7] = [
    "read", "write", "create", "remove", "rename", "list", "metadata",
];

const NONE: Rights = Rights(0);
const READ_ONLY: Rights = Rights(READ | LIST | METADATA);
const READ_WRITE: Rights = Rights(0x7f);

impl Rights {
    fn has(self, bits: u8) -> bool {
        self.0 & bits == bits
    }

    fn names(self) -> Vec<&'static str> {
        (0..7)
            .filter(|i| self.0 & (1 << i) != 0)
            .map(|i| RIGHT_NAMES[i])
            .collect()
    }

    /// How the manifest spells these rights, in one of the accepted forms: the
    /// shorthands, names joined by `+` or `,`, or a TOML list.
    fn spelled(self, style: u8) -> String {
        match (self, style % 3) {
            (READ_ONLY, 0) => "\"read-only\"".into(),
            (READ_WRITE, 0) => "\"read-write\"".into(),
            (_, 0) => format!("\"{}\"", self.names().join("+")),
            (_, 1) => format!("\"{}\"", self.names().join(",")),
            _ => format!("{:?}", self.names()),
        }
    }
}

impl fmt::Debug for Rights {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if *self == NONE {
            f.write_str("none")
        } else {
            f.write_str(&self.names().join("+"))
        }
    }
}

/// The two granted directories: host directory (below the scene) and guest path.
const DIRS: [(&str, &str); 2] = [("A", "/a"), ("B", "/b")];

/// File names the operations use. The initial files are some of the first three, so
/// the last one is always new at first: writes cover both creating and overwriting.
const FILES: usize = 4;
const INITIAL_FILES: usize = 3;

/// Directory names `mkdir` uses (never file names, so a file and a directory never
/// compete for one name).
const SUBDIRS: usize = 2;

/// One operation of the `probe_cmd` guest. `usize`s are indices into [`DIRS`] and
/// [`FILES`] (or [`SUBDIRS`] for `Mkdir`).
#[derive(Clone, Copy, Debug)]
enum Op {
    Read(usize, usize),
    /// `std::fs::write`: creates or truncates.
    Write(usize, usize),
    /// Opens with append and create.
    Append(usize, usize),
    Remove(usize, usize),
    Mkdir(usize, usize),
    Ls(usize),
    Stat(usize, usize),
    Rename((usize, usize), (usize, usize)),
    Hardlink((usize, usize), (usize, usize)),
}

fn path(d: usize, f: usize) -> String {
    format!("{}/f{f}", DIRS[d].1)
}

impl Op {
    /// The guest's argument for this operation, the `i`th of its run (which makes
    /// the text a write leaves behind tell which write it was).
    fn arg(self, i: usize) -> String {
        match self {
            Op::Read(d, f) => format!("read:{}", path(d, f)),
            Op::Write(d, f) => format!("write:{}={}", path(d, f), write_text(i)),
            Op::Append(d, f) => format!("append:{}={}", path(d, f), append_text(i)),
            Op::Remove(d, f) => format!("rm:{}", path(d, f)),
            Op::Mkdir(d, k) => format!("mkdir:{}/d{k}", DIRS[d].1),
            Op::Ls(d) => format!("ls:{}", DIRS[d].1),
            Op::Stat(d, f) => format!("stat:{}", path(d, f)),
            Op::Rename((d1, f1), (d2, f2)) => format!("rename:{}={}", path(d1, f1), path(d2, f2)),
            Op::Hardlink((d1, f1), (d2, f2)) => {
                format!("hardlink:{}={}", path(d1, f1), path(d2, f2))
            }
        }
    }
}

fn write_text(i: usize) -> String {
    format!("w{i}")
}

fn append_text(i: usize) -> String {
    format!("+{i}")
}

/// What the model expects of one operation.
#[derive(Debug, PartialEq)]
enum Expect {
    /// `ok: ` and this.
    Ok(String),
    /// Refused by the guard: `not-permitted`, and one entry in the account.
    Refused,
    /// Allowed (or never asked), but it failed: any other error.
    Failed,
}

/// A name in a directory: a file (an index into [`Model::data`], shared by hard
/// links) or an (empty) directory.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Entry {
    File(usize),
    Dir,
}

/// What the two directories should hold, and what the rules allow.
struct Model {
    rights: [Rights; 2],
    names: [BTreeMap<String, Entry>; 2],
    /// The contents of each file (inode), by index.
    data: Vec<String>,
    /// Operations refused so far.
    refused: usize,
}

impl Model {
    fn new(rights: [Rights; 2], initial: [u8; 2]) -> Self {
        let mut model = Model {
            rights,
            names: Default::default(),
            data: Vec::new(),
            refused: 0,
        };
        for (d, files) in initial.into_iter().enumerate() {
            for f in 0..INITIAL_FILES {
                if files & (1 << f) != 0 {
                    let text = initial_text(d, f);
                    model.insert_file(d, f, text);
                }
            }
        }
        model
    }

    fn insert_file(&mut self, d: usize, f: usize, text: String) {
        self.data.push(text);
        self.names[d].insert(format!("f{f}"), Entry::File(self.data.len() - 1));
    }

    fn file(&self, d: usize, f: usize) -> Option<usize> {
        match self.names[d].get(&format!("f{f}")) {
            Some(Entry::File(n)) => Some(*n),
            _ => None,
        }
    }

    /// Whether an operation on `dirs` gets past the guard: `Some` (what it answers
    /// instead) if not.
    fn gate(&mut self, dirs: &[usize], allowed: bool) -> Option<Expect> {
        if dirs.iter().any(|&d| self.rights[d] == NONE) {
            // Not granted, so not preopened: wasi-libc finds no directory for the
            // path and fails before anything reaches the host (`ENOENT`).
            return Some(Expect::Failed);
        }
        if allowed {
            None
        } else {
            self.refused += 1;
            Some(Expect::Refused)
        }
    }

    /// The alias rule: what is moved or linked from `from` into `to` gains
    /// nothing there, so `to` may grant nothing that `from` does not.
    fn alias_allowed(&self, from: usize, to: usize) -> bool {
        self.rights[to].0 & !self.rights[from].0 == 0
    }

    /// Runs `op` (the `i`th) on the model; returns what the guest should answer.
    ///
    /// The rights each one needs are those of the WASI calls std makes for it
    /// (wasm32-wasip2, through wasi-libc), checked by experiment:
    fn apply(&mut self, op: Op, i: usize) -> Expect {
        let r = self.rights;
        match op {
            // `fs::read`: `open-at` for reading (read), then `stat` for a size hint
            // (read or metadata) and `read`.
            Op::Read(d, f) => {
                if let Some(e) = self.gate(&[d], r[d].has(READ)) {
                    return e;
                }
                match self.file(d, f) {
                    Some(n) => Expect::Ok(self.data[n].clone()),
                    None => Expect::Failed,
                }
            }
            // `fs::write` opens with create + truncate + write: it needs create and
            // write even when the file exists. Append opens with create + write.
            Op::Write(d, f) | Op::Append(d, f) => {
                if let Some(e) = self.gate(&[d], r[d].has(WRITE | CREATE)) {
                    return e;
                }
                let (text, done) = match op {
                    Op::Write(..) => (write_text(i), "written"),
                    _ => (append_text(i), "appended"),
                };
                let answer = format!("{done} {} bytes", text.len());
                match (self.file(d, f), op) {
                    (Some(n), Op::Write(..)) => self.data[n] = text,
                    (Some(n), _) => self.data[n].push_str(&text),
                    (None, _) => self.insert_file(d, f, text),
                }
                Expect::Ok(answer)
            }
            // `unlink-file-at`.
            Op::Remove(d, f) => {
                if let Some(e) = self.gate(&[d], r[d].has(REMOVE)) {
                    return e;
                }
                match self.names[d].remove(&format!("f{f}")) {
                    Some(_) => Expect::Ok("removed".into()),
                    None => Expect::Failed,
                }
            }
            // `create-directory-at`.
            Op::Mkdir(d, k) => {
                if let Some(e) = self.gate(&[d], r[d].has(CREATE)) {
                    return e;
                }
                let name = format!("d{k}");
                if self.names[d].contains_key(&name) {
                    return Expect::Failed;
                }
                self.names[d].insert(name, Entry::Dir);
                Expect::Ok("created".into())
            }
            // `open-at` of the directory itself (no right), `read-directory` (list),
            // and `metadata-hash-at` per entry for its inode number (list or
            // metadata).
            Op::Ls(d) => {
                if let Some(e) = self.gate(&[d], r[d].has(LIST)) {
                    return e;
                }
                let names: Vec<&str> = self.names[d].keys().map(String::as_str).collect();
                Expect::Ok(names.join(","))
            }
            // `fs::symlink_metadata`: wasi-libc asks `metadata-hash-at` (list or
            // metadata) first, then `stat-at` (metadata). So metadata alone is
            // enough, and with list but not metadata a missing file fails as missing
            // (the hash is allowed and finds nothing) while an existing one is
            // refused at `stat-at`. (List reveals which names exist anyway.)
            Op::Stat(d, f) => {
                let file = self.file(d, f);
                let allowed = match file {
                    Some(_) => r[d].has(METADATA),
                    None => r[d].0 & (LIST | METADATA) != 0,
                };
                if let Some(e) = self.gate(&[d], allowed) {
                    return e;
                }
                match file {
                    Some(n) => Expect::Ok(format!("file len {}", self.data[n].len())),
                    None => Expect::Failed,
                }
            }
            // `rename-at`: rename on both directories, remove on the destination
            // (whether or not the new name exists: deciding by a lookup would race),
            // and the alias rule.
            Op::Rename((d1, f1), (d2, f2)) => {
                let allowed =
                    r[d1].has(RENAME) && r[d2].has(RENAME | REMOVE) && self.alias_allowed(d1, d2);
                if let Some(e) = self.gate(&[d1, d2], allowed) {
                    return e;
                }
                let Some(n) = self.file(d1, f1) else {
                    return Expect::Failed;
                };
                // POSIX: renaming a name onto another name of the same file (itself,
                // or a hard link of it) does nothing and succeeds.
                if self.file(d2, f2) != Some(n) {
                    self.names[d1].remove(&format!("f{f1}"));
                    self.names[d2].insert(format!("f{f2}"), Entry::File(n));
                }
                Expect::Ok("renamed".into())
            }
            // `link-at`: read and write on the source directory (only a file one
            // could write anyway gets another name), create on the destination,
            // and the alias rule. An existing destination is not replaced.
            Op::Hardlink((d1, f1), (d2, f2)) => {
                let allowed =
                    r[d1].has(READ | WRITE) && r[d2].has(CREATE) && self.alias_allowed(d1, d2);
                if let Some(e) = self.gate(&[d1, d2], allowed) {
                    return e;
                }
                let Some(n) = self.file(d1, f1) else {
                    return Expect::Failed;
                };
                if self.names[d2].contains_key(&format!("f{f2}")) {
                    return Expect::Failed;
                }
                self.names[d2].insert(format!("f{f2}"), Entry::File(n));
                Expect::Ok("linked".into())
            }
        }
    }
}

fn initial_text(d: usize, f: usize) -> String {
    format!("{}-f{f}", DIRS[d].0)
}

/// One generated case: rights and initial files of each directory, how the
/// manifest spells the rights, and the operations, in order.
#[derive(Clone)]
struct Case {
    rights: [Rights; 2],
    spelling: [u8; 2],
    /// Bit `f` set: `f{f}` exists at the start.
    initial: [u8; 2],
    ops: Vec<Op>,
}

impl Case {
    fn args(&self) -> Vec<String> {
        self.ops
            .iter()
            .enumerate()
            .map(|(i, op)| op.arg(i))
            .collect()
    }
}

/// What a failing case is reported as: the rights, the starting files and the
/// guest's arguments, ready to replay by hand.
impl fmt::Debug for Case {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let files = |d: usize| -> Vec<String> {
            (0..INITIAL_FILES)
                .filter(|i| self.initial[d] & (1 << i) != 0)
                .map(|i| format!("f{i}"))
                .collect()
        };
        f.debug_struct("Case")
            .field("a", &format_args!("{:?} {:?}", self.rights[0], files(0)))
            .field("b", &format_args!("{:?} {:?}", self.rights[1], files(1)))
            .field("spelling", &self.spelling)
            .field("args", &self.args())
            .finish()
    }
}

/// Rights, mostly granted bit by bit (each right more likely held than not, so that
/// operations are allowed often enough to change something), sometimes none or a
/// shorthand.
fn rights() -> impl Strategy<Value = Rights> {
    let bits = prop::collection::vec(prop::bool::weighted(0.7), 7).prop_map(|held| {
        Rights(
            held.iter()
                .enumerate()
                .filter(|(_, h)| **h)
                .fold(0, |acc, (i, _)| acc | (1 << i)),
        )
    });
    prop_oneof![
        8 => bits,
        1 => Just(NONE),
        1 => Just(READ_ONLY),
        1 => Just(READ_WRITE),
    ]
}

/// Rights for A and B. Independent rights rarely pass the alias rule, so one
/// directory is often made a superset of the other: then aliases from it may succeed.
fn rights_pair() -> impl Strategy<Value = [Rights; 2]> {
    prop_oneof![
        (rights(), rights()).prop_map(|(a, b)| [a, b]),
        (rights(), rights()).prop_map(|(a, b)| [Rights(a.0 | b.0), b]),
        (rights(), rights()).prop_map(|(a, b)| [a, Rights(a.0 | b.0)]),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    let dir = || 0..2usize;
    let file = || 0..FILES;
    let place = move || (dir(), file());
    prop_oneof![
        1 => (dir(), file()).prop_map(|(d, f)| Op::Read(d, f)),
        1 => (dir(), file()).prop_map(|(d, f)| Op::Write(d, f)),
        1 => (dir(), file()).prop_map(|(d, f)| Op::Append(d, f)),
        1 => (dir(), file()).prop_map(|(d, f)| Op::Remove(d, f)),
        1 => (dir(), 0..SUBDIRS).prop_map(|(d, k)| Op::Mkdir(d, k)),
        1 => dir().prop_map(Op::Ls),
        1 => (dir(), file()).prop_map(|(d, f)| Op::Stat(d, f)),
        // Each end in A or B: within a directory, A -> B and B -> A.
        2 => (place(), place()).prop_map(|(from, to)| Op::Rename(from, to)),
        2 => (place(), place()).prop_map(|(from, to)| Op::Hardlink(from, to)),
    ]
}

fn case() -> impl Strategy<Value = Case> {
    (
        rights_pair(),
        (0u8..3, 0u8..3),
        (0u8..8, 0u8..8),
        prop::collection::vec(op(), 1..12),
    )
        .prop_map(|(rights, spelling, initial, ops)| Case {
            rights,
            spelling: [spelling.0, spelling.1],
            initial: [initial.0, initial.1],
            ops,
        })
}

/// The manifest: `probe_cmd` as the root, granted each directory that has rights.
fn manifest(scene: &Scene, case: &Case) -> std::path::PathBuf {
    let grants: Vec<String> = (0..2)
        .filter(|&d| case.rights[d] != NONE)
        .map(|d| {
            format!(
                "  {{ host = \"{}\", guest = \"{}\", rights = {} }},\n",
                DIRS[d].0,
                DIRS[d].1,
                case.rights[d].spelled(case.spelling[d])
            )
        })
        .collect();
    scene.manifest(&format!(
        "[app]\nroot = \"cmd\"\n\n[nanoprocess.cmd]\ncomponent = \"{{probe_cmd}}\"\n\
         grants.stdout = true\ngrants.fs = [\n{}]\n",
        grants.concat()
    ))
}

/// A directory's entries on the host: file contents, `<dir>` for a directory.
fn host_entries(dir: &Path) -> BTreeMap<String, String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| {
            let entry = entry.unwrap();
            let name = entry.file_name().into_string().unwrap();
            let text = if entry.file_type().unwrap().is_dir() {
                "<dir>".to_string()
            } else {
                std::fs::read_to_string(entry.path()).unwrap()
            };
            (name, text)
        })
        .collect()
}

/// The refusals counted in the end-of-run account.
fn refusals(stderr: &str) -> usize {
    stderr
        .lines()
        .find_map(|l| {
            let rest = l.strip_prefix("nanoproc: ")?;
            let (n, what) = rest.split_once(' ')?;
            what.contains("refused").then(|| n.parse().ok())?
        })
        .unwrap_or(0)
}

fn check_case(case: &Case) -> Result<(), TestCaseError> {
    let scene = Scene::new();
    for (d, (host, _)) in DIRS.iter().enumerate() {
        scene.mkdir(host);
        for f in 0..INITIAL_FILES {
            if case.initial[d] & (1 << f) != 0 {
                scene.file(&format!("{host}/f{f}"), &initial_text(d, f));
            }
        }
    }
    let m = manifest(&scene, case).display().to_string();
    let args = case.args();
    let mut argv = vec!["run", m.as_str(), "--"];
    argv.extend(args.iter().map(String::as_str));
    let run = nanoproc(&argv);
    prop_assert_eq!(run.code, 0, "{:?}", run);

    let mut model = Model::new(case.rights, case.initial);
    // The guest answers one line per argument, in order (the same argument may
    // appear twice, so answers are matched by position, not by text).
    let lines: Vec<&str> = run.stdout.lines().collect();
    prop_assert_eq!(lines.len(), case.ops.len(), "{:?}", run);
    for (i, (op, line)) in case.ops.iter().zip(&lines).enumerate() {
        let arg = &args[i];
        let answer = line.strip_prefix(&format!("{arg} => ")).unwrap_or_else(|| {
            panic!("line {i} should answer {arg:?}: {line:?}\n{run:?}");
        });
        let expected = model.apply(*op, i);
        let matches = match &expected {
            Expect::Ok(detail) => answer == format!("ok: {detail}"),
            Expect::Refused => answer.starts_with("err: ") && answer.contains("not permitted"),
            Expect::Failed => answer.starts_with("err: ") && !answer.contains("not permitted"),
        };
        prop_assert!(
            matches,
            "op {} {:?}: the model expects {:?}, the guest answered {:?}\n{:?}",
            i,
            arg,
            expected,
            answer,
            run
        );
    }
    prop_assert_eq!(
        refusals(&run.stderr),
        model.refused,
        "refusals in the account\n{:?}",
        run
    );

    // The host directories: names and contents, then which names are one file.
    let mut inodes = Vec::new();
    for ((dir, _), names) in DIRS.iter().zip(&model.names) {
        let host = scene.path(dir);
        let expected: BTreeMap<String, String> = names
            .iter()
            .map(|(name, entry)| {
                let text = match entry {
                    Entry::File(n) => model.data[*n].clone(),
                    Entry::Dir => "<dir>".to_string(),
                };
                (name.clone(), text)
            })
            .collect();
        prop_assert_eq!(host_entries(&host), expected, "{} on the host", dir);
        for (name, entry) in names {
            if let Entry::File(n) = entry {
                let ino = std::fs::metadata(host.join(name)).unwrap().ino();
                inodes.push((format!("{dir}/{name}"), ino, *n));
            }
        }
    }
    for (a, host_a, model_a) in &inodes {
        for (b, host_b, model_b) in &inodes {
            prop_assert_eq!(
                host_a == host_b,
                model_a == model_b,
                "whether {} and {} are one file (hard links)",
                a,
                b
            );
        }
    }
    Ok(())
}

/// Cases to run: 24 by default (each starts the binary once), `PROPTEST_CASES` for
/// a longer search.
fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(24)
}

proptest! {
    // No regression files: a failing case is printed in full (see `Case`'s Debug)
    // and belongs in a deterministic test.
    #![proptest_config(ProptestConfig {
        cases: cases(),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn the_guard_agrees_with_the_model(case in case()) {
        check_case(&case)?;
    }
}

/// No right is gained through an alias: a file under a read-only grant can be
/// neither hard-linked nor renamed into a read-write one (where it could be
/// rewritten), and stays as it was. Holding `rename` is not enough either: a file
/// that may be moved but not written cannot be moved somewhere it may be written. The
/// same link from a read-write directory works, into a read-write directory or into
/// one that gives files no rights at all.
#[test]
fn a_read_only_file_gets_no_writable_alias() {
    let scene = Scene::new();
    scene.file("ro/keep.txt", "original");
    scene.file("mv/keep.txt", "movable, not writable");
    scene.mkdir("rw");
    scene.file("src/x.txt", "linkable");
    scene.mkdir("drop");
    let m = scene.manifest(
        r#"[app]
root = "cmd"

[nanoprocess.cmd]
component = "{probe_cmd}"
grants.stdout = true
grants.fs = [
  { host = "ro", guest = "/ro", rights = "read-only" },
  { host = "mv", guest = "/mv", rights = "read+list+metadata+rename" },
  { host = "rw", guest = "/rw", rights = "read-write" },
  { host = "src", guest = "/src", rights = "read-write" },
  { host = "drop", guest = "/drop", rights = ["create"] },
]
"#,
    );
    let before = [snapshot(&scene.path("ro")), snapshot(&scene.path("mv"))];
    let refused = [
        "hardlink:/ro/keep.txt=/rw/linked.txt",
        "rename:/ro/keep.txt=/rw/moved.txt",
        "hardlink:/mv/keep.txt=/rw/linked.txt",
        "rename:/mv/keep.txt=/rw/moved.txt",
    ];
    let allowed = [
        "write:/rw/linked.txt=rewritten",
        "read:/ro/keep.txt",
        "read:/mv/keep.txt",
        "hardlink:/src/x.txt=/rw/x.txt",
        "hardlink:/src/x.txt=/drop/x.txt",
    ];
    let run = run_manifest(&m, &[&refused[..], &allowed[..]].concat());
    assert_eq!(run.code, 0, "{run:?}");
    for op in refused {
        assert!(
            run.assert_err(op).contains("Operation not permitted"),
            "{op}: {run:?}"
        );
    }
    for op in allowed {
        run.assert_ok(op);
    }
    assert_eq!(run.answer("read:/ro/keep.txt"), "ok: original");
    assert_eq!(run.answer("read:/mv/keep.txt"), "ok: movable, not writable");

    // On the host: both originals untouched, with no other name; the write made a
    // new file; the allowed links are links.
    assert_eq!(
        [snapshot(&scene.path("ro")), snapshot(&scene.path("mv"))],
        before
    );
    for original in ["ro/keep.txt", "mv/keep.txt"] {
        let meta = std::fs::metadata(scene.path(original)).unwrap();
        assert_eq!(meta.nlink(), 1, "{original} has no other name");
    }
    assert!(!scene.path("rw/moved.txt").exists());
    assert_eq!(
        std::fs::read_to_string(scene.path("rw/linked.txt")).unwrap(),
        "rewritten"
    );
    let x = std::fs::metadata(scene.path("src/x.txt")).unwrap();
    assert_eq!(x.nlink(), 3, "src/x.txt, rw/x.txt and drop/x.txt");

    // Each refusal is in the account. A link needs `write` on its source and a
    // rename needs `rename`, which /ro lacks: refused before the alias rule. A
    // rename from /mv is refused for what the file would gain.
    let account: Vec<&str> = run.stderr.lines().collect();
    let refusal = |operation: &str, from: &str, why: &str| {
        account.iter().any(|l| {
            l.contains(&format!("(wasi:filesystem/types.{operation})"))
                && l.contains(from)
                && l.contains(why)
        })
    };
    assert!(
        refusal("link-at", "/ro/keep.txt", "needs read+write"),
        "{run:?}"
    );
    assert!(
        refusal("rename-at", "/ro/keep.txt", "needs rename"),
        "{run:?}"
    );
    assert!(
        refusal("link-at", "/mv/keep.txt", "needs read+write"),
        "{run:?}"
    );
    assert!(
        refusal("rename-at", "/mv/keep.txt", "would gain"),
        "{run:?}"
    );
}
