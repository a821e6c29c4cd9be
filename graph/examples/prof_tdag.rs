//! Profiling driver: builds the wave_sim task graph many times and prints the time per task.
fn main() {
    let w = celer_graph::patterns::wave_sim(512, 200);
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
    println!("{:.3} us/task", t.elapsed().as_secs_f64() * 1e6 / (reps * w.tasks.len()) as f64);
}
