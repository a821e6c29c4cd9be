//! Start-up of a rank's runtime: what can fail ([`StartError`]), and the one exchange in which every rank agrees on
//! whether all of them started and on the settings that must be the same everywhere, so that a failure or a
//! disagreement comes back as an `Err` on every rank instead of ending (or hanging) the job.

use celer_exec::gpu::GpuError;
use celer_exec::mpi::{Communicator, MpiError};

use crate::config::SharedSetting;

/// Why the runtime did not start on this rank. Every rank of the job returns one: a rank whose GPU started still
/// fails, with [`StartError::OtherRank`], when another rank's did not.
///
/// The message includes the text of the MPI or GPU error it carries, so `source()` is empty (no report prints it
/// twice); match on the variant for the typed error.
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The runtime thread could not be spawned.
    #[error("could not start the runtime thread: {0}")]
    Thread(std::io::Error),
    /// The runtime thread ended before it reported.
    #[error("the runtime thread ended during start-up")]
    ThreadDied,
    /// MPI did not start (`MPI_Init_thread` or a query right after it failed).
    #[error("MPI did not start: {0}")]
    Mpi(MpiError),
    /// A queue was already started in this process (MPI starts once per process, and cannot start again).
    #[error(
        "a second Queue in this process: celer starts MPI once per process, and MPI cannot start again, even after \
         the first queue is dropped; create one Queue at start-up and pass a reference to it where it is needed"
    )]
    SecondQueue,
    /// The ranks were started with different values of settings that must be the same on every rank
    /// ([`RuntimeConfig::must_agree`](crate::RuntimeConfig::must_agree)); the message names each such variable with
    /// every rank's value.
    #[error("{0}")]
    SettingsDiffer(String),
    /// The ranks run different builds of celer (another version, or a start-up exchange laid out otherwise), found
    /// by the start-up's first, fixed-size exchange before any exchange whose layout depends on the build (a
    /// mismatched one failed inside MPI and hung the start-up).
    #[error(
        "the ranks run different builds of celer: build ids range from {lowest:#018x} to {highest:#018x}, this \
         rank's is {mine:#018x} (celer-scheduler {version}); start every rank from the same binary, or from binaries \
         built from the same celer"
    )]
    BuildsDiffer {
        /// This rank's build id: celer-scheduler's version and the layout of the start-up exchanges, hashed.
        mine: u64,
        /// The lowest build id of the ranks.
        lowest: u64,
        /// The highest build id of the ranks.
        highest: u64,
        /// This rank's celer-scheduler version.
        version: &'static str,
    },
    /// This rank's GPU did not start: no Vulkan driver, no device with a compute queue, a bad `CELER_DEVICE`.
    #[error("rank {rank}: the GPU (device {device} of this rank) did not start: {error}")]
    Gpu {
        /// This rank.
        rank: i32,
        /// The device index of this rank (`CELER_DEVICES`).
        device: usize,
        /// Why.
        error: GpuError,
    },
    /// Another rank's GPU did not start (that rank's error names why), so no rank starts.
    #[error("rank {rank} could not start its GPU (its own error says why), so no rank starts")]
    OtherRank {
        /// The lowest rank that failed.
        rank: u64,
    },
}

/// The same sentence as `Display`, so that `fn main() -> Result<(), Box<dyn Error>>` prints a readable message.
impl std::fmt::Debug for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

/// What the devices of every rank offer that `submit` checks kernels against, so that every rank refuses a kernel
/// alike: the least of every device of every rank (agreed at start-up).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Capabilities {
    /// Whether every device runs kernels that use `f64` (`shaderFloat64`).
    pub float64: bool,
    /// The least `maxPushConstantsSize`: what a dispatch's push constants (chunk, a box per binding, scalars) may
    /// take, in bytes.
    pub max_push_constant_bytes: u32,
    /// The least number of storage buffers a dispatch may bind (`maxPerStageDescriptorStorageBuffers`, or
    /// `maxDescriptorSetStorageBuffers` where less): its accessors and reductions, a checked kernel's bounds record,
    /// the parameter buffer of a kernel reading its parameters from storage.
    pub max_storage_buffers: u32,
    /// The least `maxStorageBufferRange`: the most bytes a kernel binds for one accessor (`submit` refuses a kernel
    /// whose chunk accesses more of a buffer).
    pub max_storage_buffer_range: u32,
}

