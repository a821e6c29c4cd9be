//! Soak of the patterns `soak` does not cover: each `--pattern` runs `--rounds N` rounds of one thing a long-running
//! program does, sampling this process's resident memory (and the device memory the runtime holds) ten times; the
//! run fails if resident memory grew by more than 10 % plus 4 MiB between the second sample (after warm-up) and the
//! last, and every result it can check is checked.
//!
//! - `shapes`: a buffer of another size and dimensionality (1D, 2D, 3D) every round, written, read and dropped.
//! - `kernels`: four kernels cycled, each `Kernel::wgsl` made anew every round.
//! - `objects`: a host object and a collective group created, used and dropped every round.
//! - `fences`: a fence every round; every second one is dropped without a wait.
//! - `names`: every task named `format!("step {i}")`.
//! - `reductions`: a reduction every round, its result fenced every 100 rounds.
//! - `host`: host tasks only (a chain over one buffer), no kernel.
//! - `rows`: a history of 64 rows, one row rewritten every round (each rank its half) and two whole rows read (the
//!   newest and the oldest): partial writes and reads of one buffer, with half-rows sent between ranks every round,
//!   so that its last-writer and reader maps hold many boxes from many tasks.
//! - `flood`: kernels over 2^18 cells with no wait at all: the program submits far faster than the device runs, so
//!   only `submit`'s back-pressure (`CELER_SUBMIT_AHEAD`) bounds what is queued. Sampled without waits.
//! - `reduce-with`: a reduction every round: `reduce_with` with a closure of its own (holding 4 KiB), the built-in
//!   minimum and maximum, and a sum folding in the old value (`reduce_including`), checked every 100 rounds.
//! - `subfences`: a `fence_subrange` of another box every round, eight kept in flight and the oldest waited for.
//! - `barriers`: a kernel and a `barrier` every round.
//! - `side-effects`: a host task on rank 0 with a side effect on one long-lived host object, and a host task over a
//!   buffer with a side effect on a new host object (16 KiB) every round, dropped after.
//! - `entries`: twenty kernel shapes (ten entry points of seven kernels, two access modes), more than `submit` keeps
//!   checks of, in rotation, each kernel made anew and given new scalar values every round.
//! - `creation`: a buffer created from 64 KiB of host data every round (1D, 2D, 3D), used and dropped.
//! - `mappers`: a custom range mapper every round, its closure holding 4 KiB.
//! - `result-buffers`: a new one-element buffer every round, reduced into (a deterministic block sum, `reduce_with`, a
//!   built-in maximum), read back every 50 rounds and dropped.
//! - `checkerboard`: many small boxes: a checkerboard of 4 x 4 tiles of a 32 x 32 board, moved every round, written
//!   by a host task (each chunk its rows), every eighth row read from another first row every second round, and the whole
//!   board read by a kernel every fourth round, so that the board's last-writer and reader maps, and what is valid
//!   where, hold ever other boxes (bounded by the board's cells: horizons merge them back).
//! - `readers`: a buffer rewritten every 50 rounds and read by other scattered single cells every round (reader logs).
//! - `offsets`: a host task or kernel over another offset and size every round, adding 1 to a line of cells.
//! - `fences3d`: a subrange fence of another 3D box every round, four kept in flight and the oldest waited for, and
//!   every third round a 2D one dropped without a wait.
//! - `all`: the patterns above but `barriers`, `host`, `rows` and `flood` in turn, with a barrier every 97 rounds.
//!
//! Every pattern also fails if data that arrived before its await-push (`RankStats::early_headers_peak`) ever piled
//! up beyond [`EARLY_HEADERS_LIMIT`]: in `rows` rank 1 has almost no work, and only the ranks' pacing (the divergence
//! check's windows, kept with the check off) stops its pushes from running ahead of rank 0 without bound (with
//! `--check-divergence off` it once left every round's half-row waiting at rank 0: hundreds of MiB, and each
//! await-push slower than the last). `--check-divergence on|off` sets `CELER_CHECK_DIVERGENCE` for the run.
//!
//! ```text
//! mpirun -n 2 target/release/examples/soak_patterns --pattern shapes --rounds 100000 [--samples 10]
//! mpirun -n 2 target/release/examples/soak_patterns --pattern rows --rounds 20000 --check-divergence off
//! ```

use celer::{access, kernels, task, GridBox, Kernel, Queue, ReductionOp, Region};

celer::include_kernels!();

/// This process's resident memory in bytes (Linux `/proc/self/statm`).
fn resident_bytes() -> Result<u64, Box<dyn std::error::Error>> {
    let statm = std::fs::read_to_string("/proc/self/statm")?;
    let pages: u64 = statm.split_whitespace().nth(1).ok_or("malformed /proc/self/statm")?.parse()?;
    Ok(pages * 4096)
}

/// MiB of `bytes`, for printing.
fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1 << 20) as f64
}

