//! End to end, on real ranks: index spaces with an offset (`.offset(..)`, Celerity's `parallel_for(range, offset,
//! ..)` and `host_task(range, offset, ..)`) and global workgroup ids (the prelude's `celer_group_Nd`), checked
//! against serial results computed here.
//!
//! - A Jacobi sweep launched over the interior of a 2D grid only (`kernels/offset.wgsl`, which has no boundary test),
//!   split along dimension 0, as a grid (`split_2d`) and with a granularity, several steps.
//! - Host tasks over an offset range: each chunk lies in the offset index space, starts at a multiple of the
//!   granularity counted from the offset, and gets the boxes Celerity's mappers give (one_to_one, slice, neighborhood,
//!   fixed, all, a custom mapper, transposed) with their data; the chunks cover exactly the offset box.
//! - Reductions over an offset range: atomic (`reduce`, `reduce_including`) and deterministic block reductions.
//! - Each item's global workgroup index (`kernels/groups.wgsl`), 1D, 2D (also `split_2d`) and 3D, at offset 0 and at
//!   offsets that are no multiple of the workgroup, while the kernel reads a halo other ranks write; and over more
//!   workgroups than one dispatch takes (a launch run as several dispatches).
//!
//! A test that ignored the offset would write cells outside the offset box, or none of its last rows, and fail.
//! Runs with `CELER_OVERLAP=4`, so kernels waiting for a halo may run their interior first (a launch of their own).
//! Run alone (one rank) or under `mpirun -n N`, with `--devices N` for N devices per rank and `--check-bounds` for
//! checked kernels; `./x test` does all three.

use std::process::ExitCode;
use std::sync::{Arc, Mutex};

mod common;

use celer::{access, kernels, task, GridBox, Kernel, Queue, ReductionOp, Region};

/// The kernels of `kernels/` (offset and groups here).
#[allow(dead_code)] // kernels/ holds the kernels of several tests and examples
mod own_kernels {
    celer::include_kernels!();
}

fn e(x: impl std::fmt::Display) -> String {
    x.to_string()
}

/// How the interior sweep is split.
#[derive(Clone, Copy, Debug)]
enum Split {
    OneD,
    TwoD,
    Granular,
}

/// `steps` Jacobi sweeps over the interior of a `rows` x `cols` grid, alternating between two buffers, compared
/// with the same sweeps computed serially.
fn interior_sweeps(q: &Queue, split: Split) -> Result<(), String> {
    let (rows, cols, steps) = (13usize, 11usize, 4usize);
    let init: Vec<f32> = (0..rows * cols).map(|k| ((k * 37) % 17) as f32 - 8.0).collect();
    let kernel = Kernel::wgsl(&own_kernels::OFFSET, "interior_2d").map_err(e)?;
    let bufs = [q.buffer_from(&init, [rows, cols]).named("grid_a"), q.buffer_from(&init, [rows, cols]).named("grid_b")];
    for s in 0..steps {
        let (src, dst) = (&bufs[s % 2], &bufs[(s + 1) % 2]);
        let mut t = task::parallel_for(&kernel, [rows - 2, cols - 2])
            .offset([1, 1])
            .read(src, access::neighborhood_along_axes([1, 1]))
            .discard_write(dst, access::one_to_one())
            .name("interior");
        t = match split {
            Split::OneD => t,
            Split::TwoD => t.split_2d(),
            Split::Granular => t.granularity([3, 1]),
        };
        q.submit(t).map_err(e)?;
    }
    let got = q.fence(&bufs[steps % 2]).map_err(e)?.wait().map_err(e)?;
    // Serially: the same sums in the same order.
    let (mut a, mut b) = (init.clone(), init.clone());
    for _ in 0..steps {
        for i in 1..rows - 1 {
            for j in 1..cols - 1 {
                let s = a[(i - 1) * cols + j] + a[(i + 1) * cols + j] + a[i * cols + j - 1] + a[i * cols + j + 1];
                b[i * cols + j] = 0.25 * s;
            }
        }
        std::mem::swap(&mut a, &mut b);
    }
    match (0..rows * cols).find(|&k| (got[k] - a[k]).abs() > 1e-5 * a[k].abs().max(1.0)) {
        None => Ok(()),
        Some(k) => Err(format!(
            "interior sweep ({split:?}) on {} rank(s): cell [{}, {}] holds {}, the serial result is {}",
            q.ranks(),
            k / cols,
            k % cols,
            got[k],
            a[k]
        )),
    }
}

