//! The GPU executor backend (`celer_exec::gpu`) on this machine's Vulkan device (lavapipe without
//! a GPU): strided box copies, kernels written in buffer coordinates on allocations that do not
//! start at 0, batches in flight completed by polling only (timeline semaphore and fence
//! fallback), device→device copies into a resized allocation, launches beyond the device's workgroup-count limit
//! (split into several dispatches, block reductions included), dispatches over many allocations in turn (the
//! descriptor sets reused), staging lent to the host (a download read in place, an upload from staging the host wrote,
//! a plain copy and a kernel-packed column), and the errors that name kernels.

use std::time::{Duration, Instant};

use celer_exec::gpu::{
    bounds_record_init, bounds_record_words, push_constant_bytes, read_bounds_record, Access, AccessMode, BatchId,
    Box3, CompletionMode, Gpu, GpuError, GpuOptions, Launch,
};
use celer_exec::shaders;

/// How long a batch may take before a test fails instead of hanging.
const TIME_LIMIT: Duration = Duration::from_secs(30);

fn open_gpu() -> Gpu {
    let gpu = Gpu::new().expect("a Vulkan device (on Debian: libvulkan1 + mesa-vulkan-drivers)");
    eprintln!("gpu tests: {} ({:?})", gpu.info(), gpu.completion_mode());
    gpu
}

fn f32_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

fn f32s(bytes: &[u8]) -> Vec<f32> {
    bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
}

