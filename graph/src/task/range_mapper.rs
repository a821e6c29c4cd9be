//! Range mappers: [`RangeMapper`] (which part of a buffer each chunk of a task's index space touches) with its
//! application to a chunk and its inverse bound ([`RangeMapper::reach`]), the even split's arithmetic, the custom
//! mapper closure types, [`MapperError`] for a mapper that cannot be applied, and [`MapperPanic`], the note a
//! panicking custom mapper leaves for the handler that catches the panic.

use std::cell::Cell;
use std::fmt;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use crate::geometry::{GridBox, Region, MAX_DIMS};
use crate::ids::BufferId;

/// Which cells the accessed neighbourhood of a cell holds.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum NeighborhoodShape {
    /// The whole box `[i - extent, i + extent]` (diagonal neighbours included).
    BoundingBox,
    /// Only the cells along each axis through `i` (a "+" stencil; no diagonal neighbours).
    AlongAxes,
}

/// A user-defined range mapper: from a chunk of the kernel's index space, the whole index space (the task's
/// offset and range, Celerity's `chunk::global_size` with the offset) and the buffer's extent to a region.
pub type CustomMapperFn = dyn Fn(&GridBox, &GridBox, &GridBox) -> Region + Send + Sync;

/// A custom mapper's declared inverse bound: from a box of buffer cells and the task's index space to a box of
/// kernel indices outside which no item touches any of those cells (see [`RangeMapper::Custom`]).
pub type CustomReachFn = dyn Fn(&GridBox, &GridBox) -> GridBox + Send + Sync;

/// Maps a chunk of a task's index space to the part of a buffer the chunk touches.
#[derive(Clone)]
pub enum RangeMapper {
    /// The chunk's own index range (kernel and buffer must have the same dimensionality).
    OneToOne,
    /// A fixed box, whatever the chunk.
    Fixed(GridBox),
    /// The whole buffer.
    All,
    /// The chunk, extended to the buffer's whole extent along dimension `.0`.
    Slice(usize),
    /// The chunk grown by `extent` cells on each side, clamped to the buffer.
    Neighborhood {
        /// Cells added on each side, per dimension.
        extent: [usize; MAX_DIMS],
        /// Which neighbours are included.
        shape: NeighborhoodShape,
    },
    /// The chunk with dimensions 0 and 1 swapped (2D only).
    Transposed,
    /// The buffer split evenly along its dimension 0 over the items of the index space along dimension 0 (Celerity's
    /// `experimental::access::even_split`): with `G` items, `B` rows, `step = ⌊B / (G·g)⌋·g` and `q = ⌊(B −
    /// G·step) / g⌋`, item `i` (counted from the start of the index space) starts at row `i·step + min(i, q)·g`, the
    /// last item ends at row `B`, and every item touches the buffer's whole extent along the other dimensions. A
    /// chunk touches the union of its items' rows: one box.
    EvenSplit {
        /// Rows are handed out in blocks of this many (`g`; Celerity's granularity along dimension 0); the last
        /// item also takes the rows left over below one block. Must not be 0.
        granularity: usize,
    },
    /// A user closure; `name` appears in errors and graph dumps.
    ///
    /// Without a `reach`, every rank evaluates the closure for every chunk of a task that touches the buffer (an
    /// O(ranks) cost per task). With one, the mapper promises two things, which make it as cheap as a built-in:
    /// - `reach(cells, range)` holds every kernel index (of `range`) whose item touches any of `cells`, so the
    ///   command generator evaluates only the chunks inside it;
    /// - the mapper is additive: a chunk's region is the union of its items' regions, so the task's whole region
    ///   is the closure applied to the whole index space.
    ///
    /// Each rank checks the first promise on its own chunk (the reach of what the chunk touches must hold it).
    Custom {
        /// Shown in diagnostics.
        name: &'static str,
        /// The mapping.
        f: Arc<CustomMapperFn>,
        /// The declared inverse bound, if any.
        reach: Option<Arc<CustomReachFn>>,
    },
}

