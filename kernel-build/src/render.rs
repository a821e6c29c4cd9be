//! The Rust source of the descriptors (`EntryPointDesc`, `BindingDesc`) a generated kernel constant carries.

use std::fmt::Write as _;

use crate::Reflection;

/// `ScalarType::F32` for `f32`, under `types`.
fn render_scalar(scalar: Option<&str>, types: &str) -> String {
    match scalar {
        Some(s) => {
            let mut variant = s.to_uppercase();
            if s == "bool" {
                variant = "Bool".into();
            }
            format!("Some({types}::ScalarType::{variant})")
        }
        None => "None".into(),
    }
}

/// The `EntryPointDesc` items of a reflection, as Rust source.
pub(crate) fn render_entry_points(r: &Reflection, types: &str) -> String {
    let mut out = String::new();
    for ep in &r.entry_points {
        let [x, y, z] = ep.workgroup_size;
        let mut members = String::new();
        for m in &ep.push_constants {
            let _ = write!(
                members,
                "{types}::PushMemberDesc {{ name: {:?}, ty: {:?}, scalar: {}, offset: {}, size: {} }}, ",
                m.name,
                m.ty,
                render_scalar(m.scalar, types),
                m.offset,
                m.size
            );
        }
        let mut reductions = String::new();
        for r in &ep.block_reductions {
            let _ = write!(
                reductions,
                "{types}::BlockReductionDesc {{ op: {:?}, scalar: {}, binding: {:?} }}, ",
                r.op,
                render_scalar(Some(r.ty), types).trim_start_matches("Some(").trim_end_matches(')'),
                r.binding
            );
        }
        let _ = write!(
            out,
            "{types}::EntryPointDesc {{ name: {:?}, workgroup_size: [{x}, {y}, {z}], dims: {:?}, \
             block_reduction: {}, workgroup_dependent: {}, push_constants: &[{members}], push_constant_bytes: {}, \
             writes: &{:?}, reads_old: &{:?}, block_reductions: &[{reductions}], atomics: &{:?}, \
             workgroup_memory_bytes: {}, item_indexed: &{:?}, stores_every_item: &{:?}, loads_every_item: &{:?}, \
             stores_one_cell_every_item: &{:?}, cross_indexed: &{:?}, global_indexed: &{:?}, \
             item_offsets: &[{}], raw_ids: {} }}, ",
            ep.name,
            ep.dims,
            ep.block_reduction,
            ep.workgroup_dependent,
            ep.push_constant_bytes,
            ep.writes,
            ep.reads_old,
            ep.atomics,
            ep.workgroup_memory_bytes,
            ep.item_indexed,
            ep.stores_every_item,
            ep.loads_every_item,
            ep.stores_one_cell_every_item,
            ep.cross_indexed,
            ep.global_indexed,
            ep.item_offsets.iter().map(|(b, o)| format!("({b}, &{o:?}), ")).collect::<String>(),
            ep.raw_ids
        );
    }
    out
}

/// The `BindingDesc` items of a reflection, as Rust source.
pub(crate) fn render_bindings(r: &Reflection, types: &str) -> String {
    let mut out = String::new();
    for b in &r.bindings {
        let access = if b.read_write { "ReadWrite" } else { "Read" };
        let _ = write!(
            out,
            "{types}::BindingDesc {{ binding: {}, name: {:?}, element: {:?}, scalar: {}, element_size: {}, \
             component: {}, access: {types}::StorageAccess::{access} }}, ",
            b.binding,
            b.name,
            b.element,
            render_scalar(b.scalar, types),
            b.element_size,
            render_scalar(b.component, types),
        );
    }
    out
}
