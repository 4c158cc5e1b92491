//! Serving HTTP: `nanoproc serve` against a plain wasmtime-wasi-http server, under
//! a load generator on loopback (issue 16, part 4).
//!
//! Servers, each its own process, all started first and left running side by side:
//!
//! * `plain-serve` (this crate's helper, `src/bin/plain-serve.rs`): plain wasmtime
//!   and wasmtime-wasi-http on hyper and tokio, as `wasmtime serve` is written, a
//!   fresh store and instance per request from one `ProxyPre`, with the engine
//!   nanoproc gives a served plan (`plain_serve_engine`: epochs on, fuel off,
//!   concurrency support off, a pooling allocator sized for 32 trees). It serves `http_hello`, and the static composition
//!   of `http_front` with `http_fetcher` plugged in (wac-graph, as `wac plug`).
//!   And `plain-serve --workers`: the same engine and `http_hello`, served the
//!   way nanoproc serves a tree (a synchronous call on a worker thread, the
//!   response handed back to hyper), which tells the cost of that design from
//!   nanoproc's own per-request work.
//! * the release `nanoproc serve` (`target/release/nanoproc`; `cargo xtask bench`
//!   builds it): `http_hello` alone (one nanoprocess), `http_front` with
//!   `http_fetcher` as its dependency (two nanoprocesses; it cannot be fused, as
//!   it imports `wasi:http`), and `http_hello` with smaller `--max-concurrent`.
//!
//! Each configuration is one `wrk -t1 -cC -dDs` run (Debian's `wrk`, which
//! `cargo xtask bench` installs) against one server and path: `GET /` for
//! `http_hello`, `GET /dep` for the front (one `ping()` across the edge per
//! request). The configurations are run in rounds, in a rotated order, so that
//! they share the machine's noise; the table gives each one's median over the
//! rounds. The servers run on CPU 0 and wrk on CPU 1. Besides wrk's requests per second and latency percentiles, each run
//! takes the server's CPU time (`/proc/PID/stat`) and context switches (its
//! threads' `/proc/PID/task/*/status`), wrk's CPU time (`getrusage`) and the whole
//! machine's (`/proc/stat`), to give the CPU time and context switches per request
//! and what the rest of the machine used meanwhile.
//!
//! Beside the servers, the same two trees are measured in process ([`InProcess`]):
//! what each request's tree costs nanoproc and plain wasmtime, start, call and
//! drop, one request after another on one thread, without the server, the network
//! or the threads.
//!
//! Run without `--bench` (`cargo test --benches`), it starts the plain servers and,
//! if a `nanoproc` binary of this profile is there, nanoproc's, sends each one
//! request, checks the answer, runs each tree once in process, and times nothing.

use nanoproc_bench::{
    PlainHttp, compose, fmt_ns, fmt_ratio, measuring, nanoproc_binary, ns, over, plain_http_linker,
    plain_http_store, plain_serve_engine, private_compile_cache, progress, short, target_row,
    toml_str, write,
};
use nanoproc_runtime::{Audit, HostIo, Instances, Interrupt, Plan, PluginOptions, Runtime};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};
use wasmtime::component::{Component, InstancePre, Resource};
use wasmtime_wasi_http::WasiHttpView;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::bindings::sync::Proxy;
use wasmtime_wasi_http::p2::types::{HostIncomingRequest, HostResponseOutparam};

/// Seconds of each wrk run, and rounds of every configuration (environment:
/// `NANOPROC_BENCH_SERVE_SECS`, `NANOPROC_BENCH_SERVE_ROUNDS`).
const SECS: u64 = 5;
const ROUNDS: usize = 5;
/// The CPUs of a measuring run's servers and of wrk (on a machine with two or
/// more): each configuration gets the same placement, and the server a CPU of
/// its own but for other processes. Unpinned, on 2 CPUs, where the scheduler put
/// wrk and the server's threads moved the figures by up to 30% from run to run.
const SERVER_CPU: usize = 0;
const WRK_CPU: usize = 1;

