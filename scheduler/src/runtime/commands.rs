//! Starting and finishing commands: what a command in flight waits for, and the dispatch by command kind.

use celer_exec::transfer::{Token, TransferKey};
use celer_graph::{
    BufferId, Command, CommandId, CommandKind, EpochAction, NodeId, ReductionId, Region, TaskId, TaskKind,
};

use super::batch::{Dl, GpuRef};
use super::boxes::box3;
use super::error::{failure, CommandWork, OpContext, RuntimeError};
use super::host::HostJob;
use super::RankLoop;

/// The command in progress and what it waits for.
pub(super) enum InFlight {
    /// Waiting for a GPU batch; `then` says what to do once it completes.
    Gpu(GpuRef, AfterGpu),
    /// Waiting for the transfer engine to deliver an await-push into host staging.
    Receive { buffer: BufferId, region: Region, token: Token, since: std::time::Instant, key: TransferKey },
    /// A host task running on a host worker (or queued for one) since the instant.
    Host(CommandId, std::time::Instant),
    /// A host task ready to run, held since the instant until the divergence check has compared its window on
    /// every rank ([`RankLoop::hand_over`]).
    HeldHost(Box<HostJob>, std::time::Instant),
    /// Waiting for every other rank's partial result of a reduction.
    Gather { key: TransferKey, reduction: ReductionId },
    /// A barrier epoch waiting for every rank (then it completes like any epoch).
    Barrier { request: celer_exec::mpi::RawRequest, task: TaskId },
    /// A push whose boxes to devices of this rank are copied on the GPU: waits for the receivers' acks (their
    /// copies submitted; this loop's next batch then waits for them on the GPU, so that nothing on this device
    /// overwrites the cells before they are read).
    PeerSent { acks: smallvec::SmallVec<[u64; 2]> },
    /// Finished: what `RankLoop::retire` leaves in the slot of a command it finishes, until it removes such slots
    /// at the end of its pass.
    Retired,
}

pub(super) enum AfterGpu {
    Done,
    /// A kernel's block reductions: their block results to download, then combine into tree nodes
    /// ([`RankLoop::finish_blocks`]); `whole` when the chunk is the task's whole index space.
    Blocks {
        parts: Vec<super::reduction::BlockPart>,
        whole: bool,
        /// The execution command.
        cmd: CommandId,
    },
    /// Downloads to copy into host staging, then send.
    Push {
        buffer: BufferId,
        /// One download per target rank, of its region's boxes packed one after another.
        downloads: Vec<(Dl, NodeId, Region)>,
        key: TransferKey,
        /// Acks of the boxes offered to devices of this rank for GPU copies (`runtime::peer`).
        peers: smallvec::SmallVec<[u64; 2]>,
    },
    /// The local partial result of a reduction, to combine with the gathered ones.
    Reduce {
        buffer: BufferId,
        reduction: ReductionId,
        download: Option<Dl>,
    },
    /// Downloads of a host task's inputs; then the task goes to the worker.
    HostInputs {
        downloads: Vec<(usize, Dl)>,
        job: Box<HostJob>,
    },
    /// A fence read-back to hand to the application.
    Fence {
        download: Dl,
        bytes: usize,
        task: TaskId,
    },
}

impl AfterGpu {
    /// What the GPU work downloads, for messages (`None`: a kernel, upload or copy, nothing to read back).
    pub(super) fn download(&self) -> Option<&'static str> {
        match self {
            AfterGpu::Done => None,
            AfterGpu::Blocks { .. } => Some("download of a kernel's block reduction results"),
            AfterGpu::Push { .. } => Some("download of data to send"),
            AfterGpu::Reduce { .. } => Some("download of a partial reduction result"),
            AfterGpu::HostInputs { .. } => Some("download of a host task's inputs"),
            AfterGpu::Fence { .. } => Some("download of a fence"),
        }
    }
}

/// What of a command in flight decides whether queued commands may start (`RankLoop::start_ready`, which lets GPU
/// commands queue behind GPU work, and `start_interior`, which looks for receives) and whether `retire` must look
/// at it before a GPU batch completes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum ReadinessKind {
    /// Waits only for its GPU work (`AfterGpu::Done`).
    GpuDone,
    /// Waits for GPU work, then does more.
    GpuThen,
    /// Receives an await-push.
    Receive,
    /// Anything else (host tasks, gathers, barriers): polled by `retire` every step.
    Other,
}

impl InFlight {
    /// What of this command in flight decides readiness (see [`ReadinessKind`]).
    pub(super) fn readiness_kind(&self) -> ReadinessKind {
        match self {
            InFlight::Gpu(_, AfterGpu::Done) => ReadinessKind::GpuDone,
            InFlight::Gpu(..) => ReadinessKind::GpuThen,
            InFlight::Receive { .. } => ReadinessKind::Receive,
            _ => ReadinessKind::Other,
        }
    }
}

