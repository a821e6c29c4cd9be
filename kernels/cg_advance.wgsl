// Conjugate gradient (examples/cg.rs): the solution and the next search direction from the current one,
// x += alpha p, then p = r + beta p.
//
// Bindings: 0 = x (read_write), 1 = r (read), 2 = p (read_write), all one to one. Push constants: chunk, the three
// boxes, then alpha and beta.

struct Params {
    chunk: CelerBox,
    x: CelerBox,
    r: CelerBox,
    p: CelerBox,
    alpha: f32,
    beta: f32,
}

@group(0) @binding(0) var<storage, read_write> x: array<f32>;
@group(0) @binding(1) var<storage, read> r: array<f32>;
@group(0) @binding(2) var<storage, read_write> p: array<f32>;
var<immediate> pc: Params;

@compute @workgroup_size(16, 16)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let item = celer_item_2d(pc.chunk, gid);
    if (!celer_contains(pc.chunk, item)) {
        return;
    }
    let k = celer_index(pc.p, item);
    let old = p[k];
    let kx = celer_index(pc.x, item);
    x[kx] = x[kx] + pc.alpha * old;
    p[k] = r[celer_index(pc.r, item)] + pc.beta * old;
}
