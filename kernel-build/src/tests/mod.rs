//! The kernel build's unit tests.

use std::fmt::Write as _;
use std::fs;
use std::path::PathBuf;

use naga::valid::{Capabilities, ValidationFlags, Validator};
use naga::{AddressSpace, Expression, Literal, Statement};

use super::*;
use crate::compile::{colliding_names, compile, constant_name, in_prelude, split_directives, write_spirv};
use crate::ir::{all_functions, each_statement, function};
use crate::render::render_bindings;

mod checked;
mod chunk_warnings;
mod compile;
mod indexing;
mod reflection;

const HEADER: &str = "struct Params { chunk: CelerBox, src: CelerBox, dst: CelerBox }
    @group(0) @binding(0) var<storage, read> src: array<f32>;
    @group(0) @binding(1) var<storage, read_write> dst: array<f32>;
    var<immediate> pc: Params;";

/// The reflection of `source` with the prelude appended.
fn reflection(source: &str) -> Result<Reflection, String> {
    let (module, info) = validated(source);
    reflect(&module, &info).map_err(|e| e.to_string())
}

/// `source` with its prelude appended ([`prelude_for`]), parsed and validated.
fn validated(source: &str) -> (naga::Module, naga::valid::ModuleInfo) {
    let text = format!("{source}\n{}", prelude_for(source));
    let module = naga::front::wgsl::parse_str(&text).expect("parses");
    let info = Validator::new(ValidationFlags::all(), Capabilities::all()).validate(&module).expect("validates");
    (module, info)
}

/// Compiles `text` as `kernels/{stem}.wgsl` (its name in messages) in a temporary directory of its own, removed
/// after: the generated constant and the warnings, or the error.
fn compile_text(stem: &str, text: &str) -> Result<(String, Vec<String>), String> {
    let dir = std::env::temp_dir().join(format!("celer_kb_{stem}_{}", std::process::id()));
    fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(format!("{stem}.wgsl"));
    fs::write(&path, text).expect("writes");
    let result = compile(&path, &format!("kernels/{stem}.wgsl"), &dir, &Options::default());
    let _ = fs::remove_dir_all(&dir);
    result
}
