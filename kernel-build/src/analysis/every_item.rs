//! The accesses every item of an entry point's index space makes: stores and loads at its own item
//! ([`stores_every_item`], [`loads_every_item`]) and stores to one fixed cell ([`stores_one_cell_every_item`]), each
//! reached by every item (the chunk guard looked through, nothing else).

use naga::{Expression, Function, Handle, Statement};

use crate::ir::each_statement;

/// A call statement of a function: the function it calls and its arguments.
type Call<'a> = (Handle<Function>, &'a [Handle<Expression>]);

/// The `@group(0)` bindings entry point `entry_point` stores to at its own item on every item of its index space,
/// ascending: a `Store` (or an atomic) in the entry point's own body to `<binding>[celer_index(pc.<binding>,
/// item)]` (or to a member of that element), where `item` is `celer_item_Nd(pc.chunk, gid)` of the entry point's
/// `global_invocation_id` parameter and the box is the parameter block's member for that same binding, and where
/// every item of the index space reaches the store: not inside a loop, a `switch` or an `if`, after no `return`
/// inside one. The one branch it looks through is the chunk guard on that item, `if (celer_contains(pc.chunk,
/// item)) { … }` or `if (!celer_contains(pc.chunk, item)) { return; }`: every item of the index space lies in its
/// chunk, so that guard skips only the invocations past the chunk's end. `params_binding` is as for
/// [`reflect_with_params`](crate::reflect_with_params).
///
/// Conservative: a store it cannot show to be so (in a function of the kernel's own, behind any other condition,
/// at a cell computed from the item, through a local variable holding the item) is left out. `celer`'s `submit`
/// refuses a task whose index space reaches outside the buffer bound at a listed binding: the items there would
/// store to cells the buffer does not have.
pub fn stores_every_item(module: &naga::Module, entry_point: usize, params_binding: Option<u32>) -> Vec<u32> {
    every_item(module, entry_point, params_binding, Access::StoreAtItem)
}

/// The `@group(0)` bindings entry point `entry_point` loads from at its own item on every item of its index space,
/// ascending: a `Load` of `<binding>[celer_index(pc.<binding>, item)]` (or of a member of that element) evaluated
/// in the entry point's own body where every item reaches it, as [`stores_every_item`] finds stores (the chunk
/// guard on that item looked through, nothing else). Conservative alike. `celer`'s `submit` refuses a task whose
/// index space reaches outside the buffer bound at a listed binding: the items there would read cells the buffer
/// does not have.
pub fn loads_every_item(module: &naga::Module, entry_point: usize, params_binding: Option<u32>) -> Vec<u32> {
    every_item(module, entry_point, params_binding, Access::LoadAtItem)
}

/// The `@group(0)` bindings entry point `entry_point` stores to at one fixed cell on every item of its index space,
/// ascending: a plain `Store` (not an atomic) to `<binding>[k]` with `k` a constant (`out[0] = …`, `out[0] += v`,
/// a member of that element too), where every item reaches the store, as [`stores_every_item`] finds stores (the
/// chunk guard looked through, nothing else). Conservative alike: a store behind any other condition (`if (lid ==
/// 0u)`, `if (gid.x != 0u) { return; }`), in a loop, or at a cell computed otherwise is left out. The items of one
/// task run in no defined order, so every item storing into one cell is a race: `celer`'s `submit` refuses a task
/// that reduces into a listed binding over more than one item (each item would overwrite what the others stored,
/// as a CUDA port's `out[0] += v` does where WGSL has no float atomics).
pub fn stores_one_cell_every_item(module: &naga::Module, entry_point: usize, params_binding: Option<u32>) -> Vec<u32> {
    every_item(module, entry_point, params_binding, Access::StoreOneCell)
}

/// What [`every_item`] looks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    /// Stores (and atomics) at the item's own cell: [`stores_every_item`].
    StoreAtItem,
    /// Loads of the item's own cell: [`loads_every_item`].
    LoadAtItem,
    /// Plain stores at one constant cell: [`stores_one_cell_every_item`].
    StoreOneCell,
}

