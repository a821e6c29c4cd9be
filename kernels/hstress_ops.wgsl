// i32 kernels of tests/e2e_horizons.rs (wrapping arithmetic, so a serial loop in Rust gives the same bits).

struct Params {
    chunk: CelerBox,
    a: CelerBox,
    b: CelerBox,
    c: CelerBox,
    out: CelerBox,
    k: i32,
}

@group(0) @binding(0) var<storage, read> a: array<i32>;
@group(0) @binding(1) var<storage, read> b: array<i32>;
@group(0) @binding(2) var<storage, read> c: array<i32>;
@group(0) @binding(3) var<storage, read_write> out: array<i32>;
var<immediate> pc: Params;

// out[i] = a[i] + 2 b[i] + 3 c[i] + k.
@compute @workgroup_size(64)
fn combine(@builtin(global_invocation_id) gid: vec3<u32>) {
    let item = celer_item_1d(pc.chunk, gid);
    if (celer_contains(pc.chunk, item)) {
        out[celer_index(pc.out, item)] = a[celer_index(pc.a, item)] + 2 * b[celer_index(pc.b, item)]
            + 3 * c[celer_index(pc.c, item)] + pc.k;
    }
}

// out[i] = 3 out[i] + a[i] + b[0] c[i] + k (b: one cell, read through `all` or `fixed`).
@compute @workgroup_size(64)
fn axpy(@builtin(global_invocation_id) gid: vec3<u32>) {
    let item = celer_item_1d(pc.chunk, gid);
    if (celer_contains(pc.chunk, item)) {
        let o = celer_index(pc.out, item);
        out[o] = 3 * out[o] + a[celer_index(pc.a, item)] + b[0] * c[celer_index(pc.c, item)]
            + pc.k;
    }
}

// out[i] = (out[i] + a[i] + (b[0] % 1000) c[i] + k) % 100000: bounded, for sums that must not overflow.
@compute @workgroup_size(64)
fn bump(@builtin(global_invocation_id) gid: vec3<u32>) {
    let item = celer_item_1d(pc.chunk, gid);
    if (celer_contains(pc.chunk, item)) {
        let o = celer_index(pc.out, item);
        out[o] = (out[o] + a[celer_index(pc.a, item)] + (b[0] % 1000) * c[celer_index(pc.c, item)] + pc.k) % 100000;
    }
}
