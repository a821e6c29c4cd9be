//! Reductions: element types and operators, block grids, and what the runtime knows of each reduction; gathering
//! the ranks' partial results and combining them lives in [`exchange`].

use std::sync::Arc;

use celer_graph::IdMap as HashMap;
use celer_graph::{BufferId, GridBox, ReductionId, ReductionOp, TaskId};

use crate::blocks::{MissingBlock, Node};

use super::batch::Dl;

mod exchange;

/// The element type of a reduction result, which decides how partial results combine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScalarKind {
    /// `i32`.
    I32,
    /// `u32`.
    U32,
    /// `i64`.
    I64,
    /// `u64`.
    U64,
    /// `f32`.
    F32,
    /// `f64`.
    F64,
}

/// The identities of `Min` and `Max` per element type: the largest and the smallest value, the infinities for
/// floats (as SYCL's `known_identity` of `minimum`/`maximum` and the prelude's block reductions), so that the
/// minimum of values that are all `+inf` is `+inf`, not the largest finite float.
trait Extremes {
    /// The identity of `Min`.
    const HIGHEST: Self;
    /// The identity of `Max`.
    const LOWEST: Self;
}

macro_rules! extremes {
    ($($t:ty => $hi:expr, $lo:expr);*) => { $(
        impl Extremes for $t {
            const HIGHEST: Self = $hi;
            const LOWEST: Self = $lo;
        }
    )* };
}
extremes!(i32 => i32::MAX, i32::MIN; u32 => u32::MAX, u32::MIN; i64 => i64::MAX, i64::MIN; u64 => u64::MAX, u64::MIN;
    f32 => f32::INFINITY, f32::NEG_INFINITY; f64 => f64::INFINITY, f64::NEG_INFINITY);

macro_rules! reduce_as {
    ($kind:expr, $op:expr, $bytes:expr, $($k:ident => $t:ty),*) => {
        match $kind { $(ScalarKind::$k => {
            let vals = $bytes.iter().map(|b: &&[u8]| <$t>::from_ne_bytes((*b).try_into().expect("one element")));
            let r = match $op {
                // Integers wrap, as the kernels' atomicAdd and the block reductions do (a sum past the type's
                // range panicked here in a debug build, on the runtime thread, where one rank wrapped).
                ReductionOp::Sum => vals.fold(0 as $t, |a, b| <$t as Elem>::combine(ReductionOp::Sum, a, b)),
                ReductionOp::Min => vals.fold(<$t as Extremes>::HIGHEST, |a, b| if b < a { b } else { a }),
                ReductionOp::Max => vals.fold(<$t as Extremes>::LOWEST, |a, b| if b > a { b } else { a }),
                // Custom reductions fold with their own function (`ReductionInfo::combine`), never here.
                ReductionOp::Custom => vals.fold(0 as $t, |a, _| a),
            };
            r.to_ne_bytes().to_vec()
        })* }
    };
}

impl ScalarKind {
    /// Bytes of one element.
    pub fn size(self) -> usize {
        match self {
            ScalarKind::I32 | ScalarKind::U32 | ScalarKind::F32 => 4,
            _ => 8,
        }
    }

    /// The identity of `op` (what a rank's partial starts from).
    pub(super) fn identity(self, op: ReductionOp) -> Vec<u8> {
        self.combine(op, &[])
    }

    /// Folds `parts` (one element each, in rank order) with `op`, starting from the identity.
    pub(super) fn combine(self, op: ReductionOp, parts: &[&[u8]]) -> Vec<u8> {
        // Float min/max start from +inf/-inf (see `Extremes`), the integers from their largest/smallest values.
        reduce_as!(self, op, parts, I32 => i32, U32 => u32, I64 => i64, U64 => u64, F32 => f32, F64 => f64)
    }
}

/// An element type of the built-in operations, combined as the prelude's block reductions combine on the GPU.
trait Elem: bytemuck::Pod {
    fn from_bytes(b: &[u8]) -> Self;
    fn to_bytes(self) -> Vec<u8>;
    fn combine(op: ReductionOp, a: Self, b: Self) -> Self;
}

