/* Fused CPU kernel for the LIF recurrence of suite/models/neurons.py (float32, contiguous).
 *
 * The PyTorch path runs ~6 element-wise passes over memory per time step (forward) and ~8 per
 * tensor (backward). Here each element's whole time series is handled in one pass: forward
 * reads x and writes spikes (+ the tensor kept for backward); backward reads that tensor and
 * dL/ds and writes dL/dx. Work is split by element over `nthreads` OpenMP threads.
 *
 * Layout: [T, N] (T-major, N = B * features). The expressions and their evaluation order are
 * those of the PyTorch path (neurons.py: `_scan`, `LIFScan.backward`, the surrogate table),
 * and this file is compiled with -ffp-contract=off (no fused multiply-add), so spikes are
 * bit-identical and gradients agree to float rounding (exp may differ by an ulp).
 */
#include <math.h>
#include <stdint.h>

#define BLOCK 256       /* elements whose state is carried through time on the stack */
#define ALIGN 16        /* thread ranges start on 64-byte boundaries: no false sharing */

/* x86-64: an AVX2 copy of the loops besides the baseline one, chosen at load time by the CPU */
#if defined(__x86_64__) && defined(__GNUC__)
#define VECTOR_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define VECTOR_CLONES
#endif

enum { KEEP_NONE = 0, KEEP_V = 1, KEEP_U = 2 };
enum { ATAN = 0, FAST_SIGMOID = 1, SIGMOID = 2, TRIANGULAR = 3, STE = 4, SPIKE_RATE_ESCAPE = 5 };

typedef struct {
    const float *in;   /* forward: x;  backward: kept (v = u - threshold, or u) */
    const float *G;    /* backward: dL/ds */
    float *out;        /* forward: spikes;  backward: dL/dx */
    float *kept;       /* forward: v, u or NULL */
    int64_t T, N, lo, hi;
    float beta, threshold, p1, p2;
    int keep, surrogate, detach_reset;
} job;

/* d[i] = f'(v[i]) * G[i], each surrogate's formula in the PyTorch path's order */
VECTOR_CLONES static void surrogate_grad(int kind, float p1, float p2, const float *restrict v,
                           const float *restrict G, float *restrict d, int64_t n) {
    switch (kind) {
    case ATAN: {  /* alpha/2 / (1 + (pi/2 alpha v)^2) */
        const float c = (float)(M_PI / 2 * p1), h = (float)(p1 / 2.0);
        for (int64_t i = 0; i < n; i++) {
            float z = v[i] * c;
            z = z * z;
            z = z + 1.0f;
            z = 1.0f / z;
            d[i] = (z * h) * G[i];
        }
        break;
    }
    case FAST_SIGMOID:  /* 1 / (slope |v| + 1)^2 */
        for (int64_t i = 0; i < n; i++) {
            float z = fabsf(v[i]) * p1 + 1.0f;
            d[i] = G[i] / (z * z);
        }
        break;
    case SIGMOID:  /* slope sig (1 - sig), sig = sigmoid(slope v) */
        for (int64_t i = 0; i < n; i++) {
            float s = 1.0f / (1.0f + expf(-(v[i] * p1)));
            d[i] = ((G[i] * p1) * s) * (1.0f - s);
        }
        break;
    case TRIANGULAR:  /* threshold where v < 0, -threshold where v >= 0 */
        for (int64_t i = 0; i < n; i++) d[i] = G[i] * (v[i] >= 0.0f ? -p1 : p1);
        break;
    case STE:
        for (int64_t i = 0; i < n; i++) d[i] = G[i];
        break;
    default:  /* SPIKE_RATE_ESCAPE: slope exp(-beta |v - 1|), p1 = beta, p2 = slope */
        for (int64_t i = 0; i < n; i++) d[i] = (G[i] * p2) * expf(fabsf(v[i] - 1.0f) * -p1);
        break;
    }
}

/* u_t = beta u_{t-1} (1 - s_{t-1}) + x_t;  v_t = u_t - threshold;  s_t = [v_t > 0]
 * (job fields are copied to locals first: loads through `j` would alias the float stores and
 * keep the loops from vectorizing) */
