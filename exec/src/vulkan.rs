//! A Vulkan compute device over vulkano 0.35: device choice, SPIR-V kernels, storage buffers,
//! and dispatches whose completion is found by polling a fence.
//!
//! - **Deterministic device choice.** [`Device::new`] takes the first discrete GPU, else the first
//!   integrated GPU, else a virtual GPU, else a CPU implementation (lavapipe), in the order the
//!   Vulkan loader lists them; `CELER_DEVICE=<index>` overrides (see [`DEVICE_ENV`]).
//! - **One compute queue.** A dedicated compute family (compute without graphics) is preferred,
//!   as on NVIDIA GPUs, else the first family that can compute.
//! - **Polling, never blocking.** [`Device::dispatch`] returns a [`Submission`] whose
//!   [`Submission::is_complete`] reads the fence status (`vkGetFenceStatus`) and returns at once.
//! - **Kernels come from `build.rs`.** WGSL files in `exec/shaders/` are compiled by naga at build
//!   time into [`KernelSource`] constants.
//!
//! # Implementation notes
//!
//! | celer | vulkano / Vulkan |
//! |---|---|
//! | [`Device`] | `Instance` + `PhysicalDevice` + `Device` + one compute `Queue` + standard allocators |
//! | [`Kernel`] | `ShaderModule` → `ComputePipeline` with the layout reflected from the SPIR-V |
//! | [`Device::dispatch`] | one primary command buffer: bind, push constants, `vkCmdDispatch`; submitted with a fence |
//! | [`Submission::is_complete`] | `FenceSignalFuture::is_signaled` (`vkGetFenceStatus`) |
//!
//! # Examples
//!
//! ```no_run
//! use celer_exec::{shaders, vulkan::Device};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let device = Device::new()?;
//! let saxpy = device.load_kernel(&shaders::SAXPY, "main")?;
//! let x = device.buffer_from_slice(&[1.0f32, 2.0, 3.0])?;
//! let y = device.buffer_from_slice(&[10.0f32, 20.0, 30.0])?;
//! let mut done = device.dispatch(&saxpy, &[x.as_bytes(), y.as_bytes()], &[2.0f32.to_bits(), 3], saxpy.groups_for(3))?;
//! done.poll_until_complete(std::time::Duration::from_secs(10))?;
//! assert_eq!(device.read_buffer(&y)?, [12.0, 24.0, 36.0]);
//! # Ok(())
//! # }
//! ```

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use vulkano::buffer::{Buffer, BufferContents, BufferCreateInfo, BufferUsage, Subbuffer};
use vulkano::command_buffer::allocator::StandardCommandBufferAllocator;
use vulkano::command_buffer::{AutoCommandBufferBuilder, CommandBufferExecFuture, CommandBufferUsage};
use vulkano::descriptor_set::allocator::StandardDescriptorSetAllocator;
use vulkano::descriptor_set::{DescriptorSet, WriteDescriptorSet};
use vulkano::device::physical::{PhysicalDevice, PhysicalDeviceType};
use vulkano::device::{Device as VkDevice, DeviceCreateInfo, Queue, QueueCreateInfo, QueueFlags};
use vulkano::instance::{Instance, InstanceCreateInfo};
use vulkano::memory::allocator::{AllocationCreateInfo, MemoryTypeFilter, StandardMemoryAllocator};
use vulkano::pipeline::compute::ComputePipelineCreateInfo;
use vulkano::pipeline::layout::PipelineDescriptorSetLayoutCreateInfo;
use vulkano::pipeline::{ComputePipeline, Pipeline, PipelineBindPoint, PipelineLayout, PipelineShaderStageCreateInfo};
use vulkano::shader::{ShaderModule, ShaderModuleCreateInfo};
use vulkano::sync::future::{FenceSignalFuture, NowFuture};
use vulkano::sync::GpuFuture;
use vulkano::{Validated, ValidationError, VulkanLibrary};

use crate::shaders::KernelSource;

/// The environment variable that picks a Vulkan device by its index in the loader's list
/// (`CELER_DEVICE=0`); without it, [`Device::new`] prefers a discrete GPU.
pub const DEVICE_ENV: &str = "CELER_DEVICE";