macro_rules! elem {
    ($($t:ty => $add:expr),*) => { $(
        impl Elem for $t {
            fn from_bytes(b: &[u8]) -> Self {
                <$t>::from_ne_bytes(b.try_into().expect("one element"))
            }
            fn to_bytes(self) -> Vec<u8> {
                self.to_ne_bytes().to_vec()
            }
            fn combine(op: ReductionOp, x: Self, y: Self) -> Self {
                match op {
                    ReductionOp::Sum => $add(x, y),
                    ReductionOp::Min => if y < x { y } else { x },
                    ReductionOp::Max => if y > x { y } else { x },
                    // Custom reductions combine with their own function (`ReductionInfo::block_nodes`).
                    ReductionOp::Custom => x,
                }
            }
        }
    )* };
}
elem!(i32 => i32::wrapping_add, u32 => u32::wrapping_add, i64 => i64::wrapping_add, u64 => u64::wrapping_add,
    f32 => |x: f32, y: f32| x + y, f64 => |x: f64, y: f64| x + y);

/// [`ReductionInfo::block_nodes`] for a built-in operation over element type `E`.
fn typed_nodes<E: Elem>(op: ReductionOp, count: u64, runs: &[(u64, usize)], bytes: &[u8]) -> Vec<Node> {
    // One combine per operation, so the folds below have no branch on `op` inside them.
    match op {
        ReductionOp::Sum => typed_nodes_with(count, runs, bytes, |a: &E, b: &E| E::combine(ReductionOp::Sum, *a, *b)),
        ReductionOp::Min => typed_nodes_with(count, runs, bytes, |a: &E, b: &E| E::combine(ReductionOp::Min, *a, *b)),
        ReductionOp::Max => typed_nodes_with(count, runs, bytes, |a: &E, b: &E| E::combine(ReductionOp::Max, *a, *b)),
        ReductionOp::Custom => typed_nodes_with(count, runs, bytes, |a: &E, _: &E| *a),
    }
}

fn typed_nodes_with<E: Elem>(
    count: u64,
    runs: &[(u64, usize)],
    bytes: &[u8],
    combine: impl Fn(&E, &E) -> E,
) -> Vec<Node> {
    // The values where they lie (the staging memory is aligned for them), else one copy; a trailing partial
    // element is ignored.
    let n = bytes.len() / std::mem::size_of::<E>();
    let bytes = &bytes[..n * std::mem::size_of::<E>()];
    let copied: Vec<E>;
    let values: &[E] = match bytemuck::try_cast_slice(bytes) {
        Ok(values) => values,
        Err(_) => {
            let mut v = vec![E::zeroed(); n];
            bytemuck::cast_slice_mut(&mut v).copy_from_slice(bytes);
            copied = v;
            &copied
        }
    };
    let mut nodes = Vec::new();
    let mut at = 0;
    for &(first, len) in runs {
        let roots = crate::blocks::run_roots_copy(count, first, &values[at..at + len], &combine);
        nodes.extend(roots.into_iter().map(|(l, i, v)| (l, i, v.to_bytes())));
        at += len;
    }
    nodes
}

/// [`ReductionInfo::block_root`] for a built-in operation over element type `E`.
fn typed_root<E: Elem>(op: ReductionOp, count: u64, nodes: &[Node]) -> Result<Vec<u8>, MissingBlock> {
    let typed: Vec<Node<E>> = nodes.iter().map(|(l, i, v)| (*l, *i, E::from_bytes(v))).collect();
    crate::blocks::combine_roots(count, &typed, &|a: &E, b: &E| E::combine(op, *a, *b)).map(E::to_bytes)
}

/// The blocks of a deterministic (block) reduction: tiles of the task's index space, one per workgroup, aligned to
/// the index space's first item, and how many there are along each dimension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct BlockGrid {
    /// The index space's first item.
    origin: [usize; 3],
    /// Items per block along each dimension (the workgroup size, dimension 0 first).
    pub(super) size: [usize; 3],
    /// Blocks along each dimension (the last ones may be cut by the index space's end).
    counts: [usize; 3],
}

impl BlockGrid {
    /// The grid of blocks of `size` items over index space `range`.
    pub(super) fn new(range: &GridBox, size: [usize; 3]) -> Self {
        let (min, max) = (range.min(), range.max());
        let counts = std::array::from_fn(|d| (max[d] - min[d]).div_ceil(size[d].max(1)));
        Self { origin: min, size, counts }
    }

