//! Boxes of buffer cells and the copy regions ("runs") that move a sub-box between two
//! row-major layouts.
//!
//! Layout is row-major like celer-graph's boxes: dimension 0 varies slowest, dimension 2
//! fastest; 1D and 2D boxes leave their trailing dimensions at `[0, 1)`.

/// A half-open box `[min, max)` of buffer cells in three dimensions: the transfer engine's
/// [`CellBox`](crate::transfer::CellBox) under the name this module's API uses, so boxes pass
/// between the two without conversion.
///
/// The convention of `celer_graph::GridBox` (which exec cannot name): 1D and 2D boxes leave their
/// trailing dimensions at `[0, 1)`, so converting is `Box3::new(b.min(), b.max())`.
///
/// # Examples
///
/// ```
/// use celer_exec::gpu::Box3;
/// let b = Box3::d2([2, 4], [6, 10]);
/// assert_eq!(b.range(), [4, 6, 1]);
/// assert_eq!(b.volume(), 24);
/// assert!(Box3::d2([0, 0], [8, 16]).contains(&b));
/// assert!(Box3::d1(3, 3).is_empty());
/// assert_eq!(b.to_string(), "[2,4] - [6,10]");
/// ```
pub use crate::transfer::CellBox as Box3;

/// One contiguous byte range copied from a source layout to a destination layout: the unit of
/// a `VkBufferCopy` region and of a host `memcpy`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CopyRun {
    /// Byte offset in the source.
    pub src_offset: usize,
    /// Byte offset in the destination.
    pub dst_offset: usize,
    /// Bytes to copy.
    pub len: usize,
}

