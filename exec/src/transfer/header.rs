//! The fixed-size header ("pilot") that announces each outbound transfer, its byte encoding, and the reading of a
//! received header message (the header, then an inline payload if it carries one, or the box list and the payloads
//! of a group of small boxes). The layout is documented in the parent module's protocol section.

use std::ops::Range;

use super::{CellBox, TransferError, TransferKey, INLINE_PAYLOAD_BYTES};
use crate::mpi::{Rank, Tag};

/// The encoded size of a [`Header`] in bytes.
pub(crate) const HEADER_LEN: usize = 104;

/// The largest header message: a header and an inline payload of [`INLINE_PAYLOAD_BYTES`]. Each header receive
/// buffer has this size.
pub(crate) const HEADER_MESSAGE_MAX: usize = HEADER_LEN + INLINE_PAYLOAD_BYTES;

/// Bit of the flags field (offset 12): the payload follows the header in the same message.
const FLAG_INLINE: u32 = 1;

/// Bit of the flags field (offset 12): the message announces a group of boxes ([`Group`]): after the header comes
/// the box list, then the boxes' payloads packed one after another. [`FLAG_INLINE`] is set too.
const FLAG_GROUP: u32 = 2;

/// The first four bytes of every header, `"celr"`: a message on the header tag that does not start
/// with it did not come from a celer transfer engine.
pub(crate) const MAGIC: u32 = u32::from_le_bytes(*b"celr");

/// What a sender announces about one payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Header {
    /// The sending rank; checked against the source MPI reports.
    pub sender: Rank,
    /// The tag the payload messages travel on; unused when `bytes` is 0.
    pub tag: Tag,
    /// The caller's transfer key.
    pub key: TransferKey,
    /// The cells the payload holds, in buffer coordinates; empty for a "nothing from me" notice.
    pub bounds: CellBox,
    /// The payload's length in bytes.
    pub bytes: usize,
    /// The most bytes one payload message carries: the payload is `ceil(bytes / chunk)` messages. 0 when `bytes`
    /// is 0 or the payload is inline.
    pub chunk: usize,
    /// Whether the payload travels in the header message itself, right after the header (then `tag` and `chunk`
    /// are 0 and `bytes` is at most [`INLINE_PAYLOAD_BYTES`]).
    pub inline: bool,
    /// For a header that announces a group of boxes: their number and element size. `bounds` is then the
    /// group's bounding box, `bytes` the length of all their payloads together, and the payload is inline.
    pub group: Option<Group>,
}

/// What the header of a group of boxes announces beyond a single box's header (offset 96, in place of the message
/// size, which an inline payload does not need): the boxes travel as a list behind the header
/// ([`encode_box_list`]), their payloads packed one after another behind the list, all in the header message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Group {
    /// How many boxes the list holds (`u32`); at least 1, and at most [`INLINE_PAYLOAD_BYTES`] (each non-empty box
    /// has a payload of at least one byte).
    pub count: usize,
    /// Bytes per cell (`u32`, at least 1): each box's payload length is its volume times this.
    pub elem_size: usize,
}

/// The dimensions a group's box list spells out, and how many: those along which the group's bounding box `hull`
/// is more than one cell wide (every box of the group spans the others whole, so they need no bytes).
pub(crate) fn listed_dims(hull: &CellBox) -> ([usize; 3], usize) {
    let mut dims = [0; 3];
    let mut n = 0;
    for (d, &r) in hull.range().iter().enumerate() {
        if r > 1 {
            dims[n] = d;
            n += 1;
        }
    }
    (dims, n)
}

/// The bytes of one entry of a group's box list: a `u32` pair (start, end), relative to the bounding box's lower
/// corner, per [listed dimension](listed_dims).
pub(crate) fn box_entry_len(hull: &CellBox) -> usize {
    8 * listed_dims(hull).1
}

/// Whether a group whose bounding box is `hull` can list its boxes: every extent fits the list's `u32` offsets.
pub(crate) fn listable(hull: &CellBox) -> bool {
    hull.range().iter().all(|&r| u32::try_from(r).is_ok())
}