/// Round `i` of `pattern`.
fn round(q: &Queue, pattern: &str, i: u64, s: &mut State<'_>) -> Result<(), Box<dyn std::error::Error>> {
    match pattern {
        "shapes" => {
            let n = 1 + (i as usize * 7919) % 4000;
            match i % 3 {
                0 => {
                    let b = q.buffer::<f32, 1>([n]).named("shape1");
                    q.submit(
                        task::host_for([n])
                            .discard_write(&b, access::one_to_one())
                            .run(move |c| c.data_mut::<f32>(0).fill(i as f32)),
                    )?;
                    if i.is_multiple_of(300) {
                        let got = q.fence(&b)?.wait()?;
                        if got.len() != n || got.iter().any(|&v| v != i as f32) {
                            return Err(format!("round {i}: 1D buffer of {n} read back wrong").into());
                        }
                    }
                }
                1 => {
                    let (a, b) = (1 + n % 61, 1 + n % 61);
                    let src = q.buffer_from(&vec![2.0f32; a * b], [a, b]).named("shape2 src");
                    let dst = q.buffer::<f32, 2>([a, b]).named("shape2 dst");
                    q.submit(
                        task::parallel_for(&s.jacobi, [a, b])
                            .read(&src, access::neighborhood([1, 1]))
                            .discard_write(&dst, access::one_to_one())
                            .scalar_value(a as u32)
                            .name("jacobi"),
                    )?;
                    drop((src, dst));
                }
                _ => {
                    let (a, b, c) = (1 + n % 13, 1 + n % 17, 1 + n % 19);
                    let buf = q.buffer::<u32, 3>([a, b, c]).named("shape3");
                    q.submit(
                        task::host_for([a, b, c])
                            .discard_write(&buf, access::one_to_one())
                            .run(|c| c.data_mut::<u32>(0).fill(3)),
                    )?;
                    q.submit(task::host_for([a, b, c]).read(&buf, access::all()).run(|c| {
                        assert!(c.data::<u32>(0).iter().all(|&v| v == 3), "3D buffer read back wrong");
                    }))?;
                }
            }
        }
        "kernels" => {
            let k = match i % 4 {
                0 => Kernel::wgsl(&SQUARES_I32, "main")?,
                1 => Kernel::wgsl(&EVENS_I32, "main")?,
                2 => Kernel::wgsl(&ADD_I32, "main")?,
                _ => Kernel::wgsl(&kernels::HEAT_1D, "main")?,
            };
            if i % 4 == 3 {
                q.submit(
                    task::parallel_for(&k, [256])
                        .read(&s.fa, access::neighborhood([1]))
                        .discard_write(&s.fb, access::one_to_one())
                        .scalar_f32(0.1),
                )?;
                std::mem::swap(&mut s.fa, &mut s.fb);
            } else {
                let t = task::parallel_for(&k, [256]);
                let t = if i % 4 == 2 {
                    t.read_write(&s.ia, access::one_to_one()).scalar_i32(1)
                } else {
                    t.write(&s.ia, access::one_to_one())
                };
                q.submit(t)?;
            }
        }
        "objects" => {
            let o = q.host_object(vec![0u8; 1024]);
            let g = q.collective_group();
            q.submit(task::host_collective_in(&g).side_effect(&o).run(|c| {
                c.with_object::<Vec<u8>, _>(0, |v| v[0] += 1);
            }))?;
            if i.is_multiple_of(500) && q.fence_object(&o)?[0] != 1 {
                return Err(format!("round {i}: the host object saw no side effect").into());
            }
            drop((o, g));
        }
        "fences" => {
            q.submit(
                task::parallel_for(&s.heat, [256])
                    .read(&s.fa, access::neighborhood([1]))
                    .discard_write(&s.fb, access::one_to_one())
                    .scalar_f32(0.1),
            )?;
            std::mem::swap(&mut s.fa, &mut s.fb);
            let f = q.fence(&s.fa)?;
            if i.is_multiple_of(2) {
                let got = f.wait()?;
                if got.iter().any(|v| (v - 1.0).abs() > 1e-5) {
                    return Err(format!("round {i}: the constant field changed").into());
                }
            } else {
                drop(f);
            }
        }
        "names" => {
            q.submit(
                task::parallel_for(&s.heat, [256])
                    .read(&s.fa, access::neighborhood([1]))
                    .discard_write(&s.fb, access::one_to_one())
                    .scalar_f32(0.1)
                    .name(format!("step {i} of a long run with a long name")),
            )?;
            std::mem::swap(&mut s.fa, &mut s.fb);
        }
        "reductions" => {
            q.submit(
                task::parallel_for(&s.reduce, [256])
                    .read(&s.data, access::one_to_one())
                    .reduce(&s.sum, ReductionOp::Sum)
                    .name("sum"),
            )?;
            if i.is_multiple_of(100) {
                let got = q.fence(&s.sum)?.wait()?;
                if got != [(0..256).sum::<i32>()] {
                    return Err(format!("round {i}: the reduction gave {got:?}").into());
                }
            }
        }
        "host" => {
            q.submit(task::host_for([256]).read_write(&s.ia, access::one_to_one()).name("inc").run(|c| {
                c.data_mut::<i32>(0).iter_mut().for_each(|v| *v = v.wrapping_add(1));
            }))?;
        }
        "rows" => {
            let row = |r: u64| {
                let r = (r % HISTORY_ROWS as u64) as usize;
                move |_: &GridBox<1>, h: &GridBox<2>| Region::from(GridBox::new([r, 0], [r + 1, h.max()[1]]))
            };
            let half_row = move |c: &GridBox<1>, _: &GridBox<2>| {
                let r = (i % HISTORY_ROWS as u64) as usize;
                Region::from(GridBox::new([r, c.min()[0]], [r + 1, c.max()[0]]))
            };
            q.submit(
                task::host_for([256])
                    .discard_write(&s.history, access::custom("half row", half_row))
                    .name("record")
                    .run(move |c| c.data_mut::<f32>(0).fill(i as f32)),
            )?;
            // Row i + 1 was last written 63 rounds ago (still 0 in the first 63 rounds).
            let oldest = i.saturating_sub(HISTORY_ROWS as u64 - 1) as f32;
            q.submit(
                task::host_for([1])
                    .read(&s.history, access::custom("newest row", row(i)))
                    .read(&s.history, access::custom("oldest row", row(i + 1)))
                    .name("compare")
                    .run(move |c| {
                        assert!(c.data::<f32>(0).iter().all(|&v| v == i as f32), "round {i}: the newest row is wrong");
                        assert!(c.data::<f32>(1).iter().all(|&v| v == oldest), "round {i}: the oldest row is wrong");
                    }),
            )?;
        }
        "flood" => {
            q.submit(
                task::parallel_for(&s.heat, [FLOOD_CELLS])
                    .read(&s.big_a, access::neighborhood([1]))
                    .discard_write(&s.big_b, access::one_to_one())
                    .scalar_f32(0.1),
            )?;
            std::mem::swap(&mut s.big_a, &mut s.big_b);
        }
        "reduce-with" => match i % 4 {
            // A closure of its own every round, holding 4 KiB: kept closures would show at once.
            0 => {
                let pad = vec![0u8; 4096];
                q.submit(
                    task::parallel_for(&s.reduce_or, [256])
                        .read(&s.flags, access::one_to_one())
                        .reduce_with(&s.bits, 0u32, move |a, b| a | b | u32::from(pad[0]))
                        .name("or"),
                )?;
                if i.is_multiple_of(100) {
                    let got = q.fence(&s.bits)?.wait()?;
                    if got != [0xffff] {
                        return Err(format!("round {i}: reduce_with gave {got:?}, not [65535]").into());
                    }
                }
            }
            1 => {
                q.submit(
                    task::parallel_for(&s.reduce_min, [256])
                        .read(&s.data, access::one_to_one())
                        .reduce(&s.lo, ReductionOp::Min)
                        .name("min"),
                )?;
            }
            2 => {
                q.submit(
                    task::parallel_for(&s.reduce_max, [256])
                        .read(&s.data, access::one_to_one())
                        .reduce(&s.hi, ReductionOp::Max)
                        .name("max"),
                )?;
                if i.is_multiple_of(100) {
                    let (lo, hi) = (q.fence(&s.lo)?.wait()?, q.fence(&s.hi)?.wait()?);
                    if lo != [0] || hi != [255] {
                        return Err(format!("round {i}: min {lo:?} and max {hi:?}, not [0] and [255]").into());
                    }
                }
            }
            _ => {
                // Folds the old value in: the total grows by the sum every 4 rounds (wrapping past i32::MAX).
                q.submit(
                    task::parallel_for(&s.reduce, [256])
                        .read(&s.data, access::one_to_one())
                        .reduce_including(&s.total, ReductionOp::Sum)
                        .name("total"),
                )?;
                if i.is_multiple_of(400) {
                    let want = ((i / 4) as i32).wrapping_mul((0..256).sum::<i32>());
                    let got = q.fence(&s.total)?.wait()?;
                    if got != [want] {
                        return Err(format!("round {i}: the running total is {got:?}, not [{want}]").into());
                    }
                }
            }
        },
        "subfences" => {
            q.submit(
                task::host_for([32, 64])
                    .discard_write(&s.grid, access::one_to_one())
                    .name("fill grid")
                    .run(move |c| c.data_mut::<f32>(0).fill(i as f32)),
            )?;
            let (r, c) = ((i % 32) as usize, (i * 7 % 64) as usize);
            let range = [1 + (i as usize * 13) % (32 - r), 1 + (i as usize * 5) % (64 - c)];
            s.fences.push_back((i, range[0] * range[1], q.fence_subrange(&s.grid, [r, c], range)?));
            // Eight fences kept in flight (the program holds them), the oldest waited for.
            if s.fences.len() > 8 {
                let (round, cells, f) = s.fences.pop_front().expect("nine fences kept");
                let got = f.wait()?;
                if got.len() != cells || got.iter().any(|&v| v != round as f32) {
                    return Err(format!("round {i}: the subrange fence of round {round} read back wrong").into());
                }
            }
        }
        "barriers" => {
            q.submit(
                task::parallel_for(&s.heat, [256])
                    .read(&s.fa, access::neighborhood([1]))
                    .discard_write(&s.fb, access::one_to_one())
                    .scalar_f32(0.1),
            )?;
            std::mem::swap(&mut s.fa, &mut s.fb);
            q.barrier();
        }
        "side-effects" => {
            // A long-lived host object counted on by a host task on rank 0, and a new one (16 KiB) every round,
            // used by a host task over a buffer and dropped.
            q.submit(task::host_once().side_effect(&s.counter).name("count").run(|c| {
                c.with_object::<u64, _>(0, |n| *n += 1);
            }))?;
            let o = q.host_object(vec![0u32; 4096]);
            q.submit(task::host_for([256]).read(&s.ia, access::one_to_one()).side_effect(&o).name("note").run(|c| {
                let sum: i32 = c.data::<i32>(0).iter().sum();
                c.with_object::<Vec<u32>, _>(0, |v| v[0] = v[0].wrapping_add(sum as u32 + 1));
            }))?;
            drop(o);
            if i.is_multiple_of(500) {
                let n = q.fence_object(&s.counter)?;
                if q.rank() == 0 && n != i {
                    return Err(format!("round {i}: the host object counted {n} side effects").into());
                }
            }
        }
        "entries" => {
            // Twenty kernel shapes (ten entry points, each with two access modes), more than `submit` keeps
            // checks of, each kernel made anew and given new scalar values every round.
            let j = i % 20;
            let k = i as i32 % 1000;
            let mode = |t: celer::TaskBuilder<1>, b: &celer::Buffer<'_, i32, 1>| {
                if j >= 10 {
                    t.read_write(b, access::one_to_one())
                } else {
                    t.write(b, access::one_to_one())
                }
            };
            let t = match j % 10 {
                0 => task::parallel_for(&Kernel::wgsl(&HSTRESS_OPS, "combine")?, [256])
                    .read(&s.data, access::one_to_one())
                    .read(&s.data, access::one_to_one())
                    .read(&s.data, access::one_to_one())
                    .discard_write(&s.ib, access::one_to_one())
                    .scalar_i32(k),
                e @ 1..=2 => task::parallel_for(&Kernel::wgsl(&HSTRESS_OPS, ["axpy", "bump"][e as usize - 1])?, [256])
                    .read(&s.data, access::one_to_one())
                    .read(&s.one, access::all())
                    .read(&s.data, access::one_to_one())
                    .read_write(&s.ib, access::one_to_one())
                    .scalar_i32(k),
                3 => mode(task::parallel_for(&Kernel::wgsl(&SQUARES_I32, "main")?, [256]), &s.ia),
                4 => mode(task::parallel_for(&Kernel::wgsl(&EVENS_I32, "main")?, [256]), &s.ia),
                5 => {
                    s.added = s.added.wrapping_add(k);
                    task::parallel_for(&Kernel::wgsl(&ADD_I32, "main")?, [256])
                        .read_write(&s.acc, access::one_to_one())
                        .scalar_i32(k)
                }
                6 => task::parallel_for(&Kernel::wgsl(&kernels::HEAT_1D, "main")?, [256])
                    .read(&s.fa, access::neighborhood([1]))
                    .discard_write(&s.fb, access::one_to_one())
                    .scalar_f32(0.05 + k as f32 * 1e-4),
                7 => task::parallel_for(&Kernel::wgsl(&COPY_1D, "main")?, [256])
                    .read(&s.fa, access::one_to_one())
                    .discard_write(&s.fb, access::one_to_one()),
                8 => task::parallel_for(&Kernel::wgsl(&SUM4, "main")?, [256])
                    .read(&s.fa, access::one_to_one())
                    .read(&s.fa, access::one_to_one())
                    .read(&s.fa, access::one_to_one())
                    .read(&s.fa, access::one_to_one())
                    .discard_write(&s.fc, access::one_to_one()),
                _ => task::parallel_for(&Kernel::wgsl(&kernels::SQUARES, "main")?, [256])
                    .discard_write(&s.ua, access::one_to_one()),
            };
            q.submit(t)?;
            if matches!(j % 10, 6 | 7) {
                std::mem::swap(&mut s.fa, &mut s.fb);
            }
            if i.is_multiple_of(200) {
                let got = q.fence(&s.acc)?.wait()?;
                if got.iter().any(|&v| v != s.added) {
                    return Err(format!("round {i}: add_i32 gave {}, not {}", got[0], s.added).into());
                }
            }
        }
        "creation" => {
            // Buffers created from 64 KiB of host data every round (1D, 2D or 3D), used by a kernel or host task
            // and dropped.
            let v = (i % 1000) as f32;
            match i % 3 {
                0 => {
                    let src = q.buffer_from(&vec![v; 16384], [16384]).named("from data");
                    let dst = q.buffer::<f32, 1>([16384]).named("heated");
                    q.submit(
                        task::parallel_for(&s.heat, [16384])
                            .read(&src, access::neighborhood([1]))
                            .discard_write(&dst, access::one_to_one())
                            .scalar_f32(0.1),
                    )?;
                    if i.is_multiple_of(300) {
                        let got = q.fence(&dst)?.wait()?;
                        if got.iter().any(|&x| (x - v).abs() > 1e-3) {
                            return Err(format!("round {i}: a constant field of {v} read back as {}", got[0]).into());
                        }
                    }
                }
                1 => {
                    let src = q.buffer_from(&vec![v; 128 * 128], [128, 128]).named("from data 2D");
                    let dst = q.buffer::<f32, 2>([128, 128]).named("jacobi 2D");
                    q.submit(
                        task::parallel_for(&s.jacobi, [128, 128])
                            .read(&src, access::neighborhood([1, 1]))
                            .discard_write(&dst, access::one_to_one())
                            .scalar_value(128u32),
                    )?;
                }
                _ => {
                    let src = q.buffer_from(&vec![i as u32; 16 * 32 * 32], [16, 32, 32]).named("from data 3D");
                    q.submit(task::host_for([16, 32, 32]).read(&src, access::one_to_one()).name("look 3D").run(
                        move |c| assert!(c.data::<u32>(0).iter().all(|&x| x == i as u32), "round {i}: 3D data wrong"),
                    ))?;
                }
            }
        }
        "mappers" => {
            // A custom range mapper every round, its closure holding 4 KiB: kept closures would show at once.
            let pad = vec![1usize; 512];
            let shift = (i % 8) as usize;
            let mapper = move |c: &GridBox<1>, b: &GridBox<1>| {
                let lo = (c.min()[0] + shift * pad[0]).min(b.max()[0]);
                Region::from(GridBox::new([lo], [(c.max()[0] + shift * pad[0]).min(b.max()[0])]))
            };
            q.submit(
                task::host_for([248])
                    .read(&s.fa, access::custom("shifted", mapper))
                    .name("shifted look")
                    .run(|c| assert!(c.data::<f32>(0).iter().all(|v| (v - 1.0).abs() < 1e-5), "the field changed")),
            )?;
        }
        "result-buffers" => {
            // A new one-element buffer reduced into every round (a deterministic block reduction, a `reduce_with`
            // and a built-in maximum in turn), read back every 50 rounds, dropped.
            let out = q.buffer::<i32, 1>([1]).named("result");
            let (t, want) = match i % 3 {
                0 => (
                    task::parallel_for(&s.block_sum, [256])
                        .read(&s.data, access::one_to_one())
                        .reduce(&out, ReductionOp::Sum),
                    (0..256).sum::<i32>(),
                ),
                1 => (
                    task::parallel_for(&s.reduce_max, [256]).read(&s.data, access::one_to_one()).reduce_with(
                        &out,
                        i32::MIN,
                        |a, b| a.max(b),
                    ),
                    255,
                ),
                _ => (
                    task::parallel_for(&s.reduce_max, [256])
                        .read(&s.data, access::one_to_one())
                        .reduce(&out, ReductionOp::Max),
                    255,
                ),
            };
            q.submit(t.name("into a new buffer"))?;
            if i % 50 < 3 {
                let got = q.fence(&out)?.wait()?;
                if got != [want] {
                    return Err(format!("round {i}: a reduction into a new buffer gave {got:?}, not [{want}]").into());
                }
            }
        }
        "checkerboard" => {
            // Many small boxes: a moving checkerboard of 4 x 4 tiles written every round (each chunk its rows), and
            // every eighth row read, starting at another row every second round, so that the board's last-writer and reader
            // maps hold ever other boxes.
            let (parity, shift) = ((i % 2) as usize, ((i / 2) % TILE as u64) as usize);
            let tiles = move |c: &GridBox<1>, b: &GridBox<2>| {
                Region::from_boxes(checkerboard(c.min()[0], c.max()[0], b.max()[1], parity, shift))
            };
            q.submit(
                task::host_for([BOARD])
                    .discard_write(&s.board, access::custom("checkerboard", tiles))
                    .name("tiles")
                    .run(move |c| c.data_mut::<f32>(0).fill(i as f32)),
            )?;
            if i.is_multiple_of(4) {
                // A kernel reading the whole board: what the host tasks wrote, box by box, goes to the device.
                q.submit(
                    task::parallel_for(&s.jacobi, [BOARD, BOARD])
                        .read(&s.board, access::neighborhood([1, 1]))
                        .discard_write(&s.smooth, access::one_to_one())
                        .scalar_value(BOARD as u32)
                        .name("smooth board"),
                )?;
            }
            for b in checkerboard(0, BOARD, BOARD, parity, shift) {
                for r in b.min()[0]..b.max()[0] {
                    s.shadow[r * BOARD + b.min()[1]..r * BOARD + b.max()[1]].fill(i as f32);
                }
            }
            if i.is_multiple_of(2) {
                return Ok(());
            }
            let first = ((i / 2) % ROW_STRIDE as u64) as usize;
            let strided = move |_: &GridBox<1>, b: &GridBox<2>| {
                let w = b.max()[1];
                Region::from_boxes((first..b.max()[0]).step_by(ROW_STRIDE).map(|r| GridBox::new([r, 0], [r + 1, w])))
            };
            let want: Vec<f32> = (first..BOARD)
                .step_by(ROW_STRIDE)
                .flat_map(|r| s.shadow[r * BOARD..(r + 1) * BOARD].to_vec())
                .collect();
            q.submit(task::host_for([1]).read(&s.board, access::custom("strided rows", strided)).name("rows").run(
                move |c| {
                    let got = c.data::<f32>(0);
                    // The accessor holds the bounding box: the rows from `first` on, every eighth one read.
                    let rows = got.chunks(BOARD).step_by(ROW_STRIDE).flatten().copied().collect::<Vec<f32>>();
                    assert!(rows == want, "round {i}: the strided rows of the board read back wrong");
                },
            ))?;
        }
        "readers" => {
            // A buffer rewritten every 50 rounds and read by other scattered cells every round: each chunk of 16
            // reads four single cells of its 64, at other places every round, so its reader log holds ever other
            // boxes until the next write.
            if i % 50 == 1 {
                q.submit(
                    task::host_for([SHARED])
                        .discard_write(&s.shared, access::one_to_one())
                        .name("rewrite")
                        .run(move |c| c.data_mut::<f32>(0).fill(((i - 1) / 50) as f32)),
                )?;
            }
            let scattered = move |c: &GridBox<1>, _: &GridBox<1>| {
                Region::from_boxes((c.min()[0]..c.max()[0]).flat_map(|j| {
                    (0..4u64).map(move |m| {
                        let x = j * 64 + ((i * 7 + m * 17) % 64) as usize;
                        GridBox::new([x], [x + 1])
                    })
                }))
            };
            let want = ((i - 1) / 50) as f32;
            q.submit(
                task::host_for([SHARED / 64])
                    .read(&s.shared, access::custom("scattered cells", scattered))
                    .name("look")
                    .run(move |c| {
                        assert!(c.data::<f32>(0).iter().all(|&v| v == want), "round {i}: scattered cells read wrong")
                    }),
            )?;
        }
        "offsets" => {
            // A task over another offset and size every round, a host task and a kernel in turn, each adding 1.
            let (o, n) = ((i as usize * 7) % 256, 1 + (i as usize * 13) % 256);
            let t = if i.is_multiple_of(2) {
                task::host_for([n]).run(|c| c.data_mut::<i32>(0).iter_mut().for_each(|v| *v += 1))
            } else {
                task::parallel_for(&s.add, [n]).scalar_i32(1)
            };
            q.submit(t.offset([o]).read_write(&s.line, access::one_to_one()).name("add at an offset"))?;
            s.line_shadow[o..o + n].iter_mut().for_each(|v| *v += 1);
            if i.is_multiple_of(500) {
                let got = q.fence(&s.line)?.wait()?;
                if got != s.line_shadow {
                    return Err(format!("round {i}: the line added at offsets read back wrong").into());
                }
            }
        }
        "fences3d" => {
            // A 3D buffer rewritten every fourth round and a subrange fence of another box every round, the oldest
            // of five waited for; every third round a 2D subrange fence is dropped without a wait.
            if i % 4 == 1 {
                q.submit(
                    task::host_for(CUBE)
                        .discard_write(&s.cube, access::one_to_one())
                        .name("fill cube")
                        .run(move |c| c.data_mut::<u32>(0).fill(i as u32)),
                )?;
            }
            let x = i as usize;
            let at = [x % CUBE[0], (x * 3) % CUBE[1], (x * 5) % CUBE[2]];
            let range = [1 + x % (CUBE[0] - at[0]), 1 + (x * 7) % (CUBE[1] - at[1]), 1 + (x * 11) % (CUBE[2] - at[2])];
            let want = (i - (i - 1) % 4) as u32;
            s.cube_fences.push_back((want, at, range, q.fence_subrange(&s.cube, at, range)?));
            // Four fences kept in flight, the oldest waited for.
            if s.cube_fences.len() > 4 {
                let (want, at, range, f) = s.cube_fences.pop_front().expect("five fences kept");
                let got = f.wait()?;
                if got.len() != range.iter().product::<usize>() || got.iter().any(|&v| v != want) {
                    return Err(
                        format!("round {i}: the 3D subrange fence at {at:?} of {range:?} read back wrong").into()
                    );
                }
            }
            if i.is_multiple_of(3) {
                drop(q.fence_subrange(&s.board, [x % BOARD, (x * 3) % BOARD], [1 + x % (BOARD - x % BOARD), 1])?);
            }
        }
        "all" => {
            const ALL: [&str; 16] = [
                "shapes",
                "kernels",
                "objects",
                "fences",
                "names",
                "reductions",
                "reduce-with",
                "subfences",
                "side-effects",
                "entries",
                "creation",
                "mappers",
                "checkerboard",
                "readers",
                "offsets",
                "fences3d",
            ];
            let n = ALL.len() as u64;
            round(q, ALL[((i - 1) % n) as usize], (i - 1) / n + 1, s)?;
            if i.is_multiple_of(97) {
                q.barrier();
            }
        }
        other => return Err(format!("no pattern {other:?}").into()),
    }
    Ok(())
}

