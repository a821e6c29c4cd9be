// One step of the 2D wave equation (explicit, second order), in buffer (global) coordinates:
//   next[i, j] = 2 cur[i, j] - prev[i, j] + c2 * (sum of the four axis neighbours of cur - 4 cur[i, j])
// A missing neighbour counts as cur[i, j] (a reflecting border). Used by examples/wave_sim.rs.
//
// Bindings: 0 = prev (read, one to one), 1 = cur (read, neighbourhood 1 along axes), 2 = next (write, one to one).
// Push constants: chunk, the three boxes, then c2 = (c dt / dx)^2 (f32).

struct Params {
    chunk: CelerBox,
    prev: CelerBox,
    cur: CelerBox,
    next: CelerBox,
    c2: f32,
}

@group(0) @binding(0) var<storage, read> prev: array<f32>;
@group(0) @binding(1) var<storage, read> cur: array<f32>;
@group(0) @binding(2) var<storage, read_write> next: array<f32>;
var<immediate> pc: Params;

fn at(item: vec3<u32>, fallback: f32) -> f32 {
    if (celer_contains(pc.cur, item)) {
        return cur[celer_index(pc.cur, item)];
    }
    return fallback;
}

@compute @workgroup_size(8, 8)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let item = celer_item_2d(pc.chunk, gid);
    if (!celer_contains(pc.chunk, item)) {
        return;
    }
    let c = at(item, 0.0);
    let n = at(item - vec3<u32>(1u, 0u, 0u), c) + at(item + vec3<u32>(1u, 0u, 0u), c)
        + at(item - vec3<u32>(0u, 1u, 0u), c) + at(item + vec3<u32>(0u, 1u, 0u), c);
    next[celer_index(pc.next, item)] = 2.0 * c - prev[celer_index(pc.prev, item)] + pc.c2 * (n - 4.0 * c);
}
