//! Errors found while running abort every rank with a message naming the rank, command, task and kernel, instead
//! of hanging the others; so do stalls and ranks whose programs diverge. With `--case NAME` this program runs one
//! failing case; without arguments it runs each case as one rank in a child process and checks how it ends (what
//! `cargo test` does). `./x test` also runs the cases under `mpirun -n 2` (`MPI_FAIL_TESTS` in `./x`) and checks
//! that every rank stops with the message.
//!
//! Cases:
//! - `push-constants`: a kernel given 200 scalars where its push-constant struct declares one: `submit` refuses it,
//!   naming the task, the kernel and the members it declares.
//! - `bad-env`: `CELER_LOG=loud`: `Queue::new` refuses it, naming the variable and the accepted values.
//! - `builds-differ` (under mpirun): the last rank starts as another build of celer would; every rank's
//!   `Queue::new` fails naming the builds (binaries of different celer versions hung in the start-up's exchange).
//! - `typo-env`: `CELER_HORIZON_STEPS=2` (a misspelt variable): the run goes on, warning that celer ignores it and
//!   naming `CELER_HORIZON_STEP`.
//! - `rank-dies`: the last of several ranks aborts in the middle of a stencil; the others must not hang (`./x test`
//!   checks that the run ends within 10 s naming the lost rank).
//! - `grows`: kernels over ever longer prefixes of a buffer, a `wait()` after each, so its allocation grows 4 times:
//!   the warning names the buffer by its name (`buffer B0 "widening"`)
//! - `waits-1` / `waits-8`: 40 host tasks with a `wait()` after every one (the frequent-wait warning must fire)
//!   or after every 8th (it must not); both finish with the right counts. `waits-8` with `CELER_DEVICES=2` and
//!   `CELER_LOG=info`: the shutdown summaries name each device of the rank and its node.
//! - `stall`: the last rank's host task sleeps 20 s while rank 0 awaits its data; with `CELER_STALL_TIMEOUT=3`
//!   (set if unset) every rank reports what it waits for (rank 0: the await-push and the rank it expects the data
//!   from) and the run aborts within seconds. Each of the two ranks checks that its report came within the timeout
//!   + 2 s of the host task's start, and otherwise says `no stall diagnosis within` and ends.
//! - `diverge`: rank 1 submits a task over another range, then one task more; the divergence check stops every
//!   rank. On one rank nothing diverges, so the same program must finish silently.
//! - `overlap-submit`: host tasks writing a whole buffer through `all` and a neighbourhood through
//!   `neighborhood`: on several ranks `submit` refuses both on every rank, naming the task, the buffer and the cells
//!   written twice, and the program goes on (the buffer untouched); on one rank both run.
//! - `diverge-fence`: rank 1 submits a task over another range, then every rank fences a buffer no task wrote, rank 1
//!   two seconds later: rank 0's fence data is ready at once but held until the divergence check has compared the
//!   fence's window, so the divergence ends every rank and no rank prints `fenced` (nor `waited`).
//! - `diverge-host`: rank 1 submits a host task over another range, then every rank a collective host task, rank 1
//!   two seconds later: a host task is held until the divergence check has compared its window, so no rank runs
//!   either (none prints `ran`); on one rank both run.
//! - `oob-read` / `oob-write` (with `CELER_CHECK_BOUNDS=on`, which the case sets if unset): a kernel reads `i + 1`
//!   (inside its allocation, outside what `one_to_one` declared) or writes `i + 1`; every rank stops naming the
//!   task, the buffer and the box of cells touched outside. `oob-clean`: the same read declared with
//!   `neighborhood`, which must pass silently with the right result.
//! - `empty-write`: a kernel writes every item through a `discard_write` whose custom mapper gives each chunk no
//!   cells; without `CELER_CHECK_BOUNDS`, such a dispatch runs checked and binds a stand-in cell: every rank stops
//!   naming the task, the buffer, the accessor, the cells written and the empty region. `empty-guarded`: a kernel
//!   that guards its accesses with `celer_contains`, through mappers that give the second half's chunks no cells,
//!   must pass silently with the serial result.
//! - `spin`: a kernel that never finishes; with `CELER_STALL_TIMEOUT=2` the stall detection names the GPU work.
//! - `bad-device` (`CELER_DEVICE=99`, set by the case if unset) / `no-driver` (`VK_DRIVER_FILES=/nonexistent.json`):
//!   `Queue::new` returns `Err` on every rank (no `MPI_ABORT`), naming the device problem on the ranks where it
//!   happened; the case prints the error and succeeds. `bad-device-last`: only the last rank's `CELER_DEVICE` is bad;
//!   that rank names it, the others say which rank could not start.
//! - `workgroup-memory` / `workgroup-size`: kernels of `kernels/limits.wgsl` beyond the device's compute limits
//!   (256 KiB of `var<workgroup>` memory; 2048 invocations per workgroup); every rank stops when it loads the
//!   kernel, naming the task, the kernel and the limit (the driver never sees the pipeline: lavapipe took minutes
//!   to compile the first).
//! - `device-lost`: `CELER_INJECT_FAULT=device-lost@5` (set by the case if unset) makes the GPU layer report a lost
//!   device; every rank stops naming the device and the work that was in flight.
//! - `host-panic`: the last rank's chunk of host task `explode` panics; every rank stops within seconds, naming
//!   the task and the panic's message (the others would otherwise wait for its data forever).
//! - `combine-panic`: the combine closure of a `reduce_with` panics; every rank stops naming the reduction's task
//!   and the message (on one rank nothing is combined: the case then finishes).
//! - `combine-order`: a `reduce_with` whose combine keeps its first operand of two values of 32 and more (the
//!   kernel's OR below): not commutative beyond the values `submit` probes, so it passes `submit`; the runtime, which
//!   calls the combine both ways for each pair of partial results, ends every rank naming the task, the buffer, both
//!   operands and both results. One rank of one device has one chunk, combined by its kernel alone: the case then
//!   finishes; one rank of two devices (`CELER_DEVICES=2`) combines two partial results and stops.
//! - `mapper-panic`: a custom range mapper panics while the task is submitted (on the application thread); the
//!   message names the task, the mapper and its buffer, and the queue's drop ends every rank.
//! - `mapper-panic-reach`: the `reach` closure of a custom range mapper underflows (`cells.min()[0] - 1` at cell 0)
//!   where a dry run of two ranks generates their commands inside `submit`; the message names the task, the mapper,
//!   its buffer and the reach closure.
//! - `mapper-inverted`: a custom range mapper returns `GridBox::d1(7, 3)` (min past max, an arithmetic slip that
//!   used to give the empty box and run on); the constructor panics at submit, naming the corners and the dimension,
//!   and the message names the task, its mapper and buffer; the queue's drop ends every rank.
//! - `mapper-panic-runtime`: a custom range mapper that panics only where the runtime thread applies it; the
//!   runtime catches it and ends every rank, naming the task, the mapper and its buffer.
//! - `mapper-oob-chunk`: a custom range mapper inside the buffer for the whole index space, which `submit` checks,
//!   but outside it for the chunk of rank 1, which only the runtime thread's command generator sees; on two ranks
//!   the runtime ends every rank naming the task, the mapper and the cells outside (on one rank it finishes).
//! - `exit-in-host`: the last rank's chunk of a host task calls `std::process::exit(3)`; every rank stops within
//!   seconds naming the task (the exit hook cannot shut the runtime down from inside a host task).
//! - `exit-in-mapper`: a custom range mapper calls `std::process::exit(4)` on the runtime thread; the rank ends at
//!   once saying so (`./x`'s MPI_FAIL_TESTS).
//! - `exit-other-thread`: the queue lives on a thread of the program's that submits without pause while the main
//!   thread calls `std::process::exit(0)`: the run exits 0 (tasks after the shutdown epoch are dropped).
//! - `mapper-sleeps`: a custom range mapper never returns on the runtime thread, which so never acts on SIGTERM;
//!   `cargo test` sends SIGTERM twice, and the second ends the process (by the signal's default action).
//! - `mapper-rank`: a custom range mapper that depends on the rank writes a buffer, which a fence then reads: on two
//!   ranks the cells one rank sends are not those the other expects, and every rank stops naming the buffer and
//!   saying that a custom mapper must be a pure function of the chunk; on one rank it finishes.
//! - `huge-host-view`: a host task's view of a buffer needs 2^48 bytes of host memory; the rank stops naming the
//!   task, the accessor and the buffer.
//! - `huge-device`: two kernels read the first and the last cell of a `[2^30]` `f32` buffer (4 GiB): each chunk binds
//!   4 bytes, so `submit` accepts both, but a node's allocation is the bounding box of what its commands touch, more
//!   than a device allocates (lavapipe's `maxBufferSize`) or binds for one accessor (`maxStorageBufferRange`,
//!   4 GiB - 1 at most); the rank stops naming the buffer by its name (the allocation error named it `B0` alone).
//! - `mapper-stuck` (with `CELER_STALL_TIMEOUT=2`, which the case sets if unset): the same mapper; the application
//!   thread, waiting in `q.wait()`, finds the runtime thread's heartbeat stopped for twice the timeout and ends the
//!   rank naming what can hold that thread (`./x`'s MPI_FAIL_TESTS, 1 and 2 ranks).
//! - `startup-alone` (with `CELER_STALL_TIMEOUT=1`, set if unset): the job's last process exits before creating its
//!   queue (it never starts MPI); the others, waiting in MPI's start-up, end after four stall timeouts naming why
//!   (`./x`'s MPI_FAIL_TESTS, 2 ranks); alone, the process starts and the case fails.
//! - `named-kernel`: a `Kernel::named` kernel (a dry run's, without code) and a host task without a closure
//!   submitted to a running queue are refused at `submit` on every rank, naming the task; a host task after them
//!   runs (must pass).
//! - `huge-range`: a host task over `usize::MAX x 2` items, a kernel over 2^32 + 16 items, a kernel whose every
//!   chunk reads a buffer of 2^34 cells and one whose every chunk reads 4 GiB of a buffer (more than a device binds
//!   for one accessor) are refused at `submit`;
//!   a host task over `usize::MAX` items splits over the ranks without overflow, each rank running its share (must pass).
//! - `settings-differ`: rank 1 runs with `CELER_TRACE`, `CELER_DEVICES=2` and `CELER_STALL_TIMEOUT=100` and
//!   refuses reads of uninitialized cells (`QueueBuilder::uninitialized_reads`), rank 0 without; building the queue
//!   fails on every rank naming the four settings and each rank's value. On one rank nothing differs: it must finish.
//! - `zero-sized`: buffers with a zero extent (1D, 2D, one from an empty slice, 3D ones of extent `[2^40, 2^40, 0]`
//!   in every order): a host task sees empty slices, fences return empty vectors, host tasks and a kernel over
//!   their extents run nothing (must pass).
//! - `empty-range`: a kernel, 1D and 2D host tasks and a reduction over empty index spaces, and a fence of an
//!   empty box: nothing runs (the host closures are never called), the empty sum is 0, the empty fence returns an
//!   empty vector, and a copy after them reads the data written before them (must pass).
//! - `huge-buffer`: a `[2^40, 2^40]` buffer of `f32` is refused at `q.buffer`, naming the extent; the panic points
//!   at that line.
//! - `scalar-differs`, `extent-differs`, `data-differs`, `fewer-tasks`, `skip-fence`, `skip-barrier`: rank 1
//!   passes another `scalar_f32`, creates the buffer with another extent or from other data, leaves out one
//!   stencil step, skips a fence or a barrier (or, `fence-differs`, fences another subrange: each rank's report
//!   shows its box); every rank stops within seconds, reporting a divergence and the
//!   first task that differs (with its scalars, or its buffer's extent and creation hash). On one rank nothing
//!   differs: each must finish.
//! - `split-differs`, `reduce-differs`: rank 1 alone splits a 2D host task with `.split_2d()`, or reduces with
//!   `reduce_including` where the others `reduce`; every rank reports the divergence, rank 1's side showing
//!   `split 2D` or `including the buffer's current value`. On one rank nothing differs: each must finish.
//! - `mapper-rank-read`, `mapper-rank-write`, `mapper-random`, `combine-differs`: rank 1's custom range mapper
//!   gives every chunk the whole buffer for a read, or gives chunk 0 half its cells for a write, or grows each chunk
//!   by a number of cells taken from the clock; or rank 1's `reduce_with` combines with `^` below 8 where the
//!   others use `|`. Every rank reports the divergence within seconds, its side showing the regions its mapper gave per chunk
//!   or what its combine gives (they stalled for `CELER_STALL_TIMEOUT`, or the ranks disagreed on a transfer, or,
//!   for the combine, the ranks held different results with no message). On one rank nothing differs: each must
//!   finish with the right result.
//! - `entry-differs`, `offset-differs`, `granularity-differs`: rank 1 picks another kernel entry point (and with it
//!   the reduction operation), another offset, or another split granularity; every rank reports the divergence
//!   showing its side. On one rank each must finish.
//! - `object-differs`, `group-differs`, `type-differs`: rank 1 creates an extra host object or collective group
//!   before the program's own, or makes a buffer `f32` where the others make it `u32`; every rank reports the
//!   divergence naming the host object (`H0` / `H1`), the collective group (`CG1` / `CG2`) or the element type
//!   (`u32` / `f32`) of its side. On one rank nothing differs: each must finish.
//! - `rank-returns` / `rank-panics`: the last rank's program gives up after 4 stencil steps (its `main` returns an
//!   error, or panics) while the others go on; every rank says that this rank ended before the others' point
//!   (dropped its queue), and the rank's own error is printed (the panic's message, or `e2e_errors: rank 1 cannot
//!   go on …` after the queue's drop returned). On one rank the error alone.
//! - `rank-returns-unchecked` / `exit-one-unchecked` (with `CELER_CHECK_DIVERGENCE=off` and
//!   `CELER_STALL_TIMEOUT=4`, which the cases set if unset): as `rank-returns`, or the last rank calls
//!   `std::process::exit(0)` after 4 steps, without the divergence check: the stall report of every rank names the
//!   rank whose program ended (the others wait for data it would have sent; they blamed range mappers), and the
//!   ended rank's own error is printed before the job ends. On one rank the error alone, or the exit's status 0.
//! - `skip-fence-unchecked` / `skip-barrier-unchecked` (with `CELER_CHECK_DIVERGENCE=off` and
//!   `CELER_STALL_TIMEOUT=2`, which the cases set if unset): as `skip-fence` / `skip-barrier`, without the divergence
//!   check: the ranks end disagreeing on which cells move, or stalled awaiting data, and every such report says that
//!   the check is off, so the programs may have submitted different tasks (they blamed range mappers alone, which
//!   these programs do not have). On one rank nothing differs: each must finish.
//! - `nested-object`: a task declaring one host object twice is refused at `submit`, naming the task and the
//!   object; then a host task calls `with_object(0)` inside `with_object(0)`: the inner call panics at its line
//!   (instead of deadlocking the host worker), and every rank stops naming the task.
//! - `queue-reentrant`: a custom range mapper reaches its queue through a `thread_local` holding a leaked
//!   `&'static Queue` and calls `wait` while `submit` applies it: the inner call panics at its line naming itself
//!   and the re-entry (it was `RefCell`'s "already borrowed"), and the job ends naming the task and the mapper.
//! - `fence-in-host`: a host task waits for a fence submitted before it (of a buffer it does not write), which
//!   gives its data; then a host task writing `a` waits for a fence of `a` submitted after it (handed over through a
//!   channel), which waits for the task: the wait panics at its line naming the task, the fence, the buffer and the
//!   cells, and the job ends (it stalled until `CELER_STALL_TIMEOUT`, 30 s by default).
//! - `exit-early`: every rank ends with `std::process::exit(0)` while its queue is alive, with work submitted and
//!   not waited for; the exit hook runs the shutdown and `MPI_Finalize`, so `mpirun` exits 0 (`./x`'s MPI_TESTS).
//! - `sigterm`: the last rank sends itself SIGTERM while rank 0 waits for its data; every rank stops within
//!   seconds naming the signal (`MPI_Abort`, which removes OpenMPI's shared-memory segments).
//! - `busy-app` (with `CELER_STALL_TIMEOUT=2`, which the case sets if unset): rank 0's application thread
//!   computes 2.5 timeouts (5 s) before each of two submissions while the other ranks wait for its data; that is no stall, and
//!   the run must finish with the right values (`./x`'s MPI_TESTS; the `stall` cases show real stalls still end
//!   the run).
//! - `app-away` (with `CELER_STALL_TIMEOUT=2`, which the case sets if unset): the last rank's application thread
//!   blocks for 12 s on a channel nobody fills, between a submission and its fence, while the others wait in
//!   theirs: no stall report (it might be computing), but each other rank's long-wait notice names that rank
//!   (`the program of rank 1 has not come back to celer`; they said "a rank (this one or another)"); then it comes
//!   back and the run finishes with the right data (`./x`'s MPI_TESTS, 2 and 3 ranks).
//! - `app-away-limit` (with `CELER_STALL_TIMEOUT=2` and `CELER_AWAY_TIMEOUT=3`, which the case sets if unset): as
//!   `app-away`, but the last rank does not come back for 30 s; the others must end the job after the away timeout,
//!   naming it (`stalled: the program of rank 1 has not come back to celer ... (CELER_AWAY_TIMEOUT = 3 s)`; `./x`'s
//!   MPI_FAIL_TESTS, 2 and 3 ranks). Reaching the end of the case is the failure.
//! - `bounded` (with `CELER_SUBMIT_AHEAD=2`, which the case sets if unset): 200 buffers of 64 KiB are created,
//!   written and dropped; after a `wait` the rank's device memory holds at most a few of them (dropped buffers are
//!   freed once the tasks that used them ran). Then 2000 host tasks of 200 µs each are submitted without a wait: right
//!   after the last `submit`, all but the last few dozen must have run already (`submit` blocked meanwhile).
//!   Then 50 collective groups are created, used by a task each and dropped; after a `wait`, the runtime holds
//!   at most 16 per-command records (`RankStats::command_records`). Last, 2000 buffers of 4 KiB with
//!   creation data and 2000 host objects are created and dropped without a task (no horizon comes): the runtime
//!   must hold at most 2 buffers afterwards.
//! - `creation-data` (`CELER_SUBMIT_AHEAD` off): 600 buffers of 1 MiB with creation data, each read by a host task
//!   and dropped, while a slow task keeps the runtime from reaching a horizon: right after the loop the runtime
//!   holds no more than `CREATION_DATA_BACKLOG` of their data (creating them blocked), and none after a wait.
//! - `dropped-early`: 40 buffers, each written by a host task and read by another that writes one cell of a kept
//!   buffer, are dropped while a gate task that both wait for holds them back; the gate then opens, and once a
//!   fence shows every cell written the runtime must free them all within 2 s, with no horizon or epoch between
//!   (40 independent tasks make none: it held every one until two more horizons came, hundreds of buffers in a
//!   loop like this).
//! - `unwritable-output`: a program that installs no logger, run with `CELER_DUMP_GRAPHS` and `CELER_TRACE` where
//!   nothing can be written (below a regular file): the run succeeds, and stderr names both variables at start-up
//!   and at shutdown.
//! - `temporaries`: 120 buffers of 4 MiB, each written by a kernel, read back in part and dropped (a `wait` after
//!   every 10): the process's resident memory (lavapipe's device memory is host memory) must stay within 64 MiB of
//!   what it was after the first 20.
//! - `fences-unwaited`: 1 200 fences of a 1 MiB buffer recorded in a loop and dropped without a wait, then one
//!   waited for: it holds the buffer's data, and the resident memory grew by less than 512 MiB (each fence the
//!   runtime had not yet answered held its staging buffer and answer: 1.2 GB more before `FENCE_DATA_BACKLOG`).
//! - `host-reads`: 1 500 host tasks that read a 1 MiB buffer, submitted in a loop without a wait: each sees the
//!   buffer's data, and the resident memory grew by less than 512 MiB (they do not depend on each other, and each
//!   started one held its view: 3 GB more before `HOST_VIEW_BACKLOG`).
//! - `temporaries-unwaited`: 1 500 temporary buffers of 1 MiB, each written by a kernel and dropped, without a
//!   wait: the resident memory grew by less than 768 MiB (the kernels of `CELER_SUBMIT_AHEAD` horizons' worth of
//!   them started at once, each temporary allocated: 2.3 GB more on one rank before `DROPPED_BUFFER_BACKLOG`).
//! - `second-queue`: `Queue::new` while a queue is alive fails with a message about one queue per process.
//! - `bad-index`: a host task asks for accessor 5 of 1; the panic points at the host task's line in this file.
//! - `bad-element`: a host task writes an `f32` buffer as `i32`; the panic points at its line, naming both types.
//! - `bad-dims`: a host task asks for a 1D accessor's box as a 2D one; the panic points at its line likewise.
//! - `no-float64`: `CELER_INJECT_FAULT=no-float64@R` (R the last rank; set by the case if unset) makes the last
//!   rank's device count as lacking `shaderFloat64`: on every rank `submit` refuses the f64 block reduction (naming
//!   the task and the kernel), and an f32 block reduction still runs and gives the serial sum (must pass).
//! - `push-limit`: a kernel with five bindings (144 bytes of parameters, more than lavapipe's 128 bytes of push
//!   constants): it reads them from a storage buffer and runs on every device, giving the sums, and a kernel on
//!   push constants after it runs too (must pass; it was refused where a device took less before).

