//! Bindings an entry point indexes in ways right on one rank only: with its item on a buffer of another
//! dimensionality ([`item_indexed`]), with another binding's box or the chunk's ([`cross_indexed`],
//! [`chunk_indexed`]), with the item's coordinates without `celer_index` ([`global_indexed`]). The index is followed
//! through `let`s, locals ([`local_values`]) and the parameters of the kernel's own functions.

use std::collections::HashMap;

use naga::{Expression, Function, Handle, Statement};

use super::locals::{local_values, Held, LocalValues};
use super::{own_calls, returns, Call, MAX_CALL_DEPTH, MAX_STEPS};
use crate::ir::each_statement;

/// The bindings entry point `entry_point` indexes with one of its items as `celer_item_Nd` returned it: a call
/// `celer_index(pc.<box>, item)` (in the entry point or a function it calls) whose `item` is the result of a
/// `celer_item_Nd` call in the same function (through `let`s), and whose box is the parameter block's member for
/// binding `k` (member `k + 1`: the chunk comes first); or such a box and item given to a function of the kernel's
/// own that passes both parameters on to `celer_index` as they came, through helpers of any depth
/// (`index_pairs`), or the item alone given to one that indexes with it a box it names itself
/// (`fn at(c: vec3<u32>) -> f32 { return src[celer_index(pc.src, c)]; }` given `item`). `params_binding` is as for [`reflect_with_params`](crate::reflect_with_params). Binding
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
    let reached = crate::ir::reachable_functions(module, &ep.function);
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
    let mut pairs = HashMap::new();
    for func in funcs {
        let locals = local_values(func);
        let from_item = |e: Handle<Expression>| is_item(func, &locals, &item_fn, e, 0);
        each_statement(&func.body, &mut |s| {
            let Statement::Call { function, arguments, .. } = s else { return };
            // celer_index(pc.<box>, item) here, or a function of the kernel's own given the item (and the box, or
            // naming it itself) and passing them on.
            for (b, i) in index_pairs(module, *function, params_binding, &mut pairs) {
                if !arguments.get(i).is_some_and(|&i| from_item(i)) {
                    continue;
                }
                let k = match b {
                    IndexBox::Param(b) => {
                        arguments.get(b).and_then(|&b| crate::params::params_box(module, func, b, params_binding))
                    }
                    IndexBox::Binding(k) => Some(k),
                };
                out.extend(k);
            }
        });
    }
    out.into_iter().collect()
}

/// The first call `celer_item_Nd(b, …)` entry point `entry_point` makes, directly or in the functions it calls,
/// whose box `b` is a binding's (the parameter block's member `m >= 1`) rather than the chunk's: the function's
/// name and `m`. The box is followed through `let`s, local variables (a value stored to one that reaches the call,
/// `var b = pc.src;`) and the parameters of the kernel's own functions (the arguments of each call). Items taken
/// from a binding's box start where its allocation does, not where the chunk does: the build refuses them
/// ([`ReflectError::ItemFromBox`](crate::ReflectError::ItemFromBox)).
pub(crate) fn item_from_box(
    module: &naga::Module,
    entry_point: usize,
    params_binding: Option<u32>,
) -> Option<(String, u32)> {
    use std::collections::{BTreeSet, HashSet};
    /// The parameter block members box `e` of `func` may be (`args`: those its parameters may be), through locals.
    fn members(
        module: &naga::Module,
        func: &Function,
        locals: &LocalValues,
        args: &[BTreeSet<u32>],
        params_binding: Option<u32>,
        e: Handle<Expression>,
        depth: u32,
    ) -> BTreeSet<u32> {
        if let Some(m) = crate::params::params_member(module, func, e, params_binding) {
            return BTreeSet::from([m]);
        }
        match func.expressions[e] {
            Expression::FunctionArgument(k) => args.get(k as usize).cloned().unwrap_or_default(),
            Expression::Load { pointer }
                if depth < 4 && matches!(func.expressions[pointer], Expression::LocalVariable(_)) =>
            {
                let mut out = BTreeSet::new();
                for &i in locals.loads.get(&e).into_iter().flatten() {
                    if let Held::Init(Some(v)) | Held::Whole(v) = locals.held[i] {
                        out.extend(members(module, func, locals, args, params_binding, v, depth + 1));
                    }
                }
                out
            }
            _ => BTreeSet::new(),
        }
    }
    /// The first such call in `func` or the kernel's functions it calls (`args` as for `members`).
    fn visit(
        module: &naga::Module,
        func: &Function,
        args: &[BTreeSet<u32>],
        params_binding: Option<u32>,
        seen: &mut HashSet<(Handle<Function>, Vec<BTreeSet<u32>>)>,
    ) -> Option<(String, u32)> {
        let locals = local_values(func);
        let mut calls = Vec::new();
        each_statement(&func.body, &mut |s| {
            if let Statement::Call { function, arguments, .. } = s {
                calls.push((*function, arguments.clone()));
            }
        });
        let mut own = Vec::new();
        for (f, arguments) in calls {
            let name = module.functions[f].name.as_deref().unwrap_or("");
            let members = |e| members(module, func, &locals, args, params_binding, e, 0);
            if matches!(name, "celer_item_1d" | "celer_item_2d" | "celer_item_3d") {
                if let Some(m) = arguments.first().and_then(|&b| members(b).into_iter().find(|&m| m >= 1)) {
                    return Some((name.to_string(), m));
                }
            } else if !name.starts_with("celer_") {
                own.push((f, arguments.iter().map(|&a| members(a)).collect::<Vec<_>>()));
            }
        }
        for (f, passed) in own {
            if seen.insert((f, passed.clone())) {
                if let Some(found) = visit(module, &module.functions[f], &passed, params_binding, seen) {
                    return Some(found);
                }
            }
        }
        None
    }
    visit(module, &module.entry_points[entry_point].function, &[], params_binding, &mut HashSet::new())
}

