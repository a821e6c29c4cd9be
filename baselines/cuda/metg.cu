// The hand-written CUDA + MPI baseline of celer's GPU benchmarks: what a user on NVIDIA would write instead of
// celer, tuned as far as we know how.
//
// Two modes:
//
// 1. METG worker (the driver examples/metg.rs runs it under mpirun as its `cuda` and `cuda_graph` backends):
//        metg_cuda --out FILE --variant stream|graph --patterns LIST --points-per-rank N --threads N
//                  --iters-max N --iters-min N --budget N --max-steps N --radix N
//    The same Task Bench graphs as examples/metg.rs and kernels/metg.wgsl: width = ranks x points-per-rank points,
//    `threads` GPU threads per point, each running `iters` iterations of 8 independent FMAs (16 FLOP); thread 0 of
//    each point checks that its inputs carry the tags of the pattern's predecessors and writes its own tag (or
//    POISON). Between steps a rank exchanges the tags its neighbours need with MPI (Isend/Irecv through pinned host
//    memory: the download of the rank's own tags, the exchange, then one upload per contiguous run of received
//    points). Steps that need no exchange are launched back to back on one stream (`stream`), or, for `graph`,
//    recorded as CUDA graphs of up to 64 steps, instantiated before the timed loop and launched once per segment:
//    the floor of launch overhead. Steps with an exchange run the same in both variants (a graph cannot wait for
//    MPI). Each pattern's series is preceded by >= 200 ms of untimed steps at the largest size (clocks up, code
//    loaded). Rank 0 writes one line per size to FILE, in the driver's format:
//        backend pattern ranks width iters steps seconds flop
//
// 2. The chain of examples/overhead.rs:   metg_cuda --chain N [--reps R]
//    N tiny dependent kernels (each adds 1 to the same 64 cells), launched back to back on one stream and waited
//    for once (`stream`), and recorded once as a CUDA graph and launched as one (`graph`), after a warm-up; R
//    repetitions alternating the two; prints min and median µs per kernel of each and checks the cells.
//
// Built by scripts/cuda_baseline.sh (nvcc + OpenMPI) on a machine with a GPU; not part of CI.

#include <cuda_runtime.h>
#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <utility>
#include <vector>

#define CK(call)                                                                                         \
    do {                                                                                                 \
        cudaError_t err_ = (call);                                                                       \
        if (err_ != cudaSuccess) {                                                                       \
            std::fprintf(stderr, "metg_cuda: %s failed at %s:%d: %s\n", #call, __FILE__, __LINE__,       \
                         cudaGetErrorString(err_));                                                      \
            MPI_Abort(MPI_COMM_WORLD, 2);                                                                \
        }                                                                                                \
    } while (0)

static void fail(const std::string& why) {
    std::fprintf(stderr, "metg_cuda: %s\n", why.c_str());
    MPI_Abort(MPI_COMM_WORLD, 1);
}

static const uint32_t POISON = 0xffffffffu;
static const double FLOP_PER_ITER = 16.0;
static const uint32_t MAX_GRAPH_STEPS = 64;
static const char* PATTERN_NAMES[] = {"trivial", "no_comm", "stencil_1d", "fft", "tree", "nearest", "spread"};

// ---------------------------------------------------------------------------------------------------------------
// Device code.

__device__ bool input_ok(const uint32_t* prev, int j, uint32_t width, uint32_t t) {
    if (j < 0 || (uint32_t)j >= width) return true;
    return prev[j] == (t - 1u) * width + (uint32_t)j + 1u;
}

__device__ bool inputs_ok(const uint32_t* prev, uint32_t p, uint32_t t, uint32_t width, uint32_t pattern,
                          uint32_t radix, uint32_t log2w) {
    int q = (int)p;
    switch (pattern) {
    case 0:
        return true;
    case 1:
        return input_ok(prev, q, width, t);
    case 2:
        return input_ok(prev, q - 1, width, t) && input_ok(prev, q, width, t) && input_ok(prev, q + 1, width, t);
    case 3: {
        if (log2w == 0) return input_ok(prev, q, width, t);
        uint32_t stride = 1u << ((t - 1u) % log2w);
        return input_ok(prev, q, width, t) && input_ok(prev, (int)(p ^ stride), width, t);
    }
    case 4:
        return input_ok(prev, q / 2, width, t);
    case 5: {
        bool ok = true;
        int lo = q - (int)(radix / 2u);
        for (int k = 0; k < (int)radix; k++) ok = ok && input_ok(prev, lo + k, width, t);
        return ok;
    }
    default: {
        bool ok = true;
        uint32_t gap = max(width / max(radix, 1u), 1u);
        for (uint32_t k = 0; k < min(radix, width); k++) ok = ok && input_ok(prev, (int)((p + k * gap) % width), width, t);
        return ok;
    }
    }
}

