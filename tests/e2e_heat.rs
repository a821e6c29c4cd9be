//! End to end, on real ranks and a real Vulkan device: explicit heat-equation steps in 1D and 2D (neighbourhood
//! reads, so halos move between ranks every step), read back through fences on every rank and compared with a
//! serial reference computed here; then a buffer written by a host task on rank 0 and fenced on every rank, and a
//! collective host task that reads a whole buffer on every rank. Run alone (one rank) or under `mpirun -n N`, with
//! `--devices N` for N devices per rank (whose halos between devices of a rank on one Vulkan device are GPU copies,
//! checked in the statistics, or with `--peer-copies off` go through host memory and MPI); `./x test` does all.

use std::process::ExitCode;
use std::sync::{Arc, Mutex};

mod common;

use celer::{access, kernels, task, Kernel, Queue};

/// The serial reference for one step, with the kernel's arithmetic.
fn step_1d(src: &[f32], alpha: f32) -> Vec<f32> {
    let n = src.len();
    (0..n)
        .map(|i| {
            let c = src[i];
            let l = if i > 0 { src[i - 1] } else { c };
            let r = if i + 1 < n { src[i + 1] } else { c };
            c + alpha * (l - 2.0 * c + r)
        })
        .collect()
}

fn step_2d(src: &[f32], h: usize, w: usize, alpha: f32) -> Vec<f32> {
    let at = |i: usize, j: usize| src[i * w + j];
    let mut out = vec![0.0; h * w];
    for i in 0..h {
        for j in 0..w {
            let c = at(i, j);
            let n = if i > 0 { at(i - 1, j) } else { c }
                + if i + 1 < h { at(i + 1, j) } else { c }
                + if j > 0 { at(i, j - 1) } else { c }
                + if j + 1 < w { at(i, j + 1) } else { c };
            out[i * w + j] = c + alpha * (n - 4.0 * c);
        }
    }
    out
}

fn compare(what: &str, got: &[f32], want: &[f32]) -> Result<(), String> {
    if got.len() != want.len() {
        return Err(format!("{what}: {} values returned, {} expected", got.len(), want.len()));
    }
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        if (g - w).abs() > 1e-5 * w.abs().max(1.0) {
            return Err(format!("{what}: cell {i} is {g}, the serial reference says {w}"));
        }
    }
    Ok(())
}

