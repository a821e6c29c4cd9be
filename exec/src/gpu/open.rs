//! Opening devices: [`Gpu::new`], [`Gpu::with_options`] and [`Gpu::open_rank`], which gives the devices of a rank
//! that land on one physical GPU one logical Vulkan device between them (`Opened`: the device, its compute queues
//! and what every `Gpu` on it shares), and the construction of a `Gpu` on one of its queues.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use vulkano::descriptor_set::allocator::StandardDescriptorSetAllocator;
use vulkano::device::physical::PhysicalDevice;
use vulkano::device::QueueCreateInfo;
use vulkano::device::{Device as VkDevice, DeviceCreateInfo, DeviceExtensions, DeviceFeatures, Queue};
use vulkano::memory::allocator::StandardMemoryAllocator;
use vulkano::sync::semaphore::{Semaphore, SemaphoreCreateInfo, SemaphoreType};
use vulkano::Version;

use super::error::during;
use super::memory::StagingPool;
use super::{batch, command_pool, params, Gpu, GpuError, GpuLimits, GpuOptions, NEXT_GPU, RECENT_SETS};
use crate::vulkan::DeviceInfo;

/// A logical Vulkan device opened for one or more [`Gpu`]s, its compute queues, and what every `Gpu` on it shares.
struct Opened {
    device: Arc<VkDevice>,
    queues: Vec<Arc<Queue>>,
    timeline: bool,
    limits: GpuLimits,
    /// How many `Gpu`s took a queue so far.
    handed_out: usize,
}

impl Opened {
    /// Opens `physical` with up to `queues` queues of compute family `family` (as many as the family has, at least
    /// one), and timeline semaphores where available unless `force_fences`.
    fn new(
        physical: Arc<PhysicalDevice>,
        family: u32,
        queues: usize,
        info: &DeviceInfo,
        force_fences: bool,
    ) -> Result<Self, GpuError> {
        let supported = physical.supported_features();
        let core_1_2 = physical.api_version() >= Version::V1_2;
        let timeline = !force_fences
            && supported.timeline_semaphore
            && (core_1_2 || physical.supported_extensions().khr_timeline_semaphore);
        let enabled_features = DeviceFeatures {
            timeline_semaphore: timeline,
            // Accesses outside a bound buffer read zeros or go nowhere, instead of touching another allocation:
            // kernels already clamp their indices (`Restrict`), this also covers what the clamping cannot (a
            // faulty driver, hand-written SPIR-V). Free on most devices.
            robust_buffer_access: supported.robust_buffer_access,
            // Free to enable where supported, and kernels in f64 / i64 need them.
            shader_float64: supported.shader_float64,
            shader_int64: supported.shader_int64,
            ..DeviceFeatures::empty()
        };
        let enabled_extensions =
            DeviceExtensions { khr_timeline_semaphore: timeline && !core_1_2, ..DeviceExtensions::empty() };
        let props = physical.properties();
        let limits = GpuLimits {
            max_push_constant_bytes: props.max_push_constants_size,
            max_workgroup_count: props.max_compute_work_group_count,
            max_storage_buffer_range: props.max_storage_buffer_range,
            max_workgroup_size: props.max_compute_work_group_size,
            max_workgroup_invocations: props.max_compute_work_group_invocations,
            max_workgroup_memory_bytes: props.max_compute_shared_memory_size,
            max_storage_buffers: props
                .max_per_stage_descriptor_storage_buffers
                .min(props.max_descriptor_set_storage_buffers),
        };
        let available = physical.queue_family_properties()[family as usize].queue_count.max(1) as usize;
        let count = queues.clamp(1, available);
        let (device, queues) = VkDevice::new(
            physical,
            DeviceCreateInfo {
                queue_create_infos: vec![QueueCreateInfo {
                    queue_family_index: family,
                    queues: vec![0.5; count],
                    ..Default::default()
                }],
                enabled_features,
                enabled_extensions,
                ..Default::default()
            },
        )
        .map_err(during(format!("creating the logical device for {info}")))?;
        Ok(Opened { device, queues: queues.collect(), timeline, limits, handed_out: 0 })
    }
}

impl Gpu {
    /// Opens the preferred device (the choice of [`vulkan::Device::new`]: `CELER_DEVICE`, else
    /// discrete, integrated, virtual GPU, then CPU) with timeline semaphores where available.
    ///
    /// # Errors
    ///
    /// [`GpuError::Device`] without a loader or a device that can compute, or for a bad
    /// `CELER_DEVICE`; [`GpuError::Vulkan`] if creating the instance, device or semaphore fails.
    ///
    /// [`vulkan::Device::new`]: crate::vulkan::Device::new
    pub fn new() -> Result<Self, GpuError> {
        Self::with_options(GpuOptions::default())
    }

