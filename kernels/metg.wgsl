// One timestep of a Task Bench-style task graph (examples/metg.rs), in buffer (global) coordinates.
//
// The launch is 2D: dimension 0 runs over points (one Task Bench task each), dimension 1 over the
// GPU threads that do a point's compute. Every thread runs `iters` iterations of 8 independent
// fused multiply-adds (16 FLOP per iteration) on its own cell of `scratch`. Thread 0 of each point
// also checks that the point's inputs came from the right predecessors: `prev[j]` must hold the
// tag of point j at the previous step for every dependency j of the pattern; the point then writes
// its own tag to `next`, or POISON when a check failed (poison spreads to every later dependent,
// so the host finds it in the final tags).
//
// Tags: point p at step t has tag t * width + p + 1 (step 0 is the initial buffer).
// Patterns (same numbering as examples/metg.rs): 0 trivial (no dependencies), 1 no_comm (itself),
// 2 stencil_1d (p-1, p, p+1), 3 fft (p and p xor 2^((t-1) mod log2 width)), 4 tree (p / 2),
// 5 nearest (the `radix` points centred on p), 6 spread (`radix` points spaced width / radix
// apart from p, wrapping). Dependencies outside [0, width) are dropped.
//
// Bindings: 0 = prev (read: the pattern's dependencies), 1 = next (write: the chunk's points),
// 2 = scratch (read-write, one to one).
// Push constants: chunk, the three boxes, then iters, step, width, pattern, radix, log2 width (u32).

struct Params {
    chunk: CelerBox,
    prev: CelerBox,
    next: CelerBox,
    scratch: CelerBox,
    iters: u32,
    step: u32,
    width: u32,
    pattern: u32,
    radix: u32,
    log2_width: u32,
}

@group(0) @binding(0) var<storage, read> prev: array<u32>;
@group(0) @binding(1) var<storage, read_write> next: array<u32>;
@group(0) @binding(2) var<storage, read_write> scratch: array<f32>;
var<immediate> pc: Params;

const POISON: u32 = 0xffffffffu;

// Whether point j's tag from the previous step is what it should be (j outside the width counts as fine).
fn input_ok(j: i32) -> bool {
    if (j < 0 || u32(j) >= pc.width) {
        return true;
    }
    let item = vec3<u32>(u32(j), 0u, 0u);
    if (!celer_contains(pc.prev, item)) {
        // The runtime did not provide the dependency: a scheduling bug this harness exists to catch.
        return false;
    }
    return prev[celer_index(pc.prev, item)] == (pc.step - 1u) * pc.width + u32(j) + 1u;
}

fn inputs_ok(p: u32) -> bool {
    let q = i32(p);
    switch pc.pattern {
        case 0u: {
            return true;
        }
        case 1u: {
            return input_ok(q);
        }
        case 2u: {
            return input_ok(q - 1) && input_ok(q) && input_ok(q + 1);
        }
        case 3u: {
            if (pc.log2_width == 0u) {
                return input_ok(q);
            }
            let stride = 1u << ((pc.step - 1u) % pc.log2_width);
            return input_ok(q) && input_ok(i32(p ^ stride));
        }
        case 4u: {
            return input_ok(q / 2);
        }
        case 5u: {
            var ok = true;
            let lo = q - i32(pc.radix / 2u);
            for (var k = 0; k < i32(pc.radix); k++) {
                ok = ok && input_ok(lo + k);
            }
            return ok;
        }
        default: {
            var ok = true;
            let gap = max(pc.width / max(pc.radix, 1u), 1u);
            for (var k = 0u; k < min(pc.radix, pc.width); k++) {
                ok = ok && input_ok(i32((p + k * gap) % pc.width));
            }
            return ok;
        }
    }
}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let item = celer_item_2d(pc.chunk, gid);
    if (!celer_contains(pc.chunk, item)) {
        return;
    }
    let s = celer_index(pc.scratch, item);
    let seed = scratch[s];
    var x0 = seed;
    var x1 = seed + 0.1;
    var x2 = seed + 0.2;
    var x3 = seed + 0.3;
    var x4 = seed + 0.4;
    var x5 = seed + 0.5;
    var x6 = seed + 0.6;
    var x7 = seed + 0.7;
    // Four iterations per trip, then the rest, as nvcc unrolls the CUDA baseline's loop: one iteration per trip left
    // the loop's own increment, compare and branch beside every 8 FMAs, and the kernel at 92 % of CUDA's FLOP/s
    // (97.4 % unrolled; H100, docs/PERFORMANCE.md).
    let quads = pc.iters / 4u;
    for (var i = 0u; i < quads; i++) {
        x0 = fma(x0, 0.999, 0.001);
        x1 = fma(x1, 0.999, 0.001);
        x2 = fma(x2, 0.999, 0.001);
        x3 = fma(x3, 0.999, 0.001);
        x4 = fma(x4, 0.999, 0.001);
        x5 = fma(x5, 0.999, 0.001);
        x6 = fma(x6, 0.999, 0.001);
        x7 = fma(x7, 0.999, 0.001);
        x0 = fma(x0, 0.999, 0.001);
        x1 = fma(x1, 0.999, 0.001);
        x2 = fma(x2, 0.999, 0.001);
        x3 = fma(x3, 0.999, 0.001);
        x4 = fma(x4, 0.999, 0.001);
        x5 = fma(x5, 0.999, 0.001);
        x6 = fma(x6, 0.999, 0.001);
        x7 = fma(x7, 0.999, 0.001);
        x0 = fma(x0, 0.999, 0.001);
        x1 = fma(x1, 0.999, 0.001);
        x2 = fma(x2, 0.999, 0.001);
        x3 = fma(x3, 0.999, 0.001);
        x4 = fma(x4, 0.999, 0.001);
        x5 = fma(x5, 0.999, 0.001);
        x6 = fma(x6, 0.999, 0.001);
        x7 = fma(x7, 0.999, 0.001);
        x0 = fma(x0, 0.999, 0.001);
        x1 = fma(x1, 0.999, 0.001);
        x2 = fma(x2, 0.999, 0.001);
        x3 = fma(x3, 0.999, 0.001);
        x4 = fma(x4, 0.999, 0.001);
        x5 = fma(x5, 0.999, 0.001);
        x6 = fma(x6, 0.999, 0.001);
        x7 = fma(x7, 0.999, 0.001);
    }
    for (var i = quads * 4u; i < pc.iters; i++) {
        x0 = fma(x0, 0.999, 0.001);
        x1 = fma(x1, 0.999, 0.001);
        x2 = fma(x2, 0.999, 0.001);
        x3 = fma(x3, 0.999, 0.001);
        x4 = fma(x4, 0.999, 0.001);
        x5 = fma(x5, 0.999, 0.001);
        x6 = fma(x6, 0.999, 0.001);
        x7 = fma(x7, 0.999, 0.001);
    }
    // Stays in [0, 1.7]: each chain converges to 1.
    scratch[s] = (x0 + x1 + x2 + x3 + x4 + x5 + x6 + x7) * 0.125;
    if (item.y == 0u) {
        let p = item.x;
        var tag = POISON;
        if (inputs_ok(p)) {
            tag = pc.step * pc.width + p + 1u;
        }
        next[celer_index(pc.next, vec3<u32>(p, 0u, 0u))] = tag;
    }
}
