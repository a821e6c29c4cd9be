//! [`TaskManager`]: builds the task graph from submissions, with dependencies, horizons and epochs.
//!
//! Every rank runs the same task manager over the same submissions and so builds the same graph. Dependencies come
//! from a region map of the last writer of every cell and a [`ReaderLog`] of the readers since that write, per
//! buffer. A task that reads gets a true dependency on each last writer of what it reads; a task that writes gets an
//! anti-dependency on each reader since the last write, or an output dependency on the last writer where nobody read.
//!
//! Horizons bound the graph. After each submission the manager checks the critical path (grown by
//! [`TaskManagerConfig::horizon_step`] since the last horizon) and the execution front (at least
//! [`TaskManagerConfig::horizon_max_parallelism`] tasks wide); either one inserts a horizon that depends on the whole
//! front. The *previous* horizon is then applied: every older writer, reader and side effect in the maps is rewritten
//! to it, so the maps collapse and nothing refers to older tasks, which can be erased once the runtime reports the
//! horizon reached. Epochs do the same at once. This one-horizon delay follows Celerity (Thoman et al., "Horizons",
//! SN Computer Science 2024), so that in-flight work before the newest horizon is never waited on.
//!
//! # Examples
//! ```
//! use celer_graph::{AccessMode, BufferId, GridBox, RangeMapper, TaskManager, TaskManagerConfig, TaskSpec};
//! let mut tm = TaskManager::new(TaskManagerConfig::default());
//! let buf = BufferId(0);
//! tm.create_buffer(buf, 1, GridBox::d1(0, 64), false, Some("x".into()));
//! let w = tm.submit(TaskSpec::device_compute(&[64]).access(buf, AccessMode::DiscardWrite, RangeMapper::OneToOne)).unwrap();
//! let r = tm.submit(TaskSpec::device_compute(&[64]).access(buf, AccessMode::Read, RangeMapper::All)).unwrap();
//! assert!(tm.task(r).unwrap().depends_on(w));
//! ```

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use hashbrown::HashSet;
use smallvec::SmallVec;

use crate::error::{Diagnostic, ErrorPolicy, TaskError, TaskErrorKind};
use crate::geometry::{BufferExtent, GridBox, Region};
use crate::ids::{BufferId, CollectiveGroupId, HostObjectId, IdMap, TaskId};
use crate::node_store::ExecutionFront;
use crate::reader_log::ReaderLog;
use crate::region_cache::RegionCache;
use crate::region_map::RegionMap;
use crate::task::{
    AccessRegions, BufferAccess, Dependency, DependencyBuilder, DependencyKind, DependencyOrigin, EpochAction,
    RangeMapper, RegionList, ResourceIdent, Task, TaskKind, TaskSpec,
};
use crate::task_store::TaskStore;

/// Into how many slabs per dimension [`TaskManager::intra_task_race`] splits an index space to look for cells that
/// one part of a task reads and another writes (more find nothing new for the built-in mappers: a race shows at the
/// first slab border).
const RACE_PROBE_PIECES: usize = 4;

/// The default horizon step: a new horizon once the critical path grew by this much since the last one.
/// Celerity's default, justified in Thoman et al., "Horizons" (SN Computer Science 2024); see
/// `../shared/reference/celerity-notes.md` §3.
pub const DEFAULT_HORIZON_STEP: u32 = 4;

/// The default parallelism limit: a new horizon once this many tasks have no successor (Celerity's default).
pub const DEFAULT_HORIZON_MAX_PARALLELISM: usize = 64;

/// Settings of a [`TaskManager`].
#[derive(Clone, Debug)]
pub struct TaskManagerConfig {
    /// Critical-path growth that triggers a horizon (at least 1).
    pub horizon_step: u32,
    /// Execution-front width that triggers a horizon (at least 1).
    pub horizon_max_parallelism: usize,
    /// Number of ranks: nodes of the command graph, `devices_per_rank` per process.
    pub num_ranks: usize,
    /// Devices (nodes) each process drives (`CELER_DEVICES`): a collective host task has one item per process,
    /// `num_ranks / devices_per_rank` in all (at least 1).
    pub devices_per_rank: usize,
    /// What to do when a task reads cells nobody wrote.
    pub uninitialized_read: ErrorPolicy,
}

impl Default for TaskManagerConfig {
    fn default() -> Self {
        Self {
            horizon_step: DEFAULT_HORIZON_STEP,
            horizon_max_parallelism: DEFAULT_HORIZON_MAX_PARALLELISM,
            num_ranks: 1,
            devices_per_rank: 1,
            uninitialized_read: ErrorPolicy::Warn,
        }
    }
}

/// Dependencies of a task being inserted.
type Deps = DependencyBuilder<TaskId>;

/// What the task manager tracks per buffer.
#[derive(Debug)]
struct BufferState {
    dims: usize,
    extent: GridBox,
    /// The extent for messages: `extent` loses the shape of an empty buffer (`[4, 0]`), this keeps it.
    shape: BufferExtent,
    name: Option<String>,
    /// Last writer of every cell; `None` where nothing was ever written (reads there are uninitialized reads).
    last_writers: RegionMap<Option<TaskId>>,
    /// Readers since the last write of every cell: later writers must wait for them (anti-dependencies).
    readers: ReaderLog<TaskId>,
}

