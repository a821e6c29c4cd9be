//! The seam between a task and its WGSL kernel: `submit` compares what the program binds (accessors, reductions,
//! scalars) with what the kernel declares (the tables `celer-kernel-build` reflected from its WGSL), binds by name
//! where the program named the bindings, and lays the scalars out as the kernel's parameter block (`var<immediate>` struct) wants them.
//!
//! Nothing here runs on the GPU or on the runtime thread: every mismatch is a [`TaskErrorKind`] before the task is
//! recorded. The checks, in order (the GUIDE's table lists their messages):
//! 1. the binding count (`KernelBindings`);
//! 2. names: all bindings named or none, each name declared once (`KernelNaming`, `UnknownKernelName`); named
//!    bindings are reordered by binding number, accessors before reductions;
//! 3. per binding: the buffer's element type against the binding's (its size, and the scalar type the element is
//!    made of unless it is a struct mixing types: `KernelElementType`), a read
//!    access where the entry point writes (`KernelWritesReadAccess`), a writing access or a reduction through a
//!    `var<storage, read>` binding (`KernelReadOnlyBinding`), a `discard_write` or a reduction on a binding the
//!    entry point never writes (`KernelNeverWrites`), a `discard_write` on a binding it may read before storing
//!    to it (a load or an atomic first: `KernelReadsDiscarded`);
//! 4. per reduction, the prelude block reductions the kernel stores into its binding: the same operation
//!    (`KernelReductionOp`) and the binding's type (`KernelReductionType`);
//! 5. the kernel's dimensionality (the `celer_item_Nd` it calls) against the task's (`KernelDimensions`), and
//!    against that of each buffer it indexes with its item (`celer_index(pc.<box>, item)`: `KernelItemDimensions`);
//! 6. the parameter block (`var<immediate>` struct, push constants or storage): the boxes first (`PushConstantLayout`), then every scalar member filled once with
//!    a value of its type (`MissingScalar`, `ExtraScalars`, `ScalarType`).
//!
//! One check reads the task's index space and buffers, so it runs for every task, a task of a cached shape too
//! ([`check_item_stores`]): the index space against the buffers the kernel stores to or loads from at its item on
//! every item (`KernelStoresOutside`, `KernelReadsOutside`).

use celer_scheduler::exec::shaders::{
    BindingDesc, BlockReductionDesc, EntryPointDesc, KernelSource, PushMemberDesc, ScalarType, StorageAccess,
};
use celer_scheduler::graph::{
    AccessMode, BufferId, RangeMapper, ReductionOp, ReductionSpec, Region, ResourceIdent, TaskErrorKind, TaskSpec,
};
use celer_scheduler::runtime::{CustomReduction, ScalarKind};

use smallvec::SmallVec;

use crate::queue::{Element, ScalarValue};

/// Bytes of a `CelerBox` in the push constants (six `u32`).
const BOX_BYTES: u32 = 24;

/// What the builder knows of one accessor or reduction beyond the task graph's view: the buffer's element type and
/// the binding name the program gave it.
#[derive(Clone, Debug)]
pub(crate) struct BindMeta {
    name: Option<String>,
    element: ScalarType,
    element_size: u32,
    /// The buffer's dimensionality (1 to 3).
    dims: u8,
}

impl BindMeta {
    /// The record of a `dims`-dimensional buffer of `T`, named `name` (`.bind(name)`) or not.
    pub(crate) fn of<T: Element>(name: Option<String>, dims: usize) -> Self {
        Self { name, element: T::SCALAR, element_size: std::mem::size_of::<T>() as u32, dims: dims as u8 }
    }

    /// Whether the program named the binding (`.bind(name)`).
    pub(crate) fn is_named(&self) -> bool {
        self.name.is_some()
    }

    /// The buffer's element type and size, which the check compares with the binding's.
    pub(crate) fn element(&self) -> (ScalarType, u32) {
        (self.element, self.element_size)
    }

    /// [`element`](Self::element) and the buffer's dimensionality,
    /// which it compares with the kernel's where the kernel indexes the binding with its item.
    pub(crate) fn shape(&self) -> (ScalarType, u32, u8) {
        (self.element, self.element_size, self.dims)
    }
}

/// Per accessor (or reduction), in declaration order: its element and binding name (most tasks have at most four).
pub(crate) type BindMetas = smallvec::SmallVec<[BindMeta; 4]>;

/// A task's scalar arguments, in declaration order.
pub(crate) type ScalarArgs = smallvec::SmallVec<[ScalarArg; 4]>;

/// One scalar argument: its name if given by name, its component type and count (a `vecN` value has `N`), and the
/// bits of its components.
#[derive(Clone, Debug)]
pub(crate) struct ScalarArg {
    name: Option<String>,
    ty: ScalarType,
    components: u8,
    words: [u32; 4],
}

impl ScalarArg {
    /// A value given by position.
    pub(crate) fn positional<S: ScalarValue>(value: S) -> Self {
        Self { name: None, ty: S::TYPE, components: S::COMPONENTS, words: value.to_words() }
    }

    /// A value given by name.
    pub(crate) fn named<S: ScalarValue>(name: &str, value: S) -> Self {
        Self { name: Some(name.to_owned()), ty: S::TYPE, components: S::COMPONENTS, words: value.to_words() }
    }

    /// Whether the value was given by name (`.scalar(name, value)`).
    pub(crate) fn is_named(&self) -> bool {
        self.name.is_some()
    }

    /// Its component type and count, which the check compares with the member's.
    pub(crate) fn shape(&self) -> (ScalarType, u8) {
        (self.ty, self.components)
    }

    /// The bits of its components, as pushed.
    fn words(&self) -> &[u32] {
        &self.words[..self.components as usize]
    }

    /// Which value it is as the error messages name it: `scalar "alpha"` by name, else `positional scalar 1` (`k`,
    /// its index among the task's values).
    fn which(&self, k: usize) -> String {
        match &self.name {
            Some(name) => format!("scalar \"{name}\""),
            None => format!("positional scalar {k}"),
        }
    }

    /// Its value as the error messages show it: `0.2`, `-3`, `[0.5, 0.25]`.
    fn shown(&self) -> String {
        let one = |w: u32| match self.ty {
            ScalarType::F32 => format!("{:?}", f32::from_bits(w)),
            ScalarType::I32 => (w as i32).to_string(),
            ScalarType::U32 => w.to_string(),
            _ => format!("{w:#010x}"),
        };
        match self.words() {
            [w] => one(*w),
            words => format!("[{}]", words.iter().map(|&w| one(w)).collect::<Vec<_>>().join(", ")),
        }
    }

    /// Its type as the error messages name it: `an f32`, `a [f32; 2] (vec2<f32>)`.
    fn described(&self) -> String {
        match self.components {
            1 => format!("{} {}", article(self.ty.name()), self.ty),
            n => format!("a [{}; {n}] (vec{n}<{}>)", self.ty, self.ty),
        }
    }
}

/// The parts of a kernel task that binding by name reorders together.
pub(crate) struct KernelTask<'a> {
    pub(crate) spec: &'a mut TaskSpec,
    pub(crate) accessors: BindMetas,
    pub(crate) reductions: BindMetas,
    pub(crate) reduction_kinds: Vec<ScalarKind>,
    pub(crate) custom_reductions: Vec<Option<CustomReduction>>,
}

/// `a` or `an` before a type name.
fn article(ty: &str) -> &'static str {
    if ty.starts_with(['a', 'e', 'i', 'o', 'f']) {
        "an"
    } else {
        "a"
    }
}

/// Where a task's scalar values go among the parameter words after the boxes, as [`check_kernel`] derived it
/// from the kernel's `var<immediate>` struct: the same for every task of the same kernel and scalar types, whatever
/// the values (`intern` keeps it to lay out the values of later tasks of a checked shape).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PushLayout {
    /// Words after the boxes, padding included (zero).
    words: usize,
    /// Per scalar value, in the order the task gave them: the word it fills (a vector value, its first word: its
    /// components fill the words from there on).
    slots: SmallVec<[u32; 8]>,
}

