//! Device-local allocations and the pool of host-visible staging buffers.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use vulkano::buffer::{Buffer, BufferCreateInfo, BufferUsage, Subbuffer};
use vulkano::memory::allocator::{AllocationCreateInfo, MemoryTypeFilter, StandardMemoryAllocator};
use vulkano::Validated;

use super::{Box3, GpuError};

/// Source of [`AllocationId`]s: unique per process, so ids of different [`Gpu`](super::Gpu)s
/// never collide in a cache key.
static NEXT_ALLOCATION_ID: AtomicU64 = AtomicU64::new(0);

/// The identity of a [`DeviceAllocation`], unique in the process; hazard tracking and the
/// descriptor-set cache key on it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AllocationId(u64);

impl AllocationId {
    /// The key that stands for the parameter ring of generation `generation` in descriptor-set cache keys:
    /// allocation ids count up from 0, so these, counting down from `u64::MAX`, never meet one.
    pub(super) const fn param_ring(generation: u32) -> Self {
        AllocationId(u64::MAX - generation as u64)
    }

    /// A bit standing for this id among 64 (its number modulo 64): hazard tracking's filter.
    pub(super) const fn bit(self) -> u64 {
        1 << (self.0 % 64)
    }
}

impl fmt::Display for AllocationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "A{}", self.0)
    }
}

impl fmt::Debug for AllocationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// An id for unit tests, which cannot allocate.
#[cfg(test)]
pub(super) fn test_id(n: u64) -> AllocationId {
    AllocationId(n)
}

/// Device-local memory holding one box of a buffer, row-major, `elem_size` bytes per cell:
/// what a kernel's accessor binds to.
///
/// The host cannot map it: fill and read it with [`Batch::upload`](super::Batch::upload) and
/// [`Batch::download`](super::Batch::download). Its contents start undefined.
///
/// Dropping it is always safe: batches in flight that use it keep the memory alive until they
/// complete. Prefer [`Gpu::free`](super::Gpu::free), which also drops the cached descriptor
/// sets that name it; otherwise those keep the memory until the cache is next trimmed.
pub struct DeviceAllocation {
    pub(super) id: AllocationId,
    pub(super) bounds: Box3,
    pub(super) elem_size: usize,
    pub(super) buffer: Subbuffer<[u8]>,
    /// Lives exactly as long as this handle; the descriptor-set cache holds `Weak`s to learn
    /// which entries name dropped allocations.
    pub(super) alive: Arc<()>,
}

impl fmt::Debug for DeviceAllocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeviceAllocation")
            .field("id", &self.id)
            .field("bounds", &self.bounds)
            .field("elem_size", &self.elem_size)
            .field("bytes", &self.bytes())
            .finish()
    }
}

impl DeviceAllocation {
    /// Allocates device-local memory for the cells of `bounds`, `elem_size` bytes each.
    pub(super) fn new(memory: &Arc<StandardMemoryAllocator>, bounds: Box3, elem_size: usize) -> Result<Self, GpuError> {
        let bytes = bounds
            .checked_volume()
            .and_then(|v| v.checked_mul(elem_size))
            .filter(|&b| b > 0)
            .ok_or(GpuError::BadAllocation { bounds, elem_size })?;
        let buffer = Buffer::new_slice::<u8>(
            memory.clone(),
            BufferCreateInfo {
                usage: BufferUsage::STORAGE_BUFFER | BufferUsage::TRANSFER_SRC | BufferUsage::TRANSFER_DST,
                ..Default::default()
            },
            AllocationCreateInfo { memory_type_filter: MemoryTypeFilter::PREFER_DEVICE, ..Default::default() },
            bytes as u64,
        )
        .map_err(|e| allocation_failed("device allocation", bytes, e))?;
        Ok(DeviceAllocation {
            id: AllocationId(NEXT_ALLOCATION_ID.fetch_add(1, Ordering::Relaxed)),
            bounds,
            elem_size,
            buffer,
            alive: Arc::new(()),
        })
    }

