// Deterministic reductions of a 2D f32 buffer in blocks of 2 x 2 items (tests/e2e_diff: small fields still split
// into many blocks): the sum of 1.1 v (inexact, so its bits depend on the order of the additions), the minimum and
// the maximum.
//
// Bindings: 0 = data (read, one to one), 1 = out (the reduction: one cell per block).
// Push constants: chunk, data's box, out's box.

struct Params {
    chunk: CelerBox,
    data: CelerBox,
    out: CelerBox,
}

@group(0) @binding(0) var<storage, read> data: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
var<immediate> pc: Params;

// This invocation's value (0 outside the chunk, where `inside` is false).
fn load(gid: vec3<u32>) -> f32 {
    let item = celer_item_2d(pc.chunk, gid);
    if (!celer_contains(pc.chunk, item)) {
        return 0.0;
    }
    return data[celer_index(pc.data, item)];
}

fn inside(gid: vec3<u32>) -> bool {
    return celer_contains(pc.chunk, celer_item_2d(pc.chunk, gid));
}

@compute @workgroup_size(2, 2)
fn reduce_sum(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(local_invocation_index) lid: u32,
              @builtin(workgroup_id) wid: vec3<u32>) {
    let s = celer_reduce_sum_f32(1.1 * load(gid), inside(gid), lid);
    if (lid == 0u) { out[celer_block_2d(pc.out, wid)] = s; }
}

@compute @workgroup_size(2, 2)
fn reduce_min(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(local_invocation_index) lid: u32,
              @builtin(workgroup_id) wid: vec3<u32>) {
    let s = celer_reduce_min_f32(load(gid), inside(gid), lid);
    if (lid == 0u) { out[celer_block_2d(pc.out, wid)] = s; }
}

@compute @workgroup_size(2, 2)
fn reduce_max(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(local_invocation_index) lid: u32,
              @builtin(workgroup_id) wid: vec3<u32>) {
    let s = celer_reduce_max_f32(load(gid), inside(gid), lid);
    if (lid == 0u) { out[celer_block_2d(pc.out, wid)] = s; }
}
