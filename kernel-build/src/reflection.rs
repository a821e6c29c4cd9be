//! Reflection: what naga's IR says about a kernel file's `@group(0)` bindings and each entry point (workgroup size,
//! push-constant layout, dimensionality, what the analyses find), and the checks that stop the build.

use naga::{AddressSpace, Function, Handle};

use crate::analysis;
use crate::ir::reachable_functions;
use crate::params::{is_params_block, params_members_name};
use crate::{
    array_lengths, atomic_ops, block_reductions, chunk_indexed, cross_indexed, global_indexed, item_indexed,
    item_offsets, loads_every_item, reads_old_contents, stores_every_item, stores_one_cell_every_item,
    workgroup_dependent, ReflectError,
};

/// What the build learns about one kernel file from naga's IR: the table the generated `KernelSource` carries and
/// `celer`'s `submit` checks tasks against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reflection {
    /// The `@group(0)` storage bindings, by binding number.
    pub bindings: Vec<Binding>,
    /// The `@compute` entry points, in source order.
    pub entry_points: Vec<EntryPoint>,
    /// Where the kernel reads its parameter block (`var<immediate>`) from when it is larger than
    /// [`MAX_PUSH_CONSTANT_BYTES`](crate::MAX_PUSH_CONSTANT_BYTES): the `@group(0)` binding of the read-only storage
    /// buffer it became ([`params_to_storage`](crate::params_to_storage)); `None` for push constants.
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
    /// [`compile_dir`](crate::compile_dir) leaves it empty for an entry point its file allows raw ids
    /// (`// celer-kernel-build: raw ids: NAME`).
    pub global_indexed: Vec<u32>,
    /// The constant offsets from its item at which it indexes each binding's box (`celer_index(pc.src, item -
    /// vec3<u32>(1u, 0u, 0u))`, `vec3<u32>(item.x + 1u, item.y, item.z)`, also through a `var` and its own
    /// functions; [`item_offsets`]): `(binding, offsets)`, ascending.
    /// `submit` refuses a task whose range mapper for the binding does not declare the cells at those offsets.
    pub item_offsets: Vec<(u32, Vec<[i64; 3]>)>,
    /// It works on the raw `global_invocation_id` ([`without_chunk_offset`](crate::without_chunk_offset)) and its file
    /// does not say so on purpose (`// celer-kernel-build: raw ids: NAME`,
    /// [`raw_ids_allowed`](crate::raw_ids_allowed)): `submit` refuses it. Set by [`compile_dir`](crate::compile_dir);
    /// `false` as [`reflect_with_params`] gives it.
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

/// The most invocations a workgroup may have to call the prelude's block reductions (`celer_block_cells`' length in
/// `wgsl/prelude.wgsl`: naga zero-initialises workgroup memory at every workgroup's start, so the cells are kept to
/// what 256 invocations need).
pub const MAX_BLOCK_INVOCATIONS: u32 = 256;

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

/// [`reflect`] for a module whose parameter block [`params_to_storage`](crate::params_to_storage) moved to the storage
/// buffer at `@group(0) @binding(params_binding)` (`None`: it did not): that variable is reflected as the push-constant
/// block, not as a binding.
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
