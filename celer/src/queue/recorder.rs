//! The application thread's record of its queue: the rank's task graph (and a dry run's command graphs), the ids
//! handed out, the back-pressure of `CELER_SUBMIT_AHEAD`, and the warnings about frequent waits and scattered
//! regions.

use std::sync::Arc;

use celer_scheduler::graph::{BufferId, EpochAction, TaskId};
use celer_scheduler::runtime::{RuntimeHandle, CREATION_DATA_BACKLOG, DROPPED_BUFFER_BACKLOG, FENCE_DATA_BACKLOG};
use celer_scheduler::sim::Simulation;

use crate::intern::SubmitCache;

/// What [`Queue`](super::Queue) records for its rank, behind its `RefCell`.
pub(super) struct Recorder {
    /// The rank's task graph (built here, once) and, in a dry run, the simulated ranks' command graphs.
    pub(super) sim: Simulation,
    pub(super) next_buffer: u64,
    pub(super) next_host_object: u64,
    pub(super) next_reduction: u64,
    pub(super) next_group: u64,
    /// Tasks submitted and `wait`s or `barrier`s, for the frequent-wait warning.
    pub(super) submitted: u64,
    pub(super) waits: u64,
    pub(super) warned_waits: bool,
    /// Whether a task's region of more than [`SCATTERED_BOXES`] boxes was warned about.
    pub(super) warned_scattered: bool,
    /// Whether a `reduce_with` identity kept by all but the type's extreme values (a sentinel) was warned about.
    pub(super) warned_identity: bool,
    /// Whether a write that a run of two nodes would refuse as overlapping was warned about on this run of one.
    pub(super) warned_single_node_overlap: bool,
    /// `CELER_SUBMIT_AHEAD`, and the horizons recorded that the runtime may not have reached yet, oldest first.
    pub(super) submit_ahead: Option<usize>,
    pub(super) horizons: std::collections::VecDeque<TaskId>,
    /// Names, access lists and checked kernels of recent tasks, shared by the tasks that repeat them.
    pub(super) cache: SubmitCache,
    /// The live buffers created with data, and the bytes of it, for [`CREATION_DATA_BACKLOG`].
    pub(super) creation_data: std::collections::HashMap<BufferId, u64>,
    /// Buffers created with data and dropped, whose data the runtime may still hold: the next task id at the drop
    /// (the runtime frees the data once every task below it has completed) and the bytes, oldest first; and their
    /// sum.
    pub(super) dropped_data: std::collections::VecDeque<(TaskId, u64)>,
    pub(super) dropped_data_bytes: u64,
    /// The bytes of fence data recorded so far, each fence counted at most at [`FENCE_DATA_BACKLOG`] (the runtime
    /// counts those it answered alike).
    pub(super) fence_bytes_recorded: u64,
    /// Buffers dropped whose tasks may not have run yet (so whose device allocation the runtime may hold): the next
    /// task id at the drop and the buffer's size in bytes, oldest first; and their sum, for
    /// [`DROPPED_BUFFER_BACKLOG`].
    pub(super) dropped_buffers: std::collections::VecDeque<(TaskId, u64)>,
    pub(super) dropped_buffer_bytes: u64,
}

/// After this many waits, a program that waits more often than every [`FREQUENT_WAIT_TASKS`] tasks is warned.
const FREQUENT_WAIT_MIN: u64 = 32;
/// See [`FREQUENT_WAIT_MIN`].
const FREQUENT_WAIT_TASKS: u64 = 4;

/// The warning for a program that waits every few tasks, if `waits` and `tasks` say so.
fn frequent_wait_warning(waits: u64, tasks: u64) -> Option<String> {
    (waits >= FREQUENT_WAIT_MIN && tasks < FREQUENT_WAIT_TASKS * waits).then(|| {
        format!(
            "frequent waits: {waits} wait()/barrier() calls for {tasks} tasks (one every {:.1} tasks); each wait \
             drains this rank's pipeline, so the GPU idles while the next tasks are recorded: submit more work \
             between waits, or read results with a fence instead",
            tasks as f64 / waits as f64
        )
    })
}

/// A task whose region of one buffer has more boxes than this is warned about: the graphs' region bookkeeping costs
/// time about proportional to a region's box count (`O(n log n)`), on every rank: red-black sweeps of one-cell boxes
/// (`examples/prof_cdag scattered|checkerboard --boxes N`) cost 16–45 ms per task at 16 384 boxes and 75–250 ms at
/// 65 536 on 1–4 dry-run ranks in a release build (about 10× that in a debug build), where a few boxes cost
/// microseconds.
const SCATTERED_BOXES: usize = 16_384;

