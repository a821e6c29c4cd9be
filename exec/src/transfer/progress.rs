//! Progress: posting header receives, handling completed requests, matching headers to expects, finishing transfers.

use super::header::{read_header_message, Header, HEADER_MESSAGE_MAX};
use super::state::{EarlyHeader, Expect, ExpectKind, Inbound, Op};
use super::{
    geometry, AllocLayout, BoxList, CellBox, Completion, CompletionKind, GatherPiece, Gathered, TransferEngine,
    TransferError, HEADER_SLOTS, HEADER_TAG,
};
use crate::gpu::{copy_runs, CopyRun};
use crate::mpi::{Communicator, Completed, Rank, RawRequest, Tag, ANY_SOURCE};

impl<'c> TransferEngine<'c> {
    /// The next payload tag: `1..=tag_ub`, wrapping, in this device's residue class (`device + 1` modulo the
    /// device count), so payloads from different devices of one rank never share a tag.
    pub(super) fn next_payload_tag(&mut self) -> Tag {
        let tag = self.next_tag;
        let step = self.comms.len() as Tag;
        self.next_tag = if tag > self.comm.tag_ub() - step { HEADER_TAG + 1 + self.device as Tag } else { tag + step };
        tag
    }

    /// This engine's node: `rank × devices + device`.
    pub(super) fn node(&self) -> Rank {
        self.comm.rank() * self.comms.len() as Rank + self.device as Rank
    }

    /// How many nodes there are: ranks × devices.
    pub(super) fn nodes(&self) -> Rank {
        self.comm.size() * self.comms.len() as Rank
    }

    /// The communicator and rank that reach node `n`.
    pub(super) fn route(&self, n: Rank) -> (&'c Communicator, Rank) {
        let d = self.comms.len() as Rank;
        (self.comms[(n % d) as usize], n / d)
    }

    pub(super) fn push_request(&mut self, request: RawRequest, op: Op) {
        self.requests.push(request);
        self.ops.push(op);
    }

    /// Posts the header receive of `slot`.
    pub(super) fn post_header_recv(&mut self, slot: usize) -> Result<(), TransferError> {
        debug_assert!(slot < HEADER_SLOTS);
        // SAFETY: `header_bufs` holds HEADER_SLOTS * HEADER_MESSAGE_MAX bytes, so the slot's range is in
        // bounds. The buffer is allocated once in `new`, never resized, read only through raw
        // pointers after the slot's receive completed (`handle`), and freed only after every
        // receive has completed or been leaked (`Drop`). No other receive uses this slot: a slot
        // is re-posted only after its previous receive completed.
        let ptr = unsafe { self.header_bufs.as_mut_ptr().add(slot * HEADER_MESSAGE_MAX) };
        // SAFETY: as above: the slot is writable for HEADER_MESSAGE_MAX bytes and untouched until the
        // request completes. A longer message fails the receive with MPI_ERR_TRUNCATE instead of overrunning it.
        let request = unsafe { self.comm.irecv_raw(ptr, HEADER_MESSAGE_MAX, ANY_SOURCE, HEADER_TAG) }?;
        self.push_request(request, Op::Header { slot });
        Ok(())
    }

    /// Moves the requests `MPI_Testsome` found complete out of the request array, into `finished`.
    pub(super) fn remove_done(&mut self) {
        // Descending, so that each swap_remove moves an entry that is not complete.
        self.done.sort_unstable_by_key(|c| std::cmp::Reverse(c.index));
        if self.finished_pos == self.finished.len() {
            self.finished.clear();
            self.finished_pos = 0;
        }
        for c in &self.done {
            debug_assert!(self.requests[c.index].is_null(), "MPI_Testsome nulls completed requests");
            self.requests.swap_remove(c.index);
            let op = self.ops.swap_remove(c.index);
            self.finished.push((op, *c));
        }
    }

