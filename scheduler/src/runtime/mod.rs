//! The per-rank runtime: one thread that owns MPI, the GPU and the command graph, and runs commands.
//!
//! - The application thread builds the task graph (checking each task, computing its regions, dependencies and
//!   horizons) and sends the built tasks and everything else as [`Message`]s through a lock-free
//!   [`SegQueue`](crossbeam_queue::SegQueue); answers (fence data, reached epochs) come back on one-shot channels,
//!   which only `wait`-style calls block on. The runtime's task manager replays the built tasks
//!   ([`TaskManager::replay`](celer_graph::TaskManager::replay): same ids and horizons, nothing recomputed) and holds
//!   them until their commands completed.
//! - The runtime thread takes new messages and runs [`RankLoop::step`] in a loop: generate commands → poll
//!   completions → retire → start ready commands → submit the step's GPU batch. Nothing blocks; it spins while
//!   GPU or MPI work is in flight, and otherwise backs off (spin, yield, then park for up to a millisecond, woken
//!   by a message or a finished host task).
//! - MPI is initialised on the runtime thread with `MPI_THREAD_FUNNELED`: it is the only thread that calls MPI.
//! - A rank that drives several devices (`CELER_DEVICES`) runs one [`RankLoop`] per device on the same thread, each
//!   a node of the command graph (node `rank × devices + device`) with its own communicator, transfer engine and
//!   GPU: the task's split over nodes splits the rank's chunk over its devices, and data moves between devices
//!   like between ranks (through MPI, which copies within the process), except between devices on one Vulkan
//!   device, whose halos the GPU copies (`peer`, `CELER_PEER_COPIES`).
//!
//! Commands start **out of order**, as soon as their dependencies allow (see [`RankLoop::step`]); several GPU
//! batches, receives and sends are in flight at once, and dependent kernels are submitted back to back. Memory:
//! each buffer has at most one device allocation per rank, allocated when a command first touches the buffer and
//! covering the bounding box of what this rank's commands touched so far; a command that needs more grows it
//! with a device copy (`RankLoop::cover`). Transfers move packed boxes through the GPU's host-visible
//! staging (a push sends straight from its download, an await-push receives into staging its upload reads), never
//! a host copy of the whole buffer, nor of a box.
//! A kernel that waits for data from other ranks first runs the part of its chunk that needs none of it (its
//! interior, `RankLoop::start_interior`; `CELER_OVERLAP`), so halo exchanges overlap computation.
//! An allocation also covers what the queued commands (`CELER_LOOKAHEAD` of them) will need of the buffer, so an
//! access pattern that widens over the next steps allocates once.
//!
//! The rooms of the runtime, one module each:
//!
//! | module | owns |
//! |---|---|
//! | this one | [`RankLoop`]: its state and set-up, and the step in its named parts |
//! | `messages` | the application thread's messages applied to the loop: buffers, host objects, tasks replayed |
//! | `thread` | the runtime thread: [`RuntimeHandle`], [`Message`], the loop over the devices' loops |
//! | `watch` | the runtime thread's progress and heartbeat as the application thread reads them; [`Watch`] |
//! | `commands` | what a command in flight waits for; starting and finishing commands by kind; fences, horizons, epochs |
//! | `kernel` | device-compute executions: dispatches, early interiors, bounds-check records; [`KERNEL_CELLS`] |
//! | `transfer` | pushes and await-pushes through the transfer engine |
//! | `peer` | halos between devices of the rank on one Vulkan device, copied on the GPU: links, offers and acks |
//! | `reduction` | reductions' element types and operators; gathering and combining partial results |
//! | `host` | host tasks: [`HostContext`] and the pool of worker threads (`CELER_HOST_THREADS`) |
//! | `alloc` | device allocations and their look-ahead; large host allocations that may be refused |
//! | `boxes` | the graph's boxes as the backends' and back |
//! | `batch` | the step's GPU batch: collected operations, recorded and submitted together |
//! | `panics` | which task's code runs on the runtime thread; turning a panic in it into an error that ends the job |
//! | `exit` | ending the process cleanly: the `atexit` hook for `std::process::exit`, SIGINT/SIGTERM |
//! | `error` | [`RuntimeError`]: one variant per failure, with the command, task, buffer and kernel at fault |
//! | `idle` | how the runtime thread waits when nothing progresses: spin, yield, park |
//! | `pin` | `CELER_PIN`: the runtime thread's core and the application thread's |
//! | `stall` | the ranks' votes that tell a deadlock (every rank waits inside the runtime) from a busy application |
//! | `diagnostics` | [`RankStats`], trace spans of batches, divergence check, stall and device-loss reports, dumps |

mod alloc;
mod batch;
mod boxes;
mod commands;
mod diagnostics;
mod error;
mod exit;
mod host;
mod idle;
mod kernel;
mod messages;
mod panics;
mod peer;
mod pin;
mod reduction;
mod stall;
mod thread;
mod transfer;
mod watch;

