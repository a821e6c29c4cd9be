//! The transfer engine behind push and await-push: moves boxes of buffer cells between ranks over
//! MPI, driven by one thread that calls the non-blocking [`TransferEngine::poll`] in its loop.
//!
//! - **Knows no graphs.** A transfer is named by an opaque [`TransferKey`] (the executor packs task,
//!   buffer and reduction ids into it); a box is a [`CellBox`]; host memory is a base address plus
//!   an [`AllocLayout`] (which cells it holds, bytes per cell).
//! - **Headers announce payloads** (Celerity's "pilots", `include/pilot.h`): the receiver need
//!   not know who sends what, or in which order; headers and expects match in any order.
//! - **One request array, one `MPI_Testsome`.** Every active request lives in one array polled by
//!   [`Testsome`]; nothing calls `MPI_Wait` or a blocking receive.
//! - **MPI touches the engine's memory, or memory the caller lent until a completion.** With
//!   [`send`](TransferEngine::send) and [`expect`](TransferEngine::expect) payloads are packed into (and
//!   received into) pooled staging buffers; the caller's memory is read in `send` and written in
//!   [`poll`](TransferEngine::poll) (or in `expect`, for a small payload that arrived first), synchronously.
//!   With [`send_lent`](TransferEngine::send_lent) and [`expect_into`](TransferEngine::expect_into) the caller
//!   lends packed memory that MPI reads or writes in place (no copy: the runtime lends the GPU's host-visible
//!   staging), from the call until `poll` returns the completion for its token; after that MPI never touches it
//!   again. Payloads of up to [`INLINE_PAYLOAD_BYTES`] are the exception: they travel inside the header
//!   message, so they are copied (out of lent memory during `send_lent`, into it when the header is matched).
//!   The lending calls are `unsafe`: their contracts say what the caller keeps valid and untouched, and for how
//!   long if the engine is dropped first; the contracts are the same for every payload size.
//! - **Cells may arrive another way.** [`arrived_elsewhere`](TransferEngine::arrived_elsewhere) announces a box
//!   that the caller moves itself (the runtime's GPU copy between two devices of one process), checked and counted
//!   like a header, so an expect fed partly over MPI and partly otherwise completes as one.
//! - **Mismatches are errors, never corruption.** A header whose box lies outside the expected
//!   region, or covers cells that already arrived, is reported with the key, the sender and the box.
//!
//! # Protocol
//!
//! **Tags.** Headers travel on tag [`HEADER_TAG`] (0), inline payloads inside them. Each payload larger than
//! [`INLINE_PAYLOAD_BYTES`] gets its own tag from a wrapping counter in `1..=tag_ub`, where `tag_ub` is the
//! communicator's `MPI_TAG_UB` ([`Communicator::tag_ub`]). The receiver matches payloads by (sender, tag), so a
//! tag is reused only after `tag_ub` further such transfers from the same sender (2³¹ − 1 with OpenMPI).
//!
//! **Several devices per rank** ([`TransferEngine::for_device`]): each device is a node with an
//! engine of its own; device `d` of every rank receives on the `d`-th communicator, so a node is
//! reached by (communicator, rank); the payload tags of a rank's devices fall in different residue
//! classes modulo the device count, so a receiver tells apart payloads from two devices of one rank.
//!
//! **Header message**: the header (104 bytes, little-endian; `header.rs`), followed by the payload itself when
//! the payload is inline (flag bit 0), or by a box list and the payloads of a group of boxes (flag bit 1):
//!
//! | offset | bytes | field |
//! |---|---|---|
//! | 0 | 4 | magic `"celr"` |
//! | 4 | 4 | sender node (`i32`: rank × devices + device), checked against the source rank MPI reports |
//! | 8 | 4 | payload tag (`i32`); 0 for an empty or inline payload |
//! | 12 | 4 | flags (`u32`): bit 0 set = the payload is inline; bit 1 set = a group of boxes (bit 0 set too); the other bits are 0 |
//! | 16 | 24 | transfer key (3 × `u64`) |
//! | 40 | 24 | box `min` (3 × `u64`), buffer coordinates; of a group, its bounding box's |
//! | 64 | 24 | box `max` (3 × `u64`); an empty box is all zeros |
//! | 88 | 8 | payload length in bytes (`u64`); at most [`INLINE_PAYLOAD_BYTES`] if inline; of a group, all its boxes' payloads together |
//! | 96 | 8 | message size (`u64`): the payload is `ceil(length / size)` messages; 0 for an empty or inline payload. Of a group: the box count (`u32`, 1 to [`INLINE_PAYLOAD_BYTES`]) at 96, the element size in bytes (`u32`, at least 1) at 100 |
//! | 104 | length | inline payloads only: the box's cells packed row-major; the message is `104 + length` bytes (a group: the box list, then the payloads) |
//!
//! **Groups of boxes** ([`send_lent_boxes`](TransferEngine::send_lent_boxes): a push of a region of many small boxes,
//! such as a custom mapper's scattered cells). Behind the header, the box list, then the boxes' payloads (each box's
//! cells packed row-major, one box after another in list order): the message is `104 + count × entry + length`
//! bytes, at most `104 +` [`INLINE_PAYLOAD_BYTES`], so a group is one eager message like an inline payload. The list
//! spells out only the dimensions along which the bounding box is more than one cell wide (every box spans the
//! others): per box, per such dimension in order, its start and end as `u32` offsets from the bounding box's `min`, so
//! an entry is 8 bytes per listed dimension (a 1D one-cell `u32` box: 8 bytes of list and 4 of payload, 256 boxes to
//! a message). The receiver decodes the list ([`TransferError::BadGroup`] unless list and payloads fill the message
//! exactly, every box is non-empty and inside the bounding box, and their volumes times the element size add up to the
//! payload length) and then treats each box as the inline header of that box would be treated, in list order. The
//! sender fills each group greedily with the following boxes while list and payloads fit and the bounding box's
//! extents fit `u32`; a box that fits no group with a neighbour (one over about 3 KiB) is sent as
//! [`send_lent`](TransferEngine::send_lent) sends it (header and payload messages, received in place where it can be).
//!
//! **Sender** ([`send`](TransferEngine::send)): packs the box row-major into a staging buffer
//! whose first 104 bytes are the header. A payload of 1 to [`INLINE_PAYLOAD_BYTES`] bytes goes
//! inline: header and payload are one `MPI_Isend` on tag 0. A larger one: the header alone on
//! tag 0, then the payload in consecutive messages of at most `i32::MAX` bytes (MPI's `int` count)
//! on the payload tag. An empty box sends the header alone: "nothing from me", which reductions
//! need. The transfer completes when all of its messages have been sent.
//! [`send_lent`](TransferEngine::send_lent) sends the same messages, a larger payload from the
//! caller's packed memory instead of a copy; an inline one is copied into the header message
//! during the call (its completion still comes once that message has left).
//!
//! **Receiver.** [`HEADER_SLOTS`] receives of `MPI_ANY_SOURCE` on tag 0, each into a buffer of
//! 104 + [`INLINE_PAYLOAD_BYTES`] bytes, are always posted; each is re-posted as soon as its
//! message is read. A message shorter than a header, one whose length is not 104 plus its inline
//! payload's declared length ([`TransferError::InlineLength`], naming key, sender and box), or one
//! longer than the buffer (MPI's truncation error) is rejected. A header is matched by its key:
//!
//! - With no active expect for the key, it is kept, with a copy of its inline payload, in a map by key (each key's
//!   headers in arrival order; [`unmatched_headers`](TransferEngine::unmatched_headers)), and matched when
//!   [`expect`](TransferEngine::expect) or [`expect_gather`](TransferEngine::expect_gather)
//!   registers the key.
//! - For a region expect, a non-empty box must lie inside the union of the expected boxes, must
//!   not overlap a box already received for the key, and its length must be the box's volume
//!   times the element size. Empty boxes are accepted and ignored. The expect completes once the
//!   received boxes cover the region and every payload has been unpacked into the destination.
//! - For a gather of `n` senders, each rank may announce once (an empty box counts); the gather
//!   completes once `n` headers have arrived and their payloads have been received. Its bytes are
//!   then handed out per sender, in rank order ([`take_gathered`](TransferEngine::take_gathered)).
//! - For an [`expect_into`](TransferEngine::expect_into) (a region given as targets, each a box with memory
//!   holding its cells packed), the same rules as for a region expect; a payload larger than the inline limit
//!   whose box lies in one target and is one contiguous run there is received straight into it, any other
//!   larger one into staging, then copied into the targets it covers (as an inline one is, from its header).
//! - A group's boxes are matched one by one, as the inline headers of each box would be: each is checked before its
//!   payload is written; an error drops the rest of the group. Kept before their expect, they are listed (and
//!   counted by [`unmatched_count`](TransferEngine::unmatched_count)) box by box.
//! - On a match, an inline payload is copied into the destination at once (unpacked into the
//!   allocation, copied into the targets it covers, or kept as a piece), with no further message.
//!   For any other payload, one `MPI_Irecv` per payload message is posted from the header's sender
//!   on its payload tag, into a pooled staging buffer (or the target, as just said). MPI's
//!   non-overtaking rule (same sender, tag and communicator match in order, MPI-3.1 §3.5) keeps the
//!   messages of one payload in order.
//!
//! One key has at most one active expect; a key may be expected again after its expect completed.
//! Headers that arrive for a key after its expect completed are kept as unmatched.
//!
//! # Examples
//!
//! ```no_run
//! use celer_exec::mpi;
//! use celer_exec::transfer::{AllocLayout, CellBox, Token, TransferEngine, TransferKey};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let comm = mpi::init()?;
//! let mut engine = TransferEngine::new(&comm)?;
//! let layout = AllocLayout { bounds: CellBox::d1(0, 1024), elem_size: 4 };
//! let key = TransferKey(1, 0, 0);
//! let mut dst = vec![0u8; 4096];
//! if comm.rank() == 0 {
//!     let src = vec![1u8; 4096];
//!     engine.send(key, 1, CellBox::d1(0, 512), &layout, &src, Token(1))?;
//! } else if comm.rank() == 1 {
//!     // SAFETY: `dst` outlives the expect and is not touched until it completes (the loop below).
//!     unsafe { engine.expect(key, &[CellBox::d1(0, 512)], &layout, dst.as_mut_ptr(), Token(2))? };
//! }
//! let mut completions = Vec::new();
//! while !engine.is_idle() {
//!     engine.poll(&mut completions)?;
//! }
//! # Ok(())
//! # }
//! ```

