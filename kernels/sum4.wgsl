// out[i] = a[i] + b[i] + c[i] + d[i] over a 1D chunk: five bindings, whose boxes and chunk take 144 bytes of
// parameters, more than the push constants lavapipe takes (128, Vulkan's minimum), so celer-kernel-build moves them
// to a read-only storage buffer (binding 6). tests/e2e_errors.rs's `push-limit` case and tests/e2e_wide.rs run it.

struct Params {
    chunk: CelerBox,
    a: CelerBox,
    b: CelerBox,
    c: CelerBox,
    d: CelerBox,
    out: CelerBox,
}

@group(0) @binding(0) var<storage, read> a: array<f32>;
@group(0) @binding(1) var<storage, read> b: array<f32>;
@group(0) @binding(2) var<storage, read> c: array<f32>;
@group(0) @binding(3) var<storage, read> d: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;
var<immediate> pc: Params;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let item = celer_item_1d(pc.chunk, gid);
    if (celer_contains(pc.chunk, item)) {
        out[celer_index(pc.out, item)] = a[celer_index(pc.a, item)] + b[celer_index(pc.b, item)]
            + c[celer_index(pc.c, item)] + d[celer_index(pc.d, item)];
    }
}
