//! End to end, on real ranks and a real Vulkan device: a transpose through the `transposed` range mapper (every rank
//! exchanges data with every other under a 2D split) and two matrix products, C = A·B then D = C·B reusing the first
//! result, compared with serial references. Run alone (one rank) or under `mpirun -n N`; `./x test` does both.

use std::process::ExitCode;

mod common;

use celer::{access, kernels, task, Kernel, Queue};

fn matmul(a: &[f32], b: &[f32], n: usize) -> Vec<f32> {
    let mut c = vec![0.0f32; n * n];
    for i in 0..n {
        for j in 0..n {
            let mut acc = 0.0f32;
            for k in 0..n {
                acc += a[i * n + k] * b[k * n + j];
            }
            c[i * n + j] = acc;
        }
    }
    c
}

fn close(what: &str, got: &[f32], want: &[f32]) -> Result<(), String> {
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        if (g - w).abs() > 1e-3 * w.abs().max(1.0) {
            return Err(format!("{what}: cell {i} is {g}, the serial reference says {w}"));
        }
    }
    if got.len() != want.len() {
        return Err(format!("{what}: {} values, {} expected", got.len(), want.len()));
    }
    Ok(())
}

fn run(q: &Queue) -> Result<(), String> {
    let err = |e: &dyn std::fmt::Display| e.to_string();
    // Transpose of a 40 × 40 matrix, split 2D.
    let n = 40;
    let m: Vec<f32> = (0..n * n).map(|k| k as f32).collect();
    let src = q.buffer_from(&m, [n, n]).named("m");
    let dst = q.buffer::<f32, 2>([n, n]).named("m_t");
    let transpose = Kernel::wgsl(&kernels::TRANSPOSE, "main").map_err(|e| err(&e))?;
    q.submit(
        task::parallel_for(&transpose, [n, n])
            .read(&src, access::transposed())
            .discard_write(&dst, access::one_to_one())
            .split_2d(),
    )
    .map_err(|e| err(&e))?;
    let got = q.fence(&dst).map_err(|e| err(&e))?.wait().map_err(|e| err(&e))?;
    let want: Vec<f32> = (0..n * n).map(|k| m[(k % n) * n + k / n]).collect();
    close("transpose", &got, &want)?;

    // C = A·B, then D = C·B (the second product reads the first's distributed result).
    let n = 48;
    let a: Vec<f32> = (0..n * n).map(|k| ((k * 7) % 13) as f32 * 0.25 - 1.0).collect();
    let b: Vec<f32> = (0..n * n).map(|k| ((k * 5) % 11) as f32 * 0.125).collect();
    let (ab, bb) = (q.buffer_from(&a, [n, n]).named("A"), q.buffer_from(&b, [n, n]).named("B"));
    let (cb, db) = (q.buffer::<f32, 2>([n, n]).named("C"), q.buffer::<f32, 2>([n, n]).named("D"));
    let mm = Kernel::wgsl(&kernels::MATMUL, "main").map_err(|e| err(&e))?;
    for (lhs, out) in [(&ab, &cb), (&cb, &db)] {
        q.submit(
            task::parallel_for(&mm, [n, n])
                .read(lhs, access::slice(1))
                .read(&bb, access::all())
                .discard_write(out, access::one_to_one())
                .scalars(&[n as u32]),
        )
        .map_err(|e| err(&e))?;
    }
    let c = matmul(&a, &b, n);
    let d = matmul(&c, &b, n);
    close("C = A·B", &q.fence(&cb).map_err(|e| err(&e))?.wait().map_err(|e| err(&e))?, &c)?;
    close("D = C·B", &q.fence(&db).map_err(|e| err(&e))?.wait().map_err(|e| err(&e))?, &d)?;
    Ok(())
}

fn main() -> ExitCode {
    // celer's rank-prefixed logger, at the level of CELER_LOG (celer installs none unless asked).
    celer::logging::init();
    common::run_on_every_rank("e2e_linalg", "transpose and two matrix products verified", run)
}
