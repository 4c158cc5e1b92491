//! Opens files under its own grants and hands the open descriptors and streams to the
//! `test:handles/reader` dependency, following the operations given as arguments, and
//! prints `<arg> => ok: ...` or `<arg> => err: ...` for each (like the probe driver).
//!
//! - `lend:PATH`: opens PATH read-only and lends it for one `read-lent` call.
//! - `lend-write:PATH=TEXT`: opens PATH for reading and writing and lends it to
//!   `write-lent`.
//! - `lend-ro-write:PATH=TEXT`: opens PATH read-only and lends it to `write-lent`.
//! - `lend-dir:DIR,NAME`: opens the directory DIR and lends it to `read-under`.
//! - `give:PATH`: opens PATH read-only and gives it to `keep`; `kept` asks the reader
//!   to read it again in a later call; `give-back` takes it back and reads it here.
//! - `give-rw:PATH`: like `give`, opened for reading and writing.
//! - `back-and-write:TEXT`: takes the kept descriptor back and lends it to
//!   `write-lent` (its rights after two moves).
//! - `reuse`: asks the reader to use the handle it was lent in its last `read-lent`.
//! - `forge:N`: asks the reader to read through handle number N.
//! - `forge-own:PATH`: opens PATH here and asks the reader to read through this
//!   instance's handle number for it (which means nothing in the reader's table).
//! - `snoop:PATH`: asks the reader to read PATH on its own.
//! - `drain:PATH`: opens PATH, makes an input stream of it and gives the stream to
//!   `drain`.
//! - `hoard:DIR,NAME`: lends the directory DIR to `hoard`, which keeps a stream of
//!   NAME (with a pollable on it), a listing and NAME opened; `use-hoard` asks the
//!   reader to use them in a later call; `give-back-stream` asks for the stream
//!   back and reads it here.
//! - `link-out:DIR,NAME`: lends DIR to `link-out`, which links NAME into its own
//!   `/own`.
//! - `read:PATH`: reads PATH here, to compare.
//! - `repeat:N,OP+OP...`: runs the operations N times in turn (to show that handles
//!   passed to and fro do not pile up in anyone's table); prints `ok: N times: <last
//!   answer>` or the first error, with the round it happened in.

wit_bindgen::generate!({
    // The WASI packages first: handles.wit uses their types.
    path: [
        "../wit/deps/io.wit",
        "../wit/deps/clocks.wit",
        "../wit/deps/filesystem.wit",
        "../wit/handles.wit",
    ],
    world: "test:handles/reader-driver",
    // The WASI types are wasip2's, so that descriptors opened with wasip2 can be
    // passed to the reader.
    with: {
        "wasi:io/error@0.2.12": wasip2::io::error,
        "wasi:io/poll@0.2.12": wasip2::io::poll,
        "wasi:io/streams@0.2.12": wasip2::io::streams,
        "wasi:clocks/wall-clock@0.2.12": wasip2::clocks::wall_clock,
        "wasi:filesystem/types@0.2.12": wasip2::filesystem::types,
    },
});

use test::handles::reader;
use wasip2::filesystem::preopens;
use wasip2::filesystem::types::{Descriptor, DescriptorFlags, OpenFlags, PathFlags};

fn main() {
    let dirs = preopens::get_directories();
    for arg in std::env::args().skip(1) {
        let line = match run(&dirs, &arg) {
            Ok(answer) => format!("ok: {answer}"),
            Err(e) => format!("err: {e}"),
        };
        println!("{arg} => {line}");
    }
}

