/* Native fast path of the price-transparency converter (spark_jobs/mrf/native.py).
 *
 * Two jobs, both on bytes the Python side already holds:
 *
 * 1. mrf_scan: the splitter's scan of a block. It tracks strings, escapes and nesting depth
 *    across blocks and reports only the structural characters the splitter acts on: those at
 *    depth 0 or 1 (the top-level object's members) and the ',' and ']' at depth 2 (element
 *    boundaries of a streamed array). The numpy scan it replaces touched every structural
 *    character of the block several times.
 *
 * 2. mrf_items: a batch of in_network items (one JSON object per line) straight to output
 *    rows, grouped by billing-code bucket: no parse tree, no Arrow intermediate. Text
 *    columns come out as dictionary indices over each bucket's distinct values, so Python
 *    wraps the buffers as Arrow dictionary arrays without touching a row.
 *
 * The grain is the one spark_jobs/mrf/arrow_grain.py computes. This parser accepts only the
 * plain shape of the schema: strings or null for text, integers for ids and NPIs, numbers for
 * rates, no duplicate keys. Anything else (a code published as a number, a null inside an NPI
 * list, malformed JSON) makes it return MRF_FALLBACK with the item's index, and the caller
 * converts that batch with the Arrow path, which either accepts it or names the error. So the
 * rows never depend on which path ran.
 */
#include <math.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MRF_OK 0
#define MRF_FALLBACK 1
#define MRF_NOMEM 2

/* -- growable vectors -------------------------------------------------------------------- */

typedef struct {
    char *data;
    int64_t len, cap;
} vec;

static __attribute__((noinline)) int vec_grow(vec *v, int64_t extra) {
    int64_t cap = v->cap ? v->cap : 256;
    while (cap < v->len + extra) cap *= 2;
    char *d = realloc(v->data, (size_t)cap);
    if (!d) return 0;
    v->data = d;
    v->cap = cap;
    return 1;
}

static inline int vec_reserve(vec *v, int64_t extra) {
    return v->len + extra <= v->cap || vec_grow(v, extra);
}

/* inlined, so a put of a constant size compiles to plain moves */
static inline int vec_put(vec *v, const void *src, int64_t n) {
    if (!vec_reserve(v, n)) return 0;
    memcpy(v->data + v->len, src, (size_t)n);
    v->len += n;
    return 1;
}

#define PUT(v, type, value)                                  \
    do {                                                     \
        type tmp_ = (value);                                 \
        if (!vec_put((v), &tmp_, sizeof(type))) return 0;    \
    } while (0)
#define AT(v, type, i) (((type *)(v).data)[i])
#define COUNT(v, type) ((v).len / (int64_t)sizeof(type))

/* -- text references and dictionaries ---------------------------------------------------- */

typedef struct {
    const char *p; /* NULL: null */
    int32_t n;
} sref;

static inline uint64_t load_tail(const char *p, int32_t n) { /* n < 8 bytes, little-endian */
    uint64_t w = 0;
    for (int32_t i = 0; i < n; i++) w |= (uint64_t)(unsigned char)p[i] << (8 * i);
    return w;
}

static inline uint64_t hash_bytes(const char *p, int32_t n) {
    const uint64_t k = 0x9E3779B97F4A7C15ULL;
    uint64_t h = (uint64_t)n * k, w;
    for (; n >= 8; n -= 8, p += 8) {
        memcpy(&w, p, 8);
        h = (h ^ w) * k;
        h ^= h >> 32;
    }
    h = (h ^ load_tail(p, n)) * k;
    return h ^ (h >> 29);
}

/* equal bytes: values are short, so 8 at a time inline beats a call to memcmp */
static inline int same_bytes(const char *a, const char *b, int32_t n) {
    uint64_t x, y;
    for (; n >= 8; n -= 8, a += 8, b += 8) {
        memcpy(&x, a, 8);
        memcpy(&y, b, 8);
        if (x != y) return 0;
    }
    return load_tail(a, n) == load_tail(b, n);
}

/* distinct values in first-seen order: Arrow string layout (int32 offsets + bytes) */
typedef struct {
    vec offsets; /* int32, count + 1 */
    vec bytes;
    vec hashes; /* uint64 per value */
    uint64_t *slots; /* high 32 bits of the hash, value index + 1 in the low 32; 0 empty */
    uint32_t nslots;
    int32_t count;
    int32_t last; /* the value interned last (runs of one value are common), -1 none */
} dict;

static void dict_reset(dict *d) {
    d->offsets.len = d->bytes.len = d->hashes.len = 0;
    if (d->slots) memset(d->slots, 0, sizeof(uint64_t) * d->nslots);
    d->count = 0;
    d->last = -1;
}

static void dict_free(dict *d) {
    free(d->offsets.data);
    free(d->bytes.data);
    free(d->hashes.data);
    free(d->slots);
    memset(d, 0, sizeof(*d));
}

static int dict_grow(dict *d) {
    uint32_t n = d->nslots ? d->nslots * 2 : 64;
    uint64_t *s = calloc(n, sizeof(uint64_t));
    if (!s) return 0;
    for (int32_t i = 0; i < d->count; i++) {
        uint64_t h = AT(d->hashes, uint64_t, i);
        uint32_t at = (uint32_t)h & (n - 1);
        while (s[at]) at = (at + 1) & (n - 1);
        s[at] = (h & 0xFFFFFFFF00000000ULL) | ((uint64_t)i + 1);
    }
    free(d->slots);
    d->slots = s;
    d->nslots = n;
    return 1;
}

/* index of the value in the dictionary (added when new); -1 for null, -2 out of memory */
static int32_t dict_intern(dict *d, sref s) {
    if (!s.p) return -1;
    if (d->count && d->last >= 0) {
        int32_t a = AT(d->offsets, int32_t, d->last), b = AT(d->offsets, int32_t, d->last + 1);
        if (b - a == s.n && same_bytes(d->bytes.data + a, s.p, s.n)) return d->last;
    }
    if ((uint32_t)(d->count + 1) * 2 > d->nslots && !dict_grow(d)) return -2;
    if (d->count == 0 && d->offsets.len == 0) {
        int32_t zero = 0;
        if (!vec_put(&d->offsets, &zero, 4)) return -2;
    }
    uint64_t h = hash_bytes(s.p, s.n), tag = h & 0xFFFFFFFF00000000ULL;
    uint32_t at = (uint32_t)h & (d->nslots - 1);
    while (d->slots[at]) {
        if ((d->slots[at] & 0xFFFFFFFF00000000ULL) == tag) {
            int32_t i = (int32_t)(d->slots[at] & 0xFFFFFFFFu) - 1;
            int32_t a = AT(d->offsets, int32_t, i), b = AT(d->offsets, int32_t, i + 1);
            if (b - a == s.n && same_bytes(d->bytes.data + a, s.p, s.n)) return d->last = i;
        }
        at = (at + 1) & (d->nslots - 1);
    }
    if (d->bytes.len + s.n > INT32_MAX) return -2;
    if (!vec_put(&d->bytes, s.p, s.n)) return -2;
    int32_t end = (int32_t)d->bytes.len;
    if (!vec_put(&d->offsets, &end, 4) || !vec_put(&d->hashes, &h, 8)) return -2;
    d->slots[at] = tag | ((uint64_t)d->count + 1);
    return d->last = d->count++;
}

