//! The transfer engine on real MPI: strided boxes between every pair of ranks, headers and expects
//! in both orders, gathers with "nothing from me" notices, payloads split into several messages,
//! and the errors for headers that do not fit what is expected.
//!
//! A `harness = false` binary (MPI can be initialised only once per process). `./x test` runs it
//! under `mpirun -n 2` and `mpirun -n 3`; run alone (as `cargo test` does) it is one rank that
//! transfers to itself. Every rank builds the same plan from [`SEED`], then:
//!
//! 1. posts the expects marked "early" and the even ranks' gathers, then waits on a gather of empty
//!    boxes from every rank, so that every early expect is in place before any data is sent;
//! 2. sends its pieces in a shuffled order (polling now and then);
//! 3. for each "late" expect, waits until all of its headers have arrived, then posts it;
//! 4. polls until everything completed and checks every cell of every destination allocation
//!    (cells outside the expected region must be untouched) and every gathered byte;
//! 5. runs the error cases against itself;
//! 6. runs the inline cases with its neighbours in a ring (sends to rank + 1, receives from rank − 1): payloads of
//!    exactly [`INLINE_PAYLOAD_BYTES`] (inside the header message) and one byte more (header and payload message),
//!    more inline headers than header slots arriving before their expects, and inline payloads into `expect_into`
//!    targets that a box spans or holds non-contiguously, and the boxes of a region sent by one `send_lent_boxes`
//!    (small boxes grouped, many to a header message); each checked by its cells and by the engine's counters.
//! 7. sends itself header messages by hand whose inline payload is shorter than declared, or longer than a
//!    header receive buffer, and a group of boxes whose list reaches outside its bounding box: each must be a clear
//!    error, after which the engine still completes the transfer.
//! 8. drops its engine and runs two per rank (devices 0 and 1, `TransferEngine::for_device`): each node sends
//!    the next node of the ring payloads inside and beyond the inline limit.
//!
//! Exits non-zero with a message naming the rank, the transfer and the cell on any mismatch, and
//! after [`TIME_LIMIT`] instead of hanging. To see those failures, set `TRANSFER_MPI_FAULT=mismatch`
//! (the last rank corrupts one byte of its first piece) or `TRANSFER_MPI_FAULT=hang` (the last rank
//! never sends its last piece) and run it under `mpirun -n 2`.

use std::collections::HashSet;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use celer_exec::mpi::{self, Rank};
use celer_exec::transfer::{
    pack, testspy, unpack, AllocLayout, CellBox, Completion, CompletionKind, Token, TransferEngine, TransferError,
    TransferKey, HEADER_TAG, INLINE_PAYLOAD_BYTES,
};

/// The watchdog ends the process after this long.
const TIME_LIMIT: Duration = Duration::from_secs(30);
/// Polling loops give up (with a diagnostic) this long after the start, before the watchdog fires.
const POLL_LIMIT: Duration = Duration::from_secs(25);
/// When polling loops give up: [`POLL_LIMIT`] after the start.
static DEADLINE: OnceLock<Instant> = OnceLock::new();

fn deadline() -> Instant {
    *DEADLINE.get_or_init(|| Instant::now() + POLL_LIMIT)
}
/// Seed of the plan every rank builds.
const SEED: u64 = 0x5EED_CE1E_2026;
/// The message size the test forces, so that the large transfers are split (and, being larger
/// than OpenMPI's shared-memory eager limit, also use the rendezvous protocol).
const MESSAGE_LIMIT: usize = 20_000;

/// Key spaces, in the first key component.
const READY: u64 = u64::MAX;
const GATHER: u64 = u64::MAX - 1;
const ERRORS: u64 = u64::MAX - 2;
const INLINE: u64 = u64::MAX - 3;
const DEVICES: u64 = u64::MAX - 4;

/// SplitMix64.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            v.swap(i, self.below(i + 1));
        }
    }
}