use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use celer::{access, kernels, task, Buffer, GridBox, Kernel, Queue, ReductionOp, Region};

/// The kernels of `kernels/` (`faulty.wgsl` holds the deliberately wrong ones).
#[allow(dead_code)] // METG is the examples'
mod own_kernels {
    celer::include_kernels!();
}

/// Items of the shifting task: fewer than the buffer's 64 cells, so that on one rank too the chunk's last read
/// (cell 48) lies inside the allocation, which a fence made cover the whole buffer.
const SHIFT_ITEMS: usize = 48;

/// `dst[i] = src[i + 1]` over 48 items, reading `src` through `one_to_one` (wrong: out of bounds at each chunk's
/// end) or `neighborhood([1])` (right); the clean version checks the result.
fn shift(declared_right: bool) -> Result<(), String> {
    let q = Queue::new().map_err(|e| e.to_string())?;
    let src = q.buffer_from(&(0..64u32).collect::<Vec<_>>(), [64]).named("src");
    let dst = q.buffer_from(&[0u32; 64], [64]).named("dst");
    // Every rank now holds all of src: its allocation is larger than what one chunk declares.
    q.fence(&src).map_err(|e| e.to_string())?.wait().map_err(|e| e.to_string())?;
    let k = Kernel::wgsl(&own_kernels::FAULTY, "shift_left").map_err(|e| e.to_string())?;
    let t = task::parallel_for(&k, [SHIFT_ITEMS]).name("shift_left");
    let t = if declared_right { t.read(&src, access::neighborhood([1])) } else { t.read(&src, access::one_to_one()) };
    q.submit(t.discard_write(&dst, access::one_to_one())).map_err(|e| e.to_string())?;
    let got = q.fence(&dst).map_err(|e| e.to_string())?.wait().map_err(|e| e.to_string())?;
    let want: Vec<u32> = (0..64u32).map(|i| if (i as usize) < SHIFT_ITEMS { i + 1 } else { 0 }).collect();
    if got != want {
        return Err(format!("shift_left computed {got:?}, expected {want:?}"));
    }
    if !declared_right {
        return Err("the out-of-bounds read was not reported".into());
    }
    Ok(())
}

/// `dst[i + 1] = src[i]` over the whole buffer: the last item of each chunk writes outside what it declared.
fn write_next() -> Result<(), String> {
    let q = Queue::new().map_err(|e| e.to_string())?;
    let src = q.buffer_from(&[7u32; 64], [64]).named("src");
    let dst = q.buffer::<u32, 1>([64]).named("dst");
    let k = Kernel::wgsl(&own_kernels::FAULTY, "write_next").map_err(|e| e.to_string())?;
    q.submit(
        task::parallel_for(&k, [64])
            .read(&src, access::one_to_one())
            .discard_write(&dst, access::one_to_one())
            .name("write_next"),
    )
    .map_err(|e| e.to_string())?;
    q.wait();
    Err("the out-of-bounds write was not reported".into())
}

/// `out[i] = i * i` through a `discard_write` whose custom mapper gives every chunk no cells: every item's write
/// goes through an accessor with an empty region, which celer must report (it ran silently, its writes clamped
/// into cell 0 of the buffer, until the dispatch of such an accessor ran checked).
fn empty_write() -> Result<(), String> {
    let q = Queue::new().map_err(|e| e.to_string())?;
    let a = q.buffer_from(&[5u32; 64], [64]).named("a");
    let nothing = access::custom("nothing", |_: &GridBox<1>, _: &GridBox<1>| Region::<1>::new());
    let k = Kernel::wgsl(&kernels::SQUARES, "main").map_err(|e| e.to_string())?;
    q.submit(task::parallel_for(&k, [64]).discard_write(&a, nothing).name("sq_none")).map_err(|e| e.to_string())?;
    let got = q.fence(&a).map_err(|e| e.to_string())?.wait().map_err(|e| e.to_string())?;
    Err(format!("the writes through an accessor without cells were not reported (fence: {:?})", &got[..4]))
}

/// `dst[i] = 3 * src[i]` through `src` and `dst` accessors whose custom mapper gives each chunk its cells in
/// `[0, 32)`: on two ranks the second rank's chunk `[32, 64)` gets no cells of either, and its kernel, which guards
/// every access with `celer_contains`, touches none. The fenced cells must match the serial result, without a report.
fn empty_guarded() -> Result<(), String> {
    let q = Queue::new().map_err(|e| e.to_string())?;
    let src = q.buffer_from(&(0..64u32).collect::<Vec<_>>(), [64]).named("src");
    let dst = q.buffer::<u32, 1>([64]).named("dst");
    let head =
        || access::custom("head", |c: &GridBox<1>, _: &GridBox<1>| Region::from(c.intersection(&GridBox::d1(0, 32))));
    let k = Kernel::wgsl(&own_kernels::FAULTY, "copy_guarded").map_err(|e| e.to_string())?;
    q.submit(task::parallel_for(&k, [64]).read(&src, head()).discard_write(&dst, head()).name("copy_head"))
        .map_err(|e| e.to_string())?;
    let got = q.fence_subrange(&dst, [0], [32]).map_err(|e| e.to_string())?.wait().map_err(|e| e.to_string())?;
    let want: Vec<u32> = (0..32u32).map(|i| 3 * i).collect();
    if got != want {
        return Err(format!("copy_head computed {got:?}, expected {want:?}"));
    }
    Ok(())
}

/// A kernel that never finishes (on lavapipe, that takes minutes: see `kernels/faulty.wgsl`), 65536 items per rank.
fn spin() -> Result<(), String> {
    let q = Queue::new().map_err(|e| e.to_string())?;
    let n = 65536 * q.ranks();
    let src = q.buffer_from(&vec![0u32; n], [n]).named("flag");
    let dst = q.buffer::<u32, 1>([n]).named("out");
    let k = Kernel::wgsl(&own_kernels::FAULTY, "spin").map_err(|e| e.to_string())?;
    q.submit(
        task::parallel_for(&k, [n])
            .read_write(&src, access::one_to_one())
            .discard_write(&dst, access::one_to_one())
            .name("endless"),
    )
    .map_err(|e| e.to_string())?;
    q.wait();
    Err("the endless kernel finished".into())
}

/// A kernel beyond the device's compute limits (`kernels/limits.wgsl`): `big_shared` uses 256 KiB of workgroup
/// memory, `too_wide` has 2048 invocations per workgroup; the run must stop naming the kernel and the limit when
/// the kernel is loaded, before the driver sees its pipeline.
fn workgroup_limits(entry: &'static str) -> Result<(), String> {
    let q = Queue::new().map_err(|e| e.to_string())?;
    let out = q.buffer::<u32, 1>([4096]).named("out");
    let k = Kernel::wgsl(&own_kernels::LIMITS, entry).map_err(|e| e.to_string())?;
    q.submit(task::parallel_for(&k, [4096]).discard_write(&out, access::one_to_one()).name("beyond"))
        .map_err(|e| e.to_string())?;
    q.wait();
    Err(format!("kernel limits::{entry} ran"))
}

/// Submits one step of the 1D heat stencil (task "step") from `a` into `b`, both of 256 cells.
fn heat_step(
    q: &Queue,
    heat: &Kernel,
    a: &Buffer<'_, f32, 1>,
    b: &Buffer<'_, f32, 1>,
    alpha: f32,
) -> Result<(), String> {
    let step =
        task::parallel_for(heat, [256]).read(a, access::neighborhood([1])).discard_write(b, access::one_to_one());
    q.submit(step.scalar_f32(alpha).name("step")).map(|_| ()).map_err(|e| e.to_string())
}

/// A 1D stencil of 100 steps, during which the injected device loss strikes. The program waits for a fence every 10
/// steps, so the GPU gets at least 10 batches and so at least 10 polls with work in flight, however fast the device
/// and however many tasks the runtime batches together: the injected loss (at the 5th such poll) always strikes.
fn stencil() -> Result<(), String> {
    let q = Queue::new().map_err(|e| e.to_string())?;
    let heat = Kernel::wgsl(&kernels::HEAT_1D, "main").map_err(|e| e.to_string())?;
    let mut a = q.buffer_from(&[1.0f32; 256], [256]).named("a");
    let mut b = q.buffer::<f32, 1>([256]).named("b");
    for step in 1..=100 {
        heat_step(&q, &heat, &a, &b, 0.1)?;
        std::mem::swap(&mut a, &mut b);
        if step % 10 == 0 {
            q.fence(&a).map_err(|e| e.to_string())?.wait().map_err(|e| e.to_string())?;
        }
    }
    q.fence(&a).map_err(|e| e.to_string())?.wait().map_err(|e| e.to_string())?;
    Ok(())
}

/// A host task whose last rank's chunk panics; rank 0 then reads what it wrote, so it waits for that rank.
fn host_panic() -> Result<(), String> {
    let q = Queue::new().map_err(|e| e.to_string())?;
    let data = q.buffer::<f32, 1>([64]).named("data");
    q.submit(task::host_for([64]).discard_write(&data, access::one_to_one()).name("explode").run(|ctx| {
        let (rank, ranks) = ctx.rank();
        if rank + 1 == ranks {
            panic!("boom on the last rank");
        }
        ctx.data_mut::<f32>(0).fill(1.0);
    }))
    .map_err(|e| e.to_string())?;
    let got = q.fence(&data).map_err(|e| e.to_string())?.wait();
    Err(format!("the program went on after the host task panicked (fence: {got:?})"))
}

/// A `reduce_with` whose combine closure is not commutative on values beyond `submit`'s probes: of two values of 32
/// and more it keeps the first (below 32, the OR its kernel's atomicOr makes). On 2 nodes the chunks' partial results are 16 | 32 and 64 | 128.
fn combine_order() -> Result<(), String> {
    let q = Queue::new().map_err(|e| e.to_string())?;
    let flags = q.buffer_from(&[16u32, 32, 64, 128], [4]).named("flags");
    let first = q.buffer::<u32, 1>([1]).named("first_big");
    let or = Kernel::wgsl(&kernels::REDUCE_BITS, "reduce_or").map_err(|e| e.to_string())?;
    q.submit(
        task::parallel_for(&or, [4])
            .read(&flags, access::one_to_one())
            .reduce_with(&first, 0, |a, b| if a >= 32 && b >= 32 { a } else { a | b })
            .name("keep_first"),
    )
    .map_err(|e| e.to_string())?;
    let got = q.fence(&first).map_err(|e| e.to_string())?.wait();
    if q.ranks() == 1 && got.as_ref().is_ok_and(|v| v == &[240]) {
        // One chunk: the kernel's own reduction is the result, and nothing is combined on the host.
        return Ok(());
    }
    Err(format!("the program went on after a combine that is not commutative (fence: {got:?})"))
}

/// A `reduce_with` whose combine closure panics.
fn combine_panic() -> Result<(), String> {
    let q = Queue::new().map_err(|e| e.to_string())?;
    let flags = q.buffer_from(&[1u32, 4, 16, 4], [4]).named("flags");
    let any = q.buffer::<u32, 1>([1]).named("any");
    let or = Kernel::wgsl(&kernels::REDUCE_BITS, "reduce_or").map_err(|e| e.to_string())?;
    q.submit(
        task::parallel_for(&or, [4])
            .read(&flags, access::one_to_one())
            .reduce_with(&any, 0, |_, _| panic!("combine refuses"))
            .name("or_all"),
    )
    .map_err(|e| e.to_string())?;
    let got = q.fence(&any).map_err(|e| e.to_string())?.wait();
    if q.ranks() == 1 && got.as_ref().is_ok_and(|v| v == &[21]) {
        // One rank has no partial results to combine: the kernel's own reduction is the result.
        return Ok(());
    }
    Err(format!("the program went on after the combine panicked (fence: {got:?})"))
}

/// A custom range mapper that panics for every chunk (`anywhere`) or only where the runtime thread applies it.
fn mapper_panic(anywhere: bool) -> Result<(), String> {
    let q = Queue::new().map_err(|e| e.to_string())?;
    let a = q.buffer_from(&[1.0f32; 64], [64]).named("a");
    let picky = access::custom("picky", move |chunk, _extent| {
        if anywhere || std::thread::current().name() == Some("celer-runtime") {
            panic!("picky refuses chunk {chunk}");
        }
        celer::Region::from(*chunk)
    });
    q.submit(task::host_for([64]).read_write(&a, picky).name("choosy").run(|_| {})).map_err(|e| e.to_string())?;
    let got = q.fence(&a).map_err(|e| e.to_string())?.wait();
    Err(format!("the program went on after the mapper panicked (fence: {got:?})"))
}

/// A custom mapper whose `reach` closure underflows at cell 0, applied where a dry run of two ranks generates their
/// commands inside `submit` (the task "underflow" reads buffer B0 "src" through it).
fn mapper_panic_reach() -> Result<(), String> {
    let q = Queue::builder().dry_run(2).build().map_err(|e| e.to_string())?;
    let src = q.buffer_from(&[1.0f32; 64], [64]).named("src");
    let dst = q.buffer::<f32, 1>([64]).named("dst");
    let left_halo = access::custom("left_halo", |chunk: &GridBox<1>, _: &GridBox<1>| {
        Region::from(GridBox::d1(chunk.min()[0].saturating_sub(1), chunk.max()[0]))
    })
    // The bug: the items touching cells [a, b) are [a, b + 1), and cell 0 has no left neighbour.
    .reach(|cells: &GridBox<1>, range: &GridBox<1>| {
        GridBox::d1(cells.min()[0] - 1, cells.max()[0] + 1).intersection(range)
    });
    let step = task::parallel_for(&Kernel::named("k"), [64])
        .read(&src, left_halo)
        .discard_write(&dst, access::one_to_one())
        .name("underflow");
    q.submit(step).map_err(|e| e.to_string())?;
    Err("the program went on after the reach closure panicked".into())
}

/// A custom range mapper whose box has its corners swapped (`GridBox::d1(7, 3)`): submit fails loudly.
fn mapper_inverted() -> Result<(), String> {
    let q = Queue::new().map_err(|e| e.to_string())?;
    let a = q.buffer_from(&[1.0f32; 64], [64]).named("a");
    let backwards = access::custom("backwards", |_chunk, _extent| celer::Region::from(celer::GridBox::d1(7, 3)));
    q.submit(task::host_for([64]).read(&a, backwards).name("inverted").run(|_| {})).map_err(|e| e.to_string())?;
    let got = q.fence(&a).map_err(|e| e.to_string())?.wait();
    Err(format!("the program went on after a mapper's box with min past max (fence: {got:?})"))
}

/// A custom mapper inside the buffer for the whole index space (which `submit` checks on the application thread)
/// but outside it for the second half's chunk, which only the runtime thread's command generator sees: on two
/// ranks the runtime ends every rank naming the task, the mapper and the cells outside; on one rank (one chunk, the
/// whole space) the program finishes.
fn mapper_oob_chunk() -> Result<(), String> {
    let q = Queue::new().map_err(|e| e.to_string())?;
    let a = q.buffer_from(&[1.0f32; 64], [64]).named("a");
    let shifty = access::custom("shifty", |chunk, _extent| {
        if chunk.min()[0] == 0 {
            celer::Region::from(*chunk)
        } else {
            celer::Region::from(celer::GridBox::d1(chunk.min()[0] + 8, chunk.max()[0] + 8))
        }
    });
    q.submit(task::host_for([64]).read(&a, shifty).name("shifted").run(|_| {})).map_err(|e| e.to_string())?;
    let got = q.fence(&a).map_err(|e| e.to_string())?.wait().map_err(|e| e.to_string())?;
    if q.ranks() > 1 {
        return Err(format!("the program went on after an out-of-bounds chunk (fence: {got:?})"));
    }
    Ok(())
}

/// The last rank's chunk of host task `quitter` calls `std::process::exit(3)`, as a program's error path might; rank
/// 0 then reads what that chunk wrote, so it waits for that rank. The exit hook, on the host worker, cannot shut the
/// runtime down (the runtime waits for that very task): the runtime thread ends every rank naming the task.
fn exit_in_host() -> Result<(), String> {
    let q = Queue::new().map_err(|e| e.to_string())?;
    let last = q.ranks() - 1;
    let data = q.buffer::<u32, 1>([64]).named("data");
    q.submit(task::host_for([64]).discard_write(&data, access::one_to_one()).name("quitter").run(move |ctx| {
        if ctx.rank().0 == last {
            std::process::exit(3);
        }
    }))
    .map_err(|e| e.to_string())?;
    let got = q.fence(&data).map_err(|e| e.to_string())?.wait();
    Err(format!("the program went on after a host task called exit (fence: {got:?})"))
}

/// A custom range mapper that calls `std::process::exit(4)` where the runtime thread applies it: the exit hook runs
/// on the runtime thread, which cannot wait for its own shutdown; it ends the rank at once with a message.
fn exit_in_mapper() -> Result<(), String> {
    let q = Queue::new().map_err(|e| e.to_string())?;
    let a = q.buffer_from(&[1u32; 64], [64]).named("a");
    let quits = access::custom("quits", |chunk, _extent| {
        if std::thread::current().name() == Some("celer-runtime") {
            std::process::exit(4);
        }
        celer::Region::from(*chunk)
    });
    q.submit(task::host_for([64]).read(&a, quits).name("leaver").run(|_| {})).map_err(|e| e.to_string())?;
    q.wait();
    Err("the program went on after a range mapper called exit".into())
}

/// A custom range mapper that sleeps for an hour where the runtime thread applies it (a mapper that never returns):
/// the runtime thread cannot act on SIGTERM; a second SIGTERM ends the process by the signal's default action.
fn mapper_sleeps() -> Result<(), String> {
    let q = Queue::new().map_err(|e| e.to_string())?;
    let a = q.buffer_from(&[1u32; 64], [64]).named("a");
    let sleepy = access::custom("sleepy", |chunk, _extent| {
        if std::thread::current().name() == Some("celer-runtime") {
            std::thread::sleep(Duration::from_secs(3600));
        }
        celer::Region::from(*chunk)
    });
    q.submit(task::host_for([64]).read(&a, sleepy).name("stuck").run(|_| {})).map_err(|e| e.to_string())?;
    q.wait();
    Err("the sleeping mapper returned".into())
}

