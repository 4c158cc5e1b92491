//! Enforcing a nanoprocess's resource limits, and the subtree memory budgets.
//!
//! Every store gets a [`NanoLimiter`]. Linear memory is charged to the
//! nanoprocess's own budget *and* to the budget of every ancestor that has one, so
//! that a subtree together stays within its root's memory limit (like a cgroup); a
//! store gives back what it was charged when it is dropped (a restarted child
//! returns its memory before its replacement asks for any). Exceeding a limit traps
//! with a [`LimitExceeded`] that names the nanoprocess, the limit and whose it is.

use nanoproc_caps::{LimitKind, Limits};
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// A limit was reached. The call that reached it traps with this error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LimitExceeded {
    pub nanoprocess: Arc<str>,
    pub kind: LimitKind,
    pub limit: u64,
    /// Whose limit: the nanoprocess's own, or an ancestor's subtree budget.
    pub owner: Arc<str>,
    /// What was asked for, in words.
    pub detail: String,
}

impl fmt::Display for LimitExceeded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let limit = self.kind.format(self.limit);
        if self.owner == self.nanoprocess {
            write!(
                f,
                "nanoprocess `{}` exceeded its {} limit of {limit}",
                self.nanoprocess,
                describe_kind(self.kind)
            )?;
        } else {
            write!(
                f,
                "nanoprocess `{}` exceeded the {} budget of the subtree of `{}`, {limit}",
                self.nanoprocess,
                describe_kind(self.kind),
                self.owner
            )?;
        }
        if !self.detail.is_empty() {
            write!(f, " ({})", self.detail)?;
        }
        Ok(())
    }
}

impl std::error::Error for LimitExceeded {}

/// A child's result is larger than what its parent may still allocate. Lowering it
/// would grow the parent's memory past its budget and trap the parent, blamed for
/// a size the child chose; checked before lowering, it is the child's failure.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResultTooLarge {
    pub parent: Arc<str>,
    pub bytes: u64,
    pub headroom: Headroom,
}

impl fmt::Display for ResultTooLarge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Headroom { left, owner, limit } = &self.headroom;
        write!(
            f,
            "its result of {} is more than its parent `{}` may still allocate ({} left of the memory limit of `{owner}`, {})",
            nanoproc_caps::format_bytes(self.bytes),
            self.parent,
            nanoproc_caps::format_bytes(*left),
            nanoproc_caps::format_bytes(*limit),
        )
    }
}

impl std::error::Error for ResultTooLarge {}

/// How much more memory a nanoprocess may take: the least that any budget it is
/// charged to has left.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Headroom {
    pub left: u64,
    /// Whose budget is the tightest.
    pub owner: Arc<str>,
    pub limit: u64,
}

fn describe_kind(kind: LimitKind) -> &'static str {
    match kind {
        LimitKind::Memory => "memory",
        LimitKind::Tables => "table elements",
        LimitKind::Instances => "instances",
        LimitKind::Handles => "open handles",
        LimitKind::Fuel => "fuel per call",
        LimitKind::Timeout => "time per call",
        LimitKind::Output => "output",
        LimitKind::HttpRequests => "HTTP requests in flight",
        LimitKind::HttpBody => "HTTP body bytes per request",
        LimitKind::HttpTimeout => "time per HTTP request",
    }
}

/// The memory budget of one nanoprocess's subtree.
#[derive(Debug)]
pub(crate) struct Budget {
    owner: Arc<str>,
    limit: u64,
    used: AtomicU64,
}

impl Budget {
    pub fn new(owner: Arc<str>, limit: u64) -> Arc<Budget> {
        Arc::new(Budget {
            owner,
            limit,
            used: AtomicU64::new(0),
        })
    }
}

pub(crate) struct NanoLimiter {
    nanoprocess: Arc<str>,
    /// This nanoprocess's budget (if it has a memory limit) then its ancestors'.
    budgets: Vec<Arc<Budget>>,
    /// Bytes this store has charged to every budget in `budgets`.
    charged: u64,
    tables: Option<u64>,
    table_elements: u64,
    instances: usize,
}

impl NanoLimiter {
    pub fn new(nanoprocess: Arc<str>, limits: &Limits, budgets: Vec<Arc<Budget>>) -> Self {
        Self {
            nanoprocess,
            budgets,
            charged: 0,
            tables: limits.get(LimitKind::Tables),
            table_elements: 0,
            instances: limits
                .get(LimitKind::Instances)
                .map_or(wasmtime::DEFAULT_INSTANCE_LIMIT, |n| {
                    usize::try_from(n).unwrap_or(usize::MAX)
                }),
        }
    }
}

impl NanoLimiter {
    /// The bytes this nanoprocess may still allocate, if any budget bounds it: the
    /// least any of its budgets has left. Asked on every call into a child, so it
    /// copies nothing; [`Self::headroom`] says whose budget that is.
    pub fn left(&self) -> Option<u64> {
        self.tightest().map(|(left, _)| left)
    }

    /// [`Self::left`], with the budget it comes from.
    pub fn headroom(&self) -> Option<Headroom> {
        self.tightest().map(|(left, b)| Headroom {
            left,
            owner: b.owner.clone(),
            limit: b.limit,
        })
    }

    fn tightest(&self) -> Option<(u64, &Budget)> {
        self.budgets
            .iter()
            .map(|b| (b.limit.saturating_sub(b.used.load(Ordering::Relaxed)), &**b))
            .min_by_key(|(left, _)| *left)
    }
}

impl wasmtime::ResourceLimiter for NanoLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let delta = desired.saturating_sub(current) as u64;
        // All or nothing: check every budget before charging any.
        for b in &self.budgets {
            let used = b.used.load(Ordering::Relaxed);
            if used.saturating_add(delta) > b.limit {
                return Err(wasmtime::Error::new(LimitExceeded {
                    nanoprocess: self.nanoprocess.clone(),
                    kind: LimitKind::Memory,
                    limit: b.limit,
                    owner: b.owner.clone(),
                    detail: format!(
                        "a memory asked to grow from {} to {}",
                        nanoproc_caps::format_bytes(current as u64),
                        nanoproc_caps::format_bytes(desired as u64)
                    ),
                }));
            }
        }
        for b in &self.budgets {
            b.used.fetch_add(delta, Ordering::Relaxed);
        }
        self.charged += delta;
        Ok(true)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let delta = desired.saturating_sub(current) as u64;
        if let Some(limit) = self.tables
            && self.table_elements + delta > limit
        {
            return Err(wasmtime::Error::new(LimitExceeded {
                nanoprocess: self.nanoprocess.clone(),
                kind: LimitKind::Tables,
                limit,
                owner: self.nanoprocess.clone(),
                detail: format!("a table asked to grow to {desired} elements"),
            }));
        }
        self.table_elements += delta;
        Ok(true)
    }

    fn instances(&self) -> usize {
        self.instances
    }
}

impl Drop for NanoLimiter {
    fn drop(&mut self) {
        for b in &self.budgets {
            b.used.fetch_sub(self.charged, Ordering::Relaxed);
        }
    }
}
