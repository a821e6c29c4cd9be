//! The prelude block reductions an entry point calls and the bindings their results flow into
//! ([`block_reductions`]), and the atomic operations it applies to bindings ([`atomic_ops`]).

use naga::{Expression, Function, Handle, Statement};

use super::{group0_binding, root_of};
use crate::ir::{each_statement, function, FnRef};
use crate::BlockReduction;

/// `(op, type)` of a prelude block reduction `celer_reduce_<op>_<type>`, from the function's name.
fn reduce_call(name: &str) -> Option<(&'static str, &'static str)> {
    let (op, ty) = name.strip_prefix("celer_reduce_")?.split_once('_')?;
    let op = ["sum", "min", "max"].into_iter().find(|o| *o == op)?;
    let ty = ["f32", "i32", "u32", "f64"].into_iter().find(|t| *t == ty)?;
    Some((op, ty))
}

/// The prelude block reductions whose results flow into expression `expr` of function `f`: through arithmetic,
/// conversions, `let`s, local variables (every value stored to them) and the return values of the functions it
/// calls. `seen` guards against cycles (a local variable stored in a loop).
fn reduction_sources(
    module: &naga::Module,
    f: FnRef,
    expr: Handle<Expression>,
    seen: &mut std::collections::HashSet<(FnRef, Handle<Expression>)>,
    out: &mut std::collections::BTreeSet<(&'static str, &'static str)>,
) {
    if !seen.insert((f, expr)) {
        return;
    }
    let func = function(module, f);
    let mut operands: Vec<Handle<Expression>> = Vec::new();
    match &func.expressions[expr] {
        Expression::CallResult(callee) => match module.functions[*callee].name.as_deref().and_then(reduce_call) {
            Some(call) => {
                out.insert(call);
            }
            None => {
                // What the callee returns.
                let g = FnRef::Function(*callee);
                let mut returned = Vec::new();
                each_statement(&module.functions[*callee].body, &mut |s| {
                    if let Statement::Return { value: Some(v) } = s {
                        returned.push(*v);
                    }
                });
                for v in returned {
                    reduction_sources(module, g, v, seen, out);
                }
            }
        },
        Expression::Load { pointer } => {
            if let Some(Expression::LocalVariable(local)) = root_of(func, *pointer).map(|r| &func.expressions[r]) {
                // Every value stored to the local variable, and its initialiser.
                let local = *local;
                operands.extend(func.local_variables[local].init);
                each_statement(&func.body, &mut |s| {
                    if let Statement::Store { pointer, value } = s {
                        if root_of(func, *pointer)
                            .is_some_and(|r| matches!(func.expressions[r], Expression::LocalVariable(l) if l == local))
                        {
                            operands.push(*value);
                        }
                    }
                });
            }
        }
        Expression::Unary { expr, .. }
        | Expression::As { expr, .. }
        | Expression::Splat { value: expr, .. }
        | Expression::Swizzle { vector: expr, .. }
        | Expression::AccessIndex { base: expr, .. }
        | Expression::Relational { argument: expr, .. } => operands.push(*expr),
        Expression::Binary { left, right, .. } => operands.extend([*left, *right]),
        Expression::Access { base, index } => operands.extend([*base, *index]),
        Expression::Select { condition, accept, reject } => operands.extend([*condition, *accept, *reject]),
        Expression::Math { arg, arg1, arg2, arg3, .. } => {
            operands.push(*arg);
            operands.extend([*arg1, *arg2, *arg3].into_iter().flatten());
        }
        Expression::Compose { components, .. } => operands.extend(components.iter().copied()),
        _ => {}
    }
    for o in operands {
        reduction_sources(module, f, o, seen, out);
    }
}

