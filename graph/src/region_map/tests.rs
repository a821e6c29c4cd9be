//! Fixed-case unit tests of [`RegionMap`]: updates, queries, merging and the lazy-merge and re-normalization
//! thresholds.

use super::*;

#[test]
fn update_splits_and_merges() {
    let mut m = RegionMap::new(GridBox::d2([0, 0], [10, 10]), 0);
    m.update_box(&GridBox::d2([2, 2], [4, 4]), 1);
    assert_eq!(m.query_box(&GridBox::d2([3, 3], [4, 4])), vec![(GridBox::d2([3, 3], [4, 4]), 1)]);
    m.update_box(&GridBox::d2([2, 2], [4, 4]), 0);
    m.compact();
    assert_eq!(m.len(), 1, "filling the hole must merge back into one box: {m:?}");
}

/// The entries sorted by box, for comparisons that do not depend on the (unspecified) entry order.
fn sorted<V: Clone + Ord + std::hash::Hash>(m: &RegionMap<V>) -> Vec<(GridBox, V)> {
    let mut e = m.entries().to_vec();
    e.sort_by_key(|(b, v)| (b.min(), b.max(), v.clone()));
    e
}

/// A 1D map over `[0, n)` whose cells alternate 0 and 1 (cell `i` holds `i % 2`): `n` entries, none mergeable.
fn alternating(n: usize) -> RegionMap<u32> {
    let mut m = RegionMap::new(GridBox::d1(0, n), 0);
    for i in (1..n).step_by(2) {
        m.update_box(&GridBox::d1(i, i + 1), 1);
    }
    assert_eq!(m.len(), n);
    m
}

#[test]
fn getters_report_the_extent_and_the_entries() {
    let mut m = RegionMap::new(GridBox::d1(0, 10), 'a');
    assert_eq!(m.extent(), GridBox::d1(0, 10));
    assert!(!m.is_empty());
    assert_eq!(m.len(), 1);
    assert_eq!(m.entries(), &[(GridBox::d1(0, 10), 'a')]);
    m.update_box(&GridBox::d1(0, 4), 'b');
    assert_eq!(m.len(), 2);
    assert_eq!(sorted(&m), vec![(GridBox::d1(0, 4), 'b'), (GridBox::d1(4, 10), 'a')]);
    assert_eq!(format!("{m:?}"), "{[4] - [10]: 'a', [0] - [4]: 'b'}");
    assert_eq!(*m.get([3, 0, 0]), 'b');
    assert_eq!(*m.get([4, 0, 0]), 'a');
    assert_eq!(*m.get([9, 0, 0]), 'a');
    let empty = RegionMap::new(GridBox::EMPTY, 'a');
    assert!(empty.is_empty());
    assert_eq!(empty.len(), 0);
    assert_eq!(format!("{empty:?}"), "{}");
}

#[test]
fn single_cells_are_looked_up_in_every_dimension() {
    let mut m = RegionMap::new(GridBox::d3([0; 3], [4; 3]), 0);
    m.update_box(&GridBox::d3([1, 2, 3], [2, 3, 4]), 7);
    assert_eq!(*m.get([1, 2, 3]), 7);
    assert_eq!(*m.get([1, 2, 2]), 0);
    assert_eq!(*m.get([1, 1, 3]), 0);
    assert_eq!(*m.get([0, 2, 3]), 0);
    assert_eq!(*m.get([3, 3, 3]), 0);
}

#[test]
fn queries_cut_entries_to_the_region_and_sort_them() {
    let mut m = RegionMap::new(GridBox::d1(0, 10), 0);
    m.update_box(&GridBox::d1(6, 8), 2);
    m.update_box(&GridBox::d1(2, 4), 1);
    let r = Region::from_boxes([GridBox::d1(7, 9), GridBox::d1(1, 3)]);
    let want = vec![(GridBox::d1(1, 2), 0), (GridBox::d1(2, 3), 1), (GridBox::d1(7, 8), 2), (GridBox::d1(8, 9), 0)];
    assert_eq!(m.query(&r), want);
    let mut seen = Vec::new();
    m.for_each_in(&r, |b, v| seen.push((b, *v)));
    seen.sort_by_key(|(b, _)| b.min());
    assert_eq!(seen, want);
    assert_eq!(
        m.query_box(&GridBox::d1(3, 7)),
        vec![(GridBox::d1(3, 4), 1), (GridBox::d1(4, 6), 0), (GridBox::d1(6, 7), 2)]
    );
    let mut into = vec![(GridBox::d1(0, 1), 9)];
    m.query_box_into(&GridBox::d1(9, 20), &mut into);
    assert_eq!(into, vec![(GridBox::d1(0, 1), 9), (GridBox::d1(9, 10), 0)]);
}

