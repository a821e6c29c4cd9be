//! [`QueueBuilder`]: a queue's settings, set by the program, by the `CELER_*` environment variables, or both.
//!
//! Every setting's default is what applies when its `CELER_*` variable is unset (the README's table). At
//! [`build`](QueueBuilder::build), a variable set in the environment wins over the program's setting, so a launch
//! (`mpirun -x CELER_STALL_TIMEOUT=120 ...`) can change any setting without a rebuild; after
//! [`ignore_env`](QueueBuilder::ignore_env) the program's settings (and the defaults) are final.

use std::path::PathBuf;
use std::time::Duration;

use celer_scheduler::config as env;
use celer_scheduler::graph::{ErrorPolicy, TaskManagerConfig};
use celer_scheduler::{ConfigError, Pinning, RuntimeConfig};

use crate::queue::{Error, Queue};

/// Builds a [`Queue`]: `Queue::builder()`, then the settings to change, then [`build`](Self::build).
///
/// Each setting starts at the default of its `CELER_*` variable (the README's table), so `Queue::builder().build()`
/// is [`Queue::new()`]. A variable set in the environment wins over the program's setting (a launch can always
/// change it); [`ignore_env`](Self::ignore_env) makes the program's settings final. Settings that every rank must
/// share (the horizon step, divergence checks, trace on or off, devices per rank) are compared between the ranks
/// at start, whatever set them.
///
/// ```
/// use std::time::Duration;
/// use celer::{ErrorPolicy, Queue};
/// // Four simulated ranks, nothing runs (no MPI, no GPU); every command kept for printing.
/// let q = Queue::builder().dry_run(4).record_commands(true).uninitialized_reads(ErrorPolicy::Error).build()?;
/// assert_eq!(q.command_counts().len(), 4);
/// // A real run with a longer stall timeout, unless CELER_STALL_TIMEOUT says otherwise:
/// let builder = Queue::builder().stall_timeout(Some(Duration::from_secs(120)));
/// # let _ = builder;
/// # Ok::<(), celer::Error>(())
/// ```
#[derive(Clone, Debug)]
#[must_use = "a builder does nothing until `build` is called"]
pub struct QueueBuilder {
    /// The program's values (the defaults where it set none).
    runtime: RuntimeConfig,
    /// The variables whose setting the program chose (the environment still wins over these).
    chosen: Vec<&'static str>,
    uninitialized_read: ErrorPolicy,
    dry_run_ranks: Option<usize>,
    record_commands: bool,
    read_env: bool,
}

/// What [`Queue`] starts from: the builder's settings merged with the environment.
#[derive(Clone, Debug)]
pub(crate) struct Settings {
    pub(crate) task_graph: TaskManagerConfig,
    /// Ranks to simulate; `None` runs the program.
    pub(crate) dry_run_ranks: Option<usize>,
    pub(crate) record_commands: bool,
    pub(crate) runtime: RuntimeConfig,
    /// A warning for each `CELER_*` variable set in the environment that celer does not read (a typo), said when
    /// the queue starts.
    pub(crate) unknown_variables: Vec<String>,
}

impl Default for QueueBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl QueueBuilder {
    /// Every setting at its default (what applies with no `CELER_*` variable set); the environment is read at
    /// [`build`](Self::build).
    pub fn new() -> Self {
        Self {
            runtime: RuntimeConfig::default(),
            chosen: Vec::new(),
            uninitialized_read: ErrorPolicy::Warn,
            dry_run_ranks: None,
            record_commands: false,
            read_env: true,
        }
    }

    fn choose(mut self, variable: &'static str, set: impl FnOnce(&mut RuntimeConfig)) -> Self {
        set(&mut self.runtime);
        if !self.chosen.contains(&variable) {
            self.chosen.push(variable);
        }
        self
    }

    /// The most ranks a dry run simulates ([`dry_run`](Self::dry_run)): each simulated rank has a command graph
    /// generator of its own (about 5 KB) and takes its part in generating every task's commands, so 65536 ranks
    /// already hold some 300 MB and take about a second per task in a debug build.
    pub const MAX_DRY_RUN_RANKS: usize = 1 << 16;

