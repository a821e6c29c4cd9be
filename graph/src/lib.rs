//! celer's pure data layer: geometry, region maps, the task graph and the command-graph node types.
//!
//! - No threads, no MPI, no Vulkan: every generator here is a plain synchronous struct, so the whole pipeline from
//!   submissions to one rank's commands can be unit-tested (and simulated for many ranks) in one process.
//! - Geometry is stored in 3D; lower dimensions leave trailing dimensions at `[0, 1)` ([`geometry`]).
//! - Regions are canonical box lists: equal cell sets compare equal ([`Region`]).
//! - Command-graph nodes live in per-horizon arenas ([`NodeStore`]) and are freed a horizon window at a time; tasks
//!   are shared nodes (`Arc`) whose erased, unshared allocations the task manager reuses for new tasks.
//! - Ids are strong types that print as in Celerity (`T3`, `B0`, `N1`, `C12`) so logs, dumps and errors line up.
//! - Errors name the task, buffer and region at fault ([`TaskError`]).
#![warn(missing_docs, missing_debug_implementations, rust_2018_idioms, unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

pub mod command;
pub mod error;
pub mod geometry;
pub mod ids;
pub mod node_store;
pub mod patterns;
pub mod reader_log;
mod region_cache;
pub mod region_map;
pub mod task;
pub mod task_manager;
mod task_store;

pub use command::{Command, CommandDependency, CommandKind, TransferId};
pub use error::{Diagnostic, ErrorPolicy, TaskError, TaskErrorKind};
pub use geometry::{BufferExtent, GridBox, Region, MAX_DIMS};
pub use ids::{BufferId, CollectiveGroupId, CommandId, HostObjectId, IdHasher, IdMap, NodeId, ReductionId, TaskId};
pub use node_store::{ExecutionFront, NodeStore, VecPool};
pub use reader_log::ReaderLog;
pub use region_map::RegionMap;
pub use task::{
    AccessMode, AccessRegions, BufferAccess, Dependency, DependencyBuilder, DependencyKind, DependencyOrigin,
    EpochAction, NeighborhoodShape, RangeMapper, ReductionOp, ReductionSpec, RegionList, ResourceIdent,
    SideEffectOrder, SplitHint, Task, TaskIdent, TaskKind, TaskSpec,
};
pub use task_manager::{TaskManager, TaskManagerConfig};
