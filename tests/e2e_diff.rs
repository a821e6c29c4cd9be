//! Differential testing: random celer programs must give bit-identical fenced results on 1, 2 and 3 ranks.
//!
//! A program is generated from its seed (the same on every rank): a few 1D `i32` buffers (one of them the target
//! of sum reductions) and 2D `f32` square buffers, then 6–14 operations drawn from: a GPU add, a GPU write of
//! squares, host tasks that update a buffer in place, read a neighbourhood of another buffer, or read all of one
//! buffer on one rank and write a fixed part of another, or write every other cell of one (a write region of one
//! box per item), a GPU sum reduction, a GPU transpose, a host update of a 2D
//! buffer, a deterministic float reduction of a 2D buffer (sum of 1.1 v, min or max, in blocks of 2 x 2 items), a
//! master-node host task writing the last cells of one buffer while a kernel reads its other cells, host tasks
//! (master-node and collective) appending to a host object's log, a buffer dropped (its last commands may still
//! run) and made anew, a master-node host task setting the sum cell before a reduction including it, waits and
//! barriers, and fences
//! (of whole buffers and of sub-ranges) in between; at the end every buffer and rank 0's log are fenced. Every
//! fence's bytes are folded into a digest. Half the GPU
//! adds, sums, transposes and float reductions and the in-place host updates run over part of their buffer: an index
//! space starting up to 2 items in (`.offset(..)`) and ending up to 2 items early.
//!
//! Modes:
//! - `e2e_diff --worker --programs N --seed S --out FILE` (under `mpirun -n R`, or alone): runs programs S..S+N;
//!   rank 0 writes `seed digest` lines to FILE.
//! - `e2e_diff [--programs N] [--seed S] [--ranks 1,2,3,2x2]` (the driver, not under mpirun): runs the workers on
//!   each rank count (`RxD`: R ranks driving D devices each, `CELER_DEVICES=D`) and compares the digests program by
//!   program; the first difference fails the run, naming the seed (rerun it alone with `--programs 1 --seed SEED`).
//!   `cargo test` runs 20 programs on 1 and 2 ranks; `./x test` runs 200 on 1, 2 and 3 ranks and on 1 and 2 ranks
//!   of 2 devices; `scripts/diff_soak.sh` runs more. With `--nap-us N` (or `E2E_DIFF_NAP_US=N` in the environment)
//!   every host task first sleeps up to N µs (a different time each), so that work depending on horizons meets
//!   host tasks still running in their fronts; `--horizon-step N` sets `CELER_HORIZON_STEP` for the workers.

use std::process::{Command, ExitCode};

use celer::{access, kernels, task, Buffer, Kernel, Queue, ReductionOp};

/// The kernels of `kernels/`: i32 versions of gpu_add and squares, for the i32 buffers.
#[allow(dead_code)] // kernels/ holds the kernels of several tests and examples
mod own_kernels {
    celer::include_kernels!();
}

/// SplitMix64: the same numbers on every rank for the same seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `lo..hi`.
    fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + (self.next() % (hi - lo) as u64) as usize
    }

    /// An index space inside `[0, len)` (`len` at least 1) as offset and range: half the time all of it, else
    /// starting up to 2 items in and ending up to 2 items early (at least one item).
    fn part(&mut self, len: usize) -> (usize, usize) {
        if self.range(0, 2) == 0 {
            return (0, len);
        }
        let offset = self.range(0, 3).min(len - 1);
        (offset, (len - offset).saturating_sub(self.range(0, 3)).max(1))
    }
}

/// FNV-1a over the fenced bytes.
struct Digest(u64);

impl Digest {
    fn add(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01B3);
        }
    }
}

