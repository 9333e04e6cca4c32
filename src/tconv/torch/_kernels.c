/* Two memory-bound loops that torch's strided copies run far below memory speed.
 *
 * Compiled on first use by tconv/torch/_native.py (a C compiler and nothing
 * else: no torch headers), called through ctypes on tensors' raw pointers.
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
 *   With add_fill, fill[p] is added to every element once (the bias);
 *   without it, fill[p] (or 0 when fill is NULL) is written only where there
 *   is no term, and a single term is copied bit for bit (the phase landing:
 *   NaN payloads, signed zeros). Two segments that interleave at stride 2
 *   run as one loop. Rows are shared between threads.
 *
 * transpose: dst[n, c, p] = src[n, p, c] in 32 x 32 tiles (channels-last to
 *   channels-first), each element moved as bits.
 */
#include <stdint.h>

#ifdef _OPENMP
#define PARALLEL_FOR _Pragma("omp parallel for num_threads(threads) schedule(static)")
#else
#define PARALLEL_FOR
#endif

/* how a segment's values meet the row: the first write of a copy, the first write plus the fill,
   or an addition to what an earlier leading term wrote */
enum { COPY = 0, FILL = 1, ADD = 2 };

#define SEG_HEAD 5

/* Every output row (plane p, leading outputs a and b) in parallel; ROW runs once per leading term
   (ja, jb), with `first` set on the first; a row with no leading term gets the fill (or 0). */
#define EACH_ROW(T, ROW)                                                                                \
    int64_t rows = planes * na * nb;                                                                     \
    PARALLEL_FOR                                                                                         \
    for (int64_t r = 0; r < rows; ++r) {                                                                 \
        int64_t p = r / (na * nb), ab = r % (na * nb), a = ab / nb, b = ab % nb;                         \
        T *d = dst + r * no;                                                                             \
        T start = fill ? fill[p] : (T)0;                                                                 \
        int first = 1;                                                                                   \
        for (int32_t ja = 0; ja < ca[a]; ++ja) {                                                         \
            for (int32_t jb = 0; jb < cb[b]; ++jb) {                                                     \
                ROW;                                                                                     \
                first = 0;                                                                               \
            }                                                                                            \
        }                                                                                                \
        if (first)                                                                                       \
            for (int64_t o = 0; o < no; ++o) d[o] = start;                                               \
    }

#define DEFINE_GATHER(NAME, T)                                                                          \
    /* d[m*step] (op)= p[m*inc] for m < count: one term of a run, a loop simple enough to vectorize */   \
    static inline void NAME##_pass(T *d, int64_t step, const T *p, int64_t inc, int64_t count, T start,   \
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
    static inline void NAME##_pair(T *d, const T *p0, const T *p1, int64_t inc, int64_t count, T start,  \
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
            NAME##_pass(d, 2, p0, inc, count, start, mode);                                              \
            NAME##_pass(d + 1, 2, p1, inc, count, start, mode);                                          \
        }                                                                                                \
    }                                                                                                    \
    static void NAME##_row(T *d, const T *s, const int64_t *segs, int64_t nseg, int64_t width,          \
                           T start, int mode) {                                                          \
        int64_t stride = SEG_HEAD + 2 * width;                                                           \
        for (int64_t i = 0; i < nseg;) {                                                                 \
            const int64_t *g = segs + i * stride, *h = g + stride;                                       \
            int64_t o0 = g[0], step = g[1], count = g[2], nt = g[3], inc = g[4];                         \
            int fused = i + 1 < nseg && step == 2 && h[1] == 2 && h[0] == o0 + 1 && h[2] == count        \
                        && h[4] == inc && nt > 0 && h[3] > 0;                                            \
            if (fused) {                                                                                 \
                NAME##_pair(d + o0, s + g[SEG_HEAD], s + h[SEG_HEAD], inc, count, start, mode);          \
                for (int64_t j = 1; j < h[3]; ++j)                                                       \
                    NAME##_pass(d + o0 + 1, 2, s + h[SEG_HEAD + j], inc, count, start, ADD);             \
            } else if (nt == 0) {                                                                        \
                if (mode != ADD)                                                                         \
                    for (int64_t m = 0; m < count; ++m) d[o0 + m * step] = start;                        \
            } else {                                                                                     \
                NAME##_pass(d + o0, step, s + g[SEG_HEAD], inc, count, start, mode);                     \
            }                                                                                            \
            for (int64_t j = 1; j < nt; ++j)                                                             \
                NAME##_pass(d + o0, step, s + g[SEG_HEAD + j], inc, count, start, ADD);                  \
            i += fused ? 2 : 1;                                                                          \
        }                                                                                                \
    }                                                                                                    \
    void NAME(const T *src, T *dst, int64_t planes, const int64_t *plane_off, const T *fill,          \
              int add_fill, int64_t na, const int32_t *ca, const int64_t *fa, int64_t wa, int64_t nb,    \
              const int32_t *cb, const int64_t *fb, int64_t wb, int64_t no, const int64_t *segs,         \
              int64_t nseg, int64_t width, int threads) {                                                \
        EACH_ROW(T, NAME##_row(d, src + plane_off[p] + fa[a * wa + ja] + fb[b * wb + jb], segs, nseg, width, \
                               start, first ? (add_fill ? FILL : COPY) : ADD))                           \
    }

