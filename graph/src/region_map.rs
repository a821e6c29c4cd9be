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

use crate::geometry::{GridBox, Region};

/// A total map from the cells of `extent` to values of `V`, as disjoint `(box, value)` entries.
///
/// Cost: updates and queries are linear in the number of entries (which horizons keep small). After an update, the
/// new and cut boxes merge with equal-valued neighbours that share a whole face; [`apply_to_values`](Self::apply_to_values)
/// re-normalizes every value fully, so horizons always bring the map back to its fewest-box form.
#[derive(Clone)]
pub struct RegionMap<V> {
    extent: GridBox,
    entries: Vec<(GridBox, V)>,
}

impl<V: Clone + PartialEq> RegionMap<V> {
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
        if let Some(e) = self.entries.iter_mut().find(|e| e.0 == b) {
            if e.1 == value {
                return;
            }
            e.1 = value;
            let i = self.entries.iter().position(|e| e.0 == b).expect("just found");
            self.merge_locally(smallvec::smallvec![i]);
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
                let clamped: Vec<GridBox> =
                    boxes.iter().map(|b| b.intersection(&self.extent)).filter(|b| !b.is_empty()).collect();
                self.update_boxes(&clamped, value);
            }
        }
    }

    fn update_boxes(&mut self, boxes: &[GridBox], value: V) {
        let old_len = self.entries.len();
        let mut kept = Vec::with_capacity(old_len + boxes.len() + 4);
        // Indices (in `kept`) of boxes that are new or were cut: only these can have become mergeable.
        let mut touched: WorkList = SmallVec::new();
        let mut pieces: SmallVec<[GridBox; 8]> = SmallVec::new();
        let mut next: SmallVec<[GridBox; 8]> = SmallVec::new();
        for (eb, ev) in self.entries.drain(..) {
            if !boxes.iter().any(|b| b.intersects(&eb)) {
                kept.push((eb, ev));
                continue;
            }
            // Cut the new boxes out of this entry; what remains keeps the old value.
            pieces.clear();
            pieces.push(eb);
            for b in boxes {
                for p in &pieces {
                    p.subtract_into(b, |q| next.push(q));
                }
                std::mem::swap(&mut pieces, &mut next);
                next.clear();
            }
            for p in &pieces {
                touched.push(kept.len());
                kept.push((*p, ev.clone()));
            }
        }
        for b in boxes {
            touched.push(kept.len());
            kept.push((*b, value.clone()));
        }
        self.entries = kept;
        self.merge_locally(touched);
    }

    /// Merges the entries at `work` with equal-valued neighbours they share a whole face with, repeatedly.
    ///
    /// This is local (cost: entries × merges), unlike [`merge_value`](Self::merge_value): the result need not be the
    /// fewest boxes, but every rank performing the same updates gets the same entries.
    fn merge_locally(&mut self, mut work: WorkList) {
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

    /// Re-normalizes all boxes holding `value`, so equal neighbours become one box.
    fn merge_value(&mut self, value: &V) {
        let count = self.entries.iter().filter(|e| e.1 == *value).count();
        if count < 2 {
            return;
        }
        let region = Region::from_boxes(self.entries.iter().filter(|e| e.1 == *value).map(|e| e.0));
        if region.boxes().len() == count {
            return;
        }
        self.entries.retain(|e| e.1 != *value);
        self.entries.extend(region.boxes().iter().map(|b| (*b, value.clone())));
    }

    /// The `(box, value)` pairs covering `region` (clamped to the extent), each box cut to the region, sorted by box.
    pub fn query(&self, region: &Region) -> Vec<(GridBox, V)> {
        let mut out = Vec::new();
        for q in region.boxes() {
            self.query_box_into(q, &mut out);
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
            let i = eb.intersection(b);
            if !i.is_empty() {
                out.push((i, ev.clone()));
            }
        }
    }

    /// Calls `f` for every `(box, value)` pair overlapping `region`, boxes cut to the region, without allocating.
    pub fn for_each_in(&self, region: &Region, mut f: impl FnMut(GridBox, &V)) {
        for q in region.boxes() {
            for (eb, ev) in &self.entries {
                let i = eb.intersection(q);
                if !i.is_empty() {
                    f(i, ev);
                }
            }
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

    /// Re-normalizes every group of equal values.
    fn merge_all(&mut self) {
        let mut values: Vec<V> = Vec::new();
        for e in &self.entries {
            if !values.contains(&e.1) {
                values.push(e.1.clone());
            }
        }
        for v in &values {
            self.merge_value(v);
        }
    }
}

/// Entry indices still to be merged.
type WorkList = SmallVec<[usize; 8]>;

/// The union of two boxes if it is itself a box: they touch along one dimension and agree in all others.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn update_splits_and_merges() {
        let mut m = RegionMap::new(GridBox::d2([0, 0], [10, 10]), 0);
        m.update_box(&GridBox::d2([2, 2], [4, 4]), 1);
        assert_eq!(m.query_box(&GridBox::d2([3, 3], [4, 4])), vec![(GridBox::d2([3, 3], [4, 4]), 1)]);
        m.update_box(&GridBox::d2([2, 2], [4, 4]), 0);
        assert_eq!(m.len(), 1, "filling the hole must merge back into one box: {m:?}");
    }

    #[test]
    fn updates_outside_the_extent_are_clamped() {
        let mut m = RegionMap::new(GridBox::d1(0, 10), 'a');
        m.update_box(&GridBox::d1(5, 50), 'b');
        assert_eq!(m.query_box(&GridBox::d1(0, 100)), vec![(GridBox::d1(0, 5), 'a'), (GridBox::d1(5, 10), 'b')]);
    }
}
