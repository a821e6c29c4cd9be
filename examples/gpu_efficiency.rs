//! GPU efficiency: large kernels through celer against the same shaders dispatched by hand, in one run.
//!
//! Three workloads: a plain 2D copy (the card's memory-bandwidth ceiling), the wave equation step of `wave_sim`
//! (GB/s counted as the minimum traffic: two fields read, one written) and the naive matrix multiply of `matmul`
//! (GFLOP/s). Each runs through celer (one task per repetition, on one rank) and by hand through celer's GPU layer
//! (`celer_exec::gpu`, over vulkano: one dispatch per submission, submitted back to back, waiting only for the
//! last), both alive in the same process.
//!
//! How it is measured: per workload, `--series` series (default 5); in series s both paths run, celer first when s
//! is even and by hand first when it is odd. Before its timed `--reps` repetitions, each path runs an untimed
//! warm-up of the same workload: as many repetitions as took ≥ 200 ms by hand when the workload was set up (at
//! least 2), so both paths run the same number of repetitions in all and end with the same fields. Prints every
//! series' rates and ratio (celer ÷ by hand), so that a bimodal ratio shows, and the minimum and median ratio. The
//! results of both paths are compared with each other at the end (and the copy with its input, the product with a
//! serial reference at sampled cells).
//!
//! ```text
//! cargo run --release --example gpu_efficiency -- [--size 8192] [--mm-size 2048] [--reps 50] [--series 5]
//!     [--workloads copy,wave,matmul]
//! ```

use std::time::{Duration, Instant};

use celer::{access, kernels, task, Buffer, Kernel, Queue};
use celer_examples::stats::median;
use celer_exec::gpu::{Access, BatchId, Box3, DeviceAllocation, Gpu, KernelId, Launch};
use celer_exec::shaders::KernelSource;

type Res<T> = Result<T, Box<dyn std::error::Error>>;

/// How long, at least, the untimed warm-up before each timed series runs (measured by hand at set-up).
const WARM_UP: Duration = Duration::from_millis(200);

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

    /// The workload's name on the command line.
    fn key(self) -> &'static str {
        match self {
            Work::Copy => "copy",
            Work::Wave => "wave",
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

/// One workload through celer: its buffers, and the repetitions run so far (they pick the buffers' roles).
struct ThroughCeler<'q> {
    q: &'q Queue,
    work: Work,
    n: usize,
    kernel: Kernel,
    bufs: Vec<Buffer<'q, f32, 2>>,
    done: usize,
}

impl<'q> ThroughCeler<'q> {
    fn new(q: &'q Queue, work: Work, n: usize) -> Res<Self> {
        let kernel = Kernel::wgsl(work.source(), "main")?;
        let bufs = (0..3).map(|s| q.buffer_from(&field(n, s), [n, n])).collect();
        Ok(ThroughCeler { q, work, n, kernel, bufs, done: 0 })
    }

    /// Runs `reps` repetitions, one task each, and waits for them; returns the seconds from the first submission.
    fn run(&mut self, reps: usize) -> Res<f64> {
        let (work, n, q) = (self.work, self.n, self.q);
        q.wait();
        let start = Instant::now();
        for r in self.done..self.done + reps {
            let mut t = task::parallel_for(&self.kernel, [n, n]).name(work.name());
            t = match work {
                Work::Copy => t,
                Work::Wave => t.scalar_f32(0.25),
                Work::Matmul => t.scalars(&[n as u32]),
            };
            for (i, &(b, writes)) in work.roles(r).iter().enumerate() {
                let buf = &self.bufs[b];
                t = match (work, i, writes) {
                    (_, _, true) => t.discard_write(buf, access::one_to_one()),
                    (Work::Wave, 1, _) => t.read(buf, access::neighborhood_along_axes([1, 1])),
                    (Work::Matmul, 0, _) => t.read(buf, access::slice(1)),
                    (Work::Matmul, 1, _) => t.read(buf, access::all()),
                    _ => t.read(buf, access::one_to_one()),
                };
            }
            q.submit(t)?;
        }
        q.wait();
        self.done += reps;
        Ok(start.elapsed().as_secs_f64())
    }

    fn result(&self) -> Res<Vec<f32>> {
        Ok(self.q.fence(&self.bufs[self.work.result(self.done)])?.wait()?)
    }
}

/// The same workload by hand: one dispatch per submission, back to back, waiting only for the last.
struct ByHand {
    work: Work,
    n: usize,
    kernel: KernelId,
    bufs: Vec<DeviceAllocation>,
    done: usize,
}

impl ByHand {
    fn new(gpu: &mut Gpu, work: Work, n: usize) -> Res<Self> {
        let kernel = gpu.load_kernel(work.source(), "main")?;
        let all = Box3::d2([0, 0], [n, n]);
        let bufs = vec![gpu.allocate(all, 4)?, gpu.allocate(all, 4)?, gpu.allocate(all, 4)?];
        let mut batch = gpu.batch()?;
        for (s, b) in bufs.iter().enumerate() {
            let bytes: Vec<u8> = field(n, s).iter().flat_map(|v| v.to_ne_bytes()).collect();
            batch.upload(b, all, &bytes, all)?;
        }
        let id = batch.submit()?;
        gpu.poll_until_complete(id, Duration::from_secs(120))?;
        Ok(ByHand { work, n, kernel, bufs, done: 0 })
    }

