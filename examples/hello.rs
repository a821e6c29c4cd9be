//! The smallest complete celer program: one buffer, one kernel that writes `i²` into cell `i` (each rank computes
//! its share on its GPU), and a fence that brings the whole buffer back to every rank, which checks it and prints it.
//!
//! ```text
//! cargo run --example hello            # one rank
//! mpirun -n 2 target/debug/examples/hello
//! ```

use celer::{access, kernels, task, Kernel, Queue};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // celer's rank-prefixed logger, at the level of CELER_LOG (celer installs none unless asked).
    celer::logging::init();
    <Args as clap::Parser>::parse();
    let n = 16;
    let q = Queue::new()?;
    let squares = q.buffer::<u32, 1>([n]).named("squares");
    let kernel = Kernel::wgsl(&kernels::SQUARES, "main")?;
    q.submit(task::parallel_for(&kernel, [n]).discard_write(&squares, access::one_to_one()))?;
    let values = q.fence(&squares)?.wait()?;
    let ok = values.iter().enumerate().all(|(i, &v)| v as usize == i * i);
    println!(
        "hello from rank {} of {}: {values:?} — {}",
        q.rank(),
        q.ranks(),
        if ok { "verified (each cell holds the square of its index)" } else { "MISMATCH" }
    );
    if let Some(stats) = q.stats() {
        println!("hello: {stats}");
    }
    if !ok {
        std::process::exit(1);
    }
    Ok(())
}

/// The smallest complete celer program: a kernel writes i² into cell i of a buffer, and every rank checks it.
#[derive(clap::Parser)]
struct Args {}
