//! The runtime thread: the application's handle, its messages, and the loop that steps every device's `RankLoop`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};

use celer_exec::gpu::Gpu;
use celer_exec::mpi::Communicator;
use celer_graph::{BufferId, EpochAction, Task, TaskId, TaskManagerConfig};
use crossbeam_queue::SegQueue;

use super::diagnostics::{abort_away, abort_stalled, long_wait_message, LongWait, RankStats, WaitReport};
use super::error::RuntimeError;
use super::panics::guarded;
use super::stall::StallVote;
use super::watch::{Beat, Heartbeat, Progress, Watch};
use super::RankLoop;
use crate::config::RuntimeConfig;
use crate::startup::StartError;

/// A new buffer, with its initial contents (row-major bytes of the whole extent) if any.
#[derive(Clone, Debug)]
pub struct NewBuffer {
    /// Id.
    pub id: BufferId,
    /// Dimensionality.
    pub dims: usize,
    /// Extent per dimension (its first `dims` entries; the others 1). Unlike a [`GridBox`](celer_graph::GridBox),
    /// which normalises every empty box to the same value, it keeps an empty buffer's shape (`[4, 0]` is not
    /// `[0, 4]`).
    pub shape: [usize; 3],
    /// Bytes per element.
    pub elem_size: usize,
    /// The element type as Rust names it (`std::any::type_name`, e.g. `f32`): in the divergence hash and reports.
    pub elem_type: &'static str,
    /// Initial contents.
    pub data: Option<Vec<u8>>,
    /// Debug name.
    pub name: Option<String>,
}

/// A message from the application thread to the runtime thread. Every variant is at most 24 bytes (larger ones are
/// boxed): the queue's blocks, which the application thread allocates zeroed, hold 31 messages each.
#[derive(Debug)]
pub enum Message {
    /// A new buffer.
    CreateBuffer(Box<NewBuffer>),
    /// The program named the buffer (for messages and graph dumps).
    NameBuffer(BufferId, Box<str>),
    /// The buffer is dropped by the program.
    DestroyBuffer(BufferId),
    /// A new host object.
    CreateHostObject(celer_graph::HostObjectId),
    /// The host object is dropped by the program.
    DestroyHostObject(celer_graph::HostObjectId),
    /// The collective group is dropped by the program.
    DestroyCollectiveGroup(celer_graph::CollectiveGroupId),
    /// A task to run, as the application thread's task manager built it (checked, with its regions and
    /// dependencies); the runtime's task manager replays it ([`TaskManager::replay`](celer_graph::TaskManager::replay)).
    /// The very task the application thread's task manager stored (shared, not copied).
    Submit(Arc<Task>),
    /// A fence task, built like [`Submit`](Self::Submit)'s; its data (row-major bytes of the fenced box) is sent back
    /// once it ran. A failure stops the runtime (it reports and aborts the job), so the sender is dropped unanswered
    /// rather than sent an error.
    Fence(Arc<Task>, mpsc::SyncSender<Vec<u8>>),
    /// An epoch; the sender fires once everything before it has run.
    Epoch(EpochAction, mpsc::SyncSender<()>),
    /// A snapshot of the rank's [`RankStats`].
    Stats(mpsc::SyncSender<RankStats>),
    /// End every rank now with this message (the application thread panicked while the queue was alive).
    Abort(String),
    /// The closure of this host task called `std::process::exit` (sent by the exit hook on a host worker thread):
    /// end every rank naming the task.
    ExitInHostTask(TaskId),
}

// Small messages keep the queue's blocks small (see `Message`).
const _: () = assert!(std::mem::size_of::<Message>() <= 32);

/// The application's handle on the runtime thread.
#[derive(Debug)]
pub struct RuntimeHandle {
    queue: Arc<SegQueue<Message>>,
    thread: Option<std::thread::JoinHandle<()>>,
    /// How far the runtime got, for `submit`'s back-pressure.
    progress: Arc<Progress>,
    /// Messages sent to the runtime thread.
    sent: AtomicU64,
    rank: i32,
    ranks: i32,
    /// Devices per rank (`CELER_DEVICES`): each is a node of the command graph.
    devices: i32,
    /// What every device of every rank offers (agreed at start-up).
    caps: crate::startup::Capabilities,
    /// `CELER_STALL_TIMEOUT`, for [`Watch`].
    stall_timeout: Option<std::time::Duration>,
}

