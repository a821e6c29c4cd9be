//! Compiles WGSL compute kernels to SPIR-V at build time, for celer itself and for programs that use it.
//!
//! Call [`compile_dir`] from a `build.rs`: every `*.wgsl` file of the directory (except `prelude.wgsl`) is parsed
//! with celer's prelude appended (its `celer_*` helpers: chunk items, box containment, buffer-coordinate indexing,
//! block reductions; WGSL has no include), and its f64 part ([`PRELUDE_F64`]) too where the file calls it, validated, and written as SPIR-V to `$OUT_DIR`; a Rust file in `$OUT_DIR` declares one
//! constant per kernel file, named after it in capitals (`heat.wgsl` → `HEAT`). A program then writes
//! `celer::include_kernels!();` and uses `Kernel::wgsl(&HEAT, "main")`.
//!
//! ```no_run
//! // In build.rs of a program that keeps its kernels in `kernels/`:
//! celer_kernel_build::compile_dir("kernels").unwrap_or_else(|e| {
//!     eprintln!("{e}");
//!     std::process::exit(1)
//! });
//! ```
//!
//! Beside the SPIR-V, each constant carries what naga's IR says about the file ([`reflect`]): its `@group(0)`
//! storage bindings (WGSL name, element type and size, `read` or `read_write`) and, per entry point, the workgroup
//! size, the members of the push-constant struct it uses (names, types, offsets) and its dimensionality (which
//! prelude `celer_item_Nd` it calls, directly or through the functions it calls) and whether its results depend on
//! how the index space is cut into workgroups ([`workgroup_dependent`]); per file, whether its SPIR-V needs the
//! device feature `shaderFloat64` ([`spirv_needs_float64`]). `celer`'s `submit` compares tasks with it. Bindings outside `@group(0)`, bindings that are not `var<storage>` runtime-sized arrays (`array<T>`: not
//! `array<T, 16>`, not a single value), gaps in the binding numbers,
//! an entry point calling two of the `celer_item_Nd`, one indexing a binding with the chunk's box
//! ([`chunk_indexed`]), one taking its items from a binding's box (`celer_item_1d(pc.src, gid)`) and one of a task
//! kernel taking a binding's `arrayLength` ([`array_lengths`]) stop the build, naming the file and the variable or
//! entry point. An entry point of a task kernel that calls none of them and never reads the chunk's offset (it
//! indexes with the raw `global_invocation_id`, so its results change with the number of ranks) gets a cargo
//! warning naming the file and the entry point ([`without_chunk_offset`]), unless the file names it in a line
//! `// celer-kernel-build: raw ids: NAME` ([`raw_ids_allowed`]); so does one that takes its items from
//! `celer_item_Nd` but never skips those past the chunk's end ([`without_chunk_guard`]; `// celer-kernel-build:
//! unguarded: NAME`).
//!
//! A parameter block (`var<immediate>`) of more than 128 bytes ([`MAX_PUSH_CONSTANT_BYTES`], what every Vulkan
//! device takes as push constants; 5 bindings and more) becomes a read-only storage buffer at `@group(0)
//! @binding(n + 1)`, `n` the kernel's bindings ([`params_to_storage`]; `KernelSource::params_binding` tells the
//! GPU layer), in both variants, with the same members at the same offsets, so the kernel's WGSL needs no change. A
//! block of more than [`MAX_PARAMS_BYTES`] stops the build.
//!
//! `override` constants take their default values ([`resolve_overrides`]: celer sets no pipeline constants), so a
//! workgroup size given by one is known at build time; an override without a default stops the build.
//!
//! The SPIR-V clamps out-of-bounds buffer and array indices (naga's `Restrict` policy), so a kernel cannot touch
//! memory outside the buffers bound to it: what lets celer dispatch it safely. A kernel that fails to parse or
//! validate stops the build with naga's diagnostic, naming the file and pointing at the line.
//!
//! Every kernel is compiled twice: as written, and as a *checked* variant that celer runs with
//! `CELER_CHECK_BOUNDS=on`. In the checked variant (see [`checked_module`]) each call of the prelude's
//! `celer_index(box, item)` becomes `celer_index_checked(box, item, accessor)` (from this crate's `wgsl/checked.wgsl.in`),
//! which also records `item` when it lies outside the region the accessor declared for the chunk, in one more
//! storage buffer bound after the accessors. The accessor is derived from the IR at build time: the push-constant
//! member the box is loaded from (member `m` is accessor `m - 1`), followed through function parameters when every
//! call site agrees; where it cannot be traced, the checked function finds the accessor by the box's value.

