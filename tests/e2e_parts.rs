//! End to end, on real ranks: a fence of part of a buffer returns exactly that box, moves only it and reads it
//! back once per rank (however many devices the rank drives), and zero-dimensional buffers (one value) round-trip
//! through creation data, a kernel's reduction, a host task and fences, host tasks writing regions of several boxes
//! write back only those boxes, collective host tasks have one item per rank, and independent host tasks run at the
//! same time (collective ones never). Run alone (one rank) or under `mpirun -n N`, with `--devices N` for N devices
//! per rank and `--host-threads N` for N host threads; `./x test` does all of these.

use std::process::ExitCode;

mod common;

/// The kernels of `kernels/` (several tests and examples share them).
#[allow(dead_code)]
mod own_kernels {
    celer::include_kernels!();
}

use celer::{access, kernels, task, GridBox, Kernel, Queue, ReductionOp, Region};

fn run(q: &Queue) -> Result<(), String> {
    let e = |e: celer::TaskError| e.to_string();
    let w = |e: celer::Error| e.to_string();
    // A 2D field split over the ranks; fence the box of rows 5..9 and columns 2..5.
    let (rows, cols) = (16usize, 8usize);
    let cells: Vec<u32> = (0..(rows * cols) as u32).collect();
    let field = q.buffer_from(&cells, [rows, cols]).named("field");
    let squares = Kernel::wgsl(&kernels::SQUARES, "main").map_err(w)?;
    let flat = q.buffer::<u32, 1>([rows * cols]).named("flat");
    q.submit(task::parallel_for(&squares, [rows * cols]).discard_write(&flat, access::one_to_one())).map_err(e)?;
    q.wait();
    let before = q.stats().map(|s| (s.bytes_received, s.fence_bytes_read));
    let part = q.fence_subrange(&field, [5, 2], [4, 3]).map_err(e)?;
    if part.range() != [4, 3] {
        return Err(format!("a fence of a [4, 3] box reports range {:?}", part.range()));
    }
    let got = part.wait().map_err(w)?;
    let want: Vec<u32> = (5..9).flat_map(|r| (2..5).map(move |c| (r * cols + c) as u32)).collect();
    if got != want {
        return Err(format!("fence of rows 5..9, columns 2..5: got {got:?}, want {want:?}"));
    }
    // Only the box travels: no rank receives more than its 12 cells. And each rank reads them back once, however
    // many devices it drives (its first device gathers them; with `--devices 2` each device read them back before).
    if let (Some(before), Some(after)) = (before, q.stats().map(|s| (s.bytes_received, s.fence_bytes_read))) {
        if after.0 - before.0 > 12 * 4 {
            return Err(format!("the fence of 12 cells made this rank receive {} B", after.0 - before.0));
        }
        if after.1 - before.1 != 12 * 4 {
            return Err(format!("the fence of 12 cells (48 B) read back {} B on this rank", after.1 - before.1));
        }
    }
    let tail = q.fence_subrange(&flat, [rows * cols - 3], [3]).map_err(e)?.wait().map_err(w)?;
    let n = (rows * cols) as u32;
    if tail != [(n - 3) * (n - 3), (n - 2) * (n - 2), (n - 1) * (n - 1)] {
        return Err(format!("the last three squares: got {tail:?}"));
    }
    if q.fence_subrange(&flat, [rows * cols - 2], [3]).is_ok() {
        return Err("a fence of a box reaching past the buffer was accepted".into());
    }

    // Zero-dimensional buffers: one value each.
    let scale = q.buffer_from(&[2.5f32], []).named("scale");
    if q.fence(&scale).map_err(e)?.value().map_err(w)? != 2.5 {
        return Err("a 0-D buffer created from 2.5 does not fence as 2.5".into());
    }
    let data: Vec<i32> = (1..=100).collect();
    let data = q.buffer_from(&data, [100]).named("data");
    let total = q.buffer::<i32, 0>([]).named("total");
    let sum = Kernel::wgsl(&kernels::REDUCE_I32, "reduce_sum").map_err(w)?;
    q.submit(task::parallel_for(&sum, [100]).read(&data, access::one_to_one()).reduce(&total, ReductionOp::Sum))
        .map_err(e)?;
    let doubled = q.buffer::<i32, 0>([]).named("doubled");
    q.submit(task::host_once().read(&total, access::all()).discard_write(&doubled, access::all()).name("double").run(
        |ctx| {
            let v = ctx.data::<i32>(0)[0];
            ctx.data_mut::<i32>(1)[0] = 2 * v;
        },
    ))
    .map_err(e)?;
    let (t, d) = (q.fence(&total).map_err(e)?.value().map_err(w)?, q.fence(&doubled).map_err(e)?.value().map_err(w)?);
    if (t, d) != (5050, 10100) {
        return Err(format!("0-D reduction and host task: total {t}, doubled {d} (want 5050, 10100)"));
    }
    multi_box_writes(q)?;
    collective_items(q)?;
    host_pool(q)
}

