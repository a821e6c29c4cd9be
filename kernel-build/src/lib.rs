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

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::{env, fs};

use naga::back::spv;
use naga::proc::{BoundsCheckPolicies, BoundsCheckPolicy};
use naga::valid::{Capabilities, ValidationFlags, Validator};
use naga::{AddressSpace, Expression, Function, Handle, Literal, Span, Statement};

mod analysis;
pub use analysis::{
    array_lengths, atomic_ops, block_reductions, chunk_indexed, cross_indexed, global_indexed, item_indexed,
    item_offsets, loads_every_item, reads_old_contents, spirv_needs_float64, stores_every_item,
    stores_one_cell_every_item, uses_f64_prelude, workgroup_dependent,
};

/// celer's prelude, appended to every kernel (`wgsl/prelude.wgsl` of this crate).
pub const PRELUDE: &str = include_str!("../wgsl/prelude.wgsl");

/// The prelude's f64 part (`wgsl/prelude_f64.wgsl`: the block reductions `celer_reduce_<op>_f64`), appended after
/// [`PRELUDE`] only to kernel files that call one of them ([`uses_f64_prelude`]): a module that declares an `f64`
/// needs the device feature `shaderFloat64`, which other kernels must not start requiring.
pub const PRELUDE_F64: &str = include_str!("../wgsl/prelude_f64.wgsl");

/// The prelude appended to kernel text `source`: [`PRELUDE`], and [`PRELUDE_F64`] where the kernel calls it.
pub fn prelude_for(source: &str) -> String {
    if uses_f64_prelude(source) {
        format!("{PRELUDE}\n{PRELUDE_F64}")
    } else {
        PRELUDE.to_string()
    }
}

/// The checked-mode prelude appended after [`PRELUDE`] for the checked variant of each kernel, with
/// `CELER_CHECK_BINDING` standing for the kernel's number of `@group(0)` bindings.
pub const CHECKED_PRELUDE: &str = include_str!("../wgsl/checked.wgsl.in");

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
    compile_dir_inner(dir, options).map_err(|message| BuildError { message })
}

/// Why kernels could not be compiled: every failing kernel's naga diagnostic (naming the file and pointing at the
/// line), or an I/O error. Print it with `Display` (or `Debug`, which is the same) from the build script.
#[derive(Clone, PartialEq, Eq)]
pub struct BuildError {
    message: String,
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

fn compile_dir_inner(dir: &str, options: Options<'_>) -> Result<(), String> {
    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").ok_or("CARGO_MANIFEST_DIR is not set")?);
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").ok_or("OUT_DIR is not set (call this from build.rs)")?);
    let shader_dir = manifest.join(dir);
    println!("cargo:rerun-if-changed={}", shader_dir.display());
    let mut paths: Vec<PathBuf> = fs::read_dir(&shader_dir)
        .map_err(|e| format!("cannot read {}: {e}", shader_dir.display()))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension().is_some_and(|ext| ext == "wgsl") && p.file_name().is_some_and(|n| n != "prelude.wgsl")
        })
        .collect();
    // Sorted, so the generated file is the same on every machine.
    paths.sort();
    let mut generated = String::from("// @generated by celer-kernel-build from WGSL kernels. Do not edit.\n");
    let mut failures = colliding_names(dir, &paths);
    for path in &paths {
        println!("cargo:rerun-if-changed={}", path.display());
        let shown = format!("{dir}/{}", path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default());
        match compile(path, &shown, &out_dir, &options) {
            Ok((item, warnings)) => {
                generated.push_str(&item);
                for w in warnings {
                    println!("cargo:warning={w}");
                }
            }
            Err(message) => failures.push(message),
        }
    }
    if !failures.is_empty() {
        failures.push(format!(
            "error: {} kernel(s) in {} failed to compile with naga (WGSL -> SPIR-V); see above",
            failures.len(),
            shader_dir.display()
        ));
        return Err(failures.join("\n"));
    }
    let target = out_dir.join(options.generated);
    fs::write(&target, generated).map_err(|e| format!("cannot write {}: {e}", target.display()))
}

/// Compiles one WGSL file, with the prelude appended, to `$OUT_DIR/<stem>.spv` and returns the Rust item that
/// describes it, and the warnings for it (one line each).
fn compile(path: &Path, shown: &str, out_dir: &Path, options: &Options<'_>) -> Result<(String, Vec<String>), String> {
    let types = options.types;
    let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let ident = constant_name(&stem);
    if ident.is_empty() || ident.starts_with(|c: char| c.is_ascii_digit()) {
        return Err(format!("error: {shown}: the file name must start with a letter to name a Rust constant"));
    }
    let own = fs::read_to_string(path).map_err(|e| format!("error: cannot read {shown}: {e}"))?;
    let own_lines = own.lines().count();
    let prelude = prelude_for(&own);
    let source = format!("{own}\n{prelude}");
    let note = format!(
        " (lines after {own_lines} are celer's prelude, celer-kernel-build's wgsl/prelude.wgsl{}, appended)",
        if prelude.len() > PRELUDE.len() { " and wgsl/prelude_f64.wgsl" } else { "" }
    );

    let mut module = naga::front::wgsl::parse_str(&source).map_err(|e| {
        let hint = in_prelude(e.location(&source).map(|l| l.line_number), own_lines);
        format!("error: {shown} does not parse as WGSL{note}:\n{}{hint}", e.emit_to_string_with_path(&source, shown))
    })?;
    // Before validation, which panics on a push-constant block over 256 bytes: a block over 128 bytes becomes a
    // read-only storage buffer, in the plain and the checked variant alike.
    let params = params_binding(&module).map_err(|e| format!("error: {shown}: {e}"))?;
    // Moved to one binding, two blocks an entry point both uses fail validation as a binding conflict, not as the
    // "more than 1 immediate data variable" naga reports for push constants: say so.
    let moved_blocks = match params {
        Some(binding) => params_to_storage(&mut module, binding),
        None => 0,
    };
    let moved_note = if moved_blocks > 1 {
        format!(
            "\nnote: celer-kernel-build moved the {moved_blocks} var<immediate> blocks of this file (one takes more than \
             {MAX_PUSH_CONSTANT_BYTES} bytes) to @group(0) @binding({}); an entry point may use only one var<immediate> \
             block, directly or through the functions it calls",
            params.unwrap_or_default()
        )
    } else {
        String::new()
    };
    // All capabilities: the device checks at pipeline creation whether it supports what a kernel uses (f64,
    // subgroups, ...), with an error that names the missing feature.
    let info = Validator::new(ValidationFlags::all(), Capabilities::all()).validate(&module).map_err(|e| {
        let hint = in_prelude(e.location(&source).map(|l| l.line_number), own_lines);
        let shared = if format!("{e:?}").contains("HOST_SHAREABLE") { HOST_SHAREABLE_NOTE } else { "" };
        format!(
            "error: {shown} fails naga validation{note}:\n{}{moved_note}{shared}{hint}",
            e.emit_to_string_with_path(&source, shown)
        )
    })?;
    // `override` constants take their defaults: celer sets no pipeline constants, and naga's SPIR-V writer takes
    // none (it refuses a module that still has them).
    let (resolved, resolved_info) = resolve_overrides(&module, &info).map_err(|e| format!("error: {shown}: {e}"))?;
    let words = write_spirv(&resolved, &resolved_info, options.force_loop_bounding)
        .map_err(|e| format!("error: {shown}: naga cannot write SPIR-V: {e}"))?;
    write_words(&out_dir.join(format!("{stem}.spv")), &words)?;
    let float64 = spirv_needs_float64(&words);
    let mut reflection = reflect_with_params(&module, &info, params).map_err(|e| format!("error: {shown}: {e}"))?;
    if !module.overrides.is_empty() {
        // The entry points as they run: a workgroup size or a `var<workgroup>` array given by an override is known
        // only with its value. The bindings stay those of the module as written: resolving drops what no entry
        // point uses, and an unused binding still takes an accessor.
        reflection.entry_points = reflect_with_params(&resolved, &resolved_info, params)
            .map_err(|e| format!("error: {shown}: {e}"))?
            .entry_points;
    }
    let group0_bindings = reflection.bindings.len() as u32;
    if reflection.entry_points.is_empty() {
        return Err(format!("error: {shown} has no @compute entry point"));
    }
    let bindings = render_bindings(&reflection, types);
    let allowed = raw_ids_allowed(&own);
    let unguarded = unguarded_allowed(&own);
    let raw: Vec<String> =
        without_chunk_offset(&module, params).into_iter().filter(|e| !allowed.contains(&e.as_str())).collect();
    for ep in &mut reflection.entry_points {
        ep.raw_ids = raw.contains(&ep.name);
        // Raw ids on purpose (the file says so): its indices in global coordinates are meant too.
        if allowed.contains(&ep.name.as_str()) {
            ep.global_indexed.clear();
        }
    }
    let entry_points = render_entry_points(&reflection, types);
    let warnings = raw
        .iter()
        .map(|e| chunk_offset_warning(shown, e))
        .chain(
            without_chunk_guard(&module, params)
                .into_iter()
                .filter(|e| !unguarded.contains(&e.as_str()))
                .map(|e| chunk_guard_warning(shown, &e)),
        )
        .collect();
    // The preludes first: naga wants a function defined before its callers, and the kernel's functions will call
    // celer_index_checked.
    let checked_prelude = CHECKED_PRELUDE.replace("CELER_CHECK_BINDING", &group0_bindings.to_string());
    // Global directives (`enable f16;`, `requires …;`, `diagnostic(…);`) must precede every declaration: they move
    // to the front, leaving empty lines so the kernel's own lines keep their count.
    let (directives, own_body) = split_directives(&own);
    let checked_source = format!("{directives}{prelude}\n{checked_prelude}\n{own_body}");
    let mut checked = naga::front::wgsl::parse_str(&checked_source).map_err(|e| {
        format!("error: {shown}: its checked variant does not parse: {}", e.emit_to_string(&checked_source))
    })?;
    // The checked rewrite finds accessors by the push-constant members boxes are loaded from: before the block
    // moves to storage.
    checked_module_inner(&mut checked)?;
    if let Some(binding) = params {
        params_to_storage(&mut checked, binding);
    }
    let checked_info = Validator::new(ValidationFlags::all(), Capabilities::all()).validate(&checked).map_err(|e| {
        format!("error: {shown}: its checked variant fails naga validation:\n{}", e.emit_to_string(&checked_source))
    })?;
    let (checked, checked_info) =
        resolve_overrides(&checked, &checked_info).map_err(|e| format!("error: {shown}: its checked variant: {e}"))?;
    let checked_words = write_spirv(&checked, &checked_info, options.force_loop_bounding)
        .map_err(|e| format!("error: {shown}: naga cannot write the checked variant's SPIR-V: {e}"))?;
    write_words(&out_dir.join(format!("{stem}.checked.spv")), &checked_words)?;
    // The constructor call goes to a file of its own, which the generated constant's macro (`kernel_source!`, in
    // celer's GPU crate) includes inside its `unsafe` block: the program's own code then has no `unsafe`, so a crate
    // under `#![forbid(unsafe_code)]` can include its kernels.
    let constructor = format!(
        "{types}::KernelSource::from_build(\n    \
         {stem:?},\n    \
         include_bytes!(concat!(env!(\"OUT_DIR\"), \"/{stem}.spv\")),\n    \
         include_bytes!(concat!(env!(\"OUT_DIR\"), \"/{stem}.checked.spv\")),\n    \
         &[{entry_points}],\n    \
         {group0_bindings},\n    \
         &[{bindings}],\n    \
         {float64},\n    \
         {params:?},\n\
         )\n"
    );
    let target = out_dir.join(format!("{stem}.kernel.rs"));
    fs::write(&target, constructor).map_err(|e| format!("error: cannot write {}: {e}", target.display()))?;
    let item = format!(
        "\n{types}::kernel_source!(\n    \
         /// SPIR-V of `{shown}`, compiled by naga at build time.\n    \
         {ident},\n    \
         {stem:?}\n\
         );\n"
    );
    Ok((item, warnings))
}

