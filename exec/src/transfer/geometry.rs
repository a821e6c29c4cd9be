//! Boxes of buffer cells, the layout of a host allocation, and packing a (possibly strided) box of
//! an allocation into a contiguous byte string and back.
//!
//! Layout is row-major like Celerity's and celer-graph's: dimension 0 varies slowest, dimension 2
//! fastest. A 1D buffer uses `[x, 0, 0]..[x', 1, 1]`, a 2D buffer `[x, y, 0]..[x', y', 1]`.

use std::fmt;
use std::ptr;

use super::TransferError;

/// A half-open box `[min, max)` of buffer cells in three dimensions; empty boxes are normalised
/// to all zeros.
///
/// The same convention as `celer_graph::GridBox` (which exec cannot name): 1D and 2D boxes leave
/// their trailing dimensions at `[0, 1)`, so converting is `CellBox::new(b.min(), b.max())`.
///
/// # Examples
///
/// ```
/// use celer_exec::transfer::CellBox;
/// let a = CellBox::d2([0, 0], [4, 4]);
/// let b = CellBox::d2([2, 2], [6, 6]);
/// assert_eq!(a.intersection(&b), CellBox::d2([2, 2], [4, 4]));
/// assert_eq!(a.volume(), 16);
/// assert!(CellBox::d1(3, 3).is_empty());
/// assert_eq!(a.to_string(), "[0,0] - [4,4]");
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct CellBox {
    min: [usize; 3],
    max: [usize; 3],
}

/// The cells two of `boxes` share, for the first overlapping pair a sweep along dimension 0 finds (none: they are
/// disjoint). Sorted by where they start along dimension 0, each box is tested only against the earlier boxes that
/// have not ended there yet, so disjoint boxes in slabs along dimension 0 (a canonical region of scattered cells)
/// cost `O(n log n)`, not the `O(n²)` of testing every pair.
pub(super) fn first_overlap(boxes: &[CellBox]) -> Option<CellBox> {
    let mut order: Vec<usize> = (0..boxes.len()).collect();
    order.sort_unstable_by_key(|&i| boxes[i].min[0]);
    // Open boxes, by index; those that ended before the next start are dropped as the sweep passes them.
    let mut open: Vec<usize> = Vec::new();
    for &i in &order {
        let b = &boxes[i];
        open.retain(|&o| boxes[o].max[0] > b.min[0]);
        if let Some(&o) = open.iter().find(|&&o| boxes[o].intersects(b)) {
            return Some(boxes[o].intersection(b));
        }
        open.push(i);
    }
    None
}

impl CellBox {
    /// The empty box.
    pub const EMPTY: CellBox = CellBox { min: [0; 3], max: [0; 3] };

    /// The box `[min, max)`; any dimension with `max <= min` makes it [`EMPTY`](Self::EMPTY).
    #[inline]
    pub fn new(min: [usize; 3], max: [usize; 3]) -> Self {
        if (0..3).any(|d| max[d] <= min[d]) {
            Self::EMPTY
        } else {
            CellBox { min, max }
        }
    }

    /// The 1D box `[min, max)`.
    pub fn d1(min: usize, max: usize) -> Self {
        Self::new([min, 0, 0], [max, 1, 1])
    }

    /// A 2D box.
    pub fn d2(min: [usize; 2], max: [usize; 2]) -> Self {
        Self::new([min[0], min[1], 0], [max[0], max[1], 1])
    }

    /// A 3D box (the same as [`new`](Self::new)).
    pub fn d3(min: [usize; 3], max: [usize; 3]) -> Self {
        Self::new(min, max)
    }

    /// The lower corner (inclusive).
    pub fn min(&self) -> [usize; 3] {
        self.min
    }

    /// The upper corner (exclusive).
    pub fn max(&self) -> [usize; 3] {
        self.max
    }

    /// The extent along each dimension.
    pub fn range(&self) -> [usize; 3] {
        [self.max[0] - self.min[0], self.max[1] - self.min[1], self.max[2] - self.min[2]]
    }

    /// Whether the box holds no cell.
    pub fn is_empty(&self) -> bool {
        self.max[0] == 0
    }

