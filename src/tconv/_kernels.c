/* Memory-bound loops that torch's strided copies run far below memory speed.
 *
 * Compiled on first use by tconv/_native.py (a C compiler and nothing else:
 * no torch headers), called through ctypes on tensors' and arrays' raw pointers.
 * Every pointer and size is checked on the Python side; these loops trust them.
 *
 * gather: every output element is a sum of input elements, found through
 *   per-axis tables (the phase landing, and col2im by gathering instead of
 *   scattering). Output rows are `no` contiguous elements; row (p, a, b) of
 *   plane p reads from src + plane_off[p] + fa[a*wa + ja] + fb[b*wb + jb] for
 *   every ja < ca[a], jb < cb[b] (the terms of the two leading axes), and
 *   along the row by `segments`: segment (o0, step, count, nterms, inc,
 *   off[0..width)) says that for m < count
 *
 *     dst[row][o0 + m*step] += sum over j < nterms of s[off[j] + m*inc].
 *
 *   With add_fill, fill[p % fill_period] is added to every element once (the
 *   bias: planes run image-major, so the period is the channel count);
 *   without it, that fill (or 0 when fill is NULL) is written only where there
 *   is no term, and a single term is copied bit for bit (the phase landing:
 *   NaN payloads, signed zeros). Two segments that interleave at stride 2
 *   (the interior of both phases of a row) are summed over all their terms
 *   in vector registers and written once, interleaved; other segments take
 *   one pass per term. Rows are shared between threads.
 *
 * depthwise: the gather with each term times its channel's weight for its
 *   tap, and the fill (the bias) added once.
 *
 * depthwise_last: depthwise layers channels last (the NumPy engine's phase,
 *   tconv.torch's depthwise strategy on channels-last input). Output pixel
 *   (n, a, b, o) of `channels` contiguous values is the bias (or 0) plus,
 *   over every term (ja, jb) of the two leading axes' tables and jc of the
 *   last axis' segment holding o (o = o0 + m*step), the input pixel at
 *   x + n*x_image + fa[a*wa + ja] + fb[b*wb + jb] + off[jc] + m*inc times
 *   the weights at w + ta[a*wa + ja] + tb[b*wb + jb] + tap[jc]*uc, channel
 *   by channel. Along a segment the terms and their weights stay the same, so for each vector of channels the weights
 *   are loaded once into registers and every output of the segment costs one
 *   load and one multiply-add per term. Rows (n, a, b) are shared between
 *   threads.
 *
 * transpose: dst[n, c, p] = src[n, p, c] in 32 x 32 tiles (channels-last to
 *   channels-first), each element moved as bits.
 */
#include <stdint.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#define PARALLEL_FOR _Pragma("omp parallel for num_threads(threads) schedule(static)")
#define PARALLEL _Pragma("omp parallel num_threads(threads)")
#define THREAD_COUNT omp_get_num_threads()
#define THREAD_INDEX omp_get_thread_num()
#else
#define PARALLEL_FOR
#define PARALLEL
#define THREAD_COUNT 1
#define THREAD_INDEX 0
#endif

#define SEG_HEAD 5

/* how a run's values meet the row: the first write of a copy, the first write plus the fill, or an
   addition to what an earlier term wrote */
enum { COPY = 0, FILL = 1, ADD = 2 };

/* a stride-2 pair of runs takes the vector path when each output has at most this many terms */
#define MAX_TERMS 32

/* The leading terms of one output row: (ja, jb) for ja < na_terms, jb < nb_terms, at source offset
   fa[ja] + fb[jb] (and, in the depthwise loop, weight offset ta[ja]*ua + tb[jb]*ub). */
typedef struct {
    int32_t na_terms, nb_terms;
    const int64_t *fa, *fb, *ta, *tb;
    int64_t ua, ub;
} Lead;

/* Every output row (plane p, leading outputs a and b) in parallel; ROW sees d (the row), p, start
   (the plane's fill, or 0) and ld (its leading terms). Each thread takes one contiguous share of the
   rows and steps (p, a, b) along it: divisions per row cost more than a short row's work. */
