//! celer's logger: the `log` facade, printed to stderr as `celer[rank N] LEVEL: message`.
//!
//! - Nothing installs it unless the program asks (`celer::logging::init()`, which calls [`init`]): a library must
//!   not take the process's one global logger. Without it, celer's records go to whatever logger the program
//!   installed (or nowhere); errors that end the run ([`fatal`]) reach stderr either way.
//! - [`set_level`] applies `CELER_LOG` when a queue starts, only if celer's logger is the one installed.
//! - The rank is unknown until MPI started; lines before that (and in dry runs) read `celer LEVEL: message`.
//! - Records of other crates are shown only at warn and error, so `CELER_LOG=trace` shows celer's own detail.
//! - Each line is written with one `write_all` to stderr, so lines of the runtime thread, the host workers and the
//!   application thread do not interleave mid-line.

use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

/// This process's rank, or -1 before MPI started.
static RANK: AtomicI64 = AtomicI64::new(-1);
/// Whether [`LOGGER`] is the installed logger.
static INSTALLED: AtomicBool = AtomicBool::new(false);
static LOGGER: RankLogger = RankLogger;

#[derive(Debug)]
struct RankLogger;

impl RankLogger {
    /// Writes one line with the rank prefix, in one `write_all`.
    fn write(&self, level: log::Level, msg: impl std::fmt::Display) {
        let line = match RANK.load(Ordering::Relaxed) {
            r if r >= 0 => format!("celer[rank {r}] {level}: {msg}\n"),
            _ => format!("celer {level}: {msg}\n"),
        };
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }
}

impl log::Log for RankLogger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
            && (metadata.target().starts_with("celer") || metadata.level() <= log::Level::Warn)
    }

    fn log(&self, record: &log::Record<'_>) {
        if self.enabled(record.metadata()) {
            self.write(record.level(), record.args());
        }
    }

    fn flush(&self) {
        let _ = std::io::stderr().flush();
    }
}

/// Installs celer's logger (once per process; later calls only change the level) and logs up to `level`.
///
/// Returns whether celer's logger is the installed one (false if the program installed its own first).
pub fn init(level: log::LevelFilter) -> bool {
    if !INSTALLED.load(Ordering::Acquire) && log::set_logger(&LOGGER).is_ok() {
        INSTALLED.store(true, Ordering::Release);
    }
    let ours = INSTALLED.load(Ordering::Acquire);
    if ours {
        log::set_max_level(level);
    }
    ours
}

/// Sets the maximum level to `level` if celer's logger is the installed one; otherwise leaves the program's logger
/// and its level alone.
pub fn set_level(level: log::LevelFilter) {
    if INSTALLED.load(Ordering::Acquire) {
        log::set_max_level(level);
    }
}

/// Sets the rank that every later line names.
pub fn set_rank(rank: i32) {
    RANK.store(i64::from(rank), Ordering::Relaxed);
}

/// Writes `msg` at `level` with the rank prefix whatever the configured level (for output the user asked for by
/// another switch, such as `CELER_PRINT_DEVICE`). Goes to stderr directly if the program installed its own logger.
pub fn always(level: log::Level, msg: &str) {
    if INSTALLED.load(Ordering::Acquire) && level <= log::max_level() {
        log::log!(level, "{msg}");
    } else {
        LOGGER.write(level, msg);
    }
}

/// Reports an error that ends the run: through the logger (error level is always on), and to stderr as well if
/// the program installed its own logger, so the message cannot be lost.
pub fn fatal(msg: &str) {
    log::error!("{msg}");
    if !INSTALLED.load(Ordering::Acquire) {
        LOGGER.write(log::Level::Error, msg);
    }
}
