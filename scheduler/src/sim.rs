//! [`Simulation`]: many ranks' command generators driven in one process from one task stream.
//!
//! Tests use it to check the ranks' graphs against each other ([`crate::check`]); benchmarks use it to measure one
//! rank's scheduling cost at rank counts no machine here has. Applied horizons are reported reached at once (a dry
//! run), so memory stays bounded however long the program.

use celer_graph::patterns::Workload;
use celer_graph::{
    BufferExtent, BufferId, CollectiveGroupId, EpochAction, GridBox, HostObjectId, NodeId, RangeMapper, Region, Task,
    TaskError, TaskErrorKind, TaskId, TaskIdent, TaskKind, TaskManager, TaskManagerConfig, TaskSpec,
};

use crate::cdag::{CdagConfig, CommandGraphGenerator};

/// Chunk pairs [`overlapping_pair`] compares all of up to this many chunks (in order, so the pair reported is the
/// first); past it, only those whose bounding boxes intersect, found by a sweep.
const ALL_PAIRS_UP_TO: usize = 64;

/// Writes of `spec` that overlap between the chunks of two nodes, found before the task graph records the task, where
/// built-in mappers show them: a write through `all` or a fixed box overlaps between the first two chunks, one
/// through a neighbourhood between neighbours. The command graph checks what each rank generates anyway (custom
/// mappers too, which are not applied here); this makes the common cases an error of `submit`, returned on every
/// rank alike, rather than one that ends the run. Every overlapping pair of chunks is found ([`overlapping_pair`]:
/// all pairs of up to [`ALL_PAIRS_UP_TO`] chunks, past it the pairs whose bounding boxes intersect, a 2D split's
/// vertical and diagonal neighbours included). Mappers the task graph would refuse (a box outside the buffer) are
/// left to it.
///
/// `nodes` and `devices_per_rank` are the run's ([`TaskManagerConfig`]), or, for
/// [`Simulation::overlap_on_two_nodes`], those of a run the program might be started as. Inline: most tasks write
/// through `one_to_one` only, and end at the first test (`submit`'s hot path); the rest is [`overlapping_split`].
#[inline]
fn overlapping_write(
    tm: &TaskManager,
    spec: &TaskSpec,
    nodes: usize,
    devices_per_rank: usize,
) -> Option<TaskErrorKind> {
    if nodes < 2 || !writes_through_suspect(spec) {
        return None;
    }
    overlapping_split(tm, spec, nodes, devices_per_rank)
}

