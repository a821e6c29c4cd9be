//! [`RegionMap`]: a map from every cell of an extent to a value, stored as disjoint boxes.
//!
//! The task and command generators keep one per buffer: "which task last wrote each cell", "who owns the newest copy
//! of each cell". Updates overwrite a region with one value; queries return the `(box, value)` pairs overlapping a
//! region. Boxes with equal values are re-merged after every update, so the map holds about as many boxes as there
//! are distinct (value, shape) pairs — and horizons, which rewrite many old values to one ([`RegionMap::apply_to_values`]),
//! shrink it back.
//!
//! # Examples
//! ```
//! use celer_graph::{GridBox, Region, RegionMap};
//! let mut writers = RegionMap::new(GridBox::d1(0, 100), 0u32);
//! writers.update_box(&GridBox::d1(0, 50), 1);
//! writers.update_box(&GridBox::d1(50, 100), 2);
//! let q = writers.query(&Region::from(GridBox::d1(40, 60)));
//! assert_eq!(q, vec![(GridBox::d1(40, 50), 1), (GridBox::d1(50, 60), 2)]);
//! writers.apply_to_values(|_| 7); // a horizon collapses both writers into one
//! assert_eq!(writers.len(), 1);
//! ```

use std::fmt;

use smallvec::SmallVec;

use crate::geometry::{
    apart_along_one_dimension, complement_in, for_each_meeting, for_each_meeting_at, GridBox, Region, INDEXED_BOXES,
};

/// A total map from the cells of `extent` to values of `V`, as disjoint `(box, value)` entries.
///
/// Cost: updates and queries scan the entries once (horizons keep them few); an entry finds the boxes of a region of
/// more than 8 boxes it meets by binary search in the region's slab order rather than testing each, so a region of
/// many boxes costs `O(entries · log boxes)` plus what they meet, not their product. After an update, the new and cut
/// boxes merge with equal-valued neighbours that share a whole face (more than 32 of them: every value re-normalized
/// at once); [`apply_to_values`](Self::apply_to_values) re-normalizes every value fully, so horizons always bring the
/// map back to its fewest-box form.
#[derive(Clone)]
pub struct RegionMap<V> {
    extent: GridBox,
    entries: Vec<(GridBox, V)>,
}

impl<V: Clone + Eq + std::hash::Hash> RegionMap<V> {
    /// A map over `extent` with every cell set to `default`.
    pub fn new(extent: GridBox, default: V) -> Self {
        let entries = if extent.is_empty() { vec![] } else { vec![(extent, default)] };
        Self { extent, entries }
    }

    /// The box every cell of the map lies in.
    pub fn extent(&self) -> GridBox {
        self.extent
    }

    /// Number of stored boxes.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the map's extent is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// All entries, in no particular order.
    pub fn entries(&self) -> &[(GridBox, V)] {
        &self.entries
    }

    /// Sets every cell of `b` (clamped to the extent) to `value`.
    pub fn update_box(&mut self, b: &GridBox, value: V) {
        let b = b.intersection(&self.extent);
        if b.is_empty() {
            return;
        }
        // Fast path: the box is exactly one entry.
        if let Some(i) = self.entries.iter().position(|e| e.0 == b) {
            if self.entries[i].1 != value {
                self.entries[i].1 = value;
                if self.entries.len() > LAZY_MERGE_LIMIT {
                    self.merge_locally(smallvec::smallvec![i]);
                }
            }
            return;
        }
        self.update_boxes(std::slice::from_ref(&b), value);
    }

