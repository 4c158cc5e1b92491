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
//! | `write-ro:PATH` | opens PATH for reading only and writes to it: `err: <what WASI said>` |
//! | `ls:PATH` | `ok: <sorted entry names joined by ",">` |
//! | `mkdir:PATH`, `rmdir:PATH`, `rm:PATH` | `ok: created` / `ok: removed` |
//! | `stat:PATH` | `ok: file\|dir\|symlink\|other len N` (does not follow symlinks) |
//! | `readlink:PATH` | `ok: <target>` |
//! | `symlink:TARGET=LINK` | `ok: linked` |
//! | `rename:FROM=TO` | `ok: renamed` |
//! | `hardlink:SRC=DST` | `ok: linked` |
//! | `listen:ADDR` | `ok: listening on ADDR` (TCP bind + listen, nothing accepted) |
//! | `env:NAME` | `ok: <value>` / `err: not present` |
//! | `envall` | `ok: <sorted NAME=VALUE joined by ",">` |
//! | `config:KEY` | `ok: <value>` / `err: not present` (`wasi:config/store.get`) |
//! | `config-all` | `ok: <sorted KEY=VALUE joined by ",">` (`get-all`) |
//! | `args` | `ok: <all of std::env::args() joined by " ">` |
//! | `random`, `insecure-random` | `ok: 16 bytes` |
//! | `random-hex` | `ok: <8 secure random bytes in hex>` |
//! | `hashmap` | `ok: 3` (std's `HashMap` seeds itself from WASI random) |
//! | `insecure-seed` | `ok: <wasi:random/insecure-seed's 128 bits in hex>` |
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
//! | `files:N` | `ok: N files`: in `/d`, for i in 0..N creates `/d/f{i}.txt`, writes 64 bytes, reads them back and removes the file; `err: file I: <error>` on the first failure |
//!
//! Hostile operations, for the host's limits. Each misbehaves on purpose and reliably
//! (`black_box` keeps the optimizer from removing the misbehaviour); stopping it is
//! the host's job:
//!
//! | op | answer |
//! |----|--------|
//! | `recurse:N` | `ok: depth reached N`: recurses N levels, each frame holding a 256-byte array on the stack; a huge N (e.g. 100000000) overflows the stack (a trap: the 1 MiB shadow stack in linear memory holds about 3,850 frames) |
//! | `bomb` | never returns: allocates and writes 1 MiB chunks, keeping them all, until an allocation fails and the guest aborts (a trap) |
//! | `sockets:N` | `ok: N sockets`: creates N IPv4 TCP sockets through the raw WASI API and leaks them (never connected), one host resource each; `err: after K sockets: <error>` if creation fails |
//! | `lookups:N:BYTES` | `ok: N refused`: looks up a name of BYTES bytes (`a`s, ending in `.test`) N times through the raw WASI API, each refused; `err: lookup I: <error>` if one was not refused, `err: lookup I was allowed` if one was |
//! | `flood:MIB`, `flood-err:MIB` | `ok: wrote N bytes`: writes MIB MiB to stdout / stderr in 64 KiB writes (lines of `x`) and flushes; `err: after K bytes: <error>` on the first failed write or flush |
//! | `flood-lines:MIB` | the same as `flood:` with empty lines (every byte a newline) |
//! | `big:MIB` | `ok: ` and MIB MiB of `x`: a result as large as the caller's memory |
//! | `tenth` | `ok: call N`, panicking with `tenth call` (a trap) when N is a multiple of 10 |
//! | `count` | `ok: N` |
//! | `busy:N` | `ok: N` after N million iterations of a busy loop (no clock) |
//! | `sleep:MS` | `ok: slept` after `std::thread::sleep` for MS milliseconds (needs the monotonic clock) |
//!
//! UDP, on one socket kept between calls (in an instance, ops run one after another, so a
//! test can act between them: learn the bound port, send to it):
//!
//! | op | answer |
//! |----|--------|
//! | `udp-bind:ADDR` | `ok: bound LOCAL`: binds a new socket at ADDR and keeps it, closing the one kept before |
//! | `udp-send:ADDR=TEXT` | `ok: sent N bytes`: sends TEXT from the kept socket to ADDR |
//! | `udp-recv:MS` | `ok: from PEER: TEXT`: the first datagram the kept socket receives; `err: nothing received in MS ms` if none arrives in time (a non-blocking receive retried until then: needs the monotonic clock) |
//!
//! `tenth` and `count` share one per-instance call counter (N counts calls of both), so
//! they show whether an instance's state survived between calls or was reset.
//!
//! Anything else answers `err: unknown op`. Errors carry std's `io::Error` text.

