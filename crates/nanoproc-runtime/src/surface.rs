//! The capability surface of a file, from its bytes, before anything runs: what
//! the file is, what it imports and exports, which capability families those
//! imports can ask for and which grant keys would grant them (`nanoproc inspect`).
//!
//! Also what a file that is no WebAssembly is ([`recognize`]), so that `run` and
//! `check` can say "this is a TOML manifest" or "this is a native executable"
//! instead of "bad magic number".
//!
//! Every file is hostile: its size is capped before it is read (the same cap as a
//! check's, [`crate::DEFAULT_MAX_COMPONENT_SIZE`]), the parsers are bounded by its
//! size, and any failure is an [`InspectError`], never a panic. Every name in a
//! [`Surface`] is chosen by whoever built the file: print them escaped.
//!
//! Which family an import belongs to is not decided here: each host family module
//! (`families/*.rs`) owns the interfaces it serves (`SURFACE`, `PREVIEW1`), and
//! `families::SURFACES` lists them, so a new family describes itself.
//!
//! ## The JSON form
//!
//! [`Surface`] serialises (serde) to one object with these fields, whose names
//! are stable: `kind` (`component`, `preview1-module`, `core-module`), `wasi`
//! (generations: `0.2`, `0.3`, `preview1`), `command`, `size`, `digest`
//! (`sha256:<hex>`, as a manifest's `digest` pin), `producers` (`field`, `name`,
//! `version`; at most [`MAX_PRODUCERS`]), `producers_not_kept` (how many entries
//! beyond those), `imports` and `exports` (see [`Import`], [`Export`]),
//! `families` (see [`FamilyUse`]) and `notes`.
//!
//! A file's size bounds the work: nothing here is more than linear in the number
//! of its imports or producers entries, and a file nesting more modules and
//! components than wasmtime would load ([`MAX_MODULES_AND_COMPONENTS`]) is
//! refused before its world is decoded.

use crate::families;
use serde::Serialize;
use std::collections::{HashMap, HashSet};
use std::path::Path;

/// How many distinct producers entries a [`Surface`] keeps. A real file has a
/// dozen; a hostile one can hold hundreds of thousands, which are counted in
/// [`Surface::producers_not_kept`] and not kept.
pub const MAX_PRODUCERS: usize = 256;

/// The most modules and components a file may hold, itself and every one nested
/// in it included: what wasmtime's validator accepts (wasmparser's
/// `MAX_WASM_MODULES_AND_COMPONENTS`), so `run` would refuse more anyway. Past it
/// a file is refused before its world is decoded, which for deep nesting would
/// take minutes and hundreds of megabytes.
pub const MAX_MODULES_AND_COMPONENTS: usize = 1000;

/// How many bytes of a file [`recognize`] looks at: enough for every magic number
/// and for a manifest of ordinary size, little enough to read at every refusal.
pub const RECOGNIZE_BYTES: usize = 64 * 1024;

/// The first four bytes of every WebAssembly binary.
const WASM_MAGIC: [u8; 4] = *b"\0asm";
/// What follows the magic in a core module: version 1, layer 0.
const CORE_MODULE_VERSION: [u8; 4] = [1, 0, 0, 0];
/// What follows it in a component: the component model's version 0x0d, layer 1
/// (the encoding wasmtime 50 reads).
const COMPONENT_VERSION: [u8; 4] = [0x0d, 0, 1, 0];

/// The import module of every WASI preview 1 function.
const PREVIEW1_MODULE: &str = "wasi_snapshot_preview1";

/// What a file is, from its first bytes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind", content = "what")]
pub enum FileKind {
    /// A WebAssembly component (its header; not validated).
    Component,
    /// A WebAssembly core module (its header; not validated).
    CoreModule,
    /// Anything else.
    NotWasm(NotWasm),
}

