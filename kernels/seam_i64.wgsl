// 64-bit integers (tests/e2e_seam.rs): out[i] = 2 * inp[i] + 1 over i64 cells beyond the range of 32 bits. Needs the
// device feature shaderInt64.
//
// Bindings: 0 = inp (read, one to one), 1 = out (write, one to one).

struct Params {
    chunk: CelerBox,
    inp: CelerBox,
    out: CelerBox,
}

@group(0) @binding(0) var<storage, read> inp: array<i64>;
@group(0) @binding(1) var<storage, read_write> out: array<i64>;
var<immediate> pc: Params;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let item = celer_item_1d(pc.chunk, gid);
    if (celer_contains(pc.chunk, item)) {
        out[celer_index(pc.out, item)] = 2li * inp[celer_index(pc.inp, item)] + 1li;
    }
}
