//! Start-up of a rank's runtime: what can fail ([`StartError`]), and the agreement of every rank on whether all of
//! them started, so that a failure comes back as an `Err` on every rank instead of ending the job.

use celer_exec::gpu::GpuError;
use celer_exec::mpi::{Communicator, MpiError};

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

/// Every rank passes what its own start-up gave; returns it where every rank succeeded, this rank's own error where
/// it failed, and [`StartError::OtherRank`] where only another rank failed. Collective: every rank calls it once,
/// at the same point (an element-wise minimum over a duplicate of the world communicator).
pub(crate) fn agree<T>(comm: &Communicator, mine: Result<T, StartError>) -> Result<T, StartError> {
    let rank = comm.rank() as u64;
    let failed = if mine.is_err() { rank } else { u64::MAX };
    let lowest = (|| -> Result<u64, MpiError> {
        let side = comm.duplicate()?;
        let mut reduce = side.iallreduce_min(vec![failed])?;
        loop {
            if let Some(min) = reduce.test(comm)? {
                return Ok(min[0]);
            }
            std::thread::yield_now();
        }
    })()
    .map_err(StartError::Mpi)?;
    match mine {
        Ok(v) if lowest == u64::MAX => Ok(v),
        Ok(_) => Err(StartError::OtherRank { rank: lowest }),
        Err(e) => Err(e),
    }
}
