// One explicit heat-equation step on a 2D grid (5-point stencil), in buffer (global) coordinates:
//   dst[i, j] = src[i, j] + alpha * (sum of the four axis neighbours - 4 src[i, j])
// A missing neighbour counts as src[i, j]. Used by celer's end-to-end tests and examples.
//
// Bindings: 0 = src (read, neighbourhood 1 along axes), 1 = dst (write, one to one).
// Push constants: chunk, src's box, dst's box, then alpha (f32).

struct Params {
    chunk: CelerBox,
    src: CelerBox,
    dst: CelerBox,
    alpha: f32,
}

@group(0) @binding(0) var<storage, read> src: array<f32>;
@group(0) @binding(1) var<storage, read_write> dst: array<f32>;
var<immediate> pc: Params;

fn at(item: vec3<u32>, fallback: f32) -> f32 {
    if (celer_contains(pc.src, item)) {
        return src[celer_index(pc.src, item)];
    }
    return fallback;
}

@compute @workgroup_size(8, 8)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let item = celer_item_2d(pc.chunk, gid);
    if (!celer_contains(pc.chunk, item)) {
        return;
    }
    let c = at(item, 0.0);
    let n = at(item - vec3<u32>(1u, 0u, 0u), c) + at(item + vec3<u32>(1u, 0u, 0u), c)
        + at(item - vec3<u32>(0u, 1u, 0u), c) + at(item + vec3<u32>(0u, 1u, 0u), c);
    dst[celer_index(pc.dst, item)] = c + pc.alpha * (n - 4.0 * c);
}
