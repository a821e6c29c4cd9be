//! Logging belongs to the program: celer logs through the [`log`](https://docs.rs/log) crate and installs no global
//! logger unless the program asks for one with [`init`].
//!
//! - With [`init`]: celer's logger prints to stderr as `celer[rank N] LEVEL: message` (the rank once MPI started),
//!   up to the level of `CELER_LOG` (default `warn`), celer's own records at every level and other crates' at
//!   `warn` and `error`. The examples call it first thing.
//! - Without it: celer's records go to the logger the program installed (`env_logger`, `tracing`'s `log` bridge,
//!   ...), or nowhere if it installed none. Errors that end the run are written to stderr whatever the logger.
//!
//! ```
//! celer::logging::init(); // before anything logs; returns false if the program installed another logger first
//! let q = celer::Queue::dry_run();
//! # let _ = q;
//! ```

/// Installs celer's rank-prefixed logger, at the level of `CELER_LOG` (`warn` if unset; a bad value is reported by
/// `Queue::new`). Returns whether celer's logger is now the installed one: `false` if the program installed its own
/// first (which is left alone). Calling it again is harmless.
pub fn init() -> bool {
    let level = celer_scheduler::RuntimeConfig::from_lookup(|name| {
        (name == "CELER_LOG").then(|| std::env::var(name).ok()).flatten()
    })
    .map_or(log::LevelFilter::Warn, |c| c.log_level);
    celer_scheduler::logging::init(level)
}