    /// [`new`](Self::new) with options.
    ///
    /// # Errors
    ///
    /// As [`new`](Self::new).
    pub fn with_options(options: GpuOptions) -> Result<Self, GpuError> {
        let (k, n) = options.device_of_rank;
        let (physical, info, family) = crate::vulkan::pick_device_of(k, n.max(1))?;
        let opened = Opened::new(physical, family, 1, &info, options.force_fences)?;
        Self::on(&opened, 0, info, &options)
    }

    /// Opens the `n` devices a rank drives (as [`with_options`](Self::with_options) with `device_of_rank` `(k, n)`
    /// for each `k`), giving those that land on the same physical device one Vulkan device between them, each with
    /// a queue of its own where the device's compute family has enough (else they take its queues in turn): two
    /// Vulkan devices on one GPU are two contexts, between which the GPU switches, while queues of one device run
    /// side by side.
    ///
    /// # Errors
    ///
    /// As [`new`](Self::new), with the index `k` of the device that failed.
    pub fn open_rank(n: usize, options: &GpuOptions) -> Result<Vec<Self>, (usize, GpuError)> {
        let n = n.max(1);
        let instance = crate::vulkan::open_instance().map_err(|e| (0, GpuError::from(e)))?;
        let picked = (0..n)
            .map(|k| crate::vulkan::pick_on(&instance, k, n).map_err(|e| (k, GpuError::from(e))))
            .collect::<Result<Vec<_>, _>>()?;
        let mut opened: Vec<(usize, Opened)> = Vec::new();
        let mut gpus = Vec::with_capacity(n);
        for (k, (physical, info, family)) in picked.iter().enumerate() {
            let shared = opened.iter().position(|(index, _)| *index == info.index);
            let slot = match shared {
                Some(slot) => slot,
                None => {
                    let sharing = picked.iter().filter(|(_, other, _)| other.index == info.index).count();
                    let device = Opened::new(physical.clone(), *family, sharing, info, options.force_fences)
                        .map_err(|e| (k, e))?;
                    opened.push((info.index, device));
                    opened.len() - 1
                }
            };
            let (_, device) = &mut opened[slot];
            let queue = device.handed_out;
            device.handed_out += 1;
            gpus.push(
                Self::on(device, queue, info.clone(), &GpuOptions { device_of_rank: (k, n), ..*options })
                    .map_err(|e| (k, e))?,
            );
        }
        Ok(gpus)
    }

    /// A `Gpu` on queue `queue` (modulo their number) of an opened logical device.
    fn on(opened: &Opened, queue: usize, info: DeviceInfo, options: &GpuOptions) -> Result<Self, GpuError> {
        let device = opened.device.clone();
        let queue = opened.queues[queue % opened.queues.len()].clone();
        let limits = opened.limits;
        let timeline = if opened.timeline {
            let semaphore = Semaphore::new(
                device.clone(),
                SemaphoreCreateInfo { semaphore_type: SemaphoreType::Timeline, initial_value: 0, ..Default::default() },
            )
            .map_err(during("creating the timeline semaphore"))?;
            Some(Arc::new(semaphore))
        } else {
            None
        };
        let memory = Arc::new(StandardMemoryAllocator::new_default(device.clone()));
        let params_align = device.physical_device().properties().min_storage_buffer_offset_alignment.as_devicesize();
        Ok(Gpu {
            info,
            serial: NEXT_GPU.fetch_add(1, Ordering::Relaxed),
            commands: command_pool::CommandPool::new(device.clone(), queue.queue_family_index())?,
            descriptor_sets: Arc::new(StandardDescriptorSetAllocator::new(device.clone(), Default::default())),
            staging: StagingPool::new(memory.clone()),
            memory,
            device,
            queue,
            limits,
            timeline,
            kernels: Vec::new(),
            layouts: Vec::new(),
            param_layouts: HashMap::new(),
            params: params::ParamRing::new(),
            params_align,
            sets: HashMap::new(),
            recent_sets: VecDeque::with_capacity(RECENT_SETS),
            last_submitted: 0,
            completed_upto: 0,
            in_flight: VecDeque::new(),
            spare: Vec::new(),
            ready_downloads: HashMap::new(),
            next_download: 0,
            scratch: batch::Scratch::default(),
            timestamps: None,
            tick_ns: 1.0,
            tick_mask: u64::MAX,
            timings: Vec::new(),
            stamp_values: Vec::new(),
            lose_device_at_poll: options.lose_device_at_poll,
            polls: 0,
            replay_batches: !options.record_every_batch,
            replay: Default::default(),
            spare_tape: Default::default(),
        })
    }
}
