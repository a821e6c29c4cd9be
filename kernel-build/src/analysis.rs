//! What a kernel's entry point does, read from naga's IR through its call graph: which prelude block reductions it
//! calls and into which binding each result flows ([`block_reductions`]), and whether its results depend on how the
//! index space is cut into workgroups ([`workgroup_dependent`]); and whether a kernel needs 64-bit floats, from its
//! text ([`uses_f64_prelude`]) and from its SPIR-V ([`spirv_needs_float64`]).

use naga::{AddressSpace, Expression, Function, Handle, Statement};

use crate::{each_statement, function, BlockReduction, FnRef};

/// The functions of [`PRELUDE_F64`](crate::PRELUDE_F64) a kernel calls; one of them in its text (outside `//` comments) appends it.
const F64_CALLS: [&str; 3] = ["celer_reduce_sum_f64", "celer_reduce_min_f64", "celer_reduce_max_f64"];

/// Whether kernel text `source` calls the prelude's f64 part (names one of `celer_reduce_{sum,min,max}_f64` outside
/// `//` comments), so that the build appends [`PRELUDE_F64`](crate::PRELUDE_F64) to it.
pub fn uses_f64_prelude(source: &str) -> bool {
    source.lines().map(|l| l.split_once("//").map_or(l, |(code, _)| code)).any(|code| {
        F64_CALLS.iter().any(|name| {
            code.match_indices(name).any(|(i, _)| {
                // A whole identifier, not the prefix of a longer one.
                !code[i + name.len()..].starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
            })
        })
    })
}

/// Whether SPIR-V `words` declare the capability `Float64` (`OpCapability Float64`): a module with an `f64` type,
/// which a device runs only with the feature `shaderFloat64`.
pub fn spirv_needs_float64(words: &[u32]) -> bool {
    const OP_CAPABILITY: u32 = 17;
    const FLOAT64: u32 = 10;
    let mut at = 5; // after the header
    while let Some(&first) = words.get(at) {
        let (count, opcode) = ((first >> 16) as usize, first & 0xffff);
        if opcode == OP_CAPABILITY && words.get(at + 1) == Some(&FLOAT64) {
            return true;
        }
        at += count.max(1);
    }
    false
}

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

/// A value a local variable of a function may hold where it is loaded, as [`local_values`] finds them.
#[derive(Clone, Debug)]
enum Held {
    /// Its initialiser (`None`: it has none, it holds the zero value).
    Init(Option<Handle<Expression>>),
    /// A store of the whole variable (`i = item.x;`).
    Whole(Handle<Expression>),
    /// A store of one part of it over the values it held before (`prior`, indices into [`LocalValues::held`]):
    /// member or component `field` (`p.x = p.x + 1u;` is field 0), `None` for a part reached otherwise (`a[k] = v`).
    Part { field: Option<u32>, value: Handle<Expression>, prior: std::collections::BTreeSet<usize> },
}

/// The values the local variables of a function may hold at each of its loads ([`local_values`]).
struct LocalValues {
    /// Every initialiser and store, each once.
    held: Vec<Held>,
    /// For each `Load` expression through a pointer into a local variable (the variable, `p.x`, `a[k]`): the
    /// entries of `held` that may reach it.
    loads: std::collections::HashMap<Handle<Expression>, std::collections::BTreeSet<usize>>,
}

/// The values each local variable of `func` may hold where it is loaded: its initialiser and the stores that
/// reach the load along some path of the structured control flow (a store replaces the values before it; an `if`
/// or a `switch` joins its branches; a loop runs to a fixed point, so a store late in its body reaches a load early
/// in it; code after a `return`, `break` or `continue` gets nothing). What a function it calls stores through a
/// pointer to a local is not seen.
fn local_values(func: &Function) -> LocalValues {
    use std::collections::{BTreeSet, HashMap};
    type State = HashMap<Handle<naga::LocalVariable>, BTreeSet<usize>>;
    /// Where a `break` and a `continue` go: the states that reach the end of the innermost loop or switch.
    enum Frame {
        Loop { breaks: State, continues: State },
        Switch { breaks: State },
    }
    fn join(mut a: State, b: State) -> State {
        for (l, h) in b {
            a.entry(l).or_default().extend(h);
        }
        a
    }
    fn local(func: &Function, pointer: Handle<Expression>) -> Option<Handle<naga::LocalVariable>> {
        match func.expressions[root_of(func, pointer)?] {
            Expression::LocalVariable(l) => Some(l),
            _ => None,
        }
    }
    struct Walk<'f> {
        func: &'f Function,
        values: LocalValues,
        /// The entry of `held` of each store statement (by address), so that a loop's passes share it.
        stores: HashMap<usize, usize>,
    }
    impl Walk<'_> {
        /// The state after `block` falls through, from `state` before it.
        fn block(&mut self, block: &naga::Block, mut state: State, frames: &mut Vec<Frame>) -> State {
            let exprs = &self.func.expressions;
            for s in block.iter() {
                match s {
                    Statement::Emit(range) => {
                        for e in range.clone() {
                            if let Expression::Load { pointer } = exprs[e] {
                                if let Some(l) = local(self.func, pointer) {
                                    let reaching = state.get(&l).cloned().unwrap_or_default();
                                    self.values.loads.entry(e).or_default().extend(reaching);
                                }
                            }
                        }
                    }
                    Statement::Store { pointer, value } => {
                        let Some(l) = local(self.func, *pointer) else { continue };
                        let prior = state.get(&l).cloned().unwrap_or_default();
                        let held = match exprs[*pointer] {
                            Expression::LocalVariable(_) => Held::Whole(*value),
                            Expression::AccessIndex { base, index }
                                if matches!(exprs[base], Expression::LocalVariable(_)) =>
                            {
                                Held::Part { field: Some(index), value: *value, prior }
                            }
                            _ => Held::Part { field: None, value: *value, prior },
                        };
                        let key = std::ptr::from_ref(s) as usize;
                        let i = match self.stores.get(&key) {
                            Some(&i) => {
                                // A loop's later pass: the same store, over what reaches it now as well.
                                if let (Held::Part { prior, .. }, Held::Part { prior: more, .. }) =
                                    (&mut self.values.held[i], held)
                                {
                                    prior.extend(more);
                                }
                                i
                            }
                            None => {
                                self.values.held.push(held);
                                self.stores.insert(key, self.values.held.len() - 1);
                                self.values.held.len() - 1
                            }
                        };
                        state.insert(l, BTreeSet::from([i]));
                    }
                    Statement::Block(b) => state = self.block(b, state, frames),
                    Statement::If { accept, reject, .. } => {
                        let a = self.block(accept, state.clone(), frames);
                        state = join(a, self.block(reject, state, frames));
                    }
                    Statement::Switch { cases, .. } => {
                        frames.push(Frame::Switch { breaks: State::new() });
                        let (mut out, mut falling) = (State::new(), State::new());
                        for c in cases {
                            let end = self.block(&c.body, join(state.clone(), falling), frames);
                            if c.fall_through {
                                falling = end;
                            } else {
                                out = join(out, end);
                                falling = State::new();
                            }
                        }
                        let Some(Frame::Switch { breaks }) = frames.pop() else { unreachable!() };
                        state = join(join(out, falling), breaks);
                    }
                    Statement::Loop { body, continuing, break_if } => {
                        let mut entry = state;
                        state = loop {
                            frames.push(Frame::Loop { breaks: State::new(), continues: State::new() });
                            let end = self.block(body, entry.clone(), frames);
                            let Some(Frame::Loop { breaks, continues }) = frames.pop() else { unreachable!() };
                            let after = self.block(continuing, join(end, continues), frames);
                            let next = join(entry.clone(), after.clone());
                            if next == entry {
                                break join(breaks, if break_if.is_some() { after } else { State::new() });
                            }
                            entry = next;
                        };
                    }
                    Statement::Break => {
                        let s = std::mem::take(&mut state);
                        match frames.last_mut() {
                            Some(Frame::Loop { breaks, .. } | Frame::Switch { breaks }) => {
                                *breaks = join(std::mem::take(breaks), s)
                            }
                            None => {}
                        }
                    }
                    Statement::Continue => {
                        let s = std::mem::take(&mut state);
                        if let Some(Frame::Loop { continues, .. }) =
                            frames.iter_mut().rev().find(|f| matches!(f, Frame::Loop { .. }))
                        {
                            *continues = join(std::mem::take(continues), s);
                        }
                    }
                    Statement::Return { .. } | Statement::Kill => state = State::new(),
                    _ => {}
                }
            }
            state
        }
    }
    let mut walk =
        Walk { func, values: LocalValues { held: Vec::new(), loads: HashMap::new() }, stores: HashMap::new() };
    let mut state = State::new();
    for (l, var) in func.local_variables.iter() {
        walk.values.held.push(Held::Init(var.init));
        state.insert(l, BTreeSet::from([walk.values.held.len() - 1]));
    }
    walk.block(&func.body, state, &mut Vec::new());
    walk.values
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

