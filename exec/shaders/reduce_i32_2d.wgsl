// Minimum and maximum of a 2D i32 buffer into a one-element result, in buffer (global) coordinates (atomics).
// Bindings: 0 = data (read, one to one), 1 = out (the reduction buffer). Push constants: chunk, data's box, out's box.

struct Params {
    chunk: CelerBox,
    data: CelerBox,
    out: CelerBox,
}

@group(0) @binding(0) var<storage, read> data: array<i32>;
@group(0) @binding(1) var<storage, read_write> out: array<atomic<i32>>;
var<immediate> pc: Params;

@compute @workgroup_size(8, 8)
fn reduce_min(@builtin(global_invocation_id) gid: vec3<u32>) {
    let item = celer_item_2d(pc.chunk, gid);
    if (celer_contains(pc.chunk, item)) {
        atomicMin(&out[0], data[celer_index(pc.data, item)]);
    }
}

@compute @workgroup_size(8, 8)
fn reduce_max(@builtin(global_invocation_id) gid: vec3<u32>) {
    let item = celer_item_2d(pc.chunk, gid);
    if (celer_contains(pc.chunk, item)) {
        atomicMax(&out[0], data[celer_index(pc.data, item)]);
    }
}
