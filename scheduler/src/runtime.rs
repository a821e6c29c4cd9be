//! The per-rank runtime: one thread that owns MPI, the GPU, the task and command graphs, and runs commands.
//!
//! - The application thread only sends [`Message`]s through a lock-free [`SegQueue`]; answers (fence data, reached
//!   epochs) come back on one-shot channels, which only `wait`-style calls block on.
//! - The runtime thread runs [`RankLoop::step`] in a loop: take new messages → build the task and command graphs →
//!   progress the command at the head of the queue → poll the GPU and MPI. Nothing blocks; it spins (with
//!   `spin_loop` hints) while waiting for completions.
//! - MPI is initialised on the runtime thread with `MPI_THREAD_FUNNELED`: it is the only thread that calls MPI.
//! - A rank that drives several devices (`CELER_DEVICES`) runs one [`RankLoop`] per device on the same thread, each
//!   a node of the command graph (node `rank × devices + device`) with its own communicator, transfer engine and
//!   GPU: the task's split over nodes splits the rank's chunk over its devices, and data moves between devices
//!   like between ranks (through MPI, which copies within the process).
//!
//! Commands start **out of order**, as soon as their dependencies allow (see [`RankLoop::step`]); several GPU
//! batches, receives and sends are in flight at once, and dependent kernels are submitted back to back. Memory:
//! each buffer has at most one device allocation per rank, allocated when a command first touches the buffer and
//! covering the bounding box of what this rank's commands touched so far; a command that needs more grows it
//! with a device copy (`RankLoop::cover`). Transfers move packed boxes (a push sends its download, an
//! await-push uploads the pieces as they arrived), never a host copy of the whole buffer.
//! A kernel that waits for data from other ranks first runs the part of its chunk that needs none of it (its
//! interior, `RankLoop::start_interior`; `CELER_OVERLAP`), so halo exchanges overlap computation.
//! An allocation also covers what the queued commands (`CELER_LOOKAHEAD` of them) will need of the buffer, so an
//! access pattern that widens over the next steps allocates once.

use std::collections::VecDeque;
use std::sync::mpsc;
use std::sync::Arc;

use celer_exec::gpu::{Access, Box3, DeviceAllocation, Gpu, Launch, OpKind};
use celer_exec::mpi::Communicator;
use celer_exec::shaders::KernelSource;
use celer_exec::transfer::{AllocLayout, CompletionKind, Token, TransferEngine, TransferKey};
use celer_graph::{
    AccessMode, BufferId, Command, CommandId, CommandKind, DependencyKind, EpochAction, GridBox, NodeId, ReductionId,
    ReductionOp, Region, TaskError, TaskId, TaskKind, TaskManager, TaskManagerConfig, TaskSpec,
};
use crossbeam_queue::SegQueue;
use hashbrown::HashMap;

use crate::cdag::{CdagConfig, CommandGraphGenerator};
use crate::config::RuntimeConfig;
use crate::divergence::{read_check, StreamHash};
use crate::startup::StartError;

/// The element type of a reduction result, which decides how partial results combine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScalarKind {
    /// `i32`.
    I32,
    /// `u32`.
    U32,
    /// `i64`.
    I64,
    /// `u64`.
    U64,
    /// `f32`.
    F32,
    /// `f64`.
    F64,
}

macro_rules! reduce_as {
    ($kind:expr, $op:expr, $bytes:expr, $($k:ident => $t:ty),*) => {
        match $kind { $(ScalarKind::$k => {
            let vals = $bytes.iter().map(|b: &&[u8]| <$t>::from_ne_bytes((*b).try_into().expect("one element")));
            let r = match $op {
                ReductionOp::Sum => vals.fold(0 as $t, |a, b| a + b),
                ReductionOp::Min => vals.fold(<$t>::MAX, |a, b| if b < a { b } else { a }),
                ReductionOp::Max => vals.fold(<$t>::MIN, |a, b| if b > a { b } else { a }),
                // Custom reductions fold with their own function (`ReductionInfo::combine`), never here.
                ReductionOp::Custom => vals.fold(0 as $t, |a, _| a),
            };
            r.to_ne_bytes().to_vec()
        })* }
    };
}

impl ScalarKind {
    /// Bytes of one element.
    pub fn size(self) -> usize {
        match self {
            ScalarKind::I32 | ScalarKind::U32 | ScalarKind::F32 => 4,
            _ => 8,
        }
    }

    /// The identity of `op` (what a rank's partial starts from).
    fn identity(self, op: ReductionOp) -> Vec<u8> {
        self.combine(op, &[])
    }

    /// Folds `parts` (one element each, in rank order) with `op`, starting from the identity.
    fn combine(self, op: ReductionOp, parts: &[&[u8]]) -> Vec<u8> {
        // Float min/max start from the largest/smallest finite values, which any real number beats.
        reduce_as!(self, op, parts, I32 => i32, U32 => u32, I64 => i64, U64 => u64, F32 => f32, F64 => f64)
    }
}

/// How a user-defined reduction combines two elements (their bytes) into one.
pub type CombineFn = dyn Fn(&[u8], &[u8]) -> Vec<u8> + Send + Sync;

/// A user-defined reduction's host side: the identity every rank's partial result starts from, and how two results
/// combine (one element each, as bytes); the runtime folds the ranks' partials with it in rank order.
#[derive(Clone)]
pub struct CustomReduction {
    /// The identity element's bytes.
    pub identity: Vec<u8>,
    /// Combines two elements' bytes into one.
    pub combine: Arc<CombineFn>,
}

impl std::fmt::Debug for CustomReduction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CustomReduction").field("identity", &self.identity).finish_non_exhaustive()
    }
}

/// What the runtime knows of a reduction: its operator and element type, and for user-defined ones how to combine.
#[derive(Clone, Debug)]
struct ReductionInfo {
    op: ReductionOp,
    kind: ScalarKind,
    custom: Option<CustomReduction>,
}

impl ReductionInfo {
    /// The identity a rank's partial result starts from.
    fn identity(&self) -> Vec<u8> {
        match &self.custom {
            Some(c) => c.identity.clone(),
            None => self.kind.identity(self.op),
        }
    }

    /// Folds `parts` (one element each, in rank order), starting from the identity.
    fn combine(&self, parts: &[&[u8]]) -> Vec<u8> {
        match &self.custom {
            Some(c) => parts.iter().fold(c.identity.clone(), |acc, p| (c.combine)(&acc, p)),
            None => self.kind.combine(self.op, parts),
        }
    }
}

/// What a device-compute task runs: a WGSL kernel compiled at build time, and its scalar arguments.
#[derive(Debug, Clone)]
pub struct KernelPayload {
    /// The compiled kernel file.
    pub source: &'static KernelSource,
    /// The entry point.
    pub entry: &'static str,
    /// Scalars pushed after the accessor windows (u32 words; pass `f32` as `to_bits`).
    pub scalars: Vec<u32>,
    /// The element type of each of the task's reductions, in order. A reduction's buffer binds after the accessors;
    /// it holds the operation's identity (or, on rank 0, the current value when that is included) when the kernel
    /// starts, and the kernel combines its items into element 0 (e.g. with atomics).
    pub reduction_kinds: Vec<ScalarKind>,
    /// For each of the task's reductions, in order: how a user-defined one ([`ReductionOp::Custom`]) combines.
    pub custom_reductions: Vec<Option<CustomReduction>>,
}

/// The closure a host task runs, on the host worker thread.
pub type HostFn = dyn Fn(&mut HostContext) + Send + Sync;

/// A host object's value as the runtime carries it: one instance per rank, shared between the application thread
/// and the host tasks that declare a side effect on it (which the task graph runs one at a time, in order).
pub type SharedObject = Arc<std::sync::Mutex<dyn std::any::Any + Send>>;

/// What a host task runs: the closure and the host objects it has side effects on (in declaration order).
#[derive(Clone)]
pub struct HostPayload(pub Arc<HostFn>, pub Vec<SharedObject>);

impl std::fmt::Debug for HostPayload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HostPayload(..)")
    }
}

/// One accessor's data as a host task sees it: the bounding box of what its chunk maps to, row-major.
#[derive(Debug)]
struct HostView {
    buffer: BufferId,
    bounds: GridBox,
    elem_size: usize,
    bytes: Vec<u8>,
    produces: bool,
}

/// What a host task's closure gets: its chunk, and per accessor (in declaration order) the cells it maps to.
///
/// Read accessors hold the buffer's current contents; write accessors start zeroed and everything in their box
/// is written back when the closure returns (so a write accessor must cover exactly the cells the task owns).
#[derive(Debug)]
pub struct HostContext {
    chunk: GridBox,
    rank: usize,
    ranks: usize,
    views: Vec<HostView>,
    objects: Vec<SharedObject>,
}

impl HostContext {
    /// The part of the task's index space this invocation handles.
    pub fn chunk(&self) -> GridBox {
        self.chunk
    }

    /// This rank and the number of ranks.
    pub fn rank(&self) -> (usize, usize) {
        (self.rank, self.ranks)
    }

    /// The box of buffer cells accessor `i` holds.
    ///
    /// # Panics
    /// If the task has no accessor `i`.
    pub fn bounds(&self, i: usize) -> GridBox {
        self.views[i].bounds
    }

    /// Accessor `i`'s cells as a slice of `T` (row-major over [`bounds`](Self::bounds)).
    ///
    /// `T` is plain old data ([`bytemuck::Pod`]): every bit pattern is a valid `T` (so not `bool` or references).
    ///
    /// # Panics
    /// If the task has no accessor `i`, or `T`'s size is not the buffer's element size.
    pub fn data<T: bytemuck::Pod>(&self, i: usize) -> &[T] {
        let v = &self.views[i];
        assert_eq!(std::mem::size_of::<T>(), v.elem_size, "accessor {i} holds {}-byte elements", v.elem_size);
        assert_eq!(v.bytes.as_ptr().align_offset(std::mem::align_of::<T>()), 0, "host view is not aligned");
        let n = v.bytes.len() / v.elem_size;
        bytemuck::cast_slice(&v.bytes[..n * v.elem_size])
    }

    /// Runs `f` on host object `i` (in the order the task declared its side effects).
    ///
    /// # Panics
    /// If the task has no side effect `i`, or the object is not a `T`.
    pub fn with_object<T: 'static, R>(&self, i: usize, f: impl FnOnce(&mut T) -> R) -> R {
        let mut guard = self.objects[i].lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        f(guard.downcast_mut::<T>().expect("host object of another type"))
    }

    /// Accessor `i`'s cells, writable; written back to the buffer after the closure returns (write accessors only).
    ///
    /// # Panics
    /// As [`data`](Self::data), and if accessor `i` only reads.
    pub fn data_mut<T: bytemuck::Pod>(&mut self, i: usize) -> &mut [T] {
        let v = &mut self.views[i];
        assert!(v.produces, "accessor {i} of this host task only reads; declare it write or read_write");
        assert_eq!(std::mem::size_of::<T>(), v.elem_size, "accessor {i} holds {}-byte elements", v.elem_size);
        assert_eq!(v.bytes.as_ptr().align_offset(std::mem::align_of::<T>()), 0, "host view is not aligned");
        let n = v.bytes.len() / v.elem_size;
        bytemuck::cast_slice_mut(&mut v.bytes[..n * v.elem_size])
    }
}

/// A host task for the worker thread.
struct HostJob {
    cmd: CommandId,
    f: Arc<HostFn>,
    ctx: HostContext,
}

/// The host worker: one thread that runs host tasks so a long one never stalls MPI progress or GPU submission.
/// Jobs and results travel through lock-free queues; the loop unparks the worker when it hands it a job.
struct HostWorker {
    jobs: Arc<SegQueue<HostJob>>,
    done: Arc<SegQueue<(CommandId, Result<HostContext, String>)>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl HostWorker {
    fn start() -> Self {
        let jobs: Arc<SegQueue<HostJob>> = Arc::new(SegQueue::new());
        let done = Arc::new(SegQueue::new());
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (j, d, st) = (Arc::clone(&jobs), Arc::clone(&done), Arc::clone(&stop));
        let thread = std::thread::Builder::new()
            .name("celer-host".into())
            .spawn(move || loop {
                while let Some(mut job) = j.pop() {
                    let f = Arc::clone(&job.f);
                    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&mut job.ctx)));
                    d.push((job.cmd, result.map(|()| job.ctx).map_err(|_| "the host task panicked".to_string())));
                }
                if st.load(std::sync::atomic::Ordering::Acquire) {
                    return;
                }
                std::thread::park_timeout(std::time::Duration::from_millis(1));
            })
            .expect("starting the host worker thread");
        Self { jobs, done, stop, thread: Some(thread) }
    }

    fn submit(&self, job: HostJob) {
        self.jobs.push(job);
        if let Some(t) = &self.thread {
            t.thread().unpark();
        }
    }
}

impl Drop for HostWorker {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Release);
        if let Some(t) = self.thread.take() {
            t.thread().unpark();
            let _ = t.join();
        }
    }
}

