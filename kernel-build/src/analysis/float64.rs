//! Whether a kernel needs 64-bit floats: from its text, which decides whether the build appends the prelude's f64
//! part ([`uses_f64_prelude`]), and from its SPIR-V, which decides whether a device must have `shaderFloat64`
//! ([`spirv_needs_float64`]).

/// The functions of [`PRELUDE_F64`](crate::PRELUDE_F64) a kernel calls; one of them in its text (outside `//` comments) appends it.
const F64_CALLS: [&str; 3] = ["celer_reduce_sum_f64", "celer_reduce_min_f64", "celer_reduce_max_f64"];

/// Whether kernel text `source` calls the prelude's f64 part (names one of `celer_reduce_{sum,min,max}_f64` outside
/// `//` comments), so that the build appends [`PRELUDE_F64`](crate::PRELUDE_F64) to it.
pub fn uses_f64_prelude(source: &str) -> bool {
    source.lines().map(|l| l.split_once("//").map_or(l, |(code, _)| code)).any(|code| {
        F64_CALLS.iter().any(|name| {
            code.match_indices(name).any(|(i, _)| {
                // A whole identifier, not the prefix of a longer one.
                !code[i + name.len()..].starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
            })
        })
    })
}

/// Whether SPIR-V `words` declare the capability `Float64` (`OpCapability Float64`): a module with an `f64` type,
/// which a device runs only with the feature `shaderFloat64`.
pub fn spirv_needs_float64(words: &[u32]) -> bool {
    const OP_CAPABILITY: u32 = 17;
    const FLOAT64: u32 = 10;
    let mut at = 5; // after the header
    while let Some(&first) = words.get(at) {
        let (count, opcode) = ((first >> 16) as usize, first & 0xffff);
        if opcode == OP_CAPABILITY && words.get(at + 1) == Some(&FLOAT64) {
            return true;
        }
        at += count.max(1);
    }
    false
}
