//! Checks over a recorded [`Simulation`]: a transfer-consistency checker and a symbolic executor.
//!
//! The symbolic executor replays every rank's commands with buffers whose cells hold the id of the task that last
//! wrote them. Pushes copy ids to their targets, await-pushes must receive exactly what they wait for, and every
//! cell each execution command reads must hold the same id as in the one-rank run of the same program. Along the
//! way it checks that no region reaches a rank twice without being rewritten in between, and that each command
//! depends on the local commands that last wrote (or, for writes, last read) what it touches.
//!
//! The replay runs task by task: for each task, all ranks' pushes, then await-pushes, then reductions, then
//! execution commands. That is a valid order because a task's pushes only carry data produced before the task.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

use celer_graph::{BufferId, Command, CommandId, CommandKind, GridBox, NodeId, Task, TaskId, TaskKind, TransferId};
use hashbrown::HashMap;

use crate::sim::Simulation;

/// A cell of a buffer, as a linear index over its extent.
type Cell = usize;

/// Per buffer: cell values (the writing task) of one rank.
#[derive(Clone)]
struct RankMemory {
    cells: HashMap<BufferId, Vec<Option<TaskId>>>,
    /// Local command that last wrote each cell (for dependency checks).
    writer: HashMap<BufferId, Vec<Option<CommandId>>>,
    /// Local commands that read each cell since its last local write.
    readers: HashMap<BufferId, Vec<Vec<CommandId>>>,
}

fn cells_of(b: &GridBox, extent: &GridBox) -> impl Iterator<Item = Cell> {
    let (min, max) = (b.min(), b.max());
    let (e, r) = (extent.min(), extent.range());
    let empty = b.is_empty();
    (min[0]..if empty { min[0] } else { max[0] }).flat_map(move |x| {
        (min[1]..max[1])
            .flat_map(move |y| (min[2]..max[2]).map(move |z| ((x - e[0]) * r[1] + (y - e[1])) * r[2] + (z - e[2])))
    })
}

/// Cell values carried by one push to one target.
type Payload = BTreeMap<Cell, Option<TaskId>>;

/// What one run observed: for each (task, buffer), the id every read cell held.
pub type Reads = BTreeMap<(TaskId, BufferId), BTreeMap<Cell, Option<TaskId>>>;

/// An inconsistency the symbolic executor found: the violated rule, naming the rank, command, task and buffer.
#[derive(Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct CheckError(String);

/// The same sentence as `Display`, so that `fn main() -> Result<(), Box<dyn Error>>` prints a readable message.
impl std::fmt::Debug for CheckError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

/// Replays a recorded simulation and returns what every read saw, or the first inconsistency found.
///
/// # Errors
/// A [`CheckError`] describing the violated rule, naming the rank, command, task and buffer.
pub fn replay(sim: &Simulation) -> Result<Reads, CheckError> {
    replay_inner(sim).map_err(CheckError)
}