/// The box Celerity's mapper `which` gives chunk `chunk` of a buffer of `extent` (see `host_offset`; `transposed`, a
/// custom mapper in Celerity's `distr_io` example, is celer's built-in).
fn celerity_box(which: usize, chunk: &GridBox<2>, extent: [usize; 2]) -> GridBox<2> {
    let (lo, hi) = (chunk.min(), chunk.max());
    match which {
        0 => *chunk,                                                       // one_to_one
        1 => GridBox::new([lo[0], 0], [hi[0], extent[1]]),                 // slice(1)
        2 => GridBox::new([lo[0] - 1, lo[1] - 1], [hi[0] + 1, hi[1] + 1]), // neighborhood([1, 1]), inside here
        3 => GridBox::new([2, 1], [4, 3]),                                 // fixed([2, 1], [2, 2])
        4 => GridBox::new([0, 0], extent),                                 // all
        5 => GridBox::new([lo[0] - 1, lo[1]], [hi[0] - 1, hi[1]]),         // the custom "row_above"
        _ => GridBox::new([lo[1], lo[0]], [hi[1], hi[0]]),                 // transposed (of a [7, 9] buffer)
    }
}

/// Host tasks over the index space `[2, 7) x [1, 5)` of `[9, 7]` buffers (Celerity's `host_task(range, offset, f)`),
/// split along dimension 0, as a grid, and with a granularity of 2 rows: each chunk lies in the offset box (and
/// starts at a whole granule counted from the offset), gets each mapper's box and data, and writes its cells; the
/// chunks cover exactly the offset box.
fn host_offset(q: &Queue, split: Split) -> Result<(), String> {
    const EXTENT: [usize; 2] = [9, 7];
    let (offset, range) = ([2usize, 1usize], [5usize, 4usize]);
    let index_space = GridBox::from_subrange(offset, range);
    let cells: Vec<u32> = (0..EXTENT[0] * EXTENT[1]).map(|k| (100 * (k / EXTENT[1]) + k % EXTENT[1]) as u32).collect();
    let src: Vec<_> = (0..6).map(|i| q.buffer_from(&cells, EXTENT).named(format!("host_src_{i}"))).collect();
    // The transposed buffer: [7, 9], cell [i, j] holding 100 i + j as well.
    let cells_t: Vec<u32> =
        (0..EXTENT[0] * EXTENT[1]).map(|k| (100 * (k / EXTENT[0]) + k % EXTENT[0]) as u32).collect();
    let src_t = q.buffer_from(&cells_t, [EXTENT[1], EXTENT[0]]).named("host_src_t");
    let out = q.buffer_from(&vec![0u32; EXTENT[0] * EXTENT[1]], EXTENT).named("host_out");
    let row_above = access::custom("row_above", |chunk: &GridBox<2>, _extent: &GridBox<2>| {
        Region::from(GridBox::new([chunk.min()[0] - 1, chunk.min()[1]], [chunk.max()[0] - 1, chunk.max()[1]]))
    });
    let problems = Arc::new(Mutex::new(Vec::<String>::new()));
    let seen = Arc::clone(&problems);
    let mut t = task::host_for(range)
        .offset(offset)
        .read(&src[0], access::one_to_one())
        .read(&src[1], access::slice(1))
        .read(&src[2], access::neighborhood([1, 1]))
        .read(&src[3], access::fixed([2, 1], [2, 2]))
        .read(&src[4], access::all())
        .read(&src[5], row_above)
        .read(&src_t, access::transposed())
        .write(&out, access::one_to_one())
        .name("host_offset");
    t = match split {
        Split::OneD => t,
        Split::TwoD => t.split_2d(),
        Split::Granular => t.granularity([2, 1]),
    };
    q.submit(t.run(move |ctx| {
        let chunk = ctx.chunk();
        let mut found = Vec::new();
        if !index_space.contains(&chunk) || chunk.is_empty() {
            found.push(format!("chunk {chunk:?} outside the index space {index_space:?}"));
        }
        if matches!(split, Split::Granular) && (chunk.min()[0] - offset[0]) % 2 != 0 {
            found.push(format!("chunk {chunk:?} does not start at a granule of 2 rows counted from row 2"));
        }
        for which in 0..7 {
            let (got, want) = (ctx.bounds::<2>(which), celerity_box(which, &chunk, EXTENT));
            if got != want {
                found.push(format!("mapper {which} gave chunk {chunk:?} the box {got:?}, Celerity's gives {want:?}"));
                continue;
            }
            let (min, r) = (got.min(), got.range());
            for (k, &v) in ctx.data::<u32>(which).iter().enumerate() {
                let (i, j) = (min[0] + k / r[1], min[1] + k % r[1]);
                if v != (100 * i + j) as u32 {
                    found.push(format!("mapper {which}, chunk {chunk:?}: cell [{i}, {j}] holds {v}"));
                    break;
                }
            }
        }
        let (min, r) = (chunk.min(), chunk.range());
        for (k, v) in ctx.data_mut::<u32>(7).iter_mut().enumerate() {
            *v = (1000 + 100 * (min[0] + k / r[1]) + min[1] + k % r[1]) as u32;
        }
        seen.lock().unwrap().extend(found);
    }))
    .map_err(e)?;
    let got = q.fence(&out).map_err(e)?.wait().map_err(e)?;
    let mut p = problems.lock().unwrap().clone();
    for (k, &v) in got.iter().enumerate() {
        let (i, j) = (k / EXTENT[1], k % EXTENT[1]);
        let want = if index_space.contains_point([i, j]) { (1000 + 100 * i + j) as u32 } else { 0 };
        if v != want {
            p.push(format!("cell [{i}, {j}] of the output holds {v}, not {want}"));
            break;
        }
    }
    if p.is_empty() {
        Ok(())
    } else {
        Err(format!("host task over an offset range ({split:?}): {}", p.join("; ")))
    }
}

