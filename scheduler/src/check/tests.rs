//! Fixed cases for the checker: what a replay returns, and the exact error for each kind of wrong command graph.

use super::*;
use celer_graph::{
    AccessMode::*, EpochAction, RangeMapper, ReductionId, ReductionOp, ReductionSpec, Region, TaskError, TaskSpec,
};

const B0: BufferId = BufferId(0);
const B1: BufferId = BufferId(1);

type Program = fn(&mut Simulation) -> Result<(), TaskError>;

fn write(spec: TaskSpec, b: BufferId) -> TaskSpec {
    spec.access(b, DiscardWrite, RangeMapper::OneToOne)
}

fn read_all(spec: TaskSpec, b: BufferId) -> TaskSpec {
    spec.access(b, Read, RangeMapper::All)
}

/// Two halves written one to one (T1), then read whole by every rank (T2): each rank pushes its half to the
/// other. On both ranks: C1 writes, C2 pushes, C3 awaits, C4 reads.
fn exchange(sim: &mut Simulation) -> Result<(), TaskError> {
    sim.create_buffer(B0, 1, GridBox::d1(0, 8), false, Some("x"));
    sim.submit(write(TaskSpec::device_compute(&[8]), B0))?;
    sim.submit(read_all(TaskSpec::device_compute(&[8]), B0))?;
    Ok(())
}

/// `exchange`, then a rewrite (T3: C5) and the same exchange again (T4: C6 pushes, C7 awaits, C8 reads).
fn exchange_twice(sim: &mut Simulation) -> Result<(), TaskError> {
    exchange(sim)?;
    sim.submit(write(TaskSpec::device_compute(&[8]), B0))?;
    sim.submit(read_all(TaskSpec::device_compute(&[8]), B0))?;
    Ok(())
}

/// A write (T1: C1), an epoch (T2: C2), and a read of everything (T3: C3 pushes, C4 awaits, C5 reads): the push
/// depends on the epoch rather than on the writer.
fn across_an_epoch(sim: &mut Simulation) -> Result<(), TaskError> {
    sim.create_buffer(B0, 1, GridBox::d1(0, 8), false, None);
    sim.submit(write(TaskSpec::device_compute(&[8]), B0))?;
    sim.epoch(EpochAction::None)?;
    sim.submit(read_all(TaskSpec::device_compute(&[8]), B0))?;
    Ok(())
}

/// A sum over 64 items into B1 (T1, reduction R0, adding B1's value) and a task that reads it on every rank (T2).
fn reduction(sim: &mut Simulation) -> Result<(), TaskError> {
    reduction_of(sim, true)
}

fn reduction_of(sim: &mut Simulation, include_current_value: bool) -> Result<(), TaskError> {
    sim.create_buffer(B0, 1, GridBox::d1(0, 64), true, Some("data"));
    sim.create_buffer(B1, 1, GridBox::d1(0, 1), true, Some("sum"));
    let mut sum = TaskSpec::device_compute(&[64]).access(B0, Read, RangeMapper::OneToOne);
    let op = ReductionOp::Sum;
    sum.reductions.push(ReductionSpec { id: ReductionId(0), buffer: B1, op, include_current_value });
    sim.submit(sum)?;
    sim.submit(read_all(TaskSpec::device_compute(&[64]), B1))?;
    Ok(())
}

fn simulate(ranks: usize, program: Program) -> Simulation {
    let mut sim = Simulation::new(ranks, true);
    program(&mut sim).unwrap();
    replay(&sim).expect("the generator's own graph replays");
    sim
}

/// The index in rank `r`'s records of the only command of `task` named `kind`.
fn find(sim: &Simulation, r: usize, task: u64, kind: &str) -> usize {
    let found: Vec<usize> = (sim.ranks[r].records().iter().enumerate())
        .filter(|(_, c)| c.task == TaskId(task) && c.kind.name() == kind)
        .map(|(i, _)| i)
        .collect();
    assert_eq!(found.len(), 1, "N{r}: {kind} commands of T{task}");
    found[0]
}

fn records(sim: &mut Simulation, r: usize) -> &mut Vec<Command> {
    sim.ranks[r].records_mut()
}

