//! The check `submit` makes of a `reduce_with` identity: every chunk and every rank starts from the identity, so a
//! value `e` that is not one for the combine (a sum from 5, a maximum from 0) counts once per chunk, and the result
//! changes with the number of ranks and devices (a maximum from 0 of negative data is 0).
//!
//! - **What is probed.** `combine(e, e) == e`, then `combine(e, x) == x` and `combine(x, e) == x` for a fixed list of
//!   finite values `x` of the element type ([`probes`]): 0, 1, -1, 2, 7, the type's smallest and largest value, for
//!   floats also -0.0, -0.5, 1e30 and -1e30. Both orders, since rank 0 folds the ranks' partial results as
//!   `combine(combine(e, r0), r1)…` and a combine need not be commutative.
//! - **Small values refuse, extremes warn.** An identity that 0, ±1, 2, 7 (and for floats -0.0, -0.5) show to be
//!   none is refused. One that only the type's extremes or ±1e30 show to be none is a sentinel (-1 as "no index
//!   found" for a largest index, `n` for a smallest), right as long as the program's values never pass it:
//!   `submit` accepts the task and warns once a queue ([`IdentityFault::extreme`]).
//! - **No infinities and no NaN.** `f32::MIN` is the usual identity of a float maximum and keeps every finite value,
//!   but not `-inf` (`max(f32::MIN, -inf)` is `f32::MIN`): probing infinities would refuse it. Data of infinities is
//!   the program's to know about; `f32::NEG_INFINITY` passes too. NaN is kept by no ordering, so it proves nothing.
//! - **Floats compare by value or by bits.** `0.0 + -0.0` is `+0.0`, not the probe `-0.0`; a sum from `0.0` differs
//!   from one from `-0.0` (the exact identity) only in the sign of a zero result, so `-0.0` and `0.0` count as equal,
//!   and equal bits as equal (a NaN identity that a combine gives back unchanged).
//! - **A panic stops probing.** A combine that panics on a probe (an overflow from a wrong identity, a combine that
//!   always panics) is not refused here: the value may never occur in the program's data, and the runtime reports a
//!   panic in the combine naming the task. The first panic ends the probing, so its message prints once.
//! - **The order.** Where the identity passes, `combine(x, y)` and `combine(y, x)` must agree for every two of the
//!   small values (equal bits, or for floats equal values or two NaNs, whatever their payloads): the ranks' and
//!   devices' partial results pair up as the split decides, so a combine that is not commutative ("keep the first
//!   non-zero") gives a result that changes with the rank count; `submit` refuses it, naming the two calls. Only
//!   small values, so a combine that is not commutative only beyond them passes here, and the runtime, which
//!   checks every pair of partial results it combines, ends the run where it meets one. Associativity is not
//!   probed: float sums are not associative, and refusing them would refuse every float `reduce_with`.
//! - **Cost.** At most 2 × 14 + 1 calls of the combine for the identity and 2 × 21 for the order per
//!   `reduce_with`, no allocation unless a fault is found; then 6 more calls for [`combine_table`], formatted (a
//!   few µs), which the divergence check compares between ranks.

use crate::queue::Reducible;
use celer_scheduler::runtime::{same_element, ScalarKind};

/// The values probed for `i32` (and, reinterpreted, for nothing else).
const I32_PROBES: [i32; 7] = [0, 1, -1, 2, 7, i32::MIN, i32::MAX];
/// The values probed for `u32`.
const U32_PROBES: [u32; 5] = [0, 1, 2, 7, u32::MAX];
/// The values probed for `i64`.
const I64_PROBES: [i64; 7] = [0, 1, -1, 2, 7, i64::MIN, i64::MAX];
/// The values probed for `u64`.
const U64_PROBES: [u64; 5] = [0, 1, 2, 7, u64::MAX];
/// The values probed for `f32`: finite only (see the module docs).
const F32_PROBES: [f32; 11] = [0.0, 1.0, -1.0, 2.0, 7.0, -0.0, -0.5, 1e30, -1e30, f32::MIN, f32::MAX];
/// The values probed for `f64`: finite only (see the module docs).
const F64_PROBES: [f64; 11] = [0.0, 1.0, -1.0, 2.0, 7.0, -0.0, -0.5, 1e30, -1e30, f64::MIN, f64::MAX];

