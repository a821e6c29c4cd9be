//! Diagnostics stay silent on a correct program: a run with many horizons, where rank 0's application thread
//! dawdles for twice the stall timeout before shutting down while the other ranks wait for it at shutdown, must
//! finish without a stall or divergence report. With `CELER_DUMP_GRAPHS` set, each rank then finds its command
//! graph and rank 0 the task graph in the directory, and with `CELER_TRACE` rank 0 finds one timeline of every rank.
//! Run alone by `cargo test`, under `mpirun -n 2` by `./x test`.

mod common;

use std::process::ExitCode;
use std::time::Duration;

use celer::{access, kernels, task, Kernel, Queue};

/// How long each of the three napping host tasks sleeps.
const NAP: Duration = Duration::from_millis(50);

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
    // Three independent host tasks that nap 50 ms each, queued for the host worker together: each one's trace span
    // must cover its own nap, not the time it waited behind the others.
    for k in 0..3 {
        let b = q.buffer::<u32, 1>([q.ranks()]).named(format!("nap{k}"));
        q.submit(task::host_for([q.ranks()]).discard_write(&b, access::one_to_one()).name("nap").run(|_| {
            std::thread::sleep(NAP);
        }))
        .map_err(|e| e.to_string())?;
    }
    // A kernel on every rank, for the trace's row of device-timed GPU operations.
    let squares = Kernel::wgsl(&kernels::SQUARES, "main").map_err(|e| e.to_string())?;
    let out = q.buffer::<u32, 1>([256]).named("squares");
    q.submit(task::parallel_for(&squares, [256]).discard_write(&out, access::one_to_one()).name("squares"))
        .map_err(|e| e.to_string())?;
    let got = q.fence(&out).map_err(|e| e.to_string())?.wait().map_err(|e| e.to_string())?;
    if got.iter().enumerate().any(|(i, &v)| v != (i * i) as u32) {
        return Err(format!("squares computed wrongly: {got:?}"));
    }
    if q.rank() == 0 {
        // Longer than the stall timeout: the other ranks wait at shutdown meanwhile, which is no stall.
        std::thread::sleep(Duration::from_secs(4));
    }
    Ok(())
}

/// This rank as the MPI launcher tells it (MPI is finalized by the time the dumps are checked).
fn launcher_rank() -> usize {
    std::env::var("OMPI_COMM_WORLD_RANK").ok().and_then(|r| r.parse().ok()).unwrap_or(0)
}

/// Checks the DOT files the run wrote.
fn check_dumps(dir: &std::path::Path, rank: usize) -> Result<(), String> {
    let read = |name: &str| {
        std::fs::read_to_string(dir.join(name))
            .map_err(|e| format!("{} was not written: {e}", dir.join(name).display()))
    };
    let commands = read(&format!("commands-rank{rank}.dot"))?;
    if !commands.starts_with("digraph") || commands.matches("execution").count() < 40 {
        return Err(format!("commands-rank{rank}.dot lacks the 40 executions:\n{commands}"));
    }
    if rank == 0 {
        let tasks = read("tasks.dot")?;
        // Every task of the run, including those pruned long before shutdown.
        if tasks.matches(r#"\"increment\""#).count() != 40 || !tasks.contains("horizon") {
            return Err(format!("tasks.dot lacks the 40 increments or the horizons:\n{tasks}"));
        }
    }
    Ok(())
}

/// Checks the merged timeline: valid JSON, a process per rank, the host tasks of every rank, and each rank's
/// kernel among the device-timed GPU operations.
fn check_trace(path: &std::path::Path, ranks: usize) -> Result<(), String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{} was not written: {e}", path.display()))?;
    let json: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("{} is not JSON: {e}", path.display()))?;
    let events = json["traceEvents"].as_array().ok_or("the trace has no traceEvents array")?;
    for r in 0..ranks {
        let named = events.iter().any(|e| e["name"] == "process_name" && e["args"]["name"] == format!("rank {r}"));
        let spans = |prefix: &str| -> Vec<(String, f64)> {
            events
                .iter()
                .filter(|e| e["pid"] == r && e["ph"] == "X")
                .filter_map(|e| Some((e["name"].as_str()?.to_string(), e["dur"].as_f64()?)))
                .filter(|(n, _)| n.starts_with(prefix))
                .collect()
        };
        // Host task spans carry the task's name.
        let host_tasks = spans("host task").iter().filter(|(n, _)| n.ends_with("\"increment\"")).count();
        if !named || host_tasks != 40 {
            return Err(format!(
                "the trace has {host_tasks} host task spans named \"increment\" of rank {r} (40 expected), named: {named}"
            ));
        }
        // Each nap's span is the closure's own run: at least the nap, and short of two naps (queued behind each
        // other, spans measured from the hand-over read 50, 100 and 150 ms).
        let naps: Vec<f64> =
            spans("host task").into_iter().filter(|(n, _)| n.ends_with("\"nap\"")).map(|s| s.1).collect();
        let nap_us = NAP.as_secs_f64() * 1e6;
        if naps.len() != 3 || naps.iter().any(|&d| d < nap_us || d > 1.9 * nap_us) {
            return Err(format!(
                "rank {r}'s napping host tasks span {naps:?} µs; each should be {nap_us} µs or a little more"
            ));
        }
        // With several ranks, the fence's await-pushes name the buffer.
        if ranks > 1 && !spans("await-push").iter().any(|(n, _)| n.starts_with("await-push buffer B0 \"counter\"")) {
            return Err(format!(
                "rank {r} has no await-push span naming buffer B0 \"counter\": {:?}",
                spans("await-push")
            ));
        }
        let timed_kernel = events.iter().any(|e| {
            e["pid"] == r
                && e["ph"] == "X"
                && e["tid"] == 5
                && e["name"].as_str().is_some_and(|n| n.starts_with("kernel squares"))
                && e["dur"].as_f64().is_some_and(|d| d > 0.0)
        });
        if !timed_kernel {
            return Err(format!("the trace has no device-timed span of rank {r}'s squares kernel"));
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    // celer's rank-prefixed logger, at the level of CELER_LOG (celer installs none unless asked).
    celer::logging::init();
    let rank = launcher_rank();
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("e2e_diag_graphs");
    let _ = std::fs::remove_file(dir.join(format!("commands-rank{rank}.dot")));
    if rank == 0 {
        let _ = std::fs::remove_file(dir.join("tasks.dot"));
    }
    // Before any other thread starts, so nothing reads the environment meanwhile.
    if std::env::var_os("CELER_STALL_TIMEOUT").is_none() {
        std::env::set_var("CELER_STALL_TIMEOUT", "2");
    }
    std::env::set_var("CELER_DUMP_GRAPHS", &dir);
    let trace = dir.join("trace.json");
    if rank == 0 {
        let _ = std::fs::remove_file(&trace);
    }
    std::env::set_var("CELER_TRACE", &trace);
    let code =
        common::run_on_every_rank("e2e_diag", "40 dependent host tasks and a late shutdown, no false alarm", body);
    if code != ExitCode::SUCCESS {
        return code;
    }
    let ranks = std::env::var("OMPI_COMM_WORLD_SIZE").ok().and_then(|r| r.parse().ok()).unwrap_or(1);
    let checked = check_dumps(&dir, rank).and_then(|()| if rank == 0 { check_trace(&trace, ranks) } else { Ok(()) });
    match checked {
        Ok(()) => {
            println!("e2e_diag: rank {rank}: graph dumps (and on rank 0 the timeline) written to {}", dir.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("e2e_diag: rank {rank}: {e}");
            ExitCode::FAILURE
        }
    }
}
