//! Reading a component file: once, through one open descriptor, and only when it
//! is worth reading (a regular file within the size cap, with a WebAssembly
//! header). Nothing here knows about manifests: the compile stage turns a refusal
//! into an error at the node's `component` line.

use crate::surface::{FileKind, NotWasm, RECOGNIZE_BYTES, recognize};
use std::path::Path;

pub(super) fn is_core_module(bytes: &[u8]) -> bool {
    recognize(bytes, false) == FileKind::CoreModule
}

/// Why a component file was not read whole.
pub(crate) enum Unreadable {
    /// Its kind, its size or the system refused it, and what the user can do.
    Read {
        why: String,
        help: Option<&'static str>,
    },
    /// Its first bytes say it is no component or module nanoproc runs, and what
    /// it is instead.
    NotWasm(NotWasm),
}

impl From<std::io::Error> for Unreadable {
    fn from(e: std::io::Error) -> Self {
        Unreadable::Read {
            why: e.to_string(),
            help: None,
        }
    }
}

/// The refusal of a component path that names something other than a regular file.
fn not_a_regular_file(kind: std::fs::FileType) -> Unreadable {
    use std::os::unix::fs::FileTypeExt;
    let what = if kind.is_fifo() {
        "a FIFO (named pipe)"
    } else if kind.is_char_device() {
        "a character device"
    } else if kind.is_block_device() {
        "a block device"
    } else if kind.is_socket() {
        "a socket"
    } else if kind.is_dir() {
        "a directory"
    } else {
        "not a file"
    };
    Unreadable::Read {
        why: format!("it is {what}; a component is a regular file"),
        help: None,
    }
}

/// Reads a component file whole, once it is known to be worth reading: a regular
/// file of at most `max` bytes that starts like a component or a core module.
///
/// The file is the user's, but it may be anything: a sparse file of a terabyte
/// (which would cost that much memory at every check and run), a FIFO (whose read
/// would wait forever for a writer), `/dev/zero` (endless), or a file that another
/// program is still writing. So the size and kind come from the open descriptor
/// (what is checked is what is read), the header is checked before the rest is
/// read, and the read itself stops one byte past `max`, for a file that grows in
/// between.
#[cfg(test)]
fn read_component(path: &Path, max: u64) -> Result<Vec<u8>, Unreadable> {
    let (_, opened) = open_component(path, max)?;
    opened.read()
}

/// A component file opened and found worth reading (a regular file, within the
/// size cap), not read yet.
pub(crate) struct OpenedComponent {
    file: std::fs::File,
    len: u64,
    max: u64,
}

/// Opens a component file for [`read_component`], and tells what file it is
/// (device and inode), so that a file reached by several names is read once.
pub(crate) fn open_component(
    path: &Path,
    max: u64,
) -> Result<((u64, u64), OpenedComponent), Unreadable> {
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
    // Opening is not always harmless: opening some devices acts (a watchdog device
    // arms, a tape rewinds). So the kind is checked on the path first and only a
    // regular file is opened, then checked again on the open descriptor, for a
    // file swapped in between. Opening a FIFO swapped in waits for a writer unless
    // O_NONBLOCK is given; on a regular file the flag changes nothing (reads block
    // briefly on the disk whatever it says, see open(2)).
    let named = std::fs::metadata(path)?;
    if !named.file_type().is_file() {
        return Err(not_a_regular_file(named.file_type()));
    }
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)?;
    let meta = file.metadata()?;
    if !meta.file_type().is_file() {
        return Err(not_a_regular_file(meta.file_type()));
    }
    let identity = (meta.dev(), meta.ino());
    if meta.len() > max {
        return Err(too_large(max, &nanoproc_caps::format_bytes(meta.len())));
    }
    Ok((
        identity,
        OpenedComponent {
            file,
            len: meta.len(),
            max,
        },
    ))
}

