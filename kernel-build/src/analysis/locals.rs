//! The values a function's local variables may hold at each of their loads ([`local_values`]): a dataflow over
//! naga's structured control flow, which the indexing analyses follow an index or a cell through.

use naga::{Expression, Function, Handle, Statement};

use super::root_of;

/// A value a local variable of a function may hold where it is loaded, as [`local_values`] finds them.
#[derive(Clone, Debug)]
pub(super) enum Held {
    /// Its initialiser (`None`: it has none, it holds the zero value).
    Init(Option<Handle<Expression>>),
    /// A store of the whole variable (`i = item.x;`).
    Whole(Handle<Expression>),
    /// A store of one part of it over the values it held before (`prior`, indices into [`LocalValues::held`]):
    /// member or component `field` (`p.x = p.x + 1u;` is field 0), `None` for a part reached otherwise (`a[k] = v`).
    Part { field: Option<u32>, value: Handle<Expression>, prior: std::collections::BTreeSet<usize> },
}

/// The values the local variables of a function may hold at each of its loads ([`local_values`]).
pub(super) struct LocalValues {
    /// Every initialiser and store, each once.
    pub(super) held: Vec<Held>,
    /// For each `Load` expression through a pointer into a local variable (the variable, `p.x`, `a[k]`): the
    /// entries of `held` that may reach it.
    pub(super) loads: std::collections::HashMap<Handle<Expression>, std::collections::BTreeSet<usize>>,
}

/// The values each local variable of `func` may hold where it is loaded: its initialiser and the stores that
/// reach the load along some path of the structured control flow (a store replaces the values before it; an `if`
/// or a `switch` joins its branches; a loop runs to a fixed point, so a store late in its body reaches a load early
/// in it; code after a `return`, `break` or `continue` gets nothing). What a function it calls stores through a
/// pointer to a local is not seen.
pub(super) fn local_values(func: &Function) -> LocalValues {
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
