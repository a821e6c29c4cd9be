//! [`HorizonArena`]: a bump arena that runs destructors when it is reset.

use std::cell::{Cell, UnsafeCell};
use std::fmt;
use std::ptr::NonNull;

use bumpalo::Bump;

/// A type-erased pending destructor: where the value lives and how to drop it.
struct DropEntry {
    ptr: NonNull<u8>,
    drop_fn: unsafe fn(NonNull<u8>),
}

/// Drops the `T` at `ptr` in place.
///
/// # Safety
/// `ptr` must point to a live, initialised `T` that nobody will use again.
unsafe fn drop_in_place_erased<T>(ptr: NonNull<u8>) {
    // SAFETY: the caller guarantees `ptr` is a live `T` that is never used again (see the function contract).
    unsafe { std::ptr::drop_in_place(ptr.cast::<T>().as_ptr()) }
}

/// A bump arena for the graph nodes of one horizon window.
///
/// Allocation is a pointer bump; values that need dropping also push one entry onto a destructor list, which
/// [`reset`](Self::reset) (or dropping the arena) walks in allocation order. The arena never frees single values.
///
/// # Examples
/// ```
/// use celer_alloc::HorizonArena;
/// let mut arena = HorizonArena::new();
/// let v = arena.alloc(vec![1, 2, 3]);
/// v.push(4);
/// assert_eq!(v.len(), 4);
/// assert_eq!(arena.live_values(), 1);
/// arena.reset(); // the Vec is dropped here, its heap buffer freed
/// assert_eq!(arena.live_values(), 0);
/// ```
#[derive(Default)]
pub struct HorizonArena {
    bump: Bump,
    /// Destructors still to run; only touched by `alloc` (no reference escapes) and by `&mut self` methods.
    drops: UnsafeCell<Vec<DropEntry>>,
    values: Cell<usize>,
    /// Bytes handed out since the last reset (values and slices, without alignment padding).
    used: Cell<usize>,
}

impl HorizonArena {
    /// Creates an empty arena; the first allocation takes its first chunk from the system.
    pub fn new() -> Self {
        Self::default()
    }

    /// Creates an empty arena whose first chunk holds at least `bytes` (none for 0), so that values up to that
    /// many bytes in all take no further chunk from the system.
    pub fn with_capacity(bytes: usize) -> Self {
        Self {
            bump: Bump::with_capacity(bytes),
            drops: UnsafeCell::default(),
            values: Cell::new(0),
            used: Cell::new(0),
        }
    }

