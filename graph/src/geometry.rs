//! Index-space geometry: [`GridBox`] (a half-open box) and [`Region`] (a normalized set of disjoint boxes).
//!
//! Everything is stored in three dimensions; 1D and 2D objects leave their unused trailing dimensions at `[0, 1)`,
//! and a 0D object is the single point `[0,0,0]..[1,1,1]`. That keeps every operation dimension-agnostic and lets a
//! 1D kernel access a 2D buffer.
//!
//! A region's boxes are kept in one canonical form (see [`Region::from_boxes`]): two regions covering the same cells
//! hold identical box lists, so equality is a plain comparison.
//!
//! # Examples
//! ```
//! use celer_graph::{GridBox, Region};
//! let a = Region::from(GridBox::d2([0, 0], [4, 4]));
//! let b = Region::from(GridBox::d2([2, 2], [6, 6]));
//! let u = a.union(&b);
//! assert_eq!(u.area(), 16 + 16 - 4);
//! assert_eq!(u.difference(&b), a.difference(&b));
//! assert_eq!(a.intersection(&b), Region::from(GridBox::d2([2, 2], [4, 4])));
//! ```

use std::fmt;

use smallvec::SmallVec;

mod slabs;

#[cfg(test)]
use slabs::in_slab_order;
pub(crate) use slabs::{
    apart_along_one_dimension, complement_in, for_each_meeting, for_each_meeting_at, INDEXED_BOXES,
};
use slabs::{many_pairs, merge_intervals, merged_pair, normalize_dim, same_in, Scratch};

/// The largest number of dimensions celer supports.
pub const MAX_DIMS: usize = 3;

/// A half-open box `[min, max)` of cells in a 3D index space. Empty boxes are normalized to all zeros.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct GridBox {
    min: [usize; MAX_DIMS],
    max: [usize; MAX_DIMS],
}

impl GridBox {
    /// The empty box.
    pub const EMPTY: GridBox = GridBox { min: [0; 3], max: [0; 3] };

    /// A box from corner coordinates: `[min, max)`, empty where `max == min` along some dimension.
    ///
    /// # Panics
    /// If `min` exceeds `max` along some dimension (crossed corners are a bug in the caller's arithmetic, most often
    /// a custom range mapper's; the message names the dimension and both corners). Code that computes corners which
    /// may cross on purpose (an intersection, a box shrunk to alignment) calls [`new_or_empty`](Self::new_or_empty).
    ///
    /// # Examples
    /// ```
    /// use celer_graph::GridBox;
    /// assert_eq!(GridBox::new([2, 0, 0], [4, 8, 1]).range(), [2, 8, 1]);
    /// assert!(GridBox::new([4, 0, 0], [4, 8, 1]).is_empty());
    /// assert!(std::panic::catch_unwind(|| GridBox::new([7, 0, 0], [3, 1, 1])).is_err());
    /// ```
    #[inline]
    #[track_caller]
    pub fn new(min: [usize; MAX_DIMS], max: [usize; MAX_DIMS]) -> Self {
        // Spelled out per dimension: the iterator form is not always unrolled, and this runs on every box op. Only
        // an empty result pays for the check of crossed corners.
        if max[0] <= min[0] || max[1] <= min[1] || max[2] <= min[2] {
            if max[0] < min[0] || max[1] < min[1] || max[2] < min[2] {
                Self::crossed_corners("GridBox::new", &min, &max);
            }
            Self::EMPTY
        } else {
            Self { min, max }
        }
    }

    /// A box from corner coordinates that may cross: [`EMPTY`](Self::EMPTY) where `max <= min` along any
    /// dimension, `[min, max)` otherwise. For corners computed so that crossing means "nothing left" (the overlap
    /// of two boxes, a box shrunk to whole workgroups); a box the program describes goes through
    /// [`new`](Self::new), which refuses crossed corners.
    ///
    /// # Examples
    /// ```
    /// use celer_graph::GridBox;
    /// assert_eq!(GridBox::new_or_empty([7, 0, 0], [3, 1, 1]), GridBox::EMPTY);
    /// assert_eq!(GridBox::new_or_empty([3, 0, 0], [7, 1, 1]), GridBox::d1(3, 7));
    /// ```
    #[inline]
    pub fn new_or_empty(min: [usize; MAX_DIMS], max: [usize; MAX_DIMS]) -> Self {
        if max[0] <= min[0] || max[1] <= min[1] || max[2] <= min[2] {
            Self::EMPTY
        } else {
            Self { min, max }
        }
    }

