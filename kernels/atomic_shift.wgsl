// Every item stores into its own cell, with atomicStore, one more than what its right neighbour holds, read with
// atomicLoad: atomics, but what an item reads depends on whether its neighbour already ran, so submit must refuse it
// as a race (tests/kernel_checks.rs); `bump` only adds to its neighbours' cells with atomicAdd, which it takes.

struct Params {
    chunk: CelerBox,
    v: CelerBox,
}

@group(0) @binding(0) var<storage, read_write> v: array<atomic<u32>>;
var<immediate> pc: Params;

@compute @workgroup_size(64)
fn shift(@builtin(global_invocation_id) gid: vec3<u32>) {
    let item = celer_item_1d(pc.chunk, gid);
    let right = item + vec3<u32>(1u, 0u, 0u);
    if (celer_contains(pc.chunk, item) && celer_contains(pc.v, right)) {
        let next = atomicLoad(&v[celer_index(pc.v, right)]);
        atomicStore(&v[celer_index(pc.v, item)], next + 1u);
    }
}

@compute @workgroup_size(64)
fn bump(@builtin(global_invocation_id) gid: vec3<u32>) {
    let item = celer_item_1d(pc.chunk, gid);
    let right = item + vec3<u32>(1u, 0u, 0u);
    if (celer_contains(pc.chunk, item) && celer_contains(pc.v, right)) {
        atomicAdd(&v[celer_index(pc.v, right)], 1u);
        atomicAdd(&v[celer_index(pc.v, item)], 1u);
    }
}