impl Recorder {
    /// The warning for task `id` (just built) if one of its buffers' regions has more than [`SCATTERED_BOXES`] boxes.
    pub(super) fn scattered_warning(&self, id: TaskId) -> Option<String> {
        let task = self.sim.tm.task(id)?;
        let (buffer, boxes) = task
            .regions
            .iter()
            .map(|r| (r.buffer, r.consumed.boxes().len().max(r.produced.boxes().len())))
            .max_by_key(|&(_, boxes)| boxes)?;
        let task_ident = celer_scheduler::graph::TaskIdent { id, name: task.spec.name.clone() };
        (boxes > SCATTERED_BOXES).then(|| {
            format!(
                "In {task_ident}: {} is accessed in a region of {boxes} separate boxes (a custom range mapper of \
                 scattered cells); celer's region bookkeeping costs time about proportional to the box count, on \
                 every rank and for every task (65 536 boxes: 75–250 ms per task in a release build, about 10× that \
                 in a debug build), so map to fewer boxes (the bounding box, where reading more is harmless) or keep \
                 the scattered cells in a buffer of their own. Said once",
                self.sim.tm.buffer_ident(buffer)
            )
        })
    }

    /// Task `id`, just built, for the runtime thread to replay: the task graph's own (shared, not copied).
    pub(super) fn built(&self, id: TaskId) -> Arc<celer_scheduler::graph::Task> {
        self.sim.tm.shared_task(id).expect("a task just built is live until a later horizon")
    }

    /// Reports warnings (the simulation already treated the applied horizon as reached).
    /// Blocks while the runtime is more than `CELER_SUBMIT_AHEAD` horizons behind what was submitted, so that
    /// queued tasks and commands take bounded memory however fast the program submits; once blocked, until the
    /// runtime is no more than half of that behind.
    pub(super) fn hold_back(&mut self, rt: &RuntimeHandle) {
        let Some(ahead) = self.submit_ahead else { return };
        if let Some(h) = self.sim.tm.current_horizon() {
            if self.horizons.back() != Some(&h) {
                self.horizons.push_back(h);
            }
        }
        if self.horizons.len() > ahead {
            // Once blocked, wait until the runtime is back to half as far behind: the program then submits many
            // tasks at a time, which the runtime turns into large GPU batches, instead of one horizon's worth of
            // tasks (often a single kernel per batch) each time the runtime reaches a horizon.
            let resume_at = ahead / 2;
            let mut newest_waited = None;
            while self.horizons.len() > resume_at {
                newest_waited = self.horizons.pop_front();
            }
            if let Some(h) = newest_waited {
                rt.wait_until_completed(h);
            }
        }
    }

    /// Notes that buffer `id`, of `size` bytes, was dropped: the runtime holds its creation data (if any) and its
    /// device allocation until every task recorded so far has completed.
    pub(super) fn buffer_dropped(&mut self, id: BufferId, size: u64) {
        // Counted at most at the bound, which one such buffer reaches anyway: sums of huge buffers cannot overflow.
        let size = size.min(DROPPED_BUFFER_BACKLOG);
        if size > 0 {
            self.dropped_buffers.push_back((self.sim.tm.next_task_id(), size));
            self.dropped_buffer_bytes += size;
        }
        if let Some(bytes) = self.creation_data.remove(&id) {
            self.dropped_data.push_back((self.sim.tm.next_task_id(), bytes));
            self.dropped_data_bytes += bytes;
        }
    }

    /// Before buffer `id` is created with `bytes` of data: blocks while the creation data of dropped buffers that
    /// the runtime may still hold, with these bytes, would exceed [`CREATION_DATA_BACKLOG`], until the runtime has
    /// freed the oldest of them down to half of it (or has nothing left to run), so that a program that creates
    /// and drops buffers with data in a loop holds bounded memory however far the runtime falls behind.
    pub(super) fn hold_back_data(&mut self, rt: &RuntimeHandle, id: BufferId, bytes: u64) {
        self.creation_data.insert(id, bytes);
        self.forget_freed_data(rt.completed_before());
        if self.dropped_data_bytes + bytes <= CREATION_DATA_BACKLOG {
            return;
        }
        let mut newest_waited = None;
        while self.dropped_data_bytes > CREATION_DATA_BACKLOG / 2 {
            let Some((before, b)) = self.dropped_data.pop_front() else { break };
            self.dropped_data_bytes -= b;
            newest_waited = Some(before);
        }
        if let Some(before) = newest_waited {
            rt.wait_until_completed(before);
        }
    }

