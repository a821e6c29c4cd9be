//! Fences of a large buffer in a loop: a host task over `[n]` cells (split over the ranks and their devices)
//! rewrites a `u32` buffer of `MIB` MiB, then the program fences the whole buffer and checks it, `ITERS` times.
//! Prints, per rank, the wall time of the loop, the mean time per fence and the bytes the rank's fences read back
//! from device memory (`RankStats::fence_bytes_read`) per fence (once the fenced region's size, whatever
//! `CELER_DEVICES` is) and the bytes the rank sent to its other devices and to other ranks per fence (the fill
//! sends nothing: each chunk writes only its own cells).
//!
//! ```text
//! CELER_DEVICES=2 mpirun -n 2 target/debug/examples/fence_readback [MIB [ITERS]]      (default 64 MiB, 10 times)
//! ```
use celer::{access, task, Queue};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    celer::logging::init();
    let mib: usize = std::env::args().nth(1).map(|v| v.parse()).transpose()?.unwrap_or(64);
    let iters: u32 = std::env::args().nth(2).map(|v| v.parse()).transpose()?.unwrap_or(10);
    let n = (mib << 20) / 4;
    let q = Queue::new()?;
    let buf = q.buffer::<u32, 1>([n]).named("big");
    let start = std::time::Instant::now();
    let mut fence_time = std::time::Duration::ZERO;
    for it in 0..iters {
        q.submit(task::host_for([n]).discard_write(&buf, access::one_to_one()).name("fill").run(move |ctx| {
            let first = ctx.bounds::<1>(0).min()[0];
            for (k, v) in ctx.data_mut::<u32>(0).iter_mut().enumerate() {
                *v = (first + k) as u32 ^ it;
            }
        }))?;
        let t = std::time::Instant::now();
        let got: Vec<u32> = q.fence(&buf)?.wait()?;
        fence_time += t.elapsed();
        if let Some(i) = (0..n).find(|&i| got[i] != i as u32 ^ it) {
            return Err(format!("iteration {it}: cell {i} holds {}", got[i]).into());
        }
    }
    let wall = start.elapsed();
    let stats = q.stats().ok_or("a dry run has no stats")?;
    println!(
        "rank {}: {iters} fences of {mib} MiB: loop {:.2} s, {:.3} s per fence (submit to answer), read back {} \
         bytes per fence ({:.2} times the fenced size), sent {} bytes per fence to other devices and ranks",
        q.rank(),
        wall.as_secs_f64(),
        fence_time.as_secs_f64() / f64::from(iters.max(1)),
        stats.fence_bytes_read / u64::from(iters.max(1)),
        stats.fence_bytes_read as f64 / (u64::from(iters.max(1)) * (n as u64) * 4) as f64,
        stats.bytes_sent / u64::from(iters.max(1)),
    );
    Ok(())
}