fn replay_inner(sim: &Simulation) -> Result<Reads, String> {
    let n = sim.num_ranks();
    if sim.ranks.len() != n {
        return Err(format!("replay needs every rank simulated ({} of {n})", sim.ranks.len()));
    }
    let extents: HashMap<BufferId, (usize, GridBox)> =
        sim.buffers().iter().map(|&(id, dims, extent, _)| (id, (dims, extent))).collect();
    let mut mem: Vec<RankMemory> = (0..n)
        .map(|_| RankMemory {
            cells: sim
                .buffers()
                .iter()
                .map(|&(id, _, e, host)| (id, vec![host.then_some(TaskId(0)); e.area()]))
                .collect(),
            writer: sim
                .buffers()
                .iter()
                .map(|&(id, _, e, host)| (id, vec![host.then_some(CommandId(0)); e.area()]))
                .collect(),
            readers: sim.buffers().iter().map(|&(id, _, e, _)| (id, vec![Vec::new(); e.area()])).collect(),
        })
        .collect();
    // Commands of each rank grouped by task, in generation order.
    let mut by_task: Vec<BTreeMap<TaskId, Vec<&Command>>> = vec![BTreeMap::new(); n];
    let mut by_id: Vec<HashMap<CommandId, &Command>> = vec![HashMap::new(); n];
    for (r, g) in sim.ranks.iter().enumerate() {
        for c in g.records() {
            by_task[r].entry(c.task).or_default().push(c);
            by_id[r].insert(c.id, c);
        }
    }
    let tasks: BTreeMap<TaskId, &Task> = sim.recorded_tasks().iter().map(|t| (t.id, t)).collect();
    let mut reads: Reads = BTreeMap::new();
    // Cells each rank received since their last global rewrite: (target rank, buffer) → cells.
    let mut received: HashMap<(usize, BufferId), BTreeSet<Cell>> = HashMap::new();
    // Which task produced the partial results of each pending reduction.
    let mut reduction_task: HashMap<celer_graph::ReductionId, TaskId> = HashMap::new();

    let precedes = |r: usize, earlier: CommandId, later: &Command| -> bool {
        later.dependencies.iter().any(|d| {
            d.command == earlier
                || (d.command > earlier
                    && matches!(
                        by_id[r].get(&d.command).map(|c| &c.kind),
                        Some(CommandKind::Horizon { .. } | CommandKind::Epoch { .. })
                    ))
        })
    };

    for (&tid, task) in &tasks {
        let empty = Vec::new();
        // 1. Pushes.
        let mut messages: HashMap<(TransferId, usize), Vec<(usize, Payload)>> = HashMap::new();
        for r in 0..n {
            for c in by_task[r].get(&tid).unwrap_or(&empty) {
                if let CommandKind::Push { transfer, targets } = &c.kind {
                    let (_, extent) = extents[&transfer.buffer];
                    for (target, region) in targets {
                        let t = target.0 as usize;
                        let mut payload = BTreeMap::new();
                        for bx in region.boxes() {
                            for cell in cells_of(bx, &extent) {
                                if let Some(w) = mem[r].writer[&transfer.buffer][cell] {
                                    if !precedes(r, w, c) {
                                        return Err(format!(
                                            "N{r} {}: push of {} reads cell {cell} written by {w}, but does not depend on it",
                                            c.id, transfer.buffer
                                        ));
                                    }
                                }
                                payload.insert(cell, mem[r].cells[&transfer.buffer][cell]);
                                if transfer.reduction.is_none()
                                    && !received.entry((t, transfer.buffer)).or_default().insert(cell)
                                {
                                    return Err(format!(
                                        "N{r} {}: cell {cell} of {} is pushed to N{t} again without a rewrite",
                                        c.id, transfer.buffer
                                    ));
                                }
                                mem[r].readers.get_mut(&transfer.buffer).unwrap()[cell].push(c.id);
                            }
                        }
                        messages.entry((*transfer, t)).or_default().push((r, payload));
                    }
                }
            }
        }
        // 2. Await-pushes: exactly what was sent, from the expected senders.
        let mut consumed_messages = 0;
        for r in 0..n {
            for c in by_task[r].get(&tid).unwrap_or(&empty) {
                if let CommandKind::AwaitPush { transfer, region } = &c.kind {
                    let (_, extent) = extents[&transfer.buffer];
                    let msgs = messages.get(&(*transfer, r)).cloned().unwrap_or_default();
                    consumed_messages += 1;
                    let mut got: BTreeMap<Cell, Option<TaskId>> = BTreeMap::new();
                    for (_, m) in &msgs {
                        for (&cell, &v) in m {
                            if got.insert(cell, v).is_some() && transfer.reduction.is_none() {
                                return Err(format!("N{r} {}: cell {cell} of {transfer} arrives twice", c.id));
                            }
                        }
                    }
                    let want: BTreeSet<Cell> = region.boxes().iter().flat_map(|b| cells_of(b, &extent)).collect();
                    if transfer.reduction.is_some() {
                        let senders: BTreeSet<usize> = msgs.iter().map(|(s, _)| *s).collect();
                        let expected: BTreeSet<usize> = (0..n).filter(|&s| s != r).collect();
                        if senders != expected {
                            return Err(format!(
                                "N{r} {}: reduction transfer {transfer} heard from {senders:?}, expected {expected:?}",
                                c.id
                            ));
                        }
                    } else if got.keys().copied().collect::<BTreeSet<_>>() != want {
                        return Err(format!(
                            "N{r} {}: await-push {transfer} waits for {region} but receives cells {:?}",
                            c.id,
                            got.keys().collect::<Vec<_>>()
                        ));
                    }
                    for cell in want {
                        check_write_deps(&mem[r], transfer.buffer, cell, c, &precedes, r)?;
                        if let Some(&v) = got.get(&cell) {
                            mem[r].cells.get_mut(&transfer.buffer).unwrap()[cell] = v;
                        }
                        set_writer(&mut mem[r], transfer.buffer, cell, c.id);
                    }
                }
            }
        }
        let expected_messages: BTreeSet<(TransferId, usize)> = messages.keys().copied().collect();
        if consumed_messages < expected_messages.len() {
            return Err(format!("{tid}: pushes to {expected_messages:?} are not all awaited"));
        }
        // 3. Reductions: the combined result is the reduction task's value.
        for r in 0..n {
            for c in by_task[r].get(&tid).unwrap_or(&empty) {
                if let CommandKind::Reduction { reduction, buffer, .. } = &c.kind {
                    let producer =
                        *reduction_task.get(reduction).ok_or(format!("N{r} {}: unknown {reduction}", c.id))?;
                    let (_, extent) = extents[buffer];
                    for cell in cells_of(&extent, &extent) {
                        mem[r].cells.get_mut(buffer).unwrap()[cell] = Some(producer);
                        set_writer(&mut mem[r], *buffer, cell, c.id);
                    }
                }
            }
        }
        // 4. Execution and fence commands.
        for r in 0..n {
            for c in by_task[r].get(&tid).unwrap_or(&empty) {
                let chunk = match &c.kind {
                    CommandKind::Execution { chunk, .. } => *chunk,
                    CommandKind::Fence { .. } => task.spec.range,
                    _ => continue,
                };
                for red in &task.spec.reductions {
                    reduction_task.insert(red.id, tid);
                }
                for region in &task.regions {
                    let b = region.buffer;
                    let (dims, extent) = extents[&b];
                    let mut consumed = BTreeSet::new();
                    let mut produced = BTreeSet::new();
                    for a in task.spec.accesses.iter().filter(|a| a.buffer == b) {
                        let reg = a.mapper.apply(&chunk, task.spec.dims, &extent, dims).map_err(|e| e.to_string())?;
                        let cells: Vec<Cell> = reg.boxes().iter().flat_map(|bx| cells_of(bx, &extent)).collect();
                        if a.mode.consumes() {
                            consumed.extend(cells.iter().copied());
                        }
                        if a.mode.produces() {
                            produced.extend(cells);
                        }
                    }
                    for red in task.spec.reductions.iter().filter(|red| red.buffer == b) {
                        produced.extend(cells_of(&extent, &extent));
                        if red.include_current_value && r == 0 {
                            consumed.extend(cells_of(&extent, &extent));
                        }
                    }
                    let seen = reads.entry((tid, b)).or_default();
                    for &cell in &consumed {
                        let v = mem[r].cells[&b][cell];
                        if let Some(w) = mem[r].writer[&b][cell] {
                            if !precedes(r, w, c) {
                                return Err(format!(
                                    "N{r} {} ({tid}): reads cell {cell} of {b} written by {w} without depending on it",
                                    c.id
                                ));
                            }
                        }
                        if let Some(prev) = seen.insert(cell, v) {
                            if prev != v {
                                return Err(format!(
                                    "{tid}: cell {cell} of {b} reads {v:?} on N{r} but {prev:?} elsewhere"
                                ));
                            }
                        }
                        mem[r].readers.get_mut(&b).unwrap()[cell].push(c.id);
                    }
                    for &cell in &produced {
                        check_write_deps(&mem[r], b, cell, c, &precedes, r)?;
                        mem[r].cells.get_mut(&b).unwrap()[cell] = Some(tid);
                        set_writer(&mut mem[r], b, cell, c.id);
                        for t in 0..n {
                            received.entry((t, b)).or_default().remove(&cell);
                        }
                    }
                }
            }
        }
        if matches!(task.kind(), TaskKind::Horizon | TaskKind::Epoch(_)) {
            // Every rank emits exactly one sync command per horizon or epoch.
            for (r, cmds) in by_task.iter().enumerate() {
                let count = cmds.get(&tid).map_or(0, |v| v.len());
                if count != 1 {
                    return Err(format!("N{r}: {count} commands for sync task {tid}"));
                }
            }
        }
    }
    Ok(reads)
}

