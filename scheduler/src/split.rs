//! Splitting a task's index space into chunks, one per rank, as a regular grid.
//!
//! [`ChunkGrid`] splits along dimension 0 (or a near-square grid over dimensions 0 and 1), honours a granularity
//! (every chunk boundary is a multiple of it, counted from the range's start) and never makes an empty chunk: with
//! fewer granules than ranks, fewer chunks come out. Chunk `i` (row-major over the grid) goes to rank `i`. Because
//! the grid is regular, the chunks touching a box are found by binary search on the cut positions, without
//! visiting all of them.

use celer_graph::{GridBox, SplitHint};

/// A regular grid of chunks over a task's index space.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChunkGrid {
    range: GridBox,
    /// Cut positions along dimensions 0 and 1, including both ends.
    cuts: [Vec<usize>; 2],
}

/// Cut positions splitting `[lo, hi)` into at most `parts` pieces of whole granules, as evenly as possible.
fn split_axis(lo: usize, hi: usize, parts: usize, granularity: usize) -> Vec<usize> {
    let len = hi - lo;
    let granules = len.div_ceil(granularity);
    let parts = parts.clamp(1, granules.max(1));
    (0..=parts).map(|i| (lo + (i * granules / parts) * granularity).min(hi)).collect()
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
    /// Splits `range` into at most `parts` chunks.
    ///
    /// # Panics
    /// If `parts` is zero or a granularity is zero.
    pub fn new(range: GridBox, parts: usize, hint: SplitHint, granularity: [usize; 3]) -> Self {
        assert!(parts >= 1, "at least one chunk");
        assert!(granularity.iter().all(|&g| g >= 1), "granularity must be at least 1");
        let (min, max) = (range.min(), range.max());
        let whole = |d: usize| vec![min[d], max[d]];
        if range.is_empty() {
            return Self { range, cuts: [vec![0, 0], vec![0, 0]] };
        }
        let cuts = match hint {
            SplitHint::TwoD if range.effective_dims() >= 2 && parts > 1 => {
                let (small, large) = near_square(parts);
                // Give the larger factor to the longer dimension.
                let (p0, p1) = if max[0] - min[0] >= max[1] - min[1] { (large, small) } else { (small, large) };
                [split_axis(min[0], max[0], p0, granularity[0]), split_axis(min[1], max[1], p1, granularity[1])]
            }
            _ => [split_axis(min[0], max[0], parts, granularity[0]), whole(1)],
        };
        Self { range, cuts }
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
        (self.cuts[0].len() - 1) * (self.cuts[1].len() - 1)
    }

    /// Whether there are no chunks.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Chunk `i` (row-major: dimension 0 outer).
    pub fn chunk(&self, i: usize) -> GridBox {
        let n1 = self.cuts[1].len() - 1;
        let (i0, i1) = (i / n1, i % n1);
        let (mut min, mut max) = (self.range.min(), self.range.max());
        min[0] = self.cuts[0][i0];
        max[0] = self.cuts[0][i0 + 1];
        min[1] = self.cuts[1][i1];
        max[1] = self.cuts[1][i1 + 1];
        GridBox::new(min, max)
    }

    /// Indices of the chunks that intersect `b`, in increasing order.
    pub fn chunks_intersecting(&self, b: &GridBox) -> impl Iterator<Item = usize> + '_ {
        let b = b.intersection(&self.range);
        let span = |d: usize| -> (usize, usize) {
            if b.is_empty() {
                return (0, 0);
            }
            let c = &self.cuts[d];
            // First chunk whose end lies above b.min, last chunk whose start lies below b.max.
            let first = c[1..].partition_point(|&end| end <= b.min()[d]);
            let last = c[..c.len() - 1].partition_point(|&start| start < b.max()[d]);
            (first, last.max(first))
        };
        let (a0, e0) = span(0);
        let (a1, e1) = span(1);
        let n1 = self.cuts[1].len() - 1;
        (a0..e0).flat_map(move |i0| (a1..e1).map(move |i1| i0 * n1 + i1))
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
        assert_eq!((g.cuts[0].len() - 1, g.cuts[1].len() - 1), (3, 2));
    }

    #[test]
    fn intersecting_chunks_are_found_without_scanning() {
        let g = ChunkGrid::new(GridBox::d2([0, 0], [64, 64]), 16, SplitHint::TwoD, [1; 3]);
        let hits: Vec<_> = g.chunks_intersecting(&GridBox::d2([15, 15], [17, 17])).collect();
        assert_eq!(hits, vec![0, 1, 4, 5]);
        for i in 0..g.len() {
            let b = GridBox::d2([15, 15], [17, 17]);
            assert_eq!(hits.contains(&i), g.chunk(i).intersects(&b));
        }
    }
}
