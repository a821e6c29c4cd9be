//! [`Queue`]: the typed surface over the task graph (tasks are described in `task_builder`, the handles a program
//! holds, [`Buffer`], [`HostObject`] and [`Fence`], in `handles`).
//!
//! A queue built with [`Queue::new`] runs the program: it starts the runtime thread (MPI, the GPU, the loop; see
//! `celer_scheduler::runtime`). The rank's task graph is built here, on the calling thread, so a bad task is
//! refused at once with an error naming it and every id `submit` returns is the task's id on the runtime thread;
//! each built task (with its regions and dependencies) goes to the runtime thread, which builds the rank's command
//! graph from it. Nothing is built twice.
//!
//! A queue built with [`Queue::dry_run`] only *records*: it builds the task graph and the command graphs of one or
//! more simulated ranks ([`QueueBuilder::dry_run`]) and treats every applied horizon as reached at once, so a
//! program of any length runs in bounded memory and its graphs can be printed.

use std::cell::RefCell;
use std::fmt;
use std::marker::PhantomData;

use celer_scheduler::graph::{
    AccessMode, BufferId, CollectiveGroupId, EpochAction, GridBox, HostObjectId, RangeMapper, ReductionId, TaskError,
    TaskId, TaskKind, TaskSpec,
};
use celer_scheduler::runtime::{HostPayload, KernelPayload, Message, NewBuffer, RuntimeHandle, ScalarKind};
use celer_scheduler::{ConfigError, Simulation, StartError};
use std::sync::{mpsc, Arc};

use crate::binding::check_kernel;
use crate::builder::{QueueBuilder, Settings};
use crate::intern::{KernelKey, KernelShape, SubmitCache};
use crate::task_builder::TaskParts;
pub use crate::task_builder::{task, Kernel, TaskBuilder};

mod handles;
mod recorder;

use celer_scheduler::exec::shaders::{EntryPointDesc, ScalarType};
pub use handles::{Buffer, CollectiveGroup, Fence, HostObject};
use recorder::Recorder;

/// Element types a buffer can hold: plain old data that may be copied byte for byte between ranks and devices.
///
/// [`bytemuck::Pod`] is the bound (no padding, every bit pattern valid), so a program's own element type derives
/// `Pod` and `Zeroable` (`bytemuck` with its `derive` feature) and implements `Element` without `unsafe`, naming the
/// scalar type of its fields:
/// ```
/// use celer::kernels::ScalarType;
///
/// #[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
/// #[repr(C)]
/// struct Particle {
///     pos: [f32; 3],
///     mass: f32,
/// }
/// impl celer::Element for Particle {
///     const SCALAR: ScalarType = ScalarType::F32;
/// }
/// ```
/// `submit` binds a buffer to a kernel binding whose element is a scalar only when it is of the buffer's
/// [`SCALAR`](Element::SCALAR) type and size (`Buffer<f32>` through `array<f32>`). A binding whose element is a
/// vector or a struct (`array<vec4<f32>>`, `array<Particle>`) takes a buffer whose element has its size: a
/// `Particle` buffer binds to `array<vec4<f32>>` (16 bytes each), an `f32` buffer does not. `SCALAR` must also be the one
/// scalar type the binding's element is made of: a vector's or matrix's components', or the type every field of a
/// WGSL struct shares (a struct of four `u32` binds neither to `array<vec4<f32>>` nor to an `array<Body>` of
/// `f32` fields); a WGSL struct mixing types is compared by size only.
///
/// Types with invalid bit patterns cannot be elements:
/// ```compile_fail
/// let q = celer::Queue::dry_run();
/// let _ = q.buffer::<bool, 1>([8]);
/// ```
/// nor can zero-sized types, which hold no data (the buffer does not compile):
/// ```compile_fail
/// #[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
/// #[repr(C)]
/// struct Nothing;
/// impl celer::Element for Nothing {
///     const SCALAR: celer::kernels::ScalarType = celer::kernels::ScalarType::U32;
/// }
/// let q = celer::Queue::dry_run();
/// let _ = q.buffer_from(&[Nothing; 8], [8]);
/// ```
pub trait Element: bytemuck::Pod + Send + Sync {
    /// The scalar type, which `submit` compares with the element type of the kernel binding the buffer is bound to.
    const SCALAR: ScalarType;
}

macro_rules! impl_element {
    ($($t:ty => $k:ident),*) => { $(
        impl Element for $t {
            const SCALAR: ScalarType = ScalarType::$k;
        }
    )* };
}
impl_element!(u8 => U8, i8 => I8, u16 => U16, i16 => I16, u32 => U32, i32 => I32, u64 => U64, i64 => I64,
    f32 => F32, f64 => F64);

/// A value a kernel's push-constant member can take: `f32`, `i32` or `u32`, each one 4-byte word, checked at
/// submit against the member's WGSL type ([`TaskBuilder::scalar`]).
pub trait Scalar: Copy + sealed::Sealed {
    /// Its type, as the kernel must declare the member.
    const TYPE: ScalarType;
    /// Its bits, as pushed.
    fn to_word(self) -> u32;
}

mod sealed {
    pub trait Sealed {}
}

macro_rules! impl_scalar {
    ($($t:ty => $k:ident, $word:expr),*) => { $(
        impl sealed::Sealed for $t {}
        impl Scalar for $t {
            const TYPE: ScalarType = ScalarType::$k;
            fn to_word(self) -> u32 {
                $word(self)
            }
        }
    )* };
}
impl_scalar!(f32 => F32, f32::to_bits, i32 => I32, |v: i32| v as u32, u32 => U32, |v: u32| v);

/// A value [`TaskBuilder::scalar`] gives a push-constant member by name (or
/// [`scalar_value`](TaskBuilder::scalar_value) by position): a [`Scalar`] for a member of its type, or an array of
/// two to four of them for a WGSL vector of that many components.
///
/// | Rust | WGSL member |
/// |---|---|
/// | `f32`, `i32`, `u32` | `f32`, `i32`, `u32` |
/// | `[f32; 2]`, `[i32; 2]`, `[u32; 2]` | `vec2<f32>`, `vec2<i32>`, `vec2<u32>` |
/// | `[f32; 3]`, … | `vec3<f32>`, … (12 bytes, aligned to 16) |
/// | `[f32; 4]`, … | `vec4<f32>`, … |
///
/// `submit` checks the component type and count against the member's. Matrices, arrays and structs cannot be given
/// as one value: give such a kernel's scalars by position, one 4-byte value per word of the member.
pub trait ScalarValue: Copy + sealed::Sealed {
    /// The type of its components, as the kernel must declare the member's.
    const TYPE: ScalarType;
    /// Its components: 1 for a scalar, `N` for `[T; N]` (a `vecN<T>`).
    const COMPONENTS: u8;
    /// The bits of its components, as pushed (the words past [`COMPONENTS`](Self::COMPONENTS) are 0).
    fn to_words(self) -> [u32; 4];
}

