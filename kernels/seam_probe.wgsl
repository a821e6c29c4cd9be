// Probes of the seam between a kernel and its task (tests/e2e_seam.rs).
//
// - scaled: workgroup size and a factor given by `override` constants with defaults.
// - vs: a vertex entry point beside the compute ones, which no task can run.
//
// Bindings: 0 = out (write, one to one). Push constants: chunk, out's box.

struct Params {
    chunk: CelerBox,
    out: CelerBox,
}

@group(0) @binding(0) var<storage, read_write> out: array<u32>;
var<immediate> pc: Params;

override WG: u32 = 48u;
override FACTOR: u32 = 3u;

@compute @workgroup_size(WG)
fn scaled(@builtin(global_invocation_id) gid: vec3<u32>) {
    let item = celer_item_1d(pc.chunk, gid);
    if (celer_contains(pc.chunk, item)) {
        out[celer_index(pc.out, item)] = item.x * FACTOR;
    }
}

@vertex
fn vs() -> @builtin(position) vec4<f32> {
    return vec4<f32>(0.0);
}
