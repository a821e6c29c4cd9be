// ---- celer prelude (celer-kernel-build: wgsl/prelude.wgsl) ------------------------------------
// Appended by celer-kernel-build to every kernel it compiles (after the kernel's own text, so naga
// diagnostics keep the kernel's line numbers); not a kernel itself. Names start with `celer_` or
// `Celer`. The conventions are those of celer_exec::gpu (exec/src/gpu.rs):
//
// - Accessor i of a dispatch is `@group(0) @binding(i)`, a `var<storage>` array holding the cells
//   of its allocation's box, row-major (dimension 0 slowest).
// - Push constants (`var<immediate>`): a struct whose fields are, in order, `chunk: CelerBox`, one
//   `CelerBox` per binding in binding order (its allocation's box; reduction buffers included), then
//   the kernel's own scalars (u32, i32 or f32, or vectors of them). celer's submit checks this
//   layout, and the scalars' count and types, against what the task gives. For example:
//       struct Params { chunk: CelerBox, src: CelerBox, dst: CelerBox, scale: f32 }
//       var<immediate> pc: Params;
// - Invocation ids map to buffer dimensions back to front, so `gid.x` runs along the fastest
//   dimension: 1D item = (gid.x), 2D = (gid.y, gid.x), 3D = (gid.z, gid.y, gid.x), each offset by
//   the chunk's start. Items are vec3<u32> in buffer dimension order: item.x is dimension 0.
//
// Kernels index buffers in global (buffer) coordinates:
//       let item = celer_item_2d(pc.chunk, gid);
//       if (!celer_contains(pc.chunk, item)) { return; }   // workgroups round the chunk up
//       dst[celer_index(pc.dst, item)] = pc.scale * src[celer_index(pc.src, item)];

// A box of buffer cells: its first cell and its extent per dimension, dimension 0 first.
// Six u32 fields, 24 bytes, 4-byte aligned, so boxes pack without padding in push constants.
struct CelerBox {
    offset0: u32,
    offset1: u32,
    offset2: u32,
    range0: u32,
    range1: u32,
    range2: u32,
}

// The first cell of `b`.
fn celer_offset(b: CelerBox) -> vec3<u32> {
    return vec3<u32>(b.offset0, b.offset1, b.offset2);
}

// The extent of `b` per dimension.
fn celer_range(b: CelerBox) -> vec3<u32> {
    return vec3<u32>(b.range0, b.range1, b.range2);
}

// The buffer cell that invocation `gid` of a 1D launch over `chunk` works on.
fn celer_item_1d(chunk: CelerBox, gid: vec3<u32>) -> vec3<u32> {
    return vec3<u32>(chunk.offset0 + gid.x, 0u, 0u);
}

// The buffer cell that invocation `gid` of a 2D launch over `chunk` works on.
fn celer_item_2d(chunk: CelerBox, gid: vec3<u32>) -> vec3<u32> {
    return vec3<u32>(chunk.offset0 + gid.y, chunk.offset1 + gid.x, 0u);
}

// The buffer cell that invocation `gid` of a 3D launch over `chunk` works on.
fn celer_item_3d(chunk: CelerBox, gid: vec3<u32>) -> vec3<u32> {
    return vec3<u32>(chunk.offset0 + gid.z, chunk.offset1 + gid.y, chunk.offset2 + gid.x);
}

// Whether cell `item` lies in box `b`. Use it with the chunk to skip the invocations of the
// rounded-up last workgroups, or with an accessor's box to guard a neighbour access.
fn celer_contains(b: CelerBox, item: vec3<u32>) -> bool {
    // Below the offset the subtraction wraps to a huge value, so one comparison covers both ends.
    return all((item - celer_offset(b)) < celer_range(b));
}

// The index of buffer cell `item` in the array bound for an accessor whose allocation holds box
// `alloc`: kernels index in buffer coordinates, this turns them into allocation coordinates.
// A cell outside `alloc` gives a meaningless index, which the bounds checks of build.rs clamp to
// the array; guard such accesses with celer_contains.
fn celer_index(alloc: CelerBox, item: vec3<u32>) -> u32 {
    let rel = item - celer_offset(alloc);
    return (rel.x * alloc.range1 + rel.y) * alloc.range2 + rel.z;
}

