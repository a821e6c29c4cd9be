//! The checked variant: the accessor each `celer_index` call is rewritten to name.

use super::*;

/// `source` with both preludes (record at binding 2), made checked and validated; the accessor argument of
/// every `celer_index_checked` call, sorted.
fn accessors(source: &str) -> Vec<u32> {
    let text = format!("{PRELUDE}\n{}\n{source}", CHECKED_PRELUDE.replace("CELER_CHECK_BINDING", "2"));
    let mut module = naga::front::wgsl::parse_str(&text).expect("parses");
    checked_module(&mut module).expect("rewrites");
    Validator::new(ValidationFlags::all(), Capabilities::all()).validate(&module).expect("validates");
    let checked = module.functions.iter().find(|(_, f)| f.name.as_deref() == Some("celer_index_checked")).unwrap().0;
    let mut found = Vec::new();
    for f in all_functions(&module) {
        let exprs = &function(&module, f).expressions;
        each_statement(&function(&module, f).body, &mut |s| {
            if let Statement::Call { function, arguments, .. } = s {
                assert_ne!(
                    module.functions[*function].name.as_deref(),
                    Some("celer_index"),
                    "a celer_index call was left unchecked"
                );
                if *function == checked {
                    match exprs[*arguments.last().unwrap()] {
                        Expression::Literal(Literal::U32(a)) => found.push(a),
                        ref other => panic!("the accessor argument is {other:?}"),
                    }
                }
            }
        });
    }
    found.sort_unstable();
    found
}

#[test]
fn each_celer_index_call_names_the_accessor_of_its_push_constant_member() {
    let source = format!(
        "{HEADER}
        @compute @workgroup_size(64) fn main(@builtin(global_invocation_id) gid: vec3<u32>) {{
            let item = celer_item_1d(pc.chunk, gid);
            dst[celer_index(pc.dst, item)] = src[celer_index(pc.src, item)];
        }}"
    );
    assert_eq!(accessors(&source), vec![0, 1]);
}

#[test]
fn a_box_passed_as_a_parameter_is_followed_to_its_call_sites() {
    // `load` is only ever called with pc.src: accessor 0. `any` gets both boxes: found by value at run time.
    let source = format!(
        "{HEADER}
        fn load(b: CelerBox, item: vec3<u32>) -> f32 {{ return src[celer_index(b, item)]; }}
        fn any(b: CelerBox, item: vec3<u32>) -> u32 {{ return celer_index(b, item); }}
        @compute @workgroup_size(64) fn main(@builtin(global_invocation_id) gid: vec3<u32>) {{
            let item = celer_item_1d(pc.chunk, gid);
            let i = any(pc.src, item) + any(pc.dst, item);
            dst[celer_index(pc.dst, item)] = load(pc.src, item) + f32(i);
        }}"
    );
    assert_eq!(accessors(&source), vec![0, 1, UNTRACED_ACCESSOR]);
}
