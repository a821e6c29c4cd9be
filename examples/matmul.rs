//! Matrix multiplication, twice: C = A·B, then D = C·B, which reads the first product where it was computed (every
//! rank needs all of B and its own rows of the left factor). Each rank computes a block of rows on its GPU; the
//! result comes back to every rank through a fence and is checked against a serial product.
//!
//! ```text
//! cargo run --release --example matmul -- [--size 512] [--no-verify]
//! mpirun -n 2 target/release/examples/matmul
//! ```

use std::time::Instant;

use celer::{access, kernels, task, Kernel, Queue};

fn serial(a: &[f32], b: &[f32], n: usize) -> Vec<f32> {
    let mut c = vec![0.0f32; n * n];
    for i in 0..n {
        for k in 0..n {
            let aik = a[i * n + k];
            for j in 0..n {
                c[i * n + j] += aik * b[k * n + j];
            }
        }
    }
    c
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // celer's rank-prefixed logger, at the level of CELER_LOG (celer installs none unless asked).
    celer::logging::init();
    let mut n = if cfg!(debug_assertions) { 64 } else { 512 };
    let mut verify = true;
    let args = <Args as clap::Parser>::parse();
    if let Some(v) = args.size {
        n = v.parse()?;
    }
    if args.no_verify {
        verify = false;
    }
    let q = Queue::new()?;
    let a: Vec<f32> = (0..n * n).map(|k| ((k * 7) % 13) as f32 * 0.25 - 1.0).collect();
    let b: Vec<f32> = (0..n * n).map(|k| ((k * 5) % 11) as f32 / n as f32).collect();
    let (ab, bb) = (q.buffer_from(&a, [n, n]).named("A"), q.buffer_from(&b, [n, n]).named("B"));
    let (cb, db) = (q.buffer::<f32, 2>([n, n]).named("C"), q.buffer::<f32, 2>([n, n]).named("D"));
    let mm = Kernel::wgsl(&kernels::MATMUL, "main")?;
    // Every rank starts the clock together (a barrier), so one rank's late start-up is not counted.
    q.barrier();
    let start = Instant::now();
    for (lhs, out) in [(&ab, &cb), (&cb, &db)] {
        q.submit(
            task::parallel_for(&mm, [n, n])
                .read(lhs, access::slice(1))
                .read(&bb, access::all())
                .discard_write(out, access::one_to_one())
                .scalars(&[n as u32])
                .name("matmul"),
        )?;
    }
    q.barrier();
    let elapsed = start.elapsed();
    let d = q.fence(&db)?.wait()?;
    let (rank, ranks) = (q.rank(), q.ranks());
    if rank == 0 {
        let flops = 2.0 * 2.0 * (n as f64).powi(3);
        println!(
            "matmul: two {n}x{n} products on {ranks} rank(s) in {:.3} s ({:.1} GFLOP/s, including the first \
             kernel's compilation)",
            elapsed.as_secs_f64(),
            flops / elapsed.as_secs_f64() / 1e9
        );
    }
    if let Some(stats) = q.stats() {
        println!("matmul: {stats}");
    }
    if verify {
        let want = serial(&serial(&a, &b, n), &b, n);
        let worst = d.iter().zip(&want).map(|(x, y)| (x - y).abs() / y.abs().max(1.0)).fold(0.0f32, f32::max);
        if worst > 1e-3 {
            eprintln!("matmul: rank {rank}: MISMATCH: largest relative difference {worst:e}");
            std::process::exit(1);
        }
        println!("matmul: rank {rank}: verified against the serial product (largest relative difference {worst:.1e})");
    }
    Ok(())
}

/// Matrix multiplication, twice: C = A·B, then D = C·B.
#[derive(clap::Parser)]
struct Args {
    /// Matrix size: N x N (default 64 in debug builds, 512 in release).
    #[arg(long, value_name = "N")]
    size: Option<String>,
    /// Skip the check against the serial reference.
    #[arg(long)]
    no_verify: bool,
}
