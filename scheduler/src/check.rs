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
                    // An empty chunk (a task without items) touches nothing.
                    for a in task.spec.accesses.iter().filter(|a| a.buffer == b && !chunk.is_empty()) {
                        let reg = a
                            .mapper
                            .apply(&chunk, &task.spec.range, task.spec.dims, &extent, dims)
                            .map_err(|e| e.to_string())?;
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
mod tests;
