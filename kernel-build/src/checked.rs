//! The checked variant: every `celer_index` call rewritten to `celer_index_checked` with the accessor traced
//! through the IR.

use std::collections::HashMap;

use naga::{Expression, Handle, Literal, Span, Statement};

use crate::ir::{all_functions, each_statement, each_statement_mut, function, FnRef};
use crate::params::params_box;
use crate::BuildError;

/// The accessor argument that tells `celer_index_checked` to find the accessor by the box's value.
pub const UNTRACED_ACCESSOR: u32 = u32::MAX;

/// The accessor whose push-constant box `expr` (in function `f`) is, if the IR shows it: a load of member `m >= 1`
/// of the `var<immediate>` struct is accessor `m - 1`; a parameter is followed to every call site, which must agree.
fn accessor_of(module: &naga::Module, f: FnRef, expr: Handle<Expression>, depth: u32) -> Option<u32> {
    if let Some(accessor) = params_box(module, function(module, f), expr, None) {
        return Some(accessor);
    }
    match function(module, f).expressions[expr] {
        Expression::FunctionArgument(arg) if depth < 8 => {
            let FnRef::Function(callee) = f else { return None };
            let mut found: Option<Option<u32>> = None;
            for caller in all_functions(module) {
                each_statement(&function(module, caller).body, &mut |s| {
                    if let Statement::Call { function: called, arguments, .. } = s {
                        if *called == callee {
                            let a =
                                arguments.get(arg as usize).and_then(|&e| accessor_of(module, caller, e, depth + 1));
                            found = Some(match found {
                                None => a,
                                Some(prev) if prev == a => a,
                                Some(_) => None,
                            });
                        }
                    }
                });
            }
            found.flatten()
        }
        _ => None,
    }
}

/// Turns a module parsed with [`PRELUDE`](crate::PRELUDE) and [`CHECKED_PRELUDE`](crate::CHECKED_PRELUDE) into the
/// checked variant: every call of `celer_index(box, item)` becomes `celer_index_checked(box, item, accessor)`, with
/// `accessor` from the IR ([`UNTRACED_ACCESSOR`] where it cannot be traced). Returns how many calls it rewrote.
///
/// # Errors
/// If the module lacks the two functions (it was not parsed with both preludes).
pub fn checked_module(module: &mut naga::Module) -> Result<usize, BuildError> {
    checked_module_inner(module).map_err(|message| BuildError { message })
}

pub(crate) fn checked_module_inner(module: &mut naga::Module) -> Result<usize, String> {
    let find = |name: &str| {
        module
            .functions
            .iter()
            .find(|(_, f)| f.name.as_deref() == Some(name))
            .map(|(h, _)| h)
            .ok_or_else(|| format!("error: the checked variant has no function {name} (prelude missing)"))
    };
    let (index, checked) = (find("celer_index")?, find("celer_index_checked")?);
    // First the accessors of every call (reading the whole module), by function and call result...
    let mut accessors: HashMap<(FnRef, Handle<Expression>), u32> = HashMap::new();
    for f in all_functions(module) {
        if f == FnRef::Function(checked) {
            continue;
        }
        each_statement(&function(module, f).body, &mut |s| {
            if let Statement::Call { function: called, arguments, result: Some(result) } = s {
                if *called == index {
                    let accessor = accessor_of(module, f, arguments[0], 0).unwrap_or(UNTRACED_ACCESSOR);
                    accessors.insert((f, *result), accessor);
                }
            }
        });
    }
    // naga's validator wants callees before their callers in the arena (the parse puts the preludes first).
    if let Some(&(FnRef::Function(caller), _)) =
        accessors.keys().find(|(f, _)| matches!(f, FnRef::Function(h) if *h < checked))
    {
        return Err(format!(
            "error: function {:?} calls celer_index but comes before celer_index_checked in the module",
            module.functions[caller].name
        ));
    }
    // ... then the rewrite: a literal needs no `Emit`, so appending one to the arena is enough.
    let rewritten = accessors.len();
    for f in all_functions(module) {
        let func = match f {
            FnRef::Function(h) => &mut module.functions[h],
            FnRef::EntryPoint(i) => &mut module.entry_points[i].function,
        };
        let (expressions, body) = (&mut func.expressions, &mut func.body);
        each_statement_mut(body, &mut |s| {
            if let Statement::Call { function: called, arguments, result: Some(result) } = s {
                if let Some(&accessor) = accessors.get(&(f, *result)) {
                    let literal = expressions.append(Expression::Literal(Literal::U32(accessor)), Span::UNDEFINED);
                    *called = checked;
                    arguments.push(literal);
                    expressions[*result] = Expression::CallResult(checked);
                }
            }
        });
    }
    Ok(rewritten)
}
