// out[i] = 2 * inp[i] for every cell of a 1D chunk, each cell a vec4<f32> (a buffer of 16-byte elements, such as
// a `#[repr(C)] struct { pos: [f32; 3], mass: f32 }`): tests/kernel_checks.rs binds struct elements through it.

struct Params {
    chunk: CelerBox,
    inp: CelerBox,
    out: CelerBox,
}

@group(0) @binding(0) var<storage, read> inp: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read_write> out: array<vec4<f32>>;
var<immediate> pc: Params;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let item = celer_item_1d(pc.chunk, gid);
    if (celer_contains(pc.chunk, item)) {
        out[celer_index(pc.out, item)] = 2.0 * inp[celer_index(pc.inp, item)];
    }
}
