//! celer-examples: the examples, end-to-end tests and benchmarks of celer (`examples/`, `tests/`, `benches/`), with
//! their own kernels (`kernels/*.wgsl`, compiled by `build.rs` the way a program using celer compiles its own).
//! The library `celer-rt` (in `celer/`) compiles none of them.
//!
//! This library target holds only the guide's doctests.

/// Compiles every Rust block of `docs/GUIDE.md` as a doctest, so the guide cannot drift from the API.
#[doc = include_str!("../docs/GUIDE.md")]
#[cfg(doctest)]
pub struct GuideDoctests;
