// A kernel whose push-constant struct skips its binding's box (`scale` sits where the CelerBox of `data` belongs):
// tests/kernel_checks.rs checks that submit refuses it. Not used by any working program.

struct Params {
    chunk: CelerBox,
    scale: f32,
}

@group(0) @binding(0) var<storage, read_write> data: array<f32>;
var<immediate> pc: Params;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let item = celer_item_1d(pc.chunk, gid);
    if (celer_contains(pc.chunk, item)) {
        data[item.x] = data[item.x] * pc.scale;
    }
}