/// Host tasks the task graph lets run together do, with `CELER_HOST_THREADS` >= 2 (the default is 4): two
/// `host_once` tasks writing different buffers each wait on rank 0 for the other to have started (up to 10 s, then
/// the check fails instead of hanging). With `CELER_HOST_THREADS=1` they run in submission order: the first waits in
/// vain (300 ms), the second starts after it returned. Collective tasks of two groups never run at the same time,
/// whatever the count (they all run on one host thread).
fn host_pool(q: &Queue) -> Result<(), String> {
    use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::{Duration, Instant};
    let e = |e: celer::TaskError| e.to_string();
    let default = celer::unstable::scheduler::config::DEFAULT_HOST_THREADS;
    let threads = match std::env::var("CELER_HOST_THREADS").ok().filter(|v| !v.trim().is_empty()) {
        Some(v) => v.trim().parse::<usize>().map_err(|_| format!("CELER_HOST_THREADS={v} is not a count"))?,
        None => default,
    };
    let patience = if threads >= 2 { Duration::from_secs(10) } else { Duration::from_millis(300) };
    let started = Arc::new([AtomicBool::new(false), AtomicBool::new(false)]);
    // Per task: 0 not run, 1 saw the other one start, 2 gave up waiting.
    let saw = Arc::new([AtomicU8::new(0), AtomicU8::new(0)]);
    let snaps = [q.buffer::<u32, 1>([4]).named("snap a"), q.buffer::<u32, 1>([4]).named("snap b")];
    for (k, snap) in snaps.iter().enumerate() {
        let (started, saw) = (Arc::clone(&started), Arc::clone(&saw));
        let name = ["write a", "write b"][k];
        q.submit(task::host_once().discard_write(snap, access::all()).name(name).run(move |ctx| {
            started[k].store(true, Ordering::Release);
            let until = Instant::now() + patience;
            let mut outcome = 1;
            while !started[1 - k].load(Ordering::Acquire) {
                if Instant::now() > until {
                    outcome = 2;
                    break;
                }
                std::thread::sleep(Duration::from_micros(200));
            }
            saw[k].store(outcome, Ordering::Release);
            ctx.data_mut::<u32>(0).fill(k as u32 + 1);
        }))
        .map_err(e)?;
    }
    // Two collective groups, one task each: independent in the graph, yet never at the same time on a rank.
    let inside = Arc::new(AtomicUsize::new(0));
    let overlapped = Arc::new(AtomicBool::new(false));
    let groups = [q.collective_group(), q.collective_group()];
    for g in &groups {
        let (inside, overlapped) = (Arc::clone(&inside), Arc::clone(&overlapped));
        q.submit(task::host_collective_in(g).name("alone").run(move |_| {
            if inside.fetch_add(1, Ordering::AcqRel) != 0 {
                overlapped.store(true, Ordering::Release);
            }
            std::thread::sleep(Duration::from_millis(50));
            inside.fetch_sub(1, Ordering::AcqRel);
        }))
        .map_err(e)?;
    }
    q.wait();
    if overlapped.load(Ordering::Acquire) {
        return Err(format!("rank {}: two collective host tasks (groups of their own) ran at the same time", q.rank()));
    }
    if q.rank() != 0 {
        return Ok(());
    }
    let (a, b) = (saw[0].load(Ordering::Acquire), saw[1].load(Ordering::Acquire));
    let want = if threads >= 2 { (1, 1) } else { (2, 1) };
    if (a, b) != want {
        let say = |o: u8| ["did not run", "saw the other start", "waited in vain"][o as usize];
        return Err(format!(
            "with CELER_HOST_THREADS={threads}: the first host task {}, the second {} (want: {} and {})",
            say(a),
            say(b),
            say(want.0),
            say(want.1)
        ));
    }
    Ok(())
}

