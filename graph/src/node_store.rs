//! [`NodeStore`]: graph nodes owned by epoch, in one [`HorizonArena`] per horizon window.
//!
//! Nodes get dense, increasing ids (task or command ids). Each horizon or epoch starts a new window
//! ([`begin_epoch`](NodeStore::begin_epoch)); once the runtime has passed a horizon, every window before it goes at
//! once ([`erase_before_epoch`](NodeStore::erase_before_epoch)), its arena reset in one step. [`ExecutionFront`]
//! tracks which nodes of the newest window nothing depends on yet.

use std::collections::VecDeque;
use std::fmt;
use std::ptr::NonNull;

use celer_alloc::HorizonArena;

/// How many reset arenas to keep for reuse. The windows alive at once are as many as the horizons between what the
/// runtime generated and what it has passed: with tiny kernels batched on the GPU, dozens (a batch of 64 kernels
/// spans 16 windows at the default horizon step), erased together once their batch completes and opened again as
/// the next tasks come. A pool smaller than that freed and reallocated most arenas.
const MAX_SPARE_ARENAS: usize = 64;

/// One horizon window: the id of the horizon or epoch that opened it, and the arena its nodes live in.
struct Window {
    first_id: u64,
    arena: HorizonArena,
}

/// Nodes of type `N` keyed by a dense `u64` id, freed a horizon window at a time.
pub struct NodeStore<N> {
    windows: VecDeque<Window>,
    /// `index[i]` is the node with id `base + i`, if it is still alive.
    index: VecDeque<Option<NonNull<N>>>,
    base: u64,
    /// Arenas of erased windows, reset and kept for reuse so steady state allocates no new chunks.
    spare: Vec<HorizonArena>,
}

// SAFETY: the store owns its nodes exclusively (the pointers are never shared outside `&self`/`&mut self` borrows),
// so sending the store sends the `N`s, which is fine when `N: Send`.
unsafe impl<N: Send> Send for NodeStore<N> {}

impl<N> Default for NodeStore<N> {
    fn default() -> Self {
        Self { windows: VecDeque::new(), index: VecDeque::new(), base: 0, spare: Vec::new() }
    }
}

impl<N> NodeStore<N> {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Opens a new window starting at node `id`. Call this before inserting the horizon or epoch node `id`.
    ///
    /// # Panics
    /// If `id` is not above the previous window's first id and every id inserted so far: the windows must
    /// partition the ids, since [`erase_before_epoch`](Self::erase_before_epoch) frees a window's arena on the
    /// strength of its nodes' ids.
    pub fn begin_epoch(&mut self, id: u64) {
        // Real asserts, not debug ones: a window opened at or below a node an earlier window holds would let
        // `erase_before_epoch` reset that arena while the index still points into it (a use after free in `get`).
        assert!(
            self.windows.back().is_none_or(|w| w.first_id < id),
            "epoch ids must grow: {id} after {:?}",
            self.windows.back().map(|w| w.first_id)
        );
        let next = self.base + self.index.len() as u64;
        assert!(id >= next, "epoch {id} opened at or below node {} already inserted", next - 1);
        // Without a spare (windows are opened faster than erased, e.g. while the program submits ahead of the
        // runtime), one chunk for what the previous window holds, instead of growing a fresh arena chunk by chunk.
        let arena = self
            .spare
            .pop()
            .unwrap_or_else(|| HorizonArena::with_capacity(self.windows.back().map_or(0, |w| w.arena.used_bytes())));
        self.windows.push_back(Window { first_id: id, arena });
    }

    /// Moves `node` with id `id` into the current window. Ids must be inserted in increasing order.
    ///
    /// # Panics
    /// If no window was opened, `id` is below the current window's first id, or `id` is not above every id
    /// inserted so far.
    pub fn insert(&mut self, id: u64, node: N) -> &mut N
    where
        N: 'static,
    {
        self.insert_with(id, || node)
    }