/// Whether `block` (not the functions it calls) synchronises or shares work with other invocations of its workgroup
/// or subgroup: a barrier, a `workgroupUniformLoad`, a subgroup operation.
fn workgroup_statements(block: &naga::Block) -> bool {
    let mut found = false;
    each_statement(block, &mut |s| {
        found |= matches!(
            s,
            Statement::ControlBarrier(_)
                | Statement::MemoryBarrier(_)
                | Statement::WorkGroupUniformLoad { .. }
                | Statement::SubgroupBallot { .. }
                | Statement::SubgroupGather { .. }
                | Statement::SubgroupCollectiveOperation { .. }
        );
    });
    found
}

/// Whether entry point `f` takes a built-in that tells where an invocation lies in its workgroup or which workgroup
/// it is (`local_invocation_id`, `local_invocation_index`, `workgroup_id`, `num_workgroups`, the subgroup ids), as
/// a parameter or a member of one.
fn workgroup_builtins(module: &naga::Module, f: &Function) -> bool {
    use naga::{Binding as B, BuiltIn};
    let dependent = |b: &Option<B>| {
        matches!(
            b,
            Some(B::BuiltIn(
                BuiltIn::LocalInvocationId
                    | BuiltIn::LocalInvocationIndex
                    | BuiltIn::WorkGroupId
                    | BuiltIn::NumWorkGroups
                    | BuiltIn::NumSubgroups
                    | BuiltIn::SubgroupId
                    | BuiltIn::SubgroupInvocationId
            ))
        )
    };
    f.arguments.iter().any(|a| {
        dependent(&a.binding)
            || match &module.types[a.ty].inner {
                naga::TypeInner::Struct { members, .. } => members.iter().any(|m| dependent(&m.binding)),
                _ => false,
            }
    })
}

/// Whether what an entry point computes depends on how its index space is cut into workgroups, as its reflection
/// records it ([`EntryPoint::workgroup_dependent`](crate::EntryPoint::workgroup_dependent)): it takes `local_invocation_id`, `local_invocation_index`,
/// `workgroup_id`, `num_workgroups` or a subgroup id, or it (or a function it calls) uses `var<workgroup>` memory, a
/// barrier, `workgroupUniformLoad` or a subgroup operation. Such an entry point gives results that depend on the
/// split unless chunks start at whole workgroups, which celer's `submit` then ensures.
pub fn workgroup_dependent(module: &naga::Module, info: &naga::valid::ModuleInfo, entry_point: usize) -> bool {
    let ep = &module.entry_points[entry_point];
    let mut stack = vec![FnRef::EntryPoint(entry_point)];
    let mut seen = std::collections::HashSet::new();
    let mut found = false;
    while let Some(f) = stack.pop() {
        if seen.insert(f) {
            let body = &function(module, f).body;
            found |= workgroup_statements(body);
            each_statement(body, &mut |s| {
                if let Statement::Call { function, .. } = s {
                    stack.push(FnRef::Function(*function));
                }
            });
        }
    }
    let fi = info.get_entry_point(entry_point);
    found
        || workgroup_builtins(module, &ep.function)
        || module.global_variables.iter().any(|(h, v)| v.space == AddressSpace::WorkGroup && !fi[h].is_empty())
}