/* -- output: one builder per bucket ------------------------------------------------------- */

/* text columns kept as dictionary indices, in this order */
enum {
    C_NEGOTIATION_ARRANGEMENT, C_NAME, C_BILLING_CODE_TYPE, C_BILLING_CODE_TYPE_VERSION,
    C_BILLING_CODE, C_DESCRIPTION, /* item fields */
    C_TIN_TYPE, C_TIN_VALUE, /* provider */
    C_NEGOTIATED_TYPE, C_EXPIRATION_DATE, C_BILLING_CLASS, C_SETTING,
    C_ADDITIONAL_INFORMATION, /* price */
    N_TEXT
};
#define N_ITEM_TEXT 6
#define N_LIST 2 /* service_code, billing_code_modifier */
#define NULL_INT INT64_MIN

typedef struct {
    int64_t rows;
    vec text[N_TEXT]; /* int32 per row, -1 null */
    dict dicts[N_TEXT];
    vec group_id, npi; /* int64 per row, NULL_INT null */
    vec rate; /* double per row */
    vec list_offsets[N_LIST]; /* int32 per row + 1 */
    vec list_valid[N_LIST]; /* uint8 per row */
    vec list_values[N_LIST]; /* int32 dictionary index per element */
    dict list_dicts[N_LIST];
    /* TIN ids of reference-index rows already interned in this bucket: entry j is valid
     * when tin_gen[j] == gen (gen moves on when the bucket is emptied) */
    uint32_t gen;
    uint32_t *tin_gen;
    int32_t *tin_cache; /* type id, value id per reference row */
} bucket;
/* the cache above costs 12 bytes per reference row and bucket: kept under ~100 MB */
#define TIN_CACHE_MAX_ENTRIES (8 << 20)

/* -- references: provider_group_id -> provider rows (from the Python side's index) ------- */

typedef struct {
    int64_t n_ids;
    int64_t *ids, *start, *count; /* sorted ids */
    int64_t n_rows;
    int64_t *npi; /* NULL_INT: null */
    sref *tin_type, *tin_value;
    char *text; /* owns the bytes the srefs point to */
} refs;

/* -- per item scratch ---------------------------------------------------------------------- */

typedef struct {
    int32_t rate;
    sref text[5]; /* negotiated_type, expiration_date, billing_class, setting, additional_information */
    double amount;
    int32_t list_start[N_LIST], list_count[N_LIST]; /* into scratch list elements; count -1: null */
} price;

typedef struct {
    int64_t group_id, npi; /* NULL_INT: null */
    sref tin_type, tin_value;
    int64_t ref_row; /* row of the reference index it came from, -1 for inline or null rows */
} provider_row;

typedef struct {
    int32_t first_row, n_rows; /* into the item's provider rows */
} rate_rows;

typedef struct {
    int nbuckets;
    bucket *buckets;
    refs refs;
    vec decoded; /* unescaped strings of the current batch */
    vec prices, providers, rates, elements; /* the current item */
    vec inline_rows, ref_ids; /* the current rate */
    vec tin_ids; /* int32 pairs per provider row of the current item */
    vec list_ids; /* int32 per element of the current price's list */
    int64_t unresolved, rows_added; /* by the last mrf_items call */
    int nomem;
    vec marks; /* bucket lengths before the current call */
    int64_t err_item;
    /* splitter state */
    int64_t depth;
    int in_string, escape_next;
} ctx;

/* -- JSON scanning --------------------------------------------------------------------------- */

typedef struct {
    const char *p, *end;
    ctx *c;
    int ok;
} cur;

#define FAIL(k) \
    do {        \
        (k)->ok = 0; \
        return 0; \
    } while (0)

static inline void ws(cur *k) {
    /* every byte above 0x20 ends the whitespace: one test in the common, compact case */
    while (k->p < k->end && (unsigned char)*k->p <= 0x20 &&
           (*k->p == ' ' || *k->p == '\t' || *k->p == '\r' || *k->p == '\n'))
        k->p++;
}

static inline int peek(cur *k, char ch) {
    ws(k);
    return k->p < k->end && *k->p == ch;
}

static inline int expect(cur *k, char ch) {
    ws(k);
    if (k->p < k->end && *k->p == ch) {
        k->p++;
        return 1;
    }
    k->ok = 0;
    return 0;
}

static int literal(cur *k, const char *word, int n) {
    if (k->end - k->p < n || memcmp(k->p, word, (size_t)n) != 0) FAIL(k);
    k->p += n;
    return 1;
}

static int hex4(const char *p, uint32_t *out) {
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        char ch = p[i];
        v <<= 4;
        if (ch >= '0' && ch <= '9') v |= (uint32_t)(ch - '0');
        else if (ch >= 'a' && ch <= 'f') v |= (uint32_t)(ch - 'a' + 10);
        else if (ch >= 'A' && ch <= 'F') v |= (uint32_t)(ch - 'A' + 10);
        else return 0;
    }
    *out = v;
    return 1;
}

/* valid UTF-8 without overlongs or surrogates, as the Arrow path requires */
static int utf8_valid(const unsigned char *s, int64_t n) {
    int64_t i = 0;
    while (i < n) {
        unsigned char b = s[i];
        if (b < 0x80) {
            i++;
            continue;
        }
        int len;
        uint32_t cp;
        if ((b & 0xE0) == 0xC0) len = 2, cp = b & 0x1F;
        else if ((b & 0xF0) == 0xE0) len = 3, cp = b & 0x0F;
        else if ((b & 0xF8) == 0xF0) len = 4, cp = b & 0x07;
        else return 0;
        if (i + len > n) return 0;
        for (int j = 1; j < len; j++) {
            if ((s[i + j] & 0xC0) != 0x80) return 0;
            cp = (cp << 6) | (s[i + j] & 0x3F);
        }
        if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10FFFF ||
            (cp >= 0xD800 && cp <= 0xDFFF))
            return 0;
        i += len;
    }
    return 1;
}

/* a JSON string at the cursor (after whitespace): points into the input, or into the
 * batch's decoded buffer when it has escapes (reserved up front, so pointers stay valid) */
static int string(cur *k, sref *out) {
    ws(k);
    if (k->p >= k->end || *k->p != '"') FAIL(k);
    const char *s = ++k->p;
    int high = 0;
    for (;;) {
#ifdef __SSE2__
        /* 16 bytes at a time up to the next quote, backslash, control or non-ASCII byte */
        while (k->end - k->p >= 16) {
            __m128i v = _mm_loadu_si128((const __m128i *)k->p);
            int m = _mm_movemask_epi8(_mm_or_si128(
                _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('"')), _mm_cmpeq_epi8(v, _mm_set1_epi8('\\'))),
                _mm_cmplt_epi8(v, _mm_set1_epi8(0x20)))); /* signed: bytes >= 0x80 count too */
            if (m) {
                k->p += __builtin_ctz((unsigned)m);
                break;
            }
            k->p += 16;
        }