/// What a file that is not WebAssembly nanoproc runs is, as far as its first bytes
/// tell.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "is")]
pub enum NotWasm {
    /// No bytes at all.
    Empty,
    /// TOML with an `[app]` or `[nanoprocess.*]` table: a nanoproc manifest.
    TomlManifest,
    /// Other TOML.
    Toml,
    /// An executable for the machine: `ELF`, `Mach-O` or `PE`.
    NativeExecutable { format: &'static str },
    /// A script (`#!`), with its interpreter when it is short, printable text.
    Script { interpreter: Option<String> },
    /// WebAssembly text format: a module or a component.
    Wat { component: bool },
    /// `zip`, `gzip`, `tar`, `xz`, `zstd` or `bzip2`.
    Archive { format: &'static str },
    /// `PNG`, `JPEG`, `GIF` or `WebP`.
    Image { format: &'static str },
    /// A PDF document.
    Pdf,
    /// A Java class file (its magic number is Mach-O's universal one).
    JavaClass,
    /// WebAssembly of a version or layer nanoproc's wasmtime does not read (an
    /// older component-model draft, say), with the four bytes after the magic.
    WasmVersion { version: [u8; 4] },
    /// The WebAssembly magic number, then the end of the file.
    TruncatedWasm,
    /// Text that is none of the above.
    Text,
    /// Bytes that are none of the above, with the first few in hex.
    Unknown { starts_with: String },
}

impl NotWasm {
    /// The sentence that says what `file` is, e.g. "photo.png is not WebAssembly:
    /// it is a PNG image".
    pub fn explain(&self, file: &str) -> String {
        let what = match self {
            NotWasm::WasmVersion { version } => {
                return format!(
                    "{file} is not a component nanoproc can run: it is WebAssembly of a version and layer nanoproc does not run ({}; a component has {}, a core module {})",
                    hex_bytes(version),
                    hex_bytes(&COMPONENT_VERSION),
                    hex_bytes(&CORE_MODULE_VERSION)
                );
            }
            NotWasm::TruncatedWasm => {
                return format!(
                    "{file} is not a component nanoproc can run: it ends within its WebAssembly header"
                );
            }
            NotWasm::Empty => return format!("{file} is empty"),
            NotWasm::TomlManifest => "a TOML manifest".to_string(),
            NotWasm::Toml => "a TOML document".to_string(),
            NotWasm::NativeExecutable { format } => format!("a native executable ({format})"),
            NotWasm::Script {
                interpreter: Some(i),
            } => format!("a script for {i}"),
            NotWasm::Script { interpreter: None } => "a script".to_string(),
            NotWasm::Wat { component: true } => {
                "WebAssembly text (WAT) of a component, not its binary".to_string()
            }
            NotWasm::Wat { component: false } => {
                "WebAssembly text (WAT) of a module, not its binary".to_string()
            }
            NotWasm::Archive { format } => format!("a {format} archive"),
            NotWasm::Image { format } => format!("a {format} image"),
            NotWasm::Pdf => "a PDF document".to_string(),
            NotWasm::JavaClass => "a Java class file".to_string(),
            NotWasm::Text => "text".to_string(),
            NotWasm::Unknown { starts_with } => format!(
                "of an unknown kind: it starts with {starts_with}, not with `\\0asm` (00 61 73 6d)"
            ),
        };
        format!("{file} is not WebAssembly: it is {what}")
    }

    /// What the user can do about it.
    pub fn help(&self) -> &'static str {
        match self {
            NotWasm::TomlManifest => {
                "this is a TOML manifest; name it `*.toml` (nanoproc tells a manifest from a component by its name)"
            }
            NotWasm::NativeExecutable { .. } => {
                "this is a native executable; build for wasm32-wasip2 (`cargo build --target wasm32-wasip2`)"
            }
            NotWasm::Wat { .. } => {
                "compile the text to a binary first (`wasm-tools parse FILE.wat -o FILE.wasm`)"
            }
            NotWasm::Archive { .. } => "unpack it and give nanoproc the .wasm file inside",
            NotWasm::Script { .. } => {
                "give nanoproc the component the script would run, or build one for wasm32-wasip2"
            }
            NotWasm::Empty | NotWasm::TruncatedWasm => {
                "was its build interrupted? build it again for wasm32-wasip2"
            }
            NotWasm::WasmVersion { .. } => {
                "rebuild it with a current toolchain (Rust's wasm32-wasip2 target, componentize-js, componentize-py, wasm-tools)"
            }
            _ => {
                "nanoproc runs WebAssembly components (build for wasm32-wasip2) and WASI preview 1 modules"
            }
        }
    }
}

/// What a file is, from its first bytes (`head`, at most [`RECOGNIZE_BYTES`] are
/// looked at). `complete` says `head` is the whole file, so that a manifest can be
/// parsed whole; otherwise only up to its last full line.
pub fn recognize(head: &[u8], complete: bool) -> FileKind {
    let complete = complete && head.len() <= RECOGNIZE_BYTES;
    let head = &head[..head.len().min(RECOGNIZE_BYTES)];
    let starts = |magic: &[u8]| head.starts_with(magic);
    let native = |format| FileKind::NotWasm(NotWasm::NativeExecutable { format });
    let archive = |format| FileKind::NotWasm(NotWasm::Archive { format });
    let image = |format| FileKind::NotWasm(NotWasm::Image { format });
    if head.is_empty() {
        return FileKind::NotWasm(NotWasm::Empty);
    }
    if starts(&WASM_MAGIC) {
        let Some(version) = head.get(4..8) else {
            return FileKind::NotWasm(NotWasm::TruncatedWasm);
        };
        return match <[u8; 4]>::try_from(version) {
            Ok(COMPONENT_VERSION) => FileKind::Component,
            Ok(CORE_MODULE_VERSION) => FileKind::CoreModule,
            Ok(version) => FileKind::NotWasm(NotWasm::WasmVersion { version }),
            Err(_) => FileKind::NotWasm(NotWasm::TruncatedWasm),
        };
    }
    if starts(b"\x7fELF") {
        return native("ELF");
    }
    // Mach-O, 32 and 64 bits, either byte order.
    if [
        [0xfe, 0xed, 0xfa, 0xce],
        [0xfe, 0xed, 0xfa, 0xcf],
        [0xce, 0xfa, 0xed, 0xfe],
        [0xcf, 0xfa, 0xed, 0xfe],
    ]
    .iter()
    .any(|m| starts(m))
    {
        return native("Mach-O");
    }
    if starts(&[0xca, 0xfe, 0xba, 0xbe]) {
        // A universal Mach-O binary counts its architectures here (a handful); a
        // Java class file has its format version (45 and up).
        let count = head
            .get(4..8)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]));
        return match count {
            Some(n) if n < 30 => native("Mach-O"),
            _ => FileKind::NotWasm(NotWasm::JavaClass),
        };
    }
    if starts(b"MZ") {
        return native("PE");
    }
    if starts(b"PK\x03\x04") || starts(b"PK\x05\x06") {
        return archive("zip");
    }
    if starts(&[0x1f, 0x8b]) {
        return archive("gzip");
    }
    if starts(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        return archive("xz");
    }
    if starts(&[0x28, 0xb5, 0x2f, 0xfd]) {
        return archive("zstd");
    }
    if starts(b"BZh") {
        return archive("bzip2");
    }
    if head.get(257..262) == Some(b"ustar") {
        return archive("tar");
    }
    if starts(b"\x89PNG\r\n\x1a\n") {
        return image("PNG");
    }
    if starts(&[0xff, 0xd8, 0xff]) {
        return image("JPEG");
    }
    if starts(b"GIF87a") || starts(b"GIF89a") {
        return image("GIF");
    }
    if starts(b"RIFF") && head.get(8..12) == Some(b"WEBP") {
        return image("WebP");
    }
    if starts(b"%PDF-") {
        return FileKind::NotWasm(NotWasm::Pdf);
    }
    if starts(b"#!") {
        return FileKind::NotWasm(NotWasm::Script {
            interpreter: interpreter(head),
        });
    }
    if let Some(text) = as_text(head, complete) {
        return FileKind::NotWasm(recognize_text(text, complete));
    }
    FileKind::NotWasm(NotWasm::Unknown {
        starts_with: hex_bytes(&head[..head.len().min(8)]),
    })
}

/// The interpreter a `#!` line names, if it is short printable ASCII: it is shown
/// to the user, and the file's bytes are anyone's.
fn interpreter(head: &[u8]) -> Option<String> {
    let line = head[2..].split(|&b| b == b'\n').next()?;
    let line = std::str::from_utf8(line).ok()?.trim();
    let ok = !line.is_empty()
        && line.len() <= 64
        && line.chars().all(|c| c.is_ascii_graphic() || c == ' ');
    ok.then(|| line.to_string())
}

/// `head` as text, if it is UTF-8 without NUL bytes (a character cut at the end of
/// an incomplete head is dropped).
fn as_text(head: &[u8], complete: bool) -> Option<&str> {
    let text = match std::str::from_utf8(head) {
        Ok(t) => t,
        Err(e) if !complete && e.error_len().is_none() => {
            // A character cut by the end of what was read.
            std::str::from_utf8(&head[..e.valid_up_to()]).ok()?
        }
        Err(_) => return None,
    };
    (!text.contains('\0')).then_some(text)
}

fn recognize_text(text: &str, complete: bool) -> NotWasm {
    let body = text.trim_start_matches('\u{feff}');
    let code = skip_wat_comments(body);
    if code.starts_with("(module") {
        return NotWasm::Wat { component: false };
    }
    if code.starts_with("(component") {
        return NotWasm::Wat { component: true };
    }
    // An incomplete head is parsed up to its last full line: a line cut in the
    // middle would not parse, though the whole file would.
    let parsed = if complete {
        body
    } else {
        match body.rfind('\n') {
            Some(end) => &body[..end],
            None => return NotWasm::Text,
        }
    };
    match toml::from_str::<toml::Table>(parsed) {
        Ok(table) if table.contains_key("app") || table.contains_key("nanoprocess") => {
            NotWasm::TomlManifest
        }
        Ok(table) if !table.is_empty() => NotWasm::Toml,
        _ => NotWasm::Text,
    }
}

