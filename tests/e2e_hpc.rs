//! End to end, on real ranks and a real Vulkan device: HPC codes as a porter writes them, each against a serial
//! reference computed in the same program.
//!
//! - An exclusive prefix sum of 100 003 `u32` in three kinds of pass: block scans in workgroup memory that also
//!   store each block's total through a custom mapper (item i → cell i / 64, with a reach), Hillis-Steele steps over
//!   the block totals through a custom mapper that reads `stride` cells back, and a pass adding each block's offset
//!   in place (`read_write`).
//! - A bitonic sort of 3 000 keys padded to 4 096: 78 compare-exchange stages, each a gather through a custom mapper
//!   of the chunk's aligned 2j-blocks (with a reach), alternating two buffers; the keys fenced as a subrange.
//! - An odd-even transposition sort in place: each phase orders disjoint pairs through `read_write` and a mapper.
//! - A host task writing every other cell of 2 000 through a custom mapper of one-cell boxes, fenced on every rank:
//!   its upload and the pushes of its 1 000 boxes each take one staging buffer (`RankStats::staging_buffers`).
//! - A 3D 7-point Jacobi stencil over the interior of a 20 × 18 × 16 grid (an offset index space, a fixed boundary,
//!   `neighborhood_along_axes`), 6 steps alternating two buffers, split along dimension 0 and with `split_2d`; then
//!   a 3D host task computing the Laplacian (3D chunks and views), a plane overwritten in place by a host task
//!   through `write`, and a 3D subrange fence.
//! - Three CSR sparse matrix-vector products (row pointers, column indices and values, each read through its own
//!   custom mapper; x through `all`), a log kept in a host object by master-node tasks, and a collective host task
//!   that sums each rank's `even_split` rows into a cell of its own, recording the rows it saw in a per-rank host
//!   object.
//! - A particle code: GPU steps that count particles per cell with atomics (each workgroup into a row of its own)
//!   and sum the kinetic energy in a deterministic block reduction, a log of both kept in a host object by
//!   master-node tasks, and checkpoints written by the collective tasks of a group into per-rank host objects.
//!
//! `--small` runs each code at sizes around the workgroup and below the rank count (1 to 200 items, 3D grids with
//! 1 to 35 interior cells). Run alone (one rank) or under `mpirun -n N`, with `--devices N` for N devices per rank;
//! `./x test` runs it on 2 ranks (also with 2 devices per rank) and `--small` on 3.

use std::process::ExitCode;
use std::sync::Arc;

mod common;

use celer::{access, task, Buffer, GridBox, Kernel, Queue, Region};

#[allow(dead_code)] // kernels/ holds the kernels of several tests and examples
mod kernels {
    celer::include_kernels!();
}

fn e(x: impl std::fmt::Display) -> String {
    x.to_string()
}

fn fenced<T: celer::Element + Copy>(q: &Queue, b: &Buffer<'_, T, 1>) -> Result<Vec<T>, String> {
    q.fence(b).map_err(e)?.wait().map_err(e)
}