fn i32_bytes(v: &[i32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// Runs program `seed` on this queue; returns its digest and a one-line description of what it did.
fn program(q: &Queue, seed: u64) -> Result<(u64, String), String> {
    let err = |e: &dyn std::fmt::Display| format!("program {seed}: {e}");
    let mut rng = Rng(seed.wrapping_mul(0x2545_F491_4F6C_DD1D) ^ 0xC0FFEE);
    let mut digest = Digest(0xCBF2_9CE4_8422_2325);
    let mut ops = Vec::new();
    // The last int buffer holds reduction results: one cell.
    let n_int = rng.range(2, 5);
    let mut ints: Vec<Buffer<'_, i32, 1>> = (0..n_int)
        .map(|_| {
            let n = rng.range(5, 48);
            let init: Vec<i32> = (0..n).map(|_| rng.range(0, 1000) as i32 - 500).collect();
            q.buffer_from(&init, [n])
        })
        .collect();
    ints.push(q.buffer_from(&[0i32], [1]).named("sum"));
    let red = ints.len() - 1;
    let m = rng.range(3, 13);
    let floats: Vec<Buffer<'_, f32, 2>> = (0..rng.range(2, 4))
        .map(|_| {
            let init: Vec<f32> = (0..m * m).map(|_| rng.range(0, 64) as f32 / 8.0).collect();
            q.buffer_from(&init, [m, m])
        })
        .collect();
    let add = Kernel::wgsl(&own_kernels::ADD_I32, "main").map_err(|e| err(&e))?;
    let squares = Kernel::wgsl(&own_kernels::SQUARES_I32, "main").map_err(|e| err(&e))?;
    let sum = Kernel::wgsl(&kernels::REDUCE_I32, "reduce_sum").map_err(|e| err(&e))?;
    let transpose = Kernel::wgsl(&kernels::TRANSPOSE, "main").map_err(|e| err(&e))?;
    let axpy = Kernel::wgsl(&own_kernels::HSTRESS_OPS, "axpy").map_err(|e| err(&e))?;
    // Host tasks with a side effect append to this rank's log; rank 0's log (fenced at the end) is the same on
    // every rank count: master-node tasks run there, and a collective task once per rank.
    let log = q.host_object(Vec::<i32>::new());
    // Deterministic float reductions (blocks of 2 x 2 items), into a result of their own.
    let fred = q.buffer_from(&[0.0f32], [1]).named("fred");
    let float_reductions =
        [("reduce_sum", ReductionOp::Sum), ("reduce_min", ReductionOp::Min), ("reduce_max", ReductionOp::Max)];
    let fence_int = |b: &Buffer<'_, i32, 1>, digest: &mut Digest| -> Result<(), String> {
        let v = q.fence(b).map_err(|e| err(&e))?.wait().map_err(|e| err(&e))?;
        digest.add(&i32_bytes(&v));
        Ok(())
    };
    let fence_float = |b: &Buffer<'_, f32, 2>, digest: &mut Digest| -> Result<(), String> {
        let v = q.fence(b).map_err(|e| err(&e))?.wait().map_err(|e| err(&e))?;
        digest.add(&f32_bytes(&v));
        Ok(())
    };
    for _ in 0..rng.range(6, 15) {
        let a = rng.range(0, red);
        let b = (a + rng.range(1, red.max(2))) % red;
        let len = |i: usize| ints[i].range()[0];
        match rng.range(0, 17) {
            0 => {
                let amount = rng.range(1, 100) as i32;
                let (o, n) = rng.part(len(a));
                q.submit(
                    task::parallel_for(&add, [n])
                        .offset([o])
                        .read_write(&ints[a], access::one_to_one())
                        .scalar("amount", amount),
                )
                .map_err(|e| err(&e))?;
                ops.push("add");
            }
            1 => {
                q.submit(task::parallel_for(&squares, [len(a)]).discard_write(&ints[a], access::one_to_one()))
                    .map_err(|e| err(&e))?;
                ops.push("squares");
            }
            2 => {
                let (o, n) = rng.part(len(a));
                let t = task::host_for([n]).offset([o]);
                q.submit(t.read_write(&ints[a], access::one_to_one()).name("scale").run(|ctx| {
                    nap();
                    let first = ctx.chunk().min()[0];
                    for (k, v) in ctx.data_mut::<i32>(0).iter_mut().enumerate() {
                        *v = v.wrapping_mul(3).wrapping_add((first + k) as i32);
                    }
                }))
                .map_err(|e| err(&e))?;
                ops.push("host scale");
            }
            3 if a != b => {
                let r = rng.range(1, 3);
                let n = len(a).min(len(b));
                let src_len = len(a);
                q.submit(
                    task::host_for([n])
                        .read(&ints[a], access::neighborhood([r]))
                        .write(&ints[b], access::one_to_one())
                        .name("window sum")
                        .run(move |ctx| {
                            nap();
                            let chunk = ctx.chunk();
                            let src_box = ctx.bounds::<1>(0);
                            let src: Vec<i32> = ctx.data::<i32>(0).to_vec();
                            let out = ctx.data_mut::<i32>(1);
                            for (k, o) in out.iter_mut().enumerate() {
                                let i = chunk.min()[0] + k;
                                let (lo, hi) = (i.saturating_sub(r), (i + r + 1).min(src_len));
                                *o = (lo..hi).fold(0i32, |s, j| s.wrapping_add(src[j - src_box.min()[0]]));
                            }
                        }),
                )
                .map_err(|e| err(&e))?;
                ops.push("host window");
            }
            4 if a != b => {
                let k = len(b).min(4);
                // Also reads the reduction result sometimes.
                let from = if rng.range(0, 3) == 0 { red } else { a };
                q.submit(
                    task::host_once()
                        .read(&ints[from], access::all())
                        .write(&ints[b], access::fixed([0], [k]))
                        .name("total")
                        .run(|ctx| {
                            nap();
                            let total = ctx.data::<i32>(0).iter().fold(0i32, |s, v| s.wrapping_add(*v));
                            for (j, o) in ctx.data_mut::<i32>(1).iter_mut().enumerate() {
                                *o = total.wrapping_add(j as i32);
                            }
                        }),
                )
                .map_err(|e| err(&e))?;
                ops.push("host once");
            }
            5 => {
                let (o, n) = rng.part(len(a));
                let t = task::parallel_for(&sum, [n]).offset([o]).read(&ints[a], access::one_to_one());
                // Half the sums fold in the old value (reduce_including), so the result accumulates over the program.
                if rng.range(0, 2) == 0 {
                    q.submit(t.reduce(&ints[red], ReductionOp::Sum)).map_err(|e| err(&e))?;
                    ops.push("sum");
                } else {
                    q.submit(t.reduce_including(&ints[red], ReductionOp::Sum)).map_err(|e| err(&e))?;
                    ops.push("sum including");
                }
            }
            6 if floats.len() > 1 => {
                let (s, d) = (rng.range(0, floats.len()), rng.range(0, floats.len()));
                let ((o0, n0), (o1, n1)) = (rng.part(m), rng.part(m));
                if s != d {
                    q.submit(
                        task::parallel_for(&transpose, [n0, n1])
                            .offset([o0, o1])
                            .read(&floats[s], access::transposed())
                            .discard_write(&floats[d], access::one_to_one()),
                    )
                    .map_err(|e| err(&e))?;
                    ops.push("transpose");
                }
            }
            7 => {
                let f = rng.range(0, floats.len());
                let ((o0, n0), (o1, n1)) = (rng.part(m), rng.part(m));
                let t = task::host_for([n0, n1]).offset([o0, o1]);
                q.submit(t.read_write(&floats[f], access::one_to_one()).name("relax").run(|ctx| {
                    nap();
                    let chunk = ctx.chunk();
                    let cols = chunk.range()[1];
                    for (k, v) in ctx.data_mut::<f32>(0).iter_mut().enumerate() {
                        let (i, j) = (chunk.min()[0] + k / cols, chunk.min()[1] + k % cols);
                        *v = *v * 0.5 + (i + 2 * j) as f32;
                    }
                }))
                .map_err(|e| err(&e))?;
                ops.push("host relax");
            }
            8 => {
                let f = rng.range(0, floats.len());
                let (entry, op) = float_reductions[rng.range(0, 3)];
                let k = Kernel::wgsl(&own_kernels::BLOCK_F32_2X2, entry).map_err(|e| err(&e))?;
                let ((o0, n0), (o1, n1)) = (rng.part(m), rng.part(m));
                let t = task::parallel_for(&k, [n0, n1]).offset([o0, o1]).read(&floats[f], access::one_to_one());
                q.submit(t.reduce(&fred, op)).map_err(|e| err(&e))?;
                if rng.range(0, 2) == 0 {
                    let v = q.fence(&fred).map_err(|e| err(&e))?.wait().map_err(|e| err(&e))?;
                    digest.add(&v[0].to_le_bytes());
                }
                ops.push("float reduction");
            }
            9 if a != b => {
                // Item i reads cell i of a and writes cell 2i of b (a region of one box per item): the closure sees
                // the bounding box and fills it with garbage first, but the odd cells must keep their values.
                let n = len(a).min(len(b) / 2);
                let evens = access::custom("evens", |c: &celer::GridBox<1>, _: &celer::GridBox<1>| {
                    celer::Region::from_boxes((c.min()[0]..c.max()[0]).map(|i| celer::GridBox::d1(2 * i, 2 * i + 1)))
                });
                q.submit(
                    task::host_for([n]).read(&ints[a], access::one_to_one()).write(&ints[b], evens).name("evens").run(
                        |ctx| {
                            nap();
                            let (chunk, lo) = (ctx.chunk(), ctx.bounds::<1>(1).min()[0]);
                            let src: Vec<i32> = ctx.data::<i32>(0).to_vec();
                            let out = ctx.data_mut::<i32>(1);
                            out.fill(-7777);
                            for (k, v) in src.iter().enumerate() {
                                out[2 * (chunk.min()[0] + k) - lo] = v.wrapping_mul(5);
                            }
                        },
                    ),
                )
                .map_err(|e| err(&e))?;
                ops.push("host evens");
            }
            11 if a != b => {
                // A master-node host task writes b's last cells from a's sum while a kernel reads b's other cells
                // (written before, maybe collapsed into a horizon) and a's, and updates a third buffer.
                let k = len(b).min(3);
                let tail = len(b) - k;
                q.submit(
                    task::host_once()
                        .read(&ints[a], access::all())
                        .discard_write(&ints[b], access::fixed([tail], [k]))
                        .name("tail")
                        .run(|ctx| {
                            nap();
                            let total = ctx.data::<i32>(0).iter().fold(0i32, |s, v| s.wrapping_add(*v));
                            for (j, o) in ctx.data_mut::<i32>(1).iter_mut().enumerate() {
                                *o = total.wrapping_mul(7).wrapping_add(j as i32);
                            }
                        }),
                )
                .map_err(|e| err(&e))?;
                ops.push("host tail");
                if let Some(d) = (0..red).find(|&d| d != a && d != b) {
                    let n = tail.min(len(a)).min(len(d));
                    if n > 0 {
                        q.submit(
                            task::parallel_for(&axpy, [n])
                                .read(&ints[b], access::one_to_one())
                                .read(&ints[red], access::all())
                                .read(&ints[a], access::one_to_one())
                                .read_write(&ints[d], access::one_to_one())
                                .scalar("k", rng.range(0, 50) as i32),
                        )
                        .map_err(|e| err(&e))?;
                        ops.push("axpy");
                    }
                }
            }
            12 => {
                // A collective host task (once per rank) logging a's sum.
                q.submit(
                    task::host_collective().read(&ints[a], access::all()).side_effect(&log).name("collective log").run(
                        |ctx| {
                            nap();
                            let total = ctx.data::<i32>(0).iter().fold(0i32, |s, v| s.wrapping_add(*v));
                            ctx.with_object::<Vec<i32>, _>(0, |l| l.push(total));
                        },
                    ),
                )
                .map_err(|e| err(&e))?;
                ops.push("collective log");
            }
            13 => {
                // A master-node host task logging a's first cell and length, and the log's length so far.
                q.submit(task::host_once().read(&ints[a], access::all()).side_effect(&log).name("log").run(|ctx| {
                    nap();
                    let v = ctx.data::<i32>(0);
                    let (first, n) = (v[0], v.len() as i32);
                    ctx.with_object::<Vec<i32>, _>(0, |l| {
                        let k = l.len() as i32;
                        l.extend([first, n, k]);
                    });
                }))
                .map_err(|e| err(&e))?;
                ops.push("host log");
            }
            14 => {
                // Drops a (its last commands may still run) and makes a new buffer in its place: from host data,
                // or written whole by a kernel first.
                let n = rng.range(5, 48);
                if rng.range(0, 2) == 0 {
                    let init: Vec<i32> = (0..n).map(|_| rng.range(0, 1000) as i32 - 500).collect();
                    ints[a] = q.buffer_from(&init, [n]);
                    ops.push("renew");
                } else {
                    ints[a] = q.buffer::<i32, 1>([n]);
                    q.submit(task::parallel_for(&squares, [n]).discard_write(&ints[a], access::one_to_one()))
                        .map_err(|e| err(&e))?;
                    ops.push("renew squares");
                }
            }
            15 => {
                // A master-node host task sets the sum cell; a reduction including it follows.
                q.submit(
                    task::host_once()
                        .read(&ints[a], access::all())
                        .discard_write(&ints[red], access::all())
                        .name("set sum")
                        .run(|ctx| {
                            nap();
                            let total = ctx.data::<i32>(0).iter().fold(0i32, |s, v| s.wrapping_add(*v));
                            ctx.data_mut::<i32>(1)[0] = total % 1000;
                        }),
                )
                .map_err(|e| err(&e))?;
                let (o, n) = rng.part(len(b));
                let t = task::parallel_for(&sum, [n]).offset([o]).read(&ints[b], access::one_to_one());
                q.submit(t.reduce_including(&ints[red], ReductionOp::Sum)).map_err(|e| err(&e))?;
                ops.push("set sum, sum including");
            }
            16 => {
                // An epoch: the edges right after it are plain, later ones may be settled by it.
                if rng.range(0, 2) == 0 {
                    q.wait();
                    ops.push("wait");
                } else {
                    q.barrier();
                    ops.push("barrier");
                }
            }
            10 if rng.range(0, 2) == 0 => {
                let (o, n) = rng.part(len(a));
                let v = q.fence_subrange(&ints[a], [o], [n]).map_err(|e| err(&e))?.wait().map_err(|e| err(&e))?;
                digest.add(&i32_bytes(&v));
                ops.push("fence part");
            }
            _ => {
                if rng.range(0, 2) == 0 {
                    fence_int(&ints[rng.range(0, ints.len())], &mut digest)?;
                } else {
                    fence_float(&floats[rng.range(0, floats.len())], &mut digest)?;
                }
                ops.push("fence");
            }
        }
    }
    for b in &ints {
        fence_int(b, &mut digest)?;
    }
    for b in &floats {
        fence_float(b, &mut digest)?;
    }
    let v = q.fence(&fred).map_err(|e| err(&e))?.wait().map_err(|e| err(&e))?;
    digest.add(&v[0].to_le_bytes());
    digest.add(&i32_bytes(&q.fence_object(&log).map_err(|e| err(&e))?));
    Ok((digest.0, ops.join(", ")))
}

