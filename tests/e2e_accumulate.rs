//! End to end, on real ranks and a real Vulkan device: reductions that fold in the buffer's current value
//! (`reduce_including`, `reduce_with_including`: SYCL's and Celerity's reductions without `initialize_to_identity`).
//! Sum, minimum and maximum of `i32` (atomics) and `f32` (a serial fold per chunk), bitwise OR and AND through a
//! combine closure, each repeated so that the result accumulates across steps (with and without a fence between
//! the steps), after a plain reduction, over an empty index space, with the current value written on the last rank,
//! and of a buffer no task wrote (which starts from the identity); and a deterministic block reduction asked to fold
//! in the current value, which `submit` refuses; and a histogram accumulated by atomics through `read_write`, each
//! chunk into its own rows. Every result is compared with the serial one, on every rank.
//! Run alone (one rank) or under `mpirun -n N`, with `--devices N` for N devices per rank; `./x test` does both.

use std::process::ExitCode;

mod common;

use celer::{access, kernels, task, Buffer, GridBox, Kernel, Queue, ReductionOp, Region};

/// The kernels of `kernels/` (fold_f32 and block_i32 here).
#[allow(dead_code)] // kernels/ holds the kernels of several tests and examples
mod own_kernels {
    celer::include_kernels!();
}

fn e(x: impl std::fmt::Display) -> String {
    x.to_string()
}

/// The value of a one-element buffer, fenced to every rank.
fn value<T: celer::Element + Copy>(q: &Queue, b: &Buffer<'_, T, 1>) -> Result<T, String> {
    Ok(q.fence(b).map_err(e)?.wait().map_err(e)?[0])
}

/// `i32` sum, minimum and maximum through atomics, from host-initialized values that the plain reduction would
/// drop, three steps: two without a fence between them (the second folds in the first's pending result), then a
/// fence, a third step and a fence.
fn integers(q: &Queue, data: &Buffer<'_, i32, 1>, values: &[i32]) -> Result<(), String> {
    let n = values.len();
    let (sum, min, max) = (values.iter().sum::<i32>(), *values.iter().min().unwrap(), *values.iter().max().unwrap());
    let cases = [
        ("reduce_sum", ReductionOp::Sum, 100, [100 + 2 * sum, 100 + 3 * sum]),
        // Below every value and above every value: the old value is the result, where a plain reduction gives the
        // data's minimum (maximum).
        ("reduce_min", ReductionOp::Min, min - 1000, [min - 1000; 2]),
        ("reduce_max", ReductionOp::Max, max + 1000, [max + 1000; 2]),
    ];
    for (entry, op, init, want) in cases {
        let result = q.buffer_from(&[init], [1]).named(entry);
        let kernel = Kernel::wgsl(&kernels::REDUCE_I32, entry).map_err(e)?;
        let step = || {
            q.submit(task::parallel_for(&kernel, [n]).read(data, access::one_to_one()).reduce_including(&result, op))
                .map_err(e)
        };
        step()?;
        step()?;
        let after_two = value(q, &result)?;
        step()?;
        let after_three = value(q, &result)?;
        if [after_two, after_three] != want {
            return Err(format!(
                "{entry} including the current value {init}: after 2 and 3 steps got {after_two} and {after_three}, \
                 want {want:?}"
            ));
        }
    }
    // A min whose old value lies inside the data's range, then a plain reduction followed by one that includes it.
    let result = q.buffer_from(&[min + 1], [1]).named("inner_min");
    let kernel = Kernel::wgsl(&kernels::REDUCE_I32, "reduce_min").map_err(e)?;
    q.submit(
        task::parallel_for(&kernel, [n]).read(data, access::one_to_one()).reduce_including(&result, ReductionOp::Min),
    )
    .map_err(e)?;
    let got = value(q, &result)?;
    let total = q.buffer_from(&[-5], [1]).named("plain_then_including");
    let add = Kernel::wgsl(&kernels::REDUCE_I32, "reduce_sum").map_err(e)?;
    q.submit(task::parallel_for(&add, [n]).read(data, access::one_to_one()).reduce(&total, ReductionOp::Sum))
        .map_err(e)?;
    q.submit(task::parallel_for(&add, [n]).read(data, access::one_to_one()).reduce_including(&total, ReductionOp::Sum))
        .map_err(e)?;
    let accumulated = value(q, &total)?;
    if got != min || accumulated != 2 * sum {
        return Err(format!(
            "min including {} got {got} (want {min}); a plain sum then an including one got {accumulated} (want {})",
            min + 1,
            2 * sum
        ));
    }
    Ok(())
}