/// [`stores_every_item`], [`loads_every_item`] and [`stores_one_cell_every_item`], as `access` says.
fn every_item(module: &naga::Module, entry_point: usize, params_binding: Option<u32>, access: Access) -> Vec<u32> {
    let func = &module.entry_points[entry_point].function;
    let gid = |k: u32| {
        matches!(func.arguments[k as usize].binding, Some(naga::Binding::BuiltIn(naga::BuiltIn::GlobalInvocationId)))
    };
    every_item_in(module, func, &gid, params_binding, access, 0).into_iter().collect()
}

/// How deep [`every_item_in`] follows the kernel's own functions that take the invocation id.
const EVERY_ITEM_DEPTH: u32 = 4;

/// [`every_item`] in `func`, whose arguments `gid` says are the invocation id (the entry point's
/// `global_invocation_id`, or a function's parameter every call passes it to): its own statements, and, where every
/// item reaches a call of one of the kernel's functions that passes it the invocation id, that function's.
fn every_item_in(
    module: &naga::Module,
    func: &Function,
    gid: &dyn Fn(u32) -> bool,
    params_binding: Option<u32>,
    access: Access,
    depth: u32,
) -> std::collections::BTreeSet<u32> {
    use std::collections::{BTreeSet, HashMap};
    let exprs = &func.expressions;
    let named =
        |f: Handle<Function>, names: &[&str]| module.functions[f].name.as_deref().is_some_and(|n| names.contains(&n));
    // The calls of the entry point's own body, by the handle of their result.
    let mut calls: HashMap<Handle<Expression>, Call<'_>> = HashMap::new();
    each_statement(&func.body, &mut |s| {
        if let Statement::Call { function, arguments, result: Some(r) } = s {
            calls.insert(*r, (*function, arguments.as_slice()));
        }
    });
    let call = |e: Handle<Expression>, names: &[&str]| calls.get(&e).filter(|(f, _)| named(*f, names)).map(|c| c.1);
    let chunk = |e: Handle<Expression>| crate::params::params_member(module, func, e, params_binding) == Some(0);
    let gid = |e: Handle<Expression>| matches!(exprs[e], Expression::FunctionArgument(k) if gid(k));
    // The items: celer_item_Nd(pc.chunk, gid), each call's result.
    let items: Vec<Handle<Expression>> = calls
        .keys()
        .copied()
        .filter(|&r| {
            call(r, &["celer_item_1d", "celer_item_2d", "celer_item_3d"])
                .is_some_and(|a| a.len() == 2 && chunk(a[0]) && gid(a[1]))
        })
        .collect();
    // The chunk guard a condition is: celer_contains(pc.chunk, item) (`true`) or its negation (`false`).
    let guard = |cond: Handle<Expression>| -> Option<(bool, Handle<Expression>)> {
        let (positive, e) = match exprs[cond] {
            Expression::Unary { op: naga::UnaryOperator::LogicalNot, expr } => (false, expr),
            _ => (true, cond),
        };
        let a = call(e, &["celer_contains"])?;
        (a.len() == 2 && chunk(a[0])).then_some((positive, a[1]))
    };
    // The binding and item of a pointer to `<binding>[celer_index(pc.<binding>, item)]` (a member of it too).
    let item_cell = |mut pointer: Handle<Expression>| -> Option<(u32, Handle<Expression>)> {
        while let Expression::AccessIndex { base, .. } = exprs[pointer] {
            pointer = base;
        }
        let Expression::Access { base, index } = exprs[pointer] else { return None };
        let Expression::GlobalVariable(g) = exprs[base] else { return None };
        let var = &module.global_variables[g];
        let binding =
            var.binding.as_ref().filter(|b| b.group == 0 && !crate::params::is_params_block(var, params_binding))?;
        let a = call(index, &["celer_index"])?;
        (a.len() == 2 && crate::params::params_box(module, func, a[0], params_binding) == Some(binding.binding))
            .then_some((binding.binding, a[1]))
    };
    // The binding of a pointer to one fixed cell of it, `<binding>[k]` with `k` a constant (a member of that
    // element too): naga gives a constant index as an AccessIndex, or as an Access by a literal or a constant.
    let one_cell = |mut pointer: Handle<Expression>| -> Option<u32> {
        let mut indexed = false;
        loop {
            match exprs[pointer] {
                Expression::AccessIndex { base, .. } => (pointer, indexed) = (base, true),
                Expression::Access { base, index }
                    if matches!(
                        exprs[index],
                        Expression::Literal(_) | Expression::Constant(_) | Expression::ZeroValue(_)
                    ) =>
                {
                    (pointer, indexed) = (base, true);
                }
                Expression::GlobalVariable(g) => {
                    let var = &module.global_variables[g];
                    let b = var
                        .binding
                        .as_ref()
                        .filter(|b| b.group == 0 && !crate::params::is_params_block(var, params_binding))?;
                    return indexed.then_some(b.binding);
                }
                _ => return None,
            }
        }
    };
    let returns = |block: &naga::Block| {
        let mut found = false;
        each_statement(block, &mut |s| found |= matches!(s, Statement::Return { .. } | Statement::Kill));
        found
    };
    /// Notes the stores at `item` that every item of the index space reaching `block` makes; whether every such
    /// item reaches its end.
    fn walk(
        block: &naga::Block,
        item: Option<Handle<Expression>>,
        at: &dyn Fn(&Statement) -> Vec<u32>,
        guard: &dyn Fn(Handle<Expression>) -> Option<(bool, Handle<Expression>)>,
        returns: &dyn Fn(&naga::Block) -> bool,
        out: &mut BTreeSet<u32>,
    ) -> bool {
        for s in block.iter() {
            match s {
                Statement::Block(b) => {
                    if !walk(b, item, at, guard, returns, out) {
                        return false;
                    }
                }
                Statement::If { condition, accept, reject } => {
                    let taken = match guard(*condition) {
                        Some((true, i)) if Some(i) == item => accept,
                        Some((false, i)) if Some(i) == item => reject,
                        _ if returns(accept) || returns(reject) => return false,
                        _ => continue,
                    };
                    if !walk(taken, item, at, guard, returns, out) {
                        return false;
                    }
                }
                Statement::Switch { cases, .. } => {
                    if cases.iter().any(|c| returns(&c.body)) {
                        return false;
                    }
                }
                Statement::Loop { body, continuing, .. } => {
                    if returns(body) || returns(continuing) {
                        return false;
                    }
                }
                Statement::Return { .. } | Statement::Kill => return false,
                _ => out.extend(at(s)),
            }
        }
        true
    }
    let mut out = BTreeSet::new();
    for &item in &items {
        let at = |s: &Statement| -> Vec<u32> {
            match s {
                Statement::Store { pointer, .. } | Statement::Atomic { pointer, .. }
                    if access == Access::StoreAtItem =>
                {
                    item_cell(*pointer).filter(|&(_, i)| i == item).map(|(b, _)| b).into_iter().collect()
                }
                Statement::Store { pointer, .. } if access == Access::StoreOneCell => {
                    one_cell(*pointer).into_iter().collect()
                }
                // An Emit at this level evaluates its expressions on every item that reaches it.
                Statement::Emit(range) if access == Access::LoadAtItem => range
                    .clone()
                    .filter_map(|e| match exprs[e] {
                        Expression::Load { pointer } => item_cell(pointer).filter(|&(_, i)| i == item),
                        _ => None,
                    })
                    .map(|(b, _)| b)
                    .collect(),
                _ => Vec::new(),
            }
        };
        walk(&func.body, Some(item), &at, &guard, &returns, &mut out);
    }
    // The kernel's own functions that every item calls with the invocation id (`let v = value(gid);`), followed to
    // a small depth: their items, guards and accesses count as the entry point's own.
    if depth < EVERY_ITEM_DEPTH {
        let follow = |s: &Statement| -> Vec<u32> {
            let Statement::Call { function, arguments, .. } = s else { return Vec::new() };
            let passed: Vec<u32> = (0..arguments.len() as u32).filter(|&k| gid(arguments[k as usize])).collect();
            let callee = &module.functions[*function];
            if passed.is_empty() || callee.name.as_deref().is_some_and(|n| n.starts_with("celer_")) {
                return Vec::new();
            }
            let takes = |k: u32| passed.contains(&k);
            every_item_in(module, callee, &takes, params_binding, access, depth + 1).into_iter().collect()
        };
        // Behind the chunk guard of any of the items, or of none.
        for item in items.iter().copied().map(Some).chain([None]) {
            walk(&func.body, item, &follow, &guard, &returns, &mut out);
        }
    }
    out
}
