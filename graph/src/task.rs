//! Tasks as recorded by the application: kinds, buffer accesses, range mappers, reductions, side effects.
//!
//! A [`TaskSpec`] is what a submission records; the [`TaskManager`](crate::TaskManager) turns it into a [`Task`] node
//! with an id and dependencies. Everything here is dimension-erased (see [`crate::geometry`]); the facade crate adds
//! the typed, const-generic surface.

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use smallvec::SmallVec;

use crate::geometry::{GridBox, Region, MAX_DIMS};
use crate::ids::{BufferId, CollectiveGroupId, HostObjectId, ReductionId, TaskId};

mod range_mapper;

pub use range_mapper::{
    noting_buffer, CustomMapperFn, CustomReachFn, MapperError, MapperPanic, NeighborhoodShape, RangeMapper,
};

/// How a task touches a buffer.
///
/// Two facts matter to the graphs: does the task *consume* the old contents (they must be present where it runs),
/// and does it *produce* new contents. As in SYCL and Celerity, `Write` consumes: cells of its mapped region that the
/// task does not store keep their old contents, so those must be there; `DiscardWrite` does not (cells it does not
/// store are undefined afterwards). Only `Read` and `ReadWrite` [*read*](AccessMode::reads) the values, which is
/// what races between items and reads of never-written cells are about.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum AccessMode {
    /// Reads the mapped region.
    Read,
    /// Writes the mapped region; cells the task does not store keep their old contents.
    Write,
    /// Reads and then overwrites the mapped region.
    ReadWrite,
    /// Overwrites the mapped region, ignoring its old contents: cells the task does not store are undefined.
    DiscardWrite,
}

impl AccessMode {
    /// Whether the old contents must be present where the task runs (read, or kept where not stored).
    pub fn consumes(self) -> bool {
        matches!(self, AccessMode::Read | AccessMode::ReadWrite | AccessMode::Write)
    }

    /// Whether the task reads the values (for race and uninitialized-read checks; a `Write` keeps what it does not
    /// store, but reads nothing).
    pub fn reads(self) -> bool {
        matches!(self, AccessMode::Read | AccessMode::ReadWrite)
    }

    /// Whether new contents are written.
    pub fn produces(self) -> bool {
        !matches!(self, AccessMode::Read)
    }

    /// Lower-case name, as in DOT dumps and errors.
    pub fn name(self) -> &'static str {
        match self {
            AccessMode::Read => "read",
            AccessMode::Write => "write",
            AccessMode::ReadWrite => "read_write",
            AccessMode::DiscardWrite => "discard_write",
        }
    }
}

/// One buffer access of a task.
#[derive(Clone, Debug)]
pub struct BufferAccess {
    /// The buffer.
    pub buffer: BufferId,
    /// Read, write or both.
    pub mode: AccessMode,
    /// Which part of the buffer each chunk touches.
    pub mapper: RangeMapper,
}

/// A reduction operator.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum ReductionOp {
    /// Sum.
    Sum,
    /// Minimum.
    Min,
    /// Maximum.
    Max,
    /// User-defined: the kernel combines its items with it, and the runtime folds the ranks' partial results with
    /// the identity and combining function the task brought (the facade's `TaskBuilder::reduce_with`).
    Custom,
}

/// A reduction of a task's chunks into a one-element buffer.
#[derive(Clone, Debug)]
pub struct ReductionSpec {
    /// Unique per program.
    pub id: ReductionId,
    /// The one-element result buffer.
    pub buffer: BufferId,
    /// How partial results combine.
    pub op: ReductionOp,
    /// Whether the buffer's current value is combined in (otherwise it is overwritten).
    pub include_current_value: bool,
}

/// Whether a side effect needs exclusive access to its host object (the only order supported, as in Celerity).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum SideEffectOrder {
    /// Serialized with every other side effect on the same object.
    Sequential,
}

