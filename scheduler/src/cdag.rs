//! [`CommandGraphGenerator`]: turns each task into the commands one rank runs, with no message between ranks.
//!
//! Every rank splits every task the same way ([`ChunkGrid`]) and can evaluate any chunk's range mappers, so each
//! rank knows, without asking, who holds the newest copy of every cell. Per buffer a rank tracks:
//!
//! - `last_writer`: the local command that last wrote each cell, and whether the local copy is *fresh* (the newest
//!   anywhere) and *replicated* (received from another rank, as opposed to produced here). Only the original
//!   producer of fresh data ever pushes it.
//! - `sent_to`: per target rank, the region of this rank's data it already received, so nothing is sent twice
//!   (per target rather than per cell: when every rank reads a different part, as in a transpose, a map of cells
//!   would split into a box per target and each push would scan them all, O(ranks²) per task).
//! - `readers`: local commands that read each cell since its last local write (anti-dependencies), kept as a log
//!   of (command, box still unwritten) rather than a map of cells to command sets: adding a reader is an append
//!   instead of a split of every entry it overlaps, and a write cuts boxes without normalizing any region.
//!
//! For each task: pushes go to remote chunks that read what this rank produced, one await-push per buffer covers
//! everything local chunks read but other ranks wrote, then one execution command per local chunk; finally cells
//! written by other ranks become stale here. Remote chunks are only evaluated where they can matter: a shaped range
//! mapper (one_to_one, neighborhood, slice, transposed) tells which chunks of the regular grid can touch this rank's
//! data, found by arithmetic on the grid's cuts, so the cost per task does not grow with the rank count for
//! nearest-neighbour patterns (see `../shared/DESIGN-NOTES.md` §1).
//!
//! Reductions follow Celerity: partial results stay pending until a task reads the buffer; then every rank pushes
//! its partial (an empty notification where it has none) to the readers, which await and combine them in rank order.

use std::borrow::Cow;
use std::fmt;

use celer_graph::{
    AccessMode, AccessRegions, BufferId, CollectiveGroupId, Command, CommandDependency, CommandId, CommandKind,
    DependencyKind, DependencyOrigin, EpochAction, ExecutionFront, GridBox, HostObjectId, IdMap, NodeId, NodeStore,
    RangeMapper, ReaderLog, ReductionId, Region, RegionMap, ResourceIdent, Task, TaskError, TaskErrorKind, TaskId,
    TaskKind, TransferId, VecPool,
};
use smallvec::SmallVec;

use crate::split::ChunkGrid;

/// Settings of one rank's generator.
#[derive(Clone, Debug)]
pub struct CdagConfig {
    /// Number of ranks.
    pub num_ranks: usize,
    /// The rank this generator builds commands for.
    pub local: NodeId,
    /// Keep a copy of every generated command (tests, graph dumps), surviving pruning.
    pub record: bool,
}

/// Where a rank's copy of a cell stands.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
struct WriterState {
    /// The local command that last wrote the cell (`None`: never written locally, e.g. uninitialized).
    cmd: Option<CommandId>,
    /// The local copy is the newest anywhere.
    fresh: bool,
    /// The local copy was received (or is host data every rank has), so this rank never pushes it.
    replicated: bool,
}

impl WriterState {
    /// This rank produced the cell and holds its newest copy: the data this rank pushes.
    fn is_original(&self) -> bool {
        self.fresh && !self.replicated && self.cmd.is_some()
    }
}

/// A set of ranks as sorted, disjoint, non-adjacent half-open intervals: "every rank below 900" is one interval,
/// so the all-to-all patterns, where a region's receivers grow rank by rank, cost O(1) per update instead of O(ranks).
#[derive(Clone, PartialEq, Eq, Hash, Default, Debug)]
struct RankSet(SmallVec<[(u32, u32); 2]>);

impl RankSet {
    fn new() -> Self {
        Self::default()
    }

    /// The ranks `[0, n)`.
    fn below(n: u32) -> Self {
        if n == 0 {
            Self::new()
        } else {
            Self(smallvec::smallvec![(0, n)])
        }
    }

    fn contains(&self, r: u32) -> bool {
        let i = self.0.partition_point(|&(_, end)| end <= r);
        self.0.get(i).is_some_and(|&(start, _)| start <= r)
    }

    /// Adds `r`, merging with neighbouring intervals.
    fn insert(&mut self, r: u32) {
        let i = self.0.partition_point(|&(_, end)| end < r);
        match self.0.get(i).copied() {
            Some((start, end)) if start <= r && r < end => {}
            Some((start, end)) if end == r => {
                // Extends interval i upwards; it may now touch interval i + 1.
                self.0[i] = (start, end + 1);
                if let Some(&(next_start, next_end)) = self.0.get(i + 1) {
                    if next_start == end + 1 {
                        self.0[i] = (start, next_end);
                        self.0.remove(i + 1);
                    }
                }
            }
            Some((start, end)) if start == r + 1 => self.0[i] = (r, end),
            _ => self.0.insert(i, (r, r + 1)),
        }
    }

    fn len(&self) -> usize {
        self.0.iter().map(|&(a, b)| (b - a) as usize).sum()
    }

    fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        self.0.iter().flat_map(|&(a, b)| a..b)
    }
}

/// Per target rank, the region of this rank's data that rank already received and nobody rewrote since; sorted by
/// rank. A sorted vector rather than a hash map: nearest-neighbour patterns hold two targets, where clearing by
/// walking a vector costs a fraction of a hash map's `retain`, and all-to-all patterns look targets up by binary search.
#[derive(Debug, Default)]
struct SentTo(Vec<(u32, Region)>);