    /// Runs `reps` repetitions and waits for the last; returns the seconds from the first submission.
    fn run(&mut self, gpu: &mut Gpu, reps: usize) -> Res<f64> {
        let launch = Launch::d2([0, 0], [self.n, self.n]);
        let scalars = self.work.scalars(self.n);
        let start = Instant::now();
        let mut last: Option<BatchId> = None;
        for r in self.done..self.done + reps {
            let accesses: Vec<Access<'_>> = self
                .work
                .roles(r)
                .iter()
                .map(|&(b, writes)| if writes { Access::write(&self.bufs[b]) } else { Access::read(&self.bufs[b]) })
                .collect();
            let mut batch = gpu.batch()?;
            batch.dispatch(self.kernel, launch, &accesses, &scalars)?;
            last = Some(batch.submit()?);
        }
        if let Some(id) = last {
            gpu.poll_until_complete(id, Duration::from_secs(600))?;
        }
        self.done += reps;
        Ok(start.elapsed().as_secs_f64())
    }

    fn result(&self, gpu: &mut Gpu) -> Res<Vec<f32>> {
        let all = Box3::d2([0, 0], [self.n, self.n]);
        let mut batch = gpu.batch()?;
        let d = batch.download(&self.bufs[self.work.result(self.done)], all)?;
        let id = batch.submit()?;
        gpu.poll_until_complete(id, Duration::from_secs(120))?;
        let mut bytes = vec![0u8; self.n * self.n * 4];
        gpu.read_download(d, &mut bytes, all)?;
        Ok(bytes.chunks_exact(4).map(|c| f32::from_ne_bytes([c[0], c[1], c[2], c[3]])).collect())
    }

    fn free(self, gpu: &mut Gpu) {
        for b in self.bufs {
            gpu.free(b);
        }
    }
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
    let series: usize = args.series.as_deref().unwrap_or("5").parse()?;
    if reps == 0 || series == 0 {
        return Err("--reps and --series must be ≥ 1".into());
    }
    let all = [(Work::Copy, n, reps), (Work::Wave, n, reps), (Work::Matmul, mm, (reps / 5).max(2))];
    let works: Vec<_> = match args.workloads.as_deref() {
        None => all.to_vec(),
        Some(list) => list
            .split(',')
            .map(|name| {
                all.iter()
                    .copied()
                    .find(|w| w.0.key() == name)
                    .ok_or_else(|| format!("unknown workload {name}; use a list of copy, wave, matmul").into())
            })
            .collect::<Res<_>>()?,
    };
    let q = Queue::new()?;
    if q.ranks() > 1 {
        return Err("gpu_efficiency compares one GPU with one GPU: run it on one rank".into());
    }
    let mut gpu = Gpu::new()?;
    println!(
        "gpu_efficiency: celer (1 rank) against the same shaders dispatched by hand, one GPU; {series} series per \
         workload, celer first in even series, by hand first in odd ones, each path after an untimed warm-up of \
         ≥ {} ms",
        WARM_UP.as_millis()
    );
    let mut summary = Vec::new();
    for &(work, size, r) in &works {
        let mut celer = ThroughCeler::new(&q, work, size)?;
        let mut hand = ByHand::new(&mut gpu, work, size)?;
        // The warm-up's length: repetitions by hand until they took ≥ WARM_UP (this also warms up); celer then
        // runs as many, so that both paths run the same repetitions in all.
        let mut warm = 0;
        let start = Instant::now();
        while warm < 2 || start.elapsed() < WARM_UP {
            hand.run(&mut gpu, r)?;
            warm += r;
        }
        celer.run(warm)?;
        let rate = |s: f64| work.amount(size) * r as f64 / s / 1e9;
        println!("  {} {size}², {r} repetitions per series, warm-up {warm} repetitions:", work.name());
        let mut ratios = Vec::new();
        for s in 0..series {
            let (mut celer_s, mut hand_s) = (0.0, 0.0);
            for celer_turn in if s % 2 == 0 { [true, false] } else { [false, true] } {
                if celer_turn {
                    celer.run(warm)?;
                    celer_s = celer.run(r)?;
                } else {
                    hand.run(&mut gpu, warm)?;
                    hand_s = hand.run(&mut gpu, r)?;
                }
            }
            let ratio = rate(celer_s) / rate(hand_s);
            println!(
                "    series {s} {:<17} celer {:>8.1} {:<7} by hand {:>8.1} {:<7} celer ÷ by hand {ratio:6.3}",
                if s % 2 == 0 { "(celer first):" } else { "(by hand first):" },
                rate(celer_s),
                work.unit(),
                rate(hand_s),
                work.unit(),
            );
            ratios.push(ratio);
        }
        let got = celer.result()?;
        let want = hand.result(&mut gpu)?;
        if got != want {
            let worst = got.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
            return Err(format!("{}: celer and the hand-written run differ (up to {worst:e})", work.name()).into());
        }
        check_serial(work, size, &got)?;
        hand.free(&mut gpu);
        let min = ratios.iter().copied().fold(f64::INFINITY, f64::min);
        summary.push((work, size, r, min, median(&ratios), ratios.iter().copied().fold(0.0, f64::max)));
    }
    println!("  workload          size      reps   series   celer ÷ by hand: min   median      max");
    for (work, size, r, min, med, max) in summary {
        println!("  {:<12} {:>6}²  {:>8}  {series:>7}   {min:>20.3} {med:>8.3} {max:>8.3}", work.name(), size, r);
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
    /// Timed repetitions per series of the copy and the wave step; the matmul runs a fifth as many, at least 2
    /// (default 4 in debug builds, 50 in release).
    #[arg(long, value_name = "N")]
    reps: Option<String>,
    /// Workloads to run, comma-separated: copy, wave, matmul (default: all).
    #[arg(long, value_name = "LIST")]
    workloads: Option<String>,
    /// Series per workload, alternating which path goes first (default 5).
    #[arg(long, value_name = "N")]
    series: Option<String>,
}
