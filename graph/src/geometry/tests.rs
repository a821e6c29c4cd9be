//! Fixed-case tests of boxes and regions (the property tests are in graph/tests/).

use super::*;

#[test]
fn empty_boxes_normalize_to_zero() {
    assert_eq!(GridBox::d1(5, 5), GridBox::EMPTY);
    assert_eq!(GridBox::d2([0, 3], [4, 3]), GridBox::EMPTY);
    assert_eq!(GridBox::new([1, 2, 3], [4, 5, 3]), GridBox::EMPTY);
    assert_eq!(GridBox::new_or_empty([0, 3, 0], [4, 2, 1]), GridBox::EMPTY, "crossed corners, asked for");
    assert_eq!(GridBox::new_or_empty([0, 2, 0], [4, 3, 1]), GridBox::d2([0, 2], [4, 3]));
    assert!(Region::from(GridBox::EMPTY).is_empty());
}

#[test]
#[should_panic(
    expected = "GridBox::d1(7, 3): min 7 exceeds max 3 along dimension 0; a box [min, max) needs min <= max"
)]
fn a_1d_box_with_min_past_max_panics_naming_both() {
    let _ = GridBox::d1(7, 3);
}

#[test]
#[should_panic(expected = "GridBox::d2([0, 7], [4, 3]): min 7 exceeds max 3 along dimension 1")]
fn a_2d_box_with_crossed_corners_panics_naming_the_dimension() {
    let _ = GridBox::d2([0, 7], [4, 3]);
}

#[test]
#[should_panic(expected = "GridBox::d3([1, 2, 9], [4, 5, 8]): min 9 exceeds max 8 along dimension 2")]
fn a_3d_box_with_crossed_corners_panics_naming_the_dimension() {
    let _ = GridBox::d3([1, 2, 9], [4, 5, 8]);
}

#[test]
#[should_panic(expected = "GridBox::new([5, 0, 0], [4, 1, 1]): min 5 exceeds max 4 along dimension 0")]
fn new_refuses_crossed_corners_even_where_another_dimension_is_empty() {
    // Dimension 1 alone would make the box empty; dimension 0 still crosses, which is a bug, not emptiness.
    let _ = GridBox::new([5, 0, 0], [4, 1, 1]);
}

#[test]
fn only_the_first_crossed_dimension_is_named_and_boxes_apart_intersect_to_empty() {
    let msg = std::panic::catch_unwind(|| GridBox::new([0, 9, 9], [4, 3, 3])).unwrap_err();
    let msg = msg.downcast_ref::<String>().expect("a formatted message");
    assert!(msg.contains("min 9 exceeds max 3 along dimension 1"), "{msg}");
    // Apart along dimension 0: the overlap's corners cross there, which intersection takes as "nothing".
    assert_eq!(GridBox::d1(0, 4).intersection(&GridBox::d1(8, 12)), GridBox::EMPTY);
    assert!(GridBox::d2([0, 0], [4, 4]).intersection(&GridBox::d2([0, 6], [4, 9])).is_empty());
}

#[test]
fn a_box_with_a_zero_extent_has_area_zero_however_large_the_others() {
    let big = 1usize << 40;
    for e in [[big, big, 0], [big, 0, big], [0, big, big]] {
        let b = GridBox::from_extent(&e);
        assert_eq!((b, b.area(), b.range()), (GridBox::EMPTY, 0, [0; 3]), "{e:?}");
        assert_eq!(GridBox::from_subrange(&[big, 7, big], &e).area(), 0, "{e:?} at an offset");
        assert_eq!(Region::from(b).area(), 0);
    }
}

#[test]
fn adjacent_boxes_merge_into_one() {
    let r = Region::from_boxes([GridBox::d2([0, 0], [2, 4]), GridBox::d2([2, 0], [4, 4])]);
    assert_eq!(r.boxes(), &[GridBox::d2([0, 0], [4, 4])]);
    let r = Region::from_boxes([GridBox::d1(0, 3), GridBox::d1(3, 7), GridBox::d1(9, 10)]);
    assert_eq!(r.boxes(), &[GridBox::d1(0, 7), GridBox::d1(9, 10)]);
}