/// `text` after leading whitespace and WAT comments (`;; line`, `(; block ;)`).
fn skip_wat_comments(mut text: &str) -> &str {
    loop {
        text = text.trim_start();
        if let Some(rest) = text.strip_prefix(";;") {
            text = rest.split_once('\n').map_or("", |(_, after)| after);
        } else if let Some(rest) = text.strip_prefix("(;") {
            text = rest.split_once(";)").map_or("", |(_, after)| after);
        } else {
            return text;
        }
    }
}

/// `00 61 73 6d`, for messages about headers.
pub(crate) fn hex_bytes(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// What a WebAssembly file nanoproc can inspect is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// A component: WASI 0.2, 0.3 or both, or no WASI at all.
    Component,
    /// A core module importing `wasi_snapshot_preview1`: nanoproc adapts it into
    /// a component, and it can only be a root.
    Preview1Module,
    /// A core module importing no WASI preview 1 function.
    CoreModule,
}

/// The capability surface of a WebAssembly file (see the module documentation for
/// its JSON form).
#[derive(Clone, Debug, Serialize)]
pub struct Surface {
    pub kind: Kind,
    /// The WASI generations its imports and exports name: `0.2`, `0.3` (a real
    /// 0.3 component has both), `preview1`; empty if it uses no WASI.
    pub wasi: Vec<String>,
    /// It can be a root: it exports `wasi:cli/run` (a component) or `_start` (a
    /// core module).
    pub command: bool,
    /// Its size in bytes.
    pub size: u64,
    /// `sha256:<hex>`, the form of a manifest's `digest` pin.
    pub digest: String,
    /// The producers sections of the file and of every module and component
    /// nested in it, each entry once, in the order found; at most
    /// [`MAX_PRODUCERS`].
    pub producers: Vec<Producer>,
    /// Producers entries found after [`MAX_PRODUCERS`] distinct ones were kept,
    /// not kept (each counted every time it appears).
    pub producers_not_kept: u64,
    pub imports: Vec<Import>,
    pub exports: Vec<Export>,
    /// The capability families its imports can ask for, one entry each: the
    /// grantable ones in nanoproc's order, then `io` (which needs no grant), then
    /// those nanoproc cannot grant.
    pub families: Vec<FamilyUse>,
    /// What else the user should know about it.
    pub notes: Vec<String>,
}

/// One entry of a producers section: `field` is `language`, `processed-by` or
/// `sdk`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct Producer {
    pub field: String,
    pub name: String,
    pub version: String,
}

/// Who can satisfy an import.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Provider {
    /// nanoproc, through a capability family (which may still have to be granted).
    Wasi,
    /// A dependency, named in the manifest's `deps`.
    Dependency,
    /// Nothing: a WASI interface or version nanoproc does not serve, or an import
    /// that is not an interface.
    Unavailable,
}

/// One import.
#[derive(Clone, Debug, Serialize)]
pub struct Import {
    /// The name the file imports it by: `wasi:clocks/monotonic-clock@0.2.12`, a
    /// plain name, or a preview 1 function such as `fd_write`.
    pub name: String,
    /// The WIT interface it is, without version (for a named import, the one it
    /// implements), or the core module it comes from (`wasi_snapshot_preview1`);
    /// `None` for a component's function or type import.
    pub interface: Option<String>,
    pub version: Option<String>,
    /// `interface`, `function`, `type`, or a core import's kind (`func`, `memory`,
    /// `table`, `global`, `tag`).
    pub item: String,
    /// The functions of an imported interface, as WIT names them.
    pub functions: Vec<String>,
    pub provider: Provider,
    /// The families it belongs to (usually one; a preview 1 `fd_write` is
    /// `filesystem` and `stdio`).
    pub families: Vec<String>,
    /// The grant keys that grant it, as a manifest's `grants` names them.
    pub grant_keys: Vec<String>,
    /// Whether nanoproc can link it at the version imported.
    pub served: bool,
    /// Why not, if not.
    pub problem: Option<String>,
}

/// One export.
#[derive(Clone, Debug, Serialize)]
pub struct Export {
    pub name: String,
    /// `interface`, `function`, `type`, or a core export's kind.
    pub item: String,
    /// The functions of an exported interface.
    pub functions: Vec<String>,
}

/// One capability family the file can ask for.
#[derive(Clone, Debug, Serialize)]
pub struct FamilyUse {
    /// The family's name (`nanoproc_caps`'s, e.g. `filesystem`, `clocks`), `io`,
    /// or for a WASI package nanoproc cannot grant, its name (`keyvalue`).
    pub family: String,
    /// Whether nanoproc can grant it (`io` needs no grant and counts as grantable).
    pub grantable: bool,
    /// The imports behind it, as the file names them.
    pub interfaces: Vec<String>,
    /// The grant keys that grant those imports.
    pub grant_keys: Vec<String>,
}

/// Why a file has no surface to show.
#[derive(Debug)]
pub enum InspectError {
    /// It could not be read: missing, not a regular file, too large.
    Read { why: String, help: Option<String> },
    /// It is not WebAssembly nanoproc runs; what it is instead.
    NotWasm(NotWasm),
    /// It has a WebAssembly header but does not validate or decode.
    Invalid { kind: FileKind, why: String },
}

impl InspectError {
    /// What to tell the user about `file`, and what they can do.
    pub fn explain(&self, file: &str) -> (String, Option<String>) {
        match self {
            InspectError::Read { why, help } => {
                (format!("cannot read {file}: {why}"), help.clone())
            }
            InspectError::NotWasm(what) => (what.explain(file), Some(what.help().to_string())),
            InspectError::Invalid { kind, why } => {
                let what = match kind {
                    FileKind::CoreModule => "a core module",
                    _ => "a component",
                };
                (
                    format!("{file} has the header of {what} but is not a valid one: {why}"),
                    // A file cut short by an interrupted build, or one made to break
                    // readers (too deeply nested, say): nanoproc runs neither.
                    Some(
                        "build it again from its sources; nanoproc cannot run it as it is"
                            .to_string(),
                    ),
                )
            }
        }
    }
}

/// Reads a file as a check does (a regular file within `max_size` bytes, read once
/// through one descriptor) and inspects it.
pub fn inspect_file(path: &Path, max_size: u64) -> Result<Surface, InspectError> {
    use crate::plan::read::{Unreadable, open_component};
    let bytes = open_component(path, max_size)
        .and_then(|(_, opened)| opened.read())
        .map_err(|e| match e {
            Unreadable::Read { why, help } => InspectError::Read {
                why,
                help: help.map(str::to_string),
            },
            Unreadable::NotWasm(what) => InspectError::NotWasm(what),
        })?;
    inspect(&bytes)
}

