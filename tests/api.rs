//! The typed API records what it should and refuses bad input with messages naming task, buffer and region.

use celer::TaskId;
use celer::{access, kernels, task, Kernel, Queue, ReductionOp, TaskErrorKind};

#[test]
fn errors_name_the_task_the_buffer_and_the_region() {
    let q = Queue::dry_run();
    let v = q.buffer_from(&[0u32; 16], [16]).named("values");
    let k = Kernel::named("shift");
    let err =
        q.submit(task::parallel_for(&k, [16]).read(&v, access::fixed([8], [16])).name("shift_right")).unwrap_err();
    assert!(matches!(*err.inner, TaskErrorKind::OutOfBounds { .. }));
    let msg = err.to_string();
    assert!(msg.contains("task T1 \"shift_right\""), "{msg}");
    assert!(msg.contains("buffer B0 \"values\""), "{msg}");
    assert!(msg.contains("{[16] - [24]}"), "{msg}");
}

#[test]
fn custom_mappers_see_chunks_and_extents_typed_by_dimension() {
    use celer::{GridBox, Region};
    use std::sync::{Arc, Mutex};
    let q = Queue::builder().dry_run(2).ignore_env().build().unwrap();
    let rows = q.buffer::<u32, 1>([8]).named("rows");
    type Seen = Vec<([usize; 2], [usize; 2], [usize; 1])>;
    let seen: Arc<Mutex<Seen>> = Arc::default();
    let log = seen.clone();
    // A 2D index space onto a 1D buffer: item [i, j] writes cell i.
    let row_of = access::custom("row_of", move |chunk: &GridBox<2>, extent: &GridBox<1>| {
        log.lock().unwrap().push((chunk.min(), chunk.max(), extent.range()));
        Region::from(GridBox::d1(chunk.min()[0], chunk.max()[0]))
    })
    .reach(|cells: &GridBox<1>, range: &GridBox<2>| {
        GridBox::new([cells.min()[0], 0], [cells.max()[0], range.max()[1]]).intersection(range)
    });
    q.submit(task::parallel_for(&Kernel::named("k"), [8, 4]).discard_write(&rows, row_of)).unwrap();
    let seen = seen.lock().unwrap().clone();
    // The whole index space (the task graph), then each rank's chunk.
    for want in [([0, 0], [8, 4], [8]), ([0, 0], [4, 4], [8]), ([4, 0], [8, 4], [8])] {
        assert!(seen.contains(&want), "{want:?} not among {seen:?}");
    }
}

#[test]
fn custom_mappers_are_checked_at_run_time() {
    let q = Queue::dry_run();
    let v = q.buffer_from(&[0f32; 8], [8]);
    let spill =
        access::custom("spill", |chunk, _| celer::Region::from(celer::GridBox::d1(chunk.min()[0], chunk.max()[0] + 1)));
    let err = q.submit(task::parallel_for(&Kernel::named("k"), [8]).read(&v, spill)).unwrap_err();
    assert!(err.to_string().contains("range mapper spill maps to {[0] - [9]}"), "{err}");
}

#[test]
fn reductions_need_a_one_element_buffer() {
    let q = Queue::dry_run();
    let data = q.buffer_from(&[1.0f32; 32], [32]);
    let sum = q.buffer::<f32, 1>([1]).named("sum");
    let wide = q.buffer::<f32, 1>([2]).named("wide");
    let k = Kernel::named("sum");
    q.submit(task::parallel_for(&k, [32]).read(&data, access::one_to_one()).reduce(&sum, ReductionOp::Sum)).unwrap();
    let err = q
        .submit(task::parallel_for(&k, [32]).read(&data, access::one_to_one()).reduce(&wide, ReductionOp::Sum))
        .unwrap_err();
    assert!(err.to_string().contains("buffer B2 \"wide\" has extent [0] - [2]"), "{err}");
}

