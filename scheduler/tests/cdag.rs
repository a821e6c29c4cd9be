//! Command-graph scenarios on simulated ranks, each also replayed by the symbolic executor.

use std::sync::Arc;

use celer_graph::{
    AccessMode::*, BufferId, CommandKind, EpochAction, GridBox, NeighborhoodShape, NodeId, RangeMapper, ReductionId,
    ReductionOp, ReductionSpec, Region, TaskErrorKind, TaskId, TaskKind, TaskSpec,
};
use celer_scheduler::check::{equivalent_to_one_rank, ranks_with, replay};
use celer_scheduler::Simulation;

const B0: BufferId = BufferId(0);
const B1: BufferId = BufferId(1);

fn pushes(sim: &Simulation, rank: usize, task: TaskId) -> Vec<Vec<(NodeId, Region)>> {
    sim.ranks[rank]
        .records()
        .iter()
        .filter(|c| c.task == task)
        .filter_map(|c| match &c.kind {
            CommandKind::Push { targets, .. } => Some(targets.clone()),
            _ => None,
        })
        .collect()
}

fn awaits(sim: &Simulation, rank: usize, task: TaskId) -> Vec<Region> {
    sim.ranks[rank]
        .records()
        .iter()
        .filter(|c| c.task == task)
        .filter_map(|c| match &c.kind {
            CommandKind::AwaitPush { region, .. } => Some(region.clone()),
            _ => None,
        })
        .collect()
}

fn reversed(n: usize) -> RangeMapper {
    RangeMapper::Custom {
        name: "reversed",
        f: Arc::new(move |c: &GridBox, _: &GridBox, _: &GridBox| {
            Region::from(GridBox::d1(n - c.max()[0], n - c.min()[0]))
        }),
        reach: None,
    }
}

#[test]
fn reversed_writers_then_one_to_one_readers_exchange_with_the_mirror_rank() {
    let program = |sim: &mut Simulation| {
        sim.create_buffer(B0, 1, GridBox::d1(0, 16), false, Some("x"));
        sim.submit(TaskSpec::device_compute(&[16]).access(B0, DiscardWrite, reversed(16)))?;
        sim.submit(TaskSpec::device_compute(&[16]).access(B0, Read, RangeMapper::OneToOne))?;
        Ok(())
    };
    let mut sim = Simulation::new(4, true);
    program(&mut sim).unwrap();
    let reader = TaskId(2);
    for r in 0..4 {
        let mirror = 3 - r;
        let p = pushes(&sim, r, reader);
        assert_eq!(p.len(), 1, "N{r} pushes once");
        assert_eq!(p[0], vec![(NodeId(mirror as u64), Region::from(GridBox::d1(4 * mirror, 4 * mirror + 4)))]);
        assert_eq!(awaits(&sim, r, reader), vec![Region::from(GridBox::d1(4 * r, 4 * r + 4))]);
    }
    equivalent_to_one_rank(4, program).unwrap();
}

#[test]
fn two_d_split_writers_then_all_readers_push_once_with_three_targets() {
    let program = |sim: &mut Simulation| {
        sim.create_buffer(B0, 2, GridBox::d2([0, 0], [8, 8]), false, None);
        let mut w = TaskSpec::device_compute(&[8, 8]).access(B0, DiscardWrite, RangeMapper::OneToOne);
        w.hint = celer_graph::SplitHint::TwoD;
        sim.submit(w)?;
        sim.submit(TaskSpec::device_compute(&[8, 8]).access(B0, Read, RangeMapper::All))?;
        Ok(())
    };
    let mut sim = Simulation::new(4, true);
    program(&mut sim).unwrap();
    for r in 0..4 {
        let p = pushes(&sim, r, TaskId(2));
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].len(), 3, "N{r} sends its quarter to the three others");
        assert!(p[0].iter().all(|(_, region)| region.area() == 16));
        assert_eq!(awaits(&sim, r, TaskId(2))[0].area(), 48);
    }
    equivalent_to_one_rank(4, program).unwrap();
}

