//! What `submit` checks before the task graph sees a task, where the task graph cannot: what only the typed builder
//! still knows (a box's offset and range before they become a `GridBox`, which saturates; whether a kernel has code;
//! which reductions brought a combining function) and the limits of the `u32` coordinates kernels see. The binding
//! checks against a kernel's reflection are `binding.rs`'s; each failure here is a [`TaskErrorKind`] naming the
//! buffer or the index space (the caller adds the task).

use celer_scheduler::exec::shaders::KernelSource;
use celer_scheduler::graph::{
    BufferExtent, BufferId, CollectiveGroupId, GridBox, HostObjectId, RangeMapper, ReductionOp, ResourceIdent,
    TaskErrorKind, TaskKind, TaskSpec, MAX_DIMS,
};
use celer_scheduler::runtime::KERNEL_CELLS;
use celer_scheduler::split::ChunkGrid;

use crate::identity::{IdentityFault, OrderFault};

/// What a task builder noted while its accesses and reductions were added, for [`Noted::check`].
#[derive(Clone, Debug, Default)]
pub(crate) struct Noted {
    /// The name of a `parallel_for`'s kernel that has no code (`Kernel::named`): a running queue refuses it.
    kernel_name: Option<std::sync::Arc<str>>,
    /// The first box given as offset and range whose end overflows `usize`.
    overflow: Option<Overflow>,
    /// The first empty box given as offset and range (a `fixed` mapper's) that lies outside its buffer: refused
    /// where the task has items (the range mappers of a task without items are not applied).
    outside: Option<EmptyOutside>,
    /// The queue (its address) of the first buffer, host object or collective group the task uses, with that resource, and the first
    /// resource of another queue than that one.
    queue: Option<(usize, Resource)>,
    foreign: Option<Resource>,
    /// The first buffer the task binds whose extent a kernel cannot address (beyond `u32::MAX` along a
    /// dimension), with that extent.
    too_wide: Option<(BufferId, GridBox)>,
    /// The first `reduce_with` whose identity is not one for its combine closure: the buffer, and the call of the
    /// combine that shows it, as text.
    identity: Option<(BufferId, IdentityFault)>,
    /// The first `reduce_with` whose identity only the type's extreme values show not to be one (a sentinel):
    /// `submit` warns about it (once a queue) instead of refusing the task.
    sentinel: Option<(BufferId, IdentityFault)>,
    /// The first `reduce_with` whose combine closure gave different results for two probe values in the two orders:
    /// the buffer, and the two calls, as text.
    order: Option<(BufferId, OrderFault)>,
    /// The buffers the task binds that hold more than [`KERNEL_CELLS`] cells or more than [`LEAST_BIND_BYTES`]
    /// bytes, with their extents, dimensions and element sizes: [`check_cells`](Self::check_cells) finds whether one
    /// chunk's accesses of one span that many cells, or more bytes than the devices bind (empty, allocating
    /// nothing, for every other task).
    huge: Vec<Huge>,
    /// The offset the program gave the index space (`.offset(..)`), with the range it shifted, in the task's
    /// dimensions, where it is not all zeros.
    offset: Option<IndexOffset>,
}

/// A buffer a task binds that is large enough for one chunk's accesses of it to exceed what a kernel addresses
/// or binds (see [`Noted::huge`]).
#[derive(Clone, Copy, Debug)]
struct Huge {
    id: BufferId,
    extent: GridBox,
    dims: usize,
    elem_size: usize,
}

/// The least `maxStorageBufferRange` Vulkan allows a device (2^27 bytes): a buffer no larger never exceeds what a
/// kernel binds of it, so only larger ones are looked at.
const LEAST_BIND_BYTES: u64 = 1 << 27;

/// Which limit a chunk's accesses of a buffer exceed ([`Noted::check_cells`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Exceeds {
    /// More cells than kernels index ([`KERNEL_CELLS`]).
    Cells,
    /// More bytes than the devices bind for one accessor (the agreed `maxStorageBufferRange`).
    Bytes,
}