    /// Like [`insert`](Self::insert), building the node with `make` in its arena slot (no move of a large node).
    ///
    /// # Panics
    /// As [`insert`](Self::insert).
    #[inline]
    pub fn insert_with(&mut self, id: u64, make: impl FnOnce() -> N) -> &mut N
    where
        N: 'static,
    {
        let window = self.windows.back().expect("begin_epoch must be called before the first insert");
        // With the checks of `begin_epoch`, every node of a window has an id in [its first id, the next window's
        // first id), which is what `erase_before_epoch` relies on to drop a window's index entries with its arena.
        assert!(id >= window.first_id, "node {id} inserted below the current window, opened at {}", window.first_id);
        if self.index.is_empty() && self.base <= id {
            self.base = id;
        }
        let slot = id.checked_sub(self.base).expect("node id below the erased range") as usize;
        assert!(slot >= self.index.len(), "node ids must be inserted in increasing order (got {id})");
        while self.index.len() < slot {
            self.index.push_back(None);
        }
        let ptr = NonNull::from(window.arena.alloc_with(make));
        self.index.push_back(Some(ptr));
        // SAFETY: `ptr` points into the arena of a window this store owns; it was just created, and the returned
        // borrow of `self` keeps every other access (and any reset) away while it lives.
        unsafe { &mut *ptr.as_ptr() }
    }

    /// The node `id`, if it was inserted and has not been erased.
    pub fn get(&self, id: u64) -> Option<&N> {
        let slot = id.checked_sub(self.base)? as usize;
        let ptr = (*self.index.get(slot)?)?;
        // SAFETY: live index entries point to nodes in arenas this store owns and resets only through `&mut self`
        // (`erase_before_epoch`, which also clears their entries); the returned borrow is tied to `&self`.
        Some(unsafe { &*ptr.as_ptr() })
    }

    /// The node `id`, mutably.
    pub fn get_mut(&mut self, id: u64) -> Option<&mut N> {
        let slot = id.checked_sub(self.base)? as usize;
        let ptr = (*self.index.get(slot)?)?;
        // SAFETY: as in `get`; `&mut self` makes this the only borrow of any node.
        Some(unsafe { &mut *ptr.as_ptr() })
    }

    /// Frees every window that ends before the window opened by `id`, and all their nodes.
    ///
    /// Call this once the runtime has passed horizon or epoch `id`; nothing may refer to the freed nodes by then.
    pub fn erase_before_epoch(&mut self, id: u64) {
        self.erase_before_epoch_with(id, |_| {});
    }

    /// Like [`erase_before_epoch`](Self::erase_before_epoch), handing each node to `recycle` just before it is
    /// dropped, so that the caller can take back storage the node owns (a buffer to reuse for a later node).
    pub fn erase_before_epoch_with(&mut self, id: u64, mut recycle: impl FnMut(&mut N)) {
        while self.windows.len() > 1 && self.windows[1].first_id <= id {
            let first_kept = self.windows[1].first_id;
            while self.base < first_kept {
                if let Some(Some(ptr)) = self.index.pop_front() {
                    // SAFETY: live index entries point to nodes in arenas this store owns; the node is still
                    // initialized (its window is reset below, after this loop) and `&mut self` makes this the
                    // only reference to it.
                    recycle(unsafe { &mut *ptr.as_ptr() });
                }
                self.base += 1;
            }
            // Resetting the arena runs the nodes' destructors; the arena itself is kept for a later window. Every
            // node it holds had an id below `first_kept` (the asserts of `begin_epoch` and `insert_with`), so the
            // loop above removed all their index entries: no pointer into the reset arena is left.
            let mut window = self.windows.pop_front().expect("at least two windows");
            window.arena.reset();
            if self.spare.len() < MAX_SPARE_ARENAS {
                self.spare.push(window.arena);
            }
        }
    }

    /// Number of live nodes.
    pub fn len(&self) -> usize {
        self.index.iter().filter(|p| p.is_some()).count()
    }

    /// Whether no node is alive.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of live windows (horizons and epochs not yet erased).
    pub fn window_count(&self) -> usize {
        self.windows.len()
    }

