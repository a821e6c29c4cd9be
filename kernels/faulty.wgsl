// Deliberately faulty 1D kernels for the reliability tests (tests/e2e_errors.rs): each breaks a rule celer cannot
// see from the task's declaration alone.
//
// Bindings: 0 = src (read, one to one), 1 = dst (write, one to one). Push constants: chunk, src's box, dst's box.
//
// - shift_left: dst[i] = src[i + 1], guarded only by the *allocation's* box, which on a rank that touched more of
//   src is larger than what one_to_one declared: the read of i + 1 at the chunk's end stays inside the allocation
//   but outside the declared region (CELER_CHECK_BOUNDS catches it; without it, the value read may be stale).
// - write_next: dst[i + 1] = src[i], unguarded: the last item writes one past the chunk (and the buffer).
// Both step to their neighbour's cell by `pc.chunk.range1` (1: a 1D box's unused extents are 1), a value only the
// run knows, which submit's static check of the offsets a kernel indexes at (`EntryPointDesc::item_offsets`, which
// follows constant steps such as `vec3<u32>(item.x + 1u, item.y, item.z)`) cannot see: they stand for what only the
// run sees.
// - copy_guarded (not faulty): dst[i] = 3 * src[i] where dst's box holds i, reading src only where its box holds i:
//   right for accessors whose range mapper gives some chunks no cells (their box is then empty, so no item is
//   inside it).
// - spin: never finishes (waits for a value no one writes), like a kernel whose loop never ends.

struct Params {
    chunk: CelerBox,
    src: CelerBox,
    dst: CelerBox,
}

// Atomic only so that `spin`'s loop must reload it (and cannot be proven endless and removed).
@group(0) @binding(0) var<storage, read_write> src: array<atomic<u32>>;
@group(0) @binding(1) var<storage, read_write> dst: array<u32>;
var<immediate> pc: Params;

@compute @workgroup_size(64)
fn shift_left(@builtin(global_invocation_id) gid: vec3<u32>) {
    let item = celer_item_1d(pc.chunk, gid);
    if (!celer_contains(pc.chunk, item)) {
        return;
    }
    let next = vec3<u32>(item.x + pc.chunk.range1, item.y, item.z);
    var v = 0u;
    if (celer_contains(pc.src, next)) {
        v = atomicLoad(&src[celer_index(pc.src, next)]);
    }
    dst[celer_index(pc.dst, item)] = v;
}

@compute @workgroup_size(64)
fn write_next(@builtin(global_invocation_id) gid: vec3<u32>) {
    let item = celer_item_1d(pc.chunk, gid);
    if (!celer_contains(pc.chunk, item)) {
        return;
    }
    dst[celer_index(pc.dst, vec3<u32>(item.x + pc.chunk.range1, item.y, item.z))] = atomicLoad(&src[celer_index(pc.src, item)]);
}

@compute @workgroup_size(64)
fn spin(@builtin(global_invocation_id) gid: vec3<u32>) {
    // Counts in src[0] (an atomic read-modify-write, which no compiler may drop) and stops only if, right after
    // the count wraps, src[0] holds 7: which nothing ever writes, but no compiler can know. On a GPU it never
    // ends. lavapipe (llvmpipe) stops an invocation after 65535 iterations of a loop; there each invocation adds
    // 65535 times to one contended word, so a launch of 65536 items per rank takes minutes.
    loop {
        loop {
            loop {
                if (atomicAdd(&src[0], 1u) == 0xffffffffu && atomicLoad(&src[0]) == 7u) {
                    let item = celer_item_1d(pc.chunk, gid);
                    if (celer_contains(pc.chunk, item)) {
                        dst[celer_index(pc.dst, item)] = 1u;
                    }
                    return;
                }
            }
        }
    }
}

@compute @workgroup_size(64)
fn copy_guarded(@builtin(global_invocation_id) gid: vec3<u32>) {
    let item = celer_item_1d(pc.chunk, gid);
    if (!celer_contains(pc.chunk, item) || !celer_contains(pc.dst, item)) {
        return;
    }
    var v = 0u;
    if (celer_contains(pc.src, item)) {
        v = atomicLoad(&src[celer_index(pc.src, item)]);
    }
    dst[celer_index(pc.dst, item)] = 3u * v;
}