/// An error from Vulkan or from the way this module was used.
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum DeviceError {
    /// `libvulkan.so.1` could not be loaded.
    #[error(
        "cannot load the Vulkan loader (libvulkan.so.1): {0}; on Debian install libvulkan1 and a \
         driver (mesa-vulkan-drivers gives the lavapipe CPU device)"
    )]
    Loading(vulkano::LoadingError),
    /// No physical device offers a compute queue.
    #[error(
        "no Vulkan device with a compute queue was found (VK_DRIVER_FILES={}); \
         install a driver, e.g. Debian's mesa-vulkan-drivers for lavapipe",
        driver_files.as_deref().map_or("unset".to_string(), |f| format!("{f:?}"))
    )]
    NoDevice {
        /// The value of `VK_DRIVER_FILES`, which restricts the drivers the loader tries.
        driver_files: Option<String>,
    },
    /// `CELER_DEVICE` does not name a usable device.
    #[error("{DEVICE_ENV}={value:?} {problem}; the devices are: {devices}")]
    BadDeviceChoice {
        /// The variable's value.
        value: String,
        /// What is wrong with it.
        problem: &'static str,
        /// The devices that were found, as `index: name (type)`.
        devices: String,
    },
    /// A Vulkan or vulkano call failed.
    #[error("Vulkan failed while {during}: {message}")]
    Vulkan {
        /// What was being done, e.g. `"creating the compute pipeline for kernel saxpy"`.
        during: String,
        /// Vulkan's or vulkano's description of the failure.
        message: String,
    },
    /// The kernel has no entry point of that name.
    #[error("kernel {kernel} has no compute entry point {entry_point:?} (it has: {available})")]
    NoEntryPoint {
        /// The kernel's name.
        kernel: &'static str,
        /// The name that was asked for.
        entry_point: String,
        /// The entry points it does have.
        available: String,
    },
    /// A buffer of zero elements was requested; Vulkan has no empty buffers.
    #[error("cannot create an empty buffer; Vulkan buffers hold at least one byte")]
    EmptyBuffer,
    /// [`Submission::poll_until_complete`] gave up.
    #[error("the submission did not complete within {0:?}")]
    Timeout(Duration),
}

impl From<vulkano::LoadingError> for DeviceError {
    fn from(e: vulkano::LoadingError) -> Self {
        DeviceError::Loading(e)
    }
}

/// The same sentence as `Display`, so that `fn main() -> Result<(), Box<dyn Error>>` prints a readable message.
impl std::fmt::Debug for DeviceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

/// Describes vulkano's error types; `Validated`'s own `Display` hides the cause.
pub(crate) trait Describe {
    fn describe(&self) -> String;
}

impl<E: fmt::Display> Describe for Validated<E> {
    fn describe(&self) -> String {
        match self {
            Validated::Error(e) => e.to_string(),
            Validated::ValidationError(e) => e.to_string(),
        }
    }
}

impl Describe for Box<ValidationError> {
    fn describe(&self) -> String {
        self.to_string()
    }
}

impl Describe for vulkano::VulkanError {
    fn describe(&self) -> String {
        self.to_string()
    }
}

impl Describe for vulkano::command_buffer::CommandBufferExecError {
    fn describe(&self) -> String {
        self.to_string()
    }
}

/// `map_err` helper: turns a vulkano error into [`DeviceError::Vulkan`] saying what was being done.
fn during<E: Describe>(what: impl Into<String>) -> impl FnOnce(E) -> DeviceError {
    move |e| DeviceError::Vulkan { during: what.into(), message: e.describe() }
}

/// What kind of device a [`DeviceInfo`] describes, in the order [`Device::new`] prefers them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum DeviceKind {
    /// A GPU with its own memory.
    DiscreteGpu,
    /// A GPU that shares memory with the CPU.
    IntegratedGpu,
    /// A GPU exposed through a virtualisation layer.
    VirtualGpu,
    /// Vulkan implemented on the CPU, such as Mesa's lavapipe.
    Cpu,
    /// Anything else.
    Other,
}

impl From<PhysicalDeviceType> for DeviceKind {
    fn from(ty: PhysicalDeviceType) -> Self {
        match ty {
            PhysicalDeviceType::DiscreteGpu => DeviceKind::DiscreteGpu,
            PhysicalDeviceType::IntegratedGpu => DeviceKind::IntegratedGpu,
            PhysicalDeviceType::VirtualGpu => DeviceKind::VirtualGpu,
            PhysicalDeviceType::Cpu => DeviceKind::Cpu,
            _ => DeviceKind::Other,
        }
    }
}

