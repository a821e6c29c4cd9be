//! Task-graph dependencies, horizons, epochs, pruning and bad input.

use celer_graph::{
    AccessMode::{self, *},
    BufferId, CollectiveGroupId, DependencyKind, DependencyOrigin, EpochAction, ErrorPolicy, GridBox, HostObjectId,
    NeighborhoodShape, RangeMapper, Region, SideEffectOrder, TaskErrorKind, TaskId, TaskKind, TaskManager,
    TaskManagerConfig, TaskSpec,
};

fn manager(step: u32, parallelism: usize) -> TaskManager {
    TaskManager::new(TaskManagerConfig {
        horizon_step: step,
        horizon_max_parallelism: parallelism,
        ..TaskManagerConfig::default()
    })
}

/// A task manager that never inserts horizons on its own.
fn plain() -> TaskManager {
    manager(1000, 1000)
}

fn kernel1(n: usize, accesses: &[(BufferId, AccessMode, RangeMapper)]) -> TaskSpec {
    accesses.iter().fold(TaskSpec::device_compute(&[n]), |s, (b, m, r)| s.access(*b, *m, r.clone()))
}

fn dep_kind(tm: &TaskManager, task: TaskId, on: TaskId) -> Option<DependencyKind> {
    tm.task(task).unwrap().dependencies.iter().find(|d| d.task == on).map(|d| d.kind)
}

fn fixed(a: usize, b: usize) -> RangeMapper {
    RangeMapper::Fixed(GridBox::d1(a, b))
}

#[test]
fn reads_depend_only_on_the_writers_of_the_cells_they_read() {
    let mut tm = plain();
    let b = BufferId(0);
    tm.create_buffer(b, 1, GridBox::d1(0, 100), false, None);
    let w1 = tm.submit(kernel1(1, &[(b, DiscardWrite, fixed(0, 50))])).unwrap();
    let w2 = tm.submit(kernel1(1, &[(b, DiscardWrite, fixed(50, 100))])).unwrap();
    let r = tm.submit(kernel1(1, &[(b, Read, fixed(10, 20))])).unwrap();
    assert_eq!(dep_kind(&tm, r, w1), Some(DependencyKind::True));
    assert_eq!(dep_kind(&tm, r, w2), None);
    let r2 = tm.submit(kernel1(1, &[(b, Read, fixed(40, 60))])).unwrap();
    assert_eq!(dep_kind(&tm, r2, w1), Some(DependencyKind::True));
    assert_eq!(dep_kind(&tm, r2, w2), Some(DependencyKind::True));
}

#[test]
fn writers_wait_for_earlier_readers_through_anti_dependencies() {
    let mut tm = plain();
    let b = BufferId(0);
    tm.create_buffer(b, 1, GridBox::d1(0, 100), false, None);
    let w = tm.submit(kernel1(100, &[(b, DiscardWrite, RangeMapper::OneToOne)])).unwrap();
    let r = tm.submit(kernel1(100, &[(b, Read, RangeMapper::All)])).unwrap();
    let w2 = tm.submit(kernel1(100, &[(b, DiscardWrite, RangeMapper::OneToOne)])).unwrap();
    assert_eq!(dep_kind(&tm, w2, r), Some(DependencyKind::Anti));
    assert_eq!(dep_kind(&tm, w2, w), None, "the reader already orders the two writers");
    // Writing only part: readers of other parts are not waited for.
    let r_left = tm.submit(kernel1(1, &[(b, Read, fixed(0, 10))])).unwrap();
    let w_right = tm.submit(kernel1(1, &[(b, DiscardWrite, fixed(50, 60))])).unwrap();
    assert_eq!(dep_kind(&tm, w_right, r_left), None);
    assert_eq!(dep_kind(&tm, w_right, w2), Some(DependencyKind::Output));
    // Rewriting cells only partly read: the reader is waited for, and so is the last writer (of the unread part).
    let r_part = tm.submit(kernel1(1, &[(b, Read, fixed(50, 55))])).unwrap();
    let w3 = tm.submit(kernel1(1, &[(b, DiscardWrite, fixed(50, 60))])).unwrap();
    assert_eq!(dep_kind(&tm, w3, r_part), Some(DependencyKind::Anti));
    assert_eq!(dep_kind(&tm, w3, w_right), Some(DependencyKind::Output));
    // Read whole by two overlapping reads: only the readers are waited for.
    let r_a = tm.submit(kernel1(1, &[(b, Read, fixed(50, 58))])).unwrap();
    let r_b = tm.submit(kernel1(1, &[(b, Read, fixed(52, 60))])).unwrap();
    let w4 = tm.submit(kernel1(1, &[(b, DiscardWrite, fixed(50, 60))])).unwrap();
    assert_eq!(dep_kind(&tm, w4, r_a), Some(DependencyKind::Anti));
    assert_eq!(dep_kind(&tm, w4, r_b), Some(DependencyKind::Anti));
    assert_eq!(dep_kind(&tm, w4, w3), None, "the readers already order the two writers");
}

#[test]
fn a_read_write_task_depends_truly_on_the_previous_writer() {
    let mut tm = plain();
    let b = BufferId(0);
    tm.create_buffer(b, 1, GridBox::d1(0, 10), true, None);
    let t1 = tm.submit(kernel1(10, &[(b, ReadWrite, RangeMapper::OneToOne)])).unwrap();
    let t2 = tm.submit(kernel1(10, &[(b, ReadWrite, RangeMapper::OneToOne)])).unwrap();
    assert_eq!(
        dep_kind(&tm, t1, TaskId(0)),
        Some(DependencyKind::True),
        "host data counts as written by the init epoch"
    );
    assert_eq!(dep_kind(&tm, t2, t1), Some(DependencyKind::True));
    assert!(tm.take_diagnostics().is_empty());
}

#[test]
fn side_effects_and_collective_groups_serialize() {
    let mut tm = plain();
    let h = HostObjectId(0);
    tm.create_host_object(h);
    let mut once = TaskSpec::new(TaskKind::Once, 0, GridBox::from_extent(&[]));
    once.side_effects.push((h, SideEffectOrder::Sequential));
    let a = tm.submit(once.clone()).unwrap();
    let b = tm.submit(once).unwrap();
    let d = tm.task(b).unwrap().dependencies.iter().find(|d| d.task == a).copied().unwrap();
    assert_eq!((d.kind, d.origin), (DependencyKind::True, DependencyOrigin::SideEffect));

    let g = CollectiveGroupId(1);
    tm.create_collective_group(g);
    let coll = TaskSpec::new(TaskKind::Collective(g), 1, GridBox::d1(0, 1));
    let c1 = tm.submit(coll.clone()).unwrap();
    let c2 = tm.submit(coll).unwrap();
    let d = tm.task(c2).unwrap().dependencies.iter().find(|d| d.task == c1).copied().unwrap();
    assert_eq!(d.origin, DependencyOrigin::CollectiveGroupSerialization);
}

#[test]
fn a_dropped_collective_group_is_forgotten_and_refused_afterwards() {
    let mut tm = plain();
    for i in 1..=100 {
        let g = CollectiveGroupId(i);
        tm.create_collective_group(g);
        let coll = TaskSpec::new(TaskKind::Collective(g), 1, GridBox::d1(0, 1));
        tm.submit(coll.clone()).unwrap();
        tm.submit(coll).unwrap();
        tm.destroy_collective_group(g);
    }
    assert_eq!(tm.live_collective_group_count(), 1, "only the default group stays");
    let late = tm.submit(TaskSpec::new(TaskKind::Collective(CollectiveGroupId(7)), 1, GridBox::d1(0, 1)));
    let msg = late.expect_err("a dropped group is refused").to_string();
    assert!(msg.contains("collective group") && msg.contains("does not exist"), "{msg}");
    tm.submit(TaskSpec::new(TaskKind::Collective(CollectiveGroupId(0)), 1, GridBox::d1(0, 1))).unwrap();
}

#[test]
fn tasks_without_true_dependencies_hang_off_the_current_epoch() {
    let mut tm = plain();
    let b = BufferId(0);
    tm.create_buffer(b, 1, GridBox::d1(0, 10), false, None);
    let t = tm.submit(kernel1(10, &[(b, DiscardWrite, RangeMapper::OneToOne)])).unwrap();
    let d = tm.task(t).unwrap().dependencies[0];
    assert_eq!((d.task, d.origin), (TaskId(0), DependencyOrigin::LastEpoch));
}