    /// Sets every cell of `region` (clamped to the extent) to `value`.
    pub fn update_region(&mut self, region: &Region, value: V) {
        match region.boxes() {
            [] => {}
            [b] => self.update_box(b, value),
            boxes => {
                // Fast path: every box is exactly one entry (an await-push refreshing the halo rows it refreshed
                // before): set the values in place.
                let mut exact: WorkList = SmallVec::new();
                if boxes.len() > INDEXED_BOXES {
                    // Many boxes: look the entries up by box instead of scanning them once per box.
                    let at: hashbrown::HashMap<GridBox, usize> =
                        self.entries.iter().enumerate().map(|(i, e)| (e.0, i)).collect();
                    for b in boxes {
                        match at.get(b) {
                            Some(&i) => exact.push(i),
                            None => break,
                        }
                    }
                } else {
                    for b in boxes {
                        match self.entries.iter().position(|e| e.0 == *b) {
                            Some(i) => exact.push(i),
                            None => break,
                        }
                    }
                }
                if exact.len() == boxes.len() {
                    for &i in &exact {
                        self.entries[i].1 = value.clone();
                    }
                    if self.entries.len() > LAZY_MERGE_LIMIT {
                        self.merge_locally(exact);
                    }
                    return;
                }
                let mut clamped: SmallVec<[GridBox; 8]> = SmallVec::new();
                for b in boxes {
                    let c = b.intersection(&self.extent);
                    if !c.is_empty() {
                        clamped.push(c);
                    }
                }
                self.update_boxes(&clamped, value);
            }
        }
    }

    /// Sets the cells of `boxes` (disjoint, inside the extent, in slab order: a region's boxes, each cut to one box)
    /// to `value`.
    fn update_boxes(&mut self, boxes: &[GridBox], value: V) {
        if boxes.len() > INDEXED_BOXES {
            self.update_boxes_by(Cuts::<true> { boxes }, value)
        } else {
            self.update_boxes_by(Cuts::<false> { boxes }, value)
        }
    }

    /// [`update_boxes`](Self::update_boxes), looking the boxes up as `cuts` says.
    fn update_boxes_by<const INDEXED: bool>(&mut self, cuts: Cuts<'_, INDEXED>, value: V) {
        // Nothing to do when every overlapped entry already holds the value (common: clearing cleared state).
        if self.entries.iter().all(|(eb, ev)| *ev == value || !cuts.meet(eb)) {
            return;
        }
        let mut added: SmallVec<[(GridBox, V); 8]> = SmallVec::new();
        let mut pieces: SmallVec<[GridBox; 8]> = SmallVec::new();
        let mut next: SmallVec<[GridBox; 8]> = SmallVec::new();
        let mut met: SmallVec<[GridBox; 8]> = SmallVec::new();
        // Walk down so that swap_remove only ever moves an entry already visited.
        for i in (0..self.entries.len()).rev() {
            if !cuts.meet(&self.entries[i].0) {
                continue;
            }
            let (eb, ev) = self.entries.swap_remove(i);
            if cuts.cover(&eb) {
                continue; // entirely overwritten
            }
            // Cut the new boxes out of this entry; what remains keeps the old value.
            cuts.cut_out(eb, &mut met, &mut pieces, &mut next);
            added.extend(pieces.iter().map(|p| (*p, ev.clone())));
        }
        // Only the new boxes and the cut remainders can have become mergeable.
        let first_touched = self.entries.len();
        // Drained rather than moved: moving the SmallVec would copy its whole inline buffer.
        self.entries.extend(added.drain(..));
        self.entries.extend(cuts.boxes.iter().map(|b| (*b, value.clone())));
        if self.entries.len() > LAZY_MERGE_LIMIT {
            self.merge_locally((first_touched..self.entries.len()).collect());
        }
    }

    /// Rewrites the value of every cell of `region` (clamped to the extent) through `f`, splitting entries at the
    /// region's border; cheaper than querying and updating box by box.
    pub fn update_values_in(&mut self, region: &Region, f: impl FnMut(&V) -> V) {
        let boxes = region.boxes();
        if boxes.len() > INDEXED_BOXES {
            self.update_values_by(Cuts::<true> { boxes }, f)
        } else {
            self.update_values_by(Cuts::<false> { boxes }, f)
        }
    }