pub use diagnostics::{scheduler_bound_warning, RankStats, DIVERGENCE_WINDOWS};
pub use error::{CombineNotCommutative, KernelAllocationError, OutOfBoundsAccess, RuntimeError};
pub use host::{fence_wait_deadlock, HostContext, HostFn, HostPayload, ObjectValue, SharedObject};
pub use kernel::{KernelPayload, KERNEL_CELLS};
pub use panics::panic_text;
pub use reduction::{same_element, CombineFn, CustomReduction, ScalarKind};
pub use thread::{
    Message, NewBuffer, RuntimeHandle, CREATION_DATA_BACKLOG, DROPPED_BUFFER_BACKLOG, FENCE_DATA_BACKLOG,
    MESSAGE_BACKLOG,
};
pub use watch::Watch;

use std::collections::VecDeque;
use std::sync::mpsc;

use celer_exec::gpu::Gpu;
use celer_exec::mpi::Communicator;
use celer_exec::transfer::TransferEngine;
// The rank loop's maps are keyed by ids: hashed with `IdHasher` (one multiplication), not a general-purpose hasher.
use celer_graph::IdMap as HashMap;
use celer_graph::{
    AccessMode, BufferId, Command, CommandDependency, CommandId, CommandKind, GridBox, NodeId, ReductionId, TaskId,
    TaskManager, TaskManagerConfig,
};
use smallvec::SmallVec;

/// The most bytes of views that the host tasks a rank (a device loop) started and that have not completed may hold:
/// a host task is not started while those of the others reach this, until one of them completes. A started host
/// task holds its views (the bounding box of each accessor's region, downloaded) until it completes, and host tasks
/// that only read a buffer do not depend on each other, so all of them were ready at once and started: 3 000 host
/// tasks reading a 1 MiB buffer, submitted in a loop, held 6.2 GB on one rank and took 18 s (2-core VM, lavapipe;
/// now 220 MB and 2.2 s). Counted in bytes rather than tasks: a count of 4 per host thread slowed 20 000 host tasks
/// of 16-byte views by a quarter (fewer downloads to a batch); 64 MiB still lets 64 host tasks of 1 MiB views
/// wait for the workers.
pub const HOST_VIEW_BACKLOG: usize = 64 << 20;

/// The most started commands' boxes [`RankLoop`] keeps to reuse for new commands.
const SPARE_COMMANDS: usize = 1024;

/// The most tasks `CELER_DUMP_GRAPHS` keeps (with their commands) for the DOT files written at shutdown: the first
/// ones; later ones are counted, not kept, and the files' labels say how many. A copy of a task and its commands
/// takes about 1 KiB, so without the cap a long run's memory grew with every task (`soak_patterns --pattern host`
/// with the dumps on: 123 MiB after 40 000 rounds, 193 MiB after 100 000), and Graphviz renders no graph of this
/// many nodes anyway.
pub const DUMP_TASKS: usize = 20_000;

/// What `CELER_DUMP_GRAPHS` keeps for the task graph's DOT file until shutdown.
#[derive(Debug)]
struct GraphDump {
    /// The directory the files go to.
    dir: std::path::PathBuf,
    /// Copies of the first [`DUMP_TASKS`] tasks.
    tasks: Vec<celer_graph::Task>,
    /// Tasks recorded after those, not kept.
    unkept: u64,
}

/// A set of ids, hashed like [`IdMap`](celer_graph::IdMap): the runtime thread looks ids up several times per command.
type IdSet<K> = hashbrown::HashSet<K, std::hash::BuildHasherDefault<celer_graph::IdHasher>>;

