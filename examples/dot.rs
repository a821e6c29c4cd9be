//! Benchmark: a float dot product through celer's deterministic reduction against the same reduction written by
//! hand over the GPU layer, in one run.
//!
//! Both run the same kernel (`kernels/dot.wgsl`: each 256-item workgroup folds its products through the prelude's
//! `celer_reduce_sum_f32` and stores one partial per workgroup):
//! - **celer**: `parallel_for(...).reduce(&out, Sum)` and a fence of `out`, on every rank: the runtime dispatches,
//!   downloads the partials, combines them in the fixed tree (across ranks too) and uploads the result, which the
//!   fence reads back.
//! - **by hand** (rank 0 only): `celer_exec::gpu` directly, the vectors already on the GPU: one batch with the
//!   dispatch and the download of the partials, then the partials summed on the host in order.
//!
//! Each side runs a warm-up, then `--reps` timed repetitions (each from submission to the result on the host); the
//! output gives the minimum and the median, the throughput (8 bytes read per element) and celer's share of the
//! hand-written throughput. Both results are checked against a sum in f64 and celer's against itself across
//! repetitions (bit for bit).
//!
//! ```text
//! cargo run --release --example dot -- [--size 67108864] [--reps 5]
//! mpirun -n 2 target/release/examples/dot --size 16777216
//! ```

use std::time::{Duration, Instant};

use celer::{access, task, Kernel, Queue, ReductionOp};
use celer_exec::gpu::{Access, Box3, Gpu, Launch};

celer::include_kernels!();

/// Items per workgroup of `kernels/dot.wgsl`.
const BLOCK: usize = 256;

/// The minimum and the median of `times`, in seconds.
fn min_median(times: &mut [f64]) -> (f64, f64) {
    times.sort_by(f64::total_cmp);
    (times[0], times[times.len() / 2])
}

