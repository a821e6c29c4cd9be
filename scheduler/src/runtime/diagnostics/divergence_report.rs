//! The divergence report: what a rank prints when the divergence check finds that the ranks' task streams differ
//! (the first differing task, found by a second reduction, and which ranks ended their program early), and how it
//! describes a task for that report (kind, range, collective group and host objects, kernel and scalars, accesses
//! with their buffers and mappers, reductions).

use celer_graph::BufferId;

use super::super::kernel::KernelPayload;
use super::super::RankLoop;
use super::{DIVERGENCE_DETAIL_TIMEOUT, ENDED_RANK_GRACE, STALL_GRACE};
use crate::divergence::StreamHash;

/// A task's collective group and host objects for divergence reports, from its window entry (kept after the task is
/// pruned): `, in collective group CG1; side effect on host object H0`. Both are numbered in creation order on each
/// rank, so a rank that creates one more (or one fewer) numbers the following ones differently: the note says so.
fn describe_group_and_objects(w: &crate::divergence::WindowTask) -> String {
    let mut out = String::new();
    if let celer_graph::TaskKind::Collective(g) = w.kind {
        match g.0 {
            0 => out.push_str(&format!(", in collective group {g} (the default one, task::host_collective)")),
            _ => out.push_str(&format!(", in collective group {g} (the rank's {} q.collective_group())", ordinal(g.0))),
        }
    }
    if w.object_count > 0 {
        let shown: Vec<String> = w
            .objects
            .iter()
            .flatten()
            .map(|h| format!("{h} (the rank's {} q.host_object)", ordinal(h.0 + 1)))
            .collect();
        let more = w.object_count.saturating_sub(shown.len());
        let more = if more > 0 { format!(" and {more} more") } else { String::new() };
        let s = if w.object_count == 1 { "" } else { "s" };
        out.push_str(&format!("; side effect on host object{s} {}{more}", shown.join(", ")));
    }
    if matches!(w.kind, celer_graph::TaskKind::Collective(g) if g.0 > 0) || w.object_count > 0 {
        out.push_str(
            " (host objects and collective groups are numbered in creation order on each rank: a rank that creates \
             one more or one fewer before this task numbers the later ones differently)",
        );
    }
    out
}

