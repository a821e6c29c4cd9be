//! The 2D wave equation: a drop falls into a square pond. Three buffers (the field at the previous, current and next
//! time step) rotate every step; each step reads the current field as a "+" stencil, so halo rows travel between
//! neighbouring ranks. Verifies the final field against a serial reference, writes it as a picture (PNG)
//! and prints where the time went on every rank.
//!
//! Shows: three-buffer rotation, a kernel with three accessors and a scalar, a 2D split, a fence that returns the
//! field to every rank, the runtime's per-rank statistics, and with `--every K` a host task on rank 0 that writes
//! a frame every K steps (it reads the whole field, which travels to rank 0 for it).
//!
//! ```text
//! cargo run --release --example wave_sim -- [--size 512] [--steps 300] [--warmup 3] [--out out/wave_sim.png]
//!     [--every K] [--no-verify]
//! mpirun -n 2 target/release/examples/wave_sim
//! ```

use std::time::Instant;

use celer::{access, kernels, task, Kernel, Queue};

/// Courant number squared: (c dt / dx)^2, stable below 0.5 in 2D.
const C2: f32 = 0.25;

fn serial(init: &[f32], n: usize, steps: usize) -> Vec<f32> {
    let (mut prev, mut cur) = (init.to_vec(), init.to_vec());
    let mut next = vec![0.0f32; n * n];
    for _ in 0..steps {
        for i in 0..n {
            for j in 0..n {
                let c = cur[i * n + j];
                let s = if i > 0 { cur[(i - 1) * n + j] } else { c }
                    + if i + 1 < n { cur[(i + 1) * n + j] } else { c }
                    + if j > 0 { cur[i * n + j - 1] } else { c }
                    + if j + 1 < n { cur[i * n + j + 1] } else { c };
                next[i * n + j] = 2.0 * c - prev[i * n + j] + C2 * (s - 4.0 * c);
            }
        }
        // prev ← cur, cur ← next, next ← (old prev, overwritten next step).
        std::mem::swap(&mut prev, &mut cur);
        std::mem::swap(&mut cur, &mut next);
    }
    cur
}

