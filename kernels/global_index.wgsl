// A kernel indexing its bindings with the item's coordinates, as a CUDA port indexes its arrays with the global
// thread index: `dst[item.x] = 2.0 * src[item.x]`. A binding holds the buffer's allocation on the node, which starts
// at the origin only where the node touches the whole buffer, so submit refuses it unless both buffers are bound
// through all(). Used by tests/kernel_checks.rs.
//
// Bindings: 0 = src (read), 1 = dst (written).
// Push constants: chunk, src's box, dst's box.

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
    if (!celer_contains(pc.chunk, item)) {
        return;
    }
    dst[item.x] = 2.0 * src[item.x];
}
