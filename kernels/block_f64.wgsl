// Deterministic sum, minimum and maximum of a 1D f64 buffer through the prelude's f64 block reductions (no
// atomics), as block_f32.wgsl does for f32: the build appends the prelude's f64 part to this file only, and records
// that it needs the device feature shaderFloat64. Used by tests/e2e_determinism.
//
// Bindings: 0 = data (read, one to one), 1 = out (the reduction: one cell per block).
// Push constants: chunk, data's box, out's box.

struct Params {
    chunk: CelerBox,
    data: CelerBox,
    out: CelerBox,
}

@group(0) @binding(0) var<storage, read> data: array<f64>;
@group(0) @binding(1) var<storage, read_write> out: array<f64>;
var<immediate> pc: Params;

// Whether this invocation's item lies in the chunk (the last workgroup rounds the chunk up).
fn valid(gid: vec3<u32>) -> bool {
    return celer_contains(pc.chunk, celer_item_1d(pc.chunk, gid));
}

// This invocation's value (0 outside the chunk).
fn load(gid: vec3<u32>) -> f64 {
    let item = celer_item_1d(pc.chunk, gid);
    if (!celer_contains(pc.chunk, item)) {
        return f64(0.0);
    }
    return data[celer_index(pc.data, item)];
}

@compute @workgroup_size(256)
fn reduce_sum(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(local_invocation_index) lid: u32,
       @builtin(workgroup_id) wid: vec3<u32>) {
    let s = celer_reduce_sum_f64(load(gid), valid(gid), lid);
    if (lid == 0u) { out[celer_block_1d(pc.out, wid)] = s; }
}

@compute @workgroup_size(256)
fn reduce_min(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(local_invocation_index) lid: u32,
       @builtin(workgroup_id) wid: vec3<u32>) {
    let s = celer_reduce_min_f64(load(gid), valid(gid), lid);
    if (lid == 0u) { out[celer_block_1d(pc.out, wid)] = s; }
}

@compute @workgroup_size(256)
fn reduce_max(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(local_invocation_index) lid: u32,
       @builtin(workgroup_id) wid: vec3<u32>) {
    let s = celer_reduce_max_f64(load(gid), valid(gid), lid);
    if (lid == 0u) { out[celer_block_1d(pc.out, wid)] = s; }
}
