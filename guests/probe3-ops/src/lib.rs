//! Capability probes for the WASI 0.3 test components (`probe3-*`): the twin of
//! `probe-ops`, with the same op language and the same answers, where every op that
//! touches a capability goes through a `wasi:*@0.3.0` import (the `wasip3` crate), never
//! through Rust std (whose fs, net, env, clocks and stdio go through WASI 0.2 on
//! wasm32-wasip2). Tests written for the 0.2 probes can so run against the 0.3 ones.
//!
//! Each operation is one string, `name` or `name:argument`, and each answer is one line
//! starting with `ok: ` or `err: `. Errors read as std's would in `probe-ops`: a WASI
//! error code becomes the errno wasi-libc gives it and is printed as std prints an OS
//! error (`Permission denied (os error 2)`, `Operation not permitted (os error 63)`).
//!
//! | op | answer | WASI 0.3 calls |
//! |----|--------|----------------|
//! | `read:PATH` | `ok: <first 200 chars of the file>` | `open-at`, `read-via-stream` |
//! | `write:PATH=CONTENT` | `ok: written N bytes` (creates or truncates) | `open-at`, `write-via-stream` |
//! | `append:PATH=CONTENT` | `ok: appended N bytes` (creates if missing) | `open-at`, `append-via-stream` |
//! | `write-ro:PATH` | opens PATH for reading only and writes to it: `err: <what WASI said>` | |
//! | `ls:PATH` | `ok: <sorted entry names joined by ",">` | `open-at`, `read-directory` |
//! | `mkdir:PATH`, `rmdir:PATH`, `rm:PATH` | `ok: created` / `ok: removed` | `create-directory-at`, `remove-directory-at`, `unlink-file-at` |
//! | `stat:PATH` | `ok: file\|dir\|symlink\|other len N` (does not follow symlinks) | `stat-at` |
//! | `readlink:PATH` | `ok: <target>` | `readlink-at` |
//! | `symlink:TARGET=LINK` | `ok: linked` | `symlink-at` |
//! | `rename:FROM=TO` | `ok: renamed` | `rename-at` |
//! | `hardlink:SRC=DST` | `ok: linked` | `link-at` |
//! | `listen:ADDR` | `ok: listening on ADDR` (TCP bind + listen, nothing accepted) | `tcp-socket.create`, `bind`, `listen` |
//! | `env:NAME` | `ok: <value>` / `err: not present` | `get-environment` |
//! | `envall` | `ok: <sorted NAME=VALUE joined by ",">` | `get-environment` |
//! | `config:KEY`, `config-all` | as in probe-ops (`wasi:config/store@0.2.0-rc.1`: there is no 0.3 config) | |
//! | `args` | `ok: <all arguments joined by " ">` | `get-arguments` |
//! | `random`, `insecure-random` | `ok: 16 bytes` | `get-random-bytes`, `get-insecure-random-bytes` |
//! | `random-hex` | `ok: <8 secure random bytes in hex>` | `get-random-bytes` |
//! | `insecure-seed` | `ok: <wasi:random/insecure-seed's 128 bits in hex>` | `get-insecure-seed` |
//! | `wall-clock` | `ok: <seconds since the UNIX epoch>` | `system-clock.now` |
//! | `monotonic` | `ok: <ns between two monotonic-clock.now()>` | `monotonic-clock.now` |
//! | `connect:ADDR` | `ok: connected` (ADDR may name a host, looked up first) | `resolve-addresses`, `tcp-socket.connect` |
//! | `resolve:HOST:PORT` | `ok: <addresses joined by ",">` | `resolve-addresses` |
//! | `stdout:TEXT`, `stderr:TEXT` | `ok: printed` (TEXT plus a newline) | `write-via-stream` |
//! | `stdin` | `ok: <all of stdin>` | `stdin.read-via-stream` |
//! | `panic:MSG` | panics with MSG (a trap, under panic=abort) | |
//! | `exit:CODE` | `exit(ok)` for 0, `exit(err)` otherwise | `exit.exit` |
//! | `exit-code:N` | ends the run with status N (0-255) | `exit.exit-with-code` |
//! | `spin` | never returns (for fuel/epoch/deadline tests) | |
//! | `alloc:MIB` | `ok: allocated N MiB` (every byte written), `err:` if memory ran out | |
//! | `files:N` | `ok: N files`: in `/d`, creates, writes 64 bytes to, reads back and removes `/d/f{i}.txt` for i in 0..N; `err: file I: <error>` on the first failure | |
//! | `sleep:MS` | `ok: slept` after MS milliseconds | `monotonic-clock.wait-for` |
//!
//! Hostile operations, as in probe-ops: `recurse:N`, `bomb`, `sockets:N` (TCP sockets
//! from `tcp-socket.create`, leaked), `lookups:N:BYTES` (`resolve-addresses`, each
//! expected to be refused), `flood:MIB`, `flood-err:MIB`, `flood-lines:MIB` (one
//! `write-via-stream` per flood, written in 64 KiB pieces), `big:MIB`, `tenth`, `count`,
//! `busy:N`.
//!
//! UDP, on one socket kept between calls (`udp-socket.create`, `bind`, `send`,
//! `receive`): `udp-bind:ADDR` (`ok: bound LOCAL`), `udp-send:ADDR=TEXT` (`ok: sent N
//! bytes`), `udp-recv:MS` (`ok: from PEER: TEXT`, or `err: nothing received in MS ms`:
//! `receive` raced against `monotonic-clock.wait-for`).
//!
//! Left out: `hashmap` (std's `HashMap` seeds itself through WASI 0.2's random, so it
//! would probe 0.2, not 0.3). Anything else answers `err: unknown op`.
//!
//! What does not go through WASI 0.3: a panic's message (`panic:`, `tenth`, `bomb`'s
//! allocation failure) is printed by std's panic handler, through `wasi:cli/stderr@0.2`,
//! so every component built on this crate still imports that (and `wasi:io/streams@0.2`).
//!
//! # Sync and async callers
//!
//! [`run_op_async`] is the op runner; a WASI 0.3 command's `run` (an `async func`)
//! awaits it. [`run_op`] runs it to completion from synchronous code with
//! `wit_bindgen::block_on`, for the exports of `wit/probe.wit`, which are ordinary
//! (not `async`) functions. The component model forbids a task of a non-`async`
//! function to block before it returns (wasmtime 50 traps with "cannot block a
//! synchronous task before returning"): under `run_op`, an op whose WASI call the host
//! does not complete at once (when the call is made or its stream or future is first
//! read) traps the nanoprocess instead of waiting. Measured on wasmtime 50 with
//! wasmtime-wasi's own p3 host:
//!
//! - Never at once: `sleep:MS` (MS > 0), `connect`, a name in any address (the
//!   `resolve-addresses` lookup), `stdin`, and `udp-recv` unless a datagram is already
//!   waiting: these trap under `run_op` (so does `sleep` in probe3-leaf's start).
//! - Filesystem calls (`open-at`, `stat-at`, `create-directory-at`, ...): at once only
//!   when the host lets WASI block its current thread
//!   (`WasiCtxBuilder::allow_blocking_current_thread`); otherwise they trap too.
//! - The `future<result<_, error-code>>` that `read-via-stream`, `write-via-stream` and
//!   `append-via-stream` return, and `read-directory`'s `stream<directory-entry>`:
//!   never at once, whatever the host does. Their payloads may hold a string
//!   (`error-code.other`, an entry's name), and wasmtime 50 lowers such a payload into
//!   the guest only from its event loop (futures_and_streams.rs, `MAY_REQUIRE_REALLOC`),
//!   so a guest read of one always answers BLOCKED first. So under `run_op` the data
//!   ops (`read`, `write`, `append`, `write-ro`, `files`) use the byte stream alone and
//!   drop that future unread: a write the host stopped short is still an error
//!   (`failed to write whole buffer`), but a read that failed reads as a short or empty
//!   file, and the error the future carried is not seen. `ls` answers
//!   `err: read-directory cannot be read by a non-async export...` after its
//!   `open-at`.
//! - At once: environment, random, clocks' `now`, `sleep:0`, exit, stdout and stderr
//!   (`wasi:cli`'s error-code is a plain enum), socket create, bind and listen, `udp-send`
//!   to an address, and the filesystem calls above when blocking is allowed.