#define EACH_ROW(T, ROW)                                                                                \
    int64_t rows = planes * na * nb;                                                                     \
    (void)threads; /* unused without OpenMP */                                                           \
    PARALLEL                                                                                             \
    {                                                                                                    \
        int64_t share = (rows + THREAD_COUNT - 1) / THREAD_COUNT;                                        \
        int64_t r = THREAD_INDEX * share, end = r + share < rows ? r + share : rows;                     \
        int64_t p = r / (na * nb), a = r % (na * nb) / nb, b = r % nb, c = p % fill_period;              \
        for (; r < end; ++r) {                                                                           \
            T *d = dst + r * no;                                                                         \
            T start = fill ? fill[c] : (T)0;                                                             \
            Lead ld = {ca[a], cb[b], fa + a * wa, fb + b * wb, ta ? ta + a * wa : 0,                     \
                       tb ? tb + b * wb : 0, ua, ub};                                                    \
            ROW;                                                                                         \
            if (++b == nb) {                                                                             \
                b = 0;                                                                                   \
                if (++a == na) {                                                                         \
                    a = 0;                                                                               \
                    ++p;                                                                                 \
                    if (++c == fill_period) c = 0;                                                       \
                }                                                                                        \
            }                                                                                            \
        }                                                                                                \
    }

/* The stride-2 pair at segments g and h (runs o0, o0+2, ... and o0+1, o0+3, ... of equal length) takes
   the vector path when both have unit increments and at least one and a half vectors of `lanes`
   outputs each
   (PAIRED_RUNS: the same on every row, worked out once per call), and the row's terms fit: at most
   MAX_TERMS per output and more than one between the two (one each, the plain pair loop is as fast)
   (TERMS_FIT). Shorter rows spend more on gathering the terms than they save: measured with
   benchmarks/bench_torch.py's layers. */
#define PAIRED_RUNS(g, h, lanes)                                                                        \
    ((g)[1] == 2 && (h)[1] == 2 && (h)[0] == (g)[0] + 1 && (h)[2] == (g)[2] && (g)[4] == 1 && (h)[4] == 1 \
     && 2 * (g)[2] >= 3 * (lanes))
#define TERMS_FIT(g, h, lead_terms)                                                                     \
    ((lead_terms) * ((g)[3] > (h)[3] ? (g)[3] : (h)[3]) <= MAX_TERMS && (lead_terms) * ((g)[3] + (h)[3]) > 2)

#define LANES(T) ((int64_t)(64 / sizeof(T)))

/* 64-byte vectors (GCC/Clang vector extensions; one register with AVX-512, split by the compiler
   otherwise): a stride-2 pair sums a vector of each run's outputs in registers, and two shuffles
   interleave them for the store. */
typedef float vec_f32 __attribute__((vector_size(64)));
typedef int32_t mask_f32 __attribute__((vector_size(64)));
typedef double vec_f64 __attribute__((vector_size(64)));
typedef int64_t mask_f64 __attribute__((vector_size(64)));
typedef uint16_t vec_b16 __attribute__((vector_size(64)));
typedef int16_t mask_b16 __attribute__((vector_size(64)));
#define LOW_f32 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23
#define HIGH_f32 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31
#define LOW_f64 0, 8, 1, 9, 2, 10, 3, 11
#define HIGH_f64 4, 12, 5, 13, 6, 14, 7, 15
#define LOW_b16 0, 32, 1, 33, 2, 34, 3, 35, 4, 36, 5, 37, 6, 38, 7, 39, 8, 40, 9, 41, 10, 42, 11, 43, 12, 44, \
    13, 45, 14, 46, 15, 47
#define HIGH_b16 16, 48, 17, 49, 18, 50, 19, 51, 20, 52, 21, 53, 22, 54, 23, 55, 24, 56, 25, 57, 26, 58, 27, \
    59, 28, 60, 29, 61, 30, 62, 31, 63
#if defined(__clang__)
#define SHUFFLE(a, b, mask_type, ...) __builtin_shufflevector(a, b, __VA_ARGS__)
#else
#define SHUFFLE(a, b, mask_type, ...) __builtin_shuffle(a, b, (mask_type){__VA_ARGS__})
#endif

/* q[2m] = even(m), q[2m+1] = odd(m) for m < count: VSUM_E/VSUM_O give a vector of each run from m,
   SUM_E/SUM_O one element. A tail of more than half a vector is done as one last vector that overlaps
   the one before (it rewrites the same values); a shorter one element by element. */
