// Conjugate gradient (examples/cg.rs), 2D Poisson: q = A p for the 5-point Laplacian on an n x n grid (zero outside
// it), and the deterministic sum of p . q through the prelude's block reduction.
//
// Bindings: 0 = p (read, neighbourhood 1), 1 = q (discard_write, one to one), 2 = pq (the reduction).
// Push constants: chunk, p's, q's and pq's boxes, then n.

struct Params {
    chunk: CelerBox,
    p: CelerBox,
    q: CelerBox,
    pq: CelerBox,
    n: u32,
}

@group(0) @binding(0) var<storage, read> p: array<f32>;
@group(0) @binding(1) var<storage, read_write> q: array<f32>;
@group(0) @binding(2) var<storage, read_write> pq: array<f32>;
var<immediate> pc: Params;

// p at cell (i, j), 0 outside the grid (below 0, i and j wrap to large values).
fn at(i: u32, j: u32) -> f32 {
    if (i >= pc.n || j >= pc.n) {
        return 0.0;
    }
    return p[celer_index(pc.p, vec3<u32>(i, j, 0u))];
}

@compute @workgroup_size(16, 16)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(local_invocation_index) lid: u32,
        @builtin(workgroup_id) wid: vec3<u32>) {
    let item = celer_item_2d(pc.chunk, gid);
    let inside = celer_contains(pc.chunk, item);
    var v = 0.0;
    if (inside) {
        let i = item.x;
        let j = item.y;
        let c = at(i, j);
        let a = 4.0 * c - at(i - 1u, j) - at(i + 1u, j) - at(i, j - 1u) - at(i, j + 1u);
        q[celer_index(pc.q, item)] = a;
        v = c * a;
    }
    let s = celer_reduce_sum_f32(v, inside, lid);
    if (lid == 0u) {
        pq[celer_block_2d(pc.pq, wid)] = s;
    }
}
