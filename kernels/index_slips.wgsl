// Kernels indexing their bindings in ways right on one rank only, written in the forms kernel-build's analyses
// once let slip through (an index or cell kept in a `var`, handed to a function as a parameter, composed of the
// item's components, returned by a function, or a component handed alone to a function), and two that use those
// forms rightly. Used by tests/kernel_checks.rs, whose dry runs
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

// The cell's index in the index space: right for a buffer held whole from its origin only.
fn idx(c: vec3<u32>) -> u32 {
    return c.x;
}

// The cell's index in src's allocation: right for src only.
fn src_index(c: vec3<u32>) -> u32 {
    return celer_index(pc.src, c);
}

fn dst_index(c: vec3<u32>) -> u32 {
    return celer_index(pc.dst, c);
}

// src at cell x of the index space (0 outside what the binding holds).
fn src_at(x: u32) -> f32 {
    let c = vec3<u32>(x, 0u, 0u);
    if (celer_contains(pc.src, c)) {
        return src[celer_index(pc.src, c)];
    }
    return 0.0;
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

// dst[item.x] through idx's return value.
@compute @workgroup_size(64)
fn global_return(@builtin(global_invocation_id) gid: vec3<u32>) {
    let item = celer_item_1d(pc.chunk, gid);
    if (!celer_contains(pc.chunk, item)) {
        return;
    }
    dst[idx(item)] = 2.0 * src[celer_index(pc.src, item)];
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

// dst indexed with src's box through src_index's return value (src indexed so rightly).
@compute @workgroup_size(64)
fn cross_return(@builtin(global_invocation_id) gid: vec3<u32>) {
    let item = celer_item_1d(pc.chunk, gid);
    if (!celer_contains(pc.chunk, item)) {
        return;
    }
    dst[src_index(item)] = 2.0 * src[src_index(item)];
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

// src read at item + 1 through a component handed alone to src_at.
@compute @workgroup_size(64)
fn offset_component(@builtin(global_invocation_id) gid: vec3<u32>) {
    let item = celer_item_1d(pc.chunk, gid);
    if (!celer_contains(pc.chunk, item)) {
        return;
    }
    dst[celer_index(pc.dst, item)] = src_at(item.x + 1u);
}

// Right on any number of ranks: each binding indexed with its own box through a function's return value, and src
// read at the item itself through a component handed alone.
@compute @workgroup_size(64)
fn own_returned(@builtin(global_invocation_id) gid: vec3<u32>) {
    let item = celer_item_1d(pc.chunk, gid);
    if (!celer_contains(pc.chunk, item)) {
        return;
    }
    dst[dst_index(item)] = 2.0 * src_at(item.x) + src[src_index(item)];
}