use std::cell::{Cell, RefCell};
use std::future::{Future, poll_fn};
use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::pin::pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::Poll;

use wasip3::cli::{environment, exit, stderr, stdin, stdout};
use wasip3::clocks::{monotonic_clock, system_clock};
use wasip3::filesystem::preopens;
use wasip3::filesystem::types::{
    self as fs, Descriptor, DescriptorFlags, DescriptorType, OpenFlags, PathFlags,
};
use wasip3::random::{insecure, insecure_seed, random};
use wasip3::sockets::ip_name_lookup;
use wasip3::sockets::types::{self as net, IpAddressFamily, TcpSocket, UdpSocket};

/// How many characters of a file `read:` returns, to keep answers one short line.
const READ_LIMIT: usize = 200;

/// Bytes in each stack frame of `recurse:`.
const FRAME_BYTES: usize = 256;

/// Size of each chunk `bomb` allocates.
const BOMB_CHUNK: usize = 1 << 20;

/// Size of each write of `flood:` / `flood-err:`.
const FLOOD_WRITE: usize = 64 << 10;

/// Bytes each file of `files:` holds.
const FILE_BYTES: usize = 64;

/// `ls`'s answer under [`run_op`] (after the `open-at`, which it does make).
const NO_SYNC_READ_DIRECTORY: &str = "read-directory cannot be read by a non-async export: \
    wasmtime 50 hands a stream<directory-entry> to the guest only after returning to its event loop, \
    and a non-async task may not wait for that";

/// Calls of `tenth` and `count` in this instance.
static CALLS: AtomicU64 = AtomicU64::new(0);

/// `wasi:config/store`, which has no WASI 0.3 version (the same WIT as probe-ops).
mod config_bindings {
    wit_bindgen_p3::generate!({
        path: "../wit/config",
        world: "wasi:config/imports@0.2.0-rc.1",
        generate_all,
        runtime_path: "wit_bindgen_p3::rt",
    });
}
use config_bindings::wasi::config;

/// Runs one operation from synchronous code, `wit_bindgen::block_on` driving its
/// WASI 0.3 calls: for the (non-`async`) exports of `wit/probe.wit`. See the crate
/// docs for what the component model lets such a caller wait for.
pub fn run_op(op: &str) -> String {
    SYNC_CALLER.set(true);
    let answer = wit_bindgen_p3::block_on(run_op_async(op));
    SYNC_CALLER.set(false);
    answer
}

thread_local! {
    /// Whether the op running now runs under [`run_op`], for a non-`async` export
    /// (ops run one at a time in an instance).
    static SYNC_CALLER: Cell<bool> = const { Cell::new(false) };
}

