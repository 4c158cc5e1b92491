//! Test components from other languages' toolchains, built from the sources in
//! `guests/foreign/`: JavaScript (componentize-js), Python (componentize-py),
//! C (Debian's clang and wasi-libc) and AssemblyScript (asc with its WASI shim),
//! the last two as WASI preview 1 core modules.
//!
//! The toolchains are pinned and installed under `target/foreign-tools/` only when
//! missing: `npm install --prefix` for componentize-js, a Python venv for
//! componentize-py, `npm install --prefix` for AssemblyScript. clang and wasi-libc come from the system (`apt-get install
//! clang lld wasi-libc libclang-rt-dev-wasm32` on Debian). Each component is
//! built once per content of its sources, toolchain version and command, into
//! `target/foreign/`: these builds take 5 to 10 s each and are not
//! byte-reproducible, so a cached one is reused until something it is made of
//! changes. A file lock makes concurrent test binaries wait for one build.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

/// The pinned componentize-js (npm).
pub const COMPONENTIZE_JS: &str = "@bytecodealliance/componentize-js@0.23.0";
/// The pinned componentize-py (PyPI).
pub const COMPONENTIZE_PY: &str = "componentize-py==0.25.1";
/// The pinned AssemblyScript compiler and the shim that makes its programs use
/// WASI preview 1 (npm).
pub const ASSEMBLYSCRIPT: &[&str] = &["assemblyscript@0.28.20", "@assemblyscript/wasi-shim@0.1.0"];
/// The Debian packages the C build needs.
pub const C_PACKAGES: &str = "clang lld wasi-libc libclang-rt-dev-wasm32";

/// The foreign test components: name, language, and what it is.
pub const FOREIGN_GUESTS: &[(&str, &str)] = &[
    (
        "js-hello",
        "JavaScript command, HTTP disabled: clocks, random, prints",
    ),
    (
        "js-http",
        "JavaScript command with HTTP enabled: imports wasi:http",
    ),
    (
        "py-hello",
        "Python command: prints a greeting read from the environment",
    ),
    (
        "c-reader",
        "C, a WASI preview 1 core module: reads a file and the clock",
    ),
    (
        "c-p1probe",
        "C, a WASI preview 1 core module: raw preview 1 calls, one probe per argument (docs/preview1.md)",
    ),
    (
        "c-p1probe-realloc",
        "c-p1probe exporting a `cabi_realloc` for wasmtime's component adapter",
    ),
    (
        "as-echo",
        "AssemblyScript, a WASI preview 1 core module: prints its arguments and X",
    ),
    (
        "as-echo-realloc",
        "as-echo exporting a `cabi_realloc` for wasmtime's component adapter",
    ),
    (
        "as-heap",
        "AssemblyScript: counts the bytes of a heap block one WASI call changes",
    ),
    (
        "as-heap-realloc",
        "as-heap exporting a `cabi_realloc` for wasmtime's component adapter",
    ),
    (
        "js-plugin",
        "JavaScript plugin of examples/plugin-host, HTTP disabled: exports transform, imports kv",
    ),
    (
        "py-plugin",
        "Python plugin of examples/plugin-host: exports transform, imports kv",
    ),
    (
        "js-http-hello",
        "JavaScript HTTP handler (fetch event): exports wasi:http/incoming-handler@0.2.10",
    ),
];

/// Serialises builds within one process; [`File::lock`] serialises processes.
static BUILDING: Mutex<()> = Mutex::new(());

/// The path of a foreign test component (one of [`FOREIGN_GUESTS`]), built if its
/// sources or toolchain changed. Panics, saying which command installs what is
/// missing, if a toolchain cannot be found or installed.
pub fn foreign_guest(name: &str) -> PathBuf {
    match try_foreign_guest(name) {
        Ok(path) => path,
        Err(why) => panic!("building the foreign test component `{name}`: {why}"),
    }
}