/// The box a function indexes its item parameter with: one of its parameters, or a binding's box it names itself
/// (`pc.src`, binding 0).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum IndexBox {
    Param(usize),
    Binding(u32),
}

/// The (box, item parameter) pairs of function `f` that reach `celer_index` as they came: `(Param(0), 1)` for
/// `celer_index` itself; for a function of the kernel's own, the item parameters it passes, unchanged, to a
/// function it calls as such a pair, with the box: its own parameter passed unchanged beside it
/// (`fn load(b: CelerBox, item: vec3<u32>) -> f32 { return src[celer_index(b, item)]; }` gives `(Param(0), 1)`,
/// and so does a function passing its own two parameters on to `load`), or the parameter block's member it names
/// (`fn at(c: vec3<u32>) -> f32 { return src[celer_index(pc.src, c)]; }` gives `(Binding(0), 0)`). WGSL has no
/// recursion, so the descent ends; `known` keeps each function's pairs, so that one called many times over is
/// read once.
fn index_pairs(
    module: &naga::Module,
    f: Handle<Function>,
    params_binding: Option<u32>,
    known: &mut HashMap<Handle<Function>, Vec<(IndexBox, usize)>>,
) -> Vec<(IndexBox, usize)> {
    if let Some(pairs) = known.get(&f) {
        return pairs.clone();
    }
    let func = &module.functions[f];
    if func.name.as_deref() == Some("celer_index") {
        return vec![(IndexBox::Param(0), 1)];
    }
    let mut pairs = Vec::new();
    each_statement(&func.body, &mut |s| {
        let Statement::Call { function, arguments, .. } = s else { return };
        for (b, i) in index_pairs(module, *function, params_binding, known) {
            let Some(&Expression::FunctionArgument(i)) = arguments.get(i).map(|&i| &func.expressions[i]) else {
                continue;
            };
            let b = match b {
                IndexBox::Param(b) => match arguments.get(b).map(|&b| (b, &func.expressions[b])) {
                    Some((_, &Expression::FunctionArgument(b))) => Some(IndexBox::Param(b as usize)),
                    Some((b, _)) => crate::params::params_box(module, func, b, params_binding).map(IndexBox::Binding),
                    None => None,
                },
                IndexBox::Binding(k) => Some(IndexBox::Binding(k)),
            };
            pairs.extend(b.map(|b| (b, i as usize)));
        }
    });
    // Each pair once: a helper calling another many times over would otherwise repeat its pairs as often.
    pairs.sort();
    pairs.dedup();
    known.insert(f, pairs.clone());
    pairs
}

