// One step of 1D heat with a diffusivity per cell (examples/io_overlap.rs):
//     v[i] = u[i] + kappa[i] ((u[i - 1] - u[i]) + (u[i + 1] - u[i])),
// the rod's ends insulated (a missing neighbour counts as the cell itself).
//
// Bindings: 0 = u (read, neighbourhood 1), 1 = kappa (read, one to one), 2 = v (write, one to one).

struct Params {
    chunk: CelerBox,
    u: CelerBox,
    kappa: CelerBox,
    v: CelerBox,
    n: u32,
}

@group(0) @binding(0) var<storage, read> u: array<f32>;
@group(0) @binding(1) var<storage, read> kappa: array<f32>;
@group(0) @binding(2) var<storage, read_write> v: array<f32>;
var<immediate> pc: Params;

fn at(i: u32) -> f32 {
    return u[celer_index(pc.u, vec3<u32>(i, 0u, 0u))];
}

@compute @workgroup_size(64)
fn step(@builtin(global_invocation_id) gid: vec3<u32>) {
    let item = celer_item_1d(pc.chunk, gid);
    if (!celer_contains(pc.chunk, item)) {
        return;
    }
    let i = item.x;
    let c = at(i);
    var l = c;
    if (i > 0u) {
        l = at(i - 1u);
    }
    var r = c;
    if (i + 1u < pc.n) {
        r = at(i + 1u);
    }
    v[celer_index(pc.v, item)] = c + kappa[celer_index(pc.kappa, item)] * ((l - c) + (r - c));
}