    /// How many blocks there are.
    pub(super) fn count(&self) -> u64 {
        self.counts.iter().map(|&c| c as u64).product()
    }

    /// The blocks of `chunk`, as a box in block coordinates, or `None` where the chunk does not start at a block's
    /// first item (chunks of block reductions are split at whole workgroups).
    pub(super) fn blocks_of(&self, chunk: &GridBox) -> Option<GridBox> {
        let (min, max) = (chunk.min(), chunk.max());
        let mut lo = [0; 3];
        let mut hi = [0; 3];
        for d in 0..3 {
            let (a, b) = (min[d] - self.origin[d], max[d] - self.origin[d]);
            if !a.is_multiple_of(self.size[d].max(1)) {
                return None;
            }
            lo[d] = a / self.size[d].max(1);
            hi[d] = b.div_ceil(self.size[d].max(1));
        }
        Some(GridBox::new(lo, hi))
    }

    /// The runs of consecutive block numbers (row-major over the grid) that the blocks of `tiles` make, in the
    /// order of `tiles`' cells (row-major): `(first block number, how many)`.
    pub(super) fn runs(&self, tiles: &GridBox) -> Vec<(u64, usize)> {
        let (lo, hi) = (tiles.min(), tiles.max());
        let c = self.counts.map(|c| c as u64);
        let mut runs: Vec<(u64, usize)> = Vec::new();
        if tiles.is_empty() {
            return runs;
        }
        // Tiles whose rows span the grid's last dimension (or its last two) are one run per row of dimension 0
        // (or one run): found without a step per block row, which a 1D grid of 2^18 blocks would take.
        let whole2 = lo[2] == 0 && hi[2] as u64 == c[2];
        if whole2 && lo[1] == 0 && hi[1] as u64 == c[1] {
            let row = (c[1] * c[2]) as usize;
            return vec![(lo[0] as u64 * c[1] * c[2], (hi[0] - lo[0]) * row)];
        }
        let mut push = |first: u64, len: usize| match runs.last_mut() {
            Some((s, n)) if *s + *n as u64 == first => *n += len,
            _ => runs.push((first, len)),
        };
        for i in lo[0]..hi[0] {
            if whole2 {
                push((i as u64 * c[1] + lo[1] as u64) * c[2], (hi[1] - lo[1]) * c[2] as usize);
                continue;
            }
            for j in lo[1]..hi[1] {
                push((i as u64 * c[1] + j as u64) * c[2] + lo[2] as u64, hi[2] - lo[2]);
            }
        }
        runs
    }
}

/// How a user-defined reduction combines two elements (their bytes) into one.
pub type CombineFn = dyn Fn(&[u8], &[u8]) -> Vec<u8> + Send + Sync;

/// A user-defined reduction's host side: the identity every rank's partial result starts from, and how two results
/// combine (one element each, as bytes); the runtime folds the ranks' partials with it in rank order.
#[derive(Clone)]
pub struct CustomReduction {
    /// The identity element's bytes.
    pub identity: Vec<u8>,
    /// Combines two elements' bytes into one.
    pub combine: Arc<CombineFn>,
    /// What `combine` gives for a few small values (`combine(0, 1) = 1, …`; empty where not probed): the divergence
    /// check hashes it, since it cannot hash the closure, so a combine that differs between ranks is reported.
    pub probed: String,
}

impl std::fmt::Debug for CustomReduction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CustomReduction").field("identity", &self.identity).finish_non_exhaustive()
    }
}

/// What the runtime knows of the reductions submitted, kept only while a command may still use them.
///
/// A reduction's commands are the execution commands of the task that declares it and the pushes, await-pushes and
/// reduction command of the first later task that reads its buffer (or none, where a later task overwrites the
/// buffer first). A buffer's next reduction is declared by a task that reads or overwrites the buffer, so the
/// earlier one has no command in any later task: it goes once a horizon or epoch after that task is reached. A
/// buffer's last reduction goes with the buffer.
#[derive(Debug, Default)]
pub(super) struct Reductions {
    info: HashMap<ReductionId, ReductionInfo>,
    /// Per buffer: its latest reduction.
    latest: HashMap<BufferId, ReductionId>,
    /// Reductions superseded by the next reduction of their buffer, declared by task `.1`.
    superseded: Vec<(ReductionId, TaskId)>,
}

