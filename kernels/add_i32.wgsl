// data[i] += amount for every i of a 1D chunk, over i32 (wrapping): gpu_add for the i32 buffers of
// tests/e2e_diff.rs (celer refuses an i32 buffer through gpu_add's array<u32>).

struct Params {
    chunk: CelerBox,
    data: CelerBox,
    amount: i32,
}

@group(0) @binding(0) var<storage, read_write> data: array<i32>;
var<immediate> pc: Params;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let item = celer_item_1d(pc.chunk, gid);
    if (celer_contains(pc.chunk, item)) {
        let i = celer_index(pc.data, item);
        data[i] = data[i] + pc.amount;
    }
}
