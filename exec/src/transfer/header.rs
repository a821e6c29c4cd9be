//! The fixed-size header ("pilot") that announces each outbound transfer, and its byte encoding.
//! The layout is documented in the parent module's protocol section.

use super::{CellBox, TransferKey};
use crate::mpi::{Rank, Tag};

/// The encoded size of a [`Header`] in bytes.
pub(crate) const HEADER_LEN: usize = 104;

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
    /// The most bytes one payload message carries: the payload is `ceil(bytes / chunk)` messages.
    pub chunk: usize,
}

/// Why received header bytes do not decode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DecodeError {
    /// The first four bytes are not [`MAGIC`].
    Magic,
    /// A length or coordinate does not fit this machine's `usize`.
    Overflow,
    /// `chunk` is zero or larger than `i32::MAX` although `bytes` is not zero.
    Chunk,
}

impl DecodeError {
    /// A short description for error messages.
    pub fn reason(self) -> &'static str {
        match self {
            DecodeError::Magic => "it does not start with the magic bytes \"celr\"",
            DecodeError::Overflow => "a length or coordinate does not fit a usize",
            DecodeError::Chunk => "its message size is 0 or larger than i32::MAX",
        }
    }
}

impl Header {
    /// The number of payload messages.
    pub fn chunks(&self) -> usize {
        if self.bytes == 0 {
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
        w.bytes(&0u32.to_le_bytes());
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
        let _reserved = r.u32();
        let key = TransferKey(r.u64(), r.u64(), r.u64());
        let mut corners = [0usize; 6];
        for c in &mut corners {
            *c = r.usize()?;
        }
        let bytes = r.usize()?;
        let chunk = r.usize()?;
        if bytes != 0 && (chunk == 0 || chunk > i32::MAX as usize) {
            return Err(DecodeError::Chunk);
        }
        let bounds = CellBox::new([corners[0], corners[1], corners[2]], [corners[3], corners[4], corners[5]]);
        Ok(Header { sender, tag, key, bounds, bytes, chunk })
    }
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
        let h = Header { sender: 0, tag: 1, key: TransferKey(1, 2, 3), bounds: CellBox::d1(0, 4), bytes: 4, chunk: 0 };
        h.encode(&mut buf);
        assert_eq!(Header::decode(&buf), Err(DecodeError::Chunk));
    }
}