macro_rules! impl_scalar_value {
    ($($t:ty),*) => { $(
        impl ScalarValue for $t {
            const TYPE: ScalarType = <$t as Scalar>::TYPE;
            const COMPONENTS: u8 = 1;
            fn to_words(self) -> [u32; 4] {
                [self.to_word(), 0, 0, 0]
            }
        }
        impl_scalar_value!(@vec $t, 2, 3, 4);
    )* };
    (@vec $t:ty, $($n:literal),*) => { $(
        impl sealed::Sealed for [$t; $n] {}
        impl ScalarValue for [$t; $n] {
            const TYPE: ScalarType = <$t as Scalar>::TYPE;
            const COMPONENTS: u8 = $n;
            fn to_words(self) -> [u32; 4] {
                let mut words = [0; 4];
                for (w, v) in words.iter_mut().zip(self) {
                    *w = v.to_word();
                }
                words
            }
        }
    )* };
}
impl_scalar_value!(f32, i32, u32);

/// For a kernel whose results depend on how the index space is cut into workgroups (its reflection's
/// `workgroup_dependent`: workgroup ids, local ids, `var<workgroup>` memory, barriers, subgroup operations; the
/// prelude's block reductions use them): the task's granularity becomes a multiple of the workgroup along each
/// dimension of the index space (the least common multiple with the program's `.granularity()`), so that every
/// chunk starts at a whole workgroup of the index space (counted from its first item) and each workgroup holds the
/// same items however the task is split. Returns the items of one block (its workgroup) along each dimension,
/// dimension 0 first, where the kernel also calls a block reduction in a task with reductions: each block's partial
/// result is then the same however the task is split, and so is the reduction's result.
fn align_to_workgroups(ep: &EntryPointDesc, spec: &mut TaskSpec) -> Option<[usize; 3]> {
    let ep = Some(ep).filter(|ep| ep.workgroup_dependent || ep.block_reduction)?;
    let [x, y, z] = ep.workgroup_size.map(|w| w as usize);
    // Invocation ids run back to front: gid.x along the last dimension (the prelude's celer_item_Nd).
    let block = match spec.dims {
        0 | 1 => [x, 1, 1],
        2 => [y, x, 1],
        _ => [z, y, x],
    };
    let gcd = |mut a: usize, mut b: usize| {
        while b != 0 {
            (a, b) = (b, a % b);
        }
        a
    };
    for (g, b) in spec.granularity.iter_mut().zip(block) {
        // A least common multiple beyond usize (a huge `.granularity()`): the largest multiple of the workgroup,
        // which like any granularity beyond the index space leaves it one chunk along this dimension.
        *g = (*g / gcd(*g, b)).checked_mul(b).unwrap_or(usize::MAX / b * b);
    }
    (ep.block_reduction && !spec.reductions.is_empty()).then_some(block)
}

/// Element types reductions can combine across ranks.
pub trait Reducible: Element {
    /// How the runtime combines partial results of this type.
    const KIND: ScalarKind;
}

macro_rules! impl_reducible {
    ($($t:ty => $k:ident),*) => { $( impl Reducible for $t { const KIND: ScalarKind = ScalarKind::$k; } )* };
}
impl_reducible!(i32 => I32, u32 => U32, i64 => I64, u64 => U64, f32 => F32, f64 => F64);

/// Why a queue could not start or a result could not be delivered.
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The runtime (MPI, the GPU) did not start; the [`StartError`] carries the MPI or GPU error, typed.
    #[error("celer could not start: {0}")]
    Start(StartError),
    /// A `CELER_*` environment variable has a value celer does not accept.
    #[error("celer could not start: {0}")]
    Config(ConfigError),
    /// A [`QueueBuilder`] setting of the program's that has no meaning (`dry_run(0)`,
    /// `devices(0)`), refused by `build` before anything starts.
    #[error("celer could not start: {setting}({value}) is not valid: {setting} accepts {accepted}")]
    Setting {
        /// The builder's method (`QueueBuilder::dry_run`).
        setting: &'static str,
        /// The value given.
        value: String,
        /// What it accepts.
        accepted: &'static str,
    },
    /// A fence's data is only available when the program runs (not in a dry run).
    #[error("{0} was only recorded (dry run), so it has no data")]
    DryRun(TaskId),
    /// A task could not be recorded.
    #[error(transparent)]
    Task(Box<TaskError>),
    /// A kernel file without the entry point asked for.
    #[error("kernel file {kernel} has no compute entry point `{entry}` (it has: {known})")]
    NoEntryPoint {
        /// The kernel file.
        kernel: &'static str,
        /// The entry point asked for.
        entry: &'static str,
        /// The entry points it has.
        known: String,
    },
    /// The runtime stopped before delivering a result.
    #[error("the runtime stopped before {0} completed")]
    Stopped(TaskId),
}

impl From<ConfigError> for Error {
    fn from(e: ConfigError) -> Self {
        Error::Config(e)
    }
}

impl From<TaskError> for Error {
    fn from(e: TaskError) -> Self {
        Error::Task(Box::new(e))
    }
}

impl From<StartError> for Error {
    fn from(e: StartError) -> Self {
        Error::Start(e)
    }
}

/// The same sentence as `Display`, so that `fn main() -> Result<(), Box<dyn Error>>` prints a readable message.
impl std::fmt::Debug for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

/// The handle a program submits work through.
///
/// Buffers and host objects borrow the queue, so none can outlive it: using a buffer after the runtime shut down
/// does not compile. Dropping the queue records the shutdown epoch.
///
/// # Examples
/// ```
/// use celer::{access, task, Kernel, Queue};
/// let q = Queue::dry_run();
/// let u = q.buffer_from(&vec![1.0f32; 64], [8, 8]).named("u");
/// let v = q.buffer::<f32, 2>([8, 8]).named("v");
/// let step = Kernel::named("step");
/// q.submit(
///     task::parallel_for(&step, [8, 8])
///         .read(&u, access::neighborhood_along_axes([1, 1]))
///         .discard_write(&v, access::one_to_one()),
/// )?;
/// assert!(q.task_graph_dot().contains("step"));
/// # Ok::<(), celer::TaskError>(())
/// ```
pub struct Queue {
    rec: RefCell<Recorder>,
    runtime: Option<RuntimeHandle>,
}

impl Queue {
    /// Starts celer on this rank (as one rank without `mpirun`) with the settings of the `CELER_*` environment
    /// variables (the defaults where they are unset); the same as `Queue::builder().build()`. One queue per process:
    /// MPI cannot be started twice.
    ///
    /// # Errors
    /// [`Error::Config`] for a bad `CELER_*` value (checked before anything starts), [`Error::Start`] when MPI or
    /// the GPU cannot be set up (no Vulkan driver, a bad `CELER_DEVICE`). A GPU failure on any rank is an `Err` on
    /// every rank ([`StartError::OtherRank`] where another rank failed),
    /// after MPI was finalised, so the program can return it from `main`.
    pub fn new() -> Result<Self, Error> {
        Self::builder().build()
    }

