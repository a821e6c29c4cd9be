//! Halos between two devices of a rank that share one Vulkan device, copied on the GPU (`CELER_PEER_COPIES`).
//!
//! A push to such a device downloads nothing: once the batch that holds it (and, in submission order, every write
//! of the pushed cells) is submitted, the sender posts an [`Offer`] in the rank's [`PeerMail`]: the transfer key,
//! the box, a handle to its allocation (which keeps the memory alive) and the point on its timeline at which the
//! data is complete. The receiving loop takes its offers at the start of each step, tells its transfer engine that
//! those cells arrived another way (so an await-push fed partly over MPI, partly by a peer, completes as usual),
//! and, when the await-push completes, records a copy from the sender's allocation into its own in its open
//! batch, which waits for the sender's timeline value on the GPU. Once that batch is submitted, the receiver posts
//! an ack holding the batch's point on its own timeline; the push completes then, and the sender's next batch waits
//! for that point on the GPU, so that later writers of those cells on the sender (which the command graph's
//! anti-dependencies order after the push) start on the GPU only after the copy has read them. Neither side waits
//! for the other on the host: a halo costs the two loops a message each through the mail.
//!
//! The mail is shared by the rank's loops, all stepped by the one runtime thread: an `Rc<RefCell<_>>`, no lock.

use std::cell::RefCell;
use std::rc::Rc;

use celer_exec::gpu::{BatchId, SharedAllocation, SignalPoint};
use celer_exec::transfer::TransferKey;
use celer_graph::GridBox;

use super::boxes::box3;

/// A box a device pushes to another device of its rank, for that device to copy on the GPU.
pub(super) struct Offer {
    /// The receiving device (index among the rank's devices).
    pub(super) to: usize,
    /// The sending device, and its node in the command graph.
    pub(super) from: usize,
    pub(super) from_node: i32,
    pub(super) key: TransferKey,
    pub(super) region: GridBox,
    /// The sender's allocation of the buffer when the push was collected.
    pub(super) source: SharedAllocation,
    /// When the sender's writes of `region` are complete.
    pub(super) ready: SignalPoint,
    /// What the receiver acks once its copy has completed.
    pub(super) ack: u64,
}

/// Offers and acks between the loops of one rank's devices.
#[derive(Default)]
pub(super) struct PeerMail {
    offers: Vec<Offer>,
    /// (sending device, ack, the receiver's batch holding the copy) of copies submitted.
    acks: Vec<(usize, u64, SignalPoint)>,
}

/// A loop's link to its rank's other devices.
pub(super) struct PeerLink {
    pub(super) mail: Rc<RefCell<PeerMail>>,
    /// Per device of the rank: whether halos to it are copied on the GPU (it shares this loop's Vulkan device,
    /// with timeline semaphores, and is not this device).
    pub(super) peers: Vec<bool>,
}

/// An offer collected in the open batch, posted once the batch is submitted (when its timeline value is known).
pub(super) struct PendingOffer {
    pub(super) to: usize,
    pub(super) key: TransferKey,
    pub(super) region: GridBox,
    pub(super) source: SharedAllocation,
    pub(super) ack: u64,
}

impl PeerMail {
    /// Posts an offer.
    pub(super) fn offer(&mut self, offer: Offer) {
        self.offers.push(offer);
    }

    /// Moves the offers to device `to` into `out`; returns whether there were any.
    pub(super) fn take_offers(&mut self, to: usize, out: &mut Vec<Offer>) -> bool {
        if self.offers.is_empty() {
            return false;
        }
        let before = out.len();
        let mut i = 0;
        while i < self.offers.len() {
            if self.offers[i].to == to {
                out.push(self.offers.remove(i));
            } else {
                i += 1;
            }
        }
        out.len() > before
    }

    /// Posts the ack of device `from`'s offer `ack`, whose copy is in the receiver's batch `copied`.
    pub(super) fn ack(&mut self, from: usize, ack: u64, copied: SignalPoint) {
        self.acks.push((from, ack, copied));
    }

    /// Removes from `waiting` the acks device `from` received, and appends their copies' batches to `copied`.
    pub(super) fn take_acks(
        &mut self,
        from: usize,
        waiting: &mut smallvec::SmallVec<[u64; 2]>,
        copied: &mut Vec<SignalPoint>,
    ) {
        self.acks.retain(|(device, ack, point)| {
            let mine = *device == from && waiting.contains(ack);
            if mine {
                waiting.retain(|a| a != ack);
                copied.push(point.clone());
            }
            !mine
        });
    }
}

