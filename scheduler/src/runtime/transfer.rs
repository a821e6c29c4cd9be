//! Transfers: pushes (download into host-visible staging, then send from it) and await-pushes (receive into
//! host-visible staging, then upload from it), through staging memory of the GPU lent to the transfer engine
//! ([`Lent`]): no host copy between the GPU's copy and MPI.

use celer_exec::gpu::{Box3, HostStaging};
use celer_exec::transfer::{CompletionKind, Token, TransferKey};
use celer_graph::{BufferId, Command, GridBox, NodeId, Region};
use smallvec::SmallVec;

use super::batch::{Dl, GpuOp};
use super::boxes::box3;
use super::commands::{AfterGpu, InFlight};
use super::error::{failure, CommandWork, OpContext, RuntimeError};
use super::RankLoop;

/// The GPU's staging memory lent to the transfer engine: what pushes send from until the engine reports them sent,
/// and what await-pushes receive into (one buffer per region, its boxes packed one after another) until they
/// arrive, by token.
#[derive(Default)]
pub(super) struct Lent {
    sends: Vec<LentSend>,
    receives: Vec<(Token, Staged)>,
}

/// One push's staging to one rank: the boxes of its region packed one after another, sent by one
/// `send_lent_boxes` with `token`, back to the pool once that send completed.
struct LentSend {
    token: Token,
    staging: HostStaging,
}

/// An await-push's staging: one buffer holding the boxes of its region packed one after another
/// (`celer_exec::gpu::packed_offsets`), whatever their number.
type Staged = (SmallVec<[GridBox; 2]>, HostStaging);

impl Drop for Lent {
    /// Sends still in flight when the loop goes (after an error): the engine's drop left them to MPI, which may
    /// still read their memory, so it is never freed. (Receives were cancelled by the engine's drop, which ran
    /// first.)
    fn drop(&mut self) {
        for send in self.sends.drain(..) {
            std::mem::forget(send.staging);
        }
    }
}

/// The transfer engine's key of a command graph transfer.
pub(super) fn key_of(t: &celer_graph::TransferId) -> TransferKey {
    TransferKey(t.task.0, t.buffer.0, t.reduction.map_or(u64::MAX, |r| r.0))
}

