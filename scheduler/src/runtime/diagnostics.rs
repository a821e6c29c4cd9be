//! Diagnostics: statistics, the trace's GPU spans, the divergence check, stall and device-loss reports, graph dumps.

use std::collections::VecDeque;

use celer_exec::gpu::OpKind;
use celer_exec::mpi::Communicator;
use celer_graph::{BufferId, Command, CommandId, CommandKind, DependencyKind, NodeId, Region, TaskId};

use super::batch::GpuRef;
use super::commands::InFlight;
use super::error::RuntimeError;
use super::kernel::KernelPayload;
use super::RankLoop;
use crate::divergence::{read_check, StreamHash};

mod divergence_report;

/// What one rank's runtime did so far: work done, bytes moved, and how its loop spent its time.
#[derive(Debug, Clone, Default)]
pub struct RankStats {
    /// This rank.
    pub rank: usize,
    /// Tasks recorded (user tasks, horizons, epochs).
    pub tasks: u64,
    /// Commands run.
    pub commands: u64,
    /// Kernel dispatches.
    pub kernels: u64,
    /// GPU batches submitted for kernels (each holds the kernels started in one loop step).
    pub kernel_batches: u64,
    /// Host tasks run.
    pub host_tasks: u64,
    /// Kernels whose interior ran before the data they awaited from other ranks arrived (`CELER_OVERLAP`); the
    /// rest of their chunk ran later, so they count two or more dispatches in `kernels`.
    pub early_interiors: u64,
    /// Times a buffer's device allocation grew (beyond its first) to cover what a command needed.
    pub growths: u64,
    /// Bytes of device memory this rank's buffers hold now (each buffer's allocation covers what this rank's
    /// commands touched, not the whole buffer).
    pub device_bytes: u64,
    /// Buffers whose state (and creation data) this rank's runtime holds now: the live ones, and dropped ones
    /// until every command of this rank generated before the drop has completed (at once when nothing is queued
    /// or in flight).
    pub buffers: u64,
    /// Reductions whose operator and element type this rank's runtime holds now: each buffer's latest, and
    /// earlier ones until the horizon or epoch after the task that superseded them is reached.
    pub reductions: u64,
    /// Entries of this rank's per-command tables now: commands queued or in flight, and what the loop notes about
    /// them (completed out of order, waiting only for the GPU, found not to split, with an interior running, host
    /// tasks finished). Bounded by what is queued, however long the program runs; few after a `wait`.
    pub command_records: u64,
    /// Windows of the divergence check (`CELER_CHECK_DIVERGENCE`; with it off, the windows that only pace the
    /// ranks) awaiting the other ranks now: at most about `DIVERGENCE_WINDOWS` plus `CELER_SUBMIT_AHEAD`, however
    /// far ahead of the others this rank's program is.
    pub divergence_windows: u64,
    /// Data that arrived from other ranks before this rank's await-push for it (a header, with the payload if it
    /// is small; counted per box, so a header message carrying a group of small boxes counts each) and waits for it
    /// now: how far the senders' programs are ahead of this one's, which the pacing of
    /// `DIVERGENCE_WINDOWS` bounds (on or off).
    pub early_headers: u64,
    /// The most of `early_headers` at once so far (with several devices, the sum of each device's most).
    pub early_headers_peak: u64,
    /// Host-visible staging buffers the GPU layer allocated over the rank's life (for uploads, downloads and the
    /// data MPI sends and receives): a steady state reuses them, and one transfer takes one buffer however many boxes
    /// its region has (a custom mapper's scattered cells), so this stays small.
    pub staging_buffers: u64,
    /// Bytes of buffer data sent to other ranks.
    pub bytes_sent: u64,
    /// MPI messages the transfer engine sent (headers, which carry small payloads and the box lists of a region's
    /// small boxes, and payload messages): a push of a region of many tiny boxes takes a few, not one per box.
    pub messages_sent: u64,
    /// Bytes of buffer data received from other ranks.
    pub bytes_received: u64,
    /// Boxes received from another device of this rank by a copy on the GPU (`CELER_PEER_COPIES`), not through
    /// host memory and MPI; their bytes count in `bytes_received` (and the sender's `bytes_sent`) too.
    pub peer_copies: u64,
    /// Time from submitting each kernel batch to seeing it complete, summed (GPU time plus queueing; batches in
    /// flight together overlap, so this can exceed wall time).
    pub kernel_time: std::time::Duration,
    /// Time from posting each await-push to the data's arrival, summed (waiting for other ranks).
    pub receive_time: std::time::Duration,
    /// Time the loop spent in steps that made progress (scheduling, submitting, copying).
    pub busy: std::time::Duration,
    /// Time the loop spent polling with nothing to do but wait for the GPU, the network or the host workers.
    pub idle: std::time::Duration,
    /// Steps of this loop so far (each polls completions, retires, starts and submits; most find nothing to do
    /// while the loop waits).
    pub loop_steps: u64,
    /// CPU time the runtime thread has used so far (`CLOCK_THREAD_CPUTIME_ID`; the loops of one rank's devices share
    /// the thread): with `tasks`, the runtime's CPU cost per task, which other processes on the machine do not
    /// inflate the way they do wall time.
    pub runtime_cpu: std::time::Duration,
}

