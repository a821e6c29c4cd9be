//! The fixed-size header ("pilot") that announces each outbound transfer, its byte encoding, and the reading of a
//! received header message (the header, then an inline payload if it carries one). The layout is documented in the
//! parent module's protocol section.

use super::{CellBox, TransferError, TransferKey, INLINE_PAYLOAD_BYTES};
use crate::mpi::{Rank, Tag};

/// The encoded size of a [`Header`] in bytes.
pub(crate) const HEADER_LEN: usize = 104;

/// The largest header message: a header and an inline payload of [`INLINE_PAYLOAD_BYTES`]. Each header receive
/// buffer has this size.
pub(crate) const HEADER_MESSAGE_MAX: usize = HEADER_LEN + INLINE_PAYLOAD_BYTES;

/// Bit of the flags field (offset 12): the payload follows the header in the same message.
const FLAG_INLINE: u32 = 1;

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

    /// Writes the header's little-endian encoding into `out`.
    pub fn encode(&self, out: &mut [u8; HEADER_LEN]) {
        let mut w = Writer { out, at: 0 };
        w.bytes(&MAGIC.to_le_bytes());
        w.bytes(&self.sender.to_le_bytes());
        w.bytes(&self.tag.to_le_bytes());
        w.bytes(&(if self.inline { FLAG_INLINE } else { 0 }).to_le_bytes());
        w.u64(self.key.0);
        w.u64(self.key.1);
        w.u64(self.key.2);
        for c in self.bounds.min().into_iter().chain(self.bounds.max()) {
            w.u64(c as u64);
        }
        w.u64(self.bytes as u64);
        w.u64(self.chunk as u64);
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
        if flags & !FLAG_INLINE != 0 {
            return Err(DecodeError::Flags);
        }
        let inline = flags & FLAG_INLINE != 0;
        let key = TransferKey(r.u64(), r.u64(), r.u64());
        let mut corners = [0usize; 6];
        for c in &mut corners {
            *c = r.usize()?;
        }
        let bytes = r.usize()?;
        let chunk = r.usize()?;
        if inline && bytes > INLINE_PAYLOAD_BYTES {
            return Err(DecodeError::InlineTooLong);
        }
        if !inline && bytes != 0 && (chunk == 0 || chunk > i32::MAX as usize) {
            return Err(DecodeError::Chunk);
        }
        let bounds = CellBox::new([corners[0], corners[1], corners[2]], [corners[3], corners[4], corners[5]]);
        Ok(Header { sender, tag, key, bounds, bytes, chunk, inline })
    }
}

/// Reads a received header message: `message` holds the bytes that arrived (`MPI_Get_count` of them), `source` is
/// the rank MPI says it came from, `devices` the number of devices (nodes) per rank. Returns the header and its
/// inline payload (empty unless [`Header::inline`]).
///
/// # Errors
///
/// [`TransferError::BadHeader`] for a message that is not a header (too short, wrong magic, bad fields, a sender
/// node not on the source rank, or a header without an inline payload followed by more bytes);
/// [`TransferError::InlineLength`] if the inline payload that arrived is not as long as the header declares.
pub(crate) fn read_header_message(
    message: &[u8],
    source: Rank,
    devices: usize,
) -> Result<(Header, &[u8]), TransferError> {
    let bad = |reason| TransferError::BadHeader { sender: source, len: message.len(), reason };
    let Some(head) = message.first_chunk::<HEADER_LEN>() else {
        return Err(bad("it is shorter than a header (104 bytes)"));
    };
    let header = Header::decode(head).map_err(|e| bad(e.reason()))?;
    if header.sender / devices as Rank != source {
        return Err(bad("the sender rank it names is not the rank it came from"));
    }
    let rest = &message[HEADER_LEN..];
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
        };
        h.encode(&mut buf);
        assert_eq!(Header::decode(&buf), Err(DecodeError::Chunk));
        // A flag bit no engine sets.
        buf[12] = 0b10;
        assert_eq!(Header::decode(&buf), Err(DecodeError::Flags));
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
        let (got, inline) = read_header_message(&m, 1, 2).unwrap();
        assert_eq!(got, h);
        assert_eq!(inline, payload.as_slice());

        // Without the flag, the same fields announce separate payload messages; the flag is clear.
        let separate = Header { tag: 5, chunk: 1 << 20, inline: false, ..h };
        let m = message(&separate, &[]);
        assert_eq!(&m[12..16], &[0; 4]);
        let (got, inline) = read_header_message(&m, 1, 2).unwrap();
        assert_eq!((got, inline.len(), got.chunks()), (separate, 0, 1));
    }

    #[test]
    fn an_inline_length_that_does_not_match_the_message_is_an_error_naming_the_transfer() {
        let h = inline_header(100);
        for got in [99, 101, 0] {
            let m = message(&h, &vec![7u8; got]);
            let err = read_header_message(&m, 1, 2).unwrap_err();
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
        let bad = |m: &[u8], source| match read_header_message(m, source, 2) {
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
}