    /// Handles completed requests in `finished`, stopping at the first error.
    pub(super) fn handle_finished(&mut self) -> Result<(), TransferError> {
        while self.finished_pos < self.finished.len() {
            let (op, c) = self.finished[self.finished_pos];
            self.finished_pos += 1;
            self.handle(op, &c)?;
        }
        Ok(())
    }

    /// Handles one completed request.
    pub(super) fn handle(&mut self, op: Op, c: &Completed) -> Result<(), TransferError> {
        if !matches!(op, Op::Send { .. }) {
            self.messages_received += 1;
        }
        match op {
            Op::Header { slot } => {
                let mut message = std::mem::take(&mut self.header_msg);
                message.clear();
                if c.result().is_ok() {
                    // MPI reports at most the receive's count; `min` keeps a misbehaving count inside the slot.
                    let len = c.bytes.min(HEADER_MESSAGE_MAX);
                    // SAFETY: the slot's receive has completed, so MPI no longer writes it; its `len` bytes lie in
                    // `header_bufs` (see `post_header_recv`), which no one writes during this shared borrow.
                    let arrived = unsafe {
                        std::slice::from_raw_parts(self.header_bufs.as_ptr().add(slot * HEADER_MESSAGE_MAX), len)
                    };
                    message.extend_from_slice(arrived);
                }
                let mut boxes = std::mem::take(&mut self.group_boxes);
                // Keep receiving headers whatever this one holds.
                let handled = self.post_header_recv(slot).and_then(|()| {
                    c.result().map_err(|error| TransferError::HeaderReceiveFailed { error })?;
                    let (header, inline) = read_header_message(&message, c.source, self.comms.len(), &mut boxes)?;
                    match self.expect_by_key.get(&header.key) {
                        Some(&idx) => {
                            // A group's boxes one by one, each checked before its payload is written; an error
                            // drops the rest of the group.
                            for (h, payload) in header.parts(&boxes) {
                                check_header(self.expects.get(idx), &h)?;
                                self.accept(idx, &h, &inline[payload], false)?;
                            }
                            self.complete_if_done(idx);
                        }
                        None => {
                            let mut kept = if inline.is_empty() { Vec::new() } else { self.pool.take(inline.len()) };
                            kept.copy_from_slice(inline);
                            let mut kept_boxes = Vec::new();
                            if !boxes.is_empty() {
                                kept_boxes = self.spare_boxes.pop().unwrap_or_default();
                                kept_boxes.extend_from_slice(&boxes);
                            }
                            self.unmatched.push(EarlyHeader {
                                header,
                                inline: kept,
                                elsewhere: false,
                                boxes: kept_boxes,
                            });
                        }
                    }
                    Ok(())
                });
                self.header_msg = message;
                self.group_boxes = boxes;
                handled?;
            }
            Op::Send { out } => {
                let o = self.outbound.get_mut(out);
                c.result().map_err(|error| TransferError::SendFailed { key: o.key, target: o.target, error })?;
                o.pending -= 1;
                if o.pending == 0 {
                    let o = self.outbound.remove(out);
                    self.pool.give(o.staging);
                    self.ready.push(Completion { token: o.token, key: o.key, kind: CompletionKind::Sent });
                }
            }
            Op::RecvChunk { inb, len } => {
                let i = self.inbound.get_mut(inb);
                let key = self.expects.get(i.expect).key;
                c.result().map_err(|error| TransferError::ReceiveFailed {
                    key,
                    sender: i.sender,
                    bounds: i.bounds,
                    error,
                })?;
                if c.bytes != len {
                    return Err(TransferError::PayloadLength {
                        key,
                        sender: i.sender,
                        bounds: i.bounds,
                        got: c.bytes,
                        expected: len,
                    });
                }
                i.pending -= 1;
                if i.pending == 0 {
                    self.finish_inbound(inb);
                }
            }
        }
        Ok(())
    }