/// Sums over `[o, o + n)` of a buffer: atomic (`reduce`, and `reduce_including` twice into a running total) and
/// deterministic (block reductions of 256-item workgroups, counted from the offset).
fn reductions(q: &Queue) -> Result<(), String> {
    let len = 1100usize;
    let data: Vec<i32> = (0..len as i32).map(|i| (i * 7919) % 1001 - 500).collect();
    let input = q.buffer_from(&data, [len]).named("reduce_data");
    let sum = |o: usize, n: usize| data[o..o + n].iter().sum::<i32>();
    let atomic = Kernel::wgsl(&kernels::REDUCE_I32, "reduce_sum").map_err(e)?;
    let block = Kernel::wgsl(&own_kernels::BLOCK_I32, "reduce_sum").map_err(e)?;
    for (o, n) in [(3usize, 1000usize), (100, 777), (0, 1100)] {
        for (kernel, what) in [(&atomic, "atomic"), (&block, "block")] {
            let total = q.buffer::<i32, 1>([1]).named("reduce_total");
            let t = task::parallel_for(kernel, [n]).offset([o]).read(&input, access::one_to_one());
            q.submit(t.reduce(&total, ReductionOp::Sum)).map_err(e)?;
            let got = q.fence(&total).map_err(e)?.wait().map_err(e)?[0];
            if got != sum(o, n) {
                return Err(format!(
                    "{what} sum over [{o}, {}) on {} rank(s) is {got}, not {}",
                    o + n,
                    q.ranks(),
                    sum(o, n)
                ));
            }
        }
        let running = q.buffer_from(&[5i32], [1]).named("running_total");
        for _ in 0..2 {
            let t = task::parallel_for(&atomic, [n]).offset([o]).read(&input, access::one_to_one());
            q.submit(t.reduce_including(&running, ReductionOp::Sum)).map_err(e)?;
        }
        let got = q.fence(&running).map_err(e)?.wait().map_err(e)?[0];
        if got != 5 + 2 * sum(o, n) {
            return Err(format!("accumulated sum over [{o}, {}) is {got}, not {}", o + n, 5 + 2 * sum(o, n)));
        }
    }
    Ok(())
}

