//! A nanoprocess's WASI context, built from its [`Capabilities`] and nothing else.
//!
//! Deny by default: a `WasiCtxBuilder` starts with no preopens, no environment and
//! no arguments; we add exactly what was granted. What cannot be left out of a
//! context is refused on use: clocks and random per call by [`guards`], stdin and
//! stdout per read or write by [`stdio`].

mod clocks;
pub(crate) mod filesystem;
pub(crate) mod guards;
pub(crate) mod network;
mod stdio;

pub(crate) use stdio::StderrTail;

use crate::audit::Audit;
use crate::interrupt::Interrupt;
use crate::limits::{Budget, NanoLimiter};
use crate::state::{Gate, NanoState, WasiPart};
use nanoproc_caps::{
    Capabilities, ClockMode, DirCap, Flag, FsRights, LimitKind, OutputMode, RandomMode,
};
use std::path::Path;
use std::sync::Arc;
use wasmtime::bail;
use wasmtime::component::ResourceTable;
use wasmtime::error::Context;
use wasmtime_wasi::{FsPerms, WasiCtxBuilder};

/// Builds the store data of one nanoprocess. `budgets` are the memory budgets it is
/// charged to: its own (if it has a memory limit) and its ancestors'.
pub(crate) fn build_state(
    path: Arc<str>,
    caps: &Capabilities,
    argv0: &str,
    audit: &Audit,
    interrupt: &Interrupt,
    budgets: Vec<Arc<Budget>>,
) -> wasmtime::Result<NanoState> {
    let mut b = WasiCtxBuilder::new();

    for dir in &caps.dirs {
        preopen(&mut b, dir).with_context(|| {
            format!(
                "nanoprocess `{path}`: cannot open its directory {} (host {})",
                dir.guest,
                dir.host.display()
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
        let out = output(&path, &caps.modes.stdout, "stdout", output_limit)?;
        b.stdout(out);
    } else {
        b.stdout(stdio::Refused::stdout(path.clone(), audit.clone()));
    }
    let stderr_capture = if caps.flags.has(Flag::Stderr) {
        let out = output(&path, &caps.modes.stderr, "stderr", output_limit)?;
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
        call_deadline: None,
        ticks: Default::default(),
        interrupt: interrupt.clone(),
        children: Vec::new(),
        proxies: std::collections::HashMap::new(),
        next_proxy: 0,
        routes: Vec::new(),
        stderr_capture,
    })
}

/// The stream a granted output goes to, counted against the output limit.
fn output(
    path: &Arc<str>,
    mode: &OutputMode,
    stream: &'static str,
    limit: u64,
) -> wasmtime::Result<Box<dyn wasmtime_wasi::cli::StdoutStream + Sync>> {
    let limited = |inner| -> Box<dyn wasmtime_wasi::cli::StdoutStream + Sync> {
        Box::new(stdio::LimitedOutput::new(
            inner,
            path.clone(),
            limit,
            stream,
        ))
    };
    Ok(match mode {
        OutputMode::Terminal if stream == "stdout" => Box::new(stdio::LimitedOutput::new(
            std::io::stdout(),
            path.clone(),
            limit,
            stream,
        )),
        OutputMode::Terminal => Box::new(stdio::LimitedOutput::new(
            std::io::stderr(),
            path.clone(),
            limit,
            stream,
        )),
        OutputMode::Prefixed => {
            let terminal: Box<dyn std::io::Write + Send> = if stream == "stdout" {
                Box::new(std::io::stdout())
            } else {
                Box::new(std::io::stderr())
            };
            limited(stdio::WriterOutput::new(
                terminal,
                Some(format!("[{path}] ")),
            ))
        }
        OutputMode::File(file) => {
            let f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(file)
                .with_context(|| format!("opening its {stream} file {}", file.display()))?;
            limited(stdio::WriterOutput::new(Box::new(f), None))
        }
        OutputMode::Discard => Box::new(wasmtime_wasi::p2::pipe::SinkOutputStream),
    })
}

fn perms(rights: FsRights) -> FsPerms {
    if rights.can_modify() {
        FsPerms::ReadWrite
    } else {
        FsPerms::ReadOnly
    }
}

fn preopen(b: &mut WasiCtxBuilder, dir: &DirCap) -> wasmtime::Result<()> {
    match open_derived(dir)? {
        // A root grant: the user named this host directory.
        None => {
            if !dir.host.is_dir() {
                bail!("it does not exist or is not a directory");
            }
            b.preopened_dir(&dir.host, dir.guest.as_str(), perms(dir.rights))?;
            Ok(())
        }
        Some(opened) => preopen_opened(b, &opened, dir),
    }
}

/// Opens a directory carved out of an ancestor's *through* the ancestor's directory
/// with cap-std, which refuses any step (a `..`, an absolute symlink, a symlink
/// pointing outside) that would leave the ancestor's tree. A lexical join of host
/// paths would follow such a symlink and hand the child whatever it points at.
/// Returns `None` for a root grant, which is opened by its path.
///
/// `check` calls this too, so that a derived directory that is missing or leads
/// outside is refused before anything runs, at the line that granted it.
pub(crate) fn open_derived(dir: &DirCap) -> wasmtime::Result<Option<cap_std::fs::Dir>> {
    let Some((_, rel)) = &dir.derived else {
        return Ok(None);
    };
    let mut anchor = dir.host.clone();
    for _ in rel {
        anchor.pop();
    }
    let ancestor = cap_std::fs::Dir::open_ambient_dir(&anchor, cap_std::ambient_authority())
        .with_context(|| format!("opening ancestor directory {}", anchor.display()))?;
    if rel.is_empty() {
        return Ok(Some(ancestor));
    }
    let opened = ancestor.open_dir(rel.join("/")).map_err(|e| {
        wasmtime::format_err!(
            "{e} (it must be a directory inside the parent's, reached without leaving it)"
        )
    })?;
    Ok(Some(opened))
}

/// Hands wasmtime-wasi the directory that cap-std opened, by its file descriptor, so
/// that what the child gets is exactly what was checked (no second path lookup that
/// a concurrent rename could redirect).
#[cfg(target_os = "linux")]
fn preopen_opened(
    b: &mut WasiCtxBuilder,
    opened: &cap_std::fs::Dir,
    dir: &DirCap,
) -> wasmtime::Result<()> {
    use std::os::fd::AsRawFd;
    let fd_path = format!("/proc/self/fd/{}", opened.as_raw_fd());
    b.preopened_dir(Path::new(&fd_path), dir.guest.as_str(), perms(dir.rights))?;
    Ok(())
}

#[cfg(not(target_os = "linux"))]
fn preopen_opened(
    b: &mut WasiCtxBuilder,
    _opened: &cap_std::fs::Dir,
    dir: &DirCap,
) -> wasmtime::Result<()> {
    // Checked through cap-std above; reopened by path (a rename race remains here).
    b.preopened_dir(&dir.host, dir.guest.as_str(), perms(dir.rights))?;
    Ok(())
}