use std::collections::HashMap;
use std::fmt;

use crate::mpi::{Communicator, Completed, MpiError, Rank, RawRequest, Tag, Testsome};

mod error;
mod geometry;
mod header;
mod progress;
mod send;
mod state;

pub use error::TransferError;
pub use geometry::{pack, unpack, AllocLayout, BoxList, CellBox};
use header::HEADER_MESSAGE_MAX;
use state::{EarlyHeader, EarlyHeaders, Expect, ExpectKind, Inbound, Op, Outbound, Slab, StagingPool};

/// The tag every header travels on; payload tags start at 1.
pub const HEADER_TAG: Tag = 0;

/// How many header receives are posted at once. Headers beyond these wait in MPI's unexpected
/// queue, so this bounds nothing but how many are taken in per [`TransferEngine::poll`].
// TODO(perf): measure whether more slots help with many ranks announcing at once.
pub const HEADER_SLOTS: usize = 16;

/// The largest payload that travels inside its header message (see the protocol section of the
/// [module documentation](self)); larger ones follow the header in messages of their own.
///
/// Why 3 KiB: an inline payload saves the receiver a payload receive and a poll round only while the header message
/// stays an eager message, which MPI delivers whether or not a receive is posted and whose send completes at once.
/// OpenMPI's shared-memory transport (`btl_vader_eager_limit`, 4096 bytes including OpenMPI's own match header) is
/// the smallest eager limit among the transports celer runs on (TCP's `btl_tcp_eager_limit` is 64 KiB); a header
/// message of at most 104 + 3072 = 3176 bytes stays below it with room for that match header. The receiver keeps
/// [`HEADER_SLOTS`] buffers of this size posted (50 KiB per engine), and a 1D halo or a row of up to 768 `f32`s fits.
// TODO(perf): measure 4 KiB against 3 KiB on the GPU machine's transports (UCX) once halos of that size matter.
pub const INLINE_PAYLOAD_BYTES: usize = 3072;

