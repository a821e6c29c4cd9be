// One Jacobi step of a 3D 7-point stencil over the interior of a grid (tests/e2e_hpc.rs): the task's index space
// is the interior (offset [1, 1, 1]), so every neighbour exists; the boundary is fixed (never written).
//   dst[c] = (src[c] + w * (the sum of c's six axis neighbours)) / (1 + 6 w)
//
// Bindings: 0 = src (read, neighborhood_along_axes [1, 1, 1]), 1 = dst (discard_write, one to one).
// Push constants: chunk, src's and dst's boxes, w.

struct Params {
    chunk: CelerBox,
    src: CelerBox,
    dst: CelerBox,
    w: f32,
}

@group(0) @binding(0) var<storage, read> src: array<f32>;
@group(0) @binding(1) var<storage, read_write> dst: array<f32>;
var<immediate> pc: Params;

fn at(c: vec3<u32>) -> f32 {
    return src[celer_index(pc.src, c)];
}

@compute @workgroup_size(4, 4, 4)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let c = celer_item_3d(pc.chunk, gid);
    if (!celer_contains(pc.chunk, c)) {
        return;
    }
    let x = vec3<u32>(1u, 0u, 0u);
    let y = vec3<u32>(0u, 1u, 0u);
    let z = vec3<u32>(0u, 0u, 1u);
    let n = ((at(c - x) + at(c + x)) + (at(c - y) + at(c + y))) + (at(c - z) + at(c + z));
    dst[celer_index(pc.dst, c)] = (at(c) + pc.w * n) / (1.0 + 6.0 * pc.w);
}
