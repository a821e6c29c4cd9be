//! celer's `CELER_*` environment variables, parsed and validated in one place.
//!
//! - [`RuntimeConfig::from_env`] reads every variable once, when a queue starts; nothing else in celer reads the
//!   environment (except `CELER_DEVICE`, which the Vulkan layer also reads to pick the device, after this module
//!   has checked its syntax, and the facade's queue builder, which looks up which variables are set: those win
//!   over the program's settings).
//! - A bad value is a [`ConfigError`] naming the variable, the value and what it accepts, never a panic.
//! - An empty value counts as unset, so `CELER_TRACE= ./prog` turns a setting off.
//! - [`VARIABLES`] is the table the README and the guide show; a test checks that it covers every variable.
//!
//! # Examples
//! ```
//! use celer_scheduler::config::RuntimeConfig;
//! let env = |name: &str| (name == "CELER_STALL_TIMEOUT").then(|| "2.5".to_string());
//! let config = RuntimeConfig::from_lookup(env)?;
//! assert_eq!(config.stall_timeout, Some(std::time::Duration::from_millis(2500)));
//! let bad = RuntimeConfig::from_lookup(|name| (name == "CELER_LOG").then(|| "loud".to_string()));
//! assert!(bad.unwrap_err().to_string().contains("CELER_LOG"));
//! # Ok::<(), celer_scheduler::config::ConfigError>(())
//! ```

use std::path::PathBuf;
use std::time::Duration;

/// One `CELER_*` variable as the documentation lists it.
#[derive(Debug, Clone, Copy)]
pub struct EnvVar {
    /// The variable's name.
    pub name: &'static str,
    /// The values it accepts.
    pub accepted: &'static str,
    /// What applies when it is unset.
    pub default: &'static str,
    /// What it does.
    pub effect: &'static str,
    /// Whether every rank must be started with the same value: `Queue::new` compares these between the ranks and
    /// fails on every rank naming each rank's value where they differ ([`RuntimeConfig::must_agree`]). The others
    /// change only what a rank does locally and may differ.
    pub must_agree: bool,
}

/// Every variable celer reads, in the order of the documentation's table.
pub const VARIABLES: &[EnvVar] = &[
    EnvVar {
        name: LOG,
        accepted: "error, warn, info, debug, trace",
        default: "warn",
        effect: "how much celer logs to stderr, each line as `celer[rank N] LEVEL: ...`",
        must_agree: false,
    },
    EnvVar {
        name: HORIZON_STEP,
        accepted: "an integer from 1 to 4294967295 (a u32)",
        default: "4",
        effect: "critical-path growth between horizons (smaller: less memory, more overhead)",
        must_agree: true,
    },
    EnvVar {
        name: HORIZON_MAX_PARALLELISM,
        accepted: "an integer >= 1",
        default: "64",
        effect: "a horizon also comes once this many tasks have no successor yet (independent tasks, the graph's \
                 width), so wide graphs are pruned too (smaller: less memory, independent tasks ordered sooner)",
        must_agree: true,
    },
    EnvVar {
        name: SUBMIT_AHEAD,
        accepted: "an integer >= 1, or off",
        default: "128",
        effect: "how many horizons the program may submit ahead of the runtime: `submit` blocks while the runtime \
                 is further behind, until it is back to half of that, which bounds the memory of queued tasks and \
                 commands and lets the program submit in bursts that become large GPU batches (`off`: never block)",
        must_agree: false,
    },
    EnvVar {
        name: LOOKAHEAD,
        accepted: "an integer >= 1",
        default: "256",
        effect: "how many queued commands the runtime loop scans for ready ones in each step (larger: more \
                 out-of-order start, more scanning)",
        must_agree: false,
    },
    EnvVar {
        name: OVERLAP,
        accepted: "on, off, or a number of cells",
        default: "on (1048576 cells)",
        effect: "a kernel waiting for halo data from other ranks first runs the part of its chunk that needs none \
                 (its interior, if it has at least this many cells), so the transfer overlaps it; the rest (its \
                 border) runs when the data arrived",
        must_agree: false,
    },
    EnvVar {
        name: HOST_THREADS,
        accepted: "an integer from 1 to 256 (MAX_HOST_THREADS)",
        default: "4",
        effect: "how many threads run host tasks on each rank (per device with CELER_DEVICES > 1): host tasks the \
                 task graph lets run together (two snapshot writes of different buffers) run at the same time; \
                 collective host tasks all run on one of them, one at a time in submission order; 1: every host \
                 task runs after the one handed over before it",
        must_agree: false,
    },
    EnvVar {
        name: STALL_TIMEOUT,
        accepted: "seconds (a number from 0.1 to below 1e9) or off",
        default: "30",
        effect: "with work pending and no progress for this long on every rank that waits inside the runtime (a rank \
                 whose application thread computes keeps the others waiting), every rank prints what it waits for \
                 and the run aborts; the report comes within this long of the stall's start plus at most one vote \
                 interval (1 s), twice this long for a runtime thread stuck inside a call; time a rank did not run \
                 (a frozen machine) restarts its count",
        must_agree: true,
    },
    EnvVar {
        name: AWAY_TIMEOUT,
        accepted: "seconds (a number from 0.1 to below 1e9) or off; needs CELER_STALL_TIMEOUT on",
        default: "off",
        effect: "with work pending and no progress on this rank for this long (and at least CELER_STALL_TIMEOUT), \
                 while the stall vote finds a rank whose application thread has not come back to celer (a \
                 deadlock or a wait outside celer, or a long computation), the run aborts naming that rank; `off`: \
                 such a wait only prints a notice now and then. Refused at start while CELER_STALL_TIMEOUT is off \
                 (the vote that finds the rank runs only then)",
        must_agree: false,
    },
    EnvVar {
        name: CHECK_DIVERGENCE,
        accepted: "on, off (also 1, 0, true, false, yes, no)",
        default: "on",
        effect: "ranks compare a hash of their submitted tasks at every horizon, epoch, fence and host task; a mismatch \
                 stops the run. `off` turns off the hashing, the comparison, and fences, waits and host tasks \
                 waiting for it; the ranks still take part in one small non-blocking reduction per horizon and epoch, \
                 which keeps a rank from running more than 64 horizons ahead of the slowest (DIVERGENCE_WINDOWS), and \
                 so bounds the data its pushes leave waiting at a rank that has not yet reached their await-pushes",
        must_agree: true,
    },
    EnvVar {
        name: CHECK_BOUNDS,
        accepted: "on, off (also 1, 0, true, false, yes, no)",
        default: "off",
        effect: "kernels run their checked variant, which records every celer_index access outside the region the \
                 accessor's range mapper declared for the chunk; the run stops on every rank naming the task, the \
                 buffer and the box of cells touched outside (slower: a debugging aid, like Celerity's debug builds)",
        must_agree: false,
    },
    EnvVar {
        name: TRACE,
        accepted: "a file path",
        default: "unset (no trace)",
        effect: "rank 0 writes every rank's timeline there at shutdown, as Chrome trace-event JSON",
        must_agree: true,
    },
    EnvVar {
        name: DUMP_GRAPHS,
        accepted: "a directory",
        default: "unset (no dumps)",
        effect: "at shutdown, rank 0 writes tasks.dot (every task of the run) and each rank commands-rank<N>.dot",
        must_agree: false,
    },
    EnvVar {
        name: DEVICE,
        accepted: "a device index >= 0",
        default: "unset (first discrete GPU, spread by node-local rank)",
        effect: "picks a Vulkan device by its index in the loader's list",
        must_agree: false,
    },
    EnvVar {
        name: DEVICES,
        accepted: "an integer from 1 to 64 (MAX_DEVICES)",
        default: "1",
        effect: "how many devices each rank drives; each is a node of the command graph of its own (the rank's chunk \
                 splits over them), from CELER_DEVICE on, or from local rank × this number",
        must_agree: true,
    },
    EnvVar {
        name: PEER_COPIES,
        accepted: "on, off (also 1, 0, true, false, yes, no)",
        default: "on",
        effect: "with CELER_DEVICES > 1, a halo between two devices of a rank that share one Vulkan device (one GPU) \
                 is copied by the GPU, the receiver's batch waiting for the sender's on the GPU; off: through host \
                 memory and MPI as between ranks (to compare; only how a transfer runs changes, not the graphs)",
        must_agree: false,
    },
    EnvVar {
        name: PRINT_DEVICE,
        accepted: "on, off (also 1, 0, true, false, yes, no)",
        default: "off",
        effect: "logs each rank's device (at any log level)",
        must_agree: false,
    },
    EnvVar {
        name: PIN,
        accepted: "off (or none), auto, or a list of cores (e.g. 3,7 or 0-3)",
        default: "auto",
        effect: "pins each rank's runtime thread to a core of its own: auto picks one from the rank's allowed cores \
                 (its share of them when ranks share the set) and gives the application thread the others, and pins \
                 nothing where the rank has fewer than two cores; a list gives node-local rank r the list's \
                 (r mod length)-th core",
        must_agree: false,
    },
    EnvVar {
        name: INJECT_FAULT,
        accepted: "device-lost@N (N an integer >= 1), no-float64@R or other-build@R (R a rank)",
        default: "unset (no fault)",
        effect: "for testing failure paths only: device-lost@N makes the GPU layer report VK_ERROR_DEVICE_LOST at its \
                 N-th poll with work in flight, as if the device had been lost (the run stops on every rank naming \
                 the device and the lost work); no-float64@R makes rank R's devices count as lacking shaderFloat64 \
                 (submit refuses kernels that use f64 on every rank); other-build@R makes rank R start as another build of \
                 celer would (every rank's start-up fails naming the builds)",
        must_agree: false,
    },
];

