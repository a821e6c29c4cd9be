//! Host work: host tasks' closures and what they see (`HostContext`), and the pool of worker threads that runs them.

use std::sync::Arc;

use celer_graph::{BufferId, Command, CommandId, GridBox, TaskId, TaskKind};
use crossbeam_queue::SegQueue;

use super::batch::{Dl, GpuOp};
use super::boxes::box3;
use super::commands::{AfterGpu, InFlight};
use super::error::{failure, CommandWork, OpContext, RuntimeError};
use super::RankLoop;

/// The closure a host task runs, on one of the rank's host worker threads (`CELER_HOST_THREADS`).
pub type HostFn = dyn Fn(&mut HostContext) + Send + Sync;

/// A host object's value as the runtime carries it: one instance per rank, shared between the application thread
/// and the host tasks that declare a side effect on it (which the task graph runs one at a time, in order).
pub type SharedObject = Arc<std::sync::Mutex<dyn ObjectValue>>;

/// A host object's value: any `Send + 'static` value, which can also name its type (for the panic of a
/// `with_object` that asks for another type).
pub trait ObjectValue: std::any::Any + Send {
    /// The value, for a downcast.
    fn as_any_mut(&mut self) -> &mut dyn std::any::Any;
    /// Its type as Rust names it (`std::any::type_name`).
    fn type_name(&self) -> &'static str;
}

impl std::fmt::Debug for dyn ObjectValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ObjectValue({})", self.type_name())
    }
}

impl<T: std::any::Any + Send> ObjectValue for T {
    fn as_any_mut(&mut self) -> &mut dyn std::any::Any {
        self
    }

    fn type_name(&self) -> &'static str {
        std::any::type_name::<T>()
    }
}

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
pub(super) struct HostView {
    pub(super) buffer: BufferId,
    pub(super) bounds: GridBox,
    /// The buffer's dimensionality (1 to 3).
    pub(super) dims: usize,
    pub(super) elem_size: usize,
    pub(super) bytes: Vec<u8>,
    pub(super) produces: bool,
    /// For a writing accessor whose region is several boxes: those boxes, the only cells written back (the rest of
    /// `bounds` is not the task's to write, and holds zeros or what the closure left there). Empty otherwise.
    pub(super) written: Vec<GridBox>,
}

