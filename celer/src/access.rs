//! Range mappers: which part of a buffer each chunk of a task's index space touches.
//!
//! Each mapper is a small type that implements [`Mapper<KD, BD>`] for the kernel and buffer dimensionalities it
//! supports, so a mismatch — say [`one_to_one`] from a 1D kernel onto a 2D buffer — is a compile error, not a
//! runtime one. [`custom`] takes any closure and is checked at run time instead; [`custom_in`] also hands it the
//! task's whole index space.
//!
//! | mapper | chunk `[o, o+r)` touches |
//! |---|---|
//! | [`one_to_one`] | the same cells `[o, o+r)` |
//! | [`all`] | the whole buffer |
//! | [`fixed`] | one fixed box, whatever the chunk |
//! | [`slice()`] | the chunk, extended to the whole buffer along one dimension |
//! | [`neighborhood`] | the chunk grown by `k` cells on every side (clamped to the buffer) |
//! | [`neighborhood_along_axes`] | the same, without the diagonal corners (a "+" stencil) |
//! | [`transposed`] | the chunk with dimensions 0 and 1 swapped (2D) |
//! | [`even_split`] | its share of the buffer's rows: the rows split evenly over the index space's items along dimension 0 |

use std::sync::Arc;

use celer_scheduler::graph::{self as layer, NeighborhoodShape, RangeMapper};

use crate::geometry::{GridBox, Region};

/// A range mapper from a `KD`-dimensional index space onto a `BD`-dimensional buffer: one of this module's mappers.
/// The trait is sealed; a mapper of a program's own is written with [`custom`] (and [`Custom::reach`]).
#[diagnostic::on_unimplemented(
    message = "`{Self}` does not map a {KD}-dimensional index space onto a {BD}-dimensional buffer",
    label = "this range mapper is not for a {KD}D task over a {BD}D buffer",
    note = "one_to_one, slice and neighborhood map an index space onto a buffer of the same dimensionality, \
            transposed a 2D one onto a 2D buffer; all and fixed take any pair, even_split any buffer of 1 to 3 \
            dimensions; for another pair write the mapping with access::custom (docs/GUIDE.md, \"Range mappers\")"
)]
pub trait Mapper<const KD: usize, const BD: usize>: sealed::Sealed {
    /// The dimension-erased form the task graph records (celer's own use).
    #[doc(hidden)]
    fn into_range_mapper(self) -> RangeMapper;

    /// For [`fixed`]: its offset and range as given, so that `submit` can refuse a box whose end overflows
    /// (celer's own use).
    #[doc(hidden)]
    fn fixed_box(&self) -> Option<(&[usize], &[usize])> {
        None
    }
}

mod sealed {
    /// Implemented by this module's mappers only, so that no program depends on the task graph's mapper type.
    pub trait Sealed {}
    impl Sealed for super::OneToOne {}
    impl Sealed for super::All {}
    impl<const BD: usize> Sealed for super::Fixed<BD> {}
    impl Sealed for super::Slice {}
    impl<const D: usize> Sealed for super::Neighborhood<D> {}
    impl Sealed for super::Transposed {}
    impl Sealed for super::EvenSplit {}
    impl<const KD: usize, const BD: usize> Sealed for super::Custom<KD, BD> {}
}

/// Each chunk touches exactly its own index range.
#[derive(Clone, Copy, Debug, Default)]
pub struct OneToOne;

/// Each chunk touches [`one_to_one`]'s cells.
pub fn one_to_one() -> OneToOne {
    OneToOne
}

impl<const D: usize> Mapper<D, D> for OneToOne {
    fn into_range_mapper(self) -> RangeMapper {
        RangeMapper::OneToOne
    }
}

/// Every chunk touches the whole buffer.
#[derive(Clone, Copy, Debug, Default)]
pub struct All;

/// Every chunk touches the whole buffer.
pub fn all() -> All {
    All
}

impl<const KD: usize, const BD: usize> Mapper<KD, BD> for All {
    fn into_range_mapper(self) -> RangeMapper {
        RangeMapper::All
    }
}

/// Every chunk touches one fixed box.
#[derive(Clone, Copy, Debug)]
pub struct Fixed<const BD: usize> {
    offset: [usize; BD],
    range: [usize; BD],
}