/// Writes the field as an RGB PNG: blue below zero, red above, white at rest.
fn write_png(path: &str, field: &[f32], n: usize) -> Result<(), Box<dyn std::error::Error>> {
    if let Some(dir) = std::path::Path::new(path).parent() {
        std::fs::create_dir_all(dir)?;
    }
    let peak = field.iter().fold(1e-6f32, |m, v| m.max(v.abs()));
    let mut rgb = Vec::with_capacity(field.len() * 3);
    for &v in field {
        let t = (v / peak).clamp(-1.0, 1.0);
        let fade = |x: f32| (255.0 * (1.0 - x.abs())) as u8;
        rgb.extend_from_slice(&if t >= 0.0 { [255, fade(t), fade(t)] } else { [fade(t), fade(t), 255] });
    }
    let mut encoder = png::Encoder::new(std::io::BufWriter::new(std::fs::File::create(path)?), n as u32, n as u32);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.write_header()?.write_image_data(&rgb)?;
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // celer's rank-prefixed logger, at the level of CELER_LOG (celer installs none unless asked).
    celer::logging::init();
    let mut n = if cfg!(debug_assertions) { 64 } else { 512 };
    let mut steps = 300usize;
    let mut out_path = Some(String::from("out/wave_sim.png"));
    let mut verify = true;
    let mut every = 0usize;
    // Untimed steps: the first compiles the kernel, the first three give each buffer each of its three roles (so
    // allocations reach their final size); GPUs also need a while under load to reach full clocks.
    let mut warm_up = 3usize;
    let args = <Args as clap::Parser>::parse();
    if let Some(v) = args.size {
        n = v.parse()?;
    }
    if let Some(v) = args.steps {
        steps = v.parse()?;
    }
    if let Some(v) = args.out {
        out_path = Some(v);
    }
    if args.no_picture {
        out_path = None;
    }
    if args.no_verify {
        verify = false;
    }
    if let Some(v) = args.every {
        every = v.parse()?;
    }
    if let Some(v) = args.warmup {
        warm_up = v.parse()?;
    }
    let q = Queue::new()?;
    // A Gaussian drop, off centre so the picture is not symmetric.
    let (ci, cj, w) = (n as f32 * 0.4, n as f32 * 0.55, n as f32 / 20.0);
    let init: Vec<f32> = (0..n * n)
        .map(|k| {
            let (di, dj) = ((k / n) as f32 - ci, (k % n) as f32 - cj);
            (-(di * di + dj * dj) / (w * w)).exp()
        })
        .collect();
    let wave = Kernel::wgsl(&kernels::WAVE, "main")?;
    let mut prev = q.buffer_from(&init, [n, n]).named("u_prev");
    let mut cur = q.buffer_from(&init, [n, n]).named("u");
    let mut next = q.buffer::<f32, 2>([n, n]).named("u_next");
    // The warm-up steps run untimed; the clock starts when every rank has finished them (a barrier, so one rank's
    // late start-up does not count as step time) and stops when every rank has finished.
    let mut timed = 0;
    let mut start = Instant::now();
    for step in 0..warm_up + steps {
        if step == warm_up {
            q.barrier();
            start = Instant::now();
        }
        if step >= warm_up {
            timed += 1;
        }
        q.submit(
            task::parallel_for(&wave, [n, n])
                .read(&prev, access::one_to_one())
                .read(&cur, access::neighborhood_along_axes([1, 1]))
                .discard_write(&next, access::one_to_one())
                .scalar_f32(C2)
                .split_2d()
                .name("wave_step"),
        )?;
        std::mem::swap(&mut prev, &mut cur);
        std::mem::swap(&mut cur, &mut next);
        if every > 0 && (step + 1) % every == 0 {
            let frame = format!("out/wave_sim_{:05}.png", step + 1);
            q.submit(task::host_once().read(&cur, access::all()).name("write_frame").run(move |ctx| {
                if let Err(e) = write_png(&frame, ctx.data::<f32>(0), n) {
                    eprintln!("wave_sim: could not write {frame}: {e}");
                }
            }))?;
        }
    }
    q.barrier();
    let elapsed = start.elapsed();
    let field = q.fence(&cur)?.wait()?;
    let (rank, ranks) = (q.rank(), q.ranks());
    if rank == 0 {
        println!(
            "wave_sim: {n}x{n} grid, {steps} steps on {ranks} rank(s): {:.1} µs per step ({warm_up} warm-up steps \
             before not counted), {:.3} s in all",
            elapsed.as_secs_f64() * 1e6 / timed.max(1) as f64,
            elapsed.as_secs_f64()
        );
        if let Some(path) = &out_path {
            write_png(path, &field, n)?;
            println!("wave_sim: wrote the final field to {path}");
        }
    }
    if let Some(stats) = q.stats() {
        println!("wave_sim: {stats}");
    }
    if verify {
        let want = serial(&init, n, warm_up + steps);
        let worst = field.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
        if worst > 1e-3 {
            eprintln!("wave_sim: rank {rank}: MISMATCH: largest difference from the serial reference {worst:e}");
            std::process::exit(1);
        }
        println!("wave_sim: rank {rank}: verified against the serial reference (largest difference {worst:.1e})");
    }
    Ok(())
}

/// The 2D wave equation: a drop falls into a square pond (kernels on the GPU, halos over MPI).
#[derive(clap::Parser)]
struct Args {
    /// Grid size: N x N cells (default 64 in debug builds, 512 in release).
    #[arg(long, value_name = "N")]
    size: Option<String>,
    /// Time steps (default 300).
    #[arg(long, value_name = "N")]
    steps: Option<String>,
    /// Where to write the final field as PNG (default out/wave_sim.png).
    #[arg(long, value_name = "FILE")]
    out: Option<String>,
    /// Write no picture.
    #[arg(long)]
    no_picture: bool,
    /// Skip the check against the serial reference.
    #[arg(long)]
    no_verify: bool,
    /// Also write a frame every K steps (out/wave_sim_NNNNN.png; 0: none).
    #[arg(long, value_name = "K")]
    every: Option<String>,
    /// Untimed steps before the timed ones (default 3).
    #[arg(long, value_name = "N")]
    warmup: Option<String>,
}