/// Runs one operation and describes its outcome as `ok: ...` or `err: ...`.
pub async fn run_op_async(op: &str) -> String {
    let (name, arg) = op.split_once(':').unwrap_or((op, ""));
    let outcome = match name {
        "read" => read(arg).await,
        "write" => write(arg).await,
        "append" => append(arg).await,
        // Opens for reading only, then writes: not a question of grants.
        "write-ro" => write_read_only(arg).await,
        "ls" => list(arg).await,
        "mkdir" => mkdir(arg).await,
        "rmdir" => rmdir(arg).await,
        "rm" => rm(arg).await,
        "stat" => stat(arg).await,
        "readlink" => readlink(arg).await,
        "symlink" => symlink(arg).await,
        // Bind and listen (no connection is awaited); answers the bound address.
        "listen" => listen(arg).await,
        // A hard link to a file outside the directory would be a way out, if the
        // runtime let `link-at` name one.
        "hardlink" => hardlink(arg).await,
        "rename" => rename(arg).await,
        "env" => env_var(arg).ok_or_else(|| "not present".to_owned()),
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
        "args" => Ok(arguments().join(" ")),
        "random" => Ok(random_len(random::get_random_bytes(16))),
        "insecure-random" => Ok(random_len(insecure::get_insecure_random_bytes(16))),
        // The bytes themselves, to show that a seeded source repeats across runs.
        "random-hex" => Ok(random::get_random_bytes(8)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()),
        // `hashmap` is left out: std seeds a HashMap through WASI 0.2's random.
        "insecure-seed" => {
            let (hi, lo) = insecure_seed::get_insecure_seed();
            Ok(format!("{hi:016x}{lo:016x}"))
        }
        "wall-clock" => wall_clock(),
        "monotonic" => Ok(monotonic()),
        "connect" => connect(arg).await,
        "resolve" => resolve(arg).await,
        "stdout" => print(Out::Stdout, arg).await.map(|()| "printed".to_owned()),
        "stderr" => print(Out::Stderr, arg).await.map(|()| "printed".to_owned()),
        "stdin" => read_stdin().await,
        "panic" => panic!("{arg}"),
        // std's `process::exit(CODE)` says only ok or error through WASI; so does
        // 0.3's `exit`. Every earlier answer was written out in full before the next
        // op ran, so nothing is left to flush.
        "exit" => match arg.parse::<i32>() {
            Ok(code) => {
                exit::exit(if code == 0 { Ok(()) } else { Err(()) });
                Err("exit returned".into())
            }
            Err(e) => Err(format!("bad exit code {arg:?}: {e}")),
        },
        // `wasi:cli/exit.exit-with-code`: the status as chosen.
        "exit-code" => match arg.parse::<u8>() {
            Ok(code) => {
                exit::exit_with_code(code);
                Err("exit-with-code returned".into())
            }
            Err(e) => Err(format!("bad exit code {arg:?}: {e}")),
        },
        "spin" => spin(),
        "alloc" => alloc(arg),
        "files" => files(arg).await,
        "recurse" => recurse(arg),
        "bomb" => bomb(),
        "sockets" => sockets(arg),
        "lookups" => lookups(arg).await,
        "flood" => flood(arg, Out::Stdout).await,
        "flood-err" => flood(arg, Out::Stderr).await,
        "flood-lines" => flood_with(arg, Out::Stdout, &[b'\n'; FLOOD_WRITE]).await,
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
        "sleep" => sleep(arg).await,
        "udp-bind" => udp_bind(arg).await,
        "udp-send" => udp_send(arg).await,
        "udp-recv" => udp_recv(arg).await,
        _ => Err("unknown op".to_owned()),
    };
    match outcome {
        Ok(detail) => format!("ok: {detail}"),
        Err(detail) => format!("err: {detail}"),
    }
}

/// The arguments, `wasi:cli/environment@0.3.0`'s `get-arguments` (the program's name
/// first, as std's `env::args`).
pub fn arguments() -> Vec<String> {
    environment::get_arguments()
}

/// One environment variable, through `wasi:cli/environment@0.3.0`.
pub fn env_var(name: &str) -> Option<String> {
    environment::get_environment()
        .into_iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value)
}

/// Where `print` writes.
#[derive(Clone, Copy)]
pub enum Out {
    Stdout,
    Stderr,
}

impl Out {
    /// Hands `data` to the host as this stream's contents; the future says how the
    /// host's writing of it ended.
    fn write_via_stream(
        self,
        data: wit_bindgen_p3::StreamReader<u8>,
    ) -> wit_bindgen_p3::FutureReader<Result<(), wasip3::cli::types::ErrorCode>> {
        match self {
            Out::Stdout => stdout::write_via_stream(data),
            Out::Stderr => stderr::write_via_stream(data),
        }
    }
}

/// Writes `text` and a newline through `wasi:cli/stdout@0.3.0` (or stderr), in a
/// stream of its own, and waits until the host has written it all: lines from one
/// print after another come out in order, and none is pending when the run ends.
pub async fn print(out: Out, text: &str) -> Result<(), String> {
    let mut line = String::with_capacity(text.len() + 1);
    line.push_str(text);
    line.push('\n');
    let (mut tx, rx) = wasip3::wit_stream::new::<u8>();
    let done = out.write_via_stream(rx);
    let rest = tx.write_all(line.into_bytes()).await;
    drop(tx);
    done.await.map_err(cli_error)?;
    if rest.is_empty() {
        Ok(())
    } else {
        Err(os_error(libc::EPIPE))
    }
}

// ---------------------------------------------------------------------------------
// Errors, worded as std words them on wasm32-wasip2.