    /// The number of cells, or `None` if it does not fit a `usize`.
    pub fn checked_volume(&self) -> Option<usize> {
        let r = self.range();
        r[0].checked_mul(r[1])?.checked_mul(r[2])
    }

    /// The number of cells, saturating at `usize::MAX`.
    #[inline]
    pub fn volume(&self) -> usize {
        self.checked_volume().unwrap_or(usize::MAX)
    }

    /// The cells both boxes hold (possibly empty).
    pub fn intersection(&self, other: &CellBox) -> CellBox {
        let mut min = [0; 3];
        let mut max = [0; 3];
        for d in 0..3 {
            min[d] = self.min[d].max(other.min[d]);
            max[d] = self.max[d].min(other.max[d]);
        }
        CellBox::new(min, max)
    }

    /// Whether the boxes share at least one cell.
    pub fn intersects(&self, other: &CellBox) -> bool {
        !self.is_empty()
            && !other.is_empty()
            && (0..3).all(|d| self.min[d] < other.max[d] && other.min[d] < self.max[d])
    }

    /// Whether every coordinate of `max` fits a `u32`, the width kernels see.
    pub(crate) fn fits_u32(&self) -> bool {
        self.max.iter().all(|&m| u32::try_from(m).is_ok())
    }

    /// Whether `other` lies entirely inside `self` (the empty box lies inside every box).
    #[inline]
    pub fn contains(&self, other: &CellBox) -> bool {
        other.is_empty() || (0..3).all(|d| self.min[d] <= other.min[d] && other.max[d] <= self.max[d])
    }
}

impl fmt::Display for CellBox {
    /// Prints `[0,0] - [4,4]` in the box's effective dimensionality (at least 1), like
    /// `celer_graph::GridBox`, and `[]` for the empty box.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return write!(f, "[]");
        }
        let dims = (0..3).rev().find(|&d| self.min[d] != 0 || self.max[d] != 1).map_or(1, |d| d + 1);
        let list = |c: &[usize; 3], f: &mut fmt::Formatter<'_>| {
            for (i, v) in c[..dims].iter().enumerate() {
                if i > 0 {
                    write!(f, ",")?;
                }
                write!(f, "{v}")?;
            }
            Ok(())
        };
        write!(f, "[")?;
        list(&self.min, f)?;
        write!(f, "] - [")?;
        list(&self.max, f)?;
        write!(f, "]")
    }
}

impl fmt::Debug for CellBox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A list of boxes, printed as `{[0] - [4], [8] - [12]}` in error messages.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct BoxList(pub Vec<CellBox>);

impl fmt::Display for BoxList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{{")?;
        for (i, b) in self.0.iter().enumerate() {
            if i > 0 {
                write!(f, ", ")?;
            }
            write!(f, "{b}")?;
        }
        write!(f, "}}")
    }
}

impl fmt::Debug for BoxList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Where a buffer's cells lie in one host allocation: the allocation holds exactly the cells of
/// `bounds`, row-major, `elem_size` bytes each, starting at its base address.
///
/// # Examples
///
/// ```
/// use celer_exec::transfer::{AllocLayout, CellBox};
/// // Rows 10..20 of a 2D buffer of f32 that is 64 cells wide.
/// let layout = AllocLayout { bounds: CellBox::d2([10, 0], [20, 64]), elem_size: 4 };
/// assert_eq!(layout.bytes(), Some(10 * 64 * 4));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AllocLayout {
    /// The cells the allocation holds, in buffer coordinates.
    pub bounds: CellBox,
    /// Bytes per cell (greater than zero).
    pub elem_size: usize,
}

impl AllocLayout {
    /// The allocation's size in bytes, or `None` if it overflows `usize`.
    pub fn bytes(&self) -> Option<usize> {
        self.bounds.checked_volume()?.checked_mul(self.elem_size)
    }

    /// Checks that the element size is not zero and the size in bytes fits a `usize`, and returns
    /// that size.
    pub(crate) fn validate(&self) -> Result<usize, TransferError> {
        match self.bytes() {
            Some(bytes) if self.elem_size > 0 => Ok(bytes),
            _ => Err(TransferError::InvalidLayout { layout: *self }),
        }
    }

