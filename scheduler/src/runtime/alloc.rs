//! Device allocations: each buffer's one allocation per rank, grown to cover what commands need, with look-ahead,
//! and freed once the program dropped the buffer and no command may use it any more; and large host allocations
//! that the system may refuse (fence data, host task views), asked for without aborting the process.

use std::sync::Arc;

use celer_exec::gpu::DeviceAllocation;
use celer_graph::{BufferId, CommandKind, GridBox, TaskId};

use super::batch::GpuOp;
use super::boxes::box3;
use super::error::{OpContext, RuntimeError};
use super::RankLoop;

/// `n` zeroed bytes, or `None` where the system refuses the allocation (which `vec!` would answer by aborting the
/// process). Only large sizes are tried first, by reserving and freeing them: `vec!` then allocates zeroed pages
/// lazily, which filling a reserved vector would not.
pub(super) fn zeroed_bytes(n: usize) -> Option<Vec<u8>> {
    const TRY_FROM: usize = 1 << 30;
    if n >= TRY_FROM {
        Vec::<u8>::new().try_reserve_exact(n).ok()?;
    }
    Some(vec![0; n])
}

/// What the runtime thread owns for one buffer.
pub(super) struct BufferState {
    pub(super) dims: usize,
    pub(super) extent: GridBox,
    pub(super) elem_size: usize,
    /// The element type as Rust names it, for divergence reports.
    pub(super) elem_type: &'static str,
    /// The device allocation: the bounding box of what this rank's commands touched so far (none before the
    /// first), grown with a copy when a command needs more ([`RankLoop::cover`]).
    pub(super) device: Option<DeviceAllocation>,
    /// The data the buffer was created with (every rank holds it): cells an allocation newly covers start from it.
    pub(super) init: Option<Arc<Vec<u8>>>,
    /// How often the allocation grew after its first, for the regrowth warning.
    pub(super) growths: u32,
}

/// After this many growths of one buffer's allocation, a rank warns (once per process: with several devices per
/// rank, every device's loop would otherwise repeat it; the statistics count every growth).
pub(super) const GROWTH_WARNING: u32 = 4;

/// Whether this process has warned about allocation growth.
static GROWTH_WARNED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