/// [`foreign_guest`], with the reason as an error instead of a panic.
pub fn try_foreign_guest(name: &str) -> Result<PathBuf, String> {
    let root = crate::repo_root();
    let sources = root.join("guests").join("foreign");
    let out_dir = root.join("target").join("foreign");
    std::fs::create_dir_all(&out_dir)
        .map_err(|e| format!("creating {}: {e}", out_dir.display()))?;
    let _in_process = BUILDING.lock().unwrap_or_else(|e| e.into_inner());
    let lock = File::create(out_dir.join(".lock"))
        .map_err(|e| format!("creating the build lock in {}: {e}", out_dir.display()))?;
    lock.lock()
        .map_err(|e| format!("locking {}: {e}", out_dir.display()))?;

    let recipe = recipe(name, &root, &sources)?;
    let mut hash = Fnv::default();
    hash.add(recipe.tool_version.as_bytes());
    for arg in &recipe.args {
        hash.add(arg.as_bytes());
    }
    for input in &recipe.inputs {
        hash_tree(&mut hash, input)?;
    }
    let out = out_dir.join(format!("{name}-{:016x}.wasm", hash.0));
    if out.is_file() {
        return Ok(out);
    }
    let tmp = out_dir.join(format!(".{name}.{}.wasm", std::process::id()));
    let began = std::time::Instant::now();
    let mut cmd = Command::new(&recipe.program);
    cmd.args(&recipe.args)
        .arg("-o")
        .arg(&tmp)
        .current_dir(&out_dir);
    for (var, value) in &recipe.env {
        cmd.env(var, value);
    }
    let output = cmd
        .output()
        .map_err(|e| format!("running {}: {e}", recipe.program.display()))?;
    if !output.status.success() || !tmp.is_file() {
        let _ = std::fs::remove_file(&tmp);
        return Err(format!(
            "{} failed ({}):\n{}{}\n{}",
            recipe.program.display(),
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
            recipe.if_it_fails
        ));
    }
    std::fs::rename(&tmp, &out).map_err(|e| format!("installing {}: {e}", out.display()))?;
    eprintln!(
        "xtask: built {name} in {:.1} s: {}",
        began.elapsed().as_secs_f64(),
        out.display()
    );
    Ok(out)
}

/// How one component is built: `program args -o OUT`.
struct Recipe {
    program: PathBuf,
    args: Vec<String>,
    env: Vec<(String, String)>,
    /// What its output depends on besides the arguments.
    inputs: Vec<PathBuf>,
    tool_version: String,
    /// What to tell the user when the build fails.
    if_it_fails: String,
}