/// Builds the task graph; see the [module docs](self).
pub struct TaskManager {
    config: TaskManagerConfig,
    /// Shared (`Arc`): the task a rank's application thread built is the one its runtime thread replays.
    tasks: TaskStore,
    next_id: u64,
    buffers: IdMap<BufferId, BufferState>,
    /// Last task with a side effect on each host object.
    host_objects: IdMap<HostObjectId, Option<TaskId>>,
    /// Last task of each live collective group (the default group 0 lives as long as the task manager).
    collective_groups: IdMap<CollectiveGroupId, Option<TaskId>>,
    /// Tasks nothing depends on yet (horizons keep it below `horizon_max_parallelism`).
    execution_front: ExecutionFront,
    /// The last applied horizon or epoch: tasks without another true dependency depend on it.
    epoch_for_new_tasks: TaskId,
    /// The newest horizon, not yet applied.
    current_horizon: Option<TaskId>,
    max_critical_path: u32,
    critical_path_at_horizon: u32,
    latest_epoch_reached: TaskId,
    /// Tasks created since the last [`TaskManager::drain_new_tasks`], in order.
    new_tasks: Vec<TaskId>,
    diagnostics: Vec<Diagnostic>,
    /// The regions of recent access lists, for tasks that repeat them.
    region_cache: RegionCache,
}

impl TaskManager {
    /// A task manager holding only the initial epoch `T0`.
    ///
    /// # Panics
    /// If the horizon step or parallelism limit is zero, or `num_ranks` is zero.
    pub fn new(config: TaskManagerConfig) -> Self {
        assert!(config.horizon_step >= 1, "horizon step must be at least 1");
        assert!(config.horizon_max_parallelism >= 1, "horizon parallelism limit must be at least 1");
        assert!(config.num_ranks >= 1, "there must be at least one rank");
        let mut tm = Self {
            config,
            tasks: TaskStore::new(),
            next_id: 0,
            buffers: IdMap::default(),
            host_objects: IdMap::default(),
            collective_groups: IdMap::default(),
            execution_front: ExecutionFront::new(),
            epoch_for_new_tasks: TaskId(0),
            current_horizon: None,
            max_critical_path: 0,
            critical_path_at_horizon: 0,
            latest_epoch_reached: TaskId(0),
            new_tasks: Vec::new(),
            diagnostics: Vec::new(),
            region_cache: RegionCache::default(),
        };
        tm.collective_groups.insert(CollectiveGroupId(0), None);
        let init = tm.insert_sync_task(TaskKind::Epoch(EpochAction::Init));
        debug_assert_eq!(init, TaskId(0));
        tm
    }

    /// The settings.
    pub fn config(&self) -> &TaskManagerConfig {
        &self.config
    }

    /// Registers a buffer of `dims` dimensions covering `extent`. A host-initialized buffer counts as written by the
    /// current epoch; otherwise reading it before a write is an uninitialized read.
    pub fn create_buffer(
        &mut self,
        id: BufferId,
        dims: usize,
        extent: impl Into<BufferExtent>,
        host_initialized: bool,
        name: Option<String>,
    ) {
        let writer = host_initialized.then_some(self.epoch_for_new_tasks);
        let shape = extent.into();
        let extent = shape.bounds();
        let last_writers = RegionMap::new(extent, writer);
        let state = BufferState { dims, extent, shape, name, last_writers, readers: ReaderLog::new() };
        if self.buffers.insert(id, state).is_some() {
            // The id names another buffer now, whose extent kept regions may not fit.
            self.region_cache.clear();
        }
    }

    /// Forgets a buffer; later tasks that access it get [`TaskErrorKind::UnknownBuffer`].
    pub fn destroy_buffer(&mut self, id: BufferId) {
        if self.buffers.remove(&id).is_some() {
            self.region_cache.clear();
        }
    }

    /// Sets a buffer's debug name.
    pub fn set_buffer_name(&mut self, id: BufferId, name: impl Into<String>) {
        if let Some(b) = self.buffers.get_mut(&id) {
            b.name = Some(name.into());
        }
    }

    /// The debug name of buffer `id`, if it is live and has one.
    pub fn buffer_name(&self, id: BufferId) -> Option<&str> {
        self.buffers.get(&id)?.name.as_deref()
    }

    /// Registers a host object.
    pub fn create_host_object(&mut self, id: HostObjectId) {
        self.host_objects.insert(id, None);
    }

    /// Forgets a host object.
    pub fn destroy_host_object(&mut self, id: HostObjectId) {
        self.host_objects.remove(&id);
    }

    /// Registers a collective group (group 0, the default, always exists).
    pub fn create_collective_group(&mut self, id: CollectiveGroupId) {
        self.collective_groups.insert(id, None);
    }