    /// [`validate`](Self::validate)s the layout and checks that `len` bytes hold it.
    pub(crate) fn check(&self, len: usize) -> Result<usize, TransferError> {
        let needed = self.validate()?;
        if needed > len {
            return Err(TransferError::AllocationTooSmall { layout: *self, len, needed });
        }
        Ok(needed)
    }

    /// The byte size of `b`'s cells, after checking that `b` lies inside the allocation.
    pub(crate) fn box_bytes(&self, b: &CellBox) -> Result<usize, TransferError> {
        if !self.bounds.contains(b) {
            return Err(TransferError::BoxOutsideAllocation { bounds: *b, allocation: self.bounds });
        }
        // Cannot overflow once `validate` has passed: `b` lies inside `bounds`.
        b.checked_volume()
            .and_then(|v| v.checked_mul(self.elem_size))
            .ok_or(TransferError::InvalidLayout { layout: *self })
    }

    /// Calls `f(offset, len)` for each contiguous run of `b`'s bytes in the allocation, in packed
    /// order; consecutive rows are merged when `b` spans the allocation's full width.
    ///
    /// `b` must lie inside `bounds`.
    fn for_each_run(&self, b: &CellBox, mut f: impl FnMut(usize, usize)) {
        if b.is_empty() {
            return;
        }
        let ra = self.bounds.range();
        let rb = b.range();
        let es = self.elem_size;
        let stride1 = ra[2] * es;
        let stride0 = ra[1] * stride1;
        let offset = |i0: usize, i1: usize| {
            (i0 - self.bounds.min[0]) * stride0
                + (i1 - self.bounds.min[1]) * stride1
                + (b.min[2] - self.bounds.min[2]) * es
        };
        if rb[2] == ra[2] && rb[1] == ra[1] {
            // Whole planes: one run.
            f(offset(b.min[0], b.min[1]), rb[0] * stride0);
        } else if rb[2] == ra[2] {
            // Full rows: one run per plane.
            for i0 in b.min[0]..b.max[0] {
                f(offset(i0, b.min[1]), rb[1] * stride1);
            }
        } else {
            for i0 in b.min[0]..b.max[0] {
                for i1 in b.min[1]..b.max[1] {
                    f(offset(i0, i1), rb[2] * es);
                }
            }
        }
    }
}

/// Copies the cells of `b` from the allocation `src` (laid out as `layout`) into `dst`,
/// contiguously and row-major.
///
/// # Errors
///
/// [`TransferError::InvalidLayout`] or [`TransferError::AllocationTooSmall`] if `src` does not
/// hold the layout,
/// [`TransferError::BoxOutsideAllocation`] if `b` is not inside `layout.bounds`, and
/// [`TransferError::StagingSize`] if `dst` does not have exactly `b`'s byte size.
///
/// # Examples
///
/// ```
/// use celer_exec::transfer::{pack, AllocLayout, CellBox};
/// let layout = AllocLayout { bounds: CellBox::d2([0, 0], [3, 3]), elem_size: 1 };
/// let src: Vec<u8> = (0..9).collect();
/// let mut dst = [0u8; 4];
/// pack(&layout, &src, &CellBox::d2([1, 1], [3, 3]), &mut dst)?;
/// assert_eq!(dst, [4, 5, 7, 8]);
/// # Ok::<(), celer_exec::transfer::TransferError>(())
/// ```
pub fn pack(layout: &AllocLayout, src: &[u8], b: &CellBox, dst: &mut [u8]) -> Result<(), TransferError> {
    layout.check(src.len())?;
    check_staging(layout, b, dst.len())?;
    // SAFETY: `check` proved `src` holds the whole allocation, `check_staging` that `b` lies inside
    // it and that `dst` has exactly its byte size; the borrows keep both alive and unaliased.
    unsafe { pack_from_ptr(layout, src.as_ptr(), b, dst) };
    Ok(())
}

/// Copies a contiguous, row-major `src` (as [`pack`] writes it) into the cells of `b` in the
/// allocation `dst` (laid out as `layout`); the allocation's other cells are not touched.
///
/// # Errors
///
/// As [`pack`], with the roles of `src` and `dst` exchanged.
pub fn unpack(layout: &AllocLayout, dst: &mut [u8], b: &CellBox, src: &[u8]) -> Result<(), TransferError> {
    layout.check(dst.len())?;
    check_staging(layout, b, src.len())?;
    // SAFETY: as in `pack`: `dst` holds the whole allocation, `b` lies inside it, `src` has
    // exactly `b`'s byte size, and the borrows keep both alive and unaliased.
    unsafe { unpack_to_ptr(layout, dst.as_mut_ptr(), b, src) };
    Ok(())
}