impl SentTo {
    /// Forgets what was sent of `region` (it was rewritten, or is no longer ours to send).
    fn clear(&mut self, region: &Region) {
        if self.0.is_empty() {
            return;
        }
        // Fast path: one box covers everything sent (a task rewrote the whole buffer).
        let cut = region.boxes();
        if let [b] = cut {
            if self.0.iter().all(|(_, sent)| sent.boxes().iter().all(|s| b.contains(s))) {
                self.0.clear();
                return;
            }
        }
        // Most rewrites (the halo an await-push brings) miss everything sent: look before rewriting.
        if self.0.iter().any(|(_, sent)| sent.boxes().iter().any(|s| cut.iter().any(|c| c.intersects(s)))) {
            self.0.retain_mut(|(_, sent)| {
                if sent.intersects(region) {
                    *sent = sent.difference(region);
                }
                !sent.is_empty()
            });
        }
    }

    /// The part of `need` that `target` has not received yet.
    fn unsent(&self, target: u32, need: &Region) -> Region {
        match self.0.binary_search_by_key(&target, |e| e.0) {
            Ok(i) if self.0[i].1.intersects(need) => need.difference(&self.0[i].1),
            _ => need.clone(),
        }
    }

    /// Notes that `target` received `region`.
    fn record(&mut self, target: u32, region: &Region) {
        match self.0.binary_search_by_key(&target, |e| e.0) {
            Ok(i) => {
                let sent = &mut self.0[i].1;
                *sent = sent.union(region);
            }
            Err(i) => self.0.insert(i, (target, region.clone())),
        }
    }

    /// Boxes held, for the state-size measure.
    fn boxes(&self) -> usize {
        self.0.iter().map(|(_, r)| r.boxes().len()).sum()
    }
}

/// A reduction whose partial results wait on their ranks until a task reads the buffer.
#[derive(Clone, Debug)]
struct PendingReduction {
    id: ReductionId,
    /// Ranks that ran a chunk and so hold a partial result.
    contributors: RankSet,
}

#[derive(Debug)]
struct BufferState {
    dims: usize,
    extent: GridBox,
    name: Option<String>,
    last_writer: RegionMap<WriterState>,
    /// A box holding every cell this rank originally produced and still holds fresh (what it may have to push).
    /// Writes grow it, and only horizons and epochs shrink it back to the exact hull, so in between it may be loose;
    /// tasks whose remote chunks cannot read anything inside it skip the search for owned data altogether. Not kept
    /// on a single rank, which never pushes.
    owned_hull: GridBox,
    sent_to: SentTo,
    /// Local commands that read each cell since its last local write.
    readers: ReaderLog<CommandId>,
    pending_reduction: Option<PendingReduction>,
}

impl BufferState {
    fn ident(&self, id: BufferId) -> ResourceIdent {
        ResourceIdent::buffer(id, self.name.as_deref())
    }
}

/// How a task's index space is divided among ranks.
enum Chunking {
    /// Chunk `i` of the grid runs on rank `i`.
    Grid(ChunkGrid),
    /// Every rank runs the same box (fences: the data goes to every rank).
    Replicated(GridBox),
    /// One empty chunk, on rank 0: a task without items that reduces (it writes the reduction's identity, or keeps
    /// the current value).
    Empty,
}

impl Chunking {
    fn len(&self, num_ranks: usize) -> usize {
        match self {
            Chunking::Grid(g) => g.len(),
            Chunking::Replicated(_) => num_ranks,
            Chunking::Empty => 1,
        }
    }

    fn chunk(&self, i: usize) -> GridBox {
        match self {
            Chunking::Grid(g) => g.chunk(i),
            Chunking::Replicated(b) => *b,
            Chunking::Empty => GridBox::EMPTY,
        }
    }
}

type Deps = celer_graph::DependencyBuilder<CommandId>;

/// Chunk indices that may touch a region: a stencil's own chunk and its neighbours stay on the stack.
type Candidates = SmallVec<[usize; 8]>;

/// Builds one rank's command graph; see the [module docs](self).
pub struct CommandGraphGenerator {
    config: CdagConfig,
    me: u32,
    commands: NodeStore<Command>,
    next_id: u64,
    buffers: IdMap<BufferId, BufferState>,
    host_objects: IdMap<HostObjectId, CommandId>,
    collective_groups: IdMap<CollectiveGroupId, CommandId>,
    /// Commands nothing depends on yet (what the next horizon or epoch waits for).
    execution_front: ExecutionFront,
    epoch_for_new_commands: CommandId,
    current_horizon: Option<CommandId>,
    /// Horizon and epoch commands by task, to prune when the runtime reports a task reached.
    sync_commands: std::collections::VecDeque<(TaskId, CommandId)>,
    /// Commands generated by the current `build_task` call.
    batch: Vec<CommandId>,
    records: Vec<Command>,
    /// Emptied target lists of erased pushes, for new pushes to fill.
    target_lists: VecPool<(NodeId, Region)>,
}

impl CommandGraphGenerator {
    /// A generator holding the initial epoch command `C0` (for the init epoch task `T0`).
    ///
    /// # Panics
    /// If `local` is not below `num_ranks`.
    pub fn new(config: CdagConfig) -> Self {
        assert!((config.local.0 as usize) < config.num_ranks, "rank {} of {}", config.local, config.num_ranks);
        let me = config.local.0 as u32;
        let mut gen = Self {
            config,
            me,
            commands: NodeStore::new(),
            next_id: 0,
            buffers: IdMap::default(),
            host_objects: IdMap::default(),
            collective_groups: IdMap::default(),
            execution_front: ExecutionFront::new(),
            epoch_for_new_commands: CommandId(0),
            current_horizon: None,
            sync_commands: Default::default(),
            batch: Vec::new(),
            records: Vec::new(),
            target_lists: VecPool::new(),
        };
        gen.generate_sync(TaskId(0), CommandKind::Epoch { task: TaskId(0), action: EpochAction::Init });
        gen.batch.clear();
        gen
    }