#endif
        if (k->p >= k->end) break;
        unsigned char ch = (unsigned char)*k->p;
        if (ch == '"') {
            int64_t n = k->p - s;
            if (high && !utf8_valid((const unsigned char *)s, n)) FAIL(k);
            if (n > INT32_MAX) FAIL(k);
            out->p = s;
            out->n = (int32_t)n;
            k->p++;
            return 1;
        }
        if (ch == '\\') break;
        if (ch < 0x20) FAIL(k);
        high |= ch >= 0x80;
        k->p++;
    }
    /* escapes: decode from s into the batch's buffer */
    vec *d = &k->c->decoded;
    char *o = d->data + d->len, *start = o;
    const char *q = s;
    while (q < k->end) {
        unsigned char ch = (unsigned char)*q;
        if (ch == '"') break;
        if (ch < 0x20) FAIL(k);
        if (ch != '\\') {
            *o++ = (char)ch;
            q++;
            continue;
        }
        if (q + 1 >= k->end) FAIL(k);
        char e = q[1];
        q += 2;
        switch (e) {
        case '"': *o++ = '"'; break;
        case '\\': *o++ = '\\'; break;
        case '/': *o++ = '/'; break;
        case 'b': *o++ = '\b'; break;
        case 'f': *o++ = '\f'; break;
        case 'n': *o++ = '\n'; break;
        case 'r': *o++ = '\r'; break;
        case 't': *o++ = '\t'; break;
        case 'u': {
            uint32_t cp;
            if (k->end - q < 4 || !hex4(q, &cp)) FAIL(k);
            q += 4;
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                uint32_t lo;
                if (k->end - q < 6 || q[0] != '\\' || q[1] != 'u' || !hex4(q + 2, &lo) || lo < 0xDC00 || lo > 0xDFFF)
                    FAIL(k);
                q += 6;
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                FAIL(k);
            }
            if (cp == 0) FAIL(k); /* NUL inside text: left to the Arrow path */
            /* an escape takes at least 6 bytes and encodes to at most 4: no overflow */
            if (cp < 0x80) *o++ = (char)cp;
            else if (cp < 0x800) *o++ = (char)(0xC0 | (cp >> 6)), *o++ = (char)(0x80 | (cp & 0x3F));
            else if (cp < 0x10000)
                *o++ = (char)(0xE0 | (cp >> 12)), *o++ = (char)(0x80 | ((cp >> 6) & 0x3F)),
                *o++ = (char)(0x80 | (cp & 0x3F));
            else
                *o++ = (char)(0xF0 | (cp >> 18)), *o++ = (char)(0x80 | ((cp >> 12) & 0x3F)),
                *o++ = (char)(0x80 | ((cp >> 6) & 0x3F)), *o++ = (char)(0x80 | (cp & 0x3F));
            break;
        }
        default: FAIL(k);
        }
    }
    if (q >= k->end) FAIL(k);
    int64_t n = o - start;
    if (!utf8_valid((const unsigned char *)start, n) || n > INT32_MAX) FAIL(k);
    d->len += n;
    out->p = start;
    out->n = (int32_t)n;
    k->p = q + 1;
    return 1;
}

/* text or null */
static int text(cur *k, sref *out) {
    ws(k);
    if (k->p < k->end && *k->p == 'n') {
        out->p = NULL;
        out->n = 0;
        return literal(k, "null", 4);
    }
    return string(k, out);
}

static int is_null(cur *k) {
    ws(k);
    if (k->p < k->end && *k->p == 'n') return literal(k, "null", 4);
    return 0;
}

/* the extent of a JSON number; *integral tells whether it has no fraction or exponent */
static int number_span(cur *k, const char **s, int *integral) {
    ws(k);
    const char *p = k->p;
    *s = p;
    *integral = 1;
    if (p < k->end && *p == '-') p++;
    if (p >= k->end || *p < '0' || *p > '9') FAIL(k);
    if (*p == '0') p++;
    else
        while (p < k->end && *p >= '0' && *p <= '9') p++;
    if (p < k->end && *p == '.') {
        *integral = 0;
        p++;
        if (p >= k->end || *p < '0' || *p > '9') FAIL(k);
        while (p < k->end && *p >= '0' && *p <= '9') p++;
    }
    if (p < k->end && (*p == 'e' || *p == 'E')) {
        *integral = 0;
        p++;
        if (p < k->end && (*p == '+' || *p == '-')) p++;
        if (p >= k->end || *p < '0' || *p > '9') FAIL(k);
        while (p < k->end && *p >= '0' && *p <= '9') p++;
    }
    k->p = p;
    return 1;
}

static int integer(cur *k, int64_t *out) {
    const char *s;
    int integral;
    if (!number_span(k, &s, &integral) || !integral) FAIL(k);
    int neg = *s == '-';
    uint64_t v = 0;
    for (const char *p = s + neg; p < k->p; p++) {
        uint64_t d = (uint64_t)(*p - '0');
        if (v > (UINT64_MAX - d) / 10) FAIL(k);
        v = v * 10 + d;
    }
    if (v > (uint64_t)INT64_MAX) FAIL(k); /* INT64_MIN itself is left to the Arrow path */
    *out = neg ? -(int64_t)v : (int64_t)v;
    return 1;
}

