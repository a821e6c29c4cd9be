//! The box and region types of custom range mappers ([`access::custom`](crate::access::custom)), typed by dimension.
//!
//! A [`GridBox<D>`] is a half-open box `[min, max)` of `D`-dimensional coordinates: a chunk of a `D`-dimensional
//! index space, or cells of a `D`-dimensional buffer. A [`Region<D>`] is a set of such cells, kept as disjoint boxes.
//! Both are views of celer's internal three-dimensional geometry (the dimensions past `D` are `[0, 1)`), so a mapper
//! pays nothing for the typing. The untyped layer types stay reachable, outside semver, as
//! `celer::unstable::graph::{GridBox, Region}` (they are what [`TaskErrorKind`](crate::TaskErrorKind)'s fields hold).
//!
//! ```
//! use celer::{GridBox, Region};
//! let chunk = GridBox::new([2, 0], [4, 8]);
//! assert_eq!((chunk.min(), chunk.max(), chunk.range()), ([2, 0], [4, 8], [2, 8]));
//! let rows = Region::from_boxes([chunk, GridBox::new([4, 0], [6, 8])]);
//! assert_eq!(rows.bounding_box(), GridBox::new([2, 0], [6, 8]));
//! assert_eq!(rows.area(), 32);
//! ```

use std::fmt;

use celer_scheduler::graph as layer;

/// A half-open box `[min, max)` of `D`-dimensional coordinates (`D` from 0 to 3). A box with `max == min` in any
/// dimension is empty; every empty box compares equal to every other. `min > max` in some dimension is refused with
/// a panic (see [`new`](Self::new)).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct GridBox<const D: usize>(layer::GridBox);

impl<const D: usize> GridBox<D> {
    /// Refuses, at compile time, a dimensionality celer does not support.
    const SUPPORTED: () = assert!(D <= layer::MAX_DIMS, "celer supports at most 3 dimensions");

    /// The box `[min, max)`; empty if `max[d] == min[d]` in some dimension `d`.
    ///
    /// # Panics
    /// If `min[d] > max[d]` in some dimension `d`: crossed corners are a bug in the arithmetic that computed them
    /// (in a custom range mapper, `GridBox::d1(chunk.max()[0], chunk.min()[0])`), not an empty box, so the program
    /// stops instead of running on with an empty region. The panic points at the caller's line and names the
    /// dimension and both corners: `GridBox::new([0, 7], [4, 3]): min 7 exceeds max 3 along dimension 1; …`. In a
    /// mapper, [`submit`](crate::Queue::submit) then also names the task (or, where only the runtime thread applies
    /// the mapper to a rank's chunk, every rank stops naming it). Corners that may cross on purpose take
    /// [`intersection`](Self::intersection) or a `min(..)`/`max(..)` clamp first.
    ///
    /// # Examples
    /// ```
    /// use celer::GridBox;
    /// assert_eq!(GridBox::new([2, 0], [4, 8]).range(), [2, 8]);
    /// assert!(GridBox::new([4, 0], [4, 8]).is_empty());
    /// assert!(std::panic::catch_unwind(|| GridBox::new([7], [3])).is_err());
    /// ```
    #[track_caller]
    pub fn new(min: [usize; D], max: [usize; D]) -> Self {
        let () = Self::SUPPORTED;
        Self::checked("GridBox::new", min, max)
    }

    /// [`new`](Self::new), naming `what` in the panic.
    #[track_caller]
    fn checked(what: &str, min: [usize; D], max: [usize; D]) -> Self {
        if (0..D).any(|d| max[d] < min[d]) {
            layer::GridBox::crossed_corners(what, &min, &max);
        }
        let (mut lo, mut hi) = ([0; layer::MAX_DIMS], [1; layer::MAX_DIMS]);
        lo[..D].copy_from_slice(&min);
        hi[..D].copy_from_slice(&max);
        Self(layer::GridBox::new_or_empty(lo, hi))
    }

    /// The box at `offset` of extent `range` (`[offset, offset + range)`, saturating at `usize::MAX`).
    pub fn from_subrange(offset: [usize; D], range: [usize; D]) -> Self {
        Self::new(offset, std::array::from_fn(|d| offset[d].saturating_add(range[d])))
    }

    /// The empty box.
    pub fn empty() -> Self {
        Self(layer::GridBox::EMPTY)
    }

    /// The lower corner (inclusive); all zeros for an empty box.
    pub fn min(&self) -> [usize; D] {
        std::array::from_fn(|d| self.0.min()[d])
    }

    /// The upper corner (exclusive); all zeros for an empty box.
    pub fn max(&self) -> [usize; D] {
        std::array::from_fn(|d| self.0.max()[d])
    }

    /// The extent along each dimension (`max - min`).
    pub fn range(&self) -> [usize; D] {
        std::array::from_fn(|d| self.0.range()[d])
    }