/// Added to naga's validation error where a buffer or the parameter block holds a type that is not host-shareable.
const HOST_SHAREABLE_NOTE: &str =
    "\nnote: a `var<storage>` binding and the `var<immediate>` parameter block hold only \
     host-shareable types, which `bool` (and a vector, array or struct of it) is not: store a flag as u32 (0u or 1u) \
     and compare it (`out[i] != 0u`)";

/// `module` (validated, with `info`) with every `override` constant replaced by its default value: celer sets no
/// pipeline constants, so an override is a constant the kernel's author may change in one place, and a workgroup
/// size given by one (`@workgroup_size(WG)`) is known at build time. Borrows `module` when it has none.
///
/// # Errors
/// An override without a default (`override WG: u32;`), naming it, or one whose value naga cannot use (a
/// workgroup size of 0).
pub fn resolve_overrides<'a>(
    module: &'a naga::Module,
    info: &'a naga::valid::ModuleInfo,
) -> Result<(std::borrow::Cow<'a, naga::Module>, std::borrow::Cow<'a, naga::valid::ModuleInfo>), String> {
    use naga::back::pipeline_constants::{process_overrides, PipelineConstantError};
    process_overrides(module, info, None, &Default::default()).map_err(|e| match e {
        PipelineConstantError::MissingValue(name) => format!(
            "`override {name}` has no default value, and celer sets no pipeline constants: give it one \
             (`override {name}: u32 = 64u;` for a u32), declare it `const`, or pass the value as a scalar of the \
             parameter block"
        ),
        e => format!("its `override` constants cannot take their default values: {e}"),
    })
}

/// Splits kernel text into its leading global directives (`enable`, `requires`, `diagnostic(…)` lines before the
/// first declaration, each ending in a newline) and the text with those lines left empty (so line numbers hold).
fn split_directives(own: &str) -> (String, String) {
    let mut directives = String::new();
    let mut body = String::new();
    let mut in_head = true;
    for line in own.lines() {
        let t = line.trim_start();
        let directive = ["enable ", "requires ", "diagnostic(", "diagnostic "].iter().any(|p| t.starts_with(p));
        if in_head && directive {
            directives.push_str(line);
            directives.push('\n');
            body.push('\n');
            continue;
        }
        if !(t.is_empty() || t.starts_with("//")) {
            in_head = false;
        }
        body.push_str(line);
        body.push('\n');
    }
    (directives, body)
}

/// What the build learns about one kernel file from naga's IR: the table the generated `KernelSource` carries and
/// `celer`'s `submit` checks tasks against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reflection {
    /// The `@group(0)` storage bindings, by binding number.
    pub bindings: Vec<Binding>,
    /// The `@compute` entry points, in source order.
    pub entry_points: Vec<EntryPoint>,
    /// Where the kernel reads its parameter block (`var<immediate>`) from when it is larger than
    /// [`MAX_PUSH_CONSTANT_BYTES`]: the `@group(0)` binding of the read-only storage buffer it became
    /// ([`params_to_storage`]); `None` for push constants.
    pub params_binding: Option<u32>,
}

/// One `@group(0)` storage binding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    /// The binding number.
    pub binding: u32,
    /// The WGSL variable name.
    pub name: String,
    /// The element type, as WGSL spells it (`f32`, `atomic<u32>`).
    pub element: String,
    /// The element's scalar type (`f32`, `i32`, ...) when it is a scalar or an atomic of one.
    pub scalar: Option<&'static str>,
    /// Bytes per element (the array's stride).
    pub element_size: u32,
    /// The one scalar type the element is made of: the scalar's, a vector's or matrix's components', or the type
    /// every field of a struct shares (through nested structs and arrays); `None` for a struct mixing types.
    pub component: Option<&'static str>,
    /// Whether it is declared `read_write` (else `read`).
    pub read_write: bool,
}

/// One member of a push-constant struct.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// The member's name.
    pub name: String,
    /// Its type, as WGSL spells it.
    pub ty: String,
    /// The scalar type of its components (scalars, vectors, matrices).
    pub scalar: Option<&'static str>,
    /// Byte offset.
    pub offset: u32,
    /// Bytes.
    pub size: u32,
}