/// What one rank's runtime did so far: work done, bytes moved, and how its loop spent its time.
#[derive(Debug, Clone, Default)]
pub struct RankStats {
    /// This rank.
    pub rank: usize,
    /// Tasks recorded (user tasks, horizons, epochs).
    pub tasks: u64,
    /// Commands run.
    pub commands: u64,
    /// Kernel dispatches.
    pub kernels: u64,
    /// GPU batches submitted for kernels (each holds the kernels started in one loop step).
    pub kernel_batches: u64,
    /// Host tasks run.
    pub host_tasks: u64,
    /// Kernels whose interior ran before the data they awaited from other ranks arrived (`CELER_OVERLAP`); the
    /// rest of their chunk ran later, so they count two or more dispatches in `kernels`.
    pub early_interiors: u64,
    /// Times a buffer's device allocation grew (beyond its first) to cover what a command needed.
    pub growths: u64,
    /// Bytes of device memory this rank's buffers hold now (each buffer's allocation covers what this rank's
    /// commands touched, not the whole buffer).
    pub device_bytes: u64,
    /// Bytes of buffer data sent to other ranks.
    pub bytes_sent: u64,
    /// Bytes of buffer data received from other ranks.
    pub bytes_received: u64,
    /// Time from submitting each kernel batch to seeing it complete, summed (GPU time plus queueing; batches in
    /// flight together overlap, so this can exceed wall time).
    pub kernel_time: std::time::Duration,
    /// Time from posting each await-push to the data's arrival, summed (waiting for other ranks).
    pub receive_time: std::time::Duration,
    /// Time the loop spent in steps that made progress (scheduling, submitting, copying).
    pub busy: std::time::Duration,
    /// Time the loop spent polling with nothing to do but wait for the GPU, the network or the host worker.
    pub idle: std::time::Duration,
}

/// The warning for a rank whose loop was busier than its GPU: scheduler-bound (tasks too small for the runtime's
/// per-task cost), if the statistics of a long enough run say so: at least 1000 kernels, the loop busy more than
/// half the time, kernels in flight less than half, and under 200 µs of loop time per kernel.
pub fn scheduler_bound_warning(stats: &RankStats) -> Option<String> {
    let wall = (stats.busy + stats.idle).as_secs_f64();
    let (busy, gpu) = (stats.busy.as_secs_f64(), stats.kernel_time.as_secs_f64());
    // Loop time per kernel beyond a fraction of a millisecond is not scheduling but something blocking (buffer
    // creation, host-side copies): no verdict then.
    let per_kernel = busy / stats.kernels.max(1) as f64;
    (stats.kernels >= 1000 && wall > 0.0 && busy > 0.5 * wall && gpu < 0.5 * wall && per_kernel < 200e-6).then(|| {
        format!(
            "scheduler-bound: the runtime loop was busy {:.0}% of the time while kernels were in flight {:.0}% \
             ({} kernels, {:.1} µs of loop time each): the GPU waited for the scheduler; fewer, larger tasks help",
            100.0 * busy / wall,
            100.0 * gpu / wall,
            stats.kernels,
            1e6 * busy / stats.kernels as f64
        )
    })
}

impl RankStats {
    /// Adds `other`'s counts and times to these (the loops of one rank's devices, `CELER_DEVICES`).
    pub fn absorb(&mut self, other: &RankStats) {
        self.tasks = self.tasks.max(other.tasks);
        self.commands += other.commands;
        self.kernels += other.kernels;
        self.kernel_batches += other.kernel_batches;
        self.host_tasks += other.host_tasks;
        self.early_interiors += other.early_interiors;
        self.growths += other.growths;
        self.device_bytes += other.device_bytes;
        self.bytes_sent += other.bytes_sent;
        self.bytes_received += other.bytes_received;
        self.kernel_time += other.kernel_time;
        self.receive_time += other.receive_time;
        self.busy += other.busy;
        self.idle += other.idle;
    }

    /// A table of where the rank's time went, printed at shutdown when `CELER_LOG` is `info` or more detailed.
    pub fn summary(&self) -> String {
        let wall = (self.busy + self.idle).as_secs_f64().max(1e-9);
        let pct = |d: std::time::Duration| 100.0 * d.as_secs_f64() / wall;
        format!(
            "summary of rank {} over {wall:.3} s of loop time:\n\
             \x20 loop busy (scheduling, submitting, copying) {:8.3} s {:5.1}%\n\
             \x20 loop idle (waiting for GPU, network, host)  {:8.3} s {:5.1}%\n\
             \x20 GPU batches in flight (summed)               {:8.3} s {:5.1}%\n\
             \x20 await-pushes pending (summed)                {:8.3} s {:5.1}%\n\
             \x20 {} tasks ({:.0}/s), {} commands ({:.0}/s), {} kernels in {} batches ({} interiors run early), {} \
             host tasks\n\
             \x20 sent {} B, received {} B; device memory {} B, allocations grew {} times",
            self.rank,
            self.busy.as_secs_f64(),
            pct(self.busy),
            self.idle.as_secs_f64(),
            pct(self.idle),
            self.kernel_time.as_secs_f64(),
            pct(self.kernel_time),
            self.receive_time.as_secs_f64(),
            pct(self.receive_time),
            self.tasks,
            self.tasks as f64 / wall,
            self.commands,
            self.commands as f64 / wall,
            self.kernels,
            self.kernel_batches,
            self.early_interiors,
            self.host_tasks,
            self.bytes_sent,
            self.bytes_received,
            self.device_bytes,
            self.growths
        )
    }
}

impl std::fmt::Display for RankStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "rank {}: {} tasks, {} commands, {} kernels in {} batches, {} host tasks; sent {} B, received {} B; \
             kernels {:.3} s, receives {:.3} s; loop busy {:.3} s, idle {:.3} s",
            self.rank,
            self.tasks,
            self.commands,
            self.kernels,
            self.kernel_batches,
            self.host_tasks,
            self.bytes_sent,
            self.bytes_received,
            self.kernel_time.as_secs_f64(),
            self.receive_time.as_secs_f64(),
            self.busy.as_secs_f64(),
            self.idle.as_secs_f64()
        )
    }
}

/// A message from the application thread to the runtime thread.
#[derive(Debug)]
pub enum Message {
    /// A new buffer, with its initial contents (row-major bytes of the whole extent) if any.
    CreateBuffer {
        /// Id.
        id: BufferId,
        /// Dimensionality.
        dims: usize,
        /// Extent.
        extent: GridBox,
        /// Bytes per element.
        elem_size: usize,
        /// Initial contents.
        data: Option<Vec<u8>>,
        /// Debug name.
        name: Option<String>,
    },
    /// The program named the buffer (for messages and graph dumps).
    NameBuffer(BufferId, String),
    /// The buffer is dropped by the program.
    DestroyBuffer(BufferId),
    /// A new host object.
    CreateHostObject(celer_graph::HostObjectId),
    /// The host object is dropped by the program.
    DestroyHostObject(celer_graph::HostObjectId),
    /// A task to record and run.
    Submit(TaskSpec),
    /// A fence task; its data (row-major bytes of the fenced box) is sent back once it ran.
    Fence(TaskSpec, mpsc::SyncSender<Result<Vec<u8>, String>>),
    /// An epoch; the sender fires once everything before it has run.
    Epoch(EpochAction, mpsc::SyncSender<()>),
    /// A snapshot of the rank's [`RankStats`].
    Stats(mpsc::SyncSender<RankStats>),
}

/// A kernel dispatch whose command started in this step, recorded with the other GPU work of the step into one
/// batch.
struct PreparedKernel {
    kernel: celer_exec::gpu::KernelId,
    launch: Launch,
    accesses: Vec<(BufferId, AccessMode)>,
    scalars: Vec<u32>,
    /// Reduction buffers to reset to the operation's identity first.
    identities: Vec<(BufferId, Vec<u8>)>,
    /// Names rank, command and task in errors.
    context: String,
    /// With `CELER_CHECK_BOUNDS`: what the checked dispatch compares against and names in its report.
    check: Option<Box<CheckInfo>>,
}

/// What a checked kernel dispatch (`CELER_CHECK_BOUNDS`) declared, to check its accesses against and to name in the
/// report.
#[derive(Clone)]
struct CheckInfo {
    /// Per accessor (then reduction), in binding order: the bounding box of the region its range mapper gave for
    /// this chunk (the whole buffer for a reduction).
    declared: Vec<GridBox>,
    /// Per accessor: how to name it, e.g. `read of buffer B0 "src" through one_to_one`.
    names: Vec<String>,
    /// Per accessor: its buffer.
    buffers: Vec<BufferId>,
    /// `task T1 "shift" (C3 on N0, kernel shift::main, chunk [0] - [32])`.
    what: String,
}

/// A checked dispatch's bounds record, downloaded with its batch and read once that completes.
struct PendingCheck {
    batch: celer_exec::gpu::BatchId,
    download: celer_exec::gpu::DownloadId,
    record: DeviceAllocation,
    info: Box<CheckInfo>,
}

/// GPU work a command started in this loop step. The step collects all of it and submits it as one batch at its
/// end ([`RankLoop::flush`]), in the order the commands started, so a step that uploads a received halo, runs the
/// kernels that read it and downloads what the next push sends costs one submission, not three.
enum GpuOp {
    Kernel(PreparedKernel),
    /// Copies `region` to the device from host bytes holding the cells of box `bounds` (which contains `region`)
    /// row-major; several uploads may share one received buffer.
    Upload {
        buffer: BufferId,
        region: GridBox,
        bytes: Arc<Vec<u8>>,
        bounds: GridBox,
        context: String,
    },
    /// Copies what the buffer's previous allocation held into its new one (a growth); the old one is freed once
    /// the batch is submitted (batches in flight keep its memory until they complete).
    Grow {
        buffer: BufferId,
        old: DeviceAllocation,
    },
    /// Copies a box of the device allocation back; filled into download slot `slot` of the step.
    Download {
        buffer: BufferId,
        region: GridBox,
        slot: usize,
        context: String,
    },
}

/// Where a command's GPU work is: in a submitted batch, or in the one this step is still collecting (every step
/// submits what it collected before it ends, and [`RankLoop::flush`] turns `Open` into `Submitted`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum GpuRef {
    Submitted(celer_exec::gpu::BatchId),
    Open,
}

/// A download of a command's GPU work: a slot of the step's collected batch until it is submitted.
#[derive(Clone, Copy, Debug)]
enum Dl {
    Slot(usize),
    Ready(celer_exec::gpu::DownloadId),
}

impl Dl {
    fn id(self) -> Result<celer_exec::gpu::DownloadId, String> {
        match self {
            Dl::Ready(id) => Ok(id),
            Dl::Slot(_) => Err("internal error: a download was read before its batch was submitted".into()),
        }
    }

    fn resolve(&mut self, ids: &[celer_exec::gpu::DownloadId]) {
        if let Dl::Slot(i) = *self {
            *self = Dl::Ready(ids[i]);
        }
    }
}

/// What the runtime thread owns for one buffer.
struct BufferState {
    dims: usize,
    extent: GridBox,
    elem_size: usize,
    /// The device allocation: the bounding box of what this rank's commands touched so far (none before the
    /// first), grown with a copy when a command needs more ([`RankLoop::cover`]).
    device: Option<DeviceAllocation>,
    /// The data the buffer was created with (every rank holds it): cells an allocation newly covers start from it.
    init: Option<Arc<Vec<u8>>>,
    /// How often the allocation grew after its first, for the regrowth warning.
    growths: u32,
}

/// After this many growths of one buffer's allocation, a rank warns (once per buffer).
const GROWTH_WARNING: u32 = 4;

/// The command in progress and what it waits for.
enum InFlight {
    /// Waiting for a GPU batch; `then` says what to do once it completes.
    Gpu(GpuRef, AfterGpu),
    /// Waiting for the transfer engine to deliver an await-push into host staging.
    Receive { buffer: BufferId, region: Region, token: Token, since: std::time::Instant, key: TransferKey },
    /// A host task running on the worker thread since the instant.
    Host(CommandId, std::time::Instant),
    /// Waiting for every other rank's partial result of a reduction.
    Gather { key: TransferKey, reduction: ReductionId },
    /// A barrier epoch waiting for every rank (then it completes like any epoch).
    Barrier { request: celer_exec::mpi::RawRequest, task: TaskId },
}

enum AfterGpu {
    Done,
    /// Downloads to copy into host staging, then send.
    Push {
        buffer: BufferId,
        downloads: Vec<(Dl, NodeId, GridBox)>,
        key: TransferKey,
    },
    /// The local partial result of a reduction, to combine with the gathered ones.
    Reduce {
        buffer: BufferId,
        reduction: ReductionId,
        download: Option<Dl>,
    },
    /// Downloads of a host task's inputs; then the task goes to the worker.
    HostInputs {
        downloads: Vec<(usize, Dl)>,
        job: Box<HostJob>,
    },
    /// A fence read-back to hand to the application.
    Fence {
        download: Dl,
        bytes: usize,
        task: TaskId,
    },
}

impl AfterGpu {
    /// What the GPU work downloads, for messages (`None`: a kernel, upload or copy, nothing to read back).
    fn download(&self) -> Option<&'static str> {
        match self {
            AfterGpu::Done => None,
            AfterGpu::Push { .. } => Some("download of data to send"),
            AfterGpu::Reduce { .. } => Some("download of a partial reduction result"),
            AfterGpu::HostInputs { .. } => Some("download of a host task's inputs"),
            AfterGpu::Fence { .. } => Some("download of a fence"),
        }
    }
}

/// A graph box as the backends' box type (the same layout: trailing dimensions `[0, 1)`).
fn box3(b: &GridBox) -> Box3 {
    Box3::new(b.min(), b.max())
}

/// A backend box as a graph box of a `dims`-dimensional buffer (trailing dimensions `[0, 1)`).
fn grid_box(b: &Box3, dims: usize) -> GridBox {
    let (mut min, mut max) = (b.min(), b.max());
    for d in dims.max(1)..3 {
        min[d] = 0;
        max[d] = 1;
    }
    GridBox::new(min, max)
}

