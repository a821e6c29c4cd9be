//! The interior of a chunk: the part a kernel can run before data it awaits from other nodes arrives
//! (`CELER_OVERLAP`; the runtime loop runs it early and the rest of the chunk, its border, later).
//!
//! The interior is found from the accessors' range mappers: how far each mapped region reaches past the chunk on each
//! side says which slabs of the chunk can touch an awaited box; cutting those slabs off, face by face, leaves a box.
//! The result is then checked against the mappers themselves, so a mapper of another shape only loses the overlap,
//! never correctness.

use celer_graph::{BufferId, GridBox, RangeMapper, Region};

/// One accessor of a task, with what its range mapper needs to know of the buffer.
#[derive(Clone, Copy, Debug)]
pub struct Accessor<'a> {
    /// The accessed buffer.
    pub buffer: BufferId,
    /// Its range mapper.
    pub mapper: &'a RangeMapper,
    /// The buffer's dimensionality.
    pub dims: usize,
    /// The buffer's extent.
    pub extent: GridBox,
}

impl Accessor<'_> {
    fn apply(&self, chunk: &GridBox, space: &GridBox, task_dims: usize) -> Option<Region> {
        self.mapper.apply(chunk, space, task_dims, &self.extent, self.dims).ok()
    }
}

/// The largest box of `chunk` (of the `task_dims`-dimensional index space `space`) whose accesses touch no cell of the
/// `awaited` regions, found by cutting slabs off the chunk's faces; `None` if that leaves nothing, leaves the chunk
/// whole, or the accesses are of a shape this does not see through (a buffer of other dimensionality, a slab that
/// does not span the chunk).
pub fn interior(
    chunk: &GridBox,
    space: &GridBox,
    task_dims: usize,
    accessors: &[Accessor<'_>],
    awaited: &[(BufferId, &Region)],
) -> Option<GridBox> {
    let dims = task_dims.max(1);
    let mut interior = *chunk;
    for a in accessors {
        let waits: Vec<&GridBox> =
            awaited.iter().filter(|(b, _)| *b == a.buffer).flat_map(|(_, r)| r.boxes()).collect();
        if waits.is_empty() {
            continue;
        }
        if a.dims != dims {
            return None;
        }
        let mapped = a.apply(chunk, space, task_dims)?.bounding_box();
        let (cmin, cmax, mmin, mmax) = (chunk.min(), chunk.max(), mapped.min(), mapped.max());
        for w in waits {
            // The chunk cells whose accesses can reach `w`: `w` grown by the reach on the opposite side.
            let (mut lo, mut hi) = (w.min(), w.max());
            for d in 0..dims {
                lo[d] = lo[d].saturating_sub(mmax[d].saturating_sub(cmax[d]));
                hi[d] = hi[d].saturating_add(cmin[d].saturating_sub(mmin[d]));
            }
            let slab = GridBox::new(lo, hi).intersection(&interior);
            if slab.is_empty() {
                continue;
            }
            // It must span the interior in every dimension but one, and touch one of its faces there.
            let (smin, smax, imin, imax) = (slab.min(), slab.max(), interior.min(), interior.max());
            let partial: Vec<usize> = (0..dims).filter(|&d| smin[d] > imin[d] || smax[d] < imax[d]).collect();
            let [d] = partial[..] else { return None };
            let (mut new_min, mut new_max) = (imin, imax);
            if smin[d] == imin[d] {
                new_min[d] = smax[d];
            } else if smax[d] == imax[d] {
                new_max[d] = smin[d];
            } else {
                return None;
            }
            interior = GridBox::new(new_min, new_max);
            if interior.is_empty() {
                return None;
            }
        }
    }
    if interior == *chunk {
        return None;
    }
    // The check that makes the guess safe: no accessor of the interior touches an awaited cell.
    for a in accessors {
        let region = a.apply(&interior, space, task_dims)?;
        if awaited.iter().any(|(b, r)| *b == a.buffer && r.intersects(&region)) {
            return None;
        }
    }
    Some(interior)
}

#[cfg(test)]
mod tests {
    use super::*;
    use celer_graph::NeighborhoodShape;

    const SRC: BufferId = BufferId(0);
    const DST: BufferId = BufferId(1);

    fn nb(extent: [usize; 3]) -> RangeMapper {
        RangeMapper::Neighborhood { extent, shape: NeighborhoodShape::AlongAxes }
    }

    fn acc(buffer: BufferId, mapper: &RangeMapper, extent: GridBox, dims: usize) -> Accessor<'_> {
        Accessor { buffer, mapper, dims, extent }
    }

    #[test]
    fn a_1d_stencil_with_halos_on_both_sides_keeps_the_middle() {
        let extent = GridBox::d1(0, 100);
        let (halo, one) = (nb([1, 0, 0]), RangeMapper::OneToOne);
        let accessors = [acc(SRC, &halo, extent, 1), acc(DST, &one, extent, 1)];
        let awaited = Region::from_boxes([GridBox::d1(24, 25), GridBox::d1(50, 51)]);
        let got = interior(&GridBox::d1(25, 50), &GridBox::d1(25, 50), 1, &accessors, &[(SRC, &awaited)]);
        assert_eq!(got, Some(GridBox::d1(26, 49)));
    }

    #[test]
    fn a_2d_split_cuts_the_row_and_the_column_next_to_the_halos() {
        let extent = GridBox::d2([0, 0], [64, 64]);
        let (halo, one) = (nb([1, 1, 0]), RangeMapper::OneToOne);
        let accessors = [acc(SRC, &halo, extent, 2), acc(DST, &one, extent, 2)];
        // The chunk [0,32)x[0,32) awaits the row below it and the column right of it.
        let awaited = Region::from_boxes([GridBox::d2([32, 0], [33, 32]), GridBox::d2([0, 32], [32, 33])]);
        let got =
            interior(&GridBox::d2([0, 0], [32, 32]), &GridBox::d2([0, 0], [32, 32]), 2, &accessors, &[(SRC, &awaited)]);
        assert_eq!(got, Some(GridBox::d2([0, 0], [31, 31])));
    }

    #[test]
    fn a_buffer_nothing_awaits_does_not_limit_the_interior_however_much_is_read() {
        // The chunk reads all of DST, which nobody sends it, and SRC with a halo, whose neighbours it awaits.
        let extent = GridBox::d1(0, 100);
        let (halo, all) = (nb([1, 0, 0]), RangeMapper::All);
        let accessors = [acc(DST, &all, extent, 1), acc(SRC, &halo, extent, 1)];
        let awaited = Region::from_boxes([GridBox::d1(24, 25), GridBox::d1(50, 51)]);
        let got = interior(&GridBox::d1(25, 50), &GridBox::d1(25, 50), 1, &accessors, &[(SRC, &awaited)]);
        assert_eq!(got, Some(GridBox::d1(26, 49)));
        // Awaiting DST too: its whole-buffer read reaches the awaited cells from anywhere.
        let got =
            interior(&GridBox::d1(25, 50), &GridBox::d1(25, 50), 1, &accessors, &[(SRC, &awaited), (DST, &awaited)]);
        assert_eq!(got, None);
    }

    #[test]
    fn accesses_that_reach_everywhere_leave_no_interior() {
        let extent = GridBox::d1(0, 100);
        let all = RangeMapper::All;
        let awaited = Region::from(GridBox::d1(50, 100));
        let got =
            interior(&GridBox::d1(0, 50), &GridBox::d1(0, 50), 1, &[acc(SRC, &all, extent, 1)], &[(SRC, &awaited)]);
        assert_eq!(got, None);
    }

    #[test]
    fn a_chunk_that_awaits_nothing_it_touches_stays_whole() {
        let extent = GridBox::d1(0, 100);
        let one = RangeMapper::OneToOne;
        let awaited = Region::from(GridBox::d1(60, 70));
        assert_eq!(
            interior(&GridBox::d1(0, 50), &GridBox::d1(0, 50), 1, &[acc(SRC, &one, extent, 1)], &[(SRC, &awaited)]),
            None
        );
    }

    #[test]
    fn a_halo_wider_than_the_chunk_leaves_nothing() {
        let extent = GridBox::d1(0, 100);
        let halo = nb([3, 0, 0]);
        let awaited = Region::from_boxes([GridBox::d1(7, 10), GridBox::d1(14, 17)]);
        let got =
            interior(&GridBox::d1(10, 14), &GridBox::d1(10, 14), 1, &[acc(SRC, &halo, extent, 1)], &[(SRC, &awaited)]);
        assert_eq!(got, None);
    }

    #[test]
    fn every_interior_found_is_checked_against_the_mappers() {
        // Random 1D chunks, halo widths and awaited boxes: whatever `interior` returns lies in the chunk and its
        // accesses touch no awaited cell.
        let extent = GridBox::d1(0, 64);
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = |n: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % n) as usize
        };
        let mut found = 0;
        for _ in 0..2000 {
            let (a, b) = (next(64), next(64));
            let chunk = GridBox::d1(a.min(b), a.max(b) + 1);
            let halo = nb([next(4), 0, 0]);
            let (c, d) = (next(64), next(64));
            let awaited = Region::from(GridBox::d1(c.min(d), c.max(d) + 1));
            let accessors = [acc(SRC, &halo, extent, 1)];
            if let Some(i) = interior(&chunk, &chunk, 1, &accessors, &[(SRC, &awaited)]) {
                found += 1;
                assert!(chunk.contains(&i) && !i.is_empty() && i != chunk, "{i} in {chunk}");
                let touched = halo.apply(&i, &chunk, 1, &extent, 1).unwrap();
                assert!(!touched.intersects(&awaited), "{i} of {chunk} touches {awaited:?}");
            }
        }
        assert!(found > 100, "only {found} interiors found");
    }
}
