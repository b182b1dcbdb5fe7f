/* tokenizer.c - byte-level BPE for srlm: pre-split, train, encode, decode,
 * and the tokenizer file.
 *
 * Sections:
 *   1. special tokens and small helpers
 *   2. the pre-split rule (where merges may not cross)
 *   3. tables derived from the merges: each id's bytes, pair -> rank
 *   4. training: deduplicated chunks, incremental pair counts, lazy heap
 *   5. encoding: per chunk, lowest-rank merge first, with a heap
 *   6. decoding
 *   7. the file format
 *
 * Everything here is integer code: the same corpus and settings give the
 * same merges, ids and file bytes on every compiler and machine.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tensor.h"
#include "tokenizer.h"

/* ==========================================================================
 * 1. Special tokens and small helpers
 * ========================================================================== */

static const char *const special_names[TOK_N_SPECIAL] = {
    "<|bos|>", "<|eos|>", "<|user|>", "<|assistant|>", "<|eot|>",
    "<|reserved_261|>", "<|reserved_262|>", "<|reserved_263|>"
};

const char *tok_special_name(int id) {
    return id >= TOK_N_BYTES && id < TOK_FIRST_MERGE ? special_names[id - TOK_N_BYTES] : NULL;
}

/* The tokenizer has no error channel for running out of memory (encode
 * cannot fail), so like the rest of srlm it stops the program. */
static void *tok_alloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) { fprintf(stderr, "srlm: tokenizer: out of memory (%lu bytes)\n", (unsigned long)n); exit(1); }
    return p;
}

/* Array p of *cap elements of size elem, grown (doubling) to hold need. */
static void *tok_grow(void *p, size_t *cap, size_t need, size_t elem) {
    size_t c = *cap ? *cap : 16;
    if (need <= *cap) return p;
    while (c < need) c *= 2;
    p = realloc(p, c * elem);
    if (!p) { fprintf(stderr, "srlm: tokenizer: out of memory (%lu bytes)\n", (unsigned long)(c * elem)); exit(1); }
    *cap = c;
    return p;
}

/* A pair of ids as one 64-bit key; ids are < 2^18, so ~0 is never a key. */
#define PAIR_EMPTY UINT64_MAX
static uint64_t pair_key(int left, int right) { return (uint64_t)(uint32_t)left << 32 | (uint32_t)right; }
static size_t hash_u64(uint64_t k) {
    k *= 0x9E3779B97F4A7C15ull;
    return (size_t)(k ^ (k >> 29));
}

int tok_vocab_size(const Tokenizer *t) { return TOK_FIRST_MERGE + t->n_merges; }

void tok_free(Tokenizer *t) {
    free(t->merges);
    free(t->tok_off);
    free(t->tok_len);
    free(t->tok_bytes);
    free(t->rank_key);
    free(t->rank_val);
    memset(t, 0, sizeof *t);
}

/* ==========================================================================
 * 2. The pre-split rule
 *
 * With presplit on, text is cut into chunks and merges never cross a chunk
 * boundary. The rule is a standard one, so that exports can state it:
 * every digit is a chunk of its own, and each maximal run of non-digits (a
 * segment) is cut by GPT-2's regex, applied within the segment alone:
 *     's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 * (the lookahead (?!\S) sees the end of the segment, not the digit after it).
 * This is llama.cpp's pre-tokenizer "refact" (regexes \p{N}, then GPT-2's)
 * and Hugging Face's Sequence[Digits(individual_digits=true),
 * ByteLevel(use_regex=true)]. srlm applies it to bytes, in four classes:
 * letter [A-Za-z] and every byte 0x80-0xFF (any UTF-8 lead or continuation
 * byte, valid or not), digit [0-9], space (\t \n \v \f \r and ' '), and
 * other (ASCII punctuation, NUL and the other control bytes, DEL). Within a
 * segment the chunk at each position is the first of:
 *   (0) a digit alone (it ends the segment: digits never merge);
 *   (a) a contraction: 's 't 're 've 'm 'll 'd (lower case only);
 *   (b) an optional ' ' and then a maximal run of letters or of other bytes
 *       (the word keeps its leading space: " the", " (");
 *   (c) a maximal run of spaces, less its last byte when the run is at least
 *       2 long and followed by a letter or other byte (that byte begins the
 *       next chunk: ' ' then joins the word after it as in (b), '\n' stays
 *       alone); before a digit (the segment's end) or at the end of the text
 *       the run is whole.
 * Limitation: on valid UTF-8 the Unicode-aware pre-tokenizers put non-ASCII
 * digits (\p{N}: U+00B2, U+0661, ...), punctuation (U+2014, U+00AB, ...) and
 * spaces (U+00A0, U+2028, ...) in those classes, where srlm takes all their
 * bytes as letters, so on such text an export can cut, and then encode,
 * differently from srlm. Non-ASCII letters agree; the shipped data is ASCII.
 * A chunk longer than TOK_MAX_CHUNK bytes is cut there (with presplit off too,
 * where the whole text is otherwise one chunk).
 * ========================================================================== */

