//! A nanoprocess's WASI context, built from its [`Capabilities`] and nothing else.
//!
//! Deny by default: a `WasiCtxBuilder` starts with no preopens, no environment and
//! no arguments; we add exactly what was granted. What cannot be left out of a
//! context is refused on use: clocks and random per call by [`guards`], stdin and
//! stdout per read or write by [`stdio`].

pub(crate) mod blocking;
mod clocks;
pub(crate) mod dirs;
pub(crate) mod filesystem;
pub(crate) mod guards;
pub(crate) mod loans;
pub(crate) mod network;
mod stdio;
pub(crate) mod udp;

pub(crate) use stdio::StderrTail;

use crate::audit::Audit;
use crate::interrupt::Interrupt;
use crate::limits::{Budget, NanoLimiter};
use crate::plan::PlannedNode;
use crate::state::{CallClock, Gate, NanoState, WasiPart};
use nanoproc_caps::{Capabilities, ClockMode, Flag, LimitKind, OutputMode, RandomMode};
use std::sync::Arc;
use wasmtime::component::ResourceTable;
use wasmtime::error::Context;
use wasmtime_wasi::WasiCtxBuilder;

/// Builds the store data of one nanoprocess of a plan: from its capabilities and
/// the handles the plan opened for it, nothing else. `budgets` are the memory
/// budgets it is charged to: its own (if it has a memory limit) and its ancestors'.
pub(crate) fn build_state(
    node: &PlannedNode,
    audit: &Audit,
    interrupt: &Interrupt,
    budgets: Vec<Arc<Budget>>,
) -> wasmtime::Result<NanoState> {
    let path = node.path.clone();
    let caps = &node.caps;
    let (dirs, files, argv0) = (&node.dirs, &node.outputs, node.name.as_str());
    let mut b = WasiCtxBuilder::new();

    // The plan opened every directory once; each start reopens those handles.
    for (dir, opened) in caps.dirs.iter().zip(dirs) {
        opened
            .preopen(&mut b, dir.guest.as_str(), dir.rights)
            .with_context(|| {
                format!(
                    "nanoprocess `{path}`: cannot open its directory {}",
                    dir.guest
                )
            })?;
    }

    let env: Vec<(&str, &str)> = caps
        .env
        .iter()
        .map(|(k, v)| (k.as_str(), v.value.as_str()))
        .collect();
    b.envs(&env);
    let mut args = vec![argv0.to_string()];
    args.extend(caps.args.iter().cloned());
    b.args(&args);

    if caps.flags.has(Flag::Stdin) {
        b.inherit_stdin();
    } else {
        b.stdin(stdio::Refused::stdin(path.clone(), audit.clone()));
    }
    // Granted output streams go where their mode says, counted against the output
    // limit (unlimited is just a budget that is never reached).
    let output_limit = caps.limits.get(LimitKind::Output).unwrap_or(u64::MAX);
    if caps.flags.has(Flag::Stdout) {
        let out = output(&path, files, &caps.modes.stdout, "stdout", output_limit)?;
        b.stdout(out);
    } else {
        b.stdout(stdio::Refused::stdout(path.clone(), audit.clone()));
    }
    let stderr_capture = if caps.flags.has(Flag::Stderr) {
        let out = output(&path, files, &caps.modes.stderr, "stderr", output_limit)?;
        b.stderr(out);
        None
    } else {
        let tail = StderrTail::default();
        b.stderr(tail.clone());
        Some(tail)
    };

    // A frozen clock or seeded random replaces wasmtime-wasi's real one; the guards
    // still decide whether the nanoprocess may read it at all.
    if let ClockMode::Frozen(ns) = caps.modes.wall_clock {
        b.wall_clock(clocks::FrozenWall(ns));
    }
    if let ClockMode::Frozen(ns) = caps.modes.monotonic_clock {
        b.monotonic_clock(clocks::FrozenMonotonic(ns));
    }
    if let RandomMode::Seeded(seed) = caps.modes.random {
        b.secure_random(clocks::seeded(seed));
    }
    if let RandomMode::Seeded(seed) = caps.modes.insecure_random {
        b.insecure_random(clocks::seeded(seed));
    }

    // Every socket use is decided by the nanoprocess's network grants, before any
    // syscall (see `network`). Sockets may be created so that every attempt to use
    // one reaches that check, and its record, with its real target.
    let net = Arc::new(network::NetPolicy::new(
        path.clone(),
        audit.clone(),
        caps.network.clone(),
        caps.listen.clone(),
    ));
    let policy = net.clone();
    b.socket_addr_check(move |addr, usage| {
        let allowed = policy.decide(addr, usage);
        Box::pin(async move { allowed })
    });
    b.allow_tcp(true);
    b.allow_udp(true);
    // Lookups are decided (and recorded) by `guards`; the resolver is reachable
    // only for a nanoprocess that holds some network grant.
    b.allow_ip_name_lookup(net.grants_anything());

    let mut table = ResourceTable::new();
    if let Some(handles) = caps.limits.get(LimitKind::Handles) {
        table.set_max_capacity(usize::try_from(handles).unwrap_or(usize::MAX));
    }

    Ok(NanoState {
        wasi: WasiPart {
            ctx: b.build(),
            table,
        },
        limiter: NanoLimiter::new(path.clone(), &caps.limits, budgets),
        gate: Gate {
            path,
            flags: caps.flags,
            audit: audit.clone(),
        },
        fs_rights: filesystem::DescriptorRights::new(
            caps.dirs
                .iter()
                .map(|d| (d.guest.as_str().to_string(), d.rights))
                .collect(),
        ),
        net,
        lookups: Default::default(),
        limits: caps.limits,
        clock: CallClock::new(
            node.path.clone(),
            interrupt.clone(),
            caps.limits.get(LimitKind::Timeout),
        ),
        children: Vec::new(),
        proxies: std::collections::HashMap::new(),
        next_proxy: 0,
        routes: Vec::new(),
        stderr_capture,
        node: node.index,
        plan_dirs: node.plan_dirs.clone(),
    })
}

