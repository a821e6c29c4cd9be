//! The sending side of the transfer engine: a box packed into the engine's staging (`send`, `send_raw`) or sent
//! from memory the caller lends (`send_lent`), announced by its header and split into payload messages, or carried
//! inside the header message when it is small ([`INLINE_PAYLOAD_BYTES`]).

use super::geometry::{self, AllocLayout, CellBox};
use super::header::{Header, HEADER_LEN};
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