    /// Before a buffer of `size` bytes is created: blocks while the buffers dropped whose tasks may not have run
    /// yet, with this one, would exceed [`DROPPED_BUFFER_BACKLOG`], until the runtime has run the tasks of the
    /// oldest of them down to half of it (or has nothing left to run), so that a program creating a temporary
    /// buffer per step holds a bounded number of them however far ahead of the runtime it is.
    pub(super) fn hold_back_buffers(&mut self, rt: &RuntimeHandle, size: u64) {
        let size = size.min(DROPPED_BUFFER_BACKLOG);
        let completed_before = rt.completed_before();
        while let Some(&(before, b)) = self.dropped_buffers.front() {
            if before.0 > completed_before {
                break;
            }
            self.dropped_buffers.pop_front();
            self.dropped_buffer_bytes -= b;
        }
        if self.dropped_buffer_bytes + size <= DROPPED_BUFFER_BACKLOG {
            return;
        }
        let mut newest_waited = None;
        while self.dropped_buffer_bytes + size > DROPPED_BUFFER_BACKLOG / 2 {
            let Some((before, b)) = self.dropped_buffers.pop_front() else { break };
            self.dropped_buffer_bytes -= b;
            newest_waited = Some(before);
        }
        if let Some(before) = newest_waited {
            rt.wait_until_completed(before);
        }
    }

    /// After a fence that reads back `bytes` was recorded: blocks while the fences recorded before it that the
    /// runtime has not yet answered read back more than [`FENCE_DATA_BACKLOG`], until it has answered them down to
    /// half of it (or has nothing left to run), so that a program recording fences in a loop (waited for later,
    /// or dropped unwaited) holds bounded memory however far the runtime falls behind. The new fence itself is
    /// never waited for here, however large; nor is any task the fences do not wait for.
    pub(super) fn hold_back_fence(&mut self, rt: &RuntimeHandle, bytes: u64) {
        // Counted at most at the bound, as the runtime counts its answers: sums cannot overflow.
        let bytes = bytes.min(FENCE_DATA_BACKLOG);
        // One device of the rank reads each fence back (the others push it their parts): the bound is the rank's.
        let pending = self.fence_bytes_recorded.saturating_sub(rt.fence_bytes_answered());
        if pending > FENCE_DATA_BACKLOG {
            rt.wait_fence_bytes(self.fence_bytes_recorded - FENCE_DATA_BACKLOG / 2);
        }
        self.fence_bytes_recorded += bytes;
    }

    /// Forgets the dropped buffers' creation data that the runtime has freed: theirs whose tasks all completed
    /// before task `completed_before`.
    fn forget_freed_data(&mut self, completed_before: u64) {
        while let Some(&(before, b)) = self.dropped_data.front() {
            if before.0 > completed_before {
                break;
            }
            self.dropped_data.pop_front();
            self.dropped_data_bytes -= b;
        }
    }

    pub(super) fn after_submit(&mut self) {
        self.submitted += 1;
        for d in self.sim.tm.take_diagnostics() {
            log::warn!("{d}");
        }
    }

    pub(super) fn epoch(&mut self, action: EpochAction) -> TaskId {
        if action != EpochAction::Shutdown {
            self.waits += 1;
            if !self.warned_waits {
                if let Some(w) = frequent_wait_warning(self.waits, self.submitted) {
                    log::warn!("{w}");
                    self.warned_waits = true;
                }
            }
        }
        self.sim.epoch(action).expect("epochs cannot fail to generate")
    }
}

#[cfg(test)]
mod tests {
    use super::frequent_wait_warning;
    use crate::{access, task, GridBox, Kernel, Queue, Region};