/// A custom range mapper that depends on the rank (not a pure function of the chunk): host task `mirrored` writes
/// through it, so the ranks disagree on who wrote which cells, and a fence then moves cells the receiver does not
/// expect; every rank stops naming the buffer and the rule. On one rank nothing can disagree: it finishes.
fn mapper_rank() -> Result<(), String> {
    let q = Queue::new().map_err(|e| e.to_string())?;
    let odd = q.rank() == 1;
    let a = q.buffer::<u32, 1>([64]).named("a");
    let mirror = access::custom("mirror", move |chunk, _extent| {
        if odd {
            celer::Region::from(celer::GridBox::d1(64 - chunk.max()[0], 64 - chunk.min()[0]))
        } else {
            celer::Region::from(*chunk)
        }
    });
    q.submit(task::host_for([64]).discard_write(&a, mirror).name("mirrored").run(|ctx| {
        let first = ctx.bounds::<1>(0).min()[0];
        for (k, x) in ctx.data_mut::<u32>(0).iter_mut().enumerate() {
            *x = (first + k) as u32;
        }
    }))
    .map_err(|e| e.to_string())?;
    let got = q.fence(&a).map_err(|e| e.to_string())?.wait().map_err(|e| e.to_string())?;
    if got != (0..64).collect::<Vec<u32>>() {
        return Err(format!("wrong data {got:?}"));
    }
    if q.ranks() > 1 {
        return Err("the ranks' disagreement went unnoticed".into());
    }
    Ok(())
}

/// A host task whose view of a buffer needs 2^48 bytes (more than a process can address): the rank stops naming the
/// task, the accessor, the buffer and the box, instead of aborting on the failed allocation.
fn huge_host_view() -> Result<(), String> {
    let q = Queue::new().map_err(|e| e.to_string())?;
    let a = q.buffer::<f32, 1>([1 << 46]).named("enormous");
    q.submit(task::host_once().discard_write(&a, access::all()).name("fill").run(|_| {})).map_err(|e| e.to_string())?;
    q.wait();
    Err("a host task got 2^48 bytes of host memory".into())
}

/// A kernel over one item reads the whole of a 4 GiB buffer: more than a device allocates or binds for one
/// accessor. Fails at run time, naming the buffer.
fn huge_device() -> Result<(), String> {
    let q = Queue::new().map_err(|e| e.to_string())?;
    const N: usize = 1 << 30;
    let a = q.buffer::<f32, 1>([N]).named("enormous");
    let one = q.buffer::<f32, 1>([1]).named("one");
    let copy = Kernel::wgsl(&own_kernels::COPY_1D, "main").map_err(|e| e.to_string())?;
    for (name, first) in [("first", 0), ("last", N - 1)] {
        let t = task::parallel_for(&copy, [1])
            .read(&a, access::fixed([first], [1]))
            .discard_write(&one, access::one_to_one());
        q.submit(t.name(name)).map_err(|e| e.to_string())?;
    }
    q.wait();
    Err("kernels bound an allocation of 4 GiB of one buffer".into())
}

/// The queue moves to a thread of the program's, which submits without pause, while the main thread ends the
/// process with `std::process::exit(0)`: the exit hook records the shutdown epoch between two of that thread's
/// tasks, and the runtime drops the tasks that arrive after it; the process exits 0.
fn exit_other_thread() -> Result<(), String> {
    let q = Queue::new().map_err(|e| e.to_string())?;
    let (started, running) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let a = q.buffer_from(&[1u32; 64], [64]).named("a");
        for i in 0usize.. {
            let t = task::host_for([64]).read_write(&a, access::one_to_one()).name("busy").run(|_| {});
            q.submit(t).expect("a task of a queue on another thread");
            if i == 100 {
                let _ = started.send(());
            }
        }
    });
    running.recv().map_err(|e| e.to_string())?;
    std::thread::sleep(Duration::from_millis(100));
    std::process::exit(0)
}

/// Starts a queue after giving rank 1 (by OpenMPI's `OMPI_COMM_WORLD_RANK`) settings of its own, and runs a task.
fn settings_differ() -> Result<(), String> {
    if std::env::var("OMPI_COMM_WORLD_RANK").as_deref() == Ok("1") {
        std::env::set_var("CELER_TRACE", std::env::temp_dir().join("celer-e2e-settings-trace.json"));
        std::env::set_var("CELER_DEVICES", "2");
        std::env::set_var("CELER_STALL_TIMEOUT", "100");
    }
    let strict = std::env::var("OMPI_COMM_WORLD_RANK").as_deref() == Ok("1");
    let policy = if strict { celer::ErrorPolicy::Error } else { celer::ErrorPolicy::Warn };
    let q = Queue::builder().uninitialized_reads(policy).build().map_err(|e| e.to_string())?;
    let a = q.buffer_from(&[1u32; 8], [8]).named("a");
    let got = q.fence(&a).map_err(|e| e.to_string())?.wait().map_err(|e| e.to_string())?;
    if got != [1u32; 8] {
        return Err(format!("fence returned {got:?}"));
    }
    Ok(())
}

/// A program that installs no logger (the case skips `celer::logging::init`), run with `CELER_DUMP_GRAPHS` and
/// `CELER_TRACE` below a regular file (this executable, unless they are set), where no directory can be made: the run itself succeeds, and both variables
/// are named on stderr at start-up (and again at shutdown, when writing fails).
fn unwritable_output() -> Result<(), String> {
    let q = Queue::new().map_err(|e| e.to_string())?;
    let a = q.buffer_from(&[1u32; 8], [8]).named("a");
    let got = q.fence(&a).map_err(|e| e.to_string())?.wait().map_err(|e| e.to_string())?;
    if got != [1; 8] {
        return Err(format!("the fence returned {got:?}"));
    }
    Ok(())
}

/// This process's resident memory in KiB (`VmRSS`).
fn resident_kib() -> Result<u64, String> {
    let status = std::fs::read_to_string("/proc/self/status").map_err(|e| e.to_string())?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).ok_or("no VmRSS in /proc/self/status")?;
    line.split_whitespace().nth(1).and_then(|v| v.parse().ok()).ok_or_else(|| format!("cannot read {line:?}"))
}

/// Temporary buffers that kernels write: 120 buffers of 4 MiB, each written by a kernel, checked through a fence of
/// a few cells and dropped, with a `wait` after every 10. On lavapipe device memory is the process's memory, so the
/// resident memory after the last must stay within 64 MiB of that after the first 20 (a dropped buffer's memory
/// stayed with the GPU layer's cached descriptor sets until 4096 of them had piled up: 400 MiB more here).
fn temporaries() -> Result<(), String> {
    const CELLS: usize = 1 << 20;
    let q = Queue::new().map_err(|e| e.to_string())?;
    let squares = Kernel::wgsl(&own_kernels::SQUARES_I32, "main").map_err(|e| e.to_string())?;
    let mut after_warmup = 0;
    for round in 0..120 {
        let t = q.buffer::<i32, 1>([CELLS]).named("temporary");
        q.submit(task::parallel_for(&squares, [CELLS]).discard_write(&t, access::one_to_one()).name("squares"))
            .map_err(|e| e.to_string())?;
        let cells = q.fence_subrange(&t, [CELLS - 2], [2]).map_err(|e| e.to_string())?;
        let got = cells.wait().map_err(|e| e.to_string())?;
        let want: Vec<i32> = (CELLS - 2..CELLS).map(|i| (i as u32).wrapping_mul(i as u32) as i32).collect();
        if got != want {
            return Err(format!("round {round}: the kernel wrote {got:?}, expected {want:?}"));
        }
        drop(t);
        if round % 10 == 9 {
            q.wait();
        }
        if round == 19 {
            after_warmup = resident_kib()?;
        }
    }
    let grown = resident_kib()?.saturating_sub(after_warmup);
    if grown > 64 * 1024 {
        return Err(format!(
            "resident memory grew by {} MiB over 100 temporary buffers of 4 MiB, each dropped",
            grown / 1024
        ));
    }
    Ok(())
}

/// Fences recorded faster than the runtime answers them: 1 200 fences of a 1 MiB buffer dropped unwaited, then one
/// waited for, which must hold the data; the resident memory must grow by less than 512 MiB (before
/// `FENCE_DATA_BACKLOG` bounded what unanswered fences read back, it grew by about 1.2 GB here: the runtime, far
/// behind, read back every fence at once, a staging buffer and an answer each).
fn fences_unwaited() -> Result<(), String> {
    const CELLS: usize = 1 << 18;
    let q = Queue::new().map_err(|e| e.to_string())?;
    let data: Vec<u32> = (0..CELLS as u32).collect();
    let a = q.buffer_from(&data, [CELLS]).named("snapshot");
    q.wait();
    let before = resident_kib()?;
    for _ in 0..1200 {
        drop(q.fence(&a).map_err(|e| e.to_string())?);
    }
    let got = q.fence(&a).map_err(|e| e.to_string())?.wait().map_err(|e| e.to_string())?;
    q.wait();
    if got != data {
        return Err("the last fence did not return the buffer's data".into());
    }
    let grown = resident_kib()?.saturating_sub(before);
    if grown > 512 * 1024 {
        return Err(format!("resident memory grew by {} MiB over 1 200 unwaited fences of 1 MiB", grown / 1024));
    }
    Ok(())
}

/// Host tasks that only read: 1 500 of them read a 1 MiB buffer, submitted in a loop without a wait; each must see
/// the buffer's data (its last cell), and the resident memory must grow by less than 512 MiB (before the runtime
/// bounded the host tasks started at once, every one was ready at once and held its view: about 3 GB here).
fn host_reads() -> Result<(), String> {
    const CELLS: usize = 1 << 18;
    const TASKS: u64 = 1500;
    let q = Queue::new().map_err(|e| e.to_string())?;
    let data: Vec<u32> = (0..CELLS as u32).collect();
    let a = q.buffer_from(&data, [CELLS]).named("field");
    q.wait();
    let before = resident_kib()?;
    let seen = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    for _ in 0..TASKS {
        let seen = std::sync::Arc::clone(&seen);
        q.submit(task::host_once().read(&a, access::all()).name("inspect").run(move |ctx| {
            let last = u64::from(ctx.data::<u32>(0)[CELLS - 1]);
            seen.fetch_add(last, std::sync::atomic::Ordering::Relaxed);
        }))
        .map_err(|e| e.to_string())?;
    }
    q.wait();
    let grown = resident_kib()?.saturating_sub(before);
    // host_once runs on rank 0 only.
    let want = if q.rank() == 0 { TASKS * (CELLS as u64 - 1) } else { 0 };
    let got = seen.load(std::sync::atomic::Ordering::Relaxed);
    if got != want {
        return Err(format!("the host tasks saw a sum of last cells of {got}, expected {want}"));
    }
    if grown > 512 * 1024 {
        return Err(format!("resident memory grew by {} MiB over 1 500 host tasks reading 1 MiB", grown / 1024));
    }
    Ok(())
}

/// Temporaries without a wait: 1 500 buffers of 1 MiB, each written by a kernel and dropped, in a loop that never
/// waits; the resident memory (lavapipe's device memory is host memory) must grow by less than 768 MiB (before
/// creating a buffer waited for the tasks of those dropped before it beyond `DROPPED_BUFFER_BACKLOG`, every
/// temporary of the steps the program ran ahead was allocated at once: 2.3 GB more on one rank, 1.2 GB on two).
fn temporaries_unwaited() -> Result<(), String> {
    const CELLS: usize = 1 << 18;
    let q = Queue::new().map_err(|e| e.to_string())?;
    let squares = Kernel::wgsl(&own_kernels::SQUARES_I32, "main").map_err(|e| e.to_string())?;
    q.wait();
    let before = resident_kib()?;
    for _ in 0..1500 {
        let t = q.buffer::<i32, 1>([CELLS]).named("temporary");
        q.submit(task::parallel_for(&squares, [CELLS]).discard_write(&t, access::one_to_one()).name("squares"))
            .map_err(|e| e.to_string())?;
    }
    q.wait();
    let grown = resident_kib()?.saturating_sub(before);
    if grown > 768 * 1024 {
        return Err(format!("resident memory grew by {} MiB over 1 500 temporaries of 1 MiB", grown / 1024));
    }
    Ok(())
}

/// Zero-sized buffers: a host task reads two of them (empty slices) and writes what it saw; fences of them are empty.
fn zero_sized() -> Result<(), String> {
    let q = Queue::new().map_err(|e| e.to_string())?;
    let empty = q.buffer::<f32, 1>([0]).named("empty");
    let flat = q.buffer_from::<u32, 2>(&[], [4, 0]).named("flat");
    let seen = q.buffer::<u32, 1>([4]).named("seen");
    q.submit(
        task::host_for([4])
            .read(&empty, access::all())
            .read(&flat, access::all())
            .discard_write(&seen, access::one_to_one())
            .name("look")
            .run(|ctx| {
                let n = ctx.data::<f32>(0).len() + ctx.data::<u32>(1).len();
                ctx.data_mut::<u32>(2).fill(n as u32 + 7);
            }),
    )
    .map_err(|e| e.to_string())?;
    let e = q.fence(&empty).map_err(|e| e.to_string())?.wait().map_err(|e| e.to_string())?;
    let f = q.fence(&flat).map_err(|e| e.to_string())?.wait().map_err(|e| e.to_string())?;
    let s = q.fence(&seen).map_err(|e| e.to_string())?.wait().map_err(|e| e.to_string())?;
    if !e.is_empty() || !f.is_empty() || s != [7u32; 4] {
        return Err(format!("fences of zero-sized buffers gave {e:?} and {f:?}; the host task saw {s:?} (want 7s)"));
    }
    // A zero extent empties a buffer wherever it stands, however large the others (2^40 * 2^40 overflows usize):
    // tasks over the buffers' own extents run nothing, a host task sees empty slices, fences return nothing.
    let big = 1usize << 40;
    let transpose = Kernel::wgsl(&own_kernels::TRANSPOSE_SCALED, "main").map_err(|e| e.to_string())?;
    let calls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    for extent in [[big, big, 0], [big, 0, big], [0, big, big]] {
        let deep = q.buffer::<f32, 3>(extent).named("deep");
        let c = calls.clone();
        q.submit(task::host_for(extent).discard_write(&deep, access::one_to_one()).name("no_cells").run(move |_| {
            c.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }))
        .map_err(|e| e.to_string())?;
        q.submit(task::host_once().read(&deep, access::all()).discard_write(&seen, access::all()).run(|ctx| {
            let n = ctx.data::<f32>(0).len();
            ctx.data_mut::<u32>(1).fill(n as u32 + 9);
        }))
        .map_err(|e| e.to_string())?;
        let d = q.fence(&deep).map_err(|e| e.to_string())?.wait().map_err(|e| e.to_string())?;
        let s = q.fence(&seen).map_err(|e| e.to_string())?.wait().map_err(|e| e.to_string())?;
        if !d.is_empty() || s != [9u32; 4] {
            return Err(format!(
                "a buffer of extent {extent:?}: its fence gave {d:?}, a host task saw {s:?} (want 9s)"
            ));
        }
    }
    // A kernel over an empty 2D index space, binding empty buffers whose other extent is beyond u32: no dispatch.
    let (src, dst) = (q.buffer::<f32, 2>([big, 0]).named("src"), q.buffer::<f32, 2>([0, big]).named("dst"));
    q.submit(
        task::parallel_for(&transpose, [0, big])
            .read(&src, access::transposed())
            .discard_write(&dst, access::one_to_one())
            .scalar_f32(1.0),
    )
    .map_err(|e| e.to_string())?;
    let d = q.fence(&dst).map_err(|e| e.to_string())?.wait().map_err(|e| e.to_string())?;
    let n = calls.load(std::sync::atomic::Ordering::SeqCst);
    if !d.is_empty() || n != 0 {
        return Err(format!("the kernel's empty output fenced as {d:?}; host tasks over no cells ran {n} time(s)"));
    }
    Ok(())
}

/// Tasks over empty index spaces (a kernel, 1D and 2D host tasks, a reduction, an empty fence) between a writer and
/// its readers: they run nothing, change nothing, and the tasks around them see the right data.
fn empty_range() -> Result<(), String> {
    let e = |e: &dyn std::fmt::Display| e.to_string();
    let q = Queue::new().map_err(|x| e(&x))?;
    let init: Vec<f32> = (0..64).map(|i| i as f32).collect();
    let src = q.buffer_from(&init, [64]).named("src");
    let dst = q.buffer::<f32, 1>([64]).named("dst");
    let sum = q.buffer_from(&[99i32], [1]).named("sum");
    let heat = Kernel::wgsl(&kernels::HEAT_1D, "main").map_err(|x| e(&x))?;
    let add = Kernel::wgsl(&kernels::REDUCE_I32, "reduce_sum").map_err(|x| e(&x))?;
    let ints = q.buffer_from(&[1i32; 8], [8]).named("ints");
    let calls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    q.submit(
        task::parallel_for(&heat, [0])
            .read(&src, access::neighborhood([1]))
            .discard_write(&dst, access::one_to_one())
            .scalar_f32(0.5)
            .name("no_items"),
    )
    .map_err(|x| e(&x))?;
    let c = calls.clone();
    q.submit(task::host_for([0]).read_write(&src, access::all()).name("no_host_items").run(move |_| {
        c.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }))
    .map_err(|x| e(&x))?;
    let c = calls.clone();
    q.submit(task::host_for([4, 0]).discard_write(&src, access::all()).name("no_host_items_2d").run(move |_| {
        c.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }))
    .map_err(|x| e(&x))?;
    // A reduction over no items: the sum of nothing (the identity), whatever the buffer held.
    q.submit(task::parallel_for(&add, [0]).read(&ints, access::one_to_one()).reduce(&sum, celer::ReductionOp::Sum))
        .map_err(|x| e(&x))?;
    // A copy (heat with a zero coefficient) over every item, after the empty tasks: it reads src as written.
    q.submit(
        task::parallel_for(&heat, [64])
            .read(&src, access::neighborhood([1]))
            .discard_write(&dst, access::one_to_one())
            .scalar_f32(0.0)
            .name("copy"),
    )
    .map_err(|x| e(&x))?;
    let none = q.fence_subrange(&src, [8], [0]).map_err(|x| e(&x))?.wait().map_err(|x| e(&x))?;
    let got = q.fence(&dst).map_err(|x| e(&x))?.wait().map_err(|x| e(&x))?;
    let total = q.fence(&sum).map_err(|x| e(&x))?.wait().map_err(|x| e(&x))?;
    q.wait();
    let n = calls.load(std::sync::atomic::Ordering::SeqCst);
    if !none.is_empty() || got != init || total != [0] || n != 0 {
        return Err(format!(
            "rank {}: the empty fence gave {none:?}, dst {got:?} (want src), the empty sum {total:?} (want [0]), \
             the host tasks over no items ran {n} time(s) (want 0)",
            q.rank()
        ));
    }
    Ok(())
}

/// A buffer whose size overflows.
fn huge_buffer() -> Result<(), String> {
    let q = Queue::new().map_err(|e| e.to_string())?;
    let b = q.buffer::<f32, 2>([1 << 40, 1 << 40]); // HUGE-BUFFER-LINE
    Err(format!("a buffer of extent {:?} was accepted", b.range()))
}