/// A cheap deterministic hash for test data.
fn mix(i: usize) -> u64 {
    let mut x = (i as u64).wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// The block (of 64 items, a workgroup of scan_block.wgsl) cells of a chunk: item i touches cell i / 64.
fn blocks_of(name: &'static str, blocks: usize) -> celer::access::Custom<1, 1> {
    access::custom(name, move |chunk: &GridBox<1>, _: &GridBox<1>| {
        if chunk.min()[0] == chunk.max()[0] {
            return Region::new();
        }
        Region::from(GridBox::d1(chunk.min()[0] / 64, chunk.max()[0].div_ceil(64).min(blocks)))
    })
    .reach(|cells: &GridBox<1>, range: &GridBox<1>| {
        GridBox::d1(cells.min()[0] * 64, cells.max()[0] * 64).intersection(range)
    })
}

/// Exclusive prefix sum in three kinds of pass.
fn scan(q: &Queue, n: usize) -> Result<(), String> {
    let blocks = n.div_ceil(64);
    let values: Vec<u32> = (0..n).map(|i| (mix(i) % 100) as u32).collect();
    let data = q.buffer_from(&values, [n]).named("scan_in");
    let out = q.buffer::<u32, 1>([n]).named("scan_out");
    let sums = q.buffer::<u32, 1>([blocks]).named("block_sums");
    let pp = [q.buffer::<u32, 1>([blocks]).named("scan_ping"), q.buffer::<u32, 1>([blocks]).named("scan_pong")];

    let block_scan = Kernel::wgsl(&kernels::SCAN_BLOCK, "main").map_err(e)?;
    q.submit(
        task::parallel_for(&block_scan, [n])
            .read(&data, access::one_to_one())
            .discard_write(&out, access::one_to_one())
            .discard_write(&sums, blocks_of("block_of", blocks))
            .name("block_scan"),
    )
    .map_err(e)?;

    let step = Kernel::wgsl(&kernels::SCAN_STEP, "main").map_err(e)?;
    let mut cur = &sums;
    let mut stride = 1usize;
    let mut next_index = 0;
    while stride < blocks {
        let next = &pp[next_index];
        let back = access::custom("stride_back", move |chunk: &GridBox<1>, _: &GridBox<1>| {
            if chunk.min()[0] == chunk.max()[0] {
                return Region::new();
            }
            Region::from(GridBox::d1(chunk.min()[0].saturating_sub(stride), chunk.max()[0]))
        });
        q.submit(
            task::parallel_for(&step, [blocks])
                .read(cur, back)
                .discard_write(next, access::one_to_one())
                .scalars(&[stride as u32])
                .name(format!("scan_step_{stride}")),
        )
        .map_err(e)?;
        cur = next;
        next_index = 1 - next_index;
        stride *= 2;
    }

    let add = Kernel::wgsl(&kernels::SCAN_ADD, "main").map_err(e)?;
    q.submit(
        task::parallel_for(&add, [n])
            .read(cur, blocks_of("block_of", blocks))
            .read(&sums, blocks_of("block_of", blocks))
            .read_write(&out, access::one_to_one())
            .name("add_offsets"),
    )
    .map_err(e)?;

    let got = fenced(q, &out)?;
    let mut acc = 0u32;
    for (i, (&g, &v)) in got.iter().zip(&values).enumerate() {
        if g != acc {
            return Err(format!("scan: cell {i} is {g}, the serial exclusive prefix sum says {acc}"));
        }
        acc += v;
    }
    let block_sums = fenced(q, &sums)?;
    let want: Vec<u32> = values.chunks(64).map(|c| c.iter().sum()).collect();
    if block_sums != want {
        let i = block_sums.iter().zip(&want).position(|(a, b)| a != b).unwrap_or(0);
        return Err(format!("scan: block sum {i} is {}, want {}", block_sums[i], want[i]));
    }
    Ok(())
}

/// Bitonic sort of 3 000 keys, padded to 4 096 with u32::MAX.
fn bitonic(q: &Queue, real: usize) -> Result<(), String> {
    let n = real.next_power_of_two();
    let mut keys: Vec<u32> = (0..real).map(|i| (mix(i + 7) >> 20) as u32).collect();
    keys.resize(n, u32::MAX);
    let bufs = [q.buffer_from(&keys, [n]).named("keys_a"), q.buffer::<u32, 1>([n]).named("keys_b")];
    let stage = Kernel::wgsl(&kernels::BITONIC, "main").map_err(e)?;
    let mut src = 0;
    let mut stages = 0;
    let mut k = 2;
    while k <= n {
        let mut j = k / 2;
        while j >= 1 {
            let block = 2 * j;
            let partner = access::custom("partner_block", move |chunk: &GridBox<1>, extent: &GridBox<1>| {
                if chunk.min()[0] == chunk.max()[0] {
                    return Region::new();
                }
                let lo = chunk.min()[0] / block * block;
                let hi = (chunk.max()[0].div_ceil(block) * block).min(extent.max()[0]);
                Region::from(GridBox::d1(lo, hi))
            })
            .reach(move |cells: &GridBox<1>, range: &GridBox<1>| {
                let lo = cells.min()[0] / block * block;
                GridBox::d1(lo, cells.max()[0].div_ceil(block) * block).intersection(range)
            });
            q.submit(
                task::parallel_for(&stage, [n])
                    .read(&bufs[src], partner)
                    .discard_write(&bufs[1 - src], access::one_to_one())
                    .scalars(&[j as u32, k as u32])
                    .name(format!("bitonic_{k}_{j}")),
            )
            .map_err(e)?;
            src = 1 - src;
            stages += 1;
            j /= 2;
        }
        k *= 2;
    }
    let got = q.fence_subrange(&bufs[src], [0], [real]).map_err(e)?.wait().map_err(e)?;
    let mut want = keys[..real].to_vec();
    want.sort_unstable();
    if got != want {
        let i = got.iter().zip(&want).position(|(a, b)| a != b).unwrap_or(got.len().min(want.len()));
        return Err(format!(
            "bitonic sort ({stages} stages): key {i} is {:?}, the serial sort says {:?}",
            got.get(i),
            want.get(i)
        ));
    }
    Ok(())
}

/// Odd-even transposition sort in place: every phase orders disjoint pairs through `read_write` and a custom mapper.
fn odd_even(q: &Queue, n: usize) -> Result<(), String> {
    let keys: Vec<u32> = (0..n).map(|i| (mix(i + 11) % 1000) as u32).collect();
    let buf = q.buffer_from(&keys, [n]).named("oe_keys");
    let k = Kernel::wgsl(&kernels::ODDEVEN, "main").map_err(e)?;
    for pass in 0..n {
        let phase = pass % 2;
        let pairs = access::custom("pairs", move |chunk: &GridBox<1>, _: &GridBox<1>| {
            Region::from(GridBox::d1(2 * chunk.min()[0] + phase, 2 * chunk.max()[0] + phase))
        });
        q.submit(
            task::parallel_for(&k, [(n - phase) / 2])
                .read_write(&buf, pairs)
                .scalars(&[phase as u32])
                .name(format!("odd_even_{pass}")),
        )
        .map_err(e)?;
    }
    let got = fenced(q, &buf)?;
    let mut want = keys;
    want.sort_unstable();
    if got != want {
        let i = got.iter().zip(&want).position(|(a, b)| a != b).unwrap_or(0);
        return Err(format!("odd-even sort of {n}: key {i} is {}, the serial sort says {}", got[i], want[i]));
    }
    Ok(())
}

/// A host task writing every other cell of `n` through a custom mapper of one-cell boxes (a scattered write), read
/// back by a fence on every rank (pushed box by box to the others): the data, and that the transfers took a staging
/// buffer each, not one per box (a host task's `n / 2` boxes once took `n / 2` buffers of 4 KiB).
fn comb(q: &Queue, n: usize) -> Result<(), String> {
    let buf = q.buffer_from(&vec![u32::MAX; n], [n]).named("comb");
    let staging = || q.stats().map_or(0, |s| s.staging_buffers);
    let before = staging();
    let comb = access::custom("comb", |_: &GridBox<0>, extent: &GridBox<1>| {
        Region::from_boxes((0..extent.max()[0]).step_by(2).map(|i| GridBox::d1(i, i + 1)))
    });
    q.submit(task::host_once().discard_write(&buf, comb).name("comb").run(|ctx| {
        let first = ctx.bounds::<1>(0).min()[0];
        for (k, v) in ctx.data_mut::<u32>(0).iter_mut().enumerate() {
            *v = (first + k) as u32;
        }
    }))
    .map_err(e)?;
    let got = fenced(q, &buf)?;
    if let Some(i) = (0..n).find(|&i| got[i] != if i % 2 == 0 { i as u32 } else { u32::MAX }) {
        return Err(format!("comb of {n}: cell {i} holds {}", got[i]));
    }
    let taken = staging() - before;
    if taken > 16 {
        return Err(format!("comb of {n}: {taken} staging buffers for one host task's {} boxes and a fence", n / 2));
    }
    Ok(())
}

/// Jacobi steps of a 7-point stencil over the interior of a 3D grid.
fn stencil(q: &Queue, d: [usize; 3], split_2d: bool) -> Result<(), String> {
    let (w, steps) = (0.4f32, 6);
    let at = |x: usize, y: usize, z: usize| (x * d[1] + y) * d[2] + z;
    let init: Vec<f32> = (0..d[0] * d[1] * d[2]).map(|c| (mix(c) % 1000) as f32 / 100.0).collect();
    let bufs = [q.buffer_from(&init, d).named("grid_a"), q.buffer_from(&init, d).named("grid_b")];
    let k = Kernel::wgsl(&kernels::STENCIL7, "main").map_err(e)?;
    for s in 0..steps {
        let t = task::parallel_for(&k, [d[0] - 2, d[1] - 2, d[2] - 2])
            .offset([1, 1, 1])
            .read(&bufs[s % 2], access::neighborhood_along_axes([1, 1, 1]))
            .discard_write(&bufs[1 - s % 2], access::one_to_one())
            .scalar_f32(w)
            .name(format!("stencil_{s}"));
        q.submit(if split_2d { t.split_2d() } else { t }).map_err(e)?;
    }
    let got = q.fence(&bufs[steps % 2]).map_err(e)?.wait().map_err(e)?;
    let (mut cur, mut next) = (init.clone(), init);
    for _ in 0..steps {
        for x in 1..d[0] - 1 {
            for y in 1..d[1] - 1 {
                for z in 1..d[2] - 1 {
                    let n = ((cur[at(x - 1, y, z)] + cur[at(x + 1, y, z)])
                        + (cur[at(x, y - 1, z)] + cur[at(x, y + 1, z)]))
                        + (cur[at(x, y, z - 1)] + cur[at(x, y, z + 1)]);
                    next[at(x, y, z)] = (cur[at(x, y, z)] + w * n) / (1.0 + 6.0 * w);
                }
            }
        }
        std::mem::swap(&mut cur, &mut next);
    }
    for (c, (&g, &want)) in got.iter().zip(&cur).enumerate() {
        if (g - want).abs() > 1e-4 * want.abs().max(1.0) {
            let (x, y, z) = (c / (d[1] * d[2]), c / d[2] % d[1], c % d[2]);
            return Err(format!(
                "3D stencil (split_2d {split_2d}): cell [{x}, {y}, {z}] is {g}, the serial reference says {want}"
            ));
        }
    }

    // On the host, over the whole grid (3D chunks): the discrete Laplacian of the result (one-sided at the
    // boundary), then the plane z = 0 overwritten in place by a host task through `write` and a custom mapper.
    let result = &bufs[steps % 2];
    let lap = q.buffer::<f32, 3>(d).named("laplacian");
    let t = task::host_for(d)
        .read(result, access::neighborhood_along_axes([1, 1, 1]))
        .discard_write(&lap, access::one_to_one())
        .name("host_laplacian")
        .run(move |ctx| {
            let (src, chunk) = (ctx.bounds::<3>(0), ctx.chunk());
            let (smin, sr) = (src.min(), src.range());
            let vals: Vec<f32> = ctx.data::<f32>(0).to_vec();
            let v = |c: [usize; 3]| vals[((c[0] - smin[0]) * sr[1] + (c[1] - smin[1])) * sr[2] + (c[2] - smin[2])];
            let (cmin, cr) = (chunk.min(), chunk.range());
            let out = ctx.data_mut::<f32>(1);
            for (k, o) in out.iter_mut().enumerate() {
                let c = [cmin[0] + k / (cr[1] * cr[2]), cmin[1] + k / cr[2] % cr[1], cmin[2] + k % cr[2]];
                let mut acc = 0.0f32;
                for a in 0..3 {
                    let (mut lo, mut hi) = (c, c);
                    lo[a] = lo[a].saturating_sub(1);
                    hi[a] = (hi[a] + 1).min(d[a] - 1);
                    acc += v(lo) + v(hi) - 2.0 * v(c);
                }
                *o = acc;
            }
        });
    q.submit(if split_2d { t.split_2d() } else { t }).map_err(e)?;
    let plane = access::custom("plane_z0", |chunk: &GridBox<2>, _: &GridBox<3>| {
        Region::from(GridBox::new([chunk.min()[0], chunk.min()[1], 0], [chunk.max()[0], chunk.max()[1], 1]))
    });
    let t = task::host_for([d[0], d[1]]).write(&lap, plane).name("mark_plane").run(|ctx| {
        let b = ctx.bounds::<3>(0);
        let (bmin, br) = (b.min(), b.range());
        for (k, o) in ctx.data_mut::<f32>(0).iter_mut().enumerate() {
            *o = -(((bmin[0] + k / br[1]) * 1000 + bmin[1] + k % br[1]) as f32);
        }
    });
    q.submit(if split_2d { t.split_2d() } else { t }).map_err(e)?;
    let (o, r) = ([d[0] / 3, 1, 1], [d[0] - d[0] / 3, d[1] - 1, d[2] - 1]);
    let got = q.fence_subrange(&lap, o, r).map_err(e)?.wait().map_err(e)?;
    let mut k = 0;
    for x in o[0]..o[0] + r[0] {
        for y in o[1]..o[1] + r[1] {
            for z in o[2]..o[2] + r[2] {
                let mut want = 0.0f32;
                for a in 0..3 {
                    let c = [x, y, z];
                    let (mut lo, mut hi) = (c, c);
                    lo[a] = lo[a].saturating_sub(1);
                    hi[a] = (hi[a] + 1).min(d[a] - 1);
                    want += cur[at(lo[0], lo[1], lo[2])] + cur[at(hi[0], hi[1], hi[2])] - 2.0 * cur[at(x, y, z)];
                }
                if (got[k] - want).abs() > 1e-3 * want.abs().max(1.0) {
                    return Err(format!(
                        "3D host Laplacian (split_2d {split_2d}): cell [{x}, {y}, {z}] of the subrange fence is {}, \
                         want {want}",
                        got[k]
                    ));
                }
                k += 1;
            }
        }
    }
    let all = q.fence(&lap).map_err(e)?.wait().map_err(e)?;
    for x in 0..d[0] {
        for y in 0..d[1] {
            let want = -((x * 1000 + y) as f32);
            if all[at(x, y, 0)] != want {
                return Err(format!(
                    "plane z = 0 written in place (split_2d {split_2d}): cell [{x}, {y}, 0] is {}, want {want}",
                    all[at(x, y, 0)]
                ));
            }
        }
    }
    Ok(())
}

/// CSR matrix-vector products, a host-object log on the master node and collective per-rank checksums.
fn spmv(q: &Queue, n: usize) -> Result<(), String> {
    // Row i: its diagonal and up to three hashed columns; every 97th row is empty.
    let (mut row_ptr, mut cols, mut vals) = (vec![0u32], Vec::new(), Vec::new());
    for i in 0..n {
        if i % 97 != 13 {
            let mut row: Vec<usize> = vec![i, (i * 7 + 3) % n, (i * 13 + 1) % n, mix(i) as usize % n];
            row.truncate(1 + i % 4);
            row.sort_unstable();
            row.dedup();
            for c in row {
                cols.push(c as u32);
                vals.push(((mix(c + i) % 5) as f32 - 2.0) * 0.5);
            }
        }
        row_ptr.push(cols.len() as u32);
    }
    let nnz = cols.len();
    let x0: Vec<f32> = (0..n).map(|i| (mix(3 * i) % 7) as f32 - 3.0).collect();
    let rp = Arc::new(row_ptr.clone());

    let row_ptr_b = q.buffer_from(&row_ptr, [n + 1]).named("row_ptr");
    let cols_b = q.buffer_from(&cols, [nnz]).named("col_idx");
    let vals_b = q.buffer_from(&vals, [nnz]).named("vals");
    let xs = [q.buffer_from(&x0, [n]).named("x"), q.buffer::<f32, 1>([n]).named("y")];
    let spmv = Kernel::wgsl(&kernels::CSR_SPMV, "main").map_err(e)?;
    let log = q.host_object(Vec::<String>::new());
    let iterations = 3;
    for it in 0..iterations {
        let rows = access::custom("row_ptr_rows", |chunk: &GridBox<1>, _: &GridBox<1>| {
            if chunk.min()[0] == chunk.max()[0] {
                return Region::new();
            }
            Region::from(GridBox::d1(chunk.min()[0], chunk.max()[0] + 1))
        });
        let entries = |name: &'static str| {
            let rp = Arc::clone(&rp);
            access::custom(name, move |chunk: &GridBox<1>, _: &GridBox<1>| {
                Region::from(GridBox::d1(rp[chunk.min()[0]] as usize, rp[chunk.max()[0]] as usize))
            })
        };
        let (x, y) = (&xs[it % 2], &xs[1 - it % 2]);
        q.submit(
            task::parallel_for(&spmv, [n])
                .read(&row_ptr_b, rows)
                .read(&cols_b, entries("col_entries"))
                .read(&vals_b, entries("val_entries"))
                .read(x, access::all())
                .discard_write(y, access::one_to_one())
                .name(format!("spmv_{it}")),
        )
        .map_err(e)?;
        q.submit(task::host_once().read(y, access::all()).side_effect(&log).name(format!("log_{it}")).run(
            move |ctx| {
                let norm: f32 = ctx.data::<f32>(0).iter().map(|v| v.abs()).sum();
                ctx.with_object::<Vec<String>, _>(0, |l| l.push(format!("step {it}: |y|_1 = {norm}")));
            },
        ))
        .map_err(e)?;
    }
    let result = &xs[iterations % 2];
    let ranks = q.ranks();
    let partials = q.buffer::<f32, 1>([ranks]).named("rank_sums");
    let seen = q.host_object(Vec::<(usize, usize)>::new());
    q.submit(
        task::host_collective()
            .read(result, access::even_split())
            .discard_write(&partials, access::one_to_one())
            .side_effect(&seen)
            .name("rank_checksums")
            .run(|ctx| {
                let rows = ctx.bounds::<1>(0);
                let sum: f32 = ctx.data::<f32>(0).iter().sum();
                ctx.data_mut::<f32>(1)[0] = sum;
                ctx.with_object::<Vec<(usize, usize)>, _>(0, |s| s.push((rows.min()[0], rows.max()[0])));
            }),
    )
    .map_err(e)?;

    // The serial reference.
    let mut x = x0;
    let mut norms = Vec::new();
    for _ in 0..iterations {
        let y: Vec<f32> = (0..n)
            .map(|i| {
                let mut acc = 0.0f32;
                for k in row_ptr[i] as usize..row_ptr[i + 1] as usize {
                    acc += vals[k] * x[cols[k] as usize];
                }
                acc
            })
            .collect();
        norms.push(y.iter().map(|v| v.abs()).sum::<f32>());
        x = y;
    }
    let got = fenced(q, result)?;
    if let Some(i) = (0..n).find(|&i| got[i] != x[i]) {
        return Err(format!("spmv: row {i} of A^{iterations} x is {}, the serial reference says {}", got[i], x[i]));
    }
    let lines = q.fence_object(&log).map_err(e)?;
    let want_lines: Vec<String> = if q.rank() == 0 {
        norms.iter().enumerate().map(|(i, m)| format!("step {i}: |y|_1 = {m}")).collect()
    } else {
        vec![]
    };
    if lines != want_lines {
        return Err(format!("spmv: the host object's log on rank {} is {lines:?}, want {want_lines:?}", q.rank()));
    }
    // Rank r's rows under even_split: n / ranks each, the first n % ranks one more.
    let r = q.rank();
    let (base, extra) = (n / ranks, n % ranks);
    let lo = r * base + r.min(extra);
    let hi = lo + base + usize::from(r < extra);
    let seen = q.fence_object(&seen).map_err(e)?;
    // An empty block of rows is an empty box, wherever it lies.
    let seen: Vec<(usize, usize)> = seen.into_iter().map(|(a, b)| if a == b { (lo, lo) } else { (a, b) }).collect();
    if seen != [(lo, hi)] {
        return Err(format!("spmv: the collective task on rank {r} saw rows {seen:?}, want [({lo}, {hi})]"));
    }
    let sums = fenced(q, &partials)?;
    let want: Vec<f32> = (0..ranks)
        .map(|r| {
            let lo = r * base + r.min(extra);
            x[lo..lo + base + usize::from(r < extra)].iter().sum()
        })
        .collect();
    if sums != want {
        return Err(format!("spmv: the per-rank sums are {sums:?}, want {want:?}"));
    }
    Ok(())
}