    /// Forgets a collective group; later tasks in it get [`TaskErrorKind::UnknownCollectiveGroup`]. The tasks
    /// already recorded keep their dependencies, so nothing of it needs to outlive the drop.
    pub fn destroy_collective_group(&mut self, id: CollectiveGroupId) {
        self.collective_groups.remove(&id);
    }

    /// Number of live collective groups (the default one included): state a program that creates and drops groups
    /// in a loop must not grow.
    pub fn live_collective_group_count(&self) -> usize {
        self.collective_groups.len()
    }

    /// Buffer `id`'s dimensionality and extent, if it exists.
    pub fn buffer_extent(&self, id: BufferId) -> Option<(usize, GridBox)> {
        self.buffers.get(&id).map(|b| (b.dims, b.extent))
    }

    /// Buffer `id`'s extent, if it exists, with its shape as messages print it (an empty buffer's too).
    #[inline]
    pub fn buffer_shape(&self, id: BufferId) -> Option<BufferExtent> {
        self.buffers.get(&id).map(|b| b.shape)
    }

    /// Names a buffer in messages.
    pub fn buffer_ident(&self, id: BufferId) -> ResourceIdent {
        ResourceIdent::buffer(id, self.buffers.get(&id).and_then(|b| b.name.as_deref()))
    }

    /// The task `id`, unless it was erased.
    #[inline]
    pub fn task(&self, id: TaskId) -> Option<&Task> {
        self.tasks.get(id.0).map(|t| &**t)
    }

    /// The task `id` as stored, unless it was erased: for another task manager to [`replay`](Self::replay)
    /// without a copy (the runtime thread's, from the application thread's).
    pub fn shared_task(&self, id: TaskId) -> Option<Arc<Task>> {
        self.tasks.get(id.0).map(Arc::clone)
    }