    /// The most devices a rank drives ([`devices`](Self::devices), `CELER_DEVICES`): each is a node of the command
    /// graph with a Vulkan queue, an MPI communicator and a loop of its own, and start-up grows superlinearly with
    /// their number (a thousand took over a minute), so a count beyond any node's GPUs is refused as a mistake.
    pub const MAX_DEVICES: usize = env::MAX_DEVICES;

    /// The most threads that run host tasks ([`host_threads`](Self::host_threads), `CELER_HOST_THREADS`) per rank
    /// and device: they start with the queue, so a count beyond any node's cores is refused as a mistake.
    pub const MAX_HOST_THREADS: usize = env::MAX_HOST_THREADS;

    /// Records and simulates `ranks` ranks instead of running: no MPI, no GPU, no runtime thread. Every rank's
    /// command graph is generated, and every horizon counts as reached at once, so a program of any length runs in
    /// bounded memory. Fences have no data ([`Error::DryRun`]). Default: the program runs.
    ///
    /// `ranks` must be 1 to [`MAX_DRY_RUN_RANKS`](Self::MAX_DRY_RUN_RANKS): [`build`](Self::build) refuses any other
    /// count with [`Error::Setting`] (a run on no rank has no meaning, and is not taken to mean one).
    pub fn dry_run(mut self, ranks: usize) -> Self {
        self.dry_run_ranks = Some(ranks);
        self
    }

    /// Keeps every command the simulated ranks of a dry run generate, for [`Queue::command_graphs_dot`] and
    /// [`Queue::command_counts`] (a queue that runs the program simulates no rank: `CELER_DUMP_GRAPHS` writes the
    /// runtime's command graphs instead). Default: off (commands are dropped as horizons pass, so memory stays
    /// bounded).
    pub fn record_commands(mut self, on: bool) -> Self {
        self.record_commands = on;
        self
    }

    /// What `submit` does with a task that reads cells no task wrote and no host data initialized: warn (the
    /// default), refuse the task ([`ErrorPolicy::Error`]), or say nothing.
    pub fn uninitialized_reads(mut self, policy: ErrorPolicy) -> Self {
        self.uninitialized_read = policy;
        self
    }

    /// How much celer logs, when a logger is installed (`celer::logging::init()` or the program's own); `CELER_LOG`.
    /// Default: `warn`.
    pub fn log_level(self, level: log::LevelFilter) -> Self {
        self.choose(env::LOG, |c| c.log_level = level)
    }

    /// The growth of the task graph's critical path between two horizons (at least 1; 0 counts as 1); smaller
    /// steps prune the graphs sooner and cost more horizons. `CELER_HORIZON_STEP`; default 4. Every rank must use
    /// the same step.
    pub fn horizon_step(self, step: u32) -> Self {
        self.choose(env::HORIZON_STEP, |c| c.horizon_step = Some(step.max(1)))
    }

    /// How many tasks may have no successor yet (the task graph's width: independent tasks) before a horizon
    /// comes anyway (at least 1; 0 counts as 1), so that a wide graph is pruned as a long one is; a smaller width
    /// keeps the graphs smaller and orders independent tasks behind a horizon sooner. Celerity's
    /// `CELERITY_HORIZON_MAX_PARALLELISM`. `CELER_HORIZON_MAX_PARALLELISM`; default 64. Every rank must use the
    /// same width.
    pub fn horizon_max_parallelism(self, tasks: usize) -> Self {
        self.choose(env::HORIZON_MAX_PARALLELISM, |c| c.horizon_max_parallelism = Some(tasks.max(1)))
    }

    /// How many horizons the program may submit ahead of the runtime before `submit` blocks (at least 1; 0 counts
    /// as 1), which bounds the memory of queued tasks and commands; `None` never blocks. `CELER_SUBMIT_AHEAD`;
    /// default 128.
    pub fn submit_ahead(self, horizons: Option<usize>) -> Self {
        self.choose(env::SUBMIT_AHEAD, |c| c.submit_ahead = horizons.map(|h| h.max(1)))
    }

    /// How many queued commands the runtime scans for ready ones in each step of its loop (at least 1; 0 counts as
    /// 1). `CELER_LOOKAHEAD`; default 256.
    pub fn lookahead(self, commands: usize) -> Self {
        self.choose(env::LOOKAHEAD, |c| c.lookahead = commands.max(1))
    }