impl Capabilities {
    /// What this rank's devices `gpus` offer (the least of them; nothing is limited where the start-up failed,
    /// which the agreement reports anyway). `no_float64`: a fault injected for tests makes them lack `f64`.
    pub(crate) fn of(gpus: Result<&[celer_exec::gpu::Gpu], ()>, no_float64: bool) -> Self {
        let least = |limit: fn(&celer_exec::gpu::GpuLimits) -> u32| {
            gpus.ok().and_then(|gpus| gpus.iter().map(|g| limit(g.limits())).min()).unwrap_or(u32::MAX)
        };
        Capabilities {
            float64: gpus.is_ok_and(|gpus| gpus.iter().all(celer_exec::gpu::Gpu::float64)) && !no_float64,
            max_push_constant_bytes: least(|l| l.max_push_constant_bytes),
            max_storage_buffers: least(|l| l.max_storage_buffers),
            max_storage_buffer_range: least(|l| l.max_storage_buffer_range),
        }
    }
}

/// How many capability slots follow the settings in [`agree`]'s exchange.
const CAPABILITY_SLOTS: usize = 4;

/// This build's identity, compared by [`agree`]'s first exchange: celer-scheduler's version and the layout of the
/// exchanges that follow (`settings` shared settings, the capability slots, the divergence check's detail size), so
/// that ranks whose exchanges would not match fail with [`StartError::BuildsDiffer`] instead of inside MPI. Below
/// `u64::MAX`.
pub(crate) fn build_id(settings: usize) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = crate::divergence::FoldHasher::new(0x0063_656c_6572);
    env!("CARGO_PKG_VERSION").hash(&mut h);
    (settings, CAPABILITY_SLOTS, crate::divergence::DETAIL_TASKS).hash(&mut h);
    h.finish().min(u64::MAX - 1)
}

/// Every rank passes what its own start-up gave, its values of the settings that must agree and what all its
/// devices offer (`caps`); returns the start-up's result, with what every rank's devices offer,
/// where every rank succeeded with the same settings, [`StartError::SettingsDiffer`] (on every
/// rank) where the settings differ between ranks, else this rank's own error where it failed, and
/// [`StartError::OtherRank`] where only another rank failed. Collective: every rank calls it once, at the same point, before any collective whose count
/// depends on a setting (one element-wise minimum over a duplicate of the world communicator: the lowest failed
/// rank, then each setting's value in this rank's slot and `u64::MAX` in the others', then `float64` as 0 or 1, then
/// the push-constant limit, the storage-buffer limit and the storage-buffer range limit).
///
/// Before it, a fixed-size exchange compares `build` ([`build_id`]; a fault injected for tests changes it) between
/// the ranks: where it differs, [`StartError::BuildsDiffer`] on every rank.
pub(crate) fn agree<T>(
    comm: &Communicator,
    settings: &[SharedSetting],
    mine: Result<T, StartError>,
    caps: Capabilities,
    build: u64,
) -> Result<(T, Capabilities), StartError> {
    let rank = comm.rank() as usize;
    let ranks = comm.size() as usize;
    let tail = 1 + settings.len() * ranks;
    let mut values = vec![u64::MAX; tail + CAPABILITY_SLOTS];
    if mine.is_err() {
        values[0] = rank as u64;
    }
    values[tail] = u64::from(caps.float64);
    values[tail + 1] = u64::from(caps.max_push_constant_bytes);
    values[tail + 2] = u64::from(caps.max_storage_buffers);
    values[tail + 3] = u64::from(caps.max_storage_buffer_range);
    for (i, s) in settings.iter().enumerate() {
        values[1 + i * ranks + rank] = s.value;
    }
    let side = comm.duplicate().map_err(StartError::Mpi)?;
    let min = |values: Vec<u64>| -> Result<Vec<u64>, StartError> {
        let mut reduce = side.iallreduce_min(values).map_err(StartError::Mpi)?;
        loop {
            if let Some(all) = reduce.test(comm).map_err(StartError::Mpi)? {
                return Ok(all.to_vec());
            }
            std::thread::yield_now();
        }
    };
    // Fixed-size, whatever the build: the exchange below is laid out by the build.
    let builds = min(vec![build, !build])?;
    let (lowest, highest) = (builds[0], !builds[1]);
    if lowest != highest {
        return Err(StartError::BuildsDiffer { mine: build, lowest, highest, version: env!("CARGO_PKG_VERSION") });
    }
    let all = min(values)?;
    // Settings that differ come first: they are often why a rank's start-up failed (`CELER_DEVICES`).
    if let Some(message) = crate::config::disagreement(settings, &all[1..1 + settings.len() * ranks], ranks) {
        return Err(StartError::SettingsDiffer(message));
    }
    let mine = mine?;
    let agreed = Capabilities {
        float64: all[tail] == 1,
        max_push_constant_bytes: u32::try_from(all[tail + 1]).unwrap_or(u32::MAX),
        max_storage_buffers: u32::try_from(all[tail + 2]).unwrap_or(u32::MAX),
        max_storage_buffer_range: u32::try_from(all[tail + 3]).unwrap_or(u32::MAX),
    };
    match all[0] {
        u64::MAX => Ok((mine, agreed)),
        lowest => Err(StartError::OtherRank { rank: lowest }),
    }
}
