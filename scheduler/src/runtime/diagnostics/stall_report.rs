//! The stall report: what a rank waits for when it has made no progress with work pending (the lines, and what of
//! them waits for another rank), the notice given while a busy peer keeps the run going, and the report that ends a
//! stalled job, with its cause where no rank's own state shows it.

use celer_exec::mpi::Communicator;
use celer_graph::{Command, CommandKind};

use super::super::batch::GpuRef;
use super::super::commands::InFlight;
use super::super::RankLoop;
use super::{ENDED_RANK_GRACE, STALL_GRACE};

/// How many queued commands a stall report lists (the rest are counted).
const STALL_REPORT_QUEUED: usize = 8;

/// What a rank waits for, as its stall report tells it: the lines of [`RankLoop::waiting_for`], and what of them
/// waits for another rank, counted from the same state as the lines were written ([`RankLoop::wait_report`]), so
/// that the report's conclusions never depend on its wording (nor on a task's name).
#[derive(Debug, Default)]
pub(in crate::runtime) struct WaitReport {
    /// One line per thing waited for.
    pub(in crate::runtime) lines: Vec<String>,
    /// What of it waits for another rank.
    pub(in crate::runtime) peers: PeerWaits,
}

impl WaitReport {
    /// Adds another device's report of this rank (`CELER_DEVICES`) after this one's.
    pub(in crate::runtime) fn absorb(&mut self, other: WaitReport) {
        self.lines.extend(other.lines);
        self.peers.absorb(other.peers);
    }
}

/// What of a rank's state waits for another rank, or moves data between ranks, counted where the stall report lists
/// it.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(in crate::runtime) struct PeerWaits {
    /// Await-pushes in flight receiving data from other ranks (`InFlight::Receive`).
    pub(in crate::runtime) receives: usize,
    /// Sends not yet received by their target rank.
    pub(in crate::runtime) pending_sends: usize,
    /// Reductions gathering the partial results of every other rank (`InFlight::Gather`).
    pub(in crate::runtime) gathers: usize,
    /// Barrier epochs waiting for every other rank (`InFlight::Barrier`).
    pub(in crate::runtime) barriers: usize,
    /// Host tasks held until the other ranks have submitted their task too (`InFlight::HeldHost`).
    pub(in crate::runtime) held_hosts: usize,
    /// Whether the divergence check's oldest window waits for the other ranks to reach it.
    pub(in crate::runtime) divergence_window: bool,
    /// Await-push commands the report lists (in flight, or among the queued commands it names).
    pub(in crate::runtime) await_pushes: usize,
    /// Data another rank sent which no await-push here expects (yet): it waits for this rank's program.
    pub(in crate::runtime) unexpected_data: usize,
}

impl PeerWaits {
    /// Whether this rank waits for another rank: data it awaits, a send not yet received, a gather, a barrier, a
    /// host task held for the divergence check, or the divergence check's window. Not its own work (GPU work, host
    /// tasks running, data that arrived before its program asked for it, copies by its other devices).
    pub(in crate::runtime) fn awaits_other_ranks(&self) -> bool {
        self.receives + self.pending_sends + self.gathers + self.barriers + self.held_hosts > 0
            || self.divergence_window
    }

    /// Whether the report lists data moving between ranks: an await-push, or data no await-push expects. With no
    /// rank's program ended, the ranks may disagree on which cells move (the report then says so).
    pub(in crate::runtime) fn lists_transfers(&self) -> bool {
        self.await_pushes + self.unexpected_data > 0
    }

    fn absorb(&mut self, other: PeerWaits) {
        self.receives += other.receives;
        self.pending_sends += other.pending_sends;
        self.gathers += other.gathers;
        self.barriers += other.barriers;
        self.held_hosts += other.held_hosts;
        self.divergence_window |= other.divergence_window;
        self.await_pushes += other.await_pushes;
        self.unexpected_data += other.unexpected_data;
    }
}