/// An index space's offset and range as the program gave them (`.offset(..)`), dimension 0 first.
#[derive(Clone, Copy, Debug)]
struct IndexOffset {
    offset: [usize; MAX_DIMS],
    range: [usize; MAX_DIMS],
    dims: usize,
}

/// A buffer, host object or collective group a task uses, for the error naming one of another queue.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Resource {
    Buffer(BufferId),
    HostObject(HostObjectId),
    CollectiveGroup(CollectiveGroupId),
}

impl std::fmt::Display for Resource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Resource::Buffer(b) => write!(f, "buffer {b}"),
            Resource::HostObject(h) => write!(f, "host object {h}"),
            Resource::CollectiveGroup(g) => write!(f, "collective group {g}"),
        }
    }
}

/// A box whose end overflows `usize`, as given.
#[derive(Clone, Debug)]
struct Overflow {
    what: String,
    buffer: BufferId,
    offset: Vec<usize>,
    range: Vec<usize>,
    extent: BufferExtent,
}

/// An empty box outside its buffer, as given (`extent` is the buffer's, per dimension).
#[derive(Clone, Debug)]
struct EmptyOutside {
    what: String,
    buffer: BufferId,
    offset: Vec<usize>,
    range: Vec<usize>,
    extent: Vec<usize>,
}

/// Whether `offset + range` overflows `usize` in some dimension.
pub(crate) fn overflows(offset: &[usize], range: &[usize]) -> bool {
    offset.iter().zip(range).any(|(o, r)| o.checked_add(*r).is_none())
}

/// For an empty box `[offset, offset + range)` (a zero in `range`) whose end overflows nowhere: the error where it
/// lies outside `extent` (its end beyond the extent along some dimension), which a non-empty box there gets in
/// another form from the range mapper check; `None` for a non-empty box or one inside.
pub(crate) fn empty_outside(
    what: impl FnOnce() -> String,
    buffer: ResourceIdent,
    offset: &[usize],
    range: &[usize],
    extent: &[usize],
) -> Option<TaskErrorKind> {
    let dim = empty_outside_dim(offset, range, extent)?;
    Some(TaskErrorKind::EmptyBoxOutside {
        what: what(),
        buffer,
        offset: offset.to_vec(),
        range: range.to_vec(),
        extent: extent.to_vec(),
        dim,
        start: offset[dim],
        end: offset[dim] + range[dim],
    })
}

/// For a non-empty fenced box `[offset, offset + range)` whose end overflows nowhere: the error where it reaches
/// beyond `extent`, said as the fence's own (rather than as the range mapper check's, which would name a `fixed`
/// mapper the program never wrote); `None` for an empty box (see [`empty_outside`]) or one inside.
pub(crate) fn fenced_outside(
    buffer: ResourceIdent,
    offset: &[usize],
    range: &[usize],
    extent: &[usize],
) -> Option<TaskErrorKind> {
    if range.contains(&0) || overflows(offset, range) {
        return None;
    }
    let dim = (0..offset.len()).find(|&d| offset[d] + range[d] > extent[d])?;
    Some(TaskErrorKind::FencedBoxOutside {
        what: "the fenced box".into(),
        buffer,
        offset: offset.to_vec(),
        range: range.to_vec(),
        extent: extent.to_vec(),
        dim,
        start: offset[dim],
        end: offset[dim] + range[dim],
    })
}

/// The first dimension along which the empty box `[offset, offset + range)` (a zero in `range`) ends beyond `extent`;
/// `None` for a non-empty box, one whose end overflows (reported as such), or one inside.
fn empty_outside_dim(offset: &[usize], range: &[usize], extent: &[usize]) -> Option<usize> {
    if !range.contains(&0) || overflows(offset, range) {
        return None;
    }
    (0..offset.len()).find(|&d| offset[d] + range[d] > extent[d])
}