    /// A queue that records and simulates one rank without running anything (no MPI, no GPU), with the default
    /// settings (no `CELER_*` variable read): `Queue::builder().dry_run(1).ignore_env().build()`.
    pub fn dry_run() -> Self {
        Self::builder().dry_run(1).ignore_env().build().expect("a dry run starts nothing")
    }

    /// A builder for a queue with settings of the program's choosing (a dry run of several ranks, a stall timeout,
    /// a policy for uninitialized reads, …); see [`QueueBuilder`].
    pub fn builder() -> QueueBuilder {
        QueueBuilder::new()
    }

    /// Starts a queue with `config` (what [`QueueBuilder::build`] does).
    pub(crate) fn start(config: Settings) -> Result<Self, Error> {
        celer_scheduler::logging::set_level(config.runtime.log_level);
        // A typo'd variable would otherwise be ignored without a word: said whatever the logger, before anything
        // starts (a misspelt setting is often why a start-up then fails).
        for warning in &config.unknown_variables {
            celer_scheduler::logging::always(log::Level::Warn, warning);
        }
        let runtime = if config.dry_run_ranks.is_none() {
            Some(RuntimeHandle::start(config.task_graph.clone(), config.runtime.clone()).map_err(Error::Start)?)
        } else {
            None
        };
        // A run builds the task graph here and the command graph on the runtime thread: no simulated ranks.
        let (num_ranks, ranks) = match &runtime {
            Some(rt) => (rt.nodes() as usize, Vec::new()),
            None => {
                let ranks: Vec<celer_scheduler::graph::NodeId> =
                    (0..config.dry_run_ranks.unwrap_or(1).max(1) as u64).map(celer_scheduler::graph::NodeId).collect();
                (ranks.len(), ranks)
            }
        };
        let mut task_graph = config.task_graph;
        if let Some(rt) = &runtime {
            // Nodes per process (CELER_DEVICES): collective host tasks have one item per process.
            task_graph.devices_per_rank = (rt.nodes() as usize / (rt.ranks() as usize).max(1)).max(1);
        }
        let rec = Recorder {
            // Recording keeps every task and command for the dumps of simulated ranks: a run has none to dump.
            sim: Simulation::with_ranks(num_ranks, &ranks, config.record_commands && runtime.is_none(), task_graph),
            next_buffer: 0,
            next_host_object: 0,
            next_reduction: 0,
            next_group: 1,
            submitted: 0,
            waits: 0,
            warned_waits: false,
            warned_scattered: false,
            warned_identity: false,
            warned_single_node_overlap: false,
            submit_ahead: config.runtime.submit_ahead,
            horizons: std::collections::VecDeque::new(),
            creation_data: std::collections::HashMap::new(),
            dropped_data: std::collections::VecDeque::new(),
            dropped_data_bytes: 0,
            fence_bytes_recorded: 0,
            dropped_buffers: std::collections::VecDeque::new(),
            dropped_buffer_bytes: 0,
            cache: SubmitCache::default(),
        };
        Ok(Self { rec: RefCell::new(rec), runtime })
    }

