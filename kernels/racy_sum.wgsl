// A reduction as a porter from CUDA writes it where WGSL has no float atomics: every item adds its value into out[0]
// with a plain load and store. The items race (each overwrites the others' sums), so submit refuses it as a
// reduction over more than one item. Used by tests/e2e_errors.rs.
//
// Bindings: 0 = data (read, one to one), 1 = out (the reduction buffer).
// Push constants: chunk, data's box, out's box.

struct Params {
    chunk: CelerBox,
    data: CelerBox,
    out: CelerBox,
}

@group(0) @binding(0) var<storage, read> data: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
var<immediate> pc: Params;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let item = celer_item_1d(pc.chunk, gid);
    if (!celer_contains(pc.chunk, item)) {
        return;
    }
    out[0] += data[celer_index(pc.data, item)];
}