/// One `@compute` entry point.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryPoint {
    /// The function's name.
    pub name: String,
    /// `@workgroup_size`.
    pub workgroup_size: [u32; 3],
    /// `n` when it calls `celer_item_{n}d` (directly or through the functions it calls), `None` when it calls none.
    pub dims: Option<u32>,
    /// Whether it calls one of the prelude's block reductions (`celer_reduce_*`), directly or through the functions
    /// it calls: its task's reductions are then deterministic, one partial result per workgroup.
    pub block_reduction: bool,
    /// Whether what it computes depends on how the index space is cut into workgroups ([`workgroup_dependent`]):
    /// its task's chunks must then start at whole workgroups.
    pub workgroup_dependent: bool,
    /// The members of the `var<immediate>` struct it uses (empty if none), in offset order.
    pub push_constants: Vec<Member>,
    /// The struct's size in bytes (0 if it uses none).
    pub push_constant_bytes: u32,
    /// The binding numbers it stores to or uses atomics on, directly or through the functions it calls, ascending.
    pub writes: Vec<u32>,
    /// The binding numbers whose first use, in program order, is a load or an atomic read-modify-write (directly
    /// or through the functions it calls; [`reads_old_contents`]), ascending: the kernel may read their
    /// old contents, so a task must not discard the buffers bound there.
    pub reads_old: Vec<u32>,
    /// The prelude's block reductions it calls (`celer_reduce_<op>_<type>`), directly or through the functions it
    /// calls ([`block_reductions`]): one per (call, binding its result is stored to), in a stable order.
    pub block_reductions: Vec<BlockReduction>,
    /// The atomic operations it applies to each binding, directly or through the functions it calls
    /// ([`atomic_ops`]): `(binding, "add")`, sorted.
    pub atomics: Vec<(u32, &'static str)>,
    /// Bytes of the `var<workgroup>` variables it uses, directly or through the functions it calls (the prelude's
    /// block reductions included): what the device's `maxComputeSharedMemorySize` must hold.
    pub workgroup_memory_bytes: u32,
    /// The bindings it indexes with its item as `celer_item_Nd` returned it (`celer_index(pc.<box>, item)`), directly
    /// or through the functions it calls ([`item_indexed`]), ascending: their buffers must have its dimensionality.
    pub item_indexed: Vec<u32>,
    /// The bindings it stores to at its own item on every item of its index space (`out[celer_index(pc.out,
    /// item)] = …` in its own body, behind no condition but the chunk guard on that item, after no `return` but
    /// that guard's; [`stores_every_item`]), ascending: `submit` refuses an index space that reaches outside the
    /// buffer bound there. A binding it cannot show so is left out.
    pub stores_every_item: Vec<u32>,
    /// The bindings it loads from at its own item on every item of its index space, as
    /// [`stores_every_item`](Self::stores_every_item) finds stores ([`loads_every_item`]), ascending: `submit`
    /// refuses an index space that reaches outside the buffer bound there. A binding it cannot show so is left out.
    pub loads_every_item: Vec<u32>,
    /// The bindings it stores to at one fixed cell (`out[0] = …`, `out[0] += v`) with a plain store on every item
    /// of its index space, behind no condition but the chunk guard ([`stores_one_cell_every_item`]), ascending:
    /// `submit` refuses a reduction into such a binding over more than one item, whose items would race.
    pub stores_one_cell_every_item: Vec<u32>,
    /// The bindings it indexes with another binding's box (`dst[celer_index(pc.src, item)]`), directly or through
    /// the functions it calls, the index also kept in a `var` or handed to a function ([`cross_indexed`]): `(indexed, box)` pairs, ascending. `submit` refuses a task that
    /// binds two different buffers there, whose allocations' boxes differ.
    pub cross_indexed: Vec<(u32, u32)>,
    /// The bindings it indexes with its item's coordinates or its invocation id without `celer_index`
    /// (`dst[item.x]`, also kept in a `var` or handed to a function), directly or through the functions it calls
    /// ([`global_indexed`]), ascending: `submit` refuses
    /// a buffer bound there through any mapper but `all()`, whose allocation on a node need not start at the origin.
    /// [`compile_dir`] leaves it empty for an entry point its file allows raw ids (`// celer-kernel-build: raw ids:
    /// NAME`).
    pub global_indexed: Vec<u32>,
    /// The constant offsets from its item at which it indexes each binding's box (`celer_index(pc.src, item -
    /// vec3<u32>(1u, 0u, 0u))`, `vec3<u32>(item.x + 1u, item.y, item.z)`, also through a `var` and its own
    /// functions; [`item_offsets`]): `(binding, offsets)`, ascending.
    /// `submit` refuses a task whose range mapper for the binding does not declare the cells at those offsets.
    pub item_offsets: Vec<(u32, Vec<[i64; 3]>)>,
    /// It works on the raw `global_invocation_id` ([`without_chunk_offset`]) and its file does not say so on
    /// purpose (`// celer-kernel-build: raw ids: NAME`, [`raw_ids_allowed`]): `submit` refuses it. Set by
    /// [`compile_dir`]; `false` as [`reflect_with_params`] gives it.
    pub raw_ids: bool,
}

/// One call of a prelude block reduction `celer_reduce_<op>_<type>` an entry point makes, and the binding its
/// result is stored to where the IR shows it ([`block_reductions`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BlockReduction {
    /// `sum`, `min` or `max`.
    pub op: &'static str,
    /// `f32`, `i32`, `u32` or `f64`.
    pub ty: &'static str,
    /// The `@group(0)` binding a store writes its result (or a value computed from it) to, or `None` where no store
    /// of a binding is seen to take it (the result passed to a function that stores it, for example).
    pub binding: Option<u32>,
}

/// Why a kernel file's bindings or entry points do not fit celer ([`reflect`]).
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

/// The most invocations a workgroup may have to call the prelude's block reductions (`celer_block_cells`' length in
/// `wgsl/prelude.wgsl`: naga zero-initialises workgroup memory at every workgroup's start, so the cells are kept to
/// what 256 invocations need).
pub const MAX_BLOCK_INVOCATIONS: u32 = 256;

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

/// The WGSL name of a scalar type (`f32`), or `None` for abstract types.
fn scalar_name(s: naga::Scalar) -> Option<&'static str> {
    use naga::ScalarKind as K;
    Some(match (s.kind, s.width) {
        (K::Bool, _) => "bool",
        (K::Sint, 4) => "i32",
        (K::Sint, 8) => "i64",
        (K::Uint, 4) => "u32",
        (K::Uint, 8) => "u64",
        (K::Float, 2) => "f16",
        (K::Float, 4) => "f32",
        (K::Float, 8) => "f64",
        _ => return None,
    })
}

/// The one scalar type `ty` is made of (see [`Binding::component`]), or `None` where its parts differ.
fn component_scalar(module: &naga::Module, ty: Handle<naga::Type>) -> Option<naga::Scalar> {
    use naga::TypeInner;
    match module.types[ty].inner {
        TypeInner::Scalar(s) | TypeInner::Atomic(s) => Some(s),
        TypeInner::Vector { scalar, .. } | TypeInner::Matrix { scalar, .. } => Some(scalar),
        TypeInner::Array { base, .. } => component_scalar(module, base),
        TypeInner::Struct { ref members, .. } => {
            let mut parts = members.iter().map(|m| component_scalar(module, m.ty));
            let first = parts.next()??;
            parts.all(|p| p == Some(first)).then_some(first)
        }
        _ => None,
    }
}

/// Reflects a validated module (kernel text with the prelude appended): its bindings and entry points.
///
/// # Errors
/// A [`ReflectError`] for a binding outside `@group(0)`, one that is not `var<storage>`, binding numbers with a gap,
/// or an entry point that calls more than one of `celer_item_1d/2d/3d`: each names the variable or entry point.
pub fn reflect(module: &naga::Module, info: &naga::valid::ModuleInfo) -> Result<Reflection, ReflectError> {
    reflect_with_params(module, info, None)
}