impl Reductions {
    /// Records reduction `id` of `buffer`, declared by task `task`.
    fn insert(&mut self, id: ReductionId, buffer: BufferId, task: TaskId, info: ReductionInfo) {
        self.info.insert(id, info);
        if let Some(earlier) = self.latest.insert(buffer, id) {
            self.superseded.push((earlier, task));
        }
    }

    /// Reduction `id`, while it is kept.
    pub(super) fn get(&self, id: &ReductionId) -> Option<&ReductionInfo> {
        self.info.get(id)
    }

    /// How many reductions are kept (for tests and statistics).
    pub(super) fn len(&self) -> usize {
        self.info.len()
    }

    /// Forgets what every task before `reached` (a horizon or epoch whose predecessors have all completed) no
    /// longer needs: the reductions superseded in those tasks.
    pub(super) fn release(&mut self, reached: TaskId) {
        let info = &mut self.info;
        self.superseded.retain(|&(id, task)| {
            let done = task < reached;
            if done {
                info.remove(&id);
            }
            !done
        });
    }

    /// Forgets the last reduction of `buffer`, which was released.
    pub(super) fn buffer_released(&mut self, buffer: BufferId) {
        if let Some(id) = self.latest.remove(&buffer) {
            self.info.remove(&id);
        }
    }
}

impl std::ops::Index<&ReductionId> for Reductions {
    type Output = ReductionInfo;

    fn index(&self, id: &ReductionId) -> &ReductionInfo {
        &self.info[id]
    }
}

/// What the runtime knows of a reduction: its operator and element type, and for user-defined ones how to combine.
#[derive(Clone, Debug)]
pub(super) struct ReductionInfo {
    pub(super) op: ReductionOp,
    pub(super) kind: ScalarKind,
    pub(super) custom: Option<CustomReduction>,
    /// The task that declared it (id and name), for messages.
    pub(super) task: celer_graph::TaskIdent,
    /// For a deterministic (block) reduction: its blocks, whose partial results combine in a fixed tree
    /// ([`crate::blocks`]).
    pub(super) blocks: Option<BlockGrid>,
}

impl ReductionInfo {
    /// The identity a rank's partial result starts from.
    pub(super) fn identity(&self) -> Vec<u8> {
        match &self.custom {
            Some(c) => c.identity.clone(),
            None => self.kind.identity(self.op),
        }
    }

    /// The tree nodes of a block reduction's blocks given as `runs` of consecutive block numbers (`(first, how
    /// many)`) whose values `bytes` holds in that order ([`crate::blocks::run_roots`]).
    pub(super) fn block_nodes(&self, count: u64, runs: &[(u64, usize)], bytes: &[u8]) -> Vec<Node> {
        let op = self.op;
        match (&self.custom, self.kind) {
            (Some(c), kind) => {
                let values: Vec<Vec<u8>> = bytes.chunks_exact(kind.size()).map(<[u8]>::to_vec).collect();
                let combine = |a: &Vec<u8>, b: &Vec<u8>| (c.combine)(a, b);
                let mut nodes = Vec::new();
                let mut at = 0;
                for &(first, len) in runs {
                    nodes.extend(crate::blocks::run_roots(count, first, &values[at..at + len], &combine));
                    at += len;
                }
                nodes
            }
            (None, ScalarKind::I32) => typed_nodes::<i32>(op, count, runs, bytes),
            (None, ScalarKind::U32) => typed_nodes::<u32>(op, count, runs, bytes),
            (None, ScalarKind::I64) => typed_nodes::<i64>(op, count, runs, bytes),
            (None, ScalarKind::U64) => typed_nodes::<u64>(op, count, runs, bytes),
            (None, ScalarKind::F32) => typed_nodes::<f32>(op, count, runs, bytes),
            (None, ScalarKind::F64) => typed_nodes::<f64>(op, count, runs, bytes),
        }
    }

