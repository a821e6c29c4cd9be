//! [`Kernel`], [`TaskBuilder`] and the [`task`] constructors: what a task accesses, reduces, runs and is called, collected
//! until [`Queue::submit`](crate::Queue::submit) checks and records it.

use std::fmt;
use std::sync::Arc;

use celer_scheduler::exec::shaders::{KernelSource, ScalarType};
use celer_scheduler::graph::{
    AccessMode, CollectiveGroupId, GridBox, ReductionId, ReductionOp, ReductionSpec, SideEffectOrder, SplitHint,
    TaskKind, TaskSpec, MAX_DIMS,
};
use celer_scheduler::runtime::{CustomReduction, ScalarKind, SharedObject};

use crate::access::Mapper;
use crate::binding::{BindMeta, BindMetas, ScalarArg, ScalarArgs};
use crate::host::HostContext;
use crate::intern::Accesses;
use crate::queue::{Buffer, CollectiveGroup, Element, Error, HostObject, Reducible, ScalarValue};

/// A compute kernel: a WGSL entry point compiled to SPIR-V at build time (see `celer::kernels`), or, in a dry run,
/// just a name.
#[derive(Clone, Debug)]
pub struct Kernel {
    pub(crate) name: Arc<str>,
    pub(crate) source: Option<(&'static KernelSource, &'static str)>,
}

impl Kernel {
    /// A kernel known only by `name` (enough for a dry run; `submit` on a queue that runs the program refuses it).
    pub fn named(name: impl Into<Arc<str>>) -> Self {
        Self { name: name.into(), source: None }
    }

    /// The entry point `entry` of a compiled kernel file.
    ///
    /// # Errors
    /// [`Error::NoEntryPoint`] when the file has no compute entry point of that name.
    pub fn wgsl(source: &'static KernelSource, entry: &'static str) -> Result<Self, Error> {
        let Some(ep) = source.entry_point(entry) else {
            let known: Vec<&str> = source.entry_points().iter().map(|e| e.name).collect();
            return Err(Error::NoEntryPoint { kernel: source.name(), entry, known: known.join(", ") });
        };
        // The reflection's own name: `submit`'s look-ups of the entry point then find it by its address.
        Ok(Self { name: source.name().into(), source: Some((source, ep.name)) })
    }

    /// The kernel's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// A task being described: kind, index space of `KD` dimensions, accesses. Submit it with
/// [`Queue::submit`](crate::Queue::submit).
#[must_use = "a task does nothing until it is passed to Queue::submit"]
pub struct TaskBuilder<const KD: usize> {
    /// Boxed: each builder call moves the builder, which is then a pointer rather than a kilobyte of fields.
    pub(crate) p: Box<TaskParts>,
}

/// What a [`TaskBuilder`] collects.
pub(crate) struct TaskParts {
    pub(crate) spec: TaskSpec,
    pub(crate) kernel: Option<(&'static KernelSource, &'static str)>,
    /// The accesses, in declaration order (they become the spec's at submit).
    pub(crate) accesses: Accesses,
    pub(crate) scalars: ScalarArgs,
    pub(crate) reduction_kinds: Vec<ScalarKind>,
    pub(crate) custom_reductions: Vec<Option<CustomReduction>>,
    /// Per accessor, in declaration order: its element type and the binding name it was given, if any.
    pub(crate) accessors: BindMetas,
    /// The same per reduction.
    pub(crate) reductions: BindMetas,
    /// The name of the last `.bind(name)`, for the next accessor or reduction.
    pub(crate) pending_name: Option<String>,
    pub(crate) host_fn: Option<Arc<BuiltHostFn>>,
    pub(crate) objects: Vec<SharedObject>,
    /// What `submit` checks beyond the task graph and the kernel's bindings.
    pub(crate) noted: crate::checks::Noted,
}

/// A host task's closure as the builder keeps it: besides the runtime's context it gets each accessor's element
/// (its scalar type and size, in declaration order), which `submit` knows once every accessor is declared.
pub(crate) type BuiltHostFn =
    dyn Fn(&mut celer_scheduler::runtime::HostContext, &Arc<[(ScalarType, u32)]>) + Send + Sync;

thread_local! {
    /// The parts of the last task this thread submitted, emptied, for the next builder (one box, reused rather than
    /// allocated per task: it is larger than what the allocator keeps per thread, so each new one took its slow path).
    static SPARE_PARTS: std::cell::Cell<Option<Box<TaskParts>>> = const { std::cell::Cell::new(None) };
}

impl TaskParts {
    /// Keeps these parts, which `submit` consumed, for this thread's next builder: every part but the spec is
    /// emptied (what it held dropped now), the spec holds nothing shared.
    pub(crate) fn recycle(mut self: Box<Self>) {
        self.accesses.clear();
        self.scalars.clear();
        self.reduction_kinds.clear();
        self.custom_reductions.clear();
        self.accessors.clear();
        self.reductions.clear();
        self.pending_name = None;
        self.host_fn = None;
        self.objects.clear();
        self.spec.reductions.clear();
        self.spec.side_effects.clear();
        (self.spec.name, self.spec.payload) = (None, None);
        SPARE_PARTS.set(Some(self));
    }
}

impl<const KD: usize> fmt::Debug for TaskBuilder<KD> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskBuilder")
            .field("spec", &self.p.spec)
            .field("accesses", &self.p.accesses)
            .field("scalars", &self.p.scalars)
            .field("host_task", &self.p.host_fn.is_some())
            .finish_non_exhaustive()
    }
}

