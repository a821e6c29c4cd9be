//! Snapshots written while the simulation goes on: 1D heat with a diffusivity per cell (a constant input), and every
//! `--every` steps a copy of the field that a master-node host task writes to a file (plus `--write-ms` of simulated
//! slow storage). Kernels reading the constant diffusivity, and the halo exchanges between ranks, do not wait for
//! the file writes: celer runs them meanwhile, up to `CELER_SUBMIT_AHEAD` horizons ahead, and writes of different
//! snapshots run at the same time on the rank's host threads (`CELER_HOST_THREADS`). Prints the time of the
//! simulation alone and with the snapshots, in the same run, the time the writes' host tasks took in all and how
//! much of it did not lengthen the run, and verifies the final field and every snapshot file against a serial
//! reference.
//!
//! Shows: master-node host tasks doing I/O beside kernels, double-buffered snapshots (the copy into a snapshot
//! buffer waits only for the write two snapshots back), a constant input, neighbourhood reads.
//!
//! ```text
//! cargo run --release --example io_overlap -- [--size 65536] [--steps 2000] [--every 200] [--write-ms 20]
//!     [--reps 2] [--dir out/io_overlap]
//! mpirun -n 2 target/release/examples/io_overlap
//! ```

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use celer::{access, task, Buffer, Kernel, Queue};

/// The examples' own kernels (`kernels/heat_var.wgsl`, `kernels/copy_1d.wgsl`).
#[allow(dead_code)] // kernels/ holds the kernels of every example and test
mod kernels {
    celer::include_kernels!();
}

type Res<T> = Result<T, Box<dyn std::error::Error>>;

/// One step, as the kernel computes it.
fn serial_step(u: &[f32], kappa: &[f32], v: &mut [f32]) {
    let n = u.len();
    for i in 0..n {
        let c = u[i];
        let l = if i > 0 { u[i - 1] } else { c };
        let r = if i + 1 < n { u[i + 1] } else { c };
        v[i] = c + kappa[i] * ((l - c) + (r - c));
    }
}

/// The settings of a run.
struct Run {
    n: usize,
    steps: usize,
    every: usize,
    write: Duration,
    dir: PathBuf,
}

/// What one run measured: its wall time, the field at the end, and (rank 0) how long each file write took.
struct Measured {
    seconds: f64,
    field: Vec<f32>,
    writes: Vec<f64>,
}

/// The snapshot file of step `step`.
fn snapshot_path(dir: &Path, step: usize) -> PathBuf {
    dir.join(format!("step{step:07}.f32"))
}