/// std's text for an OS error (`Permission denied (os error 2)`). Only the formatting
/// is std's (wasi-libc's `strerror`); no WASI call is made.
fn os_error(errno: i32) -> String {
    std::io::Error::from_raw_os_error(errno).to_string()
}

/// A `wasi:filesystem` error, as wasi-libc maps it to errno.
fn fs_error(e: fs::ErrorCode) -> String {
    use fs::ErrorCode as E;
    let errno = match e {
        E::Access => libc::EACCES,
        E::Already => libc::EALREADY,
        E::BadDescriptor => libc::EBADF,
        E::Busy => libc::EBUSY,
        E::Deadlock => libc::EDEADLK,
        E::Quota => libc::EDQUOT,
        E::Exist => libc::EEXIST,
        E::FileTooLarge => libc::EFBIG,
        E::IllegalByteSequence => libc::EILSEQ,
        E::InProgress => libc::EINPROGRESS,
        E::Interrupted => libc::EINTR,
        E::Invalid => libc::EINVAL,
        E::Io => libc::EIO,
        E::IsDirectory => libc::EISDIR,
        E::Loop => libc::ELOOP,
        E::TooManyLinks => libc::EMLINK,
        E::MessageSize => libc::EMSGSIZE,
        E::NameTooLong => libc::ENAMETOOLONG,
        E::NoDevice => libc::ENODEV,
        E::NoEntry => libc::ENOENT,
        E::NoLock => libc::ENOLCK,
        E::InsufficientMemory => libc::ENOMEM,
        E::InsufficientSpace => libc::ENOSPC,
        E::NotDirectory => libc::ENOTDIR,
        E::NotEmpty => libc::ENOTEMPTY,
        E::NotRecoverable => libc::ENOTRECOVERABLE,
        E::Unsupported => libc::ENOTSUP,
        E::NoTty => libc::ENOTTY,
        E::NoSuchDevice => libc::ENXIO,
        E::Overflow => libc::EOVERFLOW,
        E::NotPermitted => libc::EPERM,
        E::Pipe => libc::EPIPE,
        E::ReadOnly => libc::EROFS,
        E::InvalidSeek => libc::ESPIPE,
        E::TextFileBusy => libc::ETXTBSY,
        E::CrossDevice => libc::EXDEV,
        // 0.3's catch-all: wasi-libc's default is EIO; the host's words follow.
        E::Other(Some(message)) => return format!("{} ({message})", os_error(libc::EIO)),
        E::Other(None) => libc::EIO,
    };
    os_error(errno)
}

/// A `wasi:cli` stream error.
fn cli_error(e: wasip3::cli::types::ErrorCode) -> String {
    use wasip3::cli::types::ErrorCode as E;
    os_error(match e {
        E::Io => libc::EIO,
        E::IllegalByteSequence => libc::EILSEQ,
        E::Pipe => libc::EPIPE,
    })
}

/// A `wasi:sockets` error, as wasi-libc maps the 0.2 codes to errno (`connection-broken`
/// is new in 0.3: EPIPE; `invalid-state`, which wasi-libc never expects: EINVAL).
fn net_error(e: net::ErrorCode) -> String {
    use net::ErrorCode as E;
    let errno = match e {
        E::AccessDenied => libc::EACCES,
        E::NotSupported => libc::EOPNOTSUPP,
        E::InvalidArgument => libc::EINVAL,
        E::OutOfMemory => libc::ENOMEM,
        E::Timeout => libc::ETIMEDOUT,
        E::InvalidState => libc::EINVAL,
        E::AddressNotBindable => libc::EADDRNOTAVAIL,
        E::AddressInUse => libc::EADDRINUSE,
        E::RemoteUnreachable => libc::EHOSTUNREACH,
        E::ConnectionRefused => libc::ECONNREFUSED,
        E::ConnectionBroken => libc::EPIPE,
        E::ConnectionReset => libc::ECONNRESET,
        E::ConnectionAborted => libc::ECONNABORTED,
        E::DatagramTooLarge => libc::EMSGSIZE,
        E::Other(Some(message)) => return format!("{} ({message})", os_error(libc::EIO)),
        E::Other(None) => libc::EIO,
    };
    os_error(errno)
}

/// A name lookup's error, as std reports a failed `getaddrinfo` (a refusal is the OS
/// error EACCES, as wasi-libc gives it).
fn lookup_error(e: ip_name_lookup::ErrorCode) -> String {
    use ip_name_lookup::ErrorCode as E;
    let detail = match e {
        E::AccessDenied => return os_error(libc::EACCES),
        E::InvalidArgument => "Invalid flags".to_owned(),
        E::NameUnresolvable => "Name does not resolve".to_owned(),
        E::TemporaryResolverFailure => "Temporary failure in name resolution".to_owned(),
        E::PermanentResolverFailure => "Non-recoverable failure in name resolution".to_owned(),
        E::Other(Some(message)) => message,
        E::Other(None) => "Unknown error".to_owned(),
    };
    format!("failed to lookup address information: {detail}")
}

/// Splits `A=B` (at the first `=`).
fn pair(arg: &str) -> Result<(&str, &str), String> {
    arg.split_once('=')
        .ok_or_else(|| format!("expected A=B, got {arg:?}"))
}

/// Parses a numeric argument, naming `what` it is in the error.
fn number(arg: &str, what: &str) -> Result<u64, String> {
    arg.parse().map_err(|e| format!("bad {what} {arg:?}: {e}"))
}

// ---------------------------------------------------------------------------------
// Files, through wasi:filesystem@0.3.0.

/// The preopened directories, asked for once (as wasi-libc does at start).
type Preopens = Rc<Vec<(Descriptor, String)>>;

