//! [`RegionCache`]: the per-buffer regions of recent access lists over recent index spaces, so that a task that
//! repeats a recent task's shape (a time step's kernels, rotating buffers) skips applying and checking its range
//! mappers.
//!
//! What [`TaskManager::submit`](crate::TaskManager::submit) derives from a task's accesses alone (each mapper applied
//! to the index space, the bounds check, the intra-task race check, the union per buffer) depends only on the access
//! list, the kind's class (a kernel or host task over items or not; a host closure or not: two writing accessors
//! of one buffer may overlap in a kernel, not in a host task), the dimensions, the index space, which accesses the kernel touches only through atomics
//! ([`TaskSpec::atomic_accesses`], which the race check exempts), and the accessed buffers' extents and dimensions. A list
//! shared by reference ([`TaskSpec::accesses`] is an `Arc`; the application thread shares equal lists) over the same
//! index space therefore gives the same regions, as long as none of its buffers was destroyed or created anew under
//! its id in between (the id could then name another extent): the task manager clears the cache then. Only outcomes
//! that passed every check are kept, only for lists without custom mappers (a closure may answer differently each
//! time), and only from a list's second submission on.

use std::sync::Arc;

use crate::geometry::GridBox;
use crate::task::{AccessRegions, BufferAccess, RangeMapper, RegionList, TaskSpec};

/// How many outcomes are kept: enough for a time step of a few kernels over rotating buffers.
const ENTRIES: usize = 8;

/// How many access lists (their addresses) are remembered as seen once: a list's outcome is kept only when it comes
/// again, so that a program whose every task has a list of its own (specs built afresh) pays no copy per task. As
/// many as outcomes are kept: a time step cycling through more lists than that would only evict its own.
const SEEN: usize = ENTRIES;

/// One kept outcome and what it was derived from.
#[derive(Debug)]
struct Entry {
    /// The access list, held so that its address names it while it is kept.
    accesses: Arc<Vec<BufferAccess>>,
    /// Whether the task was a kernel or host task over items (the race check and the empty-loop rule apply).
    compute: bool,
    /// Whether the task runs a host closure (the check of overlapping writing accessors applies).
    host: bool,
    /// The task's [`TaskSpec::atomic_accesses`]: one kernel's pass of the race check through atomics says nothing
    /// of another kernel's plain accesses with the same list.
    atomic_accesses: u64,
    dims: usize,
    range: GridBox,
    regions: RegionList,
}

/// Recent outcomes of applying access lists, the oldest replaced first; see the [module docs](self).
#[derive(Debug, Default)]
pub(crate) struct RegionCache {
    entries: Vec<Entry>,
    /// The entry the next new outcome replaces once all are in use.
    next: usize,
    /// The addresses of access lists seen without a kept outcome (an address only: a list freed since and another
    /// one allocated there costs one needless copy, nothing else), and the slot the next one takes.
    seen: [usize; SEEN],
    next_seen: usize,
}

impl RegionCache {
    /// Copies the kept regions of `spec`'s accesses into `regions` (empty); false where none are kept.
    #[inline]
    pub(crate) fn fill(&self, spec: &TaskSpec, compute: bool, regions: &mut RegionList) -> bool {
        let Some(e) = self.entries.iter().find(|e| {
            Arc::ptr_eq(&e.accesses, &spec.accesses)
                && e.range == spec.range
                && e.dims == spec.dims
                && e.compute == compute
                && e.host == spec.kind.host_closure()
                && e.atomic_accesses == spec.atomic_accesses
        }) else {
            return false;
        };
        for r in &e.regions {
            regions.push(AccessRegions {
                buffer: r.buffer,
                consumed: r.consumed.clone(),
                produced: r.produced.clone(),
            });
        }
        true
    }

    /// Keeps the regions `regions` derived from `spec`'s accesses, which passed every check, if its access list was
    /// seen before (and no mapper is a custom closure); else notes the list as seen.
    #[inline]
    pub(crate) fn keep(&mut self, spec: &TaskSpec, compute: bool, regions: &RegionList) {
        let address = Arc::as_ptr(&spec.accesses) as usize;
        if !self.seen.contains(&address) {
            self.seen[self.next_seen] = address;
            self.next_seen = (self.next_seen + 1) % SEEN;
            return;
        }
        self.insert(spec, compute, regions);
    }

    /// Keeps the regions of a list seen before.
    #[inline(never)]
    fn insert(&mut self, spec: &TaskSpec, compute: bool, regions: &RegionList) {
        if spec.accesses.iter().any(|a| matches!(a.mapper, RangeMapper::Custom { .. })) {
            return;
        }
        let regions = regions
            .iter()
            .map(|r| AccessRegions { buffer: r.buffer, consumed: r.consumed.clone(), produced: r.produced.clone() })
            .collect();
        let entry = Entry {
            accesses: Arc::clone(&spec.accesses),
            compute,
            host: spec.kind.host_closure(),
            atomic_accesses: spec.atomic_accesses,
            dims: spec.dims,
            range: spec.range,
            regions,
        };
        if self.entries.len() < ENTRIES {
            self.entries.push(entry);
        } else {
            self.entries[self.next] = entry;
            self.next = (self.next + 1) % ENTRIES;
        }
    }

    /// Forgets every outcome (a buffer was created or destroyed: an id may now name another extent).
    pub(crate) fn clear(&mut self) {
        self.entries.clear();
        self.next = 0;
    }
}