    /// The recorder, for `call` (the API the program called, for the message) to change. Panics at the caller
    /// where this thread is inside another of the queue's calls: program code that the call runs on this thread
    /// (a custom range mapper applied by `submit`, a `reduce_with` combine checked by it, the drop of a value a
    /// task's closure captured, released by `wait`) reached the queue again, through a `thread_local` or a leaked
    /// `&'static Queue`, which the types otherwise forbid (`Queue` is not `Sync`, and those closures are `Send`).
    #[track_caller]
    pub(in crate::queue) fn rec_mut(&self, call: &str) -> std::cell::RefMut<'_, Recorder> {
        match self.rec.try_borrow_mut() {
            Ok(rec) => rec,
            Err(_) => reentered(call),
        }
    }

    /// The recorder, for `call` to read; panics as [`rec_mut`](Self::rec_mut) does.
    #[track_caller]
    pub(in crate::queue) fn rec(&self, call: &str) -> std::cell::Ref<'_, Recorder> {
        match self.rec.try_borrow() {
            Ok(rec) => rec,
            Err(_) => reentered(call),
        }
    }

    /// This queue's address, which tells its resources from another queue's (see `checks::Noted::queue_of`).
    pub(crate) fn addr(&self) -> usize {
        self as *const Self as usize
    }

    /// This process's rank (0 in a dry run).
    pub fn rank(&self) -> usize {
        self.runtime.as_ref().map_or(0, |r| r.rank() as usize)
    }

    /// What this rank's runtime did so far (None in a dry run): tasks, commands, kernels, bytes moved, and how its
    /// loop spent its time.
    pub fn stats(&self) -> Option<celer_scheduler::runtime::RankStats> {
        self.runtime.as_ref().and_then(|r| r.stats())
    }

    /// What the devices of every rank offer, as the ranks agreed at start-up (the least of each limit over every
    /// device of every rank; `None` in a dry run, which has no device): `f64` in kernels, the bytes of a dispatch's
    /// push constants, the storage buffers a kernel binds, and the bytes a kernel binds of one buffer
    /// (`max_storage_buffer_range`: `submit` refuses a kernel whose chunk accesses more of a buffer). The same on
    /// every rank, so a program may size its tasks by it without the ranks diverging.
    ///
    /// ```
    /// let q = celer::Queue::dry_run();
    /// assert!(q.device_limits().is_none(), "a dry run has no device");
    /// ```
    pub fn device_limits(&self) -> Option<crate::DeviceLimits> {
        self.runtime.as_ref().map(|r| r.capabilities())
    }

    /// Number of ranks (in a dry run, the ranks it simulates: a collective host task has that many items).
    #[track_caller]
    pub fn ranks(&self) -> usize {
        self.runtime.as_ref().map_or_else(|| self.rec("Queue::ranks").sim.num_ranks(), |r| r.ranks() as usize)
    }

    #[track_caller]
    fn create_buffer<T: Element, const D: usize>(&self, range: [usize; D], data: Option<&[T]>) -> Buffer<'_, T, D> {
        const { assert!(D <= 3, "buffers have at most 3 dimensions") };
        const { assert!(std::mem::size_of::<T>() > 0, "a buffer's element type must not be zero-sized") };
        const {
            assert!(
                std::mem::align_of::<T>() <= 16,
                "a buffer's element type must be aligned to at most 16 bytes (host tasks' views of a buffer give \
                 no more); drop the #[repr(align(N))] of N > 16"
            )
        };
        let cells = check_buffer_size::<T, D>(range);
        let mut rec = self.rec_mut(if data.is_some() { "Queue::buffer_from" } else { "Queue::buffer" });
        let id = BufferId(rec.next_buffer);
        rec.next_buffer += 1;
        // With its shape: an empty buffer's box (all zeros) would lose it, and messages print it.
        rec.sim.create_buffer(id, D, celer_scheduler::graph::BufferExtent::new(&range), data.is_some(), None);
        if let Some(rt) = &self.runtime {
            // check_buffer_size refused sizes beyond isize::MAX bytes.
            rec.hold_back_buffers(rt, (cells * std::mem::size_of::<T>()) as u64);
            if let Some(d) = data {
                rec.hold_back_data(rt, id, std::mem::size_of_val(d) as u64);
            }
            let bytes = data.map(|d| bytemuck::cast_slice::<T, u8>(d).to_vec());
            rt.send_bounded(Message::CreateBuffer(Box::new(NewBuffer {
                id,
                dims: D,
                shape: std::array::from_fn(|d| range.get(d).copied().unwrap_or(1)),
                elem_size: std::mem::size_of::<T>(),
                elem_type: std::any::type_name::<T>(),
                data: bytes,
                name: None,
            })));
        }
        Buffer { id, range, queue: self, _element: PhantomData }
    }

    /// A buffer of extent `range` with no contents yet (reading it before a write is an uninitialized read). An
    /// extent may be zero in any dimension, whatever the others (the buffer holds nothing; fences return an empty
    /// vector).
    ///
    /// # Panics
    /// If the buffer's number of cells or its size in bytes overflows (more than `isize::MAX` bytes), in whatever
    /// order its extents come; the panic points at the caller.
    ///
    /// An element type aligned to more than 16 bytes does not build (host tasks' views of a buffer give no more):
    /// ```compile_fail,E0080
    /// #[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
    /// #[repr(C, align(64))]
    /// struct Wide([f64; 8]);
    /// impl celer::Element for Wide {
    ///     const SCALAR: celer::kernels::ScalarType = celer::kernels::ScalarType::F64;
    /// }
    /// let q = celer::Queue::dry_run();
    /// let _ = q.buffer::<Wide, 1>([4]);
    /// ```
    #[track_caller]
    pub fn buffer<T: Element, const D: usize>(&self, range: [usize; D]) -> Buffer<'_, T, D> {
        self.create_buffer(range, None)
    }

    /// A buffer initialized from `data` in row-major order.
    ///
    /// # Panics
    /// If `data.len()` is not the product of `range`, or as [`buffer`](Self::buffer).
    #[track_caller]
    pub fn buffer_from<T: Element, const D: usize>(&self, data: &[T], range: [usize; D]) -> Buffer<'_, T, D> {
        let cells = check_buffer_size::<T, D>(range);
        assert_eq!(data.len(), cells, "buffer_from: {} elements given for a range of {cells} cells", data.len());
        self.create_buffer(range, Some(data))
    }

    /// A host object: state that host tasks change through side effects, in submission order.
    pub fn host_object<T: Send + 'static>(&self, value: T) -> HostObject<'_, T> {
        let mut rec = self.rec_mut("Queue::host_object");
        let id = HostObjectId(rec.next_host_object);
        rec.next_host_object += 1;
        rec.sim.create_host_object(id);
        if let Some(rt) = &self.runtime {
            rt.send_bounded(Message::CreateHostObject(id));
        }
        HostObject { id, value: Arc::new(std::sync::Mutex::new(value)), queue: self }
    }

    /// A new group for collective host tasks ([`task::host_collective_in`]):
    /// tasks of one group run in order, groups run independently. Dropping the group frees what celer tracks of it.
    pub fn collective_group(&self) -> CollectiveGroup<'_> {
        let mut rec = self.rec_mut("Queue::collective_group");
        let id = CollectiveGroupId(rec.next_group);
        rec.next_group += 1;
        rec.sim.create_collective_group(id);
        CollectiveGroup { id, queue: self }
    }

    /// Records a task.
    ///
    /// # Errors
    /// A [`TaskError`] naming the task, buffer and region when the task cannot run as written (a range mapper
    /// outside its buffer, a reduction into a buffer of more than one element, …). A task over an empty index space
    /// (an extent 0) is no error: like an empty loop it runs nothing and touches nothing (a reduction over it gives
    /// the operation's identity).
    pub fn submit<const KD: usize>(&self, task: TaskBuilder<KD>) -> Result<TaskId, TaskError> {
        let mut parts = task.p;
        let id = self.submit_parts(&mut parts);
        // The builder's box serves this thread's next builder.
        parts.recycle();
        id
    }

    /// [`submit`](Self::submit) of a builder's parts, which it takes what it keeps out of.
    fn submit_parts(&self, task: &mut TaskParts) -> Result<TaskId, TaskError> {
        let mut rec = self.rec_mut("Queue::submit");
        // Accesses submitted before are shared rather than sent afresh (see `intern`); a new list is built in an
        // erased task's where the task graph kept one.
        let r = &mut *rec;
        let shared = r.cache.accesses(&task.accesses, || r.sim.tm.spare_access_list());
        let emptied = TaskSpec {
            accesses: shared,
            reductions: Vec::new(),
            side_effects: Vec::new(),
            name: None,
            payload: None,
            ..task.spec
        };
        let mut spec = std::mem::replace(&mut task.spec, emptied);
        // The spec takes the shared list, the parts keep the builder's (empty) one for the next builder.
        std::mem::swap(&mut spec.accesses, &mut task.spec.accesses);
        for r in &mut spec.reductions {
            r.id = ReductionId(rec.next_reduction);
            rec.next_reduction += 1;
        }
        // A closure where none runs, or none where one must (a dry run records host tasks without closures).
        let closure = match (spec.kind == TaskKind::DeviceCompute, task.host_fn.is_some()) {
            (true, true) => Some(
                "a kernel task (task::parallel_for) runs its kernel, not a host closure: its .run(closure) would never \
                 be called; submit the host code as a task of its own (task::host_for, host_once or host_collective)",
            ),
            // A kernel never sees a host object: the declaration would only order the task, and the program likely
            // means a host task's work to happen there.
            (true, false) if !spec.side_effects.is_empty() => Some(
                "a kernel task (task::parallel_for) cannot use a host object: its kernel runs on the GPU and never \
                 sees .side_effect(&object); declare the side effect on the host task that uses the object \
                 (task::host_for, host_once or host_collective)",
            ),
            (false, false) if self.runtime.is_some() => Some(
                "a host task without a closure: a running queue has nothing to run for it; give it one with \
                 .run(|ctx| ...) (only a dry run records host tasks without closures)",
            ),
            // Scalars and binding names are a kernel's: a host task would drop them unseen.
            (false, _) if !task.scalars.is_empty() || task.accessors.iter().any(|a| a.is_named()) => Some(
                "scalars (.scalar, .scalars, .scalar_f32, .scalar_i32, .scalar_value) and binding names (.bind) are \
                 for kernel tasks (task::parallel_for), and a host task would ignore them: its closure takes its \
                 values from what it captures, and its accessors by their index",
            ),
            _ => None,
        };
        if let Some(problem) = closure {
            return Err(TaskError {
                task: celer_scheduler::graph::TaskIdent { id: rec.sim.tm.next_task_id(), name: spec.name.clone() },
                inner: Box::new(celer_scheduler::graph::TaskErrorKind::HostClosure { problem }),
            });
        }
        if let Some(f) = task.host_fn.take() {
            // The closure's context checks the element type `data::<T>` asks for against each accessor's.
            let elements: Arc<[(ScalarType, u32)]> = task.accessors.iter().map(|a| a.element()).collect();
            let f: Arc<celer_scheduler::runtime::HostFn> = Arc::new(move |inner| f(inner, &elements));
            spec.payload = Some(Arc::new(HostPayload(f, std::mem::take(&mut task.objects))));
        }
        if let Some(name) = &task.pending_name {
            return Err(TaskError {
                task: celer_scheduler::graph::TaskIdent { id: rec.sim.tm.next_task_id(), name: spec.name.clone() },
                inner: Box::new(celer_scheduler::graph::TaskErrorKind::KernelNaming {
                    kernel: task.kernel.map_or_else(|| "(none)".into(), |(s, e)| format!("{}::{e}", s.name())),
                    problem: format!(".bind(\"{name}\") is followed by no accessor or reduction"),
                    hint: "call .bind(name) right before the .read/.write/.reduce it names",
                }),
            });
        }
        let combines = |i: usize| task.custom_reductions.get(i).is_some_and(Option::is_some);
        let running = self.runtime.is_some();
        task.noted.check(self.addr(), &spec, task.kernel, running, combines, |b| rec.sim.tm.buffer_ident(b)).map_err(
            |inner| TaskError {
                task: celer_scheduler::graph::TaskIdent { id: rec.sim.tm.next_task_id(), name: spec.name.clone() },
                inner,
            },
        )?;
        if let Some((source, entry)) = task.kernel {
            // Every rank agreed at start-up whether all devices run f64, so every rank refuses here alike.
            if source.needs_float64() && self.runtime.as_ref().is_some_and(|rt| !rt.capabilities().float64) {
                return Err(TaskError {
                    task: celer_scheduler::graph::TaskIdent { id: rec.sim.tm.next_task_id(), name: spec.name },
                    inner: Box::new(celer_scheduler::graph::TaskErrorKind::KernelNeedsFloat64 {
                        kernel: format!("{}::{entry}", source.name()),
                    }),
                });
            }
        }
        // Chunks start at whole workgroups where the kernel's results depend on them (also for a task whose checked
        // shape is reused: the alignment combines with the task's own granularity, which the shape does not hold).
        let entry_point = task.kernel.and_then(|(source, entry)| source.entry_point(entry));
        let blocks = entry_point.and_then(|ep| align_to_workgroups(ep, &mut spec));
        // The tree of blocks has no place for the buffer's old value: refuse here, naming the buffer, rather than
        // in the runtime.
        if let (Some(_), Some((source, entry))) = (blocks, task.kernel) {
            if let Some(r) = spec.reductions.iter().find(|r| r.include_current_value) {
                return Err(TaskError {
                    task: celer_scheduler::graph::TaskIdent { id: rec.sim.tm.next_task_id(), name: spec.name.clone() },
                    inner: Box::new(celer_scheduler::graph::TaskErrorKind::BlockReductionIncludingCurrentValue {
                        kernel: format!("{}::{entry}", source.name()),
                        buffer: rec.sim.tm.buffer_ident(r.buffer),
                    }),
                });
            }
        }
        // Split as the command graph will split it (over ranks × devices), with the granularity now final.
        let nodes = rec.sim.num_ranks();
        let sentinel = (!rec.warned_identity).then(|| task.noted.sentinel_warning(|b| rec.sim.tm.buffer_ident(b)));
        // What every rank's devices bind for one accessor, agreed at start-up (a dry run has no device).
        let max_bytes =
            self.runtime.as_ref().map_or(u64::MAX, |rt| u64::from(rt.capabilities().max_storage_buffer_range));
        task.noted.check_cells(&spec, task.kernel, nodes, max_bytes, |b| rec.sim.tm.buffer_ident(b)).map_err(
            |inner| TaskError {
                task: celer_scheduler::graph::TaskIdent { id: rec.sim.tm.next_task_id(), name: spec.name.clone() },
                inner,
            },
        )?;
        let key = task.kernel.map(|(source, entry)| KernelKey {
            source,
            entry,
            dims: spec.dims,
            accesses: &spec.accesses,
            accessors: &task.accessors,
            scalars: &task.scalars,
        });
        let cacheable = key.as_ref().is_some_and(|k| k.cacheable(spec.reductions.len()));
        // A task of a shape whose check passed before shares that check's payload (the check reads nothing else).
        let checked = key.as_ref().filter(|_| cacheable).and_then(|k| rec.cache.kernel(k));
        let shape = key.filter(|_| cacheable && checked.is_none()).map(|k| KernelShape::of(&k));
        if checked.is_some() {
            spec.payload = checked;
        } else if let Some((source, entry)) = task.kernel {
            let task_name = spec.name.clone();
            let mut kernel = crate::binding::KernelTask {
                spec: &mut spec,
                accessors: std::mem::take(&mut task.accessors),
                reductions: std::mem::take(&mut task.reductions),
                reduction_kinds: std::mem::take(&mut task.reduction_kinds),
                custom_reductions: std::mem::take(&mut task.custom_reductions),
            };
            let layout = check_kernel(source, entry, &mut kernel, &task.scalars, |b| rec.sim.tm.buffer_ident(b))
                .map_err(|inner| TaskError {
                    task: celer_scheduler::graph::TaskIdent { id: rec.sim.tm.next_task_id(), name: task_name },
                    inner,
                })?;
            let (reduction_kinds, custom_reductions) = (kernel.reduction_kinds, kernel.custom_reductions);
            let scalars = layout.fill(&task.scalars);
            // Every rank agreed at start-up on the devices' limits, so every rank refuses here alike (where the
            // dispatch failed on the runtime thread before). A shape cached above passed this once.
            let caps = self.runtime.as_ref().map(|rt| rt.capabilities());
            let bindings = spec.accesses.len() + spec.reductions.len();
            crate::binding::check_device_limits(source, entry, bindings, scalars.len(), caps).map_err(|inner| {
                TaskError {
                    task: celer_scheduler::graph::TaskIdent { id: rec.sim.tm.next_task_id(), name: spec.name.clone() },
                    inner,
                }
            })?;
            let payload =
                Arc::new(KernelPayload { source, entry, scalars, reduction_kinds, custom_reductions, blocks });
            if let Some(shape) = shape {
                rec.cache.remember_kernel(shape, layout, &payload);
            }
            spec.payload = Some(payload);
        }
        if let (Some((source, entry)), Some(ep)) = (task.kernel, entry_point) {
            let tm = &rec.sim.tm;
            // The task the next id names, for the errors of the checks below.
            let at_task = |inner| TaskError {
                task: celer_scheduler::graph::TaskIdent { id: tm.next_task_id(), name: spec.name.clone() },
                inner,
            };
            // The index space against the buffers the kernel stores to or loads from on every item: for a cached
            // shape too, whose index space and buffers may be another's. Through one_to_one (most such bindings)
            // the task graph refuses an access outside, naming the mapper: those cost no look-up here.
            let other_mapper =
                |&b: &u32| spec.accesses.get(b as usize).is_some_and(|a| !matches!(a.mapper, RangeMapper::OneToOne));
            if ep.stores_every_item.iter().chain(ep.loads_every_item).any(other_mapper) {
                crate::binding::check_item_stores(source, ep, &spec, |b| tm.buffer_shape(b), |b| tm.buffer_ident(b))
                    .map_err(at_task)?;
            }
            if !ep.item_offsets.is_empty() {
                crate::binding::check_item_offsets(source, ep, &spec, |b| tm.buffer_ident(b)).map_err(at_task)?;
            }
            if !ep.global_indexed.is_empty() {
                crate::binding::check_global_indexed(source, ep, &spec, |b| tm.buffer_ident(b)).map_err(at_task)?;
            }
            if !ep.cross_indexed.is_empty() {
                crate::binding::check_cross_indexed(source, ep, &spec, |b| tm.buffer_ident(b)).map_err(at_task)?;
            }
            if !ep.stores_one_cell_every_item.is_empty() && !spec.reductions.is_empty() {
                crate::binding::check_reduction_races(source, ep, &spec, |b| tm.buffer_ident(b)).map_err(at_task)?;
            }
            spec.atomic_accesses = crate::binding::atomic_accesses(source, entry, spec.accesses.len());
        }
        // The program's range mappers run here first: a panic in one names the task, and the mapper and buffer
        // its closure noted as it panicked (the queue's drop, on the way out, ends every rank).
        let task_ident = celer_scheduler::graph::TaskIdent { id: rec.sim.tm.next_task_id(), name: spec.name.clone() };
        let custom = spec.accesses.iter().any(|a| matches!(a.mapper, RangeMapper::Custom { .. }));
        // On one node, a write that two nodes would both make (refused there): warned about here, once.
        let overlap =
            if rec.warned_single_node_overlap { None } else { rec.sim.overlap_on_two_nodes(&spec).map(Box::new) };
        let id = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| rec.sim.submit(spec))) {
            Ok(id) => id?,
            Err(payload) => {
                let text = celer_scheduler::runtime::panic_text(&*payload);
                let whose = match celer_scheduler::graph::task::MapperPanic::take() {
                    Some(note) => note.describe(|b| rec.sim.tm.buffer_ident(b)),
                    None => "a range mapper (or celer itself)".to_string(),
                };
                celer_scheduler::logging::fatal(&format!("a panic in {whose} of {task_ident} being submitted: {text}"));
                std::panic::resume_unwind(payload)
            }
        };
        rec.after_submit();
        if let Some(Some(w)) = sentinel {
            let name = rec.sim.tm.task(id).map(|t| t.ident().to_string()).unwrap_or_else(|| id.to_string());
            log::warn!("In task {name}: {w}");
            rec.warned_identity = true;
        }
        if let Some(overlap) = overlap {
            log::warn!("{}", single_node_overlap_warning(&task_ident, &overlap));
            rec.warned_single_node_overlap = true;
        }
        if custom && !rec.warned_scattered {
            if let Some(w) = rec.scattered_warning(id) {
                log::warn!("{w}");
                rec.warned_scattered = true;
            }
        }
        if let Some(rt) = &self.runtime {
            rt.send(Message::Submit(rec.built(id)));
            rec.hold_back(rt);
        }
        Ok(id)
    }

    /// Records a fence that hands the buffer's contents back to the program through [`Fence::wait`].
    /// Like `submit`, it blocks while the runtime is far behind, and also while the fences recorded before it that
    /// the runtime has not yet answered read back more than
    /// [`FENCE_DATA_BACKLOG`](celer_scheduler::runtime::FENCE_DATA_BACKLOG) bytes.
    ///
    /// # Errors
    /// As [`submit`](Self::submit).
    pub fn fence<'q, T: Element, const D: usize>(
        &'q self,
        buffer: &Buffer<'q, T, D>,
    ) -> Result<Fence<T, D>, TaskError> {
        self.fence_with(buffer, RangeMapper::All, buffer.range)
    }

    /// Records a fence of the box `[offset, offset + range)` of the buffer: only those cells travel to every rank,
    /// and [`Fence::wait`] returns them in row-major order (Celerity's `fence(buffer, subrange)`).
    ///
    /// # Errors
    /// As [`submit`](Self::submit); a box outside the buffer is refused naming the fence task, buffer and box, an
    /// empty one too (`offset` beyond the extent along some dimension: `[100]` with range `[0]` in 16 cells; the end of
    /// the buffer, `[16]` with range `[0]`, is inside, as for a slice).
    ///
    /// # Examples
    /// The fence's [`TaskError`] converts into the [`Error`] that [`Fence::wait`] returns, so `?` carries both out
    /// of a function returning `celer::Error`, and `.map_err(Into::into)` chains them in one expression:
    /// ```
    /// use celer::{Buffer, Queue};
    /// fn first_rows(q: &Queue, u: &Buffer<'_, f32, 2>) -> Result<Vec<f32>, celer::Error> {
    ///     let fence = q.fence_subrange(u, [0, 0], [2, 8])?; // TaskError -> Error
    ///     fence.wait()
    /// }
    /// let q = Queue::dry_run();
    /// let u = q.buffer_from(&[1.0f32; 64], [8, 8]).named("u");
    /// let chained = q.fence_subrange(&u, [0, 0], [2, 8]).map_err(Into::into).and_then(|f| f.wait());
    /// // A dry run records the fences but has no data to hand back.
    /// assert!(matches!(chained, Err(celer::Error::DryRun(_))));
    /// assert!(matches!(first_rows(&q, &u), Err(celer::Error::DryRun(_))));
    /// // A box outside the buffer comes back as the fence's TaskError, converted.
    /// assert!(matches!(first_rows(&q, &q.buffer_from(&[0.0f32; 4], [1, 4])), Err(celer::Error::Task(_))));
    /// ```
    pub fn fence_subrange<'q, T: Element, const D: usize>(
        &'q self,
        buffer: &Buffer<'q, T, D>,
        offset: [usize; D],
        range: [usize; D],
    ) -> Result<Fence<T, D>, TaskError> {
        // (A buffer of another queue is refused by `fence_with`, naming it as its own queue does.)
        if crate::checks::overflows(&offset, &range) && std::ptr::eq(buffer.queue, self) {
            let rec = self.rec("Queue::fence_subrange");
            let inner = crate::checks::overflow_error(
                "the fenced box".into(),
                rec.sim.tm.buffer_ident(buffer.id),
                &offset,
                &range,
                celer_scheduler::graph::BufferExtent::new(&buffer.range),
            );
            let task = celer_scheduler::graph::TaskIdent { id: rec.sim.tm.next_task_id(), name: None };
            return Err(TaskError { task, inner: Box::new(inner) });
        }
        if std::ptr::eq(buffer.queue, self) {
            let rec = self.rec("Queue::fence_subrange");
            let ident = rec.sim.tm.buffer_ident(buffer.id);
            let what = || "the fenced box".to_string();
            let outside = crate::checks::empty_outside(what, ident.clone(), &offset, &range, &buffer.range)
                .or_else(|| crate::checks::fenced_outside(ident, &offset, &range, &buffer.range));
            if let Some(inner) = outside {
                let task = celer_scheduler::graph::TaskIdent { id: rec.sim.tm.next_task_id(), name: None };
                return Err(TaskError { task, inner: Box::new(inner) });
            }
        }
        self.fence_with(buffer, RangeMapper::Fixed(GridBox::from_subrange(&offset, &range)), range)
    }

    fn fence_with<'q, T: Element, const D: usize>(
        &'q self,
        buffer: &Buffer<'q, T, D>,
        mapper: RangeMapper,
        range: [usize; D],
    ) -> Result<Fence<T, D>, TaskError> {
        if !std::ptr::eq(buffer.queue, self) {
            let rec = self.rec("Queue::fence");
            let inner = Box::new(celer_scheduler::graph::TaskErrorKind::ForeignResource {
                resource: crate::checks::Resource::Buffer(buffer.id).to_string(),
            });
            return Err(TaskError {
                task: celer_scheduler::graph::TaskIdent { id: rec.sim.tm.next_task_id(), name: None },
                inner,
            });
        }
        let fenced = match &mapper {
            RangeMapper::Fixed(b) => *b,
            _ => GridBox::from_extent(&buffer.range),
        };
        let mut spec = TaskSpec::new(TaskKind::Fence, 0, GridBox::from_extent(&[]));
        std::sync::Arc::make_mut(&mut spec.accesses).push(celer_scheduler::graph::BufferAccess {
            buffer: buffer.id,
            mode: AccessMode::Read,
            mapper,
        });
        let mut rec = self.rec_mut("Queue::fence");
        let fenced = (buffer.id, rec.sim.tm.buffer_ident(buffer.id), fenced);
        let task = rec.sim.submit(spec)?;
        rec.after_submit();
        let data = self.runtime.as_ref().map(|rt| {
            let (tx, rx) = mpsc::sync_channel(1);
            rt.send(Message::Fence(rec.built(task), tx));
            // A fence is a task like any other: the program must not get further ahead of the runtime with
            // fences it does not wait for than with tasks (each queued fence holds its task's records).
            rec.hold_back(rt);
            let bytes = fenced.2.area() as u64 * std::mem::size_of::<T>() as u64;
            rec.hold_back_fence(rt, bytes);
            (rx, rt.watch())
        });
        Ok(Fence { task, range, fenced, data, _element: PhantomData })
    }

    /// A copy of this rank's instance of `object` once every host task submitted before with a side effect on it
    /// has run (a collective host task that clones it, so every rank gets its own instance's value).
    ///
    /// # Errors
    /// As [`submit`](Self::submit); [`Error::DryRun`] in a dry run.
    pub fn fence_object<T: Clone + Send + 'static>(&self, object: &HostObject<'_, T>) -> Result<T, Error> {
        let (tx, rx) = mpsc::sync_channel(1);
        let tx = std::sync::Mutex::new(Some(tx));
        let id = self
            .submit(task::host_collective().side_effect(object).name("fence_object").run(move |ctx| {
                let value = ctx.with_object::<T, T>(0, |v| v.clone());
                if let Some(tx) = tx.lock().unwrap_or_else(|p| p.into_inner()).take() {
                    let _ = tx.send(value);
                }
            }))
            .map_err(|e| Error::Task(Box::new(e)))?;
        let Some(rt) = &self.runtime else { return Err(Error::DryRun(id)) };
        rt.watch().recv(&rx).map_err(|_| Error::Stopped(id))
    }

    /// Records an epoch and, when running, blocks until everything submitted before it has completed.
    #[track_caller]
    pub fn wait(&self) -> TaskId {
        self.epoch(EpochAction::None)
    }

    /// Like [`wait`](Self::wait), and every rank meets at a barrier.
    #[track_caller]
    pub fn barrier(&self) -> TaskId {
        self.epoch(EpochAction::Barrier)
    }

    #[track_caller]
    fn epoch(&self, action: EpochAction) -> TaskId {
        let call = if action == EpochAction::Barrier { "Queue::barrier" } else { "Queue::wait" };
        let id = self.rec_mut(call).epoch(action);
        if let Some(rt) = &self.runtime {
            let (tx, rx) = mpsc::sync_channel(1);
            rt.send(Message::Epoch(action, tx));
            // The runtime aborts the process on errors, so a closed channel only means it is gone already.
            let _ = rt.watch().recv(&rx);
            // The runtime thread has let go of the tasks before the epoch: what they held goes now.
            self.rec_mut(call).sim.tm.release_erased_tasks();
        }
        id
    }

    /// The task graph so far (the tasks not yet pruned) as Graphviz DOT.
    pub fn task_graph_dot(&self) -> String {
        self.rec("Queue::task_graph_dot").sim.tm.to_dot()
    }

    /// Every simulated rank's command graph as Graphviz DOT (needs [`QueueBuilder::record_commands`]). A queue that
    /// runs the program simulates no rank (the runtime thread builds this rank's command graph; `CELER_DUMP_GRAPHS`
    /// writes it), so its DOT holds no command.
    pub fn command_graphs_dot(&self) -> String {
        self.rec("Queue::command_graphs_dot").sim.command_graphs_dot()
    }

    /// Per simulated rank, how many commands of each kind it generated (needs [`QueueBuilder::record_commands`];
    /// empty for a queue that runs the program, which simulates no rank).
    pub fn command_counts(&self) -> Vec<std::collections::BTreeMap<&'static str, usize>> {
        let rec = self.rec("Queue::command_counts");
        rec.sim
            .ranks
            .iter()
            .map(|g| {
                let mut counts = std::collections::BTreeMap::new();
                for c in g.records() {
                    *counts.entry(c.kind.name()).or_insert(0) += 1;
                }
                counts
            })
            .collect()
    }

    /// Number of tasks currently held in memory.
    pub fn live_tasks(&self) -> usize {
        self.rec("Queue::live_tasks").sim.tm.live_task_count()
    }
}

