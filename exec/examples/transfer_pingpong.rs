//! Two ranks bounce a halo back and forth through the transfer engine the way the runtime moves halos: the
//! sender lends packed memory (`send_lent`), the receiver lends the memory it receives into (`expect_into`,
//! registered before the data comes). Prints the round-trip time per payload size and checks every byte.
//!
//! ```text
//! cargo build --release -p celer-exec --example transfer_pingpong
//! mpirun -n 2 target/release/examples/transfer_pingpong [--bytes 8,1024,3072,4096] [--rounds 2000] [--reps 5]
//! ```
//!
//! For each size, `--reps` repetitions of `--rounds` round trips, after one untimed repetition (warm-up); prints
//! the minimum and median µs per round trip and every repetition's figure, and `TransferEngine::poll` calls per
//! round trip on rank 0. Payloads of up to `INLINE_PAYLOAD_BYTES` travel inside their header message; larger ones
//! take a header and a payload message. Ranks beyond the first two only take part in start-up and shut-down.

use std::error::Error;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use celer_exec::mpi::{self, Rank};
use celer_exec::transfer::{CellBox, Completion, Token, TransferEngine, TransferKey};

/// Gives up instead of hanging when a round trip takes longer than this.
const TIME_LIMIT: Duration = Duration::from_secs(20);

/// Command-line settings.
struct Settings {
    bytes: Vec<usize>,
    rounds: u64,
    reps: usize,
}

fn settings() -> Result<Settings, Box<dyn Error>> {
    let mut s = Settings { bytes: vec![8, 1024, 3072, 4096], rounds: 2000, reps: 5 };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args.next().ok_or_else(|| format!("{arg} needs a value"))?;
        match arg.as_str() {
            "--bytes" => s.bytes = value.split(',').map(str::parse).collect::<Result<_, _>>()?,
            "--rounds" => s.rounds = value.parse()?,
            "--reps" => s.reps = value.parse()?,
            _ => return Err(format!("unknown argument {arg} (expected --bytes, --rounds or --reps)").into()),
        }
    }
    if s.bytes.contains(&0) || s.rounds == 0 || s.reps == 0 {
        return Err("--bytes, --rounds and --reps must be positive".into());
    }
    Ok(s)
}

/// The byte at `i` of the payload of round `round` sent by `rank`: what the receiver checks.
fn byte(round: u64, rank: Rank, i: usize) -> u8 {
    (round as usize * 7 + rank as usize * 131 + i * 13) as u8
}

/// Polls until the completions hold `tokens`; returns the number of `poll` calls.
fn wait(engine: &mut TransferEngine<'_>, buf: &mut Vec<Completion>, tokens: &[Token]) -> Result<u64, Box<dyn Error>> {
    let start = Instant::now();
    let mut missing = tokens.len();
    let mut polls = 0;
    while missing > 0 {
        engine.poll(buf)?;
        polls += 1;
        missing -= buf.drain(..).filter(|c| tokens.contains(&c.token)).count();
        if start.elapsed() > TIME_LIMIT {
            return Err(format!("a round trip did not complete within {TIME_LIMIT:?}").into());
        }
    }
    Ok(polls)
}

/// `rounds` round trips of `bytes`-byte payloads, numbered from `first`. Returns the seconds rank 0 took and its
/// `poll` calls.
fn bounce(
    engine: &mut TransferEngine<'_>,
    rank: Rank,
    bytes: usize,
    first: u64,
    rounds: u64,
) -> Result<(f64, u64), Box<dyn Error>> {
    let peer = 1 - rank;
    let cells = CellBox::d1(0, bytes);
    let mut out = vec![0u8; bytes];
    let mut inbox = vec![0u8; bytes];
    let mut buf = Vec::new();
    let mut polls = 0;
    let start = Instant::now();
    for round in first..first + rounds {
        // Each direction of each round has its own key; the receiver registers its expect before the data comes
        // (rank 0 before it sends, rank 1 before it waits).
        let (to_peer, to_me) =
            (TransferKey(round, peer as u64, bytes as u64), TransferKey(round, rank as u64, bytes as u64));
        let (sent, received) = (Token(round << 1), Token(round << 1 | 1));
        // SAFETY: `inbox` is neither read nor written until `wait` has returned the completion for `received`, and
        // outlives the engine's use of it (the engine completes or cancels everything before `bounce` returns).
        unsafe { engine.expect_into(to_me, &[(cells, inbox.as_mut_ptr())], 1, received)? };
        if rank == 1 {
            polls += wait(engine, &mut buf, &[received])?;
        }
        for (i, b) in out.iter_mut().enumerate() {
            *b = byte(round, rank, i);
        }
        // SAFETY: `out` is neither written nor freed until `wait` has returned the completion for `sent`.
        unsafe { engine.send_lent(to_peer, peer, cells, 1, out.as_ptr(), sent)? };
        // Rank 1 already has its payload.
        let both = [sent, received];
        polls += wait(engine, &mut buf, if rank == 0 { &both } else { &both[..1] })?;
        if let Some(i) = (0..bytes).find(|&i| inbox[i] != byte(round, peer, i)) {
            return Err(format!(
                "rank {rank}, round {round}: byte {i} of {bytes} is {:#04x}, expected {:#04x}",
                inbox[i],
                byte(round, peer, i)
            )
            .into());
        }
    }
    Ok((start.elapsed().as_secs_f64(), polls))
}

fn run() -> Result<(), Box<dyn Error>> {
    let s = settings()?;
    let comm = mpi::init()?;
    if comm.size() < 2 {
        println!(
            "transfer_pingpong: only 1 rank; run it as `mpirun -n 2 {}`",
            std::env::args().next().unwrap_or_default()
        );
        return Ok(());
    }
    let rank = comm.rank();
    if rank > 1 {
        return Ok(());
    }
    let mut engine = TransferEngine::new(&comm)?;
    let mut next = 0;
    if rank == 0 {
        println!(
            "transfer_pingpong: {} round trips per repetition, {} repetition(s) after one untimed; µs per round trip",
            s.rounds, s.reps
        );
    }
    for &bytes in &s.bytes {
        let mut times = Vec::new();
        let mut polls = 0;
        for rep in 0..=s.reps {
            let (secs, p) = bounce(&mut engine, rank, bytes, next, s.rounds)?;
            next += s.rounds;
            if rep > 0 {
                times.push(secs * 1e6 / s.rounds as f64);
                polls += p;
            }
        }
        if rank == 0 {
            let each: Vec<String> = times.iter().map(|t| format!("{t:.2}")).collect();
            let mut sorted = times.clone();
            sorted.sort_by(f64::total_cmp);
            println!(
                "  {bytes:>6} B: min {:7.2}, median {:7.2} µs per round trip (each: {}); {:.1} polls per round trip on rank 0",
                sorted[0],
                sorted[sorted.len() / 2],
                each.join(" "),
                polls as f64 / (s.rounds * s.reps as u64) as f64
            );
        }
    }
    if rank == 0 {
        println!("transfer_pingpong: every byte of every round checked on both ranks");
    }
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("transfer_pingpong: error: {e}");
            ExitCode::FAILURE
        }
    }
}
