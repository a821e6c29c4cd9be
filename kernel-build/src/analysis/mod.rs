//! What a kernel's entry point does, read from naga's IR through its call graph. This module holds the walkers the
//! analyses share ([`root_of`], [`group0_binding`], [`MAX_STEPS`], [`own_calls`], [`returns`]) and the plain per-binding uses
//! ([`reads_old_contents`], [`array_lengths`]); its submodules own the rest:
//!
//! - `float64`: whether a kernel needs 64-bit floats, from its text ([`uses_f64_prelude`]) and its SPIR-V
//!   ([`spirv_needs_float64`]);
//! - `locals`: the values a local variable may hold at each load (`local_values`), the dataflow the indexing
//!   analyses follow;
//! - `reductions`: the prelude block reductions and where their results flow ([`block_reductions`]), the atomics
//!   applied to bindings ([`atomic_ops`]);
//! - `workgroup`: whether results depend on how the index space is cut into workgroups ([`workgroup_dependent`]);
//! - `every_item`: the accesses every item of the index space makes ([`stores_every_item`], [`loads_every_item`],
//!   [`stores_one_cell_every_item`]);
//! - `indexing`: bindings indexed in ways right on one rank only ([`item_indexed`], [`cross_indexed`],
//!   [`chunk_indexed`], [`global_indexed`]);
//! - `offsets`: the cells around its item at which a kernel indexes each box ([`item_offsets`]).

use std::collections::HashMap;

use naga::{Expression, Function, Handle, Statement};

use crate::ir::each_statement;

mod every_item;
mod float64;
mod indexing;
mod locals;
mod offsets;
mod reductions;
mod workgroup;

pub use every_item::{loads_every_item, stores_every_item, stores_one_cell_every_item};
pub use float64::{spirv_needs_float64, uses_f64_prelude};
pub(crate) use indexing::item_from_box;
pub use indexing::{chunk_indexed, cross_indexed, global_indexed, item_indexed};
pub use offsets::item_offsets;
pub use reductions::{atomic_ops, block_reductions};
pub use workgroup::workgroup_dependent;

/// The variable a pointer expression of `func` points into (through `Access`/`AccessIndex`): the handle of its
/// `GlobalVariable` or `LocalVariable` expression, or `None` (a function parameter).
fn root_of(func: &Function, mut pointer: Handle<Expression>) -> Option<Handle<Expression>> {
    loop {
        match func.expressions[pointer] {
            Expression::Access { base, .. } | Expression::AccessIndex { base, .. } => pointer = base,
            Expression::GlobalVariable(_) | Expression::LocalVariable(_) => return Some(pointer),
            _ => return None,
        }
    }
}

/// The most steps [`cross_indexed`] and [`item_offsets`] take to follow one index, cell or argument through the
/// values of its function: they follow each path through the expressions, and a value used many times over (`let b = a + a;
/// let c = b + b; …`) would otherwise take exponentially many. Past them a value counts as none of the patterns.
const MAX_STEPS: u32 = 100_000;

/// The `@group(0)` variable a pointer expression of `func` points into, with its binding number: `None` for a
/// local variable, a function parameter or a variable outside group 0.
fn group0_binding<'m>(
    module: &'m naga::Module,
    func: &Function,
    pointer: Handle<Expression>,
) -> Option<(&'m naga::GlobalVariable, u32)> {
    let Expression::GlobalVariable(g) = func.expressions[root_of(func, pointer)?] else { return None };
    let var = &module.global_variables[g];
    var.binding.as_ref().filter(|b| b.group == 0).map(|b| (var, b.binding))
}