impl RangeMapper {
    /// Short name for diagnostics.
    pub fn name(&self) -> &'static str {
        match self {
            RangeMapper::OneToOne => "one_to_one",
            RangeMapper::Fixed(_) => "fixed",
            RangeMapper::All => "all",
            RangeMapper::Slice(_) => "slice",
            RangeMapper::Neighborhood { .. } => "neighborhood",
            RangeMapper::Transposed => "transposed",
            RangeMapper::EvenSplit { .. } => "even_split",
            RangeMapper::Custom { name, .. } => name,
        }
    }

    /// Applies the mapper to `chunk` of the task's index space `space` (`kernel_dims`-dimensional) for a buffer of
    /// `buffer_dims` dimensions and extent `buffer`. Returns the region, not yet checked against the buffer's bounds.
    /// Only [`EvenSplit`](RangeMapper::EvenSplit) and custom mappers look at `space`; the cost of the others is that
    /// of one more argument.
    ///
    /// # Errors
    /// [`MapperError::DimensionMismatch`] when a chunk-shaped mapper is used between spaces of different
    /// dimensionality, [`MapperError::BadDimension`] for a slice or transpose along a dimension the buffer lacks (or
    /// an even split of a 0-D buffer), [`MapperError::ZeroGranularity`] for an even split in blocks of 0 rows.
    pub fn apply(
        &self,
        chunk: &GridBox,
        space: &GridBox,
        kernel_dims: usize,
        buffer: &GridBox,
        buffer_dims: usize,
    ) -> Result<Region, MapperError> {
        let same_dims = || {
            if kernel_dims == buffer_dims {
                Ok(())
            } else {
                Err(MapperError::DimensionMismatch { mapper: self.name(), kernel_dims, buffer_dims })
            }
        };
        if chunk.is_empty() {
            return Ok(Region::new());
        }
        Ok(match self {
            RangeMapper::OneToOne => {
                same_dims()?;
                Region::from(*chunk)
            }
            RangeMapper::Fixed(b) => Region::from(*b),
            RangeMapper::All => Region::from(*buffer),
            RangeMapper::Slice(dim) => {
                same_dims()?;
                if *dim >= buffer_dims {
                    return Err(MapperError::BadDimension { mapper: self.name(), dim: *dim, buffer_dims });
                }
                let (mut min, mut max) = (chunk.min(), chunk.max());
                min[*dim] = buffer.min()[*dim];
                max[*dim] = buffer.max()[*dim];
                Region::from(GridBox::new(min, max))
            }
            RangeMapper::Neighborhood { extent, shape } => {
                same_dims()?;
                let core = chunk.intersection(buffer);
                if core.is_empty() {
                    // A chunk beside the buffer: only the grown arms reach into it.
                    let arm = |d: usize| {
                        let (mut min, mut max) = (chunk.min(), chunk.max());
                        let dims: &[usize] = if *shape == NeighborhoodShape::AlongAxes { &[d] } else { &[0, 1, 2] };
                        for &e in dims.iter().filter(|&&e| e < buffer_dims) {
                            min[e] = min[e].saturating_sub(extent[e]);
                            max[e] = max[e].saturating_add(extent[e]);
                        }
                        GridBox::new(min, max).intersection(buffer)
                    };
                    return Ok(Region::from_boxes((0..buffer_dims).map(arm)));
                }
                // Per dimension, the chunk grown by the extent and clamped to the buffer.
                let (cmin, cmax) = (core.min(), core.max());
                let (bmin, bmax) = (buffer.min(), buffer.max());
                let (mut gmin, mut gmax) = (cmin, cmax);
                let mut growing = 0;
                for d in 0..buffer_dims {
                    gmin[d] = chunk.min()[d].saturating_sub(extent[d]).max(bmin[d]);
                    gmax[d] = chunk.max()[d].saturating_add(extent[d]).min(bmax[d]);
                    growing += usize::from(gmin[d] < cmin[d] || gmax[d] > cmax[d]);
                }
                match shape {
                    NeighborhoodShape::BoundingBox => Region::from(GridBox::new(gmin, gmax)),
                    // A "+" of one arm per dimension; where at most one dimension can grow (a 1D stencil, a chunk
                    // spanning the buffer along all but one dimension) that arm holds the others, and it is one box.
                    NeighborhoodShape::AlongAxes if growing <= 1 => Region::from(GridBox::new(gmin, gmax)),
                    NeighborhoodShape::AlongAxes => Region::from_boxes((0..buffer_dims).map(|d| {
                        let (mut min, mut max) = (cmin, cmax);
                        (min[d], max[d]) = (gmin[d], gmax[d]);
                        GridBox::new(min, max)
                    })),
                }
            }
            RangeMapper::Transposed => {
                same_dims()?;
                if buffer_dims != 2 {
                    return Err(MapperError::BadDimension { mapper: self.name(), dim: 1, buffer_dims });
                }
                Region::from(chunk.transposed(0, 1))
            }
            RangeMapper::EvenSplit { granularity } => {
                if buffer_dims == 0 {
                    return Err(MapperError::BadDimension { mapper: self.name(), dim: 0, buffer_dims });
                }
                if *granularity == 0 {
                    return Err(MapperError::ZeroGranularity { mapper: self.name() });
                }
                let split = EvenSplit::new(space, buffer, *granularity);
                let start = space.min()[0];
                let first = chunk.min()[0].clamp(start, space.max()[0]) - start;
                let end = chunk.max()[0].clamp(start, space.max()[0]) - start;
                let (mut min, mut max) = (buffer.min(), buffer.max());
                min[0] = buffer.min()[0] + split.start(first);
                max[0] = buffer.min()[0] + split.start(end);
                Region::from(GridBox::new(min, max))
            }
            RangeMapper::Custom { name, f, .. } => noting_panic(name, false, || f(chunk, space, buffer)),
        })
    }
}