use self::alloc::BufferState;
use self::batch::{GpuOp, GpuRef};
use self::commands::{AfterGpu, InFlight, ReadinessKind};
use self::diagnostics::DivergenceCheck;
use self::host::HostWorker;
use self::kernel::PendingCheck;
use self::panics::UserCode;
use self::reduction::Reductions;
use crate::cdag::{CdagConfig, CommandGraphGenerator};
use crate::config::RuntimeConfig;
use crate::divergence::StreamHash;

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
    /// Staging memory of `gpu` lent to `engine`: MPI sends from and receives into it (declared after `engine`,
    /// so that the engine's drop cancels its receives first).
    lent: self::transfer::Lent,
    /// The tasks the application thread built, replayed; pruned as horizons and epochs are reached here.
    tm: TaskManager,
    cdag: CommandGraphGenerator,
    buffers: HashMap<BufferId, BufferState>,
    /// Commands generated and not started yet, in generation order. Boxed: `start_ready` takes commands out of the
    /// middle (behind horizons that wait for the GPU), which then moves pointers rather than whole commands.
    commands: VecDeque<Box<Command>>,
    /// The boxes of started commands, for `generate` to fill again: a program that submits far ahead queues
    /// hundreds of commands at once, more than the allocator's per-thread cache keeps. At most as many as were ever
    /// queued at once.
    // The boxes themselves are what is kept (their allocations), not the commands.
    #[allow(clippy::vec_box)]
    spare_commands: Vec<Box<Command>>,
    /// Commands started and not yet complete.
    in_flight: Vec<(CommandId, InFlight)>,
    /// Commands in flight whose GPU work is all they wait for (`InFlight::Gpu(_, AfterGpu::Done)`), and queued
    /// horizons whose dependencies are all complete or here: a GPU command depending on one may start at once,
    /// queued behind it.
    gpu_tail: IdSet<CommandId>,
    /// Completed commands above the watermark; every command below `watermark` is complete.
    done: IdSet<CommandId>,
    watermark: u64,
    fences: HashMap<TaskId, mpsc::SyncSender<Vec<u8>>>,
    /// The bytes of fence data answered so far (each fence at most [`FENCE_DATA_BACKLOG`]), published to the
    /// application thread for the back-pressure of fences.
    fence_bytes_answered: u64,
    epochs: HashMap<TaskId, mpsc::SyncSender<()>>,
    /// The previous horizon executed: when the next one runs, everything before this one is pruned.
    last_horizon: Option<TaskId>,
    /// Buffers the program dropped, with the next task id and the next command id at the time (in drop order, so
    /// both ascend): their device allocation and creation data are freed once every command generated before the
    /// drop has completed (the command watermark reaches that id), or a horizon or epoch at or after that task is
    /// reached. Horizons alone come rarely where tasks do not depend on each other (only when `horizon_max_parallelism`
    /// tasks have no successor) and free one horizon late, so a loop that creates and drops buffers held hundreds.
    dropped: Vec<(BufferId, TaskId, CommandId)>,
    /// Every task below this id has completed on this node (the last horizon or epoch reached), for `submit`'s
    /// back-pressure.
    completed_before: TaskId,
    completions: Vec<celer_exec::transfer::Completion>,
    batches: Vec<celer_exec::gpu::BatchId>,
    next_token: u64,
    shutdown: bool,
    /// The shutdown epoch was recorded: tasks that still arrive come from a thread that submits while the process
    /// exits (`std::process::exit` on another thread, whose exit hook recorded the epoch), and are dropped.
    shutdown_recorded: bool,
    /// Whether the warning about tasks after the shutdown epoch was given.
    late_warned: bool,
    host: HostWorker,
    /// GPU work started in this step, submitted together by `flush` at its end.
    pending: Vec<GpuOp>,
    /// How many downloads `pending` holds (the next download slot).
    pending_downloads: usize,
    /// How many of them are downloads of a buffer's cells (`GpuOp::Download`), which a kernel does not join.
    pending_buffer_downloads: usize,
    /// Whether a command started in this step waits for the collected batch (even an empty one).
    open_refs: bool,
    /// How many queued commands a step scans for ready ones (`CELER_LOOKAHEAD`).
    lookahead: usize,
    /// Host-task commands started and not yet complete (their inputs downloading, queued for or running on a
    /// worker, held for the divergence check, or uploading what they wrote), with the bytes of their views; and
    /// the sum of those, which [`HOST_VIEW_BACKLOG`] bounds.
    host_started: HashMap<CommandId, usize>,
    host_view_bytes: usize,
    /// `CELER_OVERLAP`: run the interior of kernels that wait for transfers early, if it has this many cells.
    overlap: Option<usize>,
    /// Execution commands whose interior already runs (or was collected), with that interior; the rest of the
    /// chunk runs when the command is ready.
    interiors: HashMap<CommandId, GridBox>,
    /// Waiting execution commands found not to split (removed when they start).
    no_interior: IdSet<CommandId>,
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
    /// The loop's current phase of busy or idle iterations, not yet counted in `stats.busy` or `stats.idle`
    /// ([`account`](Self::account)).
    phase: idle::Phases,
    /// Operation and element type of the reductions submitted that commands may still use, known on every rank.
    reductions: Reductions,
    /// Scratch allocations holding block reductions' results per block, from the kernel until its download is read.
    scratch: HashMap<u64, celer_exec::gpu::DeviceAllocation>,
    next_scratch: u64,
    /// Scratch allocations whose batch completed, kept for the next block reduction over the same blocks.
    spare_scratch: Vec<celer_exec::gpu::DeviceAllocation>,
    /// The storage of `collect_kernel`'s list of what each binding needs allocated, kept between kernels.
    needs_scratch: Vec<(BufferId, GridBox)>,
    /// Binding lists of kernels of more than four bindings (which spill their inline storage), given back by
    /// `flush` and reused by `collect_kernel`: a kernel binding nine buffers allocated one every task.
    spare_bindings: Vec<SmallVec<[(BufferId, AccessMode); 4]>>,
    /// Per buffer with a pending deterministic reduction: the reduction and this node's nodes of its tree
    /// (encoded by [`crate::blocks::encode`]), for the push and the reduction command that read them. A buffer's
    /// next block reduction replaces them (its kernel depends on those readers).
    block_roots: HashMap<BufferId, (ReductionId, Vec<u8>)>,
    /// Per buffer: the last deterministic reduction result this node uploaded into it, and the command that did,
    /// for fences that read it (`known_result`).
    known_results: HashMap<BufferId, (CommandId, Vec<u8>)>,
    /// Partial results gathered from the other ranks, until the reduction command combines them.
    gathered: HashMap<ReductionId, celer_exec::transfer::Gathered>,
    /// Host tasks the workers finished, by command.
    host_done: HashMap<CommandId, (self::host::HostResult, self::host::HostRan)>,
    /// The divergence check (with more than one rank); with the check off, its windows only pace the ranks.
    divergence: Option<DivergenceCheck<'c>>,
    /// `CELER_DUMP_GRAPHS`: where the DOT files go at shutdown, and a copy of the first [`DUMP_TASKS`] tasks (the
    /// command generator records their commands meanwhile).
    dump: Option<GraphDump>,
    /// `CELER_CHECK_BOUNDS`: kernels run their checked variant; `checks` holds the records of batches in flight.
    check_bounds: bool,
    checks: Vec<PendingCheck>,
    /// The kernel the last kernel command dispatched, by its compiled file and entry point (both `'static`, so
    /// their addresses name them) and whether it is the checked variant: consecutive tasks of one kernel skip the
    /// `Gpu`'s lookup by name.
    last_kernel: Option<(&'static celer_exec::shaders::KernelSource, &'static str, bool, celer_exec::gpu::KernelId)>,
    /// One cell per element size, which an accessor whose range mapper gave its chunk no cells binds instead of its
    /// buffer's allocation (`Access::empty`): what a faulty kernel writes through it lands there, not in the buffer.
    empty_cells: Vec<celer_exec::gpu::DeviceAllocation>,
    /// Set with an error that every rank is likely to hit at about the same time (an out-of-bounds access of a
    /// distributed kernel, a lost device): the runtime thread then waits `FAULT_GRACE` before ending the job, so
    /// that the other ranks print theirs too.
    pub(crate) fault_grace: bool,
    /// The ids of the tasks being turned into commands (kept to reuse its storage).
    new_tasks: Vec<TaskId>,
    /// Whether what decides which queued commands are ready may have changed since `start_ready` last scanned
    /// them (commands generated, completed or started, GPU tails noted, commands in flight changing kind): a scan
    /// of unchanged state finds nothing to start, so a step that polls without progress skips it.
    ready_changed: bool,
    /// Whether `retire` has something to look at: a GPU batch, transfer or host task completed since its last
    /// pass, or a command in flight waits for something other than a GPU batch (which `retire` polls itself).
    /// Commands that wait only for GPU batches cannot finish before `poll_completions` sees one complete.
    retire_due: bool,
    /// Whose code (range mappers) the loop may be running, for the message if it panics.
    user_code: UserCode,
    /// With `CELER_PEER_COPIES` and devices of this rank on this loop's Vulkan device: the mail between their loops.
    peer: Option<self::peer::PeerLink>,
    /// Offers of pushes collected in the open batch, posted once it is submitted.
    peer_out: Vec<self::peer::PendingOffer>,
    /// Offers received whose await-push has not completed yet (its engine counts their cells as arrived).
    peer_in: Vec<self::peer::Offer>,
    /// Copies of this device's pushes submitted by other devices: the next batch waits for them on the GPU, so
    /// that nothing it holds overwrites their source before they read it.
    peer_waits: Vec<celer_exec::gpu::SignalPoint>,
}