/// The number of cells of a buffer or index space of extent `extent`, or `None` where it overflows `usize`: 0 where
/// any extent is 0, whatever the others (a product taken left to right would overflow before reaching the zero).
pub(crate) fn cells(extent: &[usize]) -> Option<usize> {
    if extent.contains(&0) {
        return Some(0);
    }
    extent.iter().try_fold(1usize, |n, &e| n.checked_mul(e))
}

/// The error for a box `[offset, offset + range)` of `buffer` (of `extent`) whose end overflows.
pub(crate) fn overflow_error(
    what: String,
    buffer: ResourceIdent,
    offset: &[usize],
    range: &[usize],
    extent: BufferExtent,
) -> TaskErrorKind {
    TaskErrorKind::BoxOverflow { what, buffer, offset: offset.to_vec(), range: range.to_vec(), extent }
}

impl Noted {
    /// The notes of a `parallel_for` of the kernel named `name`.
    pub(crate) fn kernel(name: std::sync::Arc<str>) -> Self {
        Self { kernel_name: Some(name), ..Self::default() }
    }

    /// Notes that the task uses `resource`, of the queue at address `queue`.
    #[inline]
    pub(crate) fn queue_of(&mut self, queue: usize, resource: Resource) {
        match self.queue {
            None => self.queue = Some((queue, resource)),
            Some((q, _)) if q != queue && self.foreign.is_none() => self.foreign = Some(resource),
            Some(_) => {}
        }
    }

    /// Notes a buffer the task binds (an accessor or a reduction); allocates nothing unless its extent is beyond
    /// what kernels address.
    #[inline]
    pub(crate) fn buffer(&mut self, id: BufferId, extent: &[usize], elem_size: usize) {
        // An empty buffer (a zero extent) holds no cell for a kernel to address, however large its other extents.
        let cells = cells(extent).unwrap_or(usize::MAX);
        if self.too_wide.is_none() && cells > 0 && extent.iter().any(|&e| e > u32::MAX as usize) {
            self.too_wide = Some((id, GridBox::from_extent(extent)));
        }
        // A buffer's size in bytes fits `isize` (checked at its creation), so its cells fit `usize`.
        let large = cells as u64 > KERNEL_CELLS || (cells as u64).saturating_mul(elem_size as u64) > LEAST_BIND_BYTES;
        if large && !self.huge.iter().any(|h| h.id == id) {
            self.huge.push(Huge { id, extent: GridBox::from_extent(extent), dims: extent.len(), elem_size });
        }
    }

    /// Notes a `reduce_with` on `buffer` whose identity its combine does not keep, as `fault` shows (the first
    /// one is reported).
    pub(crate) fn not_identity(&mut self, buffer: BufferId, fault: IdentityFault) {
        let slot = if fault.extreme { &mut self.sentinel } else { &mut self.identity };
        if slot.is_none() {
            *slot = Some((buffer, fault));
        }
    }

    /// Notes a `reduce_with` on `buffer` whose combine is not commutative, as `fault` shows (the first one is
    /// reported).
    pub(crate) fn not_commutative(&mut self, buffer: BufferId, fault: OrderFault) {
        if self.order.is_none() {
            self.order = Some((buffer, fault));
        }
    }

    /// The warning for a `reduce_with` identity that only the type's extreme values show not to be one, as a
    /// sentence following the task's name, with `ident` naming the buffer.
    pub(crate) fn sentinel_warning(&self, ident: impl Fn(BufferId) -> ResourceIdent) -> Option<String> {
        let (b, f) = self.sentinel.as_ref()?;
        Some(format!(
            "{} is reduced with reduce_with from the identity {}, which the combine closure does not keep for {}: \
             {} = {}. Every chunk and rank starts from the identity, so this is right only as a sentinel that no \
             value of the reduction goes beyond (-1 for the largest index found); else use a true identity: {} \
             (warned once)",
            ident(*b),
            f.identity,
            f.wanted,
            f.call,
            f.gave,
            f.hint
        ))
    }