/// The bindings entry point `entry_point` indexes with one of its items as `celer_item_Nd` returned it: a call
/// `celer_index(pc.<box>, item)` (in the entry point or a function it calls) whose `item` is the result of a
/// `celer_item_Nd` call in the same function (through `let`s), and whose box is the parameter block's member for
/// binding `k` (member `k + 1`: the chunk comes first); or such a box and item given to a function of the kernel's
/// own that passes both parameters on to `celer_index` as they came, through helpers of any depth
/// (`index_pairs`). `params_binding` is as for [`reflect_with_params`](crate::reflect_with_params). Binding
/// numbers, ascending, each once.
///
/// An item has the entry point's dimensionality; `celer_index` reads it as a cell of the buffer bound there, so a
/// buffer of another dimensionality gets cells the kernel did not mean (a 2D item `(row, col)` on a 1D buffer is
/// cell `row + col`; a 1D item `(i)` on a 2D buffer is cell `(i, 0)`). `celer`'s `submit` refuses such a binding.
/// The item is also followed through a local variable each value of which (that reaches the load) is the item
/// (`var p = item;`). A cell built from the item (`vec3<u32>(item.y, 0u, 0u)`) is not the item and is not listed.
pub fn item_indexed(module: &naga::Module, entry_point: usize, params_binding: Option<u32>) -> Vec<u32> {
    let ep = &module.entry_points[entry_point];
    let item_fn = |h: Handle<Function>| {
        matches!(module.functions[h].name.as_deref(), Some("celer_item_1d" | "celer_item_2d" | "celer_item_3d"))
    };
    let mut out = std::collections::BTreeSet::new();
    let reached = crate::reachable_functions(module, &ep.function);
    let funcs = std::iter::once(&ep.function).chain(reached.iter().map(|&h| &module.functions[h]));
    /// Whether `e` is the item as `celer_item_Nd` returned it, also kept in a local every value of which (that
    /// reaches the load) is the item.
    fn is_item(
        func: &Function,
        locals: &LocalValues,
        item_fn: &dyn Fn(Handle<Function>) -> bool,
        e: Handle<Expression>,
        depth: u32,
    ) -> bool {
        match func.expressions[e] {
            Expression::CallResult(f) => item_fn(f),
            Expression::Load { pointer }
                if depth < 4 && matches!(func.expressions[pointer], Expression::LocalVariable(_)) =>
            {
                locals.loads.get(&e).is_some_and(|held| {
                    !held.is_empty()
                        && held.iter().all(|&i| match locals.held[i] {
                            Held::Init(Some(v)) | Held::Whole(v) => is_item(func, locals, item_fn, v, depth + 1),
                            _ => false,
                        })
                })
            }
            _ => false,
        }
    }
    for func in funcs {
        let locals = local_values(func);
        let from_item = |e: Handle<Expression>| is_item(func, &locals, &item_fn, e, 0);
        each_statement(&func.body, &mut |s| {
            let Statement::Call { function, arguments, .. } = s else { return };
            // celer_index(pc.<box>, item) here, or a function of the kernel's own given both and passing them on.
            for (b, i) in index_pairs(module, *function) {
                if let (Some(&b), Some(&i)) = (arguments.get(b), arguments.get(i)) {
                    if let Some(k) = crate::params_box(module, func, b, params_binding).filter(|_| from_item(i)) {
                        out.insert(k);
                    }
                }
            }
        });
    }
    out.into_iter().collect()
}

/// The (box, item) parameter pairs of function `f` that reach `celer_index` as they came: `(0, 1)` for `celer_index`
/// itself; for a function of the kernel's own, the pairs of its parameters it passes, unchanged, as such a pair to a
/// function it calls (`fn load(b: CelerBox, item: vec3<u32>) -> f32 { return src[celer_index(b, item)]; }` gives
/// (0, 1), and so does a function passing its own two parameters on to `load`). WGSL has no recursion, so the
/// descent ends.
fn index_pairs(module: &naga::Module, f: Handle<Function>) -> Vec<(usize, usize)> {
    let func = &module.functions[f];
    if func.name.as_deref() == Some("celer_index") {
        return vec![(0, 1)];
    }
    let mut pairs = Vec::new();
    each_statement(&func.body, &mut |s| {
        let Statement::Call { function, arguments, .. } = s else { return };
        for (b, i) in index_pairs(module, *function) {
            if let (Some(&b), Some(&i)) = (arguments.get(b), arguments.get(i)) {
                if let (Expression::FunctionArgument(b), Expression::FunctionArgument(i)) =
                    (&func.expressions[b], &func.expressions[i])
                {
                    pairs.push((*b as usize, *i as usize));
                }
            }
        }
    });
    pairs
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
    /// statements as written, every branch in turn, and a call descends into its callee where it stands.
    fn walk(module: &naga::Module, func: &Function, first: &mut std::collections::BTreeMap<u32, bool>) {
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
            Statement::Call { function, .. } => walk(module, &module.functions[*function], first),
            _ => {}
        });
    }
    let ep = &module.entry_points[entry_point].function;
    let mut first = std::collections::BTreeMap::new();
    walk(module, ep, &mut first);
    first.into_iter().filter_map(|(b, read)| read.then_some(b)).collect()
}

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
    let chunk = |e: Handle<Expression>| crate::params_member(module, func, e, params_binding) == Some(0);
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
        let binding = var.binding.as_ref().filter(|b| b.group == 0 && !crate::is_params_block(var, params_binding))?;
        let a = call(index, &["celer_index"])?;
        (a.len() == 2 && crate::params_box(module, func, a[0], params_binding) == Some(binding.binding))
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
                        .filter(|b| b.group == 0 && !crate::is_params_block(var, params_binding))?;
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

/// The bindings entry point `entry_point` indexes with another binding's box, directly or in the functions it
/// calls: pairs `(b, c)`, ascending, where an array access `<binding b>[i]` takes its index `i` from
/// `celer_index(pc.<box of binding c>, …)` (also plus or minus other terms: `dst[i + 1u]`), `c` not `b`. A binding
/// holds its buffer's allocation on the node, whose box differs between buffers (a buffer read with a halo is
/// allocated wider than one written at the chunk), so such an index lands on another cell than the kernel means
/// wherever the boxes differ: the porter's `let i = celer_index(pc.src, item); dst[i] = 2.0 * src[i];` computes the
/// right cells on one rank and shifted ones on two. `params_binding` is as for
/// [`reflect_with_params`](crate::reflect_with_params). The index is followed through `let`s, local variables
/// (each value stored to one that reaches the load, [`local_values`]) and function parameters (the arguments of
/// each call, `fn put(i: u32, v: f32) { dst[i] = v; }` given `celer_index(pc.src, item)`). Where values meet that
/// way (a `var` stored twice, a function called twice), a box among them is listed only if the binding's own box
/// is not also among them: a `var i` reused for each binding's index is taken to be right where it indexes.
/// Conservative: an index built otherwise (a product, a function's return value, a pointer parameter) is not
/// followed.
pub fn cross_indexed(module: &naga::Module, entry_point: usize, params_binding: Option<u32>) -> Vec<(u32, u32)> {
    let pairs = indexed_with_boxes(module, entry_point, params_binding);
    pairs.into_iter().filter(|&(b, m)| m >= 1 && m - 1 != b).map(|(b, m)| (b, m - 1)).collect()
}

