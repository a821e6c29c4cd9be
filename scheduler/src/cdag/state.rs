//! What one rank tracks per buffer: each cell's last writer, what each target already received, pending reductions.

use celer_graph::{
    BufferExtent, BufferId, CommandId, GridBox, ReaderLog, ReductionId, Region, RegionMap, ResourceIdent,
};
use smallvec::SmallVec;

/// Where a rank's copy of a cell stands.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub(super) struct WriterState {
    /// The local command that last wrote the cell (`None`: never written locally, e.g. uninitialized).
    pub(super) cmd: Option<CommandId>,
    /// The local copy is the newest anywhere.
    pub(super) fresh: bool,
    /// The local copy was received (or is host data every rank has), so this rank never pushes it.
    pub(super) replicated: bool,
}

impl WriterState {
    /// This rank produced the cell and holds its newest copy: the data this rank pushes.
    pub(super) fn is_original(&self) -> bool {
        self.fresh && !self.replicated && self.cmd.is_some()
    }
}

/// A set of ranks as sorted, disjoint, non-adjacent half-open intervals: "every rank below 900" is one interval,
/// so the all-to-all patterns, where a region's receivers grow rank by rank, cost O(1) per update instead of O(ranks).
#[derive(Clone, PartialEq, Eq, Hash, Default, Debug)]
pub(super) struct RankSet(SmallVec<[(u32, u32); 2]>);

impl RankSet {
    pub(super) fn new() -> Self {
        Self::default()
    }

    /// The ranks `[0, n)`.
    pub(super) fn below(n: u32) -> Self {
        if n == 0 {
            Self::new()
        } else {
            Self(smallvec::smallvec![(0, n)])
        }
    }

    pub(super) fn contains(&self, r: u32) -> bool {
        let i = self.0.partition_point(|&(_, end)| end <= r);
        self.0.get(i).is_some_and(|&(start, _)| start <= r)
    }

    /// Adds `r`, merging with neighbouring intervals.
    pub(super) fn insert(&mut self, r: u32) {
        let i = self.0.partition_point(|&(_, end)| end < r);
        match self.0.get(i).copied() {
            Some((start, end)) if start <= r && r < end => {}
            Some((start, end)) if end == r => {
                // Extends interval i upwards; it may now touch interval i + 1.
                self.0[i] = (start, end + 1);
                if let Some(&(next_start, next_end)) = self.0.get(i + 1) {
                    if next_start == end + 1 {
                        self.0[i] = (start, next_end);
                        self.0.remove(i + 1);
                    }
                }
            }
            Some((start, end)) if start == r + 1 => self.0[i] = (r, end),
            _ => self.0.insert(i, (r, r + 1)),
        }
    }

    pub(super) fn len(&self) -> usize {
        self.0.iter().map(|&(a, b)| (b - a) as usize).sum()
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        self.0.iter().flat_map(|&(a, b)| a..b)
    }
}

/// Per target rank, the region of this rank's data that rank already received and nobody rewrote since; sorted by
/// rank. A sorted vector rather than a hash map: nearest-neighbour patterns hold two targets, where clearing by
/// walking a vector costs a fraction of a hash map's `retain`, and all-to-all patterns look targets up by binary search.
#[derive(Debug, Default)]
pub(super) struct SentTo(Vec<(u32, Region)>);

impl SentTo {
    /// Forgets what was sent of `region` (it was rewritten, or is no longer ours to send).
    pub(super) fn clear(&mut self, region: &Region) {
        if self.0.is_empty() {
            return;
        }
        // Fast path: one box covers everything sent (a task rewrote the whole buffer).
        let cut = region.boxes();
        if let [b] = cut {
            if self.0.iter().all(|(_, sent)| sent.boxes().iter().all(|s| b.contains(s))) {
                self.0.clear();
                return;
            }
        }
        // Most rewrites (the halo an await-push brings) miss everything sent: look before rewriting.
        if self.0.iter().any(|(_, sent)| sent.boxes().iter().any(|s| cut.iter().any(|c| c.intersects(s)))) {
            self.0.retain_mut(|(_, sent)| {
                if sent.intersects(region) {
                    *sent = sent.difference(region);
                }
                !sent.is_empty()
            });
        }
    }