enum { CL_LETTER, CL_DIGIT, CL_SPACE, CL_OTHER };

static int byte_class(uint8_t c) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c >= 0x80) return CL_LETTER;
    if (c >= '0' && c <= '9') return CL_DIGIT;
    if (c == ' ' || (c >= '\t' && c <= '\r')) return CL_SPACE;
    return CL_OTHER;
}

/* Length of the contraction at s (rule (a)), or 0. */
static size_t contraction_len(const uint8_t *s, size_t n) {
    if (n < 2 || s[0] != '\'') return 0;
    if (s[1] == 's' || s[1] == 't' || s[1] == 'm' || s[1] == 'd') return 2;
    if (n >= 3 && ((s[1] == 'r' && s[2] == 'e') || (s[1] == 'v' && s[2] == 'e') || (s[1] == 'l' && s[2] == 'l'))) return 3;
    return 0;
}

size_t tok_chunk_len(const uint8_t *s, size_t n) {
    size_t j, start;
    int cl;
    if (n > TOK_MAX_CHUNK) n = TOK_MAX_CHUNK;
    if (byte_class(s[0]) == CL_DIGIT) return 1;                                     /* (0) */
    if ((j = contraction_len(s, n)) > 0) return j;                                  /* (a) */
    /* (b): a space leads the run when a letter or other byte follows it */
    start = s[0] == ' ' && n > 1 && (byte_class(s[1]) == CL_LETTER || byte_class(s[1]) == CL_OTHER) ? 1 : 0;
    cl = byte_class(s[start]);
    if (cl != CL_SPACE) {
        for (j = start + 1; j < n && byte_class(s[j]) == cl; j++) {}
        return j;
    }
    for (j = 1; j < n && byte_class(s[j]) == CL_SPACE; j++) {}                      /* (c) */
    return j >= 2 && j < n && byte_class(s[j]) != CL_DIGIT ? j - 1 : j;
}

/* Length of the next chunk under either setting. */
static size_t next_chunk(const uint8_t *s, size_t n, int presplit) {
    if (presplit) return tok_chunk_len(s, n);
    return n < TOK_MAX_CHUNK ? n : TOK_MAX_CHUNK;
}

/* ==========================================================================
 * 3. Tables derived from the merges
 * ========================================================================== */

/* Fill tok_off/tok_len/tok_bytes and the pair -> rank table from t->merges,
 * whose ids the caller has checked (each < its own id, no specials).
 * Returns 0, or -1 with err set if a token would exceed TOK_MAX_TOKEN_LEN
 * bytes or a pair is merged twice. */
static int tok_build(Tokenizer *t, char *err, size_t errlen) {
    int V = tok_vocab_size(t), i;
    size_t total = 0, cap;
    t->tok_off = tok_alloc((size_t)V * sizeof *t->tok_off);
    t->tok_len = tok_alloc((size_t)V * sizeof *t->tok_len);
    for (i = 0; i < V; i++) {
        if (i < TOK_N_BYTES) t->tok_len[i] = 1;
        else if (i < TOK_FIRST_MERGE) t->tok_len[i] = (uint32_t)strlen(special_names[i - TOK_N_BYTES]);
        else {
            int m = i - TOK_FIRST_MERGE;
            t->tok_len[i] = t->tok_len[t->merges[2 * m]] + t->tok_len[t->merges[2 * m + 1]];
            if (t->tok_len[i] > TOK_MAX_TOKEN_LEN) {
                snprintf(err, errlen, "merge %d (id %d) makes a token of %u bytes (limit %d)",
                         m, i, (unsigned)t->tok_len[i], TOK_MAX_TOKEN_LEN);
                return -1;
            }
        }
        t->tok_off[i] = (uint32_t)total;
        total += t->tok_len[i];
    }
    /* at most 2^18 ids of at most 256 bytes: total < 2^26 fits the u32 offsets */
    t->tok_bytes = tok_alloc(total);
    for (i = 0; i < V; i++) {
        uint8_t *dst = t->tok_bytes + t->tok_off[i];
        if (i < TOK_N_BYTES) dst[0] = (uint8_t)i;
        else if (i < TOK_FIRST_MERGE) memcpy(dst, special_names[i - TOK_N_BYTES], t->tok_len[i]);
        else {
            int l = t->merges[2 * (i - TOK_FIRST_MERGE)], r = t->merges[2 * (i - TOK_FIRST_MERGE) + 1];
            memcpy(dst, t->tok_bytes + t->tok_off[l], t->tok_len[l]);
            memcpy(dst + t->tok_len[l], t->tok_bytes + t->tok_off[r], t->tok_len[r]);
        }
    }
    /* open addressing, linear probing, load <= 1/4 (most lookups in encode miss) */
    for (cap = 16; cap < 4 * (size_t)t->n_merges; cap *= 2) {}
    t->rank_key = tok_alloc(cap * sizeof *t->rank_key);
    t->rank_val = tok_alloc(cap * sizeof *t->rank_val);
    t->rank_mask = cap - 1;
    for (i = 0; i < (int)cap; i++) t->rank_key[i] = PAIR_EMPTY;
    for (i = 0; i < t->n_merges; i++) {
        uint64_t key = pair_key(t->merges[2 * i], t->merges[2 * i + 1]);
        size_t h = hash_u64(key) & t->rank_mask;
        while (t->rank_key[h] != PAIR_EMPTY && t->rank_key[h] != key) h = (h + 1) & t->rank_mask;
        if (t->rank_key[h] == key) {
            snprintf(err, errlen, "merge %d (id %d) repeats merge %d (pair %d %d)", i, TOK_FIRST_MERGE + i,
                     t->rank_val[h], t->merges[2 * i], t->merges[2 * i + 1]);
            return -1;
        }
        t->rank_key[h] = key;
        t->rank_val[h] = i;
    }
    return 0;
}

