//! METG: the minimum effective task granularity of celer, measured the Task Bench way, beside two baselines in the
//! same run.
//!
//! A task graph of `width` points × `steps` timesteps: at every step each point runs a compute-bound kernel of `iters`
//! iterations (16 FLOP per GPU thread per iteration) and depends on points of the previous step chosen by a pattern:
//! `trivial` (none), `no_comm` (itself), `stencil_1d` (p−1, p, p+1), `fft` (butterfly: p and p xor 2^k), `tree`
//! (p / 2), `nearest` (the `radix` points centred on p) or `spread` (`radix` points spaced width / radix apart).
//! Every task checks that its inputs carry the tags its predecessors wrote (kernels/metg.wgsl); the final tags
//! are checked on the host, so a wrong schedule fails the run.
//!
//! The sweep halves `iters` from `--iters-max` down to `--iters-min`. For each size, efficiency = achieved FLOP/s ÷
//! the best FLOP/s of the sweep, and the task granularity = wall time × ranks ÷ tasks (a task is one point-step; by
//! default every rank owns one point, so a task is one kernel on one GPU). METG(50%) is the smallest granularity
//! still at ≥ 50% efficiency, interpolated (log scale) between the two measured sizes around 50%.
//!
//! Three backends run the same graphs, one after the other, each under its own `mpirun` (MPI starts once per
//! process):
//! - `celer`: one celer task per timestep over all points, split over the ranks; the runtime moves the tags.
//! - `vulkan`: hand-written, no runtime: each rank dispatches its points' kernel through celer's GPU layer
//!   (`celer_exec::gpu`, a thin layer over vulkano) and exchanges the tags its neighbours need with MPI
//!   Isend/Irecv between steps; steps without communication are submitted back to back.
//! - `cpu`: plain MPI on the CPU, one point per rank, the same FMA chains in Rust (16 FLOP per iteration).
//!
//! ```text
//! cargo build --release --example metg
//! target/release/examples/metg [--ranks 1] [--cpu-ranks 4] [--backends celer,vulkan,cpu] [--patterns all]
//!     [--points-per-rank 1] [--threads 65536] [--iters-max 65536] [--iters-min 1] [--budget 4194304]
//!     [--max-steps 2000] [--radix 3] [--out-dir out/metg]
//! ```
//! The driver (the command above, not under mpirun) starts the workers with `mpirun -n RANKS` (or directly for
//! one rank), prints a table per pattern, the METG of each backend and their ratios, and writes
//! `OUT_DIR/metg.svg` (efficiency against granularity) and `OUT_DIR/summary.md`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::process::Command;
use std::time::{Duration, Instant};

use celer::{access, task, GridBox, Kernel, Queue, Region};

/// The harness's own kernel, `kernels/metg.wgsl`, compiled by the package's build script as a program's would be.
#[allow(dead_code)] // kernels/ also holds the reliability tests' faulty.wgsl
mod kernels {
    celer::include_kernels!();
}
use celer_exec::gpu::{Access, Box3, Gpu, Launch};
use celer_exec::mpi::Communicator;

type Res<T> = Result<T, Box<dyn std::error::Error>>;

