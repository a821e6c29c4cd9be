//! The build's warnings about entry points that ignore the chunk (raw ids, no chunk guard), and the kernel-file
//! lines (`// celer-kernel-build: raw ids: NAME`, `unguarded: NAME`) that silence them.

use naga::{Expression, Function, Handle};

use crate::ir::reachable_functions;
use crate::params::is_params_block;

/// The `@compute` entry points of `module` (kernel text with the prelude appended) that never take the chunk's
/// offset into account: neither they nor the functions of the kernel's they call call one of the prelude's
/// `celer_item_1d/2d/3d` or read an offset of the chunk (`pc.chunk.offset0`, `offset1` or `offset2`, the first
/// member of the parameter block; or the `offset0..2` of a `CelerBox` parameter of the kernel's own functions). Such
/// a kernel works on the raw `global_invocation_id`, which starts at 0 on every chunk, so its results change with
/// the number of ranks and devices (each chunk starts at another offset), and `submit` cannot check its
/// dimensionality. `params_binding` is as for [`reflect_with_params`](crate::reflect_with_params). Entry points whose
/// parameter block does not start with a `CelerBox` (or that have none) are not task kernels (`submit` refuses them)
/// and are left out.
///
/// [`compile_dir`](crate::compile_dir) prints a cargo warning for each, unless the kernel file names it in a line
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
/// buffer), and its results change with the split. `params_binding` is as for
/// [`reflect_with_params`](crate::reflect_with_params).
///
/// [`compile_dir`](crate::compile_dir) prints a cargo warning for each, unless the kernel file names it in a line
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
/// `// celer-kernel-build: unguarded: NAME, NAME`: [`compile_dir`](crate::compile_dir) does not warn about them
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
pub(crate) fn chunk_guard_warning(shown: &str, entry: &str) -> String {
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
/// [`compile_dir`](crate::compile_dir) does not warn about them ([`without_chunk_offset`]).
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
pub(crate) fn chunk_offset_warning(shown: &str, entry: &str) -> String {
    format!(
        "{shown}: entry point `{entry}` calls none of the prelude's celer_item_1d/2d/3d and never reads the chunk's \
         offset (pc.chunk.offset0..2): its items are the raw global_invocation_id, which starts at 0 on every chunk, \
         so its results change with the number of ranks and devices (each chunk starts at another offset), and \
         submit cannot check its dimensionality; call celer_item_Nd(pc.chunk, gid), or add the chunk's offset \
         yourself (or, if it ignores the chunk on purpose, say so in a line `// celer-kernel-build: raw ids: \
         {entry}`)"
    )
}