/// A reduction into a buffer the task also reads or writes, or reduces into twice, through a real kernel: `submit`
/// names that buffer, not the kernel's binding count, which the extra binding throws off (it said "declares 2
/// storage bindings, but the task binds 3", sending the author to the kernel).
#[test]
fn a_reduction_into_a_buffer_the_task_also_accesses_is_named_before_the_kernels_bindings() {
    let q = Queue::dry_run();
    let data = q.buffer_from(&[1i32, 2, 3, 4], [4]).named("data");
    let total = q.buffer_from(&[100i32], [1]).named("total");
    let sum = Kernel::wgsl(&kernels::REDUCE_I32, "reduce_sum").expect("reduce_i32::reduce_sum exists");
    let base = || task::parallel_for(&sum, [4]).read(&data, access::one_to_one());
    for (what, t) in [
        ("read", base().read(&total, access::all()).reduce(&total, ReductionOp::Sum).name("rr")),
        ("written", base().write(&total, access::all()).reduce(&total, ReductionOp::Sum).name("rr")),
    ] {
        let err = q.submit(t).unwrap_err().to_string();
        assert!(
            err.contains("In task T1 \"rr\": buffer B1 \"total\" is both reduced into and accessed"),
            "{what}: {err}"
        );
        assert!(!err.contains("storage bindings"), "{what}: {err}");
    }
    let err = q
        .submit(base().reduce(&total, ReductionOp::Sum).reduce(&total, ReductionOp::Sum).name("twice"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("In task T1 \"twice\": buffer B1 \"total\" is reduced into twice"), "{err}");
    assert!(!err.contains("storage bindings"), "{err}");
    // The right task still goes through.
    q.submit(base().reduce(&total, ReductionOp::Sum)).unwrap();
}

#[test]
fn host_tasks_with_side_effects_run_in_order() {
    let q = Queue::dry_run();
    let log = q.host_object(Vec::<String>::new());
    let a = q.submit(task::host_once().side_effect(&log)).unwrap();
    let b = q.submit(task::host_collective().side_effect(&log)).unwrap();
    let dot = q.task_graph_dot();
    assert!(dot.contains(&format!("{a} -> {b}")), "{dot}");
}

#[test]
fn waits_are_epochs_and_prune_the_graph() {
    let q = Queue::dry_run();
    let v = q.buffer_from(&[0i32; 4], [4]);
    for _ in 0..10 {
        q.submit(task::parallel_for(&Kernel::named("inc"), [4]).read_write(&v, access::one_to_one())).unwrap();
    }
    let e = q.wait();
    assert!(e > TaskId(10));
    assert_eq!(q.live_tasks(), 1, "after a reached epoch only the epoch itself is held");
}

#[test]
fn a_missing_entry_point_is_refused_naming_the_kernel() {
    let err = Kernel::wgsl(&celer::kernels::HEAT_1D, "mian").unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("heat_1d") && msg.contains("`mian`") && msg.contains("main"), "{msg}");
}

#[test]
fn a_kernel_whose_bindings_do_not_match_the_accessors_is_refused_at_submit() {
    let q = Queue::dry_run();
    let v = q.buffer_from(&[0f32; 8], [8]).named("v");
    let heat = Kernel::wgsl(&celer::kernels::HEAT_1D, "main").unwrap();
    let err = q.submit(task::parallel_for(&heat, [8]).read(&v, access::all()).name("lonely")).unwrap_err();
    assert!(matches!(*err.inner, TaskErrorKind::KernelBindings { declared: 2, given: 1, .. }), "{err}");
    let msg = err.to_string();
    assert!(msg.contains("task T1 \"lonely\"") && msg.contains("heat_1d::main"), "{msg}");
}

#[test]
fn the_readme_and_the_guide_list_every_celer_variable() {
    for (file, text) in
        [("README.md", include_str!("../README.md")), ("docs/GUIDE.md", include_str!("../docs/GUIDE.md"))]
    {
        for v in celer::unstable::scheduler::config::VARIABLES {
            let row = text.lines().find(|l| l.starts_with(&format!("| `{}` |", v.name)));
            let row = row.unwrap_or_else(|| panic!("{file} has no table row for {}", v.name));
            // The ranks column: whether the start-up compares the setting between the ranks.
            let ranks = if v.must_agree { "| must agree |" } else { "| may differ |" };
            assert!(row.contains(ranks), "{file}'s row for {} should say {ranks}", v.name);
        }
    }
}

/// The kernels of `kernels/`, compiled by this package's build script through `celer-kernel-build`, as a program
/// using celer compiles its own.
#[allow(dead_code)] // kernels/ also holds the reliability tests' faulty.wgsl
mod own_kernels {
    celer::include_kernels!();
}

