//! Reductions: element types and operators, gathering the ranks' partial results and combining them.

use std::sync::Arc;

use celer_exec::transfer::TransferKey;
use celer_graph::{BufferId, Command, ReductionId, ReductionOp, TaskSpec};

use super::batch::{Dl, GpuOp};
use super::commands::{AfterGpu, InFlight};
use super::error::{command_context, failure, RuntimeError};
use super::kernel::KernelPayload;
use super::transfer::key_of;
use super::{box3, RankLoop};

/// The element type of a reduction result, which decides how partial results combine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScalarKind {
    /// `i32`.
    I32,
    /// `u32`.
    U32,
    /// `i64`.
    I64,
    /// `u64`.
    U64,
    /// `f32`.
    F32,
    /// `f64`.
    F64,
}

macro_rules! reduce_as {
    ($kind:expr, $op:expr, $bytes:expr, $($k:ident => $t:ty),*) => {
        match $kind { $(ScalarKind::$k => {
            let vals = $bytes.iter().map(|b: &&[u8]| <$t>::from_ne_bytes((*b).try_into().expect("one element")));
            let r = match $op {
                ReductionOp::Sum => vals.fold(0 as $t, |a, b| a + b),
                ReductionOp::Min => vals.fold(<$t>::MAX, |a, b| if b < a { b } else { a }),
                ReductionOp::Max => vals.fold(<$t>::MIN, |a, b| if b > a { b } else { a }),
                // Custom reductions fold with their own function (`ReductionInfo::combine`), never here.
                ReductionOp::Custom => vals.fold(0 as $t, |a, _| a),
            };
            r.to_ne_bytes().to_vec()
        })* }
    };
}

impl ScalarKind {
    /// Bytes of one element.
    pub fn size(self) -> usize {
        match self {
            ScalarKind::I32 | ScalarKind::U32 | ScalarKind::F32 => 4,
            _ => 8,
        }
    }

    /// The identity of `op` (what a rank's partial starts from).
    pub(super) fn identity(self, op: ReductionOp) -> Vec<u8> {
        self.combine(op, &[])
    }

    /// Folds `parts` (one element each, in rank order) with `op`, starting from the identity.
    pub(super) fn combine(self, op: ReductionOp, parts: &[&[u8]]) -> Vec<u8> {
        // Float min/max start from the largest/smallest finite values, which any real number beats.
        reduce_as!(self, op, parts, I32 => i32, U32 => u32, I64 => i64, U64 => u64, F32 => f32, F64 => f64)
    }
}

/// How a user-defined reduction combines two elements (their bytes) into one.
pub type CombineFn = dyn Fn(&[u8], &[u8]) -> Vec<u8> + Send + Sync;

/// A user-defined reduction's host side: the identity every rank's partial result starts from, and how two results
/// combine (one element each, as bytes); the runtime folds the ranks' partials with it in rank order.
#[derive(Clone)]
pub struct CustomReduction {
    /// The identity element's bytes.
    pub identity: Vec<u8>,
    /// Combines two elements' bytes into one.
    pub combine: Arc<CombineFn>,
}

impl std::fmt::Debug for CustomReduction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CustomReduction").field("identity", &self.identity).finish_non_exhaustive()
    }
}

/// What the runtime knows of a reduction: its operator and element type, and for user-defined ones how to combine.
#[derive(Clone, Debug)]
pub(super) struct ReductionInfo {
    pub(super) op: ReductionOp,
    pub(super) kind: ScalarKind,
    pub(super) custom: Option<CustomReduction>,
    /// The name of the task that declared it, for messages.
    pub(super) task: Option<std::sync::Arc<str>>,
}

impl ReductionInfo {
    /// The identity a rank's partial result starts from.
    pub(super) fn identity(&self) -> Vec<u8> {
        match &self.custom {
            Some(c) => c.identity.clone(),
            None => self.kind.identity(self.op),
        }
    }

    /// Folds `parts` (one element each, in rank order), starting from the identity.
    pub(super) fn combine(&self, parts: &[&[u8]]) -> Vec<u8> {
        match &self.custom {
            Some(c) => parts.iter().fold(c.identity.clone(), |acc, p| (c.combine)(&acc, p)),
            None => self.kind.combine(self.op, parts),
        }
    }
}

impl RankLoop<'_> {
    /// Records the operation and element type of each reduction of the task `spec` (every rank knows them all).
    pub(super) fn record_reductions(&mut self, spec: &TaskSpec) -> Result<(), RuntimeError> {
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
            self.reductions.insert(r.id, ReductionInfo { op: r.op, kind, custom, task: spec.name.clone() });
        }
        Ok(())
    }

    /// Starts the await-push `cmd` of `reduction`: the engine gathers every other rank's partial result.
    pub(super) fn start_gather(
        &mut self,
        cmd: &Command,
        transfer: &celer_graph::TransferId,
        reduction: ReductionId,
    ) -> Result<Option<InFlight>, RuntimeError> {
        let fail = failure(self.node, cmd);
        let token = self.token();
        let key = key_of(transfer);
        let senders = self.nodes as usize - 1;
        self.engine.expect_gather(key, senders, token).map_err(|e| fail(e.into()))?;
        Ok(Some(InFlight::Gather { key, reduction }))
    }

    /// Advances a gather: once every partial result arrived, keeps them for the reduction command.
    pub(super) fn finish_gather(&mut self, key: TransferKey, reduction: ReductionId) -> Option<InFlight> {
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
    pub(super) fn start_reduction(
        &mut self,
        cmd: &Command,
        reduction: ReductionId,
        buffer: BufferId,
        has_local_contribution: bool,
    ) -> Result<Option<InFlight>, RuntimeError> {
        let fail = failure(self.node, cmd);
        let download = if has_local_contribution {
            let extent = self.buffers[&buffer].extent;
            self.cover(buffer, &extent).map_err(&fail)?;
            Some(self.pend_download(buffer, extent, &command_context(self.node, cmd, "reduction")))
        } else {
            None
        };
        Ok(Some(InFlight::Gpu(self.open(), AfterGpu::Reduce { buffer, reduction, download })))
    }

    /// Combines the local partial result (downloaded) with the gathered ones in rank order, so every rank computes
    /// bit-identical results, and collects the upload of the result.
    pub(super) fn finish_reduction(
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
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| info.combine(&slices))).map_err(|p| {
            let task = info.task.as_deref().map_or(String::new(), |n| format!(" of task \"{n}\""));
            RuntimeError::CombinePanicked { node: me, reduction, task, message: super::panics::panic_text(&*p) }
        })?;
        if let Some(g) = gathered {
            self.engine.recycle(g);
        }
        self.cover(buffer, &extent)?;
        self.pending.push(GpuOp::Upload {
            buffer,
            region: extent,
            bytes: Arc::new(result),
            bounds: extent,
            context: format!("reduction {reduction}"),
        });
        Ok(InFlight::Gpu(self.open(), AfterGpu::Done))
    }
}
