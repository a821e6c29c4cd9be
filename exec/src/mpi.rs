//! A minimal MPI communicator over `mpi-sys`: initialisation, rank and size, and non-blocking
//! byte messages whose completion is found by polling.
//!
//! - **One thread talks to MPI.** [`init`] asks for `MPI_THREAD_FUNNELED`: only the thread that
//!   called it makes MPI calls. [`Communicator`] and [`Request`] are neither `Send` nor `Sync`, so
//!   the compiler keeps them on that thread.
//! - **Completion is polled, never waited for.** [`Request::test`] calls `MPI_Test`; nothing here
//!   calls `MPI_Wait`, so the thread that drives MPI can interleave it with Vulkan fences.
//! - **Errors are returned, not fatal.** `MPI_COMM_WORLD` gets `MPI_ERRORS_RETURN`, and each failing
//!   call becomes an [`MpiError::Call`] that carries MPI's own message (`MPI_Error_string`).
//! - **Once per process.** MPI can be initialised only once in a process (and never again after
//!   `MPI_Finalize`), so multi-rank tests are separate binaries launched by `mpirun`, not `#[test]`s.
//!   A process started without `mpirun` becomes a single rank (MPI's "singleton" mode).
//!
//! # Implementation notes
//!
//! | celer | MPI |
//! |---|---|
//! | [`init`] / dropping the [`Communicator`] | `MPI_Init_thread(FUNNELED)` / `MPI_Finalize` |
//! | [`Communicator::isend`] / [`Communicator::irecv`] | `MPI_Isend` / `MPI_Irecv` of `MPI_UINT8_T` on `MPI_COMM_WORLD` |
//! | [`Request::test`] | `MPI_Test` |
//! | dropping an unfinished [`Request`] | `MPI_Cancel` (receives only), then `MPI_Test` until done |
//! | [`Communicator::tag_ub`] | the `MPI_TAG_UB` attribute of `MPI_COMM_WORLD` (`MPI_Comm_get_attr`) |
//! | [`Communicator::isend_raw`] / [`Communicator::irecv_raw`] | `MPI_Isend` / `MPI_Irecv` into memory the caller owns, as a [`RawRequest`] |
//! | [`Testsome::test`] | `MPI_Testsome` over an array of [`RawRequest`]s, then `MPI_Get_count` per completion |
//! | [`RawRequest::cancel`] / [`RawRequest::free`] | `MPI_Cancel` / `MPI_Request_free` |
//! | [`Communicator::duplicate`] / dropping the [`SideComm`] | `MPI_Comm_dup` / `MPI_Comm_free` |
//! | [`SideComm::iallreduce_min`] / [`MinReduce::test`] | `MPI_Iallreduce` of `MPI_UINT64_T` with `MPI_MIN` / `MPI_Test` |
//!
//! [`Request`] borrows its buffer and completes itself on drop, for code that waits on one message
//! at a time. [`RawRequest`] does neither: it is the building block for a loop that keeps many
//! requests in one array and polls them together with [`Testsome`] (see [`crate::transfer`]); its
//! owner keeps the buffer alive and must complete, cancel or free every request it starts.

use std::cell::Cell;
use std::ffi::{c_int, c_void};
use std::marker::PhantomData;
use std::ptr;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};

use mpi_sys as ffi;

/// The rank of a process in `MPI_COMM_WORLD` (0-based), as MPI counts them.
pub type Rank = i32;

/// A message tag. MPI guarantees at least `0..=32767`.
pub type Tag = i32;

/// Receives from any rank (`MPI_ANY_SOURCE`), for [`Communicator::irecv_raw`].
pub const ANY_SOURCE: Rank = ffi::MPI_ANY_SOURCE as Rank;

/// Set by the first call to [`init`]; MPI cannot be initialised twice in one process.
static INIT_CALLED: AtomicBool = AtomicBool::new(false);