/// A description of the chosen device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceInfo {
    /// Its index in the Vulkan loader's list (the value `CELER_DEVICE` takes).
    pub index: usize,
    /// The driver's name for it, e.g. `"llvmpipe (LLVM 15.0.6, 256 bits)"`.
    pub name: String,
    /// What kind of device it is.
    pub kind: DeviceKind,
    /// The Vulkan version it supports, e.g. `"1.3.255"`.
    pub api_version: String,
}

impl fmt::Display for DeviceInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "device {}: {} ({:?}, Vulkan {})", self.index, self.name, self.kind, self.api_version)
    }
}

/// Environment variables that MPI launchers set to a process's rank among the ranks of its host.
const LOCAL_RANK_ENV: [&str; 3] = ["OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID", "SLURM_LOCALID"];

/// This process's rank among the ranks on its host, from the MPI launcher's environment (0 without one).
fn local_rank() -> usize {
    LOCAL_RANK_ENV.iter().find_map(|v| std::env::var(v).ok()?.trim().parse().ok()).unwrap_or(0)
}

/// Picks a device among `(kind, has_compute_queue)` in loader order: `requested` (the value of
/// `CELER_DEVICE`) if given, else among the devices of the most preferred [`DeviceKind`] that can
/// compute, the `local_rank`-th (modulo their number), so ranks sharing a host spread over its
/// GPUs; the rule of [`Device::new`] plus that spreading. For device `k` of a rank that drives several:
/// `requested + k`, or the `local_rank`-th device (the caller passes `local rank × devices per rank + k`).
fn choose_device(
    candidates: &[(DeviceKind, bool)],
    requested: Option<&str>,
    local_rank: usize,
    k: usize,
) -> Result<Option<usize>, &'static str> {
    if let Some(value) = requested {
        let index: usize = value.trim().parse().map_err(|_| "is not a device index")?;
        let index = index + k;
        return match candidates.get(index) {
            None => Err("is out of range"),
            Some((_, false)) => Err("names a device without a compute queue"),
            Some((_, true)) => Ok(Some(index)),
        };
    }
    let Some(best) = candidates.iter().filter(|(_, compute)| *compute).map(|(kind, _)| *kind).min() else {
        return Ok(None);
    };
    let same: Vec<usize> = candidates
        .iter()
        .enumerate()
        .filter(|(_, (kind, compute))| *compute && *kind == best)
        .map(|(i, _)| i)
        .collect();
    Ok(Some(same[local_rank % same.len()]))
}

/// One Vulkan device with a compute queue and the allocators that dispatches need.
pub struct Device {
    info: DeviceInfo,
    device: Arc<VkDevice>,
    queue: Arc<Queue>,
    memory: Arc<StandardMemoryAllocator>,
    command_buffers: Arc<StandardCommandBufferAllocator>,
    descriptor_sets: Arc<StandardDescriptorSetAllocator>,
}

impl fmt::Debug for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Device")
            .field("info", &self.info)
            .field("queue_family_index", &self.queue.queue_family_index())
            .finish_non_exhaustive()
    }
}

/// Opens the Vulkan loader and picks this process's device: `CELER_DEVICE=<index>` if set, else among the
/// devices of the most preferred kind that can compute, the node-local rank's one (modulo their number). Returns
/// the device, what it is, and its compute queue family (a dedicated one, without graphics, first).
///
/// # Errors
/// [`DeviceError`] without a loader, a device that can compute, or for a bad `CELER_DEVICE`.
pub(crate) fn pick_device() -> Result<(Arc<PhysicalDevice>, DeviceInfo, u32), DeviceError> {
    pick_device_of(0, 1)
}

/// [`pick_device`] for device `k` of the `per_rank` devices each rank drives: with `CELER_DEVICE=i`, device `i + k`;
/// else the `(local rank × per_rank + k)`-th of the preferred kind (modulo their number, so on a machine with fewer
/// devices several logical devices share one).
pub(crate) fn pick_device_of(k: usize, per_rank: usize) -> Result<(Arc<PhysicalDevice>, DeviceInfo, u32), DeviceError> {
    pick_on(&open_instance()?, k, per_rank)
}