impl RankLoop<'_> {
    /// What this rank waits for, one line each: commands in flight (await-pushes with their transfer and expected
    /// senders, GPU work, host tasks, gathers, barriers), sends not yet delivered, data that arrived unasked, and
    /// the queued commands with the dependencies they wait for. For stall reports; costs what formatting costs.
    pub fn waiting_for(&self) -> Vec<String> {
        self.wait_report().lines
    }

    /// [`waiting_for`](Self::waiting_for)'s lines, with what of them waits for another rank counted from the
    /// state each line is written from ([`PeerWaits`]).
    pub(in crate::runtime) fn wait_report(&self) -> WaitReport {
        let now = std::time::Instant::now();
        let mut lines = Vec::new();
        let mut peers = PeerWaits::default();
        let is_await_push = |c: &Command| matches!(c.kind, CommandKind::AwaitPush { .. });
        for (id, flight) in &self.in_flight {
            let what = self.command_ident(*id);
            if self.cdag.command(*id).is_some_and(is_await_push) {
                peers.await_pushes += 1;
            }
            lines.push(match flight {
                InFlight::Receive { buffer, region, since, .. } => {
                    peers.receives += 1;
                    let transfer = self.cdag.command(*id).map_or(String::new(), |c| match &c.kind {
                        CommandKind::AwaitPush { transfer, .. } => format!(" (transfer {transfer})"),
                        _ => String::new(),
                    });
                    let task = self.cdag.command(*id).map(|c| c.task);
                    let senders = task.map(|t| self.expected_senders(t, *buffer, region)).unwrap_or_default();
                    let from = if senders.is_empty() {
                        "expected from another rank (its producer is no longer in memory here)".to_string()
                    } else {
                        let names: Vec<String> = senders.iter().map(|n| n.0.to_string()).collect();
                        let s = if senders.len() == 1 { "" } else { "s" };
                        format!("expected from rank{s} {}", names.join(", "))
                    };
                    format!(
                        "{what}: awaits {} {region}{transfer} {from}, for {:.1} s",
                        self.buffer_ident(*buffer),
                        (now - *since).as_secs_f64()
                    )
                }
                InFlight::Gpu(batch, after) => {
                    let stage = match after.download() {
                        Some(download) => format!("the GPU {download}"),
                        None => {
                            let kernel = self.kernel_of(*id).map_or("kernel or copy".into(), |k| format!("kernel {k}"));
                            format!("GPU work ({kernel})")
                        }
                    };
                    let submitted = if *batch == GpuRef::Open { ", not yet submitted" } else { "" };
                    format!("{what}: waits for {stage}{submitted}")
                }
                InFlight::Host(_, since) => match self.host.running_since(*id) {
                    Some((worker, start)) => format!(
                        "{what}: host task running for {:.1} s (on host worker {worker})",
                        now.saturating_duration_since(start).as_secs_f64()
                    ),
                    None => format!(
                        "{what}: host task queued for {:.1} s, not yet started: the {} host worker(s) \
                         (CELER_HOST_THREADS) are busy with other host tasks",
                        (now - *since).as_secs_f64(),
                        self.host.workers()
                    ),
                },
                InFlight::HeldHost(_, since) => {
                    peers.held_hosts += 1;
                    format!(
                        "{what}: host task held for {:.1} s until the divergence check has compared its task on every \
                         rank (the other ranks have not all submitted it)",
                        (now - *since).as_secs_f64()
                    )
                }
                InFlight::Gather { reduction, .. } => {
                    peers.gathers += 1;
                    format!("{what}: awaits the partial results of reduction {reduction} from every other rank")
                }
                InFlight::Barrier { task, .. } => {
                    peers.barriers += 1;
                    format!("{what}: barrier epoch {task} waits for every other rank")
                }
                InFlight::Retired => format!("{what}: finished"),
                InFlight::PeerSent { acks } => {
                    format!("{what}: waits for {} GPU copies by other devices of this rank to complete", acks.len())
                }
            });
        }
        for (key, target) in self.engine.pending_sends() {
            peers.pending_sends += 1;
            lines.push(format!("a send of transfer T{}.B{} to rank {target} is not yet received", key.0, key.1));
        }
        for (key, sender, bounds) in self.engine.unmatched_headers() {
            peers.unexpected_data += 1;
            lines.push(format!(
                "rank {sender} sent {bounds:?} of transfer T{}.B{} which no await-push here expects (yet)",
                key.0, key.1
            ));
        }
        for c in self.commands.iter().take(STALL_REPORT_QUEUED) {
            if is_await_push(c) {
                peers.await_pushes += 1;
            }
            let blockers: Vec<String> = c
                .dependencies
                .iter()
                .filter(|d| !self.dep_done(d))
                .map(|d| {
                    let state =
                        if self.in_flight.iter().any(|(id, _)| *id == d.command) { "running" } else { "queued" };
                    format!("{} ({state})", d.command)
                })
                .collect();
            lines.push(if blockers.is_empty() {
                format!("{} is queued and ready to start", self.command_ident(c.id))
            } else {
                format!("{} is queued behind {}", self.command_ident(c.id), blockers.join(", "))
            });
        }
        if let Some(w) = self.divergence.as_ref().and_then(|d| d.stream.oldest()) {
            peers.divergence_window = true;
            let checkpoint = w.tasks.last().map_or(String::new(), |t| format!(" (up to {})", t.id));
            lines.push(format!(
                "the divergence check of task window {}{checkpoint} waits for the other ranks to reach it",
                w.ordinal
            ));
        }
        if self.commands.len() > STALL_REPORT_QUEUED {
            lines.push(format!("... and {} more queued commands", self.commands.len() - STALL_REPORT_QUEUED));
        }
        WaitReport { lines, peers }
    }
}

