//! The messages of [`TaskErrorKind`](super::TaskErrorKind)'s variants about how a task touches its resources: side
//! effects declared twice, mappers out of bounds or with a wrong reach, uninitialized reads, writes that overlap
//! between nodes or between a host task's accessors, races between a task's items, and resources of another queue.
//!
//! The variants themselves (their fields and docs) stay in `TaskErrorKind`; each names its function here with
//! `#[error(fmt = access::NAME)]`, which thiserror calls with the variant's fields by reference, in order.

use std::fmt;

use crate::geometry::{BufferExtent, GridBox, Region};
use crate::ids::{HostObjectId, NodeId};
use crate::task::ResourceIdent;

/// [`TaskErrorKind::DuplicateSideEffect`](super::TaskErrorKind::DuplicateSideEffect)'s message.
pub(super) fn duplicate_side_effect(
    host_object: &HostObjectId,
    first: &usize,
    second: &usize,
    f: &mut fmt::Formatter<'_>,
) -> fmt::Result {
    write!(
        f,
        "host object {host_object} is declared twice as a side effect (side effects {first} and {second}): \
         with_object({first}) and with_object({second}) would lock the same object, so a nested call would wait for \
         itself; declare each host object once"
    )
}

/// [`TaskErrorKind::OutOfBounds`](super::TaskErrorKind::OutOfBounds)'s message.
pub(super) fn out_of_bounds(
    buffer: &ResourceIdent,
    mapper: &str,
    region: &Region,
    outside: &Region,
    extent: &BufferExtent,
    f: &mut fmt::Formatter<'_>,
) -> fmt::Result {
    write!(
        f,
        "range mapper {mapper} maps to {region} in {buffer}, but {outside} lies outside the buffer's extent {extent}; \
         use a mapper that stays in bounds (neighborhood clamps for you)"
    )
}

/// [`TaskErrorKind::MapperReach`](super::TaskErrorKind::MapperReach)'s message.
pub(super) fn mapper_reach(
    buffer: &ResourceIdent,
    mapper: &str,
    chunk: &GridBox,
    cells: &GridBox,
    declared: &GridBox,
    f: &mut fmt::Formatter<'_>,
) -> fmt::Result {
    write!(
        f,
        "the reach declared for custom range mapper '{mapper}' of {buffer} is wrong: chunk {chunk} touches {cells}, \
         but the reach of those cells is {declared}, which does not hold the chunk; with a wrong reach, ranks would \
         miss data other ranks need, so fix the reach (or drop it: an undeclared reach is always correct)"
    )
}

/// [`TaskErrorKind::UninitializedRead`](super::TaskErrorKind::UninitializedRead)'s message.
pub(super) fn uninitialized_read(buffer: &ResourceIdent, region: &Region, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    write!(
        f,
        "{buffer} is read in {region}, which no task has written; initialize the buffer from host data, or write it \
         first (use a write-only access if the old contents are not needed)"
    )
}

/// [`TaskErrorKind::OverlappingWrite`](super::TaskErrorKind::OverlappingWrite)'s message.
pub(super) fn overlapping_write(
    buffer: &ResourceIdent,
    region: &Region,
    first: &NodeId,
    second: &NodeId,
    f: &mut fmt::Formatter<'_>,
) -> fmt::Result {
    write!(
        f,
        "{buffer} is written in {region} by the chunk on {first} and by the chunk on {second}; \
         writes of one task must not overlap between nodes (ranks, and the devices of a rank, each hold a copy of \
         their cells): write through one_to_one, read with neighborhood, or give each chunk cells of its own (with \
         atomics too)"
    )
}

/// [`TaskErrorKind::HostWritesOverlap`](super::TaskErrorKind::HostWritesOverlap)'s message.
pub(super) fn host_writes_overlap(
    buffer: &ResourceIdent,
    first: &usize,
    first_access: &str,
    second: &usize,
    second_access: &str,
    region: &Region,
    f: &mut fmt::Formatter<'_>,
) -> fmt::Result {
    write!(
        f,
        "{buffer} is written through accessors {first} ({first_access}) and {second} ({second_access}) of this host \
         task, which overlap in {region}: a host task gets a copy of each accessor's cells, and the copy written \
         back last would overwrite what the closure stored through the other there; access the buffer through one \
         writing accessor whose mapper covers both regions (read it through a read accessor if the closure needs \
         its old cells), or map the two accessors to disjoint cells"
    )
}

/// [`TaskErrorKind::IntraTaskRace`](super::TaskErrorKind::IntraTaskRace)'s message.
pub(super) fn intra_task_race(
    buffer: &ResourceIdent,
    region: &Region,
    read: &str,
    write: &str,
    f: &mut fmt::Formatter<'_>,
) -> fmt::Result {
    write!(
        f,
        "{buffer} is read in {region} through {read}, and other items of the same task write those cells through \
         {write}; work-items of one task run in no defined order, so what they read would depend on the split and \
         the timing: write into a second buffer and swap (double buffering), or split the task in two"
    )
}

/// [`TaskErrorKind::ForeignResource`](super::TaskErrorKind::ForeignResource)'s message.
pub(super) fn foreign_resource(resource: &str, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    write!(
        f,
        "{resource} belongs to another Queue than the one the task is submitted to; a task can only use the buffers, \
         host objects and collective groups of its own queue"
    )
}
