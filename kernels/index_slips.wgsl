// Kernels indexing their bindings in ways right on one rank only, written in the forms kernel-build's analyses
// once let slip through (an index or cell kept in a `var`, handed to a function as a parameter, or composed of the
// item's components), and one that uses those forms rightly. Used by tests/kernel_checks.rs, whose dry runs
// check that submit refuses each as it refuses the direct form.
//
// Bindings: 0 = src (read), 1 = dst (written).
// Push constants: chunk, src's box, dst's box.

struct Params {
    chunk: CelerBox,
    src: CelerBox,
    dst: CelerBox,
}

@group(0) @binding(0) var<storage, read> src: array<f32>;
@group(0) @binding(1) var<storage, read_write> dst: array<f32>;
var<immediate> pc: Params;

fn put(i: u32, v: f32) {
    dst[i] = v;
}

// dst[item.x] through a `var`.
@compute @workgroup_size(64)
fn global_var(@builtin(global_invocation_id) gid: vec3<u32>) {
    let item = celer_item_1d(pc.chunk, gid);
    if (!celer_contains(pc.chunk, item)) {
        return;
    }
    var i = item.x;
    dst[i] = 2.0 * src[celer_index(pc.src, item)];
}

// dst[item.x] through put's parameter.
@compute @workgroup_size(64)
fn global_param(@builtin(global_invocation_id) gid: vec3<u32>) {
    let item = celer_item_1d(pc.chunk, gid);
    if (!celer_contains(pc.chunk, item)) {
        return;
    }
    put(item.x, 2.0 * src[celer_index(pc.src, item)]);
}

// dst indexed with src's box through a `var`.
@compute @workgroup_size(64)
fn cross_var(@builtin(global_invocation_id) gid: vec3<u32>) {
    let item = celer_item_1d(pc.chunk, gid);
    if (!celer_contains(pc.chunk, item)) {
        return;
    }
    var i = celer_index(pc.src, item);
    dst[i] = 2.0 * src[i];
}

// dst indexed with src's box through put's parameter.
@compute @workgroup_size(64)
fn cross_param(@builtin(global_invocation_id) gid: vec3<u32>) {
    let item = celer_item_1d(pc.chunk, gid);
    if (!celer_contains(pc.chunk, item)) {
        return;
    }
    let i = celer_index(pc.src, item);
    put(i, 2.0 * src[i]);
}

// src read at item + 1 through a `var` whose component is stepped.
@compute @workgroup_size(64)
fn offset_var(@builtin(global_invocation_id) gid: vec3<u32>) {
    let item = celer_item_1d(pc.chunk, gid);
    if (!celer_contains(pc.chunk, item)) {
        return;
    }
    var p = item;
    p.x = p.x + 1u;
    var v = 0.0;
    if (celer_contains(pc.src, p)) {
        v = src[celer_index(pc.src, p)];
    }
    dst[celer_index(pc.dst, item)] = v;
}

// src read at item + 1 through a cell composed of the item's components.
@compute @workgroup_size(64)
fn offset_composed(@builtin(global_invocation_id) gid: vec3<u32>) {
    let item = celer_item_1d(pc.chunk, gid);
    if (!celer_contains(pc.chunk, item)) {
        return;
    }
    let next = vec3<u32>(item.x + 1u, item.y, item.z);
    var v = 0.0;
    if (celer_contains(pc.src, next)) {
        v = src[celer_index(pc.src, next)];
    }
    dst[celer_index(pc.dst, item)] = v;
}

// Right on any number of ranks: each binding indexed with its own box, through a `var`, put's parameter and a
// composed cell at the item itself.
@compute @workgroup_size(64)
fn own(@builtin(global_invocation_id) gid: vec3<u32>) {
    let item = celer_item_1d(pc.chunk, gid);
    if (!celer_contains(pc.chunk, item)) {
        return;
    }
    var i = celer_index(pc.dst, item);
    put(i, 2.0 * src[celer_index(pc.src, vec3<u32>(item.x, item.y, item.z))]);
}
