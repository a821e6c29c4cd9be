//! The ring buffer that holds the parameter words of kernels whose block is too large for push constants.
//!
//! `celer-kernel-build` moves a parameter block (`var<immediate>`) of more than 128 bytes, which not every device
//! takes as push constants, to a read-only storage buffer at `@group(0) @binding(p)`
//! ([`KernelSource::params_binding`](crate::shaders::KernelSource::params_binding)). A dispatch of such a kernel
//! writes the words it would push ([`prepare_dispatch`](super::kernel::prepare_dispatch)'s) into this ring and binds
//! the descriptor set with the slot's offset as the dynamic offset of binding `p` (a `STORAGE_BUFFER_DYNAMIC`
//! descriptor of [`MAX_PARAMS_BYTES`] bytes, so one descriptor set serves every slot).
//!
//! **Reuse.** Positions are virtual (they only grow; the slot of position `v` lies at `v % capacity`), so "free" is
//! one comparison: the slots from `tail` to `head` may be read by batches not yet complete. Each batch notes `head`
//! after its last slot ([`mark`](ParamRing::mark)); when it completes, `tail` moves there
//! ([`release`](ParamRing::release)), and when no batch is in flight the whole ring is free
//! ([`all_free`](ParamRing::all_free)). A request that does not fit between `head` and `tail` never overwrites:
//! the ring is replaced by one twice as large (its generation changes, so descriptor sets of the old one are dropped
//! from the cache; batches in flight keep the old buffer alive through their sets).

use std::sync::Arc;

use vulkano::buffer::{Buffer, BufferCreateInfo, BufferUsage, Subbuffer};
use vulkano::memory::allocator::{AllocationCreateInfo, MemoryTypeFilter, StandardMemoryAllocator};

use super::GpuError;

/// The most bytes of parameters a kernel reads from the ring: the range of its descriptor. Equal to
/// `celer_kernel_build::MAX_PARAMS_BYTES`, the largest parameter block the build accepts (the chunk and 169 boxes;
/// a unit test checks they agree).
pub const MAX_PARAMS_BYTES: usize = 4096;

/// The first ring's capacity: 16 dispatches of the largest block, hundreds of typical ones.
const INITIAL_CAPACITY: u64 = 64 * 1024;

/// The parameter ring of one [`Gpu`](super::Gpu) (see the [module docs](self)).
pub(super) struct ParamRing {
    /// `capacity + MAX_PARAMS_BYTES` bytes, so the descriptor's range from any slot stays inside; `None` until the
    /// first dispatch that needs it.
    buffer: Option<Subbuffer<[u8]>>,
    capacity: u64,
    /// Changes with every new buffer (descriptor sets name the ring by it).
    generation: u32,
    /// The virtual position of the next slot.
    head: u64,
    /// Slots before this virtual position are read by no batch that can still run.
    tail: u64,
}

impl std::fmt::Debug for ParamRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParamRing")
            .field("capacity", &self.capacity)
            .field("generation", &self.generation)
            .field("head", &self.head)
            .field("tail", &self.tail)
            .finish_non_exhaustive()
    }
}

impl ParamRing {
    pub(super) fn new() -> Self {
        ParamRing { buffer: None, capacity: 0, generation: 0, head: 0, tail: 0 }
    }

    /// The current buffer and its generation (after [`reserve`](Self::reserve) made one).
    pub(super) fn buffer(&self) -> Option<(&Subbuffer<[u8]>, u32)> {
        self.buffer.as_ref().map(|b| (b, self.generation))
    }