/// FLOP per GPU thread (or CPU point) per iteration: 8 chains of one multiply-add each.
const FLOP_PER_ITER: f64 = 16.0;

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

    /// Wall time × ranks ÷ tasks, in µs.
    fn granularity_us(&self) -> f64 {
        self.seconds * 1e6 * self.ranks as f64 / (self.width as f64 * f64::from(self.steps))
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
        // Warm-up: pipeline creation and first allocations stay out of the timings.
        for _ in 0..4 {
            t += 1;
            step(t, 1)?;
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

/// The exchange before step `t`: per peer, the points whose tags we receive and those we send (sorted).
struct Exchange {
    recv: Vec<(i32, Vec<usize>)>,
    send: Vec<(i32, Vec<usize>)>,
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
        let tidy = |m: BTreeMap<i32, Vec<usize>>| {
            m.into_iter()
                .map(|(r, mut v)| {
                    v.sort_unstable();
                    v.dedup();
                    (r, v)
                })
                .collect()
        };
        Exchange { recv: tidy(recv), send: tidy(send) }
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
    let (rank, ranks) = (comm.rank() as usize, comm.size() as usize);
    let width = ranks * params.points_per_rank;
    let (p0, p1) = (rank * params.points_per_rank, (rank + 1) * params.points_per_rank);
    let n = params.threads;
    let mut gpu = Gpu::new()?;
    let kernel = gpu.load_kernel(&kernels::METG, "main")?;
    let all = Box3::d1(0, width);
    let mine = Box3::d1(p0, p1);
    let local = Box3::d2([p0, 0], [p1, n]);
    let wait = |gpu: &mut Gpu, id| gpu.poll_until_complete(id, Duration::from_secs(120));
    let mut samples = Vec::new();
    for &pattern in &params.patterns {
        let tags = [gpu.allocate(all, 4)?, gpu.allocate(all, 4)?];
        let scratch = gpu.allocate(local, 4)?;
        let mut host: Vec<u32> = (0..width).map(|p| tag(0, p, width)).collect();
        let mut batch = gpu.batch()?;
        batch.upload(&tags[0], all, &u32_bytes(&host), all)?;
        batch.upload(&scratch, local, &vec![0u8; local.volume() * 4], local)?;
        let id = batch.submit()?;
        wait(&mut gpu, id)?;
        let log2 = width.ilog2();
        let mut t = 0u32;
        // One step: exchange the tags step t needs (from the download of step t − 1), then dispatch, and download
        // our tags if step t + 1 exchanges them. Without an exchange nothing waits: submissions go back to back.
        let mut pending_download = None;
        let mut last = id;
        let mut step = |gpu: &mut Gpu, t: u32, iters: u32, last: &mut celer_exec::gpu::BatchId| -> Res<()> {
            let ex = Exchange::plan(pattern, t, width, ranks, rank, params.radix);
            let prev = &tags[(t as usize - 1) % 2];
            let next = &tags[t as usize % 2];
            let mut batch_uploads = Vec::new();
            if !ex.is_empty() {
                if let Some(d) = pending_download.take() {
                    wait(gpu, *last)?;
                    let mut bytes = vec![0u8; (p1 - p0) * 4];
                    gpu.read_download(d, &mut bytes, mine)?;
                    for (p, b) in (p0..p1).zip(bytes.chunks_exact(4)) {
                        host[p] = u32::from_ne_bytes(b.try_into()?);
                    }
                }
                ex.run(&comm, &mut host, t)?;
                batch_uploads.extend(ex.recv.iter().flat_map(|(_, pts)| pts.iter().copied()));
            }
            let host_bytes = u32_bytes(&host);
            let mut batch = gpu.batch()?;
            for p in batch_uploads {
                batch.upload(prev, Box3::d1(p, p + 1), &host_bytes, all)?;
            }
            batch.dispatch(
                kernel,
                Launch::d2([p0, 0], [p1, n]),
                &[Access::read(prev), Access::write(next), Access::read_write(&scratch)],
                &[iters, t, width as u32, pattern as u32, params.radix as u32, log2],
            )?;
            if !Exchange::plan(pattern, t + 1, width, ranks, rank, params.radix).send.is_empty() {
                pending_download = Some(batch.download(next, mine)?);
            }
            *last = batch.submit()?;
            Ok(())
        };
        for _ in 0..4 {
            t += 1;
            step(&mut gpu, t, 1, &mut last)?;
        }
        wait(&mut gpu, last)?;
        for (iters, steps) in params.sizes() {
            barrier(&comm)?;
            let start = Instant::now();
            for _ in 0..steps {
                t += 1;
                step(&mut gpu, t, iters, &mut last)?;
            }
            wait(&mut gpu, last)?;
            let seconds = start.elapsed().as_secs_f64();
            // Check our points' final tags.
            let mut batch = gpu.batch()?;
            let d = batch.download(&tags[t as usize % 2], mine)?;
            let id = batch.submit()?;
            wait(&mut gpu, id)?;
            let mut bytes = vec![0u8; (p1 - p0) * 4];
            gpu.read_download(d, &mut bytes, mine)?;
            let mut got = vec![0u32; width];
            for (p, b) in (p0..p1).zip(bytes.chunks_exact(4)) {
                got[p] = u32::from_ne_bytes(b.try_into()?);
            }
            check_tags(&got, t, width, p0..p1, "hand-written vulkan", pattern)?;
            samples.push(Sample::new("vulkan", pattern, ranks, width, n, iters, steps, seconds));
        }
        // A download recorded for a step that never came must not hold its staging buffer (the closure borrowing
        // it ends before this).
        if let Some(d) = pending_download {
            gpu.discard_download(d);
        }
        for a in tags {
            gpu.free(a);
        }
        gpu.free(scratch);
    }
    drop(comm);
    Ok(samples)
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
    let (rank, ranks) = (comm.rank() as usize, comm.size() as usize);
    let width = ranks * params.points_per_rank;
    let (p0, p1) = (rank * params.points_per_rank, (rank + 1) * params.points_per_rank);
    let mut samples = Vec::new();
    let mut checksum = 0.0f32;
    for &pattern in &params.patterns {
        let mut cur: Vec<u32> = (0..width).map(|p| tag(0, p, width)).collect();
        let mut next = cur.clone();
        let mut state = vec![[0.5f32; 8]; p1 - p0];
        let mut deps = Vec::new();
        let mut t = 0u32;
        let mut step = |t: u32, iters: u32, cur: &mut Vec<u32>, next: &mut Vec<u32>| -> Res<()> {
            let ex = Exchange::plan(pattern, t, width, ranks, rank, params.radix);
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
        for _ in 0..4 {
            t += 1;
            step(t, 1, &mut cur, &mut next)?;
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

fn drive(params: &Params, ranks: usize, cpu_ranks: usize, backends: &[String], out_dir: &str, mpirun: &str) -> Res<()> {
    std::fs::create_dir_all(out_dir)?;
    let exe = std::env::current_exe()?;
    let mut samples = Vec::new();
    for backend in backends {
        let n = if backend == "cpu" { cpu_ranks } else { ranks };
        let out = format!("{out_dir}/{backend}.txt");
        let _ = std::fs::remove_file(&out);
        let mut cmd = if n == 1 {
            Command::new(&exe)
        } else {
            let mut parts = mpirun.split_whitespace();
            let mut c = Command::new(parts.next().ok_or("empty --mpirun")?);
            c.args(parts).arg("-n").arg(n.to_string()).arg(&exe);
            c
        };
        cmd.args(["--worker", backend, "--out", &out]).args(params.args());
        eprintln!("metg: {backend} on {n} rank(s) …");
        let status = cmd.status().map_err(|e| format!("could not start {cmd:?}: {e}"))?;
        if !status.success() {
            return Err(format!("the {backend} workers failed ({status})").into());
        }
        for line in std::fs::read_to_string(&out)?.lines() {
            samples.push(Sample::parse(line)?);
        }
    }
    // Series per (backend, pattern), by decreasing granularity, with efficiency against the series' best FLOP/s.
    let mut series: BTreeMap<(String, String), Vec<Sample>> = BTreeMap::new();
    for s in samples {
        series.entry((s.backend.clone(), s.pattern.clone())).or_default().push(s);
    }
    let mut curves: BTreeMap<(String, String), Vec<(f64, f64)>> = BTreeMap::new();
    let mut report = String::new();
    let _ = writeln!(
        report,
        "METG sweep: {} thread(s) per GPU point, {} point(s) per rank, radix {}; celer/vulkan on {ranks} rank(s), \
         cpu on {cpu_ranks}\n",
        params.threads, params.points_per_rank, params.radix
    );
    for ((backend, pattern), list) in &series {
        let best = list.iter().map(Sample::flops).fold(0.0, f64::max);
        let _ = writeln!(report, "{backend} · {pattern}\n  iters   steps   µs/task     GFLOP/s   efficiency");
        let mut curve = Vec::new();
        for s in list {
            let e = s.flops() / best;
            let _ = writeln!(
                report,
                "  {:6} {:6} {:10.2} {:11.2}   {:5.1}%",
                s.iters,
                s.steps,
                s.granularity_us(),
                s.flops() / 1e9,
                e * 100.0
            );
            curve.push((s.granularity_us(), e));
        }
        curves.insert((backend.clone(), pattern.clone()), curve);
    }
    let _ = writeln!(report, "\nMETG(50%) in µs per task (\"<\" = still ≥ 50% at the finest size measured):");
    let mut table = String::from("| pattern |");
    for b in backends {
        let _ = write!(table, " {b} |");
    }
    let has = |b: &str| backends.iter().any(|x| x == b);
    if has("celer") && has("vulkan") {
        table.push_str(" celer ÷ vulkan |");
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
        if let (Some(c), Some(v)) = (values.get("celer"), values.get("vulkan")) {
            let _ = write!(table, " {:.2}× |", c / v);
        }
        table.push('\n');
    }
    report.push_str(&table);
    print!("{report}");
    std::fs::write(format!("{out_dir}/summary.md"), &report)?;
    std::fs::write(format!("{out_dir}/metg.svg"), svg(&curves))?;
    println!("wrote {out_dir}/summary.md and {out_dir}/metg.svg; every task's inputs were checked");
    Ok(())
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
    if params.points_per_rank == 0 || params.threads == 0 || params.iters_max < params.iters_min.max(1) {
        return Err("--points-per-rank and --threads must be ≥ 1, and --iters-max ≥ --iters-min ≥ 1".into());
    }
    if let Some(b) = backends.iter().find(|b| !["celer", "vulkan", "cpu"].contains(&b.as_str())) {
        return Err(format!("unknown backend {b}; use celer, vulkan, cpu").into());
    }
    let Some(backend) = worker else {
        return drive(&params, ranks, cpu_ranks, &backends, &out_dir, &mpirun);
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

/// METG: the minimum effective task granularity of celer, measured the Task Bench way, beside two baselines.
#[derive(clap::Parser)]
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
    /// Backends to run, comma-separated: celer, vulkan, cpu (default: all).
    #[arg(long, value_name = "LIST")]
    backends: Option<String>,
    /// Where the results go (default out/metg).
    #[arg(long, value_name = "DIR")]
    out_dir: Option<String>,
    /// The mpirun to start ranks with (default mpirun).
    #[arg(long, value_name = "CMD")]
    mpirun: Option<String>,
    /// Internal: run as a worker of this backend (the driver passes it).
    #[arg(long, value_name = "BACKEND")]
    worker: Option<String>,
    /// Internal: the worker's result file.
    #[arg(long, value_name = "FILE")]
    out: Option<String>,
}