/// Drops the dependency of record `i` of rank `r` on `on`.
fn drop_dependency(sim: &mut Simulation, r: usize, i: usize, on: u64) {
    let deps = &mut records(sim, r)[i].dependencies;
    let before = deps.len();
    deps.retain(|d| d.command != CommandId(on));
    assert_eq!(deps.len() + 1, before, "N{r} record {i} depended on C{on}");
}

fn error(sim: &Simulation) -> String {
    replay(sim).unwrap_err().to_string()
}

fn cells(range: std::ops::Range<usize>, v: Option<u64>) -> BTreeMap<Cell, Option<TaskId>> {
    range.map(|c| (c, v.map(TaskId))).collect()
}

#[test]
fn cells_are_numbered_row_major_from_the_extents_corner() {
    let extent = GridBox::d2([2, 3], [5, 7]);
    let got: Vec<Cell> = cells_of(&GridBox::d2([3, 4], [5, 6]), &extent).collect();
    assert_eq!(got, vec![5, 6, 9, 10]);
    assert_eq!(cells_of(&GridBox::EMPTY, &extent).count(), 0);
    let e3 = GridBox::d3([1, 1, 1], [3, 3, 4]);
    let got: Vec<Cell> = cells_of(&GridBox::d3([2, 1, 2], [3, 3, 4]), &e3).collect();
    assert_eq!(got, vec![7, 8, 10, 11]);
}

#[test]
fn a_replay_returns_the_writer_every_read_cell_held_on_any_rank_count() {
    for ranks in [1, 2, 3] {
        let sim = simulate(ranks, exchange_twice);
        let reads = replay(&sim).unwrap();
        // A chunk that only writes a buffer still leaves an (empty) entry.
        let want: Reads = [
            ((TaskId(1), B0), cells(0..0, None)),
            ((TaskId(2), B0), cells(0..8, Some(1))),
            ((TaskId(3), B0), cells(0..0, None)),
            ((TaskId(4), B0), cells(0..8, Some(3))),
        ]
        .into();
        assert_eq!(reads, want, "{ranks} ranks");
    }
}

#[test]
fn host_initialized_cells_hold_the_init_epoch_and_others_nothing() {
    let program: Program = |sim| {
        sim.create_buffer(B0, 1, GridBox::d1(0, 4), true, None);
        sim.create_buffer(B1, 1, GridBox::d1(0, 2), false, None);
        sim.submit(read_all(read_all(TaskSpec::device_compute(&[4]), B0), B1))?;
        Ok(())
    };
    let reads = replay(&simulate(2, program)).unwrap();
    let want: Reads = [((TaskId(1), B0), cells(0..4, Some(0))), ((TaskId(1), B1), cells(0..2, None))].into();
    assert_eq!(reads, want);
}

#[test]
fn a_fence_reads_the_whole_range_on_every_rank() {
    let program: Program = |sim| {
        sim.create_buffer(B0, 1, GridBox::d1(0, 8), false, None);
        sim.submit(write(TaskSpec::device_compute(&[8]), B0))?;
        sim.submit(read_all(TaskSpec::new(TaskKind::Fence, 0, GridBox::from_extent(&[])), B0))?;
        Ok(())
    };
    let sim = simulate(3, program);
    assert_eq!(ranks_with(&sim, TaskId(2), "fence").len(), 3);
    let want: Reads = [((TaskId(1), B0), cells(0..0, None)), ((TaskId(2), B0), cells(0..8, Some(1)))].into();
    assert_eq!(replay(&sim).unwrap(), want);
}

#[test]
fn a_reduction_reads_the_current_value_on_rank_0_and_yields_the_reducing_tasks_value() {
    for ranks in [1, 3] {
        let reads = replay(&simulate(ranks, reduction)).unwrap();
        let want: Reads = [
            ((TaskId(1), B0), cells(0..64, Some(0))),
            ((TaskId(1), B1), cells(0..1, Some(0))),
            ((TaskId(2), B1), cells(0..1, Some(1))),
        ]
        .into();
        assert_eq!(reads, want, "{ranks} ranks");
        // Without the current value, no rank reads B1 for the reduction.
        let mut sim = Simulation::new(ranks, true);
        reduction_of(&mut sim, false).unwrap();
        let want: Reads = [
            ((TaskId(1), B0), cells(0..64, Some(0))),
            ((TaskId(1), B1), cells(0..0, None)),
            ((TaskId(2), B1), cells(0..1, Some(1))),
        ]
        .into();
        assert_eq!(replay(&sim).unwrap(), want, "{ranks} ranks");
    }
}