/// The finite values of `T` that a `reduce_with` identity must keep, in the order probed: small values first, so a
/// wrong identity is shown with a value that reads easily (`combine(0, -1) = 0`), the extremes last. Empty for a type
/// whose size does not match its [`Reducible::KIND`].
pub(crate) fn probes<T: Reducible>() -> &'static [T] {
    let probes = match T::KIND {
        ScalarKind::I32 => bytemuck::try_cast_slice(&I32_PROBES),
        ScalarKind::U32 => bytemuck::try_cast_slice(&U32_PROBES),
        ScalarKind::I64 => bytemuck::try_cast_slice(&I64_PROBES),
        ScalarKind::U64 => bytemuck::try_cast_slice(&U64_PROBES),
        ScalarKind::F32 => bytemuck::try_cast_slice(&F32_PROBES),
        ScalarKind::F64 => bytemuck::try_cast_slice(&F64_PROBES),
    };
    probes.unwrap_or(&[])
}

/// How many of [`probes`]' first values are small ones (0, 1, -1, 2, 7, and for floats -0.0 and -0.5): an identity
/// that does not keep one of those is refused; the rest (the type's extremes, ±1e30) are the values a sentinel
/// identity may not keep, which only a warning names.
fn small_probes(kind: ScalarKind) -> usize {
    match kind {
        ScalarKind::I32 | ScalarKind::I64 => 5,
        ScalarKind::U32 | ScalarKind::U64 => 4,
        ScalarKind::F32 | ScalarKind::F64 => 7,
    }
}

/// Whether `got` counts as `wanted`: equal bits, or, for floats, equal values (`-0.0` and `0.0`).
fn same<T: Reducible>(got: T, wanted: T) -> bool {
    if bytemuck::bytes_of(&got) == bytemuck::bytes_of(&wanted) {
        return true;
    }
    let b = (bytemuck::bytes_of(&got), bytemuck::bytes_of(&wanted));
    match (T::KIND, <[u8; 4]>::try_from(b.0), <[u8; 4]>::try_from(b.1)) {
        (ScalarKind::F32, Ok(g), Ok(w)) => return f32::from_ne_bytes(g) == f32::from_ne_bytes(w),
        (ScalarKind::F32, ..) => return false,
        _ => {}
    }
    match (T::KIND, <[u8; 8]>::try_from(b.0), <[u8; 8]>::try_from(b.1)) {
        (ScalarKind::F64, Ok(g), Ok(w)) => f64::from_ne_bytes(g) == f64::from_ne_bytes(w),
        _ => false,
    }
}

/// A `reduce_with` identity that its combine does not keep, as text for the error: the identity, the call that
/// shows it (`combine(0, -1)`), what that gave and what it should have given, and the identities of the common
/// combines of the element type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct IdentityFault {
    pub(crate) identity: String,
    pub(crate) call: String,
    pub(crate) gave: String,
    pub(crate) wanted: String,
    pub(crate) hint: &'static str,
    /// Whether only an extreme probe shows it (the type's smallest or largest value, ±1e30): a sentinel (`-1` for
    /// the largest index found, `n` for the smallest) that the program's values never pass, which `submit` warns
    /// about once instead of refusing (see the module docs).
    pub(crate) extreme: bool,
}

/// Two small probe values that a `reduce_with` combine gives different results for in the two orders, as text for
/// the error: `combine(1, 2) = 1` against `combine(2, 1) = 2`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct OrderFault {
    pub(crate) call: String,
    pub(crate) gave: String,
    pub(crate) swapped: String,
    pub(crate) gave_swapped: String,
}