    /// The rank this generator works for.
    pub fn local(&self) -> NodeId {
        self.config.local
    }

    /// Registers a buffer. Host-initialized data is present on every rank; other cells start uninitialized.
    pub fn create_buffer(
        &mut self,
        id: BufferId,
        dims: usize,
        extent: GridBox,
        host_initialized: bool,
        name: Option<String>,
    ) {
        let cmd = host_initialized.then_some(self.epoch_for_new_commands);
        let state = WriterState { cmd, fresh: true, replicated: true };
        self.buffers.insert(
            id,
            BufferState {
                dims,
                extent,
                name,
                last_writer: RegionMap::new(extent, state),
                owned_hull: GridBox::EMPTY,
                sent_to: SentTo::default(),
                readers: ReaderLog::new(),
                pending_reduction: None,
            },
        );
    }

    /// Names a buffer in errors.
    pub fn set_buffer_name(&mut self, id: BufferId, name: &str) {
        if let Some(b) = self.buffers.get_mut(&id) {
            b.name = Some(name.to_owned());
        }
    }

    /// Forgets a buffer.
    pub fn destroy_buffer(&mut self, id: BufferId) {
        self.buffers.remove(&id);
    }

    /// The command `id`, unless pruned.
    pub fn command(&self, id: CommandId) -> Option<&Command> {
        self.commands.get(id.0)
    }

    /// Every command generated so far, if recording is on (in generation order).
    pub fn records(&self) -> &[Command] {
        &self.records
    }

    /// Number of live commands.
    pub fn live_command_count(&self) -> usize {
        self.commands.len()
    }

    /// The ranks whose chunks of `producer` write some of `region` of `buffer` (for diagnostics: who an
    /// await-push waits for). Empty for an unknown buffer; costs what generating the task's pushes costs.
    pub fn producer_ranks(&self, producer: &Task, buffer: BufferId, region: &Region) -> Vec<NodeId> {
        if !self.buffers.contains_key(&buffer)
            || producer.spec.accesses.is_empty() && producer.spec.reductions.is_empty()
        {
            return Vec::new();
        }
        let chunking = self.chunking(producer);
        let n_chunks = chunking.len(self.config.num_ranks);
        self.candidates(producer, &chunking, buffer, &region.bounding_box(), None, AccessMode::produces)
            .into_iter()
            .filter(|&i| i < n_chunks)
            .filter(|&i| {
                self.chunk_regions(producer, buffer, &chunking.chunk(i), i as u32)
                    .is_ok_and(|(_, produced)| !produced.intersection(region).is_empty())
            })
            .map(|i| NodeId(i as u64))
            .collect()
    }

    /// The tracking state of one buffer, for debugging.
    pub fn debug_buffer(&self, b: BufferId) -> String {
        format!("{:#?}", self.buffers.get(&b))
    }

    /// Total boxes in all tracking maps (a measure of the generator's state).
    pub fn region_map_boxes(&self) -> usize {
        self.buffers.values().map(|b| b.last_writer.len() + b.sent_to.boxes() + b.readers.len()).sum()
    }

    /// Tells the generator the runtime reached the horizon or epoch of task `task`: older commands are freed.
    ///
    /// Only horizons up to the applied one (the one new commands hang off) may be reported.
    pub fn notify_epoch_reached(&mut self, task: TaskId) {
        while self.sync_commands.len() > 1 && self.sync_commands[1].0 <= task {
            self.sync_commands.pop_front();
        }
        if let Some(&(t, c)) = self.sync_commands.front() {
            if t == task {
                debug_assert!(c <= self.epoch_for_new_commands, "{c} reached before it was applied");
                // Erased pushes hand back their target lists: later pushes reuse them instead of allocating.
                let pool = &mut self.target_lists;
                self.commands.erase_before_epoch_with(c.0, |cmd| {
                    if let CommandKind::Push { targets, .. } = &mut cmd.kind {
                        pool.give(targets);
                    }
                });
            }
        }
    }

    /// Generates this rank's commands for `task` and returns their ids in a valid execution order.
    ///
    /// # Errors
    /// [`TaskErrorKind::OverlappingWrite`] when two ranks write the same cells, out-of-bounds custom mappers.
    pub fn build_task(&mut self, task: &Task) -> Result<&[CommandId], TaskError> {
        self.batch.clear();
        match task.kind() {
            TaskKind::Epoch(action) => {
                self.generate_sync(task.id, CommandKind::Epoch { task: task.id, action });
            }
            TaskKind::Horizon => {
                self.generate_sync(task.id, CommandKind::Horizon { task: task.id });
            }
            _ => self.generate_compute(task)?,
        }
        Ok(&self.batch)
    }

    fn new_command(&mut self, task: TaskId, kind: CommandKind, deps: Deps) -> CommandId {
        let id = CommandId(self.next_id);
        self.next_id += 1;
        for (d, _, _) in deps.iter() {
            self.execution_front.follow(d.0);
        }
        let sync = matches!(kind, CommandKind::Horizon { .. } | CommandKind::Epoch { .. });
        self.execution_front.push(id.0, sync);
        if sync {
            self.commands.begin_epoch(id.0);
        }
        let dependencies =
            deps.iter().map(|(command, kind, origin)| CommandDependency { command, kind, origin }).collect();
        let cmd = self.commands.insert_with(id.0, || Command { id, task, kind, dependencies });
        if self.config.record {
            self.records.push(cmd.clone());
        }
        self.batch.push(id);
        id
    }

    fn generate_sync(&mut self, task: TaskId, kind: CommandKind) {
        let mut deps = Deps::default();
        for c in self.execution_front.iter() {
            deps.add(CommandId(c), DependencyKind::True, DependencyOrigin::ExecutionFront);
        }
        let is_epoch = matches!(kind, CommandKind::Epoch { .. });
        let id = self.new_command(task, kind, deps);
        self.sync_commands.push_back((task, id));
        if is_epoch {
            self.apply_epoch(id);
            self.current_horizon = None;
        } else if let Some(previous) = self.current_horizon.replace(id) {
            self.apply_epoch(previous);
        }
    }