/// `f32` sum, minimum and maximum (a serial fold of each chunk, starting from what the buffer holds), of small
/// integers, so that every sum is exact whatever the split.
fn floats(q: &Queue) -> Result<(), String> {
    let n = 777usize;
    let values: Vec<f32> = (0..n).map(|i| ((i * 37) % 101) as f32 - 50.0).collect();
    let data = q.buffer_from(&values, [n]).named("floats");
    let sum: f32 = values.iter().sum();
    let cases = [
        ("fold_sum", ReductionOp::Sum, 0.5f32, 0.5 + 2.0 * sum),
        ("fold_min", ReductionOp::Min, -60.25, -60.25),
        ("fold_max", ReductionOp::Max, 49.5, 50.0),
    ];
    for (entry, op, init, want) in cases {
        let result = q.buffer_from(&[init], [1]).named(entry);
        let kernel = Kernel::wgsl(&own_kernels::FOLD_F32, entry).map_err(e)?;
        for _ in 0..2 {
            q.submit(task::parallel_for(&kernel, [n]).read(&data, access::one_to_one()).reduce_including(&result, op))
                .map_err(e)?;
        }
        let got = value(q, &result)?;
        if got != want {
            return Err(format!("f32 {entry} including {init}, twice: got {got}, want {want}"));
        }
    }
    Ok(())
}

/// Bitwise OR and AND (`reduce_with_including`), whose old values carry bits no item has.
fn custom(q: &Queue) -> Result<(), String> {
    let n = 1000usize;
    // Item i carries bit 16 i / n: each rank's partial holds only its chunk's bits.
    let bits: Vec<u32> = (0..n).map(|i| 1u32 << (16 * i / n)).collect();
    let flags = q.buffer_from(&bits, [n]).named("flags");
    let cleared = q.buffer_from(&bits.iter().map(|b| !b).collect::<Vec<_>>(), [n]).named("cleared");
    let any = q.buffer_from(&[1u32 << 20], [1]).named("any");
    let all = q.buffer_from(&[0x0f0f_ffffu32], [1]).named("all");
    let or = Kernel::wgsl(&kernels::REDUCE_BITS, "reduce_or").map_err(e)?;
    let and = Kernel::wgsl(&kernels::REDUCE_BITS, "reduce_and").map_err(e)?;
    q.submit(
        task::parallel_for(&or, [n]).read(&flags, access::one_to_one()).reduce_with_including(&any, 0, |a, b| a | b),
    )
    .map_err(e)?;
    q.submit(task::parallel_for(&and, [n]).read(&cleared, access::one_to_one()).reduce_with_including(
        &all,
        !0,
        |a, b| a & b,
    ))
    .map_err(e)?;
    let (got_or, got_and) = (value(q, &any)?, value(q, &all)?);
    let (want_or, want_and) = (0xffff | 1 << 20, 0x0f0f_0000);
    if got_or != want_or || got_and != want_and {
        return Err(format!(
            "user-defined reductions including the current value: OR {got_or:#x} (want {want_or:#x}), AND \
             {got_and:#x} (want {want_and:#x})"
        ));
    }
    Ok(())
}

