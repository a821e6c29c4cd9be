// Kernels whose results depend on how the index space is cut into workgroups: each item writes its local index, or
// the sum of the values of its workgroup's items (through workgroup memory and a barrier). Correct on any number of
// ranks only because celer starts every chunk at a whole workgroup of the index space for such kernels (their
// reflection's `workgroup_dependent`). Used by tests/e2e_workgroups.
//
// Bindings: 0 = data (read, one to one), 1 = out (discard_write, one to one).
// Push constants: chunk, data's box, out's box.

struct Params {
    chunk: CelerBox,
    data: CelerBox,
    out: CelerBox,
}

@group(0) @binding(0) var<storage, read> data: array<u32>;
@group(0) @binding(1) var<storage, read_write> out: array<u32>;
var<immediate> pc: Params;

var<workgroup> cells: array<u32, 64>;

// Each item: its index in its workgroup.
@compute @workgroup_size(64)
fn local_index(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let item = celer_item_1d(pc.chunk, gid);
    if (!celer_contains(pc.chunk, item)) { return; }
    out[celer_index(pc.out, item)] = lid;
}

// Each item: the (wrapping) sum of `data` over the items of its workgroup. No local id: only workgroup memory and a
// barrier make it depend on the workgroups.
@compute @workgroup_size(64)
fn group_sum(@builtin(global_invocation_id) gid: vec3<u32>) {
    let item = celer_item_1d(pc.chunk, gid);
    let inside = celer_contains(pc.chunk, item);
    cells[gid.x % 64u] = select(0u, data[celer_index(pc.data, item)], inside);
    workgroupBarrier();
    if (!inside) { return; }
    var sum = 0u;
    for (var i = 0u; i < 64u; i = i + 1u) {
        sum = sum + cells[i];
    }
    out[celer_index(pc.out, item)] = sum;
}

// 2D, workgroups of 8 rows x 8 columns (gid.x along dimension 1): each item its index in its workgroup.
@compute @workgroup_size(8, 8)
fn local_index_2d(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let item = celer_item_2d(pc.chunk, gid);
    if (!celer_contains(pc.chunk, item)) { return; }
    out[celer_index(pc.out, item)] = lid;
}
