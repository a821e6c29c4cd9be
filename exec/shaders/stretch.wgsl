// Contrast stretch of an i32 image, in buffer (global) coordinates: out = (v - lo) * 255 / (hi - lo), where lo and
// hi are one-element buffers (results of min and max reductions). Used by examples/reduction.rs.
// Bindings: 0 = image (read, one to one), 1 = lo (read, all), 2 = hi (read, all), 3 = out (write, one to one).
// Push constants: chunk and the four boxes.

struct Params {
    chunk: CelerBox,
    image: CelerBox,
    lo: CelerBox,
    hi: CelerBox,
    out: CelerBox,
}

@group(0) @binding(0) var<storage, read> image: array<i32>;
@group(0) @binding(1) var<storage, read> lo: array<i32>;
@group(0) @binding(2) var<storage, read> hi: array<i32>;
@group(0) @binding(3) var<storage, read_write> out: array<i32>;
var<immediate> pc: Params;

@compute @workgroup_size(8, 8)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let item = celer_item_2d(pc.chunk, gid);
    if (!celer_contains(pc.chunk, item)) {
        return;
    }
    let span = max(hi[0] - lo[0], 1);
    out[celer_index(pc.out, item)] = (image[celer_index(pc.image, item)] - lo[0]) * 255 / span;
}