fn key_of(t: &celer_graph::TransferId) -> TransferKey {
    TransferKey(t.task.0, t.buffer.0, t.reduction.map_or(u64::MAX, |r| r.0))
}

/// One rank's loop state; see the [module docs](self).
pub struct RankLoop<'c> {
    /// This loop's device's communicator (collectives: barriers, divergence checks).
    comm: &'c Communicator,
    /// This loop's node in the command graph: `rank × devices + device`; `nodes` of them in all.
    node: i32,
    nodes: i32,
    /// This loop's device among the rank's `devices` (`CELER_DEVICES`).
    device: usize,
    devices: usize,
    engine: TransferEngine<'c>,
    gpu: Gpu,
    tm: TaskManager,
    cdag: CommandGraphGenerator,
    buffers: HashMap<BufferId, BufferState>,
    commands: VecDeque<Command>,
    /// Commands started and not yet complete.
    in_flight: Vec<(CommandId, InFlight)>,
    /// Completed commands above the watermark; every command below `watermark` is complete.
    done: hashbrown::HashSet<CommandId>,
    watermark: u64,
    fences: HashMap<TaskId, mpsc::SyncSender<Result<Vec<u8>, String>>>,
    epochs: HashMap<TaskId, mpsc::SyncSender<()>>,
    /// The previous horizon executed: when the next one runs, everything before this one is pruned.
    last_horizon: Option<TaskId>,
    completions: Vec<celer_exec::transfer::Completion>,
    batches: Vec<celer_exec::gpu::BatchId>,
    next_token: u64,
    shutdown: bool,
    host: HostWorker,
    /// GPU work started in this step, submitted together by `flush` at its end.
    pending: Vec<GpuOp>,
    /// How many downloads `pending` holds (the next download slot).
    pending_downloads: usize,
    /// Whether a command started in this step waits for the collected batch (even an empty one).
    open_refs: bool,
    /// How many queued commands a step scans for ready ones (`CELER_LOOKAHEAD`).
    lookahead: usize,
    /// `CELER_OVERLAP`: run the interior of kernels that wait for transfers early, if it has this many cells.
    overlap: Option<usize>,
    /// Execution commands whose interior already runs (or was collected), with that interior; the rest of the
    /// chunk runs when the command is ready.
    interiors: HashMap<CommandId, GridBox>,
    /// Waiting execution commands found not to split (removed when they start).
    no_interior: hashbrown::HashSet<CommandId>,
    /// Reused buffer for a push's packed cells between the download and the engine's send buffer.
    send_scratch: Vec<u8>,
    /// The timeline of `CELER_TRACE`, when it is on.
    pub(crate) trace: Option<crate::trace::Trace>,
    /// Batches in flight with their submission time and what they hold, for the trace.
    traced_batches: Vec<(celer_exec::gpu::BatchId, std::time::Instant, String)>,
    /// Device times of completed batches' operations (tracing only).
    timings: Vec<(celer_exec::gpu::BatchId, Vec<celer_exec::gpu::OpTime>)>,
    /// Kernel batches in flight and when they were submitted (for `RankStats::kernel_time`).
    kernel_batches: Vec<(celer_exec::gpu::BatchId, std::time::Instant)>,
    /// Counters for the summary programs print.
    pub(crate) stats: RankStats,
    /// Operation and element type of every reduction submitted, known on every rank.
    reductions: HashMap<ReductionId, ReductionInfo>,
    /// Partial results gathered from the other ranks, until the reduction command combines them.
    gathered: HashMap<ReductionId, celer_exec::transfer::Gathered>,
    /// Host tasks the worker finished, by command.
    host_done: HashMap<CommandId, Result<HostContext, String>>,
    /// The divergence check (with more than one rank).
    divergence: Option<DivergenceCheck<'c>>,
    /// `CELER_DUMP_GRAPHS`: where the DOT files go at shutdown, and a copy of every task (the command generator
    /// records its commands meanwhile). Memory grows with the program: a debugging aid.
    dump: Option<(std::path::PathBuf, Vec<celer_graph::Task>)>,
    /// `CELER_CHECK_BOUNDS`: kernels run their checked variant; `checks` holds the records of batches in flight.
    check_bounds: bool,
    checks: Vec<PendingCheck>,
    /// Set with an error that every rank is likely to hit at about the same time (an out-of-bounds access of a
    /// distributed kernel, a lost device): the runtime thread then waits [`FAULT_GRACE`] before ending the job, so
    /// that the other ranks print theirs too.
    pub(crate) fault_grace: bool,
    /// The ids of the tasks being turned into commands (kept to reuse its storage).
    new_tasks: Vec<TaskId>,
}

/// A rank's side of the divergence check (see [`crate::divergence`]).
struct DivergenceCheck<'c> {
    /// Whether windows are compared (`CELER_CHECK_DIVERGENCE`); the communicators exist either way, since
    /// creating them is collective.
    enabled: bool,
    /// For the per-window reductions.
    side: celer_exec::mpi::SideComm<'c>,
    /// For the one reduction that finds the first diverging task, so that it cannot pair with a window's
    /// reduction on a rank that closed more windows.
    detail: celer_exec::mpi::SideComm<'c>,
    stream: StreamHash,
    /// One reduction per window of `stream`'s pending ones, oldest first.
    reductions: VecDeque<celer_exec::mpi::MinReduce>,
}

/// How long a rank that found a divergence waits for the other ranks' part of the second reduction.
const DIVERGENCE_DETAIL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

impl<'c> RankLoop<'c> {
    /// Sets up a rank on an initialised communicator and a GPU.
    ///
    /// # Errors
    /// Transfer-engine start-up errors, as text.
    /// With more than one rank, creates the divergence check's communicators (collective: every rank must do it)
    /// and compares windows if `runtime.check_divergence`; records tasks and commands if `runtime.dump_graphs`.
    pub fn new(
        comm: &'c Communicator,
        gpu: Gpu,
        config: TaskManagerConfig,
        runtime: &RuntimeConfig,
    ) -> Result<Self, String> {
        Self::for_device(&[comm], 0, gpu, config, runtime)
    }

