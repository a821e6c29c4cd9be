//! The runtime's errors: one variant per failure, carrying the command, task, buffer and kernel at fault.

use celer_exec::gpu::GpuError;
use celer_exec::mpi::MpiError;
use celer_exec::transfer::TransferError;
use celer_graph::task::MapperError;
use celer_graph::{BufferId, CommandId, GridBox, ReductionId, TaskError, TaskId};

/// An error of a rank's runtime; each ends the run on every rank, printed with the rank.
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum RuntimeError {
    /// A command failed while starting or finishing; `error` says how.
    #[error("N{node} {command} ({task}): {error}")]
    Command {
        /// The command graph node (rank, or rank and device) the command runs on.
        node: i32,
        /// The command.
        command: CommandId,
        /// Its task.
        task: TaskId,
        /// What failed.
        error: Box<RuntimeError>,
    },
    /// A command's task was erased from the task graph before the command ran.
    #[error("its task was pruned")]
    TaskPruned,
    /// A task carries no payload of the kind its command runs.
    #[error("{task} has no {what} to run")]
    NoPayload {
        /// The task, as `task T3 "name"`.
        task: String,
        /// `"kernel"` or `"host closure"`.
        what: &'static str,
    },
    /// Host memory for cells of a buffer (a host task's view, a fence's data) could not be allocated.
    #[error(
        "{what} needs {bounds} of {buffer} in host memory ({bytes} bytes), which cannot be allocated; let each chunk \
         touch less of the buffer (a finer split, a smaller box)"
    )]
    HostMemory {
        /// What needs the cells (`accessor 0 of host task T1 "fill"`).
        what: String,
        /// The buffer (`buffer B0 "u"`).
        buffer: String,
        /// The box of cells.
        bounds: GridBox,
        /// Their size.
        bytes: usize,
    },
    /// A command names a buffer this rank does not know.
    #[error("unknown buffer {buffer}")]
    UnknownBuffer {
        /// The buffer.
        buffer: BufferId,
    },
    /// A fence task accesses no buffer.
    #[error("a fence without a buffer")]
    FenceWithoutBuffer,
    /// A reduction's element type is missing (reductions need a kernel that declares it).
    #[error("a reduction into {buffer} has no element type (reductions need a kernel)")]
    ReductionWithoutType {
        /// The reduction's buffer.
        buffer: BufferId,
    },
    /// A user-defined reduction came without its combining function.
    #[error("a user-defined reduction into {buffer} has no combining function")]
    ReductionWithoutCombiner {
        /// The reduction's buffer.
        buffer: BufferId,
    },
    /// A buffer's device allocation could not be made or grown.
    #[error(
        "allocating {bounds} of {buffer} on the GPU: {error}; the allocation is the bounding box of what this node's \
         commands touch of the buffer, so let each node touch a smaller part of it (more ranks or devices), or split \
         the buffer into several"
    )]
    Allocation {
        /// The buffer, by id and name (`buffer B0 "u"`).
        buffer: celer_graph::ResourceIdent,
        /// The box the allocation was to cover.
        bounds: GridBox,
        /// The backend's error (boxed: the variant would make every result of the runtime large; its text is part of
        /// this error's message, so it is not also a `source()`).
        error: Box<GpuError>,
    },
    /// A kernel would bind an allocation it cannot address (boxed: rare, and results stay small).
    #[error(transparent)]
    KernelAllocation(Box<KernelAllocationError>),
    /// A GPU operation of a batch failed; `context` names the command, task or buffer it was for.
    #[error("{context}: {error}")]
    GpuOp {
        /// What the operation was for, e.g. `N0 C3 (T1): push`.
        context: String,
        /// The backend's error (its text is part of this error's message, so it is not also a `source()`).
        error: GpuError,
    },
    /// An operation of the batch names a buffer without a device allocation (an internal error).
    #[error("{context}: internal error: buffer {buffer} has no allocation")]
    NoAllocation {
        /// What the operation was for.
        context: String,
        /// The buffer.
        buffer: BufferId,
    },
    /// An await-push completed without the data it awaited (an internal error).
    #[error("internal error: await-push into {buffer} completed without its data")]
    MissingData {
        /// The awaited buffer.
        buffer: BufferId,
    },
    /// Kernels accessed cells outside what their range mappers declared (`CELER_CHECK_BOUNDS`), one entry per
    /// dispatch at fault.
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    OutOfBounds(Vec<OutOfBoundsAccess>),
    /// The device was lost with GPU work in flight.
    #[error("N{node}: {error}. The lost work:{}", .lost.iter().map(|l| format!("\n    {l}")).collect::<String>())]
    DeviceLost {
        /// The command graph node that lost its device.
        node: i32,
        /// The backend's error (its text is part of this error's message, so it is not also a `source()`).
        error: GpuError,
        /// Per lost batch: `batch B: C7 execution of task T3 "step" (kernel heat::main), ...`.
        lost: Vec<String>,
    },
    /// A host task's closure panicked.
    #[error("N{node} {command}: the closure of host {task} panicked: {message}; ending every rank")]
    HostTaskPanicked {
        /// The command graph node.
        node: i32,
        /// The host task's execution command.
        command: CommandId,
        /// The task, as `task T3 "name"`.
        task: String,
        /// The panic's message.
        message: String,
    },
    /// The program's code run by the runtime thread (a range mapper) panicked.
    #[error("N{node}: a panic in {whose}: {message}; ending every rank")]
    Panicked {
        /// The command graph node.
        node: i32,
        /// Whose code: `code of task T3 "name" (a range mapper)`, or `the runtime`.
        whose: String,
        /// The panic's message.
        message: String,
    },
    /// A chunk of a deterministic (block) reduction does not start at one of its blocks (workgroups): the task was
    /// split at other than whole workgroups.
    #[error(
        "chunk {chunk} of deterministic reduction {reduction} does not start at a workgroup of the index space \
         (blocks of {block:?} items); its task must be split at whole workgroups"
    )]
    BlockMisaligned {
        /// The reduction.
        reduction: celer_graph::ReductionId,
        /// The chunk.
        chunk: GridBox,
        /// Items per block along each dimension.
        block: [usize; 3],
    },
    /// The nodes of a deterministic reduction's tree left a block uncovered (a rank's partial result is missing).
    #[error("N{node}: deterministic reduction {reduction} into {buffer}: {missing}")]
    BlockMissing {
        /// The command graph node.
        node: i32,
        /// The reduction.
        reduction: celer_graph::ReductionId,
        /// Its buffer.
        buffer: BufferId,
        /// The block no node covers.
        missing: crate::blocks::MissingBlock,
    },
    /// The combine closure of a `reduce_with` panicked.
    #[error("N{node}: the combine closure of reduction {reduction}{task} (reduce_with) panicked: {message}")]
    CombinePanicked {
        /// The command graph node.
        node: i32,
        /// The reduction.
        reduction: celer_graph::ReductionId,
        /// ` of task "name"`, or empty for an unnamed task.
        task: String,
        /// The panic's message.
        message: String,
    },
    /// The combine closure of a `reduce_with` gave different results for the two orders of two partial results
    /// (boxed: rare, and results stay small).
    #[error(transparent)]
    CombineNotCommutative(Box<CombineNotCommutative>),
    /// The application asked to end every rank (its thread panicked while the queue was alive).
    #[error("{0}")]
    Aborted(String),
    /// A host task's closure called `std::process::exit`: the exit hook, on a host worker thread, cannot shut the
    /// runtime down (it waits for that very task), so the runtime thread ends every rank instead.
    #[error(
        "the closure of host {task} called std::process::exit: a rank cannot end inside a host task (this rank's \
         runtime would wait for the task, and the other ranks for this rank, forever); to stop the program from a \
         host task, panic in its closure (every rank then stops naming the task and the message); ending every rank"
    )]
    ExitInHostTask {
        /// The task.
        task: celer_graph::TaskIdent,
    },
    /// A rank driving several devices lacks a communicator for one.
    #[error("device {device} of {devices} has no communicator")]
    NoCommunicator {
        /// The device.
        device: usize,
        /// The communicators given.
        devices: usize,
    },
    /// A file of `CELER_DUMP_GRAPHS` could not be written.
    #[error("cannot {what} {}: {error}", .path.display())]
    Io {
        /// `"create"` or `"write"`.
        what: &'static str,
        /// The file or directory.
        path: std::path::PathBuf,
        /// The system's error (its text is part of this error's message, so it is not also a `source()`).
        error: std::io::Error,
    },
    /// A broken invariant of the runtime.
    #[error("internal error: {0}")]
    Internal(&'static str),
    /// A task the program submitted is invalid (names task, buffer and region).
    #[error(transparent)]
    Task(#[from] TaskError),
    /// A range mapper could not be applied to a chunk.
    #[error(transparent)]
    Mapper(#[from] MapperError),
    /// The GPU backend failed.
    #[error(transparent)]
    Gpu(#[from] GpuError),
    /// Loading a task's kernel on the device failed (its shader module, pipeline layout or pipeline refused by the
    /// driver: submit's checks against the device limits leave little else).
    #[error("loading {}kernel {kernel} of {task}: {error}", if *checked { "the checked variant of " } else { "" })]
    KernelLoad {
        /// The task, as `task T3 "name"`.
        task: String,
        /// The kernel, `file::entry`.
        kernel: String,
        /// Whether it is the checked variant (`CELER_CHECK_BOUNDS`, or an accessor without cells).
        checked: bool,
        /// The backend's error (boxed: rare, and results stay small; its text is part of this error's message, so
        /// it is not also a `source()`).
        error: Box<GpuError>,
    },
    /// The transfer engine failed (boxed: its errors are large).
    #[error(transparent)]
    Transfer(Box<TransferError>),
    /// Another rank sent cells of a transfer this rank does not expect (outside what it awaits, or twice): the ranks
    /// disagree on which cells move, which programs whose tasks all hash alike can only do through a range mapper;
    /// with the divergence check off, also programs that submitted different tasks (the message then says so).
    #[error(
        "N{node}: the ranks disagree on which cells of {buffer} move for {task}: {error}; every rank computes every \
         rank's regions from the range mappers, so they must agree: a custom range mapper must be a pure function of \
         the chunk and the buffer's extent (not of the rank, a counter, the time or random numbers){}",
        if *unchecked { UNCHECKED_HINT } else { "" }
    )]
    TransferDisagrees {
        /// The node that received the cells.
        node: i32,
        /// The task (`task T2 "step"`).
        task: String,
        /// The buffer (`buffer B0 "a"`).
        buffer: String,
        /// What the transfer engine found (its text is part of this message, so it is not also a `source()`).
        error: Box<TransferError>,
        /// Whether the run has `CELER_CHECK_DIVERGENCE=off`, so that ranks submitting different tasks (a fence or a
        /// task skipped, another extent) were not compared and can end here instead.
        unchecked: bool,
    },
    /// An MPI call failed.
    #[error(transparent)]
    Mpi(#[from] MpiError),
}

/// What a report of ranks disagreeing on transfers (or a stall with data awaited) adds with the divergence check off:
/// ranks whose programs submitted different tasks end this way, since nothing compared their tasks.
pub(crate) const UNCHECKED_HINT: &str = "; or the ranks' programs submitted different tasks (a task, fence or \
     barrier on some ranks only, another buffer extent, range mapper or buffer creation order): \
     CELER_CHECK_DIVERGENCE is off in this run, so celer did not compare them; run with it on (the default) to have \
     every rank name the first task that differs";

/// The combine closure of a `reduce_with` gave different results for the two orders of two partial results.
#[derive(Debug, thiserror::Error)]
#[error(
    "N{node}: in {task}, the combine closure of reduction {reduction} into {buffer} (reduce_with) is not \
     commutative: combine({a}, {b}) = {ab}, but combine({b}, {a}) = {ba}. The partial results come one per \
     chunk (rank and device), and which of them pair up, in which order, depends on how the task is split, so \
     the result would change with the number of ranks and devices; the combine must be commutative (and \
     associative) for a result independent of the split, and agree with the kernel's own combine (an atomic \
     operation); ending every rank"
)]
pub struct CombineNotCommutative {
    /// The command graph node.
    pub node: i32,
    /// The reduction.
    pub reduction: celer_graph::ReductionId,
    /// The task that declared the reduction.
    pub task: celer_graph::TaskIdent,
    /// The reduction's buffer, by id and name (`buffer B0 "u"`).
    pub buffer: String,
    /// The first operand, as a value and bytes.
    pub a: String,
    /// The second operand.
    pub b: String,
    /// `combine(a, b)`.
    pub ab: String,
    /// `combine(b, a)`.
    pub ba: String,
}