impl<'c> RankLoop<'c> {
    /// Sets up a rank on an initialised communicator and a GPU.
    ///
    /// # Errors
    /// Transfer-engine and MPI start-up errors.
    /// With more than one rank, creates the divergence check's communicators (collective: every rank must do it)
    /// and compares windows if `runtime.check_divergence`; records tasks and commands if `runtime.dump_graphs`.
    pub fn new(
        comm: &'c Communicator,
        gpu: Gpu,
        config: TaskManagerConfig,
        runtime: &RuntimeConfig,
    ) -> Result<Self, RuntimeError> {
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
    ) -> Result<Self, RuntimeError> {
        let comm = *comms.get(device).ok_or(RuntimeError::NoCommunicator { device, devices: comms.len() })?;
        if runtime.trace.is_some() {
            // The trace shows each batch's operations as the device timed them, where the device can.
            gpu.enable_timestamps()?;
        }
        let check_divergence = runtime.check_divergence;
        let num_ranks = comm.size() as usize * comms.len().max(1);
        let divergence = if num_ranks > 1 {
            Some(DivergenceCheck {
                enabled: check_divergence,
                side: comm.duplicate()?,
                detail: comm.duplicate()?,
                stream: StreamHash::new(),
                reductions: VecDeque::new(),
                samples: Vec::new(),
                held: Vec::new(),
            })
        } else {
            None
        };
        let node = comm.rank() * comms.len().max(1) as i32 + device as i32;
        let local = NodeId(node as u64);
        // This process's devices (the task graph's configuration does not carry them here).
        let devices_per_rank = comms.len().max(1);
        let mut tm = TaskManager::new(TaskManagerConfig { num_ranks, ..config });
        tm.drain_new_tasks().for_each(drop);
        Ok(Self {
            comm,
            node,
            nodes: num_ranks as i32,
            device,
            devices: comms.len().max(1),
            engine: TransferEngine::for_device(comms, device)?,
            gpu,
            lent: self::transfer::Lent::default(),
            tm,
            cdag: CommandGraphGenerator::new(CdagConfig {
                num_ranks,
                local,
                record: runtime.dump_graphs.is_some(),
                devices_per_rank,
            }),
            buffers: HashMap::default(),
            commands: VecDeque::new(),
            spare_commands: Vec::new(),
            in_flight: Vec::new(),
            gpu_tail: IdSet::default(),
            done: IdSet::default(),
            // C0 (the initial epoch) is complete from the start.
            watermark: 1,
            fences: HashMap::default(),
            fence_bytes_answered: 0,
            epochs: HashMap::default(),
            last_horizon: None,
            dropped: Vec::new(),
            completed_before: TaskId(0),
            completions: Vec::new(),
            batches: Vec::new(),
            next_token: 0,
            shutdown: false,
            shutdown_recorded: false,
            late_warned: false,
            host: HostWorker::start(runtime.host_threads),
            pending: Vec::new(),
            pending_downloads: 0,
            pending_buffer_downloads: 0,
            open_refs: false,
            lookahead: runtime.lookahead,
            host_started: HashMap::default(),
            host_view_bytes: 0,
            overlap: runtime.overlap,
            interiors: HashMap::default(),
            no_interior: IdSet::default(),
            trace: runtime.trace.as_ref().map(|_| crate::trace::Trace::new(node)),
            traced_batches: Vec::new(),
            timings: Vec::new(),
            kernel_batches: Vec::new(),
            stats: RankStats { rank: node as usize, ..RankStats::default() },
            phase: idle::Phases::new(std::time::Instant::now()),
            reductions: Reductions::default(),
            gathered: HashMap::default(),
            scratch: HashMap::default(),
            next_scratch: 0,
            spare_scratch: Vec::new(),
            needs_scratch: Vec::new(),
            spare_bindings: Vec::new(),
            block_roots: HashMap::default(),
            known_results: HashMap::default(),
            host_done: HashMap::default(),
            divergence,
            dump: runtime.dump_graphs.clone().map(|dir| GraphDump { dir, tasks: Vec::new(), unkept: 0 }),
            check_bounds: runtime.check_bounds,
            last_kernel: None,
            empty_cells: Vec::new(),
            checks: Vec::new(),
            fault_grace: false,
            new_tasks: Vec::new(),
            ready_changed: true,
            retire_due: true,
            user_code: UserCode::None,
            peer: None,
            peer_out: Vec::new(),
            peer_in: Vec::new(),
            peer_waits: Vec::new(),
        })
    }

