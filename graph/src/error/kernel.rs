//! The messages of [`TaskErrorKind`](super::TaskErrorKind)'s kernel variants: a kernel that does not fit the task
//! binding it (binding counts, element types, read-only and never-written bindings, raw ids, discarded reads, stores
//! and reads outside the buffer, reductions' operators and types, item dimensions), its scalars (missing, extra, of
//! another type, names), its parameter block and the device limits it meets (push constants, parameters, bindings,
//! float64, coordinates, cells, bind bytes), and a kernel's block reduction asked to include the buffer's current
//! value.
//!
//! The variants themselves (their fields and docs) stay in `TaskErrorKind`; each names its function here with
//! `#[error(fmt = kernel::NAME)]`, which thiserror calls with the variant's fields by reference, in order.

// thiserror passes every field of a variant: the largest kernel variants have eight.
#![allow(clippy::too_many_arguments)]

use std::fmt;

use crate::geometry::{BufferExtent, GridBox, Region};
use crate::task::ResourceIdent;

/// [`TaskErrorKind::KernelBindings`](super::TaskErrorKind::KernelBindings)'s message.
pub(super) fn kernel_bindings(
    kernel: &str,
    declared: &u32,
    given: &usize,
    accessors: &usize,
    reductions: &usize,
    f: &mut fmt::Formatter<'_>,
) -> fmt::Result {
    write!(
        f,
        "kernel {kernel} declares {declared} storage bindings in @group(0), but the task binds {given} \
         ({accessors} accessors and {reductions} reductions, in that order)"
    )
}

/// [`TaskErrorKind::KernelElementType`](super::TaskErrorKind::KernelElementType)'s message.
pub(super) fn kernel_element_type(
    kernel: &str,
    binding: &str,
    number: &u32,
    wgsl: &str,
    size: &str,
    buffer: &ResourceIdent,
    element: &str,
    role: &str,
    f: &mut fmt::Formatter<'_>,
) -> fmt::Result {
    write!(
        f,
        "kernel {kernel} declares `{binding}` (@binding({number})) as array<{wgsl}>{size}, but the task binds {buffer} \
         of {element} there ({role}); bind a buffer of the binding's element type, or change the kernel"
    )
}

/// [`TaskErrorKind::KernelReadOnlyBinding`](super::TaskErrorKind::KernelReadOnlyBinding)'s message.
pub(super) fn kernel_read_only_binding(
    kernel: &str,
    binding: &str,
    number: &u32,
    buffer: &ResourceIdent,
    mode: &str,
    f: &mut fmt::Formatter<'_>,
) -> fmt::Result {
    write!(
        f,
        "kernel {kernel} declares `{binding}` (@binding({number})) var<storage, read>, but the task binds {buffer} \
         there with {mode} access; the kernel cannot write through it (declare it var<storage, read_write>, or \
         bind a buffer the task only reads: were two accessors given in the wrong order?)"
    )
}

/// [`TaskErrorKind::KernelNeverWrites`](super::TaskErrorKind::KernelNeverWrites)'s message.
pub(super) fn kernel_never_writes(
    kernel: &str,
    binding: &str,
    number: &u32,
    buffer: &ResourceIdent,
    mode: &str,
    outcome: &str,
    hint: &str,
    f: &mut fmt::Formatter<'_>,
) -> fmt::Result {
    write!(
        f,
        "kernel {kernel} never writes `{binding}` (@binding({number})), but the task binds {buffer} there with \
         {mode} access, so {outcome}: bind the buffer the kernel writes there (were two accessors given in the \
         wrong order?), {hint}, or write the binding in the kernel"
    )
}

/// [`TaskErrorKind::KernelRawIds`](super::TaskErrorKind::KernelRawIds)'s message.
pub(super) fn kernel_raw_ids(kernel: &str, file: &str, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    write!(
        f,
        "kernel {kernel} indexes with the raw global_invocation_id: it calls none of celer_item_1d/2d/3d and never \
         reads the chunk's offset (pc.chunk.offset0..2), but the ids start at 0 on every chunk, so the chunks of \
         other ranks and devices would all work on the first chunk's cells (and a range that is not a multiple of \
         the workgroup size runs items past its end); take the item from celer_item_Nd(pc.chunk, gid) and skip \
         those outside the chunk (celer_contains), or add the chunk's offset yourself; a kernel that ignores the \
         chunk on purpose says so in a line `// celer-kernel-build: raw ids: ENTRY` of {file}"
    )
}

