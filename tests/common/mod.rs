//! What the end-to-end test programs share: a watchdog, starting the queue, reporting per rank, and options that
//! set a `CELER_*` variable.

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

/// Where `args` hold `flag VALUE` (`--devices 2`), sets the environment variable `var` (`CELER_DEVICES`) to VALUE
/// before the queue starts, so a case runs under another setting from the command line as from the environment.
#[allow(dead_code)] // some programs take no such option
pub fn env_from_arg(args: &[String], flag: &str, var: &str) {
    if let Some(v) = args.iter().position(|a| a == flag).and_then(|i| args.get(i + 1)) {
        std::env::set_var(var, v);
    }
}