    /// A 1D box `[min, max)` (empty for `min == max`).
    ///
    /// # Panics
    /// If `min > max`, as [`new`](Self::new): `GridBox::d1(7, 3)` is a bug, not the empty box.
    #[inline]
    #[track_caller]
    pub fn d1(min: usize, max: usize) -> Self {
        if max < min {
            Self::crossed_corners("GridBox::d1", &[min], &[max]);
        }
        Self::new_or_empty([min, 0, 0], [max, 1, 1])
    }

    /// A 2D box `[min, max)`.
    ///
    /// # Panics
    /// If `min` exceeds `max` along either dimension, as [`new`](Self::new).
    #[inline]
    #[track_caller]
    pub fn d2(min: [usize; 2], max: [usize; 2]) -> Self {
        if max[0] < min[0] || max[1] < min[1] {
            Self::crossed_corners("GridBox::d2", &min, &max);
        }
        Self::new_or_empty([min[0], min[1], 0], [max[0], max[1], 1])
    }

    /// A 3D box `[min, max)` (the same as [`new`](Self::new)).
    ///
    /// # Panics
    /// If `min` exceeds `max` along some dimension, as [`new`](Self::new).
    #[inline]
    #[track_caller]
    pub fn d3(min: [usize; 3], max: [usize; 3]) -> Self {
        if max[0] < min[0] || max[1] < min[1] || max[2] < min[2] {
            Self::crossed_corners("GridBox::d3", &min, &max);
        }
        Self::new_or_empty(min, max)
    }

    /// Panics for a box whose `min` exceeds its `max` along some dimension: the panic of [`new`](Self::new) and
    /// its kin, naming `what` was called (`"GridBox::d1"`, whose corners print as numbers, the others' as arrays),
    /// with the corners as given, the first dimension where they cross, and both coordinates there. Public for wrappers that take corners in fewer dimensions (celer's
    /// typed boxes), so that every constructor words it alike.
    ///
    /// # Panics
    /// Always.
    ///
    /// # Examples
    /// ```should_panic
    /// // GridBox::d2([0, 7], [4, 3]): min 7 exceeds max 3 along dimension 1; ...
    /// celer_graph::GridBox::crossed_corners("GridBox::d2", &[0, 7], &[4, 3]);
    /// ```
    #[cold]
    #[inline(never)]
    #[track_caller]
    pub fn crossed_corners(what: &str, min: &[usize], max: &[usize]) -> ! {
        // Kept out of line: the constructors inline into every box operation, and only a bug comes here.
        let d = (0..min.len().min(max.len())).find(|&d| max[d] < min[d]).unwrap_or(0);
        let list = |c: &[usize]| c.iter().map(|v| v.to_string()).collect::<Vec<_>>().join(", ");
        // `d1` takes its corners as numbers, the others as arrays: the message shows the call as written.
        let args = if what.ends_with("::d1") && min.len() == 1 && max.len() == 1 {
            format!("{}, {}", min[0], max[0])
        } else {
            format!("[{}], [{}]", list(min), list(max))
        };
        let (lo, hi) = (min.get(d).copied().unwrap_or(0), max.get(d).copied().unwrap_or(0));
        panic!(
            "{what}({args}): min {lo} exceeds max {hi} along dimension {d}; a box [min, max) needs min <= max along \
             every dimension (min == max is the empty box)"
        )
    }

    /// The box at `offset` with extent `range`, given in `offset.len()` (0 to 3) dimensions.
    ///
    /// # Panics
    /// If the slices differ in length or are longer than three.
    #[inline]
    pub fn from_subrange(offset: &[usize], range: &[usize]) -> Self {
        assert_eq!(offset.len(), range.len(), "offset and range must have the same dimensionality");
        assert!(offset.len() <= MAX_DIMS, "at most {MAX_DIMS} dimensions are supported");
        let mut min = [0; 3];
        let mut max = [1; 3];
        for d in 0..offset.len() {
            min[d] = offset[d];
            max[d] = offset[d].saturating_add(range[d]);
        }
        Self::new(min, max)
    }