    /// How many threads run host tasks on each rank (per device with [`devices`](Self::devices) > 1; 1 to
    /// [`MAX_HOST_THREADS`](Self::MAX_HOST_THREADS): [`build`](Self::build) refuses any other count with
    /// [`Error::Setting`]): host tasks the task graph lets run together (two snapshot writes of different buffers)
    /// run at the same time; collective host tasks all run on one of them, one at a time in submission order; with 1,
    /// every host task runs after the one before it. `CELER_HOST_THREADS`; default 4. Ranks may differ.
    pub fn host_threads(self, threads: usize) -> Self {
        self.choose(env::HOST_THREADS, |c| c.host_threads = threads)
    }

    /// A kernel waiting for data from other ranks first runs the part of its chunk that needs none, if that part
    /// has at least this many cells; `None` turns this off. `CELER_OVERLAP`; default `Some(1 << 20)`.
    pub fn overlap(self, min_cells: Option<usize>) -> Self {
        self.choose(env::OVERLAP, |c| c.overlap = min_cells)
    }

    /// How long every rank may wait inside the runtime without progress before each reports what it waits for and
    /// the run aborts; `None` waits forever. `CELER_STALL_TIMEOUT`; default 30 s. A zero timeout makes
    /// [`build`](Self::build) fail with [`Error::Config`], as `CELER_STALL_TIMEOUT=0` does. Every rank must use the
    /// same timeout (the ranks' stall votes follow it): `build` fails on every rank where they differ.
    pub fn stall_timeout(self, timeout: Option<Duration>) -> Self {
        self.choose(env::STALL_TIMEOUT, |c| c.stall_timeout = timeout)
    }

    /// How long this rank may wait with work pending and no progress (at least the stall timeout) while the
    /// stall vote finds a rank whose program has not come back to celer (a deadlock or a wait outside celer, or a
    /// long computation) before it ends the run on every rank, naming that rank; `None` (the default) only prints
    /// a notice now and then. `CELER_AWAY_TIMEOUT`. Needs a stall timeout: [`build`](Self::build) fails with
    /// [`Error::Config`] for a timeout here with [`stall_timeout`](Self::stall_timeout) off, or one below 0.1 s.
    pub fn away_timeout(self, timeout: Option<Duration>) -> Self {
        self.choose(env::AWAY_TIMEOUT, |c| c.away_timeout = timeout)
    }

    /// Whether the ranks compare a hash of their submitted tasks at every horizon, epoch, fence and host task (a
    /// mismatch stops the run, naming the first task that differs; fences, waits and host tasks wait for their
    /// comparison). `CELER_CHECK_DIVERGENCE`; default on. Every rank must agree. Off keeps one small non-blocking
    /// reduction per horizon and epoch, comparing nothing, which keeps a rank from running more than 64 horizons
    /// ahead of the others (`DIVERGENCE_WINDOWS`: the data of its pushes would otherwise pile up at a slower rank).
    pub fn check_divergence(self, on: bool) -> Self {
        self.choose(env::CHECK_DIVERGENCE, |c| c.check_divergence = on)
    }

    /// Whether kernels run their checked variant, which stops the run at an access outside what the accessor's
    /// range mapper declared (slower: a debugging aid). `CELER_CHECK_BOUNDS`; default off.
    pub fn check_bounds(self, on: bool) -> Self {
        self.choose(env::CHECK_BOUNDS, |c| c.check_bounds = on)
    }

    /// Rank 0 writes every rank's timeline to `path` at shutdown (Chrome trace-event JSON). `CELER_TRACE`; default:
    /// no trace. Every rank must agree on whether there is one.
    pub fn trace(self, path: impl Into<PathBuf>) -> Self {
        let path = path.into();
        self.choose(env::TRACE, |c| c.trace = Some(path))
    }

    /// At shutdown, rank 0 writes the task graph and each rank its command graph as DOT files into `dir`.
    /// `CELER_DUMP_GRAPHS`; default: no dumps.
    pub fn dump_graphs(self, dir: impl Into<PathBuf>) -> Self {
        let dir = dir.into();
        self.choose(env::DUMP_GRAPHS, |c| c.dump_graphs = Some(dir))
    }