#[test]
fn horizons_follow_the_critical_path_and_apply_one_horizon_late() {
    let mut tm = manager(2, 1000);
    let b = BufferId(0);
    tm.create_buffer(b, 1, GridBox::d1(0, 10), true, None);
    tm.drain_new_tasks().for_each(drop);
    let mut horizons = vec![];
    for _ in 0..6 {
        let t = tm.submit(kernel1(10, &[(b, ReadWrite, RangeMapper::OneToOne)])).unwrap();
        horizons.extend(tm.drain_new_tasks().filter(|&id| id != t));
    }
    assert!(horizons.len() >= 2, "a chain of 6 tasks with step 2 must produce horizons, got {horizons:?}");
    for h in &horizons {
        assert_eq!(tm.task(*h).unwrap().kind(), TaskKind::Horizon);
    }
    // The newest horizon is pending, the one before it applied.
    assert_eq!(tm.current_horizon(), horizons.last().copied());
    assert_eq!(tm.epoch_for_new_tasks(), horizons[horizons.len() - 2]);
    // A horizon depends on the whole execution front, which is then just the horizon.
    let h = tm.task(*horizons.last().unwrap()).unwrap();
    assert!(h.dependencies.iter().all(|d| d.origin == DependencyOrigin::ExecutionFront));
}

#[test]
fn a_chain_gets_a_horizon_every_horizon_step_tasks() {
    // A chain of read-write tasks grows the critical path by one per task: with step s, a horizon follows task s,
    // 2s, 3s, ... (the horizon's own step is not counted: it sits beside the chain's next task).
    const TASKS: usize = 24;
    for step in 1..=5u32 {
        let mut tm = manager(step, 1000);
        let b = BufferId(0);
        tm.create_buffer(b, 1, GridBox::d1(0, 10), true, None);
        tm.drain_new_tasks().for_each(drop);
        let mut after = Vec::new();
        for i in 1..=TASKS {
            let t = tm.submit(kernel1(10, &[(b, ReadWrite, RangeMapper::OneToOne)])).unwrap();
            let horizons: Vec<TaskId> = tm.drain_new_tasks().filter(|&id| id != t).collect();
            for h in &horizons {
                assert_eq!(tm.task(*h).unwrap().kind(), TaskKind::Horizon);
            }
            assert!(horizons.len() <= 1, "step {step}: task {i} brought {} horizons", horizons.len());
            if !horizons.is_empty() {
                after.push(i);
            }
        }
        let expected: Vec<usize> = (1..=TASKS).filter(|i| i % step as usize == 0).collect();
        assert_eq!(after, expected, "step {step}: horizons after these tasks of the chain");
    }
}

#[test]
fn horizons_are_generated_at_the_parallelism_limit() {
    // Celerity's case: limit 3, nine independent tasks -> a horizon every two tasks (each horizon then has three
    // predecessors: the previous horizon and two tasks).
    let mut tm = manager(1000, 3);
    let b = BufferId(0);
    tm.create_buffer(b, 1, GridBox::d1(0, 9), false, None);
    tm.drain_new_tasks().for_each(drop);
    let mut horizons = vec![];
    for i in 0..9 {
        let t = tm.submit(kernel1(1, &[(b, DiscardWrite, fixed(i, i + 1))])).unwrap();
        horizons.extend(tm.drain_new_tasks().filter(|&id| id != t));
    }
    assert_eq!(horizons.len(), 4);
    for h in &horizons[1..] {
        assert_eq!(tm.task(*h).unwrap().dependencies.len(), 3);
    }
}

#[test]
fn epochs_apply_at_once_and_reset_the_horizon() {
    let mut tm = manager(2, 1000);
    let b = BufferId(0);
    tm.create_buffer(b, 1, GridBox::d1(0, 10), true, None);
    for _ in 0..3 {
        tm.submit(kernel1(10, &[(b, ReadWrite, RangeMapper::OneToOne)])).unwrap();
    }
    let e = tm.epoch(EpochAction::Barrier);
    assert_eq!(tm.epoch_for_new_tasks(), e);
    assert_eq!(tm.current_horizon(), None);
    let t = tm.submit(kernel1(10, &[(b, Read, RangeMapper::OneToOne)])).unwrap();
    assert_eq!(tm.task(t).unwrap().dependencies.iter().map(|d| d.task).collect::<Vec<_>>(), vec![e]);
    tm.notify_epoch_reached(e);
    assert!(tm.tasks().all(|t| t.id >= e), "everything before a reached epoch is erased");
}

#[test]
fn a_long_program_keeps_its_tracking_state_bounded() {
    // 100 steps: step t writes row t of a 2D buffer and reads rows 0..t (Celerity's compaction scenario), with the
    // runtime reporting each applied horizon as reached right away (a dry run).
    for step in 1..=3u32 {
        let mut tm = manager(step, 1000);
        let b = BufferId(0);
        tm.create_buffer(b, 2, GridBox::d2([0, 0], [100, 8]), false, None);
        // (boxes, windows, live tasks): the maximum over steps 10..40 and over steps 70..100.
        let mut early = (0, 0, 0);
        let mut late = (0, 0, 0);
        for t in 0..100 {
            let mut spec = TaskSpec::device_compute(&[1, 8]).access(
                b,
                DiscardWrite,
                RangeMapper::Fixed(GridBox::d2([t, 0], [t + 1, 8])),
            );
            if t > 0 {
                spec = spec.access(b, Read, RangeMapper::Fixed(GridBox::d2([0, 0], [t, 8])));
            }
            tm.submit(spec).unwrap();
            let applied = tm.epoch_for_new_tasks();
            tm.notify_epoch_reached(applied);
            let now = (tm.region_map_boxes(), tm.live_window_count(), tm.live_task_count());
            let slot = match t {
                10..40 => &mut early,
                70..100 => &mut late,
                _ => continue,
            };
            *slot = (slot.0.max(now.0), slot.1.max(now.1), slot.2.max(now.2));
        }
        assert!(late.0 <= early.0, "step {step}: region maps grew from {} to {} boxes", early.0, late.0);
        assert!(late.2 <= early.2, "step {step}: live tasks grew from {} to {}", early.2, late.2);
        assert!(late.1 <= 3, "step {step}: {} horizon windows alive", late.1);
        // Absolute: a few boxes per task in the two live horizon windows, independent of the 100 steps.
        let s = step as usize;
        assert!(late.0 <= 4 * (s + 1), "step {step}: {} boxes", late.0);
    }
}

#[test]
fn out_of_bounds_mappers_are_refused_naming_task_buffer_and_region() {
    let mut tm = plain();
    let b = BufferId(3);
    tm.create_buffer(b, 1, GridBox::d1(0, 10), true, Some("u".into()));
    let err = tm.submit(kernel1(20, &[(b, Read, RangeMapper::OneToOne)]).named("stencil")).unwrap_err();
    assert!(matches!(*err.inner, TaskErrorKind::OutOfBounds { .. }));
    let msg = err.to_string();
    assert!(msg.contains("task T1 \"stencil\""), "{msg}");
    assert!(msg.contains("buffer B3 \"u\""), "{msg}");
    assert!(msg.contains("{[10] - [20]}"), "{msg}");
    // Nothing was recorded: the next task still gets id T1.
    let ok = tm.submit(kernel1(10, &[(b, Read, RangeMapper::OneToOne)])).unwrap();
    assert_eq!(ok, TaskId(1));
}

#[test]
fn neighborhood_reads_are_clamped_not_refused() {
    let mut tm = plain();
    let b = BufferId(0);
    tm.create_buffer(b, 2, GridBox::d2([0, 0], [8, 8]), true, None);
    let n = RangeMapper::Neighborhood { extent: [1, 1, 0], shape: NeighborhoodShape::AlongAxes };
    let t = tm.submit(TaskSpec::device_compute(&[8, 8]).access(b, Read, n)).unwrap();
    assert_eq!(tm.task(t).unwrap().consumed(b).unwrap().area(), 64);
}

#[test]
fn dimension_mismatches_are_refused() {
    let mut tm = plain();
    let b = BufferId(0);
    tm.create_buffer(b, 2, GridBox::d2([0, 0], [8, 8]), true, Some("grid".into()));
    let err = tm.submit(kernel1(8, &[(b, Read, RangeMapper::OneToOne)])).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("one_to_one maps a 1D index space, but the buffer is 2D"), "{msg}");
    assert!(msg.contains("buffer B0 \"grid\""), "{msg}");
}