fn u32_bytes(values: &[u32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

fn u32s(bytes: &[u8]) -> Vec<u32> {
    bytes.chunks_exact(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
}

/// Polls (never waits) until every batch of `ids` completed, and returns the completion order.
fn poll_all(gpu: &mut Gpu, ids: &[BatchId]) -> Vec<BatchId> {
    let start = Instant::now();
    let mut completed = Vec::new();
    while !ids.iter().all(|&id| gpu.is_complete(id)) {
        assert!(start.elapsed() < TIME_LIMIT, "batches {ids:?} incomplete after {TIME_LIMIT:?}; done: {completed:?}");
        if gpu.poll(&mut completed).expect("poll") == 0 {
            std::thread::yield_now();
        }
    }
    completed
}

/// The 2D test buffer: 32 rows of 40 cells, small integers so every result is exact in f32.
const ROWS: usize = 32;
const COLS: usize = 40;

fn initial(i: usize, j: usize) -> f32 {
    ((i * COLS + j) % 17) as f32
}

#[test]
fn a_kernel_in_buffer_coordinates_runs_on_allocations_that_do_not_start_at_zero() {
    let mut gpu = open_gpu();
    let stencil = gpu.load_kernel(&shaders::GPU_STENCIL, "main").expect("load gpu_stencil");
    let whole = Box3::d2([0, 0], [ROWS, COLS]);
    let host: Vec<f32> = (0..ROWS * COLS).map(|k| initial(k / COLS, k % COLS)).collect();
    const SENTINEL: f32 = -1.0;

    // src holds rows 4..20, columns 6..30; dst a different box, rows 2..24, columns 4..36.
    let src_box = Box3::d2([4, 6], [20, 30]);
    let dst_box = Box3::d2([2, 4], [24, 36]);
    let src = gpu.allocate(src_box, 4).expect("src allocation");
    let dst = gpu.allocate(dst_box, 4).expect("dst allocation");
    // The kernel covers rows 5..19 and all of src's columns, so its neighbours at columns 5 and
    // 30 fall outside src (they count as 0) and rows 4 and 19 of src are not computed.
    let chunk = Box3::d2([5, 6], [19, 30]);
    // Downloaded: a sub-box of dst that covers the chunk and a border of untouched cells.
    let region = Box3::d2([3, 5], [21, 33]);
    let scale = 0.5f32;

    let mut batch = gpu.batch().expect("batch");
    // A strided sub-box of the host's whole buffer: one run per row.
    batch.upload(&src, src_box, &f32_bytes(&host), whole).expect("upload src");
    batch.upload(&dst, dst_box, &f32_bytes(&vec![SENTINEL; dst_box.volume()]), dst_box).expect("upload dst");
    batch
        .dispatch(stencil, Launch::new(chunk, 2), &[Access::read(&src), Access::write(&dst)], &[scale.to_bits()])
        .expect("dispatch gpu_stencil");
    let download = batch.download(&dst, region).expect("download");
    // The dispatch reads src after its upload: one barrier; the download reads dst after the
    // dispatch: another. The two uploads are independent.
    assert_eq!(batch.barriers(), 2);
    let id = batch.submit().expect("submit");

    // Read back into the whole host buffer (strided again), pre-filled with NaN.
    let mut out = f32_bytes(&vec![f32::NAN; ROWS * COLS]);
    let early = gpu.read_download(download, &mut out, whole).unwrap_err();
    assert!(matches!(early, GpuError::DownloadNotReady(_)), "{early}");
    assert_eq!(poll_all(&mut gpu, &[id]), [id]);
    gpu.read_download(download, &mut out, whole).expect("read download");
    let out = f32s(&out);

    let src_at = |i: usize, j: usize| {
        let inside = (4..20).contains(&i) && (6..30).contains(&j);
        if inside {
            initial(i, j)
        } else {
            0.0
        }
    };
    for i in 0..ROWS {
        for j in 0..COLS {
            let got = out[i * COLS + j];
            let in_region = (3..21).contains(&i) && (5..33).contains(&j);
            let in_chunk = (5..19).contains(&i) && (6..30).contains(&j);
            if !in_region {
                assert!(got.is_nan(), "({i}, {j}) lies outside the downloaded region but holds {got}");
            } else if in_chunk {
                let want = src_at(i, j - 1) + 2.0 * src_at(i, j) + src_at(i, j + 1) + scale * i as f32;
                assert_eq!(got, want, "stencil at ({i}, {j})");
            } else {
                assert_eq!(got, SENTINEL, "({i}, {j}) lies outside the chunk, so the kernel must not write it");
            }
        }
    }
    // A download is read once.
    assert!(matches!(gpu.read_download(download, &mut [0u8; 4], region), Err(GpuError::UnknownDownload(_))));
}

/// Submits four batches on `gpu` without waiting, three of them depending on earlier ones, and
/// checks what each downloads once polling alone has seen them complete.
fn batches_in_flight(gpu: &mut Gpu) {
    let add = gpu.load_kernel(&shaders::GPU_ADD, "main").expect("load gpu_add");
    let bounds = Box3::d1(1000, 1256);
    let data = gpu.allocate(bounds, 4).expect("allocation");
    let zeros = u32_bytes(&[0; 256]);
    let mut ids = Vec::new();
    let mut downloads = Vec::new();

    let mut b = gpu.batch().expect("batch 1");
    b.upload(&data, bounds, &zeros, bounds).unwrap();
    b.dispatch(add, Launch::d1(1000, 1256), &[Access::read_write(&data)], &[1]).unwrap();
    downloads.push(b.download(&data, bounds).unwrap());
    ids.push(b.submit().unwrap());

    // Two dispatches on disjoint halves of one allocation still get a barrier (tracking is per
    // allocation); a dispatch on another allocation does not.
    let other = gpu.allocate(Box3::d1(0, 64), 4).expect("allocation");
    let mut b = gpu.batch().expect("batch 2");
    b.dispatch(add, Launch::d1(1000, 1100), &[Access::read_write(&data)], &[10]).unwrap();
    b.dispatch(add, Launch::d1(0, 64), &[Access::read_write(&other)], &[5]).unwrap();
    assert_eq!(b.barriers(), 0, "independent dispatches need no barrier");
    b.dispatch(add, Launch::d1(1100, 1256), &[Access::read_write(&data)], &[100]).unwrap();
    assert_eq!(b.barriers(), 1);
    downloads.push(b.download(&data, bounds).unwrap());
    ids.push(b.submit().unwrap());

    // Sixteen dependent dispatches in one batch.
    let mut b = gpu.batch().expect("batch 3");
    for _ in 0..16 {
        b.dispatch(add, Launch::d1(1000, 1256), &[Access::read_write(&data)], &[1000]).unwrap();
    }
    assert_eq!(b.barriers(), 15);
    downloads.push(b.download(&data, Box3::d1(1090, 1110)).unwrap());
    ids.push(b.submit().unwrap());

    // An empty batch completes too.
    ids.push(gpu.batch().expect("batch 4").submit().unwrap());
    assert_eq!(gpu.in_flight(), 4);

    assert_eq!(poll_all(gpu, &ids), ids, "batches complete in submission order");
    assert_eq!(gpu.in_flight(), 0);

    let read = |gpu: &mut Gpu, id, region: Box3| {
        let mut out = vec![0u8; region.volume() * 4];
        gpu.read_download(id, &mut out, region).expect("read download");
        u32s(&out)
    };
    assert_eq!(read(gpu, downloads[0], bounds), vec![1; 256]);
    let after_2: Vec<u32> = (1000..1256).map(|i| if i < 1100 { 11 } else { 101 }).collect();
    assert_eq!(read(gpu, downloads[1], bounds), after_2);
    let after_3: Vec<u32> = (1090..1110).map(|i| if i < 1100 { 16_011 } else { 16_101 }).collect();
    assert_eq!(read(gpu, downloads[2], Box3::d1(1090, 1110)), after_3);
}

#[test]
fn several_batches_in_flight_complete_by_polling_the_timeline_semaphore() {
    let mut gpu = open_gpu();
    batches_in_flight(&mut gpu);
    let staging = gpu.staging_buffers_allocated();
    assert_eq!(gpu.command_buffers_allocated(), 4, "one command buffer per batch in flight");
    batches_in_flight(&mut gpu);
    assert_eq!(gpu.staging_buffers_allocated(), staging, "the second round reuses the staging buffers");
    assert_eq!(gpu.command_buffers_allocated(), 4, "the second round reuses the command buffers");
}

#[test]
fn a_ranks_devices_on_one_gpu_share_its_vulkan_device_and_run_independently() {
    let mut gpus = Gpu::open_rank(2, &GpuOptions::default()).expect("two devices of a rank");
    let mut second = gpus.pop().unwrap();
    let mut first = gpus.pop().unwrap();
    assert_eq!(first.info(), second.info(), "without CELER_DEVICE both land on the one preferred device here");
    assert!(first.shares_device(&second), "two logical devices on one GPU must not be two Vulkan devices");
    assert!(!first.shares_device(&open_gpu()), "a Gpu opened alone has a device of its own");

    // A batch in flight on the second while the first runs batches of its own and polls only itself.
    let add = second.load_kernel(&shaders::GPU_ADD, "main").unwrap();
    let bounds = Box3::d1(0, 512);
    let data = second.allocate(bounds, 4).unwrap();
    let mut b = second.batch().unwrap();
    b.upload(&data, bounds, &u32_bytes(&[7; 512]), bounds).unwrap();
    for _ in 0..8 {
        b.dispatch(add, Launch::d1(0, 512), &[Access::read_write(&data)], &[3]).unwrap();
    }
    let download = b.download(&data, bounds).unwrap();
    let id = b.submit().unwrap();
    batches_in_flight(&mut first);
    // Each counts its own batches: the first's four completions say nothing of the second's one.
    assert_eq!(id, BatchId(1), "batch ids are per Gpu");
    drop(first);
    poll_all(&mut second, &[id]);
    let mut out = vec![0u8; 512 * 4];
    second.read_download(download, &mut out, bounds).unwrap();
    assert_eq!(u32s(&out), vec![7 + 8 * 3; 512], "the second device's batch ran whole, beside the first's");
}

#[test]
fn a_batch_copies_from_another_devices_allocation_after_waiting_for_its_batch_on_the_gpu() {
    let mut gpus = Gpu::open_rank(2, &GpuOptions::default()).expect("two devices of a rank");
    let mut second = gpus.pop().unwrap();
    let mut first = gpus.pop().unwrap();
    assert!(first.shares_device(&second));
    if first.completion_mode() != CompletionMode::Timeline {
        eprintln!("no timeline semaphores: nothing to wait on");
        return;
    }
    // The first device writes cells 100..612 in a batch of many dependent dispatches, not waited for.
    let add = first.load_kernel(&shaders::GPU_ADD, "main").unwrap();
    let src_bounds = Box3::d1(100, 612);
    let src = first.allocate(src_bounds, 4).unwrap();
    let mut b = first.batch().unwrap();
    b.upload(&src, src_bounds, &u32_bytes(&[7; 512]), src_bounds).unwrap();
    for _ in 0..32 {
        b.dispatch(add, Launch::d1(100, 612), &[Access::read_write(&src)], &[3]).unwrap();
    }
    let written = b.submit().unwrap();
    let ready = first.signal_point(written).expect("a timeline point");
    assert_eq!(ready.batch(), written);
    // The second copies a halo of it (cells 580..612) into its own allocation on the GPU, its batch waiting for the
    // first's on the GPU; the host never polls the first.
    let shared = src.share();
    first.free(src); // the shared handle keeps the memory
    let dst_bounds = Box3::d1(580, 1100);
    let dst = second.allocate(dst_bounds, 4).unwrap();
    let halo = Box3::d1(580, 612);
    let mut b = second.batch().unwrap();
    b.upload(&dst, dst_bounds, &u32_bytes(&[1; 520]), dst_bounds).unwrap();
    assert_eq!(b.timeline_waits(), 0);
    b.copy_from_shared(&shared, &ready, &dst, halo).unwrap();
    assert_eq!(b.timeline_waits(), 1, "the submission waits for the first device's batch");
    // A second copy after an earlier point of the same timeline adds no second wait.
    let earlier = first.signal_point(BatchId(written.0 - 1)).unwrap();
    b.copy_from_shared(&shared, &earlier, &dst, Box3::d1(570, 580)).unwrap_err(); // outside the destination
    b.copy_from_shared(&shared, &earlier, &dst, Box3::d1(600, 612)).unwrap();
    assert_eq!(b.timeline_waits(), 1, "one wait per timeline, at the latest value");
    let download = b.download(&dst, dst_bounds).unwrap();
    let id = b.submit().unwrap();
    drop(shared);
    poll_all(&mut second, &[id]);
    let mut out = vec![0u8; 520 * 4];
    second.read_download(download, &mut out, dst_bounds).unwrap();
    let out = u32s(&out);
    assert_eq!(out[..32], [7 + 32 * 3; 32], "the halo holds what the first device's batch wrote");
    assert_eq!(out[32..], [1; 488], "nothing else was copied");

    // Another Vulkan device's allocation or timeline is refused, naming both allocations.
    let alone = open_gpu();
    let foreign = alone.allocate(src_bounds, 4).unwrap();
    let mut b = second.batch().unwrap();
    let err = b.copy_from_shared(&foreign.share(), &ready, &dst, halo).unwrap_err();
    assert!(matches!(err, GpuError::BadDeviceCopy { .. }), "{err}");
    assert!(err.to_string().contains("another Vulkan device"), "{err}");
    let other_ready = alone.signal_point(BatchId(0)).unwrap();
    let mine = first.allocate(src_bounds, 4).unwrap();
    let err = b.copy_from_shared(&mine.share(), &other_ready, &dst, halo).unwrap_err();
    assert!(err.to_string().contains("another Vulkan device's timeline"), "{err}");
    let err = b.wait_for(&other_ready).unwrap_err();
    assert!(matches!(err, GpuError::ForeignTimeline { .. }), "{err}");
    assert_eq!(b.timeline_waits(), 0, "a refused wait adds none");
    b.wait_for(&ready).unwrap();
    assert_eq!(b.timeline_waits(), 1);
    let err = b.copy_from_shared(&mine.share(), &ready, &dst, Box3::d1(50, 120)).unwrap_err();
    assert!(matches!(err, GpuError::RegionOutside(_)), "{err}");
    assert!(b.is_empty(), "refused copies record nothing");
    drop(b);
    // The first device's next batch may wait for the second's copy on the GPU (before overwriting its source).
    let copied = second.signal_point(id).unwrap();
    let mut b = first.batch().unwrap();
    b.wait_for(&copied).unwrap();
    b.upload(&mine, src_bounds, &u32_bytes(&[5; 512]), src_bounds).unwrap();
    let after = b.submit().unwrap();
    poll_all(&mut first, &[after]);
}

#[test]
fn a_discarded_batch_runs_nothing_and_its_command_buffer_serves_the_next_batch() {
    let mut gpu = open_gpu();
    let add = gpu.load_kernel(&shaders::GPU_ADD, "main").expect("load gpu_add");
    let bounds = Box3::d1(0, 64);
    let data = gpu.allocate(bounds, 4).expect("allocation");
    let mut b = gpu.batch().expect("batch");
    b.upload(&data, bounds, &u32_bytes(&[0; 64]), bounds).unwrap();
    let first = b.submit().unwrap();
    poll_all(&mut gpu, &[first]);
    for _ in 0..3 {
        // Recorded, then dropped unsubmitted: the device never sees it.
        let mut b = gpu.batch().expect("batch");
        b.dispatch(add, Launch::d1(0, 64), &[Access::read_write(&data)], &[1000]).unwrap();
        drop(b);
    }
    let mut b = gpu.batch().expect("batch");
    b.dispatch(add, Launch::d1(0, 64), &[Access::read_write(&data)], &[7]).unwrap();
    let download = b.download(&data, bounds).unwrap();
    let last = b.submit().unwrap();
    poll_all(&mut gpu, &[last]);
    let mut out = vec![0u8; 64 * 4];
    gpu.read_download(download, &mut out, bounds).expect("read download");
    assert_eq!(u32s(&out), vec![7; 64], "only the submitted dispatch ran");
    assert_eq!(gpu.command_buffers_allocated(), 1, "every batch reused the one command buffer");
}

#[test]
fn small_downloads_reuse_their_staging_after_a_large_upload_filled_the_pool() {
    let mut gpu = open_gpu();
    // Two uploads of 128 MiB each: their staging alone fills the pool's idle memory (256 MiB).
    let big = Box3::d1(0, 32 << 20);
    let (a, b) = (gpu.allocate(big, 4).unwrap(), gpu.allocate(big, 4).unwrap());
    let ones = vec![1u8; big.volume() * 4];
    let mut batch = gpu.batch().unwrap();
    batch.upload(&a, big, &ones, big).unwrap();
    batch.upload(&b, big, &ones, big).unwrap();
    let id = batch.submit().unwrap();
    gpu.poll_until_complete(id, TIME_LIMIT).unwrap();
    // Then the steady state of an iterative program: a small download every step.
    let small = Box3::d1(0, 1024);
    let step = |gpu: &mut Gpu| {
        let mut batch = gpu.batch().unwrap();
        let dl = batch.download(&a, small).unwrap();
        let id = batch.submit().unwrap();
        gpu.poll_until_complete(id, TIME_LIMIT).unwrap();
        let mut out = vec![0u8; small.volume() * 4];
        gpu.read_download(dl, &mut out, small).unwrap();
        assert!(out.iter().all(|&x| x == 1));
    };
    step(&mut gpu);
    let allocated = gpu.staging_buffers_allocated();
    for _ in 0..5 {
        step(&mut gpu);
    }
    assert_eq!(gpu.staging_buffers_allocated(), allocated, "each step allocated its download's staging afresh");
}

#[test]
fn several_batches_in_flight_complete_by_polling_fences_without_timeline_semaphores() {
    let mut gpu = Gpu::with_options(GpuOptions { force_fences: true, ..Default::default() }).expect("a Vulkan device");
    assert_eq!(gpu.completion_mode(), CompletionMode::Fences);
    batches_in_flight(&mut gpu);
}

#[test]
fn a_device_to_device_copy_moves_a_sub_box_into_a_resized_allocation() {
    let mut gpu = open_gpu();
    // The old allocation: rows 4..12, columns 0..8 of a 16x16 buffer of u32 (value = cell index).
    let old_box = Box3::d2([4, 0], [12, 8]);
    let old_host: Vec<u32> = (4..12).flat_map(|i| (0..8).map(move |j| (i * 16 + j) as u32)).collect();
    let old = gpu.allocate(old_box, 4).unwrap();
    // Resized: all 16x16 cells (rows no longer contiguous), and a taller one (rows still are).
    let wide_box = Box3::d2([0, 0], [16, 16]);
    let tall_box = Box3::d2([0, 0], [20, 8]);
    let wide = gpu.allocate(wide_box, 4).unwrap();
    let tall = gpu.allocate(tall_box, 4).unwrap();
    let sentinel = u32::MAX;

    let mut b = gpu.batch().unwrap();
    b.upload(&old, old_box, &u32_bytes(&old_host), old_box).unwrap();
    b.upload(&wide, wide_box, &u32_bytes(&vec![sentinel; 256]), wide_box).unwrap();
    b.upload(&tall, tall_box, &u32_bytes(&vec![sentinel; 160]), tall_box).unwrap();
    b.copy(&old, &wide, old_box).unwrap();
    b.copy(&old, &tall, Box3::d2([5, 2], [11, 7])).unwrap();
    let wide_dl = b.download(&wide, wide_box).unwrap();
    let tall_dl = b.download(&tall, tall_box).unwrap();
    let id = b.submit().unwrap();
    gpu.poll_until_complete(id, TIME_LIMIT).unwrap();

    let mut out = vec![0u8; 256 * 4];
    gpu.read_download(wide_dl, &mut out, wide_box).unwrap();
    for (k, v) in u32s(&out).into_iter().enumerate() {
        let (i, j) = (k / 16, k % 16);
        let want = if (4..12).contains(&i) && j < 8 { k as u32 } else { sentinel };
        assert_eq!(v, want, "wide allocation at ({i}, {j})");
    }
    let mut out = vec![0u8; 160 * 4];
    gpu.read_download(tall_dl, &mut out, tall_box).unwrap();
    for (k, v) in u32s(&out).into_iter().enumerate() {
        let (i, j) = (k / 8, k % 8);
        let want = if (5..11).contains(&i) && (2..7).contains(&j) { (i * 16 + j) as u32 } else { sentinel };
        assert_eq!(v, want, "tall allocation at ({i}, {j})");
    }

    // Copies that cannot be: onto itself, or a region outside one side.
    let mut b = gpu.batch().unwrap();
    let err = b.copy(&old, &old, old_box).unwrap_err();
    assert!(err.to_string().contains("onto itself"), "{err}");
    let err = b.copy(&old, &tall, Box3::d2([4, 0], [12, 9])).unwrap_err();
    assert!(matches!(err, GpuError::RegionOutside { .. }), "{err}");
    assert!(b.is_empty());
}

#[test]
fn lent_staging_carries_a_column_from_a_download_to_an_upload_without_a_host_copy() {
    let mut gpu = open_gpu();
    // A 32x16 buffer of u32 (value = cell index); column 3 (32 runs: packed and unpacked by a kernel) and rows 2..4
    // (one run: a plain copy).
    let all = Box3::d2([0, 0], [32, 16]);
    let src = gpu.allocate(all, 4).unwrap();
    let dst = gpu.allocate(all, 4).unwrap();
    let column = Box3::d2([0, 3], [32, 4]);
    let rows = Box3::d2([2, 0], [4, 16]);
    let mut b = gpu.batch().unwrap();
    b.upload(&src, all, &u32_bytes(&(0..512).collect::<Vec<u32>>()), all).unwrap();
    b.upload(&dst, all, &u32_bytes(&[u32::MAX; 512]), all).unwrap();
    let column_dl = b.download(&src, column).unwrap();
    let rows_dl = b.download(&src, rows).unwrap();
    let id = b.submit().unwrap();
    gpu.poll_until_complete(id, TIME_LIMIT).unwrap();

    // The downloads, lent out: the cells packed, readable in place.
    let column_staging = gpu.take_download(column_dl).unwrap();
    let rows_staging = gpu.take_download(rows_dl).unwrap();
    assert_eq!((column_staging.len(), rows_staging.len()), (32 * 4, 32 * 4));
    // SAFETY: `as_ptr` points to `len` readable bytes while the staging is held.
    let column_bytes = unsafe { std::slice::from_raw_parts(column_staging.as_ptr(), column_staging.len()) };
    assert_eq!(u32s(column_bytes), (0..32).map(|i| i * 16 + 3).collect::<Vec<u32>>());
    assert!(gpu.read_download(column_dl, &mut [0; 128], column).is_err(), "a lent download is gone");

    // Host writes into fresh staging (as an MPI receive would), then uploads from it: the column, shifted by 1000.
    let mut fresh = gpu.host_staging(32 * 4).unwrap();
    let shifted = u32_bytes(&u32s(column_bytes).iter().map(|v| v + 1000).collect::<Vec<u32>>());
    // SAFETY: `as_mut_ptr` points to `len` (128) writable bytes while the staging is held.
    unsafe { std::ptr::copy_nonoverlapping(shifted.as_ptr(), fresh.as_mut_ptr(), shifted.len()) };
    gpu.give_staging(column_staging);
    let short = gpu.host_staging(4).unwrap();
    let mut b = gpu.batch().unwrap();
    b.upload_staged(&dst, column, fresh).unwrap();
    b.upload_staged(&dst, rows, rows_staging).unwrap();
    // Staging too short for its region is refused.
    assert!(matches!(b.upload_staged(&dst, column, short), Err(GpuError::HostSliceTooShort { .. })));
    let dl = b.download(&dst, all).unwrap();
    let id = b.submit().unwrap();
    gpu.poll_until_complete(id, TIME_LIMIT).unwrap();
    let mut out = vec![0u8; 512 * 4];
    gpu.read_download(dl, &mut out, all).unwrap();
    for (k, v) in u32s(&out).into_iter().enumerate() {
        let (i, j) = (k / 16, k % 16);
        let want = if (2..4).contains(&i) {
            k as u32
        } else if j == 3 {
            k as u32 + 1000
        } else {
            u32::MAX
        };
        assert_eq!(v, want, "cell ({i}, {j})");
    }
}

#[test]
fn push_constants_beyond_the_device_limit_are_refused_naming_the_kernel() {
    let mut gpu = open_gpu();
    let add = gpu.load_kernel(&shaders::GPU_ADD, "main").unwrap();
    let data = gpu.allocate(Box3::d1(0, 64), 4).unwrap();
    let limit = gpu.limits().max_push_constant_bytes as usize;
    // The most scalars that fit with one accessor, then one more.
    let fit = (limit - push_constant_bytes(1, 0)) / 4;
    let mut b = gpu.batch().unwrap();
    b.dispatch(add, Launch::d1(0, 64), &[Access::read_write(&data)], &vec![7; fit]).expect("fits exactly");
    let err = b.dispatch(add, Launch::d1(0, 64), &[Access::read_write(&data)], &vec![7; fit + 1]).unwrap_err();
    eprintln!("{err}");
    assert!(matches!(err, GpuError::PushConstantsTooLarge { .. }), "{err}");
    let message = err.to_string();
    assert!(message.contains("gpu_add::main"), "{message}");
    assert!(message.contains(&format!("limit of {limit}")), "{message}");
    // The refused dispatch recorded nothing: the batch still runs the first one.
    assert_eq!(b.len(), 1);
    let id = b.submit().unwrap();
    gpu.poll_until_complete(id, TIME_LIMIT).unwrap();
}

#[test]
fn accessors_that_do_not_match_the_kernel_bindings_are_refused_naming_the_kernel() {
    let mut gpu = open_gpu();
    let stencil = gpu.load_kernel(&shaders::GPU_STENCIL, "main").unwrap();
    let a = gpu.allocate(Box3::d2([0, 0], [8, 8]), 4).unwrap();
    let c = gpu.allocate(Box3::d2([0, 0], [8, 8]), 4).unwrap();
    let mut b = gpu.batch().unwrap();
    let launch = Launch::d2([0, 0], [8, 8]);
    let err = b.dispatch(stencil, launch, &[Access::read(&a)], &[0]).unwrap_err();
    eprintln!("{err}");
    assert!(matches!(err, GpuError::BindingMismatch { declared: 2, given: 1, .. }), "{err}");
    assert!(err.to_string().contains("gpu_stencil::main"), "{err}");

    // The right accessors but no scale: the kernel declares more push constants than given.
    let err = b.dispatch(stencil, launch, &[Access::read(&a), Access::write(&c)], &[]).unwrap_err();
    eprintln!("{err}");
    assert!(matches!(err, GpuError::PushConstantsTooSmall { declared: 76, provided: 72, .. }), "{err}");
    assert!(err.to_string().contains("gpu_stencil::main"), "{err}");
    assert!(b.is_empty());
}

#[test]
fn kernels_are_cached_and_ids_do_not_cross_gpus() {
    let mut gpu = open_gpu();
    let first = gpu.load_kernel(&shaders::GPU_ADD, "main").unwrap();
    assert_eq!(gpu.load_kernel(&shaders::GPU_ADD, "main").unwrap(), first);
    assert_eq!(gpu.kernel_name(first).unwrap(), "gpu_add::main");
    let err = gpu.load_kernel(&shaders::GPU_ADD, "nope").unwrap_err();
    assert!(err.to_string().contains("\"nope\""), "{err}");

    let mut other = open_gpu();
    let data = other.allocate(Box3::d1(0, 64), 4).unwrap();
    let mut b = other.batch().unwrap();
    let err = b.dispatch(first, Launch::d1(0, 64), &[Access::read_write(&data)], &[1]).unwrap_err();
    assert!(matches!(err, GpuError::UnknownKernel(_)), "{err}");
}

#[test]
fn an_allocation_that_cannot_be_had_is_an_error_naming_its_size() {
    let gpu = open_gpu();
    let err = gpu.allocate(Box3::d1(0, 1 << 40), 4).unwrap_err();
    eprintln!("{err}");
    assert!(matches!(err, GpuError::AllocationFailed { bytes: 4_398_046_511_104, .. }), "{err}");
    assert!(err.to_string().contains("4398046511104 bytes"), "{err}");
    let err = gpu.allocate(Box3::d1(3, 3), 4).unwrap_err();
    assert!(matches!(err, GpuError::BadAllocation { .. }), "{err}");
}

#[test]
fn copies_outside_the_host_slice_or_allocation_are_refused() {
    let mut gpu = open_gpu();
    let bounds = Box3::d2([2, 2], [6, 6]);
    let a = gpu.allocate(bounds, 4).unwrap();
    let mut b = gpu.batch().unwrap();
    let host = vec![0u8; 16 * 4];
    let err = b.upload(&a, Box3::d2([1, 2], [6, 6]), &host, Box3::d2([0, 0], [8, 8])).unwrap_err();
    assert!(err.to_string().contains("allocation"), "{err}");
    let err = b.upload(&a, bounds, &host, Box3::d2([0, 0], [8, 8])).unwrap_err();
    assert!(matches!(err, GpuError::HostSliceTooShort { needed: 256, .. }), "{err}");
    let err = b.download(&a, Box3::d2([2, 2], [7, 6])).unwrap_err();
    assert!(matches!(err, GpuError::RegionOutside { .. }), "{err}");
    assert!(b.is_empty());
}

/// Strided boxes (a column of a 2D allocation, a face and an inner block of a 3D one) with 4- and 8-byte cells
/// go through the pack kernels; 2-byte cells fall back to one copy region per run. Each box is uploaded from a
/// host slice holding a larger box, then the whole allocation is downloaded: exactly the box's cells change.
#[test]
fn strided_boxes_are_packed_by_a_kernel_and_land_exactly_in_their_cells() {
    let mut gpu = open_gpu();
    let cases: [(Box3, Box3, usize); 4] = [
        // allocation box, strided region, cell size
        (Box3::d2([3, 5], [70, 69]), Box3::d2([4, 40], [66, 41]), 4),
        (Box3::d3([0, 0, 0], [9, 20, 30]), Box3::d3([1, 2, 29], [8, 19, 30]), 4),
        (Box3::d3([2, 0, 1], [10, 24, 17]), Box3::d3([3, 5, 2], [9, 23, 12]), 8),
        (Box3::d2([0, 0], [40, 40]), Box3::d2([0, 7], [40, 9]), 2),
    ];
    for (alloc_box, region, e) in cases {
        let alloc = gpu.allocate(alloc_box, e).expect("allocate");
        let cell = |c: [usize; 3], salt: usize| -> Vec<u8> {
            let v = (c[0] * 1_000_003 + c[1] * 1009 + c[2] * 7 + salt) as u64;
            v.to_le_bytes()[..e].to_vec()
        };
        let cells_of = |b: &Box3, salt: usize| -> Vec<u8> {
            let (lo, hi) = (b.min(), b.max());
            let mut out = Vec::new();
            for x in lo[0]..hi[0] {
                for y in lo[1]..hi[1] {
                    for z in lo[2]..hi[2] {
                        out.extend(cell([x, y, z], salt));
                    }
                }
            }
            out
        };
        // The allocation starts as salt 0; the region is uploaded from a host box of salt 1 that is larger.
        let host_box = alloc_box;
        let mut batch = gpu.batch().expect("batch");
        batch.upload(&alloc, alloc_box, &cells_of(&alloc_box, 0), alloc_box).expect("initial upload");
        batch.upload(&alloc, region, &cells_of(&host_box, 1), host_box).expect("strided upload");
        let whole = batch.download(&alloc, alloc_box).expect("download");
        let strided = batch.download(&alloc, region).expect("strided download");
        let id = batch.submit().expect("submit");
        poll_all(&mut gpu, &[id]);
        let mut got = vec![0u8; alloc_box.volume() * e];
        gpu.read_download(whole, &mut got, alloc_box).expect("read");
        let (lo, hi) = (alloc_box.min(), alloc_box.max());
        let mut i = 0;
        for x in lo[0]..hi[0] {
            for y in lo[1]..hi[1] {
                for z in lo[2]..hi[2] {
                    let inside = region.contains(&Box3::d3([x, y, z], [x + 1, y + 1, z + 1]));
                    let want = cell([x, y, z], usize::from(inside));
                    assert_eq!(got[i..i + e], want, "cell {x},{y},{z} of case {region} ({e}-byte cells)");
                    i += e;
                }
            }
        }
        let mut packed = vec![0u8; region.volume() * e];
        gpu.read_download(strided, &mut packed, region).expect("read strided");
        assert_eq!(packed, cells_of(&region, 1), "strided download of {region} ({e}-byte cells)");
        gpu.free(alloc);
    }
}

#[test]
fn a_checked_dispatch_records_the_cells_it_touched_outside_the_declared_box() {
    let mut gpu = open_gpu();
    let plain = gpu.load_kernel(&shaders::GPU_ADD, "main").unwrap();
    let add = gpu.load_kernel_checked(&shaders::GPU_ADD, "main").unwrap();
    assert_ne!(plain, add, "the checked variant is a kernel of its own");
    let bounds = Box3::d1(100, 164);
    let data = gpu.allocate(bounds, 4).unwrap();
    let words = bounds_record_words(1);
    let record = gpu.allocate(Box3::d1(0, words), 4).unwrap();
    // The launch covers 110..120 of the allocation, but the accessor declared only 110..115.
    let init = u32_bytes(&bounds_record_init(&[Box3::d1(110, 115)], &[bounds]));
    let all = record.bounds();
    let mut batch = gpu.batch().unwrap();
    batch.upload(&data, bounds, &u32_bytes(&[0; 64]), bounds).unwrap();
    batch.upload(&record, all, &init, all).unwrap();
    let missing = batch.dispatch(add, Launch::d1(110, 120), &[Access::read_write(&data)], &[1]).unwrap_err();
    assert!(matches!(missing, GpuError::CheckedMismatch { checked: true, .. }), "{missing}");
    let misplaced = batch.dispatch_checked(plain, Launch::d1(110, 120), &[Access::read_write(&data)], &[1], &record);
    assert!(matches!(misplaced, Err(GpuError::CheckedMismatch { checked: false, .. })));
    batch.dispatch_checked(add, Launch::d1(110, 120), &[Access::read_write(&data)], &[1], &record).unwrap();
    let download = batch.download(&record, all).unwrap();
    let id = batch.submit().unwrap();
    poll_all(&mut gpu, &[id]);
    let mut out = vec![0u8; 4 * words];
    gpu.read_download(download, &mut out, all).unwrap();
    let report = read_bounds_record(&u32s(&out));
    assert_eq!(report.accessors, vec![Some((5, Box3::d1(115, 120)))]);
    assert_eq!(report.unattributed, 0);
}

#[test]
fn an_empty_access_pushes_the_empty_box_and_a_checked_dispatch_blames_every_access_on_it() {
    let mut gpu = open_gpu();
    let add = gpu.load_kernel_checked(&shaders::GPU_ADD, "main").unwrap();
    // The stand-in for a buffer's memory that an accessor without cells on its chunk binds.
    let cell = gpu.allocate(Box3::d1(0, 1), 4).unwrap();
    let empty = Access::empty(&cell, AccessMode::ReadWrite);
    assert!(empty.is_empty());
    assert_eq!(empty.record_box(), Box3::EMPTY, "its box in the record is the one pushed");
    let words = bounds_record_words(1);
    let record = gpu.allocate(Box3::d1(0, words), 4).unwrap();
    let init = u32_bytes(&bounds_record_init(&[Box3::EMPTY], &[empty.record_box()]));
    let all = record.bounds();
    let mut batch = gpu.batch().unwrap();
    batch.upload(&cell, cell.bounds(), &u32_bytes(&[0]), cell.bounds()).unwrap();
    batch.upload(&record, all, &init, all).unwrap();
    // gpu_add adds to data[i] for every item of the launch, unguarded by its accessor's box.
    batch.dispatch_checked(add, Launch::d1(110, 120), &[empty], &[1], &record).unwrap();
    let (report_dl, cell_dl) = (batch.download(&record, all).unwrap(), batch.download(&cell, cell.bounds()).unwrap());
    let id = batch.submit().unwrap();
    poll_all(&mut gpu, &[id]);
    let mut out = vec![0u8; 4 * words];
    gpu.read_download(report_dl, &mut out, all).unwrap();
    let report = read_bounds_record(&u32s(&out));
    assert_eq!(report.accessors, vec![Some((10, Box3::d1(110, 120)))], "every access is outside the empty box");
    assert_eq!(report.unattributed, 0);
    let mut got = vec![0u8; 4];
    gpu.read_download(cell_dl, &mut got, cell.bounds()).unwrap();
    // The ten items' racing additions all land in the one cell.
    assert!((1..=10).contains(&u32s(&got)[0]), "the writes land in the stand-in cell: {got:?}");
}

#[test]
fn an_injected_device_loss_fails_the_poll_naming_the_device_and_the_batches_in_flight() {
    let options = GpuOptions { lose_device_at_poll: Some(1), ..GpuOptions::default() };
    let mut gpu = Gpu::with_options(options).expect("a Vulkan device");
    let mut completed = Vec::new();
    assert_eq!(gpu.poll(&mut completed).unwrap(), 0, "no poll counts without batches in flight");
    let data = gpu.allocate(Box3::d1(0, 64), 4).unwrap();
    let mut batch = gpu.batch().unwrap();
    batch.upload(&data, Box3::d1(0, 64), &u32_bytes(&[0; 64]), Box3::d1(0, 64)).unwrap();
    let id = batch.submit().unwrap();
    // Only poll retires batches, so `id` is in flight at this first poll with work, whatever the device did.
    match gpu.poll(&mut completed) {
        Err(e @ GpuError::DeviceLost { injected: true, .. }) => {
            let msg = e.to_string();
            assert!(msg.contains("VK_ERROR_DEVICE_LOST") && msg.contains(&gpu.info().to_string()), "{msg}");
            assert!(msg.contains(&format!("batch(es) {id} in flight")), "{msg}");
        }
        other => panic!("expected the injected device loss, got {other:?}"),
    }
    assert!(completed.is_empty());
    assert!(gpu.poll(&mut completed).is_err(), "a lost device stays lost");
}

/// Records `f` into a batch, submits it and waits for it; returns the downloads' bytes in order.
fn run_batch(
    gpu: &mut Gpu,
    f: impl FnOnce(&mut celer_exec::gpu::Batch<'_>) -> Vec<(celer_exec::gpu::DownloadId, Box3, usize)>,
) -> Vec<Vec<u8>> {
    let mut b = gpu.batch().expect("batch");
    let downloads = f(&mut b);
    let id = b.submit().expect("submit");
    gpu.poll_until_complete(id, Duration::from_secs(300)).expect("complete");
    downloads
        .into_iter()
        .map(|(d, region, elem)| {
            let mut host = vec![0u8; region.volume() * elem];
            gpu.read_download(d, &mut host, region).expect("read download");
            host
        })
        .collect()
}

#[test]
fn a_1d_launch_beyond_the_workgroup_limit_is_split_and_every_cell_is_computed() {
    let mut gpu = open_gpu();
    let squares = gpu.load_kernel(&shaders::SQUARES, "main").unwrap();
    // 8 Mi items in workgroups of 64: 131072 workgroups, two limits' worth on lavapipe (65535 along x).
    let (first, n) = (5usize, 8usize << 20);
    let limit = gpu.limits().max_workgroup_count;
    eprintln!("maxComputeWorkGroupCount {limit:?}; the launch needs {} workgroups along x", n.div_ceil(64));
    let bounds = Box3::d1(0, first + n + 11);
    let out = gpu.allocate(bounds, 4).unwrap();
    let (head, tail) = (Box3::d1(0, first), Box3::d1(first + n, bounds.max()[0]));
    let sentinel = u32::MAX;
    let host = run_batch(&mut gpu, |b| {
        b.upload(&out, head, &u32_bytes(&[sentinel; 5]), head).unwrap();
        b.upload(&out, tail, &u32_bytes(&[sentinel; 11]), tail).unwrap();
        b.dispatch(squares, Launch::d1(first, first + n), &[Access::write(&out)], &[]).expect("split, not refused");
        vec![(b.download(&out, bounds).unwrap(), bounds, 4)]
    });
    let cells = u32s(&host[0]);
    for (i, &c) in cells.iter().enumerate() {
        let want = if (first..first + n).contains(&i) { (i as u32).wrapping_mul(i as u32) } else { sentinel };
        assert_eq!(c, want, "cell {i}");
    }
}

#[test]
fn a_2d_launch_beyond_the_workgroup_limit_along_y_is_split_and_every_cell_is_computed() {
    let mut gpu = open_gpu();
    let copy = gpu.load_kernel(&shaders::COPY, "main").unwrap();
    // Workgroups of 64 x 4: rows run along y, 4 per workgroup; a few more rows than the limit covers.
    let limit = gpu.limits().max_workgroup_count;
    let rows = 4 * (limit[1] as usize).min(65535) + 6;
    let cols = 3;
    let bounds = Box3::d2([0, 0], [rows + 2, cols]);
    let values: Vec<f32> = (0..bounds.volume()).map(|k| k as f32).collect();
    let src = gpu.allocate(bounds, 4).unwrap();
    let dst = gpu.allocate(bounds, 4).unwrap();
    let launch = Box3::d2([1, 0], [rows + 1, cols]);
    let host = run_batch(&mut gpu, |b| {
        b.upload(&src, bounds, &f32_bytes(&values), bounds).unwrap();
        b.upload(&dst, bounds, &f32_bytes(&vec![-1.0; bounds.volume()]), bounds).unwrap();
        b.dispatch(copy, Launch::new(launch, 2), &[Access::read(&src), Access::write(&dst)], &[]).expect("split");
        vec![(b.download(&dst, bounds).unwrap(), bounds, 4)]
    });
    let cells = f32s(&host[0]);
    for (k, &c) in cells.iter().enumerate() {
        let (i, j) = (k / cols, k % cols);
        let want = if launch.contains(&Box3::d2([i, j], [i + 1, j + 1])) { k as f32 } else { -1.0 };
        assert_eq!(c, want, "cell ({i}, {j})");
    }
}

/// The wrapping sum of `value` over the cells of `b`.
fn box_sum(b: Box3, value: impl Fn(usize, usize) -> u32) -> u32 {
    let (min, max) = (b.min(), b.max());
    let mut s = 0u32;
    for i in min[0]..max[0] {
        for j in min[1]..max[1] {
            s = s.wrapping_add(value(i, j));
        }
    }
    s
}

#[test]
fn block_reductions_of_a_split_launch_write_every_block_to_its_own_cell() {
    let mut gpu = open_gpu();
    let sum_1d = gpu.load_kernel(&shaders::BLOCKS, "sum_1d").unwrap();
    let sum_2d = gpu.load_kernel(&shaders::BLOCKS, "sum_2d").unwrap();
    let limit = gpu.limits().max_workgroup_count.map(|l| l.min(65535) as usize);

    // 1D: a few workgroups of 64 more than the limit, starting at item 7.
    let (first, n) = (7, 64 * limit[0] + 200);
    let groups = n.div_ceil(64);
    let cells = Box3::d1(0, groups);
    let out = gpu.allocate(cells, 4).unwrap();
    let launch = Launch::d1(first, first + n);
    // Bound as a plain accessor, the dispatch cannot be split without two blocks writing one cell (where the device
    // needs a split: NVIDIA's driver launches 2^31 - 1 workgroups along x at once, lavapipe 65535).
    if groups > gpu.limits().max_workgroup_count[0] as usize {
        let err = gpu.batch().unwrap().dispatch(sum_1d, launch, &[Access::write(&out)], &[]).unwrap_err();
        eprintln!("{err}");
        assert!(matches!(err, GpuError::TooManyWorkgroups { .. }), "{err}");
        assert!(err.to_string().contains("blocks::sum_1d") && err.to_string().contains("Access::blocks"), "{err}");
    } else {
        eprintln!("the device launches {groups} workgroups along x at once: the 1D launch is not split");
    }
    let host = run_batch(&mut gpu, |b| {
        b.dispatch(sum_1d, launch, &[Access::blocks(&out)], &[]).expect("split");
        vec![(b.download(&out, cells).unwrap(), cells, 4)]
    });
    for (k, &c) in u32s(&host[0]).iter().enumerate() {
        let items = Box3::d1(first + 64 * k, (first + 64 * (k + 1)).min(first + n));
        assert_eq!(c, box_sum(items, |i, _| i as u32), "block {k}");
    }

    // 2D, workgroups of 4 x 4: beyond the limit along y (rows), then along x (columns).
    for (rows, cols) in [(4 * limit[1] + 10, 5), (6, 4 * limit[0] + 10)] {
        let (r0, c0) = (3, 2);
        let launch = Box3::d2([r0, c0], [r0 + rows, c0 + cols]);
        let grid = [rows.div_ceil(4), cols.div_ceil(4)];
        let cells = Box3::d2([0, 0], grid);
        let out = gpu.allocate(cells, 4).unwrap();
        // Too few cells along dimension 1 is refused.
        let short = gpu.allocate(Box3::d2([0, 0], [grid[0], grid[1] - 1]), 4).unwrap();
        let err = gpu.batch().unwrap().dispatch(sum_2d, Launch::new(launch, 2), &[Access::blocks(&short)], &[]);
        assert!(matches!(err, Err(GpuError::TooFewBlockCells { accessor: 0, .. })), "{err:?}");
        let host = run_batch(&mut gpu, |b| {
            b.dispatch(sum_2d, Launch::new(launch, 2), &[Access::blocks(&out)], &[]).expect("split");
            vec![(b.download(&out, cells).unwrap(), cells, 4)]
        });
        for (k, &c) in u32s(&host[0]).iter().enumerate() {
            let (bi, bj) = (k / grid[1], k % grid[1]);
            let items = Box3::d2([r0 + 4 * bi, c0 + 4 * bj], [r0 + 4 * bi + 4, c0 + 4 * bj + 4]).intersection(&launch);
            let want = box_sum(items, |i, j| (i as u32).wrapping_mul(65536).wrapping_add(j as u32));
            assert_eq!(c, want, "block ({bi}, {bj}) of the {rows} x {cols} launch");
        }
    }
}

#[test]
fn dispatches_over_many_allocations_in_turn_bind_each_its_own_allocation() {
    // More allocations than the recently used descriptor sets the Gpu keeps, used in an order that hits, misses
    // and evicts them, with one allocation freed and a new one made in between (a fresh id, never a stale set).
    let mut gpu = open_gpu();
    let add = gpu.load_kernel(&shaders::GPU_ADD, "main").unwrap();
    let cells = Box3::d1(0, 64);
    let zeros = u32_bytes(&[0; 64]);
    let mut allocs: Vec<_> = (0..7).map(|_| gpu.allocate(cells, 4).unwrap()).collect();
    run_batch(&mut gpu, |b| {
        for a in &allocs {
            b.upload(a, cells, &zeros, cells).unwrap();
        }
        Vec::new()
    });
    let order = [0, 1, 0, 1, 2, 3, 4, 5, 6, 0, 6, 5, 1, 1, 1, 2, 0];
    let mut expected = [0u32; 7];
    for (round, chunk) in order.chunks(5).enumerate() {
        run_batch(&mut gpu, |b| {
            for &i in chunk {
                b.dispatch(add, Launch::d1(0, 64), &[Access::read_write(&allocs[i])], &[i as u32 + 1]).unwrap();
            }
            Vec::new()
        });
        for &i in chunk {
            expected[i] += i as u32 + 1;
        }
        if round == 1 {
            // Allocation 3 goes; its replacement starts from zero.
            let fresh = gpu.allocate(cells, 4).unwrap();
            let old = std::mem::replace(&mut allocs[3], fresh);
            gpu.free(old);
            run_batch(&mut gpu, |b| {
                b.upload(&allocs[3], cells, &zeros, cells).unwrap();
                Vec::new()
            });
            expected[3] = 0;
        }
    }
    let got = run_batch(&mut gpu, |b| allocs.iter().map(|a| (b.download(a, cells).unwrap(), cells, 4)).collect());
    for (i, bytes) in got.iter().enumerate() {
        assert!(
            u32s(bytes).iter().all(|&v| v == expected[i]),
            "allocation {i}: {:?}, expected {}",
            &u32s(bytes)[..4],
            expected[i]
        );
    }
}

/// Input `k` of `gpu_wide.wgsl` at buffer cell `cell`: small integers, so every sum is exact in f32.
fn wide_input(k: usize, cell: usize) -> f32 {
    (k + cell % 5) as f32
}

/// What `gpu_wide.wgsl` sums at `cell` before scaling: `Σ (k + 1) · input k`.
fn wide_sum(cell: usize) -> f32 {
    (0..6).map(|k| (k + 1) as f32 * wide_input(k, cell)).sum()
}

#[test]
fn a_kernel_whose_parameters_exceed_push_constants_reads_each_dispatchs_words_from_the_ring() {
    let mut gpu = open_gpu();
    let source = &shaders::GPU_WIDE;
    assert_eq!(source.params_binding(), Some(8), "7 bindings, the checked record's slot, then the parameters");
    assert_eq!(source.entry_point("main").unwrap().push_constant_bytes, 200);
    let wide = gpu.load_kernel(source, "main").expect("loads with its parameters in storage");
    let checked = gpu.load_kernel_checked(source, "main").expect("the checked variant loads too");
    // Inputs of boxes of their own, none starting at 0; the chunk is cells 20..100.
    let boxes: Vec<Box3> = (0..6).map(|k| Box3::d1(10 + k, 110 + k)).collect();
    let inputs: Vec<_> = boxes.iter().map(|b| gpu.allocate(*b, 4).unwrap()).collect();
    let acc_box = Box3::d1(0, 128);
    let acc = gpu.allocate(acc_box, 4).unwrap();
    let mut b = gpu.batch().unwrap();
    for (k, (alloc, bx)) in inputs.iter().zip(&boxes).enumerate() {
        let host: Vec<f32> = (bx.min()[0]..bx.max()[0]).map(|c| wide_input(k, c)).collect();
        b.upload(alloc, *bx, &f32_bytes(&host), *bx).unwrap();
    }
    b.upload(&acc, acc_box, &f32_bytes(&[0.0; 128]), acc_box).unwrap();
    let mut ids = vec![b.submit().unwrap()];
    let mut accessors: Vec<Access<'_>> = inputs.iter().map(Access::read).collect();
    accessors.push(Access::read_write(&acc));

    // 40 batches of 50 dispatches, each with its own scalars, all submitted before any is polled: 2000 slots,
    // more than the first ring holds, so the ring goes round or grows while batches read it.
    let (mut scale_sum, mut bias_sum) = (0.0f32, 0.0f32);
    for batch in 0..40 {
        let mut b = gpu.batch().unwrap();
        for d in 0..50 {
            let (scale, bias) = (((batch * 50 + d) % 3) as f32, ((batch + d) % 4) as f32);
            b.dispatch(wide, Launch::d1(20, 100), &accessors, &[scale.to_bits(), bias.to_bits()]).unwrap();
            (scale_sum, bias_sum) = (scale_sum + scale, bias_sum + bias);
        }
        assert_eq!(b.len(), 50);
        ids.push(b.submit().unwrap());
    }
    poll_all(&mut gpu, &ids);

    // Then the checked variant, once, with its bounds record (nothing out of bounds).
    let words = bounds_record_words(7);
    let record = gpu.allocate(Box3::d1(0, words), 4).unwrap();
    let chunk = Box3::d1(20, 100);
    let allocations: Vec<Box3> = boxes.iter().copied().chain([acc_box]).collect();
    let init = u32_bytes(&bounds_record_init(&[chunk; 7], &allocations));
    let mut b = gpu.batch().unwrap();
    b.upload(&record, record.bounds(), &init, record.bounds()).unwrap();
    b.dispatch_checked(checked, Launch::d1(20, 100), &accessors, &[1.0f32.to_bits(), 0], &record).unwrap();
    let report = b.download(&record, record.bounds()).unwrap();
    let result = b.download(&acc, acc_box).unwrap();
    let id = b.submit().unwrap();
    poll_all(&mut gpu, &[id]);
    let mut out = vec![0u8; 4 * words];
    gpu.read_download(report, &mut out, record.bounds()).unwrap();
    let report = read_bounds_record(&u32s(&out));
    assert_eq!(report.accessors, vec![None; 7], "no access outside the declared boxes");
    assert_eq!(report.unattributed, 0);
    let mut out = vec![0u8; 128 * 4];
    gpu.read_download(result, &mut out, acc_box).unwrap();
    for (cell, v) in f32s(&out).into_iter().enumerate() {
        let want = if (20..100).contains(&cell) { (scale_sum + 1.0) * wide_sum(cell) + bias_sum } else { 0.0 };
        assert_eq!(v, want, "cell {cell}");
    }
}

#[test]
fn a_dispatch_passing_more_parameters_than_storage_takes_is_refused_naming_the_kernel() {
    let mut gpu = open_gpu();
    let wide = gpu.load_kernel(&shaders::GPU_WIDE, "main").unwrap();
    let allocs: Vec<_> = (0..7).map(|_| gpu.allocate(Box3::d1(0, 64), 4).unwrap()).collect();
    let accessors: Vec<Access<'_>> = allocs.iter().map(Access::read_write).collect();
    let limit = celer_exec::gpu::MAX_PARAMS_BYTES;
    let fit = (limit - push_constant_bytes(7, 0)) / 4;
    let mut b = gpu.batch().unwrap();
    b.dispatch(wide, Launch::d1(0, 64), &accessors, &vec![0; fit]).expect("fits exactly");
    let err = b.dispatch(wide, Launch::d1(0, 64), &accessors, &vec![0; fit + 1]).unwrap_err();
    assert!(matches!(err, GpuError::ParamsTooLarge { .. }), "{err}");
    let message = err.to_string();
    assert!(message.contains("gpu_wide::main") && message.contains(&format!("more than the {limit}")), "{message}");
    assert_eq!(b.len(), 1, "the refused dispatch recorded nothing");
    let id = b.submit().unwrap();
    gpu.poll_until_complete(id, TIME_LIMIT).unwrap();
}

#[test]
fn a_dispatch_missing_scalars_of_a_kernel_with_parameters_in_storage_is_refused_without_naming_push_constants() {
    let mut gpu = open_gpu();
    let wide = gpu.load_kernel(&shaders::GPU_WIDE, "main").unwrap();
    let allocs: Vec<_> = (0..7).map(|_| gpu.allocate(Box3::d1(0, 64), 4).unwrap()).collect();
    let accessors: Vec<Access<'_>> = allocs.iter().map(Access::read_write).collect();
    let mut b = gpu.batch().unwrap();
    // gpu_wide's block declares 200 bytes (chunk, 7 boxes, scale and bias); without its two scalars the dispatch
    // provides 192, read from the parameter ring, not pushed.
    let err = b.dispatch(wide, Launch::d1(0, 64), &accessors, &[]).unwrap_err();
    assert!(matches!(err, GpuError::PushConstantsTooSmall { declared: 200, provided: 192, .. }), "{err}");
    let message = err.to_string();
    assert!(message.contains("gpu_wide::main's parameter block (var<immediate>) declares 200 bytes"), "{message}");
    assert!(!message.contains("push constants"), "{message}");
    assert!(b.is_empty());
}

#[test]
fn a_pipeline_layout_the_device_refuses_names_the_kernel_and_its_parameter_binding() {
    let mut gpu = open_gpu();
    let source = &shaders::GPU_WIDE31;
    assert_eq!(source.params_binding(), Some(32), "31 bindings, the checked record's slot, then the parameters");
    // The checked variant binds 31 + 1 + 1 storage buffers: more than lavapipe's 32 in one stage.
    let limit = gpu.limits().max_storage_buffers;
    match gpu.load_kernel_checked(source, "main") {
        Ok(_) => assert!(limit >= 33, "a device binding {limit} storage buffers accepted 33"),
        Err(err) => {
            let message = err.to_string();
            eprintln!("{message}");
            assert!(matches!(err, GpuError::Vulkan { .. }), "{message}");
            assert!(
                message.contains(
                    "creating the pipeline layout of the checked variant of kernel gpu_wide31::main (32 storage \
                     buffers at @group(0) bindings 0..32, the last its bounds record; its parameters in a dynamic \
                     storage buffer at binding 32)"
                ),
                "{message}"
            );
            assert!(!message.contains("Some("), "{message}");
        }
    }
}

#[test]
fn a_split_launch_of_a_kernel_with_parameters_in_storage_gives_each_dispatch_its_own_chunk() {
    let mut gpu = open_gpu();
    let wide = gpu.load_kernel(&shaders::GPU_WIDE, "main").unwrap();
    // 65539 workgroups of 64 along x: two dispatches on lavapipe (65535), each with its own slot of the ring.
    let (first, n) = (3usize, 64 * 65539 - 5);
    eprintln!("maxComputeWorkGroupCount {:?}; the launch needs {} workgroups", gpu.limits().max_workgroup_count, 65539);
    let bounds = Box3::d1(0, first + n + 4);
    let cells = bounds.volume();
    let input = gpu.allocate(bounds, 4).unwrap();
    let acc = gpu.allocate(bounds, 4).unwrap();
    let values: Vec<f32> = (0..cells).map(|c| (c % 7) as f32).collect();
    let mut accessors = vec![Access::read(&input); 6];
    accessors.push(Access::read_write(&acc));
    let host = run_batch(&mut gpu, |b| {
        b.upload(&input, bounds, &f32_bytes(&values), bounds).unwrap();
        b.upload(&acc, bounds, &f32_bytes(&vec![0.0; cells]), bounds).unwrap();
        b.dispatch(wide, Launch::d1(first, first + n), &accessors, &[1.0f32.to_bits(), 2.0f32.to_bits()])
            .expect("split, not refused");
        vec![(b.download(&acc, bounds).unwrap(), bounds, 4)]
    });
    // The six inputs are one allocation: 21 times its value, plus the bias.
    for (c, v) in f32s(&host[0]).into_iter().enumerate() {
        let want = if (first..first + n).contains(&c) { 21.0 * (c % 7) as f32 + 2.0 } else { 0.0 };
        assert_eq!(v, want, "cell {c}");
    }
}

/// Every other cell of `bounds` (1D), one box each: the region a custom mapper of scattered cells gives.
fn comb(bounds: Box3) -> Vec<Box3> {
    (bounds.min()[0]..bounds.max()[0]).step_by(2).map(|i| Box3::d1(i, i + 1)).collect()
}

#[test]
fn a_transfer_of_many_tiny_boxes_takes_one_staging_buffer_of_its_bytes() {
    let mut gpu = open_gpu();
    let bounds = Box3::d1(0, 8192);
    let data = gpu.allocate(bounds, 4).unwrap();
    let boxes = comb(bounds);
    let host: Vec<u32> = (0..8192).collect();
    let before = gpu.staging_buffers_allocated();
    let mut b = gpu.batch().unwrap();
    b.upload(&data, bounds, &u32_bytes(&[0; 8192]), bounds).unwrap();
    b.upload_boxes(&data, &boxes, &u32_bytes(&host), bounds).unwrap();
    let packed = b.download_boxes(&data, &boxes).unwrap();
    let lent = b.download_boxes(&data, &boxes).unwrap();
    let whole = b.download(&data, bounds).unwrap();
    assert_eq!(b.len(), 5, "each transfer of many boxes is one operation");
    let id = b.submit().unwrap();
    gpu.poll_until_complete(id, TIME_LIMIT).unwrap();
    // Five transfers, five staging buffers (each of its bytes' size class), not one per box (4096 boxes).
    assert_eq!(gpu.staging_buffers_allocated() - before, 5, "one staging buffer per transfer");

    // The upload wrote the boxes' cells only.
    let mut out = vec![0u8; 8192 * 4];
    gpu.read_download(whole, &mut out, bounds).unwrap();
    let want: Vec<u32> = (0..8192).map(|i| if i % 2 == 0 { i } else { 0 }).collect();
    assert_eq!(u32s(&out), want);
    // Read into a host layout: each box where it lies, the cells between them untouched.
    let mut out = u32_bytes(&[u32::MAX; 8192]);
    gpu.read_download(packed, &mut out, bounds).unwrap();
    let want: Vec<u32> = (0..8192).map(|i| if i % 2 == 0 { i } else { u32::MAX }).collect();
    assert_eq!(u32s(&out), want);
    // Lent: the boxes packed one after another.
    let staging = gpu.take_download(lent).unwrap();
    assert_eq!(staging.len(), celer_exec::gpu::packed_bytes(&boxes, 4));
    // SAFETY: `as_ptr` points to `len` readable bytes while the staging is held.
    let bytes = unsafe { std::slice::from_raw_parts(staging.as_ptr(), staging.len()) };
    assert_eq!(u32s(bytes), (0..8192).step_by(2).collect::<Vec<u32>>());

    // The lent bytes, shifted, back into another allocation from staging the host wrote, as an await-push does.
    let other = gpu.allocate(bounds, 4).unwrap();
    let mut fresh = gpu.host_staging(staging.len()).unwrap();
    let shifted = u32_bytes(&u32s(bytes).iter().map(|v| v + 1).collect::<Vec<u32>>());
    // SAFETY: `as_mut_ptr` points to `len` writable bytes while the staging is held, as many as `shifted` has.
    unsafe { std::ptr::copy_nonoverlapping(shifted.as_ptr(), fresh.as_mut_ptr(), shifted.len()) };
    gpu.give_staging(staging);
    let short = gpu.host_staging(8).unwrap();
    let mut b = gpu.batch().unwrap();
    b.upload(&other, bounds, &u32_bytes(&[0; 8192]), bounds).unwrap();
    b.upload_staged_boxes(&other, &boxes, fresh).unwrap();
    let err = b.upload_staged_boxes(&other, &boxes, short).unwrap_err();
    assert!(matches!(err, GpuError::StagingTooShort { boxes: 4096, needed: 16384, .. }), "{err}");
    let dl = b.download(&other, bounds).unwrap();
    let id = b.submit().unwrap();
    gpu.poll_until_complete(id, TIME_LIMIT).unwrap();
    let mut out = vec![0u8; 8192 * 4];
    gpu.read_download(dl, &mut out, bounds).unwrap();
    let want: Vec<u32> = (0..8192).map(|i| if i % 2 == 0 { i + 1 } else { 0 }).collect();
    assert_eq!(u32s(&out), want);
    // Dropping the pool's idle buffers: a handful, not thousands.
    assert!(gpu.staging_buffers_allocated() - before <= 8, "{} staging buffers", gpu.staging_buffers_allocated());
}

#[test]
fn boxes_of_many_runs_packed_by_kernels_and_copies_share_one_staging_buffer() {
    // 2D boxes of 20 rows (more runs than a copy is worth: packed by a kernel where the box starts at an offset a
    // storage binding can start at) mixed with one-cell boxes that shift the next box off that alignment.
    let mut gpu = open_gpu();
    let all = Box3::d2([0, 0], [64, 64]);
    let data = gpu.allocate(all, 4).unwrap();
    // Packed offsets 0, 240, 256 (a multiple of any storage offset alignment up to 256: packed by a kernel), 496,
    // 500 (copied run by run), 900.
    let boxes = [
        Box3::d2([0, 0], [20, 3]),
        Box3::d2([0, 10], [1, 14]),
        Box3::d2([30, 10], [50, 13]),
        Box3::d2([0, 20], [1, 21]),
        Box3::d2([40, 30], [60, 35]),
        Box3::d2([63, 63], [64, 64]),
    ];
    assert_eq!(celer_exec::gpu::packed_offsets(&boxes, 4).collect::<Vec<_>>(), [0, 240, 256, 496, 500, 900]);
    let host: Vec<u32> = (0..64 * 64).collect();
    let inside = |k: usize| boxes.iter().any(|b| b.contains(&Box3::d2([k / 64, k % 64], [k / 64 + 1, k % 64 + 1])));
    let mut b = gpu.batch().unwrap();
    b.upload(&data, all, &u32_bytes(&[0; 64 * 64]), all).unwrap();
    b.upload_boxes(&data, &boxes, &u32_bytes(&host), all).unwrap();
    let packed = b.download_boxes(&data, &boxes).unwrap();
    let whole = b.download(&data, all).unwrap();
    let id = b.submit().unwrap();
    gpu.poll_until_complete(id, TIME_LIMIT).unwrap();
    let mut out = vec![0u8; 64 * 64 * 4];
    gpu.read_download(whole, &mut out, all).unwrap();
    let want: Vec<u32> = (0..64 * 64).map(|k| if inside(k) { k as u32 } else { 0 }).collect();
    assert_eq!(u32s(&out), want);
    let mut out = u32_bytes(&[u32::MAX; 64 * 64]);
    gpu.read_download(packed, &mut out, all).unwrap();
    let want: Vec<u32> = (0..64 * 64).map(|k| if inside(k) { k as u32 } else { u32::MAX }).collect();
    assert_eq!(u32s(&out), want);
}