impl RuntimeHandle {
    /// Starts the runtime thread: MPI (as one rank without `mpirun`), the GPU, the loop. `runtime` holds the
    /// diagnostics settings (stall timeout, divergence check, device printing; see [`crate::config`]).
    ///
    /// # Errors
    /// A [`StartError`] on every rank when MPI, or any rank's GPU, did not start.
    pub fn start(config: TaskManagerConfig, runtime: RuntimeConfig) -> Result<Self, StartError> {
        let queue = Arc::new(SegQueue::new());
        let (ready_tx, ready_rx) = mpsc::sync_channel::<Result<Started, StartError>>(1);
        let q = Arc::clone(&queue);
        let progress = Arc::new(Progress {
            tasks: AtomicU64::new(0),
            drained_after: AtomicU64::new(0),
            handled: AtomicU64::new(0),
            fence_bytes: AtomicU64::new(0),
            beat: Beat::default(),
        });
        let p = Arc::clone(&progress);
        // Disconnects when the runtime thread returns, for the exit hook.
        let (gone_tx, gone_rx) = mpsc::channel::<()>();
        // Planned here, from the cores the process may run on as the application thread sees them.
        let local = super::pin::local_rank();
        let pin = super::pin::plan(&runtime.pin, &super::pin::allowed_cores(), super::pin::online_cores(), local);
        let runtime_core = pin.as_ref().map(|p| p.runtime);
        let devices = runtime.devices.max(1) as i32;
        let stall_timeout = runtime.stall_timeout;
        let thread = std::thread::Builder::new()
            .name("celer-runtime".into())
            .spawn(move || {
                let _gone = gone_tx;
                run(q, config, runtime, runtime_core, p, ready_tx)
            })
            .map_err(StartError::Thread)?;
        // On failure the thread finalises MPI before it ends: wait for that, so the process never exits first.
        let Started { rank, ranks, caps } = match wait_started(&ready_rx, stall_timeout) {
            Ok(Ok(started)) => started,
            failed => {
                let _ = thread.join();
                return Err(failed.map_or(StartError::ThreadDied, |r| r.err().unwrap_or(StartError::ThreadDied)));
            }
        };
        super::exit::register(Arc::clone(&queue), thread.thread().clone(), gone_rx);
        if let Some(p) = pin.filter(|p| !p.application.is_empty()) {
            match super::pin::pin_current_thread(&p.application) {
                Ok(()) => log::info!("CELER_PIN: the application thread runs on cores {:?}", p.application),
                Err(e) => log::warn!("CELER_PIN: could not pin the application thread to {:?}: {e}", p.application),
            }
        }
        Ok(Self {
            queue,
            thread: Some(thread),
            progress,
            sent: AtomicU64::new(0),
            rank,
            ranks,
            devices,
            caps,
            stall_timeout,
        })
    }

    /// Every task below the returned id has completed on this rank (`u64::MAX` when everything sent was handled
    /// and has run, or the runtime thread is gone): what [`wait_until_completed`](Self::wait_until_completed) waits
    /// for, without blocking.
    pub fn completed_before(&self) -> u64 {
        let drained = self.progress.drained_after.load(Ordering::Acquire) == self.sent.load(Ordering::Relaxed);
        if drained || self.thread.as_ref().is_none_or(|t| t.is_finished()) {
            u64::MAX
        } else {
            self.progress.tasks.load(Ordering::Acquire)
        }
    }

    /// The bytes of fence data the runtime has answered so far, each fence counted at most at
    /// [`FENCE_DATA_BACKLOG`] (the application thread counts those of the fences it records alike).
    pub fn fence_bytes_answered(&self) -> u64 {
        self.progress.fence_bytes.load(Ordering::Acquire)
    }

    /// Blocks until the runtime has answered `target` bytes of fence data ([`fence_bytes_answered`]), or has
    /// nothing left to run, or its thread is gone: the back-pressure of fences (`FENCE_DATA_BACKLOG`). Unlike
    /// [`wait_until_completed`](Self::wait_until_completed), it does not wait for tasks the fences do not wait
    /// for (a slow host task recorded before them).
    ///
    /// [`fence_bytes_answered`]: Self::fence_bytes_answered
    pub fn wait_fence_bytes(&self, target: u64) {
        self.wait_for(|| self.progress.fence_bytes.load(Ordering::Acquire) >= target);
    }

    /// Blocks until every task below `task` has completed on this rank (at once if the runtime thread is gone):
    /// the back-pressure of `submit` (`CELER_SUBMIT_AHEAD`).
    pub fn wait_until_completed(&self, task: TaskId) {
        self.wait_for(|| self.progress.tasks.load(Ordering::Acquire) >= task.0);
    }

    /// Blocks until `reached()` holds, or everything sent was handled and has run (nothing left to wait for,
    /// whatever the ids), or the runtime thread is gone; nudges that thread between polls, and from the first
    /// sleep on, a runtime thread stuck for the stall timeout ends the rank (see `Watch`).
    fn wait_for(&self, reached: impl Fn() -> bool) {
        let mut polls = 0u32;
        let mut watched: Option<(Watch, Heartbeat)> = None;
        while !reached() {
            let drained = self.progress.drained_after.load(Ordering::Acquire) == self.sent.load(Ordering::Relaxed);
            if drained || self.thread.as_ref().is_none_or(|t| t.is_finished()) {
                return;
            }
            self.wake();
            polls += 1;
            if polls < 64 {
                std::thread::yield_now();
            } else {
                std::thread::sleep(std::time::Duration::from_micros(50));
                if polls.is_multiple_of(1024) {
                    let (watch, last) = watched.get_or_insert_with(|| {
                        let watch = self.watch();
                        let start = watch.start();
                        (watch, start)
                    });
                    watch.check(last);
                }
            }
        }
    }