/// The `@group(0)` bindings entry point `entry_point` may read the old contents of: those whose first use, in
/// program order, is a read (a load, or an atomic read-modify-write), ascending. Program order walks the statements
/// as written, enters each function of the kernel's own where it is called, and takes every branch of an `if` or a
/// `switch` in turn, so a binding stored to anywhere before its first load (`out[i] = 0.0;` ahead of a loop
/// accumulating into `out[i]`) counts as stored first: a task may bind it with `discard_write`. A binding first
/// loaded (`acc[i] += src[i]`, an `atomicAdd` on a histogram's bins) needs an access that keeps its old contents.
/// The walk tells bindings apart, not cells: it errs towards accepting a kernel that stores one cell and reads
/// another.
pub fn reads_old_contents(module: &naga::Module, entry_point: usize) -> Vec<u32> {
    /// Notes each binding's first use in `func` (`true`: a read), in program order: [`each_statement`] visits
    /// statements as written, every branch in turn, and a call descends into its callee where it stands, the
    /// first time only (`walked`): every binding the callee uses has its first use noted by then, so walking it
    /// again would note nothing (and a helper called many times over would be walked exponentially often).
    fn walk(
        module: &naga::Module,
        func: &Function,
        first: &mut std::collections::BTreeMap<u32, bool>,
        walked: &mut std::collections::HashSet<Handle<Function>>,
    ) {
        let binding = |pointer: Handle<Expression>| group0_binding(module, func, pointer).map(|(_, b)| b);
        each_statement(&func.body, &mut |s| match s {
            Statement::Emit(range) => {
                for h in range.clone() {
                    if let Expression::Load { pointer } = func.expressions[h] {
                        if let Some(b) = binding(pointer) {
                            first.entry(b).or_insert(true);
                        }
                    }
                }
            }
            Statement::Store { pointer, .. } => {
                if let Some(b) = binding(*pointer) {
                    first.entry(b).or_insert(false);
                }
            }
            Statement::Atomic { pointer, .. } => {
                if let Some(b) = binding(*pointer) {
                    first.entry(b).or_insert(true);
                }
            }
            Statement::Call { function, .. } if walked.insert(*function) => {
                walk(module, &module.functions[*function], first, walked)
            }
            _ => {}
        });
    }
    let ep = &module.entry_points[entry_point].function;
    let mut first = std::collections::BTreeMap::new();
    walk(module, ep, &mut first, &mut std::collections::HashSet::new());
    first.into_iter().filter_map(|(b, read)| read.then_some(b)).collect()
}

/// The `@group(0)` bindings whose `arrayLength` entry point `entry_point` takes, directly or in the functions it
/// calls, ascending. A binding holds its buffer's allocation on the node (the cells the node's commands touch), so
/// its length is not the buffer's extent and changes with the rank: the build refuses it in a task kernel.
pub fn array_lengths(module: &naga::Module, entry_point: usize) -> Vec<u32> {
    let ep = &module.entry_points[entry_point].function;
    let funcs =
        std::iter::once(ep).chain(crate::ir::reachable_functions(module, ep).into_iter().map(|h| &module.functions[h]));
    let mut out = std::collections::BTreeSet::new();
    for f in funcs {
        for (_, e) in f.expressions.iter() {
            if let Expression::ArrayLength(pointer) = *e {
                if let Some((_, b)) = group0_binding(module, f, pointer) {
                    out.insert(b);
                }
            }
        }
    }
    out.into_iter().collect()
}

/// A call to a function of the kernel's own: the function and its arguments.
type Call = (Handle<Function>, Vec<Handle<Expression>>);

/// How many calls deep the indexing analyses follow a function's return value (WGSL has no recursion; this bounds
/// the work on a deep chain of helpers).
const MAX_CALL_DEPTH: u32 = 8;

/// The calls of `func` to functions of the kernel's own (not the prelude's `celer_*`), by the handle of their
/// result.
fn own_calls(module: &naga::Module, func: &Function) -> HashMap<Handle<Expression>, Call> {
    let mut calls = HashMap::new();
    each_statement(&func.body, &mut |s| {
        if let Statement::Call { function, arguments, result: Some(r) } = s {
            if !module.functions[*function].name.as_deref().unwrap_or("").starts_with("celer_") {
                calls.insert(*r, (*function, arguments.clone()));
            }
        }
    });
    calls
}

/// The values `func` returns, one per `return` statement with a value.
fn returns(func: &Function) -> Vec<Handle<Expression>> {
    let mut out = Vec::new();
    each_statement(&func.body, &mut |s| {
        if let Statement::Return { value: Some(v) } = s {
            out.push(*v);
        }
    });
    out
}