    /// The first chunk (of the index space split over `nodes` nodes, as the command graph splits it) whose
    /// accessors of one of the huge buffers span more than [`KERNEL_CELLS`] cells, or more than `max_bytes` bytes:
    /// that buffer, the chunk, the bounding box and which limit it exceeds. Custom range mappers (the program's
    /// code) are not applied here, and mappers the task graph will refuse are left to it; the runtime checks every
    /// allocation before a kernel binds it.
    fn huge_chunk(&self, spec: &TaskSpec, nodes: usize, max_bytes: u64) -> Option<(Huge, GridBox, GridBox, Exceeds)> {
        if self.huge.is_empty() || spec.range.is_empty() || spec.granularity.contains(&0) {
            return None;
        }
        let grid = ChunkGrid::new(spec.range, nodes.max(1), spec.hint, spec.granularity);
        for i in 0..grid.len() {
            let chunk = grid.chunk(i);
            for &h in &self.huge {
                let mut bounds = GridBox::EMPTY;
                for a in spec.accesses.iter().filter(|a| a.buffer == h.id) {
                    if matches!(a.mapper, RangeMapper::Custom { .. }) {
                        continue;
                    }
                    let Ok(region) = a.mapper.apply(&chunk, &spec.range, spec.dims, &h.extent, h.dims) else {
                        return None;
                    };
                    bounds = bounds.bounding_box(&region.bounding_box().intersection(&h.extent));
                }
                let cells = bounds.area() as u64;
                if cells > KERNEL_CELLS {
                    return Some((h, chunk, bounds, Exceeds::Cells));
                }
                if cells.saturating_mul(h.elem_size as u64) > max_bytes {
                    return Some((h, chunk, bounds, Exceeds::Bytes));
                }
            }
        }
        None
    }

    /// Notes the offset `offset` given to an index space of extent `range` (both in the task's dimensions), unless
    /// it is all zeros: [`check`](Self::check) refuses it where the end overflows or the task takes no offset.
    pub(crate) fn index_offset(&mut self, offset: &[usize], range: &[usize]) {
        self.offset = offset.iter().any(|&o| o != 0).then(|| {
            let (mut o, mut r) = ([0; MAX_DIMS], [0; MAX_DIMS]);
            o[..offset.len()].copy_from_slice(offset);
            r[..range.len()].copy_from_slice(range);
            IndexOffset { offset: o, range: r, dims: offset.len() }
        });
    }

    /// The range of the index space as the program gave it, where an offset was noted (the task's box may have
    /// saturated where the offset overflowed it).
    pub(crate) fn offset_range(&self) -> Option<[usize; MAX_DIMS]> {
        self.offset.map(|o| o.range)
    }

    /// Notes a box `[offset, offset + range)` of buffer `id` (of extent `extent`) that `what` describes, if its end
    /// overflows, or if it is empty and lies outside the extent (the first one of each is reported).
    pub(crate) fn subrange(
        &mut self,
        what: impl FnOnce() -> String,
        id: BufferId,
        extent: &[usize],
        offset: &[usize],
        range: &[usize],
    ) {
        if self.overflow.is_none() && overflows(offset, range) {
            let extent = BufferExtent::new(extent);
            self.overflow =
                Some(Overflow { what: what(), buffer: id, offset: offset.to_vec(), range: range.to_vec(), extent });
        } else if self.outside.is_none() && empty_outside_dim(offset, range, extent).is_some() {
            let (offset, range, extent) = (offset.to_vec(), range.to_vec(), extent.to_vec());
            self.outside = Some(EmptyOutside { what: what(), buffer: id, offset, range, extent });
        }
    }

