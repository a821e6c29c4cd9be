//! Host work: host tasks' closures and what they see (`HostContext`), and the worker thread that runs them.

use std::sync::Arc;

use celer_graph::{BufferId, Command, CommandId, GridBox, TaskId, TaskKind};
use crossbeam_queue::SegQueue;

use super::batch::{Dl, GpuOp};
use super::commands::{AfterGpu, InFlight};
use super::error::{failure, CommandWork, OpContext, RuntimeError};
use super::{box3, RankLoop};

/// The closure a host task runs, on the host worker thread.
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

/// What the worker hands back for a host task: its context, or the task and the text of its closure's panic.
pub(super) type HostResult = Result<HostContext, (celer_graph::TaskIdent, String)>;

/// When a host task's closure started and ended on the worker thread: its span in the trace.
pub(super) type HostRan = (std::time::Instant, std::time::Instant);

/// A host task for the worker thread.
pub(super) struct HostJob {
    pub(super) cmd: CommandId,
    /// The task, for the message if its closure panics.
    pub(super) task: celer_graph::TaskIdent,
    pub(super) f: Arc<HostFn>,
    pub(super) ctx: HostContext,
}

/// The host worker: one thread that runs host tasks so a long one never stalls MPI progress or GPU submission.
/// Jobs and results travel through lock-free queues; the loop unparks the worker when it hands it a job.
pub(super) struct HostWorker {
    pub(super) jobs: Arc<SegQueue<HostJob>>,
    /// Finished host tasks: their context (or their closure's panic), and when the closure ran.
    pub(super) done: Arc<SegQueue<(CommandId, HostResult, HostRan)>>,
    pub(super) stop: Arc<std::sync::atomic::AtomicBool>,
    pub(super) thread: Option<std::thread::JoinHandle<()>>,
    /// Host tasks submitted whose result has not been taken from `done` yet (`RankLoop::poll_completions` looks
    /// at `done` only while there are some).
    pub(super) running: usize,
}

impl HostWorker {
    pub(super) fn start() -> Self {
        let jobs: Arc<SegQueue<HostJob>> = Arc::new(SegQueue::new());
        let done = Arc::new(SegQueue::new());
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (j, d, st) = (Arc::clone(&jobs), Arc::clone(&done), Arc::clone(&stop));
        // The worker wakes the runtime thread (which starts it) when a task finishes, in case its idle loop parked.
        let runtime = std::thread::current();
        let thread = std::thread::Builder::new()
            .name("celer-host".into())
            .spawn(move || {
                super::exit::mark_host_worker();
                loop {
                    while let Some(mut job) = j.pop() {
                        let f = Arc::clone(&job.f);
                        let start = std::time::Instant::now();
                        super::exit::running_host_task(Some(job.task.id));
                        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&mut job.ctx)));
                        super::exit::running_host_task(None);
                        let ran = (start, std::time::Instant::now());
                        let result = result.map(|()| job.ctx).map_err(|p| (job.task, super::panics::panic_text(&*p)));
                        d.push((job.cmd, result, ran));
                        runtime.unpark();
                    }
                    if st.load(std::sync::atomic::Ordering::Acquire) {
                        return;
                    }
                    std::thread::park_timeout(std::time::Duration::from_millis(1));
                }
            })
            .expect("starting the host worker thread");
        Self { jobs, done, stop, thread: Some(thread), running: 0 }
    }

    pub(super) fn submit(&mut self, job: HostJob) {
        self.running += 1;
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
            let bytes = super::zeroed_bytes(n).ok_or_else(|| {
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
        let ctx = HostContext { chunk: *chunk, rank: host_rank, ranks: host_ranks, views, objects: payload.1 };
        let job = Box::new(HostJob { cmd: cmd.id, task: task.ident(), f: payload.0, ctx });
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
        // The span is the closure's own run on the worker thread, not the time since the task was handed over
        // (queued behind other host tasks) nor until the loop noticed it had finished.
        if self.trace.is_some() {
            let what = format!("host task {}", self.task_label(cmd));
            if let Some(trace) = &mut self.trace {
                trace.span(crate::trace::Row::Host, what, ran.0, ran.1);
            }
        }
        let mut any = false;
        for v in ctx.views.into_iter().filter(|v| v.produces && !v.bounds.is_empty()) {
            any = true;
            self.cover(v.buffer, &v.bounds)?;
            let bytes = Arc::new(v.bytes);
            // Only the accessor's region: one box, or each of several (not the bounding box between them).
            let one = [v.bounds];
            for region in if v.written.is_empty() { &one[..] } else { &v.written[..] } {
                self.pending.push(GpuOp::Upload {
                    buffer: v.buffer,
                    region: *region,
                    bytes: Arc::clone(&bytes),
                    bounds: v.bounds,
                    context: OpContext::HostOutputs(cmd),
                });
            }
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
        // (The panic points at the caller's line: tests/e2e_errors.rs, case nested-object, checks it.) It poisoned the lock the outer call held; with_object goes on with a poisoned object's value.
        let value = *object.lock().unwrap_or_else(|p| p.into_inner()).as_any_mut().downcast_mut::<u32>().unwrap();
        assert_eq!(value, 2);
    }
}