/// [`reflect`] for a module whose parameter block [`params_to_storage`] moved to the storage buffer at `@group(0)
/// @binding(params_binding)` (`None`: it did not): that variable is reflected as the push-constant block, not as a
/// binding.
///
/// # Errors
/// As [`reflect`].
pub fn reflect_with_params(
    module: &naga::Module,
    info: &naga::valid::ModuleInfo,
    params_binding: Option<u32>,
) -> Result<Reflection, ReflectError> {
    use naga::common::wgsl::TypeContext;
    use naga::TypeInner;
    let ctx = module.to_ctx();
    let is_params = |var: &naga::GlobalVariable| is_params_block(var, params_binding);
    let mut bindings = Vec::new();
    for (_, var) in module.global_variables.iter() {
        if is_params(var) {
            continue;
        }
        let Some(rb) = &var.binding else { continue };
        let name = var.name.clone().unwrap_or_else(|| "(unnamed)".into());
        if rb.group != 0 {
            return Err(ReflectError::OtherGroup { variable: name, group: rb.group, binding: rb.binding });
        }
        let AddressSpace::Storage { access } = var.space else {
            return Err(ReflectError::NotStorage { variable: name, binding: rb.binding });
        };
        let (element, element_size) = match module.types[var.ty].inner {
            TypeInner::Array { base, stride, size: naga::ArraySize::Dynamic } => (base, stride),
            _ => {
                let ty = module.types.type_to_string(var.ty);
                return Err(ReflectError::NotRuntimeArray { variable: name, binding: rb.binding, ty });
            }
        };
        let scalar = match module.types[element].inner {
            TypeInner::Scalar(s) | TypeInner::Atomic(s) => scalar_name(s),
            _ => None,
        };
        bindings.push(Binding {
            binding: rb.binding,
            name,
            element: module.types.type_to_string(element),
            scalar,
            element_size,
            component: component_scalar(module, element).and_then(scalar_name),
            read_write: access.contains(naga::StorageAccess::STORE),
        });
    }
    bindings.sort_by_key(|b| b.binding);
    if let Some((i, b)) = bindings.iter().enumerate().find(|(i, b)| b.binding != *i as u32) {
        return Err(ReflectError::Gap { variable: b.name.clone(), binding: b.binding, missing: i as u32 });
    }
    // Which functions each function calls, for the celer_item_Nd an entry point reaches.
    let item_fns: Vec<(Handle<Function>, u32)> = module
        .functions
        .iter()
        .filter_map(|(h, f)| match f.name.as_deref() {
            Some("celer_item_1d") => Some((h, 1)),
            Some("celer_item_2d") => Some((h, 2)),
            Some("celer_item_3d") => Some((h, 3)),
            _ => None,
        })
        .collect();
    let mut entry_points = Vec::new();
    for (i, ep) in module.entry_points.iter().enumerate() {
        if ep.stage != naga::ShaderStage::Compute {
            continue;
        }
        let mut dims = std::collections::BTreeSet::new();
        let mut block_reduction = false;
        for h in reachable_functions(module, &ep.function) {
            if let Some(&(_, d)) = item_fns.iter().find(|(f, _)| *f == h) {
                dims.insert(d);
            }
            block_reduction |= module.functions[h].name.as_deref().is_some_and(|n| n.starts_with("celer_reduce_"));
        }
        if dims.len() > 1 {
            return Err(ReflectError::MixedDimensions {
                entry_point: ep.name.clone(),
                dims: dims.into_iter().collect(),
            });
        }
        // celer_item_Nd given another box of the parameter block than the chunk's (member 0).
        if let Some((call, m)) = analysis::item_from_box(module, i, params_binding) {
            let member = params_members_name(module, params_binding, m).unwrap_or_else(|| format!("member {m}"));
            return Err(ReflectError::ItemFromBox { entry_point: ep.name.clone(), call, member });
        }
        let lengths = if task_file(module, params_binding) { array_lengths(module, i) } else { Vec::new() };
        if let Some(&binding) = lengths.first() {
            let variable = binding_variable(module, binding);
            return Err(ReflectError::ArrayLength { entry_point: ep.name.clone(), variable, binding });
        }
        if let Some(&binding) = chunk_indexed(module, i, params_binding).first() {
            let variable = binding_variable(module, binding);
            return Err(ReflectError::ChunkIndexed { entry_point: ep.name.clone(), variable, binding });
        }
        let [x, y, z] = ep.workgroup_size;
        if block_reduction && x * y * z > MAX_BLOCK_INVOCATIONS {
            return Err(ReflectError::BlockTooLarge {
                entry_point: ep.name.clone(),
                workgroup_size: ep.workgroup_size,
            });
        }
        let fi = info.get_entry_point(i);
        let workgroup_dependent = workgroup_dependent(module, info, i);
        let immediate = module.global_variables.iter().find(|(h, var)| is_params(var) && !fi[*h].is_empty());
        let (push_constants, push_constant_bytes) = match immediate {
            Some((_, var)) => match &module.types[var.ty].inner {
                TypeInner::Struct { members, span } => (
                    members
                        .iter()
                        .map(|m| {
                            let inner = &module.types[m.ty].inner;
                            let scalar = match *inner {
                                TypeInner::Scalar(s) | TypeInner::Atomic(s) => scalar_name(s),
                                TypeInner::Vector { scalar, .. } | TypeInner::Matrix { scalar, .. } => {
                                    scalar_name(scalar)
                                }
                                _ => None,
                            };
                            Member {
                                name: m.name.clone().unwrap_or_default(),
                                ty: module.types.type_to_string(m.ty),
                                scalar,
                                offset: m.offset,
                                size: inner.size(ctx),
                            }
                        })
                        .collect(),
                    *span,
                ),
                inner => {
                    let name = var.name.clone().unwrap_or_default();
                    let member = Member {
                        name,
                        ty: module.types.type_to_string(var.ty),
                        scalar: match *inner {
                            TypeInner::Scalar(s) => scalar_name(s),
                            _ => None,
                        },
                        offset: 0,
                        size: inner.size(ctx),
                    };
                    let size = member.size;
                    (vec![member], size)
                }
            },
            None => (Vec::new(), 0),
        };
        let used = |usage: naga::valid::GlobalUse| {
            let mut bindings: Vec<u32> = module
                .global_variables
                .iter()
                .filter(|(h, var)| fi[*h].contains(usage) && !is_params(var))
                .filter_map(|(_, var)| var.binding.as_ref().map(|b| b.binding))
                .collect();
            bindings.sort_unstable();
            bindings
        };
        let writes = used(naga::valid::GlobalUse::WRITE);
        let params = params_binding.unwrap_or(u32::MAX);
        let reads_old: Vec<u32> = reads_old_contents(module, i).into_iter().filter(|&b| b != params).collect();
        let block_reductions = block_reductions(module, i);
        let atomics = atomic_ops(module, i);
        let workgroup_memory_bytes = module
            .global_variables
            .iter()
            .filter(|(h, var)| var.space == AddressSpace::WorkGroup && !fi[*h].is_empty())
            .fold(0u32, |sum, (_, var)| sum.saturating_add(module.types[var.ty].inner.size(ctx)));
        entry_points.push(EntryPoint {
            name: ep.name.clone(),
            workgroup_size: ep.workgroup_size,
            dims: dims.first().copied(),
            block_reduction,
            workgroup_dependent,
            push_constants,
            push_constant_bytes,
            writes,
            reads_old,
            block_reductions,
            atomics,
            workgroup_memory_bytes,
            item_indexed: item_indexed(module, i, params_binding),
            stores_every_item: stores_every_item(module, i, params_binding),
            loads_every_item: loads_every_item(module, i, params_binding),
            stores_one_cell_every_item: stores_one_cell_every_item(module, i, params_binding),
            cross_indexed: cross_indexed(module, i, params_binding),
            global_indexed: global_indexed(module, i, params_binding),
            item_offsets: item_offsets(module, i, params_binding),
            raw_ids: false,
        });
    }
    Ok(Reflection { bindings, entry_points, params_binding })
}

/// `ScalarType::F32` for `f32`, under `types`.
fn render_scalar(scalar: Option<&str>, types: &str) -> String {
    match scalar {
        Some(s) => {
            let mut variant = s.to_uppercase();
            if s == "bool" {
                variant = "Bool".into();
            }
            format!("Some({types}::ScalarType::{variant})")
        }
        None => "None".into(),
    }
}

