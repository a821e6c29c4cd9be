//! The slab order of a region's canonical boxes (see [`Region`](super::Region)): building it (normalizing a box
//! list into the canonical form, with the fast paths for two boxes and for boxes that differ along one dimension)
//! and searching it (the boxes of a list meeting a box by a binary search per dimension, and the complement of many
//! cuts within a box in one walk), with the box-count thresholds above which region operations take the searches.

use smallvec::SmallVec;

use super::{GridBox, MAX_DIMS};

/// Whether two boxes agree in all dimensions but one, along which a gap separates them: then no canonical form cuts
/// or joins them, and sorted they are their union's canonical form.
#[inline]
pub(crate) fn apart_along_one_dimension(a: &GridBox, b: &GridBox) -> bool {
    let mut differing = (0..MAX_DIMS).filter(|&d| !same_in(a, b, d));
    match (differing.next(), differing.next()) {
        (Some(d), None) => a.max[d] < b.min[d] || b.max[d] < a.min[d],
        _ => false,
    }
}

/// The union of two boxes if it is itself a box: they touch or overlap along one dimension and agree in all others.
#[inline]
pub(super) fn merged_pair(a: &GridBox, b: &GridBox) -> Option<GridBox> {
    let mut dim = None;
    for d in 0..MAX_DIMS {
        if a.min[d] == b.min[d] && a.max[d] == b.max[d] {
            continue;
        }
        if dim.is_some() || a.max[d] < b.min[d] || b.max[d] < a.min[d] {
            return None;
        }
        dim = Some(d);
    }
    Some(a.bounding_box(b))
}

/// Box lists that stay on the stack for the small regions command generation handles.
pub(super) type Scratch = SmallVec<[GridBox; 8]>;

/// Sorts boxes that differ only along `d` and emits their union as maximal runs, in order.
pub(super) fn merge_intervals(boxes: &mut [GridBox], d: usize, mut emit: impl FnMut(GridBox)) {
    boxes.sort_unstable_by_key(|b| (b.min[d], b.max[d]));
    let mut cur = boxes[0];
    for b in &boxes[1..] {
        if b.min[d] <= cur.max[d] {
            cur.max[d] = cur.max[d].max(b.max[d]);
        } else {
            emit(cur);
            cur = *b;
        }
    }
    emit(cur);
}

/// Appends the canonical decomposition of the union of `boxes` (all non-empty) to `out`.
///
/// Only dimensions `d..` of the output are meaningful; the caller owns dimensions below `d` and overwrites them.
pub(super) fn normalize_dim(boxes: &mut [GridBox], d: usize, out: &mut Scratch) {
    if d == MAX_DIMS - 1 {
        merge_intervals(boxes, d, |b| out.push(b));
        return;
    }
    // Fast path: every box spans the same interval along `d`, so there is a single slab.
    let (lo, hi) = (boxes[0].min[d], boxes[0].max[d]);
    if boxes.iter().all(|b| b.min[d] == lo && b.max[d] == hi) {
        let start = out.len();
        normalize_dim(boxes, d + 1, out);
        for b in &mut out[start..] {
            b.min[d] = lo;
            b.max[d] = hi;
        }
        return;
    }
    let mut cuts: SmallVec<[usize; 16]> = boxes.iter().flat_map(|b| [b.min[d], b.max[d]]).collect();
    cuts.sort_unstable();
    cuts.dedup();
    // Sweep along `d`: boxes enter at their min and leave at their max; no box starts or ends inside a window.
    boxes.sort_unstable_by_key(|b| b.min[d]);
    let mut next_box = 0;
    let mut active: Scratch = SmallVec::new();
    let mut sub: Scratch = SmallVec::new();
    // The previous slab: its end coordinate and where its boxes start in `out`.
    let mut prev: Option<(usize, usize)> = None;
    for w in cuts.windows(2) {
        let (a, b) = (w[0], w[1]);
        active.retain(|x| x.max[d] > a);
        while next_box < boxes.len() && boxes[next_box].min[d] <= a {
            active.push(boxes[next_box]);
            next_box += 1;
        }
        if active.is_empty() {
            prev = None;
            continue;
        }
        sub.clear();
        sub.extend_from_slice(&active);
        let start = out.len();
        normalize_dim(&mut sub, d + 1, out);
        if let Some((prev_end, prev_start)) = prev {
            let same = prev_end == a
                && start - prev_start == out.len() - start
                && (0..start - prev_start).all(|i| same_above(&out[prev_start + i], &out[start + i], d));
            if same {
                out.truncate(start);
                for x in &mut out[prev_start..] {
                    x.max[d] = b;
                }
                prev = Some((b, prev_start));
                continue;
            }
        }
        for x in &mut out[start..] {
            x.min[d] = a;
            x.max[d] = b;
        }
        prev = Some((b, start));
    }
}

/// Above this many boxes in a region, the region maps and reader logs look its boxes up through
/// [`for_each_meeting`] instead of testing each: a custom mapper of scattered cells gives regions of thousands of
/// boxes, and testing every box against every entry grew with the square of that.
pub(crate) const INDEXED_BOXES: usize = 8;

/// Above this many box pairs, region operations look boxes up through [`for_each_meeting`] instead of testing every
/// pair: the search costs a few comparisons more per box, the pairs grow with the square of the box count.
const INDEXED_PAIRS: usize = 64;

/// Whether two box counts are many enough for the indexed paths ([`INDEXED_PAIRS`]).
#[inline]
pub(super) fn many_pairs(a: usize, b: usize) -> bool {
    a.saturating_mul(b) > INDEXED_PAIRS
}