    /// Whether the shutdown epoch has run.
    pub fn is_shut_down(&self) -> bool {
        self.shutdown
    }

    /// Whether the application has ended its program: its shutdown epoch was submitted (the queue dropped, or
    /// `std::process::exit` called), whether or not the work before it has completed.
    pub(super) fn program_ended(&self) -> bool {
        self.shutdown_recorded
    }

    /// Turns the tasks recorded since the last call into this rank's commands, queued in generation order; closes
    /// the divergence check's windows and keeps the graph dump's copy of each task.
    // Out of line (called at most once a step): a profile (callgrind) then reports each phase of `step` apart.
    #[inline(never)]
    fn generate(&mut self) -> Result<(), RuntimeError> {
        if !self.tm.has_new_tasks() {
            self.user_code = UserCode::None;
            return Ok(());
        }
        let mut new = std::mem::take(&mut self.new_tasks);
        self.tm.take_new_tasks(&mut new);
        self.stats.tasks += new.len() as u64;
        for &id in &new {
            self.user_code = UserCode::Task(id);
            let task = self.tm.task(id).expect("new tasks are live");
            if let Some(dump) = &mut self.dump {
                if dump.tasks.len() < DUMP_TASKS {
                    dump.tasks.push(task.clone());
                } else {
                    // The cap: neither this task nor its commands (generated below) are kept.
                    dump.unkept += 1;
                    self.cdag.stop_recording();
                }
            }
            if let Some(d) = self.divergence.as_mut() {
                // With the check off, windows at horizons and epochs alone, hashing nothing: their reductions
                // only pace this rank (`divergence_hold`).
                let closes = if d.enabled {
                    // What its custom range mappers give (nothing to do for built-in ones, which the task hash
                    // covers by their parameters).
                    d.samples.clear();
                    self.cdag.sample_custom_mappers(task, &mut d.samples);
                    d.stream.record_sampled(task, &d.samples)
                } else {
                    crate::divergence::is_pacing_point(task.kind())
                };
                if closes {
                    let values = d.stream.close(id);
                    d.reductions.push_back(d.side.iallreduce_min(values)?);
                }
            }
            self.cdag.build_task(task)?;
            let cdag = &self.cdag;
            for &c in cdag.last_built() {
                let cmd = cdag.command(c).expect("just generated");
                let boxed = match self.spare_commands.pop() {
                    Some(mut spare) => {
                        (*spare).clone_from(cmd);
                        spare
                    }
                    None => Box::new(cmd.clone()),
                };
                self.commands.push_back(boxed);
            }
            self.ready_changed = true;
        }
        self.new_tasks = new;
        self.user_code = UserCode::None;
        Ok(())
    }

