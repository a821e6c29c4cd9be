//! Splitting a task's index space into chunks, one per rank, as a regular grid.
//!
//! [`ChunkGrid`] splits along dimension 0 (or a near-square grid over dimensions 0 and 1), honours a granularity
//! (every chunk boundary is a multiple of it, counted from the range's start) and never makes an empty chunk: with
//! fewer granules than ranks, fewer chunks come out. Chunk `i` (row-major over the grid) goes to rank `i`. Because
//! the grid is regular, the chunks touching a box are found by inverting the cut formula, without visiting all of
//! them.

use celer_graph::{GridBox, SplitHint};

/// One axis of the grid: `[lo, hi)` cut into `parts` runs of whole granules, as evenly as possible.
///
/// Cut `i` lies at `lo + (i · granules / parts) · granularity` (clamped to `hi`), computed on demand, so a grid of
/// thousands of chunks costs nothing to build.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Axis {
    lo: usize,
    hi: usize,
    parts: usize,
    granules: usize,
    granularity: usize,
}

impl Axis {
    fn new(lo: usize, hi: usize, parts: usize, granularity: usize) -> Self {
        let granules = (hi - lo).div_ceil(granularity);
        Self { lo, hi, parts: parts.clamp(1, granules.max(1)), granules, granularity }
    }

    fn whole(lo: usize, hi: usize) -> Self {
        Self { lo, hi, parts: 1, granules: 1, granularity: (hi - lo).max(1) }
    }

    /// Position of cut `i` (`0..=parts`).
    fn cut(&self, i: usize) -> usize {
        if i >= self.parts {
            return self.hi;
        }
        // In u128 only where `i * granules` overflows usize (index spaces of more than usize::MAX / parts
        // granules): a u128 division is a library call, several times the cost of the product in usize.
        let granule = match i.checked_mul(self.granules) {
            Some(p) => p / self.parts,
            None => (i as u128 * self.granules as u128 / self.parts as u128) as usize,
        };
        self.lo.saturating_add(granule.saturating_mul(self.granularity)).min(self.hi)
    }

    /// The runs overlapping `[a, b)`, as a range of run indices.
    fn span(&self, a: usize, b: usize) -> std::ops::Range<usize> {
        let (a, b) = (a.max(self.lo), b.min(self.hi));
        if a >= b {
            return 0..0;
        }
        self.run_of(a)..self.run_of(b - 1) + 1
    }

    /// The run holding position `x` (`lo ≤ x < hi`), by inverting the cut formula: run `i` holds granule `k` when
    /// `⌊i·G/P⌋ ≤ k < ⌊(i+1)·G/P⌋`, that is `i = ⌈(k+1)·P/G⌉ − 1`. A binary search on the cuts serves where the
    /// product would overflow.
    fn run_of(&self, x: usize) -> usize {
        let k = (x - self.lo) / self.granularity;
        match (k + 1).checked_mul(self.parts) {
            Some(p) => ((p - 1) / self.granules).min(self.parts - 1),
            None => partition_point(self.parts, |i| self.cut(i + 1) <= x),
        }
    }
}

/// The first `i` in `0..n` for which `pred` is false (`pred` must be true on a prefix).
fn partition_point(n: usize, pred: impl Fn(usize) -> bool) -> usize {
    let (mut lo, mut hi) = (0, n);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if pred(mid) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    lo
}

/// A regular grid of chunks over a task's index space.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChunkGrid {
    range: GridBox,
    axes: [Axis; 2],
}

/// Factors `n` into `(a, b)`, `a ≤ b`, `a·b = n`, with `a` as large as possible.
fn near_square(n: usize) -> (usize, usize) {
    let mut a = (n as f64).sqrt() as usize;
    while a > 1 && !n.is_multiple_of(a) {
        a -= 1;
    }
    let a = a.max(1);
    (a, n / a)
}

impl ChunkGrid {
    /// Splits `range` into at most `parts` chunks. Costs O(1): chunks are computed when asked for.
    ///
    /// # Panics
    /// If `parts` is zero or a granularity is zero.
    pub fn new(range: GridBox, parts: usize, hint: SplitHint, granularity: [usize; 3]) -> Self {
        assert!(parts >= 1, "at least one chunk");
        assert!(granularity.iter().all(|&g| g >= 1), "granularity must be at least 1");
        let (min, max) = (range.min(), range.max());
        if range.is_empty() {
            return Self { range, axes: [Axis::whole(0, 0), Axis::whole(0, 0)] };
        }
        let axes = match hint {
            SplitHint::TwoD if range.effective_dims() >= 2 && parts > 1 => {
                let (small, large) = near_square(parts);
                // Give the larger factor to the longer dimension.
                let (p0, p1) = if max[0] - min[0] >= max[1] - min[1] { (large, small) } else { (small, large) };
                [Axis::new(min[0], max[0], p0, granularity[0]), Axis::new(min[1], max[1], p1, granularity[1])]
            }
            _ => [Axis::new(min[0], max[0], parts, granularity[0]), Axis::whole(min[1], max[1])],
        };
        Self { range, axes }
    }

