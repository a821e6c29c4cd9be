//! End to end, on real ranks: a fence of part of a buffer returns exactly that box and moves only it, and
//! zero-dimensional buffers (one value) round-trip through creation data, a kernel's reduction, a host task and
//! fences. Run alone (one rank) or under `mpirun -n N`; `./x test` does both.

use std::process::ExitCode;

mod common;

use celer::{access, kernels, task, Kernel, Queue, ReductionOp};

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
    let before = q.stats().map(|s| s.bytes_received);
    let part = q.fence_subrange(&field, [5, 2], [4, 3]).map_err(e)?;
    if part.range() != [4, 3] {
        return Err(format!("a fence of a [4, 3] box reports range {:?}", part.range()));
    }
    let got = part.wait().map_err(w)?;
    let want: Vec<u32> = (5..9).flat_map(|r| (2..5).map(move |c| (r * cols + c) as u32)).collect();
    if got != want {
        return Err(format!("fence of rows 5..9, columns 2..5: got {got:?}, want {want:?}"));
    }
    // Only the box travels: no rank receives more than its 12 cells.
    if let (Some(before), Some(after)) = (before, q.stats().map(|s| s.bytes_received)) {
        if after - before > 12 * 4 {
            return Err(format!("the fence of 12 cells made this rank receive {} B", after - before));
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
    Ok(())
}

fn main() -> ExitCode {
    common::run_on_every_rank("e2e_parts", "subrange fences and 0-D buffers verified", run)
}
