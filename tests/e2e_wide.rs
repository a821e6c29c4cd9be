//! End to end, on real ranks: kernels whose parameters (the chunk, a box per binding, the scalars) take more than
//! the 128 bytes of push constants every Vulkan device offers, which `celer-kernel-build` moves to a read-only storage
//! buffer and the GPU layer fills per dispatch from its parameter ring, checked against serial results computed here.
//!
//! - `kernels/wide_sum.wgsl` (1D): eight inputs (one read with a halo) and an output, three `f32` scalars given by
//!   name, 252 bytes; stored, then accumulated with other scalars, several times (so many dispatches share the ring).
//! - `kernels/wide_2d.wgsl` (2D): six inputs (one read with a halo along dimension 0) and an output, two scalars,
//!   200 bytes; split along dimension 0 and as a grid (`split_2d`).
//! - `kernels/sum4.wgsl` (five bindings, 144 bytes: beyond lavapipe's push constants).
//! - `kernels/wide30.wgsl` (30 bindings: with the parameter buffer and a checked kernel's bounds record, the 32
//!   storage buffers lavapipe binds in one dispatch) runs; `kernels/wide31.wgsl` (31) runs where the devices bind
//!   more, and `submit` refuses it naming `maxPerStageDescriptorStorageBuffers` where they do not (lavapipe).
//!
//! A dispatch reading another's words, or the kernel reading its parameters at other offsets than the push-constant
//! block's, gives other sums. Run alone (one rank) or under `mpirun -n N`, with `--devices N` for N devices per rank
//! and `--check-bounds` for checked kernels (whose bounds record sits between the bindings and the parameters);
//! `./x test` does all three.

use std::process::ExitCode;

mod common;

use celer::{access, task, Kernel, Queue};

/// The kernels of `kernels/` (wide_sum, wide_2d, sum4, wide30 and wide31 here).
#[allow(dead_code)] // kernels/ holds the kernels of several tests and examples
mod own_kernels {
    celer::include_kernels!();
}

fn e(x: impl std::fmt::Display) -> String {
    x.to_string()
}

/// Cells of the 1D buffers: several workgroups of 64 per rank.
const N: usize = 300;

/// Input `k` of `wide_sum` at cell `i`: small integers, so every sum is exact in f32.
fn x(k: usize, i: usize) -> f32 {
    ((i * (k + 3) + k) % 7) as f32
}

/// `wide_sum`'s value at cell `i` with scalars `a`, `b`, `c`, computed serially.
fn wide_value(i: usize, (a, b, c): (f32, f32, f32)) -> f32 {
    let mut s = x(0, i);
    if i + 1 < N {
        s += x(0, i + 1);
    }
    for k in 1..8 {
        s += (k + 1) as f32 * x(k, i);
    }
    a * s + b * i as f32 + c
}

/// `wide_sum::main` once, then `wide_sum::accumulate` three times with other scalars, against a serial loop.
fn wide_1d(q: &Queue) -> Result<(), String> {
    let store = Kernel::wgsl(&own_kernels::WIDE_SUM, "main").map_err(e)?;
    let add = Kernel::wgsl(&own_kernels::WIDE_SUM, "accumulate").map_err(e)?;
    assert_eq!(own_kernels::WIDE_SUM.params_binding(), Some(10), "nine bindings, the bounds record, the parameters");
    let xs: Vec<_> = (0..8)
        .map(|k| q.buffer_from(&(0..N).map(|i| x(k, i)).collect::<Vec<_>>(), [N]).named(format!("x{k}")))
        .collect();
    let out = q.buffer_from(&vec![0.0f32; N], [N]).named("out");
    let steps = [(2.0, 1.0, -3.0), (-1.0, 0.0, 0.5), (1.0, -2.0, 4.0), (3.0, 0.0, -0.5)];
    let mut want = vec![0.0f32; N];
    for (s, &scalars) in steps.iter().enumerate() {
        let (a, b, c) = scalars;
        let mut t = task::parallel_for(if s == 0 { &store } else { &add }, [N])
            .read(&xs[0], access::neighborhood([1]))
            .name(if s == 0 { "wide_store" } else { "wide_accumulate" });
        for xk in &xs[1..] {
            t = t.read(xk, access::one_to_one());
        }
        t = if s == 0 { t.discard_write(&out, access::one_to_one()) } else { t.read_write(&out, access::one_to_one()) };
        q.submit(t.scalar("a", a).scalar("b", b).scalar("c", c)).map_err(e)?;
        for (i, w) in want.iter_mut().enumerate() {
            let v = wide_value(i, scalars);
            *w = if s == 0 { v } else { *w + v };
        }
    }
    let got = q.fence(&out).map_err(e)?.wait().map_err(e)?;
    match (0..N).find(|&i| got[i] != want[i]) {
        None => Ok(()),
        Some(i) => Err(format!(
            "wide_sum on {} rank(s): cell {i} holds {}, the serial result is {}",
            q.ranks(),
            got[i],
            want[i]
        )),
    }
}

/// Rows and columns of the 2D buffers.
const ROWS: usize = 37;
const COLS: usize = 29;

/// Input `k` of `wide_2d` at cell `[i, j]`.
fn y(k: usize, i: usize, j: usize) -> f32 {
    ((i * 7 + j * 3 + k) % 5) as f32
}