fn recipe(name: &str, root: &Path, sources: &Path) -> Result<Recipe, String> {
    let path = |p: &Path| p.to_string_lossy().into_owned();
    match name {
        "js-hello" | "js-http" => {
            let program = componentize_js(root)?;
            let js = sources.join("js");
            let (script, disable): (&str, &[&str]) = if name == "js-hello" {
                // nanoproc cannot grant HTTP yet: without these, the engine imports
                // wasi:http and the component could not run.
                ("hello.js", &["-d", "http", "-d", "fetch-event"])
            } else {
                ("fetcher.js", &[])
            };
            let mut args = vec![
                path(&js.join(script)),
                "--wit".into(),
                path(&js.join("wit")),
                "--world-name".into(),
                "command".into(),
            ];
            args.extend(disable.iter().map(|s| s.to_string()));
            Ok(Recipe {
                program,
                args,
                env: Vec::new(),
                // The script and the WIT, not the whole directory: http-hello/ is
                // another component's.
                inputs: vec![js.join(script), js.join("wit")],
                tool_version: COMPONENTIZE_JS.into(),
                if_it_fails: format!(
                    "(reinstall with: rm -rf target/foreign-tools/js && npm install --prefix target/foreign-tools/js {COMPONENTIZE_JS})"
                ),
            })
        }
        "py-hello" => {
            let program = componentize_py(root)?;
            let py = sources.join("py");
            Ok(Recipe {
                program,
                args: vec![
                    "--wit-path".into(),
                    path(&py.join("wit")),
                    "--world".into(),
                    "command".into(),
                    "componentize".into(),
                    "--python-path".into(),
                    path(&py.join("hello")),
                    "app".into(),
                ],
                // Only the app's directory and the standard library: not whatever
                // virtual environment the caller has active.
                env: vec![("VIRTUAL_ENV".into(), String::new())],
                inputs: vec![py],
                tool_version: COMPONENTIZE_PY.into(),
                if_it_fails: format!(
                    "(reinstall with: rm -rf target/foreign-tools/py && python3 -m venv target/foreign-tools/py && target/foreign-tools/py/bin/pip install {COMPONENTIZE_PY})"
                ),
            })
        }
        // The plugins of examples/plugin-host: libraries of the `text-plugin` world
        // (guests/wit/plugins.wit), made of their one source and that WIT.
        "js-plugin" => {
            let program = componentize_js(root)?;
            let script = sources.join("js").join("plugin.js");
            let wit = plugins_wit(root);
            Ok(Recipe {
                program,
                args: vec![
                    path(&script),
                    "--wit".into(),
                    path(&wit),
                    "--world-name".into(),
                    "text-plugin".into(),
                    // As for js-hello: nanoproc cannot grant HTTP.
                    "-d".into(),
                    "http".into(),
                    "-d".into(),
                    "fetch-event".into(),
                ],
                env: Vec::new(),
                inputs: vec![script, wit],
                tool_version: COMPONENTIZE_JS.into(),
                if_it_fails: format!(
                    "(reinstall with: rm -rf target/foreign-tools/js && npm install --prefix target/foreign-tools/js {COMPONENTIZE_JS})"
                ),
            })
        }
        "py-plugin" => {
            let program = componentize_py(root)?;
            let app = sources.join("py").join("plugin");
            let wit = plugins_wit(root);
            Ok(Recipe {
                program,
                args: vec![
                    "--wit-path".into(),
                    path(&wit),
                    "--world".into(),
                    "text-plugin".into(),
                    "componentize".into(),
                    "--python-path".into(),
                    path(&app),
                    "app".into(),
                ],
                // As for py-hello: only the app's directory and the standard library.
                env: vec![("VIRTUAL_ENV".into(), String::new())],
                inputs: vec![app, wit],
                tool_version: COMPONENTIZE_PY.into(),
                if_it_fails: format!(
                    "(reinstall with: rm -rf target/foreign-tools/py && python3 -m venv target/foreign-tools/py && target/foreign-tools/py/bin/pip install {COMPONENTIZE_PY})"
                ),
            })
        }
        // An HTTP handler for `nanoproc serve` (guests/foreign/js/http-hello): HTTP on,
        // so the engine's fetch event serves the world's incoming-handler export.
        "js-http-hello" => {
            let program = componentize_js(root)?;
            let dir = sources.join("js").join("http-hello");
            Ok(Recipe {
                program,
                args: vec![
                    path(&dir.join("handler.js")),
                    "--wit".into(),
                    path(&dir.join("wit")),
                    "--world-name".into(),
                    "handler".into(),
                ],
                env: Vec::new(),
                inputs: vec![dir],
                tool_version: COMPONENTIZE_JS.into(),
                if_it_fails: format!(
                    "(reinstall with: rm -rf target/foreign-tools/js && npm install --prefix target/foreign-tools/js {COMPONENTIZE_JS})"
                ),
            })
        }
        "c-reader" => {
            let version = clang_version()?;
            let c = sources.join("c");
            Ok(Recipe {
                program: PathBuf::from("clang"),
                args: vec![
                    "--target=wasm32-wasi".into(),
                    "--sysroot=/usr".into(),
                    "-fuse-ld=lld".into(),
                    "-O2".into(),
                    path(&c.join("reader.c")),
                ],
                env: Vec::new(),
                inputs: vec![c],
                tool_version: version,
                if_it_fails: format!(
                    "(clang needs wasi-libc and the wasm32 builtins: apt-get install {C_PACKAGES})"
                ),
            })
        }
        // The preview 1 probes: the same source, with and without an export of
        // `cabi_realloc` (docs/preview1.md).
        "c-p1probe" | "c-p1probe-realloc" => {
            let version = clang_version()?;
            let source = sources.join("c").join("p1probe.c");
            let mut args = vec![
                "--target=wasm32-wasi".to_string(),
                "--sysroot=/usr".into(),
                "-fuse-ld=lld".into(),
                "-O2".into(),
                path(&source),
            ];
            if name == "c-p1probe-realloc" {
                args.push("-DEXPORT_CABI_REALLOC".into());
            }
            Ok(Recipe {
                program: PathBuf::from("clang"),
                args,
                env: Vec::new(),
                inputs: vec![source],
                tool_version: version,
                if_it_fails: format!(
                    "(clang needs wasi-libc and the wasm32 builtins: apt-get install {C_PACKAGES})"
                ),
            })
        }
        "as-echo" | "as-echo-realloc" | "as-heap" | "as-heap-realloc" => {
            let program = asc(root)?;
            let dir = sources.join("as");
            let file = match name {
                "as-echo" => "echo.ts",
                "as-echo-realloc" => "echo_realloc.ts",
                "as-heap" => "heap.ts",
                _ => "heap_realloc.ts",
            };
            Ok(Recipe {
                program,
                args: vec![
                    path(&dir.join(file)),
                    // The shim's configuration: WASI preview 1 imports instead of
                    // a JavaScript host's, and `_start` exported. Named relative
                    // to the build's directory (target/foreign): asc 0.28 finds
                    // the shim's library from a relative path only.
                    "--config".into(),
                    "../foreign-tools/as/node_modules/@assemblyscript/wasi-shim/asconfig.json"
                        .into(),
                    "-O2".into(),
                ],
                env: Vec::new(),
                inputs: vec![dir],
                tool_version: ASSEMBLYSCRIPT.join(" "),
                if_it_fails: format!(
                    "(reinstall with: rm -rf target/foreign-tools/as && npm install --prefix target/foreign-tools/as {})",
                    ASSEMBLYSCRIPT.join(" ")
                ),
            })
        }
        _ => Err(format!(
            "no foreign test component `{name}`; there are: {}",
            FOREIGN_GUESTS
                .iter()
                .map(|(n, _)| *n)
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

/// The plugins' WIT, shared with the Rust plugins and the host (one package, so a
/// file rather than the directory it is in).
fn plugins_wit(root: &Path) -> PathBuf {
    root.join("guests").join("wit").join("plugins.wit")
}

/// The directory toolchains are installed in.
fn tools_dir(root: &Path) -> PathBuf {
    root.join("target").join("foreign-tools")
}

/// componentize-js, installed with npm if missing.
fn componentize_js(root: &Path) -> Result<PathBuf, String> {
    let prefix = tools_dir(root).join("js");
    let bin = prefix
        .join("node_modules")
        .join(".bin")
        .join("componentize-js");
    let marker = prefix.join(format!(".installed-{}", marker_name(COMPONENTIZE_JS)));
    if bin.is_file() && marker.is_file() {
        return Ok(bin);
    }
    let install = format!("npm install --prefix target/foreign-tools/js {COMPONENTIZE_JS}");
    std::fs::create_dir_all(&prefix).map_err(|e| format!("creating {}: {e}", prefix.display()))?;
    run_installer(
        Command::new("npm")
            .args(["install", "--no-audit", "--no-fund", "--prefix"])
            .arg(&prefix)
            .arg(COMPONENTIZE_JS),
        &format!(
            "installing componentize-js needs Node.js 18 or later and npm (Debian: apt-get install nodejs npm); then: {install}"
        ),
    )?;
    if !bin.is_file() {
        return Err(format!(
            "{install} finished, but {} is not there",
            bin.display()
        ));
    }
    File::create(&marker).map_err(|e| format!("creating {}: {e}", marker.display()))?;
    Ok(bin)
}

/// The AssemblyScript compiler and its WASI shim, installed with npm if missing.
fn asc(root: &Path) -> Result<PathBuf, String> {
    let prefix = tools_dir(root).join("as");
    let bin = prefix.join("node_modules").join(".bin").join("asc");
    let shim = prefix
        .join("node_modules")
        .join("@assemblyscript")
        .join("wasi-shim")
        .join("asconfig.json");
    let marker = prefix.join(format!(
        ".installed-{}",
        ASSEMBLYSCRIPT
            .iter()
            .map(|p| marker_name(p))
            .collect::<Vec<_>>()
            .join("+")
    ));
    if bin.is_file() && shim.is_file() && marker.is_file() {
        return Ok(bin);
    }
    let install = format!(
        "npm install --prefix target/foreign-tools/as {}",
        ASSEMBLYSCRIPT.join(" ")
    );
    std::fs::create_dir_all(&prefix).map_err(|e| format!("creating {}: {e}", prefix.display()))?;
    run_installer(
        Command::new("npm")
            .args(["install", "--no-audit", "--no-fund", "--prefix"])
            .arg(&prefix)
            .args(ASSEMBLYSCRIPT),
        &format!(
            "installing AssemblyScript needs Node.js 18 or later and npm (Debian: apt-get install nodejs npm); then: {install}"
        ),
    )?;
    if !bin.is_file() || !shim.is_file() {
        return Err(format!(
            "{install} finished, but {} or {} is not there",
            bin.display(),
            shim.display()
        ));
    }
    File::create(&marker).map_err(|e| format!("creating {}: {e}", marker.display()))?;
    Ok(bin)
}

/// componentize-py, installed into a venv with pip if missing.
fn componentize_py(root: &Path) -> Result<PathBuf, String> {
    let venv = tools_dir(root).join("py");
    let bin = venv.join("bin").join("componentize-py");
    let marker = venv.join(format!(".installed-{}", marker_name(COMPONENTIZE_PY)));
    if bin.is_file() && marker.is_file() {
        return Ok(bin);
    }
    let install = format!(
        "python3 -m venv target/foreign-tools/py && target/foreign-tools/py/bin/pip install {COMPONENTIZE_PY}"
    );
    let needs = format!(
        "installing componentize-py needs Python 3.10 or later with venv and pip (Debian: apt-get install python3-venv); then: {install}"
    );
    if !venv.join("bin").join("pip").is_file() {
        run_installer(
            Command::new("python3").args(["-m", "venv"]).arg(&venv),
            &needs,
        )?;
    }
    run_installer(
        Command::new(venv.join("bin").join("pip")).args([
            "install",
            "--quiet",
            "--disable-pip-version-check",
            COMPONENTIZE_PY,
        ]),
        &needs,
    )?;
    if !bin.is_file() {
        return Err(format!(
            "{install} finished, but {} is not there",
            bin.display()
        ));
    }
    File::create(&marker).map_err(|e| format!("creating {}: {e}", marker.display()))?;
    Ok(bin)
}

/// The version line of the system's clang, if it can build for wasm32-wasi.
fn clang_version() -> Result<String, String> {
    let missing =
        format!("the C test component needs clang with wasi-libc: apt-get install {C_PACKAGES}");
    let output = Command::new("clang")
        .arg("--version")
        .output()
        .map_err(|e| format!("running clang: {e}; {missing}"))?;
    if !output.status.success() {
        return Err(missing);
    }
    // wasi-libc's headers and libraries, where Debian's package puts them.
    if !Path::new("/usr/include/wasm32-wasi/stdio.h").is_file() {
        return Err(format!("wasi-libc is not installed; {missing}"));
    }
    let version = String::from_utf8_lossy(&output.stdout);
    Ok(version.lines().next().unwrap_or_default().to_string())
}

fn run_installer(cmd: &mut Command, if_it_fails: &str) -> Result<(), String> {
    let began = std::time::Instant::now();
    let output = cmd
        .output()
        .map_err(|e| format!("running {:?}: {e}\n{if_it_fails}", cmd.get_program()))?;
    if !output.status.success() {
        return Err(format!(
            "{:?} failed ({}):\n{}{}\n{if_it_fails}",
            cmd.get_program(),
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    eprintln!(
        "xtask: {:?} {:?} took {:.1} s",
        cmd.get_program(),
        cmd.get_args().collect::<Vec<_>>(),
        began.elapsed().as_secs_f64()
    );
    Ok(())
}

/// `@bytecodealliance/componentize-js@0.23.0` → `componentize-js-0.23.0`.
fn marker_name(spec: &str) -> String {
    spec.rsplit('/')
        .next()
        .unwrap_or(spec)
        .replace(['@', '='], "-")
        .replace("--", "-")
}

/// Hashes every file below `path` (or the file itself), names and contents, in
/// name order.
fn hash_tree(hash: &mut Fnv, path: &Path) -> Result<(), String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    hash.add(
        path.file_name()
            .map(|n| n.as_encoded_bytes())
            .unwrap_or_default(),
    );
    if meta.is_dir() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
            .map_err(|e| format!("{}: {e}", path.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        entries.sort();
        // The Python that componentize-py runs inside its own runtime writes a
        // `__pycache__` beside the app, whatever the environment says: no source.
        for entry in entries.iter().filter(|e| !e.ends_with("__pycache__")) {
            hash_tree(hash, entry)?;
        }
    } else {
        let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        hash.add(&bytes);
    }
    Ok(())
}

/// FNV-1a, 64 bits: stable across Rust releases (std's hasher is not promised to
/// be), which a cache kept in `target/` between toolchain updates needs.
struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv {
    fn add(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
        // A separator, so that ("ab", "c") and ("a", "bc") differ.
        self.0 ^= 0xff;
        self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
    }
}