/// A particle: position and velocity in the unit square (an `array<vec4<f32>>` element).
#[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C)]
struct Particle {
    pos: [f32; 2],
    vel: [f32; 2],
}

impl celer::Element for Particle {
    const SCALAR: celer::kernels::ScalarType = celer::kernels::ScalarType::F32;
}

/// Per-rank "files" of checkpoints: (step, first particle, the particles of this rank's block).
type Checkpoints = Vec<(usize, usize, Vec<Particle>)>;

/// A particle code: GPU steps with per-workgroup cell counts (atomics) and a deterministic energy sum, a log kept
/// by master-node tasks in a host object, and checkpoints written by collective tasks of a group to per-rank host
/// objects. Positions are multiples of 1/1024, velocities of 1/64 and dt is 1/16, so every position is exact.
fn particles(q: &Queue, n: usize, steps: usize) -> Result<(), String> {
    let (dt, ncells) = (1.0f32 / 16.0, 4usize);
    let init: Vec<Particle> = (0..n)
        .map(|i| {
            let h = mix(i + 99);
            let c = |s: u32, m: u64| ((h >> s) % m) as f32;
            Particle {
                pos: [c(0, 1024) / 1024.0, c(10, 1024) / 1024.0],
                vel: [(c(20, 127) - 63.0) / 64.0, (c(30, 127) - 63.0) / 64.0],
            }
        })
        .collect();
    let parts = q.buffer_from(&init, [n]).named("particles");
    let rows = n.div_ceil(256);
    let step = Kernel::wgsl(&kernels::PARTICLE_STEP, "main").map_err(e)?;
    let log = q.host_object(Vec::<(usize, Vec<u32>, f32)>::new());
    let files = q.host_object(Checkpoints::new());
    let io = q.collective_group();
    let per_row = access::custom("workgroup_row", |chunk: &GridBox<1>, extent: &GridBox<2>| {
        Region::from(GridBox::new([chunk.min()[0] / 256, 0], [chunk.max()[0].div_ceil(256), extent.max()[1]]))
    });
    for s in 0..steps {
        let counts = q.buffer_from(&vec![0u32; rows * ncells * ncells], [rows, ncells * ncells]).named("cell_counts");
        let energy = q.buffer::<f32, 0>([]).named("energy");
        q.submit(
            task::parallel_for(&step, [n])
                .read_write(&parts, access::one_to_one())
                .read_write(&counts, per_row.clone())
                .reduce(&energy, celer::ReductionOp::Sum)
                .scalar_f32(dt)
                .scalars(&[ncells as u32])
                .name(format!("particle_step_{s}")),
        )
        .map_err(e)?;
        q.submit(
            task::host_once()
                .read(&counts, access::all())
                .read(&energy, access::all())
                .side_effect(&log)
                .name(format!("log_{s}"))
                .run(move |ctx| {
                    let cells = ctx.bounds::<2>(0).range()[1];
                    let mut hist = vec![0u32; cells];
                    for (k, c) in ctx.data::<u32>(0).iter().enumerate() {
                        hist[k % cells] += c;
                    }
                    let en = ctx.data::<f32>(1)[0];
                    ctx.with_object::<Vec<(usize, Vec<u32>, f32)>, _>(0, |l| l.push((s, hist, en)));
                }),
        )
        .map_err(e)?;
        if s % 2 == 1 {
            q.submit(
                task::host_collective_in(&io)
                    .read(&parts, access::even_split())
                    .side_effect(&files)
                    .name(format!("checkpoint_{s}"))
                    .run(move |ctx| {
                        let first = ctx.bounds::<1>(0).min()[0];
                        let block = ctx.data::<Particle>(0).to_vec();
                        ctx.with_object::<Checkpoints, _>(0, |f| f.push((s, first, block)));
                    }),
            )
            .map_err(e)?;
        }
    }

    // The serial reference.
    let reflect = |p: f32, v: f32| {
        if p < 0.0 {
            (-p, -v)
        } else if p >= 1.0 {
            (2.0 - p, -v)
        } else {
            (p, v)
        }
    };
    let (ranks, r) = (q.ranks(), q.rank());
    let (base, extra) = (n / ranks, n % ranks);
    let (lo, hi) = (r * base + r.min(extra), (r + 1) * base + (r + 1).min(extra));
    let mut cur = init;
    let (mut want_log, mut want_files) = (Vec::new(), Checkpoints::new());
    for s in 0..steps {
        let mut hist = vec![0u32; ncells * ncells];
        let mut en = 0.0f32;
        for p in &mut cur {
            let (x, vx) = reflect(p.pos[0] + p.vel[0] * dt, p.vel[0]);
            let (y, vy) = reflect(p.pos[1] + p.vel[1] * dt, p.vel[1]);
            *p = Particle { pos: [x, y], vel: [vx, vy] };
            let cell = |v: f32| ((v * ncells as f32) as usize).min(ncells - 1);
            hist[cell(y) * ncells + cell(x)] += 1;
            en += 0.5 * (vx * vx + vy * vy);
        }
        want_log.push((s, hist, en));
        if s % 2 == 1 && lo < hi {
            want_files.push((s, lo, cur[lo..hi].to_vec()));
        }
    }
    let got = fenced(q, &parts)?;
    if let Some(i) = (0..n).find(|&i| got[i] != cur[i]) {
        return Err(format!("particles: particle {i} after {steps} steps is {:?}, serially {:?}", got[i], cur[i]));
    }
    let got_log = q.fence_object(&log).map_err(e)?;
    let want_log = if r == 0 { want_log } else { Vec::new() };
    let log_ok = got_log.len() == want_log.len()
        && got_log
            .iter()
            .zip(&want_log)
            .all(|(g, w)| g.0 == w.0 && g.1 == w.1 && (g.2 - w.2).abs() <= 1e-4 * w.2.max(1.0));
    if !log_ok {
        return Err(format!("particles: rank {r}'s log is {got_log:?}, want {want_log:?}"));
    }
    let mut got_files = q.fence_object(&files).map_err(e)?;
    got_files.retain(|f| !f.2.is_empty());
    if got_files != want_files {
        return Err(format!(
            "particles: rank {r}'s checkpoints hold steps and first particles {:?}, want {:?} (or other particles)",
            got_files.iter().map(|f| (f.0, f.1, f.2.len())).collect::<Vec<_>>(),
            want_files.iter().map(|f| (f.0, f.1, f.2.len())).collect::<Vec<_>>()
        ));
    }
    Ok(())
}