/// What a host task's closure gets: its chunk, and per accessor (in declaration order) the cells it maps to.
///
/// Read, write and read-write accessors hold the buffer's current contents; discard-write accessors start zeroed;
/// the cells of a writing accessor's region (not the rest of its bounding box) are written back when the closure
/// returns.
///
/// The default value is an empty context (no chunk, no accessors), a placeholder while a wrapper borrows the real one.
#[derive(Debug, Default)]
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
    /// If the task has no accessor `i` (the panic points at the caller).
    #[track_caller]
    pub fn bounds(&self, i: usize) -> GridBox {
        self.view(i).bounds
    }

    /// The dimensionality of accessor `i`'s buffer.
    ///
    /// # Panics
    /// If the task has no accessor `i` (the panic points at the caller).
    #[track_caller]
    pub fn buffer_dims(&self, i: usize) -> usize {
        self.view(i).dims
    }

    /// Accessor `i`'s view, or a panic at the caller naming how many accessors the task declared.
    #[track_caller]
    fn view(&self, i: usize) -> &HostView {
        match self.views.get(i) {
            Some(v) => v,
            None => panic!("this host task has no accessor {i}: it declared {} (numbered from 0)", self.views.len()),
        }
    }

    /// Accessor `i`'s cells as a slice of `T` (row-major over [`bounds`](Self::bounds)).
    ///
    /// `T` is plain old data ([`bytemuck::Pod`]): every bit pattern is a valid `T` (so not `bool` or references).
    ///
    /// # Panics
    /// If the task has no accessor `i`, or `T`'s size is not the buffer's element size (the panic points at the
    /// caller).
    #[track_caller]
    pub fn data<T: bytemuck::Pod>(&self, i: usize) -> &[T] {
        const { assert!(std::mem::align_of::<T>() <= 16, "host views are 16-byte aligned: no element aligned to more") };
        let v = self.view(i);
        assert_eq!(std::mem::size_of::<T>(), v.elem_size, "accessor {i} holds {}-byte elements", v.elem_size);
        let n = v.bytes.len() / v.elem_size;
        if n == 0 {
            // An empty view (a zero-sized buffer or chunk): its storage was never allocated, so not aligned either.
            return &[];
        }
        assert_eq!(v.bytes.as_ptr().align_offset(std::mem::align_of::<T>()), 0, "host view is not aligned");
        bytemuck::cast_slice(&v.bytes[..n * v.elem_size])
    }

    /// Runs `f` on host object `i` (in the order the task declared its side effects).
    ///
    /// # Panics
    /// If the task has no side effect `i`, or the object is not a `T` (the panic points at the caller).
    #[track_caller]
    pub fn with_object<T: 'static, R>(&self, i: usize, f: impl FnOnce(&mut T) -> R) -> R {
        let Some(object) = self.objects.get(i) else {
            panic!("this host task has no side effect {i}: it declared {} (numbered from 0)", self.objects.len())
        };
        // A nested call on an object this thread already holds would wait for itself forever: refuse it here, at the
        // caller's line. (Other threads, e.g. the worker of another device of this rank, may wait for the lock.)
        let Some(_held) = HeldObject::enter(object) else {
            panic!(
                "with_object({i}) while an enclosing with_object call of this thread already holds that host object: \
                 a nested call on the same host object would wait for itself forever (a deadlock); use the reference \
                 the outer call gives (pass it down), or end the outer call first"
            )
        };
        let mut guard = object.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let held = ObjectValue::type_name(&*guard);
        let Some(value) = ObjectValue::as_any_mut(&mut *guard).downcast_mut::<T>() else {
            panic!(
                "host object {i} of this host task holds a {held}, not a {}: use with_object::<{held}, _>({i}, ..)",
                std::any::type_name::<T>()
            )
        };
        f(value)
    }

    /// Accessor `i`'s cells, writable; written back to the buffer after the closure returns (write accessors only).
    ///
    /// # Panics
    /// As [`data`](Self::data), and if accessor `i` only reads.
    #[track_caller]
    pub fn data_mut<T: bytemuck::Pod>(&mut self, i: usize) -> &mut [T] {
        const { assert!(std::mem::align_of::<T>() <= 16, "host views are 16-byte aligned: no element aligned to more") };
        let declared = self.views.len();
        let Some(v) = self.views.get_mut(i) else {
            panic!("this host task has no accessor {i}: it declared {declared} (numbered from 0)")
        };
        assert!(v.produces, "accessor {i} of this host task only reads; declare it write or read_write");
        assert_eq!(std::mem::size_of::<T>(), v.elem_size, "accessor {i} holds {}-byte elements", v.elem_size);
        let n = v.bytes.len() / v.elem_size;
        if n == 0 {
            return &mut [];
        }
        assert_eq!(v.bytes.as_ptr().align_offset(std::mem::align_of::<T>()), 0, "host view is not aligned");
        bytemuck::cast_slice_mut(&mut v.bytes[..n * v.elem_size])
    }
}