/// A kernel made with `Kernel::named` (a dry run's) submitted to a running queue: `submit` refuses it on every rank,
/// naming the task and the kernel, and the program goes on (a host task after it runs and its data arrive).
fn named_kernel() -> Result<(), String> {
    let q = Queue::new().map_err(|e| e.to_string())?;
    let out = q.buffer::<u32, 1>([16]).named("out");
    let refused = q.submit(task::parallel_for(&Kernel::named("ghost"), [16]).discard_write(&out, access::one_to_one()));
    match refused {
        Ok(t) => return Err(format!("the kernel without code was accepted as {t}")),
        Err(e) if e.to_string().contains("\"ghost\"") && e.to_string().contains("Kernel::named") => {
            eprintln!("e2e_errors: refused as expected: {e}")
        }
        Err(e) => return Err(format!("the refusal does not name the task and Kernel::named: {e}")),
    }
    // A host task without a closure has nothing to run either.
    match q.submit(task::host_for([16]).discard_write(&out, access::one_to_one()).name("idle")) {
        Ok(t) => return Err(format!("the host task without a closure was accepted as {t}")),
        Err(e) if e.to_string().contains("\"idle\"") && e.to_string().contains("a host task without a closure") => {
            eprintln!("e2e_errors: refused as expected: {e}")
        }
        Err(e) => return Err(format!("the refusal does not name the task and the missing closure: {e}")),
    }
    q.submit(task::host_for([16]).discard_write(&out, access::one_to_one()).name("fill").run(|ctx| {
        let lo = ctx.chunk().min()[0] as u32;
        for (k, x) in ctx.data_mut::<u32>(0).iter_mut().enumerate() {
            *x = lo + k as u32;
        }
    }))
    .map_err(|e| e.to_string())?;
    let got = q.fence(&out).map_err(|e| e.to_string())?.wait().map_err(|e| e.to_string())?;
    if got != (0..16).collect::<Vec<u32>>() {
        return Err(format!("after the refused task, the host task wrote {got:?}"));
    }
    Ok(())
}

/// Index spaces near the limits: one whose item count overflows usize and a kernel's beyond the u32 coordinates
/// kernels see are refused at submit; a host task over usize::MAX items splits over the ranks without overflow
/// (each rank runs its share, about usize::MAX / ranks items; the split's arithmetic overflowed from 3 ranks on).
fn huge_range() -> Result<(), String> {
    let q = Queue::new().map_err(|e| e.to_string())?;
    let refused = |r: Result<celer::TaskId, celer::TaskError>, what: &str, part: &str| match r {
        Ok(t) => Err(format!("{what} was accepted as {t}")),
        Err(e) if e.to_string().contains(part) => Ok(()),
        Err(e) => Err(format!("{what}: the error lacks {part:?}: {e}")),
    };
    refused(
        q.submit(task::host_for([usize::MAX, 2]).name("uncountable").run(|_| {})),
        "an index space of usize::MAX x 2 items",
        "has more items than a usize can count",
    )?;
    let squares = Kernel::wgsl(&kernels::SQUARES, "main").map_err(|e| e.to_string())?;
    let small = q.buffer::<u32, 1>([16]).named("small");
    refused(
        q.submit(task::parallel_for(&squares, [(1usize << 32) + 16]).discard_write(&small, access::fixed([0], [16]))),
        "a kernel over 2^32 + 16 items",
        "cannot address the index space [0] - [4294967312]",
    )?;
    // Every chunk reads all of a buffer of 2^34 cells (no data: nothing is allocated unless a command touches it).
    let transpose = Kernel::wgsl(&kernels::TRANSPOSE, "main").map_err(|e| e.to_string())?;
    let plane = q.buffer::<f32, 2>([1 << 17, 1 << 17]).named("plane");
    let tile = q.buffer::<f32, 2>([16, 16]).named("tile");
    refused(
        q.submit(
            task::parallel_for(&transpose, [16, 16])
                .read(&plane, access::all())
                .discard_write(&tile, access::one_to_one())
                .name("gather"),
        ),
        "a kernel whose every chunk reads 2^34 cells",
        "\"gather\": kernel transpose::main cannot address buffer B1 \"plane\" on chunk",
    )?;
    // Every chunk reads all of 2^30 f32 (4 GiB): cells a kernel indexes, but more bytes than any device binds for one
    // accessor (maxStorageBufferRange: 4 GiB - 1 at most, 128 MiB on lavapipe).
    let wide = q.buffer::<f32, 2>([1 << 15, 1 << 15]).named("wide");
    let bind = || {
        task::parallel_for(&transpose, [16, 16]).read(&wide, access::all()).discard_write(&tile, access::one_to_one())
    };
    refused(
        q.submit(bind().name("bind")),
        "a kernel whose every chunk reads 4 GiB of one buffer",
        "\"bind\": kernel transpose::main cannot bind buffer B3 \"wide\" on chunk",
    )?;
    // The limit the message names is the one the program can read (the same on every rank).
    let limits = q.device_limits().ok_or("a real queue has no device limits")?;
    let bytes = format!("the devices bind at most {} bytes for one accessor", limits.max_storage_buffer_range);
    refused(q.submit(bind()), "the same kernel again", &bytes)?;
    drop((plane, tile, wide));
    let n = usize::MAX;
    let chunks = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = std::sync::Arc::clone(&chunks);
    q.submit(task::host_for([n]).name("vast").run(move |ctx| seen.lock().unwrap().push(ctx.chunk())))
        .map_err(|e| e.to_string())?;
    q.wait();
    let mut chunks = chunks.lock().unwrap().clone();
    chunks.sort_by_key(|c| c.min()[0]);
    let (r, ranks) = (q.rank(), q.ranks());
    // This rank's share, one chunk per device (CELER_DEVICES), contiguous; cuts are rounded per node.
    let want = (n / ranks * r, if r + 1 == ranks { n } else { n / ranks * (r + 1) });
    let contiguous = chunks.windows(2).all(|w| w[0].max()[0] == w[1].min()[0]);
    match (chunks.first(), chunks.last()) {
        (Some(a), Some(b)) if contiguous && a.min()[0].abs_diff(want.0) <= 8 && b.max()[0].abs_diff(want.1) <= 8 => {
            Ok(())
        }
        _ => Err(format!("rank {r} of {ranks} ran the chunks {chunks:?} of [0, usize::MAX), expected about {want:?}")),
    }
}

/// A 1D heat stencil of 10 steps in which rank 1 (only) departs from the others as `how` says.
fn departs(how: &str) -> Result<(), String> {
    let q = Queue::new().map_err(|e| e.to_string())?;
    let odd = q.rank() == 1;
    let heat = Kernel::wgsl(&kernels::HEAT_1D, "main").map_err(|e| e.to_string())?;
    let n = if odd && how == "extent-differs" { 512 } else { 256 };
    let init: Vec<f32> = (0..n).map(|i| if odd && how == "data-differs" { 2.0 } else { i as f32 }).collect();
    let mut a = q.buffer_from(&init, [n]).named("a");
    let mut b = q.buffer::<f32, 1>([n]).named("b");
    for step in 0..10 {
        if odd && step == 4 && how == "fewer-tasks" {
            continue;
        }
        let c = if odd && how == "scalar-differs" { 0.2 } else { 0.1 };
        heat_step(&q, &heat, &a, &b, c)?;
        std::mem::swap(&mut a, &mut b);
        if step == 5 && how == "fence-differs" {
            let offset = if odd { 40 } else { 8 };
            q.fence_subrange(&a, [offset], [16]).map_err(|e| e.to_string())?.wait().map_err(|e| e.to_string())?;
        } else if step == 5 && !(odd && how == "skip-fence") {
            q.fence(&a).map_err(|e| e.to_string())?.wait().map_err(|e| e.to_string())?;
        }
        if step == 6 && !(odd && how == "skip-barrier") {
            q.barrier();
        }
    }
    q.fence(&a).map_err(|e| e.to_string())?.wait().map_err(|e| e.to_string())?;
    Ok(())
}

/// Rank 1 (only) asks for another split (`split-differs`: `.split_2d()` on a 2D host task) or folds the buffer's
/// value into a reduction (`reduce-differs`: `reduce_including` where the others `reduce`): the task hash covers
/// both, and every rank's report must show its side (the reports showed the same task on both ranks).
fn departs_split(how: &str) -> Result<(), String> {
    let q = Queue::new().map_err(|e| e.to_string())?;
    let odd = q.rank() == 1;
    let grid = q.buffer::<u32, 2>([8, 8]).named("grid");
    let fill = task::host_for([8, 8]).discard_write(&grid, access::one_to_one()).name("fill");
    let fill = if odd && how == "split-differs" { fill.split_2d() } else { fill };
    q.submit(fill.run(|ctx| ctx.data_mut::<u32>(0).fill(1))).map_err(|e| e.to_string())?;
    let sum = q.buffer_from(&[0i32], [1]).named("sum");
    let data = q.buffer_from(&[1i32; 16], [16]).named("data");
    let k = Kernel::wgsl(&kernels::REDUCE_I32, "reduce_sum").map_err(|e| e.to_string())?;
    let t = task::parallel_for(&k, [16]).read(&data, access::one_to_one()).name("total");
    let t = if odd && how == "reduce-differs" {
        t.reduce_including(&sum, ReductionOp::Sum)
    } else {
        t.reduce(&sum, ReductionOp::Sum)
    };
    q.submit(t).map_err(|e| e.to_string())?;
    q.fence(&grid).map_err(|e| e.to_string())?.wait().map_err(|e| e.to_string())?;
    q.fence(&sum).map_err(|e| e.to_string())?.wait().map_err(|e| e.to_string())?;
    Ok(())
}

/// Rank 1 (only) departs in what a custom range mapper or a `reduce_with` combine closure computes, as `how` says:
/// `mapper-rank-read`: a kernel reads `src` through a custom mapper that gives every chunk the whole buffer on rank 1
/// and the chunk itself on the others (so rank 1 awaits cells no rank sends it); `mapper-rank-write`: a kernel writes
/// `dst` through a custom mapper by which, on rank 1 only, chunk 0 writes half of its cells (so rank 1 expects fewer
/// cells than rank 0 sends); `mapper-random`: the read mapper of `mapper-rank-read` grows each chunk to the left by
/// a number of cells taken from the clock, on rank 1 only; `combine-differs`: rank 1 combines the partial results of
/// a `reduce_with` by `^` below 8 where the others use `|` (same identity, both commutative; from 8 on `|`, as the
/// kernel's atomicOr, which submit compares closures with). The ranks' command graphs
/// (or results) then differ: every rank must report the divergence naming the task, the buffer and, for a mapper,
/// the regions it gave on its side. On one rank nothing differs: each finishes with the right result.
fn departs_mapper(how: &str) -> Result<(), String> {
    let q = Queue::new().map_err(|e| e.to_string())?;
    let odd = q.rank() == 1;
    if how == "combine-differs" {
        let flags = q.buffer_from(&[1u32, 4, 16, 4], [4]).named("flags");
        let any = q.buffer::<u32, 1>([1]).named("any");
        let or = Kernel::wgsl(&kernels::REDUCE_BITS, "reduce_or").map_err(|e| e.to_string())?;
        let t = task::parallel_for(&or, [4]).read(&flags, access::one_to_one()).name("or_all");
        // Rank 1's closure is `^` below 8 and `|` from 8 on, where submit compares it with the kernel's atomicOr.
        let t = if odd {
            t.reduce_with(&any, 0, |a, b| if a.max(b) < 8 { a ^ b } else { a | b })
        } else {
            t.reduce_with(&any, 0, |a, b| a | b)
        };
        q.submit(t).map_err(|e| e.to_string())?;
        let got = q.fence(&any).map_err(|e| e.to_string())?.wait().map_err(|e| e.to_string())?;
        return match (got[0], q.ranks()) {
            (21, 1) => Ok(()),
            (v, _) => {
                Err(format!("rank {} combined {v} (21 with |), and the ranks' difference went unnoticed", q.rank()))
            }
        };
    }
    let n = 64;
    let src = q.buffer_from(&(0..n).map(|i| i as f32).collect::<Vec<_>>(), [n]).named("src");
    let dst = q.buffer_from(&[0.0f32; 64], [n]).named("dst");
    let copy = Kernel::wgsl(&own_kernels::COPY_1D, "main").map_err(|e| e.to_string())?;
    // Each rank writes its own chunk of `src` first, so that reading another rank's cells needs a transfer.
    q.submit(task::host_for([n]).discard_write(&src, access::one_to_one()).name("fill").run(|ctx| {
        let first = ctx.bounds::<1>(0).min()[0];
        for (k, x) in ctx.data_mut::<f32>(0).iter_mut().enumerate() {
            *x = (first + k) as f32;
        }
    }))
    .map_err(|e| e.to_string())?;
    let t = match how {
        "mapper-rank-read" => {
            let peek = access::custom("peek", move |chunk: &GridBox<1>, extent: &GridBox<1>| {
                Region::from(if odd { *extent } else { *chunk })
            });
            task::parallel_for(&copy, [n]).read(&src, peek).discard_write(&dst, access::one_to_one())
        }
        "mapper-random" => {
            let jitter = access::custom("jitter", move |chunk: &GridBox<1>, _: &GridBox<1>| {
                let grow = if odd {
                    let nanos =
                        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
                    1 + nanos as usize % 7
                } else {
                    0
                };
                Region::from(GridBox::d1(chunk.min()[0].saturating_sub(grow), chunk.max()[0]))
            });
            task::parallel_for(&copy, [n]).read(&src, jitter).discard_write(&dst, access::one_to_one())
        }
        _ => {
            let halves = access::custom("halves", move |chunk: &GridBox<1>, _: &GridBox<1>| {
                let (lo, hi) = (chunk.min()[0], chunk.max()[0]);
                Region::from(if odd && lo == 0 { GridBox::d1(lo, (lo + hi) / 2) } else { *chunk })
            });
            task::parallel_for(&copy, [n]).read(&src, access::one_to_one()).discard_write(&dst, halves)
        }
    };
    q.submit(t.name("copy")).map_err(|e| e.to_string())?;
    let got = q.fence(&dst).map_err(|e| e.to_string())?.wait().map_err(|e| e.to_string())?;
    if q.ranks() == 1 && got == (0..n).map(|i| i as f32).collect::<Vec<_>>() {
        return Ok(());
    }
    Err(format!("rank {} went on with {got:?}: the ranks' difference went unnoticed", q.rank()))
}

/// Rank 1 (only) picks another kernel entry point (`entry-differs`), offset (`offset-differs`) or split
/// granularity (`granularity-differs`) for one task: each is in the task hash, so every rank reports the
/// divergence, showing its side. On one rank nothing differs: each finishes.
fn departs_kernel(how: &str) -> Result<(), String> {
    let q = Queue::new().map_err(|e| e.to_string())?;
    let odd = q.rank() == 1;
    let ints = q.buffer_from(&[3i32; 64], [64]).named("ints");
    let data = q.buffer_from(&[3.0f32; 64], [64]).named("data");
    let out = q.buffer_from(&[0.0f32; 64], [64]).named("out");
    let entry = if odd && how == "entry-differs" { "reduce_min" } else { "reduce_sum" };
    let total = q.buffer::<i32, 1>([1]).named("total");
    let k = Kernel::wgsl(&own_kernels::BLOCK_I32, entry).map_err(|e| e.to_string())?;
    let op = if entry == "reduce_min" { ReductionOp::Min } else { ReductionOp::Sum };
    q.submit(task::parallel_for(&k, [64]).read(&ints, access::one_to_one()).reduce(&total, op).name("total"))
        .map_err(|e| e.to_string())?;
    let copy = Kernel::wgsl(&own_kernels::COPY_1D, "main").map_err(|e| e.to_string())?;
    let offset = if odd && how == "offset-differs" { 16 } else { 8 };
    let t = task::parallel_for(&copy, [32]).offset([offset]).read(&data, access::one_to_one());
    let t = t.discard_write(&out, access::one_to_one()).name("shifted");
    let t = if odd && how == "granularity-differs" { t.granularity([8]) } else { t };
    q.submit(t).map_err(|e| e.to_string())?;
    q.fence(&out).map_err(|e| e.to_string())?.wait().map_err(|e| e.to_string())?;
    q.fence(&total).map_err(|e| e.to_string())?.wait().map_err(|e| e.to_string())?;
    Ok(())
}

/// Rank 1 (only) creates one more resource than the others before the program's own, or one of another element
/// type, as `how` says: `object-differs` an extra host object (its object then has another id), `group-differs` an
/// extra collective group, `type-differs` its buffer as `f32` where the others make it `u32`. Every rank must report
/// the divergence naming what differs on its side (the host object, the group, the element type).
fn departs_resource(how: &str) -> Result<(), String> {
    let q = Queue::new().map_err(|e| e.to_string())?;
    let odd = q.rank() == 1;
    let _extra_object = (odd && how == "object-differs").then(|| q.host_object(0u32));
    let _extra_group = (odd && how == "group-differs").then(|| q.collective_group());
    let counter = q.host_object(5u32);
    let group = q.collective_group();
    q.submit(
        task::host_collective_in(&group)
            .side_effect(&counter)
            .name("bump")
            .run(|ctx| ctx.with_object::<u32, _>(0, |v| *v += 1)),
    )
    .map_err(|e| e.to_string())?;
    fn fill<T: celer::Element + Default>(q: &Queue) -> Result<(), String> {
        let b = q.buffer::<T, 1>([16]).named("typed");
        let fill = task::host_for([16]).discard_write(&b, access::one_to_one()).name("fill");
        q.submit(fill.run(|ctx| ctx.data_mut::<T>(0).fill(T::default()))).map_err(|e| e.to_string())?;
        q.fence(&b).map_err(|e| e.to_string())?.wait().map_err(|e| e.to_string())?;
        Ok(())
    }
    if odd && how == "type-differs" {
        fill::<f32>(&q)?;
    } else {
        fill::<u32>(&q)?;
    }
    q.fence_object(&counter).map_err(|e| e.to_string())?;
    q.barrier();
    Ok(())
}

/// The last rank's `main` gives up after a few tasks (returns an error, or panics with `panics`), dropping its queue,
/// while the others go on submitting: every rank must say that the last rank ended before the others' point, and
/// the last rank's own message must be printed.
fn rank_ends(panics: bool) -> Result<(), String> {
    let q = Queue::new().map_err(|e| e.to_string())?;
    let last = q.rank() + 1 == q.ranks();
    let heat = Kernel::wgsl(&kernels::HEAT_1D, "main").map_err(|e| e.to_string())?;
    let init: Vec<f32> = (0..256).map(|i| i as f32).collect();
    let mut a = q.buffer_from(&init, [256]).named("a");
    let mut b = q.buffer::<f32, 1>([256]).named("b");
    for step in 0..10 {
        if last && step == 4 {
            if panics {
                panic!("rank {} cannot go on: its input ran out at step {step}", q.rank());
            }
            return Err(format!("rank {} cannot go on: its input ran out at step {step}", q.rank()));
        }
        heat_step(&q, &heat, &a, &b, 0.1)?;
        std::mem::swap(&mut a, &mut b);
    }
    q.fence(&a).map_err(|e| e.to_string())?.wait().map_err(|e| e.to_string())?;
    if q.ranks() == 1 {
        return Ok(());
    }
    Err("the others finished although the last rank ended early".into())
}

/// The last rank calls `std::process::exit(0)` after 4 stencil steps (its queue alive), while the others go on and
/// fence the result.
fn exit_one() -> Result<(), String> {
    let q = Queue::new().map_err(|e| e.to_string())?;
    let heat = Kernel::wgsl(&kernels::HEAT_1D, "main").map_err(|e| e.to_string())?;
    let mut a = q.buffer_from(&[1.0f32; 256], [256]).named("a");
    let mut b = q.buffer::<f32, 1>([256]).named("b");
    for step in 0..10 {
        if q.rank() + 1 == q.ranks() && step == 4 {
            std::process::exit(0);
        }
        heat_step(&q, &heat, &a, &b, 0.1)?;
        std::mem::swap(&mut a, &mut b);
    }
    q.fence(&a).map_err(|e| e.to_string())?.wait().map_err(|e| e.to_string())?;
    Err("the others finished although the last rank exited early".into())
}

