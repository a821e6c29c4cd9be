//! Submitting a recorded batch to the queue, or discarding an unsubmitted one.

use ash::vk;
use vulkano::sync::fence::Fence;
use vulkano::{VulkanError, VulkanObject};

use super::super::{during, BatchId, GpuError};
use super::{Batch, WORK_STAGES, WORK_WRITES};

impl Batch<'_> {
    /// Submits the batch to the queue and returns its id at once; [`Gpu::poll`](super::super::Gpu::poll) reports when it
    /// completes.
    ///
    /// # Errors
    ///
    /// [`GpuError::Vulkan`] if ending the command buffer or the submission fails (device lost,
    /// out of memory); the batch is then discarded.
    pub fn submit(mut self) -> Result<BatchId, GpuError> {
        if let Some(tape) = self.tape.take() {
            if self.gpu.replay.plan(&tape) {
                return self.submit_replay(tape);
            }
            // Not worth replaying (or nothing collected: an empty batch still orders what follows): recorded.
            self.tape = Some(tape);
            self.materialize()?;
        }
        if self.downloads {
            // Makes the downloads' writes (transfers, or the pack kernel's) visible to host reads after completion.
            self.record_barrier(WORK_STAGES, WORK_WRITES, vk::PipelineStageFlags::HOST, vk::AccessFlags::HOST_READ);
        }
        let command_buffer = self.recording.take().expect("a batch is submitted once");
        if let Err(e) = self.gpu.commands.end(command_buffer) {
            self.gpu.commands.recycle(command_buffer, false);
            return Err(e);
        }
        let mut record = std::mem::take(&mut self.record);
        let gpu = &mut *self.gpu;
        let id = gpu.last_submitted + 1;
        if let Err(e) = queue_submit(gpu, &[command_buffer], id, &mut record) {
            // Not submitted, so not pending: the buffer can be reused.
            gpu.commands.recycle(command_buffer, false);
            return Err(e);
        }
        gpu.last_submitted = id;
        record.id = id;
        record.command_buffer = Some(command_buffer);
        gpu.in_flight.push_back(record);
        Ok(BatchId(id))
    }
}

impl Batch<'_> {
    /// Submits a batch of ordinary dispatches as the cached command buffers that replay its tape ([`replay`](super::replay)).
    fn submit_replay(&mut self, mut tape: super::replay::Tape) -> Result<BatchId, GpuError> {
        let mut record = std::mem::take(&mut self.record);
        let gpu = &mut *self.gpu;
        let id = gpu.last_submitted + 1;
        let mut command_buffers = std::mem::take(&mut gpu.scratch.command_buffers);
        command_buffers.clear();
        let pieces = gpu.replay.command_buffers(&tape, id, &gpu.device, &mut gpu.commands, &mut command_buffers);
        tape.units.clear();
        gpu.spare_tape = tape;
        if let Err(e) = pieces {
            gpu.scratch.command_buffers = command_buffers;
            record.clear();
            gpu.spare.push(record);
            return Err(e);
        }
        let submitted = queue_submit(gpu, &command_buffers, id, &mut record);
        gpu.scratch.command_buffers = command_buffers;
        submitted?;
        gpu.last_submitted = id;
        record.id = id;
        gpu.in_flight.push_back(record);
        Ok(BatchId(id))
    }
}

