//! End to end, on real ranks: Celerity idioms as a porter writes them in celer, checked against what Celerity
//! defines. The range mappers (`one_to_one`, `slice` along each dimension, `fixed`, `all`, `neighborhood` as a
//! bounding box and along the axes) hand each chunk the box Celerity's would, with the right data, under the 1D
//! split, the 2D split hint (`split_2d`, Celerity's `hints::split_2d`) and a split granularity (`constrain_split`);
//! master-node host tasks with side effects touch rank 0's host object only; a `HostObject<()>` orders collective
//! host tasks (Celerity's `host_object<void>`); a collective host task reading `all` into program state after
//! `wait` (Celerity's `syncing` example); a fence replicates a master-node result to every rank; range mappers that
//! read the task's whole index space (Celerity's `chunk::global_size`): `experimental::access::even_split` over a
//! collective host task and over an offset index space in blocks, and custom mappers (`access::custom_in`)
//! computing from the index space's start, against serial results; the ranks that run none of 2000 master-node
//! host tasks run ahead of rank 0 with a bounded number of divergence-check windows awaiting it.
//! Run alone (one rank) or under `mpirun -n N`, with `--devices N` for N devices per rank; `./x test` does both.

use std::process::ExitCode;
use std::sync::{Arc, Mutex};

mod common;

use celer::{access, task, GridBox, Queue, Region};

const ROWS: usize = 8;
const COLS: usize = 6;

fn e(x: impl std::fmt::Display) -> String {
    x.to_string()
}

/// The box `[lo, hi)` clamped to the `ROWS` x `COLS` buffer (lo may be negative).
fn clamped(lo: [isize; 2], hi: [isize; 2]) -> GridBox<2> {
    let c = |v: isize, max: usize| v.clamp(0, max as isize) as usize;
    GridBox::new([c(lo[0], ROWS), c(lo[1], COLS)], [c(hi[0], ROWS), c(hi[1], COLS)])
}

/// What Celerity's mapper `which` gives chunk `chunk` of a `ROWS` x `COLS` index space over a buffer of that extent.
fn celerity_box(which: usize, chunk: &GridBox<2>) -> GridBox<2> {
    let (lo, hi) = (chunk.min().map(|v| v as isize), chunk.max().map(|v| v as isize));
    match which {
        0 => *chunk,                                                    // one_to_one
        1 => GridBox::new([lo[0] as usize, 0], [hi[0] as usize, COLS]), // slice<2>(1): full extent along dim 1
        2 => GridBox::new([0, lo[1] as usize], [ROWS, hi[1] as usize]), // slice<2>(0): full extent along dim 0
        3 => GridBox::new([2, 1], [5, 3]),                              // fixed{{{2, 1}, {3, 2}}}
        4 => GridBox::new([0, 0], [ROWS, COLS]),                        // all
        // neighborhood{{1, 1}} (bounding box) and along_axes: the same bounding box, clamped to the buffer.
        _ => clamped([lo[0] - 1, lo[1] - 1], [hi[0] + 1, hi[1] + 1]),
    }
}