#[test]
fn neighborhood_reads_never_talk_to_diagonal_neighbours() {
    let program = |sim: &mut Simulation| {
        sim.create_buffer(B0, 2, GridBox::d2([0, 0], [8, 8]), false, None);
        let mut w = TaskSpec::device_compute(&[8, 8]).access(B0, DiscardWrite, RangeMapper::OneToOne);
        w.hint = celer_graph::SplitHint::TwoD;
        sim.submit(w)?;
        let mut r = TaskSpec::device_compute(&[8, 8]).access(
            B0,
            Read,
            RangeMapper::Neighborhood { extent: [1, 1, 0], shape: NeighborhoodShape::AlongAxes },
        );
        r.hint = celer_graph::SplitHint::TwoD;
        sim.submit(r)?;
        Ok(())
    };
    let mut sim = Simulation::new(4, true);
    program(&mut sim).unwrap();
    // 2×2 grid: rank 0's diagonal neighbour is rank 3.
    let targets: Vec<NodeId> = pushes(&sim, 0, TaskId(2))[0].iter().map(|(n, _)| *n).collect();
    assert_eq!(targets, vec![NodeId(1), NodeId(2)]);
    for (_, region) in &pushes(&sim, 0, TaskId(2))[0] {
        assert_eq!(region.area(), 4, "one row or column of the 4×4 quarter");
    }
    equivalent_to_one_rank(4, program).unwrap();
}

#[test]
fn data_already_sent_is_not_sent_again() {
    let mut sim = Simulation::new(2, true);
    sim.create_buffer(B0, 1, GridBox::d1(0, 8), false, None);
    sim.submit(TaskSpec::device_compute(&[8]).access(B0, DiscardWrite, RangeMapper::OneToOne)).unwrap();
    let r1 = sim.submit(TaskSpec::device_compute(&[8]).access(B0, Read, RangeMapper::All)).unwrap();
    let r2 = sim.submit(TaskSpec::device_compute(&[8]).access(B0, Read, RangeMapper::All)).unwrap();
    assert_eq!(pushes(&sim, 0, r1).len(), 1);
    assert!(pushes(&sim, 0, r2).is_empty(), "the second reader finds the data replicated already");
    assert!(awaits(&sim, 1, r2).is_empty());
    replay(&sim).unwrap();
}

#[test]
fn a_buffer_written_on_rank_zero_is_read_everywhere() {
    let program = |sim: &mut Simulation| {
        sim.create_buffer(B0, 1, GridBox::d1(0, 10), false, Some("table"));
        sim.submit(TaskSpec::new(TaskKind::Once, 0, GridBox::from_extent(&[])).access(
            B0,
            DiscardWrite,
            RangeMapper::All,
        ))?;
        sim.submit(TaskSpec::device_compute(&[30]).access(B0, Read, RangeMapper::All))?;
        Ok(())
    };
    let mut sim = Simulation::new(3, true);
    program(&mut sim).unwrap();
    assert_eq!(ranks_with(&sim, TaskId(1), "execution"), vec![NodeId(0)]);
    let p = pushes(&sim, 0, TaskId(2));
    assert_eq!(p[0].iter().map(|(n, _)| *n).collect::<Vec<_>>(), vec![NodeId(1), NodeId(2)]);
    equivalent_to_one_rank(3, program).unwrap();
}

#[test]
fn fences_replicate_data_to_every_rank() {
    let program = |sim: &mut Simulation| {
        sim.create_buffer(B0, 1, GridBox::d1(0, 12), false, None);
        sim.submit(TaskSpec::device_compute(&[12]).access(B0, DiscardWrite, RangeMapper::OneToOne))?;
        let fence = TaskSpec::new(TaskKind::Fence, 0, GridBox::from_extent(&[])).access(B0, Read, RangeMapper::All);
        sim.submit(fence)?;
        Ok(())
    };
    let mut sim = Simulation::new(3, true);
    program(&mut sim).unwrap();
    assert_eq!(ranks_with(&sim, TaskId(2), "fence").len(), 3);
    for r in 0..3 {
        assert_eq!(awaits(&sim, r, TaskId(2))[0].area(), 8);
    }
    equivalent_to_one_rank(3, program).unwrap();
}