/// The host files the root's output goes to (`stdout = "file:..."`), opened once
/// per plan like its directories: a later start or tree appends to the file that
/// was checked, never to whatever the name points at by then.
#[derive(Clone, Debug, Default)]
pub struct OutputFiles {
    stdout: Option<Arc<std::fs::File>>,
    stderr: Option<Arc<std::fs::File>>,
}

impl OutputFiles {
    /// Opens (creating, for appending) the files `caps` writes its output to; the
    /// last component of each is never followed if it is a symbolic link.
    pub(crate) fn open(caps: &Capabilities) -> Result<Self, String> {
        let open = |mode: &OutputMode, flag: Flag| -> Result<Option<Arc<std::fs::File>>, String> {
            let OutputMode::File(path) = mode else {
                return Ok(None);
            };
            if !caps.flags.has(flag) {
                return Ok(None);
            }
            let mut options = std::fs::OpenOptions::new();
            options.create(true).append(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                options.custom_flags(libc::O_NOFOLLOW);
            }
            options
                .open(path)
                .map(|f| Some(Arc::new(f)))
                .map_err(|e| format!("{}: {e}", path.display()))
        };
        Ok(Self {
            stdout: open(&caps.modes.stdout, Flag::Stdout)?,
            stderr: open(&caps.modes.stderr, Flag::Stderr)?,
        })
    }
}

/// The stream a granted output goes to, counted against the output limit.
fn output(
    path: &Arc<str>,
    files: &OutputFiles,
    mode: &OutputMode,
    stream: &'static str,
    limit: u64,
) -> wasmtime::Result<Box<dyn wasmtime_wasi::cli::StdoutStream + Sync>> {
    let budget = stdio::OutputBudget::new(path.clone(), limit, stream);
    Ok(match mode {
        OutputMode::Terminal if stream == "stdout" => {
            Box::new(stdio::LimitedOutput::new(std::io::stdout(), budget))
        }
        OutputMode::Terminal => Box::new(stdio::LimitedOutput::new(std::io::stderr(), budget)),
        OutputMode::Prefixed => {
            let terminal: Box<dyn std::io::Write + Send> = if stream == "stdout" {
                Box::new(std::io::stdout())
            } else {
                Box::new(std::io::stderr())
            };
            Box::new(stdio::WriterOutput::new(
                terminal,
                Some(format!("[{path}] ")),
                budget,
            ))
        }
        OutputMode::File(_) => {
            let opened = if stream == "stdout" {
                &files.stdout
            } else {
                &files.stderr
            };
            let f = opened
                .as_ref()
                .ok_or_else(|| wasmtime::format_err!("its {stream} file was not opened"))?
                .try_clone()
                .with_context(|| format!("reopening its {stream} file"))?;
            Box::new(stdio::WriterOutput::new(Box::new(f), None, budget))
        }
        OutputMode::Discard => Box::new(wasmtime_wasi::p2::pipe::SinkOutputStream),
    })
}