    /// Its identity.
    pub fn id(&self) -> AllocationId {
        self.id
    }

    /// The box of buffer cells it holds.
    pub fn bounds(&self) -> Box3 {
        self.bounds
    }

    /// Bytes per cell.
    pub fn elem_size(&self) -> usize {
        self.elem_size
    }

    /// Its size in bytes: `bounds().volume() * elem_size()`.
    pub fn bytes(&self) -> usize {
        self.buffer.len() as usize
    }
}

/// A handle to another [`Gpu`](super::Gpu)'s allocation on the same Vulkan device, which a batch of this one may
/// copy from ([`Batch::copy_from_shared`](super::Batch::copy_from_shared)): made by [`DeviceAllocation::share`]. It
/// keeps the memory alive (not the allocation's contents: the owner may go on writing it) for as long as it, or a
/// batch that copies from it, lives.
#[derive(Clone)]
pub struct SharedAllocation {
    pub(super) id: AllocationId,
    pub(super) bounds: Box3,
    pub(super) elem_size: usize,
    pub(super) buffer: Subbuffer<[u8]>,
}

impl fmt::Debug for SharedAllocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedAllocation")
            .field("id", &self.id)
            .field("bounds", &self.bounds)
            .field("elem_size", &self.elem_size)
            .finish()
    }
}

impl SharedAllocation {
    /// The shared allocation's identity.
    pub fn id(&self) -> AllocationId {
        self.id
    }

    /// The box of buffer cells it holds.
    pub fn bounds(&self) -> Box3 {
        self.bounds
    }
}

impl DeviceAllocation {
    /// A handle through which another `Gpu` on the same Vulkan device ([`Gpu::shares_device`](super::Gpu::shares_device))
    /// copies from this allocation on the GPU; it keeps the memory alive after this handle is freed.
    pub fn share(&self) -> SharedAllocation {
        SharedAllocation { id: self.id, bounds: self.bounds, elem_size: self.elem_size, buffer: self.buffer.clone() }
    }
}

/// Turns a failed buffer allocation into [`GpuError::AllocationFailed`].
pub(super) fn allocation_failed(
    what: &'static str,
    bytes: usize,
    e: Validated<vulkano::buffer::AllocateBufferError>,
) -> GpuError {
    let message = match e {
        Validated::Error(e) => format!("{e:?}"),
        Validated::ValidationError(e) => e.to_string(),
    };
    GpuError::AllocationFailed { what, bytes, message }
}

/// Host-visible staging memory lent out of the [`Gpu`](super::Gpu)'s pool, for host code that reads what a download
/// wrote or writes what an upload reads without a copy in between (the MPI transfers of halos): a stable, mapped
/// base address of [`len`](Self::len) bytes. Made by [`Gpu::take_download`](super::Gpu::take_download) (holding the
/// downloaded cells, packed) or [`Gpu::host_staging`](super::Gpu::host_staging); given back with
/// [`Gpu::give_staging`](super::Gpu::give_staging) or consumed by [`Batch::upload_staged`](super::Batch::upload_staged).
/// Dropping it frees its memory instead of pooling it, which is always safe for the GPU (no batch uses lent memory).
pub struct HostStaging {
    pub(super) buffer: Subbuffer<[u8]>,
    /// The mapped base address of `buffer`.
    pub(super) ptr: std::ptr::NonNull<u8>,
    /// The bytes in use (the buffer may be larger: a size class).
    pub(super) len: usize,
}

impl fmt::Debug for HostStaging {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HostStaging").field("len", &self.len).finish_non_exhaustive()
    }
}

