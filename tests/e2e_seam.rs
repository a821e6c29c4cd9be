//! End to end, on real ranks: the seam between a WGSL kernel and its task, for kernels written in ways
//! `tests/kernel_checks.rs` does not reach (it needs no GPU), each checked against serial results.
//!
//! - `kernels/seam_probe.wgsl`'s `scaled`: a workgroup size and a factor given by `override` constants (with
//!   defaults), over an index space that is no multiple of the workgroup size; its `vs` is a vertex entry point,
//!   which `Kernel::wgsl` refuses naming the compute ones.
//! - `kernels/seam_scalars.wgsl`: two bindings and 80 bytes of scalars (a padded vec3, 12 f32, an i32, a vec2), 152
//!   bytes of parameters, read from a storage buffer; given by name and by position.
//! - `kernels/seam_i64.wgsl`: `array<i64>` bindings over `Buffer<i64>`, with values beyond 32 bits (the device
//!   feature `shaderInt64`, which lavapipe, NVIDIA's and AMD's drivers have).
//!
//! Run alone (one rank) or under `mpirun -n N`; `--check-bounds` runs the checked variants.

use std::process::ExitCode;

mod common;

use celer::{access, task, Error, Kernel, Queue};

/// The kernels of `kernels/` (seam_probe, seam_scalars and seam_i64 here).
#[allow(dead_code)] // kernels/ holds the kernels of several tests and examples
mod own_kernels {
    celer::include_kernels!();
}

fn e(x: impl std::fmt::Display) -> String {
    x.to_string()
}

/// Cells of the buffers: no multiple of 48 or 64, split over the ranks inside workgroups.
const N: usize = 301;

/// `scaled`: workgroups of `WG` (48) and the factor `FACTOR` (3), both overrides with defaults.
fn overrides(q: &Queue) -> Result<(), String> {
    let k = Kernel::wgsl(&own_kernels::SEAM_PROBE, "scaled").map_err(e)?;
    let out = q.buffer::<u32, 1>([N]).named("out");
    q.submit(task::parallel_for(&k, [N]).discard_write(&out, access::one_to_one()).name("scaled")).map_err(e)?;
    let got = q.fence(&out).map_err(e)?.wait().map_err(e)?;
    let want: Vec<u32> = (0..N as u32).map(|i| 3 * i).collect();
    if got != want {
        return Err(format!("scaled (workgroup size and factor by override) computed {got:?}"));
    }
    match Kernel::wgsl(&own_kernels::SEAM_PROBE, "vs") {
        Err(Error::NoEntryPoint { known, .. }) if known.contains("scaled") && !known.contains("vs") => Ok(()),
        Err(other) => Err(format!("the vertex entry point vs was refused otherwise: {other}")),
        Ok(_) => Err("Kernel::wgsl accepted the vertex entry point vs".into()),
    }
}

/// `seam_scalars`: 152 bytes of parameters, by name and by position.
fn many_scalars(q: &Queue) -> Result<(), String> {
    let k = Kernel::wgsl(&own_kernels::SEAM_SCALARS, "main").map_err(e)?;
    if own_kernels::SEAM_SCALARS.params_binding() != Some(3) {
        return Err(format!("seam_scalars' parameters are at {:?}", own_kernels::SEAM_SCALARS.params_binding()));
    }
    let inp = q.buffer_from(&(0..N).map(|i| (i % 5) as f32).collect::<Vec<_>>(), [N]).named("inp");
    let out = q.buffer::<f32, 1>([N]).named("out");
    let s: Vec<f32> = (0..12).map(|j| [0.0, 1.0][j % 2]).collect();
    let weighted: f32 = s.iter().enumerate().map(|(j, v)| (j + 1) as f32 * v).sum();
    let want: Vec<f32> = (0..N)
        .map(|i| {
            (i % 5) as f32 * 2.0 + 1.0 + 100.0 * 3.0 + 7.0 * 1000.0 + weighted * 10000.0 - 4.0 * 0.5 + 0.25 + 0.125
        })
        .collect();
    let names = ["s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9", "s10", "s11"];
    let mut named = task::parallel_for(&k, [N])
        .bind("inp")
        .read(&inp, access::one_to_one())
        .bind("out")
        .discard_write(&out, access::one_to_one())
        .scalar("w", [1.0f32, 1.0])
        .scalar("k", -4i32)
        .scalar("n", 7u32)
        .scalar("v", [2.0f32, 1.0, 3.0]);
    for (name, v) in names.iter().zip(&s) {
        named = named.scalar(name, *v);
    }
    q.submit(named.name("named")).map_err(e)?;
    let got = q.fence(&out).map_err(e)?.wait().map_err(e)?;
    if got != want {
        return Err(format!("seam_scalars by name computed {:?}, not {:?}", &got[..4], &want[..4]));
    }
    let mut positional = task::parallel_for(&k, [N])
        .read(&inp, access::one_to_one())
        .discard_write(&out, access::one_to_one())
        .scalar_value([2.0f32, 1.0, 3.0])
        .scalar_value(7u32);
    for v in &s {
        positional = positional.scalar_f32(*v);
    }
    q.submit(positional.scalar_i32(-4).scalar_value([1.0f32, 1.0]).name("positional")).map_err(e)?;
    let got = q.fence(&out).map_err(e)?.wait().map_err(e)?;
    if got != want {
        return Err(format!("seam_scalars by position computed {:?}, not {:?}", &got[..4], &want[..4]));
    }
    Ok(())
}

/// `seam_i64`: out = 2 * inp + 1 over values beyond 32 bits.
fn int64(q: &Queue) -> Result<(), String> {
    let k = Kernel::wgsl(&own_kernels::SEAM_I64, "main").map_err(e)?;
    let xs: Vec<i64> = (0..N as i64).map(|i| (i - 150) * 10_000_000_000).collect();
    let inp = q.buffer_from(&xs, [N]).named("inp");
    let out = q.buffer::<i64, 1>([N]).named("out");
    let t = task::parallel_for(&k, [N]).read(&inp, access::one_to_one()).discard_write(&out, access::one_to_one());
    q.submit(t.name("twice_plus_one")).map_err(e)?;
    let got = q.fence(&out).map_err(e)?.wait().map_err(e)?;
    let want: Vec<i64> = xs.iter().map(|x| 2 * x + 1).collect();
    if got != want {
        return Err(format!("seam_i64 computed {:?}, not {:?}", &got[..4], &want[..4]));
    }
    Ok(())
}

fn run(q: &Queue) -> Result<(), String> {
    overrides(q)?;
    many_scalars(q)?;
    int64(q)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--check-bounds") {
        std::env::set_var("CELER_CHECK_BOUNDS", "on");
    }
    celer::logging::init();
    common::run_on_every_rank("e2e_seam", "override constants, many scalars and i64 kernels match serial results", run)
}
