//! A dependency that holds no filesystem grant of its own (`test:handles/reader`) and
//! works only on the descriptors and streams its parent hands it: lent for one call
//! (`borrow<descriptor>`) or given (`own`). It also tries what a hostile dependency
//! would: to write through a descriptor lent read-only, to leave a lent directory
//! with `..`, to keep using a lent handle after the call returned, to present handle
//! numbers it was never given, and to open files on its own.
//!
//! Every answer is a `result`: with `on-failure = "error"` a trap here (an unknown or
//! stale handle) reaches the parent as an `err` naming this nanoprocess.

wit_bindgen::generate!({
    // The WASI packages first: handles.wit uses their types.
    path: [
        "../wit/deps/io.wit",
        "../wit/deps/clocks.wit",
        "../wit/deps/filesystem.wit",
        "../wit/handles.wit",
    ],
    world: "test:handles/reader-pkg",
    // The WASI types are wasip2's, so descriptors and streams can be used with it.
    with: {
        "wasi:io/error@0.2.12": wasip2::io::error,
        "wasi:io/poll@0.2.12": wasip2::io::poll,
        "wasi:io/streams@0.2.12": wasip2::io::streams,
        "wasi:clocks/wall-clock@0.2.12": wasip2::clocks::wall_clock,
        "wasi:filesystem/types@0.2.12": wasip2::filesystem::types,
    },
});

use std::cell::{Cell, RefCell};

use exports::test::handles::reader::Guest;
use wasip2::filesystem::types::{
    Descriptor, DescriptorFlags, DirectoryEntryStream, OpenFlags, PathFlags,
};
use wasip2::io::poll::Pollable;
use wasip2::io::streams::{InputStream, StreamError};

/// What `hoard` keeps from a lent directory.
struct Hoard {
    stream: InputStream,
    pollable: Pollable,
    listing: DirectoryEntryStream,
    file: Descriptor,
}

thread_local! {
    /// What `hoard` kept, until `use-hoard` or `give-back-stream`.
    static HOARD: RefCell<Option<Hoard>> = const { RefCell::new(None) };
    /// The descriptor given by `keep`, until `give-back`.
    static KEPT: RefCell<Option<Descriptor>> = const { RefCell::new(None) };
    /// The handle number of the descriptor lent to the last `read-lent`.
    static LAST_LENT: Cell<Option<u32>> = const { Cell::new(None) };
}

struct Reader;

impl Guest for Reader {
    fn read_lent(file: &Descriptor) -> Result<String, String> {
        LAST_LENT.set(Some(file.handle()));
        read_all(file)
    }

    fn write_lent(file: &Descriptor, text: String) -> Result<(), String> {
        let written = file
            .write(text.as_bytes(), 0)
            .map_err(|e| format!("write refused: {e}"))?;
        if written as usize == text.len() {
            Ok(())
        } else {
            Err(format!("wrote {written} of {} bytes", text.len()))
        }
    }

    fn read_under(dir: &Descriptor, name: String) -> Result<String, String> {
        let file = dir
            .open_at(
                PathFlags::empty(),
                &name,
                OpenFlags::empty(),
                DescriptorFlags::READ,
            )
            .map_err(|e| format!("open {name} refused: {e}"))?;
        read_all(&file)
    }

    fn keep(file: Descriptor) -> Result<(), String> {
        KEPT.with_borrow_mut(|kept| *kept = Some(file));
        Ok(())
    }

    fn read_kept() -> Result<String, String> {
        KEPT.with_borrow(|kept| match kept {
            Some(file) => read_all(file),
            None => Err("nothing kept".to_owned()),
        })
    }

    fn give_back() -> Result<Descriptor, String> {
        KEPT.with_borrow_mut(Option::take)
            .ok_or_else(|| "nothing kept".to_owned())
    }

    fn reuse_lent() -> Result<String, String> {
        let handle = LAST_LENT
            .get()
            .ok_or_else(|| "nothing was lent".to_owned())?;
        forged_read(handle)
    }

    fn forge(handle: u32) -> Result<String, String> {
        forged_read(handle)
    }

