//! Memory for celer.
//!
//! - Graph nodes (tasks, commands) are bump-allocated into one [`HorizonArena`] per horizon window; a whole arena is
//!   released when the scheduler passes the horizon that closes its window, so memory stays flat however long a
//!   program runs.
//! - Unlike a bare [`bumpalo::Bump`], a [`HorizonArena`] runs the destructors of what it holds when it is reset or
//!   dropped, so nodes may own `Vec`s and `Arc`s without leaking.
//! - Resetting takes `&mut self`: no reference into the arena can outlive the reset (the borrow checker sees to it).
#![warn(missing_docs, missing_debug_implementations, rust_2018_idioms, unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

mod arena;

pub use arena::HorizonArena;