#define INTERLEAVE_PAIR(SUF, T, q, count, VSUM_E, VSUM_O, SUM_E, SUM_O)                                 \
    {                                                                                                    \
        enum { L = 64 / sizeof(T) };                                                                     \
        int64_t tail = (count) % L, vectors = (count) / L + (tail > L / 2 && (count) > L);               \
        int64_t scalar_from = tail > L / 2 && (count) > L ? (count) : (count) - tail;                    \
        for (int64_t v = 0; v < vectors; ++v) {                                                          \
            int64_t m = (v + 1) * L <= (count) ? v * L : (count) - L;                                    \
            vec_##SUF e = VSUM_E, o = VSUM_O;                                                            \
            vec_##SUF low = SHUFFLE(e, o, mask_##SUF, LOW_##SUF);                                        \
            vec_##SUF high = SHUFFLE(e, o, mask_##SUF, HIGH_##SUF);                                      \
            memcpy((q) + 2 * m, &low, sizeof low);                                                       \
            memcpy((q) + 2 * m + L, &high, sizeof high);                                                 \
        }                                                                                                \
        for (int64_t m = scalar_from; m < (count); ++m) { (q)[2 * m] = SUM_E; (q)[2 * m + 1] = SUM_O; }  \
    }

/* The body of a row function (d, ld, segs, nseg, width, no, start and `paired`, whether the first two
   segments are PAIRED_RUNS, in scope): the stride-2 pair first
   by PAIR where TERMS_FIT allows, then every other run once per leading term (ja, jb) by RUNS, with
   `first` set on the first; a row that no leading term reaches gets `start`. */
#define ROW_BODY(T, PAIR, RUNS)                                                                         \
    int64_t stride = SEG_HEAD + 2 * width;                                                               \
    if (paired && TERMS_FIT(segs, segs + stride, ld->na_terms * ld->nb_terms)) {                         \
        PAIR;                                                                                            \
        segs += 2 * stride;                                                                              \
        nseg -= 2;                                                                                       \
    }                                                                                                    \
    int first = 1;                                                                                       \
    for (int32_t ja = 0; ja < ld->na_terms; ++ja)                                                        \
        for (int32_t jb = 0; jb < ld->nb_terms; ++jb) {                                                  \
            RUNS;                                                                                        \
            first = 0;                                                                                   \
        }                                                                                                \
    if (first)                                                                                           \
        for (int64_t o = 0; o < no; ++o) d[o] = start;