/// `CELER_LOG`.
pub const LOG: &str = "CELER_LOG";
/// `CELER_SUBMIT_AHEAD`.
pub const SUBMIT_AHEAD: &str = "CELER_SUBMIT_AHEAD";
/// `CELER_SUBMIT_AHEAD` when unset: horizons come every few tasks of a chain (`CELER_HORIZON_STEP`), so this keeps
/// a few hundred tasks queued. The program then submits in bursts of half that, which the runtime turns into GPU
/// batches of 50–80 kernels (with 32, batches of 14–20, each boundary costing the GPU a gap; measured on an H100,
/// docs/PERFORMANCE.md). The queued tasks cost little memory (`soak --wait-every 0`: 0.3 MiB more peak than 32).
pub const DEFAULT_SUBMIT_AHEAD: usize = 128;
/// `CELER_HORIZON_STEP`.
pub const HORIZON_STEP: &str = "CELER_HORIZON_STEP";
/// `CELER_HORIZON_MAX_PARALLELISM`.
pub const HORIZON_MAX_PARALLELISM: &str = "CELER_HORIZON_MAX_PARALLELISM";
/// `CELER_STALL_TIMEOUT`.
pub const STALL_TIMEOUT: &str = "CELER_STALL_TIMEOUT";

/// `CELER_AWAY_TIMEOUT`.
pub const AWAY_TIMEOUT: &str = "CELER_AWAY_TIMEOUT";