/// The arithmetic of [`RangeMapper::EvenSplit`] for one index space and buffer: where each item's rows start, and
/// which item holds a row. O(1) each.
#[derive(Clone, Copy, Debug)]
struct EvenSplit {
    /// Items along dimension 0 (`G`).
    items: usize,
    /// Rows along dimension 0 (`B`).
    rows: usize,
    /// Rows every item gets (`step`, a multiple of the granularity).
    step: usize,
    /// The granularity (`g`, at least 1).
    block: usize,
    /// How many items (the first ones) get one block more (`q`).
    extra: usize,
}

impl EvenSplit {
    fn new(space: &GridBox, buffer: &GridBox, granularity: usize) -> Self {
        let items = space.max()[0] - space.min()[0];
        let rows = buffer.max()[0] - buffer.min()[0];
        let block = granularity.max(1);
        // `items · block` may overflow only where it exceeds `rows` by far: then no item gets a whole step.
        let step = items.checked_mul(block).filter(|&d| d > 0).map_or(0, |d| rows / d * block);
        let extra = (rows - items * step) / block;
        Self { items, rows, step, block, extra }
    }

    /// The first row of item `i` (`0 ≤ i ≤ G`); item `G` "starts" at `B`, so that item `i` holds rows
    /// `[start(i), start(i + 1))`.
    fn start(&self, i: usize) -> usize {
        if i >= self.items {
            self.rows
        } else {
            i * self.step + i.min(self.extra) * self.block
        }
    }

    /// The item holding row `row` (`row < B`): the `i` with `start(i) ≤ row < start(i + 1)`.
    fn item_of(&self, row: usize) -> usize {
        let big = self.step + self.block;
        let last = self.items.saturating_sub(1);
        if row < self.extra * big {
            return row / big;
        }
        // Past the items with a block more, items of `step` rows; with no step, only the last item has rows (the
        // remainder below one block).
        match (row - self.extra * big).checked_div(self.step) {
            Some(k) => (self.extra + k).min(last),
            None => last,
        }
    }
}

impl RangeMapper {
    /// A box of kernel indices (of the index space `range`) outside which no item touches any of `cells` (of a
    /// buffer of extent `buffer`): exact for the chunk-shaped mappers and the even split, the declared reach of a
    /// bounded custom mapper, and `range` itself for the rest. Only the even split reads `buffer`.
    pub fn reach(&self, cells: &GridBox, range: &GridBox, buffer: &GridBox) -> GridBox {
        match self {
            RangeMapper::OneToOne => *cells,
            RangeMapper::Neighborhood { extent, .. } => {
                let (mut min, mut max) = (cells.min(), cells.max());
                for d in 0..MAX_DIMS {
                    min[d] = min[d].saturating_sub(extent[d]);
                    max[d] = max[d].saturating_add(extent[d]);
                }
                GridBox::new(min, max)
            }
            RangeMapper::Slice(dim) => {
                let (mut min, mut max) = (cells.min(), cells.max());
                min[*dim] = range.min()[*dim];
                max[*dim] = range.max()[*dim];
                GridBox::new(min, max)
            }
            RangeMapper::Transposed => cells.transposed(0, 1),
            RangeMapper::EvenSplit { granularity } => {
                let split = EvenSplit::new(range, buffer, *granularity);
                let base = buffer.min()[0];
                let first = cells.min()[0].max(base) - base;
                let end = cells.max()[0].saturating_sub(base).min(split.rows);
                if split.items == 0 || first >= end || cells.is_empty() {
                    return GridBox::EMPTY;
                }
                let (mut min, mut max) = (range.min(), range.max());
                min[0] = range.min()[0] + split.item_of(first);
                max[0] = range.min()[0] + split.item_of(end - 1) + 1;
                GridBox::new(min, max)
            }
            RangeMapper::Custom { name, reach: Some(reach), .. } => noting_panic(name, true, || reach(cells, range)),
            RangeMapper::Fixed(_) | RangeMapper::All | RangeMapper::Custom { reach: None, .. } => *range,
        }
    }
}