    /// The box `[0, extent)`, in `extent.len()` dimensions.
    #[inline]
    pub fn from_extent(extent: &[usize]) -> Self {
        Self::from_subrange(&[0; 3][..extent.len()], extent)
    }

    /// Lower corner (inclusive).
    #[inline]
    pub fn min(&self) -> [usize; MAX_DIMS] {
        self.min
    }

    /// Upper corner (exclusive).
    #[inline]
    pub fn max(&self) -> [usize; MAX_DIMS] {
        self.max
    }

    /// Extent along each dimension.
    #[inline]
    pub fn range(&self) -> [usize; MAX_DIMS] {
        [self.max[0] - self.min[0], self.max[1] - self.min[1], self.max[2] - self.min[2]]
    }

    /// Whether the box holds no cell.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.max[0] == 0
    }

    /// Number of cells. An empty box is stored as all zeros, so its area is 0 however large the extents it was
    /// made from (`from_extent(&[1 << 40, 1 << 40, 0])`); a non-empty box's area is multiplied unchecked: every
    /// box the layers hold lies in a buffer or an index space whose cell count `celer` checked.
    #[inline]
    pub fn area(&self) -> usize {
        let r = self.range();
        r[0] * r[1] * r[2]
    }

    /// The cells both boxes hold (possibly empty).
    #[inline]
    pub fn intersection(&self, other: &GridBox) -> GridBox {
        let mut min = [0; 3];
        let mut max = [0; 3];
        for d in 0..MAX_DIMS {
            min[d] = self.min[d].max(other.min[d]);
            max[d] = self.max[d].min(other.max[d]);
        }
        // Boxes apart along some dimension give crossed corners there: no overlap.
        GridBox::new_or_empty(min, max)
    }

    /// Whether the boxes share at least one cell.
    #[inline]
    pub fn intersects(&self, other: &GridBox) -> bool {
        let (a, b) = (self, other);
        a.min[0] < b.max[0]
            && b.min[0] < a.max[0]
            && a.min[1] < b.max[1]
            && b.min[1] < a.max[1]
            && a.min[2] < b.max[2]
            && b.min[2] < a.max[2]
    }

    /// Whether `other` lies entirely inside `self` (the empty box lies inside every box).
    #[inline]
    pub fn contains(&self, other: &GridBox) -> bool {
        let (a, b) = (self, other);
        b.is_empty()
            || (a.min[0] <= b.min[0]
                && b.max[0] <= a.max[0]
                && a.min[1] <= b.min[1]
                && b.max[1] <= a.max[1]
                && a.min[2] <= b.min[2]
                && b.max[2] <= a.max[2])
    }

    /// The smallest box holding all of `boxes` (empty for none).
    pub fn bounding_box_of(boxes: &[GridBox]) -> GridBox {
        Self::bounding_box_of_iter(boxes.iter().copied())
    }

    /// [`bounding_box_of`](Self::bounding_box_of) for boxes from an iterator.
    pub fn bounding_box_of_iter(boxes: impl IntoIterator<Item = GridBox>) -> GridBox {
        boxes.into_iter().fold(GridBox::EMPTY, |acc, b| acc.bounding_box(&b))
    }

    /// The smallest box holding both.
    #[inline]
    pub fn bounding_box(&self, other: &GridBox) -> GridBox {
        if self.is_empty() {
            return *other;
        }
        if other.is_empty() {
            return *self;
        }
        let mut min = [0; 3];
        let mut max = [0; 3];
        for d in 0..MAX_DIMS {
            min[d] = self.min[d].min(other.min[d]);
            max[d] = self.max[d].max(other.max[d]);
        }
        GridBox { min, max }
    }

    /// Calls `f` with the up to six disjoint pieces of `self` that lie outside `other`.
    #[inline]
    pub fn subtract_into(&self, other: &GridBox, mut f: impl FnMut(GridBox)) {
        if !self.intersects(other) {
            if !self.is_empty() {
                f(*self);
            }
            return;
        }
        let mut rest = *self;
        for d in 0..MAX_DIMS {
            if rest.min[d] < other.min[d] {
                let mut piece = rest;
                piece.max[d] = other.min[d];
                f(piece);
                rest.min[d] = other.min[d];
            }
            if other.max[d] < rest.max[d] {
                let mut piece = rest;
                piece.min[d] = other.max[d];
                f(piece);
                rest.max[d] = other.max[d];
            }
        }
    }

    /// Calls `f` with disjoint pieces of `self` that together hold exactly its cells outside every box of `cut`
    /// (which may overlap), without building a region: a box a write cut into keeps its pieces as they come.
    pub fn subtract_all_into(&self, cut: &[GridBox], mut f: impl FnMut(GridBox)) {
        fn pieces(b: GridBox, cut: &[GridBox], f: &mut dyn FnMut(GridBox)) {
            match cut.split_first() {
                None => f(b),
                Some((c, rest)) if b.intersects(c) => b.subtract_into(c, |p| pieces(p, rest, f)),
                Some((_, rest)) => pieces(b, rest, f),
            }
        }
        match cut {
            [c] => self.subtract_into(c, f),
            _ => pieces(*self, cut, &mut f),
        }
    }

    /// Number of leading dimensions that are not trivially `[0, 1)`, i.e. the smallest dimensionality that holds it.
    #[inline]
    pub fn effective_dims(&self) -> usize {
        (0..MAX_DIMS).rev().find(|&d| self.min[d] != 0 || self.max[d] != 1).map_or(0, |d| d + 1)
    }

    /// The box with dimensions `d0` and `d1` swapped.
    #[inline]
    pub fn transposed(&self, d0: usize, d1: usize) -> GridBox {
        let mut b = *self;
        b.min.swap(d0, d1);
        b.max.swap(d0, d1);
        b
    }
}