/// Writes the box list of a group with bounding box `hull` (which holds every box of `boxes` and is
/// [`listable`]) into `out`, whose length is `boxes.len() * box_entry_len(hull)`: per box, per listed dimension,
/// its start and end relative to `hull`'s lower corner as little-endian `u32`s.
pub(crate) fn encode_box_list(hull: &CellBox, boxes: impl Iterator<Item = CellBox>, out: &mut [u8]) {
    let (dims, n) = listed_dims(hull);
    let base = hull.min();
    let mut at = 0;
    for b in boxes {
        debug_assert!(hull.contains(&b) && !b.is_empty(), "box {b} of a group outside its bounding box {hull}");
        for &d in &dims[..n] {
            for c in [b.min()[d], b.max()[d]] {
                out[at..at + 4].copy_from_slice(&((c - base[d]) as u32).to_le_bytes());
                at += 4;
            }
        }
    }
    debug_assert_eq!(at, out.len());
}

/// Why received header bytes do not decode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DecodeError {
    /// The first four bytes are not [`MAGIC`].
    Magic,
    /// A length or coordinate does not fit this machine's `usize`.
    Overflow,
    /// `chunk` is zero or larger than `i32::MAX` although `bytes` is not zero and the payload is not inline.
    Chunk,
    /// A flag bit this engine does not know is set.
    Flags,
    /// The payload is marked inline but is longer than [`INLINE_PAYLOAD_BYTES`].
    InlineTooLong,
    /// A group is announced without the inline flag, with no box, more boxes than an inline payload has bytes, an
    /// element size of 0, or an empty bounding box.
    Group,
}

impl DecodeError {
    /// A short description for error messages.
    pub fn reason(self) -> &'static str {
        match self {
            DecodeError::Magic => "it does not start with the magic bytes \"celr\"",
            DecodeError::Overflow => "a length or coordinate does not fit a usize",
            DecodeError::Chunk => "its message size is 0 or larger than i32::MAX",
            DecodeError::Flags => "it sets flag bits this engine does not know",
            DecodeError::InlineTooLong => "it declares an inline payload longer than the engine's inline limit",
            DecodeError::Group => {
                "it announces a group of boxes that is not inline, has no box or more boxes than the inline limit has \
                 bytes, elements of 0 bytes, or an empty bounding box"
            }
        }
    }
}

impl Header {
    /// The number of payload messages after the header message: 0 for an empty or inline payload.
    pub fn chunks(&self) -> usize {
        if self.bytes == 0 || self.inline {
            0
        } else {
            self.bytes.div_ceil(self.chunk)
        }
    }

    /// The header of each box this header announces, with the range of its payload in the bytes behind the box
    /// list (`boxes`, as [`read_header_message`] decoded it): for a group, one inline header per box; otherwise this
    /// header alone, its whole inline payload (an empty range if it is not inline).
    pub fn parts<'a>(&'a self, boxes: &'a [CellBox]) -> impl Iterator<Item = (Header, Range<usize>)> + 'a {
        let single = self.group.is_none().then_some((*self, 0..if self.inline { self.bytes } else { 0 }));
        let (boxes, elem_size) = match self.group {
            Some(g) => (boxes, g.elem_size),
            None => (&[][..], 0),
        };
        let mut at = 0;
        let each = boxes.iter().map(move |b| {
            let len = b.volume() * elem_size;
            let range = at..at + len;
            at += len;
            (Header { bounds: *b, bytes: len, tag: 0, chunk: 0, inline: true, group: None, ..*self }, range)
        });
        single.into_iter().chain(each)
    }

    /// Writes the header's little-endian encoding into `out`.
    pub fn encode(&self, out: &mut [u8; HEADER_LEN]) {
        let mut w = Writer { out, at: 0 };
        w.bytes(&MAGIC.to_le_bytes());
        w.bytes(&self.sender.to_le_bytes());
        w.bytes(&self.tag.to_le_bytes());
        let flags = if self.inline { FLAG_INLINE } else { 0 } | if self.group.is_some() { FLAG_GROUP } else { 0 };
        w.bytes(&flags.to_le_bytes());
        w.u64(self.key.0);
        w.u64(self.key.1);
        w.u64(self.key.2);
        for c in self.bounds.min().into_iter().chain(self.bounds.max()) {
            w.u64(c as u64);
        }
        w.u64(self.bytes as u64);
        match self.group {
            Some(g) => {
                w.bytes(&(g.count as u32).to_le_bytes());
                w.bytes(&(g.elem_size as u32).to_le_bytes());
            }
            None => w.u64(self.chunk as u64),
        }
        debug_assert_eq!(w.at, HEADER_LEN);
    }