// One step for the points [p0, p0 + npoints) of this rank. The step number is `t_arg`, or `*t_base + t_arg` when
// t_base is set (graphs: one recorded graph serves every segment start).
__global__ void metg_step(const uint32_t* prev, uint32_t* next, float* scratch, uint32_t p0, uint32_t npoints,
                          uint32_t threads, uint32_t iters, uint32_t t_arg, const uint32_t* t_base, uint32_t width,
                          uint32_t pattern, uint32_t radix, uint32_t log2w) {
    uint64_t idx = (uint64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= (uint64_t)npoints * threads) return;
    float seed = scratch[idx];
    float x0 = seed, x1 = seed + 0.1f, x2 = seed + 0.2f, x3 = seed + 0.3f;
    float x4 = seed + 0.4f, x5 = seed + 0.5f, x6 = seed + 0.6f, x7 = seed + 0.7f;
    for (uint32_t i = 0; i < iters; i++) {
        x0 = fmaf(x0, 0.999f, 0.001f);
        x1 = fmaf(x1, 0.999f, 0.001f);
        x2 = fmaf(x2, 0.999f, 0.001f);
        x3 = fmaf(x3, 0.999f, 0.001f);
        x4 = fmaf(x4, 0.999f, 0.001f);
        x5 = fmaf(x5, 0.999f, 0.001f);
        x6 = fmaf(x6, 0.999f, 0.001f);
        x7 = fmaf(x7, 0.999f, 0.001f);
    }
    scratch[idx] = (x0 + x1 + x2 + x3 + x4 + x5 + x6 + x7) * 0.125f;
    if (idx % threads == 0) {
        uint32_t t = t_base ? *t_base + t_arg : t_arg;
        uint32_t p = p0 + (uint32_t)(idx / threads);
        next[p] = inputs_ok(prev, p, t, width, pattern, radix, log2w) ? t * width + p + 1u : POISON;
    }
}

__global__ void set_u32(uint32_t* where, uint32_t value) { *where = value; }

__global__ void add_one(uint32_t* cells) { cells[threadIdx.x] += 1u; }

// ---------------------------------------------------------------------------------------------------------------
// The task graph, as examples/metg.rs defines it.

static void deps(int pattern, size_t p, uint32_t t, size_t width, size_t radix, std::vector<size_t>& out) {
    out.clear();
    auto add = [&](long long j) {
        if (j >= 0 && j < (long long)width) out.push_back((size_t)j);
    };
    long long q = (long long)p;
    switch (pattern) {
    case 0:
        break;
    case 1:
        add(q);
        break;
    case 2:
        for (long long j = q - 1; j <= q + 1; j++) add(j);
        break;
    case 3: {
        add(q);
        unsigned log2 = 0;
        while ((size_t(2) << log2) <= width) log2++;
        if (log2 > 0) add((long long)(p ^ (size_t(1) << ((t - 1) % log2))));
        break;
    }
    case 4:
        add(q / 2);
        break;
    case 5: {
        long long lo = q - (long long)(radix / 2);
        for (long long j = lo; j < lo + (long long)radix; j++) add(j);
        break;
    }
    default: {
        size_t gap = std::max<size_t>(width / std::max<size_t>(radix, 1), 1);
        for (size_t k = 0; k < std::min(radix, width); k++) add((long long)((p + k * gap) % width));
    }
    }
}

static uint32_t tag(uint32_t t, size_t p, size_t width) { return t * (uint32_t)width + (uint32_t)p + 1u; }

// Who sends which points' tags to whom before a step (peer -> sorted points).
struct Plan {
    std::vector<std::pair<int, std::vector<uint32_t>>> recv, send;
    bool empty() const { return recv.empty() && send.empty(); }
};