/// Task builders.
pub mod task {
    use super::*;

    /// A kernel over `[0, range)`, split across ranks and devices; [`offset`](TaskBuilder::offset) moves the index
    /// space to `[offset, offset + range)`.
    #[inline(always)]
    pub fn parallel_for<const KD: usize>(kernel: &Kernel, range: [usize; KD]) -> TaskBuilder<KD> {
        let mut builder = TaskBuilder::of(TaskKind::DeviceCompute, KD, GridBox::from_extent(&range));
        builder.p.spec.name = Some(kernel.name.clone());
        builder.p.kernel = kernel.source;
        if kernel.source.is_none() {
            // Only a kernel without code needs its name noted (a running queue refuses it by that name).
            builder.p.noted = crate::checks::Noted::kernel(kernel.name.clone());
        }
        builder
    }

    /// A host task over `[0, range)`, split across ranks like a kernel; [`offset`](TaskBuilder::offset) moves the
    /// index space to `[offset, offset + range)`.
    #[inline(always)]
    pub fn host_for<const KD: usize>(range: [usize; KD]) -> TaskBuilder<KD> {
        TaskBuilder::of(TaskKind::HostCompute, KD, GridBox::from_extent(&range))
    }

    /// A host task run once, on rank 0.
    pub fn host_once() -> TaskBuilder<0> {
        TaskBuilder::of(TaskKind::Once, 0, GridBox::from_extent(&[]))
    }

    /// A host task run once on every rank (item `i` on rank `i`), in the default collective group.
    pub fn host_collective() -> TaskBuilder<1> {
        in_group(CollectiveGroupId(0))
    }

    /// A collective host task in `group` (submitted while the group lives: a task of a dropped group is refused).
    pub fn host_collective_in(group: &CollectiveGroup<'_>) -> TaskBuilder<1> {
        let mut builder = in_group(group.id);
        // Group ids are per queue: another queue's group would name one of this queue's.
        builder.p.noted.queue_of(group.queue.addr(), crate::checks::Resource::CollectiveGroup(group.id));
        builder
    }

    fn in_group(group: CollectiveGroupId) -> TaskBuilder<1> {
        // The rank count is filled in at submission by the task manager's configuration.
        TaskBuilder::of(TaskKind::Collective(group), 1, GridBox::d1(0, 1))
    }
}

