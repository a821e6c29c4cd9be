//! Measures what a tiny dispatch costs on the preferred Vulkan device when submitted
//! (a) one per submission, waiting for each by polling its fence,
//! (b) 64 per batch, each batch's completion polled on the timeline semaphore, and
//! (c) 64 per batch with several batches in flight, and
//! (d) dependent dispatches in batches of 8 to 256 with several in flight (what a batch boundary costs when the next
//! batch is already queued),
//! and prints a table of µs per dispatch (median of the repetitions).
//!
//! ```text
//! cargo run --release -p celer-exec --example dispatch_cost [DISPATCHES] [IN_FLIGHT]
//! ```
//!
//! The kernel is `gpu_add` on 64 cells (one workgroup): the figures are submission, recording
//! and completion overhead, not compute. Dependent dispatches (all on one allocation) get a
//! barrier between each; independent ones (one allocation each) need none.

use std::error::Error;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use celer_exec::gpu::{Access, BatchId, Box3, DeviceAllocation, Gpu, GpuOptions, KernelId, Launch};
use celer_exec::shaders;
use celer_exec::vulkan::Device;

/// Dispatches per batch in (b) and (c).
const PER_BATCH: usize = 64;
/// Repetitions of each measurement; the table shows the median.
const REPS: usize = 5;
/// Cells each dispatch adds to: one workgroup of gpu_add.
const CELLS: usize = 64;
/// A batch that takes longer than this means something is wrong.
const TIME_LIMIT: Duration = Duration::from_secs(60);

/// Polls (spinning, as an executor's loop would between other work) until `id` completes.
fn spin_until(gpu: &mut Gpu, id: BatchId, completed: &mut Vec<BatchId>) -> Result<(), Box<dyn Error>> {
    let start = Instant::now();
    while !gpu.is_complete(id) {
        completed.clear();
        gpu.poll(completed)?;
        if start.elapsed() > TIME_LIMIT {
            return Err(format!("batch {id} did not complete within {TIME_LIMIT:?}").into());
        }
        std::hint::spin_loop();
    }
    Ok(())
}

/// Reads back the first cell of `alloc` (each dispatch added 1 to it).
fn first_cell(gpu: &mut Gpu, alloc: &DeviceAllocation) -> Result<u32, Box<dyn Error>> {
    let mut batch = gpu.batch()?;
    let one = Box3::d1(0, 1);
    let download = batch.download(alloc, one)?;
    let id = batch.submit()?;
    gpu.poll_until_complete(id, TIME_LIMIT)?;
    let mut out = [0u8; 4];
    gpu.read_download(download, &mut out, one)?;
    Ok(u32::from_le_bytes(out))
}

/// A zeroed allocation of `CELLS` u32s.
fn zeroed(gpu: &mut Gpu) -> Result<DeviceAllocation, Box<dyn Error>> {
    let bounds = Box3::d1(0, CELLS);
    let alloc = gpu.allocate(bounds, 4)?;
    let mut batch = gpu.batch()?;
    batch.upload(&alloc, bounds, &[0u8; CELLS * 4], bounds)?;
    let id = batch.submit()?;
    gpu.poll_until_complete(id, TIME_LIMIT)?;
    Ok(alloc)
}

/// Runs `total` dispatches of `kernel` in batches of `per_batch`, keeping up to `in_flight`
/// batches submitted; with `independent`, dispatch `k` of a batch writes `allocs[k]`, else all
/// write `allocs[0]`. Returns the elapsed time and the part of it spent recording and
/// submitting (the host's cost, without waiting).
fn run_batches(
    gpu: &mut Gpu,
    kernel: KernelId,
    allocs: &[DeviceAllocation],
    total: usize,
    per_batch: usize,
    in_flight: usize,
    independent: bool,
) -> Result<(Duration, Duration), Box<dyn Error>> {
    let launch = Launch::d1(0, CELLS);
    let mut host = Duration::ZERO;
    let mut completed = Vec::new();
    let mut pending = std::collections::VecDeque::new();
    let start = Instant::now();
    let mut submitted = 0;
    while submitted < total {
        if pending.len() == in_flight {
            let oldest = pending.pop_front().expect("in_flight > 0");
            spin_until(gpu, oldest, &mut completed)?;
        }
        let recording = Instant::now();
        let mut batch = gpu.batch()?;
        for k in 0..per_batch.min(total - submitted) {
            let alloc = if independent { &allocs[k] } else { &allocs[0] };
            batch.dispatch(kernel, launch, &[Access::read_write(alloc)], &[1])?;
        }
        submitted += batch.len();
        pending.push_back(batch.submit()?);
        host += recording.elapsed();
    }
    for id in pending {
        spin_until(gpu, id, &mut completed)?;
    }
    Ok((start.elapsed(), host))
}

/// The run with the median total of `REPS` runs of `f` (after a warm-up), as µs per dispatch
/// `(total, host)`, `dispatches` dispatches per run.
fn median_us(
    dispatches: usize,
    mut f: impl FnMut() -> Result<(Duration, Duration), Box<dyn Error>>,
) -> Result<(f64, f64), Box<dyn Error>> {
    f()?; // warm-up: pipelines, descriptor sets, staging, command pools
    let per_dispatch = |d: Duration| d.as_secs_f64() * 1e6 / dispatches as f64;
    let mut us: Vec<(f64, f64)> = (0..REPS)
        .map(|_| f().map(|(total, host)| (per_dispatch(total), per_dispatch(host))))
        .collect::<Result<_, _>>()?;
    us.sort_by(|a, b| a.0.total_cmp(&b.0));
    Ok(us[REPS / 2])
}

