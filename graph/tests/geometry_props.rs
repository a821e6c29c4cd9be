//! Property tests: regions and region maps against a brute-force cell-by-cell model, in 1, 2 and 3 dimensions.

use std::collections::BTreeSet;

use celer_graph::{GridBox, NeighborhoodShape, RangeMapper, Region, RegionMap};
use proptest::prelude::*;

/// Cells are small so the brute-force model stays cheap.
const SIDE: usize = 7;

type Cell = [usize; 3];

fn cells_of_box(b: &GridBox) -> BTreeSet<Cell> {
    let (min, max) = (b.min(), b.max());
    let mut out = BTreeSet::new();
    if b.is_empty() {
        return out;
    }
    for x in min[0]..max[0] {
        for y in min[1]..max[1] {
            for z in min[2]..max[2] {
                out.insert([x, y, z]);
            }
        }
    }
    out
}

fn cells(r: &Region) -> BTreeSet<Cell> {
    r.boxes().iter().flat_map(cells_of_box).collect()
}

fn arb_box(dims: usize) -> impl Strategy<Value = GridBox> {
    let coord = || (0..SIDE, 0..SIDE).prop_map(|(a, b)| (a.min(b), a.max(b) + 1));
    (coord(), coord(), coord()).prop_map(move |(x, y, z)| match dims {
        1 => GridBox::d1(x.0, x.1),
        2 => GridBox::d2([x.0, y.0], [x.1, y.1]),
        _ => GridBox::d3([x.0, y.0, z.0], [x.1, y.1, z.1]),
    })
}

fn arb_region(dims: usize) -> impl Strategy<Value = Region> {
    prop::collection::vec(arb_box(dims), 0..6).prop_map(Region::from_boxes)
}

fn arb_dims_and_regions() -> impl Strategy<Value = (Region, Region)> {
    (1usize..=3).prop_flat_map(|d| (arb_region(d), arb_region(d)))
}

/// The map's extent in `dims` dimensions: `SIDE` cells along each.
fn cube(dims: usize) -> GridBox {
    match dims {
        1 => GridBox::d1(0, SIDE),
        2 => GridBox::d2([0, 0], [SIDE, SIDE]),
        _ => GridBox::d3([0; 3], [SIDE; 3]),
    }
}

/// Checks that `map`'s entries cover its extent exactly once and hold `expected` in every cell.
fn holds_exactly(map: &RegionMap<u8>, expected: impl Fn(Cell) -> u8) -> Result<(), TestCaseError> {
    let covered: usize = map.entries().iter().map(|e| e.0.area()).sum();
    prop_assert_eq!(covered, map.extent().area(), "entries overlap or leave gaps: {:?}", map);
    for c in cells_of_box(&map.extent()) {
        prop_assert_eq!(*map.get(c), expected(c), "cell {:?}", c);
    }
    Ok(())
}