/// An error from MPI or from misuse of this module.
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum MpiError {
    /// An MPI call returned an error code.
    #[error("{call} failed with MPI error code {code}: {message}")]
    Call {
        /// The MPI function that failed, e.g. `"MPI_Isend"`.
        call: &'static str,
        /// The error code it returned.
        code: i32,
        /// MPI's description of the code (`MPI_Error_string`).
        message: String,
    },
    /// The MPI library cannot give the thread support celer needs.
    #[error(
        "MPI provides thread level {provided}, but celer needs at least MPI_THREAD_FUNNELED ({required}); \
         use an MPI library built with thread support (e.g. Debian's libopenmpi-dev)"
    )]
    ThreadLevel {
        /// The value of `MPI_THREAD_FUNNELED` in this MPI library.
        required: i32,
        /// The level `MPI_Init_thread` reported.
        provided: i32,
    },
    /// [`init`] was called a second time in this process, or MPI was initialised by someone else.
    #[error(
        "MPI was already initialised in this process; it can be initialised only once, \
         so create one Communicator at start-up and pass it around"
    )]
    AlreadyInitialised,
    /// A message is longer than MPI's `int` element count allows.
    #[error("a message of {len} bytes is longer than MPI's int count allows ({max} bytes); split it")]
    TooLong {
        /// The length that was asked for.
        len: usize,
        /// The largest length one call can move.
        max: usize,
    },
}

/// The same sentence as `Display`, so that `fn main() -> Result<(), Box<dyn Error>>` prints a readable message.
impl std::fmt::Debug for MpiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

/// Turns an MPI return code into a `Result`, looking up MPI's message on failure.
fn check(call: &'static str, code: c_int) -> Result<(), MpiError> {
    if code == ffi::MPI_SUCCESS as c_int {
        return Ok(());
    }
    Err(MpiError::Call { call, code, message: error_string(code) })
}

/// MPI's description of an error code (`MPI_Error_string`).
fn error_string(code: c_int) -> String {
    let mut buf = [0u8; ffi::MPI_MAX_ERROR_STRING as usize];
    let mut len: c_int = 0;
    // SAFETY: `buf` has room for MPI_MAX_ERROR_STRING characters, as MPI_Error_string requires, and
    // `len` is a valid out-pointer. MPI_Error_string may be called before MPI_Init and after
    // MPI_Finalize (MPI-3.1 §8.7), so no initialisation state is needed.
    let rc = unsafe { ffi::MPI_Error_string(code, buf.as_mut_ptr().cast(), &mut len) };
    if rc != ffi::MPI_SUCCESS as c_int {
        return format!("(MPI_Error_string could not describe error code {code})");
    }
    let len = usize::try_from(len).unwrap_or(0).min(buf.len());
    String::from_utf8_lossy(&buf[..len]).into_owned()
}

/// Converts a buffer length to MPI's `int` count.
fn count_of(len: usize) -> Result<c_int, MpiError> {
    c_int::try_from(len).map_err(|_| MpiError::TooLong { len, max: c_int::MAX as usize })
}