/// Ends the job after a stall: prints how long this rank made no progress and what it waits for, waits
/// `STALL_GRACE` so the other ranks print theirs, and aborts.
/// `unchecked`: the run has `CELER_CHECK_DIVERGENCE=off`, which the report then names as a possible cause.
pub(in crate::runtime) fn abort_stalled(
    comm: &Communicator,
    idle: std::time::Duration,
    report: &WaitReport,
    ended: Option<u64>,
    unchecked: bool,
) -> ! {
    let ended = ended.map(|r| (r, r == comm.rank() as u64));
    crate::logging::fatal(&stall_message(idle, report, ended, unchecked));
    match ended {
        Some((_, true)) => {
            // This rank's application thread waits in its queue's drop (or the exit hook): let it go on, so that
            // what the program does next (`main` printing its error) is seen; end the job if it is still alive then.
            super::super::exit::release_ended_rank();
            std::thread::sleep(ENDED_RANK_GRACE);
        }
        // Give the rank that ended the time to print its own error before MPI_Abort ends it.
        Some((_, false)) => std::thread::sleep(2 * STALL_GRACE),
        None => std::thread::sleep(STALL_GRACE),
    }
    comm.abort(1)
}

/// While this rank has made no progress with work pending for longer than the stall timeout but the vote keeps the
/// run going (a rank's application thread has not come back to celer: it computes, or it is stuck there), a
/// notice of what this rank waits for, given first after [`LONG_WAIT_STALLS`] stall timeouts and then each time the
/// wait has doubled: a rank that never submits again keeps the others waiting for ever, and they say so.
#[derive(Debug)]
pub(in crate::runtime) struct LongWait {
    /// The wait (time without progress) at which the next notice is due.
    next: std::time::Duration,
    first: std::time::Duration,
}

/// How many stall timeouts a rank waits for a busy peer before [`LongWait`]'s first notice.
const LONG_WAIT_STALLS: u32 = 4;

impl LongWait {
    pub(in crate::runtime) fn new(stall_timeout: std::time::Duration) -> Self {
        let first = stall_timeout * LONG_WAIT_STALLS;
        Self { next: first, first }
    }

    /// Whether a notice is due for a wait of `idle` (and if so, the next one is due when the wait has doubled).
    pub(in crate::runtime) fn due(&mut self, idle: std::time::Duration) -> bool {
        if idle < self.next {
            return false;
        }
        self.next = idle * 2;
        true
    }