fn run() -> Result<(), Box<dyn Error>> {
    let mut args = std::env::args().skip(1);
    let total: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(64 * 32);
    let in_flight: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(4);
    let single_total = total.min(1024);

    let mut gpu = Gpu::new()?;
    let mut fenced = Gpu::with_options(GpuOptions { force_fences: true, ..Default::default() })?;
    println!("dispatch_cost: {} ({:?} completion)", gpu.info(), gpu.completion_mode());
    println!(
        "tiny dispatch = gpu_add on {CELLS} u32 cells (1 workgroup); median of {REPS} runs after a warm-up; \
         {single_total} dispatches per run in (a), {total} in (b) and (c)\n"
    );
    let mut rows: Vec<(String, (f64, f64))> = Vec::new();

    // (a1) The toolchain path: vulkano's AutoCommandBufferBuilder + a fence future per dispatch.
    {
        let device = Device::new()?;
        let kernel = device.load_kernel(&shaders::GPU_ADD, "main")?;
        let data = device.buffer_from_slice(&[0u32; CELLS])?;
        let c = CELLS as u32;
        // chunk [0, CELLS), data's box [0, CELLS), amount 1 (see exec/shaders/gpu_add.wgsl)
        let push = [0, 0, 0, c, 1, 1, 0, 0, 0, c, 1, 1, 1];
        let us = median_us(single_total, || {
            let start = Instant::now();
            let mut host = Duration::ZERO;
            for _ in 0..single_total {
                let recording = Instant::now();
                let mut submission = device.dispatch(&kernel, &[data.as_bytes()], &push, kernel.groups_for(c))?;
                host += recording.elapsed();
                while !submission.is_complete()? {
                    std::hint::spin_loop();
                }
            }
            Ok((start.elapsed(), host))
        })?;
        let sum = device.read_buffer(&data)?[0];
        if sum != ((REPS + 1) * single_total) as u32 {
            return Err(format!("(a1) computed {sum}, expected {}", (REPS + 1) * single_total).into());
        }
        rows.push(("(a) 1 per submission, vulkano AutoCommandBuffer + fence future".into(), us));
    }

    // (a2) One dispatch per batch through gpu::Batch, fence polled.
    let kernel = fenced.load_kernel(&shaders::GPU_ADD, "main")?;
    let data = zeroed(&mut fenced)?;
    let us = median_us(single_total, || {
        run_batches(&mut fenced, kernel, std::slice::from_ref(&data), single_total, 1, 1, false)
    })?;
    rows.push(("(a) 1 per submission, gpu::Batch + fence".into(), us));

    // (a3) One dispatch per batch, timeline semaphore.
    let kernel = gpu.load_kernel(&shaders::GPU_ADD, "main")?;
    let mut allocs = Vec::new();
    for _ in 0..PER_BATCH {
        allocs.push(zeroed(&mut gpu)?);
    }
    let us = median_us(single_total, || run_batches(&mut gpu, kernel, &allocs, single_total, 1, 1, false))?;
    rows.push(("(a) 1 per submission, gpu::Batch + timeline semaphore".into(), us));

    // (b) 64 per batch, one batch at a time.
    let us = median_us(total, || run_batches(&mut gpu, kernel, &allocs, total, PER_BATCH, 1, false))?;
    rows.push((format!("(b) {PER_BATCH} per batch, dependent (barrier between each), 1 in flight"), us));
    let us = median_us(total, || run_batches(&mut gpu, kernel, &allocs, total, PER_BATCH, 1, true))?;
    rows.push((format!("(b) {PER_BATCH} per batch, independent (no barriers), 1 in flight"), us));

    // (c) 64 per batch, several in flight.
    let us = median_us(total, || run_batches(&mut gpu, kernel, &allocs, total, PER_BATCH, in_flight, false))?;
    rows.push((format!("(c) {PER_BATCH} per batch, dependent, {in_flight} in flight"), us));
    let us = median_us(total, || run_batches(&mut gpu, kernel, &allocs, total, PER_BATCH, in_flight, true))?;
    rows.push((format!("(c) {PER_BATCH} per batch, independent, {in_flight} in flight"), us));

    // (d) Dependent dispatches in batches of several sizes, several in flight.
    const SIZES: [usize; 6] = [8, 16, 32, 64, 128, 256];
    for size in SIZES {
        let us = median_us(total, || run_batches(&mut gpu, kernel, &allocs, total, size, in_flight, false))?;
        rows.push((format!("(d) {size} per batch, dependent, {in_flight} in flight"), us));
    }

    // Every dispatch ran: allocs[0] received one add per dependent or (a3) dispatch, plus
    // one per batch of the independent runs.
    let per_run_independent = total.div_ceil(PER_BATCH);
    let expected = (REPS + 1) * (single_total + (2 + SIZES.len()) * total + 2 * per_run_independent);
    let sum = first_cell(&mut gpu, &allocs[0])? as usize;
    if sum != expected {
        return Err(format!("allocation 0 holds {sum}, expected {expected}: dispatches were lost").into());
    }
    let fenced_sum = first_cell(&mut fenced, &data)? as usize;
    if fenced_sum != (REPS + 1) * single_total {
        return Err(format!("(a2) computed {fenced_sum}, expected {}", (REPS + 1) * single_total).into());
    }

    let width = rows.iter().map(|(name, _)| name.chars().count()).max().unwrap_or(0);
    println!("| {:width$} | µs/dispatch | of which recording + submitting |", "mode");
    println!("|{}|------------:|--------------------------------:|", "-".repeat(width + 2));
    for (name, (total, host)) in &rows {
        println!("| {name:width$} | {total:>11.2} | {host:>31.2} |");
    }
    println!("\nresults checked: every dispatch's +1 arrived ({sum} in allocation 0)");
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("dispatch_cost: error: {e}");
            ExitCode::FAILURE
        }
    }
}