impl super::RankLoop<'_> {
    /// Links this loop to the other devices of its rank (`CELER_PEER_COPIES`): `peers[k]` says whether halos to
    /// device `k` are copied on the GPU (it shares this loop's Vulkan device, with timeline semaphores).
    pub(super) fn link_peers(&mut self, link: PeerLink) {
        self.peer = Some(link);
    }

    /// Whether this device is a node of this rank other than this loop's to which halos go by GPU copies.
    pub(super) fn is_peer(&self, node: celer_graph::NodeId) -> Option<usize> {
        let peer = self.peer.as_ref()?;
        let devices = self.devices as u64;
        let (rank, device) = (node.0 / devices, (node.0 % devices) as usize);
        (rank == self.node as u64 / devices && peer.peers.get(device).copied().unwrap_or(false)).then_some(device)
    }

    /// Collects box `region` of `buffer` of push `key` as an offer to device `to`, posted once the open batch is
    /// submitted; returns the ack to wait for. The allocation covers the box already (`start_push`).
    pub(super) fn offer_box(
        &mut self,
        buffer: celer_graph::BufferId,
        to: usize,
        key: TransferKey,
        region: GridBox,
    ) -> Result<u64, super::RuntimeError> {
        let source = self
            .buffers
            .get(&buffer)
            .and_then(|s| s.device.as_ref())
            .ok_or(super::RuntimeError::MissingData { buffer })?
            .share();
        let ack = self.token().0;
        self.peer_out.push(PendingOffer { to, key, region, source, ack });
        Ok(ack)
    }

    /// Posts the offers collected in batch `id`, just submitted: their data is complete when it completes (it
    /// starts with a barrier that orders it after every batch before it on this queue).
    pub(super) fn post_offers(&mut self, id: BatchId) -> Result<(), super::RuntimeError> {
        // Linked only with timeline semaphores (`thread::run`): an offer is never collected otherwise.
        let (Some(peer), Some(ready)) = (&self.peer, self.gpu.signal_point(id)) else {
            return Err(super::RuntimeError::Internal("a GPU copy between devices was offered without a timeline"));
        };
        let mut mail = peer.mail.borrow_mut();
        for p in self.peer_out.drain(..) {
            if let Some(trace) = &mut self.trace {
                let what = format!("offer B{} {} to device {} for a GPU copy", p.key.1, p.region, p.to);
                trace.instant(crate::trace::Row::Send, what, std::time::Instant::now());
            }
            let elem_size = self.buffers.get(&celer_graph::BufferId(p.key.1)).map_or(0, |s| s.elem_size);
            self.stats.bytes_sent += (p.region.area() * elem_size) as u64;
            mail.offer(Offer {
                to: p.to,
                from: self.device,
                from_node: self.node,
                key: p.key,
                region: p.region,
                source: p.source,
                ready: ready.clone(),
                ack: p.ack,
            });
        }
        Ok(())
    }

    /// Takes the offers other devices of this rank posted to this one: the transfer engine counts their cells as
    /// arrived (an await-push may get the rest of its region over MPI), and `peer_in` keeps them for the copy.
    /// Returns whether there were any.
    pub(super) fn take_offers(&mut self) -> Result<bool, super::RuntimeError> {
        let Some(peer) = &self.peer else { return Ok(false) };
        let start = self.peer_in.len();
        if !peer.mail.borrow_mut().take_offers(self.device, &mut self.peer_in) {
            return Ok(false);
        }
        for i in start..self.peer_in.len() {
            let o = &self.peer_in[i];
            let buffer = celer_graph::BufferId(o.key.1);
            let elem_size = self.buffers.get(&buffer).map_or(0, |s| s.elem_size);
            if let Err(e) = self.engine.arrived_elsewhere(o.key, o.from_node, box3(&o.region), elem_size) {
                return Err(self.transfer_failed(e));
            }
        }
        Ok(true)
    }

    /// The offers received for transfer `key`, taken out of `peer_in`.
    pub(super) fn take_peer_in(&mut self, key: TransferKey) -> Vec<Offer> {
        if self.peer_in.is_empty() {
            return Vec::new();
        }
        let mut taken = Vec::new();
        let mut i = 0;
        while i < self.peer_in.len() {
            if self.peer_in[i].key == key {
                taken.push(self.peer_in.swap_remove(i));
            } else {
                i += 1;
            }
        }
        taken
    }

    /// Collects the GPU copies of `offers` into `buffer`'s allocation (after the await-push's uploads).
    pub(super) fn pend_peer_copies(
        &mut self,
        buffer: celer_graph::BufferId,
        offers: Vec<Offer>,
    ) -> Result<(), super::RuntimeError> {
        for o in offers {
            self.cover(buffer, &o.region)?;
            self.stats.peer_copies += 1;
            self.pending.push(super::batch::GpuOp::PeerCopy {
                buffer,
                region: o.region,
                source: o.source,
                ready: o.ready,
                from: o.from,
                ack: o.ack,
                context: super::error::OpContext::AwaitPush(buffer),
            });
        }
        Ok(())
    }

    /// Posts the acks of the copies `acks` (sending device, ack) recorded in batch `id`, just submitted.
    pub(super) fn post_acks(&mut self, id: BatchId, acks: Vec<(usize, u64)>) -> Result<(), super::RuntimeError> {
        let (Some(peer), Some(copied)) = (&self.peer, self.gpu.signal_point(id)) else {
            return Err(super::RuntimeError::Internal("a GPU copy between devices was recorded without a timeline"));
        };
        let mut mail = peer.mail.borrow_mut();
        for (from, ack) in acks {
            mail.ack(from, ack, copied.clone());
        }
        Ok(())
    }

    /// What a push waiting for the acks `acks` becomes: finished once every receiver has submitted its copy; the
    /// next batch this loop submits waits for those copies on the GPU (`peer_waits`).
    pub(super) fn peers_acked(&mut self, mut acks: smallvec::SmallVec<[u64; 2]>) -> Option<super::commands::InFlight> {
        if acks.is_empty() {
            return None;
        }
        if let Some(peer) = &self.peer {
            peer.mail.borrow_mut().take_acks(self.device, &mut acks, &mut self.peer_waits);
        }
        (!acks.is_empty()).then_some(super::commands::InFlight::PeerSent { acks })
    }
}