fn run(dirs: &[(Descriptor, String)], arg: &str) -> Result<String, String> {
    let (op, rest) = arg.split_once(':').unwrap_or((arg, ""));
    match op {
        "lend" => reader::read_lent(&open(dirs, rest, DescriptorFlags::READ)?),
        "lend-write" | "lend-ro-write" => {
            let (path, text) = rest
                .split_once('=')
                .ok_or_else(|| format!("expected {op}:PATH=TEXT, got {arg:?}"))?;
            let flags = if op == "lend-write" {
                DescriptorFlags::READ | DescriptorFlags::WRITE
            } else {
                DescriptorFlags::READ
            };
            reader::write_lent(&open(dirs, path, flags)?, text)?;
            Ok("written".to_owned())
        }
        "lend-dir" => {
            let (dir, name) = rest
                .split_once(',')
                .ok_or_else(|| format!("expected lend-dir:DIR,NAME, got {arg:?}"))?;
            reader::read_under(&open(dirs, dir, DescriptorFlags::READ)?, name)
        }
        "give" => {
            reader::keep(open(dirs, rest, DescriptorFlags::READ)?)?;
            Ok("kept".to_owned())
        }
        "give-rw" => {
            let flags = DescriptorFlags::READ | DescriptorFlags::WRITE;
            reader::keep(open(dirs, rest, flags)?)?;
            Ok("kept".to_owned())
        }
        "back-and-write" => {
            let file = reader::give_back()?;
            reader::write_lent(&file, rest)?;
            Ok("written".to_owned())
        }
        "kept" => reader::read_kept(),
        "give-back" => {
            let file = reader::give_back()?;
            read_all(&file).map(|text| format!("back here: {text}"))
        }
        "reuse" => reader::reuse_lent(),
        "forge" => {
            let handle = rest
                .parse()
                .map_err(|_| format!("expected a number, got {rest:?}"))?;
            reader::forge(handle)
        }
        "forge-own" => {
            let file = open(dirs, rest, DescriptorFlags::READ)?;
            reader::forge(file.handle())
        }
        "snoop" => reader::snoop(rest),
        "drain" => {
            let file = open(dirs, rest, DescriptorFlags::READ)?;
            let stream = file
                .read_via_stream(0)
                .map_err(|e| format!("stream of {rest}: {e}"))?;
            let drained = reader::drain(stream);
            // The stream was given away; the descriptor it came from stays here until now.
            drop(file);
            drained
        }
        "hoard" => {
            let (dir, name) = rest
                .split_once(',')
                .ok_or_else(|| format!("expected hoard:DIR,NAME, got {arg:?}"))?;
            reader::hoard(&open(dirs, dir, DescriptorFlags::READ)?, name)?;
            Ok("hoarded".to_owned())
        }
        "use-hoard" => reader::use_hoard(),
        "give-back-stream" => {
            let stream = reader::give_back_stream()?;
            let mut bytes = Vec::new();
            loop {
                match stream.blocking_read(64 * 1024) {
                    Ok(chunk) => bytes.extend_from_slice(&chunk),
                    Err(wasip2::io::streams::StreamError::Closed) => break,
                    Err(e) => return Err(format!("the stream given back failed: {e}")),
                }
            }
            Ok(format!("back here: {}", String::from_utf8_lossy(&bytes)))
        }
        "link-out" => {
            let (dir, name) = rest
                .split_once(',')
                .ok_or_else(|| format!("expected link-out:DIR,NAME, got {arg:?}"))?;
            reader::link_out(&open(dirs, dir, DescriptorFlags::READ)?, name)?;
            Ok("linked".to_owned())
        }
        "read" => read_all(&open(dirs, rest, DescriptorFlags::READ)?),
        "repeat" => {
            let (n, ops) = rest
                .split_once(',')
                .ok_or_else(|| format!("expected repeat:N,OP+OP..., got {arg:?}"))?;
            let n: u32 = n
                .parse()
                .map_err(|_| format!("expected a number, got {n:?}"))?;
            let mut last = String::new();
            for round in 1..=n {
                for op in ops.split('+') {
                    last = run(dirs, op).map_err(|e| format!("round {round}, {op}: {e}"))?;
                }
            }
            Ok(format!("{n} times: {last}"))
        }
        _ => Err(format!("unknown operation {arg:?}")),
    }
}

/// Opens an absolute path under the preopened directory that holds it. A path that
/// is a preopen itself opens that directory.
fn open(
    dirs: &[(Descriptor, String)],
    path: &str,
    flags: DescriptorFlags,
) -> Result<Descriptor, String> {
    let (dir, rel) = dirs
        .iter()
        .filter_map(|(dir, name)| {
            let rel = path.strip_prefix(name.as_str())?;
            if rel.is_empty() {
                Some((dir, "."))
            } else {
                rel.strip_prefix('/').map(|rel| (dir, rel))
            }
        })
        .max_by_key(|(_, rel)| std::cmp::Reverse(rel.len()))
        .ok_or_else(|| format!("{path} is under no directory this nanoprocess holds"))?;
    dir.open_at(PathFlags::empty(), rel, OpenFlags::empty(), flags)
        .map_err(|e| format!("open {path}: {e}"))
}

/// Reads a whole file from its start.
fn read_all(file: &Descriptor) -> Result<String, String> {
    let mut bytes = Vec::new();
    loop {
        let (chunk, end) = file
            .read(64 * 1024, bytes.len() as u64)
            .map_err(|e| format!("read: {e}"))?;
        bytes.extend_from_slice(&chunk);
        if end || chunk.is_empty() {
            break;
        }
    }
    String::from_utf8(bytes).map_err(|e| e.to_string())
}