    /// Registers `expect`, matches the headers that arrived before it, and checks whether it is
    /// already complete. On a header error nothing stays registered and the headers stay kept.
    pub(super) fn register(&mut self, mut expect: Expect) -> Result<(), TransferError> {
        expect.build_index();
        let key = expect.key;
        let idx = self.expects.insert(expect);
        // Check all early headers before accepting any, so that an error leaves no trace. They
        // are entered provisionally so that they are also checked against each other.
        let mut check = Ok(());
        'check: for u in self.unmatched.of(key) {
            for (h, _) in u.header.parts(&u.boxes) {
                let e = self.expects.get_mut(idx);
                check = check_header(e, &h).and_then(|()| if u.elsewhere { check_elsewhere(e, &h) } else { Ok(()) });
                if check.is_err() {
                    break 'check;
                }
                match e.kind {
                    ExpectKind::Region { .. } | ExpectKind::Pieces { .. } | ExpectKind::Into { .. } => {
                        e.note_received(h.bounds)
                    }
                    ExpectKind::Gather { .. } => {
                        e.pieces.push(GatherPiece { sender: h.sender, bounds: h.bounds, bytes: Vec::new() })
                    }
                }
            }
        }
        let e = self.expects.get_mut(idx);
        e.clear_received();
        e.pieces.clear();
        if let Err(err) = check {
            let e = self.expects.remove(idx);
            self.recycle_expect(e);
            return Err(err);
        }
        self.expect_by_key.insert(key, idx);
        if let Some(mut early) = self.unmatched.take(key) {
            // In arrival order; on an error (posting a receive failed) the headers not yet entered stay kept. (A
            // group's payloads are inline, so no receive is posted for them: a group is entered whole.)
            let mut accepted = Ok(());
            let mut entered = 0;
            while accepted.is_ok() && entered < early.len() {
                let u = &mut early[entered];
                let (header, elsewhere) = (u.header, u.elsewhere);
                let inline = std::mem::take(&mut u.inline);
                let mut boxes = std::mem::take(&mut u.boxes);
                for (h, payload) in header.parts(&boxes) {
                    accepted = self.accept(idx, &h, &inline[payload], elsewhere);
                    if accepted.is_err() {
                        break;
                    }
                }
                self.pool.give(inline);
                if boxes.capacity() > 0 {
                    boxes.clear();
                    self.spare_boxes.push(boxes);
                }
                entered += 1;
            }
            early.drain(..entered);
            self.unmatched.restore(key, early);
            accepted?;
        }
        self.complete_if_done(idx);
        Ok(())
    }

    /// Enters header `h` (already checked) into expect `idx` and posts its payload receives, or, for an inline
    /// payload (`inline`, whose length `read_header_message` matched to `h.bytes`), delivers it into the expect's
    /// destination now. The caller then calls `complete_if_done`: this header may have been the last one missing.
    /// A header whose cells arrived `elsewhere` (checked by `check_elsewhere` too) counts them and receives nothing.
    pub(super) fn accept(
        &mut self,
        idx: usize,
        h: &Header,
        inline: &[u8],
        elsewhere: bool,
    ) -> Result<(), TransferError> {
        let e = self.expects.get_mut(idx);
        let piece = match e.kind {
            ExpectKind::Region { .. } | ExpectKind::Into { .. } => {
                if h.bounds.is_empty() {
                    return Ok(());
                }
                e.note_received(h.bounds);
                e.received_volume += h.bounds.volume();
                None
            }
            ExpectKind::Pieces { .. } => {
                if h.bounds.is_empty() {
                    return Ok(());
                }
                e.note_received(h.bounds);
                e.received_volume += h.bounds.volume();
                e.pieces.push(GatherPiece { sender: h.sender, bounds: h.bounds, bytes: Vec::new() });
                Some(e.pieces.len() - 1)
            }
            ExpectKind::Gather { .. } => {
                e.pieces.push(GatherPiece { sender: h.sender, bounds: h.bounds, bytes: Vec::new() });
                Some(e.pieces.len() - 1)
            }
        };
        if h.bytes == 0 || elsewhere {
            return Ok(());
        }
        if h.inline {
            debug_assert_eq!(inline.len(), h.bytes);
            match e.kind {
                ExpectKind::Region { .. } | ExpectKind::Into { .. } => {
                    // SAFETY: `check_header` proved that `h.bounds` lies in the expect's region and that its byte
                    // size is `h.bytes`, the length of `inline`; the destination is lent until the completion,
                    // which has not been returned (this payload completes the expect at the earliest).
                    unsafe { write_cells(e, &mut self.runs, &h.bounds, inline) };
                }
                ExpectKind::Gather { .. } | ExpectKind::Pieces { .. } => {
                    let mut bytes = self.pool.take(inline.len());
                    bytes.copy_from_slice(inline);
                    e.pieces[piece.expect("gather and piece payloads belong to a piece")].bytes = bytes;
                }
            }
            self.inline_payloads_received += 1;
            return Ok(());
        }
        e.outstanding += 1;
        // Straight into the caller's memory when one target holds the box contiguously.
        let direct = match e.kind {
            // The target that is the box (found by the region's index), else each target in turn.
            ExpectKind::Into { elem_size } => match e.exact(&h.bounds) {
                Some(i) => direct_into(&e.region[i], e.dsts[i], &h.bounds, elem_size, &mut self.runs),
                None => e
                    .region
                    .iter()
                    .zip(&e.dsts)
                    .find_map(|(t, &dst)| direct_into(t, dst, &h.bounds, elem_size, &mut self.runs)),
            },
            _ => None,
        };
        let staging = if direct.is_some() { Vec::new() } else { self.pool.take(h.bytes) };
        self.payloads_received_in_place += u64::from(direct.is_some());
        let inb = self.inbound.insert(Inbound {
            expect: idx,
            sender: h.sender,
            bounds: h.bounds,
            staging,
            pending: h.chunks(),
            direct: direct.is_some(),
            piece,
        });
        let base = match direct {
            Some(dst) => dst,
            None => self.inbound.get_mut(inb).staging.as_mut_ptr(),
        };
        for k in 0..h.chunks() {
            let offset = k * h.chunk;
            let len = h.chunk.min(h.bytes - offset);
            let source = h.sender / self.comms.len() as Rank;
            // SAFETY: `offset + len <= h.bytes`. Either `base` is the inbound staging buffer of `h.bytes`
            // bytes, which `self.inbound[inb]` owns, neither resized nor read until all of its receives
            // have completed (`pending` reaches 0, then `finish_inbound`), and `Drop` completes or leaks it
            // before freeing; or it is the box's single run in a target lent by `expect_into`'s caller
            // (`h.bytes` bytes: `check_header` matched the length to the box), valid until the completion is
            // returned or the engine dropped, which cancels or waits for every receive. Distinct chunks
            // are disjoint ranges, and distinct payloads of one expect disjoint boxes (`check_header`).
            let request = unsafe { self.comm.irecv_raw(base.add(offset), len, source, h.tag) }?;
            self.push_request(request, Op::RecvChunk { inb, len });
        }
        self.posted_payload = true;
        Ok(())
    }

    /// A payload has fully arrived: unpack it (region) or keep it (gather).
    pub(super) fn finish_inbound(&mut self, inb: usize) {
        let Inbound { expect, bounds, staging, piece, direct, .. } = self.inbound.remove(inb);
        let e = self.expects.get_mut(expect);
        match e.kind {
            ExpectKind::Into { .. } if direct => {}
            ExpectKind::Into { .. } | ExpectKind::Region { .. } => {
                // SAFETY: `check_header` proved that `bounds` lies in the region and that `staging` has its byte
                // size; the destination is lent until the completion, which has not been returned yet (this
                // payload is outstanding).
                unsafe { write_cells(e, &mut self.runs, &bounds, &staging) };
                self.pool.give(staging);
            }
            ExpectKind::Gather { .. } | ExpectKind::Pieces { .. } => {
                e.pieces[piece.expect("gather and piece payloads belong to a piece")].bytes = staging;
            }
        }
        e.outstanding -= 1;
        self.complete_if_done(expect);
    }

    /// Completes expect `idx` if all its data is in.
    pub(super) fn complete_if_done(&mut self, idx: usize) {
        let e = self.expects.get(idx);
        let done = e.outstanding == 0
            && match e.kind {
                ExpectKind::Region { .. } | ExpectKind::Pieces { .. } | ExpectKind::Into { .. } => {
                    e.received_volume == e.region_volume
                }
                ExpectKind::Gather { senders } => e.pieces.len() == senders,
            };
        if !done {
            return;
        }
        let mut e = self.expects.remove(idx);
        self.expect_by_key.remove(&e.key);
        let kind = match e.kind {
            ExpectKind::Region { .. } | ExpectKind::Into { .. } => CompletionKind::Received,
            ExpectKind::Pieces { .. } => {
                let pieces = std::mem::take(&mut e.pieces);
                self.gathered.push(Gathered { key: e.key, pieces });
                CompletionKind::Received
            }
            ExpectKind::Gather { .. } => {
                let mut pieces = std::mem::take(&mut e.pieces);
                pieces.sort_unstable_by_key(|p| p.sender);
                self.gathered.push(Gathered { key: e.key, pieces });
                CompletionKind::Gathered
            }
        };
        self.ready.push(Completion { token: e.token, key: e.key, kind });
        self.recycle_expect(e);
    }

    /// Keeps an expect's vectors for reuse.
    pub(super) fn recycle_expect(&mut self, mut e: Expect) {
        if e.dsts.capacity() > 0 {
            e.dsts.clear();
            self.spare_dsts.push(std::mem::take(&mut e.dsts));
        }
        for mut v in [std::mem::take(&mut e.region), std::mem::take(&mut e.received)] {
            if v.capacity() > 0 {
                v.clear();
                self.spare_boxes.push(v);
            }
        }
        if e.pieces.capacity() > 0 {
            for piece in e.pieces.drain(..) {
                self.pool.give(piece.bytes);
            }
            self.spare_pieces.push(e.pieces);
        }
    }
}