/// The `EntryPointDesc` items of a reflection, as Rust source.
fn render_entry_points(r: &Reflection, types: &str) -> String {
    let mut out = String::new();
    for ep in &r.entry_points {
        let [x, y, z] = ep.workgroup_size;
        let mut members = String::new();
        for m in &ep.push_constants {
            let _ = write!(
                members,
                "{types}::PushMemberDesc {{ name: {:?}, ty: {:?}, scalar: {}, offset: {}, size: {} }}, ",
                m.name,
                m.ty,
                render_scalar(m.scalar, types),
                m.offset,
                m.size
            );
        }
        let mut reductions = String::new();
        for r in &ep.block_reductions {
            let _ = write!(
                reductions,
                "{types}::BlockReductionDesc {{ op: {:?}, scalar: {}, binding: {:?} }}, ",
                r.op,
                render_scalar(Some(r.ty), types).trim_start_matches("Some(").trim_end_matches(')'),
                r.binding
            );
        }
        let _ = write!(
            out,
            "{types}::EntryPointDesc {{ name: {:?}, workgroup_size: [{x}, {y}, {z}], dims: {:?}, \
             block_reduction: {}, workgroup_dependent: {}, push_constants: &[{members}], push_constant_bytes: {}, \
             writes: &{:?}, reads_old: &{:?}, block_reductions: &[{reductions}], atomics: &{:?}, \
             workgroup_memory_bytes: {}, item_indexed: &{:?}, stores_every_item: &{:?}, loads_every_item: &{:?}, \
             stores_one_cell_every_item: &{:?}, cross_indexed: &{:?}, global_indexed: &{:?}, \
             item_offsets: &[{}], raw_ids: {} }}, ",
            ep.name,
            ep.dims,
            ep.block_reduction,
            ep.workgroup_dependent,
            ep.push_constant_bytes,
            ep.writes,
            ep.reads_old,
            ep.atomics,
            ep.workgroup_memory_bytes,
            ep.item_indexed,
            ep.stores_every_item,
            ep.loads_every_item,
            ep.stores_one_cell_every_item,
            ep.cross_indexed,
            ep.global_indexed,
            ep.item_offsets.iter().map(|(b, o)| format!("({b}, &{o:?}), ")).collect::<String>(),
            ep.raw_ids
        );
    }
    out
}

/// The `BindingDesc` items of a reflection, as Rust source.
fn render_bindings(r: &Reflection, types: &str) -> String {
    let mut out = String::new();
    for b in &r.bindings {
        let access = if b.read_write { "ReadWrite" } else { "Read" };
        let _ = write!(
            out,
            "{types}::BindingDesc {{ binding: {}, name: {:?}, element: {:?}, scalar: {}, element_size: {}, \
             component: {}, access: {types}::StorageAccess::{access} }}, ",
            b.binding,
            b.name,
            b.element,
            render_scalar(b.scalar, types),
            b.element_size,
            render_scalar(b.component, types),
        );
    }
    out
}

/// SPIR-V 1.3 of a validated module, with out-of-bounds indices clamped.
fn write_spirv(
    module: &naga::Module,
    info: &naga::valid::ModuleInfo,
    force_loop_bounding: bool,
) -> Result<Vec<u32>, spv::Error> {
    // Out-of-bounds indices are clamped (`Restrict`) instead of left undefined (naga's default, `Unchecked`): this
    // is what lets the GPU layer dispatch kernels through safe functions. It costs a `min` per access.
    let restrict = BoundsCheckPolicy::Restrict;
    let options = spv::Options {
        // SPIR-V 1.3 (Vulkan 1.1) so kernels may use subgroup operations.
        lang_version: (1, 3),
        bounds_check_policies: BoundsCheckPolicies {
            index: restrict,
            buffer: restrict,
            image_load: restrict,
            binding_array: restrict,
        },
        force_loop_bounding,
        ..spv::Options::default()
    };
    spv::write_vec(module, info, &options, None)
}

/// Parameter blocks (`var<immediate>`) of at most this many bytes stay push constants: Vulkan's guaranteed
/// `maxPushConstantsSize`, what lavapipe offers (NVIDIA: 256), so they fit every device. A larger block is read
/// from a storage buffer instead ([`params_to_storage`]).
pub const MAX_PUSH_CONSTANT_BYTES: u32 = 128;

/// The most bytes a kernel's parameter block may take when it is read from a storage buffer: 169 bindings with
/// their boxes, or many scalars; far beyond what a kernel needs, and small enough that a dispatch's words stay a
/// cheap host write. Must equal `celer_exec::gpu::MAX_PARAMS_BYTES`, the range the GPU layer binds.
pub const MAX_PARAMS_BYTES: u32 = 4096;

/// Bytes of the largest `var<immediate>` block of `module` (0 if it has none).
fn immediate_bytes(module: &naga::Module) -> Result<u32, String> {
    let mut layouter = naga::proc::Layouter::default();
    layouter.update(module.to_ctx()).map_err(|e| format!("cannot lay out its types: {e}"))?;
    Ok(module
        .global_variables
        .iter()
        .filter(|(_, v)| v.space == AddressSpace::Immediate)
        .map(|(_, v)| layouter[v.ty].size)
        .max()
        .unwrap_or(0))
}

/// Where a module (kernel text with the prelude appended, not validated yet) reads its parameter block from:
/// `None`, push constants, when every `var<immediate>` block takes at most [`MAX_PUSH_CONSTANT_BYTES`];
/// else `Some(p)`, the `@group(0)` binding of the storage buffer it moves to ([`params_to_storage`]): `p` is 1 + the
/// kernel's bindings, after the slot of the checked variant's bounds record (at the kernel's bindings), so both
/// variants read it at the same binding.
///
/// # Errors
/// A block larger than [`MAX_PARAMS_BYTES`], with its size and what fills it; checked before naga's validation,
/// which panics on a push-constant block over 256 bytes.
pub fn params_binding(module: &naga::Module) -> Result<Option<u32>, String> {
    let bytes = immediate_bytes(module)?;
    if bytes > MAX_PARAMS_BYTES {
        let name = module
            .global_variables
            .iter()
            .find(|(_, v)| v.space == AddressSpace::Immediate)
            .and_then(|(_, v)| v.name.clone())
            .unwrap_or_else(|| "(unnamed)".into());
        return Err(format!(
            "its parameter block (var<immediate> {name}) takes {bytes} bytes, more than the {MAX_PARAMS_BYTES} celer \
             takes: celer passes the chunk and a CelerBox per binding (24 bytes each) and the scalars, so at most 169 \
             bindings (or fewer bindings and more scalar words) fit; split the kernel in two"
        ));
    }
    if bytes <= MAX_PUSH_CONSTANT_BYTES {
        return Ok(None);
    }
    let bindings = module
        .global_variables
        .iter()
        .filter_map(|(_, v)| v.binding.as_ref())
        .filter(|b| b.group == 0)
        .map(|b| b.binding + 1)
        .max()
        .unwrap_or(0);
    Ok(Some(bindings + 1))
}

/// Turns every `var<immediate>` of `module` into a read-only storage buffer at `@group(0) @binding(binding)`
/// (`var<storage, read>`), whose struct keeps its members' offsets (storage and push constants share WGSL's layout
/// rules; a uniform buffer would realign structs to 16 bytes): the kernel reads the same words, which the GPU layer
/// writes to a buffer instead of pushing them. Returns how many variables it changed. Every expression that names
/// such a variable keeps working: its pointers are now to storage, which loads alike.
pub fn params_to_storage(module: &mut naga::Module, binding: u32) -> usize {
    let mut changed = 0;
    for (_, var) in module.global_variables.iter_mut() {
        if var.space == AddressSpace::Immediate {
            var.space = AddressSpace::Storage { access: naga::StorageAccess::LOAD };
            var.binding = Some(naga::ResourceBinding { group: 0, binding });
            changed += 1;
        }
    }
    changed
}

/// A hint for an error at `line` (1-based) of a kernel file of `own_lines` lines with celer's prelude appended: an
/// error inside the prelude is nearly always a name of the kernel's own (a binding, constant or function called
/// `i32`, `vec3` or `celer_index`) that shadows what the prelude uses; empty otherwise.
fn in_prelude(line: Option<u32>, own_lines: usize) -> String {
    match line {
        Some(l) if l as usize > own_lines => format!(
            "\nnote: line {l} lies in celer's prelude, not in your file (its {own_lines} lines come first): a name your \
             file declares at module scope (a binding, constant, struct or function) probably shadows a type or \
             function the prelude uses (`i32`, `u32`, `f32`, `vec3`, `CelerBox`, `celer_*`); rename it"
        ),
        _ => String::new(),
    }
}