#[test]
fn writers_wait_for_local_pushes_and_readers() {
    let mut sim = Simulation::new(2, true);
    sim.create_buffer(B0, 1, GridBox::d1(0, 8), false, None);
    sim.submit(TaskSpec::device_compute(&[8]).access(B0, DiscardWrite, RangeMapper::OneToOne)).unwrap();
    sim.submit(TaskSpec::device_compute(&[8]).access(B0, Read, RangeMapper::All)).unwrap();
    let w = sim.submit(TaskSpec::device_compute(&[8]).access(B0, DiscardWrite, RangeMapper::OneToOne)).unwrap();
    let recs = sim.ranks[0].records();
    let push = recs.iter().find(|c| matches!(c.kind, CommandKind::Push { .. })).unwrap();
    let writer = recs.iter().find(|c| c.task == w && matches!(c.kind, CommandKind::Execution { .. })).unwrap();
    let dep = writer.dependencies.iter().find(|d| d.command == push.id).expect("the rewrite waits for the push");
    assert_eq!(dep.kind, celer_graph::DependencyKind::Anti);
    replay(&sim).unwrap();
}

/// `spec` with reduction R0 into `buffer` (overwriting its old value).
fn reducing(mut spec: TaskSpec, buffer: BufferId, op: ReductionOp) -> TaskSpec {
    spec.reductions.push(ReductionSpec { id: ReductionId(0), buffer, op, include_current_value: false });
    spec
}

fn reduction_program(readers: TaskKind) -> impl Fn(&mut Simulation) -> Result<(), celer_graph::TaskError> {
    move |sim: &mut Simulation| {
        sim.create_buffer(B0, 1, GridBox::d1(0, 64), true, Some("data"));
        sim.create_buffer(B1, 1, GridBox::d1(0, 1), false, Some("sum"));
        sim.submit(reducing(
            TaskSpec::device_compute(&[64]).access(B0, Read, RangeMapper::OneToOne),
            B1,
            ReductionOp::Sum,
        ))?;
        let range = if readers == TaskKind::Once { GridBox::from_extent(&[]) } else { GridBox::d1(0, 64) };
        let dims = if readers == TaskKind::Once { 0 } else { 1 };
        sim.submit(TaskSpec::new(readers, dims, range).access(B1, Read, RangeMapper::All))?;
        Ok(())
    }
}

#[test]
fn reductions_combine_partials_on_every_reading_rank() {
    for ranks in [1, 2, 4] {
        let mut sim = Simulation::new(ranks, true);
        reduction_program(TaskKind::DeviceCompute)(&mut sim).unwrap();
        let reducers = ranks_with(&sim, TaskId(2), "reduction");
        if ranks == 1 {
            assert!(reducers.is_empty(), "one rank needs no reduction command");
        } else {
            assert_eq!(reducers.len(), ranks);
            for r in 0..ranks {
                let p = pushes(&sim, r, TaskId(2));
                assert_eq!(p[0].len(), ranks - 1, "N{r} sends its partial to every other rank");
            }
        }
        equivalent_to_one_rank(ranks, reduction_program(TaskKind::DeviceCompute)).unwrap();
    }
}

#[test]
fn a_reduction_read_by_one_rank_is_gathered_there() {
    let mut sim = Simulation::new(4, true);
    reduction_program(TaskKind::Once)(&mut sim).unwrap();
    assert_eq!(ranks_with(&sim, TaskId(2), "reduction"), vec![NodeId(0)]);
    assert_eq!(ranks_with(&sim, TaskId(2), "push").len(), 3);
    equivalent_to_one_rank(4, reduction_program(TaskKind::Once)).unwrap();
}

