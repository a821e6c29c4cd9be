//! Laplace's equation on an n x n grid by Jacobi sweeps until it converges: every `CHECK` sweeps a deterministic
//! block reduction sums the squared change of the last sweep into a zero-dimensional buffer, and the loop stops
//! once its fenced value is below the tolerance. Checks the sweep count, every residual and the final field against
//! the same sweeps run serially, on any number of ranks and devices.
//!
//! Shows: a convergence loop driven by fences, a neighbourhood read with fixed boundary cells, a 2D block
//! reduction (`kernels/sq_diff.wgsl`) into a `Buffer<f32, 0>` read with `fence(..)?.value()`.
//!
//! ```text
//! cargo run --example jacobi -- [N]          # N x N grid, 32 by default
//! mpirun -n 2 target/debug/examples/jacobi
//! ```
use celer::{access, task, Kernel, Queue, ReductionOp};

mod kernels {
    #![allow(dead_code)]
    celer::include_kernels!();
}

const CHECK: usize = 10;
const TOL: f32 = 3e-4;
const MAX_SWEEPS: usize = 2000;

fn serial_sweep(n: usize, src: &[f32], dst: &mut [f32]) {
    for i in 0..n {
        for j in 0..n {
            dst[i * n + j] = if i == 0 || j == 0 || i == n - 1 || j == n - 1 {
                src[i * n + j]
            } else {
                0.25 * (src[(i - 1) * n + j] + src[(i + 1) * n + j] + src[i * n + j - 1] + src[i * n + j + 1])
            };
        }
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    celer::logging::init();
    let n: usize = std::env::args().nth(1).map(|s| s.parse().unwrap()).unwrap_or(32);
    let q = Queue::new()?;
    let mut init = vec![0.0f32; n * n];
    init[..n].fill(1.0); // hot top row
    let mut u = q.buffer_from(&init, [n, n]).named("u");
    let mut v = q.buffer::<f32, 2>([n, n]).named("v");
    let sweep = Kernel::wgsl(&kernels::JACOBI, "main")?;
    let resid = Kernel::wgsl(&kernels::SQ_DIFF, "main")?;
    let res = q.buffer::<f32, 0>([]).named("residual");
    let mut sweeps = 0;
    let mut history = Vec::new();
    while sweeps < MAX_SWEEPS {
        for _ in 0..CHECK {
            q.submit(
                task::parallel_for(&sweep, [n, n])
                    .name("sweep")
                    // The residual's block reduction splits at whole 16 x 16 workgroups; splitting the sweeps the
                    // same way keeps the cells it reads on the rank that wrote them (2.3x fewer bytes sent on 2 ranks).
                    .granularity([16, 16])
                    .read(&u, access::neighborhood_along_axes([1, 1]))
                    .discard_write(&v, access::one_to_one())
                    .scalars(&[n as u32]),
            )?;
            std::mem::swap(&mut u, &mut v);
            sweeps += 1;
        }
        // u holds the newest sweep, v the one before.
        q.submit(
            task::parallel_for(&resid, [n, n])
                .name("residual")
                .read(&u, access::one_to_one())
                .read(&v, access::one_to_one())
                .reduce(&res, ReductionOp::Sum),
        )?;
        let r = q.fence(&res)?.value()?;
        history.push(r);
        if r < TOL * TOL {
            break;
        }
    }
    let field = q.fence(&u)?.wait()?;

    // Serial reference: the same sweeps, the same stopping rule.
    let (mut a, mut b) = (init.clone(), vec![0.0f32; n * n]);
    let mut s_sweeps = 0;
    let mut s_history = Vec::new();
    while s_sweeps < MAX_SWEEPS {
        for _ in 0..CHECK {
            serial_sweep(n, &a, &mut b);
            std::mem::swap(&mut a, &mut b);
            s_sweeps += 1;
        }
        let r: f64 = a.iter().zip(&b).map(|(x, y)| ((x - y) as f64).powi(2)).sum();
        s_history.push(r as f32);
        if (r as f32) < TOL * TOL {
            break;
        }
    }
    let max_err = field.iter().zip(&a).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max);
    let max_rel = history.iter().zip(&s_history).map(|(x, y)| ((x - y) / y.max(1e-30)).abs()).fold(0.0f32, f32::max);
    println!(
        "rank {:?}: n {n}, {sweeps} sweeps (serial {s_sweeps}), residual {:.3e} (serial {:.3e}), max field error {max_err:.2e}, max residual rel. error {max_rel:.2e}",
        q.rank(),
        history.last().unwrap(),
        s_history.last().unwrap()
    );
    assert_eq!(sweeps, s_sweeps, "sweep counts differ");
    assert!(max_err < 1e-5, "field differs from the serial sweeps by {max_err}");
    assert!(max_rel < 1e-3, "residuals differ from the serial ones by {max_rel} (relative)");
    if let Some(s) = q.stats() {
        println!("{s}");
    }
    Ok(())
}