/// The largest payload message: MPI counts bytes in an `int`.
const MAX_MESSAGE_BYTES: usize = i32::MAX as usize;

/// Staging buffers kept for reuse at most; more are freed when returned.
// TODO(perf): bound the pool by bytes rather than by count once real workloads show its size.
const MAX_POOLED: usize = 64;

/// Names one transfer; opaque to the engine. The executor packs (task id, buffer id, reduction id)
/// into it. Prints as `(1, 0, 0)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TransferKey(pub u64, pub u64, pub u64);

impl fmt::Display for TransferKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "({}, {}, {})", self.0, self.1, self.2)
    }
}

/// A value the caller attaches to a send or an expect, handed back in its [`Completion`] (like
/// mio's `Token`): the engine never looks at it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Token(pub u64);

/// What finished.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CompletionKind {
    /// A [`send`](TransferEngine::send): every message has left, and its memory was never needed
    /// after `send` returned anyway.
    Sent,
    /// An [`expect`](TransferEngine::expect): every cell of the region is in the destination.
    Received,
    /// An [`expect_gather`](TransferEngine::expect_gather): every sender's bytes have arrived;
    /// collect them with [`take_gathered`](TransferEngine::take_gathered).
    Gathered,
}

/// A finished send or expect, as [`TransferEngine::poll`] reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Completion {
    /// The token passed to the call that started it.
    pub token: Token,
    /// The transfer's key.
    pub key: TransferKey,
    /// Which kind of call finished.
    pub kind: CompletionKind,
}

/// One sender's contribution to a gather.
#[derive(Debug)]
pub struct GatherPiece {
    sender: Rank,
    bounds: CellBox,
    bytes: Vec<u8>,
}

impl GatherPiece {
    /// The rank that sent it.
    pub fn sender(&self) -> Rank {
        self.sender
    }

    /// The box the sender announced (empty for "nothing from me").
    pub fn bounds(&self) -> CellBox {
        self.bounds
    }

    /// The payload: the box's cells, packed row-major; empty for an empty box.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }
}

/// The result of a completed gather: one piece per sender, in rank order. Give it back with
/// [`TransferEngine::recycle`] so its buffers are reused.
#[derive(Debug)]
pub struct Gathered {
    key: TransferKey,
    pieces: Vec<GatherPiece>,
}

impl Gathered {
    /// The gather's key.
    pub fn key(&self) -> TransferKey {
        self.key
    }

    /// Each sender's piece, sorted by rank.
    pub fn pieces(&self) -> &[GatherPiece] {
        &self.pieces
    }
}

