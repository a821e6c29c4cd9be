//! Where a task manager's tasks live: [`TaskStore`], the live tasks keyed by id and erased a horizon window at a
//! time, and the erased task nodes it keeps to build new tasks in, so that in steady state no task is allocated.

use std::collections::VecDeque;
use std::sync::Arc;

use smallvec::SmallVec;

use crate::geometry::GridBox;
use crate::ids::TaskId;
use crate::task::{BufferAccess, RegionList, Task, TaskKind, TaskSpec};

/// How many erased tasks a store keeps to build new ones in: more than a horizon window holds in steady state at the
/// default settings, so that a window's tasks are built in the nodes of the window erased before.
const MAX_SPARE_TASKS: usize = 128;

/// How many erased tasks that another holder still shares a store holds, to reuse once that holder lets go: the
/// runtime thread, which replays the application thread's tasks, runs up to `CELER_SUBMIT_AHEAD` horizons behind
/// (128 by default, windows of 4 to 5 tasks in a chain of kernels), and a task dropped here for want of room is
/// freed there and allocated afresh here (held tasks are alive in the other holder anyway).
const MAX_HELD_TASKS: usize = 1024;

/// How many emptied access lists a store keeps for new tasks' lists.
const MAX_SPARE_LISTS: usize = 64;

/// How many still shared held tasks a store looks past when it looks for one to reuse: the other holder lets go of
/// a window's tasks together, but of a horizon or epoch (the first of its window) only with the next one.
const MAX_HELD_SKIPPED: usize = 4;

/// The live tasks, keyed by their dense ids, erased a horizon window at a time, and the erased task nodes kept for
/// reuse. Each task is an allocation of its own (an `Arc` the runtime thread may share), so an erased node nobody
/// else holds is emptied and kept rather than freed.
pub(crate) struct TaskStore {
    /// `index[i]` is task `base + i`, if it is alive.
    index: VecDeque<Option<Arc<Task>>>,
    base: u64,
    /// The first id of every live window (each horizon or epoch opens one), oldest first.
    windows: VecDeque<u64>,
    /// Erased tasks that nobody else held any more, emptied, for new tasks to be built in (no allocation).
    spare: Vec<Arc<Task>>,
    /// Erased tasks that another holder (the runtime thread, replaying them) still had, oldest first: each becomes
    /// a spare once that holder let go and a new task needs its node (or the spares have room), so that in steady
    /// state neither thread allocates or frees a task.
    held: VecDeque<Arc<Task>>,
    /// Whether erased tasks that are still shared are held ([`hold_shared`](Self::hold_shared)): only for a manager
    /// that builds tasks. A manager that only replays lets go of them, or the two would each wait for the other.
    hold_shared: bool,
    /// The empty access list an emptied spare task holds (its own accesses are dropped when it is erased).
    no_accesses: Arc<Vec<BufferAccess>>,
    /// Access lists of emptied tasks that nobody else held, emptied, for the next tasks' lists
    /// ([`spare_access_list`](Self::spare_access_list)): a list with a custom mapper is new for every task.
    spare_lists: Vec<Arc<Vec<BufferAccess>>>,
}

impl TaskStore {
    /// An empty store that does not hold shared erased tasks.
    pub(crate) fn new() -> Self {
        Self {
            index: VecDeque::new(),
            base: 0,
            windows: VecDeque::new(),
            spare: Vec::new(),
            held: VecDeque::new(),
            hold_shared: false,
            no_accesses: empty_spec(TaskKind::Horizon).accesses,
            spare_lists: Vec::new(),
        }
    }

    /// From now on, erased tasks that another holder still shares are held until it lets go, then reused (the
    /// manager builds tasks that another manager replays).
    pub(crate) fn hold_shared(&mut self) {
        self.hold_shared = true;
    }

    /// Stores task `id`, above every id stored so far; a horizon or epoch opens a new window.
    pub(crate) fn insert(&mut self, id: u64, task: Arc<Task>) {
        if matches!(task.spec.kind, TaskKind::Horizon | TaskKind::Epoch(_)) {
            debug_assert!(self.windows.back().is_none_or(|&w| w < id), "epoch ids must grow");
            self.windows.push_back(id);
        }
        if self.index.is_empty() && self.base <= id {
            self.base = id;
        }
        let slot = id.checked_sub(self.base).expect("task id below the erased range") as usize;
        assert!(slot >= self.index.len(), "task ids must be inserted in increasing order (got {id})");
        while self.index.len() < slot {
            self.index.push_back(None);
        }
        self.index.push_back(Some(task));
    }

    /// Task `id`, if it is alive.
    pub(crate) fn get(&self, id: u64) -> Option<&Arc<Task>> {
        self.index.get(id.checked_sub(self.base)? as usize)?.as_ref()
    }

    /// Erases every task of the windows that end before the window opened by `id`, in id order, keeping their nodes
    /// for reuse where nobody else holds them (or holding them until then).
    pub(crate) fn erase_before_epoch(&mut self, id: u64) {
        while self.windows.len() > 1 && self.windows[1] <= id {
            let first_kept = self.windows[1];
            while self.base < first_kept {
                if let Some(Some(task)) = self.index.pop_front() {
                    self.keep_erased(task);
                }
                self.base += 1;
            }
            self.windows.pop_front();
        }
        // As many as the spares have room for (in steady state, as many as the last window's tasks took): the rest
        // wait in `held` until the spares have room, or for `new_node`. Emptying all that the other holder let go of
        // at once (hundreds of tasks' contents after it caught up), with the spares full, would free most nodes and
        // allocate the next tasks' afresh, which costs the allocator more. What a waiting task holds goes when it
        // becomes a spare, when `held` is full, or on `release_erased` (`Queue::wait`).
        self.reclaim_held(MAX_SPARE_TASKS.saturating_sub(self.spare.len()), MAX_HELD_SKIPPED);
    }

