//! Task graph plus one rank's command graph, per task, for Celerity's DAG-benchmark patterns at 1 to 1024
//! simulated ranks. The measured rank is N1 (with neighbours on both sides from 3 ranks on); grids grow with the rank count so that
//! every rank owns a chunk.
//! Throughput reads as tasks per second. `cargo run --release --example scheduling_cost` prints the same as a table.

use celer::unstable::graph::patterns::{self, Workload};
use celer::unstable::graph::{NodeId, TaskManagerConfig};
use celer::unstable::scheduler::Simulation;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};

fn run(w: &Workload, ranks: usize, tasks: Vec<celer::unstable::graph::TaskSpec>) -> Simulation {
    let mut sim =
        Simulation::with_ranks(ranks, &[NodeId(ranks.min(2) as u64 - 1)], false, TaskManagerConfig::default());
    for b in &w.buffers {
        sim.create_buffer(b.id, b.dims, b.extent, b.host_initialized, Some(b.name));
    }
    for t in tasks {
        sim.submit(t).expect("valid workload");
    }
    sim
}

/// The patterns at `ranks` ranks, with grids that give every rank a chunk.
fn workloads(ranks: usize) -> [Workload; 6] {
    [
        patterns::soup(ranks),
        patterns::chain(ranks),
        patterns::expanding_tree(ranks),
        patterns::contracting_tree(ranks),
        patterns::wave_sim(512.max(2 * ranks), 200),
        patterns::jacobi(1024.max(2 * ranks), 50),
    ]
}

fn command_graph(c: &mut Criterion) {
    let mut group = c.benchmark_group("command_graph");
    let mut bench = |name: String, w: &Workload, ranks: usize| {
        group.throughput(Throughput::Elements(w.tasks.len() as u64));
        group.bench_function(name, |b| {
            b.iter_batched(|| w.tasks.clone(), |tasks| run(w, ranks, tasks), BatchSize::SmallInput)
        });
    };
    for ranks in [1usize, 4, 16, 64, 1024] {
        for w in &workloads(ranks) {
            bench(format!("{}/{ranks}", w.name), w, ranks);
        }
    }
    // The same patterns with their mappers written as closures, without and with a declared reach.
    for ranks in [16usize, 1024] {
        for w in &workloads(ranks) {
            for (suffix, bounded) in [("closure", false), ("reach", true)] {
                bench(format!("{}/{suffix}/{ranks}", w.name), &patterns::with_custom_mappers(w, bounded), ranks);
            }
        }
    }
    group.finish();
}

criterion_group!(benches, command_graph);
criterion_main!(benches);