/// Writes SPIR-V words as little-endian bytes.
fn write_words(path: &Path, words: &[u32]) -> Result<(), String> {
    let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
    fs::write(path, bytes).map_err(|e| format!("error: cannot write {}: {e}", path.display()))
}

/// The accessor argument that tells `celer_index_checked` to find the accessor by the box's value.
pub const UNTRACED_ACCESSOR: u32 = u32::MAX;

/// Where a function lives in a module.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum FnRef {
    Function(Handle<Function>),
    EntryPoint(usize),
}

fn function(module: &naga::Module, f: FnRef) -> &Function {
    match f {
        FnRef::Function(h) => &module.functions[h],
        FnRef::EntryPoint(i) => &module.entry_points[i].function,
    }
}

fn all_functions(module: &naga::Module) -> Vec<FnRef> {
    let mut all: Vec<FnRef> = module.functions.iter().map(|(h, _)| FnRef::Function(h)).collect();
    all.extend((0..module.entry_points.len()).map(FnRef::EntryPoint));
    all
}

/// The name of member `m` of `module`'s parameter block (`params_binding` as for [`reflect_with_params`]).
fn params_members_name(module: &naga::Module, params_binding: Option<u32>, m: u32) -> Option<String> {
    module.global_variables.iter().find_map(|(_, var)| {
        if !is_params_block(var, params_binding) {
            return None;
        }
        match &module.types[var.ty].inner {
            naga::TypeInner::Struct { members, .. } => members.get(m as usize).and_then(|x| x.name.clone()),
            _ => None,
        }
    })
}

/// The name of the `@group(0)` variable at `binding` (empty where it has none), for the build's errors.
fn binding_variable(module: &naga::Module, binding: u32) -> String {
    module
        .global_variables
        .iter()
        .find(|(_, v)| v.binding.as_ref().is_some_and(|b| b.group == 0 && b.binding == binding))
        .and_then(|(_, v)| v.name.clone())
        .unwrap_or_default()
}

/// Whether `module` holds task kernels: its parameter block is a struct whose first member is a `CelerBox` (the
/// chunk). `params_binding` is as for [`reflect_with_params`].
fn task_file(module: &naga::Module, params_binding: Option<u32>) -> bool {
    module.global_variables.iter().any(|(_, var)| {
        is_params_block(var, params_binding)
            && matches!(&module.types[var.ty].inner, naga::TypeInner::Struct { members, .. }
                if members.first().is_some_and(|m| module.types[m.ty].name.as_deref() == Some("CelerBox")))
    })
}

/// Calls `visit` on every statement of `block`, nested blocks included.
/// The `@compute` entry points of `module` (kernel text with the prelude appended) that never take the chunk's
/// offset into account: neither they nor the functions of the kernel's they call call one of the prelude's
/// `celer_item_1d/2d/3d` or read an offset of the chunk (`pc.chunk.offset0`, `offset1` or `offset2`, the first
/// member of the parameter block; or the `offset0..2` of a `CelerBox` parameter of the kernel's own functions). Such
/// a kernel works on the raw `global_invocation_id`, which starts at 0 on every chunk, so its results change with
/// the number of ranks and devices (each chunk starts at another offset), and `submit` cannot check its
/// dimensionality. `params_binding` is as for [`reflect_with_params`]. Entry points whose parameter block does not
/// start with a `CelerBox` (or that have none) are not task kernels (`submit` refuses them) and are left out.
///
/// [`compile_dir`] prints a cargo warning for each, unless the kernel file names it in a line
/// `// celer-kernel-build: raw ids: NAME, NAME` ([`raw_ids_allowed`]); it refuses none (a kernel may add the offset
/// by hand, or ignore the chunk on purpose).
///
/// # Examples
/// ```
/// let wgsl = format!(
///     "struct Params {{ chunk: CelerBox, out: CelerBox }}\n\
///      var<immediate> pc: Params;\n\
///      @group(0) @binding(0) var<storage, read_write> out: array<u32>;\n\
///      @compute @workgroup_size(64) fn raw(@builtin(global_invocation_id) gid: vec3<u32>) {{\n\
///          if (gid.x < pc.chunk.range0) {{ out[gid.x] = gid.x; }} }}\n\
///      @compute @workgroup_size(64) fn by_hand(@builtin(global_invocation_id) gid: vec3<u32>) {{\n\
///          let i = pc.chunk.offset0 + gid.x; out[i] = i; }}\n\
///      @compute @workgroup_size(64) fn item(@builtin(global_invocation_id) gid: vec3<u32>) {{\n\
///          let i = celer_item_1d(pc.chunk, gid).x; out[i] = i; }}\n{}",
///     celer_kernel_build::PRELUDE
/// );
/// let module = naga::front::wgsl::parse_str(&wgsl).unwrap();
/// assert_eq!(celer_kernel_build::without_chunk_offset(&module, None), ["raw"]);
/// ```
pub fn without_chunk_offset(module: &naga::Module, params_binding: Option<u32>) -> Vec<String> {
    let is_params = |var: &naga::GlobalVariable| is_params_block(var, params_binding);
    let is_box = |ty: Handle<naga::Type>| module.types[ty].name.as_deref() == Some("CelerBox");
    // A task kernel's parameter block: a struct whose first member is a CelerBox (the chunk).
    let task_params = |g: Handle<naga::GlobalVariable>| {
        let var = &module.global_variables[g];
        is_params(var)
            && matches!(&module.types[var.ty].inner, naga::TypeInner::Struct { members, .. }
                if members.first().is_some_and(|m| is_box(m.ty)))
    };
    // Whether `f` reads an offset of the chunk, or of a CelerBox parameter of its own.
    let reads_offset = |f: &Function| {
        f.expressions.iter().any(|(_, e)| match *e {
            Expression::AccessIndex { base, index: 0..=2 } => match f.expressions[base] {
                Expression::AccessIndex { base: pc, index: 0 } => {
                    matches!(f.expressions[pc], Expression::GlobalVariable(g) if task_params(g))
                }
                Expression::FunctionArgument(k) => is_box(f.arguments[k as usize].ty),
                _ => false,
            },
            _ => false,
        })
    };
    // Whether `f` refers to a task kernel's parameter block.
    let uses_params =
        |f: &Function| f.expressions.iter().any(|(_, e)| matches!(*e, Expression::GlobalVariable(g) if task_params(g)));
    // A file with a task kernel's parameter block holds task kernels: an entry point of it that takes the
    // global_invocation_id is one even where it reads no parameter (`out[gid.x] = …`, which went unwarned).
    let task_file = module.global_variables.iter().any(|(g, _)| task_params(g));
    let mut out = Vec::new();
    for ep in module.entry_points.iter().filter(|ep| ep.stage == naga::ShaderStage::Compute) {
        let mut task_kernel = uses_params(&ep.function) || (task_file && takes_global_id(module, &ep.function));
        let mut offset = reads_offset(&ep.function);
        for h in reachable_functions(module, &ep.function) {
            let f = &module.functions[h];
            task_kernel |= uses_params(f);
            match f.name.as_deref() {
                Some("celer_item_1d" | "celer_item_2d" | "celer_item_3d") => offset = true,
                // The prelude's other functions read boxes of all kinds (celer_index: an allocation's).
                Some(n) if n.starts_with("celer_") => {}
                _ => offset |= reads_offset(f),
            }
        }
        if task_kernel && !offset {
            out.push(ep.name.clone());
        }
    }
    out
}

/// Whether entry point function `f` takes `@builtin(global_invocation_id)`, as an argument or a member of one.
fn takes_global_id(module: &naga::Module, f: &Function) -> bool {
    let gid = |b: &Option<naga::Binding>| matches!(b, Some(naga::Binding::BuiltIn(naga::BuiltIn::GlobalInvocationId)));
    f.arguments.iter().any(|a| {
        gid(&a.binding)
            || matches!(&module.types[a.ty].inner, naga::TypeInner::Struct { members, .. }
                if members.iter().any(|m| gid(&m.binding)))
    })
}

