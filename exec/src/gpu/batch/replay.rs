//! Replaying recorded command buffers for batches of dispatches only.
//!
//! Recording a dispatch costs the driver more host time than celer's own work for a tiny task (on an H100 host the
//! NVIDIA driver's recording was about two thirds of the runtime thread's time per kernel of a chain), while a loop
//! of dependent steps records the same dispatches over and over. So a batch starts by collecting its dispatches as a
//! *tape* instead of recording them. If every operation of the batch is an ordinary dispatch, [`Batch::submit`](super::Batch::submit)
//! cuts the tape into *runs*: repetitions of a block of up to four dispatches (same pipelines, descriptor sets, push
//! constants and group counts, the same barriers; a block of two is a double-buffered step), and submits, in one
//! `vkQueueSubmit`, one cached command buffer per piece of a run: a piece of 2^k repetitions (at most 64 dispatches)
//! is recorded once, the first time it is needed, and replayed afterwards. A tape whose pieces would not all begin
//! with a barrier (replayed, dispatches that may overlap would wait at the boundary) or that needs more than eight
//! of them is recorded. Any other operation (a copy, a checked or split dispatch, a timestamp) first records the
//! tape into the batch's own command buffer, which then records directly as before.
//!
//! **Ordering.** Every piece starts with a barrier (the batch's first with the one that orders the batch after
//! earlier ones, as a directly recorded batch's first barrier does). A pipeline barrier's first scope is every
//! command earlier in submission order on the queue, so barriers order the pieces of one submission as they would
//! the same commands in one command buffer.
//!
//! **Lifetime.** A cached command buffer keeps the descriptor set it binds (and through it the allocations) until
//! the cache lets it go: when an allocation it binds is freed ([`Gpu::free`](super::super::Gpu::free)) or the cache
//! is full, its buffers are retired and go back to the command pool once the last batch that submitted them completed.

use std::collections::HashMap;
use std::sync::Arc;

use ash::vk;
use smallvec::SmallVec;
use vulkano::descriptor_set::{DescriptorBindingResources, DescriptorSet};
use vulkano::device::Device;
use vulkano::VulkanObject;

use super::super::command_pool::CommandPool;
use super::super::GpuError;
use super::record::{cmd_barrier, cmd_dispatch_sig, Bound};
use super::{WORK_ACCESSES, WORK_STAGES, WORK_WRITES};

/// The most dispatches one cached command buffer holds.
const MAX_PIECE: usize = 64;

/// The longest block of dispatches a run repeats (2 covers double buffering: a step reads A and writes B, the next
/// reads B and writes A).
const MAX_PERIOD: usize = 4;

/// The most command buffers one replayed submission takes: each costs the device a little, so a batch that would
/// need more is recorded instead.
const MAX_PIECES: usize = 8;

/// Cached command buffers beyond this many retire the whole cache (a program whose batches never repeat).
const CACHE_LIMIT: usize = 256;

/// Whether descriptor set `set` binds `buffer` at any of its bindings.
fn binds(set: &DescriptorSet, buffer: vk::Buffer) -> bool {
    let resources = set.resources();
    set.layout().bindings().keys().filter_map(|&b| resources.binding(b)).any(|r| match r {
        DescriptorBindingResources::Buffer(infos) => {
            infos.iter().flatten().any(|i| i.buffer.buffer().handle() == buffer)
        }
        _ => false,
    })
}

/// One dispatch as collected: what it binds and pushes, and whether a barrier comes before it.
#[derive(Clone)]
pub(in super::super) struct Unit {
    pub(super) sig: Sig,
    pub(super) set: Option<Arc<DescriptorSet>>,
    pub(super) barrier: bool,
}

/// What makes two dispatches record the same commands.
#[derive(Clone, PartialEq, Eq, Hash)]
pub(in super::super) struct Sig {
    pub(super) pipeline: vk::Pipeline,
    pub(super) layout: vk::PipelineLayout,
    pub(super) set: vk::DescriptorSet,
    /// Inline up to 128 bytes, the push-constant space every Vulkan device offers (three accessors and six scalars
    /// push 30 words): most dispatches then collect without a heap allocation.
    pub(super) push: SmallVec<[u32; 32]>,
    pub(super) groups: [u32; 3],
}

/// The dispatches of a batch that has recorded nothing yet, and whether the next one needs a barrier first.
#[derive(Default)]
pub(in super::super) struct Tape {
    pub(super) units: Vec<Unit>,
    pub(super) barrier_pending: bool,
}

