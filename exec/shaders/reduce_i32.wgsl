// Sum, minimum and maximum of a 1D i32 buffer into a one-element result, in buffer (global) coordinates: each item
// combines its value into out[0] with an atomic. Used by celer's end-to-end reduction tests.
//
// Bindings: 0 = data (read, one to one), 1 = out (the reduction buffer; it holds the operation's identity, or the
// value to fold in, when the kernel starts).
// Push constants: chunk, data's box, out's box.

struct Params {
    chunk: CelerBox,
    data: CelerBox,
    out: CelerBox,
}

@group(0) @binding(0) var<storage, read> data: array<i32>;
@group(0) @binding(1) var<storage, read_write> out: array<atomic<i32>>;
var<immediate> pc: Params;

fn value(gid: vec3<u32>) -> vec2<i32> {
    let item = celer_item_1d(pc.chunk, gid);
    if (!celer_contains(pc.chunk, item)) {
        return vec2<i32>(0, 0);
    }
    return vec2<i32>(1, data[celer_index(pc.data, item)]);
}

@compute @workgroup_size(64)
fn reduce_sum(@builtin(global_invocation_id) gid: vec3<u32>) {
    let v = value(gid);
    if (v.x == 1) {
        atomicAdd(&out[0], v.y);
    }
}

@compute @workgroup_size(64)
fn reduce_min(@builtin(global_invocation_id) gid: vec3<u32>) {
    let v = value(gid);
    if (v.x == 1) {
        atomicMin(&out[0], v.y);
    }
}

@compute @workgroup_size(64)
fn reduce_max(@builtin(global_invocation_id) gid: vec3<u32>) {
    let v = value(gid);
    if (v.x == 1) {
        atomicMax(&out[0], v.y);
    }
}