    /// A block reduction's result from the tree nodes of all its blocks ([`crate::blocks::combine_roots`]). A
    /// `reduce_with` combine is not checked for commutativity here (as [`combine`](Self::combine) does): the tree
    /// and the order of each node's children are fixed by the block numbers, whatever the split.
    pub(super) fn block_root(&self, count: u64, nodes: &[Node]) -> Result<Vec<u8>, MissingBlock> {
        let op = self.op;
        match (&self.custom, self.kind) {
            (Some(c), _) => crate::blocks::combine_roots(count, nodes, &|a: &Vec<u8>, b: &Vec<u8>| (c.combine)(a, b)),
            (None, ScalarKind::I32) => typed_root::<i32>(op, count, nodes),
            (None, ScalarKind::U32) => typed_root::<u32>(op, count, nodes),
            (None, ScalarKind::I64) => typed_root::<i64>(op, count, nodes),
            (None, ScalarKind::U64) => typed_root::<u64>(op, count, nodes),
            (None, ScalarKind::F32) => typed_root::<f32>(op, count, nodes),
            (None, ScalarKind::F64) => typed_root::<f64>(op, count, nodes),
        }
    }

    /// Folds `parts` (one element each, in node order), starting from the identity.
    ///
    /// A `reduce_with` combine is also called the other way round for each pair it combines: the partial results
    /// come one per node (rank × device) that ran a chunk, so which values pair up, and in which order, depends on
    /// the split; a combine whose two orders differ ([`same_element`]) would give a result that changes with the
    /// number of ranks and devices, and is reported instead (one extra call of the combine per combine, on the host).
    pub(super) fn combine(&self, parts: &[&[u8]]) -> Result<Vec<u8>, Box<NotCommutative>> {
        let Some(c) = &self.custom else { return Ok(self.kind.combine(self.op, parts)) };
        let mut acc = c.identity.clone();
        for p in parts {
            let ab = (c.combine)(&acc, p);
            let ba = (c.combine)(p, &acc);
            if !same_element(self.kind, &ab, &ba) {
                return Err(Box::new(NotCommutative { a: acc, b: p.to_vec(), ab, ba }));
            }
            acc = ab;
        }
        Ok(acc)
    }
}

/// Two values that a `reduce_with` combine closure combined to different bytes in the two orders: `combine(a, b)`
/// is `ab`, `combine(b, a)` is `ba` (one element each, as bytes).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct NotCommutative {
    pub(super) a: Vec<u8>,
    pub(super) b: Vec<u8>,
    pub(super) ab: Vec<u8>,
    pub(super) ba: Vec<u8>,
}

/// Whether two results of a combine count as the same element of `kind`: equal bytes, or for floats two NaNs (any
/// payloads: which operand's payload `a + b` keeps differs between CPUs, and between the orders on x86) or two
/// zeros (`f32::max(0.0, -0.0)` may keep either, and kept its first operand in a debug build on x86; `+0.0` and
/// `-0.0` are equal values, as the identity check at `submit` counts them). `submit`'s probe of the two orders
/// compares with it too.
pub fn same_element(kind: ScalarKind, a: &[u8], b: &[u8]) -> bool {
    if a == b {
        return true;
    }
    match kind {
        ScalarKind::F32 => match (<[u8; 4]>::try_from(a), <[u8; 4]>::try_from(b)) {
            (Ok(x), Ok(y)) => {
                let (x, y) = (f32::from_ne_bytes(x), f32::from_ne_bytes(y));
                (x.is_nan() && y.is_nan()) || (x == 0.0 && y == 0.0)
            }
            _ => false,
        },
        ScalarKind::F64 => match (<[u8; 8]>::try_from(a), <[u8; 8]>::try_from(b)) {
            (Ok(x), Ok(y)) => {
                let (x, y) = (f64::from_ne_bytes(x), f64::from_ne_bytes(y));
                (x.is_nan() && y.is_nan()) || (x == 0.0 && y == 0.0)
            }
            _ => false,
        },
        _ => false,
    }
}

