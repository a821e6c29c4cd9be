// dst[i] = f(i) from push-constant vectors, for tests/e2e_scalars.rs (given by name, by position as vectors and word
// by word) and tests/kernel_checks.rs (vectors of the wrong type or width refused). WGSL aligns `s` to 8, `k` and
// `mask` to 16; `k` occupies 12 bytes, so `t` sits in the 4 after it:
//   chunk 0, dst 24, s 48 (vec2<f32>), k 64 (vec3<i32>), t 76 (u32), mask 80 (vec4<u32>); 96 bytes.
// For i < 64 and the tests' values every sum is a multiple of 0.25 below 2^22, so f32 computes it exactly.

struct Params {
    chunk: CelerBox,
    dst: CelerBox,
    s: vec2<f32>,
    k: vec3<i32>,
    t: u32,
    mask: vec4<u32>,
}

@group(0) @binding(0) var<storage, read_write> dst: array<f32>;
var<immediate> pc: Params;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let item = celer_item_1d(pc.chunk, gid);
    if (celer_contains(pc.chunk, item)) {
        let i = item.x;
        let ks = pc.k.x + 10 * pc.k.y + 100 * pc.k.z;
        let m = ((i & pc.mask.x) | pc.mask.y) + 7u * pc.mask.z + 13u * pc.mask.w;
        dst[celer_index(pc.dst, item)] = pc.s.x * f32(i) + pc.s.y + f32(ks) + 1000.0 * f32(pc.t) + 10000.0 * f32(m);
    }
}
