//! The copy operations of a batch: uploads from host slices or lent staging memory, downloads into staging
//! memory, and device-to-device copies (also from an allocation of another `Gpu` on the same device), with the
//! checks of their regions and staging sizes.

use std::sync::Arc;

use ash::vk;
use vulkano::buffer::Subbuffer;
use vulkano::VulkanObject;

use super::super::{check_host_slice, copy_runs, AllocationId, Box3, DeviceAllocation};
use super::super::{DownloadId, GpuError, HostStaging, RegionOutside};
use super::{Batch, OpKind};

impl Batch<'_> {
    /// Copies the cells of `region` from `src`, a host slice holding the cells of `src_bounds`
    /// row-major, into `dst`. The bytes are copied into a staging buffer now (packed, one
    /// `memcpy` per contiguous run), so `src` may be reused at once; the device copies them into
    /// the allocation with one region per contiguous run ([`copy_runs`]).
    ///
    /// # Errors
    ///
    /// [`GpuError::RegionOutside`] if `region` is not inside both `dst`'s box and `src_bounds`,
    /// [`GpuError::HostSliceTooShort`], [`GpuError::AllocationFailed`] for staging memory.
    pub fn upload(
        &mut self,
        dst: &DeviceAllocation,
        region: Box3,
        src: &[u8],
        src_bounds: Box3,
    ) -> Result<(), GpuError> {
        self.upload_boxes(dst, &[region], src, src_bounds)
    }

    /// Copies the cells of every box of `boxes` (disjoint) from `src`, a host slice holding the cells of
    /// `src_bounds` row-major, into `dst`, as one operation: one staging buffer holds them all, packed one after
    /// another ([`packed_bytes`]), and one `vkCmdCopyBuffer` copies every contiguous run of
    /// every box (a box of many runs may instead be unpacked by a kernel). Staging memory is thus the bytes moved
    /// rounded up to a size class, whatever the number of boxes; `src` may be reused at once.
    ///
    /// # Errors
    ///
    /// [`GpuError::RegionOutside`] for the first box not inside both `dst`'s box and `src_bounds`,
    /// [`GpuError::HostSliceTooShort`], [`GpuError::AllocationFailed`] for staging memory. After an error the
    /// batch is unchanged, except where recording the kernel that unpacks a box failed (a Vulkan error): the
    /// boxes before it stay recorded.
    ///
    /// [`packed_bytes`]: crate::gpu::packed_bytes
    pub fn upload_boxes(
        &mut self,
        dst: &DeviceAllocation,
        boxes: &[Box3],
        src: &[u8],
        src_bounds: Box3,
    ) -> Result<(), GpuError> {
        let e = dst.elem_size;
        for b in boxes {
            // The error's text only on failure: a custom mapper's region may have many boxes.
            if !dst.bounds.contains(b) {
                check_inside("upload", format!("allocation {}", dst.id), b, &dst.bounds)?;
            }
            if !src_bounds.contains(b) {
                check_inside("upload", "host slice".into(), b, &src_bounds)?;
            }
        }
        check_host_slice("upload", src.len(), &src_bounds, e)?;
        let bytes = packed_len(boxes, e)?;
        if bytes == 0 {
            return Ok(());
        }
        self.materialize()?;
        let staging = self.gpu.staging.acquire(bytes)?;
        let written = staging.write().map(|mut guard| {
            let runs = &mut self.gpu.scratch.runs;
            let mut offset = 0;
            for b in boxes {
                runs.clear();
                copy_runs(&src_bounds, b, b, e, runs);
                for run in runs.iter() {
                    let at = offset + run.dst_offset;
                    guard[at..at + run.len].copy_from_slice(&src[run.src_offset..run.src_offset + run.len]);
                }
                offset += b.volume() * e;
            }
        });
        if let Err(err) = written {
            self.gpu.staging.release(staging);
            return Err(GpuError::Vulkan {
                during: "mapping a staging buffer for an upload".into(),
                message: err.to_string(),
            });
        }
        self.record_upload(dst, staging, boxes, bytes)
    }

    /// Copies the cells of `region` into `dst` from lent staging memory holding them packed row-major (what the
    /// host wrote through [`HostStaging::as_mut_ptr`], e.g. an MPI receive): no host copy. The staging memory goes
    /// back to the pool when the batch completes.
    ///
    /// # Errors
    ///
    /// [`GpuError::RegionOutside`] if `region` is not inside `dst`'s box, [`GpuError::HostSliceTooShort`] if
    /// `src` holds fewer bytes than the region's cells; `src` is given back to the pool then.
    pub fn upload_staged(&mut self, dst: &DeviceAllocation, region: Box3, src: HostStaging) -> Result<(), GpuError> {
        self.upload_staged_boxes(dst, &[region], src)
    }

    /// Copies the cells of every box of `boxes` (disjoint) into `dst` from lent staging memory holding them packed
    /// one after another ([`packed_bytes`](super::super::packed_bytes): what the host wrote through
    /// [`HostStaging::as_mut_ptr`], e.g. MPI receives of each box at its offset), as one operation with one copy
    /// command for every run of every box. The staging memory goes back to the pool when the batch completes.
    ///
    /// # Errors
    ///
    /// As [`upload_staged`](Self::upload_staged), for the first box at fault; `src` is given back to the pool
    /// then. As [`upload_boxes`](Self::upload_boxes) for what an error leaves recorded.
    pub fn upload_staged_boxes(
        &mut self,
        dst: &DeviceAllocation,
        boxes: &[Box3],
        src: HostStaging,
    ) -> Result<(), GpuError> {
        let e = dst.elem_size;
        // The error's text only on failure: this runs for every received halo.
        let inside = match boxes.iter().find(|b| !dst.bounds.contains(b)) {
            None => Ok(()),
            Some(b) => check_inside("upload", format!("allocation {}", dst.id), b, &dst.bounds),
        };
        let checked = inside
            .and_then(|()| packed_len(boxes, e))
            .and_then(|bytes| check_staged_len(src.len(), boxes, e, bytes).map(|()| bytes))
            .and_then(|bytes| src.flush_host_writes().map(|()| bytes))
            .and_then(|bytes| self.materialize().map(|()| bytes));
        let bytes = match checked {
            Ok(bytes) => bytes,
            Err(err) => {
                self.gpu.staging.release(src.buffer);
                return Err(err);
            }
        };
        if bytes == 0 {
            self.gpu.staging.release(src.buffer);
            return Ok(());
        }
        self.record_upload(dst, src.buffer, boxes, bytes)
    }

    /// Records the copy of `boxes` into `dst` from `staging`, which holds their `bytes` cells packed one after
    /// another (a kernel unpacks a box that is strided in `dst`); the staging memory goes back to the pool when the
    /// batch completes, or at once on an error before anything was recorded.
    fn record_upload(
        &mut self,
        dst: &DeviceAllocation,
        staging: Subbuffer<[u8]>,
        boxes: &[Box3],
        bytes: usize,
    ) -> Result<(), GpuError> {
        if let Err((err, recorded)) = self.record_boxes(dst, &staging, boxes, true) {
            if recorded {
                // Copies already recorded read it: back to the pool once the batch completed (or was dropped).
                self.record.uploads.push(staging);
                self.record.buffers.push(dst.buffer.clone());
            } else {
                self.gpu.staging.release(staging);
            }
            return Err(err);
        }
        self.record.buffers.push(dst.buffer.clone());
        self.record.uploads.push(staging);
        self.ops += 1;
        self.stamp(OpKind::Upload { bytes });
        Ok(())
    }

    /// Records the copies of `boxes` between the allocation `alloc` and `staging`, which holds (`unpack`: is to
    /// hold) their cells packed one after another ([`packed_bytes`]): every contiguous run of
    /// every box as a region of one `vkCmdCopyBuffer`, except boxes of many runs at offsets a storage binding can
    /// start at, which the `pack.wgsl` kernels gather or scatter. Callers checked that every box lies in `alloc`
    /// and that `staging` holds them all. On an error, also says whether something was already recorded.
    ///
    /// [`packed_bytes`]: crate::gpu::packed_bytes
    fn record_boxes(
        &mut self,
        alloc: &DeviceAllocation,
        staging: &Subbuffer<[u8]>,
        boxes: &[Box3],
        unpack: bool,
    ) -> Result<(), (GpuError, bool)> {
        let e = alloc.elem_size;
        let align = (self.gpu.params_align.max(4)) as usize;
        let mut regions = std::mem::take(&mut self.gpu.scratch.regions);
        regions.clear();
        let (mut offset, mut kernels) = (0usize, 0usize);
        for b in boxes {
            let bytes = b.volume() * e;
            if bytes == 0 {
                continue;
            }
            let packed = if offset.is_multiple_of(align) {
                // The whole buffer for a lone box (the descriptor a single transfer always bound), else its bytes.
                let slice = if offset == 0 && boxes.len() == 1 {
                    staging.clone()
                } else {
                    staging.clone().slice(offset as u64..(offset + bytes) as u64)
                };
                self.record_packed(alloc, &slice, b, unpack)
            } else {
                Ok(false)
            };
            match packed {
                Ok(true) => kernels += 1,
                Ok(false) => {
                    let runs = &mut self.gpu.scratch.runs;
                    runs.clear();
                    copy_runs(&alloc.bounds, b, b, e, runs);
                    regions.extend(runs.iter().map(|run| {
                        let (at_alloc, at_staging) = (
                            alloc.buffer.offset() + run.src_offset as u64,
                            staging.offset() + (offset + run.dst_offset) as u64,
                        );
                        let (src_offset, dst_offset) =
                            if unpack { (at_staging, at_alloc) } else { (at_alloc, at_staging) };
                        vk::BufferCopy { src_offset, dst_offset, size: run.len as u64 }
                    }));
                }
                Err(err) => {
                    self.gpu.scratch.regions = regions;
                    return Err((err, kernels > 0));
                }
            }
            offset += bytes;
        }
        if !regions.is_empty() {
            self.access(&[(alloc.id, unpack)]);
            let (src, dst) = if unpack { (staging, &alloc.buffer) } else { (&alloc.buffer, staging) };
            let cb = self.command_buffer();
            // SAFETY: `cb` is recording; the allocation and staging buffers were created with TRANSFER_SRC and
            // TRANSFER_DST usage and are different buffers; every region is a run of a box that lies in the
            // allocation (callers checked) at its offset in the allocation's layout, and in the staging buffer
            // at the box's packed offset, below the packed total the staging holds (callers checked), so every
            // region is in bounds; the boxes are disjoint, so no two regions write the same bytes. The caller
            // pushes both buffers into the batch's record, which keeps them alive until completion; the hazard
            // tracker was told of the access just above.
            unsafe {
                (self.gpu.device.fns().v1_0.cmd_copy_buffer)(
                    cb,
                    src.buffer().handle(),
                    dst.buffer().handle(),
                    regions.len() as u32,
                    regions.as_ptr(),
                )
            };
        }
        self.gpu.scratch.regions = regions;
        Ok(())
    }

    /// Copies the cells of `region` from `src` into a staging buffer, packed; once
    /// [`Gpu::poll`] reports this batch complete, [`Gpu::read_download`] copies them out.
    ///
    /// # Errors
    ///
    /// [`GpuError::RegionOutside`] if `region` is not inside `src`'s box,
    /// [`GpuError::AllocationFailed`] for staging memory.
    ///
    /// [`Gpu::poll`]: crate::gpu::Gpu::poll
    /// [`Gpu::read_download`]: crate::gpu::Gpu::read_download
    pub fn download(&mut self, src: &DeviceAllocation, region: Box3) -> Result<DownloadId, GpuError> {
        self.download_boxes(src, &[region])
    }

    /// Copies the cells of every box of `boxes` (disjoint) from `src` into one staging buffer, packed one after
    /// another ([`packed_bytes`]), with one copy command for every run of every box (a box of
    /// many runs may instead be packed by a kernel): one operation, staging memory of the bytes moved rounded up to
    /// a size class. Once [`Gpu::poll`] reports this batch complete, [`Gpu::read_download`] copies each box into a
    /// host layout, and [`Gpu::take_download`] lends the packed bytes.
    ///
    /// # Errors
    ///
    /// [`GpuError::RegionOutside`] for the first box not inside `src`'s box, [`GpuError::AllocationFailed`] for
    /// staging memory. As [`upload_boxes`](Self::upload_boxes) for what an error leaves recorded.
    ///
    /// [`packed_bytes`]: crate::gpu::packed_bytes
    /// [`Gpu::poll`]: crate::gpu::Gpu::poll
    /// [`Gpu::read_download`]: crate::gpu::Gpu::read_download
    /// [`Gpu::take_download`]: crate::gpu::Gpu::take_download
    pub fn download_boxes(&mut self, src: &DeviceAllocation, boxes: &[Box3]) -> Result<DownloadId, GpuError> {
        let e = src.elem_size;
        // The error's text only on failure: this runs for every pushed halo.
        if let Some(b) = boxes.iter().find(|b| !src.bounds.contains(b)) {
            check_inside("download", format!("allocation {}", src.id), b, &src.bounds)?;
        }
        let bytes = packed_len(boxes, e)?;
        self.materialize()?;
        let staging = self.gpu.staging.acquire(bytes)?;
        if bytes > 0 {
            if let Err((err, recorded)) = self.record_boxes(src, &staging, boxes, false) {
                if recorded {
                    self.record.uploads.push(staging);
                    self.record.buffers.push(src.buffer.clone());
                } else {
                    self.gpu.staging.release(staging);
                }
                return Err(err);
            }
            self.record.buffers.push(src.buffer.clone());
            self.downloads = true;
            self.ops += 1;
            self.stamp(OpKind::Download { bytes });
        }
        let id = DownloadId(self.gpu.next_download);
        self.gpu.next_download += 1;
        self.record.downloads.push((id, staging, super::super::Packed { boxes: boxes.into(), elem_size: e }));
        Ok(id)
    }

    /// Records the copy of `region` from the allocation `src` (its buffer and box) into `dst`, both checked by the
    /// caller (same cell size, `region` inside both and not empty): the barrier tracking, the command, the buffers
    /// kept alive until the batch completes, and the operation's statistics.
    fn push_copy(
        &mut self,
        src: AllocationId,
        src_buffer: &Subbuffer<[u8]>,
        src_bounds: &Box3,
        dst: &DeviceAllocation,
        region: &Box3,
    ) {
        self.access(&[(src, false), (dst.id, true)]);
        self.record_copy(src_buffer, src_bounds, &dst.buffer, &dst.bounds, region, dst.elem_size);
        self.record.buffers.push(src_buffer.clone());
        self.record.buffers.push(dst.buffer.clone());
        self.ops += 1;
        self.stamp(OpKind::Copy { bytes: region.volume() * dst.elem_size });
    }

    /// Copies the cells of `region` from `src` to `dst` on the device; the two allocations may
    /// hold different boxes (as when an allocation is resized), and `region` must lie in both.
    ///
    /// # Errors
    ///
    /// [`GpuError::RegionOutside`], or [`GpuError::BadDeviceCopy`] if `src` and `dst` are the
    /// same allocation or have different cell sizes.
    pub fn copy(&mut self, src: &DeviceAllocation, dst: &DeviceAllocation, region: Box3) -> Result<(), GpuError> {
        let bad = |reason| GpuError::BadDeviceCopy {
            src: src.id,
            src_elem: src.elem_size,
            dst: dst.id,
            dst_elem: dst.elem_size,
            reason,
        };
        if src.id == dst.id {
            return Err(bad("an allocation cannot be copied onto itself"));
        }
        if src.elem_size != dst.elem_size {
            return Err(bad("the cell sizes differ"));
        }
        check_inside("device copy", format!("source allocation {}", src.id), &region, &src.bounds)?;
        check_inside("device copy", format!("destination allocation {}", dst.id), &region, &dst.bounds)?;
        if region.is_empty() {
            return Ok(());
        }
        self.materialize()?;
        self.push_copy(src.id, &src.buffer, &src.bounds, dst, &region);
        Ok(())
    }

    /// Copies the cells of `region` on the device from `src`, an allocation of another [`Gpu`] on the same Vulkan
    /// device ([`Gpu::shares_device`]), into `dst`, once `after` (that `Gpu`'s batch holding the last write of
    /// them) has completed: the submission waits for it on the GPU (a timeline-semaphore wait, which with the
    /// barrier every batch starts with makes the other queue's writes visible here), not on the host. The other
    /// `Gpu` must not write those cells until this batch completed; `src`'s memory stays alive meanwhile.
    ///
    /// # Errors
    ///
    /// [`GpuError::RegionOutside`]; [`GpuError::BadDeviceCopy`] if the cell sizes differ, or `src` or `after`
    /// belong to another Vulkan device.
    ///
    /// [`Gpu`]: crate::gpu::Gpu
    /// [`Gpu::shares_device`]: crate::gpu::Gpu::shares_device
    pub fn copy_from_shared(
        &mut self,
        src: &super::super::SharedAllocation,
        after: &super::super::SignalPoint,
        dst: &DeviceAllocation,
        region: Box3,
    ) -> Result<(), GpuError> {
        let bad = |reason| GpuError::BadDeviceCopy {
            src: src.id,
            src_elem: src.elem_size,
            dst: dst.id,
            dst_elem: dst.elem_size,
            reason,
        };
        if src.elem_size != dst.elem_size {
            return Err(bad("the cell sizes differ"));
        }
        if vulkano::device::DeviceOwned::device(src.buffer.buffer()).handle() != self.gpu.device.handle() {
            return Err(bad("the source belongs to another Vulkan device"));
        }
        if !Arc::ptr_eq(&after.device, &self.gpu.device) {
            return Err(bad("the source's completion is on another Vulkan device's timeline"));
        }
        check_inside("device copy", format!("source allocation {}", src.id), &region, &src.bounds)?;
        check_inside("device copy", format!("destination allocation {}", dst.id), &region, &dst.bounds)?;
        if region.is_empty() {
            return Ok(());
        }
        self.materialize()?;
        self.add_wait(after);
        self.push_copy(src.id, &src.buffer, &src.bounds, dst, &region);
        Ok(())
    }
}