DEFINE_GATHER(tconv_gather_f32, float)
DEFINE_GATHER(tconv_gather_f64, double)
/* 2-byte floats (float16, bfloat16) as bits: the Python side sends only copies here (at most one
   term per element, add_fill 0), so the integer additions above never run. */
DEFINE_GATHER(tconv_gather_b16, uint16_t)

/* depthwise: the gather with every term times its channel's weight for its tap (taps[] after offsets[]
   in each segment, ta/tb for the leading axes); the fill (bias) is added once. */
#define DEFINE_DEPTHWISE(NAME, T)                                                                       \
    static inline void NAME##_pass(T *d, int64_t step, const T *p, int64_t inc, int64_t count, T start,   \
                                   T wv, int first) {                                                    \
        if (step == 1 && inc == 1) {                                                                     \
            if (first) for (int64_t m = 0; m < count; ++m) d[m] = start + wv * p[m];                     \
            else for (int64_t m = 0; m < count; ++m) d[m] += wv * p[m];                                  \
        } else {                                                                                         \
            if (first) for (int64_t m = 0; m < count; ++m) d[m * step] = start + wv * p[m * inc];        \
            else for (int64_t m = 0; m < count; ++m) d[m * step] += wv * p[m * inc];                     \
        }                                                                                                \
    }                                                                                                    \
    static void NAME##_row(T *d, const T *s, const T *wt, const int64_t *segs, int64_t nseg,            \
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
                    NAME##_pass(d + o0 + 1, 2, s + off1[j], inc, count, start, wt[tap1[j]], 0);          \
            } else if (nt == 0) {                                                                        \
                if (first)                                                                               \
                    for (int64_t m = 0; m < count; ++m) d[o0 + m * step] = start;                        \
            } else {                                                                                     \
                NAME##_pass(d + o0, step, s + off[0], inc, count, start, wt[tap[0]], first);             \
            }                                                                                            \
            for (int64_t j = 1; j < nt; ++j)                                                             \
                NAME##_pass(d + o0, step, s + off[j], inc, count, start, wt[tap[j]], 0);                 \
            i += fused ? 2 : 1;                                                                          \
        }                                                                                                \
    }                                                                                                    \
    void NAME(const T *x, T *dst, int64_t planes, const int64_t *plane_off, const int64_t *plane_w,       \
              const T *weight, const T *fill, int64_t na, const int32_t *ca, const int64_t *fa,           \
              const int64_t *ta, int64_t wa, int64_t ua, int64_t nb, const int32_t *cb, const int64_t *fb,\
              const int64_t *tb, int64_t wb, int64_t ub, int64_t no, const int64_t *segs, int64_t nseg,   \
              int64_t width, int threads) {                                                              \
        EACH_ROW(T, NAME##_row(d, x + plane_off[p] + fa[a * wa + ja] + fb[b * wb + jb],                 \
                               weight + plane_w[p] + ta[a * wa + ja] * ua + tb[b * wb + jb] * ub, segs,  \
                               nseg, width, start, first))                                               \
    }

DEFINE_DEPTHWISE(tconv_depthwise_f32, float)
DEFINE_DEPTHWISE(tconv_depthwise_f64, double)

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
