// ---- celer prelude, f64 part (celer-kernel-build: wgsl/prelude_f64.wgsl) ----------------------
// Appended after wgsl/prelude.wgsl only to kernel files that call one of its celer_reduce_*_f64
// (outside `//` comments): a module that declares an f64 needs the device feature shaderFloat64
// (SPIR-V capability Float64), which other kernels must not start requiring. The reflection
// records that the file needs it; celer's submit refuses such a kernel on a device without it.
//
// The same contract and the same fixed tree as the 32-bit block reductions of wgsl/prelude.wgsl
// (every invocation calls it once, in uniform control flow; `lid` is local_invocation_index;
// workgroups of up to 256 invocations), over cells of their own: 2 KiB of workgroup memory.

var<workgroup> celer_block_cells_f64: array<f64, 256>;

// Combines two values: `op` 0 = sum, 1 = min, 2 = max. Min and max keep `x` unless `y` compares
// below (above) it, as on the host.
fn celer_block_op_f64(op: u32, x: f64, y: f64) -> f64 {
    if (op == 0u) { return x + y; }
    if (op == 1u) { return select(x, y, y < x); }
    return select(x, y, y > x);
}

// celer_block_tree of wgsl/prelude.wgsl over f64 cells: invocation k < 32 folds cells k, k + 32,
// k + 64, ... below n in that order, then every invocation folds those 32 (or n) results in order.
fn celer_block_tree_f64(op: u32, v: f64, lid: u32) -> f64 {
    // A previous reduction of this workgroup has read its results before the cells are reused.
    workgroupBarrier();
    celer_block_cells_f64[lid] = v;
    atomicMax(&celer_block_count, lid + 1u);
    workgroupBarrier();
    let n = atomicLoad(&celer_block_count);
    if (lid < 32u) {
        var acc = v;
        for (var i = lid + 32u; i < n; i = i + 32u) {
            acc = celer_block_op_f64(op, acc, celer_block_cells_f64[i]);
        }
        celer_block_cells_f64[lid] = acc;
    }
    workgroupBarrier();
    var result = celer_block_cells_f64[0];
    for (var k = 1u; k < min(n, 32u); k = k + 1u) {
        result = celer_block_op_f64(op, result, celer_block_cells_f64[k]);
    }
    return result;
}

// The f64 infinity whose f32 bits are `bits` (0x7f800000 or 0xff800000): WGSL has no infinite
// literal and no bitcast to f64, and a function argument is no constant expression, so the
// conversion happens at run time (IEEE conversion keeps infinities).
fn celer_infinity_f64(bits: u32) -> f64 {
    return f64(bitcast<f32>(bits));
}

// Sum of the workgroup's `v` where `valid` (0 where none is).
fn celer_reduce_sum_f64(v: f64, valid: bool, lid: u32) -> f64 {
    return celer_block_tree_f64(0u, select(f64(0.0), v, valid), lid);
}

// Minimum of the workgroup's `v` where `valid` (+infinity where none is).
fn celer_reduce_min_f64(v: f64, valid: bool, lid: u32) -> f64 {
    return celer_block_tree_f64(1u, select(celer_infinity_f64(0x7f800000u), v, valid), lid);
}

// Maximum of the workgroup's `v` where `valid` (-infinity where none is).
fn celer_reduce_max_f64(v: f64, valid: bool, lid: u32) -> f64 {
    return celer_block_tree_f64(2u, select(celer_infinity_f64(0xff800000u), v, valid), lid);
}