/// Opens the Vulkan loader and creates an instance; [`pick_on`] then picks devices from it.
pub(crate) fn open_instance() -> Result<Arc<Instance>, DeviceError> {
    let library = VulkanLibrary::new()?;
    // Not `InstanceCreateInfo::application_from_cargo_toml()`: its env! is expanded in vulkano,
    // so it would name the application "vulkano".
    let create_info = InstanceCreateInfo {
        application_name: Some("celer".into()),
        engine_name: Some("celer".into()),
        ..Default::default()
    };
    // The loader answers VK_ERROR_INCOMPATIBLE_DRIVER when it finds no driver at all (none installed, or
    // VK_DRIVER_FILES naming none): say that, not the error code's generic text.
    Instance::new(library, create_info).map_err(|e| match e {
        Validated::Error(vulkano::VulkanError::IncompatibleDriver) => {
            DeviceError::NoDevice { driver_files: std::env::var("VK_DRIVER_FILES").ok() }
        }
        e => during("creating the Vulkan instance")(e),
    })
}

/// [`pick_device_of`] among the devices of `instance`: devices picked from one instance are the same
/// `PhysicalDevice` objects where they are the same device, so one logical device can serve them all.
pub(crate) fn pick_on(
    instance: &Arc<Instance>,
    k: usize,
    per_rank: usize,
) -> Result<(Arc<PhysicalDevice>, DeviceInfo, u32), DeviceError> {
    let physical: Vec<_> =
        instance.enumerate_physical_devices().map_err(during("listing the physical devices"))?.collect();
    let candidates: Vec<(DeviceKind, bool)> = physical
        .iter()
        .map(|p| {
            let compute = p.queue_family_properties().iter().any(|q| q.queue_flags.intersects(QueueFlags::COMPUTE));
            (p.properties().device_type.into(), compute)
        })
        .collect();
    let requested = std::env::var(DEVICE_ENV).ok();
    let index = choose_device(&candidates, requested.as_deref(), local_rank() * per_rank + k, k)
        .map_err(|problem| DeviceError::BadDeviceChoice {
            value: requested.clone().unwrap_or_default(),
            problem,
            devices: physical
                .iter()
                .enumerate()
                .map(|(i, p)| format!("{i}: {} ({:?})", p.properties().device_name, p.properties().device_type))
                .collect::<Vec<_>>()
                .join(", "),
        })?
        .ok_or_else(|| DeviceError::NoDevice { driver_files: std::env::var("VK_DRIVER_FILES").ok() })?;
    let physical = physical[index].clone();

    // A dedicated compute family (no graphics) first: on GPUs it runs beside graphics work.
    let families = physical.queue_family_properties();
    let is_compute = |i: &usize| families[*i].queue_flags.intersects(QueueFlags::COMPUTE);
    let queue_family_index = (0..families.len())
        .filter(is_compute)
        .find(|&i| !families[i].queue_flags.intersects(QueueFlags::GRAPHICS))
        .or_else(|| (0..families.len()).find(is_compute))
        .expect("choose_device only picks devices with a compute family") as u32;

    let info = DeviceInfo {
        index,
        name: physical.properties().device_name.clone(),
        kind: physical.properties().device_type.into(),
        api_version: physical.api_version().to_string(),
    };
    Ok((physical, info, queue_family_index))
}

impl Device {
    /// Opens the preferred Vulkan device: `CELER_DEVICE=<index>` if set, else the first discrete
    /// GPU, then integrated GPU, then virtual GPU, then CPU implementation, in loader order.
    ///
    /// # Errors
    ///
    /// [`DeviceError::Loading`] without a Vulkan loader, [`DeviceError::NoDevice`] without a
    /// device that can compute, [`DeviceError::BadDeviceChoice`] for a bad `CELER_DEVICE`, and
    /// [`DeviceError::Vulkan`] if creating the instance or device fails.
    pub fn new() -> Result<Self, DeviceError> {
        let (physical, info, queue_family_index) = pick_device()?;
        let (device, mut queues) = VkDevice::new(
            physical,
            DeviceCreateInfo {
                queue_create_infos: vec![QueueCreateInfo { queue_family_index, ..Default::default() }],
                ..Default::default()
            },
        )
        .map_err(during(format!("creating the logical device for {info}")))?;
        let queue = queues.next().expect("Device::new returns the one queue that was asked for");
        Ok(Device {
            info,
            memory: Arc::new(StandardMemoryAllocator::new_default(device.clone())),
            command_buffers: Arc::new(StandardCommandBufferAllocator::new(device.clone(), Default::default())),
            descriptor_sets: Arc::new(StandardDescriptorSetAllocator::new(device.clone(), Default::default())),
            device,
            queue,
        })
    }

