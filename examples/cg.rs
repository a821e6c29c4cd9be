//! Conjugate gradient for the 2D Poisson equation: -Δu = 1 on an n × n grid with u = 0 outside it (the 5-point
//! Laplacian), the grid split over every rank. The dot products are deterministic reductions (the prelude's
//! `celer_reduce_sum_f32`), so the iterates, the iteration count and the solution have the same bits on any
//! number of ranks and devices. Verified against a serial solver in this file (the same iteration count, the same
//! solution up to rounding), and a digest of the solution's bits is printed; `--compare-ranks 1,2,3,4` runs the
//! program on each rank count and checks that the digests agree.
//!
//! Shows: kernels that write a field and reduce in the same pass (`kernels/cg_apply.wgsl`, `cg_update.wgsl`; `cg_advance.wgsl` updates x and p),
//! scalars computed on the host from fenced reduction results, and a neighbourhood read with zero boundaries.
//!
//! ```text
//! cargo run --release --example cg -- [--size 256] [--tol 1e-4] [--max-iters N]
//! mpirun -n 4 target/release/examples/cg --size 512
//! target/release/examples/cg --compare-ranks 1,2,3,4,1x2  # runs mpirun itself and compares the digests
//! ```

use std::process::Command;
use std::time::Instant;

use celer::{access, task, Kernel, Queue, ReductionOp};

celer::include_kernels!();

/// Side of a block of the kernels' reductions (their 16 × 16 workgroups).
const BLOCK: usize = 16;

/// The prelude's fold of one workgroup (cells in local-index order, invalid ones 0): invocation k < 32 folds cells
/// k, k + 32, ... in order, then the 32 results fold in order.
fn block_sum(cells: &[f32]) -> f32 {
    let partial = |k: usize| (k + 32..cells.len()).step_by(32).fold(cells[k], |acc, i| acc + cells[i]);
    (1..cells.len().min(32)).fold(partial(0), |acc, k| acc + partial(k))
}

/// The combining tree over block results: node (level, index) is its children's sum, or its left child alone.
fn tree_sum(blocks: &[f32]) -> f32 {
    fn node(b: &[f32], level: u32, index: usize) -> f32 {
        if level == 0 {
            return b[index];
        }
        let left = node(b, level - 1, 2 * index);
        if ((2 * index + 1) << (level - 1)) < b.len() {
            left + node(b, level - 1, 2 * index + 1)
        } else {
            left
        }
    }
    node(blocks, blocks.len().next_power_of_two().trailing_zeros(), 0)
}

/// The dot product of two n × n fields as celer's deterministic reduction computes it: 16 × 16 blocks numbered
/// row-major, each folded like the prelude, blocks combined in the fixed tree.
fn dot(a: &[f32], b: &[f32], n: usize) -> f32 {
    let nb = n.div_ceil(BLOCK);
    let mut blocks = Vec::with_capacity(nb * nb);
    for bi in 0..nb {
        for bj in 0..nb {
            let mut cells = [0.0f32; BLOCK * BLOCK];
            for li in 0..BLOCK {
                for lj in 0..BLOCK {
                    let (i, j) = (bi * BLOCK + li, bj * BLOCK + lj);
                    if i < n && j < n {
                        cells[li * BLOCK + lj] = a[i * n + j] * b[i * n + j];
                    }
                }
            }
            blocks.push(block_sum(&cells));
        }
    }
    tree_sum(&blocks)
}