/// A kernel would bind an allocation it cannot address: more cells than kernels index (`u32`), or more bytes than
/// the device binds for one accessor. `submit` refuses a task whose accesses on one chunk are that large; this is an
/// allocation that grew to cover what several commands of this node touch.
#[derive(thiserror::Error)]
#[error(
    "{context}: accessor {accessor} would bind the allocation of {buffer} on this node, {bounds} ({cells} cells, \
     {bytes} bytes): {problem}; the allocation is the bounding box of what this node's commands touch of the \
     buffer, so split the buffer into several, or let each node touch a smaller part of it"
)]
pub struct KernelAllocationError {
    /// What the kernel was for (`N0 C3 (T1): in task T1 "step"`).
    pub context: String,
    /// The accessor's index.
    pub accessor: usize,
    /// The buffer (`buffer B0 "u"`).
    pub buffer: String,
    /// The allocation's box.
    pub bounds: GridBox,
    /// Its cells.
    pub cells: u64,
    /// Its bytes.
    pub bytes: u64,
    /// The limit it exceeds.
    pub problem: String,
}

/// The same sentence as `Display`.
impl std::fmt::Debug for KernelAllocationError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

/// The same sentence as `Display`, so that `fn main() -> Result<(), Box<dyn Error>>` prints a readable message.
impl std::fmt::Debug for RuntimeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

