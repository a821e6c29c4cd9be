// Deterministic sum, minimum and maximum of a 1D f32 buffer through the prelude's block reductions (no atomics):
// each workgroup reduces its 256 items in a fixed tree and stores the block's result; celer combines the blocks in a
// fixed tree, so the result has the same bits on any number of ranks and devices. Used by tests/e2e_block_reduce.
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

// This invocation's item, whether it lies in the chunk, and its value there.
fn load(gid: vec3<u32>) -> vec2<u32> {
    let item = celer_item_1d(pc.chunk, gid);
    if (!celer_contains(pc.chunk, item)) {
        return vec2<u32>(0u, 0u);
    }
    return vec2<u32>(1u, bitcast<u32>(data[celer_index(pc.data, item)]));
}

@compute @workgroup_size(256)
fn reduce_sum(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(local_invocation_index) lid: u32,
       @builtin(workgroup_id) wid: vec3<u32>) {
    let v = load(gid);
    let s = celer_reduce_sum_f32(bitcast<f32>(v.y), v.x == 1u, lid);
    if (lid == 0u) { out[celer_block_1d(pc.out, wid)] = s; }
}

@compute @workgroup_size(256)
fn reduce_min(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(local_invocation_index) lid: u32,
       @builtin(workgroup_id) wid: vec3<u32>) {
    let v = load(gid);
    let s = celer_reduce_min_f32(bitcast<f32>(v.y), v.x == 1u, lid);
    if (lid == 0u) { out[celer_block_1d(pc.out, wid)] = s; }
}

@compute @workgroup_size(256)
fn reduce_max(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(local_invocation_index) lid: u32,
       @builtin(workgroup_id) wid: vec3<u32>) {
    let v = load(gid);
    let s = celer_reduce_max_f32(bitcast<f32>(v.y), v.x == 1u, lid);
    if (lid == 0u) { out[celer_block_1d(pc.out, wid)] = s; }
}