    /// The loop of device `device` of a rank that drives `comms.len()` devices (`CELER_DEVICES`): each device is
    /// a node of the command graph of its own (node `rank × devices + device`) with its own loop, communicator
    /// `comms[device]` (every rank's device `d` shares `comms[d]`) and transfer engine; one runtime thread steps
    /// the loops of all its devices in turn.
    ///
    /// # Errors
    /// As [`new`](Self::new).
    pub fn for_device(
        comms: &[&'c Communicator],
        device: usize,
        mut gpu: Gpu,
        config: TaskManagerConfig,
        runtime: &RuntimeConfig,
    ) -> Result<Self, String> {
        let comm =
            *comms.get(device).ok_or_else(|| format!("device {device} of {} has no communicator", comms.len()))?;
        if runtime.trace.is_some() {
            // The trace shows each batch's operations as the device timed them, where the device can.
            gpu.enable_timestamps().map_err(|e| e.to_string())?;
        }
        let check_divergence = runtime.check_divergence;
        let num_ranks = comm.size() as usize * comms.len().max(1);
        let divergence = if num_ranks > 1 {
            Some(DivergenceCheck {
                enabled: check_divergence,
                side: comm.duplicate().map_err(|e| e.to_string())?,
                detail: comm.duplicate().map_err(|e| e.to_string())?,
                stream: StreamHash::new(),
                reductions: VecDeque::new(),
            })
        } else {
            None
        };
        let node = comm.rank() * comms.len().max(1) as i32 + device as i32;
        let local = NodeId(node as u64);
        let mut tm = TaskManager::new(TaskManagerConfig { num_ranks, ..config });
        tm.drain_new_tasks().for_each(drop);
        Ok(Self {
            comm,
            node,
            nodes: num_ranks as i32,
            device,
            devices: comms.len().max(1),
            engine: TransferEngine::for_device(comms, device).map_err(|e| e.to_string())?,
            gpu,
            tm,
            cdag: CommandGraphGenerator::new(CdagConfig { num_ranks, local, record: runtime.dump_graphs.is_some() }),
            buffers: HashMap::new(),
            commands: VecDeque::new(),
            in_flight: Vec::new(),
            done: hashbrown::HashSet::new(),
            // C0 (the initial epoch) is complete from the start.
            watermark: 1,
            fences: HashMap::new(),
            epochs: HashMap::new(),
            last_horizon: None,
            completions: Vec::new(),
            batches: Vec::new(),
            next_token: 0,
            shutdown: false,
            host: HostWorker::start(),
            pending: Vec::new(),
            pending_downloads: 0,
            open_refs: false,
            send_scratch: Vec::new(),
            lookahead: runtime.lookahead,
            overlap: runtime.overlap,
            interiors: HashMap::new(),
            no_interior: hashbrown::HashSet::new(),
            trace: runtime.trace.as_ref().map(|_| crate::trace::Trace::new(node)),
            traced_batches: Vec::new(),
            timings: Vec::new(),
            kernel_batches: Vec::new(),
            stats: RankStats { rank: node as usize, ..RankStats::default() },
            reductions: HashMap::new(),
            gathered: HashMap::new(),
            host_done: HashMap::new(),
            divergence,
            dump: runtime.dump_graphs.clone().map(|dir| (dir, Vec::new())),
            check_bounds: runtime.check_bounds,
            checks: Vec::new(),
            fault_grace: false,
            new_tasks: Vec::new(),
        })
    }

    /// Whether the shutdown epoch has run.
    pub fn is_shut_down(&self) -> bool {
        self.shutdown
    }

    /// Handles one message from the application thread.
    ///
    /// # Errors
    /// Task errors (naming task, buffer and region) and backend errors, as text.
    pub fn handle(&mut self, msg: Message) -> Result<(), String> {
        match msg {
            Message::CreateBuffer { id, dims, extent, elem_size, data, name } => {
                self.tm.create_buffer(id, dims, extent, data.is_some(), name.clone());
                self.cdag.create_buffer(id, dims, extent, data.is_some(), name);
                // No device memory yet: the first command that touches the buffer allocates what it needs.
                let init = data.map(Arc::new);
                self.buffers.insert(id, BufferState { dims, extent, elem_size, device: None, init, growths: 0 });
            }
            Message::NameBuffer(id, name) => {
                self.tm.set_buffer_name(id, name.clone());
                self.cdag.set_buffer_name(id, &name);
            }
            Message::DestroyBuffer(id) => {
                self.tm.destroy_buffer(id);
                self.cdag.destroy_buffer(id);
                // The allocation is freed once no queued command can use it: at shutdown, for now.
            }
            Message::Submit(spec) => {
                if !spec.reductions.is_empty() {
                    let payload = spec.payload.as_ref().and_then(|p| p.downcast_ref::<KernelPayload>());
                    for (i, r) in spec.reductions.iter().enumerate() {
                        let kind = *payload.and_then(|k| k.reduction_kinds.get(i)).ok_or_else(|| {
                            format!("a reduction into {} has no element type (reductions need a kernel)", r.buffer)
                        })?;
                        let custom = payload.and_then(|k| k.custom_reductions.get(i).cloned().flatten());
                        if r.op == ReductionOp::Custom && custom.is_none() {
                            return Err(format!(
                                "a user-defined reduction into {} has no combining function",
                                r.buffer
                            ));
                        }
                        self.reductions.insert(r.id, ReductionInfo { op: r.op, kind, custom });
                    }
                }
                self.tm.submit(spec).map_err(|e| e.to_string())?;
                self.generate()?;
            }
            Message::Fence(spec, reply) => {
                let id = self.tm.submit(spec).map_err(|e| e.to_string())?;
                self.fences.insert(id, reply);
                self.generate()?;
            }
            Message::CreateHostObject(id) => self.tm.create_host_object(id),
            Message::DestroyHostObject(id) => self.tm.destroy_host_object(id),
            Message::Stats(reply) => {
                let _ = reply.send(self.stats.clone());
            }
            Message::Epoch(action, reply) => {
                let id = self.tm.epoch(action);
                self.epochs.insert(id, reply);
                self.generate()?;
            }
        }
        Ok(())
    }

    fn generate(&mut self) -> Result<(), String> {
        let mut new = std::mem::take(&mut self.new_tasks);
        self.tm.take_new_tasks(&mut new);
        self.stats.tasks += new.len() as u64;
        for &id in &new {
            let task = self.tm.task(id).expect("new tasks are live");
            if let Some((_, tasks)) = &mut self.dump {
                tasks.push(task.clone());
            }
            if let Some(d) = self.divergence.as_mut().filter(|d| d.enabled) {
                if d.stream.record(task) {
                    let values = d.stream.close(id);
                    d.reductions.push_back(d.side.iallreduce_min(values).map_err(|e| e.to_string())?);
                }
            }
            let ids: Vec<_> = self.cdag.build_task(task).map_err(|e: TaskError| e.to_string())?.to_vec();
            for c in ids {
                self.commands.push_back(self.cdag.command(c).expect("just generated").clone());
            }
        }
        self.new_tasks = new;
        Ok(())
    }

    fn token(&mut self) -> Token {
        self.next_token += 1;
        Token(self.next_token)
    }

    /// Makes progress: polls the backends, finishes what completed, starts every command whose dependencies allow
    /// it. Returns whether anything happened.
    ///
    /// A command that begins with GPU work (a kernel, or the download of a push or fence) may start as soon as the
    /// commands it depends on have *submitted* their last GPU batch: batches run in submission order on the one
    /// queue, so dependent kernels go to the GPU back to back instead of one round trip each. Everything else
    /// waits for its dependencies to complete.
    ///
    /// # Errors
    /// Backend errors and unsupported commands, as text naming the command.
    pub fn step(&mut self) -> Result<bool, String> {
        self.completions.clear();
        self.engine.poll(&mut self.completions).map_err(|e| e.to_string())?;
        self.batches.clear();
        if let Err(e) = self.gpu.poll(&mut self.batches) {
            return Err(self.gpu_failed(e));
        }
        let mut progressed = !self.completions.is_empty() || !self.batches.is_empty();
        if !self.checks.is_empty() && !self.batches.is_empty() {
            self.read_checks()?;
        }
        if let (Some(trace), false) = (&mut self.trace, self.batches.is_empty()) {
            let now = std::time::Instant::now();
            let gpu = &self.gpu;
            self.traced_batches.retain_mut(|(id, since, what)| {
                let done = gpu.is_complete(*id);
                if done {
                    trace.span(crate::trace::Row::Gpu, std::mem::take(what), *since, now);
                }
                !done
            });
            let mut timings = std::mem::take(&mut self.timings);
            self.gpu.take_timings(&mut timings);
            for (_, ops) in timings.drain(..) {
                let last = ops.last().map_or(0, |op| op.end_ns);
                for op in ops {
                    let name = match op.kind {
                        OpKind::Kernel(k) => format!("kernel {}", self.gpu.kernel_name(k).unwrap_or("?")),
                        OpKind::Upload { bytes } => format!("upload {bytes} B"),
                        OpKind::Download { bytes } => format!("download {bytes} B"),
                        OpKind::Copy { bytes } => format!("device copy {bytes} B"),
                    };
                    let end = now.checked_sub(std::time::Duration::from_nanos(last - op.end_ns)).unwrap_or(now);
                    let len = std::time::Duration::from_nanos(op.end_ns.saturating_sub(op.start_ns));
                    trace.span_ending(crate::trace::Row::GpuOps, name, end, len);
                }
            }
            self.timings = timings;
        }
        if !self.batches.is_empty() && !self.kernel_batches.is_empty() {
            let now = std::time::Instant::now();
            let gpu = &self.gpu;
            let stats = &mut self.stats;
            self.kernel_batches.retain(|(id, since)| {
                let done = gpu.is_complete(*id);
                if done {
                    stats.kernel_time += now - *since;
                }
                !done
            });
        }
        while let Some((cmd, result)) = self.host.done.pop() {
            self.host_done.insert(cmd, result);
            progressed = true;
        }
        if let Some(d) = &mut self.divergence {
            if let Some(r) = d.reductions.front_mut() {
                if let Some(min) = r.test(self.comm).map_err(|e| e.to_string())? {
                    let (h_min, h_max, c_min, c_max) = read_check(min);
                    if h_min != h_max || c_min != c_max {
                        self.diverged();
                    }
                    d.reductions.pop_front();
                    d.stream.confirm_oldest();
                    progressed = true;
                }
            }
        }
        let flights = std::mem::take(&mut self.in_flight);
        for (id, flight) in flights {
            match self.finish(flight)? {
                Some(still) => self.in_flight.push((id, still)),
                None => {
                    self.mark_done(id);
                    progressed = true;
                }
            }
        }
        // Start ready commands, in generation order, within a window at the front of the queue (dependencies
        // point backwards, so the front always becomes ready first).
        let mut i = 0;
        while i < self.commands.len().min(self.lookahead) {
            let gpu_first = matches!(
                self.commands[i].kind,
                CommandKind::Execution { .. } | CommandKind::Push { .. } | CommandKind::Fence { .. }
            );
            let ready = self.commands[i].dependencies.iter().all(|d| {
                self.is_done(d.command)
                    || (gpu_first
                        && self
                            .in_flight
                            .iter()
                            .any(|(id, f)| *id == d.command && matches!(f, InFlight::Gpu(_, AfterGpu::Done))))
            });
            if !ready {
                if self.overlap.is_some() && !self.interiors.contains_key(&self.commands[i].id) {
                    progressed |= self.start_interior(i)?;
                }
                i += 1;
                continue;
            }
            let cmd = self.commands.remove(i).expect("index in range");
            // GPU work of every command started in this step goes into one batch, in start order.
            match self.start(&cmd)? {
                Some(flight) => self.in_flight.push((cmd.id, flight)),
                None => self.mark_done(cmd.id),
            }
            progressed = true;
        }
        self.flush()?;
        Ok(progressed)
    }

    /// Makes `buffer`'s allocation cover `region` (a buffer's first allocation is the first region a command needs;
    /// one that does not cover a later region grows to the bounding box of both, copying what it held). The batch
    /// collected so far is submitted first, so that each operation of a batch names one allocation of its buffer.
    /// Cells an allocation newly covers start from the buffer's creation data (zeros without), which is what every
    /// rank holds of cells no task wrote; cells written elsewhere arrive by await-push before anything reads them.
    /// Call it before adding the command's own operations.
    fn cover(&mut self, buffer: BufferId, region: &GridBox) -> Result<(), String> {
        let state = self.buffers.get(&buffer).ok_or_else(|| format!("unknown buffer {buffer}"))?;
        let want = if region.is_empty() {
            if state.device.is_some() {
                return Ok(());
            }
            // An accessor that touches nothing still binds an allocation: its first cell.
            let lo = state.extent.min();
            GridBox::new(lo, [lo[0] + 1, lo[1] + 1, lo[2] + 1])
        } else {
            *region
        };
        if state.device.as_ref().is_some_and(|d| d.bounds().contains(&box3(&want))) {
            return Ok(());
        }
        // Look ahead: the queued commands' needs of this buffer join the allocation now, so that an access pattern
        // that widens over the next commands (a buffer read one to one, then with a halo) allocates once.
        let ahead = self.needs_ahead(buffer);
        self.flush()?;
        let state = self.buffers.get_mut(&buffer).expect("checked above");
        let old = state.device.take();
        let old_box = old.as_ref().map(|d| GridBox::new(d.bounds().min(), d.bounds().max()));
        let mut bounds = old_box.map_or(want, |o| o.bounding_box(&want));
        if let Some(ahead) = ahead {
            bounds = bounds.bounding_box(&ahead);
        }
        let new = self
            .gpu
            .allocate(box3(&bounds), state.elem_size)
            .map_err(|e| format!("allocating {bounds} of buffer {buffer} on the GPU: {e}"))?;
        self.stats.device_bytes += new.bytes() as u64;
        if let Some(old) = &old {
            self.stats.device_bytes -= old.bytes() as u64;
        }
        state.device = Some(new);
        let mut fresh = Vec::new();
        match old_box {
            Some(o) => bounds.subtract_into(&o, |b| fresh.push(b)),
            None => fresh.push(bounds),
        }
        if let Some(old) = old {
            state.growths += 1;
            self.stats.growths += 1;
            if state.growths == GROWTH_WARNING {
                log::warn!(
                    "buffer {buffer}'s allocation on this rank grew {GROWTH_WARNING} times (now {bounds}); each growth \
                     copies it: access the whole region a rank will use early (or in larger pieces)"
                );
            }
            self.pending.push(GpuOp::Grow { buffer, old });
        }
        for b in fresh {
            let (bytes, src) = match &state.init {
                Some(init) => (Arc::clone(init), state.extent),
                None => (Arc::new(vec![0u8; b.area() * state.elem_size]), b),
            };
            let context = format!("initial contents of buffer {buffer}");
            self.pending.push(GpuOp::Upload { buffer, region: b, bytes, bounds: src, context });
        }
        Ok(())
    }

    /// Adds a download to the step's batch; returns its slot.
    /// The bounding box of what the first `lookahead` queued commands will need of `buffer` on this rank (their
    /// executions' mapped regions, pushes, await-pushes), or `None`.
    fn needs_ahead(&self, buffer: BufferId) -> Option<GridBox> {
        let state = self.buffers.get(&buffer)?;
        let mut bounds: Option<GridBox> = None;
        let mut add = |b: GridBox| {
            if !b.is_empty() {
                bounds = Some(bounds.map_or(b, |a| a.bounding_box(&b)));
            }
        };
        for cmd in self.commands.iter().take(self.lookahead) {
            match &cmd.kind {
                CommandKind::Execution { task, chunk, .. } => {
                    let Some(task) = self.tm.task(*task) else { continue };
                    for a in task.spec.accesses.iter().filter(|a| a.buffer == buffer) {
                        if let Ok(region) = a.mapper.apply(chunk, task.spec.dims, &state.extent, state.dims) {
                            add(region.bounding_box());
                        }
                    }
                }
                CommandKind::Push { transfer, targets } if transfer.buffer == buffer => {
                    for (_, region) in targets {
                        add(region.bounding_box());
                    }
                }
                CommandKind::AwaitPush { transfer, region } if transfer.buffer == buffer => add(region.bounding_box()),
                _ => {}
            }
        }
        bounds
    }

    fn pend_download(&mut self, buffer: BufferId, region: GridBox, context: &str) -> Dl {
        let slot = self.pending_downloads;
        self.pending_downloads += 1;
        self.pending.push(GpuOp::Download { buffer, region, slot, context: context.to_string() });
        Dl::Slot(slot)
    }

    /// Hands out a reference to the step's batch.
    fn open(&mut self) -> GpuRef {
        self.open_refs = true;
        GpuRef::Open
    }

    /// Records the GPU work started in this step into one batch (barriers between dependent operations come from
    /// the batch's hazard tracking), submits it, and points the commands waiting for it at the submitted batch.
    fn flush(&mut self) -> Result<(), String> {
        if self.pending.is_empty() && !self.open_refs {
            return Ok(());
        }
        let ops = std::mem::take(&mut self.pending);
        // Checked kernels' bounds records, allocated before the batch borrows the GPU. TODO(perf): pool them; this
        // is a debugging mode.
        let mut records = Vec::new();
        for op in &ops {
            if let GpuOp::Kernel(PreparedKernel { check: Some(info), context, .. }) = op {
                let words = celer_exec::gpu::bounds_record_words(info.declared.len());
                let record = self
                    .gpu
                    .allocate(Box3::d1(0, words), 4)
                    .map_err(|e| format!("{context}: the bounds record of CELER_CHECK_BOUNDS: {e}"))?;
                records.push(record);
            }
        }
        let mut records = records.into_iter();
        let mut checks = Vec::new();
        let mut downloads = Vec::with_capacity(self.pending_downloads);
        let mut kernels = 0u64;
        let mut uploads = 0usize;
        let mut grown = Vec::new();
        let buffers = &self.buffers;
        // Every op of a batch names its buffer's current allocation: `cover` submits what was collected before it
        // grows one.
        let device = |b: &BufferId, context: &str| -> Result<&DeviceAllocation, String> {
            buffers
                .get(b)
                .and_then(|s| s.device.as_ref())
                .ok_or_else(|| format!("{context}: internal error: buffer {b} has no allocation"))
        };
        let mut batch = self.gpu.batch().map_err(|e| e.to_string())?;
        for op in ops {
            match op {
                GpuOp::Kernel(k) => {
                    for (b, bytes) in &k.identities {
                        let d = device(b, &k.context)?;
                        let extent = box3(&buffers[b].extent);
                        batch.upload(d, extent, bytes, extent).map_err(|e| format!("{}: {e}", k.context))?;
                    }
                    let mut list = Vec::with_capacity(k.accesses.len());
                    for (b, mode) in k.accesses.iter() {
                        let d = device(b, &k.context)?;
                        list.push(match mode {
                            AccessMode::Read => Access::read(d),
                            AccessMode::ReadWrite => Access::read_write(d),
                            AccessMode::Write | AccessMode::DiscardWrite => Access::write(d),
                        });
                    }
                    if let Some(info) = k.check {
                        let record = records.next().expect("one record per checked kernel");
                        let declared: Vec<Box3> = info.declared.iter().map(box3).collect();
                        let allocations: Vec<Box3> = list.iter().map(|a| a.allocation().bounds()).collect();
                        let words = celer_exec::gpu::bounds_record_init(&declared, &allocations);
                        let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
                        let all = record.bounds();
                        batch.upload(&record, all, &bytes, all).map_err(|e| format!("{}: {e}", k.context))?;
                        batch
                            .dispatch_checked(k.kernel, k.launch, &list, &k.scalars, &record)
                            .map_err(|e| format!("{}: {e}", k.context))?;
                        let download = batch.download(&record, all).map_err(|e| format!("{}: {e}", k.context))?;
                        checks.push((download, record, info));
                    } else {
                        batch
                            .dispatch(k.kernel, k.launch, &list, &k.scalars)
                            .map_err(|e| format!("{}: {e}", k.context))?;
                    }
                    kernels += 1;
                }
                GpuOp::Upload { buffer, region, bytes, bounds, context } => {
                    batch
                        .upload(device(&buffer, &context)?, box3(&region), &bytes, box3(&bounds))
                        .map_err(|e| format!("{context}: {e}"))?;
                    uploads += 1;
                }
                GpuOp::Grow { buffer, old } => {
                    let context = format!("growing the allocation of {buffer}");
                    batch
                        .copy(&old, device(&buffer, &context)?, old.bounds())
                        .map_err(|e| format!("{context}: {e}"))?;
                    grown.push(old);
                }
                GpuOp::Download { buffer, region, slot, context } => {
                    debug_assert_eq!(slot, downloads.len());
                    let d = device(&buffer, &context)?;
                    downloads.push(batch.download(d, box3(&region)).map_err(|e| format!("{context}: {e}"))?);
                }
            }
        }
        let id = batch.submit().map_err(|e| e.to_string())?;
        self.checks.extend(checks.into_iter().map(|(download, record, info)| PendingCheck {
            batch: id,
            download,
            record,
            info,
        }));
        // The submitted batch keeps the old allocations' memory until it completes.
        for old in grown {
            self.gpu.free(old);
        }
        if self.trace.is_some() {
            let what = format!("{kernels} kernel(s), {uploads} upload(s), {} download(s)", downloads.len());
            self.traced_batches.push((id, std::time::Instant::now(), what));
        }
        self.pending_downloads = 0;
        self.open_refs = false;
        if kernels > 0 {
            self.stats.kernels += kernels;
            self.stats.kernel_batches += 1;
            self.kernel_batches.push((id, std::time::Instant::now()));
        }
        for (_, flight) in &mut self.in_flight {
            if let InFlight::Gpu(r, after) = flight {
                if *r == GpuRef::Open {
                    *r = GpuRef::Submitted(id);
                    match after {
                        AfterGpu::Done => {}
                        AfterGpu::Push { downloads: d, .. } => d.iter_mut().for_each(|x| x.0.resolve(&downloads)),
                        AfterGpu::Reduce { download, .. } => {
                            if let Some(d) = download {
                                d.resolve(&downloads);
                            }
                        }
                        AfterGpu::HostInputs { downloads: d, .. } => d.iter_mut().for_each(|x| x.1.resolve(&downloads)),
                        AfterGpu::Fence { download, .. } => download.resolve(&downloads),
                    }
                }
            }
        }
        Ok(())
    }

    /// Reads the bounds records of checked kernels whose batch completed (`CELER_CHECK_BOUNDS`).
    ///
    /// # Errors
    /// An out-of-bounds access, naming the task, command, kernel and chunk, and for each accessor at fault its
    /// buffer, what it declared and the bounding box of the cells the kernel touched outside that.
    fn read_checks(&mut self) -> Result<(), String> {
        let mut failures = Vec::new();
        let mut i = 0;
        while i < self.checks.len() {
            if !self.gpu.is_complete(self.checks[i].batch) {
                i += 1;
                continue;
            }
            let check = self.checks.swap_remove(i);
            let mut bytes = vec![0u8; check.record.bytes()];
            let all = check.record.bounds();
            self.gpu.read_download(check.download, &mut bytes, all).map_err(|e| e.to_string())?;
            self.gpu.free(check.record);
            let words: Vec<u32> = bytes.chunks_exact(4).map(|w| u32::from_le_bytes([w[0], w[1], w[2], w[3]])).collect();
            let report = celer_exec::gpu::read_bounds_record(&words);
            if report.unattributed > 0 {
                log::warn!(
                    "CELER_CHECK_BOUNDS: {} indexed {} time(s) with a box that is no accessor's allocation box, so \
                     those accesses could not be checked",
                    check.info.what,
                    report.unattributed
                );
            }
            let info = &check.info;
            let mut lines = Vec::new();
            for (k, outside) in report.accessors.iter().enumerate() {
                if let Some((count, cells)) = outside {
                    let dims = info.buffers.get(k).and_then(|b| self.buffers.get(b)).map_or(3, |b| b.dims);
                    let cells = grid_box(cells, dims);
                    lines.push(format!(
                        "accessor {k} ({}) accessed {cells} ({count} access(es) outside), but its range mapper \
                         declared only {} for this chunk",
                        info.names.get(k).map_or("?", String::as_str),
                        info.declared[k]
                    ));
                }
            }
            if !lines.is_empty() {
                failures.push(format!(
                    "out-of-bounds access in {}: {}; declare a range mapper that covers every cell the kernel touches \
                     (e.g. neighborhood for a stencil), or fix the kernel's indexing (found by CELER_CHECK_BOUNDS)",
                    info.what,
                    lines.join("; ")
                ));
            }
        }
        if failures.is_empty() {
            Ok(())
        } else {
            self.fault_grace = true;
            Err(failures.join("\n"))
        }
    }

    /// Turns a failed GPU poll into the error that ends the run; for a lost device it names the GPU work that was
    /// in flight, command by command.
    fn gpu_failed(&mut self, e: celer_exec::gpu::GpuError) -> String {
        let celer_exec::gpu::GpuError::DeviceLost { batches, .. } = &e else { return e.to_string() };
        self.fault_grace = true;
        let mut lines = vec![format!("N{}: {e}. The lost work:", self.node)];
        for b in batches {
            let mut held = Vec::new();
            for (id, flight) in &self.in_flight {
                if let InFlight::Gpu(GpuRef::Submitted(batch), after) = flight {
                    if batch == b {
                        let stage = match after.download() {
                            Some(download) => download.to_string(),
                            None => self.kernel_of(*id).map_or("upload or copy".into(), |k| format!("kernel {k}")),
                        };
                        held.push(format!("{} ({stage})", self.command_ident(*id)));
                    }
                }
            }
            if held.len() > LOST_WORK_LISTED {
                let more = held.len() - LOST_WORK_LISTED;
                held.truncate(LOST_WORK_LISTED);
                held.push(format!("and {more} more"));
            }
            let held = if held.is_empty() { "uploads and copies only".to_string() } else { held.join(", ") };
            lines.push(format!("    batch {b}: {held}"));
        }
        lines.join("\n")
    }

    fn is_done(&self, id: CommandId) -> bool {
        id.0 < self.watermark || self.done.contains(&id)
    }

    fn mark_done(&mut self, id: CommandId) {
        self.stats.commands += 1;
        self.done.insert(id);
        while self.done.remove(&CommandId(self.watermark)) {
            self.watermark += 1;
        }
    }

    /// With `CELER_DUMP_GRAPHS`, writes `commands-rank<N>.dot` (this rank's command graph) and, on rank 0,
    /// `tasks.dot` (the task graph, the same on every rank) into the directory; returns the files written.
    ///
    /// # Errors
    /// File-system errors, naming the path.
    pub fn write_graph_dumps(&self) -> Result<Vec<std::path::PathBuf>, String> {
        let Some((dir, tasks)) = &self.dump else { return Ok(Vec::new()) };
        std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let mut files = vec![(dir.join(format!("commands-rank{}.dot", self.node)), self.cdag.to_dot())];
        if self.node == 0 {
            files.push((dir.join("tasks.dot"), self.tm.tasks_to_dot(tasks.iter())));
        }
        for (path, dot) in &files {
            std::fs::write(path, dot).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        }
        Ok(files.into_iter().map(|f| f.0).collect())
    }

    /// Whether commands are queued or in flight, or transfers pending: what stall detection watches. Divergence
    /// checks do not count: a rank that reached shutdown waits for the others' checks as long as they take.
    pub fn has_pending_work(&self) -> bool {
        !self.commands.is_empty() || !self.in_flight.is_empty() || !self.engine.is_idle()
    }

    /// Whether no command is queued or in flight, all sends have left and every divergence check completed.
    pub fn is_idle(&self) -> bool {
        self.commands.is_empty()
            && self.in_flight.is_empty()
            && self.engine.is_idle()
            && self.divergence.as_ref().is_none_or(|d| d.reductions.is_empty())
    }

    fn start(&mut self, cmd: &Command) -> Result<Option<InFlight>, String> {
        let rank = self.node;
        let fail = |what: String| format!("N{rank} {} ({}): {what}", cmd.id, cmd.task);
        match &cmd.kind {
            CommandKind::Execution { task, chunk, .. } => {
                let task = self.tm.task(*task).ok_or_else(|| fail("its task was pruned".into()))?;
                if task.kind() != TaskKind::DeviceCompute {
                    // With several devices per rank, a collective host task is the rank's, not each device's: its
                    // closure runs on device 0 only (once per rank, so host objects see each side effect once),
                    // unless it writes buffers, which every node's chunk must then do.
                    let per_rank = matches!(task.kind(), TaskKind::Collective(_))
                        && self.devices > 1
                        && !task.spec.accesses.iter().any(|a| a.mode.produces());
                    if per_rank && self.device != 0 {
                        return Ok(None);
                    }
                    let (host_rank, host_ranks) = if per_rank {
                        (self.node as usize / self.devices, self.nodes as usize / self.devices)
                    } else {
                        (self.node as usize, self.nodes as usize)
                    };
                    let payload = task
                        .spec
                        .payload
                        .as_ref()
                        .and_then(|p| p.downcast_ref::<HostPayload>())
                        .ok_or_else(|| fail(format!("{} has no host closure to run", task.ident())))?
                        .clone();
                    let mut views = Vec::new();
                    let mut wanted = Vec::new();
                    for (i, a) in task.spec.accesses.iter().enumerate() {
                        let state =
                            self.buffers.get(&a.buffer).ok_or_else(|| fail(format!("unknown buffer {}", a.buffer)))?;
                        let region = a
                            .mapper
                            .apply(chunk, task.spec.dims, &state.extent, state.dims)
                            .map_err(|e| fail(e.to_string()))?;
                        let bounds = region.bounding_box();
                        if a.mode.consumes() && !bounds.is_empty() {
                            wanted.push((i, a.buffer, bounds));
                        }
                        views.push(HostView {
                            buffer: a.buffer,
                            bounds,
                            elem_size: state.elem_size,
                            bytes: vec![0; bounds.area() * state.elem_size],
                            produces: a.mode.produces(),
                        });
                    }
                    let ctx =
                        HostContext { chunk: *chunk, rank: host_rank, ranks: host_ranks, views, objects: payload.1 };
                    let job = Box::new(HostJob { cmd: cmd.id, f: payload.0, ctx });
                    for v in &job.ctx.views {
                        if !v.bounds.is_empty() {
                            let (buffer, bounds) = (v.buffer, v.bounds);
                            self.cover(buffer, &bounds).map_err(fail)?;
                        }
                    }
                    if wanted.is_empty() {
                        self.host.submit(*job);
                        return Ok(Some(InFlight::Host(cmd.id, std::time::Instant::now())));
                    }
                    let context = fail("host task inputs".into());
                    let downloads =
                        wanted.into_iter().map(|(i, b, bounds)| (i, self.pend_download(b, bounds, &context)));
                    let downloads = downloads.collect();
                    return Ok(Some(InFlight::Gpu(self.open(), AfterGpu::HostInputs { downloads, job })));
                }
                // With an interior already running (start_interior), the rest of the chunk: its border.
                let mut launches = Vec::new();
                self.no_interior.remove(&cmd.id);
                match self.interiors.remove(&cmd.id) {
                    Some(interior) => chunk.subtract_into(&interior, |b| launches.push(b)),
                    None => launches.push(*chunk),
                }
                self.collect_kernel(cmd, *chunk, &launches)?;
                Ok(Some(InFlight::Gpu(self.open(), AfterGpu::Done)))
            }
            CommandKind::Push { transfer, targets } => {
                // Empty regions are "nothing from me" notices of reductions: a header alone.
                for (target, _) in targets.iter().filter(|(_, r)| r.is_empty()) {
                    let token = self.token();
                    self.engine
                        .send_empty(key_of(transfer), target.0 as i32, token)
                        .map_err(|e| fail(e.to_string()))?;
                }
                if targets.iter().all(|(_, r)| r.is_empty()) {
                    return Ok(None);
                }
                for (_, region) in targets {
                    for b in region.boxes() {
                        self.cover(transfer.buffer, b).map_err(fail)?;
                    }
                }
                let context = fail("push".into());
                let mut downloads = Vec::new();
                for (target, region) in targets {
                    for b in region.boxes() {
                        downloads.push((self.pend_download(transfer.buffer, *b, &context), *target, *b));
                    }
                }
                Ok(Some(InFlight::Gpu(
                    self.open(),
                    AfterGpu::Push { buffer: transfer.buffer, downloads, key: key_of(transfer) },
                )))
            }
            CommandKind::AwaitPush { transfer, region } => {
                if let Some(reduction) = transfer.reduction {
                    let token = self.token();
                    let key = key_of(transfer);
                    let senders = self.nodes as usize - 1;
                    self.engine.expect_gather(key, senders, token).map_err(|e| fail(e.to_string()))?;
                    return Ok(Some(InFlight::Gather { key, reduction }));
                }
                let token = self.token();
                let elem_size = self.buffers[&transfer.buffer].elem_size;
                // The engine keeps the payloads packed as they arrive; each is uploaded from there. No host copy
                // of the buffer: a halo column of a large field touches a few pages, not one page per row.
                let boxes: Vec<Box3> = region.boxes().iter().map(box3).collect();
                let key = key_of(transfer);
                self.engine.expect_pieces(key, &boxes, elem_size, token).map_err(|e| fail(e.to_string()))?;
                Ok(Some(InFlight::Receive {
                    buffer: transfer.buffer,
                    region: region.clone(),
                    token,
                    since: std::time::Instant::now(),
                    key,
                }))
            }
            CommandKind::Fence { task } => {
                let t = self.tm.task(*task).ok_or_else(|| fail("its task was pruned".into()))?;
                let access = t.regions.first().ok_or_else(|| fail("a fence without a buffer".into()))?;
                let fenced = access.consumed.bounding_box();
                let state = &self.buffers[&access.buffer];
                let bytes = fenced.area() * state.elem_size;
                let buffer = access.buffer;
                if !fenced.is_empty() {
                    self.cover(buffer, &fenced).map_err(fail)?;
                }
                let download = self.pend_download(buffer, fenced, &fail("fence".into()));
                Ok(Some(InFlight::Gpu(self.open(), AfterGpu::Fence { download, bytes, task: *task })))
            }
            CommandKind::Horizon { task } => {
                if let Some(trace) = &mut self.trace {
                    trace.instant(crate::trace::Row::Loop, format!("horizon {task}"), std::time::Instant::now());
                }
                // In order, everything before this horizon has run: the previous one is reached.
                if let Some(prev) = self.last_horizon.replace(*task) {
                    self.tm.notify_epoch_reached(prev);
                    self.cdag.notify_epoch_reached(prev);
                }
                Ok(None)
            }
            CommandKind::Epoch { task, action: EpochAction::Barrier } => {
                // Everything local before the epoch has completed (its dependencies); now meet the other ranks.
                let request = self.comm.ibarrier().map_err(|e| fail(e.to_string()))?;
                Ok(Some(InFlight::Barrier { request, task: *task }))
            }
            CommandKind::Epoch { task, action } => {
                self.epoch_reached(*task, *action);
                Ok(None)
            }
            CommandKind::Reduction { reduction, buffer, has_local_contribution } => {
                let download = if *has_local_contribution {
                    let extent = self.buffers[buffer].extent;
                    self.cover(*buffer, &extent).map_err(fail)?;
                    Some(self.pend_download(*buffer, extent, &fail("reduction".into())))
                } else {
                    None
                };
                Ok(Some(InFlight::Gpu(
                    self.open(),
                    AfterGpu::Reduce { buffer: *buffer, reduction: *reduction, download },
                )))
            }
        }
    }

    /// Everything before epoch `task` has completed: prune, answer a waiting application, stop at shutdown.
    fn epoch_reached(&mut self, task: TaskId, action: EpochAction) {
        if let Some(trace) = &mut self.trace {
            trace.instant(crate::trace::Row::Loop, format!("epoch {task} ({action:?})"), std::time::Instant::now());
        }
        self.last_horizon = None;
        self.tm.notify_epoch_reached(task);
        self.cdag.notify_epoch_reached(task);
        if let Some(reply) = self.epochs.remove(&task) {
            let _ = reply.send(());
        }
        if action == EpochAction::Shutdown {
            self.shutdown = true;
        }
    }

    /// Advances the command in flight; returns it back if it is not finished.
    fn finish(&mut self, flight: InFlight) -> Result<Option<InFlight>, String> {
        match flight {
            InFlight::Gpu(r, after) => {
                let GpuRef::Submitted(id) = r else {
                    return Err("internal error: GPU work of a command was never submitted".into());
                };
                if !self.gpu.is_complete(id) {
                    return Ok(Some(InFlight::Gpu(r, after)));
                }
                match after {
                    AfterGpu::Done => {}
                    AfterGpu::Push { buffer, downloads, key } => {
                        let elem_size = self.buffers[&buffer].elem_size;
                        for (d, target, b) in downloads {
                            // Packed: the box's cells only (a strided column of a large field would otherwise be
                            // scattered into, and gathered from, a copy of the whole buffer, one page per row).
                            let mut packed = std::mem::take(&mut self.send_scratch);
                            packed.resize(b.area() * elem_size, 0);
                            self.gpu.read_download(d.id()?, &mut packed, box3(&b)).map_err(|e| e.to_string())?;
                            let layout = AllocLayout { bounds: box3(&b), elem_size };
                            self.next_token += 1;
                            self.stats.bytes_sent += (b.area() * elem_size) as u64;
                            if let Some(trace) = &mut self.trace {
                                let what = format!("push {buffer} {b} to rank {}", target.0);
                                trace.instant(crate::trace::Row::Send, what, std::time::Instant::now());
                            }
                            // The engine copies the cells into its own send buffer before returning.
                            self.engine
                                .send(key, target.0 as i32, box3(&b), &layout, &packed, Token(self.next_token))
                                .map_err(|e| e.to_string())?;
                            self.send_scratch = packed;
                        }
                    }
                    AfterGpu::Reduce { buffer, reduction, download } => {
                        let info = self.reductions[&reduction].clone();
                        let me = self.node;
                        let mut local = vec![0u8; info.kind.size()];
                        let extent = self.buffers[&buffer].extent;
                        if let Some(d) = download {
                            self.gpu.read_download(d.id()?, &mut local, box3(&extent)).map_err(|e| e.to_string())?;
                        }
                        let gathered = self.gathered.remove(&reduction);
                        // Combine in rank order, so every rank computes bit-identical results.
                        let mut parts: Vec<(i32, &[u8])> = Vec::new();
                        if download.is_some() {
                            parts.push((me, &local));
                        }
                        if let Some(g) = &gathered {
                            parts.extend(
                                g.pieces().iter().filter(|p| !p.bytes().is_empty()).map(|p| (p.sender(), p.bytes())),
                            );
                        }
                        parts.sort_by_key(|p| p.0);
                        let slices: Vec<&[u8]> = parts.iter().map(|p| p.1).collect();
                        let result = info.combine(&slices);
                        if let Some(g) = gathered {
                            self.engine.recycle(g);
                        }
                        self.cover(buffer, &extent)?;
                        self.pending.push(GpuOp::Upload {
                            buffer,
                            region: extent,
                            bytes: Arc::new(result),
                            bounds: extent,
                            context: format!("reduction {reduction}"),
                        });
                        return Ok(Some(InFlight::Gpu(self.open(), AfterGpu::Done)));
                    }
                    AfterGpu::HostInputs { downloads, mut job } => {
                        for (i, d) in downloads {
                            let v = &mut job.ctx.views[i];
                            self.gpu
                                .read_download(d.id()?, &mut v.bytes, box3(&v.bounds))
                                .map_err(|e| e.to_string())?;
                        }
                        let cmd = job.cmd;
                        self.host.submit(*job);
                        return Ok(Some(InFlight::Host(cmd, std::time::Instant::now())));
                    }
                    AfterGpu::Fence { download, bytes, task } => {
                        let mut data = vec![0u8; bytes];
                        let t = self.tm.task(task).expect("fence task is live until its epoch");
                        let fenced = t.regions[0].consumed.bounding_box();
                        self.gpu.read_download(download.id()?, &mut data, box3(&fenced)).map_err(|e| e.to_string())?;
                        if let Some(reply) = self.fences.remove(&task) {
                            let _ = reply.send(Ok(data));
                        }
                    }
                }
                Ok(None)
            }
            InFlight::Barrier { mut request, task } => {
                if !request.test(self.comm).map_err(|e| e.to_string())? {
                    return Ok(Some(InFlight::Barrier { request, task }));
                }
                self.epoch_reached(task, EpochAction::Barrier);
                Ok(None)
            }
            InFlight::Gather { key, reduction } => match self.engine.take_gathered(key) {
                Some(g) => {
                    self.gathered.insert(reduction, g);
                    Ok(None)
                }
                None => Ok(Some(InFlight::Gather { key, reduction })),
            },
            InFlight::Host(cmd, since) => {
                let Some(result) = self.host_done.remove(&cmd) else {
                    return Ok(Some(InFlight::Host(cmd, since)));
                };
                let ctx = result.map_err(|e| format!("N{} {cmd}: {e}", self.node))?;
                self.stats.host_tasks += 1;
                if let Some(trace) = &mut self.trace {
                    trace.span(crate::trace::Row::Host, format!("host task {cmd}"), since, std::time::Instant::now());
                }
                let mut any = false;
                for v in ctx.views.into_iter().filter(|v| v.produces && !v.bounds.is_empty()) {
                    any = true;
                    self.cover(v.buffer, &v.bounds)?;
                    self.pending.push(GpuOp::Upload {
                        buffer: v.buffer,
                        region: v.bounds,
                        bytes: Arc::new(v.bytes),
                        bounds: v.bounds,
                        context: format!("outputs of host task {cmd}"),
                    });
                }
                Ok(any.then(|| InFlight::Gpu(self.open(), AfterGpu::Done)))
            }
            InFlight::Receive { buffer, region, token, since, key } => {
                let arrived = self.completions.iter().any(|c| c.token == token && c.kind == CompletionKind::Received);
                if !arrived {
                    return Ok(Some(InFlight::Receive { buffer, region, token, since, key }));
                }
                let state = &self.buffers[&buffer];
                self.stats.bytes_received += (region.area() * state.elem_size) as u64;
                self.stats.receive_time += since.elapsed();
                if let Some(trace) = &mut self.trace {
                    let what = format!("await-push {buffer} ({} cells)", region.area());
                    trace.span(crate::trace::Row::Receive, what, since, std::time::Instant::now());
                }
                let pieces = self
                    .engine
                    .take_gathered(key)
                    .ok_or_else(|| format!("internal error: await-push into {buffer} completed without its data"))?;
                for piece in pieces.pieces().iter().filter(|p| !p.bounds().is_empty()) {
                    let b = piece.bounds();
                    let bounds = GridBox::new(b.min(), b.max());
                    self.cover(buffer, &bounds)?;
                    self.pending.push(GpuOp::Upload {
                        buffer,
                        region: bounds,
                        bytes: Arc::new(piece.bytes().to_vec()),
                        bounds,
                        context: format!("await-push into {buffer}"),
                    });
                }
                self.engine.recycle(pieces);
                Ok(Some(InFlight::Gpu(self.open(), AfterGpu::Done)))
            }
        }
    }
}

impl RankLoop<'_> {
    /// Collects the GPU work of device-compute execution `cmd` over `chunk`: its allocations cover what the whole
    /// chunk touches, and one dispatch per box of `launches` (the chunk, or a part of it).
    fn collect_kernel(&mut self, cmd: &Command, chunk: GridBox, launches: &[GridBox]) -> Result<(), String> {
        let rank = self.node;
        let fail = |what: String| format!("N{rank} {} ({}): {what}", cmd.id, cmd.task);
        let CommandKind::Execution { task, .. } = &cmd.kind else {
            return Err(fail("internal error: not an execution".into()));
        };
        let task = self.tm.task(*task).ok_or_else(|| fail("its task was pruned".into()))?;
        let payload = task
            .spec
            .payload
            .as_ref()
            .and_then(|p| p.downcast_ref::<KernelPayload>())
            .ok_or_else(|| fail(format!("{} has no kernel to run", task.ident())))?
            .clone();
        let mut accesses: Vec<(BufferId, AccessMode)> = task.spec.accesses.iter().map(|a| (a.buffer, a.mode)).collect();
        // Reduction buffers bind after the accessors and start from the identity, except where rank 0
        // folds in the current value.
        let mut identities = Vec::new();
        for r in &task.spec.reductions {
            accesses.push((r.buffer, AccessMode::ReadWrite));
            if !(r.include_current_value && rank == 0) {
                identities.push((r.buffer, self.reductions[&r.id].identity()));
            }
        }
        // What each accessor touches on this rank: its allocation must hold it.
        let mut needs = Vec::with_capacity(accesses.len());
        for a in task.spec.accesses.iter() {
            let state = self.buffers.get(&a.buffer).ok_or_else(|| fail(format!("unknown buffer {}", a.buffer)))?;
            let region =
                a.mapper.apply(&chunk, task.spec.dims, &state.extent, state.dims).map_err(|e| fail(e.to_string()))?;
            needs.push((a.buffer, region.bounding_box()));
        }
        for r in &task.spec.reductions {
            needs.push((r.buffer, self.buffers[&r.buffer].extent));
        }
        let dims = task.spec.dims.max(1);
        let context = fail(format!("in {}", task.ident()));
        let check = self.check_bounds.then(|| {
            let mut names: Vec<String> = task
                .spec
                .accesses
                .iter()
                .map(|a| {
                    let mode = format!("{:?}", a.mode).to_lowercase().replace("discardwrite", "discard_write");
                    format!("{mode} of {} through {}", self.buffer_ident(a.buffer), a.mapper.name())
                })
                .collect();
            names
                .extend(task.spec.reductions.iter().map(|r| format!("reduction into {}", self.buffer_ident(r.buffer))));
            let kernel = format!("{}::{}", payload.source.name(), payload.entry);
            let what = format!("{} ({} on N{rank}, kernel {kernel}, chunk {chunk})", task.ident(), cmd.id);
            let (declared, buffers) = needs.iter().map(|&(b, d)| (d, b)).unzip();
            Box::new(CheckInfo { declared, names, buffers, what })
        });
        for (buffer, bounds) in needs {
            self.cover(buffer, &bounds).map_err(fail)?;
        }
        let kernel = if self.check_bounds {
            self.gpu.load_kernel_checked(payload.source, payload.entry)
        } else {
            self.gpu.load_kernel(payload.source, payload.entry)
        };
        let kernel = kernel.map_err(|e| fail(e.to_string()))?;
        // A download collected before this kernel (typically for a push of the previous step) goes out in a batch
        // of its own: in one batch with the kernel, its data would leave only after the kernel, and the rank
        // waiting for it would idle for a whole kernel.
        if self.pending.iter().any(|op| matches!(op, GpuOp::Download { .. })) {
            self.flush()?;
        }
        for (n, launch) in launches.iter().enumerate() {
            self.pending.push(GpuOp::Kernel(PreparedKernel {
                kernel,
                launch: Launch::new(box3(launch), dims),
                accesses: accesses.clone(),
                scalars: payload.scalars.clone(),
                // Reductions never split (start_interior), so the one launch resets them.
                identities: if n == 0 { std::mem::take(&mut identities) } else { Vec::new() },
                context: context.clone(),
                check: check.clone(),
            }));
        }
        Ok(())
    }

