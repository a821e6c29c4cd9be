//! Compiling one kernel file: constant names, the f64 prelude, the parameter block's move to storage, overrides,
//! directives, and the errors the build reports.

use super::*;

#[test]
fn kernel_files_whose_constants_collide_are_named_together() {
    let paths: Vec<PathBuf> = ["heat.wgsl", "my-k.wgsl", "my_k.wgsl", "My_K.wgsl", "other.wgsl"]
        .iter()
        .map(|n| PathBuf::from("/k").join(n))
        .collect();
    let errors = colliding_names("kernels", &paths);
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(errors[0].starts_with("error: kernels/my-k.wgsl and kernels/my_k.wgsl would both declare"), "{errors:?}");
    assert!(errors[0].contains("constant MY_K"), "{errors:?}");
    assert!(errors[1].contains("kernels/My_K.wgsl"), "{errors:?}");
    assert!(colliding_names("kernels", &paths[..2]).is_empty());
    assert_eq!(constant_name("my-k.v2"), "MY_K_V2");
}

#[test]
fn only_kernels_calling_an_f64_reduction_get_the_f64_prelude_and_need_float64() {
    assert!(uses_f64_prelude("let s = celer_reduce_sum_f64(v, ok, lid);"));
    assert!(!uses_f64_prelude("// celer_reduce_sum_f64(v, ok, lid) in a comment\nlet s = 1u;"));
    assert!(!uses_f64_prelude("let s = celer_reduce_sum_f64x(v);"), "a longer identifier");
    assert!(!uses_f64_prelude("let s = celer_reduce_sum_f32(v, ok, lid);"));
    let spirv_of = |source: &str| {
        let (module, info) = validated(source);
        write_spirv(&module, &info, false).expect("writes SPIR-V")
    };
    let f64_kernel = "@group(0) @binding(0) var<storage, read_write> out: array<f64>;
        @compute @workgroup_size(64) fn main(@builtin(local_invocation_index) lid: u32) {
            let s = celer_reduce_max_f64(f64(lid), lid < 10u, lid);
            if (lid == 0u) { out[0] = s; }
        }";
    assert!(spirv_needs_float64(&spirv_of(f64_kernel)));
    let f32_kernel = "@group(0) @binding(0) var<storage, read_write> out: array<f32>;
        @compute @workgroup_size(64) fn main(@builtin(local_invocation_index) lid: u32) {
            let s = celer_reduce_max_f32(f32(lid), lid < 10u, lid);
            if (lid == 0u) { out[0] = s; }
        }";
    assert!(!spirv_needs_float64(&spirv_of(f32_kernel)), "the 32-bit prelude declares no f64");
    // A kernel's own f64 needs the feature too.
    let own = "@group(0) @binding(0) var<storage, read_write> out: array<f64>;
        @compute @workgroup_size(1) fn main() { out[0] = out[0] * 2.0; }";
    assert!(spirv_needs_float64(&spirv_of(own)));
}

/// A kernel text (without prelude) with `n` read bindings besides `out`, whose parameter block holds the chunk, a
/// box per binding and `scalars` f32 words; `main` sums the inputs, scaled by the scalars' sum.
fn wide_kernel(n: usize, scalars: usize) -> String {
    let mut text = String::from("struct Params { chunk: CelerBox, ");
    for i in 0..n {
        let _ = write!(text, "b{i}: CelerBox, ");
    }
    text.push_str("out: CelerBox, ");
    for i in 0..scalars {
        let _ = write!(text, "s{i}: f32, ");
    }
    text.push_str("}\n");
    for i in 0..n {
        let _ = writeln!(text, "@group(0) @binding({i}) var<storage, read> b{i}: array<f32>;");
    }
    let _ =
        writeln!(text, "@group(0) @binding({n}) var<storage, read_write> out: array<f32>;\nvar<immediate> pc: Params;");
    text.push_str(
        "@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) gid: vec3<u32>) {\n\
         let item = celer_item_1d(pc.chunk, gid);\n if (!celer_contains(pc.chunk, item)) { return; }\n var s = 0.0;\n",
    );
    for i in 0..n {
        let _ = writeln!(text, "s += b{i}[celer_index(pc.b{i}, item)];");
    }
    let scale: String = (0..scalars).map(|i| format!(" + pc.s{i}")).collect();
    let _ = writeln!(text, "out[celer_index(pc.out, item)] = s * (0.0{scale});\n}}");
    text
}

