//! End to end, on real ranks and a real Vulkan device: GPU work that starts behind a horizon before the horizon is
//! reached (a horizon whose dependencies are all complete or queued on the GPU counts as queued), in programs built
//! to expose work started too early: constant inputs read by chains of kernels while other buffers are written, then
//! written on the GPU and by host tasks; horizons whose front mixes kernels with host tasks, collective host tasks,
//! pushes and await-pushes; reductions (plain, including the current value, deterministic blocks) read back by
//! kernels; fences of sub-ranges at every step; allocations that grow while work is queued; buffers dropped every
//! step; halos read, then overwritten in place a few horizons later; waits and barriers; kernels reading constant
//! inputs while a slow host task holds up the horizons they depend on (they must not wait for it), and kernels and
//! reductions that must wait for such a host task, whose cells they read or overwrite. Each program is compared
//! with a serial loop in plain Rust. Run alone (one rank) or under `mpirun -n N`, with `--devices N` for N devices
//! per rank, `--horizon-step N` for a horizon every N steps of the critical path (1: after every task; `./x test` runs
//! 1 and 2), `--submit-ahead N` (CELER_SUBMIT_AHEAD), `--slow-steps N` for `slow_host`'s kernels (16) and
//! `--case NAME` for one program.

use std::process::ExitCode;

mod common;

use celer::{access, kernels, task, Buffer, Kernel, Queue, ReductionOp};

/// The kernels of `kernels/` (hstress and hstress_ops here).
#[allow(dead_code)] // kernels/ holds the kernels of several tests and examples
mod own_kernels {
    celer::include_kernels!();
}

fn e(x: impl std::fmt::Display) -> String {
    x.to_string()
}

/// The kernels the programs use.
struct Ks {
    stencil: Kernel,
    combine: Kernel,
    axpy: Kernel,
    bump: Kernel,
}

impl Ks {
    fn new() -> Result<Ks, String> {
        Ok(Ks {
            stencil: Kernel::wgsl(&own_kernels::HSTRESS, "stencil").map_err(e)?,
            combine: Kernel::wgsl(&own_kernels::HSTRESS_OPS, "combine").map_err(e)?,
            axpy: Kernel::wgsl(&own_kernels::HSTRESS_OPS, "axpy").map_err(e)?,
            bump: Kernel::wgsl(&own_kernels::HSTRESS_OPS, "bump").map_err(e)?,
        })
    }

    /// `dst = stencil(src) + k coef` over `[off, off + len)`.
    #[allow(clippy::too_many_arguments)]
    fn stencil(
        &self,
        q: &Queue,
        src: &Buffer<'_, i32, 1>,
        coef: &Buffer<'_, i32, 1>,
        dst: &Buffer<'_, i32, 1>,
        k: i32,
        n: usize,
        (off, len): (usize, usize),
    ) -> Result<(), String> {
        q.submit(
            task::parallel_for(&self.stencil, [len])
                .offset([off])
                .read(src, access::neighborhood([1]))
                .read(coef, access::one_to_one())
                .discard_write(dst, access::one_to_one())
                .scalar("k", k)
                .scalar("n", n as u32)
                .name("stencil"),
        )
        .map(|_| ())
        .map_err(e)
    }

