// out[i, j] = s * (y0[i, j] + y0[i + 1, j] + 2 y1[i, j] + ... + 6 y5[i, j]) + t over a 2D chunk (y0[i + 1, j] only
// where the buffer has that row): seven bindings and two scalars, 200 bytes of parameters, more than the 128 bytes of
// push constants every device takes, so celer-kernel-build moves them to a read-only storage buffer;
// tests/e2e_wide.rs checks the result against a serial loop.

struct Params {
    chunk: CelerBox,
    y0: CelerBox,
    y1: CelerBox,
    y2: CelerBox,
    y3: CelerBox,
    y4: CelerBox,
    y5: CelerBox,
    out: CelerBox,
    s: f32,
    t: f32,
}

@group(0) @binding(0) var<storage, read> y0: array<f32>;
@group(0) @binding(1) var<storage, read> y1: array<f32>;
@group(0) @binding(2) var<storage, read> y2: array<f32>;
@group(0) @binding(3) var<storage, read> y3: array<f32>;
@group(0) @binding(4) var<storage, read> y4: array<f32>;
@group(0) @binding(5) var<storage, read> y5: array<f32>;
@group(0) @binding(6) var<storage, read_write> out: array<f32>;
var<immediate> pc: Params;

@compute @workgroup_size(8, 8)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let item = celer_item_2d(pc.chunk, gid);
    if (!celer_contains(pc.chunk, item)) {
        return;
    }
    var v = y0[celer_index(pc.y0, item)];
    let below = item + vec3<u32>(1u, 0u, 0u);
    if (celer_contains(pc.y0, below)) {
        v = v + y0[celer_index(pc.y0, below)];
    }
    v = v + 2.0 * y1[celer_index(pc.y1, item)] + 3.0 * y2[celer_index(pc.y2, item)]
        + 4.0 * y3[celer_index(pc.y3, item)] + 5.0 * y4[celer_index(pc.y4, item)]
        + 6.0 * y5[celer_index(pc.y5, item)];
    out[celer_index(pc.out, item)] = pc.s * v + pc.t;
}