fn set_writer(m: &mut RankMemory, b: BufferId, cell: Cell, cmd: CommandId) {
    m.writer.get_mut(&b).unwrap()[cell] = Some(cmd);
    m.readers.get_mut(&b).unwrap()[cell].clear();
}

fn check_write_deps(
    m: &RankMemory,
    b: BufferId,
    cell: Cell,
    c: &Command,
    precedes: &dyn Fn(usize, CommandId, &Command) -> bool,
    r: usize,
) -> Result<(), String> {
    for &reader in &m.readers[&b][cell] {
        if reader != c.id && !precedes(r, reader, c) {
            return Err(format!(
                "N{r} {}: overwrites cell {cell} of {b} read by {reader} without an anti-dependency",
                c.id
            ));
        }
    }
    if m.readers[&b][cell].is_empty() {
        if let Some(w) = m.writer[&b][cell] {
            if w != c.id && !precedes(r, w, c) {
                return Err(format!("N{r} {}: overwrites cell {cell} of {b} written by {w} without ordering", c.id));
            }
        }
    }
    Ok(())
}

/// Runs `program` on one rank and on `ranks` ranks and checks that every read sees the same writer.
///
/// # Errors
/// The first inconsistency, or a difference between the two runs.
pub fn equivalent_to_one_rank(
    ranks: usize,
    program: impl Fn(&mut Simulation) -> Result<(), celer_graph::TaskError>,
) -> Result<(), CheckError> {
    equivalent_inner(ranks, program).map_err(CheckError)
}

