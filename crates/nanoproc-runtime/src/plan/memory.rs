//! The notice `check` gives when nothing bounds the tree's memory: the root has
//! no memory limit and its dependencies, each at its own, may take more than the
//! machine has.

use nanoproc_caps::{Capabilities, LimitKind};
use nanoproc_manifest::Manifest;
use std::path::Path;

/// The most linear memory a tree's dependencies may hold at once under a root
/// without a memory limit: the sum of the root's children's memory limits, or
/// `None` if one of them has none.
///
/// Every growth of a linear memory is charged to its nanoprocess's budget and to
/// each ancestor's (`limits::NanoLimiter`), so a memory limit bounds its whole
/// subtree, whatever the limits below it say (they are within it anyway). The
/// subtrees of the root's children are disjoint, so together they hold at most the
/// sum of those children's limits, and that sum is reached when each of them is at
/// its limit (a limit deeper down is already counted in its ancestor's). A
/// dependency always has a limit, its own or the child default (256 MiB) capped by
/// its parent's; under an unlimited root, that is 256 MiB for every child that
/// says nothing. The root's own memory has no bound at all.
fn dependencies_memory_bound(parents_and_limits: &[(Option<usize>, Option<u64>)]) -> Option<u64> {
    parents_and_limits
        .iter()
        .filter(|(parent, _)| *parent == Some(0))
        .try_fold(0u64, |sum, (_, limit)| Some(sum.saturating_add((*limit)?)))
}

/// The memory nanoproc can have: the machine's physical memory (`MemTotal` in
/// `/proc/meminfo`), or the limit of the control group it runs in, if smaller (in
/// a container, the machine's memory says little). `None` where the kernel does not
/// say, and then no notice compares anything with it.
pub(super) fn physical_memory() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kib: u64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))?
        .trim()
        .strip_suffix("kB")?
        .trim()
        .parse()
        .ok()?;
    let total = kib.checked_mul(1024)?;
    Some(cgroup_memory_limit().map_or(total, |limit| limit.min(total)))
}

/// The memory limit of this process's control group: cgroup v2's `memory.max`, or
/// v1's `memory.limit_in_bytes`, read where `/proc/self/cgroup` says the group is.
/// "max" (v2) and the huge number v1 uses for "none" are no limit.
fn cgroup_memory_limit() -> Option<u64> {
    let groups = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let candidates = groups.lines().filter_map(|line| {
        let mut fields = line.splitn(3, ':');
        let (_, controllers, path) = (fields.next()?, fields.next()?, fields.next()?);
        let path = path.trim_start_matches('/');
        if controllers.is_empty() {
            Some(Path::new("/sys/fs/cgroup").join(path).join("memory.max"))
        } else if controllers.split(',').any(|c| c == "memory") {
            Some(
                Path::new("/sys/fs/cgroup/memory")
                    .join(path)
                    .join("memory.limit_in_bytes"),
            )
        } else {
            None
        }
    });
    candidates
        .filter_map(|file| {
            std::fs::read_to_string(file)
                .ok()?
                .trim()
                .parse::<u64>()
                .ok()
        })
        .filter(|&limit| limit < 1 << 60)
        .min()
}

/// A notice when the root has no memory limit and its dependencies, each at its
/// limit, may take more memory than the machine has (`physical`): nothing but the
/// root's own limit bounds the tree, and by default the root has none.
pub(super) fn unbounded_memory_notice<'a>(
    manifest: &Manifest,
    caps: impl IntoIterator<Item = &'a Capabilities>,
    physical: Option<u64>,
) -> Option<String> {
    let caps: Vec<&Capabilities> = caps.into_iter().collect();
    let root = caps.first()?;
    if root.limits.get(LimitKind::Memory).is_some() {
        return None;
    }
    let physical = physical?;
    let parents_and_limits: Vec<(Option<usize>, Option<u64>)> = manifest
        .nodes
        .iter()
        .zip(&caps)
        .map(|(node, c)| (node.parent, c.limits.get(LimitKind::Memory)))
        .collect();
    let gib = |bytes: u64| format!("{:.1} GiB", bytes as f64 / f64::from(1u32 << 30));
    let bound = dependencies_memory_bound(&parents_and_limits);
    let at_most = match bound {
        Some(b) if b <= physical => return None,
        Some(b) => format!("up to {}", gib(b)),
        None => "without bound".to_string(),
    };
    Some(format!(
        "the root `{}` has no memory limit, and its dependencies may together take {at_most} of linear memory (each at its own limit, the default being 256 MiB), more than this machine's {}; set `grants.memory` on the root to bound the whole tree (a memory limit bounds a nanoprocess and everything below it)",
        manifest.nodes[0].path,
        gib(physical)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    #[test]
    fn the_dependencies_bound_is_the_sum_of_the_roots_childrens_limits() {
        // root ─┬─ a (256 MiB) ── a1 (100 MiB, within a's, so not counted again)
        //       └─ b (64 MiB)
        let tree = [
            (None, None),
            (Some(0), Some(256 * MIB)),
            (Some(1), Some(100 * MIB)),
            (Some(0), Some(64 * MIB)),
        ];
        assert_eq!(dependencies_memory_bound(&tree), Some(320 * MIB));
        assert_eq!(dependencies_memory_bound(&tree[..1]), Some(0));
        let unlimited_child = [(None, None), (Some(0), None)];
        assert_eq!(dependencies_memory_bound(&unlimited_child), None);
        let huge = [(None, None), (Some(0), Some(u64::MAX)), (Some(0), Some(1))];
        assert_eq!(dependencies_memory_bound(&huge), Some(u64::MAX));
    }
}
