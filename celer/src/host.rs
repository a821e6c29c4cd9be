//! What a host task's closure sees: [`HostContext<D>`], its chunk typed by the task's dimensionality `D`, and its
//! accessors' cells.

use std::sync::Arc;

use celer_scheduler::exec::shaders::ScalarType;
use celer_scheduler::runtime::HostContext as Inner;

use crate::geometry::GridBox;

/// What a host task's closure gets, once per chunk on the chunk's rank: the chunk of the task's `D`-dimensional
/// index space and, per accessor (in declaration order), the cells its range mapper maps the chunk to.
///
/// Each accessor's cells are the bounding box of what its range mapper maps the chunk to. Read, write and
/// read-write accessors hold the buffer's current contents; discard-write accessors start zeroed, and when the
/// closure returns the cells of the mapped region are written back (of a region of several boxes, only those
/// boxes: the cells between keep their data).
///
/// ```
/// # use celer::{access, task, Queue};
/// let q = Queue::dry_run();
/// let v = q.buffer::<u32, 2>([4, 8]);
/// q.submit(task::host_for([4, 8]).discard_write(&v, access::one_to_one()).run(|ctx| {
///     let chunk: celer::GridBox<2> = ctx.chunk();
///     let cells: celer::GridBox<2> = ctx.bounds(0);
///     let width = cells.range()[1];
///     for (k, cell) in ctx.data_mut::<u32>(0).iter_mut().enumerate() {
///         *cell = ((chunk.min()[0] + k / width) * 8 + k % width) as u32;
///     }
/// }))?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct HostContext<const D: usize> {
    inner: Inner,
    /// Per accessor, in declaration order: its buffer's element (scalar type and size in bytes).
    elements: Arc<[(ScalarType, u32)]>,
}

/// The scalar type `T` is, if it is one of Rust's number types.
fn scalar_of<T: 'static>() -> Option<ScalarType> {
    use std::any::TypeId;
    let t = TypeId::of::<T>();
    [
        (TypeId::of::<u8>(), ScalarType::U8),
        (TypeId::of::<i8>(), ScalarType::I8),
        (TypeId::of::<u16>(), ScalarType::U16),
        (TypeId::of::<i16>(), ScalarType::I16),
        (TypeId::of::<u32>(), ScalarType::U32),
        (TypeId::of::<i32>(), ScalarType::I32),
        (TypeId::of::<u64>(), ScalarType::U64),
        (TypeId::of::<i64>(), ScalarType::I64),
        (TypeId::of::<f32>(), ScalarType::F32),
        (TypeId::of::<f64>(), ScalarType::F64),
    ]
    .into_iter()
    .find_map(|(id, s)| (id == t).then_some(s))
}

impl<const D: usize> HostContext<D> {
    /// Runs `f` on a typed view of `inner` (the runtime's context), which it hands back afterwards, also when `f`
    /// panics (the runtime then reports the panic and does not read the context). `elements` holds each
    /// accessor's element.
    pub(crate) fn run(inner: &mut Inner, elements: &Arc<[(ScalarType, u32)]>, f: &dyn Fn(&mut Self)) {
        let mut ctx = Self { inner: std::mem::take(inner), elements: Arc::clone(elements) };
        f(&mut ctx);
        *inner = ctx.inner;
    }

    /// Panics at the caller where accessor `i`'s buffer holds one number type and `T` is another of the same size
    /// (`data::<i32>` of an `f32` buffer), which would reinterpret the bits silently. Elements of the program's own
    /// types, and `T`s that are not plain numbers, are left to the size check.
    #[track_caller]
    fn check_element<T: 'static>(&self, i: usize) {
        let (Some(&(held, size)), Some(asked)) = (self.elements.get(i), scalar_of::<T>()) else { return };
        if size == held.size() && size == asked.size() && held != asked {
            panic!(
                "accessor {i} of this host task is on a buffer of {held}, not {asked}: use data::<{held}>({i}) \
                 (viewing it as {asked} would reinterpret its bits)"
            );
        }
    }

    /// The part of the task's index space this invocation handles.
    pub fn chunk(&self) -> GridBox<D> {
        GridBox::from_untyped(self.inner.chunk())
    }

    /// This rank and the number of ranks (for a collective host task over several devices per rank: the process's
    /// rank and the number of processes).
    pub fn rank(&self) -> (usize, usize) {
        self.inner.rank()
    }

    /// The box of buffer cells accessor `i` holds; `BD` is the buffer's dimensionality (usually inferred, else
    /// `ctx.bounds::<2>(0)`).
    ///
    /// # Panics
    /// If the task has no accessor `i`, or its buffer is not `BD`-dimensional (the panic points at the caller).
    #[track_caller]
    pub fn bounds<const BD: usize>(&self, i: usize) -> GridBox<BD> {
        let dims = self.inner.buffer_dims(i);
        assert_eq!(dims, BD, "accessor {i} of this host task is on a {dims}D buffer, not a {BD}D one");
        GridBox::from_untyped(self.inner.bounds(i))
    }

    /// Accessor `i`'s cells as a slice of `T` (row-major over [`bounds`](Self::bounds)).
    ///
    /// `T` is plain old data ([`bytemuck::Pod`]): every bit pattern is a valid `T` (so not `bool` or references).
    ///
    /// # Panics
    /// If the task has no accessor `i`, if `T`'s size is not the buffer's element size, or if `T` is a number type
    /// other than the buffer's of the same size (`data::<i32>` of an `f32` buffer; a type of the program's own of
    /// the element's size reinterprets the cells). The panic points at the caller.
    #[track_caller]
    pub fn data<T: bytemuck::Pod>(&self, i: usize) -> &[T] {
        self.check_element::<T>(i);
        self.inner.data(i)
    }

    /// Accessor `i`'s cells, writable; written back to the buffer after the closure returns (write accessors only).
    ///
    /// # Panics
    /// As [`data`](Self::data), and if accessor `i` only reads.
    #[track_caller]
    pub fn data_mut<T: bytemuck::Pod>(&mut self, i: usize) -> &mut [T] {
        self.check_element::<T>(i);
        self.inner.data_mut(i)
    }

    /// Runs `f` on host object `i` (in the order the task declared its side effects).
    ///
    /// # Panics
    /// If the task has no side effect `i`, or the object is not a `T` (the panic points at the caller).
    #[track_caller]
    pub fn with_object<T: 'static, R>(&self, i: usize, f: impl FnOnce(&mut T) -> R) -> R {
        self.inner.with_object(i, f)
    }
}