    /// The part of `need` that `target` has not received yet.
    pub(super) fn unsent(&self, target: u32, need: &Region) -> Region {
        match self.0.binary_search_by_key(&target, |e| e.0) {
            Ok(i) if self.0[i].1.intersects(need) => need.difference(&self.0[i].1),
            _ => need.clone(),
        }
    }

    /// Notes that `target` received `region`.
    pub(super) fn record(&mut self, target: u32, region: &Region) {
        match self.0.binary_search_by_key(&target, |e| e.0) {
            Ok(i) => {
                let sent = &mut self.0[i].1;
                *sent = sent.union(region);
            }
            Err(i) => self.0.insert(i, (target, region.clone())),
        }
    }

    /// Boxes held, for the state-size measure.
    pub(super) fn boxes(&self) -> usize {
        self.0.iter().map(|(_, r)| r.boxes().len()).sum()
    }
}

/// A reduction whose partial results wait on their ranks until a task reads the buffer.
#[derive(Clone, Debug)]
pub(super) struct PendingReduction {
    pub(super) id: ReductionId,
    /// Ranks that ran a chunk and so hold a partial result.
    pub(super) contributors: RankSet,
}

#[derive(Debug)]
pub(super) struct BufferState {
    pub(super) dims: usize,
    pub(super) extent: GridBox,
    /// The extent for messages: `extent` loses the shape of an empty buffer (`[4, 0]`), this keeps it.
    pub(super) shape: BufferExtent,
    pub(super) name: Option<String>,
    pub(super) last_writer: RegionMap<WriterState>,
    /// A box holding every cell this rank originally produced and still holds fresh (what it may have to push).
    /// Writes grow it, and only horizons and epochs shrink it back to the exact hull, so in between it may be loose;
    /// tasks whose remote chunks cannot read anything inside it skip the search for owned data altogether. Not kept
    /// on a single rank, which never pushes.
    pub(super) owned_hull: GridBox,
    pub(super) sent_to: SentTo,
    /// Local commands that read each cell since its last local write.
    pub(super) readers: ReaderLog<CommandId>,
    pub(super) pending_reduction: Option<PendingReduction>,
    /// Where the buffer was written locally in the last few windows between sync commands: what settles an edge on
    /// a horizon that stands for writers of some of its cells.
    pub(super) write_windows: AccessWindows,
    /// The same for local reads: what settles an anti-dependency on a horizon that stands for readers.
    pub(super) read_windows: AccessWindows,
}

impl BufferState {
    /// Records `value` as the newest write of `region`.
    pub(super) fn write(&mut self, region: &Region, value: WriterState) {
        self.last_writer.update_region(region, value);
        self.write_windows.touched(region.bounding_box());
    }

    pub(super) fn ident(&self, id: BufferId) -> ResourceIdent {
        ResourceIdent::buffer(id, self.name.as_deref())
    }
}

/// How many closed windows [`AccessWindows`] keeps apart; older ones are merged.
const ACCESS_WINDOWS: usize = 8;

/// A buffer's local writes (or reads) by window between sync commands (horizons and epochs), each window as the
/// bounding box of what it touched, for [`settle`](Self::settle). A horizon applied to the last-writer map (or the
/// reader log) stands for every older writer (reader), and waits for everything in its front (a slow host task,
/// say); the writers (readers) of given cells completed once the sync command closing the window of their last
/// access did, which is often much older.
#[derive(Debug)]
pub(super) struct AccessWindows {
    /// What was touched since the newest sync command.
    open: GridBox,
    /// Each closed window: the sync command that closed it and what it touched, oldest first. When there are more
    /// than [`ACCESS_WINDOWS`], the two oldest merge (the later command, both boxes' hull): coarser, still right.
    closed: std::collections::VecDeque<(CommandId, GridBox)>,
    /// Every access before the oldest closed window completed once this sync command did.
    floor: CommandId,
}

impl AccessWindows {
    /// No accesses since `floor` (the sync command new commands hang off when the buffer is created).
    pub(super) fn new(floor: CommandId) -> Self {
        Self { open: GridBox::EMPTY, closed: Default::default(), floor }
    }

    /// Notes a local access inside `hull`.
    pub(super) fn touched(&mut self, hull: GridBox) {
        self.open = self.open.bounding_box(&hull);
    }