/// Moves boxes of buffer cells between ranks: [`send`](Self::send) pushes, [`expect`](Self::expect)
/// and [`expect_gather`](Self::expect_gather) await, and [`poll`](Self::poll) makes progress and
/// reports what finished. See the [module documentation](self) for the protocol.
///
/// Lives on the thread that initialised MPI (it borrows the [`Communicator`], which is not
/// `Send`). One engine at a time per communicator: two would steal each other's headers.
///
/// # Errors and dropping
///
/// After an error from [`poll`](Self::poll), the offending header or message is dropped and the
/// engine keeps going; the transfer it belonged to may then never complete. Dropping the engine
/// cancels every receive and polls until the cancellations are done (MPI completes them locally;
/// at most a second); sends still in flight (and any receive MPI would not cancel) are released
/// with `MPI_Request_free` and their staging buffers leaked, so MPI never touches freed memory.
/// Let sends complete before dropping to avoid the leak. Memory lent to a send still in flight must
/// then stay valid for the rest of the process ([`send_lent`](Self::send_lent)); a receive into lent
/// memory ([`expect_into`](Self::expect_into)) that MPI would not cancel aborts the process, since
/// the engine cannot keep the caller's memory alive.
#[derive(Debug)]
pub struct TransferEngine<'c> {
    /// Where this engine receives: its device's communicator.
    comm: &'c Communicator,
    /// Where it sends to node `n`: `comms[n % comms.len()]`, rank `n / comms.len()` (one communicator per device
    /// index; [`for_device`](Self::for_device)). Just `[comm]` with one device per rank.
    comms: Vec<&'c Communicator>,
    /// This engine's device index among its rank's `comms.len()`.
    device: usize,
    /// Every active MPI request; `ops[i]` says what `requests[i]` belongs to.
    requests: Vec<RawRequest>,
    ops: Vec<Op>,
    testsome: Testsome,
    /// Scratch: what the last `MPI_Testsome` found complete.
    done: Vec<Completed>,
    /// Completed requests (already out of `requests`) still to be handled; `finished_pos` is the
    /// next one. Kept across calls so that an error does not lose the completions after it.
    finished: Vec<(Op, Completed)>,
    finished_pos: usize,
    /// [`HEADER_SLOTS`] header receive buffers of [`HEADER_MESSAGE_MAX`] bytes each (a header and an inline
    /// payload). Allocated once, never resized, and accessed only through raw pointers, because MPI may write any
    /// slot whose receive is active.
    header_bufs: Vec<u8>,
    /// Scratch: the header message being handled, copied out of its slot so the slot can be re-posted at once.
    header_msg: Vec<u8>,
    /// Scratch: the boxes of the group of boxes the header message being handled announces.
    group_boxes: Vec<CellBox>,
    /// Scratch: the messages a [`send_lent_boxes`](Self::send_lent_boxes) call plans.
    plan: Vec<send::Planned>,
    outbound: Slab<Outbound>,
    inbound: Slab<Inbound>,
    expects: Slab<Expect>,
    expect_by_key: HashMap<TransferKey, usize>,
    /// Headers that arrived before their expect, with their inline payloads, by key.
    unmatched: EarlyHeaders,
    /// Completions to hand out at the end of the next `poll`.
    ready: Vec<Completion>,
    /// Completed gathers not yet taken.
    gathered: Vec<Gathered>,
    pool: StagingPool,
    spare_boxes: Vec<Vec<CellBox>>,
    /// Emptied target lists of completed `expect_into`s, for reuse.
    spare_dsts: Vec<Vec<*mut u8>>,
    spare_pieces: Vec<Vec<GatherPiece>>,
    next_tag: Tag,
    /// The largest payload message; [`MAX_MESSAGE_BYTES`] except in tests.
    max_message_bytes: usize,
    /// Whether a payload receive was posted since `poll` last tested the requests.
    posted_payload: bool,
    /// Scratch: the contiguous runs of a box in a target of [`expect_into`](Self::expect_into).
    runs: Vec<crate::gpu::CopyRun>,
    /// Messages started so far: headers (with their inline payloads or box lists) and payload messages.
    messages_sent: u64,
    /// Messages taken in so far: header messages (with their inline payloads or groups of boxes) and payload
    /// messages (chunks) received.
    messages_received: u64,
    /// Payload messages started so far (for tests).
    payload_messages_sent: u64,
    /// Header messages announcing a group of boxes started so far (for tests).
    group_messages_sent: u64,
    /// Payloads received straight into an `expect_into` target so far (for tests).
    payloads_received_in_place: u64,
    /// Payloads sent inside their header message so far (for tests).
    inline_payloads_sent: u64,
    /// Inline payloads delivered into their expect's destination so far (for tests).
    inline_payloads_received: u64,
}

impl<'c> TransferEngine<'c> {
    /// Creates the engine and posts its [`HEADER_SLOTS`] header receives.
    ///
    /// # Errors
    ///
    /// [`TransferError::EngineExists`] if another engine uses `comm`; [`TransferError::Mpi`] if
    /// posting a receive fails.
    pub fn new(comm: &'c Communicator) -> Result<Self, TransferError> {
        Self::for_device(&[comm], 0)
    }

