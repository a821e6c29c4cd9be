//! Soak: many small tasks through the whole runtime (a 1D stencil of tiny steps, halos between ranks, plus a host
//! task every 100 steps), with this process's resident memory sampled at 10⁴, 10⁵, 10⁶ … tasks. Horizons prune the
//! graphs and arenas, so memory must stay flat: the run fails if it grew by more than 10 % (plus 4 MiB of slack)
//! between the first and the last sample. The field must stay constant (a constant field is a fixed point of the
//! stencil), which checks the results.
//!
//! ```text
//! cargo run --release --example soak -- [--tasks 1000000]
//! mpirun -n 2 target/release/examples/soak --tasks 1000000
//! ```

use celer::{access, kernels, task, Kernel, Queue};

/// This process's resident memory in bytes (Linux `/proc/self/statm`).
fn resident_bytes() -> Result<u64, Box<dyn std::error::Error>> {
    let statm = std::fs::read_to_string("/proc/self/statm")?;
    let pages: u64 = statm.split_whitespace().nth(1).ok_or("malformed /proc/self/statm")?.parse()?;
    Ok(pages * 4096)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // celer's rank-prefixed logger, at the level of CELER_LOG (celer installs none unless asked).
    celer::logging::init();
    let mut tasks: u64 = if cfg!(debug_assertions) { 20_000 } else { 1_000_000 };
    let args = <Args as clap::Parser>::parse();
    if let Some(v) = args.tasks {
        tasks = v.parse()?;
    }
    let q = Queue::new()?;
    let cells = 256;
    let mut a = q.buffer_from(&vec![1.0f32; cells], [cells]).named("a");
    let mut b = q.buffer::<f32, 1>([cells]).named("b");
    let heat = Kernel::wgsl(&kernels::HEAT_1D, "main")?;
    let mut samples: Vec<(u64, u64)> = Vec::new();
    let mut next_sample = 10_000u64;
    let start = std::time::Instant::now();
    for t in 1..=tasks {
        if t % 100 == 0 {
            q.submit(task::host_for([cells]).read(&a, access::one_to_one()).name("inspect").run(|ctx| {
                assert!(ctx.data::<f32>(0).iter().all(|v| (v - 1.0).abs() < 1e-5), "the constant field changed");
            }))?;
        } else {
            q.submit(
                task::parallel_for(&heat, [cells])
                    .read(&a, access::neighborhood([1]))
                    .discard_write(&b, access::one_to_one())
                    .scalar_f32(0.1)
                    .name("step"),
            )?;
            std::mem::swap(&mut a, &mut b);
        }
        // Drain now and then, as real programs do, so the queue of unprocessed tasks stays short.
        if t % 10_000 == 0 {
            q.wait();
        }
        if t == next_sample || t == tasks {
            q.wait();
            samples.push((t, resident_bytes()?));
            if q.rank() == 0 {
                println!(
                    "soak: {t:>9} tasks, resident {:.1} MiB, {:.1} s",
                    samples.last().map_or(0, |s| s.1) as f64 / (1 << 20) as f64,
                    start.elapsed().as_secs_f64()
                );
            }
            next_sample *= 10;
        }
    }
    let field = q.fence(&a)?.wait()?;
    if field.iter().any(|v| (v - 1.0).abs() > 1e-5) {
        return Err("the constant field changed".into());
    }
    let (first, last) = (samples[0], samples[samples.len() - 1]);
    let limit = first.1 + first.1 / 10 + (4 << 20);
    if last.1 > limit {
        return Err(format!(
            "rank {}: resident memory grew from {} to {} bytes between {} and {} tasks (limit {limit})",
            q.rank(),
            first.1,
            last.1,
            first.0,
            last.0
        )
        .into());
    }
    println!(
        "soak: rank {} of {}: {tasks} tasks in {:.1} s ({:.1} µs each); resident memory flat ({:.1} → {:.1} MiB); \
         field verified",
        q.rank(),
        q.ranks(),
        start.elapsed().as_secs_f64(),
        start.elapsed().as_secs_f64() * 1e6 / tasks as f64,
        first.1 as f64 / (1 << 20) as f64,
        last.1 as f64 / (1 << 20) as f64
    );
    Ok(())
}

/// Soak: many small tasks through the whole runtime; fails if resident memory grows.
#[derive(clap::Parser)]
struct Args {
    /// Tasks to run (default 20000 in debug builds, 1000000 in release).
    #[arg(long, value_name = "N")]
    tasks: Option<String>,
}