impl RankLoop<'_> {
    /// The error of a failed poll of the transfer engine: cells announced outside what this rank expects, or twice,
    /// become [`RuntimeError::TransferDisagrees`], naming the task and the buffer.
    pub(super) fn transfer_failed(&self, e: celer_exec::transfer::TransferError) -> RuntimeError {
        use celer_exec::transfer::TransferError;
        let key = match &e {
            TransferError::OutsideRegion { key, .. } | TransferError::Duplicate { key, .. } => *key,
            _ => return e.into(),
        };
        let id = celer_graph::TaskId(key.0);
        let task = self.tm.task(id).map_or_else(|| format!("task {id}"), |t| t.ident().to_string());
        let buffer = self.tm.buffer_ident(BufferId(key.1)).to_string();
        let unchecked = self.divergence.as_ref().is_some_and(|d| !d.enabled);
        RuntimeError::TransferDisagrees { node: self.node, task, buffer, error: Box::new(e), unchecked }
    }

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
        // The bounding box at once: box by box, a region of many boxes would grow the allocation once per box.
        let hull = GridBox::bounding_box_of_iter(targets.iter().map(|(_, r)| r.bounding_box()));
        self.cover(transfer.buffer, &hull).map_err(&fail)?;
        let context = OpContext::command(self.node, cmd, CommandWork::Push);
        let mut downloads = Vec::new();
        let mut peers = SmallVec::new();
        let key = key_of(transfer);
        for (target, region) in targets {
            // To a device of this rank on this Vulkan device: offered for a GPU copy (not a reduction's partial
            // result, which the receiver gathers on the host).
            let peer = if transfer.reduction.is_none() { self.is_peer(*target) } else { None };
            match peer {
                Some(to) => {
                    for b in region.boxes() {
                        peers.push(self.offer_box(transfer.buffer, to, key, *b)?);
                    }
                }
                // Every box of the region in one download, packed: one staging buffer of the bytes sent, however
                // many boxes the region has.
                None => {
                    let boxes = region.boxes().iter().map(box3).collect();
                    let d = self.pend_download_boxes(transfer.buffer, boxes, context);
                    downloads.push((d, *target, region.clone()));
                }
            }
        }
        if downloads.is_empty() {
            // Only GPU copies: nothing to wait for on the host but the receivers' acks (the open batch posts the
            // offers when it is submitted).
            self.open();
            return Ok(Some(InFlight::PeerSent { acks: peers }));
        }
        Ok(Some(InFlight::Gpu(self.open(), AfterGpu::Push { buffer: transfer.buffer, downloads, key, peers })))
    }

    /// Sends what a push downloaded, one engine send per target rank from the download's staging memory (the
    /// region's boxes packed one after another; lent to the engine until the send completed:
    /// [`return_sent`](Self::return_sent)); the engine groups small boxes, many to a message.
    pub(super) fn send_pushed(
        &mut self,
        buffer: BufferId,
        downloads: Vec<(Dl, NodeId, Region)>,
        key: TransferKey,
    ) -> Result<(), RuntimeError> {
        let elem_size = self.buffers[&buffer].elem_size;
        for (d, target, region) in downloads {
            let staging = self.gpu.take_download(d.id()?)?;
            let token = self.token();
            self.stats.bytes_sent += (region.area() * elem_size) as u64;
            if let Some(trace) = &mut self.trace {
                let what = match region.boxes() {
                    [b] => format!("push {buffer} {b} to rank {}", target.0),
                    boxes => {
                        format!("push {buffer} {} ({} boxes) to rank {}", region.bounding_box(), boxes.len(), target.0)
                    }
                };
                trace.instant(crate::trace::Row::Send, what, std::time::Instant::now());
            }
            let boxes: SmallVec<[Box3; 4]> = region.boxes().iter().map(box3).collect();
            // SAFETY: the staging holds the region's boxes packed one after another in the order of `region.boxes()`
            // (the download of them, `celer_exec::gpu::packed_offsets`); it stays in `self.lent`, untouched, until
            // `return_sent` has seen the completion of `token`, or forever if the loop ends first (`Lent`'s drop).
            let sent = unsafe {
                self.engine.send_lent_boxes(key, target.0 as i32, &boxes, elem_size, staging.as_ptr(), token)
            };
            // Lent even after a failed send: messages started before it may still read the memory.
            self.lent.sends.push(LentSend { token, staging });
            sent?;
        }
        Ok(())
    }

    /// Gives the staging memory of pushes whose sends all completed back to the GPU's pool.
    pub(super) fn return_sent(&mut self) {
        if self.lent.sends.is_empty() {
            return;
        }
        for c in self.completions.iter().filter(|c| c.kind == CompletionKind::Sent) {
            if let Some(i) = self.lent.sends.iter().position(|s| s.token == c.token) {
                let send = self.lent.sends.swap_remove(i);
                self.gpu.give_staging(send.staging);
            }
        }
    }

    /// Starts await-push `cmd` (not of a reduction): the engine receives the pieces of `region` into host-visible
    /// staging of the GPU, one buffer holding its boxes packed one after another, which the upload then copies
    /// from.
    pub(super) fn start_await_push(
        &mut self,
        cmd: &Command,
        transfer: &celer_graph::TransferId,
        region: &Region,
    ) -> Result<Option<InFlight>, RuntimeError> {
        let fail = failure(self.node, cmd);
        let token = self.token();
        let elem_size = self.buffers[&transfer.buffer].elem_size;
        // Packed: a halo column of a large field is a few pages, not one page per row of the field, and a region
        // of many tiny boxes (a custom mapper's) one buffer of its bytes, not a buffer per box.
        let mut staging = self.gpu.host_staging(region.area() * elem_size).map_err(|e| fail(e.into()))?;
        let base = staging.as_mut_ptr();
        let mut at = 0;
        let targets: SmallVec<[(Box3, *mut u8); 2]> = region
            .boxes()
            .iter()
            .map(|b| {
                // SAFETY: the boxes' bytes packed one after another sum to `region.area() * elem_size`, the
                // staging's length, so `at` stays inside it.
                let target = (box3(b), unsafe { base.add(at) });
                at += b.area() * elem_size;
                target
            })
            .collect();
        let key = key_of(transfer);
        // SAFETY: each target points at its box's byte size of a lent staging buffer (packed, disjoint); it stays
        // in `self.lent` untouched until the completion for `token` (`finish_await_push`), and the engine is
        // dropped before `self.lent`.
        if let Err(e) = unsafe { self.engine.expect_into(key, &targets, elem_size, token) } {
            // A header that arrived before this expect may already disagree with it (see `transfer_failed`).
            let e = self.transfer_failed(e);
            self.gpu.give_staging(staging);
            return Err(fail(e));
        }
        self.lent.receives.push((token, (region.boxes().iter().copied().collect(), staging)));
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
        let i = self.lent.receives.iter().position(|(t, _)| *t == token).ok_or(RuntimeError::MissingData { buffer })?;
        let (_, (boxes, staging)) = self.lent.receives.swap_remove(i);
        // Boxes other devices of this rank offered for GPU copies: recorded after the upload (whose staging holds
        // unspecified bytes where they lie), and if they cover every box whole nothing is uploaded at all.
        let offers = self.take_peer_in(key);
        // The bounding box at once: box by box, a region of many boxes (a custom mapper's scattered cells) grew the
        // allocation once per box, each growth a submission, a device copy and an upload of the new cells.
        self.cover(buffer, &region.bounding_box())?;
        let mut covered = 0;
        for b in &boxes {
            if !offers.is_empty() && offers.iter().map(|o| o.region.intersection(b).area()).sum::<usize>() == b.area() {
                covered += 1;
            }
        }
        if covered == boxes.len() {
            self.gpu.give_staging(staging);
        } else {
            // One upload of every box (TODO(perf): skip the boxes offers cover whole, which the peer copies
            // overwrite; the packed layout has no gaps to skip them by).
            self.pending.push(GpuOp::UploadStaged {
                buffer,
                boxes: boxes.iter().map(box3).collect(),
                staging,
                context: OpContext::AwaitPush(buffer),
            });
        }
        self.pend_peer_copies(buffer, offers)?;
        Ok(Some(InFlight::Gpu(self.open(), AfterGpu::Done)))
    }
}