    /// [`update_values_in`](Self::update_values_in), looking the region's boxes up as `cuts` says.
    fn update_values_by<const INDEXED: bool>(&mut self, cuts: Cuts<'_, INDEXED>, mut f: impl FnMut(&V) -> V) {
        let mut added: SmallVec<[(GridBox, V); 4]> = SmallVec::new();
        let mut pieces: SmallVec<[GridBox; 8]> = SmallVec::new();
        let mut next: SmallVec<[GridBox; 8]> = SmallVec::new();
        let mut met: SmallVec<[GridBox; 8]> = SmallVec::new();
        let mut touched_in_place: WorkList = SmallVec::new();
        for i in (0..self.entries.len()).rev() {
            if !cuts.meet(&self.entries[i].0) {
                continue;
            }
            let nv = f(&self.entries[i].1);
            if nv == self.entries[i].1 {
                continue;
            }
            // Entirely inside the region: rewrite in place, nothing to split.
            if cuts.cover(&self.entries[i].0) {
                self.entries[i].1 = nv;
                touched_in_place.push(i);
                continue;
            }
            let (eb, ev) = self.entries.swap_remove(i);
            if INDEXED {
                // The cells inside the region take the new value, the others keep the old one.
                let inside = cuts.clipped(&eb, &mut met);
                added.extend(inside.iter().map(|b| (*b, nv.clone())));
                complement_in(&eb, inside, &mut |p| added.push((p, ev.clone())));
                continue;
            }
            pieces.clear();
            pieces.push(eb);
            for b in cuts.boxes {
                let inside = eb.intersection(b);
                if !inside.is_empty() {
                    added.push((inside, nv.clone()));
                }
                for p in &pieces {
                    p.subtract_into(b, |q| next.push(q));
                }
                std::mem::swap(&mut pieces, &mut next);
                next.clear();
            }
            added.extend(pieces.iter().map(|p| (*p, ev.clone())));
        }
        if added.is_empty() && touched_in_place.is_empty() {
            return;
        }
        // A later swap_remove may have moved an in-place entry; a stale index then only makes merging look at
        // another entry, which is harmless (any merge of equal, face-sharing neighbours is valid).
        let first_touched = self.entries.len();
        self.entries.extend(added.drain(..));
        if self.entries.len() > LAZY_MERGE_LIMIT {
            let mut work: WorkList = (first_touched..self.entries.len()).collect();
            work.extend(touched_in_place.into_iter().filter(|&i| i < first_touched));
            self.merge_locally(work);
        }
    }

    /// Sets every cell of `inner` (clamped to the extent) to `value` and rewrites every other cell of `outer` through
    /// `f`, in one pass over the entries: the same result as [`update_region`](Self::update_region) of `inner`
    /// followed by [`update_values_in`](Self::update_values_in) of `outer` minus `inner`, without computing that
    /// difference or scanning twice (a chunk's write plus "everything the other chunks wrote is stale here").
    pub fn update_split(&mut self, inner: &Region, value: V, outer: &Region, f: impl FnMut(&V) -> V) {
        let mut inner_boxes: SmallVec<[GridBox; 8]> = SmallVec::new();
        for b in inner.boxes() {
            let c = b.intersection(&self.extent);
            if !c.is_empty() {
                inner_boxes.push(c);
            }
        }
        let (i, o) = (&inner_boxes[..], outer.boxes());
        match (i.len() > INDEXED_BOXES, o.len() > INDEXED_BOXES) {
            (false, false) => self.update_split_by(Cuts::<false> { boxes: i }, value, Cuts::<false> { boxes: o }, f),
            (false, true) => self.update_split_by(Cuts::<false> { boxes: i }, value, Cuts::<true> { boxes: o }, f),
            (true, false) => self.update_split_by(Cuts::<true> { boxes: i }, value, Cuts::<false> { boxes: o }, f),
            (true, true) => self.update_split_by(Cuts::<true> { boxes: i }, value, Cuts::<true> { boxes: o }, f),
        }
    }