/// Initialises MPI for this process and returns the handle to `MPI_COMM_WORLD`.
///
/// Requests `MPI_THREAD_FUNNELED` (only this thread makes MPI calls) and checks that the library
/// provides it. Run without `mpirun`, the process becomes a single rank. Errors on
/// `MPI_COMM_WORLD` are set to return codes instead of aborting.
///
/// # Errors
///
/// [`MpiError::AlreadyInitialised`] on a second call in the same process,
/// [`MpiError::ThreadLevel`] if the library offers less than `MPI_THREAD_FUNNELED`, and
/// [`MpiError::Call`] if `MPI_Init_thread` itself fails.
///
/// # Examples
///
/// ```no_run
/// # fn main() -> Result<(), celer_exec::mpi::MpiError> {
/// let comm = celer_exec::mpi::init()?;
/// println!("rank {} of {}", comm.rank(), comm.size());
/// # Ok(())
/// # }
/// ```
pub fn init() -> Result<Communicator, MpiError> {
    if INIT_CALLED.swap(true, Ordering::SeqCst) {
        return Err(MpiError::AlreadyInitialised);
    }
    let mut initialised: c_int = 0;
    // SAFETY: MPI_Initialized may be called at any time, even before MPI_Init; the out-pointer is
    // valid for the duration of the call.
    check("MPI_Initialized", unsafe { ffi::MPI_Initialized(&mut initialised) })?;
    if initialised != 0 {
        return Err(MpiError::AlreadyInitialised);
    }

    // SAFETY: reading an immutable extern constant that rsmpi.c defines.
    let required = unsafe { ffi::RSMPI_THREAD_FUNNELED };
    let mut provided: c_int = 0;
    // SAFETY: MPI has not been initialised in this process (checked just above, and INIT_CALLED
    // makes this the only call); MPI-2 allows null argc/argv; `provided` is a valid out-pointer.
    check("MPI_Init_thread", unsafe {
        ffi::MPI_Init_thread(ptr::null_mut(), ptr::null_mut(), required, &mut provided)
    })?;
    // From here on `comm` finalises MPI when dropped, also on the error paths below.
    let mut comm = Communicator {
        // SAFETY: reading an immutable extern constant that rsmpi.c defines.
        handle: unsafe { ffi::RSMPI_COMM_WORLD },
        is_duplicate: false,
        rank: 0,
        size: 1,
        tag_ub: 32767,
        engine_claimed: Cell::new(false),
        finalizer: Rc::new(Finalizer),
    };
    // The thread levels are ordered: SINGLE < FUNNELED < SERIALIZED < MULTIPLE (MPI-3.1 §12.4.3).
    if provided < required {
        return Err(MpiError::ThreadLevel { required, provided });
    }
    // SAFETY: MPI is initialised; RSMPI_COMM_WORLD and RSMPI_ERRORS_RETURN are predefined handles.
    check("MPI_Comm_set_errhandler", unsafe {
        ffi::MPI_Comm_set_errhandler(ffi::RSMPI_COMM_WORLD, ffi::RSMPI_ERRORS_RETURN)
    })?;
    // SAFETY: MPI is initialised; the out-pointers are valid fields of `comm`.
    check("MPI_Comm_rank", unsafe { ffi::MPI_Comm_rank(ffi::RSMPI_COMM_WORLD, &mut comm.rank) })?;
    // SAFETY: as above.
    check("MPI_Comm_size", unsafe { ffi::MPI_Comm_size(ffi::RSMPI_COMM_WORLD, &mut comm.size) })?;
    comm.tag_ub = query_tag_ub()?;
    Ok(comm)
}

/// The largest tag `MPI_COMM_WORLD` accepts: the `MPI_TAG_UB` attribute (MPI-3.1 §8.1.2), at least
/// 32767 by the standard; OpenMPI reports `i32::MAX`.
fn query_tag_ub() -> Result<Tag, MpiError> {
    let mut value: *mut c_int = ptr::null_mut();
    let mut flag: c_int = 0;
    // SAFETY: called from `init` after MPI_Init_thread succeeded, on the initialising thread. For a
    // predefined attribute such as MPI_TAG_UB, MPI stores a pointer to an int in `attribute_val`,
    // so passing the address of a `*mut c_int` is the documented calling convention; `flag` is a
    // valid out-pointer.
    check("MPI_Comm_get_attr", unsafe {
        ffi::MPI_Comm_get_attr(
            ffi::RSMPI_COMM_WORLD,
            ffi::MPI_TAG_UB as c_int,
            (&mut value as *mut *mut c_int).cast::<c_void>(),
            &mut flag,
        )
    })?;
    if flag == 0 || value.is_null() {
        // Every MPI library must set MPI_TAG_UB; fall back to the guaranteed minimum all the same.
        return Ok(32767);
    }
    // SAFETY: `flag` is set, so MPI has stored in `value` a pointer to its own int, which stays
    // valid while MPI is initialised (MPI-3.1 §8.1.2).
    Ok(unsafe { *value })
}