#[test]
fn a_parameter_block_over_128_bytes_moves_to_a_storage_buffer_after_the_bounds_record_slot() {
    // Chunk and 4 boxes with 2 scalars: 128 bytes, push constants still.
    let small = wide_kernel(3, 2);
    let module = naga::front::wgsl::parse_str(&format!("{small}\n{PRELUDE}")).expect("parses");
    assert_eq!(params_binding(&module), Ok(None));

    // 8 inputs, out and 3 scalars: 10 boxes and 3 words, 252 bytes.
    let wide = wide_kernel(8, 3);
    let text = format!("{wide}\n{PRELUDE}");
    let pushed = naga::front::wgsl::parse_str(&text).expect("parses");
    let mut module = pushed.clone();
    assert_eq!(params_binding(&module), Ok(Some(10)), "9 bindings, the checked record's slot, then the block");
    assert_eq!(params_to_storage(&mut module, 10), 1);
    let info = Validator::new(ValidationFlags::all(), Capabilities::all()).validate(&module).expect("validates");
    let moved = reflect_with_params(&module, &info, Some(10)).expect("reflects");
    assert_eq!(moved.params_binding, Some(10));
    assert_eq!(moved.bindings.len(), 9, "the block is not a binding of the task's");
    // The same members at the same offsets as the push-constant block (252 bytes validate as push constants too).
    let pushed_info = Validator::new(ValidationFlags::all(), Capabilities::all()).validate(&pushed).expect("validates");
    let original = reflect(&pushed, &pushed_info).expect("reflects");
    assert_eq!(moved.entry_points, original.entry_points);
    assert_eq!(moved.entry_points[0].push_constant_bytes, 252);
    assert_eq!(moved.entry_points[0].writes, vec![8]);
    let var = module.global_variables.iter().find(|(_, v)| v.name.as_deref() == Some("pc")).unwrap().1;
    assert_eq!(var.space, AddressSpace::Storage { access: naga::StorageAccess::LOAD });
    write_spirv(&module, &info, false).expect("writes SPIR-V");

    // The checked variant: record at binding 9, block at 10; the accessors are traced before the block moves.
    let checked_text = format!("{PRELUDE}\n{}\n{wide}", CHECKED_PRELUDE.replace("CELER_CHECK_BINDING", "9"));
    let mut checked = naga::front::wgsl::parse_str(&checked_text).expect("parses");
    assert_eq!(checked_module(&mut checked), Ok(9));
    assert_eq!(params_to_storage(&mut checked, 10), 1);
    let checked_info =
        Validator::new(ValidationFlags::all(), Capabilities::all()).validate(&checked).expect("validates");
    write_spirv(&checked, &checked_info, false).expect("writes SPIR-V");
    let mut bound: Vec<u32> =
        checked.global_variables.iter().filter_map(|(_, v)| v.binding.map(|b| b.binding)).collect();
    bound.sort_unstable();
    assert_eq!(bound, (0..=10).collect::<Vec<_>>(), "{bound:?}");
}

#[test]
fn a_parameter_block_over_4_kib_is_refused_before_validation() {
    let boxes = |n: usize| (0..n).map(|i| format!("b{i}: CelerBox,")).collect::<String>();
    let kernel = |n: usize| {
        format!(
            "{PRELUDE}\nstruct Params {{ chunk: CelerBox, {} }}\nvar<immediate> pc: Params;\n\
             @compute @workgroup_size(64) fn main() {{ let c = pc.chunk; }}",
            boxes(n)
        )
    };
    // Chunk and 169 boxes: 4080 bytes, which fit; 170 boxes: 4104.
    let fits = naga::front::wgsl::parse_str(&kernel(169)).expect("parses");
    assert_eq!(params_binding(&fits), Ok(Some(1)));
    let too_big = naga::front::wgsl::parse_str(&kernel(170)).expect("parses");
    let e = params_binding(&too_big).expect_err("4104 bytes are refused");
    assert!(e.contains("var<immediate> pc) takes 4104 bytes") && e.contains("at most 169 bindings"), "{e}");
}

#[test]
fn two_parameter_blocks_one_entry_point_uses_are_refused_naming_the_move_to_storage() {
    // A block of 168 bytes (moved to storage) and one of 52, both used by `both`.
    let text = "struct P { chunk: CelerBox, b0: CelerBox, b1: CelerBox, b2: CelerBox, b3: CelerBox, b4: CelerBox, \
                b5: CelerBox }\nstruct S { chunk: CelerBox, a: CelerBox, x: f32 }\nvar<immediate> pc: P;\n\
                var<immediate> ps: S;\n@group(0) @binding(0) var<storage, read_write> a: array<f32>;\n\
                @compute @workgroup_size(64) fn both() { a[0] = f32(pc.chunk.offset0) + ps.x; }\n";
    let e = compile_text("two_blocks", text).expect_err("refused");
    assert!(e.contains("kernels/two_blocks.wgsl fails naga validation"), "{e}");
    assert!(
        e.contains("moved the 2 var<immediate> blocks of this file")
            && e.contains("@group(0) @binding(2)")
            && e.contains("only one var<immediate>"),
        "{e}"
    );
}