    /// Live tasks in id order.
    pub fn tasks(&self) -> impl Iterator<Item = &Task> + '_ {
        self.tasks.iter().map(|t| &**t)
    }

    /// Number of live tasks.
    pub fn live_task_count(&self) -> usize {
        self.tasks.len()
    }

    /// Number of live horizon windows (horizons and epochs not yet erased).
    pub fn live_window_count(&self) -> usize {
        self.tasks.window_count()
    }

    /// Bytes held by the nodes of live tasks (each task is an allocation of its own; what its regions or
    /// dependencies hold beyond the node not counted).
    pub fn arena_bytes(&self) -> usize {
        self.tasks.len() * std::mem::size_of::<Task>()
    }

    /// The id the next submitted task will get.
    pub fn next_task_id(&self) -> TaskId {
        TaskId(self.next_id)
    }

    /// The horizon or epoch that new tasks hang off.
    pub fn epoch_for_new_tasks(&self) -> TaskId {
        self.epoch_for_new_tasks
    }

    /// The newest horizon, which will be applied when the next one is generated.
    pub fn current_horizon(&self) -> Option<TaskId> {
        self.current_horizon
    }

    /// Takes the ids of the tasks created since the last call (user tasks, horizons, epochs), in creation order.
    pub fn drain_new_tasks(&mut self) -> std::vec::Drain<'_, TaskId> {
        self.new_tasks.drain(..)
    }

    /// Like [`drain_new_tasks`](Self::drain_new_tasks), into `out` (cleared first) by swapping buffers: a caller
    /// that keeps `out` between calls allocates nothing once both have grown.
    pub fn take_new_tasks(&mut self, out: &mut Vec<TaskId>) {
        out.clear();
        std::mem::swap(out, &mut self.new_tasks);
    }

    /// Whether tasks were created since the last [`take_new_tasks`](Self::take_new_tasks) or
    /// [`drain_new_tasks`](Self::drain_new_tasks).
    pub fn has_new_tasks(&self) -> bool {
        !self.new_tasks.is_empty()
    }

    /// Takes the warnings collected since the last call.
    pub fn take_diagnostics(&mut self) -> Vec<Diagnostic> {
        std::mem::take(&mut self.diagnostics)
    }

    /// Total boxes over all buffers' writer and reader maps (a measure of tracking state).
    pub fn region_map_boxes(&self) -> usize {
        self.buffers.values().map(|b| b.last_writers.len() + b.readers.len()).sum()
    }

    /// Tells the manager the runtime has passed horizon or epoch `id`: all tasks before it are erased.
    ///
    /// `id` must not be newer than [`epoch_for_new_tasks`](Self::epoch_for_new_tasks), since only older tasks are
    /// guaranteed to be unreferenced.
    pub fn notify_epoch_reached(&mut self, id: TaskId) {
        debug_assert!(
            id <= self.epoch_for_new_tasks,
            "{id} reached, but only tasks before the applied epoch {} may be erased",
            self.epoch_for_new_tasks
        );
        if id > self.latest_epoch_reached {
            self.latest_epoch_reached = id;
            self.tasks.erase_before_epoch(id.0);
        }
    }

    /// An empty access list that nobody else holds (an erased task's, kept with its storage), to fill with the
    /// accesses of a task to submit, if there is one: a program whose tasks each have an access list of their own
    /// (a custom range mapper's is new for every task) then allocates none.
    pub fn spare_access_list(&mut self) -> Option<Arc<Vec<BufferAccess>>> {
        self.tasks.spare_access_list()
    }

    /// Drops what every erased task that another manager (the runtime thread's, replaying) held until now carried,
    /// once nobody else holds it: its payload, name and accesses, keeping the node for reuse. A program's `wait`
    /// calls this when the runtime has passed the epoch, so that what the tasks before it held is gone when `wait`
    /// returns, as if this manager had let go of them when it erased them.
    pub fn release_erased_tasks(&mut self) {
        self.tasks.release_erased();
    }

    /// Records a user task: validates it, computes its dependencies, and inserts a horizon when one is due.
    ///
    /// # Errors
    /// [`TaskError`] naming the task and, where it applies, the buffer and region at fault. Nothing is recorded then.
    pub fn submit(&mut self, mut spec: TaskSpec) -> Result<TaskId, TaskError> {
        self.tasks.hold_shared();
        match spec.kind {
            // One item per process (not per device: item r is process r), and one item for a rank-0 task.
            TaskKind::Collective(_) => {
                let processes = (self.config.num_ranks / self.config.devices_per_rank.max(1)).max(1);
                (spec.dims, spec.range) = (1, GridBox::d1(0, processes))
            }
            TaskKind::Once | TaskKind::Fence => (spec.dims, spec.range) = (0, GridBox::from_extent(&[])),
            _ => {}
        }
        let id = TaskId(self.next_id);
        // The task is built in its node: a spare one, or a new allocation.
        let mut node = self.tasks.new_node();
        let task = Arc::get_mut(&mut node).expect("a new node is not shared yet");
        task.spec = spec;
        let deps = match self.validate(id, &task.spec, &mut task.regions) {
            Ok(deps) => deps,
            Err(e) => {
                self.tasks.give_back(node);
                return Err(e);
            }
        };
        // A reduction that would fold in the value of a buffer nothing wrote (reported by `validate` as an
        // uninitialized read) has no value to fold in: it starts from the identity, on every rank alike.
        for i in 0..task.spec.reductions.len() {
            let red = &task.spec.reductions[i];
            if red.include_current_value && self.never_written(red.buffer) {
                task.spec.reductions[i].include_current_value = false;
                if let Some(r) = task.regions.iter_mut().find(|r| r.buffer == task.spec.reductions[i].buffer) {
                    r.consumed = Region::new();
                }
            }
        }
        let id = self.insert_task(node, deps);
        if self.need_horizon() {
            self.generate_horizon();
        }
        Ok(id)
    }

    /// Records a task that another task manager built with [`submit`](Self::submit) (a rank's runtime thread
    /// replaying what the application thread built): the task keeps its id, regions and dependencies (both managers
    /// hold the same `Arc`), nothing is checked or computed again, and no buffer's tracking changes. Horizons follow where `submit` inserted them
    /// (the critical path and the execution front come from the dependencies), so as long as both managers see the
    /// same tasks and epochs in the same order, every task, horizon and epoch gets the same id in both.
    ///
    /// # Panics
    /// If `task.id` is not [`next_task_id`](Self::next_task_id): the two managers went out of step.
    pub fn replay(&mut self, task: Arc<Task>) -> TaskId {
        let id = task.id;
        assert_eq!(id, self.next_task_id(), "replayed task {id} out of step with this task manager");
        let critical_path_length = self.enter(id, task.spec.kind, &task.dependencies);
        debug_assert_eq!(
            critical_path_length, task.critical_path_length,
            "replayed task {id}: the critical path differs from the builder's"
        );
        self.tasks.insert(id.0, task);
        self.new_tasks.push(id);
        if self.need_horizon() {
            self.generate_horizon();
        }
        id
    }

    /// Inserts an epoch that depends on everything before it, applied at once.
    pub fn epoch(&mut self, action: EpochAction) -> TaskId {
        self.insert_sync_task(TaskKind::Epoch(action))
    }

    /// Whether no cell of `buffer` was ever written (by a task, or by its creation from host data).
    fn never_written(&self, buffer: BufferId) -> bool {
        let Some(buf) = self.buffers.get(&buffer) else { return false };
        let mut written = false;
        buf.last_writers.for_each_in(&Region::from(buf.extent), |_, w| written |= w.is_some());
        !written
    }

    fn need_horizon(&self) -> bool {
        self.max_critical_path - self.critical_path_at_horizon >= self.config.horizon_step
            || self.execution_front.len() >= self.config.horizon_max_parallelism
    }

    /// Checks a submission and computes its per-buffer regions (into `regions`) and its true dependencies on the last
    /// writers of what it reads (the walk that finds uninitialized reads finds them too), without changing any other
    /// state.
    fn validate(&mut self, id: TaskId, spec: &TaskSpec, regions: &mut RegionList) -> Result<Deps, TaskError> {
        let err =
            |inner| TaskError { task: crate::task::TaskIdent { id, name: spec.name.clone() }, inner: Box::new(inner) };
        match spec.kind {
            TaskKind::Horizon | TaskKind::Epoch(_) => {
                return Err(err(TaskErrorKind::ReservedKind { kind: spec.kind.name() }));
            }
            _ => {}
        }
        // A kernel or host task over an empty index space has no items, like an empty loop: its range mappers are
        // never applied (they would see no chunk), it touches no cell and runs nothing; only its reductions write
        // (the identity, or the current value).
        let no_items = matches!(spec.kind, TaskKind::DeviceCompute | TaskKind::HostCompute) && spec.range.is_empty();
        if spec.dims > 3 {
            return Err(err(TaskErrorKind::TooManyDimensions { dims: spec.dims }));
        }
        if spec.granularity.contains(&0) {
            return Err(err(TaskErrorKind::ZeroGranularity));
        }
        let compute = matches!(spec.kind, TaskKind::DeviceCompute | TaskKind::HostCompute);
        // A host task gets a copy of each accessor's cells and writes back every writing accessor's copy: two
        // writing accessors of one buffer must not overlap (a kernel's bindings of one buffer share its memory).
        let host = spec.kind.host_closure();
        let mut host_writes: Vec<(usize, Region)> = Vec::new();
        // A repeated access list over a repeated index space: its regions, checked before (see `region_cache`).
        if !self.region_cache.fill(spec, compute, regions) {
            for (index, access) in spec.accesses.iter().enumerate() {
                let buf = self
                    .buffers
                    .get(&access.buffer)
                    .ok_or_else(|| err(TaskErrorKind::UnknownBuffer { buffer: access.buffer }))?;
                let ident = || ResourceIdent::buffer(access.buffer, buf.name.as_deref());
                let region = if no_items {
                    Region::new()
                } else {
                    crate::task::noting_buffer(access.buffer, || {
                        access.mapper.apply(&spec.range, &spec.range, spec.dims, &buf.extent, buf.dims)
                    })
                    .map_err(|e| err(TaskErrorKind::Mapper { buffer: ident(), mode: access.mode.name(), error: e }))?
                };
                if !region.boxes().iter().all(|b| buf.extent.contains(b)) {
                    return Err(err(TaskErrorKind::OutOfBounds {
                        buffer: ident(),
                        mapper: access.mapper.name(),
                        region: region.clone(),
                        outside: region.difference(&Region::from(buf.extent)),
                        extent: buf.shape,
                    }));
                }
                let entry = match regions.iter_mut().position(|r| r.buffer == access.buffer) {
                    Some(i) => &mut regions[i],
                    None => {
                        regions.push(AccessRegions::new(access.buffer));
                        regions.last_mut().unwrap()
                    }
                };
                if host
                    && access.mode.produces()
                    && spec.accesses.iter().filter(|a| a.buffer == access.buffer).count() > 1
                {
                    if let Some((first, overlap)) = host_writes
                        .iter()
                        .filter(|(j, _)| spec.accesses[*j].buffer == access.buffer)
                        .map(|(j, r)| (*j, r.intersection(&region)))
                        .find(|(_, both)| !both.is_empty())
                    {
                        let describe = |a: &BufferAccess| format!("{} {}", a.mode.name(), a.mapper.name());
                        return Err(err(TaskErrorKind::HostWritesOverlap {
                            buffer: ident(),
                            first,
                            first_access: describe(&spec.accesses[first]),
                            second: index,
                            second_access: describe(access),
                            region: overlap,
                        }));
                    }
                    host_writes.push((index, region.clone()));
                }
                entry.add(access.mode, region);
            }
            if compute {
                if let Some(inner) = self.intra_task_race(spec) {
                    return Err(err(inner));
                }
            }
            self.region_cache.keep(spec, compute, regions);
        }
        for (j, red) in spec.reductions.iter().enumerate() {
            let buf = self
                .buffers
                .get(&red.buffer)
                .ok_or_else(|| err(TaskErrorKind::UnknownBuffer { buffer: red.buffer }))?;
            let ident = ResourceIdent::buffer(red.buffer, buf.name.as_deref());
            if buf.extent.area() != 1 {
                return Err(err(TaskErrorKind::ReductionNotScalar { buffer: ident, extent: buf.shape }));
            }
            // The same buffer reduced into twice: each reduction binds a partial result of its own, and which one
            // the buffer keeps would be arbitrary.
            if let Some(first) = spec.reductions[..j].iter().position(|r| r.buffer == red.buffer) {
                return Err(err(TaskErrorKind::ReductionTwice { buffer: ident, first, second: j }));
            }
            if regions.iter().any(|r| r.buffer == red.buffer) {
                return Err(err(TaskErrorKind::ReductionAndAccess { buffer: ident }));
            }
            let whole = Region::from(buf.extent);
            regions.push(AccessRegions {
                buffer: red.buffer,
                consumed: if red.include_current_value { whole.clone() } else { Region::new() },
                produced: whole,
            });
        }
        for (ho, _) in &spec.side_effects {
            if !self.host_objects.contains_key(ho) {
                return Err(err(TaskErrorKind::UnknownHostObject { host_object: *ho }));
            }
        }
        if let TaskKind::Collective(group) = spec.kind {
            if !self.collective_groups.contains_key(&group) {
                return Err(err(TaskErrorKind::UnknownCollectiveGroup { group }));
            }
        }
        // True dependencies on the last writers of what is read; uninitialized reads where that is nobody.
        let mut deps = Deps::default();
        for r in regions.iter() {
            if r.consumed.is_empty() {
                continue;
            }
            let buf = &self.buffers[&r.buffer];
            let mut missing = Vec::new();
            buf.last_writers.for_each_in(&r.consumed, |b, w| match w {
                Some(w) => deps.add(*w, DependencyKind::True, DependencyOrigin::Dataflow),
                None => missing.push(b),
            });
            // A `write` keeps what it does not store, but reads nothing: never-written cells only matter to a
            // task that reads the buffer, or folds its value into a reduction.
            let folded = spec.reductions.iter().any(|red| red.buffer == r.buffer && red.include_current_value);
            if !missing.is_empty() && (folded || spec.accesses.iter().any(|a| a.buffer == r.buffer && a.mode.reads())) {
                let buffer = ResourceIdent::buffer(r.buffer, buf.name.as_deref());
                let inner = if folded {
                    TaskErrorKind::UninitializedReduction { buffer }
                } else {
                    TaskErrorKind::UninitializedRead { buffer, region: Region::from_boxes(missing) }
                };
                match self.config.uninitialized_read {
                    ErrorPolicy::Ignore => {}
                    ErrorPolicy::Warn => self.diagnostics.push(Diagnostic::from(err(inner))),
                    ErrorPolicy::Error => return Err(err(inner)),
                }
            }
        }
        Ok(deps)
    }

    /// A buffer that some items of `spec` read where other items of it write, found on probe splits; `None` if
    /// there is none. Called after every access's mapper was applied to the whole index space without error.
    ///
    /// Items of one task run in no defined order (across workgroups, devices and ranks), so a cell read by one item
    /// and written by another is a race. The check splits the index space along each of its dimensions into up to
    /// [`RACE_PROBE_PIECES`] slabs and, for every pair of different slabs, intersects what one reads with what the
    /// other writes: neighbourhood, `all`, transposed and custom readers of a buffer the task writes are caught at
    /// the first slab border. A buffer whose accesses are all `one_to_one` cannot race and costs nothing; nor do two
    /// accesses the kernel touches only through atomics ([`TaskSpec::atomic_accesses`]).
    fn intra_task_race(&self, spec: &TaskSpec) -> Option<TaskErrorKind> {
        let accesses = &spec.accesses;
        for (i, w) in accesses.iter().enumerate() {
            // Each buffer once, at its first writing access; skip the one_to_one-only buffers at once.
            if !w.mode.produces() || accesses[..i].iter().any(|a| a.buffer == w.buffer && a.mode.produces()) {
                continue;
            }
            let mut of_buffer = accesses.iter().filter(|a| a.buffer == w.buffer);
            if of_buffer.clone().all(|a| matches!(a.mapper, RangeMapper::OneToOne))
                || !of_buffer.any(|a| a.mode.reads())
            {
                continue;
            }
            // Only now (rare: a written buffer read through another mapper) does the check allocate.
            // With whether the kernel touches it only through atomics: two such accesses never race.
            let same: Vec<(&BufferAccess, bool)> = accesses
                .iter()
                .enumerate()
                .filter(|(_, a)| a.buffer == w.buffer)
                .map(|(j, a)| (a, j < 64 && spec.atomic_accesses >> j & 1 == 1))
                .collect();
            if same.iter().all(|&(_, atomic)| atomic) {
                continue;
            }
            let buf = self.buffers.get(&w.buffer)?;
            for dim in 0..spec.dims.max(1) {
                let (lo, hi) = (spec.range.min()[dim], spec.range.max()[dim]);
                let pieces = (hi - lo).min(RACE_PROBE_PIECES);
                if pieces < 2 {
                    continue;
                }
                // Cut `k` of `pieces`, in u128: `(hi - lo) * k` overflows usize for index spaces of more than
                // usize::MAX / pieces items (a host task over every usize), which wrapped into crossed corners.
                let cut = |k: usize| lo + ((hi - lo) as u128 * k as u128 / pieces as u128) as usize;
                let slab = |k: usize| {
                    let (mut min, mut max) = (spec.range.min(), spec.range.max());
                    min[dim] = cut(k);
                    max[dim] = cut(k + 1);
                    GridBox::new(min, max)
                };
                let apply = |a: &BufferAccess, k: usize| {
                    crate::task::noting_buffer(w.buffer, || {
                        a.mapper.apply(&slab(k), &spec.range, spec.dims, &buf.extent, buf.dims).unwrap_or_default()
                    })
                };
                for &(writer, atomic_write) in same.iter().filter(|(a, _)| a.mode.produces()) {
                    let written: Vec<Region> = (0..pieces).map(|k| apply(writer, k)).collect();
                    for &(reader, _) in same.iter().filter(|&&(a, atomic)| a.mode.reads() && !(atomic && atomic_write))
                    {
                        for k in 0..pieces {
                            let read = apply(reader, k);
                            for (j, wr) in written.iter().enumerate() {
                                let overlap = if j == k { Region::new() } else { read.intersection(wr) };
                                if !overlap.is_empty() {
                                    let describe = |a: &BufferAccess| format!("{} {}", a.mode.name(), a.mapper.name());
                                    return Some(TaskErrorKind::IntraTaskRace {
                                        buffer: ResourceIdent::buffer(w.buffer, buf.name.as_deref()),
                                        region: overlap,
                                        read: describe(reader),
                                        write: describe(writer),
                                    });
                                }
                            }
                        }
                    }
                }
            }
        }
        None
    }

    /// Inserts a validated user task, whose spec and regions `node` holds; `deps` holds its true dependencies on last
    /// writers already.
    fn insert_task(&mut self, mut node: Arc<Task>, mut deps: Deps) -> TaskId {
        let id = TaskId(self.next_id);
        let task = Arc::get_mut(&mut node).expect("a new node is not shared yet");
        let spec = &task.spec;
        for r in &task.regions {
            let buf = self.buffers.get_mut(&r.buffer).expect("validated");
            if !r.produced.is_empty() {
                // Anti-dependencies on readers since the last write; output dependencies where nobody read.
                let whole = match r.produced.boxes() {
                    [b] => Some(*b),
                    _ => None,
                };
                let (mut any_read, mut all_read) = (false, false);
                buf.readers.for_each_overlap(&r.produced, |reader, b| {
                    if reader != id {
                        deps.add(reader, DependencyKind::Anti, DependencyOrigin::Dataflow);
                    }
                    any_read = true;
                    // One read covering the whole write (the usual case) settles it without a region.
                    all_read = all_read || whole == Some(b);
                });
                let unread = if !any_read {
                    Cow::Borrowed(&r.produced)
                } else if all_read {
                    Cow::Owned(Region::new())
                } else {
                    let mut read_boxes: SmallVec<[GridBox; 4]> = SmallVec::new();
                    buf.readers.for_each_overlap(&r.produced, |_, b| read_boxes.push(b));
                    Cow::Owned(r.produced.difference(&Region::from_boxes(read_boxes)))
                };
                buf.last_writers.for_each_in(&unread, |_, w| {
                    if let Some(w) = w {
                        deps.add(*w, DependencyKind::Output, DependencyOrigin::Dataflow);
                    }
                });
            }
            // Record this task as reader, then as writer (a read-write task's own read ends at its write).
            // A read of cells the task also writes ends with its own write: no reader to remember.
            if !r.consumed.is_empty() && r.consumed != r.produced {
                buf.readers.add(id, r.consumed.boxes().iter().copied());
            }
            if !r.produced.is_empty() {
                buf.readers.clear(&r.produced);
                buf.last_writers.update_region(&r.produced, Some(id));
            }
        }
        for (ho, _) in &spec.side_effects {
            let last = self.host_objects.get_mut(ho).expect("validated");
            if let Some(prev) = last.replace(id) {
                deps.add(prev, DependencyKind::True, DependencyOrigin::SideEffect);
            }
        }
        if let TaskKind::Collective(group) = spec.kind {
            let last = self.collective_groups.get_mut(&group).expect("validated");
            if let Some(prev) = last.replace(id) {
                deps.add(prev, DependencyKind::True, DependencyOrigin::CollectiveGroupSerialization);
            }
        }
        if !deps.has_true() {
            deps.add(self.epoch_for_new_tasks, DependencyKind::True, DependencyOrigin::LastEpoch);
        }
        task.dependencies.extend(deps.iter().map(|(task, kind, origin)| Dependency { task, kind, origin }));
        self.insert_node(id, node)
    }

    /// Stores task `id` built in `node` (its spec, regions and dependencies filled in), after updating the
    /// execution front and critical path.
    #[inline(always)]
    fn insert_node(&mut self, id: TaskId, mut node: Arc<Task>) -> TaskId {
        let task = Arc::get_mut(&mut node).expect("a new node is not shared yet");
        task.critical_path_length = self.enter(id, task.spec.kind, &task.dependencies);
        task.id = id;
        self.tasks.insert(id.0, node);
        self.new_tasks.push(id);
        id
    }

    /// Accounts for task `id` (the next id) of `kind` with `dependencies` before it is stored: the execution front,
    /// the critical path, a new window for a horizon or epoch. Returns the task's critical path length.
    #[inline(always)]
    fn enter(&mut self, id: TaskId, kind: TaskKind, dependencies: &[Dependency]) -> u32 {
        debug_assert_eq!(id.0, self.next_id);
        self.next_id += 1;
        let mut cpl = 0;
        for d in dependencies {
            self.execution_front.follow(d.task.0);
            cpl = cpl.max(self.tasks.get(d.task.0).map_or(0, |t| t.critical_path_length));
        }
        let critical_path_length = cpl + 1;
        self.max_critical_path = self.max_critical_path.max(critical_path_length);
        let sync = matches!(kind, TaskKind::Horizon | TaskKind::Epoch(_));
        self.execution_front.push(id.0, sync);
        critical_path_length
    }

    /// Creates a horizon or epoch depending on the whole execution front.
    fn insert_sync_task(&mut self, kind: TaskKind) -> TaskId {
        let id = TaskId(self.next_id);
        let mut node = self.tasks.new_node();
        let task = Arc::get_mut(&mut node).expect("a new node is not shared yet");
        // An empty spec but for the kind; the front is already in id order.
        task.spec.kind = kind;
        task.dependencies.extend(self.execution_front.iter().map(|t| Dependency {
            task: TaskId(t),
            kind: DependencyKind::True,
            origin: DependencyOrigin::ExecutionFront,
        }));
        self.insert_node(id, node);
        debug_assert_eq!(self.execution_front.len(), 1);
        if let TaskKind::Epoch(_) = kind {
            // An epoch applies at once and starts the horizon count afresh.
            self.apply_epoch(id);
            self.current_horizon = None;
            self.critical_path_at_horizon = self.max_critical_path;
        }
        id
    }

    fn generate_horizon(&mut self) {
        // The baseline is the critical path *before* the horizon: the horizon sits one step beyond the front, beside
        // the next task of a chain rather than before it, so counting its own step would space horizons
        // `horizon_step + 1` apart (Celerity sets the baseline first, too).
        self.critical_path_at_horizon = self.max_critical_path;
        let h = self.insert_sync_task(TaskKind::Horizon);
        if let Some(previous) = self.current_horizon.replace(h) {
            self.apply_epoch(previous);
        }
    }

    /// Rewrites every tracked task older than `epoch` to `epoch`, which new tasks then hang off.
    fn apply_epoch(&mut self, epoch: TaskId) {
        let older = |t: TaskId| if t < epoch { epoch } else { t };
        for buf in self.buffers.values_mut() {
            buf.last_writers.apply_to_values(|w| w.map(older));
            buf.readers.collapse_before(epoch);
        }
        for last in self.host_objects.values_mut() {
            *last = last.map(older);
        }
        for last in self.collective_groups.values_mut() {
            *last = last.map(older);
        }
        self.epoch_for_new_tasks = epoch;
    }

    /// The task graph as Graphviz DOT: one node per live task, edges styled by kind (anti dashed, output dotted).
    pub fn to_dot(&self) -> String {
        self.tasks_to_dot(self.tasks())
    }

    /// `tasks` (e.g. copies recorded over a whole run, including pruned ones) as Graphviz DOT, like
    /// [`to_dot`](Self::to_dot); buffers are named as this task manager knows them, edges to tasks not in `tasks`
    /// are left out.
    pub fn tasks_to_dot<'a>(&self, tasks: impl IntoIterator<Item = &'a Task>) -> String {
        let tasks: Vec<&Task> = tasks.into_iter().collect();
        let present: HashSet<TaskId> = tasks.iter().map(|t| t.id).collect();
        let mut out =
            String::from("digraph TaskGraph {\n  label=\"task graph\";\n  node [shape=box fontname=monospace];\n");
        // The program's names may hold backslashes, which DOT would read as escapes (of the closing quote, say).
        let esc = |s: String| if s.contains('\\') { s.replace('\\', "\\\\") } else { s };
        for t in tasks {
            let mut label = format!("{} {}", t.id, t.kind().name());
            if let Some(n) = &t.spec.name {
                label += &format!(" \"{}\"", esc(n.to_string()));
            }
            if matches!(t.kind(), TaskKind::DeviceCompute | TaskKind::HostCompute) {
                label += &format!("\\n{}", t.spec.range);
            }
            for a in t.spec.accesses.iter() {
                let region = t.regions.iter().find(|r| r.buffer == a.buffer);
                let shown = region.map(|r| r.consumed.union(&r.produced)).unwrap_or_default();
                let buffer = esc(self.buffer_ident(a.buffer).to_string());
                label += &format!("\\n{} {buffer} {} {}", a.mode.name(), esc(format!("{:?}", a.mapper)), shown);
            }
            let shape = match t.kind() {
                TaskKind::Horizon | TaskKind::Epoch(_) => "ellipse",
                _ => "box",
            };
            out += &format!("  {} [shape={shape} label=\"{}\"];\n", t.id, label.replace('"', "\\\""));
            for d in &t.dependencies {
                if !present.contains(&d.task) {
                    continue;
                }
                let style = match (d.kind, d.origin) {
                    (DependencyKind::Anti, _) => "style=dashed",
                    (DependencyKind::Output, _) => "style=dotted",
                    (_, DependencyOrigin::Dataflow) => "",
                    _ => "color=gray",
                };
                out += &format!("  {} -> {} [{style}];\n", d.task, t.id);
            }
        }
        out += "}\n";
        out
    }
}

impl fmt::Debug for TaskManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskManager")
            .field("next_id", &self.next_id)
            .field("live_tasks", &self.tasks.len())
            .field("epoch_for_new_tasks", &self.epoch_for_new_tasks)
            .field("current_horizon", &self.current_horizon)
            .finish_non_exhaustive()
    }
}