impl PushLayout {
    /// The words to push after the boxes for `scalars` (the values of a task whose check gave this layout, or of
    /// a task of the same shape: as many values, of the same types and names, in the same order).
    pub(crate) fn fill(&self, scalars: &[ScalarArg]) -> SmallVec<[u32; 8]> {
        debug_assert_eq!(scalars.len(), self.slots.len(), "a layout serves tasks of its own scalar count");
        let mut words = SmallVec::from_elem(0u32, self.words);
        for (&slot, v) in self.slots.iter().zip(scalars) {
            let slot = slot as usize;
            words[slot..slot + v.words().len()].copy_from_slice(v.words());
        }
        words
    }

    /// Whether `words` ([`fill`](Self::fill)'s result for some values) holds `scalars` already.
    pub(crate) fn holds(&self, words: &[u32], scalars: &[ScalarArg]) -> bool {
        self.slots.len() == scalars.len()
            && self
                .slots
                .iter()
                .zip(scalars)
                .all(|(&s, v)| words.get(s as usize..).is_some_and(|w| w.starts_with(v.words())))
    }
}

/// Checks a kernel task against its kernel's reflection (reordering named bindings into binding order), and returns
/// where its scalar values go among the words pushed after the boxes.
pub(crate) fn check_kernel(
    source: &'static KernelSource,
    entry: &'static str,
    task: &mut KernelTask<'_>,
    scalars: &[ScalarArg],
    buffer: impl Fn(BufferId) -> ResourceIdent,
) -> Result<PushLayout, Box<TaskErrorKind>> {
    // Formatted only for an error: submit is on the program's hot path.
    let kernel = &|| format!("{}::{entry}", source.name());
    let ep = source.entry_point(entry).expect("Kernel::wgsl checked the entry point");
    if ep.raw_ids {
        return Err(Box::new(TaskErrorKind::KernelRawIds { kernel: kernel(), file: source.name().to_string() }));
    }
    let (accessors, reductions) = (task.spec.accesses.len(), task.spec.reductions.len());
    let given = accessors + reductions;
    if source.group0_bindings() as usize != given {
        return Err(Box::new(TaskErrorKind::KernelBindings {
            kernel: kernel(),
            declared: source.group0_bindings(),
            given,
            accessors,
            reductions,
        }));
    }
    bind_by_name(source, kernel, task)?;
    let bindings = source.bindings();
    // (buffer, mode, whether the task writes it, whether cells the kernel does not store end up undefined)
    let access_modes = task
        .spec
        .accesses
        .iter()
        .map(|a| (a.buffer, a.mode.name(), a.mode.produces(), a.mode == AccessMode::DiscardWrite));
    let reduction_modes = task.spec.reductions.iter().map(|r| (r.buffer, "reduction", true, true));
    let metas = task.accessors.iter().chain(&task.reductions);
    for (i, (((id, mode, writes, discards), meta), desc)) in
        access_modes.chain(reduction_modes).zip(metas).zip(bindings).enumerate()
    {
        // Formatted only for an error: the checks of a valid task allocate nothing.
        let role =
            || if i < accessors { format!("accessor {i}, {mode}") } else { format!("reduction {}", i - accessors) };
        // A binding takes elements of its size whose scalar type is the one its element is made of (a scalar's, a
        // vector's components', a struct's fields' where they share one); a struct mixing types, of its size only.
        let element_fits = desc.component.is_none_or(|t| t == meta.element) && desc.element_size == meta.element_size;
        if !element_fits {
            return Err(Box::new(TaskErrorKind::KernelElementType {
                kernel: kernel(),
                binding: desc.name.into(),
                number: desc.binding,
                wgsl: desc.element.into(),
                // A vector's or struct's size in an array is not the sum of its parts (a vec3<f32> takes 16).
                size: if desc.scalar.is_none() && desc.element_size != meta.element_size {
                    format!(" ({} bytes each in the array, padding included)", desc.element_size)
                } else {
                    String::new()
                },
                buffer: buffer(id),
                // An element of another size than its scalar (a struct of four f32) is named by its size too.
                element: if meta.element_size == meta.element.size() {
                    meta.element.name().to_string()
                } else {
                    format!("{}-byte elements (of {})", meta.element_size, meta.element.name())
                },
                role: role(),
            }));
        }
        if !writes && ep.writes.contains(&desc.binding) {
            return Err(Box::new(TaskErrorKind::KernelWritesReadAccess {
                kernel: kernel(),
                binding: desc.name.into(),
                number: desc.binding,
                buffer: buffer(id),
            }));
        }
        if writes && desc.access == StorageAccess::Read {
            return Err(Box::new(TaskErrorKind::KernelReadOnlyBinding {
                kernel: kernel(),
                binding: desc.name.into(),
                number: desc.binding,
                buffer: buffer(id),
                mode,
            }));
        }
        if discards && !ep.writes.contains(&desc.binding) {
            return Err(Box::new(TaskErrorKind::KernelNeverWrites {
                kernel: kernel(),
                binding: desc.name.into(),
                number: desc.binding,
                buffer: buffer(id),
                mode,
                outcome: if i < accessors {
                    "the cells it maps would hold whatever the allocation held (they change with the number of ranks \
                     and devices)"
                } else {
                    "the reduction would give its identity whatever the data"
                },
                hint: if i < accessors {
                    "give the access read or write (which keep the old contents)"
                } else {
                    "reduce into a binding the kernel writes"
                },
            }));
        }
    }
    // A kernel that may read a binding's old contents (it loads before it stores) cannot have them discarded: it
    // would read whatever the allocation held. A `write` keeps them (moved like read_write's), so it may.
    for (a, desc) in task.spec.accesses.iter().zip(bindings) {
        if a.mode == AccessMode::DiscardWrite && ep.reads_old.contains(&desc.binding) {
            return Err(Box::new(TaskErrorKind::KernelReadsDiscarded {
                kernel: kernel(),
                binding: desc.name.into(),
                number: desc.binding,
                buffer: buffer(a.buffer),
            }));
        }
    }
    check_block_reductions(kernel, ep, task, bindings, &buffer)?;
    check_atomic_reductions(kernel, ep, task, bindings, &buffer)?;
    check_atomic_combines(kernel, ep, task, bindings, &buffer)?;
    if let Some(dims) = ep.dims {
        if dims as usize != task.spec.dims {
            return Err(Box::new(TaskErrorKind::KernelDimensions {
                kernel: kernel(),
                kernel_dims: dims,
                task_dims: task.spec.dims,
                range: task.spec.range,
            }));
        }
        // A binding indexed with the item itself takes a buffer of the item's dimensionality.
        let metas = task.accessors.iter().chain(&task.reductions);
        let ids = task.spec.accesses.iter().map(|a| a.buffer).chain(task.spec.reductions.iter().map(|r| r.buffer));
        for ((meta, id), desc) in metas.zip(ids).zip(bindings) {
            if u32::from(meta.dims) != dims && ep.item_indexed.contains(&desc.binding) {
                return Err(Box::new(TaskErrorKind::KernelItemDimensions {
                    kernel: kernel(),
                    binding: desc.name.into(),
                    number: desc.binding,
                    kernel_dims: dims,
                    buffer: buffer(id),
                    buffer_dims: meta.dims.into(),
                }));
            }
        }
    }
    push_layout(kernel, ep.push_constants, ep.push_constant_bytes, 1 + given, scalars)
}

/// The task's built-in reductions (`Sum`, `Min`, `Max`; not `reduce_with`'s), each with the binding it is bound to
/// (reductions follow the accessors) and its operation's name as the task wrote it and in lower case.
fn builtin_reductions<'a>(
    task: &'a KernelTask<'_>,
    bindings: &'a [BindingDesc],
) -> impl Iterator<Item = (&'a ReductionSpec, &'a BindingDesc, (&'static str, &'static str))> + 'a {
    let accessors = task.spec.accesses.len();
    task.spec
        .reductions
        .iter()
        .zip(&bindings[accessors.min(bindings.len())..])
        .filter_map(|(r, desc)| Some((r, desc, builtin_names(r.op)?)))
}

