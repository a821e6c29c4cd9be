//! Task-graph generation per task for Celerity's DAG-benchmark patterns (soup, chain, wave_sim, jacobi).
//!
//! Each iteration builds the whole graph from a fresh task manager, with applied horizons reported as reached right
//! away (as a running executor would). Criterion's throughput line reads as tasks per second; `./x bench` prints the
//! per-task time too. Compare with Celerity's TDAG benchmark on the same machine (see docs/PERFORMANCE.md).

use celer::unstable::graph::patterns::{self, Workload};
use celer::unstable::graph::{TaskManager, TaskManagerConfig};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};

fn run(w: &Workload, tasks: Vec<celer::unstable::graph::TaskSpec>) -> TaskManager {
    let mut tm = TaskManager::new(TaskManagerConfig::default());
    w.create_buffers(&mut tm);
    for t in tasks {
        tm.submit(t).expect("valid workload");
        let applied = tm.epoch_for_new_tasks();
        tm.notify_epoch_reached(applied);
    }
    tm
}

fn task_graph(c: &mut Criterion) {
    let workloads = [patterns::soup(1), patterns::chain(1), patterns::wave_sim(512, 200), patterns::jacobi(1024, 50)];
    let mut group = c.benchmark_group("task_graph");
    for w in &workloads {
        group.throughput(Throughput::Elements(w.tasks.len() as u64));
        group.bench_function(w.name, |b| {
            b.iter_batched(|| w.tasks.clone(), |tasks| run(w, tasks), BatchSize::SmallInput)
        });
    }
    group.finish();
}

criterion_group!(benches, task_graph);
criterion_main!(benches);