/// Where a payload of `bounds` can be received straight into target `t` (lent at `dst`, `elem_size` bytes a cell): the
/// address of its one contiguous run there, if `t` contains it and it is one run.
fn direct_into(
    t: &CellBox,
    dst: *mut u8,
    bounds: &CellBox,
    elem_size: usize,
    runs: &mut Vec<CopyRun>,
) -> Option<*mut u8> {
    if !t.contains(bounds) {
        return None;
    }
    runs.clear();
    copy_runs(t, bounds, bounds, elem_size, runs);
    match runs.as_slice() {
        // SAFETY: the run lies in the target's cells (`t` contains the box), which `expect_into`'s caller lent for
        // `t.volume() * elem_size` bytes.
        [run] => Some(unsafe { dst.add(run.src_offset) }),
        _ => None,
    }
}

/// Writes the packed cells `bounds` (`src`) into the destination of region or `expect_into` expect `e`: unpacked
/// into its allocation, or copied into the targets the box covers (`runs` is scratch).
///
/// # Safety
///
/// `bounds` lies in `e`'s region, `src` holds exactly its cells packed row-major (`check_header`), and `e`'s
/// destination (the allocation `expect` was given, or `expect_into`'s targets) is still lent to the engine: its
/// completion has not been returned.
unsafe fn write_cells(e: &Expect, runs: &mut Vec<CopyRun>, bounds: &CellBox, src: &[u8]) {
    match e.kind {
        ExpectKind::Into { elem_size } => {
            // Only the target that is the box where the region's index finds one, else every target it meets.
            let exact = e.exact(bounds);
            let targets = match exact {
                Some(i) => &e.region[i..=i],
                None => &e.region[..],
            };
            let dsts = match exact {
                Some(i) => &e.dsts[i..=i],
                None => &e.dsts[..],
            };
            for (t, &dst) in targets.iter().zip(dsts) {
                let part = t.intersection(bounds);
                if part.is_empty() {
                    continue;
                }
                runs.clear();
                copy_runs(bounds, t, &part, elem_size, runs);
                for run in runs.iter() {
                    // SAFETY: `copy_runs` keeps each run inside the packed box `bounds` (`src`, whose length matches
                    // it) and inside the target `t`, which `expect_into`'s caller lent for its cells until the
                    // completion, not returned yet (this function's contract).
                    unsafe {
                        std::ptr::copy_nonoverlapping(
                            src.as_ptr().add(run.src_offset),
                            dst.add(run.dst_offset),
                            run.len,
                        )
                    };
                }
            }
        }
        ExpectKind::Region { layout, dst } => {
            // SAFETY: `expect`'s caller guaranteed that `dst` holds `layout` and that the cells of the region are ours
            // to write until the completion is returned, not returned yet; `bounds` lies in the region (so in
            // `layout.bounds`) and `src` has its byte size (this function's contract).
            unsafe { geometry::unpack_to_ptr(&layout, dst, bounds, src) };
        }
        ExpectKind::Gather { .. } | ExpectKind::Pieces { .. } => {
            debug_assert!(false, "gathers and pieces keep their payloads");
        }
    }
}