/// A built-in reduction's operation as the API spells it and as the prelude does (`("Sum", "sum")`); `None` for
/// `reduce_with`.
fn builtin_names(op: ReductionOp) -> Option<(&'static str, &'static str)> {
    match op {
        ReductionOp::Sum => Some(("Sum", "sum")),
        ReductionOp::Min => Some(("Min", "min")),
        ReductionOp::Max => Some(("Max", "max")),
        ReductionOp::Custom => None,
    }
}

/// The read-modify-write atomics (`"add"`, `"or"`, ...) entry point `ep` applies to `binding`, in the order the
/// build's reflection found them: an atomicLoad or atomicStore beside them does not combine.
fn rmw_atomics<'a>(ep: &'a EntryPointDesc, binding: u32) -> impl Iterator<Item = &'static str> + 'a {
    ep.atomics.iter().filter(move |(b, op)| *b == binding && !matches!(*op, "load" | "store")).map(|(_, op)| *op)
}

/// The WGSL name of atomic `op`: `"add"` → `atomicAdd`.
fn atomic_name(op: &str) -> String {
    format!("atomic{}{}", op[..1].to_uppercase(), &op[1..])
}

/// The task's reductions against the prelude block reductions (`celer_reduce_<op>_<type>`) whose results the kernel
/// stores into their bindings, as the build's reflection traced them: the same operation (one of the calls stored
/// there has the task's), and the binding's scalar type (every call's). Custom reductions (`reduce_with`) and calls
/// the build could not tie to a binding are not checked.
fn check_block_reductions(
    kernel: &dyn Fn() -> String,
    ep: &EntryPointDesc,
    task: &KernelTask<'_>,
    bindings: &[BindingDesc],
    buffer: &impl Fn(BufferId) -> ResourceIdent,
) -> Result<(), Box<TaskErrorKind>> {
    if ep.block_reductions.is_empty() {
        return Ok(());
    }
    for (r, desc, (task_op, task_op_lower)) in builtin_reductions(task, bindings) {
        let stored = || ep.block_reductions.iter().filter(|c| c.binding == Some(desc.binding));
        let call = |c: &BlockReductionDesc| format!("celer_reduce_{}_{}", c.op, c.scalar.name());
        if let Some(first) = stored().next() {
            if !stored().any(|c| c.op == task_op_lower) {
                let calls: Vec<String> = stored().map(call).collect();
                let kernel_op = match first.op {
                    "sum" => "Sum",
                    "min" => "Min",
                    _ => "Max",
                };
                return Err(Box::new(TaskErrorKind::KernelReductionOp {
                    kernel: kernel(),
                    call: calls.join(" and "),
                    binding: desc.name.into(),
                    number: desc.binding,
                    buffer: buffer(r.buffer),
                    task_op,
                    task_op_lower,
                    kernel_op,
                }));
            }
        }
        if let Some(c) = stored().find(|c| desc.scalar.is_some_and(|s| s != c.scalar)) {
            return Err(Box::new(TaskErrorKind::KernelReductionType {
                kernel: kernel(),
                call: call(c),
                call_type: c.scalar.name(),
                op: c.op,
                binding: desc.name.into(),
                number: desc.binding,
                wgsl: desc.element.into(),
                buffer: buffer(r.buffer),
            }));
        }
    }
    Ok(())
}

/// Per `Sum`, `Min` or `Max` reduction, the atomics the kernel applies to its binding: where they are all
/// `atomicAdd`/`atomicSub`, all `atomicMin` or all `atomicMax` (one of the three, not the task's), the task's
/// operation is not the kernel's. Bindings with other atomics (a compare-exchange loop, `atomicOr`), with none (a
/// plain store) or with several of the three are not judged.
fn check_atomic_reductions(
    kernel: &dyn Fn() -> String,
    ep: &EntryPointDesc,
    task: &KernelTask<'_>,
    bindings: &[BindingDesc],
    buffer: &impl Fn(BufferId) -> ResourceIdent,
) -> Result<(), Box<TaskErrorKind>> {
    if ep.atomics.is_empty() {
        return Ok(());
    }
    for (r, desc, (task_op, _)) in builtin_reductions(task, bindings) {
        let ops: Vec<&str> = rmw_atomics(ep, desc.binding).collect();
        let class = |op: &str| match op {
            "add" | "sub" => Some("Sum"),
            "min" => Some("Min"),
            "max" => Some("Max"),
            _ => None,
        };
        let Some(Some(kernel_op)) = ops.first().map(|op| class(op)) else { continue };
        if ops.iter().all(|op| class(op) == Some(kernel_op)) && kernel_op != task_op {
            let atomics: Vec<String> = ops.iter().map(|op| atomic_name(op)).collect();
            return Err(Box::new(TaskErrorKind::KernelAtomicOp {
                kernel: kernel(),
                binding: desc.name.into(),
                number: desc.binding,
                atomics: atomics.join(" and "),
                buffer: buffer(r.buffer),
                task_op,
                kernel_op,
            }));
        }
    }
    Ok(())
}

/// The limits of the job's devices (`caps`, agreed at start-up; `None` in a dry run, which checks only what holds on
/// every device) against what a dispatch of entry point `entry` of `source` with `bindings` bindings (accessors and
/// reductions) and `scalars` scalar words needs: its parameter block within [`MAX_PARAMS_BYTES`] where it reads it
/// from storage, its storage buffers (the bindings, a checked variant's bounds record, which any dispatch may need
/// when a chunk's mapper gives no cells, and the parameter buffer) within what a dispatch binds, its push constants
/// within the push-constant limit otherwise.
///
/// [`MAX_PARAMS_BYTES`]: celer_scheduler::exec::gpu::MAX_PARAMS_BYTES
pub(crate) fn check_device_limits(
    source: &KernelSource,
    entry: &str,
    bindings: usize,
    scalars: usize,
    caps: Option<celer_scheduler::startup::Capabilities>,
) -> Result<(), Box<TaskErrorKind>> {
    let kernel = || format!("{}::{entry}", source.name());
    let pushed = celer_scheduler::exec::gpu::push_constant_bytes(bindings, scalars);
    let declared = source.entry_point(entry).map_or(0, |ep| ep.push_constant_bytes as usize);
    let bytes = pushed.max(declared);
    let sum = || format!("4 × (6 words of the chunk + 6 per binding × {bindings} bindings + {scalars} scalar words)");
    let in_storage = source.params_binding().is_some();
    let params_limit = celer_scheduler::exec::gpu::MAX_PARAMS_BYTES;
    if in_storage && bytes > params_limit {
        return Err(Box::new(TaskErrorKind::ParamsTooLarge {
            kernel: kernel(),
            bytes,
            detail: sum(),
            limit: params_limit,
        }));
    }
    let Some(caps) = caps else { return Ok(()) };
    let needed = bindings + 1 + usize::from(in_storage);
    if needed > caps.max_storage_buffers as usize {
        let params = if in_storage { ", its parameter buffer" } else { "" };
        return Err(Box::new(TaskErrorKind::TooManyBindings {
            kernel: kernel(),
            bindings,
            needed,
            detail: format!("{bindings} bindings, the bounds record of its checked variant{params}"),
            limit: caps.max_storage_buffers,
        }));
    }
    if !in_storage && bytes > caps.max_push_constant_bytes as usize {
        let detail = if declared > pushed { format!("its push-constant block declares {declared}") } else { sum() };
        return Err(Box::new(TaskErrorKind::PushConstantsTooLarge {
            kernel: kernel(),
            bytes,
            detail,
            limit: caps.max_push_constant_bytes,
        }));
    }
    Ok(())
}

