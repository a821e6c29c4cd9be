// Pass 1 of an exclusive prefix sum (tests/e2e_hpc.rs): each workgroup of 64 items scans its block in workgroup
// memory (Hillis-Steele), stores the block's exclusive prefix into `out` and the block's total into `sums` (cell
// item / 64: chunks start at whole workgroups, so a block lies in one chunk).
//
// Bindings: 0 = data (read, one to one), 1 = out (discard_write, one to one), 2 = sums (discard_write, one cell per
// block). Push constants: chunk, data's, out's and sums' boxes.

struct Params {
    chunk: CelerBox,
    data: CelerBox,
    out: CelerBox,
    sums: CelerBox,
}

@group(0) @binding(0) var<storage, read> data: array<u32>;
@group(0) @binding(1) var<storage, read_write> out: array<u32>;
@group(0) @binding(2) var<storage, read_write> sums: array<u32>;
var<immediate> pc: Params;

const WG = 64u;
var<workgroup> tile: array<u32, 64>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let item = celer_item_1d(pc.chunk, gid);
    let valid = celer_contains(pc.chunk, item);
    var v = 0u;
    if (valid) {
        v = data[celer_index(pc.data, item)];
    }
    tile[lid] = v;
    workgroupBarrier();
    for (var s = 1u; s < WG; s = s * 2u) {
        var t = 0u;
        if (lid >= s) {
            t = tile[lid - s];
        }
        workgroupBarrier();
        tile[lid] = tile[lid] + t;
        workgroupBarrier();
    }
    if (valid) {
        out[celer_index(pc.out, item)] = tile[lid] - v;
        if (lid == 0u) {
            sums[celer_index(pc.sums, vec3<u32>(item.x / WG, 0u, 0u))] = tile[WG - 1u];
        }
    }
}
