//! MPI smoke test: non-blocking sends and receives, completed by polling `MPI_Test` only.
//!
//! A `harness = false` binary, because MPI can be initialised only once per process:
//! - run alone (as `cargo test` does), it is one rank and sends messages to itself;
//! - under `mpirun -n 2` (as `./x test` does), ranks 0 and 1 play ping-pong with `u64` payloads
//!   and each checks every value it receives; further ranks only initialise and finalise.
//!
//! Exits non-zero with a message on a wrong value, an MPI error, or after [`TIME_LIMIT`] if the
//! exchange (or MPI start-up) is stuck, so CI never hangs on it. To see those failures, set
//! `MPI_SMOKE_FAULT=mismatch` (rank 1 answers a wrong value) or `MPI_SMOKE_FAULT=hang` (rank 1
//! never answers) and run it under `mpirun -n 2`.

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use celer_exec::mpi::{self, Communicator, Rank, Request};

/// How long the whole test may take before the watchdog ends the process.
const TIME_LIMIT: Duration = Duration::from_secs(20);
/// Round trips between ranks 0 and 1.
const ROUNDS: u64 = 16;
/// Tag of messages from rank 0 to rank 1 (and of self-messages).
const PING: i32 = 1;
/// Tag of messages from rank 1 back to rank 0.
const PONG: i32 = 2;

/// The payload rank 0 sends in round `round`: distinct, with high and low bits set.
fn ping_value(round: u64) -> u64 {
    (round + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// What rank 1 answers to `ping`; rank 0 checks it.
fn pong_value(ping: u64) -> u64 {
    !ping.rotate_left(17)
}

/// Polls `request` until it completes; errors (naming `what`) after the time limit.
fn complete(mut request: Request<'_>, what: &str, deadline: Instant) -> Result<(), String> {
    loop {
        match request.test() {
            Ok(true) => return Ok(()),
            Ok(false) if Instant::now() > deadline => {
                // Exit without dropping: the request's Drop would spin until MPI lets go.
                eprintln!("mpi_smoke: FAILED: {what} did not complete within {TIME_LIMIT:?}");
                std::process::exit(2);
            }
            Ok(false) => std::hint::spin_loop(),
            Err(e) => return Err(format!("{what}: {e}")),
        }
    }
}

/// Sends `value` to `dest` and polls until the send buffer is free again.
fn send(comm: &Communicator, value: u64, dest: Rank, tag: i32, deadline: Instant) -> Result<(), String> {
    let bytes = value.to_le_bytes();
    // SAFETY: the request is handed to `complete`, which polls it to completion or ends the
    // process; it is never leaked.
    let request = unsafe { comm.isend(&bytes, dest, tag) }.map_err(|e| e.to_string())?;
    complete(request, &format!("send of {value:#x} to rank {dest}"), deadline)
}

/// Receives one `u64` from `src`, polling until it has arrived.
fn recv(comm: &Communicator, src: Rank, tag: i32, deadline: Instant) -> Result<u64, String> {
    let mut buf = [0u8; 8];
    // SAFETY: as in `send`: the request is completed by `complete`, never leaked.
    let request = unsafe { comm.irecv(&mut buf, src, tag) }.map_err(|e| e.to_string())?;
    complete(request, &format!("receive from rank {src}"), deadline)?;
    Ok(u64::from_le_bytes(buf))
}

/// Checks a received value against the expected one.
fn expect(what: &str, got: u64, want: u64) -> Result<(), String> {
    if got == want {
        Ok(())
    } else {
        Err(format!("{what}: received {got:#018x}, expected {want:#018x}"))
    }
}

/// One rank alone: post the receive first, then send to ourselves, then poll both.
fn self_exchange(comm: &Communicator, deadline: Instant) -> Result<String, String> {
    for round in 0..ROUNDS {
        let value = ping_value(round);
        let mut buf = [0u8; 8];
        let out = value.to_le_bytes();
        // SAFETY: both requests are completed by `complete` below (or the process ends); never leaked.
        let recv = unsafe { comm.irecv(&mut buf, 0, PING) }.map_err(|e| e.to_string())?;
        // SAFETY: as above.
        let send = unsafe { comm.isend(&out, 0, PING) }.map_err(|e| e.to_string())?;
        complete(send, "self-send", deadline)?;
        complete(recv, "self-receive", deadline)?;
        expect(&format!("round {round}"), u64::from_le_bytes(buf), value)?;
    }
    Ok(format!("1 rank: {ROUNDS} u64 messages to itself verified"))
}

/// Ranks 0 and 1 play ping-pong; rank 0 reports the median round trip (informational only).
fn ping_pong(comm: &Communicator, deadline: Instant) -> Result<String, String> {
    let mut round_trips = Vec::with_capacity(ROUNDS as usize);
    for round in 0..ROUNDS {
        let ping = ping_value(round);
        match comm.rank() {
            0 => {
                let start = Instant::now();
                send(comm, ping, 1, PING, deadline)?;
                let pong = recv(comm, 1, PONG, deadline)?;
                round_trips.push(start.elapsed());
                expect(&format!("rank 0, round {round}"), pong, pong_value(ping))?;
            }
            1 => {
                let got = recv(comm, 0, PING, deadline)?;
                expect(&format!("rank 1, round {round}"), got, ping)?;
                match std::env::var("MPI_SMOKE_FAULT").as_deref() {
                    Ok("hang") => loop {
                        std::thread::sleep(Duration::from_secs(1));
                    },
                    Ok("mismatch") => send(comm, pong_value(got) ^ 1, 0, PONG, deadline)?,
                    _ => send(comm, pong_value(got), 0, PONG, deadline)?,
                }
            }
            _ => break,
        }
    }
    round_trips.sort();
    let median = round_trips.get(round_trips.len() / 2).copied().unwrap_or_default();
    Ok(format!(
        "{} ranks: {ROUNDS} ping-pong round trips of u64 payloads verified (median round trip {median:?})",
        comm.size()
    ))
}

fn main() -> ExitCode {
    let finished = &*Box::leak(Box::new(AtomicBool::new(false)));
    // The watchdog covers what the deadline below cannot: MPI start-up and shut-down.
    std::thread::spawn(move || {
        std::thread::sleep(TIME_LIMIT + Duration::from_secs(5));
        if !finished.load(Ordering::SeqCst) {
            eprintln!("mpi_smoke: FAILED: still running after {TIME_LIMIT:?} (stuck in MPI?)");
            std::process::exit(3);
        }
    });

    let deadline = Instant::now() + TIME_LIMIT;
    let comm = match mpi::init() {
        Ok(comm) => comm,
        Err(e) => {
            eprintln!("mpi_smoke: FAILED: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = if comm.size() == 1 { self_exchange(&comm, deadline) } else { ping_pong(&comm, deadline) };
    match result {
        Ok(summary) => {
            // MPI_Finalize (in drop) waits for the other ranks, so it is covered by the watchdog.
            let rank = comm.rank();
            drop(comm);
            finished.store(true, Ordering::SeqCst);
            if rank == 0 {
                println!("mpi_smoke: ok: {summary}");
            }
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("mpi_smoke: FAILED on rank {}: {message}", comm.rank());
            // Not MPI_Finalize: it would wait for ranks that may wait for us.
            comm.abort(1)
        }
    }
}