/// One element of `kind` for messages: its value and its bytes in memory order, `3 (bytes 03 00 00 00)`; only the
/// bytes where they do not have the kind's size.
pub(super) fn show_element(kind: ScalarKind, bytes: &[u8]) -> String {
    let hex: Vec<String> = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let hex = hex.join(" ");
    let four = <[u8; 4]>::try_from(bytes).ok();
    let eight = <[u8; 8]>::try_from(bytes).ok();
    let value = match kind {
        ScalarKind::I32 => four.map(|b| i32::from_ne_bytes(b).to_string()),
        ScalarKind::U32 => four.map(|b| u32::from_ne_bytes(b).to_string()),
        ScalarKind::F32 => four.map(|b| format!("{:?}", f32::from_ne_bytes(b))),
        ScalarKind::I64 => eight.map(|b| i64::from_ne_bytes(b).to_string()),
        ScalarKind::U64 => eight.map(|b| u64::from_ne_bytes(b).to_string()),
        ScalarKind::F64 => eight.map(|b| format!("{:?}", f64::from_ne_bytes(b))),
    };
    match value {
        Some(v) => format!("{v} (bytes {hex})"),
        None => format!("bytes {hex}"),
    }
}

/// The partial results of one block reduction that an execution command's kernel leaves: one cell per block of its
/// chunk, in a scratch allocation of their own (`RankLoop::scratch`), downloaded with the kernel's batch.
#[derive(Debug)]
pub(super) struct BlockPart {
    pub(super) reduction: ReductionId,
    pub(super) buffer: BufferId,
    /// The chunk's blocks, in block coordinates (the scratch allocation's box).
    pub(super) tiles: GridBox,
    /// The scratch allocation.
    pub(super) scratch: u64,
    pub(super) download: Dl,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integer_sums_of_the_ranks_partial_results_wrap_as_the_kernels_atomics_do() {
        // Two ranks' u32 partials of 0xffffffff each (an OR of every bit, reduced with Sum; or a checksum): the
        // runtime thread panicked with "attempt to add with overflow" in a debug build.
        let max = u32::MAX.to_ne_bytes();
        let got = ScalarKind::U32.combine(ReductionOp::Sum, &[&max, &max]);
        assert_eq!(u32::from_ne_bytes(got.try_into().unwrap()), u32::MAX.wrapping_add(u32::MAX));
        let (big, one) = (i64::MAX.to_ne_bytes(), 1i64.to_ne_bytes());
        let got = ScalarKind::I64.combine(ReductionOp::Sum, &[&big, &one]);
        assert_eq!(i64::from_ne_bytes(got.try_into().unwrap()), i64::MIN);
        let (low, minus) = (i32::MIN.to_ne_bytes(), (-1i32).to_ne_bytes());
        let got = ScalarKind::I32.combine(ReductionOp::Sum, &[&low, &minus]);
        assert_eq!(i32::from_ne_bytes(got.try_into().unwrap()), i32::MAX);
    }

    #[test]
    fn blocks_of_a_chunk_are_counted_from_the_index_space_origin_and_refuse_a_misaligned_start() {
        // Index space [10, 110) x [0, 50) in blocks of 8 x 16: 13 x 4 blocks, the last ones cut.
        let grid = BlockGrid::new(&GridBox::new([10, 0, 0], [110, 50, 1]), [8, 16, 1]);
        assert_eq!(grid.count(), 13 * 4);
        let chunk = GridBox::new([26, 16, 0], [110, 50, 1]);
        assert_eq!(grid.blocks_of(&chunk), Some(GridBox::new([2, 1, 0], [13, 4, 1])));
        assert_eq!(grid.blocks_of(&GridBox::new([14, 0, 0], [110, 50, 1])), None, "starts inside a block");
    }