/// A piece: `count` repetitions of a block of dispatches, each with whether a barrier comes before it (the first's
/// flag is the one it has where the block repeats); the piece's first dispatch waits if `lead`.
#[derive(Clone, PartialEq, Eq, Hash)]
struct Key {
    block: SmallVec<[(Sig, bool); 2]>,
    lead: bool,
    count: u32,
}

struct Cached {
    command_buffer: vk::CommandBuffer,
    /// Keeps the bound sets, and the allocations they bind, alive as long as the buffer may run.
    sets: SmallVec<[Arc<DescriptorSet>; 2]>,
    /// The last batch that submitted it.
    last_use: u64,
}

/// A piece of a tape: `count` repetitions of the `period` units from `start`, the first waiting if `lead`.
#[derive(Clone, Copy)]
struct Piece {
    start: usize,
    period: usize,
    count: usize,
    lead: bool,
}

/// The command buffers recorded for pieces, and those let go but maybe still pending.
#[derive(Default)]
pub(in super::super) struct ReplayCache {
    cached: HashMap<Key, Cached>,
    /// `(buffer, last batch that submitted it)`: back to the pool once that batch completed.
    retired: Vec<(vk::CommandBuffer, u64)>,
    /// The pieces of the tape [`plan`](Self::plan) cut last.
    pieces: Vec<Piece>,
    /// Pieces recorded, and pieces submitted from the cache without recording (statistics and tests).
    pub(in super::super) recorded: u64,
    pub(in super::super) replayed: u64,
}

impl ReplayCache {
    /// Lets every cached buffer go (an allocation is being freed: a set the cache holds may bind it).
    pub(in super::super) fn retire_all(&mut self) {
        self.retired.extend(self.cached.drain().map(|(_, c)| (c.command_buffer, c.last_use)));
    }

    /// Lets go the cached buffers whose descriptor sets bind `buffer` (an allocation is being freed; the others
    /// stay, so a program that frees a temporary buffer every step keeps replaying its steps).
    pub(in super::super) fn retire_binding(&mut self, buffer: vk::Buffer) {
        let retired = &mut self.retired;
        self.cached.retain(|_, c| {
            let binds = c.sets.iter().any(|set| binds(set, buffer));
            if binds {
                retired.push((c.command_buffer, c.last_use));
            }
            !binds
        });
    }

    /// Gives the retired buffers whose last batch completed (every batch up to `completed`) back to `pool`.
    pub(in super::super) fn recycle(&mut self, completed: u64, pool: &mut CommandPool) {
        if self.retired.is_empty() {
            return;
        }
        self.retired.retain(|&(cb, last)| {
            if last <= completed {
                pool.recycle(cb, false);
                false
            } else {
                true
            }
        });
    }

    /// Cuts `tape` into pieces: repetitions of the block (of at most [`MAX_PERIOD`] dispatches) that covers the
    /// most dispatches from each point on. Returns whether replaying them keeps what recording the tape would do
    /// on the device: a piece boundary where the dispatch after it would not wait for the ones before it would
    /// serialise dispatches that may overlap, and more than [`MAX_PIECES`] pieces cost the device more than the
    /// recording saves; such a tape is recorded.
    pub(super) fn plan(&mut self, tape: &Tape) -> bool {
        let units = &tape.units;
        self.pieces.clear();
        let mut i = 0;
        while i < units.len() {
            let (mut period, mut reps) = (1, 1);
            for p in 1..=MAX_PERIOD.min(units.len() - i) {
                let r = repetitions(units, i, p);
                if r * p > reps * period {
                    (period, reps) = (p, r);
                }
            }
            // Where the block repeats, its first dispatch waits as it does in the second repetition.
            let steady = units.get(i + period).is_some_and(|u| u.barrier);
            let most = prev_power_of_two((MAX_PIECE / period).max(1));
            let mut lead = units[i].barrier || i == 0;
            let mut left = reps;
            while left > 0 {
                let count = prev_power_of_two(left.min(most));
                if !lead || self.pieces.len() == MAX_PIECES {
                    return false;
                }
                self.pieces.push(Piece { start: i, period, count, lead });
                left -= count;
                lead = steady;
            }
            i += period * reps;
        }
        !self.pieces.is_empty()
    }