// ---- Global workgroup ids ------------------------------------------------------------------------
// `@builtin(workgroup_id)` and `@builtin(num_workgroups)` count within the dispatch of one chunk.
// These give workgroup `wid`'s index in the task's whole grid of workgroups, in buffer dimension
// order (x = dimension 0), the same on any number of ranks and devices. `size` is the entry point's
// `@workgroup_size(x, y, z)` as vec3<u32>(x, y, z) (y and z 1 where not given). Celer starts every
// chunk of such a kernel (one that takes `workgroup_id`) at a whole workgroup of the index space,
// so a workgroup's index is the chunk's first item divided by the workgroup size, plus `wid`: 0 for
// the first workgroup of an index space at offset 0, offset / size for one at an offset (as
// Celerity's nd_item::get_group() counts). The number of workgroups in the whole index space is not
// pushed: pass it as a scalar where the kernel needs it.
//       const WG = 64u;
//       @compute @workgroup_size(WG)
//       fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
//           let group = celer_group_1d(pc.chunk, wid, vec3<u32>(WG, 1u, 1u)).x;

// The global index of workgroup `wid` of a 1D launch over `chunk` (dimension 0 in .x).
fn celer_group_1d(chunk: CelerBox, wid: vec3<u32>, size: vec3<u32>) -> vec3<u32> {
    return vec3<u32>(chunk.offset0 / size.x + wid.x, 0u, 0u);
}

// The same for a 2D launch: dimension 0 (wid.y, workgroup size y) in .x, dimension 1 in .y.
fn celer_group_2d(chunk: CelerBox, wid: vec3<u32>, size: vec3<u32>) -> vec3<u32> {
    return vec3<u32>(chunk.offset0 / size.y + wid.y, chunk.offset1 / size.x + wid.x, 0u);
}

// The same for a 3D launch: dimension 0 (wid.z) in .x, dimension 1 (wid.y) in .y, dimension 2 in .z.
fn celer_group_3d(chunk: CelerBox, wid: vec3<u32>, size: vec3<u32>) -> vec3<u32> {
    return vec3<u32>(chunk.offset0 / size.z + wid.z, chunk.offset1 / size.y + wid.y, chunk.offset2 / size.x + wid.x);
}

// ---- Deterministic block reductions -------------------------------------------------------------
// A task's `.reduce(&buffer, op)` is deterministic when its kernel calls these: the result has the
// same bits on any number of ranks and devices and from run to run. Each workgroup is one block (a
// tile of the task's index space, aligned to its origin; celer splits chunks at whole workgroups):
// every invocation of the workgroup calls `celer_reduce_<op>_<type>(value, valid, lid)` once, in
// uniform control flow (no early `return` before it), with `valid` false for invocations outside
// the chunk (their value is ignored). It combines the workgroup's values in a fixed tree and returns
// the block's result to every invocation; one of them stores it into the reduction binding at
// `celer_block_Nd(pc.<binding>, wid)` (the runtime binds one cell per block there). celer then
// combines the blocks in a fixed binary tree over their numbers (row-major over the grid of
// blocks), on the host. `lid` is `@builtin(local_invocation_index)`, `wid` `@builtin(workgroup_id)`:
//       let s = celer_reduce_sum_f32(v, celer_contains(pc.chunk, item), lid);
//       if (lid == 0u) { total[celer_block_1d(pc.total, wid)] = s; }
// Workgroups of up to 256 invocations. No atomics in the kernel: the prelude's one atomic only
// counts the workgroup's invocations. The values of invalid invocations are the operation's
// identity (0, +/-infinity, the integer limits).

// The values of the workgroup's invocations as bits, then the fold's partial results. 256 cells:
// naga's SPIR-V zero-initialises workgroup memory at each workgroup's start (WGSL semantics), so
// the array is kept small; the build refuses a larger workgroup that calls a block reduction
// (celer-kernel-build's MAX_BLOCK_INVOCATIONS).
var<workgroup> celer_block_cells: array<u32, 256>;
// The number of invocations in the workgroup (the highest local index plus one).
var<workgroup> celer_block_count: atomic<u32>;

// Combines two values given as bits: `op` 0 = sum, 1 = min, 2 = max; `ty` 0 = f32, 1 = i32, 2 = u32.
// Min and max keep the first operand unless the second compares below (above) it, as on the host;
// integer sums wrap.
fn celer_block_op(op: u32, ty: u32, a: u32, b: u32) -> u32 {
    if (ty == 0u) {
        let x = bitcast<f32>(a);
        let y = bitcast<f32>(b);
        if (op == 0u) { return bitcast<u32>(x + y); }
        if (op == 1u) { return select(a, b, y < x); }
        return select(a, b, y > x);
    }
    if (ty == 1u) {
        let x = bitcast<i32>(a);
        let y = bitcast<i32>(b);
        if (op == 0u) { return bitcast<u32>(x + y); }
        if (op == 1u) { return select(a, b, y < x); }
        return select(a, b, y > x);
    }
    if (op == 0u) { return a + b; }
    if (op == 1u) { return select(a, b, b < a); }
    return select(a, b, b > a);
}

