//! How a task's index space is divided among ranks, and what each chunk of it reads and writes of a buffer.

use std::borrow::Cow;

use super::{Candidates, CommandGraphGenerator};
use crate::split::ChunkGrid;
use celer_graph::task::noting_buffer;
use celer_graph::{
    AccessMode, AccessRegions, BufferId, GridBox, RangeMapper, Region, Task, TaskError, TaskErrorKind, TaskKind,
};

/// How a task's index space is divided among ranks.
pub(super) enum Chunking {
    /// Chunk `i` of the grid runs on rank `i`.
    Grid(ChunkGrid),
    /// Every process runs the same box on its device 0 (node `p * devices`), the other nodes' chunks are empty:
    /// a fence's data goes to every process once. With several devices per process, device 0 gathers the fenced
    /// region (the others push it the parts they hold the newest data of) and alone reads it back.
    Replicated {
        /// The box each process runs.
        range: GridBox,
        /// Nodes per process.
        devices: usize,
    },
    /// One empty chunk, on rank 0: a task without items that reduces (it writes the reduction's identity, or keeps
    /// the current value).
    Empty,
    /// A collective host task over processes that drive `devices` nodes each: item `p` runs on node `p * devices`
    /// (the process's device 0); the other nodes' chunks are empty.
    PerProcess {
        /// Nodes per process.
        devices: usize,
        /// Processes (the task's items).
        processes: usize,
    },
    /// A host task with side effects over processes that drive `devices` nodes each: chunk `p` of `grid` (split
    /// over the processes) runs on node `p * devices`, the other nodes' chunks are empty, so that each process's
    /// side effects run on one node's loop, in submission order.
    GridPerProcess {
        /// The index space split over the processes.
        grid: ChunkGrid,
        /// Nodes per process.
        devices: usize,
    },
}

impl Chunking {
    pub(super) fn len(&self, num_ranks: usize) -> usize {
        match self {
            Chunking::Grid(g) => g.len(),
            Chunking::Replicated { .. } | Chunking::PerProcess { .. } | Chunking::GridPerProcess { .. } => num_ranks,
            Chunking::Empty => 1,
        }
    }

    pub(super) fn chunk(&self, i: usize) -> GridBox {
        match self {
            Chunking::Grid(g) => g.chunk(i),
            Chunking::Replicated { range, devices } => {
                if i.is_multiple_of(*devices) {
                    *range
                } else {
                    GridBox::EMPTY
                }
            }
            Chunking::Empty => GridBox::EMPTY,
            Chunking::PerProcess { devices, processes } => match (i % devices, i / devices) {
                (0, p) if p < *processes => GridBox::d1(p, p + 1),
                _ => GridBox::EMPTY,
            },
            Chunking::GridPerProcess { grid, devices } => match (i % devices, i / devices) {
                (0, p) if p < grid.len() => grid.chunk(p),
                _ => GridBox::EMPTY,
            },
        }
    }
}

impl CommandGraphGenerator {
    pub(super) fn chunking(&self, task: &Task) -> Chunking {
        let n = self.config.num_ranks;
        match task.kind() {
            TaskKind::Fence => {
                Chunking::Replicated { range: task.spec.range, devices: self.config.devices_per_rank.max(1) }
            }
            TaskKind::Once => Chunking::Grid(ChunkGrid::new(task.spec.range, 1, task.spec.hint, [1; 3])),
            // One item per process (the task graph made the range so); with several devices per process, each
            // process's item runs on its device 0.
            TaskKind::Collective(_) => match task.spec.range.range()[0] {
                processes if processes >= n || processes == 0 || !n.is_multiple_of(processes) => {
                    Chunking::Grid(ChunkGrid::new(GridBox::d1(0, n), n, Default::default(), [1; 3]))
                }
                processes => Chunking::PerProcess { devices: n / processes, processes },
            },
            // No items: no chunk at all (no command on any rank), unless a reduction needs its result written.
            _ if task.spec.range.is_empty() && !task.spec.reductions.is_empty() => Chunking::Empty,
            // One host object instance per process: the devices of one process would run their chunks' side
            // effects on it in whatever order their loops reach them.
            TaskKind::HostCompute if !task.spec.side_effects.is_empty() && self.config.devices_per_rank > 1 => {
                let devices = self.config.devices_per_rank;
                let processes = (n / devices).max(1);
                let grid = ChunkGrid::new(task.spec.range, processes, task.spec.hint, task.spec.granularity);
                Chunking::GridPerProcess { grid, devices }
            }
            _ => Chunking::Grid(ChunkGrid::new(task.spec.range, n, task.spec.hint, task.spec.granularity)),
        }
    }