impl<const KD: usize> TaskBuilder<KD> {
    /// A builder of a task of `kind` over `range` in `dims` dimensions with nothing bound yet (no kernel: a host
    /// task until `parallel_for` sets one), in the box of the last task this thread submitted where there is one
    /// (see [`TaskParts::recycle`]).
    #[inline(always)]
    fn of(kind: TaskKind, dims: usize, range: GridBox) -> Self {
        match SPARE_PARTS.take() {
            Some(mut p) => {
                // `recycle` left every part empty and the spec as `TaskSpec::new` makes one (its empty access list
                // kept): set only what differs from an empty builder.
                debug_assert!(p.spec.accesses.is_empty() && p.spec.name.is_none() && p.spec.payload.is_none());
                let s = &mut p.spec;
                (s.kind, s.dims, s.range, s.granularity, s.hint) = (kind, dims, range, [1; MAX_DIMS], SplitHint::OneD);
                p.kernel = None;
                p.noted = crate::checks::Noted::default();
                Self { p }
            }
            None => Self {
                p: Box::new(TaskParts {
                    spec: TaskSpec::new(kind, dims, range),
                    kernel: None,
                    accesses: Accesses::new(),
                    scalars: ScalarArgs::new(),
                    reduction_kinds: Vec::new(),
                    custom_reductions: Vec::new(),
                    accessors: BindMetas::new(),
                    reductions: BindMetas::new(),
                    pending_name: None,
                    host_fn: None,
                    objects: Vec::new(),
                    noted: crate::checks::Noted::default(),
                }),
            },
        }
    }

    /// Sets what a host task runs: `f` gets each accessor's cells (in declaration order) through the
    /// [`HostContext`], on one of the runtime's host worker threads (`CELER_HOST_THREADS`), once per chunk on the
    /// chunk's rank.
    pub fn run(mut self, f: impl Fn(&mut HostContext<KD>) + Send + Sync + 'static) -> Self {
        self.p.host_fn = Some(Arc::new(
            move |inner: &mut celer_scheduler::runtime::HostContext, elements: &Arc<[(ScalarType, u32)]>| {
                HostContext::run(inner, elements, &f)
            },
        ));
        self
    }

    /// Appends `u32` scalar arguments, positionally: they fill the kernel's push-constant members after its boxes
    /// in declaration order (a `vecN<u32>` member takes `N` of them), and each must be a `u32` member; `submit`
    /// checks the count and the types. Use [`scalar`](Self::scalar) to give values by name.
    #[inline]
    pub fn scalars(mut self, values: &[u32]) -> Self {
        self.p.scalars.extend(values.iter().map(|&v| ScalarArg::positional(v)));
        self
    }

    /// Appends an `f32` scalar argument, positionally (see [`scalars`](Self::scalars)).
    #[inline(always)]
    pub fn scalar_f32(mut self, value: f32) -> Self {
        self.p.scalars.push(ScalarArg::positional(value));
        self
    }

    /// Appends an `i32` scalar argument, positionally (see [`scalars`](Self::scalars)).
    #[inline(always)]
    pub fn scalar_i32(mut self, value: i32) -> Self {
        self.p.scalars.push(ScalarArg::positional(value));
        self
    }

    /// Appends one scalar or vector value, positionally (see [`scalars`](Self::scalars)): an `f32`, `i32` or `u32`
    /// fills one word, an array (`[f32; 2]`, `[u32; 4]`, ...) a whole `vecN` member of its type and component count,
    /// which it must start at ([`ScalarValue`] lists the types). Padding before a member is left zero.
    ///
    /// ```
    /// # use celer::{access, kernels, task, Kernel, Queue};
    /// let q = Queue::dry_run();
    /// let (a, b) = (q.buffer_from(&[0.0f32; 16], [16]), q.buffer::<f32, 1>([16]));
    /// // heat_1d.wgsl: push constants chunk, src, dst, then `alpha: f32`. For a kernel whose scalars are
    /// // `s: vec2<f32>, mask: vec4<u32>`: `.scalar_value([0.5f32, 0.25]).scalar_value([1u32, 2, 3, 4])`.
    /// let heat = Kernel::wgsl(&kernels::HEAT_1D, "main")?;
    /// q.submit(
    ///     task::parallel_for(&heat, [16])
    ///         .read(&a, access::neighborhood([1]))
    ///         .discard_write(&b, access::one_to_one())
    ///         .scalar_value(0.1f32),
    /// )?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[inline]
    pub fn scalar_value(mut self, value: impl ScalarValue) -> Self {
        self.p.scalars.push(ScalarArg::positional(value));
        self
    }

