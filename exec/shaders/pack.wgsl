// Gathers (`pack`) or scatters (`unpack`) the cells of a box between an allocation and a packed
// staging buffer: the GPU layer's path for strided boxes (a column of a 2D field, a face of a 3D
// one), which would otherwise take one copy region per contiguous run (thousands of tiny DMA
// copies). Used by celer_exec::gpu::Batch::upload / download, not by programs.
//
// One invocation per cell, in row-major order of `region`; each cell is `words` 32-bit words.
// The launch is 2D only so that more than 65535 workgroups fit: cell i = x + y * (64 * groups in x).
//
// Bindings: 0 = the allocation (holding box `alloc`), 1 = the packed staging buffer.
// Push constants: region, alloc (CelerBox each), words per cell.
//
// Not a task kernel: its launch covers `region` from 0, which it offsets itself (celer_offset(pc.region)).
// celer-kernel-build: raw ids: pack, unpack

struct Params {
    region: CelerBox,
    alloc: CelerBox,
    words: u32,
}

@group(0) @binding(0) var<storage, read_write> alloc: array<u32>;
@group(0) @binding(1) var<storage, read_write> packed: array<u32>;
var<immediate> pc: Params;

// The cell's index in `region` order, or a value >= the cell count for the rounded-up tail.
fn cell_of(gid: vec3<u32>, groups: vec3<u32>) -> u32 {
    return gid.x + gid.y * groups.x * 64u;
}

// The first allocation word of cell i of the region.
fn alloc_word(i: u32) -> u32 {
    let r = celer_range(pc.region);
    let cell = celer_offset(pc.region) + vec3<u32>(i / (r.y * r.z), (i / r.z) % r.y, i % r.z);
    return celer_index(pc.alloc, cell) * pc.words;
}

fn cells() -> u32 {
    let r = celer_range(pc.region);
    return r.x * r.y * r.z;
}

@compute @workgroup_size(64)
fn pack(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = cell_of(gid, groups);
    if (i >= cells()) {
        return;
    }
    let a = alloc_word(i);
    for (var k = 0u; k < pc.words; k++) {
        packed[i * pc.words + k] = alloc[a + k];
    }
}

@compute @workgroup_size(64)
fn unpack(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = cell_of(gid, groups);
    if (i >= cells()) {
        return;
    }
    let a = alloc_word(i);
    for (var k = 0u; k < pc.words; k++) {
        alloc[a + k] = packed[i * pc.words + k];
    }
}