    /// How many GPUs each rank drives (1 to [`MAX_DEVICES`](Self::MAX_DEVICES): [`build`](Self::build) refuses
    /// any other count with [`Error::Setting`], as `CELER_DEVICES` refuses it). `CELER_DEVICES`; default 1. Every rank must agree. (Which device a rank starts
    /// from is `CELER_DEVICE`'s alone.)
    pub fn devices(self, per_rank: usize) -> Self {
        self.choose(env::DEVICES, |c| c.devices = per_rank)
    }

    /// Whether each rank logs the device it uses (at any log level). `CELER_PRINT_DEVICE`; default off.
    pub fn print_device(self, on: bool) -> Self {
        self.choose(env::PRINT_DEVICE, |c| c.print_device = on)
    }

    /// Where each rank's runtime thread runs. `CELER_PIN`; default [`Pinning::Auto`].
    pub fn pin(self, pinning: Pinning) -> Self {
        self.choose(env::PIN, |c| c.pin = pinning)
    }

    /// Reads no `CELER_*` variable at [`build`](Self::build): the program's settings and the defaults are final.
    /// (`CELER_DEVICE` still picks the device.)
    pub fn ignore_env(mut self) -> Self {
        self.read_env = false;
        self
    }

    /// The settings: the environment's where a variable is set (unless [`ignore_env`](Self::ignore_env)), else the
    /// program's, else the defaults.
    pub(crate) fn settings(self) -> Result<Settings, Error> {
        if self.read_env {
            // Refuses values that are not UTF-8, which the lookup below cannot see.
            RuntimeConfig::from_env()?;
        }
        let read_env = self.read_env;
        let mut settings = self.settings_from(|name| if read_env { std::env::var(name).ok() } else { None })?;
        if read_env {
            let names: Vec<String> = std::env::vars_os().filter_map(|(k, _)| k.into_string().ok()).collect();
            settings.unknown_variables = env::unknown_variables(names.iter().map(String::as_str));
        }
        Ok(settings)
    }

