//! Transfers: pushes (download, then send packed) and await-pushes (receive, then upload the pieces).

use std::sync::Arc;

use celer_exec::gpu::Box3;
use celer_exec::transfer::{AllocLayout, CompletionKind, Token, TransferKey};
use celer_graph::{BufferId, Command, GridBox, NodeId, Region};

use super::batch::{Dl, GpuOp};
use super::commands::{AfterGpu, InFlight};
use super::error::{failure, CommandWork, OpContext, RuntimeError};
use super::{box3, RankLoop};

/// The transfer engine's key of a command graph transfer.
pub(super) fn key_of(t: &celer_graph::TransferId) -> TransferKey {
    TransferKey(t.task.0, t.buffer.0, t.reduction.map_or(u64::MAX, |r| r.0))
}

impl RankLoop<'_> {
    /// A fresh token for a send or receive of the transfer engine.
    pub(super) fn token(&mut self) -> Token {
        self.next_token += 1;
        Token(self.next_token)
    }

    /// Starts push `cmd`: sends the empty notices at once, and collects the downloads of what it sends.
    pub(super) fn start_push(
        &mut self,
        cmd: &Command,
        transfer: &celer_graph::TransferId,
        targets: &[(NodeId, Region)],
    ) -> Result<Option<InFlight>, RuntimeError> {
        let fail = failure(self.node, cmd);
        // Empty regions are "nothing from me" notices of reductions: a header alone.
        for (target, _) in targets.iter().filter(|(_, r)| r.is_empty()) {
            let token = self.token();
            self.engine.send_empty(key_of(transfer), target.0 as i32, token).map_err(|e| fail(e.into()))?;
        }
        if targets.iter().all(|(_, r)| r.is_empty()) {
            return Ok(None);
        }
        // A deterministic reduction sends the nodes of its tree that this rank computed, from the host.
        if let Some(r) = transfer.reduction.filter(|r| self.reductions.get(r).is_some_and(|i| i.blocks.is_some())) {
            return self.push_block_roots(cmd, transfer, r, targets);
        }
        for (_, region) in targets {
            for b in region.boxes() {
                self.cover(transfer.buffer, b).map_err(&fail)?;
            }
        }
        let context = OpContext::command(self.node, cmd, CommandWork::Push);
        let mut downloads = Vec::new();
        for (target, region) in targets {
            for b in region.boxes() {
                downloads.push((self.pend_download(transfer.buffer, *b, context), *target, *b));
            }
        }
        Ok(Some(InFlight::Gpu(
            self.open(),
            AfterGpu::Push { buffer: transfer.buffer, downloads, key: key_of(transfer) },
        )))
    }

    /// Sends what a push downloaded, box by box, packed.
    pub(super) fn send_pushed(
        &mut self,
        buffer: BufferId,
        downloads: Vec<(Dl, NodeId, GridBox)>,
        key: TransferKey,
    ) -> Result<(), RuntimeError> {
        let elem_size = self.buffers[&buffer].elem_size;
        for (d, target, b) in downloads {
            // Packed: the box's cells only (a strided column of a large field would otherwise be
            // scattered into, and gathered from, a copy of the whole buffer, one page per row).
            let mut packed = std::mem::take(&mut self.send_scratch);
            packed.resize(b.area() * elem_size, 0);
            self.gpu.read_download(d.id()?, &mut packed, box3(&b))?;
            let layout = AllocLayout { bounds: box3(&b), elem_size };
            self.next_token += 1;
            self.stats.bytes_sent += (b.area() * elem_size) as u64;
            if let Some(trace) = &mut self.trace {
                let what = format!("push {buffer} {b} to rank {}", target.0);
                trace.instant(crate::trace::Row::Send, what, std::time::Instant::now());
            }
            // The engine copies the cells into its own send buffer before returning.
            self.engine.send(key, target.0 as i32, box3(&b), &layout, &packed, Token(self.next_token))?;
            self.send_scratch = packed;
        }
        Ok(())
    }

    /// Starts await-push `cmd` (not of a reduction): the engine receives the pieces of `region`.
    pub(super) fn start_await_push(
        &mut self,
        cmd: &Command,
        transfer: &celer_graph::TransferId,
        region: &Region,
    ) -> Result<Option<InFlight>, RuntimeError> {
        let fail = failure(self.node, cmd);
        let token = self.token();
        let elem_size = self.buffers[&transfer.buffer].elem_size;
        // The engine keeps the payloads packed as they arrive; each is uploaded from there. No host copy
        // of the buffer: a halo column of a large field touches a few pages, not one page per row.
        let boxes: Vec<Box3> = region.boxes().iter().map(box3).collect();
        let key = key_of(transfer);
        self.engine.expect_pieces(key, &boxes, elem_size, token).map_err(|e| fail(e.into()))?;
        Ok(Some(InFlight::Receive {
            buffer: transfer.buffer,
            region: region.clone(),
            token,
            since: std::time::Instant::now(),
            key,
        }))
    }

    /// Advances an await-push: once its data arrived, collects the uploads of the pieces.
    pub(super) fn finish_await_push(
        &mut self,
        buffer: BufferId,
        region: Region,
        token: Token,
        since: std::time::Instant,
        key: TransferKey,
    ) -> Result<Option<InFlight>, RuntimeError> {
        let arrived = self.completions.iter().any(|c| c.token == token && c.kind == CompletionKind::Received);
        if !arrived {
            return Ok(Some(InFlight::Receive { buffer, region, token, since, key }));
        }
        let state = &self.buffers[&buffer];
        self.stats.bytes_received += (region.area() * state.elem_size) as u64;
        self.stats.receive_time += since.elapsed();
        if self.trace.is_some() {
            let what = format!("await-push {} ({} cells)", self.buffer_ident(buffer), region.area());
            if let Some(trace) = &mut self.trace {
                trace.span(crate::trace::Row::Receive, what, since, std::time::Instant::now());
            }
        }
        let pieces = self.engine.take_gathered(key).ok_or(RuntimeError::MissingData { buffer })?;
        for piece in pieces.pieces().iter().filter(|p| !p.bounds().is_empty()) {
            let b = piece.bounds();
            let bounds = GridBox::new(b.min(), b.max());
            self.cover(buffer, &bounds)?;
            self.pending.push(GpuOp::Upload {
                buffer,
                region: bounds,
                bytes: Arc::new(piece.bytes().to_vec()),
                bounds,
                context: OpContext::AwaitPush(buffer),
            });
        }
        self.engine.recycle(pieces);
        Ok(Some(InFlight::Gpu(self.open(), AfterGpu::Done)))
    }
}
