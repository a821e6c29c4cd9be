//! End to end, on real ranks and a real Vulkan device: sum, minimum and maximum reductions of an i32 buffer split
//! over every rank, read by every rank (a fence) and by rank 0 alone (a host task), and user-defined reductions
//! (bitwise OR and AND through `reduce_with`), a result read by two ranks first and every rank later, and launches
//! larger than a dispatch takes (split by the GPU layer), compared with the serial result; at the end, the bytes the
//! ranks sent and received must balance.
//! Run alone (one rank) or under `mpirun -n N`; `./x test` does both.

use std::process::ExitCode;
use std::sync::{Arc, Mutex};

mod common;

use celer::{access, kernels, task, Kernel, Queue, ReductionOp};

/// The kernels of `kernels/` (squares_i32 and block_f32_2d here).
#[allow(dead_code)] // kernels/ holds the kernels of several tests and examples
mod own_kernels {
    celer::include_kernels!();
}

/// Launches of more workgroups than a dispatch takes on lavapipe (65535 per dimension), which the GPU layer splits:
/// squares over 8 Mi items (131072 workgroups of 64 on one rank), checked cell by cell, and a deterministic block
/// reduction over 524 300 rows of one column (65538 workgroups of 16 x 8 along y), of small integers so that the
/// sum is exact whatever the order.
fn large_launches(q: &Queue) -> Result<(), String> {
    let n = 8usize << 20;
    let out = q.buffer::<i32, 1>([n]).named("squares");
    let squares = Kernel::wgsl(&own_kernels::SQUARES_I32, "main").map_err(|e| e.to_string())?;
    q.submit(task::parallel_for(&squares, [n]).discard_write(&out, access::one_to_one())).map_err(|e| e.to_string())?;
    let got = q.fence(&out).map_err(|e| e.to_string())?.wait().map_err(|e| e.to_string())?;
    if let Some(i) = (0..n).find(|&i| got[i] != (i as u32).wrapping_mul(i as u32) as i32) {
        return Err(format!("squares over {n} items: cell {i} holds {}", got[i]));
    }
    let rows = 8 * 65535 + 20;
    let values: Vec<f32> = (0..rows).map(|i| (i % 5) as f32).collect();
    let data = q.buffer_from(&values, [rows, 1]).named("column");
    let sum = q.buffer::<f32, 1>([1]).named("column_sum");
    let kernel = Kernel::wgsl(&own_kernels::BLOCK_F32_2D, "reduce_sum").map_err(|e| e.to_string())?;
    q.submit(task::parallel_for(&kernel, [rows, 1]).read(&data, access::one_to_one()).reduce(&sum, ReductionOp::Sum))
        .map_err(|e| e.to_string())?;
    let got = q.fence(&sum).map_err(|e| e.to_string())?.wait().map_err(|e| e.to_string())?;
    let want = values.iter().map(|&v| f64::from(v)).sum::<f64>() as f32;
    if got != [want] {
        return Err(format!("block sum over {rows} x 1 cells: got {got:?}, want {want}"));
    }
    Ok(())
}