    /// For queued command `i` (not ready yet): if it is a kernel whose only unfinished dependencies are
    /// await-pushes still receiving, and a box of its chunk (its interior) reads and writes none of the awaited
    /// cells, collects the interior's dispatch now, so it runs while the data travels; [`start`](Self::start)
    /// runs the rest of the chunk once the data arrived. Returns whether it did.
    fn start_interior(&mut self, i: usize) -> Result<bool, String> {
        let cmd = &self.commands[i];
        let CommandKind::Execution { task, chunk, .. } = &cmd.kind else { return Ok(false) };
        // This runs for every waiting kernel in every loop step: what cannot split is ruled out once, cheaply.
        if self.no_interior.contains(&cmd.id) {
            return Ok(false);
        }
        let Some(task) = self.tm.task(*task) else { return Ok(false) };
        if task.kind() != TaskKind::DeviceCompute
            || !task.spec.reductions.is_empty()
            || chunk.area() <= self.overlap.unwrap_or(usize::MAX)
        {
            self.no_interior.insert(cmd.id);
            return Ok(false);
        }
        // Every dependency must be done or on the GPU queue already, except await-pushes still receiving.
        let mut awaited: Vec<(BufferId, &Region)> = Vec::new();
        for d in &cmd.dependencies {
            if self.is_done(d.command) {
                continue;
            }
            let flight = self.in_flight.iter().find(|(id, _)| *id == d.command).map(|(_, f)| f);
            match flight {
                Some(InFlight::Gpu(_, AfterGpu::Done)) => {}
                Some(InFlight::Receive { buffer, region, .. }) => awaited.push((*buffer, region)),
                _ => {
                    let queued = self.commands.iter().find(|c| c.id == d.command).map(|c| &c.kind);
                    match queued {
                        Some(CommandKind::AwaitPush { transfer, region }) => awaited.push((transfer.buffer, region)),
                        _ => return Ok(false),
                    }
                }
            }
        }
        if awaited.is_empty() {
            return Ok(false);
        }
        let interior = self.interior_box(task, chunk, &awaited);
        let Some(interior) = interior.filter(|b| b.area() >= self.overlap.unwrap_or(usize::MAX)) else {
            let id = self.commands[i].id;
            self.no_interior.insert(id);
            return Ok(false);
        };
        let cmd = self.commands[i].clone();
        let CommandKind::Execution { chunk, .. } = &cmd.kind else { return Ok(false) };
        // In a batch of its own: what was collected before (typically a border and the download its push sends)
        // completes without waiting for the interior.
        self.flush()?;
        self.collect_kernel(&cmd, *chunk, &[interior])?;
        self.interiors.insert(cmd.id, interior);
        self.stats.early_interiors += 1;
        Ok(true)
    }