#define DEFINE_GATHER(SUF, T)                                                                           \
    /* d[m*step] (op)= p[m*inc] for m < count: one term of a run, a loop simple enough to vectorize */   \
    static inline void tconv_gather_##SUF##_pass(T *d, int64_t step, const T *p, int64_t inc, int64_t count, T start,   \
                                   int mode) {                                                           \
        if (step == 1 && inc == 1) {                                                                     \
            if (mode == COPY) for (int64_t m = 0; m < count; ++m) d[m] = p[m];                           \
            else if (mode == FILL) for (int64_t m = 0; m < count; ++m) d[m] = start + p[m];              \
            else for (int64_t m = 0; m < count; ++m) d[m] += p[m];                                       \
        } else {                                                                                         \
            if (mode == COPY) for (int64_t m = 0; m < count; ++m) d[m * step] = p[m * inc];              \
            else if (mode == FILL) for (int64_t m = 0; m < count; ++m) d[m * step] = start + p[m * inc]; \
            else for (int64_t m = 0; m < count; ++m) d[m * step] += p[m * inc];                          \
        }                                                                                                \
    }                                                                                                    \
    /* the first terms of two runs that interleave at stride 2, written in order */                     \
    static inline void tconv_gather_##SUF##_pair(T *d, const T *p0, const T *p1, int64_t inc, int64_t count, T start,  \
                                   int mode) {                                                           \
        if (inc == 1) {                                                                                  \
            if (mode == COPY)                                                                            \
                for (int64_t m = 0; m < count; ++m) { d[2 * m] = p0[m]; d[2 * m + 1] = p1[m]; }          \
            else if (mode == FILL)                                                                       \
                for (int64_t m = 0; m < count; ++m) {                                                    \
                    d[2 * m] = start + p0[m];                                                            \
                    d[2 * m + 1] = start + p1[m];                                                        \
                }                                                                                        \
            else                                                                                         \
                for (int64_t m = 0; m < count; ++m) { d[2 * m] += p0[m]; d[2 * m + 1] += p1[m]; }        \
        } else {                                                                                         \
            tconv_gather_##SUF##_pass(d, 2, p0, inc, count, start, mode);                                              \
            tconv_gather_##SUF##_pass(d + 1, 2, p1, inc, count, start, mode);                                          \
        }                                                                                                \
    }                                                                                                    \
    static void tconv_gather_##SUF##_runs(T *d, const T *s, const int64_t *segs, int64_t nseg, int64_t width,          \
                           T start, int mode) {                                                          \
        int64_t stride = SEG_HEAD + 2 * width;                                                           \
        for (int64_t i = 0; i < nseg;) {                                                                 \
            const int64_t *g = segs + i * stride, *h = g + stride;                                       \
            int64_t o0 = g[0], step = g[1], count = g[2], nt = g[3], inc = g[4];                         \
            int fused = i + 1 < nseg && step == 2 && h[1] == 2 && h[0] == o0 + 1 && h[2] == count        \
                        && h[4] == inc && nt > 0 && h[3] > 0;                                            \
            if (fused) {                                                                                 \
                tconv_gather_##SUF##_pair(d + o0, s + g[SEG_HEAD], s + h[SEG_HEAD], inc, count, start, mode);          \
                for (int64_t j = 1; j < h[3]; ++j)                                                       \
                    tconv_gather_##SUF##_pass(d + o0 + 1, 2, s + h[SEG_HEAD + j], inc, count, start, ADD);             \
            } else if (nt == 0) {                                                                        \
                if (mode != ADD)                                                                         \
                    for (int64_t m = 0; m < count; ++m) d[o0 + m * step] = start;                        \
            } else {                                                                                     \
                tconv_gather_##SUF##_pass(d + o0, step, s + g[SEG_HEAD], inc, count, start, mode);                     \
            }                                                                                            \
            for (int64_t j = 1; j < nt; ++j)                                                             \
                tconv_gather_##SUF##_pass(d + o0, step, s + g[SEG_HEAD + j], inc, count, start, ADD);                  \
            i += fused ? 2 : 1;                                                                          \
        }                                                                                                \
    }                                                                                                    \
    /* every term of segment g, leading terms outer: where each one's run starts */                     \
    static inline int tconv_gather_##SUF##_terms(const T **out, const T *s, const Lead *ld, const int64_t *g) {        \
        int k = 0;                                                                                       \
        for (int32_t ja = 0; ja < ld->na_terms; ++ja)                                                    \
            for (int32_t jb = 0; jb < ld->nb_terms; ++jb)                                                \
                for (int64_t j = 0; j < g[3]; ++j) out[k++] = s + ld->fa[ja] + ld->fb[jb] + g[SEG_HEAD + j]; \
        return k;                                                                                        \
    }                                                                                                    \
    /* (start +) p[0][m] + p[1][m] + ... (k terms, in order; a single one is copied): one output, and   \
       the vector of outputs from m */                                                                   \
    static inline T tconv_gather_##SUF##_sum(const T **p, int k, int64_t m, T start, int add_fill) {                   \
        if (k == 0) return start;                                                                        \
        T e = add_fill ? start + p[0][m] : p[0][m];                                                      \
        for (int t = 1; t < k; ++t) e += p[t][m];                                                        \
        return e;                                                                                        \
    }                                                                                                    \
    static inline vec_##SUF tconv_gather_##SUF##_vsum(const T **p, int k, int64_t m, vec_##SUF start, int add_fill) {  \
        if (k == 0) return start;                                                                        \
        vec_##SUF e, v;                                                                                  \
        memcpy(&e, p[0] + m, sizeof e);                                                                  \
        if (add_fill) e = start + e;                                                                     \
        for (int t = 1; t < k; ++t) { memcpy(&v, p[t] + m, sizeof v); e += v; }                          \
        return e;                                                                                        \
    }                                                                                                    \
    static void tconv_gather_##SUF##_vector_pair(T *q, int64_t count, const T **pe, int ne, const T **po, int no,     \
                                   T start, int add_fill) {                                              \
        vec_##SUF vstart = start - (vec_##SUF){0}; /* a broadcast that keeps -0.0 */                     \
        INTERLEAVE_PAIR(SUF, T, q, count, tconv_gather_##SUF##_vsum(pe, ne, m, vstart, add_fill),                      \
                        tconv_gather_##SUF##_vsum(po, no, m, vstart, add_fill), tconv_gather_##SUF##_sum(pe, ne, m, start, add_fill), \
                        tconv_gather_##SUF##_sum(po, no, m, start, add_fill))                                          \
    }                                                                                                    \
    static void tconv_gather_##SUF##_pair_row(T *d, const T *s, const Lead *ld, const int64_t *g,        \
                                              const int64_t *h, T start, int add_fill) {                 \
        const T *pe[MAX_TERMS], *po[MAX_TERMS];                                                          \
        int ne = tconv_gather_##SUF##_terms(pe, s, ld, g), np = tconv_gather_##SUF##_terms(po, s, ld, h); \
        tconv_gather_##SUF##_vector_pair(d + g[0], g[2], pe, ne, po, np, start, add_fill);               \
    }                                                                                                    \
    static inline __attribute__((always_inline)) void tconv_gather_##SUF##_row(                          \
        T *d, const T *s, const Lead *ld, const int64_t *segs, int64_t nseg, int64_t width, int64_t no,  \
        T start, int add_fill, int paired) {                                                             \
        ROW_BODY(T, tconv_gather_##SUF##_pair_row(d, s, ld, segs, segs + stride, start, add_fill),       \
                 tconv_gather_##SUF##_runs(d, s + ld->fa[ja] + ld->fb[jb], segs, nseg, width, start,     \
                                           first ? (add_fill ? FILL : COPY) : ADD))                      \
    }                                                                                                    \
    void tconv_gather_##SUF(const T *src, T *dst, const T *fill, int64_t fill_period, int add_fill,     \
                            int threads, int64_t planes, const int64_t *plane_off, int64_t na,          \
                            const int32_t *ca, const int64_t *fa, int64_t wa, int64_t nb, const int32_t *cb, \
                            const int64_t *fb, int64_t wb, int64_t no, const int64_t *segs, int64_t nseg, \
                            int64_t width) {                                                             \
        const int64_t *ta = 0, *tb = 0;                                                                  \
        int64_t ua = 0, ub = 0;                                                                          \
        int paired = nseg >= 2 && PAIRED_RUNS(segs, segs + SEG_HEAD + 2 * width, LANES(T));              \
        EACH_ROW(T, tconv_gather_##SUF##_row(d, src + plane_off[p], &ld, segs, nseg, width, no, start,  \
                                             add_fill, paired))                                          \
    }