/// The value of byte `b` of `cell` in transfer `key`: what senders hold and receivers check.
fn cell_byte(key: TransferKey, cell: [usize; 3], b: usize) -> u8 {
    let mut h = key.0 ^ key.1.rotate_left(21) ^ key.2.rotate_left(42);
    for c in cell {
        h = (h ^ c as u64).wrapping_mul(0x100_0000_01B3).rotate_left(17);
    }
    h = (h ^ (h >> 29)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    (h >> (8 * (b % 8))) as u8 ^ (b / 8) as u8
}

/// Every cell of `b`, row-major.
fn cells(b: CellBox) -> impl Iterator<Item = [usize; 3]> {
    let (lo, hi) = (b.min(), b.max());
    let empty = b.is_empty();
    (lo[0]..if empty { lo[0] } else { hi[0] })
        .flat_map(move |i| (lo[1]..hi[1]).flat_map(move |j| (lo[2]..hi[2]).map(move |k| [i, j, k])))
}

/// An allocation of `layout` holding `cell_byte(key, ..)` in every cell, or its complement.
fn fill(key: TransferKey, layout: &AllocLayout, complement: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(layout.bytes().unwrap());
    for cell in cells(layout.bounds) {
        for b in 0..layout.elem_size {
            let v = cell_byte(key, cell, b);
            out.push(if complement { !v } else { v });
        }
    }
    out
}

/// `b` grown by up to `margin` cells on each side of its first `dims` dimensions.
fn grow(rng: &mut Rng, b: CellBox, dims: usize, margin: usize) -> CellBox {
    let (mut lo, mut hi) = (b.min(), b.max());
    for d in 0..dims {
        lo[d] -= rng.below(margin + 1).min(lo[d]);
        hi[d] += rng.below(margin + 1);
    }
    CellBox::new(lo, hi)
}

/// A random box of `dims` dimensions with extents in `1..=max_extent`, away from the origin.
fn random_box(rng: &mut Rng, dims: usize, max_extent: usize) -> CellBox {
    let (mut lo, mut hi) = ([0; 3], [1; 3]);
    for d in 0..dims {
        lo[d] = 3 + rng.below(10);
        hi[d] = lo[d] + 1 + rng.below(max_extent);
    }
    CellBox::new(lo, hi)
}

/// Splits `b` into up to `parts` slabs along dimension `dim`.
fn split(b: CellBox, dim: usize, parts: usize) -> Vec<CellBox> {
    let (lo, hi) = (b.min(), b.max());
    let n = parts.min(hi[dim] - lo[dim]).max(1);
    let step = (hi[dim] - lo[dim]).div_ceil(n);
    let mut out = Vec::new();
    let mut at = lo[dim];
    while at < hi[dim] {
        let (mut l, mut h) = (lo, hi);
        l[dim] = at;
        h[dim] = (at + step).min(hi[dim]);
        out.push(CellBox::new(l, h));
        at = h[dim];
    }
    out
}

/// One piece of a transfer: `sender` sends `bounds` from its allocation `layout`.
struct Piece {
    sender: Rank,
    bounds: CellBox,
    layout: AllocLayout,
}

/// One transfer of the plan: `receiver` expects `region` into an allocation of `layout`.
struct Transfer {
    key: TransferKey,
    receiver: Rank,
    layout: AllocLayout,
    region: Vec<CellBox>,
    pieces: Vec<Piece>,
    /// Whether the expect is posted before the data is sent (else after its headers arrived).
    early: bool,
}

/// The plan, the same on every rank.
fn plan(size: Rank) -> Vec<Transfer> {
    let mut rng = Rng(SEED ^ size as u64);
    let mut plan = Vec::new();
    let mut add = |rng: &mut Rng,
                   receiver: Rank,
                   region_box: CellBox,
                   region: Vec<CellBox>,
                   senders: &[Rank],
                   pieces: Vec<CellBox>,
                   dims: usize,
                   elem_size: usize| {
        let id = plan.len() as u64;
        let key = TransferKey(id, receiver as u64, id % 3);
        let layout = AllocLayout { bounds: grow(rng, region_box, dims, 3), elem_size };
        let pieces = pieces
            .into_iter()
            .zip(senders)
            .map(|(bounds, &sender)| Piece {
                sender,
                bounds,
                layout: AllocLayout { bounds: grow(rng, bounds, dims, 3), elem_size },
            })
            .collect();
        plan.push(Transfer { key, receiver, layout, region, pieces, early: rng.below(2) == 0 });
    };
    for receiver in 0..size {
        for sender in 0..size {
            // One strided sub-box per pair and dimensionality.
            for dims in 1..=3 {
                let b = random_box(&mut rng, dims, [40, 12, 6][dims - 1]);
                let elem_size = [1, 4, 8, 12][rng.below(4)];
                add(&mut rng, receiver, b, vec![b], &[sender], vec![b], dims, elem_size);
            }
            // A large one, split into several messages.
            let b = if (sender + receiver) % 2 == 0 {
                CellBox::d2([5, 3], [75, 93]) // 70 × 90 × 8 B = 50 400 B: 3 messages
            } else {
                CellBox::d3([1, 2, 3], [21, 32, 43]) // 20 × 30 × 40 × 4 B = 96 000 B: 5 messages
            };
            let (dims, elem_size) = if (sender + receiver) % 2 == 0 { (2, 8) } else { (3, 4) };
            add(&mut rng, receiver, b, vec![b], &[sender], vec![b], dims, elem_size);
        }
        // Regions gathered from several senders, cut differently on the two sides: each sent box
        // spans several of the expected boxes.
        for dims in 2..=3 {
            for _ in 0..2 {
                let b = random_box(&mut rng, dims, [40, 12, 6][dims - 1].max(4));
                let region = split(b, 1, 2);
                let pieces = split(b, 0, 3);
                let senders: Vec<Rank> = pieces.iter().map(|_| rng.below(size as usize) as Rank).collect();
                let elem_size = [2, 4, 8][rng.below(3)];
                add(&mut rng, receiver, b, region, &senders, pieces, dims, elem_size);
            }
        }
    }
    plan
}

/// The piece rank `sender` contributes to rank `receiver`'s gather: empty for some pairs.
fn gather_piece(sender: Rank, receiver: Rank) -> CellBox {
    if (sender + receiver) % 3 == 0 {
        CellBox::EMPTY
    } else {
        let lo = sender as usize * 4;
        CellBox::d1(lo, lo + 1 + ((sender + receiver) % 4) as usize)
    }
}

/// Layout of every rank's gather source: 1D, 8-byte values.
fn gather_layout(size: Rank) -> AllocLayout {
    AllocLayout { bounds: CellBox::d1(0, size as usize * 4 + 4), elem_size: 8 }
}

fn gather_key(receiver: Rank) -> TransferKey {
    TransferKey(GATHER, receiver as u64, 1)
}

/// Everything that finished, by token.
#[derive(Default)]
struct Done {
    tokens: HashSet<Token>,
    buf: Vec<Completion>,
}

/// Polls until `cond` holds; a diagnostic error after [`POLL_LIMIT`].
fn poll_until(
    engine: &mut TransferEngine<'_>,
    done: &mut Done,
    what: &str,
    mut cond: impl FnMut(&TransferEngine<'_>, &Done) -> bool,
) -> Result<(), String> {
    while !cond(engine, done) {
        poll_once(engine, done)?;
        if Instant::now() > deadline() {
            let unmatched: Vec<String> =
                engine.unmatched_headers().map(|(k, s, b)| format!("{k} from rank {s}: {b}")).collect();
            let pending: Vec<String> = engine.pending_expects().map(|(k, t)| format!("{k} ({t:?})")).collect();
            return Err(format!(
                "{what}: not done {POLL_LIMIT:?} after the start; pending expects: [{}]; unmatched headers: [{}]",
                pending.join(", "),
                unmatched.join(", ")
            ));
        }
    }
    Ok(())
}

/// One `poll`, recording the completions.
fn poll_once(engine: &mut TransferEngine<'_>, done: &mut Done) -> Result<(), String> {
    engine.poll(&mut done.buf).map_err(|e| format!("poll failed: {e}"))?;
    for c in done.buf.drain(..) {
        if c.kind != kind_of(c.token) {
            return Err(format!("completion {c:?} should be of kind {:?}", kind_of(c.token)));
        }
        if !done.tokens.insert(c.token) {
            return Err(format!("completion {c:?} reported twice"));
        }
    }
    Ok(())
}

/// Polls until `poll` returns an error, and returns it.
fn poll_until_error(engine: &mut TransferEngine<'_>, done: &mut Done, what: &str) -> Result<TransferError, String> {
    loop {
        match engine.poll(&mut done.buf) {
            Err(e) => return Ok(e),
            Ok(()) => {
                for c in done.buf.drain(..) {
                    done.tokens.insert(c.token);
                }
            }
        }
        if Instant::now() > deadline() {
            return Err(format!("{what}: expected an error, but poll kept succeeding"));
        }
    }
}

/// Tokens: sends and expects of plan entry `i`, and a few fixed ones.
fn send_token(i: usize, piece: usize) -> Token {
    Token((i as u64) << 8 | piece as u64)
}
fn expect_token(i: usize) -> Token {
    Token(1 << 40 | i as u64)
}
const READY_TOKEN: Token = Token(1 << 50);
const GATHER_TOKEN: Token = Token(1 << 51);
/// Tokens of the error cases: 1 to 3 and 5 are expects, 4 a gather, from 101 sends.
fn error_token(n: u64) -> Token {
    Token(1 << 54 | n)
}

/// The kind of completion each token must come back with.
fn kind_of(token: Token) -> CompletionKind {
    let t = token.0;
    if token == READY_TOKEN || token == GATHER_TOKEN || token == error_token(4) {
        CompletionKind::Gathered
    } else if (t & 1 << 40 != 0 && t < 1 << 50) || (t >> 54 == 1 && matches!(t & 0xff, 1..=3 | 5)) || t >> 56 == 1 {
        CompletionKind::Received
    } else {
        CompletionKind::Sent
    }
}

/// Whether plan entry `i` is received with `expect_pieces` (kept packed as sent).
fn kept_as_pieces(i: usize) -> bool {
    i % 3 == 1
}

/// Whether plan entry `i` is received with `expect_into` (into one packed target per box of the region; MPI writes
/// a box contiguous in one target straight into it), else with `expect` or `expect_pieces`.
fn received_into(i: usize) -> bool {
    i % 3 == 2
}

/// Whether piece `p` of plan entry `i` is sent with `send_lent` (MPI reads a packed copy in place) rather than
/// `send`.
fn sent_lent(i: usize, p: usize) -> bool {
    (i + p).is_multiple_of(2)
}

/// Checks every cell of the destination of transfer `t`.
fn check_destination(me: Rank, t: &Transfer, dst: &[u8]) -> Result<(), String> {
    let es = t.layout.elem_size;
    for (n, cell) in cells(t.layout.bounds).enumerate() {
        let inside = t.region.iter().any(|r| r.contains(&CellBox::new(cell, [cell[0] + 1, cell[1] + 1, cell[2] + 1])));
        for b in 0..es {
            let want = if inside { cell_byte(t.key, cell, b) } else { !cell_byte(t.key, cell, b) };
            let got = dst[n * es + b];
            if got != want {
                return Err(format!(
                    "rank {me}, transfer {}: byte {b} of cell {cell:?} ({} the expected region {:?}) is {got:#04x}, expected {want:#04x}",
                    t.key,
                    if inside { "inside" } else { "outside" },
                    t.region,
                ));
            }
        }
    }
    Ok(())
}

/// Steps 1 to 4 of the module documentation. Returns a summary.
fn exchange(engine: &mut TransferEngine<'_>, me: Rank, size: Rank) -> Result<String, String> {
    let plan = plan(size);
    let mut rng = Rng(SEED.wrapping_mul(31) ^ me as u64);
    let mut done = Done::default();
    testspy::set_max_message_bytes(engine, MESSAGE_LIMIT);

    // Destination allocations, filled with the complement of what will arrive. Not touched again
    // until every expect has completed.
    let mine: Vec<usize> = (0..plan.len()).filter(|&i| plan[i].receiver == me).collect();
    let mut dsts: Vec<Vec<u8>> = mine.iter().map(|&i| fill(plan[i].key, &plan[i].layout, true)).collect();
    let mut dst_ptrs: Vec<*mut u8> = dsts.iter_mut().map(|d| d.as_mut_ptr()).collect();
    // The targets of `expect_into`: one packed buffer per box of the region, filled with a byte no cell holds
    // everywhere (checked through `check_destination` once unpacked).
    let mut targets: Vec<Vec<Vec<u8>>> = mine
        .iter()
        .map(|&i| {
            let t = &plan[i];
            let boxes = if received_into(i) { t.region.as_slice() } else { &[] };
            boxes.iter().map(|b| vec![0xa5; b.volume() * t.layout.elem_size]).collect()
        })
        .collect();
    let target_ptrs: Vec<Vec<(CellBox, *mut u8)>> = targets
        .iter_mut()
        .zip(&mine)
        .map(|(bufs, &i)| bufs.iter_mut().zip(&plan[i].region).map(|(b, r)| (*r, b.as_mut_ptr())).collect())
        .collect();
    let post = |engine: &mut TransferEngine<'_>, k: usize, dst: *mut u8| -> Result<(), String> {
        let t = &plan[mine[k]];
        if received_into(mine[k]) {
            // SAFETY: each target points to a buffer of `targets[k]` of its box's byte size, which outlives the
            // engine's use of it (read only after every expect has completed, dropped after the engine) and is
            // not accessed until then.
            return unsafe { engine.expect_into(t.key, &target_ptrs[k], t.layout.elem_size, expect_token(mine[k])) }
                .map_err(|e| format!("expect_into {}: {e}", t.key));
        }
        if kept_as_pieces(mine[k]) {
            return engine
                .expect_pieces(t.key, &t.region, t.layout.elem_size, expect_token(mine[k]))
                .map_err(|e| format!("expect_pieces {}: {e}", t.key));
        }
        // SAFETY: `dst` points to `dsts[k]`, which holds `t.layout`, outlives the engine's use of it
        // (it is only read after every expect has completed, and dropped after the engine) and is
        // not accessed until then.
        unsafe { engine.expect(t.key, &t.region, &t.layout, dst, expect_token(mine[k])) }
            .map_err(|e| format!("expect {}: {e}", t.key))
    };

    // 1. Early expects, the even ranks' gathers, then a gather of empty boxes as a barrier.
    let mut order: Vec<usize> = (0..mine.len()).collect();
    rng.shuffle(&mut order);
    for &k in &order {
        if plan[mine[k]].early {
            post(engine, k, dst_ptrs[k])?;
        }
    }
    if me % 2 == 0 {
        engine.expect_gather(gather_key(me), size as usize, GATHER_TOKEN).map_err(|e| e.to_string())?;
    }
    let ready = TransferKey(READY, 0, 0);
    engine.expect_gather(ready, size as usize, READY_TOKEN).map_err(|e| e.to_string())?;
    for r in 0..size {
        engine.send_empty(ready, r, Token(1 << 52 | r as u64)).map_err(|e| e.to_string())?;
    }
    poll_until(engine, &mut done, "the ready gather", |_, d| d.tokens.contains(&READY_TOKEN))?;
    let g = engine.take_gathered(ready).ok_or("the ready gather completed but has no result")?;
    let senders: Vec<Rank> = g.pieces().iter().map(|p| p.sender()).collect();
    if senders != (0..size).collect::<Vec<_>>()
        || g.pieces().iter().any(|p| !p.bounds().is_empty() || !p.bytes().is_empty())
    {
        return Err(format!("the ready gather should hold one empty piece per rank in rank order: {g:?}"));
    }
    engine.recycle(g);

    // 2. Sends, shuffled, polling now and then.
    let mut sends: Vec<(usize, usize)> = Vec::new();
    for (i, t) in plan.iter().enumerate() {
        for (p, piece) in t.pieces.iter().enumerate() {
            if piece.sender == me {
                sends.push((i, p));
            }
        }
    }
    let gather_layout = gather_layout(size);
    for r in 0..size {
        sends.push((usize::MAX, r as usize));
    }
    rng.shuffle(&mut sends);
    let fault = std::env::var("TRANSFER_MPI_FAULT").ok().filter(|_| me == size - 1);
    if fault.as_deref() == Some("hang") {
        if let Some(last) = sends.iter().rposition(|&(i, _)| i != usize::MAX) {
            let (i, p) = sends.remove(last);
            eprintln!("transfer_mpi: rank {me} will not send piece {p} of {} (TRANSFER_MPI_FAULT=hang)", plan[i].key);
        }
    }
    let mut corrupt = fault.as_deref() == Some("mismatch");
    // What `send_lent` sends from, kept until every send has completed.
    let mut lent: Vec<Vec<u8>> = Vec::new();
    let mut expected_messages = 0u64;
    let mut expected_inline = 0u64;
    let mut split_sends = 0;
    // The payload messages a payload of `bytes` bytes takes after its header: none if it is empty or inline.
    let messages_of =
        |bytes: usize| if bytes <= INLINE_PAYLOAD_BYTES { 0 } else { bytes.div_ceil(MESSAGE_LIMIT) as u64 };
    let inline_of = |bytes: usize| u64::from(bytes > 0 && bytes <= INLINE_PAYLOAD_BYTES);
    for &(i, p) in &sends {
        if i == usize::MAX {
            let r = p as Rank;
            let key = gather_key(r);
            let src = fill(key, &gather_layout, false);
            let b = gather_piece(me, r);
            expected_messages += messages_of(b.volume() * 8);
            expected_inline += inline_of(b.volume() * 8);
            engine.send(key, r, b, &gather_layout, &src, Token(1 << 53 | r as u64)).map_err(|e| e.to_string())?;
        } else {
            let t = &plan[i];
            let piece = &t.pieces[p];
            let mut src = fill(t.key, &piece.layout, false);
            if corrupt && !piece.bounds.is_empty() {
                // The first cell of the piece, at its offset in the sender's allocation.
                let offset = cells(piece.layout.bounds).position(|c| c == piece.bounds.min()).unwrap();
                src[offset * piece.layout.elem_size] ^= 0x10;
                corrupt = false;
                eprintln!(
                    "transfer_mpi: rank {me} corrupts cell {:?} of {} (TRANSFER_MPI_FAULT=mismatch)",
                    piece.bounds.min(),
                    t.key
                );
            }
            let messages = messages_of(piece.bounds.volume() * piece.layout.elem_size);
            expected_messages += messages;
            expected_inline += inline_of(piece.bounds.volume() * piece.layout.elem_size);
            split_sends += usize::from(messages > 1);
            if sent_lent(i, p) {
                let mut packed = vec![0; piece.bounds.volume() * piece.layout.elem_size];
                pack(&piece.layout, &src, &piece.bounds, &mut packed).map_err(|e| e.to_string())?;
                let es = piece.layout.elem_size;
                // SAFETY: `packed` holds the piece's cells packed and moves into `lent` (its heap memory stays
                // put), which is neither written nor dropped before every send has completed.
                unsafe { engine.send_lent(t.key, t.receiver, piece.bounds, es, packed.as_ptr(), send_token(i, p)) }
                    .map_err(|e| format!("send_lent {}: {e}", t.key))?;
                lent.push(packed);
            } else {
                engine
                    .send(t.key, t.receiver, piece.bounds, &piece.layout, &src, send_token(i, p))
                    .map_err(|e| format!("send {}: {e}", t.key))?;
            }
        }
        if rng.below(3) == 0 {
            poll_once(engine, &mut done)?;
        }
    }
    let sent = testspy::payload_messages_sent(engine);
    if sent != expected_messages {
        return Err(format!("rank {me} sent {sent} payload messages, expected {expected_messages}"));
    }
    let inline = testspy::inline_payloads_sent(engine);
    if inline != expected_inline {
        return Err(format!("rank {me} sent {inline} payloads inside their headers, expected {expected_inline}"));
    }
    if split_sends == 0 {
        return Err(format!("rank {me}: no payload was split; the large transfers do not exercise the split"));
    }

    // 3. Late expects, each once all of its headers are in.
    for &k in &order {
        let t = &plan[mine[k]];
        if t.early {
            continue;
        }
        let n = t.pieces.len();
        poll_until(engine, &mut done, &format!("the headers of {}", t.key), |e, _| {
            e.unmatched_headers().filter(|(key, _, _)| *key == t.key).count() == n
        })?;
        post(engine, k, dst_ptrs[k])?;
    }
    if me % 2 == 1 {
        let key = gather_key(me);
        poll_until(engine, &mut done, "the headers of the gather", |e, _| {
            e.unmatched_headers().filter(|(k, _, _)| *k == key).count() == size as usize
        })?;
        engine.expect_gather(key, size as usize, GATHER_TOKEN).map_err(|e| e.to_string())?;
    }

    // 4. Everything completes; then check every byte.
    poll_until(engine, &mut done, "all transfers", |e, _| e.is_idle())?;
    for &k in &mine {
        if !done.tokens.contains(&expect_token(k)) {
            return Err(format!("the expect of {} never reported completion", plan[k].key));
        }
    }
    for &(i, p) in &sends {
        let token = if i == usize::MAX { Token(1 << 53 | p as u64) } else { send_token(i, p) };
        if !done.tokens.contains(&token) {
            return Err(format!("send {token:?} never reported completion"));
        }
    }
    dst_ptrs.clear();
    drop(lent);
    // A piece that is a whole box of an `expect_into` region and too large to travel inline goes straight into its
    // target (the inline cases check this path again, whatever the plan holds).
    let in_place_expected = mine.iter().any(|&i| {
        let t = &plan[i];
        received_into(i) && t.region.len() == 1 && t.region[0].volume() * t.layout.elem_size > INLINE_PAYLOAD_BYTES
    });
    let in_place = testspy::payloads_received_in_place(engine);
    if in_place_expected && in_place == 0 {
        return Err(format!("rank {me}: no payload was received in place into an expect_into target"));
    }
    for (k, &i) in mine.iter().enumerate() {
        if received_into(i) {
            // Each target holds its box packed: unpack it into the destination, as the runtime uploads it.
            let t = &plan[i];
            for (b, bytes) in t.region.iter().zip(&targets[k]) {
                unpack(&t.layout, &mut dsts[k], b, bytes).map_err(|e| format!("unpack {}: {e}", t.key))?;
            }
        }
        if kept_as_pieces(i) {
            // The engine kept the payloads: copy each piece into the destination as the runtime uploads them.
            let t = &plan[i];
            let g = engine.take_gathered(t.key).ok_or_else(|| format!("{} kept no pieces", t.key))?;
            let es = t.layout.elem_size;
            let mut cells_in = 0;
            for piece in g.pieces() {
                for (n, cell) in cells(piece.bounds()).enumerate() {
                    let (lo, r) = (t.layout.bounds.min(), t.layout.bounds.range());
                    let at = ((cell[0] - lo[0]) * r[1] + (cell[1] - lo[1])) * r[2] + (cell[2] - lo[2]);
                    dsts[k][at * es..(at + 1) * es].copy_from_slice(&piece.bytes()[n * es..(n + 1) * es]);
                    cells_in += 1;
                }
            }
            let want: usize = t.region.iter().map(|b| b.volume()).sum();
            if cells_in != want {
                return Err(format!("{}: the pieces hold {cells_in} cells, the region {want}", t.key));
            }
            engine.recycle(g);
        }
        check_destination(me, &plan[i], &dsts[k])?;
    }
    let g = engine.take_gathered(gather_key(me)).ok_or("the gather has no result")?;
    if g.pieces().len() != size as usize {
        return Err(format!("the gather has {} pieces, expected {size}", g.pieces().len()));
    }
    for (s, piece) in g.pieces().iter().enumerate() {
        let s = s as Rank;
        let b = gather_piece(s, me);
        let mut want = vec![0u8; b.volume() * 8];
        pack(&gather_layout, &fill(gather_key(me), &gather_layout, false), &b, &mut want).map_err(|e| e.to_string())?;
        if piece.sender() != s || piece.bounds() != b || piece.bytes() != want {
            return Err(format!(
                "rank {me}: gather piece {s} is from rank {} with {} and {} bytes; expected rank {s} with {b} and {} bytes{}",
                piece.sender(),
                piece.bounds(),
                piece.bytes().len(),
                want.len(),
                if piece.bytes().len() == want.len() { " (the bytes differ)" } else { "" }
            ));
        }
    }
    engine.recycle(g);
    let transfers = plan.len();
    Ok(format!(
        "{size} rank(s): {transfers} transfers ({} pieces, {split_sends} split sends on rank {me}), {size} gathers verified",
        plan.iter().map(|t| t.pieces.len()).sum::<usize>()
    ))
}

/// Checks that `err` is the expected variant and that its message names the key, the sender and
/// the box.
fn expect_error(
    err: &TransferError,
    matches: bool,
    key: TransferKey,
    sender: Rank,
    bounds: CellBox,
) -> Result<(), String> {
    let message = err.to_string();
    let names = [key.to_string(), format!("rank {sender}"), bounds.to_string()];
    if !matches || names.iter().any(|n| !message.contains(n.as_str())) {
        return Err(format!("unexpected error (it must name {names:?}): {message} ({err:?})"));
    }
    Ok(())
}

/// Step 5: headers that do not fit, sent by this rank to itself.
fn error_cases(engine: &mut TransferEngine<'_>, me: Rank, size: Rank) -> Result<usize, String> {
    let mut done = Done::default();
    let layout = AllocLayout { bounds: CellBox::d1(0, 100), elem_size: 4 };
    let src: Vec<u8> = (0..400).map(|i| (i * 7 + 3) as u8).collect();
    let mut dst = vec![0u8; 400];
    let dst_ptr = dst.as_mut_ptr();
    let key = |n| TransferKey(ERRORS, me as u64, n);
    let e = |r: Result<(), TransferError>| r.map_err(|e| e.to_string());
    let mut cases = 0;

    // a. A header outside the region of an active expect; then the right box still completes.
    let (k, region, bad) = (key(1), CellBox::d1(0, 10), CellBox::d1(5, 15));
    // SAFETY: `dst` holds `layout`, outlives the engine, and is read only after the completions
    // of the expects into it (which use disjoint regions, one after another).
    e(unsafe { engine.expect(k, &[region], &layout, dst_ptr, error_token(1)) })?;
    e(engine.send(k, me, bad, &layout, &src, error_token(101)))?;
    let err = poll_until_error(engine, &mut done, "a header outside the region")?;
    expect_error(&err, matches!(err, TransferError::OutsideRegion { .. }), k, me, bad)?;
    e(engine.send(k, me, region, &layout, &src, error_token(102)))?;
    poll_until(engine, &mut done, "the expect after an outside header", |_, d| d.tokens.contains(&error_token(1)))?;
    cases += 1;

    // b. The same cells twice.
    let (k, a, b) = (key(2), CellBox::d1(20, 30), CellBox::d1(30, 40));
    // SAFETY: as above; cells 20..40 are not used by any other expect.
    e(unsafe { engine.expect(k, &[a, b], &layout, dst_ptr, error_token(2)) })?;
    e(engine.send(k, me, a, &layout, &src, error_token(103)))?;
    e(engine.send(k, me, a, &layout, &src, error_token(104)))?;
    let err = poll_until_error(engine, &mut done, "a box sent twice")?;
    expect_error(&err, matches!(err, TransferError::Duplicate { overlap, .. } if overlap == a), k, me, a)?;
    e(engine.send(k, me, b, &layout, &src, error_token(105)))?;
    poll_until(engine, &mut done, "the expect after a duplicate", |_, d| d.tokens.contains(&error_token(2)))?;
    cases += 1;

    // c. A header that arrived early and does not fit the expect: `expect` fails, registers
    //    nothing and keeps the header, which a fitting expect then takes.
    let (k, bad_region, good) = (key(3), CellBox::d1(0, 10), CellBox::d1(50, 60));
    e(engine.send(k, me, good, &layout, &src, error_token(106)))?;
    poll_until(engine, &mut done, "an early header", |eng, _| eng.unmatched_headers().any(|(kk, _, _)| kk == k))?;
    // SAFETY: as above (the expect is rejected, so nothing is written).
    match unsafe { engine.expect(k, &[bad_region], &layout, dst_ptr, error_token(3)) } {
        Err(err) => expect_error(&err, matches!(err, TransferError::OutsideRegion { .. }), k, me, good)?,
        Ok(()) => return Err("expect accepted an early header outside its region".into()),
    }
    if !engine.unmatched_headers().any(|(kk, _, _)| kk == k) {
        return Err("a rejected expect consumed the early header".into());
    }
    // SAFETY: as above; cells 50..60 are not used by any other expect.
    e(unsafe { engine.expect(k, &[good], &layout, dst_ptr, error_token(3)) })?;
    poll_until(engine, &mut done, "the expect after a rejected one", |_, d| d.tokens.contains(&error_token(3)))?;
    cases += 1;

    // d. A gather piece sent twice by the same rank (needs a gather of at least two senders; it
    //    is left incomplete).
    if size >= 2 {
        let k = key(4);
        e(engine.expect_gather(k, size as usize, error_token(4)))?;
        e(engine.send_empty(k, me, error_token(107)))?;
        e(engine.send_empty(k, me, error_token(108)))?;
        let err = poll_until_error(engine, &mut done, "a gather piece sent twice")?;
        expect_error(&err, matches!(err, TransferError::DuplicateSender { .. }), k, me, CellBox::EMPTY)?;
        cases += 1;
    }

    // e. Cells that arrive another way (`arrived_elsewhere`: a GPU copy between devices of one process) count
    //    towards the expect and are not written: announced before the expect (kept like an early header) and after
    //    it, with the rest of the region over MPI; cells announced twice are refused; a gather cannot take them.
    let elsewhere_token = Token(1 << 56 | 0xE1_0000);
    let (k, early, sent, late) = (key(20), CellBox::d1(70, 75), CellBox::d1(75, 80), CellBox::d1(80, 90));
    e(engine.arrived_elsewhere(k, me, early, 4))?;
    // SAFETY: as above; cells 70..90 are not used by any other expect.
    e(unsafe { engine.expect(k, &[CellBox::d1(70, 90)], &layout, dst_ptr, elsewhere_token) })?;
    e(engine.send(k, me, sent, &layout, &src, error_token(110)))?;
    poll_until(engine, &mut done, "a send beside cells that arrive elsewhere", |_, d| {
        d.tokens.contains(&error_token(110))
    })?;
    for _ in 0..10 {
        poll_once(engine, &mut done)?;
    }
    if done.tokens.contains(&elsewhere_token) {
        return Err("an expect completed before its cells that arrive elsewhere were announced".into());
    }
    let twice = CellBox::d1(72, 74);
    match engine.arrived_elsewhere(k, me, twice, 4) {
        Err(err) => expect_error(
            &err,
            matches!(err, TransferError::Duplicate { overlap, .. } if overlap == twice),
            k,
            me,
            twice,
        )?,
        Ok(()) => return Err("cells announced twice as arriving elsewhere were accepted".into()),
    }
    e(engine.arrived_elsewhere(k, me, late, 4))?;
    poll_until(engine, &mut done, "an expect completed by cells that arrive elsewhere", |_, d| {
        d.tokens.contains(&elsewhere_token)
    })?;
    if dst[75 * 4..80 * 4] != src[75 * 4..80 * 4]
        || dst[70 * 4..75 * 4].iter().chain(&dst[80 * 4..90 * 4]).any(|&b| b != 0)
    {
        return Err("error case e: MPI's cells must be written, and nothing where cells arrived elsewhere".into());
    }
    let k = key(21);
    e(engine.expect_gather(k, size as usize, error_token(6)))?;
    match engine.arrived_elsewhere(k, me, early, 4) {
        Err(err) => expect_error(&err, matches!(err, TransferError::ElsewhereNotRegion { .. }), k, me, early)?,
        Ok(()) => return Err("a gather accepted cells that arrive elsewhere".into()),
    }
    cases += 1;

    // The sends whose headers were rejected have no receiver for their payload, but such small
    // payloads go out eagerly, so every send completes.
    poll_until(engine, &mut done, "the error cases' sends", |_, d| {
        (101..=106).all(|t| d.tokens.contains(&error_token(t)))
    })?;
    for (cells, what) in [(0..10, "a"), (20..40, "b"), (50..60, "c")] {
        let range = cells.start * 4..cells.end * 4;
        if dst[range.clone()] != src[range] {
            return Err(format!("error case {what}: the destination holds the wrong bytes"));
        }
    }
    Ok(cases)
}

/// How an inline case's pieces are sent.
#[derive(Clone, Copy, Debug, PartialEq)]
enum SendBy {
    /// `send`: the engine packs the cells.
    Copy,
    /// `send_lent`: from a packed buffer lent until the completion.
    Lent,
    /// `send_lent_boxes`: every piece in one call, packed one after another in a buffer lent until the completion
    /// (small pieces grouped, many to a header message).
    Boxes,
}

/// How an inline case's region is received.
#[derive(Clone, Copy, Debug, PartialEq)]
enum ReceiveBy {
    /// `expect` into an allocation.
    Region,
    /// `expect_into`: one packed target per box of the region.
    Into,
}

/// One transfer of the inline cases, on every edge of the ring: each rank sends `pieces` (which cover `region`) to
/// the next rank and receives them from the previous one.
struct InlineCase {
    /// The receiver's (and the sender's) allocation; the key is `(INLINE, receiver, n)`.
    layout: AllocLayout,
    region: Vec<CellBox>,
    pieces: Vec<CellBox>,
    send: SendBy,
    receive: ReceiveBy,
}

impl InlineCase {
    fn key(n: usize, receiver: Rank) -> TransferKey {
        TransferKey(INLINE, receiver as u64, n as u64)
    }
}

/// What the engine's counters moved by during one phase of the inline cases.
#[derive(Debug, PartialEq)]
struct Counted {
    /// Payloads sent inside their header message.
    inline_sent: u64,
    /// Payload messages sent after a header.
    messages: u64,
    /// Inline payloads delivered into an expect.
    inline_received: u64,
    /// Payloads received straight into an `expect_into` target.
    in_place: u64,
    /// Header messages announcing a group of boxes.
    groups: u64,
}

fn counters(engine: &TransferEngine<'_>) -> Counted {
    Counted {
        inline_sent: testspy::inline_payloads_sent(engine),
        messages: testspy::payload_messages_sent(engine),
        inline_received: testspy::inline_payloads_received(engine),
        in_place: testspy::payloads_received_in_place(engine),
        groups: testspy::group_messages_sent(engine),
    }
}

/// Runs `cases` (numbered from `first`) on the ring and checks every received cell. With `early`, every header
/// arrives before its expect: the expects are posted only once all of them wait as unmatched headers. Returns what
/// the engine's counters moved by.
fn inline_phase(
    engine: &mut TransferEngine<'_>,
    me: Rank,
    size: Rank,
    first: usize,
    cases: &[InlineCase],
    early: bool,
) -> Result<Counted, String> {
    let (next, prev) = ((me + 1) % size, (me + size - 1) % size);
    let before = counters(engine);
    let mut done = Done::default();
    let send_token = |n: usize, p: usize| Token(1 << 55 | (n as u64) << 8 | p as u64);
    let expect_token = |n: usize| Token(1 << 56 | n as u64);
    // What this rank receives: destinations filled with the complement of what arrives, and the packed targets of
    // `expect_into`s (0xa5 everywhere; every cell is checked once unpacked into the destination).
    let mut dsts: Vec<Vec<u8>> =
        cases.iter().enumerate().map(|(i, c)| fill(InlineCase::key(first + i, me), &c.layout, true)).collect();
    let mut targets: Vec<Vec<Vec<u8>>> = cases
        .iter()
        .map(|c| match c.receive {
            ReceiveBy::Into => c.region.iter().map(|b| vec![0xa5; b.volume() * c.layout.elem_size]).collect(),
            ReceiveBy::Region => Vec::new(),
        })
        .collect();
    let target_ptrs: Vec<Vec<(CellBox, *mut u8)>> = targets
        .iter_mut()
        .zip(cases)
        .map(|(bufs, c)| bufs.iter_mut().zip(&c.region).map(|(b, r)| (*r, b.as_mut_ptr())).collect())
        .collect();
    let dst_ptrs: Vec<*mut u8> = dsts.iter_mut().map(|d| d.as_mut_ptr()).collect();
    let post = |engine: &mut TransferEngine<'_>, i: usize| -> Result<(), String> {
        let (c, key, token) = (&cases[i], InlineCase::key(first + i, me), expect_token(first + i));
        let posted = match c.receive {
            // SAFETY: the targets are buffers of `targets[i]` of their boxes' byte sizes, not accessed until every
            // expect of this phase has completed, and dropped after that.
            ReceiveBy::Into => unsafe { engine.expect_into(key, &target_ptrs[i], c.layout.elem_size, token) },
            // SAFETY: `dsts[i]` holds `c.layout`, is not accessed until every expect of this phase has completed,
            // and is dropped after that.
            ReceiveBy::Region => unsafe { engine.expect(key, &c.region, &c.layout, dst_ptrs[i], token) },
        };
        posted.map_err(|e| format!("inline case {}: {:?} of {key}: {e}", first + i, c.receive))
    };
    if !early {
        for i in 0..cases.len() {
            post(engine, i)?;
        }
    }
    // What `send_lent` sends from, kept until every send of the phase has completed.
    let mut lent: Vec<Vec<u8>> = Vec::new();
    for (i, c) in cases.iter().enumerate() {
        let key = InlineCase::key(first + i, next);
        let src = fill(key, &c.layout, false);
        if c.send == SendBy::Boxes {
            let mut packed = Vec::new();
            for piece in &c.pieces {
                let at = packed.len();
                packed.resize(at + piece.volume() * c.layout.elem_size, 0);
                pack(&c.layout, &src, piece, &mut packed[at..]).map_err(|e| e.to_string())?;
            }
            let token = send_token(first + i, 0);
            // SAFETY: `packed` holds the pieces' cells packed one after another and moves into `lent` (its heap
            // memory stays put), which is neither written nor dropped before every send of the phase has completed.
            let sent =
                unsafe { engine.send_lent_boxes(key, next, &c.pieces, c.layout.elem_size, packed.as_ptr(), token) };
            lent.push(packed);
            sent.map_err(|e| format!("inline case {}: boxes of {key}: {e}", first + i))?;
            continue;
        }
        for (p, piece) in c.pieces.iter().enumerate() {
            let token = send_token(first + i, p);
            match c.send {
                SendBy::Copy => engine.send(key, next, *piece, &c.layout, &src, token),
                SendBy::Boxes => unreachable!("sent above"),
                SendBy::Lent => {
                    let mut packed = vec![0; piece.volume() * c.layout.elem_size];
                    pack(&c.layout, &src, piece, &mut packed).map_err(|e| e.to_string())?;
                    // SAFETY: `packed` holds the piece's cells packed and moves into `lent` (its heap memory stays
                    // put), which is neither written nor dropped before every send of the phase has completed.
                    let sent =
                        unsafe { engine.send_lent(key, next, *piece, c.layout.elem_size, packed.as_ptr(), token) };
                    lent.push(packed);
                    sent
                }
            }
            .map_err(|e| format!("inline case {}: {:?} of {key} piece {piece}: {e}", first + i, c.send))?;
        }
    }
    if early {
        let mine: Vec<(TransferKey, usize)> =
            cases.iter().enumerate().map(|(i, c)| (InlineCase::key(first + i, me), c.pieces.len())).collect();
        poll_until(engine, &mut done, &format!("the early headers of the inline cases from {first}"), |e, _| {
            mine.iter().all(|&(key, n)| e.unmatched_headers().filter(|(k, _, _)| *k == key).count() == n)
        })?;
        // Nothing was delivered before its expect.
        if counters(engine).inline_received != before.inline_received {
            return Err(format!("rank {me}: an inline payload was delivered before its expect was posted"));
        }
        for i in 0..cases.len() {
            post(engine, i)?;
        }
    }
    let all = |d: &Done| {
        cases.iter().enumerate().all(|(i, c)| {
            d.tokens.contains(&expect_token(first + i))
                && (0..if c.send == SendBy::Boxes { 1 } else { c.pieces.len() })
                    .all(|p| d.tokens.contains(&send_token(first + i, p)))
        })
    };
    poll_until(
        engine,
        &mut done,
        &format!("the inline cases from {first} on rank {me} (from rank {prev})"),
        |_, d| all(d),
    )?;
    drop(lent);
    for (i, c) in cases.iter().enumerate() {
        let key = InlineCase::key(first + i, me);
        for (b, bytes) in c.region.iter().zip(&targets[i]) {
            unpack(&c.layout, &mut dsts[i], b, bytes).map_err(|e| format!("unpack {key}: {e}"))?;
        }
        let t = Transfer { key, receiver: me, layout: c.layout, region: c.region.clone(), pieces: Vec::new(), early };
        check_destination(me, &t, &dsts[i])
            .map_err(|e| format!("inline case {} ({:?}, {:?}): {e}", first + i, c.send, c.receive))?;
    }
    let after = counters(engine);
    Ok(Counted {
        inline_sent: after.inline_sent - before.inline_sent,
        messages: after.messages - before.messages,
        inline_received: after.inline_received - before.inline_received,
        in_place: after.in_place - before.in_place,
        groups: after.groups - before.groups,
    })
}