/// The shortest stall timeout accepted (`CELER_STALL_TIMEOUT`, `QueueBuilder::stall_timeout`): a shorter one (a
/// value meant as milliseconds, `0.001`) reports every wait for a kernel or a peer as a stall.
pub const MIN_STALL_TIMEOUT: Duration = Duration::from_millis(100);
/// The most devices a rank drives (`CELER_DEVICES`, `QueueBuilder::devices`). Each is a node of the command graph
/// with its own Vulkan queue, MPI communicator and loop; far beyond any node's GPU count, start-up grows
/// superlinearly (a thousand took over a minute, a hundred thousand exhausted MPI's communicators), so a larger
/// count is refused as a mistake rather than left to hang.
pub const MAX_DEVICES: usize = 64;
/// `CELER_LOOKAHEAD`.
pub const LOOKAHEAD: &str = "CELER_LOOKAHEAD";
/// The default of `CELER_LOOKAHEAD`.
pub const DEFAULT_LOOKAHEAD: usize = 256;
/// `CELER_HOST_THREADS`.
pub const HOST_THREADS: &str = "CELER_HOST_THREADS";
/// The default of `CELER_HOST_THREADS`: the host workers of a rank (of each device loop). Celerity runs host tasks
/// on a pool that opens a thread for each host task that is ready while the others are busy
/// (`sycl_backend.cc`, `get_host_queue`; ../shared/reference/celerity-notes.md §1, "Threads"), so independent host
/// tasks never wait for each other there. celer starts a fixed pool with the loop instead, before the runtime
/// thread is pinned, so that no worker inherits the runtime thread's core; 4 covers what a simulation runs at once
/// on the host: double-buffered snapshot writes (`examples/io_overlap.rs`: two in flight), a check or log task,
/// and a collective task (worker 0 takes those before anything else). Idle workers besides worker 0 (which looks for
/// work every millisecond, as the one worker did) sleep until a job comes, so unused ones cost a parked thread each.
/// CPU-heavy host work belongs in `host_for` tasks, which split over ranks.
pub const DEFAULT_HOST_THREADS: usize = 4;
/// The most host threads a rank (a device loop) starts (`CELER_HOST_THREADS`): they start with the queue, so a
/// count far beyond any node's cores (a typo) is refused rather than started.
pub const MAX_HOST_THREADS: usize = 256;
/// `CELER_OVERLAP`.
pub const OVERLAP: &str = "CELER_OVERLAP";
/// The smallest interior `CELER_OVERLAP=on` runs early: splitting costs a dispatch and a batch (some 10-20 µs on
/// a GPU), which only a kernel of this many cells or more hides (measured with the METG stencil, whose 65 536-cell
/// tasks lost more to the split than they gained, and wave_sim, whose 67-million-cell chunks gained 10-22 %).
pub const DEFAULT_OVERLAP_CELLS: usize = 1 << 20;
/// `CELER_CHECK_DIVERGENCE`.
pub const CHECK_DIVERGENCE: &str = "CELER_CHECK_DIVERGENCE";
/// `CELER_TRACE`.
pub const TRACE: &str = "CELER_TRACE";
/// `CELER_DUMP_GRAPHS`.
pub const DUMP_GRAPHS: &str = "CELER_DUMP_GRAPHS";
/// `CELER_DEVICE` (the Vulkan layer's `DEVICE_ENV`).
pub const DEVICE: &str = "CELER_DEVICE";
/// `CELER_DEVICES`.
pub const DEVICES: &str = "CELER_DEVICES";
/// `CELER_PEER_COPIES`.
pub const PEER_COPIES: &str = "CELER_PEER_COPIES";
/// `CELER_PRINT_DEVICE`.
pub const PRINT_DEVICE: &str = "CELER_PRINT_DEVICE";
/// `CELER_CHECK_BOUNDS`.
pub const CHECK_BOUNDS: &str = "CELER_CHECK_BOUNDS";
/// `CELER_INJECT_FAULT`.
pub const INJECT_FAULT: &str = "CELER_INJECT_FAULT";
/// `CELER_PIN`.
pub const PIN: &str = "CELER_PIN";

/// `CELER_PIN`: where the runtime thread runs.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Pinning {
    /// Nothing is pinned: the operating system (or `mpirun`'s binding) places the threads.
    Off,
    /// A core of its own for the runtime thread from the rank's allowed cores, the rest for the application
    /// thread, where the rank has at least two cores (see `runtime::pin` for the rule).
    #[default]
    Auto,
    /// The runtime thread of node-local rank `r` runs on core `cores[r % cores.len()]`; nothing else is pinned.
    Cores(Vec<usize>),
}

/// The stall timeout when `CELER_STALL_TIMEOUT` is unset: long enough for any single kernel or transfer of a
/// sane program, short enough that a hung CI job says why well before it is killed.
pub const DEFAULT_STALL_TIMEOUT: Duration = Duration::from_secs(30);

/// A `CELER_*` variable with a value celer does not accept.
#[derive(Clone, PartialEq, Eq, thiserror::Error)]
#[error("{variable}={value:?} is not valid: {variable} accepts {accepted}")]
pub struct ConfigError {
    /// The variable.
    pub variable: &'static str,
    /// Its value.
    pub value: String,
    /// What it accepts.
    pub accepted: &'static str,
}

/// The same sentence as `Display`, so that `fn main() -> Result<(), Box<dyn Error>>` prints a readable message.
impl std::fmt::Debug for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

/// The message for settings that differ between ranks: `all[i * ranks + r]` is rank `r`'s value of `settings[i]`
/// (as [`RuntimeConfig::must_agree`] lists them); `None` if every rank has the same values.
pub fn disagreement(settings: &[SharedSetting], all: &[u64], ranks: usize) -> Option<String> {
    let mut parts = Vec::new();
    for (i, s) in settings.iter().enumerate() {
        let values = &all[i * ranks..(i + 1) * ranks];
        if values.iter().any(|&v| v != values[0]) {
            let each: Vec<String> =
                values.iter().enumerate().map(|(r, &v)| format!("{} on rank {r}", (s.show)(v))).collect();
            parts.push(format!("{} is {}", s.variable, each.join(", ")));
        }
    }
    (!parts.is_empty()).then(|| {
        format!(
            "the ranks disagree on settings that must be the same on every rank: {}; start every rank with the same \
             value (e.g. `mpirun -x VARIABLE=value`) and the same `QueueBuilder` calls",
            parts.join("; ")
        )
    })
}

/// A warning for each of `names` (the process's environment variables) that starts with `CELER_` but is none of
/// the [`VARIABLES`] celer reads (a typo such as `CELER_HORIZON_STEPS`, which would otherwise be ignored without a
/// word), naming the nearest variable celer reads. Names that do not start with `CELER_` are not celer's.
///
/// ```
/// let w = celer_scheduler::config::unknown_variables(["CELER_HORIZON_STEPS", "CELER_LOG", "PATH"]);
/// assert_eq!(w.len(), 1);
/// assert!(w[0].contains("CELER_HORIZON_STEPS") && w[0].contains("did you mean CELER_HORIZON_STEP?"), "{}", w[0]);
/// ```
pub fn unknown_variables<'a>(names: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut warnings = Vec::new();
    for name in names {
        if !name.starts_with("CELER_") || VARIABLES.iter().any(|v| v.name == name) {
            continue;
        }
        let nearest = VARIABLES.iter().map(|v| v.name).min_by_key(|known| edit_distance(name, known));
        warnings.push(format!(
            "{name} is set, but celer reads no variable of that name and ignores it; did you mean {}? (docs/GUIDE.md \
             lists every CELER_* variable)",
            nearest.unwrap_or("one of the CELER_* variables")
        ));
    }
    warnings
}