/* The rank (merge index) of the pair left,right, or -1 if it is no merge. */
static int rank_of(const Tokenizer *t, int left, int right) {
    uint64_t key = pair_key(left, right);
    size_t h = hash_u64(key) & t->rank_mask;
    for (;;) {
        uint64_t k = t->rank_key[h];
        if (k == key) return t->rank_val[h];
        if (k == PAIR_EMPTY) return -1;
        h = (h + 1) & t->rank_mask;
    }
}

/* ==========================================================================
 * 4. Training
 *
 * The rule: start from the 256 bytes. Each step takes, over all adjacent
 * pairs inside chunks, weighted by how often each chunk occurs, the pair
 * with the highest count; ties go to the smaller left id, then the smaller
 * right id. Pairs whose joined token would exceed TOK_MAX_TOKEN_LEN bytes
 * are never taken. The pair's occurrences are replaced left to right
 * within each chunk (in "a a a" the first two join). Training stops after
 * n_merges steps or when no pair is left.
 *
 * How it is fast: equal chunks are stored once with a count; the corpus
 * is then a set of linked symbol lists. Each pair keeps its count and the
 * positions where it was seen. A merge visits only its own positions and
 * adjusts the counts of the neighbouring pairs. A max-heap orders pairs by
 * (count desc, left asc, right asc) with lazy invalidation: a popped entry
 * whose count is stale is pushed again with the current count. That is
 * exact because a pair's count only grows in the step that creates it
 * (every new pair contains the new id), after which the pair is pushed.
 * ========================================================================== */

typedef struct {
    int left, right;
    int64_t count;       /* occurrences in the corpus now, weighted by chunk count */
    uint32_t *pos;       /* slots where the pair was seen (stale ones are skipped) */
    size_t npos, cap;
    int stamp;           /* last step that queued this pair for the heap */
} TrainPair;

typedef struct { int64_t count; int pair; } HeapItem;

typedef struct {
    /* the corpus: unique chunks end to end, one slot per byte */
    int *sym;            /* id at each slot; -1 once absorbed into its left neighbour */
    int *prev, *next;    /* live neighbour slots inside the chunk, -1 at its ends */
    uint32_t *chunk_of;  /* slot -> unique chunk */
    int64_t *chunk_count;
    /* pairs, found by (left,right) through an open-addressing map */
    TrainPair *pairs;
    size_t npairs, pairs_cap;
    uint64_t *map_key;
    int *map_val;
    size_t map_mask;
    HeapItem *heap;
    size_t nheap, heap_cap;
    int *touched;        /* pairs that gained count in this step */
    size_t ntouched, touched_cap;
    uint32_t *tok_len;   /* bytes per id so far */
} Trainer;

/* --- the pair map --- */

static void map_insert(Trainer *T, uint64_t key, int val) {
    size_t h = hash_u64(key) & T->map_mask;
    while (T->map_key[h] != PAIR_EMPTY) h = (h + 1) & T->map_mask;
    T->map_key[h] = key;
    T->map_val[h] = val;
}

static void map_resize(Trainer *T, size_t cap) {
    size_t i;
    free(T->map_key);
    free(T->map_val);
    T->map_key = tok_alloc(cap * sizeof *T->map_key);
    T->map_val = tok_alloc(cap * sizeof *T->map_val);
    T->map_mask = cap - 1;
    for (i = 0; i < cap; i++) T->map_key[i] = PAIR_EMPTY;
    for (i = 0; i < T->npairs; i++) map_insert(T, pair_key(T->pairs[i].left, T->pairs[i].right), (int)i);
}

