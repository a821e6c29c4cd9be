//! METG: the minimum effective task granularity of celer, measured the Task Bench way, beside hand-written
//! baselines in the same run.
//!
//! A task graph of `width` points × `steps` timesteps: at every step each point runs a compute-bound kernel of `iters`
//! iterations (16 FLOP per GPU thread per iteration) and depends on points of the previous step chosen by a pattern:
//! `trivial` (none), `no_comm` (itself), `stencil_1d` (p−1, p, p+1), `fft` (butterfly: p and p xor 2^k), `tree`
//! (p / 2), `nearest` (the `radix` points centred on p) or `spread` (`radix` points spaced width / radix apart).
//! Every task checks that its inputs carry the tags its predecessors wrote (kernels/metg.wgsl); the final tags
//! are checked on the host, so a wrong schedule fails the run.
//!
//! The sweep halves `iters` from `--iters-max` down to `--iters-min`; a task is one point-step, and its granularity
//! = wall time × ranks ÷ tasks (by default every rank owns one point, so a task is one kernel on one GPU).
//!
//! How it is measured, so that no backend is flattered by the order or by a cold GPU:
//! - The driver (the command below, not under mpirun) runs, for each repetition r in 0..`--reps`, each pattern, and
//!   for each pattern every backend once, in the order of `--backends` rotated left by r (so no backend always goes
//!   first). Each such run is one process (one `mpirun`: MPI starts once per process) that measures the whole sweep
//!   of that pattern. Every (backend, pattern, iters) point thus gets `--reps` measurements.
//! - Before its sweep, every backend warms the GPU (or CPU) up: it runs the pattern at the largest size, untimed,
//!   until at least 200 ms have passed on every rank (clocks ramp up, pipelines compile, memory is touched).
//! - Each point reports the minimum and the median µs per task of its measurements. Efficiency = the FLOP/s of the
//!   median measurement ÷ the best FLOP/s that any single measurement of any GPU backend reached in the whole run
//!   (all patterns; the `cpu` backend is measured against the best of its own, the CPU being another processor).
//!   METG(50%) is the smallest granularity still at ≥ 50% efficiency, interpolated (log scale) between the two
//!   measured sizes around 50%.
//!
//! The backends run the same graphs:
//! - `celer`: one celer task per timestep over all points, split over the ranks; the runtime moves the tags.
//! - `vulkan`: the best we can write by hand without a runtime: each rank dispatches its points' kernel through
//!   celer's GPU layer (`celer_exec::gpu`, a thin layer over vulkano); steps that need no exchange are recorded into
//!   one batch (up to 64 dispatches per submission, with the barriers the GPU layer derives), submitted at once;
//!   before a step that exchanges, the tags other ranks need are downloaded (one copy per contiguous run of points),
//!   sent with MPI Isend/Irecv, and the received ones uploaded packed (one upload per contiguous run of points).
//! - `cpu`: plain MPI on the CPU, one point per rank, the same FMA chains in Rust (16 FLOP per iteration).
//! - `cuda` and `cuda_graph` (with `--cuda-bin PATH`): an external program, e.g. hand-written CUDA + MPI, started
//!   like the other GPU backends (directly for one rank, else under `MPIRUN -n RANKS`) as `PATH --out FILE --variant
//!   stream|graph --patterns P --points-per-rank N --threads N --iters-max N --iters-min N --budget N --max-steps N
//!   --radix N`, once per (repetition, pattern, variant), P being one pattern (variant `stream` is backend `cuda`,
//!   `graph` is `cuda_graph`). It does its own warm-up, measures the sweep of `iters` from `--iters-max` halving
//!   down to `--iters-min` with `steps` = clamp(budget ÷ iters, 16, max-steps), and rank 0 writes one line per size
//!   to FILE, in that order: `backend pattern ranks width iters steps seconds flop` (width = ranks × points per
//!   rank, seconds = the wall time of the timed steps, flop = iters × 16 × width × threads × steps). A non-zero exit
//!   or a file that does not hold exactly that sweep fails the run.
//!
//! ```text
//! cargo build --release --example metg
//! target/release/examples/metg [--ranks 1] [--cpu-ranks 4] [--backends celer,vulkan,cpu] [--patterns all]
//!     [--reps 3] [--cuda-bin PATH] [--points-per-rank 1] [--threads 65536] [--iters-max 65536] [--iters-min 1]
//!     [--budget 4194304] [--max-steps 2000] [--radix 3] [--out-dir out/metg]
//! ```
//! The driver starts the workers with `mpirun -n RANKS` (or directly for one rank), prints a table per pattern and
//! backend, the METG of each backend and the ratios of celer's to the others', and writes `OUT_DIR/metg.svg`
//! (efficiency against granularity), `OUT_DIR/summary.md` and every run's raw lines under `OUT_DIR/raw/`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use celer::{access, task, GridBox, Kernel, Queue, Region};

/// The harness's own kernel, `kernels/metg.wgsl`, compiled by the package's build script as a program's would be.
#[allow(dead_code)] // kernels/ also holds the reliability tests' faulty.wgsl
mod kernels {
    celer::include_kernels!();
}
use celer_examples::stats::median;
use celer_exec::gpu::{Access, BatchId, Box3, DeviceAllocation, DownloadId, Gpu, KernelId, Launch};
use celer_exec::mpi::{Communicator, SideComm};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

/// FLOP per GPU thread (or CPU point) per iteration: 8 chains of one multiply-add each.
const FLOP_PER_ITER: f64 = 16.0;

/// How long every backend runs its pattern's largest size, untimed, before its sweep (on every rank).
const WARM_UP: Duration = Duration::from_millis(200);

/// Steps of the largest size per warm-up round (the ranks agree after each round whether to stop).
const WARM_UP_ROUND: u32 = 8;

/// Most dispatches the hand-written Vulkan backend records into one submission.
const DISPATCHES_PER_BATCH: usize = 64;

/// How long a worker waits for one GPU submission before it gives up.
const GPU_TIMEOUT: Duration = Duration::from_secs(120);

/// The backends an external program (`--cuda-bin`) measures, with the `--variant` that selects each.
const EXTERNAL: [(&str, &str); 2] = [("cuda", "stream"), ("cuda_graph", "graph")];

/// The dependence patterns, numbered as in kernels/metg.wgsl.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Pattern {
    Trivial = 0,
    NoComm = 1,
    Stencil1d = 2,
    Fft = 3,
    Tree = 4,
    Nearest = 5,
    Spread = 6,
}

const PATTERNS: [Pattern; 7] = [
    Pattern::Trivial,
    Pattern::NoComm,
    Pattern::Stencil1d,
    Pattern::Fft,
    Pattern::Tree,
    Pattern::Nearest,
    Pattern::Spread,
];

