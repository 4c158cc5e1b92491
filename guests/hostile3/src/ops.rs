//! The hostile WASI 0.3 operations both components of this crate run. Each is one
//! string, `name` or `name:argument`, answered with one line, `ok: ...` or `err: ...`.
//!
//! | op | what it does |
//! |----|--------------|
//! | `streams:N` | `stream.new` N times; both ends of every stream are kept (never dropped) |
//! | `futures:N` | `future.new` N times, likewise kept |
//! | `sets:N` | `waitable-set.new` N times, kept |
//! | `waits:N:MS` | starts N `monotonic-clock.wait-for(MS)` calls (async-lowered, raw) and never waits for them nor drops them: N host calls left pending |
//! | `count` | how many ops this instance has run, this one included |
//! | `spin` | never returns |
//! | `sleep:MS` | awaits `wait-for(MS)` |
//! | `spawn-print:MS:TEXT` | spawns a task that waits MS ms and then prints TEXT on stdout, and answers at once |
//! | `spawn-spin` | spawns a task that yields once and then never returns, and answers at once |
//! | `spawn-trap:MS` | spawns a task that waits MS ms and then panics (a trap), and answers at once |
//! | `deadlock` | awaits a read of a stream whose only writer this task holds and never writes |
//! | `write-streams:N:BYTES` | N `stdout.write-via-stream` calls at once, BYTES bytes each, all awaited |
//!
//! From an ordinary (not `async`) export, ops run under `wit_bindgen::block_on`: one
//! that must wait traps there ("cannot block a synchronous task"), which is what the
//! component model says a synchronous task may do.

use std::cell::Cell;
use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::task::Poll;

use wasip3::cli::stdout;
use wasip3::clocks::monotonic_clock;

#[link(wasm_import_module = "$root")]
unsafe extern "C" {
    #[link_name = "[waitable-set-new]"]
    fn waitable_set_new() -> u32;
}

#[link(wasm_import_module = "wasi:clocks/monotonic-clock@0.3.0")]
unsafe extern "C" {
    /// `wait-for`, lowered async: returns at once with the subtask's state in the
    /// low 4 bits (0 starting, 1 started, 2 returned) and its handle above them.
    #[link_name = "[async-lower]wait-for"]
    fn wait_for_async(how_long: i64) -> i32;
}

thread_local! {
    static OPS: Cell<u64> = const { Cell::new(0) };
}

fn number(s: &str, what: &str) -> Result<u64, String> {
    s.parse().map_err(|_| format!("bad {what}: {s:?}"))
}

/// Runs one op from synchronous code (an ordinary export).
#[allow(dead_code)] // the driver has no ordinary export
pub fn run_sync(op: &str) -> String {
    wit_bindgen_p3::block_on(run_async(op))
}

/// Runs one op and describes its outcome.
pub async fn run_async(op: &str) -> String {
    OPS.with(|c| c.set(c.get() + 1));
    let (name, arg) = op.split_once(':').unwrap_or((op, ""));
    let outcome = match name {
        "streams" => streams(arg),
        "futures" => futures(arg),
        "sets" => sets(arg),
        "waits" => waits(arg),
        "count" => Ok(OPS.with(|c| c.get()).to_string()),
        "spin" => spin(),
        "sleep" => sleep(arg).await,
        "spawn-print" => spawn_print(arg),
        "spawn-spin" => spawn_spin(),
        "spawn-trap" => spawn_trap(arg),
        "deadlock" => deadlock().await,
        "write-streams" => write_streams(arg).await,
        _ => Err("unknown op".to_owned()),
    };
    match outcome {
        Ok(detail) => format!("ok: {detail}"),
        Err(detail) => format!("err: {detail}"),
    }
}

fn streams(arg: &str) -> Result<String, String> {
    let n = number(arg, "count")?;
    for _ in 0..n {
        let (tx, rx) = wasip3::wit_stream::new::<u8>();
        std::mem::forget(tx);
        std::mem::forget(rx);
    }
    Ok(format!("{n} streams"))
}

type Unit = Result<(), wasip3::sockets::types::ErrorCode>;

fn futures(arg: &str) -> Result<String, String> {
    let n = number(arg, "count")?;
    for _ in 0..n {
        let (tx, rx) = wasip3::wit_future::new::<Unit>(|| Ok(()));
        std::mem::forget(tx);
        std::mem::forget(rx);
    }
    Ok(format!("{n} futures"))
}