    /// Rewrites every tracked command older than `epoch` to `epoch`.
    fn apply_epoch(&mut self, epoch: CommandId) {
        let older = |c: CommandId| if c < epoch { epoch } else { c };
        for b in self.buffers.values_mut() {
            b.last_writer.apply_to_values(|w| WriterState { cmd: w.cmd.map(older), ..*w });
            if self.config.num_ranks > 1 {
                b.owned_hull = GridBox::bounding_box_of_iter(
                    b.last_writer.entries().iter().filter(|(_, w)| w.is_original()).map(|(bx, _)| *bx),
                );
            }
            b.readers.collapse_before(epoch);
        }
        for c in self.host_objects.values_mut() {
            *c = older(*c);
        }
        for c in self.collective_groups.values_mut() {
            *c = older(*c);
        }
        self.epoch_for_new_commands = epoch;
    }

    fn chunking(&self, task: &Task) -> Chunking {
        let n = self.config.num_ranks;
        match task.kind() {
            TaskKind::Fence => Chunking::Replicated(task.spec.range),
            TaskKind::Once => Chunking::Grid(ChunkGrid::new(task.spec.range, 1, task.spec.hint, [1; 3])),
            TaskKind::Collective(_) => Chunking::Grid(ChunkGrid::new(GridBox::d1(0, n), n, Default::default(), [1; 3])),
            // No items: no chunk at all (no command on any rank), unless a reduction needs its result written.
            _ if task.spec.range.is_empty() && !task.spec.reductions.is_empty() => Chunking::Empty,
            _ => Chunking::Grid(ChunkGrid::new(task.spec.range, n, task.spec.hint, task.spec.granularity)),
        }
    }

    /// What chunk `chunk` (run by rank `rank`) consumes and produces of `buffer`.
    fn chunk_regions(
        &self,
        task: &Task,
        buffer: BufferId,
        chunk: &GridBox,
        rank: u32,
    ) -> Result<(Region, Region), TaskError> {
        // A chunk that is the whole index space (one rank, a task of one chunk, a fence) touches what the task graph
        // already computed for the task, except where a reduction reads its current value on rank 0 only.
        if *chunk == task.spec.range && (rank == 0 || !task.spec.reductions.iter().any(|r| r.buffer == buffer)) {
            if let Some(r) = task.regions.iter().find(|r| r.buffer == buffer) {
                return Ok((r.consumed.clone(), r.produced.clone()));
            }
        }
        let state = &self.buffers[&buffer];
        let mut acc = AccessRegions::new(buffer);
        // An empty chunk has no items: its range mappers are not applied, it touches nothing.
        let items = !chunk.is_empty();
        for a in task.spec.accesses.iter().filter(|a| items && a.buffer == buffer) {
            let r = a.mapper.apply(chunk, task.spec.dims, &state.extent, state.dims).map_err(|e| TaskError {
                task: task.ident(),
                inner: Box::new(TaskErrorKind::Mapper { buffer: state.ident(buffer), mode: a.mode.name(), error: e }),
            })?;
            if let RangeMapper::Custom { reach, .. } = &a.mapper {
                if !Region::from(state.extent).contains(&r) {
                    return Err(TaskError {
                        task: task.ident(),
                        inner: Box::new(TaskErrorKind::OutOfBounds {
                            buffer: state.ident(buffer),
                            mapper: a.mapper.name(),
                            outside: r.difference(&Region::from(state.extent)),
                            region: r,
                            extent: state.extent,
                        }),
                    });
                }
                // A declared reach decides which remote chunks this rank evaluates: check it on the chunk this
                // rank runs, which must lie within the reach of the cells it touches.
                if let (Some(reach), true) = (reach, rank == self.me && !r.is_empty()) {
                    let declared = reach(&r.bounding_box(), &task.spec.range);
                    if !declared.contains(chunk) {
                        return Err(TaskError {
                            task: task.ident(),
                            inner: Box::new(TaskErrorKind::MapperReach {
                                buffer: state.ident(buffer),
                                mapper: a.mapper.name(),
                                chunk: *chunk,
                                cells: r.bounding_box(),
                                declared,
                            }),
                        });
                    }
                }
            }
            acc.add(a.mode, r);
        }
        for red in task.spec.reductions.iter().filter(|r| r.buffer == buffer) {
            acc.produced = Region::from(state.extent);
            if red.include_current_value && rank == 0 {
                acc.consumed = Region::from(state.extent);
            }
        }
        Ok((acc.consumed, acc.produced))
    }

    /// A box of kernel indices outside which no chunk's accesses of `buffer` (with modes `filter`) can touch `r`.
    fn reach(&self, task: &Task, buffer: BufferId, r: &GridBox, filter: impl Fn(AccessMode) -> bool) -> GridBox {
        let mut out = GridBox::EMPTY;
        for a in task.spec.accesses.iter().filter(|a| a.buffer == buffer && filter(a.mode)) {
            let b = a.mapper.reach(r, &task.spec.range);
            out = out.bounding_box(&b);
        }
        if task.spec.reductions.iter().any(|red| red.buffer == buffer) {
            out = task.spec.range;
        }
        out
    }

    /// Whether every access of `buffer` uses a mapper whose union over chunks equals its image of the whole range
    /// (the built-in ones, and custom ones that declared a reach and with it that they are additive).
    fn shaped(task: &Task, buffer: BufferId) -> bool {
        task.spec
            .accesses
            .iter()
            .filter(|a| a.buffer == buffer)
            .all(|a| !matches!(a.mapper, RangeMapper::Custom { reach: None, .. }))
    }