/// Which custom range mapper's closure panicked, noted on the panicking thread by [`RangeMapper::apply`] and
/// [`RangeMapper::reach`] (and, with the buffer, by [`noting_buffer`]) before the panic goes on unwinding, so that
/// the handler that catches it can name the mapper and the buffer, not only the task. Nothing is noted, and nothing
/// costs more than a landing pad, unless a closure panics.
///
/// # Examples
/// ```
/// use std::sync::Arc;
/// use celer_graph::{task::MapperPanic, BufferId, GridBox, RangeMapper};
/// let left_halo = RangeMapper::Custom {
///     name: "left_halo",
///     f: Arc::new(|c: &GridBox, _: &GridBox, _: &GridBox| {
///         GridBox::d1(c.min()[0].checked_sub(1).expect("no cell left of 0"), c.max()[0]).into()
///     }),
///     reach: None,
/// };
/// let all = GridBox::d1(0, 8);
/// let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
///     celer_graph::task::noting_buffer(BufferId(0), || left_halo.apply(&all, &all, 1, &all, 1))
/// }));
/// assert!(caught.is_err());
/// let note = MapperPanic::take().unwrap();
/// assert_eq!(note, MapperPanic { mapper: "left_halo", buffer: Some(BufferId(0)), in_reach: false });
/// assert_eq!(MapperPanic::take(), None); // taken
/// let named = note.describe(|b| celer_graph::ResourceIdent::buffer(b, Some("src")));
/// assert_eq!(named, r#"the custom range mapper left_halo of buffer B0 "src""#);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct MapperPanic {
    /// The mapper's name ([`RangeMapper::name`]); for a custom mapper that calls another, the outer one's.
    pub mapper: &'static str,
    /// The buffer the mapper maps to, where the code applying it said so ([`noting_buffer`]).
    pub buffer: Option<BufferId>,
    /// Whether the panic came from the mapper's `reach` closure ([`RangeMapper::reach`]) rather than the mapping.
    pub in_reach: bool,
}

thread_local! {
    /// The note of the last custom mapper panic on this thread that no handler has taken yet.
    static MAPPER_PANIC: Cell<Option<MapperPanic>> = const { Cell::new(None) };
}

impl MapperPanic {
    /// Takes the note of the last custom range mapper panic on this thread (`None` if no mapper panicked since the
    /// last call): a handler that catches a panic calls it to tell a mapper's panic from another.
    pub fn take() -> Option<MapperPanic> {
        MAPPER_PANIC.with(Cell::take)
    }

    /// Names the closure that panicked, with `ident` naming the buffer: `the custom range mapper left_halo of buffer
    /// B0 "src"`, or `the reach closure of the custom range mapper …`.
    pub fn describe(&self, ident: impl FnOnce(BufferId) -> super::ResourceIdent) -> String {
        let closure =
            if self.in_reach { "the reach closure of the custom range mapper" } else { "the custom range mapper" };
        match self.buffer {
            Some(b) => format!("{closure} {} of {}", self.mapper, ident(b)),
            None => format!("{closure} {}", self.mapper),
        }
    }
}

/// Runs `f`, the closure `mapper` (`reach` if `in_reach`) of a custom mapper, noting a panic before it unwinds on.
fn noting_panic<R>(mapper: &'static str, in_reach: bool, f: impl FnOnce() -> R) -> R {
    std::panic::catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|payload| {
        MAPPER_PANIC.with(|n| n.set(Some(MapperPanic { mapper, buffer: None, in_reach })));
        std::panic::resume_unwind(payload)
    })
}

/// Runs `f`, which applies range mappers of `buffer` (or their reach): where a custom mapper panics in it, the
/// [`MapperPanic`] note names `buffer` too (an inner call's buffer stays). Costs a landing pad, nothing more, unless
/// `f` panics.
pub fn noting_buffer<R>(buffer: BufferId, f: impl FnOnce() -> R) -> R {
    std::panic::catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|payload| {
        MAPPER_PANIC.with(|n| {
            if let Some(note) = n.get().filter(|note| note.buffer.is_none()) {
                n.set(Some(MapperPanic { buffer: Some(buffer), ..note }));
            }
        });
        std::panic::resume_unwind(payload)
    })
}

