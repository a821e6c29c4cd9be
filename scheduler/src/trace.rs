//! The timeline trace of `CELER_TRACE`: what each rank's loop did and when, as Chrome trace events.
//!
//! A [`Trace`] lives in the rank's loop only when tracing is on; recording an event is a push onto a `Vec`. At
//! shutdown every rank hands its events to rank 0 ([`gather_and_write`]), which writes one JSON file that Perfetto
//! (<https://ui.perfetto.dev>) or `chrome://tracing` open: one process per rank, one row per kind of work (loop
//! idle spans, GPU batches, receives, sends, host tasks).

use std::fmt::Write as _;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use celer_exec::mpi::Communicator;

/// The rows of a rank in the trace viewer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Row {
    /// The loop: idle spans, horizons and epochs.
    Loop = 0,
    /// GPU batches, from submission to the loop seeing them complete.
    Gpu = 1,
    /// Await-pushes, from posting the receive to the data's arrival.
    Receive = 2,
    /// Pushes leaving for other ranks.
    Send = 3,
    /// Host tasks on host worker 0 (the one worker of `CELER_HOST_THREADS=1`); those of worker `k > 0` have a row
    /// of their own ([`Trace::host_span`]).
    Host = 4,
    /// Each operation of a GPU batch as the device timed it (kernels, copies), placed so that the batch's last
    /// operation ends when the loop saw the batch complete.
    GpuOps = 5,
}

const ROWS: [(Row, &str); 6] = [
    (Row::Loop, "loop (idle spans, horizons)"),
    (Row::Gpu, "GPU batches"),
    (Row::GpuOps, "GPU operations (device time)"),
    (Row::Receive, "receives"),
    (Row::Send, "sends"),
    (Row::Host, "host tasks"),
];

/// At most this many events per rank are kept; later ones are counted, not kept. A long run reaches it (a host task
/// costs a few events): kept events take about 100 bytes of memory each, so a rank's resident memory grows by about
/// 200 MiB until the cap and then stays flat, and each rank adds about 190 MB to the JSON (`soak_patterns --pattern
/// host` on 2 ranks with `CELER_TRACE` set: 121 MiB after 100 000 rounds, 280 MiB from 500 000 on and still at
/// 1 000 000, against 76 MiB untraced; a 387 MB file).
// TODO(perf): most names repeat (a task label, "host task"): interning them would save an allocation per event.
const MAX_EVENTS: usize = 2_000_000;

/// Idle spans shorter than this are not recorded (the loop alternates between busy and idle all the time).
const MIN_IDLE: Duration = Duration::from_micros(20);

/// The trace's thread id of host worker `k > 0`'s row: after every [`Row`].
const HOST_WORKER_TID: usize = 5;

struct Event {
    name: String,
    /// The row: a [`Row`], or `HOST_WORKER_TID + k` for host worker `k > 0`.
    tid: usize,
    /// Start, µs after the trace's start.
    start: f64,
    /// Length in µs; `None` for an instant.
    dur: Option<f64>,
}

/// One rank's recorded events.
pub struct Trace {
    rank: i32,
    origin: Instant,
    /// `origin` as µs since the Unix epoch, which puts the ranks of one host on one time axis.
    origin_unix_us: f64,
    events: Vec<Event>,
    dropped: u64,
    idle_since: Option<Instant>,
    /// The most host workers any span named (their rows are named at the end).
    host_workers: usize,
}

impl std::fmt::Debug for Trace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Trace").field("rank", &self.rank).field("events", &self.events.len()).finish()
    }
}

impl Trace {
    /// Starts recording for `rank`.
    pub fn new(rank: i32) -> Self {
        let unix = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        Self {
            rank,
            origin: Instant::now(),
            origin_unix_us: unix.as_secs_f64() * 1e6,
            events: Vec::new(),
            dropped: 0,
            idle_since: None,
            host_workers: 1,
        }
    }

    fn at(&self, t: Instant) -> f64 {
        t.saturating_duration_since(self.origin).as_secs_f64() * 1e6
    }

    fn push(&mut self, event: Event) {
        if self.events.len() < MAX_EVENTS {
            self.events.push(event);
        } else {
            self.dropped += 1;
        }
    }

    /// Records work on `row` from `start` to `end`.
    pub fn span(&mut self, row: Row, name: impl Into<String>, start: Instant, end: Instant) {
        self.span_on(row as usize, name, start, end);
    }

    /// Records a host task run by host worker `worker` from `start` to `end`: on [`Row::Host`] for worker 0, on a
    /// row of its own for each other worker (host tasks of several workers overlap, and one row shows only nested
    /// spans).
    pub fn host_span(&mut self, worker: usize, name: impl Into<String>, start: Instant, end: Instant) {
        let tid = if worker == 0 { Row::Host as usize } else { HOST_WORKER_TID + worker };
        self.host_workers = self.host_workers.max(worker + 1);
        self.span_on(tid, name, start, end);
    }