/// The task's first `accessors` bindings (accessors bind first, in binding order) that entry point `entry` of `source`
/// touches only through atomic read-modify-writes: its `array<atomic<T>>` ones on which the kernel does no
/// `atomicLoad` or `atomicStore`, as the bits of [`TaskSpec::atomic_accesses`]. Items updating each other's cells
/// through them (a histogram's `atomicAdd`) do not race; a value loaded or stored there would depend on the order
/// of the items.
///
/// [`TaskSpec::atomic_accesses`]: celer_scheduler::graph::TaskSpec::atomic_accesses
pub(crate) fn atomic_accesses(source: &KernelSource, entry: &str, accessors: usize) -> u64 {
    let atomic = source
        .bindings()
        .iter()
        .filter(|b| (b.binding as usize) < accessors.min(64) && b.element.starts_with("atomic<"))
        .fold(0u64, |mask, b| mask | 1 << b.binding);
    // Most kernels bind no atomics: they cost `submit` no look-up of the entry point.
    if atomic == 0 {
        return 0;
    }
    let Some(ep) = source.entry_point(entry) else { return 0 };
    ep.atomics.iter().filter(|(_, op)| matches!(*op, "load" | "store")).fold(atomic, |mask, (b, _)| {
        if *b < 64 {
            mask & !(1 << b)
        } else {
            mask
        }
    })
}

/// The index space of kernel task `spec` (its accesses in binding order) against the buffers bound where entry
/// point `ep` of `source` stores or loads at its own item on every item (`EntryPointDesc::stores_every_item`,
/// `loads_every_item`): an index space reaching outside such a buffer's extent (`shape` gives it) would have its
/// items there store to (or read) cells the buffer does not have. Run for every kernel task with such a binding
/// bound through another mapper than `one_to_one` (a task of a cached shape too, which may come with another index
/// space or other buffers; the task graph refuses a one-to-one mapper reaching outside, naming it): one look-up of
/// the buffer's extent per such binding. A task of another dimensionality than the kernel's, or binding a buffer of
/// another there, was refused before (`KernelDimensions`, `KernelItemDimensions`).
pub(crate) fn check_item_stores(
    source: &KernelSource,
    ep: &EntryPointDesc,
    spec: &TaskSpec,
    shape: impl Fn(BufferId) -> Option<celer_scheduler::graph::BufferExtent>,
    buffer: impl Fn(BufferId) -> ResourceIdent,
) -> Result<(), Box<TaskErrorKind>> {
    if spec.range.is_empty() || ep.dims.is_some_and(|d| d as usize != spec.dims) {
        return Ok(());
    }
    let stores = ep.stores_every_item.iter().map(|&b| (b, false));
    for (b, load) in stores.chain(ep.loads_every_item.iter().map(|&b| (b, true))) {
        let Some(access) = spec.accesses.get(b as usize).filter(|a| !matches!(a.mapper, RangeMapper::OneToOne)) else {
            continue;
        };
        let Some(extent) = shape(access.buffer).filter(|e| !e.bounds().contains(&spec.range)) else { continue };
        let desc = source.bindings().iter().find(|d| d.binding == b);
        let (kernel, binding) = (
            format!("{}::{}", source.name(), ep.name),
            desc.map_or_else(|| format!("binding {b}"), |d| d.name.to_string()),
        );
        let (buffer, range) = (buffer(access.buffer), spec.range);
        let outside = Region::from(spec.range).difference(&Region::from(extent.bounds()));
        return Err(Box::new(if load {
            TaskErrorKind::KernelReadsOutside { kernel, binding, number: b, buffer, range, extent, outside }
        } else {
            TaskErrorKind::KernelStoresOutside { kernel, binding, number: b, buffer, range, extent, outside }
        }));
    }
    Ok(())
}

/// The reductions of kernel task `spec` (in binding order, after its accessors) against the bindings entry point
/// `ep` of `source` stores to at one fixed cell with a plain store on every item
/// (`EntryPointDesc::stores_one_cell_every_item`): over more than one item, the items of such a reduction race,
/// each overwriting what the others stored (`out[0] += v` without an atomic), and the result keeps a few items'
/// values. Run for every kernel task whose entry point has such a binding (a task of a cached shape too, whose
/// index space may be another's).
pub(crate) fn check_reduction_races(
    source: &KernelSource,
    ep: &EntryPointDesc,
    spec: &TaskSpec,
    buffer: impl Fn(BufferId) -> ResourceIdent,
) -> Result<(), Box<TaskErrorKind>> {
    if spec.range.area() <= 1 {
        return Ok(());
    }
    let accessors = spec.accesses.len();
    for (j, reduction) in spec.reductions.iter().enumerate() {
        let b = (accessors + j) as u32;
        if !ep.stores_one_cell_every_item.contains(&b) {
            continue;
        }
        let desc = source.bindings().iter().find(|d| d.binding == b);
        return Err(Box::new(TaskErrorKind::KernelReductionRace {
            kernel: format!("{}::{}", source.name(), ep.name),
            binding: desc.map_or_else(|| format!("binding {b}"), |d| d.name.to_string()),
            number: b,
            buffer: buffer(reduction.buffer),
            range: spec.range,
        }));
    }
    Ok(())
}

/// The task's reductions against the atomic read-modify-writes the kernel combines its items into their bindings
/// with, where every one of a binding's is of one kind (`atomicAdd`/`atomicSub`, `atomicMin`, `atomicMax`,
/// `atomicAnd`, `atomicOr`, `atomicXor`): the partial results of the chunks (one per rank and device) are combined by
/// the task's operation, so one that disagrees with the kernel's gives a result that changes with the number of
/// ranks and devices. A built-in `Sum`, `Min` or `Max` over bitwise atomics is refused (their mismatch among
/// themselves is [`check_atomic_reductions`]'s); a `reduce_with` closure is probed on a few small values against
/// the atomic's result. Reductions of other element types than `i32` and `u32` (no WGSL atomics) are not looked at.
fn check_atomic_combines(
    kernel: &dyn Fn() -> String,
    ep: &EntryPointDesc,
    task: &KernelTask<'_>,
    bindings: &[BindingDesc],
    buffer: &impl Fn(BufferId) -> ResourceIdent,
) -> Result<(), Box<TaskErrorKind>> {
    if ep.atomics.is_empty() {
        return Ok(());
    }
    let accessors = task.spec.accesses.len();
    for (j, (r, desc)) in task.spec.reductions.iter().zip(&bindings[accessors.min(bindings.len())..]).enumerate() {
        let ops: Vec<&str> = rmw_atomics(ep, desc.binding).map(|op| if op == "sub" { "add" } else { op }).collect();
        let Some(&op) = ops.first() else { continue };
        if !ops.iter().all(|o| *o == op) || !matches!(op, "add" | "min" | "max" | "and" | "or" | "xor") {
            continue;
        }
        let signed = match task.reduction_kinds.get(j) {
            Some(ScalarKind::I32) => true,
            Some(ScalarKind::U32) => false,
            _ => continue,
        };
        let atomic = |a: u32, b: u32| -> u32 {
            match op {
                "add" => a.wrapping_add(b),
                "and" => a & b,
                "or" => a | b,
                "xor" => a ^ b,
                "min" if signed => (a as i32).min(b as i32) as u32,
                "max" if signed => (a as i32).max(b as i32) as u32,
                "min" => a.min(b),
                _ => a.max(b),
            }
        };
        let name = atomic_name(op);
        let closure = |bits: &str| match bits {
            "and" => "|a, b| a & b",
            "or" => "|a, b| a | b",
            "xor" => "|a, b| a ^ b",
            "add" => "|a, b| a.wrapping_add(b)",
            "min" => "|a, b| a.min(b)",
            _ => "|a, b| a.max(b)",
        };
        // Pairs on which the six operations all differ; none below 8 but the 0, which the identity check probes.
        const PROBES: [(u32, u32); 3] = [(12, 10), (24, 17), (0, 9)];
        let (how, example, hint) = match (builtin_names(r.op), task.custom_reductions.get(j).and_then(Option::as_ref)) {
            (Some((task_op, _)), _) if matches!(op, "and" | "or" | "xor") => {
                let (a, b) = PROBES[0];
                let theirs = match r.op {
                    ReductionOp::Sum => a + b,
                    ReductionOp::Min => a.min(b),
                    _ => a.max(b),
                };
                let identity = if op == "and" { "!0" } else { "0" };
                (
                    format!("with ReductionOp::{task_op}"),
                    format!("{task_op}({a}, {b}) = {theirs}, where {name}({a}, {b}) gives {}", atomic(a, b)),
                    format!("reduce with .reduce_with(&buffer, {identity}, {})", closure(op)),
                )
            }
            // A closure that panicked on submit's own probes was reported there (and panics at run time).
            (None, Some(custom)) if custom.probed != "panics" => {
                let word = |v: u32| v.to_ne_bytes().to_vec();
                let read = |v: &[u8]| v.try_into().ok().map(u32::from_ne_bytes);
                let differs = PROBES.iter().find_map(|&(a, b)| {
                    let got =
                        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (custom.combine)(&word(a), &word(b))));
                    let got = read(&got.ok()?)?;
                    (got != atomic(a, b)).then_some((a, b, got))
                });
                let Some((a, b, got)) = differs else { continue };
                let show = |v: u32| if signed { (v as i32).to_string() } else { v.to_string() };
                (
                    "with its reduce_with closure".to_string(),
                    format!(
                        "combine({}, {}) = {}, where {name} gives {}",
                        show(a),
                        show(b),
                        show(got),
                        show(atomic(a, b))
                    ),
                    format!(
                        "make the closure compute what the kernel's atomics do ({}), or change the kernel's atomics",
                        closure(op)
                    ),
                )
            }
            _ => continue,
        };
        return Err(Box::new(TaskErrorKind::KernelAtomicCombine {
            kernel: kernel(),
            binding: desc.name.into(),
            number: desc.binding,
            atomics: name,
            buffer: buffer(r.buffer),
            how,
            example,
            hint,
        }));
    }
    Ok(())
}

