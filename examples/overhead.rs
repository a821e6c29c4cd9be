//! Per-task overhead of celer against the same work dispatched by hand, measured in one run.
//!
//! A 1D stencil of `--tasks` tiny steps (256 cells, halos between ranks) runs through celer; then a chain of
//! `--tasks` tiny kernels (each adds 1 to the 64 cells of a buffer, so each depends on the previous) runs (1) through celer on every rank, and, on one rank, hand-written through the same GPU layer: (2) 64
//! dispatches per submission, (3) one dispatch per submission, all submitted back to back, waiting only for the
//! last, and (4) the same, waiting for each dispatch before the next (the round trip a naive runtime pays). Results are checked; prints µs per task.
//!
//! ```text
//! cargo run --release --example overhead -- [--tasks 2000]
//! mpirun -n 2 target/release/examples/overhead
//! ```

use std::time::{Duration, Instant};

use celer::{access, kernels, task, Kernel, Queue};
use celer_exec::gpu::{Access, Box3, Gpu, Launch};

/// How the hand-written chain submits its dispatches.
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    /// One dispatch per submission, all submitted back to back.
    BackToBack,
    /// One dispatch per submission, each waited for.
    WaitEach,
    /// 64 dispatches per submission (barriers between them), all submitted back to back.
    Batched,
}

fn by_hand(tasks: usize, mode: Mode) -> Result<f64, Box<dyn std::error::Error>> {
    let mut gpu = Gpu::new()?;
    let kernel = gpu.load_kernel(&kernels::GPU_ADD, "main")?;
    let cells = Box3::d1(0, 64);
    let data = gpu.allocate(cells, 4)?;
    let zeros = vec![0u8; 64 * 4];
    let mut batch = gpu.batch()?;
    batch.upload(&data, cells, &zeros, cells)?;
    let first = batch.submit()?;
    gpu.poll_until_complete(first, Duration::from_secs(10))?;
    // Warm-up dispatch (pipeline compilation), as for celer.
    let mut batch = gpu.batch()?;
    batch.dispatch(kernel, Launch::d1(0, 64), &[Access::read_write(&data)], &[0])?;
    let warm = batch.submit()?;
    gpu.poll_until_complete(warm, Duration::from_secs(10))?;
    let start = Instant::now();
    let mut last = first;
    let per_batch = if mode == Mode::Batched { 64 } else { 1 };
    let mut done = 0;
    while done < tasks {
        let mut batch = gpu.batch()?;
        for _ in 0..per_batch.min(tasks - done) {
            batch.dispatch(kernel, Launch::d1(0, 64), &[Access::read_write(&data)], &[1])?;
            done += 1;
        }
        last = batch.submit()?;
        if mode == Mode::WaitEach {
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
    // celer's rank-prefixed logger, at the level of CELER_LOG (celer installs none unless asked).
    celer::logging::init();
    let mut tasks = if cfg!(debug_assertions) { 200 } else { 2000 };
    let args = <Args as clap::Parser>::parse();
    if let Some(v) = args.tasks {
        tasks = v.parse()?;
    }
    let celer_us = {
        let q = Queue::new()?;
        let data = q.buffer_from(&[0u32; 64], [64]).named("data");
        let add = Kernel::wgsl(&kernels::GPU_ADD, "main")?;
        // Warm-up: the first dispatch compiles the pipeline; keep that out of the timing.
        const WARM_UP: usize = 8;
        for _ in 0..WARM_UP {
            q.submit(task::parallel_for(&add, [64]).read_write(&data, access::one_to_one()).scalars(&[1]))?;
        }
        q.wait();
        let start = Instant::now();
        for _ in 0..tasks {
            q.submit(task::parallel_for(&add, [64]).read_write(&data, access::one_to_one()).scalars(&[1]))?;
        }
        q.wait();
        let us = start.elapsed().as_secs_f64() * 1e6 / tasks as f64;
        let got = q.fence(&data)?.wait()?;
        if got.iter().any(|&v| v != (tasks + WARM_UP) as u32) {
            return Err(format!("celer chain computed {:?}…, expected {}", &got[..4], tasks + WARM_UP).into());
        }
        // A 1D stencil of tiny steps: on several ranks every step also exchanges one halo cell with each neighbour.
        let cells = 256;
        let mut a = q.buffer_from(&vec![1.0f32; cells], [cells]).named("a");
        let mut b = q.buffer::<f32, 1>([cells]).named("b");
        let heat = Kernel::wgsl(&kernels::HEAT_1D, "main")?;
        let stencil_step = |a: &mut celer::Buffer<'_, f32, 1>, b: &mut celer::Buffer<'_, f32, 1>| {
            q.submit(
                task::parallel_for(&heat, [cells])
                    .read(a, access::neighborhood([1]))
                    .discard_write(b, access::one_to_one())
                    .scalar_f32(0.1),
            )
        };
        for _ in 0..WARM_UP {
            stencil_step(&mut a, &mut b)?;
            std::mem::swap(&mut a, &mut b);
        }
        q.wait();
        let start = Instant::now();
        for _ in 0..tasks {
            stencil_step(&mut a, &mut b)?;
            std::mem::swap(&mut a, &mut b);
        }
        q.wait();
        let stencil_us = start.elapsed().as_secs_f64() * 1e6 / tasks as f64;
        let field = q.fence(&a)?.wait()?;
        if field.iter().any(|&v| (v - 1.0).abs() > 1e-5) {
            return Err("the stencil of a constant field changed it".into());
        }
        let (rank, ranks) = (q.rank(), q.ranks());
        if rank != 0 {
            return Ok(());
        }
        println!("overhead: {tasks} tasks each, {ranks} rank(s), results checked");
        println!("  celer, 1D stencil of tiny steps ({cells} cells)   {stencil_us:8.2} µs per task");
        println!("  celer, chain of tiny kernels (64 cells)          {us:8.2} µs per task");
        us
    };
    // The hand-written baselines need no MPI; run them on rank 0 after the queue shut down.
    let batched = by_hand(tasks, Mode::Batched)?;
    let pipelined = by_hand(tasks, Mode::BackToBack)?;
    let naive = by_hand(tasks, Mode::WaitEach)?;
    println!("  chain by hand, 64 dispatches per submission      {batched:8.2} µs per task");
    println!("  chain by hand, one per submission, back to back  {pipelined:8.2} µs per task");
    println!("  chain by hand, one per submission, waiting       {naive:8.2} µs per task");
    println!(
        "  chain: celer ÷ batched: {:.2}×   ÷ back to back: {:.2}×   ÷ waiting: {:.2}×",
        celer_us / batched,
        celer_us / pipelined,
        celer_us / naive
    );
    Ok(())
}

/// Per-task overhead of celer against the same work dispatched by hand, measured in one run.
#[derive(clap::Parser)]
struct Args {
    /// Tasks per measurement (default 200 in debug builds, 2000 in release).
    #[arg(long, value_name = "N")]
    tasks: Option<String>,
}
