//! Point-to-point messages: `MPI_Isend`/`MPI_Irecv` as borrowing [`Request`]s or bare [`RawRequest`]s, and the barrier.

use std::ffi::{c_int, c_void};
use std::marker::PhantomData;

use mpi_sys as ffi;

use super::{check, count_of, Communicator, MpiError, Rank, Tag};

impl Communicator {
    /// Starts sending `bytes` to rank `dest` with tag `tag` (`MPI_Isend`) and returns at once.
    ///
    /// `bytes` must not change until the returned request has completed; the borrow makes the
    /// compiler enforce that.
    ///
    /// # Errors
    ///
    /// [`MpiError::TooLong`] for more than `i32::MAX` bytes; [`MpiError::Call`] if MPI refuses
    /// (for example an invalid rank or tag).
    ///
    /// # Safety
    ///
    /// The returned [`Request`] must not be leaked (`mem::forget`, a reference cycle, ...): MPI
    /// reads `bytes` until the request completes, and only the request's `Drop` guarantees that
    /// happens before the borrow ends. Dropping it normally is always fine.
    pub unsafe fn isend<'a>(&'a self, bytes: &'a [u8], dest: Rank, tag: Tag) -> Result<Request<'a>, MpiError> {
        let count = count_of(bytes.len())?;
        let mut request = Request::null(RequestKind::Send);
        // SAFETY: MPI is initialised (we hold the Communicator, on its thread). `bytes` is valid for
        // `count` bytes and stays borrowed, unmodified, until the request completes: the Request
        // holds the borrow and its Drop completes it; the caller promises not to leak it.
        check("MPI_Isend", unsafe {
            ffi::MPI_Isend(
                bytes.as_ptr().cast::<c_void>(),
                count,
                ffi::RSMPI_UINT8_T,
                dest,
                tag,
                self.handle,
                &mut request.raw,
            )
        })?;
        Ok(request)
    }

    /// Starts receiving up to `buf.len()` bytes from rank `src` with tag `tag` (`MPI_Irecv`) and
    /// returns at once.
    ///
    /// `buf` holds the message once [`Request::test`] has returned `true`. A longer message than
    /// `buf` makes `test` fail with MPI's truncation error.
    ///
    /// # Errors
    ///
    /// [`MpiError::TooLong`] for more than `i32::MAX` bytes; [`MpiError::Call`] if MPI refuses.
    ///
    /// # Safety
    ///
    /// The returned [`Request`] must not be leaked (`mem::forget`, a reference cycle, ...): MPI
    /// writes into `buf` until the request completes, and only the request's `Drop` guarantees that
    /// happens before the borrow ends. Dropping it normally is always fine.
    pub unsafe fn irecv<'a>(&'a self, buf: &'a mut [u8], src: Rank, tag: Tag) -> Result<Request<'a>, MpiError> {
        let count = count_of(buf.len())?;
        let mut request = Request::null(RequestKind::Recv);
        // SAFETY: MPI is initialised (we hold the Communicator, on its thread). `buf` is valid for
        // writes of `count` bytes and stays mutably borrowed until the request completes: the
        // Request holds the borrow and its Drop completes it; the caller promises not to leak it.
        check("MPI_Irecv", unsafe {
            ffi::MPI_Irecv(
                buf.as_mut_ptr().cast::<c_void>(),
                count,
                ffi::RSMPI_UINT8_T,
                src,
                tag,
                self.handle,
                &mut request.raw,
            )
        })?;
        Ok(request)
    }

    /// Starts sending `len` bytes at `ptr` to rank `dest` with tag `tag` (`MPI_Isend`) and returns
    /// the bare request, for an array polled with [`Testsome`](super::Testsome).
    ///
    /// # Errors
    ///
    /// [`MpiError::TooLong`] for more than `i32::MAX` bytes; [`MpiError::Call`] if MPI refuses
    /// (for example an invalid rank or tag).
    ///
    /// # Safety
    ///
    /// - `ptr` is valid for reads of `len` bytes, and those bytes are neither written nor freed
    ///   until the request has completed (reported by [`Testsome::test`](super::Testsome::test)) or been freed with
    ///   [`RawRequest::free`] (after which the memory must never be reused or freed: leak it).
    /// - The request is completed or freed before this communicator is dropped; a [`RawRequest`]
    ///   does nothing on drop.
    pub unsafe fn isend_raw(&self, ptr: *const u8, len: usize, dest: Rank, tag: Tag) -> Result<RawRequest, MpiError> {
        let count = count_of(len)?;
        let mut request = RawRequest::null();
        // SAFETY: MPI is initialised (we hold the Communicator, on its thread). The caller upholds
        // that `ptr` is readable for `len` bytes and stays so until the request completes or is
        // freed (this function's contract).
        check("MPI_Isend", unsafe {
            ffi::MPI_Isend(ptr.cast::<c_void>(), count, ffi::RSMPI_UINT8_T, dest, tag, self.handle, &mut request.0)
        })?;
        Ok(request)
    }