/// What the probes of a `reduce_with` found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Probed {
    /// The identity is not one ([`IdentityFault`]).
    Identity(IdentityFault),
    /// The combine is not commutative on two small probe values.
    Order(OrderFault),
}

/// Why `identity` is not an identity of `combine`, or `None` where every probe keeps it or the combine panicked
/// (see the module docs for what is probed and why).
#[cfg(test)]
pub(crate) fn fault<T: Reducible>(identity: T, combine: &impl Fn(T, T) -> T) -> Option<IdentityFault> {
    match probe(identity, combine)? {
        Probed::Identity(f) => Some(f),
        Probed::Order(_) => None,
    }
}

/// Probes `identity` and `combine`: the identity first ([`IdentityFault`]), then, where it passes, whether
/// `combine(x, y)` and `combine(y, x)` agree for every two of the small probe values (equal bits, or for floats equal
/// values or two NaNs); `None` where every probe passes or the combine panicked (see the module docs).
pub(crate) fn probe<T: Reducible>(identity: T, combine: &impl Fn(T, T) -> T) -> Option<Probed> {
    // A combine that panics here is left to the runtime, which reports its panic naming the task.
    let call = |a: T, b: T| std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| combine(a, b))).ok();
    let refuse = |a: T, b: T, gave: T, wanted: T, extreme: bool| IdentityFault {
        identity: show(identity),
        call: format!("combine({}, {})", show(a), show(b)),
        gave: show(gave),
        wanted: show(wanted),
        hint: hint(T::KIND),
        extreme,
    };
    let twice = call(identity, identity)?;
    if !same(twice, identity) {
        return Some(Probed::Identity(refuse(identity, identity, twice, identity, false)));
    }
    let small = small_probes(T::KIND);
    for (i, &x) in probes::<T>().iter().enumerate() {
        let left = call(identity, x)?;
        if !same(left, x) {
            return Some(Probed::Identity(refuse(identity, x, left, x, i >= small)));
        }
        let right = call(x, identity)?;
        if !same(right, x) {
            return Some(Probed::Identity(refuse(x, identity, right, x, i >= small)));
        }
    }
    // The order: the ranks' partial results pair up as the split decides (the runtime checks the pairs it
    // combines; this finds a combine that is not commutative before anything runs, on one rank too).
    let small = &probes::<T>()[..small.min(probes::<T>().len())];
    for (i, &x) in small.iter().enumerate() {
        for &y in &small[i + 1..] {
            let (xy, yx) = (call(x, y)?, call(y, x)?);
            if !same_element(T::KIND, bytemuck::bytes_of(&xy), bytemuck::bytes_of(&yx)) {
                return Some(Probed::Order(OrderFault {
                    call: format!("combine({}, {})", show(x), show(y)),
                    gave: show(xy),
                    swapped: format!("combine({}, {})", show(y), show(x)),
                    gave_swapped: show(yx),
                }));
            }
        }
    }
    None
}

/// How many calls [`combine_table`] shows.
const TABLE_CALLS: usize = 6;

/// What `combine` gives for the first pairs of small probe values other than `identity` (at most [`TABLE_CALLS`]
/// calls), as `combine(1, 2) = 3, combine(1, 7) = 7, …`: the divergence check cannot hash a closure, so it hashes this, and a
/// combine that differs between ranks (`|` on one, `^` on another) shows in every rank's report. A panic ends the
/// table (`combine(1, 2) panics`; the runtime reports a panic in the combine naming the task).
pub(crate) fn combine_table<T: Reducible>(identity: T, combine: &impl Fn(T, T) -> T) -> String {
    // Pairs with the identity say nothing `submit` has not checked already.
    let small: Vec<T> = probes::<T>()[..small_probes(T::KIND).min(probes::<T>().len())]
        .iter()
        .copied()
        .filter(|&x| !same(x, identity))
        .collect();
    let mut out = Vec::with_capacity(TABLE_CALLS);
    'pairs: for (i, &x) in small.iter().enumerate() {
        for &y in &small[i + 1..] {
            if out.len() == TABLE_CALLS {
                break 'pairs;
            }
            let call = format!("combine({}, {})", show(x), show(y));
            match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| combine(x, y))) {
                Ok(v) => out.push(format!("{call} = {}", show(v))),
                Err(_) => {
                    out.push(format!("{call} panics"));
                    break 'pairs;
                }
            }
        }
    }
    out.join(", ")
}

