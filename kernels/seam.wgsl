// Kernels at the seam between a kernel and its task (tests/kernel_checks.rs): one that reads the binding it writes
// (an accumulation), one that reads back only what it stored itself, and one that reads its source through two
// helper functions that pass the box and the item on.

struct Params {
    chunk: CelerBox,
    src: CelerBox,
    acc: CelerBox,
}

@group(0) @binding(0) var<storage, read> src: array<f32>;
@group(0) @binding(1) var<storage, read_write> acc: array<f32>;
var<immediate> pc: Params;

// acc[i] += src[i]: reads the old contents of `acc`.
@compute @workgroup_size(64)
fn accumulate(@builtin(global_invocation_id) gid: vec3<u32>) {
    let item = celer_item_1d(pc.chunk, gid);
    if (celer_contains(pc.chunk, item)) {
        acc[celer_index(pc.acc, item)] += src[celer_index(pc.src, item)];
    }
}

// acc[i] = 2 src[i], stored and then doubled in place: it reads back only what it stored itself, which the build
// cannot tell from reading the old contents.
@compute @workgroup_size(64)
fn store_then_double(@builtin(global_invocation_id) gid: vec3<u32>) {
    let item = celer_item_1d(pc.chunk, gid);
    if (celer_contains(pc.chunk, item)) {
        let i = celer_index(pc.acc, item);
        acc[i] = src[celer_index(pc.src, item)];
        acc[i] = 2.0 * acc[i];
    }
}

fn load_inner(b: CelerBox, item: vec3<u32>) -> f32 {
    return src[celer_index(b, item)];
}

fn load_outer(b: CelerBox, item: vec3<u32>) -> f32 {
    return load_inner(b, item);
}

// acc[row][col] = src[row][col], the source read through two helpers.
@compute @workgroup_size(8, 8)
fn deep_2d(@builtin(global_invocation_id) gid: vec3<u32>) {
    let item = celer_item_2d(pc.chunk, gid);
    if (celer_contains(pc.chunk, item)) {
        acc[celer_index(pc.acc, item)] = load_outer(pc.src, item);
    }
}
