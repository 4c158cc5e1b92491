//! The top of a three-level chain of resources: uses `test:res/meters` (from `res-mid`,
//! whose meters hold counters of `res-child`) following the operations given as
//! arguments, and prints `<arg> => ok: ...` or `<arg> => err: ...` for each.
//!
//! Meters are kept in a list and named by their index in it, in creation order:
//! - `new:N`: a meter whose counter starts at N; prints `ok: #<index>`.
//! - `tick:I`: prints `ok: <value>`.
//! - `drop:I`: drops meter I; prints `ok: dropped #I`.
//! - `live`: how many meters are alive in the middle level; prints `ok: <n>`.
//! - `counters-live`: how many counters are alive in the level below it.

wit_bindgen::generate!({ path: "../wit/res.wit", world: "res-top" });

use test::res::meters::{self, Meter};

fn main() {
    let mut meters: Vec<Option<Meter>> = Vec::new();
    for arg in std::env::args().skip(1) {
        let line = match run(&mut meters, &arg) {
            Ok(answer) => format!("ok: {answer}"),
            Err(e) => format!("err: {e}"),
        };
        println!("{arg} => {line}");
    }
}

fn run(meters: &mut Vec<Option<Meter>>, arg: &str) -> Result<String, String> {
    let (op, rest) = arg.split_once(':').unwrap_or((arg, ""));
    match op {
        "new" => {
            let start = rest
                .parse()
                .map_err(|_| format!("expected a number, got {rest:?}"))?;
            meters.push(Some(Meter::new(start)));
            Ok(format!("#{}", meters.len() - 1))
        }
        "tick" => {
            let meter = meters
                .get(index(rest)?)
                .and_then(Option::as_ref)
                .ok_or_else(|| format!("no meter #{rest} here"))?;
            Ok(meter.tick().to_string())
        }
        "drop" => {
            let meter = meters
                .get_mut(index(rest)?)
                .and_then(Option::take)
                .ok_or_else(|| format!("no meter #{rest} here"))?;
            drop(meter);
            Ok(format!("dropped #{rest}"))
        }
        "live" => Ok(meters::live().to_string()),
        "counters-live" => Ok(meters::counters_live().to_string()),
        _ => Err(format!("unknown operation {arg:?}")),
    }
}

fn index(s: &str) -> Result<usize, String> {
    s.parse()
        .map_err(|_| format!("expected an index, got {s:?}"))
}