/// `1st`, `2nd`, `3rd`, `4th`, … for reports.
fn ordinal(n: u64) -> String {
    let suffix = match (n % 10, n % 100) {
        (1, 11) | (2, 12) | (3, 13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("{n}{suffix}")
}

/// A kernel task's scalar words for divergence reports: each as its bits and as the push-constant member (or
/// vector component) it fills, of the type the kernel declares (`0x00000005 (k: i32 5)`, `0x3e4ccccd (alpha: f32
/// 0.2)`, `0x3f000000 (s.y: f32 0.5)`); a word of the padding WGSL puts before a vector member as `(padding)`; as an
/// `f32` where the kernel does not describe the word.
fn describe_scalars(k: &KernelPayload) -> String {
    let ep = k.source.entry_point(k.entry);
    describe_scalar_words(
        ep.map(|e| e.push_constants).unwrap_or_default(),
        ep.map(|e| e.push_constant_bytes),
        &k.scalars,
    )
}

/// [`describe_scalars`] of the words `scalars` for a push-constant struct of `members` and `bytes` (`None`: the
/// kernel does not describe it).
fn describe_scalar_words(
    members: &[celer_exec::shaders::PushMemberDesc],
    bytes: Option<u32>,
    scalars: &[u32],
) -> String {
    use celer_exec::shaders::ScalarType;
    // The scalars are the words after the boxes, in push order, up to the struct's end (trailing padding included).
    let base = members.iter().filter(|m| m.ty == "CelerBox").map(|m| m.offset + m.size).max().unwrap_or(0);
    let end = bytes.unwrap_or(base);
    let shown: Vec<String> = scalars
        .iter()
        .enumerate()
        .map(|(i, &w)| {
            let at = base + 4 * i as u32;
            let Some(m) = members.iter().find(|m| m.ty != "CelerBox" && (m.offset..m.offset + m.size).contains(&at))
            else {
                return if at < end {
                    format!("{w:#010x} (padding)")
                } else {
                    format!("{w:#010x} (f32 {})", f32::from_bits(w))
                };
            };
            let word = ((at - m.offset) / 4) as usize;
            let name = match () {
                _ if m.size == 4 => m.name.to_string(),
                _ if m.ty.starts_with("vec") => format!("{}.{}", m.name, ["x", "y", "z", "w"][word.min(3)]),
                _ => format!("{} word {word}", m.name),
            };
            match m.scalar {
                Some(ScalarType::I32) => format!("{w:#010x} ({name}: i32 {})", w as i32),
                Some(ScalarType::U32) => format!("{w:#010x} ({name}: u32 {w})"),
                _ => format!("{w:#010x} ({name}: f32 {})", f32::from_bits(w)),
            }
        })
        .collect();
    shown.join(", ")
}

/// A range mapper for divergence reports, with the parameters the task hash covers (a fixed box, a slice's
/// dimension, a neighbourhood's extent), so that two ranks' sides show what differs.
fn describe_mapper(m: &celer_graph::RangeMapper) -> String {
    use celer_graph::RangeMapper;
    match m {
        RangeMapper::Fixed(b) => format!("fixed {b}"),
        RangeMapper::Slice(d) => format!("slice({d})"),
        RangeMapper::Neighborhood { extent, shape } => format!("neighborhood({extent:?}, {shape:?})"),
        RangeMapper::EvenSplit { .. } => format!("{m:?}"),
        other => other.name().to_string(),
    }
}

/// A task's kind for a divergence report, an epoch with what recorded it: a `wait` on one rank against a `barrier` on
/// another differ only there.
fn kind_name(kind: celer_graph::TaskKind) -> &'static str {
    use celer_graph::{EpochAction, TaskKind};
    match kind {
        TaskKind::Epoch(EpochAction::Init) => "epoch: start of the program",
        TaskKind::Epoch(EpochAction::None) => "epoch: wait",
        TaskKind::Epoch(EpochAction::Barrier) => "epoch: barrier",
        TaskKind::Epoch(EpochAction::Shutdown) => "epoch: shutdown",
        other => other.name(),
    }
}

/// A reduction's operation for divergence reports, and whether it folds in the buffer's current value
/// (`reduce_including`), which the task hash covers: `Sum, including the buffer's current value`.
fn describe_reduction(r: &celer_graph::ReductionSpec) -> String {
    let including = if r.include_current_value { ", including the buffer's current value" } else { "" };
    format!("{:?}{including}", r.op)
}

/// How a task splits, for divergence reports, where it is not the default (both are in the task hash, so a rank that
/// alone asks for `.split_2d()` or a granularity differs there): `; granularity [4, 1, 1]; split 2D (split_2d)`.
fn describe_split(s: &celer_graph::TaskSpec) -> String {
    let mut out = String::new();
    if s.granularity != [1; 3] {
        out.push_str(&format!("; granularity {:?}", s.granularity));
    }
    if s.hint == celer_graph::SplitHint::TwoD {
        out.push_str("; split 2D (split_2d)");
    }
    out
}

impl RankLoop<'_> {
    /// Describes task `id` as this rank recorded it, for divergence reports.
    pub(in crate::runtime) fn describe_task(&self, w: &crate::divergence::WindowTask) -> String {
        let Some(t) = self.tm.task(w.id) else {
            let mut out = format!("{} ({}) over {}", w.id, kind_name(w.kind), w.range);
            out.push_str(&describe_group_and_objects(w));
            // Its buffers are still known (a buffer's state outlives the tasks that use it): name, extent, element
            // type and creation hash, which is often what differs.
            let shown: Vec<String> = w.buffers.iter().flatten().map(|&b| self.describe_buffer(b)).collect();
            if !shown.is_empty() {
                let more = w.buffer_count.saturating_sub(shown.len());
                let more = if more > 0 { format!(" and {more} more") } else { String::new() };
                out.push_str(&format!("; uses {}{more}", shown.join(", ")));
            }
            out.push_str(" (pruned already: its access modes, mappers and kernel are no longer known)");
            return out;
        };
        let s = &t.spec;
        let mut out = format!("{} ({}) over {}", t.ident(), kind_name(s.kind), s.range);
        if s.kind == celer_graph::TaskKind::Epoch(celer_graph::EpochAction::Shutdown) {
            out.push_str(", the shutdown epoch its Queue's drop records");
        }
        out.push_str(&describe_group_and_objects(w));
        if let Some(k) = s.payload.as_ref().and_then(|p| p.downcast_ref::<KernelPayload>()) {
            let code = crate::divergence::code_hash(k.source);
            out.push_str(&format!("; kernel {}::{} (code {code:016x})", k.source.name(), k.entry));
            if !k.scalars.is_empty() {
                out.push_str(&format!(", scalars [{}]", describe_scalars(k)));
            }
        }
        for a in s.accesses.iter() {
            let b = self.describe_buffer(a.buffer);
            out.push_str(&format!("; {} {b} {}", a.mode.name(), describe_mapper(&a.mapper)));
        }
        let customs = s.payload.as_ref().and_then(|p| p.downcast_ref::<KernelPayload>()).map(|k| &k.custom_reductions);
        for (i, r) in s.reductions.iter().enumerate() {
            out.push_str(&format!("; reduction {} into {}", describe_reduction(r), self.describe_buffer(r.buffer)));
            if let Some(Some(c)) = customs.and_then(|c| c.get(i)) {
                let identity: Vec<String> = c.identity.iter().map(|b| format!("{b:02x}")).collect();
                out.push_str(&format!(
                    " (reduce_with from identity bytes {}, whose combine closure gives {} on this rank)",
                    identity.join(" "),
                    c.probed
                ));
            }
        }
        out.push_str(&describe_split(s));
        out
    }

    /// What the custom range mappers of a task gave on this rank for the chunks the divergence check compares, for
    /// its report: `; its custom range mapper peek of buffer B0 "src" (read) gives, on this rank, chunk [0] - [32]:
    /// {[0] - [64]}, chunk [32] - [64]: {[0] - [64]} (…)`; empty without samples.
    fn describe_samples(&self, samples: &[crate::divergence::MapperSample]) -> String {
        let mut out = String::new();
        let mut accesses: Vec<usize> = samples.iter().map(|s| s.access).collect();
        accesses.sort_unstable();
        accesses.dedup();
        for access in accesses {
            let mut of = samples.iter().filter(|s| s.access == access).peekable();
            let Some(first) = of.peek() else { continue };
            let head = format!(
                "; its custom range mapper {} of {} ({}, accessor {access}) gives, on this rank,",
                first.mapper,
                self.buffer_ident(first.buffer),
                first.mode
            );
            out.push_str(&head);
            let shown: Vec<String> = of
                .map(|s| match &s.region {
                    Some(r) => format!(" chunk {}: {r}", s.chunk),
                    None => format!(" chunk {}: (cannot be applied)", s.chunk),
                })
                .collect();
            out.push_str(&shown.join(","));
        }
        if !out.is_empty() {
            out.push_str(
                " (every rank applies a task's custom range mappers to the other ranks' chunks too, to find which \
                 cells move between them, so a custom mapper must give every rank the same regions: a pure function of \
                 the chunk, the index space and the buffer's extent, not of the rank, a counter, the time or random \
                 numbers; where every other part of this task agrees between the ranks' reports, this is what differs)",
            );
        }
        out
    }

    /// A buffer for divergence reports: its name, extent, and the checksum of what it was created with.
    fn describe_buffer(&self, b: BufferId) -> String {
        let mut out = self.buffer_ident(b);
        if let Some(state) = self.buffers.get(&b) {
            out.push_str(&format!(
                " (extent {}, {}-byte elements of {}",
                state.extent, state.elem_size, state.elem_type
            ));
            match self.divergence.as_ref().and_then(|d| d.stream.buffer(b)) {
                Some(h) => out.push_str(&format!(", creation hash {h:#018x} over extent, element type and data)")),
                None => out.push(')'),
            }
        }
        out
    }

    /// The ranks' task streams differ in the oldest pending window: finds the first differing task with a
    /// second reduction (every rank saw the same result, so every rank takes part), reports this rank's side and
    /// ends every rank.
    pub(in crate::runtime) fn diverged(&mut self) -> ! {
        let d = self.divergence.as_ref().expect("the divergence check is on");
        let window = d.stream.oldest().expect("a pending window").clone();
        let (rank, ranks) = (self.comm.rank() as usize, self.comm.size() as usize);
        let detail = d.detail.iallreduce_min(StreamHash::window_detail(&window, rank, ranks)).and_then(|mut r| {
            let deadline = std::time::Instant::now() + DIVERGENCE_DETAIL_TIMEOUT;
            loop {
                if let Some(min) = r.test(self.comm)? {
                    return Ok(Some(min.to_vec()));
                }
                if std::time::Instant::now() > deadline {
                    return Ok(None);
                }
                std::hint::spin_loop();
            }
        });
        let after = window.after.map_or("the start of the program".to_string(), |t| format!("checkpoint {t}"));
        let checkpoint = window.tasks.last().map_or(String::new(), |t| format!("; here it ends with {}", t.id));
        let mut msg = format!(
            "the ranks submitted different tasks (CELER_CHECK_DIVERGENCE): task window {} (after {after}{checkpoint}) \
             differs between ranks",
            window.ordinal
        );
        // The ranks whose first differing task is their shutdown epoch: they ended their program there.
        let mut ended = Vec::new();
        match detail {
            Ok(Some(min)) => {
                let (first, lo, hi) = StreamHash::first_difference(&min);
                if let Some(i) = first {
                    ended = StreamHash::ended_at(&min, i);
                }
                if !ended.is_empty() && ended.len() < ranks {
                    let who: Vec<String> = ended.iter().map(|r| r.to_string()).collect();
                    let (who, its) = match who.len() {
                        1 => (format!("rank {}", who[0]), "its"),
                        _ => (format!("ranks {}", who.join(", ")), "their"),
                    };
                    let at = first.and_then(|i| window.tasks.get(i)).map_or(String::new(), |t| format!(" {}", t.id));
                    let why = if ended.contains(&rank) {
                        "; this is that rank: its own error, if its program reported one, follows"
                    } else {
                        "; its own output says why"
                    };
                    msg.push_str(&format!(
                        ": {who} ended {its} program before reaching the other ranks' point (dropped {its} Queue at \
                         task{at}: main returned, with an error or not, the queue went out of scope, or the program called \
                         std::process::exit){why}"
                    ));
                }
                if lo != hi {
                    msg.push_str(&format!("; the window holds {lo} to {hi} tasks across ranks"));
                }
                match first {
                    Some(i) => {
                        let agree = match i {
                            0 => "Its first task already differs".to_string(),
                            1 => "Its first task agrees".to_string(),
                            _ => format!("Its first {i} tasks agree"),
                        };
                        match window.tasks.get(i) {
                            Some(t) => msg.push_str(&format!(
                                ". {agree}; task {} of the window differs, here: {}{}",
                                i + 1,
                                self.describe_task(t),
                                self.describe_samples(window.samples_of(t.id))
                            )),
                            None => msg.push_str(&format!(
                                ". {agree}; here the window ends there, other ranks have more tasks"
                            )),
                        }
                    }
                    None => msg.push_str(&format!(
                        ". Its first {} tasks agree; a later one differs",
                        crate::divergence::DETAIL_TASKS
                    )),
                }
            }
            Ok(None) => msg.push_str(" (the other ranks did not answer the search for the first differing task)"),
            Err(e) => msg.push_str(&format!(" (searching for the first differing task failed: {e})")),
        }
        crate::logging::fatal(&msg);
        if !ended.is_empty() && ended.len() < ranks {
            if ended.contains(&rank) {
                // This rank's application thread waits in its queue's drop: let it go on, so that what the program
                // does next (`main` printing its error) is seen, and end the job only if it is still alive then.
                super::super::exit::release_ended_rank();
                std::thread::sleep(ENDED_RANK_GRACE);
            } else {
                // Give the rank that ended the time to print its own error before MPI_Abort ends it.
                std::thread::sleep(2 * STALL_GRACE);
            }
        } else {
            std::thread::sleep(STALL_GRACE);
        }
        self.comm.abort(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn divergence_reports_show_the_split_and_whether_a_reduction_includes_the_current_value() {
        // Both are in the task hash; a report that left them out showed the same task on both sides.
        let mut s = celer_graph::TaskSpec::new(
            celer_graph::TaskKind::DeviceCompute,
            2,
            celer_graph::GridBox::d2([0, 0], [8, 8]),
        );
        assert_eq!(describe_split(&s), "");
        s.hint = celer_graph::SplitHint::TwoD;
        s.granularity = [4, 1, 1];
        assert_eq!(describe_split(&s), "; granularity [4, 1, 1]; split 2D (split_2d)");
        let mut r = celer_graph::ReductionSpec {
            id: celer_graph::ReductionId(0),
            buffer: BufferId(0),
            op: celer_graph::ReductionOp::Sum,
            include_current_value: false,
        };
        assert_eq!(describe_reduction(&r), "Sum");
        r.include_current_value = true;
        assert_eq!(describe_reduction(&r), "Sum, including the buffer's current value");
    }

    #[test]
    fn divergence_reports_show_each_scalar_as_the_type_its_member_declares() {
        // nbody.wgsl's scalars are `n: u32`, `dt: f32` and `eps2: f32`; a word past them has no member.
        let k = KernelPayload {
            source: &celer_exec::shaders::NBODY,
            entry: "main",
            scalars: smallvec::smallvec![5, 0.25f32.to_bits(), 0.5f32.to_bits(), 7],
            reduction_kinds: Vec::new(),
            custom_reductions: Vec::new(),
            blocks: None,
        };
        assert_eq!(
            describe_scalars(&k),
            "0x00000005 (n: u32 5), 0x3e800000 (dt: f32 0.25), 0x3f000000 (eps2: f32 0.5), 0x00000007 (f32 0.00000000000000000000000000000000000000000001)"
        );
    }

    #[test]
    fn divergence_reports_name_vector_components_and_padding() {
        use celer_exec::shaders::{PushMemberDesc, ScalarType};
        let pm = |name, ty, scalar, offset, size| PushMemberDesc { name, ty, scalar: Some(scalar), offset, size };
        // chunk, then `t: u32`, `s: vec2<f32>` (aligned to 8: a padding word before it), `m: vec4<i32>` (aligned to
        // 16: two padding words), 48 bytes in all.
        let members = [
            PushMemberDesc { name: "chunk", ty: "CelerBox", scalar: None, offset: 0, size: 24 },
            pm("t", "u32", ScalarType::U32, 24, 4),
            pm("s", "vec2<f32>", ScalarType::F32, 32, 8),
            pm("m", "vec4<i32>", ScalarType::I32, 48, 16),
        ];
        let words = [3, 0, 0.5f32.to_bits(), 2.0f32.to_bits(), 0, 0, 1, (-2i32) as u32, 3, 4];
        assert_eq!(
            describe_scalar_words(&members, Some(64), &words),
            "0x00000003 (t: u32 3), 0x00000000 (padding), 0x3f000000 (s.x: f32 0.5), 0x40000000 (s.y: f32 2), \
             0x00000000 (padding), 0x00000000 (padding), 0x00000001 (m.x: i32 1), 0xfffffffe (m.y: i32 -2), \
             0x00000003 (m.z: i32 3), 0x00000004 (m.w: i32 4)"
        );
    }
}