    /// Reads a header that [`encode`](Self::encode) wrote.
    pub fn decode(input: &[u8; HEADER_LEN]) -> Result<Header, DecodeError> {
        let mut r = Reader { input, at: 0 };
        if r.u32() != MAGIC {
            return Err(DecodeError::Magic);
        }
        let sender = r.u32() as i32;
        let tag = r.u32() as i32;
        let flags = r.u32();
        if flags & !(FLAG_INLINE | FLAG_GROUP) != 0 {
            return Err(DecodeError::Flags);
        }
        let inline = flags & FLAG_INLINE != 0;
        let key = TransferKey(r.u64(), r.u64(), r.u64());
        let mut corners = [0usize; 6];
        for c in &mut corners {
            *c = r.usize()?;
        }
        let bytes = r.usize()?;
        if inline && bytes > INLINE_PAYLOAD_BYTES {
            return Err(DecodeError::InlineTooLong);
        }
        let bounds = CellBox::new([corners[0], corners[1], corners[2]], [corners[3], corners[4], corners[5]]);
        if flags & FLAG_GROUP != 0 {
            let count = r.u32() as usize;
            let elem_size = r.u32() as usize;
            if !inline || count == 0 || count > INLINE_PAYLOAD_BYTES || elem_size == 0 || bounds.is_empty() {
                return Err(DecodeError::Group);
            }
            let group = Some(Group { count, elem_size });
            return Ok(Header { sender, tag, key, bounds, bytes, chunk: 0, inline, group });
        }
        let chunk = r.usize()?;
        if !inline && bytes != 0 && (chunk == 0 || chunk > i32::MAX as usize) {
            return Err(DecodeError::Chunk);
        }
        Ok(Header { sender, tag, key, bounds, bytes, chunk, inline, group: None })
    }
}

/// Reads a received header message: `message` holds the bytes that arrived (`MPI_Get_count` of them), `source` is
/// the rank MPI says it came from, `devices` the number of devices (nodes) per rank. Returns the header and its
/// inline payload (empty unless [`Header::inline`]; a group's payloads, packed one after another); a group's boxes
/// are decoded into `boxes` (cleared first; left empty for a header that is no group), in the order they were sent.
///
/// # Errors
///
/// [`TransferError::BadHeader`] for a message that is not a header (too short, wrong magic, bad fields, a sender
/// node not on the source rank, or a header without an inline payload followed by more bytes);
/// [`TransferError::InlineLength`] if the inline payload that arrived is not as long as the header declares;
/// [`TransferError::BadGroup`] for a group whose box list and payloads do not add up to the message, or whose list
/// holds an empty box or one outside the group's bounding box.
pub(crate) fn read_header_message<'m>(
    message: &'m [u8],
    source: Rank,
    devices: usize,
    boxes: &mut Vec<CellBox>,
) -> Result<(Header, &'m [u8]), TransferError> {
    boxes.clear();
    let bad = |reason| TransferError::BadHeader { sender: source, len: message.len(), reason };
    let Some(head) = message.first_chunk::<HEADER_LEN>() else {
        return Err(bad("it is shorter than a header (104 bytes)"));
    };
    let header = Header::decode(head).map_err(|e| bad(e.reason()))?;
    if header.sender / devices as Rank != source {
        return Err(bad("the sender rank it names is not the rank it came from"));
    }
    let rest = &message[HEADER_LEN..];
    if let Some(group) = header.group {
        let payload = read_box_list(&header, group, rest, boxes).inspect_err(|_| boxes.clear())?;
        return Ok((header, payload));
    }
    if !header.inline {
        if !rest.is_empty() {
            return Err(bad("its length is not the header length (104 bytes) and it declares no inline payload"));
        }
        return Ok((header, rest));
    }
    if rest.len() != header.bytes {
        return Err(TransferError::InlineLength {
            key: header.key,
            sender: header.sender,
            bounds: header.bounds,
            declared: header.bytes,
            got: rest.len(),
        });
    }
    Ok((header, rest))
}