/// Step 6 of the module documentation. Returns how many phases passed.
fn inline_cases(engine: &mut TransferEngine<'_>, me: Rank, size: Rank) -> Result<usize, String> {
    let expect_counts = |what: &str, got: Counted, want: Counted| {
        if got == want {
            Ok(())
        } else {
            Err(format!("rank {me}, inline cases ({what}): the engine counted {got:?}, expected {want:?}"))
        }
    };
    let sends = [SendBy::Copy, SendBy::Lent];
    let receives = [ReceiveBy::Region, ReceiveBy::Into];

    // a. Exactly at the limit (one message) and one byte over (header, then one payload message), by every way of
    //    sending and receiving; 1-byte cells so that the sizes are exact. One byte over into a whole `expect_into`
    //    target is received in place.
    let mut cases = Vec::new();
    for len in [INLINE_PAYLOAD_BYTES, INLINE_PAYLOAD_BYTES + 1] {
        for send in sends {
            for receive in receives {
                let piece = CellBox::d1(3, 3 + len);
                let layout = AllocLayout { bounds: CellBox::d1(0, len + 9), elem_size: 1 };
                cases.push(InlineCase { layout, region: vec![piece], pieces: vec![piece], send, receive });
            }
        }
    }
    let got = inline_phase(engine, me, size, 0, &cases, false)?;
    expect_counts(
        "at the limit and one byte over",
        got,
        Counted { inline_sent: 4, messages: 4, inline_received: 4, in_place: 2, groups: 0 },
    )?;

    // b. More inline headers than header slots (each slot is reused before any of them is matched), all arriving
    //    before their expects, 2D boxes into allocations and targets; and one payload over the limit, early too.
    let mut cases = Vec::new();
    for n in 0..20 {
        let lo = [2 + n % 3, 1 + n % 5];
        let piece = CellBox::d2(lo, [lo[0] + 3 + n % 4, lo[1] + 2 + n % 7]);
        let layout = AllocLayout { bounds: CellBox::d2([0, 0], [12, 16]), elem_size: [1, 4, 8, 12][n % 4] };
        cases.push(InlineCase {
            layout,
            region: vec![piece],
            pieces: vec![piece],
            send: sends[n % 2],
            receive: receives[n / 2 % 2],
        });
    }
    let big = CellBox::d2([1, 1], [41, 21]); // 40 × 20 × 4 B = 3200 B
    let layout = AllocLayout { bounds: CellBox::d2([0, 0], [44, 24]), elem_size: 4 };
    cases.push(InlineCase {
        layout,
        region: vec![big],
        pieces: vec![big],
        send: SendBy::Lent,
        receive: ReceiveBy::Region,
    });
    let got = inline_phase(engine, me, size, 100, &cases, true)?;
    let want = Counted { inline_sent: 20, messages: 1, inline_received: 20, in_place: 0, groups: 0 };
    expect_counts("early headers", got, want)?;

    // c. Into `expect_into` targets that the pieces span (two targets, split between rows 3 and 4) or hold
    //    non-contiguously (part rows of a 2D target, and a 3D box), inline, with the expects posted first and last.
    let region = [CellBox::d2([0, 0], [4, 16]), CellBox::d2([4, 0], [8, 16])];
    let pieces = [
        CellBox::d2([2, 4], [6, 12]),
        CellBox::d2([0, 0], [2, 16]),
        CellBox::d2([6, 0], [8, 16]),
        CellBox::d2([2, 0], [6, 4]),
        CellBox::d2([2, 12], [6, 16]),
    ];
    let cube = CellBox::d3([0, 0, 0], [4, 4, 4]);
    let cube_pieces = split(cube, 2, 2);
    for early in [false, true] {
        let cases: Vec<InlineCase> = sends
            .iter()
            .map(|&send| InlineCase {
                layout: AllocLayout { bounds: CellBox::d2([0, 0], [8, 16]), elem_size: 4 },
                region: region.to_vec(),
                pieces: pieces.to_vec(),
                send,
                receive: ReceiveBy::Into,
            })
            .chain(std::iter::once(InlineCase {
                layout: AllocLayout { bounds: cube, elem_size: 8 },
                region: vec![cube],
                pieces: cube_pieces.clone(),
                send: SendBy::Copy,
                receive: ReceiveBy::Into,
            }))
            .collect();
        let first = if early { 300 } else { 200 };
        let got = inline_phase(engine, me, size, first, &cases, early)?;
        let n = (2 * pieces.len() + cube_pieces.len()) as u64;
        expect_counts(
            "spanning and non-contiguous targets",
            got,
            Counted { inline_sent: n, messages: 0, inline_received: n, in_place: 0, groups: 0 },
        )?;
    }

    // d. A region's boxes in one `send_lent_boxes`: 1000 one-cell boxes of a comb (each box 8 bytes of list and 4 of
    //    payload, so 256 to a group: 4 header messages), into an allocation and into one target per box; and 2D
    //    boxes around one over the inline limit (sent alone: header and payload message, received in place into its
    //    target) and an empty box (skipped): a group of 2, the large box, a group of 3. Headers after and before
    //    their expects (the early ones listed by `unmatched_headers` box by box).
    let comb: Vec<CellBox> = (0..1000).map(|i| CellBox::d1(2 * i + 1, 2 * i + 2)).collect();
    let comb_layout = AllocLayout { bounds: CellBox::d1(0, 2001), elem_size: 4 };
    let small = |r: usize, c: usize| CellBox::d2([r, c], [r + 1, c + 3]);
    let big = CellBox::d2([1, 0], [21, 40]); // 20 × 40 × 4 B = 3200 B
    let mixed = vec![small(0, 0), small(0, 4), big, small(21, 0), small(21, 4), small(22, 0)];
    let mixed_layout = AllocLayout { bounds: CellBox::d2([0, 0], [24, 44]), elem_size: 4 };
    for early in [false, true] {
        let mut cases: Vec<InlineCase> = receives
            .iter()
            .map(|&receive| InlineCase {
                layout: comb_layout,
                region: comb.clone(),
                pieces: comb.clone(),
                send: SendBy::Boxes,
                receive,
            })
            .collect();
        let mut pieces = mixed.clone();
        if !early {
            // (Early cases count each piece among the unmatched headers; an empty one announces nothing.)
            pieces.insert(3, CellBox::EMPTY);
        }
        let (layout, region) = (mixed_layout, mixed.clone());
        cases.push(InlineCase { layout, region, pieces, send: SendBy::Boxes, receive: ReceiveBy::Into });
        let got = inline_phase(engine, me, size, if early { 500 } else { 400 }, &cases, early)?;
        let want = Counted { inline_sent: 0, messages: 1, inline_received: 2 * 1000 + 5, in_place: 1, groups: 8 + 2 };
        expect_counts("groups of boxes", got, want)?;
    }
    Ok(6)
}