thread_local! {
    static PREOPENS: RefCell<Option<Preopens>> = const { RefCell::new(None) };
}

fn preopened() -> Preopens {
    PREOPENS.with(|cell| {
        cell.borrow_mut()
            .get_or_insert_with(|| Rc::new(preopens::get_directories()))
            .clone()
    })
}

/// A guest path, resolved as wasi-libc resolves one for std: the preopen whose name is
/// the longest prefix of the path (by whole components), and the rest of the path
/// relative to it (`.` for the directory itself). A relative path is taken from `/`,
/// wasi-libc's working directory. Nothing is normalised: `..` goes to the host, which
/// refuses to leave the directory.
struct At {
    dirs: Preopens,
    index: usize,
    rel: String,
}

impl At {
    fn dir(&self) -> &Descriptor {
        &self.dirs[self.index].0
    }
}

fn locate(path: &str) -> Result<At, String> {
    let abs = if path.starts_with('/') {
        path.to_owned()
    } else {
        format!("/{path}")
    };
    let dirs = preopened();
    let mut best: Option<(usize, usize)> = None;
    for (index, (_, name)) in dirs.iter().enumerate() {
        let prefix = preopen_prefix(name);
        let matches =
            abs == prefix || (abs.starts_with(&prefix) && abs[prefix.len()..].starts_with('/'));
        if matches && best.is_none_or(|(_, len)| prefix.len() > len) {
            best = Some((index, prefix.len()));
        }
    }
    let (index, len) = best.ok_or_else(|| os_error(libc::ENOENT))?;
    let rel = abs[len..].trim_start_matches('/');
    let rel = if rel.is_empty() { "." } else { rel }.to_owned();
    Ok(At { dirs, index, rel })
}

/// A preopen's name as an absolute prefix without a trailing `/` (`""` for `/`).
fn preopen_prefix(name: &str) -> String {
    let name = name.trim_end_matches('/');
    let name = name.strip_prefix('.').unwrap_or(name);
    if name.is_empty() || name.starts_with('/') {
        name.to_owned()
    } else {
        format!("/{name}")
    }
}

async fn open(path: &str, open: OpenFlags, flags: DescriptorFlags) -> Result<Descriptor, String> {
    let at = locate(path)?;
    at.dir()
        .open_at(PathFlags::SYMLINK_FOLLOW, at.rel.clone(), open, flags)
        .await
        .map_err(fs_error)
}

/// All of a file: `read-via-stream` to its end, then the stream's result (dropped
/// unread under `run_op`, which cannot read it: see the crate docs).
async fn read_all(file: &Descriptor) -> Result<Vec<u8>, String> {
    let (stream, done) = file.read_via_stream(0);
    let bytes = stream.collect().await;
    if SYNC_CALLER.get() {
        drop(done);
    } else {
        done.await.map_err(fs_error)?;
    }
    Ok(bytes)
}

/// Writes `data` through `write-via-stream` (at offset 0) or `append-via-stream`.
async fn write_all(file: &Descriptor, data: Vec<u8>, append: bool) -> Result<(), String> {
    let (mut tx, rx) = wasip3::wit_stream::new::<u8>();
    let done = if append {
        file.append_via_stream(rx)
    } else {
        file.write_via_stream(rx, 0)
    };
    let rest = tx.write_all(data).await;
    drop(tx);
    if SYNC_CALLER.get() {
        drop(done);
    } else {
        done.await.map_err(fs_error)?;
    }
    if rest.is_empty() {
        Ok(())
    } else {
        // What std says when a write stops short (the host stopped reading).
        Err("failed to write whole buffer".to_owned())
    }
}

async fn read(path: &str) -> Result<String, String> {
    let file = open(path, OpenFlags::empty(), DescriptorFlags::READ).await?;
    let bytes = read_all(&file).await?;
    Ok(String::from_utf8_lossy(&bytes)
        .chars()
        .take(READ_LIMIT)
        .collect())
}

/// std's `fs::write`: create or truncate, write-only.
async fn write_file(path: &str, data: &[u8]) -> Result<(), String> {
    let file = open(
        path,
        OpenFlags::CREATE | OpenFlags::TRUNCATE,
        DescriptorFlags::WRITE,
    )
    .await?;
    write_all(&file, data.to_vec(), false).await
}

async fn write(arg: &str) -> Result<String, String> {
    let (path, content) = pair(arg)?;
    write_file(path, content.as_bytes()).await?;
    Ok(format!("written {} bytes", content.len()))
}

async fn append(arg: &str) -> Result<String, String> {
    let (path, content) = pair(arg)?;
    let file = open(path, OpenFlags::CREATE, DescriptorFlags::WRITE).await?;
    write_all(&file, content.as_bytes().to_vec(), true).await?;
    Ok(format!("appended {} bytes", content.len()))
}

async fn write_read_only(path: &str) -> Result<String, String> {
    let file = open(path, OpenFlags::empty(), DescriptorFlags::READ).await?;
    write_all(&file, b"x".to_vec(), false).await?;
    Ok("written".to_owned())
}

async fn list(path: &str) -> Result<String, String> {
    let dir = open(path, OpenFlags::DIRECTORY, DescriptorFlags::READ).await?;
    if SYNC_CALLER.get() {
        return Err(NO_SYNC_READ_DIRECTORY.to_owned());
    }
    let (entries, done) = dir.read_directory();
    let entries = entries.collect().await;
    done.await.map_err(fs_error)?;
    let mut names = entries
        .into_iter()
        .map(|entry| entry.name)
        .collect::<Vec<_>>();
    names.sort();
    Ok(names.join(","))
}

