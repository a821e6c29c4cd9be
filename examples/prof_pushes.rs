//! Pushes of a region of many small boxes: a host task on rank 0 writes every other run of `c` cells of a `[2nc]`
//! `u32` buffer through a custom mapper (`n` boxes of `c` cells), then every rank fences the buffer, so rank 0
//! pushes the `n` boxes to every other rank. Checks the fenced data and prints, per rank, the time of the host task
//! (submit to `wait`), of the fence, of the whole program, the transfer messages the rank sent and received, and
//! its runtime thread's CPU time and loop busy and idle time up to the fence, and its loop steps and parks during
//! the fence.
//!
//! One-cell boxes go many to a message (groups); boxes of 512 cells (2 KiB) each take a header message of their
//! own, so the receiver takes in `n` messages.
//!
//! ```text
//! mpirun -n 2 target/debug/examples/prof_pushes [BOXES [CELLS]]      (default 100 000 boxes of 1 cell)
//! ```
use celer::{access, task, GridBox, Queue, Region};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    celer::logging::init();
    let start = std::time::Instant::now();
    let n: usize = std::env::args().nth(1).map(|v| v.parse()).transpose()?.unwrap_or(100_000);
    let c: usize = std::env::args().nth(2).map(|v| v.parse()).transpose()?.unwrap_or(1);
    if c == 0 {
        return Err("CELLS must be at least 1".into());
    }
    let q = Queue::new()?;
    let buf = q.buffer_from(&vec![u32::MAX; 2 * n * c], [2 * n * c]).named("comb");
    let comb = access::custom("comb", move |_: &GridBox<0>, extent: &GridBox<1>| {
        Region::from_boxes((0..extent.max()[0]).step_by(2 * c).map(|i| GridBox::d1(i, i + c)))
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
    let before = q.stats().ok_or("a dry run has no stats")?;
    let t = std::time::Instant::now();
    let got: Vec<u32> = q.fence(&buf)?.wait()?;
    let fence = t.elapsed();
    if let Some(i) = (0..2 * n * c).find(|&i| got[i] != if (i / c).is_multiple_of(2) { i as u32 } else { u32::MAX }) {
        return Err(format!("cell {i} holds {}", got[i]).into());
    }
    let stats = q.stats().ok_or("a dry run has no stats")?;
    println!(
        "rank {}: {n} boxes of {c} cells: task {:.2} s, fence {:.2} s, transfer messages sent {} ({} bytes), \
         received {}; runtime thread CPU {:.2} s, loop busy {:.2} s, idle {:.2} s; during the fence {} loop steps, \
         {} parks",
        stats.rank,
        task.as_secs_f64(),
        fence.as_secs_f64(),
        stats.messages_sent,
        stats.bytes_sent,
        stats.messages_received,
        stats.runtime_cpu.as_secs_f64(),
        stats.busy.as_secs_f64(),
        stats.idle.as_secs_f64(),
        stats.loop_steps - before.loop_steps,
        stats.parks - before.parks,
    );
    drop(buf);
    drop(q);
    println!("rank {}: whole program {:.2} s", stats.rank, start.elapsed().as_secs_f64());
    Ok(())
}
