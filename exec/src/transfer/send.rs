//! The sending side of the transfer engine: a box packed into the engine's staging (`send`, `send_raw`) or sent
//! from memory the caller lends (`send_lent`), announced by its header and split into payload messages, or carried
//! inside the header message when it is small ([`INLINE_PAYLOAD_BYTES`]); the boxes of a region sent from memory the
//! caller lends (`send_lent_boxes`), its small boxes grouped, many to a header message.

use super::geometry::{self, AllocLayout, CellBox};
use super::header::{box_entry_len, encode_box_list, listable, Group, Header, HEADER_LEN};
use super::state::{Op, Outbound};
use super::{Rank, Token, TransferEngine, TransferError, TransferKey, HEADER_TAG, INLINE_PAYLOAD_BYTES};

impl TransferEngine<'_> {
    /// Sends the cells `bounds` of the allocation `src` (laid out as `layout`) to rank `target` as
    /// transfer `key`. The cells are copied before this returns; `token` comes back in a
    /// [`CompletionKind::Sent`](super::CompletionKind::Sent) completion once every message has left.
    ///
    /// An empty `bounds` sends only a header ("nothing from me", for reductions); `layout` and
    /// `src` are then not looked at (see also [`send_empty`](Self::send_empty)).
    ///
    /// # Errors
    ///
    /// [`TransferError::NoSuchRank`], [`TransferError::InvalidLayout`],
    /// [`TransferError::AllocationTooSmall`] if `src` is shorter than `layout` says, [`TransferError::BoxOutsideAllocation`], or [`TransferError::Mpi`].
    pub fn send(
        &mut self,
        key: TransferKey,
        target: Rank,
        bounds: CellBox,
        layout: &AllocLayout,
        src: &[u8],
        token: Token,
    ) -> Result<(), TransferError> {
        if !bounds.is_empty() {
            layout.check(src.len())?;
        }
        // SAFETY: `src` is a live shared borrow covering the whole layout (checked just above when
        // `bounds` is non-empty; nothing is read otherwise), so no one writes it during the call.
        unsafe { self.send_raw(key, target, bounds, layout, src.as_ptr(), token) }
    }

    /// Sends an empty box to `target` as transfer `key`: the header alone, meaning "nothing from
    /// me". Completes like [`send`](Self::send).
    ///
    /// # Errors
    ///
    /// [`TransferError::NoSuchRank`] or [`TransferError::Mpi`].
    pub fn send_empty(&mut self, key: TransferKey, target: Rank, token: Token) -> Result<(), TransferError> {
        let layout = AllocLayout { bounds: CellBox::EMPTY, elem_size: 1 };
        self.send(key, target, CellBox::EMPTY, &layout, &[], token)
    }

    /// [`send`](Self::send) from a base address, for allocations that other parts of the program
    /// may be using at the same time (it reads only the cells of `bounds`).
    ///
    /// # Errors
    ///
    /// As [`send`](Self::send), except that the length of the allocation cannot be checked.
    ///
    /// # Safety
    ///
    /// Unless `bounds` is empty, `src` points to an allocation laid out as `layout`, and its cells
    /// in `bounds` are readable and not written by anyone during this call.
    pub unsafe fn send_raw(
        &mut self,
        key: TransferKey,
        target: Rank,
        bounds: CellBox,
        layout: &AllocLayout,
        src: *const u8,
        token: Token,
    ) -> Result<(), TransferError> {
        // The allocation's length is the caller's to uphold (see # Safety).
        let bytes = self.payload_bytes(target, bounds, layout)?;
        let mut staging = self.pool.take(HEADER_LEN + bytes);
        if bytes > 0 {
            // SAFETY: the caller upholds that `src` holds `layout` and that the cells of `bounds`
            // are readable and unwritten during the call; `box_bytes` checked that `bounds` lies in
            // `layout.bounds`, and the staging slice has exactly its byte size.
            unsafe { geometry::pack_from_ptr(layout, src, &bounds, &mut staging[HEADER_LEN..]) };
        }
        self.start_send(key, target, bounds, bytes, staging, None, token)
    }

    /// Sends the cells `bounds` (`elem_size` bytes each) to node `target` as transfer `key` from memory the
    /// caller lends: `payload` holds them packed row-major, and MPI reads it in place (no copy) until the
    /// [`CompletionKind::Sent`](super::CompletionKind::Sent) completion for `token` has been returned by [`poll`](Self::poll). The header
    /// travels from the engine's own memory. This is how pushes send straight from the GPU's download staging.
    ///
    /// A payload of at most [`INLINE_PAYLOAD_BYTES`] is copied into the header message during this call, so MPI
    /// does not read `payload` after it returns; the completion still comes once the message has left, and the
    /// contract below is the same for every size.
    ///
    /// # Errors
    ///
    /// [`TransferError::NoSuchRank`] or [`TransferError::InvalidLayout`] (a box whose byte size overflows): nothing
    /// was sent, `payload` is not used. [`TransferError::Mpi`]: messages started before the failure may still read
    /// `payload`, which stays lent as the safety section says.
    ///
    /// # Safety
    ///
    /// Unless `bounds` is empty, `payload` points to `bounds.volume() * elem_size` readable bytes that stay valid
    /// and unwritten until the completion for `token` has been returned. If the engine is dropped before that,
    /// they must stay valid for the rest of the process (`Drop` leaves unfinished sends to MPI; see
    /// [`TransferEngine`]).
    pub unsafe fn send_lent(
        &mut self,
        key: TransferKey,
        target: Rank,
        bounds: CellBox,
        elem_size: usize,
        payload: *const u8,
        token: Token,
    ) -> Result<(), TransferError> {
        let bytes = self.payload_bytes(target, bounds, &AllocLayout { bounds, elem_size })?;
        if bytes <= INLINE_PAYLOAD_BYTES {
            let mut staging = self.pool.take(HEADER_LEN + bytes);
            if bytes > 0 {
                // SAFETY: the caller lends `bytes` readable bytes at `payload`, unwritten until the completion (so
                // during this call); the staging slice after the header has exactly that length.
                let src = unsafe { std::slice::from_raw_parts(payload, bytes) };
                staging[HEADER_LEN..].copy_from_slice(src);
            }
            return self.start_send(key, target, bounds, bytes, staging, None, token);
        }
        let staging = self.pool.take(HEADER_LEN);
        self.start_send(key, target, bounds, bytes, staging, Some(payload), token)
    }

    /// Sends the cells of `boxes` (disjoint; `elem_size` bytes each) to node `target` as transfer `key` from memory
    /// the caller lends: `payload` holds the boxes' cells packed row-major, one box after another in the order of
    /// `boxes` (the layout of the runtime's download of a push's region). The receiver sees the same boxes as from
    /// one [`send_lent`](Self::send_lent) per box, but in far fewer messages: runs of consecutive small boxes go as
    /// groups, each one header message carrying the list of its boxes and their payloads (at most
    /// [`INLINE_PAYLOAD_BYTES`] of list and payloads; see the protocol section of the [module docs](super)); a box
    /// that fits no group with its neighbours goes as `send_lent` sends it (inline, or header and payload messages
    /// read in place from `payload`). Empty boxes are skipped; with no non-empty box, one empty header is sent
    /// ("nothing from me"). One completion for `token` comes once every message has left.
    ///
    /// # Errors
    ///
    /// As [`send_lent`](Self::send_lent): [`TransferError::NoSuchRank`] or [`TransferError::InvalidLayout`] (nothing
    /// was sent, `payload` is not used); [`TransferError::Mpi`] (messages started before the failure may still read
    /// `payload`, which stays lent, and no completion comes for `token`).
    ///
    /// # Safety
    ///
    /// `payload` points to the sum of the boxes' `volume() * elem_size` readable bytes that stay valid and unwritten
    /// until the completion for `token` has been returned; if the engine is dropped before that, for the rest of the
    /// process (as for [`send_lent`](Self::send_lent)).
    pub unsafe fn send_lent_boxes(
        &mut self,
        key: TransferKey,
        target: Rank,
        boxes: &[CellBox],
        elem_size: usize,
        payload: *const u8,
        token: Token,
    ) -> Result<(), TransferError> {
        let mut plan = std::mem::take(&mut self.plan);
        plan.clear();
        let planned = self.plan_sends(target, boxes, elem_size, &mut plan);
        // SAFETY: the caller lends `payload` for the boxes' bytes packed in order (this function's contract), which
        // `plan_sends` computed with the same sizes and offsets.
        let sent = planned.and_then(|len| unsafe {
            self.start_planned(key, target, boxes, elem_size, &mut plan, len, payload, token)
        });
        self.plan = plan;
        sent
    }

    /// Plans the messages of [`send_lent_boxes`](Self::send_lent_boxes) into `plan` (greedy: each group takes the
    /// following boxes while its list and payloads fit [`INLINE_PAYLOAD_BYTES`] and its bounding box fits the list's
    /// `u32` offsets). Returns the bytes of all header messages together, after checking `target` and every box.
    fn plan_sends(
        &self,
        target: Rank,
        boxes: &[CellBox],
        elem_size: usize,
        plan: &mut Vec<Planned>,
    ) -> Result<usize, TransferError> {
        let bytes_of = |b: &CellBox| self.payload_bytes(target, *b, &AllocLayout { bounds: *b, elem_size });
        // Checked first, all of them: an error sends nothing.
        let mut total = 0usize;
        for b in boxes {
            let bytes = bytes_of(b)?;
            total = total
                .checked_add(bytes)
                .ok_or(TransferError::InvalidLayout { layout: AllocLayout { bounds: *b, elem_size } })?;
        }
        let mut staging = 0;
        let (mut i, mut offset) = (0, 0);
        while i < boxes.len() {
            let first = boxes[i];
            let bytes = bytes_of(&first)?;
            if first.is_empty() {
                i += 1;
                continue;
            }
            // Grow a group from box i while list and payloads fit the inline limit.
            let (mut hull, mut count, mut group_bytes, mut end) = (first, 1, bytes, i + 1);
            if bytes.saturating_add(box_entry_len(&first)) <= INLINE_PAYLOAD_BYTES {
                let mut j = i + 1;
                while j < boxes.len() {
                    let b = boxes[j];
                    if !b.is_empty() {
                        let wider = bounding(&hull, &b);
                        let more = bytes_of(&b)?;
                        // (`group_bytes` is at most the inline limit; `more` any checked size.)
                        let fits = ((count + 1) * box_entry_len(&wider) + group_bytes).saturating_add(more)
                            <= INLINE_PAYLOAD_BYTES;
                        if !fits || !listable(&wider) {
                            break;
                        }
                        (hull, count, group_bytes) = (wider, count + 1, group_bytes + more);
                    }
                    j += 1;
                    end = j;
                }
            }
            if count > 1 {
                let len = HEADER_LEN + count * box_entry_len(&hull) + group_bytes;
                plan.push(Planned::Group { range: i..end, hull, count, offset, bytes: group_bytes, at: staging, len });
                staging += len;
                offset += group_bytes;
                i = end;
            } else {
                let len = HEADER_LEN + if bytes <= INLINE_PAYLOAD_BYTES { bytes } else { 0 };
                plan.push(Planned::Single { bounds: first, offset, bytes, at: staging, len, tag: HEADER_TAG });
                staging += len;
                offset += bytes;
                i += 1;
            }
        }
        if plan.is_empty() {
            let empty = CellBox::EMPTY;
            plan.push(Planned::Single { bounds: empty, offset: 0, bytes: 0, at: 0, len: HEADER_LEN, tag: HEADER_TAG });
            staging = HEADER_LEN;
        }
        debug_assert_eq!(offset, total);
        Ok(staging)
    }

    /// Writes the header messages `plan` describes into one staging buffer of `len` bytes (headers, box lists and
    /// inline payloads copied from `payload`) and starts them, and the payload messages of large boxes, read in
    /// place from `payload`: one outbound transfer, complete once every message has left.
    ///
    /// # Safety
    ///
    /// As [`send_lent_boxes`](Self::send_lent_boxes); `plan` is what [`plan_sends`](Self::plan_sends) made of
    /// `boxes` and `elem_size`.
    #[allow(clippy::too_many_arguments)]
    unsafe fn start_planned(
        &mut self,
        key: TransferKey,
        target: Rank,
        boxes: &[CellBox],
        elem_size: usize,
        plan: &mut [Planned],
        len: usize,
        payload: *const u8,
        token: Token,
    ) -> Result<(), TransferError> {
        let mut staging = self.pool.take(len);
        let node = self.node();
        let mut messages = 0;
        for p in plan.iter_mut() {
            let (header, at, len) = match *p {
                Planned::Single { bounds, offset, bytes, at, len, ref mut tag } => {
                    let inline = bytes > 0 && bytes <= INLINE_PAYLOAD_BYTES;
                    let separate = bytes > INLINE_PAYLOAD_BYTES;
                    if inline {
                        // SAFETY: the box's `bytes` bytes start `offset` bytes into the lent payload (the boxes
                        // packed in order), readable and unwritten during this call (the caller's contract).
                        let src = unsafe { std::slice::from_raw_parts(payload.add(offset), bytes) };
                        staging[at + HEADER_LEN..at + len].copy_from_slice(src);
                    }
                    *tag = if separate { self.next_payload_tag() } else { HEADER_TAG };
                    let chunk = if separate { self.max_message_bytes } else { 0 };
                    let header = Header { sender: node, tag: *tag, key, bounds, bytes, chunk, inline, group: None };
                    messages += 1 + header.chunks();
                    (header, at, len)
                }
                Planned::Group { ref range, hull, count, offset, bytes, at, len } => {
                    let list = at + HEADER_LEN..at + len - bytes;
                    let listed = boxes[range.clone()].iter().copied().filter(|b| !b.is_empty());
                    encode_box_list(&hull, listed, &mut staging[list]);
                    // SAFETY: the group's boxes are consecutive, so their payloads are `bytes` consecutive bytes
                    // from `offset` in the lent payload, readable and unwritten during this call.
                    let src = unsafe { std::slice::from_raw_parts(payload.add(offset), bytes) };
                    staging[at + len - bytes..at + len].copy_from_slice(src);
                    let group = Some(Group { count, elem_size });
                    let header = Header {
                        sender: node,
                        tag: HEADER_TAG,
                        key,
                        bounds: hull,
                        bytes,
                        chunk: 0,
                        inline: true,
                        group,
                    };
                    messages += 1;
                    (header, at, len)
                }
            };
            let head: &mut [u8; HEADER_LEN] = (&mut staging[at..at + HEADER_LEN]).try_into().expect("a header's bytes");
            header.encode(head);
            debug_assert!(at + len <= staging.len());
        }
        let out = self.outbound.insert(Outbound { key, token, target, staging, pending: messages });
        let base = self.outbound.get_mut(out).staging.as_ptr();
        let (comm, rank) = self.route(target);
        for p in plan.iter() {
            let (at, len) = match *p {
                Planned::Single { at, len, .. } | Planned::Group { at, len, .. } => (at, len),
            };
            // SAFETY: `at..at + len` lies in the outbound staging buffer (`plan_sends` summed the messages' lengths
            // into its length), owned by `self.outbound[out]`, which is neither resized nor written until all of its
            // requests have completed, nor freed while one is in flight (as in `start_send`).
            let request = unsafe { comm.isend_raw(base.add(at), len, rank, HEADER_TAG) }?;
            self.push_request(request, Op::Send { out });
            self.messages_sent += 1;
            match *p {
                Planned::Group { .. } => self.group_messages_sent += 1,
                Planned::Single { bytes, .. } if bytes > 0 && bytes <= INLINE_PAYLOAD_BYTES => {
                    self.inline_payloads_sent += 1
                }
                Planned::Single { offset, bytes, tag, .. } if bytes > INLINE_PAYLOAD_BYTES => {
                    let chunk = self.max_message_bytes;
                    for k in 0..bytes.div_ceil(chunk) {
                        let start = k * chunk;
                        let len = chunk.min(bytes - start);
                        // SAFETY: `offset + start + len <= offset + bytes`: inside the box's payload in the memory
                        // the caller lent until the completion is returned (`send_lent_boxes`'s contract).
                        let request = unsafe { comm.isend_raw(payload.add(offset + start), len, rank, tag) }?;
                        self.push_request(request, Op::Send { out });
                        self.payload_messages_sent += 1;
                        self.messages_sent += 1;
                    }
                }
                Planned::Single { .. } => {}
            }
        }
        Ok(())
    }

    /// The payload's byte size of a send of `bounds` from memory laid out as `layout` to `target`, after checking
    /// that `target` is a node and (for a non-empty box) that the layout is valid and holds the box.
    fn payload_bytes(&self, target: Rank, bounds: CellBox, layout: &AllocLayout) -> Result<usize, TransferError> {
        if !(0..self.nodes()).contains(&target) {
            return Err(TransferError::NoSuchRank { rank: target, size: self.nodes() });
        }
        if bounds.is_empty() {
            return Ok(0);
        }
        layout.validate()?;
        layout.box_bytes(&bounds)
    }

    /// Writes the header into `staging`'s first [`HEADER_LEN`] bytes and sends it, then the payload in messages:
    /// from `payload` (lent by the caller) or, if `None`, from `staging` right after the header. A payload in
    /// `staging` of at most [`INLINE_PAYLOAD_BYTES`] goes in the header message instead (`payload` is `None` then:
    /// `send_lent` copies small payloads into `staging`).
    #[allow(clippy::too_many_arguments)]
    fn start_send(
        &mut self,
        key: TransferKey,
        target: Rank,
        bounds: CellBox,
        bytes: usize,
        mut staging: Vec<u8>,
        payload: Option<*const u8>,
        token: Token,
    ) -> Result<(), TransferError> {
        let inline = bytes > 0 && bytes <= INLINE_PAYLOAD_BYTES && payload.is_none();
        debug_assert!(payload.is_none() || bytes > INLINE_PAYLOAD_BYTES, "send_lent copies small payloads");
        let separate = bytes > 0 && !inline;
        let tag = if separate { self.next_payload_tag() } else { HEADER_TAG };
        let header = Header {
            sender: self.node(),
            tag,
            key,
            bounds,
            bytes,
            chunk: if separate { self.max_message_bytes } else { 0 },
            inline,
            group: None,
        };
        let head: &mut [u8; HEADER_LEN] = (&mut staging[..HEADER_LEN]).try_into().expect("staging holds a header");
        header.encode(head);
        let chunks = header.chunks();
        // The header message: the header alone, or the header and the inline payload right behind it in `staging`.
        let message_len = if inline { HEADER_LEN + bytes } else { HEADER_LEN };
        debug_assert!(staging.len() >= message_len);
        self.inline_payloads_sent += u64::from(inline);
        let out = self.outbound.insert(Outbound { key, token, target, staging, pending: 1 + chunks });
        let base = self.outbound.get_mut(out).staging.as_ptr();
        let payload = payload.unwrap_or_else(|| {
            // SAFETY: with no lent payload, the staging buffer holds HEADER_LEN + bytes bytes.
            unsafe { base.add(HEADER_LEN) }
        });
        let (comm, rank) = self.route(target);
        // SAFETY: `base` points to the outbound staging buffer of at least `message_len` bytes (HEADER_LEN, plus the
        // inline payload packed or copied behind it), owned by `self.outbound[out]`, which is neither resized nor
        // written until all of its requests have completed (`pending` reaches 0 in `handle`), nor freed while one
        // is in flight (`Drop` frees unfinished sends with MPI_Request_free and leaks their buffers).
        let request = unsafe { comm.isend_raw(base, message_len, rank, HEADER_TAG) }?;
        self.push_request(request, Op::Send { out });
        self.messages_sent += 1 + chunks as u64;
        for k in 0..chunks {
            let offset = k * header.chunk;
            let len = header.chunk.min(bytes - offset);
            // SAFETY: `offset + len <= bytes`: inside the payload, which is either the engine's staging buffer
            // after the header (untouched and alive until completion, as above) or memory the caller lent for
            // `bytes` bytes until the completion is returned (`send_lent`'s contract).
            let request = unsafe { comm.isend_raw(payload.add(offset), len, rank, tag) }?;
            self.push_request(request, Op::Send { out });
            self.payload_messages_sent += 1;
        }
        Ok(())
    }
}

/// One header message [`send_lent_boxes`](TransferEngine::send_lent_boxes) sends, at `at..at + len` of its staging.
#[derive(Debug, Clone)]
pub(super) enum Planned {
    /// One box as `send_lent` sends it: inline if its payload fits, else a header and payload messages read from
    /// `offset` of the lent payload.
    Single { bounds: CellBox, offset: usize, bytes: usize, at: usize, len: usize, tag: super::Tag },
    /// `count` non-empty boxes of `boxes` (a range of the caller's list; empty ones in it are skipped) in one
    /// message: the header, their list and their `bytes` of payload, copied from `offset` of the lent payload.
    Group {
        range: std::ops::Range<usize>,
        hull: CellBox,
        count: usize,
        offset: usize,
        bytes: usize,
        at: usize,
        len: usize,
    },
}

/// The smallest box holding the non-empty boxes `a` and `b`.
fn bounding(a: &CellBox, b: &CellBox) -> CellBox {
    let (amin, amax, bmin, bmax) = (a.min(), a.max(), b.min(), b.max());
    CellBox::new(std::array::from_fn(|d| amin[d].min(bmin[d])), std::array::from_fn(|d| amax[d].max(bmax[d])))
}