/// What kind of node a task is.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum TaskKind {
    /// A kernel split across ranks and devices.
    DeviceCompute,
    /// A host task split across ranks like a kernel.
    HostCompute,
    /// A host task run once, on rank 0.
    Once,
    /// A host task run once on every rank, in a collective group.
    Collective(CollectiveGroupId),
    /// Returns buffer contents or a host object to the application.
    Fence,
    /// Bounds the graph; inserted by the task manager.
    Horizon,
    /// A hard synchronization point.
    Epoch(EpochAction),
}

impl TaskKind {
    /// Whether the task runs a host closure, which gets a copy of each accessor's cells (a kernel's bindings of one
    /// buffer share its memory instead).
    pub(crate) fn host_closure(self) -> bool {
        matches!(self, TaskKind::HostCompute | TaskKind::Once | TaskKind::Collective(_))
    }

    /// Lower-case name, as in DOT dumps and errors.
    pub fn name(self) -> &'static str {
        match self {
            TaskKind::DeviceCompute => "device-compute",
            TaskKind::HostCompute => "host-compute",
            TaskKind::Once => "once",
            TaskKind::Collective(_) => "collective",
            TaskKind::Fence => "fence",
            TaskKind::Horizon => "horizon",
            TaskKind::Epoch(_) => "epoch",
        }
    }
}

/// What an epoch does besides ordering.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum EpochAction {
    /// The first task of every program.
    Init,
    /// Wait for everything before it (`wait()`).
    None,
    /// Like `None`, plus a barrier across ranks.
    Barrier,
    /// The last task of every program.
    Shutdown,
}

/// How a task's index space is split into chunks.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub enum SplitHint {
    /// Along dimension 0 (the default).
    #[default]
    OneD,
    /// Into a near-square grid over dimensions 0 and 1.
    TwoD,
}

/// Opaque data the executors need (a kernel, a host closure); the graphs only carry it.
pub type Payload = Arc<dyn Any + Send + Sync>;

/// A submission as recorded from the application, before it gets an id and dependencies.
#[derive(Clone)]
pub struct TaskSpec {
    /// Kind of task; must not be [`TaskKind::Horizon`] or [`TaskKind::Epoch`] (those come from the task manager).
    pub kind: TaskKind,
    /// Dimensionality of the index space (0 to 3).
    pub dims: usize,
    /// The index space (offset and range).
    pub range: GridBox,
    /// Chunks are multiples of this along each dimension.
    pub granularity: [usize; MAX_DIMS],
    /// How to split.
    pub hint: SplitHint,
    /// Buffer accesses; shared, so that copying a spec (the application's validating copy, the task node) does not
    /// copy them. Add one with [`TaskSpec::access`] or `Arc::make_mut(&mut spec.accesses).push(..)`.
    pub accesses: Arc<Vec<BufferAccess>>,
    /// Reductions.
    pub reductions: Vec<ReductionSpec>,
    /// Host objects touched.
    pub side_effects: Vec<(HostObjectId, SideEffectOrder)>,
    /// Debug name; shared, so that copying a spec (the application's validating copy, graph records) does not
    /// copy the string.
    pub name: Option<Arc<str>>,
    /// What the executor runs.
    pub payload: Option<Payload>,
    /// Bit `i` set: `accesses[i]` is bound where its kernel touches every element only through atomic operations
    /// (a WGSL `array<atomic<u32>>`), so items reading and writing each other's cells through it do not race: the
    /// task manager's race check skips pairs of such accesses (overlapping writes of chunks on different nodes are
    /// still refused). Accesses past the 64th are never marked.
    pub atomic_accesses: u64,
}

/// One shared empty access list per thread: specs without accesses (horizons, epochs, fences before their first
/// access) then cost a reference count, not an allocation; the first `access` copies it out (`Arc::make_mut`), as
/// before. Per thread, so that the application thread and the runtime thread, which both make horizons, do not
/// contend for one reference count.
fn no_accesses() -> Arc<Vec<BufferAccess>> {
    thread_local! {
        static EMPTY: Arc<Vec<BufferAccess>> = Arc::default();
    }
    EMPTY.with(Arc::clone)
}

