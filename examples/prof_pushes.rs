//! Pushes of a region of many tiny boxes: a host task on rank 0 writes every other cell of a `[2n]` `u32` buffer
//! through a custom mapper (`n` one-cell boxes), then every rank fences the buffer, so rank 0 pushes the `n` boxes
//! to every other rank. Checks the fenced data and prints, per rank, the time of the host task (submit to `wait`),
//! of the fence, of the whole program, the transfer messages the rank sent, and its runtime thread's CPU time and
//! loop busy and idle time up to the fence.
//!
//! ```text
//! mpirun -n 2 target/debug/examples/prof_pushes [BOXES]      (default 100 000)
//! ```
use celer::{access, task, GridBox, Queue, Region};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    celer::logging::init();
    let start = std::time::Instant::now();
    let n: usize = std::env::args().nth(1).map(|v| v.parse()).transpose()?.unwrap_or(100_000);
    let q = Queue::new()?;
    let buf = q.buffer_from(&vec![u32::MAX; 2 * n], [2 * n]).named("comb");
    let comb = access::custom("comb", |_: &GridBox<0>, extent: &GridBox<1>| {
        Region::from_boxes((0..extent.max()[0]).step_by(2).map(|i| GridBox::d1(i, i + 1)))
    });
    let t = std::time::Instant::now();
    q.submit(task::host_once().discard_write(&buf, comb).name("comb").run(|ctx| {
        let first = ctx.bounds::<1>(0).min()[0];
        for (k, v) in ctx.data_mut::<u32>(0).iter_mut().enumerate() {
            *v = (first + k) as u32;
        }
    }))?;
    q.wait();
    let task = t.elapsed();
    let t = std::time::Instant::now();
    let got: Vec<u32> = q.fence(&buf)?.wait()?;
    let fence = t.elapsed();
    if let Some(i) = (0..2 * n).find(|&i| got[i] != if i % 2 == 0 { i as u32 } else { u32::MAX }) {
        return Err(format!("cell {i} holds {}", got[i]).into());
    }
    let stats = q.stats().ok_or("a dry run has no stats")?;
    println!(
        "rank {}: {n} boxes: task {:.2} s, fence {:.2} s, {} transfer messages sent ({} bytes); runtime thread CPU \
         {:.2} s, loop busy {:.2} s, idle {:.2} s",
        stats.rank,
        task.as_secs_f64(),
        fence.as_secs_f64(),
        stats.messages_sent,
        stats.bytes_sent,
        stats.runtime_cpu.as_secs_f64(),
        stats.busy.as_secs_f64(),
        stats.idle.as_secs_f64(),
    );
    drop(buf);
    drop(q);
    println!("rank {}: whole program {:.2} s", stats.rank, start.elapsed().as_secs_f64());
    Ok(())
}