VECTOR_CLONES static void forward_range(const job *j) {
    const int64_t N = j->N, T = j->T;
    const float beta = j->beta, threshold = j->threshold;
    const int keep = j->kept ? j->keep : KEEP_NONE;
    float u[BLOCK], s[BLOCK];
    for (int64_t b = j->lo; b < j->hi; b += BLOCK) {
        const int64_t n = j->hi - b < BLOCK ? j->hi - b : BLOCK;
        for (int64_t t = 0; t < T; t++) {
            const float *restrict x = j->in + t * N + b;
            float *restrict out = j->out + t * N + b;
            float *restrict kept = keep ? j->kept + t * N + b : 0;
            if (t == 0)
                for (int64_t i = 0; i < n; i++) u[i] = x[i];
            else
                for (int64_t i = 0; i < n; i++) u[i] = (u[i] * beta) * (1.0f - s[i]) + x[i];
            for (int64_t i = 0; i < n; i++) s[i] = out[i] = u[i] - threshold > 0.0f ? 1.0f : 0.0f;
            if (keep == KEEP_V)
                for (int64_t i = 0; i < n; i++) kept[i] = u[i] - threshold;
            else if (keep == KEEP_U)
                for (int64_t i = 0; i < n; i++) kept[i] = u[i];
        }
    }
}

/* detached reset: g_t = f'(v_t) G_t + beta (1 - s_t) g_{t+1}
 * reset in graph: g_t = f'(v_t) (G_t - beta u_t g_{t+1}) + beta (1 - s_t) g_{t+1} */
VECTOR_CLONES static void backward_range(const job *j) {
    const int64_t N = j->N, T = j->T;
    const float beta = j->beta, threshold = j->threshold, p1 = j->p1, p2 = j->p2;
    const int detach_reset = j->detach_reset, kind = j->surrogate;
    float next[BLOCK], v[BLOCK], gs[BLOCK], d[BLOCK];
    for (int64_t b = j->lo; b < j->hi; b += BLOCK) {
        const int64_t n = j->hi - b < BLOCK ? j->hi - b : BLOCK;
        for (int64_t t = T - 1; t >= 0; t--) {
            const float *restrict k = j->in + t * N + b, *restrict G = j->G + t * N + b;
            float *restrict g = j->out + t * N + b;
            const int last = t == T - 1;
            const float *vt = k, *grad_s = G;
            if (!detach_reset) {
                for (int64_t i = 0; i < n; i++) v[i] = k[i] - threshold;
                vt = v;
                if (!last) {
                    for (int64_t i = 0; i < n; i++) gs[i] = G[i] - (k[i] * beta) * next[i];
                    grad_s = gs;
                }
            }
            surrogate_grad(kind, p1, p2, vt, grad_s, d, n);
            if (last)
                for (int64_t i = 0; i < n; i++) next[i] = d[i];
            else
                for (int64_t i = 0; i < n; i++) next[i] = d[i] + (vt[i] > 0.0f ? 0.0f : beta) * next[i];
            for (int64_t i = 0; i < n; i++) g[i] = next[i];
        }
    }
}

typedef void (*range_fn)(const job *);

/* Split [0, N) into one range per thread, in OpenMP's pool: the kernel is linked against the
 * libgomp PyTorch has already loaded, so it runs on PyTorch's own (already spinning) threads
 * instead of competing with them for cores. */
static void parallel(job base, int nthreads, range_fn fn) {
    if (nthreads < 1) nthreads = 1;
    int64_t chunk = (base.N + nthreads - 1) / nthreads;
    chunk = (chunk + ALIGN - 1) / ALIGN * ALIGN;
#pragma omp parallel for num_threads(nthreads) schedule(static, 1)
    for (int k = 0; k < nthreads; k++) {
        job j = base;
        j.lo = k * chunk < base.N ? k * chunk : base.N;
        j.hi = (k + 1) * chunk < base.N ? (k + 1) * chunk : base.N;
        fn(&j);
    }
}

void lif_forward(const float *x, float *spikes, float *kept, int keep, int64_t T, int64_t N,
                float beta, float threshold, int nthreads) {
    job j = {x, 0, spikes, kept, T, N, 0, N, beta, threshold, 0, 0, keep, 0, 1};
    parallel(j, nthreads, forward_range);
}

void lif_backward(const float *kept, const float *grad_spikes, float *grad_x, int detach_reset,
                 int64_t T, int64_t N, float beta, float threshold, int surrogate, float p1,
                 float p2, int nthreads) {
    job j = {kept, grad_spikes, grad_x, 0, T, N, 0, N, beta, threshold, p1, p2, 0, surrogate,
             detach_reset};
    parallel(j, nthreads, backward_range);
}
