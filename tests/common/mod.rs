//! What the end-to-end test programs share: a watchdog, starting the queue, and reporting per rank.

use std::process::ExitCode;

use celer::Queue;

/// Runs `body` on this rank and reports `name: rank r of n: <what>` or the error; fails the process on error.
/// A watchdog ends the process after two minutes, so a hung run fails instead of blocking CI.
pub fn run_on_every_rank(name: &'static str, what: &str, body: fn(&Queue) -> Result<(), String>) -> ExitCode {
    std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_secs(120));
        eprintln!("{name}: no result after 120 s, giving up");
        std::process::exit(2);
    });
    let q = match Queue::new() {
        Ok(q) => q,
        Err(e) => {
            eprintln!("{name}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let (rank, ranks) = (q.rank(), q.ranks());
    match body(&q) {
        Ok(()) => {
            println!("{name}: rank {rank} of {ranks}: {what}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{name}: rank {rank} of {ranks}: {e}");
            ExitCode::FAILURE
        }
    }
}
