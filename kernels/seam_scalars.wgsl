// Many scalars with two bindings: 72 bytes of boxes and 80 of scalars (a vec3 padded to 16, a u32 in its last word,
// 12 f32, an i32 and a vec2), 152 bytes in all, beyond push constants, so read from a storage buffer
// (tests/e2e_seam.rs).
//
// Bindings: 0 = inp (read, one to one), 1 = out (write, one to one).

struct Params {
    chunk: CelerBox,
    inp: CelerBox,
    out: CelerBox,
    v: vec3<f32>,
    n: u32,
    s0: f32, s1: f32, s2: f32, s3: f32, s4: f32, s5: f32,
    s6: f32, s7: f32, s8: f32, s9: f32, s10: f32, s11: f32,
    k: i32,
    w: vec2<f32>,
}

@group(0) @binding(0) var<storage, read> inp: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
var<immediate> pc: Params;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let item = celer_item_1d(pc.chunk, gid);
    if (celer_contains(pc.chunk, item)) {
        let s = pc.s0 + 2.0 * pc.s1 + 3.0 * pc.s2 + 4.0 * pc.s3 + 5.0 * pc.s4 + 6.0 * pc.s5 + 7.0 * pc.s6
            + 8.0 * pc.s7 + 9.0 * pc.s8 + 10.0 * pc.s9 + 11.0 * pc.s10 + 12.0 * pc.s11;
        let x = inp[celer_index(pc.inp, item)];
        out[celer_index(pc.out, item)] = x * pc.v.x + pc.v.y + 100.0 * pc.v.z + f32(pc.n) * 1000.0 + s * 10000.0
            + f32(pc.k) * 0.5 + pc.w.x * 0.25 + pc.w.y * 0.125;
    }
}
