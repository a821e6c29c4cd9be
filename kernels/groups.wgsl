// Global workgroup ids (the prelude's celer_group_Nd): each item writes its workgroup's index in the task's whole
// grid of workgroups, plus the sum of its neighbours in `src` (so that the task reads a halo that other ranks
// write, and may run its interior before the halo arrives). Used by tests/e2e_offset.
//
// Bindings: 0 = src (read, neighbourhood 1), 1 = out (write, one to one).
// Push constants: chunk, src's box, out's box.

struct Params {
    chunk: CelerBox,
    src: CelerBox,
    out: CelerBox,
}

@group(0) @binding(0) var<storage, read> src: array<u32>;
@group(0) @binding(1) var<storage, read_write> out: array<u32>;
var<immediate> pc: Params;

// src at `item`, or 0 outside the cells bound (beyond the buffer).
fn at(item: vec3<u32>) -> u32 {
    if (celer_contains(pc.src, item)) {
        return src[celer_index(pc.src, item)];
    }
    return 0u;
}

const WG_1D = 4u;

// out = 1000 * group + src[i - 1] + src[i + 1], workgroups of 4 items.
@compute @workgroup_size(WG_1D)
fn groups_1d(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let item = celer_item_1d(pc.chunk, gid);
    if (!celer_contains(pc.chunk, item)) {
        return;
    }
    let group = celer_group_1d(pc.chunk, wid, vec3<u32>(WG_1D, 1u, 1u)).x;
    let halo = at(item - vec3<u32>(1u, 0u, 0u)) + at(item + vec3<u32>(1u, 0u, 0u));
    out[celer_index(pc.out, item)] = 1000u * group + halo;
}

// out = 1000000 * group.x + 1000 * group.y + src[i - 1, j] + src[i + 1, j], workgroups of 4 columns x 2 rows
// (x runs along dimension 1).
@compute @workgroup_size(4, 2)
fn groups_2d(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let item = celer_item_2d(pc.chunk, gid);
    if (!celer_contains(pc.chunk, item)) {
        return;
    }
    let group = celer_group_2d(pc.chunk, wid, vec3<u32>(4u, 2u, 1u));
    let halo = at(item - vec3<u32>(1u, 0u, 0u)) + at(item + vec3<u32>(1u, 0u, 0u));
    out[celer_index(pc.out, item)] = 1000000u * group.x + 1000u * group.y + halo;
}

// The same in 3D, workgroups of x 2 (along dimension 2), y 3 (dimension 1), z 4 (dimension 0): out = 10000 * group.x + 100 * group.y + group.z
// + src[i - 1, j, k] + src[i + 1, j, k].
@compute @workgroup_size(2, 3, 4)
fn groups_3d(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let item = celer_item_3d(pc.chunk, gid);
    if (!celer_contains(pc.chunk, item)) {
        return;
    }
    let group = celer_group_3d(pc.chunk, wid, vec3<u32>(2u, 3u, 4u));
    let halo = at(item - vec3<u32>(1u, 0u, 0u)) + at(item + vec3<u32>(1u, 0u, 0u));
    out[celer_index(pc.out, item)] = 10000u * group.x + 100u * group.y + group.z + halo;
}