    /// Records work on the row of thread id `tid` from `start` to `end`.
    fn span_on(&mut self, tid: usize, name: impl Into<String>, start: Instant, end: Instant) {
        let (s, e) = (self.at(start), self.at(end));
        self.push(Event { name: name.into(), tid, start: s, dur: Some((e - s).max(0.0)) });
    }

    /// Records work on `row` of `len` ending at `end`.
    pub fn span_ending(&mut self, row: Row, name: impl Into<String>, end: Instant, len: Duration) {
        let e = self.at(end);
        let d = len.as_secs_f64() * 1e6;
        self.push(Event { name: name.into(), tid: row as usize, start: (e - d).max(0.0), dur: Some(d) });
    }

    /// Records a moment on `row`.
    pub fn instant(&mut self, row: Row, name: impl Into<String>, at: Instant) {
        let s = self.at(at);
        self.push(Event { name: name.into(), tid: row as usize, start: s, dur: None });
    }

    /// Tells the trace whether the loop's last iteration made progress; idle stretches become spans.
    pub fn loop_state(&mut self, progressed: bool, now: Instant) {
        match (progressed, self.idle_since) {
            (false, None) => self.idle_since = Some(now),
            (true, Some(since)) => {
                self.idle_since = None;
                if now - since >= MIN_IDLE {
                    self.span(Row::Loop, "idle", since, now);
                }
            }
            _ => {}
        }
    }

    /// The events as trace-event JSON objects, comma-separated (no brackets), with the rank's row names.
    fn to_json_items(&self) -> String {
        let pid = self.rank;
        let mut out = String::with_capacity(self.events.len() * 96 + 512);
        let _ = write!(
            out,
            "{{\"name\":\"process_name\",\"ph\":\"M\",\"pid\":{pid},\"tid\":0,\"args\":{{\"name\":\"rank {pid}\"}}}},\
             {{\"name\":\"process_sort_index\",\"ph\":\"M\",\"pid\":{pid},\"tid\":0,\"args\":{{\"sort_index\":{pid}}}}}"
        );
        for (row, name) in ROWS {
            let _ = write!(
                out,
                ",{{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":{pid},\"tid\":{},\"args\":{{\"name\":\"{name}\"}}}}",
                row as u8
            );
        }
        for worker in 1..self.host_workers {
            let _ = write!(
                out,
                ",{{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":{pid},\"tid\":{},\"args\":{{\"name\":\"host tasks \
                 (worker {worker})\"}}}}",
                HOST_WORKER_TID + worker
            );
        }
        if self.dropped > 0 {
            let _ = write!(
                out,
                ",{{\"name\":\"{} later events not kept\",\"ph\":\"i\",\"s\":\"p\",\"pid\":{pid},\"tid\":0,\"ts\":{:.3}}}",
                self.dropped,
                self.origin_unix_us + self.events.last().map_or(0.0, |e| e.start)
            );
        }
        for e in &self.events {
            let ts = self.origin_unix_us + e.start;
            out.push_str(",{\"name\":\"");
            escape_into(&mut out, &e.name);
            let _ = match e.dur {
                Some(d) => {
                    write!(out, "\",\"ph\":\"X\",\"pid\":{pid},\"tid\":{},\"ts\":{ts:.3},\"dur\":{d:.3}}}", e.tid)
                }
                None => {
                    write!(out, "\",\"ph\":\"i\",\"s\":\"t\",\"pid\":{pid},\"tid\":{},\"ts\":{ts:.3}}}", e.tid)
                }
            };
        }
        out
    }
}

fn escape_into(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
}

/// Tags of the gather at shutdown (the transfer engine, which uses the others, is gone by then).
const TAG_LEN: i32 = 32_001;
const TAG_BODY: i32 = 32_002;

/// Why the timeline could not be gathered or written (`CELER_TRACE`).
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum TraceError {
    /// An MPI call of the gather failed.
    #[error("CELER_TRACE: gathering the ranks' events failed: {0}")]
    Mpi(celer_exec::mpi::MpiError),
    /// The file (or its directory) could not be written.
    #[error("CELER_TRACE: cannot write {}: {error}", path.display())]
    Io {
        /// The file or directory.
        path: std::path::PathBuf,
        /// Why.
        error: std::io::Error,
    },
}

/// The same sentence as `Display`, so that `fn main() -> Result<(), Box<dyn Error>>` prints a readable message.
impl std::fmt::Debug for TraceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

/// Sends every rank's events to rank 0, which writes them to `path` as one trace file. Called on every rank after
/// the loop ended (blocking is fine there); `trace` is `None` on ranks without tracing, which then send nothing
/// (`CELER_TRACE` must be set on all ranks or none, as every `CELER_*` setting).
///
/// # Errors
/// [`TraceError`]: an MPI error, or an I/O error writing the file.
pub fn gather_and_write(comm: &Communicator, trace: &Trace, path: &std::path::Path) -> Result<(), TraceError> {
    gather_all_and_write(comm, &[trace], path)
}