    /// [`settings`](Self::settings) with the variables read through `get`.
    fn settings_from(self, get: impl Fn(&str) -> Option<String>) -> Result<Settings, Error> {
        let mut runtime = RuntimeConfig::from_lookup(&get)?;
        // Set in the environment (an empty value counts as unset, as for the parser).
        let set = |name: &str| get(name).is_some_and(|v| !v.trim().is_empty());
        // The program's choices where the environment is silent (the parser gave the defaults there).
        macro_rules! keep {
            ($($var:path => $field:ident),* $(,)?) => { $(
                if self.chosen.contains(&$var) && !set($var) {
                    runtime.$field = self.runtime.$field.clone();
                }
            )* };
        }
        keep!(
            env::LOG => log_level,
            env::HORIZON_STEP => horizon_step,
            env::HORIZON_MAX_PARALLELISM => horizon_max_parallelism,
            env::SUBMIT_AHEAD => submit_ahead,
            env::LOOKAHEAD => lookahead,
            env::HOST_THREADS => host_threads,
            env::OVERLAP => overlap,
            env::STALL_TIMEOUT => stall_timeout,
            env::AWAY_TIMEOUT => away_timeout,
            env::CHECK_DIVERGENCE => check_divergence,
            env::CHECK_BOUNDS => check_bounds,
            env::TRACE => trace,
            env::DUMP_GRAPHS => dump_graphs,
            env::DEVICES => devices,
            env::PRINT_DEVICE => print_device,
            env::PIN => pin,
        );
        // A count of ranks or devices outside what can run is refused, not taken to mean another count (the
        // variable refuses 0 devices too).
        if let Some(ranks) = self.dry_run_ranks.filter(|r| !(1..=Self::MAX_DRY_RUN_RANKS).contains(r)) {
            return Err(Error::Setting {
                setting: "QueueBuilder::dry_run",
                value: ranks.to_string(),
                accepted: "1 to QueueBuilder::MAX_DRY_RUN_RANKS = 65536 ranks (a dry run on no rank has no \
                           meaning; each simulated rank has a command graph generator of its own)",
            });
        }
        if !(1..=env::MAX_DEVICES).contains(&runtime.devices) {
            return Err(Error::Setting {
                setting: "QueueBuilder::devices",
                value: runtime.devices.to_string(),
                accepted:
                    "1 to QueueBuilder::MAX_DEVICES = 64 devices per rank, as CELER_DEVICES accepts (each device \
                           is a node of its own, with a Vulkan queue, an MPI communicator and a loop)",
            });
        }
        if !(1..=env::MAX_HOST_THREADS).contains(&runtime.host_threads) {
            return Err(Error::Setting {
                setting: "QueueBuilder::host_threads",
                value: runtime.host_threads.to_string(),
                accepted: "1 to QueueBuilder::MAX_HOST_THREADS = 256 threads per rank (per device), as \
                           CELER_HOST_THREADS accepts (no thread would run host tasks with 0)",
            });
        }
        // A timeout of zero or a few milliseconds would report every wait for a kernel or a peer as a stall (the
        // variable refuses it too).
        if let Some(t) = runtime.stall_timeout.filter(|&t| t < env::MIN_STALL_TIMEOUT) {
            return Err(Error::Config(ConfigError {
                variable: env::STALL_TIMEOUT,
                value: format!("{t:?} (QueueBuilder::stall_timeout)"),
                accepted: "seconds (a number >= 0.1) or off",
            }));
        }
        if let Some(t) = runtime.away_timeout {
            let value = if t < env::MIN_STALL_TIMEOUT {
                format!("{t:?} (QueueBuilder::away_timeout)")
            } else if runtime.stall_timeout.is_none() {
                format!("{t:?} (QueueBuilder::away_timeout, with the stall timeout off)")
            } else {
                String::new()
            };
            if !value.is_empty() {
                return Err(Error::Config(ConfigError {
                    variable: env::AWAY_TIMEOUT,
                    value,
                    accepted: "seconds (a number >= 0.1) or off; needs the stall timeout on",
                }));
            }
        }
        let mut task_graph = TaskManagerConfig { uninitialized_read: self.uninitialized_read, ..Default::default() };
        if let Some(step) = runtime.horizon_step {
            task_graph.horizon_step = step;
        }
        if let Some(width) = runtime.horizon_max_parallelism {
            task_graph.horizon_max_parallelism = width;
        }
        Ok(Settings {
            task_graph,
            dry_run_ranks: self.dry_run_ranks,
            record_commands: self.record_commands,
            runtime,
            unknown_variables: Vec::new(),
        })
    }

