//! Contrast stretch: the darkest and brightest pixel of a dim image are found by min and max reductions across all
//! ranks, printed by a host task on rank 0, and then every pixel is rescaled to the full 0–255 range. Checked
//! against a serial stretch.
//!
//! Shows: reductions (`reduce` with `ReductionOp::Min` / `Max`), a host task on one rank reading reduction results,
//! and kernels reading one-element buffers on every rank.
//!
//! ```text
//! cargo run --release --example reduction -- [--size 1024]
//! mpirun -n 2 target/release/examples/reduction
//! ```

use celer::{access, kernels, task, Kernel, Queue, ReductionOp};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // celer's rank-prefixed logger, at the level of CELER_LOG (celer installs none unless asked).
    celer::logging::init();
    let mut n = if cfg!(debug_assertions) { 64 } else { 1024 };
    let args = <Args as clap::Parser>::parse();
    if let Some(v) = args.size {
        n = v.parse()?;
    }
    // A dim image: intensities between 60 and 130.
    let image: Vec<i32> = (0..n * n).map(|k| 60 + ((k * 37 + (k / n) * 11) % 71) as i32).collect();
    let q = Queue::new()?;
    let img = q.buffer_from(&image, [n, n]).named("image");
    let lo = q.buffer::<i32, 1>([1]).named("darkest");
    let hi = q.buffer::<i32, 1>([1]).named("brightest");
    let out = q.buffer::<i32, 2>([n, n]).named("stretched");
    let (min_k, max_k) =
        (Kernel::wgsl(&kernels::REDUCE_I32_2D, "reduce_min")?, Kernel::wgsl(&kernels::REDUCE_I32_2D, "reduce_max")?);
    q.submit(task::parallel_for(&min_k, [n, n]).read(&img, access::one_to_one()).reduce(&lo, ReductionOp::Min))?;
    q.submit(task::parallel_for(&max_k, [n, n]).read(&img, access::one_to_one()).reduce(&hi, ReductionOp::Max))?;
    q.submit(task::host_once().read(&lo, access::all()).read(&hi, access::all()).run(|ctx| {
        println!("reduction: darkest pixel {}, brightest {}", ctx.data::<i32>(0)[0], ctx.data::<i32>(1)[0]);
    }))?;
    let stretch = Kernel::wgsl(&kernels::STRETCH, "main")?;
    q.submit(
        task::parallel_for(&stretch, [n, n])
            .read(&img, access::one_to_one())
            .read(&lo, access::all())
            .read(&hi, access::all())
            .discard_write(&out, access::one_to_one()),
    )?;
    let got = q.fence(&out)?.wait()?;
    let (min, max) = (*image.iter().min().unwrap(), *image.iter().max().unwrap());
    let want: Vec<i32> = image.iter().map(|&v| (v - min) * 255 / (max - min).max(1)).collect();
    if let Some(stats) = q.stats() {
        println!("reduction: {stats}");
    }
    let rank = q.rank();
    if got != want {
        let i = got.iter().zip(&want).position(|(a, b)| a != b).unwrap_or(0);
        eprintln!("reduction: rank {rank}: MISMATCH at pixel {i}: {} instead of {}", got[i], want[i]);
        std::process::exit(1);
    }
    let (gmin, gmax) = (got.iter().min().unwrap(), got.iter().max().unwrap());
    println!("reduction: rank {rank}: verified: {min}..{max} stretched to {gmin}..{gmax}, equal to the serial stretch");
    Ok(())
}

/// Contrast stretch: min and max reductions across all ranks, then a stretch of every pixel.
#[derive(clap::Parser)]
struct Args {
    /// Image size: N x N pixels (default 64 in debug builds, 1024 in release).
    #[arg(long, value_name = "N")]
    size: Option<String>,
}