/// The bytes of `boxes` packed one after another, `elem_size` bytes per cell; an error where that overflows.
fn packed_len(boxes: &[Box3], elem_size: usize) -> Result<usize, GpuError> {
    boxes.iter().try_fold(0usize, |sum, b| b.checked_volume()?.checked_mul(elem_size)?.checked_add(sum)).ok_or_else(
        || GpuError::AllocationFailed {
            what: "staging buffer",
            bytes: usize::MAX,
            message: format!("the cells of {} boxes overflow the address space", boxes.len()),
        },
    )
}

/// Checks that lent staging memory of `len` bytes holds the `bytes` cells of `boxes` packed.
fn check_staged_len(len: usize, boxes: &[Box3], elem_size: usize, bytes: usize) -> Result<(), GpuError> {
    match boxes {
        [b] => check_host_slice("upload", len, b, elem_size),
        _ if len < bytes => Err(GpuError::StagingTooShort { len, boxes: boxes.len(), elem_size, needed: bytes }),
        _ => Ok(()),
    }
}

/// Checks that a copy's `region` lies inside one side's `bounds`.
fn check_inside(op: &'static str, side: String, region: &Box3, bounds: &Box3) -> Result<(), GpuError> {
    if bounds.contains(region) {
        Ok(())
    } else {
        Err(GpuError::RegionOutside(Box::new(RegionOutside { op, side, region: *region, bounds: *bounds })))
    }
}