/// The CPU time the calling thread has used (zero where the clock cannot be read).
pub(super) fn thread_cpu_time() -> std::time::Duration {
    let mut t = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `t` is a valid, writable timespec; the call writes only it.
    if unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) } != 0 {
        return std::time::Duration::ZERO;
    }
    std::time::Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

/// Logs each device loop's shutdown summary (info) and its scheduler-bound warning, if any. With several devices,
/// each loop's statistics are one device's (its `rank` field its node): the lines say which.
pub(super) fn log_summaries(all_stats: &[RankStats]) {
    let devices = all_stats.len();
    for (k, stats) in all_stats.iter().enumerate() {
        let device = (devices > 1).then(|| format!("device {k} of this rank (node N{})", stats.rank));
        log::info!("{}", device.as_deref().map_or_else(|| stats.summary(), |d| stats.summary_of(d)));
        if let Some(w) = scheduler_bound_warning(stats) {
            match &device {
                Some(d) => log::warn!("{d}: {w}"),
                None => log::warn!("{w}"),
            }
        }
    }
}

/// The warning for a rank whose loop was busier than its GPU: scheduler-bound (tasks too small for the runtime's
/// per-task cost), if the statistics of a long enough run say so: at least 1000 kernels, the loop busy more than
/// half the time, kernels in flight less than half, and under 200 µs of loop time per kernel.
pub fn scheduler_bound_warning(stats: &RankStats) -> Option<String> {
    let wall = (stats.busy + stats.idle).as_secs_f64();
    let (busy, gpu) = (stats.busy.as_secs_f64(), stats.kernel_time.as_secs_f64());
    // Loop time per kernel beyond a fraction of a millisecond is not scheduling but something blocking (buffer
    // creation, host-side copies): no verdict then.
    let per_kernel = busy / stats.kernels.max(1) as f64;
    (stats.kernels >= 1000 && wall > 0.0 && busy > 0.5 * wall && gpu < 0.5 * wall && per_kernel < 200e-6).then(|| {
        format!(
            "scheduler-bound: the runtime loop was busy {:.0}% of the time while kernels were in flight {:.0}% \
             ({} kernels, {:.1} µs of loop time each): the GPU waited for the scheduler; fewer, larger tasks help",
            100.0 * busy / wall,
            100.0 * gpu / wall,
            stats.kernels,
            1e6 * busy / stats.kernels as f64
        )
    })
}