#[test]
fn canonical_form_ignores_how_the_region_was_built() {
    let a = Region::from_boxes([GridBox::d2([0, 0], [4, 2]), GridBox::d2([0, 2], [2, 4])]);
    let b = Region::from_boxes([GridBox::d2([0, 0], [2, 4]), GridBox::d2([2, 0], [4, 2])]);
    assert_eq!(a, b);
    assert_eq!(a.area(), 12);
}

#[test]
fn box_difference_yields_disjoint_pieces() {
    let outer = GridBox::d3([0, 0, 0], [3, 3, 3]);
    let hole = GridBox::d3([1, 1, 1], [2, 2, 2]);
    let mut pieces = vec![];
    outer.subtract_into(&hole, |p| pieces.push(p));
    assert_eq!(pieces.len(), 6);
    assert_eq!(pieces.iter().map(GridBox::area).sum::<usize>(), 26);
    for (i, p) in pieces.iter().enumerate() {
        assert!(!p.intersects(&hole));
        for q in &pieces[i + 1..] {
            assert!(!p.intersects(q));
        }
    }
}

#[test]
fn zero_dimensional_box_is_one_cell() {
    let b = GridBox::from_extent(&[]);
    assert_eq!(b.area(), 1);
    assert_eq!(b.effective_dims(), 0);
}

#[test]
fn display_uses_effective_dimensions() {
    assert_eq!(GridBox::d2([0, 1], [4, 5]).to_string(), "[0,1] - [4,5]");
    assert_eq!(Region::from(GridBox::d1(2, 3)).to_string(), "{[2] - [3]}");
}

#[test]
fn boxes_and_regions_print_exactly() {
    assert_eq!(GridBox::EMPTY.to_string(), "[]");
    assert_eq!(format!("{:?}", GridBox::EMPTY), "[]");
    assert_eq!(GridBox::from_extent(&[]).to_string(), "[0] - [1]", "a 0D box prints as one 1D cell");
    assert_eq!(GridBox::d3([1, 2, 3], [4, 5, 6]).to_string(), "[1,2,3] - [4,5,6]");
    assert_eq!(format!("{:?}", GridBox::d2([0, 0], [2, 1])), "[0] - [2]");
    assert_eq!(Region::new().to_string(), "{}");
    let r = Region::from_boxes([GridBox::d1(5, 6), GridBox::d1(0, 2)]);
    assert_eq!(r.to_string(), "{[0] - [2], [5] - [6]}");
    assert_eq!(format!("{r:?}"), "{[0] - [2], [5] - [6]}");
}

#[test]
fn a_box_at_the_origin_keeps_its_dimensions() {
    assert_eq!(GridBox::d1(0, 5).effective_dims(), 1);
    assert_eq!(GridBox::d1(3, 4).effective_dims(), 1);
    assert_eq!(GridBox::d1(0, 1).effective_dims(), 0);
    assert_eq!(GridBox::d2([0, 0], [1, 5]).effective_dims(), 2);
    assert_eq!(GridBox::d2([0, 2], [1, 3]).effective_dims(), 2);
    assert_eq!(GridBox::d3([0, 0, 0], [1, 1, 2]).effective_dims(), 3);
    assert_eq!(GridBox::d3([0, 0, 1], [1, 1, 2]).effective_dims(), 3);
    assert_eq!(GridBox::d3([0, 0, 0], [4, 1, 1]).effective_dims(), 1);
}

#[test]
fn boxes_and_regions_transpose() {
    let b = GridBox::d3([1, 2, 3], [4, 6, 8]);
    assert_eq!(b.transposed(0, 2), GridBox::d3([3, 2, 1], [8, 6, 4]));
    assert_eq!(b.transposed(1, 0), GridBox::d3([2, 1, 3], [6, 4, 8]));
    assert_eq!(b.transposed(1, 1), b);
    // An L shape: [0,2)x[0,1) plus [0,1)x[1,3); transposed it is [0,1)x[0,2) plus [1,3)x[0,1).
    let l = Region::from_boxes([GridBox::d2([0, 0], [2, 1]), GridBox::d2([0, 1], [1, 3])]);
    let t = l.transposed(0, 1);
    assert_eq!(t, Region::from_boxes([GridBox::d2([0, 0], [1, 2]), GridBox::d2([1, 0], [3, 1])]));
    assert_eq!(t.boxes(), &[GridBox::d2([0, 0], [1, 2]), GridBox::d2([1, 0], [3, 1])]);
    assert_eq!(t.transposed(0, 1), l);
    assert_eq!(Region::new().transposed(0, 1), Region::new());
}

