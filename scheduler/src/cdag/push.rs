//! Pushes of the data this rank produced to remote chunks that read it, and the exchange of reduction partials.

use celer_graph::{
    AccessMode, BufferId, Command, CommandId, CommandKind, DependencyKind, DependencyOrigin, GridBox, NodeId, Region,
    Task, TaskError, TransferId,
};
use smallvec::SmallVec;

use super::chunks::Chunking;
use super::state::{mark_stale, RankSet, WriterState};
use super::{CommandGraphGenerator, Deps};

impl CommandGraphGenerator {
    /// Pushes for `b`: the cells this rank originally produced that remote chunks of `task` read and do not have.
    pub(super) fn generate_push(
        &mut self,
        task: &Task,
        chunking: &Chunking,
        b: BufferId,
        global_consumed: &Region,
        me: usize,
    ) -> Result<(), TaskError> {
        if self.config.num_ranks == 1 {
            return Ok(());
        }
        // Only what this rank originally produced and somebody reads matters; look nowhere else. Which remote
        // chunks can read any of it follows from the hull of the owned data, before looking for the data itself
        // (a one-to-one read of what this rank wrote last needs nothing from it).
        let state = &self.buffers[&b];
        if state.owned_hull.is_empty() {
            return Ok(());
        }
        let n_chunks = chunking.len(self.config.num_ranks);
        let mut candidates = self.candidates(task, chunking, b, &state.owned_hull, Some(me), AccessMode::consumes);
        candidates.retain(|i| *i < n_chunks);
        if candidates.is_empty() {
            return Ok(());
        }
        // The owned boxes and, at the same index, their writers (what a push of them depends on).
        let mut owned_boxes: SmallVec<[GridBox; 4]> = SmallVec::new();
        let mut owned_writers: SmallVec<[CommandId; 4]> = SmallVec::new();
        let whole;
        let within = if Self::shaped(task, b) {
            global_consumed
        } else {
            whole = Region::from(state.extent);
            &whole
        };
        state.last_writer.for_each_in(within, |bx, w| {
            if let (true, Some(c)) = (w.is_original(), w.cmd) {
                owned_boxes.push(bx);
                owned_writers.push(c);
            }
        });
        debug_assert!(owned_boxes.iter().all(|o| state.owned_hull.contains(o)), "{b}: owned data outside its hull");
        if owned_boxes.is_empty() {
            return Ok(());
        }
        // The map's boxes are disjoint, so `owned_boxes` is the owned region without normalizing it: only its
        // intersections with what remote chunks read are needed.
        let mut targets = self.target_lists.take();
        for i in candidates {
            let consumed = self.chunk_regions(task, b, &chunking.chunk(i), i as u32)?.0;
            let need = consumed.intersect_boxes(&owned_boxes);
            if need.is_empty() {
                continue;
            }
            let state = self.buffers.get_mut(&b).unwrap();
            let send = state.sent_to.unsent(i as u32, &need);
            if send.is_empty() {
                continue;
            }
            state.sent_to.record(i as u32, &send);
            targets.push((NodeId(i as u64), send));
        }
        if targets.is_empty() {
            self.target_lists.give(&mut targets);
            return Ok(());
        }
        let mut deps = Deps::default();
        let state = &self.buffers[&b];
        for (_, r) in &targets {
            for (ob, &c) in owned_boxes.iter().zip(&owned_writers) {
                if r.intersects_box(ob) {
                    self.writer_dependency(state, ob, c, DependencyKind::True, &mut deps);
                }
            }
        }
        // The push reads what it sends. Sends to one or two neighbours are logged as they are; more targets log
        // their union, so a region every rank receives is one entry rather than one per rank.
        let read = match &targets[..] {
            [_] | [_, _] => None,
            _ => Some(Region::from_boxes(targets.iter().flat_map(|(_, r)| r.boxes().iter().copied()))),
        };
        let transfer = TransferId { task: task.id, buffer: b, reduction: None };
        let cmd = self.new_command(task.id, CommandKind::Push { transfer, targets }, deps);
        let state = self.buffers.get_mut(&b).unwrap();
        match read {
            Some(read) => {
                state.readers.add(cmd, read.boxes().iter().copied());
                state.read_windows.touched(read.bounding_box());
            }
            // Read back from the command the targets moved into (copying the boxes out first cost 1.5 % at 4 ranks).
            None => {
                let Some(Command { kind: CommandKind::Push { targets, .. }, .. }) = self.commands.get(cmd.0) else {
                    unreachable!("{cmd} was just inserted as a push");
                };
                state.readers.add(cmd, targets.iter().flat_map(|(_, r)| r.boxes().iter().copied()));
                for (_, r) in targets {
                    state.read_windows.touched(r.bounding_box());
                }
            }
        }
        Ok(())
    }