#[test]
fn uninitialized_reads_warn_or_fail_by_policy() {
    let b = BufferId(0);
    let spec = || kernel1(10, &[(b, Read, RangeMapper::OneToOne)]);

    let mut tm = plain();
    tm.create_buffer(b, 1, GridBox::d1(0, 10), false, Some("x".into()));
    tm.submit(kernel1(1, &[(b, DiscardWrite, fixed(0, 4))])).unwrap();
    tm.submit(spec()).unwrap();
    let warnings = tm.take_diagnostics();
    assert_eq!(warnings.len(), 1);
    let msg = warnings[0].to_string();
    assert!(msg.contains("buffer B0 \"x\" is read in {[4] - [10]}"), "{msg}");

    let mut strict =
        TaskManager::new(TaskManagerConfig { uninitialized_read: ErrorPolicy::Error, ..TaskManagerConfig::default() });
    strict.create_buffer(b, 1, GridBox::d1(0, 10), false, None);
    assert!(matches!(*strict.submit(spec()).unwrap_err().inner, TaskErrorKind::UninitializedRead { .. }));
}

#[test]
fn other_bad_input_gets_clear_errors() {
    let mut tm = plain();
    let b = BufferId(0);
    tm.create_buffer(b, 1, GridBox::d1(0, 10), true, None);
    let unknown = tm.submit(kernel1(1, &[(BufferId(9), Read, RangeMapper::All)])).unwrap_err();
    assert!(unknown.to_string().contains("buffer B9 does not exist"), "{unknown}");
    let mut red = TaskSpec::device_compute(&[10]);
    red.reductions.push(celer_graph::ReductionSpec {
        id: celer_graph::ReductionId(0),
        buffer: b,
        op: celer_graph::ReductionOp::Sum,
        include_current_value: false,
    });
    let not_scalar = tm.submit(red).unwrap_err();
    assert!(matches!(*not_scalar.inner, TaskErrorKind::ReductionNotScalar { .. }), "{not_scalar}");
}

#[test]
fn the_task_graph_prints_as_dot() {
    let mut tm = plain();
    let b = BufferId(0);
    tm.create_buffer(b, 1, GridBox::d1(0, 10), true, Some("x".into()));
    let w = tm.submit(kernel1(10, &[(b, ReadWrite, RangeMapper::OneToOne)]).named("step")).unwrap();
    let r = tm.submit(kernel1(10, &[(b, Read, RangeMapper::All)])).unwrap();
    let dot = tm.to_dot();
    assert!(dot.starts_with("digraph"));
    assert!(dot.contains(&format!("{w} -> {r}")), "{dot}");
    assert!(dot.contains("\\\"step\\\""), "{dot}");
}

#[test]
fn names_with_quotes_and_backslashes_stay_inside_their_dot_label() {
    let mut tm = plain();
    let b = BufferId(0);
    tm.create_buffer(b, 1, GridBox::d1(0, 10), true, Some("evil\" ] ; a -> b [label=\"\\".into()));
    tm.submit(kernel1(10, &[(b, ReadWrite, RangeMapper::OneToOne)]).named("ends in \\")).unwrap();
    let dot = tm.to_dot();
    let line = dot.lines().find(|l| l.contains("host") || l.contains("device")).expect("the task's node");
    // Outside the label's own two quotes, every quote is escaped (preceded by an odd number of backslashes).
    let bytes = line.as_bytes();
    let unescaped = (0..bytes.len())
        .filter(|&i| bytes[i] == b'"' && bytes[..i].iter().rev().take_while(|&&c| c == b'\\').count() % 2 == 0)
        .count();
    assert_eq!(unescaped, 2, "the label's quotes only: {line}");
}

#[test]
fn reading_cells_that_other_items_of_the_same_task_write_is_refused() {
    let mut tm = plain();
    let (a, b) = (BufferId(0), BufferId(1));
    tm.create_buffer(a, 1, GridBox::d1(0, 64), true, Some("a".into()));
    tm.create_buffer(b, 1, GridBox::d1(0, 64), true, Some("b".into()));
    let nb = RangeMapper::Neighborhood { extent: [1, 0, 0], shape: NeighborhoodShape::BoundingBox };
    let e = tm.submit(kernel1(64, &[(a, Read, nb.clone()), (a, DiscardWrite, RangeMapper::OneToOne)])).unwrap_err();
    let TaskErrorKind::IntraTaskRace { region, .. } = &*e.inner else { panic!("{e}") };
    assert!(!region.is_empty() && region.area() <= 2, "a cell on each side of a slab border: {region:?}");
    let msg = e.to_string();
    assert!(
        msg.contains("buffer B0 \"a\" is read in")
            && msg.contains("through read neighborhood")
            && msg.contains("write those cells through discard_write one_to_one"),
        "{msg}"
    );
    // Reading everything while writing one's own cells, and reading and writing a neighbourhood, race too.
    let e = tm.submit(kernel1(64, &[(a, Read, RangeMapper::All), (a, Write, RangeMapper::OneToOne)])).unwrap_err();
    assert!(matches!(*e.inner, TaskErrorKind::IntraTaskRace { .. }), "{e}");
    let e = tm.submit(kernel1(64, &[(a, ReadWrite, nb.clone())])).unwrap_err();
    assert!(matches!(*e.inner, TaskErrorKind::IntraTaskRace { .. }), "{e}");
    // Legit: each item reads and writes its own cells; the stencil reads one buffer and writes another.
    tm.submit(kernel1(64, &[(a, ReadWrite, RangeMapper::OneToOne)])).unwrap();
    tm.submit(kernel1(64, &[(a, Read, RangeMapper::OneToOne), (a, DiscardWrite, RangeMapper::OneToOne)])).unwrap();
    tm.submit(kernel1(64, &[(a, Read, nb), (b, DiscardWrite, RangeMapper::OneToOne)])).unwrap();
    // One item cannot race with another.
    tm.submit(kernel1(1, &[(a, Read, RangeMapper::All), (a, DiscardWrite, RangeMapper::OneToOne)])).unwrap();
}

#[test]
fn accesses_that_touch_cells_only_through_atomics_do_not_race_with_each_other() {
    let mut tm = plain();
    let a = BufferId(0);
    tm.create_buffer(a, 1, GridBox::d1(0, 16), true, Some("bins".into()));
    let atomic = |mut spec: celer_graph::TaskSpec, mask: u64| {
        spec.atomic_accesses = mask;
        spec
    };
    // A histogram: every item updates any bin, through atomics only.
    tm.submit(atomic(kernel1(64, &[(a, ReadWrite, RangeMapper::All)]), 1)).unwrap();
    // The same without atomics races.
    let e = tm.submit(kernel1(64, &[(a, ReadWrite, RangeMapper::All)])).unwrap_err();
    assert!(matches!(*e.inner, TaskErrorKind::IntraTaskRace { .. }), "{e}");
    // A plain read of cells that other items update through atomics races (bit 1 is the read, bit 0 the atomics).
    let e = tm
        .submit(atomic(kernel1(64, &[(a, ReadWrite, RangeMapper::All), (a, Read, RangeMapper::All)]), 1))
        .unwrap_err();
    assert!(matches!(*e.inner, TaskErrorKind::IntraTaskRace { .. }), "{e}");
    tm.submit(atomic(kernel1(64, &[(a, ReadWrite, RangeMapper::All), (a, Read, RangeMapper::All)]), 0b11)).unwrap();
}

#[test]
fn a_plain_kernel_sharing_an_atomic_kernels_access_list_still_races() {
    // The application thread shares equal access lists, and the task manager keeps the checked regions of a list
    // that comes again: a histogram kernel's pass through atomics must not be reused for a plain kernel's accesses.
    let mut tm = plain();
    let a = BufferId(0);
    tm.create_buffer(a, 1, GridBox::d1(0, 16), true, Some("bins".into()));
    let histogram = kernel1(64, &[(a, ReadWrite, RangeMapper::All)]);
    let mut atomic = histogram.clone();
    atomic.atomic_accesses = 1;
    for _ in 0..3 {
        tm.submit(atomic.clone()).unwrap();
    }
    let mut plain_spec = histogram;
    plain_spec.atomic_accesses = 0;
    assert!(std::sync::Arc::ptr_eq(&plain_spec.accesses, &atomic.accesses), "one shared list");
    let e = tm.submit(plain_spec).unwrap_err();
    assert!(matches!(*e.inner, TaskErrorKind::IntraTaskRace { .. }), "{e}");
    assert!(e.to_string().contains("buffer B0 \"bins\""), "{e}");
}