/// The serial solver: the same iteration as the distributed one, on the host. Returns the solution and the
/// iteration count.
fn serial(n: usize, tol: f32, max_iters: usize) -> (Vec<f32>, usize) {
    let b = vec![1.0f32; n * n];
    let (mut x, mut r, mut p, mut q) = (vec![0.0f32; n * n], b.clone(), b, vec![0.0f32; n * n]);
    let mut rs = dot(&r, &r, n);
    let stop = tol * tol * rs;
    let mut iters = 0;
    while iters < max_iters && rs > stop {
        let at = |p: &[f32], i: usize, j: usize, di: isize, dj: isize| {
            let (ii, jj) = (i as isize + di, j as isize + dj);
            if ii < 0 || jj < 0 || ii >= n as isize || jj >= n as isize {
                0.0
            } else {
                p[ii as usize * n + jj as usize]
            }
        };
        for i in 0..n {
            for j in 0..n {
                q[i * n + j] = 4.0 * p[i * n + j]
                    - at(&p, i, j, -1, 0)
                    - at(&p, i, j, 1, 0)
                    - at(&p, i, j, 0, -1)
                    - at(&p, i, j, 0, 1);
            }
        }
        let alpha = rs / dot(&p, &q, n);
        for k in 0..n * n {
            r[k] -= alpha * q[k];
        }
        let rs_new = dot(&r, &r, n);
        let beta = rs_new / rs;
        for k in 0..n * n {
            x[k] += alpha * p[k];
            p[k] = r[k] + beta * p[k];
        }
        rs = rs_new;
        iters += 1;
    }
    (x, iters)
}

/// FNV-1a over the solution's bits.
fn digest(x: &[f32]) -> u64 {
    x.iter()
        .flat_map(|v| v.to_bits().to_le_bytes())
        .fold(0xCBF2_9CE4_8422_2325, |h, b| (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01B3))
}

