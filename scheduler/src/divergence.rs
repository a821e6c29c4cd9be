//! Divergence detection: every rank folds each task it records into a running hash, and the ranks compare hashes
//! at every horizon, epoch, fence and host task without blocking (issue "Diagnostics"; design notes §4).
//!
//! - A *window* is the run of tasks since the previous checkpoint (horizon or epoch), ending with the checkpoint
//!   itself. [`StreamHash::record`] folds a task and says whether it closes a window; [`StreamHash::close`] hands
//!   out the values to reduce for that window: `[h, !h, t, !t]` with `h` the running hash and `t` the checkpoint's
//!   task id, whose element-wise minimum over the ranks gives the minimum and maximum of both.
//! - The hash covers what SPMD ranks must agree on: kind, dimensions, range, granularity, split hint, accesses
//!   (buffer, mode, mapper and its parameters; a custom mapper by name), reductions, side effects (not the name), the
//!   kernel (its file's name and code, [`code_hash`]) and its scalars, and of every buffer the task accesses its extent, element size and type and a checksum of the
//!   data it was created from ([`StreamHash::buffer_created`]). Closures are not hashed, but what a custom range
//!   mapper gives is: the runtime hands [`StreamHash::record_sampled`] the regions its custom mappers give for up
//!   to [`MAPPER_SAMPLE_CHUNKS`] of the task's chunks, the same chunks on every rank ([`MapperSample`]), since
//!   every rank applies them to other ranks' chunks to find what moves, and a mapper that depends on the rank (the
//!   time, a counter) made the ranks' command graphs disagree: a stall, or a transfer of cells nobody expects.
//! - Fences close windows too, besides horizons and epochs: a rank that skips a fence (or a barrier) differs at
//!   that checkpoint instead of waiting for it. So do host tasks: the runtime holds a host task's closure, like a
//!   fence's data, until its window is found equal on every rank, and that window should not wait for a horizon.
//! - On a mismatch, [`StreamHash::window_detail`] gives per-task hashes of the diverging window for a second
//!   reduction that finds the first task that differs, and which ranks' first differing task is their shutdown
//!   epoch ([`StreamHash::ended_at`]): those ended their program (dropped their queue) before the others' point.
//! - With the check off, the windows stay, closed at horizons and epochs only ([`is_pacing_point`]), hashing and
//!   comparing nothing: their reductions still bound how far one rank runs ahead of the others (the runtime's
//!   `DIVERGENCE_WINDOWS`), and with it what its pushes leave waiting at a slower receiver.
//! - Ranks that diverge may record different numbers of checkpoints; the reductions run on their own duplicate
//!   communicator, so unmatched ones cannot pair with barrier epochs, and the first mismatch is found at the first
//!   checkpoint both ranks reach after the divergence (the shutdown epoch at the latest).

use std::collections::VecDeque;
use std::hash::{Hash, Hasher};

use celer_graph::{BufferId, EpochAction, GridBox, HostObjectId, RangeMapper, Region, Task, TaskId, TaskKind};
use hashbrown::HashMap;

use crate::runtime::KernelPayload;
use celer_exec::shaders::KernelSource;

/// How many tasks of a diverging window the second reduction compares.
pub const DETAIL_TASKS: usize = 64;

/// How many chunks of a task the divergence check applies its custom range mappers to: every chunk of a task of up
/// to this many, else this many spread over its chunks, starting at one that moves with the task id, so that a
/// mapper that depends on the rank shows within a few tasks on any number of ranks. Each costs one call of the
/// closure per custom access (a task with built-in mappers only costs nothing), about what generating the task's
/// commands costs for a custom mapper without a reach, which evaluates every chunk anyway.
// TODO(perf): 8 keeps a bounded custom mapper (one with a reach) at a few hundred ns per task; measure before raising.
pub const MAPPER_SAMPLE_CHUNKS: usize = 8;

/// What a custom range mapper of a task gave for one of its chunks on this rank, for the divergence check: the ranks
/// must agree on it, since every rank applies the mapper to the other ranks' chunks to find what moves between them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapperSample {
    /// The access's index among the task's accesses.
    pub access: usize,
    /// The buffer it accesses.
    pub buffer: BufferId,
    /// The mapper's name.
    pub mapper: &'static str,
    /// The access mode's name (`read`, `discard_write`, ...).
    pub mode: &'static str,
    /// The chunk it was applied to.
    pub chunk: GridBox,
    /// What it gave (`None`: it cannot be applied; the command generator reports why).
    pub region: Option<Region>,
}