/// A reduction of `buffer` (include_current_value as given).
fn reduction(buffer: BufferId, include_current_value: bool) -> celer_graph::ReductionSpec {
    celer_graph::ReductionSpec {
        id: celer_graph::ReductionId(0),
        buffer,
        op: celer_graph::ReductionOp::Sum,
        include_current_value,
    }
}

fn ids(tm: &TaskManager) -> Vec<u64> {
    tm.tasks().map(|t| t.id.0).collect()
}

#[test]
fn validation_refuses_each_bad_input_with_its_own_error() {
    let mut tm = plain();
    let b = BufferId(0);
    let s = BufferId(1);
    tm.create_buffer(b, 3, GridBox::d3([0; 3], [4; 3]), true, Some("grid".into()));
    tm.create_buffer(s, 1, GridBox::d1(0, 1), true, Some("sum".into()));

    // Three dimensions are the most: a 3D task is accepted, a 4D one refused.
    let t3 = tm.submit(TaskSpec::device_compute(&[4, 4, 4]).access(b, Read, RangeMapper::OneToOne)).unwrap();
    assert_eq!(tm.task(t3).unwrap().consumed(b).unwrap().area(), 64);
    let mut d4 = TaskSpec::device_compute(&[4, 4, 4]);
    d4.dims = 4;
    let err = tm.submit(d4).unwrap_err();
    assert!(matches!(*err.inner, TaskErrorKind::TooManyDimensions { dims: 4 }), "{err}");

    // Horizons and epochs come from the task manager only.
    for kind in [TaskKind::Horizon, TaskKind::Epoch(EpochAction::Barrier)] {
        let err = tm.submit(TaskSpec::new(kind, 0, GridBox::from_extent(&[]))).unwrap_err();
        assert!(matches!(*err.inner, TaskErrorKind::ReservedKind { .. }), "{err}");
    }
    let mut zero = TaskSpec::device_compute(&[4]);
    zero.granularity = [1, 0, 1];
    assert!(matches!(*tm.submit(zero).unwrap_err().inner, TaskErrorKind::ZeroGranularity));

    // A reduction into a buffer the task also accesses is refused; beside an access to another buffer it is fine.
    let mut both = TaskSpec::device_compute(&[1]).access(s, Read, RangeMapper::All);
    both.reductions.push(reduction(s, false));
    let err = tm.submit(both).unwrap_err();
    assert!(matches!(*err.inner, TaskErrorKind::ReductionAndAccess { .. }), "{err}");
    assert!(err.to_string().contains("buffer B1 \"sum\""), "{err}");
    // Reduced into twice: refused as such (not as "accessed"), naming both reductions.
    let mut twice = TaskSpec::device_compute(&[4]).access(b, Read, RangeMapper::All);
    twice.reductions.push(reduction(s, false));
    twice.reductions.push(reduction(s, true));
    let err = tm.submit(twice).unwrap_err();
    assert!(matches!(*err.inner, TaskErrorKind::ReductionTwice { first: 0, second: 1, .. }), "{err}");
    assert!(err.to_string().contains("buffer B1 \"sum\" is reduced into twice"), "{err}");
    let mut beside = TaskSpec::device_compute(&[4]).access(b, Read, RangeMapper::All);
    beside.reductions.push(reduction(s, false));
    let r = tm.submit(beside).unwrap();
    let regions = &tm.task(r).unwrap().regions;
    assert_eq!(regions.len(), 2);
    assert_eq!((regions[1].buffer, regions[1].consumed.area(), regions[1].produced.area()), (s, 0, 1));
    let mut keep = TaskSpec::device_compute(&[4]);
    keep.reductions.push(reduction(s, true));
    let r = tm.submit(keep).unwrap();
    let regions = &tm.task(r).unwrap().regions;
    assert_eq!((regions[0].consumed.area(), regions[0].produced.area()), (1, 1), "the current value is read");

    // Unknown host objects and buffers, by kind.
    let mut ho = TaskSpec::new(TaskKind::Once, 0, GridBox::from_extent(&[]));
    ho.side_effects.push((HostObjectId(7), SideEffectOrder::Sequential));
    assert!(matches!(*tm.submit(ho).unwrap_err().inner, TaskErrorKind::UnknownHostObject { .. }));
    let mut red = TaskSpec::device_compute(&[1]);
    red.reductions.push(reduction(BufferId(9), false));
    assert!(matches!(*tm.submit(red).unwrap_err().inner, TaskErrorKind::UnknownBuffer { .. }));
    // None of the refused tasks took an id.
    assert_eq!(tm.next_task_id(), TaskId(4));
}

#[test]
fn two_accesses_to_one_buffer_make_one_region_entry() {
    let mut tm = plain();
    let b = BufferId(0);
    tm.create_buffer(b, 1, GridBox::d1(0, 16), true, None);
    let t = tm
        .submit(kernel1(1, &[(b, Read, fixed(0, 4)), (b, Read, fixed(8, 12)), (b, DiscardWrite, fixed(2, 6))]))
        .unwrap();
    let regions = &tm.task(t).unwrap().regions;
    assert_eq!(regions.len(), 1, "{regions:?}");
    assert_eq!(regions[0].consumed.boxes(), &[GridBox::d1(0, 4), GridBox::d1(8, 12)]);
    assert_eq!(regions[0].produced.boxes(), &[GridBox::d1(2, 6)]);
}

#[test]
fn collective_once_and_fence_tasks_get_their_fixed_index_space() {
    let mut tm = TaskManager::new(TaskManagerConfig { num_ranks: 3, ..TaskManagerConfig::default() });
    // Whatever the spec says: one item per rank for a collective task, a single item otherwise.
    let c =
        tm.submit(TaskSpec::new(TaskKind::Collective(CollectiveGroupId(0)), 2, GridBox::d2([0, 0], [5, 5]))).unwrap();
    let once = tm.submit(TaskSpec::new(TaskKind::Once, 2, GridBox::d2([1, 1], [5, 5]))).unwrap();
    let fence = tm.submit(TaskSpec::new(TaskKind::Fence, 1, GridBox::EMPTY)).unwrap();
    let t = |id| tm.task(id).unwrap();
    assert_eq!((t(c).spec.dims, t(c).spec.range), (1, GridBox::d1(0, 3)));
    assert_eq!((t(once).spec.dims, t(once).spec.range), (0, GridBox::from_extent(&[])));
    assert_eq!((t(fence).spec.dims, t(fence).spec.range), (0, GridBox::from_extent(&[])));
    // A device kernel keeps its own.
    let k = tm.submit(TaskSpec::device_compute(&[2, 7])).unwrap();
    assert_eq!((tm.task(k).unwrap().spec.dims, tm.task(k).unwrap().spec.range), (2, GridBox::d2([0, 0], [2, 7])));
}

/// Critical path lengths of the horizons created while submitting a chain of `n` read-write tasks with `step`.
fn chain_horizons(step: u32, n: usize) -> Vec<u32> {
    let mut tm = manager(step, 1000);
    let b = BufferId(0);
    tm.create_buffer(b, 1, GridBox::d1(0, 10), true, None);
    let mut out = vec![];
    for _ in 0..n {
        tm.submit(kernel1(10, &[(b, ReadWrite, RangeMapper::OneToOne)])).unwrap();
        for id in tm.drain_new_tasks().collect::<Vec<_>>() {
            let t = tm.task(id).unwrap();
            if t.kind() == TaskKind::Horizon {
                out.push(t.critical_path_length);
            }
        }
    }
    out
}

#[test]
fn horizons_never_come_closer_than_the_horizon_step() {
    for step in 1..=4 {
        let cps = chain_horizons(step, 24);
        assert!(cps.len() >= 24 / (step as usize + 1), "step {step}: {cps:?}");
        for w in cps.windows(2) {
            assert!(w[1] - w[0] >= step, "step {step}: horizons at critical path lengths {cps:?}");
        }
    }
}

