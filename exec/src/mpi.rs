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
use std::ptr;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};

use mpi_sys as ffi;

mod p2p;
mod side;
mod testsome;

pub use p2p::{RawRequest, Request};
pub use side::{MinReduce, SideComm};
pub use testsome::{Completed, Testsome};

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