impl RankStats {
    /// Adds `other`'s counts and times to these (the loops of one rank's devices, `CELER_DEVICES`).
    pub fn absorb(&mut self, other: &RankStats) {
        self.tasks = self.tasks.max(other.tasks);
        self.commands += other.commands;
        self.kernels += other.kernels;
        self.kernel_batches += other.kernel_batches;
        self.host_tasks += other.host_tasks;
        self.early_interiors += other.early_interiors;
        self.growths += other.growths;
        self.device_bytes += other.device_bytes;
        // Every device's loop holds every buffer.
        self.buffers = self.buffers.max(other.buffers);
        self.reductions = self.reductions.max(other.reductions);
        self.command_records += other.command_records;
        self.divergence_windows = self.divergence_windows.max(other.divergence_windows);
        self.early_headers += other.early_headers;
        self.early_headers_peak += other.early_headers_peak;
        self.staging_buffers += other.staging_buffers;
        self.bytes_sent += other.bytes_sent;
        self.messages_sent += other.messages_sent;
        self.bytes_received += other.bytes_received;
        self.peer_copies += other.peer_copies;
        self.kernel_time += other.kernel_time;
        self.receive_time += other.receive_time;
        self.busy += other.busy;
        self.idle += other.idle;
        self.loop_steps += other.loop_steps;
        self.runtime_cpu = self.runtime_cpu.max(other.runtime_cpu);
    }

    /// A table of where the rank's time went, printed at shutdown when `CELER_LOG` is `info` or more detailed.
    pub fn summary(&self) -> String {
        self.summary_of(&format!("rank {}", self.rank))
    }

    /// [`summary`](Self::summary) headed `summary of <who>`: with several devices a rank has one loop per device,
    /// whose `rank` field is its command-graph node, so each is named as a device of the rank, not as a rank.
    pub(super) fn summary_of(&self, who: &str) -> String {
        let wall = (self.busy + self.idle).as_secs_f64().max(1e-9);
        let pct = |d: std::time::Duration| 100.0 * d.as_secs_f64() / wall;
        format!(
            "summary of {who} over {wall:.3} s of loop time:\n\
             \x20 loop busy (scheduling, submitting, copying) {:8.3} s {:5.1}%\n\
             \x20 loop idle (waiting for GPU, network, host)  {:8.3} s {:5.1}%\n\
             \x20 GPU batches in flight (summed)               {:8.3} s {:5.1}%\n\
             \x20 await-pushes pending (summed)                {:8.3} s {:5.1}%\n\
             \x20 {} tasks ({:.0}/s), {} commands ({:.0}/s), {} kernels in {} batches ({} interiors run early), {} \
             host tasks\n\
             \x20 sent {} B in {} messages, received {} B ({} boxes by GPU copies from this rank's devices); device memory {} B, allocations grew {} times, {} staging buffers\n\
             \x20 runtime thread CPU {:.3} s ({:.2} µs per task), {} loop steps ({:.1} per task)",
            self.busy.as_secs_f64(),
            pct(self.busy),
            self.idle.as_secs_f64(),
            pct(self.idle),
            self.kernel_time.as_secs_f64(),
            pct(self.kernel_time),
            self.receive_time.as_secs_f64(),
            pct(self.receive_time),
            self.tasks,
            self.tasks as f64 / wall,
            self.commands,
            self.commands as f64 / wall,
            self.kernels,
            self.kernel_batches,
            self.early_interiors,
            self.host_tasks,
            self.bytes_sent,
            self.messages_sent,
            self.bytes_received,
            self.peer_copies,
            self.device_bytes,
            self.growths,
            self.staging_buffers,
            self.runtime_cpu.as_secs_f64(),
            1e6 * self.runtime_cpu.as_secs_f64() / self.tasks.max(1) as f64,
            self.loop_steps,
            self.loop_steps as f64 / self.tasks.max(1) as f64
        )
    }
}

impl std::fmt::Display for RankStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "rank {}: {} tasks, {} commands, {} kernels in {} batches, {} host tasks; sent {} B, received {} B; \
             kernels {:.3} s, receives {:.3} s; loop busy {:.3} s, idle {:.3} s",
            self.rank,
            self.tasks,
            self.commands,
            self.kernels,
            self.kernel_batches,
            self.host_tasks,
            self.bytes_sent,
            self.bytes_received,
            self.kernel_time.as_secs_f64(),
            self.receive_time.as_secs_f64(),
            self.busy.as_secs_f64(),
            self.idle.as_secs_f64()
        )
    }
}