#[test]
fn a_chain_gets_a_horizon_every_horizon_step_critical_path_steps() {
    for step in 1..=4 {
        let cps = chain_horizons(step, 24);
        assert!(cps.len() >= 2, "step {step}: {cps:?}");
        for w in cps.windows(2) {
            assert_eq!(w[1] - w[0], step, "step {step}: horizons at critical path lengths {cps:?}");
        }
    }
}

#[test]
fn the_task_managers_getters_report_exact_values() {
    let mut tm = manager(3, 1000);
    assert_eq!(tm.config().horizon_step, 3);
    assert_eq!(tm.config().horizon_max_parallelism, 1000);
    // Only the initial epoch.
    assert_eq!((tm.live_task_count(), tm.live_window_count(), tm.next_task_id()), (1, 1, TaskId(1)));
    assert_eq!((tm.epoch_for_new_tasks(), tm.current_horizon()), (TaskId(0), None));
    assert_eq!(ids(&tm), vec![0]);
    // Arena sizes depend on the allocator's chunk sizes; what they must do is grow with windows and shrink on erasure.
    let one_window = tm.arena_bytes();
    assert!(one_window > 1, "{one_window} bytes for the initial epoch's window");
    assert_eq!(
        format!("{tm:?}"),
        "TaskManager { next_id: 1, live_tasks: 1, epoch_for_new_tasks: T0, current_horizon: None, .. }"
    );

    let (a, b) = (BufferId(0), BufferId(1));
    tm.create_buffer(a, 1, GridBox::d1(0, 10), false, Some("a".into()));
    tm.create_buffer(b, 1, GridBox::d1(0, 10), true, None);
    assert_eq!((tm.buffer_name(a), tm.buffer_name(b), tm.buffer_name(BufferId(5))), (Some("a"), None, None));
    tm.set_buffer_name(b, "b");
    assert_eq!(tm.buffer_name(b), Some("b"));
    assert_eq!(tm.buffer_ident(b).to_string(), "buffer B1 \"b\"");
    assert_eq!(tm.region_map_boxes(), 2, "one writer box per buffer, no readers");

    let w = tm.submit(kernel1(1, &[(a, DiscardWrite, fixed(0, 5))])).unwrap();
    let r = tm.submit(kernel1(1, &[(a, Read, fixed(0, 5)), (b, Read, fixed(2, 4))])).unwrap();
    // a: writers [0, 5) = T1, [5, 10) = nobody, one reader box; b: one writer box, one reader box.
    assert_eq!(tm.region_map_boxes(), 5);
    let mut out = vec![TaskId(99)];
    tm.take_new_tasks(&mut out);
    assert_eq!(out, vec![TaskId(0), w, r]);
    tm.take_new_tasks(&mut out);
    assert_eq!(out, Vec::<TaskId>::new());
    assert_eq!((tm.live_task_count(), tm.next_task_id()), (3, TaskId(3)));
    assert_eq!(ids(&tm), vec![0, 1, 2]);

    // A third task reaches the step: a horizon, which opens a second window.
    let t = tm.submit(kernel1(1, &[(a, ReadWrite, fixed(0, 5))])).unwrap();
    let h = TaskId(t.0 + 1);
    assert_eq!(tm.drain_new_tasks().collect::<Vec<_>>(), vec![t, h]);
    assert_eq!(tm.task(h).unwrap().kind(), TaskKind::Horizon);
    assert_eq!((tm.current_horizon(), tm.epoch_for_new_tasks()), (Some(h), TaskId(0)));
    assert_eq!((tm.live_task_count(), tm.live_window_count()), (5, 2));
    let two_windows = tm.arena_bytes();
    assert!(two_windows > one_window, "{two_windows} bytes for two windows, {one_window} for one");

    // An epoch applies everything; reaching it erases all before it.
    let e = tm.epoch(EpochAction::Barrier);
    assert_eq!(e, TaskId(5));
    assert_eq!((tm.epoch_for_new_tasks(), tm.current_horizon()), (e, None));
    assert_eq!(tm.live_window_count(), 3);
    tm.notify_epoch_reached(e);
    assert_eq!(ids(&tm), vec![5]);
    assert_eq!((tm.live_task_count(), tm.live_window_count()), (1, 1));
    assert!(tm.arena_bytes() < two_windows, "{} bytes left of {two_windows}", tm.arena_bytes());
    assert!(tm.task(w).is_none());
    // Reached again: nothing more to erase.
    tm.notify_epoch_reached(e);
    assert_eq!(ids(&tm), vec![5]);
    // Everything older collapsed into the epoch: a keeps two writer boxes (the epoch and nobody) and no reader (T3's
    // write ended T2's read), b one writer box and one reader box (T2's read, now the epoch's).
    assert_eq!(tm.region_map_boxes(), 2 + 1 + 1);
    assert!(tm.take_diagnostics().is_empty());

    // Destroyed buffers and host objects are unknown afterwards.
    tm.destroy_buffer(a);
    assert!(matches!(
        *tm.submit(kernel1(1, &[(a, Read, RangeMapper::All)])).unwrap_err().inner,
        TaskErrorKind::UnknownBuffer { .. }
    ));
    let ho = HostObjectId(2);
    tm.create_host_object(ho);
    let mut once = TaskSpec::new(TaskKind::Once, 0, GridBox::from_extent(&[]));
    once.side_effects.push((ho, SideEffectOrder::Sequential));
    tm.submit(once.clone()).unwrap();
    tm.destroy_host_object(ho);
    assert!(matches!(*tm.submit(once).unwrap_err().inner, TaskErrorKind::UnknownHostObject { .. }));
}

#[test]
fn reads_of_unwritten_cells_warn_once_per_task_and_buffer() {
    let mut tm = plain();
    let b = BufferId(0);
    tm.create_buffer(b, 1, GridBox::d1(0, 10), false, Some("x".into()));
    tm.submit(kernel1(1, &[(b, Read, fixed(2, 4)), (b, Read, fixed(6, 7))]).named("peek")).unwrap();
    let d = tm.take_diagnostics();
    assert_eq!(d.len(), 1);
    assert_eq!(
        d[0].to_string(),
        "warning: In task T1 \"peek\": buffer B0 \"x\" is read in {[2] - [4], [6] - [7]}, which no task has \
         written; initialize the buffer from host data, or write it first (use a write-only access if the old \
         contents are not needed)"
    );
    assert!(tm.take_diagnostics().is_empty(), "taken");
    let mut quiet =
        TaskManager::new(TaskManagerConfig { uninitialized_read: ErrorPolicy::Ignore, ..TaskManagerConfig::default() });
    quiet.create_buffer(b, 1, GridBox::d1(0, 10), false, None);
    quiet.submit(kernel1(1, &[(b, Read, fixed(2, 4))])).unwrap();
    assert!(quiet.take_diagnostics().is_empty());
}

#[test]
fn horizons_rewrite_older_writers_readers_side_effects_and_groups() {
    // Step 1: a horizon after every task; the one before it is applied.
    let mut tm = manager(1, 1000);
    let b = BufferId(0);
    tm.create_buffer(b, 1, GridBox::d1(0, 10), true, None);
    let ho = HostObjectId(0);
    tm.create_host_object(ho);
    let g = CollectiveGroupId(0);
    let mut once = TaskSpec::new(TaskKind::Once, 0, GridBox::from_extent(&[]));
    once.side_effects.push((ho, SideEffectOrder::Sequential));
    let coll = TaskSpec::new(TaskKind::Collective(g), 1, GridBox::d1(0, 1));
    let w = tm.submit(kernel1(10, &[(b, DiscardWrite, RangeMapper::OneToOne)])).unwrap();
    let s = tm.submit(once.clone()).unwrap();
    let c = tm.submit(coll.clone()).unwrap();
    let rd = tm.submit(kernel1(10, &[(b, Read, RangeMapper::All)])).unwrap();
    // A chain of six more tasks (on another buffer) applies the horizons behind them all.
    let other = BufferId(1);
    tm.create_buffer(other, 1, GridBox::d1(0, 10), true, None);
    for _ in 0..6 {
        tm.submit(kernel1(10, &[(other, ReadWrite, RangeMapper::OneToOne)])).unwrap();
    }
    let epoch = tm.epoch_for_new_tasks();
    assert!(epoch > rd, "{epoch} applied after {rd}");
    let r2 = tm.submit(kernel1(10, &[(b, Read, RangeMapper::All)])).unwrap();
    let w2 = tm.submit(kernel1(10, &[(b, DiscardWrite, RangeMapper::OneToOne)])).unwrap();
    let s2 = tm.submit(once).unwrap();
    let c2 = tm.submit(coll).unwrap();
    let deps = |t: TaskId| tm.task(t).unwrap().dependencies.iter().map(|d| d.task).collect::<Vec<_>>();
    // Every edge that pointed before the applied horizon now points at it.
    for (t, old) in [(r2, w), (s2, s), (c2, c)] {
        assert!(!deps(t).contains(&old), "{t} still depends on {old}: {:?}", deps(t));
        assert!(deps(t).iter().all(|&d| d >= epoch), "{t}: {:?}", deps(t));
    }
    assert_eq!(dep_kind(&tm, w2, r2), Some(DependencyKind::Anti));
    assert!(deps(w2).iter().all(|&d| d >= epoch), "the folded reader {rd} became the horizon: {:?}", deps(w2));
}

