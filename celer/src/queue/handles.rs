//! What a program holds of its queue's resources: typed buffers, host objects, collective groups and fences, each
//! telling the runtime when it is dropped or waited for.

use std::fmt;
use std::marker::PhantomData;
use std::sync::{mpsc, Arc};

use celer_scheduler::graph::{BufferId, CollectiveGroupId, HostObjectId, TaskId};
use celer_scheduler::runtime::{Message, SharedObject};

use super::{Element, Error, Queue};

/// A typed buffer of `D` dimensions, owned by the program and distributed by celer.
pub struct Buffer<'q, T: Element, const D: usize> {
    pub(crate) id: BufferId,
    pub(crate) range: [usize; D],
    pub(crate) queue: &'q Queue,
    pub(super) _element: PhantomData<T>,
}

impl<T: Element, const D: usize> Buffer<'_, T, D> {
    /// Gives the buffer a name for errors and graph dumps: a `&str` or a `String` (`format!("x{step}")` for buffers
    /// made in a loop), as [`TaskBuilder::name`](crate::TaskBuilder::name) takes.
    pub fn named(self, name: impl AsRef<str>) -> Self {
        let name = name.as_ref();
        self.queue.rec_mut("Buffer::named").sim.set_buffer_name(self.id, name);
        if let Some(rt) = &self.queue.runtime {
            rt.send_bounded(Message::NameBuffer(self.id, name.into()));
        }
        self
    }

    /// The buffer's id.
    pub fn id(&self) -> BufferId {
        self.id
    }

    /// The buffer's extent.
    pub fn range(&self) -> [usize; D] {
        self.range
    }
}

impl<T: Element, const D: usize> Drop for Buffer<'_, T, D> {
    fn drop(&mut self) {
        let mut rec = self.queue.rec_mut("the drop of a Buffer");
        rec.sim.destroy_buffer(self.id);
        // Its creation checked that the size fits (an extent of zero gives no cells, in whatever place it comes).
        let size = crate::checks::cells(&self.range).unwrap_or(0) as u64 * std::mem::size_of::<T>() as u64;
        rec.buffer_dropped(self.id, size);
        drop(rec);
        if let Some(rt) = &self.queue.runtime {
            rt.send_bounded(Message::DestroyBuffer(self.id));
        }
    }
}

impl<T: Element, const D: usize> fmt::Debug for Buffer<'_, T, D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Buffer<{}, {D}>({}, {:?})", std::any::type_name::<T>(), self.id, self.range)
    }
}

/// Non-buffer state touched by host tasks through side effects: one instance per rank; host tasks that declare a
/// side effect on it run one at a time, in submission order, and reach it through
/// [`HostContext::with_object`](crate::HostContext::with_object).
pub struct HostObject<'q, T> {
    pub(crate) id: HostObjectId,
    pub(super) value: Arc<std::sync::Mutex<T>>,
    pub(crate) queue: &'q Queue,
}

impl<T: Send + 'static> HostObject<'_, T> {
    /// The object's id.
    pub fn id(&self) -> HostObjectId {
        self.id
    }

    pub(crate) fn shared(&self) -> SharedObject {
        Arc::clone(&self.value) as SharedObject
    }
}

impl<T> Drop for HostObject<'_, T> {
    fn drop(&mut self) {
        self.queue.rec_mut("the drop of a HostObject").sim.destroy_host_object(self.id);
        if let Some(rt) = &self.queue.runtime {
            rt.send_bounded(Message::DestroyHostObject(self.id));
        }
    }
}

impl<T> fmt::Debug for HostObject<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HostObject({})", self.id)
    }
}

/// A group of collective host tasks (see [`Queue::collective_group`]): its tasks run in submission order, one at a
/// time. Dropping it frees what celer tracks of it, so a program may create groups without end; a task built in
/// the group and submitted after the drop is refused.
pub struct CollectiveGroup<'q> {
    pub(crate) id: CollectiveGroupId,
    pub(crate) queue: &'q Queue,
}

impl CollectiveGroup<'_> {
    /// The group's id.
    pub fn id(&self) -> CollectiveGroupId {
        self.id
    }
}

impl Drop for CollectiveGroup<'_> {
    fn drop(&mut self) {
        self.queue.rec_mut("the drop of a CollectiveGroup").sim.destroy_collective_group(self.id);
        if let Some(rt) = &self.queue.runtime {
            rt.send_bounded(Message::DestroyCollectiveGroup(self.id));
        }
    }
}

impl fmt::Debug for CollectiveGroup<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CollectiveGroup({})", self.id)
    }
}

/// A fence: the buffer's contents as of the fence, once everything before it has run.
#[derive(Debug)]
pub struct Fence<T, const D: usize> {
    pub(super) task: TaskId,
    pub(super) range: [usize; D],
    /// The fenced buffer and box, to refuse a wait inside a host task that the fence waits for.
    pub(super) fenced: (BufferId, celer_scheduler::graph::ResourceIdent, celer_scheduler::graph::GridBox),
    /// The runtime's reply, and what watches the runtime thread meanwhile (none in a dry run).
    pub(super) data: Option<(mpsc::Receiver<Vec<u8>>, celer_scheduler::runtime::Watch)>,
    pub(super) _element: PhantomData<T>,
}

impl<T: Element, const D: usize> Fence<T, D> {
    /// The fence task.
    pub fn task(&self) -> TaskId {
        self.task
    }

    /// The extent of the data the fence returns.
    pub fn range(&self) -> [usize; D] {
        self.range
    }

    /// Blocks until the fence has run and returns the buffer's elements in row-major order.
    ///
    /// # Errors
    /// [`Error::DryRun`] in a dry run, [`Error::Stopped`] if the runtime stopped first.
    ///
    /// # Panics
    /// Inside the closure of a host task submitted before the fence whose chunk writes cells the fence reads: the
    /// fence waits for that task, so the wait would never return (the panic ends the run naming the task, the
    /// buffer and the cells).
    #[track_caller]
    pub fn wait(self) -> Result<Vec<T>, Error> {
        if let Some(deadlock) =
            celer_scheduler::runtime::fence_wait_deadlock(self.task, self.fenced.0, &self.fenced.1, &self.fenced.2)
        {
            panic!("{deadlock}");
        }
        let (rx, watch) = self.data.ok_or(Error::DryRun(self.task))?;
        let bytes = watch.recv(&rx).map_err(|_| Error::Stopped(self.task))?;
        let n = bytes.len() / std::mem::size_of::<T>();
        let mut out = vec![<T as bytemuck::Zeroable>::zeroed(); n];
        bytemuck::cast_slice_mut::<T, u8>(&mut out).copy_from_slice(&bytes[..n * std::mem::size_of::<T>()]);
        Ok(out)
    }
}

impl<T: Element> Fence<T, 0> {
    /// Blocks until the fence of a zero-dimensional buffer (one value) has run and returns its value.
    ///
    /// # Errors
    /// As [`wait`](Self::wait).
    ///
    /// # Panics
    /// As [`wait`](Self::wait).
    #[track_caller]
    pub fn value(self) -> Result<T, Error> {
        let task = self.task;
        self.wait()?.into_iter().next().ok_or(Error::Stopped(task))
    }
}