/// Decodes the box list of group header `h` from `rest` (the message behind the header) into `boxes`, checking that
/// list and payloads fill `rest` exactly, that every box is non-empty and inside the group's bounding box, and that
/// their payloads add up to `h.bytes`. Returns the payloads.
fn read_box_list<'m>(
    h: &Header,
    group: Group,
    rest: &'m [u8],
    boxes: &mut Vec<CellBox>,
) -> Result<&'m [u8], TransferError> {
    let bad = |reason| TransferError::BadGroup {
        key: h.key,
        sender: h.sender,
        bounds: h.bounds,
        count: group.count,
        len: rest.len(),
        reason,
    };
    // `count` is at most INLINE_PAYLOAD_BYTES and an entry at most 24 bytes (`Header::decode`): no overflow.
    let list_len = group.count * box_entry_len(&h.bounds);
    if list_len.checked_add(h.bytes) != Some(rest.len()) {
        return Err(bad("its box list and the payloads it declares do not fill the message exactly"));
    }
    let (list, payload) = rest.split_at(list_len);
    let (dims, n) = listed_dims(&h.bounds);
    let (base, extent) = (h.bounds.min(), h.bounds.range());
    let mut bytes = 0usize;
    let mut words = list.chunks_exact(4).map(|w| u32::from_le_bytes([w[0], w[1], w[2], w[3]]) as usize);
    for _ in 0..group.count {
        let (mut min, mut max) = (h.bounds.min(), h.bounds.max());
        for &d in &dims[..n] {
            let (lo, hi) = (words.next().unwrap_or(0), words.next().unwrap_or(0));
            if lo >= hi || hi > extent[d] {
                return Err(bad("a box of its list is empty or lies outside the group's bounding box"));
            }
            // Inside the bounding box, whose corners fit a usize: no overflow.
            (min[d], max[d]) = (base[d] + lo, base[d] + hi);
        }
        let b = CellBox::new(min, max);
        bytes = b
            .checked_volume()
            .and_then(|v| v.checked_mul(group.elem_size))
            .and_then(|v| v.checked_add(bytes))
            .ok_or_else(|| bad("its boxes' payloads overflow a usize"))?;
        boxes.push(b);
    }
    if bytes != h.bytes {
        return Err(bad("its boxes' payloads do not add up to the payload length it declares"));
    }
    Ok(payload)
}

struct Writer<'a> {
    out: &'a mut [u8; HEADER_LEN],
    at: usize,
}

impl Writer<'_> {
    fn bytes(&mut self, b: &[u8]) {
        self.out[self.at..self.at + b.len()].copy_from_slice(b);
        self.at += b.len();
    }

    fn u64(&mut self, v: u64) {
        self.bytes(&v.to_le_bytes());
    }
}