/// A rank's side of the divergence check (see [`crate::divergence`]).
pub(super) struct DivergenceCheck<'c> {
    /// Whether windows are compared (`CELER_CHECK_DIVERGENCE`). The communicators and windows exist either way:
    /// creating them is collective, and with the check off, windows closed at horizons and epochs still pace the
    /// ranks ([`DIVERGENCE_WINDOWS`]), their reductions compared with nothing.
    pub(super) enabled: bool,
    /// For the per-window reductions.
    pub(super) side: celer_exec::mpi::SideComm<'c>,
    /// For the one reduction that finds the first diverging task, so that it cannot pair with a window's
    /// reduction on a rank that closed more windows.
    pub(super) detail: celer_exec::mpi::SideComm<'c>,
    pub(super) stream: StreamHash,
    /// One reduction per window of `stream`'s pending ones, oldest first.
    pub(super) reductions: VecDeque<celer_exec::mpi::MinReduce>,
    /// Scratch for what a task's custom range mappers give ([`crate::divergence::MapperSample`]), reused per task.
    pub(super) samples: Vec<crate::divergence::MapperSample>,
    /// Answers to the application (fence data, reached epochs) held until their window is found equal on every
    /// rank ([`RankLoop::answer`]).
    pub(super) held: Vec<super::commands::Answer>,
}

/// Windows of the divergence check that may await the other ranks before this rank counts as behind for
/// `submit`'s back-pressure (`RankLoop::divergence_hold`): a rank with little work of its own (the others run
/// its program's host tasks) otherwise ran ahead of them without bound, keeping every window's tasks and an MPI
/// reduction each (100 to 500 bytes a task) until the others caught up, and its pushes left the data of every
/// await-push the others had not reached yet waiting at the receiver (its headers with their inline payloads: a
/// 2-rank run grew by hundreds of MiB and slowed sevenfold). This is the only bound on how far one rank's program
/// runs ahead of another's, so it holds with `CELER_CHECK_DIVERGENCE=off` too: the windows then close at horizons
/// and epochs only (`crate::divergence::is_pacing_point`), 64 horizons.
pub const DIVERGENCE_WINDOWS: usize = 64;

/// How long a rank that found a divergence waits for the other ranks' part of the second reduction.
pub(super) const DIVERGENCE_DETAIL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// How long a rank that hit an error keeps comparing pending divergence windows, so that a divergence that caused
/// the error is what it reports.
pub(super) const DIVERGENCE_FIRST: std::time::Duration = std::time::Duration::from_secs(3);

/// How long the runtime thread of a rank that ended its program early (a divergence at its shutdown epoch) lets
/// the application thread go on after its queue's drop before ending the job, if the process has not ended by then.
pub(super) const ENDED_RANK_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

/// How many commands of one lost batch a device-loss report lists (the rest are counted).
pub(super) const LOST_WORK_LISTED: usize = 8;

/// How many queued commands a stall report lists (the rest are counted).
pub(super) const STALL_REPORT_QUEUED: usize = 8;

/// How long a rank that found a stall waits before aborting the job, so that the other ranks, whose own timers
/// run out at about the same time, print what they wait for too.
pub(super) const STALL_GRACE: std::time::Duration = std::time::Duration::from_secs(1);

/// What a rank waits for, as its stall report tells it: the lines of [`RankLoop::waiting_for`], and what of them
/// waits for another rank, counted from the same state as the lines were written ([`RankLoop::wait_report`]), so
/// that the report's conclusions never depend on its wording (nor on a task's name).
#[derive(Debug, Default)]
pub(super) struct WaitReport {
    /// One line per thing waited for.
    pub(super) lines: Vec<String>,
    /// What of it waits for another rank.
    pub(super) peers: PeerWaits,
}

impl WaitReport {
    /// Adds another device's report of this rank (`CELER_DEVICES`) after this one's.
    pub(super) fn absorb(&mut self, other: WaitReport) {
        self.lines.extend(other.lines);
        self.peers.absorb(other.peers);
    }
}