/// [`TaskErrorKind::KernelStoresOutside`](super::TaskErrorKind::KernelStoresOutside)'s message.
pub(super) fn kernel_stores_outside(
    kernel: &str,
    binding: &str,
    number: &u32,
    buffer: &ResourceIdent,
    range: &GridBox,
    extent: &BufferExtent,
    outside: &Region,
    f: &mut fmt::Formatter<'_>,
) -> fmt::Result {
    let access = ItemAccess { verb: "stores to", would: "store to", lands: "the stores would land on", what: "store" };
    items_outside(&access, kernel, binding, number, buffer, range, extent, outside, f)
}

/// [`TaskErrorKind::KernelReadsOutside`](super::TaskErrorKind::KernelReadsOutside)'s message.
pub(super) fn kernel_reads_outside(
    kernel: &str,
    binding: &str,
    number: &u32,
    buffer: &ResourceIdent,
    range: &GridBox,
    extent: &BufferExtent,
    outside: &Region,
    f: &mut fmt::Formatter<'_>,
) -> fmt::Result {
    let access = ItemAccess { verb: "reads", would: "read", lands: "the loads would read", what: "read" };
    items_outside(&access, kernel, binding, number, buffer, range, extent, outside, f)
}

/// The words of [`items_outside`] for a store or a load.
struct ItemAccess {
    verb: &'static str,
    would: &'static str,
    lands: &'static str,
    what: &'static str,
}

/// The message of a kernel that stores to or loads from a binding at its own item on every item, over an index
/// space reaching outside the buffer bound there (the two variants' fields, and their words).
fn items_outside(
    access: &ItemAccess,
    kernel: &str,
    binding: &str,
    number: &u32,
    buffer: &ResourceIdent,
    range: &GridBox,
    extent: &BufferExtent,
    outside: &Region,
    f: &mut fmt::Formatter<'_>,
) -> fmt::Result {
    let ItemAccess { verb, would, lands, what } = access;
    write!(
        f,
        "kernel {kernel} {verb} `{binding}` (@binding({number})) at its own item on every item of its index space \
         ({binding}[celer_index(pc.{binding}, item)], behind no guard but the chunk's), but the task's index space \
         {range} reaches outside {buffer}, bound there, whose extent is {extent}: its items {outside} would {would} \
         cells the buffer does not have (the run would stop every rank where a chunk's range mapper gives it none of \
         the buffer, and {lands} other cells where it gives some); guard the {what} with `if \
         (celer_contains(pc.{binding}, item)) {{ … }}`, or submit the task over the buffer's extent (or a part of it)"
    )
}

/// [`TaskErrorKind::KernelReadsDiscarded`](super::TaskErrorKind::KernelReadsDiscarded)'s message.
pub(super) fn kernel_reads_discarded(
    kernel: &str,
    binding: &str,
    number: &u32,
    buffer: &ResourceIdent,
    f: &mut fmt::Formatter<'_>,
) -> fmt::Result {
    write!(
        f,
        "kernel {kernel} reads `{binding}` (@binding({number})) before it stores to it, but the task binds {buffer} \
         there with discard_write access, so the kernel would read whatever the allocation held there (it changes \
         with the number of ranks and devices): declare read_write (or write, which keeps the old contents of the \
         cells), store each cell before reading it, or bind the buffer the kernel reads there (were two accessors \
         given in the wrong order?)"
    )
}