/// Every chunk touches the box at `offset` of extent `range`.
pub fn fixed<const BD: usize>(offset: [usize; BD], range: [usize; BD]) -> Fixed<BD> {
    Fixed { offset, range }
}

impl<const KD: usize, const BD: usize> Mapper<KD, BD> for Fixed<BD> {
    fn into_range_mapper(self) -> RangeMapper {
        RangeMapper::Fixed(layer::GridBox::from_subrange(&self.offset, &self.range))
    }

    fn fixed_box(&self) -> Option<(&[usize], &[usize])> {
        Some((&self.offset, &self.range))
    }
}

/// The chunk, extended along one dimension to the buffer's whole extent.
#[derive(Clone, Copy, Debug)]
pub struct Slice(usize);

/// The chunk, extended along dimension `dim` to the buffer's whole extent (rows of a matrix: `slice(1)`).
pub fn slice(dim: usize) -> Slice {
    Slice(dim)
}

impl<const D: usize> Mapper<D, D> for Slice {
    fn into_range_mapper(self) -> RangeMapper {
        RangeMapper::Slice(self.0)
    }
}

/// The chunk grown on each side.
#[derive(Clone, Copy, Debug)]
pub struct Neighborhood<const D: usize> {
    extent: [usize; D],
    shape: NeighborhoodShape,
}

/// The chunk grown by `extent[d]` cells on both sides along each dimension `d`, diagonal corners included.
pub fn neighborhood<const D: usize>(extent: [usize; D]) -> Neighborhood<D> {
    Neighborhood { extent, shape: NeighborhoodShape::BoundingBox }
}

/// The chunk grown along each axis separately, without the diagonal corners: what a "+" stencil reads.
pub fn neighborhood_along_axes<const D: usize>(extent: [usize; D]) -> Neighborhood<D> {
    Neighborhood { extent, shape: NeighborhoodShape::AlongAxes }
}

impl<const D: usize> Mapper<D, D> for Neighborhood<D> {
    fn into_range_mapper(self) -> RangeMapper {
        let mut extent = [0; 3];
        extent[..D].copy_from_slice(&self.extent);
        RangeMapper::Neighborhood { extent, shape: self.shape }
    }
}

/// The chunk with dimensions 0 and 1 swapped.
#[derive(Clone, Copy, Debug, Default)]
pub struct Transposed;

/// The chunk with dimensions 0 and 1 swapped: item `[i, j]` touches cell `[j, i]`.
pub fn transposed() -> Transposed {
    Transposed
}

impl Mapper<2, 2> for Transposed {
    fn into_range_mapper(self) -> RangeMapper {
        RangeMapper::Transposed
    }
}

/// The buffer's rows (its dimension 0) split evenly over the items of the index space along its dimension 0.
#[derive(Clone, Copy, Debug)]
pub struct EvenSplit {
    granularity: usize,
}

/// The buffer's rows split evenly over the index space, Celerity's `experimental::access::even_split`: each item
/// along the index space's dimension 0 gets a contiguous block of rows (the buffer's dimension 0) and every cell
/// along the buffer's other dimensions. With `G` items and `B` rows, every item gets `⌊B / G⌋` rows and the first
/// `B mod G` items one more: item `i`, counted from the start of the index space, holds rows `[i·⌊B/G⌋ + min(i, B mod
/// G), (i + 1)·⌊B/G⌋ + min(i + 1, B mod G))`, so with more items than rows the last items get none. A chunk gets
/// the rows of its items.
///
/// Meant for a collective host task (item `r` is rank `r`), where it hands each rank a contiguous block of a buffer
/// to read or write, say for I/O, whatever the rank count. Its positions count from the start of the index space,
/// so an index space with an offset splits the buffer as one without (Celerity measures from index 0). In a 2D or 3D
/// index space, items with the same index along dimension 0 touch the same rows: a task writing through it must be
/// split along dimension 0 only (the default; with `split_2d`, two ranks would write the same rows, which `submit`
/// refuses). The command graph finds which chunks touch a box of rows by arithmetic, as for the built-in mappers.
///
/// ```
/// use celer::{access, task, Queue};
/// let q = Queue::builder().dry_run(3).build()?;
/// let m = q.buffer::<f32, 2>([10, 4]);
/// // Rank 0 gets rows [0, 4), rank 1 [4, 7), rank 2 [7, 10), all 4 columns each.
/// q.submit(task::host_collective().discard_write(&m, access::even_split()).run(|_ctx| {}))?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn even_split() -> EvenSplit {
    EvenSplit { granularity: 1 }
}

