// Kernels beyond a device's compute limits (tests/e2e_errors.rs): each compiles, but no device of the test
// machines can create its pipeline.
//
// - too_wide: 2048 invocations per workgroup (devices allow 1024 at most, maxComputeWorkGroupInvocations).
// - big_shared: 256 KiB of workgroup memory (devices allow 32 to 228 KiB, maxComputeSharedMemorySize).
//
// Bindings: 0 = out (write, one to one). Push constants: chunk, out's box.

struct Params {
    chunk: CelerBox,
    out: CelerBox,
}

@group(0) @binding(0) var<storage, read_write> out: array<u32>;
var<immediate> pc: Params;

var<workgroup> scratch: array<u32, 65536>;

@compute @workgroup_size(2048)
fn too_wide(@builtin(global_invocation_id) gid: vec3<u32>) {
    let item = celer_item_1d(pc.chunk, gid);
    if (celer_contains(pc.chunk, item)) {
        out[celer_index(pc.out, item)] = item.x;
    }
}

@compute @workgroup_size(64)
fn big_shared(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    scratch[lid * 1024u] = lid;
    workgroupBarrier();
    let item = celer_item_1d(pc.chunk, gid);
    if (celer_contains(pc.chunk, item)) {
        out[celer_index(pc.out, item)] = scratch[lid * 1024u];
    }
}
