// i32 kernels of tests/e2e_horizons.rs (wrapping arithmetic, so a serial loop in Rust gives the same bits).

struct StencilParams {
    chunk: CelerBox,
    src: CelerBox,
    coef: CelerBox,
    dst: CelerBox,
    k: i32,
    n: u32,
}

@group(0) @binding(0) var<storage, read> src: array<i32>;
@group(0) @binding(1) var<storage, read> coef: array<i32>;
@group(0) @binding(2) var<storage, read_write> dst: array<i32>;
var<immediate> sp: StencilParams;

fn load(i: u32) -> i32 {
    if (i < sp.n) {
        return src[celer_index(sp.src, vec3<u32>(i, 0u, 0u))];
    }
    return 0;
}

// dst[i] = src[i - 1] + 3 src[i] - src[i + 1] + k coef[i] (cells outside the buffer count 0).
@compute @workgroup_size(64)
fn stencil(@builtin(global_invocation_id) gid: vec3<u32>) {
    let item = celer_item_1d(sp.chunk, gid);
    if (!celer_contains(sp.chunk, item)) {
        return;
    }
    let i = item.x;
    dst[celer_index(sp.dst, item)] = load(i - 1u) + 3 * load(i) - load(i + 1u) + sp.k * coef[celer_index(sp.coef, item)];
}