static int pair_find_or_add(Trainer *T, int left, int right) {
    uint64_t key = pair_key(left, right);
    size_t h = hash_u64(key) & T->map_mask;
    TrainPair *p;
    while (T->map_key[h] != PAIR_EMPTY) {
        if (T->map_key[h] == key) return T->map_val[h];
        h = (h + 1) & T->map_mask;
    }
    T->pairs = tok_grow(T->pairs, &T->pairs_cap, T->npairs + 1, sizeof *T->pairs);
    p = &T->pairs[T->npairs];
    memset(p, 0, sizeof *p);
    p->left = left;
    p->right = right;
    p->stamp = -1;
    T->map_key[h] = key;
    T->map_val[h] = (int)T->npairs;
    T->npairs++;
    if (2 * T->npairs > T->map_mask) map_resize(T, 2 * (T->map_mask + 1));
    return (int)T->npairs - 1;
}

/* Add delta to the count of (left,right); a gain also records the slot and
 * queues the pair to be pushed at the end of the step. */
static void pair_change(Trainer *T, int left, int right, int64_t delta, int slot, int step) {
    int i = pair_find_or_add(T, left, right);
    TrainPair *p = &T->pairs[i];
    p->count += delta;
    if (delta <= 0) return;
    p->pos = tok_grow(p->pos, &p->cap, p->npos + 1, sizeof *p->pos);
    p->pos[p->npos++] = (uint32_t)slot;
    if (p->stamp != step) {
        p->stamp = step;
        T->touched = tok_grow(T->touched, &T->touched_cap, T->ntouched + 1, sizeof *T->touched);
        T->touched[T->ntouched++] = i;
    }
}

/* --- the max-heap over (count desc, left asc, right asc) --- */

static int heap_above(const Trainer *T, HeapItem a, HeapItem b) {
    const TrainPair *pa = &T->pairs[a.pair], *pb = &T->pairs[b.pair];
    if (a.count != b.count) return a.count > b.count;
    if (pa->left != pb->left) return pa->left < pb->left;
    return pa->right < pb->right;
}

static void heap_push(Trainer *T, int64_t count, int pair) {
    size_t i;
    HeapItem it;
    it.count = count;
    it.pair = pair;
    T->heap = tok_grow(T->heap, &T->heap_cap, T->nheap + 1, sizeof *T->heap);
    for (i = T->nheap++; i > 0 && heap_above(T, it, T->heap[(i - 1) / 2]); i = (i - 1) / 2)
        T->heap[i] = T->heap[(i - 1) / 2];
    T->heap[i] = it;
}

static HeapItem heap_pop(Trainer *T) {
    HeapItem top = T->heap[0], last = T->heap[--T->nheap];
    size_t i = 0, n = T->nheap;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && heap_above(T, T->heap[c + 1], T->heap[c])) c++;
        if (!heap_above(T, T->heap[c], last)) break;
        T->heap[i] = T->heap[c];
        i = c;
    }
    if (n) T->heap[i] = last;
    return top;
}

/* The best pair still in the corpus, or -1 when none is left. */
static int pop_best(Trainer *T) {
    while (T->nheap) {
        HeapItem it = heap_pop(T);
        TrainPair *p = &T->pairs[it.pair];
        if (p->count <= 0) continue;
        if (T->tok_len[p->left] + T->tok_len[p->right] > TOK_MAX_TOKEN_LEN) continue; /* never mergeable */
        if (it.count != p->count) { heap_push(T, p->count, it.pair); continue; }
        return it.pair;
    }
    return -1;
}

/* --- the corpus: unique chunks with counts --- */

static uint64_t hash_bytes(const uint8_t *s, size_t n) {
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */
    size_t i;
    for (i = 0; i < n; i++) h = (h ^ s[i]) * 0x100000001b3ull;
    return h;
}

/* Distinct chunks: an open-addressing table of (index + 1, 0 = empty) with
 * each entry's hash beside it, so growing needs no rehashing of bytes. */
typedef struct { uint32_t *slot; uint64_t *hash; size_t cap; } ChunkTable;

static void chunk_table_init(ChunkTable *ct, size_t cap) {
    ct->cap = cap;
    ct->slot = tok_alloc(cap * sizeof *ct->slot);
    ct->hash = tok_alloc(cap * sizeof *ct->hash);
    memset(ct->slot, 0, cap * sizeof *ct->slot);
}

