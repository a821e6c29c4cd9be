//! A dry run of the 2D wave equation on simulated ranks: what celer's scheduler decides, before anything executes.
//!
//! Records `--steps` stencil steps on an `--size`² grid through the celer API, split over `--ranks` simulated
//! ranks, and prints per rank how many commands it generated (executions, pushes, await-pushes, horizons) and the
//! scheduling time per task. Then it checks the distributed plan with the symbolic executor (every read on every
//! rank must see the data the one-rank run sees) and writes the task graph and every rank's command graph of a
//! short run as Graphviz DOT files into `--out` (render with `dot -Tsvg`).
//!
//! ```text
//! cargo run --release --example taskgraph_demo -- [--ranks 4] [--steps 200] [--size 512] [--out out]
//! ```

use std::time::Instant;

use celer::unstable::scheduler::check;
use celer::{access, task, Kernel, Queue};

/// Records `steps` wave-equation steps; returns the number of tasks submitted.
fn wave(q: &Queue, n: usize, steps: usize) -> Result<usize, celer::TaskError> {
    let initial: Vec<f32> = (0..n * n).map(|i| ((i % n) as f32 / n as f32).sin()).collect();
    let mut u = q.buffer_from(&initial, [n, n]).named("u");
    let mut up = q.buffer_from(&initial, [n, n]).named("u_prev");
    let step = Kernel::named("wave_step");
    for _ in 0..steps {
        q.submit(
            task::parallel_for(&step, [n, n])
                .read_write(&up, access::one_to_one())
                .read(&u, access::neighborhood_along_axes([1, 1])),
        )?;
        std::mem::swap(&mut u, &mut up);
    }
    q.fence(&u)?;
    Ok(steps + 1)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // celer's rank-prefixed logger, at the level of CELER_LOG (celer installs none unless asked).
    celer::logging::init();
    let (mut ranks, mut steps, mut n, mut out) = (4usize, 200usize, 512usize, String::from("out"));
    let args = <Args as clap::Parser>::parse();
    if let Some(v) = args.ranks {
        ranks = v.parse()?;
    }
    if let Some(v) = args.steps {
        steps = v.parse()?;
    }
    if let Some(v) = args.size {
        n = v.parse()?;
    }
    if let Some(v) = args.out {
        out = v;
    }

    // 1. The full program, every rank's commands generated and counted.
    let config = Queue::builder().dry_run(ranks).record_commands(true);
    let q = config.clone().build()?;
    let start = Instant::now();
    let tasks = wave(&q, n, steps)?;
    let elapsed = start.elapsed();
    println!("wave_sim dry run: {steps} steps on a {n}x{n} grid, {ranks} simulated ranks");
    println!(
        "scheduling: {:.2} µs per task for the task graph plus all {ranks} ranks' command graphs \
         ({:.2} µs per task and rank; one thread, debug builds are far slower)",
        elapsed.as_secs_f64() * 1e6 / tasks as f64,
        elapsed.as_secs_f64() * 1e6 / (tasks * ranks) as f64,
    );
    println!("{} tasks held in memory at the end (horizons prune the rest)", q.live_tasks());
    for (rank, counts) in q.command_counts().iter().enumerate() {
        let list: Vec<String> = counts.iter().map(|(k, v)| format!("{v} {k}")).collect();
        println!("  N{rank}: {}", list.join(", "));
    }
    drop(q);

    // 2. Check the distributed plan of a shorter run against the one-rank run, cell by cell.
    let check_steps = steps.min(20);
    let check_n = n.min(32);
    check::equivalent_to_one_rank(ranks, |sim| {
        let w = celer::unstable::graph::patterns::wave_sim(check_n, check_steps);
        sim.run_workload(&w)
    })?;
    println!(
        "verified: {check_steps} steps on a {check_n}x{check_n} grid read the same data on {ranks} ranks as on one \
         (symbolic execution of every rank's commands)"
    );

    // 3. Graphs of a short run, small enough to look at.
    std::fs::create_dir_all(&out)?;
    let q = config.build()?;
    wave(&q, 16, 3)?;
    std::fs::write(format!("{out}/taskgraph.dot"), q.task_graph_dot())?;
    std::fs::write(format!("{out}/commandgraphs.dot"), q.command_graphs_dot())?;
    println!("wrote {out}/taskgraph.dot and {out}/commandgraphs.dot (3 steps; render with dot -Tsvg)");
    Ok(())
}

/// A dry run of the 2D wave equation on simulated ranks.
#[derive(clap::Parser)]
struct Args {
    /// Simulated ranks (default 4).
    #[arg(long, value_name = "N")]
    ranks: Option<String>,
    /// Time steps of the wave equation (default 200).
    #[arg(long, value_name = "N")]
    steps: Option<String>,
    /// Grid size: N x N cells (default 512).
    #[arg(long, value_name = "N")]
    size: Option<String>,
    /// Directory for the DOT files (default out).
    #[arg(long, value_name = "DIR")]
    out: Option<String>,
}
