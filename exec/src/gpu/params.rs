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
//!
//! **Shrinking.** A ring that grew keeps its size while it is used; once the Gpu is idle (no batch in flight: every
//! slot free) after a busy period whose slots took at most a quarter of it, the next request gets a new ring of the
//! default size (or twice that period's peak), replaced the same way as when growing. A program that needed a
//! large ring once (one batch of thousands of dispatches) does not hold it for the rest of the run; one that
//! needs it in every busy period keeps it.
//!
//! **Limit.** Slots are bound by a Vulkan dynamic offset, a `u32`: the ring never grows past 4 GiB
//! ([`MAX_CAPACITY`]), and a batch that would need more is refused ([`GpuError::ParamRingFull`]).

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

/// The largest ring: every slot's offset (below the capacity) must fit the `u32` of a Vulkan dynamic offset.
const MAX_CAPACITY: u64 = 1 << 32;

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
    /// The most bytes pending at once (`head - tail`, skipped bytes included) since the Gpu was last idle.
    peak: u64,
    /// The capacity the next request's new ring gets: set when the Gpu went idle with a ring used at most a quarter.
    shrink_to: Option<u64>,
}

impl std::fmt::Debug for ParamRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParamRing")
            .field("capacity", &self.capacity)
            .field("generation", &self.generation)
            .field("head", &self.head)
            .field("tail", &self.tail)
            .field("peak", &self.peak)
            .field("shrink_to", &self.shrink_to)
            .finish_non_exhaustive()
    }
}