    /// An erased task: emptied and kept as a spare if nobody else holds it, held if another holder still does and
    /// this store holds shared tasks, else dropped.
    fn keep_erased(&mut self, mut task: Arc<Task>) {
        match Arc::get_mut(&mut task) {
            // Emptied now, so that what the task held (payload, name, accesses) goes when the task does.
            Some(t) if self.spare.len() < MAX_SPARE_TASKS => {
                empty_task(t, &self.no_accesses, &mut self.spare_lists);
                self.spare.push(task);
            }
            Some(_) => {}
            None if self.hold_shared => {
                if self.held.len() == MAX_HELD_TASKS {
                    self.held.pop_front();
                }
                self.held.push_back(task);
            }
            None => {}
        }
    }

    /// Makes spares of every held task that nobody else holds any more, so that what they held goes now.
    pub(crate) fn release_erased(&mut self) {
        self.reclaim_held(usize::MAX, usize::MAX);
    }

    /// Makes spares of the oldest held tasks that nobody else holds any more (at most `limit`), looking past at most
    /// `max_skipped` still shared ones (the other holder lets go roughly in id order, a window at a time); what they
    /// held goes now. Spares beyond [`MAX_SPARE_TASKS`] are dropped.
    fn reclaim_held(&mut self, limit: usize, max_skipped: usize) {
        // `i` is also the number of still shared tasks passed: a reclaimed one leaves the queue.
        let (mut i, mut reclaimed) = (0, 0);
        while reclaimed < limit && i < self.held.len() && i < max_skipped {
            let Some(t) = Arc::get_mut(&mut self.held[i]) else {
                i += 1;
                continue;
            };
            empty_task(t, &self.no_accesses, &mut self.spare_lists);
            let task = self.held.remove(i).expect("index checked");
            if self.spare.len() < MAX_SPARE_TASKS {
                self.spare.push(task);
            }
            reclaimed += 1;
        }
    }

    /// An unshared, empty task node (a spare one where there is one) to build the next task in.
    #[inline]
    pub(crate) fn new_node(&mut self) -> Arc<Task> {
        if self.spare.is_empty() {
            self.reclaim_held(1, MAX_HELD_SKIPPED);
        }
        self.spare.pop().unwrap_or_else(|| {
            Arc::new(Task {
                id: TaskId(0),
                spec: empty_spec(TaskKind::Horizon),
                regions: RegionList::new(),
                dependencies: SmallVec::new(),
                critical_path_length: 0,
            })
        })
    }

    /// Takes back a node from [`new_node`](Self::new_node) that no task was built in after all (its task was
    /// refused); only its spec and regions were filled, and are dropped now.
    pub(crate) fn give_back(&mut self, mut node: Arc<Task>) {
        let t = Arc::get_mut(&mut node).expect("a new node is not shared yet");
        empty_task(t, &self.no_accesses, &mut self.spare_lists);
        self.spare.push(node);
    }

    /// An empty access list that nobody else holds, with room for a few accesses (an erased task's, emptied), if the
    /// store kept one.
    pub(crate) fn spare_access_list(&mut self) -> Option<Arc<Vec<BufferAccess>>> {
        self.spare_lists.pop()
    }

    /// How many tasks are alive.
    pub(crate) fn len(&self) -> usize {
        self.index.iter().filter(|t| t.is_some()).count()
    }

    /// How many windows are alive (horizons and epochs not yet erased).
    pub(crate) fn window_count(&self) -> usize {
        self.windows.len()
    }

    /// The live tasks, in id order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Arc<Task>> + '_ {
        self.index.iter().flatten()
    }
}

/// The spec of a horizon or epoch: nothing accessed, no index space.
fn empty_spec(kind: TaskKind) -> TaskSpec {
    TaskSpec::new(kind, 0, GridBox::from_extent(&[]))
}

/// Empties an erased task for reuse: drops what it holds (payload, name, accesses, regions, dependencies), leaving a
/// node like a new one (an [`empty_spec`]) with the storage of its vectors.
/// Its access list, if nobody else holds it, is emptied and kept in `spare_lists` (up to [`MAX_SPARE_LISTS`]).
fn empty_task(t: &mut Task, no_accesses: &Arc<Vec<BufferAccess>>, spare_lists: &mut Vec<Arc<Vec<BufferAccess>>>) {
    let s = &mut t.spec;
    if !Arc::ptr_eq(&s.accesses, no_accesses) {
        // The count first (a load): a list shared with a kept one, or with the specs a replayed stream came from,
        // is only let go of, as before.
        if Arc::strong_count(&s.accesses) == 1 && spare_lists.len() < MAX_SPARE_LISTS {
            let mut list = std::mem::replace(&mut s.accesses, Arc::clone(no_accesses));
            if let Some(accesses) = Arc::get_mut(&mut list) {
                accesses.clear();
                spare_lists.push(list);
            }
        } else {
            s.accesses = Arc::clone(no_accesses);
        }
    }
    (s.dims, s.range, s.granularity, s.hint) =
        (0, GridBox::from_extent(&[]), [1; crate::geometry::MAX_DIMS], Default::default());
    s.reductions.clear();
    s.side_effects.clear();
    s.name = None;
    s.payload = None;
    s.atomic_accesses = 0;
    t.regions.clear();
    t.dependencies.clear();
}