/// The edge cases: an empty index space keeps the old value; an old value written by the last rank's host task
/// (rank 0 must receive it); a buffer no task wrote starts from the identity (celer warns); a block reduction that
/// would include the old value is refused at submit, naming the task, kernel and buffer.
fn edges(q: &Queue, data: &Buffer<'_, i32, 1>, values: &[i32]) -> Result<(), String> {
    let n = values.len();
    let sum = values.iter().sum::<i32>();
    let add = Kernel::wgsl(&kernels::REDUCE_I32, "reduce_sum").map_err(e)?;

    let kept = q.buffer_from(&[7], [1]).named("kept");
    q.submit(task::parallel_for(&add, [0]).read(data, access::one_to_one()).reduce_including(&kept, ReductionOp::Sum))
        .map_err(e)?;
    let got = value(q, &kept)?;
    if got != 7 {
        return Err(format!("a sum over no items including 7: got {got}"));
    }

    // A zero-dimensional buffer (Celerity's buffer<T, 0>) as the target.
    let scalar = q.buffer_from(&[3], []).named("scalar");
    q.submit(
        task::parallel_for(&add, [n]).read(data, access::one_to_one()).reduce_including(&scalar, ReductionOp::Sum),
    )
    .map_err(e)?;
    let got = q.fence(&scalar).map_err(e)?.value().map_err(e)?;
    if got != 3 + sum {
        return Err(format!("a sum into a 0-D buffer including 3: got {got}, want {}", 3 + sum));
    }

    // Item r of a collective task is rank r: only the last rank's chunk writes the cell.
    let ranks = q.ranks();
    let remote = q.buffer::<i32, 1>([1]).named("written_by_last_rank");
    let last = access::custom("last_rank", move |chunk: &GridBox<1>, _: &GridBox<1>| {
        if chunk.max()[0] == ranks {
            Region::from(GridBox::d1(0, 1))
        } else {
            Region::new()
        }
    });
    q.submit(task::host_collective().discard_write(&remote, last).name("write_on_last_rank").run(|ctx| {
        if let Some(cell) = ctx.data_mut::<i32>(0).first_mut() {
            *cell = 42;
        }
    }))
    .map_err(e)?;
    q.submit(
        task::parallel_for(&add, [n]).read(data, access::one_to_one()).reduce_including(&remote, ReductionOp::Sum),
    )
    .map_err(e)?;
    let got = value(q, &remote)?;
    if got != 42 + sum {
        return Err(format!("a sum including 42 written by rank {}: got {got}, want {}", ranks - 1, 42 + sum));
    }

    let fresh = q.buffer::<i32, 1>([1]).named("never_written");
    q.submit(task::parallel_for(&add, [n]).read(data, access::one_to_one()).reduce_including(&fresh, ReductionOp::Sum))
        .map_err(e)?;
    let got = value(q, &fresh)?;
    if got != sum {
        return Err(format!("a sum including a never-written buffer: got {got}, want the plain sum {sum}"));
    }

    let block = Kernel::wgsl(&own_kernels::BLOCK_I32, "reduce_sum").map_err(e)?;
    let target = q.buffer_from(&[1], [1]).named("block_target");
    let refused = q.submit(
        task::parallel_for(&block, [n])
            .read(data, access::one_to_one())
            .reduce_including(&target, ReductionOp::Sum)
            .name("deterministic_sum"),
    );
    match refused {
        Err(err)
            if err.to_string().contains("\"deterministic_sum\"")
                && err.to_string().contains("block_i32::reduce_sum")
                && err.to_string().contains("\"block_target\"") => {}
        other => return Err(format!("a block reduction including the current value: {other:?}")),
    }
    Ok(())
}

/// A histogram accumulated by atomics (`kernels/histogram.wgsl`): each item adds one to its value's bin in its block's
/// row, through `read_write` with a mapper that gives a chunk its blocks' rows, twice; chunks are cut at whole blocks,
/// so nodes write disjoint rows. Items of a chunk update each other's cells, but only through atomics (the binding
/// is an `array<atomic<u32>>`): `submit` must take it (it refused it as a race), and the rows must sum to twice the
/// serial histogram.
fn histogram(q: &Queue) -> Result<(), String> {
    let (n, block, nbins) = (1000usize, 64usize, 10usize);
    let blocks = n.div_ceil(block);
    let values: Vec<u32> = (0..n as u32).map(|i| (i * 7919) % 1009).collect();
    let data = q.buffer_from(&values, [n]).named("samples");
    let bins = q.buffer_from(&vec![0u32; blocks * nbins], [blocks, nbins]).named("bins");
    let rows = access::custom("block_rows", move |chunk: &GridBox<1>, b: &GridBox<2>| {
        let rows = GridBox::new([chunk.min()[0] / block, 0], [chunk.max()[0].div_ceil(block), b.max()[1]]);
        Region::from(rows)
    });
    let k = Kernel::wgsl(&own_kernels::HISTOGRAM, "main").map_err(e)?;
    for _ in 0..2 {
        q.submit(
            task::parallel_for(&k, [n])
                .granularity([block])
                .read(&data, access::one_to_one())
                .read_write(&bins, rows.clone())
                .scalar("block", block as u32)
                .scalar("nbins", nbins as u32)
                .name("histogram"),
        )
        .map_err(e)?;
    }
    let got = q.fence(&bins).map_err(e)?.wait().map_err(e)?;
    let mut want = vec![0u32; nbins];
    for v in &values {
        want[*v as usize % nbins] += 2;
    }
    let summed: Vec<u32> = (0..nbins).map(|b| (0..blocks).map(|r| got[r * nbins + b]).sum()).collect();
    if summed != want {
        return Err(format!("the histogram by atomics: got {summed:?}, want {want:?}"));
    }
    Ok(())
}

fn run(q: &Queue) -> Result<(), String> {
    let n = 1000usize;
    let values: Vec<i32> = (0..n as i32).map(|i| (i * 7919) % 1009 - 300).collect();
    let data = q.buffer_from(&values, [n]).named("data");
    integers(q, &data, &values)?;
    floats(q)?;
    custom(q)?;
    histogram(q)?;
    edges(q, &data, &values)
}

fn main() -> ExitCode {
    // `--devices N`: every rank drives N devices (CELER_DEVICES); the results must not change.
    let args: Vec<String> = std::env::args().collect();
    common::env_from_arg(&args, "--devices", "CELER_DEVICES");
    celer::logging::init();
    common::run_on_every_rank("e2e_accumulate", "reductions including the current value verified", run)
}