    /// Makes progress, in this order: **generate** the commands of the tasks recorded since the last step, **poll
    /// completions** of the GPU, MPI and the host workers, **retire** the commands in flight that completed, **start
    /// ready** commands, and **submit the batch** of GPU work the started commands collected once it is due
    /// (the GPU runs short of work, a download waits, or the batch is full). Returns
    /// whether anything happened: something completed, started or was submitted, or the transfer engine took in
    /// messages. Data arriving counts although no command may complete before the last message of a transfer: a
    /// receive of many messages (the header messages of a region of many boxes of a few KiB, each its own message,
    /// of which a poll takes in at most 16 a pass) kept the loop from counting progress, so it backed off to
    /// parking between polls (20 000 boxes of 2 KiB on 2 ranks: 2 300 parks, a fence of 3.2 s).
    ///
    /// Generation comes first so that what a retiring command allocates already covers the needs of the commands
    /// queued behind it (the look-ahead of `cover`).
    ///
    /// # Errors
    /// Task errors found while generating, and backend errors, wrapped in [`RuntimeError::Command`] naming the
    /// command where one failed.
    pub fn step(&mut self) -> Result<bool, RuntimeError> {
        self.stats.loop_steps += 1;
        // Each stage's "nothing to do" is checked here as well as inside it: most steps of a loop that polls while
        // the GPU works find nothing, and then skip the calls.
        if self.tm.has_new_tasks() {
            self.generate()?;
        } else {
            self.user_code = UserCode::None;
        }
        let received = self.engine.messages_received();
        let mut progressed = self.poll_completions()?;
        // Not a reason to retire: the engine's completions (in `poll_completions`) are.
        let arrived = self.engine.messages_received() != received;
        if self.retire_due {
            progressed |= self.retire()?;
        }
        if self.ready_changed {
            progressed |= self.start_ready()?;
        }
        if (!self.pending.is_empty() || self.open_refs) && self.batch_due() {
            self.flush()?;
        }
        // Ascending: when the oldest dropped buffer's commands have not all completed, nor have any later one's.
        if self.dropped.first().is_some_and(|&(_, _, c)| c.0 <= self.watermark) {
            self.free_dropped(None);
        }
        Ok(progressed || arrived)
    }

    /// Polls the transfer engine, the GPU and the host workers, and the divergence check's oldest window; records
    /// completed batches in the statistics and the trace. Returns whether anything completed.
    fn poll_completions(&mut self) -> Result<bool, RuntimeError> {
        self.completions.clear();
        let offered = self.peer.is_some() && self.take_offers()?;
        // A single node sends and receives nothing: its engine stays idle, and MPI has nothing to progress for it.
        if self.nodes > 1 || !self.engine.is_idle() {
            if let Err(e) = self.engine.poll(&mut self.completions) {
                return Err(self.transfer_failed(e));
            }
            self.return_sent();
        }
        self.batches.clear();
        if let Err(e) = self.gpu.poll(&mut self.batches) {
            return Err(self.gpu_failed(e));
        }
        let mut progressed = offered || !self.completions.is_empty() || !self.batches.is_empty();
        if !self.checks.is_empty() && !self.batches.is_empty() {
            self.read_checks()?;
        }
        if self.trace.is_some() && !self.batches.is_empty() {
            self.trace_completed_batches();
        }
        if !self.batches.is_empty() && !self.kernel_batches.is_empty() {
            self.time_completed_kernels();
        }
        while self.host.running > 0 {
            let Some((cmd, result, ran)) = self.host.take_done() else { break };
            self.host_done.insert(cmd, (result, ran));
            progressed = true;
        }
        if self.divergence.as_ref().is_some_and(|d| !d.reductions.is_empty()) {
            // A confirmed window may release a held host task (`InFlight::HeldHost`): retire looks at it again.
            progressed |= self.poll_divergence()?;
        }
        self.retire_due |= progressed;
        Ok(progressed)
    }