/// The bindings entry point `entry_point` indexes with the chunk's box, `<binding>[celer_index(pc.chunk, …)]`
/// (also plus or minus other terms, and in the kernel's own functions), ascending, found as [`cross_indexed`]
/// finds other bindings' boxes. The chunk's box is the part of the index space the dispatch runs, not the cells a
/// binding holds: a buffer's allocation on a node is the bounding box of what the node's commands touch (a halo,
/// a later fence of the whole buffer), so such an index lands on other cells wherever the two differ (on the
/// second of two ranks, every cell of its half). The build refuses it.
pub fn chunk_indexed(module: &naga::Module, entry_point: usize, params_binding: Option<u32>) -> Vec<u32> {
    let pairs = indexed_with_boxes(module, entry_point, params_binding);
    let mut out: Vec<u32> = pairs.into_iter().filter_map(|(b, m)| (m == 0).then_some(b)).collect();
    out.dedup();
    out
}

/// The `(binding, member)` pairs of [`cross_indexed`] and [`chunk_indexed`]: an array access `<binding>[i]` whose
/// index is built from `celer_index(pc.<member>, …)`, member 0 the chunk and `m` the box of binding `m - 1`.
fn indexed_with_boxes(module: &naga::Module, entry_point: usize, params_binding: Option<u32>) -> Vec<(u32, u32)> {
    use std::collections::{BTreeSet, HashMap, HashSet};
    /// The members whose boxes index expression `e` of `func` is built from, through + and -: `boxes` gives those
    /// of the celer_index calls by their results. With `locals`, also through the values stored to a local
    /// variable, and the members `args` gives the function's parameters (as the call being followed passes them).
    struct Sources<'f> {
        func: &'f Function,
        boxes: &'f HashMap<Handle<Expression>, u32>,
        locals: Option<(&'f LocalValues, &'f [BTreeSet<u32>])>,
        /// The handles and entries of `held` on the path being followed (a loop's local stored from itself).
        path: HashSet<(bool, usize)>,
        /// The steps left ([`MAX_STEPS`]): a value shared along many paths is not followed past them.
        steps: u32,
    }
    impl Sources<'_> {
        fn of(&mut self, e: Handle<Expression>, found: &mut BTreeSet<u32>) {
            self.steps = self.steps.saturating_sub(1);
            if self.steps == 0 || !self.path.insert((false, e.index())) {
                return;
            }
            if let Some(&c) = self.boxes.get(&e) {
                found.insert(c);
            }
            match (&self.func.expressions[e], self.locals) {
                (
                    &Expression::Binary { op: naga::BinaryOperator::Add | naga::BinaryOperator::Subtract, left, right },
                    _,
                ) => {
                    self.of(left, found);
                    self.of(right, found);
                }
                (&Expression::FunctionArgument(k), Some((_, args))) => {
                    found.extend(args.get(k as usize).into_iter().flatten());
                }
                (Expression::Load { .. }, Some((locals, _))) => {
                    for &i in locals.loads.get(&e).into_iter().flatten() {
                        self.held(locals, i, found);
                    }
                }
                _ => {}
            }
            self.path.remove(&(false, e.index()));
        }
        fn held(&mut self, locals: &LocalValues, i: usize, found: &mut BTreeSet<u32>) {
            if self.steps == 0 || !self.path.insert((true, i)) {
                return;
            }
            match &locals.held[i] {
                Held::Init(v) => v.iter().for_each(|&v| self.of(v, found)),
                Held::Whole(v) => self.of(*v, found),
                Held::Part { .. } => {}
            }
            self.path.remove(&(true, i));
        }
    }
    /// Notes the pairs of `func` into `out` (`args`: the members of its parameters), then follows each call to a
    /// function of the kernel's own with the members of its arguments (once per function and members).
    fn visit(
        module: &naga::Module,
        func: &Function,
        args: &[BTreeSet<u32>],
        params_binding: Option<u32>,
        seen: &mut HashSet<(Handle<Function>, Vec<BTreeSet<u32>>)>,
        out: &mut BTreeSet<(u32, u32)>,
    ) {
        let exprs = &func.expressions;
        // The celer_index calls of `func`, by the handle of their result: the parameter block member whose box they
        // are given (0 the chunk, m the box of binding m - 1).
        let mut boxes: HashMap<Handle<Expression>, u32> = HashMap::new();
        let mut calls = Vec::new();
        each_statement(&func.body, &mut |s| {
            if let Statement::Call { function, arguments, result } = s {
                let name = module.functions[*function].name.as_deref().unwrap_or("");
                if name == "celer_index" && arguments.len() == 2 {
                    let boxed = crate::params_member(module, func, arguments[0], params_binding);
                    if let (Some(r), Some(c)) = (result, boxed) {
                        boxes.insert(*r, c);
                    }
                } else if !name.starts_with("celer_") {
                    calls.push((*function, arguments.clone()));
                }
            }
        });
        let locals = local_values(func);
        let mut direct = Sources { func, boxes: &boxes, locals: None, path: HashSet::new(), steps: MAX_STEPS };
        let mut followed =
            Sources { func, boxes: &boxes, locals: Some((&locals, args)), path: HashSet::new(), steps: MAX_STEPS };
        for (_, e) in exprs.iter() {
            let Expression::Access { base, index } = *e else { continue };
            let Expression::GlobalVariable(g) = exprs[base] else { continue };
            let var = &module.global_variables[g];
            let Some(b) = var.binding.as_ref().filter(|b| b.group == 0 && !crate::is_params_block(var, params_binding))
            else {
                continue;
            };
            // The index's own expression, as written: every box it names.
            let mut found = BTreeSet::new();
            direct.steps = MAX_STEPS;
            direct.of(index, &mut found);
            // Through locals and parameters as well, where values from several stores or calls meet: the boxes
            // it may be built from, unless one of them is the binding's own (a `var` reused for each binding's
            // index is then taken to be right where it indexes).
            let mut reached = BTreeSet::new();
            followed.steps = MAX_STEPS;
            followed.of(index, &mut reached);
            if !reached.contains(&(b.binding + 1)) {
                found.extend(reached);
            }
            out.extend(found.into_iter().map(|m| (b.binding, m)));
        }
        for (f, arguments) in calls {
            let passed: Vec<BTreeSet<u32>> = arguments
                .iter()
                .map(|&a| {
                    let mut found = BTreeSet::new();
                    followed.steps = MAX_STEPS;
                    followed.of(a, &mut found);
                    found
                })
                .collect();
            if seen.insert((f, passed.clone())) {
                visit(module, &module.functions[f], &passed, params_binding, seen, out);
            }
        }
    }
    let mut out = BTreeSet::new();
    visit(module, &module.entry_points[entry_point].function, &[], params_binding, &mut HashSet::new(), &mut out);
    out.into_iter().collect()
}