/// Runs `cmd` on CPU `cpu` only (`sched_setaffinity` in the child before `exec`;
/// its threads inherit it), if this machine has that CPU.
fn pin(cmd: &mut Command, cpu: usize) {
    use std::os::unix::process::CommandExt;
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    if cpus < 2 || cpu >= cpus {
        return;
    }
    // SAFETY: the closure only calls sched_setaffinity, which is async-signal-safe,
    // on a set built on its own stack.
    unsafe {
        cmd.pre_exec(move || {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            libc::CPU_SET(cpu, &mut set);
            if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}
/// wrk's connections for latency (one request at a time: p50 is the cost of one
/// request) and for throughput (enough to keep the server busy on 2 cores).
const ONE: u32 = 1;
const MANY: u32 = 16;
/// The targets of issue 16.
const THROUGHPUT_FLOOR: f64 = 0.9;
const ADDED_P50_LIMIT_NS: f64 = 20_000.0;

/// Rounds, and requests per round, of the in-process measurement.
const IN_ROUNDS: usize = 7;
const IN_REQUESTS: usize = 2000;

/// A handler tree served in process, by nanoproc and by plain wasmtime, one
/// request at a time on this thread and without a server: what each request's
/// tree costs, phase by phase. nanoproc's side is what `nanoproc serve`'s worker
/// does for a request (`Plan::plugin` with a fresh request's options, the handler
/// called through `call_with`, the tree dropped), on a plan checked as `serve`
/// checks it; the plain side a fresh store and instance on
/// [`plain_serve_engine`]. Both look the handler up by name
/// (`Proxy::new`) and read no body.
struct InProcess {
    label: &'static str,
    nanoprocesses: u32,
    plan: Plan,
    audit: Audit,
    pre: InstancePre<PlainHttp>,
    path: &'static str,
}

/// A request's phases, in nanoseconds: start (instantiate), call, drop.
type Phases = [f64; 3];

impl InProcess {
    fn new(
        label: &'static str,
        nanoprocesses: u32,
        manifest: &Path,
        plain_component: &Path,
        per_component: u32,
        path: &'static str,
    ) -> Self {
        // As `nanoproc serve` checks a manifest (crates/nanoproc-cli/src/serve.rs).
        let plan = Runtime::new()
            .expect("nanoproc runtime")
            .with_interruption(true)
            .with_pool_for_trees(32)
            .check_plugin_manifest(manifest)
            .unwrap_or_else(|e| panic!("{}: {e}", manifest.display()));
        let engine = plain_serve_engine(32, per_component);
        let component = Component::from_file(&engine, plain_component)
            .unwrap_or_else(|e| panic!("{}: {e:#}", plain_component.display()));
        let pre = plain_http_linker(&engine, true)
            .instantiate_pre(&component)
            .expect("linking the plain handler");
        InProcess {
            label,
            nanoprocesses,
            plan,
            audit: Audit::default(),
            pre,
            path,
        }
    }

    /// `rounds` rounds of `requests` requests on each side, the sides alternating
    /// which goes first: each round's mean phases and CPU time per request
    /// (`[start, call, drop, cpu]`), nanoproc's then plain's.
    fn measure(&self, rounds: usize, requests: usize) -> [Vec<[f64; 4]>; 2] {
        let mut out: [Vec<[f64; 4]>; 2] = Default::default();
        let mut id = 0u64;
        for round in 0..rounds {
            for side in [round % 2, 1 - round % 2] {
                let cpu = nanoproc_bench::thread_cpu_ns();
                let mut sum = [0.0; 3];
                for _ in 0..requests {
                    id += 1;
                    let phases = if side == 0 {
                        self.nanoproc_once(id)
                    } else {
                        self.plain_once()
                    };
                    for (s, p) in sum.iter_mut().zip(phases) {
                        *s += p;
                    }
                }
                let n = requests as f64;
                let cpu = (nanoproc_bench::thread_cpu_ns() - cpu) / n;
                out[side].push([sum[0] / n, sum[1] / n, sum[2] / n, cpu]);
            }
        }
        out
    }

    fn nanoproc_once(&self, id: u64) -> Phases {
        let t0 = Instant::now();
        let options = PluginOptions {
            audit: self.audit.for_request(Arc::from(id.to_string())),
            interrupt: Interrupt::new(),
            io: HostIo::default(),
            instances: Instances::PerCall,
            restart: None,
        };
        let mut plugin = self.plan.plugin(&options).expect("the tree starts");
        let t1 = Instant::now();
        let (tx, rx) = mpsc::channel();
        let path = self.path;
        plugin
            .call_with(move |store, instance| {
                let proxy = Proxy::new(&mut *store, instance)?;
                let (req, out) = request(store.data_mut(), path, tx)?;
                proxy
                    .wasi_http_incoming_handler()
                    .call_handle(&mut *store, req, out)
            })
            .unwrap_or_else(|e| panic!("{}: the handler failed: {e}", self.label));
        let t2 = Instant::now();
        drop(plugin);
        let t3 = Instant::now();
        answered(self.label, &rx);
        [ns(t1 - t0), ns(t2 - t1), ns(t3 - t2)]
    }

    fn plain_once(&self) -> Phases {
        let t0 = Instant::now();
        let mut store = plain_http_store(self.pre.engine(), Duration::from_secs(30));
        let instance = self.pre.instantiate(&mut store).expect("instantiating");
        let t1 = Instant::now();
        let (tx, rx) = mpsc::channel();
        let proxy = Proxy::new(&mut store, &instance).expect("a wasi:http handler");
        let (req, out) = request(store.data_mut(), self.path, tx).expect("the request");
        proxy
            .wasi_http_incoming_handler()
            .call_handle(&mut store, req, out)
            .unwrap_or_else(|e| panic!("{} (plain): the handler failed: {e:#}", self.label));
        let t2 = Instant::now();
        drop(store);
        let t3 = Instant::now();
        answered(self.label, &rx);
        [ns(t1 - t0), ns(t2 - t1), ns(t3 - t2)]
    }
}

/// `GET path` with no body, as resources of a store, and the response's
/// out-parameter, which sends the status it is given (0 for an error code).
fn request(
    view: &mut impl WasiHttpView,
    path: &str,
    status: mpsc::Sender<u16>,
) -> wasmtime::Result<(
    Resource<HostIncomingRequest>,
    Resource<HostResponseOutparam>,
)> {
    let req = http::Request::builder()
        .uri(format!("http://127.0.0.1{path}"))
        .body(http_body_util::Empty::<bytes::Bytes>::new())?;
    let mut http = view.http();
    let req = http.new_incoming_request(Scheme::Http, req)?;
    let out = http.new_response_outparam_from_callback(move |response| {
        let _ = status.send(response.map_or(0, |r| r.status().as_u16()));
    })?;
    Ok((req, out))
}

fn answered(label: &str, status: &mpsc::Receiver<u16>) {
    let got = status.try_recv();
    assert_eq!(got, Ok(200), "{label}: the handler's answer");
}

/// A server process, killed when dropped.
struct Server {
    label: &'static str,
    /// The nanoprocesses of its tree (0: the plain anchor).
    nanoprocesses: u32,
    child: Child,
    addr: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `cmd` (its stderr piped) and returns once it printed
/// `... listening on http://ADDR`; its later stderr is drained and dropped.
fn start((label, nanoprocesses, mut cmd): (&'static str, u32, Command)) -> Server {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("{label}: cannot start {cmd:?}: {e}"));
    let stderr = child.stderr.take().expect("piped stderr");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut seen = String::new();
        let mut lines = BufReader::new(stderr).lines();
        for line in lines.by_ref() {
            let Ok(line) = line else { break };
            if let Some((_, addr)) = line.split_once("listening on http://") {
                let _ = tx.send(Ok(addr.trim().to_owned()));
                // Keep reading, so that the server never blocks on a full pipe.
                for _ in lines.by_ref() {}
                return;
            }
            seen.push_str(&line);
            seen.push('\n');
        }
        let _ = tx.send(Err(seen));
    });
    let addr = match rx.recv_timeout(Duration::from_secs(300)) {
        Ok(Ok(addr)) => addr,
        Ok(Err(said)) => {
            let status = child.wait();
            panic!("{label}: {cmd:?} ended ({status:?}) before listening:\n{said}")
        }
        Err(_) => {
            let _ = child.kill();
            panic!("{label}: {cmd:?} did not listen within 300 s")
        }
    };
    Server {
        label,
        nanoprocesses,
        child,
        addr,
    }
}

/// One `GET path` on a connection of its own: the status and the body.
fn get(addr: &str, path: &str) -> (u16, String) {
    let mut conn = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connecting to {addr}: {e}"));
    conn.set_read_timeout(Some(Duration::from_secs(30))).ok();
    write!(
        conn,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .expect("sending a request");
    let mut text = String::new();
    conn.read_to_string(&mut text).expect("reading a response");
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    (status, body.to_owned())
}

/// One configuration: a server, a path, wrk's connections.
#[derive(Clone, Copy)]
struct Config {
    server: usize,
    path: &'static str,
    conns: u32,
}

/// What one wrk run measured.
#[derive(Clone, Copy, Default)]
struct Run {
    rps: f64,
    p50_ns: f64,
    p99_ns: f64,
    /// Socket errors (connect, read, write, timeout) and non-2xx answers.
    errors: u64,
    /// The server's CPU time per request.
    cpu_per_req_ns: f64,
    /// The server's context switches (voluntary and not, all its threads) per
    /// request.
    switches_per_req: f64,
    /// CPU time of the rest of the machine (not the server, not wrk), in cores.
    others_cores: f64,
}

const WRK_SCRIPT: &str = r#"done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("@wrk %d %d %d %d %d %d\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.timeout, e.status))
end
"#;

/// Clock ticks per second of `/proc` times (`sysconf(_SC_CLK_TCK)`).
fn clock_ticks() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 { t as f64 } else { 100.0 }
}

/// A process's user + system time, in clock ticks (`/proc/PID/stat`).
fn process_ticks(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<f64> = rest
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0.0))
        .collect();
    // utime and stime are fields 14 and 15; `rest` starts at field 3.
    f.get(11).copied().unwrap_or(0.0) + f.get(12).copied().unwrap_or(0.0)
}

/// A process's context switches, summed over its threads (those alive).
fn process_switches(pid: u32) -> f64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0.0;
    };
    let mut total = 0.0;
    for task in tasks.flatten() {
        let status = std::fs::read_to_string(task.path().join("status")).unwrap_or_default();
        for line in status.lines() {
            if line.starts_with("voluntary_ctxt_switches")
                || line.starts_with("nonvoluntary_ctxt_switches")
            {
                total += line
                    .split_whitespace()
                    .nth(1)
                    .and_then(|n| n.parse::<f64>().ok())
                    .unwrap_or(0.0);
            }
        }
    }
    total
}