fn too_large(max: u64, size: &str) -> Unreadable {
    Unreadable::Read {
        why: format!(
            "it is {size}, more than the {} a component may be",
            nanoproc_caps::format_bytes(max)
        ),
        help: Some("raise the limit with --max-component-size (Runtime::with_max_component_size)"),
    }
}

impl OpenedComponent {
    /// Reads the file whole: its header first, then the rest, never more than one
    /// byte past the cap (the size checked may be stale).
    pub(crate) fn read(self) -> Result<Vec<u8>, Unreadable> {
        use std::io::Read;
        let OpenedComponent { file, len, max } = self;
        let mut reader = (&file).take(max.saturating_add(1));
        let mut header = [0u8; 8];
        let mut got = 0;
        while got < header.len() {
            match reader.read(&mut header[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
        let header = &header[..got];
        match recognize(header, got < 8) {
            FileKind::Component | FileKind::CoreModule => {}
            FileKind::NotWasm(_) => {
                // Not WebAssembly: worth saying what it is instead ("a PNG image",
                // "a TOML manifest"), from a bounded look at the rest of its start.
                let mut head = header.to_vec();
                (&mut reader)
                    .take(RECOGNIZE_BYTES as u64)
                    .read_to_end(&mut head)?;
                let complete = head.len() < RECOGNIZE_BYTES + header.len();
                return Err(Unreadable::NotWasm(match recognize(&head, complete) {
                    FileKind::NotWasm(what) => what,
                    // Its header said otherwise a moment ago: it is being rewritten.
                    _ => NotWasm::Unknown {
                        starts_with: crate::surface::hex_bytes(header),
                    },
                }));
            }
        }
        // At most `max` bytes are reserved: the size checked above may be stale.
        let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
        bytes.extend_from_slice(header);
        reader.read_to_end(&mut bytes)?;
        if bytes.len() as u64 > max {
            // It grew after its size was checked.
            return Err(too_large(max, "longer as it is read"));
        }
        Ok(bytes)
    }
}

/// Whether a component uses the Component Model's async features (WASI 0.3 and
/// anything built like it): an async lift or lower, an async built-in
/// (`task.return`, `waitable-set.*`, `stream.*`, `future.*`, ...), an `async`
/// function type, or a `stream`, `future` or `error-context` type.
///
/// Such a component can only be compiled by an engine with concurrency support,
/// which makes every call between stores about five times dearer
/// (docs/BENCHMARKS.md): the plan turns it on only when some component needs it
/// (see `compile`). A scan of the component's sections, nested components
/// included; it validates nothing (wasmtime does, when it compiles).
pub(crate) fn uses_async(bytes: &[u8]) -> bool {
    use wasmparser_wasmtime::{
        CanonicalFunction, CanonicalOption, ComponentDefinedType, ComponentType,
        ComponentTypeDeclaration, ComponentValType, InstanceTypeDeclaration, Parser, Payload,
        PrimitiveValType,
    };
    fn val_is_async(ty: &ComponentValType) -> bool {
        matches!(
            ty,
            ComponentValType::Primitive(PrimitiveValType::ErrorContext)
        )
    }
    fn type_is_async(ty: &ComponentType<'_>) -> bool {
        match ty {
            ComponentType::Defined(
                ComponentDefinedType::Stream(_) | ComponentDefinedType::Future(_),
            ) => true,
            ComponentType::Defined(ComponentDefinedType::Primitive(p)) => {
                *p == PrimitiveValType::ErrorContext
            }
            ComponentType::Func(f) => {
                f.async_
                    || f.params.iter().any(|(_, t)| val_is_async(t))
                    || f.result.as_ref().is_some_and(val_is_async)
            }
            ComponentType::Component(decls) => decls.iter().any(|d| match d {
                ComponentTypeDeclaration::Type(t) => type_is_async(t),
                _ => false,
            }),
            ComponentType::Instance(decls) => decls.iter().any(|d| match d {
                InstanceTypeDeclaration::Type(t) => type_is_async(t),
                _ => false,
            }),
            _ => false,
        }
    }
    let async_option = |options: &[CanonicalOption]| {
        options
            .iter()
            .any(|o| matches!(o, CanonicalOption::Async | CanonicalOption::Callback(_)))
    };
    for payload in Parser::new(0).parse_all(bytes) {
        // A malformed component is wasmtime's to report when it compiles.
        let Ok(payload) = payload else { return false };
        match payload {
            Payload::ComponentCanonicalSection(section) => {
                for function in section.into_iter() {
                    let Ok(function) = function else { return false };
                    let synchronous = match &function {
                        CanonicalFunction::Lift { options, .. }
                        | CanonicalFunction::Lower { options, .. } => !async_option(options),
                        CanonicalFunction::ResourceNew { .. }
                        | CanonicalFunction::ResourceDrop { .. }
                        | CanonicalFunction::ResourceRep { .. } => true,
                        _ => false,
                    };
                    if !synchronous {
                        return true;
                    }
                }
            }
            // A WASI 0.3 import, even of a synchronous function: only an engine
            // with concurrency support serves WASI 0.3.
            Payload::ComponentImportSection(section) => {
                for import in section.into_iter() {
                    match import {
                        Ok(i)
                            if i.name.name.starts_with("wasi:")
                                && i.name.name.contains("@0.3.") =>
                        {
                            return true;
                        }
                        Ok(_) => {}
                        Err(_) => return false,
                    }
                }
            }
            Payload::ComponentTypeSection(section) => {
                for ty in section.into_iter() {
                    match ty {
                        Ok(ty) if type_is_async(&ty) => return true,
                        Ok(_) => {}
                        Err(_) => return false,
                    }
                }
            }
            _ => {}
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn why(path: &Path, max: u64) -> String {
        match read_component(path, max) {
            Ok(bytes) => panic!("read {} bytes of {}", bytes.len(), path.display()),
            Err(Unreadable::Read { why, .. }) => why,
            Err(Unreadable::NotWasm(what)) => what.explain("it"),
        }
    }

    #[test]
    fn only_regular_files_with_a_wasm_header_within_the_cap_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let file = |name: &str, bytes: &[u8]| {
            let p = dir.path().join(name);
            std::fs::write(&p, bytes).unwrap();
            p
        };
        let component = file("c.wasm", b"\0asm\x0d\x00\x01\x00rest");
        assert_eq!(read_component(&component, 12).ok().unwrap().len(), 12);
        assert!(why(&component, 11).contains("it is 12 B, more than the 11 B"));
        let module = file("m.wasm", b"\0asm\x01\x00\x00\x00");
        assert!(read_component(&module, 8).is_ok());
        let elf = file("elf.wasm", b"\x7fELF\x02\x01\x01\x00");
        assert_eq!(
            why(&elf, 100),
            "it is not WebAssembly: it is a native executable (ELF)"
        );
        let old = file("old.wasm", b"\0asm\x0a\x00\x01\x00");
        assert!(why(&old, 100).contains("(0a 00 01 00;"));
        assert!(
            why(&file("short.wasm", b"\0asm\x01"), 100)
                .contains("ends within its WebAssembly header")
        );
        assert_eq!(why(&file("empty.wasm", b""), 100), "it is empty");
        // What a text file is comes from more than its header, within the cap.
        let manifest = file("nanoproc.toml.bak", b"[app]\nroot = \"a\"\n");
        assert_eq!(
            why(&manifest, 100),
            "it is not WebAssembly: it is a TOML manifest"
        );
        assert!(why(dir.path(), 100).contains("a directory"));
        assert!(why(Path::new("/dev/zero"), u64::MAX).contains("a character device"));
        let fifo = dir.path().join("fifo.wasm");
        let c_path = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
        // With no writer, a blocking open would wait here forever.
        assert!(why(&fifo, 100).contains("a FIFO"));
    }
}