    #[test]
    fn runs_join_rows_that_span_the_grid_and_split_rows_that_do_not() {
        let grid = BlockGrid::new(&GridBox::new([0, 0, 0], [40, 40, 1]), [10, 10, 1]);
        // Whole rows 1-2: one run of 8 blocks.
        assert_eq!(grid.runs(&GridBox::new([1, 0, 0], [3, 4, 1])), vec![(4, 8)]);
        // The right half of rows 0-1: one run per row.
        assert_eq!(grid.runs(&GridBox::new([0, 2, 0], [2, 4, 1])), vec![(2, 2), (6, 2)]);
        // Every sub-box of a 3D grid gives the runs that stepping through its blocks one by one gives.
        let grid = BlockGrid::new(&GridBox::new([0, 0, 0], [12, 9, 8]), [4, 3, 2]);
        let c = [3u64, 3, 4];
        for (lo, hi) in [([0, 0, 0], [3, 3, 4]), ([1, 0, 0], [3, 3, 4]), ([0, 1, 0], [2, 3, 4]), ([0, 0, 1], [3, 3, 3])]
        {
            let tiles = GridBox::new(lo, hi);
            let mut want: Vec<(u64, usize)> = Vec::new();
            for i in lo[0]..hi[0] {
                for j in lo[1]..hi[1] {
                    for k in lo[2]..hi[2] {
                        let b = (i as u64 * c[1] + j as u64) * c[2] + k as u64;
                        match want.last_mut() {
                            Some((s, n)) if *s + *n as u64 == b => *n += 1,
                            _ => want.push((b, 1)),
                        }
                    }
                }
            }
            assert_eq!(grid.runs(&tiles), want, "tiles {lo:?}..{hi:?}");
        }
        // A 1D grid's chunk is one run.
        let grid = BlockGrid::new(&GridBox::new([0, 0, 0], [1 << 26, 1, 1]), [256, 1, 1]);
        assert_eq!(grid.runs(&GridBox::new([4, 0, 0], [1 << 18, 1, 1])), vec![(4, (1 << 18) - 4)]);
    }

    #[test]
    fn float_min_and_max_start_from_the_infinities() {
        let f32s = |v: &[u8]| f32::from_ne_bytes(v.try_into().unwrap());
        let f64s = |v: &[u8]| f64::from_ne_bytes(v.try_into().unwrap());
        assert_eq!(f32s(&ScalarKind::F32.identity(ReductionOp::Min)), f32::INFINITY);
        assert_eq!(f32s(&ScalarKind::F32.identity(ReductionOp::Max)), f32::NEG_INFINITY);
        assert_eq!(f64s(&ScalarKind::F64.identity(ReductionOp::Min)), f64::INFINITY);
        assert_eq!(f64s(&ScalarKind::F64.identity(ReductionOp::Max)), f64::NEG_INFINITY);
        // Partial results that are all +inf (-inf) combine to +inf (-inf), not to the largest (smallest) finite value.
        let inf = f32::INFINITY.to_ne_bytes();
        assert_eq!(f32s(&ScalarKind::F32.combine(ReductionOp::Min, &[&inf, &inf])), f32::INFINITY);
        let neg = f64::NEG_INFINITY.to_ne_bytes();
        assert_eq!(f64s(&ScalarKind::F64.combine(ReductionOp::Max, &[&neg])), f64::NEG_INFINITY);
        // The integers keep their extremes.
        assert_eq!(ScalarKind::I32.identity(ReductionOp::Max), i32::MIN.to_ne_bytes());
        assert_eq!(ScalarKind::U32.identity(ReductionOp::Min), u32::MAX.to_ne_bytes());
    }

    /// A `reduce_with` reduction of element `kind` with `identity` and `combine`.
    fn custom<T: bytemuck::Pod + Send + Sync>(
        kind: ScalarKind,
        identity: T,
        combine: impl Fn(T, T) -> T + Send + Sync + 'static,
    ) -> ReductionInfo {
        let read = |b: &[u8]| -> T { bytemuck::pod_read_unaligned(b) };
        let custom = CustomReduction {
            identity: bytemuck::bytes_of(&identity).to_vec(),
            combine: Arc::new(move |a: &[u8], b: &[u8]| bytemuck::bytes_of(&combine(read(a), read(b))).to_vec()),
            probed: String::new(),
        };
        ReductionInfo {
            op: ReductionOp::Custom,
            kind,
            custom: Some(custom),
            task: celer_graph::TaskIdent { id: TaskId(1), name: None },
            blocks: None,
        }
    }

    /// `info`'s fold of `parts` (one element each, in node order), or the pair its combine did not commute on.
    fn fold<T: bytemuck::Pod>(info: &ReductionInfo, parts: &[T]) -> Result<T, Box<NotCommutative>> {
        let bytes: Vec<Vec<u8>> = parts.iter().map(|p| bytemuck::bytes_of(p).to_vec()).collect();
        let slices: Vec<&[u8]> = bytes.iter().map(Vec::as_slice).collect();
        info.combine(&slices).map(|r| bytemuck::pod_read_unaligned(&r))
    }