/// Submits work, then ends the process with `std::process::exit(0)` with the queue alive.
fn exit_early() -> Result<(), String> {
    let q = Queue::new().map_err(|e| e.to_string())?;
    let a = q.buffer_from(&[1u32; 64], [64]).named("a");
    let got = q.fence(&a).map_err(|e| e.to_string())?.wait().map_err(|e| e.to_string())?;
    if got != [1u32; 64] {
        return Err(format!("fence returned {got:?}"));
    }
    q.submit(task::host_for([64]).read_write(&a, access::one_to_one()).name("last").run(|ctx| {
        ctx.data_mut::<u32>(0).fill(2);
    }))
    .map_err(|e| e.to_string())?;
    std::process::exit(0)
}

/// The last rank's host task raises SIGTERM in its process while rank 0 waits for its data.
fn sigterm() -> Result<(), String> {
    extern "C" {
        fn raise(signum: i32) -> i32;
    }
    let q = Queue::new().map_err(|e| e.to_string())?;
    let data = q.buffer::<f32, 1>([64]).named("data");
    q.submit(task::host_for([64]).discard_write(&data, access::one_to_one()).name("terminated").run(|ctx| {
        let (rank, ranks) = ctx.rank();
        if rank + 1 == ranks {
            // SAFETY: raise only sends a signal to this process; SIGTERM is 15 on Linux.
            unsafe { raise(15) };
            std::thread::sleep(Duration::from_secs(20));
        }
        ctx.data_mut::<f32>(0).fill(1.0);
    }))
    .map_err(|e| e.to_string())?;
    let got = q.fence(&data).map_err(|e| e.to_string())?.wait();
    Err(format!("the program went on after SIGTERM (fence: {got:?})"))
}

/// Rank 0's application thread is busy (sleeps) for 2.5 stall timeouts before each submission (beyond both a rank's
/// own timeout and the votes' silence of a timeout); every rank's chunk reads the whole buffer, so the other ranks
/// wait for rank 0's part meanwhile.
fn busy_app() -> Result<(), String> {
    let secs = std::env::var("CELER_STALL_TIMEOUT").ok().and_then(|v| v.parse::<f64>().ok()).unwrap_or(30.0);
    let q = Queue::new().map_err(|e| e.to_string())?;
    let data = q.buffer::<u32, 1>([64]).named("data");
    let sums = q.buffer::<u32, 1>([64]).named("sums");
    for round in 1..=2u32 {
        if q.rank() == 0 {
            std::thread::sleep(Duration::from_secs_f64(2.5 * secs));
        }
        q.submit(
            task::host_for([64])
                .discard_write(&data, access::one_to_one())
                .name("produce")
                .run(move |ctx| ctx.data_mut::<u32>(0).fill(round)),
        )
        .map_err(|e| e.to_string())?;
        q.submit(
            task::host_for([64])
                .read(&data, access::all())
                .discard_write(&sums, access::one_to_one())
                .name("sum_all")
                .run(|ctx| {
                    let s: u32 = ctx.data::<u32>(0).iter().sum();
                    ctx.data_mut::<u32>(1).fill(s);
                }),
        )
        .map_err(|e| e.to_string())?;
    }
    let got = q.fence(&sums).map_err(|e| e.to_string())?.wait().map_err(|e| e.to_string())?;
    if got != [128u32; 64] {
        return Err(format!("sums are {got:?}, expected 128 everywhere"));
    }
    Ok(())
}

/// The long-wait notices this process wrote to stderr (collected by [`tee_stderr`]).
static AWAY_NOTICES: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

/// The real stderr's descriptor while [`tee_stderr`] routes stderr through its pipe (-1 otherwise).
static REAL_STDERR: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(-1);

/// Routes this process's stderr through a pipe whose reader thread passes every line on to the real stderr and
/// keeps celer's long-wait notices in [`AWAY_NOTICES`] (celer writes them to stderr itself, not to a program's
/// logger).
fn tee_stderr() -> Result<(), String> {
    use std::io::{BufRead, Write};
    use std::os::fd::FromRawFd;
    let mut fds = [0; 2];
    // SAFETY: pipe writes two new descriptors into `fds`; dup and dup2 act on descriptors this process owns, and
    // each File below takes sole ownership of a descriptor nothing else closes.
    let (reader, mut real) = unsafe {
        if libc::pipe(fds.as_mut_ptr()) != 0 {
            return Err("pipe failed".into());
        }
        let real = libc::dup(2);
        if real < 0 || libc::dup2(fds[1], 2) < 0 {
            return Err("dup of stderr failed".into());
        }
        libc::close(fds[1]);
        REAL_STDERR.store(libc::dup(real), std::sync::atomic::Ordering::SeqCst);
        (std::fs::File::from_raw_fd(fds[0]), std::fs::File::from_raw_fd(real))
    };
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(reader).lines() {
            let Ok(line) = line else { break };
            let _ = writeln!(real, "{line}");
            if line.contains("but the run goes on") {
                AWAY_NOTICES.lock().unwrap_or_else(|e| e.into_inner()).push(line);
            }
        }
    });
    Ok(())
}

/// Gives stderr back to the real one (after a moment for the pipe's reader to pass on what it holds), so that what
/// the program prints last cannot be lost in the pipe.
fn untee_stderr() {
    let real = REAL_STDERR.swap(-1, std::sync::atomic::Ordering::SeqCst);
    if real >= 0 {
        std::thread::sleep(Duration::from_millis(200));
        // SAFETY: `real` is a descriptor of this process's, duplicated by `tee_stderr` and used nowhere else.
        unsafe { libc::dup2(real, 2) };
    }
}

/// The last rank's application thread blocks for 6 stall timeouts on a channel nobody fills, between a submission
/// and its fence, while the others wait in theirs: no stall report (it might be computing), but every other rank's
/// long-wait notice names the rank whose program is away from celer. Then the last rank comes back and the run
/// finishes with the right data.
fn app_away() -> Result<(), String> {
    let secs = std::env::var("CELER_STALL_TIMEOUT").ok().and_then(|v| v.parse::<f64>().ok()).unwrap_or(30.0);
    tee_stderr()?;
    let q = Queue::new().map_err(|e| e.to_string())?;
    let (rank, ranks) = (q.rank(), q.ranks());
    let a = q.buffer::<u32, 1>([64]).named("a");
    q.submit(
        task::host_for([64])
            .discard_write(&a, access::one_to_one())
            .name("fill")
            .run(|ctx| ctx.data_mut::<u32>(0).fill(5)),
    )
    .map_err(|e| e.to_string())?;
    if rank + 1 == ranks {
        // A wait for input that never comes (a channel whose sender nobody uses), given up after 6 timeouts.
        let (_never, rx) = std::sync::mpsc::channel::<()>();
        let _ = rx.recv_timeout(Duration::from_secs_f64(6.0 * secs));
    }
    let got = q.fence(&a).map_err(|e| e.to_string())?.wait().map_err(|e| e.to_string())?;
    if got != [5u32; 64] {
        return Err(format!("rank {rank}: fenced {got:?}, expected 5 everywhere"));
    }
    drop(a);
    drop(q);
    if rank + 1 < ranks {
        let notices = AWAY_NOTICES.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let want = format!("the program of rank {} has not come back to celer", ranks - 1);
        if !notices.iter().any(|n| n.contains(&want)) {
            return Err(format!("rank {rank}: no long-wait notice saying \"{want}\"; notices: {notices:?}"));
        }
    }
    Ok(())
}

/// As [`app_away`], but the last rank never comes back (it gives up after 15 stall timeouts, long after the away
/// timeout): with `CELER_AWAY_TIMEOUT` the other ranks end the job, naming it. Reaching the end is the failure.
fn app_away_limit() -> Result<(), String> {
    let secs = std::env::var("CELER_STALL_TIMEOUT").ok().and_then(|v| v.parse::<f64>().ok()).unwrap_or(30.0);
    let q = Queue::new().map_err(|e| e.to_string())?;
    let (rank, ranks) = (q.rank(), q.ranks());
    let a = q.buffer::<u32, 1>([64]).named("a");
    q.submit(
        task::host_for([64])
            .discard_write(&a, access::one_to_one())
            .name("fill")
            .run(|ctx| ctx.data_mut::<u32>(0).fill(5)),
    )
    .map_err(|e| e.to_string())?;
    if rank + 1 == ranks {
        let (_never, rx) = std::sync::mpsc::channel::<()>();
        let _ = rx.recv_timeout(Duration::from_secs_f64(15.0 * secs));
    }
    q.fence(&a).map_err(|e| e.to_string())?.wait().map_err(|e| e.to_string())?;
    Err(format!("rank {rank}: the run was not ended by CELER_AWAY_TIMEOUT while rank {} was away", ranks - 1))
}

/// Dropped buffers release their memory; `submit` holds the program back (see the module docs).
fn bounded() -> Result<(), String> {
    const CELLS: usize = 16384;
    let q = Queue::new().map_err(|e| e.to_string())?;
    for i in 0..200u32 {
        let b = q.buffer::<u32, 1>([CELLS]).named("scratch");
        q.submit(
            task::host_for([CELLS])
                .discard_write(&b, access::one_to_one())
                .name("fill")
                .run(move |ctx| ctx.data_mut::<u32>(0).fill(i)),
        )
        .map_err(|e| e.to_string())?;
    }
    q.wait();
    let stats = q.stats().ok_or("no statistics")?;
    let per_buffer = (CELLS * 4) as u64;
    if stats.device_bytes > 8 * per_buffer {
        return Err(format!(
            "after dropping 200 buffers of {per_buffer} bytes, {} bytes of device memory are still held",
            stats.device_bytes
        ));
    }
    let counts = q.buffer_from(&[0u32; 16], [16]).named("counts");
    let before = q.stats().ok_or("no statistics")?.commands;
    const TASKS: u64 = 2000;
    for _ in 0..TASKS {
        q.submit(task::host_for([16]).read_write(&counts, access::one_to_one()).name("tick").run(|ctx| {
            std::thread::sleep(Duration::from_micros(200));
            ctx.data_mut::<u32>(0).iter_mut().for_each(|c| *c += 1);
        }))
        .map_err(|e| e.to_string())?;
    }
    let ran = q.stats().ok_or("no statistics")?.commands - before;
    // Each task runs one command on each rank (and horizons more): with 2 horizons ahead, a few dozen are queued.
    if ran + 100 < TASKS {
        return Err(format!("right after submitting {TASKS} tasks, only {ran} commands had run: submit did not block"));
    }
    let got = q.fence(&counts).map_err(|e| e.to_string())?.wait().map_err(|e| e.to_string())?;
    if got != [TASKS as u32; 16] {
        return Err(format!("counts are {got:?}"));
    }
    // Fences the program never waits for are held back alike (each queued one holds its task's and commands'
    // records: 2 KB a fence, without bound, while a slow task kept the runtime behind).
    q.submit(task::host_for([16]).read_write(&counts, access::one_to_one()).name("slow").run(|_| {
        std::thread::sleep(Duration::from_millis(500));
    }))
    .map_err(|e| e.to_string())?;
    let before = q.stats().ok_or("no statistics")?.commands;
    const FENCES: u64 = 2000;
    for _ in 0..FENCES {
        drop(q.fence_subrange(&counts, [0], [1]).map_err(|e| e.to_string())?);
    }
    let ran = q.stats().ok_or("no statistics")?.commands - before;
    if ran + 400 < FENCES {
        return Err(format!(
            "right after {FENCES} fences not waited for, only {ran} commands had run: no back-pressure"
        ));
    }
    // Collective groups created, used and dropped in a loop (each drop frees the group's state on every rank).
    for _ in 0..50 {
        let g = q.collective_group();
        q.submit(task::host_collective_in(&g).name("grouped").run(|_| {})).map_err(|e| e.to_string())?;
    }
    // Buffers (with creation data) and host objects created and dropped without a task: no horizon comes, yet the
    // runtime keeps none of them.
    q.wait();
    // Nor does it keep a note of each of the thousands of commands run above (the host tasks each left one).
    let records = q.stats().ok_or("no statistics")?.command_records;
    if records > 16 {
        return Err(format!("after a wait, the runtime still holds {records} per-command records"));
    }
    const LOOSE: u64 = 2000;
    for i in 0..LOOSE as u32 {
        drop(q.buffer_from(&[i; 1024], [1024]).named("loose"));
        drop(q.host_object(vec![i; 16]));
    }
    let held = q.stats().ok_or("no statistics")?.buffers;
    // `counts` is live.
    if held > 2 {
        return Err(format!("after creating and dropping {LOOSE} buffers without a task, the runtime holds {held}"));
    }
    // Reductions into one buffer, each read back: the runtime keeps the buffer's latest reduction only.
    let data = q.buffer_from(&[1i32; 64], [64]).named("ones");
    let sum = q.buffer::<i32, 1>([1]).named("sum");
    let add = Kernel::wgsl(&kernels::REDUCE_I32, "reduce_sum").map_err(|e| e.to_string())?;
    const REDUCTIONS: u64 = 300;
    for i in 0..REDUCTIONS {
        q.submit(task::parallel_for(&add, [64]).read(&data, access::one_to_one()).reduce(&sum, ReductionOp::Sum))
            .map_err(|e| e.to_string())?;
        if i % 50 == 0 {
            let got = q.fence(&sum).map_err(|e| e.to_string())?.wait().map_err(|e| e.to_string())?;
            if got != [64] {
                return Err(format!("reduction {i} gave {got:?}"));
            }
        }
    }
    q.wait();
    let kept = q.stats().ok_or("no statistics")?.reductions;
    if kept > 1 {
        return Err(format!("after {REDUCTIONS} reductions into one buffer, the runtime keeps {kept} of them"));
    }
    Ok(())
}

/// Buffers of 1 MiB with creation data, each used by a task and dropped, while a slow task keeps the runtime from
/// reaching a horizon and `submit` is not held back (`CELER_SUBMIT_AHEAD=off`): creating them must block once the
/// dropped ones' data would exceed `CREATION_DATA_BACKLOG`, so the runtime holds at most that much of it.
fn creation_data() -> Result<(), String> {
    use celer::unstable::scheduler::runtime::CREATION_DATA_BACKLOG;
    const CELLS: usize = 1 << 18;
    let q = Queue::builder().submit_ahead(None).build().map_err(|e| e.to_string())?;
    let released = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = std::sync::Arc::clone(&released);
    // Holds every horizon back until the loop below is done, or 5 s (the loop blocks on it with the bound).
    q.submit(task::host_once().name("slow").run(move |_| {
        let start = Instant::now();
        while !flag.load(std::sync::atomic::Ordering::Acquire) && start.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(1));
        }
    }))
    .map_err(|e| e.to_string())?;
    let data = vec![7u32; CELLS];
    const BUFFERS: u64 = 600;
    for _ in 0..BUFFERS {
        let b = q.buffer_from(&data, [CELLS]).named("with data");
        q.submit(task::host_for([1]).read(&b, access::one_to_one()).name("touch").run(|_| {}))
            .map_err(|e| e.to_string())?;
    }
    let held = q.stats().ok_or("no statistics")?.buffers;
    released.store(true, std::sync::atomic::Ordering::Release);
    q.wait();
    let per_buffer = (CELLS * 4) as u64;
    if held * per_buffer > CREATION_DATA_BACKLOG + 8 * per_buffer {
        return Err(format!(
            "after creating, using and dropping {BUFFERS} buffers of {per_buffer} bytes of creation data, the runtime \
             holds {held} of them (more than CREATION_DATA_BACKLOG, {CREATION_DATA_BACKLOG} bytes)"
        ));
    }
    let after = q.stats().ok_or("no statistics")?.buffers;
    if after > 0 {
        return Err(format!("after a wait, the runtime still holds {after} dropped buffers"));
    }
    Ok(())
}

