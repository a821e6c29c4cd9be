// out[i] = inp[i] moved by its own position times dt, each cell a `Body` struct of f32 fields (a buffer of 16-byte
// elements whose Element::SCALAR is f32): tests/kernel_checks.rs binds struct elements of another scalar type to it.

struct Body {
    pos: vec3<f32>,
    mass: f32,
}

struct Params {
    chunk: CelerBox,
    inp: CelerBox,
    out: CelerBox,
    dt: f32,
}

@group(0) @binding(0) var<storage, read> inp: array<Body>;
@group(0) @binding(1) var<storage, read_write> out: array<Body>;
var<immediate> pc: Params;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let item = celer_item_1d(pc.chunk, gid);
    if (celer_contains(pc.chunk, item)) {
        let b = inp[celer_index(pc.inp, item)];
        out[celer_index(pc.out, item)] = Body(b.pos * (1.0 + pc.dt), b.mass);
    }
}