/// A header message as the module documentation of `celer_exec::transfer` lays it out, written by hand: from node
/// `me` (one device per rank), with the inline flag, declaring an inline payload of `declared` bytes for `bounds`
/// and carrying `payload` after the header.
fn handmade_header(me: Rank, key: TransferKey, bounds: CellBox, declared: usize, payload: &[u8]) -> Vec<u8> {
    let mut m = Vec::new();
    m.extend_from_slice(b"celr");
    m.extend_from_slice(&me.to_le_bytes());
    m.extend_from_slice(&0i32.to_le_bytes()); // no payload tag
    m.extend_from_slice(&1u32.to_le_bytes()); // flags: inline
    for v in [key.0, key.1, key.2] {
        m.extend_from_slice(&v.to_le_bytes());
    }
    for c in bounds.min().into_iter().chain(bounds.max()) {
        m.extend_from_slice(&(c as u64).to_le_bytes());
    }
    m.extend_from_slice(&(declared as u64).to_le_bytes());
    m.extend_from_slice(&0u64.to_le_bytes()); // no payload messages
    assert_eq!(m.len(), 104);
    m.extend_from_slice(payload);
    m
}

/// Sends `message` to this rank on the header tag and waits until it has left.
fn send_to_self(comm: &mpi::Communicator, me: Rank, message: &[u8]) -> Result<(), String> {
    // SAFETY: the request is completed below (or dropped, which completes it) before `message`'s borrow ends; it is
    // never leaked.
    let mut request = unsafe { comm.isend(message, me, HEADER_TAG) }.map_err(|e| e.to_string())?;
    while !request.test().map_err(|e| e.to_string())? {
        if Instant::now() > deadline() {
            return Err("a hand-made header message to this rank was never sent".into());
        }
    }
    Ok(())
}