DEFINE_GATHER(f32, float)
DEFINE_GATHER(f64, double)
/* 2-byte floats (float16, bfloat16) as bits: the Python side sends only copies here (at most one
   term per element, add_fill 0), so the integer additions above never run. */
DEFINE_GATHER(b16, uint16_t)

/* depthwise: the gather with every term times its channel's weight for its tap (taps[] after offsets[]
   in each segment; the leading terms' taps in ta, tb); the fill (bias) is added once. */
#define DEFINE_DEPTHWISE(SUF, T)                                                                        \
    static inline void tconv_depthwise_##SUF##_pass(T *d, int64_t step, const T *p, int64_t inc, int64_t count, T start,   \
                                   T wv, int first) {                                                    \
        if (step == 1 && inc == 1) {                                                                     \
            if (first) for (int64_t m = 0; m < count; ++m) d[m] = start + wv * p[m];                     \
            else for (int64_t m = 0; m < count; ++m) d[m] += wv * p[m];                                  \
        } else {                                                                                         \
            if (first) for (int64_t m = 0; m < count; ++m) d[m * step] = start + wv * p[m * inc];        \
            else for (int64_t m = 0; m < count; ++m) d[m * step] += wv * p[m * inc];                     \
        }                                                                                                \
    }                                                                                                    \
    static void tconv_depthwise_##SUF##_runs(T *d, const T *s, const T *wt, const int64_t *segs, int64_t nseg,            \
                           int64_t width, T start, int first) {                                          \
        int64_t stride = SEG_HEAD + 2 * width;                                                           \
        for (int64_t i = 0; i < nseg;) {                                                                 \
            const int64_t *g = segs + i * stride, *h = g + stride;                                       \
            int64_t o0 = g[0], step = g[1], count = g[2], nt = g[3], inc = g[4];                         \
            const int64_t *off = g + SEG_HEAD, *tap = g + SEG_HEAD + width;                              \
            int fused = i + 1 < nseg && step == 2 && h[1] == 2 && h[0] == o0 + 1 && h[2] == count        \
                        && h[4] == inc && inc == 1 && nt > 0 && h[3] > 0;                                \
            if (fused) {                                                                                 \
                const int64_t *off1 = h + SEG_HEAD, *tap1 = h + SEG_HEAD + width;                        \
                const T *p0 = s + off[0], *p1 = s + off1[0];                                             \
                T w0 = wt[tap[0]], w1 = wt[tap1[0]];                                                     \
                T *q = d + o0;                                                                           \
                if (first)                                                                               \
                    for (int64_t m = 0; m < count; ++m) {                                                \
                        q[2 * m] = start + w0 * p0[m];                                                   \
                        q[2 * m + 1] = start + w1 * p1[m];                                               \
                    }                                                                                    \
                else                                                                                     \
                    for (int64_t m = 0; m < count; ++m) {                                                \
                        q[2 * m] += w0 * p0[m];                                                          \
                        q[2 * m + 1] += w1 * p1[m];                                                      \
                    }                                                                                    \
                for (int64_t j = 1; j < h[3]; ++j)                                                       \
                    tconv_depthwise_##SUF##_pass(d + o0 + 1, 2, s + off1[j], inc, count, start, wt[tap1[j]], 0);          \
            } else if (nt == 0) {                                                                        \
                if (first)                                                                               \
                    for (int64_t m = 0; m < count; ++m) d[o0 + m * step] = start;                        \
            } else {                                                                                     \
                tconv_depthwise_##SUF##_pass(d + o0, step, s + off[0], inc, count, start, wt[tap[0]], first);             \
            }                                                                                            \
            for (int64_t j = 1; j < nt; ++j)                                                             \
                tconv_depthwise_##SUF##_pass(d + o0, step, s + off[j], inc, count, start, wt[tap[j]], 0);                 \
            i += fused ? 2 : 1;                                                                          \
        }                                                                                                \
    }                                                                                                    \
    static inline int tconv_depthwise_##SUF##_terms(const T **out, T *wout, const T *s, const T *wt, const Lead *ld,      \
                                   const int64_t *g, int64_t width) {                                    \
        int k = 0;                                                                                       \
        for (int32_t ja = 0; ja < ld->na_terms; ++ja)                                                    \
            for (int32_t jb = 0; jb < ld->nb_terms; ++jb)                                                \
                for (int64_t j = 0; j < g[3]; ++j) {                                                     \
                    out[k] = s + ld->fa[ja] + ld->fb[jb] + g[SEG_HEAD + j];                              \
                    wout[k++] = wt[ld->ta[ja] * ld->ua + ld->tb[jb] * ld->ub + g[SEG_HEAD + width + j]]; \
                }                                                                                        \
        return k;                                                                                        \
    }                                                                                                    \
    /* start + w[0] p[0][m] + w[1] p[1][m] + ...: one output, and the vector of outputs from m */       \
    static inline T tconv_depthwise_##SUF##_sum(const T **p, const T *w, int k, int64_t m, T start) {                     \
        T e = start;                                                                                     \
        for (int t = 0; t < k; ++t) e += w[t] * p[t][m];                                                 \
        return e;                                                                                        \
    }                                                                                                    \
    static inline vec_##SUF tconv_depthwise_##SUF##_vsum(const T **p, const T *w, int k, int64_t m, vec_##SUF start) {    \
        vec_##SUF e = start, v;                                                                          \
        for (int t = 0; t < k; ++t) { memcpy(&v, p[t] + m, sizeof v); e += w[t] * v; }                   \
        return e;                                                                                        \
    }                                                                                                    \
    static void tconv_depthwise_##SUF##_vector_pair(T *q, int64_t count, const T **pe, const T *we, int ne, const T **po, \
                                   const T *wo, int no, T start) {                                       \
        vec_##SUF vstart = start - (vec_##SUF){0};                                                       \
        INTERLEAVE_PAIR(SUF, T, q, count, tconv_depthwise_##SUF##_vsum(pe, we, ne, m, vstart),                            \
                        tconv_depthwise_##SUF##_vsum(po, wo, no, m, vstart), tconv_depthwise_##SUF##_sum(pe, we, ne, m, start),            \
                        tconv_depthwise_##SUF##_sum(po, wo, no, m, start))                                                \
    }                                                                                                    \
    static void tconv_depthwise_##SUF##_pair_row(T *d, const T *s, const T *wt, const Lead *ld,          \
                                                 const int64_t *g, const int64_t *h, int64_t width,      \
                                                 T start) {                                              \
        const T *pe[MAX_TERMS], *po[MAX_TERMS];                                                          \
        T we[MAX_TERMS], wo[MAX_TERMS];                                                                  \
        int ne = tconv_depthwise_##SUF##_terms(pe, we, s, wt, ld, g, width);                             \
        int np = tconv_depthwise_##SUF##_terms(po, wo, s, wt, ld, h, width);                             \
        tconv_depthwise_##SUF##_vector_pair(d + g[0], g[2], pe, we, ne, po, wo, np, start);              \
    }                                                                                                    \
    static inline __attribute__((always_inline)) void tconv_depthwise_##SUF##_row(                       \
        T *d, const T *s, const T *wt, const Lead *ld, const int64_t *segs, int64_t nseg, int64_t width, \
        int64_t no, T start, int paired) {                                                               \
        ROW_BODY(T, tconv_depthwise_##SUF##_pair_row(d, s, wt, ld, segs, segs + stride, width, start),   \
                 tconv_depthwise_##SUF##_runs(d, s + ld->fa[ja] + ld->fb[jb],                            \
                                              wt + ld->ta[ja] * ld->ua + ld->tb[jb] * ld->ub, segs,      \
                                              nseg, width, start, first))                                \
    }                                                                                                    \
    void tconv_depthwise_##SUF(const T *x, T *dst, const T *weight, const T *fill, int64_t fill_period,  \
                               int threads, int64_t planes, const int64_t *plane_off, const int64_t *plane_w, \
                               int64_t na, const int32_t *ca, const int64_t *fa, const int64_t *ta, int64_t wa, \
                               int64_t ua, int64_t nb, const int32_t *cb, const int64_t *fb,             \
                               const int64_t *tb, int64_t wb, int64_t ub, int64_t no, const int64_t *segs, \
                               int64_t nseg, int64_t width) {                                            \
        int paired = nseg >= 2 && PAIRED_RUNS(segs, segs + SEG_HEAD + 2 * width, LANES(T));              \
        EACH_ROW(T, tconv_depthwise_##SUF##_row(d, x + plane_off[p], weight + plane_w[p], &ld, segs, nseg, \
                                                width, no, start, paired))                               \
    }

