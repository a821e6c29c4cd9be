// A kernel over an index space with an offset (task::parallel_for(..).offset(..)). Used by tests/e2e_offset.
//
// interior_2d: one Jacobi step of Laplace's equation over the interior of a 2D grid, launched over the
// interior only (range [rows - 2, cols - 2] at offset [1, 1]): every item has all four neighbours, so the
// kernel has no boundary test; it relies on the offset for that. Bindings: 0 = src (read, neighbourhood 1
// along the axes), 1 = dst (write, one to one). Push constants: chunk, src's box, dst's box.

struct Params {
    chunk: CelerBox,
    src: CelerBox,
    dst: CelerBox,
}

@group(0) @binding(0) var<storage, read> src: array<f32>;
@group(0) @binding(1) var<storage, read_write> dst: array<f32>;
var<immediate> pc: Params;

@compute @workgroup_size(8, 8)
fn interior_2d(@builtin(global_invocation_id) gid: vec3<u32>) {
    let item = celer_item_2d(pc.chunk, gid);
    if (!celer_contains(pc.chunk, item)) {
        return;
    }
    let s = src[celer_index(pc.src, item - vec3<u32>(1u, 0u, 0u))] + src[celer_index(pc.src, item + vec3<u32>(1u, 0u, 0u))]
        + src[celer_index(pc.src, item - vec3<u32>(0u, 1u, 0u))] + src[celer_index(pc.src, item + vec3<u32>(0u, 1u, 0u))];
    dst[celer_index(pc.dst, item)] = 0.25 * s;
}