#[test]
fn compacting_merges_equal_neighbours_and_keeps_others_apart() {
    // Two touching entries with one value: one box.
    let mut m = RegionMap::new(GridBox::d1(0, 10), 0);
    m.update_box(&GridBox::d1(0, 5), 1);
    m.update_box(&GridBox::d1(5, 10), 1);
    m.compact();
    assert_eq!(m.entries(), &[(GridBox::d1(0, 10), 1)]);
    // Two halo rows of one value apart, a third value between: nothing merges.
    let mut m = RegionMap::new(GridBox::d1(0, 10), 0);
    m.update_box(&GridBox::d1(0, 1), 1);
    m.update_box(&GridBox::d1(9, 10), 1);
    m.compact();
    assert_eq!(sorted(&m), vec![(GridBox::d1(0, 1), 1), (GridBox::d1(1, 9), 0), (GridBox::d1(9, 10), 1)]);
    // 2D: an L shape of one value becomes its canonical two boxes, sorted.
    let mut m = RegionMap::new(GridBox::d2([0, 0], [4, 4]), 0);
    m.update_box(&GridBox::d2([0, 0], [2, 2]), 1);
    m.update_box(&GridBox::d2([2, 2], [4, 4]), 1);
    m.update_box(&GridBox::d2([0, 2], [2, 4]), 2);
    m.apply_to_values(|v| if *v == 2 { 0 } else { *v });
    // Diagonal pairs: nothing merges, and the full merge sorts the entries.
    assert_eq!(
        m.entries(),
        &[
            (GridBox::d2([0, 0], [2, 2]), 1),
            (GridBox::d2([0, 2], [2, 4]), 0),
            (GridBox::d2([2, 0], [4, 2]), 0),
            (GridBox::d2([2, 2], [4, 4]), 1)
        ]
    );
}

#[test]
fn applying_an_identity_to_values_changes_nothing() {
    let mut m = alternating(6);
    let before = m.entries().to_vec();
    m.apply_to_values(|v| *v);
    assert_eq!(m.entries(), &before[..]);
    m.apply_to_values(|_| 5);
    assert_eq!(m.entries(), &[(GridBox::d1(0, 6), 5)]);
}

#[test]
fn many_equal_values_merge_back_into_one_box() {
    // More than 16 entries of few values: the hashing path of the full merge.
    let mut m = alternating(40);
    m.apply_to_values(|v| v + 1);
    assert_eq!(m.len(), 40, "alternating values never merge");
    m.apply_to_values(|v| v % 2);
    assert_eq!(m.len(), 40);
    m.apply_to_values(|_| 3);
    assert_eq!(m.entries(), &[(GridBox::d1(0, 40), 3)]);
    let mut m = alternating(40);
    m.apply_to_values(|v| if *v == 1 { 0 } else { 2 });
    assert_eq!(m.len(), 40);
    assert_eq!(m.entries()[..3], [(GridBox::d1(0, 1), 2), (GridBox::d1(1, 2), 0), (GridBox::d1(2, 3), 2)]);
}

#[test]
fn a_long_sweep_of_updates_keeps_every_map_short() {
    // Cell by cell, left to right, a new value: without merging the map grows by one entry per update; with
    // lazy merging it never holds more than LAZY_MERGE_LIMIT + 2 entries.
    let bound = LAZY_MERGE_LIMIT + 2;
    let n = 64;
    let mut by_box = RegionMap::new(GridBox::d1(0, n), 0u32);
    let mut by_region = RegionMap::new(GridBox::d1(0, n), 0u32);
    let mut by_values = RegionMap::new(GridBox::d1(0, n), 0u32);
    let mut by_split = RegionMap::new(GridBox::d1(0, n), 0u32);
    for i in 0..n {
        let cell = GridBox::d1(i, i + 1);
        by_box.update_box(&cell, 1);
        // Two boxes, one of them the cell: the general multi-box path.
        by_region.update_region(&Region::from_boxes([cell, GridBox::d1(n - 1, n)]), 1);
        by_values.update_values_in(&Region::from(cell), |_| 1);
        by_split.update_split(&Region::from(cell), 1, &Region::from(GridBox::d1(0, n)), |v| *v);
        for (name, m) in [("update_box", &by_box), ("update_region", &by_region)] {
            assert!(m.len() <= bound, "{name}: {} entries after {} updates: {m:?}", m.len(), i + 1);
        }
        for (name, m) in [("update_values_in", &by_values), ("update_split", &by_split)] {
            assert!(m.len() <= bound, "{name}: {} entries after {} updates: {m:?}", m.len(), i + 1);
        }
    }
    for m in [&by_box, &by_region, &by_values, &by_split] {
        assert!(m.entries().iter().all(|e| e.1 == 1), "{m:?}");
        assert_eq!(m.entries().iter().map(|e| e.0.area()).sum::<usize>(), n, "{m:?}");
    }
}

