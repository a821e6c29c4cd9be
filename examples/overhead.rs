//! Per-task overhead of celer against the same work dispatched by hand, measured in one run.
//!
//! A chain of `--tasks` tiny kernels (each adds 1 to the 64 cells of a buffer, so each depends on the previous)
//! runs (1) through celer on every rank, and, on one rank, (2) hand-written through the same GPU layer: one
//! dispatch per submission, all submitted back to back, waiting only for the last, and (3) the same, waiting for
//! each dispatch before the next (the round trip a naive runtime pays). Results are checked; prints µs per task.
//!
//! ```text
//! cargo run --release --example overhead -- [--tasks 2000]
//! mpirun -n 2 target/release/examples/overhead
//! ```

use std::time::{Duration, Instant};

use celer::{access, kernels, task, Kernel, Queue};
use celer_exec::gpu::{Access, Box3, Gpu, Launch};

fn by_hand(tasks: usize, wait_each: bool) -> Result<f64, Box<dyn std::error::Error>> {
    let mut gpu = Gpu::new()?;
    let kernel = gpu.load_kernel(&kernels::GPU_ADD, "main")?;
    let cells = Box3::d1(0, 64);
    let data = gpu.allocate(cells, 4)?;
    let zeros = vec![0u8; 64 * 4];
    let mut batch = gpu.batch()?;
    batch.upload(&data, cells, &zeros, cells)?;
    let first = batch.submit()?;
    gpu.poll_until_complete(first, Duration::from_secs(10))?;
    let start = Instant::now();
    let mut last = first;
    for _ in 0..tasks {
        let mut batch = gpu.batch()?;
        batch.dispatch(kernel, Launch::d1(0, 64), &[Access::read_write(&data)], &[1])?;
        last = batch.submit()?;
        if wait_each {
            gpu.poll_until_complete(last, Duration::from_secs(10))?;
        }
    }
    gpu.poll_until_complete(last, Duration::from_secs(60))?;
    let elapsed = start.elapsed().as_secs_f64();
    let mut batch = gpu.batch()?;
    let d = batch.download(&data, cells)?;
    let id = batch.submit()?;
    gpu.poll_until_complete(id, Duration::from_secs(10))?;
    let mut out = vec![0u8; 64 * 4];
    gpu.read_download(d, &mut out, cells)?;
    let v = u32::from_ne_bytes(out[..4].try_into()?);
    if v != tasks as u32 {
        return Err(format!("hand-written chain computed {v}, expected {tasks}").into());
    }
    Ok(elapsed * 1e6 / tasks as f64)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut tasks = if cfg!(debug_assertions) { 200 } else { 2000 };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--tasks" => tasks = args.next().ok_or("--tasks needs a number")?.parse()?,
            other => return Err(format!("unknown argument {other}; use --tasks N").into()),
        }
    }
    let celer_us = {
        let q = Queue::new()?;
        let data = q.buffer_from(&[0u32; 64], [64]).named("data");
        let add = Kernel::wgsl(&kernels::GPU_ADD, "main")?;
        q.wait();
        let start = Instant::now();
        for _ in 0..tasks {
            q.submit(task::parallel_for(&add, [64]).read_write(&data, access::one_to_one()).scalars(&[1]))?;
        }
        q.wait();
        let us = start.elapsed().as_secs_f64() * 1e6 / tasks as f64;
        let got = q.fence(&data)?.wait()?;
        if got.iter().any(|&v| v != tasks as u32) {
            return Err(format!("celer chain computed {:?}…, expected {tasks}", &got[..4]).into());
        }
        let (rank, ranks) = (q.rank(), q.ranks());
        if rank != 0 {
            return Ok(());
        }
        println!("overhead: chain of {tasks} dependent tiny kernels (64 cells), {ranks} rank(s), results checked");
        println!("  celer                                          {us:8.2} µs per task");
        us
    };
    // The hand-written baselines need no MPI; run them on rank 0 after the queue shut down.
    let pipelined = by_hand(tasks, false)?;
    let naive = by_hand(tasks, true)?;
    println!("  by hand, submitted back to back                {pipelined:8.2} µs per task");
    println!("  by hand, waiting for each dispatch             {naive:8.2} µs per task");
    println!("  celer ÷ back-to-back: {:.2}×   celer ÷ waiting: {:.2}×", celer_us / pipelined, celer_us / naive);
    Ok(())
}