    /// [`update_split`](Self::update_split) of the clamped boxes of `inner`, looking boxes up as the cuts say.
    fn update_split_by<const I: bool, const O: bool>(
        &mut self,
        inner_cuts: Cuts<'_, I>,
        value: V,
        outer_cuts: Cuts<'_, O>,
        mut f: impl FnMut(&V) -> V,
    ) {
        let mut added: SmallVec<[(GridBox, V); 8]> = SmallVec::new();
        let mut pieces: SmallVec<[GridBox; 8]> = SmallVec::new();
        let mut next: SmallVec<[GridBox; 8]> = SmallVec::new();
        let mut met: SmallVec<[GridBox; 8]> = SmallVec::new();
        let mut touched_in_place: WorkList = SmallVec::new();
        // Walk down so that swap_remove only ever moves an entry already visited.
        for i in (0..self.entries.len()).rev() {
            let eb = self.entries[i].0;
            let hits_inner = inner_cuts.meet(&eb);
            if !hits_inner && !outer_cuts.meet(&eb) {
                continue;
            }
            if hits_inner && inner_cuts.cover(&eb) {
                self.entries.swap_remove(i);
                continue; // entirely overwritten
            }
            let nv = f(&self.entries[i].1);
            let changes = nv != self.entries[i].1;
            if !hits_inner {
                if !changes {
                    continue;
                }
                // Entirely inside `outer` and untouched by `inner`: rewrite in place, nothing to split.
                if outer_cuts.cover(&eb) {
                    self.entries[i].1 = nv;
                    touched_in_place.push(i);
                    continue;
                }
            }
            let (eb, ev) = self.entries.swap_remove(i);
            // What lies outside `inner` keeps its place ...
            inner_cuts.cut_out(eb, &mut met, &mut pieces, &mut next);
            if !changes {
                added.extend(pieces.iter().map(|p| (*p, ev.clone())));
                continue;
            }
            // ... and takes the rewritten value where it lies inside `outer`.
            if O || (I && pieces.len() > INDEXED_BOXES) {
                // Many boxes: each piece is split by the boxes of `outer` it meets, cut to it.
                for p in &pieces {
                    let inside = outer_cuts.clipped(p, &mut met);
                    added.extend(inside.iter().map(|b| (*b, nv.clone())));
                    complement_in(p, inside, &mut |q| added.push((q, ev.clone())));
                }
                continue;
            }
            for b in outer_cuts.boxes {
                for p in &pieces {
                    let inside = p.intersection(b);
                    if !inside.is_empty() {
                        added.push((inside, nv.clone()));
                    }
                    p.subtract_into(b, |q| next.push(q));
                }
                std::mem::swap(&mut pieces, &mut next);
                next.clear();
            }
            added.extend(pieces.iter().map(|p| (*p, ev.clone())));
        }
        // A later swap_remove may have moved an in-place entry; as in `update_values_in`, a stale index only makes
        // merging look at another entry.
        let first_touched = self.entries.len();
        self.entries.extend(added.drain(..));
        self.entries.extend(inner_cuts.boxes.iter().map(|b| (*b, value.clone())));
        if self.entries.len() > LAZY_MERGE_LIMIT {
            let mut work: WorkList = (first_touched..self.entries.len()).collect();
            work.extend(touched_in_place.into_iter().filter(|&i| i < first_touched));
            self.merge_locally(work);
        }
    }