async fn mkdir(path: &str) -> Result<String, String> {
    let at = locate(path)?;
    at.dir()
        .create_directory_at(at.rel.clone())
        .await
        .map_err(fs_error)?;
    Ok("created".to_owned())
}

async fn rmdir(path: &str) -> Result<String, String> {
    let at = locate(path)?;
    at.dir()
        .remove_directory_at(at.rel.clone())
        .await
        .map_err(fs_error)?;
    Ok("removed".to_owned())
}

async fn rm(path: &str) -> Result<String, String> {
    let at = locate(path)?;
    at.dir()
        .unlink_file_at(at.rel.clone())
        .await
        .map_err(fs_error)?;
    Ok("removed".to_owned())
}

async fn stat(path: &str) -> Result<String, String> {
    let at = locate(path)?;
    // No SYMLINK_FOLLOW, so a symlink is reported as one rather than followed.
    let meta = at
        .dir()
        .stat_at(PathFlags::empty(), at.rel.clone())
        .await
        .map_err(fs_error)?;
    let kind = match meta.type_ {
        DescriptorType::SymbolicLink => "symlink",
        DescriptorType::Directory => "dir",
        DescriptorType::RegularFile => "file",
        _ => "other",
    };
    Ok(format!("{kind} len {}", meta.size))
}

async fn readlink(path: &str) -> Result<String, String> {
    let at = locate(path)?;
    at.dir().readlink_at(at.rel.clone()).await.map_err(fs_error)
}

/// `symlink-at` on the preopen that holds LINK (as probe-ops does it by hand, std's
/// `symlink_path` being unstable on WASI, with its wording when none does).
async fn symlink(arg: &str) -> Result<String, String> {
    let (target, link) = pair(arg)?;
    let at = locate(link).map_err(|_| format!("no preopened directory contains {link}"))?;
    at.dir()
        .symlink_at(target.to_owned(), at.rel.clone())
        .await
        .map_err(fs_error)?;
    Ok("linked".to_owned())
}

/// std's `fs::hard_link`: `link-at` without following a symlink at SRC.
async fn hardlink(arg: &str) -> Result<String, String> {
    let (src, dst) = pair(arg)?;
    let (from, to) = (locate(src)?, locate(dst)?);
    from.dir()
        .link_at(
            PathFlags::empty(),
            from.rel.clone(),
            to.dir(),
            to.rel.clone(),
        )
        .await
        .map_err(fs_error)?;
    Ok("linked".to_owned())
}

async fn rename(arg: &str) -> Result<String, String> {
    let (src, dst) = pair(arg)?;
    let (from, to) = (locate(src)?, locate(dst)?);
    from.dir()
        .rename_at(from.rel.clone(), to.dir(), to.rel.clone())
        .await
        .map_err(fs_error)?;
    Ok("renamed".to_owned())
}

/// Creates, writes, reads back and removes `N` files in `/d`, one after another: a
/// file-heavy workload (for benchmarks) where every step is a filesystem call.
async fn files(arg: &str) -> Result<String, String> {
    let n = number(arg, "count")?;
    let content = [b'f'; FILE_BYTES];
    for i in 0..n {
        let path = format!("/d/f{i}.txt");
        let step = async {
            write_file(&path, &content).await?;
            let file = open(&path, OpenFlags::empty(), DescriptorFlags::READ).await?;
            let back = read_all(&file).await?;
            drop(file);
            if back != content {
                return Err(format!(
                    "read back {} bytes that differ from the {FILE_BYTES} written",
                    back.len()
                ));
            }
            let at = locate(&path)?;
            at.dir()
                .unlink_file_at(at.rel.clone())
                .await
                .map_err(fs_error)
        };
        step.await.map_err(|e| format!("file {i}: {e}"))?;
    }
    Ok(format!("{n} files"))
}

// ---------------------------------------------------------------------------------
// Environment, random, clocks and stdio.

fn env_all() -> String {
    let mut vars = environment::get_environment()
        .into_iter()
        .map(|(name, value)| format!("{name}={value}"))
        .collect::<Vec<_>>();
    vars.sort();
    vars.join(",")
}

fn random_len(bytes: Vec<u8>) -> String {
    format!("{} bytes", bytes.len())
}

fn wall_clock() -> Result<String, String> {
    let now = system_clock::now();
    if now.seconds < 0 {
        // What std's `duration_since(UNIX_EPOCH)` says of an instant before it.
        return Err("second time provided was later than self".to_owned());
    }
    Ok(now.seconds.to_string())
}

fn monotonic() -> String {
    let start = monotonic_clock::now();
    let end = monotonic_clock::now();
    end.saturating_sub(start).to_string()
}

async fn sleep(arg: &str) -> Result<String, String> {
    let ms = number(arg, "duration")?;
    monotonic_clock::wait_for(ms.saturating_mul(1_000_000)).await;
    Ok("slept".to_owned())
}

async fn read_stdin() -> Result<String, String> {
    let (stream, done) = stdin::read_via_stream();
    let bytes = stream.collect().await;
    done.await.map_err(cli_error)?;
    String::from_utf8(bytes).map_err(|_| "stream did not contain valid UTF-8".to_owned())
}

/// Writes `MIB` MiB of `x` lines to `out` in 64 KiB writes.
async fn flood(arg: &str, out: Out) -> Result<String, String> {
    let mut block = vec![b'x'; FLOOD_WRITE];
    block[FLOOD_WRITE - 1] = b'\n';
    flood_with(arg, out, &block).await
}

