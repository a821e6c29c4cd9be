// Image filters on a 2D f32 image, in buffer (global) coordinates; pixels outside the image repeat the nearest edge.
//   blur:    a (2r+1)^2 Gaussian (sigma = r / 2, weights normalised) — read src with neighbourhood r
//   sharpen: 5 p - (the four axis neighbours)                        — read src with neighbourhood 1 along axes
// Bindings: 0 = src (read), 1 = dst (write, one to one).
// Push constants: chunk, src's box, dst's box, then r, the image's height and width (u32).

struct Params {
    chunk: CelerBox,
    src: CelerBox,
    dst: CelerBox,
    r: u32,
    h: u32,
    w: u32,
}

@group(0) @binding(0) var<storage, read> src: array<f32>;
@group(0) @binding(1) var<storage, read_write> dst: array<f32>;
var<immediate> pc: Params;

// The pixel at (i + di, j + dj), clamped to the image.
fn px(item: vec3<u32>, di: i32, dj: i32) -> f32 {
    let i = u32(clamp(i32(item.x) + di, 0, i32(pc.h) - 1));
    let j = u32(clamp(i32(item.y) + dj, 0, i32(pc.w) - 1));
    return src[celer_index(pc.src, vec3<u32>(i, j, 0u))];
}

@compute @workgroup_size(8, 8)
fn blur(@builtin(global_invocation_id) gid: vec3<u32>) {
    let item = celer_item_2d(pc.chunk, gid);
    if (!celer_contains(pc.chunk, item)) {
        return;
    }
    let r = i32(pc.r);
    let s2 = 2.0 * (f32(r) * 0.5) * (f32(r) * 0.5);
    var sum = 0.0;
    var wsum = 0.0;
    for (var di = -r; di <= r; di = di + 1) {
        for (var dj = -r; dj <= r; dj = dj + 1) {
            let w = exp(-f32(di * di + dj * dj) / s2);
            sum = sum + w * px(item, di, dj);
            wsum = wsum + w;
        }
    }
    dst[celer_index(pc.dst, item)] = sum / wsum;
}

@compute @workgroup_size(8, 8)
fn sharpen(@builtin(global_invocation_id) gid: vec3<u32>) {
    let item = celer_item_2d(pc.chunk, gid);
    if (!celer_contains(pc.chunk, item)) {
        return;
    }
    let n = px(item, -1, 0) + px(item, 1, 0) + px(item, 0, -1) + px(item, 0, 1);
    dst[celer_index(pc.dst, item)] = 5.0 * px(item, 0, 0) - n;
}