/// Step 7 of the module documentation: header messages whose inline payload is not as long as they declare, or
/// that are longer than a header receive buffer, sent by hand to this rank. Each is a clear error from `poll`, and
/// the engine goes on (a real send of the same box then completes the expect). Returns the number of cases.
fn header_message_cases(engine: &mut TransferEngine<'_>, comm: &mpi::Communicator, me: Rank) -> Result<usize, String> {
    let mut done = Done::default();
    let layout = AllocLayout { bounds: CellBox::d1(0, 8), elem_size: 4 };
    let src: Vec<u8> = (0..32).map(|i| (i * 11 + 5) as u8).collect();
    let mut dst = vec![0u8; 32];
    let (key, bounds) = (TransferKey(ERRORS, me as u64, 10), CellBox::d1(0, 4));
    // SAFETY: `dst` holds `layout`, outlives the engine's use of it and is read only after the expect's completion.
    unsafe { engine.expect(key, &[bounds], &layout, dst.as_mut_ptr(), error_token(5)) }.map_err(|e| e.to_string())?;
    // Only this rank sends to it in this step (every transfer of the earlier steps has completed).
    let received = engine.messages_received();

    // a. 16 bytes declared, 12 carried: the length check, not a 16-byte copy out of a 12-byte message.
    send_to_self(comm, me, &handmade_header(me, key, bounds, 16, &src[..12]))?;
    let err = poll_until_error(engine, &mut done, "an inline payload shorter than declared")?;
    let fits = matches!(err, TransferError::InlineLength { declared: 16, got: 12, .. });
    expect_error(&err, fits, key, me, bounds)?;

    // b. Longer than a header receive buffer: MPI's truncation error, never a write past the buffer.
    let long = handmade_header(me, key, bounds, 16, &vec![0xee; INLINE_PAYLOAD_BYTES + 1]);
    send_to_self(comm, me, &long)?;
    let err = poll_until_error(engine, &mut done, "a header message longer than a header buffer")?;
    if !matches!(err, TransferError::HeaderReceiveFailed { .. }) {
        return Err(format!("a header message longer than a header buffer gave {err} ({err:?})"));
    }

    // c. A group of two boxes whose second box reaches outside the group's bounding box (`bounds`): a clear error
    //    naming the transfer, never a write outside the region.
    let mut group = handmade_header(me, key, bounds, 16, &[]);
    group[12..16].copy_from_slice(&3u32.to_le_bytes()); // flags: inline, group
    group[96..100].copy_from_slice(&2u32.to_le_bytes()); // two boxes
    group[100..104].copy_from_slice(&4u32.to_le_bytes()); // of 4-byte cells
    for offset in [0u32, 1, 2, 5] {
        group.extend_from_slice(&offset.to_le_bytes()); // [0, 1) and [2, 5): cell 4 lies outside [0, 4)
    }
    group.extend_from_slice(&src[..16]);
    send_to_self(comm, me, &group)?;
    let err = poll_until_error(engine, &mut done, "a group whose box lies outside its bounding box")?;
    expect_error(&err, matches!(err, TransferError::BadGroup { count: 2, .. }), key, me, bounds)?;

    // None touched the destination; the engine still receives, and the real box completes the expect.
    if dst.iter().any(|&b| b != 0) {
        return Err("a rejected header message wrote the destination".into());
    }
    engine.send(key, me, bounds, &layout, &src, error_token(109)).map_err(|e| e.to_string())?;
    poll_until(engine, &mut done, "the expect after rejected header messages", |_, d| {
        d.tokens.contains(&error_token(5)) && d.tokens.contains(&error_token(109))
    })?;
    if dst[..16] != src[..16] || dst[16..].iter().any(|&b| b != 0) {
        return Err("after rejected header messages, the destination holds the wrong bytes".into());
    }
    // Three rejected header messages and the real one (its 16 bytes inline): each taken in counts.
    let taken_in = engine.messages_received() - received;
    if taken_in != 4 {
        return Err(format!("the engine counted {taken_in} messages taken in, not 4 (3 rejected, 1 accepted)"));
    }
    Ok(3)
}