/// The hash of what a task's custom range mappers gave ([`MapperSample`]s, in order), folded into its task hash.
pub fn mapper_digest(samples: &[MapperSample]) -> u64 {
    let mut h = FoldHasher::new(0x6d61_7070);
    for s in samples {
        s.access.hash(&mut h);
        s.chunk.hash(&mut h);
        s.region.hash(&mut h);
    }
    h.finish()
}

/// The chunk indices (of `n` chunks) whose custom range mapper results the divergence check compares for task `task`
/// ([`MAPPER_SAMPLE_CHUNKS`]): all of them up to that many, else that many spread evenly, from an index that moves
/// with the task.
pub fn sampled_chunks(task: TaskId, n: usize) -> impl Iterator<Item = usize> {
    let k = n.min(MAPPER_SAMPLE_CHUNKS);
    let start = if n > k { (task.0 as usize) % n } else { 0 };
    (0..k).map(move |j| (start + j * n / k.max(1)) % n.max(1))
}

/// A word-at-a-time multiplicative fold (the FxHash step of rustc): fast, and plenty to tell task streams apart.
#[derive(Debug, Clone, Copy)]
pub struct FoldHasher(u64);

impl FoldHasher {
    const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

    /// A hasher starting from `state`.
    pub fn new(state: u64) -> Self {
        Self(state)
    }

    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(Self::SEED);
    }
}

impl Hasher for FoldHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.add(u64::from_le_bytes(c.try_into().expect("8 bytes")));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut last = [0u8; 8];
            last[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(last));
        }
    }

    fn write_u64(&mut self, v: u64) {
        self.add(v);
    }

    fn write_usize(&mut self, v: usize) {
        self.add(v as u64);
    }
}

/// The hash of a buffer as created: its shape (its extent per dimension, `shape.len()` of them: an empty buffer's
/// shape counts, `[4, 0]` is not `[0, 4]`), element size and type (as `std::any::type_name` names it) and the data
/// it was created from (if any).
pub fn buffer_hash(shape: &[usize], elem_size: usize, elem_type: &str, data: Option<&[u8]>) -> u64 {
    let mut h = FoldHasher::new(0);
    shape.hash(&mut h);
    elem_size.hash(&mut h);
    elem_type.hash(&mut h);
    match data {
        Some(bytes) => {
            h.write_u64(1);
            h.write(bytes);
        }
        None => h.write_u64(0),
    }
    h.finish()
}

