//! The transfer engine's errors: [`TransferError`], naming the transfer, sender and boxes at fault.

use super::{AllocLayout, BoxList, CellBox, MpiError, Rank, TransferKey};

/// An error of the transfer engine. Errors returned by [`TransferEngine::poll`](crate::transfer::TransferEngine::poll) name the transfer;
/// the others come from the call that was given bad arguments.
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum TransferError {
    /// Cells announced as arriving by another way ([`TransferEngine::arrived_elsewhere`](crate::transfer::TransferEngine::arrived_elsewhere))
    /// belong to a transfer expected as a gather or as pieces, which keep payloads rather than count cells.
    #[error("Transfer {key}: {bounds} from rank {sender} arrived by a device copy, but the transfer is expected as a gather or as pieces, which need the payload")]
    ElsewhereNotRegion {
        /// The transfer.
        key: TransferKey,
        /// The sending node.
        sender: Rank,
        /// The box.
        bounds: CellBox,
    },
    /// A second engine was created for a communicator that already has one.
    #[error("A transfer engine already uses this communicator; create one per communicator, as engines would steal each other's headers")]
    EngineExists,
    /// Starting an MPI operation failed (the message names the MPI call and MPI's own description).
    #[error(transparent)]
    Mpi(#[from] MpiError),
    /// A send of transfer `key` completed with an MPI error.
    #[error("Sending transfer {key} to rank {target} failed: {error}")]
    SendFailed {
        /// The transfer.
        key: TransferKey,
        /// The rank it was sent to.
        target: Rank,
        /// MPI's error (its text is part of this error's message, so it is not also a `source()`).
        error: MpiError,
    },
    /// A payload receive completed with an MPI error (e.g. truncation).
    #[error("Receiving the payload of transfer {key} ({bounds}) from rank {sender} failed: {error}")]
    ReceiveFailed {
        /// The transfer.
        key: TransferKey,
        /// The rank it came from.
        sender: Rank,
        /// The box the payload holds.
        bounds: CellBox,
        /// MPI's error (its text is part of this error's message, so it is not also a `source()`).
        error: MpiError,
    },
    /// A header receive completed with an MPI error (e.g. a longer message on the header tag).
    #[error("Receiving a transfer header failed: {error}")]
    HeaderReceiveFailed {
        /// MPI's error (its text is part of this error's message, so it is not also a `source()`).
        error: MpiError,
    },
    /// A message on the header tag is not a valid header; something else uses tag 0.
    #[error("A message of {len} bytes from rank {sender} on the header tag is not a transfer header: {reason}")]
    BadHeader {
        /// The rank MPI says it came from.
        sender: Rank,
        /// Its length in bytes.
        len: usize,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A header message declares an inline payload of one length but carries another: the header is dropped (the
    /// transfer may then never complete).
    #[error("Transfer {key}: rank {sender} announces {bounds} with an inline payload of {declared} bytes, but the header message carries {got} bytes after the header")]
    InlineLength {
        /// The transfer.
        key: TransferKey,
        /// The announcing rank.
        sender: Rank,
        /// The box the payload holds.
        bounds: CellBox,
        /// The payload length the header declares.
        declared: usize,
        /// The bytes that arrived after the header.
        got: usize,
    },
    /// A header message announcing a group of boxes is malformed: its box list and payloads do not fill the message,
    /// or a box of the list is empty or outside the group's bounding box. The whole message is dropped (the
    /// transfer may then never complete).
    #[error("Transfer {key}: rank {sender} announces {count} boxes in {bounds} with {len} bytes of box list and payloads, but {reason}")]
    BadGroup {
        /// The transfer.
        key: TransferKey,
        /// The announcing node.
        sender: Rank,
        /// The group's bounding box.
        bounds: CellBox,
        /// The boxes the header announces.
        count: usize,
        /// The bytes behind the header.
        len: usize,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A header announces cells the receiver does not expect for this key.
    #[error("Transfer {key}: rank {sender} announces {bounds}, which lies outside the expected region {region}")]
    OutsideRegion {
        /// The transfer.
        key: TransferKey,
        /// The announcing rank.
        sender: Rank,
        /// The announced box.
        bounds: CellBox,
        /// The region the receiver expects.
        region: BoxList,
    },
    /// A header announces cells that have already been received for this key.
    #[error("Transfer {key}: rank {sender} announces {bounds}, but its cells {overlap} have already been received")]
    Duplicate {
        /// The transfer.
        key: TransferKey,
        /// The announcing rank.
        sender: Rank,
        /// The announced box.
        bounds: CellBox,
        /// Cells that arrive twice.
        overlap: CellBox,
    },
    /// A header's byte length disagrees with its box and the destination's element size.
    #[error(
        "Transfer {key}: rank {sender} announces {bounds} as {bytes} bytes, but with {elem_size}-byte elements \
         it is {expected} bytes; sender and receiver disagree on the element size"
    )]
    LengthMismatch {
        /// The transfer.
        key: TransferKey,
        /// The announcing rank.
        sender: Rank,
        /// The announced box.
        bounds: CellBox,
        /// The announced length.
        bytes: usize,
        /// The destination's bytes per cell.
        elem_size: usize,
        /// The length the receiver computes.
        expected: usize,
    },
    /// A rank announced a second piece for the same gather.
    #[error("Transfer {key}: rank {sender} announces {bounds}, but it has already sent its piece of this gather")]
    DuplicateSender {
        /// The transfer.
        key: TransferKey,
        /// The announcing rank.
        sender: Rank,
        /// The announced box.
        bounds: CellBox,
    },
    /// More ranks announced pieces of a gather than it expects.
    #[error("Transfer {key}: rank {sender} announces {bounds}, but the gather expects only {expected} senders")]
    TooManySenders {
        /// The transfer.
        key: TransferKey,
        /// The announcing rank.
        sender: Rank,
        /// The announced box.
        bounds: CellBox,
        /// The number of senders the gather expects.
        expected: usize,
    },
    /// A payload message has a different length than its header announced.
    #[error("Transfer {key}: a payload message of {bounds} from rank {sender} has {got} bytes instead of {expected}")]
    PayloadLength {
        /// The transfer.
        key: TransferKey,
        /// The sending rank.
        sender: Rank,
        /// The box the payload holds.
        bounds: CellBox,
        /// Bytes that arrived.
        got: usize,
        /// Bytes announced for this message.
        expected: usize,
    },
    /// `expect` was called for a key whose expect has not completed yet.
    #[error("Transfer {key} is already expected; expect each key once and wait for its completion")]
    DuplicateExpect {
        /// The transfer.
        key: TransferKey,
    },
    /// The boxes passed to `expect` overlap each other.
    #[error("Transfer {key}: the expected region {region} overlaps itself in {overlap}; pass disjoint boxes")]
    RegionOverlap {
        /// The transfer.
        key: TransferKey,
        /// The boxes passed.
        region: BoxList,
        /// Cells in two of them.
        overlap: CellBox,
    },
    /// A rank outside the communicator was named.
    #[error("Rank {rank} does not exist: the communicator has {size} ranks")]
    NoSuchRank {
        /// The rank named.
        rank: Rank,
        /// The number of ranks.
        size: i32,
    },
    /// A gather was asked for more senders than there are ranks.
    #[error("Transfer {key}: a gather from {senders} senders can never complete with {size} ranks")]
    TooManyGatherSenders {
        /// The transfer.
        key: TransferKey,
        /// The senders asked for.
        senders: usize,
        /// The number of ranks.
        size: i32,
    },
    /// A box does not lie inside the allocation it is packed from or unpacked into.
    #[error("Box {bounds} lies outside the allocation {allocation}")]
    BoxOutsideAllocation {
        /// The box.
        bounds: CellBox,
        /// The cells the allocation holds.
        allocation: CellBox,
    },
    /// An allocation layout has a zero element size, or its size overflows `usize`.
    #[error("The allocation layout {layout:?} is invalid: its element size is 0 or its size overflows usize")]
    InvalidLayout {
        /// The layout.
        layout: AllocLayout,
    },
    /// An allocation is shorter than its layout says.
    #[error("An allocation of {len} bytes cannot hold the layout {layout:?}, which needs {needed} bytes")]
    AllocationTooSmall {
        /// The layout.
        layout: AllocLayout,
        /// The bytes given.
        len: usize,
        /// The bytes the layout needs.
        needed: usize,
    },
    /// A packed buffer does not have the size of the box it holds.
    #[error("A packed buffer of {len} bytes cannot hold box {bounds}, which is {expected} bytes")]
    StagingSize {
        /// The box.
        bounds: CellBox,
        /// The buffer's length.
        len: usize,
        /// The box's byte size.
        expected: usize,
    },
}

/// The same sentence as `Display`, so that `fn main() -> Result<(), Box<dyn Error>>` prints a readable message.
impl std::fmt::Debug for TransferError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}
