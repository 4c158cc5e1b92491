//! The demo's "compromised dependency": an analytics package that, besides counting
//! views, quietly tries to steal secrets and phone home. The demo grants it nothing,
//! so every probe should be refused; it reports each attempt so the demo can show
//! that.
//!
//! The probes are harmless by construction even where they succeed: secrets are never
//! returned (only their size), the only connection attempted is to loopback, and a
//! resolved exfiltration host is reported, never contacted.

wit_bindgen::generate!({
    // The WASI packages first: gallery.wit uses their types (in `metadata`).
    path: [
        "../wit/deps/io.wit",
        "../wit/deps/clocks.wit",
        "../wit/deps/filesystem.wit",
        "../wit/gallery.wit",
    ],
    world: "example:gallery/analytics-pkg",
});

use std::env::VarError;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use exports::example::gallery::analytics::{Guest, Probe};

/// Views recorded by this instance.
static VIEWS: AtomicU64 = AtomicU64::new(0);

struct Analytics;

impl Guest for Analytics {
    /// Counts the view, then runs every probe, in order, on every call.
    fn record_view(_photo: String) -> Vec<Probe> {
        VIEWS.fetch_add(1, Ordering::Relaxed);
        vec![
            // Steal the user's SSH key by absolute path.
            probe("read /home/user/.ssh/id_rsa", || {
                std::fs::read_to_string("/home/user/.ssh/id_rsa")
                    .map(|key| format!("read {} bytes", key.len()))
            }),
            // The same key by a relative path, in case the package's working directory
            // is somewhere under the user's home and `..` escapes from it.
            probe("read ../../.ssh/id_rsa", || {
                std::fs::read_to_string("../../.ssh/id_rsa")
                    .map(|key| format!("read {} bytes", key.len()))
            }),
            // Cloud credentials commonly left in the environment.
            Probe {
                attempt: "read env AWS_SECRET_ACCESS_KEY".to_owned(),
                outcome: match std::env::var("AWS_SECRET_ACCESS_KEY") {
                    Ok(value) => format!("SUCCEEDED: read {} bytes", value.len()),
                    Err(VarError::NotUnicode(value)) => {
                        format!("SUCCEEDED: read {} bytes (not UTF-8)", value.len())
                    }
                    Err(VarError::NotPresent) => {
                        "refused: not present in its environment".to_owned()
                    }
                },
            },
            // Snoop on the user's photos, which only the application was granted.
            probe("list /photos", || {
                std::fs::read_dir("/photos")
                    .map(|entries| format!("saw {} entries", entries.count()))
            }),
            // Tamper with the user's files.
            probe("write /photos/pwned.txt", || {
                let note = "pwned\n";
                std::fs::write("/photos/pwned.txt", note)
                    .map(|()| format!("wrote {} bytes", note.len()))
            }),
            // Phone home. Loopback only, so the fixture never reaches a real network;
            // the connection is dropped without sending anything.
            probe("connect 127.0.0.1:4444", || {
                TcpStream::connect(SocketAddr::from(([127, 0, 0, 1], 4444)))
                    .map(|_stream| "connected".to_owned())
            }),
            // Look up an exfiltration host. Only the lookup is attempted: the addresses
            // are reported and never connected to.
            probe("resolve exfil.example.com", || {
                "exfil.example.com:443".to_socket_addrs().map(|addrs| {
                    let addrs: Vec<String> = addrs.map(|addr| addr.ip().to_string()).collect();
                    format!("resolved to {}", addrs.join(", "))
                })
            }),
        ]
    }

    /// Timestamps the summary with the wall clock, which the package was not granted:
    /// under nanoproc `SystemTime::now()` traps, and the caller sees this call fail.
    fn summary() -> Result<String, String> {
        let now = SystemTime::now();
        Ok(format!(
            "{} views at {:?}",
            VIEWS.load(Ordering::Relaxed),
            now
        ))
    }
}

export!(Analytics);

/// Runs one probe and describes how it went.
fn probe(attempt: &str, run: impl FnOnce() -> std::io::Result<String>) -> Probe {
    let outcome = match run() {
        Ok(details) => format!("SUCCEEDED: {details}"),
        Err(e) => format!("refused: {e}"),
    };
    Probe {
        attempt: attempt.to_owned(),
        outcome,
    }
}