impl fmt::Debug for GridBox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for GridBox {
    /// Prints `[0,0] - [4,4]` in the box's effective dimensionality (at least 1).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return write!(f, "[]");
        }
        let dims = self.effective_dims().max(1);
        let list = |c: &[usize]| c[..dims].iter().map(|v| v.to_string()).collect::<Vec<_>>().join(",");
        write!(f, "[{}] - [{}]", list(&self.min), list(&self.max))
    }
}

/// A buffer's extent as messages print it: its box (`[0,0] - [4,8]`) where it holds cells, else its shape (`[4, 0]`,
/// the extent per dimension), which the box of an empty buffer, normalised to all zeros ([`GridBox::EMPTY`]), lost.
///
/// # Examples
/// ```
/// use celer_graph::{BufferExtent, GridBox};
/// assert_eq!(BufferExtent::new(&[4, 8]).to_string(), "[0,0] - [4,8]");
/// assert_eq!(BufferExtent::new(&[4, 0]).to_string(), "[4, 0]");
/// assert_eq!(BufferExtent::new(&[4, 0]).bounds(), GridBox::EMPTY);
/// assert_eq!(BufferExtent::from(GridBox::d1(0, 16)), BufferExtent::new(&[16]));
/// assert_eq!(BufferExtent::from(GridBox::EMPTY).to_string(), "[0]"); // the box lost the shape
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct BufferExtent {
    /// The box of cells.
    bounds: GridBox,
    /// Cells per dimension; 1 past `dims`.
    shape: [usize; MAX_DIMS],
    /// The buffer's dimensionality.
    dims: usize,
}

impl BufferExtent {
    /// The extent of a buffer of `shape` (its extent per dimension, `shape.len()` dimensions).
    ///
    /// # Panics
    /// If `shape` has more than three dimensions.
    pub fn new(shape: &[usize]) -> Self {
        assert!(shape.len() <= MAX_DIMS, "at most {MAX_DIMS} dimensions are supported");
        let mut s = [1; MAX_DIMS];
        s[..shape.len()].copy_from_slice(shape);
        Self { bounds: GridBox::from_extent(&s), shape: s, dims: shape.len() }
    }

    /// The buffer's box of cells, `[0, shape)` for [`new`](Self::new) (empty, all zeros, where any extent is 0).
    pub fn bounds(&self) -> GridBox {
        self.bounds
    }