    /// The engine of device `device` of a rank that drives `comms.len()` devices, each a node of its own: node
    /// `rank × comms.len() + device`. `comms[d]` is the communicator every rank's device `d` receives on (all over
    /// the same ranks); this engine claims `comms[device]` and sends to node `n` on `comms[n % comms.len()]`.
    /// Ranks and senders in this engine's API are node numbers; payload tags of different devices of one rank
    /// stay apart (tag ≡ device + 1 modulo the device count), so one receiver tells their payloads apart.
    ///
    /// # Errors
    ///
    /// As [`new`](Self::new); [`TransferError::EngineExists`] also if `device` is out of range.
    pub fn for_device(comms: &[&'c Communicator], device: usize) -> Result<Self, TransferError> {
        let Some(&comm) = comms.get(device) else {
            return Err(TransferError::EngineExists);
        };
        if !comm.claim_for_engine() {
            return Err(TransferError::EngineExists);
        }
        // From here on, dropping `engine` releases the claim.
        let mut engine = TransferEngine {
            comm,
            comms: comms.to_vec(),
            device,
            requests: Vec::new(),
            ops: Vec::new(),
            testsome: Testsome::new(),
            done: Vec::new(),
            finished: Vec::new(),
            finished_pos: 0,
            header_bufs: vec![0; HEADER_SLOTS * HEADER_MESSAGE_MAX],
            header_msg: Vec::with_capacity(HEADER_MESSAGE_MAX),
            group_boxes: Vec::new(),
            plan: Vec::new(),
            outbound: Slab::new(),
            inbound: Slab::new(),
            expects: Slab::new(),
            expect_by_key: HashMap::new(),
            unmatched: EarlyHeaders::default(),
            ready: Vec::new(),
            gathered: Vec::new(),
            pool: StagingPool::default(),
            spare_boxes: Vec::new(),
            spare_dsts: Vec::new(),
            spare_pieces: Vec::new(),
            next_tag: HEADER_TAG + 1 + device as Tag,
            max_message_bytes: MAX_MESSAGE_BYTES,
            posted_payload: false,
            runs: Vec::new(),
            messages_sent: 0,
            messages_received: 0,
            payload_messages_sent: 0,
            group_messages_sent: 0,
            payloads_received_in_place: 0,
            inline_payloads_sent: 0,
            inline_payloads_received: 0,
        };
        for slot in 0..HEADER_SLOTS {
            engine.post_header_recv(slot)?;
        }
        Ok(engine)
    }

    /// Registers that the cells `region` (disjoint boxes) of transfer `key` are to be received into
    /// the allocation at `dst`, laid out as `layout`. Headers for `key` that already arrived are
    /// matched now; `token` comes back in a [`CompletionKind::Received`] completion once every
    /// cell of `region` has been written to `dst`.
    ///
    /// # Errors
    ///
    /// [`TransferError::DuplicateExpect`] if `key` is already expected,
    /// [`TransferError::InvalidLayout`], [`TransferError::BoxOutsideAllocation`] if a box of `region`
    /// is not inside `layout.bounds`, [`TransferError::RegionOverlap`], a header error (such as
    /// [`TransferError::OutsideRegion`]) for a header that arrived earlier, in which case nothing
    /// is registered, or [`TransferError::Mpi`].
    ///
    /// # Safety
    ///
    /// `dst` points to an allocation laid out as `layout` that stays valid until the completion
    /// for `token` has been returned by [`poll`](Self::poll) or the engine is dropped; until then
    /// nothing else reads or writes its cells in `region` (the engine writes them during `poll`, and during this
    /// call for inline payloads whose headers arrived earlier).
    pub unsafe fn expect(
        &mut self,
        key: TransferKey,
        region: &[CellBox],
        layout: &AllocLayout,
        dst: *mut u8,
        token: Token,
    ) -> Result<(), TransferError> {
        let layout = *layout;
        if self.expect_by_key.contains_key(&key) {
            return Err(TransferError::DuplicateExpect { key });
        }
        layout.validate()?;
        let (boxes, volume) = self.region_boxes(key, region, |b| layout.box_bytes(b))?;
        let expect = Expect {
            key,
            token,
            kind: ExpectKind::Region { layout, dst },
            region: boxes,
            region_volume: volume,
            dsts: Vec::new(),
            received: self.spare_boxes.pop().unwrap_or_default(),
            received_volume: 0,
            pieces: Vec::new(),
            outstanding: 0,
            index: None,
        };
        self.register(expect)
    }

    /// Registers that the cells of transfer `key` are to be received into memory the caller lends: `targets` are
    /// disjoint boxes, each with the address of its cells packed row-major (`elem_size` bytes each); the region
    /// expected is their union. A payload larger than [`INLINE_PAYLOAD_BYTES`] whose box lies in one target and
    /// is contiguous there (any box of a 1D target, whole rows of a 2D one) is received by MPI straight into the
    /// target; any other is received into the engine's staging (an inline one arrives in its header message) and
    /// copied into the targets it covers during [`poll`](Self::poll) (or during this call, for a header that
    /// arrived earlier). `token` comes back in a [`CompletionKind::Received`] completion once every cell is in.
    ///
    /// # Errors
    ///
    /// As [`expect`](Self::expect); nothing is registered then, and the targets are not used.
    ///
    /// # Safety
    ///
    /// Each target points to `bounds.volume() * elem_size` writable bytes that stay valid until the completion for
    /// `token` has been returned by [`poll`](Self::poll) or the engine has been dropped; until then nothing else
    /// reads or writes them (MPI may write them at any time in between). Targets do not overlap.
    pub unsafe fn expect_into(
        &mut self,
        key: TransferKey,
        targets: &[(CellBox, *mut u8)],
        elem_size: usize,
        token: Token,
    ) -> Result<(), TransferError> {
        if self.expect_by_key.contains_key(&key) {
            return Err(TransferError::DuplicateExpect { key });
        }
        let mut region = self.spare_boxes.pop().unwrap_or_default();
        region.extend(targets.iter().map(|t| t.0));
        let checked = self.region_boxes(key, &region, |b| packed_bytes(b, elem_size));
        region.clear();
        self.spare_boxes.push(region);
        let (boxes, volume) = checked?;
        // `region_boxes` keeps the non-empty boxes in order: their targets, in the same order.
        let mut dsts = self.spare_dsts.pop().unwrap_or_default();
        dsts.extend(targets.iter().filter(|t| !t.0.is_empty()).map(|t| t.1));
        let expect = Expect {
            key,
            token,
            kind: ExpectKind::Into { elem_size },
            region: boxes,
            region_volume: volume,
            dsts,
            received: self.spare_boxes.pop().unwrap_or_default(),
            received_volume: 0,
            pieces: Vec::new(),
            outstanding: 0,
            index: None,
        };
        self.register(expect)
    }

    /// Registers that the cells `region` (disjoint boxes) of transfer `key`, of `elem_size` bytes each, are to be
    /// received and kept as they arrive: no copy into an allocation. `token` comes back in a
    /// [`CompletionKind::Received`] completion once every cell is in; then
    /// [`take_gathered`](Self::take_gathered) hands out the pieces (each a box a sender sent and its cells,
    /// packed row-major), to be given back with [`recycle`](Self::recycle).
    ///
    /// # Errors
    ///
    /// As [`expect`](Self::expect) (the boxes must fit `usize` byte counts; there is no allocation to lie in).
    pub fn expect_pieces(
        &mut self,
        key: TransferKey,
        region: &[CellBox],
        elem_size: usize,
        token: Token,
    ) -> Result<(), TransferError> {
        if self.expect_by_key.contains_key(&key) {
            return Err(TransferError::DuplicateExpect { key });
        }
        let (boxes, volume) = self.region_boxes(key, region, |b| packed_bytes(b, elem_size))?;
        let expect = Expect {
            key,
            token,
            kind: ExpectKind::Pieces { elem_size },
            region: boxes,
            region_volume: volume,
            dsts: Vec::new(),
            received: self.spare_boxes.pop().unwrap_or_default(),
            received_volume: 0,
            pieces: self.spare_pieces.pop().unwrap_or_default(),
            outstanding: 0,
            index: None,
        };
        self.register(expect)
    }

    /// The non-empty boxes of an expected `region` (in a vector from the spare pool) and their total volume, after
    /// checking each with `fits` and that no two overlap.
    fn region_boxes(
        &mut self,
        key: TransferKey,
        region: &[CellBox],
        fits: impl Fn(&CellBox) -> Result<usize, TransferError>,
    ) -> Result<(Vec<CellBox>, usize), TransferError> {
        let mut boxes = self.spare_boxes.pop().unwrap_or_default();
        boxes.extend(region.iter().copied().filter(|b| !b.is_empty()));
        let mut volume = 0;
        let many = boxes.len() > state::INDEX_MIN_BOXES;
        for (i, b) in boxes.iter().enumerate() {
            if let Err(e) = fits(b) {
                // Back to the pool empty: a later expect extends whatever it pops.
                boxes.clear();
                self.spare_boxes.push(boxes);
                return Err(e);
            }
            if !many {
                if let Some(other) = boxes[..i].iter().find(|o| o.intersects(b)) {
                    let overlap = other.intersection(b);
                    return Err(TransferError::RegionOverlap { key, region: BoxList(boxes), overlap });
                }
            }
            volume += b.volume();
        }
        if many {
            if let Some(overlap) = geometry::first_overlap(&boxes) {
                return Err(TransferError::RegionOverlap { key, region: BoxList(boxes), overlap });
            }
        }
        Ok((boxes, volume))
    }

    /// Registers a gather for transfer `key`: it completes once `senders` ranks have each
    /// announced one box (empty boxes count) and their payloads have arrived. Then `token` comes
    /// back in a [`CompletionKind::Gathered`] completion and
    /// [`take_gathered`](Self::take_gathered) hands out each sender's bytes in rank order.
    ///
    /// # Errors
    ///
    /// [`TransferError::DuplicateExpect`], [`TransferError::TooManyGatherSenders`], a header error
    /// for a header that arrived earlier (nothing is registered then), or [`TransferError::Mpi`].
    pub fn expect_gather(&mut self, key: TransferKey, senders: usize, token: Token) -> Result<(), TransferError> {
        if self.expect_by_key.contains_key(&key) {
            return Err(TransferError::DuplicateExpect { key });
        }
        if senders > usize::try_from(self.nodes()).unwrap_or(0) {
            return Err(TransferError::TooManyGatherSenders { key, senders, size: self.nodes() });
        }
        let expect = Expect {
            key,
            token,
            kind: ExpectKind::Gather { senders },
            region: Vec::new(),
            region_volume: 0,
            dsts: Vec::new(),
            received: Vec::new(),
            received_volume: 0,
            pieces: self.spare_pieces.pop().unwrap_or_default(),
            outstanding: 0,
            index: None,
        };
        self.register(expect)
    }

    /// Makes progress without blocking: tests every active MPI request (`MPI_Testsome`; a second time if
    /// that posted payload receives), matches arrived headers, posts payload receives, unpacks finished payloads, and appends a
    /// [`Completion`] for each send and expect that finished. Allocates nothing in a steady state
    /// (staging buffers come from a pool).
    ///
    /// # Errors
    ///
    /// An MPI error, or a header that does not fit what is expected (see [`TransferError`]). The
    /// offending header or message is dropped; call `poll` again to go on with the rest, which an
    /// error does not lose. Completions of this call not yet appended come with the next call.
    pub fn poll(&mut self, completed: &mut Vec<Completion>) -> Result<(), TransferError> {
        // What an earlier call left after an error.
        self.handle_finished()?;
        // Payload receives posted for headers found in the first pass usually match messages that already
        // arrived (a sender sends header and payload back to back): a second pass completes them now instead of
        // one caller loop later.
        for _ in 0..2 {
            self.posted_payload = false;
            if self.requests.is_empty() {
                break;
            }
            self.done.clear();
            self.testsome.test(self.comm, &mut self.requests, &mut self.done)?;
            self.remove_done();
            self.handle_finished()?;
            if !self.posted_payload {
                break;
            }
        }
        completed.append(&mut self.ready);
        Ok(())
    }

    /// Records that node `sender`'s cells `bounds` of transfer `key`, `elem_size` bytes each, arrive by another way
    /// than MPI (a GPU copy between two devices of one process that share a Vulkan device): matched against the
    /// expect for `key` like a header, now or when the expect is registered, and checked the same way, they count
    /// towards its completion, but the engine receives and writes nothing for them. The caller writes those cells
    /// itself (after the completion, its destination holds unspecified bytes there).
    ///
    /// # Errors
    ///
    /// As a header's (see [`TransferError`]: [`TransferError::OutsideRegion`], [`TransferError::Duplicate`], ...)
    /// if the expect is registered; [`TransferError::ElsewhereNotRegion`] for a gather or pieces expect. Nothing is
    /// recorded then.
    pub fn arrived_elsewhere(
        &mut self,
        key: TransferKey,
        sender: Rank,
        bounds: CellBox,
        elem_size: usize,
    ) -> Result<(), TransferError> {
        let bytes = bounds.checked_volume().and_then(|v| v.checked_mul(elem_size)).unwrap_or(usize::MAX);
        let header = header::Header { sender, tag: 0, key, bounds, bytes, chunk: 0, inline: false, group: None };
        match self.expect_by_key.get(&key) {
            Some(&idx) => {
                let e = self.expects.get(idx);
                progress::check_header(e, &header)?;
                progress::check_elsewhere(e, &header)?;
                self.accept(idx, &header, &[], true)?;
                self.complete_if_done(idx);
            }
            None => self.unmatched.push(EarlyHeader { header, inline: Vec::new(), elsewhere: true, boxes: Vec::new() }),
        }
        Ok(())
    }

    /// Hands out the result of the completed gather `key`, or `None` if there is none (not
    /// complete yet, not a gather, or already taken).
    pub fn take_gathered(&mut self, key: TransferKey) -> Option<Gathered> {
        let i = self.gathered.iter().position(|g| g.key == key)?;
        Some(self.gathered.swap_remove(i))
    }

    /// Gives a [`Gathered`] back, so that its buffers are reused by later transfers.
    pub fn recycle(&mut self, mut gathered: Gathered) {
        for piece in gathered.pieces.drain(..) {
            self.pool.give(piece.bytes);
        }
        self.spare_pieces.push(gathered.pieces);
    }

    /// Whether nothing is in flight or pending: no send still sending, no expect waiting, no
    /// header waiting for its expect, and no completion not yet returned by [`poll`](Self::poll).
    /// Completed gathers not yet taken do not count.
    pub fn is_idle(&self) -> bool {
        self.outbound.live == 0
            && self.expects.live == 0
            && self.unmatched.is_empty()
            && self.ready.is_empty()
            && self.finished_pos == self.finished.len()
    }

    /// Whether data is moving: a send not yet complete, a payload being received (its header arrived), or a
    /// completion not yet returned by [`poll`](Self::poll). Such work completes without waiting for another rank's
    /// program; an expect whose header has not arrived may wait arbitrarily long, and does not count.
    pub fn is_moving_data(&self) -> bool {
        self.outbound.live > 0
            || self.inbound.live > 0
            || !self.ready.is_empty()
            || self.finished_pos < self.finished.len()
    }

    /// Headers that arrived with no expect for their key yet, as (key, sender, box), one entry per box announced (a
    /// header of a group of boxes gives one per box): for diagnosing transfers that never complete. Keys come in no
    /// particular order, each key's boxes in the order they arrived.
    pub fn unmatched_headers(&self) -> impl Iterator<Item = (TransferKey, Rank, CellBox)> + '_ {
        self.unmatched.iter().flat_map(|u| u.announced_boxes().iter().map(move |b| (u.header.key, u.header.sender, *b)))
    }

