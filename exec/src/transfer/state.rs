//! The engine's bookkeeping: what each MPI request belongs to, sends and receives in flight, expects, pools.

use std::collections::HashMap;

use super::header::Header;
use super::{AllocLayout, CellBox, GatherPiece, Rank, Token, TransferKey, MAX_POOLED};

/// What an entry of the request array belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Op {
    /// The header receive of slot `slot` of `header_bufs`.
    Header { slot: usize },
    /// The header or one payload message of outbound transfer `out`.
    Send { out: usize },
    /// One payload message of `len` bytes for inbound payload `inb`.
    RecvChunk { inb: usize, len: usize },
}

/// A send whose messages are in flight.
#[derive(Debug)]
pub(super) struct Outbound {
    pub(super) key: TransferKey,
    pub(super) token: Token,
    pub(super) target: Rank,
    /// The header (first [`HEADER_LEN`](super::header::HEADER_LEN) bytes), then the packed payload unless it is
    /// lent. MPI reads it until every message has completed.
    pub(super) staging: Vec<u8>,
    /// Messages not yet completed.
    pub(super) pending: usize,
}

/// A header that arrived before its expect was registered.
#[derive(Debug)]
pub(super) struct EarlyHeader {
    pub(super) header: Header,
    /// Its inline payload, copied out of the header slot into a pooled buffer (empty if the payload is not inline):
    /// kept until the expect takes it.
    pub(super) inline: Vec<u8>,
    /// Whether its cells arrive by another way ([`TransferEngine::arrived_elsewhere`](super::TransferEngine::arrived_elsewhere)):
    /// counted, no payload received.
    pub(super) elsewhere: bool,
    /// For a header announcing a group of boxes, the boxes (`inline` holds their payloads packed one after another;
    /// [`Header::parts`] splits them); empty otherwise.
    pub(super) boxes: Vec<CellBox>,
}

impl EarlyHeader {
    /// How many boxes it announces: a group's count, else 1.
    pub(super) fn announced(&self) -> usize {
        self.boxes.len().max(1)
    }

    /// The boxes it announces: a group's, else the header's one box.
    pub(super) fn announced_boxes(&self) -> &[CellBox] {
        if self.boxes.is_empty() {
            std::slice::from_ref(&self.header.bounds)
        } else {
            &self.boxes
        }
    }
}

/// The headers that arrived before their expect, by key, each key's in arrival order (an expect enters them in
/// that order, as it would have had it been registered first); counted by the boxes they announce (a group's
/// header counts each of its boxes). An expect looks its key up in constant time
/// (on average) however many are kept: a sender may run ahead of this rank's await-pushes by as much as the
/// runtime's pacing lets it (the scheduler's `DIVERGENCE_WINDOWS`), and a scan of every kept header per expect made
/// each await-push slower the further behind this rank was.
#[derive(Debug, Default)]
pub(super) struct EarlyHeaders {
    by_key: HashMap<TransferKey, Vec<EarlyHeader>>,
    /// Boxes announced by the headers kept, over all keys.
    len: usize,
    /// The most boxes kept at once so far.
    peak: usize,
    /// Emptied lists, for the next keys (most keys get one header per sender).
    spare: Vec<Vec<EarlyHeader>>,
}

/// Emptied lists [`EarlyHeaders`] keeps for reuse at most.
const SPARE_LISTS: usize = 64;

impl EarlyHeaders {
    /// Keeps `h` behind the headers of its key that arrived before it.
    pub(super) fn push(&mut self, h: EarlyHeader) {
        let spare = &mut self.spare;
        self.len += h.announced();
        self.by_key.entry(h.header.key).or_insert_with(|| spare.pop().unwrap_or_default()).push(h);
        self.peak = self.peak.max(self.len);
    }

    /// The headers kept for `key`, in arrival order.
    pub(super) fn of(&self, key: TransferKey) -> &[EarlyHeader] {
        self.by_key.get(&key).map_or(&[], Vec::as_slice)
    }

    /// Takes the headers kept for `key` (in arrival order); give the list back with [`restore`](Self::restore).
    pub(super) fn take(&mut self, key: TransferKey) -> Option<Vec<EarlyHeader>> {
        let list = self.by_key.remove(&key)?;
        self.len -= list.iter().map(EarlyHeader::announced).sum::<usize>();
        Some(list)
    }

