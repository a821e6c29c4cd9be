//! Deterministic reductions end to end: the prelude's block reductions (`celer_reduce_*`, kernels
//! `kernels/block_*.wgsl`) must give the same bits on any number of ranks and devices and from run to run.
//!
//! - `e2e_determinism --worker [--out FILE]` (under `mpirun -n N`): the sum of 10^6 random `f32` values, sums,
//!   minimums and maximums of 30 011 random `f32`, `i32` and `u32` values (the first of them computed twice, and
//!   once more read by two ranks' host tasks before every rank reads it) and of 300 007 random `f64` values (the
//!   prelude's f64 part; the sum also within rounding of the serial sum, minimum and maximum exactly the serial
//!   ones), and
//!   the sum of a 150 × 149 `f32` field through a 2D kernel; every result must equal the host's model of the fixed
//!   tree (the prelude's fold of each workgroup, blocks combined pairwise by number), which depends on neither the
//!   split nor the run. Rank 0 writes one line per result, `name bits`, to FILE.
//! - `e2e_determinism [--ranks 1,2,3,4,1x2]` (the driver, not under mpirun): runs the worker on each rank count
//!   (`RxD`: R ranks driving D devices each, `CELER_DEVICES=D`) and compares the lines: every bit must agree.
//!   `cargo test` runs it on 1 and 2 ranks; `./x test` on 1, 2, 3 and on 1, 4 ranks and 1 rank with 2 devices (two
//!   runs, each within mpirun's time limit; both compare with the host model, so all five agree).

use std::process::{Command, ExitCode};

use celer::{access, task, Element, Kernel, Queue, Reducible, ReductionOp};

celer::include_kernels!();

/// xorshift64*: the test's values, the same on every rank.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

/// An element type of the prelude's block reductions, with its host model of the combine.
trait Value: Reducible + Element + Copy + PartialOrd + Default {
    fn add(self, other: Self) -> Self;
    fn bits(self) -> u64;
    /// What the prelude gives an invalid invocation.
    fn identity(op: ReductionOp) -> Self;
}

impl Value for f32 {
    fn add(self, other: Self) -> Self {
        self + other
    }
    fn bits(self) -> u64 {
        self.to_bits() as u64
    }
    fn identity(op: ReductionOp) -> Self {
        [0.0, f32::INFINITY, f32::NEG_INFINITY][op_index(op)]
    }
}

impl Value for f64 {
    fn add(self, other: Self) -> Self {
        self + other
    }
    fn bits(self) -> u64 {
        self.to_bits()
    }
    fn identity(op: ReductionOp) -> Self {
        [0.0, f64::INFINITY, f64::NEG_INFINITY][op_index(op)]
    }
}

impl Value for i32 {
    fn add(self, other: Self) -> Self {
        self.wrapping_add(other)
    }
    fn bits(self) -> u64 {
        self as u32 as u64
    }
    fn identity(op: ReductionOp) -> Self {
        [0, i32::MAX, i32::MIN][op_index(op)]
    }
}

impl Value for u32 {
    fn add(self, other: Self) -> Self {
        self.wrapping_add(other)
    }
    fn bits(self) -> u64 {
        self as u64
    }
    fn identity(op: ReductionOp) -> Self {
        [0, u32::MAX, 0][op_index(op)]
    }
}

fn op_index(op: ReductionOp) -> usize {
    match op {
        ReductionOp::Sum => 0,
        ReductionOp::Min => 1,
        _ => 2,
    }
}

fn combine<T: Value>(op: ReductionOp, a: T, b: T) -> T {
    match op {
        ReductionOp::Sum => a.add(b),
        ReductionOp::Min => {
            if b < a {
                b
            } else {
                a
            }
        }
        _ => {
            if b > a {
                b
            } else {
                a
            }
        }
    }
}

/// The host model of the prelude's fold over one workgroup of `n` invocations (invalid ones hold the identity):
/// invocation k < 32 folds cells k, k + 32, ... in order, then the 32 results fold in order.
fn block_tree<T: Value>(op: ReductionOp, cells: &[Option<T>]) -> T {
    let n = cells.len();
    let c: Vec<T> = cells.iter().map(|v| v.unwrap_or_else(|| T::identity(op))).collect();
    let partial = |k: usize| (k + 32..n).step_by(32).fold(c[k], |acc, i| combine(op, acc, c[i]));
    (1..n.min(32)).fold(partial(0), |acc, k| combine(op, acc, partial(k)))
}

