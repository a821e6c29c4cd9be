//! Completion: polling which batches finished, retiring them, device loss, and GPU timestamps.

use std::time::{Duration, Instant};

use vulkano::device::Device;
use vulkano::sync::semaphore::Semaphore;
use vulkano::{Version, VulkanObject};

use super::{during, BatchId, Gpu, GpuError, InFlight, OpTime, ReadyDownload};

/// The counter of timeline semaphore `timeline` of `device`: `vkGetSemaphoreCounterValue` called directly. The
/// runtime loop polls it on every iteration, and vulkano's `Semaphore::counter_value` adds validation and a
/// wrapper around the same call that cost more than a fast driver's read of the counter.
fn counter_value(device: &Device, timeline: &Semaphore) -> Result<u64, vulkano::VulkanError> {
    let fns = device.fns();
    let mut value = 0u64;
    // SAFETY: `timeline` is a timeline semaphore created on `device` (`Gpu::with_options`) and alive (the Gpu holds
    // it); `value` is a valid place for the counter. The entry point is the one the device's API version or its
    // enabled `VK_KHR_timeline_semaphore` provides, as vulkano chooses it.
    let result = unsafe {
        if device.api_version() >= Version::V1_2 {
            (fns.v1_2.get_semaphore_counter_value)(device.handle(), timeline.handle(), &mut value)
        } else {
            (fns.khr_timeline_semaphore.get_semaphore_counter_value_khr)(device.handle(), timeline.handle(), &mut value)
        }
    };
    result.result().map_err(vulkano::VulkanError::from)?;
    Ok(value)
}

impl Gpu {
    /// Reads which batches completed since the last poll and appends their ids to `completed`
    /// in submission order; returns how many. Never blocks: one `vkGetSemaphoreCounterValue`
    /// (or one `vkGetFenceStatus` per newly completed batch, plus one) per call, and nothing at
    /// all with no batch in flight.
    ///
    /// A completed batch's upload staging returns to the pool and its downloads become readable
    /// with [`read_download`](Self::read_download).
    ///
    /// # Errors
    ///
    /// [`GpuError::DeviceLost`] if the device was lost (naming it and the batches in flight),
    /// [`GpuError::Vulkan`] for other failures.
    pub fn poll(&mut self, completed: &mut Vec<BatchId>) -> Result<usize, GpuError> {
        if self.in_flight.is_empty() {
            return Ok(0);
        }
        self.polls += 1;
        if self.lose_device_at_poll.is_some_and(|n| self.polls >= n) {
            return Err(self.device_lost(true));
        }
        let before = completed.len();
        if let Some(timeline) = &self.timeline {
            let value = match counter_value(&self.device, timeline) {
                Ok(v) => v,
                Err(vulkano::VulkanError::DeviceLost) => return Err(self.device_lost(false)),
                Err(e) => return Err(during("reading the timeline semaphore")(e)),
            };
            while self.in_flight.front().is_some_and(|b| b.id <= value) {
                let record = self.in_flight.pop_front().expect("front exists");
                completed.push(self.retire(record));
            }
        } else {
            while let Some(front) = self.in_flight.front() {
                let fence = front.fence.as_ref().expect("fence mode records a fence per batch");
                match fence.is_signaled() {
                    Ok(true) => {}
                    Ok(false) => break,
                    Err(vulkano::VulkanError::DeviceLost) => return Err(self.device_lost(false)),
                    Err(e) => return Err(during("polling a batch's fence")(e)),
                }
                let record = self.in_flight.pop_front().expect("front exists");
                completed.push(self.retire(record));
            }
        }
        Ok(completed.len() - before)
    }

    /// The error for a lost device, naming it and the batches in flight.
    pub(super) fn device_lost(&self, injected: bool) -> GpuError {
        GpuError::DeviceLost {
            device: self.info.to_string(),
            batches: self.in_flight.iter().map(|b| BatchId(b.id)).collect(),
            injected,
        }
    }