    /// Closes the open window with sync command `sync`.
    pub(super) fn close(&mut self, sync: CommandId) {
        if self.open.is_empty() {
            return;
        }
        self.closed.push_back((sync, std::mem::replace(&mut self.open, GridBox::EMPTY)));
        if self.closed.len() > ACCESS_WINDOWS {
            let (_, older) = self.closed.pop_front().expect("more than one window");
            let oldest = self.closed.front_mut().expect("more than one window");
            oldest.1 = oldest.1.bounding_box(&older);
        }
    }

    /// A sync command whose completion means every local access of the cells in `bx` completed: the one closing
    /// the newest window that touched `bx`, or the floor. `None` if the open window did.
    pub(super) fn settle(&self, bx: &GridBox) -> Option<CommandId> {
        if self.open.intersects(bx) {
            return None;
        }
        let newest = self.closed.iter().rev().find(|(_, w)| w.intersects(bx));
        Some(newest.map_or(self.floor, |&(sync, _)| sync))
    }
}

/// Marks `region` as written elsewhere: the local copy is no longer the newest, and no longer ours to push.
pub(super) fn mark_stale(state: &mut BufferState, region: &Region) {
    state.last_writer.update_values_in(region, |w| WriterState { fresh: false, ..*w });
    state.sent_to.clear(region);
}

#[cfg(test)]
mod tests {
    use super::{AccessWindows, RankSet, SentTo, WriterState, ACCESS_WINDOWS};
    use celer_graph::{CommandId, GridBox, Region};
    use std::collections::BTreeSet;

    fn r(lo: usize, hi: usize) -> Region {
        Region::from(GridBox::d1(lo, hi))
    }

    #[test]
    fn the_newest_window_that_wrote_some_cells_settles_them_and_old_windows_merge() {
        let b = |lo, hi| GridBox::d1(lo, hi);
        let mut w = AccessWindows::new(CommandId(3));
        assert_eq!(w.settle(&b(0, 100)), Some(CommandId(3)), "nothing written: the floor");
        w.touched(b(0, 10));
        assert_eq!(w.settle(&b(5, 6)), None, "written in the open window");
        assert_eq!(w.settle(&b(10, 20)), Some(CommandId(3)));
        w.close(CommandId(7));
        w.close(CommandId(8)); // nothing written: no window
        w.touched(b(20, 30));
        w.close(CommandId(9));
        assert_eq!(w.settle(&b(5, 6)), Some(CommandId(7)));
        assert_eq!(w.settle(&b(5, 25)), Some(CommandId(9)), "the newest window wins");
        assert_eq!(w.settle(&b(40, 50)), Some(CommandId(3)));
        // Windows beyond the limit merge from the oldest: [0, 10) joins [20, 30) under the later command.
        for k in 0..ACCESS_WINDOWS as u64 - 2 {
            w.touched(b(100 + k as usize, 101 + k as usize));
            w.close(CommandId(10 + k));
        }
        assert_eq!(w.settle(&b(5, 6)), Some(CommandId(7)));
        w.touched(b(200, 201));
        w.close(CommandId(20));
        assert_eq!(w.settle(&b(5, 6)), Some(CommandId(9)), "merged into the next window");
        assert_eq!(w.settle(&b(15, 16)), Some(CommandId(9)), "inside the merged hull");
        assert_eq!(w.settle(&b(40, 50)), Some(CommandId(3)), "the floor stays");
    }

    #[test]
    fn rank_sets_match_a_plain_set_and_stay_merged() {
        let mut set = RankSet::new();
        let mut model = BTreeSet::new();
        // A fixed scramble of 0..64, with repeats.
        for k in 0..200u32 {
            let r = (k * 37 + k / 3) % 64;
            set.insert(r);
            model.insert(r);
            assert_eq!(set.iter().collect::<BTreeSet<_>>(), model);
            assert_eq!(set.len(), model.len());
            for q in 0..66 {
                assert_eq!(set.contains(q), model.contains(&q), "rank {q} after inserting {r}");
            }
            // Intervals are sorted, disjoint and never adjacent.
            assert!(set.0.windows(2).all(|w| w[0].1 < w[1].0), "{:?}", set.0);
        }
        for r in 0..64 {
            set.insert(r);
        }
        assert_eq!(set.0.as_slice(), &[(0, 64)], "all of 0..64 is one interval");
        assert_eq!(RankSet::below(5).iter().collect::<Vec<_>>(), vec![0, 1, 2, 3, 4]);
    }

