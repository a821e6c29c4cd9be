//! Kernels: device-compute executions' dispatches, interiors run early (`CELER_OVERLAP`), bounds checks.

use celer_exec::gpu::{DeviceAllocation, Launch};
use celer_exec::shaders::KernelSource;
use celer_graph::{AccessMode, BufferId, Command, CommandKind, GridBox, Region, TaskKind};
use smallvec::SmallVec;

use super::batch::{GpuOp, PreparedKernel};
use super::boxes::{box3, grid_box};
use super::commands::{AfterGpu, InFlight};
use super::error::{failure, CommandWork, OpContext, OutOfBoundsAccess, RuntimeError};
use super::reduction::{BlockPart, CustomReduction, ScalarKind};
use super::RankLoop;

/// The most cells of one buffer a kernel addresses on one node: kernels index the cells of the allocation they bind
/// (the bounding box of what the node's commands touch of the buffer) as `u32`. `submit` refuses a kernel whose
/// accesses of a buffer on one chunk span more; the runtime refuses an allocation that grew beyond it.
pub const KERNEL_CELLS: u64 = 1 << 32;

/// What a device-compute task runs: a WGSL kernel compiled at build time, and its scalar arguments.
#[derive(Debug, Clone)]
pub struct KernelPayload {
    /// The compiled kernel file.
    pub source: &'static KernelSource,
    /// The entry point.
    pub entry: &'static str,
    /// Scalars pushed after the accessor windows (u32 words; pass `f32` as `to_bits`), up to 8 of them held in the
    /// payload itself (a program submits one payload per task whose scalars changed).
    pub scalars: SmallVec<[u32; 8]>,
    /// The element type of each of the task's reductions, in order. A reduction's buffer binds after the accessors;
    /// it holds the operation's identity (or, on rank 0, the current value when that is included) when the kernel
    /// starts, and the kernel combines its items into element 0 (e.g. with atomics).
    pub reduction_kinds: Vec<ScalarKind>,
    /// For each of the task's reductions, in order: how a user-defined one ([`ReductionOp::Custom`](celer_graph::ReductionOp::Custom)) combines.
    pub custom_reductions: Vec<Option<CustomReduction>>,
    /// With a kernel that calls the prelude's block reductions (`celer_reduce_*`): the items of one block (its
    /// workgroup) along each dimension of the index space, dimension 0 first. The task's reductions are then
    /// deterministic: each binds one cell per block of the chunk, and the blocks combine in a fixed tree
    /// ([`crate::blocks`]); the chunks must start at whole blocks.
    pub blocks: Option<[usize; 3]>,
}

/// What a checked kernel dispatch (`CELER_CHECK_BOUNDS`) declared, to check its accesses against and to name in the
/// report.
#[derive(Clone)]
pub(super) struct CheckInfo {
    /// Per accessor (then reduction), in binding order: the bounding box of the region its range mapper gave for
    /// this chunk (the whole buffer for a reduction).
    pub(super) declared: Vec<GridBox>,
    /// Per accessor: how to name it, e.g. `read of buffer B0 "src" through one_to_one`.
    pub(super) names: Vec<String>,
    /// Per accessor: its buffer.
    pub(super) buffers: Vec<BufferId>,
    /// `task T1 "shift" (C3 on N0, kernel shift::main, chunk [0] - [32])`.
    pub(super) what: String,
    /// The report of an access outside the declared boxes, without its accessors.
    pub(super) fault: OutOfBoundsAccess,
}

/// A checked dispatch's bounds record, downloaded with its batch and read once that completes.
pub(super) struct PendingCheck {
    pub(super) batch: celer_exec::gpu::BatchId,
    pub(super) download: celer_exec::gpu::DownloadId,
    pub(super) record: DeviceAllocation,
    pub(super) info: Box<CheckInfo>,
}