/// Step 8 of the module documentation: two engines per rank (devices 0 and 1, nodes `2 × rank + device`, device 1
/// on a duplicate communicator), each node sending to the next node of the ring payloads of 8 bytes and of
/// [`INLINE_PAYLOAD_BYTES`] (inline) and of one byte more (header and payload message) into `expect_into` targets.
/// Returns the number of transfers each node received.
fn two_devices(comm: &mpi::Communicator, me: Rank, size: Rank) -> Result<usize, String> {
    let dup = comm.duplicate_full().map_err(|e| e.to_string())?;
    let comms = [comm, &dup];
    let mut engines = Vec::new();
    for d in 0..2 {
        engines.push(TransferEngine::for_device(&comms, d).map_err(|e| format!("device {d}: {e}"))?);
    }
    let nodes = 2 * size;
    let lens = [8, INLINE_PAYLOAD_BYTES, INLINE_PAYLOAD_BYTES + 1];
    let key = |receiver: Rank, k: usize| TransferKey(DEVICES, receiver as u64, k as u64);
    let value = |key: TransferKey, i: usize| (key.1 as usize * 37 + key.2 as usize * 101 + i * 7) as u8;
    // Targets first (their memory stays put: the inner vectors are never resized), then every expect, then the sends.
    let mut targets: Vec<Vec<Vec<u8>>> = (0..2).map(|_| lens.iter().map(|&n| vec![0xa5; n]).collect()).collect();
    let mut sources: Vec<Vec<Vec<u8>>> = Vec::new();
    for (d, engine) in engines.iter_mut().enumerate() {
        let node = 2 * me + d as Rank;
        for (k, &n) in lens.iter().enumerate() {
            let target = [(CellBox::d1(0, n), targets[d][k].as_mut_ptr())];
            // SAFETY: the target is a buffer of `n` bytes, read only after every engine has completed and dropped
            // after the engines.
            unsafe { engine.expect_into(key(node, k), &target, 1, Token(k as u64)) }.map_err(|e| e.to_string())?;
        }
    }
    for (d, engine) in engines.iter_mut().enumerate() {
        let next = (2 * me + d as Rank + 1) % nodes;
        let mut mine = Vec::new();
        for (k, &n) in lens.iter().enumerate() {
            let bytes: Vec<u8> = (0..n).map(|i| value(key(next, k), i)).collect();
            let layout = AllocLayout { bounds: CellBox::d1(0, n), elem_size: 1 };
            let token = Token(100 + k as u64);
            if k % 2 == 0 {
                // SAFETY: `bytes` moves into `sources` (its heap memory stays put), which is kept until every
                // engine has completed and dropped after the engines.
                unsafe { engine.send_lent(key(next, k), next, layout.bounds, 1, bytes.as_ptr(), token) }
            } else {
                engine.send(key(next, k), next, layout.bounds, &layout, &bytes, token)
            }
            .map_err(|e| format!("device {d}, send of {} bytes to node {next}: {e}", n))?;
            mine.push(bytes);
        }
        sources.push(mine);
    }
    let mut done: Vec<HashSet<Token>> = vec![HashSet::new(); 2];
    let mut buf = Vec::new();
    while done.iter().any(|d| d.len() < 2 * lens.len()) {
        for (d, engine) in engines.iter_mut().enumerate() {
            engine.poll(&mut buf).map_err(|e| format!("device {d}: poll failed: {e}"))?;
            done[d].extend(buf.drain(..).map(|c| c.token));
        }
        if Instant::now() > deadline() {
            return Err(format!("rank {me}, two devices per rank: not done {POLL_LIMIT:?} after the start"));
        }
    }
    for (d, engine) in engines.iter().enumerate() {
        let got = counters(engine);
        let want = Counted { inline_sent: 2, messages: 1, inline_received: 2, in_place: 1, groups: 0 };
        if got != want {
            return Err(format!("rank {me}, device {d}: the engine counted {got:?}, expected {want:?}"));
        }
    }
    drop(engines);
    drop(sources);
    for (d, targets) in targets.iter().enumerate() {
        let node = 2 * me + d as Rank;
        for (k, t) in targets.iter().enumerate() {
            if let Some(i) = (0..t.len()).find(|&i| t[i] != value(key(node, k), i)) {
                return Err(format!("rank {me}, node {node}: byte {i} of {} from the previous node is wrong", t.len()));
            }
        }
    }
    Ok(lens.len())
}