#[test]
fn a_replay_needs_every_rank() {
    let mut sim = Simulation::with_ranks(2, &[NodeId(0)], true, Default::default());
    exchange(&mut sim).unwrap();
    assert_eq!(error(&sim), "replay needs every rank simulated (1 of 2)");
}

#[test]
fn a_push_must_depend_on_the_writer_of_what_it_sends() {
    let mut sim = simulate(2, exchange);
    let push = find(&sim, 0, 2, "push");
    drop_dependency(&mut sim, 0, push, 1);
    assert_eq!(error(&sim), "N0 C2: push of B0 reads cell 0 written by C1, but does not depend on it");
}

#[test]
fn a_later_horizon_or_epoch_orders_a_command_after_the_writer_but_a_later_plain_command_does_not() {
    // The generator's graph: the push depends on the epoch C2, which is newer than the writer C1.
    let mut sim = simulate(2, across_an_epoch);
    let push = find(&sim, 1, 3, "push");
    assert_eq!(records(&mut sim, 1)[push].dependencies[0].command, CommandId(2));
    // An older epoch does not order it.
    records(&mut sim, 1)[push].dependencies[0].command = CommandId(0);
    assert_eq!(error(&sim), "N1 C3: push of B0 reads cell 4 written by C1, but does not depend on it");
    // Nor does a newer command that is no horizon or epoch (the await-push C4).
    records(&mut sim, 1)[push].dependencies[0].command = CommandId(4);
    assert_eq!(error(&sim), "N1 C3: push of B0 reads cell 4 written by C1, but does not depend on it");
}

#[test]
fn a_region_pushed_twice_to_one_rank_without_a_rewrite_is_an_error() {
    let mut sim = simulate(2, exchange);
    let push = find(&sim, 0, 2, "push");
    let copy = records(&mut sim, 0)[push].clone();
    records(&mut sim, 0).insert(push + 1, copy);
    assert_eq!(error(&sim), "N0 C2: cell 0 of B0 is pushed to N1 again without a rewrite");
}

#[test]
fn a_rewrite_allows_pushing_the_same_cells_again() {
    // simulate() replays it: the second exchange pushes every cell a second time, after T3 rewrote them.
    let sim = simulate(3, exchange_twice);
    assert_eq!(find(&sim, 2, 4, "push"), find(&sim, 2, 2, "push") + 4);
}

#[test]
fn a_rewrite_must_depend_on_the_pushes_that_read_the_old_cells() {
    let mut sim = simulate(2, exchange_twice);
    let rewrite = find(&sim, 0, 3, "execution");
    drop_dependency(&mut sim, 0, rewrite, 2);
    assert_eq!(error(&sim), "N0 C5: overwrites cell 0 of B0 read by C2 without an anti-dependency");
}

#[test]
fn a_rewrite_must_depend_on_the_chunks_that_read_the_old_cells() {
    let mut sim = simulate(2, exchange_twice);
    let rewrite = find(&sim, 0, 3, "execution");
    drop_dependency(&mut sim, 0, rewrite, 4);
    assert_eq!(error(&sim), "N0 C5: overwrites cell 0 of B0 read by C4 without an anti-dependency");
}

#[test]
fn an_await_push_must_depend_on_the_local_readers_of_what_it_overwrites() {
    let mut sim = simulate(2, exchange_twice);
    let await_push = find(&sim, 0, 4, "await-push");
    drop_dependency(&mut sim, 0, await_push, 4);
    assert_eq!(error(&sim), "N0 C7: overwrites cell 4 of B0 read by C4 without an anti-dependency");
}