    /// Reserves `bytes` contiguous bytes (a multiple of the alignment the caller uses for every request) and returns
    /// their offset in the buffer, and the generation of the ring that was replaced to make room (`None`: none was).
    /// Nothing pending is overwritten: a request that does not fit in front of `tail` gets a new, larger ring.
    ///
    /// # Errors
    /// [`GpuError::AllocationFailed`] if a new ring cannot be allocated.
    pub(super) fn reserve(
        &mut self,
        memory: &Arc<StandardMemoryAllocator>,
        bytes: u64,
    ) -> Result<(u64, Option<u32>), GpuError> {
        if self.buffer.is_some() {
            if let Some(offset) = self.place(bytes) {
                return Ok((offset, None));
            }
        }
        let capacity = (self.capacity * 2).max(INITIAL_CAPACITY).max(bytes.next_power_of_two());
        let buffer = Buffer::new_slice::<u8>(
            memory.clone(),
            BufferCreateInfo { usage: BufferUsage::STORAGE_BUFFER, ..Default::default() },
            AllocationCreateInfo {
                // Written once per dispatch by the host, read by the kernel: device-local host-visible memory where
                // there is some (a BAR heap), else host memory.
                memory_type_filter: MemoryTypeFilter::PREFER_DEVICE | MemoryTypeFilter::HOST_SEQUENTIAL_WRITE,
                ..Default::default()
            },
            capacity + MAX_PARAMS_BYTES as u64,
        )
        .map_err(|e| super::memory::allocation_failed("kernel parameter ring", capacity as usize, e))?;
        let replaced = self.buffer.replace(buffer).map(|_| self.generation);
        self.generation = self.generation.wrapping_add(1);
        self.capacity = capacity;
        self.tail = 0;
        self.head = bytes;
        Ok((0, replaced))
    }

    /// The offset of `bytes` contiguous bytes in front of `tail` (moving `head` past them), or `None` where they do
    /// not fit (or there is no ring yet).
    fn place(&mut self, bytes: u64) -> Option<u64> {
        if self.capacity == 0 {
            return None;
        }
        let mut start = self.head;
        let at = start % self.capacity;
        if at + bytes > self.capacity {
            // Not across the end: skip to the ring's start.
            start += self.capacity - at;
        }
        (start + bytes - self.tail <= self.capacity).then(|| {
            self.head = start + bytes;
            start % self.capacity
        })
    }

    /// Writes `words` at byte `offset` (inside a range [`reserve`](Self::reserve) returned).
    ///
    /// # Errors
    /// [`GpuError::Vulkan`] if the memory cannot be mapped.
    pub(super) fn write(&self, offset: u64, words: &[u32]) -> Result<(), GpuError> {
        let buffer = self.buffer.as_ref().expect("reserve made the ring");
        let bytes = (words.len() * 4) as u64;
        let slot = buffer.clone().slice(offset..offset + bytes);
        let mut guard = slot.write().map_err(|e| GpuError::Vulkan {
            during: "mapping the kernel parameter ring".into(),
            message: e.to_string(),
        })?;
        for (dst, w) in guard.chunks_exact_mut(4).zip(words) {
            dst.copy_from_slice(&w.to_le_bytes());
        }
        Ok(())
    }

    /// Where a batch's slots end: what [`release`](Self::release) takes once the batch completed.
    pub(super) fn mark(&self) -> (u32, u64) {
        (self.generation, self.head)
    }

    /// A batch whose slots ended at `mark` completed: the ring before it is free (if it is still this ring).
    pub(super) fn release(&mut self, mark: (u32, u64)) {
        if mark.0 == self.generation {
            self.tail = self.tail.max(mark.1);
        }
    }

    /// No batch is in flight or being recorded: the whole ring is free.
    pub(super) fn all_free(&mut self) {
        if self.capacity > 0 {
            // From the ring's start, so the next requests need not skip its end.
            self.head = self.head.next_multiple_of(self.capacity);
        }
        self.tail = self.head;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The ring's bookkeeping without a buffer: `place`'s arithmetic on a ring of `capacity`.
    fn ring(capacity: u64) -> ParamRing {
        ParamRing { buffer: None, capacity, generation: 1, head: 0, tail: 0 }
    }

    #[test]
    fn the_ring_binds_as_many_bytes_as_the_build_lets_a_parameter_block_take() {
        assert_eq!(MAX_PARAMS_BYTES, celer_kernel_build::MAX_PARAMS_BYTES as usize);
    }

    #[test]
    fn slots_pending_are_never_handed_out_again() {
        let mut r = ring(1024);
        assert_eq!(r.place(256), Some(0));
        assert_eq!(r.place(512), Some(256));
        let first = r.mark();
        assert_eq!(r.place(256), Some(768));
        // Full: [0, 1024) is pending.
        assert_eq!(r.place(256), None);
        r.release(first);
        // Slots before the first batch's end are free again: the ring goes round.
        assert_eq!(r.place(512), Some(0));
        assert_eq!(r.place(512), None, "512..1024 would overlap 768..1024, still pending");
        r.release((0, u64::MAX));
        assert_eq!(r.place(512), None, "a mark of another generation frees nothing");
        r.all_free();
        assert_eq!(r.place(1024), Some(0));
    }
}
