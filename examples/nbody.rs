//! All-pairs gravitational N-body: every step each rank updates its bodies from the positions of *all* bodies, so
//! every rank sends its bodies to every other rank each step. Checks the result against a serial integration and
//! reports the drift of the total energy.
//!
//! Shows: a read of `all`, a custom range mapper (body `i` owns the four floats `4i..4i+4`), double buffering.
//!
//! ```text
//! cargo run --release --example nbody -- [--bodies 1024] [--steps 100] [--warmup 0] [--no-verify] [--no-energy]
//! mpirun -n 2 target/release/examples/nbody
//! ```

use std::time::Instant;

use celer::{access, kernels, task, GridBox, Kernel, Queue, Region};

const DT: f32 = 0.001;
const EPS2: f32 = 0.01;

fn energy(pos: &[f32], vel: &[f32]) -> f64 {
    let n = pos.len() / 4;
    let mut e = 0.0f64;
    for i in 0..n {
        let m = pos[4 * i + 3] as f64;
        let v2: f64 = (0..3).map(|d| (vel[4 * i + d] as f64).powi(2)).sum();
        e += 0.5 * m * v2;
        for j in i + 1..n {
            let r2: f64 = (0..3).map(|d| (pos[4 * j + d] as f64 - pos[4 * i + d] as f64).powi(2)).sum();
            e -= m * pos[4 * j + 3] as f64 / (r2 + EPS2 as f64).sqrt();
        }
    }
    e
}