fn assert_disjoint(r: &Region) {
    let total: usize = r.boxes().iter().map(GridBox::area).sum();
    assert_eq!(total, cells(r).len(), "boxes of {r} overlap");
    assert!(r.boxes().iter().all(|b| !b.is_empty()), "{r} holds an empty box");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn set_operations_match_the_cell_model((a, b) in arb_dims_and_regions()) {
        let (ca, cb) = (cells(&a), cells(&b));
        let u = a.union(&b);
        let i = a.intersection(&b);
        let d = a.difference(&b);
        for r in [&a, &b, &u, &i, &d] {
            assert_disjoint(r);
            // Every result is in canonical form: normalizing its boxes again (in another order) changes nothing.
            prop_assert_eq!(r, &Region::from_boxes(r.boxes().iter().rev().copied()));
        }
        prop_assert_eq!(cells(&u), ca.union(&cb).copied().collect::<BTreeSet<_>>());
        prop_assert_eq!(cells(&i), ca.intersection(&cb).copied().collect::<BTreeSet<_>>());
        prop_assert_eq!(cells(&d), ca.difference(&cb).copied().collect::<BTreeSet<_>>());
        prop_assert_eq!(a.area(), ca.len());
        prop_assert_eq!(a.contains(&b), cb.is_subset(&ca));
        prop_assert_eq!(a.intersects(&b), !ca.is_disjoint(&cb));
        // Union and intersection are commutative up to the canonical form.
        prop_assert_eq!(&u, &b.union(&a));
        prop_assert_eq!(&i, &b.intersection(&a));
        // Intersecting with the boxes of a region, in any order, is intersecting with the region.
        let reversed: Vec<GridBox> = b.boxes().iter().rev().copied().collect();
        prop_assert_eq!(&a.intersect_boxes(&reversed), &i);
    }

    #[test]
    fn equal_cell_sets_give_equal_regions((a, b) in arb_dims_and_regions()) {
        // Build the same set two different ways: a ∪ b, and (a \ b) ∪ (b \ a) ∪ (a ∩ b) assembled box by box.
        let direct = a.union(&b);
        let pieces: Vec<GridBox> = a.difference(&b).boxes().iter()
            .chain(b.difference(&a).boxes())
            .chain(a.intersection(&b).boxes())
            .copied().collect();
        let rebuilt = Region::from_boxes(pieces.into_iter().rev());
        prop_assert_eq!(direct, rebuilt);
    }

    #[test]
    fn box_minus_overlapping_boxes_matches_the_cell_model(
        (b, cut) in (1usize..=3).prop_flat_map(|d| (arb_box(d), prop::collection::vec(arb_box(d), 0..4)))
    ) {
        // The cut boxes may overlap each other; the pieces must be disjoint and hold exactly b's cells outside them.
        let mut pieces = Vec::new();
        b.subtract_all_into(&cut, |p| pieces.push(p));
        let mut seen = BTreeSet::new();
        for p in &pieces {
            prop_assert!(!p.is_empty());
            for c in cells_of_box(p) {
                prop_assert!(seen.insert(c), "cell {:?} in two pieces", c);
            }
        }
        let mut expected = cells_of_box(&b);
        for c in &cut {
            for cell in cells_of_box(c) {
                expected.remove(&cell);
            }
        }
        prop_assert_eq!(seen, expected);
    }

    #[test]
    fn bounding_box_holds_every_cell(a in (1usize..=3).prop_flat_map(arb_region)) {
        let bb = a.bounding_box();
        for c in cells(&a) {
            prop_assert!(bb.contains(&GridBox::new(c, [c[0] + 1, c[1] + 1, c[2] + 1])));
        }
        if !a.is_empty() {
            // Tight: every face of the bounding box touches the region.
            let (min, max) = (bb.min(), bb.max());
            for d in 0..3 {
                prop_assert!(cells(&a).iter().any(|c| c[d] == min[d]));
                prop_assert!(cells(&a).iter().any(|c| c[d] + 1 == max[d]));
            }
        }
    }

    #[test]
    fn region_map_matches_a_dense_array(
        dims in 1usize..=3,
        updates in prop::collection::vec((0usize..1000, 0u8..4), 1..12),
        query_seed in 0usize..1000,
    ) {
        let extent = cube(dims);
        let boxes: Vec<GridBox> = {
            // Deterministic pseudo-random boxes from the seeds, so shrinking stays meaningful.
            let mk = |s: usize| {
                let c = |k: usize| { let a = (s / k) % SIDE; let b = (s / (k * 7)) % SIDE; (a.min(b), a.max(b) + 1) };
                let (x, y, z) = (c(1), c(3), c(11));
                match dims { 1 => GridBox::d1(x.0, x.1), 2 => GridBox::d2([x.0, y.0], [x.1, y.1]), _ => GridBox::d3([x.0, y.0, z.0], [x.1, y.1, z.1]) }
            };
            updates.iter().map(|(s, _)| mk(*s)).chain([mk(query_seed)]).collect()
        };
        let mut map = RegionMap::new(extent, 9u8);
        let mut model = std::collections::BTreeMap::new();
        for c in cells_of_box(&extent) { model.insert(c, 9u8); }
        for ((_, v), b) in updates.iter().zip(&boxes) {
            map.update_box(b, *v);
            for c in cells_of_box(b) { model.insert(c, *v); }
            // Entries stay disjoint and cover the extent exactly.
            let covered: usize = map.entries().iter().map(|e| e.0.area()).sum();
            prop_assert_eq!(covered, extent.area());
        }
        for (c, v) in &model {
            prop_assert_eq!(map.get(*c), v);
        }
        let q = *boxes.last().unwrap();
        let mut seen = 0;
        for (b, v) in map.query(&Region::from(q)) {
            prop_assert!(q.contains(&b));
            for c in cells_of_box(&b) { prop_assert_eq!(model[&c], v); seen += 1; }
        }
        prop_assert_eq!(seen, q.area());
        // Compacting leaves each value in exactly the boxes of its canonical region, without changing any cell.
        map.compact();
        for v in 0u8..10 {
            let region = Region::from_boxes(map.entries().iter().filter(|e| e.1 == v).map(|e| e.0));
            let n = map.entries().iter().filter(|e| e.1 == v).count();
            prop_assert_eq!(n, region.boxes().len(), "value {} is held in {} boxes, its canonical form has {}", v, n, region.boxes().len());
        }
        for (c, v) in &model {
            prop_assert_eq!(map.get(*c), v);
        }
        // A horizon-like rewrite collapses everything to one box.
        map.apply_to_values(|_| 1);
        prop_assert_eq!(map.len(), 1);
    }

    #[test]
    fn region_map_split_update_matches_two_updates(
        (dims, regions) in (1usize..=3).prop_flat_map(|d| (Just(d), prop::collection::vec(arb_region(d), 3..8))),
        values in prop::collection::vec(0u8..4, 8),
    ) {
        let extent = cube(dims);
        // Some history first, so the split update meets several entries of several values.
        let mut map = RegionMap::new(extent, 9u8);
        let (history, split) = regions.split_at(regions.len() - 2);
        for (r, v) in history.iter().zip(&values) {
            map.update_region(r, *v);
        }
        let (inner, outer) = (&split[0], &split[1]);
        let f = |v: &u8| if *v == 9 { 9 } else { v + 10 };
        let mut expected = map.clone();
        expected.update_region(inner, 7);
        expected.update_values_in(&outer.difference(inner), f);
        map.update_split(inner, 7, outer, f);
        holds_exactly(&map, |c| *expected.get(c))?;
    }

    #[test]
    fn neighborhood_mapper_matches_the_cell_model(
        (dims, chunk, buffer) in (1usize..=3).prop_flat_map(|d| (Just(d), arb_box(d), arb_box(d))),
        ext in prop::array::uniform3(0usize..3),
        along_axes in any::<bool>(),
    ) {
        let shape = if along_axes { NeighborhoodShape::AlongAxes } else { NeighborhoodShape::BoundingBox };
        let mut extent = ext;
        extent[dims..].fill(0);
        let mapper = RangeMapper::Neighborhood { extent, shape };
        let got = mapper.apply(&chunk, &chunk, dims, &buffer, dims).unwrap();
        assert_disjoint(&got);
        // A buffer cell is in the neighbourhood when some chunk cell lies within the extent of it: along every
        // dimension for the bounding box, along at most one dimension for the "+" shape.
        let chunk_cells = cells_of_box(&chunk);
        let expected: BTreeSet<Cell> = cells_of_box(&buffer)
            .into_iter()
            .filter(|c| {
                chunk_cells.iter().any(|k| {
                    let off = [c[0].abs_diff(k[0]), c[1].abs_diff(k[1]), c[2].abs_diff(k[2])];
                    let within = (0..3).all(|d| off[d] <= extent[d]);
                    within && (!along_axes || off.iter().filter(|&&o| o > 0).count() <= 1)
                })
            })
            .collect();
        prop_assert_eq!(cells(&got), expected, "{:?} of {} in {}", mapper, chunk, buffer);
    }

    #[test]
    fn region_map_update_of_existing_entries_matches_the_cell_model(
        (dims, regions) in (1usize..=3).prop_flat_map(|d| (Just(d), prop::collection::vec(arb_region(d), 1..6))),
        values in prop::collection::vec(0u8..4, 6),
        pick in prop::collection::vec(any::<bool>(), 16),
    ) {
        let extent = cube(dims);
        let mut map = RegionMap::new(extent, 9u8);
        for (r, v) in regions.iter().zip(&values) {
            map.update_region(r, *v);
        }
        // Rewrite some of the map's own boxes (often exactly its entries: the in-place path).
        let chosen: Vec<GridBox> =
            map.entries().iter().zip(pick.iter().cycle()).filter(|(_, p)| **p).map(|(e, _)| e.0).collect();
        let target = Region::from_boxes(chosen);
        let mut expected: std::collections::BTreeMap<Cell, u8> =
            cells_of_box(&extent).into_iter().map(|c| (c, *map.get(c))).collect();
        for c in cells(&target) {
            expected.insert(c, 5);
        }
        map.update_region(&target, 5);
        holds_exactly(&map, |c| expected[&c])?;
    }
}