    /// Whether the box holds no cell.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The number of cells.
    ///
    /// # Panics
    /// If the count overflows `usize` (`[2^40, 2^40]`, which no buffer or index space reaches); the panic points at
    /// the caller.
    #[track_caller]
    pub fn area(&self) -> usize {
        checked_area(&self.0).unwrap_or_else(|| panic!("the box {self} holds more cells than a usize counts"))
    }

    /// Whether `point` lies in the box.
    pub fn contains_point(&self, point: [usize; D]) -> bool {
        !self.is_empty() && (0..D).all(|d| self.0.min()[d] <= point[d] && point[d] < self.0.max()[d])
    }

    /// Whether every cell of `other` lies in this box (an empty `other` always does).
    pub fn contains(&self, other: &Self) -> bool {
        self.0.contains(&other.0)
    }

    /// The cells both boxes hold (possibly empty).
    pub fn intersection(&self, other: &Self) -> Self {
        Self(self.0.intersection(&other.0))
    }

    /// Whether the boxes share a cell.
    pub fn intersects(&self, other: &Self) -> bool {
        self.0.intersects(&other.0)
    }

    /// The smallest box holding both.
    pub fn bounding_box(&self, other: &Self) -> Self {
        Self(self.0.bounding_box(&other.0))
    }

    /// The box as celer's layers hold it (dimensions past `D` are `[0, 1)`).
    pub(crate) fn untyped(self) -> layer::GridBox {
        self.0
    }

    /// A box of celer's layers that lies in `D` dimensions (an index space or buffer of `D` dimensions).
    pub(crate) fn from_untyped(b: layer::GridBox) -> Self {
        debug_assert!(b.is_empty() || b.effective_dims() <= D, "{b} has more than {D} dimensions");
        Self(b)
    }
}

/// The cells of `b`, or `None` where their count overflows `usize` (the layers' `area` multiplies unchecked: every
/// box they hold lies in a buffer or an index space, whose cells fit).
fn checked_area(b: &layer::GridBox) -> Option<usize> {
    b.range().iter().try_fold(1usize, |n, &r| n.checked_mul(r))
}

impl GridBox<1> {
    /// The one-dimensional box `[min, max)` (empty for `min == max`).
    ///
    /// # Panics
    /// If `min > max`, as [`new`](Self::new): `GridBox::d1(7, 3)` panics with `GridBox::d1(7, 3): min 7 exceeds max
    /// 3 along dimension 0; …` at the caller's line.
    #[track_caller]
    pub fn d1(min: usize, max: usize) -> Self {
        Self::checked("GridBox::d1", [min], [max])
    }
}

impl<const D: usize> fmt::Display for GridBox<D> {
    /// `[2,0] - [4,8]`, or `[]` for an empty box.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() || D == 0 {
            return f.write_str("[]");
        }
        let list = |c: [usize; D]| c.iter().map(|v| v.to_string()).collect::<Vec<_>>().join(",");
        write!(f, "[{}] - [{}]", list(self.min()), list(self.max()))
    }
}

impl<const D: usize> fmt::Debug for GridBox<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A set of `D`-dimensional cells, held as a canonical list of disjoint boxes (equal sets compare equal).
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct Region<const D: usize>(layer::Region);

impl<const D: usize> Region<D> {
    /// The empty region.
    pub fn new() -> Self {
        Self(layer::Region::new())
    }

    /// The union of `boxes` (which may overlap or be empty).
    pub fn from_boxes(boxes: impl IntoIterator<Item = GridBox<D>>) -> Self {
        Self(layer::Region::from_boxes(boxes.into_iter().map(GridBox::untyped)))
    }

    /// The disjoint boxes the region consists of, in canonical order.
    pub fn boxes(&self) -> impl ExactSizeIterator<Item = GridBox<D>> + '_ {
        self.0.boxes().iter().map(|&b| GridBox(b))
    }

    /// Whether the region holds no cell.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The number of cells.
    ///
    /// # Panics
    /// If the count overflows `usize`; the panic points at the caller.
    #[track_caller]
    pub fn area(&self) -> usize {
        self.0
            .boxes()
            .iter()
            .try_fold(0usize, |sum, b| sum.checked_add(checked_area(b)?))
            .unwrap_or_else(|| panic!("the region {self:?} holds more cells than a usize counts"))
    }

    /// The smallest box holding the region (empty for the empty region).
    pub fn bounding_box(&self) -> GridBox<D> {
        GridBox(self.0.bounding_box())
    }

    /// The cells of either region.
    pub fn union(&self, other: &Self) -> Self {
        Self(self.0.union(&other.0))
    }

    /// The cells of both regions.
    pub fn intersection(&self, other: &Self) -> Self {
        Self(self.0.intersection(&other.0))
    }

    /// The cells of this region that are not in `other`.
    pub fn difference(&self, other: &Self) -> Self {
        Self(self.0.difference(&other.0))
    }

    /// Whether every cell of `other` is in this region.
    pub fn contains(&self, other: &Self) -> bool {
        self.0.contains(&other.0)
    }

    /// The region as celer's layers hold it.
    pub(crate) fn into_untyped(self) -> layer::Region {
        self.0
    }
}

