//! Ending the process cleanly: an `atexit` hook that shuts a live runtime down (running the shutdown epoch and
//! `MPI_Finalize`) when the program calls `std::process::exit` while a queue is alive, and SIGINT/SIGTERM handlers
//! (installed while a runtime runs, where the program has none) that make the runtime thread end every rank with
//! `MPI_Abort`, which lets OpenMPI remove its shared-memory segments, instead of dying in the middle of an MPI call.
//! A rank whose launcher died (`mpirun` killed, or Ctrl-C twice) gets SIGTERM from the kernel (`PR_SET_PDEATHSIG`),
//! and exits; a rank that ends on a signal removes its own shared-memory segment first (the launcher may kill it
//! before it cleans up).

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
    // Async-signal-safe: one atomic store; the runtime loop acts on it.
    SIGNAL.store(signum, Ordering::Relaxed);
}

extern "C" fn at_exit() {
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
    match SIGNAL.load(Ordering::Relaxed) {
        0 => None,
        SIGINT => Some("SIGINT"),
        SIGTERM => Some("SIGTERM"),
        _ => Some("a signal"),
    }
}
