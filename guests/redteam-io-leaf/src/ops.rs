//! The operations of the red-team stdio guests, one string each (`name:argument`),
//! each answering `ok: ...` or `err: ...`. They use the raw WASI streams, so that
//! what reaches the host is exactly the bytes written, in the writes chosen:
//!
//! | op | what it does |
//! |----|--------------|
//! | `out:TEXT`, `err:TEXT` | writes TEXT to stdout / stderr, no newline added (`\n`, `\e`, `\a`, `\\` are decoded), in writes of at most 4096 bytes |
//! | `big:KIB`, `big-err:KIB` | one single `write` of KIB KiB of `x` (no newline), ignoring `check-write`'s permit, then a flush |
//! | `flood:KIB` | KIB KiB of `x` lines to stdout in 4 KiB writes; `err:` at the first failure |
//! | `tiny:N` | N writes of one `y` each to stdout (no newline) |
//! | `read:N` | one read of up to N bytes of stdin: `ok: <bytes as text>`, `err: closed` at the end |
//! | `read-all` | reads stdin to its end, then reads 100 more times (each must say closed at once) |
//! | `splice:N` | one `splice` of up to N bytes from stdin to stdout |
//! | `lookup:NAME` | resolves NAME (decoded as for `out:`) through `wasi:sockets/ip-name-lookup` |

use wasip2::cli::{stderr::get_stderr, stdin::get_stdin, stdout::get_stdout};
use wasip2::io::streams::{OutputStream, StreamError};

pub fn run_op(op: &str) -> String {
    let (name, arg) = op.split_once(':').unwrap_or((op, ""));
    let outcome = match name {
        "out" => write_text(&get_stdout(), &decode(arg)),
        "err" => write_text(&get_stderr(), &decode(arg)),
        "big" => big(&get_stdout(), arg),
        "big-err" => big(&get_stderr(), arg),
        "flood" => flood(arg),
        "tiny" => tiny(arg),
        "read" => read(arg),
        "read-all" => read_all(),
        "splice" => splice(arg),
        "lookup" => lookup(&decode(arg)),
        _ => Err("unknown op".to_owned()),
    };
    match outcome {
        Ok(detail) => format!("ok: {detail}"),
        Err(detail) => format!("err: {detail}"),
    }
}

/// `\n`, `\e` (ESC), `\a` (BEL) and `\\` decoded.
fn decode(text: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let mut bytes = text.bytes();
    while let Some(b) = bytes.next() {
        if b != b'\\' {
            out.push(b);
            continue;
        }
        match bytes.next() {
            Some(b'n') => out.push(b'\n'),
            Some(b'e') => out.push(0x1b),
            Some(b'a') => out.push(0x07),
            Some(other) => out.push(other),
            None => out.push(b'\\'),
        }
    }
    out
}

fn number(arg: &str) -> Result<u64, String> {
    arg.parse().map_err(|e| format!("bad number {arg:?}: {e}"))
}

fn stream_error(e: StreamError) -> String {
    match e {
        StreamError::Closed => "closed".to_owned(),
        StreamError::LastOperationFailed(e) => e.to_debug_string(),
    }
}

fn write_text(out: &OutputStream, text: &[u8]) -> Result<String, String> {
    for chunk in text.chunks(4096) {
        out.blocking_write_and_flush(chunk).map_err(stream_error)?;
    }
    Ok(format!("wrote {}", text.len()))
}

fn big(out: &OutputStream, arg: &str) -> Result<String, String> {
    let bytes = vec![b'x'; (number(arg)? as usize) << 10];
    out.write(&bytes).map_err(stream_error)?;
    out.blocking_flush().map_err(stream_error)?;
    Ok(format!("wrote {} in one write", bytes.len()))
}

fn flood(arg: &str) -> Result<String, String> {
    let total = number(arg)? << 10;
    let mut block = vec![b'x'; 4096];
    block[4095] = b'\n';
    let out = get_stdout();
    let mut written = 0;
    while written < total {
        out.blocking_write_and_flush(&block)
            .map_err(|e| format!("after {written} bytes: {}", stream_error(e)))?;
        written += block.len() as u64;
    }
    Ok(format!("wrote {written}"))
}

fn tiny(arg: &str) -> Result<String, String> {
    let n = number(arg)?;
    let out = get_stdout();
    for i in 0..n {
        out.blocking_write_and_flush(b"y")
            .map_err(|e| format!("after {i} writes: {}", stream_error(e)))?;
    }
    Ok(format!("{n} writes"))
}

fn read(arg: &str) -> Result<String, String> {
    let bytes = get_stdin()
        .blocking_read(number(arg)?)
        .map_err(stream_error)?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

fn read_all() -> Result<String, String> {
    let stdin = get_stdin();
    let mut all = Vec::new();
    loop {
        match stdin.blocking_read(64 << 10) {
            Ok(bytes) => all.extend(bytes),
            Err(StreamError::Closed) => break,
            Err(e) => return Err(stream_error(e)),
        }
    }
    for i in 0..100 {
        match stdin.blocking_read(1) {
            Err(StreamError::Closed) => {}
            other => return Err(format!("read {i} after the end: {other:?}")),
        }
    }
    Ok(String::from_utf8_lossy(&all).into_owned())
}

fn splice(arg: &str) -> Result<String, String> {
    let n = get_stdout()
        .splice(&get_stdin(), number(arg)?)
        .map_err(stream_error)?;
    Ok(format!("spliced {n}"))
}

fn lookup(name: &[u8]) -> Result<String, String> {
    use wasip2::sockets::instance_network::instance_network;
    use wasip2::sockets::ip_name_lookup::resolve_addresses;
    let name = String::from_utf8_lossy(name);
    match resolve_addresses(&instance_network(), &name) {
        Ok(_) => Ok("allowed".to_owned()),
        Err(e) => Err(format!("{e:?}")),
    }
}
