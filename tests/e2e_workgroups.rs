//! End to end, on real ranks: kernels whose results depend on how the index space is cut into workgroups
//! (`kernels/workgroups.wgsl`: an item's local index; the sum over its workgroup through workgroup memory and a
//! barrier; a 2D local index, split along dimension 0 and as a grid) give the serial result on any number of ranks,
//! over index spaces that are no multiple of ranks × workgroup size: `submit` starts every chunk at a whole workgroup for them, with or without a granularity of the
//! program's own. Run alone (one rank) or under `mpirun -n N`; `./x test` runs it on 1 to 4 ranks.

use std::process::ExitCode;

mod common;

use celer::{access, task, Kernel, Queue};

/// The kernels of `kernels/` (workgroups here).
#[allow(dead_code)] // kernels/ holds the kernels of several tests and examples
mod own_kernels {
    celer::include_kernels!();
}

/// The workgroup size of `kernels/workgroups.wgsl`.
const WORKGROUP: usize = 64;

/// Runs entry point `entry` over `data` (with `granularity`, if given) and compares every item with `want`.
fn check(q: &Queue, entry: &'static str, data: &[u32], granularity: Option<usize>, want: &[u32]) -> Result<(), String> {
    let n = data.len();
    let kernel = Kernel::wgsl(&own_kernels::WORKGROUPS, entry).map_err(|e| e.to_string())?;
    let input = q.buffer_from(data, [n]).named("data");
    let out = q.buffer::<u32, 1>([n]).named("out");
    let mut t = task::parallel_for(&kernel, [n]).read(&input, access::one_to_one());
    t = t.discard_write(&out, access::one_to_one());
    if let Some(g) = granularity {
        t = t.granularity([g]);
    }
    q.submit(t).map_err(|e| e.to_string())?;
    let got = q.fence(&out).map_err(|e| e.to_string())?.wait().map_err(|e| e.to_string())?;
    match (0..n).find(|&i| got[i] != want[i]) {
        None => Ok(()),
        Some(i) => Err(format!(
            "workgroups::{entry} over {n} items (granularity {granularity:?}) on {} rank(s): item {i} holds {}, the \
             serial result is {} (its workgroup starts at item {})",
            q.ranks(),
            got[i],
            want[i],
            i / WORKGROUP * WORKGROUP
        )),
    }
}

fn run(q: &Queue) -> Result<(), String> {
    // 1000 and 1001 items: on 2 and 3 ranks an even split cuts inside a workgroup (500, 333, 667, ...).
    for n in [1000usize, 1001, 130] {
        let data: Vec<u32> = (0..n as u32).map(|i| i.wrapping_mul(2_654_435_761) >> 7).collect();
        let local: Vec<u32> = (0..n).map(|i| (i % WORKGROUP) as u32).collect();
        let sums: Vec<u32> = (0..n)
            .map(|i| {
                let start = i / WORKGROUP * WORKGROUP;
                data[start..(start + WORKGROUP).min(n)].iter().fold(0u32, |a, &v| a.wrapping_add(v))
            })
            .collect();
        check(q, "local_index", &data, None, &local)?;
        check(q, "group_sum", &data, None, &sums)?;
        // A granularity of the program's own combines with the workgroup's (least common multiple: 192).
        check(q, "group_sum", &data, Some(48), &sums)?;
    }
    // 2D, split along dimension 0 and as a near-square grid: workgroups of 8 x 8, rows and columns no multiple of 8.
    let (rows, cols) = (37usize, 29usize);
    let kernel = Kernel::wgsl(&own_kernels::WORKGROUPS, "local_index_2d").map_err(|e| e.to_string())?;
    let input = q.buffer_from(&vec![0u32; rows * cols], [rows, cols]).named("data_2d");
    let want: Vec<u32> = (0..rows * cols).map(|i| ((i / cols % 8) * 8 + i % cols % 8) as u32).collect();
    for grid in [false, true] {
        let out = q.buffer::<u32, 2>([rows, cols]).named("out_2d");
        let t = task::parallel_for(&kernel, [rows, cols]).read(&input, access::one_to_one());
        let t = t.discard_write(&out, access::one_to_one());
        q.submit(if grid { t.split_2d() } else { t }).map_err(|e| e.to_string())?;
        let got = q.fence(&out).map_err(|e| e.to_string())?.wait().map_err(|e| e.to_string())?;
        if let Some(i) = (0..rows * cols).find(|&i| got[i] != want[i]) {
            return Err(format!(
                "workgroups::local_index_2d over [{rows}, {cols}] (split_2d: {grid}) on {} rank(s): cell [{}, {}] \
                 holds {}, the serial result is {}",
                q.ranks(),
                i / cols,
                i % cols,
                got[i],
                want[i]
            ));
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    common::run_on_every_rank("e2e_workgroups", "workgroup-dependent kernels match the serial result", run)
}
