//! Ending the process cleanly: an `atexit` hook that shuts a live runtime down (running the shutdown epoch and
//! `MPI_Finalize`) when the program calls `std::process::exit` while a queue is alive, and SIGINT/SIGTERM handlers
//! (installed while a runtime runs, where the program has none) that make the runtime thread end every rank with
//! `MPI_Abort`, which lets OpenMPI remove its shared-memory segments, instead of dying in the middle of an MPI call.
//! A rank whose launcher died (`mpirun` killed, or Ctrl-C twice) gets SIGTERM from the kernel (`PR_SET_PDEATHSIG`),
//! and exits; a rank that ends on a signal removes its own shared-memory segment first (the launcher may kill it
//! before it cleans up).
//!
//! `std::process::exit` on one of celer's own threads cannot shut the runtime down: in a host task's closure (the
//! runtime waits for that task) the hook asks the runtime thread to end every rank naming the task; in program code
//! the runtime thread runs (a range mapper, a combine closure) it ends this rank at once with a message.

use std::cell::Cell;
use std::os::raw::c_int;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{mpsc, Arc, Mutex, Once};

use celer_graph::EpochAction;
use crossbeam_queue::SegQueue;

use super::thread::Message;

/// Set by the runtime thread of a rank that ended its program before the others (its queue dropped where they
/// submitted more): the application thread's shutdown stops waiting, so the program goes on (and prints its error).
static ENDED_EARLY: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Lets the application thread, waiting in its queue's drop, go on: this rank ended its program before the others
/// (the divergence report said so); the runtime thread ends the job later if the process is still alive.
pub(super) fn release_ended_rank() {
    ENDED_EARLY.store(true, Ordering::Release);
}

/// Whether [`release_ended_rank`] was called.
pub(super) fn ended_early() -> bool {
    ENDED_EARLY.load(Ordering::Acquire)
}

/// The signal received (0: none), set by the handler, read by the runtime loop.
static SIGNAL: AtomicI32 = AtomicI32::new(0);
/// Whether the runtime loop has seen [`SIGNAL`] (and so is ending every rank).
static SIGNAL_SEEN: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
/// The runtime the `atexit` hook shuts down, while one runs.
static LIVE: Mutex<Option<Live>> = Mutex::new(None);
/// The hook is registered once per process (`atexit` cannot unregister).
static HOOK: Once = Once::new();

const SIGINT: c_int = 2;
const SIGTERM: c_int = 15;
/// `SIG_DFL` as `signal` takes and returns it.
const SIG_DFL: usize = 0;

/// `PR_SET_PDEATHSIG` of `prctl`.
const PR_SET_PDEATHSIG: c_int = 1;

extern "C" {
    fn atexit(hook: extern "C" fn()) -> c_int;
    fn signal(signum: c_int, handler: usize) -> usize;
    fn prctl(option: c_int, arg2: std::os::raw::c_ulong, ...) -> c_int;
    fn getppid() -> c_int;
    fn getuid() -> u32;
    fn _exit(status: c_int) -> !;
    fn write(fd: c_int, buf: *const std::os::raw::c_void, count: usize) -> isize;
    fn raise(signum: c_int) -> c_int;
}

/// The parent process when the runtime started (under `mpirun`: the launcher).
static PARENT: AtomicI32 = AtomicI32::new(0);

/// A running runtime, as the `atexit` hook reaches it.
struct Live {
    queue: Arc<SegQueue<Message>>,
    thread: std::thread::Thread,
    /// Disconnects when the runtime thread has returned (after `MPI_Finalize`).
    gone: mpsc::Receiver<()>,
    /// The signals whose handler this module installed (restored to the default when the runtime ends).
    handled: Vec<c_int>,
}

extern "C" fn on_signal(signum: c_int) {
    // Async-signal-safe: atomics; the runtime loop acts on the signal.
    if SIGNAL.swap(signum, Ordering::Relaxed) != 0 && !SIGNAL_SEEN.load(Ordering::Relaxed) {
        // A second signal, and the runtime loop has not acted on the first: its thread is stuck (in program code it
        // runs, such as a range mapper that never returns, or in a driver call). End the process by the signal's
        // default action, so that Ctrl-C twice (or `timeout`, `mpirun` sending SIGTERM again) always works.
        const MSG: &[u8] = b"celer: a second signal, and the runtime thread did not act on the first (it is stuck, \
            e.g. in a range mapper that never returns); ending this process\n";
        // SAFETY: write, signal and raise are async-signal-safe; MSG is a valid buffer of its length, and restoring
        // the default action before raising the signal ends the process.
        unsafe {
            write(2, MSG.as_ptr().cast(), MSG.len());
            signal(signum, SIG_DFL);
            raise(signum);
        }
    }
}

