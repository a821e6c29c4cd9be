//! Batches of ordinary dispatches replayed from cached command buffers (`celer_exec::gpu`, module `batch::replay`)
//! on this machine's Vulkan device: the same results as recording every batch, pieces recorded once and submitted
//! again (single dispatches and double-buffered pairs; completion by timeline semaphore or fences), barriers where
//! recording puts them, independent dispatches and mixed batches recorded, and cached buffers let go when an
//! allocation they bind is freed (only those).

use std::time::{Duration, Instant};

use celer_exec::gpu::{Access, BatchId, Box3, DeviceAllocation, Gpu, GpuOptions, KernelId, Launch};
use celer_exec::shaders;

/// How long a batch may take before a test fails instead of hanging.
const TIME_LIMIT: Duration = Duration::from_secs(30);

/// Cells of the test allocations (one workgroup of gpu_add).
const CELLS: usize = 64;

fn open(record_every_batch: bool) -> Gpu {
    Gpu::with_options(GpuOptions { record_every_batch, ..Default::default() })
        .expect("a Vulkan device (on Debian: libvulkan1 + mesa-vulkan-drivers)")
}

fn wait(gpu: &mut Gpu, id: BatchId) {
    let start = Instant::now();
    let mut completed = Vec::new();
    while !gpu.is_complete(id) {
        assert!(start.elapsed() < TIME_LIMIT, "batch {id} incomplete after {TIME_LIMIT:?}");
        completed.clear();
        gpu.poll(&mut completed).expect("poll");
        std::thread::yield_now();
    }
}

fn zeroed(gpu: &mut Gpu) -> DeviceAllocation {
    let bounds = Box3::d1(0, CELLS);
    let alloc = gpu.allocate(bounds, 4).expect("allocation");
    let mut b = gpu.batch().expect("batch");
    b.upload(&alloc, bounds, &[0u8; CELLS * 4], bounds).unwrap();
    let id = b.submit().unwrap();
    wait(gpu, id);
    alloc
}