/// Checks that expect `e` can count cells that arrive by another way ([`TransferEngine::arrived_elsewhere`]): a
/// region expect, not a gather or one that keeps payloads as pieces.
pub(super) fn check_elsewhere(e: &Expect, h: &Header) -> Result<(), TransferError> {
    match e.kind {
        ExpectKind::Region { .. } | ExpectKind::Into { .. } => Ok(()),
        ExpectKind::Gather { .. } | ExpectKind::Pieces { .. } => {
            Err(TransferError::ElsewhereNotRegion { key: e.key, sender: h.sender, bounds: h.bounds })
        }
    }
}

/// Checks header `h` against expect `e` (and the boxes or senders it has already seen): the
/// matching rules of the module documentation.
pub(super) fn check_header(e: &Expect, h: &Header) -> Result<(), TransferError> {
    let (key, sender, bounds) = (e.key, h.sender, h.bounds);
    match e.kind {
        ExpectKind::Region { layout: AllocLayout { elem_size, .. }, .. }
        | ExpectKind::Pieces { elem_size }
        | ExpectKind::Into { elem_size } => {
            let expected = bounds.checked_volume().and_then(|v| v.checked_mul(elem_size));
            if expected != Some(h.bytes) {
                return Err(TransferError::LengthMismatch {
                    key,
                    sender,
                    bounds,
                    bytes: h.bytes,
                    elem_size,
                    expected: expected.unwrap_or(usize::MAX),
                });
            }
            if bounds.is_empty() {
                return Ok(());
            }
            // A box of the region, found by its index: inside; a duplicate only if it arrived whole, or overlaps a
            // piece that was not a whole box of the region.
            if let Some(i) = e.exact(&bounds) {
                if e.may_overlap_received(i) {
                    if let Some(r) = e.received.iter().find(|r| r.intersects(&bounds)) {
                        return Err(TransferError::Duplicate { key, sender, bounds, overlap: r.intersection(&bounds) });
                    }
                }
                return Ok(());
            }
            // The region's boxes are disjoint, so `bounds` lies in their union exactly when the
            // parts of it inside each box add up to all of it.
            let inside: usize = e.region.iter().map(|r| r.intersection(&bounds).volume()).sum();
            if inside != bounds.volume() {
                return Err(TransferError::OutsideRegion { key, sender, bounds, region: BoxList(e.region.clone()) });
            }
            if let Some(r) = e.received.iter().find(|r| r.intersects(&bounds)) {
                return Err(TransferError::Duplicate { key, sender, bounds, overlap: r.intersection(&bounds) });
            }
        }
        ExpectKind::Gather { senders } => {
            if e.pieces.iter().any(|p| p.sender == sender) {
                return Err(TransferError::DuplicateSender { key, sender, bounds });
            }
            if e.pieces.len() >= senders {
                return Err(TransferError::TooManySenders { key, sender, bounds, expected: senders });
            }
        }
    }
    Ok(())
}