/// The prelude block reductions (`celer_reduce_<op>_<type>`) entry point `entry_point` calls, directly or through
/// the functions it calls, each with the `@group(0)` binding its result is stored to: a `Store` to a binding (in
/// any function the entry point reaches) whose value is computed from the call's result, followed through
/// arithmetic, `let`s, local variables and return values. A call whose result reaches no such store is listed with
/// `binding: None`. `celer`'s `submit` compares these with the task's reductions (the operation, the type).
pub fn block_reductions(module: &naga::Module, entry_point: usize) -> Vec<BlockReduction> {
    let mut stack = vec![FnRef::EntryPoint(entry_point)];
    let mut reached = std::collections::HashSet::new();
    let mut called = std::collections::BTreeSet::new();
    let mut stored = std::collections::BTreeSet::new();
    while let Some(f) = stack.pop() {
        if !reached.insert(f) {
            continue;
        }
        let func = function(module, f);
        each_statement(&func.body, &mut |s| match s {
            Statement::Call { function: callee, .. } => {
                if let Some(call) = module.functions[*callee].name.as_deref().and_then(reduce_call) {
                    called.insert(call);
                }
                stack.push(FnRef::Function(*callee));
            }
            Statement::Store { pointer, value } => {
                if let Some((_, binding)) = group0_binding(module, func, *pointer) {
                    let mut sources = std::collections::BTreeSet::new();
                    reduction_sources(module, f, *value, &mut std::collections::HashSet::new(), &mut sources);
                    stored.extend(sources.into_iter().map(|(op, ty)| BlockReduction {
                        op,
                        ty,
                        binding: Some(binding),
                    }));
                }
            }
            _ => {}
        });
    }
    let mut out: Vec<BlockReduction> = stored.iter().copied().collect();
    for (op, ty) in called {
        if !stored.iter().any(|r| r.op == op && r.ty == ty) {
            out.push(BlockReduction { op, ty, binding: None });
        }
    }
    out
}

/// The atomic operations entry point `entry_point` applies to `@group(0)` bindings, directly or through the functions
/// it calls: `(binding, op)` with `op` one of the read-modify-writes `add`, `sub`, `and`, `or`, `xor`, `min`, `max`,
/// `exchange` (a compare-exchange too), or `load` / `store` (`atomicLoad` / `atomicStore`, which naga keeps as a plain
/// load or store of an atomic), sorted, without repeats. `celer`'s `submit` compares the read-modify-writes with the
/// operation of a task's reduction on that binding, and takes items updating each other's cells through a binding
/// as race-free only where it sees no `load` or `store` there (their results depend on the order of the items).
pub fn atomic_ops(module: &naga::Module, entry_point: usize) -> Vec<(u32, &'static str)> {
    let mut stack = vec![FnRef::EntryPoint(entry_point)];
    let mut reached = std::collections::HashSet::new();
    let mut ops = std::collections::BTreeSet::new();
    while let Some(f) = stack.pop() {
        if !reached.insert(f) {
            continue;
        }
        let func = function(module, f);
        each_statement(&func.body, &mut |s| match s {
            Statement::Call { function: callee, .. } => stack.push(FnRef::Function(*callee)),
            Statement::Atomic { pointer, fun, .. } => {
                if let Some((_, binding)) = group0_binding(module, func, *pointer) {
                    let op = match fun {
                        naga::AtomicFunction::Add => "add",
                        naga::AtomicFunction::Subtract => "sub",
                        naga::AtomicFunction::And => "and",
                        naga::AtomicFunction::InclusiveOr => "or",
                        naga::AtomicFunction::ExclusiveOr => "xor",
                        naga::AtomicFunction::Min => "min",
                        naga::AtomicFunction::Max => "max",
                        naga::AtomicFunction::Exchange { .. } => "exchange",
                    };
                    ops.insert((binding, op));
                }
            }
            Statement::Store { pointer, .. } => {
                if let Some(b) = atomic_binding(module, func, *pointer) {
                    ops.insert((b, "store"));
                }
            }
            _ => {}
        });
        for (_, e) in func.expressions.iter() {
            if let Expression::Load { pointer } = e {
                if let Some(b) = atomic_binding(module, func, *pointer) {
                    ops.insert((b, "load"));
                }
            }
        }
    }
    ops.into_iter().collect()
}

/// The `@group(0)` binding `pointer` points into, where that binding holds atomics (`atomic<T>` or an array of
/// them): a load or store through it is an `atomicLoad` or `atomicStore`.
fn atomic_binding(module: &naga::Module, func: &Function, pointer: Handle<Expression>) -> Option<u32> {
    let (var, binding) = group0_binding(module, func, pointer)?;
    let mut ty = &module.types[var.ty].inner;
    if let naga::TypeInner::Array { base, .. } = ty {
        ty = &module.types[*base].inner;
    }
    matches!(ty, naga::TypeInner::Atomic(_)).then_some(binding)
}