static void chunk_table_grow(ChunkTable *ct) {
    ChunkTable big;
    size_t k, g;
    chunk_table_init(&big, 2 * ct->cap);
    for (k = 0; k < ct->cap; k++) {
        if (!ct->slot[k]) continue;
        for (g = (size_t)ct->hash[k] & (big.cap - 1); big.slot[g]; g = (g + 1) & (big.cap - 1)) {}
        big.slot[g] = ct->slot[k];
        big.hash[g] = ct->hash[k];
    }
    free(ct->slot);
    free(ct->hash);
    *ct = big;
}

/* Cut text into chunks, keep each distinct chunk once (in order of first
 * appearance) with its count, and lay them out as slots. Returns -1 if the
 * distinct chunks hold 2^31 bytes or more. */
static int load_corpus(Trainer *T, const uint8_t *text, size_t n, int presplit) {
    size_t *off = NULL, *len = NULL, nuniq = 0, ucap = 0, lcap = 0, ccap = 0, i, at, L, slots = 0, s;
    int64_t *count = NULL;
    ChunkTable table;
    chunk_table_init(&table, 1024);
    for (at = 0; at < n; at += L) {
        size_t h;
        uint64_t hv;
        L = next_chunk(text + at, n - at, presplit);
        hv = hash_bytes(text + at, L);
        for (h = (size_t)hv & (table.cap - 1); table.slot[h]; h = (h + 1) & (table.cap - 1)) {
            i = table.slot[h] - 1;
            if (table.hash[h] == hv && len[i] == L && memcmp(text + off[i], text + at, L) == 0) break;
        }
        if (table.slot[h]) { count[table.slot[h] - 1]++; continue; } /* seen before */
        if (slots + L >= (size_t)1 << 31) {
            free(off); free(len); free(count); free(table.slot); free(table.hash);
            return -1;
        }
        i = nuniq++;
        off = tok_grow(off, &ucap, nuniq, sizeof *off);
        len = tok_grow(len, &lcap, nuniq, sizeof *len);
        count = tok_grow(count, &ccap, nuniq, sizeof *count);
        off[i] = at; len[i] = L; count[i] = 1;
        table.slot[h] = (uint32_t)nuniq;
        table.hash[h] = hv;
        slots += L;
        if (2 * nuniq > table.cap) chunk_table_grow(&table);
    }
    free(table.slot);
    free(table.hash);
    T->sym = tok_alloc(slots * sizeof *T->sym);
    T->prev = tok_alloc(slots * sizeof *T->prev);
    T->next = tok_alloc(slots * sizeof *T->next);
    T->chunk_of = tok_alloc(slots * sizeof *T->chunk_of);
    T->chunk_count = count ? count : tok_alloc(sizeof *count);
    for (i = 0, s = 0; i < nuniq; i++) {
        size_t k;
        for (k = 0; k < len[i]; k++, s++) {
            T->sym[s] = text[off[i] + k];
            T->prev[s] = k > 0 ? (int)s - 1 : -1;
            T->next[s] = k + 1 < len[i] ? (int)s + 1 : -1;
            T->chunk_of[s] = (uint32_t)i;
        }
    }
    /* count the initial byte pairs; their slots are recorded in increasing order */
    for (s = 0; s < slots; s++)
        if (T->next[s] >= 0) pair_change(T, T->sym[s], T->sym[s + 1], T->chunk_count[T->chunk_of[s]], (int)s, -1);
    free(off);
    free(len);
    return 0;
}

/* Replace every occurrence of pair pi by new_id, left to right, and update
 * the counts of the pairs around each occurrence. */
static void apply_merge(Trainer *T, int pi, int new_id, int step) {
    int a = T->pairs[pi].left, b = T->pairs[pi].right;
    uint32_t *pos = T->pairs[pi].pos;
    size_t npos = T->pairs[pi].npos, k;
    T->pairs[pi].pos = NULL;
    T->pairs[pi].npos = T->pairs[pi].cap = 0;
    /* pos is already in increasing slot order (= left to right in each
     * chunk, which decides overlaps like a,a,a): a pair's slots are all
     * recorded in one pass - the initial count, or the step that made its
     * newer id, which visits slots in increasing order and records either
     * the slot before each occurrence or the occurrence itself, never both. */
    T->ntouched = 0;
    for (k = 0; k < npos; k++) {
        int p = (int)pos[k], q, o, z;
        int64_t w;
        if (T->sym[p] != a) continue;                 /* absorbed or changed since recorded */
        q = T->next[p];
        if (q < 0 || T->sym[q] != b) continue;
        w = T->chunk_count[T->chunk_of[p]];
        o = T->prev[p];
        z = T->next[q];
        if (o >= 0) {
            pair_change(T, T->sym[o], a, -w, -1, step);
            pair_change(T, T->sym[o], new_id, w, o, step);
        }
        if (z >= 0) {
            pair_change(T, b, T->sym[z], -w, -1, step);
            pair_change(T, new_id, T->sym[z], w, p, step);
        }
        T->sym[p] = new_id;
        T->sym[q] = -1;
        T->next[p] = z;
        if (z >= 0) T->prev[z] = p;
    }
    T->pairs[pi].count = 0; /* every occurrence is gone (overlaps like a,a,a were counted down above) */
    free(pos);
    for (k = 0; k < T->ntouched; k++) {
        int i = T->touched[k];
        if (T->pairs[i].count > 0) heap_push(T, T->pairs[i].count, i);
    }
}

