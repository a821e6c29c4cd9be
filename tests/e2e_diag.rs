//! Diagnostics stay silent on a correct program: a run with many horizons, where rank 0's application thread
//! dawdles for twice the stall timeout before shutting down while the other ranks wait for it at shutdown, must
//! finish without a stall or divergence report. Run alone by `cargo test`, under `mpirun -n 2` by `./x test`.

mod common;

use std::process::ExitCode;
use std::time::Duration;

use celer::{access, task, Queue};

fn body(q: &Queue) -> Result<(), String> {
    let counter = q.buffer_from(&[0u32; 64], [64]).named("counter");
    for _ in 0..40 {
        q.submit(task::host_for([64]).read_write(&counter, access::one_to_one()).name("increment").run(|ctx| {
            for v in ctx.data_mut::<u32>(0) {
                *v += 1;
            }
        }))
        .map_err(|e| e.to_string())?;
    }
    let values = q.fence(&counter).map_err(|e| e.to_string())?.wait().map_err(|e| e.to_string())?;
    if values != vec![40u32; 64] {
        return Err(format!("expected 40 everywhere, got {values:?}"));
    }
    if q.rank() == 0 {
        // Longer than the stall timeout: the other ranks wait at shutdown meanwhile, which is no stall.
        std::thread::sleep(Duration::from_secs(4));
    }
    Ok(())
}

fn main() -> ExitCode {
    if std::env::var_os("CELER_STALL_TIMEOUT").is_none() {
        // Before any other thread starts, so nothing reads the environment meanwhile.
        std::env::set_var("CELER_STALL_TIMEOUT", "2");
    }
    common::run_on_every_rank("e2e_diag", "40 dependent host tasks and a late shutdown, no false alarm", body)
}