/// [`overlapping_write`] past its first test: splits the task as the command graph will and compares the chunks'
/// written regions.
fn overlapping_split(
    tm: &TaskManager,
    spec: &TaskSpec,
    nodes: usize,
    devices_per_rank: usize,
) -> Option<TaskErrorKind> {
    // Which node runs chunk `c` of the grid below: node `c` where the command graph splits the index space over
    // every node; node `c * devices` where it gives each process one chunk, run by its device 0
    // (`CommandGraphGenerator::chunking`: a collective task, and a host task with side effects, on several devices
    // per rank).
    let devices = devices_per_rank.max(1);
    let per_process = match spec.kind {
        TaskKind::DeviceCompute => false,
        TaskKind::HostCompute => devices > 1 && !spec.side_effects.is_empty(),
        TaskKind::Collective(_) => devices > 1,
        _ => return None,
    };
    let (parts, stride) = if per_process { ((nodes / devices).max(1), devices) } else { (nodes, 1) };
    // A collective task's index space as the task graph will make it (one item per process), split in one dimension.
    let (range, hint, granularity) = match spec.kind {
        TaskKind::Collective(_) => (GridBox::d1(0, parts), Default::default(), [1; 3]),
        _ => (spec.range, spec.hint, spec.granularity),
    };
    if range.is_empty() || granularity.contains(&0) {
        return None;
    }
    let grid = crate::split::ChunkGrid::new(range, parts, hint, granularity);
    let n = grid.len();
    if n < 2 {
        return None;
    }
    for (i, w) in spec.accesses.iter().enumerate() {
        let b = w.buffer;
        // Each buffer once, at its first suspect write; custom writers are the program's code, left to the runtime.
        let writers = || spec.accesses.iter().filter(move |a| a.buffer == b && a.mode.produces());
        if !w.mode.produces()
            || !suspect(&w.mapper)
            || spec.accesses[..i].iter().any(|a| a.buffer == b && a.mode.produces() && suspect(&a.mapper))
            || writers().any(|a| matches!(a.mapper, RangeMapper::Custom { .. }))
            || spec.reductions.iter().any(|r| r.buffer == b)
        {
            continue;
        }
        let (dims, extent) = tm.buffer_extent(b)?;
        let mut written = Vec::with_capacity(n);
        for c in 0..n {
            let chunk = grid.chunk(c);
            let mut region = Region::new();
            // An empty chunk runs nothing (a mapper may still map it to cells, as `all` does).
            for a in writers().filter(|_| !chunk.is_empty()) {
                let r = a.mapper.apply(&chunk, &range, spec.dims, &extent, dims).ok()?;
                if !r.boxes().iter().all(|x| extent.contains(x)) {
                    return None;
                }
                region = region.union(&r);
            }
            written.push(region);
        }
        if let Some((x, y)) = overlapping_pair(&written) {
            return Some(TaskErrorKind::OverlappingWrite {
                buffer: tm.buffer_ident(b),
                region: written[x].intersection(&written[y]),
                first: NodeId((x * stride) as u64),
                second: NodeId((y * stride) as u64),
            });
        }
    }
    None
}

/// Whether a mapper may map two chunks onto one cell: any but `one_to_one` (custom mappers are the program's code,
/// left to the command graph).
#[inline]
fn suspect(m: &RangeMapper) -> bool {
    !matches!(m, RangeMapper::OneToOne | RangeMapper::Custom { .. })
}

/// Whether `spec` writes through a [`suspect`] mapper at all: [`overlapping_write`]'s first test.
#[inline]
fn writes_through_suspect(spec: &TaskSpec) -> bool {
    spec.accesses.iter().any(|a| a.mode.produces() && suspect(&a.mapper))
}

/// A pair `(x, y)`, `x < y`, of `written` regions that intersect, or `None` where they are disjoint.
///
/// Up to [`ALL_PAIRS_UP_TO`] regions, every pair is compared in order (`(0, 1)`, `(0, 2)`, …), so the first is
/// reported. Past it, a sweep along dimension 0 over the regions' bounding boxes: sorted by their start there, each
/// is compared with those still open at its start (a row or two of a 2D split: O(√n) box comparisons each, O(n) for
/// a 1D split), and the regions themselves only where the boxes intersect (a chunk's grid neighbours under a
/// neighbourhood mapper: at most 8 in 2D). Every intersecting pair has intersecting bounding boxes, so none is
/// missed, in a 2D or 3D split as in 1D; which pair is reported is then the first in the sweep's order, the same
/// on every rank.
fn overlapping_pair(written: &[Region]) -> Option<(usize, usize)> {
    let n = written.len();
    if n <= ALL_PAIRS_UP_TO {
        return (0..n).find_map(|x| (x + 1..n).find(|&y| written[x].intersects(&written[y])).map(|y| (x, y)));
    }
    let mut boxes: Vec<(GridBox, usize)> =
        (written.iter().enumerate()).filter(|(_, r)| !r.is_empty()).map(|(i, r)| (r.bounding_box(), i)).collect();
    boxes.sort_unstable_by_key(|(b, i)| (b.min()[0], *i));
    // Indices into `boxes` of the boxes whose extent along dimension 0 reaches past the current one's start.
    let mut open: Vec<usize> = Vec::new();
    for (j, (bj, y)) in boxes.iter().enumerate() {
        open.retain(|&k| boxes[k].0.max()[0] > bj.min()[0]);
        for &k in &open {
            let (bk, x) = &boxes[k];
            if bk.intersects(bj) && written[*x].intersects(&written[*y]) {
                return Some((*x.min(y), *x.max(y)));
            }
        }
        open.push(j);
    }
    None
}