    /// What device this is.
    pub fn info(&self) -> &DeviceInfo {
        &self.info
    }

    /// Creates the compute pipeline for `entry_point` of `source`, with the pipeline layout
    /// (descriptor sets and push constants) reflected from the SPIR-V.
    ///
    /// # Errors
    ///
    /// [`DeviceError::NoEntryPoint`] if the module lacks that compute entry point, and
    /// [`DeviceError::Vulkan`] if the device rejects the module, e.g. for a capability it lacks.
    pub fn load_kernel(&self, source: &KernelSource, entry_point: &str) -> Result<Kernel, DeviceError> {
        let no_entry_point = || DeviceError::NoEntryPoint {
            kernel: source.name(),
            entry_point: entry_point.to_owned(),
            available: source.entry_points().iter().map(|ep| ep.name).collect::<Vec<_>>().join(", "),
        };
        let desc = source.entry_point(entry_point).ok_or_else(no_entry_point)?;
        let words = source.spirv_words();
        // SAFETY: `words` is SPIR-V that naga produced from a WGSL module it had validated
        // (exec/build.rs; KernelSource cannot be built elsewhere), which is the validity
        // ShaderModule::new asks for; vulkano also parses it and checks its capabilities.
        let module = unsafe { ShaderModule::new(self.device.clone(), ShaderModuleCreateInfo::new(&words)) }
            .map_err(during(format!("creating the shader module of kernel {}", source.name())))?;
        let entry = module.entry_point(entry_point).ok_or_else(no_entry_point)?;
        let stage = PipelineShaderStageCreateInfo::new(entry);
        let what = || format!("creating the compute pipeline of kernel {}::{entry_point}", source.name());
        let layout_info = PipelineDescriptorSetLayoutCreateInfo::from_stages([&stage])
            .into_pipeline_layout_create_info(self.device.clone())
            .map_err(|e| DeviceError::Vulkan { during: what(), message: format!("{e:?}") })?;
        let layout = PipelineLayout::new(self.device.clone(), layout_info).map_err(during(what()))?;
        let pipeline =
            ComputePipeline::new(self.device.clone(), None, ComputePipelineCreateInfo::stage_layout(stage, layout))
                .map_err(during(what()))?;
        Ok(Kernel { name: source.name(), workgroup_size: desc.workgroup_size, pipeline })
    }

    /// Creates a host-visible storage buffer holding a copy of `data`.
    ///
    /// The memory is host-visible so it can be filled and read back without staging copies; it is
    /// device-local where the device offers such memory.
    ///
    /// # Errors
    ///
    /// [`DeviceError::EmptyBuffer`] for empty `data`, [`DeviceError::Vulkan`] if allocation fails.
    pub fn buffer_from_slice<T: BufferContents + Copy>(&self, data: &[T]) -> Result<Subbuffer<[T]>, DeviceError> {
        if data.is_empty() {
            return Err(DeviceError::EmptyBuffer);
        }
        Buffer::from_iter(
            self.memory.clone(),
            BufferCreateInfo {
                usage: BufferUsage::STORAGE_BUFFER | BufferUsage::TRANSFER_SRC | BufferUsage::TRANSFER_DST,
                ..Default::default()
            },
            AllocationCreateInfo {
                memory_type_filter: MemoryTypeFilter::PREFER_DEVICE | MemoryTypeFilter::HOST_RANDOM_ACCESS,
                ..Default::default()
            },
            data.iter().copied(),
        )
        .map_err(during(format!("allocating a buffer of {} bytes", std::mem::size_of_val(data))))
    }

    /// Copies a buffer's contents to a `Vec`.
    ///
    /// # Errors
    ///
    /// [`DeviceError::Vulkan`] if the GPU may still be writing the buffer: first see the
    /// [`Submission`] that used it complete.
    pub fn read_buffer<T: BufferContents + Copy>(&self, buffer: &Subbuffer<[T]>) -> Result<Vec<T>, DeviceError> {
        let guard = buffer.read().map_err(|e| DeviceError::Vulkan {
            during: "mapping a buffer for reading".into(),
            message: e.to_string(),
        })?;
        Ok(guard.to_vec())
    }