impl Pattern {
    fn name(self) -> &'static str {
        match self {
            Pattern::Trivial => "trivial",
            Pattern::NoComm => "no_comm",
            Pattern::Stencil1d => "stencil_1d",
            Pattern::Fft => "fft",
            Pattern::Tree => "tree",
            Pattern::Nearest => "nearest",
            Pattern::Spread => "spread",
        }
    }

    fn parse(s: &str) -> Res<Vec<Pattern>> {
        if s == "all" {
            return Ok(PATTERNS.to_vec());
        }
        s.split(',')
            .map(|name| {
                PATTERNS.iter().copied().find(|p| p.name() == name).ok_or_else(|| {
                    let names: Vec<_> = PATTERNS.iter().map(|p| p.name()).collect();
                    format!("unknown pattern {name}; use all or a list of {}", names.join(", ")).into()
                })
            })
            .collect()
    }

    /// The points of step `t − 1` that point `p` of step `t` reads (as the kernel checks them).
    fn deps(self, p: usize, t: u32, width: usize, radix: usize, out: &mut Vec<usize>) {
        out.clear();
        let mut add = |j: i64| {
            if (0..width as i64).contains(&j) {
                out.push(j as usize);
            }
        };
        let q = p as i64;
        match self {
            Pattern::Trivial => {}
            Pattern::NoComm => add(q),
            Pattern::Stencil1d => (q - 1..=q + 1).for_each(add),
            Pattern::Fft => {
                add(q);
                let log2 = width.ilog2();
                if log2 > 0 {
                    add((p ^ (1 << ((t - 1) % log2))) as i64);
                }
            }
            Pattern::Tree => add(q / 2),
            Pattern::Nearest => {
                let lo = q - (radix / 2) as i64;
                (lo..lo + radix as i64).for_each(add);
            }
            Pattern::Spread => {
                let gap = (width / radix.max(1)).max(1);
                (0..radix.min(width)).for_each(|k| add(((p + k * gap) % width) as i64));
            }
        }
    }
}

/// The tag point `p` writes at step `t` (step 0: the initial buffer).
fn tag(t: u32, p: usize, width: usize) -> u32 {
    t.wrapping_mul(width as u32).wrapping_add(p as u32 + 1)
}

/// What a worker runs.
#[derive(Clone, Debug)]
struct Params {
    patterns: Vec<Pattern>,
    points_per_rank: usize,
    threads: usize,
    iters_max: u32,
    iters_min: u32,
    budget: u64,
    max_steps: u32,
    radix: usize,
}

impl Params {
    fn sizes(&self) -> Vec<(u32, u32)> {
        let mut out = Vec::new();
        let mut iters = self.iters_max;
        while iters >= self.iters_min.max(1) {
            let steps = (self.budget / u64::from(iters)).clamp(16, u64::from(self.max_steps)) as u32;
            out.push((iters, steps));
            iters /= 2;
        }
        out
    }

    fn args(&self) -> Vec<String> {
        let patterns: Vec<_> = self.patterns.iter().map(|p| p.name()).collect();
        [
            ("--patterns", patterns.join(",")),
            ("--points-per-rank", self.points_per_rank.to_string()),
            ("--threads", self.threads.to_string()),
            ("--iters-max", self.iters_max.to_string()),
            ("--iters-min", self.iters_min.to_string()),
            ("--budget", self.budget.to_string()),
            ("--max-steps", self.max_steps.to_string()),
            ("--radix", self.radix.to_string()),
        ]
        .into_iter()
        .flat_map(|(k, v)| [k.to_string(), v])
        .collect()
    }
}

/// One measured size of one pattern on one backend.
#[derive(Clone, Debug)]
struct Sample {
    backend: String,
    pattern: String,
    ranks: usize,
    width: usize,
    iters: u32,
    steps: u32,
    seconds: f64,
    flop: f64,
}

impl Sample {
    /// A measurement of `steps` steps of `iters` iterations on `width` points of `threads` lanes each (16 FLOP per
    /// lane and iteration).
    #[allow(clippy::too_many_arguments)]
    fn new(
        backend: &str,
        pattern: Pattern,
        ranks: usize,
        width: usize,
        threads: usize,
        iters: u32,
        steps: u32,
        seconds: f64,
    ) -> Sample {
        let flop = f64::from(iters) * FLOP_PER_ITER * (width * threads) as f64 * f64::from(steps);
        Sample { backend: backend.into(), pattern: pattern.name().into(), ranks, width, iters, steps, seconds, flop }
    }

    fn line(&self) -> String {
        format!(
            "{} {} {} {} {} {} {:.9} {:.6e}",
            self.backend, self.pattern, self.ranks, self.width, self.iters, self.steps, self.seconds, self.flop
        )
    }

    fn parse(line: &str) -> Res<Sample> {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() != 8 {
            return Err(format!("bad result line {line:?}").into());
        }
        Ok(Sample {
            backend: f[0].into(),
            pattern: f[1].into(),
            ranks: f[2].parse()?,
            width: f[3].parse()?,
            iters: f[4].parse()?,
            steps: f[5].parse()?,
            seconds: f[6].parse()?,
            flop: f[7].parse()?,
        })
    }