#[test]
fn the_task_graph_prints_as_exact_dot() {
    let mut tm = plain();
    let b = BufferId(0);
    tm.create_buffer(b, 1, GridBox::d1(0, 10), false, Some("x".into()));
    let w = tm.submit(kernel1(10, &[(b, DiscardWrite, RangeMapper::OneToOne)]).named("init")).unwrap();
    let r = tm.submit(kernel1(10, &[(b, Read, fixed(0, 4))])).unwrap();
    tm.submit(kernel1(10, &[(b, DiscardWrite, fixed(0, 4))])).unwrap();
    tm.submit(kernel1(10, &[(b, DiscardWrite, fixed(6, 8))])).unwrap();
    tm.submit(TaskSpec::new(TaskKind::Fence, 0, GridBox::from_extent(&[]))).unwrap();
    tm.epoch(EpochAction::Barrier);
    let want = "\
digraph TaskGraph {
  label=\"task graph\";
  node [shape=box fontname=monospace];
  T0 [shape=ellipse label=\"T0 epoch\"];
  T1 [shape=box label=\"T1 device-compute \\\"init\\\"\\n[0] - [10]\\ndiscard_write buffer B0 \\\"x\\\" one_to_one {[0] - [10]}\"];
  T0 -> T1 [color=gray];
  T2 [shape=box label=\"T2 device-compute\\n[0] - [10]\\nread buffer B0 \\\"x\\\" fixed([0] - [4]) {[0] - [4]}\"];
  T1 -> T2 [];
  T3 [shape=box label=\"T3 device-compute\\n[0] - [10]\\ndiscard_write buffer B0 \\\"x\\\" fixed([0] - [4]) {[0] - [4]}\"];
  T2 -> T3 [style=dashed];
  T0 -> T3 [color=gray];
  T4 [shape=box label=\"T4 device-compute\\n[0] - [10]\\ndiscard_write buffer B0 \\\"x\\\" fixed([6] - [8]) {[6] - [8]}\"];
  T1 -> T4 [style=dotted];
  T0 -> T4 [color=gray];
  T5 [shape=box label=\"T5 fence\"];
  T0 -> T5 [color=gray];
  T6 [shape=ellipse label=\"T6 epoch\"];
  T3 -> T6 [color=gray];
  T4 -> T6 [color=gray];
  T5 -> T6 [color=gray];
}
";
    assert_eq!(tm.to_dot(), want, "{}", tm.to_dot());
    // Recorded copies of a subset: edges to tasks left out are dropped.
    let some: Vec<_> = [w, r].iter().map(|&id| tm.task(id).unwrap().clone()).collect();
    let dot = tm.tasks_to_dot(&some);
    assert_eq!(dot.lines().filter(|l| l.contains("->")).collect::<Vec<_>>(), vec!["  T1 -> T2 [];"]);
    assert_eq!(dot.lines().count(), 3 + 2 + 1 + 1);
}

#[test]
fn a_task_over_an_empty_index_space_is_a_no_op_that_touches_nothing() {
    let mut tm = plain();
    let (b, s) = (BufferId(0), BufferId(1));
    tm.create_buffer(b, 1, GridBox::d1(0, 10), false, Some("x".into()));
    tm.create_buffer(s, 1, GridBox::d1(0, 1), false, Some("sum".into()));
    let w = tm.submit(kernel1(10, &[(b, DiscardWrite, RangeMapper::OneToOne)])).unwrap();
    // A kernel and a host task over no items, reading and writing everything through every kind of mapper: their
    // mappers are never applied (a fixed box outside the buffer is no error), so they read and write nothing and
    // depend on no writer; nor does a later reader depend on them.
    for kind in [TaskKind::DeviceCompute, TaskKind::HostCompute] {
        for dims in [1, 2] {
            let spec = TaskSpec::new(kind, dims, GridBox::EMPTY)
                .access(b, Read, RangeMapper::All)
                .access(b, ReadWrite, fixed(20, 30))
                .access(b, DiscardWrite, RangeMapper::OneToOne);
            let e = tm.submit(spec).unwrap();
            let task = tm.task(e).unwrap();
            assert!(task.regions.iter().all(|r| r.consumed.is_empty() && r.produced.is_empty()), "{e}");
            assert_eq!(dep_kind(&tm, e, w), None, "{e} reads nothing of {w}");
            let r = tm.submit(kernel1(10, &[(b, Read, RangeMapper::OneToOne)])).unwrap();
            assert_eq!(dep_kind(&tm, r, w), Some(DependencyKind::True));
            assert_eq!(dep_kind(&tm, r, e), None, "{e} wrote nothing");
        }
    }
    // Still validated: an unknown buffer, a zero granularity.
    let err = tm.submit(TaskSpec::device_compute(&[0]).access(BufferId(9), Read, RangeMapper::All)).unwrap_err();
    assert!(matches!(*err.inner, TaskErrorKind::UnknownBuffer { .. }), "{err}");
    // A reduction over no items still writes its buffer (the identity), and a later reader depends on it.
    let mut red = TaskSpec::device_compute(&[0]);
    red.reductions.push(reduction(s, false));
    let t = tm.submit(red).unwrap();
    assert_eq!(tm.task(t).unwrap().regions[0].produced.area(), 1);
    let r = tm.submit(kernel1(1, &[(s, Read, RangeMapper::All)])).unwrap();
    assert_eq!(dep_kind(&tm, r, t), Some(DependencyKind::True));
}

/// The application thread builds the task graph; the runtime thread replays the built tasks into a task manager of
/// its own and prunes it later than the builder (when the GPU gets there): both give every task, horizon and epoch
/// the same id, kind and dependencies.
#[test]
fn a_replayed_task_stream_gets_the_builders_ids_horizons_and_epochs() {
    use celer_graph::patterns;
    for (step, parallelism) in [(2, 1000), (1, 3), (4, 2)] {
        for w in [
            patterns::soup(4),
            patterns::chain(4),
            patterns::expanding_tree(4),
            patterns::contracting_tree(4),
            patterns::wave_sim(16, 20),
            patterns::jacobi(16, 6),
        ] {
            let (mut builder, mut replica) = (manager(step, parallelism), manager(step, parallelism));
            w.create_buffers(&mut builder);
            w.create_buffers(&mut replica);
            let (mut built, mut replayed) = (Vec::new(), Vec::new());
            let mut new = Vec::new();
            builder.take_new_tasks(&mut new);
            replica.take_new_tasks(&mut Vec::new());
            for (i, spec) in w.tasks.iter().enumerate() {
                let id = builder.submit(spec.clone()).unwrap();
                replayed.push(replica.replay(builder.shared_task(id).unwrap()));
                if i % 7 == 6 {
                    replayed.push(replica.epoch(EpochAction::None));
                    builder.epoch(EpochAction::None);
                }
                builder.take_new_tasks(&mut new);
                built.extend(new.iter().map(|&t| {
                    let t = builder.task(t).unwrap();
                    (t.id, t.kind(), t.dependencies.iter().map(|d| (d.task, d.kind)).collect::<Vec<_>>())
                }));
                let applied = builder.epoch_for_new_tasks();
                builder.notify_epoch_reached(applied);
                let mut got = Vec::new();
                replica.take_new_tasks(&mut got);
                let got: Vec<_> = got
                    .iter()
                    .map(|&t| {
                        let t = replica.task(t).unwrap();
                        (t.id, t.kind(), t.dependencies.iter().map(|d| (d.task, d.kind)).collect::<Vec<_>>())
                    })
                    .collect();
                let tail = &built[built.len() - got.len()..];
                assert_eq!(got, tail, "{} (step {step}, parallelism {parallelism}), task {i}", w.name);
                // The builder prunes at once, as the application thread's does; the replica only every few tasks.
                if i % 5 == 4 {
                    let applied = replica.epoch_for_new_tasks();
                    replica.notify_epoch_reached(applied);
                }
            }
            // A soup grows no critical path: only a narrow front gives it horizons.
            if w.name != "soup" || parallelism < 10 {
                assert!(built.iter().any(|t| t.1 == TaskKind::Horizon), "{}: the stream has horizons", w.name);
            }
            assert_eq!(builder.next_task_id(), replica.next_task_id(), "{}", w.name);
            assert!(replayed.windows(2).all(|p| p[0] < p[1]));
        }
    }
}

/// Erased tasks are reused for new ones only where nobody else holds them: a task another manager (the runtime
/// thread) still holds keeps its contents, and what an erased task held (its payload) goes when it is erased.
#[test]
fn erased_tasks_drop_their_contents_and_shared_ones_stay_intact() {
    let mut tm = manager(1, 1000);
    let a = BufferId(0);
    tm.create_buffer(a, 1, GridBox::d1(0, 16), true, Some("a".into()));
    let payload: std::sync::Arc<dyn std::any::Any + Send + Sync> = std::sync::Arc::new(7u32);
    let mut spec = kernel1(16, &[(a, ReadWrite, RangeMapper::OneToOne)]).named("first");
    spec.payload = Some(payload.clone());
    let first = tm.submit(spec).unwrap();
    let held = tm.shared_task(first).unwrap();
    let other: std::sync::Arc<dyn std::any::Any + Send + Sync> = std::sync::Arc::new(8u32);
    let mut spec = kernel1(16, &[(a, Read, RangeMapper::OneToOne)]).named("second");
    spec.payload = Some(other.clone());
    let second = tm.submit(spec).unwrap();
    assert_eq!((std::sync::Arc::strong_count(&payload), std::sync::Arc::strong_count(&other)), (2, 2));
    let e = tm.epoch(EpochAction::None);
    tm.notify_epoch_reached(e);
    assert!(tm.task(first).is_none() && tm.task(second).is_none());
    // The unheld task's payload went at its erasure; the held task was not reused: payload and all.
    assert_eq!(std::sync::Arc::strong_count(&other), 1, "the erased task dropped its payload");
    assert_eq!(std::sync::Arc::strong_count(&payload), 2, "the held task keeps its payload");
    // Many more tasks, built in the erased (unheld) nodes, change nothing of it.
    for _ in 0..20 {
        let t = tm.submit(kernel1(1, &[(a, ReadWrite, fixed(0, 4))]).named("later")).unwrap();
        let e = tm.epoch(EpochAction::None);
        tm.notify_epoch_reached(e);
        assert_eq!(tm.shared_task(t).map(|t| t.id), None);
    }
    assert_eq!((held.id, held.spec.name.as_deref(), held.kind()), (first, Some("first"), TaskKind::DeviceCompute));
    assert_eq!(held.regions[0].produced, Region::from(GridBox::d1(0, 16)));
    drop(held);
    assert_eq!(std::sync::Arc::strong_count(&payload), 2, "the manager keeps the erased task until it looks again");
    tm.release_erased_tasks();
    assert_eq!(std::sync::Arc::strong_count(&payload), 1, "gone once nobody else held it");
    // A task built in a reused node carries only what its own spec says.
    let t = tm.submit(kernel1(16, &[(a, Read, fixed(2, 3))])).unwrap();
    let task = tm.task(t).unwrap();
    assert!(task.spec.name.is_none() && task.spec.payload.is_none());
    assert_eq!(task.regions.len(), 1);
    assert_eq!(task.regions[0].consumed, Region::from(GridBox::d1(2, 3)));
    assert!(task.regions[0].produced.is_empty());
    assert_eq!(task.dependencies.iter().map(|d| d.task).collect::<Vec<_>>(), vec![TaskId(t.0 - 1)]);
}

/// A builder's erased tasks that a replaying manager (the runtime thread's) still holds are kept, intact, until it
/// lets go; then `release_erased_tasks` drops what they held, and their nodes serve new tasks.
#[test]
fn erased_tasks_another_manager_holds_are_released_once_it_lets_go() {
    use std::sync::Arc;
    let (mut app, mut rt) = (manager(1, 1000), manager(1, 1000));
    let a = BufferId(0);
    for tm in [&mut app, &mut rt] {
        tm.create_buffer(a, 1, GridBox::d1(0, 16), true, Some("a".into()));
    }
    let payload: Arc<dyn std::any::Any + Send + Sync> = Arc::new(7u32);
    let mut spec = kernel1(16, &[(a, ReadWrite, RangeMapper::OneToOne)]).named("first");
    spec.payload = Some(payload.clone());
    let replay = |app: &TaskManager, rt: &mut TaskManager, upto: TaskId| {
        while rt.next_task_id() < upto {
            let id = rt.next_task_id();
            match app.task(id).map(|t| t.kind()) {
                Some(TaskKind::Epoch(action)) => assert_eq!(rt.epoch(action), id),
                Some(TaskKind::Horizon) => panic!("{id}: horizons come from the replay itself"),
                _ => assert_eq!(rt.replay(app.shared_task(id).unwrap()), id),
            }
        }
    };
    let first = app.submit(spec).unwrap();
    replay(&app, &mut rt, app.next_task_id());
    let e = app.epoch(EpochAction::None);
    replay(&app, &mut rt, app.next_task_id());
    app.notify_epoch_reached(e);
    assert!(app.task(first).is_none());
    assert_eq!(rt.task(first).unwrap().spec.name.as_deref(), Some("first"), "the replaying manager's task intact");
    assert_eq!(Arc::strong_count(&payload), 2, "still held by the replaying manager's task");
    app.release_erased_tasks();
    assert_eq!(Arc::strong_count(&payload), 2, "nothing to release while the other manager holds it");
    rt.notify_epoch_reached(e);
    assert_eq!(Arc::strong_count(&payload), 2, "the builder holds the erased task until it looks again");
    app.release_erased_tasks();
    assert_eq!(Arc::strong_count(&payload), 1, "released once nobody else held it");
    // New tasks are built in the released nodes and carry only their own specs.
    let t = app.submit(kernel1(16, &[(a, Read, fixed(2, 3))])).unwrap();
    let task = app.task(t).unwrap();
    assert!(task.spec.name.is_none() && task.spec.payload.is_none());
    assert_eq!(task.regions[0].consumed, Region::from(GridBox::d1(2, 3)));
    assert_eq!(task.dependencies.iter().map(|d| d.task).collect::<Vec<_>>(), vec![e]);
}

#[test]
fn a_repeated_access_list_gets_the_same_regions_and_a_recreated_buffer_is_checked_afresh() {
    let mut tm = plain();
    let b = BufferId(0);
    tm.create_buffer(b, 1, GridBox::d1(0, 64), true, Some("b".into()));
    let halo = RangeMapper::Neighborhood { extent: [1, 0, 0], shape: NeighborhoodShape::AlongAxes };
    // Clones share the access list: the later tasks repeat the first's shape.
    let read = kernel1(64, &[(b, Read, halo), (b, Read, RangeMapper::OneToOne)]);
    let first = tm.submit(read.clone()).unwrap();
    // The second is kept (the list came before), the third and fourth take the kept regions.
    let later: Vec<TaskId> = (0..3).map(|_| tm.submit(read.clone()).unwrap()).collect();
    let consumed = |tm: &TaskManager, t: TaskId| tm.task(t).unwrap().consumed(b).cloned().unwrap();
    assert_eq!(consumed(&tm, first), Region::from(GridBox::d1(0, 64)));
    for t in later {
        assert_eq!(consumed(&tm, t), consumed(&tm, first));
    }
    // The same id now names a smaller buffer: the same list is out of its bounds.
    tm.destroy_buffer(b);
    tm.create_buffer(b, 1, GridBox::d1(0, 32), true, Some("b".into()));
    let e = tm.submit(read.clone()).unwrap_err();
    assert!(matches!(*e.inner, TaskErrorKind::OutOfBounds { .. }), "{e}");
    // Gone: refused as unknown, not served from what was kept.
    tm.destroy_buffer(b);
    let e = tm.submit(read).unwrap_err();
    assert!(matches!(*e.inner, TaskErrorKind::UnknownBuffer { .. }), "{e}");
}

/// The access list of an erased task that nobody else holds is offered, emptied, for a new task's list; one that
/// another holder keeps (a submitting thread's cache, the region cache) is not, and stays intact.
#[test]
fn an_erased_tasks_access_list_nobody_else_holds_is_offered_empty_for_a_new_one() {
    use std::sync::Arc;
    let mut tm = plain();
    let a = BufferId(0);
    tm.create_buffer(a, 1, GridBox::d1(0, 16), true, None);
    let custom = || RangeMapper::Custom {
        name: "same",
        f: Arc::new(|c: &GridBox, _: &GridBox, _: &GridBox| (*c).into()),
        reach: None,
    };
    let shared = kernel1(16, &[(a, ReadWrite, custom())]);
    let kept = Arc::clone(&shared.accesses);
    tm.submit(shared).unwrap();
    let own = kernel1(16, &[(a, Read, custom())]);
    let own_list = Arc::as_ptr(&own.accesses);
    let mapper = match &own.accesses[0].mapper {
        RangeMapper::Custom { f, .. } => Arc::clone(f),
        _ => unreachable!(),
    };
    tm.submit(own).unwrap();
    assert!(tm.spare_access_list().is_none(), "nothing erased yet");
    let e = tm.epoch(EpochAction::None);
    tm.notify_epoch_reached(e);
    let spare = tm.spare_access_list().expect("the erased task's own list");
    assert_eq!(Arc::as_ptr(&spare), own_list);
    assert!(spare.is_empty() && Arc::strong_count(&spare) == 1, "emptied and unshared");
    assert_eq!(Arc::strong_count(&mapper), 1, "what the list held went with its accesses");
    assert!(tm.spare_access_list().is_none(), "the list another holder keeps is not offered");
    assert_eq!((kept.len(), kept[0].mode), (1, ReadWrite), "and stays intact");
}

#[test]
fn a_reduction_including_a_never_written_buffer_warns_and_starts_from_the_identity() {
    let mut tm = plain();
    let (fresh, init, data) = (BufferId(0), BufferId(1), BufferId(2));
    tm.create_buffer(fresh, 1, GridBox::d1(0, 1), false, Some("fresh".into()));
    tm.create_buffer(init, 1, GridBox::d1(0, 1), true, Some("init".into()));
    tm.create_buffer(data, 1, GridBox::d1(0, 8), true, None);
    let reduce = |b: BufferId| {
        let mut spec = kernel1(8, &[(data, Read, RangeMapper::OneToOne)]);
        spec.reductions.push(reduction(b, true));
        spec
    };
    // Host-initialized: the old value is read (a true dependency on the creation), and the flag stays.
    let t = tm.submit(reduce(init)).unwrap();
    let task = tm.task(t).unwrap();
    assert!(task.spec.reductions[0].include_current_value);
    assert_eq!(task.consumed(init).map(|r| r.area()), Some(1));
    assert!(tm.take_diagnostics().is_empty());
    // Never written: a warning naming the task and buffer, and the reduction starts from the identity.
    let t = tm.submit(reduce(fresh)).unwrap();
    let task = tm.task(t).unwrap();
    assert!(!task.spec.reductions[0].include_current_value, "nothing to include");
    assert!(task.consumed(fresh).is_none_or(|r| r.is_empty()));
    let d = tm.take_diagnostics();
    assert_eq!(d.len(), 1, "{d:?}");
    let msg = d[0].to_string();
    assert!(
        msg.contains(&format!("{t}")) && msg.contains("buffer B0 \"fresh\"") && msg.contains("reduce_including"),
        "{msg}"
    );
    // Once written (by that reduction), the next one includes it.
    let t = tm.submit(reduce(fresh)).unwrap();
    assert!(tm.task(t).unwrap().spec.reductions[0].include_current_value);
    assert!(tm.take_diagnostics().is_empty());
    // Under ErrorPolicy::Error the task is refused.
    let mut strict = TaskManager::new(TaskManagerConfig {
        uninitialized_read: ErrorPolicy::Error,
        horizon_step: 1000,
        horizon_max_parallelism: 1000,
        ..TaskManagerConfig::default()
    });
    strict.create_buffer(fresh, 1, GridBox::d1(0, 1), false, Some("fresh".into()));
    strict.create_buffer(data, 1, GridBox::d1(0, 8), true, None);
    let err = strict.submit(reduce(fresh)).unwrap_err();
    assert!(matches!(&*err.inner, TaskErrorKind::UninitializedReduction { .. }), "{err}");
}

#[test]
fn the_race_check_slabs_an_index_space_of_usize_max_items_without_overflow() {
    // A host task over every usize (the split over ranks copes) that reads and writes its even share of a buffer:
    // the race check's slab cuts `lo + (hi - lo) * k / pieces` overflowed, which panicked ("attempt to multiply
    // with overflow", or with wrapped corners "min ... exceeds max").
    let mut tm = plain();
    let b = BufferId(0);
    tm.create_buffer(b, 2, GridBox::d2([0, 0], [16, 4]), true, Some("rows".into()));
    let even = RangeMapper::EvenSplit { granularity: 1 };
    let mut spec = TaskSpec::new(TaskKind::HostCompute, 1, GridBox::d1(0, usize::MAX));
    spec = spec.access(b, ReadWrite, even.clone());
    tm.submit(spec).unwrap();
    let mut spec = TaskSpec::new(TaskKind::HostCompute, 2, GridBox::d2([1, 0], [usize::MAX, usize::MAX]));
    spec = spec.access(b, Read, RangeMapper::Fixed(GridBox::d2([0, 0], [1, 4])));
    spec = spec.access(b, DiscardWrite, RangeMapper::Fixed(GridBox::d2([1, 0], [2, 4])));
    tm.submit(spec).unwrap();
    // A real race over such a space is still found.
    let spec =
        TaskSpec::new(TaskKind::HostCompute, 1, GridBox::d1(0, usize::MAX)).access(b, ReadWrite, RangeMapper::All);
    let e = tm.submit(spec).unwrap_err();
    assert!(matches!(*e.inner, TaskErrorKind::IntraTaskRace { .. }), "{e}");
}

/// Celerity's tree benchmarks: 31 tasks in 5 levels whose column blocks halve (expanding) or double (contracting) and
/// tile the 16 columns; a task depends truly on exactly the tasks of the level before whose blocks overlap its own.
#[test]
fn the_tree_patterns_gather_from_the_overlapping_blocks_of_the_level_before() {
    use celer_graph::patterns;
    for (w, widths) in
        [(patterns::expanding_tree(4), [16, 8, 4, 2, 1]), (patterns::contracting_tree(4), [1, 2, 4, 8, 16])]
    {
        assert_eq!(w.tasks.len(), 31, "{}", w.name);
        let mut tm = plain();
        w.create_buffers(&mut tm);
        // (level, columns, id) per task, levels found from the block widths in submission order.
        let mut tasks: Vec<(usize, [usize; 2], TaskId)> = Vec::new();
        for spec in &w.tasks {
            let cols = [spec.range.min()[1], spec.range.max()[1]];
            let level = widths.iter().position(|&c| c == cols[1] - cols[0]).unwrap();
            assert_eq!(spec.range.max()[0], 4, "{}: every task covers all rows", w.name);
            tasks.push((level, cols, tm.submit(spec.clone()).unwrap()));
        }
        for (level, &c) in widths.iter().enumerate() {
            let mut blocks: Vec<_> = tasks.iter().filter(|t| t.0 == level).map(|t| t.1).collect();
            blocks.sort_unstable();
            let tiling: Vec<_> = (0..16).step_by(c).map(|o| [o, o + c]).collect();
            assert_eq!(blocks, tiling, "{} level {level}", w.name);
        }
        for &(level, cols, id) in tasks.iter().filter(|t| t.0 > 0) {
            for &(_, before, b) in tasks.iter().filter(|t| t.0 == level - 1) {
                let overlaps = before[0] < cols[1] && cols[0] < before[1];
                let kind = dep_kind(&tm, id, b);
                assert_eq!(
                    kind == Some(DependencyKind::True),
                    overlaps,
                    "{}: {id:?} {cols:?} on {b:?} {before:?}: {kind:?}",
                    w.name
                );
            }
        }
    }
}