impl EvenSplit {
    /// Hands out rows in blocks of `rows` (Celerity's granularity along dimension 0): every item gets
    /// `⌊B / (G·rows)⌋·rows` rows, the first items one block more each while the remainder lasts, and the item that
    /// ends the index space the rows left over below one block. A granularity of 0 is refused by `submit`.
    pub fn granularity(self, rows: usize) -> Self {
        EvenSplit { granularity: rows }
    }
}

macro_rules! even_split_dims {
    ($($kd:literal => $($bd:literal),+);+) => {
        $($(impl Mapper<$kd, $bd> for EvenSplit {
            fn into_range_mapper(self) -> RangeMapper {
                RangeMapper::EvenSplit { granularity: self.granularity }
            }
        })+)+
    };
}
even_split_dims!(1 => 1, 2, 3; 2 => 1, 2, 3; 3 => 1, 2, 3);

/// A user-defined mapper from a `KD`-dimensional index space onto a `BD`-dimensional buffer (see [`custom`] and
/// [`custom_in`]).
pub struct Custom<const KD: usize, const BD: usize>(RangeMapper);

impl<const KD: usize, const BD: usize> Clone for Custom<KD, BD> {
    fn clone(&self) -> Self {
        Custom(self.0.clone())
    }
}

impl<const KD: usize, const BD: usize> std::fmt::Debug for Custom<KD, BD> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Custom({})", self.0.name())
    }
}

/// A user-defined mapper: `f(chunk, buffer_extent)` returns the region of the buffer the chunk touches. `name`
/// appears in errors.
///
/// The chunk is a [`GridBox<KD>`] of the task's index space, the buffer's extent a [`GridBox<BD>`] and the result a
/// [`Region<BD>`], so `chunk.min()` is a `[usize; KD]` and a region of the wrong dimensionality does not compile.
/// Every rank evaluates the closure for every chunk (its own and the others'), so it must be a pure function of
/// its arguments, and each task costs every rank O(ranks) evaluations; [`Custom::reach`] makes it as cheap as a
/// built-in mapper. A region outside the buffer is refused with an error naming the task and buffer. A task over an
/// empty index space never calls it.
///
/// ```
/// use celer::{access, task, GridBox, Kernel, Queue, Region};
/// let q = Queue::dry_run();
/// let rows = q.buffer::<f32, 2>([64, 16]);
/// // Item i (of a 1D index space) reads row i of the matrix.
/// let row_of = access::custom("row_of", |chunk: &GridBox<1>, m: &GridBox<2>| {
///     Region::from(GridBox::new([chunk.min()[0], 0], [chunk.max()[0], m.max()[1]]))
/// });
/// q.submit(task::parallel_for(&Kernel::named("k"), [64]).read(&rows, row_of))?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn custom<const KD: usize, const BD: usize, F>(name: &'static str, f: F) -> Custom<KD, BD>
where
    F: Fn(&GridBox<KD>, &GridBox<BD>) -> Region<BD> + Send + Sync + 'static,
{
    let untyped = move |chunk: &layer::GridBox, _: &layer::GridBox, buffer: &layer::GridBox| {
        f(&GridBox::from_untyped(*chunk), &GridBox::from_untyped(*buffer)).into_untyped()
    };
    Custom(RangeMapper::Custom { name, f: Arc::new(untyped), reach: None })
}