    /// Chunk indices (other than `skip`) that may touch the box `bbox` of `buffer` through accesses passing `filter`.
    fn candidates(
        &self,
        task: &Task,
        chunking: &Chunking,
        buffer: BufferId,
        bbox: &GridBox,
        skip: Option<usize>,
        filter: impl Fn(AccessMode) -> bool,
    ) -> Candidates {
        let mut out = Candidates::new();
        match chunking {
            Chunking::Replicated(_) => out.extend((0..self.config.num_ranks).filter(|&i| Some(i) != skip)),
            Chunking::Empty => out.extend((skip != Some(0)).then_some(0)),
            Chunking::Grid(g) => g.for_each_intersecting(&self.reach(task, buffer, bbox, filter), |i| {
                if Some(i) != skip {
                    out.push(i);
                }
            }),
        }
        out
    }

    fn generate_compute(&mut self, task: &Task) -> Result<(), TaskError> {
        let chunking = self.chunking(task);
        let n_chunks = chunking.len(self.config.num_ranks);
        let me = self.me as usize;
        let local_chunk = (me < n_chunks).then(|| chunking.chunk(me));
        let buffers: SmallVec<[BufferId; 4]> = task.regions.iter().map(|r| r.buffer).collect();

        // Local requirements per buffer.
        let mut local: SmallVec<[(BufferId, Region, Region); 4]> = SmallVec::new();
        for &b in &buffers {
            let (c, p) = match &local_chunk {
                Some(chunk) => self.chunk_regions(task, b, chunk, self.me)?,
                None => (Region::new(), Region::new()),
            };
            local.push((b, c, p));
        }
        let is_reduction = |b: BufferId| task.spec.reductions.iter().any(|r| r.buffer == b);

        // Overlapping writes between ranks (reductions write partial results, which is their point). Chunks are
        // disjoint, so buffers written only one to one cannot overlap: no need to look.
        let disjoint_writes = |b: BufferId| {
            task.spec
                .accesses
                .iter()
                .filter(|a| a.buffer == b && a.mode.produces())
                .all(|a| matches!(a.mapper, RangeMapper::OneToOne))
        };
        if n_chunks > 1 {
            for (b, _, produced) in
                local.iter().filter(|l| !l.2.is_empty() && !is_reduction(l.0) && !disjoint_writes(l.0))
            {
                for i in self.candidates(task, &chunking, *b, &produced.bounding_box(), Some(me), AccessMode::produces)
                {
                    let (_, other) = self.chunk_regions(task, *b, &chunking.chunk(i), i as u32)?;
                    let overlap = other.intersection(produced);
                    if !overlap.is_empty() {
                        let (first, second) = (NodeId(me.min(i) as u64), NodeId(me.max(i) as u64));
                        return Err(TaskError {
                            task: task.ident(),
                            inner: Box::new(TaskErrorKind::OverlappingWrite {
                                buffer: self.buffers[b].ident(*b),
                                region: overlap,
                                first,
                                second,
                            }),
                        });
                    }
                }
            }
        }

        // Pending reductions that this task reads.
        for (i, &b) in buffers.iter().enumerate() {
            if self.buffers[&b].pending_reduction.is_some() && !task.regions[i].consumed.is_empty() {
                self.resolve_reduction(task, &chunking, b)?;
            }
        }

        // Pushes: data this rank produced that remote chunks read.
        for (i, &b) in buffers.iter().enumerate() {
            if task.regions[i].consumed.is_empty() {
                continue;
            }
            self.generate_push(task, &chunking, b, &task.regions[i].consumed, me)?;
        }

        // Await-pushes: what local chunks read that is stale here. The same pass collects the local chunk's true
        // dependencies on the fresh part (the await-push itself covers the rest).
        let mut exec_deps = Deps::default();
        for (b, consumed, _) in &local {
            if consumed.is_empty() {
                continue;
            }
            let state = &self.buffers[b];
            let mut missing: SmallVec<[GridBox; 4]> = SmallVec::new();
            // The stale cells' last local writers: the await-push overwrites them (output dependencies, as
            // `write_dependencies` would find them, without scanning the map again).
            let mut overwritten: SmallVec<[CommandId; 4]> = SmallVec::new();
            state.last_writer.for_each_in(consumed, |bx, w| {
                if !w.fresh {
                    missing.push(bx);
                    if let Some(c) = w.cmd {
                        overwritten.push(c);
                    }
                } else if let Some(c) = w.cmd {
                    exec_deps.add(c, DependencyKind::True, DependencyOrigin::Dataflow);
                }
            });
            if missing.is_empty() {
                continue;
            }
            let region = Region::from_boxes(missing);
            let mut deps = Deps::default();
            state.readers.for_each_in(&region, |c| deps.add(c, DependencyKind::Anti, DependencyOrigin::Dataflow));
            for c in overwritten {
                deps.add(c, DependencyKind::Output, DependencyOrigin::Dataflow);
            }
            let transfer = TransferId { task: task.id, buffer: *b, reduction: None };
            self.add_epoch_dependency(&mut deps);
            let cmd = self.new_command(task.id, CommandKind::AwaitPush { transfer, region }, deps);
            exec_deps.add(cmd, DependencyKind::True, DependencyOrigin::Dataflow);
            // The region now lives in the command; borrow it from there rather than keeping a copy.
            let Some(Command { kind: CommandKind::AwaitPush { region, .. }, .. }) = self.commands.get(cmd.0) else {
                unreachable!("{cmd} was just inserted as an await-push");
            };
            let state = self.buffers.get_mut(b).unwrap();
            state.last_writer.update_region(region, WriterState { cmd: Some(cmd), fresh: true, replicated: true });
            state.readers.clear(region);
            state.sent_to.clear(region);
        }

        // The local chunk.
        if let Some(chunk) = local_chunk {
            let mut deps = exec_deps;
            for (b, consumed, produced) in &local {
                // A chunk writing only what it read already depends on every last writer of it: on the fresh ones
                // directly, and on the await-push that replaced the stale ones. Only its readers are left to find.
                if consumed == produced {
                    self.reader_dependencies(*b, produced, &mut deps);
                } else {
                    self.write_dependencies(*b, produced, &mut deps);
                }
            }
            for (ho, _) in &task.spec.side_effects {
                if let Some(&c) = self.host_objects.get(ho) {
                    deps.add(c, DependencyKind::True, DependencyOrigin::SideEffect);
                }
            }
            if let TaskKind::Collective(g) = task.kind() {
                if let Some(&c) = self.collective_groups.get(&g) {
                    deps.add(c, DependencyKind::True, DependencyOrigin::CollectiveGroupSerialization);
                }
            }
            self.add_epoch_dependency(&mut deps);
            let kind = match task.kind() {
                TaskKind::Fence => CommandKind::Fence { task: task.id },
                _ => CommandKind::Execution {
                    task: task.id,
                    chunk,
                    initializes_reductions: self.me == 0
                        && task.spec.reductions.iter().any(|r| r.include_current_value),
                },
            };
            let cmd = self.new_command(task.id, kind, deps);
            for (ho, _) in &task.spec.side_effects {
                self.host_objects.insert(*ho, cmd);
            }
            if let TaskKind::Collective(g) = task.kind() {
                self.collective_groups.insert(g, cmd);
            }
            for (i, (b, consumed, produced)) in local.iter_mut().enumerate() {
                let global = if produced.is_empty() {
                    None
                } else {
                    self.written_elsewhere(task, &chunking, i, n_chunks, true)?
                };
                let state = self.buffers.get_mut(b).unwrap();
                // A read of cells this command also writes ends with its own write: no reader to remember.
                if !consumed.is_empty() && consumed != produced {
                    state.readers.add(cmd, consumed.boxes().iter().copied());
                }
                if !produced.is_empty() {
                    let value = WriterState { cmd: Some(cmd), fresh: true, replicated: false };
                    if self.config.num_ranks > 1 {
                        state.owned_hull = state.owned_hull.bounding_box(&produced.bounding_box());
                    }
                    match global {
                        // Written here, and the rest of what the task writes is stale here (see `mark_stale`).
                        Some(global) => {
                            state
                                .last_writer
                                .update_split(produced, value, &global, |w| WriterState { fresh: false, ..*w });
                            state.sent_to.clear(&global);
                        }
                        None => {
                            state.last_writer.update_region(produced, value);
                            state.sent_to.clear(produced);
                        }
                    }
                    state.readers.clear(produced);
                }
            }
        }

        // Cells other ranks wrote are stale here; reductions over several chunks stay pending.
        for (i, (b, _, local_produced)) in local.iter().enumerate() {
            if task.regions[i].produced.is_empty() {
                continue;
            }
            if let Some(red) = task.spec.reductions.iter().find(|r| r.buffer == *b) {
                let state = self.buffers.get_mut(b).unwrap();
                if n_chunks > 1 {
                    state.pending_reduction =
                        Some(PendingReduction { id: red.id, contributors: RankSet::below(n_chunks as u32) });
                    if local_produced.is_empty() {
                        mark_stale(state, &Region::from(state.extent));
                    }
                } else {
                    state.pending_reduction = None;
                    if local_produced.is_empty() {
                        mark_stale(state, &Region::from(state.extent));
                    }
                }
                continue;
            }
            if n_chunks == 1 && local_chunk.is_some() {
                // The only chunk is ours: nothing was written elsewhere.
                self.buffers.get_mut(b).unwrap().pending_reduction = None;
                continue;
            }
            // Overwriting a pending reduction's buffer discards the reduction.
            self.buffers.get_mut(b).unwrap().pending_reduction = None;
            // Where this rank wrote some of it, the local chunk's update above already marked the rest stale.
            if local_produced.is_empty() {
                if let Some(global) = self.written_elsewhere(task, &chunking, i, n_chunks, local_chunk.is_some())? {
                    mark_stale(self.buffers.get_mut(b).unwrap(), &global);
                }
            }
        }
        Ok(())
    }