/// A collective host task has one item per rank (item r on rank r), whatever `CELER_DEVICES` says: a buffer of
/// `q.ranks()` cells written one to one, and a custom mapper dividing rows by `q.ranks()`, fit it, and
/// `ctx.rank()` is MPI's rank and size. Each rank's closure runs once per task.
fn collective_items(q: &Queue) -> Result<(), String> {
    let e = |e: celer::TaskError| e.to_string();
    let w = |e: celer::Error| e.to_string();
    let ranks = q.ranks();
    let ids = q.buffer::<u32, 1>([ranks]).named("ids");
    let calls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = std::sync::Arc::clone(&calls);
    q.submit(task::host_collective().discard_write(&ids, access::one_to_one()).name("who").run(move |ctx| {
        counted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (rank, size) = ctx.rank();
        ctx.data_mut::<u32>(0).fill((1000 * size + rank) as u32);
    }))
    .map_err(e)?;
    let got = q.fence(&ids).map_err(e)?.wait().map_err(w)?;
    let want: Vec<u32> = (0..ranks).map(|r| (1000 * ranks + r) as u32).collect();
    if got != want {
        return Err(format!("a collective host task writing item r of {ranks} wrote {got:?}, want {want:?}"));
    }
    // Rank r's rows of an 8 x 4 matrix, as in examples/distr_io.rs.
    let n = 8;
    let rows = move || {
        access::custom("rank_rows", move |c: &GridBox<1>, b: &GridBox<2>| {
            Region::from(GridBox::new([c.min()[0] * n / ranks, 0], [c.max()[0] * n / ranks, b.max()[1]]))
        })
    };
    let m = q.buffer_from(&(0..32u32).collect::<Vec<_>>(), [n, 4]).named("m");
    let sums = q.buffer::<u32, 1>([ranks]).named("row_sums");
    q.submit(task::host_collective().read(&m, rows()).discard_write(&sums, access::one_to_one()).name("sum_rows").run(
        move |ctx| {
            let s: u32 = ctx.data::<u32>(0).iter().sum();
            ctx.data_mut::<u32>(1).fill(s);
        },
    ))
    .map_err(e)?;
    let got = q.fence(&sums).map_err(e)?.wait().map_err(w)?;
    let want: Vec<u32> =
        (0..ranks).map(|r| (r * n / ranks * 4..(r + 1) * n / ranks * 4).map(|c| c as u32).sum()).collect();
    if got != want {
        return Err(format!("collective row sums: got {got:?}, want {want:?}"));
    }
    let calls = calls.load(std::sync::atomic::Ordering::Relaxed);
    if calls != 1 {
        return Err(format!("the collective host task ran {calls} times on this rank, want once"));
    }
    Ok(())
}