impl TaskSpec {
    /// A spec of `kind` over `range` in `dims` dimensions, with nothing accessed.
    pub fn new(kind: TaskKind, dims: usize, range: GridBox) -> Self {
        Self {
            kind,
            dims,
            range,
            granularity: [1; MAX_DIMS],
            hint: SplitHint::OneD,
            accesses: no_accesses(),
            reductions: Vec::new(),
            side_effects: Vec::new(),
            name: None,
            payload: None,
            atomic_accesses: 0,
        }
    }

    /// A kernel over `[0, extent)`.
    pub fn device_compute(extent: &[usize]) -> Self {
        Self::new(TaskKind::DeviceCompute, extent.len(), GridBox::from_extent(extent))
    }

    /// Adds an access.
    pub fn access(mut self, buffer: BufferId, mode: AccessMode, mapper: RangeMapper) -> Self {
        Arc::make_mut(&mut self.accesses).push(BufferAccess { buffer, mode, mapper });
        self
    }

    /// Sets the debug name.
    pub fn named(mut self, name: impl Into<Arc<str>>) -> Self {
        self.name = Some(name.into());
        self
    }
}

impl fmt::Debug for TaskSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskSpec")
            .field("kind", &self.kind)
            .field("range", &self.range)
            .field("accesses", &self.accesses)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// Whether a dependency carries data or only orders.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub enum DependencyKind {
    /// Read after write (or ordering that must hold like one: epochs, horizons, side effects).
    True,
    /// Write after read.
    Anti,
    /// Write after write with no read in between.
    Output,
}

/// Why a dependency exists.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum DependencyOrigin {
    /// Buffer data flow.
    Dataflow,
    /// A horizon or epoch collecting the execution front.
    ExecutionFront,
    /// A task with no other true dependency hangs off the last epoch or applied horizon.
    LastEpoch,
    /// Collective host tasks of one group run in order.
    CollectiveGroupSerialization,
    /// Side effects on one host object run in order.
    SideEffect,
}

/// An edge to an earlier task.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Dependency {
    /// The earlier task.
    pub task: TaskId,
    /// True, anti or output.
    pub kind: DependencyKind,
    /// Why.
    pub origin: DependencyOrigin,
}

/// Collects a node's edges to earlier nodes (tasks or commands), keeping one edge per predecessor: the strongest
/// kind wins (true over anti over output), with that kind's origin.
///
/// One edge may also carry a *settling* node ([`add_settled`](Self::add_settled)): an earlier node whose completion
/// makes the edge satisfied too. A command reading data collapsed into a horizon depends on that horizon, which also
/// waits for everything else in its front; the data itself was complete once an older horizon was. The edge keeps
/// its settling node only while every addition of it carried one (the latest of them wins); one plain
/// [`add`](Self::add) of the same predecessor drops it.
#[derive(Debug)]
pub struct DependencyBuilder<I> {
    edges: SmallVec<[(I, DependencyKind, DependencyOrigin); 4]>,
    /// The edge that may be settled early: its predecessor, and its settling node (`None` once a plain addition of
    /// the predecessor cleared it).
    settled: Option<(I, Option<I>)>,
}

impl<I> Default for DependencyBuilder<I> {
    fn default() -> Self {
        Self { edges: SmallVec::new(), settled: None }
    }
}

impl<I: Copy + Ord> DependencyBuilder<I> {
    /// Adds an edge to `target`, or strengthens the existing one; the edge has no settling node.
    #[inline]
    pub fn add(&mut self, target: I, kind: DependencyKind, origin: DependencyOrigin) {
        self.merge(target, kind, origin);
        if let Some((t, by)) = &mut self.settled {
            if *t == target {
                *by = None;
            }
        }
    }