    /// The interior of `chunk` for `task` given the `awaited` regions ([`crate::overlap::interior`]).
    fn interior_box(
        &self,
        task: &celer_graph::Task,
        chunk: &GridBox,
        awaited: &[(BufferId, &Region)],
    ) -> Option<GridBox> {
        let mut accessors = Vec::with_capacity(task.spec.accesses.len());
        for a in task.spec.accesses.iter() {
            let state = self.buffers.get(&a.buffer)?;
            accessors.push(crate::overlap::Accessor {
                buffer: a.buffer,
                mapper: &a.mapper,
                dims: state.dims,
                extent: state.extent,
            });
        }
        crate::overlap::interior(chunk, task.spec.dims, &accessors, awaited)
    }
}

impl RankLoop<'_> {
    /// Describes task `id` as this rank recorded it, for divergence reports.
    fn describe_task(&self, w: &crate::divergence::WindowTask) -> String {
        let Some(t) = self.tm.task(w.id) else {
            return format!("{} ({}) over {} (pruned already: no more detail)", w.id, w.kind.name(), w.range);
        };
        let s = &t.spec;
        let mut out = format!("{} ({}) over {}", t.ident(), s.kind.name(), s.range);
        for a in s.accesses.iter() {
            out.push_str(&format!("; {} {} {}", a.mode.name(), self.buffer_ident(a.buffer), a.mapper.name()));
        }
        for r in &s.reductions {
            out.push_str(&format!("; reduction {:?} into {}", r.op, self.buffer_ident(r.buffer)));
        }
        out
    }

    /// The ranks' task streams differ in the oldest pending window: finds the first differing task with a
    /// second reduction (every rank saw the same result, so every rank takes part), reports this rank's side and
    /// ends every rank.
    fn diverged(&mut self) -> ! {
        let d = self.divergence.as_ref().expect("the divergence check is on");
        let window = d.stream.oldest().expect("a pending window").clone();
        let detail =
            d.detail.iallreduce_min(StreamHash::window_detail(&window)).map_err(|e| e.to_string()).and_then(|mut r| {
                let deadline = std::time::Instant::now() + DIVERGENCE_DETAIL_TIMEOUT;
                loop {
                    if let Some(min) = r.test(self.comm).map_err(|e| e.to_string())? {
                        return Ok(Some(min.to_vec()));
                    }
                    if std::time::Instant::now() > deadline {
                        return Ok(None);
                    }
                    std::hint::spin_loop();
                }
            });
        let after = window.after.map_or("the start of the program".to_string(), |t| format!("checkpoint {t}"));
        let checkpoint = window.tasks.last().map_or(String::new(), |t| format!("; here it ends with {}", t.id));
        let mut msg = format!(
            "the ranks submitted different tasks (CELER_CHECK_DIVERGENCE): task window {} (after {after}{checkpoint}) \
             differs between ranks",
            window.ordinal
        );
        match detail {
            Ok(Some(min)) => {
                let (first, lo, hi) = StreamHash::first_difference(&min);
                if lo != hi {
                    msg.push_str(&format!("; the window holds {lo} to {hi} tasks across ranks"));
                }
                match first {
                    Some(i) => {
                        let agree = match i {
                            0 => "Its first task already differs".to_string(),
                            1 => "Its first task agrees".to_string(),
                            _ => format!("Its first {i} tasks agree"),
                        };
                        match window.tasks.get(i) {
                            Some(t) => msg.push_str(&format!(
                                ". {agree}; task {} of the window differs, here: {}",
                                i + 1,
                                self.describe_task(t)
                            )),
                            None => msg.push_str(&format!(
                                ". {agree}; here the window ends there, other ranks have more tasks"
                            )),
                        }
                    }
                    None => msg.push_str(&format!(
                        ". Its first {} tasks agree; a later one differs",
                        crate::divergence::DETAIL_TASKS
                    )),
                }
            }
            Ok(None) => msg.push_str(" (the other ranks did not answer the search for the first differing task)"),
            Err(e) => msg.push_str(&format!(" (searching for the first differing task failed: {e})")),
        }
        crate::logging::fatal(&msg);
        std::thread::sleep(STALL_GRACE);
        self.comm.abort(1)
    }
}

