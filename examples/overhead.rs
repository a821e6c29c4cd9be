//! Per-task overhead of celer against the same work dispatched by hand, measured in one run.
//!
//! Six ways of running `--tasks` tiny tasks: (1) a 1D stencil of tiny steps (256 cells, halos between ranks)
//! through celer; a chain of tiny kernels (each adds 1 to the 64 cells of a buffer, so each depends on the previous)
//! (2) through celer on every rank and, on rank 0, hand-written through the same GPU layer: (3) 64 dispatches per
//! submission, (4) one dispatch per submission, all submitted back to back, waiting only for the last, and (5) the
//! same, waiting for each dispatch before the next (the round trip a naive runtime pays); and (6) the chain through
//! celer with a kernel of nine bindings and three scalars (`kernels/wide_sum.wgsl`), whose 252 bytes of parameters
//! exceed the 128 bytes of push constants every device offers: each dispatch writes them to the GPU layer's
//! parameter ring, and its batches are recorded, not replayed (what such kernels cost against (2)).
//!
//! How it is measured: `--reps` repetitions (default 3); in repetition r every way runs once, in the order above
//! rotated left by r, each first untimed (a run of the same length: warm-up) and then timed. Prints the minimum and
//! median µs per task of each way, every repetition's figure, and the ratio celer ÷ batched by hand of the chain
//! (per repetition, and of the medians); for celer's two ways also, per task, the runtime thread's CPU time, its
//! time in loop steps that made progress and its loop steps (`RankStats::runtime_cpu`, `busy`, `loop_steps`: CPU
//! time, which other processes do not inflate the way they do wall time), and the application thread's time
//! submitting (wall and CPU time). The runtime thread polls while it waits, so its CPU time follows the wall time whichever thread or
//! device is the bottleneck; its busy time is what its work takes. The celer queue and the hand-written GPU live
//! side by side in one process; results are checked.
//!
//! ```text
//! cargo run --release --example overhead -- [--tasks 2000] [--reps 3]
//! mpirun -n 2 target/release/examples/overhead
//! ```

use std::time::{Duration, Instant};

use celer::{access, kernels, task, Buffer, Kernel, Queue};
use celer_examples::stats::median;
use celer_exec::gpu::{Access, Box3, DeviceAllocation, Gpu, KernelId, Launch};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

/// The ways of running the tasks, in the order of repetition 0.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Way {
    /// celer, a 1D stencil of tiny steps.
    Stencil,
    /// celer, the chain.
    Chain,
    /// The chain by hand, 64 dispatches per submission (barriers between them), all submitted back to back.
    Batched,
    /// The chain by hand, one dispatch per submission, all submitted back to back.
    BackToBack,
    /// The chain by hand, one dispatch per submission, each waited for.
    WaitEach,
    /// celer, the chain through a kernel whose parameters are in a storage buffer.
    WideChain,
}

const WAYS: [Way; 6] = [Way::Stencil, Way::Chain, Way::Batched, Way::BackToBack, Way::WaitEach, Way::WideChain];

impl Way {
    fn label(self) -> &'static str {
        match self {
            Way::Stencil => "celer, 1D stencil of tiny steps (256 cells)",
            Way::Chain => "celer, chain of tiny kernels (64 cells)",
            Way::Batched => "chain by hand, 64 dispatches per submission",
            Way::BackToBack => "chain by hand, one per submission, back to back",
            Way::WaitEach => "chain by hand, one per submission, waiting",
            Way::WideChain => "celer, chain of 9-binding kernels (64 cells)",
        }
    }

    fn by_hand(self) -> bool {
        !matches!(self, Way::Stencil | Way::Chain | Way::WideChain)
    }
}

/// The hand-written chain: one GPU of its own, one allocation of 64 cells, and the adds run so far.
struct HandChain {
    gpu: Gpu,
    kernel: KernelId,
    data: Option<DeviceAllocation>,
    done: usize,
}

impl HandChain {
    fn new() -> Res<Self> {
        let mut gpu = Gpu::new()?;
        let kernel = gpu.load_kernel(&kernels::GPU_ADD, "main")?;
        let cells = Box3::d1(0, 64);
        let data = gpu.allocate(cells, 4)?;
        let mut batch = gpu.batch()?;
        batch.upload(&data, cells, &[0u8; 64 * 4], cells)?;
        let first = batch.submit()?;
        gpu.poll_until_complete(first, Duration::from_secs(10))?;
        Ok(HandChain { gpu, kernel, data: Some(data), done: 0 })
    }