/// [`TaskErrorKind::KernelWritesReadAccess`](super::TaskErrorKind::KernelWritesReadAccess)'s message.
pub(super) fn kernel_writes_read_access(
    kernel: &str,
    binding: &str,
    number: &u32,
    buffer: &ResourceIdent,
    f: &mut fmt::Formatter<'_>,
) -> fmt::Result {
    write!(
        f,
        "kernel {kernel} writes `{binding}` (@binding({number})), but the task binds {buffer} there with read \
         access, so celer would not know the buffer changed (the ranks' copies would disagree): declare a writing \
         access (read_write, discard_write), or bind the buffer the kernel writes there (were two accessors given \
         in the wrong order?)"
    )
}

/// [`TaskErrorKind::KernelReductionOp`](super::TaskErrorKind::KernelReductionOp)'s message.
pub(super) fn kernel_reduction_op(
    kernel: &str,
    call: &str,
    binding: &str,
    number: &u32,
    buffer: &ResourceIdent,
    task_op: &str,
    task_op_lower: &str,
    kernel_op: &str,
    f: &mut fmt::Formatter<'_>,
) -> fmt::Result {
    write!(
        f,
        "kernel {kernel} stores the result of {call} into `{binding}` (@binding({number})), but the task reduces \
         {buffer} there with ReductionOp::{task_op}, so the blocks' partial results would be combined by another \
         operation than the one that made them; reduce with ReductionOp::{kernel_op}, or call \
         celer_reduce_{task_op_lower}_<type> in the kernel"
    )
}

/// [`TaskErrorKind::KernelAtomicOp`](super::TaskErrorKind::KernelAtomicOp)'s message.
pub(super) fn kernel_atomic_op(
    kernel: &str,
    binding: &str,
    number: &u32,
    atomics: &str,
    buffer: &ResourceIdent,
    task_op: &str,
    kernel_op: &str,
    f: &mut fmt::Formatter<'_>,
) -> fmt::Result {
    write!(
        f,
        "kernel {kernel} combines its items into `{binding}` (@binding({number})) with {atomics}, but the task \
         reduces {buffer} there with ReductionOp::{task_op}: the buffer would start from {task_op}'s identity and \
         the ranks' partial results would be combined by {task_op}, not by what the kernel applies, giving wrong \
         results; reduce with ReductionOp::{kernel_op}, or change the kernel's atomics"
    )
}

/// [`TaskErrorKind::KernelReductionRace`](super::TaskErrorKind::KernelReductionRace)'s message.
pub(super) fn kernel_reduction_race(
    kernel: &str,
    binding: &str,
    number: &u32,
    buffer: &ResourceIdent,
    range: &GridBox,
    f: &mut fmt::Formatter<'_>,
) -> fmt::Result {
    write!(
        f,
        "kernel {kernel} stores to `{binding}` (@binding({number})) at one fixed cell on every item of its index \
         space with a plain store (`{binding}[0] += …`, behind no guard but the chunk's), but the task reduces \
         {buffer} there over the {} items of {range}: items run in no defined order, so each overwrites what the \
         others stored and the result keeps a few items' values (which ones changes with the timing and the split); \
         combine with an atomic (`atomicAdd(&{binding}[0], v)` on array<atomic<i32>> or array<atomic<u32>>), or, \
         for f32, which has no atomics, with a prelude block reduction (`celer_reduce_sum_f32`, see the GUIDE's \
         \"Deterministic reductions\")",
        range.area()
    )
}

/// [`TaskErrorKind::KernelCrossIndexed`](super::TaskErrorKind::KernelCrossIndexed)'s message.
pub(super) fn kernel_cross_indexed(
    kernel: &str,
    binding: &str,
    number: &u32,
    buffer: &ResourceIdent,
    box_of: &str,
    box_number: &u32,
    box_buffer: &ResourceIdent,
    f: &mut fmt::Formatter<'_>,
) -> fmt::Result {
    write!(
        f,
        "kernel {kernel} indexes `{binding}` (@binding({number})), where the task binds {buffer}, with the box of \
         `{box_of}` (@binding({box_number})), where it binds {box_buffer}: `{binding}[celer_index(pc.{box_of}, …)]`. \
         Each binding holds its own buffer's cells on the node, in an allocation whose box differs between buffers \
         (one read with a halo is allocated wider than one written at the chunk), so the index picks other cells of \
         `{binding}` than the kernel means wherever the boxes differ (on one rank they often agree, on two they do \
         not); index each binding with its own box: `{binding}[celer_index(pc.{binding}, item)]`"
    )
}

