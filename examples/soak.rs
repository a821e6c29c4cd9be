//! Soak: many small tasks through the whole runtime (a 1D stencil of tiny steps, halos between ranks, plus a host
//! task every 100 steps), with this process's resident memory sampled at 10⁴, 10⁵, 10⁶ … tasks. Horizons prune the
//! graphs and arenas, so memory must stay flat: the run fails if it grew by more than 10 % (plus 4 MiB of slack)
//! between the first and the last sample. The field must stay constant (a constant field is a fixed point of the
//! stencil), which checks the results.
//!
//! - `--wait-every K`: a `wait` after every K tasks (default 10 000; 0: never, so only `submit`'s back-pressure,
//!   `CELER_SUBMIT_AHEAD`, bounds what is queued).
//! - `--buffers N`: instead of the stencil, create, write and drop N buffers of 256 KiB each (dropped buffers are
//!   freed once the tasks that used them ran); resident memory is sampled every N/10 buffers and must stay flat too.
//! - `--mix N`: instead of the stencil, N rounds of what a long-running program does besides: steps whose index
//!   space and scalar change every round (no two consecutive batches alike, so the GPU layer's caches turn over),
//!   a fence reading a buffer back, a reduction, a collective host task with a side effect on a host object, a
//!   collective group created and dropped, and every 16 rounds a kernel created, used and dropped; resident memory
//!   is sampled every N/10 rounds and must stay flat, and every result is checked.
//!
//! Every run ends with the peak resident memory (`VmHWM`) of each rank.
//!
//! ```text
//! cargo run --release --example soak -- [--tasks 1000000] [--wait-every 10000]
//! mpirun -n 2 target/release/examples/soak --tasks 1000000 --wait-every 0
//! mpirun -n 2 target/release/examples/soak --buffers 10000
//! mpirun -n 2 target/release/examples/soak --mix 20000
//! ```

use celer::{access, kernels, task, Kernel, Queue, ReductionOp};

/// This process's resident memory in bytes (Linux `/proc/self/statm`).
fn resident_bytes() -> Result<u64, Box<dyn std::error::Error>> {
    let statm = std::fs::read_to_string("/proc/self/statm")?;
    let pages: u64 = statm.split_whitespace().nth(1).ok_or("malformed /proc/self/statm")?.parse()?;
    Ok(pages * 4096)
}

/// This process's peak resident memory in bytes (`VmHWM` of Linux `/proc/self/status`).
fn peak_resident_bytes() -> Result<u64, Box<dyn std::error::Error>> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).ok_or("no VmHWM in /proc/self/status")?;
    let kib: u64 = line.split_whitespace().nth(1).ok_or("malformed VmHWM")?.parse()?;
    Ok(kib * 1024)
}

/// MiB of `bytes`, for printing.
fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1 << 20) as f64
}

/// Fails if resident memory grew by more than 10 % plus 4 MiB between the first and the last of `samples`
/// (`(count, bytes)`), naming `what` was counted.
fn check_flat(rank: usize, what: &str, samples: &[(u64, u64)]) -> Result<(), Box<dyn std::error::Error>> {
    let (first, last) = (samples[0], samples[samples.len() - 1]);
    let limit = first.1 + first.1 / 10 + (4 << 20);
    if last.1 > limit {
        return Err(format!(
            "rank {rank}: resident memory grew from {} to {} bytes between {} and {} {what} (limit {limit})",
            first.1, last.1, first.0, last.0
        )
        .into());
    }
    Ok(())
}

/// Samples resident memory after `count` of `what` into `samples` (what is still queued counts too, unless the
/// caller waited), and prints it on rank 0.
fn sample(
    q: &Queue,
    samples: &mut Vec<(u64, u64)>,
    count: u64,
    what: &str,
    start: std::time::Instant,
) -> Result<(), Box<dyn std::error::Error>> {
    let bytes = resident_bytes()?;
    samples.push((count, bytes));
    if q.rank() == 0 {
        println!("soak: {count:>9} {what}, resident {:.1} MiB, {:.1} s", mib(bytes), start.elapsed().as_secs_f64());
    }
    Ok(())
}