#[test]
fn updates_past_the_lazy_limit_merge_the_boxes_they_touch() {
    // 40 alternating cells: rewriting cells 1 and 3 to 0 joins [0, 5) into one box, whichever update does it.
    let odd = Region::from_boxes([GridBox::d1(1, 2), GridBox::d1(3, 4)]);
    let mut exact = alternating(40);
    exact.update_region(&odd, 0);
    let mut values = alternating(40);
    values.update_values_in(&GridBox::d1(0, 4).into(), |_| 0);
    let mut split = alternating(40);
    split.update_split(&odd, 0, &Region::new(), |v| *v);
    let mut boxes = alternating(40);
    boxes.update_box(&GridBox::d1(1, 2), 0);
    boxes.update_box(&GridBox::d1(3, 4), 0);
    let mut general = alternating(40);
    general.update_region(&Region::from_boxes([GridBox::d1(1, 2), GridBox::d1(3, 5)]), 0);
    for (name, m) in [("update_region", &exact), ("update_values_in", &values), ("update_split", &split)] {
        assert_eq!(m.len(), 36, "{name}: {m:?}");
        assert!(m.entries().contains(&(GridBox::d1(0, 5), 0)), "{name}: {m:?}");
    }
    assert_eq!(boxes.len(), 36, "update_box: {boxes:?}");
    assert!(boxes.entries().contains(&(GridBox::d1(0, 5), 0)), "update_box: {boxes:?}");
    assert_eq!(general.len(), 36, "update_region: {general:?}");
    assert!(general.entries().contains(&(GridBox::d1(0, 5), 0)), "{general:?}");
    // Rewriting part of a wide entry in place of its values (a split) merges too.
    let mut m = alternating(40);
    m.update_box(&GridBox::d1(20, 40), 0);
    assert_eq!(m.len(), 21);
    let zero_to_one = |v: &u32| if *v == 0 { 1 } else { *v };
    m.update_values_in(&GridBox::d1(18, 30).into(), zero_to_one);
    assert_eq!(m.len(), 19, "{m:?}");
    assert_eq!(sorted(&m)[17..], [(GridBox::d1(17, 30), 1), (GridBox::d1(30, 40), 0)]);
    let mut m = alternating(40);
    m.update_box(&GridBox::d1(20, 40), 0);
    m.update_split(&GridBox::d1(30, 32).into(), 1, &GridBox::d1(19, 30).into(), zero_to_one);
    assert_eq!(m.len(), 21, "{m:?}");
    assert_eq!(
        sorted(&m)[19..],
        [(GridBox::d1(19, 32), 1), (GridBox::d1(32, 40), 0)],
        "the rewritten cells join the new ones"
    );
}

#[test]
fn an_update_to_the_value_already_held_leaves_the_map_as_it_is() {
    let mut m = RegionMap::new(GridBox::d1(0, 10), 0);
    m.update_box(&GridBox::d1(6, 8), 1);
    let before = m.entries().to_vec();
    m.update_box(&GridBox::d1(2, 4), 0);
    m.update_region(&Region::from_boxes([GridBox::d1(0, 1), GridBox::d1(3, 5)]), 0);
    assert_eq!(m.entries(), &before[..], "nothing to cut: the cells hold the value already");
}

#[test]
fn one_update_merges_around_each_of_its_boxes() {
    // Two boxes far apart, each joining its two neighbours: after the first merge the work list must still
    // point at the second box.
    let far = Region::from_boxes([GridBox::d1(1, 2), GridBox::d1(21, 22)]);
    let mut exact = alternating(40);
    exact.update_region(&far, 0);
    let mut values = alternating(40);
    values.update_values_in(&far, |_| 0);
    let mut split = alternating(40);
    split.update_split(&Region::new(), 7, &far, |_| 0);
    for (name, m) in [("update_region", &exact), ("update_values_in", &values), ("update_split", &split)] {
        assert_eq!(m.len(), 36, "{name}: {m:?}");
        assert!(m.entries().contains(&(GridBox::d1(0, 3), 0)), "{name}: {m:?}");
        assert!(m.entries().contains(&(GridBox::d1(20, 23), 0)), "{name}: {m:?}");
    }
}

#[test]
fn updates_outside_the_extent_are_clamped() {
    let mut m = RegionMap::new(GridBox::d1(0, 10), 'a');
    m.update_box(&GridBox::d1(5, 50), 'b');
    assert_eq!(m.query_box(&GridBox::d1(0, 100)), vec![(GridBox::d1(0, 5), 'a'), (GridBox::d1(5, 10), 'b')]);
}