/// The hand-written dot product: returns its result and the time of each repetition (after one warm-up).
fn by_hand(a: &[f32], b: &[f32], reps: usize) -> Result<(f32, Vec<f64>), Box<dyn std::error::Error>> {
    let n = a.len();
    let blocks = n.div_ceil(BLOCK);
    let mut gpu = Gpu::new()?;
    let kernel = gpu.load_kernel(&DOT, "main")?;
    let cells = Box3::d1(0, n);
    let (da, db) = (gpu.allocate(cells, 4)?, gpu.allocate(cells, 4)?);
    let partials_box = Box3::d1(0, blocks);
    let partials = gpu.allocate(partials_box, 4)?;
    let mut batch = gpu.batch()?;
    batch.upload(&da, cells, bytemuck::cast_slice(a), cells)?;
    batch.upload(&db, cells, bytemuck::cast_slice(b), cells)?;
    let id = batch.submit()?;
    gpu.poll_until_complete(id, Duration::from_secs(600))?;
    let mut host = vec![0u8; blocks * 4];
    let mut result = 0.0;
    let mut times = Vec::with_capacity(reps);
    for rep in 0..=reps {
        let start = Instant::now();
        let mut batch = gpu.batch()?;
        let access = [Access::read(&da), Access::read(&db), Access::blocks(&partials)];
        batch.dispatch(kernel, Launch::d1(0, n), &access, &[])?;
        let download = batch.download(&partials, partials_box)?;
        let id = batch.submit()?;
        gpu.poll_until_complete(id, Duration::from_secs(600))?;
        gpu.read_download(download, &mut host, partials_box)?;
        let sums: &[f32] = bytemuck::cast_slice(&host);
        result = sums.iter().sum::<f32>();
        // The first run is the warm-up (pipeline creation, first touches of the memory).
        if rep > 0 {
            times.push(start.elapsed().as_secs_f64());
        }
    }
    Ok((result, times))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // celer's rank-prefixed logger, at the level of CELER_LOG (celer installs none unless asked).
    celer::logging::init();
    let args = <Args as clap::Parser>::parse();
    let n = args.size.unwrap_or(if cfg!(debug_assertions) { 1 << 16 } else { 1 << 26 });
    let reps = args.reps.max(3);
    let a: Vec<f32> = (0..n).map(|i| ((i * 7) % 13) as f32 * 0.125 - 0.5).collect();
    let b: Vec<f32> = (0..n).map(|i| ((i * 5) % 11) as f32 * 0.25 + 0.1).collect();
    let want: f64 = a.iter().zip(&b).map(|(x, y)| f64::from(*x) * f64::from(*y)).sum();
    let q = Queue::new()?;
    let (rank, ranks) = (q.rank(), q.ranks());
    let da = q.buffer_from(&a, [n]).named("a");
    let db = q.buffer_from(&b, [n]).named("b");
    let out = q.buffer::<f32, 1>([1]).named("dot");
    let kernel = Kernel::wgsl(&DOT, "main")?;
    let mut times = Vec::with_capacity(reps);
    let mut results = Vec::with_capacity(reps + 1);
    for rep in 0..=reps {
        let start = Instant::now();
        q.submit(
            task::parallel_for(&kernel, [n])
                .name("dot")
                .read(&da, access::one_to_one())
                .read(&db, access::one_to_one())
                .reduce(&out, ReductionOp::Sum),
        )?;
        results.push(q.fence(&out)?.wait()?[0]);
        // The first run is the warm-up (pipeline creation, the vectors' upload, allocations).
        if rep > 0 {
            times.push(start.elapsed().as_secs_f64());
        }
    }
    let got = results[0];
    if results.iter().any(|r| r.to_bits() != got.to_bits()) {
        return Err(format!("celer's dot product changed between repetitions: {results:?}").into());
    }
    let close = |v: f32| (f64::from(v) - want).abs() <= 1e-4 * want.abs().max(1.0);
    if !close(got) {
        return Err(format!("celer's dot product is {got}, the f64 sum {want}").into());
    }
    let gb = |t: f64| 8.0 * n as f64 / t / 1e9;
    let (cmin, cmed) = min_median(&mut times);
    println!(
        "dot: {n} f32 elements ({:.1} MiB per vector), {ranks} rank(s), {reps} repetitions after a warm-up",
        n as f64 * 4.0 / (1 << 20) as f64
    );
    println!(
        "dot: rank {rank}: celer (deterministic reduction, task + fence): min {:.3} ms, median {:.3} ms, {:.3} GB/s \
         at the minimum; result {got} (bits {:#010x})",
        cmin * 1e3,
        cmed * 1e3,
        gb(cmin),
        got.to_bits()
    );
    if rank == 0 && !args.no_baseline {
        // celer's queue keeps the GPU it runs on; the hand-written side opens the same device again.
        let (hand, mut htimes) = by_hand(&a, &b, reps)?;
        if !close(hand) {
            return Err(format!("the hand-written dot product is {hand}, the f64 sum {want}").into());
        }
        let (hmin, hmed) = min_median(&mut htimes);
        println!(
            "dot: rank 0: by hand (celer_exec::gpu: dispatch + download of the partials in one batch, host sum): min \
             {:.3} ms, median {:.3} ms, {:.3} GB/s at the minimum; result {hand}",
            hmin * 1e3,
            hmed * 1e3,
            gb(hmin)
        );
        println!(
            "dot: celer reaches {:.2}x the hand-written throughput (minimum against minimum; {:.2}x median against \
             median){}",
            hmin / cmin,
            hmed / cmed,
            if ranks > 1 { " -- celer on all ranks, by hand on one GPU" } else { "" }
        );
    }
    Ok(())
}

/// Dot product through celer's deterministic reduction against the same kernel dispatched by hand.
#[derive(clap::Parser)]
struct Args {
    /// Elements per vector (default 2^26 = 67108864 in release builds, 2^16 in debug builds).
    #[arg(long, value_name = "N")]
    size: Option<usize>,
    /// Timed repetitions of each side after one warm-up (at least 3).
    #[arg(long, value_name = "R", default_value_t = 5)]
    reps: usize,
    /// Skip the hand-written baseline.
    #[arg(long)]
    no_baseline: bool,
}