    /// The extent per dimension (1 past the buffer's dimensionality).
    pub fn shape(&self) -> [usize; MAX_DIMS] {
        self.shape
    }
}

/// The extent of a buffer whose box is `bounds` (of its effective dimensionality, shaped as the box): an empty box
/// gives the shape `[0]`, having lost the buffer's own; [`BufferExtent::new`] keeps it.
impl From<GridBox> for BufferExtent {
    fn from(bounds: GridBox) -> Self {
        let dims = if bounds.is_empty() { 1 } else { bounds.effective_dims().max(1) };
        let shape = std::array::from_fn(|d| if d < dims { bounds.max[d] - bounds.min[d] } else { 1 });
        Self { bounds, shape, dims }
    }
}

impl fmt::Display for BufferExtent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.bounds.is_empty() {
            write!(f, "{:?}", &self.shape[..self.dims])
        } else {
            fmt::Display::fmt(&self.bounds, f)
        }
    }
}

impl fmt::Debug for BufferExtent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Storage of a region's boxes: most regions are one box, which then needs no heap allocation.
pub type BoxList = SmallVec<[GridBox; 1]>;

/// A set of cells, held as a canonical list of disjoint boxes.
///
/// The canonical form slices the union along dimension 0 into maximal slabs with identical cross-sections, and each
/// cross-section recursively the same way along the next dimension; boxes are ordered by slab. Normalizing `n` boxes
/// sorts them per dimension and sweeps the slabs. Intersections, differences and containment test every pair of boxes
/// for a few boxes; past 64 pairs each box instead finds the other region's boxes it meets by a binary search per
/// dimension in the slab order (`O(log n)` plus what it meets), and a box is cut by many in one walk, so regions of
/// thousands of boxes (a custom mapper of scattered cells) cost about `O(n log n)`.
#[derive(PartialEq, Eq, Hash, Default)]
pub struct Region {
    boxes: BoxList,
}

impl Clone for Region {
    /// Copies the boxes; a one-box region (the common case) is a plain copy, without `SmallVec`'s generic
    /// element-by-element clone.
    #[inline]
    fn clone(&self) -> Self {
        match self.boxes.as_slice() {
            [] => Region::new(),
            [b] => Region { boxes: smallvec::smallvec![*b] },
            boxes => Region { boxes: BoxList::from_slice(boxes) },
        }
    }
}

impl Region {
    /// The empty region.
    #[inline]
    pub fn new() -> Self {
        Self::default()
    }

    /// The union of arbitrary (possibly overlapping, possibly empty) boxes, normalized.
    #[inline]
    pub fn from_boxes(boxes: impl IntoIterator<Item = GridBox>) -> Self {
        let mut list: Scratch = SmallVec::new();
        for b in boxes {
            if !b.is_empty() {
                list.push(b);
            }
        }
        Self::from_scratch(&mut list)
    }

    /// [`from_boxes`](Self::from_boxes) of non-empty boxes already collected on the stack (reordered in place);
    /// taking them by reference spares moving the whole inline buffer.
    fn from_scratch(list: &mut Scratch) -> Self {
        match list.len() {
            0 => Self::new(),
            1 => Self { boxes: smallvec::smallvec![list[0]] },
            // Fast paths for two boxes: together they form one box, or they lie apart along the one dimension they
            // differ in (two halo rows), which is their canonical form already.
            2 if merged_pair(&list[0], &list[1]).is_some() => {
                Self { boxes: smallvec::smallvec![merged_pair(&list[0], &list[1]).unwrap()] }
            }
            2 if apart_along_one_dimension(&list[0], &list[1]) => {
                let (a, b) = (list[0], list[1]);
                let pair = if a.min <= b.min { [a, b] } else { [b, a] };
                Self { boxes: BoxList::from_slice(&pair) }
            }
            // Fast path: one box holds all the others (clamped stencils, repeated accesses).
            n if n <= 8 && list.iter().any(|a| list.iter().all(|b| a.contains(b))) => {
                let a = *list.iter().find(|a| list.iter().all(|b| a.contains(b))).unwrap();
                Self { boxes: smallvec::smallvec![a] }
            }
            _ => {
                // Fast path: the boxes differ along one dimension only (slabs of a 1D split): a sorted interval merge.
                let first = list[0];
                let mut varying = [false; MAX_DIMS];
                for b in list.iter() {
                    for (d, v) in varying.iter_mut().enumerate() {
                        *v |= !same_in(b, &first, d);
                    }
                }
                if varying.iter().filter(|&&v| v).count() <= 1 {
                    let d = varying.iter().position(|&v| v).unwrap_or(0);
                    // Collected on the stack first: growing the one-box inline list would reallocate per box.
                    let mut out: Scratch = SmallVec::new();
                    merge_intervals(list, d, |b| out.push(b));
                    return Self::from_canonical(&out);
                }
                let mut out: Scratch = SmallVec::new();
                normalize_dim(list, 0, &mut out);
                Self::from_canonical(&out)
            }
        }
    }

