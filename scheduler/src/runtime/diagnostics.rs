//! Diagnostics: statistics, the trace's GPU spans, the divergence check, device-loss reports and graph dumps; the
//! stall report lives in [`stall_report`], the divergence report in `divergence_report`.

use std::collections::VecDeque;

use celer_exec::gpu::OpKind;
use celer_graph::{BufferId, CommandId, CommandKind, DependencyKind, NodeId, Region, TaskId};

use super::batch::GpuRef;
use super::commands::InFlight;
use super::error::RuntimeError;
use super::kernel::KernelPayload;
use super::RankLoop;
use crate::divergence::{read_check, StreamHash};

mod divergence_report;
mod stall_report;

pub(super) use stall_report::{abort_away, abort_stalled, long_wait_message, LongWait, WaitReport};

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
    /// MPI messages the transfer engine took in (headers, with their inline payloads or groups of boxes, and
    /// payload messages), including those that arrived before their await-push.
    pub messages_received: u64,
    /// Bytes of buffer data received from other ranks.
    pub bytes_received: u64,
    /// Bytes fences read back from device memory (each fence's box once per rank, read by the device that gathers
    /// it; results the runtime combined on the host, such as a deterministic reduction's, read nothing).
    pub fence_bytes_read: u64,
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
    /// Times the runtime thread parked (its idle strategy's last stage, after spinning and yielding without
    /// progress; each park lasts at most 1 ms or until the application thread or a host task wakes it). Counted on
    /// the loop of the rank's first device: the loops of one rank's devices share the thread.
    pub parks: u64,
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
        self.messages_received += other.messages_received;
        self.bytes_received += other.bytes_received;
        self.fence_bytes_read += other.fence_bytes_read;
        self.peer_copies += other.peer_copies;
        self.kernel_time += other.kernel_time;
        self.receive_time += other.receive_time;
        self.busy += other.busy;
        self.idle += other.idle;
        self.loop_steps += other.loop_steps;
        self.parks += other.parks;
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
             \x20 sent {} B in {} messages, received {} B in {} messages ({} boxes by GPU copies from this rank's devices); device memory {} B, allocations grew {} times, {} staging buffers\n\
             \x20 runtime thread CPU {:.3} s ({:.2} µs per task), {} loop steps ({:.1} per task), parked {} times",
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
            self.messages_received,
            self.peer_copies,
            self.device_bytes,
            self.growths,
            self.staging_buffers,
            self.runtime_cpu.as_secs_f64(),
            1e6 * self.runtime_cpu.as_secs_f64() / self.tasks.max(1) as f64,
            self.loop_steps,
            self.loop_steps as f64 / self.tasks.max(1) as f64,
            self.parks
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

/// How long a rank that found a stall waits before aborting the job, so that the other ranks, whose own timers
/// run out at about the same time, print what they wait for too.
pub(super) const STALL_GRACE: std::time::Duration = std::time::Duration::from_secs(1);

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

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

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
        let mut a = RankStats {
            loop_steps: 10,
            runtime_cpu: Duration::from_millis(7),
            parks: 3,
            messages_received: 40,
            ..RankStats::default()
        };
        let b = RankStats { loop_steps: 5, runtime_cpu: Duration::from_millis(9), ..RankStats::default() };
        a.absorb(&b);
        assert_eq!(a.loop_steps, 15);
        assert_eq!(a.runtime_cpu, Duration::from_millis(9));
        assert_eq!((a.parks, a.messages_received), (3, 40));
        let summary = a.summary();
        assert!(summary.contains("15 loop steps"), "{summary}");
        assert!(summary.contains("received 0 B in 40 messages") && summary.contains("parked 3 times"), "{summary}");
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
