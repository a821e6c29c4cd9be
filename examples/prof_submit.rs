//! Profiling driver: the application thread's `Queue::submit` of wave_sim step tasks in a real run (one rank, the
//! runtime thread beside it), as `benches/submit.rs` times it, in groups of 64 between waits. Under callgrind, only
//! the submissions count: `. .ci/env.sh; REPS=20 valgrind --tool=callgrind --toggle-collect='*submit_group*'
//! target/release/examples/prof_submit`, then instructions per task = Ir / (REPS × 64).
use celer::{access, kernels, task, Buffer, Kernel, Queue};

/// Tasks submitted between two waits.
const GROUP: usize = 64;
/// The grid's side (the bench's).
const N: usize = 32;

/// Submits [`GROUP`] wave steps, rotating the three fields.
#[inline(never)]
fn submit_group<'q>(q: &'q Queue, wave: &Kernel, fields: &mut [Buffer<'q, f32, 2>; 3]) {
    for _ in 0..GROUP {
        let [prev, cur, next] = &*fields;
        q.submit(
            task::parallel_for(wave, [N, N])
                .read(prev, access::one_to_one())
                .read(cur, access::neighborhood_along_axes([1, 1]))
                .discard_write(next, access::one_to_one())
                .scalar_f32(0.2)
                .split_2d()
                .name("wave_step"),
        )
        .expect("a valid task");
        fields.rotate_left(1);
    }
}

fn main() -> Result<(), celer::Error> {
    celer::logging::init();
    let reps: usize = std::env::var("REPS").ok().and_then(|v| v.parse().ok()).unwrap_or(500);
    let q = Queue::new()?;
    let wave = Kernel::wgsl(&kernels::WAVE, "main")?;
    let init = vec![0.5f32; N * N];
    let mut fields = [
        q.buffer_from(&init, [N, N]).named("u_prev"),
        q.buffer_from(&init, [N, N]).named("u"),
        q.buffer::<f32, 2>([N, N]).named("u_next"),
    ];
    let mut submitting = std::time::Duration::ZERO;
    for _ in 0..reps {
        let t = std::time::Instant::now();
        submit_group(&q, &wave, &mut fields);
        submitting += t.elapsed();
        q.wait();
    }
    println!("wave_sim: {:.3} us per submit (wall clock)", submitting.as_secs_f64() * 1e6 / (reps * GROUP) as f64);
    Ok(())
}