    /// What chunk `chunk` (run by rank `rank`) consumes and produces of `buffer`.
    pub(super) fn chunk_regions(
        &self,
        task: &Task,
        buffer: BufferId,
        chunk: &GridBox,
        rank: u32,
    ) -> Result<(Region, Region), TaskError> {
        // A chunk that is the whole index space (one rank, a task of one chunk, a fence) touches what the task graph
        // already computed for the task, except where a reduction reads its current value on rank 0 only.
        if *chunk == task.spec.range && (rank == 0 || !task.spec.reductions.iter().any(|r| r.buffer == buffer)) {
            if let Some(r) = task.regions.iter().find(|r| r.buffer == buffer) {
                return Ok((r.consumed.clone(), r.produced.clone()));
            }
        }
        let state = &self.buffers[&buffer];
        let mut acc = AccessRegions::new(buffer);
        // An empty chunk has no items: its range mappers are not applied, it touches nothing.
        let items = !chunk.is_empty();
        for a in task.spec.accesses.iter().filter(|a| items && a.buffer == buffer) {
            let r = noting_buffer(buffer, || {
                a.mapper.apply(chunk, &task.spec.range, task.spec.dims, &state.extent, state.dims)
            })
            .map_err(|e| TaskError {
                task: task.ident(),
                inner: Box::new(TaskErrorKind::Mapper { buffer: state.ident(buffer), mode: a.mode.name(), error: e }),
            })?;
            if let RangeMapper::Custom { reach, .. } = &a.mapper {
                if !Region::from(state.extent).contains(&r) {
                    return Err(TaskError {
                        task: task.ident(),
                        inner: Box::new(TaskErrorKind::OutOfBounds {
                            buffer: state.ident(buffer),
                            mapper: a.mapper.name(),
                            outside: r.difference(&Region::from(state.extent)),
                            region: r,
                            extent: state.shape,
                        }),
                    });
                }
                // A declared reach decides which remote chunks this rank evaluates: check it on the chunk this
                // rank runs, which must lie within the reach of the cells it touches.
                if reach.is_some() && rank == self.me && !r.is_empty() {
                    // Through `RangeMapper::reach`, which notes a panic of the closure.
                    let cells = r.bounding_box();
                    let declared = noting_buffer(buffer, || a.mapper.reach(&cells, &task.spec.range, &state.extent));
                    if !declared.contains(chunk) {
                        return Err(TaskError {
                            task: task.ident(),
                            inner: Box::new(TaskErrorKind::MapperReach {
                                buffer: state.ident(buffer),
                                mapper: a.mapper.name(),
                                chunk: *chunk,
                                cells: r.bounding_box(),
                                declared,
                            }),
                        });
                    }
                }
            }
            acc.add(a.mode, r);
        }
        for red in task.spec.reductions.iter().filter(|r| r.buffer == buffer) {
            acc.produced = Region::from(state.extent);
            if red.include_current_value && rank == 0 {
                acc.consumed = Region::from(state.extent);
            }
        }
        Ok((acc.consumed, acc.produced))
    }

    /// Appends to `out` what the custom range mappers of `task` give for its sampled chunks
    /// ([`sampled_chunks`](crate::divergence::sampled_chunks): the same chunks on every rank), for the divergence
    /// check; nothing for a task without custom mappers, at the cost of a look at its accesses. A mapper that cannot
    /// be applied gives `None` (generating the task's commands reports why); one that panics unwinds as it would
    /// there, its panic noted with the buffer.
    pub fn sample_custom_mappers(&self, task: &Task, out: &mut Vec<crate::divergence::MapperSample>) {
        if !task.spec.accesses.iter().any(|a| matches!(a.mapper, RangeMapper::Custom { .. })) {
            return;
        }
        let chunking = self.chunking(task);
        let n_chunks = chunking.len(self.config.num_ranks);
        for c in crate::divergence::sampled_chunks(task.id, n_chunks) {
            let chunk = chunking.chunk(c);
            for (access, a) in task.spec.accesses.iter().enumerate() {
                let (RangeMapper::Custom { .. }, Some(state)) = (&a.mapper, self.buffers.get(&a.buffer)) else {
                    continue;
                };
                let region = noting_buffer(a.buffer, || {
                    a.mapper.apply(&chunk, &task.spec.range, task.spec.dims, &state.extent, state.dims)
                });
                out.push(crate::divergence::MapperSample {
                    access,
                    buffer: a.buffer,
                    mapper: a.mapper.name(),
                    mode: a.mode.name(),
                    chunk,
                    region: region.ok(),
                });
            }
        }
    }

