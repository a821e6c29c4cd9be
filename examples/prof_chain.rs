//! Profiling driver: a chain of `N` tiny dependent kernels through celer (each adds 1 to the 64 cells of one buffer),
//! then a check of the count; prints µs per task, and the runtime thread's CPU time and loop steps per task. Run it under a counter of the runtime thread's instructions, at two
//! lengths, to get the runtime thread's instructions per task (docs/PERFORMANCE.md):
//! `valgrind --tool=callgrind --separate-threads=yes target/release/examples/prof_chain 2000`
use celer::{access, kernels, task, Kernel, Queue};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // celer's rank-prefixed logger, at the level of CELER_LOG (celer installs none unless asked).
    celer::logging::init();
    let tasks = <Args as clap::Parser>::parse().tasks;
    let q = Queue::new()?;
    let add = Kernel::wgsl(&kernels::GPU_ADD, "main")?;
    let data = q.buffer_from(&[0u32; 64], [64]).named("data");
    // One task first, so that the kernel is built before the timed chain.
    q.submit(task::parallel_for(&add, [64]).read_write(&data, access::one_to_one()).scalars(&[1]))?;
    q.wait();
    let before = q.stats().unwrap_or_default();
    let t = std::time::Instant::now();
    for _ in 0..tasks {
        q.submit(task::parallel_for(&add, [64]).read_write(&data, access::one_to_one()).scalars(&[1]))?;
    }
    q.wait();
    let us = t.elapsed().as_secs_f64() * 1e6 / tasks.max(1) as f64;
    let after = q.stats().unwrap_or_default();
    let per_task = |x: f64| x / tasks.max(1) as f64;
    let cpu = per_task(after.runtime_cpu.saturating_sub(before.runtime_cpu).as_secs_f64() * 1e6);
    let steps = per_task(after.loop_steps.saturating_sub(before.loop_steps) as f64);
    let got = q.fence(&data)?.wait()?;
    if got.iter().any(|&v| v as usize != tasks + 1) {
        return Err(format!("the chain computed {}, expected {}", got[0], tasks + 1).into());
    }
    println!(
        "chain of {tasks} tiny kernels: {us:.2} µs per task; the runtime thread used {cpu:.2} µs of CPU and {steps:.1} \
         loop steps per task; verified"
    );
    Ok(())
}

/// A chain of tiny dependent kernels through celer; prints µs per task.
#[derive(clap::Parser)]
struct Args {
    /// Tasks in the chain.
    #[arg(default_value_t = 2000)]
    tasks: usize,
}
