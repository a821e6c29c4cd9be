// One leapfrog (kick-drift) step of all-pairs gravity, in buffer (global) coordinates. Bodies are 4 floats each:
// positions (x, y, z, mass) and velocities (vx, vy, vz, unused); kernel item i is body i.
//   v_i += dt * sum_j m_j (x_j - x_i) / (|x_j - x_i|^2 + eps2)^(3/2);   x_i += dt * v_i
// Bindings: 0 = pos_in (read, all), 1 = vel (read-write, the chunk's bodies), 2 = pos_out (write, the chunk's bodies).
// Push constants: chunk, the three boxes, then n (u32), dt (f32), eps2 (f32).

struct Params {
    chunk: CelerBox,
    pos_in: CelerBox,
    vel: CelerBox,
    pos_out: CelerBox,
    n: u32,
    dt: f32,
    eps2: f32,
}

@group(0) @binding(0) var<storage, read> pos_in: array<f32>;
@group(0) @binding(1) var<storage, read_write> vel: array<f32>;
@group(0) @binding(2) var<storage, read_write> pos_out: array<f32>;
var<immediate> pc: Params;

fn body(i: u32) -> vec4<f32> {
    let k = celer_index(pc.pos_in, vec3<u32>(4u * i, 0u, 0u));
    return vec4<f32>(pos_in[k], pos_in[k + 1u], pos_in[k + 2u], pos_in[k + 3u]);
}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let item = celer_item_1d(pc.chunk, gid);
    if (!celer_contains(pc.chunk, item)) {
        return;
    }
    let i = item.x;
    let me = body(i);
    var acc = vec3<f32>(0.0, 0.0, 0.0);
    for (var j = 0u; j < pc.n; j = j + 1u) {
        let other = body(j);
        let d = other.xyz - me.xyz;
        let r2 = dot(d, d) + pc.eps2;
        acc = acc + other.w * d / (r2 * sqrt(r2));
    }
    let kv = celer_index(pc.vel, vec3<u32>(4u * i, 0u, 0u));
    let v = vec3<f32>(vel[kv], vel[kv + 1u], vel[kv + 2u]) + pc.dt * acc;
    vel[kv] = v.x;
    vel[kv + 1u] = v.y;
    vel[kv + 2u] = v.z;
    let x = me.xyz + pc.dt * v;
    let kp = celer_index(pc.pos_out, vec3<u32>(4u * i, 0u, 0u));
    pos_out[kp] = x.x;
    pos_out[kp + 1u] = x.y;
    pos_out[kp + 2u] = x.z;
    pos_out[kp + 3u] = me.w;
}
