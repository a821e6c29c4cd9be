// A kernel indexing one binding with another's box, as a porter writes `let i = …; out[i] = in[i]`: `dst` is
// indexed with `celer_index(pc.src, item)`. Each binding holds its buffer's allocation on the rank, whose box differs
// between buffers (a halo read), so the index lands on another cell of `dst`. Used by tests/kernel_checks.rs.
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
    let i = celer_index(pc.src, item);
    dst[i] = 2.0 * src[i];
}