    fn flops(&self) -> f64 {
        self.flop / self.seconds
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Backend 1: celer.

fn run_celer(params: &Params) -> Res<Vec<Sample>> {
    let q = Queue::new()?;
    let (ranks, width, n) = (q.ranks(), q.ranks() * params.points_per_rank, params.threads);
    let kernel = Kernel::wgsl(&kernels::METG, "main")?;
    let initial: Vec<u32> = (0..width).map(|p| tag(0, p, width)).collect();
    let mut samples = Vec::new();
    for &pattern in &params.patterns {
        let tags = [q.buffer_from(&initial, [width]).named("tags_a"), q.buffer::<u32, 1>([width]).named("tags_b")];
        let scratch = q.buffer_from(&vec![0.0f32; width * n], [width, n]).named("scratch");
        let radix = params.radix;
        let log2 = width.ilog2();
        let mut t = 0u32;
        let step = |t: u32, iters: u32| {
            let reads = move |chunk: &GridBox<2>, _: &GridBox<1>| {
                let mut deps = Vec::new();
                let mut boxes = Vec::new();
                for p in chunk.min()[0]..chunk.max()[0] {
                    pattern.deps(p, t, width, radix, &mut deps);
                    boxes.extend(deps.iter().map(|&j| GridBox::d1(j, j + 1)));
                }
                Region::from_boxes(boxes)
            };
            let writes =
                |chunk: &GridBox<2>, _: &GridBox<1>| Region::from_boxes([GridBox::d1(chunk.min()[0], chunk.max()[0])]);
            q.submit(
                task::parallel_for(&kernel, [width, n])
                    .name(pattern.name())
                    .read(&tags[(t as usize - 1) % 2], access::custom("pattern", reads))
                    .discard_write(&tags[t as usize % 2], access::custom("points", writes))
                    .read_write(&scratch, access::one_to_one())
                    .scalars(&[iters, t, width as u32, pattern as u32, radix as u32, log2]),
            )
        };
        // Warm-up at the largest size until every rank has run ≥ WARM_UP: pipeline creation, first allocations
        // and the clock ramp stay out of the timings.
        let start = Instant::now();
        loop {
            for _ in 0..WARM_UP_ROUND {
                t += 1;
                step(t, params.iters_max)?;
            }
            q.wait();
            if celer_all_ranks(&q, start.elapsed() >= WARM_UP)? {
                break;
            }
        }
        for (iters, steps) in params.sizes() {
            q.barrier();
            let start = Instant::now();
            for _ in 0..steps {
                t += 1;
                step(t, iters)?;
            }
            q.wait();
            let seconds = start.elapsed().as_secs_f64();
            let got = q.fence(&tags[t as usize % 2])?.wait()?;
            check_tags(&got, t, width, 0..width, "celer", pattern)?;
            samples.push(Sample::new("celer", pattern, ranks, width, n, iters, steps, seconds));
        }
    }
    // Where each rank's runtime spent the sweep (on stderr, beside the results).
    if let Some(stats) = q.stats() {
        eprintln!("metg: celer {stats}");
    }
    Ok(samples)
}

/// Whether `mine` holds on every rank, agreed through celer itself (a collective host task and a fence).
fn celer_all_ranks(q: &Queue, mine: bool) -> Res<bool> {
    if q.ranks() == 1 {
        return Ok(mine);
    }
    let flags = q.buffer::<u32, 1>([q.ranks()]).named("warm_up_done");
    q.submit(
        task::host_collective()
            .name("warm_up_done")
            .discard_write(&flags, access::one_to_one())
            .run(move |ctx| ctx.data_mut::<u32>(0).fill(u32::from(mine))),
    )?;
    Ok(q.fence(&flags)?.wait()?.iter().all(|&f| f == 1))
}

fn check_tags(
    got: &[u32],
    t: u32,
    width: usize,
    points: std::ops::Range<usize>,
    who: &str,
    pattern: Pattern,
) -> Res<()> {
    for p in points {
        if got[p] != tag(t, p, width) {
            return Err(format!(
                "{who}, pattern {}: point {p} holds tag {:#x} after step {t}, expected {:#x} (a task saw wrong inputs)",
                pattern.name(),
                got[p],
                tag(t, p, width)
            )
            .into());
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------------------------
// Shared by the hand-written backends: who sends which tags to whom before step t.

/// The exchange before step `t`: per peer, the points whose tags we receive and those we send (sorted), and the
/// same points as maximal runs `[a, b)` over all peers (what a GPU backend uploads and downloads).
struct Exchange {
    recv: Vec<(i32, Vec<usize>)>,
    send: Vec<(i32, Vec<usize>)>,
    recv_runs: Vec<(usize, usize)>,
    send_runs: Vec<(usize, usize)>,
}

/// The maximal runs `[a, b)` of consecutive points among `points`.
fn point_runs(points: impl IntoIterator<Item = usize>) -> Vec<(usize, usize)> {
    let mut sorted: Vec<usize> = points.into_iter().collect();
    sorted.sort_unstable();
    sorted.dedup();
    let mut runs: Vec<(usize, usize)> = Vec::new();
    for p in sorted {
        match runs.last_mut() {
            Some(run) if run.1 == p => run.1 = p + 1,
            _ => runs.push((p, p + 1)),
        }
    }
    runs
}

/// Every exchange of one pattern on one rank, planned once: only fft's depends on the step, with period log2 width.
struct Plans(Vec<Exchange>);

impl Plans {
    fn new(pattern: Pattern, width: usize, ranks: usize, rank: usize, radix: usize) -> Plans {
        let period = if pattern == Pattern::Fft { width.ilog2().max(1) } else { 1 };
        Plans((1..=period).map(|t| Exchange::plan(pattern, t, width, ranks, rank, radix)).collect())
    }

    /// The exchange before step `t` (≥ 1).
    fn at(&self, t: u32) -> &Exchange {
        &self.0[(t as usize - 1) % self.0.len()]
    }
}

impl Exchange {
    fn plan(pattern: Pattern, t: u32, width: usize, ranks: usize, rank: usize, radix: usize) -> Exchange {
        let per = width / ranks;
        let owner = |p: usize| p / per;
        let mut recv: BTreeMap<i32, Vec<usize>> = BTreeMap::new();
        let mut send: BTreeMap<i32, Vec<usize>> = BTreeMap::new();
        let mut deps = Vec::new();
        for p in 0..width {
            pattern.deps(p, t, width, radix, &mut deps);
            for &j in &deps {
                let (reader, writer) = (owner(p), owner(j));
                if reader == writer {
                    continue;
                }
                if reader == rank {
                    recv.entry(writer as i32).or_default().push(j);
                }
                if writer == rank {
                    send.entry(reader as i32).or_default().push(j);
                }
            }
        }
        let tidy = |m: BTreeMap<i32, Vec<usize>>| -> Vec<(i32, Vec<usize>)> {
            m.into_iter()
                .map(|(r, mut v)| {
                    v.sort_unstable();
                    v.dedup();
                    (r, v)
                })
                .collect()
        };
        let (recv, send) = (tidy(recv), tidy(send));
        let recv_runs = point_runs(recv.iter().flat_map(|(_, pts)| pts.iter().copied()));
        let send_runs = point_runs(send.iter().flat_map(|(_, pts)| pts.iter().copied()));
        Exchange { recv, send, recv_runs, send_runs }
    }

    fn is_empty(&self) -> bool {
        self.recv.is_empty() && self.send.is_empty()
    }

    /// Sends our tags (from `tags`) and receives theirs (into `tags`), polling until all is done.
    fn run(&self, comm: &Communicator, tags: &mut [u32], t: u32) -> Res<()> {
        let mpi_tag = (t % 30000) as i32 + 1;
        let outgoing: Vec<Vec<u8>> =
            self.send.iter().map(|(_, pts)| pts.iter().flat_map(|&p| tags[p].to_ne_bytes()).collect()).collect();
        let mut incoming: Vec<Vec<u8>> = self.recv.iter().map(|(_, pts)| vec![0u8; pts.len() * 4]).collect();
        {
            let mut requests = Vec::new();
            for ((peer, _), buf) in self.recv.iter().zip(incoming.iter_mut()) {
                // SAFETY: the request is kept in `requests` and completed below, never leaked.
                requests.push(unsafe { comm.irecv(buf, *peer, mpi_tag)? });
            }
            for ((peer, _), buf) in self.send.iter().zip(&outgoing) {
                // SAFETY: as above.
                requests.push(unsafe { comm.isend(buf, *peer, mpi_tag)? });
            }
            let deadline = Instant::now() + Duration::from_secs(60);
            loop {
                let mut all = true;
                for r in &mut requests {
                    all &= r.test()?;
                }
                if all {
                    break;
                }
                if Instant::now() > deadline {
                    return Err(format!("tag exchange before step {t} did not finish within 60 s").into());
                }
                std::hint::spin_loop();
            }
        }
        for ((_, pts), buf) in self.recv.iter().zip(&incoming) {
            for (&p, b) in pts.iter().zip(buf.chunks_exact(4)) {
                tags[p] = u32::from_ne_bytes(b.try_into()?);
            }
        }
        Ok(())
    }
}

/// Whether `mine` holds on every rank (an allreduce on `side`, a duplicate of the world communicator).
fn mpi_all_ranks(comm: &Communicator, side: &SideComm<'_>, mine: bool) -> Res<bool> {
    if comm.size() == 1 {
        return Ok(mine);
    }
    let mut reduce = side.iallreduce_min(vec![u64::from(mine)])?;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(min) = reduce.test(comm)? {
            return Ok(min[0] == 1);
        }
        if Instant::now() > deadline {
            return Err("the ranks did not agree on the end of the warm-up within 60 s".into());
        }
        std::hint::spin_loop();
    }
}

fn barrier(comm: &Communicator) -> Res<()> {
    let mut req = comm.ibarrier()?;
    while !req.test(comm)? {
        std::hint::spin_loop();
    }
    Ok(())
}

fn u32_bytes(v: &[u32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_ne_bytes()).collect()
}

// ---------------------------------------------------------------------------------------------------------------
// Backend 2: hand-written GPU dispatches + MPI.

fn run_vulkan(params: &Params) -> Res<Vec<Sample>> {
    let comm = celer_exec::mpi::init()?;
    let side = comm.duplicate()?;
    let (rank, ranks) = (comm.rank() as usize, comm.size() as usize);
    let width = ranks * params.points_per_rank;
    let (p0, p1) = (rank * params.points_per_rank, (rank + 1) * params.points_per_rank);
    let n = params.threads;
    let mut gpu = Gpu::new()?;
    let kernel = gpu.load_kernel(&kernels::METG, "main")?;
    let all = Box3::d1(0, width);
    let mine = Box3::d1(p0, p1);
    let local = Box3::d2([p0, 0], [p1, n]);
    let mut samples = Vec::new();
    for &pattern in &params.patterns {
        let tags = [gpu.allocate(all, 4)?, gpu.allocate(all, 4)?];
        let scratch = gpu.allocate(local, 4)?;
        let host: Vec<u32> = (0..width).map(|p| tag(0, p, width)).collect();
        let mut batch = gpu.batch()?;
        batch.upload(&tags[0], all, &u32_bytes(&host), all)?;
        batch.upload(&scratch, local, &vec![0u8; local.volume() * 4], local)?;
        let last = batch.submit()?;
        gpu.poll_until_complete(last, GPU_TIMEOUT)?;
        let mut run = HandSteps {
            pattern,
            width,
            threads: n,
            radix: params.radix,
            points: (p0, p1),
            plans: Plans::new(pattern, width, ranks, rank, params.radix),
            kernel,
            tags,
            scratch,
            host,
            pending: Vec::new(),
            last,
            t: 0,
        };
        // Warm-up at the largest size until every rank has run ≥ WARM_UP.
        let start = Instant::now();
        loop {
            run.steps(&mut gpu, &comm, WARM_UP_ROUND, params.iters_max)?;
            gpu.poll_until_complete(run.last, GPU_TIMEOUT)?;
            if mpi_all_ranks(&comm, &side, start.elapsed() >= WARM_UP)? {
                break;
            }
        }
        for (iters, steps) in params.sizes() {
            barrier(&comm)?;
            let start = Instant::now();
            run.steps(&mut gpu, &comm, steps, iters)?;
            gpu.poll_until_complete(run.last, GPU_TIMEOUT)?;
            let seconds = start.elapsed().as_secs_f64();
            // Check our points' final tags (untimed).
            let t = run.t;
            let mut batch = gpu.batch()?;
            let d = batch.download(&run.tags[t as usize % 2], mine)?;
            let id = batch.submit()?;
            gpu.poll_until_complete(id, GPU_TIMEOUT)?;
            let mut bytes = vec![0u8; (p1 - p0) * 4];
            gpu.read_download(d, &mut bytes, mine)?;
            let mut got = vec![0u32; width];
            for (p, b) in (p0..p1).zip(bytes.chunks_exact(4)) {
                got[p] = u32::from_ne_bytes(b.try_into()?);
            }
            check_tags(&got, t, width, p0..p1, "hand-written vulkan", pattern)?;
            samples.push(Sample::new("vulkan", pattern, ranks, width, n, iters, steps, seconds));
        }
        // Downloads recorded for a step that never came must not hold their staging buffers.
        for (d, ..) in run.pending.drain(..) {
            gpu.discard_download(d);
        }
        let [a, b] = run.tags;
        gpu.free(a);
        gpu.free(b);
        gpu.free(run.scratch);
    }
    drop(side);
    drop(comm);
    Ok(samples)
}

/// The hand-written Vulkan backend's state for one pattern: its allocations, the host copy of the tags it exchanges,
/// and the last step run.
struct HandSteps {
    pattern: Pattern,
    width: usize,
    threads: usize,
    radix: usize,
    /// This rank's points `[p0, p1)`.
    points: (usize, usize),
    plans: Plans,
    kernel: KernelId,
    /// The tags of even and odd steps.
    tags: [DeviceAllocation; 2],
    scratch: DeviceAllocation,
    /// The tags this rank sends and receives, as of the last exchange.
    host: Vec<u32>,
    /// Downloads of the tags the next exchange sends, recorded in the batch submitted last: `(id, a, b)`.
    pending: Vec<(DownloadId, usize, usize)>,
    /// The batch submitted last.
    last: BatchId,
    /// The last step run.
    t: u32,
}

impl HandSteps {
    /// Runs `steps` steps of `iters` iterations and submits them, without waiting for the last batch. Steps without
    /// an exchange go into one batch (at most DISPATCHES_PER_BATCH dispatches); a step with one waits for the
    /// download of the tags it sends, exchanges them, and uploads those it received (one upload per run of points).
    fn steps(&mut self, gpu: &mut Gpu, comm: &Communicator, steps: u32, iters: u32) -> Res<()> {
        let (p0, p1) = self.points;
        let scalars =
            |t: u32| [iters, t, self.width as u32, self.pattern as u32, self.radix as u32, self.width.ilog2()];
        let mut done = 0;
        while done < steps {
            let mut t = self.t + 1;
            let ex = self.plans.at(t);
            if !ex.is_empty() {
                if !self.pending.is_empty() {
                    gpu.poll_until_complete(self.last, GPU_TIMEOUT)?;
                    for (d, a, b) in self.pending.drain(..) {
                        let mut bytes = vec![0u8; (b - a) * 4];
                        gpu.read_download(d, &mut bytes, Box3::d1(a, b))?;
                        for (p, c) in (a..b).zip(bytes.chunks_exact(4)) {
                            self.host[p] = u32::from_ne_bytes(c.try_into()?);
                        }
                    }
                }
                ex.run(comm, &mut self.host, t)?;
            }
            let mut batch = gpu.batch()?;
            let prev = &self.tags[(t as usize - 1) % 2];
            for &(a, b) in &ex.recv_runs {
                batch.upload(prev, Box3::d1(a, b), &u32_bytes(&self.host[a..b]), Box3::d1(a, b))?;
            }
            let mut in_batch = 0;
            loop {
                batch.dispatch(
                    self.kernel,
                    Launch::d2([p0, 0], [p1, self.threads]),
                    &[
                        Access::read(&self.tags[(t as usize - 1) % 2]),
                        Access::write(&self.tags[t as usize % 2]),
                        Access::read_write(&self.scratch),
                    ],
                    &scalars(t),
                )?;
                self.t = t;
                done += 1;
                in_batch += 1;
                let next = self.plans.at(t + 1);
                for &(a, b) in &next.send_runs {
                    let d = batch.download(&self.tags[t as usize % 2], Box3::d1(a, b))?;
                    self.pending.push((d, a, b));
                }
                if done == steps || in_batch == DISPATCHES_PER_BATCH || !next.is_empty() {
                    break;
                }
                t += 1;
            }
            self.last = batch.submit()?;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Backend 3: plain MPI on the CPU.

#[inline(never)]
fn burn(x: &mut [f32; 8], iters: u32) {
    for _ in 0..iters {
        for v in x.iter_mut() {
            *v = *v * 0.999 + 0.001;
        }
    }
}

fn run_cpu(params: &Params) -> Res<Vec<Sample>> {
    let comm = celer_exec::mpi::init()?;
    let side = comm.duplicate()?;
    let (rank, ranks) = (comm.rank() as usize, comm.size() as usize);
    let width = ranks * params.points_per_rank;
    let (p0, p1) = (rank * params.points_per_rank, (rank + 1) * params.points_per_rank);
    let mut samples = Vec::new();
    let mut checksum = 0.0f32;
    for &pattern in &params.patterns {
        let plans = Plans::new(pattern, width, ranks, rank, params.radix);
        let mut cur: Vec<u32> = (0..width).map(|p| tag(0, p, width)).collect();
        let mut next = cur.clone();
        let mut state = vec![[0.5f32; 8]; p1 - p0];
        let mut deps = Vec::new();
        let mut t = 0u32;
        let mut step = |t: u32, iters: u32, cur: &mut Vec<u32>, next: &mut Vec<u32>| -> Res<()> {
            let ex = plans.at(t);
            if !ex.is_empty() {
                ex.run(&comm, cur, t)?;
            }
            for (p, x) in (p0..p1).zip(state.iter_mut()) {
                pattern.deps(p, t, width, params.radix, &mut deps);
                let ok = deps.iter().all(|&j| cur[j] == tag(t - 1, j, width));
                burn(x, iters);
                next[p] = if ok { tag(t, p, width) } else { u32::MAX };
            }
            std::mem::swap(cur, next);
            Ok(())
        };
        // Warm-up at the largest size until every rank has run ≥ WARM_UP.
        let start = Instant::now();
        loop {
            for _ in 0..WARM_UP_ROUND {
                t += 1;
                step(t, params.iters_max, &mut cur, &mut next)?;
            }
            if mpi_all_ranks(&comm, &side, start.elapsed() >= WARM_UP)? {
                break;
            }
        }
        for (iters, steps) in params.sizes() {
            barrier(&comm)?;
            let start = Instant::now();
            for _ in 0..steps {
                t += 1;
                step(t, iters, &mut cur, &mut next)?;
            }
            let seconds = start.elapsed().as_secs_f64();
            check_tags(&cur, t, width, p0..p1, "cpu", pattern)?;
            samples.push(Sample::new("cpu", pattern, ranks, width, 1, iters, steps, seconds));
        }
        checksum += state.iter().flatten().sum::<f32>();
    }
    // Keeps the compute from being optimised away.
    if !checksum.is_finite() {
        return Err("cpu backend: non-finite checksum".into());
    }
    drop(side);
    drop(comm);
    Ok(samples)
}

// ---------------------------------------------------------------------------------------------------------------
// Driver: runs the workers, then the analysis.

/// METG(50%) in µs of one series, sorted by decreasing granularity: `Ok(g)` interpolated, `Err(g)` when even the
/// finest size measured (`g`) stays above 50% (the METG is below it).
fn metg(series: &[(f64, f64)]) -> Result<f64, f64> {
    for w in series.windows(2) {
        let ((g0, e0), (g1, e1)) = (w[0], w[1]);
        if e0 >= 0.5 && e1 < 0.5 {
            let f = (e0 - 0.5) / (e0 - e1);
            return Ok((g0.ln() + f * (g1.ln() - g0.ln())).exp());
        }
    }
    match series.first() {
        Some(&(g, e)) if e < 0.5 => Ok(g),
        _ => Err(series.last().map_or(f64::NAN, |s| s.0)),
    }
}

fn svg(series: &BTreeMap<(String, String), Vec<(f64, f64)>>) -> String {
    let (w, h, left, bottom, top, right) = (900.0, 560.0, 70.0, 60.0, 30.0, 210.0);
    let pts = series.values().flatten();
    let lo = pts.clone().map(|p| p.0).fold(f64::INFINITY, f64::min).max(1e-3).log10().floor();
    let hi = pts.map(|p| p.0).fold(0.0, f64::max).max(1e-3).log10().ceil().max(lo + 1.0);
    let x = |g: f64| left + (g.max(1e-3).log10() - lo) / (hi - lo) * (w - left - right);
    let y = |e: f64| top + (1.1 - e.clamp(0.0, 1.1)) / 1.1 * (h - top - bottom);
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" font-family=\"sans-serif\" \
         font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
    );
    for d in (lo as i32)..=(hi as i32) {
        let px = x(10f64.powi(d));
        let _ = writeln!(
            s,
            "<line x1=\"{px}\" y1=\"{top}\" x2=\"{px}\" y2=\"{}\" stroke=\"#ddd\"/><text x=\"{px}\" y=\"{}\" \
             text-anchor=\"middle\">{}</text>",
            h - bottom,
            h - bottom + 16.0,
            10f64.powi(d)
        );
    }
    for e in [0.0, 0.25, 0.5, 0.75, 1.0] {
        let py = y(e);
        let color = if e == 0.5 { "#999" } else { "#ddd" };
        let _ = writeln!(
            s,
            "<line x1=\"{left}\" y1=\"{py}\" x2=\"{}\" y2=\"{py}\" stroke=\"{color}\"/><text x=\"{}\" y=\"{}\" \
             text-anchor=\"end\">{:.0}%</text>",
            w - right,
            left - 6.0,
            py + 4.0,
            e * 100.0
        );
    }
    let _ = writeln!(
        s,
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">task granularity (µs, log scale)</text>\n<text x=\"16\" \
         y=\"{}\" transform=\"rotate(-90 16 {})\" text-anchor=\"middle\">efficiency</text>",
        (left + w - right) / 2.0,
        h - 16.0,
        h / 2.0,
        h / 2.0
    );
    const COLORS: [&str; 8] = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"];
    for (i, ((backend, pattern), pts)) in series.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let dash = match backend.as_str() {
            "celer" => "",
            "vulkan" => " stroke-dasharray=\"6 3\"",
            "cuda" => " stroke-dasharray=\"10 3 2 3\"",
            "cuda_graph" => " stroke-dasharray=\"10 3 2 3 2 3\"",
            _ => " stroke-dasharray=\"2 3\"",
        };
        let path: Vec<String> = pts.iter().map(|&(g, e)| format!("{:.1},{:.1}", x(g), y(e))).collect();
        let _ = writeln!(
            s,
            "<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"2\"{dash} points=\"{}\"/>",
            path.join(" ")
        );
        let ly = top + 16.0 * i as f64;
        let _ = writeln!(
            s,
            "<line x1=\"{}\" y1=\"{ly}\" x2=\"{}\" y2=\"{ly}\" stroke=\"{color}\" stroke-width=\"2\"{dash}/><text \
             x=\"{}\" y=\"{}\">{backend} {pattern}</text>",
            w - right + 10.0,
            w - right + 40.0,
            w - right + 46.0,
            ly + 4.0
        );
    }
    s.push_str("</svg>\n");
    s
}

/// A command that runs `program` on `n` ranks: directly for one, else under `mpirun -n N`.
fn on_ranks(mpirun: &str, n: usize, program: &Path) -> Res<Command> {
    if n == 1 {
        return Ok(Command::new(program));
    }
    let mut parts = mpirun.split_whitespace();
    let mut c = Command::new(parts.next().ok_or("empty --mpirun")?);
    c.args(parts).arg("-n").arg(n.to_string()).arg(program);
    Ok(c)
}

/// Runs one measurement (`cmd`, which writes its lines to `out`) and reads its samples, which must be exactly the
/// sweep of `params` (one pattern) of `backend` on `n` ranks.
fn measure(mut cmd: Command, out: &Path, backend: &str, n: usize, params: &Params) -> Res<Vec<Sample>> {
    let _ = std::fs::remove_file(out);
    let shown = std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ");
    let status = cmd.status().map_err(|e| format!("could not start `{shown}`: {e}"))?;
    if !status.success() {
        return Err(format!("the {backend} run failed ({status}): `{shown}`").into());
    }
    let text = std::fs::read_to_string(out)
        .map_err(|e| format!("the {backend} run exited 0 but left no result file {}: {e}", out.display()))?;
    let samples = text.lines().filter(|l| !l.trim().is_empty()).map(Sample::parse).collect::<Res<Vec<_>>>()?;
    check_sweep(&samples, backend, n, params).map_err(|e| format!("{}: {e}", out.display()))?;
    Ok(samples)
}

/// Checks that `samples` hold exactly the sweep of `params` (one pattern) measured by `backend` on `ranks` ranks.
fn check_sweep(samples: &[Sample], backend: &str, ranks: usize, params: &Params) -> Res<()> {
    let pattern = params.patterns[0].name();
    let width = ranks * params.points_per_rank;
    for s in samples {
        if s.backend != backend || s.pattern != pattern || s.ranks != ranks || s.width != width {
            return Err(format!(
                "result line {:?} does not belong to backend {backend}, pattern {pattern}, {ranks} rank(s), width \
                 {width}",
                s.line()
            )
            .into());
        }
        if !(s.seconds > 0.0 && s.seconds.is_finite() && s.flop > 0.0 && s.flop.is_finite()) {
            return Err(format!("result line {:?}: seconds and flop must be positive", s.line()).into());
        }
    }
    let got: Vec<(u32, u32)> = samples.iter().map(|s| (s.iters, s.steps)).collect();
    let want = params.sizes();
    if got != want {
        return Err(format!(
            "{backend} measured (iters, steps) {got:?}; the sweep is {want:?} (iters from --iters-max halving down \
             to --iters-min, steps = clamp(budget / iters, 16, max-steps)), in that order"
        )
        .into());
    }
    Ok(())
}

/// `backends` in the order of repetition `rep`: rotated left by `rep`.
fn rotated(backends: &[String], rep: usize) -> Vec<String> {
    let mut order = backends.to_vec();
    if !order.is_empty() {
        let k = rep % order.len();
        order.rotate_left(k);
    }
    order
}

/// Whether `backend` runs on the CPU (its efficiency is against the CPU's best, not the GPU's).
fn on_cpu(backend: &str) -> bool {
    backend == "cpu"
}

/// All measurements of one (backend, pattern, iters) point.
struct Point {
    steps: u32,
    ranks: usize,
    width: usize,
    flop: f64,
    seconds: Vec<f64>,
}

impl Point {
    /// µs per task at `seconds`.
    fn granularity_us(&self, seconds: f64) -> f64 {
        seconds * 1e6 * self.ranks as f64 / (self.width as f64 * f64::from(self.steps))
    }
}

/// Everything one driver run measures and how, for the reports.
struct Study<'a> {
    params: &'a Params,
    ranks: usize,
    cpu_ranks: usize,
    reps: usize,
    backends: &'a [String],
}

fn drive(study: &Study<'_>, out_dir: &str, mpirun: &str, cuda_bin: Option<&str>) -> Res<()> {
    let params = study.params;
    std::fs::create_dir_all(format!("{out_dir}/raw"))?;
    let exe = std::env::current_exe()?;
    let mut samples = Vec::new();
    for rep in 0..study.reps {
        for &pattern in &params.patterns {
            let one = Params { patterns: vec![pattern], ..params.clone() };
            for backend in rotated(study.backends, rep) {
                let n = if on_cpu(&backend) { study.cpu_ranks } else { study.ranks };
                let out = PathBuf::from(format!("{out_dir}/raw/r{rep}_{}_{backend}.txt", pattern.name()));
                let cmd = match EXTERNAL.iter().find(|(b, _)| *b == backend) {
                    Some((_, variant)) => {
                        let bin = cuda_bin.ok_or("the cuda backends need --cuda-bin")?;
                        let mut c = on_ranks(mpirun, n, Path::new(bin))?;
                        c.arg("--out").arg(&out).args(["--variant", variant]).args(one.args());
                        c
                    }
                    None => {
                        let mut c = on_ranks(mpirun, n, &exe)?;
                        c.args(["--worker", &backend, "--out"]).arg(&out).args(one.args());
                        c
                    }
                };
                eprintln!(
                    "metg: repetition {}/{}, {}, {backend} on {n} rank(s) …",
                    rep + 1,
                    study.reps,
                    pattern.name()
                );
                samples.extend(measure(cmd, &out, &backend, n, &one)?);
            }
        }
    }
    let report = analyse(study, &samples, out_dir)?;
    print!("{report}");
    println!("wrote {out_dir}/summary.md and {out_dir}/metg.svg; every task's inputs were checked by our backends");
    Ok(())
}

/// Groups `samples` into points, reports every series and the METG table, and writes summary.md and metg.svg.
fn analyse(study: &Study<'_>, samples: &[Sample], out_dir: &str) -> Res<String> {
    let (params, backends) = (study.params, study.backends);
    // Points per (backend, pattern), by decreasing iters (decreasing granularity).
    let mut points: BTreeMap<(String, String), BTreeMap<std::cmp::Reverse<u32>, Point>> = BTreeMap::new();
    for s in samples {
        let point = points.entry((s.backend.clone(), s.pattern.clone())).or_default().entry(std::cmp::Reverse(s.iters));
        point
            .or_insert_with(|| Point { steps: s.steps, ranks: s.ranks, width: s.width, flop: s.flop, seconds: vec![] })
            .seconds
            .push(s.seconds);
    }
    // The best FLOP/s of any single measurement, on the GPU (every GPU backend) and on the CPU, and who reached it.
    let mut best: BTreeMap<bool, (f64, String)> = BTreeMap::new();
    for s in samples {
        let entry = best.entry(on_cpu(&s.backend)).or_insert((0.0, String::new()));
        if s.flops() > entry.0 {
            *entry = (s.flops(), format!("{} · {} · {} iters", s.backend, s.pattern, s.iters));
        }
    }
    let mut report = String::new();
    let gpu_backends: Vec<&str> = backends.iter().map(String::as_str).filter(|b| !on_cpu(b)).collect();
    let _ = writeln!(
        report,
        "METG sweep: {} thread(s) per GPU point, {} point(s) per rank, radix {}; {} on {} rank(s){}\n",
        params.threads,
        params.points_per_rank,
        params.radix,
        gpu_backends.join(", "),
        study.ranks,
        if backends.iter().any(|b| on_cpu(b)) { format!(", cpu on {}", study.cpu_ranks) } else { String::new() }
    );
    let _ = writeln!(
        report,
        "How it was measured: {} repetition(s); in each, every pattern, and for each pattern every backend once (one \
         process each), in the order {} rotated left by the repetition's number. Before its sweep, every backend ran \
         the pattern's largest size untimed for ≥ {} ms on every rank{}. Each point: minimum and median µs per \
         task over its {} measurement(s). Efficiency = FLOP/s of the median measurement ÷ the best FLOP/s of any \
         single measurement in this run on the same processor:",
        study.reps,
        backends.join(", "),
        WARM_UP.as_millis(),
        if backends.iter().any(|b| EXTERNAL.iter().any(|(x, _)| x == b)) {
            " (the external cuda backends warm up on their own)"
        } else {
            ""
        },
        study.reps
    );
    for (cpu, (flops, who)) in &best {
        let _ = writeln!(
            report,
            "- {}: {:.2} GFLOP/s ({who})",
            if *cpu { "CPU (backend cpu)" } else { "GPU (every other backend)" },
            flops / 1e9
        );
    }
    let _ = writeln!(
        report,
        "\nMETG(50%) = the smallest median µs per task still at ≥ 50% efficiency, interpolated (log scale) between \
         the two sizes around 50%. Raw lines of every run: raw/r<repetition>_<pattern>_<backend>.txt.\n"
    );
    let mut curves: BTreeMap<(String, String), Vec<(f64, f64)>> = BTreeMap::new();
    for ((backend, pattern), series) in &points {
        let peak = best.get(&on_cpu(backend)).map_or(f64::NAN, |b| b.0);
        let _ = writeln!(
            report,
            "{backend} · {pattern}\n  iters   steps  runs   min µs/task  median µs/task   GFLOP/s (median)   efficiency"
        );
        let mut curve = Vec::new();
        for (std::cmp::Reverse(iters), p) in series {
            let (min, med) = (p.seconds.iter().copied().fold(f64::INFINITY, f64::min), median(&p.seconds));
            let flops = p.flop / med;
            let e = flops / peak;
            let _ = writeln!(
                report,
                "  {:6} {:6} {:5} {:13.2} {:15.2} {:18.2}   {:9.1}%",
                iters,
                p.steps,
                p.seconds.len(),
                p.granularity_us(min),
                p.granularity_us(med),
                flops / 1e9,
                e * 100.0
            );
            curve.push((p.granularity_us(med), e));
        }
        curves.insert((backend.clone(), pattern.clone()), curve);
    }
    let _ = writeln!(report, "\nMETG(50%) in µs per task (\"<\" = still ≥ 50% at the finest size measured):");
    let mut table = String::from("| pattern |");
    for b in backends {
        let _ = write!(table, " {b} |");
    }
    let has = |b: &str| backends.iter().any(|x| x == b);
    let baselines: Vec<&str> =
        ["vulkan", "cuda", "cuda_graph"].into_iter().filter(|b| has("celer") && has(b)).collect();
    for b in &baselines {
        let _ = write!(table, " celer ÷ {b} |");
    }
    table.push('\n');
    table.push_str(&"|---".repeat(table.matches('|').count() - 1));
    table.push_str("|\n");
    for pattern in &params.patterns {
        let _ = write!(table, "| {} |", pattern.name());
        let mut values = BTreeMap::new();
        for b in backends {
            match curves.get(&(b.clone(), pattern.name().to_string())).map(|c| metg(c)) {
                Some(Ok(g)) => {
                    values.insert(b.as_str(), g);
                    let _ = write!(table, " {g:.2} |");
                }
                Some(Err(g)) => {
                    values.insert(b.as_str(), g);
                    let _ = write!(table, " < {g:.2} |");
                }
                None => table.push_str(" – |"),
            }
        }
        for b in &baselines {
            match (values.get("celer"), values.get(b)) {
                (Some(c), Some(v)) => {
                    let _ = write!(table, " {:.2}× |", c / v);
                }
                _ => table.push_str(" – |"),
            }
        }
        table.push('\n');
    }
    report.push_str(&table);
    std::fs::write(format!("{out_dir}/summary.md"), &report)?;
    std::fs::write(format!("{out_dir}/metg.svg"), svg(&curves))?;
    Ok(report)
}

fn main() -> Res<()> {
    // celer's rank-prefixed logger, at the level of CELER_LOG (celer installs none unless asked).
    celer::logging::init();
    let release = !cfg!(debug_assertions);
    let mut params = Params {
        patterns: PATTERNS.to_vec(),
        points_per_rank: 1,
        threads: if release { 65536 } else { 64 },
        iters_max: if release { 1 << 16 } else { 64 },
        iters_min: 1,
        budget: if release { 1 << 22 } else { 512 },
        max_steps: if release { 2000 } else { 32 },
        radix: 3,
    };
    let (mut ranks, mut cpu_ranks) = (1usize, 4usize);
    let mut backends = vec!["celer".to_string(), "vulkan".to_string(), "cpu".to_string()];
    let mut out_dir = String::from("out/metg");
    let mut mpirun = String::from("mpirun");
    let mut worker = None;
    let mut out_file = None;
    let args = <Args as clap::Parser>::parse();
    if let Some(v) = args.patterns {
        params.patterns = Pattern::parse(&v)?;
    }
    if let Some(v) = args.points_per_rank {
        params.points_per_rank = v.parse()?;
    }
    if let Some(v) = args.threads {
        params.threads = v.parse()?;
    }
    if let Some(v) = args.iters_max {
        params.iters_max = v.parse()?;
    }
    if let Some(v) = args.iters_min {
        params.iters_min = v.parse()?;
    }
    if let Some(v) = args.budget {
        params.budget = v.parse()?;
    }
    if let Some(v) = args.max_steps {
        params.max_steps = v.parse()?;
    }
    if let Some(v) = args.radix {
        params.radix = v.parse()?;
    }
    if let Some(v) = args.ranks {
        ranks = v.parse()?;
    }
    if let Some(v) = args.cpu_ranks {
        cpu_ranks = v.parse()?;
    }
    if let Some(v) = args.backends {
        backends = v.split(',').map(str::to_string).collect();
    }
    if let Some(v) = args.out_dir {
        out_dir = v;
    }
    if let Some(v) = args.mpirun {
        mpirun = v;
    }
    if let Some(v) = args.worker {
        worker = Some(v);
    }
    if let Some(v) = args.out {
        out_file = Some(v);
    }
    let reps: usize = args.reps.as_deref().unwrap_or("3").parse()?;
    if params.points_per_rank == 0 || params.threads == 0 || params.iters_max < params.iters_min.max(1) || reps == 0 {
        return Err("--points-per-rank, --threads and --reps must be ≥ 1, and --iters-max ≥ --iters-min ≥ 1".into());
    }
    if args.cuda_bin.is_some() {
        for (b, _) in EXTERNAL {
            if !backends.iter().any(|x| x == b) {
                backends.push(b.to_string());
            }
        }
    }
    let known = ["celer", "vulkan", "cpu", "cuda", "cuda_graph"];
    if let Some(b) = backends.iter().find(|b| !known.contains(&b.as_str())) {
        return Err(
            format!("unknown backend {b}; use celer, vulkan, cpu (and cuda, cuda_graph with --cuda-bin)").into()
        );
    }
    if args.cuda_bin.is_none() && backends.iter().any(|b| EXTERNAL.iter().any(|(x, _)| x == b)) {
        return Err("the backends cuda and cuda_graph are measured by an external program: pass --cuda-bin PATH".into());
    }
    let Some(backend) = worker else {
        let study = Study { params: &params, ranks, cpu_ranks, reps, backends: &backends };
        return drive(&study, &out_dir, &mpirun, args.cuda_bin.as_deref());
    };
    let samples = match backend.as_str() {
        "celer" => run_celer(&params)?,
        "vulkan" => run_vulkan(&params)?,
        "cpu" => run_cpu(&params)?,
        other => return Err(format!("unknown backend {other}").into()),
    };
    // Every rank measured; rank 0's figures are reported (they include waiting for the slowest neighbour).
    if let (Some(path), Some(first)) = (out_file, samples.first()) {
        let rank_zero = std::env::var("OMPI_COMM_WORLD_RANK").map_or(true, |r| r == "0");
        if rank_zero || first.ranks == 1 {
            let text: String = samples.iter().map(|s| s.line() + "\n").collect();
            std::fs::write(path, text)?;
        }
    }
    Ok(())
}

/// METG: the minimum effective task granularity of celer, measured the Task Bench way, beside hand-written baselines.
/// An option given twice takes its last value (scripts append their own options).
#[derive(clap::Parser)]
#[command(args_override_self = true)]
struct Args {
    /// Dependence patterns to measure, comma-separated (default: all).
    #[arg(long, value_name = "LIST")]
    patterns: Option<String>,
    /// Task Bench points per rank (default 1).
    #[arg(long, value_name = "N")]
    points_per_rank: Option<String>,
    /// GPU threads per task (default 64 in debug builds, 65536 in release).
    #[arg(long, value_name = "N")]
    threads: Option<String>,
    /// Largest kernel iteration count of the sweep.
    #[arg(long, value_name = "N")]
    iters_max: Option<String>,
    /// Smallest kernel iteration count of the sweep (default 1).
    #[arg(long, value_name = "N")]
    iters_min: Option<String>,
    /// Work budget per measurement (iterations x steps).
    #[arg(long, value_name = "N")]
    budget: Option<String>,
    /// Most time steps per measurement.
    #[arg(long, value_name = "N")]
    max_steps: Option<String>,
    /// Radix of the patterns with several dependencies (default 3).
    #[arg(long, value_name = "N")]
    radix: Option<String>,
    /// MPI ranks of the GPU backends (default 1).
    #[arg(long, value_name = "N")]
    ranks: Option<String>,
    /// MPI ranks of the CPU backend (default 4).
    #[arg(long, value_name = "N")]
    cpu_ranks: Option<String>,
    /// Backends to run, comma-separated: celer, vulkan, cpu (default: all three).
    #[arg(long, value_name = "LIST")]
    backends: Option<String>,
    /// Where the results go (default out/metg).
    #[arg(long, value_name = "DIR")]
    out_dir: Option<String>,
    /// The mpirun to start ranks with (default mpirun).
    #[arg(long, value_name = "CMD")]
    mpirun: Option<String>,
    /// Repetitions: each runs every pattern on every backend, in an order rotated by the repetition (default 3).
    #[arg(long, value_name = "N")]
    reps: Option<String>,
    /// An external program measuring the backends cuda (--variant stream) and cuda_graph (--variant graph) by the
    /// protocol in this example's documentation; adds both backends.
    #[arg(long, value_name = "PATH")]
    cuda_bin: Option<String>,
    /// Internal: run as a worker of this backend (the driver passes it).
    #[arg(long, value_name = "BACKEND")]
    worker: Option<String>,
    /// Internal: the worker's result file.
    #[arg(long, value_name = "FILE")]
    out: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(patterns: &str) -> Params {
        Params {
            patterns: Pattern::parse(patterns).unwrap(),
            points_per_rank: 2,
            threads: 64,
            iters_max: 64,
            iters_min: 4,
            budget: 1024,
            max_steps: 32,
            radix: 3,
        }
    }

    fn sweep(backend: &str, p: &Params, ranks: usize) -> Vec<Sample> {
        let width = ranks * p.points_per_rank;
        let pattern = p.patterns[0];
        p.sizes().into_iter().map(|(i, s)| Sample::new(backend, pattern, ranks, width, p.threads, i, s, 1e-3)).collect()
    }

    #[test]
    fn a_result_line_parses_back_to_the_same_sample() {
        let s = Sample::new("cuda_graph", Pattern::Stencil1d, 2, 4, 64, 32, 100, 0.25);
        let back = Sample::parse(&s.line()).unwrap();
        assert_eq!(back.line(), s.line());
        assert_eq!((back.backend.as_str(), back.pattern.as_str()), ("cuda_graph", "stencil_1d"));
        assert_eq!((back.ranks, back.width, back.iters, back.steps), (2, 4, 32, 100));
        assert!(Sample::parse("cuda stencil_1d 2 4 32 100 0.25").is_err(), "7 fields");
        assert!(Sample::parse("cuda stencil_1d 2 4 32 x 0.25 1e9").is_err(), "steps not a number");
    }

    #[test]
    fn a_sweep_must_be_exactly_the_one_asked_for() {
        let p = params("stencil_1d");
        assert_eq!(p.sizes(), vec![(64, 16), (32, 32), (16, 32), (8, 32), (4, 32)]);
        check_sweep(&sweep("cuda", &p, 2), "cuda", 2, &p).unwrap();
        let err = |s: &[Sample], b: &str, r: usize| check_sweep(s, b, r, &p).unwrap_err().to_string();
        assert!(err(&sweep("cuda", &p, 2), "cuda_graph", 2).contains("does not belong to backend cuda_graph"));
        assert!(err(&sweep("cuda", &p, 1), "cuda", 2).contains("2 rank(s)"));
        let mut short = sweep("cuda", &p, 2);
        short.pop();
        assert!(err(&short, "cuda", 2).contains("the sweep is"));
        let mut wrong_steps = sweep("cuda", &p, 2);
        wrong_steps[1].steps += 1;
        assert!(err(&wrong_steps, "cuda", 2).contains("the sweep is"));
        let mut zero = sweep("cuda", &p, 2);
        zero[0].seconds = 0.0;
        assert!(err(&zero, "cuda", 2).contains("positive"));
        assert!(err(&[], "cuda", 2).contains("the sweep is"), "an empty file is no sweep");
    }

    #[test]
    fn backends_rotate_and_medians_take_the_middle() {
        let b: Vec<String> = ["celer", "vulkan", "cpu"].map(String::from).to_vec();
        assert_eq!(rotated(&b, 0), b);
        assert_eq!(rotated(&b, 1), ["vulkan", "cpu", "celer"]);
        assert_eq!(rotated(&b, 5), ["cpu", "celer", "vulkan"]);
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
    }

    #[test]
    fn exchanged_points_go_as_maximal_runs() {
        assert_eq!(point_runs([7, 1, 2, 3, 5, 2]), vec![(1, 4), (5, 6), (7, 8)]);
        assert_eq!(point_runs([]), vec![]);
        // stencil_1d, 2 points per rank on 3 ranks: rank 1 (points 2, 3) receives 1 and 4, sends 2 and 3.
        let ex = Exchange::plan(Pattern::Stencil1d, 1, 6, 3, 1, 3);
        assert_eq!(ex.recv_runs, vec![(1, 2), (4, 5)]);
        assert_eq!(ex.send_runs, vec![(2, 4)]);
        // fft's plan changes with the step, with period log2 width.
        let plans = Plans::new(Pattern::Fft, 8, 4, 0, 3);
        assert_eq!(plans.0.len(), 3);
        assert_eq!(plans.at(4).recv_runs, plans.at(1).recv_runs);
        assert_ne!(plans.at(2).recv_runs, plans.at(1).recv_runs);
    }

    #[test]
    fn the_external_program_is_run_by_the_protocol() {
        let fake = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/metg_fake_cuda.sh");
        let dir = std::env::temp_dir().join(format!("metg-protocol-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = params("fft");
        let run = |program: &Path, variant: &str, backend: &str| {
            let out = dir.join(format!("{variant}.txt"));
            let mut cmd = on_ranks("mpirun", 1, program).unwrap();
            cmd.arg("--out").arg(&out).args(["--variant", variant]).args(p.args());
            measure(cmd, &out, backend, 1, &p)
        };
        let got = run(&fake, "graph", "cuda_graph").unwrap();
        assert_eq!(got.iter().map(|s| (s.iters, s.steps)).collect::<Vec<_>>(), p.sizes());
        assert!(got.iter().all(|s| s.backend == "cuda_graph" && s.pattern == "fft" && s.width == 2));
        assert_eq!(got[0].flop, 64.0 * 16.0 * 2.0 * 64.0 * 16.0);
        // The stream variant writes backend cuda, which the driver refuses under another name.
        let err = run(&fake, "stream", "cuda_graph").unwrap_err().to_string();
        assert!(err.contains("does not belong to backend cuda_graph"), "{err}");
        // A program that fails fails the run, naming the backend and the exit status.
        let failing = dir.join("failing.sh");
        std::fs::write(&failing, "#!/bin/sh\necho refusing >&2\nexit 3\n").unwrap();
        let mut perms = std::fs::metadata(&failing).unwrap().permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
        std::fs::set_permissions(&failing, perms).unwrap();
        let err = run(&failing, "stream", "cuda").unwrap_err().to_string();
        assert!(err.contains("the cuda run failed") && err.contains('3'), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