    /// A box of kernel indices outside which no chunk's accesses of `buffer` (with modes `filter`) can touch `r`.
    fn reach(&self, task: &Task, buffer: BufferId, r: &GridBox, filter: impl Fn(AccessMode) -> bool) -> GridBox {
        let mut out = GridBox::EMPTY;
        for a in task.spec.accesses.iter().filter(|a| a.buffer == buffer && filter(a.mode)) {
            // Only the even split's reach depends on the buffer's extent: the others cost no lookup.
            let extent = match a.mapper {
                RangeMapper::EvenSplit { .. } => self.buffers[&buffer].extent,
                _ => GridBox::EMPTY,
            };
            let b = noting_buffer(buffer, || a.mapper.reach(r, &task.spec.range, &extent));
            out = out.bounding_box(&b);
        }
        if task.spec.reductions.iter().any(|red| red.buffer == buffer) {
            out = task.spec.range;
        }
        out
    }

    /// Whether every access of `buffer` uses a mapper whose union over chunks equals its image of the whole range
    /// (the built-in ones, and custom ones that declared a reach and with it that they are additive).
    pub(super) fn shaped(task: &Task, buffer: BufferId) -> bool {
        task.spec
            .accesses
            .iter()
            .filter(|a| a.buffer == buffer)
            .all(|a| !matches!(a.mapper, RangeMapper::Custom { reach: None, .. }))
    }

    /// Chunk indices (other than `skip`) that may touch the box `bbox` of `buffer` through accesses passing `filter`.
    pub(super) fn candidates(
        &self,
        task: &Task,
        chunking: &Chunking,
        buffer: BufferId,
        bbox: &GridBox,
        skip: Option<usize>,
        filter: impl Fn(AccessMode) -> bool,
    ) -> Candidates {
        let mut out = Candidates::new();
        match chunking {
            Chunking::Replicated { devices, .. } => {
                out.extend((0..self.config.num_ranks).step_by(*devices).filter(|&i| Some(i) != skip))
            }
            Chunking::Empty => out.extend((skip != Some(0)).then_some(0)),
            Chunking::PerProcess { devices, processes } => {
                let items = self.reach(task, buffer, bbox, filter).intersection(&GridBox::d1(0, *processes));
                if !items.is_empty() {
                    let nodes = (items.min()[0]..items.max()[0]).map(|p| p * devices);
                    out.extend(nodes.filter(|&i| Some(i) != skip));
                }
            }
            Chunking::Grid(g) => g.for_each_intersecting(&self.reach(task, buffer, bbox, filter), |i| {
                if Some(i) != skip {
                    out.push(i);
                }
            }),
            Chunking::GridPerProcess { grid, devices } => {
                grid.for_each_intersecting(&self.reach(task, buffer, bbox, filter), |p| {
                    if Some(p * devices) != skip {
                        out.push(p * devices);
                    }
                })
            }
        }
        out
    }

    /// What the whole task writes of its `i`th buffer, when other ranks write some of it (`None` when nothing is
    /// written, the only chunk is local, or the buffer is reduced: partial results stay pending). The local chunk's
    /// write and "the rest is stale here" then become one region-map update, with no difference computed.
    pub(super) fn written_elsewhere<'t>(
        &self,
        task: &'t Task,
        chunking: &Chunking,
        i: usize,
        n_chunks: usize,
        has_local_chunk: bool,
    ) -> Result<Option<Cow<'t, Region>>, TaskError> {
        let r = &task.regions[i];
        if r.produced.is_empty()
            || (n_chunks == 1 && has_local_chunk)
            || task.spec.reductions.iter().any(|red| red.buffer == r.buffer)
        {
            return Ok(None);
        }
        if Self::shaped(task, r.buffer) {
            return Ok(Some(Cow::Borrowed(&r.produced)));
        }
        let mut all = Region::new();
        for c in 0..n_chunks {
            let (_, p) = self.chunk_regions(task, r.buffer, &chunking.chunk(c), c as u32)?;
            all.absorb(p);
        }
        Ok(Some(Cow::Owned(all)))
    }
}