/// [`THREAD_ROLE`] of a thread that is none of celer's (the application's, or another of the program's).
const APPLICATION: u8 = 0;
/// [`THREAD_ROLE`] of the runtime thread.
const RUNTIME: u8 = 1;
/// [`THREAD_ROLE`] of a host worker.
const HOST_WORKER: u8 = 2;

thread_local! {
    /// Which of celer's threads this is, for the exit hook. Constant-initialized and without a destructor, so the
    /// hook can read it after `exit` destroyed the thread's other thread-locals.
    static THREAD_ROLE: Cell<u8> = const { Cell::new(APPLICATION) };
    /// On a host worker, the id of the host task whose closure runs (`u64::MAX`: none).
    static HOST_TASK: Cell<u64> = const { Cell::new(u64::MAX) };
}

/// Marks the calling thread as the runtime thread.
pub(super) fn mark_runtime_thread() {
    THREAD_ROLE.with(|r| r.set(RUNTIME));
}

/// Marks the calling thread as a host worker.
pub(super) fn mark_host_worker() {
    THREAD_ROLE.with(|r| r.set(HOST_WORKER));
}

/// Notes, on a host worker, the host task whose closure it runs now (`None`: none).
pub(super) fn running_host_task(task: Option<celer_graph::TaskId>) {
    HOST_TASK.with(|t| t.set(task.map_or(u64::MAX, |t| t.0)));
}