/// The side of the index space of the many-box properties: large enough in each dimensionality for scattered cells
/// to give regions of more boxes than the indexed paths' thresholds.
fn many_side(dims: usize) -> usize {
    [64, 16, 7][dims - 1]
}

/// A box of one or two cells along each dimension, somewhere in the many-box index space.
fn arb_small_box(dims: usize) -> impl Strategy<Value = GridBox> {
    let side = many_side(dims);
    let coord = move || (0..side, 1usize..=2).prop_map(move |(a, len)| (a, (a + len).min(side)));
    (coord(), coord(), coord()).prop_map(move |(x, y, z)| match dims {
        1 => GridBox::d1(x.0, x.1),
        2 => GridBox::d2([x.0, y.0], [x.1, y.1]),
        _ => GridBox::d3([x.0, y.0, z.0], [x.1, y.1, z.1]),
    })
}

/// A region of scattered small boxes (often more than a dozen after normalizing), now and then with one large box.
fn arb_many_region(dims: usize) -> impl Strategy<Value = Region> {
    let side = many_side(dims);
    (prop::collection::vec(arb_small_box(dims), 8..60), any::<bool>(), 0..side).prop_map(move |(boxes, big, at)| {
        let large = match dims {
            1 => GridBox::d1(at / 2, at / 2 + side / 3),
            2 => GridBox::d2([at / 2, 0], [at / 2 + side / 3, side / 2]),
            _ => GridBox::d3([at / 2, 0, 1], [at / 2 + 2, side, 3]),
        };
        Region::from_boxes(boxes.into_iter().chain(big.then_some(large)))
    })
}