fn run(q: &Queue) -> Result<(), String> {
    let n = 1000usize;
    let values: Vec<i32> = (0..n as i32).map(|i| (i * 7919) % 1009 - 300).collect();
    let data = q.buffer_from(&values, [n]).named("data");
    let cases = [
        ("reduce_sum", ReductionOp::Sum, values.iter().sum::<i32>()),
        ("reduce_min", ReductionOp::Min, *values.iter().min().unwrap()),
        ("reduce_max", ReductionOp::Max, *values.iter().max().unwrap()),
    ];
    for (entry, op, want) in cases {
        let result = q.buffer::<i32, 1>([1]).named(entry);
        let kernel = Kernel::wgsl(&kernels::REDUCE_I32, entry).map_err(|e| e.to_string())?;
        // Twice into the same buffer: a reduction overwrites, it does not accumulate onto the old value.
        for round in 0..2 {
            q.submit(task::parallel_for(&kernel, [n]).read(&data, access::one_to_one()).reduce(&result, op))
                .map_err(|e| e.to_string())?;
            let got = q.fence(&result).map_err(|e| e.to_string())?.wait().map_err(|e| e.to_string())?;
            if got != [want] {
                return Err(format!(
                    "{entry} (round {round}) read by every rank: got {got:?}, the serial result is {want}"
                ));
            }
        }
    }
    // User-defined reductions (bitwise OR and AND, identities 0 and !0): item i carries bit 32 i / n, so each
    // rank's partial holds only its chunk's bits and the cross-rank combine matters.
    let bits: Vec<u32> = (0..n).map(|i| 1u32 << (32 * i / n)).collect();
    let flags = q.buffer_from(&bits, [n]).named("flags");
    let cleared = q.buffer_from(&bits.iter().map(|b| !b).collect::<Vec<_>>(), [n]).named("cleared");
    let any = q.buffer::<u32, 1>([1]).named("any");
    let all = q.buffer::<u32, 1>([1]).named("all");
    let or = Kernel::wgsl(&kernels::REDUCE_BITS, "reduce_or").map_err(|e| e.to_string())?;
    let and = Kernel::wgsl(&kernels::REDUCE_BITS, "reduce_and").map_err(|e| e.to_string())?;
    q.submit(task::parallel_for(&or, [n]).read(&flags, access::one_to_one()).reduce_with(&any, 0, |a, b| a | b))
        .map_err(|e| e.to_string())?;
    q.submit(task::parallel_for(&and, [n]).read(&cleared, access::one_to_one()).reduce_with(&all, !0, |a, b| a & b))
        .map_err(|e| e.to_string())?;
    let got_or = q.fence(&any).map_err(|e| e.to_string())?.wait().map_err(|e| e.to_string())?;
    let got_and = q.fence(&all).map_err(|e| e.to_string())?.wait().map_err(|e| e.to_string())?;
    let (want_or, want_and) = (bits.iter().fold(0, |a, b| a | b), bits.iter().fold(!0, |a, b| a & !b));
    if got_or != [want_or] || got_and != [want_and] {
        return Err(format!(
            "user-defined reductions: OR {got_or:x?} (want {want_or:#x}), AND {got_and:x?} (want {want_and:#x})"
        ));
    }

    // A reduction read by rank 0 alone.
    let result = q.buffer::<i32, 1>([1]).named("sum_on_rank_0");
    let kernel = Kernel::wgsl(&kernels::REDUCE_I32, "reduce_sum").map_err(|e| e.to_string())?;
    q.submit(task::parallel_for(&kernel, [n]).read(&data, access::one_to_one()).reduce(&result, ReductionOp::Sum))
        .map_err(|e| e.to_string())?;
    let seen = Arc::new(Mutex::new(None));
    let seen_in_task = Arc::clone(&seen);
    q.submit(task::host_once().read(&result, access::all()).run(move |ctx| {
        *seen_in_task.lock().unwrap() = Some(ctx.data::<i32>(0)[0]);
    }))
    .map_err(|e| e.to_string())?;
    q.wait();
    let want = values.iter().sum::<i32>();
    match (q.rank(), *seen.lock().unwrap()) {
        (0, Some(v)) if v == want => {}
        (0, other) => return Err(format!("sum read by a host task on rank 0: got {other:?}, want {want}")),
        (_, None) => {}
        (r, Some(_)) => return Err(format!("the rank-0 host task ran on rank {r}")),
    }

    // A reduction read by the first two ranks only (a host task of two items), then by every rank (a fence): the
    // ranks that read it first combine the partials themselves, the others get it from rank 0 later.
    let result = q.buffer::<i32, 1>([1]).named("sum_on_two_ranks");
    let copies = q.buffer::<i32, 1>([2]).named("copies");
    q.submit(task::parallel_for(&kernel, [n]).read(&data, access::one_to_one()).reduce(&result, ReductionOp::Sum))
        .map_err(|e| e.to_string())?;
    q.submit(task::host_for([2]).read(&result, access::all()).discard_write(&copies, access::one_to_one()).run(
        |ctx| {
            let v = ctx.data::<i32>(0)[0];
            ctx.data_mut::<i32>(1).fill(v);
        },
    ))
    .map_err(|e| e.to_string())?;
    let got_copies = q.fence(&copies).map_err(|e| e.to_string())?.wait().map_err(|e| e.to_string())?;
    let got = q.fence(&result).map_err(|e| e.to_string())?.wait().map_err(|e| e.to_string())?;
    if got_copies != [want, want] || got != [want] {
        return Err(format!(
            "sum read by two ranks' host tasks, then by every rank: copies {got_copies:?}, result {got:?}, want {want}"
        ));
    }

    large_launches(q)?;

    // Every byte sent was received: each rank's statistics after a barrier, summed over the ranks through a
    // collective host task (item i on rank i) and a fence.
    q.barrier();
    let stats = q.stats().ok_or("a running queue has statistics")?;
    let (sent, received) =
        (q.buffer::<u64, 1>([q.ranks()]).named("sent"), q.buffer::<u64, 1>([q.ranks()]).named("received"));
    q.submit(
        task::host_collective()
            .discard_write(&sent, access::one_to_one())
            .discard_write(&received, access::one_to_one())
            .name("report_bytes")
            .run(move |ctx| {
                ctx.data_mut::<u64>(0)[0] = stats.bytes_sent;
                ctx.data_mut::<u64>(1)[0] = stats.bytes_received;
            }),
    )
    .map_err(|e| e.to_string())?;
    let sent = q.fence(&sent).map_err(|e| e.to_string())?.wait().map_err(|e| e.to_string())?;
    let received = q.fence(&received).map_err(|e| e.to_string())?.wait().map_err(|e| e.to_string())?;
    let (sent, received): (u64, u64) = (sent.iter().sum(), received.iter().sum());
    if sent != received || (q.ranks() > 1 && sent == 0) {
        return Err(format!("the ranks sent {sent} B in all but received {received} B"));
    }
    Ok(())
}

fn main() -> ExitCode {
    // celer's rank-prefixed logger, at the level of CELER_LOG (celer installs none unless asked).
    celer::logging::init();
    common::run_on_every_rank("e2e_reduce", "sum, min, max and user-defined reductions verified", run)
}