/// [`TaskErrorKind::KernelGlobalIndex`](super::TaskErrorKind::KernelGlobalIndex)'s message.
pub(super) fn kernel_global_index(
    kernel: &str,
    binding: &str,
    number: &u32,
    buffer: &ResourceIdent,
    access: &str,
    f: &mut fmt::Formatter<'_>,
) -> fmt::Result {
    write!(
        f,
        "kernel {kernel} indexes `{binding}` (@binding({number})) with its item's coordinates in the index space (or \
         its global_invocation_id) without celer_index (`{binding}[item.x]`), but the task binds {buffer} there \
         through {access}: a binding holds the cells of the buffer its node touches, in an allocation that starts at \
         the buffer's origin only where the node touches all of it, so on a second rank or device (or at an offset) \
         the index lands past the cells the kernel means; index it with `{binding}[celer_index(pc.{binding}, \
         item)]`, which turns the item into the allocation's index (or bind the buffer through all())"
    )
}

/// [`TaskErrorKind::KernelOffsetUndeclared`](super::TaskErrorKind::KernelOffsetUndeclared)'s message.
pub(super) fn kernel_offset_undeclared(
    kernel: &str,
    binding: &str,
    number: &u32,
    buffer: &ResourceIdent,
    access: &str,
    offset: &str,
    hint: &str,
    f: &mut fmt::Formatter<'_>,
) -> fmt::Result {
    write!(
        f,
        "kernel {kernel} indexes `{binding}` (@binding({number})) at its item + {offset} \
         (celer_index(pc.{binding}, item ± …), also built of its components, kept in a var, handed to or returned \
         by its own functions), but the task binds {buffer} there through {access}, which does not declare that cell: at a \
         chunk's border it lies outside the chunk's region, so the kernel finds there no data from the rank that \
         wrote it (a stale cell, or its guard's fallback), and the results change with the number of ranks and \
         devices; declare every cell it touches: {hint}"
    )
}

/// [`TaskErrorKind::KernelAtomicCombine`](super::TaskErrorKind::KernelAtomicCombine)'s message.
pub(super) fn kernel_atomic_combine(
    kernel: &str,
    binding: &str,
    number: &u32,
    atomics: &str,
    buffer: &ResourceIdent,
    how: &str,
    example: &str,
    hint: &str,
    f: &mut fmt::Formatter<'_>,
) -> fmt::Result {
    write!(
        f,
        "kernel {kernel} combines its items into `{binding}` (@binding({number})) with {atomics}, but the task \
         combines the partial results of {buffer} (one per rank and device) {how}: {example}; the result would \
         change with the number of ranks and devices (one chunk keeps the kernel's); {hint}"
    )
}

/// [`TaskErrorKind::KernelReductionType`](super::TaskErrorKind::KernelReductionType)'s message.
pub(super) fn kernel_reduction_type(
    kernel: &str,
    call: &str,
    call_type: &str,
    op: &str,
    binding: &str,
    number: &u32,
    wgsl: &str,
    buffer: &ResourceIdent,
    f: &mut fmt::Formatter<'_>,
) -> fmt::Result {
    write!(
        f,
        "kernel {kernel} stores the result of {call} (of {call_type}) into `{binding}` (@binding({number})), declared \
         array<{wgsl}>, where the task reduces {buffer}: each block's {call_type} result is converted to {wgsl} \
         before the blocks are combined; call celer_reduce_{op}_{wgsl}, or declare the binding and the buffer \
         {call_type}"
    )
}

/// [`TaskErrorKind::KernelDimensions`](super::TaskErrorKind::KernelDimensions)'s message.
pub(super) fn kernel_dimensions(
    kernel: &str,
    kernel_dims: &u32,
    task_dims: &usize,
    range: &GridBox,
    f: &mut fmt::Formatter<'_>,
) -> fmt::Result {
    write!(
        f,
        "kernel {kernel} works in {kernel_dims}D (it calls celer_item_{kernel_dims}d), but the task's index space \
         {range} has {task_dims} dimension(s); submit it over a {kernel_dims}D range{}",
        other_item_call(*task_dims)
    )
}

