//! celer-examples: the examples, end-to-end tests and benchmarks of celer (`examples/`, `tests/`, `benches/`), with
//! their own kernels (`kernels/*.wgsl`, compiled by `build.rs` the way a program using celer compiles its own).
//! The library `celer-rt` (in `celer/`) compiles none of them.
//!
//! This library target holds the guide's doctests and what several example binaries share.

/// Compiles every Rust block of `docs/GUIDE.md` as a doctest, so the guide cannot drift from the API.
#[doc = include_str!("../docs/GUIDE.md")]
#[cfg(doctest)]
pub struct GuideDoctests;

/// Statistics the benchmark examples report (`metg`, `gpu_efficiency`, `overhead`).
pub mod stats {
    /// The median of `v` (not empty): the middle value, or the mean of the two middle ones.
    pub fn median(v: &[f64]) -> f64 {
        let mut s = v.to_vec();
        s.sort_by(f64::total_cmp);
        let m = s.len() / 2;
        if s.len() % 2 == 1 {
            s[m]
        } else {
            (s[m - 1] + s[m]) / 2.0
        }
    }
}
