// out[i] = a * (x0[i] + x0[i + 1] + 2 x1[i] + ... + 8 x7[i]) + b * i + c over a 1D chunk (x0[i + 1] only where the
// buffer has that cell), `main` storing, `accumulate` adding to what out holds: nine bindings and three scalars,
// 252 bytes of parameters, more than the 128 bytes of push constants every device takes, so celer-kernel-build moves
// them to a read-only storage buffer; tests/e2e_wide.rs checks the result against a serial loop.

struct Params {
    chunk: CelerBox,
    x0: CelerBox,
    x1: CelerBox,
    x2: CelerBox,
    x3: CelerBox,
    x4: CelerBox,
    x5: CelerBox,
    x6: CelerBox,
    x7: CelerBox,
    out: CelerBox,
    a: f32,
    b: f32,
    c: f32,
}

@group(0) @binding(0) var<storage, read> x0: array<f32>;
@group(0) @binding(1) var<storage, read> x1: array<f32>;
@group(0) @binding(2) var<storage, read> x2: array<f32>;
@group(0) @binding(3) var<storage, read> x3: array<f32>;
@group(0) @binding(4) var<storage, read> x4: array<f32>;
@group(0) @binding(5) var<storage, read> x5: array<f32>;
@group(0) @binding(6) var<storage, read> x6: array<f32>;
@group(0) @binding(7) var<storage, read> x7: array<f32>;
@group(0) @binding(8) var<storage, read_write> out: array<f32>;
var<immediate> pc: Params;

// The value at `item`, before it is stored or added.
fn wide_value(item: vec3<u32>) -> f32 {
    var s = x0[celer_index(pc.x0, item)];
    let next = item + vec3<u32>(1u, 0u, 0u);
    if (celer_contains(pc.x0, next)) {
        s = s + x0[celer_index(pc.x0, next)];
    }
    s = s + 2.0 * x1[celer_index(pc.x1, item)] + 3.0 * x2[celer_index(pc.x2, item)]
        + 4.0 * x3[celer_index(pc.x3, item)] + 5.0 * x4[celer_index(pc.x4, item)]
        + 6.0 * x5[celer_index(pc.x5, item)] + 7.0 * x6[celer_index(pc.x6, item)]
        + 8.0 * x7[celer_index(pc.x7, item)];
    return pc.a * s + pc.b * f32(item.x) + pc.c;
}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let item = celer_item_1d(pc.chunk, gid);
    if (celer_contains(pc.chunk, item)) {
        out[celer_index(pc.out, item)] = wide_value(item);
    }
}

@compute @workgroup_size(64)
fn accumulate(@builtin(global_invocation_id) gid: vec3<u32>) {
    let item = celer_item_1d(pc.chunk, gid);
    if (celer_contains(pc.chunk, item)) {
        let i = celer_index(pc.out, item);
        out[i] = out[i] + wide_value(item);
    }
}