/// How many commands of one lost batch a device-loss report lists (the rest are counted).
const LOST_WORK_LISTED: usize = 8;

/// How many queued commands a stall report lists (the rest are counted).
const STALL_REPORT_QUEUED: usize = 8;

impl RankLoop<'_> {
    /// Names command `id` for messages: `C7 await-push of task T3 "consume"`.
    fn command_ident(&self, id: CommandId) -> String {
        match self.cdag.command(id) {
            Some(c) => match self.tm.task(c.task) {
                Some(t) => format!("{id} {} of {}", c.kind.name(), t.ident()),
                None => format!("{id} {} of {}", c.kind.name(), c.task),
            },
            None => format!("{id}"),
        }
    }

    /// The kernel (`file::entry`) an execution command runs, while its task is in memory.
    fn kernel_of(&self, id: CommandId) -> Option<String> {
        let CommandKind::Execution { task, .. } = &self.cdag.command(id)?.kind else { return None };
        let payload = self.tm.task(*task)?.spec.payload.as_ref()?.downcast_ref::<KernelPayload>()?;
        Some(format!("{}::{}", payload.source.name(), payload.entry))
    }

    /// Names buffer `b` for messages: `buffer B0 "data"`.
    fn buffer_ident(&self, b: BufferId) -> String {
        match self.tm.buffer_name(b) {
            Some(name) => format!("buffer {b} \"{name}\""),
            None => format!("buffer {b}"),
        }
    }

    /// The ranks expected to send `region` of `buffer` to the await-push of `task`: the producers among the task's
    /// true dependencies (found only while they are in memory).
    fn expected_senders(&self, task: TaskId, buffer: BufferId, region: &Region) -> Vec<NodeId> {
        let me = NodeId(self.node as u64);
        let Some(t) = self.tm.task(task) else { return Vec::new() };
        let mut ranks: Vec<NodeId> = Vec::new();
        for d in t.dependencies.iter().filter(|d| d.kind == DependencyKind::True) {
            if let Some(p) = self.tm.task(d.task) {
                if p.regions.iter().any(|r| r.buffer == buffer && !r.produced.intersection(region).is_empty()) {
                    ranks.extend(self.cdag.producer_ranks(p, buffer, region));
                }
            }
        }
        ranks.sort();
        ranks.dedup();
        ranks.retain(|&r| r != me);
        ranks
    }

    /// What this rank waits for, one line each: commands in flight (await-pushes with their transfer and expected
    /// senders, GPU work, host tasks, gathers, barriers), sends not yet delivered, data that arrived unasked, and
    /// the queued commands with the dependencies they wait for. For stall reports; costs what formatting costs.
    pub fn waiting_for(&self) -> Vec<String> {
        let now = std::time::Instant::now();
        let mut lines = Vec::new();
        for (id, flight) in &self.in_flight {
            let what = self.command_ident(*id);
            lines.push(match flight {
                InFlight::Receive { buffer, region, since, .. } => {
                    let transfer = self.cdag.command(*id).map_or(String::new(), |c| match &c.kind {
                        CommandKind::AwaitPush { transfer, .. } => format!(" (transfer {transfer})"),
                        _ => String::new(),
                    });
                    let task = self.cdag.command(*id).map(|c| c.task);
                    let senders = task.map(|t| self.expected_senders(t, *buffer, region)).unwrap_or_default();
                    let from = if senders.is_empty() {
                        "expected from another rank (its producer is no longer in memory here)".to_string()
                    } else {
                        let names: Vec<String> = senders.iter().map(|n| n.0.to_string()).collect();
                        let s = if senders.len() == 1 { "" } else { "s" };
                        format!("expected from rank{s} {}", names.join(", "))
                    };
                    format!(
                        "{what}: awaits {} {region}{transfer} {from}, for {:.1} s",
                        self.buffer_ident(*buffer),
                        (now - *since).as_secs_f64()
                    )
                }
                InFlight::Gpu(batch, after) => {
                    let stage = match after.download() {
                        Some(download) => format!("the GPU {download}"),
                        None => {
                            let kernel = self.kernel_of(*id).map_or("kernel or copy".into(), |k| format!("kernel {k}"));
                            format!("GPU work ({kernel})")
                        }
                    };
                    let submitted = if *batch == GpuRef::Open { ", not yet submitted" } else { "" };
                    format!("{what}: waits for {stage}{submitted}")
                }
                InFlight::Host(_, since) => {
                    format!("{what}: host task running for {:.1} s", (now - *since).as_secs_f64())
                }
                InFlight::Gather { reduction, .. } => {
                    format!("{what}: awaits the partial results of reduction {reduction} from every other rank")
                }
                InFlight::Barrier { task, .. } => format!("{what}: barrier epoch {task} waits for every other rank"),
            });
        }
        for (key, target) in self.engine.pending_sends() {
            lines.push(format!("a send of transfer T{}.B{} to rank {target} is not yet received", key.0, key.1));
        }
        for (key, sender, bounds) in self.engine.unmatched_headers() {
            lines.push(format!(
                "rank {sender} sent {bounds:?} of transfer T{}.B{} which no await-push here expects (yet)",
                key.0, key.1
            ));
        }
        for c in self.commands.iter().take(STALL_REPORT_QUEUED) {
            let blockers: Vec<String> = c
                .dependencies
                .iter()
                .filter(|d| !self.is_done(d.command))
                .map(|d| {
                    let state =
                        if self.in_flight.iter().any(|(id, _)| *id == d.command) { "running" } else { "queued" };
                    format!("{} ({state})", d.command)
                })
                .collect();
            lines.push(if blockers.is_empty() {
                format!("{} is queued and ready to start", self.command_ident(c.id))
            } else {
                format!("{} is queued behind {}", self.command_ident(c.id), blockers.join(", "))
            });
        }
        if let Some(w) = self.divergence.as_ref().and_then(|d| d.stream.oldest()) {
            let checkpoint = w.tasks.last().map_or(String::new(), |t| format!(" (up to {})", t.id));
            lines.push(format!(
                "the divergence check of task window {}{checkpoint} waits for the other ranks to reach it",
                w.ordinal
            ));
        }
        if self.commands.len() > STALL_REPORT_QUEUED {
            lines.push(format!("... and {} more queued commands", self.commands.len() - STALL_REPORT_QUEUED));
        }
        lines
    }
}

impl std::fmt::Debug for RankLoop<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RankLoop")
            .field("node", &self.node)
            .field("queued", &self.commands.len())
            .field("in_flight", &self.in_flight.len())
            .finish_non_exhaustive()
    }
}

/// The application's handle on the runtime thread.
#[derive(Debug)]
pub struct RuntimeHandle {
    queue: Arc<SegQueue<Message>>,
    thread: Option<std::thread::JoinHandle<()>>,
    rank: i32,
    ranks: i32,
}

