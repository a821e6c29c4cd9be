// Block sums through the prelude's block reductions, for the tests of launches split because they need more
// workgroups than the device launches at once (exec/tests/gpu.rs): each workgroup sums a value of each of its
// items (u32, wrapping) and writes it to its block cell.
//
// Bindings: 0 = out (one cell per workgroup, bound with Access::blocks).
// Push constants: chunk, out's box.

struct Params {
    chunk: CelerBox,
    out: CelerBox,
}

@group(0) @binding(0) var<storage, read_write> out: array<u32>;
var<immediate> pc: Params;

// 1D: the sum of the items' coordinates.
@compute @workgroup_size(64)
fn sum_1d(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(local_invocation_index) lid: u32,
          @builtin(workgroup_id) wid: vec3<u32>) {
    let item = celer_item_1d(pc.chunk, gid);
    let s = celer_reduce_sum_u32(item.x, celer_contains(pc.chunk, item), lid);
    if (lid == 0u) { out[celer_block_1d(pc.out, wid)] = s; }
}

// 2D: the sum of 65536 * item.x + item.y (dimension 0 in the high half).
@compute @workgroup_size(4, 4)
fn sum_2d(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(local_invocation_index) lid: u32,
          @builtin(workgroup_id) wid: vec3<u32>) {
    let item = celer_item_2d(pc.chunk, gid);
    let s = celer_reduce_sum_u32(item.x * 65536u + item.y, celer_contains(pc.chunk, item), lid);
    if (lid == 0u) { out[celer_block_2d(pc.out, wid)] = s; }
}
