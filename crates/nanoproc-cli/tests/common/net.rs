//! Real sockets on loopback for the network tests (`network.rs`, `udp_scope.rs` and
//! their WASI 0.3 twins in `p3_families.rs`), and a run read line by line, so that
//! a test can act between two probes: learn the port the guest bound, send to it.

use super::Run;
use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::process::Child;
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

/// A listener on an ephemeral loopback port that accepts (and drops) a bounded
/// number of connections in the background.
pub fn server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in listener.incoming().take(16) {
            drop(conn);
        }
    });
    port
}

/// A loopback port nothing listens on.
pub fn closed_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// How long a live run may take before the test gives up on it (and kills it).
pub const RUN_LIMIT: Duration = Duration::from_secs(60);

/// A `nanoproc run` whose answers are read as they are printed, so that the test
/// can act between two probes.
pub struct Live {
    child: Child,
    lines: Receiver<String>,
    pub stdout: Vec<String>,
    stderr: std::thread::JoinHandle<String>,
    started: Instant,
}

impl Live {
    pub fn start(args: &[&str]) -> Live {
        let mut child = super::spawn_piped(args);
        let (send, lines) = channel();
        let stdout = child.stdout.take().expect("stdout was piped");
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if send.send(line).is_err() {
                    break;
                }
            }
        });
        let mut err = child.stderr.take().expect("stderr was piped");
        let stderr = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = err.read_to_string(&mut text);
            text
        });
        Live {
            child,
            lines,
            stdout: Vec::new(),
            stderr,
            started: Instant::now(),
        }
    }

    /// Waits for the answer printed for the probe `arg`.
    pub fn answer(&mut self, arg: &str) -> String {
        let prefix = format!("{arg} => ");
        loop {
            let left = RUN_LIMIT.saturating_sub(self.started.elapsed());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let answer = line.strip_prefix(&prefix).map(str::to_owned);
                    self.stdout.push(line);
                    if let Some(answer) = answer {
                        return answer;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    let _ = self.child.kill();
                    panic!("no answer for {arg:?} in {RUN_LIMIT:?}: {:?}", self.stdout);
                }
                Err(RecvTimeoutError::Disconnected) => {
                    let status = self.child.wait();
                    panic!(
                        "nanoproc ended ({status:?}) without answering {arg:?}: {:?}",
                        self.stdout
                    );
                }
            }
        }
    }

    /// Waits for the run to end, within what is left of [`RUN_LIMIT`].
    pub fn finish(mut self) -> Run {
        let code = loop {
            if let Some(status) = self.child.try_wait().expect("waiting for nanoproc") {
                break status.code().unwrap_or(-1);
            }
            if self.started.elapsed() > RUN_LIMIT {
                let _ = self.child.kill();
                panic!("nanoproc did not end in {RUN_LIMIT:?}: {:?}", self.stdout);
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        self.stdout.extend(self.lines.iter());
        Run {
            code,
            stdout: self.stdout.iter().map(|l| format!("{l}\n")).collect(),
            stderr: self.stderr.join().expect("reading stderr"),
        }
    }
}

/// The address in an answer `ok: bound ADDR`.
pub fn bound(answer: &str) -> SocketAddr {
    answer
        .strip_prefix("ok: bound ")
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("expected `ok: bound ADDR`, got {answer:?}"))
}

/// Where a datagram sent on loopback to a socket bound to `addr` arrives.
pub fn on_loopback(addr: SocketAddr) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], addr.port()))
}

/// A socket of this test on an ephemeral loopback port.
pub fn peer() -> UdpSocket {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    socket
}

/// A loopback port free when asked (nothing of this test keeps it).
pub fn free_port() -> u16 {
    peer().local_addr().unwrap().port()
}

/// The refusals of UDP receives recorded in an audit log.
pub fn refused_receives(log: &std::path::Path) -> Vec<serde_json::Value> {
    super::audit_lines(log)
        .into_iter()
        .filter(|e| e["operation"] == "wasi:sockets/udp.receive" && e["decision"] == "refused")
        .collect()
}
