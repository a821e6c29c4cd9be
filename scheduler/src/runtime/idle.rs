//! The idle strategy: how the runtime thread waits after a loop iteration that made no progress, when it counts as
//! stalled, and how its time splits into busy and idle.

use std::time::{Duration, Instant};

use super::RankStats;

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

/// The longest gap between two loop iterations, as a fraction of the stall timeout, that still counts as the runtime
/// thread having run: an idle loop iterates at least every [`PARK`], so a longer gap means the thread itself did not
/// run (an overloaded or frozen machine: under a load of 14 on 2 cores, every rank's threads stopped for 5 s at once,
/// and the ranks took the wait for a stall of 1 s). Such a gap restarts the stall count ([`IdleClock::resumed`]).
const FROZEN_FRACTION: u32 = 4;

/// When the runtime thread last made progress, and what follows from it: the instants at which its idle strategy
/// changes and at which it counts as stalled. They are computed once per idle stretch, on its first iteration, so
/// a loop spinning while the GPU works compares instants and does no clock arithmetic.
#[derive(Debug)]
pub(super) struct IdleClock {
    since: Instant,
    stall_timeout: Option<Duration>,
    marks: Option<Marks>,
}

/// The instants of an idle stretch (see [`IdleClock`]).
#[derive(Clone, Copy, Debug)]
struct Marks {
    spin_until: Instant,
    yield_until: Instant,
    stalled_after: Option<Instant>,
}

impl IdleClock {
    /// Progress made at `now`; stalled once no progress was made for longer than `stall_timeout`.
    pub(super) fn new(now: Instant, stall_timeout: Option<Duration>) -> Self {
        Self { since: now, stall_timeout, marks: None }
    }

    /// The loop made progress at `now`.
    pub(super) fn progress(&mut self, now: Instant) {
        self.since = now;
        self.marks = None;
    }

    /// The loop's previous iteration ended at `last`, this one at `now`: if the thread did not run for more than a
    /// [`FROZEN_FRACTION`] of the stall timeout in between, the stall count restarts at `now` (time the rank did not
    /// run is no evidence that it waits), and this returns `true`.
    pub(super) fn resumed(&mut self, last: Instant, now: Instant) -> bool {
        let frozen = self.stall_timeout.is_some_and(|limit| now - last > limit / FROZEN_FRACTION);
        if frozen {
            self.progress(now);
        }
        frozen
    }

    /// When the loop last made progress.
    pub(super) fn since(&self) -> Instant {
        self.since
    }

    fn marks(&mut self) -> Marks {
        let (since, stall) = (self.since, self.stall_timeout);
        *self.marks.get_or_insert_with(|| Marks {
            spin_until: since + SPIN,
            yield_until: since + YIELD,
            stalled_after: stall.map(|limit| since + limit),
        })
    }

    /// Whether, at `now`, no progress was made for longer than the stall timeout.
    pub(super) fn stalled(&mut self, now: Instant) -> bool {
        self.marks().stalled_after.is_some_and(|t| now > t)
    }

    /// Waits a little after an iteration at `now` that made no progress: spins while work that completes on its
    /// own is in flight (`completes_soon`: GPU batches, data moving over MPI) and for the first [`SPIN`] after the
    /// last progress, then yields until [`YIELD`], then parks for up to [`PARK`], so a rank waiting for a slow
    /// peer does not burn a core. Returns whether it parked.
    #[inline]
    pub(super) fn wait(&mut self, now: Instant, completes_soon: bool) -> bool {
        match self.backoff(now, completes_soon) {
            Backoff::Spin => std::hint::spin_loop(),
            Backoff::Yield => std::thread::yield_now(),
            Backoff::Park => {
                std::thread::park_timeout(PARK);
                return true;
            }
        }
        false
    }

    /// How [`wait`](Self::wait) waits at `now`.
    #[inline]
    fn backoff(&mut self, now: Instant, completes_soon: bool) -> Backoff {
        if completes_soon {
            return Backoff::Spin;
        }
        let marks = self.marks();
        if now < marks.spin_until {
            Backoff::Spin
        } else if now < marks.yield_until {
            Backoff::Yield
        } else {
            Backoff::Park
        }
    }
}

/// The stages of the idle strategy ([`IdleClock::wait`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Backoff {
    Spin,
    Yield,
    Park,
}

/// A loop's time split into busy and idle: consecutive iterations of one kind form a phase, whose time is counted
/// once it ends, so a loop spinning while the GPU works does no clock arithmetic per iteration. The sums are those
/// of counting each iteration's time (from its start to the next one's) by its kind.
#[derive(Clone, Copy, Debug)]
pub(super) struct Phases {
    since: Instant,
    busy: bool,
}

impl Phases {
    /// An idle phase from `now`.
    pub(super) fn new(now: Instant) -> Self {
        Self { since: now, busy: false }
    }

    /// Counts the iteration that began at `start` as busy or idle; returns the time of the phase it ended, if it
    /// ended one, and whether that phase was busy.
    #[inline]
    pub(super) fn account(&mut self, busy: bool, start: Instant) -> Option<(Duration, bool)> {
        if busy == self.busy {
            return None;
        }
        let ended = (start - self.since, self.busy);
        *self = Self { since: start, busy };
        Some(ended)
    }

    /// The time of the phase still open at `now`, and whether it is busy.
    pub(super) fn open(&self, now: Instant) -> (Duration, bool) {
        (now - self.since, self.busy)
    }
}

