// acc[i] += scale * (a0[i] + 2 a1[i] + 3 a2[i] + 4 a3[i] + 5 a4[i] + 6 a5[i]) + bias over a 1D chunk: seven
// bindings and two scalars, 200 bytes of parameters, more than the 128 bytes of push constants every device takes,
// so celer-kernel-build moves them to a read-only storage buffer (at binding 8, after the checked variant's bounds
// record at 7); exec/tests/gpu.rs dispatches it through the GPU layer's parameter ring.

struct Params {
    chunk: CelerBox,
    a0: CelerBox,
    a1: CelerBox,
    a2: CelerBox,
    a3: CelerBox,
    a4: CelerBox,
    a5: CelerBox,
    acc: CelerBox,
    scale: f32,
    bias: f32,
}

@group(0) @binding(0) var<storage, read> a0: array<f32>;
@group(0) @binding(1) var<storage, read> a1: array<f32>;
@group(0) @binding(2) var<storage, read> a2: array<f32>;
@group(0) @binding(3) var<storage, read> a3: array<f32>;
@group(0) @binding(4) var<storage, read> a4: array<f32>;
@group(0) @binding(5) var<storage, read> a5: array<f32>;
@group(0) @binding(6) var<storage, read_write> acc: array<f32>;
var<immediate> pc: Params;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let item = celer_item_1d(pc.chunk, gid);
    if (celer_contains(pc.chunk, item)) {
        let s = a0[celer_index(pc.a0, item)] + 2.0 * a1[celer_index(pc.a1, item)] + 3.0 * a2[celer_index(pc.a2, item)]
            + 4.0 * a3[celer_index(pc.a3, item)] + 5.0 * a4[celer_index(pc.a4, item)]
            + 6.0 * a5[celer_index(pc.a5, item)];
        let i = celer_index(pc.acc, item);
        acc[i] = acc[i] + pc.scale * s + pc.bias;
    }
}
