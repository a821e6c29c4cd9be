// Pass 3 of an exclusive prefix sum (tests/e2e_hpc.rs): item i adds its block's offset, the inclusive scan of the
// block sums less the block's own sum, to its block-local exclusive prefix.
//
// Bindings: 0 = incl (read, one cell per block), 1 = sums (read, one cell per block), 2 = out (read_write, one to
// one). Push constants: chunk, incl's, sums' and out's boxes.

struct Params {
    chunk: CelerBox,
    incl: CelerBox,
    sums: CelerBox,
    out: CelerBox,
}

@group(0) @binding(0) var<storage, read> incl: array<u32>;
@group(0) @binding(1) var<storage, read> sums: array<u32>;
@group(0) @binding(2) var<storage, read_write> out: array<u32>;
var<immediate> pc: Params;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let item = celer_item_1d(pc.chunk, gid);
    if (!celer_contains(pc.chunk, item)) {
        return;
    }
    let block = vec3<u32>(item.x / 64u, 0u, 0u);
    let offset = incl[celer_index(pc.incl, block)] - sums[celer_index(pc.sums, block)];
    let at = celer_index(pc.out, item);
    out[at] = out[at] + offset;
}
