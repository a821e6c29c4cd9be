//! Profiling driver: `N` tiny dependent tasks through celer, then a check of the result; prints µs per task and the
//! runtime thread's CPU time and loop steps per task. By default a chain of kernels that each add 1 to the 64 cells of
//! one buffer; with `--stencil`, a 1D stencil of tiny steps (256 cells, two fields in turn, as `overhead`'s).
//! Under callgrind it gives the runtime thread's instructions per task (docs/PERFORMANCE.md):
//! `valgrind --tool=callgrind --separate-threads=yes target/release/examples/prof_chain 5000`
use celer::{access, kernels, task, Kernel, Queue};

/// Cells of the stencil's fields.
const STENCIL_CELLS: usize = 256;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // celer's rank-prefixed logger, at the level of CELER_LOG (celer installs none unless asked).
    celer::logging::init();
    let Args { tasks, stencil } = <Args as clap::Parser>::parse();
    let q = Queue::new()?;
    let add = Kernel::wgsl(&kernels::GPU_ADD, "main")?;
    let heat = Kernel::wgsl(&kernels::HEAT_1D, "main")?;
    let data = q.buffer_from(&[0u32; 64], [64]).named("data");
    let fields = [
        q.buffer_from(&vec![1.0f32; STENCIL_CELLS], [STENCIL_CELLS]).named("a"),
        q.buffer::<f32, 1>([STENCIL_CELLS]).named("b"),
    ];
    let mut steps_done = 0;
    let mut submit = |q: &Queue| -> Result<(), Box<dyn std::error::Error>> {
        if stencil {
            let (src, dst) = (&fields[steps_done % 2], &fields[(steps_done + 1) % 2]);
            q.submit(
                task::parallel_for(&heat, [STENCIL_CELLS])
                    .read(src, access::neighborhood([1]))
                    .discard_write(dst, access::one_to_one())
                    .scalar_f32(0.1),
            )?;
            steps_done += 1;
        } else {
            q.submit(task::parallel_for(&add, [64]).read_write(&data, access::one_to_one()).scalars(&[1]))?;
        }
        Ok(())
    };
    // One task first, so that the kernel is built before the measured ones.
    submit(&q)?;
    q.wait();
    let before = q.stats().unwrap_or_default();
    let t = std::time::Instant::now();
    for _ in 0..tasks {
        submit(&q)?;
    }
    q.wait();
    let us = t.elapsed().as_secs_f64() * 1e6 / tasks.max(1) as f64;
    let after = q.stats().unwrap_or_default();
    let per_task = |x: f64| x / tasks.max(1) as f64;
    let cpu = per_task(after.runtime_cpu.saturating_sub(before.runtime_cpu).as_secs_f64() * 1e6);
    let loop_steps = per_task(after.loop_steps.saturating_sub(before.loop_steps) as f64);
    let what = if stencil {
        // A stencil of a constant field leaves it constant.
        let field = q.fence(&fields[(tasks + 1) % 2])?.wait()?;
        if field.iter().any(|&v| (v - 1.0).abs() > 1e-5) {
            return Err("the stencil of a constant field changed it".into());
        }
        "stencil steps"
    } else {
        let got = q.fence(&data)?.wait()?;
        if got.iter().any(|&v| v as usize != tasks + 1) {
            return Err(format!("the chain computed {}, expected {}", got[0], tasks + 1).into());
        }
        "chained kernels"
    };
    println!(
        "{tasks} tiny {what}: {us:.2} µs per task; the runtime thread used {cpu:.2} µs of CPU and {loop_steps:.1} loop \
         steps per task; verified"
    );
    Ok(())
}

/// `N` tiny dependent tasks through celer; prints µs per task and the runtime thread's CPU per task.
#[derive(clap::Parser)]
struct Args {
    /// Tasks measured (after one that builds the kernel).
    #[arg(default_value_t = 2000)]
    tasks: usize,
    /// A 1D stencil of tiny steps instead of the chain.
    #[arg(long)]
    stencil: bool,
}