fn serial(pos: &[f32], vel: &[f32], steps: usize) -> Vec<f32> {
    let n = pos.len() / 4;
    let (mut p, mut v) = (pos.to_vec(), vel.to_vec());
    let mut next = p.clone();
    for _ in 0..steps {
        for i in 0..n {
            let mut acc = [0.0f32; 3];
            for j in 0..n {
                let d = [p[4 * j] - p[4 * i], p[4 * j + 1] - p[4 * i + 1], p[4 * j + 2] - p[4 * i + 2]];
                let r2 = d[0] * d[0] + d[1] * d[1] + d[2] * d[2] + EPS2;
                let s = p[4 * j + 3] / (r2 * r2.sqrt());
                (0..3).for_each(|k| acc[k] += s * d[k]);
            }
            for k in 0..3 {
                v[4 * i + k] += DT * acc[k];
                next[4 * i + k] = p[4 * i + k] + DT * v[4 * i + k];
            }
            next[4 * i + 3] = p[4 * i + 3];
        }
        std::mem::swap(&mut p, &mut next);
    }
    p
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // celer's rank-prefixed logger, at the level of CELER_LOG (celer installs none unless asked).
    celer::logging::init();
    let mut n = if cfg!(debug_assertions) { 128 } else { 1024 };
    let mut steps = if cfg!(debug_assertions) { 10 } else { 100 };
    let mut verify = true;
    let mut check_energy = true;
    // Untimed steps first: the first kernel's compilation and the GPUs' clock ramp are not step time.
    let mut warmup = 0usize;
    let args = <Args as clap::Parser>::parse();
    if let Some(v) = args.bodies {
        n = v.parse()?;
    }
    if let Some(v) = args.steps {
        steps = v.parse()?;
    }
    if let Some(v) = args.warmup {
        warmup = v.parse()?;
    }
    if args.no_verify {
        verify = false;
    }
    if args.no_energy {
        check_energy = false;
    }
    // Bodies on a jittered sphere shell, slowly rotating, equal masses.
    let mut pos = Vec::with_capacity(4 * n);
    let mut vel = Vec::with_capacity(4 * n);
    for i in 0..n {
        let (t, p) = (i as f32 * 2.399_963, (1.0 - 2.0 * (i as f32 + 0.5) / n as f32).acos());
        let r = 1.0 + 0.1 * ((i * 7919) % 97) as f32 / 97.0;
        let (x, y, z) = (r * p.sin() * t.cos(), r * p.sin() * t.sin(), r * p.cos());
        pos.extend_from_slice(&[x, y, z, 1.0 / n as f32]);
        vel.extend_from_slice(&[-0.3 * y, 0.3 * x, 0.0, 0.0]);
    }
    let q = Queue::new()?;
    let mut p_in = q.buffer_from(&pos, [4 * n]).named("pos");
    let v = q.buffer_from(&vel, [4 * n]).named("vel");
    let mut p_out = q.buffer::<f32, 1>([4 * n]).named("pos_next");
    let step = Kernel::wgsl(&kernels::NBODY, "main")?;
    let bodies = || {
        access::custom("bodies", |chunk: &GridBox<1>, _: &GridBox<1>| {
            Region::from(GridBox::d1(4 * chunk.min()[0], 4 * chunk.max()[0]))
        })
        // Cells 4i..4i+4 belong to body i alone: only the bodies of the cells asked about touch them.
        .reach(|cells: &GridBox<1>, range: &GridBox<1>| {
            GridBox::d1(cells.min()[0] / 4, cells.max()[0].div_ceil(4)).intersection(range)
        })
    };
    let mut start = Instant::now();
    for i in 0..warmup + steps {
        if i == warmup {
            // Every rank starts the clock together (a barrier), so one rank's late start-up is not counted.
            q.barrier();
            start = Instant::now();
        }
        q.submit(
            task::parallel_for(&step, [n])
                .read(&p_in, access::all())
                .read_write(&v, bodies())
                .discard_write(&p_out, bodies())
                .scalar("n", n as u32)
                .scalar("dt", DT)
                .scalar("eps2", EPS2)
                .name("nbody_step"),
        )?;
        std::mem::swap(&mut p_in, &mut p_out);
    }
    q.barrier();
    let elapsed = start.elapsed();
    let final_pos = q.fence(&p_in)?.wait()?;
    let final_vel = q.fence(&v)?.wait()?;
    let (rank, ranks) = (q.rank(), q.ranks());
    let (e0, e1) = if check_energy || verify {
        (energy(&pos, &vel), energy(&final_pos, &final_vel))
    } else {
        (f64::NAN, f64::NAN)
    };
    if rank == 0 {
        let timed = if warmup == 0 {
            "including the first kernel's compilation".to_owned()
        } else {
            format!("after {warmup} untimed steps")
        };
        println!(
            "nbody: {n} bodies, {steps} steps on {ranks} rank(s): {:.1} µs per step ({timed}); energy drift {:.2e}",
            elapsed.as_secs_f64() * 1e6 / steps as f64,
            ((e1 - e0) / e0).abs()
        );
    }
    if let Some(stats) = q.stats() {
        println!("nbody: {stats}");
    }
    if verify {
        let want = serial(&pos, &vel, warmup + steps);
        let worst = final_pos.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
        if worst > 1e-3 || ((e1 - e0) / e0).abs() > 1e-2 {
            eprintln!("nbody: rank {rank}: MISMATCH: largest position difference {worst:e}, energy {e0} -> {e1}");
            std::process::exit(1);
        }
        println!("nbody: rank {rank}: verified against the serial integration (largest difference {worst:.1e})");
    }
    Ok(())
}

/// All-pairs gravitational N-body on every rank and its GPU.
#[derive(clap::Parser)]
struct Args {
    /// Number of bodies (default 128 in debug builds, 1024 in release).
    #[arg(long, value_name = "N")]
    bodies: Option<String>,
    /// Time steps (default 10 in debug builds, 100 in release).
    #[arg(long, value_name = "N")]
    steps: Option<String>,
    /// Untimed steps before the timed ones (default 0).
    #[arg(long, value_name = "N")]
    warmup: Option<String>,
    /// Skip the check against the serial reference.
    #[arg(long)]
    no_verify: bool,
    /// Skip the energy check (O(n^2) on one host core).
    #[arg(long)]
    no_energy: bool,
}