/// Writes MIB MiB of `block`s to `out`, in one stream, then waits for the host to
/// have written them.
async fn flood_with(arg: &str, out: Out, block: &[u8]) -> Result<String, String> {
    let mib = number(arg, "size")?;
    let total = mib
        .checked_mul(1 << 20)
        .ok_or_else(|| format!("{mib} MiB is too large"))?;
    let (mut tx, rx) = wasip3::wit_stream::new::<u8>();
    let done = out.write_via_stream(rx);
    let mut written: u64 = 0;
    let mut cut_short = false;
    while written < total {
        let rest = tx.write_all(block.to_vec()).await;
        written += (block.len() - rest.len()) as u64;
        if !rest.is_empty() {
            cut_short = true;
            break;
        }
    }
    drop(tx);
    match done.await {
        Err(e) => Err(format!("after {written} bytes: {}", cli_error(e))),
        Ok(()) if cut_short => Err(format!("after {written} bytes: {}", os_error(libc::EPIPE))),
        Ok(()) => Ok(format!("wrote {written} bytes")),
    }
}

// ---------------------------------------------------------------------------------
// Sockets, through wasi:sockets@0.3.0.

fn family(addr: &SocketAddr) -> IpAddressFamily {
    match addr {
        SocketAddr::V4(_) => IpAddressFamily::Ipv4,
        SocketAddr::V6(_) => IpAddressFamily::Ipv6,
    }
}

fn to_wasi(addr: SocketAddr) -> net::IpSocketAddress {
    match addr {
        SocketAddr::V4(v4) => {
            let [a, b, c, d] = v4.ip().octets();
            net::IpSocketAddress::Ipv4(net::Ipv4SocketAddress {
                port: v4.port(),
                address: (a, b, c, d),
            })
        }
        SocketAddr::V6(v6) => {
            let [a, b, c, d, e, f, g, h] = v6.ip().segments();
            net::IpSocketAddress::Ipv6(net::Ipv6SocketAddress {
                port: v6.port(),
                flow_info: v6.flowinfo(),
                address: (a, b, c, d, e, f, g, h),
                scope_id: v6.scope_id(),
            })
        }
    }
}

fn from_wasi(addr: net::IpSocketAddress) -> SocketAddr {
    match addr {
        net::IpSocketAddress::Ipv4(v4) => {
            let (a, b, c, d) = v4.address;
            SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::new(a, b, c, d), v4.port))
        }
        net::IpSocketAddress::Ipv6(v6) => {
            let (a, b, c, d, e, f, g, h) = v6.address;
            SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::new(a, b, c, d, e, f, g, h),
                v6.port,
                v6.flow_info,
                v6.scope_id,
            ))
        }
    }
}

fn ip_from_wasi(ip: net::IpAddress) -> IpAddr {
    match ip {
        net::IpAddress::Ipv4((a, b, c, d)) => IpAddr::V4(Ipv4Addr::new(a, b, c, d)),
        net::IpAddress::Ipv6((a, b, c, d, e, f, g, h)) => {
            IpAddr::V6(Ipv6Addr::new(a, b, c, d, e, f, g, h))
        }
    }
}

/// std's `ToSocketAddrs` for `"HOST:PORT"`: an address as it is, an IP and a port as
/// they are, a host name looked up (`resolve-addresses`), with std's errors.
async fn socket_addrs(text: &str) -> Result<Vec<SocketAddr>, String> {
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(vec![addr]);
    }
    let (host, port) = text
        .rsplit_once(':')
        .ok_or_else(|| "invalid socket address".to_owned())?;
    let port: u16 = port.parse().map_err(|_| "invalid port value".to_owned())?;
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let ips = ip_name_lookup::resolve_addresses(host.to_owned())
        .await
        .map_err(lookup_error)?;
    Ok(ips
        .into_iter()
        .map(|ip| SocketAddr::new(ip_from_wasi(ip), port))
        .collect())
}

/// Tries `each` address in turn, as std does: the first success, or the last error.
async fn each_addr<T>(
    text: &str,
    mut each: impl AsyncFnMut(SocketAddr) -> Result<T, String>,
) -> Result<T, String> {
    let mut last = None;
    for addr in socket_addrs(text).await? {
        match each(addr).await {
            Ok(done) => return Ok(done),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| "could not resolve to any addresses".to_owned()))
}

async fn resolve(host_port: &str) -> Result<String, String> {
    let addrs = socket_addrs(host_port)
        .await?
        .into_iter()
        .map(|addr| addr.to_string())
        .collect::<Vec<_>>();
    Ok(addrs.join(","))
}

async fn connect(arg: &str) -> Result<String, String> {
    each_addr(arg, async |addr| {
        let socket = TcpSocket::create(family(&addr)).map_err(net_error)?;
        socket.connect(to_wasi(addr)).await.map_err(net_error)?;
        Ok("connected".to_owned())
    })
    .await
}

async fn listen(arg: &str) -> Result<String, String> {
    each_addr(arg, async |addr| {
        let socket = TcpSocket::create(family(&addr)).map_err(net_error)?;
        socket.bind(to_wasi(addr)).map_err(net_error)?;
        // The stream of incoming connections is dropped unread.
        let _connections = socket.listen().map_err(net_error)?;
        let local = socket.get_local_address().map_err(net_error)?;
        Ok(format!("listening on {}", from_wasi(local)))
    })
    .await
}

