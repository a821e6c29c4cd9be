//! celer's WGSL prelude texts (plain, f64 and checked), appended to every kernel file: WGSL has no include.

use crate::uses_f64_prelude;

/// celer's prelude, appended to every kernel (`wgsl/prelude.wgsl` of this crate).
pub const PRELUDE: &str = include_str!("../wgsl/prelude.wgsl");

/// The prelude's f64 part (`wgsl/prelude_f64.wgsl`: the block reductions `celer_reduce_<op>_f64`), appended after
/// [`PRELUDE`] only to kernel files that call one of them ([`uses_f64_prelude`]): a module that declares an `f64`
/// needs the device feature `shaderFloat64`, which other kernels must not start requiring.
pub const PRELUDE_F64: &str = include_str!("../wgsl/prelude_f64.wgsl");

/// The prelude appended to kernel text `source`: [`PRELUDE`], and [`PRELUDE_F64`] where the kernel calls it.
pub fn prelude_for(source: &str) -> String {
    if uses_f64_prelude(source) {
        format!("{PRELUDE}\n{PRELUDE_F64}")
    } else {
        PRELUDE.to_string()
    }
}

/// The checked-mode prelude appended after [`PRELUDE`] for the checked variant of each kernel, with
/// `CELER_CHECK_BINDING` standing for the kernel's number of `@group(0)` bindings.
pub const CHECKED_PRELUDE: &str = include_str!("../wgsl/checked.wgsl.in");