impl From<TransferError> for RuntimeError {
    fn from(e: TransferError) -> Self {
        RuntimeError::Transfer(Box::new(e))
    }
}

/// A checked dispatch (`CELER_CHECK_BOUNDS`) that accessed cells outside what its range mappers declared.
#[derive(Debug, Clone)]
pub struct OutOfBoundsAccess {
    /// The task, as `task T1 "shift"`.
    pub task: String,
    /// The execution command.
    pub command: CommandId,
    /// The command graph node it ran on.
    pub node: i32,
    /// The kernel, as `file::entry`.
    pub kernel: String,
    /// The chunk the dispatch covered.
    pub chunk: GridBox,
    /// Per accessor at fault: what it declared and the bounding box of the cells it touched outside that.
    pub accessors: Vec<String>,
    /// Whether the dispatch ran checked because an accessor's range mapper gave the chunk no cells (as every such
    /// dispatch does), not because of `CELER_CHECK_BOUNDS`.
    pub empty_region: bool,
}

impl std::fmt::Display for OutOfBoundsAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "out-of-bounds access in {} ({} on N{}, kernel {}, chunk {}): {}; declare a range mapper that covers \
             every cell the kernel touches (e.g. neighborhood for a stencil), or fix the kernel's indexing (found by \
             {})",
            self.task,
            self.command,
            self.node,
            self.kernel,
            self.chunk,
            self.accessors.join("; "),
            if self.empty_region {
                "the bounds check celer runs for every dispatch where an accessor's region is empty"
            } else {
                "CELER_CHECK_BOUNDS"
            }
        )
    }
}

