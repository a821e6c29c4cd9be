//! Polling many raw requests at once with `MPI_Testsome`.

use std::ffi::c_int;

use mpi_sys as ffi;

use super::{check, count_of, Communicator, MpiError, Rank, RawRequest, Tag};

/// One request that [`Testsome::test`] found complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Completed {
    /// Its index in the array passed to [`Testsome::test`].
    pub index: usize,
    /// For a receive, the rank the message came from (meaningful for [`ANY_SOURCE`](super::ANY_SOURCE) receives).
    pub source: Rank,
    /// For a receive, the message's tag.
    pub tag: Tag,
    /// For a receive, the number of bytes that arrived (`MPI_Get_count` of `MPI_UINT8_T`).
    pub bytes: usize,
    /// `MPI_SUCCESS`, or the error code of a failed operation (see [`Completed::result`]).
    pub error: i32,
}

impl Completed {
    /// `Ok` if the operation succeeded, else the [`MpiError::Call`] that describes its error code.
    ///
    /// # Errors
    ///
    /// The operation's own error, e.g. `MPI_ERR_TRUNCATE` for a message longer than the buffer.
    pub fn result(&self) -> Result<(), MpiError> {
        check("MPI_Testsome (operation status)", self.error)
    }
}

/// Polls many [`RawRequest`]s at once with `MPI_Testsome`, keeping its index and status arrays
/// between calls so that a steady-state poll allocates nothing.
#[derive(Debug, Default)]
pub struct Testsome {
    indices: Vec<c_int>,
    statuses: Vec<ffi::MPI_Status>,
}

impl Testsome {
    /// Empty scratch arrays; they grow to the largest request array seen.
    pub fn new() -> Self {
        Self::default()
    }

    /// Tests every request in `requests` once (`MPI_Testsome`, never blocks) and appends one
    /// [`Completed`] per request that has finished since the last call; MPI sets those entries to
    /// the null request. Null requests are skipped. An operation that failed is reported with its
    /// error code in [`Completed::error`], not as an `Err`, so its owner can name what failed.
    ///
    /// # Errors
    ///
    /// [`MpiError::Call`] if `MPI_Testsome` itself fails, or [`MpiError::TooLong`] for more than
    /// `i32::MAX` requests.
    pub fn test(
        &mut self,
        _comm: &Communicator,
        requests: &mut [RawRequest],
        out: &mut Vec<Completed>,
    ) -> Result<(), MpiError> {
        let n = requests.len();
        let incount = count_of(n)?;
        if n == 0 {
            return Ok(());
        }
        if self.statuses.len() < n {
            // SAFETY: MPI_Status is a plain C struct of integers, for which all-zero bytes is a
            // valid value; MPI overwrites the entries it reports.
            let zero: ffi::MPI_Status = unsafe { std::mem::zeroed() };
            self.statuses.resize(n, zero);
            self.indices.resize(n, 0);
        }
        let mut outcount: c_int = 0;
        // SAFETY: MPI is initialised (the `_comm` borrow proves a live Communicator on its thread).
        // `requests` is `n` valid handles (RawRequest is repr(transparent) over MPI_Request, and
        // every value is either null or an active request started by this module); `indices` and
        // `statuses` have room for `n` entries, as MPI_Testsome may write up to `incount`.
        let rc = unsafe {
            ffi::MPI_Testsome(
                incount,
                requests.as_mut_ptr().cast::<ffi::MPI_Request>(),
                &mut outcount,
                self.indices.as_mut_ptr(),
                self.statuses.as_mut_ptr(),
            )
        };
        // MPI_ERR_IN_STATUS: some operation failed; each status's MPI_ERROR says which.
        let in_status = rc == ffi::MPI_ERR_IN_STATUS as c_int;
        if !in_status {
            check("MPI_Testsome", rc)?;
        }
        // MPI_UNDEFINED: every request was null.
        let done = usize::try_from(outcount).unwrap_or(0).min(n);
        for k in 0..done {
            let status = &self.statuses[k];
            let error = if in_status { status.MPI_ERROR } else { ffi::MPI_SUCCESS as c_int };
            let mut count: c_int = 0;
            if error == ffi::MPI_SUCCESS as c_int {
                // SAFETY: `status` was filled in by MPI_Testsome for a completed request; MPI is
                // initialised; `count` is a valid out-pointer. For a send the count is
                // meaningless but harmless.
                let rc = unsafe { ffi::MPI_Get_count(status, ffi::RSMPI_UINT8_T, &mut count) };
                if rc != ffi::MPI_SUCCESS as c_int {
                    count = 0;
                }
            }
            out.push(Completed {
                index: usize::try_from(self.indices[k]).unwrap_or(usize::MAX),
                source: status.MPI_SOURCE,
                tag: status.MPI_TAG,
                bytes: usize::try_from(count).unwrap_or(0),
                error,
            });
        }
        Ok(())
    }
}