/// The Levenshtein distance between `a` and `b` (insertions, deletions and substitutions of bytes).
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, &x) in a.iter().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, &y) in b.iter().enumerate() {
            let next = (row[j + 1] + 1).min(row[j] + 1).min(diagonal + usize::from(x != y));
            diagonal = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[b.len()]
}

/// The settings the `CELER_*` variables give (see [`VARIABLES`] for what each does).
#[derive(Debug, Clone, PartialEq)]
pub struct RuntimeConfig {
    /// `CELER_LOG`: the most verbose level logged.
    pub log_level: log::LevelFilter,
    /// `CELER_HORIZON_STEP`, if set (else the task manager's default).
    pub horizon_step: Option<u32>,
    /// `CELER_HORIZON_MAX_PARALLELISM`, if set (else the task manager's default).
    pub horizon_max_parallelism: Option<usize>,
    /// `CELER_LOOKAHEAD`: queued commands scanned for ready ones per loop step.
    pub lookahead: usize,
    /// `CELER_HOST_THREADS`: threads that run host tasks, per device loop (1 to [`MAX_HOST_THREADS`]).
    pub host_threads: usize,
    /// `CELER_OVERLAP`: kernels waiting for transfers run their interior first if it has at least this many cells;
    /// `None` is `off`.
    pub overlap: Option<usize>,
    /// `CELER_STALL_TIMEOUT`; `None` is `off`.
    pub stall_timeout: Option<Duration>,
    /// `CELER_AWAY_TIMEOUT`: how long a rank with work pending waits for another rank's program that has not come
    /// back to celer before the run is ended; `None` (the default) is `off`. Needs `stall_timeout`.
    pub away_timeout: Option<Duration>,
    /// `CELER_CHECK_DIVERGENCE`.
    pub check_divergence: bool,
    /// `CELER_TRACE`: where rank 0 writes the merged timeline of every rank at shutdown.
    pub trace: Option<PathBuf>,
    /// `CELER_DUMP_GRAPHS`: where the DOT files go.
    pub dump_graphs: Option<PathBuf>,
    /// `CELER_DEVICE`: the Vulkan device index, if one is forced.
    pub device: Option<usize>,
    /// `CELER_DEVICES`: devices per rank.
    pub devices: usize,
    /// `CELER_PEER_COPIES`: halos between devices of a rank on one Vulkan device are copied on the GPU.
    pub peer_copies: bool,
    /// `CELER_PRINT_DEVICE`.
    pub print_device: bool,
    /// `CELER_CHECK_BOUNDS`: run kernels' checked variants and stop at the first out-of-bounds access.
    pub check_bounds: bool,
    /// `CELER_INJECT_FAULT=device-lost@N`: the GPU poll at which to simulate a lost device (testing only).
    pub inject_device_lost: Option<u64>,
    /// `CELER_INJECT_FAULT=no-float64@R`: the rank whose devices count as lacking `shaderFloat64` (testing only).
    pub inject_no_float64: Option<u64>,
    /// `CELER_INJECT_FAULT=other-build@R`: the rank that starts with another build id (testing only).
    pub inject_other_build: Option<u64>,
    /// `CELER_SUBMIT_AHEAD`: horizons `submit` may run ahead of the runtime before it blocks; `None` is `off`.
    pub submit_ahead: Option<usize>,
    /// `CELER_PIN`: where the runtime thread runs.
    pub pin: Pinning,
}

impl Default for RuntimeConfig {
    /// What applies with no `CELER_*` variable set.
    fn default() -> Self {
        Self {
            log_level: log::LevelFilter::Warn,
            horizon_step: None,
            horizon_max_parallelism: None,
            lookahead: DEFAULT_LOOKAHEAD,
            host_threads: DEFAULT_HOST_THREADS,
            overlap: Some(DEFAULT_OVERLAP_CELLS),
            stall_timeout: Some(DEFAULT_STALL_TIMEOUT),
            away_timeout: None,
            check_divergence: true,
            trace: None,
            dump_graphs: None,
            device: None,
            devices: 1,
            peer_copies: true,
            print_device: false,
            check_bounds: false,
            inject_device_lost: None,
            inject_no_float64: None,
            inject_other_build: None,
            submit_ahead: Some(DEFAULT_SUBMIT_AHEAD),
            pin: Pinning::Auto,
        }
    }
}

/// A setting every rank must share, as [`RuntimeConfig::must_agree`] lists it: the variable, and its value as a
/// number (compared between ranks) with a function that prints such a number.
#[derive(Debug, Clone, Copy)]
pub struct SharedSetting {
    /// The variable.
    pub variable: &'static str,
    /// Its value on this rank, as a number (never `u64::MAX`).
    pub value: u64,
    /// Prints a value of this setting.
    pub show: fn(u64) -> String,
}

/// The name [`RuntimeConfig::must_agree`] gives the policy for reads of uninitialized cells, a setting of the
/// program (`QueueBuilder::uninitialized_reads`) rather than a variable.
pub const UNINITIALIZED_READS: &str = "the policy for reads of uninitialized cells (QueueBuilder::uninitialized_reads)";