/// The bindings entry point `entry_point` indexes with its item's coordinates in the index space, or its invocation
/// id, without `celer_index`, directly or in the functions it calls, ascending: an array access `<binding>[i]` whose
/// index `i` is computed (through arithmetic, casts and vector components) from a `celer_item_Nd` result or the
/// entry point's `global_invocation_id`, and calls no `celer_index` (`dst[item.x]`, `out[item.x * n + item.y]`, as
/// a CUDA port indexes its arrays with the global thread index). A binding holds its buffer's allocation on the
/// node, which starts at the origin only where the node touches the whole buffer: elsewhere (the second rank's half)
/// such an index lands past the cells the kernel means. `params_binding` is as for
/// [`reflect_with_params`](crate::reflect_with_params). The index is followed through `let`s, local variables
/// (each value stored to one that reaches the load, [`local_values`]: `var i = item.x; dst[i] = …`) and function
/// parameters (the arguments of each call, `fn put(i: u32, v: f32) { dst[i] = v; }` given `item.x`); an index
/// whose values also include a `celer_index` result is not listed. Conservative: a function's return value, a
/// value passed through a pointer parameter or a workgroup variable is not followed.
pub fn global_indexed(module: &naga::Module, entry_point: usize, params_binding: Option<u32>) -> Vec<u32> {
    use std::collections::{BTreeSet, HashMap, HashSet};
    /// Whether a value is computed from an item or the invocation id (`.0`), and whether it calls celer_index (`.1`).
    type Origin = (bool, bool);
    /// A value of the function being visited: an expression, or an entry of its [`LocalValues::held`].
    #[derive(Clone, Copy, PartialEq, Eq, Hash)]
    enum Node {
        Expr(Handle<Expression>),
        Held(usize),
    }
    struct Values<'f> {
        module: &'f naga::Module,
        func: &'f Function,
        locals: LocalValues,
        /// The origins of the function's parameters, as the call being followed passes them.
        args: &'f [Origin],
        /// Each value's origin once known; `None` while it is being found (a cycle through a loop's local).
        memo: HashMap<Node, Option<Origin>>,
    }
    impl Values<'_> {
        fn origin(&mut self, node: Node) -> Origin {
            match self.memo.get(&node) {
                Some(Some(o)) => return *o,
                Some(None) => return (false, false),
                None => {}
            }
            self.memo.insert(node, None);
            let of = |v: &mut Self, nodes: &[Node]| {
                nodes.iter().fold((false, false), |acc, &n| {
                    let o = v.origin(n);
                    (acc.0 || o.0, acc.1 || o.1)
                })
            };
            let o = match node {
                Node::Held(i) => match self.locals.held[i].clone() {
                    Held::Init(None) => (false, false),
                    Held::Init(Some(v)) | Held::Whole(v) => of(self, &[Node::Expr(v)]),
                    Held::Part { value, prior, .. } => {
                        let mut nodes = vec![Node::Expr(value)];
                        nodes.extend(prior.into_iter().map(Node::Held));
                        of(self, &nodes)
                    }
                },
                Node::Expr(e) => match self.func.expressions[e] {
                    Expression::CallResult(f) => match self.module.functions[f].name.as_deref() {
                        Some("celer_item_1d" | "celer_item_2d" | "celer_item_3d") => (true, false),
                        Some("celer_index") => (false, true),
                        _ => (false, false),
                    },
                    Expression::FunctionArgument(k) => self.args.get(k as usize).copied().unwrap_or_default(),
                    Expression::AccessIndex { base, .. } | Expression::Swizzle { vector: base, .. } => {
                        of(self, &[Node::Expr(base)])
                    }
                    Expression::As { expr, .. } | Expression::Unary { expr, .. } => of(self, &[Node::Expr(expr)]),
                    Expression::Binary { left, right, .. } => of(self, &[Node::Expr(left), Node::Expr(right)]),
                    Expression::Load { .. } => {
                        let held: Vec<Node> =
                            self.locals.loads.get(&e).into_iter().flatten().map(|&i| Node::Held(i)).collect();
                        of(self, &held)
                    }
                    _ => (false, false),
                },
            };
            self.memo.insert(node, Some(o));
            o
        }
    }
    /// Notes the bindings `func` indexes so into `out`, with `args` the origins of its parameters; then follows
    /// each call to a function of the kernel's own with the origins of its arguments (once per function and
    /// origins: WGSL has no recursion, so the descent ends).
    fn visit(
        module: &naga::Module,
        func: &Function,
        args: &[Origin],
        params_binding: Option<u32>,
        seen: &mut HashSet<(Handle<Function>, Vec<Origin>)>,
        out: &mut BTreeSet<u32>,
    ) {
        let mut values = Values { module, func, locals: local_values(func), args, memo: HashMap::new() };
        for (_, e) in func.expressions.iter() {
            let Expression::Access { base, index } = *e else { continue };
            let Expression::GlobalVariable(g) = func.expressions[base] else { continue };
            let var = &module.global_variables[g];
            let Some(b) = var.binding.as_ref().filter(|b| b.group == 0 && !crate::is_params_block(var, params_binding))
            else {
                continue;
            };
            if let (true, false) = values.origin(Node::Expr(index)) {
                out.insert(b.binding);
            }
        }
        let mut calls = Vec::new();
        each_statement(&func.body, &mut |s| {
            if let Statement::Call { function, arguments, .. } = s {
                if !module.functions[*function].name.as_deref().unwrap_or("").starts_with("celer_") {
                    calls.push((*function, arguments.clone()));
                }
            }
        });
        for (f, arguments) in calls {
            let passed: Vec<Origin> = arguments.iter().map(|&a| values.origin(Node::Expr(a))).collect();
            if seen.insert((f, passed.clone())) {
                visit(module, &module.functions[f], &passed, params_binding, seen, out);
            }
        }
    }
    let func = &module.entry_points[entry_point].function;
    // The entry point's invocation id is an item's coordinates in the index space.
    let args: Vec<Origin> = func
        .arguments
        .iter()
        .map(|a| (matches!(a.binding, Some(naga::Binding::BuiltIn(naga::BuiltIn::GlobalInvocationId))), false))
        .collect();
    let mut out = BTreeSet::new();
    visit(module, func, &args, params_binding, &mut HashSet::new(), &mut out);
    out.into_iter().collect()
}