/* exact powers of ten a double holds */
static const double exact_tens[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
                                    1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* Clinger's fast path: a decimal without exponent whose digits fit in 2^53 is one exact
 * integer divided by an exact power of ten, and IEEE division rounds correctly, so the
 * result is strtod's. Returns 0 when the text is outside that case. */
static int fast_decimal(const char *s, const char *end, double *out) {
    int neg = *s == '-';
    const char *p = s + neg;
    uint64_t m = 0;
    int digits = 0, frac = -1;
    for (; p < end; p++) {
        if (*p == '.') {
            frac = 0;
            continue;
        }
        if (*p < '0' || *p > '9') return 0; /* an exponent */
        m = m * 10 + (uint64_t)(*p - '0');
        if (m && ++digits > 15) return 0;
        if (frac >= 0) frac++;
    }
    if (frac > 22) return 0;
    double v = (double)m;
    if (frac > 0) v /= exact_tens[frac];
    *out = neg ? -v : v;
    return 1;
}

static int real(cur *k, double *out) {
    const char *s;
    int integral;
    if (!number_span(k, &s, &integral)) return 0;
    if (fast_decimal(s, k->p, out)) return 1;
    char buf[64];
    int64_t n = k->p - s;
    if (n >= (int64_t)sizeof(buf)) FAIL(k);
    memcpy(buf, s, (size_t)n);
    buf[n] = 0;
    *out = strtod(buf, NULL);
    if (!isfinite(*out)) FAIL(k);
    return 1;
}

static int skip_value(cur *k, int depth);

static int skip_container(cur *k, int depth, char close) {
    k->p++;
    if (peek(k, close)) {
        k->p++;
        return 1;
    }
    for (;;) {
        if (close == '}') {
            sref key;
            if (!string(k, &key) || !expect(k, ':')) return 0;
        }
        if (!skip_value(k, depth + 1)) return 0;
        ws(k);
        if (k->p >= k->end) FAIL(k);
        if (*k->p == ',') {
            k->p++;
            continue;
        }
        if (*k->p == close) {
            k->p++;
            return 1;
        }
        FAIL(k);
    }
}

static int skip_value(cur *k, int depth) {
    if (depth > 256) FAIL(k);
    ws(k);
    if (k->p >= k->end) FAIL(k);
    switch (*k->p) {
    case '{': return skip_container(k, depth, '}');
    case '[': return skip_container(k, depth, ']');
    case '"': {
        sref s;
        return string(k, &s);
    }
    case 't': return literal(k, "true", 4);
    case 'f': return literal(k, "false", 5);
    case 'n': return literal(k, "null", 4);
    default: {
        const char *s;
        int integral;
        return number_span(k, &s, &integral);
    }
    }
}

/* iterate the members of an object: returns 1 with the key, 0 at '}' (k->ok stays 1) */
static int next_member(cur *k, int *first, sref *key) {
    ws(k);
    if (*first) {
        *first = 0;
        if (peek(k, '}')) {
            k->p++;
            return 0;
        }
    } else {
        ws(k);
        if (k->p < k->end && *k->p == '}') {
            k->p++;
            return 0;
        }
        if (!expect(k, ',')) return 0;
    }
    if (!string(k, key) || !expect(k, ':')) return 0;
    return 1;
}

/* same for arrays: 1 when another element follows, 0 at ']' */
static int next_element(cur *k, int *first) {
    ws(k);
    if (*first) {
        *first = 0;
        if (peek(k, ']')) {
            k->p++;
            return 0;
        }
        return 1;
    }
    if (k->p < k->end && *k->p == ']') {
        k->p++;
        return 0;
    }
    if (!expect(k, ',')) return 0;
    return 1;
}

static inline int key_is(sref key, const char *name, int n) {
    return key.n == n && memcmp(key.p, name, (size_t)n) == 0;
}
#define KEY(key, lit) key_is((key), (lit), (int)sizeof(lit) - 1)

/* a key seen twice: left to the Arrow path */
#define ONCE(seen, bit)               \
    do {                              \
        if ((seen) & (1u << (bit))) { \
            k->ok = 0;                \
            return 0;                 \
        }                             \
        (seen) |= 1u << (bit);        \
    } while (0)

/* -- the item grammar ------------------------------------------------------------------------ */

/* a list of strings (null: count -1) into the item's element scratch */
static int text_list(cur *k, int32_t *start, int32_t *count) {
    ctx *c = k->c;
    *start = (int32_t)COUNT(c->elements, sref);
    *count = -1;
    if (is_null(k)) return 1;
    if (!k->ok || !expect(k, '[')) return 0;
    *count = 0;
    int first = 1;
    while (next_element(k, &first)) {
        sref s;
        if (!string(k, &s)) return 0; /* a null element is left to the Arrow path */
        PUT(&c->elements, sref, s);
        (*count)++;
    }
    return k->ok;
}

static int parse_price(cur *k, int32_t rate) {
    price pr;
    memset(&pr, 0, sizeof(pr));
    pr.rate = rate;
    pr.list_count[0] = pr.list_count[1] = -1;
    int have_amount = 0, first = 1;
    unsigned seen = 0;
    sref key;
    if (!expect(k, '{')) return 0;
    while (next_member(k, &first, &key)) {
        if (KEY(key, "negotiated_type")) {
            ONCE(seen, 0);
            if (!text(k, &pr.text[0])) return 0;
        } else if (KEY(key, "negotiated_rate")) {
            ONCE(seen, 1);
            if (!real(k, &pr.amount)) return 0; /* null: left to the Arrow path */
            have_amount = 1;
        } else if (KEY(key, "expiration_date")) {
            ONCE(seen, 2);
            if (!text(k, &pr.text[1])) return 0;
        } else if (KEY(key, "billing_class")) {
            ONCE(seen, 3);
            if (!text(k, &pr.text[2])) return 0;
        } else if (KEY(key, "setting")) {
            ONCE(seen, 4);
            if (!text(k, &pr.text[3])) return 0;
        } else if (KEY(key, "additional_information")) {
            ONCE(seen, 5);
            if (!text(k, &pr.text[4])) return 0;
        } else if (KEY(key, "service_code")) {
            ONCE(seen, 6);
            if (!text_list(k, &pr.list_start[0], &pr.list_count[0])) return 0;
        } else if (KEY(key, "billing_code_modifier")) {
            ONCE(seen, 7);
            if (!text_list(k, &pr.list_start[1], &pr.list_count[1])) return 0;
        } else if (!skip_value(k, 3)) {
            return 0;
        }
    }
    if (!k->ok || !have_amount) FAIL(k);
    if (!vec_put(&k->c->prices, &pr, sizeof(pr))) FAIL(k);
    return 1;
}

/* inline provider_groups: one row per NPI, one null-NPI row for an empty or null list */
static int parse_groups(cur *k, int *given, int *empty) {
    ctx *c = k->c;
    *given = 0;
    *empty = 0;
    if (is_null(k)) return 1;
    if (!k->ok || !expect(k, '[')) return 0;
    *given = 1;
    *empty = 1;
    int first = 1;
    while (next_element(k, &first)) {
        *empty = 0;
        sref tin_type = {NULL, 0}, tin_value = {NULL, 0};
        int64_t npi_start = COUNT(c->ref_ids, int64_t), npis = 0;
        int gfirst = 1;
        unsigned seen = 0;
        sref key;
        if (!expect(k, '{')) return 0; /* a null group is left to the Arrow path */
        while (next_member(k, &gfirst, &key)) {
            if (KEY(key, "npi")) {
                ONCE(seen, 0);
                if (is_null(k)) continue;
                if (!k->ok || !expect(k, '[')) return 0;
                int nfirst = 1;
                while (next_element(k, &nfirst)) {
                    int64_t v;
                    if (!integer(k, &v)) return 0;
                    PUT(&c->ref_ids, int64_t, v); /* borrowed as NPI scratch; trimmed below */
                    npis++;
                }
                if (!k->ok) return 0;
            } else if (KEY(key, "tin")) {
                ONCE(seen, 1);
                if (is_null(k)) continue;
                if (!k->ok || !expect(k, '{')) return 0;
                int tfirst = 1;
                unsigned tseen = 0;
                sref tkey;
                while (next_member(k, &tfirst, &tkey)) {
                    if (KEY(tkey, "type")) {
                        ONCE(tseen, 0);
                        if (!text(k, &tin_type)) return 0;
                    } else if (KEY(tkey, "value")) {
                        ONCE(tseen, 1);
                        if (!text(k, &tin_value)) return 0;
                    } else if (!skip_value(k, 6)) {
                        return 0;
                    }
                }
                if (!k->ok) return 0;
            } else if (!skip_value(k, 5)) {
                return 0;
            }
        }
        if (!k->ok) return 0;
        provider_row row = {NULL_INT, NULL_INT, tin_type, tin_value, -1};
        if (npis == 0) {
            PUT(&c->inline_rows, provider_row, row);
        }
        for (int64_t i = 0; i < npis; i++) {
            row.npi = AT(c->ref_ids, int64_t, npi_start + i);
            PUT(&c->inline_rows, provider_row, row);
        }
        c->ref_ids.len = npi_start * (int64_t)sizeof(int64_t);
    }
    return k->ok;
}

static int lookup_ref(const refs *r, int64_t id, int64_t *start, int64_t *count) {
    int64_t lo = 0, hi = r->n_ids;
    while (lo < hi) {
        int64_t mid = (lo + hi) / 2;
        if (r->ids[mid] < id) lo = mid + 1;
        else hi = mid;
    }
    if (lo < r->n_ids && r->ids[lo] == id && r->count[lo] > 0) {
        *start = r->start[lo];
        *count = r->count[lo];
        return 1;
    }
    return 0;
}

static int parse_rate(cur *k, int32_t rate) {
    ctx *c = k->c;
    c->inline_rows.len = 0;
    c->ref_ids.len = 0;
    int inline_given = 0, inline_empty = 0, have_prices = 0, first = 1;
    unsigned seen = 0;
    sref key;
    if (!expect(k, '{')) return 0;
    while (next_member(k, &first, &key)) {
        if (KEY(key, "provider_groups")) {
            ONCE(seen, 0);
            if (!parse_groups(k, &inline_given, &inline_empty)) return 0;
        } else if (KEY(key, "provider_references")) {
            ONCE(seen, 1);
            if (is_null(k)) continue;
            if (!k->ok || !expect(k, '[')) return 0;
            int rfirst = 1;
            while (next_element(k, &rfirst)) {
                int64_t v;
                if (!integer(k, &v)) return 0;
                PUT(&c->ref_ids, int64_t, v);
            }
            if (!k->ok) return 0;
        } else if (KEY(key, "negotiated_prices")) {
            ONCE(seen, 2);
            if (!expect(k, '[')) return 0; /* null: left to the Arrow path */
            have_prices = 1;
            int pfirst = 1;
            while (next_element(k, &pfirst))
                if (!parse_price(k, rate)) return 0;
            if (!k->ok) return 0;
        } else if (!skip_value(k, 3)) {
            return 0;
        }
    }
    if (!k->ok || !have_prices) FAIL(k);
    /* the rate's provider rows: inline, then referenced, then one null row when there is
     * an empty inline list or neither inline groups nor references */
    rate_rows rr = {(int32_t)COUNT(c->providers, provider_row), 0};
    if (!vec_put(&c->providers, c->inline_rows.data, c->inline_rows.len)) FAIL(k);
    int64_t n_refs = COUNT(c->ref_ids, int64_t);
    for (int64_t i = 0; i < n_refs; i++) {
        int64_t id = AT(c->ref_ids, int64_t, i), start, count;
        if (lookup_ref(&c->refs, id, &start, &count)) {
            for (int64_t j = start; j < start + count; j++) {
                provider_row row = {id, c->refs.npi[j], c->refs.tin_type[j], c->refs.tin_value[j], j};
                if (!vec_put(&c->providers, &row, sizeof(row))) FAIL(k);
            }
        } else {
            provider_row row = {id, NULL_INT, {NULL, 0}, {NULL, 0}, -1};
            if (!vec_put(&c->providers, &row, sizeof(row))) FAIL(k);
            c->unresolved++;
        }
    }
    if ((inline_given && inline_empty) || (!inline_given && n_refs == 0)) {
        provider_row row = {NULL_INT, NULL_INT, {NULL, 0}, {NULL, 0}, -1};
        if (!vec_put(&c->providers, &row, sizeof(row))) FAIL(k);
    }
    rr.n_rows = (int32_t)(COUNT(c->providers, provider_row) - rr.first_row);
    if (!vec_put(&c->rates, &rr, sizeof(rr))) FAIL(k);
    return 1;
}

static uint32_t crc_table[256];

static void crc_init(void) {
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t v = i;
        for (int j = 0; j < 8; j++) v = (v & 1) ? 0xEDB88320u ^ (v >> 1) : v >> 1;
        crc_table[i] = v;
    }
}