    /// `out = a + 2 b + 3 c + k` over `[0, n)`.
    fn combine(
        &self,
        q: &Queue,
        [a, b, c]: [&Buffer<'_, i32, 1>; 3],
        out: &Buffer<'_, i32, 1>,
        k: i32,
        n: usize,
    ) -> Result<(), String> {
        q.submit(
            task::parallel_for(&self.combine, [n])
                .read(a, access::one_to_one())
                .read(b, access::one_to_one())
                .read(c, access::one_to_one())
                .discard_write(out, access::one_to_one())
                .scalar("k", k)
                .name("combine"),
        )
        .map(|_| ())
        .map_err(e)
    }

    /// `out = 3 out + a + b[0] c + k` (or `bump`'s bounded version) over `[off, off + len)`.
    #[allow(clippy::too_many_arguments)]
    fn axpy(
        &self,
        q: &Queue,
        bounded: bool,
        [a, b, c]: [&Buffer<'_, i32, 1>; 3],
        out: &Buffer<'_, i32, 1>,
        k: i32,
        (off, len): (usize, usize),
    ) -> Result<(), String> {
        q.submit(
            task::parallel_for(if bounded { &self.bump } else { &self.axpy }, [len])
                .offset([off])
                .read(a, access::one_to_one())
                .read(b, access::all())
                .read(c, access::one_to_one())
                .read_write(out, access::one_to_one())
                .scalar("k", k)
                .name(if bounded { "bump" } else { "axpy" }),
        )
        .map(|_| ())
        .map_err(e)
    }
}

/// The serial versions of the kernels.
mod serial {
    pub fn stencil(src: &[i32], coef: &[i32], dst: &mut [i32], k: i32, (off, len): (usize, usize)) {
        let at = |i: isize| if i >= 0 && (i as usize) < src.len() { src[i as usize] } else { 0 };
        for i in off..off + len {
            let j = i as isize;
            dst[i] = at(j - 1)
                .wrapping_add(at(j).wrapping_mul(3))
                .wrapping_sub(at(j + 1))
                .wrapping_add(k.wrapping_mul(coef[i]));
        }
    }

    pub fn combine(a: &[i32], b: &[i32], c: &[i32], k: i32) -> Vec<i32> {
        (0..a.len())
            .map(|i| a[i].wrapping_add(b[i].wrapping_mul(2)).wrapping_add(c[i].wrapping_mul(3)).wrapping_add(k))
            .collect()
    }

    pub fn axpy(bounded: bool, a: &[i32], b0: i32, c: &[i32], out: &mut [i32], k: i32, (off, len): (usize, usize)) {
        for i in off..off + len {
            out[i] = if bounded {
                (out[i] + a[i] + (b0 % 1000) * c[i] + k) % 100_000
            } else {
                out[i].wrapping_mul(3).wrapping_add(a[i]).wrapping_add(b0.wrapping_mul(c[i])).wrapping_add(k)
            };
        }
    }
}

fn fence(q: &Queue, b: &Buffer<'_, i32, 1>) -> Result<Vec<i32>, String> {
    q.fence(b).map_err(e)?.wait().map_err(e)
}

fn check(what: &str, got: &[i32], want: &[i32]) -> Result<(), String> {
    if got.len() != want.len() {
        return Err(format!("{what}: {} cells, want {}", got.len(), want.len()));
    }
    match got.iter().zip(want).position(|(g, w)| g != w) {
        None => Ok(()),
        Some(i) => Err(format!(
            "{what}: cell {i} is {}, want {} ({} of {} cells differ)",
            got[i],
            want[i],
            got.iter().zip(want).filter(|(g, w)| g != w).count(),
            got.len()
        )),
    }
}

fn host_data(n: usize, mul: usize, m: usize, sub: i32) -> Vec<i32> {
    (0..n).map(|i| ((i * mul + 3) % m) as i32 - sub).collect()
}

/// Two constant inputs read by a chain of stencils (halos every step) and combines; sub-range fences now and then.
fn const_chain(q: &Queue, ks: &Ks) -> Result<(), String> {
    let n = 777;
    let (c1h, c2h, mut uh) = (host_data(n, 7, 13, 6), host_data(n, 1, 5, 0), host_data(n, 1, 17, 8));
    let c1 = q.buffer_from(&c1h, [n]).named("c1");
    let c2 = q.buffer_from(&c2h, [n]).named("c2");
    let u = q.buffer_from(&uh, [n]).named("u");
    let v = q.buffer::<i32, 1>([n]).named("v");
    let mut vh = vec![0; n];
    for s in 0..24 {
        ks.stencil(q, &u, &c1, &v, s + 1, n, (0, n))?;
        serial::stencil(&uh, &c1h, &mut vh, s + 1, (0, n));
        ks.combine(q, [&v, &c1, &c2], &u, s, n)?;
        uh = serial::combine(&vh, &c1h, &c2h, s);
        if s % 6 == 5 {
            let off = (s as usize * 37) % (n - 60);
            let got = q.fence_subrange(&u, [off], [50]).map_err(e)?.wait().map_err(e)?;
            check(&format!("const_chain: u[{off}..+50] after step {s}"), &got, &uh[off..off + 50])?;
        }
    }
    check("const_chain: u", &fence(q, &u)?, &uh)?;
    check("const_chain: v", &fence(q, &v)?, &vh)
}

/// A constant input read by many steps, then written by a kernel (its readers' dependency flips from the horizon
/// to a real writer), then by a host task, and read by host tasks that log sums.
fn const_flip(q: &Queue, ks: &Ks) -> Result<(), String> {
    let n = 500;
    let steps = 36;
    let (mut ch, mut uh) = (host_data(n, 3, 11, 5), host_data(n, 5, 23, 11));
    let c = q.buffer_from(&ch, [n]).named("c");
    let u = q.buffer_from(&uh, [n]).named("u");
    let one = q.buffer_from(&[1], [1]).named("one");
    let w = q.buffer::<i32, 1>([n]).named("w");
    let log = q.buffer_from(&vec![0; 4 * steps], [4 * steps]).named("log");
    let mut wh = vec![0; n];
    let mut logh = vec![0; 4 * steps];
    for s in 0..steps as i32 {
        ks.stencil(q, &u, &c, &w, s, n, (0, n))?;
        serial::stencil(&uh, &ch, &mut wh, s, (0, n));
        ks.axpy(q, false, [&w, &one, &c], &u, s, (0, n))?;
        serial::axpy(false, &wh, 1, &ch, &mut uh, s, (0, n));
        if s == 12 {
            ks.axpy(q, false, [&u, &one, &u], &c, 7, (0, n))?;
            let uc = uh.clone();
            serial::axpy(false, &uc, 1, &uc, &mut ch, 7, (0, n));
        }
        if s == 24 {
            q.submit(task::host_for([n]).read_write(&c, access::one_to_one()).name("host_rewrite_c").run(move |ctx| {
                let lo = ctx.chunk().min()[0];
                for (j, x) in ctx.data_mut::<i32>(0).iter_mut().enumerate() {
                    *x ^= ((lo + j) * 24) as i32;
                }
            }))
            .map_err(e)?;
            for (i, x) in ch.iter_mut().enumerate() {
                *x ^= (i * 24) as i32;
            }
        }
        if s % 5 == 2 {
            let at = 4 * s as usize;
            q.submit(
                task::host_once()
                    .read(&c, access::all())
                    .read(&u, access::all())
                    .discard_write(&log, access::fixed([at], [4]))
                    .name("log_sums")
                    .run(move |ctx| {
                        let sc = ctx.data::<i32>(0).iter().fold(0i32, |a, b| a.wrapping_add(*b));
                        let su = ctx.data::<i32>(1).iter().fold(0i32, |a, b| a.wrapping_add(*b));
                        let last = *ctx.data::<i32>(0).last().unwrap();
                        ctx.data_mut::<i32>(2).copy_from_slice(&[sc, su, s, last]);
                    }),
            )
            .map_err(e)?;
            let sc = ch.iter().fold(0i32, |a, b| a.wrapping_add(*b));
            let su = uh.iter().fold(0i32, |a, b| a.wrapping_add(*b));
            logh[at..at + 4].copy_from_slice(&[sc, su, s, ch[n - 1]]);
        }
    }
    check("const_flip: u", &fence(q, &u)?, &uh)?;
    check("const_flip: c", &fence(q, &c)?, &ch)?;
    check("const_flip: log", &fence(q, &log)?, &logh)
}

/// Every step mixes a kernel, a host task, a kernel reading both and (every fourth step) a collective host task.
fn host_front(q: &Queue, ks: &Ks) -> Result<(), String> {
    let n = 600;
    let ranks = q.ranks();
    let xh = host_data(n, 7, 19, 9);
    let (mut ah, mut bh) = (host_data(n, 1, 7, 3), host_data(n, 11, 31, 15));
    let x = q.buffer_from(&xh, [n]).named("x");
    let a = q.buffer_from(&ah, [n]).named("a");
    let b = q.buffer_from(&bh, [n]).named("b");
    let one = q.buffer_from(&[1], [1]).named("one");
    let d = q.buffer::<i32, 1>([n]).named("d");
    let mut eh: Vec<i32> = (0..ranks as i32).collect();
    let ebuf = q.buffer_from(&eh, [ranks]).named("e");
    let mut dh = vec![0; n];
    for s in 0..20 {
        ks.axpy(q, false, [&x, &one, &x], &a, s, (0, n))?;
        let xc = xh.clone();
        serial::axpy(false, &xc, 1, &xc, &mut ah, s, (0, n));
        q.submit(
            task::host_for([n])
                .read(&a, access::one_to_one())
                .read_write(&b, access::one_to_one())
                .name("host_step")
                .run(move |ctx| {
                    let av = ctx.data::<i32>(0).to_vec();
                    for (j, y) in ctx.data_mut::<i32>(1).iter_mut().enumerate() {
                        *y = y.wrapping_mul(5).wrapping_add(av[j]).wrapping_add(s);
                    }
                }),
        )
        .map_err(e)?;
        for i in 0..n {
            bh[i] = bh[i].wrapping_mul(5).wrapping_add(ah[i]).wrapping_add(s);
        }
        ks.combine(q, [&b, &x, &a], &d, s, n)?;
        dh = serial::combine(&bh, &xh, &ah, s);
        if s % 4 == 0 {
            q.submit(
                task::host_collective()
                    .read(&d, access::all())
                    .read_write(&ebuf, access::one_to_one())
                    .name("collective_sum")
                    .run(|ctx| {
                        let sum = ctx.data::<i32>(0).iter().fold(0i32, |a, b| a.wrapping_add(*b));
                        for y in ctx.data_mut::<i32>(1) {
                            *y = y.wrapping_mul(7).wrapping_add(sum);
                        }
                    }),
            )
            .map_err(e)?;
            let sum = dh.iter().fold(0i32, |a, b| a.wrapping_add(*b));
            for y in &mut eh {
                *y = y.wrapping_mul(7).wrapping_add(sum);
            }
        }
    }
    check("host_front: a", &fence(q, &a)?, &ah)?;
    check("host_front: b", &fence(q, &b)?, &bh)?;
    check("host_front: d", &fence(q, &d)?, &dh)?;
    check("host_front: e", &fence(q, &ebuf)?, &eh)
}

/// Plain reductions, reductions including the current value and deterministic block reductions, their results read
/// by the next step's kernel through `all`, with constant inputs.
fn reductions(q: &Queue, ks: &Ks) -> Result<(), String> {
    let n = 400;
    let ch = host_data(n, 3, 17, 0);
    let mut xh = host_data(n, 13, 101, 0);
    let c = q.buffer_from(&ch, [n]).named("c");
    let x = q.buffer_from(&xh, [n]).named("x");
    let s = q.buffer::<i32, 1>([1]).named("s");
    let bs = q.buffer::<i32, 1>([1]).named("block_s");
    let tot = q.buffer_from(&[5], [1]).named("tot");
    let sum = Kernel::wgsl(&kernels::REDUCE_I32, "reduce_sum").map_err(e)?;
    let block = Kernel::wgsl(&own_kernels::BLOCK_I32, "reduce_sum").map_err(e)?;
    let mut toth = 5i32;
    for st in 0..20 {
        q.submit(task::parallel_for(&sum, [n]).read(&x, access::one_to_one()).reduce(&s, ReductionOp::Sum))
            .map_err(e)?;
        q.submit(task::parallel_for(&sum, [n]).read(&x, access::one_to_one()).reduce_including(&tot, ReductionOp::Sum))
            .map_err(e)?;
        q.submit(task::parallel_for(&block, [n]).read(&x, access::one_to_one()).reduce(&bs, ReductionOp::Sum))
            .map_err(e)?;
        let sh: i32 = xh.iter().sum();
        toth += sh;
        if st % 2 == 0 {
            ks.axpy(q, true, [&c, &s, &c], &x, st, (0, n))?;
        } else {
            ks.axpy(q, true, [&c, &bs, &c], &x, st, (0, n))?;
        }
        serial::axpy(true, &ch, sh, &ch, &mut xh, st, (0, n));
        if st % 5 == 4 {
            let got = [fence(q, &s)?[0], fence(q, &bs)?[0]];
            if got != [sh, sh] {
                return Err(format!("reductions: step {st}: sums {got:?}, want {sh}"));
            }
        }
    }
    check("reductions: x", &fence(q, &x)?, &xh)?;
    check("reductions: tot", &fence(q, &tot)?, &[toth])
}

/// A fence of a moving sub-range after every step of a constant-input chain.
fn fences(q: &Queue, ks: &Ks) -> Result<(), String> {
    let n = 900;
    let ch = host_data(n, 5, 9, 4);
    let mut uh = host_data(n, 3, 29, 14);
    let c = q.buffer_from(&ch, [n]).named("c");
    let u = q.buffer_from(&uh, [n]).named("u");
    let u2 = q.buffer::<i32, 1>([n]).named("u2");
    let mut u2h = vec![0; n];
    for s in 0..30i32 {
        ks.stencil(q, &u, &c, &u2, s, n, (0, n))?;
        serial::stencil(&uh, &ch, &mut u2h, s, (0, n));
        ks.combine(q, [&u2, &c, &c], &u, s, n)?;
        uh = serial::combine(&u2h, &ch, &ch, s);
        let off = (s as usize * 37) % 800;
        let len = 1 + (s as usize * 3) % 100;
        let got = q.fence_subrange(&u, [off], [len]).map_err(e)?.wait().map_err(e)?;
        check(&format!("fences: u[{off}..+{len}] after step {s}"), &got, &uh[off..off + len])?;
        if s % 3 == 0 {
            check(&format!("fences: u2 after step {s}"), &fence(q, &u2)?, &u2h)?;
        }
    }
    Ok(())
}

/// Index spaces that grow from either end, so that allocations (of the constant input too) grow while work is
/// queued.
fn growth(q: &Queue, ks: &Ks) -> Result<(), String> {
    let n = 4096;
    let ch = host_data(n, 7, 23, 11);
    let c = q.buffer_from(&ch, [n]).named("c");
    let one = q.buffer_from(&[2], [1]).named("two");
    let g = q.buffer_from(&vec![0; n], [n]).named("g");
    let g2 = q.buffer_from(&vec![0; n], [n]).named("g2");
    let (mut gh, mut g2h) = (vec![0; n], vec![0; n]);
    for s in 0..16usize {
        let len = 256 * (s / 2 + 1);
        let part = if s % 2 == 0 { (0, len) } else { (n - len, len) };
        ks.axpy(q, false, [&c, &one, &c], &g, s as i32, part)?;
        serial::axpy(false, &ch, 2, &ch, &mut gh, s as i32, part);
        if s % 3 == 1 {
            ks.stencil(q, &g, &c, &g2, s as i32, n, part)?;
            serial::stencil(&gh, &ch, &mut g2h, s as i32, part);
        }
    }
    check("growth: g", &fence(q, &g)?, &gh)?;
    check("growth: g2", &fence(q, &g2)?, &g2h)
}

/// Buffers created, written, read and dropped every step, next to a constant input.
fn dropped(q: &Queue, ks: &Ks) -> Result<(), String> {
    let n = 500;
    let ch = host_data(n, 3, 7, 3);
    let c = q.buffer_from(&ch, [n]).named("c");
    let one = q.buffer_from(&[1], [1]).named("one");
    let acc = q.buffer_from(&vec![0; n], [n]).named("acc");
    let mut acch = vec![0; n];
    for s in 0..30i32 {
        let th = host_data(n, s as usize + 1, 41, 20);
        let t = q.buffer_from(&th, [n]).named("t");
        let t2 = q.buffer::<i32, 1>([n]).named("t2");
        ks.combine(q, [&t, &c, &c], &t2, s, n)?;
        let t2h = serial::combine(&th, &ch, &ch, s);
        ks.axpy(q, false, [&t2, &one, &c], &acc, s, (0, n))?;
        serial::axpy(false, &t2h, 1, &ch, &mut acch, s, (0, n));
    }
    check("dropped: acc", &fence(q, &acc)?, &acch)
}

/// Halos of a ring of three buffers read by a stencil, each buffer overwritten in place two steps after its halo
/// was last read (the writer's anti-dependency on the push then points at a horizon).
fn halo_inplace(q: &Queue, ks: &Ks) -> Result<(), String> {
    let n = 640;
    let ch = host_data(n, 5, 13, 6);
    let c = q.buffer_from(&ch, [n]).named("c");
    let one = q.buffer_from(&[1], [1]).named("one");
    let mut rh: Vec<Vec<i32>> = (0..3).map(|r| host_data(n, r + 2, 37, 18)).collect();
    let ring: Vec<Buffer<'_, i32, 1>> = rh.iter().map(|h| q.buffer_from(h, [n]).named("ring")).collect();
    let w = q.buffer::<i32, 1>([n]).named("w");
    let mut wh = vec![0; n];
    for s in 0..30usize {
        ks.stencil(q, &ring[s % 3], &c, &w, s as i32, n, (0, n))?;
        serial::stencil(&rh[s % 3], &ch, &mut wh, s as i32, (0, n));
        ks.axpy(q, false, [&w, &one, &c], &ring[(s + 1) % 3], s as i32, (0, n))?;
        serial::axpy(false, &wh, 1, &ch, &mut rh[(s + 1) % 3], s as i32, (0, n));
    }
    for (r, b) in ring.iter().enumerate() {
        check(&format!("halo_inplace: ring {r}"), &fence(q, b)?, &rh[r])?;
    }
    check("halo_inplace: w", &fence(q, &w)?, &wh)
}

/// Constant-input chains separated by waits and barriers (epochs), a host task reading the constant in between.
fn epochs(q: &Queue, ks: &Ks) -> Result<(), String> {
    let n = 512;
    let ch = host_data(n, 9, 21, 10);
    let mut uh = host_data(n, 1, 13, 6);
    let c = q.buffer_from(&ch, [n]).named("c");
    let u = q.buffer_from(&uh, [n]).named("u");
    let v = q.buffer::<i32, 1>([n]).named("v");
    let one = q.buffer_from(&[1], [1]).named("one");
    let mut vh = vec![0; n];
    for phase in 0..6i32 {
        for s in 0..5 {
            let k = phase * 10 + s;
            ks.stencil(q, &u, &c, &v, k, n, (0, n))?;
            serial::stencil(&uh, &ch, &mut vh, k, (0, n));
            // A constant created (and dropped) every step, and a scratch buffer written from it.
            let c2 = q.buffer_from(&ch, [n]).named("c_copy");
            ks.axpy(q, false, [&v, &one, &c2], &u, k, (0, n))?;
            serial::axpy(false, &vh, 1, &ch, &mut uh, k, (0, n));
            let scratch = q.buffer::<i32, 1>([n]).named("scratch");
            ks.combine(q, [&v, &c2, &u], &scratch, k, n)?;
        }
        q.submit(task::host_for([n]).read(&c, access::one_to_one()).read_write(&u, access::one_to_one()).run(|ctx| {
            let cv = ctx.data::<i32>(0).to_vec();
            for (j, y) in ctx.data_mut::<i32>(1).iter_mut().enumerate() {
                *y ^= cv[j];
            }
        }))
        .map_err(e)?;
        for i in 0..n {
            uh[i] ^= ch[i];
        }
        if phase % 2 == 0 {
            q.wait();
        } else {
            q.barrier();
        }
    }
    check("epochs: u", &fence(q, &u)?, &uh)?;
    check("epochs: v", &fence(q, &v)?, &vh)
}

/// Collective host tasks in two groups and host-object side effects between constant-input kernels.
fn collectives(q: &Queue, ks: &Ks) -> Result<(), String> {
    let n = 300;
    let ranks = q.ranks();
    let ch = host_data(n, 4, 15, 7);
    let c = q.buffer_from(&ch, [n]).named("c");
    let mut uh = host_data(n, 2, 19, 9);
    let u = q.buffer_from(&uh, [n]).named("u");
    let one = q.buffer_from(&[1], [1]).named("one");
    let g1 = q.collective_group();
    let g2 = q.collective_group();
    let mut p1h = vec![0i32; ranks];
    let mut p2h = vec![0i32; ranks];
    let p1 = q.buffer_from(&p1h, [ranks]).named("p1");
    let p2 = q.buffer_from(&p2h, [ranks]).named("p2");
    let counter = q.host_object(0i64);
    let w = q.buffer::<i32, 1>([n]).named("w");
    let mut wh = vec![0; n];
    for s in 0..16i32 {
        ks.stencil(q, &u, &c, &w, s, n, (0, n))?;
        serial::stencil(&uh, &ch, &mut wh, s, (0, n));
        ks.axpy(q, false, [&w, &one, &c], &u, s, (0, n))?;
        serial::axpy(false, &wh, 1, &ch, &mut uh, s, (0, n));
        let (group, p, ph) = if s % 2 == 0 { (&g1, &p1, &mut p1h) } else { (&g2, &p2, &mut p2h) };
        q.submit(
            task::host_collective_in(group)
                .read(&u, access::all())
                .read_write(p, access::one_to_one())
                .side_effect(&counter)
                .run(move |ctx| {
                    let su = ctx.data::<i32>(0).iter().fold(0i32, |a, b| a.wrapping_add(*b));
                    ctx.with_object::<i64, _>(0, |c| *c += 1);
                    for y in ctx.data_mut::<i32>(1) {
                        *y = y.wrapping_mul(3).wrapping_add(su).wrapping_add(s);
                    }
                }),
        )
        .map_err(e)?;
        let su = uh.iter().fold(0i32, |a, b| a.wrapping_add(*b));
        for y in ph.iter_mut() {
            *y = y.wrapping_mul(3).wrapping_add(su).wrapping_add(s);
        }
    }
    check("collectives: p1", &fence(q, &p1)?, &p1h)?;
    check("collectives: p2", &fence(q, &p2)?, &p2h)?;
    check("collectives: u", &fence(q, &u)?, &uh)?;
    let count = q.fence_object(&counter).map_err(e)?;
    if count != 16 {
        return Err(format!("collectives: the host object saw {count} side effects, want 16"));
    }
    Ok(())
}

/// The commit's own pattern: a long chain of kernels each reading several constant inputs, one fence at the end;
/// then the constants are rewritten by a kernel and a host task mid-chain.
fn long_chain(q: &Queue, ks: &Ks) -> Result<(), String> {
    let n = 256;
    let mut chs: Vec<Vec<i32>> = (0..4).map(|j| host_data(n, j + 3, 17 + 2 * j, 8)).collect();
    let cs: Vec<Buffer<'_, i32, 1>> = chs.iter().map(|h| q.buffer_from(h, [n]).named("k")).collect();
    let mut xh = host_data(n, 1, 9, 4);
    let x = q.buffer_from(&xh, [n]).named("x");
    let y = q.buffer::<i32, 1>([n]).named("y");
    let one = q.buffer_from(&[1], [1]).named("one");
    for s in 0..150i32 {
        let (a, b) = (&cs[s as usize % 4], &cs[(s as usize + 1) % 4]);
        ks.combine(q, [&x, a, b], &y, s, n)?;
        let yh = serial::combine(&xh, &chs[s as usize % 4], &chs[(s as usize + 1) % 4], s);
        ks.combine(q, [&y, b, a], &x, -s, n)?;
        xh = serial::combine(&yh, &chs[(s as usize + 1) % 4], &chs[s as usize % 4], -s);
        if s == 60 {
            ks.axpy(q, false, [&x, &one, &x], &cs[2], 1, (0, n))?;
            let xc = xh.clone();
            serial::axpy(false, &xc, 1, &xc, &mut chs[2], 1, (0, n));
        }
        if s == 100 {
            q.submit(task::host_for([n]).read_write(&cs[1], access::one_to_one()).run(|ctx| {
                for v in ctx.data_mut::<i32>(0) {
                    *v = v.wrapping_neg();
                }
            }))
            .map_err(e)?;
            for v in &mut chs[1] {
                *v = v.wrapping_neg();
            }
        }
    }
    check("long_chain: x", &fence(q, &x)?, &xh)?;
    for (j, c) in cs.iter().enumerate() {
        check(&format!("long_chain: constant {j}"), &fence(q, c)?, &chs[j])?;
    }
    Ok(())
}

/// A constant read by kernels whose index spaces are small parts, so that some nodes get no items; pushes of the
/// constant's neighbourhood to other nodes; the constant is then written by a kernel over one part only.
fn parts(q: &Queue, ks: &Ks) -> Result<(), String> {
    let n = 333;
    let mut ch = host_data(n, 7, 29, 14);
    let c = q.buffer_from(&ch, [n]).named("c");
    let mut uh = host_data(n, 3, 11, 5);
    let u = q.buffer_from(&uh, [n]).named("u");
    let two = q.buffer_from(&[2], [1]).named("two");
    let mut wh = vec![0; n];
    let w = q.buffer_from(&wh, [n]).named("w");
    for s in 0..40usize {
        let off = (s * 53) % (n - 20);
        let len = 1 + (s * 31) % (n - off);
        ks.stencil(q, &c, &u, &w, s as i32, n, (off, len))?;
        serial::stencil(&ch, &uh, &mut wh, s as i32, (off, len));
        ks.axpy(q, false, [&w, &two, &c], &u, s as i32, (0, n))?;
        serial::axpy(false, &wh, 2, &ch, &mut uh, s as i32, (0, n));
        if s % 13 == 12 {
            ks.axpy(q, false, [&u, &two, &u], &c, 3, (off, len.min(40)))?;
            let uc = uh.clone();
            serial::axpy(false, &uc, 2, &uc, &mut ch, 3, (off, len.min(40)));
        }
    }
    check("parts: u", &fence(q, &u)?, &uh)?;
    check("parts: w", &fence(q, &w)?, &wh)?;
    check("parts: c", &fence(q, &c)?, &ch)
}

/// A master-node host task (as slow as I/O) that runs until the program has read back what a chain of kernels after
/// it computed from constant inputs. Those kernels depend on horizons whose front holds the host task, but their
/// data was complete long before: they must run meanwhile, or the program waits for the host task's time limit.
fn slow_host(q: &Queue, ks: &Ks) -> Result<(), String> {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};
    const LIMIT: Duration = Duration::from_secs(15);
    let n = 300;
    let ch = host_data(n, 7, 13, 6);
    let c = q.buffer_from(&ch, [n]).named("c");
    let one = q.buffer_from(&[1], [1]).named("one");
    let mut xh = host_data(n, 1, 9, 4);
    let x = q.buffer_from(&xh, [n]).named("x");
    let released = Arc::new(AtomicBool::new(false));
    let ran_for = Arc::new(Mutex::new(None));
    let (flag, took) = (released.clone(), ran_for.clone());
    q.submit(task::host_once().name("slow_io").run(move |_| {
        let t0 = Instant::now();
        while !flag.load(Ordering::Acquire) && t0.elapsed() < LIMIT {
            std::thread::sleep(Duration::from_millis(1));
        }
        *took.lock().unwrap() = Some(t0.elapsed());
    }))
    .map_err(e)?;
    for s in 0..slow_steps() {
        ks.axpy(q, false, [&c, &one, &c], &x, s, (0, n))?;
        serial::axpy(false, &ch, 1, &ch, &mut xh, s, (0, n));
    }
    let got = fence(q, &x)?;
    released.store(true, Ordering::Release);
    check("slow_host: x", &got, &xh)?;
    q.wait();
    let took = *ran_for.lock().unwrap();
    match took {
        Some(t) if t >= LIMIT => Err(format!(
            "slow_host: the kernels reading constant inputs waited for the host task in their horizon's front (it \
             ran to its limit, {t:?})"
        )),
        _ => Ok(()),
    }
}

/// A host task that reads buffer `a` only after a slow host task before it finished (it also reads what that one
/// writes), while a chain of kernels moves the horizons on and then overwrites `a`: the overwrite must wait for the
/// read (its anti-dependency stands on a horizon that the reader was collapsed into), so the host task sees the old
/// `a` on every rank layout.
fn slow_reader(q: &Queue, ks: &Ks) -> Result<(), String> {
    let n = 256;
    let ch = host_data(n, 5, 17, 8);
    let c = q.buffer_from(&ch, [n]).named("c");
    let one = q.buffer_from(&[1], [1]).named("one");
    let mut ah = host_data(n, 3, 29, 10);
    let a = q.buffer_from(&ah, [n]).named("a");
    let z = q.buffer_from(&[0], [1]).named("z");
    let seen = q.buffer::<i32, 1>([n]).named("seen");
    let mut xh = host_data(n, 1, 9, 4);
    let x = q.buffer_from(&xh, [n]).named("x");
    q.submit(task::host_once().discard_write(&z, access::all()).name("slow_writer").run(|ctx| {
        std::thread::sleep(std::time::Duration::from_millis(300));
        ctx.data_mut::<i32>(0)[0] = 7;
    }))
    .map_err(e)?;
    q.submit(
        task::host_once()
            .read(&z, access::all())
            .read(&a, access::all())
            .discard_write(&seen, access::all())
            .name("late_reader")
            .run(|ctx| {
                let z0 = ctx.data::<i32>(0)[0];
                let old: Vec<i32> = ctx.data::<i32>(1).iter().map(|v| v.wrapping_add(z0)).collect();
                ctx.data_mut::<i32>(2).copy_from_slice(&old);
            }),
    )
    .map_err(e)?;
    let seen_h: Vec<i32> = ah.iter().map(|v| v.wrapping_add(7)).collect();
    for s in 0..12 {
        ks.axpy(q, false, [&c, &one, &c], &x, s, (0, n))?;
        serial::axpy(false, &ch, 1, &ch, &mut xh, s, (0, n));
    }
    ks.axpy(q, false, [&c, &one, &c], &a, 99, (0, n))?;
    serial::axpy(false, &ch, 1, &ch, &mut ah, 99, (0, n));
    check("slow_reader: what the late reader saw", &fence(q, &seen)?, &seen_h)?;
    check("slow_reader: a", &fence(q, &a)?, &ah)?;
    check("slow_reader: x", &fence(q, &x)?, &xh)
}

/// How long the slow host tasks of the cases below sleep first, so that the horizons after them wait for them
/// while the program goes on.
fn slow() -> std::time::Duration {
    std::time::Duration::from_millis(40)
}

/// `steps` kernels updating `x` from the constant `c`: they move the horizons on (collapsing what came before).
fn churn(
    q: &Queue,
    ks: &Ks,
    [c, one, x]: [&Buffer<'_, i32, 1>; 3],
    steps: i32,
    (ch, xh): (&[i32], &mut [i32]),
) -> Result<(), String> {
    let n = ch.len();
    for s in 0..steps {
        ks.axpy(q, false, [c, one, c], x, s, (0, n))?;
        serial::axpy(false, ch, 1, ch, xh, s, (0, n));
    }
    Ok(())
}

/// A slow master-node host task writes the first cells of `b`; kernels on another buffer collapse its write into a
/// horizon; then a kernel reads all of `b` (the host task's cells and cells last written long before): its edge on
/// the horizon is settled by the sync command after the host task, which must not count as complete before the
/// host task's data is back on the device.
fn host_write_then_read(q: &Queue, ks: &Ks) -> Result<(), String> {
    let n = 320;
    let k = 40;
    let ch = host_data(n, 7, 13, 6);
    let mut bh = host_data(n, 3, 29, 14);
    let (mut xh, mut yh) = (host_data(n, 1, 9, 4), host_data(n, 5, 11, 5));
    let c = q.buffer_from(&ch, [n]).named("c");
    let one = q.buffer_from(&[1], [1]).named("one");
    let b = q.buffer_from(&bh, [n]).named("b");
    let x = q.buffer_from(&xh, [n]).named("x");
    let y = q.buffer_from(&yh, [n]).named("y");
    for round in 0..3 {
        q.submit(task::host_once().discard_write(&b, access::fixed([0], [k])).name("slow_write").run(move |ctx| {
            std::thread::sleep(slow());
            for (j, v) in ctx.data_mut::<i32>(0).iter_mut().enumerate() {
                *v = 1000 * (round + 1) + j as i32;
            }
        }))
        .map_err(e)?;
        for (j, v) in bh[..k].iter_mut().enumerate() {
            *v = 1000 * (round + 1) + j as i32;
        }
        churn(q, ks, [&c, &one, &x], 6, (&ch, &mut xh))?;
        // y = 3 y + b + c + round over all of b.
        ks.axpy(q, false, [&b, &one, &c], &y, round, (0, n))?;
        serial::axpy(false, &bh, 1, &ch, &mut yh, round, (0, n));
    }
    check("host_write_then_read: y", &fence(q, &y)?, &yh)?;
    check("host_write_then_read: x", &fence(q, &x)?, &xh)?;
    check("host_write_then_read: b", &fence(q, &b)?, &bh)
}

/// A slow master-node host task reads the first cells of `a`; kernels on another buffer collapse it into a horizon;
/// then kernels overwrite `a`'s other cells (no edge on the host task needed) and the cells it read (an
/// anti-dependency on the horizon standing for it): the host task must have read the old values.
fn host_read_then_overwrite(q: &Queue, ks: &Ks) -> Result<(), String> {
    let n = 300;
    let k = 50;
    let ch = host_data(n, 7, 13, 6);
    let mut ah = host_data(n, 11, 37, 18);
    let mut xh = host_data(n, 1, 9, 4);
    let c = q.buffer_from(&ch, [n]).named("c");
    let one = q.buffer_from(&[1], [1]).named("one");
    let a = q.buffer_from(&ah, [n]).named("a");
    let x = q.buffer_from(&xh, [n]).named("x");
    let log = q.buffer_from(&[0; 6], [6]).named("log");
    let mut logh = [0; 6];
    for round in 0..3 {
        // a was last written by kernels (round > 0): their writes, too, collapse into the horizons.
        q.submit(
            task::host_once()
                .read(&a, access::fixed([0], [k]))
                .discard_write(&log, access::fixed([2 * round], [2]))
                .name("slow_read")
                .run(move |ctx| {
                    std::thread::sleep(slow());
                    let v = ctx.data::<i32>(0);
                    let (sum, last) = (v.iter().fold(0i32, |s, x| s.wrapping_add(*x)), v[k - 1]);
                    ctx.data_mut::<i32>(1).copy_from_slice(&[sum, last]);
                }),
        )
        .map_err(e)?;
        logh[2 * round] = ah[..k].iter().fold(0i32, |s, x| s.wrapping_add(*x));
        logh[2 * round + 1] = ah[k - 1];
        churn(q, ks, [&c, &one, &x], 6, (&ch, &mut xh))?;
        let r = round as i32;
        ks.axpy(q, false, [&c, &one, &c], &a, r, (k, n - k))?;
        serial::axpy(false, &ch, 1, &ch, &mut ah, r, (k, n - k));
        ks.axpy(q, false, [&x, &one, &c], &a, r, (0, k))?;
        serial::axpy(false, &xh, 1, &ch, &mut ah, r, (0, k));
    }
    check("host_read_then_overwrite: log", &fence(q, &log)?, &logh)?;
    check("host_read_then_overwrite: a", &fence(q, &a)?, &ah)
}

/// A slow master-node host task sets a reduction's result cell; kernels collapse it into a horizon; a reduction
/// including the current value follows (on rank 0 it starts from the host task's value) and a kernel reads its
/// result.
fn host_then_reduce_including(q: &Queue, ks: &Ks) -> Result<(), String> {
    let n = 256;
    let ch = host_data(n, 3, 17, 0);
    let (mut xh, mut yh) = (host_data(n, 1, 9, 4), host_data(n, 13, 101, 50));
    let c = q.buffer_from(&ch, [n]).named("c");
    let one = q.buffer_from(&[1], [1]).named("one");
    let x = q.buffer_from(&xh, [n]).named("x");
    let y = q.buffer_from(&yh, [n]).named("y");
    let tot = q.buffer_from(&[5], [1]).named("tot");
    let sum = Kernel::wgsl(&kernels::REDUCE_I32, "reduce_sum").map_err(e)?;
    for round in 0..3 {
        q.submit(task::host_once().discard_write(&tot, access::all()).name("slow_set").run(move |ctx| {
            std::thread::sleep(slow());
            ctx.data_mut::<i32>(0)[0] = 100 * (round + 1);
        }))
        .map_err(e)?;
        churn(q, ks, [&c, &one, &x], 6, (&ch, &mut xh))?;
        q.submit(task::parallel_for(&sum, [n]).read(&c, access::one_to_one()).reduce_including(&tot, ReductionOp::Sum))
            .map_err(e)?;
        let toth = (100 * (round + 1)).wrapping_add(ch.iter().sum::<i32>());
        // y = (y + c + tot c + round) % 100000.
        ks.axpy(q, true, [&c, &tot, &c], &y, round, (0, n))?;
        serial::axpy(true, &ch, toth, &ch, &mut yh, round, (0, n));
        check(&format!("host_then_reduce_including: tot after round {round}"), &fence(q, &tot)?, &[toth])?;
    }
    check("host_then_reduce_including: y", &fence(q, &y)?, &yh)?;
    check("host_then_reduce_including: x", &fence(q, &x)?, &xh)
}

/// `slow_host`'s kernels: `--slow-steps N`, or 16.
fn slow_steps() -> i32 {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == "--slow-steps").and_then(|i| args.get(i + 1)?.parse().ok()).unwrap_or(16)
}

type Case = fn(&Queue, &Ks) -> Result<(), String>;

const CASES: &[(&str, Case)] = &[
    ("const_chain", const_chain),
    ("const_flip", const_flip),
    ("host_front", host_front),
    ("reductions", reductions),
    ("fences", fences),
    ("growth", growth),
    ("dropped", dropped),
    ("halo_inplace", halo_inplace),
    ("epochs", epochs),
    ("collectives", collectives),
    ("long_chain", long_chain),
    ("parts", parts),
    ("slow_host", slow_host),
    ("slow_reader", slow_reader),
    ("host_write_then_read", host_write_then_read),
    ("host_read_then_overwrite", host_read_then_overwrite),
    ("host_then_reduce_including", host_then_reduce_including),
];

fn run(q: &Queue) -> Result<(), String> {
    let ks = Ks::new()?;
    let args: Vec<String> = std::env::args().collect();
    let only = args.iter().position(|a| a == "--case").and_then(|i| args.get(i + 1)).cloned();
    for (name, case) in CASES {
        if only.as_deref().is_some_and(|o| o != *name) {
            continue;
        }
        case(q, &ks).map_err(|err| format!("{name}: {err}"))?;
    }
    Ok(())
}

fn main() -> ExitCode {
    // `--devices N`: every rank drives N devices (CELER_DEVICES); the results must not change.
    let args: Vec<String> = std::env::args().collect();
    common::env_from_arg(&args, "--devices", "CELER_DEVICES");
    // `--horizon-step N`: a horizon every N steps of the critical path (CELER_HORIZON_STEP; 1: after every task).
    common::env_from_arg(&args, "--horizon-step", "CELER_HORIZON_STEP");
    // `--submit-ahead N`: how many horizons the program may run ahead of the runtime (CELER_SUBMIT_AHEAD).
    common::env_from_arg(&args, "--submit-ahead", "CELER_SUBMIT_AHEAD");
    celer::logging::init();
    common::run_on_every_rank("e2e_horizons", "programs around horizons verified against serial loops", run)
}
