// Pass 2 of an exclusive prefix sum (tests/e2e_hpc.rs): one Hillis-Steele step over the block sums,
// next[i] = cur[i] + cur[i - stride] (cur[i] alone below the stride); log2(blocks) steps give the inclusive scan.
//
// Bindings: 0 = cur (read, custom: [i - stride, i]), 1 = next (discard_write, one to one).
// Push constants: chunk, cur's and next's boxes, stride.

struct Params {
    chunk: CelerBox,
    cur: CelerBox,
    next: CelerBox,
    stride: u32,
}

@group(0) @binding(0) var<storage, read> cur: array<u32>;
@group(0) @binding(1) var<storage, read_write> next: array<u32>;
var<immediate> pc: Params;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let item = celer_item_1d(pc.chunk, gid);
    if (!celer_contains(pc.chunk, item)) {
        return;
    }
    var v = cur[celer_index(pc.cur, item)];
    if (item.x >= pc.stride) {
        v = v + cur[celer_index(pc.cur, item - vec3<u32>(pc.stride, 0u, 0u))];
    }
    next[celer_index(pc.next, item)] = v;
}
