// One phase of an odd-even transposition sort, in place (tests/e2e_hpc.rs): item p orders the pair of cells
// 2p + phase, 2p + phase + 1 of `keys`. The pairs are disjoint, so items never touch each other's cells.
//
// Bindings: 0 = keys (read_write, custom: the chunk's pairs). Push constants: chunk, keys' box, phase (0 or 1).

struct Params {
    chunk: CelerBox,
    keys: CelerBox,
    phase: u32,
}

@group(0) @binding(0) var<storage, read_write> keys: array<u32>;
var<immediate> pc: Params;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let p = celer_item_1d(pc.chunk, gid);
    if (!celer_contains(pc.chunk, p)) {
        return;
    }
    let lo = vec3<u32>(2u * p.x + pc.phase, 0u, 0u);
    let hi = lo + vec3<u32>(1u, 0u, 0u);
    let a = keys[celer_index(pc.keys, lo)];
    let b = keys[celer_index(pc.keys, hi)];
    keys[celer_index(pc.keys, lo)] = min(a, b);
    keys[celer_index(pc.keys, hi)] = max(a, b);
}
