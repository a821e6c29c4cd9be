// saxpy: y[i] = a * x[i] + y[i] for i < n. The toolchain smoke kernel.
//
// Bindings: set 0, binding 0 = x (read), binding 1 = y (read-write).
// Push constants (naga 30 spells them `var<immediate>`): a, then n.

struct Params {
    a: f32,
    n: u32,
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
var<immediate> params: Params;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;
    if (i < params.n) {
        y[i] = params.a * x[i] + y[i];
    }
}
