//! GPU efficiency: large kernels through celer against the same shaders dispatched by hand, in one run.
//!
//! Three workloads, each run first through celer (one task per repetition, on one rank) and then by hand through
//! celer's GPU layer (`celer_exec::gpu`, over vulkano: one dispatch per submission, submitted back to back, waiting
//! only for the last): a plain 2D copy (the card's memory-bandwidth ceiling), the wave equation step of `wave_sim`
//! (GB/s counted as the minimum traffic: two fields read, one written) and the naive matrix multiply of `matmul`
//! (GFLOP/s). Prints both figures and their ratio; the results of both paths are compared with each other (and the
//! copy with its input, the product with a serial reference at sampled cells).
//!
//! ```text
//! cargo run --release --example gpu_efficiency -- [--size 8192] [--mm-size 2048] [--reps 50]
//! ```

use std::time::{Duration, Instant};

use celer::{access, kernels, task, Buffer, Kernel, Queue};
use celer_exec::gpu::{Access, Box3, Gpu, Launch};
use celer_exec::shaders::KernelSource;

type Res<T> = Result<T, Box<dyn std::error::Error>>;

#[derive(Clone, Copy, PartialEq)]
enum Work {
    Copy,
    Wave,
    Matmul,
}

impl Work {
    fn name(self) -> &'static str {
        match self {
            Work::Copy => "copy",
            Work::Wave => "wave step",
            Work::Matmul => "matmul",
        }
    }

    fn source(self) -> &'static KernelSource {
        match self {
            Work::Copy => &kernels::COPY,
            Work::Wave => &kernels::WAVE,
            Work::Matmul => &kernels::MATMUL,
        }
    }

    /// Bytes moved (copy, wave) or FLOP (matmul) per repetition on an n × n grid.
    fn amount(self, n: usize) -> f64 {
        let cells = (n * n) as f64;
        match self {
            Work::Copy => 8.0 * cells,
            Work::Wave => 12.0 * cells,
            Work::Matmul => 2.0 * cells * n as f64,
        }
    }

    fn unit(self) -> &'static str {
        if self == Work::Matmul {
            "GFLOP/s"
        } else {
            "GB/s"
        }
    }

    /// Buffers used by repetition `r` (indices into three n × n fields) and how: (read, read, write) or fewer.
    fn roles(self, r: usize) -> Vec<(usize, bool)> {
        match self {
            Work::Copy => vec![(r % 2, false), ((r + 1) % 2, true)],
            Work::Wave => vec![(r % 3, false), ((r + 1) % 3, false), ((r + 2) % 3, true)],
            Work::Matmul => vec![(0, false), (1, false), (2, true)],
        }
    }

    /// The scalars as pushed by hand through the GPU layer (`f32` as its bits).
    fn scalars(self, n: usize) -> Vec<u32> {
        match self {
            Work::Copy => vec![],
            Work::Wave => vec![0.25f32.to_bits()],
            Work::Matmul => vec![n as u32],
        }
    }

    /// The buffer holding the result after `reps` repetitions.
    fn result(self, reps: usize) -> usize {
        match self {
            Work::Copy => reps % 2,
            Work::Wave => (reps + 1) % 3,
            Work::Matmul => 2,
        }
    }
}

fn field(n: usize, seed: usize) -> Vec<f32> {
    (0..n * n).map(|k| ((k * (7 + seed) + seed) % 13) as f32 * 0.0625 - 0.375).collect()
}

/// Runs `reps` repetitions through celer (after two untimed ones); returns seconds and the result field.
fn through_celer(q: &Queue, work: Work, n: usize, reps: usize) -> Res<(f64, Vec<f32>)> {
    let kernel = Kernel::wgsl(work.source(), "main")?;
    let bufs: Vec<Buffer<'_, f32, 2>> = (0..3).map(|s| q.buffer_from(&field(n, s), [n, n])).collect();
    let submit = |r: usize| -> Res<()> {
        let roles = work.roles(r);
        let mut t = task::parallel_for(&kernel, [n, n]).name(work.name());
        t = match work {
            Work::Copy => t,
            Work::Wave => t.scalar_f32(0.25),
            Work::Matmul => t.scalars(&[n as u32]),
        };
        for (i, &(b, writes)) in roles.iter().enumerate() {
            let buf = &bufs[b];
            t = match (work, i, writes) {
                (_, _, true) => t.discard_write(buf, access::one_to_one()),
                (Work::Wave, 1, _) => t.read(buf, access::neighborhood_along_axes([1, 1])),
                (Work::Matmul, 0, _) => t.read(buf, access::slice(1)),
                (Work::Matmul, 1, _) => t.read(buf, access::all()),
                _ => t.read(buf, access::one_to_one()),
            };
        }
        q.submit(t)?;
        Ok(())
    };
    // Two untimed repetitions compile the pipeline (and keep the rotation's parity).
    let warm = 2 * work.roles(0).len();
    for r in 0..warm {
        submit(r)?;
    }
    q.wait();
    let start = Instant::now();
    for r in warm..warm + reps {
        submit(r)?;
    }
    q.wait();
    let seconds = start.elapsed().as_secs_f64();
    let out = q.fence(&bufs[work.result(warm + reps)])?.wait()?;
    Ok((seconds, out))
}