    /// How many boxes announced by headers (with their inline payloads) wait for their expect now: how far senders
    /// are ahead of this engine's expects.
    pub fn unmatched_count(&self) -> usize {
        self.unmatched.len()
    }

    /// The most headers that waited for their expect at once so far ([`unmatched_count`](Self::unmatched_count)'s
    /// high-water mark).
    pub fn unmatched_peak(&self) -> usize {
        self.unmatched.peak()
    }

    /// How many MPI messages this engine has started so far: header messages (each carrying one box's header and
    /// inline payload, or the box list and payloads of a group of small boxes) and payload messages.
    pub fn messages_sent(&self) -> u64 {
        self.messages_sent
    }

    /// How many MPI messages this engine has taken in so far: header messages (with their inline payloads, or a
    /// group of small boxes) and payload messages, erroneous ones included. It grows while data arrives even when no
    /// transfer completes (the inline headers of a region of many boxes), so a caller polling in a loop can tell a
    /// stream of arriving messages from waiting ([`poll`](Self::poll) takes in at most [`HEADER_SLOTS`] headers per
    /// pass).
    pub fn messages_received(&self) -> u64 {
        self.messages_received
    }

    /// Expects registered and not yet complete, as (key, token).
    pub fn pending_expects(&self) -> impl Iterator<Item = (TransferKey, Token)> + '_ {
        self.expects.iter().map(|e| (e.key, e.token))
    }

    /// Sends not yet complete, as (key, target rank): for diagnosing transfers that never complete.
    pub fn pending_sends(&self) -> impl Iterator<Item = (TransferKey, Rank)> + '_ {
        self.outbound.iter().map(|o| (o.key, o.target))
    }
}