fn read(gpu: &mut Gpu, alloc: &DeviceAllocation) -> Vec<u32> {
    let bounds = Box3::d1(0, CELLS);
    let mut b = gpu.batch().expect("batch");
    let download = b.download(alloc, bounds).unwrap();
    let id = b.submit().unwrap();
    wait(gpu, id);
    let mut out = vec![0u8; CELLS * 4];
    gpu.read_download(download, &mut out, bounds).expect("read download");
    out.chunks_exact(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
}

/// Submits batches of `sizes` dependent adds of `amount` to `alloc` (all in flight at once), waits for the last,
/// and returns the barriers each batch derived.
fn chain(gpu: &mut Gpu, add: KernelId, alloc: &DeviceAllocation, sizes: &[usize], amount: u32) -> Vec<usize> {
    let mut barriers = Vec::new();
    let mut last = None;
    for &n in sizes {
        let mut b = gpu.batch().expect("batch");
        for _ in 0..n {
            b.dispatch(add, Launch::d1(0, CELLS), &[Access::read_write(alloc)], &[amount]).unwrap();
        }
        barriers.push(b.barriers());
        last = Some(b.submit().unwrap());
    }
    if let Some(id) = last {
        wait(gpu, id);
    }
    barriers
}

#[test]
fn a_chain_replays_recorded_pieces_with_the_results_and_barriers_of_recording() {
    let sizes = [5, 64, 5, 37, 100, 1, 64];
    let total: usize = sizes.iter().sum();
    let mut runs = Vec::new();
    for record_every_batch in [true, false] {
        let mut gpu = open(record_every_batch);
        let add = gpu.load_kernel(&shaders::GPU_ADD, "main").expect("load gpu_add");
        let data = zeroed(&mut gpu);
        let barriers = chain(&mut gpu, add, &data, &sizes, 1);
        let first = gpu.replayed_pieces();
        let again = chain(&mut gpu, add, &data, &sizes, 1);
        assert_eq!(barriers, again);
        assert_eq!(read(&mut gpu, &data), vec![2 * total as u32; CELLS], "every add arrived once");
        runs.push((barriers, first, gpu.replayed_pieces()));
    }
    let (recorded, replayed) = (&runs[0], &runs[1]);
    assert_eq!(recorded.0, replayed.0, "a replayed batch derives the barriers a recorded one does");
    assert_eq!(recorded.2, (0, 0), "record_every_batch replays nothing");
    let (pieces, reused) = replayed.1;
    assert!(pieces > 0 && reused > 0, "the first round recorded pieces and reused some: {:?}", replayed.1);
    assert_eq!(replayed.2 .0, pieces, "the second round recorded nothing new");
    assert!(replayed.2 .1 > reused, "the second round replayed its pieces");
}

#[test]
fn alternating_and_independent_dispatches_and_mixed_batches_give_the_results_of_recording() {
    let mut results = Vec::new();
    for record_every_batch in [true, false] {
        let mut gpu = open(record_every_batch);
        let add = gpu.load_kernel(&shaders::GPU_ADD, "main").expect("load gpu_add");
        let (a, b) = (zeroed(&mut gpu), zeroed(&mut gpu));
        let mut barriers = Vec::new();
        for round in 0..3u32 {
            // Alternating between two allocations: each dispatch independent of the one before it.
            let mut batch = gpu.batch().expect("batch");
            for k in 0..10u32 {
                let target = if k % 2 == 0 { &a } else { &b };
                batch.dispatch(add, Launch::d1(0, CELLS), &[Access::read_write(target)], &[k + round]).unwrap();
            }
            barriers.push(batch.barriers());
            batch.submit().unwrap();
            // Dispatches, then a download in the same batch: recorded directly from there on.
            let mut batch = gpu.batch().expect("batch");
            batch.dispatch(add, Launch::d1(0, CELLS), &[Access::read_write(&a)], &[100]).unwrap();
            batch.dispatch(add, Launch::d1(0, CELLS / 2), &[Access::read_write(&a)], &[1000]).unwrap();
            let download = batch.download(&a, Box3::d1(0, CELLS)).unwrap();
            batch.dispatch(add, Launch::d1(0, CELLS), &[Access::read_write(&b)], &[7]).unwrap();
            barriers.push(batch.barriers());
            let id = batch.submit().unwrap();
            wait(&mut gpu, id);
            let mut out = vec![0u8; CELLS * 4];
            gpu.read_download(download, &mut out, Box3::d1(0, CELLS)).expect("read download");
            results.push((record_every_batch, out));
        }
        results.push((
            record_every_batch,
            read(&mut gpu, &a).iter().chain(&read(&mut gpu, &b)).flat_map(|v| v.to_le_bytes()).collect(),
        ));
        results.push((record_every_batch, barriers.iter().flat_map(|&n| (n as u32).to_le_bytes()).collect()));
    }
    let half = results.len() / 2;
    for (recorded, replayed) in results[..half].iter().zip(&results[half..]) {
        assert_eq!(recorded.1, replayed.1, "replay changed a result or a barrier count");
    }
    // The expected values, independently of either way: a got 0+2+4+6+8 (+round*5) per round, then 100, and 1000
    // on its first half; b got 1+3+5+7+9 (+round*5) and 7.
    let a_cell = |i: usize| (0..3u32).map(|r| 20 + 5 * r + 100 + if i < CELLS / 2 { 1000 } else { 0 }).sum::<u32>();
    let b_cell = (0..3u32).map(|r| 25 + 5 * r + 7).sum::<u32>();
    let last: Vec<u32> =
        results[half - 2].1.chunks_exact(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
    let expected: Vec<u32> = (0..CELLS).map(a_cell).chain(std::iter::repeat_n(b_cell, CELLS)).collect();
    assert_eq!(last, expected);
}

#[test]
fn freeing_an_allocation_lets_cached_pieces_go_and_their_command_buffers_serve_again() {
    let mut gpu = open(false);
    let add = gpu.load_kernel(&shaders::GPU_ADD, "main").expect("load gpu_add");
    let mut allocated = Vec::new();
    for round in 0..12u32 {
        let data = zeroed(&mut gpu);
        chain(&mut gpu, add, &data, &[8, 8, 3], round + 1);
        assert_eq!(read(&mut gpu, &data), vec![19 * (round + 1); CELLS]);
        gpu.free(data);
        allocated.push(gpu.command_buffers_allocated());
    }
    let (pieces, reused) = gpu.replayed_pieces();
    assert!(reused >= 12, "within a round the second batch of 8 replays the first's piece: {reused}");
    assert!(pieces >= 24, "every round records its pieces anew after the free: {pieces}");
    // Retired pieces go back to the pool once their batches completed, so the pool stops growing.
    assert_eq!(allocated[11], allocated[5], "command buffers allocated per round: {allocated:?}");
}

#[test]
fn freeing_an_allocation_keeps_the_cached_pieces_of_the_others() {
    let mut gpu = open(false);
    let add = gpu.load_kernel(&shaders::GPU_ADD, "main").expect("load gpu_add");
    let kept = zeroed(&mut gpu);
    chain(&mut gpu, add, &kept, &[8], 1);
    let (recorded, _) = gpu.replayed_pieces();
    // A temporary allocation each round, used by a batch of its own and freed: its pieces go, the kept one's stay.
    for round in 1..=4u32 {
        let temp = zeroed(&mut gpu);
        chain(&mut gpu, add, &temp, &[8], round);
        assert_eq!(read(&mut gpu, &temp), vec![8 * round; CELLS]);
        gpu.free(temp);
        chain(&mut gpu, add, &kept, &[8], 1);
    }
    let (recorded_after, _) = gpu.replayed_pieces();
    assert_eq!(
        recorded_after - recorded,
        4,
        "one piece recorded per temporary allocation, none again for the kept one"
    );
    assert_eq!(read(&mut gpu, &kept), vec![5 * 8; CELLS]);
}

#[test]
fn double_buffered_steps_replay_as_pairs_and_independent_dispatches_are_recorded() {
    let mut runs = Vec::new();
    for record_every_batch in [true, false] {
        let mut gpu = open(record_every_batch);
        let add = gpu.load_kernel(&shaders::GPU_ADD, "main").expect("load gpu_add");
        let (a, b) = (zeroed(&mut gpu), zeroed(&mut gpu));
        let mut barriers = Vec::new();
        let mut last = None;
        for n in [20, 64, 6, 64] {
            let mut batch = gpu.batch().expect("batch");
            for k in 0..n {
                let target = if k % 2 == 0 { &a } else { &b };
                batch.dispatch(add, Launch::d1(0, CELLS), &[Access::read_write(target)], &[3]).unwrap();
            }
            barriers.push(batch.barriers());
            last = Some(batch.submit().unwrap());
        }
        wait(&mut gpu, last.unwrap());
        let pairs = gpu.replayed_pieces();
        // Ten dispatches on ten allocations: nothing orders them, so replayed pieces would serialise them.
        let many: Vec<DeviceAllocation> = (0..10).map(|_| zeroed(&mut gpu)).collect();
        for _ in 0..2 {
            let mut batch = gpu.batch().expect("batch");
            for alloc in &many {
                batch.dispatch(add, Launch::d1(0, CELLS), &[Access::read_write(alloc)], &[1]).unwrap();
            }
            barriers.push(batch.barriers());
            let id = batch.submit().unwrap();
            wait(&mut gpu, id);
        }
        assert_eq!(gpu.replayed_pieces(), pairs, "independent dispatches are recorded, not replayed");
        let mut cells = read(&mut gpu, &a);
        cells.extend(read(&mut gpu, &b));
        for alloc in &many {
            cells.extend(read(&mut gpu, alloc));
        }
        runs.push((barriers, cells, pairs));
    }
    assert_eq!(runs[0].0, runs[1].0, "the same barriers either way");
    assert_eq!(runs[0].1, runs[1].1, "the same results either way");
    let expected: Vec<u32> = [vec![3 * 77; CELLS], vec![3 * 77; CELLS], vec![2; 10 * CELLS]].concat();
    assert_eq!(runs[1].1, expected);
    assert_eq!(runs[0].2, (0, 0));
    let (recorded, replayed) = runs[1].2;
    assert!(recorded > 0 && replayed > 0, "pairs recorded once and replayed: {:?}", runs[1].2);
}

#[test]
fn replayed_batches_complete_by_polling_fences_without_timeline_semaphores() {
    let mut gpu = Gpu::with_options(GpuOptions { force_fences: true, ..Default::default() }).expect("a Vulkan device");
    let add = gpu.load_kernel(&shaders::GPU_ADD, "main").expect("load gpu_add");
    let data = zeroed(&mut gpu);
    chain(&mut gpu, add, &data, &[16, 16, 16, 40], 2);
    let (recorded, replayed) = gpu.replayed_pieces();
    assert!(recorded > 0 && replayed >= 2, "pieces recorded then replayed: {:?}", (recorded, replayed));
    assert_eq!(read(&mut gpu, &data), vec![2 * 88; CELLS]);
}
