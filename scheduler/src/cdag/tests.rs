//! Fixed cases for the generator's interface: the commands and dependencies it builds, what an epoch rewrites,
//! pruning, the getters and the DOT and debug output.

use celer_graph::{
    AccessMode::*, RangeMapper, ReductionOp, ReductionSpec, TaskManager, TaskManagerConfig, TaskSpec, TransferId,
};

use super::*;
use crate::sim::Simulation;
use celer_graph::TaskErrorKind;

const B0: BufferId = BufferId(0);
const B1: BufferId = BufferId(1);

fn write(b: BufferId) -> TaskSpec {
    TaskSpec::device_compute(&[8]).access(b, DiscardWrite, RangeMapper::OneToOne)
}

fn read_all(b: BufferId) -> TaskSpec {
    TaskSpec::device_compute(&[8]).access(b, Read, RangeMapper::All)
}

/// Halves written one to one (T1), then read whole by both ranks (T2). On each rank: C1 writes, C2 pushes, C3
/// awaits, C4 reads.
fn exchange() -> Simulation {
    let mut sim = Simulation::new(2, true);
    sim.create_buffer(B0, 1, GridBox::d1(0, 8), false, Some("x"));
    sim.submit(write(B0)).unwrap();
    sim.submit(read_all(B0)).unwrap();
    sim
}