impl fmt::Debug for RangeMapper {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RangeMapper::Fixed(b) => write!(f, "fixed({b})"),
            RangeMapper::Slice(d) => write!(f, "slice({d})"),
            RangeMapper::Neighborhood { extent, shape } => write!(f, "neighborhood({extent:?}, {shape:?})"),
            RangeMapper::EvenSplit { granularity: 1 } => f.write_str("even_split"),
            RangeMapper::EvenSplit { granularity } => write!(f, "even_split({granularity})"),
            RangeMapper::Custom { name, reach: Some(_), .. } => write!(f, "{name} (bounded)"),
            other => f.write_str(other.name()),
        }
    }
}

/// Why a range mapper could not be applied.
#[derive(Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MapperError {
    /// A chunk-shaped mapper between index spaces of different dimensionality.
    #[error("range mapper {mapper} maps a {kernel_dims}D index space, but the buffer is {buffer_dims}D")]
    DimensionMismatch {
        /// Mapper name.
        mapper: &'static str,
        /// Dimensionality of the task's index space.
        kernel_dims: usize,
        /// Dimensionality of the buffer.
        buffer_dims: usize,
    },
    /// A mapper parameter names a dimension the buffer does not have.
    #[error("range mapper {mapper} refers to dimension {dim}, but the buffer is {buffer_dims}D")]
    BadDimension {
        /// Mapper name.
        mapper: &'static str,
        /// The dimension named.
        dim: usize,
        /// Dimensionality of the buffer.
        buffer_dims: usize,
    },
    /// An even split in blocks of 0 rows.
    #[error("range mapper {mapper} hands out rows in blocks of 0: the granularity must be at least 1")]
    ZeroGranularity {
        /// Mapper name.
        mapper: &'static str,
    },
}

