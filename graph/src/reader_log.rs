//! [`ReaderLog`]: which nodes (tasks or commands) read which cells of a buffer since those cells were last written.
//!
//! A later writer of a cell must wait for its readers (an anti-dependency). The log keeps (reader, box) entries
//! rather than a region map of cells to reader sets: adding a read appends its boxes instead of splitting every
//! entry it overlaps, and a write cuts the boxes it hits into their pieces outside it without normalizing any
//! region (a stencil's halo rows stay two entries, with no heap allocation beyond the log). A horizon or epoch folds
//! every older entry into the boxes of one region, so the log stays as short as the reads in flight.

use crate::geometry::{GridBox, Region};

/// Readers of one buffer since the last write of what they read; see the [module docs](self).
#[derive(Clone, Debug)]
pub struct ReaderLog<I> {
    log: Vec<(I, GridBox)>,
    /// The previous log's storage, reused by the next rewrite.
    spare: Vec<(I, GridBox)>,
}

impl<I> Default for ReaderLog<I> {
    fn default() -> Self {
        Self { log: Vec::new(), spare: Vec::new() }
    }
}

impl<I: Copy + Ord> ReaderLog<I> {
    /// An empty log.
    pub fn new() -> Self {
        Self::default()
    }

    /// Notes that `reader` reads `boxes` (they may overlap each other and earlier entries; that only costs entries).
    pub fn add(&mut self, reader: I, boxes: impl IntoIterator<Item = GridBox>) {
        self.log.extend(boxes.into_iter().filter(|b| !b.is_empty()).map(|b| (reader, b)));
    }

    /// Forgets the reads of `region`: it was rewritten, and later writers order after that writer instead.
    pub fn clear(&mut self, region: &Region) {
        let cut = region.boxes();
        // Fast path: one box covers every entry (a task graph's whole-buffer rewrite, a single rank's chunk).
        if let [x] = cut {
            if self.log.iter().all(|(_, b)| x.contains(b)) {
                self.log.clear();
                return;
            }
        }
        let hit = |b: &GridBox| cut.iter().any(|c| c.intersects(b));
        let Some(first) = self.log.iter().position(|(_, b)| hit(b)) else {
            return;
        };
        let mut out = std::mem::take(&mut self.spare);
        out.clear();
        out.extend_from_slice(&self.log[..first]);
        for &(r, b) in &self.log[first..] {
            match cut {
                // Covered by the one cut box (the common case of a write of what was read): gone.
                [x] if x.contains(&b) => {}
                _ if hit(&b) => b.subtract_all_into(cut, |p| out.push((r, p))),
                _ => out.push((r, b)),
            }
        }
        self.spare = std::mem::replace(&mut self.log, out);
    }

    /// Calls `f` with every node that read some of `region` since its last write (a node may come more than once).
    pub fn for_each_in(&self, region: &Region, mut f: impl FnMut(I)) {
        let query = region.boxes();
        let mut last = None;
        for &(r, b) in &self.log {
            if last != Some(r) && query.iter().any(|q| q.intersects(&b)) {
                f(r);
                last = Some(r);
            }
        }
    }

    /// Calls `f` with every (reader, read box cut to `region`) pair overlapping `region`; the boxes may overlap.
    pub fn for_each_overlap(&self, region: &Region, mut f: impl FnMut(I, GridBox)) {
        for &(r, b) in &self.log {
            for q in region.boxes() {
                if q.intersects(&b) {
                    f(r, q.intersection(&b));
                }
            }
        }
    }

    /// Rewrites every reader up to `epoch` to `epoch` (the boxes of one region holding all their reads).
    pub fn collapse_before(&mut self, epoch: I) {
        if self.log.iter().all(|(r, _)| *r >= epoch) {
            return;
        }
        let older = Region::from_boxes(self.log.iter().filter(|(r, _)| *r <= epoch).map(|(_, b)| *b));
        let mut out = std::mem::take(&mut self.spare);
        out.clear();
        out.extend(older.boxes().iter().map(|b| (epoch, *b)));
        out.extend(self.log.iter().filter(|(r, _)| *r > epoch).copied());
        self.spare = std::mem::replace(&mut self.log, out);
    }

    /// Number of entries (for state-size measures).
    pub fn len(&self) -> usize {
        self.log.len()
    }

    /// Whether no read is logged.
    pub fn is_empty(&self) -> bool {
        self.log.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn readers_of(log: &ReaderLog<u32>, r: &Region) -> Vec<u32> {
        let mut out = Vec::new();
        log.for_each_in(r, |x| {
            if !out.contains(&x) {
                out.push(x);
            }
        });
        out.sort_unstable();
        out
    }

    #[test]
    fn writes_cut_reads_and_horizons_fold_older_readers() {
        let mut log = ReaderLog::new();
        log.add(1, [GridBox::d1(0, 10)]);
        log.add(2, [GridBox::d1(5, 15)]);
        // A write of [3, 12) leaves reader 1 with [0, 3) and reader 2 with [12, 15).
        log.clear(&Region::from(GridBox::d1(3, 12)));
        assert_eq!(readers_of(&log, &Region::from(GridBox::d1(3, 12))), Vec::<u32>::new());
        assert_eq!(readers_of(&log, &Region::from(GridBox::d1(2, 3))), vec![1]);
        assert_eq!(readers_of(&log, &Region::from(GridBox::d1(0, 20))), vec![1, 2]);
        let mut cut = Vec::new();
        log.for_each_overlap(&Region::from(GridBox::d1(1, 13)), |r, b| cut.push((r, b)));
        assert_eq!(cut, vec![(1, GridBox::d1(1, 3)), (2, GridBox::d1(12, 13))]);
        // Folding readers up to 1 into 5 keeps their cells; reader 2 stays itself.
        log.add(6, [GridBox::d1(20, 30)]);
        log.collapse_before(5);
        assert_eq!(readers_of(&log, &Region::from(GridBox::d1(0, 3))), vec![5]);
        assert_eq!(readers_of(&log, &Region::from(GridBox::d1(0, 40))), vec![5, 6]);
        assert_eq!(log.len(), 3, "[0, 3) and [12, 15) as 5, [20, 30) as 6");
    }
}