    /// The boxes, in canonical order.
    #[inline]
    pub fn boxes(&self) -> &[GridBox] {
        &self.boxes
    }

    /// Whether the region holds no cell.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.boxes.is_empty()
    }

    /// Number of cells.
    pub fn area(&self) -> usize {
        self.boxes.iter().map(GridBox::area).sum()
    }

    /// The smallest box holding the region (empty for the empty region).
    #[inline]
    pub fn bounding_box(&self) -> GridBox {
        // A one-box region (the common case: what a chunk's range mapper gives) is its own bounding box.
        match self.boxes() {
            [b] => *b,
            boxes => GridBox::bounding_box_of(boxes),
        }
    }

    /// Cells in either region.
    pub fn union(&self, other: &Region) -> Region {
        if self.is_empty() {
            return other.clone();
        }
        if other.is_empty() || self == other {
            return self.clone();
        }
        if let ([a], [b]) = (self.boxes(), other.boxes()) {
            if a.contains(b) {
                return self.clone();
            }
            if b.contains(a) {
                return other.clone();
            }
        }
        let mut list: Scratch = SmallVec::new();
        list.extend_from_slice(&self.boxes);
        list.extend_from_slice(&other.boxes);
        Region::from_scratch(&mut list)
    }

    /// Adds `other`'s cells: a move when `self` is still empty (a buffer's single access, the common case), else a
    /// union.
    #[inline]
    pub fn absorb(&mut self, other: Region) {
        if self.is_empty() {
            *self = other;
        } else if !other.is_empty() {
            *self = self.union(&other);
        }
    }

    /// Cells in both regions.
    pub fn intersection(&self, other: &Region) -> Region {
        if self.is_empty() || other.is_empty() {
            return Region::new();
        }
        self.intersect_boxes(&other.boxes)
    }

    /// Cells in both the region and the union of `boxes` (disjoint boxes, in any order), without normalizing them
    /// into a region first.
    #[inline]
    pub fn intersect_boxes(&self, boxes: &[GridBox]) -> Region {
        if let ([a], [b]) = (self.boxes(), boxes) {
            return Region::from(a.intersection(b));
        }
        if many_pairs(self.boxes.len(), boxes.len()) {
            return self.intersect_many_boxes(boxes);
        }
        let mut out: Scratch = SmallVec::new();
        for a in &self.boxes {
            for b in boxes {
                let i = a.intersection(b);
                if !i.is_empty() {
                    out.push(i);
                }
            }
        }
        Region::from_scratch(&mut out)
    }

    /// [`intersect_boxes`](Self::intersect_boxes) of many box pairs: each box looks up the region's boxes it meets, in
    /// `O(log n)` plus what it meets.
    #[inline(never)]
    fn intersect_many_boxes(&self, boxes: &[GridBox]) -> Region {
        let mut out: Scratch = SmallVec::new();
        for b in boxes {
            self.for_each_box_meeting(b, |a| {
                out.push(a.intersection(b));
                false
            });
        }
        Region::from_scratch(&mut out)
    }

    /// Calls `f` with each of the region's boxes that intersects `q`, in canonical order, until `f` returns true;
    /// returns whether it did. A binary search per dimension: `O(log n)` plus the boxes met, for a region of `n` boxes.
    #[inline]
    pub fn for_each_box_meeting(&self, q: &GridBox, mut f: impl FnMut(&GridBox) -> bool) -> bool {
        match self.boxes() {
            [a] => a.intersects(q) && f(a),
            // Few boxes: testing each costs less than searching.
            boxes if boxes.len() <= INDEXED_BOXES => boxes.iter().any(|a| a.intersects(q) && f(a)),
            boxes => for_each_meeting(boxes, q, &mut f),
        }
    }

    /// Cells in both the region and the box.
    pub fn intersect_box(&self, b: &GridBox) -> Region {
        if self.boxes.len() == 1 {
            return Region::from(self.boxes[0].intersection(b));
        }
        let mut out: Scratch = SmallVec::new();
        self.for_each_box_meeting(b, |a| {
            out.push(a.intersection(b));
            false
        });
        Region::from_scratch(&mut out)
    }

    /// Cells in `self` but not in `other`.
    pub fn difference(&self, other: &Region) -> Region {
        if self.is_empty() || other.is_empty() {
            return self.clone();
        }
        // Fast path: each box lies inside one box of `other` (a halo or boundary row cleared by a larger write).
        if other.holds_each_box_of(self) {
            return Region::new();
        }
        if let ([a], [b]) = (self.boxes(), other.boxes()) {
            return Region::box_difference(a, b);
        }
        if many_pairs(self.boxes.len(), other.boxes.len()) {
            return self.difference_many(other);
        }
        let mut pieces: Scratch = SmallVec::from_slice(&self.boxes);
        let mut next: Scratch = SmallVec::new();
        for b in &other.boxes {
            for p in &pieces {
                p.subtract_into(b, |q| next.push(q));
            }
            std::mem::swap(&mut pieces, &mut next);
            next.clear();
            if pieces.is_empty() {
                return Region::new();
            }
        }
        if pieces.len() == self.boxes.len() && pieces[..] == self.boxes[..] {
            return self.clone();
        }
        Region::from_scratch(&mut pieces)
    }

    /// [`difference`](Self::difference) of many box pairs: each box is cut by the boxes of `other` it meets, looked up
    /// rather than tested one by one, in one walk ([`complement_in`]).
    #[inline(never)]
    fn difference_many(&self, other: &Region) -> Region {
        let mut pieces: Scratch = SmallVec::new();
        let mut cuts: Scratch = SmallVec::new();
        let mut unchanged = true;
        for a in &self.boxes {
            cuts.clear();
            other.for_each_box_meeting(a, |b| {
                cuts.push(b.intersection(a));
                false
            });
            unchanged &= cuts.is_empty();
            complement_in(a, &cuts, &mut |p| pieces.push(p));
        }
        if unchanged {
            return self.clone();
        }
        Region::from_scratch(&mut pieces)
    }

    /// `a` minus `b`, both single boxes. The pieces [`GridBox::subtract_into`] cuts (below and above `b` along
    /// dimension 0, then along 1 within `b`'s slab, then along 2) are already the canonical slabs; only their order
    /// differs, so sorting them by lower corner gives the canonical form without normalizing.
    fn box_difference(a: &GridBox, b: &GridBox) -> Region {
        if !a.intersects(b) {
            return Region::from(*a);
        }
        let mut pieces: Scratch = SmallVec::new();
        a.subtract_into(b, |p| pieces.push(p));
        if pieces.len() > 1 {
            pieces.sort_unstable_by_key(|p| p.min);
        }
        Region::from_canonical(&pieces)
    }

    /// A region of boxes already in canonical form, with one exact allocation where they do not fit inline.
    #[inline]
    fn from_canonical(boxes: &[GridBox]) -> Region {
        match boxes {
            [b] => Region { boxes: smallvec::smallvec![*b] },
            boxes => Region { boxes: BoxList::from_slice(boxes) },
        }
    }

    /// Whether every cell of `other` is in `self`.
    pub fn contains(&self, other: &Region) -> bool {
        if self.holds_each_box_of(other) {
            return true;
        }
        if self.boxes.len() == 1 {
            return false;
        }
        other.difference(self).is_empty()
    }

    /// Whether each box of `other` lies inside one box of `self`: enough for `self` to contain `other`, and cheap.
    #[inline]
    fn holds_each_box_of(&self, other: &Region) -> bool {
        if many_pairs(self.boxes.len(), other.boxes.len()) {
            return self.holds_each_box_of_many(other);
        }
        other.boxes.iter().all(|b| self.boxes.iter().any(|a| a.contains(b)))
    }

    /// [`holds_each_box_of`](Self::holds_each_box_of) of many box pairs, looked up.
    #[inline(never)]
    fn holds_each_box_of_many(&self, other: &Region) -> bool {
        other.boxes.iter().all(|b| for_each_meeting(&self.boxes, b, &mut |a| a.contains(b)))
    }

    /// Whether every cell of the box is in `self`.
    pub fn contains_box(&self, b: &GridBox) -> bool {
        if b.is_empty() {
            return true;
        }
        if self.for_each_box_meeting(b, |a| a.contains(b)) {
            return true;
        }
        Region::from(*b).difference(self).is_empty()
    }

    /// Whether the regions share a cell.
    pub fn intersects(&self, other: &Region) -> bool {
        match (self.boxes(), other.boxes()) {
            ([a], [b]) => a.intersects(b),
            (boxes, others) if many_pairs(boxes.len(), others.len()) => self.intersects_many(other),
            (boxes, others) => boxes.iter().any(|a| others.iter().any(|b| a.intersects(b))),
        }
    }

    /// [`intersects`](Self::intersects) of many box pairs: each box of the region of fewer looks up the other's.
    #[inline(never)]
    fn intersects_many(&self, other: &Region) -> bool {
        let (few, many) = if self.boxes.len() <= other.boxes.len() { (self, other) } else { (other, self) };
        few.boxes.iter().any(|a| many.intersects_box(a))
    }

    /// Whether the region shares a cell with the box.
    #[inline]
    pub fn intersects_box(&self, b: &GridBox) -> bool {
        match self.boxes() {
            boxes if boxes.len() <= INDEXED_BOXES => boxes.iter().any(|a| a.intersects(b)),
            boxes => for_each_meeting(boxes, b, &mut |_| true),
        }
    }

    /// The region with dimensions `d0` and `d1` swapped.
    pub fn transposed(&self, d0: usize, d1: usize) -> Region {
        Region::from_boxes(self.boxes.iter().map(|b| b.transposed(d0, d1)))
    }
}

