// out[i] = (inp[i], 1): a binding of vec3<f32>, which takes 16 bytes in an array (WGSL aligns a vec3 to 16), and
// one of array<f32, 4>. tests/kernel_checks.rs binds 12-byte elements to the first, which submit refuses.

struct Params {
    chunk: CelerBox,
    inp: CelerBox,
    out: CelerBox,
}

@group(0) @binding(0) var<storage, read> inp: array<vec3<f32>>;
@group(0) @binding(1) var<storage, read_write> out: array<array<f32, 4>>;
var<immediate> pc: Params;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let item = celer_item_1d(pc.chunk, gid);
    if (celer_contains(pc.chunk, item)) {
        let v = inp[celer_index(pc.inp, item)];
        out[celer_index(pc.out, item)] = array<f32, 4>(v.x, v.y, v.z, 1.0);
    }
}