    /// Releases what a completed batch held and returns its id.
    pub(super) fn retire(&mut self, mut record: InFlight) -> BatchId {
        let id = BatchId(record.id);
        self.completed_upto = record.id;
        self.read_stamps(&mut record);
        for staging in record.uploads.drain(..) {
            self.staging.release(staging);
        }
        for (download, staging, packed) in record.downloads.drain(..) {
            self.ready_downloads.insert(download, ReadyDownload { staging, packed });
        }
        if let Some(command_buffer) = record.command_buffer.take() {
            // Complete, so no longer pending.
            self.commands.recycle(command_buffer, false);
        }
        self.replay.recycle(record.id, &mut self.commands);
        if let Some(mark) = record.params_mark {
            self.params.release(mark);
        }
        record.clear();
        self.spare.push(record);
        id
    }

    /// Turns on device timestamps: every later batch records when each of its operations finished on the device,
    /// which [`take_timings`](Self::take_timings) hands out once the batch completed (for timelines; it costs a
    /// timestamp write per operation). Returns `false`, changing nothing, where the queue cannot write timestamps.
    ///
    /// # Errors
    ///
    /// [`GpuError::Vulkan`] if the query pool cannot be created.
    pub fn enable_timestamps(&mut self) -> Result<bool, GpuError> {
        if self.timestamps.is_some() {
            return Ok(true);
        }
        let physical = self.device.physical_device();
        let family = &physical.queue_family_properties()[self.queue.queue_family_index() as usize];
        let Some(bits) = family.timestamp_valid_bits.filter(|&b| b > 0) else {
            return Ok(false);
        };
        let pool = vulkano::query::QueryPool::new(
            self.device.clone(),
            vulkano::query::QueryPoolCreateInfo {
                query_count: super::batch::STAMP_SLOTS * super::batch::STAMPS_PER_BATCH,
                ..vulkano::query::QueryPoolCreateInfo::query_type(vulkano::query::QueryType::Timestamp)
            },
        )
        .map_err(during("creating the timestamp query pool"))?;
        self.tick_ns = f64::from(physical.properties().timestamp_period);
        self.tick_mask = if bits >= 64 { u64::MAX } else { (1u64 << bits) - 1 };
        self.timestamps = Some(pool);
        Ok(true)
    }

    /// Moves the operation times of the batches completed since the last call into `out` (nothing unless
    /// [`enable_timestamps`](Self::enable_timestamps) is on).
    pub fn take_timings(&mut self, out: &mut Vec<(BatchId, Vec<OpTime>)>) {
        out.append(&mut self.timings);
    }

    /// Reads a completed batch's timestamps into `timings`.
    pub(super) fn read_stamps(&mut self, record: &mut InFlight) {
        let (Some(base), Some(pool)) = (record.stamps, &self.timestamps) else { return };
        let n = record.stamped.len() as u32 + 1;
        self.stamp_values.clear();
        self.stamp_values.resize(n as usize, 0);
        // Without WAIT: the batch completed, so its queries are available; if not, the batch goes untimed.
        match pool.get_results(base..base + n, &mut self.stamp_values, vulkano::query::QueryResultFlags::empty()) {
            Ok(true) => {}
            _ => return,
        }
        let (mask, tick) = (self.tick_mask, self.tick_ns);
        let start = self.stamp_values[0] & mask;
        let at = |v: u64| ((v & mask).wrapping_sub(start) & mask) as f64 * tick;
        let ops = record
            .stamped
            .iter()
            .enumerate()
            .map(|(i, &kind)| OpTime {
                kind,
                start_ns: at(self.stamp_values[i]) as u64,
                end_ns: at(self.stamp_values[i + 1]) as u64,
            })
            .collect();
        self.timings.push((BatchId(record.id), ops));
    }

    /// Whether `poll` has seen batch `id` complete.
    pub fn is_complete(&self, id: BatchId) -> bool {
        id.0 <= self.completed_upto
    }

    /// How many submitted batches `poll` has not yet seen complete.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Polls until batch `id` completes, yielding the thread between polls, for at most
    /// `timeout`. For tests and demos; an executor polls from its loop.
    ///
    /// # Errors
    ///
    /// [`GpuError::Timeout`] after `timeout`, or the error of a failed poll.
    pub fn poll_until_complete(&mut self, id: BatchId, timeout: Duration) -> Result<(), GpuError> {
        let start = Instant::now();
        let mut completed = Vec::new();
        while !self.is_complete(id) {
            if start.elapsed() > timeout {
                return Err(GpuError::Timeout { id, timeout });
            }
            completed.clear();
            if self.poll(&mut completed)? == 0 {
                std::thread::yield_now();
            }
        }
        Ok(())
    }
}