/// Host tasks whose write region is several boxes (a custom mapper's two ends, a "+" neighbourhood without its
/// corners) see the bounding box, but only the declared cells are written back: the cells between keep their data,
/// on every rank (not the zeros a write view starts with, nor what the closure left there).
fn multi_box_writes(q: &Queue) -> Result<(), String> {
    let e = |e: celer::TaskError| e.to_string();
    let w = |e: celer::Error| e.to_string();
    let line = q.buffer_from(&[9u32; 16], [16]).named("line");
    // Item i writes cells 4i and 4i + 3 (a region of two boxes per item); the closure first fills its whole view
    // with 0xdead, which must not reach the buffer.
    let ends = access::custom("ends", |c: &GridBox<1>, _: &GridBox<1>| {
        Region::from_boxes(
            (c.min()[0]..c.max()[0]).flat_map(|i| [GridBox::d1(4 * i, 4 * i + 1), GridBox::d1(4 * i + 3, 4 * i + 4)]),
        )
    });
    q.submit(task::host_for([4]).write(&line, ends).name("ends").run(|ctx| {
        let (chunk, lo) = (ctx.chunk(), ctx.bounds::<1>(0).min()[0]);
        let cells = ctx.data_mut::<u32>(0);
        cells.fill(0xdead);
        for i in chunk.min()[0]..chunk.max()[0] {
            (cells[4 * i - lo], cells[4 * i + 3 - lo]) = (100 + i as u32, 200 + i as u32);
        }
    }))
    .map_err(e)?;
    let got = q.fence(&line).map_err(e)?.wait().map_err(w)?;
    let want: Vec<u32> = (0..16u32).map(|c| [100 + c / 4, 9, 9, 200 + c / 4][c as usize % 4]).collect();
    if got != want {
        return Err(format!("writes of cells 4i and 4i + 3 changed the cells between: got {got:?}, want {want:?}"));
    }
    // A 2 x 2 chunk grown along the axes writes a "+" of 8 cells in a 4 x 4 bounding box; the closure fills the
    // whole box, but the corners and everything else keep their 5s.
    let grid = q.buffer_from(&[5u32; 36], [6, 6]).named("grid");
    q.submit(
        task::host_for([2, 2])
            .granularity([2, 2])
            .write(
                &grid,
                access::custom("plus", |c: &GridBox<2>, _: &GridBox<2>| {
                    let ([r0, c0], [r1, c1]) = (c.min(), c.max());
                    Region::from_boxes([
                        GridBox::new([r0 + 1, c0 + 1], [r1 + 1, c1 + 1]),
                        GridBox::new([r0 + 2, c0], [r1 + 2, c1 + 2]),
                    ])
                }),
            )
            .name("plus")
            .run(|ctx| ctx.data_mut::<u32>(0).fill(7)),
    )
    .map_err(e)?;
    let got = q.fence(&grid).map_err(e)?.wait().map_err(w)?;
    let plus = |r: usize, c: usize| (1..3).contains(&r) && (1..3).contains(&c) || r == 2 && c < 4 || r == 3 && c < 4;
    let want: Vec<u32> = (0..36).map(|i| if plus(i / 6, i % 6) { 7 } else { 5 }).collect();
    if got != want {
        return Err(format!("a write of a region of two boxes changed cells outside it: got {got:?}, want {want:?}"));
    }
    // A kernel that stores only the even cells through `write` (and a host task that stores only the odd ones):
    // the cells not stored keep their old contents, on any number of ranks and devices (the old contents move to
    // the writer, as SYCL's and Celerity's `write` keeps them).
    let evens = Kernel::wgsl(&own_kernels::EVENS_I32, "main").map_err(w)?;
    let kept = q.buffer_from(&[7i32; 96], [96]).named("kept");
    q.submit(task::parallel_for(&evens, [96]).write(&kept, access::one_to_one()).name("evens")).map_err(e)?;
    q.submit(task::host_for([96]).write(&kept, access::one_to_one()).name("odds").run(|ctx| {
        let lo = ctx.chunk().min()[0];
        for (k, v) in ctx.data_mut::<i32>(0).iter_mut().enumerate() {
            if (lo + k) % 96 == 95 {
                *v = 1000;
            }
        }
    }))
    .map_err(e)?;
    let got = q.fence(&kept).map_err(e)?.wait().map_err(w)?;
    let want: Vec<i32> = (0..96)
        .map(|i| {
            if i == 95 {
                1000
            } else if i % 2 == 0 {
                -2 * i
            } else {
                7
            }
        })
        .collect();
    if got != want {
        return Err(format!("writes of some cells through `write` changed the others: got {got:?}, want {want:?}"));
    }
    // Host tasks with a side effect on one host object (one instance per rank) see it in submission order, also
    // with several devices per rank (each rank's chunk then runs on its first device; before, each device ran a
    // chunk and one device's loop could run the next task's while another still ran this one's), and still cover
    // every item.
    const STEPS: u32 = 12;
    let log = q.host_object(Vec::<(u32, usize)>::new());
    let marks = q.buffer_from(&[0u32; 64], [64]).named("marks");
    for step in 0..STEPS {
        q.submit(task::host_for([64]).read_write(&marks, access::one_to_one()).side_effect(&log).name("logged").run(
            move |ctx| {
                let lo = ctx.chunk().min()[0];
                // The first chunk lags: another device's loop of the rank would run ahead of it.
                if lo == 0 {
                    std::thread::sleep(std::time::Duration::from_millis(2));
                }
                ctx.data_mut::<u32>(0).iter_mut().for_each(|m| *m += 1);
                ctx.with_object::<Vec<(u32, usize)>, _>(0, |log| log.push((step, lo)));
            },
        ))
        .map_err(e)?;
    }
    let got = q.fence(&marks).map_err(e)?.wait().map_err(w)?;
    if got != [STEPS; 64] {
        return Err(format!("{STEPS} host tasks over every item marked {got:?}"));
    }
    let entries = q.fence_object(&log).map_err(w)?;
    if entries.windows(2).any(|p| p[0].0 > p[1].0) || entries.len() < STEPS as usize {
        return Err(format!("rank {}: side effects out of submission order: {entries:?}", q.rank()));
    }
    Ok(())
}

fn main() -> ExitCode {
    // `--devices N`: every rank drives N devices (CELER_DEVICES); the results must not change.
    let args: Vec<String> = std::env::args().collect();
    common::env_from_arg(&args, "--devices", "CELER_DEVICES");
    // `--host-threads N`: host tasks run on N threads per rank (CELER_HOST_THREADS); `host_pool` checks what that
    // allows.
    common::env_from_arg(&args, "--host-threads", "CELER_HOST_THREADS");
    common::run_on_every_rank("e2e_parts", "subrange fences and 0-D buffers verified", run)
}