/// The items of one workgroup of `payload`'s kernel along each dimension of its `dims`-dimensional index space
/// (dimension 0 first; invocation ids run back to front, as the prelude's `celer_item_Nd` maps them), where what the
/// kernel computes depends on how the index space is cut into workgroups (its reflection's `workgroup_dependent`, or
/// a block reduction); `None` for any other kernel.
fn workgroup_block(payload: &KernelPayload, dims: usize) -> Option<[usize; 3]> {
    let ep = payload.source.entry_point(payload.entry).filter(|ep| ep.workgroup_dependent || ep.block_reduction)?;
    let [x, y, z] = ep.workgroup_size.map(|w| w as usize);
    Some(match dims {
        0 | 1 => [x, 1, 1],
        2 => [y, x, 1],
        _ => [z, y, x],
    })
}

/// `interior` (a box of `chunk`, of a task over `range`) shrunk so that each launch of the split chunk (the interior,
/// and the boxes of the chunk around it) starts at a whole workgroup of `block` items counted from the index space's
/// first item, as the chunk does (`submit` aligns the split of such kernels): its lower corner rounds up, its upper
/// corner down unless it is the chunk's. Every launch then starts at the chunk's corner or at one of the interior's
/// along each dimension, so a workgroup holds the same items as in one launch of the whole chunk. `None` where
/// nothing is left.
fn align_interior(interior: GridBox, chunk: &GridBox, range: &GridBox, block: [usize; 3]) -> Option<GridBox> {
    let (origin, end) = (range.min(), chunk.max());
    let (mut lo, mut hi) = (interior.min(), interior.max());
    for d in 0..3 {
        let b = block[d].max(1);
        lo[d] = origin[d] + (lo[d] - origin[d]).div_ceil(b) * b;
        if hi[d] != end[d] {
            hi[d] = origin[d] + (hi[d] - origin[d]) / b * b;
        }
    }
    // Rounding the corners toward each other crosses them where no whole workgroup is left: nothing.
    Some(GridBox::new_or_empty(lo, hi)).filter(|b| !b.is_empty())
}