impl RuntimeConfig {
    /// The settings that must be the same on every rank, with this rank's values, given the task graph's settings
    /// `tasks` (which a program may set without `CELER_HORIZON_STEP` and `CELER_HORIZON_MAX_PARALLELISM`):
    /// `CELER_TRACE` on or off (the timelines are gathered collectively at
    /// shutdown), `CELER_CHECK_DIVERGENCE` (its checks are collectives), `CELER_DEVICES` (each device is a node of
    /// the command graph, with a communicator of its own), `CELER_HORIZON_STEP` and `CELER_HORIZON_MAX_PARALLELISM`
    /// (horizons are tasks: every rank must record the same ones) and `CELER_STALL_TIMEOUT` (the ranks vote on
    /// stalls at an interval derived from it, and a rank counts votes missing for its timeout as a stall: a rank of
    /// 1 s aborted the run while a rank of 100 s, voting once a second, computed between submissions), and the
    /// policy for reads of uninitialized cells (`QueueBuilder::uninitialized_reads`, no variable: a task refused on
    /// some ranks only diverges, and the divergence report would not name the setting). The others (log level,
    /// look-ahead, host threads, overlap, bounds checks, graph dumps) only change what a rank does locally.
    pub fn must_agree(&self, tasks: &celer_graph::TaskManagerConfig) -> [SharedSetting; 7] {
        fn on_off(v: u64) -> String {
            if v == 1 { "on" } else { "off" }.to_string()
        }
        fn number(v: u64) -> String {
            v.to_string()
        }
        /// `off` is `u64::MAX - 1` (below the exchange's marker), a timeout its milliseconds.
        const TIMEOUT_OFF: u64 = u64::MAX - 1;
        fn timeout(v: u64) -> String {
            if v == TIMEOUT_OFF {
                "off".to_string()
            } else {
                format!("{} s", v as f64 / 1000.0)
            }
        }
        const POLICIES: [celer_graph::ErrorPolicy; 3] =
            [celer_graph::ErrorPolicy::Ignore, celer_graph::ErrorPolicy::Warn, celer_graph::ErrorPolicy::Error];
        fn policy(v: u64) -> String {
            POLICIES.get(v as usize).map_or_else(|| v.to_string(), |p| format!("{p:?}"))
        }
        let (horizon_step, horizon_max_parallelism) = (tasks.horizon_step, tasks.horizon_max_parallelism);
        [
            SharedSetting { variable: TRACE, value: u64::from(self.trace.is_some()), show: on_off },
            SharedSetting { variable: CHECK_DIVERGENCE, value: u64::from(self.check_divergence), show: on_off },
            SharedSetting { variable: DEVICES, value: self.devices as u64, show: number },
            SharedSetting { variable: HORIZON_STEP, value: u64::from(horizon_step), show: number },
            // Below u64::MAX (the exchange's marker): a width no task graph reaches either way.
            SharedSetting {
                variable: HORIZON_MAX_PARALLELISM,
                value: (horizon_max_parallelism as u64).min(u64::MAX - 1),
                show: number,
            },
            SharedSetting {
                variable: STALL_TIMEOUT,
                value: self.stall_timeout.map_or(TIMEOUT_OFF, |t| (t.as_millis() as u64).min(TIMEOUT_OFF - 1)),
                show: timeout,
            },
            SharedSetting {
                variable: UNINITIALIZED_READS,
                value: POLICIES.iter().position(|p| *p == tasks.uninitialized_read).unwrap_or(0) as u64,
                show: policy,
            },
        ]
    }

    /// Reads every `CELER_*` variable from the process environment.
    ///
    /// # Errors
    /// A [`ConfigError`] for the first variable (in [`VARIABLES`] order) with a bad value, or with a value that is
    /// not UTF-8.
    pub fn from_env() -> Result<Self, ConfigError> {
        for v in VARIABLES {
            if let Some(value) = std::env::var_os(v.name) {
                if value.to_str().is_none() {
                    return Err(ConfigError {
                        variable: v.name,
                        value: value.to_string_lossy().into_owned(),
                        accepted: "UTF-8 text",
                    });
                }
            }
        }
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the variables through `get` (the environment, or a map in tests); unset and empty values mean the
    /// default.
    ///
    /// # Errors
    /// A [`ConfigError`] for the first variable (in [`VARIABLES`] order) with a bad value.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| get(name).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
        let bad = |variable: &'static str, value: &str| ConfigError {
            variable,
            value: value.to_string(),
            accepted: VARIABLES.iter().find(|v| v.name == variable).map_or("", |v| v.accepted),
        };
        let mut config = Self::default();
        if let Some(v) = get(LOG) {
            config.log_level = match v.to_ascii_lowercase().as_str() {
                "error" => log::LevelFilter::Error,
                "warn" => log::LevelFilter::Warn,
                "info" => log::LevelFilter::Info,
                "debug" => log::LevelFilter::Debug,
                "trace" => log::LevelFilter::Trace,
                _ => return Err(bad(LOG, &v)),
            };
        }
        if let Some(v) = get(HORIZON_STEP) {
            config.horizon_step = Some(v.parse::<u32>().ok().filter(|&s| s >= 1).ok_or_else(|| bad(HORIZON_STEP, &v))?);
        }
        if let Some(v) = get(HORIZON_MAX_PARALLELISM) {
            let n = count(&v).filter(|&n| n >= 1);
            config.horizon_max_parallelism = Some(n.ok_or_else(|| bad(HORIZON_MAX_PARALLELISM, &v))?);
        }
        if let Some(v) = get(SUBMIT_AHEAD) {
            config.submit_ahead = match count(&v) {
                Some(n) if n >= 1 => Some(n),
                None if v.eq_ignore_ascii_case("off") => None,
                _ => return Err(bad(SUBMIT_AHEAD, &v)),
            };
        }
        if let Some(v) = get(LOOKAHEAD) {
            config.lookahead = count(&v).filter(|&n| n >= 1).ok_or_else(|| bad(LOOKAHEAD, &v))?;
        }
        if let Some(v) = get(HOST_THREADS) {
            let n = v.parse::<usize>().ok().filter(|n| (1..=MAX_HOST_THREADS).contains(n));
            config.host_threads = n.ok_or_else(|| bad(HOST_THREADS, &v))?;
        }
        if let Some(v) = get(OVERLAP) {
            config.overlap = match (switch(&v), count(&v)) {
                (_, Some(cells)) => Some(cells),
                (Some(on), _) => on.then_some(DEFAULT_OVERLAP_CELLS),
                (None, _) => return Err(bad(OVERLAP, &v)),
            };
        }
        // Seconds (`MIN_STALL_TIMEOUT` to below 1e9) or `off`.
        let timeout = |variable: &'static str, v: &str| -> Result<Option<Duration>, ConfigError> {
            if v.eq_ignore_ascii_case("off") {
                return Ok(None);
            }
            let secs =
                v.parse::<f64>().ok().filter(|s| s.is_finite() && *s >= MIN_STALL_TIMEOUT.as_secs_f64() && *s < 1e9);
            Ok(Some(Duration::from_secs_f64(secs.ok_or_else(|| bad(variable, v))?)))
        };
        if let Some(v) = get(STALL_TIMEOUT) {
            config.stall_timeout = timeout(STALL_TIMEOUT, &v)?;
        }
        if let Some(v) = get(AWAY_TIMEOUT) {
            config.away_timeout = timeout(AWAY_TIMEOUT, &v)?;
            // The stall vote, which finds the ranks that are away, runs only with a stall timeout.
            if config.away_timeout.is_some() && config.stall_timeout.is_none() {
                return Err(bad(AWAY_TIMEOUT, &format!("{v} (with CELER_STALL_TIMEOUT=off)")));
            }
        }
        if let Some(v) = get(CHECK_DIVERGENCE) {
            config.check_divergence = switch(&v).ok_or_else(|| bad(CHECK_DIVERGENCE, &v))?;
        }
        config.trace = get(TRACE).map(PathBuf::from);
        config.dump_graphs = get(DUMP_GRAPHS).map(PathBuf::from);
        if let Some(v) = get(DEVICE) {
            config.device = Some(count(&v).ok_or_else(|| bad(DEVICE, &v))?);
        }
        if let Some(v) = get(DEVICES) {
            let n = v.parse::<usize>().ok().filter(|n| (1..=MAX_DEVICES).contains(n));
            config.devices = n.ok_or_else(|| bad(DEVICES, &v))?;
        }
        if let Some(v) = get(PEER_COPIES) {
            config.peer_copies = switch(&v).ok_or_else(|| bad(PEER_COPIES, &v))?;
        }
        if let Some(v) = get(PRINT_DEVICE) {
            config.print_device = switch(&v).ok_or_else(|| bad(PRINT_DEVICE, &v))?;
        }
        if let Some(v) = get(CHECK_BOUNDS) {
            config.check_bounds = switch(&v).ok_or_else(|| bad(CHECK_BOUNDS, &v))?;
        }
        if let Some(v) = get(INJECT_FAULT) {
            if let Some(rank) = v.strip_prefix("no-float64@") {
                config.inject_no_float64 = Some(rank.parse::<u64>().map_err(|_| bad(INJECT_FAULT, &v))?);
            } else if let Some(rank) = v.strip_prefix("other-build@") {
                config.inject_other_build = Some(rank.parse::<u64>().map_err(|_| bad(INJECT_FAULT, &v))?);
            } else {
                let n = v.strip_prefix("device-lost@").and_then(count).map(|n| n as u64).filter(|&n| n >= 1);
                config.inject_device_lost = Some(n.ok_or_else(|| bad(INJECT_FAULT, &v))?);
            }
        }
        if let Some(v) = get(PIN) {
            config.pin = match v.to_ascii_lowercase().as_str() {
                "auto" => Pinning::Auto,
                "off" | "none" => Pinning::Off,
                _ => Pinning::Cores(core_list(&v).ok_or_else(|| bad(PIN, &v))?),
            };
        }
        Ok(config)
    }
}

