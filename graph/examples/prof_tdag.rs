//! Profiling driver: builds the task graph of a pattern many times and prints the time per task.
//! `cargo run --release -p celer-graph --example prof_tdag -- PATTERN` (soup, chain, wave_sim, jacobi).
fn main() {
    let name = std::env::args().nth(1).unwrap_or_else(|| "wave_sim".into());
    let w = match name.as_str() {
        "soup" => celer_graph::patterns::soup(1),
        "chain" => celer_graph::patterns::chain(1),
        "jacobi" => celer_graph::patterns::jacobi(1024, 50),
        _ => celer_graph::patterns::wave_sim(512, 200),
    };
    let t = std::time::Instant::now();
    let reps = 2000;
    for _ in 0..reps {
        let mut tm = celer_graph::TaskManager::new(Default::default());
        w.create_buffers(&mut tm);
        for s in w.tasks.iter().cloned() {
            tm.submit(s).unwrap();
            let a = tm.epoch_for_new_tasks();
            tm.notify_epoch_reached(a);
        }
    }
    println!("{name}: {:.3} us/task", t.elapsed().as_secs_f64() * 1e6 / (reps * w.tasks.len()) as f64);
}
