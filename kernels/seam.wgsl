// Kernels at the seam between a kernel and its task (tests/kernel_checks.rs): ones that read the binding they write
// before storing to it (an accumulation, also through a helper), ones that store it first (and then read back what
// they stored, or accumulate into it), and one that reads its source through two helper functions that pass the
// box and the item on.

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

// acc[i] = 2 src[i], stored and then doubled in place: it reads back only what it stored itself.
@compute @workgroup_size(64)
fn store_then_double(@builtin(global_invocation_id) gid: vec3<u32>) {
    let item = celer_item_1d(pc.chunk, gid);
    if (celer_contains(pc.chunk, item)) {
        let i = celer_index(pc.acc, item);
        acc[i] = src[celer_index(pc.src, item)];
        acc[i] = 2.0 * acc[i];
    }
}

fn add_into(i: u32, x: f32) {
    acc[i] = acc[i] + x;
}

// acc[i] += src[i] through a helper function: reads the old contents of `acc` there.
@compute @workgroup_size(64)
fn accumulate_helper(@builtin(global_invocation_id) gid: vec3<u32>) {
    let item = celer_item_1d(pc.chunk, gid);
    if (celer_contains(pc.chunk, item)) {
        add_into(celer_index(pc.acc, item), src[celer_index(pc.src, item)]);
    }
}

// acc[i] = 0, then acc[i] += src[i] four times (the naive matrix product's way of accumulating into its output):
// stores before it reads.
@compute @workgroup_size(64)
fn zero_then_accumulate(@builtin(global_invocation_id) gid: vec3<u32>) {
    let item = celer_item_1d(pc.chunk, gid);
    if (celer_contains(pc.chunk, item)) {
        let i = celer_index(pc.acc, item);
        acc[i] = 0.0;
        for (var k = 0u; k < 4u; k++) {
            add_into(i, src[celer_index(pc.src, item)]);
        }
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