    /// Moves `value` into the arena and returns a reference that lives as long as the arena is not reset.
    ///
    /// `T: 'static`: the arena runs `T`'s destructor at [`reset`](Self::reset) or drop, which may come after any
    /// borrow `T` held had ended (the arena's type does not name `T`, so the borrow checker cannot see the drop):
    /// ```compile_fail
    /// struct Peek<'a>(&'a String);
    /// impl Drop for Peek<'_> {
    ///     fn drop(&mut self) {
    ///         println!("{}", self.0);
    ///     }
    /// }
    /// let arena = celer_alloc::HorizonArena::new();
    /// {
    ///     let s = String::from("freed before the arena");
    ///     arena.alloc(Peek(&s));
    /// }
    /// drop(arena);
    /// ```
    #[allow(clippy::mut_from_ref)] // every call hands out a fresh allocation, as bumpalo's `alloc` does.
    pub fn alloc<T: 'static>(&self, value: T) -> &mut T {
        self.alloc_with(|| value)
    }

    /// Like [`alloc`](Self::alloc), building the value with `make` where it will live: a large value (a graph node)
    /// is then written once instead of moved through the call.
    #[allow(clippy::mut_from_ref)] // as `alloc`.
    #[inline]
    pub fn alloc_with<T: 'static>(&self, make: impl FnOnce() -> T) -> &mut T {
        // One raw pointer, from which both the destructor entry and the returned reference derive: a pointer taken
        // from a reborrow of the returned `&mut T` would be invalidated when that reference is retagged on return
        // (Stacked Borrows; Miri reported it at `reset`).
        let slot = NonNull::from(self.bump.alloc_with(make));
        if std::mem::needs_drop::<T>() {
            let entry = DropEntry { ptr: slot.cast(), drop_fn: drop_in_place_erased::<T> };
            // SAFETY: the only other users of `drops` take `&mut self`, and no reference into it escapes this
            // statement, so this unique borrow aliases nothing. The arena is `!Sync` (it holds a `Bump`), so no
            // other thread can be here at the same time.
            unsafe { (*self.drops.get()).push(entry) };
        }
        self.values.set(self.values.get() + 1);
        self.used.set(self.used.get() + std::mem::size_of::<T>());
        // SAFETY: `slot` points to the value just moved into a fresh bump allocation, which nothing else refers to
        // (the destructor entry is used only by `&mut self` methods, once no reference from here can be alive); it
        // stays valid until `reset` or drop, both of which need `&mut self`.
        unsafe { &mut *slot.as_ptr() }
    }

    /// Copies a slice into the arena.
    pub fn alloc_slice_copy<T: Copy>(&self, src: &[T]) -> &mut [T] {
        self.used.set(self.used.get() + std::mem::size_of_val(src));
        self.bump.alloc_slice_copy(src)
    }

    /// Bytes of the values and slices allocated since the last reset (without alignment padding): what an arena
    /// for a similar set of values should hold ([`with_capacity`](Self::with_capacity)).
    pub fn used_bytes(&self) -> usize {
        self.used.get()
    }

    /// How many values were allocated since the last reset (slices not counted).
    pub fn live_values(&self) -> usize {
        self.values.get()
    }

    /// Bytes the arena holds from the system, including unused space in its chunks.
    pub fn allocated_bytes(&self) -> usize {
        self.bump.allocated_bytes()
    }

    /// Drops every value and rewinds the arena, keeping its largest chunk for reuse.
    ///
    /// Takes `&mut self`, so no reference handed out by [`alloc`](Self::alloc) can still be alive.
    pub fn reset(&mut self) {
        self.run_drops();
        self.bump.reset();
        self.values.set(0);
        self.used.set(0);
    }

    fn run_drops(&mut self) {
        for entry in self.drops.get_mut().drain(..) {
            // SAFETY: each entry was pushed by `alloc` for a value of the matching type that is still live: values
            // are dropped only here, exactly once (drain removes the entry), and `&mut self` proves no borrow exists.
            unsafe { (entry.drop_fn)(entry.ptr) };
        }
    }
}

impl Drop for HorizonArena {
    fn drop(&mut self) {
        self.run_drops();
    }
}

impl fmt::Debug for HorizonArena {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HorizonArena")
            .field("values", &self.values.get())
            .field("allocated_bytes", &self.bump.allocated_bytes())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::rc::Rc;

    #[test]
    fn reset_runs_every_destructor_once() {
        let counter = Rc::new(());
        let mut arena = HorizonArena::new();
        for _ in 0..100 {
            arena.alloc(Rc::clone(&counter));
        }
        assert_eq!(Rc::strong_count(&counter), 101);
        arena.reset();
        assert_eq!(Rc::strong_count(&counter), 1);
        arena.alloc(Rc::clone(&counter));
        drop(arena);
        assert_eq!(Rc::strong_count(&counter), 1);
    }

    #[test]
    fn an_arena_sized_by_another_s_used_bytes_takes_no_further_chunk_for_the_same_values() {
        let first = HorizonArena::new();
        for i in 0..100u64 {
            first.alloc([i; 16]);
        }
        first.alloc_slice_copy(&[7u32; 10]);
        assert_eq!(first.used_bytes(), 100 * 16 * 8 + 10 * 4);
        let second = HorizonArena::with_capacity(first.used_bytes());
        let chunk = second.allocated_bytes();
        assert!(chunk >= first.used_bytes());
        for i in 0..100u64 {
            second.alloc([i; 16]);
        }
        second.alloc_slice_copy(&[7u32; 10]);
        assert_eq!(second.allocated_bytes(), chunk, "a second chunk was taken");
        let mut second = second;
        second.reset();
        assert_eq!(second.used_bytes(), 0);
    }

    #[test]
    fn memory_stays_flat_over_many_reset_cycles() {
        let mut arena = HorizonArena::new();
        let mut high_water = 0;
        // Miri interprets every allocation (about 0.4 ms each): 20 cycles still cross the high-water mark at 10.
        let cycles = if cfg!(miri) { 20 } else { 1000 };
        for cycle in 0..cycles {
            for i in 0..256u64 {
                let v = arena.alloc([i; 8]);
                assert_eq!(v[7], i);
            }
            if cycle == 10 {
                high_water = arena.allocated_bytes();
            }
            if cycle > 10 {
                assert!(arena.allocated_bytes() <= high_water, "arena grew after reset at cycle {cycle}");
            }
            arena.reset();
        }
    }
}
