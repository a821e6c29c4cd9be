//! The idle strategy: how the runtime thread waits after a loop iteration that made no progress.

use std::time::Duration;

/// Spin this long after the last progress before backing off: a halo exchange or a short host task usually ends
/// within it, even with ranks sharing cores, and spinning answers it without a scheduler round trip. (Backing off
/// after 50 µs made heat on 2 ranks sharing 2 busy cores 4x slower per step: each wait for the peer's halo then
/// ended in a park.) A wait of 10 s spends 1 % of it spinning.
const SPIN: Duration = Duration::from_millis(10);

/// Yield the core from [`SPIN`] until this long after the last progress.
const YIELD: Duration = Duration::from_millis(20);

/// Then park for at most this long per iteration. A message from the application thread or a finished host task
/// wakes the thread at once; data from another rank or a collective is seen at the next wake-up, at most this late.
/// TODO(perf): with 1 ms the parked loop wakes 1000 times per second, about 1 % of a core.
const PARK: Duration = Duration::from_millis(1);

/// Waits a little after an iteration that made no progress, `idle` after the last one that did: spins while work
/// that completes on its own is in flight (`completes_soon`: GPU batches, data moving over MPI) and for the first
/// [`SPIN`], then yields until [`YIELD`], then parks for up to [`PARK`], so a rank waiting for a slow peer does not
/// burn a core.
pub(super) fn wait(idle: Duration, completes_soon: bool) {
    if completes_soon || idle < SPIN {
        std::hint::spin_loop();
    } else if idle < YIELD {
        std::thread::yield_now();
    } else {
        std::thread::park_timeout(PARK);
    }
}