/// The halo `groups.wgsl` adds: `src` at the cells before and after `cell` along dimension 0, where they exist.
fn halo(src: &[u32], extent: &[usize], cell: &[usize]) -> u32 {
    let stride: usize = extent[1..].iter().product();
    let k: usize = cell.iter().zip(extent).fold(0, |k, (&c, &x)| k * x + c);
    let before = if cell[0] > 0 { src[k - stride] } else { 0 };
    let after = if cell[0] + 1 < extent[0] { src[k + stride] } else { 0 };
    before + after
}

/// One run of a kernel of `groups.wgsl` in `D` dimensions.
struct GroupCase<const D: usize> {
    /// The entry point.
    entry: &'static str,
    /// The buffers' extent.
    extent: [usize; D],
    /// The index space's range and offset.
    range: [usize; D],
    offset: [usize; D],
    /// The workgroup's items along each dimension, dimension 0 first.
    size: [usize; D],
    split_2d: bool,
    /// What the kernel writes, from the item's global workgroup index and its halo.
    value: fn([usize; D], u32) -> u32,
}

/// Runs `case` on buffers whose source a host task writes just before (so ranks exchange its halo): every cell of
/// the index space must hold `value(global workgroup index of its item, halo)`, where the serial workgroup of item
/// `i` along dimension `d` is `offset[d] / size[d] + (i - offset[d]) / size[d]`; every other cell keeps its
/// sentinel.
fn groups<const D: usize>(q: &Queue, case: GroupCase<D>) -> Result<(), String> {
    let GroupCase { entry, extent, range, offset, size, split_2d, value } = case;
    const SENTINEL: u32 = u32::MAX;
    let cells: usize = extent.iter().product();
    let kernel = Kernel::wgsl(&own_kernels::GROUPS, entry).map_err(e)?;
    let src = q.buffer::<u32, D>(extent).named("group_src");
    let out = q.buffer_from(&vec![SENTINEL; cells], extent).named("group_out");
    // Written by a host task split like the kernel: each rank's kernel reads its neighbours' rows.
    q.submit(task::host_for(extent).discard_write(&src, access::one_to_one()).run(|ctx| {
        let chunk = ctx.chunk();
        let (min, r) = (chunk.min(), chunk.range());
        for (k, v) in ctx.data_mut::<u32>(0).iter_mut().enumerate() {
            *v = ((min[0] + k / r[1..].iter().product::<usize>()) % 7 + 1) as u32;
        }
    }))
    .map_err(e)?;
    let mut t = task::parallel_for(&kernel, range)
        .offset(offset)
        .read(&src, access::neighborhood([1; D]))
        .write(&out, access::one_to_one())
        .name(entry);
    if split_2d {
        t = t.split_2d();
    }
    q.submit(t).map_err(e)?;
    let src_data = q.fence(&src).map_err(e)?.wait().map_err(e)?;
    let got = q.fence(&out).map_err(e)?.wait().map_err(e)?;
    for (k, &v) in got.iter().enumerate() {
        let mut cell = [0usize; D];
        let mut rest = k;
        for d in (0..D).rev() {
            cell[d] = rest % extent[d];
            rest /= extent[d];
        }
        let inside = (0..D).all(|d| cell[d] >= offset[d] && cell[d] < offset[d] + range[d]);
        let want = if inside {
            let group = std::array::from_fn(|d| offset[d] / size[d] + (cell[d] - offset[d]) / size[d]);
            value(group, halo(&src_data, &extent, &cell))
        } else {
            SENTINEL
        };
        if v != want {
            return Err(format!(
                "groups::{entry} over range {range:?} at offset {offset:?} (split_2d: {split_2d}) on {} rank(s): \
                 cell {cell:?} holds {v}, the serial result is {want}",
                q.ranks()
            ));
        }
    }
    Ok(())
}