/// A reduction read by the ranks of a small task (2 or 3 chunks on 4 ranks), then by every rank.
fn subset_reduction_program(readers: usize) -> impl Fn(&mut Simulation) -> Result<(), celer_graph::TaskError> {
    move |sim: &mut Simulation| {
        sim.create_buffer(B0, 1, GridBox::d1(0, 1), false, Some("sum"));
        sim.create_buffer(B1, 1, GridBox::d1(0, 64), false, Some("out"));
        sim.submit(reducing(TaskSpec::device_compute(&[64]), B0, ReductionOp::Max))?;
        sim.submit(TaskSpec::device_compute(&[readers]).access(B0, Read, RangeMapper::All).access(
            B1,
            DiscardWrite,
            RangeMapper::OneToOne,
        ))?;
        sim.submit(TaskSpec::device_compute(&[64]).access(B0, Read, RangeMapper::All).access(
            B1,
            ReadWrite,
            RangeMapper::OneToOne,
        ))?;
        Ok(())
    }
}

#[test]
fn a_reduction_read_by_some_ranks_is_combined_there_and_served_to_later_readers() {
    for readers in [2, 3] {
        let mut sim = Simulation::new(4, true);
        subset_reduction_program(readers)(&mut sim).unwrap();
        let combining: Vec<NodeId> = (0..readers as u64).map(NodeId).collect();
        assert_eq!(ranks_with(&sim, TaskId(2), "reduction"), combining, "{readers} readers combine");
        // Every rank sends its partial to each combining rank but itself.
        for r in 0..4 {
            let to: usize = pushes(&sim, r, TaskId(2)).iter().map(|p| p.len()).sum();
            assert_eq!(to, readers - usize::from(r < readers), "N{r}'s partial goes to the other combining ranks");
        }
        // The later all-rank reader gets the result from N0 alone, on the ranks that did not combine it.
        let of_sum = |r: usize, kind: &str| -> Vec<CommandKind> {
            sim.ranks[r]
                .records()
                .iter()
                .filter(|c| c.task == TaskId(3) && c.kind.name() == kind)
                .filter(|c| match &c.kind {
                    CommandKind::Push { transfer, .. } | CommandKind::AwaitPush { transfer, .. } => {
                        transfer.buffer == B0
                    }
                    _ => false,
                })
                .map(|c| c.kind.clone())
                .collect()
        };
        let targets: Vec<NodeId> = of_sum(0, "push")
            .iter()
            .flat_map(|k| match k {
                CommandKind::Push { targets, .. } => targets.iter().map(|(n, _)| *n).collect(),
                _ => Vec::new(),
            })
            .collect();
        assert_eq!(
            targets,
            (readers as u64..4).map(NodeId).collect::<Vec<_>>(),
            "{readers} readers: N0 serves the rest"
        );
        for r in 1..4 {
            assert!(of_sum(r, "push").is_empty(), "N{r} does not push the result");
            let awaited = of_sum(r, "await-push").len();
            assert_eq!(awaited, usize::from(r >= readers), "N{r} awaits the result only if it did not combine it");
        }
        replay(&sim).unwrap();
        equivalent_to_one_rank(4, subset_reduction_program(readers)).unwrap();
    }
}

#[test]
fn overlapping_writes_between_ranks_are_refused() {
    let mut sim = Simulation::new(2, true);
    sim.create_buffer(B0, 1, GridBox::d1(0, 8), false, Some("out"));
    let err = sim
        .submit(TaskSpec::device_compute(&[8]).access(B0, DiscardWrite, RangeMapper::All).named("scatter"))
        .unwrap_err();
    let msg = err.to_string();
    assert!(matches!(*err.inner, TaskErrorKind::OverlappingWrite { .. }), "{msg}");
    assert!(msg.contains("task T1 \"scatter\""), "{msg}");
    assert!(msg.contains("buffer B0 \"out\""), "{msg}");
}