    /// Records and submits one dispatch of `kernel` and returns without waiting.
    ///
    /// `buffers[i]` is bound as storage buffer `binding = i` of `@group(0)`; `push_constants`
    /// are 32-bit words written from offset 0 (pass `f32`s as `f32::to_bits`).
    /// `group_counts` is the number of workgroups; see [`Kernel::groups_for`]. A kernel whose parameters live in a
    /// storage buffer ([`KernelSource::params_binding`](crate::shaders::KernelSource::params_binding) is `Some(_)`:
    /// a block of more than 128 bytes) cannot be dispatched here (vulkano's validation refuses its bindings); the
    /// [`gpu`](crate::gpu) layer writes and binds its parameters itself.
    ///
    /// # Errors
    ///
    /// [`DeviceError::Vulkan`] if vulkano's validation rejects the bindings or push constants (for
    /// example a missing buffer or more push-constant bytes than the kernel declares) or the
    /// submission fails.
    pub fn dispatch(
        &self,
        kernel: &Kernel,
        buffers: &[&Subbuffer<[u8]>],
        push_constants: &[u32],
        group_counts: [u32; 3],
    ) -> Result<Submission, DeviceError> {
        let what = || format!("dispatching kernel {}", kernel.name);
        let layout = kernel.pipeline.layout().clone();
        let mut builder = AutoCommandBufferBuilder::primary(
            self.command_buffers.clone(),
            self.queue.queue_family_index(),
            CommandBufferUsage::OneTimeSubmit,
        )
        .map_err(during(what()))?;
        builder.bind_pipeline_compute(kernel.pipeline.clone()).map_err(during(what()))?;
        if !buffers.is_empty() {
            let set_layout = layout.set_layouts().first().cloned().ok_or_else(|| DeviceError::Vulkan {
                during: what(),
                message: format!("{} buffers were given, but the kernel declares no @group(0)", buffers.len()),
            })?;
            let writes = buffers
                .iter()
                .enumerate()
                .map(|(binding, buffer)| WriteDescriptorSet::buffer(binding as u32, (*buffer).clone()));
            let set =
                DescriptorSet::new(self.descriptor_sets.clone(), set_layout, writes, []).map_err(during(what()))?;
            builder.bind_descriptor_sets(PipelineBindPoint::Compute, layout.clone(), 0, set).map_err(during(what()))?;
        }
        // One word at a time: vulkano's push_constants takes a sized value, and per-word calls
        // keep this API a plain slice. TODO(perf): one call with a fixed-size array if it shows.
        for (i, word) in push_constants.iter().enumerate() {
            builder.push_constants(layout.clone(), (4 * i) as u32, *word).map_err(during(what()))?;
        }
        // SAFETY: vulkano's shader safety requirements are about memory the kernel may touch. The
        // kernel comes from build.rs (KernelSource cannot be built elsewhere), whose naga output
        // clamps every buffer and array index (`Restrict`), so it stays inside the bound buffers;
        // vulkano has checked that every binding and push constant it declares is set, and the
        // command buffer keeps the buffers alive until the submission completes.
        unsafe { builder.dispatch(group_counts) }.map_err(during(what()))?;
        let command_buffer = builder.build().map_err(during(what()))?;
        let future = vulkano::sync::now(self.device.clone())
            .then_execute(self.queue.clone(), command_buffer)
            .map_err(during(what()))?
            .then_signal_fence_and_flush()
            .map_err(during(what()))?;
        Ok(Submission { future, complete: false })
    }
}

/// A compute pipeline made from one entry point of a [`KernelSource`].
#[derive(Debug)]
pub struct Kernel {
    name: &'static str,
    workgroup_size: [u32; 3],
    pipeline: Arc<ComputePipeline>,
}

impl Kernel {
    /// The shader file's name, e.g. `"saxpy"`.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The entry point's `@workgroup_size`.
    pub fn workgroup_size(&self) -> [u32; 3] {
        self.workgroup_size
    }

    /// The workgroup counts that cover `n` items along x: `[ceil(n / workgroup_x), 1, 1]`.
    pub fn groups_for(&self, n: u32) -> [u32; 3] {
        [n.div_ceil(self.workgroup_size[0].max(1)), 1, 1]
    }
}

