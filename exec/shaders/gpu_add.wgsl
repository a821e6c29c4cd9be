// data[i] += amount for every i of a 1D chunk, in buffer (global) coordinates: the tiny kernel of
// celer_exec::gpu's tests and of exec/examples/dispatch_cost.rs.
//
// Bindings: set 0, binding 0 = data (read-write).
// Push constants: chunk, data's box (prelude.wgsl's CelerBox), then amount (u32).

struct Params {
    chunk: CelerBox,
    data: CelerBox,
    amount: u32,
}

@group(0) @binding(0) var<storage, read_write> data: array<u32>;
var<immediate> pc: Params;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let item = celer_item_1d(pc.chunk, gid);
    if (celer_contains(pc.chunk, item)) {
        let i = celer_index(pc.data, item);
        data[i] = data[i] + pc.amount;
    }
}