    /// Runs `tasks` adds the way `way` says; returns µs per task.
    fn run(&mut self, tasks: usize, way: Way) -> Res<f64> {
        let data = self.data.as_ref().ok_or("freed")?;
        let per_batch = if way == Way::Batched { 64 } else { 1 };
        let start = Instant::now();
        let mut last = None;
        let mut done = 0;
        while done < tasks {
            let mut batch = self.gpu.batch()?;
            for _ in 0..per_batch.min(tasks - done) {
                batch.dispatch(self.kernel, Launch::d1(0, 64), &[Access::read_write(data)], &[1])?;
                done += 1;
            }
            let id = batch.submit()?;
            if way == Way::WaitEach {
                self.gpu.poll_until_complete(id, Duration::from_secs(10))?;
            }
            last = Some(id);
        }
        if let Some(id) = last {
            self.gpu.poll_until_complete(id, Duration::from_secs(60))?;
        }
        let us = start.elapsed().as_secs_f64() * 1e6 / tasks as f64;
        self.done += tasks;
        Ok(us)
    }

    /// Checks that every cell counted every add.
    fn check(&mut self) -> Res<()> {
        let data = self.data.take().ok_or("freed")?;
        let cells = Box3::d1(0, 64);
        let mut batch = self.gpu.batch()?;
        let d = batch.download(&data, cells)?;
        let id = batch.submit()?;
        self.gpu.poll_until_complete(id, Duration::from_secs(10))?;
        let mut out = vec![0u8; 64 * 4];
        self.gpu.read_download(d, &mut out, cells)?;
        self.gpu.free(data);
        for c in out.chunks_exact(4) {
            let v = u32::from_ne_bytes(c.try_into()?);
            if v != self.done as u32 {
                return Err(format!("hand-written chain computed {v}, expected {}", self.done).into());
            }
        }
        Ok(())
    }
}

/// The kernels of `kernels/` (wide_sum here).
#[allow(dead_code)] // kernels/ holds the kernels of several tests and examples
mod own_kernels {
    celer::include_kernels!();
}

/// celer's three ways: the chains' buffers, the stencil's two fields, and what has run.
struct ThroughCeler<'q> {
    q: &'q Queue,
    add: Kernel,
    heat: Kernel,
    /// `wide_sum`'s `accumulate`: adds `c` to every cell of `wide_out` where its eight inputs are zero and `a`, `b`
    /// are 0.
    wide: Kernel,
    data: Buffer<'q, u32, 1>,
    fields: [Buffer<'q, f32, 1>; 2],
    wide_in: [Buffer<'q, f32, 1>; 8],
    wide_out: Buffer<'q, f32, 1>,
    adds: usize,
    steps: usize,
    wide_adds: usize,
    /// Of the last run, per task: the runtime thread's CPU µs, loop steps and busy µs (`RankStats::runtime_cpu`,
    /// `loop_steps`, `busy`), and the µs the application thread spent submitting.
    last_cpu: Threads,
}

/// What celer's two threads did per task in one run: the runtime thread's CPU µs, loop steps and µs in loop steps
/// that made progress (the rest of its time it polls: CPU time close to the busy time says it is the bottleneck,
/// CPU time well above it that it waits for the GPU or the application), and the µs the application thread took
/// to submit (until its last `submit` returned; it blocks when it runs `CELER_SUBMIT_AHEAD` horizons ahead).
#[derive(Clone, Copy, Default)]
struct Threads {
    cpu: f64,
    steps: f64,
    busy: f64,
    submit: f64,
    /// The application thread's CPU µs while submitting: well below `submit` when it waited for the runtime.
    submit_cpu: f64,
    /// Kernels per GPU batch the runtime submitted: each batch boundary costs the GPU a gap.
    per_batch: f64,
}

/// The CPU time the calling thread has used (zero where the clock cannot be read).
fn thread_cpu_time() -> Duration {
    let mut t = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `t` is a valid, writable timespec; the call writes only it.
    if unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) } != 0 {
        return Duration::ZERO;
    }
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

/// Cells of the stencil's field.
const STENCIL_CELLS: usize = 256;

