//! Capability probes shared by the `probe-*` test components.
//!
//! Each operation is one string, `name` or `name:argument`, and each answer is one line
//! starting with `ok: ` or `err: `. Operations that exercise a capability go through
//! std (or, for random, the raw WASI import), so what a probe reports is exactly what
//! ordinary guest code would see under the capabilities nanoproc granted.
//!
//! | op | answer |
//! |----|--------|
//! | `read:PATH` | `ok: <first 200 chars of the file>` |
//! | `write:PATH=CONTENT` | `ok: written N bytes` (creates or truncates) |
//! | `append:PATH=CONTENT` | `ok: appended N bytes` (creates if missing) |
//! | `ls:PATH` | `ok: <sorted entry names joined by ",">` |
//! | `mkdir:PATH`, `rmdir:PATH`, `rm:PATH` | `ok: created` / `ok: removed` |
//! | `stat:PATH` | `ok: file\|dir\|symlink\|other len N` (does not follow symlinks) |
//! | `readlink:PATH` | `ok: <target>` |
//! | `symlink:TARGET=LINK` | `ok: linked` |
//! | `rename:FROM=TO` | `ok: renamed` |
//! | `env:NAME` | `ok: <value>` / `err: not present` |
//! | `envall` | `ok: <sorted NAME=VALUE joined by ",">` |
//! | `args` | `ok: <all of std::env::args() joined by " ">` |
//! | `random`, `insecure-random` | `ok: 16 bytes` |
//! | `hashmap` | `ok: 3` (std's `HashMap` seeds itself from WASI random) |
//! | `wall-clock` | `ok: <seconds since the UNIX epoch>` |
//! | `monotonic` | `ok: <ns between two Instant::now()>` |
//! | `connect:ADDR` | `ok: connected` |
//! | `resolve:HOST:PORT` | `ok: <addresses joined by ",">` |
//! | `stdout:TEXT`, `stderr:TEXT` | `ok: printed` (TEXT plus a newline) |
//! | `stdin` | `ok: <all of stdin>` |
//! | `panic:MSG` | panics with MSG (a trap, under panic=abort) |
//! | `exit:CODE` | `std::process::exit(CODE)` |
//! | `spin` | never returns (for fuel/epoch/deadline tests) |
//! | `alloc:MIB` | `ok: allocated N MiB` (every byte written), `err:` if memory ran out |
//!
//! Anything else answers `err: unknown op`. Errors carry std's `io::Error` text.

use std::collections::HashMap;
use std::fmt::Display;
use std::fs;
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// How many characters of a file `read:` returns, to keep answers one short line.
const READ_LIMIT: usize = 200;

/// Runs one operation and describes its outcome as `ok: ...` or `err: ...`.
pub fn run_op(op: &str) -> String {
    let (name, arg) = op.split_once(':').unwrap_or((op, ""));
    let outcome = match name {
        "read" => read(arg),
        "write" => with_pair(arg, write),
        "append" => with_pair(arg, append),
        "ls" => list(arg),
        "mkdir" => fs::create_dir(arg)
            .map(|()| "created".to_owned())
            .map_err(text),
        "rmdir" => fs::remove_dir(arg)
            .map(|()| "removed".to_owned())
            .map_err(text),
        "rm" => fs::remove_file(arg)
            .map(|()| "removed".to_owned())
            .map_err(text),
        "stat" => stat(arg),
        "readlink" => fs::read_link(arg)
            .map(|target| target.display().to_string())
            .map_err(text),
        "symlink" => with_pair(arg, symlink),
        "rename" => with_pair(arg, |from, to| {
            fs::rename(from, to)
                .map(|()| "renamed".to_owned())
                .map_err(text)
        }),
        "env" => std::env::var(arg).map_err(|e| match e {
            std::env::VarError::NotPresent => "not present".to_owned(),
            other => other.to_string(),
        }),
        "envall" => Ok(env_all()),
        "args" => Ok(std::env::args().collect::<Vec<_>>().join(" ")),
        "random" => Ok(random_len(wasip2::random::random::get_random_bytes(16))),
        "insecure-random" => Ok(random_len(
            wasip2::random::insecure::get_insecure_random_bytes(16),
        )),
        "hashmap" => Ok(hashmap()),
        "wall-clock" => wall_clock(),
        "monotonic" => Ok(monotonic()),
        "connect" => TcpStream::connect(arg)
            .map(|_stream| "connected".to_owned())
            .map_err(text),
        "resolve" => resolve(arg),
        "stdout" => {
            println!("{arg}");
            Ok("printed".to_owned())
        }
        "stderr" => {
            eprintln!("{arg}");
            Ok("printed".to_owned())
        }
        "stdin" => read_stdin(),
        "panic" => panic!("{arg}"),
        "exit" => match arg.parse::<i32>() {
            Ok(code) => {
                // Flush whatever earlier ops printed: exit does not run destructors.
                let _ = std::io::stdout().flush();
                std::process::exit(code)
            }
            Err(e) => Err(format!("bad exit code {arg:?}: {e}")),
        },
        "spin" => spin(),
        "alloc" => alloc(arg),
        _ => Err("unknown op".to_owned()),
    };
    match outcome {
        Ok(detail) => format!("ok: {detail}"),
        Err(detail) => format!("err: {detail}"),
    }
}

/// Error text for an answer line.
fn text(e: impl Display) -> String {
    e.to_string()
}