/// The identities of the common combines of an element type, for the error's hint.
fn hint(kind: ScalarKind) -> &'static str {
    match kind {
        ScalarKind::I32 => {
            "i32::MIN for a maximum, i32::MAX for a minimum, 0 for a sum, | or ^, !0 for an &, 1 for a product"
        }
        ScalarKind::U32 => "0 for a maximum, u32::MAX for a minimum, 0 for a sum, | or ^, !0 for an &, 1 for a product",
        ScalarKind::I64 => {
            "i64::MIN for a maximum, i64::MAX for a minimum, 0 for a sum, | or ^, !0 for an &, 1 for a product"
        }
        ScalarKind::U64 => "0 for a maximum, u64::MAX for a minimum, 0 for a sum, | or ^, !0 for an &, 1 for a product",
        ScalarKind::F32 => {
            "f32::NEG_INFINITY (or f32::MIN) for a maximum, f32::INFINITY (or f32::MAX) for a minimum, 0.0 for a sum, \
             1.0 for a product"
        }
        ScalarKind::F64 => {
            "f64::NEG_INFINITY (or f64::MIN) for a maximum, f64::INFINITY (or f64::MAX) for a minimum, 0.0 for a sum, \
             1.0 for a product"
        }
    }
}

/// A reduction element as its type prints it (`5`, `0.5`), for messages.
pub(crate) fn show<T: Reducible>(v: T) -> String {
    let b = bytemuck::bytes_of(&v);
    let four = || <[u8; 4]>::try_from(b).unwrap_or_default();
    let eight = || <[u8; 8]>::try_from(b).unwrap_or_default();
    match T::KIND {
        ScalarKind::I32 => i32::from_ne_bytes(four()).to_string(),
        ScalarKind::U32 => u32::from_ne_bytes(four()).to_string(),
        ScalarKind::F32 => format!("{:?}", f32::from_ne_bytes(four())),
        ScalarKind::I64 => i64::from_ne_bytes(eight()).to_string(),
        ScalarKind::U64 => u64::from_ne_bytes(eight()).to_string(),
        ScalarKind::F64 => format!("{:?}", f64::from_ne_bytes(eight())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The call that refuses `identity` for `combine`, or `None` where it is accepted.
    fn refused<T: Reducible>(identity: T, combine: impl Fn(T, T) -> T) -> Option<String> {
        fault(identity, &combine).map(|f| format!("{} = {}, not {}", f.call, f.gave, f.wanted))
    }

    #[test]
    fn the_identities_of_the_common_combines_are_accepted() {
        let accepted: Vec<(&str, Option<String>)> = vec![
            ("i32 sum from 0", refused(0i32, |a, b| a.wrapping_add(b))),
            ("i32 sum from 0 (+, which panics on overflow)", refused(0i32, |a, b| a + b)),
            ("i32 product from 1", refused(1i32, |a, b| a * b)),
            ("i32 max from i32::MIN", refused(i32::MIN, |a, b| a.max(b))),
            ("i32 min from i32::MAX", refused(i32::MAX, |a, b| a.min(b))),
            ("i32 or from 0", refused(0i32, |a, b| a | b)),
            ("i32 xor from 0", refused(0i32, |a, b| a ^ b)),
            ("i32 and from !0", refused(!0i32, |a, b| a & b)),
            ("u32 or from 0", refused(0u32, |a, b| a | b)),
            ("u32 and from !0", refused(!0u32, |a, b| a & b)),
            ("u32 xor from 0", refused(0u32, |a, b| a ^ b)),
            ("u32 max from 0", refused(0u32, |a, b| a.max(b))),
            ("u32 min from u32::MAX", refused(u32::MAX, |a, b| a.min(b))),
            ("u32 sum from 0", refused(0u32, |a, b| a + b)),
            ("u32 product from 1", refused(1u32, |a, b| a * b)),
            ("i64 sum from 0", refused(0i64, |a, b| a + b)),
            ("i64 max from i64::MIN", refused(i64::MIN, |a, b| a.max(b))),
            ("u64 min from u64::MAX", refused(u64::MAX, |a, b| a.min(b))),
            ("u64 and from !0", refused(!0u64, |a, b| a & b)),
            ("f32 sum from 0.0 (0.0 + -0.0 is +0.0)", refused(0.0f32, |a, b| a + b)),
            ("f32 sum from -0.0", refused(-0.0f32, |a, b| a + b)),
            ("f32 product from 1.0", refused(1.0f32, |a, b| a * b)),
            ("f32 max from f32::MIN (finite probes only)", refused(f32::MIN, f32::max)),
            ("f32 max from -inf", refused(f32::NEG_INFINITY, f32::max)),
            ("f32 min from f32::MAX", refused(f32::MAX, f32::min)),
            ("f32 min from +inf", refused(f32::INFINITY, f32::min)),
            ("f32 max by comparison from f32::MIN", refused(f32::MIN, |a, b| if b > a { b } else { a })),
            ("f64 sum from 0.0", refused(0.0f64, |a, b| a + b)),
            ("f64 max from f64::MIN", refused(f64::MIN, f64::max)),
            ("f64 min from +inf", refused(f64::INFINITY, f64::min)),
            ("a combine that panics is left to the runtime", refused(0i32, |_, _| panic!("combine refuses"))),
            (
                "a panic on a probe ends the probing (1 panics before -1 would refuse)",
                refused(0i32, |a, b| if b == 1 { panic!("no ones") } else { a.max(b) }),
            ),
        ];
        for (what, result) in accepted {
            assert_eq!(result, None, "{what} must be accepted");
        }
    }

    #[test]
    fn an_identity_a_probe_does_not_keep_is_refused_with_that_probe() {
        let refusals: Vec<(&str, Option<String>, &str)> = vec![
            ("i32 sum from 5", refused(5i32, |a, b| a + b), "combine(5, 5) = 10, not 5"),
            ("i32 max from 0", refused(0i32, |a, b| a.max(b)), "combine(0, -1) = 0, not -1"),
            ("i32 min from 0", refused(0i32, |a, b| a.min(b)), "combine(0, 1) = 0, not 1"),
            (
                "i32 min from i32::MIN",
                refused(i32::MIN, |a, b| a.min(b)),
                "combine(-2147483648, 0) = -2147483648, not 0",
            ),
            ("i32 product from 0", refused(0i32, |a, b| a * b), "combine(0, 1) = 0, not 1"),
            ("i32 and from 0", refused(0i32, |a, b| a & b), "combine(0, 1) = 0, not 1"),
            ("i32 or from !0", refused(!0i32, |a, b| a | b), "combine(-1, 0) = -1, not 0"),
            ("u32 min from 0", refused(0u32, |a, b| a.min(b)), "combine(0, 1) = 0, not 1"),
            ("u32 max from 1", refused(1u32, |a, b| a.max(b)), "combine(1, 0) = 1, not 0"),
            ("u64 and from 1", refused(1u64, |a, b| a & b), "combine(1, 2) = 0, not 2"),
            ("f32 max from 0.0", refused(0.0f32, f32::max), "combine(0.0, -1.0) = 0.0, not -1.0"),
            ("f32 min from 0.0", refused(0.0f32, f32::min), "combine(0.0, 1.0) = 0.0, not 1.0"),
            ("f32 min from 1e30", refused(1e30f32, f32::min), "combine(1e30, 3.4028235e38) = 1e30, not 3.4028235e38"),
            (
                "f64 max from -1e300",
                refused(-1e300f64, f64::max),
                "combine(-1e300, -1.7976931348623157e308) = -1e300, not -1.7976931348623157e308",
            ),
            ("f32 product from 1 one-sided", refused(1.0f32, |a, _| a), "combine(1.0, 0.0) = 1.0, not 0.0"),
            ("a non-commutative combine kept on the left only", refused(0i32, |_, b| b), "combine(1, 0) = 0, not 1"),
        ];
        for (what, result, call) in refusals {
            assert_eq!(result.as_deref(), Some(call), "{what}");
        }
    }

    /// The two calls that show `combine` is not commutative, or `None`.
    fn unordered<T: Reducible>(identity: T, combine: impl Fn(T, T) -> T) -> Option<String> {
        match probe(identity, &combine)? {
            Probed::Order(f) => Some(format!("{} = {}, {} = {}", f.call, f.gave, f.swapped, f.gave_swapped)),
            Probed::Identity(f) => panic!("the identity is refused first: {f:?}"),
        }
    }

    #[test]
    fn a_combine_that_is_not_commutative_on_small_values_is_refused_with_both_calls() {
        let first = |a: u32, b: u32| if a != 0 { a } else { b };
        assert_eq!(unordered(0u32, first).as_deref(), Some("combine(1, 2) = 1, combine(2, 1) = 2"));
        let last = |a: i64, b: i64| if b != 0 { b } else { a };
        assert_eq!(unordered(0i64, last).as_deref(), Some("combine(1, -1) = -1, combine(-1, 1) = 1"));
        let first_f = |a: f32, b: f32| if a != 0.0 { a } else { b };
        assert_eq!(unordered(0.0f32, first_f).as_deref(), Some("combine(1.0, -1.0) = 1.0, combine(-1.0, 1.0) = -1.0"));
        // Commutative combines pass, f32::max and min with +0.0 and -0.0 included; so does a combine that is not
        // commutative only beyond the small values (the runtime checks the pairs it combines).
        assert_eq!(unordered(f32::NEG_INFINITY, f32::max), None);
        assert_eq!(unordered(f64::INFINITY, f64::min), None);
        assert_eq!(unordered(0.0f32, |a, b| a + b), None);
        assert_eq!(unordered(1.0f64, |a, b| a * b), None);
        assert_eq!(unordered(0u32, |a, b| a ^ b), None);
        assert_eq!(unordered(0u32, |a, b| if a >= 16 && b >= 16 { a } else { a.max(b) }), None);
        // The NaN a combine gives for two values counts as the same NaN either way.
        assert_eq!(unordered(0.0f32, |a, b| if a != 0.0 && b != 0.0 { f32::NAN } else { a + b }), None);
        // A panic ends the probing.
        assert_eq!(probe(0u32, &|a: u32, b: u32| if a == 2 { panic!("no twos") } else { first(a, b) }), None);
    }

    #[test]
    fn a_sentinel_that_only_an_extreme_value_passes_is_marked_for_a_warning() {
        let extreme = |f: Option<IdentityFault>| f.map(|f| f.extreme);
        // The largest index found, -1 if none; the smallest, n if none: kept by every value but the type's extremes.
        assert_eq!(extreme(fault(-1i32, &|a: i32, b: i32| a.max(b))), Some(true));
        assert_eq!(extreme(fault(1000u32, &|a: u32, b: u32| a.min(b))), Some(true));
        assert_eq!(extreme(fault(1e30f32, &f32::min)), Some(true));
        // A small value shows these: refused.
        assert_eq!(extreme(fault(0i32, &|a: i32, b: i32| a.max(b))), Some(false));
        assert_eq!(extreme(fault(5i32, &|a: i32, b: i32| a + b)), Some(false));
        assert_eq!(extreme(fault(0.0f32, &f32::max)), Some(false));
    }
}