use std::collections::HashMap;
use std::fmt::Display;
use std::fs;
use std::hint::black_box;
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How many characters of a file `read:` returns, to keep answers one short line.
const READ_LIMIT: usize = 200;

/// Bytes in each stack frame of `recurse:`.
const FRAME_BYTES: usize = 256;

/// Size of each chunk `bomb` allocates.
const BOMB_CHUNK: usize = 1 << 20;

/// Size of each write of `flood:` / `flood-err:`.
const FLOOD_WRITE: usize = 64 << 10;

/// Calls of `tenth` and `count` in this instance.
static CALLS: AtomicU64 = AtomicU64::new(0);

/// `wasi:config/store`, which the `wasip2` crate does not cover.
mod config_bindings {
    wit_bindgen::generate!({
        path: "../wit/config",
        world: "wasi:config/imports@0.2.0-rc.1",
        generate_all,
    });
}
use config_bindings::wasi::config;

/// Runs one operation and describes its outcome as `ok: ...` or `err: ...`.
pub fn run_op(op: &str) -> String {
    let (name, arg) = op.split_once(':').unwrap_or((op, ""));
    let outcome = match name {
        "read" => read(arg),
        "write" => with_pair(arg, write),
        "append" => with_pair(arg, append),
        // Opens for reading only, then writes: not a question of grants.
        "write-ro" => std::fs::File::open(arg)
            .and_then(|mut f| std::io::Write::write_all(&mut f, b"x"))
            .map(|()| "written".to_string())
            .map_err(|e| e.to_string()),
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
        // A hard link to a file outside the directory would be a way out, if the
        // runtime let `link-at` name one.
        // Bind and listen (no connection is awaited); answers the bound address.
        "listen" => std::net::TcpListener::bind(arg)
            .and_then(|l| l.local_addr())
            .map(|a| format!("listening on {a}"))
            .map_err(text),
        "hardlink" => with_pair(arg, |src, dst| {
            fs::hard_link(src, dst)
                .map(|()| "linked".to_owned())
                .map_err(text)
        }),
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
        "config" => match config::store::get(arg) {
            Ok(Some(value)) => Ok(value),
            Ok(None) => Err("not present".to_owned()),
            Err(e) => Err(format!("{e:?}")),
        },
        "config-all" => config::store::get_all()
            .map(|mut all| {
                all.sort();
                all.iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .map_err(|e| format!("{e:?}")),
        "args" => Ok(std::env::args().collect::<Vec<_>>().join(" ")),
        "random" => Ok(random_len(wasip2::random::random::get_random_bytes(16))),
        "insecure-random" => Ok(random_len(
            wasip2::random::insecure::get_insecure_random_bytes(16),
        )),
        // The bytes themselves, to show that a seeded source repeats across runs.
        "random-hex" => Ok(wasip2::random::random::get_random_bytes(8)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()),
        "hashmap" => Ok(hashmap()),
        "insecure-seed" => {
            let (hi, lo) = wasip2::random::insecure_seed::insecure_seed();
            Ok(format!("{hi:016x}{lo:016x}"))
        }
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
        // `wasi:cli/exit.exit-with-code`: the status as chosen (Rust's
        // `process::exit` says only ok or error through WASI 0.2's `exit`).
        "exit-code" => match arg.parse::<u8>() {
            Ok(code) => {
                let _ = std::io::stdout().flush();
                wasip2::cli::exit::exit_with_code(code);
                Err("exit-with-code returned".into())
            }
            Err(e) => Err(format!("bad exit code {arg:?}: {e}")),
        },
        "spin" => spin(),
        "alloc" => alloc(arg),
        "files" => files(arg),
        "recurse" => recurse(arg),
        "bomb" => bomb(),
        "sockets" => sockets(arg),
        "lookups" => lookups(arg),
        "flood" => flood(arg, std::io::stdout()),
        "flood-err" => flood(arg, std::io::stderr()),
        "flood-lines" => flood_lines(arg),
        // Built in place: the answer is the only copy in the guest's memory.
        "big" => {
            return match number(arg, "size") {
                Ok(mib) => {
                    let mut answer = String::from("ok: ");
                    answer.extend(std::iter::repeat_n('x', (mib as usize) << 20));
                    answer
                }
                Err(e) => format!("err: {e}"),
            };
        }
        "tenth" => Ok(tenth()),
        "count" => Ok(count()),
        "busy" => busy(arg),
        "sleep" => sleep(arg),
        "udp-bind" => udp_bind(arg),
        "udp-send" => with_pair(arg, udp_send),
        "udp-recv" => udp_recv(arg),
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

/// Bytes each file of `files:` holds.
const FILE_BYTES: usize = 64;

/// Creates, writes, reads back and removes `N` files in `/d`, one after another: a
/// file-heavy workload (for benchmarks) where every step is a filesystem call.
fn files(arg: &str) -> Result<String, String> {
    let n = number(arg, "count")?;
    let content = [b'f'; FILE_BYTES];
    for i in 0..n {
        let path = format!("/d/f{i}.txt");
        let step = || -> std::io::Result<()> {
            fs::write(&path, content)?;
            let back = fs::read(&path)?;
            if back != content {
                return Err(std::io::Error::other(format!(
                    "read back {} bytes that differ from the {FILE_BYTES} written",
                    back.len()
                )));
            }
            fs::remove_file(&path)
        };
        step().map_err(|e| format!("file {i}: {e}"))?;
    }
    Ok(format!("{n} files"))
}

/// Parses a numeric argument, naming `what` it is in the error.
fn number(arg: &str, what: &str) -> Result<u64, String> {
    arg.parse().map_err(|e| format!("bad {what} {arg:?}: {e}"))
}

fn recurse(arg: &str) -> Result<String, String> {
    let target = number(arg, "depth")?;
    Ok(format!("depth reached {}", descend(0, target)))
}

/// Recurses from `depth` down to `target`, returning the depth reached. Each frame
/// holds a real array in memory: `black_box` takes its address before the call and
/// reads it after, so the frame stays live and the recursion can be neither elided nor
/// turned into a loop (a tail call).
#[inline(never)]
fn descend(depth: u64, target: u64) -> u64 {
    if depth >= target {
        return depth;
    }
    let mut frame = [0u8; FRAME_BYTES];
    frame[0] = depth as u8;
    black_box(&mut frame);
    let reached = descend(depth + 1, target);
    black_box(&frame);
    reached
}

/// Allocates 1 MiB chunks until memory runs out. Plain `vec!` (not `try_reserve`), so
/// a refused allocation goes to std's allocation-error handler, which aborts (a trap).
/// wasm32 cannot address more than 4 GiB, so the bound is never reached in practice.
fn bomb() -> Result<String, String> {
    const MAX_CHUNKS: usize = 1 << 16;
    let mut chunks: Vec<Vec<u8>> = Vec::new();
    for _ in 0..MAX_CHUNKS {
        // vec![1; n] writes every byte (unlike zeroed memory, which may stay untouched).
        let chunk = vec![1u8; BOMB_CHUNK];
        chunks.push(black_box(chunk));
        black_box(&mut chunks);
    }
    Err(format!(
        "allocated {} MiB without running out of memory",
        chunks.len()
    ))
}

/// Creates `N` TCP sockets and leaks them, so each stays a live handle in the host's
/// resource table for the rest of the instance's life.
fn sockets(arg: &str) -> Result<String, String> {
    use wasip2::sockets::network::IpAddressFamily;
    use wasip2::sockets::tcp_create_socket::create_tcp_socket;
    let n = number(arg, "count")?;
    for created in 0..n {
        match create_tcp_socket(IpAddressFamily::Ipv4) {
            Ok(socket) => std::mem::forget(socket),
            Err(e) => return Err(format!("after {created} sockets: {e}")),
        }
    }
    Ok(format!("{n} sockets"))
}

/// Looks up one huge name `N` times, each lookup expected to be refused: the host
/// must not keep what it records of each (the name) in full.
fn lookups(arg: &str) -> Result<String, String> {
    use wasip2::sockets::instance_network::instance_network;
    use wasip2::sockets::ip_name_lookup::resolve_addresses;
    use wasip2::sockets::network::ErrorCode;
    let (n, bytes) = arg
        .split_once(':')
        .ok_or_else(|| format!("expected N:BYTES, got {arg:?}"))?;
    let (n, bytes) = (number(n, "count")?, number(bytes, "size")?);
    let name = format!("{}.test", "a".repeat(bytes.saturating_sub(5) as usize));
    let network = instance_network();
    for i in 0..n {
        match resolve_addresses(&network, &name) {
            Err(ErrorCode::AccessDenied) => {}
            Err(e) => return Err(format!("lookup {i}: {e}")),
            Ok(_) => return Err(format!("lookup {i} was allowed")),
        }
    }
    Ok(format!("{n} refused"))
}

/// Writes `MIB` MiB of `x` lines to `out` in 64 KiB writes, then flushes.
fn flood(arg: &str, out: impl Write) -> Result<String, String> {
    let mut block = vec![b'x'; FLOOD_WRITE];
    block[FLOOD_WRITE - 1] = b'\n';
    flood_with(arg, out, &block)
}

/// `flood:` with empty lines: every byte written is a newline, so a per-line prefix
/// added by the host costs more than the guest's own bytes.
fn flood_lines(arg: &str) -> Result<String, String> {
    flood_with(arg, std::io::stdout(), &[b'\n'; FLOOD_WRITE])
}

/// Writes MIB MiB of `block`s to `out`, then flushes.
fn flood_with(arg: &str, mut out: impl Write, block: &[u8]) -> Result<String, String> {
    let mib = number(arg, "size")?;
    let total = mib
        .checked_mul(1 << 20)
        .ok_or_else(|| format!("{mib} MiB is too large"))?;
    let mut written: u64 = 0;
    while written < total {
        out.write_all(block)
            .map_err(|e| format!("after {written} bytes: {e}"))?;
        written += block.len() as u64;
    }
    out.flush()
        .map_err(|e| format!("after {written} bytes: {e}"))?;
    Ok(format!("wrote {written} bytes"))
}

/// Counts one more call of `tenth` or `count`, returning the new count.
fn next_call() -> u64 {
    CALLS.fetch_add(1, Ordering::Relaxed) + 1
}

fn tenth() -> String {
    let n = next_call();
    if n.is_multiple_of(10) {
        panic!("tenth call");
    }
    format!("call {n}")
}

fn count() -> String {
    next_call().to_string()
}

/// Burns CPU for `N` million loop iterations, without touching any clock.
fn busy(arg: &str) -> Result<String, String> {
    let millions = number(arg, "count")?;
    let iterations = millions
        .checked_mul(1_000_000)
        .ok_or_else(|| format!("{millions} million iterations is too many"))?;
    let mut acc: u64 = 0;
    for i in 0..iterations {
        acc = black_box(acc.wrapping_add(i));
    }
    black_box(acc);
    Ok(millions.to_string())
}

fn sleep(arg: &str) -> Result<String, String> {
    let ms = number(arg, "duration")?;
    std::thread::sleep(Duration::from_millis(ms));
    Ok("slept".to_owned())
}

/// The socket the `udp-*` ops share, kept between calls into this instance.
static UDP_SOCKET: std::sync::Mutex<Option<std::net::UdpSocket>> = std::sync::Mutex::new(None);

fn udp_bind(addr: &str) -> Result<String, String> {
    let mut kept = UDP_SOCKET
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    // The previous socket is closed first, so that rebinding its address works.
    *kept = None;
    let socket = std::net::UdpSocket::bind(addr).map_err(text)?;
    let local = socket.local_addr().map_err(text)?;
    *kept = Some(socket);
    Ok(format!("bound {local}"))
}

/// Runs `f` on the socket `udp-bind` kept.
fn with_udp_socket(
    f: impl FnOnce(&std::net::UdpSocket) -> std::io::Result<String>,
) -> Result<String, String> {
    let kept = UDP_SOCKET
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    match kept.as_ref() {
        Some(socket) => f(socket).map_err(text),
        None => Err("no socket: bind one first with udp-bind".to_owned()),
    }
}

fn udp_send(addr: &str, data: &str) -> Result<String, String> {
    with_udp_socket(|socket| {
        let sent = socket.send_to(data.as_bytes(), addr)?;
        Ok(format!("sent {sent} bytes"))
    })
}

/// How long `udp-recv` sleeps between two looks at its socket.
const UDP_RECV_POLL: Duration = Duration::from_millis(5);

fn udp_recv(arg: &str) -> Result<String, String> {
    let ms = number(arg, "duration")?;
    let deadline = Instant::now() + Duration::from_millis(ms);
    with_udp_socket(|socket| {
        // wasi-libc has no receive timeout for UDP (`set_read_timeout` fails with
        // ENOPROTOOPT), so the bounded wait is a non-blocking receive, retried
        // until the deadline: the probe ends even when nothing (allowed) arrives.
        socket.set_nonblocking(true)?;
        let mut buf = [0u8; 512];
        loop {
            match socket.recv_from(&mut buf) {
                Ok((len, peer)) => {
                    return Ok(format!(
                        "from {peer}: {}",
                        String::from_utf8_lossy(&buf[..len])
                    ));
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    if Instant::now() >= deadline {
                        return Err(std::io::Error::new(
                            std::io::ErrorKind::TimedOut,
                            format!("nothing received in {ms} ms"),
                        ));
                    }
                    std::thread::sleep(UDP_RECV_POLL);
                }
                Err(e) => return Err(e),
            }
        }
    })
}