impl<const D: usize> From<GridBox<D>> for Region<D> {
    fn from(b: GridBox<D>) -> Self {
        Self(layer::Region::from(b.0))
    }
}

impl<const D: usize> FromIterator<GridBox<D>> for Region<D> {
    fn from_iter<I: IntoIterator<Item = GridBox<D>>>(boxes: I) -> Self {
        Self::from_boxes(boxes)
    }
}

impl<const D: usize> fmt::Display for Region<D> {
    /// `{[0] - [4], [8] - [12]}`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{")?;
        for (i, b) in self.boxes().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{b}")?;
        }
        f.write_str("}")
    }
}

impl<const D: usize> fmt::Debug for Region<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn areas_count_cells_up_to_usize() {
        assert_eq!(GridBox::new([0, 0], [1 << 20, 1 << 20]).area(), 1 << 40);
        assert_eq!(GridBox::<3>::empty().area(), 0);
        let two = Region::from_boxes([GridBox::d1(0, usize::MAX / 2), GridBox::d1(usize::MAX / 2, usize::MAX - 1)]);
        assert_eq!(two.area(), usize::MAX - 1);
    }

    #[test]
    #[should_panic(expected = "the box [0,0] - [1099511627776,1099511627776] holds more cells than a usize counts")]
    fn a_box_area_beyond_usize_panics_instead_of_wrapping() {
        let _ = GridBox::new([0, 0], [1 << 40, 1 << 40]).area();
    }

    #[test]
    #[should_panic(expected = "holds more cells than a usize counts")]
    fn a_region_area_beyond_usize_panics_instead_of_wrapping() {
        let big = GridBox::new([0, 0], [1 << 32, 1 << 31]);
        let _ = Region::from_boxes([big, GridBox::new([1 << 32, 0], [1 << 33, 1 << 31])]).area();
    }

    #[test]
    fn typed_boxes_keep_their_dimensions_and_print_only_those() {
        let b = GridBox::new([1, 2], [3, 5]);
        assert_eq!((b.min(), b.max(), b.range(), b.area()), ([1, 2], [3, 5], [2, 3], 6));
        assert_eq!(b.to_string(), "[1,2] - [3,5]");
        assert_eq!(b.untyped(), layer::GridBox::d2([1, 2], [3, 5]));
        assert!(b.contains_point([2, 4]) && !b.contains_point([3, 4]));
        assert!(GridBox::new([4], [4]).is_empty());
        assert_eq!(GridBox::new([4, 1], [6, 1]), GridBox::empty());
        assert_eq!(GridBox::from_subrange([8], [4]), GridBox::d1(8, 12));
        assert_eq!(GridBox::<0>::new([], []).area(), 1, "a zero-dimensional box holds one cell");
    }

    #[test]
    #[should_panic(expected = "GridBox::d1(7, 3): min 7 exceeds max 3 along dimension 0; a box [min, max) needs")]
    fn a_typed_1d_box_with_min_past_max_panics_naming_both() {
        let _ = GridBox::d1(7, 3);
    }

    #[test]
    #[should_panic(expected = "GridBox::new([0, 7], [4, 3]): min 7 exceeds max 3 along dimension 1")]
    fn a_typed_box_with_crossed_corners_panics_in_its_own_dimensions() {
        let _ = GridBox::new([0, 7], [4, 3]);
    }

    #[test]
    fn typed_constructors_that_cannot_cross_still_make_empty_boxes() {
        assert!(GridBox::from_subrange([9, 9], [0, 4]).is_empty());
        assert!(GridBox::new([1, 2, 3], [4, 2, 5]).is_empty());
        assert!(GridBox::d1(2, 6).intersection(&GridBox::d1(8, 9)).is_empty(), "boxes apart intersect to nothing");
        let far = std::panic::catch_unwind(|| GridBox::new([usize::MAX], [0])).unwrap_err();
        let far = far.downcast_ref::<String>().expect("a formatted message");
        assert!(far.contains("GridBox::new([18446744073709551615], [0])"), "{far}");
    }

    #[test]
    fn typed_regions_normalize_like_the_layer_ones() {
        let r = Region::from_boxes([GridBox::d1(0, 4), GridBox::d1(4, 8), GridBox::d1(12, 16)]);
        assert_eq!(r.boxes().collect::<Vec<_>>(), vec![GridBox::d1(0, 8), GridBox::d1(12, 16)]);
        assert_eq!(r.to_string(), "{[0] - [8], [12] - [16]}");
        assert_eq!(r.bounding_box(), GridBox::d1(0, 16));
        let hole = Region::from(GridBox::d1(0, 16)).difference(&r);
        assert_eq!(hole, Region::from(GridBox::d1(8, 12)));
        assert!(r.union(&hole).contains(&Region::from(GridBox::d1(0, 16))));
        assert!(r.intersection(&hole).is_empty());
    }
}
