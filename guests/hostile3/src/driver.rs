//! `hostile3_driver`: a WASI 0.3 command importing `probe` and `sibling`
//! (`wit/probe.wit`'s `driver` world). `child:OP` and `sibling:OP` forward OP;
//! `both:OP` calls `probe` and `sibling` with OP from two spawned tasks of its
//! `run` task at once, while a third task awaits a host timer; anything else runs
//! here (see `ops`). Prints `<arg> => <outcome>` per answer line.

mod ops;

wit_bindgen_p3::generate!({
    path: "../wit/probe.wit",
    world: "driver",
    runtime_path: "wit_bindgen_p3::rt",
});

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use test::probe::{probe, sibling};

struct Driver;

wasip3::cli::command::export!(Driver);

fn answer(r: Result<Vec<String>, String>) -> Vec<String> {
    match r {
        Ok(lines) => lines,
        Err(e) => vec![format!("err: {e}")],
    }
}

impl wasip3::exports::cli::run::Guest for Driver {
    async fn run() -> Result<(), ()> {
        for arg in ops::arguments() {
            let lines = match arg.split_once(':') {
                Some(("child", rest)) => answer(probe::run(&[rest.to_owned()])),
                Some(("sibling", rest)) => answer(sibling::run(&[rest.to_owned()])),
                Some(("both", rest)) => both(rest).await,
                _ => vec![ops::run_async(&arg).await],
            };
            for line in lines {
                ops::print(&format!("{arg} => {line}"))
                    .await
                    .map_err(|_| ())?;
            }
        }
        Ok(())
    }
}

/// `probe` and `sibling` called from two tasks at once, beside this one awaiting
/// a timer: the answers in the order they came.
async fn both(op: &str) -> Vec<String> {
    let got = Rc::new(RefCell::new(Vec::new()));
    let done = Rc::new(Cell::new(0u32));
    for (which, call) in [
        ("probe", probe::run as fn(&[String]) -> _),
        ("sibling", sibling::run),
    ] {
        let (got, done, op) = (got.clone(), done.clone(), op.to_owned());
        wit_bindgen_p3::spawn_local(async move {
            wasip3::clocks::monotonic_clock::wait_for(1_000_000).await;
            let lines = answer(call(&[op]));
            got.borrow_mut()
                .extend(lines.into_iter().map(|l| format!("{which} {l}")));
            done.set(done.get() + 1);
        });
    }
    // At most about 10 s.
    for _ in 0..10_000 {
        if done.get() == 2 {
            break;
        }
        wasip3::clocks::monotonic_clock::wait_for(1_000_000).await;
    }
    got.borrow().clone()
}

/// std's entry point (`wasi:cli/run@0.2.0`): not the one to run.
fn main() {
    eprintln!("hostile3_driver: run it through wasi:cli/run@0.3.0");
    std::process::exit(2);
}