static Plan make_plan(int pattern, uint32_t t, size_t width, int ranks, int rank, size_t radix) {
    size_t per = width / ranks;
    std::map<int, std::vector<uint32_t>> recv, send;
    std::vector<size_t> d;
    for (size_t p = 0; p < width; p++) {
        deps(pattern, p, t, width, radix, d);
        for (size_t j : d) {
            int reader = (int)(p / per), writer = (int)(j / per);
            if (reader == writer) continue;
            if (reader == rank) recv[writer].push_back((uint32_t)j);
            if (writer == rank) send[reader].push_back((uint32_t)j);
        }
    }
    Plan plan;
    for (auto* m : {&recv, &send}) {
        for (auto& [peer, pts] : *m) {
            std::sort(pts.begin(), pts.end());
            pts.erase(std::unique(pts.begin(), pts.end()), pts.end());
            (m == &recv ? plan.recv : plan.send).emplace_back(peer, pts);
        }
    }
    return plan;
}

// ---------------------------------------------------------------------------------------------------------------
// METG worker.

struct Params {
    std::vector<int> patterns;
    size_t points_per_rank = 1, threads = 65536, radix = 3;
    uint32_t iters_max = 65536, iters_min = 1, max_steps = 2000;
    uint64_t budget = 4194304;
};

struct Worker {
    Params prm;
    bool graphs;
    int rank, ranks;
    size_t width, p0, p1;
    uint32_t log2w;
    cudaStream_t stream;
    uint32_t* tags[2];
    float* scratch;
    uint32_t* t_dev;
    uint32_t* host;   // pinned: every point's tag as this rank last knew it
    std::vector<std::vector<uint32_t>> sendbuf, recvbuf;

    void launch(int pattern, uint32_t t, uint32_t iters, uint32_t t_arg, const uint32_t* t_base, cudaStream_t s) {
        size_t n = (p1 - p0) * prm.threads;
        unsigned blocks = (unsigned)((n + 255) / 256);
        metg_step<<<blocks, 256, 0, s>>>(tags[(t - 1) % 2], tags[t % 2], scratch, (uint32_t)p0, (uint32_t)(p1 - p0),
                                         (uint32_t)prm.threads, iters, t_arg, t_base, (uint32_t)width,
                                         (uint32_t)pattern, (uint32_t)prm.radix, log2w);
    }

    // The exchange before step t: our tags were downloaded into `host` after step t - 1 where we send any.
    void exchange(const Plan& plan, uint32_t t) {
        CK(cudaStreamSynchronize(stream));
        int mpi_tag = (int)(t % 30000) + 1;
        std::vector<MPI_Request> reqs;
        recvbuf.resize(plan.recv.size());
        sendbuf.resize(plan.send.size());
        for (size_t i = 0; i < plan.recv.size(); i++) {
            recvbuf[i].resize(plan.recv[i].second.size());
            reqs.emplace_back();
            MPI_Irecv(recvbuf[i].data(), (int)recvbuf[i].size(), MPI_UINT32_T, plan.recv[i].first, mpi_tag,
                      MPI_COMM_WORLD, &reqs.back());
        }
        for (size_t i = 0; i < plan.send.size(); i++) {
            auto& pts = plan.send[i].second;
            sendbuf[i].resize(pts.size());
            for (size_t k = 0; k < pts.size(); k++) sendbuf[i][k] = host[pts[k]];
            reqs.emplace_back();
            MPI_Isend(sendbuf[i].data(), (int)pts.size(), MPI_UINT32_T, plan.send[i].first, mpi_tag, MPI_COMM_WORLD,
                      &reqs.back());
        }
        MPI_Waitall((int)reqs.size(), reqs.data(), MPI_STATUSES_IGNORE);
        std::vector<uint32_t> got;
        for (size_t i = 0; i < plan.recv.size(); i++) {
            auto& pts = plan.recv[i].second;
            for (size_t k = 0; k < pts.size(); k++) host[pts[k]] = recvbuf[i][k];
            got.insert(got.end(), pts.begin(), pts.end());
        }
        std::sort(got.begin(), got.end());
        uint32_t* prev = tags[(t - 1) % 2];
        for (size_t a = 0; a < got.size();) {
            size_t b = a + 1;
            while (b < got.size() && got[b] == got[b - 1] + 1) b++;
            CK(cudaMemcpyAsync(prev + got[a], host + got[a], (b - a) * 4, cudaMemcpyHostToDevice, stream));
            a = b;
        }
    }