/// What of a rank's state waits for another rank, or moves data between ranks, counted where the stall report lists
/// it.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) struct PeerWaits {
    /// Await-pushes in flight receiving data from other ranks (`InFlight::Receive`).
    pub(super) receives: usize,
    /// Sends not yet received by their target rank.
    pub(super) pending_sends: usize,
    /// Reductions gathering the partial results of every other rank (`InFlight::Gather`).
    pub(super) gathers: usize,
    /// Barrier epochs waiting for every other rank (`InFlight::Barrier`).
    pub(super) barriers: usize,
    /// Host tasks held until the other ranks have submitted their task too (`InFlight::HeldHost`).
    pub(super) held_hosts: usize,
    /// Whether the divergence check's oldest window waits for the other ranks to reach it.
    pub(super) divergence_window: bool,
    /// Await-push commands the report lists (in flight, or among the queued commands it names).
    pub(super) await_pushes: usize,
    /// Data another rank sent which no await-push here expects (yet): it waits for this rank's program.
    pub(super) unexpected_data: usize,
}

impl PeerWaits {
    /// Whether this rank waits for another rank: data it awaits, a send not yet received, a gather, a barrier, a
    /// host task held for the divergence check, or the divergence check's window. Not its own work (GPU work, host
    /// tasks running, data that arrived before its program asked for it, copies by its other devices).
    pub(super) fn awaits_other_ranks(&self) -> bool {
        self.receives + self.pending_sends + self.gathers + self.barriers + self.held_hosts > 0
            || self.divergence_window
    }

