// One step of a particle code (tests/e2e_hpc.rs): each particle (x, y, vx, vy) drifts by dt in the unit square,
// reflecting at the walls; it adds one to the count of its cell (of ncells x ncells) in its workgroup's row of
// `counts` (atomics: chunks start at whole workgroups, so a row belongs to one chunk) and its kinetic energy to a
// deterministic block sum.
//
// Bindings: 0 = parts (read_write, one to one), 1 = counts (read_write, row item / 256), 2 = energy (a reduction,
// one cell per block). Push constants: chunk, the three boxes, dt, ncells.

struct Params {
    chunk: CelerBox,
    parts: CelerBox,
    counts: CelerBox,
    energy: CelerBox,
    dt: f32,
    ncells: u32,
}

@group(0) @binding(0) var<storage, read_write> parts: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read_write> counts: array<atomic<u32>>;
@group(0) @binding(2) var<storage, read_write> energy: array<f32>;
var<immediate> pc: Params;

fn reflect1(p: f32, v: f32) -> vec2<f32> {
    if (p < 0.0) {
        return vec2<f32>(-p, -v);
    }
    if (p >= 1.0) {
        return vec2<f32>(2.0 - p, -v);
    }
    return vec2<f32>(p, v);
}

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(local_invocation_index) lid: u32,
        @builtin(workgroup_id) wid: vec3<u32>) {
    let item = celer_item_1d(pc.chunk, gid);
    let valid = celer_contains(pc.chunk, item);
    var e = 0.0;
    if (valid) {
        let at = celer_index(pc.parts, item);
        let p = parts[at];
        let rx = reflect1(p.x + p.z * pc.dt, p.z);
        let ry = reflect1(p.y + p.w * pc.dt, p.w);
        parts[at] = vec4<f32>(rx.x, ry.x, rx.y, ry.y);
        let cx = min(u32(rx.x * f32(pc.ncells)), pc.ncells - 1u);
        let cy = min(u32(ry.x * f32(pc.ncells)), pc.ncells - 1u);
        atomicAdd(&counts[celer_index(pc.counts, vec3<u32>(item.x / 256u, cy * pc.ncells + cx, 0u))], 1u);
        e = 0.5 * (rx.y * rx.y + ry.y * ry.y);
    }
    let s = celer_reduce_sum_f32(e, valid, lid);
    if (lid == 0u) {
        energy[celer_block_1d(pc.energy, wid)] = s;
    }
}