/// Every mapper, each through a buffer of its own holding 100 i + j at cell [i, j], read by a host task split the
/// way `split` says; each chunk checks the box and the cells it got. Returns the problems this rank found and how
/// many chunks it checked.
fn mappers(q: &Queue, split_2d: bool) -> Result<(Vec<String>, usize), String> {
    let cells: Vec<i32> = (0..ROWS * COLS).map(|k| (100 * (k / COLS) + k % COLS) as i32).collect();
    let bufs: Vec<_> = (0..7).map(|i| q.buffer_from(&cells, [ROWS, COLS]).named(format!("mapped_{i}"))).collect();
    let covered = q.buffer::<u32, 2>([ROWS, COLS]).named("covered");
    let problems = Arc::new(Mutex::new((Vec::<String>::new(), 0usize)));
    let seen = Arc::clone(&problems);
    let mut t = task::host_for([ROWS, COLS])
        .read(&bufs[0], access::one_to_one())
        .read(&bufs[1], access::slice(1))
        .read(&bufs[2], access::slice(0))
        .read(&bufs[3], access::fixed([2, 1], [3, 2]))
        .read(&bufs[4], access::all())
        .read(&bufs[5], access::neighborhood([1, 1]))
        .read(&bufs[6], access::neighborhood_along_axes([1, 1]))
        .discard_write(&covered, access::one_to_one())
        .name(if split_2d { "mappers_2d" } else { "mappers_1d" });
    if split_2d {
        t = t.split_2d();
    }
    q.submit(t.run(move |ctx| {
        let chunk = ctx.chunk();
        let mut found = Vec::new();
        for which in 0..7 {
            let (got, want) = (ctx.bounds::<2>(which), celerity_box(which, &chunk));
            // The along-axes neighbourhood holds the "+" inside its bounding box; every other mapper its whole box.
            if got != want {
                found.push(format!("mapper {which} gave chunk {chunk:?} the box {got:?}, Celerity's gives {want:?}"));
                continue;
            }
            let data = ctx.data::<i32>(which);
            let (min, range) = (got.min(), got.range());
            for (k, &v) in data.iter().enumerate() {
                let (i, j) = (min[0] + k / range[1], min[1] + k % range[1]);
                let on_plus = which != 6
                    || !((i < chunk.min()[0] || i >= chunk.max()[0]) && (j < chunk.min()[1] || j >= chunk.max()[1]));
                if on_plus && v != (100 * i + j) as i32 {
                    found.push(format!("mapper {which}, chunk {chunk:?}: cell [{i}, {j}] holds {v}"));
                    break;
                }
            }
        }
        ctx.data_mut::<u32>(7).fill(1);
        let mut p = seen.lock().unwrap();
        p.0.extend(found);
        p.1 += 1;
    }))
    .map_err(e)?;
    // Every cell belongs to exactly one chunk (written once, by one rank: an overlap would be refused at submit).
    let cover = q.fence(&covered).map_err(e)?.wait().map_err(e)?;
    let mut p = problems.lock().unwrap().clone();
    if cover.iter().any(|&c| c != 1) {
        p.0.push(format!("the chunks do not cover the index space: {cover:?}"));
    }
    Ok(p)
}

/// `constrain_split(cgh, {4})` is `.granularity([4])`: every chunk starts at a multiple of 4.
fn granularity(q: &Queue) -> Result<Vec<String>, String> {
    let starts = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&starts);
    let out = q.buffer::<u32, 1>([10]).named("granular");
    q.submit(task::host_for([10]).granularity([4]).discard_write(&out, access::one_to_one()).run(move |ctx| {
        seen.lock().unwrap().push(ctx.chunk().min()[0]);
        ctx.data_mut::<u32>(0).fill(1);
    }))
    .map_err(e)?;
    let cover = q.fence(&out).map_err(e)?.wait().map_err(e)?;
    let mut problems: Vec<String> =
        starts.lock().unwrap().iter().filter(|s| *s % 4 != 0).map(|s| format!("a chunk starts at {s}")).collect();
    if cover != [1; 10] {
        problems.push(format!("granular chunks cover {cover:?}"));
    }
    Ok(problems)
}