/// The bindings entry point `ep` of `source` indexes with another binding's box
/// (`EntryPointDesc::cross_indexed`) against the buffers kernel task `spec` binds there (its accesses, then its
/// reductions, in binding order): two different buffers have allocations of different boxes on a node, so the index
/// picks other cells than the kernel means. One buffer bound at both (a kernel's two accessors of one buffer share
/// its allocation) is accepted. Run for every kernel task whose entry point has such a pair (a task of a cached
/// shape too, which may bind other buffers).
pub(crate) fn check_cross_indexed(
    source: &KernelSource,
    ep: &EntryPointDesc,
    spec: &TaskSpec,
    buffer: impl Fn(BufferId) -> ResourceIdent,
) -> Result<(), Box<TaskErrorKind>> {
    let bound = |b: u32| {
        let b = b as usize;
        spec.accesses
            .get(b)
            .map(|a| a.buffer)
            .or_else(|| spec.reductions.get(b - spec.accesses.len()).map(|r| r.buffer))
    };
    let name = |b: u32| {
        source.bindings().iter().find(|d| d.binding == b).map_or_else(|| format!("binding {b}"), |d| d.name.to_string())
    };
    for &(b, c) in ep.cross_indexed {
        let (Some(indexed), Some(boxed)) = (bound(b), bound(c)) else { continue };
        if indexed == boxed {
            continue;
        }
        return Err(Box::new(TaskErrorKind::KernelCrossIndexed {
            kernel: format!("{}::{}", source.name(), ep.name),
            binding: name(b),
            number: b,
            buffer: buffer(indexed),
            box_of: name(c),
            box_number: c,
            box_buffer: buffer(boxed),
        }));
    }
    Ok(())
}

/// The bindings entry point `ep` of `source` indexes with its item's coordinates or its invocation id, without
/// `celer_index` (`EntryPointDesc::global_indexed`), against the mappers kernel task `spec` binds buffers there
/// through: a node's allocation of a buffer starts at the origin only where the node touches all of it, which
/// `all()` ensures, so any other mapper is refused. Run for every kernel task whose entry point has such a binding
/// (a task of a cached shape too, which may come with other mappers).
pub(crate) fn check_global_indexed(
    source: &KernelSource,
    ep: &EntryPointDesc,
    spec: &TaskSpec,
    buffer: impl Fn(BufferId) -> ResourceIdent,
) -> Result<(), Box<TaskErrorKind>> {
    if spec.range.is_empty() {
        return Ok(());
    }
    for &b in ep.global_indexed {
        let Some(access) = spec.accesses.get(b as usize) else { continue };
        if matches!(access.mapper, RangeMapper::All) {
            continue;
        }
        let name = source
            .bindings()
            .iter()
            .find(|d| d.binding == b)
            .map_or_else(|| format!("binding {b}"), |d| d.name.to_string());
        return Err(Box::new(TaskErrorKind::KernelGlobalIndex {
            kernel: format!("{}::{}", source.name(), ep.name),
            binding: name,
            number: b,
            buffer: buffer(access.buffer),
            access: format!("{} {}", access.mode.name(), access.mapper.name()),
        }));
    }
    Ok(())
}

/// The constant offsets from its item at which entry point `ep` of `source` indexes each binding's box
/// (`EntryPointDesc::item_offsets`) against the range mappers kernel task `spec` declares there: `one_to_one`
/// declares the item alone, a neighbourhood of extent `e` the offsets within `e` along each dimension (along the
/// axes: one dimension at a time), a slice along `d` any offset along `d` alone. Other mappers (`all`, a fixed box,
/// a transpose, an even split, a custom mapper) are not judged. Run for every kernel task whose entry point has
/// such offsets (a task of a cached shape too, which may come with other mappers).
pub(crate) fn check_item_offsets(
    source: &KernelSource,
    ep: &EntryPointDesc,
    spec: &TaskSpec,
    buffer: impl Fn(BufferId) -> ResourceIdent,
) -> Result<(), Box<TaskErrorKind>> {
    use celer_scheduler::graph::NeighborhoodShape;
    if spec.range.is_empty() {
        return Ok(());
    }
    let dims = spec.dims.clamp(1, 3);
    for &(b, offsets) in ep.item_offsets {
        let Some(access) = spec.accesses.get(b as usize) else { continue };
        // Plain loops over the few dimensions: this runs for every offset of every such task (submit's hot path).
        let declared = |o: &[i64; 3]| match &access.mapper {
            RangeMapper::OneToOne => o[..dims].iter().all(|&c| c == 0),
            RangeMapper::Neighborhood { extent, shape } => {
                let mut along = 0;
                for d in 0..dims {
                    if o[d] != 0 {
                        if o[d].unsigned_abs() > extent[d] as u64 {
                            return false;
                        }
                        along += 1;
                    }
                }
                *shape == NeighborhoodShape::BoundingBox || along <= 1
            }
            RangeMapper::Slice(s) => (0..dims).all(|d| d == *s || o[d] == 0),
            _ => true,
        };
        let Some(first) = offsets.iter().find(|o| !declared(o)) else { continue };
        let show = |o: &[i64; 3]| format!("[{}]", (0..dims).map(|d| o[d].to_string()).collect::<Vec<_>>().join(", "));
        // The extent that declares every offset, along the axes where none is diagonal.
        let reach: Vec<u64> =
            (0..dims).map(|d| offsets.iter().map(|o| o[d].unsigned_abs()).max().unwrap_or(0)).collect();
        let axes = offsets.iter().all(|o| (0..dims).filter(|&d| o[d] != 0).count() <= 1);
        let list = reach.iter().map(u64::to_string).collect::<Vec<_>>().join(", ");
        let name = source
            .bindings()
            .iter()
            .find(|d| d.binding == b)
            .map_or_else(|| format!("binding {b}"), |d| d.name.to_string());
        return Err(Box::new(TaskErrorKind::KernelOffsetUndeclared {
            kernel: format!("{}::{}", source.name(), ep.name),
            binding: name,
            number: b,
            buffer: buffer(access.buffer),
            access: format!("{} {}", access.mode.name(), access.mapper.name()),
            offset: show(first),
            hint: format!(
                "access::{}([{list}])",
                if axes && dims > 1 { "neighborhood_along_axes" } else { "neighborhood" }
            ),
        }));
    }
    Ok(())
}