/// Submits `command_buffers` in one `vkQueueSubmit` as batch `id`, signalling the timeline semaphore to `id` (or a
/// fence from the pool, which `record` keeps).
fn queue_submit(
    gpu: &super::super::Gpu,
    command_buffers: &[vk::CommandBuffer],
    id: u64,
    record: &mut super::InFlight,
) -> Result<(), GpuError> {
    let fns = gpu.device.fns();
    let queue = &gpu.queue;
    // Other queues' timelines this batch waits for on the GPU (`Batch::copy_from_shared`).
    let wait_semaphores: smallvec::SmallVec<[vk::Semaphore; 2]> =
        record.waits.iter().map(|(s, _)| s.handle()).collect();
    let wait_values: smallvec::SmallVec<[u64; 2]> = record.waits.iter().map(|(_, v)| *v).collect();
    let wait_stages: smallvec::SmallVec<[vk::PipelineStageFlags; 2]> =
        record.waits.iter().map(|_| super::WORK_STAGES).collect();
    let result = if let Some(timeline) = &gpu.timeline {
        let values = [id];
        let semaphores = [timeline.handle()];
        let mut timeline_info = vk::TimelineSemaphoreSubmitInfo::default()
            .signal_semaphore_values(&values)
            .wait_semaphore_values(&wait_values);
        let submit_info = vk::SubmitInfo::default()
            .command_buffers(command_buffers)
            .wait_semaphores(&wait_semaphores)
            .wait_dst_stage_mask(&wait_stages)
            .signal_semaphores(&semaphores)
            .push_next(&mut timeline_info);
        // SAFETY: the queue is locked by `with` (external synchronisation). Each command buffer is executable:
        // either a batch's own, one-time-submit and never submitted before, or a replayed piece begun for
        // simultaneous use (it may be pending in earlier batches too). Everything they use is kept alive by `record`
        // in `gpu.in_flight` until poll sees the semaphore reach `id` (and, for pieces, by the replay cache, which
        // gives them back to the pool only once the last batch that submitted them completed); the Gpu's Drop waits
        // for the queue before destroying the rest. `id` is greater than every value signalled before (ids increase
        // by one per successful submission), as timeline signals require. The waited semaphores are timeline
        // semaphores of this device (`copy_from_shared` checks), kept alive by `record.waits`, with one value each.
        queue.with(|_guard| unsafe { (fns.v1_0.queue_submit)(queue.handle(), 1, &submit_info, vk::Fence::null()) })
    } else {
        let fence = Fence::from_pool(gpu.device.clone()).map_err(during("taking a fence for a batch"))?;
        let mut timeline_info = vk::TimelineSemaphoreSubmitInfo::default().wait_semaphore_values(&wait_values);
        let mut submit_info = vk::SubmitInfo::default()
            .command_buffers(command_buffers)
            .wait_semaphores(&wait_semaphores)
            .wait_dst_stage_mask(&wait_stages);
        if !wait_values.is_empty() {
            submit_info = submit_info.push_next(&mut timeline_info);
        }
        // SAFETY: as above; the fence comes unsignalled from vulkano's pool (reset on reuse) and `record.fence`
        // keeps it until poll has seen it signalled.
        let result =
            queue.with(|_guard| unsafe { (fns.v1_0.queue_submit)(queue.handle(), 1, &submit_info, fence.handle()) });
        record.fence = Some(fence);
        result
    };
    result.result().map_err(|e| GpuError::Vulkan {
        during: format!("submitting batch G{id}"),
        message: VulkanError::from(e).to_string(),
    })
}

impl Drop for Batch<'_> {
    /// Discards an unsubmitted batch: its staging returns to the pool, its command buffer (reset)
    /// to the Gpu's command pool (never submitted, so the device never saw either).
    fn drop(&mut self) {
        if let Some(command_buffer) = self.recording.take() {
            self.gpu.commands.recycle(command_buffer, true);
            for staging in self.record.uploads.drain(..) {
                self.gpu.staging.release(staging);
            }
            for (_, staging, _) in self.record.downloads.drain(..) {
                self.gpu.staging.release(staging);
            }
            let mut record = std::mem::take(&mut self.record);
            record.clear();
            self.gpu.spare.push(record);
        } else if let Some(mut tape) = self.tape.take() {
            // Collected, never recorded: nothing reached the device.
            tape.units.clear();
            tape.barrier_pending = false;
            self.gpu.spare_tape = tape;
            let mut record = std::mem::take(&mut self.record);
            record.clear();
            self.gpu.spare.push(record);
        }
    }
}
