//! Profiling driver: task graph plus one rank's command graph for a pattern, repeated; prints µs per task.
//! `cargo run --release --example prof_cdag -- PATTERN RANKS [closure|reach]`: with `closure` (or `reach`), the
//! pattern's mappers are written as closures (that declare their reach). `prof_cdag scattered RANKS --boxes N` (or
//! `checkerboard`) submits red-black sweeps whose regions are N one-cell boxes (one rep unless REPS says otherwise).
use celer::unstable::graph::patterns;
use celer::unstable::graph::{NodeId, TaskManagerConfig};
use celer::unstable::scheduler::Simulation;

fn main() {
    // celer's rank-prefixed logger, at the level of CELER_LOG (celer installs none unless asked).
    celer::logging::init();
    let Args { pattern: name, ranks, mappers, boxes } = <Args as clap::Parser>::parse();
    let w = match name.as_str() {
        "soup" => patterns::soup(ranks),
        "chain" => patterns::chain(ranks),
        "expanding_tree" => patterns::expanding_tree(ranks),
        "contracting_tree" => patterns::contracting_tree(ranks),
        "jacobi" => patterns::jacobi(1024.max(2 * ranks), 50),
        // One one-cell box per item: `boxes` items in 1D, or a square of about `boxes` items in 2D.
        "scattered" => patterns::scattered(boxes, 4),
        "checkerboard" => {
            let side = ((2.0 * boxes as f64).sqrt() as usize).max(2) & !1;
            patterns::checkerboard(side, 4)
        }
        _ => patterns::wave_sim(512, 200),
    };
    let w = match mappers {
        Some(Mappers::Closure) => patterns::with_custom_mappers(&w, false),
        Some(Mappers::Reach) => patterns::with_custom_mappers(&w, true),
        None => w,
    };
    let default_reps =
        if w.name == "scattered" || w.name == "checkerboard" { 1 } else { (20_000 / ranks).clamp(5, 500) };
    let reps = std::env::var("REPS").ok().and_then(|v| v.parse().ok()).unwrap_or(default_reps);
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
    /// The pattern: soup, chain, expanding_tree, contracting_tree, jacobi, wave_sim, or (regions of many one-cell boxes, red-black sweeps through custom
    /// mappers) scattered (1D) or checkerboard (2D).
    #[arg(default_value = "wave_sim")]
    pattern: String,
    /// Simulated ranks.
    #[arg(default_value_t = 4)]
    ranks: usize,
    /// Rewrite the pattern's range mappers as custom closures: `closure` (no reach) or `reach` (declaring their
    /// reach); the built-in mappers when absent.
    #[arg(value_enum)]
    mappers: Option<Mappers>,
    /// Items (one one-cell box each) of the scattered and checkerboard patterns.
    #[arg(long, default_value_t = 1024)]
    boxes: usize,
}

/// How the pattern's range mappers are written, when not as the built-in mappers.
#[derive(Clone, Copy, clap::ValueEnum)]
enum Mappers {
    /// Custom closures without a declared reach.
    Closure,
    /// Custom closures that declare their reach.
    Reach,
}