/// Splits `A=B` (at the first `=`) and runs `f(A, B)`.
fn with_pair(
    arg: &str,
    f: impl FnOnce(&str, &str) -> Result<String, String>,
) -> Result<String, String> {
    match arg.split_once('=') {
        Some((a, b)) => f(a, b),
        None => Err(format!("expected A=B, got {arg:?}")),
    }
}

fn read(path: &str) -> Result<String, String> {
    let bytes = fs::read(path).map_err(text)?;
    Ok(String::from_utf8_lossy(&bytes)
        .chars()
        .take(READ_LIMIT)
        .collect())
}

fn write(path: &str, content: &str) -> Result<String, String> {
    fs::write(path, content).map_err(text)?;
    Ok(format!("written {} bytes", content.len()))
}

fn append(path: &str, content: &str) -> Result<String, String> {
    fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .and_then(|mut file| file.write_all(content.as_bytes()))
        .map_err(text)?;
    Ok(format!("appended {} bytes", content.len()))
}

fn list(path: &str) -> Result<String, String> {
    let mut names = fs::read_dir(path)
        .map_err(text)?
        .map(|entry| entry.map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(text)?;
    names.sort();
    Ok(names.join(","))
}

fn stat(path: &str) -> Result<String, String> {
    // symlink_metadata, so a symlink is reported as one rather than followed.
    let meta = fs::symlink_metadata(path).map_err(text)?;
    let kind = if meta.is_symlink() {
        "symlink"
    } else if meta.is_dir() {
        "dir"
    } else if meta.is_file() {
        "file"
    } else {
        "other"
    };
    Ok(format!("{kind} len {}", meta.len()))
}

/// Creates a symlink. std's `symlink_path` is still unstable on WASI, so this calls
/// `symlink-at` on the preopened directory whose path is the longest prefix of `link`
/// (a relative `link` goes to the `.` preopen), like wasi-libc would.
#[cfg(target_os = "wasi")]
fn symlink(target: &str, link: &str) -> Result<String, String> {
    use std::path::Path;
    let link = Path::new(link);
    let preopens = wasip2::filesystem::preopens::get_directories();
    let (dir, rel) = preopens
        .iter()
        .filter_map(|(dir, path)| {
            let rel = if link.is_absolute() {
                link.strip_prefix(path).ok()?
            } else if path == "." {
                link
            } else {
                return None;
            };
            Some((dir, rel, path.len()))
        })
        .max_by_key(|&(_, _, prefix_len)| prefix_len)
        .map(|(dir, rel, _)| (dir, rel))
        .ok_or_else(|| format!("no preopened directory contains {}", link.display()))?;
    let rel = rel
        .to_str()
        .ok_or_else(|| format!("{} is not UTF-8", rel.display()))?;
    dir.symlink_at(target, rel).map_err(text)?;
    Ok("linked".to_owned())
}

#[cfg(not(target_os = "wasi"))]
fn symlink(_target: &str, _link: &str) -> Result<String, String> {
    Err("symlinks are only probed on WASI".to_owned())
}

fn env_all() -> String {
    let mut vars = std::env::vars_os()
        .map(|(name, value)| format!("{}={}", name.to_string_lossy(), value.to_string_lossy()))
        .collect::<Vec<_>>();
    vars.sort();
    vars.join(",")
}

fn random_len(bytes: Vec<u8>) -> String {
    format!("{} bytes", bytes.len())
}

fn hashmap() -> String {
    // `HashMap::new` seeds its hasher from the host's random source (WASI
    // `insecure-seed`), so this shows whether ordinary collections work without an
    // explicit random grant.
    let mut map = HashMap::new();
    map.insert("a", 1);
    map.insert("b", 2);
    map.insert("c", 3);
    map.len().to_string()
}

fn wall_clock() -> Result<String, String> {
    let since_epoch = SystemTime::now().duration_since(UNIX_EPOCH).map_err(text)?;
    Ok(since_epoch.as_secs().to_string())
}

fn monotonic() -> String {
    let start = Instant::now();
    let end = Instant::now();
    end.duration_since(start).as_nanos().to_string()
}

fn resolve(host_port: &str) -> Result<String, String> {
    let addrs = host_port
        .to_socket_addrs()
        .map_err(text)?
        .map(|addr| addr.to_string())
        .collect::<Vec<_>>();
    Ok(addrs.join(","))
}

fn read_stdin() -> Result<String, String> {
    let mut input = String::new();
    std::io::stdin().read_to_string(&mut input).map_err(text)?;
    Ok(input)
}

/// Burns CPU forever. `black_box` keeps the optimizer from proving the loop does
/// nothing, so the host really has to interrupt it (fuel, epochs or a deadline).
fn spin() -> ! {
    let mut n: u64 = 0;
    loop {
        n = std::hint::black_box(n.wrapping_add(1));
    }
}

fn alloc(mib: &str) -> Result<String, String> {
    let mib: usize = mib.parse().map_err(|e| format!("bad size {mib:?}: {e}"))?;
    let len = mib
        .checked_mul(1 << 20)
        .ok_or_else(|| format!("{mib} MiB is too large"))?;
    let mut block: Vec<u8> = Vec::new();
    // try_reserve, so hitting a memory limit is reported instead of aborting.
    block
        .try_reserve_exact(len)
        .map_err(|e| format!("allocation of {mib} MiB failed: {e}"))?;
    // Write every byte so the pages are really used, not just reserved.
    block.resize(len, 0xA5);
    std::hint::black_box(&block);
    Ok(format!("allocated {mib} MiB"))
}