/// The number of cells of a buffer of extent `range`; panics at the caller if its size in bytes overflows. A zero
/// extent makes the buffer empty whatever the other extents are and in whichever order they come (multiplying left
/// to right would overflow on `[2^40, 2^40, 0]` before reaching the zero).
#[track_caller]
fn check_buffer_size<T, const D: usize>(range: [usize; D]) -> usize {
    let cells = crate::checks::cells(&range);
    match cells.filter(|c| c.checked_mul(std::mem::size_of::<T>()).is_some_and(|b| b <= isize::MAX as usize)) {
        Some(cells) => cells,
        None => panic!(
            "a buffer of extent {range:?} of {}-byte elements is too large: its size in bytes overflows (at most {})",
            std::mem::size_of::<T>(),
            isize::MAX
        ),
    }
}

/// The panic of a queue call made while the same thread is inside another call of that queue (see
/// [`Queue::rec_mut`]); without it, `RefCell`'s "already borrowed" named nothing of the program's.
#[cold]
#[track_caller]
fn reentered(call: &str) -> ! {
    panic!(
        "{call} was called while this thread is inside another call of the same Queue (Queue::submit applying a \
         custom range mapper or checking a reduce_with combine, Queue::wait releasing the closures of finished \
         tasks, a handle's drop): program code that celer runs must not use the queue, e.g. through a thread_local \
         or a leaked &'static Queue (a queue is not re-entrant); return what the code needs to the program and make \
         the call after the outer one has returned"
    )
}

