// dst[i] = src[2i] + src[2i + 1] (src[2i + 1] counts 0 past the end of src, whose length is n).
struct Params {
    chunk: CelerBox,
    src: CelerBox,
    dst: CelerBox,
    n: u32,
}

@group(0) @binding(0) var<storage, read> src: array<i32>;
@group(0) @binding(1) var<storage, read_write> dst: array<i32>;
var<immediate> pc: Params;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let item = celer_item_1d(pc.chunk, gid);
    if (!celer_contains(pc.chunk, item)) {
        return;
    }
    let l = 2u * item.x;
    var s = src[celer_index(pc.src, vec3<u32>(l, 0u, 0u))];
    if (l + 1u < pc.n) {
        s = s + src[celer_index(pc.src, vec3<u32>(l + 1u, 0u, 0u))];
    }
    dst[celer_index(pc.dst, item)] = s;
}
