//! Hazard tracking within a batch: which operations must wait for earlier ones behind a barrier.

use super::{AllocationId, Batch, WORK_ACCESSES, WORK_STAGES, WORK_WRITES};

/// The allocations read and written since the last barrier of a batch.
#[derive(Default, Debug)]
pub(super) struct Hazards {
    pub(super) read: Vec<AllocationId>,
    pub(super) written: Vec<AllocationId>,
}

impl Hazards {
    /// Whether an operation with these `(allocation, writes)` accesses must wait for an earlier
    /// operation since the last barrier: read-after-write, write-after-write or write-after-read
    /// on the same allocation.
    pub(super) fn conflicts(&self, accesses: &[(AllocationId, bool)]) -> bool {
        accesses.iter().any(|&(id, writes)| self.written.contains(&id) || (writes && self.read.contains(&id)))
    }

    pub(super) fn note(&mut self, accesses: &[(AllocationId, bool)]) {
        for &(id, writes) in accesses {
            let list = if writes { &mut self.written } else { &mut self.read };
            if !list.contains(&id) {
                list.push(id);
            }
        }
    }

    pub(super) fn clear(&mut self) {
        self.read.clear();
        self.written.clear();
    }
}

impl Batch<'_> {
    /// Notes an operation's accesses, recording a barrier first if it conflicts with one since
    /// the last barrier.
    pub(super) fn access(&mut self, accesses: &[(AllocationId, bool)]) {
        if self.hazards.conflicts(accesses) {
            self.record_barrier(WORK_STAGES, WORK_WRITES, WORK_STAGES, WORK_ACCESSES);
            self.hazards.clear();
        }
        self.hazards.note(accesses);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: usize) -> Vec<AllocationId> {
        // AllocationId has no public constructor; tests make them through its tuple field.
        (0..n as u64).map(crate::gpu::memory::test_id).collect()
    }

    #[test]
    fn reads_after_reads_need_no_barrier() {
        let a = ids(2);
        let mut h = Hazards::default();
        h.note(&[(a[0], false)]);
        assert!(!h.conflicts(&[(a[0], false), (a[1], true)]));
    }

    #[test]
    fn read_after_write_write_after_read_and_write_after_write_need_a_barrier() {
        let a = ids(3);
        let mut h = Hazards::default();
        h.note(&[(a[0], true), (a[1], false)]);
        assert!(h.conflicts(&[(a[0], false)]), "read after write");
        assert!(h.conflicts(&[(a[0], true)]), "write after write");
        assert!(h.conflicts(&[(a[1], true)]), "write after read");
        assert!(!h.conflicts(&[(a[2], true)]), "an untouched allocation");
        h.clear();
        assert!(!h.conflicts(&[(a[0], true)]), "after a barrier");
    }
}
