//! Panics in the program's closures that the runtime runs (range mappers, `reduce_with` combines, host tasks):
//! which task's code was running, and the panic's message, for the error that ends the job.

use std::any::Any;
use std::panic::AssertUnwindSafe;

use celer_graph::task::MapperPanic;
use celer_graph::TaskId;

use super::{RankLoop, RuntimeError};

/// The task whose code (range mappers, combine closures) the runtime thread runs at the moment, for the message
/// that names it if that code panics. Set before the program's code may run; cheap to set (an id, or a shared name).
#[derive(Debug, Clone, Default)]
pub(super) enum UserCode {
    /// Nothing of the program's, as far as the loop knows.
    #[default]
    None,
    /// Task `id` (its commands being generated or started, its reduction combined).
    Task(TaskId),
}

/// The text of a panic's payload (`panic!("...")` carries a `&str` or a `String`).
pub fn panic_text(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "(a panic without a message)".to_string()
    }
}

impl RankLoop<'_> {
    /// The error for a panic caught on the runtime thread: names this node, the task whose code ran (and the custom
    /// range mapper and buffer, where one of the program's mappers panicked), and the panic's message.
    pub(super) fn panicked(&self, payload: &(dyn Any + Send)) -> RuntimeError {
        let message = panic_text(payload);
        let task = |id: TaskId| self.tm.task(id).map_or_else(|| format!("task {id}"), |t| t.ident().to_string());
        // A custom range mapper's closure notes its name (and the buffer) as it panics.
        let whose = match (MapperPanic::take(), &self.user_code) {
            (Some(note), UserCode::Task(id)) => {
                format!("{} in {}", note.describe(|b| self.tm.buffer_ident(b)), task(*id))
            }
            (Some(note), UserCode::None) => note.describe(|b| self.tm.buffer_ident(b)),
            (None, UserCode::None) => "celer's runtime".to_string(),
            (None, UserCode::Task(id)) => format!("the handling of {} (its range mappers, or celer itself)", task(*id)),
        };
        RuntimeError::Panicked { node: self.node, whose, message }
    }
}

/// Runs `f` on `l`, turning a panic into the error [`RankLoop::panicked`] describes, so that the runtime thread
/// ends the job (every rank) instead of dying and leaving the application blocked on it.
pub(super) fn guarded<'c, T>(
    l: &mut RankLoop<'c>,
    f: impl FnOnce(&mut RankLoop<'c>) -> Result<T, RuntimeError>,
) -> Result<T, RuntimeError> {
    match std::panic::catch_unwind(AssertUnwindSafe(|| f(&mut *l))) {
        Ok(r) => r,
        Err(payload) => Err(l.panicked(&*payload)),
    }
}