fn run(q: &Queue) -> Result<(), String> {
    let alpha = 0.2f32;
    // 1D: 1000 cells, 40 steps.
    let n = 1000;
    let init: Vec<f32> = (0..n).map(|i| if (300..500).contains(&i) { 100.0 } else { (i % 7) as f32 }).collect();
    let heat1 = Kernel::wgsl(&kernels::HEAT_1D, "main").map_err(|e| e.to_string())?;
    let mut a = q.buffer_from(&init, [n]).named("a");
    let mut b = q.buffer::<f32, 1>([n]).named("b");
    for _ in 0..40 {
        q.submit(
            task::parallel_for(&heat1, [n])
                .read(&a, access::neighborhood([1]))
                .discard_write(&b, access::one_to_one())
                .scalar_f32(alpha),
        )
        .map_err(|e| e.to_string())?;
        std::mem::swap(&mut a, &mut b);
    }
    // Before the fence, which needs the whole field everywhere, each rank holds only its chunk and the halos:
    // two buffers of at most n / ranks + 1 (rounding) + 2 cells each.
    q.wait();
    let stats = q.stats().ok_or("no runtime statistics")?;
    let bound = 2 * (n.div_ceil(q.ranks()) + 3) * 4;
    if stats.device_bytes as usize > bound {
        return Err(format!(
            "rank {} holds {} bytes of device memory for the 1D heat, more than its chunks and halos ({bound})",
            q.rank(),
            stats.device_bytes
        ));
    }
    // With other ranks, halos arrive while each step's interior runs (CELER_OVERLAP, set to 1 cell in main).
    if q.ranks() > 1 && stats.early_interiors == 0 {
        return Err(format!("rank {}: no kernel ran its interior before its halo arrived: {stats}", q.rank()));
    }
    // Two devices of a rank on this machine's one Vulkan device (lavapipe) exchange halos by GPU copies, unless
    // CELER_PEER_COPIES=off; one device per rank has no peer.
    let devices = std::env::var("CELER_DEVICES").ok().and_then(|d| d.parse::<usize>().ok()).unwrap_or(1);
    let peer = devices > 1 && std::env::var("CELER_PEER_COPIES").map_or(true, |v| v != "off");
    if peer != (stats.peer_copies > 0) {
        return Err(format!(
            "rank {}: {} boxes moved by GPU copies between its {devices} device(s), expected {}: {stats:?}",
            q.rank(),
            stats.peer_copies,
            if peer { "some" } else { "none" }
        ));
    }
    let got = q.fence(&a).map_err(|e| e.to_string())?.wait().map_err(|e| e.to_string())?;
    let want = (0..40).fold(init, |u, _| step_1d(&u, alpha));
    compare("1D heat, 40 steps", &got, &want)?;

    // 2D: 48 × 64, 25 steps, split into a 2D grid of chunks.
    let (h, w) = (48, 64);
    let init: Vec<f32> = (0..h * w).map(|k| ((k / w) * 3 + (k % w)) as f32 % 17.0).collect();
    let heat2 = Kernel::wgsl(&kernels::HEAT_2D, "main").map_err(|e| e.to_string())?;
    let mut u = q.buffer_from(&init, [h, w]).named("u");
    let mut v = q.buffer::<f32, 2>([h, w]).named("v");
    for _ in 0..25 {
        q.submit(
            task::parallel_for(&heat2, [h, w])
                .read(&u, access::neighborhood_along_axes([1, 1]))
                .discard_write(&v, access::one_to_one())
                .scalar_f32(alpha)
                .split_2d(),
        )
        .map_err(|e| e.to_string())?;
        std::mem::swap(&mut u, &mut v);
    }
    let got = q.fence(&u).map_err(|e| e.to_string())?.wait().map_err(|e| e.to_string())?;
    let want = (0..25).fold(init, |x, _| step_2d(&x, h, w, alpha));
    compare("2D heat, 25 steps", &got, &want)?;

    // A buffer written by a host task on rank 0 and read by every rank.
    let table = q.buffer::<f32, 1>([64]).named("table");
    q.submit(task::host_once().discard_write(&table, access::all()).run(|ctx| {
        for (i, x) in ctx.data_mut::<f32>(0).iter_mut().enumerate() {
            *x = i as f32 * 0.5;
        }
    }))
    .map_err(|e| e.to_string())?;
    let got = q.fence(&table).map_err(|e| e.to_string())?.wait().map_err(|e| e.to_string())?;
    compare("table written on rank 0", &got, &(0..64).map(|i| i as f32 * 0.5).collect::<Vec<_>>())?;

    // A collective host task on every rank, reading the whole 2D field.
    let seen = Arc::new(Mutex::new(None));
    let seen_in_task = Arc::clone(&seen);
    q.submit(task::host_collective().read(&u, access::all()).run(move |ctx| {
        *seen_in_task.lock().unwrap() = Some(ctx.data::<f32>(0).to_vec());
    }))
    .map_err(|e| e.to_string())?;
    q.barrier();
    let seen = seen.lock().unwrap().take().ok_or("the collective host task did not run on this rank")?;
    compare("collective host task reading all", &seen, &want)?;

    // A host object: side effects run in order on every rank's instance; a fence hands back a copy.
    let counter = q.host_object(Vec::<u32>::new());
    for i in 0..5u32 {
        q.submit(task::host_collective().side_effect(&counter).run(move |ctx| {
            ctx.with_object::<Vec<u32>, _>(0, |log| log.push(i));
        }))
        .map_err(|e| e.to_string())?;
    }
    let log = q.fence_object(&counter).map_err(|e| e.to_string())?;
    if log != [0, 1, 2, 3, 4] {
        return Err(format!("host object side effects ran as {log:?}, expected [0, 1, 2, 3, 4] in order"));
    }
    Ok(())
}

fn main() -> ExitCode {
    // celer's rank-prefixed logger, at the level of CELER_LOG (celer installs none unless asked).
    celer::logging::init();
    // Interiors of any size run early (the default skips chunks this small), before any other thread starts.
    if std::env::var_os("CELER_OVERLAP").is_none() {
        std::env::set_var("CELER_OVERLAP", "1");
    }
    // `--devices N`: every rank drives N devices (CELER_DEVICES); the results must not change, and a collective
    // host task's side effects must still run once per rank.
    let args: Vec<String> = std::env::args().collect();
    common::env_from_arg(&args, "--devices", "CELER_DEVICES");
    // `--peer-copies off`: halos between a rank's devices go through host memory and MPI (CELER_PEER_COPIES).
    common::env_from_arg(&args, "--peer-copies", "CELER_PEER_COPIES");
    common::run_on_every_rank("e2e_heat", "1D and 2D heat, host tasks and host objects verified", run)
}
