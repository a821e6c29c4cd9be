//! Prints the scheduling cost per task — task graph alone, and task graph plus one rank's command graph — for
//! Celerity's benchmark patterns at 1 to 4096 simulated ranks (best of several repetitions, one thread). The
//! measured rank is N1 (neighbours on both sides from 3 ranks on); grids grow with the rank count so every rank
//! owns a chunk.
//!
//! With `--custom`, each pattern is measured again with its range mappers written as closures (`/closure`), and
//! as closures that declare their reach (`/reach`, see `celer::access::Custom::reach`).
//!
//! ```text
//! cargo run --release --example scheduling_cost -- [--reps N] [--max-ranks N] [--custom]
//! ```

use std::time::Instant;

use celer::unstable::graph::patterns::{self, Workload};
use celer::unstable::graph::{NodeId, TaskManager, TaskManagerConfig};
use celer::unstable::scheduler::Simulation;

fn best_of(reps: usize, mut f: impl FnMut()) -> f64 {
    (0..reps)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min)
}

fn tdag_only(w: &Workload) {
    let mut tm = TaskManager::new(TaskManagerConfig::default());
    w.create_buffers(&mut tm);
    for t in w.tasks.iter().cloned() {
        tm.submit(t).expect("valid workload");
        let applied = tm.epoch_for_new_tasks();
        tm.notify_epoch_reached(applied);
    }
}

fn with_cdag(w: &Workload, ranks: usize) {
    let mut sim =
        Simulation::with_ranks(ranks, &[NodeId(ranks.min(2) as u64 - 1)], false, TaskManagerConfig::default());
    for b in &w.buffers {
        sim.create_buffer(b.id, b.dims, b.extent, b.host_initialized, Some(b.name));
    }
    for t in w.tasks.iter().cloned() {
        sim.submit(t).expect("valid workload");
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // celer's rank-prefixed logger, at the level of CELER_LOG (celer installs none unless asked).
    celer::logging::init();
    let mut reps = 20usize;
    let mut max_ranks = 4096usize;
    let args = <Args as clap::Parser>::parse();
    if let Some(v) = args.reps {
        reps = v.parse()?;
    }
    if let Some(v) = args.max_ranks {
        max_ranks = v.parse()?;
    }
    let custom = args.custom;
    let rank_counts: Vec<usize> = [1, 4, 16, 64, 256, 1024, 4096].into_iter().filter(|&r| r <= max_ranks).collect();
    print!("{:<24} {:>10}", "pattern", "TDAG µs");
    for r in &rank_counts {
        print!(" {:>9}", format!("+C@{r}"));
    }
    println!("   (µs per task; +C@N: task graph + one rank's command graph at N ranks)");
    let variants: &[(&str, Option<bool>)] =
        if custom { &[("", None), ("/closure", Some(false)), ("/reach", Some(true))] } else { &[("", None)] };
    for name in ["soup", "chain", "expanding_tree", "contracting_tree", "wave_sim", "jacobi"] {
        for &(suffix, closures) in variants {
            let make = |ranks: usize| {
                let w = match name {
                    "soup" => patterns::soup(ranks),
                    "chain" => patterns::chain(ranks),
                    "expanding_tree" => patterns::expanding_tree(ranks),
                    "contracting_tree" => patterns::contracting_tree(ranks),
                    "wave_sim" => patterns::wave_sim(512.max(2 * ranks), 200),
                    _ => patterns::jacobi(1024.max(2 * ranks), 50),
                };
                match closures {
                    Some(bounded) => patterns::with_custom_mappers(&w, bounded),
                    None => w,
                }
            };
            let w1 = make(1);
            let per_task = |secs: f64, w: &Workload| secs * 1e6 / w.tasks.len() as f64;
            print!("{:<24} {:>10.3}", format!("{name}{suffix}"), per_task(best_of(reps, || tdag_only(&w1)), &w1));
            for &r in &rank_counts {
                let w = make(r);
                print!(" {:>9.3}", per_task(best_of(reps.min(1 + 20_000 / r), || with_cdag(&w, r)), &w));
            }
            println!();
        }
    }
    Ok(())
}

/// Prints the scheduling cost per task (task graph alone, and plus one rank's command graph) at 1 to 4096 simulated ranks.
#[derive(clap::Parser)]
struct Args {
    /// Repetitions of each measurement (default 20).
    #[arg(long, value_name = "N")]
    reps: Option<String>,
    /// Largest simulated rank count (default 4096).
    #[arg(long, value_name = "N")]
    max_ranks: Option<String>,
    /// Measure each pattern again with its range mappers written as closures (`/closure`), and as closures that
    /// declare their reach (`/reach`).
    #[arg(long)]
    custom: bool,
    /// Passed by cargo-bench-style runners; ignored.
    #[arg(long, hide = true)]
    #[allow(dead_code)]
    bench: bool,
}