/// [`TaskErrorKind::KernelItemDimensions`](super::TaskErrorKind::KernelItemDimensions)'s message.
pub(super) fn kernel_item_dimensions(
    kernel: &str,
    binding: &str,
    number: &u32,
    kernel_dims: &u32,
    buffer: &ResourceIdent,
    buffer_dims: &u32,
    f: &mut fmt::Formatter<'_>,
) -> fmt::Result {
    write!(
        f,
        "kernel {kernel} indexes `{binding}` (@binding({number})) with its {kernel_dims}D item \
         (celer_index(pc.{binding}, item)), but the task binds {buffer} there, which is {buffer_dims}D: {}",
        item_dims_outcome(*kernel_dims, *buffer_dims, binding)
    )
}

/// [`TaskErrorKind::MissingScalar`](super::TaskErrorKind::MissingScalar)'s message.
pub(super) fn missing_scalar(
    kernel: &str,
    member: &str,
    _name: &str,
    offset: &u32,
    given: &str,
    hint: &str,
    f: &mut fmt::Formatter<'_>,
) -> fmt::Result {
    write!(
        f,
        "kernel {kernel}'s var<immediate> member `{member}` (offset {offset}) gets no value: the task gives \
         {given}; {hint}"
    )
}

/// [`TaskErrorKind::ExtraScalars`](super::TaskErrorKind::ExtraScalars)'s message.
pub(super) fn extra_scalars(
    kernel: &str,
    given: &usize,
    expected: &usize,
    declared: &str,
    extra: &str,
    f: &mut fmt::Formatter<'_>,
) -> fmt::Result {
    write!(
        f,
        "the task gives {given} scalar value(s), but kernel {kernel} takes {expected} after its boxes ({declared}); \
         extra: {extra}; remove the extra values or add members to the kernel's var<immediate> struct"
    )
}

/// [`TaskErrorKind::ScalarType`](super::TaskErrorKind::ScalarType)'s message.
pub(super) fn scalar_type(
    kernel: &str,
    member: &str,
    member_type: &str,
    given: &str,
    which: &str,
    hint: &str,
    f: &mut fmt::Formatter<'_>,
) -> fmt::Result {
    write!(
        f,
        "kernel {kernel}'s var<immediate> member `{member}` is of type {member_type}, but the task gives it {given} \
         ({which}); {hint}"
    )
}

/// [`TaskErrorKind::UnknownKernelName`](super::TaskErrorKind::UnknownKernelName)'s message.
pub(super) fn unknown_kernel_name(
    kernel: &str,
    what: &str,
    name: &str,
    known: &str,
    f: &mut fmt::Formatter<'_>,
) -> fmt::Result {
    write!(f, "kernel {kernel} has no {what} named `{name}` (it has: {known})")
}

/// [`TaskErrorKind::KernelNaming`](super::TaskErrorKind::KernelNaming)'s message.
pub(super) fn kernel_naming(kernel: &str, problem: &str, hint: &str, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    write!(f, "{problem} for kernel {kernel}; {hint}")
}

/// [`TaskErrorKind::PushConstantLayout`](super::TaskErrorKind::PushConstantLayout)'s message.
pub(super) fn push_constant_layout(kernel: &str, detail: &str, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    write!(
        f,
        "kernel {kernel}'s var<immediate> struct does not follow celer's layout ({detail}); it must start with \
         `chunk: CelerBox`, then one CelerBox per @group(0) binding in binding order, then the kernel's scalars"
    )
}

/// [`TaskErrorKind::KernelNeedsFloat64`](super::TaskErrorKind::KernelNeedsFloat64)'s message.
pub(super) fn kernel_needs_float64(kernel: &str, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    write!(
        f,
        "kernel {kernel} uses f64 (its SPIR-V declares the capability Float64: its own f64 values or the prelude's \
         celer_reduce_<op>_f64), but a device of this job lacks the Vulkan feature shaderFloat64, so it cannot run \
         there; run on devices that have it (CELER_DEVICE), or compute in f32"
    )
}