    /// Progress was made: the next wait starts afresh.
    pub(in crate::runtime) fn reset(&mut self) {
        self.next = self.first;
    }
}

/// [`LongWait`]'s notice: how long this rank has waited and for what, one line each. `away` is the lowest and the
/// highest rank that did not wait inside celer at the latest stall vote (`StallVote::away`): those ranks' programs
/// keep the run going, and the notice names them (every rank's notice, theirs too).
pub(in crate::runtime) fn long_wait_message(
    rank: i32,
    idle: std::time::Duration,
    away: Option<(u64, u64)>,
    lines: &[String],
) -> String {
    let (who, verb) = away_ranks(rank, away);
    let mut msg = format!(
        "rank {rank}: no progress for {:.0} s with work pending, but the run goes on: {who} {verb} not come back to \
         celer since (it computes between submissions, or it is stuck there: a deadlock, a wait for input, a rank \
         that never submits again), and a run is ended as stalled only when every rank waits inside celer. This rank \
         waits for:",
        idle.as_secs_f64()
    );
    for l in lines {
        msg.push_str("\n    ");
        msg.push_str(l);
    }
    msg
}

/// Who is away from celer (`StallVote::away`, seen from `rank`), and the verb that goes with it.
fn away_ranks(rank: i32, away: Option<(u64, u64)>) -> (String, &'static str) {
    let who = match away {
        Some((lo, hi)) if lo == hi && lo == rank as u64 => format!("the program of rank {lo} (this one)"),
        Some((lo, hi)) if lo == hi => format!("the program of rank {lo}"),
        Some((lo, hi)) => format!("the programs of ranks {lo} to {hi} (the lowest and highest of them)"),
        None => "the program of a rank (this one or another)".to_string(),
    };
    let verb = if matches!(away, Some((lo, hi)) if lo != hi) { "have" } else { "has" };
    (who, verb)
}

/// Ends the job (`CELER_AWAY_TIMEOUT`): this rank has waited `idle` with work pending and no progress, at least
/// `limit`, while the stall vote found the ranks `away` (lowest, highest) outside celer. Prints
/// [`away_message`], waits [`STALL_GRACE`] so that the other waiting ranks print theirs, and aborts every rank.
pub(in crate::runtime) fn abort_away(
    comm: &Communicator,
    idle: std::time::Duration,
    away: (u64, u64),
    limit: std::time::Duration,
    report: &WaitReport,
) -> ! {
    crate::logging::fatal(&away_message(comm.rank(), idle, away, limit, &report.lines));
    std::thread::sleep(STALL_GRACE);
    comm.abort(1)
}

/// [`abort_away`]'s report: who is away, for how long, the setting, and what this rank waits for, one line each.
fn away_message(
    rank: i32,
    idle: std::time::Duration,
    away: (u64, u64),
    limit: std::time::Duration,
    lines: &[String],
) -> String {
    let (who, verb) = away_ranks(rank, Some(away));
    let mut msg = format!(
        "stalled: {who} {verb} not come back to celer while rank {rank} waited {:.1} s with work pending \
         (CELER_AWAY_TIMEOUT = {} s): it is stuck outside celer (a deadlock, a wait for input, a rank that never \
         submits again) or computes longer than that (raise CELER_AWAY_TIMEOUT, or set it to off); ending every \
         rank. Rank {rank} waits for:",
        idle.as_secs_f64(),
        limit.as_secs_f64()
    );
    for l in lines {
        msg.push_str("\n    ");
        msg.push_str(l);
    }
    msg
}