    /// Merges the entries at `work` with equal-valued neighbours they share a whole face with, repeatedly.
    ///
    /// This is local (cost: entries × merges), unlike the full re-normalization at horizons: the result need not be the
    /// fewest boxes, but every rank performing the same updates gets the same entries.
    fn merge_locally(&mut self, mut work: WorkList) {
        if work.len() > MERGE_ALL_WORK {
            // Each merge scans every entry: for many touched entries, re-normalizing them all costs less.
            self.merge_all();
            return;
        }
        while let Some(i) = work.pop() {
            if i >= self.entries.len() {
                continue;
            }
            let (bi, ref vi) = self.entries[i];
            let found = self.entries.iter().enumerate().find_map(|(j, (bj, vj))| {
                if j != i && vj == vi {
                    merge_boxes(&bi, bj).map(|m| (j, m))
                } else {
                    None
                }
            });
            if let Some((j, merged)) = found {
                self.entries[i].0 = merged;
                self.entries.swap_remove(j);
                // swap_remove moved the last entry into `j`; keep the work list pointing at the right entries.
                let last = self.entries.len();
                for w in &mut work {
                    if *w == last {
                        *w = j;
                    }
                }
                work.push(if i == last { j } else { i });
            }
        }
    }

    /// The `(box, value)` pairs covering `region` (clamped to the extent), each box cut to the region, sorted by box.
    pub fn query(&self, region: &Region) -> Vec<(GridBox, V)> {
        let mut out = Vec::new();
        if region.boxes().len() > INDEXED_BOXES {
            // Each entry looks up the region's boxes it meets (the same pairs, sorted below).
            for (eb, ev) in &self.entries {
                region.for_each_box_meeting(eb, |q| {
                    out.push((eb.intersection(q), ev.clone()));
                    false
                });
            }
        } else {
            for q in region.boxes() {
                self.query_box_into(q, &mut out);
            }
        }
        out.sort_unstable_by_key(|e| (e.0.min(), e.0.max()));
        out
    }

    /// The `(box, value)` pairs covering `b` (clamped to the extent), each box cut to `b`, sorted by box.
    pub fn query_box(&self, b: &GridBox) -> Vec<(GridBox, V)> {
        let mut out = Vec::new();
        self.query_box_into(b, &mut out);
        out.sort_unstable_by_key(|e| (e.0.min(), e.0.max()));
        out
    }

    /// Appends the `(box, value)` pairs covering `b` to `out`.
    pub fn query_box_into(&self, b: &GridBox, out: &mut Vec<(GridBox, V)>) {
        for (eb, ev) in &self.entries {
            if eb.intersects(b) {
                out.push((eb.intersection(b), ev.clone()));
            }
        }
    }

    /// Calls `f` for every `(box, value)` pair overlapping `region`, boxes cut to the region, without allocating.
    pub fn for_each_in(&self, region: &Region, mut f: impl FnMut(GridBox, &V)) {
        let boxes = region.boxes();
        if boxes.len() > INDEXED_BOXES {
            return self.for_each_in_indexed(boxes, &mut f);
        }
        // Testing for overlap first is cheaper than building every (mostly empty) intersection.
        for q in boxes {
            for (eb, ev) in &self.entries {
                if eb.intersects(q) {
                    f(eb.intersection(q), ev);
                }
            }
        }
    }

    /// [`for_each_in`](Self::for_each_in) of many boxes (in slab order): each entry looks up the boxes it meets, and
    /// the pairs are visited in the same order as box by box.
    #[inline(never)]
    fn for_each_in_indexed(&self, boxes: &[GridBox], f: &mut dyn FnMut(GridBox, &V)) {
        let mut pairs: Vec<(usize, usize)> = Vec::new();
        for (e, (eb, _)) in self.entries.iter().enumerate() {
            for_each_meeting_at(boxes, eb, &mut |q| {
                pairs.push((q, e));
                false
            });
        }
        pairs.sort_unstable();
        for (q, e) in pairs {
            let (eb, ev) = &self.entries[e];
            f(eb.intersection(&boxes[q]), ev);
        }
    }