/// Master-node host tasks with side effects (`host_task(on_master_node)` + `side_effect`) change rank 0's instance
/// only; a `HostObject<()>` serializes collective host tasks, as `host_object<void>` does; a collective host task
/// copies `all` of a buffer into program state visible after `wait` (the `syncing` example); a fence hands a
/// master-node result to every rank.
fn host_tasks(q: &Queue) -> Result<(), String> {
    let log = q.host_object(Vec::<u32>::new());
    for step in 0..3u32 {
        q.submit(task::host_once().side_effect(&log).run(move |ctx| {
            ctx.with_object::<Vec<u32>, _>(0, |l| l.push(step));
        }))
        .map_err(e)?;
    }
    let mine = q.fence_object(&log).map_err(e)?;
    let want: Vec<u32> = if q.rank() == 0 { vec![0, 1, 2] } else { vec![] };
    if mine != want {
        return Err(format!("rank {}: master-node side effects left {mine:?}, want {want:?}", q.rank()));
    }

    let order = q.host_object(());
    let steps = Arc::new(Mutex::new(Vec::new()));
    for step in 0..4u32 {
        let steps = Arc::clone(&steps);
        q.submit(task::host_collective().side_effect(&order).run(move |_| steps.lock().unwrap().push(step)))
            .map_err(e)?;
    }

    let n = 512usize;
    let buf = q.buffer::<u32, 1>([n]).named("synced");
    q.submit(task::host_for([n]).discard_write(&buf, access::one_to_one()).run(|ctx| {
        let lo = ctx.chunk().min()[0] as u32;
        for (k, v) in ctx.data_mut::<u32>(0).iter_mut().enumerate() {
            *v = lo + k as u32;
        }
    }))
    .map_err(e)?;
    let copy = Arc::new(Mutex::new(Vec::new()));
    let into = Arc::clone(&copy);
    q.submit(task::host_collective().read(&buf, access::all()).run(move |ctx| {
        *into.lock().unwrap() = ctx.data::<u32>(0).to_vec();
    }))
    .map_err(e)?;
    q.wait();
    let copied = copy.lock().unwrap().clone();
    if copied != (0..n as u32).collect::<Vec<_>>() {
        return Err(format!(
            "rank {}: the collective copy of `all` holds {} values, not 0..{n}",
            q.rank(),
            copied.len()
        ));
    }
    if *steps.lock().unwrap() != [0, 1, 2, 3] {
        return Err(format!("collective tasks ordered by a HostObject<()> ran as {:?}", steps.lock().unwrap()));
    }

    let answer = q.buffer::<u64, 0>([]).named("answer");
    q.submit(task::host_once().discard_write(&answer, access::all()).run(|ctx| ctx.data_mut::<u64>(0)[0] = 42))
        .map_err(e)?;
    let got = q.fence(&answer).map_err(e)?.value().map_err(e)?;
    if got != 42 {
        return Err(format!("rank {}: the fenced master-node result is {got}", q.rank()));
    }
    Ok(())
}

/// Master-node host tasks only rank 0 runs (2000 of 1 ms, chained through a host object): the other ranks, with
/// nothing to run, get ahead of rank 0, yet their divergence checks awaiting rank 0 stay bounded (they ran ahead
/// without bound, holding every window: `RankStats::divergence_windows`).
fn master_node_ahead(q: &Queue) -> Result<(), String> {
    use celer::unstable::scheduler::graph::task_manager::DEFAULT_HORIZON_STEP;
    use celer::unstable::scheduler::{config::DEFAULT_SUBMIT_AHEAD, runtime::DIVERGENCE_WINDOWS};
    const TASKS: u64 = 2000;
    let count = q.host_object(0u64);
    for _ in 0..TASKS {
        q.submit(task::host_once().side_effect(&count).name("master step").run(|ctx| {
            std::thread::sleep(std::time::Duration::from_millis(1));
            ctx.with_object::<u64, _>(0, |n| *n += 1);
        }))
        .map_err(e)?;
    }
    let windows = q.stats().map_or(0, |s| s.divergence_windows);
    // Each rank submits at most `CELER_SUBMIT_AHEAD` horizons past what it reports completed; host tasks close
    // windows too, so each horizon step of this chain is a window per host task and one for the horizon.
    let bound = (DIVERGENCE_WINDOWS + (DEFAULT_SUBMIT_AHEAD + 2) * (DEFAULT_HORIZON_STEP as usize + 1)) as u64;
    if windows > bound {
        return Err(format!(
            "rank {}: {windows} windows of the divergence check await rank 0 (more than {bound})",
            q.rank()
        ));
    }
    let counted = q.fence_object(&count).map_err(e)?;
    let want = if q.rank() == 0 { TASKS } else { 0 };
    if counted != want {
        return Err(format!("rank {}: the master-node tasks counted {counted}, want {want}", q.rank()));
    }
    Ok(())
}