fn sets(arg: &str) -> Result<String, String> {
    let n = number(arg, "count")?;
    for _ in 0..n {
        // SAFETY: a canonical built-in with no arguments.
        unsafe { waitable_set_new() };
    }
    Ok(format!("{n} waitable sets"))
}

fn waits(arg: &str) -> Result<String, String> {
    let (n, ms) = arg.split_once(':').ok_or("waits:N:MS")?;
    let (n, ms) = (number(n, "count")?, number(ms, "duration")?);
    let mut pending = 0u64;
    for _ in 0..n {
        // SAFETY: `wait-for` takes one u64 and writes no results.
        let status = unsafe { wait_for_async(ms.saturating_mul(1_000_000) as i64) } as u32;
        if status & 0xf != 2 {
            pending += 1;
        }
    }
    Ok(format!("{n} waits started, {pending} pending"))
}

fn spin() -> Result<String, String> {
    let mut x = 0u64;
    loop {
        x = std::hint::black_box(x.wrapping_add(1));
    }
}

async fn sleep(arg: &str) -> Result<String, String> {
    let ms = number(arg, "duration")?;
    monotonic_clock::wait_for(ms.saturating_mul(1_000_000)).await;
    Ok("slept".to_owned())
}

fn spawn_print(arg: &str) -> Result<String, String> {
    let (ms, text) = arg.split_once(':').ok_or("spawn-print:MS:TEXT")?;
    let ms = number(ms, "duration")?;
    let text = text.to_owned();
    wit_bindgen_p3::spawn_local(async move {
        monotonic_clock::wait_for(ms.saturating_mul(1_000_000)).await;
        let _ = print(&text).await;
    });
    Ok("spawned".to_owned())
}

fn spawn_spin() -> Result<String, String> {
    wit_bindgen_p3::spawn_local(async move {
        wit_bindgen_p3::yield_async().await;
        let _ = spin();
    });
    Ok("spawned".to_owned())
}

fn spawn_trap(arg: &str) -> Result<String, String> {
    let ms = number(arg, "duration")?;
    wit_bindgen_p3::spawn_local(async move {
        monotonic_clock::wait_for(ms.saturating_mul(1_000_000)).await;
        panic!("a spawned task trapped");
    });
    Ok("spawned".to_owned())
}

async fn deadlock() -> Result<String, String> {
    let (tx, mut rx) = wasip3::wit_stream::new::<u8>();
    let got = rx.next().await;
    drop(tx);
    Ok(format!("read {got:?}"))
}

async fn write_streams(arg: &str) -> Result<String, String> {
    let (n, bytes) = arg.split_once(':').ok_or("write-streams:N:BYTES")?;
    let (n, bytes) = (number(n, "count")?, number(bytes, "size")? as usize);
    let mut work: Vec<Pin<Box<dyn Future<Output = usize>>>> = Vec::new();
    for _ in 0..n {
        let (mut tx, rx) = wasip3::wit_stream::new::<u8>();
        let done = stdout::write_via_stream(rx);
        work.push(Box::pin(async move {
            let rest = tx.write_all(vec![b'x'; bytes]).await;
            drop(tx);
            let _ = done.await;
            bytes - rest.len()
        }));
    }
    let written: usize = join_all(work).await.into_iter().sum();
    Ok(format!("{n} streams wrote {written} bytes"))
}

/// Polls every future until all are done, in order of their results.
async fn join_all<T>(mut work: Vec<Pin<Box<dyn Future<Output = T>>>>) -> Vec<T> {
    let mut out: Vec<Option<T>> = work.iter().map(|_| None).collect();
    poll_fn(|cx| {
        let mut pending = false;
        for (i, f) in work.iter_mut().enumerate() {
            if out[i].is_none() {
                match f.as_mut().poll(cx) {
                    Poll::Ready(v) => out[i] = Some(v),
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    out.into_iter()
        .map(|v| v.expect("every future finished"))
        .collect()
}

/// Writes `text` and a newline through `wasi:cli/stdout@0.3.0`.
pub async fn print(text: &str) -> Result<(), String> {
    let (mut tx, rx) = wasip3::wit_stream::new::<u8>();
    let done = stdout::write_via_stream(rx);
    let rest = tx.write_all(format!("{text}\n").into_bytes()).await;
    drop(tx);
    done.await.map_err(|e| format!("{e:?}"))?;
    if rest.is_empty() {
        Ok(())
    } else {
        Err("stdout closed".to_owned())
    }
}

/// The arguments after the program's name.
pub fn arguments() -> Vec<String> {
    wasip3::cli::environment::get_arguments()
        .into_iter()
        .skip(1)
        .collect()
}
