//! The rank loop's side of reductions: block results read back after a kernel and their tree nodes pushed, the
//! other ranks' partial results gathered, combined with this rank's in rank order, and the result uploaded.

use std::sync::Arc;

use celer_exec::transfer::TransferKey;
use celer_graph::{BufferId, Command, CommandId, ReductionId, ReductionOp, TaskId, TaskSpec};

use super::super::batch::{Dl, GpuOp};
use super::super::boxes::box3;
use super::super::commands::{AfterGpu, InFlight};
use super::super::error::{failure, CommandWork, OpContext, RuntimeError};
use super::super::kernel::KernelPayload;
use super::super::transfer::key_of;
use super::super::RankLoop;
use super::{show_element, BlockGrid, BlockPart, NotCommutative, ReductionInfo};

/// How many scratch allocations of block reductions a node keeps for reuse (a program alternating between a few
/// reductions over the same chunks reuses theirs).
const MAX_SPARE_SCRATCH: usize = 8;

impl RankLoop<'_> {
    /// The bytes a fence command `cmd` of the whole of `buffer` reads, where the host knows them: the buffer's last
    /// writer (a true dependency of the fence; a one-element buffer has one) is the command that uploaded a
    /// deterministic reduction's result. Saves the fence a GPU round trip.
    pub(in crate::runtime) fn known_result(&self, cmd: &Command, buffer: BufferId) -> Option<&[u8]> {
        let (writer, bytes) = self.known_results.get(&buffer)?;
        cmd.dependencies
            .iter()
            .any(|d| d.command == *writer && d.kind == celer_graph::DependencyKind::True)
            .then_some(bytes.as_slice())
    }

    /// Once the kernel of an execution command with block reductions completed: turns each reduction's block
    /// results into the nodes of the fixed tree that its chunk holds ([`crate::blocks::run_roots`]). Where the chunk
    /// is the whole index space (`whole`, the task's only chunk) the root is the result, uploaded into the buffer
    /// (returned: the upload's flight); otherwise the nodes wait for the push or reduction command that reads the
    /// reduction (`block_roots`).
    pub(in crate::runtime) fn finish_blocks(
        &mut self,
        parts: Vec<BlockPart>,
        whole: bool,
        cmd: CommandId,
    ) -> Result<Option<InFlight>, RuntimeError> {
        let mut uploads = false;
        for p in parts {
            let alloc = self.scratch.remove(&p.scratch).ok_or(RuntimeError::Internal("a block scratch vanished"))?;
            let info = self.reductions[&p.reduction].clone();
            let grid = info.blocks.ok_or(RuntimeError::Internal("block results of a reduction without blocks"))?;
            let me = self.node;
            let runs = grid.runs(&p.tiles);
            // The block results are folded where the download left them (the download holds the tiles' cells
            // row-major, as `runs` numbers them).
            let computed = self.gpu.read_download_with(p.download.id()?, |bytes| {
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    let nodes = info.block_nodes(grid.count(), &runs, bytes);
                    if whole {
                        info.block_root(grid.count(), &nodes).map(Ok)
                    } else {
                        Ok(Err(nodes))
                    }
                }))
            })?;
            // Its batch completed: the cells may serve the next block reduction over the same blocks.
            self.spare_scratch.push(alloc);
            if self.spare_scratch.len() > MAX_SPARE_SCRATCH {
                let oldest = self.spare_scratch.remove(0);
                self.gpu.free(oldest);
            }
            let computed =
                computed.map_err(|panic| combine_panicked(me, p.reduction, &info, &*panic))?.map_err(|missing| {
                    RuntimeError::BlockMissing { node: me, reduction: p.reduction, buffer: p.buffer, missing }
                })?;
            match computed {
                Ok(result) => {
                    self.upload_result(p.buffer, p.reduction, result, cmd)?;
                    uploads = true;
                }
                Err(nodes) => {
                    self.block_roots.insert(p.buffer, (p.reduction, crate::blocks::encode(&nodes)));
                }
            }
        }
        Ok(uploads.then(|| InFlight::Gpu(self.open(), AfterGpu::Done)))
    }

    /// Sends this rank's tree nodes of block reduction `reduction` to the `targets` that read it (those with a
    /// non-empty region; the others had the empty notice already).
    pub(in crate::runtime) fn push_block_roots(
        &mut self,
        cmd: &Command,
        transfer: &celer_graph::TransferId,
        reduction: ReductionId,
        targets: &[(celer_graph::NodeId, celer_graph::Region)],
    ) -> Result<Option<InFlight>, RuntimeError> {
        let fail = failure(self.node, cmd);
        let bytes = match self.block_roots.get(&transfer.buffer) {
            Some((r, bytes)) if *r == reduction => bytes.clone(),
            _ => return Err(fail(RuntimeError::MissingData { buffer: transfer.buffer })),
        };
        let bounds = celer_exec::gpu::Box3::d1(0, bytes.len());
        let layout = celer_exec::transfer::AllocLayout { bounds, elem_size: 1 };
        for (target, _) in targets.iter().filter(|(_, r)| !r.is_empty()) {
            let token = self.token();
            self.stats.bytes_sent += bytes.len() as u64;
            self.engine
                .send(key_of(transfer), target.0 as i32, bounds, &layout, &bytes, token)
                .map_err(|e| fail(e.into()))?;
        }
        Ok(None)
    }

    /// Combines block reduction `reduction` from the tree nodes of every rank (this one's and the gathered ones) in
    /// the fixed tree, and collects the upload of the result into `buffer`.
    fn combine_blocks(
        &mut self,
        buffer: BufferId,
        reduction: ReductionId,
        cmd: CommandId,
    ) -> Result<InFlight, RuntimeError> {
        let info = self.reductions[&reduction].clone();
        let grid = info.blocks.ok_or(RuntimeError::Internal("a block reduction without blocks"))?;
        let size = info.kind.size();
        let mut nodes = Vec::new();
        if let Some((r, bytes)) = self.block_roots.get(&buffer) {
            if *r == reduction {
                nodes.extend(crate::blocks::decode(bytes, size));
            }
        }
        if let Some(g) = self.gathered.remove(&reduction) {
            for p in g.pieces() {
                nodes.extend(crate::blocks::decode(p.bytes(), size));
            }
            self.engine.recycle(g);
        }
        let me = self.node;
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| info.block_root(grid.count(), &nodes)))
            .map_err(|panic| combine_panicked(me, reduction, &info, &*panic))?
            .map_err(|missing| RuntimeError::BlockMissing { node: me, reduction, buffer, missing })?;
        self.upload_result(buffer, reduction, result, cmd)?;
        Ok(InFlight::Gpu(self.open(), AfterGpu::Done))
    }

    /// Collects the upload of a deterministic reduction's result into its one-element buffer, written by command
    /// `cmd`; the result's bytes stay known on the host (`known_results`), so a fence that reads what `cmd` wrote
    /// is answered without reading it back ([`RankLoop::known_result`]).
    fn upload_result(
        &mut self,
        buffer: BufferId,
        reduction: ReductionId,
        result: Vec<u8>,
        cmd: CommandId,
    ) -> Result<(), RuntimeError> {
        self.known_results.insert(buffer, (cmd, result.clone()));
        self.upload_reduction(buffer, reduction, result)
    }

    /// Collects the upload of a reduction's result into its one-element buffer.
    fn upload_reduction(
        &mut self,
        buffer: BufferId,
        reduction: ReductionId,
        result: Vec<u8>,
    ) -> Result<(), RuntimeError> {
        let extent = self.buffers[&buffer].extent;
        self.cover(buffer, &extent)?;
        self.pending.push(GpuOp::Upload {
            buffer,
            boxes: smallvec::smallvec![box3(&extent)],
            bytes: Arc::new(result),
            bounds: extent,
            context: OpContext::Reduction(reduction),
        });
        Ok(())
    }

    /// Records the operation and element type of each reduction of the task `spec`, which becomes task `task`
    /// (every rank knows them all).
    pub(in crate::runtime) fn record_reductions(&mut self, spec: &TaskSpec, task: TaskId) -> Result<(), RuntimeError> {
        if spec.reductions.is_empty() {
            return Ok(());
        }
        let payload = spec.payload.as_ref().and_then(|p| p.downcast_ref::<KernelPayload>());
        for (i, r) in spec.reductions.iter().enumerate() {
            let kind = *payload
                .and_then(|k| k.reduction_kinds.get(i))
                .ok_or(RuntimeError::ReductionWithoutType { buffer: r.buffer })?;
            let custom = payload.and_then(|k| k.custom_reductions.get(i).cloned().flatten());
            if r.op == ReductionOp::Custom && custom.is_none() {
                return Err(RuntimeError::ReductionWithoutCombiner { buffer: r.buffer });
            }
            let blocks = payload.and_then(|k| k.blocks).map(|size| BlockGrid::new(&spec.range, size));
            if blocks.is_some() && r.include_current_value {
                return Err(RuntimeError::Internal("a block reduction that includes the buffer's current value"));
            }
            let info = ReductionInfo {
                op: r.op,
                kind,
                custom,
                task: celer_graph::TaskIdent { id: task, name: spec.name.clone() },
                blocks,
            };
            self.reductions.insert(r.id, r.buffer, task, info);
        }
        Ok(())
    }

    /// Starts the await-push `cmd` of `reduction`: the engine gathers every other rank's partial result.
    pub(in crate::runtime) fn start_gather(
        &mut self,
        cmd: &Command,
        transfer: &celer_graph::TransferId,
        reduction: ReductionId,
    ) -> Result<Option<InFlight>, RuntimeError> {
        let fail = failure(self.node, cmd);
        let token = self.token();
        let key = key_of(transfer);
        let senders = self.nodes as usize - 1;
        self.engine.expect_gather(key, senders, token).map_err(|e| fail(self.transfer_failed(e)))?;
        Ok(Some(InFlight::Gather { key, reduction }))
    }

    /// Advances a gather: once every partial result arrived, keeps them for the reduction command.
    pub(in crate::runtime) fn finish_gather(&mut self, key: TransferKey, reduction: ReductionId) -> Option<InFlight> {
        match self.engine.take_gathered(key) {
            Some(g) => {
                // Partial results count as received, as their pushes count as sent.
                self.stats.bytes_received += g.pieces().iter().map(|p| p.bytes().len() as u64).sum::<u64>();
                self.gathered.insert(reduction, g);
                None
            }
            None => Some(InFlight::Gather { key, reduction }),
        }
    }

    /// Starts reduction command `cmd`: collects the download of this rank's partial result, if it has one.
    pub(in crate::runtime) fn start_reduction(
        &mut self,
        cmd: &Command,
        reduction: ReductionId,
        buffer: BufferId,
        has_local_contribution: bool,
    ) -> Result<Option<InFlight>, RuntimeError> {
        if self.reductions.get(&reduction).is_some_and(|r| r.blocks.is_some()) {
            return self.combine_blocks(buffer, reduction, cmd.id).map(Some);
        }
        let fail = failure(self.node, cmd);
        let download = if has_local_contribution {
            let extent = self.buffers[&buffer].extent;
            self.cover(buffer, &extent).map_err(&fail)?;
            Some(self.pend_download(buffer, extent, OpContext::command(self.node, cmd, CommandWork::Reduction)))
        } else {
            None
        };
        Ok(Some(InFlight::Gpu(self.open(), AfterGpu::Reduce { buffer, reduction, download })))
    }

    /// Combines the local partial result (downloaded) with the gathered ones in rank order, so every rank computes
    /// bit-identical results, and collects the upload of the result.
    pub(in crate::runtime) fn finish_reduction(
        &mut self,
        buffer: BufferId,
        reduction: ReductionId,
        download: Option<Dl>,
    ) -> Result<InFlight, RuntimeError> {
        let info = self.reductions[&reduction].clone();
        let me = self.node;
        let mut local = vec![0u8; info.kind.size()];
        let extent = self.buffers[&buffer].extent;
        if let Some(d) = download {
            self.gpu.read_download(d.id()?, &mut local, box3(&extent))?;
        }
        let gathered = self.gathered.remove(&reduction);
        // Combine in rank order, so every rank computes bit-identical results.
        let mut parts: Vec<(i32, &[u8])> = Vec::new();
        if download.is_some() {
            parts.push((me, &local));
        }
        if let Some(g) = &gathered {
            parts.extend(g.pieces().iter().filter(|p| !p.bytes().is_empty()).map(|p| (p.sender(), p.bytes())));
        }
        parts.sort_by_key(|p| p.0);
        let slices: Vec<&[u8]> = parts.iter().map(|p| p.1).collect();
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| info.combine(&slices)))
            .map_err(|p| combine_panicked(me, reduction, &info, &*p))?
            .map_err(|n| self.not_commutative(reduction, buffer, &info, &n))?;
        if let Some(g) = gathered {
            self.engine.recycle(g);
        }
        self.upload_reduction(buffer, reduction, result)?;
        Ok(InFlight::Gpu(self.open(), AfterGpu::Done))
    }
}

impl RankLoop<'_> {
    /// The error of a `reduce_with` combine closure whose two orders gave different results (`n`).
    fn not_commutative(
        &self,
        reduction: ReductionId,
        buffer: BufferId,
        info: &ReductionInfo,
        n: &NotCommutative,
    ) -> RuntimeError {
        let show = |b: &[u8]| show_element(info.kind, b);
        RuntimeError::CombineNotCommutative(Box::new(super::super::error::CombineNotCommutative {
            node: self.node,
            reduction,
            task: info.task.clone(),
            buffer: self.buffer_ident(buffer),
            a: show(&n.a),
            b: show(&n.b),
            ab: show(&n.ab),
            ba: show(&n.ba),
        }))
    }
}

/// The error of a `reduce_with` combine closure that panicked.
fn combine_panicked(
    node: i32,
    reduction: ReductionId,
    info: &ReductionInfo,
    panic: &(dyn std::any::Any + Send),
) -> RuntimeError {
    let task = info.task.name.as_deref().map_or(String::new(), |n| format!(" of task \"{n}\""));
    RuntimeError::CombinePanicked { node, reduction, task, message: super::super::panics::panic_text(panic) }
}