/// [`gather_and_write`] for a rank with several loops (one per device, `CELER_DEVICES`), each a process of the
/// trace named after its node.
///
/// # Errors
/// As [`gather_and_write`].
pub fn gather_all_and_write(comm: &Communicator, traces: &[&Trace], path: &std::path::Path) -> Result<(), TraceError> {
    let mine = traces.iter().map(|t| t.to_json_items()).collect::<Vec<_>>().join(",");
    let wait = |req: &mut celer_exec::mpi::Request<'_>| -> Result<(), TraceError> {
        while !req.test().map_err(TraceError::Mpi)? {
            std::hint::spin_loop();
        }
        Ok(())
    };
    if comm.rank() != 0 {
        let len = (mine.len() as u64).to_le_bytes();
        // SAFETY: each request is completed by `wait` before the buffer it borrows goes away, and never leaked.
        let mut r = unsafe { comm.isend(&len, 0, TAG_LEN) }.map_err(TraceError::Mpi)?;
        wait(&mut r)?;
        drop(r);
        // SAFETY: as above.
        let mut r = unsafe { comm.isend(mine.as_bytes(), 0, TAG_BODY) }.map_err(TraceError::Mpi)?;
        wait(&mut r)?;
        return Ok(());
    }
    let mut all = String::from("{\"displayTimeUnit\":\"ns\",\"traceEvents\":[");
    all.push_str(&mine);
    for src in 1..comm.size() {
        let mut len = [0u8; 8];
        // SAFETY: completed by `wait` before `len` is read, never leaked.
        let mut r = unsafe { comm.irecv(&mut len, src, TAG_LEN) }.map_err(TraceError::Mpi)?;
        wait(&mut r)?;
        drop(r);
        let mut body = vec![0u8; u64::from_le_bytes(len) as usize];
        // SAFETY: as above.
        let mut r = unsafe { comm.irecv(&mut body, src, TAG_BODY) }.map_err(TraceError::Mpi)?;
        wait(&mut r)?;
        drop(r);
        all.push(',');
        all.push_str(&String::from_utf8_lossy(&body));
    }
    all.push_str("]}\n");
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|error| TraceError::Io { path: dir.to_path_buf(), error })?;
    }
    std::fs::write(path, all).map_err(|error| TraceError::Io { path: path.to_path_buf(), error })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_become_trace_event_json_with_names_escaped() {
        let mut t = Trace::new(3);
        let t0 = t.origin;
        t.span(Row::Gpu, "batch \"1\"", t0, t0 + Duration::from_micros(50));
        t.instant(Row::Loop, "horizon T4", t0 + Duration::from_micros(60));
        t.loop_state(false, t0 + Duration::from_micros(100));
        t.loop_state(true, t0 + Duration::from_micros(200));
        // Too short to keep.
        t.loop_state(false, t0 + Duration::from_micros(300));
        t.loop_state(true, t0 + Duration::from_micros(305));
        let json = t.to_json_items();
        assert!(json.contains("\"name\":\"rank 3\""));
        assert!(json.contains("batch \\\"1\\\""), "{json}");
        assert!(json.contains("\"ph\":\"X\",\"pid\":3,\"tid\":1"));
        assert!(json.contains("\"dur\":50.000"), "{json}");
        assert!(json.contains("\"name\":\"horizon T4\",\"ph\":\"i\""));
        assert_eq!(json.matches("\"name\":\"idle\"").count(), 1, "{json}");
        assert!(json.contains("\"dur\":100.000"));
    }

    #[test]
    fn host_tasks_of_several_workers_get_a_named_row_each_and_worker_0_keeps_the_host_row() {
        let mut one = Trace::new(0);
        let t0 = one.origin;
        one.host_span(0, "host task T1", t0, t0 + Duration::from_micros(10));
        let json = one.to_json_items();
        assert!(json.contains("\"name\":\"host task T1\",\"ph\":\"X\",\"pid\":0,\"tid\":4"), "{json}");
        assert!(!json.contains("(worker"), "one worker: no extra rows\n{json}");
        let mut pool = Trace::new(0);
        pool.host_span(0, "host task T1", t0, t0 + Duration::from_micros(10));
        pool.host_span(2, "host task T2", t0, t0 + Duration::from_micros(10));
        let json = pool.to_json_items();
        assert!(json.contains("\"name\":\"host task T2\",\"ph\":\"X\",\"pid\":0,\"tid\":7"), "{json}");
        assert!(json.contains("\"tid\":6,\"args\":{\"name\":\"host tasks (worker 1)\"}"), "{json}");
        assert!(json.contains("\"tid\":7,\"args\":{\"name\":\"host tasks (worker 2)\"}"), "{json}");
        // Every row id is distinct from the fixed rows'.
        assert!(ROWS.iter().all(|&(r, _)| (r as usize) < HOST_WORKER_TID + 1));
    }
}