impl<'q> ThroughCeler<'q> {
    fn new(q: &'q Queue) -> Res<Self> {
        Ok(ThroughCeler {
            q,
            add: Kernel::wgsl(&kernels::GPU_ADD, "main")?,
            heat: Kernel::wgsl(&kernels::HEAT_1D, "main")?,
            wide: Kernel::wgsl(&own_kernels::WIDE_SUM, "accumulate")?,
            data: q.buffer_from(&[0u32; 64], [64]).named("data"),
            fields: [
                q.buffer_from(&vec![1.0f32; STENCIL_CELLS], [STENCIL_CELLS]).named("a"),
                q.buffer::<f32, 1>([STENCIL_CELLS]).named("b"),
            ],
            wide_in: std::array::from_fn(|i| q.buffer_from(&[0.0f32; 64], [64]).named(format!("x{i}"))),
            wide_out: q.buffer_from(&[0.0f32; 64], [64]).named("wide_out"),
            adds: 0,
            steps: 0,
            wide_adds: 0,
            last_cpu: Threads::default(),
        })
    }

    /// Runs `tasks` tasks the way `way` says, after every rank met at a barrier; returns µs per task.
    fn run(&mut self, tasks: usize, way: Way) -> Res<f64> {
        let q = self.q;
        q.barrier();
        let before = q.stats().unwrap_or_default();
        let start = Instant::now();
        let app_cpu = thread_cpu_time();
        for _ in 0..tasks {
            if way == Way::Chain {
                q.submit(
                    task::parallel_for(&self.add, [64]).read_write(&self.data, access::one_to_one()).scalars(&[1]),
                )?;
                self.adds += 1;
            } else if way == Way::WideChain {
                let mut t = task::parallel_for(&self.wide, [64]).read(&self.wide_in[0], access::neighborhood([1]));
                for x in &self.wide_in[1..] {
                    t = t.read(x, access::one_to_one());
                }
                q.submit(
                    t.read_write(&self.wide_out, access::one_to_one()).scalar_f32(0.0).scalar_f32(0.0).scalar_f32(1.0),
                )?;
                self.wide_adds += 1;
            } else {
                let (src, dst) = (&self.fields[self.steps % 2], &self.fields[(self.steps + 1) % 2]);
                q.submit(
                    task::parallel_for(&self.heat, [STENCIL_CELLS])
                        .read(src, access::neighborhood([1]))
                        .discard_write(dst, access::one_to_one())
                        .scalar_f32(0.1),
                )?;
                self.steps += 1;
            }
        }
        let submitting = start.elapsed();
        let app_cpu = thread_cpu_time().saturating_sub(app_cpu);
        q.wait();
        let us = start.elapsed().as_secs_f64() * 1e6 / tasks as f64;
        let after = q.stats().unwrap_or_default();
        let per_task = |d: Duration| d.as_secs_f64() * 1e6 / tasks as f64;
        self.last_cpu = Threads {
            cpu: per_task(after.runtime_cpu.saturating_sub(before.runtime_cpu)),
            steps: after.loop_steps.saturating_sub(before.loop_steps) as f64 / tasks as f64,
            busy: per_task(after.busy.saturating_sub(before.busy)),
            submit: per_task(submitting),
            submit_cpu: per_task(app_cpu),
            per_batch: after.kernels.saturating_sub(before.kernels) as f64
                / after.kernel_batches.saturating_sub(before.kernel_batches).max(1) as f64,
        };
        Ok(us)
    }

    /// Checks the chains' counts and that the stencil of a constant field left it constant.
    fn check(&self) -> Res<()> {
        let got = self.q.fence(&self.data)?.wait()?;
        if got.iter().any(|&v| v != self.adds as u32) {
            return Err(format!("celer chain computed {:?}…, expected {}", &got[..4], self.adds).into());
        }
        let field = self.q.fence(&self.fields[self.steps % 2])?.wait()?;
        if field.iter().any(|&v| (v - 1.0).abs() > 1e-5) {
            return Err("the stencil of a constant field changed it".into());
        }
        // Whole numbers below 2^24: exact in f32.
        let wide = self.q.fence(&self.wide_out)?.wait()?;
        if wide.iter().any(|&v| v != self.wide_adds as f32) {
            return Err(format!("celer's wide chain computed {:?}…, expected {}", &wide[..4], self.wide_adds).into());
        }
        Ok(())
    }
}

