//! [`ReaderLog`]: which nodes (tasks or commands) read which cells of a buffer since those cells were last written.
//!
//! A later writer of a cell must wait for its readers (an anti-dependency). The log keeps (reader, box) entries
//! rather than a region map of cells to reader sets: adding a read appends its boxes instead of splitting every
//! entry it overlaps, and a write cuts the boxes it hits into their pieces outside it without normalizing any
//! region (a stencil's halo rows stay two entries, with no heap allocation beyond the log). A horizon or epoch folds
//! every older entry into the boxes of one region, so the log stays as short as the reads in flight.

use crate::geometry::{complement_in, GridBox, Region, INDEXED_BOXES};

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
        if cut.len() > INDEXED_BOXES {
            return self.clear_many(region);
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

    /// [`clear`](Self::clear) of a region of many boxes (a custom mapper of scattered cells): each entry looks up the
    /// boxes it meets and keeps its cells outside them in one walk, instead of testing and cutting box by box.
    #[inline(never)]
    fn clear_many(&mut self, region: &Region) {
        let Some(first) = self.log.iter().position(|(_, b)| region.intersects_box(b)) else {
            return;
        };
        let mut out = std::mem::take(&mut self.spare);
        out.clear();
        out.extend_from_slice(&self.log[..first]);
        let mut met = Vec::new();
        for &(r, b) in &self.log[first..] {
            met.clear();
            region.for_each_box_meeting(&b, |c| {
                met.push(c.intersection(&b));
                false
            });
            complement_in(&b, &met, &mut |p| out.push((r, p)));
        }
        self.spare = std::mem::replace(&mut self.log, out);
    }

    /// Calls `f` with every node that read some of `region` since its last write (a node may come more than once).
    pub fn for_each_in(&self, region: &Region, mut f: impl FnMut(I)) {
        let query = region.boxes();
        let mut last = None;
        if query.len() > INDEXED_BOXES {
            // Many boxes: looked up rather than tested one by one.
            for &(r, b) in &self.log {
                if last != Some(r) && region.intersects_box(&b) {
                    f(r);
                    last = Some(r);
                }
            }
            return;
        }
        for &(r, b) in &self.log {
            if last != Some(r) && query.iter().any(|q| q.intersects(&b)) {
                f(r);
                last = Some(r);
            }
        }
    }

    /// Calls `f` with every (reader, read box cut to `region`) pair overlapping `region`; the boxes may overlap.
    pub fn for_each_overlap(&self, region: &Region, mut f: impl FnMut(I, GridBox)) {
        if region.boxes().len() > INDEXED_BOXES {
            return self.for_each_overlap_many(region, &mut f);
        }
        for &(r, b) in &self.log {
            for q in region.boxes() {
                if q.intersects(&b) {
                    f(r, q.intersection(&b));
                }
            }
        }
    }

    /// [`for_each_overlap`](Self::for_each_overlap) of a region of many boxes: the same pairs in the same order (a
    /// region's boxes come in canonical order either way), looked up rather than tested one by one.
    #[inline(never)]
    fn for_each_overlap_many(&self, region: &Region, f: &mut dyn FnMut(I, GridBox)) {
        for &(r, b) in &self.log {
            region.for_each_box_meeting(&b, |q| {
                f(r, q.intersection(&b));
                false
            });
        }
    }

    /// Rewrites every reader up to `epoch` to `epoch` (the boxes of one region holding all their reads).
    pub fn collapse_before(&mut self, epoch: I) {
        if self.log.iter().all(|(r, _)| *r >= epoch) {
            return;
        }
        // Readers of one box again and again (a constant input that every task reads whole): that box is the region,
        // with nothing to normalize. Other logs stop looking at their first older box outside the first one.
        let first = self.log.iter().find(|(r, _)| *r <= epoch).map_or(GridBox::EMPTY, |(_, b)| *b);
        let older = if self.log.iter().all(|(r, b)| *r > epoch || first.contains(b)) {
            Region::from(first)
        } else {
            Region::from_boxes(self.log.iter().filter(|(r, _)| *r <= epoch).map(|(_, b)| *b))
        };
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

    /// Every entry, in log order (one query box covering everything cuts nothing).
    fn entries(log: &ReaderLog<u32>) -> Vec<(u32, GridBox)> {
        let mut out = Vec::new();
        log.for_each_overlap(&Region::from(GridBox::d1(0, 1000)), |r, b| out.push((r, b)));
        out
    }

    #[test]
    fn an_empty_log_has_no_entries_and_skips_empty_boxes() {
        let mut log = ReaderLog::<u32>::new();
        assert!(log.is_empty());
        assert_eq!(log.len(), 0);
        log.add(1, [GridBox::EMPTY, GridBox::d1(4, 4)]);
        assert!(log.is_empty(), "empty boxes are no reads");
        log.add(1, [GridBox::d1(0, 2), GridBox::EMPTY, GridBox::d1(5, 6)]);
        assert!(!log.is_empty());
        assert_eq!(log.len(), 2);
        assert_eq!(entries(&log), vec![(1, GridBox::d1(0, 2)), (1, GridBox::d1(5, 6))]);
    }

    #[test]
    fn collapsing_folds_every_reader_when_all_are_older_than_the_epoch() {
        let mut log = ReaderLog::new();
        log.add(1, [GridBox::d1(0, 4)]);
        log.add(2, [GridBox::d1(4, 8)]);
        log.add(3, [GridBox::d1(20, 30)]);
        log.collapse_before(9);
        // One region: [0, 8) joins, [20, 30) stays apart; both now read by the epoch.
        assert_eq!(entries(&log), vec![(9, GridBox::d1(0, 8)), (9, GridBox::d1(20, 30))]);
    }

    #[test]
    fn collapsing_keeps_the_epochs_own_reads_once_and_newer_readers_as_they_are() {
        let mut log = ReaderLog::new();
        log.add(2, [GridBox::d1(0, 4)]);
        log.add(5, [GridBox::d1(4, 6)]);
        log.add(7, [GridBox::d1(10, 12)]);
        log.add(6, [GridBox::d1(2, 5)]);
        log.collapse_before(5);
        // Readers 2 and 5 (the epoch itself counts as folded) become one box of 5; 7 and 6 keep their order.
        assert_eq!(entries(&log), vec![(5, GridBox::d1(0, 6)), (7, GridBox::d1(10, 12)), (6, GridBox::d1(2, 5))]);
        // Nothing older left: collapsing again changes nothing.
        log.collapse_before(5);
        assert_eq!(log.len(), 3);
        log.collapse_before(1);
        assert_eq!(log.len(), 3, "an epoch older than every reader folds nothing");
    }

    #[test]
    fn a_write_of_everything_read_empties_the_log() {
        let mut log = ReaderLog::new();
        log.add(1, [GridBox::d1(0, 4), GridBox::d1(6, 8)]);
        log.add(2, [GridBox::d1(2, 7)]);
        log.clear(&Region::from(GridBox::d1(0, 8)));
        assert!(log.is_empty());
        // A two-box write covering all reads empties it too.
        log.add(3, [GridBox::d1(0, 2), GridBox::d1(6, 8)]);
        log.clear(&Region::from_boxes([GridBox::d1(0, 3), GridBox::d1(5, 8)]));
        assert!(log.is_empty(), "{:?}", entries(&log));
    }

    #[test]
    fn a_write_keeps_untouched_entries_in_order_and_cuts_hit_ones_into_pieces() {
        let mut log = ReaderLog::new();
        log.add(1, [GridBox::d1(0, 2)]);
        log.add(2, [GridBox::d1(10, 20)]);
        log.add(3, [GridBox::d1(30, 32)]);
        log.add(4, [GridBox::d1(12, 14)]);
        // A one-box write inside reader 2's box: 2 keeps both sides, 4 (covered) goes, 1 and 3 stay.
        log.clear(&Region::from(GridBox::d1(11, 15)));
        assert_eq!(
            entries(&log),
            vec![(1, GridBox::d1(0, 2)), (2, GridBox::d1(10, 11)), (2, GridBox::d1(15, 20)), (3, GridBox::d1(30, 32)),]
        );
        // A two-box write: each hit box loses both parts, misses stay.
        log.clear(&Region::from_boxes([GridBox::d1(1, 2), GridBox::d1(16, 18)]));
        assert_eq!(
            entries(&log),
            vec![
                (1, GridBox::d1(0, 1)),
                (2, GridBox::d1(10, 11)),
                (2, GridBox::d1(15, 16)),
                (2, GridBox::d1(18, 20)),
                (3, GridBox::d1(30, 32)),
            ]
        );
        // A write that hits nothing changes nothing.
        log.clear(&Region::from(GridBox::d1(40, 50)));
        assert_eq!(log.len(), 5);
    }

    #[test]
    fn readers_are_reported_once_per_run_of_their_entries() {
        let mut log = ReaderLog::new();
        log.add(1, [GridBox::d1(0, 2), GridBox::d1(4, 6)]);
        log.add(2, [GridBox::d1(1, 5)]);
        let mut seen = Vec::new();
        log.for_each_in(&Region::from(GridBox::d1(0, 10)), |r| seen.push(r));
        assert_eq!(seen, vec![1, 2]);
        seen.clear();
        log.for_each_in(&Region::from(GridBox::d1(5, 6)), |r| seen.push(r));
        assert_eq!(seen, vec![1]);
        let mut cut = Vec::new();
        log.for_each_overlap(&Region::from_boxes([GridBox::d1(0, 1), GridBox::d1(5, 9)]), |r, b| cut.push((r, b)));
        assert_eq!(cut, vec![(1, GridBox::d1(0, 1)), (1, GridBox::d1(5, 6))]);
    }

    #[test]
    fn the_log_stays_as_short_as_the_reads_in_flight_over_a_long_run() {
        // An input buffer of 64 cells, never written: each step's 8 chunks read their halos [c*8-1, c*8+9), and every
        // fourth step a horizon folds all readers so far. Without the folds the log grows by 8 entries per step.
        let mut log = ReaderLog::new();
        let mut max_len = 0;
        for step in 1..=200u32 {
            for c in 0..8usize {
                log.add(step, [GridBox::d1((c * 8).saturating_sub(1), (c * 8 + 9).min(64))]);
            }
            max_len = max_len.max(log.len());
            if step % 4 == 0 {
                log.collapse_before(step);
                assert_eq!(entries(&log), vec![(step, GridBox::d1(0, 64))], "step {step}");
            }
        }
        assert_eq!(max_len, 1 + 4 * 8, "the folded region plus four steps of reads");
    }
}