/// Calls `f` with every box of `boxes` that intersects `q`, in order, until `f` returns true (then returns true).
///
/// `boxes` must be in *slab order*, which a region's canonical boxes are (and any subsequence of them, each box cut
/// to one common box): along dimension 0, runs of consecutive boxes share one interval, the runs' intervals are
/// disjoint and ascending, and within each run the same holds along the next dimension. The search is then a binary
/// search per dimension: `O(log n)` plus the runs it meets, where testing every box costs `O(n)`.
pub(crate) fn for_each_meeting(boxes: &[GridBox], q: &GridBox, f: &mut dyn FnMut(&GridBox) -> bool) -> bool {
    for_each_meeting_at(boxes, q, &mut |i| f(&boxes[i]))
}

/// [`for_each_meeting`], calling `f` with the boxes' indices.
pub(crate) fn for_each_meeting_at(boxes: &[GridBox], q: &GridBox, f: &mut dyn FnMut(usize) -> bool) -> bool {
    if q.is_empty() {
        return false;
    }
    meeting_in(boxes, 0, 0, q, f)
}

/// [`for_each_meeting_at`] within one run of dimensions `..d`, which starts at index `base`.
fn meeting_in(boxes: &[GridBox], base: usize, d: usize, q: &GridBox, f: &mut dyn FnMut(usize) -> bool) -> bool {
    // The runs' intervals along `d` are disjoint and ascending, so their ends ascend too.
    let mut i = boxes.partition_point(|b| b.max[d] <= q.min[d]);
    while i < boxes.len() && boxes[i].min[d] < q.max[d] {
        if d == MAX_DIMS - 1 {
            debug_assert!(boxes[i].intersects(q));
            if f(base + i) {
                return true;
            }
            i += 1;
            continue;
        }
        let lo = boxes[i].min[d];
        // Runs of one box are the common case: probe the next box before searching for the run's end.
        let end = if i + 1 == boxes.len() || boxes[i + 1].min[d] != lo {
            i + 1
        } else {
            i + boxes[i..].partition_point(|b| b.min[d] <= lo)
        };
        if meeting_in(&boxes[i..end], base + i, d + 1, q, f) {
            return true;
        }
        i = end;
    }
    false
}

/// Calls `f` with disjoint boxes, in slab order, that together hold exactly the cells of `b` outside every box of
/// `cuts`, which must lie inside `b` and be in slab order (see [`for_each_meeting`]; a region's boxes, each cut to
/// `b`). One walk along the cuts' runs: `O(k)` for `k` cuts, where cutting the pieces box by box costs `O(k²)`.
pub(crate) fn complement_in(b: &GridBox, cuts: &[GridBox], f: &mut dyn FnMut(GridBox)) {
    if !b.is_empty() {
        complement_from(*b, cuts, 0, f);
    }
}

/// [`complement_in`] within one run of dimensions `..d`, which `b` and every cut share.
fn complement_from(b: GridBox, cuts: &[GridBox], d: usize, f: &mut dyn FnMut(GridBox)) {
    if cuts.is_empty() {
        f(b);
        return;
    }
    if d == MAX_DIMS {
        return; // a cut sharing every dimension with `b` covers it
    }
    let mut pos = b.min[d];
    let mut i = 0;
    while i < cuts.len() {
        let (lo, hi) = (cuts[i].min[d], cuts[i].max[d]);
        let mut end = i + 1;
        while end < cuts.len() && cuts[end].min[d] == lo {
            end += 1;
        }
        if pos < lo {
            let mut gap = b;
            gap.min[d] = pos;
            gap.max[d] = lo;
            f(gap);
        }
        let mut slab = b;
        slab.min[d] = lo;
        slab.max[d] = hi;
        complement_from(slab, &cuts[i..end], d + 1, f);
        pos = hi;
        i = end;
    }
    if pos < b.max[d] {
        let mut rest = b;
        rest.min[d] = pos;
        f(rest);
    }
}

/// Whether `boxes` are in the slab order [`for_each_meeting`] needs (for assertions and tests).
#[cfg(test)]
pub(crate) fn in_slab_order(boxes: &[GridBox]) -> bool {
    fn run_ok(boxes: &[GridBox], d: usize) -> bool {
        if d == MAX_DIMS {
            return boxes.len() <= 1;
        }
        let mut i = 0;
        let mut prev_end = 0;
        while i < boxes.len() {
            let (lo, hi) = (boxes[i].min[d], boxes[i].max[d]);
            if i > 0 && lo < prev_end {
                return false;
            }
            let mut end = i + 1;
            while end < boxes.len() && boxes[end].min[d] == lo {
                if boxes[end].max[d] != hi {
                    return false;
                }
                end += 1;
            }
            if !run_ok(&boxes[i..end], d + 1) {
                return false;
            }
            prev_end = hi;
            i = end;
        }
        true
    }
    boxes.iter().all(|b| !b.is_empty()) && run_ok(boxes, 0)
}

/// Whether two boxes span the same interval along dimension `d`.
#[inline]
pub(super) fn same_in(a: &GridBox, b: &GridBox, d: usize) -> bool {
    a.min[d] == b.min[d] && a.max[d] == b.max[d]
}

/// Whether two boxes agree in every dimension above `d`.
#[inline]
fn same_above(x: &GridBox, y: &GridBox, d: usize) -> bool {
    (d + 1..MAX_DIMS).all(|e| x.min[e] == y.min[e] && x.max[e] == y.max[e])
}