thread_local! {
    /// The host objects (their addresses) whose lock a `with_object` call of this thread holds.
    static HELD_OBJECTS: std::cell::RefCell<Vec<usize>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// A host object this thread holds in a `with_object` call, registered in [`HELD_OBJECTS`] until dropped (also when
/// the closure panics).
struct HeldObject(usize);

impl HeldObject {
    /// Registers `object`, or `None` if this thread already holds it.
    fn enter(object: &SharedObject) -> Option<Self> {
        let key = Arc::as_ptr(object) as *const () as usize;
        HELD_OBJECTS.with(|held| {
            let mut held = held.borrow_mut();
            (!held.contains(&key)).then(|| {
                held.push(key);
                Self(key)
            })
        })
    }
}

impl Drop for HeldObject {
    fn drop(&mut self) {
        HELD_OBJECTS.with(|held| held.borrow_mut().retain(|&k| k != self.0));
    }
}

/// What a worker hands back for a host task: its context, or the task and the text of its closure's panic.
pub(super) type HostResult = Result<HostContext, (celer_graph::TaskIdent, String)>;

/// When a host task's closure started and ended, and on which worker (its index in the pool): its span in the
/// trace.
#[derive(Clone, Copy, Debug)]
pub(super) struct HostRan {
    pub(super) start: std::time::Instant,
    pub(super) end: std::time::Instant,
    pub(super) worker: usize,
}

/// A host task for the pool.
pub(super) struct HostJob {
    pub(super) cmd: CommandId,
    /// The task, for the message if its closure panics.
    pub(super) task: celer_graph::TaskIdent,
    pub(super) f: Arc<HostFn>,
    pub(super) ctx: HostContext,
    /// A collective host task: runs on worker 0, after every collective task handed over before it (see
    /// [`HostWorker`]).
    pub(super) ordered: bool,
}

/// A finished host task as a worker reports it.
pub(super) type Finished = (CommandId, HostResult, HostRan);

/// The queues a pool's workers share with the runtime thread.
struct Queues {
    /// Jobs only worker 0 takes, in hand-over order: collective host tasks (and every job of a pool of one).
    ordered: SegQueue<HostJob>,
    /// Jobs any worker takes.
    shared: SegQueue<HostJob>,
    /// Finished host tasks: their context (or their closure's panic), and when and where the closure ran.
    done: SegQueue<Finished>,
    stop: std::sync::atomic::AtomicBool,
    /// What each worker runs now, for the stall report: one [`Now`] per worker, written by that worker only.
    now: Vec<Now>,
    /// The instant [`Now::start`] counts from.
    epoch: std::time::Instant,
}

/// What one worker runs now: the command (its id plus one; 0 while idle) and when its closure started (nanoseconds
/// since [`Queues::epoch`]). The worker stores `start` before `cmd`, so a reader that sees a command sees its start
/// (or a later task's, which only shortens the time it reports).
#[derive(Default)]
struct Now {
    cmd: std::sync::atomic::AtomicU64,
    start: std::sync::atomic::AtomicU64,
}

/// The host workers (`CELER_HOST_THREADS` of them, per device loop): threads that run host tasks so that a long one
/// never stalls MPI progress or GPU submission, and independent host tasks (two snapshot writes of different
/// buffers) run at the same time, as on Celerity's pool of host threads.
///
/// - **Collective host tasks run on worker 0, one at a time, in the order they were handed over** (their
///   collective group's order, which the task graph gives them), never beside each other: a program may rely on
///   them as it did on one worker (one collective after the other, on every rank alike). MPI allows no more
///   anyway: it runs at `MPI_THREAD_FUNNELED`, only the runtime thread calls it, and a collective task's closure
///   gets no communicator.
/// - Every other host task goes to whichever worker is free (worker 0 too, when no collective task waits for it).
///   Tasks that must not overlap are ordered by the task graph before they get here: data dependencies, and side
///   effects on one host object (each object is a `Mutex` as well).
/// - With one worker (`CELER_HOST_THREADS=1`) every job goes to worker 0 in hand-over order: one at a time, as
///   before the pool existed.
/// - The workers start with the loop, before the runtime thread is pinned (`CELER_PIN`), so they keep the rank's
///   whole set of cores. Jobs and results travel through lock-free queues; the loop unparks the workers when it
///   hands over a job, and a worker unparks the runtime thread when it finished one.
pub(super) struct HostWorker {
    queues: Arc<Queues>,
    threads: Vec<std::thread::JoinHandle<()>>,
    /// Host tasks submitted whose result has not been taken from `done` yet (`RankLoop::poll_completions` looks
    /// at `done` only while there are some).
    pub(super) running: usize,
}

impl HostWorker {
    /// Starts `threads` workers (at least one), waking the calling thread (the runtime thread) when a task finishes.
    pub(super) fn start(threads: usize) -> Self {
        let queues = Arc::new(Queues {
            ordered: SegQueue::new(),
            shared: SegQueue::new(),
            done: SegQueue::new(),
            stop: std::sync::atomic::AtomicBool::new(false),
            now: (0..threads.max(1)).map(|_| Now::default()).collect(),
            epoch: std::time::Instant::now(),
        });
        // A worker wakes the runtime thread (which starts the pool) when a task finishes, in case its idle loop
        // parked.
        let runtime = std::thread::current();
        let threads = (0..threads.max(1))
            .map(|worker| {
                let (q, runtime) = (Arc::clone(&queues), runtime.clone());
                // Worker 0 keeps the name the one worker had.
                let name = if worker == 0 { "celer-host".to_string() } else { format!("celer-host-{worker}") };
                std::thread::Builder::new()
                    .name(name)
                    .spawn(move || work(&q, worker, &runtime))
                    .expect("starting a host worker thread")
            })
            .collect();
        Self { queues, threads, running: 0 }
    }

    /// Hands `job` to the pool.
    pub(super) fn submit(&mut self, job: HostJob) {
        self.running += 1;
        if job.ordered || self.threads.len() == 1 {
            self.queues.ordered.push(job);
            self.threads[0].thread().unpark();
        } else {
            self.queues.shared.push(job);
            // Whichever worker is parked takes it; unparking a busy one only makes its next park return at once.
            for t in &self.threads {
                t.thread().unpark();
            }
        }
    }

    /// The worker running host task `cmd` now, and since when its closure runs; `None` while the task waits in the
    /// pool's queue behind busy workers (or has just finished). For the stall report, which should not count the
    /// time a task was queued as time its closure ran.
    pub(super) fn running_since(&self, cmd: CommandId) -> Option<(usize, std::time::Instant)> {
        use std::sync::atomic::Ordering;
        self.queues.now.iter().enumerate().find_map(|(worker, now)| {
            (now.cmd.load(Ordering::Acquire) == cmd.0 + 1).then(|| {
                let start = std::time::Duration::from_nanos(now.start.load(Ordering::Relaxed));
                (worker, self.queues.epoch + start)
            })
        })
    }

    /// The number of workers in the pool.
    pub(super) fn workers(&self) -> usize {
        self.threads.len()
    }

    /// The next finished host task, if any.
    pub(super) fn take_done(&mut self) -> Option<Finished> {
        let finished = self.queues.done.pop()?;
        self.running -= 1;
        Some(finished)
    }
}

thread_local! {
    /// On a host worker: what [`RunningWrites`] notes of the host task whose closure it runs now.
    static RUNNING_WRITES: std::cell::RefCell<RunningWrites> = const { std::cell::RefCell::new(RunningWrites::NONE) };
}

/// The host task whose closure a host worker runs now (`None`: none) and the boxes of each buffer its chunk writes,
/// for [`fence_wait_deadlock`].
struct RunningWrites {
    task: Option<celer_graph::TaskIdent>,
    writes: Vec<(BufferId, GridBox)>,
}

impl RunningWrites {
    /// No task running.
    const NONE: Self = Self { task: None, writes: Vec::new() };

    /// Notes `job`'s task and the boxes its accessors write (a region's boxes where it has several).
    fn enter(job: &HostJob) {
        RUNNING_WRITES.with(|r| {
            let r = &mut *r.borrow_mut();
            r.task = Some(job.task.clone());
            r.writes.clear();
            for v in job.ctx.views.iter().filter(|v| v.produces && !v.bounds.is_empty()) {
                if v.written.is_empty() {
                    r.writes.push((v.buffer, v.bounds));
                } else {
                    r.writes.extend(v.written.iter().map(|b| (v.buffer, *b)));
                }
            }
        });
    }

    /// Forgets the task once its closure returned.
    fn leave() {
        RUNNING_WRITES.with(|r| r.borrow_mut().task = None);
    }
}

/// Where the calling thread runs the closure of a host task submitted before `fence` that writes cells of `buffer`
/// (named `ident` in the message) inside `fenced` (the box the fence reads): the message of the deadlock that
/// waiting for the fence there would be, since the fence reads what this chunk writes, so it waits for the task,
/// whose closure would wait for it. `None`
/// elsewhere (the application thread, a fence of other cells or submitted before the task: those may complete;
/// a fence that waits for the task through other tasks or ranks is left to the stall detection).
pub fn fence_wait_deadlock(
    fence: TaskId,
    buffer: BufferId,
    ident: &celer_graph::ResourceIdent,
    fenced: &GridBox,
) -> Option<String> {
    RUNNING_WRITES.with(|r| {
        let r = &*r.borrow();
        let (task, writes) = (r.task.as_ref().filter(|t| t.id < fence)?, &r.writes);
        let cells =
            writes.iter().filter(|(b, w)| *b == buffer && w.intersects(fenced)).map(|(_, w)| w.intersection(fenced));
        let cells: Vec<String> = cells.map(|c| c.to_string()).collect();
        if cells.is_empty() {
            return None;
        }
        Some(format!(
            "Fence::wait inside the closure of host {task} for the fence of task {fence}, submitted after it: the \
             fence reads {ident} in {}, which this host task writes, so the fence waits for this task to finish, and \
             the task would wait for the fence forever (a deadlock); wait for the fence in the program after \
             submitting, or pass the data to the host task through an accessor (read the buffer in a later host \
             task)",
            cells.join(", ")
        ))
    })
}

/// A worker's loop: runs jobs (worker 0: collective ones first) until the pool stops and no job is left.
fn work(q: &Queues, worker: usize, runtime: &std::thread::Thread) {
    super::exit::mark_host_worker();
    loop {
        let next = if worker == 0 { q.ordered.pop().or_else(|| q.shared.pop()) } else { q.shared.pop() };
        if let Some(mut job) = next {
            let f = Arc::clone(&job.f);
            let start = std::time::Instant::now();
            let now = &q.now[worker];
            let nanos = u64::try_from((start - q.epoch).as_nanos()).unwrap_or(u64::MAX);
            now.start.store(nanos, std::sync::atomic::Ordering::Relaxed);
            now.cmd.store(job.cmd.0 + 1, std::sync::atomic::Ordering::Release);
            // Per thread: the exit hook of this worker names this task, whatever the others run.
            super::exit::running_host_task(Some(job.task.id));
            RunningWrites::enter(&job);
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&mut job.ctx)));
            RunningWrites::leave();
            super::exit::running_host_task(None);
            now.cmd.store(0, std::sync::atomic::Ordering::Release);
            let ran = HostRan { start, end: std::time::Instant::now(), worker };
            let result = result.map(|()| job.ctx).map_err(|p| (job.task, super::panics::panic_text(&*p)));
            q.done.push((job.cmd, result, ran));
            runtime.unpark();
            continue;
        }
        if q.stop.load(std::sync::atomic::Ordering::Acquire) {
            return;
        }
        if worker == 0 {
            // As the one worker always did: a hand-over unparks it at once, the timeout is a backstop.
            std::thread::park_timeout(std::time::Duration::from_millis(1));
        } else {
            // Woken by every hand-over of a job any worker may take, and by the pool's drop: an idle worker costs
            // nothing (a token left by an earlier unpark makes this return at once, so no wake-up is lost).
            std::thread::park();
        }
    }
}