#[test]
fn a_write_of_unread_cells_must_be_ordered_after_their_last_writer() {
    let program: Program = |sim| {
        sim.create_buffer(B0, 1, GridBox::d1(0, 8), false, None);
        sim.submit(write(TaskSpec::device_compute(&[8]), B0))?;
        sim.submit(write(TaskSpec::device_compute(&[8]), B0))?;
        Ok(())
    };
    let mut sim = simulate(2, program);
    let second = find(&sim, 1, 2, "execution");
    drop_dependency(&mut sim, 1, second, 1);
    assert_eq!(error(&sim), "N1 C2: overwrites cell 4 of B0 written by C1 without ordering");
}

#[test]
fn a_chunk_that_reads_and_writes_a_cell_needs_no_dependency_on_itself() {
    let program: Program = |sim| {
        sim.create_buffer(B0, 1, GridBox::d1(0, 8), true, None);
        sim.submit(TaskSpec::device_compute(&[8]).access(B0, ReadWrite, RangeMapper::OneToOne))?;
        sim.submit(TaskSpec::device_compute(&[8]).access(B0, ReadWrite, RangeMapper::OneToOne))?;
        Ok(())
    };
    let reads = replay(&simulate(2, program)).unwrap();
    assert_eq!(reads, [((TaskId(1), B0), cells(0..8, Some(0))), ((TaskId(2), B0), cells(0..8, Some(1)))].into());
}

#[test]
fn an_await_push_must_receive_exactly_its_region() {
    let mut sim = simulate(2, exchange);
    let await_push = find(&sim, 0, 2, "await-push");
    let CommandKind::AwaitPush { region, .. } = &mut records(&mut sim, 0)[await_push].kind else { unreachable!() };
    *region = Region::from(GridBox::d1(3, 8));
    assert_eq!(error(&sim), "N0 C3: await-push T2.B0 waits for {[3] - [8]} but receives cells [4, 5, 6, 7]");
}

#[test]
fn every_push_must_be_awaited() {
    let mut sim = simulate(2, exchange);
    let await_push = find(&sim, 1, 2, "await-push");
    records(&mut sim, 1).remove(await_push);
    let err = error(&sim);
    assert!(err.starts_with("T2: pushes to {") && err.ends_with("} are not all awaited"), "{err}");
}

#[test]
fn a_chunk_must_depend_on_the_writer_of_what_it_reads() {
    let mut sim = simulate(2, exchange);
    let reader = find(&sim, 0, 2, "execution");
    drop_dependency(&mut sim, 0, reader, 1);
    assert_eq!(error(&sim), "N0 C4 (T2): reads cell 0 of B0 written by C1 without depending on it");
}

#[test]
fn ranks_that_read_different_writers_of_a_cell_are_an_error() {
    // N1 neither sends its half nor does N0 wait for it: N0 reads the cells unwritten.
    let mut sim = simulate(2, exchange);
    let push = find(&sim, 1, 2, "push");
    records(&mut sim, 1).remove(push);
    let await_push = find(&sim, 0, 2, "await-push");
    records(&mut sim, 0).remove(await_push);
    assert_eq!(error(&sim), "T2: cell 4 of B0 reads Some(T1) on N1 but None elsewhere");
}

#[test]
fn a_reduction_needs_a_partial_result_from_every_other_rank() {
    let mut sim = simulate(3, reduction);
    let push = find(&sim, 2, 2, "push");
    records(&mut sim, 2).remove(push);
    // N0 waits first, and hears only from N1.
    let await_push = find(&sim, 0, 2, "await-push");
    let id = records(&mut sim, 0)[await_push].id;
    let err = error(&sim);
    assert_eq!(err, format!("N0 {id}: reduction transfer T2.B1.R0 heard from {{1}}, expected {{1, 2}}"));
}

#[test]
fn a_reduction_command_of_an_unknown_reduction_is_an_error() {
    let mut sim = simulate(2, reduction);
    let combine = find(&sim, 0, 2, "reduction");
    let c = &mut records(&mut sim, 0)[combine];
    let id = c.id;
    let CommandKind::Reduction { reduction, .. } = &mut c.kind else { unreachable!() };
    *reduction = ReductionId(9);
    assert_eq!(error(&sim), format!("N0 {id}: unknown R9"));
}