    // Runs steps t0 + 1 ..= t0 + n. plans[i] is the plan before step t0 + 1 + i (n + 1 of them). Graphs (the graph
    // variant) are looked up by (parity of the first step, length) in `execs`.
    void run(int pattern, uint32_t t0, uint32_t n, uint32_t iters, const std::vector<Plan>& plans,
             std::map<std::pair<int, uint32_t>, cudaGraphExec_t>& execs) {
        for (uint32_t i = 0; i < n;) {
            uint32_t t = t0 + 1 + i;
            uint32_t len = 1;
            if (!plans[i].empty()) {
                exchange(plans[i], t);
                launch(pattern, t, iters, t, nullptr, stream);
            } else if (graphs) {
                while (i + len < n && len < MAX_GRAPH_STEPS && plans[i + len].empty()) len++;
                auto it = execs.find({(int)(t % 2), len});
                if (it == execs.end()) fail("internal: a graph segment was not recorded before the timed loop");
                set_u32<<<1, 1, 0, stream>>>(t_dev, t);
                CK(cudaGraphLaunch(it->second, stream));
            } else {
                launch(pattern, t, iters, t, nullptr, stream);
            }
            i += len;
            uint32_t last = t + len - 1;
            if (!plans[i].send.empty()) {
                CK(cudaMemcpyAsync(host + p0, tags[last % 2] + p0, (p1 - p0) * 4, cudaMemcpyDeviceToHost, stream));
            }
        }
    }

    std::vector<Plan> plans_for(int pattern, uint32_t t0, uint32_t n) {
        std::vector<Plan> out;
        for (uint32_t i = 0; i <= n; i++) out.push_back(make_plan(pattern, t0 + 1 + i, width, ranks, rank, prm.radix));
        return out;
    }

    // Records the graphs the segments of `plans` need (graph variant only).
    void record(int pattern, uint32_t t0, uint32_t n, uint32_t iters, const std::vector<Plan>& plans,
                std::map<std::pair<int, uint32_t>, cudaGraphExec_t>& execs) {
        if (!graphs) return;
        cudaStream_t cap;
        CK(cudaStreamCreateWithFlags(&cap, cudaStreamNonBlocking));
        for (uint32_t i = 0; i < n;) {
            uint32_t t = t0 + 1 + i, len = 1;
            if (plans[i].empty()) {
                while (i + len < n && len < MAX_GRAPH_STEPS && plans[i + len].empty()) len++;
                std::pair<int, uint32_t> key{(int)(t % 2), len};
                if (!execs.count(key)) {
                    cudaGraph_t g;
                    CK(cudaStreamBeginCapture(cap, cudaStreamCaptureModeThreadLocal));
                    for (uint32_t k = 0; k < len; k++) launch(pattern, t + k, iters, k, t_dev, cap);
                    CK(cudaStreamEndCapture(cap, &g));
                    cudaGraphExec_t e;
                    CK(cudaGraphInstantiateWithFlags(&e, g, 0));
                    CK(cudaGraphDestroy(g));
                    execs[key] = e;
                }
            }
            i += len;
        }
        CK(cudaStreamDestroy(cap));
    }

    static void drop(std::map<std::pair<int, uint32_t>, cudaGraphExec_t>& execs) {
        for (auto& kv : execs) CK(cudaGraphExecDestroy(kv.second));
        execs.clear();
    }

    void check(uint32_t t, int pattern) {
        std::vector<uint32_t> got(width);
        CK(cudaMemcpy(got.data() + p0, tags[t % 2] + p0, (p1 - p0) * 4, cudaMemcpyDeviceToHost));
        for (size_t p = p0; p < p1; p++) {
            if (got[p] != tag(t, p, width)) {
                char msg[200];
                std::snprintf(msg, sizeof msg, "pattern %s: point %zu holds tag %#x after step %u, expected %#x",
                              PATTERN_NAMES[pattern], p, got[p], t, tag(t, p, width));
                fail(msg);
            }
        }
    }