static uint32_t crc32_of(sref s) {
    uint32_t v = 0xFFFFFFFFu;
    for (int32_t i = 0; i < s.n; i++) v = crc_table[(v ^ (unsigned char)s.p[i]) & 0xFF] ^ (v >> 8);
    return v ^ 0xFFFFFFFFu;
}

/* room for `rows` more rows in every column of a bucket */
static int reserve_rows(bucket *bk, int64_t rows) {
    for (int f = 0; f < N_TEXT; f++)
        if (!vec_reserve(&bk->text[f], rows * 4)) return 0;
    if (!vec_reserve(&bk->group_id, rows * 8) || !vec_reserve(&bk->npi, rows * 8) || !vec_reserve(&bk->rate, rows * 8))
        return 0;
    for (int l = 0; l < N_LIST; l++)
        if (!vec_reserve(&bk->list_offsets[l], (rows + 1) * 4) || !vec_reserve(&bk->list_valid[l], rows)) return 0;
    return 1;
}

#define END(v, type) ((type *)((v).data + (v).len))

/* append the item's rows to its bucket: text is interned once per item (item fields),
 * per price (price fields) and per provider row (TINs), then every row is stores only */
static int emit(ctx *c, const sref *fields) {
    int b = fields[C_BILLING_CODE].p ? (int)(crc32_of(fields[C_BILLING_CODE]) % (uint32_t)c->nbuckets) : 0;
    bucket *bk = &c->buckets[b];
    int32_t item_ids[N_ITEM_TEXT];
    for (int f = 0; f < N_ITEM_TEXT; f++)
        if ((item_ids[f] = dict_intern(&bk->dicts[f], fields[f])) == -2) return 0;
    int64_t n_providers = COUNT(c->providers, provider_row);
    c->tin_ids.len = 0;
    if (!vec_reserve(&c->tin_ids, n_providers * 8)) return 0;
    int32_t *tins = (int32_t *)c->tin_ids.data;
    if (!bk->tin_gen && c->refs.n_rows && c->refs.n_rows * c->nbuckets <= TIN_CACHE_MAX_ENTRIES) {
        bk->tin_gen = calloc((size_t)c->refs.n_rows, sizeof(uint32_t));
        bk->tin_cache = malloc(sizeof(int32_t) * 2 * (size_t)c->refs.n_rows);
        if (!bk->tin_gen || !bk->tin_cache) return 0;
    }
    for (int64_t r = 0; r < n_providers; r++) {
        provider_row *pv = &AT(c->providers, provider_row, r);
        int64_t j = pv->ref_row;
        if (j >= 0 && bk->tin_gen && bk->tin_gen[j] == bk->gen) {
            tins[2 * r] = bk->tin_cache[2 * j];
            tins[2 * r + 1] = bk->tin_cache[2 * j + 1];
            continue;
        }
        tins[2 * r] = dict_intern(&bk->dicts[C_TIN_TYPE], pv->tin_type);
        tins[2 * r + 1] = dict_intern(&bk->dicts[C_TIN_VALUE], pv->tin_value);
        if (tins[2 * r] == -2 || tins[2 * r + 1] == -2) return 0;
        if (j >= 0 && bk->tin_gen) {
            bk->tin_gen[j] = bk->gen;
            bk->tin_cache[2 * j] = tins[2 * r];
            bk->tin_cache[2 * j + 1] = tins[2 * r + 1];
        }
    }
    int64_t n_prices = COUNT(c->prices, price);
    for (int64_t pi = 0; pi < n_prices; pi++) {
        price *pr = &AT(c->prices, price, pi);
        rate_rows rr = AT(c->rates, rate_rows, pr->rate);
        int32_t price_ids[5];
        for (int f = 0; f < 5; f++)
            if ((price_ids[f] = dict_intern(&bk->dicts[C_NEGOTIATED_TYPE + f], pr->text[f])) == -2) return 0;
        int64_t rows = rr.n_rows;
        if (!rows) continue;
        if (!reserve_rows(bk, rows)) return 0;
        for (int f = 0; f < N_ITEM_TEXT; f++) {
            int32_t *o = END(bk->text[f], int32_t), v = item_ids[f];
            for (int64_t r = 0; r < rows; r++) o[r] = v;
            bk->text[f].len += rows * 4;
        }
        for (int f = 0; f < 5; f++) {
            int32_t *o = END(bk->text[C_NEGOTIATED_TYPE + f], int32_t), v = price_ids[f];
            for (int64_t r = 0; r < rows; r++) o[r] = v;
            bk->text[C_NEGOTIATED_TYPE + f].len += rows * 4;
        }
        int32_t *tt = END(bk->text[C_TIN_TYPE], int32_t), *tv = END(bk->text[C_TIN_VALUE], int32_t);
        int64_t *gid = END(bk->group_id, int64_t), *npi = END(bk->npi, int64_t);
        double *amount = END(bk->rate, double);
        for (int64_t r = 0; r < rows; r++) {
            int64_t at = rr.first_row + r;
            provider_row *pv = &AT(c->providers, provider_row, at);
            tt[r] = tins[2 * at];
            tv[r] = tins[2 * at + 1];
            gid[r] = pv->group_id;
            npi[r] = pv->npi;
            amount[r] = pr->amount;
        }
        bk->text[C_TIN_TYPE].len += rows * 4;
        bk->text[C_TIN_VALUE].len += rows * 4;
        bk->group_id.len += rows * 8;
        bk->npi.len += rows * 8;
        bk->rate.len += rows * 8;
        for (int l = 0; l < N_LIST; l++) {
            int32_t n = pr->list_count[l];
            if (bk->list_offsets[l].len == 0) PUT(&bk->list_offsets[l], int32_t, 0);
            if (n > 0 && !vec_reserve(&bk->list_values[l], rows * n * 4)) return 0;
            c->list_ids.len = 0;
            if (n > 0 && !vec_reserve(&c->list_ids, (int64_t)n * 4)) return 0;
            int32_t *ids = (int32_t *)c->list_ids.data;
            for (int32_t e = 0; e < n; e++) {
                sref s = AT(c->elements, sref, pr->list_start[l] + e);
                if ((ids[e] = dict_intern(&bk->list_dicts[l], s)) == -2) return 0;
            }
            int32_t *off = END(bk->list_offsets[l], int32_t), *vals = END(bk->list_values[l], int32_t);
            uint8_t *valid = END(bk->list_valid[l], uint8_t);
            int32_t end = (int32_t)COUNT(bk->list_values[l], int32_t);
            for (int64_t r = 0; r < rows; r++) {
                for (int32_t e = 0; e < n; e++) *vals++ = ids[e];
                if (n > 0) end += n;
                off[r] = end;
                valid[r] = n >= 0;
            }
            bk->list_offsets[l].len += rows * 4;
            bk->list_valid[l].len += rows;
            if (n > 0) bk->list_values[l].len += rows * n * 4;
        }
        bk->rows += rows;
    }
    return 1;
}