/// The task manager plus the command generators of some (or all) ranks.
#[derive(Debug)]
pub struct Simulation {
    /// The shared task graph.
    pub tm: TaskManager,
    /// One generator per simulated rank, in the order given.
    pub ranks: Vec<CommandGraphGenerator>,
    num_ranks: usize,
    record: bool,
    /// Copies of every task (kept only when recording), for checkers.
    tasks: Vec<Task>,
    /// Buffers created, for checkers: (id, dims, extent, host initialized).
    buffers: Vec<(BufferId, usize, GridBox, bool)>,
    /// The ids of the tasks being flushed (kept to reuse its storage).
    new_tasks: Vec<TaskId>,
}

impl Simulation {
    /// Simulates all `num_ranks` ranks; `record` keeps every command and task for checking and dumps.
    pub fn new(num_ranks: usize, record: bool) -> Self {
        let all: Vec<NodeId> = (0..num_ranks as u64).map(NodeId).collect();
        Self::with_ranks(num_ranks, &all, record, TaskManagerConfig::default())
    }

    /// Simulates only `ranks` out of `num_ranks` (a benchmark needs just one).
    pub fn with_ranks(num_ranks: usize, ranks: &[NodeId], record: bool, config: TaskManagerConfig) -> Self {
        let mut tm = TaskManager::new(TaskManagerConfig { num_ranks, ..config });
        // The init epoch T0 exists in every generator from the start.
        tm.drain_new_tasks().for_each(drop);
        let devices_per_rank = config.devices_per_rank.max(1);
        let ranks = ranks
            .iter()
            .map(|&local| CommandGraphGenerator::new(CdagConfig { num_ranks, local, record, devices_per_rank }))
            .collect();
        let tasks = if record { tm.tasks().cloned().collect() } else { Vec::new() };
        Self { tm, ranks, num_ranks, record, tasks, buffers: Vec::new(), new_tasks: Vec::new() }
    }

    /// Number of ranks in the simulated program.
    pub fn num_ranks(&self) -> usize {
        self.num_ranks
    }

    /// Creates a buffer on every simulated rank.
    pub fn create_buffer(
        &mut self,
        id: BufferId,
        dims: usize,
        extent: impl Into<BufferExtent>,
        host_init: bool,
        name: Option<&str>,
    ) {
        let shape = extent.into();
        let extent = shape.bounds();
        self.tm.create_buffer(id, dims, shape, host_init, name.map(str::to_owned));
        for g in &mut self.ranks {
            g.create_buffer(id, dims, shape, host_init, name.map(str::to_owned));
        }
        // Kept for the checker of recorded simulations; a queue that runs the program (no recording) creates and
        // drops buffers without end, and must not keep each one.
        if self.record {
            self.buffers.push((id, dims, extent, host_init));
        }
    }

    /// Creates a host object.
    pub fn create_host_object(&mut self, id: HostObjectId) {
        self.tm.create_host_object(id);
    }

    /// Forgets a host object.
    pub fn destroy_host_object(&mut self, id: HostObjectId) {
        self.tm.destroy_host_object(id);
        for g in &mut self.ranks {
            g.destroy_host_object(id);
        }
    }

    /// Creates a collective group.
    pub fn create_collective_group(&mut self, id: CollectiveGroupId) {
        self.tm.create_collective_group(id);
    }

    /// Forgets a collective group on every simulated rank.
    pub fn destroy_collective_group(&mut self, id: CollectiveGroupId) {
        self.tm.destroy_collective_group(id);
        for g in &mut self.ranks {
            g.destroy_collective_group(id);
        }
    }

