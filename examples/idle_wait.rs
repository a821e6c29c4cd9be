//! A rank that waits for a slow peer: the last rank's application thread sleeps before it submits, so every other
//! rank's runtime waits for its data (a halo from the last rank's chunk). Each rank prints the CPU time its process
//! used over the run (from `/proc/self/stat`, Linux only), which shows whether the waiting runtime thread backs off.
//!
//! ```text
//! mpirun -n 2 target/debug/examples/idle_wait          # the last rank sleeps 10 s
//! mpirun -n 2 target/debug/examples/idle_wait 3        # ... 3 s
//! ```

use celer::{access, kernels, task, Kernel, Queue};

/// User plus system CPU seconds of this process so far (fields 14 and 15 of `/proc/self/stat`, in clock ticks).
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name (field 2) may hold spaces; the fields after it follow its closing parenthesis.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // The kernel's USER_HZ: 100 on every Linux ABI celer runs on.
    Some(ticks as f64 / 100.0)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // celer's rank-prefixed logger, at the level of CELER_LOG (celer installs none unless asked).
    celer::logging::init();
    let Args { sleep_s } = <Args as clap::Parser>::parse();
    let n = 64;
    let q = Queue::new()?;
    let (rank, ranks) = (q.rank(), q.ranks());
    let cpu0 = cpu_seconds();
    let start = std::time::Instant::now();
    if rank + 1 == ranks && ranks > 1 {
        std::thread::sleep(std::time::Duration::from_secs_f64(sleep_s));
    }
    let squares = q.buffer::<u32, 1>([n]).named("squares");
    let kernel = Kernel::wgsl(&kernels::SQUARES, "main")?;
    q.submit(task::parallel_for(&kernel, [n]).discard_write(&squares, access::one_to_one()))?;
    // Every rank needs every chunk: the ranks that did not sleep wait here for the last one's.
    let values = q.fence(&squares)?.wait()?;
    let ok = values.iter().enumerate().all(|(i, &v)| v as usize == i * i);
    let wall = start.elapsed().as_secs_f64();
    let cpu = match (cpu0, cpu_seconds()) {
        (Some(a), Some(b)) => format!("{:.2} s of CPU", b - a),
        _ => "CPU time unknown (no /proc/self/stat)".to_string(),
    };
    println!(
        "idle_wait: rank {rank} of {ranks}: {wall:.2} s wall, {cpu} (the last rank slept {sleep_s} s) — {}",
        if ok { "verified" } else { "MISMATCH" }
    );
    if !ok {
        std::process::exit(1);
    }
    Ok(())
}

/// A rank that waits for a slow peer: the last rank sleeps before it submits, and each rank prints its CPU time.
#[derive(clap::Parser)]
struct Args {
    /// Seconds the last rank sleeps before it submits.
    #[arg(default_value_t = 10.0, value_name = "SECONDS")]
    sleep_s: f64,
}
