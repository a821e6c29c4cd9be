//! Hazard tracking within a batch: which operations must wait for earlier ones behind a barrier.

use super::{AllocationId, Batch, WORK_ACCESSES, WORK_STAGES, WORK_WRITES};

/// The allocations read and written since the last barrier of a batch.
#[derive(Default, Debug)]
pub(super) struct Hazards {
    pub(super) read: Vec<AllocationId>,
    pub(super) written: Vec<AllocationId>,
    /// Bit `id % 64` of each allocation in `read` (`written`): an allocation whose bit is clear is not in the
    /// list, so most lookups skip the linear search (a kernel binding nine buffers did nine per dispatch).
    read_bits: u64,
    written_bits: u64,
}

impl Hazards {
    /// Whether an operation with these `(allocation, writes)` accesses must wait for an earlier
    /// operation since the last barrier: read-after-write, write-after-write or write-after-read
    /// on the same allocation.
    pub(super) fn conflicts(&self, accesses: &[(AllocationId, bool)]) -> bool {
        accesses.iter().any(|&(id, writes)| {
            let b = id.bit();
            (self.written_bits & b != 0 && self.written.contains(&id))
                || (writes && self.read_bits & b != 0 && self.read.contains(&id))
        })
    }

    pub(super) fn note(&mut self, accesses: &[(AllocationId, bool)]) {
        for &(id, writes) in accesses {
            let b = id.bit();
            let (list, bits) = if writes {
                (&mut self.written, &mut self.written_bits)
            } else {
                (&mut self.read, &mut self.read_bits)
            };
            if *bits & b == 0 || !list.contains(&id) {
                list.push(id);
                *bits |= b;
            }
        }
    }

    pub(super) fn clear(&mut self) {
        self.read.clear();
        self.written.clear();
        self.read_bits = 0;
        self.written_bits = 0;
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

    #[test]
    fn allocations_sharing_a_filter_bit_are_told_apart() {
        // Ids 1 and 65 share bit 1 of the filters, 2 and 66 bit 2: the lists decide.
        let a = ids(67);
        let mut h = Hazards::default();
        h.note(&[(a[1], true), (a[2], false)]);
        assert!(!h.conflicts(&[(a[65], true)]), "another allocation with the written one's bit");
        assert!(!h.conflicts(&[(a[66], true)]), "a write of another with the read one's bit");
        assert!(h.conflicts(&[(a[1], false)]), "the written one");
        h.note(&[(a[65], false), (a[65], false)]);
        assert_eq!(h.read.len(), 2, "a repeated read is noted once");
        assert!(h.conflicts(&[(a[65], true)]), "write after read of the second");
        h.clear();
        assert!(!h.conflicts(&[(a[1], true), (a[65], true)]), "after a barrier");
    }
}