/// This process's handle to `MPI_COMM_WORLD` (or a duplicate of it); MPI is finalised when the world communicator and
/// every duplicate are dropped.
///
/// Created by [`init`]. Not `Send`/`Sync`: with `MPI_THREAD_FUNNELED` only the initialising
/// thread may call MPI.
#[derive(Debug)]
pub struct Communicator {
    /// `MPI_COMM_WORLD`, or a duplicate of it ([`Communicator::duplicate_full`]).
    handle: ffi::MPI_Comm,
    /// Whether `handle` is a duplicate this value frees when dropped (else dropping finalises MPI).
    is_duplicate: bool,
    rank: Rank,
    size: i32,
    /// The `MPI_TAG_UB` attribute, queried once in [`init`].
    tag_ub: Tag,
    /// Whether a [`crate::transfer::TransferEngine`] owns the header tag of this communicator.
    engine_claimed: Cell<bool>,
    /// Shared by the world communicator and its duplicates: MPI is finalised when the last of them is dropped, so a
    /// duplicate that outlives the world one never calls MPI after `MPI_Finalize`. `Rc` also keeps the
    /// communicator on the thread that initialised MPI (not `Send`).
    finalizer: Rc<Finalizer>,
}

/// Runs `MPI_Finalize` when dropped; one per process, created by [`init`].
#[derive(Debug)]
struct Finalizer;

impl Drop for Finalizer {
    fn drop(&mut self) {
        // SAFETY: MPI was initialised by `init`, which creates at most one Finalizer per process, so MPI_Finalize runs
        // exactly once, on the initialising thread (`Rc` is !Send), after every communicator that shared it has freed
        // its handle (a Communicator's own `drop` runs before its fields are dropped).
        let rc = unsafe { ffi::MPI_Finalize() };
        debug_assert_eq!(rc, ffi::MPI_SUCCESS as c_int, "MPI_Finalize failed: {}", error_string(rc));
    }
}

impl Communicator {
    /// This process's rank in `MPI_COMM_WORLD`, in `0..size()`.
    pub fn rank(&self) -> Rank {
        self.rank
    }

    /// The number of ranks in `MPI_COMM_WORLD`.
    pub fn size(&self) -> i32 {
        self.size
    }

    /// The largest tag this communicator accepts (`MPI_TAG_UB`; at least 32767). Valid tags are
    /// `0..=tag_ub()`.
    pub fn tag_ub(&self) -> Tag {
        self.tag_ub
    }

    /// Marks the communicator as used by a transfer engine; `false` if one already uses it.
    pub(crate) fn claim_for_engine(&self) -> bool {
        !self.engine_claimed.replace(true)
    }

    /// Undoes [`claim_for_engine`](Self::claim_for_engine).
    pub(crate) fn release_from_engine(&self) {
        self.engine_claimed.set(false);
    }

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
    /// the bare request, for an array polled with [`Testsome`].
    ///
    /// # Errors
    ///
    /// [`MpiError::TooLong`] for more than `i32::MAX` bytes; [`MpiError::Call`] if MPI refuses
    /// (for example an invalid rank or tag).
    ///
    /// # Safety
    ///
    /// - `ptr` is valid for reads of `len` bytes, and those bytes are neither written nor freed
    ///   until the request has completed (reported by [`Testsome::test`]) or been freed with
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

    /// Starts receiving up to `len` bytes into `ptr` from rank `src` (or [`ANY_SOURCE`]) with tag
    /// `tag` (`MPI_Irecv`) and returns the bare request, for an array polled with [`Testsome`].
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
    ///   until the request has completed (reported by [`Testsome::test`]), also after
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