/// The same sentence as `Display`, so that `fn main() -> Result<(), Box<dyn Error>>` prints a readable message.
impl std::fmt::Debug for MapperError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Celerity's definition of `even_split`, chunk by chunk (offset `o` and range `r` of `g` items, `b` rows, in
    /// blocks of `k`): every chunk gets `r` steps of `⌊b / (g·k)⌋·k` rows, the remainder goes out in blocks to the
    /// first items, one block each, and its part below one block to the chunk that ends the index space.
    fn celerity_rows(o: usize, r: usize, g: usize, b: usize, k: usize) -> (usize, usize) {
        if g == 0 {
            return (0, 0);
        }
        let step = b / (g * k) * k;
        let remainder = b - g * step;
        let before = (remainder / k * k).min(o * k);
        let mut rows = r * step;
        if remainder > before {
            rows += r.min((remainder - before) / k) * k;
            if o + r == g {
                rows += remainder % k;
            }
        }
        (o * step + before, rows)
    }

    fn even_split(granularity: usize) -> RangeMapper {
        RangeMapper::EvenSplit { granularity }
    }

    #[test]
    fn even_split_matches_celeritys_definition_for_every_chunk() {
        for start in [0, 7] {
            for g in 1..=9 {
                let space = GridBox::d1(start, start + g);
                for b in 0..=30 {
                    let buffer = GridBox::d2([0, 0], [b, 3]);
                    for k in 1..=4 {
                        for o in 0..g {
                            for r in 1..=g - o {
                                let chunk = GridBox::d1(start + o, start + o + r);
                                let got = even_split(k).apply(&chunk, &space, 1, &buffer, 2).unwrap();
                                let (first, rows) = celerity_rows(o, r, g, b, k);
                                let want = Region::from(GridBox::d2([first, 0], [first + rows, 3]));
                                assert_eq!(got, want, "chunk {chunk} of {space}, {b} rows in blocks of {k}");
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn even_split_covers_the_buffer_once_whatever_the_index_space() {
        // More items than rows, uneven divisions, a remainder below one block: the items' rows tile the buffer.
        for (g, b, k) in [(8, 3, 1), (3, 10, 1), (4, 10, 3), (5, 5, 2), (2, 1, 4), (16, 100, 7)] {
            let space = GridBox::d1(100, 100 + g);
            let buffer = GridBox::from_extent(&[b, 2, 2]);
            let mut next = 0;
            for i in 0..g {
                let item = GridBox::d1(100 + i, 101 + i);
                let rows = even_split(k).apply(&item, &space, 1, &buffer, 3).unwrap();
                if let Some(bx) = rows.boxes().first() {
                    assert_eq!((bx.min(), bx.max()[1], bx.max()[2]), ([next, 0, 0], 2, 2));
                    next = bx.max()[0];
                }
            }
            assert_eq!(next, b, "{g} items over {b} rows in blocks of {k}");
        }
    }

    #[test]
    fn even_split_counts_items_from_the_start_of_the_index_space() {
        // The same chunk position in two index spaces with different offsets maps to the same rows; the same
        // absolute chunk in index spaces of different length does not.
        let buffer = GridBox::d1(0, 12);
        let split = even_split(1);
        let at = |chunk, space| split.apply(&chunk, &space, 1, &buffer, 1).unwrap();
        assert_eq!(at(GridBox::d1(1, 2), GridBox::d1(0, 4)), at(GridBox::d1(11, 12), GridBox::d1(10, 14)));
        assert_eq!(at(GridBox::d1(1, 2), GridBox::d1(0, 4)), Region::from(GridBox::d1(3, 6)));
        assert_eq!(at(GridBox::d1(1, 2), GridBox::d1(0, 3)), Region::from(GridBox::d1(4, 8)));
        // A 2D index space splits along its dimension 0 only.
        let rows = split.apply(&GridBox::d2([2, 0], [3, 5]), &GridBox::d2([0, 0], [4, 5]), 2, &buffer, 1).unwrap();
        assert_eq!(rows, Region::from(GridBox::d1(6, 9)));
    }

    #[test]
    fn even_split_reach_holds_exactly_the_items_that_touch_the_cells() {
        for (g, b, k) in [(4, 10, 1), (8, 3, 1), (4, 10, 3), (3, 17, 2), (6, 6, 1), (5, 0, 1)] {
            let space = GridBox::d1(3, 3 + g);
            let buffer = GridBox::d2([0, 0], [b, 4]);
            let split = even_split(k);
            let rows_of = |i: usize| split.apply(&GridBox::d1(3 + i, 4 + i), &space, 1, &buffer, 2).unwrap();
            for lo in 0..=b {
                for hi in lo..=b + 2 {
                    let cells = GridBox::d2([lo, 1], [hi, 2]);
                    let reach = split.reach(&cells, &space, &buffer);
                    let touching: Vec<usize> =
                        (0..g).filter(|&i| rows_of(i).intersects(&Region::from(cells))).collect();
                    for &i in &touching {
                        assert!(reach.contains(&GridBox::d1(3 + i, 4 + i)), "item {i} touches {cells}, reach {reach}");
                    }
                    match (touching.first(), touching.last()) {
                        (Some(&first), Some(&last)) => assert_eq!(reach, GridBox::d1(3 + first, 4 + last), "{cells}"),
                        _ => assert!(reach.is_empty(), "no item touches {cells}, reach {reach}"),
                    }
                }
            }
        }
    }

    #[test]
    fn even_split_refuses_a_zero_granularity_and_a_0d_buffer() {
        let (chunk, buffer) = (GridBox::d1(0, 2), GridBox::d1(0, 8));
        let zero = even_split(0).apply(&chunk, &chunk, 1, &buffer, 1).unwrap_err();
        assert_eq!(zero, MapperError::ZeroGranularity { mapper: "even_split" });
        assert!(zero.to_string().contains("granularity must be at least 1"), "{zero}");
        let scalar = even_split(1).apply(&chunk, &chunk, 1, &GridBox::from_extent(&[]), 0).unwrap_err();
        assert_eq!(scalar, MapperError::BadDimension { mapper: "even_split", dim: 0, buffer_dims: 0 });
    }

    #[test]
    fn custom_mappers_receive_the_whole_index_space() {
        let seen = RangeMapper::Custom {
            name: "space",
            f: Arc::new(|chunk: &GridBox, space: &GridBox, _: &GridBox| {
                Region::from(GridBox::d1(space.min()[0] + chunk.min()[0], space.max()[0] + chunk.max()[0]))
            }),
            reach: None,
        };
        let got = seen.apply(&GridBox::d1(5, 6), &GridBox::d1(4, 9), 1, &GridBox::d1(0, 100), 1).unwrap();
        assert_eq!(got, Region::from(GridBox::d1(9, 15)));
    }
}