/// The capability surface of a file's bytes.
pub fn inspect(bytes: &[u8]) -> Result<Surface, InspectError> {
    let kind = match recognize(bytes, true) {
        FileKind::NotWasm(what) => return Err(InspectError::NotWasm(what)),
        kind => kind,
    };
    let invalid = |why: String| InspectError::Invalid {
        kind: kind.clone(),
        why,
    };
    let digest: [u8; 32] = <sha2::Sha256 as sha2::Digest>::digest(bytes).into();
    // One walk over every section, nested ones included, before anything else
    // reads the file: it refuses a file nesting more than wasmtime would load.
    let Sections {
        producers,
        producers_not_kept,
    } = sections(bytes).map_err(invalid)?;
    let (kind, imports, exports, command, mut notes) = match kind {
        FileKind::Component => {
            let (imports, exports) = component_world(bytes).map_err(invalid)?;
            let command = exports
                .iter()
                .any(|e| split_version(&e.name).0 == "wasi:cli/run" && e.item == "interface");
            (Kind::Component, imports, exports, command, Vec::new())
        }
        _ => core_module(bytes).map_err(invalid)?,
    };
    let mut wasi: Vec<String> = Vec::new();
    let mut generation = |g: &str| {
        if !wasi.iter().any(|w| w == g) {
            wasi.push(g.to_string());
        }
    };
    if kind == Kind::Preview1Module {
        generation("preview1");
    }
    for name in imports
        .iter()
        .filter(|i| i.provider != Provider::Dependency)
        .filter_map(|i| i.interface.as_deref().zip(i.version.as_deref()))
        .chain(
            exports
                .iter()
                .map(|e| split_version(&e.name))
                .filter_map(|(n, v)| v.map(|v| (n, v))),
        )
    {
        let (interface, version) = name;
        if interface.starts_with("wasi:") {
            if version.starts_with("0.2.") {
                generation("0.2");
            } else if version.starts_with("0.3.") {
                generation("0.3");
            }
        }
    }
    wasi.sort();
    let families = families_of(&imports);
    if kind == Kind::Preview1Module {
        notes.push(
            "a WASI preview 1 module: nanoproc adapts it into a component, and it can only be a root (a dependency must be a component exporting what its parent imports)".to_string(),
        );
    }
    if imports.iter().any(|i| i.provider == Provider::Unavailable) {
        notes.push(
            "some imports cannot be served (see their problems): nanoproc would refuse to run it"
                .to_string(),
        );
    }
    Ok(Surface {
        kind,
        wasi,
        command,
        size: bytes.len() as u64,
        digest: format!("sha256:{}", hex::encode(digest)),
        producers,
        producers_not_kept,
        imports,
        exports,
        families,
        notes,
    })
}

/// What one walk over a file's sections found.
struct Sections {
    /// The producers entries kept, and how many were not (see [`Surface`]).
    producers: Vec<Producer>,
    producers_not_kept: u64,
}

/// Walks every section of the file and of everything nested in it (the parser
/// keeps its own stack: no recursion), collecting the producers sections, and
/// refuses a file holding more than [`MAX_MODULES_AND_COMPONENTS`] modules and
/// components before it is decoded any further.
fn sections(bytes: &[u8]) -> Result<Sections, String> {
    use wasmparser::{KnownCustom, Parser, Payload};
    let mut found = Sections {
        producers: Vec::new(),
        producers_not_kept: 0,
    };
    let mut seen: HashSet<Producer> = HashSet::new();
    let (mut headers, mut depth, mut deepest) = (0usize, 0usize, 0usize);
    for payload in Parser::new(0).parse_all(bytes) {
        let section = match payload.map_err(|e| e.to_string())? {
            // Every module and component, the file itself included, starts with
            // its header and ends with an `End`.
            Payload::Version { .. } => {
                headers += 1;
                depth += 1;
                deepest = deepest.max(depth);
                if headers > MAX_MODULES_AND_COMPONENTS {
                    return Err(format!(
                        "it holds more than {MAX_MODULES_AND_COMPONENTS} modules and components (nested {deepest} deep so far), more than wasmtime loads"
                    ));
                }
                continue;
            }
            Payload::End(_) => {
                depth = depth.saturating_sub(1);
                continue;
            }
            Payload::CustomSection(section) => section,
            _ => continue,
        };
        let KnownCustom::Producers(reader) = section.as_known() else {
            continue;
        };
        for field in reader {
            let field = field.map_err(|e| e.to_string())?;
            for value in field.values {
                let value = value.map_err(|e| e.to_string())?;
                let p = Producer {
                    field: field.name.to_string(),
                    name: value.name.to_string(),
                    version: value.version.to_string(),
                };
                if seen.contains(&p) {
                    continue;
                }
                if found.producers.len() < MAX_PRODUCERS {
                    seen.insert(p.clone());
                    found.producers.push(p);
                } else {
                    found.producers_not_kept += 1;
                }
            }
        }
    }
    Ok(found)
}

/// `wasi:clocks/wall-clock@0.2.12` → (`wasi:clocks/wall-clock`, `Some("0.2.12")`).
fn split_version(name: &str) -> (&str, Option<&str>) {
    crate::interfaces::split_version(name)
}

/// A component's imports and exports, from its WIT world.
fn component_world(bytes: &[u8]) -> Result<(Vec<Import>, Vec<Export>), String> {
    use wit_parser::decoding::DecodedWasm;
    // wit-parser validates the component as it decodes it. It is a dependency
    // that was not written for hostile input: should it panic on some file, the
    // file is refused as invalid rather than taking nanoproc down.
    let decoded = std::panic::catch_unwind(|| wit_parser::decoding::decode(bytes))
        .map_err(|_| "its types could not be decoded".to_string())?
        .map_err(|e| format!("{e:#}"))?;
    let (resolve, world) = match decoded {
        DecodedWasm::Component(resolve, world) => (resolve, world),
        DecodedWasm::WitPackage(..) => {
            return Err(
                "it is a WIT package encoded as WebAssembly: it describes interfaces and runs nothing"
                    .to_string(),
            );
        }
    };
    let world = &resolve.worlds[world];
    let imports = world
        .imports
        .iter()
        .map(|(key, item)| component_import(&resolve, key, item))
        .collect();
    let exports = world
        .exports
        .iter()
        .map(|(key, item)| {
            let (name, _, _, item, functions) = world_item(&resolve, key, item);
            Export {
                name,
                item,
                functions,
            }
        })
        .collect();
    Ok((imports, exports))
}