#![warn(missing_docs)]

mod analysis;
mod checked;
mod chunk_warnings;
mod compile;
mod error;
mod ir;
mod params;
mod prelude;
mod reflection;
mod render;

pub use analysis::{
    array_lengths, atomic_ops, block_reductions, chunk_indexed, cross_indexed, global_indexed, item_indexed,
    item_offsets, loads_every_item, reads_old_contents, spirv_needs_float64, stores_every_item,
    stores_one_cell_every_item, uses_f64_prelude, workgroup_dependent,
};
pub use checked::{checked_module, UNTRACED_ACCESSOR};
pub use chunk_warnings::{raw_ids_allowed, unguarded_allowed, without_chunk_guard, without_chunk_offset};
pub use compile::resolve_overrides;
pub use error::{BuildError, ReflectError};
pub use params::{params_binding, params_to_storage, MAX_PARAMS_BYTES, MAX_PUSH_CONSTANT_BYTES};
pub use prelude::{prelude_for, CHECKED_PRELUDE, PRELUDE, PRELUDE_F64};
pub use reflection::{
    reflect, reflect_with_params, Binding, BlockReduction, EntryPoint, Member, Reflection, MAX_BLOCK_INVOCATIONS,
};

/// The file, in `$OUT_DIR`, that [`compile_dir`] writes and `celer::include_kernels!()` includes.
pub const GENERATED: &str = "celer_kernels.rs";

/// How the generated constants name celer's types.
#[derive(Debug, Clone, Copy)]
pub struct Options<'a> {
    /// The path of the module holding `KernelSource` and `EntryPointDesc`: `::celer::kernels` for programs,
    /// `crate::shaders` inside celer's GPU crate.
    pub types: &'a str,
    /// The file name to write in `$OUT_DIR`.
    pub generated: &'a str,
    /// Whether naga injects a bounding counter into every loop, so that a driver can never assume a loop ends
    /// (naga's own default). Off by default: on NVIDIA's Vulkan driver the counter more than halves the throughput
    /// of tight arithmetic loops (the METG kernel ran at 26.9 TFLOP/s with it on an H100, at the CUDA version's rate
    /// without it), and a kernel that never ends is caught at run time anyway, by stall detection, which names it.
    pub force_loop_bounding: bool,
}

impl Default for Options<'_> {
    fn default() -> Self {
        Self { types: "::celer::kernels", generated: GENERATED, force_loop_bounding: false }
    }
}

/// Compiles every kernel of `dir` (relative to the package's manifest directory) and writes the constants'
/// declarations to `$OUT_DIR/celer_kernels.rs`; tells cargo to rerun when a kernel changes.
///
/// # Errors
/// A [`BuildError`] with every failing kernel's naga diagnostic, or an I/O error.
pub fn compile_dir(dir: &str) -> Result<(), BuildError> {
    compile_dir_with(dir, Options::default())
}

/// [`compile_dir`] with other [`Options`].
///
/// # Errors
/// As [`compile_dir`].
pub fn compile_dir_with(dir: &str, options: Options<'_>) -> Result<(), BuildError> {
    compile::compile_dir_inner(dir, options).map_err(|message| BuildError { message })
}

#[cfg(test)]
mod tests;