impl RankLoop<'_> {
    /// Starts device-compute execution `cmd` over `chunk`: collects its dispatch, or with an interior already
    /// running ([`start_interior`](Self::start_interior)), the rest of the chunk: its border.
    pub(super) fn start_kernel(&mut self, cmd: &Command, chunk: &GridBox) -> Result<Option<InFlight>, RuntimeError> {
        let mut launches: SmallVec<[GridBox; 4]> = SmallVec::new();
        // Without overlap (`CELER_OVERLAP`) both maps stay empty: skip the lookups.
        if !self.no_interior.is_empty() {
            self.no_interior.remove(&cmd.id);
        }
        let interior = if self.interiors.is_empty() { None } else { self.interiors.remove(&cmd.id) };
        match interior {
            Some(interior) => chunk.subtract_into(&interior, |b| launches.push(b)),
            None => launches.push(*chunk),
        }
        let parts = self.collect_kernel(cmd, *chunk, &launches)?;
        if parts.is_empty() {
            return Ok(Some(InFlight::Gpu(self.open(), AfterGpu::Done)));
        }
        let CommandKind::Execution { task, .. } = &cmd.kind else { unreachable!("checked by collect_kernel") };
        let whole = self.tm.task(*task).is_some_and(|t| t.spec.range == *chunk);
        Ok(Some(InFlight::Gpu(self.open(), AfterGpu::Blocks { parts, whole, cmd: cmd.id })))
    }

    /// Collects the GPU work of device-compute execution `cmd` over `chunk`: its allocations cover what the whole
    /// chunk touches, and one dispatch per box of `launches` (the chunk, or a part of it). Returns the block
    /// results its block reductions leave, downloaded with the batch.
    pub(super) fn collect_kernel(
        &mut self,
        cmd: &Command,
        chunk: GridBox,
        launches: &[GridBox],
    ) -> Result<Vec<BlockPart>, RuntimeError> {
        let rank = self.node;
        let fail = failure(rank, cmd);
        let CommandKind::Execution { task, .. } = &cmd.kind else {
            return Err(fail(RuntimeError::Internal("not an execution")));
        };
        let task = self.tm.task(*task).ok_or_else(|| fail(RuntimeError::TaskPruned))?;
        let payload = task
            .spec
            .payload
            .as_ref()
            .and_then(|p| p.downcast_ref::<KernelPayload>())
            .ok_or_else(|| fail(RuntimeError::NoPayload { task: task.ident().to_string(), what: "kernel" }))?;
        // What the dispatch needs of the payload, copied out (the task stays borrowed from the task manager).
        let (source, entry) = (payload.source, payload.entry);
        let mut scalars: SmallVec<[u32; 8]> = SmallVec::from_slice(&payload.scalars);
        let mut accesses: SmallVec<[(BufferId, AccessMode); 4]> =
            if task.spec.accesses.len() + task.spec.reductions.len() > 4 {
                self.spare_bindings.pop().unwrap_or_default()
            } else {
                SmallVec::new()
            };
        accesses.extend(task.spec.accesses.iter().map(|a| (a.buffer, a.mode)));
        // Reduction buffers bind after the accessors and start from the identity, except where rank 0
        // folds in the current value.
        // Block reductions bind a scratch allocation of one cell per block of the chunk instead, which the kernel
        // fills whole.
        let mut identities = Vec::new();
        let mut parts = Vec::new();
        let mut scratch = Vec::new();
        for r in &task.spec.reductions {
            let info = &self.reductions[&r.id];
            if let Some(grid) = info.blocks.filter(|_| !chunk.is_empty()) {
                let tiles = grid
                    .blocks_of(&chunk)
                    .ok_or_else(|| fail(RuntimeError::BlockMisaligned { reduction: r.id, chunk, block: grid.size }))?;
                let elem_size = info.kind.size();
                // An iterative program reduces over the same chunk again and again: reuse its cells (and the
                // descriptor sets that name them).
                let spare =
                    self.spare_scratch.iter().position(|a| a.bounds() == box3(&tiles) && a.elem_size() == elem_size);
                let alloc = match spare {
                    Some(i) => self.spare_scratch.swap_remove(i),
                    None => self.gpu.allocate(box3(&tiles), elem_size).map_err(|error| {
                        fail(RuntimeError::GpuOp {
                            context: format!("one cell per block of reduction {}", r.id),
                            error,
                        })
                    })?,
                };
                let id = self.next_scratch;
                self.next_scratch += 1;
                self.scratch.insert(id, alloc);
                scratch.push((accesses.len(), id));
                parts.push((r.id, r.buffer, tiles, id));
            } else if !(r.include_current_value && rank == 0) {
                identities.push((r.buffer, info.identity()));
            }
            accesses.push((r.buffer, AccessMode::ReadWrite));
        }
        // An empty chunk (a task without items that reduces) dispatches nothing: it only resets its reduction
        // buffers, as its kernel would have found them.
        if chunk.is_empty() {
            let context = OpContext::command(rank, cmd, CommandWork::ReductionIdentity);
            // Every reduction buffer is allocated (one that folds in its current value holds it there already).
            let reduced: Vec<BufferId> = task.spec.reductions.iter().map(|r| r.buffer).collect();
            for buffer in reduced {
                let extent = self.buffers[&buffer].extent;
                self.cover(buffer, &extent).map_err(&fail)?;
            }
            for (buffer, bytes) in identities {
                let extent = self.buffers[&buffer].extent;
                let bytes = std::sync::Arc::new(bytes);
                self.pending.push(GpuOp::Upload {
                    buffer,
                    boxes: smallvec::smallvec![box3(&extent)],
                    bytes,
                    bounds: extent,
                    context,
                });
            }
            return Ok(Vec::new());
        }
        // What each accessor touches on this rank: its allocation must hold it. (In the storage of the previous
        // kernel's list: a kernel binding many buffers would allocate one every task.)
        let mut needs = std::mem::take(&mut self.needs_scratch);
        needs.clear();
        let whole = chunk == task.spec.range;
        // The task's regions list each buffer once, in the order of its first accessor, then the reductions': as
        // many as accessors and reductions when no two accessors share a buffer, and then in accessor order.
        let distinct = task.regions.len() == task.spec.accesses.len() + task.spec.reductions.len();
        for (i, a) in task.spec.accesses.iter().enumerate() {
            let state =
                self.buffers.get(&a.buffer).ok_or_else(|| fail(RuntimeError::UnknownBuffer { buffer: a.buffer }))?;
            // A chunk that is the whole index space (one rank, a task of one chunk) touches what the task graph
            // computed for the task: with the buffer's only accessor, its region's bounding box is that of the
            // buffer's regions (the one holds what it reads, the other what it writes), and its mapper (maybe a
            // closure) need not run again.
            let known = whole && (a.mode.consumes() || a.mode.produces());
            let region = match task.regions.get(i).filter(|r| distinct && r.buffer == a.buffer) {
                Some(r) => Some(r),
                None if known && only_access(task, a.buffer) => task.regions.iter().find(|r| r.buffer == a.buffer),
                None => None,
            };
            let bounds = match region.filter(|_| known) {
                Some(r) => r.consumed.bounding_box().bounding_box(&r.produced.bounding_box()),
                None => celer_graph::task::noting_buffer(a.buffer, || {
                    a.mapper.apply(&chunk, &task.spec.range, task.spec.dims, &state.extent, state.dims)
                })
                .map_err(|e| fail(e.into()))?
                .bounding_box(),
            };
            needs.push((a.buffer, bounds));
        }
        for r in &task.spec.reductions {
            match parts.iter().find(|p| p.0 == r.id) {
                Some(p) => needs.push((r.buffer, p.2)),
                None => needs.push((r.buffer, self.buffers[&r.buffer].extent)),
            }
        }
        // An accessor whose range mapper gave this chunk no cells must let the kernel touch none: it binds a cell of
        // its own instead of the buffer's allocation (pushed as an empty box, so `celer_contains` is false
        // everywhere), and the dispatch runs checked, so that an access through it stops the run. Dispatches
        // without one pay this test only.
        let mut empty = Vec::new();
        if needs.iter().take(task.spec.accesses.len()).any(|n| n.1.is_empty()) {
            let accessors = needs.iter().take(task.spec.accesses.len());
            empty.extend(accessors.enumerate().filter(|(_, n)| n.1.is_empty()).map(|(i, _)| i));
        }
        let checked = self.check_bounds || !empty.is_empty();
        let dims = task.spec.dims.max(1);
        let context = OpContext::command(rank, cmd, CommandWork::Kernel);
        let mut check = checked.then(|| {
            let mut names: Vec<String> =
                task.spec.accesses.iter().map(|a| accessor_label(a, &self.buffer_ident(a.buffer))).collect();
            names
                .extend(task.spec.reductions.iter().map(|r| format!("reduction into {}", self.buffer_ident(r.buffer))));
            let kernel = format!("{}::{}", source.name(), entry);
            let what = format!("{} ({} on N{rank}, kernel {kernel}, chunk {chunk})", task.ident(), cmd.id);
            let (declared, buffers) = needs.iter().map(|&(b, d)| (d, b)).unzip();
            let fault = OutOfBoundsAccess {
                task: task.ident().to_string(),
                command: cmd.id,
                node: rank,
                kernel,
                chunk,
                accessors: Vec::new(),
                empty_region: !self.check_bounds,
            };
            Box::new(CheckInfo { declared, names, buffers, what, fault })
        });
        for (i, &(buffer, bounds)) in needs.iter().enumerate() {
            // A block reduction's cells are in its scratch allocation, an accessor's without cells in its cell.
            if empty.contains(&i) {
                self.empty_cell(buffer).map_err(&fail)?;
            } else if !scratch.iter().any(|s| s.0 == i) {
                self.cover(buffer, &bounds).map_err(&fail)?;
            }
        }
        self.needs_scratch = needs;
        let kernel = match self.last_kernel {
            Some((s, e, c, id)) if std::ptr::eq(s, source) && std::ptr::eq(e, entry) && c == checked => id,
            _ => {
                let kernel = if checked {
                    self.gpu.load_kernel_checked(source, entry)
                } else {
                    self.gpu.load_kernel(source, entry)
                };
                let id = kernel.map_err(|e| {
                    fail(RuntimeError::KernelLoad {
                        // `task` is not borrowed here (the allocations above needed `self`): look it up again.
                        task: self
                            .tm
                            .task(cmd.task)
                            .map_or_else(|| format!("task {}", cmd.task), |t| t.ident().to_string()),
                        kernel: format!("{}::{entry}", source.name()),
                        checked,
                        error: Box::new(e),
                    })
                })?;
                self.last_kernel = Some((source, entry, checked, id));
                id
            }
        };
        // A download collected before this kernel (typically for a push of the previous step) goes out in a batch
        // of its own: in one batch with the kernel, its data would leave only after the kernel, and the rank
        // waiting for it would idle for a whole kernel.
        if self.pending_buffer_downloads > 0 {
            self.flush()?;
        }
        // Every launch but the last gets copies; the last one takes the originals.
        for (n, launch) in launches.iter().enumerate() {
            let last = n + 1 == launches.len();
            self.pending.push(GpuOp::Kernel(PreparedKernel {
                kernel,
                launch: Launch::new(box3(launch), dims),
                accesses: if last { std::mem::take(&mut accesses) } else { accesses.clone() },
                scratch: if last { std::mem::take(&mut scratch) } else { scratch.clone() },
                empty: if last { std::mem::take(&mut empty) } else { empty.clone() },
                scalars: if last { std::mem::take(&mut scalars) } else { scalars.clone() },
                // Reductions never split (start_interior), so the one launch resets them.
                identities: if n == 0 { std::mem::take(&mut identities) } else { Vec::new() },
                context,
                check: if last { check.take() } else { check.clone() },
            }));
        }
        let parts = parts
            .into_iter()
            .map(|(reduction, buffer, tiles, id)| BlockPart {
                reduction,
                buffer,
                tiles,
                scratch: id,
                download: self.pend_scratch_download(id, context),
            })
            .collect();
        Ok(parts)
    }

    /// For queued command `i` (not ready yet): if it is a kernel whose only unfinished dependencies are
    /// await-pushes still receiving, and a box of its chunk (its interior) reads and writes none of the awaited
    /// cells, collects the interior's dispatch now, so it runs while the data travels; [`start`](Self::start)
    /// runs the rest of the chunk once the data arrived. Returns whether it did.
    pub(super) fn start_interior(&mut self, i: usize) -> Result<bool, RuntimeError> {
        let cmd = &self.commands[i];
        let CommandKind::Execution { task, chunk, .. } = &cmd.kind else { return Ok(false) };
        // This runs for every waiting kernel in every loop step: what cannot split is ruled out once, cheaply.
        if self.no_interior.contains(&cmd.id) {
            return Ok(false);
        }
        let Some(task) = self.tm.task(*task) else { return Ok(false) };
        if task.kind() != TaskKind::DeviceCompute
            || !task.spec.reductions.is_empty()
            || chunk.area() <= self.overlap.unwrap_or(usize::MAX)
        {
            self.no_interior.insert(cmd.id);
            return Ok(false);
        }
        // Every dependency must be done or on the GPU queue already, except await-pushes still receiving.
        let mut awaited: Vec<(BufferId, &Region)> = Vec::new();
        for d in &cmd.dependencies {
            if self.dep_done(d) {
                continue;
            }
            let flight = self.in_flight.iter().find(|(id, _)| *id == d.command).map(|(_, f)| f);
            match flight {
                Some(InFlight::Gpu(_, AfterGpu::Done)) => {}
                Some(InFlight::Receive { buffer, region, .. }) => awaited.push((*buffer, region)),
                _ => {
                    let queued = self.commands.iter().find(|c| c.id == d.command).map(|c| &c.kind);
                    match queued {
                        Some(CommandKind::AwaitPush { transfer, region }) => awaited.push((transfer.buffer, region)),
                        _ => return Ok(false),
                    }
                }
            }
        }
        if awaited.is_empty() {
            return Ok(false);
        }
        let mut interior = self.interior_box(task, chunk, &awaited);
        // A kernel whose results depend on its workgroups must see the same workgroups in every launch of the split.
        if let Some(block) = task
            .spec
            .payload
            .as_ref()
            .and_then(|p| p.downcast_ref::<KernelPayload>())
            .and_then(|p| workgroup_block(p, task.spec.dims))
        {
            interior = interior.and_then(|b| align_interior(b, chunk, &task.spec.range, block));
        }
        let Some(interior) = interior.filter(|b| b.area() >= self.overlap.unwrap_or(usize::MAX)) else {
            let id = self.commands[i].id;
            self.no_interior.insert(id);
            return Ok(false);
        };
        let cmd = self.commands[i].clone();
        let CommandKind::Execution { chunk, .. } = &cmd.kind else { return Ok(false) };
        // In a batch of its own: what was collected before (typically a border and the download its push sends)
        // completes without waiting for the interior.
        self.flush()?;
        self.collect_kernel(&cmd, *chunk, &[interior])?;
        self.interiors.insert(cmd.id, interior);
        self.stats.early_interiors += 1;
        Ok(true)
    }

    /// Allocates, on first use, the cell of `buffer`'s element size that accessors whose range mapper gave their
    /// chunk no cells bind ([`Access::empty`](celer_exec::gpu::Access::empty)).
    fn empty_cell(&mut self, buffer: BufferId) -> Result<(), RuntimeError> {
        let size = self.buffers.get(&buffer).ok_or(RuntimeError::UnknownBuffer { buffer })?.elem_size;
        if !self.empty_cells.iter().any(|a| a.elem_size() == size) {
            let cell = self.gpu.allocate(celer_exec::gpu::Box3::d1(0, 1), size).map_err(|error| {
                let buffer = self.buffer_ident(buffer);
                RuntimeError::GpuOp {
                    context: format!("the stand-in cell of an accessor of {buffer} without cells"),
                    error,
                }
            })?;
            self.empty_cells.push(cell);
        }
        Ok(())
    }

    /// The interior of `chunk` for `task` given the `awaited` regions ([`crate::overlap::interior`]).
    pub(super) fn interior_box(
        &self,
        task: &celer_graph::Task,
        chunk: &GridBox,
        awaited: &[(BufferId, &Region)],
    ) -> Option<GridBox> {
        let mut accessors = Vec::with_capacity(task.spec.accesses.len());
        for a in task.spec.accesses.iter() {
            let state = self.buffers.get(&a.buffer)?;
            accessors.push(crate::overlap::Accessor {
                buffer: a.buffer,
                mapper: &a.mapper,
                dims: state.dims,
                extent: state.extent,
            });
        }
        crate::overlap::interior(chunk, &task.spec.range, task.spec.dims, &accessors, awaited)
    }

    /// Reads the bounds records of checked kernels whose batch completed (`CELER_CHECK_BOUNDS`).
    ///
    /// # Errors
    /// An out-of-bounds access, naming the task, command, kernel and chunk, and for each accessor at fault its
    /// buffer, what it declared and the bounding box of the cells the kernel touched outside that.
    pub(super) fn read_checks(&mut self) -> Result<(), RuntimeError> {
        let mut failures = Vec::new();
        let mut i = 0;
        while i < self.checks.len() {
            if !self.gpu.is_complete(self.checks[i].batch) {
                i += 1;
                continue;
            }
            let check = self.checks.swap_remove(i);
            let mut bytes = vec![0u8; check.record.bytes()];
            let all = check.record.bounds();
            self.gpu.read_download(check.download, &mut bytes, all)?;
            self.gpu.free(check.record);
            let words: Vec<u32> = bytes.chunks_exact(4).map(|w| u32::from_le_bytes([w[0], w[1], w[2], w[3]])).collect();
            let report = celer_exec::gpu::read_bounds_record(&words);
            if report.unattributed > 0 {
                log::warn!(
                    "CELER_CHECK_BOUNDS: {} indexed {} time(s) with a box that is no accessor's allocation box, so \
                     those accesses could not be checked",
                    check.info.what,
                    report.unattributed
                );
            }
            let info = &check.info;
            let mut lines = Vec::new();
            for (k, outside) in report.accessors.iter().enumerate() {
                if let Some((count, cells)) = outside {
                    let dims = info.buffers.get(k).and_then(|b| self.buffers.get(b)).map_or(3, |b| b.dims);
                    let cells = grid_box(cells, dims);
                    let name = info.names.get(k).map_or("?", String::as_str);
                    lines.push(if info.declared[k].is_empty() {
                        format!(
                            "accessor {k} ({name}) accessed {cells} ({count} access(es)), but its range mapper \
                             declared the empty region {{}} for this chunk, so the kernel may touch none of its \
                             cells there (guard such accesses with celer_contains; the buffer was left untouched)"
                        )
                    } else {
                        format!(
                            "accessor {k} ({name}) accessed {cells} ({count} access(es) outside), but its range mapper \
                             declared only {} for this chunk",
                            info.declared[k]
                        )
                    });
                }
            }
            if !lines.is_empty() {
                failures.push(OutOfBoundsAccess { accessors: lines, ..info.fault.clone() });
            }
        }
        if failures.is_empty() {
            Ok(())
        } else {
            self.fault_grace = true;
            Err(RuntimeError::OutOfBounds(failures))
        }
    }
}