impl Drop for TransferEngine<'_> {
    fn drop(&mut self) {
        // Receives can always be cancelled, and a cancelled receive completes without the
        // sender's help (MPI-3.1 §3.8.4), so this loop ends once only sends are left.
        for (request, op) in self.requests.iter_mut().zip(&self.ops) {
            if !matches!(op, Op::Send { .. }) {
                let _ = request.cancel(self.comm);
            }
        }
        // Bounded all the same, in case MPI refused a cancellation: what is left is leaked below.
        let give_up = std::time::Instant::now() + std::time::Duration::from_secs(1);
        while self.ops.iter().any(|op| !matches!(op, Op::Send { .. })) && std::time::Instant::now() < give_up {
            self.done.clear();
            if self.testsome.test(self.comm, &mut self.requests, &mut self.done).is_err() {
                break;
            }
            self.remove_done();
            self.finished.clear();
            self.finished_pos = 0;
        }
        // What is left (sends whose receiver never came, or anything after an MPI error or a
        // refused cancellation): let MPI finish it on its own and leak its buffer, so MPI never
        // touches freed memory.
        // A receive into memory lent by `expect_into`'s caller cannot be leaked like a buffer of ours: the caller
        // frees that memory once the engine is gone. MPI never refuses to cancel a receive, so this does not
        // happen unless MPI misbehaves; then ending the process is the only way not to corrupt memory.
        let lent = self.ops.iter().any(|op| matches!(*op, Op::RecvChunk { inb, .. } if self.inbound.get(inb).direct));
        if lent {
            eprintln!("celer: MPI did not cancel a receive into lent memory when the transfer engine was dropped");
            std::process::abort();
        }
        let mut leak_headers = false;
        for (request, op) in self.requests.iter_mut().zip(&self.ops) {
            let _ = request.free(self.comm);
            match *op {
                Op::Send { out } => std::mem::forget(std::mem::take(&mut self.outbound.get_mut(out).staging)),
                Op::RecvChunk { inb, .. } => std::mem::forget(std::mem::take(&mut self.inbound.get_mut(inb).staging)),
                Op::Header { .. } => leak_headers = true,
            }
        }
        if leak_headers {
            std::mem::forget(std::mem::take(&mut self.header_bufs));
        }
        self.comm.release_from_engine();
        // Staging buffers whose requests all completed are freed normally with their slabs.
    }
}