/// The bindings entry point `entry_point` indexes with another binding's box, directly or in the functions it
/// calls: pairs `(b, c)`, ascending, where an array access `<binding b>[i]` takes its index `i` from
/// `celer_index(pc.<box of binding c>, …)` (also plus or minus other terms: `dst[i + 1u]`), `c` not `b`. A binding
/// holds its buffer's allocation on the node, whose box differs between buffers (a buffer read with a halo is
/// allocated wider than one written at the chunk), so such an index lands on another cell than the kernel means
/// wherever the boxes differ: the porter's `let i = celer_index(pc.src, item); dst[i] = 2.0 * src[i];` computes the
/// right cells on one rank and shifted ones on two. `params_binding` is as for
/// [`reflect_with_params`](crate::reflect_with_params). The index is followed through `let`s, local variables
/// (each value stored to one that reaches the load, `local_values`) and function parameters (the arguments of
/// each call, `fn put(i: u32, v: f32) { dst[i] = v; }` given `celer_index(pc.src, item)`). Where values meet that
/// way (a `var` stored twice, a function called twice), a box among them is listed only if the binding's own box
/// is not also among them: a `var i` reused for each binding's index is taken to be right where it indexes.
/// An index returned by a function of the kernel's own is followed into its `return`s, given the call's
/// arguments (`fn at(c: vec3<u32>) -> u32 { return celer_index(pc.src, c); }` then `dst[at(item)]`), as a value
/// where they meet. Conservative: an index built otherwise (a product, a pointer parameter) is not followed.
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
    use std::collections::{BTreeSet, HashSet};
    /// The members whose boxes what each function of the kernel's own returns is built from, by the function and
    /// the members of its arguments.
    type BoxMemo = std::cell::RefCell<HashMap<(Handle<Function>, Vec<BTreeSet<u32>>), BTreeSet<u32>>>;
    /// The members whose boxes index expression `e` of `func` is built from, through + and -: `boxes` gives those
    /// of the celer_index calls by their results. With `locals`, also through the values stored to a local
    /// variable, and the members `args` gives the function's parameters (as the call being followed passes them).
    struct Sources<'f> {
        module: &'f naga::Module,
        params_binding: Option<u32>,
        func: &'f Function,
        boxes: &'f HashMap<Handle<Expression>, u32>,
        /// The calls to the kernel's own functions, by result (followed into their `return`s with `locals`).
        calls: &'f HashMap<Handle<Expression>, Call>,
        /// How many calls deep `func` lies below the one whose indices are being followed.
        depth: u32,
        /// What the functions it calls return, shared with the functions it follows into.
        memo: &'f BoxMemo,
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
                // A function of the kernel's own: the boxes of what it returns, given these arguments.
                (Expression::CallResult(_), Some(_)) if self.depth < MAX_CALL_DEPTH => {
                    if let Some((f, arguments)) = self.calls.get(&e) {
                        let passed: Vec<BTreeSet<u32>> = arguments
                            .iter()
                            .map(|&a| {
                                let mut members = BTreeSet::new();
                                self.of(a, &mut members);
                                members
                            })
                            .collect();
                        let key = (*f, passed);
                        let known = self.memo.borrow().get(&key).cloned();
                        let members = known.unwrap_or_else(|| {
                            let at = (self.depth + 1, &mut self.steps);
                            let members = returned(self.module, key.0, &key.1, self.params_binding, at, self.memo);
                            self.memo.borrow_mut().insert(key, members.clone());
                            members
                        });
                        found.extend(members);
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
    /// The celer_index calls of `func`, by the handle of their result: the parameter block member whose box they
    /// are given (0 the chunk, m the box of binding m - 1).
    fn boxes_of(
        module: &naga::Module,
        func: &Function,
        params_binding: Option<u32>,
    ) -> HashMap<Handle<Expression>, u32> {
        let mut boxes = HashMap::new();
        each_statement(&func.body, &mut |s| {
            if let Statement::Call { function, arguments, result: Some(r) } = s {
                if module.functions[*function].name.as_deref() == Some("celer_index") && arguments.len() == 2 {
                    if let Some(c) = crate::params::params_member(module, func, arguments[0], params_binding) {
                        boxes.insert(*r, c);
                    }
                }
            }
        });
        boxes
    }
    /// The members whose boxes what function `f` returns (every `return` value) is built from, given `args`, the
    /// members of its arguments; followed as an index through locals and parameters, within `steps` (what the
    /// caller has left, and what it gets back: a helper called many times over shares the caller's bound).
    fn returned(
        module: &naga::Module,
        f: Handle<Function>,
        args: &[BTreeSet<u32>],
        params_binding: Option<u32>,
        (depth, steps): (u32, &mut u32),
        memo: &BoxMemo,
    ) -> BTreeSet<u32> {
        let func = &module.functions[f];
        let (boxes, calls, locals) =
            (boxes_of(module, func, params_binding), own_calls(module, func), local_values(func));
        let mut sources = Sources {
            module,
            params_binding,
            func,
            boxes: &boxes,
            calls: &calls,
            depth,
            memo,
            locals: Some((&locals, args)),
            path: HashSet::new(),
            steps: *steps,
        };
        let mut found = BTreeSet::new();
        for v in returns(func) {
            sources.of(v, &mut found);
        }
        *steps = sources.steps;
        found
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
        let boxes = boxes_of(module, func, params_binding);
        let mut calls = Vec::new();
        each_statement(&func.body, &mut |s| {
            if let Statement::Call { function, arguments, .. } = s {
                if !module.functions[*function].name.as_deref().unwrap_or("").starts_with("celer_") {
                    calls.push((*function, arguments.clone()));
                }
            }
        });
        let (locals, results, memo) = (local_values(func), own_calls(module, func), BoxMemo::default());
        let mut direct = Sources {
            module,
            params_binding,
            func,
            boxes: &boxes,
            calls: &results,
            depth: 0,
            memo: &memo,
            locals: None,
            path: HashSet::new(),
            steps: MAX_STEPS,
        };
        let mut followed = Sources {
            module,
            params_binding,
            func,
            boxes: &boxes,
            calls: &results,
            depth: 0,
            memo: &memo,
            locals: Some((&locals, args)),
            path: HashSet::new(),
            steps: MAX_STEPS,
        };
        for (_, e) in exprs.iter() {
            let Expression::Access { base, index } = *e else { continue };
            let Expression::GlobalVariable(g) = exprs[base] else { continue };
            let var = &module.global_variables[g];
            let Some(b) =
                var.binding.as_ref().filter(|b| b.group == 0 && !crate::params::is_params_block(var, params_binding))
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
/// (each value stored to one that reaches the load, `local_values`: `var i = item.x; dst[i] = …`) and function
/// parameters (the arguments of each call, `fn put(i: u32, v: f32) { dst[i] = v; }` given `item.x`); an index
/// whose values also include a `celer_index` result is not listed. An index returned by a function of the kernel's
/// own is followed into its `return`s, given the call's arguments (`fn idx(c: vec3<u32>) -> u32 { return c.x; }`
/// then `dst[idx(item)]`). Conservative: a value passed through a pointer parameter or a workgroup variable is not
/// followed.
pub fn global_indexed(module: &naga::Module, entry_point: usize, params_binding: Option<u32>) -> Vec<u32> {
    use std::collections::{BTreeSet, HashSet};
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
        /// The calls to the kernel's own functions, by the handle of their result: the callee and its arguments.
        calls: HashMap<Handle<Expression>, Call>,
        /// The origin of what each callee returns, given its arguments' origins.
        returned: HashMap<(Handle<Function>, Vec<Origin>), Origin>,
        /// How many calls deep the function lies below the one whose indices are being followed.
        depth: u32,
    }
    impl<'f> Values<'f> {
        fn new(module: &'f naga::Module, func: &'f Function, args: &'f [Origin], depth: u32) -> Self {
            let locals = local_values(func);
            let calls = own_calls(module, func);
            Values { module, func, locals, args, memo: HashMap::new(), calls, returned: HashMap::new(), depth }
        }
        /// The origin of what function `f` returns (every `return` value), given `args`, its arguments' origins.
        fn returned(&mut self, f: Handle<Function>, args: Vec<Origin>) -> Origin {
            if let Some(&o) = self.returned.get(&(f, args.clone())) {
                return o;
            }
            let callee = &self.module.functions[f];
            let mut values = Values::new(self.module, callee, &args, self.depth + 1);
            let mut origin = (false, false);
            for v in returns(callee) {
                let o = values.origin(Node::Expr(v));
                origin = (origin.0 || o.0, origin.1 || o.1);
            }
            self.returned.insert((f, args), origin);
            origin
        }
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
                        // A function of the kernel's own: what it returns, given these arguments.
                        _ => match self.calls.get(&e).cloned() {
                            Some((f, arguments)) if self.depth < MAX_CALL_DEPTH => {
                                let passed = arguments.iter().map(|&a| self.origin(Node::Expr(a))).collect();
                                self.returned(f, passed)
                            }
                            _ => (false, false),
                        },
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
        let mut values = Values::new(module, func, args, 0);
        for (_, e) in func.expressions.iter() {
            let Expression::Access { base, index } = *e else { continue };
            let Expression::GlobalVariable(g) = func.expressions[base] else { continue };
            let var = &module.global_variables[g];
            let Some(b) =
                var.binding.as_ref().filter(|b| b.group == 0 && !crate::params::is_params_block(var, params_binding))
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