DEFINE_DEPTHWISE(f32, float)
DEFINE_DEPTHWISE(f64, double)

/* Unaligned 64-byte vectors for depthwise_last: a channel block starts anywhere in a pixel. */
typedef float uvec_f32 __attribute__((vector_size(64), aligned(4)));
typedef double uvec_f64 __attribute__((vector_size(64), aligned(8)));

/* depthwise_last, one run of one row for one vector of channels: K terms (K a constant where the
   caller specializes it, so that the K weight vectors stay in registers), summed onto `start` (the
   bias, or zero) or, with `onto`, onto what the row already holds (the terms past the first
   MAX_TERMS). */
#define DEPTHWISE_LAST_RUN(T, V, K)                                                                      \
    {                                                                                                    \
        V wv[MAX_TERMS];                                                                                 \
        for (int k = 0; k < (K); ++k) wv[k] = *(const V *)(w + w_off[k] + cb);                           \
        for (int64_t m = 0; m < count; ++m) {                                                            \
            const V *hold = (const V *)(drow + (o0 + m * step) * channels + cb);                         \
            V acc = onto ? *hold : start;                                                                \
            const T *base = xn + m * inc + cb;                                                           \
            for (int k = 0; k < (K); ++k) acc += *(const V *)(base + x_off[k]) * wv[k];                 \
            *(V *)hold = acc;                                                                            \
        }                                                                                                \
    }

