//! The application thread's cost of `Queue::submit` per task in a real run: one rank (no `mpirun`), the runtime
//! thread running beside it on the GPU (lavapipe here; `. .ci/env.sh` first, as for the examples).
//!
//! The tasks are wave_sim's step (examples/wave_sim.rs): 2D, a one-to-one read of the previous field, a
//! neighbourhood read of the current one, a one-to-one write of the next, the `wave` kernel with one scalar; the three
//! buffers rotate. One iteration submits [`GROUP`] tasks, timed, then waits (untimed) until the runtime has run
//! them, so the runtime's backlog never holds `submit` back. Criterion's time per element is the cost per task. The
//! grid is small: its size changes what the GPU does, not what `submit` does.
//!
//! The time is the application thread's CPU time (`CLOCK_THREAD_CPUTIME_ID`), not the wall clock: on a loaded
//! machine (and with the runtime thread on the same cores) the wall clock mostly measures waiting for a core.

use std::time::Duration;

use celer::{access, kernels, task, Kernel, Queue};
use criterion::{criterion_group, criterion_main, Criterion, SamplingMode, Throughput};

/// Tasks one iteration submits between two (untimed) waits.
const GROUP: u64 = 64;
/// The grid's side.
const N: usize = 32;

/// The CPU time this thread has used.
fn thread_cpu_time() -> Duration {
    let mut t = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `t` is a valid out-pointer for the duration of the call; the clock id is a constant Linux defines.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID) failed");
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

fn submit(c: &mut Criterion) {
    let q = Queue::new().expect("celer starts (run under . .ci/env.sh with a Vulkan driver)");
    let wave = Kernel::wgsl(&kernels::WAVE, "main").expect("wave::main exists");
    let init = vec![0.5f32; N * N];
    let mut prev = q.buffer_from(&init, [N, N]).named("u_prev");
    let mut cur = q.buffer_from(&init, [N, N]).named("u");
    let mut next = q.buffer::<f32, 2>([N, N]).named("u_next");
    let mut group = c.benchmark_group("submit");
    group.sampling_mode(SamplingMode::Flat).throughput(Throughput::Elements(GROUP));
    group.bench_function("wave_sim", |b| {
        b.iter_custom(|iters| {
            let mut timed = Duration::ZERO;
            for _ in 0..iters {
                let start = thread_cpu_time();
                for _ in 0..GROUP {
                    q.submit(
                        task::parallel_for(&wave, [N, N])
                            .read(&prev, access::one_to_one())
                            .read(&cur, access::neighborhood_along_axes([1, 1]))
                            .discard_write(&next, access::one_to_one())
                            .scalar_f32(0.2)
                            .split_2d()
                            .name("wave_step"),
                    )
                    .expect("a valid task");
                    std::mem::swap(&mut prev, &mut cur);
                    std::mem::swap(&mut cur, &mut next);
                }
                timed += thread_cpu_time() - start;
                q.wait();
            }
            timed
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    // Every task also runs on the GPU (untimed): a short measurement keeps the run to well under a minute.
    config = Criterion::default().sample_size(20).warm_up_time(Duration::from_millis(100))
        .measurement_time(Duration::from_secs(2));
    targets = submit
}
criterion_main!(benches);