/// An item of a world: the name it is imported or exported by, the interface it
/// is and its version, what it is, and its functions.
fn world_item(
    resolve: &wit_parser::Resolve,
    key: &wit_parser::WorldKey,
    item: &wit_parser::WorldItem,
) -> (String, Option<String>, Option<String>, String, Vec<String>) {
    use wit_parser::{WorldItem, WorldKey};
    let (interface, version, functions) = match item {
        WorldItem::Interface { id, .. } => {
            let iface = &resolve.interfaces[*id];
            let functions = iface.functions.keys().cloned().collect();
            // An interface of a package: `ns:pkg/name` and the package's version.
            match (iface.package, iface.name.as_deref()) {
                (Some(pkg), Some(name)) => {
                    let p = &resolve.packages[pkg].name;
                    (
                        Some(format!("{}:{}/{name}", p.namespace, p.name)),
                        p.version.as_ref().map(|v| v.to_string()),
                        functions,
                    )
                }
                _ => (None, None, functions),
            }
        }
        WorldItem::Function(_) | WorldItem::Type { .. } => (None, None, Vec::new()),
    };
    let kind = match item {
        WorldItem::Interface { .. } => "interface",
        WorldItem::Function(_) => "function",
        WorldItem::Type { .. } => "type",
    };
    let name = match key {
        WorldKey::Name(name) => name.clone(),
        WorldKey::Interface(_) => match (&interface, &version) {
            (Some(i), Some(v)) => format!("{i}@{v}"),
            (Some(i), None) => i.clone(),
            (None, _) => "(an unnamed interface)".to_string(),
        },
    };
    (name, interface, version, kind.to_string(), functions)
}

fn component_import(
    resolve: &wit_parser::Resolve,
    key: &wit_parser::WorldKey,
    item: &wit_parser::WorldItem,
) -> Import {
    let (name, interface, version, item, functions) = world_item(resolve, key, item);
    let mut import = Import {
        name,
        interface,
        version,
        item,
        functions,
        provider: Provider::Unavailable,
        families: Vec::new(),
        grant_keys: Vec::new(),
        served: false,
        problem: None,
    };
    let Some(interface) = import
        .interface
        .clone()
        .filter(|_| import.item == "interface")
    else {
        import.problem = Some(format!(
            "it imports a {} `{}`, not an interface; nanoproc links interfaces only",
            import.item, import.name
        ));
        return import;
    };
    let Some(package) = interface.strip_prefix("wasi:") else {
        import.provider = Provider::Dependency;
        import.served = true;
        return import;
    };
    let matches = matching(&interface, |(_, surface, _)| surface);
    if matches.is_empty() {
        // A WASI package nanoproc has no family for (`wasi:keyvalue`).
        let package = package.split('/').next().unwrap_or(package).to_string();
        import.problem = Some(format!(
            "nanoproc cannot grant wasi:{package} (no family serves it)"
        ));
        import.families.push(package);
        return import;
    }
    for (family, keys) in matches {
        import.families.push(family.to_string());
        push_keys(&mut import.grant_keys, keys);
    }
    let versioned = match &import.version {
        Some(v) => format!("{interface}@{v}"),
        None => interface.clone(),
    };
    if families::provides(&versioned) {
        import.provider = Provider::Wasi;
        import.served = true;
    } else {
        import.problem = Some(match families::served_versions(&interface) {
            Some(served) => format!(
                "nanoproc serves {interface} at {served} only, not at {}",
                import.version.as_deref().unwrap_or("no version")
            ),
            None => format!("nanoproc does not serve {interface}"),
        });
    }
    import
}

