//! Uses the resource exported by `res-child` (`test:res/counters`) through the proxies
//! nanoproc hands it, following the operations given as arguments, and prints
//! `<arg> => ok: ...` or `<arg> => err: ...` for each (like the probe driver).
//!
//! Counters are kept in a list and named by their index in it, in creation order:
//! - `new:N`: a counter starting at N; prints `ok: #<index>`.
//! - `inc:I`, `get:I`: prints `ok: <value>`.
//! - `fork:I`: a new counter starting at counter I's value; prints `ok: #<index>`.
//! - `total:I,J`: lends both counters for one call; prints `ok: <sum>`.
//! - `consume:I`: gives counter I away (it leaves the list); prints `ok: <last value>`.
//! - `drop:I`: drops counter I; prints `ok: dropped #I`.
//! - `live`: how many counters are alive in the child; prints `ok: <n>`.
//! - `crash`: asks the child to panic; prints what the call returned.
//! - `forge:N`: presents handle number N, which it was never given, as a counter and
//!   calls `inc` on it (this must trap this nanoprocess).
//! - `stale:I`: like `forge`, with the handle number counter I had before it was
//!   dropped or given away.
//! - `repeat:N,OP+OP...`: runs the operations N times in turn; prints `ok: N times:
//!   <last answer>` or the first error, with the round it happened in.
//!
//! An index may also count from the end of the list: `-1` is the newest counter.
//!
//! Without arguments: counter(5), incremented twice, prints "counter: 7".

wit_bindgen::generate!({ path: "../wit/res.wit", world: "res-parent" });

use std::process::ExitCode;

use test::res::counters::{self, Counter};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.is_empty() {
        let counter = Counter::new(5);
        counter.inc();
        let value = counter.inc();
        println!("counter: {value}");
        return ExitCode::SUCCESS;
    }
    let mut state = State::default();
    for arg in &args {
        let line = match state.run(arg) {
            Ok(answer) => format!("ok: {answer}"),
            Err(e) => format!("err: {e}"),
        };
        println!("{arg} => {line}");
    }
    ExitCode::SUCCESS
}

#[derive(Default)]
struct State {
    /// The counters, by index; `None` once dropped or given away.
    counters: Vec<Option<Counter>>,
    /// The handle number each counter had, by the same index.
    handles: Vec<u32>,
}

impl State {
    fn run(&mut self, arg: &str) -> Result<String, String> {
        let (op, rest) = arg.split_once(':').unwrap_or((arg, ""));
        match op {
            "new" => Ok(self.push(Counter::new(number(rest)?))),
            "inc" => Ok(self.counter(rest)?.inc().to_string()),
            "get" => Ok(self.counter(rest)?.get().to_string()),
            "fork" => {
                let forked = self.counter(rest)?.fork();
                Ok(self.push(forked))
            }
            "total" => {
                let (a, b) = rest
                    .split_once(',')
                    .ok_or_else(|| format!("expected total:I,J, got {arg:?}"))?;
                Ok(counters::total(self.counter(a)?, self.counter(b)?).to_string())
            }
            "consume" => {
                let counter = self.take(rest)?;
                Ok(counters::consume(counter).to_string())
            }
            "drop" => {
                drop(self.take(rest)?);
                Ok(format!("dropped #{rest}"))
            }
            "live" => Ok(counters::live().to_string()),
            "crash" => counters::crash().map(|n| n.to_string()),
            "forge" => Ok(forged_inc(number(rest)?)),
            "repeat" => {
                let (n, ops) = rest
                    .split_once(',')
                    .ok_or_else(|| format!("expected repeat:N,OP+OP..., got {arg:?}"))?;
                let n = number(n)?;
                let mut last = String::new();
                for round in 1..=n {
                    for op in ops.split('+') {
                        last = self
                            .run(op)
                            .map_err(|e| format!("round {round}, {op}: {e}"))?;
                    }
                }
                Ok(format!("{n} times: {last}"))
            }
            "stale" => {
                let index = self.index(rest)?;
                let handle = *self
                    .handles
                    .get(index)
                    .ok_or_else(|| format!("no counter #{index}"))?;
                Ok(forged_inc(handle))
            }
            _ => Err(format!("unknown operation {arg:?}")),
        }
    }

    /// An index into the list: `I` from the start, `-I` from the end.
    fn index(&self, s: &str) -> Result<usize, String> {
        let parse = |s: &str| {
            s.parse::<usize>()
                .map_err(|_| format!("expected an index, got {s:?}"))
        };
        match s.strip_prefix('-') {
            Some(back) => self
                .counters
                .len()
                .checked_sub(parse(back)?)
                .ok_or_else(|| format!("no counter {s}")),
            None => parse(s),
        }
    }

    /// Adds a counter to the list and returns `#<index>`.
    fn push(&mut self, counter: Counter) -> String {
        self.handles.push(counter.handle());
        self.counters.push(Some(counter));
        format!("#{}", self.counters.len() - 1)
    }

    fn counter(&self, i: &str) -> Result<&Counter, String> {
        let index = self.index(i)?;
        self.counters
            .get(index)
            .and_then(Option::as_ref)
            .ok_or_else(|| format!("no counter #{index} here"))
    }

    fn take(&mut self, i: &str) -> Result<Counter, String> {
        let index = self.index(i)?;
        self.counters
            .get_mut(index)
            .and_then(Option::take)
            .ok_or_else(|| format!("no counter #{index} here"))
    }
}

/// Calls `inc` on whatever handle number `handle` names in this instance's table.
fn forged_inc(handle: u32) -> String {
    // SAFETY: deliberately unsound: the point is to present a handle this instance
    // does not own, and the canonical ABI must refuse it.
    let forged = unsafe { Counter::from_handle(handle) };
    let value = forged.inc();
    // Not ours to drop, should the call have worked at all.
    std::mem::forget(forged);
    format!("forged handle {handle} answered {value}")
}

fn number(s: &str) -> Result<u32, String> {
    s.parse()
        .map_err(|_| format!("expected a number, got {s:?}"))
}