    /// Advances every command in flight ([`finish`](Self::finish)); marks those that completed done. Returns
    /// whether any did.
    // Out of line (called at most once a step): a profile (callgrind) then reports each phase of `step` apart.
    #[inline(never)]
    fn retire(&mut self) -> Result<bool, RuntimeError> {
        if !std::mem::take(&mut self.retire_due) {
            return Ok(false);
        }
        let mut progressed = false;
        // In place: GPU work not complete yet (the usual case while the loop polls) is passed over without a move;
        // a command that finishes leaves `Retired` in its slot (so that `flush`, which finishing may call, sees every
        // other command where it was), and one pass at the end removes those. Commands that finishing starts are
        // appended behind `end` and wait for the next step.
        let end = self.in_flight.len();
        for i in 0..end {
            if let InFlight::Gpu(r, _) = &self.in_flight[i].1 {
                if !matches!(r, GpuRef::Submitted(b) if self.gpu.is_complete(*b)) {
                    continue;
                }
            }
            let id = self.in_flight[i].0;
            let flight = std::mem::replace(&mut self.in_flight[i].1, InFlight::Retired);
            let kind = flight.readiness_kind();
            match self.finish(flight)? {
                Some(still) => {
                    let still_kind = still.readiness_kind();
                    self.ready_changed |= still_kind != kind;
                    self.retire_due |= still_kind != ReadinessKind::GpuDone && still_kind != ReadinessKind::GpuThen;
                    // E.g. a receive that completed and now uploads: what depends on it may queue behind the upload.
                    self.note_gpu_tail(id, &still);
                    self.in_flight[i].1 = still;
                }
                None => {
                    self.mark_done(id);
                    progressed = true;
                }
            }
        }
        if progressed {
            self.in_flight.retain(|(_, f)| !matches!(f, InFlight::Retired));
        }
        Ok(progressed)
    }

    /// Starts ready commands, in generation order, within a window at the front of the queue (dependencies point
    /// backwards, so the front always becomes ready first); a kernel not ready yet may run its interior early.
    /// Returns whether anything started.
    ///
    /// A command that begins with GPU work (a kernel, or the download of a push or fence) may start as soon as the
    /// commands it depends on have *submitted* their last GPU batch: batches run in submission order on the one
    /// queue, so dependent kernels go to the GPU back to back instead of one round trip each. A horizon whose
    /// dependencies are all complete or queued that way counts as queued too. Everything else waits for its
    /// dependencies to complete.
    ///
    /// The window holds `lookahead` commands besides waiting horizons: a slow host task holds up every horizon
    /// after it, and commands behind them whose edges on those horizons are settled (see
    /// `CommandDependency::settled_by`) must still be looked at; the application's `submit_ahead` bounds how many
    /// horizons wait.
    // Out of line (called at most once a step): a profile (callgrind) then reports each phase of `step` apart.
    #[inline(never)]
    fn start_ready(&mut self) -> Result<bool, RuntimeError> {
        if !std::mem::take(&mut self.ready_changed) {
            return Ok(false);
        }
        let mut progressed = false;
        let (mut i, mut window) = (0, 0);
        while i < self.commands.len() && window < self.lookahead {
            let gpu_first = matches!(
                self.commands[i].kind,
                CommandKind::Execution { .. } | CommandKind::Push { .. } | CommandKind::Fence { .. }
            );
            // Whether every dependency completed, and whether every one that did not waits only for GPU work
            // already queued (so that GPU work started now runs after it).
            let (mut done, mut queued) = (true, true);
            for d in &self.commands[i].dependencies {
                if !self.dep_done(d) {
                    done = false;
                    if !self.gpu_tail.contains(&d.command) {
                        queued = false;
                        break;
                    }
                }
            }
            if !done && queued && matches!(self.commands[i].kind, CommandKind::Horizon { .. }) {
                // A horizon is reached once its dependencies complete, but GPU work behind it need not wait for
                // that: it queues behind theirs. Tasks reading a buffer no recent task wrote (constant inputs)
                // depend on the applied horizon, and waited for the GPU to drain two horizons back, every few
                // tasks, where a chain writing its buffer kept the GPU busy.
                self.gpu_tail.insert(self.commands[i].id);
            }
            if !(done || gpu_first && queued) {
                if self.overlap.is_some() && !self.interiors.contains_key(&self.commands[i].id) {
                    progressed |= self.start_interior(i)?;
                }
                window += usize::from(!matches!(self.commands[i].kind, CommandKind::Horizon { .. }));
                i += 1;
                continue;
            }
            if self.host_view_bytes >= HOST_VIEW_BACKLOG && self.is_host_task(&self.commands[i]) {
                // The host tasks started hold enough views already: this one starts once one of them completes
                // (`mark_done` rescans), so a program submitting host tasks far faster than they run does not
                // hold every one's views at once.
                window += 1;
                i += 1;
                continue;
            }
            let cmd = self.commands.remove(i).expect("index in range");
            self.user_code = UserCode::Task(cmd.task);
            // GPU work of every command started goes into the open batch, in start order.
            match self.start(&cmd)? {
                Some(flight) => {
                    self.note_gpu_tail(cmd.id, &flight);
                    self.retire_due |= !matches!(flight, InFlight::Gpu(..));
                    self.in_flight.push((cmd.id, flight));
                }
                None => self.mark_done(cmd.id),
            }
            // Kept for the next commands generated, up to a step's worth: a backlog of tens of thousands of queued
            // commands (a program far ahead of the runtime) left as many spares until shutdown.
            if self.spare_commands.len() < SPARE_COMMANDS {
                self.spare_commands.push(cmd);
            }
            progressed = true;
        }
        // What started (or began its interior) may let others start: scan again next step.
        self.ready_changed |= progressed;
        Ok(progressed)
    }