    /// Gives back a list [`take`](Self::take) handed out: what is left in it is kept for `key` again, ahead of
    /// any header of `key` that arrived since.
    pub(super) fn restore(&mut self, key: TransferKey, mut list: Vec<EarlyHeader>) {
        if list.is_empty() {
            if self.spare.len() < SPARE_LISTS {
                self.spare.push(list);
            }
            return;
        }
        self.len += list.iter().map(EarlyHeader::announced).sum::<usize>();
        if let Some(later) = self.by_key.remove(&key) {
            list.extend(later);
        }
        self.by_key.insert(key, list);
    }

    /// Boxes announced by the headers kept, over all keys.
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// Whether no header is kept.
    pub(super) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The most boxes kept at once so far.
    pub(super) fn peak(&self) -> usize {
        self.peak
    }

    /// Every header kept: keys in no particular order, each key's headers in arrival order.
    pub(super) fn iter(&self) -> impl Iterator<Item = &EarlyHeader> {
        self.by_key.values().flatten()
    }
}

/// A payload being received for an expect.
#[derive(Debug)]
pub(super) struct Inbound {
    /// Index of the expect in `expects`.
    pub(super) expect: usize,
    pub(super) sender: Rank,
    pub(super) bounds: CellBox,
    /// MPI writes the payload here until every message has completed.
    pub(super) staging: Vec<u8>,
    /// Messages not yet completed.
    pub(super) pending: usize,
    /// Whether MPI receives straight into the caller's memory (an [`ExpectKind::Into`] target holding the box
    /// contiguously); `staging` is empty then and nothing is unpacked.
    pub(super) direct: bool,
    /// For a gather: the index of the sender's piece.
    pub(super) piece: Option<usize>,
}

/// Where an expect's data goes.
#[derive(Debug, Clone, Copy)]
pub(super) enum ExpectKind {
    /// Unpacked into the caller's allocation at `dst`.
    Region { layout: AllocLayout, dst: *mut u8 },
    /// Received into the caller's memory: one target per box of the region (`Expect::dsts`), each holding its
    /// box's cells packed row-major.
    Into { elem_size: usize },
    /// Kept per sender; complete after `senders` headers.
    Gather { senders: usize },
    /// A region whose payloads are kept as they arrive (packed, one piece per box sent), for the caller to take
    /// with [`TransferEngine::take_gathered`](super::TransferEngine::take_gathered) once every cell is in.
    Pieces { elem_size: usize },
}

/// A registered expect.
#[derive(Debug)]
pub(super) struct Expect {
    pub(super) key: TransferKey,
    pub(super) token: Token,
    pub(super) kind: ExpectKind,
    /// The expected boxes, disjoint and non-empty (region expects only).
    pub(super) region: Vec<CellBox>,
    pub(super) region_volume: usize,
    /// Where each box of `region` goes ([`ExpectKind::Into`] only; empty otherwise).
    pub(super) dsts: Vec<*mut u8>,
    /// Boxes announced so far (region expects only).
    pub(super) received: Vec<CellBox>,
    pub(super) received_volume: usize,
    /// One piece per announcing sender (gathers only).
    pub(super) pieces: Vec<GatherPiece>,
    /// Payloads announced but not yet fully received.
    pub(super) outstanding: usize,
    /// For a region of more than [`INDEX_MIN_BOXES`] boxes ([`Expect::build_index`]): finds the box a header announces
    /// whole by binary search, so that matching a header costs `O(log n)`, not `O(n)`, in the region's boxes.
    pub(super) index: Option<Box<RegionIndex>>,
}

/// Regions of more boxes than this get a [`RegionIndex`]; smaller ones are scanned.
pub(super) const INDEX_MIN_BOXES: usize = 16;

/// The boxes of an expect's region sorted by their corners, and which of them arrived whole: a region of many boxes
/// (a custom mapper's scattered cells) is usually sent box for box, and scanning the region and what arrived for every
/// header made matching the headers of `n` boxes cost `n²` (10 000 one-cell boxes: 17 s of a debug build).
#[derive(Debug)]
pub(super) struct RegionIndex {
    /// Indices into the region, sorted by (min, max).
    order: Vec<u32>,
    /// Per region box: whether a header announced exactly it.
    whole: Vec<bool>,
    /// Whether a header announced a box that is not exactly one of the region's (then duplicates are found by scanning
    /// what arrived).
    partial: bool,
}

