//! The command buffers batches record into: one Vulkan command pool of the `Gpu`, whose buffers are reused once
//! their batch completed. Raw calls, like the recording itself: vulkano's command-buffer allocator and its
//! `RecordingCommandBuffer` cost more per batch (about 2 700 instructions on lavapipe, before the driver's own work)
//! than recording a batch of one kernel, and the runtime submits one batch per loop step that started work.

use std::sync::Arc;

use ash::vk;
use vulkano::device::Device;
use vulkano::{VulkanError, VulkanObject};

use super::{during, GpuError};

/// A command pool of the queue family the `Gpu` submits to, and its buffers free for a new batch. Only the `Gpu`'s
/// owner uses it (`&mut self`), which is the external synchronisation Vulkan asks of a pool and its buffers.
pub(super) struct CommandPool {
    device: Arc<Device>,
    pool: vk::CommandPool,
    /// Primary buffers of the pool that are neither recording nor pending (initial, executable or invalid), which
    /// `vkBeginCommandBuffer` resets (the pool is created with `RESET_COMMAND_BUFFER`).
    free: Vec<vk::CommandBuffer>,
    /// Buffers allocated so far.
    allocated: u64,
}

impl CommandPool {
    /// A pool for queue family `queue_family_index` of `device`.
    pub(super) fn new(device: Arc<Device>, queue_family_index: u32) -> Result<Self, GpuError> {
        let info = vk::CommandPoolCreateInfo::default()
            .flags(vk::CommandPoolCreateFlags::RESET_COMMAND_BUFFER)
            .queue_family_index(queue_family_index);
        let mut pool = vk::CommandPool::null();
        // SAFETY: `info` is a valid create info naming a queue family of `device` (the Gpu's queue's); no
        // allocation callbacks; `pool` is a valid place for the handle.
        unsafe { (device.fns().v1_0.create_command_pool)(device.handle(), &info, std::ptr::null(), &mut pool) }
            .result()
            .map_err(|e| during("creating the command pool for batches")(VulkanError::from(e)))?;
        Ok(Self { device, pool, free: Vec::new(), allocated: 0 })
    }

    /// A primary command buffer of the pool in the recording state, begun for one submission.
    pub(super) fn begin(&mut self) -> Result<vk::CommandBuffer, GpuError> {
        self.begin_with(vk::CommandBufferUsageFlags::ONE_TIME_SUBMIT)
    }

    /// A primary command buffer of the pool in the recording state, begun for any number of submissions, which may
    /// be pending at once (the replay cache's pieces).
    pub(super) fn begin_reusable(&mut self) -> Result<vk::CommandBuffer, GpuError> {
        self.begin_with(vk::CommandBufferUsageFlags::SIMULTANEOUS_USE)
    }

    fn begin_with(&mut self, usage: vk::CommandBufferUsageFlags) -> Result<vk::CommandBuffer, GpuError> {
        let fns = self.device.fns();
        let cb = match self.free.pop() {
            Some(cb) => cb,
            None => {
                let info = vk::CommandBufferAllocateInfo::default()
                    .command_pool(self.pool)
                    .level(vk::CommandBufferLevel::PRIMARY)
                    .command_buffer_count(1);
                let mut cb = vk::CommandBuffer::null();
                // SAFETY: the pool belongs to this device and is used only through `&mut self`; `info` asks for one
                // buffer, which is written to `cb`.
                unsafe { (fns.v1_0.allocate_command_buffers)(self.device.handle(), &info, &mut cb) }
                    .result()
                    .map_err(|e| during("allocating a command buffer for a batch")(VulkanError::from(e)))?;
                self.allocated += 1;
                cb
            }
        };
        let begin = vk::CommandBufferBeginInfo::default().flags(usage);
        // SAFETY: `cb` is a primary buffer of this pool that is neither recording nor pending (a new one, or one from
        // `free`), so beginning it (an implicit reset, which the pool's flag allows) is valid; no inheritance info
        // is needed for a primary buffer.
        if let Err(e) = unsafe { (fns.v1_0.begin_command_buffer)(cb, &begin) }.result() {
            // SAFETY: `cb` is this pool's and not pending; freed, it is never used again.
            unsafe { (fns.v1_0.free_command_buffers)(self.device.handle(), self.pool, 1, &cb) };
            return Err(during("beginning a batch's command buffer")(VulkanError::from(e)));
        }
        Ok(cb)
    }

    /// Ends the recording of `cb`, a buffer [`begin`](Self::begin) returned. Afterwards, submitted or not, it goes
    /// back with [`recycle`](Self::recycle).
    pub(super) fn end(&self, cb: vk::CommandBuffer) -> Result<(), GpuError> {
        // SAFETY: `cb` is recording (begun by `begin`, ended once: `Batch::submit` takes it), with no render pass,
        // query or debug label open (the batch records none).
        unsafe { (self.device.fns().v1_0.end_command_buffer)(cb) }
            .result()
            .map_err(|e| during("ending a batch's command buffer")(VulkanError::from(e)))
    }

    /// Buffers allocated so far (each is reused once its batch completed).
    pub(super) fn allocated(&self) -> u64 {
        self.allocated
    }

    /// Takes back `cb`, a buffer of this pool that is not pending: its batch (every batch that submitted it)
    /// completed, or it was never submitted.
    /// `recording`: it is still recording (a batch discarded before submission), and is reset first.
    pub(super) fn recycle(&mut self, cb: vk::CommandBuffer, recording: bool) {
        if recording {
            // SAFETY: `cb` is this pool's, recording and not pending; the pool allows resetting one buffer. A failed
            // reset leaves it unusable: it stays out of `free` (the pool frees it when destroyed).
            let reset =
                unsafe { (self.device.fns().v1_0.reset_command_buffer)(cb, vk::CommandBufferResetFlags::empty()) };
            if reset.result().is_err() {
                return;
            }
        }
        self.free.push(cb);
    }
}

impl Drop for CommandPool {
    /// Destroys the pool with its buffers. The `Gpu` drops it after waiting for its queue (its `Drop`), so none of
    /// them is pending.
    fn drop(&mut self) {
        // SAFETY: the pool is this device's, no buffer of it is pending (see above) and none is used afterwards.
        unsafe { (self.device.fns().v1_0.destroy_command_pool)(self.device.handle(), self.pool, std::ptr::null()) };
    }
}