    /// The value of a single cell.
    ///
    /// # Panics
    /// If the cell lies outside the extent.
    pub fn get(&self, cell: [usize; 3]) -> &V {
        let b = GridBox::new(cell, [cell[0] + 1, cell[1] + 1, cell[2] + 1]);
        self.entries
            .iter()
            .find(|e| e.0.contains(&b))
            .map(|e| &e.1)
            .unwrap_or_else(|| panic!("cell {cell:?} lies outside the region map's extent {}", self.extent))
    }

    /// Rewrites every value through `f` (a horizon rewriting old writers to itself), then merges equal neighbours.
    pub fn apply_to_values(&mut self, mut f: impl FnMut(&V) -> V) {
        let mut changed = false;
        for e in &mut self.entries {
            let nv = f(&e.1);
            if nv != e.1 {
                e.1 = nv;
                changed = true;
            }
        }
        if changed {
            self.merge_all();
        }
    }

    /// Appends the canonical boxes of the union of `boxes` (disjoint), all holding `v`.
    fn push_group(&mut self, v: &V, boxes: &[GridBox]) {
        match boxes {
            [b] => self.entries.push((*b, v.clone())),
            // `from_boxes` has the fast paths for two boxes that join or lie apart.
            boxes => {
                self.entries.extend(Region::from_boxes(boxes.iter().copied()).boxes().iter().map(|b| (*b, v.clone())))
            }
        }
    }

    /// Brings the map to its fewest-box form: each value held in the boxes of its canonical region.
    ///
    /// Updates merge only lazily (see `LAZY_MERGE_LIMIT`); horizons call this through
    /// [`apply_to_values`](Self::apply_to_values).
    pub fn compact(&mut self) {
        self.merge_all();
    }

    /// Re-normalizes every group of equal values (one pass to group, one normalization per group).
    fn merge_all(&mut self) {
        // Fast path: any two entries that share a value lie apart along the one dimension they differ in (a chunk's
        // stale neighbours, its halo rows), so nothing can merge and each value's boxes are its canonical form
        // already (with three or more boxes, pairs apart along one dimension must all differ along the same one).
        let n = self.entries.len();
        let settled = |i: usize, j: usize| {
            let (a, b) = (&self.entries[i], &self.entries[j]);
            a.1 != b.1 || apart_along_one_dimension(&a.0, &b.0)
        };
        if n < 2 || (n <= 16 && (0..n).all(|i| (i + 1..n).all(|j| settled(i, j)))) {
            return;
        }
        if n <= 16 {
            // Few entries: group by linear search, no hashing and no map allocation.
            let mut groups: SmallVec<[(V, SmallVec<[GridBox; 4]>); 8]> = SmallVec::new();
            for (b, v) in self.entries.drain(..) {
                match groups.iter_mut().find(|g| g.0 == v) {
                    Some(g) => g.1.push(b),
                    None => groups.push((v, smallvec::smallvec![b])),
                }
            }
            // By reference: moving the groups would copy their inline buffers.
            for (v, boxes) in &groups {
                self.push_group(v, boxes);
            }
        } else {
            let mut groups: hashbrown::HashMap<V, SmallVec<[GridBox; 4]>> = hashbrown::HashMap::new();
            for (b, v) in self.entries.drain(..) {
                groups.entry(v).or_default().push(b);
            }
            for (v, boxes) in &groups {
                self.push_group(v, boxes);
            }
        }
        // Keep the order independent of hashing, so every rank holds identical maps.
        self.entries.sort_unstable_by_key(|e| (e.0.min(), e.0.max()));
    }
}

/// Below this many entries, updates skip merging: scanning a few extra boxes is cheaper than merging them, and
/// horizons re-normalize every map anyway. TODO(perf): tune with the command_graph benchmark.
const LAZY_MERGE_LIMIT: usize = 16;

/// Entry indices still to be merged.
type WorkList = SmallVec<[usize; 8]>;

/// Above this many entries to merge after one update, all entries are re-normalized (`O(n log n)`) instead of merging
/// each with a scan of all entries (`O(n)` each).
const MERGE_ALL_WORK: usize = 32;