/// The cells around its item at which entry point `entry_point` indexes each binding's box, directly or through
/// the kernel's own functions: `(box, offsets)`, one entry per binding indexed so, ascending, where `offsets` lists
/// every distinct constant offset `o` (dimension 0 in `.x`) of a `celer_index(pc.<box>, item + o)` call, `item` as
/// `celer_item_Nd` returned it and `o` a `vec3<u32>` of constants added or subtracted (`item - vec3<u32>(1u, 0u,
/// 0u)`), also where a function of the kernel's own is given such a cell and indexes with its parameter (celer's
/// `at(item - vec3<u32>(1u, 0u, 0u), c)` idiom), to a small depth; and `<binding>[i ± k]` with `i =
/// celer_index(pc.<binding>, …)` of such a cell, the flat index's neighbour `k` cells along the item's last dimension
/// (the CUDA port's `src[i - 1u] + src[i + 1u]`). A cell is also followed where it is composed of the item's
/// components, each plus or minus a constant (`vec3<u32>(item.x + 1u, item.y, item.z)`; past the item's
/// dimensionality a `0u` stands for its component), and through local variables (each value stored to one that
/// reaches the load, [`local_values`]; a component stored alone, `var p = item; p.x = p.x + 1u;`, replaces that
/// component of what `p` held), also as a flat index kept in a `var`. An offset of zero (the item itself) is not
/// listed. `params_binding` is as for [`reflect_with_params`](crate::reflect_with_params). Conservative: a cell
/// built otherwise (from a loop counter, a pushed scalar, a function's return value, a component handed alone
/// to a function) is not followed, and a step taken in a loop (`p.x = p.x + 1u` in a loop body) is counted once,
/// not per pass. `celer`'s
/// `submit` refuses a task whose range mapper for that binding (`one_to_one`, a neighbourhood, a slice) does not
/// declare those cells: the kernel would read or store cells the chunk's region does not hold, which come from
/// another rank's last write only where declared.
pub fn item_offsets(
    module: &naga::Module,
    entry_point: usize,
    params_binding: Option<u32>,
) -> Vec<(u32, Vec<[i64; 3]>)> {
    use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
    type Offsets = BTreeSet<[i64; 3]>;
    /// The most offsets one value is taken to have (the combinations of a composed cell's components).
    const MAX_OFFSETS: usize = 64;
    /// The integer literal (or zero) an expression is.
    fn scalar(exprs: &naga::Arena<Expression>, e: Handle<Expression>) -> Option<i64> {
        match exprs[e] {
            Expression::Literal(naga::Literal::U32(v)) => Some(i64::from(v)),
            Expression::Literal(naga::Literal::I32(v)) => Some(i64::from(v)),
            Expression::Literal(naga::Literal::AbstractInt(v)) => Some(v),
            Expression::ZeroValue(_) => Some(0),
            _ => None,
        }
    }
    /// The constant `vec3` an expression is (a composed vector of literals, a splat, zero).
    fn constant(exprs: &naga::Arena<Expression>, e: Handle<Expression>) -> Option<[i64; 3]> {
        match exprs[e] {
            Expression::Compose { ref components, .. } if components.len() == 3 => {
                Some([scalar(exprs, components[0])?, scalar(exprs, components[1])?, scalar(exprs, components[2])?])
            }
            Expression::Splat { value, .. } => scalar(exprs, value).map(|v| [v, v, v]),
            Expression::ZeroValue(_) => Some([0, 0, 0]),
            _ => None,
        }
    }
    /// What a value of `func` is.
    #[derive(Clone, Copy, PartialEq, Eq, Hash)]
    enum Node {
        /// The offsets from the item of a cell.
        Cell(Handle<Expression>),
        /// `k` with the value `item[d] + k`.
        Component(Handle<Expression>, usize),
        /// The offsets of an entry of a vector local's `held`, or its component `d`.
        HeldCell(usize),
        HeldComponent(usize, usize),
    }
    /// The cells around the item that the values of function `func` are.
    struct Cells<'f> {
        module: &'f naga::Module,
        func: &'f Function,
        locals: LocalValues,
        /// The offsets of the function's parameters that hold cells, as the call being followed passes them.
        args: &'f HashMap<u32, Offsets>,
        /// The item's dimensionality: its components past it are 0.
        dims: usize,
        /// The values on the path being followed (a loop's local stored from itself is not followed round).
        path: HashSet<Node>,
        /// The steps left ([`MAX_STEPS`]): a value shared along many paths is not followed past them.
        steps: u32,
    }
    impl Cells<'_> {
        fn enter(&mut self, node: Node) -> bool {
            self.steps = self.steps.saturating_sub(1);
            self.steps > 0 && self.path.insert(node)
        }
        /// The offsets from the item of cell `e`: the item, a parameter given cells, a cell plus or minus a
        /// constant vector, a vector composed of the item's components (each plus or minus a constant; past the
        /// item's dimensionality a zero), a vector local (every value that reaches the load, a component stored
        /// alone over what it held).
        fn cell(&mut self, e: Handle<Expression>) -> Offsets {
            let node = Node::Cell(e);
            if !self.enter(node) {
                return Offsets::new();
            }
            let exprs = &self.func.expressions;
            let mut out = Offsets::new();
            match exprs[e] {
                Expression::CallResult(f)
                    if matches!(
                        self.module.functions[f].name.as_deref(),
                        Some("celer_item_1d" | "celer_item_2d" | "celer_item_3d")
                    ) =>
                {
                    out.insert([0, 0, 0]);
                }
                Expression::FunctionArgument(k) => out.extend(self.args.get(&k).into_iter().flatten()),
                Expression::Binary {
                    op: op @ (naga::BinaryOperator::Add | naga::BinaryOperator::Subtract),
                    left,
                    right,
                } => {
                    let sign = if op == naga::BinaryOperator::Add { 1 } else { -1 };
                    if let Some(k) = constant(exprs, right) {
                        out.extend(self.cell(left).into_iter().map(|b| [0, 1, 2].map(|d| b[d] + sign * k[d])));
                    }
                    if let (1, Some(k)) = (sign, constant(exprs, left)) {
                        out.extend(self.cell(right).into_iter().map(|b| [0, 1, 2].map(|d| b[d] + k[d])));
                    }
                }
                Expression::Compose { ref components, .. } if components.len() == 3 => {
                    let components = components.clone();
                    let mut combined = vec![[0i64; 3]];
                    for (d, &c) in components.iter().enumerate() {
                        let mut ks = self.component(c, d);
                        if d >= self.dims && scalar(&self.func.expressions, c) == Some(0) {
                            ks.insert(0);
                        }
                        combined = combined
                            .iter()
                            .flat_map(|o| {
                                ks.iter().map(move |&k| {
                                    let mut o = *o;
                                    o[d] = k;
                                    o
                                })
                            })
                            .take(MAX_OFFSETS)
                            .collect();
                    }
                    out.extend(combined);
                }
                Expression::Load { pointer } if matches!(exprs[pointer], Expression::LocalVariable(_)) => {
                    for i in self.locals.loads.get(&e).cloned().into_iter().flatten() {
                        out.extend(self.held_cell(i));
                    }
                }
                _ => {}
            }
            self.path.remove(&node);
            out
        }
        /// The `k` with which scalar `e` is the item's component `d` plus `k`: a component of a cell, plus or
        /// minus a constant, converted between `u32` and `i32`, through a local.
        fn component(&mut self, e: Handle<Expression>, d: usize) -> BTreeSet<i64> {
            let node = Node::Component(e, d);
            if !self.enter(node) {
                return BTreeSet::new();
            }
            let exprs = &self.func.expressions;
            let mut out = BTreeSet::new();
            match exprs[e] {
                Expression::AccessIndex { base, index } if index as usize == d => out = self.vector_component(base, d),
                Expression::Binary {
                    op: op @ (naga::BinaryOperator::Add | naga::BinaryOperator::Subtract),
                    left,
                    right,
                } => {
                    let sign = if op == naga::BinaryOperator::Add { 1 } else { -1 };
                    if let Some(k) = scalar(exprs, right) {
                        out.extend(self.component(left, d).into_iter().map(|b| b + sign * k));
                    }
                    if let (1, Some(k)) = (sign, scalar(exprs, left)) {
                        out.extend(self.component(right, d).into_iter().map(|b| b + k));
                    }
                }
                Expression::As { expr, kind: naga::ScalarKind::Uint | naga::ScalarKind::Sint, .. } => {
                    out = self.component(expr, d);
                }
                Expression::Load { pointer } => {
                    let held: Vec<usize> = self.locals.loads.get(&e).cloned().into_iter().flatten().collect();
                    match exprs[pointer] {
                        // A scalar local.
                        Expression::LocalVariable(_) => {
                            for i in held {
                                if let Held::Init(Some(v)) | Held::Whole(v) = self.locals.held[i] {
                                    out.extend(self.component(v, d));
                                }
                            }
                        }
                        // A vector local's component.
                        Expression::AccessIndex { base, index }
                            if index as usize == d && matches!(exprs[base], Expression::LocalVariable(_)) =>
                        {
                            for i in held {
                                out.extend(self.held_component(i, d));
                            }
                        }
                        _ => {}
                    }
                }
                _ => {}
            }
            self.path.remove(&node);
            out
        }
        /// Component `d` of vector `v`: one composed, or a cell's.
        fn vector_component(&mut self, v: Handle<Expression>, d: usize) -> BTreeSet<i64> {
            match self.func.expressions[v] {
                Expression::Compose { ref components, .. } if components.len() == 3 => {
                    let c = components[d];
                    self.component(c, d)
                }
                _ => self.cell(v).into_iter().map(|o| o[d]).collect(),
            }
        }
        fn held_cell(&mut self, i: usize) -> Offsets {
            let node = Node::HeldCell(i);
            if !self.enter(node) {
                return Offsets::new();
            }
            let out = match self.locals.held[i].clone() {
                Held::Init(None) | Held::Part { field: None, .. } => Offsets::new(),
                Held::Init(Some(v)) | Held::Whole(v) => self.cell(v),
                Held::Part { field: Some(c), value, prior } => {
                    let c = c as usize;
                    let ks = if c < 3 { self.component(value, c) } else { BTreeSet::new() };
                    let mut out = Offsets::new();
                    for p in prior {
                        for o in self.held_cell(p) {
                            out.extend(ks.iter().map(|&k| {
                                let mut o = o;
                                o[c] = k;
                                o
                            }));
                        }
                    }
                    out.into_iter().take(MAX_OFFSETS).collect()
                }
            };
            self.path.remove(&node);
            out
        }
        fn held_component(&mut self, i: usize, d: usize) -> BTreeSet<i64> {
            let node = Node::HeldComponent(i, d);
            if !self.enter(node) {
                return BTreeSet::new();
            }
            let out = match self.locals.held[i].clone() {
                Held::Init(None) | Held::Part { field: None, .. } => BTreeSet::new(),
                Held::Init(Some(v)) | Held::Whole(v) => self.vector_component(v, d),
                Held::Part { field: Some(c), value, .. } if c as usize == d => self.component(value, d),
                Held::Part { prior, .. } => prior.into_iter().flat_map(|p| self.held_component(p, d)).collect(),
            };
            self.path.remove(&node);
            out
        }
        /// The celer_index calls (`cells`: by result, the box's binding and the cell's offsets) index `e` is, also
        /// through a local it was stored to.
        fn indices(
            &self,
            cells: &HashMap<Handle<Expression>, (u32, Offsets)>,
            e: Handle<Expression>,
            depth: u32,
        ) -> Vec<(u32, Offsets)> {
            if let Some(c) = cells.get(&e) {
                return vec![c.clone()];
            }
            let mut out = Vec::new();
            if let (Expression::Load { pointer }, true) = (&self.func.expressions[e], depth < 4) {
                if matches!(self.func.expressions[*pointer], Expression::LocalVariable(_)) {
                    for &i in self.locals.loads.get(&e).into_iter().flatten() {
                        if let Held::Init(Some(v)) | Held::Whole(v) = self.locals.held[i] {
                            out.extend(self.indices(cells, v, depth + 1));
                        }
                    }
                }
            }
            out
        }
    }
    /// Notes the offsets at which `func` indexes each box; `args` gives the offsets of the parameters that hold
    /// cells around the item.
    /// `last`: the item's last dimension, along which the flat index of a row-major cell runs.
    fn visit(
        module: &naga::Module,
        func: &Function,
        args: &HashMap<u32, Offsets>,
        params_binding: Option<u32>,
        (depth, last): (u32, usize),
        out: &mut BTreeMap<u32, Offsets>,
    ) {
        let exprs = &func.expressions;
        let mut items = args.values().any(|o| !o.is_empty());
        each_statement(&func.body, &mut |s| {
            if let Statement::Call { function, .. } = s {
                let name = module.functions[*function].name.as_deref().unwrap_or("");
                items |= matches!(name, "celer_item_1d" | "celer_item_2d" | "celer_item_3d");
            }
        });
        if !items {
            return;
        }
        let locals = local_values(func);
        let mut values = Cells { module, func, locals, args, dims: last + 1, path: HashSet::new(), steps: MAX_STEPS };
        // The celer_index calls at a known cell, by the handle of their result: the box's binding and the offsets.
        let mut cells: HashMap<Handle<Expression>, (u32, Offsets)> = HashMap::new();
        let mut calls = Vec::new();
        each_statement(&func.body, &mut |s| {
            let Statement::Call { function, arguments, result } = s else { return };
            let name = module.functions[*function].name.as_deref().unwrap_or("");
            if name == "celer_index" && arguments.len() == 2 {
                if let Some(b) = crate::params_box(module, func, arguments[0], params_binding) {
                    values.steps = MAX_STEPS;
                    let offsets = values.cell(arguments[1]);
                    if offsets.is_empty() {
                        return;
                    }
                    out.entry(b).or_default().extend(offsets.iter().filter(|o| **o != [0, 0, 0]));
                    if let Some(r) = result {
                        cells.insert(*r, (b, offsets));
                    }
                }
            } else if !name.starts_with("celer_") && depth < 4 {
                calls.push((*function, arguments.clone()));
            }
        });
        for (f, arguments) in calls {
            let passed: HashMap<u32, Offsets> = (0..arguments.len() as u32)
                .map(|k| {
                    values.steps = MAX_STEPS;
                    (k, values.cell(arguments[k as usize]))
                })
                .filter(|(_, o)| !o.is_empty())
                .collect();
            if !passed.is_empty() {
                visit(module, &module.functions[f], &passed, params_binding, (depth + 1, last), out);
            }
        }
        // `<b>[i ± k]` with `i = celer_index(pc.<b>, cell)`: the flat index's neighbour, k cells along the last
        // dimension (the CUDA port's `src[i - 1u] + src[i + 1u]`).
        for (_, e) in exprs.iter() {
            let Expression::Access { base, index } = *e else { continue };
            let Expression::GlobalVariable(g) = exprs[base] else { continue };
            let Some(binding) = module.global_variables[g].binding.as_ref().filter(|b| b.group == 0) else { continue };
            let Expression::Binary { op, left, right } = exprs[index] else { continue };
            let literal = |e: Handle<Expression>| match exprs[e] {
                Expression::ZeroValue(_) => None,
                _ => scalar(exprs, e),
            };
            let found = match op {
                naga::BinaryOperator::Add => match (values.indices(&cells, left, 0), literal(right)) {
                    (c, Some(k)) if !c.is_empty() => c.into_iter().map(|c| (c, k)).collect(),
                    _ => match literal(left) {
                        Some(k) => values.indices(&cells, right, 0).into_iter().map(|c| (c, k)).collect(),
                        None => Vec::new(),
                    },
                },
                naga::BinaryOperator::Subtract => match literal(right) {
                    Some(k) => values.indices(&cells, left, 0).into_iter().map(|c| (c, -k)).collect(),
                    None => Vec::new(),
                },
                _ => Vec::new(),
            };
            for ((b, offsets), k) in found {
                if b == binding.binding && k != 0 {
                    for mut o in offsets {
                        o[last] += k;
                        if o != [0, 0, 0] {
                            out.entry(b).or_default().insert(o);
                        }
                    }
                }
            }
        }
    }
    let mut out = BTreeMap::new();
    let func = &module.entry_points[entry_point].function;
    // The item's last dimension: 0 for a 1D kernel (and one without items).
    let last = crate::reachable_functions(module, func)
        .into_iter()
        .find_map(|h| match module.functions[h].name.as_deref() {
            Some("celer_item_2d") => Some(1),
            Some("celer_item_3d") => Some(2),
            _ => None,
        })
        .unwrap_or(0);
    visit(module, func, &HashMap::new(), params_binding, (0, last), &mut out);
    out.into_iter().filter(|(_, o)| !o.is_empty()).map(|(b, o)| (b, o.into_iter().collect())).collect()
}

/// The `@group(0)` bindings whose `arrayLength` entry point `entry_point` takes, directly or in the functions it
/// calls, ascending. A binding holds its buffer's allocation on the node (the cells the node's commands touch), so
/// its length is not the buffer's extent and changes with the rank: the build refuses it in a task kernel.
pub fn array_lengths(module: &naga::Module, entry_point: usize) -> Vec<u32> {
    let ep = &module.entry_points[entry_point].function;
    let funcs =
        std::iter::once(ep).chain(crate::reachable_functions(module, ep).into_iter().map(|h| &module.functions[h]));
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