static int parse_item(cur *k) {
    ctx *c = k->c;
    c->prices.len = c->providers.len = c->rates.len = c->elements.len = 0;
    sref fields[N_ITEM_TEXT];
    memset(fields, 0, sizeof(fields));
    static const char *names[N_ITEM_TEXT] = {"negotiation_arrangement", "name", "billing_code_type",
                                             "billing_code_type_version", "billing_code", "description"};
    int have_rates = 0, first = 1;
    unsigned seen = 0;
    sref key;
    if (!expect(k, '{')) return 0;
    while (next_member(k, &first, &key)) {
        int f;
        for (f = 0; f < N_ITEM_TEXT; f++)
            if (key.n == (int32_t)strlen(names[f]) && memcmp(key.p, names[f], (size_t)key.n) == 0) break;
        if (f < N_ITEM_TEXT) {
            ONCE(seen, f);
            if (!text(k, &fields[f])) return 0;
        } else if (KEY(key, "negotiated_rates")) {
            ONCE(seen, 8);
            if (!expect(k, '[')) return 0; /* null: left to the Arrow path */
            have_rates = 1;
            int rfirst = 1;
            while (next_element(k, &rfirst)) {
                if (COUNT(c->rates, rate_rows) >= INT32_MAX) FAIL(k);
                if (!parse_rate(k, (int32_t)COUNT(c->rates, rate_rows))) return 0;
            }
            if (!k->ok) return 0;
        } else if (!skip_value(k, 1)) {
            return 0;
        }
    }
    if (!k->ok || !have_rates) FAIL(k);
    if (!emit(c, fields)) { /* out of memory (or a bucket's text past 2 GB): no fallback */
        c->nomem = 1;
        FAIL(k);
    }
    return 1;
}

/* -- the API --------------------------------------------------------------------------------- */

ctx *mrf_new(int nbuckets) {
    if (nbuckets < 1) return NULL;
    if (!crc_table[1]) crc_init();
    ctx *c = calloc(1, sizeof(ctx));
    if (!c) return NULL;
    c->nbuckets = nbuckets;
    c->buckets = calloc((size_t)nbuckets, sizeof(bucket));
    if (!c->buckets) {
        free(c);
        return NULL;
    }
    for (int i = 0; i < nbuckets; i++) c->buckets[i].gen = 1;
    return c;
}

static void refs_free(refs *r) {
    free(r->ids);
    free(r->start);
    free(r->count);
    free(r->npi);
    free(r->tin_type);
    free(r->tin_value);
    free(r->text);
    memset(r, 0, sizeof(*r));
}

static void drop_tin_caches(ctx *c) {
    for (int i = 0; i < c->nbuckets; i++) {
        free(c->buckets[i].tin_gen);
        free(c->buckets[i].tin_cache);
        c->buckets[i].tin_gen = NULL;
        c->buckets[i].tin_cache = NULL;
    }
}