/// Checks that `b` lies in the allocation and that a staging buffer of `len` bytes fits it exactly.
pub(crate) fn check_staging(layout: &AllocLayout, b: &CellBox, len: usize) -> Result<(), TransferError> {
    let expected = layout.box_bytes(b)?;
    if len != expected {
        return Err(TransferError::StagingSize { bounds: *b, len, expected });
    }
    Ok(())
}

/// [`pack`] from a base pointer.
///
/// # Safety
///
/// `layout` was checked with [`AllocLayout::check`]; `src` points to an allocation of that layout
/// whose cells in `b` are readable and not written during the call; `b` lies inside
/// `layout.bounds` and `dst` has exactly `b`'s byte size (as [`check_staging`] checks).
pub(crate) unsafe fn pack_from_ptr(layout: &AllocLayout, src: *const u8, b: &CellBox, dst: &mut [u8]) {
    let mut packed = 0;
    layout.for_each_run(b, |offset, len| {
        debug_assert!(packed + len <= dst.len());
        // SAFETY: `offset..offset + len` lies inside the allocation because `b` lies inside
        // `layout.bounds` (caller), and `packed..packed + len` inside `dst` because the runs add
        // up to `b`'s byte size, which is `dst.len()` (caller). `dst` is a unique borrow, so the
        // ranges cannot overlap.
        unsafe { ptr::copy_nonoverlapping(src.add(offset), dst.as_mut_ptr().add(packed), len) };
        packed += len;
    });
    debug_assert_eq!(packed, dst.len());
}