    std::string series(int pattern) {
        std::string out;
        std::vector<uint32_t> init(width);
        for (size_t p = 0; p < width; p++) init[p] = tag(0, p, width);
        std::copy(init.begin(), init.end(), host);
        CK(cudaMemcpy(tags[0], init.data(), width * 4, cudaMemcpyHostToDevice));
        CK(cudaMemset(tags[1], 0, width * 4));
        CK(cudaMemset(scratch, 0, (p1 - p0) * prm.threads * 4));
        uint32_t t = 0;
        std::map<std::pair<int, uint32_t>, cudaGraphExec_t> execs;
        // Warm-up: >= 200 ms at the largest size, the same number of steps on every rank.
        {
            uint32_t n = 16;
            auto start = std::chrono::steady_clock::now();
            for (;;) {
                auto plans = plans_for(pattern, t, n);
                record(pattern, t, n, prm.iters_max, plans, execs);
                run(pattern, t, n, prm.iters_max, plans, execs);
                t += n;
                CK(cudaStreamSynchronize(stream));
                double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(), most;
                MPI_Allreduce(&s, &most, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
                if (most >= 0.2) break;
            }
            drop(execs);
        }
        for (uint32_t iters = prm.iters_max; iters >= std::max(prm.iters_min, 1u); iters /= 2) {
            uint32_t steps = (uint32_t)std::clamp<uint64_t>(prm.budget / iters, 16, prm.max_steps);
            auto plans = plans_for(pattern, t, steps);
            record(pattern, t, steps, iters, plans, execs);
            CK(cudaStreamSynchronize(stream));
            MPI_Barrier(MPI_COMM_WORLD);
            auto start = std::chrono::steady_clock::now();
            run(pattern, t, steps, iters, plans, execs);
            CK(cudaStreamSynchronize(stream));
            double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
            t += steps;
            drop(execs);
            check(t, pattern);
            double flop = (double)iters * FLOP_PER_ITER * (double)(width * prm.threads) * (double)steps;
            char line[256];
            std::snprintf(line, sizeof line, "%s %s %d %zu %u %u %.9f %.6e\n", graphs ? "cuda_graph" : "cuda",
                          PATTERN_NAMES[pattern], ranks, width, iters, steps, seconds, flop);
            out += line;
            if (iters == 1) break;
        }
        return out;
    }
};

static int pattern_index(const std::string& name) {
    for (int i = 0; i < 7; i++)
        if (name == PATTERN_NAMES[i]) return i;
    fail("unknown pattern " + name);
    return -1;
}

static void select_device(int rank) {
    int count = 0;
    CK(cudaGetDeviceCount(&count));
    const char* local = std::getenv("OMPI_COMM_WORLD_LOCAL_RANK");
    int l = local ? std::atoi(local) : rank;
    CK(cudaSetDevice(l % count));
}

static int metg_main(const Params& prm, bool graphs, const std::string& out_path) {
    Worker w{};
    w.prm = prm;
    w.graphs = graphs;
    MPI_Comm_rank(MPI_COMM_WORLD, &w.rank);
    MPI_Comm_size(MPI_COMM_WORLD, &w.ranks);
    select_device(w.rank);
    w.width = (size_t)w.ranks * prm.points_per_rank;
    w.p0 = (size_t)w.rank * prm.points_per_rank;
    w.p1 = w.p0 + prm.points_per_rank;
    w.log2w = 0;
    while ((size_t(2) << w.log2w) <= w.width) w.log2w++;
    CK(cudaStreamCreateWithFlags(&w.stream, cudaStreamNonBlocking));
    for (auto& b : w.tags) CK(cudaMalloc(&b, w.width * 4));
    CK(cudaMalloc(&w.scratch, prm.points_per_rank * prm.threads * 4));
    CK(cudaMalloc(&w.t_dev, 4));
    CK(cudaMallocHost(&w.host, w.width * 4));
    std::string text;
    for (int pattern : prm.patterns) text += w.series(pattern);
    if (w.rank == 0 && !out_path.empty()) {
        FILE* f = std::fopen(out_path.c_str(), "w");
        if (!f || std::fputs(text.c_str(), f) < 0 || std::fclose(f) != 0) fail("cannot write " + out_path);
    } else if (w.rank == 0) {
        std::fputs(text.c_str(), stdout);
    }
    CK(cudaFreeHost(w.host));
    for (auto& b : w.tags) CK(cudaFree(b));
    CK(cudaFree(w.scratch));
    CK(cudaFree(w.t_dev));
    CK(cudaStreamDestroy(w.stream));
    return 0;
}

// ---------------------------------------------------------------------------------------------------------------
// The chain.

static double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

static int chain_main(uint32_t n, int reps) {
    int rank;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    select_device(rank);
    cudaStream_t s;
    CK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
    uint32_t* cells;
    CK(cudaMalloc(&cells, 64 * 4));
    cudaGraph_t g;
    CK(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal));
    for (uint32_t i = 0; i < n; i++) add_one<<<1, 64, 0, s>>>(cells);
    CK(cudaStreamEndCapture(s, &g));
    cudaGraphExec_t e;
    CK(cudaGraphInstantiateWithFlags(&e, g, 0));
    std::vector<double> stream_us, graph_us;
    uint32_t expected = 0;
    // Warm-up (not timed), then alternate the two ways, each repetition starting with the other one.
    for (int r = -1; r < reps; r++) {
        for (int k = 0; k < 2; k++) {
            bool graph = (k + (r < 0 ? 0 : r)) % 2 == 1;
            CK(cudaStreamSynchronize(s));
            auto start = std::chrono::steady_clock::now();
            if (graph) {
                CK(cudaGraphLaunch(e, s));
            } else {
                for (uint32_t i = 0; i < n; i++) add_one<<<1, 64, 0, s>>>(cells);
            }
            CK(cudaStreamSynchronize(s));
            double us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count();
            expected += n;
            if (r >= 0) (graph ? graph_us : stream_us).push_back(us / n);
        }
    }
    uint32_t got[64];
    CK(cudaMemcpy(got, cells, sizeof got, cudaMemcpyDeviceToHost));
    for (uint32_t v : got)
        if (v != expected) fail("chain: a cell holds " + std::to_string(v) + ", expected " + std::to_string(expected));
    if (rank == 0) {
        std::printf("cuda chain of %u kernels, %d repetitions (after a warm-up), result checked (%u)\n", n, reps,
                    expected);
        std::printf("cuda chain stream: min %.3f µs/task, median %.3f µs/task\n",
                    *std::min_element(stream_us.begin(), stream_us.end()), median(stream_us));
        std::printf("cuda chain graph:  min %.3f µs/task, median %.3f µs/task\n",
                    *std::min_element(graph_us.begin(), graph_us.end()), median(graph_us));
    }
    CK(cudaGraphExecDestroy(e));
    CK(cudaGraphDestroy(g));
    CK(cudaFree(cells));
    CK(cudaStreamDestroy(s));
    return 0;
}