#define DEFINE_DEPTHWISE_LAST(SUF, T)                                                                   \
    void tconv_depthwise_last_##SUF(const T *restrict x, T *restrict out, const T *restrict w,          \
                                    const T *restrict bias, int threads, int64_t batch, int64_t channels, \
                                    int64_t x_image, int64_t na_, const int32_t *na, const int64_t *fa,  \
                                    const int64_t *ta, int64_t wa, int64_t nb_, const int32_t *nb,       \
                                    const int64_t *fb, const int64_t *tb, int64_t wb, int64_t nc_,       \
                                    const int64_t *segs, int64_t nseg, int64_t wc, int64_t uc) {         \
        typedef uvec_##SUF V;                                                                            \
        const int64_t L = (int64_t)(sizeof(V) / sizeof(T)), plane = na_ * nb_, rows = batch * plane;    \
        PARALLEL_FOR                                                                                     \
        for (int64_t row = 0; row < rows; ++row) {                                                       \
            int64_t n = row / plane, rest = row - n * plane, a = rest / nb_, b = rest - a * nb_;        \
            const T *xn = x + n * x_image;                                                               \
            T *drow = out + row * nc_ * channels;                                                        \
            for (int64_t g = 0; g < nseg; ++g) {                                                         \
                const int64_t *seg = segs + g * (SEG_HEAD + 2 * wc);                                     \
                int64_t o0 = seg[0], step = seg[1], count = seg[2], inc = seg[4];                        \
                int64_t terms = (int64_t)na[a] * nb[b] * seg[3];                                         \
                if (terms == 0) {                                                                        \
                    for (int64_t m = 0; m < count; ++m)                                                  \
                        for (int64_t c = 0; c < channels; ++c)                                           \
                            drow[(o0 + m * step) * channels + c] = bias ? bias[c] : (T)0;                \
                    continue;                                                                            \
                }                                                                                        \
                /* the terms in chunks of MAX_TERMS: each chunk's offsets, then every channel */         \
                for (int64_t done = 0; done < terms; done += MAX_TERMS) {                                \
                    int k_count = terms - done < MAX_TERMS ? (int)(terms - done) : MAX_TERMS, onto = done > 0; \
                    int64_t x_off[MAX_TERMS], w_off[MAX_TERMS];                                          \
                    for (int k = 0; k < k_count; ++k) {                                                  \
                        int64_t t = done + k, jc = t % seg[3], jab = t / seg[3];                         \
                        int64_t ja = jab / nb[b], jb = jab % nb[b];                                      \
                        x_off[k] = fa[a * wa + ja] + fb[b * wb + jb] + seg[SEG_HEAD + jc];               \
                        w_off[k] = ta[a * wa + ja] + tb[b * wb + jb] + seg[SEG_HEAD + wc + jc] * uc;     \
                    }                                                                                    \
                    int64_t cb = 0;                                                                      \
                    for (; cb + L <= channels; cb += L) {                                                \
                        V start = {0};                                                                   \
                        if (bias) start = *(const V *)(bias + cb);                                       \
                        switch (k_count) {                                                               \
                            case 1: DEPTHWISE_LAST_RUN(T, V, 1) break;                                      \
                            case 2: DEPTHWISE_LAST_RUN(T, V, 2) break;                                      \
                            case 3: DEPTHWISE_LAST_RUN(T, V, 3) break;                                      \
                            case 4: DEPTHWISE_LAST_RUN(T, V, 4) break;                                      \
                            case 6: DEPTHWISE_LAST_RUN(T, V, 6) break;                                      \
                            case 8: DEPTHWISE_LAST_RUN(T, V, 8) break;                                      \
                            default: DEPTHWISE_LAST_RUN(T, V, k_count) break;                               \
                        }                                                                                \
                    }                                                                                    \
                    for (; cb < channels; ++cb) { /* the channels past the last whole vector */          \
                        for (int64_t m = 0; m < count; ++m) {                                            \
                            T *hold = drow + (o0 + m * step) * channels + cb;                            \
                            T acc = onto ? *hold : (bias ? bias[cb] : (T)0);                             \
                            const T *base = xn + m * inc + cb;                                           \
                            for (int k = 0; k < k_count; ++k) acc += base[x_off[k]] * w[w_off[k] + cb];  \
                            *hold = acc;                                                                 \
                        }                                                                                \
                    }                                                                                    \
                }                                                                                        \
            }                                                                                            \
        }                                                                                                \
    }