impl RuntimeHandle {
    /// Starts the runtime thread: MPI (as one rank without `mpirun`), the GPU, the loop. `runtime` holds the
    /// diagnostics settings (stall timeout, divergence check, device printing; see [`crate::config`]).
    ///
    /// # Errors
    /// A [`StartError`] on every rank when MPI, or any rank's GPU, did not start.
    pub fn start(config: TaskManagerConfig, runtime: RuntimeConfig) -> Result<Self, StartError> {
        let queue = Arc::new(SegQueue::new());
        let (ready_tx, ready_rx) = mpsc::sync_channel::<Result<(i32, i32), StartError>>(1);
        let q = Arc::clone(&queue);
        let thread = std::thread::Builder::new()
            .name("celer-runtime".into())
            .spawn(move || run(q, config, runtime, ready_tx))
            .map_err(StartError::Thread)?;
        // On failure the thread finalises MPI before it ends: wait for that, so the process never exits first.
        let (rank, ranks) = match ready_rx.recv() {
            Ok(Ok(started)) => started,
            failed => {
                let _ = thread.join();
                return Err(failed.map_or(StartError::ThreadDied, |r| r.err().unwrap_or(StartError::ThreadDied)));
            }
        };
        Ok(Self { queue, thread: Some(thread), rank, ranks })
    }

    /// This process's rank.
    pub fn rank(&self) -> i32 {
        self.rank
    }

    /// Number of ranks.
    pub fn ranks(&self) -> i32 {
        self.ranks
    }

    /// Asks the runtime thread for its [`RankStats`] (blocks until the loop answers, which it does at once).
    pub fn stats(&self) -> Option<RankStats> {
        let (tx, rx) = mpsc::sync_channel(1);
        self.queue.push(Message::Stats(tx));
        rx.recv().ok()
    }

    /// Hands a message to the runtime thread (lock-free, never blocks).
    pub fn send(&self, msg: Message) {
        self.queue.push(msg);
    }

    /// Records the shutdown epoch and waits for the runtime thread to finish everything and finalize MPI.
    pub fn shutdown(&mut self) {
        if let Some(t) = self.thread.take() {
            let (tx, rx) = mpsc::sync_channel(1);
            self.queue.push(Message::Epoch(EpochAction::Shutdown, tx));
            let _ = rx.recv();
            let _ = t.join();
        }
    }
}

impl Drop for RuntimeHandle {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// How long a rank that found a fault every rank may hit (an out-of-bounds access, a lost device) waits before
/// aborting the job, so that the other ranks report theirs too.
const FAULT_GRACE: std::time::Duration = std::time::Duration::from_secs(1);

/// How long a rank that found a stall waits before aborting the job, so that the other ranks, whose own timers
/// run out at about the same time, print what they wait for too.
const STALL_GRACE: std::time::Duration = std::time::Duration::from_secs(1);

/// The runtime thread's body. Any error aborts every rank with a message naming this rank.
/// Epoch and statistics requests answered once every device's loop has answered (`CELER_DEVICES` > 1).
enum Joined {
    Epoch(Vec<mpsc::Receiver<()>>, mpsc::SyncSender<()>),
    Stats(Vec<mpsc::Receiver<RankStats>>, Vec<RankStats>, mpsc::SyncSender<RankStats>),
}

impl Joined {
    /// Collects what arrived; answers and returns `true` once every loop has.
    fn poll(&mut self) -> bool {
        match self {
            Joined::Epoch(waiting, reply) => {
                waiting.retain(|r| !matches!(r.try_recv(), Ok(()) | Err(mpsc::TryRecvError::Disconnected)));
                if waiting.is_empty() {
                    let _ = reply.send(());
                }
                waiting.is_empty()
            }
            Joined::Stats(waiting, got, reply) => {
                waiting.retain(|r| match r.try_recv() {
                    Ok(stats) => {
                        got.push(stats);
                        false
                    }
                    Err(mpsc::TryRecvError::Empty) => true,
                    Err(mpsc::TryRecvError::Disconnected) => false,
                });
                if waiting.is_empty() {
                    let mut all = got.first().cloned().unwrap_or_default();
                    for other in got.iter().skip(1) {
                        all.absorb(other);
                    }
                    let _ = reply.send(all);
                }
                waiting.is_empty()
            }
        }
    }
}

/// Hands `msg` to every device's loop (`loops.len()` > 1): copies of buffers and tasks to each; epochs and
/// statistics through per-loop channels joined in `joined`; a fence's data from the first loop (every node
/// receives the same data).
fn fan_out(msg: Message, loops: &mut [RankLoop<'_>], joined: &mut Vec<Joined>) -> Result<(), String> {
    let n = loops.len();
    match msg {
        Message::Epoch(action, reply) => {
            let mut waiting = Vec::with_capacity(n);
            for l in loops.iter_mut() {
                let (tx, rx) = mpsc::sync_channel(1);
                waiting.push(rx);
                l.handle(Message::Epoch(action, tx))?;
            }
            joined.push(Joined::Epoch(waiting, reply));
        }
        Message::Stats(reply) => {
            let mut waiting = Vec::with_capacity(n);
            for l in loops.iter_mut() {
                let (tx, rx) = mpsc::sync_channel(1);
                waiting.push(rx);
                l.handle(Message::Stats(tx))?;
            }
            joined.push(Joined::Stats(waiting, Vec::new(), reply));
        }
        Message::Fence(spec, reply) => {
            for (i, l) in loops.iter_mut().enumerate() {
                let reply = if i == 0 { reply.clone() } else { mpsc::sync_channel(1).0 };
                l.handle(Message::Fence(spec.clone(), reply))?;
            }
        }
        Message::CreateBuffer { id, dims, extent, elem_size, data, name } => {
            for l in loops.iter_mut() {
                let (data, name) = (data.clone(), name.clone());
                l.handle(Message::CreateBuffer { id, dims, extent, elem_size, data, name })?;
            }
        }
        Message::NameBuffer(id, name) => {
            for l in loops.iter_mut() {
                l.handle(Message::NameBuffer(id, name.clone()))?;
            }
        }
        Message::DestroyBuffer(id) => loops.iter_mut().try_for_each(|l| l.handle(Message::DestroyBuffer(id)))?,
        Message::CreateHostObject(id) => {
            loops.iter_mut().try_for_each(|l| l.handle(Message::CreateHostObject(id)))?;
        }
        Message::DestroyHostObject(id) => {
            loops.iter_mut().try_for_each(|l| l.handle(Message::DestroyHostObject(id)))?;
        }
        Message::Submit(spec) => loops.iter_mut().try_for_each(|l| l.handle(Message::Submit(spec.clone())))?,
    }
    Ok(())
}

fn run(
    queue: Arc<SegQueue<Message>>,
    config: TaskManagerConfig,
    runtime: RuntimeConfig,
    ready: mpsc::SyncSender<Result<(i32, i32), StartError>>,
) {
    let comm = match celer_exec::mpi::init() {
        Ok(c) => c,
        Err(e) => {
            let _ = ready.send(Err(StartError::Mpi(e)));
            return;
        }
    };
    let rank = comm.rank();
    crate::logging::set_rank(rank);
    let abort = |what: String| -> ! {
        crate::logging::fatal(&what);
        comm.abort(1)
    };
    // One communicator per device index (every rank's device d receives on the d-th), duplicated in the same
    // order on every rank.
    let devices = runtime.devices.max(1);
    let dups: Vec<Communicator> = (1..devices)
        .map(|_| comm.duplicate_full().unwrap_or_else(|e| abort(format!("MPI communicator for a device: {e}"))))
        .collect();
    let comms: Vec<&Communicator> = std::iter::once(&comm).chain(dups.iter()).collect();
    let mut loops = Vec::with_capacity(devices);
    // Every GPU first, then one agreement of all ranks: a failure anywhere is an `Err` on every rank.
    let gpus = (0..devices)
        .map(|k| {
            let options = celer_exec::gpu::GpuOptions {
                device_of_rank: (k, devices),
                lose_device_at_poll: runtime.inject_device_lost,
                ..Default::default()
            };
            Gpu::with_options(options).map_err(|error| StartError::Gpu { rank, device: k, error })
        })
        .collect::<Result<Vec<Gpu>, StartError>>();
    let gpus = match crate::startup::agree(&comm, gpus) {
        Ok(gpus) => gpus,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    for (k, gpu) in gpus.into_iter().enumerate() {
        let which = if devices > 1 { format!("rank {rank} (device {k} of {devices})") } else { format!("rank {rank}") };
        let line = format!("{which} of {} runs on {}", comm.size(), gpu.info());
        if runtime.print_device {
            crate::logging::always(log::Level::Info, &line);
        } else {
            log::info!("{line}");
        }
        let l = RankLoop::for_device(&comms, k, gpu, config.clone(), &runtime).unwrap_or_else(|e| abort(e));
        loops.push(l);
    }
    let _ = ready.send(Ok((rank, comm.size())));
    let mut joined: Vec<Joined> = Vec::new();
    let mut last = std::time::Instant::now();
    // Stall detection costs one comparison per idle iteration: `now` is taken for the statistics anyway.
    let mut last_progress = last;
    loop {
        let mut busy = false;
        while let Some(msg) = queue.pop() {
            busy = true;
            let handled = if devices == 1 { loops[0].handle(msg) } else { fan_out(msg, &mut loops, &mut joined) };
            if let Err(e) = handled {
                abort(e);
            }
        }
        if !joined.is_empty() {
            joined.retain_mut(|j| !j.poll());
        }
        let mut progressed = busy;
        let mut done = true;
        for rank_loop in loops.iter_mut() {
            let stepped = rank_loop.step();
            let now = std::time::Instant::now();
            let stepped = stepped.unwrap_or_else(|e| {
                if rank_loop.fault_grace {
                    crate::logging::fatal(&e);
                    std::thread::sleep(FAULT_GRACE);
                    comm.abort(1)
                }
                abort(e)
            });
            if let Some(trace) = &mut rank_loop.trace {
                trace.loop_state(busy || stepped, now);
            }
            if busy || stepped {
                rank_loop.stats.busy += now - last;
            } else {
                rank_loop.stats.idle += now - last;
            }
            progressed |= stepped;
            done &= rank_loop.is_shut_down() && rank_loop.is_idle();
        }
        let now = std::time::Instant::now();
        if progressed {
            last_progress = now;
        } else if let Some(limit) = runtime.stall_timeout {
            if now - last_progress > limit && loops.iter().any(|l| l.has_pending_work()) {
                let lines: Vec<String> = loops.iter().flat_map(|l| l.waiting_for()).collect();
                abort_stalled(&comm, now - last_progress, &lines);
            }
        }
        last = now;
        if !progressed {
            if done && joined.is_empty() {
                break;
            }
            std::hint::spin_loop();
        }
    }
    let mut traces = Vec::new();
    let mut all_stats = Vec::new();
    for mut rank_loop in loops {
        match rank_loop.write_graph_dumps() {
            Ok(files) => {
                for f in files {
                    log::info!("wrote {}", f.display());
                }
            }
            Err(e) => log::warn!("CELER_DUMP_GRAPHS: {e}"),
        }
        traces.extend(rank_loop.trace.take());
        all_stats.push(rank_loop.stats.clone());
    }
    for stats in &all_stats {
        log::info!("{}", stats.summary());
        if let Some(w) = scheduler_bound_warning(stats) {
            log::warn!("{w}");
        }
    }
    if let Some(path) = &runtime.trace {
        let traces: Vec<&crate::trace::Trace> = traces.iter().collect();
        match crate::trace::gather_all_and_write(&comm, &traces, path) {
            Ok(()) if rank == 0 => log::info!("wrote the timeline of every rank to {}", path.display()),
            Ok(()) => {}
            Err(e) => log::warn!("{e}"),
        }
    }
    drop(dups);
    drop(comm);
}

fn abort_stalled(comm: &Communicator, idle: std::time::Duration, lines: &[String]) -> ! {
    let mut msg = format!(
        "stalled: no progress for {:.1} s with work pending (CELER_STALL_TIMEOUT; raise it or set it to off if a \
         kernel, host task or another rank's application thread legitimately takes this long). This rank waits for:",
        idle.as_secs_f64()
    );
    for l in lines {
        msg.push_str("\n    ");
        msg.push_str(l);
    }
    crate::logging::fatal(&msg);
    std::thread::sleep(STALL_GRACE);
    comm.abort(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn stats(kernels: u64, busy_ms: u64, idle_ms: u64, gpu_ms: u64) -> RankStats {
        RankStats {
            kernels,
            busy: Duration::from_millis(busy_ms),
            idle: Duration::from_millis(idle_ms),
            kernel_time: Duration::from_millis(gpu_ms),
            ..RankStats::default()
        }
    }

    #[test]
    fn a_busy_loop_beside_an_idle_gpu_is_called_scheduler_bound() {
        let w = scheduler_bound_warning(&stats(5000, 800, 200, 300)).expect("busy 80 %, GPU 30 %");
        assert!(w.contains("busy 80%") && w.contains("in flight 30%") && w.contains("5000 kernels"), "{w}");
        // GPU-bound, idle loop, or too short a run: silent.
        assert!(scheduler_bound_warning(&stats(5000, 800, 200, 900)).is_none());
        assert!(scheduler_bound_warning(&stats(5000, 200, 800, 100)).is_none());
        assert!(scheduler_bound_warning(&stats(999, 800, 200, 100)).is_none());
        // 800 ms of loop time over 2000 kernels is 400 µs each: something else kept the loop busy.
        assert!(scheduler_bound_warning(&stats(2000, 800, 200, 100)).is_none());
    }
}