/// Creates, writes and drops `count` buffers of 256 KiB; resident memory must stay flat.
fn churn_buffers(q: &Queue, count: u64) -> Result<(), Box<dyn std::error::Error>> {
    const CELLS: usize = 65536;
    let start = std::time::Instant::now();
    let every = (count / 10).max(1);
    let mut samples = Vec::new();
    for i in 1..=count {
        let b = q.buffer::<f32, 1>([CELLS]).named("scratch");
        q.submit(
            task::host_for([CELLS])
                .discard_write(&b, access::one_to_one())
                .name("fill")
                .run(move |ctx| ctx.data_mut::<f32>(0).fill(i as f32)),
        )?;
        drop(b);
        if i % every == 0 || i == count {
            q.wait();
            sample(q, &mut samples, i, "buffers", start)?;
        }
    }
    check_flat(q.rank(), "buffers", &samples)?;
    let device = q.stats().map_or(0, |s| s.device_bytes);
    println!(
        "soak: rank {} of {}: {count} buffers of 256 KiB created and dropped in {:.1} s; resident memory flat ({:.1} \
         → {:.1} MiB), device memory held at the end {:.1} MiB, peak resident (VmHWM) {:.1} MiB",
        q.rank(),
        q.ranks(),
        start.elapsed().as_secs_f64(),
        mib(samples[0].1),
        mib(samples[samples.len() - 1].1),
        mib(device),
        mib(peak_resident_bytes()?)
    );
    Ok(())
}