/// Creates `N` TCP sockets and leaks them, so each stays a live handle in the host's
/// resource table for the rest of the instance's life.
fn sockets(arg: &str) -> Result<String, String> {
    let n = number(arg, "count")?;
    for created in 0..n {
        match TcpSocket::create(IpAddressFamily::Ipv4) {
            Ok(socket) => std::mem::forget(socket),
            Err(e) => return Err(format!("after {created} sockets: {}", net_error(e))),
        }
    }
    Ok(format!("{n} sockets"))
}

/// Looks up one huge name `N` times, each lookup expected to be refused: the host
/// must not keep what it records of each (the name) in full.
async fn lookups(arg: &str) -> Result<String, String> {
    let (n, bytes) = arg
        .split_once(':')
        .ok_or_else(|| format!("expected N:BYTES, got {arg:?}"))?;
    let (n, bytes) = (number(n, "count")?, number(bytes, "size")?);
    let name = format!("{}.test", "a".repeat(bytes.saturating_sub(5) as usize));
    for i in 0..n {
        match ip_name_lookup::resolve_addresses(name.clone()).await {
            Err(ip_name_lookup::ErrorCode::AccessDenied) => {}
            Err(e) => return Err(format!("lookup {i}: {}", lookup_error(e))),
            Ok(_) => return Err(format!("lookup {i} was allowed")),
        }
    }
    Ok(format!("{n} refused"))
}

thread_local! {
    /// The socket the `udp-*` ops share, kept between calls into this instance.
    static UDP_SOCKET: RefCell<Option<Rc<UdpSocket>>> = const { RefCell::new(None) };
}

async fn udp_bind(addr: &str) -> Result<String, String> {
    // The previous socket is closed first, so that rebinding its address works.
    UDP_SOCKET.with(|kept| kept.borrow_mut().take());
    let (socket, local) = each_addr(addr, async |addr| {
        let socket = UdpSocket::create(family(&addr)).map_err(net_error)?;
        socket.bind(to_wasi(addr)).map_err(net_error)?;
        let local = socket.get_local_address().map_err(net_error)?;
        Ok((socket, from_wasi(local)))
    })
    .await?;
    UDP_SOCKET.with(|kept| *kept.borrow_mut() = Some(Rc::new(socket)));
    Ok(format!("bound {local}"))
}

/// The socket `udp-bind` kept.
fn udp_socket() -> Result<Rc<UdpSocket>, String> {
    UDP_SOCKET
        .with(|kept| kept.borrow().clone())
        .ok_or_else(|| "no socket: bind one first with udp-bind".to_owned())
}

async fn udp_send(arg: &str) -> Result<String, String> {
    let (addr, data) = pair(arg)?;
    let socket = udp_socket()?;
    // As std's `send_to`: the first address a name resolves to.
    let to = socket_addrs(addr)
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| "no addresses to send data to".to_owned())?;
    socket
        .send(data.as_bytes().to_vec(), Some(to_wasi(to)))
        .await
        .map_err(net_error)?;
    Ok(format!("sent {} bytes", data.len()))
}

/// The first datagram the kept socket receives within MS ms: `receive` raced against
/// `wait-for` (needs the monotonic clock, as probe-ops' polling does).
async fn udp_recv(arg: &str) -> Result<String, String> {
    let ms = number(arg, "duration")?;
    let socket = udp_socket()?;
    let received = first_of(
        socket.receive(),
        monotonic_clock::wait_for(ms.saturating_mul(1_000_000)),
    )
    .await;
    match received {
        Some(Ok((data, peer))) => Ok(format!(
            "from {}: {}",
            from_wasi(peer),
            String::from_utf8_lossy(&data)
        )),
        Some(Err(e)) => Err(net_error(e)),
        None => Err(format!("nothing received in {ms} ms")),
    }
}

/// `Some` of `main`'s output if it finishes first, `None` if `deadline` does; the other
/// is dropped (which cancels its WASI subtask).
async fn first_of<T>(
    main: impl Future<Output = T>,
    deadline: impl Future<Output = ()>,
) -> Option<T> {
    let mut main = pin!(main);
    let mut deadline = pin!(deadline);
    poll_fn(|cx| {
        if let Poll::Ready(out) = main.as_mut().poll(cx) {
            return Poll::Ready(Some(out));
        }
        if deadline.as_mut().poll(cx).is_ready() {
            return Poll::Ready(None);
        }
        Poll::Pending
    })
    .await
}

// ---------------------------------------------------------------------------------
// Memory and CPU: no WASI at all, the same as probe-ops.

/// Burns CPU forever. `black_box` keeps the optimizer from proving the loop does
/// nothing, so the host really has to interrupt it (fuel, epochs or a deadline).
fn spin() -> ! {
    let mut n: u64 = 0;
    loop {
        n = black_box(n.wrapping_add(1));
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
    black_box(&block);
    Ok(format!("allocated {mib} MiB"))
}

fn recurse(arg: &str) -> Result<String, String> {
    let target = number(arg, "depth")?;
    Ok(format!("depth reached {}", descend(0, target)))
}

/// Recurses from `depth` down to `target`, each frame holding a live array (see
/// probe-ops).
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

/// Allocates 1 MiB chunks until memory runs out (a trap: std's allocation-error
/// handler aborts).
fn bomb() -> Result<String, String> {
    const MAX_CHUNKS: usize = 1 << 16;
    let mut chunks: Vec<Vec<u8>> = Vec::new();
    for _ in 0..MAX_CHUNKS {
        let chunk = vec![1u8; BOMB_CHUNK];
        chunks.push(black_box(chunk));
        black_box(&mut chunks);
    }
    Err(format!(
        "allocated {} MiB without running out of memory",
        chunks.len()
    ))
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