impl HostStaging {
    /// Lends `buffer` (host-visible, persistently mapped, from the pool), `len` bytes of it.
    pub(super) fn lend(buffer: Subbuffer<[u8]>, len: usize) -> Result<Self, GpuError> {
        let mapped = buffer.mapped_slice().map_err(|e| GpuError::Vulkan {
            during: "mapping a staging buffer to lend it".into(),
            message: e.to_string(),
        })?;
        debug_assert!(len <= mapped.len());
        Ok(HostStaging { buffer, ptr: mapped.cast(), len })
    }

    /// The first byte. Reads through it see what the download wrote (it was made visible to the host when lent).
    pub fn as_ptr(&self) -> *const u8 {
        self.ptr.as_ptr()
    }

    /// The first byte, for writes; [`Batch::upload_staged`](super::Batch::upload_staged) makes them visible to
    /// the device.
    pub fn as_mut_ptr(&mut self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    /// Bytes in use: the packed cells of the downloaded region, or the size asked of
    /// [`Gpu::host_staging`](super::Gpu::host_staging).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether it holds no bytes.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Makes what the host wrote visible to the device: a flush of the mapped range where the memory is not
    /// host-coherent (nothing where it is, as on NVIDIA and lavapipe).
    pub(super) fn flush_host_writes(&self) -> Result<(), GpuError> {
        // Not through a write guard: taking one invalidates the range first, which may drop the host's writes.
        if let vulkano::buffer::BufferMemory::Normal(memory) = self.buffer.buffer().memory() {
            if let Some(atom) = memory.atom_size() {
                let atom = atom.as_devicesize();
                let start = self.buffer.offset() / atom * atom;
                let end = (self.buffer.offset() + self.buffer.size()).div_ceil(atom) * atom;
                let range = vulkano::memory::MappedMemoryRange {
                    offset: start,
                    size: end.min(memory.size()) - start,
                    ..Default::default()
                };
                // SAFETY: the range covers this subbuffer, aligned to the non-coherent atom size, which lies in
                // the mapped range (vulkano maps host-visible, non-coherent allocations aligned to the atom
                // size, the reasoning of `Subbuffer::write`); no device operation uses lent memory meanwhile.
                unsafe { memory.flush_range(range) }.map_err(|e| GpuError::Vulkan {
                    during: "flushing host writes to a staging buffer".into(),
                    message: e.to_string(),
                })?;
            }
        }
        Ok(())
    }
}

/// Whether `buffer`'s memory is host-coherent: host and device see each other's writes without a flush or an
/// invalidation of the mapped range.
pub(super) fn is_host_coherent(buffer: &Subbuffer<[u8]>) -> bool {
    match buffer.buffer().memory() {
        vulkano::buffer::BufferMemory::Normal(memory) => memory.atom_size().is_none(),
        _ => false,
    }
}

/// The smallest staging buffer the pool hands out; smaller requests share its size class.
pub(super) const MIN_STAGING_BYTES: usize = 4096;

/// Idle staging memory the pool keeps for reuse; buffers returned beyond it are freed.
/// TODO(perf): size it from the executor's look-ahead once it exists; 256 MiB is a guess.
pub(super) const MAX_IDLE_STAGING_BYTES: usize = 256 << 20;

/// Host-visible buffers for uploads and downloads, reused across batches.
///
/// Size classes are powers of two from [`MIN_STAGING_BYTES`]; a request takes an idle buffer of
/// its class or allocates one. A buffer goes back when the batch that used it completes (upload)
/// or when its download has been read.
pub(super) struct StagingPool {
    memory: Arc<StandardMemoryAllocator>,
    /// `idle[c]` holds idle buffers of `MIN_STAGING_BYTES << c` bytes.
    idle: Vec<Vec<Subbuffer<[u8]>>>,
    idle_bytes: usize,
    /// Buffers allocated over the pool's life, for tests and statistics.
    allocated: u64,
}

impl fmt::Debug for StagingPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StagingPool")
            .field("idle_bytes", &self.idle_bytes)
            .field("allocated", &self.allocated)
            .finish_non_exhaustive()
    }
}