/// Runs the simulation, with snapshots or without, timed from a barrier to the end of the last write.
fn simulate(q: &Queue, k: &(Kernel, Kernel), run: &Run, init: &[f32], kappa: &[f32], io: bool) -> Res<Measured> {
    let (step, copy) = k;
    let n = run.n;
    let kappa = q.buffer_from(kappa, [n]).named("kappa");
    let mut u = q.buffer_from(init, [n]).named("u");
    let mut v = q.buffer::<f32, 1>([n]).named("v");
    let snapshots: [Buffer<'_, f32, 1>; 2] = [q.buffer([n]).named("snapshot a"), q.buffer([n]).named("snapshot b")];
    let writes = Arc::new(Mutex::new(Vec::new()));
    q.barrier();
    let start = Instant::now();
    for s in 1..=run.steps {
        q.submit(
            task::parallel_for(step, [n])
                .read(&u, access::neighborhood([1]))
                .read(&kappa, access::one_to_one())
                .discard_write(&v, access::one_to_one())
                .scalar("n", n as u32)
                .name("step"),
        )?;
        std::mem::swap(&mut u, &mut v);
        if io && s % run.every == 0 {
            let snap = &snapshots[(s / run.every) % 2];
            q.submit(
                task::parallel_for(copy, [n])
                    .read(&u, access::one_to_one())
                    .discard_write(snap, access::one_to_one())
                    .name("snapshot"),
            )?;
            let (path, write, log) = (snapshot_path(&run.dir, s), run.write, writes.clone());
            q.submit(task::host_once().read(snap, access::all()).name("write snapshot").run(move |ctx| {
                let t = Instant::now();
                let bytes: Vec<u8> = ctx.data::<f32>(0).iter().flat_map(|x| x.to_le_bytes()).collect();
                if let Err(e) = std::fs::write(&path, bytes) {
                    panic!("io_overlap: cannot write {}: {e}", path.display());
                }
                std::thread::sleep(write);
                log.lock().unwrap().push(t.elapsed().as_secs_f64());
            }))?;
        }
    }
    let field = q.fence(&u)?.wait()?;
    // The last writes end the run too.
    q.wait();
    let seconds = start.elapsed().as_secs_f64();
    let writes = writes.lock().unwrap().clone();
    Ok(Measured { seconds, field, writes })
}

fn main() -> Res<()> {
    // celer's rank-prefixed logger, at the level of CELER_LOG (celer installs none unless asked).
    celer::logging::init();
    let args = <Args as clap::Parser>::parse();
    let debug = cfg!(debug_assertions);
    let run = Run {
        n: args.size.unwrap_or(if debug { 4096 } else { 65536 }),
        steps: args.steps.unwrap_or(if debug { 200 } else { 2000 }),
        every: args.every.unwrap_or(if debug { 40 } else { 200 }).max(1),
        write: Duration::from_secs_f64(args.write_ms.unwrap_or(20.0) / 1e3),
        dir: PathBuf::from(args.dir.unwrap_or_else(|| "out/io_overlap".into())),
    };
    let reps = args.reps.unwrap_or(2).max(1);
    let q = Queue::new()?;
    let (rank, ranks) = (q.rank(), q.ranks());
    if rank == 0 {
        std::fs::create_dir_all(&run.dir)?;
    }
    let k = (Kernel::wgsl(&kernels::HEAT_VAR, "step")?, Kernel::wgsl(&kernels::COPY_1D, "main")?);
    let n = run.n;
    // A hot middle third; the diffusivity varies along the rod (below 0.5: stable).
    let init: Vec<f32> = (0..n).map(|i| if (n / 3..2 * n / 3).contains(&i) { 100.0 } else { 0.0 }).collect();
    let kappa: Vec<f32> = (0..n).map(|i| 0.1 + 0.3 * ((i * 7 % 97) as f32 / 97.0)).collect();

    // Warm-up (pipelines, allocations, clocks), then alone and together, alternating.
    let warm = Run { steps: run.steps.min(2 * run.every), dir: run.dir.clone(), ..run };
    simulate(&q, &k, &warm, &init, &kappa, true)?;
    let (mut alone, mut both, mut written) = (Vec::new(), Vec::new(), Vec::new());
    let mut last = None;
    for r in 0..reps {
        for io in if r % 2 == 0 { [false, true] } else { [true, false] } {
            let m = simulate(&q, &k, &run, &init, &kappa, io)?;
            if io {
                both.push(m.seconds);
                written.push(m.writes.iter().sum::<f64>());
            } else {
                alone.push(m.seconds);
            }
            last = Some(m);
        }
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let field = last.expect("at least one run").field;
    if rank == 0 {
        let (a, b, w) = (median(&mut alone), median(&mut both), median(&mut written));
        let files = run.steps / run.every;
        // How much of the writes' own time did not lengthen the run: hidden behind the simulation, or behind each
        // other on several host threads (CELER_HOST_THREADS). 100 % is a run as short as the simulation alone.
        let hidden = ((w - (b - a)) / w).clamp(0.0, 1.0) * 100.0;
        println!(
            "io_overlap: {} steps of {n} cells on {ranks} rank(s), {files} snapshots ({} ms of storage each); \
             medians of {reps}: simulation alone {a:.3} s, with the snapshots {b:.3} s ({:.2} x), the writes' host \
             tasks {w:.3} s in all; {hidden:.0} % of the writes' time hidden",
            run.steps,
            run.write.as_secs_f64() * 1e3,
            b / a,
        );
    }
    if let Some(stats) = q.stats() {
        println!("io_overlap: {stats}");
    }
    if !args.no_verify {
        let mut u = init.clone();
        let mut v = vec![0.0; n];
        let mut worst = 0.0f32;
        let mut compare = |got: &[f32], want: &[f32]| {
            for (g, w) in got.iter().zip(want) {
                worst = worst.max((g - w).abs() / w.abs().max(1.0));
            }
            got.len() == want.len()
        };
        let mut complete = true;
        for s in 1..=run.steps {
            serial_step(&u, &kappa, &mut v);
            std::mem::swap(&mut u, &mut v);
            if rank == 0 && s % run.every == 0 {
                let bytes = std::fs::read(snapshot_path(&run.dir, s))?;
                let got: Vec<f32> =
                    bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
                complete &= compare(&got, &u);
            }
        }
        complete &= compare(&field, &u);
        if !complete || worst > 1e-4 {
            eprintln!(
                "io_overlap: rank {rank}: MISMATCH against the serial reference (largest relative difference \
                 {worst:e}{})",
                if complete { "" } else { "; a snapshot file has the wrong length" }
            );
            std::process::exit(1);
        }
        println!(
            "io_overlap: rank {rank}: the field{} verified against the serial reference (largest relative difference \
             {worst:.1e})",
            if rank == 0 { " and every snapshot file" } else { "" }
        );
    }
    Ok(())
}

/// Snapshots written while the simulation goes on.
#[derive(clap::Parser)]
struct Args {
    /// Cells of the rod (default 4096 in debug builds, 65536 in release).
    #[arg(long, value_name = "N")]
    size: Option<usize>,
    /// Time steps (default 200 in debug builds, 2000 in release).
    #[arg(long, value_name = "N")]
    steps: Option<usize>,
    /// A snapshot every N steps (default 40 in debug builds, 200 in release).
    #[arg(long, value_name = "N")]
    every: Option<usize>,
    /// Simulated slow storage: each write's host task sleeps this long after writing (default 20).
    #[arg(long, value_name = "MS")]
    write_ms: Option<f64>,
    /// Repetitions of each of the two runs (default 2).
    #[arg(long, value_name = "N")]
    reps: Option<usize>,
    /// Where the snapshot files go (default out/io_overlap).
    #[arg(long, value_name = "DIR")]
    dir: Option<String>,
    /// Skip the check against the serial reference.
    #[arg(long)]
    no_verify: bool,
}