    /// Adds an edge to `target` that is also satisfied once `settled_by` completed (see the type's docs), or
    /// strengthens the existing one. Only one predecessor can be settled: for any other, this is [`add`](Self::add).
    #[inline]
    pub fn add_settled(&mut self, target: I, kind: DependencyKind, origin: DependencyOrigin, settled_by: I) {
        let existed = self.merge(target, kind, origin);
        match &mut self.settled {
            Some((t, by)) if *t == target => *by = by.map(|b| b.max(settled_by)),
            // The first settled edge, unless it was added plainly before.
            None if !existed => self.settled = Some((target, Some(settled_by))),
            _ => {}
        }
    }

    /// Adds or strengthens the edge to `target`; returns whether it existed.
    #[inline]
    fn merge(&mut self, target: I, kind: DependencyKind, origin: DependencyOrigin) -> bool {
        match self.edges.iter_mut().find(|e| e.0 == target) {
            Some(e) => {
                if kind < e.1 {
                    e.1 = kind;
                    e.2 = origin;
                }
                true
            }
            None => {
                self.edges.push((target, kind, origin));
                false
            }
        }
    }

    /// Whether some edge is a true dependency.
    pub fn has_true(&self) -> bool {
        self.edges.iter().any(|e| e.1 == DependencyKind::True)
    }

    /// The edges, in the order first added.
    pub fn iter(&self) -> impl Iterator<Item = (I, DependencyKind, DependencyOrigin)> + '_ {
        self.edges.iter().copied()
    }

    /// The edges with their settling nodes, in the order first added.
    pub fn iter_settled(&self) -> impl Iterator<Item = (I, DependencyKind, DependencyOrigin, Option<I>)> + '_ {
        let settled = self.settled;
        self.edges.iter().map(move |&(t, k, o)| (t, k, o, settled.filter(|s| s.0 == t).and_then(|s| s.1)))
    }
}

/// The buffer regions one access touches over the whole task (all chunks together).
#[derive(Clone, Debug)]
pub struct AccessRegions {
    /// The buffer.
    pub buffer: BufferId,
    /// Cells whose old contents are read.
    pub consumed: Region,
    /// Cells written.
    pub produced: Region,
}

impl AccessRegions {
    /// Nothing of `buffer` touched yet.
    pub fn new(buffer: BufferId) -> Self {
        Self { buffer, consumed: Region::new(), produced: Region::new() }
    }

    /// Adds what an access of mode `mode` touches: to what is consumed, what is produced, or both.
    #[inline]
    pub fn add(&mut self, mode: AccessMode, region: Region) {
        match (mode.consumes(), mode.produces()) {
            (true, true) => {
                self.consumed.absorb(region.clone());
                self.produced.absorb(region);
            }
            (true, false) => self.consumed.absorb(region),
            (false, true) => self.produced.absorb(region),
            (false, false) => {}
        }
    }
}

/// A task's [`AccessRegions`], one per buffer it touches, held in the task itself up to three buffers (a
/// stencil's two fields and its output): building a task and copying it to the runtime thread allocates nothing.
pub type RegionList = SmallVec<[AccessRegions; 3]>;

/// A node of the task graph.
#[derive(Debug)]
pub struct Task {
    /// Id, the same on every rank.
    pub id: TaskId,
    /// What was submitted (for horizons and epochs: an empty spec of that kind).
    pub spec: TaskSpec,
    /// Per buffer, the union over the accesses of what the whole task consumes and produces.
    pub regions: RegionList,
    /// Edges to earlier tasks.
    pub dependencies: SmallVec<[Dependency; 4]>,
    /// Pseudo critical path length: one more than the longest among the dependencies.
    pub critical_path_length: u32,
}