/// A user-defined mapper that also sees the task's whole index space: `f(chunk, index_space, buffer_extent)`
/// returns the region of the buffer the chunk touches, as a Celerity range mapper that reads `chunk.global_size`.
/// `name` appears in errors.
///
/// `index_space` is the box of the task's items, its offset (`.offset(..)`) included, so `index_space.range()` is
/// Celerity's global size; the chunk lies inside it, in the same absolute indices. Everything else is as for
/// [`custom`] (a pure function of its arguments, evaluated for every chunk unless it declares a [`Custom::reach`],
/// refused when it leaves the buffer). A constructor of its own rather than a chunk type carrying the index space:
/// the closures written for [`custom`], with their `&GridBox<KD>` chunk parameter, keep compiling unchanged, and
/// the index space costs the mappers that ignore it nothing.
///
/// ```
/// use celer::{access, task, GridBox, Kernel, Queue, Region};
/// let q = Queue::dry_run();
/// let coarse = q.buffer::<f32, 1>([8]);
/// // The index space, wherever it starts, maps onto the whole coarse buffer: item k (of n) reads cell 8 k / n.
/// let scaled = access::custom_in("scaled", |chunk: &GridBox<1>, space: &GridBox<1>, b: &GridBox<1>| {
///     let (start, n, cells) = (space.min()[0], space.range()[0], b.range()[0]);
///     let at = |i: usize| (i - start) * cells / n;
///     Region::from(GridBox::d1(at(chunk.min()[0]), at(chunk.max()[0] - 1) + 1))
/// });
/// q.submit(task::parallel_for(&Kernel::named("k"), [64]).offset([100]).read(&coarse, scaled))?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn custom_in<const KD: usize, const BD: usize, F>(name: &'static str, f: F) -> Custom<KD, BD>
where
    F: Fn(&GridBox<KD>, &GridBox<KD>, &GridBox<BD>) -> Region<BD> + Send + Sync + 'static,
{
    let untyped = move |chunk: &layer::GridBox, space: &layer::GridBox, buffer: &layer::GridBox| {
        f(&GridBox::from_untyped(*chunk), &GridBox::from_untyped(*space), &GridBox::from_untyped(*buffer))
            .into_untyped()
    };
    Custom(RangeMapper::Custom { name, f: Arc::new(untyped), reach: None })
}

impl<const KD: usize, const BD: usize> Custom<KD, BD> {
    /// Declares the mapper's inverse bound: `reach(cells, range)` returns a box of kernel indices (within the task's
    /// index space `range`) holding every item that touches any of `cells`. celer then evaluates the mapper only for
    /// the chunks inside that box, so a task costs each rank work in proportion to its neighbours, not to the rank
    /// count.
    ///
    /// Declaring a reach also promises that the mapper is *additive*: a chunk touches exactly the union of what its
    /// items touch (true of every mapper that describes per-item accesses). A returned box larger than needed is
    /// correct but slower; `range` itself is always correct. Each rank checks its own chunk against the reach and
    /// refuses the task with an error naming the mapper when the chunk lies outside the reach of its own cells.
    ///
    /// ```
    /// use celer::access;
    /// use celer::{GridBox, Region};
    /// // Item i reads row i of a matrix: only items of the rows asked about touch them.
    /// let rows = access::custom("rows", |chunk: &GridBox<1>, m: &GridBox<2>| {
    ///     Region::from(GridBox::new([chunk.min()[0], 0], [chunk.max()[0], m.max()[1]]))
    /// })
    /// .reach(|cells: &GridBox<2>, range: &GridBox<1>| GridBox::d1(cells.min()[0], cells.max()[0]).intersection(range));
    /// # let _ = rows;
    /// ```
    pub fn reach<F>(self, reach: F) -> Self
    where
        F: Fn(&GridBox<BD>, &GridBox<KD>) -> GridBox<KD> + Send + Sync + 'static,
    {
        let untyped = move |cells: &layer::GridBox, range: &layer::GridBox| {
            reach(&GridBox::from_untyped(*cells), &GridBox::from_untyped(*range)).untyped()
        };
        match self.0 {
            RangeMapper::Custom { name, f, .. } => {
                Custom(RangeMapper::Custom { name, f, reach: Some(Arc::new(untyped)) })
            }
            other => Custom(other),
        }
    }
}

impl<const KD: usize, const BD: usize> Mapper<KD, BD> for Custom<KD, BD> {
    fn into_range_mapper(self) -> RangeMapper {
        self.0
    }
}