    /// The command buffers replaying the pieces [`plan`](Self::plan) cut from `tape`, in order, for batch `id`;
    /// records the pieces not cached yet.
    pub(super) fn command_buffers(
        &mut self,
        tape: &Tape,
        id: u64,
        device: &Device,
        pool: &mut CommandPool,
        out: &mut Vec<vk::CommandBuffer>,
    ) -> Result<(), GpuError> {
        if self.cached.len() >= CACHE_LIMIT {
            self.retire_all();
        }
        let units = &tape.units;
        for n in 0..self.pieces.len() {
            let Piece { start, period, count, lead } = self.pieces[n];
            let steady = units.get(start + period).is_some_and(|u| u.barrier);
            let block = (0..period)
                .map(|j| {
                    let u = &units[start + j];
                    (u.sig.clone(), if j == 0 { steady } else { u.barrier })
                })
                .collect();
            let key = Key { block, lead, count: count as u32 };
            let cached = match self.cached.get_mut(&key) {
                Some(c) => {
                    self.replayed += 1;
                    c
                }
                None => {
                    let command_buffer = record_piece(&key, device, pool)?;
                    self.recorded += 1;
                    let sets = units[start..start + period].iter().filter_map(|u| u.set.clone()).collect();
                    self.cached.entry(key).or_insert(Cached { command_buffer, sets, last_use: id })
                }
            };
            cached.last_use = id;
            out.push(cached.command_buffer);
        }
        Ok(())
    }
}

/// How many times the block of `period` units at `start` repeats from there (at least 1): the same dispatches with
/// the same barriers, the block's first dispatch in repetitions after the first waiting as in the second.
fn repetitions(units: &[Unit], start: usize, period: usize) -> usize {
    let mut reps = 1;
    while start + (reps + 1) * period <= units.len() {
        let at = start + reps * period;
        let same = (0..period).all(|j| {
            let (a, b) = (&units[start + j], &units[at + j]);
            let flag =
                if j == 0 { reps == 1 || b.barrier == units[start + period].barrier } else { a.barrier == b.barrier };
            a.sig == b.sig && flag
        });
        if !same {
            break;
        }
        reps += 1;
    }
    reps
}

/// The largest power of two that is at most `n` (`n` ≥ 1).
fn prev_power_of_two(n: usize) -> usize {
    1 << (usize::BITS - 1 - n.leading_zeros())
}

/// Records the piece `key` into a reusable command buffer of `pool`.
fn record_piece(key: &Key, device: &Device, pool: &mut CommandPool) -> Result<vk::CommandBuffer, GpuError> {
    let cb = pool.begin_reusable()?;
    let fns = device.fns();
    let mut bound = Bound {
        pipeline: vk::Pipeline::null(),
        set: (vk::PipelineLayout::null(), vk::DescriptorSet::null()),
        push: None,
    };
    for r in 0..key.count {
        for (j, (sig, wait)) in key.block.iter().enumerate() {
            let wait = if r == 0 && j == 0 { key.lead } else { *wait };
            // SAFETY: `cb` is recording (begun above, ended below), outside a render pass. The pipeline and its
            // layout live in the Gpu's kernel cache as long as the Gpu, which outlives every submission of this
            // buffer (its Drop waits for the queue); each set was allocated for set layout 0 of its `layout`, and the
            // cache entry keeps it (and the allocations it binds) alive while the buffer may run. The push-constant
            // words are the ones the tape's dispatch checked against the layout's range (prepare_dispatch); the
            // group counts are within the device limits (a launch needing several dispatches never goes on a
            // tape). The barrier's stages and accesses are those of a compute queue, as in every batch.
            unsafe {
                if wait {
                    cmd_barrier(fns, cb, (WORK_STAGES, WORK_WRITES), (WORK_STAGES, WORK_ACCESSES));
                }
                cmd_dispatch_sig(fns, cb, sig, &mut bound);
            }
        }
    }
    if let Err(e) = pool.end(cb) {
        pool.recycle(cb, false);
        return Err(e);
    }
    Ok(cb)
}

#[cfg(test)]
mod tests {
    use super::prev_power_of_two;

    #[test]
    fn pieces_are_powers_of_two() {
        let got: Vec<usize> = [1, 2, 3, 5, 64, 100].iter().map(|&n| prev_power_of_two(n)).collect();
        assert_eq!(got, [1, 2, 2, 4, 64, 64]);
    }
}