    #[test]
    fn inserting_a_rank_joins_the_intervals_it_touches() {
        let mut set = RankSet::new();
        for r in [5, 7, 10, 3] {
            set.insert(r);
        }
        assert_eq!(set.0.as_slice(), &[(3, 4), (5, 6), (7, 8), (10, 11)]);
        set.insert(6); // closes the gap between [5, 6) and [7, 8)
        assert_eq!(set.0.as_slice(), &[(3, 4), (5, 8), (10, 11)]);
        set.insert(9); // extends [10, 11) downwards
        assert_eq!(set.0.as_slice(), &[(3, 4), (5, 8), (9, 11)]);
        set.insert(4); // closes the gap between [3, 4) and [5, 8)
        assert_eq!(set.0.as_slice(), &[(3, 8), (9, 11)]);
        set.insert(11); // extends [9, 11) upwards, with nothing above
        set.insert(2); // extends [3, 8) downwards
        set.insert(6); // already in
        assert_eq!(set.0.as_slice(), &[(2, 8), (9, 12)]);
        assert_eq!((set.len(), set.contains(8), set.contains(9)), (9, false, true));
    }

    #[test]
    fn below_zero_is_empty_and_below_n_is_one_interval() {
        assert_eq!(RankSet::below(0), RankSet::new());
        assert_eq!(RankSet::below(0).len(), 0);
        assert_eq!(RankSet::below(3).0.as_slice(), &[(0, 3)]);
        assert_eq!(RankSet::below(3).len(), 3);
    }

    #[test]
    fn sent_regions_are_kept_per_target_until_rewritten() {
        let mut sent = SentTo::default();
        sent.clear(&r(0, 8)); // nothing sent yet: nothing to forget
        sent.record(2, &r(0, 4));
        sent.record(1, &r(4, 6));
        sent.record(2, &r(6, 8));
        assert_eq!(sent.0.iter().map(|e| e.0).collect::<Vec<_>>(), vec![1, 2], "sorted by target");
        assert_eq!(sent.boxes(), 3);
        assert_eq!(sent.unsent(2, &r(2, 8)), r(4, 6));
        assert_eq!(sent.unsent(1, &r(2, 8)), Region::from_boxes([GridBox::d1(2, 4), GridBox::d1(6, 8)]));
        assert_eq!(sent.unsent(3, &r(2, 8)), r(2, 8), "target 3 received nothing");
        assert_eq!(sent.unsent(1, &r(0, 2)), r(0, 2), "nothing of it was sent to target 1");
        // A rewrite of [3, 5) forgets it for every target; what is left stays sent.
        sent.clear(&r(3, 5));
        assert_eq!(sent.unsent(2, &r(0, 8)), r(3, 6));
        assert_eq!(sent.unsent(1, &r(0, 8)), Region::from_boxes([GridBox::d1(0, 5), GridBox::d1(6, 8)]));
        // A rewrite of target 1's whole region drops the target.
        sent.clear(&r(5, 6));
        assert_eq!(sent.0.iter().map(|e| e.0).collect::<Vec<_>>(), vec![2]);
        // A rewrite that misses everything sent changes nothing.
        sent.clear(&r(3, 4));
        assert_eq!(sent.unsent(2, &r(0, 8)), r(3, 6));
        // A rewrite of everything forgets everything, also in two boxes.
        sent.clear(&Region::from_boxes([GridBox::d1(0, 4), GridBox::d1(4, 8)]));
        assert_eq!((sent.0.len(), sent.boxes()), (0, 0));
        sent.record(1, &r(0, 2));
        sent.clear(&r(0, 8));
        assert_eq!(sent.0.len(), 0);
    }

    #[test]
    fn only_fresh_data_this_rank_wrote_is_original() {
        let w = |cmd: Option<u64>, fresh, replicated| WriterState { cmd: cmd.map(CommandId), fresh, replicated };
        assert!(w(Some(1), true, false).is_original());
        assert!(!w(Some(1), false, false).is_original(), "stale");
        assert!(!w(Some(1), true, true).is_original(), "received");
        assert!(!w(None, true, false).is_original(), "never written here");
    }
}