    /// What the whole task writes of its `i`th buffer, when other ranks write some of it (`None` when nothing is
    /// written, the only chunk is local, or the buffer is reduced: partial results stay pending). The local chunk's
    /// write and "the rest is stale here" then become one region-map update, with no difference computed.
    fn written_elsewhere<'t>(
        &self,
        task: &'t Task,
        chunking: &Chunking,
        i: usize,
        n_chunks: usize,
        has_local_chunk: bool,
    ) -> Result<Option<Cow<'t, Region>>, TaskError> {
        let r = &task.regions[i];
        if r.produced.is_empty()
            || (n_chunks == 1 && has_local_chunk)
            || task.spec.reductions.iter().any(|red| red.buffer == r.buffer)
        {
            return Ok(None);
        }
        if Self::shaped(task, r.buffer) {
            return Ok(Some(Cow::Borrowed(&r.produced)));
        }
        let mut all = Region::new();
        for c in 0..n_chunks {
            let (_, p) = self.chunk_regions(task, r.buffer, &chunking.chunk(c), c as u32)?;
            all.absorb(p);
        }
        Ok(Some(Cow::Owned(all)))
    }

    /// Pushes for `b`: the cells this rank originally produced that remote chunks of `task` read and do not have.
    fn generate_push(
        &mut self,
        task: &Task,
        chunking: &Chunking,
        b: BufferId,
        global_consumed: &Region,
        me: usize,
    ) -> Result<(), TaskError> {
        if self.config.num_ranks == 1 {
            return Ok(());
        }
        // Only what this rank originally produced and somebody reads matters; look nowhere else. Which remote
        // chunks can read any of it follows from the hull of the owned data, before looking for the data itself
        // (a one-to-one read of what this rank wrote last needs nothing from it).
        let state = &self.buffers[&b];
        if state.owned_hull.is_empty() {
            return Ok(());
        }
        let n_chunks = chunking.len(self.config.num_ranks);
        let mut candidates = self.candidates(task, chunking, b, &state.owned_hull, Some(me), AccessMode::consumes);
        candidates.retain(|i| *i < n_chunks);
        if candidates.is_empty() {
            return Ok(());
        }
        // The owned boxes and, at the same index, their writers (what a push of them depends on).
        let mut owned_boxes: SmallVec<[GridBox; 4]> = SmallVec::new();
        let mut owned_writers: SmallVec<[CommandId; 4]> = SmallVec::new();
        let whole;
        let within = if Self::shaped(task, b) {
            global_consumed
        } else {
            whole = Region::from(state.extent);
            &whole
        };
        state.last_writer.for_each_in(within, |bx, w| {
            if let (true, Some(c)) = (w.is_original(), w.cmd) {
                owned_boxes.push(bx);
                owned_writers.push(c);
            }
        });
        debug_assert!(owned_boxes.iter().all(|o| state.owned_hull.contains(o)), "{b}: owned data outside its hull");
        if owned_boxes.is_empty() {
            return Ok(());
        }
        // The map's boxes are disjoint, so `owned_boxes` is the owned region without normalizing it: only its
        // intersections with what remote chunks read are needed.
        let mut targets = self.target_lists.take();
        for i in candidates {
            let consumed = self.chunk_regions(task, b, &chunking.chunk(i), i as u32)?.0;
            let need = consumed.intersect_boxes(&owned_boxes);
            if need.is_empty() {
                continue;
            }
            let state = self.buffers.get_mut(&b).unwrap();
            let send = state.sent_to.unsent(i as u32, &need);
            if send.is_empty() {
                continue;
            }
            state.sent_to.record(i as u32, &send);
            targets.push((NodeId(i as u64), send));
        }
        if targets.is_empty() {
            self.target_lists.give(&mut targets);
            return Ok(());
        }
        let mut deps = Deps::default();
        for (_, r) in &targets {
            for (ob, &c) in owned_boxes.iter().zip(&owned_writers) {
                if r.intersects_box(ob) {
                    deps.add(c, DependencyKind::True, DependencyOrigin::Dataflow);
                }
            }
        }
        // The push reads what it sends. Sends to one or two neighbours are logged as they are; more targets log
        // their union, so a region every rank receives is one entry rather than one per rank.
        let read = match &targets[..] {
            [_] | [_, _] => None,
            _ => Some(Region::from_boxes(targets.iter().flat_map(|(_, r)| r.boxes().iter().copied()))),
        };
        let transfer = TransferId { task: task.id, buffer: b, reduction: None };
        let cmd = self.new_command(task.id, CommandKind::Push { transfer, targets }, deps);
        let readers = &mut self.buffers.get_mut(&b).unwrap().readers;
        match read {
            Some(read) => readers.add(cmd, read.boxes().iter().copied()),
            // Read back from the command the targets moved into (copying the boxes out first cost 1.5 % at 4 ranks).
            None => {
                let Some(Command { kind: CommandKind::Push { targets, .. }, .. }) = self.commands.get(cmd.0) else {
                    unreachable!("{cmd} was just inserted as a push");
                };
                readers.add(cmd, targets.iter().flat_map(|(_, r)| r.boxes().iter().copied()));
            }
        }
        Ok(())
    }

    /// Pushes partial results to the reading ranks, and on reading ranks awaits and combines them.
    fn resolve_reduction(&mut self, task: &Task, chunking: &Chunking, b: BufferId) -> Result<(), TaskError> {
        let n = self.config.num_ranks;
        let pending = self.buffers[&b].pending_reduction.clone().expect("checked by caller");
        let mut readers: RankSet = RankSet::new();
        for i in 0..chunking.len(n) {
            let consumed = self.chunk_regions(task, b, &chunking.chunk(i), i as u32)?.0;
            if !consumed.is_empty() {
                readers.insert(i as u32);
            }
        }
        let extent = Region::from(self.buffers[&b].extent);
        let transfer = TransferId { task: task.id, buffer: b, reduction: Some(pending.id) };
        let has_partial = pending.contributors.contains(self.me);
        let partial_writer = self.buffers[&b].last_writer.entries()[0].1.cmd;
        // Every rank tells every other reading rank its partial result, or that it has none.
        let targets: Vec<(NodeId, Region)> = readers
            .iter()
            .filter(|&r| r != self.me)
            .map(|r| (NodeId(r as u64), if has_partial { extent.clone() } else { Region::new() }))
            .collect();
        if !targets.is_empty() {
            let mut deps = Deps::default();
            if has_partial {
                if let Some(c) = partial_writer {
                    deps.add(c, DependencyKind::True, DependencyOrigin::Dataflow);
                }
            }
            self.add_epoch_dependency(&mut deps);
            let cmd = self.new_command(task.id, CommandKind::Push { transfer, targets }, deps);
            if has_partial {
                self.buffers.get_mut(&b).unwrap().readers.add(cmd, extent.boxes().iter().copied());
            }
        }
        let reads_here = readers.contains(self.me);
        if reads_here {
            let mut deps = Deps::default();
            self.write_dependencies(b, &extent, &mut deps);
            self.add_epoch_dependency(&mut deps);
            let await_cmd = if n > 1 {
                Some(self.new_command(task.id, CommandKind::AwaitPush { transfer, region: extent.clone() }, deps))
            } else {
                None
            };
            let mut deps = Deps::default();
            if let Some(a) = await_cmd {
                deps.add(a, DependencyKind::True, DependencyOrigin::Dataflow);
            }
            if has_partial {
                if let Some(c) = partial_writer {
                    deps.add(c, DependencyKind::True, DependencyOrigin::Dataflow);
                }
            }
            self.add_epoch_dependency(&mut deps);
            let kind = CommandKind::Reduction { reduction: pending.id, buffer: b, has_local_contribution: has_partial };
            let cmd = self.new_command(task.id, kind, deps);
            let state = self.buffers.get_mut(&b).unwrap();
            // With every rank reading, everyone holds the result and nobody pushes it. Otherwise the first reader
            // owns it (it serves later readers elsewhere), and knows which ranks combined it themselves.
            let owner = readers.len() < n && readers.iter().next() == Some(self.me);
            let replicated = !owner;
            state.last_writer.update_region(&extent, WriterState { cmd: Some(cmd), fresh: true, replicated });
            state.readers.clear(&extent);
            state.sent_to.clear(&extent);
            if owner {
                state.owned_hull = state.extent;
                for r in readers.iter().filter(|&r| r != self.me) {
                    state.sent_to.record(r, &extent);
                }
            }
        } else {
            mark_stale(self.buffers.get_mut(&b).unwrap(), &extent);
        }
        self.buffers.get_mut(&b).unwrap().pending_reduction = None;
        Ok(())
    }

    /// Anti-dependencies on local readers of `region` since its last write, output ones on its last writers.
    ///
    /// An output edge to a writer whose data was read is redundant (the reader already depends on the writer), but
    /// cheaper to add than to rule out; the strongest kind wins when a command is both reader and writer.
    fn write_dependencies(&self, b: BufferId, region: &Region, deps: &mut Deps) {
        if region.is_empty() {
            return;
        }
        self.reader_dependencies(b, region, deps);
        self.buffers[&b].last_writer.for_each_in(region, |_, w| {
            if let Some(c) = w.cmd {
                deps.add(c, DependencyKind::Output, DependencyOrigin::Dataflow);
            }
        });
    }

    /// Anti-dependencies on local readers of `region` since its last write.
    fn reader_dependencies(&self, b: BufferId, region: &Region, deps: &mut Deps) {
        if !region.is_empty() {
            let state = &self.buffers[&b];
            state.readers.for_each_in(region, |c| deps.add(c, DependencyKind::Anti, DependencyOrigin::Dataflow));
        }
    }

    fn add_epoch_dependency(&self, deps: &mut Deps) {
        if !deps.has_true() {
            deps.add(self.epoch_for_new_commands, DependencyKind::True, DependencyOrigin::LastEpoch);
        }
    }

    /// The commands recorded so far as Graphviz DOT (needs `record`).
    pub fn to_dot(&self) -> String {
        let mut out = format!(
            "digraph CommandGraph_{} {{\n  label=\"command graph of {}\";\n  node [shape=box fontname=monospace];\n",
            self.config.local.0, self.config.local
        );
        for c in &self.records {
            let detail = match &c.kind {
                CommandKind::Execution { chunk, .. } => format!("\\n{chunk}"),
                CommandKind::Push { transfer, targets } => {
                    let t: Vec<String> = targets.iter().map(|(n, r)| format!("{n} {r}")).collect();
                    format!(" {transfer}\\n{}", t.join("\\n"))
                }
                CommandKind::AwaitPush { transfer, region } => format!(" {transfer}\\n{region}"),
                CommandKind::Reduction { reduction, buffer, .. } => format!(" {reduction} {buffer}"),
                _ => String::new(),
            };
            out += &format!(
                "  {}_{} [label=\"{} {} {}{}\"];\n",
                self.config.local,
                c.id,
                c.id,
                c.task,
                c.kind.name(),
                detail
            );
            for d in &c.dependencies {
                let style = match d.kind {
                    DependencyKind::True => "",
                    DependencyKind::Anti => "style=dashed",
                    DependencyKind::Output => "style=dotted",
                };
                out += &format!("  {0}_{1} -> {0}_{2} [{3}];\n", self.config.local, d.command, c.id, style);
            }
        }
        out += "}\n";
        out
    }
}