impl StagingPool {
    pub(super) fn new(memory: Arc<StandardMemoryAllocator>) -> Self {
        StagingPool { memory, idle: Vec::new(), idle_bytes: 0, allocated: 0 }
    }

    /// The size class of a request of `bytes`.
    fn class(bytes: usize) -> usize {
        let size = bytes.max(MIN_STAGING_BYTES).next_power_of_two();
        (size / MIN_STAGING_BYTES).trailing_zeros() as usize
    }

    /// An idle buffer of at least `bytes` bytes (the whole buffer, which may be larger).
    pub(super) fn acquire(&mut self, bytes: usize) -> Result<Subbuffer<[u8]>, GpuError> {
        let class = Self::class(bytes);
        if let Some(buffer) = self.idle.get_mut(class).and_then(Vec::pop) {
            self.idle_bytes -= buffer.len() as usize;
            return Ok(buffer);
        }
        let size = MIN_STAGING_BYTES
            .checked_shl(class as u32)
            .filter(|s| *s >= bytes)
            .ok_or(GpuError::AllocationFailed { what: "staging buffer", bytes, message: "too large".into() })?;
        let buffer = Buffer::new_slice::<u8>(
            self.memory.clone(),
            // Storage too: strided boxes are packed into (and unpacked from) staging by a kernel (Batch).
            BufferCreateInfo {
                usage: BufferUsage::TRANSFER_SRC | BufferUsage::TRANSFER_DST | BufferUsage::STORAGE_BUFFER,
                ..Default::default()
            },
            AllocationCreateInfo {
                // Random access: cached host memory where the device has it, good for read-back,
                // and as fast as write-combined memory for the sequential writes of uploads.
                memory_type_filter: MemoryTypeFilter::PREFER_HOST | MemoryTypeFilter::HOST_RANDOM_ACCESS,
                ..Default::default()
            },
            size as u64,
        )
        .map_err(|e| allocation_failed("staging buffer", size, e))?;
        self.allocated += 1;
        Ok(buffer)
    }

    /// Takes back a buffer that no batch in flight uses any more. Where the idle memory would exceed
    /// [`MAX_IDLE_STAGING_BYTES`], idle buffers of larger classes are freed first (largest first): a program's
    /// one-off large copies (uploading its initial data) must not leave the pool too full to keep the small
    /// buffers that every step reuses, which would then be allocated and freed at every use.
    pub(super) fn release(&mut self, buffer: Subbuffer<[u8]>) {
        let bytes = buffer.len() as usize;
        let class = Self::class(bytes);
        let mut larger = self.idle.len();
        while self.idle_bytes + bytes > MAX_IDLE_STAGING_BYTES && larger > class + 1 {
            larger -= 1;
            while self.idle_bytes + bytes > MAX_IDLE_STAGING_BYTES {
                let Some(evicted) = self.idle[larger].pop() else { break };
                self.idle_bytes -= evicted.len() as usize;
            }
        }
        if self.idle_bytes + bytes > MAX_IDLE_STAGING_BYTES {
            return; // dropped: frees its memory
        }
        if self.idle.len() <= class {
            self.idle.resize_with(class + 1, Vec::new);
        }
        self.idle[class].push(buffer);
        self.idle_bytes += bytes;
    }

    /// Buffers allocated over the pool's life.
    pub(super) fn allocated(&self) -> u64 {
        self.allocated
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_classes_are_powers_of_two_from_the_minimum() {
        assert_eq!(StagingPool::class(0), 0);
        assert_eq!(StagingPool::class(1), 0);
        assert_eq!(StagingPool::class(MIN_STAGING_BYTES), 0);
        assert_eq!(StagingPool::class(MIN_STAGING_BYTES + 1), 1);
        assert_eq!(StagingPool::class(4 * MIN_STAGING_BYTES), 2);
        assert_eq!(StagingPool::class(4 * MIN_STAGING_BYTES + 1), 3);
    }
}