/// Appends to `out` the contiguous runs that copy the cells of `region` from a row-major layout
/// of `src_bounds` to a row-major layout of `dst_bounds`, `elem_size` bytes per cell.
///
/// A run spans the region's last dimension; whole rows are merged into one run while the region
/// covers the full extent of both layouts in every faster dimension, so a region of full rows is
/// one run per slab, and a region that covers both layouts entirely is a single run. A packed
/// layout (`bounds == region`) never splits runs, so staging a sub-box costs as many runs as the
/// other side needs. Runs are in row-major order of the region, ascending in both offsets.
///
/// Complexity: O(number of runs), which is at most the region's extent in dimensions 0 and 1.
///
/// `region` must lie inside both bounds (checked by callers; an empty region appends nothing).
///
/// # Examples
///
/// ```
/// use celer_exec::gpu::{copy_runs, Box3, CopyRun};
/// let alloc = Box3::d2([0, 0], [4, 8]); // 4 rows of 8 cells
/// let mut runs = Vec::new();
/// // Columns 2..5 of rows 1..3, packed: one run per row.
/// let region = Box3::d2([1, 2], [3, 5]);
/// copy_runs(&alloc, &region, &region, 4, &mut runs);
/// assert_eq!(runs, [
///     CopyRun { src_offset: (8 + 2) * 4, dst_offset: 0, len: 12 },
///     CopyRun { src_offset: (16 + 2) * 4, dst_offset: 12, len: 12 },
/// ]);
/// // Full rows 1..3 merge into one run.
/// runs.clear();
/// let rows = Box3::d2([1, 0], [3, 8]);
/// copy_runs(&alloc, &rows, &rows, 4, &mut runs);
/// assert_eq!(runs, [CopyRun { src_offset: 32, dst_offset: 0, len: 64 }]);
/// ```
pub fn copy_runs(src_bounds: &Box3, dst_bounds: &Box3, region: &Box3, elem_size: usize, out: &mut Vec<CopyRun>) {
    if region.is_empty() {
        return;
    }
    debug_assert!(src_bounds.contains(region) && dst_bounds.contains(region), "region outside bounds");
    let r = region.range();
    let (sr, dr) = (src_bounds.range(), dst_bounds.range());
    // Element strides of dimensions 0 and 1 (dimension 2 has stride 1).
    let s_stride = [sr[1] * sr[2], sr[2]];
    let d_stride = [dr[1] * dr[2], dr[2]];

    // Merge dimensions into the run from the fastest while the run so far fills the next
    // dimension's stride in both layouts (i.e. the region spans both layouts fully there).
    let mut run = r[2];
    let mut outer = 2; // dimensions 0..outer are iterated, outer.. are inside one run
    for d in [1usize, 0] {
        if run == s_stride[d] && run == d_stride[d] {
            run *= r[d];
            outer = d;
        } else {
            break;
        }
    }
    let len = run * elem_size;
    let base = |bounds: &Box3, stride: &[usize; 2], i0: usize, i1: usize| {
        let (m, b) = (region.min(), bounds.min());
        ((m[0] + i0 - b[0]) * stride[0] + (m[1] + i1 - b[1]) * stride[1] + (m[2] - b[2])) * elem_size
    };
    let (n0, n1) = match outer {
        0 => (1, 1),
        1 => (r[0], 1),
        _ => (r[0], r[1]),
    };
    out.reserve(n0 * n1);
    for i0 in 0..n0 {
        for i1 in 0..n1 {
            out.push(CopyRun {
                src_offset: base(src_bounds, &s_stride, i0, i1),
                dst_offset: base(dst_bounds, &d_stride, i0, i1),
                len,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Brute force: copies cell by cell between two layouts and returns the byte map
    /// `(src byte, dst byte)` of every byte; the runs must produce exactly this map.
    fn cell_map(src: &Box3, dst: &Box3, region: &Box3, e: usize) -> Vec<(usize, usize)> {
        let lin = |b: &Box3, p: [usize; 3]| {
            let (m, r) = (b.min(), b.range());
            ((p[0] - m[0]) * r[1] + (p[1] - m[1])) * r[2] + (p[2] - m[2])
        };
        let mut map = Vec::new();
        let (lo, hi) = (region.min(), region.max());
        for x in lo[0]..hi[0] {
            for y in lo[1]..hi[1] {
                for z in lo[2]..hi[2] {
                    for k in 0..e {
                        map.push((lin(src, [x, y, z]) * e + k, lin(dst, [x, y, z]) * e + k));
                    }
                }
            }
        }
        map
    }

    fn run_map(runs: &[CopyRun]) -> Vec<(usize, usize)> {
        runs.iter().flat_map(|r| (0..r.len).map(move |k| (r.src_offset + k, r.dst_offset + k))).collect()
    }

    fn check(src: Box3, dst: Box3, region: Box3, e: usize, expected_runs: usize) {
        let mut runs = Vec::new();
        copy_runs(&src, &dst, &region, e, &mut runs);
        assert_eq!(run_map(&runs), cell_map(&src, &dst, &region, e), "{src} -> {dst}, region {region}");
        assert_eq!(runs.len(), expected_runs, "{src} -> {dst}, region {region}: {runs:?}");
    }

    #[test]
    fn a_strided_2d_sub_box_takes_one_run_per_row() {
        let alloc = Box3::d2([10, 20], [18, 36]);
        let region = Box3::d2([12, 22], [15, 30]);
        check(region, alloc, region, 4, 3);
        check(alloc, region, region, 4, 3);
    }

    #[test]
    fn full_rows_merge_into_one_run() {
        let alloc = Box3::d2([10, 20], [18, 36]);
        let rows = Box3::d2([12, 20], [15, 36]);
        check(rows, alloc, rows, 8, 1);
        check(alloc, alloc, alloc, 8, 1);
    }

    #[test]
    fn full_planes_merge_and_partial_planes_do_not() {
        let alloc = Box3::d3([0, 0, 0], [4, 5, 6]);
        // Full rows of a partial plane: one run per plane.
        check(Box3::d3([1, 1, 0], [3, 4, 6]), alloc, Box3::d3([1, 1, 0], [3, 4, 6]), 2, 2);
        // Full planes: one run.
        check(Box3::d3([1, 0, 0], [3, 5, 6]), alloc, Box3::d3([1, 0, 0], [3, 5, 6]), 2, 1);
        // Partial rows: one run per row.
        check(Box3::d3([1, 1, 1], [3, 4, 5]), alloc, Box3::d3([1, 1, 1], [3, 4, 5]), 2, 6);
    }

    #[test]
    fn device_to_device_runs_merge_only_where_both_layouts_are_contiguous() {
        // Resize: the old allocation holds columns 0..8, the new one 0..16; full rows of the old
        // allocation are not full rows of the new one, so every row is its own run.
        let old = Box3::d2([4, 0], [12, 8]);
        let new = Box3::d2([0, 0], [16, 16]);
        check(old, new, old, 4, 8);
        // Growing only along dimension 0 keeps rows contiguous in both: one run.
        let taller = Box3::d2([0, 0], [20, 8]);
        check(old, taller, old, 4, 1);
    }

    #[test]
    fn one_dimensional_boxes_are_one_run() {
        check(Box3::d1(0, 100), Box3::d1(10, 50), Box3::d1(20, 40), 4, 1);
    }

    #[test]
    fn a_single_column_is_one_run_per_cell() {
        let alloc = Box3::d2([0, 0], [5, 7]);
        check(alloc, Box3::d2([1, 3], [4, 4]), Box3::d2([1, 3], [4, 4]), 4, 3);
    }

    #[test]
    fn a_single_row_in_a_plane_stays_one_run() {
        // One row of a 3D box: dimension 1 has extent 1, so merging it is trivial.
        let alloc = Box3::d3([0, 0, 0], [3, 4, 5]);
        let row = Box3::d3([1, 2, 0], [2, 3, 5]);
        check(alloc, row, row, 4, 1);
    }

    #[test]
    fn empty_regions_copy_nothing() {
        let mut runs = Vec::new();
        copy_runs(&Box3::d1(0, 4), &Box3::d1(0, 4), &Box3::d1(2, 2), 4, &mut runs);
        assert!(runs.is_empty());
    }

    #[test]
    fn exhaustive_small_layouts_match_the_cell_by_cell_copy() {
        // Every region of a 3x3x3 allocation, against a packed and against a 4x4x4 layout.
        let big = Box3::d3([0, 0, 0], [4, 4, 4]);
        let alloc = Box3::d3([1, 0, 1], [4, 3, 4]);
        let iv = |d: usize| {
            let (lo, hi) = (alloc.min()[d], alloc.max()[d]);
            (lo..hi).flat_map(move |a| (a + 1..=hi).map(move |b| (a, b)))
        };
        for (a0, b0) in iv(0) {
            for (a1, b1) in iv(1) {
                for (a2, b2) in iv(2) {
                    let region = Box3::d3([a0, a1, a2], [b0, b1, b2]);
                    for dst in [region, big] {
                        let mut runs = Vec::new();
                        copy_runs(&alloc, &dst, &region, 3, &mut runs);
                        assert_eq!(run_map(&runs), cell_map(&alloc, &dst, &region, 3), "{region} -> {dst}");
                    }
                }
            }
        }
    }
}