/// The rank loop's share of the accounting: its phases and the statistics they add to.
impl super::RankLoop<'_> {
    /// Starts counting the loop's time at `now`, in an idle phase (the runtime thread's loop begins).
    pub(super) fn start_phase(&mut self, now: Instant) {
        self.phase = Phases::new(now);
    }

    /// Counts the loop iteration that began at `start` as busy or idle in `stats` (by phases: [`Phases`]).
    #[inline]
    pub(super) fn account(&mut self, busy: bool, start: Instant) {
        if let Some((time, was_busy)) = self.phase.account(busy, start) {
            *(if was_busy { &mut self.stats.busy } else { &mut self.stats.idle }) += time;
        }
    }

    /// The statistics with the phase still open counted up to `now`.
    pub(super) fn stats_at(&self, now: Instant) -> RankStats {
        let mut stats = self.stats.clone();
        stats.buffers = self.buffers.len() as u64;
        stats.reductions = self.reductions.len() as u64;
        stats.command_records = (self.commands.len()
            + self.in_flight.len()
            + self.done.len()
            + self.gpu_tail.len()
            + self.no_interior.len()
            + self.interiors.len()
            + self.host_done.len()) as u64;
        stats.divergence_windows = self.divergence.as_ref().map_or(0, |d| d.reductions.len() as u64);
        stats.early_headers = self.engine.unmatched_count() as u64;
        stats.early_headers_peak = self.engine.unmatched_peak() as u64;
        stats.messages_sent = self.engine.messages_sent();
        stats.messages_received = self.engine.messages_received();
        stats.staging_buffers = self.gpu.staging_buffers_allocated();
        let (time, busy) = self.phase.open(now);
        *(if busy { &mut stats.busy } else { &mut stats.idle }) += time;
        stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_idle_stretch_stalls_only_after_the_timeout_and_progress_starts_a_new_one() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut clock = IdleClock::new(t0, Some(ms(100)));
        assert!(!clock.stalled(t0 + ms(100)));
        assert!(clock.stalled(t0 + ms(101)));
        clock.progress(t0 + ms(150));
        assert_eq!(clock.since(), t0 + ms(150));
        assert!(!clock.stalled(t0 + ms(200)));
        assert!(!clock.stalled(t0 + ms(250)));
        assert!(clock.stalled(t0 + ms(251)));
        let mut never = IdleClock::new(t0, None);
        assert!(!never.stalled(t0 + Duration::from_secs(3600)));
    }

    #[test]
    fn an_idle_loop_spins_then_yields_then_parks_and_progress_starts_over_with_spinning() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut clock = IdleClock::new(t0, None);
        assert_eq!(clock.backoff(t0 + ms(5), false), Backoff::Spin);
        assert_eq!(clock.backoff(t0 + SPIN, false), Backoff::Yield);
        assert_eq!(clock.backoff(t0 + YIELD - ms(1), false), Backoff::Yield);
        assert_eq!(clock.backoff(t0 + YIELD, false), Backoff::Park);
        assert_eq!(clock.backoff(t0 + ms(5000), false), Backoff::Park, "a rank waiting for a slow peer parks");
        assert_eq!(clock.backoff(t0 + ms(5000), true), Backoff::Spin, "work that completes on its own: spin");
        // Progress (a command completed, or messages arrived) restarts the strategy from spinning.
        clock.progress(t0 + ms(5000));
        assert_eq!(clock.backoff(t0 + ms(5001), false), Backoff::Spin);
        assert_eq!(clock.backoff(t0 + ms(5000) + YIELD, false), Backoff::Park);
    }

    #[test]
    fn a_gap_between_iterations_beyond_a_quarter_of_the_timeout_restarts_the_stall_count() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut clock = IdleClock::new(t0, Some(ms(1000)));
        assert!(!clock.resumed(t0 + ms(700), t0 + ms(950)), "a gap of 250 ms is a quarter: the thread ran");
        assert!(clock.stalled(t0 + ms(1001)));
        assert!(clock.resumed(t0 + ms(1001), t0 + ms(6000)), "5 s without an iteration: the thread did not run");
        assert_eq!(clock.since(), t0 + ms(6000));
        assert!(!clock.stalled(t0 + ms(7000)) && clock.stalled(t0 + ms(7001)));
        let mut never = IdleClock::new(t0, None);
        assert!(!never.resumed(t0, t0 + Duration::from_secs(3600)));
    }

    #[test]
    fn phases_sum_to_the_time_of_each_iteration_counted_by_its_kind() {
        let t0 = Instant::now();
        let at = |us: u64| t0 + Duration::from_micros(us);
        // Iterations: (start, busy); each lasts until the next one starts, the last one until 100 µs.
        let iterations = [(0, false), (3, false), (10, true), (12, true), (20, false), (55, true), (70, false)];
        let (mut busy, mut idle) = (Duration::ZERO, Duration::ZERO);
        let mut phases = Phases::new(at(0));
        for &(start, kind) in &iterations {
            if let Some((d, was_busy)) = phases.account(kind, at(start)) {
                *(if was_busy { &mut busy } else { &mut idle }) += d;
            }
        }
        let (d, open_busy) = phases.open(at(100));
        *(if open_busy { &mut busy } else { &mut idle }) += d;
        assert_eq!(busy, Duration::from_micros((20 - 10) + (70 - 55)));
        assert_eq!(idle, Duration::from_micros(10 + (55 - 20) + (100 - 70)));
    }
}