    /// Checks the task `spec` of this builder, submitted to the queue at address `queue`: `code` is its compiled kernel and entry point (`Kernel::wgsl`; none for
    /// a host task or a `Kernel::named` one); `running` whether the queue runs the program (not a dry run); `combines[i]` whether
    /// reduction `i` brought a combining function (`reduce_with`); `ident` names a buffer.
    pub(crate) fn check(
        &self,
        queue: usize,
        spec: &TaskSpec,
        code: Option<(&'static KernelSource, &'static str)>,
        running: bool,
        combines: impl Fn(usize) -> bool,
        ident: impl Fn(BufferId) -> ResourceIdent,
    ) -> Result<(), Box<TaskErrorKind>> {
        // Resources of another queue: their ids name other buffers here (a second dry run's, say).
        let foreign = match (self.queue, self.foreign) {
            (Some((q, first)), _) if q != queue => Some(first),
            (_, other) => other,
        };
        if let Some(r) = foreign {
            return Err(Box::new(TaskErrorKind::ForeignResource { resource: r.to_string() }));
        }
        if let Some((b, fault)) = &self.identity {
            return Err(Box::new(TaskErrorKind::ReductionIdentity {
                buffer: ident(*b),
                identity: fault.identity.clone(),
                call: fault.call.clone(),
                gave: fault.gave.clone(),
                wanted: fault.wanted.clone(),
                hint: fault.hint.to_string(),
            }));
        }
        if let Some((b, fault)) = &self.order {
            return Err(Box::new(TaskErrorKind::ReductionNotCommutative {
                buffer: ident(*b),
                call: fault.call.clone(),
                gave: fault.gave.clone(),
                swapped: fault.swapped.clone(),
                gave_swapped: fault.gave_swapped.clone(),
            }));
        }
        if let Some(o) = &self.overflow {
            return Err(Box::new(overflow_error(o.what.clone(), ident(o.buffer), &o.offset, &o.range, o.extent)));
        }
        // Like a non-empty box outside, which the task graph refuses where it applies the mappers: with items.
        if let Some(o) = self.outside.as_ref().filter(|_| !spec.range.is_empty()) {
            let what = || o.what.clone();
            if let Some(e) = empty_outside(what, ident(o.buffer), &o.offset, &o.range, &o.extent) {
                return Err(Box::new(e));
            }
        }
        // One host object declared twice: `with_object(i)` and `with_object(j)` would lock the same object.
        let effects = &spec.side_effects;
        if let Some((j, i)) =
            (1..effects.len()).find_map(|j| (0..j).find(|&i| effects[i].0 == effects[j].0).map(|i| (j, i)))
        {
            return Err(Box::new(TaskErrorKind::DuplicateSideEffect {
                host_object: effects[j].0,
                first: i,
                second: j,
            }));
        }
        if let Some(o) = &self.offset {
            let (offset, range) = (&o.offset[..o.dims], &o.range[..o.dims]);
            if let TaskKind::Collective(_) = spec.kind {
                let kind = "a collective host task (task::host_collective)";
                return Err(Box::new(TaskErrorKind::OffsetNotAllowed { kind, offset: offset.to_vec() }));
            }
            if overflows(offset, range) {
                return Err(Box::new(TaskErrorKind::IndexSpaceOverflow {
                    offset: offset.to_vec(),
                    range: range.to_vec(),
                }));
            }
        }
        // An empty index space has no items to count or address (a no-op however large its other extents).
        let items = matches!(spec.kind, TaskKind::DeviceCompute | TaskKind::HostCompute) && !spec.range.is_empty();
        if items && cells(&spec.range.range()).is_none() {
            return Err(Box::new(TaskErrorKind::IndexSpaceTooLarge { range: spec.range }));
        }
        let host_kind = match spec.kind {
            TaskKind::HostCompute => Some("a host task (task::host_for)"),
            TaskKind::Once => Some("a host task (task::host_once)"),
            TaskKind::Collective(_) => Some("a collective host task (task::host_collective)"),
            _ => None,
        };
        for (i, r) in spec.reductions.iter().enumerate() {
            if let Some(kind) = host_kind {
                return Err(Box::new(TaskErrorKind::ReductionWithoutKernel { kind, buffer: ident(r.buffer) }));
            }
            if r.op == ReductionOp::Custom && !combines(i) {
                return Err(Box::new(TaskErrorKind::CustomReductionWithoutCombine { buffer: ident(r.buffer) }));
            }
            // Before the kernel's bindings are counted: a buffer reduced twice or also accessed is the fault, and a
            // count of bindings that differs because of it would send the program's author to the kernel instead.
            // (The task graph checks the same for every submitter.)
            if let Some(first) = spec.reductions[..i].iter().position(|p| p.buffer == r.buffer) {
                return Err(Box::new(TaskErrorKind::ReductionTwice { buffer: ident(r.buffer), first, second: i }));
            }
            if spec.accesses.iter().any(|a| a.buffer == r.buffer) {
                return Err(Box::new(TaskErrorKind::ReductionAndAccess { buffer: ident(r.buffer) }));
            }
        }
        if spec.kind != TaskKind::DeviceCompute {
            return Ok(());
        }
        if let Some((source, entry)) = code {
            let (max, kernel) = (u32::MAX, || format!("{}::{entry}", source.name()));
            if items && spec.range.max().iter().any(|&m| m > max as usize) {
                let what = format!("the index space {}", spec.range);
                return Err(Box::new(TaskErrorKind::KernelCoordinates { kernel: kernel(), what, max }));
            }
            if let Some((id, extent)) = &self.too_wide {
                let what = format!("{} of extent {extent}", ident(*id));
                return Err(Box::new(TaskErrorKind::KernelCoordinates { kernel: kernel(), what, max }));
            }
        } else if let (Some(name), true) = (&self.kernel_name, running) {
            return Err(Box::new(TaskErrorKind::KernelWithoutCode { kernel: name.to_string() }));
        }
        Ok(())
    }