/// The `@compute` entry points of `module` that take their items from the prelude's `celer_item_1d/2d/3d` (directly
/// or through the kernel's own functions) but never skip the items outside the chunk: neither they nor the
/// functions they call call `celer_contains` or read the chunk's extent (`pc.chunk.range0..2`; or the `range0..2`
/// of a `CelerBox` parameter of the kernel's own functions). Workgroups round the chunk up, so the last ones run
/// items past its end: such a kernel writes cells of other chunks (another rank's or device's, or outside the
/// buffer), and its results change with the split. `params_binding` is as for [`reflect_with_params`].
///
/// [`compile_dir`] prints a cargo warning for each, unless the kernel file names it in a line
/// `// celer-kernel-build: unguarded: NAME, NAME` ([`unguarded_allowed`]): a kernel may guard by hand (against a
/// scalar it is given), or know that its index spaces are multiples of its workgroup size.
///
/// # Examples
/// ```
/// let wgsl = format!(
///     "struct Params {{ chunk: CelerBox, out: CelerBox }}\n\
///      var<immediate> pc: Params;\n\
///      @group(0) @binding(0) var<storage, read_write> out: array<u32>;\n\
///      @compute @workgroup_size(64) fn open(@builtin(global_invocation_id) gid: vec3<u32>) {{\n\
///          let i = celer_item_1d(pc.chunk, gid); out[celer_index(pc.out, i)] = i.x; }}\n\
///      @compute @workgroup_size(64) fn guarded(@builtin(global_invocation_id) gid: vec3<u32>) {{\n\
///          let i = celer_item_1d(pc.chunk, gid);\n\
///          if (celer_contains(pc.chunk, i)) {{ out[celer_index(pc.out, i)] = i.x; }} }}\n{}",
///     celer_kernel_build::PRELUDE
/// );
/// let module = naga::front::wgsl::parse_str(&wgsl).unwrap();
/// assert_eq!(celer_kernel_build::without_chunk_guard(&module, None), ["open"]);
/// ```
pub fn without_chunk_guard(module: &naga::Module, params_binding: Option<u32>) -> Vec<String> {
    let is_box = |ty: Handle<naga::Type>| module.types[ty].name.as_deref() == Some("CelerBox");
    // The chunk: member 0 of the parameter block.
    let is_chunk = |f: &Function, e: Handle<Expression>| match f.expressions[e] {
        Expression::AccessIndex { base, index: 0 } => matches!(f.expressions[base],
            Expression::GlobalVariable(g) if is_params_block(&module.global_variables[g], params_binding)),
        _ => false,
    };
    // Whether `f` reads an extent of the chunk, or of a CelerBox parameter of its own.
    let reads_range = |f: &Function| {
        f.expressions.iter().any(|(_, e)| match *e {
            Expression::AccessIndex { base, index: 3..=5 } => {
                is_chunk(f, base)
                    || matches!(f.expressions[base], Expression::FunctionArgument(k) if is_box(f.arguments[k as usize].ty))
            }
            _ => false,
        })
    };
    let mut out = Vec::new();
    for ep in module.entry_points.iter().filter(|ep| ep.stage == naga::ShaderStage::Compute) {
        let (mut items, mut guarded) = (false, reads_range(&ep.function));
        for h in reachable_functions(module, &ep.function) {
            let f = &module.functions[h];
            match f.name.as_deref() {
                Some("celer_item_1d" | "celer_item_2d" | "celer_item_3d") => items = true,
                Some("celer_contains") => guarded = true,
                // The prelude's other functions read boxes of all kinds (celer_index: an allocation's extent).
                Some(n) if n.starts_with("celer_") => {}
                _ => guarded |= reads_range(f),
            }
        }
        if items && !guarded {
            out.push(ep.name.clone());
        }
    }
    out
}

/// The entry points a kernel file's own text (`own`) says skip the items outside the chunk by other means, in lines
/// `// celer-kernel-build: unguarded: NAME, NAME`: [`compile_dir`] does not warn about them
/// ([`without_chunk_guard`]).
///
/// # Examples
/// ```
/// let own = "// celer-kernel-build: unguarded: fill\n@compute @workgroup_size(64) fn fill() {}";
/// assert_eq!(celer_kernel_build::unguarded_allowed(own), ["fill"]);
/// ```
pub fn unguarded_allowed(own: &str) -> Vec<&str> {
    directive(own, "// celer-kernel-build: unguarded:")
}

/// The names listed after `prefix` in lines of `own` (separated by commas or spaces).
fn directive<'a>(own: &'a str, prefix: &str) -> Vec<&'a str> {
    own.lines()
        .filter_map(|l| l.trim().strip_prefix(prefix))
        .flat_map(|rest| rest.split([',', ' ']).filter(|n| !n.is_empty()))
        .collect()
}

/// The warning for entry point `entry` of the kernel file `shown` that [`without_chunk_guard`] finds, one line (a
/// cargo warning).
fn chunk_guard_warning(shown: &str, entry: &str) -> String {
    format!(
        "{shown}: entry point `{entry}` takes its items from celer_item_Nd but never skips those outside the chunk \
         (no celer_contains(pc.chunk, item), no read of pc.chunk.range0..2): workgroups round the chunk up, so its \
         last ones write cells of other chunks (another rank's or device's) and its results change with the split \
         (CELER_CHECK_BOUNDS=on reports it); add `if (!celer_contains(pc.chunk, item)) {{ return; }}` (or, if it \
         guards otherwise, say so in a line `// celer-kernel-build: unguarded: {entry}`)"
    )
}

/// The entry points a kernel file's own text (`own`, without the prelude) says use the raw `global_invocation_id`
/// on purpose, in lines `// celer-kernel-build: raw ids: NAME, NAME` (names separated by commas or spaces):
/// [`compile_dir`] does not warn about them ([`without_chunk_offset`]).
///
/// # Examples
/// ```
/// let own = "// celer-kernel-build: raw ids: pack, unpack\n@compute @workgroup_size(64) fn pack() {}";
/// assert_eq!(celer_kernel_build::raw_ids_allowed(own), ["pack", "unpack"]);
/// ```
pub fn raw_ids_allowed(own: &str) -> Vec<&str> {
    directive(own, "// celer-kernel-build: raw ids:")
}

/// The warning for entry point `entry` of the kernel file `shown` that [`without_chunk_offset`] finds, one line (a
/// cargo warning).
fn chunk_offset_warning(shown: &str, entry: &str) -> String {
    format!(
        "{shown}: entry point `{entry}` calls none of the prelude's celer_item_1d/2d/3d and never reads the chunk's \
         offset (pc.chunk.offset0..2): its items are the raw global_invocation_id, which starts at 0 on every chunk, \
         so its results change with the number of ranks and devices (each chunk starts at another offset), and \
         submit cannot check its dimensionality; call celer_item_Nd(pc.chunk, gid), or add the chunk's offset \
         yourself (or, if it ignores the chunk on purpose, say so in a line `// celer-kernel-build: raw ids: \
         {entry}`)"
    )
}

/// Whether `var` is a kernel's parameter block: its `var<immediate>`, or the storage buffer at `@group(0)
/// @binding(params_binding)` that the build moved a block over 128 bytes to.
fn is_params_block(var: &naga::GlobalVariable, params_binding: Option<u32>) -> bool {
    var.space == AddressSpace::Immediate
        || params_binding.is_some_and(|p| var.binding.as_ref().is_some_and(|b| b.group == 0 && b.binding == p))
}

/// Every function of `module` that `f` calls, directly or through others, each once.
fn reachable_functions(module: &naga::Module, f: &Function) -> Vec<naga::Handle<Function>> {
    let mut seen = std::collections::HashSet::new();
    let mut stack = callees(f);
    let mut out = Vec::new();
    while let Some(h) = stack.pop() {
        if seen.insert(h) {
            out.push(h);
            stack.extend(callees(&module.functions[h]));
        }
    }
    out
}

/// The functions `f` calls directly, in statement order (repeats included).
fn callees(f: &Function) -> Vec<naga::Handle<Function>> {
    let mut out = Vec::new();
    each_statement(&f.body, &mut |s| {
        if let Statement::Call { function, .. } = s {
            out.push(*function);
        }
    });
    out
}

