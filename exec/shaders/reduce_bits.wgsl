// Bitwise OR and AND of a 1D u32 buffer into a one-element result, in buffer (global) coordinates: each item
// combines its value into out[0] with an atomic. The kernels of user-defined reductions in celer's tests and guide
// (`TaskBuilder::reduce_with(&buffer, 0, |a, b| a | b)` for `reduce_or`; identity !0 and `&` for `reduce_and`).
//
// Bindings: 0 = data (read, one to one), 1 = out (the reduction buffer; it holds the identity when the kernel starts).
// Push constants: chunk, data's box, out's box.

struct Params {
    chunk: CelerBox,
    data: CelerBox,
    out: CelerBox,
}

@group(0) @binding(0) var<storage, read> data: array<u32>;
@group(0) @binding(1) var<storage, read_write> out: array<atomic<u32>>;
var<immediate> pc: Params;

@compute @workgroup_size(64)
fn reduce_or(@builtin(global_invocation_id) gid: vec3<u32>) {
    let item = celer_item_1d(pc.chunk, gid);
    if (celer_contains(pc.chunk, item)) {
        atomicOr(&out[0], data[celer_index(pc.data, item)]);
    }
}

@compute @workgroup_size(64)
fn reduce_and(@builtin(global_invocation_id) gid: vec3<u32>) {
    let item = celer_item_1d(pc.chunk, gid);
    if (celer_contains(pc.chunk, item)) {
        atomicAnd(&out[0], data[celer_index(pc.data, item)]);
    }
}