    #[test]
    fn a_region_of_many_scattered_boxes_is_warned_about() {
        let q = Queue::dry_run();
        let a = q.buffer::<f32, 1>([2 * 16_400]).named("evens");
        let every_other = access::custom("every_other", |c: &GridBox<1>, _: &GridBox<1>| {
            Region::from_boxes((c.min()[0]..c.max()[0]).map(|i| GridBox::d1(2 * i, 2 * i + 1)))
        });
        let k = Kernel::named("k");
        let scattered =
            q.submit(task::parallel_for(&k, [16_400]).discard_write(&a, every_other.clone()).name("s")).unwrap();
        let plain = q.submit(task::parallel_for(&k, [2 * 16_400]).read_write(&a, access::one_to_one())).unwrap();
        let few = q.submit(task::parallel_for(&k, [16_384]).discard_write(&a, every_other)).unwrap();
        let rec = q.rec.borrow();
        let w = rec.scattered_warning(scattered).expect("16 400 boxes");
        assert!(w.contains("In task T1 \"s\": buffer B0 \"evens\" is accessed in a region of 16400 separate"), "{w}");
        assert!(rec.scattered_warning(plain).is_none());
        assert!(rec.scattered_warning(few).is_none(), "16 384 boxes are not warned about");
        assert!(rec.warned_scattered, "submit gave the warning");
    }

    #[test]
    fn a_write_every_chunk_makes_is_warned_about_on_one_node_and_refused_on_two() {
        // A histogram whose items all atomicAdd into the bins through `all` (a write: a named kernel has no atomics
        // to exempt a read_write from the race check): right on one rank, refused on two.
        let histogram = |q: &Queue| {
            let data = q.buffer_from(&[3u32; 100], [100]).named("data");
            let bins = q.buffer_from(&[0u32; 16], [16]).named("bins");
            q.submit(
                task::parallel_for(&Kernel::named("k"), [100])
                    .read(&data, access::one_to_one())
                    .write(&bins, access::all())
                    .name("naive_histogram"),
            )
            .map(|_| ())
        };
        let one = Queue::dry_run();
        histogram(&one).expect("one node runs it as one chunk");
        assert!(one.rec.borrow().warned_single_node_overlap, "submit warned that two nodes refuse it");
        let two = Queue::builder().dry_run(2).build().unwrap();
        let e = histogram(&two).expect_err("two nodes both write every bin");
        assert!(!two.rec.borrow().warned_single_node_overlap, "refused, not warned about");
        // The warning carries the error two nodes give, and what to do.
        let task = celer_scheduler::graph::TaskIdent {
            id: celer_scheduler::graph::TaskId(1),
            name: Some("naive_histogram".into()),
        };
        let w = super::super::single_node_overlap_warning(&task, &e.inner);
        assert!(w.starts_with("In task T1 \"naive_histogram\": this run has one node"), "{w}");
        assert!(
            w.contains("buffer B1 \"bins\" is written in {[0] - [16]} by the chunk on N0 and by the chunk on N1"),
            "{w}"
        );
        assert!(w.contains("a row of its own per block of items"), "{w}");
        // A task that writes disjoint cells is not warned about.
        let q = Queue::dry_run();
        let b = q.buffer::<u32, 1>([16]);
        q.submit(task::parallel_for(&Kernel::named("k"), [16]).discard_write(&b, access::one_to_one())).unwrap();
        assert!(!q.rec.borrow().warned_single_node_overlap);
    }

    #[test]
    fn a_sentinel_identity_is_warned_about_once_and_a_wrong_one_refused() {
        let q = Queue::dry_run();
        let flags = q.buffer_from(&[1u32; 8], [8]).named("flags");
        let last = q.buffer::<i32, 0>([]).named("last");
        let k = Kernel::named("k");
        let reduce = |identity: i32| {
            task::parallel_for(&k, [8]).read(&flags, access::one_to_one()).reduce_with(&last, identity, i32::max)
        };
        // -1 as "no index found": kept by every value but i32::MIN, so the task runs and is warned about.
        q.submit(reduce(-1).name("largest_index")).expect("a sentinel identity is accepted");
        assert!(q.rec.borrow().warned_identity, "submit warned about the sentinel");
        // A maximum from 0 loses every negative value: refused.
        let e = q.submit(reduce(0).name("from_zero")).expect_err("0 is no identity of a maximum of i32");
        assert!(e.to_string().contains("combine(0, -1) = 0, not -1"), "{e}");
    }

    #[test]
    fn waiting_every_few_tasks_is_warned_once_enough_waits_were_seen() {
        assert!(frequent_wait_warning(31, 31).is_none(), "too few waits to judge");
        let w = frequent_wait_warning(32, 64).expect("a wait every 2 tasks");
        assert!(w.contains("32 wait()/barrier() calls for 64 tasks") && w.contains("every 2.0 tasks"), "{w}");
        assert!(frequent_wait_warning(32, 128).is_none(), "a wait every 4 tasks is fine");
    }
}