#[test]
fn granularity_limits_the_number_of_chunks() {
    let mut sim = Simulation::new(4, true);
    sim.create_buffer(B0, 1, GridBox::d1(0, 8), false, None);
    let mut t = TaskSpec::device_compute(&[8]).access(B0, DiscardWrite, RangeMapper::OneToOne);
    t.granularity = [4, 1, 1];
    let id = sim.submit(t).unwrap();
    assert_eq!(ranks_with(&sim, id, "execution"), vec![NodeId(0), NodeId(1)]);
}

#[test]
fn epochs_and_horizons_appear_on_every_rank() {
    let mut sim = Simulation::new(3, true);
    sim.create_buffer(B0, 1, GridBox::d1(0, 9), true, None);
    for _ in 0..8 {
        sim.submit(TaskSpec::device_compute(&[9]).access(B0, ReadWrite, RangeMapper::OneToOne)).unwrap();
    }
    let e = sim.epoch(EpochAction::Barrier).unwrap();
    assert_eq!(ranks_with(&sim, e, "epoch").len(), 3);
    let horizons = sim.recorded_tasks().iter().filter(|t| t.kind() == TaskKind::Horizon).count();
    assert!(horizons >= 1);
    for g in &sim.ranks {
        assert_eq!(g.records().iter().filter(|c| c.kind.name() == "horizon").count(), horizons);
    }
    replay(&sim).unwrap();
}

#[test]
fn a_long_stencil_keeps_the_command_graph_bounded() {
    let mut sim = Simulation::new(4, false);
    let w = celer_graph::patterns::wave_sim(64, 400);
    for b in &w.buffers {
        sim.create_buffer(b.id, b.dims, b.extent, b.host_initialized, Some(b.name));
    }
    let mut early = (0, 0);
    for (i, t) in w.tasks.iter().enumerate() {
        sim.submit(t.clone()).unwrap();
        let now = (
            sim.ranks.iter().map(|g| g.live_command_count()).max().unwrap(),
            sim.ranks.iter().map(|g| g.region_map_boxes()).max().unwrap(),
        );
        if (20..60).contains(&i) {
            early = (early.0.max(now.0), early.1.max(now.1));
        }
        if i >= 300 {
            assert!(now.0 <= early.0 && now.1 <= early.1, "step {i}: {now:?} grew past {early:?}");
        }
    }
}

#[test]
fn command_graphs_print_as_dot() {
    let mut sim = Simulation::new(2, true);
    sim.create_buffer(B0, 1, GridBox::d1(0, 8), false, None);
    sim.submit(TaskSpec::device_compute(&[8]).access(B0, DiscardWrite, RangeMapper::OneToOne)).unwrap();
    sim.submit(TaskSpec::device_compute(&[8]).access(B0, Read, RangeMapper::All)).unwrap();
    let dot = sim.command_graphs_dot();
    assert!(dot.contains("cluster_0") && dot.contains("cluster_1"));
    assert!(dot.contains("push"), "{dot}");
    assert!(dot.contains("await-push"), "{dot}");
}

#[test]
fn custom_mappers_with_or_without_a_reach_give_the_built_in_mappers_graphs() {
    use celer_graph::patterns::{self, with_custom_mappers};
    for ranks in [1usize, 2, 3, 4, 7] {
        let workloads = [
            patterns::soup(ranks),
            patterns::chain(2 * ranks),
            patterns::expanding_tree(ranks),
            patterns::contracting_tree(2 * ranks),
            patterns::wave_sim(4 * ranks, 12),
            patterns::jacobi(4 * ranks, 6),
        ];
        for w in &workloads {
            let dot = |w: &patterns::Workload| {
                let mut sim = Simulation::new(ranks, true);
                sim.run_workload(w).unwrap();
                sim.command_graphs_dot()
            };
            let built_in = dot(w);
            assert!(built_in.contains("push") || ranks == 1 || w.name == "soup", "{}: a graph with pushes", w.name);
            for bounded in [false, true] {
                assert_eq!(
                    dot(&with_custom_mappers(w, bounded)),
                    built_in,
                    "{} on {ranks} ranks, closures {}",
                    w.name,
                    if bounded { "with a reach" } else { "without a reach" }
                );
            }
        }
    }
}