    /// Bytes held by the windows' arenas.
    pub fn arena_bytes(&self) -> usize {
        self.windows.iter().map(|w| w.arena.allocated_bytes()).sum()
    }

    /// Live nodes in id order.
    pub fn iter(&self) -> impl Iterator<Item = &N> + '_ {
        // SAFETY: as in `get`.
        self.index.iter().flatten().map(|p| unsafe { &*p.as_ptr() })
    }
}

/// The nodes nothing depends on yet (what the next horizon or epoch must wait for), kept as one "followed" flag per
/// node of the current horizon window: marking a dependency is an index, not a search and removal in a sorted list.
///
/// Every horizon or epoch depends on the whole front, so the front never holds a node older than the newest of them;
/// edges to older nodes need no bookkeeping.
#[derive(Clone, Debug, Default)]
pub struct ExecutionFront {
    /// Id of the newest horizon or epoch (the window's first node).
    base: u64,
    /// `followed[i]`: node `base + i` has a dependent.
    followed: Vec<bool>,
    /// Nodes of the window without a dependent.
    len: usize,
}

impl ExecutionFront {
    /// An empty front.
    pub fn new() -> Self {
        Self::default()
    }

    /// Notes that a new node depends on node `id`, which leaves the front.
    #[inline]
    pub fn follow(&mut self, id: u64) {
        if let Some(f) = id.checked_sub(self.base).and_then(|i| self.followed.get_mut(i as usize)) {
            if !*f {
                *f = true;
                self.len -= 1;
            }
        }
    }

    /// Adds node `id`, above every node added before; a horizon or epoch (`sync`) starts a new window holding only
    /// itself (it depends on the whole front).
    pub fn push(&mut self, id: u64, sync: bool) {
        if sync || self.followed.is_empty() {
            self.base = id;
            self.followed.clear();
            self.len = 0;
        }
        let slot = id.checked_sub(self.base).expect("node ids must grow") as usize;
        assert!(slot >= self.followed.len(), "node ids must grow (got {id})");
        // Ids between the last node and this one name no node: never in the front.
        self.followed.resize(slot, true);
        self.followed.push(false);
        self.len += 1;
    }

    /// Number of nodes without a dependent.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no node is in the front.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The nodes without a dependent, in id order.
    pub fn iter(&self) -> impl Iterator<Item = u64> + '_ {
        self.followed.iter().enumerate().filter(|(_, f)| !**f).map(|(i, _)| self.base + i as u64)
    }
}

/// Emptied vectors handed back by erased nodes (see [`NodeStore::erase_before_epoch_with`]), for new nodes to fill
/// instead of allocating. Keeps at most a horizon window's worth.
#[derive(Debug)]
pub struct VecPool<T> {
    spare: Vec<Vec<T>>,
}

impl<T> Default for VecPool<T> {
    fn default() -> Self {
        Self { spare: Vec::new() }
    }
}

impl<T> VecPool<T> {
    /// How many vectors the pool keeps.
    const LIMIT: usize = 64;

    /// An empty pool.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty vector, with a spare one's storage if there is one.
    pub fn take(&mut self) -> Vec<T> {
        self.spare.pop().unwrap_or_default()
    }

    /// Takes `v`'s storage (leaving `v` empty and unallocated) for a later [`take`](Self::take), unless it has none
    /// or the pool is full.
    pub fn give(&mut self, v: &mut Vec<T>) {
        if v.capacity() > 0 && self.spare.len() < Self::LIMIT {
            let mut kept = std::mem::take(v);
            kept.clear();
            self.spare.push(kept);
        }
    }
}

