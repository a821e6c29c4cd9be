//! Profiling driver: the task graph alone for a pattern, repeated, as `scheduling_cost` measures it; prints µs per
//! task. `cargo run --release --example prof_tdag -- PATTERN`
use celer::unstable::graph::patterns;
use celer::unstable::graph::{TaskManager, TaskManagerConfig};

fn main() {
    // celer's rank-prefixed logger, at the level of CELER_LOG (celer installs none unless asked).
    celer::logging::init();
    let name = <Args as clap::Parser>::parse().pattern;
    let w = match name.as_str() {
        "soup" => patterns::soup(1),
        "chain" => patterns::chain(1),
        "expanding_tree" => patterns::expanding_tree(1),
        "contracting_tree" => patterns::contracting_tree(1),
        "jacobi" => patterns::jacobi(1024, 50),
        _ => patterns::wave_sim(512, 200),
    };
    let reps = std::env::var("REPS").ok().and_then(|v| v.parse().ok()).unwrap_or(500);
    let t = std::time::Instant::now();
    for _ in 0..reps {
        let mut tm = TaskManager::new(TaskManagerConfig::default());
        w.create_buffers(&mut tm);
        for t in w.tasks.iter().cloned() {
            tm.submit(t).unwrap();
            let applied = tm.epoch_for_new_tasks();
            tm.notify_epoch_reached(applied);
        }
    }
    println!("{name}: {:.3} us/task", t.elapsed().as_secs_f64() * 1e6 / (reps * w.tasks.len()) as f64);
}

/// The task graph alone for a pattern, repeated, as `scheduling_cost` measures it; prints µs per task.
#[derive(clap::Parser)]
struct Args {
    /// The pattern: soup, chain, expanding_tree, contracting_tree, jacobi or wave_sim.
    #[arg(default_value = "wave_sim")]
    pattern: String,
}