#[test]
fn a_reach_that_misses_the_chunk_is_refused_on_the_rank_that_runs_it() {
    // Item i reads cell i + 1, but the reach claims item i touches only cell i.
    let shifted = RangeMapper::Custom {
        name: "shifted",
        f: Arc::new(|c: &GridBox, _: &GridBox, _: &GridBox| Region::from(GridBox::d1(c.min()[0] + 1, c.max()[0] + 1))),
        reach: Some(Arc::new(|cells: &GridBox, _: &GridBox| *cells)),
    };
    let mut sim = Simulation::new(2, false);
    sim.create_buffer(B0, 1, GridBox::d1(0, 17), true, Some("x"));
    let err = sim
        .submit(TaskSpec::device_compute(&[16]).access(B0, Read, shifted).named("reader"))
        .expect_err("a wrong reach is refused");
    let message = err.to_string();
    for part in ["reader", "shifted", "\"x\"", "[0] - [8]", "[1] - [9]"] {
        assert!(message.contains(part), "{part:?} missing from: {message}");
    }
    assert!(matches!(*err.inner, TaskErrorKind::MapperReach { .. }), "{err:?}");
}

/// Tasks over an empty index space between a writer and its readers: a kernel and a host task touching the
/// buffers through every mapper, a reduction over no items into B1, then readers of both buffers.
fn empty_range_program(sim: &mut Simulation) -> Result<(), celer_graph::TaskError> {
    sim.create_buffer(B0, 1, GridBox::d1(0, 64), false, Some("data"));
    sim.create_buffer(B1, 1, GridBox::d1(0, 1), false, Some("sum"));
    sim.submit(TaskSpec::device_compute(&[64]).access(B0, DiscardWrite, RangeMapper::OneToOne))?;
    for kind in [TaskKind::DeviceCompute, TaskKind::HostCompute] {
        sim.submit(TaskSpec::new(kind, 1, GridBox::EMPTY).access(B0, Read, RangeMapper::All).access(
            B0,
            DiscardWrite,
            RangeMapper::Fixed(GridBox::d1(0, 64)),
        ))?;
    }
    sim.submit(reducing(TaskSpec::device_compute(&[0]).access(B0, Read, RangeMapper::All), B1, ReductionOp::Sum))?;
    sim.submit(TaskSpec::device_compute(&[64]).access(B0, Read, RangeMapper::All).access(B1, Read, RangeMapper::All))?;
    Ok(())
}

#[test]
fn tasks_over_an_empty_index_space_make_no_commands_except_a_reduction_on_rank_zero() {
    for ranks in [1, 2, 3] {
        let mut sim = Simulation::new(ranks, true);
        empty_range_program(&mut sim).unwrap();
        // T1 writes B0; T2 and T3 have no items: no command anywhere, so no push of B0 for them either.
        for t in [TaskId(2), TaskId(3)] {
            for r in 0..ranks {
                assert!(sim.ranks[r].records().iter().all(|c| c.task != t), "{t} made a command on N{r}");
            }
        }
        // The reduction over no items writes its identity on rank 0 alone (one empty chunk, nothing to gather).
        let exec = |r: usize| {
            sim.ranks[r]
                .records()
                .iter()
                .filter(|c| c.task == TaskId(4))
                .filter_map(|c| match &c.kind {
                    CommandKind::Execution { chunk, .. } => Some(*chunk),
                    _ => None,
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(exec(0), vec![GridBox::EMPTY]);
        for r in 1..ranks {
            assert!(exec(r).is_empty(), "N{r} runs no chunk of the empty reduction");
        }
        // The reader of B0 gets T1's data, the reader of B1 the reduction's result from rank 0.
        replay(&sim).unwrap();
        equivalent_to_one_rank(ranks, empty_range_program).unwrap();
    }
}
