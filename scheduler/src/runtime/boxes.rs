//! Boxes between the command graph and the backends: the graph's [`GridBox`] and the GPU and transfer engine's
//! [`Box3`] have the same layout (three dimensions, trailing ones `[0, 1)`); these convert one into the other.

use celer_exec::gpu::Box3;
use celer_graph::GridBox;

/// A graph box as the backends' box type (the same layout: trailing dimensions `[0, 1)`).
pub(super) fn box3(b: &GridBox) -> Box3 {
    Box3::new(b.min(), b.max())
}

/// A backend box as a graph box of a `dims`-dimensional buffer (trailing dimensions `[0, 1)`).
pub(super) fn grid_box(b: &Box3, dims: usize) -> GridBox {
    let (mut min, mut max) = (b.min(), b.max());
    for d in dims.max(1)..3 {
        min[d] = 0;
        max[d] = 1;
    }
    GridBox::new(min, max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_box_goes_to_the_backends_and_back_unchanged_and_trailing_dimensions_become_unit() {
        let b = GridBox::new([2, 3, 0], [7, 9, 1]);
        assert_eq!(box3(&b).min(), [2, 3, 0]);
        assert_eq!(box3(&b).max(), [7, 9, 1]);
        assert_eq!(grid_box(&box3(&b), 2), b);
        // A 1-dimensional buffer's box ignores whatever the backend box holds beyond its first dimension.
        let wide = Box3::new([4, 5, 6], [8, 9, 10]);
        assert_eq!(grid_box(&wide, 1), GridBox::new([4, 0, 0], [8, 1, 1]));
        assert_eq!(grid_box(&wide, 0), GridBox::new([4, 0, 0], [8, 1, 1]), "0 dimensions count as 1");
    }
}