impl From<GridBox> for Region {
    fn from(b: GridBox) -> Self {
        if b.is_empty() {
            Region::new()
        } else {
            Region { boxes: smallvec::smallvec![b] }
        }
    }
}

impl FromIterator<GridBox> for Region {
    fn from_iter<I: IntoIterator<Item = GridBox>>(iter: I) -> Self {
        Region::from_boxes(iter)
    }
}

impl fmt::Debug for Region {
    /// Every box, however many.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_boxes(f, &self.boxes, self.boxes.len())
    }
}

impl fmt::Display for Region {
    /// `{[0] - [4], [6] - [8]}`; a region of more than [`DISPLAYED_BOXES`] boxes (a custom mapper of scattered cells,
    /// named in an error message) shows its first boxes, how many it leaves out, and its last box.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_boxes(f, &self.boxes, DISPLAYED_BOXES)
    }
}

/// How many boxes of a region [`Region`]'s `Display` shows in full: messages naming a region of thousands of boxes
/// stay readable.
pub const DISPLAYED_BOXES: usize = 32;

/// Writes `{b0, b1, …}`, or for more than `limit` boxes the first `limit / 2`, the number left out and the last.
fn write_boxes(f: &mut fmt::Formatter<'_>, boxes: &[GridBox], limit: usize) -> fmt::Result {
    write!(f, "{{")?;
    if boxes.len() > limit {
        let head = limit / 2;
        for b in &boxes[..head] {
            write!(f, "{b}, ")?;
        }
        write!(f, "… {} more boxes …, {}", boxes.len() - head - 1, boxes[boxes.len() - 1])?;
        return write!(f, "}}");
    }
    for (i, b) in boxes.iter().enumerate() {
        if i > 0 {
            write!(f, ", ")?;
        }
        write!(f, "{b}")?;
    }
    write!(f, "}}")
}

#[cfg(test)]
mod tests;