impl<N> fmt::Debug for NodeStore<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NodeStore")
            .field("windows", &self.windows.len())
            .field("base", &self.base)
            .field("live", &self.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[should_panic(expected = "epoch 15 opened at or below node 20 already inserted")]
    fn an_epoch_opened_below_an_inserted_node_is_refused() {
        // Accepted, `erase_before_epoch(15)` reset the arena holding node 20 while `get(20)` still reached it (a use
        // after free, shown by valgrind on the node's Vec).
        let mut s = NodeStore::new();
        s.begin_epoch(10);
        s.insert(20, vec![1u64, 2, 3]);
        s.begin_epoch(15);
        s.erase_before_epoch(15);
        assert_eq!(s.get(20), Some(&vec![1, 2, 3]));
    }

    #[test]
    #[should_panic(expected = "epoch ids must grow: 5 after Some(10)")]
    fn an_epoch_below_the_previous_one_is_refused_in_release_builds_too() {
        let mut s = NodeStore::<Vec<u64>>::new();
        s.begin_epoch(10);
        s.begin_epoch(5);
    }

    #[test]
    #[should_panic(expected = "node 3 inserted below the current window, opened at 4")]
    fn a_node_below_its_window_is_refused() {
        let mut s = NodeStore::new();
        s.begin_epoch(0);
        s.insert(1, vec![1u64]);
        s.begin_epoch(4);
        s.insert(3, vec![3u64]);
    }

    #[test]
    fn erasing_drops_whole_windows_only() {
        let mut s = NodeStore::new();
        s.begin_epoch(0);
        for i in 0..5 {
            s.insert(i, vec![i]);
        }
        s.begin_epoch(5);
        for i in 5..9 {
            s.insert(i, vec![i]);
        }
        s.begin_epoch(9);
        s.insert(9, vec![9]);
        s.erase_before_epoch(7); // 7 lies inside window 5: only window 0 goes.
        assert!(s.get(4).is_none());
        assert_eq!(s.get(5), Some(&vec![5]));
        assert_eq!(s.window_count(), 2);
        s.erase_before_epoch(9);
        assert!(s.get(8).is_none());
        assert_eq!(s.get(9), Some(&vec![9]));
        assert_eq!(s.len(), 1);
    }

    #[test]
    fn erased_nodes_are_handed_back_once_before_they_drop() {
        let mut s = NodeStore::new();
        for (first, ids) in [(0, 0..3), (3, 3..5), (5, 5..6)] {
            s.begin_epoch(first);
            for i in ids {
                s.insert(i, vec![i]);
            }
        }
        let mut taken = Vec::new();
        s.erase_before_epoch_with(5, |v: &mut Vec<u64>| taken.push(std::mem::take(v)));
        assert_eq!(taken, vec![vec![0], vec![1], vec![2], vec![3], vec![4]]);
        s.erase_before_epoch_with(5, |_| panic!("nothing left to erase before 5"));
        assert_eq!(s.get(5), Some(&vec![5]));
    }

    #[test]
    fn a_pool_hands_storage_back_emptied() {
        let mut pool = VecPool::new();
        let mut v = Vec::with_capacity(8);
        v.push(1u8);
        pool.give(&mut v);
        assert_eq!(v.capacity(), 0, "the storage moved into the pool");
        let reused = pool.take();
        assert!(reused.is_empty() && reused.capacity() >= 8);
        pool.give(&mut Vec::new());
        assert_eq!(pool.take().capacity(), 0, "storage-less vectors are not kept");
    }

    #[test]
    fn the_front_holds_exactly_the_nodes_without_dependents() {
        let mut f = ExecutionFront::new();
        f.push(0, true);
        // 1 and 2 depend on 0; 3 depends on 1; 5 (4 is no node) depends on 3 and on 0 again.
        for (id, deps) in [(1, vec![0]), (2, vec![0]), (3, vec![1]), (5, vec![3, 0])] {
            for d in deps {
                f.follow(d);
            }
            f.push(id, false);
        }
        assert_eq!(f.iter().collect::<Vec<_>>(), vec![2, 5]);
        assert_eq!(f.len(), 2);
        // A horizon depends on the front and becomes all of it; edges to older nodes change nothing.
        f.follow(2);
        f.follow(5);
        f.push(6, true);
        f.follow(3);
        assert_eq!(f.iter().collect::<Vec<_>>(), vec![6]);
        assert_eq!(f.len(), 1);
    }
}