static void trainer_free(Trainer *T) {
    size_t i;
    free(T->sym); free(T->prev); free(T->next); free(T->chunk_of); free(T->chunk_count);
    for (i = 0; i < T->npairs; i++) free(T->pairs[i].pos);
    free(T->pairs); free(T->map_key); free(T->map_val); free(T->heap); free(T->touched); free(T->tok_len);
    free(T);
}

int tok_train(Tokenizer *t, const uint8_t *text, size_t n, int n_merges, int presplit) {
    Trainer *T;
    int m, i;
    char err[128];
    memset(t, 0, sizeof *t);
    if (n_merges < 0 || n_merges > TOK_MAX_MERGES) return -1;
    T = tok_alloc(sizeof *T);
    memset(T, 0, sizeof *T);
    map_resize(T, 1024);
    T->tok_len = tok_alloc((TOK_FIRST_MERGE + (size_t)n_merges) * sizeof *T->tok_len);
    for (i = 0; i < TOK_FIRST_MERGE; i++) T->tok_len[i] = 1; /* specials never occur in training */
    if (load_corpus(T, text, n, presplit) != 0) { trainer_free(T); return -1; }
    for (i = 0; i < (int)T->npairs; i++)
        if (T->pairs[i].count > 0) heap_push(T, T->pairs[i].count, i);
    t->presplit = presplit ? 1 : 0;
    t->merges = tok_alloc(2 * (size_t)n_merges * sizeof *t->merges);
    for (m = 0; m < n_merges; m++) {
        int best = pop_best(T), new_id = TOK_FIRST_MERGE + m;
        if (best < 0) break;
        t->merges[2 * m] = T->pairs[best].left;
        t->merges[2 * m + 1] = T->pairs[best].right;
        T->tok_len[new_id] = T->tok_len[T->pairs[best].left] + T->tok_len[T->pairs[best].right];
        apply_merge(T, best, new_id, m);
    }
    t->n_merges = m;
    trainer_free(T);
    if (tok_build(t, err, sizeof err) != 0) { /* cannot happen: training keeps the rules the loader checks */
        fprintf(stderr, "srlm: internal: trained tokenizer is invalid: %s\n", err);
        exit(1);
    }
    return m;
}

/* ==========================================================================
 * 5. Encoding
 *
 * Within each chunk (the same chunks as in training), repeatedly apply the
 * merge of lowest rank present among adjacent symbols, at its leftmost
 * occurrence. A min-heap holds (rank, slot) for candidate pairs; entries go
 * stale when a neighbour changes and are checked when popped. Since a merge
 * only creates ids of higher rank than itself, popping in (rank, slot)
 * order is exactly the rescan definition, in O(L log L) per chunk.
 * ========================================================================== */

typedef struct {
    int *id, *prev, *next;   /* symbols of the chunk as a linked list; id -1 = absorbed */
    size_t cap;
    uint64_t *heap;          /* rank << 32 | slot, smallest first */
    size_t nheap, heap_cap;
} EncodeScratch;

static void enc_push(EncodeScratch *w, uint64_t v) {
    size_t i;
    if (w->nheap == w->heap_cap) w->heap = tok_grow(w->heap, &w->heap_cap, w->nheap + 1, sizeof *w->heap);
    for (i = w->nheap++; i > 0 && v < w->heap[(i - 1) / 2]; i = (i - 1) / 2) w->heap[i] = w->heap[(i - 1) / 2];
    w->heap[i] = v;
}

static uint64_t enc_pop(EncodeScratch *w) {
    uint64_t top = w->heap[0], last = w->heap[--w->nheap];
    size_t i = 0, n = w->nheap;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && w->heap[c + 1] < w->heap[c]) c++;
        if (w->heap[c] >= last) break;
        w->heap[i] = w->heap[c];
        i = c;
    }
    if (n) w->heap[i] = last;
    return top;
}

/* Queue the pair starting at slot i (if it is a merge). */
static void enc_queue(const Tokenizer *t, EncodeScratch *w, int i) {
    int j = w->next[i], r;
    if (j < 0) return;
    r = rank_of(t, w->id[i], w->id[j]);
    if (r >= 0) enc_push(w, (uint64_t)r << 32 | (uint32_t)i);
}

