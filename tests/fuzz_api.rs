//! Randomized misuse of the public API, written as a program would: short seeded programs that mix valid and
//! hostile calls (zero and huge extents of every dimensionality, `buffer_from` with wrong lengths, every built-in
//! range mapper with boxes in and out of range, custom mappers returning boxes outside the buffer, empty or
//! lying about their reach, kernels over index spaces of the wrong dimensionality, offsets, granularities, wrong
//! scalars, reductions into buffers of the wrong type or size, host tasks of every kind, fences of boxes outside
//! the buffer, buffers, host objects, collective groups and fences dropped at odd times, another queue's buffers,
//! submitting after errors).
//!
//! Every call must come back `Ok` or as an error whose message names its task; the only panics allowed are the
//! documented ones (`buffer_from` with a wrong length, a buffer whose size overflows). A panic, a hang (a watchdog
//! ends the process after [`PROGRAM_TIMEOUT`] per program), or a fenced value that differs from the serial model
//! the generator keeps of the buffers it fills (real queues only) is a finding: the test fails naming the seed
//! and the call.
//!
//! # Running more seeds
//! `cargo test --test fuzz_api` runs seeds `0..2000` on a dry run (about a second). `FUZZ_API_SEEDS=N` runs `N`
//! seeds, `FUZZ_API_FIRST=S` starts at seed `S` (so one failing seed reruns alone with `FUZZ_API_FIRST=S
//! FUZZ_API_SEEDS=1`), and `FUZZ_API_VERBOSE=1` prints each call and its outcome.
//!
//! On a real queue (one per process: MPI starts once), the same programs, restricted to what can run (kernels
//! with code, host tasks with closures), run with their fences checked against the model:
//! ```text
//! . .ci/env.sh
//! cargo test --test fuzz_api -- --ignored real_queue                 # one rank (lavapipe)
//! mpirun -n 2 target/debug/deps/fuzz_api-<hash> --ignored real_queue # two ranks
//! ```
//! A real queue may also end the run on purpose, as documented, where a program is wrong in a way only the runtime
//! sees: a kernel writing through a mapper that declares no cells for a chunk stops every rank naming the task,
//! buffer and chunk. Where the kernel stores at its own item on every item (`squares`: behind no guard but the
//! chunk's), `submit` now refuses an index space reaching outside the buffer instead (`KernelStoresOutside`): the
//! seeds that used to stop a run this way, 12354 (`squares` over 4 items at offset 5 writing a 4-cell buffer through
//! `neighborhood([1])`), 6974, 12685, 21978, 26086 and 29671 (`all()` of a zero-sized buffer, a neighbourhood clipped
//! to nothing), come back as that error, and seeds `0..32000` run to the end on 1, 2 and 3 ranks. A kernel guarding
//! its stores otherwise (`celer_contains` on the accessor's box) is legal and not refused: see the GUIDE's "Bad input".
//! Reads alike (`KernelReadsOutside`): seed 55142 (`reduce_i32` over 7 items at offset 33 reading a zero-sized
//! buffer through an empty fixed box) stopped 3 ranks at the kernel; it is refused at `submit` now, and seeds
//! `50000..70000` run to the end on 3 ranks.
//! The generator avoids the other such cases it knows (custom writers overlapping between ranks, wrong reaches).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use celer::{access, kernels, task, Buffer, GridBox, Kernel, Queue, ReductionOp, Region, TaskBuilder};

/// How long one program may take before the watchdog calls it a hang.
const PROGRAM_TIMEOUT: Duration = Duration::from_secs(30);

/// Problems found inside host closures (which must not panic: on a real queue that ends every rank).
static CLOSURE_FINDINGS: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// xorshift64*: small, seeded, deterministic on every rank.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03 | 1)
    }
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
    /// A small extent, sometimes zero.
    fn extent(&mut self) -> usize {
        [0, 1, 2, 3, 4, 5, 7, 8, 16, 17, 33, 64][self.below(12)]
    }
    /// An extent or offset that is sometimes hostile (huge).
    fn wild(&mut self, real: bool) -> usize {
        if self.chance(85) || real && self.chance(50) {
            self.extent()
        } else {
            [1 << 32, (1 << 32) + 1, 1 << 40, usize::MAX - 1, usize::MAX][self.below(5)]
        }
    }
    fn arr<const D: usize>(&mut self, real: bool) -> [usize; D] {
        std::array::from_fn(|_| self.wild(real))
    }
    /// A box (offset, range) near the extent `ext`: inside, straddling, outside, empty, or huge.
    fn boxed<const D: usize>(&mut self, ext: [usize; D], real: bool) -> ([usize; D], [usize; D]) {
        let mut off = [0; D];
        let mut len = [0; D];
        for d in 0..D {
            match self.below(6) {
                0 => (off[d], len[d]) = (0, ext[d]),
                1 => {
                    off[d] = self.below(ext[d].saturating_add(1).min(64));
                    len[d] = self.below(ext[d].saturating_sub(off[d]).saturating_add(1).min(64));
                }
                2 => (off[d], len[d]) = (ext[d], 0),
                3 => (off[d], len[d]) = (ext[d].saturating_add(self.below(3)), self.below(3)),
                4 => (off[d], len[d]) = (self.below(4), ext[d].saturating_add(1)),
                _ => (off[d], len[d]) = (self.wild(real), self.wild(real)),
            }
        }
        (off, len)
    }
}

