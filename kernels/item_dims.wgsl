// Kernels that index a buffer with their item as celer_item_Nd returned it, and one that builds the cell of a 1D
// buffer from a 2D item. tests/kernel_checks.rs binds buffers of other dimensionalities to the first two, which
// submit refuses (a 2D item read as a cell of a 1D buffer is cell row + col).

struct Params {
    chunk: CelerBox,
    src: CelerBox,
    dst: CelerBox,
}

@group(0) @binding(0) var<storage, read> src: array<f32>;
@group(0) @binding(1) var<storage, read_write> dst: array<f32>;
var<immediate> pc: Params;

// dst[i] = 2 src[i], in 1D.
@compute @workgroup_size(64)
fn twice_1d(@builtin(global_invocation_id) gid: vec3<u32>) {
    let item = celer_item_1d(pc.chunk, gid);
    if (celer_contains(pc.chunk, item)) {
        dst[celer_index(pc.dst, item)] = 2.0 * src[celer_index(pc.src, item)];
    }
}

// dst[row][col] = 2 src[row][col], in 2D.
@compute @workgroup_size(8, 8)
fn twice_2d(@builtin(global_invocation_id) gid: vec3<u32>) {
    let item = celer_item_2d(pc.chunk, gid);
    if (celer_contains(pc.chunk, item)) {
        dst[celer_index(pc.dst, item)] = 2.0 * src[celer_index(pc.src, item)];
    }
}

// dst[row][col] = src[col]: a 1D source read at the 2D item's column.
@compute @workgroup_size(8, 8)
fn spread_cols(@builtin(global_invocation_id) gid: vec3<u32>) {
    let item = celer_item_2d(pc.chunk, gid);
    if (celer_contains(pc.chunk, item)) {
        dst[celer_index(pc.dst, item)] = src[celer_index(pc.src, vec3<u32>(item.y, 0u, 0u))];
    }
}
