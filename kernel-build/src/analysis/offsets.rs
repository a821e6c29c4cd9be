//! The cells around its item at which an entry point indexes each binding's box ([`item_offsets`]), which `submit`
//! compares with what the task's range mappers declare.

use naga::{Expression, Function, Handle, Statement};

use super::locals::{local_values, Held, LocalValues};
use super::{own_calls, returns, Call, MAX_CALL_DEPTH, MAX_STEPS};
use crate::ir::each_statement;

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
/// reaches the load, `local_values`; a component stored alone, `var p = item; p.x = p.x + 1u;`, replaces that
/// component of what `p` held), also as a flat index kept in a `var`; a cell or component returned by a function
/// of the kernel's own (given the call's arguments: `right(item)` with `fn right(c: vec3<u32>) -> vec3<u32> {
/// return c + vec3<u32>(1u, 0u, 0u); }`), and a component handed alone to one that builds the cell of it
/// (`src_at(item.x + 1u)` with `fn src_at(x: u32) -> f32 { return src[celer_index(pc.src, vec3<u32>(x, 0u,
/// 0u))]; }`). An offset of zero (the item itself) is not listed. `params_binding` is as for
/// [`reflect_with_params`](crate::reflect_with_params). Conservative: a cell built otherwise (from a loop counter
/// or a pushed scalar, whose value only the run knows) is not followed, and a step taken in a loop (`p.x = p.x +
/// 1u` in a loop body) is counted once, not per pass. `celer`'s `submit` refuses a task whose range mapper for that binding (`one_to_one`, a neighbourhood, a slice) does not
/// declare those cells: the kernel would read or store cells the chunk's region does not hold, which come from
/// another rank's last write only where declared.
pub fn item_offsets(
    module: &naga::Module,
    entry_point: usize,
    params_binding: Option<u32>,
) -> Vec<(u32, Vec<[i64; 3]>)> {
    use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
    type Offsets = BTreeSet<[i64; 3]>;
    /// The `k`s with which scalar parameters are the item's component `d` plus `k`, by (parameter, `d`).
    type Components = BTreeMap<(u32, usize), BTreeSet<i64>>;
    /// The offsets of the parameters that hold cells around the item, by parameter.
    type Args = BTreeMap<u32, Offsets>;
    /// What a function returns, given its arguments: the cells around the item (its `return` values' offsets),
    /// and the `k`s with which they are the item's component `d` plus `k`, by `d`.
    #[derive(Clone, Default)]
    struct Returned {
        cells: Offsets,
        components: [BTreeSet<i64>; 3],
    }
    /// What each function of the kernel's own returns, by the function and what its arguments hold.
    type ReturnedMemo = std::rc::Rc<std::cell::RefCell<HashMap<(Handle<Function>, Args, Components), Returned>>>;
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
        args: &'f Args,
        /// The `k`s with which a scalar parameter is the item's component `d` plus `k`, by (parameter, `d`), as the
        /// call being followed passes them (a component handed alone, `at(item.x + 1u)`).
        components: &'f Components,
        /// The item's dimensionality: its components past it are 0.
        dims: usize,
        /// The values on the path being followed (a loop's local stored from itself is not followed round).
        path: HashSet<Node>,
        /// The steps left ([`MAX_STEPS`]): a value shared along many paths is not followed past them.
        steps: u32,
        /// The calls to the kernel's own functions, by result: what they return is followed into the callee.
        calls: HashMap<Handle<Expression>, Call>,
        /// How many calls deep `func` lies below the function whose indices are being followed.
        depth: u32,
        /// What the functions it calls return, shared with the functions it follows into.
        memo: ReturnedMemo,
    }
    impl<'f> Cells<'f> {
        fn new(
            module: &'f naga::Module,
            func: &'f Function,
            (args, components): (&'f Args, &'f Components),
            (dims, depth): (usize, u32),
            memo: ReturnedMemo,
        ) -> Self {
            let (locals, calls) = (local_values(func), own_calls(module, func));
            let (path, steps) = (HashSet::new(), MAX_STEPS);
            Cells { module, func, locals, args, components, dims, path, steps, calls, depth, memo }
        }
        /// What a call with `arguments` passes a function: each argument's offsets as a cell, and as a component
        /// of the item (by parameter and dimension); those that are neither are left out. `fresh`: each argument
        /// gets [`MAX_STEPS`] of its own (else they share what is left).
        fn passed(&mut self, arguments: &[Handle<Expression>], fresh: bool) -> (Args, Components) {
            let mut cells = Args::new();
            let mut components = Components::new();
            for (k, &a) in arguments.iter().enumerate() {
                if fresh {
                    self.steps = MAX_STEPS;
                }
                let o = self.cell(a);
                if !o.is_empty() {
                    cells.insert(k as u32, o);
                }
                // Scalars that are one of the item's components, plus or minus a constant.
                for d in 0..3 {
                    if fresh {
                        self.steps = MAX_STEPS;
                    }
                    let ks = self.component(a, d);
                    if !ks.is_empty() {
                        components.insert((k as u32, d), ks);
                    }
                }
            }
            (cells, components)
        }
        /// What the function of the kernel's own whose call result `e` is returns (every `return` value), given
        /// the call's arguments, within the steps left (once per function and arguments); nothing for no such call
        /// (or one too deep).
        fn returned(&mut self, e: Handle<Expression>) -> Returned {
            let Some((f, arguments)) = self.calls.get(&e).cloned().filter(|_| self.depth < MAX_CALL_DEPTH) else {
                return Returned::default();
            };
            let (cells, components) = self.passed(&arguments, false);
            let key = (f, cells, components);
            if let Some(r) = self.memo.borrow().get(&key) {
                return r.clone();
            }
            let callee = &self.module.functions[f];
            let memo = self.memo.clone();
            let mut values = Cells::new(self.module, callee, (&key.1, &key.2), (self.dims, self.depth + 1), memo);
            // The callee shares what is left of the caller's steps: a helper called many times over stays bounded.
            values.steps = self.steps;
            let mut found = Returned::default();
            for v in returns(callee) {
                found.cells.extend(values.cell(v));
                for d in 0..3 {
                    found.components[d].extend(values.component(v, d));
                }
            }
            self.steps = values.steps;
            self.memo.borrow_mut().insert(key, found.clone());
            found
        }
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
                // A function of the kernel's own: the cells it returns, given these arguments.
                Expression::CallResult(_) => out.extend(self.returned(e).cells),
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
                Expression::FunctionArgument(k) => out.extend(self.components.get(&(k, d)).into_iter().flatten()),
                Expression::CallResult(_) => out.extend(std::mem::take(&mut self.returned(e).components[d])),
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
    /// cells around the item, `components` those of the scalar parameters that hold one of its components (as
    /// [`Cells::components`]).
    /// `last`: the item's last dimension, along which the flat index of a row-major cell runs.
    fn visit(
        module: &naga::Module,
        func: &Function,
        (args, components): (&Args, &Components),
        params_binding: Option<u32>,
        (depth, last): (u32, usize),
        out: &mut BTreeMap<u32, Offsets>,
    ) {
        let exprs = &func.expressions;
        // Items given, or taken here or in a function it calls (which may return one).
        let items = args.values().any(|o| !o.is_empty())
            || components.values().any(|k| !k.is_empty())
            || crate::ir::reachable_functions(module, func).into_iter().any(|h| {
                matches!(module.functions[h].name.as_deref(), Some("celer_item_1d" | "celer_item_2d" | "celer_item_3d"))
            });
        if !items {
            return;
        }
        let mut values = Cells::new(module, func, (args, components), (last + 1, 0), ReturnedMemo::default());
        // The celer_index calls at a known cell, by the handle of their result: the box's binding and the offsets.
        let mut cells: HashMap<Handle<Expression>, (u32, Offsets)> = HashMap::new();
        let mut calls = Vec::new();
        each_statement(&func.body, &mut |s| {
            let Statement::Call { function, arguments, result } = s else { return };
            let name = module.functions[*function].name.as_deref().unwrap_or("");
            if name == "celer_index" && arguments.len() == 2 {
                if let Some(b) = crate::params::params_box(module, func, arguments[0], params_binding) {
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
            let (passed, scalars) = values.passed(&arguments, true);
            if !passed.is_empty() || !scalars.is_empty() {
                visit(module, &module.functions[f], (&passed, &scalars), params_binding, (depth + 1, last), out);
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
    let last = crate::ir::reachable_functions(module, func)
        .into_iter()
        .find_map(|h| match module.functions[h].name.as_deref() {
            Some("celer_item_2d") => Some(1),
            Some("celer_item_3d") => Some(2),
            _ => None,
        })
        .unwrap_or(0);
    visit(module, func, (&Args::new(), &Components::new()), params_binding, (0, last), &mut out);
    out.into_iter().filter(|(_, o)| !o.is_empty()).map(|(b, o)| (b, o.into_iter().collect())).collect()
}