    /// Records that command `id` waits only for its GPU work, when `flight` says so: a GPU command depending on it
    /// may then start, queued behind it ([`start_ready`](Self::start_ready)). [`mark_done`](Self::mark_done)
    /// forgets it.
    fn note_gpu_tail(&mut self, id: CommandId, flight: &InFlight) {
        if matches!(flight, InFlight::Gpu(_, AfterGpu::Done)) {
            self.gpu_tail.insert(id);
            self.ready_changed = true;
        }
    }

    fn is_done(&self, id: CommandId) -> bool {
        id.0 < self.watermark || (!self.done.is_empty() && self.done.contains(&id))
    }

    /// Whether dependency `d` is satisfied: its command completed, or the older sync command settling it did (a
    /// read of data collapsed into a horizon, see [`CommandDependency::settled_by`]).
    fn dep_done(&self, d: &CommandDependency) -> bool {
        self.is_done(d.command) || d.settled_by().is_some_and(|s| self.is_done(s))
    }

    /// Whether `cmd` runs a host task's closure (an execution command of a host task with items).
    fn is_host_task(&self, cmd: &Command) -> bool {
        match &cmd.kind {
            CommandKind::Execution { task, chunk, .. } => {
                !chunk.is_empty()
                    && self.tm.task(*task).is_some_and(|t| t.kind() != celer_graph::TaskKind::DeviceCompute)
            }
            _ => false,
        }
    }

    fn mark_done(&mut self, id: CommandId) {
        self.ready_changed = true;
        self.stats.commands += 1;
        if !self.host_started.is_empty() {
            if let Some(bytes) = self.host_started.remove(&id) {
                self.host_view_bytes -= bytes;
            }
        }
        if !self.gpu_tail.is_empty() {
            self.gpu_tail.remove(&id);
        }
        // `start_interior` rules out every waiting execution command it cannot split, host tasks included, which
        // `start_kernel` never sees: kept, one entry per such command stayed until shutdown.
        if !self.no_interior.is_empty() {
            self.no_interior.remove(&id);
        }
        if id.0 == self.watermark {
            // The usual case, commands completing in order: no detour through the set.
            self.watermark += 1;
            while !self.done.is_empty() && self.done.remove(&CommandId(self.watermark)) {
                self.watermark += 1;
            }
        } else {
            self.done.insert(id);
        }
    }

    /// Whether commands are queued or in flight, or transfers pending: what stall detection watches. Divergence
    /// checks do not count: a rank that reached shutdown waits for the others' checks as long as they take.
    pub fn has_pending_work(&self) -> bool {
        !self.commands.is_empty() || !self.in_flight.is_empty() || !self.engine.is_idle()
    }

    /// Whether work is in flight that completes without waiting for another rank's program or the application:
    /// GPU batches, or data moving over MPI (sends not yet complete, payloads being received). The runtime thread
    /// keeps polling while it is; otherwise an idle loop backs off (the `idle` module).
    pub fn completes_soon(&self) -> bool {
        self.gpu.in_flight() > 0 || self.engine.is_moving_data()
    }

    /// Whether this rank waits inside the runtime: commands queued or in flight, or data moving. Unlike
    /// [`has_pending_work`](Self::has_pending_work), data that arrived before this rank's program submitted the task
    /// that receives it does not count: that waits for this rank's application thread (the stall vote).
    pub fn waits_inside(&self) -> bool {
        !self.commands.is_empty() || !self.in_flight.is_empty() || self.engine.is_moving_data()
    }

    /// Frees the buffers dropped before task `reached` (a horizon or epoch whose predecessors have all completed):
    /// their device allocations and creation data. Records `reached` for [`progress`](Self::progress).
    pub(super) fn release_dropped(&mut self, reached: TaskId) {
        self.completed_before = self.completed_before.max(reached);
        self.reductions.release(reached);
        self.free_dropped(Some(reached));
    }

    /// How far this node got: every task below the returned id has completed (every task recorded so far when
    /// nothing is queued or in flight). `submit` blocks while the runtime is too far behind (`CELER_SUBMIT_AHEAD`).
    pub fn progress(&self) -> u64 {
        if self.is_drained() {
            self.tm.next_task_id().0
        } else {
            self.completed_before.0
        }
    }

    /// Whether no command is queued or in flight.
    pub fn is_drained(&self) -> bool {
        self.commands.is_empty() && self.in_flight.is_empty()
    }

    /// Whether no command is queued or in flight, all sends have left and every divergence check completed.
    pub fn is_idle(&self) -> bool {
        self.commands.is_empty()
            && self.in_flight.is_empty()
            && self.engine.is_idle()
            && self.divergence.as_ref().is_none_or(|d| d.reductions.is_empty())
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
