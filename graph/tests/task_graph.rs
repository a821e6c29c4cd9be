//! Task-graph dependencies, horizons, epochs, pruning and bad input.

use celer_graph::{
    AccessMode::{self, *},
    BufferId, CollectiveGroupId, DependencyKind, DependencyOrigin, EpochAction, ErrorPolicy, GridBox, HostObjectId,
    NeighborhoodShape, RangeMapper, SideEffectOrder, TaskErrorKind, TaskId, TaskKind, TaskManager, TaskManagerConfig,
    TaskSpec,
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
    let coll = TaskSpec::new(TaskKind::Collective(g), 1, GridBox::d1(0, 1));
    let c1 = tm.submit(coll.clone()).unwrap();
    let c2 = tm.submit(coll).unwrap();
    let d = tm.task(c2).unwrap().dependencies.iter().find(|d| d.task == c1).copied().unwrap();
    assert_eq!(d.origin, DependencyOrigin::CollectiveGroupSerialization);
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
    let empty = tm.submit(TaskSpec::device_compute(&[0])).unwrap_err();
    assert!(matches!(*empty.inner, TaskErrorKind::EmptyRange { .. }), "{empty}");
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