    /// Starts receiving up to `len` bytes into `ptr` from rank `src` (or [`ANY_SOURCE`](super::ANY_SOURCE)) with tag
    /// `tag` (`MPI_Irecv`) and returns the bare request, for an array polled with [`Testsome`](super::Testsome).
    ///
    /// A longer message than `len` completes the request with MPI's truncation error.
    ///
    /// # Errors
    ///
    /// [`MpiError::TooLong`] for more than `i32::MAX` bytes; [`MpiError::Call`] if MPI refuses.
    ///
    /// # Safety
    ///
    /// - `ptr` is valid for writes of `len` bytes, and nothing else reads, writes or frees them
    ///   until the request has completed (reported by [`Testsome::test`](super::Testsome::test)), also after
    ///   [`RawRequest::cancel`].
    /// - The request is completed before this communicator is dropped; a [`RawRequest`] does
    ///   nothing on drop.
    pub unsafe fn irecv_raw(&self, ptr: *mut u8, len: usize, src: Rank, tag: Tag) -> Result<RawRequest, MpiError> {
        let count = count_of(len)?;
        let mut request = RawRequest::null();
        // SAFETY: MPI is initialised (we hold the Communicator, on its thread). The caller upholds
        // that `ptr` is writable for `len` bytes and untouched until the request completes (this
        // function's contract).
        check("MPI_Irecv", unsafe {
            ffi::MPI_Irecv(ptr.cast::<c_void>(), count, ffi::RSMPI_UINT8_T, src, tag, self.handle, &mut request.0)
        })?;
        Ok(request)
    }

    /// Starts a barrier across all ranks without waiting for it (`MPI_Ibarrier`); poll the request with
    /// [`RawRequest::test`].
    ///
    /// # Errors
    ///
    /// [`MpiError::Call`] if MPI refuses.
    pub fn ibarrier(&self) -> Result<RawRequest, MpiError> {
        let mut request = RawRequest::null();
        // SAFETY: MPI is initialised (we hold the Communicator, on its thread); the request handle is a valid
        // out-pointer, and a barrier touches no user buffer.
        check("MPI_Ibarrier", unsafe { ffi::MPI_Ibarrier(self.handle, &mut request.0) })?;
        Ok(request)
    }
}

/// Whether a [`Request`] sends or receives; decides how `Drop` ends an unfinished one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RequestKind {
    Send,
    Recv,
}

/// A pending non-blocking send or receive; poll it with [`Request::test`].
///
/// Borrows the communicator and the message buffer until it is dropped. Dropping an unfinished
/// request cancels it if it is a receive, then polls `MPI_Test` until MPI has let go of the buffer:
/// dropping an unfinished *send* whose receiver never posts a matching receive therefore spins
/// forever. Let requests finish (or keep an outer time limit) before dropping them.
#[derive(Debug)]
pub struct Request<'a> {
    raw: ffi::MPI_Request,
    kind: RequestKind,
    done: bool,
    /// The communicator and the buffer MPI reads or writes until completion.
    _borrow: PhantomData<&'a mut [u8]>,
}

impl Request<'_> {
    fn null(kind: RequestKind) -> Self {
        // SAFETY: reading an immutable extern constant that rsmpi.c defines.
        let raw = unsafe { ffi::RSMPI_REQUEST_NULL };
        Request { raw, kind, done: false, _borrow: PhantomData }
    }

    /// Polls the request once (`MPI_Test`, never `MPI_Wait`): `true` once the send buffer may be
    /// reused or the received message is in the buffer. Keeps returning `true` after that.
    ///
    /// # Errors
    ///
    /// [`MpiError::Call`] if the operation failed, for example a received message longer than
    /// the buffer (`MPI_ERR_TRUNCATE`).
    pub fn test(&mut self) -> Result<bool, MpiError> {
        if self.done {
            return Ok(true);
        }
        let mut flag: c_int = 0;
        // SAFETY: `raw` was filled in by MPI_Isend/MPI_Irecv and not yet completed (`done` is
        // false); MPI is initialised because the Communicator outlives this Request; the flag
        // pointer is valid and MPI_STATUS_IGNORE is allowed for the status.
        check("MPI_Test", unsafe { ffi::MPI_Test(&mut self.raw, &mut flag, ffi::RSMPI_STATUS_IGNORE) })?;
        self.done = flag != 0;
        Ok(self.done)
    }

    /// Whether an earlier [`test`](Self::test) has seen the request complete.
    pub fn is_done(&self) -> bool {
        self.done
    }
}

