//! End to end, on real ranks: a kernel whose push constants hold vectors (`s: vec2<f32>`, `k: vec3<i32>`, a `u32`
//! in the 4 bytes after `k`, `mask: vec4<u32>`, with WGSL's padding before `s` and `k`) gets the same values given
//! by name (`.scalar("s", [0.5f32, 0.25])`), by position as one value per vector (`.scalar_value`) and by position
//! word by word (`.scalar_f32`, `.scalars`), and computes what a serial loop computes. Run alone (one rank) or
//! under `mpirun -n N`; `./x test` does both.

use std::process::ExitCode;

mod common;

/// The kernels of `kernels/` (several tests and examples share them).
#[allow(dead_code)]
mod own_kernels {
    celer::include_kernels!();
}

use celer::{access, task, Kernel, Queue};

const N: usize = 64;

/// What `vec_params.wgsl` computes for cell `i`, serially.
fn serial(i: u32, s: [f32; 2], k: [i32; 3], t: u32, mask: [u32; 4]) -> f32 {
    let ks = k[0] + 10 * k[1] + 100 * k[2];
    let m = ((i & mask[0]) | mask[1]) + 7 * mask[2] + 13 * mask[3];
    s[0] * i as f32 + s[1] + ks as f32 + 1000.0 * t as f32 + 10000.0 * m as f32
}

fn run(q: &Queue) -> Result<(), String> {
    let e = |e: celer::TaskError| e.to_string();
    let w = |e: celer::Error| e.to_string();
    let kernel = Kernel::wgsl(&own_kernels::VEC_PARAMS, "main").map_err(w)?;
    let (s, k, t, mask) = ([0.5f32, 0.25], [1i32, -2, 3], 7u32, [0x0fu32, 0x10, 2, 3]);
    let want: Vec<f32> = (0..N as u32).map(|i| serial(i, s, k, t, mask)).collect();
    let ways = ["by name", "by position, one value per vector", "by position, word by word"];
    for way in ways {
        let out = q.buffer::<f32, 1>([N]).named("out");
        let b = task::parallel_for(&kernel, [N]).name(way).discard_write(&out, access::one_to_one());
        let b = match way {
            "by name" => b.scalar("mask", mask).scalar("s", s).scalar("t", t).scalar("k", k),
            "by position, one value per vector" => b.scalar_value(s).scalar_value(k).scalar_value(t).scalar_value(mask),
            _ => {
                let b = b.scalar_f32(s[0]).scalar_f32(s[1]);
                k.iter().fold(b, |b, &v| b.scalar_i32(v)).scalars(&[t]).scalars(&mask)
            }
        };
        q.submit(b).map_err(e)?;
        let got = q.fence(&out).map_err(e)?.wait().map_err(w)?;
        if let Some(i) = (0..N).find(|&i| got[i] != want[i]) {
            return Err(format!("scalars given {way}: cell {i} is {}, the serial result {}", got[i], want[i]));
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    common::run_on_every_rank("e2e_scalars", "vector push constants by name and by position verified", run)
}
