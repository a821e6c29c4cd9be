// out[i] = -2 * i for the even cells of a 1D chunk only; the odd cells are not stored (tests/e2e_parts.rs: through
// a `write` accessor they keep their old contents on any number of ranks).

struct Params {
    chunk: CelerBox,
    out: CelerBox,
}

@group(0) @binding(0) var<storage, read_write> out: array<i32>;
var<immediate> pc: Params;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let item = celer_item_1d(pc.chunk, gid);
    if (celer_contains(pc.chunk, item) && item.x % 2u == 0u) {
        out[celer_index(pc.out, item)] = -2 * i32(item.x);
    }
}