static void bucket_reset(bucket *b) {
    b->rows = 0;
    if (++b->gen == 0 && b->tin_gen) { /* wrapped: forget every entry */
        free(b->tin_gen);
        free(b->tin_cache);
        b->tin_gen = NULL;
        b->tin_cache = NULL;
        b->gen = 1;
    }
    for (int i = 0; i < N_TEXT; i++) {
        b->text[i].len = 0;
        dict_reset(&b->dicts[i]);
    }
    b->group_id.len = b->npi.len = b->rate.len = 0;
    for (int l = 0; l < N_LIST; l++) {
        b->list_offsets[l].len = b->list_valid[l].len = b->list_values[l].len = 0;
        dict_reset(&b->list_dicts[l]);
    }
}

void mrf_free(ctx *c) {
    if (!c) return;
    for (int i = 0; i < c->nbuckets; i++) {
        bucket *b = &c->buckets[i];
        for (int j = 0; j < N_TEXT; j++) {
            free(b->text[j].data);
            dict_free(&b->dicts[j]);
        }
        free(b->group_id.data);
        free(b->npi.data);
        free(b->rate.data);
        for (int l = 0; l < N_LIST; l++) {
            free(b->list_offsets[l].data);
            free(b->list_valid[l].data);
            free(b->list_values[l].data);
            dict_free(&b->list_dicts[l]);
        }
    }
    drop_tin_caches(c);
    free(c->buckets);
    refs_free(&c->refs);
    free(c->decoded.data);
    free(c->prices.data);
    free(c->providers.data);
    free(c->rates.data);
    free(c->elements.data);
    free(c->inline_rows.data);
    free(c->ref_ids.data);
    free(c->tin_ids.data);
    free(c->marks.data);
    free(c->list_ids.data);
    free(c);
}

/* The reference index (arrow_grain.ReferenceIndex), copied: sorted ids with (start, count)
 * into provider rows; npi_valid and the tin validity bytes mark nulls; tin text as Arrow
 * string arrays (int32 offsets into one byte buffer each). */
int mrf_set_refs(ctx *c, int64_t n_ids, const int64_t *ids, const int64_t *start, const int64_t *count,
                 int64_t n_rows, const int64_t *npi, const uint8_t *npi_valid, const int32_t *type_offsets,
                 const char *type_bytes, const uint8_t *type_valid, const int32_t *value_offsets,
                 const char *value_bytes, const uint8_t *value_valid) {
    refs_free(&c->refs);
    drop_tin_caches(c);
    refs *r = &c->refs;
    int64_t type_len = n_rows ? type_offsets[n_rows] - type_offsets[0] : 0;
    int64_t value_len = n_rows ? value_offsets[n_rows] - value_offsets[0] : 0;
    r->ids = malloc(sizeof(int64_t) * (size_t)(n_ids + 1));
    r->start = malloc(sizeof(int64_t) * (size_t)(n_ids + 1));
    r->count = malloc(sizeof(int64_t) * (size_t)(n_ids + 1));
    r->npi = malloc(sizeof(int64_t) * (size_t)(n_rows + 1));
    r->tin_type = malloc(sizeof(sref) * (size_t)(n_rows + 1));
    r->tin_value = malloc(sizeof(sref) * (size_t)(n_rows + 1));
    r->text = malloc((size_t)(type_len + value_len + 1));
    if (!r->ids || !r->start || !r->count || !r->npi || !r->tin_type || !r->tin_value || !r->text) {
        refs_free(r);
        return MRF_NOMEM;
    }
    r->n_ids = n_ids;
    r->n_rows = n_rows;
    memcpy(r->ids, ids, sizeof(int64_t) * (size_t)n_ids);
    memcpy(r->start, start, sizeof(int64_t) * (size_t)n_ids);
    memcpy(r->count, count, sizeof(int64_t) * (size_t)n_ids);
    if (n_rows) {
        memcpy(r->text, type_bytes + type_offsets[0], (size_t)type_len);
        memcpy(r->text + type_len, value_bytes + value_offsets[0], (size_t)value_len);
    }
    for (int64_t i = 0; i < n_rows; i++) {
        r->npi[i] = npi_valid[i] ? npi[i] : NULL_INT;
        r->tin_type[i].p = type_valid[i] ? r->text + (type_offsets[i] - type_offsets[0]) : NULL;
        r->tin_type[i].n = type_offsets[i + 1] - type_offsets[i];
        r->tin_value[i].p = value_valid[i] ? r->text + type_len + (value_offsets[i] - value_offsets[0]) : NULL;
        r->tin_value[i].n = value_offsets[i + 1] - value_offsets[i];
    }
    return MRF_OK;
}

/* the lengths of a bucket's row columns, to undo a call that fails half-way */
#define N_MARK (1 + N_TEXT + 3 + 3 * N_LIST)

static vec *mark_vec(bucket *b, int i) {
    if (i < N_TEXT) return &b->text[i];
    i -= N_TEXT;
    if (i == 0) return &b->group_id;
    if (i == 1) return &b->npi;
    if (i == 2) return &b->rate;
    i -= 3;
    if (i < N_LIST) return &b->list_offsets[i];
    i -= N_LIST;
    if (i < N_LIST) return &b->list_valid[i];
    return &b->list_values[i - N_LIST];
}

static void mark(ctx *c, int64_t *marks) {
    for (int b = 0; b < c->nbuckets; b++) {
        int64_t *m = marks + (int64_t)b * N_MARK;
        m[0] = c->buckets[b].rows;
        for (int i = 1; i < N_MARK; i++) m[i] = mark_vec(&c->buckets[b], i - 1)->len;
    }
}

/* back to the marks: rows added since are dropped (values they added to the dictionaries
 * stay, unused, which changes nothing in the rows) */
static void undo(ctx *c, const int64_t *marks) {
    for (int b = 0; b < c->nbuckets; b++) {
        const int64_t *m = marks + (int64_t)b * N_MARK;
        c->buckets[b].rows = m[0];
        for (int i = 1; i < N_MARK; i++) mark_vec(&c->buckets[b], i - 1)->len = m[i];
    }
}

/* Rows of `count` items, one per line of `data`, appended to their buckets (which keep
 * rows across calls until the caller takes them). On MRF_FALLBACK the buckets are as they
 * were before the call. */
int mrf_items(ctx *c, const char *data, int64_t len, int64_t count) {
    c->decoded.len = 0;
    c->marks.len = 0;
    if (!vec_reserve(&c->decoded, len + 1) || !vec_reserve(&c->marks, (int64_t)sizeof(int64_t) * N_MARK * c->nbuckets))
        return MRF_NOMEM;
    int64_t *marks = (int64_t *)c->marks.data;
    mark(c, marks);
    int64_t rows_before = 0;
    for (int b = 0; b < c->nbuckets; b++) rows_before += c->buckets[b].rows;
    c->unresolved = 0;
    c->rows_added = 0;
    cur k = {data, data + len, c, 1};
    c->nomem = 0;
    for (int64_t i = 0; i < count; i++) {
        if (!parse_item(&k)) {
            c->err_item = i;
            undo(c, marks);
            return c->nomem ? MRF_NOMEM : MRF_FALLBACK;
        }
        ws(&k);
    }
    if (k.p != k.end) { /* more items than counted */
        c->err_item = count;
        undo(c, marks);
        return MRF_FALLBACK;
    }
    for (int b = 0; b < c->nbuckets; b++) c->rows_added += c->buckets[b].rows;
    c->rows_added -= rows_before;
    return MRF_OK;
}

