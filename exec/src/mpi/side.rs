//! The side communicator (`MPI_Comm_dup`) and its non-blocking minimum reduction.

use std::ffi::{c_int, c_void};
use std::marker::PhantomData;

use mpi_sys as ffi;

use super::{check, count_of, error_string, Communicator, MpiError, RawRequest};

impl Communicator {
    /// A duplicate of `MPI_COMM_WORLD` (`MPI_Comm_dup`, collective: every rank must call it, in the same order
    /// relative to other collectives). MPI matches collectives per communicator in call order, so collectives on
    /// the duplicate never pair with barriers or messages on `MPI_COMM_WORLD`, even when ranks call different
    /// numbers of them.
    ///
    /// # Errors
    ///
    /// [`MpiError::Call`] if MPI refuses.
    pub fn duplicate(&self) -> Result<SideComm<'_>, MpiError> {
        // SAFETY: reading an immutable extern constant that rsmpi.c defines.
        let mut comm = unsafe { ffi::RSMPI_COMM_NULL };
        // SAFETY: MPI is initialised (we hold the Communicator, on its thread); `self.handle` is live (the world or
        // a duplicate not yet freed) and `comm` a valid out-pointer.
        check("MPI_Comm_dup", unsafe { ffi::MPI_Comm_dup(self.handle, &mut comm) })?;
        // SAFETY: `comm` was just created by MPI_Comm_dup; errors on it return codes like those on the world.
        check("MPI_Comm_set_errhandler", unsafe { ffi::MPI_Comm_set_errhandler(comm, ffi::RSMPI_ERRORS_RETURN) })?;
        Ok(SideComm { comm, _world: PhantomData })
    }
}

/// A duplicate of `MPI_COMM_WORLD` for a few collectives of its own (see [`Communicator::duplicate`]); freed
/// (`MPI_Comm_free`) when dropped, which must happen before the [`Communicator`] is dropped (the borrow ensures
/// it).
#[derive(Debug)]
pub struct SideComm<'c> {
    comm: ffi::MPI_Comm,
    _world: PhantomData<&'c Communicator>,
}

impl SideComm<'_> {
    /// Starts an element-wise minimum of `values` over every rank (`MPI_Iallreduce`, `MPI_UINT64_T`, `MPI_MIN`)
    /// without waiting; every rank must pass as many values. A maximum is the minimum of the complements
    /// (`!v`), so one reduction gives both.
    ///
    /// # Errors
    ///
    /// [`MpiError::TooLong`] for more than `i32::MAX` values; [`MpiError::Call`] if MPI refuses.
    pub fn iallreduce_min(&self, values: Vec<u64>) -> Result<MinReduce, MpiError> {
        let count = count_of(values.len())?;
        let send = values.into_boxed_slice();
        let mut recv = vec![0u64; send.len()].into_boxed_slice();
        let mut request = RawRequest::null();
        // SAFETY: MPI is initialised (`self` borrows the Communicator, on its thread); `self.comm` is live until
        // `self` drops. `send` and `recv` hold `count` u64 each on the heap; the returned MinReduce owns both and
        // keeps them (or leaks them, if dropped early) until the request completes, and nothing else touches them.
        check("MPI_Iallreduce", unsafe {
            ffi::MPI_Iallreduce(
                send.as_ptr().cast::<c_void>(),
                recv.as_mut_ptr().cast::<c_void>(),
                count,
                ffi::RSMPI_UINT64_T,
                ffi::RSMPI_MIN,
                self.comm,
                &mut request.0,
            )
        })?;
        Ok(MinReduce { send, recv, request })
    }
}

impl Drop for SideComm<'_> {
    fn drop(&mut self) {
        // SAFETY: `self.comm` came from MPI_Comm_dup and is freed once, here, while MPI is still initialised (the
        // borrow of the Communicator). Pending operations on it complete inside MPI regardless (MPI-3.1 §6.4.3);
        // their buffers are leaked by MinReduce's Drop.
        let rc = unsafe { ffi::MPI_Comm_free(&mut self.comm) };
        debug_assert_eq!(rc, ffi::MPI_SUCCESS as c_int, "MPI_Comm_free failed: {}", error_string(rc));
    }
}

/// A reduction started by [`SideComm::iallreduce_min`]; owns its buffers until it completes.
#[derive(Debug)]
pub struct MinReduce {
    send: Box<[u64]>,
    recv: Box<[u64]>,
    request: RawRequest,
}

impl MinReduce {
    /// Tests the reduction once (`MPI_Test`, never blocks); once it completed, the element-wise minimum over
    /// every rank.
    ///
    /// # Errors
    ///
    /// [`MpiError::Call`] if MPI reports a failure.
    pub fn test(&mut self, comm: &Communicator) -> Result<Option<&[u64]>, MpiError> {
        Ok(self.request.test(comm)?.then_some(&*self.recv))
    }
}

impl Drop for MinReduce {
    fn drop(&mut self) {
        if !self.request.is_null() {
            // Still in flight (the job is ending): a collective cannot be cancelled or freed (MPI-3.1 §5.12), so
            // MPI may still write `recv` and read `send`; leak both rather than free memory MPI uses.
            std::mem::forget(std::mem::take(&mut self.send));
            std::mem::forget(std::mem::take(&mut self.recv));
        }
    }
}
