//! The messages of [`TaskErrorKind`](super::TaskErrorKind)'s variants about index spaces and boxes given as offset
//! and range: ends that overflow `usize`, offsets where none is taken, and boxes outside the buffer's extent.
//!
//! The variants themselves (their fields and docs) stay in `TaskErrorKind`; each names its function here with
//! `#[error(fmt = boxes::NAME)]`, which thiserror calls with the variant's fields by reference, in order.

// thiserror passes every field of a variant: the largest of these variants have eight.
#![allow(clippy::too_many_arguments)]

use std::fmt;

use crate::geometry::BufferExtent;
use crate::task::ResourceIdent;

/// [`TaskErrorKind::IndexSpaceOverflow`](super::TaskErrorKind::IndexSpaceOverflow)'s message.
pub(super) fn index_space_overflow(offset: &[usize], range: &[usize], f: &mut fmt::Formatter<'_>) -> fmt::Result {
    write!(
        f,
        "the index space at offset {offset:?} with range {range:?} ends beyond usize::MAX along some dimension; \
         an index space's offset plus its range must fit a usize (and a kernel's, a u32)"
    )
}

/// [`TaskErrorKind::OffsetNotAllowed`](super::TaskErrorKind::OffsetNotAllowed)'s message.
pub(super) fn offset_not_allowed(kind: &str, offset: &[usize], f: &mut fmt::Formatter<'_>) -> fmt::Result {
    write!(
        f,
        "{kind} takes no offset (it was given .offset({offset:?})): its items are numbered by celer, from 0; only \
         task::parallel_for and task::host_for run over an index space of the program's"
    )
}

/// [`TaskErrorKind::EmptyBoxOutside`](super::TaskErrorKind::EmptyBoxOutside)'s message.
pub(super) fn empty_box_outside(
    what: &str,
    buffer: &ResourceIdent,
    offset: &[usize],
    range: &[usize],
    extent: &[usize],
    dim: &usize,
    start: &usize,
    end: &usize,
    f: &mut fmt::Formatter<'_>,
) -> fmt::Result {
    write!(
        f,
        "{what} of {buffer} is given as offset {offset:?} and range {range:?}: an empty box, but it lies outside the \
         buffer's extent {extent:?} (along dimension {dim} it spans {start}..{end}); a box must lie inside the \
         buffer's extent even when empty (its offset at most the extent, as a slice's start at most its length)"
    )
}

/// [`TaskErrorKind::FencedBoxOutside`](super::TaskErrorKind::FencedBoxOutside)'s message.
pub(super) fn fenced_box_outside(
    what: &str,
    buffer: &ResourceIdent,
    offset: &[usize],
    range: &[usize],
    extent: &[usize],
    dim: &usize,
    start: &usize,
    end: &usize,
    f: &mut fmt::Formatter<'_>,
) -> fmt::Result {
    write!(
        f,
        "{what} of {buffer} is given as offset {offset:?} and range {range:?}, but it lies outside the buffer's \
         extent {extent:?} (along dimension {dim} it spans {start}..{end}); fence a box inside the buffer's extent \
         (its offset plus its range at most the extent along every dimension)"
    )
}

/// [`TaskErrorKind::BoxOverflow`](super::TaskErrorKind::BoxOverflow)'s message.
pub(super) fn box_overflow(
    what: &str,
    buffer: &ResourceIdent,
    offset: &[usize],
    range: &[usize],
    extent: &BufferExtent,
    f: &mut fmt::Formatter<'_>,
) -> fmt::Result {
    write!(
        f,
        "{what} of {buffer} is given as offset {offset:?} and range {range:?}, whose end overflows usize; the box \
         must lie inside the buffer's extent {extent}"
    )
}