impl Drop for HostWorker {
    fn drop(&mut self) {
        self.queues.stop.store(true, std::sync::atomic::Ordering::Release);
        for t in &self.threads {
            t.thread().unpark();
        }
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl RankLoop<'_> {
    /// Starts host-task execution `cmd` of `task` over `chunk`: collects the downloads of its inputs, or hands it
    /// to the worker at once if it reads nothing.
    pub(super) fn start_host_task(
        &mut self,
        cmd: &Command,
        task: TaskId,
        chunk: &GridBox,
    ) -> Result<Option<InFlight>, RuntimeError> {
        let fail = failure(self.node, cmd);
        let task = self.tm.task(task).ok_or_else(|| fail(RuntimeError::TaskPruned))?;
        // With several devices per rank, a collective host task is the rank's, not each device's: it has one item
        // per rank, which runs on the rank's device 0 (once per rank, so host objects see each side effect once);
        // the other devices' chunks are empty.
        let per_rank = matches!(task.kind(), TaskKind::Collective(_)) && self.devices > 1;
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
            .ok_or_else(|| fail(RuntimeError::NoPayload { task: task.ident().to_string(), what: "host closure" }))?
            .clone();
        let mut views = Vec::new();
        let mut wanted = Vec::new();
        for (i, a) in task.spec.accesses.iter().enumerate() {
            let state =
                self.buffers.get(&a.buffer).ok_or_else(|| fail(RuntimeError::UnknownBuffer { buffer: a.buffer }))?;
            let region = celer_graph::task::noting_buffer(a.buffer, || {
                a.mapper.apply(chunk, &task.spec.range, task.spec.dims, &state.extent, state.dims)
            })
            .map_err(|e| fail(e.into()))?;
            let bounds = region.bounding_box();
            let written =
                if a.mode.produces() && region.boxes().len() > 1 { region.boxes().to_vec() } else { Vec::new() };
            if a.mode.consumes() && !bounds.is_empty() {
                wanted.push((i, a.buffer, bounds));
            }
            let n = bounds.area() * state.elem_size;
            let bytes = super::alloc::zeroed_bytes(n).ok_or_else(|| {
                fail(RuntimeError::HostMemory {
                    what: format!("accessor {i} of host {}", task.ident()),
                    buffer: self.tm.buffer_ident(a.buffer).to_string(),
                    bounds,
                    bytes: n,
                })
            })?;
            views.push(HostView {
                buffer: a.buffer,
                bounds,
                dims: state.dims,
                elem_size: state.elem_size,
                bytes,
                produces: a.mode.produces(),
                written,
            });
        }
        // Held until the command completes (`mark_done`); `start_ready` starts no host task while too many are.
        let view_bytes = views.iter().map(|v| v.bytes.len()).sum::<usize>();
        self.host_started.insert(cmd.id, view_bytes);
        self.host_view_bytes += view_bytes;
        let ctx = HostContext { chunk: *chunk, rank: host_rank, ranks: host_ranks, views, objects: payload.1 };
        let ordered = matches!(task.kind(), TaskKind::Collective(_));
        let job = Box::new(HostJob { cmd: cmd.id, task: task.ident(), f: payload.0, ctx, ordered });
        for v in &job.ctx.views {
            if !v.bounds.is_empty() {
                let (buffer, bounds) = (v.buffer, v.bounds);
                self.cover(buffer, &bounds).map_err(&fail)?;
            }
        }
        if wanted.is_empty() {
            return Ok(Some(self.hand_over(job)));
        }
        let context = OpContext::command(self.node, cmd, CommandWork::HostInputs);
        let downloads = wanted.into_iter().map(|(i, b, bounds)| (i, self.pend_download(b, bounds, context)));
        let downloads = downloads.collect();
        Ok(Some(InFlight::Gpu(self.open(), AfterGpu::HostInputs { downloads, job })))
    }

    /// Fills the host task's views from its downloaded inputs and hands it to the worker.
    pub(super) fn run_host_task(
        &mut self,
        downloads: Vec<(usize, Dl)>,
        mut job: HostJob,
    ) -> Result<InFlight, RuntimeError> {
        for (i, d) in downloads {
            let v = &mut job.ctx.views[i];
            self.gpu.read_download(d.id()?, &mut v.bytes, box3(&v.bounds))?;
        }
        Ok(self.hand_over(Box::new(job)))
    }

    /// Hands host task `job` to the worker, unless the divergence check has not yet found the window that holds
    /// its task equal on every rank: then holds it ([`InFlight::HeldHost`]) until it has, so that a rank whose
    /// program diverged never runs the program's closure (which may print or write files) on a wrong task stream.
    pub(super) fn hand_over(&mut self, job: Box<HostJob>) -> InFlight {
        if self.divergence.as_ref().is_some_and(|d| d.enabled && d.stream.unconfirmed(job.task.id)) {
            return InFlight::HeldHost(job, std::time::Instant::now());
        }
        let cmd = job.cmd;
        self.host.submit(*job);
        InFlight::Host(cmd, std::time::Instant::now())
    }

    /// Advances host task `cmd`, running since `since`: once the worker finished it, collects the uploads of what
    /// it wrote.
    pub(super) fn finish_host_task(
        &mut self,
        cmd: CommandId,
        since: std::time::Instant,
    ) -> Result<Option<InFlight>, RuntimeError> {
        let Some((result, ran)) = self.host_done.remove(&cmd) else {
            return Ok(Some(InFlight::Host(cmd, since)));
        };
        let ctx = result.map_err(|(task, message)| RuntimeError::HostTaskPanicked {
            node: self.node,
            command: cmd,
            task: task.to_string(),
            message,
        })?;
        self.stats.host_tasks += 1;
        // The span is the closure's own run on its worker, not the time since the task was handed over
        // (queued behind other host tasks) nor until the loop noticed it had finished.
        if self.trace.is_some() {
            let what = format!("host task {}", self.task_label(cmd));
            if let Some(trace) = &mut self.trace {
                trace.host_span(ran.worker, what, ran.start, ran.end);
            }
        }
        let mut any = false;
        for v in ctx.views.into_iter().filter(|v| v.produces && !v.bounds.is_empty()) {
            any = true;
            self.cover(v.buffer, &v.bounds)?;
            let bytes = Arc::new(v.bytes);
            // Only the accessor's region: one box, or each of several (not the bounding box between them), all in
            // one upload: one staging buffer of the bytes written, however many boxes a custom mapper made.
            let boxes = if v.written.is_empty() {
                smallvec::smallvec![box3(&v.bounds)]
            } else {
                v.written.iter().map(box3).collect()
            };
            self.pending.push(GpuOp::Upload {
                buffer: v.buffer,
                boxes,
                bytes,
                bounds: v.bounds,
                context: OpContext::HostOutputs(cmd),
            });
        }
        Ok(any.then(|| InFlight::Gpu(self.open(), AfterGpu::Done)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A context holding `objects` and nothing else.
    fn with(objects: Vec<SharedObject>) -> HostContext {
        HostContext { objects, ..HostContext::default() }
    }

    #[test]
    fn a_nested_with_object_on_the_object_this_thread_holds_panics_instead_of_deadlocking() {
        let object: SharedObject = Arc::new(std::sync::Mutex::new(0u32));
        let ctx = with(vec![object.clone(), Arc::new(std::sync::Mutex::new(0u32))]);
        // Another type than the object's is refused naming both.
        let wrong = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| ctx.with_object(1, |_: &mut u64| ())));
        let message = wrong.expect_err("a u64 view of a u32 must panic").downcast::<String>().expect("formatted");
        assert!(message.contains("host object 1 of this host task holds a u32, not a u64"), "{message}");
        // Nested calls on two different objects are fine.
        ctx.with_object(0, |a: &mut u32| ctx.with_object(1, |b: &mut u32| *b = *a + 1));
        let nested = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            ctx.with_object(0, |_: &mut u32| ctx.with_object(0, |_: &mut u32| ()));
        }));
        let message = nested.expect_err("the nested call must panic").downcast::<String>().expect("a formatted panic");
        assert!(message.contains("with_object(0) while an enclosing with_object call"), "{message}");
        // The outer call released the object on the way out: the thread may take it again, and so may another one.
        ctx.with_object(0, |a: &mut u32| *a += 1);
        std::thread::scope(|s| {
            s.spawn(|| with(vec![object.clone()]).with_object(0, |a: &mut u32| *a += 1));
        });
        // (The panic points at the caller's line: tests/e2e_errors.rs, case nested-object, checks it.) It poisoned
        // the lock the outer call held; with_object goes on with a poisoned object's value.
        let value = *object.lock().unwrap_or_else(|p| p.into_inner()).as_any_mut().downcast_mut::<u32>().unwrap();
        assert_eq!(value, 2);
    }

    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::time::{Duration, Instant};

    /// A job for command `C{id}` of task `T{id}` named `name`, running `f`.
    fn job(id: u64, name: &str, ordered: bool, f: impl Fn(&mut HostContext) + Send + Sync + 'static) -> HostJob {
        HostJob {
            cmd: CommandId(id),
            task: celer_graph::TaskIdent { id: TaskId(id), name: Some(name.into()) },
            f: Arc::new(f),
            ctx: HostContext::default(),
            ordered,
        }
    }

    /// Takes `n` finished jobs from `pool`, failing (not hanging) after 20 s.
    fn finish(pool: &mut HostWorker, n: usize) -> Vec<Finished> {
        let until = Instant::now() + Duration::from_secs(20);
        let mut done = Vec::new();
        while done.len() < n {
            assert!(Instant::now() < until, "{} of {n} host tasks finished within 20 s", done.len());
            match pool.take_done() {
                Some(f) => done.push(f),
                None => std::thread::park_timeout(Duration::from_millis(1)),
            }
        }
        done
    }

    /// Sets `mine`, then waits up to `patience` for `theirs`; returns whether it came.
    fn meet(mine: &AtomicBool, theirs: &AtomicBool, patience: Duration) -> bool {
        mine.store(true, Ordering::Release);
        let until = Instant::now() + patience;
        while !theirs.load(Ordering::Acquire) {
            if Instant::now() > until {
                return false;
            }
            std::thread::sleep(Duration::from_micros(100));
        }
        true
    }

    /// Two jobs that each wait for the other to have started, and whether each saw the other.
    fn two_meeting(pool: &mut HostWorker, patience: Duration) -> (bool, bool, Vec<Finished>) {
        let flags = Arc::new([AtomicBool::new(false), AtomicBool::new(false)]);
        let met = Arc::new([AtomicBool::new(false), AtomicBool::new(false)]);
        for k in 0..2 {
            let (flags, met) = (Arc::clone(&flags), Arc::clone(&met));
            pool.submit(job(k as u64 + 1, "meet", false, move |_| {
                met[k].store(meet(&flags[k], &flags[1 - k], patience), Ordering::Release);
            }));
        }
        let done = finish(pool, 2);
        assert_eq!(pool.running, 0);
        (met[0].load(Ordering::Acquire), met[1].load(Ordering::Acquire), done)
    }

    #[test]
    fn independent_host_tasks_run_at_the_same_time_on_a_pool_of_two() {
        let mut pool = HostWorker::start(2);
        // Each waits (up to 10 s, then gives up: the test fails instead of hanging) for the other to start.
        let (a, b, done) = two_meeting(&mut pool, Duration::from_secs(10));
        assert!(a && b, "two independent host tasks on two workers did not overlap (saw each other: {a}, {b})");
        let mut workers: Vec<usize> = done.iter().map(|(_, _, ran)| ran.worker).collect();
        workers.sort_unstable();
        assert_eq!(workers, [0, 1], "one task per worker");
    }

    #[test]
    fn one_worker_runs_host_tasks_one_after_the_other_in_hand_over_order() {
        let mut pool = HostWorker::start(1);
        // The first waits 200 ms in vain for the second, which starts only once the first returned.
        let (a, b, done) = two_meeting(&mut pool, Duration::from_millis(200));
        assert!(!a && b, "one worker overlapped two host tasks (saw each other: {a}, {b})");
        let order: Vec<u64> = done.iter().map(|(cmd, _, _)| cmd.0).collect();
        assert_eq!(order, [1, 2]);
        assert!(done[0].2.end <= done[1].2.start, "the second started before the first ended");
        assert!(done.iter().all(|(_, _, ran)| ran.worker == 0));
    }

    #[test]
    fn collective_host_tasks_run_on_worker_0_one_at_a_time_in_hand_over_order() {
        let mut pool = HostWorker::start(4);
        let inside = Arc::new(AtomicUsize::new(0));
        let overlapped = Arc::new(AtomicBool::new(false));
        let order = Arc::new(std::sync::Mutex::new(Vec::new()));
        for id in 1..=8u64 {
            let ordered = id % 2 == 1;
            let (inside, overlapped, order) = (Arc::clone(&inside), Arc::clone(&overlapped), Arc::clone(&order));
            pool.submit(job(id, "c", ordered, move |_| {
                if ordered {
                    if inside.fetch_add(1, Ordering::AcqRel) != 0 {
                        overlapped.store(true, Ordering::Release);
                    }
                    order.lock().unwrap().push(id);
                }
                std::thread::sleep(Duration::from_millis(5));
                if ordered {
                    inside.fetch_sub(1, Ordering::AcqRel);
                }
            }));
        }
        let done = finish(&mut pool, 8);
        assert!(!overlapped.load(Ordering::Acquire), "two collective host tasks ran at the same time");
        assert_eq!(*order.lock().unwrap(), [1, 3, 5, 7], "collective host tasks out of hand-over order");
        for (cmd, _, ran) in &done {
            assert!(cmd.0 % 2 == 0 || ran.worker == 0, "collective C{} ran on worker {}", cmd.0, ran.worker);
        }
    }

    #[test]
    fn a_panicking_closure_on_any_worker_is_reported_with_its_task_while_the_others_run_on() {
        let mut pool = HostWorker::start(2);
        let release = Arc::new(AtomicBool::new(false));
        let r = Arc::clone(&release);
        // One worker is held by a task that waits for the panic to be reported; the other one panics.
        pool.submit(job(1, "waits", false, move |_| {
            let until = Instant::now() + Duration::from_secs(10);
            while !r.load(Ordering::Acquire) && Instant::now() < until {
                std::thread::sleep(Duration::from_micros(100));
            }
        }));
        pool.submit(job(2, "explode", false, |_| panic!("boom")));
        let first = finish(&mut pool, 1).remove(0);
        release.store(true, Ordering::Release);
        let (cmd, result, _) = first;
        assert_eq!(cmd, CommandId(2), "the panicking task finished first, while the other waited");
        let (task, message) = result.expect_err("the panic is reported");
        assert_eq!((task.to_string().as_str(), message.as_str()), ("task T2 \"explode\"", "boom"));
        let (cmd, result, _) = finish(&mut pool, 1).remove(0);
        assert!(cmd == CommandId(1) && result.is_ok());
        assert_eq!(pool.running, 0);
    }

    #[test]
    fn the_pool_tells_a_running_host_task_from_one_queued_behind_busy_workers() {
        let mut pool = HostWorker::start(1);
        let (started, release) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicBool::new(false)));
        let (s, r) = (Arc::clone(&started), Arc::clone(&release));
        let handed_over = Instant::now();
        pool.submit(job(1, "busy", false, move |_| {
            s.store(true, Ordering::Release);
            let until = Instant::now() + Duration::from_secs(10);
            while !r.load(Ordering::Acquire) && Instant::now() < until {
                std::thread::sleep(Duration::from_micros(100));
            }
        }));
        pool.submit(job(2, "queued", false, |_| {}));
        let until = Instant::now() + Duration::from_secs(10);
        while !started.load(Ordering::Acquire) {
            assert!(Instant::now() < until, "the first host task did not start within 10 s");
            std::thread::sleep(Duration::from_micros(100));
        }
        let (worker, since) = pool.running_since(CommandId(1)).expect("the first task runs on a worker");
        assert!(worker == 0 && since >= handed_over && since <= Instant::now(), "worker {worker}, since {since:?}");
        assert_eq!(pool.running_since(CommandId(2)), None, "the second waits in the queue: not running");
        release.store(true, Ordering::Release);
        finish(&mut pool, 2);
        assert_eq!(pool.running_since(CommandId(1)), None, "a finished task no longer runs");
        assert_eq!(pool.workers(), 1);
    }
}
