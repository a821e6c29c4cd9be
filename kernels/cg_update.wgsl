// Conjugate gradient (examples/cg.rs): the new residual r -= alpha q (q = A p), and the deterministic sum of r . r
// through the prelude's block reduction.
//
// Bindings: 0 = r (read_write), 1 = q (read), both one to one; 2 = rr (the reduction). Push constants: chunk, the
// three boxes, then alpha.

struct Params {
    chunk: CelerBox,
    r: CelerBox,
    q: CelerBox,
    rr: CelerBox,
    alpha: f32,
}

@group(0) @binding(0) var<storage, read_write> r: array<f32>;
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read_write> rr: array<f32>;
var<immediate> pc: Params;

@compute @workgroup_size(16, 16)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(local_invocation_index) lid: u32,
        @builtin(workgroup_id) wid: vec3<u32>) {
    let item = celer_item_2d(pc.chunk, gid);
    let inside = celer_contains(pc.chunk, item);
    var v = 0.0;
    if (inside) {
        let k = celer_index(pc.r, item);
        let res = r[k] - pc.alpha * q[celer_index(pc.q, item)];
        r[k] = res;
        v = res * res;
    }
    let s = celer_reduce_sum_f32(v, inside, lid);
    if (lid == 0u) {
        rr[celer_block_2d(pc.rr, wid)] = s;
    }
}