    /// Gives the kernel's push-constant member `name` the value `value`: an `f32`, `i32` or `u32` for a member of
    /// that type, or an array of two to four of them for a vector member (`[f32; 2]` for `vec2<f32>`, `[u32; 4]`
    /// for `vec4<u32>`; [`ScalarValue`] lists them). `submit` checks that the kernel has a member of that name,
    /// component type and count. A task names all its scalars or none. Matrices, arrays and structs cannot be
    /// given by name (give such a kernel's scalars by position).
    ///
    /// ```
    /// # use celer::{access, kernels, task, Kernel, Queue};
    /// let q = Queue::dry_run();
    /// let (a, b) = (q.buffer_from(&[0.0f32; 16], [16]), q.buffer::<f32, 1>([16]));
    /// let heat = Kernel::wgsl(&kernels::HEAT_1D, "main")?;
    /// q.submit(
    ///     task::parallel_for(&heat, [16])
    ///         .bind("src").read(&a, access::neighborhood([1]))
    ///         .bind("dst").discard_write(&b, access::one_to_one())
    ///         .scalar("alpha", 0.1f32),
    /// )?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[inline]
    pub fn scalar(mut self, name: &str, value: impl ScalarValue) -> Self {
        self.p.scalars.push(ScalarArg::named(name, value));
        self
    }

    /// Names the kernel binding (its WGSL variable) that the next accessor or reduction binds to, e.g.
    /// `.bind("src").read(&a, ...)`. When a task names all its bindings, celer binds them by name, whatever the order
    /// they were written in; a task names all its bindings or none.
    #[inline]
    pub fn bind(mut self, name: &str) -> Self {
        self.p.pending_name = Some(name.to_owned());
        self
    }

    #[inline(always)]
    fn access<T: Element, const BD: usize>(
        mut self,
        buffer: &Buffer<'_, T, BD>,
        mode: AccessMode,
        mapper: impl Mapper<KD, BD>,
    ) -> Self {
        self.p.noted.queue_of(buffer.queue.addr(), crate::checks::Resource::Buffer(buffer.id));
        self.p.noted.buffer(buffer.id, &buffer.range, std::mem::size_of::<T>());
        if let Some((offset, range)) = mapper.fixed_box() {
            let what = || format!("the box of a fixed range mapper ({} access)", mode.name());
            self.p.noted.subrange(what, buffer.id, &buffer.range, offset, range);
        }
        self.p.accesses.push(celer_scheduler::graph::BufferAccess {
            buffer: buffer.id,
            mode,
            mapper: mapper.into_range_mapper(),
        });
        self.p.accessors.push(BindMeta::of::<T>(self.p.pending_name.take(), BD));
        self
    }

    /// Reads the mapped part of `buffer`.
    #[inline(always)]
    pub fn read<T: Element, const BD: usize>(self, buffer: &Buffer<'_, T, BD>, m: impl Mapper<KD, BD>) -> Self {
        self.access(buffer, AccessMode::Read, m)
    }

    /// Writes the mapped part of `buffer`; cells the task does not store keep their old contents (which are moved
    /// to where the task runs: use [`discard_write`](Self::discard_write) where every mapped cell is stored).
    #[inline(always)]
    pub fn write<T: Element, const BD: usize>(self, buffer: &Buffer<'_, T, BD>, m: impl Mapper<KD, BD>) -> Self {
        self.access(buffer, AccessMode::Write, m)
    }

    /// Reads, then overwrites the mapped part of `buffer`.
    #[inline(always)]
    pub fn read_write<T: Element, const BD: usize>(self, buffer: &Buffer<'_, T, BD>, m: impl Mapper<KD, BD>) -> Self {
        self.access(buffer, AccessMode::ReadWrite, m)
    }

    /// Overwrites the mapped part of `buffer`, discarding its old contents.
    #[inline(always)]
    pub fn discard_write<T: Element, const BD: usize>(
        self,
        buffer: &Buffer<'_, T, BD>,
        m: impl Mapper<KD, BD>,
    ) -> Self {
        self.access(buffer, AccessMode::DiscardWrite, m)
    }

    /// Reduces every item's contribution into the one-element `buffer` with `op`, overwriting its old value
    /// (SYCL's and Celerity's `initialize_to_identity`; [`reduce_including`](Self::reduce_including) folds the old
    /// value in instead).
    ///
    /// The kernel binds the buffer after its accessors; it starts from `op`'s identity on every rank, the kernel
    /// combines its chunk's items into element 0 (e.g. with atomics), and celer combines the ranks' partial results
    /// in rank order, so every rank reads the same bits.
    pub fn reduce<T: Reducible, const BD: usize>(self, buffer: &Buffer<'_, T, BD>, op: ReductionOp) -> Self {
        self.builtin_reduction(buffer, op, false)
    }

