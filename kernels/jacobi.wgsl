// One Jacobi sweep (examples/jacobi.rs) for Laplace's equation on an n x n grid: interior cells become the mean of their four axis
// neighbours, boundary cells keep their value. Bindings: 0 = src (read, neighbourhood 1 along axes), 1 = dst (write).
struct Params {
    chunk: CelerBox,
    src: CelerBox,
    dst: CelerBox,
    n: u32,
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
    let n = pc.n;
    if (item.x == 0u || item.y == 0u || item.x == n - 1u || item.y == n - 1u) {
        dst[celer_index(pc.dst, item)] = src[celer_index(pc.src, item)];
        return;
    }
    let s = src[celer_index(pc.src, item - vec3<u32>(1u, 0u, 0u))] + src[celer_index(pc.src, item + vec3<u32>(1u, 0u, 0u))]
        + src[celer_index(pc.src, item - vec3<u32>(0u, 1u, 0u))] + src[celer_index(pc.src, item + vec3<u32>(0u, 1u, 0u))];
    dst[celer_index(pc.dst, item)] = 0.25 * s;
}