/// Sleeps up to `E2E_DIFF_NAP_US` µs (unset: not at all), a different time on every call: with it, host tasks are
/// slow and finish out of order, so that commands depending on horizons (whose fronts hold host tasks) see them
/// unfinished; the results must not change.
fn nap() {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NAP_US: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    static CALLS: AtomicU64 = AtomicU64::new(0);
    let max = *NAP_US.get_or_init(|| std::env::var("E2E_DIFF_NAP_US").ok().and_then(|v| v.parse().ok()).unwrap_or(0));
    if max > 0 {
        let k = CALLS.fetch_add(1, Ordering::Relaxed).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 40;
        std::thread::sleep(std::time::Duration::from_micros(k % (max + 1)));
    }
}

fn worker(programs: u64, seed: u64, out: Option<&str>) -> Result<(), String> {
    let q = Queue::new().map_err(|e| e.to_string())?;
    let mut lines = String::new();
    for s in seed..seed + programs {
        let (d, ops) = program(&q, s)?;
        lines.push_str(&format!("{s} {d:016x} {ops}\n"));
    }
    if q.rank() == 0 {
        match out {
            Some(path) => std::fs::write(path, lines).map_err(|e| format!("writing {path}: {e}"))?,
            None => print!("{lines}"),
        }
    }
    Ok(())
}

