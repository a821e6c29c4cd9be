//! The crate's errors: [`BuildError`] (what [`compile_dir`](crate::compile_dir) returns) and [`ReflectError`] (a
//! kernel file's bindings or entry points that do not fit celer).

use crate::MAX_BLOCK_INVOCATIONS;

/// Why kernels could not be compiled: every failing kernel's naga diagnostic (naming the file and pointing at the
/// line), or an I/O error. Print it with `Display` (or `Debug`, which is the same) from the build script.
#[derive(Clone, PartialEq, Eq)]
pub struct BuildError {
    pub(crate) message: String,
}

impl std::fmt::Display for BuildError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// The same text as `Display`, so that `build.rs`'s `main() -> Result<(), Box<dyn Error>>` prints it readably.
impl std::fmt::Debug for BuildError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

impl std::error::Error for BuildError {}

/// Why a kernel file's bindings or entry points do not fit celer ([`reflect`](crate::reflect)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReflectError {
    /// A binding outside `@group(0)`.
    OtherGroup {
        /// The variable.
        variable: String,
        /// Its group.
        group: u32,
        /// Its binding number.
        binding: u32,
    },
    /// A `@group(0)` binding that is not a `var<storage>`.
    NotStorage {
        /// The variable.
        variable: String,
        /// Its binding number.
        binding: u32,
    },
    /// A `@group(0)` binding that is not a runtime-sized array (`array<u32, 16>`, or a single `u32` or struct):
    /// it would see only the first cells of the buffer's allocation bound to it, and naga's bounds checks would
    /// clamp every index past them to its last element.
    NotRuntimeArray {
        /// The variable.
        variable: String,
        /// Its binding number.
        binding: u32,
        /// Its WGSL type.
        ty: String,
    },
    /// Binding numbers that do not run from 0 without gaps.
    Gap {
        /// The first variable after the gap.
        variable: String,
        /// Its binding number.
        binding: u32,
        /// The first number not declared.
        missing: u32,
    },
    /// An entry point that calls more than one of `celer_item_1d/2d/3d`.
    MixedDimensions {
        /// The entry point.
        entry_point: String,
        /// The dimensionalities it calls, ascending.
        dims: Vec<u32>,
    },
    /// An entry point that indexes a binding with the chunk's box (`dst[celer_index(pc.chunk, item)]`), which is
    /// not the box of the cells the binding holds.
    ChunkIndexed {
        /// The entry point.
        entry_point: String,
        /// The variable.
        variable: String,
        /// Its binding number.
        binding: u32,
    },
    /// An entry point that takes its items from `celer_item_Nd` given a binding's box (`celer_item_1d(pc.src,
    /// gid)`) instead of the chunk's: its items start where that binding's allocation does, not where the chunk does.
    ItemFromBox {
        /// The entry point.
        entry_point: String,
        /// The `celer_item_Nd` it calls.
        call: String,
        /// The parameter block member given (`src`).
        member: String,
    },
    /// An entry point of a task kernel that takes the `arrayLength` of a binding, which is the length of the
    /// buffer's allocation on the node, not the buffer's extent.
    ArrayLength {
        /// The entry point.
        entry_point: String,
        /// The variable.
        variable: String,
        /// Its binding number.
        binding: u32,
    },
    /// An entry point that calls a block reduction (`celer_reduce_*`) with a workgroup of more invocations than the
    /// prelude's cells hold.
    BlockTooLarge {
        /// The entry point.
        entry_point: String,
        /// Its `@workgroup_size`.
        workgroup_size: [u32; 3],
    },
}

impl std::fmt::Display for ReflectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReflectError::OtherGroup { variable, group, binding } => write!(
                f,
                "`{variable}` is bound at @group({group}) @binding({binding}); celer binds a kernel's buffers in \
                 @group(0) only (accessors first, then reduction buffers, in binding order)"
            ),
            ReflectError::NotStorage { variable, binding } => write!(
                f,
                "`{variable}` (@group(0) @binding({binding})) is not a var<storage>; celer binds every @group(0) \
                 binding to a buffer as a storage buffer"
            ),
            ReflectError::NotRuntimeArray { variable, binding, ty } => write!(
                f,
                "`{variable}` (@group(0) @binding({binding})) is declared as {ty}, not as a runtime-sized array; celer \
                 binds the cells of a buffer's allocation to every @group(0) binding, as many as the chunk's \
                 accesses span, so declare it array<T> without a length (array<u32>, array<vec4<f32>>, array<MyStruct>): \
                 a fixed-size array or a single value sees only the first cells, and naga's bounds checks clamp every \
                 index past them to the last one (wrong results, silently)"
            ),
            ReflectError::Gap { variable, binding, missing } => write!(
                f,
                "`{variable}` is @group(0) @binding({binding}), but binding {missing} is not declared; celer binds a \
                 task's buffers to bindings 0, 1, 2, ... in order, so the numbers must run from 0 without gaps"
            ),
            ReflectError::MixedDimensions { entry_point, dims } => {
                let called: Vec<String> = dims.iter().map(|d| format!("celer_item_{d}d")).collect();
                write!(
                    f,
                    "entry point `{entry_point}` calls {}; a kernel works in one dimensionality (the task's), so it \
                     may call only one of them",
                    called.join(" and ")
                )
            }
            ReflectError::ChunkIndexed { entry_point, variable, binding } => write!(
                f,
                "entry point `{entry_point}` indexes `{variable}` (@group(0) @binding({binding})) with the chunk's box, \
                 `{variable}[celer_index(pc.chunk, …)]`; the chunk is the part of the index space a dispatch runs, \
                 not the cells a binding holds (the buffer's allocation on the node, which also covers halos and \
                 what later commands touch), so the index lands on other cells wherever the two differ (on a second \
                 rank, every cell of its half): index each binding with its own box, \
                 `{variable}[celer_index(pc.{variable}, item)]`"
            ),
            ReflectError::ItemFromBox { entry_point, call, member } => write!(
                f,
                "entry point `{entry_point}` calls {call}(pc.{member}, …); a kernel's items come from the chunk's box, \
                 {call}(pc.chunk, gid): pc.{member} is the box of the cells binding `{member}` holds on the node, \
                 which starts elsewhere than the chunk wherever the two differ (a halo, cells later commands touch), \
                 so the items would be shifted there (on a second rank, every item of its chunk)"
            ),
            ReflectError::ArrayLength { entry_point, variable, binding } => write!(
                f,
                "entry point `{entry_point}` takes arrayLength(&{variable}) (@group(0) @binding({binding})); a binding \
                 holds the cells of its buffer that the node's commands touch, so its length is that allocation's, \
                 not the buffer's extent, and changes with the rank (on two ranks, the first rank's is about half the \
                 buffer): test a cell with celer_contains(pc.{variable}, cell), as celer's stencils do, or pass the \
                 extent as a scalar"
            ),
            ReflectError::BlockTooLarge { entry_point, workgroup_size: [x, y, z] } => write!(
                f,
                "entry point `{entry_point}` calls a block reduction (celer_reduce_*) with @workgroup_size({x}, {y}, \
                 {z}), {} invocations; the prelude's block reductions take workgroups of at most \
                 {MAX_BLOCK_INVOCATIONS}",
                x * y * z
            ),
        }
    }
}

impl std::error::Error for ReflectError {}