impl Drop for Queue {
    fn drop(&mut self) {
        self.rec.get_mut().epoch(EpochAction::Shutdown);
        if let Some(mut rt) = self.runtime.take() {
            rt.shutdown();
        }
    }
}

impl fmt::Debug for Queue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.rec.try_borrow() {
            Ok(rec) => f.debug_struct("Queue").field("tasks", &rec.sim.tm).finish(),
            Err(_) => f.debug_struct("Queue").finish_non_exhaustive(),
        }
    }
}

/// The warning of a task whose writes a run of one node takes, but a run of two nodes refuses ([`Simulation::overlap_on_two_nodes`]).
fn single_node_overlap_warning(
    task: &celer_scheduler::graph::TaskIdent,
    overlap: &celer_scheduler::graph::TaskErrorKind,
) -> String {
    format!(
        "In {task}: this run has one node (one rank with one device), which runs the task as one chunk, but on \
         two ranks or more (or with CELER_DEVICES=2) submit refuses it: {overlap}. A histogram or counter that all \
         items update through atomics needs a row of its own per block of items (a custom mapper and a granularity \
         of whole blocks), summed by a second task (docs/GUIDE.md, \"How the race check works\"); a single value \
         is a reduction"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access;

    /// The scalar words of task `id`'s kernel payload, and the payload.
    fn payload(q: &Queue, id: TaskId) -> Arc<dyn std::any::Any + Send + Sync> {
        let rec = q.rec.borrow();
        let task = rec.sim.tm.task(id).expect("a live task");
        Arc::clone(task.spec.payload.as_ref().expect("a kernel task has a payload"))
    }

    fn words(p: &Arc<dyn std::any::Any + Send + Sync>) -> Vec<u32> {
        p.downcast_ref::<KernelPayload>().expect("a kernel payload").scalars.to_vec()
    }

    #[test]
    fn a_task_of_a_checked_shape_pushes_its_own_scalar_values() {
        let q = Queue::dry_run();
        let (a, b) = (q.buffer_from(&[0.0f32; 16], [16]), q.buffer::<f32, 1>([16]));
        let heat = Kernel::wgsl(&crate::kernels::HEAT_1D, "main").expect("heat_1d::main");
        let step = |alpha: f32| {
            q.submit(
                task::parallel_for(&heat, [16])
                    .read(&a, access::neighborhood([1]))
                    .discard_write(&b, access::one_to_one())
                    .scalar_f32(alpha),
            )
            .expect("a valid task")
        };
        let first = payload(&q, step(0.1));
        assert_eq!(words(&first), vec![0.1f32.to_bits()]);
        let same = payload(&q, step(0.1));
        assert!(Arc::ptr_eq(&first, &same), "the same values share the checked task's payload");
        let other = payload(&q, step(0.25));
        assert_eq!(words(&other), vec![0.25f32.to_bits()], "a task of a checked shape pushes its own values");
        assert_eq!(words(&first), vec![0.1f32.to_bits()], "and leaves the earlier task's alone");
        assert_eq!(words(&payload(&q, step(0.1))), vec![0.1f32.to_bits()]);
        // A value of another type is another shape, checked again (and refused: `alpha` is an f32).
        let wrong = q.submit(
            task::parallel_for(&heat, [16])
                .read(&a, access::neighborhood([1]))
                .discard_write(&b, access::one_to_one())
                .scalar_i32(1),
        );
        assert!(wrong.unwrap_err().to_string().contains("but the task gives it an i32"));
    }

    #[test]
    fn a_maximum_from_zero_is_refused_naming_the_task_buffer_identity_and_probe() {
        let q = Queue::dry_run();
        let data = q.buffer_from(&[-3i32, -5, -7, -9], [4]).named("data");
        let top = q.buffer::<i32, 1>([1]).named("top");
        let max = Kernel::wgsl(&crate::kernels::REDUCE_I32, "reduce_max").expect("reduce_i32::reduce_max");
        let submit = |identity: i32| {
            q.submit(
                task::parallel_for(&max, [4])
                    .read(&data, access::one_to_one())
                    .reduce_with(&top, identity, |a, b| a.max(b))
                    .name("top_of_negatives"),
            )
        };
        let msg = submit(0).expect_err("0 is no identity of a maximum").to_string();
        for part in [
            "task T1 \"top_of_negatives\"",
            "buffer B1 \"top\"",
            "from the identity 0",
            "combine(0, -1) = 0, not -1",
            "i32::MIN for a maximum",
        ] {
            assert!(msg.contains(part), "the error lacks {part:?}: {msg}");
        }
        submit(i32::MIN).expect("i32::MIN is the identity of a maximum");
    }

    #[test]
    fn a_queue_reached_again_from_a_custom_mapper_panics_naming_the_call_not_refcell() {
        thread_local! {
            static QUEUE: std::cell::OnceCell<&'static Queue> = const { std::cell::OnceCell::new() };
        }
        let q: &'static Queue = Box::leak(Box::new(Queue::dry_run()));
        QUEUE.with(|cell| cell.set(q).expect("set once"));
        let a = q.buffer_from(&[1.0f32; 16], [16]).named("a");
        let reenter = access::custom("reenter", |chunk: &crate::GridBox<1>, _: &crate::GridBox<1>| {
            QUEUE.with(|cell| cell.get().map(|q| q.ranks()));
            crate::Region::from(*chunk)
        });
        let submitted = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            q.submit(task::host_for([16]).read(&a, reenter).name("reentrant").run(|_| {}))
        }));
        let payload = submitted.expect_err("the re-entry panics");
        let msg = payload.downcast_ref::<String>().cloned().unwrap_or_default();
        assert!(
            msg.contains("Queue::ranks was called while this thread is inside another call of the same Queue"),
            "the panic names the call and the re-entry: {msg:?}"
        );
        // The queue goes on: the outer call let go of it while unwinding.
        assert_eq!(q.ranks(), 1);
    }
}