    /// Names a buffer in errors and dumps.
    pub fn set_buffer_name(&mut self, id: BufferId, name: &str) {
        self.tm.set_buffer_name(id, name);
        for g in &mut self.ranks {
            g.set_buffer_name(id, name);
        }
    }

    /// Forgets a buffer on every simulated rank.
    pub fn destroy_buffer(&mut self, id: BufferId) {
        self.tm.destroy_buffer(id);
        for g in &mut self.ranks {
            g.destroy_buffer(id);
        }
    }

    /// Submits a task and generates every simulated rank's commands for it (and for any horizon it triggered).
    ///
    /// # Errors
    /// The task manager's or any rank's generator's [`TaskError`].
    pub fn submit(&mut self, spec: TaskSpec) -> Result<TaskId, TaskError> {
        let config = self.tm.config();
        if let Some(inner) = overlapping_write(&self.tm, &spec, config.num_ranks, config.devices_per_rank) {
            return Err(TaskError {
                task: TaskIdent { id: self.tm.next_task_id(), name: spec.name.clone() },
                inner: Box::new(inner),
            });
        }
        let id = self.tm.submit(spec)?;
        self.flush()?;
        Ok(id)
    }

    /// On a run of one node (one rank with one device), the overlapping write [`submit`](Self::submit) would refuse
    /// were the task split over two nodes (two ranks, or `CELER_DEVICES=2`): a kernel that `atomicAdd`s into a
    /// histogram bound through `all` runs as one chunk here, and is refused once started under `mpirun -n 2`. `None`
    /// on a run of several nodes, where `submit` itself refuses it, and for tasks that split into one chunk only.
    /// Custom mappers are not applied (as in `submit`'s check).
    #[inline]
    pub fn overlap_on_two_nodes(&self, spec: &TaskSpec) -> Option<TaskErrorKind> {
        if self.tm.config().num_ranks != 1 {
            return None;
        }
        overlapping_write(&self.tm, spec, 2, 1)
    }

    /// Inserts an epoch.
    ///
    /// # Errors
    /// As [`submit`](Self::submit).
    pub fn epoch(&mut self, action: EpochAction) -> Result<TaskId, TaskError> {
        let id = self.tm.epoch(action);
        self.flush()?;
        Ok(id)
    }