fn driver(programs: u64, seed: u64, ranks: &[String]) -> Result<String, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("e2e_diff");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let mut results: Vec<(&str, Vec<String>)> = Vec::new();
    for r in ranks {
        let (n, devices) = r.split_once('x').unwrap_or((r, "1"));
        let out = dir.join(format!("ranks{r}.txt"));
        let _ = std::fs::remove_file(&out);
        let mut cmd = Command::new("mpirun");
        cmd.env("CELER_DEVICES", devices);
        cmd.args(["-n", n]).arg(&exe);
        cmd.args(["--worker", "--programs", &programs.to_string(), "--seed", &seed.to_string(), "--out"]).arg(&out);
        let status = cmd.status().map_err(|e| format!("could not start mpirun: {e}"))?;
        if !status.success() {
            return Err(format!("the run on {r} rank(s) failed ({status})"));
        }
        let text = std::fs::read_to_string(&out).map_err(|e| format!("{}: {e}", out.display()))?;
        results.push((r.as_str(), text.lines().map(str::to_string).collect()));
    }
    let (base_ranks, base) = &results[0];
    if base.len() as u64 != programs {
        return Err(format!("{base_ranks} rank(s) reported {} programs, expected {programs}", base.len()));
    }
    for (r, lines) in &results[1..] {
        for (want, got) in base.iter().zip(lines) {
            if want != got {
                return Err(format!(
                    "program results differ between {base_ranks} and {r} rank(s):\n  {want}\n  {got}\n\
                     (rerun: e2e_diff --programs 1 --seed {} --ranks {base_ranks},{r})",
                    want.split_whitespace().next().unwrap_or("?")
                ));
            }
        }
        if lines.len() != base.len() {
            return Err(format!("{r} rank(s) reported {} programs, expected {}", lines.len(), base.len()));
        }
    }
    Ok(format!(
        "{programs} random programs (seeds {seed}..{}) gave bit-identical fenced results on {ranks:?} rank(s)",
        seed + programs
    ))
}

fn main() -> ExitCode {
    // celer's rank-prefixed logger, at the level of CELER_LOG (celer installs none unless asked).
    celer::logging::init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let value = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned();
    let programs: u64 = value("--programs").and_then(|v| v.parse().ok()).unwrap_or(20);
    let seed: u64 = value("--seed").and_then(|v| v.parse().ok()).unwrap_or(1);
    // Settings the workers inherit through the environment.
    if let Some(us) = value("--nap-us") {
        std::env::set_var("E2E_DIFF_NAP_US", us);
    }
    if let Some(step) = value("--horizon-step") {
        std::env::set_var("CELER_HORIZON_STEP", step);
    }
    let result = if args.iter().any(|a| a == "--worker") {
        worker(programs, seed, value("--out").as_deref()).map(|()| String::new())
    } else {
        let ranks: Vec<String> =
            value("--ranks").unwrap_or_else(|| "1,2".into()).split(',').map(str::to_string).collect();
        driver(programs, seed, &ranks)
    };
    match result {
        Ok(summary) => {
            if !summary.is_empty() {
                println!("e2e_diff: {summary}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("e2e_diff: {e}");
            ExitCode::FAILURE
        }
    }
}
