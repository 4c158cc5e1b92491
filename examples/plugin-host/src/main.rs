//! plugin-host: a text pipeline through untrusted plugins, an example of embedding
//! nanoproc in a Rust application (docs/embedding.md).
//!
//! ```text
//! plugin-host [--plugin MANIFEST]... [FILE]
//! ```
//!
//! Each line of FILE (or of stdin) goes through the plugins in order, each one's
//! output the next one's input, and comes out on stdout. Each plugin is a
//! component exporting `nanoproc:plugins/transform` (guests/wit/plugins.wit),
//! loaded from its own manifest, which says what it is granted: here a few WASI
//! capabilities, limits, and a share of the key-value store this application
//! defines and registers with nanoproc as the capability family `kv` (the keys
//! under a prefix). At the end, on stderr, it says what each plugin was refused
//! and what the store holds.
//!
//! Without `--plugin`, it loads the three of `plugins/` beside this file (Rust,
//! JavaScript, Python; `cargo xtask plugin-demo` builds their components).

use nanoproc_runtime::host::{HostFamily, ScopeRule};
use nanoproc_runtime::manifest::Restart;
use nanoproc_runtime::{Audit, Plugin, PluginError, PluginOptions, Runtime, TypedExport};
use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

/// The application's own data, which plugins reach only through `kv`.
type Store = Arc<Mutex<BTreeMap<String, String>>>;

/// The WIT interface the `kv` family serves (guests/wit/plugins.wit).
const KV: &str = "nanoproc:plugins/kv@0.1.0";

/// The host-defined capability `kv`: `get` and `set` on the application's store,
/// each call aimed at its key, which must be under one of the prefixes the
/// caller's manifest grants (`grants.host.kv = ["rust/"]`). A refused call
/// returns the interface's own `err` with nanoproc's reason, and is audited.
fn kv_family(store: &Store) -> HostFamily {
    let (get_store, set_store) = (store.clone(), store.clone());
    HostFamily::new("kv", ScopeRule::Prefix)
        .func(
            KV,
            "get",
            |(key,): &(String,)| Some(key.clone()),
            move |_call, (key,): (String,)| {
                let value = lock(&get_store).get(&key).cloned();
                Ok((Ok::<_, String>(value),))
            },
        )
        .refusing(|reason| (Err::<Option<String>, String>(reason),))
        .func(
            KV,
            "set",
            |(key, _): &(String, String)| Some(key.clone()),
            move |_call, (key, value): (String, String)| {
                // A plugin's values are data: bounded, as its memory is.
                if key.len() + value.len() > 4096 {
                    return Ok((Err::<(), String>("a key and value over 4 KiB".into()),));
                }
                lock(&set_store).insert(key, value);
                Ok((Ok(()),))
            },
        )
        .refusing(|reason| (Err::<(), String>(reason),))
}

fn lock(store: &Store) -> std::sync::MutexGuard<'_, BTreeMap<String, String>> {
    // A host function that panicked cannot leave the map half-written.
    store.lock().unwrap_or_else(|e| e.into_inner())
}

/// One loaded plugin: its instance (kept across calls: a plugin may keep state),
/// its typed `transform`, and the record of its capability decisions.
struct Loaded {
    name: String,
    plugin: Plugin,
    transform: TypedExport<(String,), (String,)>,
    audit: Audit,
}

fn load(runtime: &Runtime, manifest: &PathBuf) -> Result<Loaded, String> {
    let name = manifest
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| manifest.display().to_string());
    // Checks the manifest, its grants (including `grants.host.kv`, against the
    // families registered) and the component's imports against them; compiles.
    let plan = runtime
        .check_plugin_manifest(manifest)
        .map_err(|e| format!("{}: {e}", manifest.display()))?;
    let audit = Audit::new();
    let options = PluginOptions {
        audit: audit.clone(),
        // A plugin that fails (a trap, a limit) gets a fresh instance for the next
        // line, three times a minute at most; past that it is left failed.
        restart: Some(Restart {
            max: 3,
            within_ms: 60_000,
        }),
        ..PluginOptions::default()
    };
    let mut plugin = plan
        .plugin(&options)
        .map_err(|e| format!("{name}: starting it: {e}"))?;
    let transform = plugin
        .typed::<(String,), (String,)>("nanoproc:plugins/transform", "transform")
        .map_err(|e| format!("{name}: {e}"))?;
    Ok(Loaded {
        name,
        plugin,
        transform,
        audit,
    })
}

struct Args {
    plugins: Vec<PathBuf>,
    input: Option<PathBuf>,
}