    /// Creates a workload's buffers and submits its tasks.
    ///
    /// # Errors
    /// As [`submit`](Self::submit).
    pub fn run_workload(&mut self, w: &Workload) -> Result<(), TaskError> {
        for b in &w.buffers {
            self.create_buffer(b.id, b.dims, b.extent, b.host_initialized, Some(b.name));
        }
        for t in &w.tasks {
            self.submit(t.clone())?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), TaskError> {
        let mut new = std::mem::take(&mut self.new_tasks);
        self.tm.take_new_tasks(&mut new);
        // Without ranks or recording (a queue that runs the program: the task graph alone), nothing reads them.
        let consumed = if self.ranks.is_empty() && !self.record { &[][..] } else { &new[..] };
        for &id in consumed {
            let task = self.tm.task(id).expect("new tasks are live");
            for g in &mut self.ranks {
                g.build_task(task)?;
            }
            if self.record {
                self.tasks.push(task.clone());
            }
        }
        self.new_tasks = new;
        let applied = self.tm.epoch_for_new_tasks();
        self.tm.notify_epoch_reached(applied);
        for g in &mut self.ranks {
            g.notify_epoch_reached(applied);
        }
        Ok(())
    }

    /// Every task so far (when recording), in id order.
    pub fn recorded_tasks(&self) -> &[Task] {
        &self.tasks
    }

    /// Buffers created so far, when recording: (id, dims, extent, host initialized).
    pub fn buffers(&self) -> &[(BufferId, usize, GridBox, bool)] {
        &self.buffers
    }

    /// Every simulated rank's command graph as one Graphviz DOT file (clusters per rank; needs recording).
    pub fn command_graphs_dot(&self) -> String {
        let mut out = String::from("digraph CommandGraphs {\n");
        for g in &self.ranks {
            let dot = g.to_dot();
            let body: Vec<&str> = dot.lines().skip(1).filter(|l| *l != "}").collect();
            out += &format!("subgraph cluster_{} {{\n{}\n}}\n", g.local().0, body.join("\n"));
        }
        out += "}\n";
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::split::ChunkGrid;
    use celer_graph::{AccessMode, NeighborhoodShape, SplitHint};

    /// A simulation of `ranks` ranks that generates only rank 0's commands (the submit-time check covers them all).
    fn ranks(n: usize) -> Simulation {
        Simulation::with_ranks(n, &[NodeId(0)], false, TaskManagerConfig::default())
    }

    /// A 2D task over `[side, side]`, split as a near-square grid over the ranks.
    fn grid_task(side: usize) -> TaskSpec {
        let mut spec = TaskSpec::device_compute(&[side, side]);
        spec.hint = SplitHint::TwoD;
        spec
    }

    #[test]
    fn only_vertical_neighbours_of_a_2d_split_past_64_chunks_are_found_overlapping() {
        // 100 chunks, 10 x 10; from grid row 2 on, each chunk also writes the row above it (a custom mapper's
        // halo, say), so only vertically adjacent chunks of rows 1 to 9 overlap: never chunk 0, never neighbours
        // in chunk order.
        let grid = ChunkGrid::new(GridBox::d2([0, 0], [100, 100]), 100, SplitHint::TwoD, [1; 3]);
        assert_eq!(grid.len(), 100);
        let written: Vec<Region> = (0..grid.len())
            .map(|c| {
                let b = grid.chunk(c);
                let (mut min, max) = (b.min(), b.max());
                if c / 10 >= 2 {
                    min[0] -= 1;
                }
                Region::from(GridBox::new(min, max))
            })
            .collect();
        let (x, y) = overlapping_pair(&written).expect("vertical neighbours overlap");
        assert_eq!(y - x, 10, "a vertical pair: ({x}, {y})");
        assert!(written[x].intersects(&written[y]));
        // Without the halo nothing overlaps.
        let tiles: Vec<Region> = (0..grid.len()).map(|c| Region::from(grid.chunk(c))).collect();
        assert_eq!(overlapping_pair(&tiles), None);
    }

    #[test]
    fn an_in_place_transpose_over_81_ranks_is_refused_at_submit_naming_mirrored_chunks() {
        // 9 x 9 chunks of a square: each off-diagonal chunk writes its own cells and its mirror's, so it overlaps
        // only the chunk mirrored across the diagonal (chunks 1 and 9 first), never chunk 0 and never the next.
        let mut sim = ranks(81);
        sim.create_buffer(BufferId(0), 2, GridBox::d2([0, 0], [90, 90]), true, Some("m"));
        let transpose = grid_task(90).access(BufferId(0), AccessMode::ReadWrite, RangeMapper::OneToOne).access(
            BufferId(0),
            AccessMode::DiscardWrite,
            RangeMapper::Transposed,
        );
        let err = sim.submit(transpose).expect_err("mirrored chunks write the same cells");
        match &*err.inner {
            TaskErrorKind::OverlappingWrite { first, second, region, .. } => {
                assert_eq!((*first, *second), (NodeId(1), NodeId(9)), "{err}");
                assert_eq!(region.area(), 200, "{err}");
            }
            other => panic!("not an overlapping write: {other}"),
        }
        assert!(err.to_string().contains("buffer B0 \"m\""), "{err}");
    }

    #[test]
    fn disjoint_writes_of_a_2d_split_past_64_chunks_are_accepted() {
        // A transpose into a second buffer: each chunk writes its mirror's cells, all disjoint.
        let mut sim = ranks(81);
        sim.create_buffer(BufferId(0), 2, GridBox::d2([0, 0], [90, 90]), true, Some("m"));
        sim.create_buffer(BufferId(1), 2, GridBox::d2([0, 0], [90, 90]), false, Some("t"));
        let transpose = grid_task(90).access(BufferId(0), AccessMode::Read, RangeMapper::OneToOne).access(
            BufferId(1),
            AccessMode::DiscardWrite,
            RangeMapper::Transposed,
        );
        sim.submit(transpose).expect("a transpose into another buffer writes disjoint cells");
    }

    #[test]
    fn a_collective_write_of_one_cell_on_every_rank_is_refused_before_any_rank_generates_it() {
        // No simulated rank, as on a real queue: only the submit-time check can see it (the runtime's command graph
        // would end the run). Found by tests/fuzz_api.rs: host_collective().write(&zero_d, fixed([], [])), 2 ranks.
        let mut sim = Simulation::with_ranks(2, &[], false, TaskManagerConfig::default());
        sim.create_buffer(BufferId(0), 0, GridBox::from_extent(&[]), true, Some("flag"));
        sim.create_buffer(BufferId(1), 1, GridBox::d1(0, 8), true, Some("all"));
        for (b, mapper) in [(0, RangeMapper::Fixed(GridBox::from_extent(&[]))), (1, RangeMapper::All)] {
            let spec = TaskSpec::new(TaskKind::Collective(celer_graph::CollectiveGroupId(0)), 1, GridBox::d1(0, 1))
                .access(BufferId(b), AccessMode::DiscardWrite, mapper);
            let err = sim.submit(spec).expect_err("every rank writes the same cells");
            assert!(
                matches!(&*err.inner, TaskErrorKind::OverlappingWrite { first: NodeId(0), second: NodeId(1), .. }),
                "{err}"
            );
        }
        // Each rank writing the cell of its own item is no overlap; reading everything is none either.
        sim.create_buffer(BufferId(2), 1, GridBox::d1(0, 2), true, Some("per_rank"));
        let spec = TaskSpec::new(TaskKind::Collective(celer_graph::CollectiveGroupId(0)), 1, GridBox::d1(0, 1))
            .access(BufferId(2), AccessMode::DiscardWrite, RangeMapper::OneToOne)
            .access(BufferId(1), AccessMode::Read, RangeMapper::All);
        sim.submit(spec).expect("each rank writes its own cell");
    }

    #[test]
    fn per_process_writes_on_two_devices_per_rank_that_overlap_are_refused_at_submit_naming_each_device_0() {
        // 2 ranks x 2 devices: a collective task, and a host task with side effects, run one chunk per process, on
        // its device 0 (N0 and N2). Found by tests/fuzz_api.rs (seed 5, CELER_DEVICES=2 under mpirun -n 2):
        // host_collective().write(&zero_d, fixed([], [])) passed submit, and both ranks' command graphs then ended
        // the run naming N0 and N2. No simulated rank, as on a real queue: only the submit-time check can see it.
        let config = TaskManagerConfig { devices_per_rank: 2, ..TaskManagerConfig::default() };
        let setup = |ranks: &[NodeId]| {
            let mut sim = Simulation::with_ranks(4, ranks, false, config.clone());
            sim.create_buffer(BufferId(0), 0, GridBox::from_extent(&[]), true, Some("flag"));
            sim.create_buffer(BufferId(1), 1, GridBox::d1(0, 8), true, Some("all"));
            sim.create_buffer(BufferId(2), 1, GridBox::d1(0, 2), true, Some("per_rank"));
            sim.create_host_object(HostObjectId(0));
            sim
        };
        let mut sim = setup(&[]);
        let collective = || TaskSpec::new(TaskKind::Collective(CollectiveGroupId(0)), 1, GridBox::d1(0, 1));
        let mut with_side_effect = TaskSpec::device_compute(&[8]);
        with_side_effect.kind = TaskKind::HostCompute;
        with_side_effect.side_effects.push((HostObjectId(0), celer_graph::SideEffectOrder::Sequential));
        for spec in [
            collective().access(BufferId(0), AccessMode::Write, RangeMapper::Fixed(GridBox::from_extent(&[]))),
            collective().access(BufferId(1), AccessMode::DiscardWrite, RangeMapper::All),
            with_side_effect.clone().access(BufferId(1), AccessMode::Write, RangeMapper::All),
        ] {
            let err = sim.submit(spec).expect_err("both processes write the same cells");
            assert!(
                matches!(&*err.inner, TaskErrorKind::OverlappingWrite { first: NodeId(0), second: NodeId(2), .. }),
                "{err}"
            );
        }
        // Each process writing the cell of its own item, or its own half, is no overlap (rank 1's command graph, on
        // N2, agrees).
        let mut sim = setup(&[NodeId(2)]);
        let own = collective().access(BufferId(2), AccessMode::DiscardWrite, RangeMapper::OneToOne);
        sim.submit(own).expect("each process writes its own cell");
        let halves = with_side_effect.access(BufferId(1), AccessMode::DiscardWrite, RangeMapper::OneToOne);
        sim.submit(halves).expect("each process writes its own half");
    }

    #[test]
    fn a_neighbourhood_write_over_100_ranks_in_1d_is_refused_naming_neighbours() {
        let mut sim = ranks(100);
        sim.create_buffer(BufferId(0), 1, GridBox::d1(0, 1000), true, Some("u"));
        let spec = TaskSpec::device_compute(&[1000]).access(
            BufferId(0),
            AccessMode::ReadWrite,
            RangeMapper::Neighborhood { extent: [1, 0, 0], shape: NeighborhoodShape::BoundingBox },
        );
        let err = sim.submit(spec).expect_err("neighbours write each other's edge cells");
        assert!(
            matches!(&*err.inner, TaskErrorKind::OverlappingWrite { first: NodeId(0), second: NodeId(1), .. }),
            "{err}"
        );
    }

    #[test]
    fn a_write_that_overlaps_on_two_nodes_is_found_on_a_run_of_one() {
        // The histogram a user writes first: every item atomicAdds into the bins, bound through `all` (a write here:
        // the kernel's atomics, which exempt it from the race check, are not modelled). One node runs it as one
        // chunk; two would both write every bin, which submit refuses there.
        let mut sim = ranks(1);
        sim.create_buffer(BufferId(0), 1, GridBox::d1(0, 100), true, Some("data"));
        sim.create_buffer(BufferId(1), 1, GridBox::d1(0, 16), true, Some("bins"));
        let histogram = TaskSpec::device_compute(&[100])
            .access(BufferId(0), AccessMode::Read, RangeMapper::OneToOne)
            .access(BufferId(1), AccessMode::Write, RangeMapper::All);
        let found = sim.overlap_on_two_nodes(&histogram).expect("two chunks both write every bin");
        assert!(
            matches!(&found, TaskErrorKind::OverlappingWrite { first: NodeId(0), second: NodeId(1), .. }),
            "{found}"
        );
        assert!(found.to_string().contains("buffer B1 \"bins\" is written in {[0] - [16]}"), "{found}");
        sim.submit(histogram).expect("one node runs the task as one chunk");
        // Disjoint writes, and a task of one item (one chunk on any number of nodes), are no overlap.
        let own = TaskSpec::device_compute(&[16]).access(BufferId(1), AccessMode::DiscardWrite, RangeMapper::OneToOne);
        assert!(sim.overlap_on_two_nodes(&own).is_none());
        let single = TaskSpec::device_compute(&[1]).access(BufferId(1), AccessMode::Write, RangeMapper::All);
        assert!(sim.overlap_on_two_nodes(&single).is_none());
        // On two nodes submit refuses it itself; nothing to foresee.
        let mut two = ranks(2);
        two.create_buffer(BufferId(1), 1, GridBox::d1(0, 16), true, Some("bins"));
        let all = TaskSpec::device_compute(&[100]).access(BufferId(1), AccessMode::Write, RangeMapper::All);
        assert!(two.overlap_on_two_nodes(&all).is_none());
        assert!(two.submit(all).is_err());
    }
}
