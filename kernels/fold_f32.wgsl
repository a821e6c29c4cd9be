// Sum, minimum and maximum of a 1D f32 buffer into a one-element result, without atomics (WGSL has no float atomics):
// the chunk's first invocation folds the chunk's items, in order, into the value out[0] holds when the kernel starts
// (the identity, or on rank 0 of a reduction that includes the buffer's current value, that value). The kernel of
// tests/e2e_accumulate.rs.
//
// Bindings: 0 = data (read, one to one), 1 = out (the reduction buffer).
// Push constants: chunk, data's box, out's box.

struct Params {
    chunk: CelerBox,
    data: CelerBox,
    out: CelerBox,
}

@group(0) @binding(0) var<storage, read> data: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
var<immediate> pc: Params;

// The chunk's i-th value.
fn value(i: u32) -> f32 {
    return data[celer_index(pc.data, celer_item_1d(pc.chunk, vec3<u32>(i, 0u, 0u)))];
}

@compute @workgroup_size(64)
fn fold_sum(@builtin(global_invocation_id) gid: vec3<u32>) {
    if (gid.x != 0u) {
        return;
    }
    var acc = out[0];
    for (var i = 0u; i < pc.chunk.range0; i++) {
        acc = acc + value(i);
    }
    out[0] = acc;
}

@compute @workgroup_size(64)
fn fold_min(@builtin(global_invocation_id) gid: vec3<u32>) {
    if (gid.x != 0u) {
        return;
    }
    var acc = out[0];
    for (var i = 0u; i < pc.chunk.range0; i++) {
        acc = min(acc, value(i));
    }
    out[0] = acc;
}

@compute @workgroup_size(64)
fn fold_max(@builtin(global_invocation_id) gid: vec3<u32>) {
    if (gid.x != 0u) {
        return;
    }
    var acc = out[0];
    for (var i = 0u; i < pc.chunk.range0; i++) {
        acc = max(acc, value(i));
    }
    out[0] = acc;
}