    #[test]
    fn a_combine_whose_two_orders_differ_is_reported_with_both_operands_and_results() {
        // "The first non-zero": an identity on both sides (it passes submit's probes), but not commutative.
        let first = custom(ScalarKind::U32, 0u32, |a, b| if a != 0 { a } else { b });
        let n = fold(&first, &[5u32, 3]).unwrap_err();
        let show = |b: &[u8]| show_element(ScalarKind::U32, b);
        assert_eq!(
            (show(&n.a), show(&n.b), show(&n.ab), show(&n.ba)),
            (
                "5 (bytes 05 00 00 00)".into(),
                "3 (bytes 03 00 00 00)".into(),
                "5 (bytes 05 00 00 00)".into(),
                "3 (bytes 03 00 00 00)".into()
            )
        );
        // One partial result pairs only with the identity, which it commutes with: nothing to see.
        assert_eq!(fold(&first, &[5u32]).unwrap(), 5);
        // A difference (which the identity check refuses at submit already) shows on the first pair.
        let minus = custom(ScalarKind::I32, 0i32, |a: i32, b: i32| a.wrapping_sub(b));
        let n = fold(&minus, &[4i32, 1]).unwrap_err();
        assert_eq!((n.a, n.b), (0i32.to_ne_bytes().to_vec(), 4i32.to_ne_bytes().to_vec()));
        assert_eq!((n.ab, n.ba), ((-4i32).to_ne_bytes().to_vec(), 4i32.to_ne_bytes().to_vec()));
    }

    #[test]
    fn commutative_combines_pass_including_float_zeros_and_nan_payloads() {
        let sum = custom(ScalarKind::I32, 0i32, i32::wrapping_add);
        assert_eq!(fold(&sum, &[i32::MAX, 1, 7]).unwrap(), i32::MIN + 7);
        let or = custom(ScalarKind::U64, 0u64, |a: u64, b: u64| a | b);
        assert_eq!(fold(&or, &[1u64, 4, 16]).unwrap(), 21);
        // f32::max and min may keep their first operand of +0.0 and -0.0: equal values, so they pass.
        let max = custom(ScalarKind::F32, f32::NEG_INFINITY, |a: f32, b: f32| if b > a { b } else { a });
        assert_eq!(fold(&max, &[0.0f32, -0.0, -1.0]).unwrap(), 0.0);
        let min = custom(ScalarKind::F64, f64::INFINITY, f64::min);
        assert_eq!(fold(&min, &[-0.0f64, 0.0, 2.0]).unwrap(), 0.0);
        // Two NaNs count as the same result, whatever their payloads ("keep the first NaN" below).
        let (n1, n2) = (f32::from_bits(0x7fc0_0001), f32::from_bits(0x7fc0_0002));
        let first_nan = custom(ScalarKind::F32, 0.0f32, |a: f32, b: f32| if a.is_nan() { a } else { a + b });
        assert!(fold(&first_nan, &[n1, n2]).unwrap().is_nan());
        // Non-zero values that differ only in bits are not the same.
        assert!(!same_element(ScalarKind::F32, &1.0f32.to_ne_bytes(), &f32::from_bits(0x3f80_0001).to_ne_bytes()));
        assert!(same_element(ScalarKind::F64, &f64::NAN.to_ne_bytes(), &(-f64::NAN).to_ne_bytes()));
        assert!(!same_element(ScalarKind::I32, &0i32.to_ne_bytes(), &i32::MIN.to_ne_bytes()), "not a float");
        assert_eq!(show_element(ScalarKind::F32, &(-0.0f32).to_ne_bytes()), "-0.0 (bytes 00 00 00 80)");
    }

    #[test]
    fn pairwise_combines_wrap_integer_sums_and_keep_the_first_of_equal_floats() {
        assert_eq!(<i32 as Elem>::combine(ReductionOp::Sum, i32::MAX, 1), i32::MIN);
        let min = <f32 as Elem>::combine(ReductionOp::Min, 0.0, -0.0);
        assert_eq!(min.to_bits(), 0.0f32.to_bits(), "-0.0 does not compare below 0.0");
    }
}