/// `wide_2d::main` with scalars 3 and -1, split along dimension 0 or as a grid, against a serial loop.
fn wide_2d(q: &Queue, grid: bool) -> Result<(), String> {
    let kernel = Kernel::wgsl(&own_kernels::WIDE_2D, "main").map_err(e)?;
    let ys: Vec<_> = (0..6)
        .map(|k| {
            let cells: Vec<f32> = (0..ROWS * COLS).map(|c| y(k, c / COLS, c % COLS)).collect();
            q.buffer_from(&cells, [ROWS, COLS]).named(format!("y{k}"))
        })
        .collect();
    let out = q.buffer::<f32, 2>([ROWS, COLS]).named("out_2d");
    let mut t = task::parallel_for(&kernel, [ROWS, COLS])
        .read(&ys[0], access::neighborhood_along_axes([1, 0]))
        .name(if grid { "wide_2d_grid" } else { "wide_2d" });
    for yk in &ys[1..] {
        t = t.read(yk, access::one_to_one());
    }
    t = t.discard_write(&out, access::one_to_one()).scalar_f32(3.0).scalar_f32(-1.0);
    q.submit(if grid { t.split_2d() } else { t }).map_err(e)?;
    let got = q.fence(&out).map_err(e)?.wait().map_err(e)?;
    for i in 0..ROWS {
        for j in 0..COLS {
            let mut v = y(0, i, j) + if i + 1 < ROWS { y(0, i + 1, j) } else { 0.0 };
            for k in 1..6 {
                v += (k + 1) as f32 * y(k, i, j);
            }
            let want = 3.0 * v - 1.0;
            if got[i * COLS + j] != want {
                return Err(format!(
                    "wide_2d (split_2d: {grid}) on {} rank(s): cell [{i}, {j}] holds {}, the serial result is {want}",
                    q.ranks(),
                    got[i * COLS + j]
                ));
            }
        }
    }
    Ok(())
}

/// `sum4` (five bindings, 144 bytes): out = a + b + c + d.
fn sum4(q: &Queue) -> Result<(), String> {
    let k = Kernel::wgsl(&own_kernels::SUM4, "main").map_err(e)?;
    let inputs: Vec<_> = (0..4)
        .map(|i| q.buffer_from(&(0..N).map(|c| (c % 3 + i) as f32).collect::<Vec<_>>(), [N]).named(format!("in{i}")))
        .collect();
    let out = q.buffer::<f32, 1>([N]).named("sum4_out");
    let mut t = task::parallel_for(&k, [N]).name("five_buffers");
    for b in &inputs {
        t = t.read(b, access::one_to_one());
    }
    q.submit(t.discard_write(&out, access::one_to_one())).map_err(e)?;
    let got = q.fence(&out).map_err(e)?.wait().map_err(e)?;
    match (0..N).find(|&c| got[c] != (4 * (c % 3) + 6) as f32) {
        None => Ok(()),
        Some(c) => Err(format!("sum4: cell {c} holds {}, expected {}", got[c], 4 * (c % 3) + 6)),
    }
}

/// `wide30` (30 bindings: 31 storage buffers, 32 when checked, what lavapipe binds in one dispatch) must run, and
/// `wide31` (one binding more) either runs where the devices bind that many, or `submit` refuses it naming the
/// limit (lavapipe), rather than the run aborting on the runtime thread when Vulkan refuses its pipeline layout.
fn storage_buffer_limit(q: &Queue) -> Result<(), String> {
    let input = |k: usize, c: usize| ((c * (k + 1) + k) % 4) as f32;
    let ins: Vec<_> = (0..30)
        .map(|k| q.buffer_from(&(0..N).map(|c| input(k, c)).collect::<Vec<_>>(), [N]).named(format!("in{k}")))
        .collect();
    for (source, inputs) in [(&own_kernels::WIDE30, 29), (&own_kernels::WIDE31, 30)] {
        let kernel = Kernel::wgsl(source, "main").map_err(e)?;
        let out = q.buffer_from(&vec![1.0f32; N], [N]).named(format!("out{}", inputs + 1));
        let mut t = task::parallel_for(&kernel, [N]).name(format!("wide{}", inputs + 1));
        for b in &ins[..inputs] {
            t = t.read(b, access::one_to_one());
        }
        match q.submit(t.read_write(&out, access::one_to_one())) {
            Ok(_) => {}
            Err(err) if inputs == 30 && err.to_string().contains("maxPerStageDescriptorStorageBuffers") => {
                let text = err.to_string();
                let want = "kernel wide31::main has 31 bindings, and its dispatch binds 33 storage buffers";
                if !text.contains(want) || !text.contains("wide31\"") {
                    return Err(format!("wide31 was refused, but the error does not say `{want}`: {text}"));
                }
                continue;
            }
            Err(err) => return Err(format!("wide{}: submit refused it: {err}", inputs + 1)),
        }
        let got = q.fence(&out).map_err(e)?.wait().map_err(e)?;
        let want = |c: usize| 1.0 + (0..inputs).map(|k| (k + 1) as f32 * input(k, c)).sum::<f32>();
        if let Some(c) = (0..N).find(|&c| got[c] != want(c)) {
            return Err(format!("wide{}: cell {c} holds {}, the serial result is {}", inputs + 1, got[c], want(c)));
        }
    }
    Ok(())
}

fn run(q: &Queue) -> Result<(), String> {
    wide_1d(q)?;
    wide_2d(q, false)?;
    wide_2d(q, true)?;
    sum4(q)?;
    storage_buffer_limit(q)
}

fn main() -> ExitCode {
    // `--devices N`: every rank drives N devices (CELER_DEVICES); the results must not change.
    let args: Vec<String> = std::env::args().collect();
    common::env_from_arg(&args, "--devices", "CELER_DEVICES");
    // `--check-bounds`: the checked variants run (CELER_CHECK_BOUNDS): every access must lie in what its mapper
    // declared, and their parameters sit one binding after the bounds record.
    if args.iter().any(|a| a == "--check-bounds") {
        std::env::set_var("CELER_CHECK_BOUNDS", "on");
    }
    celer::logging::init();
    common::run_on_every_rank("e2e_wide", "kernels with their parameters in storage match the serial results", run)
}