/// The host model of the tree over blocks: node (level, index) is its children combined, or its left child alone.
fn blocks_tree<T: Value>(op: ReductionOp, blocks: &[T]) -> T {
    let count = blocks.len();
    fn node<T: Value>(op: ReductionOp, b: &[T], level: u32, index: usize) -> T {
        if level == 0 {
            return b[index];
        }
        let left = node(op, b, level - 1, 2 * index);
        if ((2 * index + 1) << (level - 1)) < b.len() {
            combine(op, left, node(op, b, level - 1, 2 * index + 1))
        } else {
            left
        }
    }
    node(op, blocks, count.next_power_of_two().trailing_zeros(), 0)
}

const SUM: (&str, ReductionOp) = ("reduce_sum", ReductionOp::Sum);
const MIN: (&str, ReductionOp) = ("reduce_min", ReductionOp::Min);
const MAX: (&str, ReductionOp) = ("reduce_max", ReductionOp::Max);

/// Reduces `values` through kernel `file::entry` for each of `entries`, `runs` times each; checks the runs against
/// each other and the host model.
fn reduce_1d<T: Value>(
    q: &Queue,
    file: &'static celer::kernels::KernelSource,
    values: &[T],
    entries: &[(&'static str, ReductionOp)],
    runs: usize,
) -> Result<String, String> {
    reduce_1d_results(q, file, values, entries, runs).map(|(lines, _)| lines)
}

/// [`reduce_1d`], also returning each entry's result.
fn reduce_1d_results<T: Value>(
    q: &Queue,
    file: &'static celer::kernels::KernelSource,
    values: &[T],
    entries: &[(&'static str, ReductionOp)],
    runs: usize,
) -> Result<(String, Vec<T>), String> {
    let mut results = Vec::new();
    let n = values.len();
    let data = q.buffer_from(values, [n]).named("data");
    let mut lines = String::new();
    for &(entry, op) in entries {
        let kernel = Kernel::wgsl(file, entry).map_err(|e| e.to_string())?;
        let out = q.buffer::<T, 1>([1]).named(entry);
        let mut got = Vec::new();
        for _ in 0..runs {
            q.submit(task::parallel_for(&kernel, [n]).read(&data, access::one_to_one()).reduce(&out, op))
                .map_err(|e| e.to_string())?;
            got.push(q.fence(&out).map_err(|e| e.to_string())?.wait().map_err(|e| e.to_string())?[0]);
        }
        let blocks: Vec<T> = values
            .chunks(256)
            .map(|c| {
                let mut cells: Vec<Option<T>> = c.iter().copied().map(Some).collect();
                cells.resize(256, None);
                block_tree(op, &cells)
            })
            .collect();
        let want = blocks_tree(op, &blocks);
        let name = format!("{}::{entry} over {n}", file.name());
        if got.iter().any(|g| g.bits() != want.bits()) {
            let bits: Vec<String> = got.iter().map(|g| format!("{:#x}", g.bits())).collect();
            return Err(format!("{name}: runs gave bits {bits:?}, the host model of the tree {:#x}", want.bits()));
        }
        lines.push_str(&format!("{name} {:#x}\n", got[0].bits()));
        results.push(got[0]);
    }
    Ok((lines, results))
}

/// Sum, minimum and maximum of `values` through the prelude's f64 block reductions (`kernels/block_f64.wgsl`):
/// besides the runs' bits against the host model of the tree (as [`reduce_1d`]), the sum must lie within rounding
/// of the serial sum, and the minimum and maximum must be the serial ones exactly.
fn reduce_f64(q: &Queue, values: &[f64]) -> Result<String, String> {
    let (lines, got) = reduce_1d_results(q, &BLOCK_F64, values, &[SUM, MIN, MAX], 1)?;
    let serial = values.iter().sum::<f64>();
    let magnitude = values.iter().map(|v| v.abs()).sum::<f64>();
    // Each of the n - 1 additions of either order rounds by at most half an ulp of a partial sum.
    let tolerance = values.len() as f64 * f64::EPSILON * magnitude;
    if (got[0] - serial).abs() > tolerance {
        return Err(format!(
            "block_f64::reduce_sum: {} differs from the serial sum {serial} by more than {tolerance}",
            got[0]
        ));
    }
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if got[1].to_bits() != min.to_bits() || got[2].to_bits() != max.to_bits() {
        return Err(format!("block_f64: minimum {} and maximum {}, serially {min} and {max}", got[1], got[2]));
    }
    Ok(lines)
}

/// The sum of `values` read first by the host tasks of two items (so by ranks 0 and 1 only: the other ranks send
/// their tree nodes there), then by every rank (a fence: they get it from rank 0).
fn read_by_two_ranks_first(q: &Queue, values: &[f32]) -> Result<String, String> {
    let n = values.len();
    let data = q.buffer_from(values, [n]).named("data");
    let out = q.buffer::<f32, 1>([1]).named("sum_on_two_ranks");
    let copies = q.buffer::<f32, 1>([2]).named("copies");
    let kernel = Kernel::wgsl(&BLOCK_F32, "reduce_sum").map_err(|e| e.to_string())?;
    q.submit(task::parallel_for(&kernel, [n]).read(&data, access::one_to_one()).reduce(&out, ReductionOp::Sum))
        .map_err(|e| e.to_string())?;
    q.submit(task::host_for([2]).read(&out, access::all()).discard_write(&copies, access::one_to_one()).run(|ctx| {
        let v = ctx.data::<f32>(0)[0];
        ctx.data_mut::<f32>(1).fill(v);
    }))
    .map_err(|e| e.to_string())?;
    let copies = q.fence(&copies).map_err(|e| e.to_string())?.wait().map_err(|e| e.to_string())?;
    let got = q.fence(&out).map_err(|e| e.to_string())?.wait().map_err(|e| e.to_string())?[0];
    if copies.iter().any(|c| c.to_bits() != got.to_bits()) {
        return Err(format!("read by two ranks first: their copies {copies:?}, then every rank {got}"));
    }
    // Overwritten after the reduction: a fence reads the new value, not the result the host combined.
    q.submit(task::host_once().discard_write(&out, access::all()).run(|ctx| ctx.data_mut::<f32>(0)[0] = 42.0))
        .map_err(|e| e.to_string())?;
    let later = q.fence(&out).map_err(|e| e.to_string())?.wait().map_err(|e| e.to_string())?;
    if later != [42.0] {
        return Err(format!("a reduction result overwritten by a host task: a fence read {later:?}, not [42.0]"));
    }
    Ok(format!("block_f32::reduce_sum over {n} read by two ranks first {:#x}\n", got.to_bits()))
}

fn worker(out_file: Option<&str>) -> Result<(), String> {
    let q = Queue::new().map_err(|e| e.to_string())?;
    let n = 1_000_000;
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    // Values of mixed magnitude, so the order of the sum matters to its bits.
    let floats: Vec<f32> = (0..n)
        .map(|_| (rng.next() >> 40) as f32 / (1u64 << 24) as f32 * 2f32.powi((rng.next() % 20) as i32 - 10) - 0.3)
        .collect();
    // A smaller count for the other cases (lavapipe runs a block reduction of 10^6 items in seconds); not a multiple
    // of the block size either.
    let m = 30_011;
    let ints: Vec<i32> = (0..m).map(|_| rng.next() as i32).collect();
    let uints: Vec<u32> = (0..m).map(|_| rng.next() as u32).collect();
    let mut lines = reduce_1d(&q, &BLOCK_F32, &floats, &[SUM], 1)?;
    lines += &reduce_1d(&q, &BLOCK_F32, &floats[..m], &[SUM], 2)?;
    lines += &reduce_1d(&q, &BLOCK_F32, &floats[..m], &[MIN, MAX], 1)?;
    lines += &read_by_two_ranks_first(&q, &floats[..m])?;
    lines += &reduce_1d(&q, &BLOCK_I32, &ints, &[SUM, MIN, MAX], 1)?;
    lines += &reduce_1d(&q, &BLOCK_U32, &uints, &[SUM, MIN, MAX], 1)?;
    // f64 (lavapipe has shaderFloat64): of mixed magnitude and sign, 53 random bits each.
    let doubles: Vec<f64> = (0..300_007)
        .map(|_| ((rng.next() >> 11) as f64 / (1u64 << 53) as f64 - 0.4) * 2f64.powi((rng.next() % 40) as i32 - 20))
        .collect();
    lines += &reduce_f64(&q, &doubles)?;
    // 2D: blocks of 8 rows × 16 columns, numbered row-major; the last row and column of blocks are cut.
    let (rows, cols) = (150usize, 149usize);
    let field: Vec<f32> = floats[..rows * cols].to_vec();
    let data = q.buffer_from(&field, [rows, cols]).named("field");
    let out = q.buffer::<f32, 1>([1]).named("field_sum");
    let kernel = Kernel::wgsl(&BLOCK_F32_2D, "reduce_sum").map_err(|e| e.to_string())?;
    q.submit(
        task::parallel_for(&kernel, [rows, cols]).read(&data, access::one_to_one()).reduce(&out, ReductionOp::Sum),
    )
    .map_err(|e| e.to_string())?;
    let got = q.fence(&out).map_err(|e| e.to_string())?.wait().map_err(|e| e.to_string())?[0];
    let mut blocks = Vec::new();
    for by in 0..rows.div_ceil(8) {
        for bx in 0..cols.div_ceil(16) {
            let mut cells = vec![None; 128];
            for ly in 0..8 {
                for lx in 0..16 {
                    let (r, c) = (by * 8 + ly, bx * 16 + lx);
                    if r < rows && c < cols {
                        cells[ly * 16 + lx] = Some(field[r * cols + c]);
                    }
                }
            }
            blocks.push(block_tree(ReductionOp::Sum, &cells));
        }
    }
    let want = blocks_tree(ReductionOp::Sum, &blocks);
    if got.to_bits() != want.to_bits() {
        return Err(format!(
            "block_f32_2d::reduce_sum: got {got} ({:#x}), the host model {want} ({:#x})",
            got.to_bits(),
            want.to_bits()
        ));
    }
    lines.push_str(&format!("block_f32_2d::reduce_sum {:#x}\n", got.to_bits()));
    if q.rank() == 0 {
        match out_file {
            Some(path) => std::fs::write(path, &lines).map_err(|e| format!("writing {path}: {e}"))?,
            None => print!("{lines}"),
        }
    }
    Ok(())
}

fn driver(ranks: &[String]) -> Result<String, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("e2e_determinism");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let mut results: Vec<(&str, String)> = Vec::new();
    for r in ranks {
        let (n, devices) = r.split_once('x').unwrap_or((r, "1"));
        let out = dir.join(format!("ranks{r}.txt"));
        let _ = std::fs::remove_file(&out);
        let status = Command::new("mpirun")
            .env("CELER_DEVICES", devices)
            // lavapipe takes seconds of CPU for a block reduction of 10^6 items (every invocation waits at the
            // prelude's barriers); on a loaded machine that can pass the default stall timeout of 30 s.
            .env("CELER_STALL_TIMEOUT", "300")
            .args(["-n", n])
            .arg(&exe)
            .args(["--worker", "--out"])
            .arg(&out)
            .status()
            .map_err(|e| format!("could not start mpirun: {e}"))?;
        if !status.success() {
            return Err(format!("the run on {r} rank(s) failed ({status})"));
        }
        let text = std::fs::read_to_string(&out).map_err(|e| format!("{}: {e}", out.display()))?;
        results.push((r.as_str(), text));
    }
    let (base_ranks, base) = &results[0];
    if base.lines().count() != 15 {
        return Err(format!("{base_ranks} rank(s) reported {} results, expected 15", base.lines().count()));
    }
    for (r, text) in &results[1..] {
        if text != base {
            return Err(format!("results differ between {base_ranks} and {r} rank(s):\n{base}---\n{text}"));
        }
    }
    Ok(format!("15 reductions gave the same bits on {ranks:?} rank(s):\n{base}"))
}

fn main() -> ExitCode {
    celer::logging::init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let value = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned();
    let result = if args.iter().any(|a| a == "--worker") {
        worker(value("--out").as_deref()).map(|()| String::new())
    } else {
        let ranks: Vec<String> =
            value("--ranks").unwrap_or_else(|| "1,2".into()).split(',').map(str::to_string).collect();
        driver(&ranks)
    };
    match result {
        Ok(summary) => {
            if !summary.is_empty() {
                println!("e2e_determinism: {summary}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("e2e_determinism: {e}");
            ExitCode::FAILURE
        }
    }
}
