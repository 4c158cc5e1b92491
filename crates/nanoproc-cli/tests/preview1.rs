//! WASI preview 1 programs, which nanoproc runs through wasmtime's component
//! adapter (the `wasi-preview1-component-adapter-provider` 50.0.1 command
//! adapter): each known difference from wasmtime's own preview 1, pinned as it
//! is, with what nanoproc's report says about it (docs/preview1.md, which gives
//! wasmtime's own answers beside these).
//!
//! The programs are built from `guests/foreign/` by `xtask::foreign_guest`:
//! `c-p1probe` (C, Debian's clang and wasi-libc: raw preview 1 calls, one probe
//! per first argument) and AssemblyScript programs (`as-*`, asc with its WASI
//! shim, installed with npm under `target/foreign-tools/as` when missing), each
//! also built exporting a `cabi_realloc`.

use crate::common;
use common::*;
use std::time::Duration;
use xtask::foreign_guest;

/// Every run here is a small program: a minute covers a cold compile.
const LIMIT: Duration = Duration::from_secs(60);

/// `nanoproc run FLAGS... FILE -- ARGS...`, bounded in time.
fn run_p1(flags: &[&str], guest: &str, args: &[&str]) -> Run {
    let file = foreign_guest(guest).display().to_string();
    let mut all: Vec<&str> = vec!["run"];
    all.extend_from_slice(flags);
    all.push(&file);
    all.push("--");
    all.extend_from_slice(args);
    nanoproc_within(LIMIT, &all).0
}

/// The lines of stdout, for comparing a probe's answers whole.
fn lines(run: &Run) -> Vec<&str> {
    run.stdout.lines().filter(|l| !l.is_empty()).collect()
}

/// The number a line `PREFIX N` ends with.
fn count_after(run: &Run, prefix: &str) -> u64 {
    run.stdout
        .lines()
        .find_map(|l| l.strip_prefix(prefix))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no `{prefix}` line: {run:?}"))
}

/// What nanoproc says of a trap caused by the adapter's memory being taken by
/// the module's heap.
fn says_the_heap_took_the_adapters_memory(run: &Run, function: &str) {
    for said in [
        &format!("in wasmtime's WASI preview 1 adapter, in `{function}`") as &str,
        "the module exports no `cabi_realloc`",
        "two 64 KiB pages it adds with memory.grow",
        "AssemblyScript's; malloc of a wasi-libc older than 2023, such as Debian 12's",
        "export a `cabi_realloc` backed by the module's allocator",
    ] {
        assert!(run.stderr.contains(said), "no {said:?} in {run:?}");
    }
}

#[test]
fn an_assemblyscript_program_reading_its_arguments_or_environment_traps_at_start() {
    // Given arguments, an environment variable, or neither: the program name is
    // always an argument, and reading the list is what traps.
    for (flags, args) in [
        (&[][..], &["a", "b"][..]),
        (&["--env", "X=1"][..], &[][..]),
        (&[][..], &[][..]),
    ] {
        let run = run_p1(flags, "as-echo", args);
        assert_eq!(run.code, 134, "{run:?}");
        assert_eq!(run.stdout, "", "it traps before printing anything");
        // The adapter's own reason, on the guest's stderr: the magic number at the
        // end of its state page is gone.
        assert!(
            run.stderr
                .starts_with("assertion failed at adapter line 2858"),
            "{run:?}"
        );
        says_the_heap_took_the_adapters_memory(&run, "args_get");
    }
}

#[test]
fn the_same_program_exporting_cabi_realloc_prints_its_arguments_and_environment() {
    let run = run_p1(&["--env", "X=1"], "as-echo-realloc", &["a", "b"]);
    assert_eq!(run.code, 0, "{run:?}");
    let printed = lines(&run);
    assert_eq!(printed.len(), 5, "{run:?}");
    assert_eq!(printed[0], "argc=3");
    assert!(printed[1].starts_with("arg[0]=as-echo-realloc"), "{run:?}");
    assert_eq!(printed[2..], ["arg[1]=a", "arg[2]=b", "X=1"]);
}

#[test]
fn assemblyscripts_heap_holds_the_adapters_stack_and_is_changed_without_a_trap() {
    // The adapter grew one page for its stack before `_start` (2 pages where the
    // module declares 1); the heap took it, and one `console.log` changed bytes of
    // a block the program owns. Natively: 1 page, 0 bytes.
    let run = run_p1(&[], "as-heap", &[]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("pages at start=2\n"), "{run:?}");
    let changed = count_after(&run, "bytes changed by one fd_write=");
    assert!(changed > 0, "{run:?}");

    let run = run_probe(&[], "as-heap-realloc", &[]);
    assert_eq!(count_after(&run, "bytes changed by one fd_write="), 0);
}