/// Marks `region` as written elsewhere: the local copy is no longer the newest, and no longer ours to push.
fn mark_stale(state: &mut BufferState, region: &Region) {
    state.last_writer.update_values_in(region, |w| WriterState { fresh: false, ..*w });
    state.sent_to.clear(region);
}

impl fmt::Debug for CommandGraphGenerator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CommandGraphGenerator")
            .field("local", &self.config.local)
            .field("num_ranks", &self.config.num_ranks)
            .field("live_commands", &self.commands.len())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::RankSet;
    use std::collections::BTreeSet;

    #[test]
    fn rank_sets_match_a_plain_set_and_stay_merged() {
        let mut set = RankSet::new();
        let mut model = BTreeSet::new();
        // A fixed scramble of 0..64, with repeats.
        for k in 0..200u32 {
            let r = (k * 37 + k / 3) % 64;
            set.insert(r);
            model.insert(r);
            assert_eq!(set.iter().collect::<BTreeSet<_>>(), model);
            assert_eq!(set.len(), model.len());
            for q in 0..66 {
                assert_eq!(set.contains(q), model.contains(&q), "rank {q} after inserting {r}");
            }
            // Intervals are sorted, disjoint and never adjacent.
            assert!(set.0.windows(2).all(|w| w[0].1 < w[1].0), "{:?}", set.0);
        }
        for r in 0..64 {
            set.insert(r);
        }
        assert_eq!(set.0.as_slice(), &[(0, 64)], "all of 0..64 is one interval");
        assert_eq!(RankSet::below(5).iter().collect::<Vec<_>>(), vec![0, 1, 2, 3, 4]);
    }
}
