//! A spinner on stderr while components compile for long: the first run of an
//! interpreter built as a component compiles for seconds, in silence otherwise.
//!
//! Only on a terminal (a log or a pipe gets no redrawn lines), and only once a
//! compile has gone on for [`QUIET_FOR`]: most compiles take tens of
//! milliseconds, and a cache hit none, and a spinner that flashes for those would
//! be noise. It is cleared when the last compile ends, before anything runs.

use crate::report::printable;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use nanoproc_runtime::CompileProgress;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// How long a compile goes on before the spinner appears.
const QUIET_FOR: Duration = Duration::from_millis(300);

/// The progress hook for the runtime, if stderr is a terminal.
pub fn on_terminal() -> Option<impl Fn(&CompileProgress) + Send + Sync + 'static> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let spinner = Arc::new(Spinner::default());
    Some(move |step: &CompileProgress| spinner.step(step))
}

#[derive(Default)]
struct Spinner {
    state: Mutex<State>,
    /// Woken when a compile ends, so that the watcher notices there is none left.
    changed: Condvar,
}

#[derive(Default)]
struct State {
    /// The compiles going on: file, size, since when.
    compiling: Vec<(PathBuf, u64, Instant)>,
    /// A watcher thread is waiting to show the spinner, or showing it.
    watching: bool,
    /// The spinner, once shown.
    bar: Option<ProgressBar>,
}

impl Spinner {
    fn step(self: &Arc<Self>, step: &CompileProgress) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        match step {
            CompileProgress::Started { component, bytes } => {
                state
                    .compiling
                    .push((component.clone(), *bytes, Instant::now()));
                if !state.watching {
                    let me = self.clone();
                    // Without a thread there is no spinner, and nothing else lost.
                    state.watching = std::thread::Builder::new()
                        .name("nanoproc-progress".into())
                        .spawn(move || me.watch())
                        .is_ok();
                }
            }
            CompileProgress::Finished { component, .. } => {
                if let Some(ix) = state.compiling.iter().position(|(c, ..)| c == component) {
                    state.compiling.remove(ix);
                }
                // Cleared here, by the compile that ended last, so that it is gone
                // before the check returns and anything else is printed.
                if state.compiling.is_empty()
                    && let Some(bar) = state.bar.take()
                {
                    bar.finish_and_clear();
                }
                self.changed.notify_all();
            }
        }
        if let Some(bar) = &state.bar {
            bar.set_message(describe(&state.compiling));
        }
    }

    /// Waits until a compile has gone on for [`QUIET_FOR`], shows the spinner, and
    /// clears it when no compile is left; ends as soon as none is.
    fn watch(&self) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            let Some(oldest) = state.compiling.iter().map(|(.., since)| *since).min() else {
                if let Some(bar) = state.bar.take() {
                    bar.finish_and_clear();
                }
                state.watching = false;
                return;
            };
            let waited = oldest.elapsed();
            if state.bar.is_none() && waited >= QUIET_FOR {
                let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
                bar.set_style(
                    ProgressStyle::with_template("{spinner} {msg} {elapsed}")
                        .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                );
                bar.set_message(describe(&state.compiling));
                bar.enable_steady_tick(Duration::from_millis(100));
                state.bar = Some(bar);
            }
            let wait = if state.bar.is_some() {
                // Shown: only the end of a compile matters now.
                Duration::from_secs(1)
            } else {
                QUIET_FOR.saturating_sub(waited)
            };
            state = self
                .changed
                .wait_timeout(state, wait)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

/// `compiling app.wasm (12.1 MiB)`, or with several files, the count and each.
fn describe(compiling: &[(PathBuf, u64, Instant)]) -> String {
    let files: Vec<String> = compiling
        .iter()
        .map(|(path, bytes, _)| {
            let name = path.file_name().unwrap_or(path.as_os_str());
            format!("{} ({})", printable(&name.to_string_lossy()), size(*bytes))
        })
        .collect();
    match files.len() {
        0 => "compiling".to_string(),
        1 => format!("compiling {}", files[0]),
        n => format!("compiling {n} components: {}", files.join(", ")),
    }
}

/// A file size for people: `824 KiB`, `12.4 MiB`.
fn size(bytes: u64) -> String {
    const KIB: f64 = 1024.0;
    let b = bytes as f64;
    if b < KIB {
        format!("{bytes} B")
    } else if b < KIB * KIB {
        format!("{:.0} KiB", b / KIB)
    } else {
        format!("{:.1} MiB", b / (KIB * KIB))
    }
}
