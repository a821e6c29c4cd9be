// dst[i, j] = src[i, j] over a 2D chunk, in buffer (global) coordinates: the memory-bandwidth ceiling of a card
// (examples/gpu_efficiency.rs). Reads 4 bytes and writes 4 bytes per cell.
//
// Bindings: 0 = src (read, one to one), 1 = dst (write, one to one).
// Push constants: chunk, src's box, dst's box.

struct Params {
    chunk: CelerBox,
    src: CelerBox,
    dst: CelerBox,
}

@group(0) @binding(0) var<storage, read> src: array<f32>;
@group(0) @binding(1) var<storage, read_write> dst: array<f32>;
var<immediate> pc: Params;

@compute @workgroup_size(64, 4)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let item = celer_item_2d(pc.chunk, gid);
    if (celer_contains(pc.chunk, item)) {
        dst[celer_index(pc.dst, item)] = src[celer_index(pc.src, item)];
    }
}
