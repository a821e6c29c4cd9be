//! The messages of [`TaskErrorKind`](super::TaskErrorKind)'s reduction variants: `reduce_with` identities and
//! combines that do not fit, a buffer reduced twice, reductions outside kernels or without a combine, and
//! reductions that include a value no task wrote.
//!
//! The variants themselves (their fields and docs) stay in `TaskErrorKind`; each names its function here with
//! `#[error(fmt = reduction::NAME)]`, which thiserror calls with the variant's fields by reference, in order.

use std::fmt;

use crate::task::ResourceIdent;

/// [`TaskErrorKind::ReductionIdentity`](super::TaskErrorKind::ReductionIdentity)'s message.
pub(super) fn reduction_identity(
    buffer: &ResourceIdent,
    identity: &str,
    call: &str,
    gave: &str,
    wanted: &str,
    hint: &str,
    f: &mut fmt::Formatter<'_>,
) -> fmt::Result {
    write!(
        f,
        "{buffer} is reduced with reduce_with from the identity {identity}, but the combine closure gives \
         {call} = {gave}, not {wanted}: every chunk and every rank starts from the identity, so one that is not the \
         combine's identity counts once per chunk, and the result changes with the data's split over ranks and \
         devices; pass the combine's identity ({hint})"
    )
}

/// [`TaskErrorKind::ReductionNotCommutative`](super::TaskErrorKind::ReductionNotCommutative)'s message.
pub(super) fn reduction_not_commutative(
    buffer: &ResourceIdent,
    call: &str,
    gave: &str,
    swapped: &str,
    gave_swapped: &str,
    f: &mut fmt::Formatter<'_>,
) -> fmt::Result {
    write!(
        f,
        "{buffer} is reduced with reduce_with, but the combine closure is not commutative: {call} = {gave}, but \
         {swapped} = {gave_swapped}. The partial results of the chunks (ranks and devices) pair up, in an order, as \
         the task's split decides, so the result would change with the number of ranks and devices; make the \
         combine commutative (and associative): where it picks one of two values, pick by value (the smaller or the \
         larger), not by position"
    )
}

/// [`TaskErrorKind::ReductionTwice`](super::TaskErrorKind::ReductionTwice)'s message.
pub(super) fn reduction_twice(
    buffer: &ResourceIdent,
    first: &usize,
    second: &usize,
    f: &mut fmt::Formatter<'_>,
) -> fmt::Result {
    write!(
        f,
        "{buffer} is reduced into twice by the same task (reductions {first} and {second}, numbered from 0 in the \
         order of .reduce calls): each reduction binds a partial result of its own, so which one the buffer keeps \
         would be arbitrary; reduce once, or into a buffer each"
    )
}

/// [`TaskErrorKind::ReductionWithoutKernel`](super::TaskErrorKind::ReductionWithoutKernel)'s message.
pub(super) fn reduction_without_kernel(kind: &str, buffer: &ResourceIdent, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    write!(
        f,
        "{buffer} is reduced into by {kind}, but only kernels (task::parallel_for) reduce; a host task \
         writes its result through an accessor instead (e.g. discard_write(&buffer, access::all()) in \
         task::host_once)"
    )
}

/// [`TaskErrorKind::CustomReductionWithoutCombine`](super::TaskErrorKind::CustomReductionWithoutCombine)'s message.
pub(super) fn custom_reduction_without_combine(buffer: &ResourceIdent, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    write!(
        f,
        "{buffer} is reduced with ReductionOp::Custom, which needs an identity and a combining function: use \
         .reduce_with(&buffer, identity, combine)"
    )
}

/// [`TaskErrorKind::UninitializedReduction`](super::TaskErrorKind::UninitializedReduction)'s message.
pub(super) fn uninitialized_reduction(buffer: &ResourceIdent, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    write!(
        f,
        "{buffer} is reduced including its current value (reduce_including, reduce_with_including), but no task has \
         written it and it was not created from host data, so it has no value to include (unless refused, the \
         reduction starts from the operation's identity); initialize the buffer from host data, write it first, or \
         reduce with .reduce / .reduce_with, which start from the identity"
    )
}