impl Expect {
    /// Indexes the region if it has more than [`INDEX_MIN_BOXES`] boxes (none are received yet).
    pub(super) fn build_index(&mut self) {
        if self.region.len() <= INDEX_MIN_BOXES || u32::try_from(self.region.len()).is_err() {
            return;
        }
        let region = &self.region;
        let mut order: Vec<u32> = (0..region.len() as u32).collect();
        order.sort_unstable_by_key(|&i| (region[i as usize].min(), region[i as usize].max()));
        self.index = Some(Box::new(RegionIndex { order, whole: vec![false; region.len()], partial: false }));
    }

    /// The index of the region's box equal to `b`, where the region is indexed and has one.
    pub(super) fn exact(&self, b: &CellBox) -> Option<usize> {
        let index = self.index.as_ref()?;
        let key = (b.min(), b.max());
        let at = index.order.binary_search_by(|&i| {
            let r = &self.region[i as usize];
            (r.min(), r.max()).cmp(&key)
        });
        at.ok().map(|k| index.order[k] as usize)
    }

    /// Whether region box `i` (found by [`exact`](Self::exact)) may overlap what arrived: it arrived whole, or
    /// something not exactly a region box arrived (which the caller must then test). `false` means it cannot.
    pub(super) fn may_overlap_received(&self, i: usize) -> bool {
        self.index.as_ref().is_none_or(|x| x.whole[i] || x.partial)
    }

    /// Notes that the cells `b` were announced (region expects).
    pub(super) fn note_received(&mut self, b: CellBox) {
        let exact = self.exact(&b);
        if let Some(index) = &mut self.index {
            match exact {
                Some(i) => index.whole[i] = true,
                None => index.partial = true,
            }
        }
        self.received.push(b);
    }

    /// Forgets what was announced.
    pub(super) fn clear_received(&mut self) {
        self.received.clear();
        if let Some(index) = &mut self.index {
            index.whole.fill(false);
            index.partial = false;
        }
    }
}

/// A vector with stable indices and a free list.
#[derive(Debug)]
pub(super) struct Slab<T> {
    pub(super) entries: Vec<Option<T>>,
    pub(super) free: Vec<usize>,
    pub(super) live: usize,
}

impl<T> Slab<T> {
    pub(super) fn new() -> Self {
        Slab { entries: Vec::new(), free: Vec::new(), live: 0 }
    }

    pub(super) fn insert(&mut self, value: T) -> usize {
        self.live += 1;
        match self.free.pop() {
            Some(i) => {
                self.entries[i] = Some(value);
                i
            }
            None => {
                self.entries.push(Some(value));
                self.entries.len() - 1
            }
        }
    }

    pub(super) fn remove(&mut self, i: usize) -> T {
        let value = self.entries[i].take().expect("slab entry is live");
        self.free.push(i);
        self.live -= 1;
        value
    }

    pub(super) fn get(&self, i: usize) -> &T {
        self.entries[i].as_ref().expect("slab entry is live")
    }

    pub(super) fn get_mut(&mut self, i: usize) -> &mut T {
        self.entries[i].as_mut().expect("slab entry is live")
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = &T> {
        self.entries.iter().flatten()
    }
}

/// Staging buffers kept for reuse, so that a steady state allocates nothing.
#[derive(Debug, Default)]
pub(super) struct StagingPool {
    pub(super) free: Vec<Vec<u8>>,
}

impl StagingPool {
    /// A buffer of exactly `len` bytes (contents unspecified): the smallest pooled one that holds
    /// `len` without growing, else the largest one, grown.
    pub(super) fn take(&mut self, len: usize) -> Vec<u8> {
        let fit = self
            .free
            .iter()
            .enumerate()
            .filter(|(_, b)| b.capacity() >= len)
            .min_by_key(|(_, b)| b.capacity())
            .map(|(i, _)| i)
            .or_else(|| self.free.iter().enumerate().max_by_key(|(_, b)| b.capacity()).map(|(i, _)| i));
        let mut buf = match fit {
            Some(i) => self.free.swap_remove(i),
            None => Vec::new(),
        };
        // Shrinking only truncates; growing zero-fills the new part once. TODO(perf): skip the
        // zero-fill of buffers MPI is about to overwrite.
        buf.resize(len, 0);
        buf
    }

    /// Returns a buffer for reuse.
    pub(super) fn give(&mut self, buf: Vec<u8>) {
        if buf.capacity() > 0 && self.free.len() < MAX_POOLED {
            self.free.push(buf);
        }
    }
}
