//! What the application thread sees of the runtime thread while it waits for it: the runtime thread's progress and
//! heartbeat (`Progress`), and the [`Watch`] that ends the rank when that thread is stuck instead of hanging.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

/// How far the runtime thread got, as the application thread's `submit` reads it.
#[derive(Debug)]
pub(super) struct Progress {
    /// Every task below this id has completed ([`RankLoop::progress`](super::RankLoop::progress) of the slowest
    /// device).
    pub(super) tasks: AtomicU64,
    /// The number of messages handled when the loops were last found with nothing queued or in flight
    /// (`u64::MAX` while they are not).
    pub(super) drained_after: AtomicU64,
    /// The number of messages the runtime thread has taken from the queue, for
    /// [`RuntimeHandle::send_bounded`](super::RuntimeHandle::send_bounded).
    pub(super) handled: AtomicU64,
    /// The bytes of fence data answered so far, each fence counted at most at
    /// [`FENCE_DATA_BACKLOG`](super::FENCE_DATA_BACKLOG), for the back-pressure of fences.
    pub(super) fence_bytes: AtomicU64,
    /// The runtime thread's heartbeat: changes with every loop iteration and message, [`Watch::DONE`] once the
    /// loop ended. On a cache line of its own: it is stored often, and read only by a [`Watch`] that waits.
    pub(super) beat: Beat,
}

/// An atomic counter on a cache line of its own.
#[derive(Debug, Default)]
#[repr(align(128))]
pub(super) struct Beat(pub(super) AtomicU64);

/// What the application thread holds to wait for a reply of the runtime thread (an epoch, a fence's data) without
/// hanging when that thread is stuck: in program code it runs (a custom range mapper that never returns, a combine
/// closure), or in a call that does not return. With a stall timeout (`CELER_STALL_TIMEOUT`), a wait during which
/// the runtime thread's loop has not moved for twice that long ends the rank with a message; other ranks are ended
/// by `mpirun`, or by their own stall detection.
#[derive(Debug, Clone)]
pub struct Watch {
    progress: Arc<Progress>,
    limit: Option<Duration>,
    rank: i32,
}

impl Watch {
    /// [`Progress::beat`] once the runtime loop has ended (finalizing, writing traces: no longer watched).
    pub(super) const DONE: u64 = u64::MAX;

    /// A watch on the runtime thread whose `progress` this is, ending rank `rank` after twice `limit` (the stall
    /// timeout) without a heartbeat; never with `None`.
    pub(super) fn new(progress: Arc<Progress>, limit: Option<Duration>, rank: i32) -> Self {
        Self { progress, limit, rank }
    }

    /// Waits for `rx`'s reply like [`mpsc::Receiver::recv`], watching the runtime thread meanwhile.
    ///
    /// # Errors
    /// As `recv`: the sender was dropped without a reply (the runtime stopped first).
    pub fn recv<T>(&self, rx: &mpsc::Receiver<T>) -> Result<T, mpsc::RecvError> {
        let Some(limit) = self.limit else { return rx.recv() };
        // Checked ten times a limit, at least: the rank ends after twice the limit without a heartbeat.
        let mut last = self.start();
        loop {
            match rx.recv_timeout(Duration::from_millis(100).min(limit / 5)) {
                Ok(v) => return Ok(v),
                Err(mpsc::RecvTimeoutError::Disconnected) => return Err(mpsc::RecvError),
                Err(mpsc::RecvTimeoutError::Timeout) => self.check(&mut last),
            }
        }
    }

    /// The heartbeat now, and when it was read: the start of a wait.
    pub(super) fn start(&self) -> Heartbeat {
        let now = Instant::now();
        Heartbeat { beat: self.progress.beat.0.load(Ordering::Relaxed), since: now, checked: now }
    }

    /// During a wait: notes a new heartbeat in `last`, or ends the rank if the last one is older than the limit.
    /// A check that comes a whole limit (at least [`FROZEN_WATCH`]) after the previous one finds this thread itself
    /// not run meanwhile (a frozen or overloaded machine, where all threads of the rank stop alike): the runtime
    /// thread is given the same time again from now rather than blamed for it.
    pub(super) fn check(&self, last: &mut Heartbeat) {
        let (beat, now) = (self.progress.beat.0.load(Ordering::Relaxed), Instant::now());
        let frozen = self.limit.is_some_and(|limit| now - last.checked > limit.max(FROZEN_WATCH));
        last.checked = now;
        if beat != last.beat || beat == Self::DONE || frozen {
            (last.beat, last.since) = (beat, now);
        } else if self.limit.is_some_and(|limit| now - last.since >= 2 * limit) {
            self.stuck(now - last.since)
        }
    }

    /// Ends this rank: its runtime thread has not moved for `waited`.
    fn stuck(&self, waited: Duration) -> ! {
        crate::logging::fatal(&format!(
            "rank {}: celer's runtime thread has not come back for {:.1} s (twice CELER_STALL_TIMEOUT) while the program \
             waits for it: it is stuck in program code it runs (a custom range mapper or its reach that never \
             returns or waits for the application thread, a reduce_with combine closure, the drop of a host \
             object's value) or in a call into the GPU driver or MPI; ending this rank",
            self.rank,
            waited.as_secs_f64()
        ));
        super::exit::end_now()
    }
}

/// What a [`Watch`] saw of the runtime thread's heartbeat during a wait.
#[derive(Clone, Copy, Debug)]
pub(super) struct Heartbeat {
    /// The heartbeat last seen.
    beat: u64,
    /// When it was first seen.
    since: Instant,
    /// When the watch last looked.
    checked: Instant,
}

/// The least gap between two looks of a [`Watch`] that counts as the waiting thread itself not having run: far above
/// the time between two looks (at most 100 ms, or 1024 polls of `wait_until_completed`).
const FROZEN_WATCH: Duration = Duration::from_secs(1);