fn run(q: &Queue) -> Result<(), String> {
    if std::env::args().any(|a| a == "--small") {
        for n in [1, 2, 63, 64, 65, 129, 200] {
            scan(q, n).map_err(|m| format!("n = {n}: {m}"))?;
            bitonic(q, n).map_err(|m| format!("n = {n}: {m}"))?;
            spmv(q, n).map_err(|m| format!("n = {n}: {m}"))?;
            odd_even(q, n).map_err(|m| format!("n = {n}: {m}"))?;
            comb(q, n).map_err(|m| format!("n = {n}: {m}"))?;
            particles(q, n, 3).map_err(|m| format!("n = {n}: {m}"))?;
        }
        for d in [[3, 3, 3], [4, 3, 5], [5, 9, 3], [3, 7, 7]] {
            stencil(q, d, false).map_err(|m| format!("d = {d:?}: {m}"))?;
            stencil(q, d, true).map_err(|m| format!("d = {d:?}: {m}"))?;
        }
        return Ok(());
    }
    scan(q, 100_003)?;
    bitonic(q, 3000)?;
    odd_even(q, 150)?;
    comb(q, 2_000)?;
    stencil(q, [20, 18, 16], false)?;
    stencil(q, [20, 18, 16], true)?;
    spmv(q, 1000)?;
    particles(q, 5000, 6)?;
    Ok(())
}

fn main() -> ExitCode {
    // `--devices N`: every rank drives N devices (CELER_DEVICES); the results must not change.
    let args: Vec<String> = std::env::args().collect();
    common::env_from_arg(&args, "--devices", "CELER_DEVICES");
    celer::logging::init();
    common::run_on_every_rank(
        "e2e_hpc",
        "prefix sum, bitonic sort, 3D stencil and CSR products matched the serial references",
        run,
    )
}