/// The boxes an update cuts into the map's entries, with the lookups its entries need: by testing each box for a
/// few, by binary search in slab order (`INDEXED`, see [`INDEXED_BOXES`]) for many. `INDEXED` is a constant so that
/// the few-box updates compile to the plain loops.
///
/// The boxes are disjoint and, where `INDEXED`, in slab order (a region's boxes, each possibly cut to one common box).
struct Cuts<'a, const INDEXED: bool> {
    boxes: &'a [GridBox],
}

impl<const INDEXED: bool> Cuts<'_, INDEXED> {
    /// Whether a box meets `eb`.
    #[inline]
    fn meet(&self, eb: &GridBox) -> bool {
        if INDEXED {
            for_each_meeting(self.boxes, eb, &mut |_| true)
        } else {
            self.boxes.iter().any(|b| b.intersects(eb))
        }
    }

    /// Whether one box holds all of `eb`.
    #[inline]
    fn cover(&self, eb: &GridBox) -> bool {
        if INDEXED {
            for_each_meeting(self.boxes, eb, &mut |b| b.contains(eb))
        } else {
            self.boxes.iter().any(|b| b.contains(eb))
        }
    }

    /// The boxes' cells inside `eb`: the boxes that meet it, each cut to it, in slab order (in `scratch`).
    #[inline]
    fn clipped<'s>(&self, eb: &GridBox, scratch: &'s mut SmallVec<[GridBox; 8]>) -> &'s [GridBox] {
        scratch.clear();
        let mut push = |b: &GridBox| {
            scratch.push(b.intersection(eb));
            false
        };
        if INDEXED {
            for_each_meeting(self.boxes, eb, &mut push);
        } else {
            self.boxes.iter().filter(|b| b.intersects(eb)).for_each(|b| _ = push(b));
        }
        scratch
    }

    /// Sets `pieces` to the parts of `eb` outside every box (`met` and `next` are scratch): for few boxes by cutting
    /// the pieces box by box, for many by one walk along the boxes that meet `eb` ([`complement_in`]).
    fn cut_out(
        &self,
        eb: GridBox,
        met: &mut SmallVec<[GridBox; 8]>,
        pieces: &mut SmallVec<[GridBox; 8]>,
        next: &mut SmallVec<[GridBox; 8]>,
    ) {
        if !INDEXED {
            return cut_out(eb, self.boxes, pieces, next);
        }
        pieces.clear();
        complement_in(&eb, self.clipped(&eb, met), &mut |p| pieces.push(p));
    }
}

/// The union of two boxes if it is itself a box: they touch along one dimension and agree in all others.
#[inline]
fn merge_boxes(a: &GridBox, b: &GridBox) -> Option<GridBox> {
    let (amin, amax, bmin, bmax) = (a.min(), a.max(), b.min(), b.max());
    let mut dim = None;
    for d in 0..3 {
        if amin[d] == bmin[d] && amax[d] == bmax[d] {
            continue;
        }
        if dim.is_some() || !(amax[d] == bmin[d] || bmax[d] == amin[d]) {
            return None;
        }
        dim = Some(d);
    }
    dim.map(|_| a.bounding_box(b))
}

impl<V: fmt::Debug> fmt::Debug for RegionMap<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.entries.iter().map(|(b, v)| (b, v))).finish()
    }
}

/// Sets `pieces` to the parts of `b` outside every box of `boxes` (`next` is scratch; both keep their memory).
fn cut_out(b: GridBox, boxes: &[GridBox], pieces: &mut SmallVec<[GridBox; 8]>, next: &mut SmallVec<[GridBox; 8]>) {
    pieces.clear();
    pieces.push(b);
    for c in boxes {
        for p in pieces.iter() {
            p.subtract_into(c, |q| next.push(q));
        }
        std::mem::swap(pieces, next);
        next.clear();
    }
}

#[cfg(test)]
mod tests;
