// Deterministic sum of a 2D f32 buffer through the prelude's block reductions: each 16 x 8 workgroup (8 rows of 16
// columns) is one block of the index space. Used by tests/e2e_block_reduce.
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

@compute @workgroup_size(16, 8)
fn reduce_sum(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(local_invocation_index) lid: u32,
       @builtin(workgroup_id) wid: vec3<u32>) {
    let item = celer_item_2d(pc.chunk, gid);
    let inside = celer_contains(pc.chunk, item);
    var v = 0.0;
    if (inside) {
        v = data[celer_index(pc.data, item)];
    }
    let s = celer_reduce_sum_f32(v, inside, lid);
    if (lid == 0u) { out[celer_block_2d(pc.out, wid)] = s; }
}