#[test]
fn a_c_heap_from_debians_wasi_libc_writes_over_the_adapters_state() {
    // wasi-libc before January 2023 (Debian 12 has 0.0~git20220510) takes all
    // memory below memory.size() for malloc at its first use, after the adapter
    // grew its pages: a 300 KB block filled with one byte covers the adapter's
    // state, and the next call fails the adapter's check of its first word.
    let run = run_p1(&[], "c-p1probe", &["heap"]);
    assert_eq!(run.code, 134, "{run:?}");
    assert!(
        run.stderr
            .starts_with("assertion failed at adapter line 2857"),
        "{run:?}"
    );
    says_the_heap_took_the_adapters_memory(&run, "fd_write");

    // Without stderr, the adapter's line is captured and reported with the trap.
    let run = run_p1(&["--no-stdio"], "c-p1probe", &["heap"]);
    assert_eq!(run.code, 134, "{run:?}");
    assert!(
        run.stderr
            .contains("[its stderr: assertion failed at adapter line 2857]"),
        "{run:?}"
    );

    // With a `cabi_realloc`, the adapter's memory comes from malloc.
    let run = run_probe(&[], "c-p1probe-realloc", &["heap"]);
    assert_eq!(lines(&run), ["bytes changed by one fd_write: 0"]);
}

/// A probe that must end well.
fn run_probe(flags: &[&str], guest: &str, args: &[&str]) -> Run {
    let run = run_p1(flags, guest, args);
    assert_eq!(run.code, 0, "{run:?}");
    run
}

#[test]
fn a_write_of_no_iovecs_to_a_descriptor_that_is_not_open_succeeds() {
    // The adapter answers a write of no iovecs before it looks the descriptor up;
    // wasmtime's own preview 1 answers badf (8) to all of these. A write of one
    // empty iovec is badf through the adapter too.
    let scene = Scene::new();
    let dir = scene.mkdir("data").display().to_string();
    let run = run_probe(
        &["--dir", &format!("{dir}::/data")],
        "c-p1probe",
        &["fdwrite"],
    );
    assert_eq!(
        lines(&run),
        [
            "fd_write(99, no iovecs): errno=0 nwritten=0",
            "fd_write(99, one empty iovec): errno=8 nwritten=12345",
            "fd_write(99, 1 byte): errno=8",
            "fd_close: ok errno=0",
            "fd_write(closed, no iovecs): errno=0 nwritten=0",
            "fd_write(closed, one empty iovec): errno=8 nwritten=12345",
            "fd_write(closed, 1 byte): errno=8",
        ]
    );
}