    /// Pushes partial results to the reading ranks, and on reading ranks awaits and combines them.
    pub(super) fn resolve_reduction(&mut self, task: &Task, chunking: &Chunking, b: BufferId) -> Result<(), TaskError> {
        let n = self.config.num_ranks;
        let pending = self.buffers[&b].pending_reduction.clone().expect("checked by caller");
        let mut readers: RankSet = RankSet::new();
        for i in 0..chunking.len(n) {
            let consumed = self.chunk_regions(task, b, &chunking.chunk(i), i as u32)?.0;
            if !consumed.is_empty() {
                readers.insert(i as u32);
            }
        }
        let extent = Region::from(self.buffers[&b].extent);
        let transfer = TransferId { task: task.id, buffer: b, reduction: Some(pending.id) };
        let has_partial = pending.contributors.contains(self.me);
        let partial_writer = self.buffers[&b].last_writer.entries()[0].1.cmd;
        // Every rank tells every other reading rank its partial result, or that it has none.
        let targets: Vec<(NodeId, Region)> = readers
            .iter()
            .filter(|&r| r != self.me)
            .map(|r| (NodeId(r as u64), if has_partial { extent.clone() } else { Region::new() }))
            .collect();
        if !targets.is_empty() {
            let mut deps = Deps::default();
            if has_partial {
                if let Some(c) = partial_writer {
                    deps.add(c, DependencyKind::True, DependencyOrigin::Dataflow);
                }
            }
            self.add_epoch_dependency(&mut deps);
            let cmd = self.new_command(task.id, CommandKind::Push { transfer, targets }, deps);
            if has_partial {
                let state = self.buffers.get_mut(&b).unwrap();
                state.readers.add(cmd, extent.boxes().iter().copied());
                state.read_windows.touched(extent.bounding_box());
            }
        }
        let reads_here = readers.contains(self.me);
        if reads_here {
            let mut deps = Deps::default();
            self.write_dependencies(b, &extent, &mut deps);
            self.add_epoch_dependency(&mut deps);
            let await_cmd = if n > 1 {
                Some(self.new_command(task.id, CommandKind::AwaitPush { transfer, region: extent.clone() }, deps))
            } else {
                None
            };
            let mut deps = Deps::default();
            if let Some(a) = await_cmd {
                deps.add(a, DependencyKind::True, DependencyOrigin::Dataflow);
            }
            if has_partial {
                if let Some(c) = partial_writer {
                    deps.add(c, DependencyKind::True, DependencyOrigin::Dataflow);
                }
            }
            self.add_epoch_dependency(&mut deps);
            let kind = CommandKind::Reduction { reduction: pending.id, buffer: b, has_local_contribution: has_partial };
            let cmd = self.new_command(task.id, kind, deps);
            let state = self.buffers.get_mut(&b).unwrap();
            // With every rank reading, everyone holds the result and nobody pushes it. Otherwise the first reader
            // owns it (it serves later readers elsewhere), and knows which ranks combined it themselves.
            let owner = readers.len() < n && readers.iter().next() == Some(self.me);
            let replicated = !owner;
            state.write(&extent, WriterState { cmd: Some(cmd), fresh: true, replicated });
            state.readers.clear(&extent);
            state.sent_to.clear(&extent);
            if owner {
                state.owned_hull = state.extent;
                for r in readers.iter().filter(|&r| r != self.me) {
                    state.sent_to.record(r, &extent);
                }
            }
        } else {
            mark_stale(self.buffers.get_mut(&b).unwrap(), &extent);
        }
        self.buffers.get_mut(&b).unwrap().pending_reduction = None;
        Ok(())
    }
}