/// Wraps an error of command `cmd` on `node` as [`RuntimeError::Command`].
pub(super) fn failure(node: i32, cmd: &celer_graph::Command) -> impl Fn(RuntimeError) -> RuntimeError + '_ {
    move |error| RuntimeError::Command { node, command: cmd.id, task: cmd.task, error: Box::new(error) }
}

/// What a GPU operation of the open batch is for, as its errors name it. A few words of plain data, copied with
/// the operation: the text is formatted only when an operation fails ([`describe`](Self::describe)), not for each
/// of the many that do not.
#[derive(Clone, Copy, Debug)]
pub(super) enum OpContext {
    /// Work of command `command` of `task` on node `node`: `N0 C3 (T1): push`.
    Command {
        /// The command graph node.
        node: i32,
        /// The command.
        command: CommandId,
        /// Its task.
        task: TaskId,
        /// Which of its operations.
        work: CommandWork,
    },
    /// The initial contents (or zeros) of a buffer, uploaded into a fresh allocation.
    InitialContents(BufferId),
    /// Data received for an await-push, uploaded into its buffer.
    AwaitPush(BufferId),
    /// What a host task wrote, uploaded.
    HostOutputs(CommandId),
    /// A reduction's combined result, uploaded into its buffer.
    Reduction(ReductionId),
}