    /// Whether the report lists data moving between ranks: an await-push, or data no await-push expects. With no
    /// rank's program ended, the ranks may disagree on which cells move (the report then says so).
    pub(super) fn lists_transfers(&self) -> bool {
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
    /// Closes the trace's spans of the batches that completed and adds the device's timings of their operations.
    pub(super) fn trace_completed_batches(&mut self) {
        let Some(trace) = &mut self.trace else { return };
        let now = std::time::Instant::now();
        let gpu = &self.gpu;
        self.traced_batches.retain_mut(|(id, since, what)| {
            let done = gpu.is_complete(*id);
            if done {
                trace.span(crate::trace::Row::Gpu, std::mem::take(what), *since, now);
            }
            !done
        });
        let mut timings = std::mem::take(&mut self.timings);
        self.gpu.take_timings(&mut timings);
        for (_, ops) in timings.drain(..) {
            let last = ops.last().map_or(0, |op| op.end_ns);
            for op in ops {
                let name = match op.kind {
                    OpKind::Kernel(k) => format!("kernel {}", self.gpu.kernel_name(k).unwrap_or("?")),
                    OpKind::Upload { bytes } => format!("upload {bytes} B"),
                    OpKind::Download { bytes } => format!("download {bytes} B"),
                    OpKind::Copy { bytes } => format!("device copy {bytes} B"),
                };
                let end = now.checked_sub(std::time::Duration::from_nanos(last - op.end_ns)).unwrap_or(now);
                let len = std::time::Duration::from_nanos(op.end_ns.saturating_sub(op.start_ns));
                trace.span_ending(crate::trace::Row::GpuOps, name, end, len);
            }
        }
        self.timings = timings;
    }

    /// Adds the time the completed kernel batches were in flight to [`RankStats::kernel_time`].
    pub(super) fn time_completed_kernels(&mut self) {
        let now = std::time::Instant::now();
        let gpu = &self.gpu;
        let stats = &mut self.stats;
        self.kernel_batches.retain(|(id, since)| {
            let done = gpu.is_complete(*id);
            if done {
                stats.kernel_time += now - *since;
            }
            !done
        });
    }

    /// While more than [`DIVERGENCE_WINDOWS`] windows of the divergence check await the other ranks: the first task
    /// of the oldest (every task below it was recorded by every rank, and with the check on compared equal), which
    /// then bounds what this rank reports as completed, so that `submit` blocks until the others catch up; `None`
    /// otherwise. With the check on or off: with it off, the windows pace the ranks and compare nothing.
    pub(super) fn divergence_hold(&self) -> Option<u64> {
        let d = self.divergence.as_ref().filter(|d| d.reductions.len() > DIVERGENCE_WINDOWS)?;
        Some(d.stream.oldest().and_then(|w| w.after).map_or(0, |t| t.0 + 1))
    }

    /// Tests the divergence check's oldest window; a window on which the ranks differ ends every rank
    /// ([`diverged`](Self::diverged)). Returns whether a window was confirmed.
    pub(super) fn poll_divergence(&mut self) -> Result<bool, RuntimeError> {
        if let Some(d) = &mut self.divergence {
            if let Some(r) = d.reductions.front_mut() {
                if let Some(min) = r.test(self.comm)? {
                    let (h_min, h_max, c_min, c_max) = read_check(min);
                    // With the check off the window only paced the ranks: nothing to compare.
                    if d.enabled && (h_min != h_max || c_min != c_max) {
                        self.diverged();
                    }
                    d.reductions.pop_front();
                    d.stream.confirm_oldest();
                    if !d.held.is_empty() {
                        let (ready, held): (Vec<_>, Vec<_>) =
                            std::mem::take(&mut d.held).into_iter().partition(|a| !d.stream.unconfirmed(a.task()));
                        d.held = held;
                        for a in ready {
                            self.send_answer(a);
                        }
                    }
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }

    /// Before this rank ends the job for another error: keeps comparing the divergence check's pending windows
    /// for up to [`DIVERGENCE_FIRST`], so that an error caused by diverging programs (an unexpected transfer) is
    /// reported as the divergence ([`diverged`](Self::diverged) ends the job). Returns if none is found.
    pub(super) fn report_divergence_first(&mut self) {
        let deadline = std::time::Instant::now() + DIVERGENCE_FIRST;
        while self.divergence.as_ref().is_some_and(|d| d.enabled && !d.reductions.is_empty())
            && std::time::Instant::now() < deadline
        {
            if self.poll_divergence().is_err() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }

    /// Names command `id` for messages: `C7 await-push of task T3 "consume"`.
    pub(super) fn command_ident(&self, id: CommandId) -> String {
        match self.cdag.command(id) {
            Some(c) => match self.tm.task(c.task) {
                Some(t) => format!("{id} {} of {}", c.kind.name(), t.ident()),
                None => format!("{id} {} of {}", c.kind.name(), c.task),
            },
            None => format!("{id}"),
        }
    }

    /// Names the task of command `id` for trace labels: `T5 "snapshot"` (the command while the task is not in
    /// memory).
    pub(super) fn task_label(&self, id: CommandId) -> String {
        match self.cdag.command(id).and_then(|c| self.tm.task(c.task)).map(|t| t.ident()) {
            Some(celer_graph::TaskIdent { id, name: Some(name) }) => format!("{id} \"{name}\""),
            Some(t) => t.id.to_string(),
            None => id.to_string(),
        }
    }

    /// The kernel (`file::entry`) an execution command runs, while its task is in memory.
    pub(super) fn kernel_of(&self, id: CommandId) -> Option<String> {
        let CommandKind::Execution { task, .. } = &self.cdag.command(id)?.kind else { return None };
        let payload = self.tm.task(*task)?.spec.payload.as_ref()?.downcast_ref::<KernelPayload>()?;
        Some(format!("{}::{}", payload.source.name(), payload.entry))
    }

    /// Names buffer `b` for messages: `buffer B0 "data"`.
    pub(super) fn buffer_ident(&self, b: BufferId) -> String {
        match self.tm.buffer_name(b) {
            Some(name) => format!("buffer {b} \"{name}\""),
            None => format!("buffer {b}"),
        }
    }

    /// The ranks expected to send `region` of `buffer` to the await-push of `task`: the producers among the task's
    /// true dependencies (found only while they are in memory).
    pub(super) fn expected_senders(&self, task: TaskId, buffer: BufferId, region: &Region) -> Vec<NodeId> {
        let me = NodeId(self.node as u64);
        let Some(t) = self.tm.task(task) else { return Vec::new() };
        let mut ranks: Vec<NodeId> = Vec::new();
        for d in t.dependencies.iter().filter(|d| d.kind == DependencyKind::True) {
            if let Some(p) = self.tm.task(d.task) {
                if p.regions.iter().any(|r| r.buffer == buffer && !r.produced.intersection(region).is_empty()) {
                    ranks.extend(self.cdag.producer_ranks(p, buffer, region));
                }
            }
        }
        ranks.sort();
        ranks.dedup();
        ranks.retain(|&r| r != me);
        ranks
    }

    /// What this rank waits for, one line each: commands in flight (await-pushes with their transfer and expected
    /// senders, GPU work, host tasks, gathers, barriers), sends not yet delivered, data that arrived unasked, and
    /// the queued commands with the dependencies they wait for. For stall reports; costs what formatting costs.
    pub fn waiting_for(&self) -> Vec<String> {
        self.wait_report().lines
    }

    /// [`waiting_for`](Self::waiting_for)'s lines, with what of them waits for another rank counted from the
    /// state each line is written from ([`PeerWaits`]).
    pub(super) fn wait_report(&self) -> WaitReport {
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

    /// Turns a failed GPU poll into the error that ends the run; for a lost device it names the GPU work that was
    /// in flight, command by command.
    pub(super) fn gpu_failed(&mut self, e: celer_exec::gpu::GpuError) -> RuntimeError {
        let celer_exec::gpu::GpuError::DeviceLost { batches, .. } = &e else { return e.into() };
        self.fault_grace = true;
        let mut lines = Vec::new();
        for b in batches {
            let mut held = Vec::new();
            for (id, flight) in &self.in_flight {
                if let InFlight::Gpu(GpuRef::Submitted(batch), after) = flight {
                    if batch == b {
                        let stage = match after.download() {
                            Some(download) => download.to_string(),
                            None => self.kernel_of(*id).map_or("upload or copy".into(), |k| format!("kernel {k}")),
                        };
                        held.push(format!("{} ({stage})", self.command_ident(*id)));
                    }
                }
            }
            if held.len() > LOST_WORK_LISTED {
                let more = held.len() - LOST_WORK_LISTED;
                held.truncate(LOST_WORK_LISTED);
                held.push(format!("and {more} more"));
            }
            let held = if held.is_empty() { "uploads and copies only".to_string() } else { held.join(", ") };
            lines.push(format!("batch {b}: {held}"));
        }
        RuntimeError::DeviceLost { node: self.node, error: e, lost: lines }
    }

    /// With `CELER_DUMP_GRAPHS`, writes `commands-rank<N>.dot` (this rank's command graph) and, on rank 0,
    /// `tasks.dot` (the task graph, the same on every rank) into the directory; returns the files written.
    ///
    /// # Errors
    /// File-system errors, naming the path.
    pub fn write_graph_dumps(&self) -> Result<Vec<std::path::PathBuf>, RuntimeError> {
        let Some(dump) = &self.dump else { return Ok(Vec::new()) };
        let dir = &dump.dir;
        std::fs::create_dir_all(dir).map_err(|error| RuntimeError::Io { what: "create", path: dir.clone(), error })?;
        let mut files = vec![(dir.join(format!("commands-rank{}.dot", self.node)), self.cdag.to_dot())];
        if self.node == 0 {
            let mut dot = self.tm.tasks_to_dot(dump.tasks.iter());
            if dump.unkept > 0 {
                // A later graph label overrides the first.
                let end = dot.rfind('}').unwrap_or(dot.len());
                dot.insert_str(
                    end,
                    &format!(
                        "  label=\"task graph: the first {} tasks only ({} later ones were not kept: \
                         CELER_DUMP_GRAPHS keeps at most {})\";\n",
                        dump.tasks.len(),
                        dump.unkept,
                        super::DUMP_TASKS
                    ),
                );
            }
            files.push((dir.join("tasks.dot"), dot));
        }
        for (path, dot) in &files {
            std::fs::write(path, dot).map_err(|error| RuntimeError::Io { what: "write", path: path.clone(), error })?;
        }
        Ok(files.into_iter().map(|f| f.0).collect())
    }
}

/// Ends the job after a stall: prints how long this rank made no progress and what it waits for, waits
/// `STALL_GRACE` so the other ranks print theirs, and aborts.
/// `unchecked`: the run has `CELER_CHECK_DIVERGENCE=off`, which the report then names as a possible cause.
pub(super) fn abort_stalled(
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
            super::exit::release_ended_rank();
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
pub(super) struct LongWait {
    /// The wait (time without progress) at which the next notice is due.
    next: std::time::Duration,
    first: std::time::Duration,
}

/// How many stall timeouts a rank waits for a busy peer before [`LongWait`]'s first notice.
pub(super) const LONG_WAIT_STALLS: u32 = 4;

impl LongWait {
    pub(super) fn new(stall_timeout: std::time::Duration) -> Self {
        let first = stall_timeout * LONG_WAIT_STALLS;
        Self { next: first, first }
    }

    /// Whether a notice is due for a wait of `idle` (and if so, the next one is due when the wait has doubled).
    pub(super) fn due(&mut self, idle: std::time::Duration) -> bool {
        if idle < self.next {
            return false;
        }
        self.next = idle * 2;
        true
    }

    /// Progress was made: the next wait starts afresh.
    pub(super) fn reset(&mut self) {
        self.next = self.first;
    }
}

/// [`LongWait`]'s notice: how long this rank has waited and for what, one line each.
pub(super) fn long_wait_message(rank: i32, idle: std::time::Duration, lines: &[String]) -> String {
    let mut msg = format!(
        "rank {rank}: no progress for {:.0} s with work pending, but the run goes on: the program of a rank (this one \
         or another) has not come back to celer since (it computes between submissions, or it is stuck there: a \
         deadlock, a wait for input, a rank that never submits again), and a run is ended as stalled only when every \
         rank waits inside celer. This rank waits for:",
        idle.as_secs_f64()
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
            msg.push_str(super::error::UNCHECKED_HINT);
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
            &["C2 await-push of task T2: awaits buffer B0 \"a\" {[32] - [64]} expected from rank 1".into()],
        );
        assert!(msg.starts_with("rank 0: no progress for 16 s with work pending, but the run goes on"), "{msg}");
        assert!(msg.contains("a rank that never submits again") && msg.contains("\n    C2 await-push"), "{msg}");
        assert!(!msg.contains("stalled:"), "not the stall report: {msg}");
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

    pub(super) fn stats(kernels: u64, busy_ms: u64, idle_ms: u64, gpu_ms: u64) -> RankStats {
        RankStats {
            kernels,
            busy: Duration::from_millis(busy_ms),
            idle: Duration::from_millis(idle_ms),
            kernel_time: Duration::from_millis(gpu_ms),
            ..RankStats::default()
        }
    }

    #[test]
    fn the_thread_cpu_clock_counts_this_thread_s_work() {
        let before = thread_cpu_time();
        let mut x = 1u64;
        for i in 0..5_000_000u64 {
            x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(i));
        }
        assert!(thread_cpu_time() > before, "{x}");
    }

    #[test]
    fn absorbing_a_device_s_statistics_sums_its_steps_and_keeps_the_shared_thread_s_cpu_time() {
        let mut a = RankStats { loop_steps: 10, runtime_cpu: Duration::from_millis(7), ..RankStats::default() };
        let b = RankStats { loop_steps: 5, runtime_cpu: Duration::from_millis(9), ..RankStats::default() };
        a.absorb(&b);
        assert_eq!(a.loop_steps, 15);
        assert_eq!(a.runtime_cpu, Duration::from_millis(9));
        assert!(a.summary().contains("15 loop steps"), "{}", a.summary());
    }

    #[test]
    pub(super) fn a_busy_loop_beside_an_idle_gpu_is_called_scheduler_bound() {
        let w = scheduler_bound_warning(&stats(5000, 800, 200, 300)).expect("busy 80 %, GPU 30 %");
        assert!(w.contains("busy 80%") && w.contains("in flight 30%") && w.contains("5000 kernels"), "{w}");
        // GPU-bound, idle loop, or too short a run: silent.
        assert!(scheduler_bound_warning(&stats(5000, 800, 200, 900)).is_none());
        assert!(scheduler_bound_warning(&stats(5000, 200, 800, 100)).is_none());
        assert!(scheduler_bound_warning(&stats(999, 800, 200, 100)).is_none());
        // 800 ms of loop time over 2000 kernels is 400 µs each: something else kept the loop busy.
        assert!(scheduler_bound_warning(&stats(2000, 800, 200, 100)).is_none());
    }
}