/// A hash of a compiled kernel file's code (its SPIR-V), computed once per file on each thread: two builds of a
/// program whose kernel changed under the same name and entry point hash apart.
pub fn code_hash(source: &'static KernelSource) -> u64 {
    thread_local! {
        /// Each file's address and hash: a program has a few kernel files, so a list.
        static CODE: std::cell::RefCell<Vec<(usize, u64)>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    let key = source as *const KernelSource as usize;
    CODE.with(|code| {
        if let Some(&(_, hash)) = code.borrow().iter().find(|(k, _)| *k == key) {
            return hash;
        }
        let mut h = FoldHasher::new(0x636f_6465);
        h.write(source.spirv());
        let hash = h.finish();
        code.borrow_mut().push((key, hash));
        hash
    })
}

/// The hash of one task record: what every rank must agree on (see the module docs); `buffers` holds the
/// [`buffer_hash`] of each buffer (one missing counts as 0).
pub fn task_hash(task: &Task, buffers: &HashMap<BufferId, u64>) -> u64 {
    task_hash_with(task, buffers, code_hash)
}

/// [`task_hash`] with `code` giving a kernel file's [`code_hash`].
fn task_hash_with(task: &Task, buffers: &HashMap<BufferId, u64>, code: impl Fn(&'static KernelSource) -> u64) -> u64 {
    let mut h = FoldHasher::new(0);
    let s = &task.spec;
    if let Some(k) = s.payload.as_ref().and_then(|p| p.downcast_ref::<KernelPayload>()) {
        k.source.name().hash(&mut h);
        h.write_u64(code(k.source));
        k.entry.hash(&mut h);
        k.scalars.hash(&mut h);
        // A reduce_with's identity and what its combine gives for a few values: the closure cannot be hashed.
        for c in k.custom_reductions.iter().flatten() {
            c.identity.hash(&mut h);
            c.probed.hash(&mut h);
        }
    }
    let mut buffer = |b: BufferId| h.write_u64(buffers.get(&b).copied().unwrap_or(0));
    s.accesses.iter().for_each(|a| buffer(a.buffer));
    s.reductions.iter().for_each(|r| buffer(r.buffer));
    task.id.hash(&mut h);
    s.kind.hash(&mut h);
    s.dims.hash(&mut h);
    s.range.hash(&mut h);
    s.granularity.hash(&mut h);
    s.hint.hash(&mut h);
    s.accesses.len().hash(&mut h);
    for a in s.accesses.iter() {
        a.buffer.hash(&mut h);
        a.mode.hash(&mut h);
        a.mapper.name().hash(&mut h);
        match &a.mapper {
            RangeMapper::Fixed(b) => b.hash(&mut h),
            RangeMapper::Slice(d) => d.hash(&mut h),
            RangeMapper::Neighborhood { extent, shape } => {
                extent.hash(&mut h);
                shape.hash(&mut h);
            }
            RangeMapper::EvenSplit { granularity } => granularity.hash(&mut h),
            RangeMapper::OneToOne | RangeMapper::All | RangeMapper::Transposed | RangeMapper::Custom { .. } => {}
        }
    }
    s.reductions.len().hash(&mut h);
    for r in &s.reductions {
        r.buffer.hash(&mut h);
        r.op.hash(&mut h);
        r.include_current_value.hash(&mut h);
    }
    s.side_effects.hash(&mut h);
    // Not the name: a name that differs between ranks (one holding the rank number) changes no graph, and the
    // report of a real divergence shows each rank's name anyway.
    h.finish()
}

/// Whether `kind` closes a window: horizons, epochs, fences, and host tasks (which run only once their window is
/// confirmed, so that their window must not wait for the next horizon).
pub fn is_checkpoint(kind: TaskKind) -> bool {
    matches!(
        kind,
        TaskKind::Horizon
            | TaskKind::Epoch(_)
            | TaskKind::Fence
            | TaskKind::HostCompute
            | TaskKind::Once
            | TaskKind::Collective(_)
    )
}

/// Whether `kind` closes a window while the check is off (`CELER_CHECK_DIVERGENCE=off`): horizons and epochs only.
/// Those windows compare nothing; their reductions only pace the ranks (see [`DIVERGENCE_WINDOWS`]), and no fence,
/// wait or host task waits for one, so fewer suffice: one reduction per horizon instead of one per checkpoint.
///
/// [`DIVERGENCE_WINDOWS`]: crate::runtime::DIVERGENCE_WINDOWS
pub fn is_pacing_point(kind: TaskKind) -> bool {
    matches!(kind, TaskKind::Horizon | TaskKind::Epoch(_))
}

/// One task of a window: its id and hash, and the kind (with its collective group), range and host objects (copied,
/// since the task may be pruned before its window is compared).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowTask {
    /// The task.
    pub id: TaskId,
    /// Its [`task_hash`].
    pub hash: u64,
    /// Its kind.
    pub kind: TaskKind,
    /// Its index space.
    pub range: celer_graph::GridBox,
    /// The first [`WINDOW_OBJECTS`] host objects it declares a side effect on (`None` past the last).
    pub objects: [Option<HostObjectId>; WINDOW_OBJECTS],
    /// How many host objects it declares a side effect on.
    pub object_count: usize,
    /// The first [`WINDOW_OBJECTS`] buffers it accesses or reduces into, in that order (`None` past the last).
    pub buffers: [Option<BufferId>; WINDOW_OBJECTS],
    /// How many accesses and reductions it has.
    pub buffer_count: usize,
}

/// How many of a task's host objects (and of its buffers) a [`WindowTask`] keeps for the divergence report.
pub const WINDOW_OBJECTS: usize = 4;

impl WindowTask {
    /// The window entry of `task`, whose [`task_hash`] is `hash`.
    pub fn of(task: &Task, hash: u64) -> Self {
        let mut objects = [None; WINDOW_OBJECTS];
        for (slot, (ho, _)) in objects.iter_mut().zip(&task.spec.side_effects) {
            *slot = Some(*ho);
        }
        let mut buffers = [None; WINDOW_OBJECTS];
        let used = task.spec.accesses.iter().map(|a| a.buffer).chain(task.spec.reductions.iter().map(|r| r.buffer));
        for (slot, b) in buffers.iter_mut().zip(used) {
            *slot = Some(b);
        }
        Self {
            id: task.id,
            hash,
            kind: task.kind(),
            range: task.spec.range,
            objects,
            object_count: task.spec.side_effects.len(),
            buffers,
            buffer_count: task.spec.accesses.len() + task.spec.reductions.len(),
        }
    }
}

/// A window whose comparison is under way.
#[derive(Debug, Clone)]
pub struct Window {
    /// 1 for the first window of the program.
    pub ordinal: u64,
    /// The checkpoint that closed the previous window (`None` for the first).
    pub after: Option<TaskId>,
    /// The tasks of the window in order; the last is the checkpoint.
    pub tasks: Vec<WindowTask>,
    /// What the custom range mappers of its tasks gave on this rank, for the report (tasks with custom mappers only).
    pub samples: Vec<(TaskId, Vec<MapperSample>)>,
}

impl Window {
    /// What the custom range mappers of task `id` gave on this rank (empty for a task without custom mappers).
    pub fn samples_of(&self, id: TaskId) -> &[MapperSample] {
        self.samples.iter().find(|(t, _)| *t == id).map_or(&[], |(_, s)| s)
    }
}

/// A rank's running hash of its task stream and the windows not yet compared.
#[derive(Debug, Default)]
pub struct StreamHash {
    running: u64,
    current: Vec<WindowTask>,
    /// The [`MapperSample`]s of the current window's tasks that have custom mappers.
    current_samples: Vec<(TaskId, Vec<MapperSample>)>,
    last_checkpoint: Option<TaskId>,
    closed: u64,
    /// Windows closed and not yet found equal on every rank, oldest first.
    pending: VecDeque<Window>,
    /// The [`buffer_hash`] of every buffer created (kept after a buffer is dropped: tasks recorded later may still
    /// name it; one word per buffer).
    buffers: HashMap<BufferId, u64>,
}

impl StreamHash {
    /// An empty stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// Notes a buffer's creation: its [`buffer_hash`] joins the hash of every task that accesses it.
    /// `shape` is the buffer's extent per dimension (one entry per dimension).
    pub fn buffer_created(
        &mut self,
        id: BufferId,
        shape: &[usize],
        elem_size: usize,
        elem_type: &str,
        data: Option<&[u8]>,
    ) {
        self.buffers.insert(id, buffer_hash(shape, elem_size, elem_type, data));
    }

    /// Forgets buffer `id`'s hash once every task that uses it was recorded (its memory is released).
    pub fn buffer_released(&mut self, id: BufferId) {
        self.buffers.remove(&id);
    }

    /// The [`buffer_hash`] of buffer `id`, if it was created.
    pub fn buffer(&self, id: BufferId) -> Option<u64> {
        self.buffers.get(&id).copied()
    }

    /// Folds `task` into the stream; true if it is a checkpoint (then call [`close`](Self::close)).
    pub fn record(&mut self, task: &Task) -> bool {
        self.record_sampled(task, &[])
    }

    /// [`record`](Self::record) with what the task's custom range mappers gave for its sampled chunks
    /// ([`sampled_chunks`]; empty for a task without custom mappers), which joins its hash and is kept for the
    /// report until its window is found equal.
    pub fn record_sampled(&mut self, task: &Task, samples: &[MapperSample]) -> bool {
        let mut h = task_hash(task, &self.buffers);
        if !samples.is_empty() {
            let mut f = FoldHasher::new(h);
            f.write_u64(mapper_digest(samples));
            h = f.finish();
            self.current_samples.push((task.id, samples.to_vec()));
        }
        let mut f = FoldHasher::new(self.running);
        f.write_u64(h);
        self.running = f.finish();
        self.current.push(WindowTask::of(task, h));
        is_checkpoint(task.kind())
    }

    /// Closes the window at checkpoint `checkpoint` and returns the values to minimise over the ranks.
    pub fn close(&mut self, checkpoint: TaskId) -> Vec<u64> {
        self.closed += 1;
        let window = Window {
            ordinal: self.closed,
            after: self.last_checkpoint,
            tasks: std::mem::take(&mut self.current),
            samples: std::mem::take(&mut self.current_samples),
        };
        self.pending.push_back(window);
        self.last_checkpoint = Some(checkpoint);
        vec![self.running, !self.running, checkpoint.0, !checkpoint.0]
    }

    /// The oldest window still being compared.
    pub fn oldest(&self) -> Option<&Window> {
        self.pending.front()
    }

    /// The oldest window compared equal on every rank: forget it.
    pub fn confirm_oldest(&mut self) {
        self.pending.pop_front();
    }

    /// Whether task `id`, recorded already, lies in a window not yet found equal on every rank (one still being
    /// compared, or the one still open).
    pub fn unconfirmed(&self, id: TaskId) -> bool {
        let first = self.pending.front().map_or(self.current.first(), |w| w.tasks.first());
        first.is_some_and(|t| t.id <= id)
    }

    /// The values of the second reduction for `window` on `rank` of `ranks`: `[n, !n]` (its task count), then
    /// `[h, !h]` per task for its first [`DETAIL_TASKS`] tasks, padded with zeros, then one slot per rank: in its own,
    /// the index of this rank's shutdown epoch in the window (`u64::MAX` if none, and in the others' slots), for
    /// [`ended_at`](Self::ended_at).
    pub fn window_detail(window: &Window, rank: usize, ranks: usize) -> Vec<u64> {
        let n = window.tasks.len() as u64;
        let mut out = Vec::with_capacity(2 + 2 * DETAIL_TASKS + ranks);
        out.extend([n, !n]);
        for i in 0..DETAIL_TASKS {
            let h = window.tasks.get(i).map_or(0, |t| t.hash);
            out.extend([h, !h]);
        }
        // Where this rank's shutdown epoch lies in the window (its queue was dropped there), in its own slot.
        let shutdown = window.tasks.iter().position(|t| t.kind == TaskKind::Epoch(EpochAction::Shutdown));
        out.extend((0..ranks).map(|r| if r == rank { shutdown.map_or(u64::MAX, |i| i as u64) } else { u64::MAX }));
        out
    }

    /// The ranks that ended their program at task `i` of the window (their shutdown epoch is task `i`: they dropped
    /// their queue where the others submitted more), from the minimum of the ranks' [`window_detail`]s.
    ///
    /// [`window_detail`]: Self::window_detail
    pub fn ended_at(min: &[u64], i: usize) -> Vec<usize> {
        let slots = min.get(2 + 2 * DETAIL_TASKS..).unwrap_or_default();
        slots.iter().enumerate().filter(|&(_, &at)| at == i as u64).map(|(r, _)| r).collect()
    }

    /// From the second reduction's result: the index of the first task of the window that differs between
    /// ranks (`None` if the first [`DETAIL_TASKS`] agree), and the smallest and largest task count.
    pub fn first_difference(min: &[u64]) -> (Option<usize>, u64, u64) {
        let (lo, hi) = (min[0], !min[1]);
        let first = (0..DETAIL_TASKS).find(|i| min[2 + 2 * i] != !min[3 + 2 * i]);
        (first, lo, hi)
    }
}

/// Reads the first reduction's result: `(hash_min, hash_max, checkpoint_min, checkpoint_max)`.
pub fn read_check(min: &[u64]) -> (u64, u64, u64, u64) {
    (min[0], !min[1], min[2], !min[3])
}

#[cfg(test)]
mod tests {
    use super::*;
    use celer_graph::{GridBox, TaskManager, TaskManagerConfig, TaskSpec};

    #[test]
    fn a_kernels_code_is_part_of_its_tasks_hash() {
        let mut tm = TaskManager::new(TaskManagerConfig::default());
        let mut spec = TaskSpec::device_compute(&[8]);
        spec.payload = Some(std::sync::Arc::new(KernelPayload {
            source: &celer_exec::shaders::SAXPY,
            entry: "main",
            scalars: Default::default(),
            reduction_kinds: Vec::new(),
            custom_reductions: Vec::new(),
            blocks: None,
        }));
        let id = tm.submit(spec).unwrap();
        let task = tm.task(id).unwrap();
        let none = HashMap::new();
        // The same name and entry point, other code (another build of the program): another hash.
        assert_ne!(task_hash_with(task, &none, |_| 1), task_hash_with(task, &none, |_| 2));
        assert_eq!(task_hash(task, &none), task_hash_with(task, &none, code_hash));
        let saxpy = code_hash(&celer_exec::shaders::SAXPY);
        assert_eq!(saxpy, code_hash(&celer_exec::shaders::SAXPY), "kept");
        assert_ne!(saxpy, code_hash(&celer_exec::shaders::NBODY));
    }

    /// Records `ranges` as host tasks reading buffer B0 one-to-one, and returns each task's hash in order.
    fn stream(ranges: &[usize]) -> Vec<(TaskId, u64, bool)> {
        let mut tm = TaskManager::new(TaskManagerConfig { horizon_step: 2, ..TaskManagerConfig::default() });
        tm.create_buffer(celer_graph::BufferId(0), 1, GridBox::d1(0, 64), true, Some("a".into()));
        for &r in ranges {
            let spec = TaskSpec::new(TaskKind::HostCompute, 1, GridBox::d1(0, r));
            tm.submit(spec.access(celer_graph::BufferId(0), celer_graph::AccessMode::Read, RangeMapper::OneToOne))
                .unwrap();
        }
        let ids: Vec<TaskId> = tm.drain_new_tasks().collect();
        let mut sh = StreamHash::new();
        ids.iter()
            .map(|&id| {
                let t = tm.task(id).unwrap();
                let cp = sh.record(t);
                (id, sh.running, cp)
            })
            .collect()
    }

    #[test]
    fn a_released_buffers_creation_hash_is_forgotten() {
        let mut sh = StreamHash::new();
        for i in 0..1000 {
            sh.buffer_created(celer_graph::BufferId(i), &[8], 4, "f32", None);
            sh.buffer_released(celer_graph::BufferId(i));
        }
        assert!(sh.buffer(celer_graph::BufferId(7)).is_none());
        assert!(sh.buffers.is_empty(), "a program creating and dropping buffers keeps no hash of each");
    }

    #[test]
    fn tasks_named_differently_hash_equally() {
        let mut tm = TaskManager::new(TaskManagerConfig::default());
        tm.create_buffer(celer_graph::BufferId(0), 1, GridBox::d1(0, 64), true, None);
        for name in ["step on rank 0", "step on rank 1"] {
            let mut spec = TaskSpec::new(TaskKind::HostCompute, 1, GridBox::d1(0, 64));
            spec.name = Some(name.into());
            tm.submit(spec).unwrap();
        }
        let ids: Vec<TaskId> = tm.drain_new_tasks().collect();
        let ids: Vec<TaskId> =
            ids.into_iter().filter(|&id| tm.task(id).unwrap().spec.kind == TaskKind::HostCompute).collect();
        assert_eq!(ids.len(), 2);
        let hash = |id: TaskId| {
            let mut t = tm.task(id).unwrap().clone();
            t.id = TaskId(0);
            task_hash(&t, &HashMap::new())
        };
        assert_eq!(hash(ids[0]), hash(ids[1]), "the name is not part of what ranks must agree on");
    }

    #[test]
    fn a_task_is_confirmed_once_every_window_up_to_its_own_is() {
        let mut tm = TaskManager::new(TaskManagerConfig { horizon_step: 2, ..TaskManagerConfig::default() });
        tm.create_buffer(celer_graph::BufferId(0), 1, GridBox::d1(0, 8), true, None);
        for _ in 0..6 {
            let spec = TaskSpec::new(TaskKind::HostCompute, 1, GridBox::d1(0, 8));
            tm.submit(spec.access(celer_graph::BufferId(0), celer_graph::AccessMode::ReadWrite, RangeMapper::OneToOne))
                .unwrap();
        }
        let ids: Vec<TaskId> = tm.drain_new_tasks().collect();
        let mut sh = StreamHash::new();
        let mut checkpoints = Vec::new();
        for &id in &ids {
            if sh.record(tm.task(id).unwrap()) {
                sh.close(id);
                checkpoints.push(id);
            }
        }
        assert!(checkpoints.len() >= 2, "horizons close windows: {checkpoints:?}");
        let last = *ids.last().unwrap();
        assert!(ids.iter().all(|&id| sh.unconfirmed(id)), "nothing compared yet");
        sh.confirm_oldest();
        assert!(!sh.unconfirmed(checkpoints[0]), "the first window's checkpoint is confirmed with it");
        assert!(sh.unconfirmed(checkpoints[1]) && sh.unconfirmed(last), "later windows are not");
        for _ in 1..checkpoints.len() {
            sh.confirm_oldest();
        }
        let open = *checkpoints.last().unwrap() < last;
        assert_eq!(sh.unconfirmed(last), open, "a task of the window still open is unconfirmed");
        assert!(!sh.unconfirmed(*checkpoints.last().unwrap()));
    }

    #[test]
    fn equal_streams_hash_equally_and_a_different_range_changes_every_later_hash() {
        let a = stream(&[64, 64, 64, 64]);
        let b = stream(&[64, 64, 64, 64]);
        let c = stream(&[64, 32, 64, 64]);
        assert_eq!(a, b);
        assert_eq!(a[..2], c[..2], "the tasks before the change agree");
        for (x, y) in a.iter().zip(&c).skip(2) {
            assert_ne!(x.1, y.1, "the running hash differs from the changed task on");
        }
        assert!(a.iter().any(|t| t.2), "horizons close windows");
    }

    #[test]
    fn the_sampled_chunks_are_all_of_few_and_eight_spread_over_many() {
        let of = |t: u64, n: usize| sampled_chunks(TaskId(t), n).collect::<Vec<_>>();
        assert_eq!(of(5, 0), Vec::<usize>::new());
        assert_eq!(of(5, 3), vec![0, 1, 2]);
        assert_eq!(of(9, 8), (0..8).collect::<Vec<_>>());
        let many = of(3, 64);
        assert_eq!(many, vec![3, 11, 19, 27, 35, 43, 51, 59], "spread, from an index moving with the task");
        assert_ne!(of(4, 64), many);
        let mut odd = of(7, 13);
        odd.sort_unstable();
        odd.dedup();
        assert_eq!(odd.len(), MAPPER_SAMPLE_CHUNKS, "distinct chunks");
    }

    #[test]
    fn a_custom_mappers_results_and_a_combines_results_join_the_task_hash() {
        let mut tm = TaskManager::new(TaskManagerConfig::default());
        tm.create_buffer(BufferId(0), 1, GridBox::d1(0, 8), true, Some("a".into()));
        let id = tm.submit(TaskSpec::device_compute(&[8])).unwrap();
        let task = tm.task(id).unwrap().clone();
        let sample = |r: usize| MapperSample {
            access: 0,
            buffer: BufferId(0),
            mapper: "peek",
            mode: "read",
            chunk: GridBox::d1(0, 4),
            region: Some(Region::from(GridBox::d1(0, r))),
        };
        let run = |samples: &[MapperSample]| {
            let mut sh = StreamHash::new();
            sh.record_sampled(&task, samples);
            sh.close(id);
            (sh.running, sh.oldest().unwrap().samples_of(id).to_vec())
        };
        let (plain, none) = run(&[]);
        let (four, kept) = run(&[sample(4)]);
        let (eight, _) = run(&[sample(8)]);
        assert!(none.is_empty());
        assert_eq!(kept, vec![sample(4)], "kept for the report");
        assert_ne!(plain, four);
        assert_ne!(four, eight, "another region, another hash");
        assert_eq!(four, run(&[sample(4)]).0);

        // A reduce_with's combine cannot be hashed; what it gives for a few values is.
        let spec = TaskSpec::device_compute(&[8]);
        let custom = |probed: &str| crate::runtime::CustomReduction {
            identity: vec![0; 4],
            combine: std::sync::Arc::new(|a: &[u8], _: &[u8]| a.to_vec()),
            probed: probed.to_string(),
        };
        let with = |probed: &str| {
            let mut spec = spec.clone();
            spec.payload = Some(std::sync::Arc::new(KernelPayload {
                source: &celer_exec::shaders::SAXPY,
                entry: "main",
                scalars: Default::default(),
                reduction_kinds: Vec::new(),
                custom_reductions: vec![Some(custom(probed))],
                blocks: None,
            }));
            let mut tm = TaskManager::new(TaskManagerConfig::default());
            let id = tm.submit(spec).unwrap();
            task_hash(tm.task(id).unwrap(), &HashMap::new())
        };
        assert_ne!(with("combine(1, 7) = 7"), with("combine(1, 7) = 6"));
        assert_eq!(with("combine(1, 7) = 7"), with("combine(1, 7) = 7"));
    }

    #[test]
    fn the_detail_reduction_finds_the_first_differing_task() {
        let w = |hashes: &[u64]| Window {
            ordinal: 1,
            after: None,
            tasks: hashes
                .iter()
                .enumerate()
                .map(|(i, &hash)| WindowTask {
                    id: TaskId(i as u64),
                    hash,
                    kind: TaskKind::HostCompute,
                    range: GridBox::d1(0, 1),
                    objects: [None; WINDOW_OBJECTS],
                    object_count: 0,
                    buffers: [None; WINDOW_OBJECTS],
                    buffer_count: 0,
                })
                .collect(),
            samples: Vec::new(),
        };
        let ranks =
            [StreamHash::window_detail(&w(&[1, 2, 3]), 0, 2), StreamHash::window_detail(&w(&[1, 2, 4, 5]), 1, 2)];
        let min: Vec<u64> = (0..ranks[0].len()).map(|i| ranks.iter().map(|r| r[i]).min().unwrap()).collect();
        assert_eq!(StreamHash::first_difference(&min), (Some(2), 3, 4));
        assert_eq!(StreamHash::ended_at(&min, 2), Vec::<usize>::new(), "no rank dropped its queue");
        let same = StreamHash::window_detail(&w(&[1, 2]), 0, 1);
        assert_eq!(StreamHash::first_difference(&same), (None, 2, 2));
        // Rank 1 of 3 dropped its queue (its shutdown epoch) where the others submitted task 2.
        let mut ended = w(&[1, 2, 9]);
        ended.tasks[2].kind = TaskKind::Epoch(EpochAction::Shutdown);
        let ranks = [
            StreamHash::window_detail(&w(&[1, 2, 3, 4]), 0, 3),
            StreamHash::window_detail(&ended, 1, 3),
            StreamHash::window_detail(&w(&[1, 2, 3, 4]), 2, 3),
        ];
        let min: Vec<u64> = (0..ranks[0].len()).map(|i| ranks.iter().map(|r| r[i]).min().unwrap()).collect();
        assert_eq!(StreamHash::first_difference(&min), (Some(2), 3, 4));
        assert_eq!(StreamHash::ended_at(&min, 2), vec![1]);
        assert_eq!(StreamHash::ended_at(&min, 3), Vec::<usize>::new(), "only where the streams part");
    }

    #[test]
    fn close_reports_hash_and_checkpoint_as_min_and_complemented_max() {
        let mut sh = StreamHash::new();
        let v = sh.close(TaskId(7));
        assert_eq!(read_check(&v), (0, 0, 7, 7));
        assert_eq!(sh.oldest().unwrap().ordinal, 1);
        sh.confirm_oldest();
        assert!(sh.oldest().is_none());
    }

    #[test]
    fn empty_buffers_of_different_shapes_hash_apart() {
        let hash = |shape: &[usize]| buffer_hash(shape, 4, "f32", None);
        // As a GridBox all three are the one empty box: the hash must see the shape itself.
        assert_eq!(GridBox::from_extent(&[4, 0]), GridBox::from_extent(&[0, 4]));
        assert_ne!(hash(&[4, 0]), hash(&[0, 4]));
        assert_ne!(hash(&[0]), hash(&[0, 0]), "nor an empty 1D buffer an empty 2D one");
        assert_ne!(hash(&[4, 0]), hash(&[8, 0]));
        assert_eq!(hash(&[4, 0]), hash(&[4, 0]));
    }

    #[test]
    fn a_buffers_extent_or_data_changes_the_hash_of_the_tasks_that_access_it() {
        let mut tm = TaskManager::new(TaskManagerConfig::default());
        tm.create_buffer(celer_graph::BufferId(0), 1, GridBox::d1(0, 64), true, None);
        let spec = TaskSpec::new(TaskKind::HostCompute, 1, GridBox::d1(0, 64));
        tm.submit(spec.access(celer_graph::BufferId(0), celer_graph::AccessMode::Read, RangeMapper::OneToOne)).unwrap();
        let ids: Vec<TaskId> = tm.drain_new_tasks().collect();
        let id = *ids.iter().find(|&&id| tm.task(id).unwrap().kind() == TaskKind::HostCompute).unwrap();
        let task = tm.task(id).unwrap();
        let typed = |shape: &[usize], ty: &str, data: &[u8]| {
            let mut sh = StreamHash::new();
            sh.buffer_created(celer_graph::BufferId(0), shape, 4, ty, Some(data));
            task_hash(task, &sh.buffers)
        };
        let hash = |shape: &[usize], data: &[u8]| typed(shape, "f32", data);
        let base = hash(&[64], &[1, 2, 3, 4]);
        assert_eq!(base, hash(&[64], &[1, 2, 3, 4]));
        assert_ne!(base, hash(&[128], &[1, 2, 3, 4]), "the extent counts");
        assert_ne!(base, hash(&[64, 1], &[1, 2, 3, 4]), "the dimensionality counts");
        assert_ne!(base, hash(&[64], &[1, 2, 3, 5]), "the data counts");
        assert_ne!(base, typed(&[64], "u32", &[1, 2, 3, 4]), "the element type counts, not only its size");
        assert!(is_checkpoint(TaskKind::Fence), "fences close windows");
    }
}