/// A list of cores: comma-separated indices and inclusive ranges (`0-3,8`), at least one core.
/// A count (`CELER_LOOKAHEAD`, `CELER_SUBMIT_AHEAD`, …): a non-negative integer, where one beyond `usize` (digits
/// only) counts as `usize::MAX`, since each of these is a limit that a larger number than any count reached lifts
/// alike: the stated "an integer >= 1" holds for every such value.
fn count(v: &str) -> Option<usize> {
    match v.parse::<usize>() {
        Ok(n) => Some(n),
        Err(_) if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) => Some(usize::MAX),
        Err(_) => None,
    }
}

fn core_list(v: &str) -> Option<Vec<usize>> {
    let mut cores = Vec::new();
    for part in v.split(',').map(str::trim) {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (a.trim().parse::<usize>().ok()?, b.trim().parse::<usize>().ok()?);
                if a > b || b - a >= 1 << 16 {
                    return None;
                }
                cores.extend(a..=b);
            }
            None => cores.push(part.parse::<usize>().ok()?),
        }
    }
    (!cores.is_empty()).then_some(cores)
}

/// An on/off value.
fn switch(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "on" | "1" | "true" | "yes" => Some(true),
        "off" | "0" | "false" | "no" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(pairs: &[(&str, &str)]) -> Result<RuntimeConfig, ConfigError> {
        let map: std::collections::HashMap<String, String> =
            pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        RuntimeConfig::from_lookup(|name| map.get(name).cloned())
    }

    #[test]
    fn no_variables_give_the_documented_defaults() {
        let c = with(&[]).unwrap();
        assert_eq!(c, RuntimeConfig::default());
        assert_eq!(c.log_level, log::LevelFilter::Warn);
        assert_eq!(c.stall_timeout, Some(Duration::from_secs(30)));
        assert!(c.check_divergence);
    }

    #[test]
    fn every_variable_is_parsed() {
        let c = with(&[
            (LOG, "Debug"),
            (HORIZON_STEP, "2"),
            (LOOKAHEAD, "64"),
            (HOST_THREADS, "2"),
            (OVERLAP, "off"),
            (STALL_TIMEOUT, "0.5"),
            (CHECK_DIVERGENCE, "off"),
            (TRACE, "/tmp/t.json"),
            (DUMP_GRAPHS, "out"),
            (DEVICE, "1"),
            (DEVICES, "2"),
            (PEER_COPIES, "off"),
            (PRINT_DEVICE, "1"),
            (CHECK_BOUNDS, "on"),
            (INJECT_FAULT, "device-lost@3"),
            (PIN, "0-2,7"),
        ])
        .unwrap();
        assert_eq!(c.log_level, log::LevelFilter::Debug);
        assert_eq!(c.horizon_step, Some(2));
        assert_eq!(c.lookahead, 64);
        assert_eq!(c.host_threads, 2);
        assert_eq!(with(&[(HOST_THREADS, "1")]).unwrap().host_threads, 1, "one worker: the old behaviour");
        assert_eq!(with(&[(HOST_THREADS, "256")]).unwrap().host_threads, MAX_HOST_THREADS, "the limit is allowed");
        assert_eq!(RuntimeConfig::default().host_threads, DEFAULT_HOST_THREADS);
        assert_eq!(c.overlap, None);
        assert_eq!(with(&[(OVERLAP, "64")]).unwrap().overlap, Some(64));
        assert_eq!(with(&[(OVERLAP, "on")]).unwrap().overlap, Some(DEFAULT_OVERLAP_CELLS));
        assert_eq!(c.stall_timeout, Some(Duration::from_millis(500)));
        assert!(!c.check_divergence);
        assert_eq!(c.trace, Some(PathBuf::from("/tmp/t.json")));
        assert_eq!(c.dump_graphs, Some(PathBuf::from("out")));
        assert_eq!(c.device, Some(1));
        assert_eq!(c.devices, 2);
        assert_eq!(with(&[(DEVICES, "64")]).unwrap().devices, MAX_DEVICES, "the limit itself is allowed");
        assert!(!c.peer_copies);
        assert!(RuntimeConfig::default().peer_copies);
        assert!(c.print_device);
        assert!(c.check_bounds);
        assert_eq!(c.inject_device_lost, Some(3));
        assert_eq!(with(&[(INJECT_FAULT, "no-float64@1")]).unwrap().inject_no_float64, Some(1));
        assert_eq!(with(&[(INJECT_FAULT, "other-build@1")]).unwrap().inject_other_build, Some(1));
        assert_eq!(c.pin, Pinning::Cores(vec![0, 1, 2, 7]));
        assert_eq!(with(&[(PIN, "OFF")]).unwrap().pin, Pinning::Off);
        assert_eq!(with(&[(PIN, "auto")]).unwrap().pin, Pinning::Auto);
        assert_eq!(with(&[(STALL_TIMEOUT, "OFF")]).unwrap().stall_timeout, None);
    }

    #[test]
    fn the_away_timeout_is_off_by_default_takes_seconds_and_needs_the_stall_timeout() {
        assert_eq!(with(&[]).unwrap().away_timeout, None);
        assert_eq!(with(&[(AWAY_TIMEOUT, "Off")]).unwrap().away_timeout, None);
        assert_eq!(with(&[(AWAY_TIMEOUT, "12.5")]).unwrap().away_timeout, Some(Duration::from_millis(12500)));
        let c = with(&[(STALL_TIMEOUT, "2"), (AWAY_TIMEOUT, "10")]).unwrap();
        assert_eq!((c.stall_timeout, c.away_timeout), (Some(Duration::from_secs(2)), Some(Duration::from_secs(10))));
        // Off needs no stall timeout; a timeout does (the vote that names the away ranks runs only with one).
        assert_eq!(with(&[(STALL_TIMEOUT, "off"), (AWAY_TIMEOUT, "off")]).unwrap().away_timeout, None);
        let e = with(&[(STALL_TIMEOUT, "off"), (AWAY_TIMEOUT, "10")]).unwrap_err();
        assert_eq!(e.variable, AWAY_TIMEOUT);
        let msg = e.to_string();
        assert!(msg.contains("CELER_AWAY_TIMEOUT") && msg.contains("CELER_STALL_TIMEOUT=off"), "{msg}");
        assert!(msg.contains("needs CELER_STALL_TIMEOUT on"), "{msg}");
        for bad in ["0", "-3", "0.01", "1e9", "never"] {
            let e = with(&[(AWAY_TIMEOUT, bad)]).unwrap_err();
            assert_eq!((e.variable, e.value.as_str()), (AWAY_TIMEOUT, bad));
            assert!(e.to_string().contains("a number from 0.1 to below 1e9"), "{e}");
        }
    }

    #[test]
    fn empty_values_count_as_unset() {
        assert_eq!(with(&[(LOG, ""), (TRACE, " "), (STALL_TIMEOUT, "")]).unwrap(), RuntimeConfig::default());
    }

    #[test]
    fn bad_values_name_the_variable_and_what_it_accepts() {
        for (var, value, accepted) in [
            (LOG, "loud", "error, warn, info, debug, trace"),
            (HORIZON_STEP, "0", "an integer from 1 to 4294967295 (a u32)"),
            (HORIZON_STEP, "four", "an integer from 1 to 4294967295"),
            // Beyond u32: the message states the real limit (it said ">= 1", which the value is).
            (HORIZON_STEP, "18446744073709551615", "an integer from 1 to 4294967295 (a u32)"),
            (HORIZON_STEP, "4294967296", "to 4294967295"),
            (LOOKAHEAD, "0", "an integer >= 1"),
            (HOST_THREADS, "0", "an integer from 1 to 256 (MAX_HOST_THREADS)"),
            (HOST_THREADS, "257", "an integer from 1 to 256"),
            (HOST_THREADS, "many", "an integer from 1 to 256"),
            (OVERLAP, "sometimes", "on, off, or a number of cells"),
            (STALL_TIMEOUT, "-1", "seconds"),
            (STALL_TIMEOUT, "0", "seconds"),
            (STALL_TIMEOUT, "0.001", "a number from 0.1 to below 1e9"),
            (STALL_TIMEOUT, "1e-9", "a number from 0.1"),
            (STALL_TIMEOUT, "1e9", "to below 1e9"),
            (STALL_TIMEOUT, "soon", "or off"),
            (CHECK_DIVERGENCE, "maybe", "on, off"),
            (DEVICE, "gpu0", "device index"),
            (DEVICES, "0", "an integer from 1 to 64"),
            (DEVICES, "65", "an integer from 1 to 64 (MAX_DEVICES)"),
            (DEVICES, "100000", "an integer from 1 to 64"),
            (PRINT_DEVICE, "2", "on, off"),
            (PEER_COPIES, "gpu", "on, off"),
            (CHECK_BOUNDS, "debug", "on, off"),
            (INJECT_FAULT, "device-lost@0", "device-lost@N"),
            (INJECT_FAULT, "oom", "device-lost@N"),
            (INJECT_FAULT, "no-float64@last", "no-float64@R"),
            (PIN, "fast", "a list of cores"),
            (PIN, "3-1", "a list of cores"),
            (PIN, "1,,2", "a list of cores"),
        ] {
            let e = with(&[(var, value)]).unwrap_err();
            assert_eq!(e.variable, var);
            let msg = e.to_string();
            assert!(msg.contains(var) && msg.contains(value) && msg.contains(accepted), "{msg}");
        }
    }

    #[test]
    fn the_table_lists_each_variable_once() {
        let names: Vec<&str> = VARIABLES.iter().map(|v| v.name).collect();
        for n in [
            LOG,
            HORIZON_STEP,
            HORIZON_MAX_PARALLELISM,
            LOOKAHEAD,
            HOST_THREADS,
            OVERLAP,
            STALL_TIMEOUT,
            AWAY_TIMEOUT,
            CHECK_DIVERGENCE,
            CHECK_BOUNDS,
            TRACE,
            DUMP_GRAPHS,
            DEVICE,
            DEVICES,
            PEER_COPIES,
            PRINT_DEVICE,
            INJECT_FAULT,
            PIN,
            SUBMIT_AHEAD,
        ] {
            assert_eq!(names.iter().filter(|&&m| m == n).count(), 1, "{n}");
        }
        assert_eq!(names.len(), 19);
        assert_eq!(with(&[(HORIZON_MAX_PARALLELISM, "8")]).unwrap().horizon_max_parallelism, Some(8));
        assert_eq!(with(&[]).unwrap().horizon_max_parallelism, None);
        for bad in ["0", "-1", "many"] {
            let e = with(&[(HORIZON_MAX_PARALLELISM, bad)]).unwrap_err().to_string();
            assert!(e.contains(HORIZON_MAX_PARALLELISM) && e.contains("an integer >= 1"), "{e}");
        }
        assert_eq!(with(&[(SUBMIT_AHEAD, "off")]).unwrap().submit_ahead, None);
        assert_eq!(with(&[(SUBMIT_AHEAD, "3")]).unwrap().submit_ahead, Some(3));
        assert!(with(&[(SUBMIT_AHEAD, "0")]).is_err());
        // Counts beyond usize lift their limit like usize::MAX does, as "an integer >= 1" says they may.
        let huge = "99999999999999999999999999";
        let c = with(&[(SUBMIT_AHEAD, huge), (LOOKAHEAD, huge), (HORIZON_MAX_PARALLELISM, huge), (OVERLAP, huge)]);
        let c = c.unwrap();
        assert_eq!(c.submit_ahead, Some(usize::MAX));
        assert_eq!(c.lookahead, usize::MAX);
        assert_eq!(c.horizon_max_parallelism, Some(usize::MAX));
        assert_eq!(c.overlap, Some(usize::MAX));
        assert_eq!(with(&[(HORIZON_STEP, "4294967295")]).unwrap().horizon_step, Some(u32::MAX));
        assert!(with(&[(LOOKAHEAD, "-5")]).is_err() && with(&[(LOOKAHEAD, "1e3")]).is_err());
    }

    #[test]
    fn unknown_celer_variables_are_named_with_the_nearest_known_one() {
        let w = unknown_variables(["CELER_HORIZON_STEPS", "CELER_DEVICES", "CELER_STALLTIMEOUT", "HOME", "CELER_LOG"]);
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(w[0].starts_with("CELER_HORIZON_STEPS is set") && w[0].contains("did you mean CELER_HORIZON_STEP?"));
        assert!(w[1].contains("CELER_STALLTIMEOUT") && w[1].contains("did you mean CELER_STALL_TIMEOUT?"), "{w:?}");
        assert!(unknown_variables(VARIABLES.iter().map(|v| v.name)).is_empty(), "every known variable is known");
        assert!(unknown_variables(["CELER_DEVICE", "CELER_DEVICES"]).is_empty());
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
    }

    #[test]
    fn differing_shared_settings_name_the_variable_and_every_ranks_value() {
        let traced = with(&[(TRACE, "/tmp/t.json"), (DEVICES, "2")]).unwrap();
        let plain = with(&[]).unwrap();
        let tasks = |horizon_step, horizon_max_parallelism| celer_graph::TaskManagerConfig {
            horizon_step,
            horizon_max_parallelism,
            ..Default::default()
        };
        let (a, b) = (traced.must_agree(&tasks(4, 64)), plain.must_agree(&tasks(8, 16)));
        // Laid out as the reduction gives them: setting-major, one value per rank.
        let all: Vec<u64> = (0..a.len()).flat_map(|i| [a[i].value, b[i].value]).collect();
        let msg = disagreement(&a, &all, 2).expect("they differ");
        assert!(msg.contains("CELER_TRACE is on on rank 0, off on rank 1"), "{msg}");
        assert!(msg.contains("CELER_DEVICES is 2 on rank 0, 1 on rank 1"), "{msg}");
        assert!(msg.contains("CELER_HORIZON_STEP is 4 on rank 0, 8 on rank 1"), "{msg}");
        assert!(msg.contains("CELER_HORIZON_MAX_PARALLELISM is 64 on rank 0, 16 on rank 1"), "{msg}");
        assert!(!msg.contains("CELER_CHECK_DIVERGENCE") && !msg.contains("uninitialized"), "{msg}");
        // The stall vote's interval follows the timeout: a rank of 1 s took a rank of 100 s computing between
        // submissions for a stall.
        let (slow, off) = (with(&[(STALL_TIMEOUT, "100")]).unwrap(), with(&[(STALL_TIMEOUT, "off")]).unwrap());
        let (s, o, p) =
            (slow.must_agree(&tasks(4, 64)), off.must_agree(&tasks(4, 64)), plain.must_agree(&tasks(4, 64)));
        let all: Vec<u64> = (0..s.len()).flat_map(|i| [s[i].value, o[i].value, p[i].value]).collect();
        let msg = disagreement(&s, &all, 3).expect("they differ");
        assert!(msg.contains("CELER_STALL_TIMEOUT is 100 s on rank 0, off on rank 1, 30 s on rank 2"), "{msg}");
        assert!(!msg.contains("CELER_HORIZON_STEP"), "{msg}");
        let same: Vec<u64> = (0..a.len()).flat_map(|i| [a[i].value, a[i].value]).collect();
        assert_eq!(disagreement(&a, &same, 2), None);
        // A submit refusing a task on some ranks only would be a divergence that never names the setting.
        let strict = plain.must_agree(&celer_graph::TaskManagerConfig {
            uninitialized_read: celer_graph::ErrorPolicy::Error,
            ..tasks(4, 64)
        });
        let p = plain.must_agree(&tasks(4, 64));
        let all: Vec<u64> = (0..p.len()).flat_map(|i| [strict[i].value, p[i].value]).collect();
        let msg = disagreement(&p, &all, 2).expect("they differ");
        assert!(msg.contains(&format!("{UNINITIALIZED_READS} is Error on rank 0, Warn on rank 1")), "{msg}");
        // The table's flag says which variables the start-up compares, and no other.
        let mut compared: Vec<&str> = a.iter().map(|s| s.variable).filter(|v| v.starts_with("CELER_")).collect();
        let mut flagged: Vec<&str> = VARIABLES.iter().filter(|v| v.must_agree).map(|v| v.name).collect();
        compared.sort_unstable();
        flagged.sort_unstable();
        assert_eq!(compared, flagged);
    }
}