    /// Checks that no chunk of the kernel task `spec` (its granularity final: after the alignment to workgroups),
    /// split over `nodes` nodes as the command graph splits it, accesses more of a buffer than a kernel indexes, or
    /// more bytes of it than `max_bytes` (what every rank's devices bind for one accessor, agreed at start-up;
    /// `u64::MAX` in a dry run, which has no device). Known from the split alone, so a dry run (of a kernel without
    /// code too) refuses the first as a run does. `code` and `ident` as for [`check`](Self::check).
    pub(crate) fn check_cells(
        &self,
        spec: &TaskSpec,
        code: Option<(&'static KernelSource, &'static str)>,
        nodes: usize,
        max_bytes: u64,
        ident: impl Fn(BufferId) -> ResourceIdent,
    ) -> Result<(), Box<TaskErrorKind>> {
        if spec.kind != TaskKind::DeviceCompute {
            return Ok(());
        }
        let Some((huge, chunk, region, exceeds)) = self.huge_chunk(spec, nodes, max_bytes) else { return Ok(()) };
        let kernel = match (code, &self.kernel_name) {
            (Some((source, entry)), _) => format!("{}::{entry}", source.name()),
            (None, Some(name)) => name.to_string(),
            (None, None) => "(unnamed)".into(),
        };
        let (buffer, nodes, cells) = (ident(huge.id), nodes.max(1), region.area() as u64);
        Err(Box::new(match exceeds {
            Exceeds::Cells => {
                TaskErrorKind::KernelCells { kernel, buffer, chunk, nodes, region, cells, max: KERNEL_CELLS }
            }
            Exceeds::Bytes => TaskErrorKind::KernelBindBytes {
                kernel,
                buffer,
                chunk,
                nodes,
                region,
                bytes: cells.saturating_mul(huge.elem_size as u64),
                max: max_bytes,
            },
        }))
    }
}
