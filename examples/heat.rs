//! The 2D heat equation, explicit in time: a 5-point stencil on a grid split over every rank (and its GPU), with
//! halo rows exchanged between neighbouring ranks each step. Verifies the final field against a serial reference
//! and prints the time per step.
//!
//! Shows: buffers from host data, a WGSL kernel in buffer coordinates (`exec/shaders/heat_2d.wgsl`), a
//! neighbourhood read and a one-to-one write, a 2D split, and a fence that returns the field to every rank.
//!
//! ```text
//! cargo run --release --example heat -- [--size 256] [--steps 100] [--no-verify]
//! mpirun -n 2 target/release/examples/heat --size 512
//! ```

use std::time::Instant;

use celer::{access, kernels, task, Kernel, Queue};

fn serial(init: &[f32], n: usize, steps: usize, alpha: f32) -> Vec<f32> {
    let mut u = init.to_vec();
    let mut v = vec![0.0; n * n];
    for _ in 0..steps {
        for i in 0..n {
            for j in 0..n {
                let c = u[i * n + j];
                let s = if i > 0 { u[(i - 1) * n + j] } else { c }
                    + if i + 1 < n { u[(i + 1) * n + j] } else { c }
                    + if j > 0 { u[i * n + j - 1] } else { c }
                    + if j + 1 < n { u[i * n + j + 1] } else { c };
                v[i * n + j] = c + alpha * (s - 4.0 * c);
            }
        }
        std::mem::swap(&mut u, &mut v);
    }
    u
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // celer's rank-prefixed logger, at the level of CELER_LOG (celer installs none unless asked).
    celer::logging::init();
    let (mut n, mut steps, mut verify) = (if cfg!(debug_assertions) { 64 } else { 256 }, 100usize, true);
    let args = <Args as clap::Parser>::parse();
    if let Some(v) = args.size {
        n = v.parse()?;
    }
    if let Some(v) = args.steps {
        steps = v.parse()?;
    }
    if args.no_verify {
        verify = false;
    }
    let alpha = 0.2f32;
    let q = Queue::new()?;
    // A hot square in the middle of a cold plate.
    let hot = |i: usize| i.abs_diff(n / 2) < n / 8;
    let init: Vec<f32> = (0..n * n).map(|k| if hot(k / n) && hot(k % n) { 100.0 } else { 0.0 }).collect();
    let heat = Kernel::wgsl(&kernels::HEAT_2D, "main")?;
    let mut u = q.buffer_from(&init, [n, n]).named("u");
    let mut v = q.buffer::<f32, 2>([n, n]).named("v");
    // One time step: read u as a "+" stencil, write v, then the two swap roles.
    let mut step = || -> Result<(), celer::TaskError> {
        q.submit(
            task::parallel_for(&heat, [n, n])
                .read(&u, access::neighborhood_along_axes([1, 1]))
                .discard_write(&v, access::one_to_one())
                .scalar_f32(alpha)
                .split_2d(),
        )?;
        std::mem::swap(&mut u, &mut v);
        Ok(())
    };
    // Warm-up: the first dispatch compiles the pipeline; keep that out of the timing.
    let warm_up = 2.min(steps);
    for _ in 0..warm_up {
        step()?;
    }
    // Every rank starts the clock together (a barrier), so one rank's late start-up is not counted.
    q.barrier();
    let start = Instant::now();
    for _ in warm_up..steps {
        step()?;
    }
    q.barrier();
    let elapsed = start.elapsed();
    let fence_start = Instant::now();
    let field = q.fence(&u)?.wait()?;
    let fence = fence_start.elapsed();
    let (rank, ranks) = (q.rank(), q.ranks());
    let total: f64 = field.iter().map(|&x| x as f64).sum();
    if rank == 0 {
        println!(
            "heat: {n}x{n} grid, {steps} steps on {ranks} rank(s): {:.1} µs per step (after {warm_up} warm-up steps; \
             {:.3} s); gathering the field on every rank took {:.3} s; total heat {total:.3}",
            elapsed.as_secs_f64() * 1e6 / (steps - warm_up).max(1) as f64,
            elapsed.as_secs_f64(),
            fence.as_secs_f64(),
        );
    }
    if let Some(stats) = q.stats() {
        println!("heat: {stats}");
    }
    if verify {
        let want = serial(&init, n, steps, alpha);
        let worst = field.iter().zip(&want).map(|(a, b)| (a - b).abs() / b.abs().max(1.0)).fold(0.0f32, f32::max);
        if worst > 1e-4 {
            eprintln!("heat: rank {rank}: MISMATCH: largest relative difference from the serial reference {worst:e}");
            std::process::exit(1);
        }
        println!("heat: rank {rank}: verified against the serial reference (largest relative difference {worst:.1e})");
    }
    Ok(())
}

/// The 2D heat equation, explicit in time.
#[derive(clap::Parser)]
struct Args {
    /// Grid size: N x N cells (default 64 in debug builds, 256 in release).
    #[arg(long, value_name = "N")]
    size: Option<String>,
    /// Time steps (default 100).
    #[arg(long, value_name = "N")]
    steps: Option<String>,
    /// Skip the check against the serial reference.
    #[arg(long)]
    no_verify: bool,
}