#[test]
fn an_error_inside_the_prelude_points_at_a_name_of_the_kernel_that_shadows_it() {
    // A binding called `i32` breaks the prelude's `bitcast<i32>(..)`: naga reports a line of the prelude.
    let own = "@group(0) @binding(0) var<storage, read_write> i32: array<u32>;\n\
               @compute @workgroup_size(64) fn main() { i32[0] = 1u; }\n";
    let source = format!("{own}\n{}", prelude_for(own));
    let line = match naga::front::wgsl::parse_str(&source) {
        Err(e) => e.location(&source).map(|l| l.line_number),
        Ok(module) => Validator::new(ValidationFlags::all(), Capabilities::all())
            .validate(&module)
            .err()
            .and_then(|e| e.location(&source).map(|l| l.line_number)),
    };
    let line = line.expect("a binding named i32 fails with a location");
    assert!(line as usize > own.lines().count(), "the error lies in the prelude: line {line}");
    let hint = in_prelude(Some(line), own.lines().count());
    assert!(hint.contains("lies in celer's prelude") && hint.contains("rename it"), "{hint}");
    assert_eq!(in_prelude(Some(2), 2), "", "an error in the kernel's own lines gets no hint");
}

/// A 1D task kernel with `head` (declarations after the parameter block and `out`) and workgroup size `wg`.
fn one_output(head: &str, wg: &str) -> String {
    format!(
        "{head}\nstruct P {{ chunk: CelerBox, out: CelerBox }}\nvar<immediate> pc: P;\n\
         @group(0) @binding(0) var<storage, read_write> out: array<u32>;\n\
         @compute @workgroup_size({wg}) fn main(@builtin(global_invocation_id) gid: vec3<u32>) {{\n\
             let item = celer_item_1d(pc.chunk, gid);\n\
             if (celer_contains(pc.chunk, item)) {{ out[celer_index(pc.out, item)] = item.x * SCALE; }}\n\
         }}\n"
    )
}

#[test]
fn override_constants_take_their_defaults_and_one_without_a_default_is_refused_by_name() {
    // naga's SPIR-V writer refused every module with an override ("overrides should not be present at this stage").
    let (item, _) = compile_text("ovr", &one_output("override SCALE: u32 = 3u;\noverride WG: u32 = 32u;", "WG"))
        .expect("overrides with defaults build");
    let _ = item;
    let dir = std::env::temp_dir().join(format!("celer_kb_ovr_wg_{}", std::process::id()));
    fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("ovr_wg.wgsl");
    fs::write(&path, one_output("override SCALE: u32 = 3u;\noverride WG: u32 = 32u;", "WG, 1")).expect("writes");
    compile(&path, "kernels/ovr_wg.wgsl", &dir, &Options::default()).expect("builds");
    let constructor = fs::read_to_string(dir.join("ovr_wg.kernel.rs")).expect("constructor written");
    let _ = fs::remove_dir_all(&dir);
    // The workgroup size the dispatch uses is the override's value, not naga's placeholder.
    assert!(constructor.contains("name: \"main\", workgroup_size: [32, 1, 1]"), "{constructor}");

    let e = compile_text("no_default", &one_output("override SCALE: u32;", "64")).expect_err("no default");
    assert!(e.starts_with("error: kernels/no_default.wgsl: `override SCALE` has no default value"), "{e}");
    assert!(e.contains("celer sets no pipeline constants"), "{e}");
    let e = compile_text("wg_no_default", &one_output("const SCALE = 1u;\noverride WG: u32;", "WG"))
        .expect_err("no default");
    assert!(e.contains("`override WG` has no default value"), "{e}");
}

#[test]
fn a_kernel_with_an_enable_directive_builds_its_checked_variant_too() {
    // The checked variant put the prelude before the kernel's text, so `enable f16;` came after declarations and
    // failed to parse there ("its checked variant does not parse: ... global directive").
    let text =
        "// A kernel in f16.\nenable f16;\n\nstruct P { chunk: CelerBox, out: CelerBox }\nvar<immediate> pc: P;\n\
                @group(0) @binding(0) var<storage, read_write> out: array<f16>;\n\
                @compute @workgroup_size(64) fn main(@builtin(global_invocation_id) gid: vec3<u32>) {\n\
                let item = celer_item_1d(pc.chunk, gid);\n\
                if (celer_contains(pc.chunk, item)) { out[celer_index(pc.out, item)] = f16(item.x); } }\n";
    compile_text("half", text).expect("an f16 kernel builds, checked variant included");
    let (directives, body) = split_directives(text);
    assert_eq!(directives, "enable f16;\n");
    assert_eq!(body.lines().count(), text.lines().count(), "the kernel's lines keep their numbers");
}

#[test]
fn a_bool_in_a_buffer_or_the_parameter_block_is_refused_with_a_hint() {
    let text = "struct P { chunk: CelerBox, out: CelerBox }\nvar<immediate> pc: P;\n\
                @group(0) @binding(0) var<storage, read_write> out: array<bool>;\n\
                @compute @workgroup_size(64) fn main(@builtin(global_invocation_id) gid: vec3<u32>) {\n\
                let item = celer_item_1d(pc.chunk, gid);\n\
                if (celer_contains(pc.chunk, item)) { out[celer_index(pc.out, item)] = true; } }\n";
    let e = compile_text("flags", text).expect_err("bool is not host-shareable");
    assert!(e.contains("kernels/flags.wgsl:3:23") && e.contains("store a flag as u32"), "{e}");
}
