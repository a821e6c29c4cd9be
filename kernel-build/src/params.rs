//! The parameter block (`var<immediate>`): its size limits, its move to a storage buffer when it outgrows push
//! constants, and finding it and its members in the IR.

use naga::{AddressSpace, Expression, Function, Handle};

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

/// The name of member `m` of `module`'s parameter block (`params_binding` as for
/// [`reflect_with_params`](crate::reflect_with_params)).
pub(crate) fn params_members_name(module: &naga::Module, params_binding: Option<u32>, m: u32) -> Option<String> {
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

/// Whether `var` is a kernel's parameter block: its `var<immediate>`, or the storage buffer at `@group(0)
/// @binding(params_binding)` that the build moved a block over 128 bytes to.
pub(crate) fn is_params_block(var: &naga::GlobalVariable, params_binding: Option<u32>) -> bool {
    var.space == AddressSpace::Immediate
        || params_binding.is_some_and(|p| var.binding.as_ref().is_some_and(|b| b.group == 0 && b.binding == p))
}

/// The accessor whose box expression `expr` of `func` reads from the parameter block: `pc.src`, a load through a
/// pointer to member `m >= 1` or member `m` of the loaded struct, is accessor `m - 1` (the chunk comes first).
/// `params_binding` is as for [`reflect_with_params`](crate::reflect_with_params) (`None`: the block is the
/// `var<immediate>`).
pub(crate) fn params_box(
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
pub(crate) fn params_member(
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