    /// A full duplicate of this communicator (`MPI_Comm_dup`, collective: every rank must call it, in the same
    /// order): the same ranks, its own matching space for messages and collectives. The communicator of a
    /// rank's second (third, ...) device (`CELER_DEVICES`). Dropping it frees the duplicate (`MPI_Comm_free`); MPI
    /// is finalised once the world communicator and every duplicate are dropped, in any order.
    ///
    /// # Errors
    ///
    /// [`MpiError::Call`] if MPI refuses.
    pub fn duplicate_full(&self) -> Result<Communicator, MpiError> {
        // SAFETY: reading an immutable extern constant that rsmpi.c defines.
        let mut handle = unsafe { ffi::RSMPI_COMM_NULL };
        // SAFETY: MPI is initialised (we hold the Communicator, on its thread); `self.handle` is live and
        // `handle` a valid out-pointer.
        check("MPI_Comm_dup", unsafe { ffi::MPI_Comm_dup(self.handle, &mut handle) })?;
        // SAFETY: `handle` was just created by MPI_Comm_dup.
        check("MPI_Comm_set_errhandler", unsafe { ffi::MPI_Comm_set_errhandler(handle, ffi::RSMPI_ERRORS_RETURN) })?;
        Ok(Communicator {
            handle,
            is_duplicate: true,
            rank: self.rank,
            size: self.size,
            tag_ub: self.tag_ub,
            engine_claimed: Cell::new(false),
            finalizer: Rc::clone(&self.finalizer),
        })
    }

    /// Ends every rank of the job at once with `code` (`MPI_Abort`), for unrecoverable errors.
    ///
    /// Use it instead of returning an error from `main` when other ranks may be waiting for this
    /// one: dropping the communicator runs `MPI_Finalize`, which with OpenMPI waits for all ranks.
    pub fn abort(&self, code: i32) -> ! {
        // SAFETY: MPI is initialised (we hold the Communicator, on its thread); RSMPI_COMM_WORLD is
        // a predefined handle. MPI_Abort does not return on success.
        unsafe { ffi::MPI_Abort(ffi::RSMPI_COMM_WORLD, code) };
        // MPI_Abort failed, which leaves nothing to clean up in an orderly way.
        std::process::exit(code)
    }
}

impl Drop for Communicator {
    fn drop(&mut self) {
        // Every Request borrows the Communicator, so none is pending here.
        if self.is_duplicate {
            // SAFETY: `handle` came from MPI_Comm_dup and is freed once, here; MPI is still initialised, since this
            // communicator's share of the `Finalizer` is dropped only after this function returns.
            let rc = unsafe { ffi::MPI_Comm_free(&mut self.handle) };
            debug_assert_eq!(rc, ffi::MPI_SUCCESS as c_int, "MPI_Comm_free failed: {}", error_string(rc));
        }
        // The world communicator's handle is predefined; MPI_Finalize runs when the last `finalizer` share drops.
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

/// A bare MPI request handle, for arrays polled together with [`Testsome`].
///
/// Unlike [`Request`] it borrows nothing and does nothing on drop: whoever started it (with
/// [`Communicator::isend_raw`] or [`Communicator::irecv_raw`]) keeps its buffer alive and must see
/// it complete, or [`free`](Self::free) it. A completed or freed request is the null request.
#[derive(Debug)]
#[repr(transparent)]
pub struct RawRequest(ffi::MPI_Request);

impl RawRequest {
    /// The null request (`MPI_REQUEST_NULL`): already complete; [`Testsome`] skips it.
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
    /// [`Testsome::test`], which for a cancelled receive happens without the sender's help
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

/// One request that [`Testsome::test`] found complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Completed {
    /// Its index in the array passed to [`Testsome::test`].
    pub index: usize,
    /// For a receive, the rank the message came from (meaningful for [`ANY_SOURCE`] receives).
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
