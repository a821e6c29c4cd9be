// out[i] = i * i for every cell of a 1D chunk, in buffer (global) coordinates: celer's smallest kernel
// (examples/hello.rs). Bindings: 0 = out (write, one to one). Push constants: chunk, out's box.

struct Params {
    chunk: CelerBox,
    out: CelerBox,
}

@group(0) @binding(0) var<storage, read_write> out: array<u32>;
var<immediate> pc: Params;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let item = celer_item_1d(pc.chunk, gid);
    if (celer_contains(pc.chunk, item)) {
        out[celer_index(pc.out, item)] = item.x * item.x;
    }
}