/// Which operation of a command an [`OpContext::Command`] names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum CommandWork {
    /// A kernel's dispatch (named with its task: `in task T1 "shift"`).
    Kernel,
    /// The reset of a reduction buffer to its operation's identity before a kernel (or, for an empty chunk,
    /// instead of one).
    ReductionIdentity,
    /// A fence's download.
    Fence,
    /// The download of a host task's inputs.
    HostInputs,
    /// The download of a partial reduction result.
    Reduction,
    /// The download of what a push sends.
    Push,
}

impl OpContext {
    /// The work of command `cmd` on `node`.
    pub(super) fn command(node: i32, cmd: &celer_graph::Command, work: CommandWork) -> Self {
        OpContext::Command { node, command: cmd.id, task: cmd.task, work }
    }

    /// The text errors show, e.g. `N0 C3 (T1): in task T1 "shift"`; tasks are named as `tm` knows them.
    pub(super) fn describe(&self, tm: &celer_graph::TaskManager) -> String {
        let task_ident = |task: TaskId| tm.task(task).map_or_else(|| format!("task {task}"), |t| t.ident().to_string());
        match *self {
            OpContext::Command { node, command, task, work } => {
                let what = match work {
                    CommandWork::Kernel => format!("in {}", task_ident(task)),
                    CommandWork::ReductionIdentity => format!("in {}: the reduction's identity", task_ident(task)),
                    CommandWork::Fence => "fence".into(),
                    CommandWork::HostInputs => "host task inputs".into(),
                    CommandWork::Reduction => "reduction".into(),
                    CommandWork::Push => "push".into(),
                };
                format!("N{node} {command} ({task}): {what}")
            }
            OpContext::InitialContents(buffer) => format!("initial contents of buffer {buffer}"),
            OpContext::AwaitPush(buffer) => format!("await-push into {buffer}"),
            OpContext::HostOutputs(cmd) => format!("outputs of host task {cmd}"),
            OpContext::Reduction(reduction) => format!("reduction {reduction}"),
        }
    }
}

/// Wraps a backend error of a GPU operation for `context` as [`RuntimeError::GpuOp`] (naming tasks as `tm` knows
/// them).
pub(super) fn gpu_op<'a>(
    context: &'a OpContext,
    tm: &'a celer_graph::TaskManager,
) -> impl Fn(GpuError) -> RuntimeError + 'a {
    move |error| RuntimeError::GpuOp { context: context.describe(tm), error }
}