    /// Starts the queue (see [`Queue::new`]; in a dry run, nothing starts).
    ///
    /// # Errors
    /// [`Error::Config`] for a bad `CELER_*` value, [`Error::Setting`] for a setting of the program's that has no
    /// meaning (`dry_run(0)`, `devices(0)`; both checked before anything starts), [`Error::Start`] when MPI or a
    /// rank's GPU cannot be set up, on every rank.
    pub fn build(self) -> Result<Queue, Error> {
        Queue::start(self.settings()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_programs_settings_replace_the_defaults_and_ignore_env_keeps_them() {
        let s = QueueBuilder::new()
            .horizon_step(0)
            .stall_timeout(None)
            .lookahead(7)
            .trace("t.json")
            .uninitialized_reads(ErrorPolicy::Error)
            .dry_run(1)
            .ignore_env()
            .settings()
            .unwrap();
        assert_eq!(s.task_graph.horizon_step, 1, "0 counts as 1");
        assert_eq!(s.task_graph.uninitialized_read, ErrorPolicy::Error);
        assert_eq!(s.runtime.stall_timeout, None);
        assert_eq!(s.runtime.lookahead, 7);
        assert_eq!(s.runtime.trace, Some(PathBuf::from("t.json")));
        assert_eq!(s.dry_run_ranks, Some(1));
        // What the program did not set keeps the variables' defaults.
        let defaults = RuntimeConfig::default();
        assert_eq!(s.runtime.submit_ahead, defaults.submit_ahead);
        assert_eq!(s.runtime.overlap, defaults.overlap);
        let plain = QueueBuilder::new().ignore_env().settings().unwrap();
        assert_eq!(plain.runtime, defaults);
        assert_eq!(plain.task_graph.horizon_step, TaskManagerConfig::default().horizon_step);
        assert_eq!(plain.dry_run_ranks, None, "the default runs the program");
    }

    #[test]
    fn a_dry_run_of_no_rank_or_more_than_the_limit_is_refused_at_build_naming_the_setting() {
        let s = QueueBuilder::new().dry_run(QueueBuilder::MAX_DRY_RUN_RANKS).ignore_env().settings().unwrap();
        assert_eq!(s.dry_run_ranks, Some(QueueBuilder::MAX_DRY_RUN_RANKS), "the limit itself is allowed");
        for ranks in [0, QueueBuilder::MAX_DRY_RUN_RANKS + 1, usize::MAX] {
            let e = QueueBuilder::new().dry_run(ranks).ignore_env().settings().expect_err("must be refused");
            assert!(matches!(e, Error::Setting { setting: "QueueBuilder::dry_run", .. }), "{e}");
            let msg = e.to_string();
            assert!(msg.contains(&format!("QueueBuilder::dry_run({ranks}) is not valid")), "{msg}");
            assert!(msg.contains("1 to QueueBuilder::MAX_DRY_RUN_RANKS = 65536 ranks"), "{msg}");
        }
    }

    #[test]
    fn no_devices_per_rank_is_refused_at_build_as_the_variable_refuses_it() {
        let e = QueueBuilder::new().devices(0).ignore_env().settings().expect_err("must be refused");
        assert!(matches!(e, Error::Setting { setting: "QueueBuilder::devices", .. }), "{e}");
        assert!(e.to_string().contains("QueueBuilder::devices(0) is not valid"), "{e}");
        // The environment's valid value wins over the program's zero, as for any setting.
        let env = |name: &str| (name == "CELER_DEVICES").then(|| "2".to_string());
        assert_eq!(QueueBuilder::new().devices(0).settings_from(env).unwrap().runtime.devices, 2);
        assert_eq!(QueueBuilder::new().devices(3).ignore_env().settings().unwrap().runtime.devices, 3);
    }

    #[test]
    fn host_threads_outside_1_to_the_limit_are_refused_at_build_as_the_variable_refuses_them() {
        let max = QueueBuilder::MAX_HOST_THREADS;
        for n in [1, 2, max] {
            assert_eq!(QueueBuilder::new().host_threads(n).ignore_env().settings().unwrap().runtime.host_threads, n);
        }
        for n in [0, max + 1] {
            let e = QueueBuilder::new().host_threads(n).ignore_env().settings().expect_err("must be refused");
            assert!(matches!(e, Error::Setting { setting: "QueueBuilder::host_threads", .. }), "{e}");
            assert!(e.to_string().contains(&format!("QueueBuilder::host_threads({n}) is not valid")), "{e}");
        }
        let env = |name: &str| (name == "CELER_HOST_THREADS").then(|| "3".to_string());
        assert_eq!(QueueBuilder::new().host_threads(8).settings_from(env).unwrap().runtime.host_threads, 3);
    }

    #[test]
    fn more_devices_per_rank_than_the_limit_are_refused_at_build_as_the_variable_refuses_them() {
        let max = QueueBuilder::MAX_DEVICES;
        assert_eq!(QueueBuilder::new().devices(max).ignore_env().settings().unwrap().runtime.devices, max);
        for n in [max + 1, 100_000, usize::MAX] {
            let e = QueueBuilder::new().devices(n).ignore_env().settings().expect_err("must be refused");
            assert!(matches!(e, Error::Setting { setting: "QueueBuilder::devices", .. }), "{e}");
            let msg = e.to_string();
            assert!(msg.contains(&format!("QueueBuilder::devices({n}) is not valid")), "{msg}");
            assert!(msg.contains("1 to QueueBuilder::MAX_DEVICES = 64"), "{msg}");
        }
        let env = |name: &str| (name == "CELER_DEVICES").then(|| "1000".to_string());
        let e = QueueBuilder::new().settings_from(env).expect_err("the variable's 1000 must be refused");
        assert!(e.to_string().contains("CELER_DEVICES=\"1000\" is not valid"), "{e}");
    }

    #[test]
    fn an_away_timeout_without_a_stall_timeout_or_below_the_minimum_is_refused() {
        let off = QueueBuilder::new().stall_timeout(None).away_timeout(Some(Duration::from_secs(5)));
        let msg = off.ignore_env().settings().unwrap_err().to_string();
        assert!(msg.contains("CELER_AWAY_TIMEOUT") && msg.contains("stall timeout off"), "{msg}");
        let short = QueueBuilder::new().away_timeout(Some(Duration::from_millis(1))).ignore_env().settings();
        let msg = short.unwrap_err().to_string();
        assert!(msg.contains("QueueBuilder::away_timeout"), "{msg}");
        let ok =
            QueueBuilder::new().stall_timeout(Some(Duration::from_secs(2))).away_timeout(Some(Duration::from_secs(9)));
        assert_eq!(ok.ignore_env().settings().unwrap().runtime.away_timeout, Some(Duration::from_secs(9)));
    }

    #[test]
    fn a_zero_stall_timeout_is_refused_like_the_variables() {
        let e = QueueBuilder::new().stall_timeout(Some(Duration::ZERO)).ignore_env().settings().unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("CELER_STALL_TIMEOUT") && msg.contains("QueueBuilder::stall_timeout"), "{msg}");
        assert!(msg.contains("a number >= 0.1"), "{msg}");
        let e = QueueBuilder::new().stall_timeout(Some(Duration::from_millis(5))).ignore_env().settings().unwrap_err();
        assert!(e.to_string().contains("5ms (QueueBuilder::stall_timeout)"), "{e}");
        let s = QueueBuilder::new().stall_timeout(Some(Duration::from_millis(100))).ignore_env().settings().unwrap();
        assert_eq!(s.runtime.stall_timeout, Some(Duration::from_millis(100)), "the shortest accepted");
        // The environment's valid value wins over the program's zero, as for any setting.
        let env = |name: &str| (name == "CELER_STALL_TIMEOUT").then(|| "2".to_string());
        let s = QueueBuilder::new().stall_timeout(Some(Duration::ZERO)).settings_from(env).unwrap();
        assert_eq!(s.runtime.stall_timeout, Some(Duration::from_secs(2)));
    }

    #[test]
    fn a_variable_set_in_the_environment_wins_over_the_programs_setting() {
        let env = |name: &str| match name {
            "CELER_STALL_TIMEOUT" => Some("2".to_string()),
            "CELER_LOOKAHEAD" => Some(" ".to_string()), // empty: unset
            "CELER_OVERLAP" => Some("off".to_string()),
            _ => None,
        };
        let s = QueueBuilder::new().stall_timeout(None).lookahead(7).horizon_step(9).settings_from(env).unwrap();
        assert_eq!(s.runtime.stall_timeout, Some(Duration::from_secs(2)), "set in the environment: it wins");
        assert_eq!(s.runtime.lookahead, 7, "empty in the environment: the program's value");
        assert_eq!(s.task_graph.horizon_step, 9, "unset: the program's value");
        let width = |b: QueueBuilder, env: Option<&str>| {
            let s = b.settings_from(|n| (n == "CELER_HORIZON_MAX_PARALLELISM").then(|| env.unwrap_or("").to_string()));
            s.unwrap().task_graph.horizon_max_parallelism
        };
        assert_eq!(width(QueueBuilder::new(), None), TaskManagerConfig::default().horizon_max_parallelism);
        assert_eq!(width(QueueBuilder::new().horizon_max_parallelism(0), None), 1, "0 counts as 1");
        assert_eq!(width(QueueBuilder::new().horizon_max_parallelism(8), None), 8, "unset: the program's value");
        assert_eq!(width(QueueBuilder::new().horizon_max_parallelism(8), Some("3")), 3, "set: the environment's");
        assert_eq!(s.runtime.overlap, None, "not chosen by the program: the environment's");
        let bad = QueueBuilder::new().settings_from(|n| (n == "CELER_DEVICES").then(|| "0".to_string()));
        assert!(matches!(bad, Err(Error::Config(ref e)) if e.variable == "CELER_DEVICES"), "{bad:?}");
    }
}
