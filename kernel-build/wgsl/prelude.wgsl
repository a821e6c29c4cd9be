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
