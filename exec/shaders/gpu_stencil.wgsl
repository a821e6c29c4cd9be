// A 2D three-point stencil along dimension 1, written in buffer (global) coordinates, for the
// tests of celer_exec::gpu:
//   dst[i, j] = src[i, j - 1] + 2 src[i, j] + src[i, j + 1] + scale * i   (missing neighbours: 0)
// `src` may be any allocation that holds the chunk; neighbours outside its box count as 0.
//
// Bindings: set 0, binding 0 = src (read), binding 1 = dst (write).
// Push constants: chunk, src's box, dst's box (prelude.wgsl's CelerBox), then scale.

struct Params {
    chunk: CelerBox,
    src: CelerBox,
    dst: CelerBox,
    scale: f32,
}

@group(0) @binding(0) var<storage, read> src: array<f32>;
@group(0) @binding(1) var<storage, read_write> dst: array<f32>;
var<immediate> pc: Params;

fn load(item: vec3<u32>) -> f32 {
    if (celer_contains(pc.src, item)) {
        return src[celer_index(pc.src, item)];
    }
    return 0.0;
}

@compute @workgroup_size(8, 8)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let item = celer_item_2d(pc.chunk, gid);
    if (!celer_contains(pc.chunk, item)) {
        return;
    }
    // item.y - 1 wraps at 0, which celer_contains rejects.
    let left = load(item - vec3<u32>(0u, 1u, 0u));
    let right = load(item + vec3<u32>(0u, 1u, 0u));
    dst[celer_index(pc.dst, item)] = left + 2.0 * load(item) + right + pc.scale * f32(item.x);
}
