//! Profiling driver: task graph plus one rank's command graph for a pattern, repeated; prints µs per task.
//! `cargo run --release --example prof_cdag -- PATTERN RANKS [closure|reach]`: with `closure` (or `reach`), the
//! pattern's mappers are written as closures (that declare their reach).
use celer::graph::patterns;
use celer::graph::{NodeId, TaskManagerConfig};
use celer::scheduler::Simulation;

fn main() {
    let mut args = std::env::args().skip(1);
    let name = args.next().unwrap_or_else(|| "wave_sim".into());
    let ranks: usize = args.next().and_then(|v| v.parse().ok()).unwrap_or(4);
    let w = match name.as_str() {
        "soup" => patterns::soup(ranks),
        "chain" => patterns::chain(ranks),
        "jacobi" => patterns::jacobi(1024.max(2 * ranks), 50),
        _ => patterns::wave_sim(512, 200),
    };
    let w = match args.next().as_deref() {
        Some("closure") => patterns::with_custom_mappers(&w, false),
        Some("reach") => patterns::with_custom_mappers(&w, true),
        _ => w,
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