/// [`unpack`] to a base pointer; writes only the cells of `b`.
///
/// # Safety
///
/// `layout` was checked with [`AllocLayout::check`]; `dst` points to an allocation of that layout
/// whose cells in `b` are writable and neither read nor written by anyone else during the call;
/// `b` lies inside `layout.bounds` and `src` has exactly `b`'s byte size.
pub(crate) unsafe fn unpack_to_ptr(layout: &AllocLayout, dst: *mut u8, b: &CellBox, src: &[u8]) {
    let mut packed = 0;
    layout.for_each_run(b, |offset, len| {
        debug_assert!(packed + len <= src.len());
        // SAFETY: the mirror of `pack_from_ptr`: `offset..offset + len` lies inside the cells of
        // `b` in the allocation, `packed..packed + len` inside `src` (caller's contract); `src` is
        // a shared borrow of other memory, so the ranges cannot overlap.
        unsafe { ptr::copy_nonoverlapping(src.as_ptr().add(packed), dst.add(offset), len) };
        packed += len;
    });
    debug_assert_eq!(packed, src.len());
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SplitMix64, a tiny deterministic generator for test inputs.
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
    }

    /// The byte offset of `cell` in `layout`, computed the slow, obvious way.
    fn reference_offset(layout: &AllocLayout, cell: [usize; 3]) -> usize {
        let r = layout.bounds.range();
        let m = layout.bounds.min();
        (((cell[0] - m[0]) * r[1] + (cell[1] - m[1])) * r[2] + (cell[2] - m[2])) * layout.elem_size
    }

    /// Every cell of `b` in row-major order.
    fn cells(b: &CellBox) -> Vec<[usize; 3]> {
        let mut out = Vec::new();
        if b.is_empty() {
            return out;
        }
        for i in b.min()[0]..b.max()[0] {
            for j in b.min()[1]..b.max()[1] {
                for k in b.min()[2]..b.max()[2] {
                    out.push([i, j, k]);
                }
            }
        }
        out
    }

    /// A random allocation of `dims` dimensions and a random sub-box of it.
    fn random_case(rng: &mut Rng, dims: usize) -> (AllocLayout, CellBox) {
        let mut min = [0; 3];
        let mut max = [1; 3];
        let mut bmin = [0; 3];
        let mut bmax = [1; 3];
        for d in 0..dims {
            min[d] = rng.below(5);
            max[d] = min[d] + 1 + rng.below(7);
            bmin[d] = min[d] + rng.below(max[d] - min[d]);
            bmax[d] = bmin[d] + 1 + rng.below(max[d] - bmin[d]);
        }
        let elem_size = [1, 2, 3, 4, 8, 12][rng.below(6)];
        (AllocLayout { bounds: CellBox::new(min, max), elem_size }, CellBox::new(bmin, bmax))
    }

    #[test]
    fn pack_matches_a_cell_by_cell_reference_in_1d_2d_and_3d() {
        let mut rng = Rng(7);
        for dims in 1..=3 {
            for _ in 0..300 {
                let (layout, b) = random_case(&mut rng, dims);
                let src: Vec<u8> = (0..layout.bytes().unwrap()).map(|_| rng.next() as u8).collect();
                let mut expected = Vec::new();
                for cell in cells(&b) {
                    let o = reference_offset(&layout, cell);
                    expected.extend_from_slice(&src[o..o + layout.elem_size]);
                }
                let mut packed = vec![0u8; expected.len()];
                pack(&layout, &src, &b, &mut packed).unwrap();
                assert_eq!(packed, expected, "{dims}D pack of {b} from {layout:?}");
            }
        }
    }

    #[test]
    fn unpack_writes_exactly_the_cells_of_the_box() {
        let mut rng = Rng(11);
        for dims in 1..=3 {
            for _ in 0..300 {
                let (layout, b) = random_case(&mut rng, dims);
                let len = layout.bytes().unwrap();
                let packed: Vec<u8> = (0..b.volume() * layout.elem_size).map(|_| rng.next() as u8).collect();
                let sentinel = 0xA5u8;
                let mut expected = vec![sentinel; len];
                for (n, cell) in cells(&b).into_iter().enumerate() {
                    let o = reference_offset(&layout, cell);
                    let es = layout.elem_size;
                    expected[o..o + es].copy_from_slice(&packed[n * es..(n + 1) * es]);
                }
                let mut dst = vec![sentinel; len];
                unpack(&layout, &mut dst, &b, &packed).unwrap();
                assert_eq!(dst, expected, "{dims}D unpack of {b} into {layout:?}");

                // Round trip: packing what was unpacked gives the packed bytes back.
                let mut again = vec![0u8; packed.len()];
                pack(&layout, &dst, &b, &mut again).unwrap();
                assert_eq!(again, packed);
            }
        }
    }

    #[test]
    fn full_rows_and_whole_allocations_are_copied_in_few_runs() {
        let layout = AllocLayout { bounds: CellBox::d3([0, 0, 0], [4, 5, 6]), elem_size: 2 };
        let mut runs = Vec::new();
        layout.for_each_run(&layout.bounds, |o, l| runs.push((o, l)));
        assert_eq!(runs, [(0, 4 * 5 * 6 * 2)]);
        runs.clear();
        layout.for_each_run(&CellBox::d3([1, 2, 0], [3, 4, 6]), |o, l| runs.push((o, l)));
        assert_eq!(runs, [((5 * 6 + 2 * 6) * 2, 2 * 6 * 2), ((2 * 5 * 6 + 2 * 6) * 2, 2 * 6 * 2)]);
    }

    #[test]
    fn packing_rejects_boxes_outside_the_allocation_and_wrong_sizes() {
        let layout = AllocLayout { bounds: CellBox::d1(10, 20), elem_size: 4 };
        let src = vec![0u8; 40];
        let mut dst = vec![0u8; 8];
        let err = pack(&layout, &src, &CellBox::d1(18, 22), &mut dst).unwrap_err();
        assert!(matches!(err, TransferError::BoxOutsideAllocation { .. }), "{err}");
        let err = pack(&layout, &src, &CellBox::d1(10, 13), &mut dst).unwrap_err();
        assert!(matches!(err, TransferError::StagingSize { expected: 12, len: 8, .. }), "{err}");
        let err = pack(&layout, &src[..39], &CellBox::d1(10, 12), &mut dst).unwrap_err();
        assert!(matches!(err, TransferError::AllocationTooSmall { len: 39, needed: 40, .. }), "{err}");
        let zero = AllocLayout { bounds: CellBox::d1(0, 4), elem_size: 0 };
        assert!(matches!(zero.check(100), Err(TransferError::InvalidLayout { .. })));
    }

    #[test]
    fn empty_boxes_pack_to_nothing() {
        let layout = AllocLayout { bounds: CellBox::d2([0, 0], [3, 3]), elem_size: 8 };
        let src = vec![1u8; 72];
        pack(&layout, &src, &CellBox::EMPTY, &mut []).unwrap();
        let mut dst = src.clone();
        unpack(&layout, &mut dst, &CellBox::d2([1, 1], [1, 3]), &[]).unwrap();
        assert_eq!(dst, src);
    }

    #[test]
    fn a_box_with_no_extent_in_any_one_dimension_is_the_empty_box() {
        for d in 0..3 {
            let mut max = [4, 5, 6];
            max[d] = 2;
            let b = CellBox::new([2, 2, 2], max);
            assert_eq!(b, CellBox::EMPTY, "max {max:?}");
            assert!(b.is_empty());
            assert_eq!((b.min(), b.max(), b.range(), b.volume()), ([0; 3], [0; 3], [0; 3], 0));
        }
        let b = CellBox::new([1, 2, 3], [4, 6, 9]);
        assert!(!b.is_empty());
        assert_eq!((b.min(), b.max(), b.range()), ([1, 2, 3], [4, 6, 9], [3, 4, 6]));
        assert_eq!((b.checked_volume(), b.volume()), (Some(72), 72));
        assert_eq!(CellBox::d1(3, 7), CellBox::new([3, 0, 0], [7, 1, 1]));
        assert_eq!(CellBox::d2([1, 2], [3, 5]), CellBox::new([1, 2, 0], [3, 5, 1]));
        assert_eq!(CellBox::d3([1, 2, 3], [4, 5, 6]), CellBox::new([1, 2, 3], [4, 5, 6]));
        assert!(CellBox::d2([1, 2], [3, 2]).is_empty());
    }

    #[test]
    fn volumes_that_overflow_are_none_or_saturate() {
        let huge = CellBox::new([0; 3], [usize::MAX, 2, 1]);
        assert_eq!((huge.checked_volume(), huge.volume()), (None, usize::MAX));
        let huge = CellBox::new([0; 3], [1, usize::MAX, 3]);
        assert_eq!((huge.checked_volume(), huge.volume()), (None, usize::MAX));
        let huge = CellBox::new([0; 3], [2, 1, usize::MAX]);
        assert_eq!((huge.checked_volume(), huge.volume()), (None, usize::MAX));
        let just = CellBox::new([0; 3], [1, 1, usize::MAX]);
        assert_eq!(just.volume(), usize::MAX);
        let layout = AllocLayout { bounds: CellBox::d1(0, usize::MAX / 2 + 1), elem_size: 2 };
        assert_eq!(layout.bytes(), None);
        assert!(matches!(layout.check(usize::MAX), Err(TransferError::InvalidLayout { .. })));
        let layout = AllocLayout { bounds: CellBox::d1(0, usize::MAX / 2), elem_size: 2 };
        assert_eq!(layout.bytes(), Some(usize::MAX / 2 * 2));
    }

    #[test]
    fn intersections_cut_every_dimension() {
        let a = CellBox::new([0, 10, 20], [5, 15, 25]);
        let b = CellBox::new([3, 8, 22], [9, 12, 30]);
        assert_eq!(a.intersection(&b), CellBox::new([3, 10, 22], [5, 12, 25]));
        assert_eq!(b.intersection(&a), CellBox::new([3, 10, 22], [5, 12, 25]));
        assert!(a.intersects(&b) && b.intersects(&a));
        // Apart (or only touching) along any one dimension: no common cell.
        for d in 0..3 {
            let mut min = b.min();
            let mut max = b.max();
            min[d] = a.max()[d];
            max[d] = a.max()[d] + 3;
            let touching = CellBox::new(min, max);
            assert!(!a.intersects(&touching) && !touching.intersects(&a), "dimension {d}");
            assert_eq!(a.intersection(&touching), CellBox::EMPTY, "dimension {d}");
            min[d] = 0;
            max[d] = a.min()[d];
            if max[d] > 0 {
                let below = CellBox::new(min, max);
                assert!(!a.intersects(&below) && !below.intersects(&a), "dimension {d}");
            }
        }
        assert!(!a.intersects(&CellBox::EMPTY) && !CellBox::EMPTY.intersects(&a));
        assert!(CellBox::d1(0, 1).intersects(&CellBox::d1(0, 1)));
    }

    #[test]
    fn containment_needs_both_corners_inside_in_every_dimension() {
        let a = CellBox::new([1, 1, 1], [5, 5, 5]);
        assert!(a.contains(&a));
        assert!(a.contains(&CellBox::new([2, 2, 2], [4, 4, 4])));
        assert!(a.contains(&CellBox::EMPTY) && CellBox::EMPTY.contains(&CellBox::EMPTY));
        assert!(!CellBox::EMPTY.contains(&a));
        for d in 0..3 {
            let mut min = [2; 3];
            min[d] = 0;
            assert!(!a.contains(&CellBox::new(min, [4; 3])), "below in dimension {d}");
            let mut max = [4; 3];
            max[d] = 6;
            assert!(!a.contains(&CellBox::new([2; 3], max)), "above in dimension {d}");
        }
    }

    #[test]
    fn coordinates_fit_u32_up_to_its_maximum() {
        let limit = u32::MAX as usize;
        assert!(CellBox::d1(0, limit).fits_u32());
        assert!(CellBox::EMPTY.fits_u32());
        for d in 0..3 {
            let mut max = [1; 3];
            max[d] = limit + 1;
            assert!(!CellBox::new([0; 3], max).fits_u32(), "dimension {d}");
        }
    }

    #[test]
    fn debug_prints_like_display() {
        let b = CellBox::d2([0, 1], [2, 3]);
        assert_eq!(format!("{b:?}"), "[0,1] - [2,3]");
        assert_eq!(format!("{:?}", CellBox::EMPTY), "[]");
        assert_eq!(format!("{:?}", BoxList(vec![b, CellBox::d1(4, 8)])), "{[0,1] - [2,3], [4] - [8]}");
        assert_eq!(BoxList(vec![]).to_string(), "{}");
        // A trailing dimension that is not [0, 1) counts, even when the dimensions before it are.
        assert_eq!(CellBox::new([0, 0, 0], [1, 1, 2]).to_string(), "[0,0,0] - [1,1,2]");
        assert_eq!(CellBox::new([0, 0, 0], [1, 2, 1]).to_string(), "[0,0] - [1,2]");
        assert_eq!(CellBox::new([0, 3, 0], [1, 4, 1]).to_string(), "[0,3] - [1,4]");
        assert_eq!(CellBox::new([0, 0, 0], [1, 1, 1]).to_string(), "[0] - [1]");
    }

    #[test]
    fn box_bytes_are_the_volume_times_the_element_size() {
        let layout = AllocLayout { bounds: CellBox::d2([0, 0], [4, 8]), elem_size: 4 };
        assert_eq!(layout.validate().unwrap(), 128);
        assert_eq!(layout.check(128).unwrap(), 128);
        assert_eq!(layout.box_bytes(&CellBox::d2([1, 2], [3, 5])).unwrap(), 24);
        assert_eq!(layout.box_bytes(&CellBox::EMPTY).unwrap(), 0);
        assert!(matches!(layout.check(127), Err(TransferError::AllocationTooSmall { needed: 128, len: 127, .. })));
        assert!(check_staging(&layout, &CellBox::d2([0, 0], [1, 1]), 4).is_ok());
    }

    #[test]
    fn boxes_print_in_their_effective_dimensionality() {
        assert_eq!(CellBox::d1(2, 5).to_string(), "[2] - [5]");
        assert_eq!(CellBox::d3([0, 1, 2], [3, 4, 5]).to_string(), "[0,1,2] - [3,4,5]");
        assert_eq!(CellBox::EMPTY.to_string(), "[]");
        assert_eq!(BoxList(vec![CellBox::d1(0, 1), CellBox::d1(4, 8)]).to_string(), "{[0] - [1], [4] - [8]}");
        assert!(!CellBox::d1(0, 4).intersects(&CellBox::d1(4, 8)));
        assert!(CellBox::d1(0, 5).intersects(&CellBox::d1(4, 8)));
        assert!(CellBox::d1(0, 5).contains(&CellBox::EMPTY));
    }
}