    fn snoop(path: String) -> Result<String, String> {
        std::fs::read_to_string(&path).map_err(|e| format!("read {path}: {e}"))
    }

    fn drain(s: InputStream) -> Result<String, String> {
        let mut bytes = Vec::new();
        loop {
            match s.blocking_read(64 * 1024) {
                Ok(chunk) => bytes.extend_from_slice(&chunk),
                Err(StreamError::Closed) => break,
                Err(e) => return Err(format!("stream failed: {e}")),
            }
        }
        String::from_utf8(bytes).map_err(|e| e.to_string())
    }

    fn hoard(dir: &Descriptor, name: String) -> Result<(), String> {
        let file = dir
            .open_at(
                PathFlags::empty(),
                &name,
                OpenFlags::empty(),
                DescriptorFlags::READ,
            )
            .map_err(|e| format!("open {name}: {e}"))?;
        let stream = file
            .read_via_stream(0)
            .map_err(|e| format!("stream of {name}: {e}"))?;
        let pollable = stream.subscribe();
        let listing = dir.read_directory().map_err(|e| format!("listing: {e}"))?;
        HOARD.set(Some(Hoard {
            stream,
            pollable,
            listing,
            file,
        }));
        Ok(())
    }

    fn use_hoard() -> Result<String, String> {
        HOARD.with_borrow(|hoard| {
            let Some(h) = hoard else {
                return Err("nothing hoarded".to_owned());
            };
            h.pollable.block();
            let stream = match h.stream.read(64) {
                Ok(bytes) => format!("stream read {:?}", String::from_utf8_lossy(&bytes)),
                Err(e) => format!("stream failed ({e:?})"),
            };
            let listing = match h.listing.read_directory_entry() {
                Ok(Some(entry)) => format!("listing read {}", entry.name),
                Ok(None) => "listing read nothing".to_owned(),
                Err(e) => format!("listing failed ({e})"),
            };
            let file = match read_all(&h.file) {
                Ok(text) => format!("file read {text:?}"),
                Err(e) => format!("file failed ({e})"),
            };
            Ok(format!("{stream}; {listing}; {file}"))
        })
    }

    fn give_back_stream() -> Result<InputStream, String> {
        let h = HOARD.take().ok_or_else(|| "nothing hoarded".to_owned())?;
        // The pollable is a child of the stream: it goes first. The rest is kept
        // (never dropped), so that only the stream is at stake.
        drop(h.pollable);
        std::mem::forget(h.listing);
        std::mem::forget(h.file);
        Ok(h.stream)
    }

    fn link_out(dir: &Descriptor, name: String) -> Result<(), String> {
        let own = wasip2::filesystem::preopens::get_directories()
            .into_iter()
            .find(|(_, path)| path == "/own")
            .map(|(d, _)| d)
            .ok_or_else(|| "this nanoprocess holds no /own".to_owned())?;
        dir.link_at(PathFlags::empty(), &name, &own, "stolen")
            .map_err(|e| format!("link refused: {e}"))
    }
}

/// Reads a whole file from its start.
fn read_all(file: &Descriptor) -> Result<String, String> {
    let mut bytes = Vec::new();
    loop {
        let (chunk, end) = file
            .read(64 * 1024, bytes.len() as u64)
            .map_err(|e| format!("read refused: {e}"))?;
        bytes.extend_from_slice(&chunk);
        if end || chunk.is_empty() {
            break;
        }
    }
    String::from_utf8(bytes).map_err(|e| e.to_string())
}

/// Reads through whatever handle number `handle` names in this instance's table.
fn forged_read(handle: u32) -> Result<String, String> {
    // SAFETY: deliberately unsound: the point is to use a handle this instance does
    // not hold (any more), and the canonical ABI must refuse it.
    let forged = unsafe { Descriptor::from_handle(handle) };
    let read = read_all(&forged);
    // Not ours to drop, should the read have worked at all.
    std::mem::forget(forged);
    read.map(|text| format!("handle {handle} read: {text}"))
}

export!(Reader);