fn run(q: &Queue) -> Result<(), String> {
    for split in [Split::OneD, Split::TwoD, Split::Granular] {
        interior_sweeps(q, split)?;
        host_offset(q, split)?;
    }
    reductions(q)?;
    // 1D: workgroups of 4; offsets 0, 5 (inside a workgroup), 8 (a whole one).
    for offset in [0usize, 5, 8] {
        let value = |g: [usize; 1], h: u32| 1000 * g[0] as u32 + h;
        let (extent, range, size) = ([60], [47], [4]);
        groups(q, GroupCase { entry: "groups_1d", extent, range, offset: [offset], size, split_2d: false, value })?;
    }
    // 75 001 workgroups: more than a dispatch takes on lavapipe (65 535), so one rank's launch runs as two
    // dispatches, the second starting at workgroup 65 535 of its chunk.
    let (extent, range, size) = ([300_010], [300_003], [4]);
    let value = |g: [usize; 1], h: u32| 1000 * g[0] as u32 + h;
    groups(q, GroupCase { entry: "groups_1d", extent, range, offset: [6], size, split_2d: false, value })?;
    // 2D: workgroups of 2 rows x 4 columns.
    let value = |g: [usize; 2], h: u32| 1_000_000 * g[0] as u32 + 1000 * g[1] as u32 + h;
    for (offset, split_2d) in [([0, 0], false), ([0, 0], true), ([1, 3], false), ([3, 5], true)] {
        let (extent, range, size) = ([15, 17], [11, 9], [2, 4]);
        groups(q, GroupCase { entry: "groups_2d", extent, range, offset, size, split_2d, value })?;
    }
    // 3D: workgroups of 4 x 3 x 2 (dimension 0 first).
    let value = |g: [usize; 3], h: u32| (10000 * g[0] + 100 * g[1] + g[2]) as u32 + h;
    for offset in [[0, 0, 0], [1, 2, 1]] {
        let (extent, range, size) = ([11, 9, 7], [9, 7, 5], [4, 3, 2]);
        groups(q, GroupCase { entry: "groups_3d", extent, range, offset, size, split_2d: false, value })?;
    }
    Ok(())
}

fn main() -> ExitCode {
    // `--devices N`: every rank drives N devices (CELER_DEVICES); the results must not change.
    let args: Vec<String> = std::env::args().collect();
    common::env_from_arg(&args, "--devices", "CELER_DEVICES");
    // `--check-bounds`: kernels run checked (CELER_CHECK_BOUNDS): every access must lie in what its mapper declared
    // for the offset chunk.
    if args.iter().any(|a| a == "--check-bounds") {
        std::env::set_var("CELER_CHECK_BOUNDS", "on");
    }
    // Kernels waiting for a halo run their interior first even here, where chunks are small.
    std::env::set_var("CELER_OVERLAP", "4");
    celer::logging::init();
    common::run_on_every_rank("e2e_offset", "index spaces with an offset and global workgroup ids verified", run)
}
