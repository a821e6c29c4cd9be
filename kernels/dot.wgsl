// The deterministic dot product of two 1D f32 buffers through the prelude's block reduction (examples/cg.rs for
// the first residual, examples/dot.rs for the benchmark).
//
// Bindings: 0 = a, 1 = b (read, one to one), 2 = out (the reduction). Push constants: chunk and the three boxes.

struct Params {
    chunk: CelerBox,
    a: CelerBox,
    b: CelerBox,
    out: CelerBox,
}

@group(0) @binding(0) var<storage, read> a: array<f32>;
@group(0) @binding(1) var<storage, read> b: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
var<immediate> pc: Params;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(local_invocation_index) lid: u32,
        @builtin(workgroup_id) wid: vec3<u32>) {
    let item = celer_item_1d(pc.chunk, gid);
    let inside = celer_contains(pc.chunk, item);
    var v = 0.0;
    if (inside) {
        v = a[celer_index(pc.a, item)] * b[celer_index(pc.b, item)];
    }
    let s = celer_reduce_sum_f32(v, inside, lid);
    if (lid == 0u) {
        out[celer_block_1d(pc.out, wid)] = s;
    }
}