static size_t encode_chunk(const Tokenizer *t, const uint8_t *s, size_t L, int *out, EncodeScratch *w) {
    size_t k, nout = 0;
    int i;
    if (L == 1) { out[0] = s[0]; return 1; }
    if (L > w->cap) {
        free(w->id); free(w->prev); free(w->next);
        w->cap = L;
        w->id = tok_alloc(L * sizeof *w->id);
        w->prev = tok_alloc(L * sizeof *w->prev);
        w->next = tok_alloc(L * sizeof *w->next);
    }
    for (k = 0; k < L; k++) {
        w->id[k] = s[k];
        w->prev[k] = (int)k - 1;
        w->next[k] = k + 1 < L ? (int)k + 1 : -1;
    }
    w->nheap = 0;
    for (k = 0; k + 1 < L; k++) enc_queue(t, w, (int)k);
    while (w->nheap) {
        uint64_t top = enc_pop(w);
        int r = (int)(top >> 32), j, z;
        i = (int)(uint32_t)top;
        j = w->next[i];
        /* stale unless the pair at i is still exactly merge r */
        if (w->id[i] != t->merges[2 * r] || j < 0 || w->id[j] != t->merges[2 * r + 1]) continue;
        z = w->next[j];
        w->id[i] = TOK_FIRST_MERGE + r;
        w->id[j] = -1;
        w->next[i] = z;
        if (z >= 0) w->prev[z] = i;
        if (w->prev[i] >= 0) enc_queue(t, w, w->prev[i]);
        enc_queue(t, w, i);
    }
    for (i = 0; i >= 0; i = w->next[i]) out[nout++] = w->id[i];
    return nout;
}

size_t tok_encode(const Tokenizer *t, const uint8_t *text, size_t n, int *out) {
    EncodeScratch w;
    size_t at = 0, nout = 0;
    memset(&w, 0, sizeof w);
    while (at < n) {
        size_t L = next_chunk(text + at, n - at, t->presplit);
        nout += encode_chunk(t, text + at, L, out + nout, &w);
        at += L;
    }
    free(w.id); free(w.prev); free(w.next); free(w.heap);
    return nout;
}

/* ==========================================================================
 * 6. Decoding
 * ========================================================================== */

const uint8_t *tok_token_bytes(const Tokenizer *t, int id, size_t *len) {
    if (id < 0 || id >= tok_vocab_size(t)) { *len = 0; return NULL; }
    *len = t->tok_len[id];
    return t->tok_bytes + t->tok_off[id];
}

size_t tok_decode(const Tokenizer *t, const int *ids, size_t n, uint8_t *out, size_t cap) {
    size_t i, need = 0;
    int V = tok_vocab_size(t);
    for (i = 0; i < n; i++) {
        size_t len;
        if (ids[i] < 0 || ids[i] >= V) continue; /* invalid ids decode to nothing */
        len = t->tok_len[ids[i]];
        if (need < cap) memcpy(out + need, t->tok_bytes + t->tok_off[ids[i]], len < cap - need ? len : cap - need);
        need += len;
    }
    return need;
}

size_t tok_count_invalid(const Tokenizer *t, const int *ids, size_t n) {
    size_t i, bad = 0;
    int V = tok_vocab_size(t);
    for (i = 0; i < n; i++) bad += ids[i] < 0 || ids[i] >= V;
    return bad;
}

/* ==========================================================================
 * 7. The file format (little-endian u32 throughout)
 *
 *   offset 0   magic "SRLMTOK\0" (8 bytes)
 *          8   version = 1
 *         12   flags: bit 0 = presplit; other bits must be 0
 *         16   n_special = 8
 *         20   n_merges
 *         24   8 special tokens, each: u32 length, then that many bytes
 *              (must equal the fixed spellings for ids 256..263)
 *          .   n_merges x (u32 left id, u32 right id); merge i is id 264+i
 *          .   SHA-256 of all bytes before it (32 bytes); nothing after
 * ========================================================================== */

static const uint8_t tok_magic[8] = { 'S', 'R', 'L', 'M', 'T', 'O', 'K', 0 };

int tok_serialize(const Tokenizer *t, uint8_t **buf, size_t *n) {
    size_t size = 24 + 32 + 8 * (size_t)t->n_merges, at;
    uint8_t *p;
    int i;
    for (i = 0; i < TOK_N_SPECIAL; i++) size += 4 + strlen(special_names[i]);
    p = tok_alloc(size);
    memcpy(p, tok_magic, 8);
    le_put_u32(p + 8, TOK_FILE_VERSION);
    le_put_u32(p + 12, t->presplit ? 1u : 0u);
    le_put_u32(p + 16, TOK_N_SPECIAL);
    le_put_u32(p + 20, (uint32_t)t->n_merges);
    at = 24;
    for (i = 0; i < TOK_N_SPECIAL; i++) {
        size_t len = strlen(special_names[i]);
        le_put_u32(p + at, (uint32_t)len);
        memcpy(p + at + 4, special_names[i], len);
        at += 4 + len;
    }
    for (i = 0; i < 2 * t->n_merges; i++, at += 4) le_put_u32(p + at, (uint32_t)t->merges[i]);
    sha256(p, at, p + at);
    *buf = p;
    *n = size;
    return 0;
}

