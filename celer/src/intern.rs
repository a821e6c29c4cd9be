//! What `submit` keeps between calls so that a task of a shape submitted before costs no allocation and no second
//! kernel check: task names, access lists and checked kernel payloads, each held once and shared (`Arc`) by every
//! task that uses it.
//!
//! A program submits the same few task shapes over and over (a time step's kernels, rotating buffers). The built
//! task travels to the runtime thread, which frees it: anything `submit` allocated for it would be allocated on one
//! thread and freed on the other, where both threads then contend for the allocator. A task whose name, accesses
//! and kernel payload are found here shares them instead, and its kernel binding check is the one done for the
//! first task of its shape (the check reads nothing else, so its outcome is the same). The shape holds the types of
//! the scalar values, not the values (which the check does not read): a time step that passes its step number
//! reuses the check and only lays its values out again, in a payload of its own where they changed.

use std::cell::RefCell;
use std::sync::Arc;

use celer_scheduler::exec::shaders::{KernelSource, ScalarType};
use celer_scheduler::graph::{AccessMode, BufferAccess, RangeMapper};
use celer_scheduler::runtime::KernelPayload;
use smallvec::SmallVec;

use crate::binding::{BindMeta, PushLayout, ScalarArg};

/// Task names kept per thread.
const NAMES_KEPT: usize = 32;
/// Access lists kept.
const ACCESS_LISTS: usize = 16;
/// Checked kernel shapes kept.
const KERNELS: usize = 16;

/// A task's payload (`TaskSpec::payload`): here always a kernel's.
pub(crate) type Payload = Arc<dyn std::any::Any + Send + Sync>;

/// A task's accesses as the builder collects them (most tasks have at most four).
pub(crate) type Accesses = SmallVec<[BufferAccess; 4]>;

thread_local! {
    /// The task names this thread used recently, the most recently used first.
    static NAMES: RefCell<Vec<Arc<str>>> = const { RefCell::new(Vec::new()) };
}

/// The kept copy of the task name `name` (kept from now on if it is new): the builder's `.name("step")` of every
/// step shares one `Arc` instead of allocating one per task.
pub(crate) fn task_name(name: &str) -> Arc<str> {
    NAMES.with_borrow_mut(|names| match names.iter().position(|n| **n == *name) {
        Some(i) => {
            to_front(names, i);
            Arc::clone(&names[0])
        }
        None => {
            let kept: Arc<str> = name.into();
            remember(names, Arc::clone(&kept), NAMES_KEPT);
            kept
        }
    })
}

/// Access lists and kernel payloads of recent submissions, the most recently used first.
#[derive(Default)]
pub(crate) struct SubmitCache {
    access_lists: Vec<Arc<Vec<BufferAccess>>>,
    /// Shapes whose kernel check passed, with where their scalar values go and the payload of the last task of
    /// the shape (shared by the next one if its values are the same).
    kernels: Vec<(KernelShape, PushLayout, Arc<KernelPayload>)>,
}

impl std::fmt::Debug for SubmitCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SubmitCache")
            .field("access_lists", &self.access_lists.len())
            .field("kernels", &self.kernels.len())
            .finish()
    }
}

/// Moves the entry at `i` to the front, keeping the order of the others.
fn to_front<T>(list: &mut [T], i: usize) {
    if i > 0 {
        list[..=i].rotate_right(1);
    }
}

/// Inserts `item` at the front, dropping the least recently used entry beyond `limit`.
fn remember<T>(list: &mut Vec<T>, item: T, limit: usize) {
    if list.len() == limit {
        list.pop();
    }
    list.insert(0, item);
}

/// Whether two accesses are the same: buffer, mode and mapper (a custom mapper only as the same closure).
fn same_access(a: &BufferAccess, b: &BufferAccess) -> bool {
    if a.buffer != b.buffer || a.mode != b.mode {
        return false;
    }
    match (&a.mapper, &b.mapper) {
        (RangeMapper::OneToOne, RangeMapper::OneToOne)
        | (RangeMapper::All, RangeMapper::All)
        | (RangeMapper::Transposed, RangeMapper::Transposed) => true,
        (RangeMapper::Fixed(x), RangeMapper::Fixed(y)) => x == y,
        (RangeMapper::Slice(x), RangeMapper::Slice(y)) => x == y,
        (RangeMapper::EvenSplit { granularity: x }, RangeMapper::EvenSplit { granularity: y }) => x == y,
        (RangeMapper::Neighborhood { extent: e1, shape: s1 }, RangeMapper::Neighborhood { extent: e2, shape: s2 }) => {
            e1 == e2 && s1 == s2
        }
        _ => false,
    }
}