fn main() -> ExitCode {
    let finished = &*Box::leak(Box::new(AtomicBool::new(false)));
    std::thread::spawn(move || {
        std::thread::sleep(TIME_LIMIT);
        if !finished.load(Ordering::SeqCst) {
            eprintln!("transfer_mpi: FAILED: still running after {TIME_LIMIT:?} (a transfer never completed?)");
            std::process::exit(3);
        }
    });

    deadline();
    let comm = match mpi::init() {
        Ok(comm) => comm,
        Err(e) => {
            eprintln!("transfer_mpi: FAILED: {e}");
            return ExitCode::FAILURE;
        }
    };
    let (me, size) = (comm.rank(), comm.size());
    let result = TransferEngine::new(&comm).map_err(|e| e.to_string()).and_then(|mut engine| {
        if !matches!(TransferEngine::new(&comm), Err(TransferError::EngineExists)) {
            return Err("a second engine on the same communicator was not refused".into());
        }
        let summary = exchange(&mut engine, me, size)?;
        let cases = error_cases(&mut engine, me, size)?;
        let inline = inline_cases(&mut engine, me, size)?;
        let malformed = header_message_cases(&mut engine, &comm, me)?;
        Ok(format!(
            "{summary}; {cases} error cases reported correctly; {inline} phases of inline cases verified; \
             {malformed} malformed header messages rejected"
        ))
    });
    // The engine on `comm` is gone: two engines per rank now, one on `comm` and one on a duplicate.
    let result = result.and_then(|summary| {
        let n = two_devices(&comm, me, size)?;
        Ok(format!("{summary}; {n} transfers per node with two devices per rank verified"))
    });
    match result {
        Ok(summary) => {
            drop(comm);
            finished.store(true, Ordering::SeqCst);
            if me == 0 {
                println!("transfer_mpi: ok: {summary}");
            }
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("transfer_mpi: FAILED on rank {me}: {message}");
            comm.abort(1)
        }
    }
}
