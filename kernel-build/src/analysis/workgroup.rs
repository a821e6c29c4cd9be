//! Whether what an entry point computes depends on how its index space is cut into workgroups
//! ([`workgroup_dependent`]): workgroup built-ins, workgroup memory, barriers, subgroup operations.

use naga::{AddressSpace, Function, Statement};

use crate::ir::{each_statement, function, FnRef};

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