fn parse_args() -> Result<Args, String> {
    let mut plugins = Vec::new();
    let mut input = None;
    let mut args = std::env::args_os().skip(1);
    while let Some(arg) = args.next() {
        match arg.to_str() {
            Some("--plugin") => {
                let manifest = args.next().ok_or("--plugin needs a manifest's path")?;
                plugins.push(PathBuf::from(manifest));
            }
            Some("-h" | "--help") => {
                return Err(String::new());
            }
            Some(flag) if flag.starts_with('-') && flag != "-" => {
                return Err(format!("unknown option {flag}"));
            }
            _ if input.is_some() => return Err("one input file at most".into()),
            _ => input = Some(PathBuf::from(arg)).filter(|p| p.as_os_str() != "-"),
        }
    }
    if plugins.is_empty() {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("plugins");
        plugins = ["rust", "js", "py"]
            .iter()
            .map(|p| dir.join(format!("{p}.toml")))
            .collect();
    }
    Ok(Args { plugins, input })
}

const USAGE: &str = "usage: plugin-host [--plugin MANIFEST]... [FILE]
Runs each line of FILE (or stdin) through the plugins in order and prints the result;
then, on stderr, what each plugin was refused and what the key-value store holds.
Without --plugin: plugins/rust.toml, js.toml and py.toml of examples/plugin-host.";

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(why) => {
            if !why.is_empty() {
                eprintln!("plugin-host: {why}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(why) => {
            eprintln!("plugin-host: {why}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> Result<(), String> {
    let store = Store::default();
    let runtime = Runtime::new()
        .map_err(|e| format!("setting up nanoproc: {e:#}"))?
        .with_host_family(kv_family(&store))
        .map_err(|e| format!("registering kv: {e}"))?;
    let mut plugins = args
        .plugins
        .iter()
        .map(|manifest| load(&runtime, manifest))
        .collect::<Result<Vec<_>, _>>()?;

    let input: Box<dyn BufRead> = match &args.input {
        Some(path) => Box::new(std::io::BufReader::new(
            std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?,
        )),
        None => Box::new(std::io::stdin().lock()),
    };
    let mut out = std::io::stdout().lock();
    let mut lines = 0usize;
    let mut failures = 0usize;
    for line in input.lines() {
        let mut text = line.map_err(|e| format!("reading the input: {e}"))?;
        for loaded in &mut plugins {
            match transform(loaded, &text) {
                Ok(output) => text = output,
                // A plugin that fails (traps, exceeds a limit) hurts only its own
                // step: the line goes on unchanged, and so does the pipeline.
                Err(e) => {
                    failures += 1;
                    eprintln!(
                        "plugin-host: {}: {e}; the line goes on unchanged",
                        loaded.name
                    );
                }
            }
        }
        lines += 1;
        writeln!(out, "{text}").map_err(|e| format!("writing the output: {e}"))?;
    }
    out.flush()
        .map_err(|e| format!("writing the output: {e}"))?;
    drop(out);

    report(&plugins, &store, lines, failures);
    Ok(())
}

/// One call: nanoproc starts the plugin's time and fuel afresh, checks every
/// capability it uses, and turns a trap into an error.
/// The text is copied into the plugin's memory; the host keeps its own copy, to
/// pass the line on if the plugin fails.
fn transform(loaded: &mut Loaded, text: &str) -> Result<String, PluginError> {
    let (output,) = loaded
        .plugin
        .call_typed(&loaded.transform, (text.to_string(),))?;
    Ok(output)
}

fn report(plugins: &[Loaded], store: &Store, lines: usize, failures: usize) {
    let names: Vec<&str> = plugins.iter().map(|p| p.name.as_str()).collect();
    eprintln!(
        "plugin-host: {lines} lines through {} ({failures} failed calls)",
        names.join(" -> ")
    );
    eprintln!("refused:");
    for loaded in plugins {
        let refusals = loaded.audit.refusals();
        if refusals.is_empty() {
            eprintln!("  {}: nothing", loaded.name);
        }
        for event in refusals {
            // `Event`'s own Display starts with the nanoprocess's path in its tree
            // (the manifest's root name); the plugin's name says it here.
            eprintln!(
                "  {}: {} {}{}: {}",
                loaded.name,
                event.capability,
                event.operation,
                event
                    .target
                    .map(|t| format!(" {}", printable(&t)))
                    .unwrap_or_default(),
                printable(event.reason.as_deref().unwrap_or("refused"))
            );
        }
    }
    eprintln!("store:");
    for (key, value) in lock(store).iter() {
        eprintln!("  {} = {}", printable(key), printable(value));
    }
}

/// What a plugin wrote (a key, a value, a target it aimed at), made safe for a
/// terminal: control characters and those that reorder text are escaped.
fn printable(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' => {
                c.escape_unicode().to_string()
            }
            c if c.is_control() => c.escape_default().to_string(),
            c => c.to_string(),
        })
        .collect()
}
