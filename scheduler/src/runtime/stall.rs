//! Telling a deadlock from a busy application: the ranks' runtime threads vote, with small reductions on a
//! communicator of their own, whether each waits inside the runtime (work pending and no progress for half the
//! stall timeout, or shut down and waiting for the others). A rank whose stall timer runs out reports a stall only
//! if the latest votes found every rank waiting, or the other ranks stopped voting for a whole timeout (a rank
//! gone into `MPI_Finalize` or a blocking call); a rank whose runtime is idle because its application thread
//! computes between submissions keeps the others from aborting.

use std::time::{Duration, Instant};

use celer_exec::mpi::{Communicator, MinReduce, MpiError, SideComm};

/// How often a rank looks at the vote in flight (a loop iteration takes microseconds; `MPI_Test` is not free).
const POLL: Duration = Duration::from_millis(1);

/// The longest time between two votes.
const MAX_INTERVAL: Duration = Duration::from_secs(1);

/// A rank's side of the stall vote (more than one rank).
pub(super) struct StallVote<'c> {
    side: SideComm<'c>,
    /// The vote in flight and when it started.
    vote: Option<(MinReduce, Instant)>,
    /// Time between the start of one vote and the next.
    interval: Duration,
    last_started: Instant,
    last_poll: Instant,
    /// When the last completed vote finished (the other ranks answer).
    last_completed: Instant,
    /// Since when every completed vote found every rank waiting (the start of the first of them).
    all_waiting_since: Option<Instant>,
    /// A vote found every rank shut down: no more votes (every rank saw the same result).
    pub(super) all_done: bool,
    /// The lowest rank whose program had ended (its queue dropped, or `std::process::exit` called) at the latest
    /// completed vote: where the others wait for it, that is why (its program submitted fewer tasks).
    pub(super) ended: Option<u64>,
    /// The lowest and the highest rank that did not wait inside the runtime at the latest completed vote (`None`
    /// where every rank did): where the others wait on and on without a stall report, these ranks' programs have
    /// not come back to celer (they compute, or are stuck outside it), and the others' notices name them.
    pub(super) away: Option<(u64, u64)>,
}

impl<'c> StallVote<'c> {
    /// Creates the vote's communicator (collective: every rank calls it at the same point of its start-up).
    pub(super) fn new(comm: &'c Communicator, stall_timeout: Option<Duration>) -> Result<Self, MpiError> {
        let now = Instant::now();
        Ok(Self {
            side: comm.duplicate()?,
            vote: None,
            interval: stall_timeout.map_or(MAX_INTERVAL, |t| (t / 4).min(MAX_INTERVAL)),
            last_started: now,
            last_poll: now,
            last_completed: now,
            all_waiting_since: None,
            all_done: false,
            ended: None,
            away: None,
        })
    }

    /// Advances the vote: reads a completed one, and starts the next one `interval` after the previous with this
    /// rank's state (`waiting` inside the runtime, `done`: shut down, `ended`: its program has ended, so this rank
    /// submits nothing more).
    pub(super) fn poll(
        &mut self,
        comm: &Communicator,
        now: Instant,
        (waiting, done, ended): (bool, bool, bool),
    ) -> Result<(), MpiError> {
        if now - self.last_poll < POLL || self.all_done {
            return Ok(());
        }
        self.last_poll = now;
        if let Some((reduce, started)) = &mut self.vote {
            let Some(min) = reduce.test(comm)? else { return Ok(()) };
            if min[0] == 1 {
                self.all_waiting_since.get_or_insert(*started);
            } else {
                self.all_waiting_since = None;
            }
            self.all_done = min[1] == 1;
            self.ended = (min[2] != u64::MAX).then_some(min[2]);
            // The highest rank away travels as `u64::MAX - rank`, so that the minimum finds it.
            self.away = (min[3] != u64::MAX).then(|| (min[3], u64::MAX - min[4]));
            self.last_completed = now;
            self.vote = None;
        }
        if self.vote.is_none() && !self.all_done && now - self.last_started >= self.interval {
            self.last_started = now;
            let rank = comm.rank() as u64;
            let ended = if ended { rank } else { u64::MAX };
            let (lowest_away, highest_away) = if waiting { (u64::MAX, u64::MAX) } else { (rank, u64::MAX - rank) };
            let reduce = self.side.iallreduce_min(vec![
                u64::from(waiting),
                u64::from(done),
                ended,
                lowest_away,
                highest_away,
            ])?;
            self.vote = Some((reduce, now));
        }
        Ok(())
    }

    /// This rank's runtime thread did not run until `now` (see `IdleClock::resumed`): the other ranks' silence
    /// meanwhile is no evidence, nor is a vote from before (every rank may have made progress since); the count of
    /// missing votes restarts, and only votes from now on can find every rank waiting.
    pub(super) fn resumed(&mut self, now: Instant) {
        self.last_completed = now;
        self.all_waiting_since = None;
    }

    /// Whether a stall this rank sees (no progress for `limit` with work pending) is one of the whole job: the
    /// votes found every rank waiting inside the runtime, or the other ranks have not answered for `limit`.
    pub(super) fn confirms(&self, now: Instant, limit: Duration) -> bool {
        self.all_waiting_since.is_some() || now - self.last_completed > limit
    }
}
