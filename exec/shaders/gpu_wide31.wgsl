// out[i] += 1 in0[i] + 2 in1[i] + ... + 30 in29[i] over a 1D chunk: 31 bindings, 768 bytes of parameters (in
// storage), so its checked variant binds 33 storage buffers, one more than lavapipe binds in one dispatch
// (maxPerStageDescriptorStorageBuffers 32): exec/tests/gpu.rs loads that variant to see the device refuse its
// pipeline layout, an error that celer's submit checks keep from the runtime. (A copy of kernels/wide31.wgsl.)

struct Params {
    chunk: CelerBox,
    in0: CelerBox,
    in1: CelerBox,
    in2: CelerBox,
    in3: CelerBox,
    in4: CelerBox,
    in5: CelerBox,
    in6: CelerBox,
    in7: CelerBox,
    in8: CelerBox,
    in9: CelerBox,
    in10: CelerBox,
    in11: CelerBox,
    in12: CelerBox,
    in13: CelerBox,
    in14: CelerBox,
    in15: CelerBox,
    in16: CelerBox,
    in17: CelerBox,
    in18: CelerBox,
    in19: CelerBox,
    in20: CelerBox,
    in21: CelerBox,
    in22: CelerBox,
    in23: CelerBox,
    in24: CelerBox,
    in25: CelerBox,
    in26: CelerBox,
    in27: CelerBox,
    in28: CelerBox,
    in29: CelerBox,
    out: CelerBox,
}

@group(0) @binding(0) var<storage, read> in0: array<f32>;
@group(0) @binding(1) var<storage, read> in1: array<f32>;
@group(0) @binding(2) var<storage, read> in2: array<f32>;
@group(0) @binding(3) var<storage, read> in3: array<f32>;
@group(0) @binding(4) var<storage, read> in4: array<f32>;
@group(0) @binding(5) var<storage, read> in5: array<f32>;
@group(0) @binding(6) var<storage, read> in6: array<f32>;
@group(0) @binding(7) var<storage, read> in7: array<f32>;
@group(0) @binding(8) var<storage, read> in8: array<f32>;
@group(0) @binding(9) var<storage, read> in9: array<f32>;
@group(0) @binding(10) var<storage, read> in10: array<f32>;
@group(0) @binding(11) var<storage, read> in11: array<f32>;
@group(0) @binding(12) var<storage, read> in12: array<f32>;
@group(0) @binding(13) var<storage, read> in13: array<f32>;
@group(0) @binding(14) var<storage, read> in14: array<f32>;
@group(0) @binding(15) var<storage, read> in15: array<f32>;
@group(0) @binding(16) var<storage, read> in16: array<f32>;
@group(0) @binding(17) var<storage, read> in17: array<f32>;
@group(0) @binding(18) var<storage, read> in18: array<f32>;
@group(0) @binding(19) var<storage, read> in19: array<f32>;
@group(0) @binding(20) var<storage, read> in20: array<f32>;
@group(0) @binding(21) var<storage, read> in21: array<f32>;
@group(0) @binding(22) var<storage, read> in22: array<f32>;
@group(0) @binding(23) var<storage, read> in23: array<f32>;
@group(0) @binding(24) var<storage, read> in24: array<f32>;
@group(0) @binding(25) var<storage, read> in25: array<f32>;
@group(0) @binding(26) var<storage, read> in26: array<f32>;
@group(0) @binding(27) var<storage, read> in27: array<f32>;
@group(0) @binding(28) var<storage, read> in28: array<f32>;
@group(0) @binding(29) var<storage, read> in29: array<f32>;
@group(0) @binding(30) var<storage, read_write> out: array<f32>;
var<immediate> pc: Params;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let item = celer_item_1d(pc.chunk, gid);
    if (!celer_contains(pc.chunk, item)) { return; }
    let o = celer_index(pc.out, item);
    var s = out[o];
    s = s + 1.0 * in0[celer_index(pc.in0, item)];
    s = s + 2.0 * in1[celer_index(pc.in1, item)];
    s = s + 3.0 * in2[celer_index(pc.in2, item)];
    s = s + 4.0 * in3[celer_index(pc.in3, item)];
    s = s + 5.0 * in4[celer_index(pc.in4, item)];
    s = s + 6.0 * in5[celer_index(pc.in5, item)];
    s = s + 7.0 * in6[celer_index(pc.in6, item)];
    s = s + 8.0 * in7[celer_index(pc.in7, item)];
    s = s + 9.0 * in8[celer_index(pc.in8, item)];
    s = s + 10.0 * in9[celer_index(pc.in9, item)];
    s = s + 11.0 * in10[celer_index(pc.in10, item)];
    s = s + 12.0 * in11[celer_index(pc.in11, item)];
    s = s + 13.0 * in12[celer_index(pc.in12, item)];
    s = s + 14.0 * in13[celer_index(pc.in13, item)];
    s = s + 15.0 * in14[celer_index(pc.in14, item)];
    s = s + 16.0 * in15[celer_index(pc.in15, item)];
    s = s + 17.0 * in16[celer_index(pc.in16, item)];
    s = s + 18.0 * in17[celer_index(pc.in17, item)];
    s = s + 19.0 * in18[celer_index(pc.in18, item)];
    s = s + 20.0 * in19[celer_index(pc.in19, item)];
    s = s + 21.0 * in20[celer_index(pc.in20, item)];
    s = s + 22.0 * in21[celer_index(pc.in21, item)];
    s = s + 23.0 * in22[celer_index(pc.in22, item)];
    s = s + 24.0 * in23[celer_index(pc.in23, item)];
    s = s + 25.0 * in24[celer_index(pc.in24, item)];
    s = s + 26.0 * in25[celer_index(pc.in25, item)];
    s = s + 27.0 * in26[celer_index(pc.in26, item)];
    s = s + 28.0 * in27[celer_index(pc.in27, item)];
    s = s + 29.0 * in28[celer_index(pc.in28, item)];
    s = s + 30.0 * in29[celer_index(pc.in29, item)];
    out[o] = s;
}