/// A command as (id, kind, [(dependency, kind)]).
type Node = (u64, &'static str, Vec<(u64, DependencyKind)>);

/// Each command of rank `r`.
fn graph(sim: &Simulation, r: usize) -> Vec<Node> {
    let deps = |c: &Command| c.dependencies.iter().map(|d| (d.command.0, d.kind)).collect();
    sim.ranks[r].records().iter().map(|c| (c.id.0, c.kind.name(), deps(c))).collect()
}

use DependencyKind::{Anti, Output, True};

#[test]
fn an_exchange_pushes_the_own_half_and_awaits_the_other() {
    let sim = exchange();
    for r in 0..2 {
        assert_eq!(
            graph(&sim, r),
            vec![
                (0, "epoch", vec![]),
                (1, "execution", vec![(0, True)]),
                (2, "push", vec![(1, True)]),
                (3, "await-push", vec![(0, True)]),
                (4, "execution", vec![(1, True), (3, True)]),
            ],
            "N{r}"
        );
        let other = 1 - r as u64;
        let kinds: Vec<&CommandKind> = sim.ranks[r].records().iter().map(|c| &c.kind).collect();
        let half = |k: u64| Region::from(GridBox::d1(4 * k as usize, 4 * k as usize + 4));
        let transfer = TransferId { task: TaskId(2), buffer: B0, reduction: None };
        assert_eq!(kinds[2], &CommandKind::Push { transfer, targets: vec![(NodeId(other), half(r as u64))] });
        assert_eq!(kinds[3], &CommandKind::AwaitPush { transfer, region: half(other) });
    }
}

#[test]
fn a_rewrite_depends_on_the_readers_and_a_write_of_unread_cells_on_the_writer() {
    let mut sim = exchange();
    sim.submit(write(B0)).unwrap(); // T3: C5 overwrites what the push C2 and the chunk C4 read
    sim.submit(write(B0)).unwrap(); // T4: C6 overwrites C5's unread cells
    let g = graph(&sim, 0);
    // Neither has a true dependency, so both also depend on the init epoch.
    assert_eq!(g[5], (5, "execution", vec![(2, Anti), (4, Anti), (1, Output), (0, True)]));
    assert_eq!(g[6], (6, "execution", vec![(5, Output), (0, True)]));
}

#[test]
fn build_task_returns_the_new_commands_in_order() {
    let mut tm = TaskManager::new(TaskManagerConfig { num_ranks: 2, ..Default::default() });
    tm.drain_new_tasks().for_each(drop);
    let mut g =
        CommandGraphGenerator::new(CdagConfig { num_ranks: 2, local: NodeId(1), record: false, devices_per_rank: 1 });
    assert_eq!(g.local(), NodeId(1));
    tm.create_buffer(B0, 1, GridBox::d1(0, 8), false, None);
    g.create_buffer(B0, 1, GridBox::d1(0, 8), false, None);
    let mut batches = Vec::new();
    for spec in [write(B0), read_all(B0)] {
        tm.submit(spec).unwrap();
        let new: Vec<TaskId> = tm.drain_new_tasks().collect();
        for t in new {
            batches.push(g.build_task(tm.task(t).unwrap()).unwrap().to_vec());
        }
    }
    let epoch = tm.epoch(EpochAction::None);
    batches.push(g.build_task(tm.task(epoch).unwrap()).unwrap().to_vec());
    let ids = |v: &[u64]| v.iter().map(|&i| CommandId(i)).collect::<Vec<_>>();
    assert_eq!(batches, vec![ids(&[1]), ids(&[2, 3, 4]), ids(&[5])]);
    assert!(g.records().is_empty(), "recording is off");
    assert_eq!(g.command(CommandId(5)).map(|c| c.kind.name()), Some("epoch"));
    assert_eq!(g.command(CommandId(3)).map(|c| c.kind.name()), Some("await-push"));
    assert_eq!(g.live_command_count(), 6);
}

/// A write (T1: C1), an epoch (T2: C2), a read of everything (T3: C3 pushes, C4 awaits, C5 reads), an epoch
/// (T4: C6) and a write (T5: C7).
fn across_epochs() -> Simulation {
    let mut sim = Simulation::new(2, true);
    sim.create_buffer(B0, 1, GridBox::d1(0, 8), false, None);
    sim.submit(write(B0)).unwrap();
    sim.epoch(EpochAction::None).unwrap();
    sim.submit(read_all(B0)).unwrap();
    sim.epoch(EpochAction::None).unwrap();
    sim.submit(write(B0)).unwrap();
    sim
}

#[test]
fn an_epoch_stands_in_for_every_older_command() {
    let sim = across_epochs();
    assert_eq!(
        graph(&sim, 1),
        vec![
            (0, "epoch", vec![]),
            (1, "execution", vec![(0, True)]),
            (2, "epoch", vec![(1, True)]),
            (3, "push", vec![(2, True)]),
            (4, "await-push", vec![(2, True)]),
            (5, "execution", vec![(2, True), (4, True)]),
            (6, "epoch", vec![(3, True), (5, True)]),
            // Its anti- and output dependencies are on the epoch, which also stands in for the last epoch.
            (7, "execution", vec![(6, True)]),
        ]
    );
}

/// One rank's task manager and recording command-graph generator, the first epoch drained, with buffer B0 of 8
/// cells in both.
fn one_rank_recording() -> (TaskManager, CommandGraphGenerator) {
    let mut tm = TaskManager::new(TaskManagerConfig { num_ranks: 1, ..Default::default() });
    tm.drain_new_tasks().for_each(drop);
    let mut g =
        CommandGraphGenerator::new(CdagConfig { num_ranks: 1, local: NodeId(0), record: true, devices_per_rank: 1 });
    tm.create_buffer(B0, 1, GridBox::d1(0, 8), false, None);
    g.create_buffer(B0, 1, GridBox::d1(0, 8), false, None);
    (tm, g)
}

#[test]
fn reaching_an_epoch_frees_the_commands_before_it() {
    let (mut tm, mut g) = one_rank_recording();
    let build = |tm: &mut TaskManager, g: &mut CommandGraphGenerator| {
        for t in tm.drain_new_tasks().collect::<Vec<_>>() {
            g.build_task(tm.task(t).unwrap()).unwrap();
        }
    };
    tm.submit(write(B0)).unwrap(); // T1: C1
    build(&mut tm, &mut g);
    let first = tm.epoch(EpochAction::None); // T2: C2
    build(&mut tm, &mut g);
    tm.submit(write(B0)).unwrap(); // T3: C3
    build(&mut tm, &mut g);
    let second = tm.epoch(EpochAction::None); // T4: C4
    build(&mut tm, &mut g);
    assert_eq!(g.live_command_count(), 5);
    g.notify_epoch_reached(TaskId(3)); // not an epoch: frees nothing
    assert_eq!(g.live_command_count(), 5);
    g.notify_epoch_reached(first);
    assert_eq!(g.live_command_count(), 3);
    assert!(g.command(CommandId(1)).is_none() && g.command(CommandId(0)).is_none());
    assert_eq!(g.command(CommandId(2)).map(|c| c.id), Some(CommandId(2)));
    g.notify_epoch_reached(second);
    assert_eq!(g.live_command_count(), 1);
    assert!(g.command(CommandId(3)).is_none());
    assert_eq!(g.command(CommandId(4)).map(|c| c.id), Some(CommandId(4)));
    assert_eq!(g.records().len(), 5, "records survive pruning");
}

#[test]
fn stopping_the_recording_keeps_the_commands_before_it_and_the_dot_says_how_many_were_not_kept() {
    let (mut tm, mut g) = one_rank_recording();
    let build = |tm: &mut TaskManager, g: &mut CommandGraphGenerator| {
        tm.submit(write(B0)).unwrap();
        for t in tm.drain_new_tasks().collect::<Vec<_>>() {
            g.build_task(tm.task(t).unwrap()).unwrap();
        }
    };
    build(&mut tm, &mut g); // C1
    assert!(!g.to_dot().contains("not kept"), "{}", g.to_dot());
    g.stop_recording();
    for _ in 0..3 {
        build(&mut tm, &mut g); // C2 to C4 (and any horizons)
    }
    let generated = g.next_command_id().0;
    assert!(generated >= 5, "{generated} commands generated");
    assert_eq!(g.records().len(), 2, "C0 and C1 were kept, nothing after");
    let dot = g.to_dot();
    let want = format!("its first 2 commands only ({} later ones were not kept)", generated - 2);
    assert!(dot.contains(&want), "the DOT does not say {want:?}:\n{dot}");
}

#[test]
fn producer_ranks_are_the_ranks_whose_chunks_wrote_the_region() {
    let sim = exchange();
    let writer = &sim.recorded_tasks()[1];
    let g = &sim.ranks[0];
    let of = |lo, hi| g.producer_ranks(writer, B0, &Region::from(GridBox::d1(lo, hi)));
    assert_eq!(of(0, 8), vec![NodeId(0), NodeId(1)]);
    assert_eq!(of(2, 6), vec![NodeId(0), NodeId(1)]);
    assert_eq!(of(0, 4), vec![NodeId(0)]);
    assert_eq!(of(4, 5), vec![NodeId(1)]);
    assert_eq!(g.producer_ranks(writer, B1, &Region::from(GridBox::d1(0, 8))), vec![]);
    // The reader produces nothing, and the init epoch accesses nothing.
    assert_eq!(g.producer_ranks(&sim.recorded_tasks()[2], B0, &Region::from(GridBox::d1(0, 8))), vec![]);
    assert_eq!(g.producer_ranks(&sim.recorded_tasks()[0], B0, &Region::from(GridBox::d1(0, 8))), vec![]);
    // A buffer destroyed since is unknown too, although the task accessed it.
    let mut sim = sim;
    sim.destroy_buffer(B0);
    let writer = &sim.recorded_tasks()[1];
    assert_eq!(sim.ranks[1].producer_ranks(writer, B0, &Region::from(GridBox::d1(0, 8))), vec![]);
}

#[test]
fn producer_ranks_of_a_reduction_are_every_chunk() {
    let mut sim = Simulation::new(3, true);
    sim.create_buffer(B0, 1, GridBox::d1(0, 1), false, None);
    sim.submit(sum_into(TaskSpec::device_compute(&[6]), B0, false)).unwrap();
    let task = &sim.recorded_tasks()[1];
    let all = vec![NodeId(0), NodeId(1), NodeId(2)];
    assert_eq!(sim.ranks[1].producer_ranks(task, B0, &Region::from(GridBox::d1(0, 1))), all);
}

#[test]
fn the_tracking_state_is_measured_and_shown_per_buffer() {
    let mut sim = exchange();
    let g = &sim.ranks[0];
    // Two last-writer boxes (own and received half), one box sent to N1, two readers (the push, the chunk).
    assert_eq!(g.region_map_boxes(), 5);
    let shown = g.debug_buffer(B0);
    assert!(shown.starts_with("Some(\n    BufferState {\n        dims: 1,\n"), "{shown}");
    assert!(shown.contains("owned_hull: [0] - [4],"), "{shown}");
    assert_eq!(g.debug_buffer(B1), "None");
    sim.destroy_buffer(B0);
    assert_eq!(sim.ranks[0].debug_buffer(B0), "None");
    assert_eq!(sim.ranks[0].region_map_boxes(), 0);
}

#[test]
fn a_buffer_named_later_is_named_in_errors() {
    let mut sim = Simulation::new(2, true);
    sim.create_buffer(B0, 1, GridBox::d1(0, 8), false, None);
    sim.set_buffer_name(B0, "late");
    let err = sim.submit(TaskSpec::device_compute(&[8]).access(B0, DiscardWrite, RangeMapper::All)).unwrap_err();
    assert!(err.to_string().contains("buffer B0 \"late\""), "{err}");
    // An unknown buffer's name is ignored.
    sim.ranks[0].set_buffer_name(B1, "nothing");
    assert_eq!(sim.ranks[0].debug_buffer(B1), "None");
}

#[test]
fn the_command_graph_prints_as_dot() {
    let sim = exchange();
    assert_eq!(
        sim.ranks[0].to_dot(),
        "digraph CommandGraph_0 {\n  label=\"command graph of N0\";\n  node [shape=box fontname=monospace];\n  \
         N0_C0 [label=\"C0 T0 epoch\"];\n  \
         N0_C1 [label=\"C1 T1 execution\\n[0] - [4]\"];\n  N0_C0 -> N0_C1 [];\n  \
         N0_C2 [label=\"C2 T2 push T2.B0\\nN1 {[0] - [4]}\"];\n  N0_C1 -> N0_C2 [];\n  \
         N0_C3 [label=\"C3 T2 await-push T2.B0\\n{[4] - [8]}\"];\n  N0_C0 -> N0_C3 [];\n  \
         N0_C4 [label=\"C4 T2 execution\\n[0] - [4]\"];\n  N0_C1 -> N0_C4 [];\n  N0_C3 -> N0_C4 [];\n}\n"
    );
}

#[test]
fn dot_shows_reductions_and_the_kind_of_each_dependency() {
    let mut sim = exchange();
    sim.submit(write(B0)).unwrap();
    sim.create_buffer(B1, 1, GridBox::d1(0, 1), false, None);
    let mut sum = TaskSpec::device_compute(&[8]);
    let op = ReductionOp::Sum;
    sum.reductions.push(ReductionSpec {
        id: celer_graph::ReductionId(3),
        buffer: B1,
        op,
        include_current_value: false,
    });
    sim.submit(sum).unwrap();
    sim.submit(read_all(B1)).unwrap();
    let dot = sim.ranks[1].to_dot();
    assert!(dot.contains("  N1_C2 -> N1_C5 [style=dashed];\n"), "{dot}");
    assert!(dot.contains("  N1_C1 -> N1_C5 [style=dotted];\n"), "{dot}");
    let reduction = sim.ranks[1].records().iter().find(|c| c.kind.name() == "reduction").unwrap().id;
    assert!(dot.contains(&format!("  N1_{reduction} [label=\"{reduction} T5 reduction R3 B1\"];\n")), "{dot}");
}

#[test]
fn debug_shows_the_rank_and_the_live_commands() {
    let sim = exchange();
    assert_eq!(
        format!("{:?}", sim.ranks[1]),
        "CommandGraphGenerator { local: N1, num_ranks: 2, live_commands: 5, .. }"
    );
}

fn sum_into(spec: TaskSpec, b: BufferId, include_current_value: bool) -> TaskSpec {
    let mut spec = spec;
    let id = celer_graph::ReductionId(0);
    spec.reductions.push(ReductionSpec { id, buffer: b, op: ReductionOp::Sum, include_current_value });
    spec
}

#[test]
fn only_rank_0_folds_in_the_current_value_of_a_reduction() {
    for include in [true, false] {
        let mut sim = Simulation::new(2, true);
        sim.create_buffer(B1, 1, GridBox::d1(0, 1), true, None);
        sim.submit(sum_into(TaskSpec::device_compute(&[8]), B1, include)).unwrap();
        for r in 0..2 {
            let flags: Vec<bool> = (sim.ranks[r].records().iter())
                .filter_map(|c| match c.kind {
                    CommandKind::Execution { initializes_reductions, .. } => Some(initializes_reductions),
                    _ => None,
                })
                .collect();
            assert_eq!(flags, vec![include && r == 0], "N{r}, include_current_value {include}");
        }
    }
}

#[test]
fn overlapping_writes_are_refused_beside_a_reduction_into_another_buffer() {
    let mut sim = Simulation::new(2, true);
    sim.create_buffer(B0, 1, GridBox::d1(0, 8), false, Some("out"));
    sim.create_buffer(B1, 1, GridBox::d1(0, 1), false, Some("sum"));
    let scatter = TaskSpec::device_compute(&[8]).access(B0, DiscardWrite, RangeMapper::All);
    let err = sim.submit(sum_into(scatter, B1, false)).unwrap_err();
    assert!(
        matches!(&*err.inner, TaskErrorKind::OverlappingWrite { first: NodeId(0), second: NodeId(1), .. }),
        "{err}"
    );
    assert!(err.to_string().contains("buffer B0 \"out\""), "{err}");
}

#[test]
fn cells_written_only_by_another_ranks_chunk_become_stale_here() {
    // Only the chunk that ends at 8 writes, and it writes the whole buffer (the whole range writes it too); the
    // lower chunk writes nothing.
    let upper_writes_all = RangeMapper::Custom {
        name: "upper_writes_all",
        f: std::sync::Arc::new(
            |c: &GridBox, _: &GridBox, _: &GridBox| {
                if c.max()[0] == 8 {
                    Region::from(GridBox::d1(0, 8))
                } else {
                    Region::new()
                }
            },
        ),
        reach: None,
    };
    let program = move |sim: &mut Simulation| {
        sim.create_buffer(B0, 1, GridBox::d1(0, 8), true, None);
        sim.submit(TaskSpec::device_compute(&[8]).access(B0, DiscardWrite, upper_writes_all.clone()))?;
        sim.submit(read_all(B0))?;
        Ok(())
    };
    let mut sim = Simulation::new(2, true);
    program(&mut sim).unwrap();
    let awaited: Vec<&Region> = (sim.ranks[0].records().iter())
        .filter_map(|c| match &c.kind {
            CommandKind::AwaitPush { region, .. } => Some(region),
            _ => None,
        })
        .collect();
    assert_eq!(awaited, vec![&Region::from(GridBox::d1(0, 8))], "N0 waits for all of N1's data");
    crate::check::equivalent_to_one_rank(2, program).unwrap();
}

/// The chunks of task `id`'s execution commands on rank `r`, in generation order.
fn execution_chunks(sim: &Simulation, r: usize, id: TaskId) -> Vec<GridBox> {
    (sim.ranks[r].records().iter())
        .filter(|c| c.task == id)
        .filter_map(|c| match c.kind {
            CommandKind::Execution { chunk, .. } => Some(chunk),
            _ => None,
        })
        .collect()
}

#[test]
fn a_collective_runs_one_chunk_on_every_rank_whatever_its_granularity() {
    let mut sim = Simulation::new(4, true);
    sim.create_collective_group(celer_graph::CollectiveGroupId(1));
    let mut spec = TaskSpec::new(TaskKind::Collective(celer_graph::CollectiveGroupId(1)), 1, GridBox::d1(0, 1));
    spec.granularity = [2, 1, 1];
    spec.hint = celer_graph::SplitHint::TwoD;
    let id = sim.submit(spec).unwrap();
    for r in 0..4 {
        let chunks = execution_chunks(&sim, r, id);
        assert_eq!(chunks, vec![GridBox::d1(r, r + 1)], "N{r}");
    }
}

#[test]
fn a_simulation_that_records_nothing_keeps_no_list_of_dropped_buffers() {
    // The application thread's simulation of a running queue records nothing, and a program may create and drop
    // buffers without end.
    let mut sim = Simulation::new(1, false);
    for i in 0..1000 {
        sim.create_buffer(BufferId(i), 1, GridBox::d1(0, 8), false, None);
        sim.destroy_buffer(BufferId(i));
    }
    assert!(sim.buffers().is_empty());
    let mut recorded = Simulation::new(1, true);
    recorded.create_buffer(B0, 1, GridBox::d1(0, 8), false, None);
    assert_eq!(recorded.buffers().len(), 1, "the checker of recorded simulations still sees every buffer");
}

#[test]
fn a_dropped_host_object_leaves_no_state_in_the_command_graph() {
    let mut sim = Simulation::new(2, false);
    for i in 0..100 {
        let ho = celer_graph::HostObjectId(i);
        sim.create_host_object(ho);
        let mut spec = TaskSpec::new(TaskKind::Collective(celer_graph::CollectiveGroupId(0)), 1, GridBox::d1(0, 1));
        spec.side_effects.push((ho, celer_graph::SideEffectOrder::Sequential));
        sim.submit(spec).unwrap();
        sim.destroy_host_object(ho);
    }
    assert!(sim.ranks.iter().all(|g| g.host_objects.is_empty()));
}

#[test]
fn a_dropped_collective_group_leaves_no_state_in_the_command_graph() {
    let mut sim = Simulation::new(2, false);
    for i in 1..=100 {
        let g = celer_graph::CollectiveGroupId(i);
        sim.create_collective_group(g);
        let spec = TaskSpec::new(TaskKind::Collective(g), 1, GridBox::d1(0, 1));
        sim.submit(spec.clone()).unwrap();
        sim.submit(spec).unwrap();
        sim.destroy_collective_group(g);
    }
    assert!(sim.ranks.iter().all(|g| g.collective_groups.is_empty()), "one entry per group ever used");
    assert_eq!(sim.tm.live_collective_group_count(), 1, "only the default group stays");
}

#[test]
fn a_host_task_with_side_effects_runs_on_each_processs_first_device_only() {
    // 2 processes x 2 devices: the side effects of each process's chunk happen on one node's loop, in order.
    let all: Vec<NodeId> = (0..4).map(NodeId).collect();
    let config = TaskManagerConfig { devices_per_rank: 2, ..Default::default() };
    let mut sim = Simulation::with_ranks(4, &all, true, config);
    let ho = celer_graph::HostObjectId(0);
    sim.create_host_object(ho);
    sim.create_buffer(B0, 1, GridBox::d1(0, 8), false, None);
    let mut effects =
        TaskSpec::new(TaskKind::HostCompute, 1, GridBox::d1(0, 8)).access(B0, DiscardWrite, RangeMapper::OneToOne);
    effects.side_effects.push((ho, celer_graph::SideEffectOrder::Sequential));
    let first = sim.submit(effects.clone()).unwrap();
    let second = sim.submit(effects).unwrap();
    for id in [first, second] {
        let want = [GridBox::d1(0, 4), GridBox::EMPTY, GridBox::d1(4, 8), GridBox::EMPTY];
        for (r, want) in want.into_iter().enumerate() {
            assert_eq!(execution_chunks(&sim, r, id), vec![want], "{id} on N{r}");
        }
    }
    // Without side effects the task splits over every node.
    let plain = sim
        .submit(TaskSpec::new(TaskKind::HostCompute, 1, GridBox::d1(0, 8)).access(B0, Read, RangeMapper::OneToOne))
        .unwrap();
    assert_eq!(execution_chunks(&sim, 1, plain), vec![GridBox::d1(2, 4)]);
}

#[test]
fn a_collective_over_processes_of_two_devices_runs_item_p_on_node_2p_and_gets_its_data_there() {
    // 2 processes x 2 devices: nodes 0, 1 are process 0's, nodes 2, 3 process 1's.
    let all: Vec<NodeId> = (0..4).map(NodeId).collect();
    let config = TaskManagerConfig { devices_per_rank: 2, ..Default::default() };
    let mut sim = Simulation::with_ranks(4, &all, true, config);
    sim.create_buffer(B0, 1, GridBox::d1(0, 8), false, None);
    sim.create_buffer(B1, 1, GridBox::d1(0, 2), false, None);
    sim.submit(write(B0)).unwrap(); // every node writes 2 cells of B0
                                    // Process p reads cells [4p, 4p + 4) (written by both its devices) and writes cell p of B1.
    let rows = RangeMapper::Custom {
        name: "halves",
        f: std::sync::Arc::new(|c: &GridBox, _: &GridBox, _: &GridBox| {
            Region::from(GridBox::d1(4 * c.min()[0], 4 * c.max()[0]))
        }),
        reach: None,
    };
    sim.create_collective_group(celer_graph::CollectiveGroupId(1));
    let spec = TaskSpec::new(TaskKind::Collective(celer_graph::CollectiveGroupId(1)), 1, GridBox::d1(0, 1))
        .access(B0, Read, rows)
        .access(B1, DiscardWrite, RangeMapper::OneToOne);
    let id = sim.submit(spec).unwrap();
    assert_eq!(sim.tm.task(id).unwrap().spec.range, GridBox::d1(0, 2), "one item per process");
    for r in 0..4 {
        let chunks = execution_chunks(&sim, r, id);
        let want = if r % 2 == 0 { GridBox::d1(r / 2, r / 2 + 1) } else { GridBox::EMPTY };
        assert_eq!(chunks, vec![want], "N{r}");
    }
    // Node 1 sends its half of process 0's cells to node 0, node 3 its half of process 1's to node 2.
    assert_eq!(transfers(&sim, 1, id, B0), vec![("push", Region::from(GridBox::d1(2, 4)))]);
    assert_eq!(transfers(&sim, 0, id, B0), vec![("await-push", Region::from(GridBox::d1(2, 4)))]);
    assert_eq!(transfers(&sim, 3, id, B0), vec![("push", Region::from(GridBox::d1(6, 8)))]);
}

#[test]
fn a_fence_over_processes_of_two_devices_is_gathered_and_read_back_by_each_processs_first_device_only() {
    // 2 processes x 2 devices, each node writing 2 of B0's 8 cells: each process's device 0 gathers the whole
    // buffer and has the one fence command; its other device only pushes the cells it wrote, to every device 0.
    let all: Vec<NodeId> = (0..4).map(NodeId).collect();
    let config = TaskManagerConfig { devices_per_rank: 2, ..Default::default() };
    let mut sim = Simulation::with_ranks(4, &all, true, config);
    sim.create_buffer(B0, 1, GridBox::d1(0, 8), false, None);
    sim.submit(write(B0)).unwrap();
    let fence = TaskSpec::new(TaskKind::Fence, 0, GridBox::from_extent(&[])).access(B0, Read, RangeMapper::All);
    let id = sim.submit(fence).unwrap();
    let fences = |r: usize| {
        sim.ranks[r].records().iter().filter(|c| c.task == id && matches!(c.kind, CommandKind::Fence { .. })).count()
    };
    assert_eq!((0..4).map(fences).collect::<Vec<_>>(), vec![1, 0, 1, 0], "one fence command per process");
    let cells = |a, b| Region::from(GridBox::d1(a, b));
    let mut on0 = transfers(&sim, 0, id, B0);
    on0.sort_by_key(|(kind, r)| (*kind, r.bounding_box().min()[0]));
    assert_eq!(on0, vec![("await-push", cells(2, 8)), ("push", cells(0, 2))], "N0 gathers what N1..N3 wrote");
    assert_eq!(transfers(&sim, 1, id, B0), vec![("push", cells(2, 4)), ("push", cells(2, 4))], "to N0 and N2");
    assert_eq!(transfers(&sim, 3, id, B0), vec![("push", cells(6, 8)), ("push", cells(6, 8))], "to N0 and N2");
    let received = |r: usize| transfers(&sim, r, id, B0).into_iter().filter(|(k, _)| *k == "await-push").count();
    assert_eq!((received(1), received(3)), (0, 0), "the other devices await nothing");
}

/// Commands of `task` on rank `r` that move `b`: (kind, region) of each push target and await-push.
fn transfers(sim: &Simulation, r: usize, task: TaskId, b: BufferId) -> Vec<(&'static str, Region)> {
    let mut out = Vec::new();
    for c in sim.ranks[r].records().iter().filter(|c| c.task == task) {
        match &c.kind {
            CommandKind::Push { transfer, targets } if transfer.buffer == b => {
                out.extend(targets.iter().map(|(_, region)| ("push", region.clone())));
            }
            CommandKind::AwaitPush { transfer, region } if transfer.buffer == b => {
                out.push(("await-push", region.clone()))
            }
            _ => {}
        }
    }
    out
}

/// B1 (one cell) written by a once task on rank 0 (T1), then reduced into by `reducer` including its value (T2).
fn reduce_with_current_value(reducer: TaskSpec) -> Simulation {
    let mut sim = Simulation::new(2, true);
    sim.create_buffer(B1, 1, GridBox::d1(0, 1), false, None);
    let once = TaskSpec::new(TaskKind::Once, 0, GridBox::from_extent(&[]));
    sim.submit(once.access(B1, DiscardWrite, RangeMapper::All)).unwrap();
    sim.submit(sum_into(reducer, B1, true)).unwrap();
    sim
}

#[test]
fn only_rank_0_reads_the_current_value_of_a_reduction() {
    let sim = reduce_with_current_value(TaskSpec::device_compute(&[8]));
    // N0 holds the value and reads it itself; N1 neither receives nor waits for it.
    assert_eq!(transfers(&sim, 0, TaskId(2), B1), vec![]);
    assert_eq!(transfers(&sim, 1, TaskId(2), B1), vec![]);
    let reducer = sim.ranks[0].records().iter().find(|c| c.task == TaskId(2)).unwrap();
    assert_eq!(reducer.dependencies.iter().map(|d| (d.command.0, d.kind)).collect::<Vec<_>>(), vec![(1, True)]);
    // The same on a fence, whose chunk is the whole (one-item) range on every rank.
    let sim = reduce_with_current_value(TaskSpec::new(TaskKind::Fence, 0, GridBox::from_extent(&[])));
    assert_eq!(transfers(&sim, 0, TaskId(2), B1), vec![]);
    assert_eq!(transfers(&sim, 1, TaskId(2), B1), vec![]);
}

#[test]
fn a_declared_reach_is_not_checked_for_a_chunk_that_touches_nothing() {
    // The upper chunk writes itself, the lower one nothing; the reach of a box is the box (one to one).
    let upper_only = RangeMapper::Custom {
        name: "upper_only",
        f: std::sync::Arc::new(|c: &GridBox, _: &GridBox, _: &GridBox| {
            Region::from(c.intersection(&GridBox::d1(4, 8)))
        }),
        reach: Some(std::sync::Arc::new(|cells: &GridBox, _: &GridBox| *cells)),
    };
    let mut sim = Simulation::new(2, true);
    sim.create_buffer(B0, 1, GridBox::d1(0, 8), false, None);
    sim.submit(TaskSpec::device_compute(&[8]).access(B0, DiscardWrite, upper_only)).unwrap();
    assert_eq!(graph(&sim, 0)[1], (1, "execution", vec![(0, True)]));
}

#[test]
fn a_mapper_without_a_reach_counts_what_each_chunk_writes() {
    // Each chunk writes its first cell: the whole range's image ({0}) misses the cell 4 the upper chunk writes.
    let first_cell = RangeMapper::Custom {
        name: "first_cell",
        f: std::sync::Arc::new(|c: &GridBox, _: &GridBox, _: &GridBox| {
            Region::from(GridBox::d1(c.min()[0], c.min()[0] + 1))
        }),
        reach: None,
    };
    let mut sim = Simulation::new(2, true);
    sim.create_buffer(B0, 1, GridBox::d1(0, 8), false, None);
    sim.submit(TaskSpec::device_compute(&[8]).access(B0, DiscardWrite, first_cell)).unwrap();
    sim.submit(read_all(B0)).unwrap();
    let cell = |c: usize| Region::from(GridBox::d1(c, c + 1));
    assert_eq!(transfers(&sim, 0, TaskId(2), B0), vec![("push", cell(0)), ("await-push", cell(4))]);
    assert_eq!(transfers(&sim, 1, TaskId(2), B0), vec![("push", cell(4)), ("await-push", cell(0))]);
}

#[test]
fn writes_beside_a_reduction_leave_the_other_ranks_cells_stale() {
    let program = |sim: &mut Simulation| {
        sim.create_buffer(B0, 1, GridBox::d1(0, 8), false, None);
        sim.create_buffer(B1, 1, GridBox::d1(0, 1), false, None);
        sim.submit(sum_into(write(B0), B1, false))?;
        sim.submit(read_all(B0))?;
        Ok(())
    };
    let mut sim = Simulation::new(2, true);
    program(&mut sim).unwrap();
    let half = |k: usize| Region::from(GridBox::d1(4 * k, 4 * k + 4));
    assert_eq!(transfers(&sim, 0, TaskId(2), B0), vec![("push", half(0)), ("await-push", half(1))]);
    crate::check::equivalent_to_one_rank(2, program).unwrap();
}

/// The edges of task `t`'s (only) execution command on rank 0, as (dependency, kind, settled by).
fn settled_edges(sim: &Simulation, t: TaskId) -> Vec<(u64, DependencyKind, Option<u64>)> {
    let c = sim.ranks[0].records().iter().find(|c| c.task == t && c.kind.name() == "execution").unwrap();
    c.dependencies.iter().map(|d| (d.command.0, d.kind, d.settled_by().map(|s| s.0))).collect()
}

/// The horizon applied on rank 0 when task `t`'s execution command was generated: the newest but one before it.
fn applied_horizon(sim: &Simulation, t: TaskId) -> u64 {
    let records = sim.ranks[0].records();
    let exec = records.iter().find(|c| c.task == t && c.kind.name() == "execution").unwrap().id;
    let horizons: Vec<u64> =
        records.iter().filter(|c| c.kind.name() == "horizon" && c.id < exec).map(|c| c.id.0).collect();
    horizons[horizons.len() - 2]
}

/// The first horizon or epoch command on rank 0 after command `c`.
fn first_sync_after(sim: &Simulation, c: u64) -> u64 {
    let sync = |k: &CommandKind| matches!(k, CommandKind::Horizon { .. } | CommandKind::Epoch { .. });
    sim.ranks[0].records().iter().find(|r| sync(&r.kind) && r.id.0 > c).unwrap().id.0
}

/// The id of task `t`'s execution command on rank 0.
fn execution_of(sim: &Simulation, t: TaskId) -> u64 {
    sim.ranks[0].records().iter().find(|c| c.task == t && c.kind.name() == "execution").unwrap().id.0
}

#[test]
fn an_edge_on_a_horizon_standing_for_old_writes_is_settled_by_the_first_sync_command_after_them() {
    // A horizon after every task; C (B0) host data, a chain writing X (B1) to move the horizons on.
    let config = TaskManagerConfig { horizon_step: 1, ..Default::default() };
    let mut sim = Simulation::with_ranks(1, &[NodeId(0)], true, config);
    sim.create_buffer(B0, 1, GridBox::d1(0, 8), true, Some("c"));
    sim.create_buffer(B1, 1, GridBox::d1(0, 8), false, Some("x"));
    let chain = || TaskSpec::device_compute(&[8]).access(B1, ReadWrite, RangeMapper::OneToOne);
    let with_c = |mode| chain().access(B0, mode, RangeMapper::OneToOne);
    let run_chain = |sim: &mut Simulation| {
        for _ in 0..3 {
            sim.submit(chain()).unwrap();
        }
    };
    sim.submit(write(B1)).unwrap();
    run_chain(&mut sim);
    // C's cells stand for the init epoch's upload, collapsed into the applied horizon: settled by the init epoch;
    // X's writer is the previous task's command: a plain edge.
    let t = sim.submit(with_c(Read)).unwrap();
    let h = applied_horizon(&sim, t);
    let edges = settled_edges(&sim, t);
    assert!(edges.contains(&(h, True, Some(0))), "{edges:?}, applied horizon C{h}");
    assert!(edges.iter().all(|&(d, _, s)| d == h || s.is_none()), "{edges:?}");

    // Reading and writing C: one edge for the read and the write after the old write, settled alike.
    let t = sim.submit(with_c(ReadWrite)).unwrap();
    let rw = execution_of(&sim, t);
    assert!(settled_edges(&sim, t).contains(&(applied_horizon(&sim, t), True, Some(0))));
    // Overwriting C once that write was collapsed too: an output edge, settled by the first sync command after it.
    run_chain(&mut sim);
    let t = sim.submit(with_c(DiscardWrite)).unwrap();
    let w = execution_of(&sim, t);
    let edges = settled_edges(&sim, t);
    assert!(edges.contains(&(applied_horizon(&sim, t), Output, Some(first_sync_after(&sim, rw)))), "{edges:?}");
    // A read right after depends on that writer; overwriting C once that reader was collapsed too: the
    // anti-dependency on the horizon is settled by the first sync command after the read (the later of the two).
    let t = sim.submit(with_c(Read)).unwrap();
    let r = execution_of(&sim, t);
    assert!(settled_edges(&sim, t).contains(&(w, True, None)));
    run_chain(&mut sim);
    let t = sim.submit(with_c(DiscardWrite)).unwrap();
    let edges = settled_edges(&sim, t);
    assert!(edges.contains(&(applied_horizon(&sim, t), Anti, Some(first_sync_after(&sim, r)))), "{edges:?}");
    // Overwriting C again right after: the edge on a reader in the open window is on that reader (true here: it
    // also wrote X).
    let t = sim.submit(with_c(Read)).unwrap();
    let r2 = execution_of(&sim, t);
    let t = sim.submit(with_c(DiscardWrite)).unwrap();
    assert!(settled_edges(&sim, t).iter().any(|&(d, _, s)| d == r2 && s.is_none()));
    let w = execution_of(&sim, t);
    run_chain(&mut sim);
    let t = sim.submit(with_c(Read)).unwrap();
    assert!(settled_edges(&sim, t).contains(&(applied_horizon(&sim, t), True, Some(first_sync_after(&sim, w)))));

    // A buffer written on one half only: reads of the other half (collapsed, last written by the init epoch) are
    // settled by the init epoch however many windows pass; reads of the written half by the newest window's sync.
    let b3 = BufferId(3);
    sim.create_buffer(b3, 1, GridBox::d1(0, 8), true, None);
    let half = |mode, lo| TaskSpec::device_compute(&[4]).access(b3, mode, RangeMapper::Fixed(GridBox::d1(lo, lo + 4)));
    let mut first = None;
    for _ in 0..12 {
        let t = sim.submit(TaskSpec::device_compute(&[4]).access(b3, ReadWrite, RangeMapper::OneToOne)).unwrap();
        first.get_or_insert(execution_of(&sim, t));
        run_chain(&mut sim);
    }
    let t = sim.submit(half(Read, 4)).unwrap();
    let edges = settled_edges(&sim, t);
    let h = applied_horizon(&sim, t);
    assert!(edges.iter().any(|&(d, _, s)| d == h && s.is_some_and(|s| s < first.unwrap())), "{edges:?}");
    run_chain(&mut sim);
    let t = sim.submit(half(Read, 0)).unwrap();
    let edges = settled_edges(&sim, t);
    let h = applied_horizon(&sim, t);
    assert!(edges.iter().any(|&(d, _, s)| d == h && s.is_some_and(|s| s > first.unwrap() && s < h)), "{edges:?}");

    // After an epoch, the edge on the epoch is plain.
    let epoch = sim.epoch(EpochAction::None).unwrap();
    let epoch = sim.ranks[0].records().iter().find(|c| c.task == epoch).unwrap().id.0;
    let t = sim.submit(with_c(Read)).unwrap();
    let edges = settled_edges(&sim, t);
    assert!(edges.iter().all(|&(_, _, s)| s.is_none()), "{edges:?}");
    // A write of cells nobody touched hangs off the applied horizon, settled by the last epoch.
    let b2 = BufferId(2);
    sim.create_buffer(b2, 1, GridBox::d1(0, 8), false, None);
    run_chain(&mut sim);
    let t = sim.submit(write(b2)).unwrap();
    assert_eq!(settled_edges(&sim, t), vec![(applied_horizon(&sim, t), True, Some(epoch))]);
}

/// A custom mapper that gives chunk `[a, b)` the cells `[a, b)` on rank `odd == false` and the whole buffer on rank
/// `odd == true`, as one that captured `q.rank()` does.
fn peek(odd: bool) -> RangeMapper {
    RangeMapper::Custom {
        name: "peek",
        f: std::sync::Arc::new(move |c: &GridBox, _: &GridBox, b: &GridBox| Region::from(if odd { *b } else { *c })),
        reach: None,
    }
}

#[test]
fn every_rank_samples_a_custom_mappers_results_on_the_same_chunks() {
    // Rank-dependent results show in the samples (the task hash), rank-independent ones agree; built-in mappers give
    // none.
    let mut sim = Simulation::new(2, true);
    sim.create_buffer(B0, 1, GridBox::d1(0, 8), false, Some("x"));
    let builtin = sim.submit(read_all(B0)).unwrap();
    let t = sim.submit(TaskSpec::device_compute(&[8]).access(B0, Read, peek(false))).unwrap();
    let mut out = Vec::new();
    sim.ranks[0].sample_custom_mappers(sim.tm.task(builtin).unwrap(), &mut out);
    assert!(out.is_empty(), "built-in mappers are hashed by their parameters");
    let samples = |sim: &Simulation, r: usize, spec_odd: Option<bool>| {
        let mut task = sim.tm.task(t).unwrap().clone();
        if let Some(odd) = spec_odd {
            std::sync::Arc::make_mut(&mut task.spec.accesses)[0].mapper = peek(odd);
        }
        let mut out = Vec::new();
        sim.ranks[r].sample_custom_mappers(&task, &mut out);
        out
    };
    let (on0, on1) = (samples(&sim, 0, None), samples(&sim, 1, None));
    assert_eq!(on0, on1, "a pure mapper gives every rank the same samples");
    let chunks: Vec<GridBox> = on0.iter().map(|s| s.chunk).collect();
    assert_eq!(chunks, vec![GridBox::d1(0, 4), GridBox::d1(4, 8)], "both ranks' chunks, on every rank");
    assert_eq!(on0[1].region, Some(Region::from(GridBox::d1(4, 8))));
    assert_eq!((on0[0].mapper, on0[0].mode, on0[0].buffer, on0[0].access), ("peek", "read", B0, 0));
    let odd = samples(&sim, 1, Some(true));
    assert_eq!(odd[0].region, Some(Region::from(GridBox::d1(0, 8))));
    assert_ne!(crate::divergence::mapper_digest(&on0), crate::divergence::mapper_digest(&odd));
}