/// Buffers dropped before the tasks that use them run are freed once those tasks have run, not at a horizon or
/// epoch (see the module docs).
fn dropped_early() -> Result<(), String> {
    use std::sync::atomic::{AtomicBool, Ordering};
    const CELLS: usize = 16384;
    const BUFFERS: usize = 40;
    let q = Queue::new().map_err(|e| e.to_string())?;
    let gate = q.buffer::<u32, 1>([1]).named("gate");
    let notes = q.buffer_from(&[0u32; BUFFERS], [BUFFERS]).named("notes");
    let open = std::sync::Arc::new(AtomicBool::new(false));
    let flag = std::sync::Arc::clone(&open);
    // Every task below waits for it: each buffer is dropped while the tasks that use it are queued.
    q.submit(task::host_for([1]).discard_write(&gate, access::one_to_one()).name("gate").run(move |ctx| {
        let start = Instant::now();
        while !flag.load(Ordering::Acquire) && start.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(1));
        }
        ctx.data_mut::<u32>(0)[0] = 1;
    }))
    .map_err(|e| e.to_string())?;
    for i in 0..BUFFERS {
        let b = q.buffer::<u32, 1>([CELLS]).named("early");
        q.submit(
            task::host_for([CELLS])
                .read(&gate, access::all())
                .discard_write(&b, access::one_to_one())
                .name("fill")
                .run(move |ctx| {
                    let g = ctx.data::<u32>(0)[0];
                    ctx.data_mut::<u32>(1).fill(g + i as u32);
                }),
        )
        .map_err(|e| e.to_string())?;
        q.submit(
            task::host_for([1])
                .offset([i])
                .read(&b, access::fixed([0], [1]))
                .discard_write(&notes, access::one_to_one())
                .name("note")
                .run(|ctx| ctx.data_mut::<u32>(1)[0] = ctx.data::<u32>(0)[0]),
        )
        .map_err(|e| e.to_string())?;
    }
    open.store(true, Ordering::Release);
    let got = q.fence(&notes).map_err(|e| e.to_string())?.wait().map_err(|e| e.to_string())?;
    if got != (1..=BUFFERS as u32).collect::<Vec<_>>() {
        return Err(format!("the notes are {got:?}"));
    }
    // The fence shows this rank's notes done; other ranks' fills may still run here: poll, with no task between.
    let start = Instant::now();
    loop {
        let held = q.stats().ok_or("no statistics")?.buffers;
        // `gate` and `notes` are live.
        if held <= 2 {
            return Ok(());
        }
        if start.elapsed() > Duration::from_secs(2) {
            return Err(format!(
                "2 s after the tasks that used {BUFFERS} dropped buffers ran, the runtime still holds {held} buffers \
                 (2 live)"
            ));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A second queue in the same process.
fn second_queue() -> Result<(), String> {
    let q = Queue::new().map_err(|e| e.to_string())?;
    match Queue::new() {
        Ok(_) => Err("a second Queue::new succeeded".into()),
        Err(e) => {
            drop(q);
            Err(e.to_string())
        }
    }
}

/// `Queue::new` must return `Err` (not abort the job) whose message, as `main` would print it (`Debug`), contains
/// `expected`; prints it.
fn start_fails(expected: &str) -> Result<(), String> {
    match Queue::new() {
        Ok(q) => Err(format!("Queue::new started on rank {} despite the broken set-up", q.rank())),
        Err(e) => {
            let shown = format!("{e:?}");
            eprintln!("e2e_errors: Queue::new returned Err: {shown}");
            if shown.starts_with("celer could not start") && shown.contains(expected) {
                Ok(())
            } else {
                Err(format!("Queue::new's error does not say {expected:?}: {shown}"))
            }
        }
    }
}

/// The f64 block reduction submitted where the last rank's device counts as lacking `shaderFloat64`: refused at
/// submit on every rank, naming the task and the kernel; a kernel without f64 still runs.
fn no_float64() -> Result<(), String> {
    let q = Queue::new().map_err(|e| e.to_string())?;
    let doubles = q.buffer_from(&[0.5f64; 300], [300]).named("doubles");
    let total = q.buffer::<f64, 1>([1]).named("total");
    let k = Kernel::wgsl(&own_kernels::BLOCK_F64, "reduce_sum").map_err(|e| e.to_string())?;
    let t = task::parallel_for(&k, [300]).read(&doubles, access::one_to_one()).reduce(&total, ReductionOp::Sum);
    match q.submit(t.name("f64_sum")) {
        Ok(_) => return Err("a kernel that uses f64 was accepted where a device lacks shaderFloat64".into()),
        Err(e) => {
            let msg = e.to_string();
            eprintln!("e2e_errors: rank {}: submit returned Err: {msg}", q.rank());
            let named = msg.contains("task T1 \"f64_sum\"")
                && msg.contains("kernel block_f64::reduce_sum uses f64")
                && msg.contains("lacks the Vulkan feature shaderFloat64");
            if !named {
                return Err(format!("the refusal does not name the task, the kernel and the feature: {msg}"));
            }
        }
    }
    let floats = q.buffer_from(&[0.5f32; 300], [300]).named("floats");
    let sum = q.buffer::<f32, 1>([1]).named("sum");
    let k = Kernel::wgsl(&own_kernels::BLOCK_F32, "reduce_sum").map_err(|e| e.to_string())?;
    q.submit(task::parallel_for(&k, [300]).read(&floats, access::one_to_one()).reduce(&sum, ReductionOp::Sum))
        .map_err(|e| e.to_string())?;
    let got = q.fence(&sum).map_err(|e| e.to_string())?.wait().map_err(|e| e.to_string())?;
    if got != [150.0] {
        return Err(format!("an f32 block sum beside the refused f64 one gave {got:?}, not [150.0]"));
    }
    Ok(())
}

/// A host task that asks for an accessor it did not declare.
fn bad_index() -> Result<(), String> {
    let q = Queue::new().map_err(|e| e.to_string())?;
    let a = q.buffer_from(&[1.0f32; 16], [16]).named("a");
    q.submit(task::host_for([16]).read(&a, access::one_to_one()).name("greedy").run(|ctx| {
        let _ = ctx.data::<f32>(5); // BAD-INDEX-LINE
    }))
    .map_err(|e| e.to_string())?;
    q.wait();
    Err("the host task's bad accessor index went unnoticed".into())
}

/// A host task that calls `with_object` on the host object an enclosing `with_object` call already holds (a
/// deadlock without the check), and a task declaring one host object twice (refused at submit).
fn nested_object() -> Result<(), String> {
    let q = Queue::new().map_err(|e| e.to_string())?;
    let log = q.host_object(Vec::<u32>::new());
    match q.submit(task::host_collective().side_effect(&log).side_effect(&log).name("twice").run(|_| {})) {
        Ok(t) => return Err(format!("a task declaring one host object twice was accepted as {t}")),
        Err(e) if e.to_string().contains("\"twice\"") && e.to_string().contains("host object H0") => {}
        Err(e) => return Err(format!("the refusal does not name the task and the host object: {e}")),
    }
    q.submit(task::host_collective().side_effect(&log).name("nested").run(|ctx| {
        ctx.with_object(0, |outer: &mut Vec<u32>| {
            outer.push(1);
            ctx.with_object(0, |inner: &mut Vec<u32>| inner.push(2)); // NESTED-OBJECT-LINE
        });
    }))
    .map_err(|e| e.to_string())?;
    q.wait();
    Err("the nested with_object call went unnoticed".into())
}

/// A custom range mapper that reaches the queue again while `submit` applies it, through a `thread_local` holding a
/// leaked `&'static Queue` (the types forbid capturing the queue: it is not `Sync`, and a mapper is `Send`): the
/// inner call panics at its line naming itself and the re-entry, instead of `RefCell`'s "already borrowed".
fn queue_reentrant() -> Result<(), String> {
    thread_local! {
        static QUEUE: std::cell::OnceCell<&'static Queue> = const { std::cell::OnceCell::new() };
    }
    let q: &'static Queue = Box::leak(Box::new(Queue::new().map_err(|e| e.to_string())?));
    QUEUE.with(|cell| cell.set(q).map_err(|_| "the queue was set twice".to_string()))?;
    let c = q.buffer_from(&[1.0f32; 64], [64]).named("c");
    let reenter = access::custom("reenter", |chunk: &GridBox<1>, _: &GridBox<1>| {
        if std::thread::current().name() != Some("celer-runtime") {
            QUEUE.with(|cell| cell.get().map(|q| q.wait())); // REENTRANT-LINE
        }
        Region::from(*chunk)
    });
    q.submit(task::host_for([64]).read(&c, reenter).name("reentrant").run(|_| {})).map_err(|e| e.to_string())?;
    q.wait();
    Err("the queue's re-entry from a custom range mapper went unnoticed".into())
}

/// A host task waiting for fences: one submitted before it, of a buffer it does not write, returns the data (the
/// fence does not wait for the task); one submitted after it of the buffer it writes (handed over through a channel)
/// would wait for the task forever, so the wait panics at once naming the task, the fence, the buffer and the cells
/// (it stalled until CELER_STALL_TIMEOUT, 30 s by default).
fn fence_in_host() -> Result<(), String> {
    use std::sync::{mpsc, Mutex};
    let q = Queue::new().map_err(|e| e.to_string())?;
    let a = q.buffer_from(&[1.0f32; 64], [64]).named("a");
    let b = q.buffer::<f32, 1>([64]).named("b");
    let before = Mutex::new(Some(q.fence(&a).map_err(|e| e.to_string())?));
    q.submit(task::host_for([64]).discard_write(&b, access::one_to_one()).name("reads_a").run(move |ctx| {
        let sum: f32 = before.lock().unwrap().take().map_or(0.0, |f| f.wait().expect("the earlier fence").iter().sum());
        ctx.data_mut::<f32>(0).fill(sum);
    }))
    .map_err(|e| e.to_string())?;
    let got = q.fence(&b).map_err(|e| e.to_string())?.wait().map_err(|e| e.to_string())?;
    if got != vec![64.0; 64] {
        return Err(format!("the host task waiting for an earlier fence computed {:?}", &got[..4]));
    }
    let (tx, rx) = mpsc::channel::<celer::Fence<f32, 1>>();
    let rx = Mutex::new(rx);
    q.submit(task::host_for([64]).discard_write(&a, access::one_to_one()).name("cyclic").run(move |ctx| {
        let later = rx.lock().unwrap().recv().expect("the later fence");
        let _ = later.wait(); // FENCE-IN-HOST-LINE
        ctx.data_mut::<f32>(0).fill(2.0);
    }))
    .map_err(|e| e.to_string())?;
    tx.send(q.fence(&a).map_err(|e| e.to_string())?).map_err(|e| e.to_string())?;
    q.wait();
    Err("the host task waiting for a fence that waits for it went unnoticed".into())
}

/// A host task that asks for a 1D accessor's box as a 2D one.
fn bad_dims() -> Result<(), String> {
    let q = Queue::new().map_err(|e| e.to_string())?;
    let a = q.buffer_from(&[1.0f32; 16], [16]).named("a");
    q.submit(task::host_for([16]).read(&a, access::one_to_one()).name("flatlander").run(|ctx| {
        let _ = ctx.bounds::<2>(0); // BAD-DIMS-LINE
    }))
    .map_err(|e| e.to_string())?;
    q.wait();
    Err("the host task's wrong box dimensionality went unnoticed".into())
}

/// A host task writes an `f32` buffer through `data_mut::<i32>`, which would store integers' bits as floats: the
/// panic points at the line, naming both types. A view as the program's own type of the same size stays allowed.
fn bad_element() -> Result<(), String> {
    let q = Queue::new().map_err(|e| e.to_string())?;
    let a = q.buffer_from(&[1.0f32; 16], [16]).named("a");
    q.submit(task::host_for([16]).read(&a, access::one_to_one()).name("bits").run(|ctx| {
        let _: &[[f32; 1]] = ctx.data(0);
    }))
    .map_err(|e| e.to_string())?;
    let b = q.buffer::<f32, 1>([16]).named("b");
    q.submit(task::host_for([16]).discard_write(&b, access::one_to_one()).name("ints_as_floats").run(|ctx| {
        ctx.data_mut::<i32>(0).fill(3); // BAD-ELEMENT-LINE
    }))
    .map_err(|e| e.to_string())?;
    let got = q.fence(&b).map_err(|e| e.to_string())?.wait().map_err(|e| e.to_string())?;
    Err(format!("integers went into an f32 buffer unnoticed: {:?}", &got[..2]))
}

/// Sets `name` to `value` unless the environment already sets it; call before any other thread starts.
/// The job's last process exits before creating its queue; the others must not hang in start-up.
fn startup_alone() -> Result<(), String> {
    let var = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<usize>().ok());
    let (rank, size) = (var("OMPI_COMM_WORLD_RANK").unwrap_or(0), var("OMPI_COMM_WORLD_SIZE").unwrap_or(1));
    if size > 1 && rank == size - 1 {
        std::process::exit(0);
    }
    let q = Queue::new().map_err(|e| e.to_string())?;
    Err(format!("rank {} of {} started although a process of the job never created its queue", q.rank(), q.ranks()))
}

fn default_env(name: &str, value: &str) {
    if std::env::var_os(name).is_none() {
        std::env::set_var(name, value);
    }
}

/// Submits a kernel with 200 scalars where it declares one; `submit` refuses it.
fn push_constant_overflow() -> Result<(), String> {
    let q = Queue::new().map_err(|e| e.to_string())?;
    let a = q.buffer_from(&[1.0f32; 64], [64]).named("a");
    let b = q.buffer::<f32, 1>([64]).named("b");
    let heat = Kernel::wgsl(&kernels::HEAT_1D, "main").map_err(|e| e.to_string())?;
    q.submit(
        task::parallel_for(&heat, [64])
            .read(&a, access::neighborhood([1]))
            .discard_write(&b, access::one_to_one())
            .scalars(&[0; 200])
            .name("too_many_scalars"),
    )
    .map_err(|e| e.to_string())?;
    q.wait();
    Err("the runtime accepted 200 scalar words of push constants".into())
}

/// A kernel with five bindings, whose parameters take 144 bytes: more than the push constants of lavapipe (128,
/// Vulkan's minimum), so the build moved them to a storage buffer, and it runs on every device (where `submit`
/// refused it before on a device of 128 bytes), giving the sums. The program goes on with a kernel on push constants.
fn push_limit() -> Result<(), String> {
    let q = Queue::new().map_err(|e| e.to_string())?;
    if own_kernels::SUM4.params_binding() != Some(6) {
        return Err(format!("sum4's parameters are at {:?}, not at binding 6", own_kernels::SUM4.params_binding()));
    }
    let inputs: Vec<_> = (0..4).map(|i| q.buffer_from(&[i as f32; 64], [64]).named(format!("in{i}"))).collect();
    let out = q.buffer::<f32, 1>([64]).named("out");
    let k = Kernel::wgsl(&own_kernels::SUM4, "main").map_err(|e| e.to_string())?;
    let mut t = task::parallel_for(&k, [64]);
    for b in &inputs {
        t = t.read(b, access::one_to_one());
    }
    q.submit(t.discard_write(&out, access::one_to_one()).name("five_buffers")).map_err(|e| e.to_string())?;
    let got = q.fence(&out).map_err(|e| e.to_string())?.wait().map_err(|e| e.to_string())?;
    if got.iter().any(|&v| v != 6.0) {
        return Err(format!("the five-binding kernel computed {got:?}"));
    }
    eprintln!("e2e_errors: rank {}: the five-binding kernel (144 bytes of parameters) ran", q.rank());
    let add = Kernel::wgsl(&own_kernels::ADD_I32, "main").map_err(|e| e.to_string())?;
    let data = q.buffer_from(&[1i32; 64], [64]).named("data");
    q.submit(task::parallel_for(&add, [64]).read_write(&data, access::one_to_one()).scalar_i32(2))
        .map_err(|e| e.to_string())?;
    let got = q.fence(&data).map_err(|e| e.to_string())?.wait().map_err(|e| e.to_string())?;
    if got.iter().any(|&v| v != 3) {
        return Err(format!("the kernel after the five-binding one computed {got:?}"));
    }
    Ok(())
}

/// Starts a queue with the environment as it is (the parent sets `CELER_LOG=loud`).
fn bad_env() -> Result<(), String> {
    let q = Queue::new().map_err(|e| e.to_string())?;
    drop(q);
    Err("Queue::new accepted the environment".into())
}

/// Runs with a misspelt variable set (`CELER_HORIZON_STEPS`, by the caller): the queue starts and runs, and says
/// which variable it ignored and the nearest one it reads.
fn typo_env() -> Result<(), String> {
    let q = Queue::new().map_err(|e| e.to_string())?;
    let data = q.buffer::<u32, 1>([8]).named("data");
    q.submit(task::host_for([8]).discard_write(&data, access::one_to_one()).run(|ctx| ctx.data_mut::<u32>(0).fill(7)))
        .map_err(|e| e.to_string())?;
    let got = q.fence(&data).map_err(|e| e.to_string())?.wait().map_err(|e| e.to_string())?;
    if got != [7; 8] {
        return Err(format!("read back {got:?}"));
    }
    Ok(())
}

/// The last rank's chunk of a host task sleeps far longer than the stall timeout; rank 0 then reads the whole
/// buffer, so it awaits the sleeping rank's part. Both ranks must report the stall within [`STALL_BOUND`] of its
/// start (the host task's start), which [`watch_diagnosis`] checks.
fn stall() -> Result<(), String> {
    let q = Queue::new().map_err(|e| e.to_string())?;
    let data = q.buffer::<f32, 1>([64]).named("data");
    q.submit(task::host_for([64]).discard_write(&data, access::one_to_one()).name("sleepy_producer").run(|ctx| {
        let (rank, ranks) = ctx.rank();
        // `./x`'s signal check sends its signals once every rank has said this (the runtime and its handlers run).
        eprintln!("stall: rank {rank} is in its host task");
        // Rank 0 waits for the last rank's part from now on, and the last rank for its own host task.
        if rank == 0 || rank + 1 == ranks {
            watch_diagnosis(rank);
        }
        if rank + 1 == ranks {
            std::thread::sleep(Duration::from_secs(20));
        }
        ctx.data_mut::<f32>(0).fill(1.0);
    }))
    .map_err(|e| e.to_string())?;
    q.submit(task::host_once().read(&data, access::all()).name("consumer").run(|_| {})).map_err(|e| e.to_string())?;
    q.wait();
    Err("the stalled program finished".into())
}

/// How much later than `CELER_STALL_TIMEOUT` after a stall's start a rank must have reported it (docs/GUIDE.md: the
/// timeout and at most one vote interval, 1 s), with a second of margin for a loaded machine.
const STALL_BOUND: Duration = Duration::from_secs(2);

/// Whether this process's celer reported a stall (set by [`StallSeen`]).
static STALL_REPORTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// The `stall` case's logger: notes celer's stall report (celer prints its errors and warnings itself to stderr
/// when the program installed a logger of its own).
struct StallSeen;

impl log::Log for StallSeen {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::Level::Error
    }

    fn log(&self, record: &log::Record<'_>) {
        if record.level() == log::Level::Error && record.args().to_string().starts_with("stalled:") {
            STALL_REPORTED.store(true, std::sync::atomic::Ordering::SeqCst);
        }
    }

    fn flush(&self) {}
}

/// From now on (a stall's start on this rank), watches that celer reports the stall within `CELER_STALL_TIMEOUT` +
/// [`STALL_BOUND`]; otherwise says so (`no stall diagnosis within`, which `./x` must not find) and ends the process.
/// Time this thread did not run for more than a quarter of the timeout (a frozen machine) restarts the count, as it
/// restarts celer's (`runtime::idle`).
fn watch_diagnosis(rank: usize) {
    // `off` (./x's signal check): nothing to watch.
    let Ok(secs) = std::env::var("CELER_STALL_TIMEOUT").map_or(Ok(30.0), |v| v.parse::<f64>()) else { return };
    let timeout = Duration::from_secs_f64(secs);
    std::thread::spawn(move || {
        let (mut start, mut last) = (Instant::now(), Instant::now());
        while !STALL_REPORTED.load(std::sync::atomic::Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(20));
            let now = Instant::now();
            if now - last > timeout / 4 {
                start = now;
            }
            last = now;
            if now - start > timeout + STALL_BOUND {
                eprintln!(
                    "e2e_errors: rank {rank}: no stall diagnosis within {:.1} s of the stall's start \
                     (CELER_STALL_TIMEOUT={secs} s; the bound is the timeout + {} s)",
                    (now - start).as_secs_f64(),
                    STALL_BOUND.as_secs()
                );
                // SAFETY: _exit ends the process at once; nothing of it is used afterwards.
                unsafe { libc::_exit(3) };
            }
        }
    });
}

/// Rank 1 submits one task over another range and one task more than the others.
fn diverge() -> Result<(), String> {
    let q = Queue::new().map_err(|e| e.to_string())?;
    let a = q.buffer_from(&[1.0f32; 64], [64]).named("a");
    for i in 0..12 {
        let range = if q.rank() == 1 && i == 5 { 32 } else { 64 };
        q.submit(task::host_for([range]).read_write(&a, access::one_to_one()).name("step").run(|_| {}))
            .map_err(|e| e.to_string())?;
        if q.rank() == 1 && i == 7 {
            q.submit(task::host_for([64]).read_write(&a, access::one_to_one()).name("extra").run(|_| {}))
                .map_err(|e| e.to_string())?;
        }
    }
    q.wait();
    Ok(())
}

/// Rank 1 submits a host task over another range, then every rank fences a buffer no task wrote (rank 1 two seconds
/// later): rank 0's fence is ready at once, but its data must wait for the divergence check of the fence's window,
/// which ends every rank; no rank may print `fenced`.
fn diverge_fence() -> Result<(), String> {
    let q = Queue::new().map_err(|e| e.to_string())?;
    let a = q.buffer_from(&[1.0f32; 64], [64]).named("a");
    let b = q.buffer_from(&[0.0f32; 64], [64]).named("b");
    let range = if q.rank() == 1 { 32 } else { 64 };
    q.submit(task::host_for([range]).read_write(&b, access::one_to_one()).name("step").run(|_| {}))
        .map_err(|e| e.to_string())?;
    if q.rank() == 1 {
        std::thread::sleep(Duration::from_secs(2));
    }
    let got = q.fence(&a).map_err(|e| e.to_string())?.wait().map_err(|e| e.to_string())?;
    println!("e2e_errors: rank {} fenced {}", q.rank(), got.iter().sum::<f32>());
    q.wait();
    println!("e2e_errors: rank {} waited", q.rank());
    Ok(())
}

/// Rank 1 submits a host task over another range, then every rank a collective host task, rank 1 two seconds later:
/// rank 0 could run its host task at once, but holds it until the divergence check has compared its window, so no
/// rank runs either (neither prints `ran`). On one rank both run and print.
fn diverge_host() -> Result<(), String> {
    let q = Queue::new().map_err(|e| e.to_string())?;
    let b = q.buffer_from(&[0.0f32; 64], [64]).named("b");
    let range = if q.rank() == 1 { 32 } else { 64 };
    let rank = q.rank();
    q.submit(
        task::host_for([range])
            .read_write(&b, access::one_to_one())
            .name("step")
            .run(move |_| eprintln!("e2e_errors: rank {rank} ran step")),
    )
    .map_err(|e| e.to_string())?;
    if q.rank() == 1 {
        std::thread::sleep(Duration::from_secs(2));
    }
    q.submit(task::host_collective().name("report").run(move |_| eprintln!("e2e_errors: rank {rank} ran report")))
        .map_err(|e| e.to_string())?;
    q.wait();
    Ok(())
}