fn each_statement<'a>(block: &'a naga::Block, visit: &mut impl FnMut(&'a Statement)) {
    for s in block.iter() {
        visit(s);
        match s {
            Statement::Block(b) => each_statement(b, visit),
            Statement::If { accept, reject, .. } => {
                each_statement(accept, visit);
                each_statement(reject, visit);
            }
            Statement::Switch { cases, .. } => cases.iter().for_each(|c| each_statement(&c.body, visit)),
            Statement::Loop { body, continuing, .. } => {
                each_statement(body, visit);
                each_statement(continuing, visit);
            }
            _ => {}
        }
    }
}

/// [`each_statement`] with mutable statements.
fn each_statement_mut(block: &mut naga::Block, visit: &mut impl FnMut(&mut Statement)) {
    for s in block.iter_mut() {
        visit(s);
        match s {
            Statement::Block(b) => each_statement_mut(b, visit),
            Statement::If { accept, reject, .. } => {
                each_statement_mut(accept, visit);
                each_statement_mut(reject, visit);
            }
            Statement::Switch { cases, .. } => cases.iter_mut().for_each(|c| each_statement_mut(&mut c.body, visit)),
            Statement::Loop { body, continuing, .. } => {
                each_statement_mut(body, visit);
                each_statement_mut(continuing, visit);
            }
            _ => {}
        }
    }
}

/// The accessor whose box expression `expr` of `func` reads from the parameter block: `pc.src`, a load through a
/// pointer to member `m >= 1` or member `m` of the loaded struct, is accessor `m - 1` (the chunk comes first).
/// `params_binding` is as for [`reflect_with_params`] (`None`: the block is the `var<immediate>`).
fn params_box(
    module: &naga::Module,
    func: &Function,
    expr: Handle<Expression>,
    params_binding: Option<u32>,
) -> Option<u32> {
    params_member(module, func, expr, params_binding)?.checked_sub(1)
}

/// The member of the parameter block that expression `expr` of `func` loads (`pc.chunk` is 0, `pc.src` 1, ...):
/// a load through a pointer to member `m`, or member `m` of the loaded struct. `params_binding` is as for
/// [`params_box`].
fn params_member(
    module: &naga::Module,
    func: &Function,
    expr: Handle<Expression>,
    params_binding: Option<u32>,
) -> Option<u32> {
    let exprs = &func.expressions;
    let params = |e: Handle<Expression>| {
        matches!(exprs[e], Expression::GlobalVariable(g)
            if is_params_block(&module.global_variables[g], params_binding))
    };
    match exprs[expr] {
        Expression::Load { pointer } => match exprs[pointer] {
            Expression::AccessIndex { base, index } if params(base) => Some(index),
            _ => None,
        },
        Expression::AccessIndex { base, index } => match exprs[base] {
            Expression::Load { pointer } if params(pointer) => Some(index),
            _ => None,
        },
        _ => None,
    }
}

/// The accessor whose push-constant box `expr` (in function `f`) is, if the IR shows it: a load of member `m >= 1`
/// of the `var<immediate>` struct is accessor `m - 1`; a parameter is followed to every call site, which must agree.
fn accessor_of(module: &naga::Module, f: FnRef, expr: Handle<Expression>, depth: u32) -> Option<u32> {
    if let Some(accessor) = params_box(module, function(module, f), expr, None) {
        return Some(accessor);
    }
    match function(module, f).expressions[expr] {
        Expression::FunctionArgument(arg) if depth < 8 => {
            let FnRef::Function(callee) = f else { return None };
            let mut found: Option<Option<u32>> = None;
            for caller in all_functions(module) {
                each_statement(&function(module, caller).body, &mut |s| {
                    if let Statement::Call { function: called, arguments, .. } = s {
                        if *called == callee {
                            let a =
                                arguments.get(arg as usize).and_then(|&e| accessor_of(module, caller, e, depth + 1));
                            found = Some(match found {
                                None => a,
                                Some(prev) if prev == a => a,
                                Some(_) => None,
                            });
                        }
                    }
                });
            }
            found.flatten()
        }
        _ => None,
    }
}

/// Turns a module parsed with [`PRELUDE`] and [`CHECKED_PRELUDE`] into the checked variant: every call of
/// `celer_index(box, item)` becomes `celer_index_checked(box, item, accessor)`, with `accessor` from the IR
/// ([`UNTRACED_ACCESSOR`] where it cannot be traced). Returns how many calls it rewrote.
///
/// # Errors
/// If the module lacks the two functions (it was not parsed with both preludes).
pub fn checked_module(module: &mut naga::Module) -> Result<usize, BuildError> {
    checked_module_inner(module).map_err(|message| BuildError { message })
}

fn checked_module_inner(module: &mut naga::Module) -> Result<usize, String> {
    let find = |name: &str| {
        module
            .functions
            .iter()
            .find(|(_, f)| f.name.as_deref() == Some(name))
            .map(|(h, _)| h)
            .ok_or_else(|| format!("error: the checked variant has no function {name} (prelude missing)"))
    };
    let (index, checked) = (find("celer_index")?, find("celer_index_checked")?);
    // First the accessors of every call (reading the whole module), by function and call result...
    let mut accessors: HashMap<(FnRef, Handle<Expression>), u32> = HashMap::new();
    for f in all_functions(module) {
        if f == FnRef::Function(checked) {
            continue;
        }
        each_statement(&function(module, f).body, &mut |s| {
            if let Statement::Call { function: called, arguments, result: Some(result) } = s {
                if *called == index {
                    let accessor = accessor_of(module, f, arguments[0], 0).unwrap_or(UNTRACED_ACCESSOR);
                    accessors.insert((f, *result), accessor);
                }
            }
        });
    }
    // naga's validator wants callees before their callers in the arena (the parse puts the preludes first).
    if let Some(&(FnRef::Function(caller), _)) =
        accessors.keys().find(|(f, _)| matches!(f, FnRef::Function(h) if *h < checked))
    {
        return Err(format!(
            "error: function {:?} calls celer_index but comes before celer_index_checked in the module",
            module.functions[caller].name
        ));
    }
    // ... then the rewrite: a literal needs no `Emit`, so appending one to the arena is enough.
    let rewritten = accessors.len();
    for f in all_functions(module) {
        let func = match f {
            FnRef::Function(h) => &mut module.functions[h],
            FnRef::EntryPoint(i) => &mut module.entry_points[i].function,
        };
        let (expressions, body) = (&mut func.expressions, &mut func.body);
        each_statement_mut(body, &mut |s| {
            if let Statement::Call { function: called, arguments, result: Some(result) } = s {
                if let Some(&accessor) = accessors.get(&(f, *result)) {
                    let literal = expressions.append(Expression::Literal(Literal::U32(accessor)), Span::UNDEFINED);
                    *called = checked;
                    arguments.push(literal);
                    expressions[*result] = Expression::CallResult(checked);
                }
            }
        });
    }
    Ok(rewritten)
}

/// The Rust constant a kernel file of stem `stem` becomes: upper case, every other character than a letter or digit
/// an underscore (`my-k` → `MY_K`).
fn constant_name(stem: &str) -> String {
    stem.to_uppercase().replace(|c: char| !c.is_ascii_alphanumeric(), "_")
}

/// One error for each pair of kernel files of `dir` that would declare the same constant (`my-k.wgsl` and
/// `my_k.wgsl` are both `MY_K`), naming both files; rustc would otherwise report a duplicate definition in generated
/// code.
fn colliding_names(dir: &str, paths: &[PathBuf]) -> Vec<String> {
    let mut seen: HashMap<String, &Path> = HashMap::new();
    let mut errors = Vec::new();
    let name = |p: &Path| format!("{dir}/{}", p.file_name().map(|n| n.to_string_lossy()).unwrap_or_default());
    for path in paths {
        let ident = constant_name(&path.file_stem().map(|s| s.to_string_lossy()).unwrap_or_default());
        if let Some(first) = seen.insert(ident.clone(), path) {
            errors.push(format!(
                "error: {} and {} would both declare the kernel constant {ident} (file names are upper-cased and other \
                 characters than letters and digits become '_'); rename one of them",
                name(first),
                name(path)
            ));
        }
    }
    errors
}

#[cfg(test)]
mod tests;