/// How a bounds-check report names accessor `a` of buffer `buffer` (`buffer B0 "a"`): its mode as the API spells it
/// (`read_write`, `discard_write`), the buffer and its range mapper.
fn accessor_label(a: &celer_graph::BufferAccess, buffer: &str) -> String {
    format!("{} of {buffer} through {}", a.mode.name(), a.mapper.name())
}

/// Whether `task` accesses `buffer` through one accessor only.
fn only_access(task: &celer_graph::Task, buffer: BufferId) -> bool {
    task.spec.accesses.iter().filter(|a| a.buffer == buffer).count() == 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_reports_name_each_access_mode_as_the_api_spells_it() {
        // `{:?}` lower-cased gave "readwrite", a method the API does not have.
        let label = |mode| {
            let a = celer_graph::BufferAccess { buffer: BufferId(3), mode, mapper: celer_graph::RangeMapper::All };
            accessor_label(&a, "buffer B3 \"v\"")
        };
        assert_eq!(label(AccessMode::ReadWrite), "read_write of buffer B3 \"v\" through all");
        assert_eq!(label(AccessMode::DiscardWrite), "discard_write of buffer B3 \"v\" through all");
        assert_eq!(label(AccessMode::Read), "read of buffer B3 \"v\" through all");
        assert_eq!(label(AccessMode::Write), "write of buffer B3 \"v\" through all");
    }

    #[test]
    fn interiors_of_workgroup_dependent_kernels_start_every_launch_at_a_whole_workgroup() {
        // A 1D chunk [24, 47) of an index space starting at 0, workgroups of 4: the interior [25, 46) of a
        // neighbourhood-1 read shrinks to [28, 44), so the border is [24, 28) and [44, 47); an interior that ends
        // where the chunk does keeps its end.
        let (range, chunk) = (GridBox::d1(0, 47), GridBox::d1(24, 47));
        assert_eq!(align_interior(GridBox::d1(25, 46), &chunk, &range, [4, 1, 1]), Some(GridBox::d1(28, 44)));
        assert_eq!(align_interior(GridBox::d1(25, 47), &chunk, &range, [4, 1, 1]), Some(GridBox::d1(28, 47)));
        // At an offset of 5 the workgroups start at 5, 9, 13, ...: the chunk [13, 40) keeps [17, 37).
        let (range, chunk) = (GridBox::d1(5, 40), GridBox::d1(13, 40));
        assert_eq!(align_interior(GridBox::d1(14, 39), &chunk, &range, [4, 1, 1]), Some(GridBox::d1(17, 37)));
        // 2D, workgroups of 2 x 4 at offset [1, 3]: both corners move, each launch around the interior starts at
        // the chunk's corner or the interior's.
        let (range, chunk) = (GridBox::d2([1, 3], [12, 12]), GridBox::d2([5, 3], [12, 12]));
        let aligned = align_interior(GridBox::d2([6, 4], [11, 11]), &chunk, &range, [2, 4, 1]).unwrap();
        assert_eq!(aligned, GridBox::d2([7, 7], [11, 11]));
        let mut launches = vec![aligned];
        chunk.subtract_into(&aligned, |b| launches.push(b));
        for b in launches {
            assert_eq!((b.min()[0] - 1) % 2, 0, "{b} starts inside a workgroup");
            assert_eq!((b.min()[1] - 3) % 4, 0, "{b} starts inside a workgroup");
        }
        // Too small an interior to hold a whole workgroup: none.
        assert_eq!(align_interior(GridBox::d1(25, 27), &GridBox::d1(24, 30), &GridBox::d1(0, 30), [4, 1, 1]), None);
    }
}