/// Where every accessor and reduction was named: checks the names and reorders the task's bindings by the kernel's
/// binding numbers (accessors, then reductions, as the runtime binds them).
fn bind_by_name(
    source: &KernelSource,
    kernel: &dyn Fn() -> String,
    task: &mut KernelTask<'_>,
) -> Result<(), Box<TaskErrorKind>> {
    let named = task.accessors.iter().chain(&task.reductions).filter(|m| m.name.is_some()).count();
    let total = task.accessors.len() + task.reductions.len();
    if named == 0 {
        return Ok(());
    }
    if named < total {
        return Err(Box::new(TaskErrorKind::KernelNaming {
            kernel: kernel(),
            problem: format!("the task names {named} of its {total} bindings"),
            hint: "name all of them with .bind(name) or none (then they bind in the order written)",
        }));
    }
    let known = || source.bindings().iter().map(|b| b.name).collect::<Vec<_>>().join(", ");
    let mut numbers = Vec::with_capacity(total);
    for meta in task.accessors.iter().chain(&task.reductions) {
        let name = meta.name.as_deref().expect("all named");
        let desc = source.bindings().iter().find(|b| b.name == name).ok_or_else(|| {
            TaskErrorKind::UnknownKernelName { kernel: kernel(), what: "binding", name: name.into(), known: known() }
        })?;
        if numbers.contains(&desc.binding) {
            return Err(Box::new(TaskErrorKind::KernelNaming {
                kernel: kernel(),
                problem: format!("binding `{name}` is given twice"),
                hint: "bind each of the kernel's bindings once",
            }));
        }
        numbers.push(desc.binding);
    }
    let accessors = task.accessors.len();
    if let Some(i) = (accessors..total).find(|&i| (numbers[i] as usize) < accessors) {
        return Err(Box::new(TaskErrorKind::KernelNaming {
            kernel: kernel(),
            problem: format!(
                "the reduction is bound to `{}` (@binding({})), before the {accessors} accessor binding(s)",
                task.reductions[i - accessors].name.as_deref().unwrap_or_default(),
                numbers[i]
            ),
            hint: "reduction buffers bind after the accessors: declare them with the highest binding numbers",
        }));
    }
    // Accessors take bindings 0..accessors and reductions the rest: sort each group by its numbers.
    let mut order: Vec<usize> = (0..accessors).collect();
    order.sort_by_key(|&i| numbers[i]);
    let old = task.spec.accesses.clone();
    let accesses = std::sync::Arc::make_mut(&mut task.spec.accesses);
    for (slot, &i) in order.iter().enumerate() {
        accesses[slot] = old[i].clone();
    }
    task.accessors = order.iter().map(|&i| task.accessors[i].clone()).collect();
    let mut order: Vec<usize> = (0..total - accessors).collect();
    order.sort_by_key(|&i| numbers[accessors + i]);
    task.spec.reductions = order.iter().map(|&i| task.spec.reductions[i].clone()).collect();
    task.reductions = order.iter().map(|&i| task.reductions[i].clone()).collect();
    task.reduction_kinds = order.iter().map(|&i| task.reduction_kinds[i]).collect();
    task.custom_reductions = order.iter().map(|&i| task.custom_reductions[i].clone()).collect();
    Ok(())
}

/// The values of `scalars` beyond the first `expected` words (a vector value counting one per component), as the
/// [`TaskErrorKind::ExtraScalars`] error names them: `positional scalar 1 (an f32: 0.2)`, or `scalar "beta" (…)` by
/// name; a vector value that only partly fits is named too, with the words it would have had to spill.
fn extra_scalars(scalars: &[ScalarArg], expected: usize) -> String {
    let mut used = 0;
    let mut extra = Vec::new();
    for (k, v) in scalars.iter().enumerate() {
        let end = used + v.components as usize;
        if end > expected {
            let partly =
                if used < expected { format!(", {} of its words beyond", end - expected) } else { String::new() };
            extra.push(format!("{} ({}: {}{partly})", v.which(k), v.described(), v.shown()));
        }
        used = end;
    }
    extra.join(", ")
}

/// `name: type` of a member.
fn member(m: &PushMemberDesc) -> String {
    format!("{}: {}", m.name, m.ty)
}

/// Checks the parameter block's (`var<immediate>` struct's) boxes and that `scalars` fill its scalar members, returning where each value
/// goes among the words after the boxes (`bytes` in all, padding zero).
///
/// Positional values fill the members after the boxes in order, a member of `size` bytes taking `size / 4` scalar
/// values of its component type (`vec2<u32>`: two `u32`) or one vector value of its type (`[u32; 2]`). A named
/// value fills the member of its name, which must be a scalar or vector of its type and component count (or a
/// 4-byte struct or array, for a scalar value); matrices and larger structs and arrays are given only by position.
fn push_layout(
    kernel: &dyn Fn() -> String,
    members: &[PushMemberDesc],
    bytes: u32,
    boxes: usize,
    scalars: &[ScalarArg],
) -> Result<PushLayout, Box<TaskErrorKind>> {
    if members.is_empty() {
        // The entry point reads no parameter block: it cannot take scalars.
        if !scalars.is_empty() {
            return Err(Box::new(TaskErrorKind::ExtraScalars {
                kernel: kernel(),
                given: scalars.iter().map(|v| v.components as usize).sum(),
                expected: 0,
                declared: "it declares no var<immediate> block".into(),
                extra: extra_scalars(scalars, 0),
            }));
        }
        return Ok(PushLayout { words: 0, slots: SmallVec::new() });
    }
    for k in 0..boxes {
        let expected = k as u32 * BOX_BYTES;
        let what = || if k == 0 { "the chunk".to_string() } else { format!("binding {}", k - 1) };
        match members.get(k) {
            Some(m) if m.ty == "CelerBox" && m.offset == expected => {}
            Some(m) => {
                return Err(Box::new(TaskErrorKind::PushConstantLayout {
                    kernel: kernel(),
                    detail: format!(
                        "member {k} is `{}` at offset {}, where the CelerBox of {} belongs (at offset {expected})",
                        member(m),
                        m.offset,
                        what()
                    ),
                }))
            }
            None => {
                return Err(Box::new(TaskErrorKind::PushConstantLayout {
                    kernel: kernel(),
                    detail: format!("it has {} member(s), but the task binds {} buffer(s)", members.len(), boxes - 1),
                }))
            }
        }
    }
    let base = boxes as u32 * BOX_BYTES;
    let own = &members[boxes..];
    let mut layout = PushLayout { words: (bytes.saturating_sub(base) / 4) as usize, slots: SmallVec::new() };
    let type_error = |m: &PushMemberDesc, v: &ScalarArg, which: String| {
        // A vector member names its vector type: one scalar value cannot fill it by name.
        let ty = match m.scalar {
            Some(s) if m.size == 4 => s.name().to_string(),
            _ => m.ty.to_string(),
        };
        TaskErrorKind::ScalarType {
            kernel: kernel(),
            member: m.name.into(),
            member_type: ty,
            given: v.described(),
            which,
            hint: wanted(m, v.is_named()),
        }
    };
    let named = scalars.iter().filter(|v| v.name.is_some()).count();
    if named > 0 && named < scalars.len() {
        return Err(Box::new(TaskErrorKind::KernelNaming {
            kernel: kernel(),
            problem: format!("the task names {named} of its {} scalar values", scalars.len()),
            hint: "give all scalars by name with .scalar(name, value), or all by position",
        }));
    }
    if named > 0 {
        let mut filled = vec![false; own.len()];
        for v in scalars {
            let name = v.name.as_deref().expect("all named");
            let Some(i) = own.iter().position(|m| m.name == name) else {
                return Err(Box::new(TaskErrorKind::UnknownKernelName {
                    kernel: kernel(),
                    what: "var<immediate> member",
                    name: name.into(),
                    known: own.iter().map(member).collect::<Vec<_>>().join(", "),
                }));
            };
            let m = &own[i];
            if filled[i] {
                return Err(Box::new(TaskErrorKind::KernelNaming {
                    kernel: kernel(),
                    problem: format!("scalar `{name}` is given twice"),
                    hint: "give each var<immediate> member once",
                }));
            }
            // The whole member, as one value: a scalar or vector of the value's type and component count (or,
            // for a 4-byte struct or array, any one 4-byte value).
            let fits = match MemberShape::of(m) {
                MemberShape::Value(s, n) => v.shape() == (s, n),
                MemberShape::Words => m.scalar.is_none() && m.size == 4 && v.components == 1,
            };
            if !fits {
                return Err(Box::new(type_error(m, v, format!("scalar \"{name}\""))));
            }
            filled[i] = true;
            layout.slots.push((m.offset - base) / 4);
        }
        if let Some(i) = filled.iter().position(|f| !f) {
            let m = &own[i];
            // A member that cannot be named gets the type error's hint for it.
            let hint = if MemberShape::of(m) == MemberShape::Words && m.size > 4 {
                wanted(m, true)
            } else {
                format!("give it with .scalar(\"{}\", value)", m.name)
            };
            return Err(Box::new(TaskErrorKind::MissingScalar {
                kernel: kernel(),
                member: member(m),
                name: m.name.into(),
                offset: m.offset,
                given: format!("{named} named scalar value(s)"),
                hint,
            }));
        }
        return Ok(layout);
    }
    // Positionally, values count one per component: a vec4 value fills as many words as four scalar values.
    let expected: usize = own.iter().map(|m| (m.size / 4) as usize).sum();
    let given: usize = scalars.iter().map(|v| v.components as usize).sum();
    if given > expected {
        let declared =
            if own.is_empty() { "none".into() } else { own.iter().map(member).collect::<Vec<_>>().join(", ") };
        let extra = extra_scalars(scalars, expected);
        return Err(Box::new(TaskErrorKind::ExtraScalars { kernel: kernel(), given, expected, declared, extra }));
    }
    let mut values = scalars.iter().enumerate();
    for m in own {
        let mut w = 0;
        while w < m.size / 4 {
            let Some((k, v)) = values.next() else {
                return Err(Box::new(TaskErrorKind::MissingScalar {
                    kernel: kernel(),
                    member: member(m),
                    name: m.name.into(),
                    offset: m.offset,
                    given: format!("{} positional scalar value(s)", scalars.len()),
                    hint:
                        "give it in its place after the others (.scalar_f32, .scalar_value, .scalars), or name every \
                           scalar with .scalar(name, value)"
                            .into(),
                }));
            };
            // A scalar value fills one word of a member of its component type (members of structs or arrays take
            // any 4-byte value); a vector value fills a whole vector member of its type and component count.
            let fits = match v.components {
                1 => m.scalar.is_none_or(|s| s == v.ty),
                n => w == 0 && MemberShape::of(m) == MemberShape::Value(v.ty, n),
            };
            if !fits {
                return Err(Box::new(type_error(m, v, format!("positional scalar {k}"))));
            }
            layout.slots.push((m.offset - base) / 4 + w);
            w += v.components as u32;
        }
    }
    Ok(layout)
}