impl RankLoop<'_> {
    /// Makes `buffer`'s allocation cover `region` (a buffer's first allocation is the first region a command needs;
    /// one that does not cover a later region grows to the bounding box of both, copying what it held). The batch
    /// collected so far is submitted first, so that each operation of a batch names one allocation of its buffer.
    /// Cells an allocation newly covers start from the buffer's creation data (zeros without), which is what every
    /// rank holds of cells no task wrote; cells written elsewhere arrive by await-push before anything reads them.
    /// Call it before adding the command's own operations.
    pub(super) fn cover(&mut self, buffer: BufferId, region: &GridBox) -> Result<(), RuntimeError> {
        // (Not `ok_or`: that builds the error, and drops it, on every call.)
        let Some(state) = self.buffers.get(&buffer) else { return Err(RuntimeError::UnknownBuffer { buffer }) };
        let want = if region.is_empty() {
            if state.device.is_some() {
                return Ok(());
            }
            // An accessor that touches nothing still binds an allocation: its first cell.
            let lo = state.extent.min();
            GridBox::new(lo, [lo[0] + 1, lo[1] + 1, lo[2] + 1])
        } else {
            *region
        };
        if state.device.as_ref().is_some_and(|d| d.bounds().contains(&box3(&want))) {
            return Ok(());
        }
        // Look ahead: the queued commands' needs of this buffer join the allocation now, so that an access pattern
        // that widens over the next commands (a buffer read one to one, then with a halo) allocates once.
        let ahead = self.needs_ahead(buffer);
        self.flush()?;
        let state = self.buffers.get_mut(&buffer).expect("checked above");
        let old = state.device.take();
        let old_box = old.as_ref().map(|d| GridBox::new(d.bounds().min(), d.bounds().max()));
        let mut bounds = old_box.map_or(want, |o| o.bounding_box(&want));
        if let Some(ahead) = ahead {
            bounds = bounds.bounding_box(&ahead);
        }
        let tm = &self.tm;
        let new = self.gpu.allocate(box3(&bounds), state.elem_size).map_err(|error| RuntimeError::Allocation {
            buffer: tm.buffer_ident(buffer),
            bounds,
            error: Box::new(error),
        })?;
        self.stats.device_bytes += new.bytes() as u64;
        if let Some(old) = &old {
            self.stats.device_bytes -= old.bytes() as u64;
        }
        state.device = Some(new);
        let mut fresh = Vec::new();
        match old_box {
            Some(o) => bounds.subtract_into(&o, |b| fresh.push(b)),
            None => fresh.push(bounds),
        }
        if let Some(old) = old {
            state.growths += 1;
            self.stats.growths += 1;
            if state.growths == GROWTH_WARNING && !GROWTH_WARNED.swap(true, std::sync::atomic::Ordering::Relaxed) {
                // By its name too (`buffer B0 "u"`), as every message naming a buffer does.
                let ident = self.tm.buffer_ident(buffer);
                log::warn!(
                    "{ident}'s allocation on this rank grew {GROWTH_WARNING} times (now {bounds}); each growth \
                     copies it: access the whole region a rank will use early (or in larger pieces). This warning is \
                     given once; the statistics at shutdown count every growth"
                );
            }
            self.pending.push(GpuOp::Grow { buffer, old });
        }
        for b in fresh {
            let (bytes, src) = match &state.init {
                Some(init) => (Arc::clone(init), state.extent),
                None => (Arc::new(vec![0u8; b.area() * state.elem_size]), b),
            };
            let context = OpContext::InitialContents(buffer);
            self.pending.push(GpuOp::Upload {
                buffer,
                boxes: smallvec::smallvec![box3(&b)],
                bytes,
                bounds: src,
                context,
            });
        }
        Ok(())
    }

    /// Adds a download to the open batch; returns its slot.
    /// The bounding box of what the first `lookahead` queued commands will need of `buffer` on this rank (their
    /// executions' mapped regions, pushes, await-pushes), or `None`.
    pub(super) fn needs_ahead(&self, buffer: BufferId) -> Option<GridBox> {
        let state = self.buffers.get(&buffer)?;
        let mut bounds: Option<GridBox> = None;
        let mut add = |b: GridBox| {
            if !b.is_empty() {
                bounds = Some(bounds.map_or(b, |a| a.bounding_box(&b)));
            }
        };
        for cmd in self.commands.iter().take(self.lookahead) {
            match &cmd.kind {
                CommandKind::Execution { task, chunk, .. } => {
                    let Some(task) = self.tm.task(*task) else { continue };
                    // An empty chunk (a task without items) touches nothing.
                    for a in task.spec.accesses.iter().filter(|a| a.buffer == buffer && !chunk.is_empty()) {
                        if let Ok(region) = celer_graph::task::noting_buffer(buffer, || {
                            a.mapper.apply(chunk, &task.spec.range, task.spec.dims, &state.extent, state.dims)
                        }) {
                            add(region.bounding_box());
                        }
                    }
                }
                CommandKind::Push { transfer, targets } if transfer.buffer == buffer => {
                    for (_, region) in targets {
                        add(region.bounding_box());
                    }
                }
                CommandKind::AwaitPush { transfer, region } if transfer.buffer == buffer => add(region.bounding_box()),
                _ => {}
            }
        }
        bounds
    }

    /// Frees the dropped buffers that no command may use any more: those whose commands (every one generated
    /// before the drop) have all completed, and those dropped before task `reached` (a horizon or epoch reached),
    /// unless GPU work of this step not yet submitted uses them.
    pub(super) fn free_dropped(&mut self, reached: Option<TaskId>) {
        let watermark = self.watermark;
        let (buffers, stats, roots, known, reductions) =
            (&mut self.buffers, &mut self.stats, &mut self.block_roots, &mut self.known_results, &mut self.reductions);
        let mut hashes = self.divergence.as_mut().map(|d| &mut d.stream);
        let pending = &self.pending;
        let mut freed = Vec::new();
        self.dropped.retain(|&(id, before, commands_before)| {
            let unused = commands_before.0 <= watermark || reached.is_some_and(|r| before <= r);
            // GPU work of this step not yet submitted may still use it (the upload of a reduction's result, which
            // completes its command at once): it goes after a later step.
            let release = unused && !pending.iter().any(|op| op.uses(id));
            if release {
                roots.remove(&id);
                known.remove(&id);
                reductions.buffer_released(id);
                if let Some(h) = hashes.as_mut() {
                    h.buffer_released(id);
                }
                if let Some(device) = buffers.remove(&id).and_then(|s| s.device) {
                    stats.device_bytes -= device.bytes() as u64;
                    freed.push(device);
                }
            }
            !release
        });
        // Through the GPU layer, which lets go of the cached descriptor sets (and replayed command buffers) that
        // bind the allocation: dropped alone, its memory stayed with them until the set cache filled (4096 sets).
        for device in freed {
            self.gpu.free(device);
        }
    }
}