    /// A [`Watch`] to wait for a reply of the runtime thread with.
    pub fn watch(&self) -> Watch {
        Watch::new(Arc::clone(&self.progress), self.stall_timeout, self.rank)
    }

    /// This process's rank.
    pub fn rank(&self) -> i32 {
        self.rank
    }

    /// Number of ranks.
    pub fn ranks(&self) -> i32 {
        self.ranks
    }

    /// What every device of every rank offers (the least of each, agreed at start-up: `f64`, the push-constant and
    /// storage-buffer limits), so that `submit` can refuse a kernel that some device cannot run, on every rank alike.
    pub fn capabilities(&self) -> crate::startup::Capabilities {
        self.caps
    }

    /// Number of nodes of the command graph: ranks × devices per rank (`CELER_DEVICES`). The task graph splits
    /// collective host tasks over this many (one item each), as the runtime's task manager expects.
    pub fn nodes(&self) -> i32 {
        self.ranks * self.devices
    }

    /// Asks the runtime thread for its [`RankStats`] (blocks until the loop answers, which it does at once).
    pub fn stats(&self) -> Option<RankStats> {
        let (tx, rx) = mpsc::sync_channel(1);
        self.push(Message::Stats(tx));
        self.wake();
        rx.recv().ok()
    }

    /// Hands a message to the runtime thread (lock-free, never blocks) and wakes it if it is parked.
    pub fn send(&self, msg: Message) {
        self.push(msg);
        self.wake();
    }

    /// [`send`](Self::send) for messages that make no task (buffer and host object creations, names and drops),
    /// which `submit`'s back-pressure does not bound: once more than [`MESSAGE_BACKLOG`] messages are queued, blocks
    /// until the runtime thread has taken all but half of them, so a program that creates and drops resources in
    /// a loop holds bounded memory however far the runtime thread falls behind.
    pub fn send_bounded(&self, msg: Message) {
        self.send(msg);
        let sent = self.sent.load(Ordering::Relaxed);
        if sent - self.progress.handled.load(Ordering::Acquire).min(sent) > MESSAGE_BACKLOG {
            let gone = || self.thread.as_ref().is_none_or(|t| t.is_finished());
            // A runtime thread stuck for the stall timeout ends the rank (see `Watch`), checked every 1024 polls.
            let watch = self.watch();
            let (last, polls) = (std::cell::Cell::new(watch.start()), std::cell::Cell::new(0u32));
            let wake = || {
                self.wake();
                polls.set(polls.get().wrapping_add(1));
                if polls.get().is_multiple_of(1024) {
                    let mut l = last.get();
                    watch.check(&mut l);
                    last.set(l);
                }
            };
            wait_handled(&self.progress.handled, sent - MESSAGE_BACKLOG / 2, gone, wake);
        }
    }

    /// Queues `msg` for the runtime thread, counting it.
    fn push(&self, msg: Message) {
        self.sent.fetch_add(1, Ordering::Relaxed);
        self.queue.push(msg);
    }

    /// Wakes the runtime thread if its idle loop parked it (an atomic swap when it is not parked).
    fn wake(&self) {
        if let Some(t) = &self.thread {
            t.thread().unpark();
        }
    }