/// The extent of the many-box maps.
fn many_cube(dims: usize) -> GridBox {
    let s = many_side(dims);
    match dims {
        1 => GridBox::d1(0, s),
        2 => GridBox::d2([0, 0], [s, s]),
        _ => GridBox::d3([0; 3], [s; 3]),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn set_operations_on_many_boxes_match_the_cell_model(
        (a, b, q) in (1usize..=3).prop_flat_map(|d| (arb_many_region(d), arb_many_region(d), arb_small_box(d)))
    ) {
        let (ca, cb) = (cells(&a), cells(&b));
        let u = a.union(&b);
        let i = a.intersection(&b);
        let d = a.difference(&b);
        let back = b.difference(&a);
        for r in [&u, &i, &d, &back] {
            assert_disjoint(r);
            prop_assert_eq!(r, &Region::from_boxes(r.boxes().iter().rev().copied()), "not in canonical form");
        }
        prop_assert_eq!(cells(&u), ca.union(&cb).copied().collect::<BTreeSet<_>>());
        prop_assert_eq!(cells(&i), ca.intersection(&cb).copied().collect::<BTreeSet<_>>());
        prop_assert_eq!(cells(&d), ca.difference(&cb).copied().collect::<BTreeSet<_>>());
        prop_assert_eq!(cells(&back), cb.difference(&ca).copied().collect::<BTreeSet<_>>());
        prop_assert_eq!(a.contains(&b), cb.is_subset(&ca));
        prop_assert_eq!(a.contains(&i), true);
        prop_assert_eq!(u.contains(&a), true);
        prop_assert_eq!(a.intersects(&b), !ca.is_disjoint(&cb));
        prop_assert_eq!(a.intersects(&d), !d.is_empty());
        let reversed: Vec<GridBox> = b.boxes().iter().rev().copied().collect();
        prop_assert_eq!(&a.intersect_boxes(&reversed), &i);
        // One box against many.
        let cq = cells_of_box(&q);
        prop_assert_eq!(a.intersects_box(&q), !ca.is_disjoint(&cq));
        prop_assert_eq!(a.contains_box(&q), cq.is_subset(&ca));
        prop_assert_eq!(cells(&a.intersect_box(&q)), ca.intersection(&cq).copied().collect::<BTreeSet<_>>());
        prop_assert_eq!(a.intersect_box(&q), a.intersection(&Region::from(q)));
        let mut met = Vec::new();
        a.for_each_box_meeting(&q, |x| { met.push(*x); false });
        let want: Vec<GridBox> = a.boxes().iter().filter(|x| x.intersects(&q)).copied().collect();
        prop_assert_eq!(met, want, "the boxes met, in canonical order");
    }

    #[test]
    fn region_maps_updated_by_many_boxes_match_the_cell_model(
        (dims, regions) in (1usize..=3).prop_flat_map(|d| (Just(d), prop::collection::vec(arb_many_region(d), 4..7))),
        values in prop::collection::vec(0u8..4, 7),
    ) {
        let extent = many_cube(dims);
        let mut map = RegionMap::new(extent, 9u8);
        let mut model: std::collections::BTreeMap<Cell, u8> = cells_of_box(&extent).into_iter().map(|c| (c, 9)).collect();
        let (history, last) = regions.split_at(regions.len() - 3);
        for (r, v) in history.iter().zip(&values) {
            map.update_region(r, *v);
            for c in cells(r) { model.insert(c, *v); }
            holds_exactly(&map, |c| model[&c])?;
        }
        let (inner, outer, query) = (&last[0], &last[1], &last[2]);
        // Queries: the pairs in the order of the region's boxes, then of the entries, as one box at a time gives.
        let mut seen = Vec::new();
        map.for_each_in(query, |b, v| seen.push((b, *v)));
        let mut want = Vec::new();
        for q in query.boxes() {
            map.query_box_into(q, &mut want);
        }
        prop_assert_eq!(&seen, &want);
        want.sort_unstable_by_key(|e| (e.0.min(), e.0.max()));
        prop_assert_eq!(map.query(query), want);
        // Rewriting values inside a region, and the split update.
        let f = |v: &u8| if *v == 9 { 9 } else { v + 10 };
        let mut values_in = map.clone();
        values_in.update_values_in(outer, f);
        let co = cells(outer);
        holds_exactly(&values_in, |c| if co.contains(&c) { f(&model[&c]) } else { model[&c] })?;
        let ci = cells(inner);
        map.update_split(inner, 7, outer, f);
        holds_exactly(&map, |c| if ci.contains(&c) { 7 } else if co.contains(&c) { f(&model[&c]) } else { model[&c] })?;
    }

    #[test]
    fn reader_logs_cut_by_many_boxes_match_the_cell_model(
        (reads, write, probe) in (1usize..=3).prop_flat_map(|d| (
            prop::collection::vec(arb_many_region(d), 1..4), arb_many_region(d), arb_many_region(d)
        ))
    ) {
        let mut log = celer_graph::ReaderLog::new();
        for (k, r) in reads.iter().enumerate() {
            log.add(k as u32, r.boxes().iter().copied());
            // One large read as well, which the write cuts into many pieces.
            log.add(10 + k as u32, [r.bounding_box()]);
        }
        log.clear(&write);
        let written = cells(&write);
        // Each reader keeps exactly its cells outside the write.
        for (k, r) in reads.iter().enumerate() {
            for (reader, read) in [(k as u32, cells(r)), (10 + k as u32, cells_of_box(&r.bounding_box()))] {
                let mut kept = BTreeSet::new();
                log.for_each_overlap(&Region::from(GridBox::d3([0; 3], [64; 3])), |x, b| {
                    if x == reader { kept.extend(cells_of_box(&b)); }
                });
                let want: BTreeSet<Cell> = read.difference(&written).copied().collect();
                prop_assert_eq!(kept, want, "reader {}", reader);
            }
        }
        // Readers of a many-box probe: those that kept a probed cell.
        let probed = cells(&probe);
        let mut found = BTreeSet::new();
        log.for_each_in(&probe, |x| { found.insert(x); });
        let mut pairs = Vec::new();
        log.for_each_overlap(&probe, |x, b| pairs.push((x, b)));
        for (x, b) in &pairs {
            prop_assert!(cells_of_box(b).is_subset(&probed), "{} outside the probe", b);
            prop_assert!(found.contains(x));
        }
        let with_cells: BTreeSet<u32> = pairs.iter().map(|p| p.0).collect();
        prop_assert_eq!(found, with_cells);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 100, ..ProptestConfig::default() })]

    #[test]
    fn region_maps_clamp_many_box_updates_to_their_extent(
        (dims, regions) in (1usize..=3).prop_flat_map(|d| (Just(d), prop::collection::vec(arb_many_region(d), 3..6))),
        margin in 1usize..3,
    ) {
        // A map smaller than the regions' space: every update is cut to its extent (boxes clamped, some dropped),
        // which must keep the lookups' slab order.
        let side = many_side(dims);
        let (lo, hi) = (margin, side - margin);
        let extent = match dims {
            1 => GridBox::d1(lo, hi),
            2 => GridBox::d2([lo, lo], [hi, hi]),
            _ => GridBox::d3([lo; 3], [hi; 3]),
        };
        let mut map = RegionMap::new(extent, 9u8);
        let mut model: std::collections::BTreeMap<Cell, u8> =
            cells_of_box(&extent).into_iter().map(|c| (c, 9)).collect();
        let (history, split) = regions.split_at(regions.len() - 2);
        for (k, r) in history.iter().enumerate() {
            map.update_region(r, k as u8);
            for c in cells(r) {
                if let Some(v) = model.get_mut(&c) {
                    *v = k as u8;
                }
            }
        }
        holds_exactly(&map, |c| model[&c])?;
        let (inner, outer) = (cells(&split[0]), cells(&split[1]));
        map.update_split(&split[0], 7, &split[1], |v| v + 20);
        holds_exactly(&map, |c| if inner.contains(&c) { 7 } else if outer.contains(&c) { model[&c] + 20 } else { model[&c] })?;
    }
}