/// Runs the solver on `ranks` rank counts (each under mpirun) and compares the digests rank 0 prints.
fn compare_ranks(ranks: &str, args: &Args) -> Result<(), Box<dyn std::error::Error>> {
    let exe = std::env::current_exe()?;
    let mut seen: Vec<(String, String)> = Vec::new();
    for r in ranks.split(',') {
        // `RxD`: R ranks driving D devices each (CELER_DEVICES).
        let (n, devices) = r.split_once('x').unwrap_or((r, "1"));
        let mut cmd = Command::new("mpirun");
        cmd.env("CELER_DEVICES", devices).args(["-n", n]).arg(&exe);
        if let Some(s) = &args.size {
            cmd.args(["--size", s]);
        }
        cmd.args(["--tol", &args.tol.to_string()]);
        if let Some(m) = args.max_iters {
            cmd.args(["--max-iters", &m.to_string()]);
        }
        let out = cmd.output()?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        if !out.status.success() {
            eprint!("{text}{}", String::from_utf8_lossy(&out.stderr));
            return Err(format!("cg on {r} rank(s) failed ({})", out.status).into());
        }
        let line = text.lines().find(|l| l.starts_with("cg: solution digest")).ok_or("no digest printed")?;
        println!("cg: {r} rank(s): {}", line.trim_start_matches("cg: "));
        seen.push((r.to_string(), line.to_string()));
    }
    if let Some((r, line)) = seen.iter().find(|(_, l)| *l != seen[0].1) {
        return Err(
            format!("the solution differs: {} rank(s) gave '{}', {r} gave '{line}'", seen[0].0, seen[0].1).into()
        );
    }
    println!("cg: bit-identical solution and iteration count on {ranks} rank(s)");
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // celer's rank-prefixed logger, at the level of CELER_LOG (celer installs none unless asked).
    celer::logging::init();
    let args = <Args as clap::Parser>::parse();
    if let Some(ranks) = &args.compare_ranks {
        return compare_ranks(ranks, &args);
    }
    let n: usize = match &args.size {
        Some(v) => v.parse()?,
        None if cfg!(debug_assertions) => 64,
        None => 256,
    };
    let tol = args.tol;
    let max_iters = args.max_iters.unwrap_or(10 * n);
    let q = Queue::new()?;
    let zeros = vec![0.0f32; n * n];
    let ones = vec![1.0f32; n * n];
    let x = q.buffer_from(&zeros, [n, n]).named("x");
    let r = q.buffer_from(&ones, [n, n]).named("r");
    let p = q.buffer_from(&ones, [n, n]).named("p");
    let ap = q.buffer_from(&zeros, [n, n]).named("Ap");
    let pap = q.buffer::<f32, 1>([1]).named("p.Ap");
    let rr = q.buffer::<f32, 1>([1]).named("r.r");
    let apply = Kernel::wgsl(&CG_APPLY, "main")?;
    let update = Kernel::wgsl(&CG_UPDATE, "main")?;
    let advance = Kernel::wgsl(&CG_ADVANCE, "main")?;
    let update_task = |alpha: f32| {
        task::parallel_for(&update, [n, n])
            .name("update")
            .read_write(&r, access::one_to_one())
            .read(&ap, access::one_to_one())
            .reduce(&rr, ReductionOp::Sum)
            .scalar("alpha", alpha)
    };
    let scalar =
        |b: &celer::Buffer<'_, f32, 1>| -> Result<f32, Box<dyn std::error::Error>> { Ok(q.fence(b)?.wait()?[0]) };
    let start = Instant::now();
    // r.r of the first residual: an update with alpha 0 leaves r as it is (Ap holds zeros).
    q.submit(update_task(0.0))?;
    let mut rs = scalar(&rr)?;
    let stop = tol * tol * rs;
    let mut iters = 0;
    while iters < max_iters && rs > stop {
        q.submit(
            task::parallel_for(&apply, [n, n])
                .name("apply")
                .read(&p, access::neighborhood([1, 1]))
                .discard_write(&ap, access::one_to_one())
                .reduce(&pap, ReductionOp::Sum)
                .scalar("n", n as u32),
        )?;
        let alpha = rs / scalar(&pap)?;
        q.submit(update_task(alpha))?;
        let rs_new = scalar(&rr)?;
        q.submit(
            task::parallel_for(&advance, [n, n])
                .name("advance")
                .read_write(&x, access::one_to_one())
                .read(&r, access::one_to_one())
                .read_write(&p, access::one_to_one())
                .scalar("alpha", alpha)
                .scalar("beta", rs_new / rs),
        )?;
        rs = rs_new;
        iters += 1;
    }
    let solution = q.fence(&x)?.wait()?;
    let elapsed = start.elapsed();
    let rank = q.rank();
    println!(
        "cg: {n} x {n} grid on {} rank(s): {iters} iterations, residual {:.3e} of the first, {:.2} ms per iteration",
        q.ranks(),
        (rs / (stop / (tol * tol))).sqrt(),
        elapsed.as_secs_f64() * 1e3 / iters.max(1) as f64
    );
    if rank == 0 {
        println!("cg: solution digest {:#018x} after {iters} iterations", digest(&solution));
    }
    if !args.no_verify && rank == 0 {
        let (want, want_iters) = serial(n, tol, max_iters);
        let scale = want.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        let worst = solution.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
        let identical = solution.iter().zip(&want).all(|(a, b)| a.to_bits() == b.to_bits());
        if want_iters != iters || worst > 1e-3 * scale {
            eprintln!(
                "cg: MISMATCH with the serial solver: {iters} iterations against {want_iters}, largest difference \
                 {worst:.3e} (solution up to {scale:.3e})"
            );
            std::process::exit(1);
        }
        println!(
            "cg: verified against the serial solver: {want_iters} iterations too, largest difference {worst:.1e} \
             ({})",
            if identical { "bit-identical" } else { "rounding only: the GPU may fuse multiply-adds" }
        );
    }
    Ok(())
}

/// Conjugate gradient for the 2D Poisson equation with deterministic dot products.
#[derive(clap::Parser)]
struct Args {
    /// Grid size: N x N unknowns (default 64 in debug builds, 256 in release).
    #[arg(long, value_name = "N")]
    size: Option<String>,
    /// Stop once the residual's norm is below TOL times the first one's.
    #[arg(long, value_name = "TOL", default_value_t = 1e-4)]
    tol: f32,
    /// Stop after at most this many iterations (default 10 N).
    #[arg(long, value_name = "N")]
    max_iters: Option<usize>,
    /// Skip the serial solver.
    #[arg(long)]
    no_verify: bool,
    /// Run on each of these rank counts under mpirun and compare the digests (comma-separated, e.g. 1,2,3,4,1x2;
    /// RxD: R ranks driving D devices each).
    #[arg(long, value_name = "LIST")]
    compare_ranks: Option<String>,
}