/// The machine's busy time, all CPUs, in clock ticks (`/proc/stat`).
fn machine_busy_ticks() -> f64 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let cpu: Vec<f64> = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .map(|x| x.parse().unwrap_or(0.0))
        .collect();
    // user nice system idle iowait irq softirq steal ...
    let total: f64 = cpu.iter().take(8).sum();
    total - cpu.get(3).copied().unwrap_or(0.0) - cpu.get(4).copied().unwrap_or(0.0)
}

/// CPU time of the children this process has waited for (wrk), in clock ticks.
fn children_ticks() -> f64 {
    // SAFETY: an rusage to write to.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `u` is a valid rusage.
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut u) };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    (secs(u.ru_utime) + secs(u.ru_stime)) * clock_ticks()
}

fn wrk(script: &Path, server: &Server, config: Config, secs: u64) -> Run {
    let url = format!("http://{}{}", server.addr, config.path);
    let pid = server.child.id();
    let switches0 = process_switches(pid);
    let (server0, machine0, wrk0) = (process_ticks(pid), machine_busy_ticks(), children_ticks());
    let started = Instant::now();
    let mut wrk = Command::new("wrk");
    pin(&mut wrk, WRK_CPU);
    let out = wrk
        .args(["-t1", &format!("-c{}", config.conns), &format!("-d{secs}s")])
        .arg("-s")
        .arg(script)
        .arg(&url)
        .stdin(Stdio::null())
        .output()
        .expect("running wrk");
    let wall = started.elapsed().as_secs_f64();
    let (server1, machine1, wrk1) = (process_ticks(pid), machine_busy_ticks(), children_ticks());
    let switches1 = process_switches(pid);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "wrk {url} failed: {text}");
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("@wrk "))
        .unwrap_or_else(|| panic!("wrk printed no summary: {text}"));
    let v: Vec<f64> = line
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(f64::NAN))
        .collect();
    let (requests, duration_us) = (v[0], v[1]);
    let ticks = clock_ticks();
    let server_ns = (server1 - server0) / ticks * 1e9;
    let others = (machine1 - machine0) - (server1 - server0) - (wrk1 - wrk0);
    Run {
        rps: requests / (duration_us / 1e6),
        p50_ns: v[2] * 1e3,
        p99_ns: v[3] * 1e3,
        errors: (v[4] + v[5]) as u64,
        cpu_per_req_ns: server_ns / requests.max(1.0),
        switches_per_req: (switches1 - switches0) / requests.max(1.0),
        others_cores: (others / ticks / wall).max(0.0),
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn rps_cell(rps: f64) -> String {
    if rps >= 1000.0 {
        format!("{:.1}k", rps / 1000.0)
    } else {
        format!("{rps:.0}")
    }
}

fn main() {
    let _cache = private_compile_cache();
    let measure = measuring();
    let tmp = tempfile::tempdir().expect("a temporary directory");
    let hello = nanoproc_bench::guest("http_hello");
    let front = nanoproc_bench::guest("http_front");
    let fetcher = nanoproc_bench::guest("http_fetcher");
    let composed = tmp.path().join("front_fetcher.wasm");
    std::fs::write(&composed, compose(&front, &fetcher)).expect("writing the composition");

    let manifest = |name: &str, text: String| -> PathBuf {
        let path = tmp.path().join(name);
        write(&path, &text);
        path
    };
    let hello_m = manifest(
        "hello.toml",
        format!(
            "[app]\nroot = \"hello\"\n\n[nanoprocess.hello]\ncomponent = {}\n",
            toml_str(&hello.to_string_lossy())
        ),
    );
    let dep_m = manifest(
        "dep.toml",
        format!(
            "[app]\nroot = \"front\"\n\n[nanoprocess.front]\ncomponent = {}\n\
             deps = {{ \"nanoproc:http-test/fetch\" = \"fetcher\" }}\n\n\
             [nanoprocess.fetcher]\ncomponent = {}\n",
            toml_str(&front.to_string_lossy()),
            toml_str(&fetcher.to_string_lossy())
        ),
    );

    let plain = |label: &'static str, component: &Path, extra: &[&str]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_plain-serve"));
        cmd.arg(component)
            .args(["--addr", "127.0.0.1:0"])
            .args(extra);
        (label, 0, cmd)
    };
    let mut starting = vec![
        plain("plain hello", &hello, &[]),
        plain("plain hello, worker threads", &hello, &["--workers"]),
        // One instance holds both nanoprocesses: slots sized as nanoproc sizes a
        // fused composite's.
        plain(
            "plain front+fetcher composed",
            &composed,
            &["--per-component", "2"],
        ),
    ];
    let nanoproc = nanoproc_binary("serve");
    if let Some(nanoproc) = &nanoproc {
        let serve = |label: &'static str, n: u32, m: &Path, extra: &[&str]| {
            let mut cmd = Command::new(nanoproc);
            cmd.arg("serve")
                .arg(m)
                .args(["--addr", "127.0.0.1:0"])
                .args(extra)
                // Its own compile cache, as this process's.
                .env("NANOPROC_CACHE_DIR", tmp.path().join("cache"));
            (label, n, cmd)
        };
        starting.push(serve("nanoproc hello", 1, &hello_m, &[]));
        starting.push(serve("nanoproc front → fetcher", 2, &dep_m, &[]));
        if measure {
            starting.push(serve(
                "nanoproc hello, --max-concurrent 2",
                1,
                &hello_m,
                &["--max-concurrent", "2"],
            ));
            starting.push(serve(
                "nanoproc hello, --max-concurrent 1",
                1,
                &hello_m,
                &["--max-concurrent", "1"],
            ));
        }
    }
    // Started one after another: nanoproc's share one compile cache.
    let servers: Vec<Server> = starting
        .into_iter()
        .map(|(label, n, mut cmd)| {
            if measure {
                pin(&mut cmd, SERVER_CPU);
            }
            start((label, n, cmd))
        })
        .collect();
    let index = |label: &str| servers.iter().position(|s| s.label == label);

    // Every server answers as expected.
    for s in &servers {
        let (path, expect) = if s.label.contains("front") {
            ("/dep", "pong")
        } else {
            ("/", "hello from nanoproc: GET /")
        };
        let (status, body) = get(&s.addr, path);
        assert!(
            status == 200 && body.contains(expect),
            "{}: GET {path} answered {status} {body:?}",
            s.label
        );
    }
    // One request's tree in process, without a server.
    let trees = [
        InProcess::new("hello", 1, &hello_m, &hello, 1, "/"),
        InProcess::new("front → fetcher", 2, &dep_m, &composed, 2, "/dep"),
    ];
    let (in_rounds, in_requests) = if measure {
        (IN_ROUNDS, IN_REQUESTS)
    } else {
        (1, 1)
    };
    let in_process: Vec<[Vec<[f64; 4]>; 2]> = trees
        .iter()
        .map(|t| {
            progress(format!("serve: {} in process", t.label));
            t.measure(in_rounds, in_requests)
        })
        .collect();
    if !measure {
        println!(
            "serve bench: ok, {} servers answered one request each{}, and each tree one in process; \
             `cargo bench -p nanoproc-bench --bench serve` measures",
            servers.len(),
            if nanoproc.is_none() {
                " (plain only)"
            } else {
                ""
            }
        );
        return;
    }
    let wrk_ok = Command::new("wrk")
        .arg("--version")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("wrk"));
    assert!(
        wrk_ok,
        "no wrk on PATH: install Debian's `wrk` (`apt-get install wrk`; `cargo xtask bench` does)"
    );
    let script = tmp.path().join("summary.lua");
    write(&script, WRK_SCRIPT);

    let s = |label: &str| index(label).unwrap_or_else(|| panic!("no server {label}"));
    let (ph, pw, pd) = (
        s("plain hello"),
        s("plain hello, worker threads"),
        s("plain front+fetcher composed"),
    );
    let (nh, nd) = (s("nanoproc hello"), s("nanoproc front → fetcher"));
    let (nm2, nm1) = (
        s("nanoproc hello, --max-concurrent 2"),
        s("nanoproc hello, --max-concurrent 1"),
    );
    let c = |server: usize, path: &'static str, conns: u32| Config {
        server,
        path,
        conns,
    };
    let configs = [
        c(ph, "/", ONE),
        c(pw, "/", ONE),
        c(nh, "/", ONE),
        c(pd, "/dep", ONE),
        c(nd, "/dep", ONE),
        c(ph, "/", MANY),
        c(pw, "/", MANY),
        c(nh, "/", MANY),
        c(pd, "/dep", MANY),
        c(nd, "/dep", MANY),
        c(nh, "/", 4 * MANY),
        c(nm2, "/", MANY),
        c(nm1, "/", MANY),
    ];
    let secs: u64 = env_or("NANOPROC_BENCH_SERVE_SECS", SECS);
    let rounds: usize = env_or("NANOPROC_BENCH_SERVE_ROUNDS", ROUNDS).max(1);
    let load_before = nanoproc_bench::load_average();
    // Warm-up: every server's first requests (page faults, thread starts).
    for config in &configs {
        wrk(&script, &servers[config.server], *config, 1);
    }
    let mut runs: Vec<Vec<Run>> = vec![Vec::new(); configs.len()];
    for round in 0..rounds {
        progress(format!(
            "serve: round {} of {rounds} ({} runs of {secs} s)",
            round + 1,
            configs.len()
        ));
        for k in 0..configs.len() {
            let i = (k + round * 5) % configs.len();
            let run = wrk(&script, &servers[configs[i].server], configs[i], secs);
            runs[i].push(run);
        }
    }
    let load_after = nanoproc_bench::load_average();
    let med = |i: usize, f: fn(&Run) -> f64| median(runs[i].iter().map(f).collect());
    let errors: u64 = runs.iter().flatten().map(|r| r.errors).sum();
    let others: Vec<f64> = runs.iter().flatten().map(|r| r.others_cores).collect();
    let others_max = others.iter().copied().fold(0.0, f64::max);
    let others_median = median(others);

    println!("## Serving HTTP: `nanoproc serve` against plain wasmtime-wasi-http\n");
    println!(
        "`cargo bench -p nanoproc-bench --bench serve` (or `cargo xtask bench serve`, which \
         runs only this benchmark and replaces only this section). A load generator on \
         loopback against two servers of the same handler: `nanoproc serve`, a fresh instance \
         of the whole tree per request, and the anchor `plain-serve` \
         (`crates/nanoproc-bench/src/bin/plain-serve.rs`): plain wasmtime and \
         wasmtime-wasi-http on hyper and tokio, written as `wasmtime serve` is, a fresh store \
         and instance per request from one `ProxyPre`, called with `call_handle` on a tokio \
         task, with the engine nanoproc gives a served plan (epoch interruption on, as `serve` \
         always has it, with a 5 ms tick and a 30 s deadline per request; no fuel; concurrency \
         support off; a pooling allocator with slots for 32 instances, serve's default \
         `--max-concurrent`, 2 MiB of each kept resident; `plain_serve_engine` in \
         `crates/nanoproc-bench/src/lib.rs`). \
         A second anchor, `plain-serve --workers` (\"plain hello, worker threads\"), serves \
         `http_hello` with the same engine the way `nanoproc serve` serves a tree, without \
         nanoproc: hyper hands each request to a pool of worker threads, where a fresh store \
         is instantiated and called synchronously; the response goes back to hyper over a \
         channel, and its body ends once the worker has dropped the store. Between the two \
         anchors is the cost of that design; between it and nanoproc, nanoproc's own \
         per-request work (its store data, limits, audit handle, request id, time limit).\n"
    );
    println!(
        "**Handlers.** `http_hello` (`guests/http-hello`: `hello from nanoproc: GET /`), one \
         nanoprocess. `http_front` with `http_fetcher` as its dependency (`GET /dep`: one \
         `ping()` across the edge, answered `pong`): two nanoprocesses under nanoproc (the \
         dependency in a store of its own: a fused dependency cannot import `wasi:http` \
         yet), and for the anchor their static composition (wac-graph, \
         as `wac plug`), one component.\n"
    );
    println!(
        "**Load.** Debian's `wrk -t1 -cC -d{secs}s` (one thread; C connections, each sending \
         its next request when the last is answered), with a Lua `done` hook that prints the \
         request count and wrk's latency percentiles. C = {ONE} gives the cost of one \
         request (its p50 is the time from sending a request to reading its answer); C = \
         {MANY} keeps the server busy (throughput; p50 there is mostly queueing, about C / \
         throughput). Every configuration ran once for 1 s to warm up, then {rounds} times \
         in rounds, in a rotated order; each figure is the median of its {rounds} runs. \
         Every server runs on CPU {SERVER_CPU} and wrk on CPU {WRK_CPU} \
         (`sched_setaffinity`), so that each configuration gets the same placement; \
         unpinned, where the scheduler happened to put wrk and the server's threads moved \
         the figures by up to 30% from one run to the next. Other processes may run on \
         either CPU. CPU per request is the server \
         process's user + system time (`/proc/PID/stat`) over the requests of the run, and \
         its context switches the sum over its threads of `/proc/PID/task/*/status`. \
         Errors (socket errors and non-2xx answers) over all runs: {errors}.\n"
    );
    println!(
        "**Machine load.** 1-minute load average {load_before:.1} before, {load_after:.1} \
         after; the rest of the machine (all CPU time but the server's and wrk's, \
         `/proc/stat`) used {others_median:.2} of a core during the median run, {others_max:.2} \
         at most.\n"
    );
    println!(
        "| configuration | nanoprocesses | wrk connections | requests/s (min-max) | p50 | p99 | server CPU per request | server context switches per request |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    let label = |i: usize| {
        let server = &servers[configs[i].server];
        format!("{} (`GET {}`)", server.label, configs[i].path)
    };
    for (i, config) in configs.iter().enumerate().take(10) {
        let n = servers[config.server].nanoprocesses;
        let runs_rps: Vec<f64> = runs[i].iter().map(|r| r.rps).collect();
        let (lo, hi) = (
            runs_rps.iter().copied().fold(f64::INFINITY, f64::min),
            runs_rps.iter().copied().fold(0.0, f64::max),
        );
        println!(
            "| {} | {} | {} | {} ({}-{}) | {} | {} | {} | {:.1} |",
            label(i),
            if n == 0 {
                "- (plain)".to_owned()
            } else {
                n.to_string()
            },
            config.conns,
            rps_cell(med(i, |r| r.rps)),
            rps_cell(lo),
            rps_cell(hi),
            fmt_ns(med(i, |r| r.p50_ns)),
            fmt_ns(med(i, |r| r.p99_ns)),
            fmt_ns(med(i, |r| r.cpu_per_req_ns)),
            med(i, |r| r.switches_per_req),
        );
    }
    println!();

    let signed = |ns: f64| {
        if ns < 0.0 {
            format!("−{}", fmt_ns(-ns))
        } else {
            format!("+{}", fmt_ns(ns))
        }
    };
    // The trees in process.
    let in_med = |t: usize, side: usize, k: usize| {
        median(in_process[t][side].iter().map(|r| r[k]).collect())
    };
    let in_total = |t: usize, side: usize| (0..3).map(|k| in_med(t, side, k)).sum::<f64>();
    let in_added = |t: usize| (in_total(t, 0) - in_total(t, 1)) / f64::from(trees[t].nanoprocesses);
    println!("### One request's tree, in process\n");
    println!(
        "What the servers do for each request once hyper has parsed it, without the \
         servers, the network or the threads: one request after another on one thread \
         ({IN_ROUNDS} rounds of {IN_REQUESTS} requests on each side, alternating; median of \
         the rounds' means). nanoproc: what `serve`'s worker does (`Plan::plugin` with a \
         fresh request's options, the handler called through `call_with`, the tree \
         dropped), on a plan checked as `serve` checks one; plain: a fresh store and \
         instance on the same engine settings. The drop is mostly the pooling allocator \
         zeroing what the instance touched of the 2 MiB it keeps resident. CPU is the \
         thread's CPU time per request.\n"
    );
    println!(
        "| tree | nanoproc start / call / drop | nanoproc total (CPU) | plain start / call / drop | plain total (CPU) | added per nanoprocess |"
    );
    println!("|---|---:|---:|---:|---:|---:|");
    for (t, tree) in trees.iter().enumerate() {
        let phases = |side: usize| {
            format!(
                "{} / {} / {}",
                fmt_ns(in_med(t, side, 0)),
                fmt_ns(in_med(t, side, 1)),
                fmt_ns(in_med(t, side, 2))
            )
        };
        println!(
            "| {} ({} nanoprocess{}; plain: {}) | {} | {} ({}) | {} | {} ({}) | {} |",
            tree.label,
            tree.nanoprocesses,
            if tree.nanoprocesses == 1 { "" } else { "es" },
            if tree.nanoprocesses == 1 {
                "the same component"
            } else {
                "their static composition"
            },
            phases(0),
            fmt_ns(in_total(t, 0)),
            fmt_ns(in_med(t, 0, 3)),
            phases(1),
            fmt_ns(in_total(t, 1)),
            fmt_ns(in_med(t, 1, 3)),
            signed(in_added(t)),
        );
    }
    println!();

    // The targets: throughput at MANY connections, p50 added at ONE.
    let at = |server: usize, conns: u32| {
        configs
            .iter()
            .position(|c| c.server == server && c.conns == conns)
            .expect("a configuration")
    };
    let ratio = |n: usize, p: usize| med(at(n, MANY), |r| r.rps) / med(at(p, MANY), |r| r.rps);
    let added = |n: usize, p: usize, per: f64| {
        (med(at(n, ONE), |r| r.p50_ns) - med(at(p, ONE), |r| r.p50_ns)) / per
    };
    let cpu_added = |n: usize, p: usize, per: f64| {
        (med(at(n, MANY), |r| r.cpu_per_req_ns) - med(at(p, MANY), |r| r.cpu_per_req_ns)) / per
    };
    let (rh, rd) = (ratio(nh, ph), ratio(nd, pd));
    let (ah, ad) = (added(nh, ph, 1.0), added(nd, pd, 2.0));
    let (ch, cd) = (cpu_added(nh, ph, 1.0), cpu_added(nd, pd, 2.0));
    let (aw, cw) = (added(pw, ph, 1.0), cpu_added(pw, ph, 1.0));
    let (an, cn) = (added(nh, pw, 1.0), cpu_added(nh, pw, 1.0));
    println!("### Against the targets\n");
    println!(
        "| | throughput, nanoproc / plain ({MANY} connections) | p50 added per nanoprocess (1 connection) | server CPU per request added per nanoprocess ({MANY} connections) |"
    );
    println!("|---|---:|---:|---:|");
    println!(
        "| hello (1 nanoprocess) | {} | {} | {} |",
        fmt_ratio(rh),
        signed(ah),
        signed(ch)
    );
    println!(
        "| front → fetcher, one call (2 nanoprocesses) | {} | {} | {} |",
        fmt_ratio(rd),
        signed(ad),
        signed(cd)
    );
    println!(
        "| hello: of which the worker-thread design (plain with worker threads − plain) | {} | {} | {} |",
        fmt_ratio(ratio(pw, ph)),
        signed(aw),
        signed(cw)
    );
    println!(
        "| hello: of which nanoproc's own work (nanoproc − plain with worker threads) | {} | {} | {} |",
        fmt_ratio(ratio(nh, pw)),
        signed(an),
        signed(cn)
    );
    println!();
    println!(
        "The p50 added per nanoprocess is (nanoproc's p50 − the anchor's p50) / the \
         nanoprocesses of the tree, at one connection; the anchor of the two-nanoprocess \
         tree is one composed component, so the figure counts the second store and the \
         call across the edge as well as the per-request work of the server. The CPU column \
         is the same difference for the server's CPU time per request, which other \
         processes' load does not inflate.\n"
    );
    let switches = |server: usize| med(at(server, ONE), |r| r.switches_per_req);
    println!(
        "**Where the time goes.** In process, nanoproc's hello tree costs {} per request \
         against plain wasmtime's {} ({} per nanoprocess for the tree with a dependency): \
         its store data (the WASI context made from the grants, the limiter, the audit \
         handle), the epoch callback and the checks around the call. The rest of what \
         `serve` adds at one connection is how it runs a tree: hyper parses the request on \
         a tokio thread and hands it to a worker thread, which instantiates and calls the \
         tree synchronously and sends the response back, and the response ends only once \
         the worker has dropped the tree ({} of hello's time in process, mostly the pool \
         zeroing the memory the instance touched), after which hyper reads the \
         connection's next request. That is {:.1} context switches per request at one \
         connection, against {:.1} for the plain server, which runs the guest on the tokio \
         thread that parsed the request (`call_handle` on a fiber). The anchor with worker \
         threads, the same design without nanoproc, shows its part: {} of the p50 at one \
         connection, {} of CPU per request at {MANY}. Throughput hides the hops: at {MANY} \
         connections, with requests queued, `serve` does {} of the plain server's requests \
         per second on hello and {} with a dependency.\n",
        fmt_ns(in_total(0, 0)),
        fmt_ns(in_total(0, 1)),
        signed(in_added(1)),
        fmt_ns(in_med(0, 0, 2)),
        switches(nh),
        switches(ph),
        signed(aw),
        signed(cw),
        fmt_ratio(rh),
        fmt_ratio(rd),
    );
    let ok_ratio = rh >= THROUGHPUT_FLOOR && rd >= THROUGHPUT_FLOOR;
    let worst_ratio = rh.min(rd);
    target_row(
        "`serve` throughput ≥ 0.9x the plain wasmtime-wasi-http server, same handler",
        &format!(
            "hello {} ({} / {} req/s); one dependency call {} ({} / {} req/s); {MANY} connections",
            fmt_ratio(rh),
            rps_cell(med(at(nh, MANY), |r| r.rps)),
            rps_cell(med(at(ph, MANY), |r| r.rps)),
            fmt_ratio(rd),
            rps_cell(med(at(nd, MANY), |r| r.rps)),
            rps_cell(med(at(pd, MANY), |r| r.rps)),
        ),
        ok_ratio,
        &short(worst_ratio, THROUGHPUT_FLOOR),
    );
    let worst_added = ah.max(ad);
    target_row(
        "`serve`'s per-request tree adds ≤ 20 µs per nanoprocess at p50",
        &format!(
            "hello {} ({} vs {}); one dependency call {} per nanoprocess ({} vs {}); 1 \
             connection. The tree alone, in process: hello {}, one dependency call {} per \
             nanoprocess",
            signed(ah),
            fmt_ns(med(at(nh, ONE), |r| r.p50_ns)),
            fmt_ns(med(at(ph, ONE), |r| r.p50_ns)),
            signed(ad),
            fmt_ns(med(at(nd, ONE), |r| r.p50_ns)),
            fmt_ns(med(at(pd, ONE), |r| r.p50_ns)),
            signed(in_added(0)),
            signed(in_added(1)),
        ),
        worst_added <= ADDED_P50_LIMIT_NS,
        &over(worst_added, ADDED_P50_LIMIT_NS),
    );

    println!("### What `--max-concurrent` does\n");
    println!(
        "`nanoproc serve` runs at most `--max-concurrent` trees at once (default 32), each on \
         a worker thread; a request beyond that waits for a slot (up to `--queue-timeout`, \
         then 503). `http_hello`, `GET /`:\n"
    );
    println!("| `--max-concurrent` | wrk connections | requests/s | p50 | p99 |");
    println!("|---:|---:|---:|---:|---:|");
    for (i, mc) in [
        (at(nh, MANY), "32 (default)"),
        (at(nh, 4 * MANY), "32 (default)"),
        (at(nm2, MANY), "2"),
        (at(nm1, MANY), "1"),
    ] {
        println!(
            "| {mc} | {} | {} | {} | {} |",
            configs[i].conns,
            rps_cell(med(i, |r| r.rps)),
            fmt_ns(med(i, |r| r.p50_ns)),
            fmt_ns(med(i, |r| r.p99_ns)),
        );
    }
    println!();
}