/// Celerity's `even_split` for chunk `[o, o + r)` of `g` items over `b` rows in blocks of `k` (its definition, chunk
/// by chunk): the first row and the number of rows. Every chunk gets `r` steps of `⌊b / (g·k)⌋·k` rows; the remainder
/// goes out a block at a time to the first items, and its part below one block to the chunk that ends the space.
fn celerity_even_split(o: usize, r: usize, g: usize, b: usize, k: usize) -> (usize, usize) {
    let step = b / (g * k) * k;
    let remainder = b - g * step;
    let before = (remainder / k * k).min(o * k);
    let mut rows = r * step;
    if remainder > before {
        rows += r.min((remainder - before) / k) * k;
        if o + r == g {
            rows += remainder % k;
        }
    }
    (o * step + before, rows)
}

/// Range mappers that read the task's whole index space: `even_split` (a collective host task: item r is rank r;
/// and a host task over an offset index space, in blocks of 2 rows) and custom mappers over an offset index space.
/// Every chunk checks the rows it got against Celerity's definition and writes its cells; the buffers, fenced, must
/// hold the serial result (each cell written once).
fn index_space_mappers(q: &Queue) -> Result<Vec<String>, String> {
    let problems = Arc::new(Mutex::new(Vec::<String>::new()));
    let ranks = q.ranks();
    // 10 rows (uneven over 3 ranks) and 2 rows (fewer than 3 ranks), 4 columns each, through a collective task.
    for rows in [10usize, 2] {
        let m = q.buffer::<u32, 2>([rows, 4]).named("split_rows");
        let seen = Arc::clone(&problems);
        q.submit(task::host_collective().discard_write(&m, access::even_split()).run(move |ctx| {
            let (r, _) = (ctx.chunk().min()[0], ctx.chunk().max()[0]);
            let (first, n) = celerity_even_split(r, 1, ranks, rows, 1);
            let got = ctx.bounds::<2>(0);
            if got != GridBox::new([first, 0], [first + n, 4]) && !(n == 0 && got.area() == 0) {
                seen.lock().unwrap().push(format!("even_split gave rank {r} of {ranks} {got:?} of {rows} rows"));
            }
            let min = got.min();
            for (k, v) in ctx.data_mut::<u32>(0).iter_mut().enumerate() {
                *v = (1000 * (min[0] + k / 4) + k % 4) as u32;
            }
        }))
        .map_err(e)?;
        let got = q.fence(&m).map_err(e)?.wait().map_err(e)?;
        let want: Vec<u32> = (0..rows * 4).map(|k| (1000 * (k / 4) + k % 4) as u32).collect();
        if got != want {
            problems.lock().unwrap().push(format!("even_split over {rows} rows left {got:?}"));
        }
    }
    // 5 items from 100 over 13 rows in blocks of 2: chunks counted from the index space's start.
    let (items, rows, start) = (5usize, 13usize, 100usize);
    let v = q.buffer::<u32, 1>([rows]).named("blocks");
    let seen = Arc::clone(&problems);
    let split = access::even_split().granularity(2);
    q.submit(task::host_for([items]).offset([start]).discard_write(&v, split).run(move |ctx| {
        let (o, r) = (ctx.chunk().min()[0] - start, ctx.chunk().range()[0]);
        let (first, n) = celerity_even_split(o, r, items, rows, 2);
        let got = ctx.bounds::<1>(0);
        if got != GridBox::d1(first, first + n) && !(n == 0 && got.area() == 0) {
            seen.lock().unwrap().push(format!("even_split in blocks of 2 gave chunk {:?} {got:?}", ctx.chunk()));
        }
        let min = got.min()[0];
        for (k, c) in ctx.data_mut::<u32>(0).iter_mut().enumerate() {
            *c = (min + k) as u32 + 1;
        }
    }))
    .map_err(e)?;
    let got = q.fence(&v).map_err(e)?.wait().map_err(e)?;
    if got != (1..=rows as u32).collect::<Vec<_>>() {
        problems.lock().unwrap().push(format!("even_split in blocks of 2 left {got:?}"));
    }
    // Custom mappers over [20, 32): item i, at p = i - 20 from the start, reads cells [2p, 2p + 2) of `src` and
    // writes cell p of `out` (this mapper declares its reach).
    let (n, start) = (12usize, 20usize);
    let squares: Vec<u32> = (0..2 * n as u32).map(|k| k * k).collect();
    let src = q.buffer_from(&squares, [2 * n]).named("pairs");
    let out = q.buffer::<u32, 1>([n]).named("sums");
    let pairs = access::custom_in("pairs", |chunk: &GridBox<1>, space: &GridBox<1>, _: &GridBox<1>| {
        let s = space.min()[0];
        Region::from(GridBox::d1(2 * (chunk.min()[0] - s), 2 * (chunk.max()[0] - s)))
    });
    let relative = access::custom_in("relative", |chunk: &GridBox<1>, space: &GridBox<1>, _: &GridBox<1>| {
        let s = space.min()[0];
        Region::from(GridBox::d1(chunk.min()[0] - s, chunk.max()[0] - s))
    })
    .reach(|cells: &GridBox<1>, space: &GridBox<1>| {
        let s = space.min()[0];
        GridBox::d1(cells.min()[0] + s, cells.max()[0] + s).intersection(space)
    });
    let seen = Arc::clone(&problems);
    q.submit(task::host_for([n]).offset([start]).read(&src, pairs).discard_write(&out, relative).run(move |ctx| {
        let p = ctx.chunk().min()[0] - start;
        let (from, to) = (ctx.bounds::<1>(0), ctx.bounds::<1>(1));
        if from.min()[0] != 2 * p || to.min()[0] != p {
            seen.lock().unwrap().push(format!("chunk {:?} read {from:?} and wrote {to:?}", ctx.chunk()));
            return;
        }
        let read = ctx.data::<u32>(0).to_vec();
        for (k, c) in ctx.data_mut::<u32>(1).iter_mut().enumerate() {
            *c = read[2 * k] + read[2 * k + 1];
        }
    }))
    .map_err(e)?;
    let got = q.fence(&out).map_err(e)?.wait().map_err(e)?;
    let want: Vec<u32> = (0..n as u32).map(|p| (2 * p) * (2 * p) + (2 * p + 1) * (2 * p + 1)).collect();
    if got != want {
        problems.lock().unwrap().push(format!("custom_in mappers over [20, 32) left {got:?}, want {want:?}"));
    }
    let p = problems.lock().unwrap().clone();
    Ok(p)
}

fn run(q: &Queue) -> Result<(), String> {
    let mut problems = Vec::new();
    let mut chunks = 0;
    for split_2d in [false, true] {
        let (p, n) = mappers(q, split_2d)?;
        problems.extend(p);
        chunks += n;
    }
    problems.extend(granularity(q)?);
    problems.extend(index_space_mappers(q)?);
    if !problems.is_empty() {
        return Err(problems.join("; "));
    }
    // Every rank ran a chunk of each mapper task (8 rows and 6 columns split over at most 4 ranks x 2 devices).
    if chunks < 2 {
        return Err(format!("rank {} checked {chunks} chunks", q.rank()));
    }
    host_tasks(q)?;
    master_node_ahead(q)
}

fn main() -> ExitCode {
    // `--devices N`: every rank drives N devices (CELER_DEVICES); the results must not change.
    let args: Vec<String> = std::env::args().collect();
    common::env_from_arg(&args, "--devices", "CELER_DEVICES");
    celer::logging::init();
    common::run_on_every_rank(
        "e2e_porting",
        "Celerity's mappers (even_split and index-space mappers too), splits and host-task idioms verified",
        run,
    )
}