    /// Reduces every item's contribution into the one-element `buffer` with `op`, folding in the value the buffer
    /// holds before the task: the result is `op(old value, contributions)`, as a SYCL or Celerity reduction without
    /// `initialize_to_identity` computes it (so a loop of these accumulates across steps).
    ///
    /// On rank 0 (its first device) the kernel starts from the buffer's current value instead of the identity;
    /// every other chunk starts from the identity, so the old value counts once, whatever the rank and device count.
    /// A buffer no task wrote and not created from data has no value to fold in: that is an uninitialized read
    /// (a warning naming the task and buffer by default, an error under
    /// [`ErrorPolicy::Error`](crate::ErrorPolicy::Error)), and the reduction then starts from the identity. A kernel
    /// that makes a deterministic block reduction (the prelude's `celer_reduce_*`) cannot fold the old value in:
    /// `submit` refuses it.
    ///
    /// ```no_run
    /// # use celer::{access, kernels, task, Kernel, Queue, ReductionOp};
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let q = Queue::new()?;
    /// let data = q.buffer_from(&[1, 2, 3, 4], [4]);
    /// let total = q.buffer_from(&[100], [1]).named("total");
    /// let sum = Kernel::wgsl(&kernels::REDUCE_I32, "reduce_sum")?;
    /// for _ in 0..2 {
    ///     q.submit(task::parallel_for(&sum, [4]).read(&data, access::one_to_one()).reduce_including(&total, ReductionOp::Sum))?;
    /// }
    /// assert_eq!(q.fence(&total)?.wait()?, vec![120]);
    /// # Ok(()) }
    /// ```
    pub fn reduce_including<T: Reducible, const BD: usize>(self, buffer: &Buffer<'_, T, BD>, op: ReductionOp) -> Self {
        self.builtin_reduction(buffer, op, true)
    }

    fn builtin_reduction<T: Reducible, const BD: usize>(
        mut self,
        buffer: &Buffer<'_, T, BD>,
        op: ReductionOp,
        include_current_value: bool,
    ) -> Self {
        self.p.spec.reductions.push(ReductionSpec { id: ReductionId(0), buffer: buffer.id, op, include_current_value });
        self.p.noted.queue_of(buffer.queue.addr(), crate::checks::Resource::Buffer(buffer.id));
        self.p.noted.buffer(buffer.id, &buffer.range, std::mem::size_of::<T>());
        self.p.reduction_kinds.push(T::KIND);
        self.p.custom_reductions.push(None);
        self.p.reductions.push(BindMeta::of::<T>(self.p.pending_name.take(), BD));
        self
    }

    /// Reduces every item's contribution into the one-element `buffer` with an operation of your own: the kernel
    /// combines its chunk's items into element 0 starting from `identity` (which the buffer holds when it starts),
    /// and celer folds the ranks' partial results with `combine`, in rank order, starting from `identity`, so
    /// every rank reads the same bits. `combine` must be commutative and associative, and agree with what the
    /// kernel does. The buffer's old value is overwritten ([`reduce_with_including`](Self::reduce_with_including)
    /// folds it in).
    ///
    /// `identity` must be the combine's identity: every chunk and rank starts from it. `submit` refuses the task
    /// unless `combine(identity, identity)` gives `identity`, and `combine(identity, x)` and `combine(x, identity)`
    /// give `x` for a few finite values `x` of `T` (0, 1, -1, 2, 7, `T::MIN`, `T::MAX`; for floats also -0.0, -0.5,
    /// 1e30, -1e30, compared by value). No infinities or NaN are probed, so `f32::MIN` passes for a maximum; an
    /// identity that only `T::MIN`, `T::MAX` or ±1e30 show to be none (a sentinel: -1 for the largest index found)
    /// is accepted with a warning, once a queue; a combine that panics on a probe is not refused here (the runtime
    /// reports a panic in it, naming the task).
    ///
    /// `combine` must be commutative: the partial results of the ranks and devices pair up as the split decides.
    /// `submit` refuses the task where `combine(x, y)` and `combine(y, x)` differ for two of the small probe values
    /// (a "keep the first non-zero"); the runtime calls the combine both ways for each pair of partial results it
    /// combines, and ends every rank where they differ (bytes compared; for floats two NaNs, and `0.0` and `-0.0`,
    /// count as the same), which costs one more call of the combine per combine. Associativity is not checked (a
    /// float sum is not associative).
    ///
    /// ```no_run
    /// # use celer::{access, kernels, task, Kernel, Queue};
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let q = Queue::new()?;
    /// let flags = q.buffer_from(&[1u32, 4, 16, 4], [4]);
    /// let any = q.buffer::<u32, 1>([1]);
    /// let or = Kernel::wgsl(&kernels::REDUCE_BITS, "reduce_or")?; // atomicOr of every item into element 0
    /// q.submit(task::parallel_for(&or, [4]).read(&flags, access::one_to_one()).reduce_with(&any, 0, |a, b| a | b))?;
    /// assert_eq!(q.fence(&any)?.wait()?, vec![21]);
    /// # Ok(()) }
    /// ```
    pub fn reduce_with<T: Reducible, const BD: usize>(
        self,
        buffer: &Buffer<'_, T, BD>,
        identity: T,
        combine: impl Fn(T, T) -> T + Send + Sync + 'static,
    ) -> Self {
        self.custom_reduction(buffer, identity, combine, false)
    }