/// What one value can fill of a `var<immediate>` member.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum MemberShape {
    /// A scalar (1) or a `vecN` (`N`) of this component type: one value of the same type and count fills it.
    Value(ScalarType, u8),
    /// A matrix, array or struct: filled only positionally, word by word.
    Words,
}

impl MemberShape {
    /// The shape of `m`, from the reflection's type name: `f32` or `vec3<f32>` (12 bytes) is a value, `mat2x2<f32>`
    /// or `array<u32, 4>` words.
    fn of(m: &PushMemberDesc) -> Self {
        match m.scalar {
            Some(s) if m.ty == s.name() => MemberShape::Value(s, 1),
            Some(s) if m.ty.starts_with("vec") && s.size() > 0 => MemberShape::Value(s, (m.size / s.size()) as u8),
            _ => MemberShape::Words,
        }
    }
}

/// What a task can give member `m` (`named`: by name), for a [`TaskErrorKind::ScalarType`] error's hint.
fn wanted(m: &PushMemberDesc, named: bool) -> String {
    let celer_gives = |s: ScalarType| matches!(s, ScalarType::F32 | ScalarType::I32 | ScalarType::U32);
    match MemberShape::of(m) {
        MemberShape::Value(s, _) if !celer_gives(s) => format!(
            "celer gives var<immediate> members only f32, i32 and u32 values and vectors of them, not {}: declare the \
             member as one of those",
            m.ty
        ),
        MemberShape::Value(s, 1) => format!("give it a value of type {s}"),
        MemberShape::Value(s, n) if named => format!("give it a [{s}; {n}] ({})", m.ty),
        MemberShape::Value(s, n) => format!("give it a [{s}; {n}] ({}), or {n} positional {s} values", m.ty),
        MemberShape::Words if named => format!(
            "a matrix, array or struct member cannot be given by name: give the task's scalars by position, one \
             4-byte value{} per word of the member ({} words, padding included)",
            m.scalar.map(|s| format!(" of type {s}")).unwrap_or_default(),
            m.size / 4
        ),
        MemberShape::Words => format!(
            "give it {} positional 4-byte values{}, one per word (padding included)",
            m.size / 4,
            m.scalar.map(|s| format!(" of type {s}")).unwrap_or_default()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const fn pm(
        name: &'static str,
        ty: &'static str,
        scalar: Option<ScalarType>,
        offset: u32,
        size: u32,
    ) -> PushMemberDesc {
        PushMemberDesc { name, ty, scalar, offset, size }
    }

    /// chunk, one box, then `a: u32` and a `v: vec2<f32>` that WGSL aligns to 8 (a padding word after `a`).
    const MEMBERS: [PushMemberDesc; 4] = [
        pm("chunk", "CelerBox", None, 0, 24),
        pm("data", "CelerBox", None, 24, 24),
        pm("a", "u32", Some(ScalarType::U32), 48, 4),
        pm("v", "vec2<f32>", Some(ScalarType::F32), 56, 8),
    ];

    fn words(scalars: &[ScalarArg]) -> Result<Vec<u32>, String> {
        push_layout(&|| "k::main".to_string(), &MEMBERS, 64, 2, scalars)
            .map(|layout| layout.fill(scalars).to_vec())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn scalars_land_on_their_members_offsets_with_padding_left_zero() {
        let positional = [ScalarArg::positional(7u32), ScalarArg::positional(1.5f32), ScalarArg::positional(2.5f32)];
        assert_eq!(words(&positional).unwrap(), vec![7, 0, 1.5f32.to_bits(), 2.5f32.to_bits()]);
        let e = words(&positional[..2]).unwrap_err();
        assert!(e.contains("member `v: vec2<f32>` (offset 56) gets no value"), "{e}");
        let e = words(&[ScalarArg::positional(7u32), ScalarArg::positional(1u32), ScalarArg::positional(2.5f32)])
            .unwrap_err();
        assert!(
            e.contains("member `v` is of type vec2<f32>, but the task gives it a u32 (positional scalar 1)"),
            "{e}"
        );
        assert!(e.contains("; give it a [f32; 2] (vec2<f32>), or 2 positional f32 values"), "{e}");
        assert_eq!(words(&[ScalarArg::named("a", 9u32)]).unwrap_err(), {
            "kernel k::main's var<immediate> member `v: vec2<f32>` (offset 56) gets no value: the task gives 1 named \
             scalar value(s); give it with .scalar(\"v\", value)"
        });
        let e = words(&[ScalarArg::named("a", 9u32), ScalarArg::named("v", 1.0f32)]).unwrap_err();
        assert!(e.contains("member `v` is of type vec2<f32>, but the task gives it an f32 (scalar \"v\")"), "{e}");
        assert!(e.ends_with("; give it a [f32; 2] (vec2<f32>)"), "{e}");
    }

    #[test]
    fn extra_scalar_values_are_named_by_position_type_and_value() {
        // The kernel takes 3 words (a, v): the fourth value and the vector after it are extra.
        let e = words(&[
            ScalarArg::positional(7u32),
            ScalarArg::positional(1.5f32),
            ScalarArg::positional(2.5f32),
            ScalarArg::positional(-4i32),
            ScalarArg::positional([0.5f32, 0.25]),
        ])
        .unwrap_err();
        assert_eq!(e, {
            "the task gives 6 scalar value(s), but kernel k::main takes 3 after its boxes (a: u32, v: vec2<f32>); \
             extra: positional scalar 3 (an i32: -4), positional scalar 4 (a [f32; 2] (vec2<f32>): [0.5, 0.25]); \
             remove the extra values or add members to the kernel's var<immediate> struct"
        });
        // A vector value that starts inside the members and ends beyond them.
        let e = words(&[ScalarArg::positional(7u32), ScalarArg::positional(1.5f32), ScalarArg::positional([1u32, 2])])
            .unwrap_err();
        assert!(
            e.contains("extra: positional scalar 2 (a [u32; 2] (vec2<u32>): [1, 2], 1 of its words beyond);"),
            "{e}"
        );
        // An entry point without a parameter block: every value is extra, named values by name.
        let none = push_layout(&|| "k::main".to_string(), &[], 0, 2, &[ScalarArg::named("alpha", 0.1f32)]);
        let e = none.unwrap_err().to_string();
        assert!(
            e.contains(
                "takes 0 after its boxes (it declares no var<immediate> block); extra: scalar \"alpha\" (an f32: 0.1);"
            ),
            "{e}"
        );
    }

    #[test]
    fn vector_values_fill_their_vector_member_by_name_or_by_position() {
        let want = vec![7, 0, 1.5f32.to_bits(), 2.5f32.to_bits()];
        let named = [ScalarArg::named("v", [1.5f32, 2.5]), ScalarArg::named("a", 7u32)];
        assert_eq!(words(&named).unwrap(), want);
        let positional = [ScalarArg::positional(7u32), ScalarArg::positional([1.5f32, 2.5])];
        assert_eq!(words(&positional).unwrap(), want);
        // A layout kept for a shape fills and recognises later values of that shape.
        let layout = push_layout(&|| "k::main".to_string(), &MEMBERS, 64, 2, &named).unwrap();
        let later = [ScalarArg::named("v", [3.0f32, 4.0]), ScalarArg::named("a", 8u32)];
        let filled = layout.fill(&later);
        assert_eq!(filled.to_vec(), vec![8, 0, 3.0f32.to_bits(), 4.0f32.to_bits()]);
        assert!(layout.holds(&filled, &later) && !layout.holds(&filled, &named));
    }

    #[test]
    fn vector_values_of_another_type_or_width_are_refused_naming_both_types() {
        let e = words(&[ScalarArg::named("a", 7u32), ScalarArg::named("v", [1i32, 2])]).unwrap_err();
        assert_eq!(e, {
            "kernel k::main's var<immediate> member `v` is of type vec2<f32>, but the task gives it a [i32; 2] \
             (vec2<i32>) (scalar \"v\"); give it a [f32; 2] (vec2<f32>)"
        });
        let e = words(&[ScalarArg::named("a", 7u32), ScalarArg::named("v", [1.0f32, 2.0, 3.0])]).unwrap_err();
        assert!(e.contains("is of type vec2<f32>, but the task gives it a [f32; 3] (vec3<f32>) (scalar \"v\")"), "{e}");
        let e = words(&[ScalarArg::named("a", [7u32, 8])]).unwrap_err();
        assert!(e.contains("member `a` is of type u32, but the task gives it a [u32; 2] (vec2<u32>)"), "{e}");
        assert!(e.ends_with("give it a value of type u32"), "{e}");
        // Positionally, a vector value must start its member: not the padding word, not half of `v`.
        let e = words(&[ScalarArg::positional([7u32, 8])]).unwrap_err();
        assert!(
            e.contains("member `a` is of type u32, but the task gives it a [u32; 2] (vec2<u32>) (positional scalar 0)")
        );
        let e =
            words(&[ScalarArg::positional(7u32), ScalarArg::positional(1.5f32), ScalarArg::positional([2.5f32, 3.5])])
                .unwrap_err();
        assert!(e.contains("the task gives 4 scalar value(s), but kernel k::main takes 3 after its boxes"), "{e}");
        let e = words(&[ScalarArg::positional(7u32), ScalarArg::positional([2.5f32, 3.5, 4.5])]).unwrap_err();
        assert!(e.contains("the task gives 4 scalar value(s)"), "{e}");
    }

    /// chunk, then `k: vec3<i32>` (12 bytes at 32: vec3 aligns to 16), `t: u32` in its last 4 bytes (44),
    /// `m: vec4<u32>` (48), and `w: mat2x2<f32>` (64), 80 bytes in all.
    const WIDE: [PushMemberDesc; 5] = [
        pm("chunk", "CelerBox", None, 0, 24),
        pm("k", "vec3<i32>", Some(ScalarType::I32), 32, 12),
        pm("t", "u32", Some(ScalarType::U32), 44, 4),
        pm("m", "vec4<u32>", Some(ScalarType::U32), 48, 16),
        pm("w", "mat2x2<f32>", Some(ScalarType::F32), 64, 16),
    ];

    #[test]
    fn vec3_members_take_twelve_bytes_and_matrices_only_positional_words() {
        let wide = |scalars: &[ScalarArg]| {
            push_layout(&|| "k::main".to_string(), &WIDE, 80, 1, scalars)
                .map(|layout| layout.fill(scalars).to_vec())
                .map_err(|e| e.to_string())
        };
        let m = [1.0f32, 2.0, 3.0, 4.0].map(f32::to_bits);
        let want = [vec![0, 0], vec![5, (-6i32) as u32, 7, 9], vec![10, 11, 12, 13], m.to_vec()].concat();
        let mut positional = vec![
            ScalarArg::positional([5i32, -6, 7]),
            ScalarArg::positional(9u32),
            ScalarArg::positional([10u32, 11, 12, 13]),
        ];
        positional.extend([1.0f32, 2.0, 3.0, 4.0].map(ScalarArg::positional));
        assert_eq!(wide(&positional).unwrap(), want);
        // The matrix as one [f32; 4]: refused, it is no vector.
        positional.truncate(3);
        positional.push(ScalarArg::positional([1.0f32, 2.0, 3.0, 4.0]));
        let e = wide(&positional).unwrap_err();
        assert!(e.contains("member `w` is of type mat2x2<f32>, but the task gives it a [f32; 4] (vec4<f32>)"), "{e}");
        assert!(e.ends_with("give it 4 positional 4-byte values of type f32, one per word (padding included)"), "{e}");
        let named = [
            ScalarArg::named("t", 9u32),
            ScalarArg::named("m", [10u32, 11, 12, 13]),
            ScalarArg::named("k", [5i32, -6, 7]),
            ScalarArg::named("w", [1.0f32, 2.0, 3.0, 4.0]),
        ];
        let e = wide(&named).unwrap_err();
        assert!(e.contains("member `w` is of type mat2x2<f32>, but the task gives it a [f32; 4] (vec4<f32>) (scalar \"w\"); a matrix, array or struct member cannot be given by name: give the task's scalars by position"), "{e}");
        // The matrix left out while everything else is named: the hint says it goes by position, not by name.
        let e = wide(&named[..3]).unwrap_err();
        assert!(e.contains("member `w: mat2x2<f32>`") && e.contains("gets no value"), "{e}");
        assert!(e.ends_with("a matrix, array or struct member cannot be given by name: give the task's scalars by position, one 4-byte value of type f32 per word of the member (4 words, padding included)"), "{e}");
        assert!(!e.contains(".scalar(\"w\""), "{e}");
        let e = wide(&[ScalarArg::named("k", [5u32, 6, 7])]).unwrap_err();
        assert!(e.contains("member `k` is of type vec3<i32>, but the task gives it a [u32; 3] (vec3<u32>) (scalar \"k\"); give it a [i32; 3] (vec3<i32>)"), "{e}");
    }
}