    /// Ends every rank of the job with `what` as the message: the runtime thread logs it and aborts the job
    /// (`MPI_Abort`); if that thread is gone already, this process exits with status 1.
    pub fn abort(&self, what: String) -> ! {
        super::exit::unregister();
        self.send(Message::Abort(what));
        // The runtime thread ends the process; wait for it (with a bound, in case it is gone or stuck).
        for _ in 0..100 {
            if self.thread.as_ref().is_none_or(|t| t.is_finished()) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        std::process::exit(1)
    }

    /// Records the shutdown epoch and waits for the runtime thread to finish everything and finalize MPI.
    ///
    /// Called while the application thread unwinds from a panic (the queue dropped on the way) with more than one
    /// rank, it ends every rank instead: the other ranks would wait for this one's work forever.
    pub fn shutdown(&mut self) {
        super::exit::unregister();
        if std::thread::panicking() && self.ranks > 1 && self.thread.as_ref().is_some_and(|t| !t.is_finished()) {
            self.abort(format!(
                "rank {}: the application thread panicked while its Queue was alive (the panic is reported \
                 above); ending every rank",
                self.rank
            ));
        }
        if let Some(t) = self.thread.take() {
            let (tx, rx) = mpsc::sync_channel(1);
            self.push(Message::Epoch(EpochAction::Shutdown, tx));
            t.thread().unpark();
            // A runtime thread that ended without answering (it failed) never will: stop waiting then. Nor will one
            // that found this rank ended its program before the others: it lets the program go on (to print its
            // error) and ends the job itself.
            let watch = self.watch();
            let mut last = watch.start();
            loop {
                match rx.recv_timeout(std::time::Duration::from_millis(100)) {
                    Err(mpsc::RecvTimeoutError::Timeout) if super::exit::ended_early() => return,
                    Err(mpsc::RecvTimeoutError::Timeout) if !t.is_finished() => watch.check(&mut last),
                    _ => break,
                }
            }
            // With the shutdown epoch reached, the runtime thread waits for the other ranks before it finalizes MPI;
            // a stall report that finds this rank's program ended before theirs lets the program go on then too.
            while !t.is_finished() {
                if super::exit::ended_early() {
                    return;
                }
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            let _ = t.join();
        }
    }
}

impl Drop for RuntimeHandle {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// The most messages the application thread may have queued for the runtime thread when it sends one through
/// [`RuntimeHandle::send_bounded`] (buffer and host object creations, names and drops, which `CELER_SUBMIT_AHEAD`
/// does not hold back: they make no tasks, so no horizons). Each message is 32 bytes plus what it carries (a
/// buffer's creation data), so a program that creates and drops buffers in a loop queues at most this many.
pub const MESSAGE_BACKLOG: u64 = 1024;

/// The most bytes of creation data that buffers the program dropped may hold in the runtime before it frees them
/// (the application thread counts them until the horizon or epoch after their tasks is reached): creating a buffer with data blocks while more would be held, until the
/// runtime has freed the oldest of them down to half of this. Without it, a program that creates, uses and drops
/// buffers with data far faster than the runtime runs them held `CELER_SUBMIT_AHEAD` horizons' worth of their
/// data (8 GB for 1 MiB buffers under the default).
pub const CREATION_DATA_BACKLOG: u64 = 256 << 20;

/// The most bytes of buffers the program dropped whose tasks may not have run yet (each counted at its whole size,
/// what one rank allocates at most): creating a buffer blocks while more would be held, until the runtime has run
/// the tasks of the oldest of them down to half of this. A dropped buffer's device allocation is freed once the
/// commands before its drop completed, but a program creating a temporary per step (`let tmp = q.buffer(..)` in
/// its loop, written and read by kernels, dropped at the end of the step) ran `CELER_SUBMIT_AHEAD` horizons ahead of
/// the runtime, whose kernels were all started at once, each temporary allocated: 150 steps with a 16 MiB temporary
/// held 5 GB on one rank (now 0.64 GB; 2-core VM, lavapipe; device memory on a GPU, 512 steps' worth under the
/// default), 1 500 kernels each writing a temporary of 1 MiB 2.1 GB more (now 0.5 GB). A program whose steps each drop more than
/// half of this waits, at each creation, for the steps before to run.
pub const DROPPED_BUFFER_BACKLOG: u64 = 256 << 20;

/// The most bytes that fences the runtime has not yet answered may read back (on a rank of several devices, whose
/// first device alone reads each fence back): recording a fence blocks while
/// those of the fences recorded before it exceed this, until the runtime has answered the oldest of them down to
/// half of this. Each fence in flight holds a staging buffer and the answer of its box's size; fences make no
/// horizons of their own (only `CELER_HORIZON_MAX_PARALLELISM` of them in the front do), so without it a program
/// recording fences faster than the runtime answers them (fences dropped unwaited, or kept to wait for later)
/// held `CELER_SUBMIT_AHEAD` horizons' worth (8 192 fences: 8 GiB for a 1 MiB buffer; 3 000 fences of a 1 MiB
/// buffer took 3.1 GB).
pub const FENCE_DATA_BACKLOG: u64 = 256 << 20;

/// Blocks until `handled` is at least `target`, or `gone()` says the runtime thread ended; `wake` nudges that
/// thread (it may be parked) between polls.
fn wait_handled(handled: &AtomicU64, target: u64, gone: impl Fn() -> bool, wake: impl Fn()) {
    let mut polls = 0u32;
    while handled.load(Ordering::Acquire) < target {
        if gone() {
            return;
        }
        wake();
        polls += 1;
        if polls < 64 {
            std::thread::yield_now();
        } else {
            std::thread::sleep(std::time::Duration::from_micros(50));
        }
    }
}

/// How long a rank that found a fault every rank may hit (an out-of-bounds access, a lost device) waits before
/// aborting the job, so that the other ranks report theirs too.
pub(super) const FAULT_GRACE: std::time::Duration = std::time::Duration::from_secs(1);

/// Epoch and statistics requests answered once every device's loop has answered (`CELER_DEVICES` > 1).
pub(super) enum Joined {
    Epoch(Vec<mpsc::Receiver<()>>, mpsc::SyncSender<()>),
    Stats(Vec<mpsc::Receiver<RankStats>>, Vec<RankStats>, mpsc::SyncSender<RankStats>),
}

impl Joined {
    /// Collects what arrived; answers and returns `true` once every loop has.
    pub(super) fn poll(&mut self) -> bool {
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
/// statistics through per-loop channels joined in `joined`; a fence to the first loop, which gathers and answers
/// it (the others record its task, to push the first what they hold of the fenced region).
pub(super) fn fan_out(msg: Message, loops: &mut [RankLoop<'_>], joined: &mut Vec<Joined>) -> Result<(), RuntimeError> {
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
        Message::Fence(task, reply) => {
            // The first device gathers the fenced data and answers; the others only record the task (their
            // command graphs give them no fence command, just the pushes of what they hold to the first).
            let (first, rest) = loops.split_first_mut().expect("fan_out is for several loops");
            for l in rest {
                l.handle(Message::Submit(task.clone()))?;
            }
            first.handle(Message::Fence(task, reply))?;
        }
        Message::CreateBuffer(new) => {
            for l in loops.iter_mut() {
                l.handle(Message::CreateBuffer(new.clone()))?;
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
        Message::DestroyCollectiveGroup(id) => {
            loops.iter_mut().try_for_each(|l| l.handle(Message::DestroyCollectiveGroup(id)))?;
        }
        Message::Submit(task) => loops.iter_mut().try_for_each(|l| l.handle(Message::Submit(task.clone())))?,
        Message::Abort(what) => return Err(RuntimeError::Aborted(what)),
        Message::ExitInHostTask(task) => loops[0].handle(Message::ExitInHostTask(task))?,
    }
    Ok(())
}

/// How many stall timeouts (`CELER_STALL_TIMEOUT`) the start-up of a rank may take before [`wait_started`] ends it.
const STARTUP_STALLS: u32 = 4;
/// The least time the start-up of a rank may take before [`wait_started`] ends it, whatever the stall timeout: MPI's
/// and the GPU driver's start-up alone can take a second.
const STARTUP_MIN: std::time::Duration = std::time::Duration::from_secs(4);

/// Waits for the runtime thread's start-up report. With a stall timeout, a start-up that has not ended after
/// [`STARTUP_STALLS`] times it ends this process with a message instead of hanging: MPI's start-up and celer's
/// start-up exchange wait for every process of the job, so a process that never starts celer (it returned or exited
/// before creating its queue, or built a dry-run queue) would otherwise keep the others waiting for ever.
fn wait_started(
    rx: &mpsc::Receiver<Result<Started, StartError>>,
    stall_timeout: Option<std::time::Duration>,
) -> Result<Result<Started, StartError>, mpsc::RecvError> {
    let Some(limit) = stall_timeout.map(|t| (t * STARTUP_STALLS).max(STARTUP_MIN)) else { return rx.recv() };
    match rx.recv_timeout(limit) {
        Ok(started) => Ok(started),
        Err(mpsc::RecvTimeoutError::Disconnected) => Err(mpsc::RecvError),
        Err(mpsc::RecvTimeoutError::Timeout) => {
            // MPI has not told this process its rank: the launcher's variables may.
            let rank = ["OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_RANK", "SLURM_PROCID"]
                .iter()
                .find_map(|v| std::env::var(v).ok())
                .map_or_else(String::new, |r| format!("rank {r}: "));
            crate::logging::fatal(&format!(
                "{rank}celer's start-up has not finished after {limit:?} ({STARTUP_STALLS} times \
                 CELER_STALL_TIMEOUT, at least {STARTUP_MIN:?}): MPI's start-up (MPI_Init_thread) and celer's start-up exchange wait for every \
                 process of the job, and one of them has not started celer: it returned or exited before creating \
                 its Queue, built a dry-run queue, or is stuck before it (every process of an SPMD program must \
                 create its Queue); ending this process (a slow launcher needs a larger CELER_STALL_TIMEOUT, `off` \
                 waits for ever)"
            ));
            super::exit::end_now()
        }
    }
}

/// What the runtime thread reports once it started: this rank, the number of ranks, and what every device of every
/// rank offers.
pub(super) struct Started {
    rank: i32,
    ranks: i32,
    caps: crate::startup::Capabilities,
}

/// The runtime thread's body. Any error aborts every rank with a message naming this rank.
pub(super) fn run(
    queue: Arc<SegQueue<Message>>,
    config: TaskManagerConfig,
    runtime: RuntimeConfig,
    runtime_core: Option<usize>,
    progress: Arc<Progress>,
    ready: mpsc::SyncSender<Result<Started, StartError>>,
) {
    super::exit::mark_runtime_thread();
    let comm = match celer_exec::mpi::init() {
        Ok(c) => c,
        Err(e) => {
            let e = match e {
                celer_exec::mpi::MpiError::AlreadyInitialised => StartError::SecondQueue,
                e => StartError::Mpi(e),
            };
            let _ = ready.send(Err(e));
            return;
        }
    };
    let rank = comm.rank();
    crate::logging::set_rank(rank);
    let abort = |what: String| -> ! {
        crate::logging::fatal(&what);
        comm.abort(1)
    };
    // Every GPU first (no collective yet), then the one start-up exchange of all ranks, before any collective whose
    // count depends on a setting: a GPU that failed anywhere, or settings that differ, are an `Err` on every rank.
    let devices = runtime.devices.max(1);
    // Devices on one GPU share its Vulkan device (a queue each), not time-slice it as separate contexts.
    let options = celer_exec::gpu::GpuOptions { lose_device_at_poll: runtime.inject_device_lost, ..Default::default() };
    let gpus = Gpu::open_rank(devices, &options).map_err(|(device, error)| StartError::Gpu { rank, device, error });
    let caps = crate::startup::Capabilities::of(
        gpus.as_deref().map_err(|_| ()),
        runtime.inject_no_float64 == Some(rank as u64),
    );
    let shared = runtime.must_agree(&config);
    let mut build = crate::startup::build_id(shared.len());
    if runtime.inject_other_build == Some(rank as u64) {
        build ^= 1;
    }
    let (gpus, caps) = match crate::startup::agree(&comm, &shared, gpus, caps, build) {
        Ok(agreed) => agreed,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    // One communicator per device index (every rank's device d receives on the d-th), duplicated in the same
    // order on every rank.
    let dups: Vec<Communicator> = (1..devices)
        .map(|_| comm.duplicate_full().unwrap_or_else(|e| abort(format!("MPI communicator for a device: {e}"))))
        .collect();
    let comms: Vec<&Communicator> = std::iter::once(&comm).chain(dups.iter()).collect();
    // Which devices copy halos between them on the GPU (`CELER_PEER_COPIES`): those on one Vulkan device, with
    // timeline semaphores for the receiver's batch to wait on.
    let peers: Vec<Vec<bool>> = gpus
        .iter()
        .enumerate()
        .map(|(k, a)| {
            gpus.iter()
                .enumerate()
                .map(|(j, b)| {
                    runtime.peer_copies
                        && j != k
                        && a.shares_device(b)
                        && a.completion_mode() == celer_exec::gpu::CompletionMode::Timeline
                })
                .collect()
        })
        .collect();
    let mail = std::rc::Rc::new(std::cell::RefCell::new(super::peer::PeerMail::default()));
    let mut loops = Vec::with_capacity(devices);
    for (k, gpu) in gpus.into_iter().enumerate() {
        let which = if devices > 1 { format!("rank {rank} (device {k} of {devices})") } else { format!("rank {rank}") };
        let line = format!("{which} of {} runs on {}", comm.size(), gpu.info());
        if runtime.print_device {
            crate::logging::always(log::Level::Info, &line);
        } else {
            log::info!("{line}");
        }
        let mut l =
            RankLoop::for_device(&comms, k, gpu, config.clone(), &runtime).unwrap_or_else(|e| abort(e.to_string()));
        if peers[k].iter().any(|&p| p) {
            l.link_peers(super::peer::PeerLink { mail: mail.clone(), peers: peers[k].clone() });
        }
        loops.push(l);
    }
    check_output_paths(&runtime, rank);
    // Pinned only now: the threads the GPU driver and the host workers started above keep the whole set.
    if let Some(core) = runtime_core {
        match super::pin::pin_current_thread(&[core]) {
            Ok(()) => log::info!("CELER_PIN: the runtime thread runs on core {core}"),
            Err(e) => log::warn!("CELER_PIN: could not pin the runtime thread to core {core}: {e}"),
        }
    }
    // Collective, like the loops' own communicators: every rank creates it here.
    let mut vote = (comm.size() > 1).then(|| {
        StallVote::new(&comm, runtime.stall_timeout)
            .unwrap_or_else(|e| abort(format!("MPI communicator for stall votes: {e}")))
    });
    let _ = ready.send(Ok(Started { rank, ranks: comm.size(), caps }));
    let mut joined: Vec<Joined> = Vec::new();
    let mut last = std::time::Instant::now();
    // Stall detection costs one comparison per idle iteration: `now` is taken for the statistics anyway.
    // Messages handled so far (the application counts those it sent).
    let mut handled: u64 = 0;
    // What `progress` holds: (tasks, drained_after, handled), and the fence bytes answered.
    let mut published = (0u64, 0u64, 0u64);
    let mut published_fence_bytes = 0u64;
    let mut idle = super::idle::IdleClock::new(last, runtime.stall_timeout);
    let mut long_wait = runtime.stall_timeout.map(LongWait::new);
    for l in loops.iter_mut() {
        l.start_phase(last);
    }
    let mut beat = 0u64;
    loop {
        beat += 1;
        progress.beat.0.store(beat, Ordering::Relaxed);
        if let Some(signal) = super::exit::signal_received() {
            super::exit::remove_own_segment();
            if super::exit::launcher_gone() {
                crate::logging::fatal(&format!("rank {rank}: {signal} received and mpirun is gone; exiting"));
                super::exit::exit_orphaned();
            }
            abort(format!("rank {rank}: {signal} received; ending every rank"));
        }
        let mut busy = false;
        while let Some(msg) = queue.pop() {
            busy = true;
            handled += 1;
            beat += 1;
            progress.beat.0.store(beat, Ordering::Relaxed);
            let handled = if devices == 1 {
                guarded(&mut loops[0], |l| l.handle(msg))
            } else {
                match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| fan_out(msg, &mut loops, &mut joined))) {
                    Ok(r) => r,
                    Err(payload) => Err(loops[0].panicked(&*payload)),
                }
            };
            if let Err(e) = handled {
                abort(e.to_string());
            }
        }
        if !joined.is_empty() {
            joined.retain_mut(|j| !j.poll());
        }
        let mut progressed = busy;
        let mut done = true;
        // When the last loop's step ended: the time of this iteration (one clock read per loop and iteration).
        let mut now = last;
        for rank_loop in loops.iter_mut() {
            let stepped = guarded(rank_loop, |l| l.step());
            now = std::time::Instant::now();
            let stepped = stepped.unwrap_or_else(|e| {
                if rank_loop.fault_grace {
                    crate::logging::fatal(&e.to_string());
                    std::thread::sleep(FAULT_GRACE);
                    comm.abort(1)
                }
                // Ranks whose programs diverged often fail on a transfer first: report the divergence instead.
                rank_loop.report_divergence_first();
                abort(e.to_string())
            });
            if let Some(trace) = &mut rank_loop.trace {
                trace.loop_state(busy || stepped, now);
            }
            rank_loop.account(busy || stepped, last);
            progressed |= stepped;
            done &= rank_loop.is_shut_down() && rank_loop.is_idle();
        }
        // Stored only when they change: the application thread may be reading them in a loop (`submit`'s
        // back-pressure), and a store each iteration would take the cache line from it every time.
        // A rank far ahead of the others' divergence checks counts as behind (`DIVERGENCE_WINDOWS`).
        let tasks = loops.iter().map(|l| l.progress().min(l.divergence_hold().unwrap_or(u64::MAX))).min().unwrap_or(0);
        let drained =
            if loops.iter().all(|l| l.is_drained() && l.divergence_hold().is_none()) { handled } else { u64::MAX };
        // Before `drained`: a waiter that sees the loops drained must find every fence answered counted. Only the
        // first device's loop answers fences (`fan_out`): the others' count stays zero.
        let fence_bytes = loops.iter().map(|l| l.fence_bytes_answered).sum::<u64>();
        if fence_bytes != published_fence_bytes {
            published_fence_bytes = fence_bytes;
            progress.fence_bytes.store(fence_bytes, Ordering::Release);
        }
        if (tasks, drained, handled) != published {
            published = (tasks, drained, handled);
            progress.handled.store(handled, Ordering::Release);
            progress.tasks.store(tasks, Ordering::Release);
            progress.drained_after.store(drained, Ordering::Release);
        }
        // A rank whose own thread did not run for a while (an overloaded machine) restarts its stall count.
        let resumed = idle.resumed(last, now);
        if let Some(v) = &mut vote {
            if resumed {
                v.resumed(now);
            }
            // Waiting inside the runtime: work pending and no progress for half the timeout, or shut down (the
            // application thread has dropped its queue; the rank waits for the others).
            let pending = loops.iter().any(|l| l.waits_inside());
            let stuck = runtime.stall_timeout.is_some_and(|limit| !progressed && now - idle.since() >= limit / 2);
            let shut_down = loops.iter().all(|l| l.is_shut_down());
            let waiting = shut_down || (pending && stuck);
            let ended = loops.iter().all(|l| l.program_ended());
            v.poll(&comm, now, (waiting, done, ended)).unwrap_or_else(|e| abort(format!("stall vote: {e}")));
        }
        last = now;
        if progressed {
            idle.progress(now);
            if let Some(w) = &mut long_wait {
                w.reset();
            }
        } else {
            if let Some(limit) = runtime.stall_timeout {
                if idle.stalled(now) && loops.iter().any(|l| l.has_pending_work()) {
                    // Every device's loop of this rank, in turn: what it waits for, and what of that waits for
                    // another rank.
                    let report = || {
                        let mut report = WaitReport::default();
                        loops.iter().for_each(|l| report.absorb(l.wait_report()));
                        report
                    };
                    if vote.as_ref().is_none_or(|v| v.confirms(now, limit)) {
                        let ended = vote.as_ref().and_then(|v| v.ended);
                        abort_stalled(&comm, now - idle.since(), &report(), ended, !runtime.check_divergence);
                    }
                    // Another rank's program keeps the run going: past CELER_AWAY_TIMEOUT, end the run naming it.
                    let away = vote.as_ref().and_then(|v| v.away);
                    if let (Some(away), Some(away_limit)) = (away, runtime.away_timeout) {
                        if now - idle.since() >= away_limit {
                            abort_away(&comm, now - idle.since(), away, away_limit, &report());
                        }
                    }
                    // Else say what this rank waits for, now and then.
                    if long_wait.as_mut().is_some_and(|w| w.due(now - idle.since())) {
                        let notice = long_wait_message(rank, now - idle.since(), away, &report().lines);
                        crate::logging::always(log::Level::Warn, &notice);
                    }
                }
            }
            // With several ranks, a rank that is done keeps voting until every rank is (the votes pair up).
            if done && joined.is_empty() && vote.as_ref().is_none_or(|v| v.all_done) {
                break;
            }
            if idle.wait(now, loops.iter().any(|l| l.completes_soon())) {
                loops[0].stats.parks += 1;
            }
        }
    }
    progress.beat.0.store(Watch::DONE, Ordering::Relaxed);
    let mut traces = Vec::new();
    let mut all_stats = Vec::new();
    for mut rank_loop in loops {
        match rank_loop.write_graph_dumps() {
            Ok(files) => {
                for f in files {
                    log::info!("wrote {}", f.display());
                }
            }
            // Output the program asked for: said whatever the logger.
            Err(e) => crate::logging::always(log::Level::Warn, &format!("CELER_DUMP_GRAPHS: {e}")),
        }
        traces.extend(rank_loop.trace.take());
        let mut stats = rank_loop.stats_at(last);
        stats.runtime_cpu = super::diagnostics::thread_cpu_time();
        all_stats.push(stats);
    }
    super::diagnostics::log_summaries(&all_stats);
    if let Some(path) = &runtime.trace {
        let traces: Vec<&crate::trace::Trace> = traces.iter().collect();
        match crate::trace::gather_all_and_write(&comm, &traces, path) {
            Ok(()) if rank == 0 => log::info!("wrote the timeline of every rank to {}", path.display()),
            Ok(()) => {}
            Err(e) => crate::logging::always(log::Level::Warn, &e.to_string()),
        }
    }
    drop(vote);
    drop(dups);
    drop(comm);
}

/// The files the program asked for by `CELER_DUMP_GRAPHS` (every rank's) and `CELER_TRACE` (rank 0's) are written at
/// shutdown; a path they cannot be written to is said at start-up, whatever the logger, so that a long run does not
/// end without them unnoticed. Creates the directories (and an empty trace file) the shutdown would create.
fn check_output_paths(runtime: &RuntimeConfig, rank: i32) {
    let warn = |msg: String| crate::logging::always(log::Level::Warn, &msg);
    if let Some(dir) = &runtime.dump_graphs {
        if let Err(e) = std::fs::create_dir_all(dir) {
            warn(format!(
                "CELER_DUMP_GRAPHS: cannot create the directory {} ({e}): the graphs will not be written",
                dir.display()
            ));
        }
    }
    if let Some(path) = runtime.trace.as_ref().filter(|_| rank == 0) {
        let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
        let opened = dir
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| std::fs::OpenOptions::new().append(true).create(true).open(path).map(drop));
        if let Err(e) = opened {
            warn(format!("CELER_TRACE: cannot write {} ({e}): the timeline will not be written", path.display()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_backlog_waits_until_the_runtime_took_all_but_the_target() {
        // A stand-in for the runtime thread that takes one message at a time until told to stop.
        let handled = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let taker = {
            let (handled, stop) = (Arc::clone(&handled), Arc::clone(&stop));
            std::thread::spawn(move || {
                while !stop.load(Ordering::Acquire) {
                    handled.fetch_add(1, Ordering::AcqRel);
                    std::thread::yield_now();
                }
            })
        };
        let target = 3 * MESSAGE_BACKLOG;
        wait_handled(&handled, target, || false, || {});
        let when_returned = handled.load(Ordering::Acquire);
        stop.store(true, Ordering::Release);
        taker.join().unwrap();
        assert!(when_returned >= target, "returned after {when_returned} of {target} messages were taken");
        // A runtime thread that is gone takes nothing more: no wait.
        wait_handled(&AtomicU64::new(0), target, || true, || {});
    }
}
