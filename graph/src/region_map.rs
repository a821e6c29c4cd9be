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

use crate::geometry::{GridBox, Region};

/// A total map from the cells of `extent` to values of `V`, as disjoint `(box, value)` entries.
///
/// Cost: updates and queries are linear in the number of entries (which horizons keep small); merging after an update
/// re-normalizes only the boxes of the values the update touched.
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
            let old = std::mem::replace(&mut e.1, value.clone());
            self.merge_value(&value);
            // The old value's remaining boxes may now merge differently.
            self.merge_value(&old);
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
        let mut split_values: Vec<V> = Vec::new();
        let mut i = 0;
        let old_len = self.entries.len();
        let mut kept = Vec::with_capacity(old_len + boxes.len());
        while i < old_len {
            let (eb, ev) = &self.entries[i];
            if boxes.iter().any(|b| b.intersects(eb)) {
                // Cut the new boxes out of this entry; what remains keeps the old value.
                let mut pieces = vec![*eb];
                let mut next = Vec::new();
                for b in boxes {
                    for p in &pieces {
                        p.subtract_into(b, |q| next.push(q));
                    }
                    std::mem::swap(&mut pieces, &mut next);
                    next.clear();
                }
                // Every value that lost cells must be re-merged, whether or not pieces of it remain here.
                if *ev != value && !split_values.contains(ev) {
                    split_values.push(ev.clone());
                }
                kept.extend(pieces.into_iter().map(|p| (p, ev.clone())));
            } else {
                kept.push((*eb, ev.clone()));
            }
            i += 1;
        }
        kept.extend(boxes.iter().map(|b| (*b, value.clone())));
        self.entries = kept;
        self.merge_value(&value);
        for v in &split_values {
            self.merge_value(v);
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
