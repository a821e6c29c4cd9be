// `a[i] = src[i] + 1` (only_a) or that and `b[i] = src[i] + 2` (both): `b` is declared read_write, but only_a never
// writes it. tests/kernel_checks.rs binds a discard_write and a reduction to `b` of only_a, which submit refuses.

struct Params {
    chunk: CelerBox,
    src: CelerBox,
    a: CelerBox,
    b: CelerBox,
}

@group(0) @binding(0) var<storage, read> src: array<f32>;
@group(0) @binding(1) var<storage, read_write> a: array<f32>;
@group(0) @binding(2) var<storage, read_write> b: array<f32>;
var<immediate> pc: Params;

@compute @workgroup_size(64)
fn only_a(@builtin(global_invocation_id) gid: vec3<u32>) {
    let item = celer_item_1d(pc.chunk, gid);
    if (celer_contains(pc.chunk, item)) {
        a[celer_index(pc.a, item)] = src[celer_index(pc.src, item)] + 1.0;
    }
}

@compute @workgroup_size(64)
fn both(@builtin(global_invocation_id) gid: vec3<u32>) {
    let item = celer_item_1d(pc.chunk, gid);
    if (celer_contains(pc.chunk, item)) {
        a[celer_index(pc.a, item)] = src[celer_index(pc.src, item)] + 1.0;
        b[celer_index(pc.b, item)] = src[celer_index(pc.src, item)] + 2.0;
    }
}