/// Written out rather than derived: the region list is copied entry by entry into place (most regions are one box),
/// which `SmallVec`'s generic clone does several times slower (a recording simulation copies every task).
impl Clone for Task {
    #[inline]
    fn clone(&self) -> Self {
        let mut regions = RegionList::new();
        for r in &self.regions {
            regions.push(AccessRegions {
                buffer: r.buffer,
                consumed: r.consumed.clone(),
                produced: r.produced.clone(),
            });
        }
        Self {
            id: self.id,
            spec: self.spec.clone(),
            regions,
            dependencies: self.dependencies.clone(),
            critical_path_length: self.critical_path_length,
        }
    }
}

impl Task {
    /// The kind.
    pub fn kind(&self) -> TaskKind {
        self.spec.kind
    }

    /// What the task consumes of `buffer` (empty if it does not read it).
    pub fn consumed(&self, buffer: BufferId) -> Option<&Region> {
        self.regions.iter().find(|r| r.buffer == buffer).map(|r| &r.consumed)
    }

    /// Names the task in messages: `task T4 "stencil"`.
    pub fn ident(&self) -> TaskIdent {
        TaskIdent { id: self.id, name: self.spec.name.clone() }
    }

    /// Whether the task has a dependency on `other` of any kind.
    pub fn depends_on(&self, other: TaskId) -> bool {
        self.dependencies.iter().any(|d| d.task == other)
    }
}

/// Identifies a task in error messages.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct TaskIdent {
    /// Id.
    pub id: TaskId,
    /// Debug name, if the user gave one.
    pub name: Option<Arc<str>>,
}

impl fmt::Display for TaskIdent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.name {
            Some(n) => write!(f, "task {} \"{}\"", self.id, n),
            None => write!(f, "task {}", self.id),
        }
    }
}

/// Identifies a buffer (or another resource) in error messages: `buffer B3 "velocity"`.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct ResourceIdent {
    /// "buffer" or "host object".
    pub kind: &'static str,
    /// The id, printed.
    pub id: String,
    /// Debug name, if the user gave one.
    pub name: Option<String>,
}

impl ResourceIdent {
    /// A buffer's identity.
    pub fn buffer(id: BufferId, name: Option<&str>) -> Self {
        Self { kind: "buffer", id: id.to_string(), name: name.map(str::to_owned) }
    }
}

impl fmt::Display for ResourceIdent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.name {
            Some(n) => write!(f, "{} {} \"{}\"", self.kind, self.id, n),
            None => write!(f, "{} {}", self.kind, self.id),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{DependencyBuilder, DependencyKind::*, DependencyOrigin::*};

    fn edges(b: &DependencyBuilder<u32>) -> Vec<(u32, Option<u32>)> {
        b.iter_settled().map(|(t, _, _, s)| (t, s)).collect()
    }

    #[test]
    fn an_edge_stays_settled_only_while_every_addition_of_it_was() {
        let mut b = DependencyBuilder::default();
        b.add_settled(9, Output, Dataflow, 3);
        b.add_settled(9, True, Dataflow, 5);
        b.add(4, Anti, Dataflow);
        assert_eq!(edges(&b), vec![(9, Some(5)), (4, None)], "the later settling node wins");
        assert_eq!(b.iter().next(), Some((9, True, Dataflow)), "the stronger kind wins");
        // Only one predecessor is settled: another's settled addition is a plain edge.
        b.add_settled(7, True, Dataflow, 1);
        assert_eq!(edges(&b)[2], (7, None));
        b.add(9, Output, Dataflow);
        assert_eq!(edges(&b)[0], (9, None), "a plain addition clears it");
        b.add_settled(9, True, Dataflow, 6);
        assert_eq!(edges(&b)[0], (9, None), "and it stays cleared");

        let mut b = DependencyBuilder::default();
        b.add(9, Output, Dataflow);
        b.add_settled(9, True, LastEpoch, 2);
        assert_eq!(edges(&b), vec![(9, None)], "added plainly before");
    }
}