/// [`TaskErrorKind::PushConstantsTooLarge`](super::TaskErrorKind::PushConstantsTooLarge)'s message.
pub(super) fn push_constants_too_large(
    kernel: &str,
    bytes: &usize,
    detail: &str,
    limit: &u32,
    f: &mut fmt::Formatter<'_>,
) -> fmt::Result {
    write!(
        f,
        "kernel {kernel} needs {bytes} bytes of push constants ({detail}), more than the {limit} a device of this job \
         takes (maxPushConstantsSize: 128 on lavapipe and Vulkan's minimum, which allows 4 bindings and 2 scalar \
         words; 256 on NVIDIA): bind fewer buffers (split the kernel in two, or keep buffers read alike in one buffer) \
         or pass fewer scalars"
    )
}

/// [`TaskErrorKind::ParamsTooLarge`](super::TaskErrorKind::ParamsTooLarge)'s message.
pub(super) fn params_too_large(
    kernel: &str,
    bytes: &usize,
    detail: &str,
    limit: &usize,
    f: &mut fmt::Formatter<'_>,
) -> fmt::Result {
    write!(
        f,
        "kernel {kernel} needs {bytes} bytes of parameters ({detail}), more than the {limit} a kernel reading them \
         from storage takes: bind fewer buffers (split the kernel in two, or keep buffers read alike in one buffer) \
         or pass fewer scalars"
    )
}

/// [`TaskErrorKind::TooManyBindings`](super::TaskErrorKind::TooManyBindings)'s message.
pub(super) fn too_many_bindings(
    kernel: &str,
    bindings: &usize,
    needed: &usize,
    detail: &str,
    limit: &u32,
    f: &mut fmt::Formatter<'_>,
) -> fmt::Result {
    write!(
        f,
        "kernel {kernel} has {bindings} bindings, and its dispatch binds {needed} storage buffers ({detail}), more \
         than the {limit} a device of this job binds in one dispatch (maxPerStageDescriptorStorageBuffers: 32 on \
         lavapipe, 4 at Vulkan's minimum, far more on NVIDIA and AMD): bind fewer buffers (split the kernel in two, \
         or keep buffers read alike in one buffer of more rows or of a struct element)"
    )
}

/// [`TaskErrorKind::KernelWithoutCode`](super::TaskErrorKind::KernelWithoutCode)'s message.
pub(super) fn kernel_without_code(kernel: &str, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    write!(
        f,
        "kernel `{kernel}` was made with Kernel::named, which only a dry run can record: a running queue has no \
         code to run for it; use Kernel::wgsl(&kernels::NAME, \"entry\")"
    )
}

/// [`TaskErrorKind::BlockReductionIncludingCurrentValue`](super::TaskErrorKind::BlockReductionIncludingCurrentValue)'s message.
pub(super) fn block_reduction_including_current_value(
    kernel: &str,
    buffer: &ResourceIdent,
    f: &mut fmt::Formatter<'_>,
) -> fmt::Result {
    write!(
        f,
        "{buffer} is reduced including its current value (reduce_including), but kernel {kernel} makes a \
         deterministic block reduction (it calls the prelude's celer_reduce_*), whose tree of blocks cannot fold the \
         old value in; reduce into a buffer of its own with .reduce(&buffer, op), then combine the old and the new \
         value in a task of its own (a one-item kernel or a host_once task)"
    )
}

/// [`TaskErrorKind::KernelCoordinates`](super::TaskErrorKind::KernelCoordinates)'s message.
pub(super) fn kernel_coordinates(kernel: &str, what: &str, max: &u32, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    write!(
        f,
        "kernel {kernel} cannot address {what}: kernels see coordinates as u32, so every extent must be at most \
         {max}; split the work into several tasks or buffers"
    )
}