/// An answer to the application thread: a fence's data, or an epoch (a `wait` or barrier) reached.
#[derive(Debug)]
pub(super) enum Answer {
    /// Fence task's data.
    Fence(TaskId, Vec<u8>),
    /// The epoch task was reached.
    Epoch(TaskId),
}

impl Answer {
    pub(super) fn task(&self) -> TaskId {
        match self {
            Answer::Fence(t, _) | Answer::Epoch(t) => *t,
        }
    }
}

impl RankLoop<'_> {
    /// Starts `cmd` by its kind; returns what it waits for, or `None` if it is complete already.
    pub(super) fn start(&mut self, cmd: &Command) -> Result<Option<InFlight>, RuntimeError> {
        let fail = failure(self.node, cmd);
        match &cmd.kind {
            CommandKind::Execution { task, chunk, .. } => {
                let kind = self.tm.task(*task).ok_or_else(|| fail(RuntimeError::TaskPruned))?.kind();
                if chunk.is_empty() && kind != TaskKind::DeviceCompute {
                    // A host task without items: nothing to run.
                    Ok(None)
                } else if kind == TaskKind::DeviceCompute {
                    self.start_kernel(cmd, chunk)
                } else {
                    self.start_host_task(cmd, *task, chunk)
                }
            }
            CommandKind::Push { transfer, targets } => self.start_push(cmd, transfer, targets),
            CommandKind::AwaitPush { transfer, region } => match transfer.reduction {
                Some(reduction) => self.start_gather(cmd, transfer, reduction),
                None => self.start_await_push(cmd, transfer, region),
            },
            CommandKind::Fence { task } => self.start_fence(cmd, *task),
            CommandKind::Horizon { task } => {
                self.horizon_reached(*task);
                Ok(None)
            }
            CommandKind::Epoch { task, action: EpochAction::Barrier } => {
                // Everything local before the epoch has completed (its dependencies); now meet the other ranks.
                let request = self.comm.ibarrier().map_err(|e| fail(e.into()))?;
                Ok(Some(InFlight::Barrier { request, task: *task }))
            }
            CommandKind::Epoch { task, action } => {
                self.epoch_reached(*task, *action);
                Ok(None)
            }
            CommandKind::Reduction { reduction, buffer, has_local_contribution } => {
                self.start_reduction(cmd, *reduction, *buffer, *has_local_contribution)
            }
        }
    }

    /// Advances the command in flight by what it waits for; returns it back if it is not finished.
    pub(super) fn finish(&mut self, flight: InFlight) -> Result<Option<InFlight>, RuntimeError> {
        match flight {
            InFlight::Gpu(r, after) => {
                // Still in the open batch, which is submitted once due ([`RankLoop::batch_due`]).
                let GpuRef::Submitted(id) = r else {
                    return Ok(Some(InFlight::Gpu(r, after)));
                };
                if !self.gpu.is_complete(id) {
                    return Ok(Some(InFlight::Gpu(r, after)));
                }
                match after {
                    AfterGpu::Done => Ok(None),
                    AfterGpu::Blocks { parts, whole, cmd } => self.finish_blocks(parts, whole, cmd),
                    AfterGpu::Push { buffer, downloads, key, peers } => {
                        if !downloads.is_empty() {
                            self.send_pushed(buffer, downloads, key)?;
                        }
                        Ok(self.peers_acked(peers))
                    }
                    AfterGpu::Reduce { buffer, reduction, download } => {
                        self.finish_reduction(buffer, reduction, download).map(Some)
                    }
                    AfterGpu::HostInputs { downloads, job } => self.run_host_task(downloads, *job).map(Some),
                    AfterGpu::Fence { download, bytes, task } => {
                        self.answer_fence(download, bytes, task)?;
                        Ok(None)
                    }
                }
            }
            InFlight::Barrier { mut request, task } => {
                if !request.test(self.comm)? {
                    return Ok(Some(InFlight::Barrier { request, task }));
                }
                self.epoch_reached(task, EpochAction::Barrier);
                Ok(None)
            }
            InFlight::Gather { key, reduction } => Ok(self.finish_gather(key, reduction)),
            InFlight::Retired => Ok(None),
            InFlight::PeerSent { acks } => Ok(self.peers_acked(acks)),
            InFlight::Host(cmd, since) => self.finish_host_task(cmd, since),
            InFlight::HeldHost(job, since) => match self.hand_over(job) {
                InFlight::HeldHost(job, _) => Ok(Some(InFlight::HeldHost(job, since))),
                running => Ok(Some(running)),
            },
            InFlight::Receive { buffer, region, token, since, key } => {
                self.finish_await_push(buffer, region, token, since, key)
            }
        }
    }

    /// Answers the application thread waiting for a fence or an epoch; while the divergence check has not yet found
    /// the window that holds the task equal on every rank, holds the answer until it has
    /// ([`poll_divergence`](Self::poll_divergence) sends it): the program of a rank whose program diverged must not go
    /// on with a result (and print it) before the divergence ends the job.
    pub(super) fn answer(&mut self, a: Answer) {
        if let Some(d) = self.divergence.as_mut().filter(|d| d.enabled) {
            if d.stream.unconfirmed(a.task()) {
                d.held.push(a);
                return;
            }
        }
        self.send_answer(a);
    }

    /// Sends answer `a` to the application thread now.
    pub(super) fn send_answer(&mut self, a: Answer) {
        match a {
            Answer::Fence(task, data) => {
                if let Some(reply) = self.fences.remove(&task) {
                    self.fence_bytes_answered += (data.len() as u64).min(super::FENCE_DATA_BACKLOG);
                    let _ = reply.send(data);
                }
            }
            Answer::Epoch(task) => {
                if let Some(reply) = self.epochs.remove(&task) {
                    let _ = reply.send(());
                }
            }
        }
    }

    /// Collects the download of fence `cmd` of `task`.
    pub(super) fn start_fence(&mut self, cmd: &Command, task: TaskId) -> Result<Option<InFlight>, RuntimeError> {
        let fail = failure(self.node, cmd);
        let t = self.tm.task(task).ok_or_else(|| fail(RuntimeError::TaskPruned))?;
        let access = t.regions.first().ok_or_else(|| fail(RuntimeError::FenceWithoutBuffer))?;
        let fenced = access.consumed.bounding_box();
        let state = &self.buffers[&access.buffer];
        let bytes = fenced.area() * state.elem_size;
        let buffer = access.buffer;
        if fenced.is_empty() {
            // A zero-sized buffer: nothing to download, the answer is empty.
            self.answer(Answer::Fence(task, Vec::new()));
            return Ok(None);
        }
        // A deterministic reduction's result, which this node combined on the host: no read-back.
        if fenced == state.extent {
            if let Some(bytes) = self.known_result(cmd, buffer).map(<[u8]>::to_vec) {
                self.answer(Answer::Fence(task, bytes));
                return Ok(None);
            }
        }
        self.cover(buffer, &fenced).map_err(&fail)?;
        self.stats.fence_bytes_read += bytes as u64;
        let download = self.pend_download(buffer, fenced, OpContext::command(self.node, cmd, CommandWork::Fence));
        Ok(Some(InFlight::Gpu(self.open(), AfterGpu::Fence { download, bytes, task })))
    }

    /// Hands the fence's downloaded data (`bytes` of them) to the application thread waiting for fence `task`.
    pub(super) fn answer_fence(&mut self, download: Dl, bytes: usize, task: TaskId) -> Result<(), RuntimeError> {
        let t = self.tm.task(task).expect("fence task is live until its epoch");
        let fenced = t.regions[0].consumed.bounding_box();
        let mut data = super::alloc::zeroed_bytes(bytes).ok_or_else(|| RuntimeError::HostMemory {
            what: format!("the fence {}", t.ident()),
            buffer: self.tm.buffer_ident(t.spec.accesses[0].buffer).to_string(),
            bounds: fenced,
            bytes,
        })?;
        self.gpu.read_download(download.id()?, &mut data, box3(&fenced))?;
        self.answer(Answer::Fence(task, data));
        Ok(())
    }

    /// Horizon `task` runs: in order, everything before it has run, so the previous horizon is reached.
    pub(super) fn horizon_reached(&mut self, task: TaskId) {
        if let Some(trace) = &mut self.trace {
            trace.instant(crate::trace::Row::Loop, format!("horizon {task}"), std::time::Instant::now());
        }
        // In order, everything before this horizon has run: the previous one is reached.
        if let Some(prev) = self.last_horizon.replace(task) {
            self.tm.notify_epoch_reached(prev);
            self.cdag.notify_epoch_reached(prev);
            self.release_dropped(prev);
        }
    }

    /// Everything before epoch `task` has completed: prune, answer a waiting application, stop at shutdown.
    pub(super) fn epoch_reached(&mut self, task: TaskId, action: EpochAction) {
        if let Some(trace) = &mut self.trace {
            trace.instant(crate::trace::Row::Loop, format!("epoch {task} ({action:?})"), std::time::Instant::now());
        }
        self.last_horizon = None;
        self.tm.notify_epoch_reached(task);
        self.cdag.notify_epoch_reached(task);
        self.release_dropped(task);
        if action == EpochAction::Shutdown {
            // Not held for the divergence check: a rank whose program ended early goes on to print its own error
            // while the check reports where it ended.
            self.send_answer(Answer::Epoch(task));
            self.shutdown = true;
        } else {
            self.answer(Answer::Epoch(task));
        }
    }
}
