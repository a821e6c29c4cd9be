//! Profiling driver: task graph plus one rank's command graph for a pattern, repeated; prints µs per task.
//! `cargo run --release --example prof_cdag -- PATTERN RANKS [closure|reach]`: with `closure` (or `reach`), the
//! pattern's mappers are written as closures (that declare their reach).
use celer::unstable::graph::patterns;
use celer::unstable::graph::{NodeId, TaskManagerConfig};
use celer::unstable::scheduler::Simulation;

fn main() {
    // celer's rank-prefixed logger, at the level of CELER_LOG (celer installs none unless asked).
    celer::logging::init();
    let Args { pattern: name, ranks, mappers } = <Args as clap::Parser>::parse();
    let w = match name.as_str() {
        "soup" => patterns::soup(ranks),
        "chain" => patterns::chain(ranks),
        "jacobi" => patterns::jacobi(1024.max(2 * ranks), 50),
        _ => patterns::wave_sim(512, 200),
    };
    let w = match mappers {
        Some(Mappers::Closure) => patterns::with_custom_mappers(&w, false),
        Some(Mappers::Reach) => patterns::with_custom_mappers(&w, true),
        None => w,
    };
    let reps = std::env::var("REPS").ok().and_then(|v| v.parse().ok()).unwrap_or((20_000 / ranks).clamp(5, 500));
    let t = std::time::Instant::now();
    for _ in 0..reps {
        let mut sim = Simulation::with_ranks(ranks, &[NodeId(ranks as u64 / 2)], false, TaskManagerConfig::default());
        for b in &w.buffers {
            sim.create_buffer(b.id, b.dims, b.extent, b.host_initialized, Some(b.name));
        }
        for t in w.tasks.iter().cloned() {
            sim.submit(t).unwrap();
        }
    }
    println!("{name}@{ranks}: {:.3} us/task", t.elapsed().as_secs_f64() * 1e6 / (reps * w.tasks.len()) as f64);
}

/// Task graph plus one rank's command graph for a pattern, repeated (REPS times, from the environment); prints µs per
/// task.
#[derive(clap::Parser)]
struct Args {
    /// The pattern: soup, chain, jacobi or wave_sim.
    #[arg(default_value = "wave_sim")]
    pattern: String,
    /// Simulated ranks.
    #[arg(default_value_t = 4)]
    ranks: usize,
    /// Rewrite the pattern's range mappers as custom closures: `closure` (no reach) or `reach` (declaring their
    /// reach); the built-in mappers when absent.
    #[arg(value_enum)]
    mappers: Option<Mappers>,
}

/// How the pattern's range mappers are written, when not as the built-in mappers.
#[derive(Clone, Copy, clap::ValueEnum)]
enum Mappers {
    /// Custom closures without a declared reach.
    Closure,
    /// Custom closures that declare their reach.
    Reach,
}
