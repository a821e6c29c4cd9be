// Sum over a 2D index space of (a - b)^2, as a deterministic block reduction into `total`.
struct Params {
    chunk: CelerBox,
    a: CelerBox,
    b: CelerBox,
    total: CelerBox,
}

@group(0) @binding(0) var<storage, read> a: array<f32>;
@group(0) @binding(1) var<storage, read> b: array<f32>;
@group(0) @binding(2) var<storage, read_write> total: array<f32>;
var<immediate> pc: Params;

@compute @workgroup_size(16, 16)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(local_invocation_index) lid: u32,
        @builtin(workgroup_id) wid: vec3<u32>) {
    let item = celer_item_2d(pc.chunk, gid);
    let inside = celer_contains(pc.chunk, item);
    var v = 0.0;
    if (inside) {
        let d = a[celer_index(pc.a, item)] - b[celer_index(pc.b, item)];
        v = d * d;
    }
    let s = celer_reduce_sum_f32(v, inside, lid);
    if (lid == 0u) {
        total[celer_block_2d(pc.total, wid)] = s;
    }
}