#[test]
fn regions_against_a_box() {
    // Two boxes apart: [0,4) and [8,12).
    let r = Region::from_boxes([GridBox::d1(0, 4), GridBox::d1(8, 12)]);
    assert_eq!(r.intersect_box(&GridBox::d1(2, 10)), Region::from_boxes([GridBox::d1(2, 4), GridBox::d1(8, 10)]));
    assert_eq!(r.intersect_box(&GridBox::d1(9, 20)), Region::from(GridBox::d1(9, 12)));
    assert_eq!(r.intersect_box(&GridBox::d1(4, 8)), Region::new());
    let one = Region::from(GridBox::d1(0, 4));
    assert_eq!(one.intersect_box(&GridBox::d1(2, 10)), Region::from(GridBox::d1(2, 4)));
    assert_eq!(one.intersect_box(&GridBox::d1(5, 10)), Region::new());

    assert!(r.intersects_box(&GridBox::d1(10, 11)));
    assert!(r.intersects_box(&GridBox::d1(3, 9)));
    assert!(!r.intersects_box(&GridBox::d1(4, 8)));
    assert!(!Region::new().intersects_box(&GridBox::d1(0, 100)));

    assert!(r.contains_box(&GridBox::d1(8, 12)));
    assert!(r.contains_box(&GridBox::EMPTY));
    assert!(Region::new().contains_box(&GridBox::EMPTY));
    assert!(!r.contains_box(&GridBox::d1(3, 9)));
    assert!(!r.contains_box(&GridBox::d1(20, 21)));
    assert!(!Region::new().contains_box(&GridBox::d1(0, 1)));
    // A box across two boxes of the region: no single box holds it, together they do.
    let l = Region::from_boxes([GridBox::d2([0, 0], [2, 1]), GridBox::d2([0, 1], [1, 3])]);
    assert_eq!(l.boxes().len(), 2);
    assert!(l.contains_box(&GridBox::d2([0, 0], [1, 3])));
    assert!(!l.contains_box(&GridBox::d2([0, 0], [2, 2])));
    assert!(l.contains(&Region::from(GridBox::d2([0, 0], [1, 3]))));
    assert!(!l.contains(&Region::from(GridBox::d2([0, 0], [2, 2]))));
    assert!(!Region::from(GridBox::d2([0, 0], [2, 1])).contains(&l));
}

#[test]
fn regions_collect_from_boxes() {
    let r: Region = [GridBox::d1(4, 6), GridBox::EMPTY, GridBox::d1(0, 2), GridBox::d1(2, 3)].into_iter().collect();
    assert_eq!(r.boxes(), &[GridBox::d1(0, 3), GridBox::d1(4, 6)]);
    assert_eq!(std::iter::empty::<GridBox>().collect::<Region>(), Region::new());
}

#[test]
fn absorbing_adds_cells_to_a_non_empty_region() {
    let mut r = Region::new();
    r.absorb(Region::from(GridBox::d1(0, 2)));
    assert_eq!(r, Region::from(GridBox::d1(0, 2)));
    r.absorb(Region::from(GridBox::d1(5, 6)));
    assert_eq!(r.boxes(), &[GridBox::d1(0, 2), GridBox::d1(5, 6)]);
    r.absorb(Region::new());
    assert_eq!(r.boxes(), &[GridBox::d1(0, 2), GridBox::d1(5, 6)]);
    r.absorb(Region::from(GridBox::d1(2, 5)));
    assert_eq!(r.boxes(), &[GridBox::d1(0, 6)]);
}