#[test]
fn every_rank_has_exactly_one_command_per_horizon_or_epoch() {
    let mut sim = simulate(2, across_an_epoch);
    let epoch = find(&sim, 1, 2, "epoch");
    let copy = records(&mut sim, 1)[epoch].clone();
    records(&mut sim, 1).push(copy);
    assert_eq!(error(&sim), "N1: 2 commands for sync task T2");
    let mut sim = simulate(2, across_an_epoch);
    let epoch = find(&sim, 0, 2, "epoch");
    records(&mut sim, 0).remove(epoch);
    // Without the epoch, C3 depends on nothing that orders it after C1.
    let err = error(&sim);
    assert!(err == "N0: 0 commands for sync task T2", "{err}");
}

#[test]
fn a_program_that_reads_differently_on_several_ranks_is_reported_read_by_read() {
    let program = |sim: &mut Simulation| {
        for b in 0..3 {
            sim.create_buffer(BufferId(b), 1, GridBox::d1(0, 2), true, None);
        }
        // T1 writes B0 on one rank, B1 on several; T2 reads B0; T3 reads B2, the same everywhere.
        let written = if sim.num_ranks() == 1 { B0 } else { B1 };
        sim.submit(write(TaskSpec::device_compute(&[2]), written))?;
        sim.submit(read_all(TaskSpec::device_compute(&[2]), B0))?;
        sim.submit(read_all(TaskSpec::device_compute(&[2]), BufferId(2)))?;
        Ok(())
    };
    let err = equivalent_to_one_rank(2, program).unwrap_err().to_string();
    assert_eq!(
        err,
        "2 ranks read differently from one rank:\n  \
         T1/B0: one rank {}, 2 ranks None\n  \
         T2/B0: one rank {0: Some(T1), 1: Some(T1)}, 2 ranks Some({0: Some(T0), 1: Some(T0)})\n  \
         T1/B1: only read with 2 ranks\n"
    );
    equivalent_to_one_rank(3, exchange_twice).unwrap();
}

#[test]
fn a_program_that_fails_names_the_rank_count() {
    let failing = |sim: &mut Simulation| {
        sim.create_buffer(B0, 1, GridBox::d1(0, 2), false, None);
        sim.submit(write(TaskSpec::device_compute(&[4]), B0))?;
        Ok(())
    };
    let mut sim = Simulation::new(1, true);
    let e = failing(&mut sim).unwrap_err();
    assert_eq!(equivalent_to_one_rank(2, failing).unwrap_err().to_string(), format!("one rank: {e}"));
    let only_on_three = |sim: &mut Simulation| if sim.num_ranks() == 3 { failing(sim) } else { exchange(sim) };
    let mut sim = Simulation::new(3, true);
    let e = failing(&mut sim).unwrap_err();
    assert_eq!(equivalent_to_one_rank(3, only_on_three).unwrap_err().to_string(), format!("3 ranks: {e}"));
    // A replay error of the one-rank run comes as it is.
    let partial = |sim: &mut Simulation| {
        exchange(sim)?;
        sim.ranks[0].records_mut().clear();
        Ok(())
    };
    assert_eq!(equivalent_to_one_rank(2, partial).unwrap_err().to_string(), "N0: 0 commands for sync task T0");
}

#[test]
fn ranks_with_lists_the_ranks_holding_a_kind_of_command() {
    let sim = simulate(3, reduction);
    assert_eq!(ranks_with(&sim, TaskId(2), "reduction"), vec![NodeId(0), NodeId(1), NodeId(2)]);
    assert_eq!(ranks_with(&sim, TaskId(1), "reduction"), vec![]);
    assert_eq!(ranks_with(&sim, TaskId(1), "execution"), vec![NodeId(0), NodeId(1), NodeId(2)]);
}

#[test]
fn check_errors_debug_print_as_their_sentence() {
    let e = CheckError("N0 C1: something".into());
    assert_eq!(format!("{e:?}"), "N0 C1: something");
    assert_eq!(e.to_string(), "N0 C1: something");
}