/// [`TaskErrorKind::KernelCells`](super::TaskErrorKind::KernelCells)'s message.
pub(super) fn kernel_cells(
    kernel: &str,
    buffer: &ResourceIdent,
    chunk: &GridBox,
    nodes: &usize,
    region: &GridBox,
    cells: &u64,
    max: &u64,
    f: &mut fmt::Formatter<'_>,
) -> fmt::Result {
    write!(
        f,
        "kernel {kernel} cannot address {buffer} on chunk {chunk} (the index space split over {nodes} node(s)): \
         its accesses there span {region} ({cells} cells), but kernels index the cells of a buffer's allocation on \
         a node as u32, so at most {max}; split the work into more tasks, use several smaller buffers, or run on \
         more ranks or devices"
    )
}

/// [`TaskErrorKind::KernelBindBytes`](super::TaskErrorKind::KernelBindBytes)'s message.
pub(super) fn kernel_bind_bytes(
    kernel: &str,
    buffer: &ResourceIdent,
    chunk: &GridBox,
    nodes: &usize,
    region: &GridBox,
    bytes: &u64,
    max: &u64,
    f: &mut fmt::Formatter<'_>,
) -> fmt::Result {
    write!(
        f,
        "kernel {kernel} cannot bind {buffer} on chunk {chunk} (the index space split over {nodes} node(s)): its \
         accesses there span {region} ({bytes} bytes), but the devices bind at most {max} bytes for one accessor \
         (maxStorageBufferRange, the least of every rank's devices); split the work into more tasks, let each chunk \
         access a smaller part of the buffer (a narrower range mapper than all()), use several smaller buffers, or \
         run on more ranks or devices"
    )
}

/// What the index of [`TaskErrorKind::KernelItemDimensions`](super::TaskErrorKind::KernelItemDimensions) reads
/// instead, and the fix.
fn item_dims_outcome(kernel_dims: u32, buffer_dims: u32, binding: &str) -> String {
    let names: &[&str] = match kernel_dims {
        1 => &["i"],
        2 => &["row", "col"],
        _ => &["x", "y", "z"],
    };
    if buffer_dims == 0 {
        // A 0D buffer's box is one cell at the origin: every other item indexes past it (naga clamps the index to
        // the allocation, so the run would go on with cells the kernel does not mean).
        return format!(
            "the buffer has one cell, and every item ({}) other than the origin indexes past it, so it would read or \
             store a cell the kernel does not mean; index its cell with `celer_index(pc.{binding}, vec3<u32>(0u, 0u, \
             0u))`, or bind a {kernel_dims}D buffer there",
            names.join(", ")
        );
    }
    let (n, d) = (names.len(), (buffer_dims as usize).clamp(1, 3));
    // celer_index reads an item as a cell of the buffer's extent: the coordinates past the buffer's last dimension
    // add to it, missing ones are 0.
    let cell: Vec<String> = if n > d {
        let mut c: Vec<String> = names[..d - 1].iter().map(|s| s.to_string()).collect();
        c.push(names[d - 1..].join(" + "));
        c
    } else {
        names.iter().map(|s| s.to_string()).chain(std::iter::repeat_n("0".to_string(), d - n)).collect()
    };
    let example = if n > d {
        "`celer_index(pc.b, vec3<u32>(item.y, 0u, 0u))` reads a 1D buffer at a 2D item's column"
    } else {
        "`celer_index(pc.b, vec3<u32>(item.x / cols, item.x % cols, 0u))` reads a 2D buffer of `cols` columns in \
         row-major order at a 1D item"
    };
    format!(
        "item ({}) reads cell ({}), not the cell the kernel means; bind a {kernel_dims}D buffer there, or build the \
         cell of the buffer's dimensionality from the item ({example})",
        names.join(", "),
        cell.join(", ")
    )
}

/// The end of the hint of [`TaskErrorKind::KernelDimensions`](super::TaskErrorKind::KernelDimensions): the prelude
/// call that makes a kernel work in `dims` dimensions, where there is one (none for a zero-dimensional index space:
/// submit a one-item 1D range instead).
fn other_item_call(dims: usize) -> String {
    match dims {
        1..=3 => format!(", or call celer_item_{dims}d in the kernel"),
        _ => " (a zero-dimensional index space is one item: submit the kernel over [1])".into(),
    }
}
