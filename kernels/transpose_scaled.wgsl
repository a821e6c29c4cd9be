// dst[i, j] = src[j, i] * scale.
struct Params {
    chunk: CelerBox,
    src: CelerBox,
    dst: CelerBox,
    scale: f32,
}

@group(0) @binding(0) var<storage, read> src: array<f32>;
@group(0) @binding(1) var<storage, read_write> dst: array<f32>;
var<immediate> pc: Params;

@compute @workgroup_size(8, 8)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let item = celer_item_2d(pc.chunk, gid);
    if (!celer_contains(pc.chunk, item)) {
        return;
    }
    dst[celer_index(pc.dst, item)] = pc.scale * src[celer_index(pc.src, vec3<u32>(item.y, item.x, 0u))];
}