impl Drop for Request<'_> {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        if self.kind == RequestKind::Recv {
            // SAFETY: `raw` is an active receive request on this thread, MPI is initialised (the
            // Communicator outlives the Request). A cancelled receive completes locally.
            let _ = unsafe { ffi::MPI_Cancel(&mut self.raw) };
        }
        // MPI owns the buffer until the request completes, so the borrow must not end before then.
        // An error from MPI_Test also completes (frees) the request.
        // An error from MPI_Test means the operation ended (in failure), so stop there too.
        while let Ok(false) = self.test() {
            std::hint::spin_loop();
        }
    }
}

/// A bare MPI request handle, for arrays polled together with [`Testsome`](super::Testsome).
///
/// Unlike [`Request`] it borrows nothing and does nothing on drop: whoever started it (with
/// [`Communicator::isend_raw`] or [`Communicator::irecv_raw`]) keeps its buffer alive and must see
/// it complete, or [`free`](Self::free) it. A completed or freed request is the null request.
#[derive(Debug)]
#[repr(transparent)]
pub struct RawRequest(pub(super) ffi::MPI_Request);

impl RawRequest {
    /// The null request (`MPI_REQUEST_NULL`): already complete; [`Testsome`](super::Testsome) skips it.
    pub fn null() -> Self {
        // SAFETY: reading an immutable extern constant that rsmpi.c defines.
        RawRequest(unsafe { ffi::RSMPI_REQUEST_NULL })
    }

    /// Whether this is the null request (completed, freed, or never started).
    pub fn is_null(&self) -> bool {
        // SAFETY: reading an immutable extern constant that rsmpi.c defines.
        self.0 == unsafe { ffi::RSMPI_REQUEST_NULL }
    }

    /// Tests the request once (`MPI_Test`, never blocks); true once it completed, after which it is the null
    /// request. The null request counts as complete.
    ///
    /// # Errors
    ///
    /// [`MpiError::Call`] if MPI reports a failure.
    pub fn test(&mut self, _comm: &Communicator) -> Result<bool, MpiError> {
        if self.is_null() {
            return Ok(true);
        }
        let mut flag: c_int = 0;
        // SAFETY: `self.0` is an active request started on this thread; MPI is initialised (the `_comm` borrow);
        // `flag` is a valid out-pointer and the status is ignored through MPI's predefined constant.
        check("MPI_Test", unsafe { ffi::MPI_Test(&mut self.0, &mut flag, ffi::RSMPI_STATUS_IGNORE) })?;
        Ok(flag != 0)
    }

    /// Asks MPI to cancel the operation (`MPI_Cancel`); it still has to be completed with
    /// [`Testsome::test`](super::Testsome::test), which for a cancelled receive happens without the sender's help
    /// (MPI-3.1 §3.8.4). Does nothing for the null request.
    ///
    /// # Errors
    ///
    /// [`MpiError::Call`] if MPI refuses.
    pub fn cancel(&mut self, _comm: &Communicator) -> Result<(), MpiError> {
        if self.is_null() {
            return Ok(());
        }
        // SAFETY: `self.0` is an active request started on this thread (not null, checked above),
        // and MPI is initialised: the `_comm` borrow proves a live Communicator on its thread.
        check("MPI_Cancel", unsafe { ffi::MPI_Cancel(&mut self.0) })
    }

    /// Lets go of the request without waiting for it (`MPI_Request_free`); the operation still
    /// runs to completion inside MPI, so its buffer must never be reused or freed (leak it).
    /// Leaves the null request. Does nothing for the null request.
    ///
    /// # Errors
    ///
    /// [`MpiError::Call`] if MPI refuses.
    pub fn free(&mut self, _comm: &Communicator) -> Result<(), MpiError> {
        if self.is_null() {
            return Ok(());
        }
        // SAFETY: `self.0` is an active request started on this thread; MPI is initialised (the
        // `_comm` borrow). MPI sets the handle to MPI_REQUEST_NULL. Keeping the buffer alive is
        // the caller's duty (documented above).
        check("MPI_Request_free", unsafe { ffi::MPI_Request_free(&mut self.0) })
    }
}