struct Reader<'a> {
    input: &'a [u8; HEADER_LEN],
    at: usize,
}

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> [u8; N] {
        let mut b = [0u8; N];
        b.copy_from_slice(&self.input[self.at..self.at + N]);
        self.at += N;
        b
    }

    fn u32(&mut self) -> u32 {
        u32::from_le_bytes(self.take())
    }

    fn u64(&mut self) -> u64 {
        u64::from_le_bytes(self.take())
    }

    fn usize(&mut self) -> Result<usize, DecodeError> {
        usize::try_from(self.u64()).map_err(|_| DecodeError::Overflow)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_survive_an_encode_decode_round_trip() {
        let h = Header {
            sender: 2,
            tag: i32::MAX,
            key: TransferKey(7, u64::MAX, 0),
            bounds: CellBox::d3([1, 2, 3], [4, 5, 6]),
            bytes: 3 * 3 * 3 * 8,
            chunk: 100,
            inline: false,
            group: None,
        };
        let mut buf = [0u8; HEADER_LEN];
        h.encode(&mut buf);
        assert_eq!(&buf[..4], b"celr");
        assert_eq!(Header::decode(&buf), Ok(h));
        assert_eq!(h.chunks(), 3);

        let empty = Header { bounds: CellBox::EMPTY, bytes: 0, chunk: 0, ..h };
        empty.encode(&mut buf);
        assert_eq!(Header::decode(&buf), Ok(empty));
        assert_eq!(empty.chunks(), 0);
    }

    #[test]
    fn foreign_or_malformed_headers_are_rejected() {
        let mut buf = [0u8; HEADER_LEN];
        assert_eq!(Header::decode(&buf), Err(DecodeError::Magic));
        let h = Header {
            sender: 0,
            tag: 1,
            key: TransferKey(1, 2, 3),
            bounds: CellBox::d1(0, 4),
            bytes: 4,
            chunk: 0,
            inline: false,
            group: None,
        };
        h.encode(&mut buf);
        assert_eq!(Header::decode(&buf), Err(DecodeError::Chunk));
        // A flag bit no engine sets.
        buf[12] = 0b100;
        assert_eq!(Header::decode(&buf), Err(DecodeError::Flags));
        // The group bit without the inline bit.
        buf[12] = 0b10;
        assert_eq!(Header::decode(&buf), Err(DecodeError::Group));
        // An inline payload longer than the limit.
        Header { inline: true, tag: 0, bytes: INLINE_PAYLOAD_BYTES + 1, ..h }.encode(&mut buf);
        assert_eq!(Header::decode(&buf), Err(DecodeError::InlineTooLong));
    }

    /// A header with an inline payload of `len` bytes from node 3 (rank 1 of 2 devices per rank).
    fn inline_header(len: usize) -> Header {
        Header {
            sender: 3,
            tag: 0,
            key: TransferKey(9, 8, 7),
            bounds: CellBox::d1(10, 10 + len),
            bytes: len,
            chunk: 0,
            inline: true,
            group: None,
        }
    }

    /// The header message `h` followed by `payload`.
    fn message(h: &Header, payload: &[u8]) -> Vec<u8> {
        let mut head = [0u8; HEADER_LEN];
        h.encode(&mut head);
        let mut m = head.to_vec();
        m.extend_from_slice(payload);
        m
    }

    #[test]
    fn an_inline_payload_travels_behind_its_header_and_is_flagged() {
        let h = inline_header(INLINE_PAYLOAD_BYTES);
        let payload: Vec<u8> = (0..INLINE_PAYLOAD_BYTES).map(|i| (i * 31 % 251) as u8).collect();
        let m = message(&h, &payload);
        assert_eq!(m.len(), HEADER_MESSAGE_MAX);
        assert_eq!(u32::from_le_bytes(m[12..16].try_into().unwrap()), FLAG_INLINE);
        assert_eq!(h.chunks(), 0, "no payload message follows an inline header");
        let (got, inline) = read_header_message(&m, 1, 2, &mut Vec::new()).unwrap();
        assert_eq!(got, h);
        assert_eq!(inline, payload.as_slice());

        // Without the flag, the same fields announce separate payload messages; the flag is clear.
        let separate = Header { tag: 5, chunk: 1 << 20, inline: false, ..h };
        let m = message(&separate, &[]);
        assert_eq!(&m[12..16], &[0; 4]);
        let (got, inline) = read_header_message(&m, 1, 2, &mut Vec::new()).unwrap();
        assert_eq!((got, inline.len(), got.chunks()), (separate, 0, 1));
    }

    #[test]
    fn an_inline_length_that_does_not_match_the_message_is_an_error_naming_the_transfer() {
        let h = inline_header(100);
        for got in [99, 101, 0] {
            let m = message(&h, &vec![7u8; got]);
            let err = read_header_message(&m, 1, 2, &mut Vec::new()).unwrap_err();
            assert!(
                matches!(err, TransferError::InlineLength { declared: 100, got: g, sender: 3, .. } if g == got),
                "{err}"
            );
            assert_eq!(
                err.to_string(),
                format!(
                    "Transfer (9, 8, 7): rank 3 announces [10] - [110] with an inline payload of 100 bytes, but the \
                     header message carries {got} bytes after the header"
                )
            );
        }
    }

    #[test]
    fn malformed_header_messages_are_bad_headers() {
        let bad = |m: &[u8], source| match read_header_message(m, source, 2, &mut Vec::new()) {
            Err(TransferError::BadHeader { sender, len, reason }) => {
                assert_eq!((sender, len), (source, m.len()));
                reason
            }
            other => panic!("expected a bad header, got {other:?}"),
        };
        let h = inline_header(8);
        let m = message(&h, &[1; 8]);
        assert!(bad(&m[..HEADER_LEN - 1], 1).contains("shorter than a header"));
        // Node 3 lies on rank 1 (2 devices per rank), not on rank 0.
        assert!(bad(&m, 0).contains("not the rank it came from"));
        // Bytes behind a header that declares no inline payload.
        let separate = Header { tag: 5, chunk: 1 << 20, inline: false, ..h };
        assert!(bad(&message(&separate, &[1; 8]), 1).contains("declares no inline payload"));
        let mut foreign = m.clone();
        foreign[0] = b'x';
        assert!(bad(&foreign, 1).contains("magic"));
    }

    /// The message of a group of `boxes` (in `hull`, `elem` bytes a cell) from node 3, with `payload`.
    fn group_message(hull: CellBox, boxes: &[CellBox], elem: usize, payload: &[u8]) -> Vec<u8> {
        let h = Header {
            sender: 3,
            tag: 0,
            key: TransferKey(9, 8, 7),
            bounds: hull,
            bytes: payload.len(),
            chunk: 0,
            inline: true,
            group: Some(Group { count: boxes.len(), elem_size: elem }),
        };
        let mut list = vec![0u8; boxes.len() * box_entry_len(&hull)];
        encode_box_list(&hull, boxes.iter().copied(), &mut list);
        let mut m = message(&h, &list);
        m.extend_from_slice(payload);
        m
    }

    #[test]
    fn a_group_of_boxes_survives_an_encode_decode_round_trip_and_splits_into_one_header_per_box() {
        // 1D one-cell boxes: only dimension 0 is listed (8 bytes a box).
        let boxes: Vec<CellBox> = (0..100).map(|i| CellBox::d1(1000 + 2 * i, 1001 + 2 * i)).collect();
        let hull = CellBox::d1(1000, 1199);
        assert_eq!(box_entry_len(&hull), 8);
        let payload: Vec<u8> = (0..400).map(|i| i as u8).collect();
        let m = group_message(hull, &boxes, 4, &payload);
        assert_eq!(m.len(), HEADER_LEN + 100 * 8 + 400);
        assert_eq!(u32::from_le_bytes(m[12..16].try_into().unwrap()), FLAG_INLINE | FLAG_GROUP);
        let mut got = Vec::new();
        let (h, rest) = read_header_message(&m, 1, 2, &mut got).unwrap();
        assert_eq!((h.bounds, h.bytes, h.group), (hull, 400, Some(Group { count: 100, elem_size: 4 })));
        assert_eq!(got, boxes);
        assert_eq!(rest, payload.as_slice());
        let parts: Vec<(Header, Range<usize>)> = h.parts(&got).collect();
        assert_eq!(parts.len(), 100);
        for (i, (part, range)) in parts.iter().enumerate() {
            assert_eq!((part.bounds, part.bytes, part.inline, part.group), (boxes[i], 4, true, None));
            assert_eq!((part.sender, part.key), (3, TransferKey(9, 8, 7)));
            assert_eq!(*range, 4 * i..4 * i + 4);
        }

        // 2D boxes of different sizes in a hull one cell thick along dimension 2 (16 bytes a box).
        let boxes = [CellBox::d3([5, 7, 3], [6, 9, 4]), CellBox::d3([8, 2, 3], [10, 3, 4])];
        let hull = CellBox::d3([5, 2, 3], [10, 9, 4]);
        assert_eq!(box_entry_len(&hull), 16);
        let payload = [1u8, 2, 3, 4, 5, 6, 7, 8];
        let m = group_message(hull, &boxes, 2, &payload);
        let (h, rest) = read_header_message(&m, 1, 2, &mut got).unwrap();
        assert_eq!((got.as_slice(), rest), (&boxes[..], &payload[..]));
        let ranges: Vec<Range<usize>> = h.parts(&got).map(|(_, r)| r).collect();
        assert_eq!(ranges, [0..4, 4..8]);

        // A header that is no group is its one part, and decodes no boxes.
        let single = inline_header(8);
        let (h, _) = read_header_message(&message(&single, &[0; 8]), 1, 2, &mut got).unwrap();
        assert!(got.is_empty());
        assert_eq!(h.parts(&got).collect::<Vec<_>>(), [(single, 0..8)]);
    }

    #[test]
    fn malformed_groups_are_errors_naming_the_transfer_never_panics() {
        let boxes = [CellBox::d1(10, 11), CellBox::d1(12, 14)];
        let hull = CellBox::d1(10, 14);
        let m = group_message(hull, &boxes, 4, &[7; 12]);
        let group_err = |m: &[u8]| match read_header_message(m, 1, 2, &mut Vec::new()) {
            Err(e @ TransferError::BadGroup { .. }) => e.to_string(),
            other => panic!("expected a bad group, got {other:?}"),
        };
        // A byte missing or one too many.
        assert!(group_err(&m[..m.len() - 1]).contains("do not fill the message exactly"));
        let mut longer = m.clone();
        longer.push(0);
        let text = group_err(&longer);
        assert!(text.starts_with("Transfer (9, 8, 7): rank 3 announces 2 boxes in [10] - [14]"), "{text}");
        // A box reaching outside the bounding box, and an empty one.
        let list = HEADER_LEN;
        let mut outside = m.clone();
        outside[list + 12..list + 16].copy_from_slice(&5u32.to_le_bytes());
        assert!(group_err(&outside).contains("outside the group's bounding box"));
        let mut empty = m.clone();
        empty[list + 4..list + 8].copy_from_slice(&0u32.to_le_bytes());
        assert!(group_err(&empty).contains("empty"));
        // Boxes whose payloads do not add up to the declared length (the message's length agrees with it).
        let mut short = m.clone();
        short[list + 12..list + 16].copy_from_slice(&3u32.to_le_bytes());
        assert!(group_err(&short).contains("do not add up"));

        // Header fields no group may have: not inline, no box, 0-byte elements, an empty bounding box.
        let bad = |m: &[u8]| match read_header_message(m, 1, 2, &mut Vec::new()) {
            Err(TransferError::BadHeader { reason, .. }) => reason,
            other => panic!("expected a bad header, got {other:?}"),
        };
        let mut not_inline = m.clone();
        not_inline[12..16].copy_from_slice(&FLAG_GROUP.to_le_bytes());
        assert!(bad(&not_inline).contains("group of boxes"));
        for (at, value) in [(96, 0u32), (96, u32::MAX), (100, 0)] {
            let mut field = m.clone();
            field[at..at + 4].copy_from_slice(&value.to_le_bytes());
            assert!(bad(&field).contains("group of boxes"), "offset {at} = {value}");
        }
        let mut no_hull = m.clone();
        no_hull[64..72].copy_from_slice(&0u64.to_le_bytes());
        assert!(bad(&no_hull).contains("group of boxes"));

        // Any single byte changed to any of a few values: an error or a decoded group, never a panic; a decoded
        // group's boxes lie in its bounding box and their payloads fill what follows the list.
        let mut boxes_out = Vec::new();
        for at in 0..m.len() {
            for value in [0u8, 1, 2, 3, 0x7f, 0x80, 0xff] {
                let mut changed = m.clone();
                changed[at] = value;
                if let Ok((h, payload)) = read_header_message(&changed, 1, 2, &mut boxes_out) {
                    if let Some(g) = h.group {
                        assert_eq!(boxes_out.len(), g.count);
                        assert!(boxes_out.iter().all(|b| h.bounds.contains(b) && !b.is_empty()));
                        let total: usize = h
                            .parts(&boxes_out)
                            .map(|(p, r)| {
                                assert_eq!(r.len(), p.bytes);
                                p.bytes
                            })
                            .sum();
                        assert_eq!(total, payload.len());
                    }
                }
            }
        }
    }
}