int64_t mrf_rows_added(const ctx *c) { return c->rows_added; }
int64_t mrf_unresolved(const ctx *c) { return c->unresolved; }
int64_t mrf_err_item(const ctx *c) { return c->err_item; }

/* sizes of a bucket's output: rows, then per text column its dictionary's value count and
 * byte length, then per list column its element count, dictionary count and byte length */
void mrf_bucket_sizes(const ctx *c, int b, int64_t *out) {
    const bucket *bk = &c->buckets[b];
    int j = 0;
    out[j++] = bk->rows;
    for (int i = 0; i < N_TEXT; i++) {
        out[j++] = bk->dicts[i].count;
        out[j++] = bk->dicts[i].bytes.len;
    }
    for (int l = 0; l < N_LIST; l++) {
        out[j++] = COUNT(bk->list_values[l], int32_t);
        out[j++] = bk->list_dicts[l].count;
        out[j++] = bk->list_dicts[l].bytes.len;
    }
}

/* null counts of a bucket's columns: the text columns, group id, NPI, then the lists; the
 * caller builds a validity bitmap only where one is needed */
void mrf_bucket_nulls(const ctx *c, int b, int64_t *out) {
    const bucket *bk = &c->buckets[b];
    int j = 0;
    for (int i = 0; i < N_TEXT; i++) {
        const int32_t *v = (const int32_t *)bk->text[i].data;
        int64_t n = 0;
        for (int64_t r = 0; r < bk->rows; r++) n += v[r] < 0;
        out[j++] = n;
    }
    const vec *ints[2] = {&bk->group_id, &bk->npi};
    for (int i = 0; i < 2; i++) {
        const int64_t *v = (const int64_t *)ints[i]->data;
        int64_t n = 0;
        for (int64_t r = 0; r < bk->rows; r++) n += v[r] == NULL_INT;
        out[j++] = n;
    }
    for (int l = 0; l < N_LIST; l++) {
        const uint8_t *v = (const uint8_t *)bk->list_valid[l].data;
        int64_t n = 0;
        for (int64_t r = 0; r < bk->rows; r++) n += !v[r];
        out[j++] = n;
    }
}

static void copy_dict(const dict *d, int32_t *offsets, char *bytes) {
    if (d->count) {
        memcpy(offsets, d->offsets.data, sizeof(int32_t) * (size_t)(d->count + 1));
        memcpy(bytes, d->bytes.data, (size_t)d->bytes.len);
    } else {
        offsets[0] = 0;
    }
}

/* Copy a bucket's output into caller-allocated arrays (sized by mrf_bucket_sizes) and
 * empty the bucket. `text_idx[i]` receives int32 per row (-1: null), `text_offsets[i]` /
 * `text_bytes[i]` the dictionary; the list columns likewise, with per-row offsets and a
 * validity byte per row. */
void mrf_take_bucket(ctx *c, int b, int32_t **text_idx, int32_t **text_offsets, char **text_bytes, int64_t *group_id,
                     int64_t *npi, double *rate, int32_t **list_offsets, uint8_t **list_valid, int32_t **list_values,
                     int32_t **list_dict_offsets, char **list_dict_bytes) {
    bucket *bk = &c->buckets[b];
    for (int i = 0; i < N_TEXT; i++) {
        memcpy(text_idx[i], bk->text[i].data, (size_t)bk->text[i].len);
        copy_dict(&bk->dicts[i], text_offsets[i], text_bytes[i]);
    }
    memcpy(group_id, bk->group_id.data, (size_t)bk->group_id.len);
    memcpy(npi, bk->npi.data, (size_t)bk->npi.len);
    memcpy(rate, bk->rate.data, (size_t)bk->rate.len);
    for (int l = 0; l < N_LIST; l++) {
        memcpy(list_offsets[l], bk->list_offsets[l].data, (size_t)bk->list_offsets[l].len);
        memcpy(list_valid[l], bk->list_valid[l].data, (size_t)bk->list_valid[l].len);
        memcpy(list_values[l], bk->list_values[l].data, (size_t)bk->list_values[l].len);
        copy_dict(&bk->list_dicts[l], list_dict_offsets[l], list_dict_bytes[l]);
    }
    bucket_reset(bk);
}

/* -- the splitter's scan ------------------------------------------------------------------- */

static const unsigned char structural[256] = {
    ['"'] = 1, ['{'] = 1, ['}'] = 1, ['['] = 1, [']'] = 1, [','] = 1, [':'] = 1,
};

int64_t mrf_scan_depth(const ctx *c) { return c->depth; }
int mrf_scan_in_string(const ctx *c) { return c->in_string; }

/* Structural characters of `block` outside strings that the splitter acts on (see the top
 * of this file): their positions, characters and the depth before each. Returns the count
 * (at most `cap`; the caller gives cap = len + 1), or -1 when the depth goes negative, with
 * out_pos[0] the position of the offending character. */
int64_t mrf_scan(ctx *c, const unsigned char *block, int64_t len, int64_t *out_pos, unsigned char *out_char,
                 int64_t *out_before, int64_t cap) {
    int64_t n = 0, depth = c->depth;
    int in_string = c->in_string, escape = c->escape_next;
    int64_t i = 0;
    while (i < len) {
        if (in_string) {
            if (escape) {
                escape = 0;
                i++;
                continue;
            }
            /* jump to the next quote, or a backslash before it */
            const unsigned char *q = memchr(block + i, '"', (size_t)(len - i));
            const unsigned char *e = memchr(block + i, '\\', (size_t)((q ? q - block : len) - i));
            if (e) {
                i = e - block + 1;
                escape = 1;
                continue;
            }
            if (!q) {
                i = len;
                break;
            }
            i = q - block + 1;
            in_string = 0;
            continue;
        }
        while (i < len && !structural[block[i]]) i++; /* digits, letters, blanks */
        if (i >= len) break;
        unsigned char ch = block[i];
        switch (ch) {
        case '"': in_string = 1; break;
        case '{':
        case '[':
            if (depth <= 1 && n < cap) {
                out_pos[n] = i;
                out_char[n] = ch;
                out_before[n++] = depth;
            }
            depth++;
            break;
        case '}':
        case ']':
            if (depth == 0) {
                out_pos[0] = i;
                c->depth = depth;
                return -1;
            }
            if ((depth <= 1 || (depth == 2 && ch == ']')) && n < cap) {
                out_pos[n] = i;
                out_char[n] = ch;
                out_before[n++] = depth;
            }
            depth--;
            break;
        case ',':
        case ':':
            if ((depth <= 1 || (depth == 2 && ch == ',')) && n < cap) {
                out_pos[n] = i;
                out_char[n] = ch;
                out_before[n++] = depth;
            }
            break;
        default: break;
        }
        i++;
    }
    c->depth = depth;
    c->in_string = in_string;
    c->escape_next = escape;
    return n;
}