extern "C" fn at_exit() {
    match THREAD_ROLE.with(Cell::get) {
        RUNTIME => {
            // The runtime thread cannot wait for its own shutdown.
            crate::logging::fatal(
                "std::process::exit was called on celer's runtime thread, by program code it runs (a custom range \
                 mapper or its reach, a reduce_with combine closure, or the drop of a host object's value): the \
                 runtime cannot shut down from inside itself; ending this rank (a panic there instead ends every \
                 rank, naming the task)",
            );
            end_now()
        }
        HOST_WORKER => {
            let task = celer_graph::TaskId(HOST_TASK.with(Cell::get));
            let live = LIVE.lock().unwrap_or_else(|p| p.into_inner()).take();
            if let Some(live) = live {
                live.queue.push(Message::ExitInHostTask(task));
                live.thread.unpark();
                // The runtime thread ends every rank (MPI_Abort); wait for it, with a bound in case it is stuck.
                let _ = live.gone.recv_timeout(std::time::Duration::from_secs(10));
            } else {
                // The queue is shutting down already (its drop waits for this task): no message reaches the runtime.
                crate::logging::fatal(&format!(
                    "the closure of host task {task} called std::process::exit while the queue shut down; ending \
                     this rank"
                ));
            }
            // The runtime, which waits for this host task, could never shut down.
            end_now()
        }
        _ => {}
    }
    let live = LIVE.lock().unwrap_or_else(|p| p.into_inner()).take();
    let Some(live) = live else { return };
    let (tx, rx) = mpsc::sync_channel(1);
    live.queue.push(Message::Epoch(EpochAction::Shutdown, tx));
    live.thread.unpark();
    // The runtime thread answers once everything before the epoch ran, then finalizes MPI and returns; it ends
    // the process itself on errors and stalls.
    while let Err(mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(std::time::Duration::from_millis(100)) {
        if matches!(live.gone.try_recv(), Err(mpsc::TryRecvError::Disconnected)) {
            break;
        }
    }
    let _ = live.gone.recv();
    restore(&live.handled);
}

/// Puts back the default action of `signals`.
fn restore(signals: &[c_int]) {
    for &s in signals {
        // SAFETY: `signal` with SIG_DFL for a valid signal number only changes the disposition.
        unsafe { signal(s, SIG_DFL) };
    }
}

/// Notes the runtime started on `thread`, which reads `queue` and drops the sender of `gone` when it returns:
/// registers the `atexit` hook (once per process) and installs the signal handlers where the program has none.
pub(super) fn register(queue: Arc<SegQueue<Message>>, thread: std::thread::Thread, gone: mpsc::Receiver<()>) {
    HOOK.call_once(|| {
        // SAFETY: `at_exit` is a plain `extern "C" fn()` that lives as long as the process.
        unsafe { atexit(at_exit) };
    });
    SIGNAL.store(0, Ordering::Relaxed);
    SIGNAL_SEEN.store(false, Ordering::Relaxed);
    if std::env::var_os("OMPI_COMM_WORLD_RANK").is_some() {
        // SAFETY: getppid has no preconditions; prctl(PR_SET_PDEATHSIG, SIGTERM) only asks the kernel to send
        // SIGTERM to this process when its parent ends.
        unsafe {
            PARENT.store(getppid(), Ordering::Relaxed);
            prctl(PR_SET_PDEATHSIG, SIGTERM as std::os::raw::c_ulong);
        }
    }
    let mut handled = Vec::new();
    for s in [SIGINT, SIGTERM] {
        // SAFETY: installs an async-signal-safe handler (an atomic store); a handler the program installed is put
        // back at once, so the program keeps its own.
        let old = unsafe { signal(s, on_signal as extern "C" fn(c_int) as usize) };
        if old == SIG_DFL {
            handled.push(s);
        } else {
            // SAFETY: as above; `old` is the disposition `signal` just returned.
            unsafe { signal(s, old) };
        }
    }
    *LIVE.lock().unwrap_or_else(|p| p.into_inner()) = Some(Live { queue, thread, gone, handled });
}

/// The runtime is shutting down through its handle: the hook has nothing left to do; the signals get their
/// default action back.
pub(super) fn unregister() {
    if let Some(live) = LIVE.lock().unwrap_or_else(|p| p.into_inner()).take() {
        restore(&live.handled);
    }
}

/// Ends this rank at once with status 1, without exit hooks (the runtime thread is stuck: the hook would wait for
/// it); removes its shared-memory segment first. `mpirun` then ends the other ranks.
pub(super) fn end_now() -> ! {
    remove_own_segment();
    // SAFETY: _exit ends the process without running exit hooks.
    unsafe { _exit(1) }
}

/// Whether the launcher that started this rank has ended (the rank was orphaned: `mpirun` was killed).
pub(super) fn launcher_gone() -> bool {
    let parent = PARENT.load(Ordering::Relaxed);
    // SAFETY: getppid has no preconditions.
    parent != 0 && unsafe { getppid() } != parent
}

/// Removes the name of this rank's OpenMPI shared-memory segment (the mapping stays valid for every rank that has
/// it), so that no file is left in `/dev/shm` when the launcher kills the ranks before it cleans up (Ctrl-C twice:
/// SIGKILL shortly after SIGTERM). Only for a rank that is ending.
pub(super) fn remove_own_segment() {
    // OpenMPI's shared-memory transport (vader) names its segment after the host, user, job and local rank.
    let job = std::env::var("OMPI_MCA_ess_base_jobid").ok().and_then(|j| j.parse::<u32>().ok());
    let local = std::env::var("OMPI_COMM_WORLD_LOCAL_RANK").ok();
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").ok();
    if let (Some(job), Some(local), Some(host)) = (job, local, host) {
        // SAFETY: getuid has no preconditions.
        let uid = unsafe { getuid() };
        let _ = std::fs::remove_file(format!("/dev/shm/vader_segment.{}.{uid}.{job:x}.{local}", host.trim()));
    }
}

/// Ends an orphaned rank at once (no MPI call can reach the launcher any more) with `128 + signal`; call
/// [`remove_own_segment`] first.
pub(super) fn exit_orphaned() -> ! {
    // SAFETY: _exit ends the process without running exit hooks (the `atexit` hook would wait for a shutdown
    // that needs the launcher).
    unsafe { _exit(128 + SIGNAL.load(Ordering::Relaxed)) }
}

/// The name of the signal received since the runtime started (SIGINT or SIGTERM), if any.
pub(super) fn signal_received() -> Option<&'static str> {
    let signal = SIGNAL.load(Ordering::Relaxed);
    if signal != 0 {
        SIGNAL_SEEN.store(true, Ordering::Relaxed);
    }
    match signal {
        0 => None,
        SIGINT => Some("SIGINT"),
        SIGTERM => Some("SIGTERM"),
        _ => Some("a signal"),
    }
}