/// What a kernel binding check reads of a task without named bindings, named scalars or reductions (the only tasks
/// whose checks are kept): its outcome depends on exactly these fields.
pub(crate) struct KernelShape {
    source: &'static KernelSource,
    entry: &'static str,
    /// The task's dimensions.
    dims: usize,
    /// Per access, in order: its mode.
    modes: SmallVec<[AccessMode; 4]>,
    /// Per access, in order: the buffer's element type and size, and its dimensionality.
    elements: SmallVec<[(ScalarType, u32, u8); 4]>,
    /// The positional scalars' component types and counts (their values go where the kept [`PushLayout`] says).
    scalars: SmallVec<[(ScalarType, u8); 8]>,
}

impl KernelShape {
    /// The shape of `key`'s task, to keep once its check passed ([`SubmitCache::remember_kernel`]).
    pub(crate) fn of(key: &KernelKey<'_>) -> Self {
        Self {
            source: key.source,
            entry: key.entry,
            dims: key.dims,
            modes: key.accesses.iter().map(|a| a.mode).collect(),
            elements: key.accessors.iter().map(BindMeta::shape).collect(),
            scalars: key.scalars.iter().map(ScalarArg::shape).collect(),
        }
    }

    fn matches(&self, key: &KernelKey<'_>) -> bool {
        std::ptr::eq(self.source, key.source)
            && (std::ptr::eq(self.entry, key.entry) || self.entry == key.entry)
            && self.dims == key.dims
            && self.modes.len() == key.accesses.len()
            && self.modes.iter().zip(key.accesses).all(|(m, a)| *m == a.mode)
            && self.elements.len() == key.accessors.len()
            && self.elements.iter().zip(key.accessors).all(|(e, m)| *e == m.shape())
            && self.scalars.len() == key.scalars.len()
            && self.scalars.iter().zip(key.scalars).all(|(s, v)| *s == v.shape())
    }
}

/// What a kernel binding check reads of a task (see [`KernelShape`]).
pub(crate) struct KernelKey<'a> {
    pub(crate) source: &'static KernelSource,
    pub(crate) entry: &'static str,
    pub(crate) dims: usize,
    pub(crate) accesses: &'a [BufferAccess],
    pub(crate) accessors: &'a [BindMeta],
    pub(crate) scalars: &'a [ScalarArg],
}

impl KernelKey<'_> {
    /// Whether a check of this task may be kept: nothing named, no reductions (`reductions` is their count).
    pub(crate) fn cacheable(&self, reductions: usize) -> bool {
        reductions == 0
            && self.accessors.iter().all(|m| !m.is_named())
            && self.scalars.iter().all(|s| !s.is_named())
            && self.accesses.len() == self.accessors.len()
    }
}

impl SubmitCache {
    /// The kept list equal to `accesses` (kept from now on if it is new and names no custom mapper, which could
    /// only match itself). A new list is built in `spare()` where that gives one (an erased task's list, emptied).
    pub(crate) fn accesses(
        &mut self,
        accesses: &Accesses,
        spare: impl FnOnce() -> Option<Arc<Vec<BufferAccess>>>,
    ) -> Arc<Vec<BufferAccess>> {
        // A list with a custom mapper matches no kept list (none has one): no need to look.
        let keep = accesses.iter().all(|a| !matches!(a.mapper, RangeMapper::Custom { .. }));
        let same = |l: &Arc<Vec<BufferAccess>>| {
            l.len() == accesses.len() && l.iter().zip(accesses).all(|(a, b)| same_access(a, b))
        };
        if let Some(i) = keep.then(|| self.access_lists.iter().position(same)).flatten() {
            to_front(&mut self.access_lists, i);
            return Arc::clone(&self.access_lists[0]);
        }
        let list = match spare() {
            Some(mut list) => {
                let l = Arc::get_mut(&mut list).expect("a spare access list is not shared");
                debug_assert!(l.is_empty(), "a spare access list is empty");
                l.extend(accesses.iter().cloned());
                list
            }
            None => Arc::new(accesses.to_vec()),
        };
        if keep {
            remember(&mut self.access_lists, Arc::clone(&list), ACCESS_LISTS);
        }
        list
    }