#[test]
fn a_box_minus_a_box_comes_out_in_canonical_order() {
    // subtract_into cuts below and above along dimension 0 first; the canonical form orders slabs by dimension 0.
    let a = GridBox::d2([0, 0], [3, 3]);
    let hole = GridBox::d2([1, 1], [2, 2]);
    let d = Region::from(a).difference(&Region::from(hole));
    assert_eq!(
        d.boxes(),
        &[
            GridBox::d2([0, 0], [1, 3]),
            GridBox::d2([1, 0], [2, 1]),
            GridBox::d2([1, 2], [2, 3]),
            GridBox::d2([2, 0], [3, 3]),
        ]
    );
    // In 3D, with the hole touching the top along dimension 0.
    let a = GridBox::d3([0, 0, 0], [2, 2, 2]);
    let hole = GridBox::d3([1, 0, 1], [2, 1, 2]);
    let d = Region::from(a).difference(&Region::from(hole));
    assert_eq!(
        d.boxes(),
        &[GridBox::d3([0, 0, 0], [1, 2, 2]), GridBox::d3([1, 0, 0], [2, 1, 1]), GridBox::d3([1, 1, 0], [2, 2, 2]),]
    );
    assert_eq!(d, Region::from_boxes(d.boxes().iter().rev().copied()));
    // Apart: the box itself.
    assert_eq!(Region::from(a).difference(&Region::from(GridBox::d3([5; 3], [6; 3]))), Region::from(a));
}

#[test]
fn pairs_of_3d_boxes_take_the_canonical_form() {
    // Each case: two boxes and their union's canonical boxes (slabs along 0, then 1, then 2).
    let b = GridBox::d3;
    let cases = [
        // Same in dimensions 0 and 1, overlapping along 2: one box.
        (b([0, 0, 0], [2, 2, 3]), b([0, 0, 2], [2, 2, 5]), vec![b([0, 0, 0], [2, 2, 5])]),
        // Same lower bound along 1 but not the same extent, apart along 0.
        (b([0, 0, 0], [1, 2, 1]), b([2, 0, 0], [3, 3, 1]), vec![b([0, 0, 0], [1, 2, 1]), b([2, 0, 0], [3, 3, 1])]),
        // Same upper bound along 2, overlapping along 0: the slab [1,2) looks like [0,1) and joins it.
        (b([0, 0, 0], [2, 1, 2]), b([1, 0, 1], [3, 1, 2]), vec![b([0, 0, 0], [2, 1, 2]), b([2, 0, 1], [3, 1, 2])]),
        // Differing along all three: slabs [0,1), [1,2) (cut along 1), [2,3).
        (
            b([0, 0, 0], [2, 1, 2]),
            b([1, 0, 1], [3, 2, 2]),
            vec![b([0, 0, 0], [1, 1, 2]), b([1, 0, 0], [2, 1, 2]), b([1, 1, 1], [2, 2, 2]), b([2, 0, 1], [3, 2, 2])],
        ),
        // Differing along 1 and 2 only: one slab along 0, cut along 1.
        (b([0, 0, 0], [2, 1, 1]), b([0, 0, 0], [2, 2, 2]), vec![b([0, 0, 0], [2, 2, 2])]),
        (b([0, 0, 0], [2, 2, 1]), b([0, 1, 0], [2, 3, 2]), vec![b([0, 0, 0], [2, 1, 1]), b([0, 1, 0], [2, 3, 2])]),
        // Apart along 1 only, but not the same along 0 and 2 (same upper bounds, or same lower bounds): the
        // union is not the pair as it is, but sliced along 0.
        (
            b([0, 0, 0], [2, 1, 2]),
            b([1, 2, 1], [2, 3, 2]),
            vec![b([0, 0, 0], [1, 1, 2]), b([1, 0, 0], [2, 1, 2]), b([1, 2, 1], [2, 3, 2])],
        ),
        (
            b([0, 0, 0], [2, 1, 2]),
            b([0, 2, 0], [1, 3, 1]),
            vec![b([0, 0, 0], [1, 1, 2]), b([0, 2, 0], [1, 3, 1]), b([1, 0, 0], [2, 1, 2])],
        ),
        // Same along 0 and 2, touching along 1: one box.
        (b([0, 0, 0], [2, 1, 2]), b([0, 1, 0], [2, 3, 2]), vec![b([0, 0, 0], [2, 3, 2])]),
    ];
    for (x, y, want) in cases {
        assert_eq!(Region::from_boxes([x, y]).boxes(), &want[..], "{x:?} + {y:?}");
        assert_eq!(Region::from_boxes([y, x]).boxes(), &want[..], "{y:?} + {x:?}");
        let cells: usize = want.iter().map(GridBox::area).sum();
        assert_eq!(cells, x.area() + y.area() - x.intersection(&y).area());
    }
}

