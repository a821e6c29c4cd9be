// C = A · B for row-major f32 matrices, one output cell per invocation, in buffer (global) coordinates:
//   c[i, j] = sum over k of a[i, k] * b[k, j]
// Bindings: 0 = a (read, rows of the chunk: slice along dimension 1), 1 = b (read, all), 2 = c (write, one to one).
// Push constants: chunk, a's box, b's box, c's box, then the inner dimension n (u32).

struct Params {
    chunk: CelerBox,
    a: CelerBox,
    b: CelerBox,
    c: CelerBox,
    n: u32,
}

@group(0) @binding(0) var<storage, read> a: array<f32>;
@group(0) @binding(1) var<storage, read> b: array<f32>;
@group(0) @binding(2) var<storage, read_write> c: array<f32>;
var<immediate> pc: Params;

@compute @workgroup_size(8, 8)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let item = celer_item_2d(pc.chunk, gid);
    if (!celer_contains(pc.chunk, item)) {
        return;
    }
    var acc = 0.0;
    for (var k = 0u; k < pc.n; k = k + 1u) {
        acc = acc + a[celer_index(pc.a, vec3<u32>(item.x, k, 0u))] * b[celer_index(pc.b, vec3<u32>(k, item.y, 0u))];
    }
    c[celer_index(pc.c, item)] = acc;
}