#[test]
fn a_programs_own_kernels_are_compiled_at_build_time_and_checked_like_celers() {
    let metg = &own_kernels::METG;
    assert_eq!(metg.name(), "metg");
    assert_eq!(metg.group0_bindings(), 3, "prev, next, scratch");
    assert_eq!(metg.entry_point("main").map(|e| e.workgroup_size), Some([64, 1, 1]));
    assert_eq!(metg.spirv_words()[0], 0x0723_0203, "SPIR-V magic number");
    let k = Kernel::wgsl(metg, "main").unwrap();
    let q = Queue::dry_run();
    let tags = q.buffer_from(&[0u32; 4], [4]);
    let scratch = q.buffer_from(&[0f32; 64], [4, 16]);
    // Bindings are checked against what the build script found: two accessors for three bindings is refused.
    let err = q
        .submit(task::parallel_for(&k, [4, 16]).read(&tags, access::all()).read_write(&scratch, access::one_to_one()))
        .unwrap_err();
    assert!(matches!(*err.inner, TaskErrorKind::KernelBindings { declared: 3, given: 2, .. }), "{err}");
}

/// What `fn main() -> Result<(), Box<dyn Error>>` prints (`Debug`) is the message (`Display`), and an anyhow-style
/// report (the message, then each `source()`) says nothing twice: an error that includes its cause's text returns
/// no source.
fn assert_readable(e: &(dyn std::error::Error + 'static)) {
    assert_eq!(format!("{e:?}"), format!("{e}"), "Debug differs from Display");
    let mut cur = e;
    while let Some(source) = cur.source() {
        assert!(!cur.to_string().contains(&source.to_string()), "'{cur}' repeats its source '{source}'");
        cur = source;
    }
}

#[test]
fn errors_print_their_message_from_main_and_say_nothing_twice() {
    use celer::unstable::graph::TaskIdent;
    let q = Queue::dry_run();
    let v = q.buffer_from(&[0u32; 16], [16]).named("values");
    let k = Kernel::named("shift");
    // An out-of-bounds mapper (TaskError around TaskErrorKind::OutOfBounds) and a zero split granularity.
    let oob = q.submit(task::parallel_for(&k, [16]).read(&v, access::fixed([8], [16]))).unwrap_err();
    let zero = q.submit(task::parallel_for(&k, [16]).read(&v, access::one_to_one()).granularity([0])).unwrap_err();
    for err in [oob, zero] {
        assert_readable(&err);
        assert_readable(&*err.inner);
        let task: TaskIdent = err.task.clone();
        let as_facade: celer::Error = err.into();
        assert_readable(&as_facade);
        assert!(as_facade.to_string().contains(&task.to_string()), "{as_facade}");
    }
    // A bad CELER_* value, as Queue::new reports it.
    let bad = celer::unstable::scheduler::RuntimeConfig::from_lookup(|v| {
        (v == "CELER_LOOKAHEAD").then(|| "many".to_string())
    })
    .unwrap_err();
    assert_readable(&bad);
    let as_facade = celer::Error::from(bad.clone());
    assert_readable(&as_facade);
    // What `?` in `main` prints: the boxed error's Debug.
    let from_main: Box<dyn std::error::Error> = Box::new(as_facade);
    assert_eq!(format!("{from_main:?}"), format!("celer could not start: {bad}"));
    assert!(format!("{from_main:?}").contains("CELER_LOOKAHEAD=\"many\""), "{from_main:?}");
    // A fence read in a dry run, and start-up failures.
    let f = q.fence(&v).unwrap();
    assert_readable(&f.wait().unwrap_err());
    assert_readable(&celer::Error::from(celer::StartError::OtherRank { rank: 1 }));
    assert_readable(&celer::Error::from(celer::StartError::Mpi(celer::unstable::exec::mpi::MpiError::TooLong {
        len: 1 << 40,
        max: i32::MAX as usize,
    })));
}

#[test]
fn a_task_of_a_dropped_collective_group_is_refused_naming_the_group() {
    let q = Queue::dry_run();
    let g = q.collective_group();
    q.submit(task::host_collective_in(&g).name("first").run(|_| {})).unwrap();
    let late = task::host_collective_in(&g).name("late").run(|_| {});
    let id = g.id();
    drop(g);
    let msg = q.submit(late).expect_err("the group is gone").to_string();
    assert!(msg.contains("\"late\"") && msg.contains(&format!("collective group {id} does not exist")), "{msg}");
    // The default group always exists.
    q.submit(task::host_collective().run(|_| {})).unwrap();
}

#[test]
fn reductions_including_the_current_value_are_refused_where_celer_cannot_fold_it_in() {
    use celer::ErrorPolicy;
    let q = Queue::builder().dry_run(2).ignore_env().uninitialized_reads(ErrorPolicy::Error).build().unwrap();
    let data = q.buffer_from(&[1i32; 256], [256]);
    let total = q.buffer_from(&[5i32], [1]).named("total");
    let fresh = q.buffer::<i32, 1>([1]).named("fresh");
    let atomics = Kernel::wgsl(&celer::kernels::REDUCE_I32, "reduce_sum").unwrap();
    let blocks = Kernel::wgsl(&own_kernels::BLOCK_I32, "reduce_sum").unwrap();
    // A kernel that combines through atomics folds the old value in.
    q.submit(
        task::parallel_for(&atomics, [256])
            .read(&data, access::one_to_one())
            .reduce_including(&total, ReductionOp::Sum),
    )
    .unwrap();
    // A deterministic block reduction cannot: refused at submit, naming the task, kernel and buffer.
    let err = q
        .submit(
            task::parallel_for(&blocks, [256])
                .read(&data, access::one_to_one())
                .reduce_including(&total, ReductionOp::Sum)
                .name("exact_total"),
        )
        .unwrap_err();
    assert!(matches!(*err.inner, TaskErrorKind::BlockReductionIncludingCurrentValue { .. }), "{err}");
    let msg = err.to_string();
    assert!(msg.contains("task T2 \"exact_total\"") && msg.contains("block_i32::reduce_sum"), "{msg}");
    assert!(msg.contains("buffer B1 \"total\""), "{msg}");
    // The same kernel overwriting (`reduce`) is fine.
    q.submit(task::parallel_for(&blocks, [256]).read(&data, access::one_to_one()).reduce(&total, ReductionOp::Sum))
        .unwrap();
    // A buffer nothing wrote has no value to fold in: an uninitialized read, refused under ErrorPolicy::Error.
    let err = q
        .submit(
            task::parallel_for(&atomics, [256])
                .read(&data, access::one_to_one())
                .reduce_with_including(&fresh, 0, |a, b| a + b)
                .name("from_nothing"),
        )
        .unwrap_err();
    assert!(matches!(*err.inner, TaskErrorKind::UninitializedReduction { .. }), "{err}");
    assert!(err.to_string().contains("\"from_nothing\"") && err.to_string().contains("buffer B2 \"fresh\""), "{err}");
}

/// What each chunk's custom mapper was asked for, in a dry run (every simulated rank's chunk, after the whole index
/// space for the task graph).
type Chunks = std::sync::Arc<std::sync::Mutex<Vec<celer::GridBox<1>>>>;

/// A custom mapper that records its chunks and maps each to itself.
fn recording(seen: &Chunks) -> impl celer::access::Mapper<1, 1> {
    let log = seen.clone();
    access::custom("recording", move |chunk: &celer::GridBox<1>, _: &celer::GridBox<1>| {
        log.lock().unwrap().push(*chunk);
        celer::Region::from(*chunk)
    })
}

#[test]
fn an_offset_index_space_is_split_from_its_offset_and_mapped_in_buffer_coordinates() {
    let q = Queue::builder().dry_run(3).ignore_env().build().unwrap();
    let v = q.buffer_from(&[0u32; 32], [32]).named("v");
    let seen = Chunks::default();
    // 12 items from 10: three ranks run [10, 14), [14, 18), [18, 22); with a granularity of 5 counted from the
    // offset, [10, 15), [15, 20), [20, 22).
    q.submit(task::parallel_for(&Kernel::named("k"), [12]).offset([10]).read(&v, recording(&seen))).unwrap();
    q.submit(task::host_for([12]).offset([10]).granularity([5]).read(&v, recording(&seen))).unwrap();
    let seen: Vec<_> = seen.lock().unwrap().iter().map(|b| (b.min()[0], b.max()[0])).collect();
    for want in [(10, 22), (10, 14), (14, 18), (18, 22), (10, 15), (15, 20), (20, 22)] {
        assert!(seen.contains(&want), "{want:?} not among {seen:?}");
    }
    assert!(seen.iter().all(|&(lo, hi)| lo >= 10 && hi <= 22), "a chunk outside [10, 22): {seen:?}");
    // The task graph records the shifted index space.
    let dot = q.task_graph_dot();
    assert!(dot.contains("[10] - [22]"), "{dot}");
}

#[test]
fn an_offset_that_leaves_the_buffer_or_overflows_is_refused_at_submit_naming_the_task() {
    let q = Queue::dry_run();
    let v = q.buffer_from(&[0u32; 16], [16]).named("values");
    let k = Kernel::named("shift");
    // One to one over [8, 20) reaches past the 16 cells: the cells outside are named.
    let err =
        q.submit(task::parallel_for(&k, [12]).offset([8]).read(&v, access::one_to_one()).name("shifted")).unwrap_err();
    assert!(matches!(*err.inner, TaskErrorKind::OutOfBounds { .. }), "{err}");
    let msg = err.to_string();
    assert!(msg.contains("task T1 \"shifted\"") && msg.contains("buffer B0 \"values\""), "{msg}");
    assert!(msg.contains("{[16] - [20]}"), "{msg}");
    // An end beyond usize::MAX.
    let err = q.submit(task::host_for([4, 2]).offset([1, usize::MAX - 1]).name("too_far")).unwrap_err();
    assert!(matches!(*err.inner, TaskErrorKind::IndexSpaceOverflow { .. }), "{err}");
    let msg = err.to_string();
    assert!(msg.contains("\"too_far\"") && msg.contains("offset [1, 18446744073709551614]"), "{msg}");
    // A kernel's coordinates are u32: an index space ending beyond u32::MAX is refused, naming it.
    let heat = Kernel::wgsl(&celer::kernels::HEAT_1D, "main").unwrap();
    let err = q.submit(task::parallel_for(&heat, [4]).offset([u32::MAX as usize - 1]).name("wide")).unwrap_err();
    assert!(matches!(*err.inner, TaskErrorKind::KernelCoordinates { .. }), "{err}");
    assert!(err.to_string().contains("the index space [4294967294] - [4294967298]"), "{err}");
    // A collective host task numbers its items itself.
    let err = q.submit(task::host_collective().offset([1]).name("io")).unwrap_err();
    assert!(matches!(*err.inner, TaskErrorKind::OffsetNotAllowed { .. }), "{err}");
    assert!(err.to_string().contains("\"io\"") && err.to_string().contains("task::host_collective"), "{err}");
    // An offset of zero is no offset, and a later .offset replaces an earlier one.
    q.submit(task::host_collective().offset([0])).unwrap();
    q.submit(task::parallel_for(&k, [12]).offset([8]).offset([4]).read(&v, access::one_to_one())).unwrap();
    // Also after an offset that overflowed: the range is the one given, not what is left of it.
    let seen = Chunks::default();
    let t = task::parallel_for(&k, [12]).offset([usize::MAX]).offset([2]).read(&v, recording(&seen));
    q.submit(t).unwrap();
    let seen: Vec<_> = seen.lock().unwrap().iter().map(|b| (b.min()[0], b.max()[0])).collect();
    assert!(!seen.is_empty() && seen.iter().all(|&b| b == (2, 14)), "{seen:?}");
}

#[test]
fn a_smaller_horizon_max_parallelism_puts_horizons_into_a_wide_graph() {
    // Nine independent tasks (each writes its own buffer): a critical path of one task, so only the width of the
    // graph's front can call for a horizon. Returns the last task's id and the task graph.
    let run = |width: Option<usize>| {
        let mut b = Queue::builder().dry_run(1).ignore_env();
        if let Some(w) = width {
            b = b.horizon_max_parallelism(w);
        }
        let q = b.build().unwrap();
        let bufs: Vec<_> = (0..9).map(|_| q.buffer::<u32, 1>([4])).collect();
        let ids: Vec<TaskId> = bufs
            .iter()
            .map(|b| q.submit(task::host_for([4]).discard_write(b, access::one_to_one())).unwrap())
            .collect();
        (ids[8].to_string(), q.task_graph_dot())
    };
    let (last, dot) = run(None);
    assert_eq!(last, "T9", "64 wide by default: no horizon among the tasks after the epoch T0");
    assert!(!dot.contains("horizon"), "{dot}");
    // A horizon whenever three tasks have no successor (the last horizon counts as one of them): after the 3rd,
    // 5th, 7th and 9th task, so the 9th is T12 and a horizon T13 follows it.
    let (last, dot) = run(Some(3));
    assert_eq!(last, "T12", "{dot}");
    assert!(dot.contains("T13 horizon"), "{dot}");
}

#[test]
fn custom_in_mappers_see_the_whole_index_space_with_its_offset() {
    use celer::{GridBox, Region};
    type Seen = std::sync::Arc<std::sync::Mutex<Vec<(GridBox<1>, GridBox<1>)>>>;
    let q = Queue::builder().dry_run(3).ignore_env().build().unwrap();
    let v = q.buffer_from(&[0u32; 12], [12]).named("v");
    let seen = Seen::default();
    let log = seen.clone();
    // Item k of the index space reads cell k - start: the index space, wherever it starts, maps onto the buffer.
    let relative = access::custom_in("relative", move |chunk: &GridBox<1>, space: &GridBox<1>, _: &GridBox<1>| {
        log.lock().unwrap().push((*chunk, *space));
        Region::from(GridBox::d1(chunk.min()[0] - space.min()[0], chunk.max()[0] - space.min()[0]))
    });
    q.submit(task::parallel_for(&Kernel::named("k"), [12]).offset([10]).read(&v, relative.clone())).unwrap();
    let seen_now: Vec<_> = seen.lock().unwrap().drain(..).collect();
    let chunks: Vec<_> = seen_now.iter().map(|(c, _)| (c.min()[0], c.max()[0])).collect();
    for want in [(10, 22), (10, 14), (14, 18), (18, 22)] {
        assert!(chunks.contains(&want), "{want:?} not among {chunks:?}");
    }
    assert!(
        seen_now.iter().all(|(_, s)| *s == GridBox::d1(10, 22)),
        "an index space other than [10, 22): {seen_now:?}"
    );
    // A 2D index space: its whole box, offset included, in every call.
    let grid = q.buffer::<u32, 2>([6, 6]);
    let log = seen.clone();
    let corner = access::custom_in("corner", move |chunk: &GridBox<2>, space: &GridBox<2>, _: &GridBox<2>| {
        log.lock()
            .unwrap()
            .push((GridBox::d1(chunk.min()[0], chunk.max()[0]), GridBox::d1(space.min()[1], space.max()[1])));
        Region::from(GridBox::new([0, 0], [1, 1]))
    });
    q.submit(task::host_for([6, 4]).offset([3, 2]).read(&grid, corner)).unwrap();
    let seen_now: Vec<_> = seen.lock().unwrap().drain(..).collect();
    assert!(!seen_now.is_empty() && seen_now.iter().all(|(_, s)| *s == GridBox::d1(2, 6)), "{seen_now:?}");
    // Without the offset the same mapper reaches past the buffer: refused, naming the mapper.
    let err = q.submit(task::parallel_for(&Kernel::named("k"), [13]).read(&v, relative)).unwrap_err();
    assert!(matches!(*err.inner, TaskErrorKind::OutOfBounds { .. }), "{err}");
    assert!(err.to_string().contains("range mapper relative"), "{err}");
}

/// The boxes each simulated rank pushes to rank 0 in the command graphs `dot`, as `(rank, box)`.
fn pushes_to_rank_0(dot: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for cluster in dot.split("subgraph cluster_").skip(1) {
        let rank: usize = cluster.split_whitespace().next().unwrap().parse().unwrap();
        for line in cluster.lines().filter(|l| l.contains(" push ")) {
            let boxes = line.split("\\nN0 ").nth(1).unwrap_or_default();
            out.push((rank, boxes.trim_end_matches("\"];").to_string()));
        }
    }
    out
}

#[test]
fn even_split_gives_each_rank_its_block_of_rows() {
    // 10 rows over 3 ranks: [0, 4), [4, 7), [7, 10) (the first 10 mod 3 ranks get one more), all 4 columns.
    let q = Queue::builder().dry_run(3).ignore_env().record_commands(true).build().unwrap();
    let m = q.buffer::<f32, 2>([10, 4]).named("m");
    q.submit(task::host_collective().discard_write(&m, access::even_split()).name("split")).unwrap();
    q.submit(task::host_once().read(&m, access::all()).name("gather")).unwrap();
    let pushes = pushes_to_rank_0(&q.command_graphs_dot());
    assert_eq!(pushes, [(1, "{[4,0] - [7,4]}".to_string()), (2, "{[7,0] - [10,4]}".to_string())]);

    // More ranks than rows: 2 rows over 4 ranks, rows 0 and 1 to ranks 0 and 1, none to ranks 2 and 3. A kernel
    // over an index space with an offset splits the buffer as one without.
    let q = Queue::builder().dry_run(4).ignore_env().record_commands(true).build().unwrap();
    let v = q.buffer::<u32, 1>([2]).named("v");
    q.submit(task::host_for([4]).offset([100]).discard_write(&v, access::even_split())).unwrap();
    q.submit(task::host_once().read(&v, access::all())).unwrap();
    assert_eq!(pushes_to_rank_0(&q.command_graphs_dot()), [(1, "{[1] - [2]}".to_string())]);

    // In blocks of 3 rows: 11 rows over 2 ranks, [0, 6) and [6, 11) (the last takes the 2 rows below a block).
    let q = Queue::builder().dry_run(2).ignore_env().record_commands(true).build().unwrap();
    let c = q.buffer::<u32, 3>([11, 2, 2]).named("c");
    let split = access::even_split().granularity(3);
    q.submit(task::parallel_for(&Kernel::named("k"), [2]).discard_write(&c, split)).unwrap();
    q.submit(task::host_once().read(&c, access::all())).unwrap();
    assert_eq!(pushes_to_rank_0(&q.command_graphs_dot()), [(1, "{[6,0,0] - [11,2,2]}".to_string())]);

    // A 2D index space splits the rows along its dimension 0: split along dimension 0 (the default) each rank writes
    // its rows; split along dimension 1 too, two ranks would write the same rows, which is refused.
    let q4 = Queue::builder().dry_run(4).ignore_env().record_commands(true).build().unwrap();
    let g = q4.buffer::<u32, 2>([8, 3]).named("g");
    q4.submit(task::host_for([4, 4]).discard_write(&g, access::even_split())).unwrap();
    q4.submit(task::host_once().read(&g, access::all())).unwrap();
    let want: Vec<(usize, String)> = (1..4).map(|r| (r, format!("{{[{},0] - [{},3]}}", 2 * r, 2 * r + 2))).collect();
    assert_eq!(pushes_to_rank_0(&q4.command_graphs_dot()), want);
    let err =
        q4.submit(task::host_for([4, 4]).split_2d().discard_write(&g, access::even_split()).name("two_d")).unwrap_err();
    assert!(matches!(*err.inner, TaskErrorKind::OverlappingWrite { .. }), "{err}");
    assert!(err.to_string().contains("\"two_d\"") && err.to_string().contains("buffer B0 \"g\""), "{err}");

    // Blocks of no row are refused at submit, naming the task, the buffer and the mapper.
    let err = q.submit(task::host_for([2]).read(&c, access::even_split().granularity(0)).name("zero")).unwrap_err();
    assert!(matches!(*err.inner, TaskErrorKind::Mapper { .. }), "{err}");
    let msg = err.to_string();
    assert!(msg.contains("\"zero\"") && msg.contains("buffer B0 \"c\"") && msg.contains("even_split"), "{msg}");
}

#[test]
fn buffers_made_in_a_loop_take_a_formatted_name() {
    let q = Queue::dry_run();
    let k = Kernel::named("fill");
    for step in 0..2 {
        // A String, as a program names the buffers it creates in a loop (`&str` only, before).
        let b = q.buffer::<u32, 1>([8]).named(format!("tmp{step}"));
        let err = q.submit(task::parallel_for(&k, [8]).read(&b, access::fixed([4], [8]))).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains(&format!("\"tmp{step}\"")), "{msg}");
    }
}