/// A submitted command buffer; poll [`is_complete`](Self::is_complete) to learn when it is done.
///
/// Dropping a submission that has not completed blocks until it has (vulkano's
/// `FenceSignalFuture` waits on its fence in `Drop`), so poll it to completion first.
#[must_use = "dropping an unfinished Submission blocks until the GPU is done"]
pub struct Submission {
    future: FenceSignalFuture<CommandBufferExecFuture<NowFuture>>,
    complete: bool,
}

impl fmt::Debug for Submission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Submission").field("complete", &self.complete).finish_non_exhaustive()
    }
}

impl Submission {
    /// Reads the fence status once, without blocking (`vkGetFenceStatus`). Once it reports
    /// `true`, the buffers the dispatch used are released for host access.
    ///
    /// # Errors
    ///
    /// [`DeviceError::Vulkan`] if the device was lost.
    pub fn is_complete(&mut self) -> Result<bool, DeviceError> {
        if self.complete {
            return Ok(true);
        }
        if self.future.is_signaled().map_err(during("polling a dispatch's fence"))? {
            // The fence is signaled, so this only releases the resources the submission locked.
            self.future.cleanup_finished();
            self.complete = true;
        }
        Ok(self.complete)
    }

    /// Polls [`is_complete`](Self::is_complete) until it reports `true`, yielding the thread
    /// between polls, for at most `timeout`. For tests and demos; a runtime polls from its loop.
    ///
    /// # Errors
    ///
    /// [`DeviceError::Timeout`] after `timeout`, or the error of a failed poll.
    pub fn poll_until_complete(&mut self, timeout: Duration) -> Result<(), DeviceError> {
        let start = Instant::now();
        while !self.is_complete()? {
            if start.elapsed() > timeout {
                return Err(DeviceError::Timeout(timeout));
            }
            std::thread::yield_now();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use DeviceKind::*;

    #[test]
    fn prefers_discrete_then_integrated_then_cpu() {
        let devices = [(Cpu, true), (IntegratedGpu, true), (DiscreteGpu, true), (DiscreteGpu, true)];
        assert_eq!(choose_device(&devices, None, 0, 0), Ok(Some(2)));
        assert_eq!(choose_device(&devices[..2], None, 0, 0), Ok(Some(1)));
        assert_eq!(choose_device(&devices[..1], None, 0, 0), Ok(Some(0)));
    }

    #[test]
    fn skips_devices_without_a_compute_queue() {
        assert_eq!(choose_device(&[(DiscreteGpu, false), (Cpu, true)], None, 0, 0), Ok(Some(1)));
        assert_eq!(choose_device(&[(DiscreteGpu, false)], None, 0, 0), Ok(None));
        assert_eq!(choose_device(&[], None, 0, 0), Ok(None));
    }

    #[test]
    fn celer_device_overrides_the_preference_and_is_checked() {
        let devices = [(Cpu, true), (DiscreteGpu, true), (IntegratedGpu, false)];
        assert_eq!(choose_device(&devices, Some("0"), 0, 0), Ok(Some(0)));
        assert_eq!(choose_device(&devices, Some(" 1 "), 0, 0), Ok(Some(1)));
        assert_eq!(choose_device(&devices, Some("3"), 0, 0), Err("is out of range"));
        assert_eq!(choose_device(&devices, Some("gpu"), 0, 0), Err("is not a device index"));
        assert_eq!(choose_device(&devices, Some("2"), 0, 0), Err("names a device without a compute queue"));
    }

    #[test]
    fn ranks_sharing_a_host_spread_over_its_gpus() {
        let two = [(Cpu, true), (DiscreteGpu, true), (DiscreteGpu, true)];
        assert_eq!(choose_device(&two, None, 0, 0), Ok(Some(1)));
        assert_eq!(choose_device(&two, None, 1, 0), Ok(Some(2)));
        assert_eq!(choose_device(&two, None, 2, 0), Ok(Some(1)));
        // Rank with local rank 1 driving 2 devices: its devices 2 (the case above) and 3 of the list of GPUs, modulo
        // their number.
        assert_eq!(choose_device(&two, None, 3, 1), Ok(Some(2)));
        assert_eq!(choose_device(&two, Some("1"), 0, 1), Ok(Some(2)));
        assert_eq!(choose_device(&two, Some("2"), 0, 1), Err("is out of range"));
    }
}