    /// [`reduce_with`](Self::reduce_with), folding in the value the buffer holds before the task, as
    /// [`reduce_including`](Self::reduce_including) does: rank 0's kernel starts from the buffer's current value,
    /// every other chunk from `identity`.
    pub fn reduce_with_including<T: Reducible, const BD: usize>(
        self,
        buffer: &Buffer<'_, T, BD>,
        identity: T,
        combine: impl Fn(T, T) -> T + Send + Sync + 'static,
    ) -> Self {
        self.custom_reduction(buffer, identity, combine, true)
    }

    fn custom_reduction<T: Reducible, const BD: usize>(
        mut self,
        buffer: &Buffer<'_, T, BD>,
        identity: T,
        combine: impl Fn(T, T) -> T + Send + Sync + 'static,
        include_current_value: bool,
    ) -> Self {
        self.p.spec.reductions.push(ReductionSpec {
            id: ReductionId(0),
            buffer: buffer.id,
            op: ReductionOp::Custom,
            include_current_value,
        });
        self.p.noted.queue_of(buffer.queue.addr(), crate::checks::Resource::Buffer(buffer.id));
        self.p.noted.buffer(buffer.id, &buffer.range, std::mem::size_of::<T>());
        self.p.reduction_kinds.push(T::KIND);
        self.p.reductions.push(BindMeta::of::<T>(self.p.pending_name.take(), BD));
        // Every chunk and rank starts from the identity, so one that the combine does not keep (a sum from 5, a
        // maximum from 0) counts once per chunk: probed with a few finite values (see `identity.rs`).
        // A panic in the probes is printed once: the guard notes it and goes on unwinding without the hook.
        let panicked = std::cell::Cell::new(false);
        let guarded = |a: T, b: T| match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| combine(a, b))) {
            Ok(v) => v,
            Err(p) => {
                panicked.set(true);
                std::panic::resume_unwind(p)
            }
        };
        match crate::identity::probe(identity, &guarded) {
            Some(crate::identity::Probed::Identity(fault)) => self.p.noted.not_identity(buffer.id, fault),
            Some(crate::identity::Probed::Order(fault)) => self.p.noted.not_commutative(buffer.id, fault),
            None => {}
        }
        // What the combine gives for a few values: the divergence check compares it between ranks.
        let probed =
            if panicked.get() { "panics".to_string() } else { crate::identity::combine_table(identity, &combine) };
        let read = |b: &[u8]| -> T {
            assert_eq!(b.len(), std::mem::size_of::<T>(), "a reduction element has the buffer's element size");
            bytemuck::pod_read_unaligned(b)
        };
        let bytes = |v: T| -> Vec<u8> { bytemuck::bytes_of(&v).to_vec() };
        self.p.custom_reductions.push(Some(CustomReduction {
            identity: bytes(identity),
            combine: Arc::new(move |a: &[u8], b: &[u8]| bytes(combine(read(a), read(b)))),
            probed,
        }));
        self
    }

    /// Declares a side effect on a host object: such tasks run in submission order.
    pub fn side_effect<T: Send + 'static>(mut self, object: &HostObject<'_, T>) -> Self {
        self.p.noted.queue_of(object.queue.addr(), crate::checks::Resource::HostObject(object.id));
        self.p.spec.side_effects.push((object.id, SideEffectOrder::Sequential));
        self.p.objects.push(object.shared());
        self
    }

    /// Names the task for errors and graph dumps. Tasks of the same name share one copy of it, kept by the
    /// submitting thread, so naming a task does not allocate when the name was used before.
    #[inline(always)]
    pub fn name(mut self, name: impl AsRef<str>) -> Self {
        self.p.spec.name = Some(crate::intern::task_name(name.as_ref()));
        self
    }

    /// Splits the index space into a near-square 2D grid instead of slabs along dimension 0.
    #[inline(always)]
    pub fn split_2d(mut self) -> Self {
        self.p.spec.hint = SplitHint::TwoD;
        self
    }

    /// Starts the index space at `offset`: the task runs the items `[offset, offset + range)` of the range its
    /// constructor got, as Celerity's `parallel_for(range, offset, kernel)` and `host_task(range, offset, f)` do (a
    /// stencil over the interior of an `n`-cell buffer is `parallel_for(&k, [n - 2]).offset([1])`).
    ///
    /// Everything sees the shifted index space, in the buffers' coordinates: the split over ranks and devices (and
    /// [`split_2d`](Self::split_2d)) cuts `[offset, offset + range)`, a [`granularity`](Self::granularity) and the
    /// workgroups of a kernel that depends on them count from `offset`; range mappers get those chunks, so
    /// `one_to_one` maps item `i` to cell `i` and a mapped region outside the buffer is refused at submit as for any
    /// task; a kernel's `celer_item_Nd` and a host task's [`chunk`](HostContext::chunk) give absolute indices (like
    /// Celerity's `item::get_id()`, which includes the offset). An empty index space stays empty, whatever its
    /// offset.
    ///
    /// A builder method rather than a third constructor argument: `parallel_for` and `host_for` keep their one
    /// signature, and the offset composes with `split_2d` and `granularity` in any order, as the other split
    /// settings do. Calling it again replaces the offset.
    ///
    /// # Errors (at submit)
    /// [`TaskErrorKind::IndexSpaceOverflow`](crate::TaskErrorKind::IndexSpaceOverflow) where `offset + range`
    /// overflows `usize`, [`TaskErrorKind::KernelCoordinates`](crate::TaskErrorKind::KernelCoordinates) where a
    /// kernel's index space ends beyond `u32::MAX`, and
    /// [`TaskErrorKind::OffsetNotAllowed`](crate::TaskErrorKind::OffsetNotAllowed) for a collective host task (its
    /// item `r` is process `r`). A host-once task's index space has no dimension to offset.
    ///
    /// ```
    /// # use celer::{access, kernels, task, Kernel, Queue};
    /// let q = Queue::dry_run();
    /// let (a, b) = (q.buffer_from(&[0.0f32; 16], [16]), q.buffer_from(&[0.0f32; 16], [16]));
    /// let heat = Kernel::wgsl(&kernels::HEAT_1D, "main")?;
    /// // The interior, cells 1 to 14: the neighbourhood of cell 1 is cells 0 to 2, inside the buffer.
    /// q.submit(
    ///     task::parallel_for(&heat, [14])
    ///         .offset([1])
    ///         .read(&a, access::neighborhood([1]))
    ///         .write(&b, access::one_to_one())
    ///         .scalar_f32(0.1),
    /// )?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[inline]
    pub fn offset(mut self, offset: [usize; KD]) -> Self {
        // The range given, also where an earlier offset overflowed (and the box saturated).
        let range = self.p.noted.offset_range().unwrap_or_else(|| self.p.spec.range.range());
        self.p.noted.index_offset(&offset, &range[..KD]);
        self.p.spec.range = GridBox::from_subrange(&offset, &range[..KD]);
        self
    }

    /// Makes every chunk a multiple of `granularity` along each dimension (e.g. the work-group size).
    #[inline(always)]
    pub fn granularity(mut self, granularity: [usize; KD]) -> Self {
        self.p.spec.granularity[..KD].copy_from_slice(&granularity);
        self
    }
}