/// The families whose surface (`pick` chooses `SURFACE` or `PREVIEW1`) names
/// `name`: per family, the entry naming it exactly, else its longest prefix entry
/// (one ending in `/`, `-` or `_`).
fn matching(
    name: &str,
    pick: impl Fn(&(&'static str, families::Surface, families::Surface)) -> families::Surface,
) -> Vec<(&'static str, &'static [&'static str])> {
    let mut found = Vec::new();
    for entry in families::SURFACES {
        let surface = pick(entry);
        let exact = surface.iter().find(|(n, _)| *n == name);
        let prefix = surface
            .iter()
            .filter(|(n, _)| n.ends_with(['/', '-', '_']) && name.starts_with(n))
            .max_by_key(|(n, _)| n.len());
        if let Some((_, keys)) = exact.or(prefix) {
            found.push((entry.0, *keys));
        }
    }
    found
}

fn push_keys(into: &mut Vec<String>, keys: &[&str]) {
    for key in keys {
        if !into.iter().any(|k| k == key) {
            into.push(key.to_string());
        }
    }
}

/// A core module's imports and exports, validated.
#[allow(clippy::type_complexity)]
fn core_module(
    bytes: &[u8],
) -> Result<(Kind, Vec<Import>, Vec<Export>, bool, Vec<String>), String> {
    use wasmparser::{Parser, Payload, TypeRef, Validator, WasmFeatures};
    Validator::new_with_features(WasmFeatures::all())
        .validate_all(bytes)
        .map_err(|e| e.to_string())?;
    let mut imports = Vec::new();
    let mut exports = Vec::new();
    for payload in Parser::new(0).parse_all(bytes) {
        match payload.map_err(|e| e.to_string())? {
            Payload::ImportSection(reader) => {
                for import in reader.into_imports() {
                    let import = import.map_err(|e| e.to_string())?;
                    let item = match import.ty {
                        TypeRef::Func(_) | TypeRef::FuncExact(_) => "func",
                        TypeRef::Table(_) => "table",
                        TypeRef::Memory(_) => "memory",
                        TypeRef::Global(_) => "global",
                        TypeRef::Tag(_) => "tag",
                    };
                    imports.push(core_import(import.module, import.name, item));
                }
            }
            Payload::ExportSection(reader) => {
                for export in reader {
                    let export = export.map_err(|e| e.to_string())?;
                    exports.push(Export {
                        name: export.name.to_string(),
                        item: format!("{:?}", export.kind).to_lowercase(),
                        functions: Vec::new(),
                    });
                }
            }
            // Nested modules exist only in components.
            _ => {}
        }
    }
    let preview1 = imports
        .iter()
        .any(|i| i.interface.as_deref() == Some(PREVIEW1_MODULE));
    let command = exports.iter().any(|e| e.name == "_start");
    let mut notes = Vec::new();
    if preview1
        && imports
            .iter()
            .any(|i| i.name == "fd_write" || i.name == "fd_read")
    {
        notes.push(
            "fd_read and fd_write serve stdio (descriptors 0 to 2) and files alike: which this module uses is known only when it runs".to_string(),
        );
    }
    let kind = if preview1 {
        Kind::Preview1Module
    } else {
        Kind::CoreModule
    };
    Ok((kind, imports, exports, command, notes))
}

fn core_import(module: &str, name: &str, item: &str) -> Import {
    let mut import = Import {
        name: name.to_string(),
        interface: Some(module.to_string()),
        version: None,
        item: item.to_string(),
        functions: Vec::new(),
        provider: Provider::Unavailable,
        families: Vec::new(),
        grant_keys: Vec::new(),
        served: false,
        problem: None,
    };
    if module != PREVIEW1_MODULE {
        import.problem = Some(format!(
            "a core module's imports other than {PREVIEW1_MODULE} cannot be satisfied; build a component to have dependencies"
        ));
        return import;
    }
    let matches = matching(name, |(_, _, preview1)| preview1);
    if matches.is_empty() {
        import.problem = Some(format!(
            "{PREVIEW1_MODULE} has no function `{name}` nanoproc knows"
        ));
        return import;
    }
    for (family, keys) in matches {
        import.families.push(family.to_string());
        push_keys(&mut import.grant_keys, keys);
    }
    import.provider = Provider::Wasi;
    import.served = true;
    import
}

/// The families behind a list of imports, in the order of [`Surface::families`].
///
/// Linear in the imports: a file may import a hundred thousand names, so each
/// family and each family's names are found by hashing, not by a search.
fn families_of(imports: &[Import]) -> Vec<FamilyUse> {
    let mut uses: Vec<FamilyUse> = Vec::new();
    // A family's index in `uses`, and the names already listed under each.
    let mut index: HashMap<&str, usize> = HashMap::new();
    let mut listed: Vec<HashSet<&str>> = Vec::new();
    for import in imports
        .iter()
        .filter(|i| i.provider != Provider::Dependency)
    {
        for family in &import.families {
            let p = *index.entry(family.as_str()).or_insert_with(|| {
                uses.push(FamilyUse {
                    family: family.clone(),
                    grantable: families::SURFACES.iter().any(|(f, _, _)| f == family),
                    interfaces: Vec::new(),
                    grant_keys: Vec::new(),
                });
                listed.push(HashSet::new());
                uses.len() - 1
            });
            let entry = &mut uses[p];
            if listed[p].insert(import.name.as_str()) {
                entry.interfaces.push(import.name.clone());
            }
            let keys: Vec<&str> = import.grant_keys.iter().map(String::as_str).collect();
            // A preview 1 function of two families (fd_write) has the keys of both;
            // each family lists only its own.
            let own = own_keys(family, &keys);
            push_keys(&mut entry.grant_keys, &own);
        }
    }
    let rank = |u: &FamilyUse| match families::SURFACES
        .iter()
        .position(|(f, _, _)| *f == u.family)
    {
        // io first among families::SURFACES but shown after the grantable ones.
        Some(0) => (1, 0),
        Some(p) => (0, p),
        None => (2, 0),
    };
    uses.sort_by(|a, b| rank(a).cmp(&rank(b)).then_with(|| a.family.cmp(&b.family)));
    uses
}

/// The keys among `keys` that belong to `family`'s surface.
fn own_keys<'a>(family: &str, keys: &[&'a str]) -> Vec<&'a str> {
    let Some((_, surface, preview1)) = families::SURFACES.iter().find(|(f, _, _)| *f == family)
    else {
        return Vec::new();
    };
    keys.iter()
        .copied()
        .filter(|k| {
            surface
                .iter()
                .chain(preview1.iter())
                .any(|(_, ks)| ks.contains(k))
        })
        .collect()
}