fn main() -> Res<()> {
    // celer's rank-prefixed logger, at the level of CELER_LOG (celer installs none unless asked).
    celer::logging::init();
    let mut tasks = if cfg!(debug_assertions) { 200 } else { 2000 };
    let args = <Args as clap::Parser>::parse();
    if let Some(v) = args.tasks {
        tasks = v.parse()?;
    }
    let reps: usize = args.reps.as_deref().unwrap_or("3").parse()?;
    if tasks == 0 || reps == 0 {
        return Err("--tasks and --reps must be ≥ 1".into());
    }
    let q = Queue::new()?;
    let (rank, ranks) = (q.rank(), q.ranks());
    let mut celer = ThroughCeler::new(&q)?;
    // The hand-written chain needs no MPI: rank 0 runs it, beside its queue; the other ranks wait at celer's next
    // barrier meanwhile.
    let mut hand = if rank == 0 { Some(HandChain::new()?) } else { None };
    let mut us: Vec<(Way, Vec<f64>)> = WAYS.iter().map(|&w| (w, Vec::new())).collect();
    // celer's ways: what the two threads did per task in each timed run.
    let mut cpu: Vec<(Way, Vec<Threads>)> =
        vec![(Way::Stencil, Vec::new()), (Way::Chain, Vec::new()), (Way::WideChain, Vec::new())];
    for r in 0..reps {
        let mut order = WAYS.to_vec();
        order.rotate_left(r % WAYS.len());
        for way in order {
            let figure = match (&mut hand, way.by_hand()) {
                (Some(h), true) => {
                    h.run(tasks, way)?;
                    h.run(tasks, way)?
                }
                (None, true) => continue,
                (_, false) => {
                    celer.run(tasks, way)?;
                    let figure = celer.run(tasks, way)?;
                    cpu.iter_mut().find(|(w, _)| *w == way).ok_or("way")?.1.push(celer.last_cpu);
                    figure
                }
            };
            us.iter_mut().find(|(w, _)| *w == way).ok_or("way")?.1.push(figure);
        }
    }
    celer.check()?;
    if let Some(h) = &mut hand {
        h.check()?;
    }
    if rank != 0 {
        return Ok(());
    }
    println!(
        "overhead: {tasks} tasks each, {ranks} rank(s), {reps} repetition(s) in rotated order, each way after an \
         untimed run of the same length; results checked"
    );
    for (way, v) in &us {
        let each: Vec<String> = v.iter().map(|x| format!("{x:.2}")).collect();
        println!(
            "  {:<48} min {:7.2}, median {:7.2} µs per task   (each: {})",
            way.label(),
            v.iter().copied().fold(f64::INFINITY, f64::min),
            median(v),
            each.join(" ")
        );
    }
    for (way, v) in &cpu {
        let of = |f: fn(&Threads) -> f64| median(&v.iter().map(f).collect::<Vec<f64>>());
        println!(
            "  {:<48} runtime thread: median {:.2} µs of CPU, {:.2} µs in busy loop steps and {:.1} loop steps per \
             task, {:.1} kernels per batch; application thread: {:.2} µs per task submitting ({:.2} µs of CPU)",
            way.label(),
            of(|t| t.cpu),
            of(|t| t.busy),
            of(|t| t.steps),
            of(|t| t.per_batch),
            of(|t| t.submit),
            of(|t| t.submit_cpu)
        );
    }
    let of = |way: Way| us.iter().find(|(w, _)| *w == way).map(|(_, v)| v.clone()).unwrap_or_default();
    let (chain, batched, b2b, waiting) = (of(Way::Chain), of(Way::Batched), of(Way::BackToBack), of(Way::WaitEach));
    let per_rep: Vec<String> = chain.iter().zip(&batched).map(|(c, b)| format!("{:.2}", c / b)).collect();
    println!(
        "  chain: celer ÷ batched by hand: {:.2}× (medians; per repetition {})   ÷ back to back: {:.2}×   ÷ \
         waiting: {:.2}×",
        median(&chain) / median(&batched),
        per_rep.join(" "),
        median(&chain) / median(&b2b),
        median(&chain) / median(&waiting)
    );
    let wide = of(Way::WideChain);
    println!(
        "  chain of 9-binding kernels ÷ chain of 1-binding kernels, both through celer: {:.2}× (medians; nine \
         buffers per task, and parameters in storage where the block exceeds 128 bytes)",
        median(&wide) / median(&chain)
    );
    Ok(())
}

/// Per-task overhead of celer against the same work dispatched by hand, measured in one run.
#[derive(clap::Parser)]
struct Args {
    /// Tasks per measurement (default 200 in debug builds, 2000 in release).
    #[arg(long, value_name = "N")]
    tasks: Option<String>,
    /// Repetitions: each runs every way once, in an order rotated by the repetition (default 3).
    #[arg(long, value_name = "N")]
    reps: Option<String>,
}
