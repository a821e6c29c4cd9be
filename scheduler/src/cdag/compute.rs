//! The commands of one compute task on this rank: overlap checks, await-pushes, the local chunk, and stale marking.

use celer_graph::{
    AccessMode, BufferId, Command, CommandId, CommandKind, DependencyKind, DependencyOrigin, GridBox, NodeId,
    RangeMapper, Region, Task, TaskError, TaskErrorKind, TaskKind, TransferId,
};
use smallvec::SmallVec;

use super::state::{mark_stale, PendingReduction, RankSet, WriterState};
use super::{CommandGraphGenerator, Deps};

impl CommandGraphGenerator {
    pub(super) fn generate_compute(&mut self, task: &Task) -> Result<(), TaskError> {
        let chunking = self.chunking(task);
        let n_chunks = chunking.len(self.config.num_ranks);
        let me = self.me as usize;
        let local_chunk = (me < n_chunks).then(|| chunking.chunk(me));

        // Local requirements per buffer, in the storage of the previous task's (a kernel binding many buffers would
        // otherwise grow a new list, twice, for every task).
        let mut local = std::mem::take(&mut self.local_scratch);
        local.clear();
        let whole = local_chunk.as_ref() == Some(&task.spec.range);
        for r in &task.regions {
            let b = r.buffer;
            let (c, p) = match &local_chunk {
                // What `chunk_regions` returns for a chunk that is the whole index space, without looking the
                // buffer's regions up again.
                Some(_) if whole && (me == 0 || !task.spec.reductions.iter().any(|red| red.buffer == b)) => {
                    (r.consumed.clone(), r.produced.clone())
                }
                Some(chunk) => self.chunk_regions(task, b, chunk, self.me)?,
                None => (Region::new(), Region::new()),
            };
            local.push((b, c, p));
        }
        let is_reduction = |b: BufferId| task.spec.reductions.iter().any(|r| r.buffer == b);

        // Overlapping writes between ranks (reductions write partial results, which is their point). Chunks are
        // disjoint, so buffers written only one to one cannot overlap: no need to look.
        let disjoint_writes = |b: BufferId| {
            task.spec
                .accesses
                .iter()
                .filter(|a| a.buffer == b && a.mode.produces())
                .all(|a| matches!(a.mapper, RangeMapper::OneToOne))
        };
        if n_chunks > 1 {
            for (b, _, produced) in
                local.iter().filter(|l| !l.2.is_empty() && !is_reduction(l.0) && !disjoint_writes(l.0))
            {
                for i in self.candidates(task, &chunking, *b, &produced.bounding_box(), Some(me), AccessMode::produces)
                {
                    let (_, other) = self.chunk_regions(task, *b, &chunking.chunk(i), i as u32)?;
                    let overlap = other.intersection(produced);
                    if !overlap.is_empty() {
                        let (first, second) = (NodeId(me.min(i) as u64), NodeId(me.max(i) as u64));
                        return Err(TaskError {
                            task: task.ident(),
                            inner: Box::new(TaskErrorKind::OverlappingWrite {
                                buffer: self.buffers[b].ident(*b),
                                region: overlap,
                                first,
                                second,
                            }),
                        });
                    }
                }
            }
        }

        // Pending reductions that this task reads (none to look up before the first reduction over several chunks).
        if self.reductions_pending {
            for r in &task.regions {
                if !r.consumed.is_empty() && self.buffers[&r.buffer].pending_reduction.is_some() {
                    self.resolve_reduction(task, &chunking, r.buffer)?;
                }
            }
        }

        // Pushes: data this rank produced that remote chunks read.
        for r in &task.regions {
            if r.consumed.is_empty() {
                continue;
            }
            self.generate_push(task, &chunking, r.buffer, &r.consumed, me)?;
        }

        // Await-pushes: what local chunks read that is stale here. The same pass collects the local chunk's true
        // dependencies on the fresh part (the await-push itself covers the rest).
        let mut exec_deps = Deps::default();
        for (b, consumed, _) in &local {
            if consumed.is_empty() {
                continue;
            }
            let state = &self.buffers[b];
            let mut missing: SmallVec<[GridBox; 4]> = SmallVec::new();
            // The stale cells' last local writers: the await-push overwrites them (output dependencies, as
            // `write_dependencies` would find them, without scanning the map again).
            let mut overwritten: SmallVec<[(GridBox, CommandId); 4]> = SmallVec::new();
            state.last_writer.for_each_in(consumed, |bx, w| {
                if !w.fresh {
                    missing.push(bx);
                    if let Some(c) = w.cmd {
                        overwritten.push((bx, c));
                    }
                } else if let Some(c) = w.cmd {
                    self.writer_dependency(state, &bx, c, DependencyKind::True, &mut exec_deps);
                }
            });
            if missing.is_empty() {
                continue;
            }
            let region = Region::from_boxes(missing);
            let mut deps = Deps::default();
            state.readers.for_each_in(&region, |c| self.reader_dependency(state, &region, c, &mut deps));
            for (bx, c) in overwritten {
                self.writer_dependency(state, &bx, c, DependencyKind::Output, &mut deps);
            }
            let transfer = TransferId { task: task.id, buffer: *b, reduction: None };
            self.add_epoch_dependency(&mut deps);
            let cmd = self.new_command(task.id, CommandKind::AwaitPush { transfer, region }, deps);
            exec_deps.add(cmd, DependencyKind::True, DependencyOrigin::Dataflow);
            // The region now lives in the command; borrow it from there rather than keeping a copy.
            let Some(Command { kind: CommandKind::AwaitPush { region, .. }, .. }) = self.commands.get(cmd.0) else {
                unreachable!("{cmd} was just inserted as an await-push");
            };
            let state = self.buffers.get_mut(b).unwrap();
            state.write(region, WriterState { cmd: Some(cmd), fresh: true, replicated: true });
            state.readers.clear(region);
            state.sent_to.clear(region);
        }

        // The local chunk. A fence's empty chunk (a device other than its process's first, which gathers the
        // fenced data for the process) has no command: that device reads nothing back.
        if let Some(chunk) = local_chunk.filter(|c| !(c.is_empty() && task.kind() == TaskKind::Fence)) {
            let mut deps = exec_deps;
            for (b, consumed, produced) in &local {
                // A chunk writing only what it read already depends on every last writer of it: on the fresh ones
                // directly, and on the await-push that replaced the stale ones. Only its readers are left to find.
                if consumed == produced {
                    self.reader_dependencies(*b, produced, &mut deps);
                } else {
                    self.write_dependencies(*b, produced, &mut deps);
                }
            }
            for (ho, _) in &task.spec.side_effects {
                if let Some(&c) = self.host_objects.get(ho) {
                    deps.add(c, DependencyKind::True, DependencyOrigin::SideEffect);
                }
            }
            if let TaskKind::Collective(g) = task.kind() {
                if let Some(&c) = self.collective_groups.get(&g) {
                    deps.add(c, DependencyKind::True, DependencyOrigin::CollectiveGroupSerialization);
                }
            }
            self.add_epoch_dependency(&mut deps);
            let kind = match task.kind() {
                TaskKind::Fence => CommandKind::Fence { task: task.id },
                _ => CommandKind::Execution {
                    task: task.id,
                    chunk,
                    initializes_reductions: self.me == 0
                        && task.spec.reductions.iter().any(|r| r.include_current_value),
                },
            };
            let cmd = self.new_command(task.id, kind, deps);
            for (ho, _) in &task.spec.side_effects {
                self.host_objects.insert(*ho, cmd);
            }
            if let TaskKind::Collective(g) = task.kind() {
                self.collective_groups.insert(g, cmd);
            }
            for (i, (b, consumed, produced)) in local.iter_mut().enumerate() {
                let global = if produced.is_empty() {
                    None
                } else {
                    self.written_elsewhere(task, &chunking, i, n_chunks, true)?
                };
                let state = self.buffers.get_mut(b).unwrap();
                // A read of cells this command also writes ends with its own write: no reader to remember.
                if !consumed.is_empty() && consumed != produced {
                    state.readers.add(cmd, consumed.boxes().iter().copied());
                    state.read_windows.touched(consumed.bounding_box());
                }
                if !produced.is_empty() {
                    let value = WriterState { cmd: Some(cmd), fresh: true, replicated: false };
                    if self.config.num_ranks > 1 {
                        state.owned_hull = state.owned_hull.bounding_box(&produced.bounding_box());
                    }
                    match global {
                        // Written here, and the rest of what the task writes is stale here (see `mark_stale`).
                        Some(global) => {
                            state
                                .last_writer
                                .update_split(produced, value, &global, |w| WriterState { fresh: false, ..*w });
                            state.write_windows.touched(produced.bounding_box());
                            state.sent_to.clear(&global);
                        }
                        None => {
                            state.write(produced, value);
                            state.sent_to.clear(produced);
                        }
                    }
                    state.readers.clear(produced);
                }
            }
        }

        // Cells other ranks wrote are stale here; reductions over several chunks stay pending.
        for (i, (b, _, local_produced)) in local.iter().enumerate() {
            if task.regions[i].produced.is_empty() {
                continue;
            }
            if let Some(red) = task.spec.reductions.iter().find(|r| r.buffer == *b) {
                let state = self.buffers.get_mut(b).unwrap();
                if n_chunks > 1 {
                    state.pending_reduction =
                        Some(PendingReduction { id: red.id, contributors: RankSet::below(n_chunks as u32) });
                    self.reductions_pending = true;
                    if local_produced.is_empty() {
                        mark_stale(state, &Region::from(state.extent));
                    }
                } else {
                    state.pending_reduction = None;
                    if local_produced.is_empty() {
                        mark_stale(state, &Region::from(state.extent));
                    }
                }
                continue;
            }
            if n_chunks == 1 && local_chunk.is_some() {
                // The only chunk is ours: nothing was written elsewhere.
                self.buffers.get_mut(b).unwrap().pending_reduction = None;
                continue;
            }
            // Overwriting a pending reduction's buffer discards the reduction.
            self.buffers.get_mut(b).unwrap().pending_reduction = None;
            // Where this rank wrote some of it, the local chunk's update above already marked the rest stale.
            if local_produced.is_empty() {
                if let Some(global) = self.written_elsewhere(task, &chunking, i, n_chunks, local_chunk.is_some())? {
                    mark_stale(self.buffers.get_mut(b).unwrap(), &global);
                }
            }
        }
        self.local_scratch = local;
        Ok(())
    }
}
