//! Distributed I/O: every rank writes its rows of a matrix into one shared file at their byte offsets (a collective
//! host task, one chunk per rank), then every rank reads its rows of the *transpose* back from that file, and the
//! result is compared with the transpose computed here.
//!
//! Shows: collective host tasks, `access::even_split` giving each rank a contiguous block of rows (Celerity's
//! `experimental::access::even_split`), barriers, and host tasks that write buffers.
//!
//! ```text
//! cargo run --release --example distr_io -- [--size 512] [--file out/distr_io.bin]
//! mpirun -n 2 target/release/examples/distr_io
//! ```

use std::os::unix::fs::FileExt;
use std::sync::Arc;

use celer::{access, task, Queue};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // celer's rank-prefixed logger, at the level of CELER_LOG (celer installs none unless asked).
    celer::logging::init();
    let mut n = if cfg!(debug_assertions) { 64 } else { 512 };
    let mut path = String::from("out/distr_io.bin");
    let args = <Args as clap::Parser>::parse();
    if let Some(v) = args.size {
        n = v.parse()?;
    }
    if let Some(v) = args.file {
        path = v;
    }
    let q = Queue::new()?;
    let ranks = q.ranks();
    if q.rank() == 0 {
        if let Some(dir) = std::path::Path::new(&path).parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::File::create(&path)?.set_len((n * n * 4) as u64)?;
    }
    q.barrier();
    // Item r of a collective task is rank r: even_split hands it a contiguous block of about n / R rows (the first
    // n mod R ranks one more), every column. Each rank learns its rows from `ctx.bounds`.
    let rows = access::even_split;
    let matrix: Vec<f32> = (0..n * n).map(|k| k as f32 * 0.5).collect();
    let a = q.buffer_from(&matrix, [n, n]).named("matrix");
    let t = q.buffer::<f32, 2>([n, n]).named("transpose");
    let file = Arc::new(path.clone());
    let f = Arc::clone(&file);
    q.submit(task::host_collective().read(&a, rows()).run(move |ctx| {
        let bounds = ctx.bounds::<2>(0);
        let bytes: Vec<u8> = ctx.data::<f32>(0).iter().flat_map(|v| v.to_le_bytes()).collect();
        let out = std::fs::OpenOptions::new().write(true).open(f.as_str()).expect("opening the shared file");
        out.write_all_at(&bytes, (bounds.min()[0] * n * 4) as u64).expect("writing this rank's rows");
    }))?;
    q.barrier();
    let f = Arc::clone(&file);
    q.submit(task::host_collective().discard_write(&t, rows()).run(move |ctx| {
        let bounds = ctx.bounds::<2>(0);
        let input = std::fs::File::open(f.as_str()).expect("opening the shared file");
        let mut column = vec![0u8; 4];
        let first = bounds.min()[0];
        for (k, cell) in ctx.data_mut::<f32>(0).iter_mut().enumerate() {
            // Row i of the transpose is column i of the matrix in the file.
            let (i, j) = (first + k / n, k % n);
            input.read_exact_at(&mut column, ((j * n + i) * 4) as u64).expect("reading the shared file");
            *cell = f32::from_le_bytes(column[..4].try_into().expect("4 bytes"));
        }
    }))?;
    let got = q.fence(&t)?.wait()?;
    let want: Vec<f32> = (0..n * n).map(|k| matrix[(k % n) * n + k / n]).collect();
    let rank = q.rank();
    if got != want {
        let i = got.iter().zip(&want).position(|(a, b)| a != b).unwrap_or(0);
        eprintln!("distr_io: rank {rank}: MISMATCH at cell {i}: {} instead of {}", got[i], want[i]);
        std::process::exit(1);
    }
    if let Some(stats) = q.stats() {
        println!("distr_io: {stats}");
    }
    println!("distr_io: rank {rank} of {ranks}: wrote its rows of a {n}x{n} matrix to {path} and read the transpose back: verified");
    Ok(())
}

/// Distributed I/O: every rank writes its rows of a matrix into one shared file, then reads them back.
#[derive(clap::Parser)]
struct Args {
    /// Matrix size: N x N (default 64 in debug builds, 512 in release).
    #[arg(long, value_name = "N")]
    size: Option<String>,
    /// The shared file (default out/distr_io.bin).
    #[arg(long, value_name = "PATH")]
    file: Option<String>,
}