// ---------------------------------------------------------------------------------------------------------------

int main(int argc, char** argv) {
    MPI_Init(&argc, &argv);
    Params prm;
    std::string out, variant = "stream";
    long chain = -1;
    int reps = 5;
    for (int i = 1; i < argc; i++) {
        std::string a = argv[i];
        if (i + 1 >= argc) fail("option " + a + " needs a value");
        std::string v = argv[++i];
        auto num = [&](const std::string& s) -> unsigned long long {
            char* end = nullptr;
            unsigned long long x = std::strtoull(s.c_str(), &end, 10);
            if (s.empty() || *end) fail("option " + a + ": not a number: " + s);
            return x;
        };
        if (a == "--out") out = v;
        else if (a == "--variant") variant = v;
        else if (a == "--patterns") {
            for (size_t start = 0;;) {
                size_t comma = v.find(',', start);
                std::string name = v.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
                if (name == "all") {
                    for (int k = 0; k < 7; k++) prm.patterns.push_back(k);
                } else {
                    prm.patterns.push_back(pattern_index(name));
                }
                if (comma == std::string::npos) break;
                start = comma + 1;
            }
        } else if (a == "--points-per-rank") prm.points_per_rank = num(v);
        else if (a == "--threads") prm.threads = num(v);
        else if (a == "--iters-max") prm.iters_max = (uint32_t)num(v);
        else if (a == "--iters-min") prm.iters_min = (uint32_t)num(v);
        else if (a == "--budget") prm.budget = num(v);
        else if (a == "--max-steps") prm.max_steps = (uint32_t)num(v);
        else if (a == "--radix") prm.radix = num(v);
        else if (a == "--chain") chain = (long)num(v);
        else if (a == "--reps") reps = (int)num(v);
        else fail("unknown option " + a);
    }
    if (variant != "stream" && variant != "graph") fail("unknown variant " + variant + "; use stream or graph");
    if (prm.points_per_rank == 0 || prm.threads == 0) fail("points-per-rank and threads must be positive");
    if (reps < 1) fail("--reps must be at least 1");
    int code = chain >= 0 ? chain_main((uint32_t)chain, reps) : metg_main(prm, variant == "graph", out);
    MPI_Finalize();
    return code;
}