const FLOOD_CELLS: usize = 1 << 18;

/// Side of the `checkerboard` pattern's board.
const BOARD: usize = 32;

/// Side of a tile of the `checkerboard` pattern.
const TILE: usize = 4;

/// The `checkerboard` pattern reads every this many rows.
const ROW_STRIDE: usize = 8;

/// Cells of the `readers` pattern's buffer.
const SHARED: usize = 1024;

/// The `fences3d` pattern's buffer.
const CUBE: [usize; 3] = [8, 16, 32];

/// The boxes of rows `r0..r1` (of `width` columns) in the tiles of `parity` of a checkerboard of [`TILE`]-cell
/// tiles shifted left by `shift` columns.
fn checkerboard(r0: usize, r1: usize, width: usize, parity: usize, shift: usize) -> Vec<GridBox<2>> {
    let mut boxes = Vec::new();
    for band in r0 / TILE..r1.div_ceil(TILE) {
        let (top, bottom) = ((band * TILE).max(r0), ((band + 1) * TILE).min(r1));
        for tile in 0..=width / TILE {
            let (left, right) = ((tile * TILE).saturating_sub(shift), ((tile + 1) * TILE - shift).min(width));
            if (band + tile) % 2 == parity && left < right {
                boxes.push(GridBox::new([top, left], [bottom, right]));
            }
        }
    }
    boxes
}