/// The message for a file given where a manifest was expected, when it is clearly
/// something else (a component, an image): `None` for text, whose own TOML errors
/// (with their lines) say more.
pub(crate) fn not_a_manifest(path: &Path) -> Option<String> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    // Only a regular file is looked into, and opened without waiting: opening a
    // FIFO swapped in after the check would otherwise wait for a writer.
    if !std::fs::metadata(path).ok()?.is_file() {
        return None;
    }
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .ok()?;
    if !file.metadata().ok()?.is_file() {
        return None;
    }
    let mut head = Vec::new();
    (&file)
        .take(RECOGNIZE_BYTES as u64 + 1)
        .read_to_end(&mut head)
        .ok()?;
    let complete = head.len() <= RECOGNIZE_BYTES;
    let shown = path.display().to_string();
    match recognize(&head, complete) {
        FileKind::Component | FileKind::CoreModule => {
            let what = if head.get(4..8) == Some(&COMPONENT_VERSION[..]) {
                "a WebAssembly component"
            } else {
                "a WebAssembly module"
            };
            Some(format!(
                "{shown} is {what}, not a manifest: run it with `nanoproc run {shown}`, or name it in a manifest's `component` key"
            ))
        }
        FileKind::NotWasm(NotWasm::TomlManifest | NotWasm::Toml | NotWasm::Text) => None,
        FileKind::NotWasm(NotWasm::Empty) => None,
        FileKind::NotWasm(other) => Some(format!(
            "{} (a manifest is TOML)",
            other
                .explain(&shown)
                .replace(" is not WebAssembly:", " is not a manifest:")
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn not_wasm(head: &[u8], complete: bool) -> NotWasm {
        match recognize(head, complete) {
            FileKind::NotWasm(what) => what,
            other => panic!(
                "{:?} recognised as {other:?}",
                String::from_utf8_lossy(head)
            ),
        }
    }

    #[test]
    fn files_are_recognised_by_their_first_bytes() {
        assert_eq!(recognize(b"\0asm\x0d\0\x01\0", true), FileKind::Component);
        assert_eq!(recognize(b"\0asm\x01\0\0\0", true), FileKind::CoreModule);
        assert_eq!(
            not_wasm(b"\0asm\x0a\0\x01\0", true),
            NotWasm::WasmVersion {
                version: [0x0a, 0, 1, 0]
            }
        );
        assert_eq!(not_wasm(b"\0asm\x01", true), NotWasm::TruncatedWasm);
        assert_eq!(not_wasm(b"", true), NotWasm::Empty);
        assert_eq!(
            not_wasm(b"\x7fELF\x02\x01\x01\0", true),
            NotWasm::NativeExecutable { format: "ELF" }
        );
        assert_eq!(
            not_wasm(b"MZ\x90\0", true),
            NotWasm::NativeExecutable { format: "PE" }
        );
        assert_eq!(
            not_wasm(&[0xcf, 0xfa, 0xed, 0xfe, 7, 0, 0, 1], true),
            NotWasm::NativeExecutable { format: "Mach-O" }
        );
        assert_eq!(
            not_wasm(&[0xca, 0xfe, 0xba, 0xbe, 0, 0, 0, 2], true),
            NotWasm::NativeExecutable { format: "Mach-O" }
        );
        assert_eq!(
            not_wasm(&[0xca, 0xfe, 0xba, 0xbe, 0, 0, 0, 61], true),
            NotWasm::JavaClass
        );
        assert_eq!(
            not_wasm(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR", true),
            NotWasm::Image { format: "PNG" }
        );
        assert_eq!(
            not_wasm(b"PK\x03\x04rest", true),
            NotWasm::Archive { format: "zip" }
        );
        assert_eq!(
            not_wasm(&[0x1f, 0x8b, 8, 0], true),
            NotWasm::Archive { format: "gzip" }
        );
        let mut tar = vec![b'x'; 512];
        tar[257..262].copy_from_slice(b"ustar");
        assert_eq!(not_wasm(&tar, true), NotWasm::Archive { format: "tar" });
        assert_eq!(
            not_wasm(b"#!/bin/sh\necho hi\n", true),
            NotWasm::Script {
                interpreter: Some("/bin/sh".into())
            }
        );
        // A terminal escape in the interpreter is not repeated to the user.
        assert_eq!(
            not_wasm(b"#!/bin/\x1b[2Jsh\n", true),
            NotWasm::Script { interpreter: None }
        );
        assert_eq!(
            not_wasm(b";; a module\n  (module (func))", true),
            NotWasm::Wat { component: false }
        );
        assert_eq!(
            not_wasm(b"(; c ;) (component)", true),
            NotWasm::Wat { component: true }
        );
        assert_eq!(
            not_wasm(b"[app]\nroot = \"a\"\n", true),
            NotWasm::TomlManifest
        );
        assert_eq!(not_wasm(b"[package]\nname = \"x\"\n", true), NotWasm::Toml);
        assert_eq!(not_wasm(b"just some words\n", true), NotWasm::Text);
        assert_eq!(
            not_wasm(&[0, 1, 2, 3, 4, 5, 6, 7, 8, 9], true),
            NotWasm::Unknown {
                starts_with: "00 01 02 03 04 05 06 07".into()
            }
        );
    }

    #[test]
    fn a_long_manifest_is_recognised_from_its_head() {
        // Cut in the middle of a line and of a character: parsed up to the last
        // full line.
        let mut text = String::from("[app]\nroot = \"a\"\n");
        while text.len() < RECOGNIZE_BYTES + 100 {
            text.push_str("# é comment line that goes on\n");
        }
        let head = &text.as_bytes()[..RECOGNIZE_BYTES];
        assert_eq!(not_wasm(head, false), NotWasm::TomlManifest);
        // Deeply nested TOML is refused by the parser, not a stack overflow.
        let deep = format!("a = {}", "[".repeat(RECOGNIZE_BYTES - 10));
        assert_eq!(not_wasm(deep.as_bytes(), true), NotWasm::Text);
    }

    #[test]
    fn explanations_say_what_the_file_is_and_what_to_do() {
        let png = NotWasm::Image { format: "PNG" };
        assert_eq!(
            png.explain("photo.png"),
            "photo.png is not WebAssembly: it is a PNG image"
        );
        assert!(NotWasm::TomlManifest.help().contains("name it `*.toml`"));
        assert!(
            NotWasm::NativeExecutable { format: "ELF" }
                .help()
                .contains("build for wasm32-wasip2")
        );
    }

    /// A real component with the world `w` of `wit`.
    fn component(wit: &str) -> Vec<u8> {
        crate::wit_types::component_of_world(wit)
    }

    #[test]
    fn a_component_of_both_wasi_generations_and_of_ungrantable_packages() {
        let bytes = component(
            r#"
            package test:app;

            interface pricing { price: func(item: string) -> u32; }

            world w {
                import wasi:clocks/monotonic-clock@0.3.0;
                import wasi:clocks/wall-clock@0.2.3;
                import wasi:http/outgoing-handler@0.2.10;
                import wasi:keyvalue/store@0.2.0;
                import pricing;
                export pricing;
            }

            package wasi:clocks@0.3.0 { interface monotonic-clock { now: func() -> u64; } }
            package wasi:clocks@0.2.3 { interface wall-clock { now: func() -> u64; } }
            package wasi:http@0.2.10 { interface outgoing-handler { handle: func(); } }
            package wasi:keyvalue@0.2.0 { interface store { get: func(key: string) -> string; } }
            "#,
        );
        let s = inspect(&bytes).unwrap();
        assert_eq!(s.kind, Kind::Component);
        assert_eq!(s.wasi, ["0.2", "0.3"]);
        assert!(!s.command);
        let import = |name: &str| s.imports.iter().find(|i| i.name == name).unwrap();
        let monotonic = import("wasi:clocks/monotonic-clock@0.3.0");
        assert_eq!(monotonic.grant_keys, ["monotonic-clock"]);
        // Both generations are served, each through the same guard.
        assert!(monotonic.served && monotonic.problem.is_none());
        assert_eq!(monotonic.provider, Provider::Wasi);
        let wall = import("wasi:clocks/wall-clock@0.2.3");
        assert!(wall.served && wall.problem.is_none());
        assert_eq!(wall.provider, Provider::Wasi);
        assert_eq!(wall.functions, ["now"]);
        let http = import("wasi:http/outgoing-handler@0.2.10");
        assert_eq!(http.families, ["http"]);
        assert_eq!(http.grant_keys, ["http"]);
        assert!(http.served && http.problem.is_none());
        let keyvalue = import("wasi:keyvalue/store@0.2.0");
        assert_eq!(keyvalue.provider, Provider::Unavailable);
        assert_eq!(
            keyvalue.problem.as_deref(),
            Some("nanoproc cannot grant wasi:keyvalue (no family serves it)")
        );
        let pricing = import("test:app/pricing");
        assert_eq!(pricing.provider, Provider::Dependency);
        assert!(pricing.families.is_empty() && pricing.grant_keys.is_empty());
        let families: Vec<(&str, bool)> = s
            .families
            .iter()
            .map(|f| (f.family.as_str(), f.grantable))
            .collect();
        assert_eq!(
            families,
            [("clocks", true), ("http", true), ("keyvalue", false)]
        );
        assert_eq!(s.families[0].grant_keys, ["monotonic-clock", "wall-clock"]);
        assert_eq!(s.exports.len(), 1);
        assert_eq!(s.exports[0].name, "test:app/pricing");
        assert_eq!(s.exports[0].functions, ["price"]);
        assert!(s.digest.starts_with("sha256:") && s.digest.len() == 7 + 64);
        // Serialised with the documented field names.
        let json = serde_json::to_value(&s).unwrap();
        let mut fields: Vec<&str> = json
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        fields.sort();
        assert_eq!(
            fields,
            [
                "command",
                "digest",
                "exports",
                "families",
                "imports",
                "kind",
                "notes",
                "producers",
                "producers_not_kept",
                "size",
                "wasi"
            ]
        );
        assert_eq!(json["kind"], "component");
        let providers: Vec<&str> = json["imports"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["provider"].as_str().unwrap())
            .collect();
        assert_eq!(
            providers,
            ["wasi", "wasi", "wasi", "unavailable", "dependency"]
        );
    }

    #[test]
    fn every_family_interface_maps_to_its_keys() {
        let keys = |name: &str| -> Vec<(&str, Vec<&str>)> {
            matching(name, |(_, s, _)| s)
                .into_iter()
                .map(|(f, k)| (f, k.to_vec()))
                .collect()
        };
        assert_eq!(
            keys("wasi:clocks/monotonic-clock"),
            [("clocks", vec!["monotonic-clock"])]
        );
        assert_eq!(
            keys("wasi:random/insecure-seed"),
            [("random", vec!["insecure-random"])]
        );
        assert_eq!(
            keys("wasi:cli/environment"),
            [("environment", vec!["env", "args"])]
        );
        assert_eq!(
            keys("wasi:cli/terminal-stdout"),
            [("stdio", vec!["stdout"])]
        );
        assert_eq!(
            keys("wasi:sockets/tcp"),
            [("network", vec!["network", "listen"])]
        );
        assert_eq!(
            keys("wasi:filesystem/preopens"),
            [("filesystem", vec!["fs"])]
        );
        assert_eq!(keys("wasi:cli/exit"), [("exit", vec!["exit"])]);
        assert_eq!(keys("wasi:config/store"), [("config", vec!["config"])]);
        assert_eq!(keys("wasi:io/streams"), [("io", vec![])]);
        assert_eq!(keys("wasi:http/types"), [("http", vec![])]);
        assert_eq!(keys("wasi:http/outgoing-handler"), [("http", vec!["http"])]);
        let p1 = |name: &str| -> Vec<&str> {
            matching(name, |(_, _, p)| p)
                .into_iter()
                .map(|(f, _)| f)
                .collect()
        };
        assert_eq!(p1("fd_write"), ["filesystem", "stdio"]);
        assert_eq!(p1("path_open"), ["filesystem"]);
        assert_eq!(p1("clock_time_get"), ["clocks"]);
        assert_eq!(p1("random_get"), ["random"]);
        assert_eq!(p1("sock_send"), ["network"]);
        assert!(p1("no_such_function").is_empty());
    }

    /// `n` as unsigned LEB128, as a WebAssembly binary writes lengths and counts.
    fn leb(mut n: usize, out: &mut Vec<u8>) {
        loop {
            let byte = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                out.push(byte);
                return;
            }
            out.push(byte | 0x80);
        }
    }

    /// `text` as a WebAssembly name: its length, then its bytes.
    fn name(text: &str, out: &mut Vec<u8>) {
        leb(text.len(), out);
        out.extend_from_slice(text.as_bytes());
    }

    /// A `producers` custom section whose `language` field has `values`.
    fn producers_section(values: &[(String, String)]) -> Vec<u8> {
        let mut body = Vec::new();
        name("producers", &mut body);
        leb(1, &mut body);
        name("language", &mut body);
        leb(values.len(), &mut body);
        for (n, v) in values {
            name(n, &mut body);
            name(v, &mut body);
        }
        let mut section = vec![0u8];
        leb(body.len(), &mut section);
        section.extend_from_slice(&body);
        section
    }

    #[test]
    fn a_huge_producers_section_keeps_a_bounded_number_of_entries() {
        // A real component with 100 000 distinct entries appended, then the
        // first ones again: before the entries were hashed, finding each one's
        // duplicate searched all those kept (about 10^10 comparisons).
        let mut bytes = component("package test:app; world w { }");
        // Its own entries (wit-component's) come first, and are kept.
        let own = inspect(&bytes).unwrap().producers;
        assert!(!own.is_empty() && own.len() < MAX_PRODUCERS);
        let distinct: Vec<(String, String)> = (0..100_000)
            .map(|i| (format!("lang{i}"), String::new()))
            .collect();
        let appended_kept = MAX_PRODUCERS - own.len();
        bytes.extend(producers_section(&distinct));
        bytes.extend(producers_section(&distinct[..appended_kept]));
        let s = inspect(&bytes).unwrap();
        assert_eq!(s.producers.len(), MAX_PRODUCERS);
        assert_eq!(s.producers[..own.len()], own[..]);
        assert_eq!(s.producers[own.len()].name, "lang0");
        assert_eq!(
            s.producers_not_kept,
            (distinct.len() - appended_kept) as u64,
            "the repeated entries are kept ones, not counted"
        );
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["producers_not_kept"], s.producers_not_kept);
    }

    /// A component nesting `levels` empty components, one in the other (built
    /// from the inside out in linear time).
    fn nested(levels: usize) -> Vec<u8> {
        const HEADER: [u8; 8] = [0, b'a', b's', b'm', 0x0d, 0, 1, 0];
        // lengths[i]: the size of the component `i` levels from the innermost.
        let mut lengths = vec![HEADER.len()];
        for i in 0..levels {
            let mut prefix = Vec::new();
            leb(lengths[i], &mut prefix);
            lengths.push(HEADER.len() + 1 + prefix.len() + lengths[i]);
        }
        let mut out = Vec::with_capacity(lengths[levels]);
        for i in (0..levels).rev() {
            out.extend_from_slice(&HEADER);
            out.push(4); // a component section
            leb(lengths[i], &mut out);
        }
        out.extend_from_slice(&HEADER);
        assert_eq!(out.len(), lengths[levels]);
        out
    }

    #[test]
    fn components_nested_past_wasmtimes_limit_are_refused_before_decoding() {
        // 100 000 levels in 1.2 MB: decoding its world took minutes.
        for levels in [MAX_MODULES_AND_COMPONENTS, 100_000] {
            let Err(InspectError::Invalid { why, .. }) = inspect(&nested(levels)) else {
                panic!("{levels} nested components were not refused");
            };
            assert!(
                why.contains("more than 1000 modules and components"),
                "{why}"
            );
        }
        // The file itself and 999 nested in it: as many as wasmtime loads.
        let s = inspect(&nested(MAX_MODULES_AND_COMPONENTS - 1)).unwrap();
        assert_eq!(s.kind, Kind::Component);
    }

    #[test]
    fn families_of_many_imports_list_each_once() {
        // 100 000 preview 1 imports, half of them twice: listing each under its
        // family was a search of those listed (about 10^10 comparisons).
        let imports: Vec<Import> = (0..150_000)
            .map(|i| core_import(PREVIEW1_MODULE, &format!("fd_{}", i % 100_000), "func"))
            .collect();
        let families = families_of(&imports);
        let names: Vec<&str> = families.iter().map(|f| f.family.as_str()).collect();
        assert_eq!(names, ["filesystem"]);
        assert_eq!(families[0].interfaces.len(), 100_000);
        assert_eq!(families[0].interfaces[7], "fd_7");
        assert_eq!(families[0].grant_keys, ["fs"]);
    }
}