#[test]
fn proc_exit_reaches_the_shell_as_0_or_1_and_the_report_says_the_adapter_chose_1() {
    let run = run_p1(&[], "c-p1probe", &["exit", "0"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.stderr, "");
    // wasmtime's own preview 1 passes 3, 42 and 125 on; 126 and above trap there.
    for status in ["1", "3", "42", "125", "255"] {
        let run = run_p1(&[], "c-p1probe", &["exit", status]);
        assert_eq!(run.code, 1, "proc_exit({status}): {run:?}");
        assert!(
            run.stderr.contains(
                "nanoproc: the run ended with status 1: the WASI preview 1 program called `proc_exit` with a status other than 0, which wasmtime's component adapter (through which nanoproc runs preview 1 modules) passes on as 1, whatever the status was"
            ),
            "{run:?}"
        );
        assert!(!run.stderr.contains("its own status"), "{run:?}");
    }
}

#[test]
fn functions_the_adapter_does_not_implement_trap_and_the_report_names_them() {
    // wasmtime's own preview 1: notsock (57) for the three socket calls on stdin
    // or stdout, notsup (58) for proc_raise.
    for (probe, function, line) in [
        ("accept", "sock_accept", 2421),
        ("recv", "sock_recv", 2436),
        ("send", "sock_send", 2450),
        ("raise", "proc_raise", 2376),
    ] {
        let run = run_p1(&[], "c-p1probe", &[probe]);
        assert_eq!(run.code, 134, "{run:?}");
        assert_eq!(run.stdout, "", "{run:?}");
        assert!(
            run.stderr
                .starts_with(&format!("unreachable executed at adapter line {line}\n")),
            "{run:?}"
        );
        assert!(
            run.stderr.contains(&format!(
                "wasm `unreachable` instruction executed in `{function}`, which wasmtime's WASI preview 1 adapter does not implement: it traps where wasmtime's own preview 1 returns an error code"
            )),
            "{run:?}"
        );
    }
}

#[test]
fn arguments_or_environment_beyond_the_adapters_buffer_trap_and_the_report_says_which() {
    // The adapter receives each list into a scratch area of about 59 KB, which
    // holds 8 bytes per argument (16 per environment variable) and the longest
    // one, not the whole list (measured: 3 arguments, the longest of 58,992
    // bytes, run; 58,993 trap; 7,372 arguments of up to 26 bytes run, 7,376
    // trap). wasmtime's own preview 1 has no such limit.
    let part = "a".repeat(20_000);
    let parts = [part.as_str(); 5];
    let mut args = vec!["args"];
    args.extend(parts);
    let run = run_probe(&[], "c-p1probe", &args);
    assert!(run.stdout.contains("argc=7 argument bytes=100"), "{run:?}");
    let vars: Vec<String> = (0..3)
        .map(|i| format!("V{i}={}", "v".repeat(40_000)))
        .collect();
    let flags: Vec<&str> = vars.iter().flat_map(|v| ["--env", v.as_str()]).collect();
    let run = run_probe(&flags, "c-p1probe", &["args"]);
    assert_eq!(run.code, 0, "{run:?}");

    let too_long = "a".repeat(70_000);
    let many = vec!["x"; 8_000];
    for args in [
        vec!["args", too_long.as_str()],
        [&["args"][..], &many].concat(),
    ] {
        let run = run_p1(&[], "c-p1probe", &args);
        assert_eq!(run.code, 134, "{run:?}");
        assert!(
            run.stderr.contains(
                "wasm trap: cannot leave component instance in wasmtime's WASI preview 1 adapter, in `args_sizes_get`: its arguments did not fit in the adapter's fixed buffer of about 59 KB, which must hold 8 bytes per argument (16 per environment variable) and the longest one"
            ),
            "{run:?}"
        );
    }
    let env = format!("BIG={too_long}");
    let run = run_p1(&["--env", &env], "c-p1probe", &["args"]);
    assert_eq!(run.code, 134, "{run:?}");
    assert!(
        run.stderr.contains(
            "in wasmtime's WASI preview 1 adapter, in `environ_sizes_get`: its environment variables did not fit in the adapter's fixed buffer"
        ),
        "{run:?}"
    );
}

#[test]
fn more_than_125_directories_are_refused_before_running_and_125_run() {
    let scene = Scene::new();
    let flags = |count: usize| -> Vec<String> {
        (0..count)
            .flat_map(|i| {
                let dir = scene.mkdir(&format!("d{i}")).display().to_string();
                ["--dir-ro".to_string(), format!("{dir}::/d{i}")]
            })
            .collect()
    };
    let many = flags(125);
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    let run = run_probe(&many, "c-p1probe", &["prestat"]);
    let printed = lines(&run);
    assert_eq!(printed.len(), 125, "{run:?}");
    assert_eq!(printed[0], "preopen fd 3: /d0 (errno=0)");
    assert_eq!(printed[124], "preopen fd 127: /d124 (errno=0)");

    let too_many = flags(126);
    let too_many: Vec<&str> = too_many.iter().map(String::as_str).collect();
    let run = run_p1(&too_many, "c-p1probe", &["prestat"]);
    assert_eq!(run.code, 125, "{run:?}");
    assert!(
        run.stderr.contains(
            "is a WASI preview 1 module, run through wasmtime's component adapter, which holds at most 125 preopened directories (128 descriptors, three of them stdin, stdout and stderr); it is granted 126"
        ),
        "{run:?}"
    );
    assert!(
        run.stderr.contains("help: grant at most 125 directories"),
        "{run:?}"
    );
}

#[test]
fn the_adapter_holds_128_descriptors_and_refuses_more_with_nomem() {
    // 3 for stdio, 1 preopened directory, 124 files; wasmtime's own preview 1
    // opened all 200.
    let scene = Scene::new();
    let dir = scene.mkdir("data").display().to_string();
    let run = run_probe(
        &["--dir", &format!("{dir}::/data")],
        "c-p1probe",
        &["open", "200"],
    );
    assert_eq!(lines(&run), ["opened 124 of 200, then errno=48"]);
}

#[test]
fn a_start_function_calling_preview_1_cannot_start_and_the_report_says_why() {
    // A wasm start function runs when the module is instantiated, before the
    // adapter is: wasmtime's own preview 1 serves the call and prints the line.
    let scene = Scene::new();
    let wasm = wat::parse_str(
        r#"(module
          (import "wasi_snapshot_preview1" "fd_write"
            (func $fd_write (param i32 i32 i32 i32) (result i32)))
          (memory (export "memory") 1)
          (data (i32.const 16) "from the start function\n")
          (func $init
            (i32.store (i32.const 0) (i32.const 16))
            (i32.store (i32.const 4) (i32.const 24))
            (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8))))
          (start $init)
          (func (export "_start")))"#,
    )
    .unwrap();
    let file = scene.path("start.wasm");
    std::fs::write(&file, wasm).unwrap();
    let (run, _) = nanoproc_within(LIMIT, &["run", &file.display().to_string()]);
    assert_eq!(run.code, 126, "{run:?}");
    assert_eq!(run.stdout, "");
    assert!(
        run.stderr.contains(
            "cannot start nanoprocess `start`: wasm trap: uninitialized element: the module called `fd_write` from its start function, before wasmtime's WASI preview 1 adapter, which serves its preview 1 calls, was instantiated"
        ),
        "{run:?}"
    );
}