/// Rows of the `rows` pattern's history.
const HISTORY_ROWS: usize = 64;

/// The most transfers' data that may wait at once for their await-push on a rank (`RankStats::early_headers_peak`).
/// In `rows` a horizon comes every 4 tasks (2 rounds, 2 pushes): the sender runs at most `DIVERGENCE_WINDOWS` (64)
/// horizons ahead of the receiver's submissions, which run at most `CELER_SUBMIT_AHEAD` (128) horizons ahead of its
/// await-pushes, some 400 pushes; measured 440 to 480 with the check off (225 on), on 2 busy cores. Without the
/// pacing the backlog grows with the round count (about 15000 in 20000 debug rounds).
const EARLY_HEADERS_LIMIT: u64 = 1000;

/// A fence of `fences3d` in flight: the value it must read, the box's offset and range, the fence.
type CubeFence = (u32, [usize; 3], [usize; 3], celer::Fence<u32, 3>);

/// What the rounds share.
struct State<'q> {
    heat: Kernel,
    reduce: Kernel,
    jacobi: Kernel,
    fa: celer::Buffer<'q, f32, 1>,
    fb: celer::Buffer<'q, f32, 1>,
    ia: celer::Buffer<'q, i32, 1>,
    data: celer::Buffer<'q, i32, 1>,
    sum: celer::Buffer<'q, i32, 1>,
    big_a: celer::Buffer<'q, f32, 1>,
    big_b: celer::Buffer<'q, f32, 1>,
    history: celer::Buffer<'q, f32, 2>,
    reduce_or: Kernel,
    block_sum: Kernel,
    reduce_min: Kernel,
    reduce_max: Kernel,
    flags: celer::Buffer<'q, u32, 1>,
    bits: celer::Buffer<'q, u32, 1>,
    lo: celer::Buffer<'q, i32, 1>,
    hi: celer::Buffer<'q, i32, 1>,
    total: celer::Buffer<'q, i32, 1>,
    grid: celer::Buffer<'q, f32, 2>,
    /// `subfences`' fences in flight: round, cells, fence.
    fences: std::collections::VecDeque<(u64, usize, celer::Fence<f32, 2>)>,
    counter: celer::HostObject<'q, u64>,
    fc: celer::Buffer<'q, f32, 1>,
    ib: celer::Buffer<'q, i32, 1>,
    ua: celer::Buffer<'q, u32, 1>,
    one: celer::Buffer<'q, i32, 1>,
    acc: celer::Buffer<'q, i32, 1>,
    /// What `entries` added to every cell of `acc`.
    added: i32,
    board: celer::Buffer<'q, f32, 2>,
    smooth: celer::Buffer<'q, f32, 2>,
    /// What `checkerboard` wrote to each cell of `board`, row-major.
    shadow: Vec<f32>,
    shared: celer::Buffer<'q, f32, 1>,
    add: Kernel,
    line: celer::Buffer<'q, i32, 1>,
    /// What `offsets` added to each cell of `line`.
    line_shadow: Vec<i32>,
    cube: celer::Buffer<'q, u32, 3>,
    /// `fences3d`' fences in flight: the value, the box's offset and range, the fence.
    cube_fences: std::collections::VecDeque<CubeFence>,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    celer::logging::init();
    let args = <Args as clap::Parser>::parse();
    let q = match args.check_divergence.as_deref() {
        None => Queue::new()?,
        Some(v @ ("on" | "off")) => Queue::builder().check_divergence(v == "on").build()?,
        Some(other) => return Err(format!("--check-divergence takes on or off, not {other:?}").into()),
    };
    let mut s = State {
        heat: Kernel::wgsl(&kernels::HEAT_1D, "main")?,
        reduce: Kernel::wgsl(&kernels::REDUCE_I32, "reduce_sum")?,
        jacobi: Kernel::wgsl(&JACOBI, "main")?,
        fa: q.buffer_from(&[1.0f32; 256], [256]).named("fa"),
        fb: q.buffer_from(&[1.0f32; 256], [256]).named("fb"),
        ia: q.buffer_from(&[0i32; 256], [256]).named("ia"),
        data: q.buffer_from(&(0..256).collect::<Vec<i32>>(), [256]).named("data"),
        sum: q.buffer::<i32, 1>([1]).named("sum"),
        big_a: q.buffer_from(&vec![1.0f32; FLOOD_CELLS], [FLOOD_CELLS]).named("big_a"),
        big_b: q.buffer::<f32, 1>([FLOOD_CELLS]).named("big_b"),
        history: q.buffer_from(&vec![0.0f32; HISTORY_ROWS * 256], [HISTORY_ROWS, 256]).named("history"),
        reduce_or: Kernel::wgsl(&kernels::REDUCE_BITS, "reduce_or")?,
        block_sum: Kernel::wgsl(&BLOCK_I32, "reduce_sum")?,
        reduce_min: Kernel::wgsl(&kernels::REDUCE_I32, "reduce_min")?,
        reduce_max: Kernel::wgsl(&kernels::REDUCE_I32, "reduce_max")?,
        flags: q.buffer_from(&(0..256).map(|i| 1u32 << (i % 16)).collect::<Vec<u32>>(), [256]).named("flags"),
        bits: q.buffer::<u32, 1>([1]).named("bits"),
        lo: q.buffer::<i32, 1>([1]).named("lo"),
        hi: q.buffer::<i32, 1>([1]).named("hi"),
        total: q.buffer_from(&[0i32], [1]).named("total"),
        grid: q.buffer::<f32, 2>([32, 64]).named("grid"),
        fences: std::collections::VecDeque::new(),
        counter: q.host_object(0u64),
        fc: q.buffer::<f32, 1>([256]).named("fc"),
        ib: q.buffer_from(&[0i32; 256], [256]).named("ib"),
        ua: q.buffer::<u32, 1>([256]).named("ua"),
        one: q.buffer_from(&[1i32], [1]).named("one"),
        acc: q.buffer_from(&[0i32; 256], [256]).named("acc"),
        added: 0,
        board: q.buffer_from(&vec![0.0f32; BOARD * BOARD], [BOARD, BOARD]).named("board"),
        smooth: q.buffer::<f32, 2>([BOARD, BOARD]).named("smooth"),
        shadow: vec![0.0; BOARD * BOARD],
        shared: q.buffer::<f32, 1>([SHARED]).named("shared"),
        add: Kernel::wgsl(&ADD_I32, "main")?,
        line: q.buffer_from(&[0i32; 512], [512]).named("line"),
        line_shadow: vec![0; 512],
        cube: q.buffer::<u32, 3>(CUBE).named("cube"),
        cube_fences: std::collections::VecDeque::new(),
    };
    let every = (args.rounds / args.samples.max(2)).max(1);
    let start = std::time::Instant::now();
    let mut samples = Vec::new();
    for i in 1..=args.rounds {
        round(&q, &args.pattern, i, &mut s)?;
        if i % every == 0 || i == args.rounds {
            if args.pattern != "flood" {
                q.wait();
            }
            let bytes = resident_bytes()?;
            let stats = q.stats().unwrap_or_default();
            samples.push(bytes);
            println!(
                "soak_patterns {}: rank {}: {i:>8} rounds, resident {:.1} MiB, device {:.1} MiB, live tasks {}, tasks recorded {}, \
                 buffers {}, reductions {}, command records {}, divergence windows {}, early headers {} (at most {}), \
                 {:.1} s",
                args.pattern,
                q.rank(),
                mib(bytes),
                mib(stats.device_bytes),
                q.live_tasks(),
                stats.tasks,
                stats.buffers,
                stats.reductions,
                stats.command_records,
                stats.divergence_windows,
                stats.early_headers,
                stats.early_headers_peak,
                start.elapsed().as_secs_f64()
            );
        }
    }
    q.wait();
    if args.pattern == "host" {
        let got = q.fence(&s.ia)?.wait()?;
        if got.iter().any(|&v| v != args.rounds as i32) {
            return Err(format!("host chain gave {:?}, not {}", &got[..4], args.rounds).into());
        }
    }
    for (want, at, range, f) in std::mem::take(&mut s.cube_fences) {
        let got = f.wait()?;
        if got.len() != range.iter().product::<usize>() || got.iter().any(|&v| v != want) {
            return Err(format!("the 3D subrange fence at {at:?} of {range:?} read back wrong").into());
        }
    }
    for (round, cells, f) in std::mem::take(&mut s.fences) {
        let got = f.wait()?;
        if got.len() != cells || got.iter().any(|&v| v != round as f32) {
            return Err(format!("the subrange fence of round {round} read back wrong").into());
        }
    }
    if matches!(args.pattern.as_str(), "flood" | "fences" | "names" | "barriers" | "entries" | "mappers" | "all") {
        let got = q.fence(if args.pattern == "flood" { &s.big_a } else { &s.fa })?.wait()?;
        if got.iter().any(|v| (v - 1.0).abs() > 1e-5) {
            return Err("the constant field changed".into());
        }
    }
    let (warm, last) = (samples[1.min(samples.len() - 1)], samples[samples.len() - 1]);
    let limit = warm + warm / 10 + (4 << 20);
    println!(
        "soak_patterns {}: rank {} of {}: {} rounds in {:.1} s, resident {:.1} MiB after warm-up, {:.1} MiB at the end",
        args.pattern,
        q.rank(),
        q.ranks(),
        args.rounds,
        start.elapsed().as_secs_f64(),
        mib(warm),
        mib(last)
    );
    let early = q.stats().unwrap_or_default().early_headers_peak;
    if early > EARLY_HEADERS_LIMIT {
        return Err(format!(
            "rank {}: {early} transfers' data waited for their await-push at once, more than {EARLY_HEADERS_LIMIT}: \
             another rank's program ran ahead of this one's without bound",
            q.rank()
        )
        .into());
    }
    if last > limit {
        return Err(format!("rank {}: resident memory grew from {warm} to {last} bytes", q.rank()).into());
    }
    Ok(())
}

/// Soak of one pattern; fails if resident memory grows after warm-up.
#[derive(clap::Parser)]
struct Args {
    /// shapes, kernels, objects, fences, names, reductions, host, rows, flood, reduce-with, subfences, barriers,
    /// side-effects, entries, creation, mappers,
    /// result-buffers, checkerboard, readers, offsets, fences3d or all.
    #[arg(long)]
    pattern: String,
    /// Rounds to run.
    #[arg(long, default_value_t = 100_000)]
    rounds: u64,
    /// Resident memory samples taken over the run (evenly spaced; the second is the one after warm-up).
    #[arg(long, default_value_t = 10)]
    samples: u64,
    /// `on` or `off`: sets `CELER_CHECK_DIVERGENCE` (default: the variable's value, else on).
    #[arg(long)]
    check_divergence: Option<String>,
}