/// A buffer of any element type and dimensionality the generator makes.
enum Buf<'q> {
    U0(Buffer<'q, u32, 0>),
    F1(Buffer<'q, f32, 1>),
    U1(Buffer<'q, u32, 1>),
    I1(Buffer<'q, i32, 1>),
    F2(Buffer<'q, f32, 2>),
    U2(Buffer<'q, u32, 2>),
    I3(Buffer<'q, i32, 3>),
    F3(Buffer<'q, f32, 3>),
}

/// `$body` with `$x` bound to the typed buffer, whatever its variant.
macro_rules! with_buf {
    ($b:expr, $x:ident => $body:expr) => {
        match $b {
            Buf::U0($x) => $body,
            Buf::F1($x) => $body,
            Buf::U1($x) => $body,
            Buf::I1($x) => $body,
            Buf::F2($x) => $body,
            Buf::U2($x) => $body,
            Buf::I3($x) => $body,
            Buf::F3($x) => $body,
        }
    };
}

/// What a host closure needs to know of an accessor: element type, buffer dimensionality, whether it writes.
#[derive(Clone, Copy, Debug)]
struct AccInfo {
    elem: char,
    dims: usize,
    writes: bool,
}

impl Buf<'_> {
    fn elem(&self) -> char {
        match self {
            Buf::F1(_) | Buf::F2(_) | Buf::F3(_) => 'f',
            Buf::U0(_) | Buf::U1(_) | Buf::U2(_) => 'u',
            Buf::I1(_) | Buf::I3(_) => 'i',
        }
    }
    fn dims(&self) -> usize {
        match self {
            Buf::U0(_) => 0,
            Buf::F1(_) | Buf::U1(_) | Buf::I1(_) => 1,
            Buf::F2(_) | Buf::U2(_) => 2,
            Buf::I3(_) | Buf::F3(_) => 3,
        }
    }
    fn id(&self) -> String {
        with_buf!(self, b => b.id().to_string())
    }
}

/// Adds an accessor of `mode` (0 read, 1 write, 2 read_write, 3 discard_write) with mapper `$m`.
macro_rules! acc {
    ($tb:expr, $mode:expr, $x:expr, $m:expr) => {
        match $mode {
            0 => $tb.read($x, $m),
            1 => $tb.write($x, $m),
            2 => $tb.read_write($x, $m),
            _ => $tb.discard_write($x, $m),
        }
    };
}

/// A custom mapper onto a `$bd`-dimensional buffer: the whole buffer, a box out of range, nothing, several boxes,
/// one cell past the end, with or without a reach that may lie.
macro_rules! custom_mapper {
    ($kd:literal, $bd:literal, $r:expr, $real:expr, $desc:expr) => {{
        let (o, l): ([usize; $bd], [usize; $bd]) = ($r.arr($real), $r.arr($real));
        // On a real queue the ranks check custom mappers (out of range, a wrong reach) only on their own chunks,
        // and such an error ends the run (documented): keep to the ones submit can judge.
        let kind = if $real { [0, 2, 5][$r.below(3)] } else { $r.below(6) };
        $desc.push_str(&format!("custom#{kind}({o:?},{l:?})"));
        let m = access::custom::<$kd, $bd, _>("fuzz_custom", move |_chunk, b| match kind {
            0 => Region::from(*b),
            1 => Region::from(GridBox::from_subrange(o, l)),
            2 => Region::new(),
            3 => Region::from_boxes([*b, GridBox::from_subrange(o, l)]),
            4 => Region::from(GridBox::new([0; $bd], std::array::from_fn(|d| b.max()[d].saturating_add(1)))),
            _ => Region::from(GridBox::from_subrange(o, l)).intersection(&Region::from(*b)),
        });
        match $r.below(3) {
            0 => m,
            1 | 2 if $real => m,
            1 => {
                $desc.push_str(".reach(all)");
                m.reach(|_, range| *range)
            }
            _ => {
                $desc.push_str(".reach(empty)");
                m.reach(|_, _| GridBox::empty())
            }
        }
    }};
}

/// The mappers every pair of dimensionalities has: all, fixed, custom.
macro_rules! any_dims {
    ($tb:expr, $mode:expr, $x:expr, $r:expr, $real:expr, $desc:expr, $kd:literal, $bd:literal) => {{
        match $r.below(3) {
            0 => {
                $desc.push_str("all");
                acc!($tb, $mode, $x, access::all())
            }
            1 => {
                let (o, l) = $r.boxed::<$bd>($x.range(), $real);
                $desc.push_str(&format!("fixed({o:?},{l:?})"));
                acc!($tb, $mode, $x, access::fixed(o, l))
            }
            // A custom writer on a real queue: its overlaps between ranks end the run (documented).
            _ if $real && $mode > 0 => {
                $desc.push_str("all");
                acc!($tb, $mode, $x, access::all())
            }
            _ => {
                let m = custom_mapper!($kd, $bd, $r, $real, $desc);
                acc!($tb, $mode, $x, m)
            }
        }
    }};
}

/// The mappers of equal dimensionalities: one_to_one, slice, neighbourhoods (and the rest).
macro_rules! same_dims {
    ($tb:expr, $mode:expr, $x:expr, $r:expr, $real:expr, $desc:expr, $d:literal) => {{
        match $r.below(5) {
            0 => {
                $desc.push_str("one_to_one");
                acc!($tb, $mode, $x, access::one_to_one())
            }
            1 => {
                let dim = $r.below(4);
                $desc.push_str(&format!("slice({dim})"));
                acc!($tb, $mode, $x, access::slice(dim))
            }
            2 => {
                let n: [usize; $d] = std::array::from_fn(|_| if $r.chance(80) { $r.below(4) } else { $r.wild($real) });
                if $r.chance(50) {
                    $desc.push_str(&format!("neighborhood({n:?})"));
                    acc!($tb, $mode, $x, access::neighborhood(n))
                } else {
                    $desc.push_str(&format!("neighborhood_along_axes({n:?})"));
                    acc!($tb, $mode, $x, access::neighborhood_along_axes(n))
                }
            }
            _ => any_dims!($tb, $mode, $x, $r, $real, $desc, $d, $d),
        }
    }};
}

/// An even split (index spaces of 1 to 3 dimensions only), or any_dims.
macro_rules! split_or_any {
    ($tb:expr, $mode:expr, $x:expr, $r:expr, $real:expr, $desc:expr, $kd:literal, $bd:literal) => {{
        if $r.chance(20) {
            let g = if $r.chance(80) { $r.below(4) } else { $r.wild($real) };
            $desc.push_str(&format!("even_split({g})"));
            acc!($tb, $mode, $x, access::even_split().granularity(g))
        } else {
            any_dims!($tb, $mode, $x, $r, $real, $desc, $kd, $bd)
        }
    }};
}

/// Adds one random accessor of `b` to a task over a 0-dimensional index space (host_once).
fn access_0(tb: TaskBuilder<0>, b: &Buf<'_>, mode: usize, r: &mut Rng, real: bool, d: &mut String) -> TaskBuilder<0> {
    match b {
        Buf::U0(x) => same_dims!(tb, mode, x, r, real, d, 0),
        Buf::F1(x) => any_dims!(tb, mode, x, r, real, d, 0, 1),
        Buf::U1(x) => any_dims!(tb, mode, x, r, real, d, 0, 1),
        Buf::I1(x) => any_dims!(tb, mode, x, r, real, d, 0, 1),
        Buf::F2(x) => any_dims!(tb, mode, x, r, real, d, 0, 2),
        Buf::U2(x) => any_dims!(tb, mode, x, r, real, d, 0, 2),
        Buf::I3(x) => any_dims!(tb, mode, x, r, real, d, 0, 3),
        Buf::F3(x) => any_dims!(tb, mode, x, r, real, d, 0, 3),
    }
}

fn access_1(tb: TaskBuilder<1>, b: &Buf<'_>, mode: usize, r: &mut Rng, real: bool, d: &mut String) -> TaskBuilder<1> {
    match b {
        Buf::U0(x) => any_dims!(tb, mode, x, r, real, d, 1, 0),
        Buf::F1(x) => same_dims!(tb, mode, x, r, real, d, 1),
        Buf::U1(x) => same_dims!(tb, mode, x, r, real, d, 1),
        Buf::I1(x) => same_dims!(tb, mode, x, r, real, d, 1),
        Buf::F2(x) => split_or_any!(tb, mode, x, r, real, d, 1, 2),
        Buf::U2(x) => split_or_any!(tb, mode, x, r, real, d, 1, 2),
        Buf::I3(x) => split_or_any!(tb, mode, x, r, real, d, 1, 3),
        Buf::F3(x) => split_or_any!(tb, mode, x, r, real, d, 1, 3),
    }
}

fn access_2(tb: TaskBuilder<2>, b: &Buf<'_>, mode: usize, r: &mut Rng, real: bool, d: &mut String) -> TaskBuilder<2> {
    match b {
        Buf::U0(x) => any_dims!(tb, mode, x, r, real, d, 2, 0),
        Buf::F1(x) => split_or_any!(tb, mode, x, r, real, d, 2, 1),
        Buf::U1(x) => split_or_any!(tb, mode, x, r, real, d, 2, 1),
        Buf::I1(x) => split_or_any!(tb, mode, x, r, real, d, 2, 1),
        Buf::F2(x) if r.chance(15) => {
            d.push_str("transposed");
            acc!(tb, mode, x, access::transposed())
        }
        Buf::F2(x) => same_dims!(tb, mode, x, r, real, d, 2),
        Buf::U2(x) => same_dims!(tb, mode, x, r, real, d, 2),
        Buf::I3(x) => split_or_any!(tb, mode, x, r, real, d, 2, 3),
        Buf::F3(x) => split_or_any!(tb, mode, x, r, real, d, 2, 3),
    }
}

fn access_3(tb: TaskBuilder<3>, b: &Buf<'_>, mode: usize, r: &mut Rng, real: bool, d: &mut String) -> TaskBuilder<3> {
    match b {
        Buf::U0(x) => any_dims!(tb, mode, x, r, real, d, 3, 0),
        Buf::F1(x) => split_or_any!(tb, mode, x, r, real, d, 3, 1),
        Buf::U1(x) => split_or_any!(tb, mode, x, r, real, d, 3, 1),
        Buf::I1(x) => split_or_any!(tb, mode, x, r, real, d, 3, 1),
        Buf::F2(x) => split_or_any!(tb, mode, x, r, real, d, 3, 2),
        Buf::U2(x) => split_or_any!(tb, mode, x, r, real, d, 3, 2),
        Buf::I3(x) => same_dims!(tb, mode, x, r, real, d, 3),
        Buf::F3(x) => same_dims!(tb, mode, x, r, real, d, 3),
    }
}

/// Reductions into a buffer of any type and size (only one-element buffers of a reducible type are right).
fn reduce<const KD: usize>(tb: TaskBuilder<KD>, b: &Buf<'_>, r: &mut Rng, d: &mut String) -> TaskBuilder<KD> {
    let op = [ReductionOp::Sum, ReductionOp::Min, ReductionOp::Max, ReductionOp::Custom][r.below(4)];
    let kind = r.below(4);
    d.push_str(&format!(" reduce#{kind}({op:?}, {})", b.id()));
    macro_rules! red {
        ($x:expr, $zero:expr) => {
            match kind {
                0 => tb.reduce($x, op),
                1 => tb.reduce_including($x, op),
                2 => tb.reduce_with($x, $zero, |a, b| a + b),
                _ => tb.reduce_with_including($x, $zero + $zero + $zero, |a, b| if a > b { a } else { b }),
            }
        };
    }
    match b {
        Buf::U0(x) => red!(x, 0u32),
        Buf::F1(x) => red!(x, 0.0f32),
        Buf::U1(x) => red!(x, 0u32),
        Buf::I1(x) => red!(x, 0i32),
        Buf::F2(x) => red!(x, 0.0f32),
        Buf::U2(x) => red!(x, 0u32),
        Buf::I3(x) => red!(x, 0i32),
        Buf::F3(x) => red!(x, 0.0f32),
    }
}

/// Random scalars and binding names (kernels take some; host tasks refuse them).
fn scalars<const KD: usize>(mut tb: TaskBuilder<KD>, r: &mut Rng, d: &mut String) -> TaskBuilder<KD> {
    for _ in 0..r.below(3) {
        tb = match r.below(6) {
            0 => {
                d.push_str(" scalar_f32");
                tb.scalar_f32(0.5)
            }
            1 => {
                d.push_str(" scalar_i32");
                tb.scalar_i32(-3)
            }
            2 => {
                let n = r.below(5);
                d.push_str(&format!(" scalars[{n}]"));
                tb.scalars(&[7; 4][..n.min(4)])
            }
            3 => {
                d.push_str(" scalar(alpha)");
                tb.scalar("alpha", 0.25f32)
            }
            4 => {
                d.push_str(" scalar(nope,u32)");
                tb.scalar("nope", 1u32)
            }
            _ => {
                d.push_str(" bind(src)");
                tb.bind("src")
            }
        };
    }
    tb
}

/// A host closure that checks each accessor's slice against its bounds, writes the cells of writing accessors
/// and uses its host objects; it records problems instead of panicking.
fn closure<const KD: usize>(
    tb: TaskBuilder<KD>,
    infos: Vec<AccInfo>,
    objects: usize,
    label: String,
) -> TaskBuilder<KD> {
    tb.run(move |ctx| {
        for (i, a) in infos.iter().enumerate() {
            let area = match a.dims {
                0 => ctx.bounds::<0>(i).area(),
                1 => ctx.bounds::<1>(i).area(),
                2 => ctx.bounds::<2>(i).area(),
                _ => ctx.bounds::<3>(i).area(),
            };
            let len = match (a.elem, a.writes) {
                ('f', false) => ctx.data::<f32>(i).len(),
                ('u', false) => ctx.data::<u32>(i).len(),
                ('i', false) => ctx.data::<i32>(i).len(),
                ('f', true) => ctx.data_mut::<f32>(i).iter_mut().map(|v| *v = 1.0).count(),
                ('u', true) => ctx.data_mut::<u32>(i).iter_mut().map(|v| *v = 1).count(),
                (_, true) => ctx.data_mut::<i32>(i).iter_mut().map(|v| *v = 1).count(),
                _ => ctx.data::<i32>(i).len(),
            };
            if len != area {
                let chunk = ctx.chunk();
                CLOSURE_FINDINGS.lock().unwrap().push(format!(
                    "{label}: accessor {i} ({a:?}) holds {len} cells but its bounds have {area} (chunk {chunk:?})"
                ));
            }
        }
        for o in 0..objects {
            ctx.with_object::<u32, ()>(o, |v| *v += 1);
        }
    })
}

/// Which calls of a program are allowed to panic (documented panics), by the start of their message.
const DOCUMENTED_PANICS: &[&str] = &["buffer_from: ", "a buffer of extent "];

/// A fence not waited for yet.
type PendingFence = (String, Box<dyn FnOnce() -> Result<Option<String>, celer::Error>>);

/// One program's state and log.
struct Program<'q> {
    q: &'q Queue,
    other: &'q Queue,
    r: Rng,
    real: bool,
    bufs: Vec<Buf<'q>>,
    /// Per buffer (by position in `bufs`), the values the generator knows it holds (1D u32 buffers it filled).
    model: Vec<Option<Vec<u32>>>,
    objects: Vec<celer::HostObject<'q, u32>>,
    groups: Vec<celer::CollectiveGroup<'q>>,
    fences: Vec<PendingFence>,
    foreign: Option<Buf<'q>>,
    log: Vec<String>,
    errors: Vec<String>,
    findings: Vec<String>,
    seed: u64,
}

impl<'q> Program<'q> {
    fn note(&mut self, what: String, outcome: Result<String, String>) {
        let verbose = std::env::var_os("FUZZ_API_VERBOSE").is_some();
        match &outcome {
            Ok(ok) => {
                if verbose {
                    println!("seed {}: {what} -> {ok}", self.seed);
                }
            }
            Err(e) => {
                if verbose {
                    println!("seed {}: {what} -> ERR {e}", self.seed);
                }
                // An error must name its task.
                if !(e.contains("task T") || e.contains("In task")) {
                    self.findings.push(format!("seed {}: `{what}`: error names no task: {e}", self.seed));
                }
                self.errors.push(e.clone());
            }
        }
        self.log.push(what);
    }

    /// Submits `tb`, noting the outcome; `on_ok` runs when it is accepted.
    fn submit<const KD: usize>(&mut self, what: String, tb: TaskBuilder<KD>) -> bool {
        let res = self.q.submit(tb);
        let ok = res.is_ok();
        self.note(what, res.map(|t| t.to_string()).map_err(|e| e.to_string()));
        ok
    }

    fn new_buffer(&mut self) {
        let real = self.real;
        let kind = self.r.below(8);
        let from = self.r.chance(40);
        let mut wrong = from && self.r.chance(20);
        let kind = if kind == 7 && self.r.chance(50) { 8 } else { kind };
        let r = &mut self.r;
        macro_rules! make {
            ($v:ident, $t:ty, $d:literal) => {{
                let mut range: [usize; $d] = r.arr(real);
                if real && $d > 0 && range.iter().try_fold(1usize, |a, &e| a.checked_mul(e)).is_none_or(|c| c > 1 << 20)
                {
                    // A real device cannot hold it (the runtime stops naming the allocation): keep its huge extents
                    // with a zero one, which makes it legal and empty.
                    range[r.below($d.max(1))] = 0;
                }
                let cells = range.iter().try_fold(1usize, |a, &e| a.checked_mul(e));
                // Data only for buffers small enough to hold (a huge one panics as documented either way).
                let n = cells.filter(|&c| c <= 1 << 20);
                if from && n.is_none() {
                    wrong = false;
                }
                let what = format!(
                    "buffer{}::<{}, {}>({range:?})",
                    match (from && n.is_some(), wrong) {
                        (true, true) => "_from(wrong len)",
                        (true, false) => "_from",
                        _ => "",
                    },
                    stringify!($t),
                    $d
                );
                let q = self.q;
                let res = match (from, n) {
                    (true, Some(n)) => {
                        let len = if wrong { n + 1 + (n % 3) } else { n };
                        let data: Vec<$t> = (0..len).map(|i| i as $t).collect();
                        catch_unwind(AssertUnwindSafe(|| Buf::$v(q.buffer_from(&data, range).named("fuzz"))))
                    }
                    _ => catch_unwind(AssertUnwindSafe(|| Buf::$v(q.buffer::<$t, $d>(range)))),
                };
                (what, res, from && !wrong && n.is_some())
            }};
        }
        let (what, res, filled) = match kind {
            0 => make!(U0, u32, 0),
            1 => make!(F1, f32, 1),
            2 | 3 => make!(U1, u32, 1),
            4 => make!(I1, i32, 1),
            5 => make!(F2, f32, 2),
            6 => make!(U2, u32, 2),
            7 => make!(I3, i32, 3),
            _ => make!(F3, f32, 3),
        };
        match res {
            Ok(b) => {
                let model = match (&b, filled) {
                    (Buf::U1(x), true) => Some((0..x.range()[0]).map(|i| i as u32).collect()),
                    (Buf::U1(_), false) => None,
                    _ => None,
                };
                let id = b.id();
                self.bufs.push(b);
                self.model.push(model);
                self.note(what, Ok(id));
            }
            Err(p) => {
                let msg = panic_text(&p);
                if !DOCUMENTED_PANICS.iter().any(|d| msg.contains(d)) {
                    self.findings.push(format!("seed {}: `{what}` panicked: {msg}", self.seed));
                }
                self.log.push(format!("{what} -> documented panic: {msg}"));
            }
        }
    }

    fn pick(&mut self) -> Option<usize> {
        (!self.bufs.is_empty()).then(|| self.r.below(self.bufs.len()))
    }

    /// Forgets what the model knows of the buffers a task may write.
    fn written(&mut self, i: usize) {
        self.model[i] = None;
    }

    fn accessors<const KD: usize>(
        &mut self,
        mut tb: TaskBuilder<KD>,
        d: &mut String,
        infos: &mut Vec<AccInfo>,
        f: fn(TaskBuilder<KD>, &Buf<'_>, usize, &mut Rng, bool, &mut String) -> TaskBuilder<KD>,
    ) -> TaskBuilder<KD> {
        for _ in 0..self.r.below(4) {
            let foreign = self.foreign.is_some() && self.r.chance(5);
            let Some(i) = self.pick() else { break };
            let mut mode = self.r.below(4);
            if self.real && self.r.chance(50) {
                mode = 0;
            }
            let b = if foreign { self.foreign.as_ref().unwrap() } else { &self.bufs[i] };
            d.push_str(&format!(" {}{}:", ["read", "write", "read_write", "discard_write"][mode], b.id()));
            infos.push(AccInfo { elem: b.elem(), dims: b.dims(), writes: mode > 0 });
            tb = f(tb, b, mode, &mut self.r, self.real, d);
            if mode > 0 && !foreign {
                self.written(i);
            }
        }
        tb
    }

    fn host_task(&mut self) {
        let mut d = String::new();
        let mut infos = Vec::new();
        let with_closure = self.real || self.r.chance(60);
        let objects = if self.objects.is_empty() { 0 } else { self.r.below(3) };
        macro_rules! finish {
            ($tb:expr) => {{
                let mut tb = $tb;
                let mut n = 0;
                for _ in 0..objects {
                    let o = self.r.below(self.objects.len());
                    d.push_str(&format!(" side_effect(H{o})"));
                    tb = tb.side_effect(&self.objects[o]);
                    n += 1;
                }
                if self.r.chance(5) {
                    tb = scalars(tb, &mut self.r, &mut d);
                }
                if self.r.chance(5) && !self.bufs.is_empty() {
                    let i = self.r.below(self.bufs.len());
                    tb = reduce(tb, &self.bufs[i], &mut self.r, &mut d);
                }
                if with_closure {
                    tb = closure(tb, infos.clone(), n, format!("seed {} {d}", self.seed));
                }
                tb
            }};
        }
        match self.r.below(5) {
            0 => {
                d.push_str("host_once");
                let tb = self.accessors(task::host_once(), &mut d, &mut infos, access_0);
                let tb = finish!(tb);
                self.submit(d, tb);
            }
            1 => {
                let range: [usize; 1] = self.r.arr(self.real);
                d.push_str(&format!("host_for({range:?})"));
                let mut tb = self.accessors(task::host_for(range), &mut d, &mut infos, access_1);
                if self.r.chance(20) {
                    let o: [usize; 1] = self.r.arr(self.real);
                    d.push_str(&format!(" offset({o:?})"));
                    tb = tb.offset(o);
                }
                let tb = finish!(tb);
                self.submit(d, tb);
            }
            2 => {
                let range: [usize; 2] = self.r.arr(self.real);
                d.push_str(&format!("host_for({range:?})"));
                let tb = self.accessors(task::host_for(range), &mut d, &mut infos, access_2);
                let tb = finish!(tb);
                self.submit(d, tb);
            }
            3 => {
                let range: [usize; 3] = self.r.arr(self.real);
                d.push_str(&format!("host_for({range:?})"));
                let tb = self.accessors(task::host_for(range), &mut d, &mut infos, access_3);
                let tb = finish!(tb);
                self.submit(d, tb);
            }
            _ => {
                let tb = if !self.groups.is_empty() && self.r.chance(50) {
                    let g = self.r.below(self.groups.len());
                    d.push_str(&format!("host_collective_in(group {g})"));
                    task::host_collective_in(&self.groups[g])
                } else {
                    d.push_str("host_collective");
                    task::host_collective()
                };
                let mut tb = self.accessors(tb, &mut d, &mut infos, access_1);
                if self.r.chance(10) {
                    d.push_str(" offset([1])");
                    tb = tb.offset([1]);
                }
                let tb = finish!(tb);
                self.submit(d, tb);
            }
        }
    }

    /// A kernel task: a template that runs (with the model updated), or random accessors on a named kernel (dry
    /// runs) or on a kernel whose bindings they likely do not match.
    fn kernel_task(&mut self) {
        let mut d = String::new();
        if self.r.chance(50) {
            return self.template();
        }
        let kernel = match self.r.below(if self.real { 3 } else { 5 }) {
            0 => Kernel::wgsl(&kernels::SQUARES, "main").unwrap(),
            1 => Kernel::wgsl(&kernels::HEAT_1D, "main").unwrap(),
            2 => Kernel::wgsl(&kernels::REDUCE_I32, "reduce_sum").unwrap(),
            _ => Kernel::named("fuzz_kernel"),
        };
        d.push_str(&format!("parallel_for({})", kernel.name()));
        let mut infos = Vec::new();
        macro_rules! extras {
            ($tb:expr, $kd:literal) => {{
                let mut tb = $tb;
                if self.r.chance(20) {
                    let o: [usize; $kd] = self.r.arr(self.real);
                    d.push_str(&format!(" offset({o:?})"));
                    tb = tb.offset(o);
                }
                if self.r.chance(10) {
                    let g: [usize; $kd] = std::array::from_fn(|_| self.r.below(3));
                    d.push_str(&format!(" granularity({g:?})"));
                    tb = tb.granularity(g);
                }
                if self.r.chance(10) {
                    d.push_str(" split_2d");
                    tb = tb.split_2d();
                }
                tb = scalars(tb, &mut self.r, &mut d);
                if self.r.chance(25) && !self.bufs.is_empty() {
                    let i = self.r.below(self.bufs.len());
                    tb = reduce(tb, &self.bufs[i], &mut self.r, &mut d);
                    self.written(i);
                }
                if !self.objects.is_empty() && self.r.chance(5) {
                    d.push_str(" side_effect(H0)");
                    tb = tb.side_effect(&self.objects[0]);
                }
                if self.r.chance(3) {
                    d.push_str(" run(closure)");
                    tb = tb.run(|_| ());
                }
                tb
            }};
        }
        match self.r.below(3) {
            0 => {
                let range: [usize; 1] = self.r.arr(self.real);
                d.push_str(&format!("[{range:?}]"));
                let tb = self.accessors(task::parallel_for(&kernel, range), &mut d, &mut infos, access_1);
                let tb = extras!(tb, 1);
                self.submit(d, tb);
            }
            1 => {
                let range: [usize; 2] = self.r.arr(self.real);
                d.push_str(&format!("[{range:?}]"));
                let tb = self.accessors(task::parallel_for(&kernel, range), &mut d, &mut infos, access_2);
                let tb = extras!(tb, 2);
                self.submit(d, tb);
            }
            _ => {
                let range: [usize; 3] = self.r.arr(self.real);
                d.push_str(&format!("[{range:?}]"));
                let tb = self.accessors(task::parallel_for(&kernel, range), &mut d, &mut infos, access_3);
                let tb = extras!(tb, 3);
                self.submit(d, tb);
            }
        }
    }

    /// Tasks whose effect the model knows: squares into a 1D u32 buffer, a host task filling one, gpu_add.
    fn template(&mut self) {
        let candidates: Vec<usize> = (0..self.bufs.len()).filter(|&i| matches!(self.bufs[i], Buf::U1(_))).collect();
        if candidates.is_empty() {
            return;
        }
        let i = candidates[self.r.below(candidates.len())];
        let Buf::U1(b) = &self.bufs[i] else { unreachable!() };
        let n = b.range()[0];
        let id = b.id();
        match self.r.below(3) {
            0 => {
                let k = Kernel::wgsl(&kernels::SQUARES, "main").unwrap();
                let tb = task::parallel_for(&k, [n]).discard_write(b, access::one_to_one()).name("t_squares");
                if self.submit(format!("squares[{n}] -> {id}"), tb) && n <= 1 << 20 {
                    self.model[i] = Some((0..n).map(|i| (i as u32).wrapping_mul(i as u32)).collect());
                }
            }
            1 => {
                let add = self.r.below(100) as u32;
                let k = Kernel::wgsl(&kernels::GPU_ADD, "main").unwrap();
                let tb =
                    task::parallel_for(&k, [n]).read_write(b, access::one_to_one()).scalar_value(add).name("t_add");
                if !self.submit(format!("gpu_add[{n}] +{add} -> {id}"), tb) {
                    self.model[i] = None;
                } else {
                    if let Some(m) = &mut self.model[i] {
                        m.iter_mut().for_each(|v| *v = v.wrapping_add(add));
                    }
                }
            }
            _ => {
                let base = self.r.below(1000) as u32;
                let tb = task::host_for([n]).discard_write(b, access::one_to_one()).name("t_fill").run(move |ctx| {
                    let start = ctx.chunk().min()[0];
                    for (k, v) in ctx.data_mut::<u32>(0).iter_mut().enumerate() {
                        *v = base + (start + k) as u32;
                    }
                });
                if self.submit(format!("host fill[{n}] {base}+i -> {id}"), tb) && n <= 1 << 20 {
                    self.model[i] = Some((0..n).map(|i| base + i as u32).collect());
                }
            }
        }
    }

    fn fence(&mut self) {
        let Some(i) = self.pick() else { return };
        let real = self.real;
        let whole = self.r.chance(40);
        let wait_now = self.r.chance(60);
        let model = self.model[i].clone();
        macro_rules! fence_of {
            ($x:expr, $d:literal) => {{
                let x = $x;
                let (o, l): ([usize; $d], [usize; $d]) =
                    if whole { ([0; $d], x.range()) } else { self.r.boxed(x.range(), real) };
                let what = format!("fence{}({}, {o:?}, {l:?})", if whole { "" } else { "_subrange" }, x.id());
                let res = if whole { self.q.fence(x) } else { self.q.fence_subrange(x, o, l) };
                match res {
                    Ok(f) => {
                        let (o0, l0) = (o.first().copied().unwrap_or(0), l.first().copied().unwrap_or(0));
                        let expect: Option<Vec<u32>> = match (&model, $d) {
                            (Some(m), 1) => Some(m[o0..o0 + l0].to_vec()),
                            _ => None,
                        };
                        let cells: usize =
                            if l.contains(&0) { 0 } else { l.iter().fold(1usize, |a, &e| a.saturating_mul(e)) };
                        let label = what.clone();
                        let check = move || {
                            let v = f.wait()?;
                            if v.len() != cells {
                                return Ok(Some(format!("{label}: {} values, expected {cells}", v.len())));
                            }
                            if let Some(e) = expect {
                                let got: Vec<u32> = v.iter().map(|x| bytemuck::cast::<_, u32>(*x)).collect();
                                if got != e {
                                    return Ok(Some(format!("{label}: got {got:?}, the model says {e:?}")));
                                }
                            }
                            Ok(None)
                        };
                        self.note(what.clone(), Ok("fence".into()));
                        self.fences.push((what, Box::new(check)));
                    }
                    Err(e) => self.note(what, Err(e.to_string())),
                }
            }};
        }
        match &self.bufs[i] {
            Buf::U0(x) => fence_of!(x, 0),
            Buf::F1(x) => fence_of!(x, 1),
            Buf::U1(x) => fence_of!(x, 1),
            Buf::I1(x) => fence_of!(x, 1),
            Buf::F2(x) => fence_of!(x, 2),
            Buf::U2(x) => fence_of!(x, 2),
            Buf::I3(x) => fence_of!(x, 3),
            Buf::F3(x) => fence_of!(x, 3),
        }
        if wait_now {
            self.wait_fences(false);
        }
    }

    /// Waits for pending fences (or drops them, unwaited), checking their values.
    fn wait_fences(&mut self, drop_some: bool) {
        for (what, f) in std::mem::take(&mut self.fences) {
            if drop_some && self.r.chance(30) {
                drop(f);
                self.log.push(format!("dropped {what} unwaited"));
                continue;
            }
            match f() {
                Ok(None) => self.log.push(format!("waited {what}")),
                Ok(Some(wrong)) => self.findings.push(format!("seed {}: wrong data: {wrong}", self.seed)),
                Err(celer::Error::DryRun(_)) if !self.real => {}
                Err(e) => self.findings.push(format!("seed {}: {what}: wait failed: {e}", self.seed)),
            }
        }
    }

    fn step(&mut self) {
        match self.r.below(20) {
            0..=3 => self.new_buffer(),
            4..=7 => self.host_task(),
            8..=11 => self.kernel_task(),
            12 | 13 => self.fence(),
            14 => {
                if let Some(i) = self.pick() {
                    let b = self.bufs.remove(i);
                    self.model.remove(i);
                    self.log.push(format!("drop {}", b.id()));
                }
            }
            15 => {
                if self.r.chance(50) || self.objects.is_empty() {
                    self.objects.push(self.q.host_object(0u32));
                    self.log.push("host_object".into());
                } else {
                    let i = self.r.below(self.objects.len());
                    self.objects.remove(i);
                    self.log.push(format!("drop host object {i}"));
                }
            }
            16 => {
                if self.r.chance(50) || self.groups.is_empty() {
                    self.groups.push(self.q.collective_group());
                    self.log.push("collective_group".into());
                } else {
                    let i = self.r.below(self.groups.len());
                    self.groups.remove(i);
                    self.log.push(format!("drop group {i}"));
                }
            }
            17 => {
                if self.r.chance(50) {
                    self.q.wait();
                    self.log.push("wait".into());
                } else {
                    self.q.barrier();
                    self.log.push("barrier".into());
                }
                self.wait_fences(true);
            }
            18 if !self.real => {
                // A buffer of another queue, in this queue's tasks and fences.
                let b = self.other.buffer::<u32, 1>([8]);
                if self.r.chance(50) {
                    let what = format!("fence of foreign {}", b.id());
                    let res = self.q.fence(&b).map(|f| f.task().to_string()).map_err(|e| e.to_string());
                    self.note(what, res);
                }
                self.foreign = Some(Buf::U1(b));
            }
            18 => {}
            _ => {
                if let Some(o) = self.objects.first() {
                    let what = "fence_object".to_string();
                    match self.q.fence_object(o) {
                        Ok(v) => self.note(what, Ok(v.to_string())),
                        Err(celer::Error::DryRun(_)) if !self.real => {}
                        Err(e) => self.note(what, Err(e.to_string())),
                    }
                }
            }
        }
    }
}

/// Where the last panic of this process happened (the hook below notes it; its message goes into the finding).
static PANIC_AT: Mutex<String> = Mutex::new(String::new());

/// A panic's message and where it happened.
fn panic_text(p: &Box<dyn std::any::Any + Send>) -> String {
    let msg = p
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "(a panic without a message)".into());
    format!("{msg} (at {})", PANIC_AT.lock().unwrap())
}

/// Notes where panics happen instead of printing them: the documented ones are expected, the others become findings.
fn quiet_panics() {
    std::panic::set_hook(Box::new(|info| {
        let at = info.location().map_or_else(|| "?".to_string(), |l| l.to_string());
        *PANIC_AT.lock().unwrap_or_else(|p| p.into_inner()) = at;
    }));
}

/// Runs the program of `seed` on `q`: the findings it makes, and how many calls it made and errors it got.
fn run_program(q: &Queue, other: &Queue, seed: u64, real: bool, steps: usize) -> (Vec<String>, usize, Vec<String>) {
    let mut p = Program {
        q,
        other,
        r: Rng::new(seed),
        real,
        bufs: Vec::new(),
        model: Vec::new(),
        objects: Vec::new(),
        groups: Vec::new(),
        fences: Vec::new(),
        foreign: None,
        log: Vec::new(),
        errors: Vec::new(),
        findings: Vec::new(),
        seed,
    };
    for _ in 0..steps {
        let before = p.log.len();
        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| p.step())) {
            p.findings.push(format!(
                "seed {seed}: a call panicked: {}\n  after: {}",
                panic_text(&panic),
                p.log[before.saturating_sub(5)..].join("; ")
            ));
            break;
        }
    }
    if p.findings.is_empty() {
        p.wait_fences(false);
        q.wait();
    }
    let calls = p.log.len();
    (std::mem::take(&mut p.findings), calls, std::mem::take(&mut p.errors))
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Ends the process when a program runs longer than [`PROGRAM_TIMEOUT`] (a hang), naming its seed.
fn watchdog() -> &'static AtomicU64 {
    static CURRENT: AtomicU64 = AtomicU64::new(u64::MAX);
    static STARTED: std::sync::Once = std::sync::Once::new();
    STARTED.call_once(|| {
        std::thread::spawn(|| {
            let mut last = (u64::MAX, std::time::Instant::now());
            loop {
                std::thread::sleep(Duration::from_millis(200));
                let now = CURRENT.load(Ordering::Relaxed);
                if now != last.0 {
                    last = (now, std::time::Instant::now());
                } else if now != u64::MAX && last.1.elapsed() > PROGRAM_TIMEOUT {
                    eprintln!("fuzz_api: seed {} still runs after {PROGRAM_TIMEOUT:?}: a hang", now >> 1);
                    std::process::exit(3);
                }
            }
        });
    });
    &CURRENT
}

fn report(findings: &[String], programs: u64, calls: usize, errors: &[String]) {
    let mut kinds: std::collections::BTreeMap<String, usize> = std::collections::BTreeMap::new();
    for e in errors {
        // The error's kind: its text after the task, up to the first buffer or number.
        let after = e.split_once("\": ").or_else(|| e.split_once(": ")).map_or(e.as_str(), |(_, t)| t);
        let key: String = after.chars().take_while(|c| !c.is_ascii_digit() && *c != '"').take(70).collect();
        *kinds.entry(key).or_default() += 1;
    }
    println!("fuzz_api: {programs} programs, {calls} calls, {} errors of {} kinds", errors.len(), kinds.len());
    if std::env::var_os("FUZZ_API_VERBOSE").is_some() {
        for (k, n) in &kinds {
            println!("  {n:6}  {k}");
        }
    }
    // The default hook back, so the assertion below prints.
    drop(std::panic::take_hook());
    let closure = CLOSURE_FINDINGS.lock().unwrap();
    assert!(
        findings.is_empty() && closure.is_empty(),
        "{} findings:\n{}\n{}",
        findings.len() + closure.len(),
        findings.join("\n"),
        closure.join("\n")
    );
}

#[test]
fn random_programs_on_a_dry_run_fail_only_with_errors_naming_their_task() {
    let first = env_u64("FUZZ_API_FIRST", 0);
    let seeds = env_u64("FUZZ_API_SEEDS", 2000);
    let current = watchdog();
    quiet_panics();
    let (mut findings, mut calls, mut errors) = (Vec::new(), 0, Vec::new());
    for seed in first..first + seeds {
        current.store(seed << 1, Ordering::Relaxed);
        // Several simulated ranks for some programs: overlapping writes, collective tasks of several items.
        let ranks = [1, 1, 2, 3][(seed % 4) as usize];
        let q = Queue::builder().dry_run(ranks).ignore_env().build().expect("a dry run starts");
        let other = Queue::dry_run();
        let (f, c, e) = run_program(&q, &other, seed, false, 40);
        findings.extend(f);
        calls += c;
        errors.extend(e);
    }
    current.store(u64::MAX, Ordering::Relaxed);
    report(&findings, seeds, calls, &errors);
}

#[test]
#[ignore = "needs a Vulkan driver (lavapipe: `. .ci/env.sh`); runs under mpirun too, see the module doc"]
fn real_queue() {
    let first = env_u64("FUZZ_API_FIRST", 0);
    let seeds = env_u64("FUZZ_API_SEEDS", 50);
    let current = watchdog();
    quiet_panics();
    let q = Queue::new().expect("a queue starts");
    let other = Queue::dry_run();
    let (mut findings, mut calls, mut errors) = (Vec::new(), 0, Vec::new());
    for seed in first..first + seeds {
        current.store(seed << 1 | 1, Ordering::Relaxed);
        let (f, c, e) = run_program(&q, &other, seed, true, 30);
        let stop = !f.is_empty();
        findings.extend(f);
        calls += c;
        errors.extend(e);
        if stop {
            // A panic may leave the queue in a state the next program would misreport.
            break;
        }
    }
    current.store(u64::MAX, Ordering::Relaxed);
    println!("rank {} of {}:", q.rank(), q.ranks());
    report(&findings, seeds, calls, &errors);
}
