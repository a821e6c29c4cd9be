//! Two ranks exchange `u64` messages with non-blocking sends and receives, completed by polling
//! `MPI_Test`, and print what they received and the round-trip time.
//!
//! ```text
//! cargo build --release -p celer-exec --example mpi_pingpong
//! mpirun -n 2 target/release/examples/mpi_pingpong [ROUNDS]
//! ```
//!
//! Ranks beyond the first two only take part in start-up and shut-down.

use std::error::Error;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use celer_exec::mpi::{self, Communicator, Rank, Request};

/// Gives up on a message after this long instead of hanging.
const TIME_LIMIT: Duration = Duration::from_secs(20);

/// Polls `request` to completion, or fails after [`TIME_LIMIT`].
fn complete(mut request: Request<'_>, comm: &Communicator) -> Result<(), Box<dyn Error>> {
    let start = Instant::now();
    while !request.test()? {
        if start.elapsed() > TIME_LIMIT {
            eprintln!("mpi_pingpong: rank {}: a message did not complete within {TIME_LIMIT:?}", comm.rank());
            comm.abort(2);
        }
        std::hint::spin_loop();
    }
    Ok(())
}

/// Sends one `u64` to `peer` and polls until it is out.
fn send(comm: &Communicator, peer: Rank, value: u64) -> Result<(), Box<dyn Error>> {
    let bytes = value.to_le_bytes();
    // SAFETY: the request is completed by `complete` (or the job is aborted); never leaked.
    let request = unsafe { comm.isend(&bytes, peer, 0) }?;
    complete(request, comm)
}

/// Receives one `u64` from `peer`, polling until it has arrived.
fn recv(comm: &Communicator, peer: Rank) -> Result<u64, Box<dyn Error>> {
    let mut bytes = [0u8; 8];
    // SAFETY: the request is completed by `complete` (or the job is aborted); never leaked.
    complete(unsafe { comm.irecv(&mut bytes, peer, 0) }?, comm)?;
    Ok(u64::from_le_bytes(bytes))
}

fn run() -> Result<(), Box<dyn Error>> {
    let rounds: u64 = match std::env::args().nth(1) {
        Some(arg) => arg.parse()?,
        None => 10_000,
    };
    let comm = mpi::init()?;
    if comm.size() < 2 {
        println!("mpi_pingpong: only 1 rank; run it as `mpirun -n 2 {}`", std::env::args().next().unwrap_or_default());
        return Ok(());
    }
    let rank = comm.rank();
    if rank > 1 {
        return Ok(());
    }
    // Rank 0 sends n, rank 1 answers n * n; rank 0 checks the answer.
    let mut times = Vec::with_capacity(rounds as usize);
    let mut last = 0;
    for n in 1..=rounds {
        if rank == 0 {
            let start = Instant::now();
            send(&comm, 1, n)?;
            last = recv(&comm, 1)?;
            times.push(start.elapsed());
            if last != n * n {
                eprintln!("mpi_pingpong: rank 0 sent {n} and got {last}, expected {}", n * n);
                comm.abort(1);
            }
        } else {
            let got = recv(&comm, 0)?;
            last = got * got;
            send(&comm, 0, last)?;
        }
    }
    times.sort();
    if rank == 0 {
        let median = times.get(times.len() / 2).copied().unwrap_or_default();
        println!(
            "mpi_pingpong: rank 0 of {}: sent 1..={rounds}, received their squares (last: {last}); \
             median round trip {median:.2?}",
            comm.size()
        );
    } else {
        println!("mpi_pingpong: rank 1: answered {rounds} messages with the square of each (last: {last})");
    }
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mpi_pingpong: error: {e}");
            ExitCode::FAILURE
        }
    }
}