/// A host task over 16 items writing a whole 16-cell buffer through `all`, then one writing through a neighbourhood:
/// split over several nodes, their chunks would write the same cells, and `submit` must refuse each on every rank
/// alike (an `Err` naming the task, the buffer and the cells), where the run used to end when the rank split the task;
/// the program then goes on. On one rank (one node) both run, and the fence shows what they wrote.
fn overlap_submit() -> Result<(), String> {
    let q = Queue::new().map_err(|e| e.to_string())?;
    let shared = q.buffer_from(&[0u32; 16], [16]).named("shared");
    let everywhere = q.submit(
        task::host_for([16])
            .discard_write(&shared, access::all())
            .name("everyone_writes_all")
            .run(|ctx| ctx.data_mut::<u32>(0).fill(7)),
    );
    let neighbours = q.submit(
        task::host_for([16])
            .discard_write(&shared, access::neighborhood([1]))
            .name("writes_neighbours")
            .run(|ctx| ctx.data_mut::<u32>(0).fill(7)),
    );
    let got = q.fence(&shared).map_err(|e| e.to_string())?.wait().map_err(|e| e.to_string())?;
    // Nodes are ranks × devices (CELER_DEVICES).
    let devices = std::env::var("CELER_DEVICES").ok().and_then(|d| d.parse::<usize>().ok()).unwrap_or(1);
    if q.ranks() * devices == 1 {
        return match (everywhere, neighbours) {
            (Ok(_), Ok(_)) if got == [7u32; 16] => Ok(()),
            other => Err(format!("one rank: both tasks should run, got {other:?} and {got:?}")),
        };
    }
    for (result, name, cells) in [
        (everywhere, "everyone_writes_all", "by the chunk on N0"),
        (neighbours, "writes_neighbours", "by the chunk on N0"),
    ] {
        match result {
            Err(e)
                if e.to_string().contains(name)
                    && e.to_string().contains("buffer B0 \"shared\"")
                    && e.to_string().contains(cells) => {}
            other => return Err(format!("rank {}: {name} should be refused at submit, got {other:?}", q.rank())),
        }
    }
    if got != [0u32; 16] {
        return Err(format!("rank {}: the refused tasks wrote {got:?}", q.rank()));
    }
    Ok(())
}

/// A 1D stencil over the ranks in which the last rank (when there are several) dies abruptly after a few steps,
/// as a crashed or killed process would: the other ranks, waiting for its halos, must not hang (mpirun ends the
/// job and names the lost rank).
fn rank_dies() -> Result<(), String> {
    let q = Queue::new().map_err(|e| e.to_string())?;
    let (rank, ranks) = (q.rank(), q.ranks());
    let heat = Kernel::wgsl(&kernels::HEAT_1D, "main").map_err(|e| e.to_string())?;
    let mut a = q.buffer_from(&[1.0f32; 256], [256]).named("a");
    let mut b = q.buffer::<f32, 1>([256]).named("b");
    for step in 0..200 {
        if ranks > 1 && rank == ranks - 1 && step == 20 {
            // No wait() first: an epoch on this rank alone would be a divergent submission (and reported so).
            eprintln!("e2e_errors: rank {rank} dies now (abort)");
            std::process::abort();
        }
        q.submit(
            task::parallel_for(&heat, [256])
                .read(&a, access::neighborhood([1]))
                .discard_write(&b, access::one_to_one())
                .scalar_f32(0.1),
        )
        .map_err(|e| e.to_string())?;
        std::mem::swap(&mut a, &mut b);
    }
    q.wait();
    Ok(())
}

/// Kernels over the first 8, 16, ..., 40 cells of a buffer, each waited for, so no look-ahead sees the next one: the
/// allocation grows 4 times, and the warning must name the buffer as `buffer B0 "widening"`.
fn grows() -> Result<(), String> {
    let q = Queue::new().map_err(|e| e.to_string())?;
    let a = q.buffer_from(&[0i32; 64], [64]).named("widening");
    let add = Kernel::wgsl(&own_kernels::ADD_I32, "main").map_err(|e| e.to_string())?;
    for k in 1..=5 {
        q.submit(task::parallel_for(&add, [8 * k]).read_write(&a, access::one_to_one()).scalar_i32(1).name("widen"))
            .map_err(|e| e.to_string())?;
        q.wait();
    }
    let got = q.fence(&a).map_err(|e| e.to_string())?.wait().map_err(|e| e.to_string())?;
    let want: Vec<i32> = (0..64).map(|i| 5 - (i / 8).min(5)).collect();
    if got != want {
        return Err(format!("expected {want:?}, got {got:?}"));
    }
    Ok(())
}

/// 40 host tasks with a `wait()` after every `every`-th: the frequent-wait warning must fire for 1 and not for 8.
fn waits(every: usize) -> Result<(), String> {
    let q = Queue::new().map_err(|e| e.to_string())?;
    let a = q.buffer_from(&[0u32; 16], [16]).named("counts");
    for i in 0..40 * every {
        q.submit(task::host_for([16]).read_write(&a, access::one_to_one()).name("count").run(|ctx| {
            for v in ctx.data_mut::<u32>(0) {
                *v += 1;
            }
        }))
        .map_err(|e| e.to_string())?;
        if (i + 1) % every == 0 {
            q.wait();
        }
    }
    let got = q.fence(&a).map_err(|e| e.to_string())?.wait().map_err(|e| e.to_string())?;
    if got != vec![(40 * every) as u32; 16] {
        return Err(format!("expected {} everywhere, got {got:?}", 40 * every));
    }
    Ok(())
}

/// Runs `--case NAME` in a child process (one rank) with `env`, and returns its exit status, stderr and how long
/// it took.
fn run_case(name: &str, env: &[(&str, &str)]) -> (std::process::ExitStatus, String, Duration) {
    let exe = std::env::current_exe().expect("own path");
    let start = Instant::now();
    let out = Command::new(exe)
        .args(["--case", name])
        .envs(env.iter().copied())
        .output()
        .unwrap_or_else(|e| panic!("running case {name}: {e}"));
    (out.status, String::from_utf8_lossy(&out.stderr).into_owned(), start.elapsed())
}

/// Runs `case` as one rank, sends it SIGTERM after 2 s and again half a second later; returns whether it ended
/// within 10 s of the second signal (it is killed otherwise), and its stderr.
fn signal_twice(case: &str) -> (bool, String) {
    use std::io::Read;
    let exe = std::env::current_exe().expect("own path");
    let mut child = Command::new(exe)
        .args(["--case", case])
        // Only the signals end it (no watch of the stuck runtime thread).
        .env("CELER_STALL_TIMEOUT", "off")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("running case {case}: {e}"));
    let pid = child.id() as libc::pid_t;
    std::thread::sleep(Duration::from_secs(2));
    for _ in 0..2 {
        // SAFETY: kill only sends a signal to our own child process.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        std::thread::sleep(Duration::from_millis(500));
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    let ended = loop {
        match child.try_wait() {
            Ok(Some(_)) => break true,
            _ if Instant::now() > deadline => {
                let _ = child.kill();
                let _ = child.wait();
                break false;
            }
            _ => std::thread::sleep(Duration::from_millis(50)),
        }
    };
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut stderr);
    }
    (ended, stderr)
}

