// dst[i] = src[i] over a 1D chunk (examples/io_overlap.rs takes its snapshots with it).
//
// Bindings: 0 = src (read, one to one), 1 = dst (write, one to one).

struct Params {
    chunk: CelerBox,
    src: CelerBox,
    dst: CelerBox,
}

@group(0) @binding(0) var<storage, read> src: array<f32>;
@group(0) @binding(1) var<storage, read_write> dst: array<f32>;
var<immediate> pc: Params;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let item = celer_item_1d(pc.chunk, gid);
    if (celer_contains(pc.chunk, item)) {
        dst[celer_index(pc.dst, item)] = src[celer_index(pc.src, item)];
    }
}
