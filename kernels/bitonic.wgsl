// One compare-exchange stage (k, j) of a bitonic sort (tests/e2e_hpc.rs), as a gather: item i reads itself and its
// partner i ^ j in `src` and stores the smaller or the larger into `dst[i]`, ascending where i & k is 0.
//
// Bindings: 0 = src (read, custom: the aligned 2j-block of the chunk), 1 = dst (discard_write, one to one).
// Push constants: chunk, src's and dst's boxes, j, k.

struct Params {
    chunk: CelerBox,
    src: CelerBox,
    dst: CelerBox,
    j: u32,
    k: u32,
}

@group(0) @binding(0) var<storage, read> src: array<u32>;
@group(0) @binding(1) var<storage, read_write> dst: array<u32>;
var<immediate> pc: Params;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let item = celer_item_1d(pc.chunk, gid);
    if (!celer_contains(pc.chunk, item)) {
        return;
    }
    let i = item.x;
    let p = i ^ pc.j;
    let a = src[celer_index(pc.src, item)];
    let b = src[celer_index(pc.src, vec3<u32>(p, 0u, 0u))];
    let ascending = (i & pc.k) == 0u;
    var v = max(a, b);
    if ((i < p) == ascending) {
        v = min(a, b);
    }
    dst[celer_index(pc.dst, item)] = v;
}