#[test]
fn rights_are_all_reported_but_write_and_the_rest_answers_as_wasmtimes_own_preview_1() {
    // Both ignore the rights a program asks for but fd_write's (a file opened
    // for reading only); the adapter reports every other bit of the 64 set,
    // wasmtime's own preview 1 the 30 defined ones (000000003fffffbf).
    let scene = Scene::new();
    let data = scene.mkdir("data").display().to_string();
    let ro = scene.mkdir("ro").display().to_string();
    let dirs = [
        "--dir",
        &format!("{data}::/data"),
        "--dir-ro",
        &format!("{ro}::/ro"),
    ]
    .map(String::from);
    let dirs: Vec<&str> = dirs.iter().map(String::as_str).collect();
    let run = run_probe(&dirs, "c-p1probe", &["rights"]);
    assert_eq!(
        lines(&run),
        [
            "preopen rights: errno=0 base=0000000007b7fe00 inheriting=000000000ff7ffff",
            "stdout rights: errno=0 base=0000000000000040",
            "create rights.txt: ok errno=0",
            "path_open(fd_read only): ok errno=0",
            "its rights: errno=0 base=ffffffffffffffbf",
            "fd_write on it: err errno=8",
            "fd_seek on it (right not asked for): ok errno=0",
            "path_open(no rights): ok errno=0",
            "fd_read on it: ok errno=0",
            "fd_fdstat_set_rights(fd_read only): err errno=58",
        ]
    );

    // The same answers as wasmtime's own preview 1, checked with it.
    let run = run_probe(&dirs, "c-p1probe", &["prestat"]);
    assert_eq!(
        lines(&run),
        [
            "preopen fd 3: /data (errno=0)",
            "preopen fd 4: /ro (errno=0)"
        ]
    );
    let run = run_probe(&["--clocks"], "c-p1probe", &["poll"]);
    assert_eq!(
        lines(&run),
        [
            "poll_oneoff(no subscriptions): errno=28",
            "poll_oneoff(monotonic, 1 ms): errno=0 nevents=1",
            "poll_oneoff(fd_read of fd 99): errno=8",
        ]
    );
    let run = run_probe(&["--clocks"], "c-p1probe", &["clocks"]);
    assert_eq!(
        lines(&run),
        [
            "clock_time_get(2): errno=8",
            "clock_res_get(2): errno=8",
            "clock_time_get(3): errno=8",
            "clock_res_get(3): errno=8",
        ]
    );
    let fresh = scene.mkdir("fresh").display().to_string();
    let run = run_probe(
        &["--dir", &format!("{fresh}::/fresh")],
        "c-p1probe",
        &["misc"],
    );
    let mut printed = lines(&run);
    // The directory's entries in the host's order.
    let listed = printed.pop().expect("a last line");
    let mut names: Vec<&str> = listed
        .strip_prefix("fd_readdir: ")
        .unwrap_or_else(|| panic!("{run:?}"))
        .split(' ')
        .collect();
    names.sort();
    assert_eq!(names, [".", "..", "alloc.txt", "link"]);
    assert_eq!(
        printed,
        [
            "fd_seek(stdout): err errno=70",
            "fd_tell(stdout): err errno=70",
            "fd_fdstat_set_flags(stdout, append): err errno=8",
            "fd_renumber(1, 50): err errno=8",
            "sock_shutdown(1): err errno=57",
            "fd_allocate(file): err errno=58",
            "path_symlink: ok errno=0",
            "path_readlink(40-byte target, 10-byte buffer): errno=0 used=10",
        ]
    );
}
