//! A command line that helps: manifest errors shown at their line, `check` of a
//! single component and `--json`, the guest's arguments after the target, the
//! spinner for long compiles, `-v` logging, shell completions and the man page.

use crate::common;
use common::*;
use std::process::Command;

// ---------------------------------------------------------------------------
// The guest's arguments

#[test]
fn everything_after_the_target_is_the_guests() {
    let cmd = cmd();
    // Flags the guest has, and nanoproc has not, go to the guest.
    let run = nanoproc(&["run", &cmd, "args", "--foo", "-v"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.answer("args"), "ok: probe_cmd args --foo -v");
    assert_eq!(run.answer("--foo"), "err: unknown op");

    // A `--` right after the target is dropped, and makes a flag of nanoproc's
    // the guest's; a second `--` is the guest's.
    let run = nanoproc(&["run", &cmd, "--", "args", "--dir", "x"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.answer("args"), "ok: probe_cmd args --dir x");
    let run = nanoproc(&["run", &cmd, "--", "--", "args"]);
    assert_eq!(run.answer("args"), "ok: probe_cmd -- args");

    // Flags before the target are nanoproc's.
    let scene = Scene::new();
    scene.file("data/a.txt", "alpha");
    let data = format!("{}::/data", scene.path("data").display());
    let run = nanoproc(&["run", "--dir-ro", &data, &cmd, "read:/data/a.txt"]);
    assert_eq!(run.assert_ok("read:/data/a.txt"), "ok: alpha");
}

#[test]
fn a_flag_of_nanoprocs_right_after_the_target_is_refused_not_passed_on() {
    let cmd = cmd();
    for flag in ["--no-stdio", "--memory=1MiB", "--dir"] {
        let run = nanoproc(&["run", &cmd, flag, "/tmp", "--", "args"]);
        assert_eq!(run.code, 2, "{flag}: {run:?}");
        // Later among the guest's arguments too.
        let run = nanoproc(&["run", &cmd, "args", flag, "/tmp"]);
        assert_eq!(run.code, 2, "{flag}: {run:?}");
        assert!(run.stdout.is_empty(), "nothing ran: {run:?}");
        assert!(
            run.stderr.contains("comes after the target")
                && run
                    .stderr
                    .contains("nanoproc's own flags go before the target"),
            "{run:?}"
        );
    }
}

#[test]
fn arguments_after_a_manifest_follow_the_roots_own() {
    let scene = Scene::new();
    let m = scene.manifest(
        r#"[app]
root = "cmd"

[nanoprocess.cmd]
component = "{probe_cmd}"
grants = { stdout = true, args = ["args"] }
"#,
    );
    let m = m.display().to_string();
    let run = nanoproc(&["run", &m, "extra", "--flag"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.answer("args"), "ok: cmd args extra --flag");
    // The form with `--` still works.
    let run = nanoproc(&["run", &m, "--", "extra"]);
    assert_eq!(run.answer("args"), "ok: cmd args extra");
    // Grant flags are a single component's: refused with a manifest.
    let run = nanoproc(&["run", "--random", &m]);
    assert_eq!(run.code, 2, "{run:?}");
}

// ---------------------------------------------------------------------------
// `check`

#[test]
fn check_takes_a_single_component_with_the_grant_flags_run_takes() {
    let scene = Scene::new();
    scene.mkdir("data");
    let data = format!("{}::/data", scene.path("data").display());
    let run = nanoproc(&[
        "check",
        "--dir-ro",
        &data,
        "--clocks",
        "--memory",
        "64MiB",
        &cmd(),
    ]);
    assert_eq!(run.code, 0, "{run:?}");
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert!(lines[0].starts_with("probe_cmd  ["), "{run:?}");
    assert!(
        lines.contains(
            &format!(
                "    fs      /data (read-only) = host {}",
                scene.path("data").display()
            )
            .as_str()
        ),
        "{run:?}"
    );
    assert!(lines.contains(&"    clocks  wall-clock, monotonic-clock"));
    assert!(lines.contains(&"    limits  memory 64 MiB"), "{run:?}");

    // What `run` refuses, `check` refuses, with the same status.
    let run = nanoproc(&["check", "--dir", "/no/such/dir", &cmd()]);
    assert_eq!(run.code, 2, "{run:?}");
    let leaf = guest("probe_leaf").display().to_string();
    let run = nanoproc(&["check", &leaf]);
    assert_eq!(run.code, 125, "{run:?}");
    assert!(run.stderr.contains("the root must be a command"), "{run:?}");
    // Grant flags with a manifest are a usage error.
    let m = scene.driver_tree("", "", "").display().to_string();
    let run = nanoproc(&["check", "--random", &m]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr
            .contains("grant flags apply to a single component")
    );
}

/// The 1-based number of the first line of file `path` that contains `text`.
fn line_of(path: &str, text: &str) -> usize {
    let source = std::fs::read_to_string(path).unwrap();
    1 + source
        .lines()
        .position(|l| l.contains(text))
        .unwrap_or_else(|| panic!("{text:?} is not in {path}"))
}

fn json(run: &Run) -> serde_json::Value {
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {run:?}"))
}

#[test]
fn check_json_lists_the_nanoprocesses_or_every_error_with_its_place() {
    let scene = Scene::new();
    scene.mkdir("data");
    let m = scene.driver_tree(
        &format!(
            "grants.fs = [{{ host = \"{}\", guest = \"/data\", rights = \"read-only\" }}]",
            scene.path("data").display()
        ),
        "grants.fs = [{ from = \"/data\", guest = \"/in\", rights = \"read-only\" }]",
        "",
    );
    let run = nanoproc(&["check", "--json", &m.display().to_string()]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stderr.is_empty(), "{run:?}");
    let v = json(&run);
    assert_eq!(v["ok"], true);
    let nodes = v["nanoprocesses"].as_array().unwrap();
    let paths: Vec<&str> = nodes.iter().map(|n| n["path"].as_str().unwrap()).collect();
    assert_eq!(paths, ["driver", "driver/leaf", "driver/sib"]);
    assert_eq!(nodes[0]["parent"], serde_json::Value::Null);
    assert_eq!(nodes[1]["parent"], "driver");
    assert_eq!(
        nodes[1]["component"],
        guest("probe_leaf").display().to_string()
    );
    assert_eq!(
        nodes[1]["capabilities"]["fs"],
        format!("/in (read-only) = host {}", scene.path("data").display())
    );
    assert_eq!(nodes[2]["capabilities"]["fs"], "none");
    assert!(
        nodes[2]["capabilities"]["limits"]
            .as_str()
            .unwrap()
            .contains("timeout 30s")
    );

    // Refused: every error, each at its place, and the status of a refusal.
    let bad = scene.driver_tree("", "on-failure = \"crash\"\nfrobnicate = 1", "");
    let run = nanoproc(&["check", "--json", &bad.display().to_string()]);
    assert_eq!(run.code, 125, "{run:?}");
    let v = json(&run);
    assert_eq!(v["ok"], false);
    let errors = v["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{run:?}");
    assert_eq!(errors[0]["file"], bad.display().to_string());
    let n = line_of(&bad.display().to_string(), "frobnicate");
    assert_eq!(
        (&errors[0]["line"], &errors[0]["column"]),
        (&n.into(), &1.into())
    );
    assert!(
        errors[0]["message"]
            .as_str()
            .unwrap()
            .starts_with("unknown field `frobnicate`"),
        "{v}"
    );

    // A single component, granted by flags.
    let run = nanoproc(&["check", "--json", "--random", &cmd()]);
    let v = json(&run);
    assert_eq!(v["nanoprocesses"][0]["path"], "probe_cmd");
    assert_eq!(v["nanoprocesses"][0]["capabilities"]["random"], "random");
    // An error about no place in a manifest has a null place.
    let run = nanoproc(&[
        "check",
        "--json",
        &guest("probe_leaf").display().to_string(),
    ]);
    assert_eq!(run.code, 125, "{run:?}");
    let error = &json(&run)["errors"][0];
    assert_eq!(error["line"], serde_json::Value::Null);
    assert!(error["help"].as_str().unwrap().contains("wasm32-wasip2"));
}

#[test]
fn check_json_escapes_characters_that_reorder_or_hide_text() {
    // serde_json leaves C1 controls (U+009B is a terminal's CSI), bidirectional
    // overrides and zero-width characters as they are; a name with them must
    // not reorder the line a person reads.
    let scene = Scene::new();
    let evil = "x\u{202e}y\u{200b}z\u{9b}31m";
    let m = scene.manifest(&format!(
        "[app]\nroot = \"a\"\n[nanoprocess.a]\ncomponent = \"{evil}.wasm\"\n"
    ));
    let run = nanoproc(&["check", "--json", &m.display().to_string()]);
    assert_eq!(run.code, 125, "{run:?}");
    for c in ['\u{202e}', '\u{200b}', '\u{9b}'] {
        assert!(!run.stdout.contains(c), "{c:?} in {run:?}");
    }
    assert!(run.stdout.contains(r"x\u202ey\u200bz\u009b31m"), "{run:?}");
    let v = json(&run);
    assert!(
        v["errors"][0]["message"].as_str().unwrap().contains(evil),
        "{v}"
    );
}

#[test]
fn a_manifest_error_escapes_what_reorders_or_hides_text_in_its_help() {
    // The root's name is repeated in the title, the manifest's line and the help
    // ("declare it as [nanoprocess.NAME]").
    let scene = Scene::new();
    let m = scene.manifest("[app]\nroot = \"a\u{202e}b\u{200b}c\"\n");
    let run = check(&m);
    assert_eq!(run.code, 125, "{run:?}");
    for c in ['\u{202e}', '\u{200b}'] {
        assert!(!run.stderr.contains(c), "{c:?} in {run:?}");
    }
    assert!(
        run.stderr
            .contains("declare it as [nanoprocess.a\\u{202e}b\\u{200b}c]"),
        "{run:?}"
    );
}

// ---------------------------------------------------------------------------
// Manifest errors

/// `cmd` run in a pseudo-terminal by `script(1)`, so that nanoproc's stderr is a
/// terminal: what the terminal received (stdout and stderr together).
fn on_a_terminal(args: &[&str], env: &[(&str, &str)]) -> String {
    let mut line = shell_quote(env!("CARGO_BIN_EXE_nanoproc"));
    for a in args {
        line.push(' ');
        line.push_str(&shell_quote(a));
    }
    let mut script = Command::new("script");
    script.args(["-qec", &line, "/dev/null"]);
    script.env_remove("NO_COLOR").env("TERM", "xterm");
    for (k, v) in env {
        script.env(k, v);
    }
    let out = script
        .output()
        .expect("running script(1), from util-linux (Debian's bsdutils)");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

#[test]
fn a_manifest_error_shows_its_line_underlined_in_colour_only_on_a_terminal() {
    let scene = Scene::new();
    let m = scene.driver_tree("", "on-failure = \"crash\"", "");
    let m = m.display().to_string();
    let n = line_of(&m, "on-failure = \"crash\"");
    let run = nanoproc(&["check", &m]);
    assert_eq!(run.code, 125, "{run:?}");
    let lines: Vec<&str> = run.stderr.lines().collect();
    // The first line as it always was; then the line, and the value underlined.
    assert_eq!(
        lines[0],
        format!(
            "error: {m}:{n}:14: driver/leaf: on-failure must be \"trap\" or \"error\", not \"crash\""
        )
    );
    assert_eq!(lines[1], "   |");
    assert_eq!(lines[2], format!("{n} | on-failure = \"crash\""));
    assert_eq!(lines[3], "   |              ^^^^^^^");
    assert_eq!(
        *lines.last().unwrap(),
        "nanoproc: refused before running (1 error)"
    );
    assert!(!run.stderr.contains('\u{1b}'), "piped: no colour: {run:?}");

    let tty = on_a_terminal(&["check", &m], &[]);
    assert!(tty.contains("on-failure = \"crash\""), "{tty}");
    assert!(tty.contains('\u{1b}'), "a terminal gets colour: {tty:?}");
    let no_colour = on_a_terminal(&["check", &m], &[("NO_COLOR", "1")]);
    assert!(
        no_colour.contains(&format!("{n} | on-failure = \"crash\"")),
        "{no_colour}"
    );
    assert!(!no_colour.contains('\u{1b}'), "NO_COLOR: {no_colour:?}");
}

#[test]
fn errors_are_separated_and_a_help_follows_its_excerpt() {
    let scene = Scene::new();
    let m = scene.driver_tree(
        "",
        "grants.fs = [{ from = \"/nope\", guest = \"/x\", rights = \"read-write\" }]",
        "grants.fs = [{ from = \"/also-not\", guest = \"/x\", rights = \"read-write\" }]",
    );
    let run = check(&m);
    assert_eq!(run.code, 125, "{run:?}");
    let text = &run.stderr;
    assert!(
        text.contains("\n   |\n   = help: `driver` holds: no directories\n\nerror: "),
        "{text}"
    );
    assert!(
        text.ends_with("nanoproc: refused before running (2 errors)\n"),
        "{text}"
    );
}

// ---------------------------------------------------------------------------
// Progress

/// A component whose compilation takes a while: many functions, each a long
/// chain of arithmetic (about 2.4 s of Cranelift on 2 cores, well beyond the
/// spinner's 300 ms on a machine many times faster). It exports nothing, so the
/// check refuses it once it has compiled.
fn slow_component(scene: &Scene) -> String {
    let mut wat = String::from("(component (core module");
    for f in 0..3000 {
        wat.push_str(&format!(
            "(func (export \"f{f}\") (param i64) (result i64) local.get 0"
        ));
        for i in 0..100 {
            wat.push_str(&format!(" i64.const {i} i64.mul local.get 0 i64.add"));
        }
        wat.push(')');
    }
    wat.push_str("))");
    let path = scene.path("slow.wasm");
    std::fs::write(&path, wat::parse_str(&wat).unwrap()).unwrap();
    path.display().to_string()
}

#[test]
fn a_long_compile_shows_a_spinner_on_a_terminal_only() {
    let scene = Scene::new();
    let slow = slow_component(&scene);
    let off = [("NANOPROC_CACHE", "off")];
    let tty = on_a_terminal(&["check", &slow], &off);
    assert!(tty.contains("compiling slow.wasm ("), "{tty:?}");
    assert!(tty.contains("the root must be a command"), "{tty:?}");

    let piped = nanoproc_env(&["check", &slow], &off);
    assert_eq!(piped.code, 125, "{piped:?}");
    assert!(!piped.stderr.contains("compiling"), "{piped:?}");
    assert!(piped.stderr.starts_with("error: "), "{piped:?}");
}

#[test]
fn a_cache_hit_shows_nothing() {
    let cache = tempfile::tempdir().unwrap();
    let dir = cache.path().display().to_string();
    let env = [("NANOPROC_CACHE_DIR", dir.as_str())];
    let cmd = cmd();
    assert_eq!(nanoproc_env(&["run", &cmd], &env).code, 0);
    let tty = on_a_terminal(&["run", &cmd, "args"], &env);
    assert!(tty.contains("args => ok: probe_cmd args"), "{tty:?}");
    assert!(!tty.contains("compiling"), "{tty:?}");
}

// ---------------------------------------------------------------------------
// Logging

#[test]
fn dash_v_logs_each_compile_and_nothing_is_logged_without_it() {
    let cache = tempfile::tempdir().unwrap();
    let dir = cache.path().display().to_string();
    let env = [("NANOPROC_CACHE_DIR", dir.as_str())];
    let cmd = cmd();
    let first = nanoproc_env(&["run", "-v", &cmd, "args"], &env);
    assert_eq!(first.code, 0, "{first:?}");
    let compiled =
        format!("INFO nanoproc_runtime::plan::compile: component compiled component={cmd:?} ms=");
    assert!(first.stderr.contains(&compiled), "{first:?}");
    assert!(first.stderr.contains("run ended code=0"), "{first:?}");
    // Not at -v: each instantiation.
    assert!(!first.stderr.contains("instantiated"), "{first:?}");

    let quiet = nanoproc_env(&["run", &cmd, "args"], &env);
    assert_eq!(quiet.code, 0, "{quiet:?}");
    assert!(quiet.stderr.is_empty(), "{quiet:?}");

    let second = nanoproc_env(&["-vv", "run", &cmd, "args"], &env);
    assert!(
        second
            .stderr
            .contains("component loaded from the compile cache"),
        "{second:?}"
    );
    assert!(
        second
            .stderr
            .contains("DEBUG nanoproc_runtime::run: instantiated nanoprocess=\"probe_cmd\""),
        "{second:?}"
    );

    // RUST_LOG chooses instead; a bad one is said and ignored.
    let filtered = nanoproc_env(
        &["run", &cmd, "args"],
        &[env[0], ("RUST_LOG", "nanoproc_runtime::run=info")],
    );
    assert!(filtered.stderr.contains("run ended"), "{filtered:?}");
    assert!(!filtered.stderr.contains("compiled"), "{filtered:?}");
    let bad = nanoproc_env(&["run", &cmd, "args"], &[env[0], ("RUST_LOG", "[[[")]);
    assert_eq!(bad.code, 0, "{bad:?}");
    assert!(
        bad.stderr.contains("is not a filter nanoproc reads"),
        "{bad:?}"
    );
}

#[test]
fn text_a_guest_chose_is_logged_escaped() {
    let run = nanoproc(&[
        "run",
        "-v",
        "--no-stdio",
        &cmd(),
        "panic:\u{1b}]0;forged title\u{7}",
    ]);
    assert_eq!(run.code, 134, "{run:?}");
    let ended = run
        .stderr
        .lines()
        .find(|l| l.contains("run ended"))
        .unwrap_or_else(|| panic!("no end logged: {run:?}"));
    assert!(ended.contains("\\u{1b}]0;forged title\\u{7}"), "{ended}");
    assert!(!run.stderr.contains('\u{1b}'), "{run:?}");
}

// ---------------------------------------------------------------------------
// Completions and the man page

/// The commands `nanoproc --help` lists (but `help`).
fn commands() -> Vec<String> {
    let help = nanoproc(&["--help"]).stdout;
    let listed: Vec<String> = help
        .split("Commands:\n")
        .nth(1)
        .unwrap_or_else(|| panic!("no commands in:\n{help}"))
        .lines()
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .map(str::to_string)
        .collect();
    for known in ["check", "run", "completions", "man"] {
        assert!(listed.iter().any(|c| c == known), "{known} in {listed:?}");
    }
    listed
}

#[test]
fn completions_know_every_command() {
    let commands = commands();
    let bash = nanoproc(&["completions", "bash"]);
    assert_eq!(bash.code, 0, "{bash:?}");
    assert!(bash.stdout.contains("complete -F _nanoproc"), "{bash:?}");
    for c in &commands {
        assert!(bash.stdout.contains(&format!("nanoproc,{c})")), "bash: {c}");
    }
    // Flags of the flattened grant group are completed for `check` and `run`.
    assert!(bash.stdout.contains("--dir-ro"));
    for (shell, marker) in [
        ("zsh", "#compdef nanoproc"),
        ("fish", "complete -c nanoproc"),
        ("powershell", "Register-ArgumentCompleter"),
        ("elvish", "set edit:completion:arg-completer[nanoproc]"),
    ] {
        let out = nanoproc(&["completions", shell]);
        assert_eq!(out.code, 0, "{shell}: {out:?}");
        assert!(out.stdout.contains(marker), "{shell}: {}", out.stdout);
        assert!(out.stdout.contains("completions"), "{shell}");
    }
    assert_eq!(nanoproc(&["completions", "tcsh"]).code, 2);
}

#[test]
fn the_man_page_lists_every_command_and_each_has_its_own() {
    let page = nanoproc(&["man"]);
    assert_eq!(page.code, 0, "{page:?}");
    assert!(page.stdout.starts_with(".ie"), "roff: {}", page.stdout);
    assert!(page.stdout.contains(".TH nanoproc 1"), "{}", page.stdout);
    let commands = commands();
    for c in &commands {
        assert!(
            page.stdout.contains(&format!("nanoproc\\-{c}(1)")),
            "{c} in {}",
            page.stdout
        );
    }
    let run = nanoproc(&["man", "run"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains(".TH nanoproc-run 1"), "{}", run.stdout);
    assert!(run.stdout.contains("\\-\\-dir\\-ro"), "{}", run.stdout);
    assert_eq!(nanoproc(&["man", "frobnicate"]).code, 2);

    // Rendered as `man` would, where groff is installed.
    let Ok(mut groff) = Command::new("groff")
        .args(["-man", "-Tascii", "-P-cbu"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
    else {
        eprintln!("groff is not installed: the pages were not rendered");
        return;
    };
    use std::io::Write;
    groff
        .stdin
        .take()
        .unwrap()
        .write_all(run.stdout.as_bytes())
        .unwrap();
    let rendered = groff.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&rendered.stdout);
    assert!(text.contains("nanoproc-run"), "{text}");
    assert!(text.contains("--dir-ro"), "{text}");
    assert!(text.contains("Grant a host directory read-only"), "{text}");
}