fn equivalent_inner(
    ranks: usize,
    program: impl Fn(&mut Simulation) -> Result<(), celer_graph::TaskError>,
) -> Result<(), String> {
    let mut one = Simulation::new(1, true);
    program(&mut one).map_err(|e| format!("one rank: {e}"))?;
    let reference = replay_inner(&one)?;
    let mut many = Simulation::new(ranks, true);
    program(&mut many).map_err(|e| format!("{ranks} ranks: {e}"))?;
    let got = replay_inner(&many)?;
    if got != reference {
        let mut msg = format!("{ranks} ranks read differently from one rank:\n");
        for (k, v) in &reference {
            match got.get(k) {
                Some(g) if g == v => {}
                other => {
                    let _ = writeln!(msg, "  {}/{}: one rank {v:?}, {ranks} ranks {other:?}", k.0, k.1);
                }
            }
        }
        for k in got.keys().filter(|k| !reference.contains_key(k)) {
            let _ = writeln!(msg, "  {}/{}: only read with {ranks} ranks", k.0, k.1);
        }
        return Err(msg);
    }
    Ok(())
}

/// Ranks that have a command of `kind_name` for `task` (a convenience for scenario tests).
pub fn ranks_with(sim: &Simulation, task: TaskId, kind_name: &str) -> Vec<NodeId> {
    sim.ranks
        .iter()
        .filter(|g| g.records().iter().any(|c| c.task == task && c.kind.name() == kind_name))
        .map(|g| g.local())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use celer_graph::{
        AccessMode::*, EpochAction, RangeMapper, ReductionId, ReductionOp, ReductionSpec, Region, TaskError, TaskSpec,
    };

    const B0: BufferId = BufferId(0);
    const B1: BufferId = BufferId(1);

    type Program = fn(&mut Simulation) -> Result<(), TaskError>;

    fn write(spec: TaskSpec, b: BufferId) -> TaskSpec {
        spec.access(b, DiscardWrite, RangeMapper::OneToOne)
    }

    fn read_all(spec: TaskSpec, b: BufferId) -> TaskSpec {
        spec.access(b, Read, RangeMapper::All)
    }

    /// Two halves written one to one (T1), then read whole by every rank (T2): each rank pushes its half to the
    /// other. On both ranks: C1 writes, C2 pushes, C3 awaits, C4 reads.
    fn exchange(sim: &mut Simulation) -> Result<(), TaskError> {
        sim.create_buffer(B0, 1, GridBox::d1(0, 8), false, Some("x"));
        sim.submit(write(TaskSpec::device_compute(&[8]), B0))?;
        sim.submit(read_all(TaskSpec::device_compute(&[8]), B0))?;
        Ok(())
    }

    /// `exchange`, then a rewrite (T3: C5) and the same exchange again (T4: C6 pushes, C7 awaits, C8 reads).
    fn exchange_twice(sim: &mut Simulation) -> Result<(), TaskError> {
        exchange(sim)?;
        sim.submit(write(TaskSpec::device_compute(&[8]), B0))?;
        sim.submit(read_all(TaskSpec::device_compute(&[8]), B0))?;
        Ok(())
    }

    /// A write (T1: C1), an epoch (T2: C2), and a read of everything (T3: C3 pushes, C4 awaits, C5 reads): the push
    /// depends on the epoch rather than on the writer.
    fn across_an_epoch(sim: &mut Simulation) -> Result<(), TaskError> {
        sim.create_buffer(B0, 1, GridBox::d1(0, 8), false, None);
        sim.submit(write(TaskSpec::device_compute(&[8]), B0))?;
        sim.epoch(EpochAction::None)?;
        sim.submit(read_all(TaskSpec::device_compute(&[8]), B0))?;
        Ok(())
    }

    /// A sum over 64 items into B1 (T1, reduction R0, adding B1's value) and a task that reads it on every rank (T2).
    fn reduction(sim: &mut Simulation) -> Result<(), TaskError> {
        reduction_of(sim, true)
    }

    fn reduction_of(sim: &mut Simulation, include_current_value: bool) -> Result<(), TaskError> {
        sim.create_buffer(B0, 1, GridBox::d1(0, 64), true, Some("data"));
        sim.create_buffer(B1, 1, GridBox::d1(0, 1), true, Some("sum"));
        let mut sum = TaskSpec::device_compute(&[64]).access(B0, Read, RangeMapper::OneToOne);
        let op = ReductionOp::Sum;
        sum.reductions.push(ReductionSpec { id: ReductionId(0), buffer: B1, op, include_current_value });
        sim.submit(sum)?;
        sim.submit(read_all(TaskSpec::device_compute(&[64]), B1))?;
        Ok(())
    }

    fn simulate(ranks: usize, program: Program) -> Simulation {
        let mut sim = Simulation::new(ranks, true);
        program(&mut sim).unwrap();
        replay(&sim).expect("the generator's own graph replays");
        sim
    }

    /// The index in rank `r`'s records of the only command of `task` named `kind`.
    fn find(sim: &Simulation, r: usize, task: u64, kind: &str) -> usize {
        let found: Vec<usize> = (sim.ranks[r].records().iter().enumerate())
            .filter(|(_, c)| c.task == TaskId(task) && c.kind.name() == kind)
            .map(|(i, _)| i)
            .collect();
        assert_eq!(found.len(), 1, "N{r}: {kind} commands of T{task}");
        found[0]
    }

    fn records(sim: &mut Simulation, r: usize) -> &mut Vec<Command> {
        sim.ranks[r].records_mut()
    }

    /// Drops the dependency of record `i` of rank `r` on `on`.
    fn drop_dependency(sim: &mut Simulation, r: usize, i: usize, on: u64) {
        let deps = &mut records(sim, r)[i].dependencies;
        let before = deps.len();
        deps.retain(|d| d.command != CommandId(on));
        assert_eq!(deps.len() + 1, before, "N{r} record {i} depended on C{on}");
    }

    fn error(sim: &Simulation) -> String {
        replay(sim).unwrap_err().to_string()
    }

    fn cells(range: std::ops::Range<usize>, v: Option<u64>) -> BTreeMap<Cell, Option<TaskId>> {
        range.map(|c| (c, v.map(TaskId))).collect()
    }

    #[test]
    fn cells_are_numbered_row_major_from_the_extents_corner() {
        let extent = GridBox::d2([2, 3], [5, 7]);
        let got: Vec<Cell> = cells_of(&GridBox::d2([3, 4], [5, 6]), &extent).collect();
        assert_eq!(got, vec![5, 6, 9, 10]);
        assert_eq!(cells_of(&GridBox::EMPTY, &extent).count(), 0);
        let e3 = GridBox::d3([1, 1, 1], [3, 3, 4]);
        let got: Vec<Cell> = cells_of(&GridBox::d3([2, 1, 2], [3, 3, 4]), &e3).collect();
        assert_eq!(got, vec![7, 8, 10, 11]);
    }

    #[test]
    fn a_replay_returns_the_writer_every_read_cell_held_on_any_rank_count() {
        for ranks in [1, 2, 3] {
            let sim = simulate(ranks, exchange_twice);
            let reads = replay(&sim).unwrap();
            // A chunk that only writes a buffer still leaves an (empty) entry.
            let want: Reads = [
                ((TaskId(1), B0), cells(0..0, None)),
                ((TaskId(2), B0), cells(0..8, Some(1))),
                ((TaskId(3), B0), cells(0..0, None)),
                ((TaskId(4), B0), cells(0..8, Some(3))),
            ]
            .into();
            assert_eq!(reads, want, "{ranks} ranks");
        }
    }

    #[test]
    fn host_initialized_cells_hold_the_init_epoch_and_others_nothing() {
        let program: Program = |sim| {
            sim.create_buffer(B0, 1, GridBox::d1(0, 4), true, None);
            sim.create_buffer(B1, 1, GridBox::d1(0, 2), false, None);
            sim.submit(read_all(read_all(TaskSpec::device_compute(&[4]), B0), B1))?;
            Ok(())
        };
        let reads = replay(&simulate(2, program)).unwrap();
        let want: Reads = [((TaskId(1), B0), cells(0..4, Some(0))), ((TaskId(1), B1), cells(0..2, None))].into();
        assert_eq!(reads, want);
    }

    #[test]
    fn a_fence_reads_the_whole_range_on_every_rank() {
        let program: Program = |sim| {
            sim.create_buffer(B0, 1, GridBox::d1(0, 8), false, None);
            sim.submit(write(TaskSpec::device_compute(&[8]), B0))?;
            sim.submit(read_all(TaskSpec::new(TaskKind::Fence, 0, GridBox::from_extent(&[])), B0))?;
            Ok(())
        };
        let sim = simulate(3, program);
        assert_eq!(ranks_with(&sim, TaskId(2), "fence").len(), 3);
        let want: Reads = [((TaskId(1), B0), cells(0..0, None)), ((TaskId(2), B0), cells(0..8, Some(1)))].into();
        assert_eq!(replay(&sim).unwrap(), want);
    }

    #[test]
    fn a_reduction_reads_the_current_value_on_rank_0_and_yields_the_reducing_tasks_value() {
        for ranks in [1, 3] {
            let reads = replay(&simulate(ranks, reduction)).unwrap();
            let want: Reads = [
                ((TaskId(1), B0), cells(0..64, Some(0))),
                ((TaskId(1), B1), cells(0..1, Some(0))),
                ((TaskId(2), B1), cells(0..1, Some(1))),
            ]
            .into();
            assert_eq!(reads, want, "{ranks} ranks");
            // Without the current value, no rank reads B1 for the reduction.
            let mut sim = Simulation::new(ranks, true);
            reduction_of(&mut sim, false).unwrap();
            let want: Reads = [
                ((TaskId(1), B0), cells(0..64, Some(0))),
                ((TaskId(1), B1), cells(0..0, None)),
                ((TaskId(2), B1), cells(0..1, Some(1))),
            ]
            .into();
            assert_eq!(replay(&sim).unwrap(), want, "{ranks} ranks");
        }
    }

    #[test]
    fn a_replay_needs_every_rank() {
        let mut sim = Simulation::with_ranks(2, &[NodeId(0)], true, Default::default());
        exchange(&mut sim).unwrap();
        assert_eq!(error(&sim), "replay needs every rank simulated (1 of 2)");
    }

    #[test]
    fn a_push_must_depend_on_the_writer_of_what_it_sends() {
        let mut sim = simulate(2, exchange);
        let push = find(&sim, 0, 2, "push");
        drop_dependency(&mut sim, 0, push, 1);
        assert_eq!(error(&sim), "N0 C2: push of B0 reads cell 0 written by C1, but does not depend on it");
    }

    #[test]
    fn a_later_horizon_or_epoch_orders_a_command_after_the_writer_but_a_later_plain_command_does_not() {
        // The generator's graph: the push depends on the epoch C2, which is newer than the writer C1.
        let mut sim = simulate(2, across_an_epoch);
        let push = find(&sim, 1, 3, "push");
        assert_eq!(records(&mut sim, 1)[push].dependencies[0].command, CommandId(2));
        // An older epoch does not order it.
        records(&mut sim, 1)[push].dependencies[0].command = CommandId(0);
        assert_eq!(error(&sim), "N1 C3: push of B0 reads cell 4 written by C1, but does not depend on it");
        // Nor does a newer command that is no horizon or epoch (the await-push C4).
        records(&mut sim, 1)[push].dependencies[0].command = CommandId(4);
        assert_eq!(error(&sim), "N1 C3: push of B0 reads cell 4 written by C1, but does not depend on it");
    }

    #[test]
    fn a_region_pushed_twice_to_one_rank_without_a_rewrite_is_an_error() {
        let mut sim = simulate(2, exchange);
        let push = find(&sim, 0, 2, "push");
        let copy = records(&mut sim, 0)[push].clone();
        records(&mut sim, 0).insert(push + 1, copy);
        assert_eq!(error(&sim), "N0 C2: cell 0 of B0 is pushed to N1 again without a rewrite");
    }

    #[test]
    fn a_rewrite_allows_pushing_the_same_cells_again() {
        // simulate() replays it: the second exchange pushes every cell a second time, after T3 rewrote them.
        let sim = simulate(3, exchange_twice);
        assert_eq!(find(&sim, 2, 4, "push"), find(&sim, 2, 2, "push") + 4);
    }

    #[test]
    fn a_rewrite_must_depend_on_the_pushes_that_read_the_old_cells() {
        let mut sim = simulate(2, exchange_twice);
        let rewrite = find(&sim, 0, 3, "execution");
        drop_dependency(&mut sim, 0, rewrite, 2);
        assert_eq!(error(&sim), "N0 C5: overwrites cell 0 of B0 read by C2 without an anti-dependency");
    }

    #[test]
    fn a_rewrite_must_depend_on_the_chunks_that_read_the_old_cells() {
        let mut sim = simulate(2, exchange_twice);
        let rewrite = find(&sim, 0, 3, "execution");
        drop_dependency(&mut sim, 0, rewrite, 4);
        assert_eq!(error(&sim), "N0 C5: overwrites cell 0 of B0 read by C4 without an anti-dependency");
    }

    #[test]
    fn an_await_push_must_depend_on_the_local_readers_of_what_it_overwrites() {
        let mut sim = simulate(2, exchange_twice);
        let await_push = find(&sim, 0, 4, "await-push");
        drop_dependency(&mut sim, 0, await_push, 4);
        assert_eq!(error(&sim), "N0 C7: overwrites cell 4 of B0 read by C4 without an anti-dependency");
    }

    #[test]
    fn a_write_of_unread_cells_must_be_ordered_after_their_last_writer() {
        let program: Program = |sim| {
            sim.create_buffer(B0, 1, GridBox::d1(0, 8), false, None);
            sim.submit(write(TaskSpec::device_compute(&[8]), B0))?;
            sim.submit(write(TaskSpec::device_compute(&[8]), B0))?;
            Ok(())
        };
        let mut sim = simulate(2, program);
        let second = find(&sim, 1, 2, "execution");
        drop_dependency(&mut sim, 1, second, 1);
        assert_eq!(error(&sim), "N1 C2: overwrites cell 4 of B0 written by C1 without ordering");
    }

    #[test]
    fn a_chunk_that_reads_and_writes_a_cell_needs_no_dependency_on_itself() {
        let program: Program = |sim| {
            sim.create_buffer(B0, 1, GridBox::d1(0, 8), true, None);
            sim.submit(TaskSpec::device_compute(&[8]).access(B0, ReadWrite, RangeMapper::OneToOne))?;
            sim.submit(TaskSpec::device_compute(&[8]).access(B0, ReadWrite, RangeMapper::OneToOne))?;
            Ok(())
        };
        let reads = replay(&simulate(2, program)).unwrap();
        assert_eq!(reads, [((TaskId(1), B0), cells(0..8, Some(0))), ((TaskId(2), B0), cells(0..8, Some(1)))].into());
    }

    #[test]
    fn an_await_push_must_receive_exactly_its_region() {
        let mut sim = simulate(2, exchange);
        let await_push = find(&sim, 0, 2, "await-push");
        let CommandKind::AwaitPush { region, .. } = &mut records(&mut sim, 0)[await_push].kind else { unreachable!() };
        *region = Region::from(GridBox::d1(3, 8));
        assert_eq!(error(&sim), "N0 C3: await-push T2.B0 waits for {[3] - [8]} but receives cells [4, 5, 6, 7]");
    }

    #[test]
    fn every_push_must_be_awaited() {
        let mut sim = simulate(2, exchange);
        let await_push = find(&sim, 1, 2, "await-push");
        records(&mut sim, 1).remove(await_push);
        let err = error(&sim);
        assert!(err.starts_with("T2: pushes to {") && err.ends_with("} are not all awaited"), "{err}");
    }

    #[test]
    fn a_chunk_must_depend_on_the_writer_of_what_it_reads() {
        let mut sim = simulate(2, exchange);
        let reader = find(&sim, 0, 2, "execution");
        drop_dependency(&mut sim, 0, reader, 1);
        assert_eq!(error(&sim), "N0 C4 (T2): reads cell 0 of B0 written by C1 without depending on it");
    }

    #[test]
    fn ranks_that_read_different_writers_of_a_cell_are_an_error() {
        // N1 neither sends its half nor does N0 wait for it: N0 reads the cells unwritten.
        let mut sim = simulate(2, exchange);
        let push = find(&sim, 1, 2, "push");
        records(&mut sim, 1).remove(push);
        let await_push = find(&sim, 0, 2, "await-push");
        records(&mut sim, 0).remove(await_push);
        assert_eq!(error(&sim), "T2: cell 4 of B0 reads Some(T1) on N1 but None elsewhere");
    }

    #[test]
    fn a_reduction_needs_a_partial_result_from_every_other_rank() {
        let mut sim = simulate(3, reduction);
        let push = find(&sim, 2, 2, "push");
        records(&mut sim, 2).remove(push);
        // N0 waits first, and hears only from N1.
        let await_push = find(&sim, 0, 2, "await-push");
        let id = records(&mut sim, 0)[await_push].id;
        let err = error(&sim);
        assert_eq!(err, format!("N0 {id}: reduction transfer T2.B1.R0 heard from {{1}}, expected {{1, 2}}"));
    }

    #[test]
    fn a_reduction_command_of_an_unknown_reduction_is_an_error() {
        let mut sim = simulate(2, reduction);
        let combine = find(&sim, 0, 2, "reduction");
        let c = &mut records(&mut sim, 0)[combine];
        let id = c.id;
        let CommandKind::Reduction { reduction, .. } = &mut c.kind else { unreachable!() };
        *reduction = ReductionId(9);
        assert_eq!(error(&sim), format!("N0 {id}: unknown R9"));
    }

    #[test]
    fn every_rank_has_exactly_one_command_per_horizon_or_epoch() {
        let mut sim = simulate(2, across_an_epoch);
        let epoch = find(&sim, 1, 2, "epoch");
        let copy = records(&mut sim, 1)[epoch].clone();
        records(&mut sim, 1).push(copy);
        assert_eq!(error(&sim), "N1: 2 commands for sync task T2");
        let mut sim = simulate(2, across_an_epoch);
        let epoch = find(&sim, 0, 2, "epoch");
        records(&mut sim, 0).remove(epoch);
        // Without the epoch, C3 depends on nothing that orders it after C1.
        let err = error(&sim);
        assert!(err == "N0: 0 commands for sync task T2", "{err}");
    }

    #[test]
    fn a_program_that_reads_differently_on_several_ranks_is_reported_read_by_read() {
        let program = |sim: &mut Simulation| {
            for b in 0..3 {
                sim.create_buffer(BufferId(b), 1, GridBox::d1(0, 2), true, None);
            }
            // T1 writes B0 on one rank, B1 on several; T2 reads B0; T3 reads B2, the same everywhere.
            let written = if sim.num_ranks() == 1 { B0 } else { B1 };
            sim.submit(write(TaskSpec::device_compute(&[2]), written))?;
            sim.submit(read_all(TaskSpec::device_compute(&[2]), B0))?;
            sim.submit(read_all(TaskSpec::device_compute(&[2]), BufferId(2)))?;
            Ok(())
        };
        let err = equivalent_to_one_rank(2, program).unwrap_err().to_string();
        assert_eq!(
            err,
            "2 ranks read differently from one rank:\n  \
             T1/B0: one rank {}, 2 ranks None\n  \
             T2/B0: one rank {0: Some(T1), 1: Some(T1)}, 2 ranks Some({0: Some(T0), 1: Some(T0)})\n  \
             T1/B1: only read with 2 ranks\n"
        );
        equivalent_to_one_rank(3, exchange_twice).unwrap();
    }

    #[test]
    fn a_program_that_fails_names_the_rank_count() {
        let failing = |sim: &mut Simulation| {
            sim.create_buffer(B0, 1, GridBox::d1(0, 2), false, None);
            sim.submit(write(TaskSpec::device_compute(&[4]), B0))?;
            Ok(())
        };
        let mut sim = Simulation::new(1, true);
        let e = failing(&mut sim).unwrap_err();
        assert_eq!(equivalent_to_one_rank(2, failing).unwrap_err().to_string(), format!("one rank: {e}"));
        let only_on_three = |sim: &mut Simulation| if sim.num_ranks() == 3 { failing(sim) } else { exchange(sim) };
        let mut sim = Simulation::new(3, true);
        let e = failing(&mut sim).unwrap_err();
        assert_eq!(equivalent_to_one_rank(3, only_on_three).unwrap_err().to_string(), format!("3 ranks: {e}"));
        // A replay error of the one-rank run comes as it is.
        let partial = |sim: &mut Simulation| {
            exchange(sim)?;
            sim.ranks[0].records_mut().clear();
            Ok(())
        };
        assert_eq!(equivalent_to_one_rank(2, partial).unwrap_err().to_string(), "N0: 0 commands for sync task T0");
    }

    #[test]
    fn ranks_with_lists_the_ranks_holding_a_kind_of_command() {
        let sim = simulate(3, reduction);
        assert_eq!(ranks_with(&sim, TaskId(2), "reduction"), vec![NodeId(0), NodeId(1), NodeId(2)]);
        assert_eq!(ranks_with(&sim, TaskId(1), "reduction"), vec![]);
        assert_eq!(ranks_with(&sim, TaskId(1), "execution"), vec![NodeId(0), NodeId(1), NodeId(2)]);
    }

    #[test]
    fn check_errors_debug_print_as_their_sentence() {
        let e = CheckError("N0 C1: something".into());
        assert_eq!(format!("{e:?}"), "N0 C1: something");
        assert_eq!(e.to_string(), "N0 C1: something");
    }
}