// The block's result, from invocation i's value `bits` (cell i) of the workgroup's n invocations:
// invocation k < 32 folds cells k, k + 32, k + 64, ... below n in that order, then every invocation
// folds those 32 (or n) results in order 0, 1, 2, ... The shape depends on the workgroup size only;
// three barriers, so it is cheap on CPU drivers too. Every invocation must call it, in uniform
// control flow.
fn celer_block_tree(op: u32, ty: u32, bits: u32, lid: u32) -> u32 {
    // A previous reduction of this workgroup has read its results before the cells are reused.
    workgroupBarrier();
    celer_block_cells[lid] = bits;
    atomicMax(&celer_block_count, lid + 1u);
    workgroupBarrier();
    let n = atomicLoad(&celer_block_count);
    if (lid < 32u) {
        var acc = bits;
        for (var i = lid + 32u; i < n; i = i + 32u) {
            acc = celer_block_op(op, ty, acc, celer_block_cells[i]);
        }
        celer_block_cells[lid] = acc;
    }
    workgroupBarrier();
    var result = celer_block_cells[0];
    for (var k = 1u; k < min(n, 32u); k = k + 1u) {
        result = celer_block_op(op, ty, result, celer_block_cells[k]);
    }
    return result;
}

// Sum of the workgroup's `v` where `valid` (0 where none is).
fn celer_reduce_sum_f32(v: f32, valid: bool, lid: u32) -> f32 {
    return bitcast<f32>(celer_block_tree(0u, 0u, bitcast<u32>(select(0.0, v, valid)), lid));
}

// Minimum of the workgroup's `v` where `valid` (+infinity where none is).
fn celer_reduce_min_f32(v: f32, valid: bool, lid: u32) -> f32 {
    return bitcast<f32>(celer_block_tree(1u, 0u, select(0x7f800000u, bitcast<u32>(v), valid), lid));
}

// Maximum of the workgroup's `v` where `valid` (-infinity where none is).
fn celer_reduce_max_f32(v: f32, valid: bool, lid: u32) -> f32 {
    return bitcast<f32>(celer_block_tree(2u, 0u, select(0xff800000u, bitcast<u32>(v), valid), lid));
}

// Sum of the workgroup's `v` where `valid` (wrapping; 0 where none is).
fn celer_reduce_sum_i32(v: i32, valid: bool, lid: u32) -> i32 {
    return bitcast<i32>(celer_block_tree(0u, 1u, bitcast<u32>(select(0i, v, valid)), lid));
}

// Minimum of the workgroup's `v` where `valid` (i32 max where none is).
fn celer_reduce_min_i32(v: i32, valid: bool, lid: u32) -> i32 {
    return bitcast<i32>(celer_block_tree(1u, 1u, bitcast<u32>(select(2147483647i, v, valid)), lid));
}

// Maximum of the workgroup's `v` where `valid` (i32 min where none is).
fn celer_reduce_max_i32(v: i32, valid: bool, lid: u32) -> i32 {
    return bitcast<i32>(celer_block_tree(2u, 1u, select(0x80000000u, bitcast<u32>(v), valid), lid));
}

// Sum of the workgroup's `v` where `valid` (wrapping; 0 where none is).
fn celer_reduce_sum_u32(v: u32, valid: bool, lid: u32) -> u32 {
    return celer_block_tree(0u, 2u, select(0u, v, valid), lid);
}

// Minimum of the workgroup's `v` where `valid` (u32 max where none is).
fn celer_reduce_min_u32(v: u32, valid: bool, lid: u32) -> u32 {
    return celer_block_tree(1u, 2u, select(0xffffffffu, v, valid), lid);
}

// Maximum of the workgroup's `v` where `valid` (0 where none is).
fn celer_reduce_max_u32(v: u32, valid: bool, lid: u32) -> u32 {
    return celer_block_tree(2u, 2u, select(0u, v, valid), lid);
}

// The cell of a 1D kernel's block `wid` (`@builtin(workgroup_id)`) in the reduction binding whose
// push-constant box is `part`. That box holds the binding's range of cells (one per workgroup of the
// launch) and, as its offset, the first workgroup of this dispatch in the launch: a launch of more
// workgroups than the device takes at once runs as several dispatches (celer_exec's Access::blocks).
fn celer_block_1d(part: CelerBox, wid: vec3<u32>) -> u32 {
    return part.offset0 + wid.x;
}

// The same for a 2D kernel (blocks row-major, dimension 0 = wid.y).
fn celer_block_2d(part: CelerBox, wid: vec3<u32>) -> u32 {
    return (part.offset0 + wid.y) * part.range1 + part.offset1 + wid.x;
}

// The same for a 3D kernel (dimension 0 = wid.z).
fn celer_block_3d(part: CelerBox, wid: vec3<u32>) -> u32 {
    return ((part.offset0 + wid.z) * part.range1 + part.offset1 + wid.y) * part.range2 + part.offset2 + wid.x;
}