/// `count` rounds of varying steps, fences, reductions, host objects, collective groups and kernels created in the
/// loop; resident memory must stay flat and every result must be right.
fn mix(q: &Queue, count: u64) -> Result<(), Box<dyn std::error::Error>> {
    const CELLS: usize = 256;
    let start = std::time::Instant::now();
    let every = (count / 10).max(1);
    let mut samples = Vec::new();
    let mut a = q.buffer_from(&[1.0f32; CELLS], [CELLS]).named("a");
    let mut b = q.buffer_from(&[1.0f32; CELLS], [CELLS]).named("b");
    let data = q.buffer_from(&(0..CELLS as i32).collect::<Vec<i32>>(), [CELLS]).named("data");
    let sum = q.buffer::<i32, 1>([1]).named("sum");
    let reduce = Kernel::wgsl(&kernels::REDUCE_I32, "reduce_sum")?;
    let mut heat = Kernel::wgsl(&kernels::HEAT_1D, "main")?;
    let log = q.host_object(0u64);
    let expected_sum = (0..CELLS as i32).sum::<i32>();
    for i in 1..=count {
        if i % 16 == 0 {
            heat = Kernel::wgsl(&kernels::HEAT_1D, "main")?;
        }
        // A constant field is a fixed point of the stencil for any coefficient and any prefix it covers.
        let n = CELLS / 2 + (i as usize * 37) % (CELLS / 2);
        q.submit(
            task::parallel_for(&heat, [n])
                .read(&a, access::neighborhood([1]))
                .discard_write(&b, access::one_to_one())
                .scalar_f32(0.05 + (i % 7) as f32 * 0.01)
                .name("varying step"),
        )?;
        // The cells past `n` of `b` keep their (constant) data: swapping keeps both fields constant.
        std::mem::swap(&mut a, &mut b);
        match i % 4 {
            0 => {
                let field = q.fence(&a)?.wait()?;
                if field.iter().any(|v| (v - 1.0).abs() > 1e-5) {
                    return Err(format!("round {i}: the constant field changed").into());
                }
            }
            1 => {
                q.submit(
                    task::parallel_for(&reduce, [CELLS])
                        .read(&data, access::one_to_one())
                        .reduce(&sum, ReductionOp::Sum)
                        .name("sum"),
                )?;
                let got = q.fence(&sum)?.wait()?;
                if got != [expected_sum] {
                    return Err(format!("round {i}: the reduction gave {got:?}, not {expected_sum}").into());
                }
            }
            2 => {
                q.submit(task::host_collective().side_effect(&log).name("count").run(|ctx| {
                    ctx.with_object::<u64, _>(0, |n| *n += 1);
                }))?;
            }
            _ => {
                let group = q.collective_group();
                q.submit(task::host_collective_in(&group).read(&a, access::all()).name("look").run(|ctx| {
                    assert!(ctx.data::<f32>(0).iter().all(|v| (v - 1.0).abs() < 1e-5), "the constant field changed");
                }))?;
                drop(group);
            }
        }
        if i % every == 0 || i == count {
            q.wait();
            sample(q, &mut samples, i, "rounds", start)?;
        }
    }
    let counted = q.fence_object(&log)?;
    if counted != (count + 2) / 4 {
        return Err(format!("the host object counted {counted} side effects, not {}", (count + 2) / 4).into());
    }
    check_flat(q.rank(), "rounds", &samples)?;
    println!(
        "soak: rank {} of {}: {count} mixed rounds in {:.1} s; results verified; resident memory flat ({:.1} → {:.1} \
         MiB), device memory held at the end {:.1} MiB, peak resident (VmHWM) {:.1} MiB",
        q.rank(),
        q.ranks(),
        start.elapsed().as_secs_f64(),
        mib(samples[0].1),
        mib(samples[samples.len() - 1].1),
        mib(q.stats().map_or(0, |s| s.device_bytes)),
        mib(peak_resident_bytes()?)
    );
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // celer's rank-prefixed logger, at the level of CELER_LOG (celer installs none unless asked).
    celer::logging::init();
    let mut tasks: u64 = if cfg!(debug_assertions) { 20_000 } else { 1_000_000 };
    let args = <Args as clap::Parser>::parse();
    if let Some(v) = args.tasks {
        tasks = v.parse()?;
    }
    let wait_every = args.wait_every;
    let q = Queue::new()?;
    if let Some(count) = args.buffers {
        return churn_buffers(&q, count);
    }
    if let Some(count) = args.mix {
        return mix(&q, count);
    }
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
        if wait_every > 0 && t % wait_every == 0 {
            q.wait();
        }
        // Sampled without a wait when the program does not wait: what is queued then counts too.
        if t == next_sample || t == tasks {
            if wait_every > 0 {
                q.wait();
            }
            sample(&q, &mut samples, t, "tasks", start)?;
            next_sample *= 10;
        }
    }
    let field = q.fence(&a)?.wait()?;
    if field.iter().any(|v| (v - 1.0).abs() > 1e-5) {
        return Err("the constant field changed".into());
    }
    check_flat(q.rank(), "tasks", &samples)?;
    let (first, last) = (samples[0], samples[samples.len() - 1]);
    let waits = if wait_every == 0 { "no waits".to_string() } else { format!("a wait every {wait_every}") };
    println!(
        "soak: rank {} of {}: {tasks} tasks ({waits}) in {:.1} s ({:.1} µs each); resident memory flat ({:.1} → \
         {:.1} MiB), peak resident (VmHWM) {:.1} MiB; field verified",
        q.rank(),
        q.ranks(),
        start.elapsed().as_secs_f64(),
        start.elapsed().as_secs_f64() * 1e6 / tasks as f64,
        mib(first.1),
        mib(last.1),
        mib(peak_resident_bytes()?)
    );
    Ok(())
}

/// Soak: many small tasks through the whole runtime; fails if resident memory grows.
#[derive(clap::Parser)]
struct Args {
    /// Tasks to run (default 20000 in debug builds, 1000000 in release).
    #[arg(long, value_name = "N")]
    tasks: Option<String>,
    /// A `wait` after every K tasks (0: never, so only `submit`'s back-pressure, `CELER_SUBMIT_AHEAD`, bounds what
    /// is queued).
    #[arg(long, value_name = "K", default_value_t = 10_000)]
    wait_every: u64,
    /// Instead of the stencil, create, write and drop N buffers of 256 KiB each; resident memory must stay flat.
    #[arg(long, value_name = "N")]
    buffers: Option<u64>,
    /// Instead of the stencil, N rounds of varying steps, fences, reductions, host objects, collective groups and
    /// kernels created in the loop; resident memory must stay flat and every result must be right.
    #[arg(long, value_name = "N")]
    mix: Option<u64>,
}
