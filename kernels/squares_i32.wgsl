// out[i] = i * i (wrapping) for every cell of a 1D chunk, over i32: squares for the i32 buffers of
// tests/e2e_diff.rs.

struct Params {
    chunk: CelerBox,
    out: CelerBox,
}

@group(0) @binding(0) var<storage, read_write> out: array<i32>;
var<immediate> pc: Params;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let item = celer_item_1d(pc.chunk, gid);
    if (celer_contains(pc.chunk, item)) {
        out[celer_index(pc.out, item)] = i32(item.x * item.x);
    }
}