/// Checks each case as one rank; returns the failures.
fn check_cases() -> Vec<String> {
    let mut failures = Vec::new();
    let mut check = |case: &str, ok: bool, what: &str, stderr: &str| {
        if ok {
            println!("e2e_errors: {case}: {what}");
        } else {
            failures.push(format!("{case}: expected {what}; stderr:\n{stderr}"));
        }
    };

    let (status, stderr, _) = run_case("push-constants", &[]);
    let named = stderr.contains("task") && stderr.contains("too_many_scalars") && stderr.contains("heat_1d");
    check(
        "push-constants",
        !status.success() && named && stderr.contains("gives 200 scalar value(s)") && stderr.contains("alpha: f32"),
        "a failure naming the task and kernel",
        &stderr,
    );

    let (status, stderr, _) = run_case("bad-env", &[("CELER_LOG", "loud")]);
    check(
        "bad-env",
        !status.success()
            && stderr.contains("CELER_LOG=\"loud\"")
            && stderr.contains("error, warn, info, debug, trace"),
        "Queue::new to refuse CELER_LOG=loud, naming the variable and the accepted values",
        &stderr,
    );

    let (status, stderr, _) = run_case("typo-env", &[("CELER_HORIZON_STEPS", "2")]);
    check(
        "typo-env",
        status.success()
            && stderr.contains("CELER_HORIZON_STEPS is set, but celer reads no variable of that name")
            && stderr.contains("did you mean CELER_HORIZON_STEP?"),
        "a warning naming the misspelt variable and the nearest one celer reads (the run itself goes on)",
        &stderr,
    );

    let (status, stderr, took) = run_case("stall", &[("CELER_STALL_TIMEOUT", "2")]);
    check(
        "stall",
        !status.success()
            && took < Duration::from_secs(15)
            && stderr.contains("stalled: no progress for")
            && stderr.contains("sleepy_producer")
            && stderr.contains("host task running for")
            && !stderr.contains("no stall diagnosis within"),
        "an abort within 15 s (the host task sleeps 20 s) naming the running host task, the report within 2 s + 2 s",
        &stderr,
    );

    let (status, stderr, _) = run_case("grows", &[]);
    check(
        "grows",
        status.success() && stderr.contains("buffer B0 \"widening\"'s allocation on this rank grew 4 times"),
        "a warning about the growing allocation, naming the buffer by its name",
        &stderr,
    );
    // With two devices per rank, the shutdown summaries name each device of the rank (not "rank 1" for node N1).
    let (status, stderr, _) = run_case("waits-8", &[("CELER_DEVICES", "2"), ("CELER_LOG", "info")]);
    check(
        "waits-8 with CELER_DEVICES=2",
        status.success()
            && stderr.contains("summary of device 0 of this rank (node N0)")
            && stderr.contains("summary of device 1 of this rank (node N1)")
            && !stderr.contains("summary of rank"),
        "one summary per device, each naming the device and its node",
        &stderr,
    );
    let (status, stderr, _) = run_case("waits-1", &[]);
    check(
        "waits-1",
        status.success() && stderr.contains("frequent waits: 32 wait()/barrier() calls for 32 tasks"),
        "a warning about waiting after every task",
        &stderr,
    );
    let (status, stderr, _) = run_case("waits-8", &[]);
    check(
        "waits-8",
        status.success() && !stderr.contains("frequent waits"),
        "no warning for a wait every 8 tasks",
        &stderr,
    );

    let (status, stderr, _) = run_case("rank-dies", &[]);
    check("rank-dies (one rank)", status.success(), "one rank, which nobody kills, to finish", &stderr);

    let (status, stderr, took) = run_case("oob-read", &[]);
    check(
        "oob-read",
        !status.success()
            && took < Duration::from_secs(10)
            && stderr.contains("out-of-bounds access in task T2 \"shift_left\"")
            && stderr.contains("read of buffer B0 \"src\" through one_to_one")
            && stderr.contains("accessed [48] - [49] (1 access(es) outside)")
            && stderr.contains("declared only [0] - [48]"),
        "an abort naming the task, the buffer, the cells read outside ([48] - [49]) and what was declared",
        &stderr,
    );
    let (status, stderr, took) = run_case("oob-write", &[]);
    check(
        "oob-write",
        !status.success()
            && took < Duration::from_secs(10)
            && stderr.contains("out-of-bounds access in task T1 \"write_next\"")
            && stderr.contains("discard_write of buffer B1 \"dst\"")
            && stderr.contains("accessed [64] - [65]"),
        "an abort naming the task, the buffer and the cell written outside ([64] - [65])",
        &stderr,
    );
    let (status, stderr, _) = run_case("oob-clean", &[]);
    check(
        "oob-clean",
        status.success() && !stderr.contains("out-of-bounds") && !stderr.contains("CELER_CHECK_BOUNDS"),
        "the correctly declared program to pass silently in checked mode",
        &stderr,
    );
    let (status, stderr, _) = run_case("oob-read", &[("CELER_CHECK_BOUNDS", "off")]);
    check(
        "oob-read unchecked",
        !status.success() && stderr.contains("the out-of-bounds read was not reported"),
        "the faulty program to go unnoticed without CELER_CHECK_BOUNDS (so the check is what catches it)",
        &stderr,
    );

    let (status, stderr, took) = run_case("empty-write", &[]);
    check(
        "empty-write",
        !status.success()
            && took < Duration::from_secs(10)
            && stderr.contains("out-of-bounds access in task T1 \"sq_none\"")
            && stderr.contains("discard_write of buffer B0 \"a\" through nothing) accessed [0] - [64]")
            && stderr.contains("declared the empty region {} for this chunk")
            && stderr.contains("where an accessor's region is empty"),
        "an abort naming the task, the buffer, the accessor, the cells written and the empty declared region",
        &stderr,
    );
    let (status, stderr, _) = run_case("empty-guarded", &[]);
    check(
        "empty-guarded",
        status.success() && !stderr.contains("out-of-bounds"),
        "a kernel guarding its accesses with celer_contains to pass silently with the serial result",
        &stderr,
    );

    let (status, stderr, took) = run_case("spin", &[("CELER_STALL_TIMEOUT", "2")]);
    check(
        "spin",
        !status.success()
            && took < Duration::from_secs(10)
            && stderr.contains("stalled: no progress for")
            && stderr.contains("execution of task T1 \"endless\": waits for GPU work (kernel faulty::spin)"),
        "an abort within 10 s naming the endless kernel",
        &stderr,
    );

    for (case, limit) in
        [("workgroup-memory", "maxComputeSharedMemorySize"), ("workgroup-size", "maxComputeWorkGroupSize")]
    {
        let (status, stderr, took) = run_case(case, &[]);
        check(
            case,
            !status.success()
                && took < Duration::from_secs(10)
                && stderr.contains("(T1): loading kernel limits::")
                && stderr.contains("of task T1 \"beyond\": Kernel limits::")
                && stderr.contains(limit)
                && stderr.contains("so it cannot run on this device"),
            "an abort within 10 s naming the task, the kernel and the device limit it exceeds",
            &stderr,
        );
    }

    let (status, stderr, took) = run_case("device-lost", &[]);
    check(
        "device-lost",
        !status.success()
            && took < Duration::from_secs(10)
            && stderr.contains("The Vulkan device was lost (VK_ERROR_DEVICE_LOST, injected for testing")
            && stderr.contains("The lost work:")
            && stderr.contains("execution of task")
            && stderr.contains("\"step\" (kernel heat_1d::main)"),
        "an abort naming the device and the kernels that were in flight",
        &stderr,
    );

    let (status, stderr, took) = run_case("host-panic", &[]);
    check(
        "host-panic",
        !status.success()
            && took < Duration::from_secs(10)
            && stderr.contains("host task T1 \"explode\" panicked: boom on the last rank"),
        "an abort within 10 s naming the host task and the panic's message",
        &stderr,
    );
    let (status, stderr, _) = run_case("combine-panic", &[]);
    check(
        "combine-panic (one rank)",
        status.success(),
        "one rank to finish: it combines nothing (`./x test` runs the case on 2 ranks)",
        &stderr,
    );
    let (status, stderr, _) = run_case("combine-order", &[]);
    check(
        "combine-order (one rank)",
        status.success(),
        "one rank of one device to finish: it combines nothing (`./x test` runs the case on 2 ranks)",
        &stderr,
    );
    let (status, stderr, took) = run_case("combine-order", &[("CELER_DEVICES", "2")]);
    check(
        "combine-order (one rank, two devices)",
        !status.success()
            && took < Duration::from_secs(10)
            && stderr.contains("in task T1 \"keep_first\", the combine closure of reduction")
            && stderr.contains("into buffer B1 \"first_big\" (reduce_with) is not commutative")
            && stderr.contains("combine(48 (bytes 30 00 00 00), 192 (bytes c0 00 00 00)) = 48 (bytes 30 00 00 00)")
            && stderr.contains("but combine(192 (bytes c0 00 00 00), 48 (bytes 30 00 00 00)) = 192"),
        "a failure within 10 s naming the task, the buffer, both operands and both results",
        &stderr,
    );
    let (status, stderr, took) = run_case("mapper-panic", &[]);
    check(
        "mapper-panic",
        !status.success()
            && took < Duration::from_secs(10)
            && stderr.contains(
                "a panic in the custom range mapper picky of buffer B0 \"a\" of task T1 \"choosy\" being submitted: \
                 picky refuses chunk",
            ),
        "a failure within 10 s naming the task, the mapper, its buffer and the mapper's message",
        &stderr,
    );
    let (status, stderr, _) = run_case("mapper-panic-reach", &[]);
    check(
        "mapper-panic-reach",
        !status.success()
            && stderr.contains(
                "a panic in the reach closure of the custom range mapper left_halo of buffer B0 \"src\" of task T1 \
                 \"underflow\" being submitted: attempt to subtract with overflow",
            ),
        "a failure naming the task, the mapper, its buffer, the reach closure and the panic's message",
        &stderr,
    );
    let (status, stderr, took) = run_case("mapper-inverted", &[]);
    check(
        "mapper-inverted",
        !status.success()
            && took < Duration::from_secs(10)
            && stderr.contains(
                "a panic in the custom range mapper backwards of buffer B0 \"a\" of task T1 \"inverted\" being \
                 submitted: GridBox::d1(7, 3): min 7 exceeds max 3 along dimension 0",
            ),
        "a failure at submit within 10 s naming the task, the mapper, the buffer and the box's corners",
        &stderr,
    );
    let (status, stderr, took) = run_case("mapper-panic-runtime", &[]);
    check(
        "mapper-panic-runtime",
        !status.success()
            && took < Duration::from_secs(10)
            && stderr.contains("a panic in the custom range mapper picky of buffer B0 \"a\" in task T1 \"choosy\"")
            && stderr.contains(": picky refuses chunk")
            && stderr.contains("ending every rank"),
        "the runtime thread to catch the panic and end the job within 10 s, naming the task",
        &stderr,
    );
    let (status, stderr, _) = run_case("mapper-oob-chunk", &[]);
    check("mapper-oob-chunk", status.success(), "one rank (one chunk, inside the buffer) to finish", &stderr);
    let (status, stderr, _) = run_case("bad-index", &[]);
    let line =
        include_str!("e2e_errors.rs").lines().position(|l| l.ends_with("// BAD-INDEX-LINE")).map_or(0, |i| i + 1);
    check(
        "bad-index",
        !status.success()
            && stderr.contains(&format!("tests/e2e_errors.rs:{line}:"))
            && stderr.contains("this host task has no accessor 5: it declared 1")
            && stderr.contains("\"greedy\""),
        "the panic to point at the host task's line and the job to end naming the task",
        &stderr,
    );
    let (status, stderr, took) = run_case("nested-object", &[]);
    let line =
        include_str!("e2e_errors.rs").lines().position(|l| l.ends_with("// NESTED-OBJECT-LINE")).map_or(0, |i| i + 1);
    check(
        "nested-object",
        !status.success()
            && took < Duration::from_secs(10)
            && stderr.contains(&format!("tests/e2e_errors.rs:{line}:"))
            && stderr.contains("with_object(0) while an enclosing with_object call of this thread already holds")
            && stderr.contains("\"nested\""),
        "the nested with_object to panic at its line within 10 s and the job to end naming the task",
        &stderr,
    );
    let (status, stderr, took) = run_case("queue-reentrant", &[]);
    let line =
        include_str!("e2e_errors.rs").lines().position(|l| l.ends_with("// REENTRANT-LINE")).map_or(0, |i| i + 1);
    check(
        "queue-reentrant",
        !status.success()
            && took < Duration::from_secs(10)
            && stderr.contains(&format!("tests/e2e_errors.rs:{line}:"))
            && stderr.contains(
                "a panic in the custom range mapper reenter of buffer B0 \"c\" of task T1 \"reentrant\" being \
                 submitted: Queue::wait was called while this thread is inside another call of the same Queue",
            )
            && !stderr.contains("already borrowed"),
        "the queue's re-entry to panic at its line within 10 s, naming the call, the task, the mapper and the buffer",
        &stderr,
    );
    let (status, stderr, took) = run_case("fence-in-host", &[]);
    let line =
        include_str!("e2e_errors.rs").lines().position(|l| l.ends_with("// FENCE-IN-HOST-LINE")).map_or(0, |i| i + 1);
    check(
        "fence-in-host",
        !status.success()
            && took < Duration::from_secs(10)
            && stderr.contains(&format!("tests/e2e_errors.rs:{line}:"))
            && stderr.contains(
                "the closure of host task T4 \"cyclic\" panicked: Fence::wait inside the closure of host task T4 \
                 \"cyclic\" for the fence of task T5, submitted after it: the fence reads buffer B0 \"a\" in [0] - [64]",
            )
            && !stderr.contains("the host task waiting for an earlier fence"),
        "an earlier fence waited for in a host task to give its data, a later one that waits for the task to panic \
         at its line within 10 s naming the task, the fence, the buffer and the cells",
        &stderr,
    );
    let (status, stderr, _) = run_case("bad-dims", &[]);
    let line = include_str!("e2e_errors.rs").lines().position(|l| l.ends_with("// BAD-DIMS-LINE")).map_or(0, |i| i + 1);
    check(
        "bad-dims",
        !status.success()
            && stderr.contains(&format!("tests/e2e_errors.rs:{line}:"))
            && stderr.contains("accessor 0 of this host task is on a 1D buffer, not a 2D one")
            && stderr.contains("\"flatlander\""),
        "the panic to point at the host task's line and name the buffer's dimensionality",
        &stderr,
    );

    let (status, stderr, _) = run_case("bad-element", &[]);
    let line =
        include_str!("e2e_errors.rs").lines().position(|l| l.ends_with("// BAD-ELEMENT-LINE")).map_or(0, |i| i + 1);
    check(
        "bad-element",
        !status.success()
            && stderr.contains(&format!("tests/e2e_errors.rs:{line}:"))
            && stderr.contains("accessor 0 of this host task is on a buffer of f32, not i32")
            && stderr.contains("\"ints_as_floats\""),
        "the panic to point at the host task's line and name both element types",
        &stderr,
    );

    let (status, stderr, _) = run_case("zero-sized", &[]);
    check("zero-sized", status.success(), "zero-sized buffers to work (empty slices, empty fences)", &stderr);
    let (status, stderr, _) = run_case("empty-range", &[]);
    check("empty-range", status.success(), "tasks over empty index spaces to be no-ops", &stderr);
    let (status, stderr, _) = run_case("huge-buffer", &[]);
    let line =
        include_str!("e2e_errors.rs").lines().position(|l| l.ends_with("// HUGE-BUFFER-LINE")).map_or(0, |i| i + 1);
    check(
        "huge-buffer",
        !status.success()
            && stderr.contains(&format!("tests/e2e_errors.rs:{line}:"))
            && stderr.contains("a buffer of extent [1099511627776, 1099511627776] of 4-byte elements is too large"),
        "q.buffer to refuse the extent, pointing at the caller",
        &stderr,
    );

    let (status, stderr, _) = run_case("named-kernel", &[]);
    check("named-kernel", status.success(), "submit to refuse a Kernel::named kernel and the run to go on", &stderr);
    let (status, stderr, _) = run_case("huge-range", &[]);
    check("huge-range", status.success(), "huge index spaces refused at submit, or split without overflow", &stderr);

    let (status, stderr, _) = run_case("settings-differ", &[]);
    check("settings-differ (one rank)", status.success(), "one rank to run: nothing can differ", &stderr);

    for how in [
        "scalar-differs",
        "extent-differs",
        "data-differs",
        "fewer-tasks",
        "skip-fence",
        "skip-barrier",
        "fence-differs",
        "object-differs",
        "group-differs",
        "type-differs",
        "split-differs",
        "reduce-differs",
        "mapper-rank-read",
        "mapper-rank-write",
        "mapper-random",
        "combine-differs",
        "entry-differs",
        "offset-differs",
        "granularity-differs",
        "skip-fence-unchecked",
        "skip-barrier-unchecked",
    ] {
        let (status, stderr, _) = run_case(how, &[]);
        check(how, status.success(), "one rank to finish: nothing can differ", &stderr);
    }

    for case in ["rank-returns", "rank-panics"] {
        let (status, stderr, took) = run_case(case, &[]);
        check(
            case,
            !status.success()
                && took < Duration::from_secs(10)
                && stderr.contains("rank 0 cannot go on: its input ran out at step 4"),
            "the program's own error on one rank (`./x test` runs the case on more)",
            &stderr,
        );
    }
    let (status, stderr, took) = run_case("rank-returns-unchecked", &[]);
    check(
        "rank-returns-unchecked",
        !status.success() && took < Duration::from_secs(10) && stderr.contains("rank 0 cannot go on"),
        "the program's own error on one rank (`./x test` runs the case on more)",
        &stderr,
    );
    let (status, stderr, _) = run_case("exit-one-unchecked", &[]);
    check("exit-one-unchecked", status.success(), "one rank's std::process::exit(0) to exit 0", &stderr);
    let (status, stderr, _) = run_case("exit-early", &[]);
    check("exit-early", status.success(), "std::process::exit(0) with a live queue to exit 0", &stderr);
    let (status, stderr, took) = run_case("exit-in-host", &[]);
    check(
        "exit-in-host",
        !status.success()
            && took < Duration::from_secs(10)
            && stderr.contains("the closure of host task T1 \"quitter\" called std::process::exit"),
        "std::process::exit in a host task to end the run at once, naming the task",
        &stderr,
    );
    let (status, stderr, _) = run_case("exit-other-thread", &[]);
    check(
        "exit-other-thread",
        status.success(),
        "std::process::exit on one thread while another submits to exit 0 (the late tasks dropped)",
        &stderr,
    );
    let (status, stderr, _) = run_case("mapper-rank", &[]);
    check("mapper-rank (one rank)", status.success(), "one rank to finish: nothing can disagree", &stderr);
    let (status, stderr, _) = run_case("huge-host-view", &[]);
    check(
        "huge-host-view",
        !status.success()
            && stderr
                .contains("accessor 0 of host task T1 \"fill\" needs [0] - [70368744177664] of buffer B0 \"enormous\"")
            && stderr.contains("cannot be allocated"),
        "a host view too large for host memory to stop the run naming the task and the buffer (no abort)",
        &stderr,
    );
    let (status, stderr, _) = run_case("huge-device", &[]);
    check(
        "huge-device",
        !status.success()
            && stderr.contains("of buffer B0 \"enormous\"")
            && (stderr.contains("on the GPU") || stderr.contains("maxStorageBufferRange")),
        "a buffer too large for the device to stop the run naming the buffer by its name",
        &stderr,
    );
    let (ended, stderr) = signal_twice("mapper-sleeps");
    check(
        "mapper-sleeps",
        ended && stderr.contains("a second signal, and the runtime thread did not act on the first"),
        "a second SIGTERM to end a rank whose runtime thread is stuck in a range mapper",
        &stderr,
    );
    let (status, stderr, took) = run_case("sigterm", &[]);
    check(
        "sigterm",
        !status.success()
            && took < Duration::from_secs(10)
            && stderr.contains("rank 0: SIGTERM received; ending every rank"),
        "SIGTERM to end the run within 10 s, naming the signal",
        &stderr,
    );

    let (status, stderr, _) = run_case("bounded", &[]);
    check("bounded", status.success(), "dropped buffers freed and submit held back", &stderr);
    let (status, stderr, _) = run_case("creation-data", &[]);
    check("creation-data", status.success(), "dropped buffers' creation data held back", &stderr);
    let (status, stderr, _) = run_case("dropped-early", &[]);
    check("dropped-early", status.success(), "dropped buffers freed once the tasks that used them ran", &stderr);

    // Below this test's executable (a regular file), no directory can be created, not even by root.
    let below_file = std::env::current_exe().expect("own path").join("out");
    let (dumps, trace) = (below_file.join("graphs"), below_file.join("trace.json"));
    let (status, stderr, _) = run_case(
        "unwritable-output",
        &[("CELER_DUMP_GRAPHS", dumps.to_str().expect("UTF-8 path")), ("CELER_TRACE", trace.to_str().expect("UTF-8"))],
    );
    check(
        "unwritable-output",
        status.success()
            && stderr.contains("CELER_DUMP_GRAPHS: cannot create the directory")
            && stderr.contains("the graphs will not be written")
            && stderr.contains("CELER_TRACE: cannot write")
            && stderr.contains("the timeline will not be written")
            && stderr.matches("CELER_DUMP_GRAPHS").count() >= 2
            && stderr.matches("CELER_TRACE").count() >= 2,
        "a program without a logger to be told at start-up and at shutdown that the graphs and the timeline it asked \
         for cannot be written",
        &stderr,
    );

    let (status, stderr, _) = run_case("temporaries", &[]);
    check("temporaries", status.success(), "the memory of dropped buffers that kernels wrote to be freed", &stderr);

    let (status, stderr, _) = run_case("fences-unwaited", &[]);
    check("fences-unwaited", status.success(), "unwaited fences to hold bounded memory", &stderr);

    let (status, stderr, _) = run_case("host-reads", &[]);
    check("host-reads", status.success(), "host tasks that only read to hold bounded memory", &stderr);

    let (status, stderr, _) = run_case("temporaries-unwaited", &[]);
    check(
        "temporaries-unwaited",
        status.success(),
        "temporaries created without a wait to hold bounded memory",
        &stderr,
    );

    let (status, stderr, _) = run_case("second-queue", &[]);
    check(
        "second-queue",
        !status.success() && stderr.contains("a second Queue in this process") && !stderr.contains("Communicator"),
        "the second Queue::new to fail, saying one queue per process (not naming internal types)",
        &stderr,
    );

    for case in ["bad-device", "no-driver"] {
        let (status, stderr, took) = run_case(case, &[]);
        check(
            case,
            status.success()
                && took < Duration::from_secs(10)
                && stderr.contains("Queue::new returned Err: celer could not start")
                && !stderr.contains("MPI_ABORT"),
            "Queue::new to return Err (the case prints it), not to abort the job",
            &stderr,
        );
    }

    let (status, stderr, _) = run_case("no-float64", &[]);
    check(
        "no-float64",
        status.success() && stderr.contains("submit returned Err"),
        "submit to refuse the f64 kernel and the f32 one to run",
        &stderr,
    );

    let (status, stderr, _) = run_case("diverge", &[]);
    check(
        "diverge (one rank)",
        status.success() && !stderr.contains("diverge"),
        "one rank to finish silently: nothing can diverge",
        &stderr,
    );
    let (status, stderr, _) = run_case("overlap-submit", &[]);
    check("overlap-submit (one rank)", status.success(), "one node: both overlapping writers run", &stderr);
    let (status, stderr, _) = run_case("diverge-fence", &[]);
    check("diverge-fence (one rank)", status.success(), "one rank to finish: nothing can diverge", &stderr);
    let (status, stderr, _) = run_case("push-limit", &[]);
    check(
        "push-limit",
        status.success() && stderr.contains("the five-binding kernel (144 bytes of parameters) ran"),
        "the five-binding kernel to run on lavapipe (parameters in storage), and the kernel after it too",
        &stderr,
    );
    let (status, stderr, _) = run_case("diverge-host", &[]);
    check(
        "diverge-host (one rank)",
        status.success() && stderr.contains("rank 0 ran step") && stderr.contains("rank 0 ran report"),
        "one rank to run both host tasks: nothing can diverge",
        &stderr,
    );
    failures
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    // celer's rank-prefixed logger, at the level of CELER_LOG (celer installs none unless asked; one case checks
    // what a program without a logger is told).
    if !matches!(args.get(2).map(String::as_str), Some("unwritable-output" | "stall")) {
        celer::logging::init();
    }
    if args.get(1).map(String::as_str) == Some("--case") {
        let result = match args.get(2).map(String::as_str) {
            Some("push-constants") => push_constant_overflow(),
            Some("bad-env") => bad_env(),
            Some("typo-env") => typo_env(),
            Some("stall") => {
                // Before any other thread starts, so nothing reads the environment meanwhile. Not 2 s: the start-up
                // limit is four times it, and a loaded machine took longer than 8 s to start two ranks.
                default_env("CELER_STALL_TIMEOUT", "3");
                // In place of celer's logger, which prints the same (errors and warnings, by celer itself).
                log::set_logger(&StallSeen).expect("no logger installed yet");
                log::set_max_level(log::LevelFilter::Error);
                stall()
            }
            Some("diverge") => diverge(),
            Some("diverge-fence") => diverge_fence(),
            Some("diverge-host") => diverge_host(),
            Some("push-limit") => push_limit(),
            Some("overlap-submit") => overlap_submit(),
            Some(case @ ("oob-read" | "oob-write" | "oob-clean")) => {
                default_env("CELER_CHECK_BOUNDS", "on");
                match case {
                    "oob-read" => shift(false),
                    "oob-clean" => shift(true),
                    _ => write_next(),
                }
            }
            Some("spin") => {
                default_env("CELER_STALL_TIMEOUT", "2");
                spin()
            }
            Some("bad-device") => {
                default_env("CELER_DEVICE", "99");
                start_fails("CELER_DEVICE=\"99\"")
            }
            Some("bad-device-last") => {
                // Only the last rank's device is bad (mpirun's variables say which rank this is, before MPI starts).
                let var = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<usize>().ok());
                if var("OMPI_COMM_WORLD_RANK").unwrap_or(0) + 1 == var("OMPI_COMM_WORLD_SIZE").unwrap_or(1) {
                    std::env::set_var("CELER_DEVICE", "99");
                    start_fails("CELER_DEVICE=\"99\"")
                } else {
                    start_fails("could not start its GPU (its own error says why), so no rank starts")
                }
            }
            Some("no-driver") => {
                // Forced: ./x's environment points VK_DRIVER_FILES at lavapipe.
                std::env::set_var("VK_DRIVER_FILES", "/nonexistent.json");
                std::env::remove_var("VK_ICD_FILENAMES");
                start_fails("no Vulkan device with a compute queue was found")
            }
            Some("workgroup-memory") => workgroup_limits("big_shared"),
            Some("workgroup-size") => workgroup_limits("too_wide"),
            Some("device-lost") => {
                default_env("CELER_INJECT_FAULT", "device-lost@5");
                stencil()
            }
            Some("grows") => grows(),
            Some("waits-1") => waits(1),
            Some("host-panic") => host_panic(),
            Some("combine-panic") => combine_panic(),
            Some("combine-order") => combine_order(),
            Some("mapper-panic") => mapper_panic(true),
            Some("mapper-panic-runtime") => mapper_panic(false),
            Some("mapper-panic-reach") => mapper_panic_reach(),
            Some("mapper-inverted") => mapper_inverted(),
            Some("mapper-oob-chunk") => mapper_oob_chunk(),
            Some("empty-write") => empty_write(),
            Some("empty-guarded") => empty_guarded(),
            Some("exit-in-host") => exit_in_host(),
            Some("exit-in-mapper") => exit_in_mapper(),
            Some("exit-other-thread") => exit_other_thread(),
            Some("mapper-sleeps") => mapper_sleeps(),
            Some("mapper-stuck") => {
                default_env("CELER_STALL_TIMEOUT", "2");
                mapper_sleeps()
            }
            Some("mapper-rank") => mapper_rank(),
            Some("startup-alone") => {
                default_env("CELER_STALL_TIMEOUT", "1");
                startup_alone()
            }
            Some("huge-host-view") => huge_host_view(),
            Some("huge-device") => huge_device(),
            Some("bad-index") => bad_index(),
            Some("bad-dims") => bad_dims(),
            Some("bad-element") => bad_element(),
            Some("nested-object") => nested_object(),
            Some("queue-reentrant") => queue_reentrant(),
            Some("fence-in-host") => fence_in_host(),
            Some("second-queue") => second_queue(),
            Some("temporaries") => temporaries(),
            Some("fences-unwaited") => fences_unwaited(),
            Some("host-reads") => host_reads(),
            Some("temporaries-unwaited") => temporaries_unwaited(),
            Some("unwritable-output") => {
                let below_file = std::env::current_exe().expect("own path").join("out");
                default_env("CELER_DUMP_GRAPHS", &below_file.join("graphs").to_string_lossy());
                default_env("CELER_TRACE", &below_file.join("trace.json").to_string_lossy());
                unwritable_output()
            }
            Some("bounded") => {
                default_env("CELER_SUBMIT_AHEAD", "2");
                bounded()
            }
            Some("creation-data") => creation_data(),
            Some("dropped-early") => dropped_early(),
            Some("busy-app") => {
                // Not 1 s: the start-up limit is four times it (at least 4 s), which a loaded machine exceeded.
                default_env("CELER_STALL_TIMEOUT", "2");
                busy_app()
            }
            Some("app-away") => {
                default_env("CELER_STALL_TIMEOUT", "2");
                let result = app_away();
                untee_stderr();
                result
            }
            Some("app-away-limit") => {
                // Not the 10 s of a real setting: ./x's FAIL_LIMIT (10 s) counts the start-up and the abort's grace.
                default_env("CELER_STALL_TIMEOUT", "2");
                default_env("CELER_AWAY_TIMEOUT", "3");
                app_away_limit()
            }
            Some("exit-early") => exit_early(),
            Some("rank-returns") => rank_ends(false),
            Some("rank-panics") => rank_ends(true),
            Some(case @ ("rank-returns-unchecked" | "exit-one-unchecked")) => {
                default_env("CELER_CHECK_DIVERGENCE", "off");
                // Not 2 s like `stall`: the start-up limit is four times it, and a loaded machine (a build beside
                // the run) once took longer than 8 s to start two ranks.
                default_env("CELER_STALL_TIMEOUT", "4");
                if case == "rank-returns-unchecked" {
                    rank_ends(false)
                } else {
                    exit_one()
                }
            }
            Some(how @ ("skip-fence-unchecked" | "skip-barrier-unchecked")) => {
                default_env("CELER_CHECK_DIVERGENCE", "off");
                default_env("CELER_STALL_TIMEOUT", "2");
                departs(how.trim_end_matches("-unchecked"))
            }
            Some("sigterm") => sigterm(),
            Some(
                how @ ("scalar-differs" | "extent-differs" | "data-differs" | "fewer-tasks" | "skip-fence"
                | "fence-differs" | "skip-barrier"),
            ) => departs(how),
            Some(how @ ("object-differs" | "group-differs" | "type-differs")) => departs_resource(how),
            Some(how @ ("split-differs" | "reduce-differs")) => departs_split(how),
            Some(how @ ("mapper-rank-read" | "mapper-rank-write" | "mapper-random" | "combine-differs")) => {
                departs_mapper(how)
            }
            Some(how @ ("entry-differs" | "offset-differs" | "granularity-differs")) => departs_kernel(how),
            Some("zero-sized") => zero_sized(),
            Some("empty-range") => empty_range(),
            Some("huge-buffer") => huge_buffer(),
            Some("named-kernel") => named_kernel(),
            Some("huge-range") => huge_range(),
            Some("settings-differ") => settings_differ(),
            Some("rank-dies") => rank_dies(),
            Some("waits-8") => waits(8),
            Some("builds-differ") => {
                // The last rank starts as another build of celer would (mpirun's variables say which it is).
                let size = std::env::var("OMPI_COMM_WORLD_SIZE").ok().and_then(|v| v.parse::<usize>().ok());
                default_env("CELER_INJECT_FAULT", &format!("other-build@{}", size.unwrap_or(1) - 1));
                start_fails("the ranks run different builds of celer")
            }
            Some("no-float64") => {
                let size = std::env::var("OMPI_COMM_WORLD_SIZE").ok().and_then(|v| v.parse::<usize>().ok());
                default_env("CELER_INJECT_FAULT", &format!("no-float64@{}", size.unwrap_or(1) - 1));
                no_float64()
            }
            other => Err(format!("unknown case {other:?}")),
        };
        return match result {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("e2e_errors: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let failures = check_cases();
    if failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        for f in &failures {
            eprintln!("e2e_errors: FAILED {f}");
        }
        ExitCode::FAILURE
    }
}