#define LOAD_FAIL(...) do { snprintf(err, errlen, __VA_ARGS__); goto fail; } while (0)

int tok_deserialize(Tokenizer *t, const uint8_t *buf, size_t n, char *err, size_t errlen) {
    uint32_t version, flags, n_special, n_merges;
    size_t at = 24, need;
    uint8_t digest[32];
    int i;
    memset(t, 0, sizeof *t);
    if (n < 24) LOAD_FAIL("truncated: %lu bytes, the header alone needs 24", (unsigned long)n);
    if (memcmp(buf, tok_magic, 8) != 0) LOAD_FAIL("not a srlm tokenizer file (bad magic)");
    version = le_get_u32(buf + 8);
    flags = le_get_u32(buf + 12);
    n_special = le_get_u32(buf + 16);
    n_merges = le_get_u32(buf + 20);
    if (version != TOK_FILE_VERSION)
        LOAD_FAIL("unsupported version %lu (this build reads %d)", (unsigned long)version, TOK_FILE_VERSION);
    if (flags & ~1u) LOAD_FAIL("unknown flags 0x%lx (this build knows bit 0, presplit)", (unsigned long)flags);
    if (n_special != TOK_N_SPECIAL)
        LOAD_FAIL("n_special is %lu, expected %d", (unsigned long)n_special, TOK_N_SPECIAL);
    if (n_merges > TOK_MAX_MERGES)
        LOAD_FAIL("n_merges %lu exceeds the limit %d", (unsigned long)n_merges, TOK_MAX_MERGES);
    /* first only the sizes, to find the checksum; contents are checked after it */
    for (i = 0; i < TOK_N_SPECIAL; i++) {
        uint32_t len;
        if (n - at < 4) LOAD_FAIL("truncated in special token %d", TOK_N_BYTES + i);
        len = le_get_u32(buf + at);
        if (len > n - at - 4) LOAD_FAIL("truncated in special token %d", TOK_N_BYTES + i);
        at += 4 + (size_t)len;
    }
    need = 8 * (size_t)n_merges + 32;
    if (n - at < need)
        LOAD_FAIL("truncated: %lu bytes, %lu merges need %lu", (unsigned long)n, (unsigned long)n_merges,
                  (unsigned long)(at + need));
    if (n - at > need) LOAD_FAIL("%lu trailing bytes after the checksum", (unsigned long)(n - at - need));
    sha256(buf, n - 32, digest);
    if (memcmp(digest, buf + n - 32, 32) != 0) LOAD_FAIL("checksum mismatch (the file is corrupted)");
    for (i = 0, at = 24; i < TOK_N_SPECIAL; i++) {
        const char *name = special_names[i];
        uint32_t len = le_get_u32(buf + at);
        if (len != strlen(name) || memcmp(buf + at + 4, name, len) != 0)
            LOAD_FAIL("special token %d is not \"%s\"", TOK_N_BYTES + i, name);
        at += 4 + (size_t)len;
    }
    t->n_merges = (int)n_merges;
    t->presplit = (int)(flags & 1u);
    t->merges = tok_alloc(2 * (size_t)n_merges * sizeof *t->merges);
    for (i = 0; i < 2 * (int)n_merges; i++, at += 4) {
        uint32_t id = le_get_u32(buf + at);
        int m = i / 2, own = TOK_FIRST_MERGE + m, vocab = TOK_FIRST_MERGE + (int)n_merges;
        const char *side = i % 2 ? "right" : "left";
        if (id >= (uint32_t)vocab)
            LOAD_FAIL("merge %d (id %d): %s id %lu is out of range (vocab size %d)", m, own, side, (unsigned long)id, vocab);
        if (id >= (uint32_t)own)
            LOAD_FAIL("merge %d (id %d): %s id %lu is used before it is defined", m, own, side, (unsigned long)id);
        if (id >= TOK_N_BYTES && id < TOK_FIRST_MERGE)
            LOAD_FAIL("merge %d (id %d): %s id %lu is a special token", m, own, side, (unsigned long)id);
        t->merges[i] = (int)id;
    }
    if (tok_build(t, err, errlen) != 0) goto fail;
    return 0;
fail:
    tok_free(t);
    return -1;
}