impl ParamRing {
    pub(super) fn new() -> Self {
        ParamRing { buffer: None, capacity: 0, generation: 0, head: 0, tail: 0, peak: 0, shrink_to: None }
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
    /// [`GpuError::AllocationFailed`] if a new ring cannot be allocated, [`GpuError::ParamRingFull`] if it would
    /// have to grow past 4 GiB.
    pub(super) fn reserve(
        &mut self,
        memory: &Arc<StandardMemoryAllocator>,
        bytes: u64,
    ) -> Result<(u64, Option<u32>), GpuError> {
        if self.buffer.is_some() && self.shrink_to.is_none() {
            if let Some(offset) = self.place(bytes) {
                return Ok((offset, None));
            }
        }
        let capacity = self.next_capacity(bytes)?;
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
        self.peak = self.peak.max(bytes);
        self.shrink_to = None;
        Ok((0, replaced))
    }

    /// The capacity of the new ring a request of `bytes` that did not fit gets: twice the current one (at least the
    /// default and the request), or the smaller one [`all_free`](Self::all_free) chose.
    ///
    /// # Errors
    /// [`GpuError::ParamRingFull`] past [`MAX_CAPACITY`].
    fn next_capacity(&self, bytes: u64) -> Result<u64, GpuError> {
        let grown = self.shrink_to.unwrap_or((self.capacity * 2).max(INITIAL_CAPACITY));
        let capacity = grown.max(bytes.checked_next_power_of_two().unwrap_or(u64::MAX));
        if capacity > MAX_CAPACITY {
            return Err(GpuError::ParamRingFull { bytes, pending: self.head - self.tail, limit: MAX_CAPACITY });
        }
        Ok(capacity)
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
            self.peak = self.peak.max(self.head - self.tail);
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
        // Host-coherent memory (NVIDIA's, lavapipe's): straight into the persistent mapping. A write guard would
        // clone the buffer, take and release vulkano's host-access lock on the range (a B-tree of ranges) and
        // check device use, about 2 000 instructions for a few words, on every dispatch of such a kernel.
        if super::memory::is_host_coherent(buffer) {
            let mapped = buffer.mapped_slice().map_err(|e| GpuError::Vulkan {
                during: "mapping the kernel parameter ring".into(),
                message: e.to_string(),
            })?;
            assert!(offset + bytes <= mapped.len() as u64, "a parameter slot past the ring's end");
            // SAFETY: the range lies inside the mapping (checked above); `reserve` handed it to this dispatch alone,
            // and the ring hands it out again only after the batch reading it completed (`release`), so neither
            // the device nor another host write uses it meanwhile; coherent memory needs no flush.
            unsafe {
                let dst = mapped.cast::<u8>().as_ptr().add(offset as usize);
                for (i, w) in words.iter().enumerate() {
                    std::ptr::copy_nonoverlapping(w.to_le_bytes().as_ptr(), dst.add(4 * i), 4);
                }
            }
            return Ok(());
        }
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

    /// No batch is in flight or being recorded: the whole ring is free. A ring that grew past the default size and
    /// whose busy period since the last call used at most a quarter of it is replaced by a smaller one at the next
    /// request (see the [module docs](self)).
    pub(super) fn all_free(&mut self) {
        if self.capacity > 0 {
            // From the ring's start, so the next requests need not skip its end.
            self.head = self.head.next_multiple_of(self.capacity);
        }
        self.tail = self.head;
        if self.capacity > INITIAL_CAPACITY && self.peak > 0 && self.peak <= self.capacity / 4 {
            self.shrink_to = Some((self.peak * 2).next_power_of_two().max(INITIAL_CAPACITY));
        }
        self.peak = 0;
    }
}

/// Slot offset `offset` as the `u32` dynamic offset Vulkan binds it with.
///
/// # Errors
/// [`GpuError::ParamOffsetOverflow`] past `u32::MAX` (the ring never grows that large: [`MAX_CAPACITY`]).
pub(super) fn dynamic_offset(offset: u64) -> Result<u32, GpuError> {
    u32::try_from(offset).map_err(|_| GpuError::ParamOffsetOverflow { offset })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The ring's bookkeeping without a buffer: `place`'s arithmetic on a ring of `capacity`.
    fn ring(capacity: u64) -> ParamRing {
        ParamRing { buffer: None, capacity, generation: 1, head: 0, tail: 0, peak: 0, shrink_to: None }
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

    #[test]
    fn the_ring_grows_to_4_gib_and_no_further_and_offsets_past_u32_are_refused() {
        let r = ring(1 << 31);
        assert_eq!(r.next_capacity(4096).unwrap(), 1 << 32);
        let e = ring(1 << 32).next_capacity(4096).unwrap_err();
        assert!(matches!(e, GpuError::ParamRingFull { bytes: 4096, limit: MAX_CAPACITY, .. }), "{e}");
        assert!(e.to_string().contains("the most a Vulkan dynamic offset (u32) addresses"), "{e}");
        assert!(matches!(ring(0).next_capacity(u64::MAX), Err(GpuError::ParamRingFull { .. })));
        assert_eq!(dynamic_offset(u32::MAX as u64).unwrap(), u32::MAX);
        let e = dynamic_offset(1 << 32).unwrap_err();
        assert!(e.to_string().contains("offset 4294967296"), "{e}");
    }

    #[test]
    fn a_grown_ring_shrinks_once_idle_after_a_busy_period_that_used_a_quarter_of_it_or_less() {
        let mut r = ring(1 << 20);
        // A busy period using half of it: it stays.
        assert_eq!(r.place(1 << 19), Some(0));
        r.all_free();
        assert_eq!(r.shrink_to, None);
        assert_eq!(r.next_capacity(256).unwrap(), 1 << 21, "growing doubles");
        // An idle period without requests keeps it too (nothing measured).
        r.all_free();
        assert_eq!(r.shrink_to, None);
        // A busy period of 3 slots of 4 KiB: the next request gets a ring of the default size.
        for _ in 0..3 {
            assert!(r.place(4096).is_some());
        }
        r.all_free();
        assert_eq!(r.shrink_to, Some(INITIAL_CAPACITY));
        assert_eq!(r.next_capacity(4096).unwrap(), INITIAL_CAPACITY);
        // A busy period of 200 KiB: twice its peak, rounded up to a power of two.
        let mut r = ring(1 << 22);
        assert!(r.place(200 * 1024).is_some());
        r.all_free();
        assert_eq!(r.shrink_to, Some(512 * 1024));
        // A ring of the default size never shrinks.
        let mut r = ring(INITIAL_CAPACITY);
        assert!(r.place(256).is_some());
        r.all_free();
        assert_eq!(r.shrink_to, None);
    }
}