/// The stall report of [`abort_stalled`]: what this rank waits for, one line each, and where it awaits data from
/// other ranks, the cause no rank's own state shows: the lowest rank whose program had ended (`ended`: that rank,
/// and whether it is this one) as the stall vote found it, else disagreeing range mappers, or with the divergence
/// check off (`unchecked`) ranks that submitted different tasks. Which applies follows from `report.peers`, never
/// from the lines' text.
fn stall_message(
    idle: std::time::Duration,
    report: &WaitReport,
    ended: Option<(u64, bool)>,
    unchecked: bool,
) -> String {
    let WaitReport { lines, peers } = report;
    let mut msg = format!(
        "stalled: no progress for {:.1} s with work pending (CELER_STALL_TIMEOUT; raise it or set it to off if a \
         kernel, host task or another rank's application thread legitimately takes this long). This rank waits for:",
        idle.as_secs_f64()
    );
    for l in lines {
        msg.push_str("\n    ");
        msg.push_str(l);
    }
    match ended {
        Some((_, true)) => msg.push_str(
            "\n    This rank's program has ended (it dropped its Queue: main returned, with an error or not; or it \
             called std::process::exit) while other ranks still wait inside celer: their programs submitted more \
             tasks than this one did, and every rank must submit the same ones (CELER_CHECK_DIVERGENCE=on, the \
             default, names the first task that differs). This rank's own error, if its program reports one, \
             follows.",
        ),
        Some((rank, false)) if peers.awaits_other_ranks() => msg.push_str(&format!(
            "\n    Rank {rank} has ended its program (it dropped its Queue, or called std::process::exit) while this \
             rank waits: its program submitted fewer tasks than this one, and every rank must submit the same ones \
             (CELER_CHECK_DIVERGENCE=on, the default, names the first task that differs); its own output says why \
             it ended."
        )),
        // This rank waits for its own work only (a host task or a kernel that does not finish): a rank that has
        // finished its program, having submitted what this one did, is no cause.
        Some((rank, false)) => msg.push_str(&format!(
            "\n    (rank {rank} has ended its program meanwhile; this rank awaits nothing from another rank, so what \
             holds it is its own work listed above)"
        )),
        None => {}
    }
    if ended.is_none() && peers.lists_transfers() {
        msg.push_str(
            "\n    (where the rank named lists no push of those cells in its own report, the ranks disagree on which \
             cells move: a custom range mapper must be a pure function of the chunk and the buffer's extent, not of \
             the rank",
        );
        if unchecked {
            msg.push_str(super::super::error::UNCHECKED_HINT);
        }
        msg.push(')');
    }
    msg
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_long_wait_for_a_busy_rank_is_noticed_after_four_timeouts_then_at_each_doubling() {
        let mut w = LongWait::new(Duration::from_secs(2));
        assert!(!w.due(Duration::from_secs(7)));
        assert!(w.due(Duration::from_secs(8)), "four stall timeouts");
        assert!(!w.due(Duration::from_secs(9)) && !w.due(Duration::from_secs(15)));
        assert!(w.due(Duration::from_secs(16)), "the wait doubled");
        w.reset();
        assert!(w.due(Duration::from_secs(8)), "after progress, four timeouts again");
        let msg = long_wait_message(
            0,
            Duration::from_secs(16),
            None,
            &["C2 await-push of task T2: awaits buffer B0 \"a\" {[32] - [64]} expected from rank 1".into()],
        );
        assert!(msg.starts_with("rank 0: no progress for 16 s with work pending, but the run goes on"), "{msg}");
        assert!(msg.contains("a rank that never submits again") && msg.contains("\n    C2 await-push"), "{msg}");
        assert!(!msg.contains("stalled:"), "not the stall report: {msg}");
    }

    #[test]
    fn a_long_wait_names_the_ranks_whose_programs_are_away_from_celer() {
        let lines = ["C3 await-push of task T2: awaits buffer B0 \"a\" {[32] - [64]} expected from rank 1".to_string()];
        let msg = long_wait_message(0, Duration::from_secs(12), Some((1, 1)), &lines);
        assert!(msg.contains("but the run goes on: the program of rank 1 has not come back to celer since"), "{msg}");
        assert!(!msg.contains("this one or another"), "{msg}");
        let msg = long_wait_message(1, Duration::from_secs(12), Some((1, 1)), &lines);
        assert!(msg.contains("the program of rank 1 (this one) has not come back"), "{msg}");
        let msg = long_wait_message(0, Duration::from_secs(12), Some((2, 4)), &lines);
        assert!(
            msg.contains("the programs of ranks 2 to 4 (the lowest and highest of them) have not come back"),
            "{msg}"
        );
    }

    #[test]
    fn the_away_timeout_report_names_the_away_ranks_the_wait_the_setting_and_what_this_rank_waits_for() {
        let lines = ["C3 await-push of task T2: awaits buffer B0 \"a\" {[32] - [64]} expected from rank 1".to_string()];
        let msg = away_message(0, Duration::from_millis(10_400), (1, 1), Duration::from_secs(10), &lines);
        assert!(
            msg.starts_with(
                "stalled: the program of rank 1 has not come back to celer while rank 0 waited 10.4 s with work \
                 pending (CELER_AWAY_TIMEOUT = 10 s)"
            ),
            "{msg}"
        );
        assert!(msg.contains("ending every rank. Rank 0 waits for:\n    C3 await-push of task T2"), "{msg}");
        let msg = away_message(2, Duration::from_secs(5), (1, 3), Duration::from_millis(4500), &lines);
        assert!(msg.contains("the programs of ranks 1 to 3 (the lowest and highest of them) have not come back"));
        assert!(msg.contains("(CELER_AWAY_TIMEOUT = 4.5 s)"), "{msg}");
    }

    /// A report of `lines` whose facts are `peers`.
    fn report(lines: &[&str], peers: PeerWaits) -> WaitReport {
        WaitReport { lines: lines.iter().map(|l| l.to_string()).collect(), peers }
    }

    /// The facts of one await-push receiving from another rank.
    fn receiving() -> PeerWaits {
        PeerWaits { receives: 1, await_pushes: 1, ..PeerWaits::default() }
    }

    const AWAITS: &str = "C4 await-push of task T3: awaits buffer B1 \"dst\" {[32] - [64]} expected from rank 1";

    #[test]
    fn a_stall_awaiting_data_names_disagreeing_range_mappers_as_a_cause() {
        let msg = stall_message(Duration::from_secs(30), &report(&[AWAITS], receiving()), None, false);
        assert!(msg.contains("no progress for 30.0 s") && msg.contains("expected from rank 1"), "{msg}");
        assert!(msg.contains("custom range mapper must be a pure function"), "{msg}");
        let own = report(&["C1 execution of task T1 \"sleeper\": host task running for 30.0 s"], PeerWaits::default());
        let msg = stall_message(Duration::from_secs(30), &own, None, false);
        assert!(!msg.contains("range mapper"), "{msg}");
    }

    #[test]
    fn a_stall_with_data_no_await_push_expects_names_disagreeing_ranks_as_a_cause() {
        // A rank whose peer skipped a barrier (CELER_CHECK_DIVERGENCE=off) waits in its barrier, holding data it has
        // no await-push for: the ranks disagree on which cells move.
        let lines = [
            "C22 epoch of task T10: barrier epoch T10 waits for every other rank",
            "rank 1 sent [128] - [129] of transfer T10.B1 which no await-push here expects (yet)",
        ];
        let peers = PeerWaits { barriers: 1, unexpected_data: 1, ..PeerWaits::default() };
        let msg = stall_message(Duration::from_secs(2), &report(&lines, peers), None, true);
        assert!(msg.contains("the ranks disagree on which cells move"), "{msg}");
        assert!(msg.contains("CELER_CHECK_DIVERGENCE is off in this run"), "{msg}");
        let barrier_only = PeerWaits { barriers: 1, ..PeerWaits::default() };
        let msg = stall_message(Duration::from_secs(2), &report(&lines[..1], barrier_only), None, true);
        assert!(!msg.contains("cells move"), "{msg}");
    }

    #[test]
    fn a_stall_awaiting_data_without_the_divergence_check_names_diverged_programs_as_a_cause() {
        let awaits = report(&[AWAITS], receiving());
        let msg = stall_message(Duration::from_secs(30), &awaits, None, true);
        assert!(msg.contains("custom range mapper must be a pure function"), "{msg}");
        assert!(msg.contains("CELER_CHECK_DIVERGENCE is off in this run") && msg.ends_with("differs)"), "{msg}");
        let checked = stall_message(Duration::from_secs(30), &awaits, None, false);
        assert!(!checked.contains("CELER_CHECK_DIVERGENCE") && checked.ends_with("not of the rank)"), "{checked}");
    }

    #[test]
    fn a_stall_names_the_rank_whose_program_ended_instead_of_range_mappers() {
        let awaits = report(&[AWAITS], receiving());
        let msg = stall_message(Duration::from_secs(30), &awaits, Some((1, false)), false);
        assert!(msg.contains("Rank 1 has ended its program") && msg.contains("CELER_CHECK_DIVERGENCE"), "{msg}");
        assert!(!msg.contains("range mapper"), "{msg}");
        let msg = stall_message(Duration::from_secs(30), &awaits, Some((1, true)), false);
        assert!(msg.contains("This rank's program has ended") && !msg.contains("Rank 1"), "{msg}");
    }

    #[test]
    fn a_stall_on_this_ranks_own_host_task_does_not_blame_a_rank_that_finished_its_program() {
        // Rank 0's host task blocks for ever; rank 1, which submitted the same tasks, has nothing to run and
        // returned from main. The report named rank 1 as having "submitted fewer tasks" (it had not).
        let lines = [
            "C1 execution of task T1 \"waits_for_main\": host task running for 2.0 s",
            "C2 epoch of task T2 is queued behind C1 (running)",
        ];
        let msg = stall_message(Duration::from_secs(2), &report(&lines, PeerWaits::default()), Some((1, false)), false);
        assert!(!msg.contains("fewer tasks"), "{msg}");
        assert!(msg.contains("rank 1 has ended its program meanwhile") && msg.contains("its own work"), "{msg}");
        // Each way of waiting for another rank, alone, makes the ended rank the cause.
        let none = PeerWaits::default();
        for peers in [
            receiving(),
            PeerWaits { pending_sends: 1, ..none },
            PeerWaits { gathers: 1, ..none },
            PeerWaits { barriers: 1, ..none },
            PeerWaits { held_hosts: 1, ..none },
            PeerWaits { divergence_window: true, ..none },
        ] {
            let msg = stall_message(Duration::from_secs(2), &report(&lines, peers), Some((1, false)), false);
            assert!(msg.contains("submitted fewer tasks"), "{peers:?}: {msg}");
        }
        // A queued await-push has not asked another rank for anything yet: still this rank's own work.
        let queued = PeerWaits { await_pushes: 1, ..none };
        let msg = stall_message(Duration::from_secs(2), &report(&lines, queued), Some((1, false)), false);
        assert!(!msg.contains("fewer tasks"), "{msg}");
    }

    #[test]
    fn a_task_named_like_a_wait_for_other_ranks_does_not_make_its_host_task_one() {
        // The report decided from its own text whether this rank awaited another one: a host task whose name reads
        // like such a line blamed the rank that had ended its program.
        let line =
            "C1 execution of task T1 \"waits for every other rank to reach it expected from rank 1\": host task \
                    running for 2.0 s";
        let own = report(&[line], PeerWaits::default());
        let msg = stall_message(Duration::from_secs(2), &own, Some((1, false)), false);
        assert!(!msg.contains("fewer tasks") && msg.contains("its own work"), "{msg}");
        let msg = stall_message(
            Duration::from_secs(2),
            &report(&["C5 await-push of T9 is named so"], PeerWaits::default()),
            None,
            false,
        );
        assert!(!msg.contains("range mapper"), "no await-push is listed: {msg}");
    }

    #[test]
    fn a_rank_of_several_devices_awaits_another_rank_when_any_of_its_devices_does() {
        let mut rank = report(&["C1 execution of task T1: host task running for 2.0 s"], PeerWaits::default());
        rank.absorb(report(&[AWAITS], receiving()));
        assert_eq!(rank.lines.len(), 2);
        assert!(rank.peers.awaits_other_ranks() && rank.peers.await_pushes == 1, "{:?}", rank.peers);
        let msg = stall_message(Duration::from_secs(2), &rank, Some((1, false)), false);
        assert!(msg.contains("submitted fewer tasks"), "{msg}");
    }
}
