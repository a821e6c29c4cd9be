//! Compiles WGSL compute kernels to SPIR-V at build time, for celer itself and for programs that use it.
//!
//! Call [`compile_dir`] from a `build.rs`: every `*.wgsl` file of the directory (except `prelude.wgsl`) is parsed
//! with celer's prelude appended (its `celer_*` helpers: chunk items, box containment, buffer-coordinate indexing;
//! WGSL has no include), validated, and written as SPIR-V to `$OUT_DIR`; a Rust file in `$OUT_DIR` declares one
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

/// celer's prelude, appended to every kernel (`wgsl/prelude.wgsl` of this crate).
pub const PRELUDE: &str = include_str!("../wgsl/prelude.wgsl");

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
}

impl Default for Options<'_> {
    fn default() -> Self {
        Self { types: "::celer::kernels", generated: GENERATED }
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
    let mut failures = Vec::new();
    for path in &paths {
        println!("cargo:rerun-if-changed={}", path.display());
        let shown = format!("{dir}/{}", path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default());
        match compile(path, &shown, &out_dir, options.types) {
            Ok(item) => generated.push_str(&item),
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
/// describes it.
fn compile(path: &Path, shown: &str, out_dir: &Path, types: &str) -> Result<String, String> {
    let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let ident = stem.to_uppercase().replace(|c: char| !c.is_ascii_alphanumeric(), "_");
    if ident.is_empty() || ident.starts_with(|c: char| c.is_ascii_digit()) {
        return Err(format!("error: {shown}: the file name must start with a letter to name a Rust constant"));
    }
    let mut source = fs::read_to_string(path).map_err(|e| format!("error: cannot read {shown}: {e}"))?;
    let own_lines = source.lines().count();
    source.push('\n');
    source.push_str(PRELUDE);
    let note =
        format!(" (lines after {own_lines} are celer's prelude, celer-kernel-build's wgsl/prelude.wgsl, appended)");

    let module = naga::front::wgsl::parse_str(&source).map_err(|e| {
        format!("error: {shown} does not parse as WGSL{note}:\n{}", e.emit_to_string_with_path(&source, shown))
    })?;
    // All capabilities: the device checks at pipeline creation whether it supports what a kernel uses (f64,
    // subgroups, ...), with an error that names the missing feature.
    let info = Validator::new(ValidationFlags::all(), Capabilities::all()).validate(&module).map_err(|e| {
        format!("error: {shown} fails naga validation{note}:\n{}", e.emit_to_string_with_path(&source, shown))
    })?;
    let words = write_spirv(&module, &info).map_err(|e| format!("error: {shown}: naga cannot write SPIR-V: {e}"))?;
    write_words(&out_dir.join(format!("{stem}.spv")), &words)?;
    let mut entry_points = String::new();
    for ep in module.entry_points.iter().filter(|ep| ep.stage == naga::ShaderStage::Compute) {
        let [x, y, z] = ep.workgroup_size;
        let _ = write!(
            entry_points,
            "{types}::EntryPointDesc {{ name: {:?}, workgroup_size: [{x}, {y}, {z}] }}, ",
            ep.name
        );
    }
    if entry_points.is_empty() {
        return Err(format!("error: {shown} has no @compute entry point"));
    }
    // The bindings the file declares in @group(0), used or not: 1 + the highest binding number.
    let group0_bindings = module
        .global_variables
        .iter()
        .filter_map(|(_, var)| var.binding.as_ref())
        .filter(|binding| binding.group == 0)
        .map(|binding| binding.binding + 1)
        .max()
        .unwrap_or(0);
    // The preludes first: naga wants a function defined before its callers, and the kernel's functions will call
    // celer_index_checked.
    let checked_prelude = CHECKED_PRELUDE.replace("CELER_CHECK_BINDING", &group0_bindings.to_string());
    let own = &source[..source.len() - PRELUDE.len() - 1];
    let checked_source = format!("{PRELUDE}\n{checked_prelude}\n{own}");
    let mut checked = naga::front::wgsl::parse_str(&checked_source).map_err(|e| {
        format!("error: {shown}: its checked variant does not parse: {}", e.emit_to_string(&checked_source))
    })?;
    checked_module_inner(&mut checked)?;
    let checked_info = Validator::new(ValidationFlags::all(), Capabilities::all()).validate(&checked).map_err(|e| {
        format!("error: {shown}: its checked variant fails naga validation:\n{}", e.emit_to_string(&checked_source))
    })?;
    let checked_words = write_spirv(&checked, &checked_info)
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
         {group0_bindings},\n\
         )\n"
    );
    let target = out_dir.join(format!("{stem}.kernel.rs"));
    fs::write(&target, constructor).map_err(|e| format!("error: cannot write {}: {e}", target.display()))?;
    Ok(format!(
        "\n{types}::kernel_source!(\n    \
         /// SPIR-V of `{shown}`, compiled by naga at build time.\n    \
         {ident},\n    \
         {stem:?}\n\
         );\n"
    ))
}

/// SPIR-V 1.3 of a validated module, with out-of-bounds indices clamped.
fn write_spirv(module: &naga::Module, info: &naga::valid::ModuleInfo) -> Result<Vec<u32>, spv::Error> {
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
        ..spv::Options::default()
    };
    spv::write_vec(module, info, &options, None)
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

/// Calls `visit` on every statement of `block`, nested blocks included.
fn each_statement(block: &naga::Block, visit: &mut impl FnMut(&Statement)) {
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

/// The accessor whose push-constant box `expr` (in function `f`) is, if the IR shows it: a load of member `m >= 1`
/// of the `var<immediate>` struct is accessor `m - 1`; a parameter is followed to every call site, which must agree.
fn accessor_of(module: &naga::Module, f: FnRef, expr: Handle<Expression>, depth: u32) -> Option<u32> {
    let exprs = &function(module, f).expressions;
    let immediate = |e: Handle<Expression>| matches!(exprs[e], Expression::GlobalVariable(g) if module.global_variables[g].space == AddressSpace::Immediate);
    match exprs[expr] {
        // `pc.src`: a load through a pointer to the member, or a member of the loaded struct.
        Expression::Load { pointer } => match exprs[pointer] {
            Expression::AccessIndex { base, index } if immediate(base) => index.checked_sub(1),
            _ => None,
        },
        Expression::AccessIndex { base, index } => match exprs[base] {
            Expression::Load { pointer } if immediate(pointer) => index.checked_sub(1),
            _ => None,
        },
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

#[cfg(test)]
mod tests {
    use super::*;

    /// `source` with both preludes (record at binding 2), made checked and validated; the accessor argument of
    /// every `celer_index_checked` call, sorted.
    fn accessors(source: &str) -> Vec<u32> {
        let text = format!("{PRELUDE}\n{}\n{source}", CHECKED_PRELUDE.replace("CELER_CHECK_BINDING", "2"));
        let mut module = naga::front::wgsl::parse_str(&text).expect("parses");
        checked_module(&mut module).expect("rewrites");
        Validator::new(ValidationFlags::all(), Capabilities::all()).validate(&module).expect("validates");
        let checked =
            module.functions.iter().find(|(_, f)| f.name.as_deref() == Some("celer_index_checked")).unwrap().0;
        let mut found = Vec::new();
        for f in all_functions(&module) {
            let exprs = &function(&module, f).expressions;
            each_statement(&function(&module, f).body, &mut |s| {
                if let Statement::Call { function, arguments, .. } = s {
                    assert_ne!(
                        module.functions[*function].name.as_deref(),
                        Some("celer_index"),
                        "a celer_index call was left unchecked"
                    );
                    if *function == checked {
                        match exprs[*arguments.last().unwrap()] {
                            Expression::Literal(Literal::U32(a)) => found.push(a),
                            ref other => panic!("the accessor argument is {other:?}"),
                        }
                    }
                }
            });
        }
        found.sort_unstable();
        found
    }

    const HEADER: &str = "struct Params { chunk: CelerBox, src: CelerBox, dst: CelerBox }
        @group(0) @binding(0) var<storage, read> src: array<f32>;
        @group(0) @binding(1) var<storage, read_write> dst: array<f32>;
        var<immediate> pc: Params;";

    #[test]
    fn each_celer_index_call_names_the_accessor_of_its_push_constant_member() {
        let source = format!(
            "{HEADER}
            @compute @workgroup_size(64) fn main(@builtin(global_invocation_id) gid: vec3<u32>) {{
                let item = celer_item_1d(pc.chunk, gid);
                dst[celer_index(pc.dst, item)] = src[celer_index(pc.src, item)];
            }}"
        );
        assert_eq!(accessors(&source), vec![0, 1]);
    }

    #[test]
    fn a_box_passed_as_a_parameter_is_followed_to_its_call_sites() {
        // `load` is only ever called with pc.src: accessor 0. `any` gets both boxes: found by value at run time.
        let source = format!(
            "{HEADER}
            fn load(b: CelerBox, item: vec3<u32>) -> f32 {{ return src[celer_index(b, item)]; }}
            fn any(b: CelerBox, item: vec3<u32>) -> u32 {{ return celer_index(b, item); }}
            @compute @workgroup_size(64) fn main(@builtin(global_invocation_id) gid: vec3<u32>) {{
                let item = celer_item_1d(pc.chunk, gid);
                let i = any(pc.src, item) + any(pc.dst, item);
                dst[celer_index(pc.dst, item)] = load(pc.src, item) + f32(i);
            }}"
        );
        assert_eq!(accessors(&source), vec![0, 1, UNTRACED_ACCESSOR]);
    }
}