DEFINE_DEPTHWISE_LAST(f32, float)
DEFINE_DEPTHWISE_LAST(f64, double)

#define TILE 32
#define DEFINE_TRANSPOSE(NAME, T)                                                                       \
    void NAME(const T *src, T *dst, int64_t n, int64_t positions, int64_t channels, int threads) {    \
        int64_t tp = (positions + TILE - 1) / TILE, tc = (channels + TILE - 1) / TILE;                   \
        int64_t jobs = n * tc * tp;                                                                      \
        PARALLEL_FOR                                                                                     \
        for (int64_t job = 0; job < jobs; ++job) {                                                       \
            int64_t i = job / (tc * tp), rest = job % (tc * tp), c0 = (rest / tp) * TILE,                \
                    p0 = (rest % tp) * TILE;                                                             \
            int64_t c1 = c0 + TILE < channels ? c0 + TILE : channels;                                    \
            int64_t p1 = p0 + TILE < positions ? p0 + TILE : positions;                                  \
            const T *s = src + i * positions * channels;                                                 \
            T *d = dst + i * positions * channels;                                                       \
            for (int64_t c = c0; c < c1; ++c)                                                            \
                for (int64_t q = p0; q < p1; ++q) d[c * positions + q] = s[q * channels + c];            \
        }                                                                                                \
    }

DEFINE_TRANSPOSE(tconv_transpose_b16, uint16_t)
DEFINE_TRANSPOSE(tconv_transpose_b32, uint32_t)
DEFINE_TRANSPOSE(tconv_transpose_b64, uint64_t)