/// Test-only knobs (Celerity's "testspy"): not part of the API, compiled only for celer-exec's own
/// tests or with the `test-utils` feature.
#[cfg(any(test, feature = "test-utils"))]
pub mod testspy {
    use super::TransferEngine;

    /// Makes `engine` split payloads into messages of at most `bytes` bytes (instead of
    /// `i32::MAX`), so that tests can exercise the split without sending gigabytes.
    ///
    /// # Panics
    ///
    /// If `bytes` is 0 or larger than `i32::MAX`.
    pub fn set_max_message_bytes(engine: &mut TransferEngine<'_>, bytes: usize) {
        assert!(bytes > 0 && bytes <= super::MAX_MESSAGE_BYTES, "message size must be in 1..=i32::MAX");
        engine.max_message_bytes = bytes;
    }

    /// The number of payload messages `engine` has started (headers not counted).
    pub fn payload_messages_sent(engine: &TransferEngine<'_>) -> u64 {
        engine.payload_messages_sent
    }

    /// The number of header messages `engine` has started that announce a group of boxes (each box list with its
    /// boxes' payloads).
    pub fn group_messages_sent(engine: &TransferEngine<'_>) -> u64 {
        engine.group_messages_sent
    }

    /// The number of payloads `engine` has received straight into a target of
    /// [`expect_into`](TransferEngine::expect_into), with no staging buffer.
    pub fn payloads_received_in_place(engine: &TransferEngine<'_>) -> u64 {
        engine.payloads_received_in_place
    }

    /// The number of payloads `engine` has sent inside their header message (at most
    /// [`INLINE_PAYLOAD_BYTES`](super::INLINE_PAYLOAD_BYTES) each; not counted by
    /// [`payload_messages_sent`]).
    pub fn inline_payloads_sent(engine: &TransferEngine<'_>) -> u64 {
        engine.inline_payloads_sent
    }

    /// The number of inline payloads `engine` has copied into their expect's destination (no payload receive was
    /// posted for them).
    pub fn inline_payloads_received(engine: &TransferEngine<'_>) -> u64 {
        engine.inline_payloads_received
    }
}

/// The bytes of box `b` packed on its own, `elem_size` bytes per cell; an error where the layout is invalid or the
/// count overflows.
fn packed_bytes(b: &CellBox, elem_size: usize) -> Result<usize, TransferError> {
    let fits = AllocLayout { bounds: *b, elem_size };
    fits.validate().and_then(|_| fits.box_bytes(b))
}

#[cfg(test)]
mod tests;
