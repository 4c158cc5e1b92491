//! Which plans can stop a guest that computes, through the library: a runtime is
//! interruptible by default, and a plan built without epoch checks refuses a run
//! timeout it could not keep.

use nanoproc_runtime::caps::GrantRequest;
use nanoproc_runtime::{RunError, RunOptions, Runtime, StopReason};
use std::time::{Duration, Instant};

fn spin_plan(runtime: &Runtime) -> nanoproc_runtime::Plan {
    runtime
        .check_component(
            xtask::guest("probe_cmd"),
            GrantRequest::default(),
            &["spin".to_string()],
        )
        .expect("probe_cmd checks")
}

#[test]
fn by_default_a_run_timeout_stops_a_guest_that_computes() {
    let runtime = Runtime::new().unwrap();
    let plan = spin_plan(&runtime);
    assert!(plan.interrupts_wasm());
    let started = Instant::now();
    let outcome = plan.run_with(&RunOptions {
        timeout: Some(Duration::from_millis(200)),
        ..Default::default()
    });
    assert!(
        matches!(outcome, Err(RunError::Stopped(StopReason::TimedOut))),
        "{outcome:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[test]
fn a_plan_without_epoch_checks_refuses_a_run_timeout() {
    let runtime = Runtime::new().unwrap().with_interruption(false);
    let plan = spin_plan(&runtime);
    assert!(!plan.interrupts_wasm(), "no time limit anywhere");
    let outcome = plan.start(&RunOptions {
        timeout: Some(Duration::from_millis(200)),
        ..Default::default()
    });
    match outcome {
        Err(RunError::Instantiate { message, .. }) => {
            assert!(
                message.contains("needs a plan that can interrupt wasm"),
                "{message}"
            )
        }
        Err(other) => panic!("{other}"),
        Ok(_) => panic!("a timeout it cannot keep was accepted"),
    }
}
