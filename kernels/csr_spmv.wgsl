// y = A x for a sparse matrix A in CSR form (tests/e2e_hpc.rs): row i's entries are vals[row_ptr[i] ..
// row_ptr[i + 1]] in the columns col_idx[..] of the same range. Five bindings: the parameter block (chunk and five
// boxes, 144 bytes) goes to a storage buffer.
//
// Bindings: 0 = row_ptr (read, rows [i, i + 1]), 1 = col_idx and 2 = vals (read, the chunk's entries),
// 3 = x (read, all), 4 = y (discard_write, one to one). Push constants: chunk and the five boxes.

struct Params {
    chunk: CelerBox,
    row_ptr: CelerBox,
    col_idx: CelerBox,
    vals: CelerBox,
    x: CelerBox,
    y: CelerBox,
}

@group(0) @binding(0) var<storage, read> row_ptr: array<u32>;
@group(0) @binding(1) var<storage, read> col_idx: array<u32>;
@group(0) @binding(2) var<storage, read> vals: array<f32>;
@group(0) @binding(3) var<storage, read> x: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;
var<immediate> pc: Params;

fn cell(i: u32) -> vec3<u32> {
    return vec3<u32>(i, 0u, 0u);
}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let row = celer_item_1d(pc.chunk, gid);
    if (!celer_contains(pc.chunk, row)) {
        return;
    }
    let begin = row_ptr[celer_index(pc.row_ptr, row)];
    let end = row_ptr[celer_index(pc.row_ptr, row + vec3<u32>(1u, 0u, 0u))];
    var acc = 0.0;
    for (var e = begin; e < end; e = e + 1u) {
        let c = col_idx[celer_index(pc.col_idx, cell(e))];
        acc = acc + vals[celer_index(pc.vals, cell(e))] * x[celer_index(pc.x, cell(c))];
    }
    y[celer_index(pc.y, row)] = acc;
}
