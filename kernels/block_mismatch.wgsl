// Block reductions that do not fit a task's reduction, for tests/kernel_checks.rs: the build's reflection ties each
// prelude call to the binding its result is stored to, and submit refuses a task whose reduction there has another
// operation or type.
//
// Bindings: 0 = data (read, one to one), 1 = out (the reduction: one cell per block, i32).
// Push constants: chunk, data's box, out's box.

struct Params {
    chunk: CelerBox,
    data: CelerBox,
    out: CelerBox,
}

@group(0) @binding(0) var<storage, read> data: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<i32>;
var<immediate> pc: Params;

// The block's f32 maximum, through a helper and a local variable (what the reflection follows).
fn block_max(gid: vec3<u32>, lid: u32) -> f32 {
    let item = celer_item_1d(pc.chunk, gid);
    let ok = celer_contains(pc.chunk, item);
    var v = 0.0;
    if (ok) { v = data[celer_index(pc.data, item)]; }
    return celer_reduce_max_f32(v, ok, lid);
}

// An f32 sum stored, converted, into an i32 binding.
@compute @workgroup_size(64)
fn sum_f32_into_i32(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(local_invocation_index) lid: u32,
       @builtin(workgroup_id) wid: vec3<u32>) {
    let item = celer_item_1d(pc.chunk, gid);
    let ok = celer_contains(pc.chunk, item);
    var v = 0.0;
    if (ok) { v = data[celer_index(pc.data, item)]; }
    let s = celer_reduce_sum_f32(v, ok, lid);
    if (lid == 0u) { out[celer_block_1d(pc.out, wid)] = i32(s); }
}

// An i32 maximum, computed from the f32 one through a helper and a local variable.
@compute @workgroup_size(64)
fn max_i32(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(local_invocation_index) lid: u32,
       @builtin(workgroup_id) wid: vec3<u32>) {
    var m = 0;
    m = celer_reduce_max_i32(i32(block_max(gid, lid)), true, lid);
    if (lid == 0u) { out[celer_block_1d(pc.out, wid)] = m; }
}
