//! Errors found while running abort every rank with a message naming the rank, command, task and kernel, instead
//! of hanging the others. With `--case push-constants` this program makes one; without arguments it runs itself as
//! one rank with that argument and checks the failure (what `cargo test` does). `./x test` also runs the failing
//! case under `mpirun -n 2` and checks that both ranks stop with the message.

use std::process::{Command, ExitCode};

use celer::{access, kernels, task, Kernel, Queue};

/// Submits a kernel with more push-constant words than any device allows; the runtime refuses it at dispatch.
fn push_constant_overflow() -> Result<(), String> {
    let q = Queue::new().map_err(|e| e.to_string())?;
    let a = q.buffer_from(&[1.0f32; 64], [64]).named("a");
    let b = q.buffer::<f32, 1>([64]).named("b");
    let heat = Kernel::wgsl(&kernels::HEAT_1D, "main").map_err(|e| e.to_string())?;
    q.submit(
        task::parallel_for(&heat, [64])
            .read(&a, access::neighborhood([1]))
            .discard_write(&b, access::one_to_one())
            .scalars(&[0; 200])
            .name("too_many_scalars"),
    )
    .map_err(|e| e.to_string())?;
    q.wait();
    Err("the runtime accepted 200 scalar words of push constants".into())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--case") {
        return match args.get(2).map(String::as_str) {
            Some("push-constants") => {
                if let Err(e) = push_constant_overflow() {
                    eprintln!("e2e_errors: {e}");
                }
                ExitCode::FAILURE
            }
            other => {
                eprintln!("e2e_errors: unknown case {other:?}");
                ExitCode::FAILURE
            }
        };
    }
    // As a plain test: run the failing case in a child process and check how it fails.
    let exe = std::env::current_exe().expect("own path");
    let out = Command::new(exe).args(["--case", "push-constants"]).output().expect("running the failing case");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let named = stderr.contains("task") && stderr.contains("too_many_scalars") && stderr.contains("heat_1d");
    if out.status.success() || !named || !stderr.contains("push constants") {
        eprintln!(
            "e2e_errors: expected a failure naming the task and kernel; exit {:?}, stderr:\n{stderr}",
            out.status
        );
        return ExitCode::FAILURE;
    }
    println!(
        "e2e_errors: a push-constant overflow stops the run with: {}",
        stderr.lines().find(|l| l.contains("too_many_scalars")).unwrap_or("")
    );
    ExitCode::SUCCESS
}
