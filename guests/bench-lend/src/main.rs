//! The caller of the descriptor-transfer benchmark: `bench_lend <kind> <n> <file>`
//! opens `<file>` (under its first preopened directory) once, then `n` times:
//!
//! - `lend`: lends the open descriptor to the `test:handles/reader` dependency for
//!   one `read-lent` call, which reads the (small) file through it;
//! - `give`: gives it to `keep` and takes it back with `give-back`;
//! - `local`: reads the file through the same descriptor itself: the work of `lend`
//!   without the boundary.
//!
//! It prints `<kind> <n> <elapsed ns> <checksum>`, like `bench-common`.

wit_bindgen::generate!({
    path: [
        "../wit/deps/io.wit",
        "../wit/deps/clocks.wit",
        "../wit/deps/filesystem.wit",
        "../wit/handles.wit",
    ],
    world: "test:handles/reader-driver",
    with: {
        "wasi:io/error@0.2.12": wasip2::io::error,
        "wasi:io/poll@0.2.12": wasip2::io::poll,
        "wasi:io/streams@0.2.12": wasip2::io::streams,
        "wasi:clocks/wall-clock@0.2.12": wasip2::clocks::wall_clock,
        "wasi:filesystem/types@0.2.12": wasip2::filesystem::types,
    },
});

use std::process::ExitCode;
use std::time::Instant;
use test::handles::reader;
use wasip2::filesystem::types::{Descriptor, DescriptorFlags, OpenFlags, PathFlags};

/// Reads a whole file the way the reader does (`handles-reader`'s `read_all`).
fn read_local(file: &Descriptor) -> Result<String, String> {
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

fn run(kind: &str, n: u64, path: &str) -> Result<u64, String> {
    let dirs = wasip2::filesystem::preopens::get_directories();
    let (dir, _) = dirs.first().ok_or("no directory granted")?;
    let mut file = dir
        .open_at(
            PathFlags::empty(),
            path,
            OpenFlags::empty(),
            DescriptorFlags::READ,
        )
        .map_err(|e| format!("open {path}: {e}"))?;
    let mut checksum = 0u64;
    for _ in 0..n {
        let text = match kind {
            "lend" => reader::read_lent(&file)?,
            "local" => read_local(&file)?,
            "give" => {
                reader::keep(file)?;
                file = reader::give_back()?;
                String::new()
            }
            other => return Err(format!("unknown kind {other}")),
        };
        checksum = checksum.wrapping_add(text.len() as u64);
    }
    Ok(checksum)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(kind), Some(n), Some(path)) = (
        args.first(),
        args.get(1).and_then(|n| n.parse::<u64>().ok()),
        args.get(2),
    ) else {
        eprintln!("usage: bench_lend lend|give|local <n> <file>");
        return ExitCode::FAILURE;
    };
    let start = Instant::now();
    match run(kind, n, path) {
        Ok(checksum) => {
            let elapsed = start.elapsed().as_nanos();
            println!("{kind} {n} {elapsed} {checksum}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{kind}: {e}");
            ExitCode::FAILURE
        }
    }
}
