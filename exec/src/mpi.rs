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

use std::ffi::{c_int, c_void};
use std::marker::PhantomData;
use std::ptr;
use std::sync::atomic::{AtomicBool, Ordering};

use mpi_sys as ffi;

/// The rank of a process in `MPI_COMM_WORLD` (0-based), as MPI counts them.
pub type Rank = i32;

/// A message tag. MPI guarantees at least `0..=32767`.
pub type Tag = i32;

/// Set by the first call to [`init`]; MPI cannot be initialised twice in one process.
static INIT_CALLED: AtomicBool = AtomicBool::new(false);

/// An error from MPI or from misuse of this module.
#[derive(Debug, thiserror::Error)]
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
    let mut comm = Communicator { rank: 0, size: 1, _not_send: PhantomData };
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
    Ok(comm)
}

/// This process's handle to `MPI_COMM_WORLD`; MPI is finalised when it is dropped.
///
/// Created by [`init`]. Not `Send`/`Sync`: with `MPI_THREAD_FUNNELED` only the initialising
/// thread may call MPI.
#[derive(Debug)]
pub struct Communicator {
    rank: Rank,
    size: i32,
    /// Keeps the communicator on the thread that initialised MPI.
    _not_send: PhantomData<*const ()>,
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
                ffi::RSMPI_COMM_WORLD,
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
                ffi::RSMPI_COMM_WORLD,
                &mut request.raw,
            )
        })?;
        Ok(request)
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
        // SAFETY: MPI was initialised by `init`, which creates at most one Communicator per process,
        // so MPI_Finalize runs exactly once, on the initialising thread (the type is !Send).
        let rc = unsafe { ffi::MPI_Finalize() };
        debug_assert_eq!(rc, ffi::MPI_SUCCESS as c_int, "MPI_Finalize failed: {}", error_string(rc));
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