/// The same by hand: one dispatch per submission, back to back, waiting only for the last.
fn by_hand(work: Work, n: usize, reps: usize) -> Res<(f64, Vec<f32>)> {
    let mut gpu = Gpu::new()?;
    let kernel = gpu.load_kernel(work.source(), "main")?;
    let all = Box3::d2([0, 0], [n, n]);
    let bufs = [gpu.allocate(all, 4)?, gpu.allocate(all, 4)?, gpu.allocate(all, 4)?];
    let mut batch = gpu.batch()?;
    for (s, b) in bufs.iter().enumerate() {
        let bytes: Vec<u8> = field(n, s).iter().flat_map(|v| v.to_ne_bytes()).collect();
        batch.upload(b, all, &bytes, all)?;
    }
    let mut last = batch.submit()?;
    gpu.poll_until_complete(last, Duration::from_secs(120))?;
    let launch = Launch::d2([0, 0], [n, n]);
    let scalars = work.scalars(n);
    let run = |gpu: &mut Gpu, r: usize| -> Res<celer_exec::gpu::BatchId> {
        let accesses: Vec<Access<'_>> = work
            .roles(r)
            .iter()
            .map(|&(b, writes)| if writes { Access::write(&bufs[b]) } else { Access::read(&bufs[b]) })
            .collect();
        let mut batch = gpu.batch()?;
        batch.dispatch(kernel, launch, &accesses, &scalars)?;
        Ok(batch.submit()?)
    };
    let warm = 2 * work.roles(0).len();
    for r in 0..warm {
        last = run(&mut gpu, r)?;
    }
    gpu.poll_until_complete(last, Duration::from_secs(120))?;
    let start = Instant::now();
    for r in warm..warm + reps {
        last = run(&mut gpu, r)?;
    }
    gpu.poll_until_complete(last, Duration::from_secs(600))?;
    let seconds = start.elapsed().as_secs_f64();
    let mut batch = gpu.batch()?;
    let d = batch.download(&bufs[work.result(warm + reps)], all)?;
    let id = batch.submit()?;
    gpu.poll_until_complete(id, Duration::from_secs(120))?;
    let mut bytes = vec![0u8; n * n * 4];
    gpu.read_download(d, &mut bytes, all)?;
    for b in bufs {
        gpu.free(b);
    }
    Ok((seconds, bytes.chunks_exact(4).map(|c| f32::from_ne_bytes([c[0], c[1], c[2], c[3]])).collect()))
}

/// Checks what a serial program can check cheaply: the copy returns its input; sampled cells of the product.
fn check_serial(work: Work, n: usize, got: &[f32]) -> Res<()> {
    match work {
        Work::Copy => {
            // The first copy overwrites field 1 with field 0; from then on both hold field 0.
            if got != field(n, 0).as_slice() {
                return Err("copy: the field changed".into());
            }
        }
        Work::Matmul => {
            let (a, b) = (field(n, 0), field(n, 1));
            for s in 0..16 {
                let (i, j) = ((s * 7919) % n, (s * 104_729) % n);
                let want: f32 = (0..n).map(|k| a[i * n + k] * b[k * n + j]).sum();
                if (got[i * n + j] - want).abs() > 1e-3 * want.abs().max(1.0) {
                    return Err(format!("matmul: c[{i}, {j}] = {}, serial {want}", got[i * n + j]).into());
                }
            }
        }
        Work::Wave => {}
    }
    Ok(())
}

fn main() -> Res<()> {
    // celer's rank-prefixed logger, at the level of CELER_LOG (celer installs none unless asked).
    celer::logging::init();
    let release = !cfg!(debug_assertions);
    let mut n = if release { 8192 } else { 128 };
    let mut mm = if release { 2048 } else { 64 };
    let mut reps = if release { 50 } else { 4 };
    let args = <Args as clap::Parser>::parse();
    if let Some(v) = args.size {
        n = v.parse()?;
    }
    if let Some(v) = args.mm_size {
        mm = v.parse()?;
    }
    if let Some(v) = args.reps {
        reps = v.parse()?;
    }
    let works = [(Work::Copy, n, reps), (Work::Wave, n, reps), (Work::Matmul, mm, (reps / 5).max(2))];
    let mut celer = Vec::new();
    {
        let q = Queue::new()?;
        if q.ranks() > 1 {
            return Err("gpu_efficiency compares one GPU with one GPU: run it on one rank".into());
        }
        for &(work, size, r) in &works {
            celer.push(through_celer(&q, work, size, r)?);
        }
    }
    println!("gpu_efficiency: celer (1 rank) against the same shaders dispatched by hand, one GPU");
    println!("  workload          size      reps        celer        by hand    celer ÷ by hand");
    for (&(work, size, r), (secs, got)) in works.iter().zip(&celer) {
        let (hand_secs, want) = by_hand(work, size, r)?;
        if got != &want {
            let worst = got.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
            return Err(format!("{}: celer and the hand-written run differ (up to {worst:e})", work.name()).into());
        }
        check_serial(work, size, got)?;
        let rate = |s: f64| work.amount(size) * r as f64 / s / 1e9;
        println!(
            "  {:<12} {:>6}²  {:>8}  {:>8.1} {:<7} {:>6.1} {:<7} {:>8.3}",
            work.name(),
            size,
            r,
            rate(*secs),
            work.unit(),
            rate(hand_secs),
            work.unit(),
            rate(*secs) / rate(hand_secs)
        );
    }
    println!("gpu_efficiency: results of celer and by hand identical; copy and sampled matmul cells match serial");
    Ok(())
}

/// GPU efficiency: large kernels through celer against the same shaders dispatched by hand.
#[derive(clap::Parser)]
struct Args {
    /// Stencil grid size (default 128 in debug builds, 8192 in release).
    #[arg(long, value_name = "N")]
    size: Option<String>,
    /// Matrix size of the multiplication (default 64 in debug builds, 2048 in release).
    #[arg(long, value_name = "N")]
    mm_size: Option<String>,
    /// Repetitions of each measurement (default 4 in debug builds, 50 in release).
    #[arg(long, value_name = "N")]
    reps: Option<String>,
}