    /// The payload for a task of the shape of an earlier task whose check passed, with `key`'s scalar values: the
    /// earlier task's own where the values are the same.
    pub(crate) fn kernel(&mut self, key: &KernelKey<'_>) -> Option<Payload> {
        let i = self.kernels.iter().position(|(k, ..)| k.matches(key))?;
        to_front(&mut self.kernels, i);
        let (_, layout, payload) = &mut self.kernels[0];
        if !layout.holds(&payload.scalars, key.scalars) {
            // Only values differ, which the check does not read: the earlier task's payload with these.
            *payload = Arc::new(KernelPayload {
                source: payload.source,
                entry: payload.entry,
                scalars: layout.fill(key.scalars),
                reduction_kinds: payload.reduction_kinds.clone(),
                custom_reductions: payload.custom_reductions.clone(),
                blocks: payload.blocks,
            });
        }
        Some(Arc::clone(payload) as Payload)
    }

    /// Keeps the push layout and payload of a task of `shape` whose check passed ([`KernelKey::cacheable`] tasks
    /// only).
    pub(crate) fn remember_kernel(&mut self, shape: KernelShape, layout: PushLayout, payload: &Arc<KernelPayload>) {
        remember(&mut self.kernels, (shape, layout, Arc::clone(payload)), KERNELS);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use celer_scheduler::graph::{BufferId, NeighborhoodShape};

    fn access(buffer: u64, mode: AccessMode, mapper: RangeMapper) -> BufferAccess {
        BufferAccess { buffer: BufferId(buffer), mode, mapper }
    }

    #[test]
    fn equal_access_lists_are_shared_and_different_ones_are_not() {
        let mut cache = SubmitCache::default();
        let halo = RangeMapper::Neighborhood { extent: [1, 1, 0], shape: NeighborhoodShape::AlongAxes };
        let list = |b: u64, m: RangeMapper| -> Accesses {
            [access(b, AccessMode::Read, m), access(b + 1, AccessMode::DiscardWrite, RangeMapper::OneToOne)]
                .into_iter()
                .collect()
        };
        let first = cache.accesses(&list(0, halo.clone()), || None);
        let again = cache.accesses(&list(0, halo.clone()), || None);
        assert!(Arc::ptr_eq(&first, &again), "the same list is shared");
        let wider = RangeMapper::Neighborhood { extent: [2, 1, 0], shape: NeighborhoodShape::AlongAxes };
        assert!(!Arc::ptr_eq(&first, &cache.accesses(&list(0, wider), || None)), "another extent is another list");
        assert!(!Arc::ptr_eq(&first, &cache.accesses(&list(1, halo.clone()), || None)), "other buffers, another list");
        let mut read = list(0, halo);
        read[1].mode = AccessMode::Write;
        assert!(!Arc::ptr_eq(&first, &cache.accesses(&read, || None)), "another mode, another list");
        let custom = || RangeMapper::Custom { name: "c", f: Arc::new(|c, _, _| (*c).into()), reach: None };
        let a = cache.accesses(&list(0, custom()), || None);
        assert!(
            !Arc::ptr_eq(&a, &cache.accesses(&list(0, custom()), || None)),
            "lists with custom mappers are not kept"
        );
        // A new list is built in the spare one offered, which then holds exactly the accesses.
        let spare = Arc::new(Vec::with_capacity(4));
        let offered = Arc::clone(&spare);
        drop(spare);
        let ptr = Arc::as_ptr(&offered);
        let built = cache.accesses(&list(5, custom()), move || Some(offered));
        assert_eq!(Arc::as_ptr(&built), ptr, "built in the spare list");
        assert_eq!(built.iter().map(|a| (a.buffer, a.mode)).collect::<Vec<_>>(), {
            vec![(BufferId(5), AccessMode::Read), (BufferId(6), AccessMode::DiscardWrite)]
        });
        // A list found kept takes no spare.
        let halo = RangeMapper::Neighborhood { extent: [1, 1, 0], shape: NeighborhoodShape::AlongAxes };
        let kept = cache.accesses(&list(0, halo), || panic!("a kept list needs no spare"));
        assert!(Arc::ptr_eq(&kept, &first));
    }

    #[test]
    fn names_are_shared_by_content_and_the_least_recent_goes_first() {
        let a = task_name("step");
        assert!(Arc::ptr_eq(&a, &task_name(&String::from("step"))));
        for i in 0..NAMES_KEPT {
            task_name(&format!("n{i}"));
        }
        assert!(!Arc::ptr_eq(&a, &task_name("step")), "dropped after NAMES_KEPT others");
        assert_eq!(&*task_name("step"), "step");
    }
}
