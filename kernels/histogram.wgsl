// A histogram by atomics, as a program would write one: item i adds one to the bin of its value in its block's row
// of `bins` (`block` items a block, one row of `nbins` bins each). Chunks cut at whole blocks (the task's
// granularity) write disjoint rows, and the rows sum to the histogram (tests/e2e_accumulate.rs).

struct Params {
    chunk: CelerBox,
    data: CelerBox,
    bins: CelerBox,
    block: u32,
    nbins: u32,
}

@group(0) @binding(0) var<storage, read> data: array<u32>;
@group(0) @binding(1) var<storage, read_write> bins: array<atomic<u32>>;
var<immediate> pc: Params;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let item = celer_item_1d(pc.chunk, gid);
    if (celer_contains(pc.chunk, item)) {
        let v = data[celer_index(pc.data, item)];
        atomicAdd(&bins[celer_index(pc.bins, vec3<u32>(item.x / pc.block, v % pc.nbins, 0u))], 1u);
    }
}