    /// The whole index space.
    pub fn range(&self) -> GridBox {
        self.range
    }

    /// Number of chunks.
    pub fn len(&self) -> usize {
        if self.range.is_empty() {
            return 0;
        }
        self.axes[0].parts * self.axes[1].parts
    }

    /// Whether there are no chunks.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Chunk `i` (row-major: dimension 0 outer).
    pub fn chunk(&self, i: usize) -> GridBox {
        // One chunk (one rank, or too few granules to split): the whole index space.
        if self.axes[0].parts == 1 && self.axes[1].parts == 1 && !self.range.is_empty() {
            return self.range;
        }
        let n1 = self.axes[1].parts;
        let (i0, i1) = (i / n1, i % n1);
        let (mut min, mut max) = (self.range.min(), self.range.max());
        min[0] = self.axes[0].cut(i0);
        max[0] = self.axes[0].cut(i0 + 1);
        min[1] = self.axes[1].cut(i1);
        max[1] = self.axes[1].cut(i1 + 1);
        GridBox::new(min, max)
    }

    /// Calls `f` with the index of every chunk that intersects `b`, in increasing order (found by arithmetic, not
    /// by scanning).
    pub fn for_each_intersecting(&self, b: &GridBox, mut f: impl FnMut(usize)) {
        let b = b.intersection(&self.range);
        if b.is_empty() {
            return;
        }
        let (s0, s1) = (self.axes[0].span(b.min()[0], b.max()[0]), self.axes[1].span(b.min()[1], b.max()[1]));
        let n1 = self.axes[1].parts;
        for i0 in s0 {
            for i1 in s1.clone() {
                f(i0 * n1 + i1);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_d_split_is_even_and_covers_the_range() {
        let g = ChunkGrid::new(GridBox::d1(0, 10), 4, SplitHint::OneD, [1; 3]);
        let chunks: Vec<_> = (0..g.len()).map(|i| g.chunk(i)).collect();
        assert_eq!(chunks, vec![GridBox::d1(0, 2), GridBox::d1(2, 5), GridBox::d1(5, 7), GridBox::d1(7, 10)]);
    }

    #[test]
    fn index_spaces_near_usize_max_split_without_overflow() {
        // `i * granules` of the cut formula exceeds usize for more than usize::MAX / parts granules.
        let n = 1usize << 62;
        let g = ChunkGrid::new(GridBox::d1(0, n), 5, SplitHint::OneD, [1; 3]);
        let chunks: Vec<_> = (0..g.len()).map(|i| g.chunk(i)).collect();
        assert_eq!(chunks.len(), 5);
        assert_eq!(chunks[0].min()[0], 0);
        assert_eq!(chunks[4].max()[0], n);
        for w in chunks.windows(2) {
            assert_eq!(w[0].max()[0], w[1].min()[0], "chunks tile the range: {chunks:?}");
            assert!(w[0].range()[0].abs_diff(w[1].range()[0]) <= 1, "an even split: {chunks:?}");
        }
        let mut hit = Vec::new();
        g.for_each_intersecting(&GridBox::d1(n - 1, n), |i| hit.push(i));
        assert_eq!(hit, vec![4]);
    }

    #[test]
    fn granularity_is_honoured_and_never_yields_empty_chunks() {
        let g = ChunkGrid::new(GridBox::d1(0, 10), 8, SplitHint::OneD, [4, 1, 1]);
        assert_eq!(g.len(), 3, "10 items in granules of 4 give 3 chunks");
        assert_eq!(g.chunk(0), GridBox::d1(0, 4));
        assert_eq!(g.chunk(2), GridBox::d1(8, 10));
        let tiny = ChunkGrid::new(GridBox::d1(0, 2), 16, SplitHint::OneD, [1; 3]);
        assert_eq!(tiny.len(), 2);
    }

    #[test]
    fn two_d_split_is_near_square() {
        let g = ChunkGrid::new(GridBox::d2([0, 0], [8, 8]), 4, SplitHint::TwoD, [1; 3]);
        assert_eq!(g.len(), 4);
        assert_eq!(g.chunk(3), GridBox::d2([4, 4], [8, 8]));
        let g = ChunkGrid::new(GridBox::d2([0, 0], [100, 10]), 6, SplitHint::TwoD, [1; 3]);
        assert_eq!((g.axes[0].parts, g.axes[1].parts), (3, 2));
    }

    #[test]
    fn runs_found_by_formula_match_a_scan_of_the_cuts() {
        for (len, parts, granularity) in [(10, 4, 1), (10, 8, 4), (1000, 7, 3), (17, 17, 1), (5, 9, 1), (999, 64, 10)] {
            let axis = Axis::new(3, 3 + len, parts, granularity);
            for x in 3..3 + len {
                let scanned = (0..axis.parts).find(|&i| axis.cut(i) <= x && x < axis.cut(i + 1)).unwrap();
                assert_eq!(axis.run_of(x), scanned, "x {x} in {axis:?}");
            }
            for a in 0..len + 6 {
                for b in a..len + 6 {
                    let want: Vec<_> =
                        (0..axis.parts).filter(|&i| axis.cut(i).max(a) < axis.cut(i + 1).min(b)).collect();
                    assert_eq!(axis.span(a, b).collect::<Vec<_>>(), want, "[{a}, {b}) in {axis:?}");
                }
            }
        }
    }

    #[test]
    fn near_square_factors_and_the_binary_search_give_exact_values() {
        assert_eq!(near_square(1), (1, 1));
        assert_eq!(near_square(7), (1, 7));
        assert_eq!(near_square(12), (3, 4));
        assert_eq!(near_square(16), (4, 4));
        assert_eq!(near_square(18), (3, 6));
        for n in 0..9 {
            for k in 0..=n {
                assert_eq!(partition_point(n, |i| i < k), k, "first of {n} at or above {k}");
            }
        }
    }

    #[test]
    fn runs_of_an_axis_too_long_for_the_formula_come_from_the_search() {
        // 2^63 + 10 granules in two runs: (k + 1) · 2 overflows for the upper half, where the cuts are searched.
        let hi = (1usize << 63) + 10;
        let axis = Axis::new(0, hi, 2, 1);
        assert_eq!(axis.cut(1), hi / 2);
        assert_eq!(axis.run_of(hi - 1), 1);
        assert_eq!(axis.run_of(1 << 63), 1);
        assert_eq!(axis.run_of(hi / 2 - 1), 0);
        assert_eq!(axis.span(hi / 2 - 1, hi), 0..2);
    }

    #[test]
    fn an_empty_range_has_no_chunks_and_a_grid_reports_its_range() {
        let g = ChunkGrid::new(GridBox::EMPTY, 4, SplitHint::OneD, [1; 3]);
        assert_eq!((g.len(), g.is_empty(), g.range()), (0, true, GridBox::EMPTY));
        let mut hits = Vec::new();
        g.for_each_intersecting(&GridBox::d1(0, 10), |i| hits.push(i));
        assert!(hits.is_empty());
        let g = ChunkGrid::new(GridBox::d2([2, 3], [12, 9]), 6, SplitHint::TwoD, [1; 3]);
        assert_eq!((g.len(), g.is_empty(), g.range()), (6, false, GridBox::d2([2, 3], [12, 9])));
        // 10 rows get the larger factor (3), 6 columns the smaller (2); row-major order.
        let chunks: Vec<_> = (0..g.len()).map(|i| g.chunk(i)).collect();
        assert_eq!(
            chunks,
            vec![
                GridBox::d2([2, 3], [5, 6]),
                GridBox::d2([2, 6], [5, 9]),
                GridBox::d2([5, 3], [8, 6]),
                GridBox::d2([5, 6], [8, 9]),
                GridBox::d2([8, 3], [12, 6]),
                GridBox::d2([8, 6], [12, 9]),
            ]
        );
        let mut hits = Vec::new();
        g.for_each_intersecting(&GridBox::d2([4, 5], [6, 7]), |i| hits.push(i));
        assert_eq!(hits, vec![0, 1, 2, 3]);
        // A taller than wide range gives the larger factor to dimension 1.
        let g = ChunkGrid::new(GridBox::d2([0, 0], [4, 12]), 6, SplitHint::TwoD, [1; 3]);
        assert_eq!((g.axes[0].parts, g.axes[1].parts), (2, 3));
        // A 1D range ignores the 2D hint; one part keeps the whole range.
        let g = ChunkGrid::new(GridBox::d1(0, 9), 3, SplitHint::TwoD, [1; 3]);
        assert_eq!((g.axes[0].parts, g.axes[1].parts), (3, 1));
        let g = ChunkGrid::new(GridBox::d2([0, 0], [4, 4]), 1, SplitHint::TwoD, [1; 3]);
        assert_eq!((g.len(), g.chunk(0)), (1, GridBox::d2([0, 0], [4, 4])));
    }

    #[test]
    fn intersecting_chunks_are_found_without_scanning() {
        let g = ChunkGrid::new(GridBox::d2([0, 0], [64, 64]), 16, SplitHint::TwoD, [1; 3]);
        let mut hits = Vec::new();
        g.for_each_intersecting(&GridBox::d2([15, 15], [17, 17]), |i| hits.push(i));
        assert_eq!(hits, vec![0, 1, 4, 5]);
        for i in 0..g.len() {
            let b = GridBox::d2([15, 15], [17, 17]);
            assert_eq!(hits.contains(&i), g.chunk(i).intersects(&b));
        }
    }
}