#[test]
fn boxes_differing_along_one_dimension_merge_as_intervals() {
    // Three or more slabs of a split along dimension 1, one gap: sorted runs.
    let s = |a: usize, b: usize| GridBox::d3([0, a, 0], [2, b, 2]);
    let r = Region::from_boxes([s(4, 6), s(0, 2), s(2, 3), s(8, 9)]);
    assert_eq!(r.boxes(), &[s(0, 3), s(4, 6), s(8, 9)]);
    // Along dimension 2.
    let z = |a: usize, b: usize| GridBox::d3([1, 1, a], [2, 2, b]);
    let r = Region::from_boxes([z(5, 6), z(0, 2), z(1, 4)]);
    assert_eq!(r.boxes(), &[z(0, 4), z(5, 6)]);
}

#[test]
fn canonical_regions_of_many_boxes_are_in_slab_order_and_searchable() {
    // A 2D checkerboard with a wide box across it: runs of several boxes along dimension 0, one box each along 1.
    let cells = (0..12).flat_map(|r| (0..12).filter(move |c| (r + c) % 2 == 0).map(move |c| (r, c)));
    let board = Region::from_boxes(cells.map(|(r, c)| GridBox::d2([r, c], [r + 1, c + 1])));
    let r = board.union(&Region::from(GridBox::d2([4, 0], [6, 12])));
    assert!(r.boxes().len() > 50);
    assert!(super::in_slab_order(r.boxes()), "{r}");
    assert!(!super::in_slab_order(&[GridBox::d1(4, 6), GridBox::d1(0, 2)]), "runs must ascend");
    assert!(!super::in_slab_order(&[GridBox::d2([0, 0], [2, 1]), GridBox::d2([0, 1], [1, 2])]), "one run, two ends");
    for q in [GridBox::d2([3, 3], [7, 5]), GridBox::d2([0, 11], [12, 12]), GridBox::d2([5, 0], [6, 1])] {
        let mut met = Vec::new();
        r.for_each_box_meeting(&q, |b| {
            met.push(*b);
            false
        });
        let want: Vec<GridBox> = r.boxes().iter().filter(|b| b.intersects(&q)).copied().collect();
        assert_eq!(met, want, "boxes meeting {q}");
        // The box minus the region, by one walk, is the region difference.
        let inside: Vec<GridBox> = met.iter().map(|b| b.intersection(&q)).collect();
        let mut pieces = Vec::new();
        super::complement_in(&q, &inside, &mut |p| pieces.push(p));
        assert!(super::in_slab_order(&pieces), "{pieces:?}");
        assert_eq!(Region::from_boxes(pieces), Region::from(q).difference(&r), "{q} minus the region");
    }
    // The search stops where asked.
    let mut calls = 0;
    assert!(r.for_each_box_meeting(&GridBox::d2([0, 0], [12, 12]), |_| {
        calls += 1;
        calls == 3
    }));
    assert_eq!(calls, 3);
}

#[test]
fn regions_of_many_boxes_display_their_first_and_last_boxes() {
    let r = Region::from_boxes((0..4000).map(|i| GridBox::d1(2 * i + 1, 2 * i + 2)));
    let shown = r.to_string();
    assert!(shown.starts_with("{[1] - [2], [3] - [4], "), "{shown}");
    assert!(shown.ends_with(", [31] - [32], … 3983 more boxes …, [7999] - [8000]}"), "{shown}");
    assert!(shown.len() < 400, "{} characters", shown.len());
    assert_eq!(format!("{r:?}").matches(" - ").count(), 4000, "Debug shows every box");
    let few = Region::from_boxes((0..DISPLAYED_BOXES).map(|i| GridBox::d1(2 * i, 2 * i + 1)));
    assert_eq!(few.to_string().matches(" - ").count(), DISPLAYED_BOXES, "{few}");
    assert_eq!(few.to_string(), format!("{few:?}"));
}
