//! Walking naga's IR: functions by reference, the functions an entry point reaches, and every statement of a block.

use naga::{Function, Handle, Statement};

/// Where a function lives in a module.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub(crate) enum FnRef {
    Function(Handle<Function>),
    EntryPoint(usize),
}

pub(crate) fn function(module: &naga::Module, f: FnRef) -> &Function {
    match f {
        FnRef::Function(h) => &module.functions[h],
        FnRef::EntryPoint(i) => &module.entry_points[i].function,
    }
}

pub(crate) fn all_functions(module: &naga::Module) -> Vec<FnRef> {
    let mut all: Vec<FnRef> = module.functions.iter().map(|(h, _)| FnRef::Function(h)).collect();
    all.extend((0..module.entry_points.len()).map(FnRef::EntryPoint));
    all
}

/// Every function of `module` that `f` calls, directly or through others, each once.
pub(crate) fn reachable_functions(module: &naga::Module, f: &Function) -> Vec<naga::Handle<Function>> {
    let mut seen = std::collections::HashSet::new();
    let mut stack = callees(f);
    let mut out = Vec::new();
    while let Some(h) = stack.pop() {
        if seen.insert(h) {
            out.push(h);
            stack.extend(callees(&module.functions[h]));
        }
    }
    out
}

/// The functions `f` calls directly, in statement order (repeats included).
fn callees(f: &Function) -> Vec<naga::Handle<Function>> {
    let mut out = Vec::new();
    each_statement(&f.body, &mut |s| {
        if let Statement::Call { function, .. } = s {
            out.push(*function);
        }
    });
    out
}

/// Calls `visit` on every statement of `block`, nested blocks included.
pub(crate) fn each_statement<'a>(block: &'a naga::Block, visit: &mut impl FnMut(&'a Statement)) {
    for s in block.iter() {
        visit(s);
        match s {
            Statement::Block(b) => each_statement(b, visit),
            Statement::If { accept, reject, .. } => {
                each_statement(accept, visit);
                each_statement(reject, visit);
            }
            Statement::Switch { cases, .. } => cases.iter().for_each(|c| each_statement(&c.body, visit)),
            Statement::Loop { body, continuing, .. } => {
                each_statement(body, visit);
                each_statement(continuing, visit);
            }
            _ => {}
        }
    }
}

/// [`each_statement`] with mutable statements.
pub(crate) fn each_statement_mut(block: &mut naga::Block, visit: &mut impl FnMut(&mut Statement)) {
    for s in block.iter_mut() {
        visit(s);
        match s {
            Statement::Block(b) => each_statement_mut(b, visit),
            Statement::If { accept, reject, .. } => {
                each_statement_mut(accept, visit);
                each_statement_mut(reject, visit);
            }
            Statement::Switch { cases, .. } => cases.iter_mut().for_each(|c| each_statement_mut(&mut c.body, visit)),
            Statement::Loop { body, continuing, .. } => {
                each_statement_mut(body, visit);
                each_statement_mut(continuing, visit);
            }
            _ => {}
        }
    }
}
