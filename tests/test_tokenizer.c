/* test_tokenizer.c - the BPE tokenizer against hand-worked examples and
 * against deliberately naive reference implementations of training and
 * encoding (written here, independent of tokenizer.c's data structures).
 *
 * cc -std=c99 -pedantic -Wall -Wextra -O2 -ffp-contract=off \
 *    tests/test_tokenizer.c tokenizer.c tensor.c -lm
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../tensor.h"
#include "../tokenizer.h"
#include "check.h"

/* ------------------------------------------------------------------------
 * Test-local random numbers (splitmix64), so inputs do not depend on
 * anything but this file.
 * ---------------------------------------------------------------------- */
static uint64_t rng_state = 0x5eed;
static uint64_t next_u64(void) {
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
static uint32_t below(uint32_t n) { return (uint32_t)(next_u64() % n); }

/* Random text of n bytes in one of several styles that stress different paths. */
static void random_text(uint8_t *s, size_t n, int style) {
    static const char *words[] = { "the", "a", "cat", "sat", "on", "mat", "then", "<|user|>", "aaa", "ab",
                                   "\xc3\xa9t\xc3\xa9", "\xff\xfe", "12", "..", "!" };
    static const char *seps[] = { " ", " ", " ", "  ", "\n", ", ", "\t", "\r\n", " 7 " };
    size_t i = 0, k;
    switch (style) {
    case 0: /* any byte */
        for (i = 0; i < n; i++) s[i] = (uint8_t)below(256);
        break;
    case 1: /* few symbols: many equal counts, long repeats, overlapping pairs */
        for (i = 0; i < n; i++) s[i] = (uint8_t)"ab a\n"[below(5)];
        break;
    case 2: /* words and separators */
        while (i < n) {
            const char *w = below(3) ? words[below(sizeof words / sizeof *words)] : seps[below(sizeof seps / sizeof *seps)];
            for (k = 0; w[k] && i < n; k++) s[i++] = (uint8_t)w[k];
        }
        break;
    default: /* runs of one byte with occasional others */
        while (i < n) {
            uint8_t c = (uint8_t)"aa \x00\x80z"[below(6)];
            size_t run = 1 + below(below(4) ? 8 : 700);
            for (k = 0; k < run && i < n; k++) s[i++] = c;
        }
        break;
    }
}

/* ------------------------------------------------------------------------
 * Reference trainer: every chunk occurrence kept separately, all pairs
 * recounted from scratch each step by sorting, best chosen by the stated
 * order, occurrences replaced by a left-to-right scan.
 * ---------------------------------------------------------------------- */
static int cmp_u64(const void *a, const void *b, void *ctx) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    (void)ctx;
    return (x > y) - (x < y);
}

static int ref_train(const uint8_t *text, size_t n, int n_merges, int presplit, int *merges) {
    int *seq = malloc((2 * n + 1) * sizeof *seq);  /* all chunks, -1 after each */
    size_t *len_of = calloc(TOK_FIRST_MERGE + (size_t)n_merges, sizeof *len_of);
    uint64_t *keys = malloc((n + 1) * sizeof *keys);
    size_t ns = 0, at = 0, i;
    int m, id;
    for (id = 0; id < TOK_FIRST_MERGE; id++) len_of[id] = 1;
    while (at < n) {
        size_t L = presplit ? tok_chunk_len(text + at, n - at) : n - at;
        for (i = 0; i < L; i++) seq[ns++] = text[at + i];
        seq[ns++] = -1;
        at += L;
    }
    for (m = 0; m < n_merges; m++) {
        size_t nk = 0, best_count = 0, run;
        uint64_t best = 0;
        int l, r, w;
        for (i = 0; i + 1 < ns; i++)
            if (seq[i] >= 0 && seq[i + 1] >= 0 && len_of[seq[i]] + len_of[seq[i + 1]] <= TOK_MAX_TOKEN_LEN)
                keys[nk++] = (uint64_t)seq[i] << 32 | (uint64_t)seq[i + 1];
        stable_sort(keys, nk, sizeof *keys, cmp_u64, NULL);
        for (i = 0; i < nk; i += run) {  /* ascending keys: the first of equal counts wins */
            for (run = 1; i + run < nk && keys[i + run] == keys[i]; run++) {}
            if (run > best_count) { best_count = run; best = keys[i]; }
        }
        if (best_count == 0) break;
        l = (int)(best >> 32); r = (int)(uint32_t)best;
        merges[2 * m] = l; merges[2 * m + 1] = r;
        len_of[TOK_FIRST_MERGE + m] = len_of[l] + len_of[r];
        for (i = 0, w = 0; i < ns; i++) {
            if (i + 1 < ns && seq[i] == l && seq[i + 1] == r) { seq[w++] = TOK_FIRST_MERGE + m; i++; }
            else seq[w++] = seq[i];
        }
        ns = (size_t)w;
    }
    free(seq); free(len_of); free(keys);
    return m;
}

/* ------------------------------------------------------------------------
 * Reference encoder: per chunk, rescan all adjacent pairs, merge the
 * lowest-rank one at its leftmost position, repeat. Ranks from a dense
 * table built straight from the merge list.
 * ---------------------------------------------------------------------- */
static size_t ref_encode(const Tokenizer *t, const uint8_t *text, size_t n, int *out) {
    int V = tok_vocab_size(t), m;
    int *rank = malloc((size_t)V * V * sizeof *rank);
    int *sym = malloc((n + 1) * sizeof *sym);
    size_t at = 0, nout = 0, i;
    for (i = 0; i < (size_t)V * V; i++) rank[i] = -1;
    for (m = t->n_merges - 1; m >= 0; m--) rank[(size_t)t->merges[2 * m] * V + t->merges[2 * m + 1]] = m;
    while (at < n) {
        size_t L = t->presplit ? tok_chunk_len(text + at, n - at) : n - at, ls = L;
        for (i = 0; i < L; i++) sym[i] = text[at + i];
        for (;;) {
            int best = -1;
            size_t where = 0;
            for (i = 0; i + 1 < ls; i++) {
                int r = rank[(size_t)sym[i] * V + sym[i + 1]];
                if (r >= 0 && (best < 0 || r < best)) { best = r; where = i; }
            }
            if (best < 0) break;
            sym[where] = TOK_FIRST_MERGE + best;
            memmove(sym + where + 1, sym + where + 2, (ls - where - 2) * sizeof *sym);
            ls--;
        }
        for (i = 0; i < ls; i++) out[nout++] = sym[i];
        at += L;
    }
    free(rank); free(sym);
    return nout;
}

/* ------------------------------------------------------------------------
 * Helpers
 * ---------------------------------------------------------------------- */
static Tokenizer train_str(const char *s, int n_merges, int presplit) {
    Tokenizer t;
    tok_train(&t, (const uint8_t *)s, strlen(s), n_merges, presplit);
    return t;
}

static int round_trips(const Tokenizer *t, const uint8_t *x, size_t n) {
    int *ids = malloc((n + 1) * sizeof *ids);
    uint8_t *back = malloc(n + 1);
    size_t nids = tok_encode(t, x, n, ids), i, need;
    int ok = nids <= n;
    for (i = 0; i < nids && ok; i++) ok = ids[i] >= 0 && ids[i] < tok_vocab_size(t) && (ids[i] < TOK_N_BYTES || ids[i] >= TOK_FIRST_MERGE);
    need = ok ? tok_decode(t, ids, nids, back, n) : 0;
    ok = ok && need == n && memcmp(back, x, n) == 0;
    free(ids); free(back);
    return ok;
}

/* Load must fail and the reason must contain want. */
static void expect_refused(const uint8_t *buf, size_t n, const char *want, const char *what) {
    Tokenizer t;
    char err[256] = "";
    int rc = tok_deserialize(&t, buf, n, err, sizeof err);
    CHECK(rc == -1, "%s: was accepted", what);
    CHECK(strstr(err, want) != NULL, "%s: error '%s' does not mention '%s'", what, err, want);
    CHECK(t.merges == NULL && t.n_merges == 0, "%s: tokenizer not left empty", what);
}

/* Offset of merge m's left id in a serialized file, and a re-hash after patching. */
static size_t merge_offset(int m) {
    size_t at = 24;
    int i;
    for (i = 0; i < TOK_N_SPECIAL; i++) at += 4 + strlen(tok_special_name(TOK_N_BYTES + i));
    return at + 8 * (size_t)m;
}
static void rehash(uint8_t *buf, size_t n) { sha256(buf, n - 32, buf + n - 32); }

/* ------------------------------------------------------------------------
 * Tests
 * ---------------------------------------------------------------------- */

static void test_presplit_rule(void) {
    static const struct { const char *text; const char *chunks[16]; } cases[] = {
        { "Hello, world!\n", { "Hello", ",", " world", "!", "\n" } },
        { "  x  12 ab\t\tc", { " ", " x", "  ", "1", "2", " ab", "\t", "\t", "c" } },
        { " caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac", { " caf\xc3\xa9", " \xe6\x97\xa5\xe6\x9c\xac" } },
        { "a\x01" "b...!! (x)", { "a", "\x01", "b", "...!!", " (", "x", ")" } },
        { "\r\n\n \n", { "\r\n\n \n" } },
        { "x  ", { "x", "  " } },
        { " ", { " " } },
        { "<|user|>hi", { "<|", "user", "|>", "hi" } },
        { "3.14 cm", { "3", ".", "1", "4", " cm" } },
        { "it's 'S don'tx''s 'll 'l", { "it", "'s", " '", "S", " don", "'t", "x", "''", "s", " '", "ll", " '", "l" } },
        { "a\n\nb  \n5 \t7", { "a", "\n", "\n", "b", "  \n", "5", " \t", "7" } },
        { "\x02\x1f \x7f" "a", { "\x02\x1f", " \x7f", "a" } },
    };
    size_t c;
    for (c = 0; c < sizeof cases / sizeof *cases; c++) {
        const uint8_t *s = (const uint8_t *)cases[c].text;
        size_t n = strlen(cases[c].text), at = 0;
        int k = 0;
        while (at < n) {
            size_t L = tok_chunk_len(s + at, n - at);
            const char *want = cases[c].chunks[k];
            CHECK(want && L == strlen(want) && memcmp(s + at, want, L) == 0,
                  "case %d chunk %d: got %d bytes at %d", (int)c, k, (int)L, (int)at);
            if (!want || L == 0) break;
            at += L;
            k++;
        }
        CHECK(cases[c].chunks[k] == NULL || at < n, "case %d: fewer chunks than expected", (int)c);
    }
}

/* The regex of tokenizer.c section 2 transcribed literally, as a backtracking
 * matcher would run it: split out each digit, then in each segment try the
 * alternatives in order at each position (\s+(?!\S) backs off one byte at a
 * time until the lookahead holds, the segment's end counting as not \S).
 * Byte classes as srlm's: letters include 0x80-0xFF. */
static int rx_letter(uint8_t c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c >= 0x80; }
static int rx_digit(uint8_t c) { return c >= '0' && c <= '9'; }
static int rx_space(uint8_t c) { return c == ' ' || (c >= '\t' && c <= '\r'); }
static int rx_other(uint8_t c) { return !rx_letter(c) && !rx_digit(c) && !rx_space(c); }

static size_t rx_match_in_segment(const uint8_t *s, size_t p, size_t end) {
    static const char *contractions[] = { "'s", "'t", "'re", "'ve", "'m", "'ll", "'d" };
    size_t i, k, e;
    for (i = 0; i < 7; i++) {
        size_t L = strlen(contractions[i]);
        if (p + L <= end && memcmp(s + p, contractions[i], L) == 0) return L;
    }
    k = p + (s[p] == ' ' ? 1 : 0);                          /*  ?\p{L}+ */
    if (k < end && rx_letter(s[k])) { for (e = k + 1; e < end && rx_letter(s[e]); e++) {} return e - p; }
    if (k < end && rx_other(s[k])) { for (e = k + 1; e < end && rx_other(s[e]); e++) {} return e - p; } /*  ?[^\s\p{L}\p{N}]+ */
    for (e = p; e < end && rx_space(s[e]); e++) {}          /* \s+(?!\S) then \s+ */
    for (k = e; k > p; k--) if (k == end || rx_space(s[k])) return k - p;
    return e - p;
}

static void test_presplit_equals_regex(void) {
    static const char alphabet[] = "aZs'tlrevmd \n\t\r\v\f.!<|>_-0129\x01\x7f\xc3\xa9\xe2\x80\x94";
    uint8_t buf[64];
    int trial, bad = 0;
    rng_state = 11;
    for (trial = 0; trial < 200000 && !bad; trial++) {
        size_t n = 1 + below(sizeof buf - 1), i, at = 0;
        for (i = 0; i < n; i++) buf[i] = (uint8_t)alphabet[below(sizeof alphabet - 1)];
        if (trial % 7 == 0) buf[below(n)] = 0;              /* NUL is an "other" byte */
        while (at < n && !bad) {
            size_t end, want;
            if (rx_digit(buf[at])) want = 1;
            else {
                for (end = at; end < n && !rx_digit(buf[end]); end++) {}
                want = rx_match_in_segment(buf, at, end);
            }
            if (tok_chunk_len(buf + at, n - at) != want) bad = 1;
            else at += want;
        }
        CHECK(!bad, "trial %d: chunk at byte %d of %d: %d bytes, the regex says otherwise", trial, (int)at, (int)n,
              (int)tok_chunk_len(buf + at, n - at));
    }
}

/* The classic "aaabdaaabac" worked by hand (no presplit), ties by the order
 * count desc, left asc, right asc:
 *   aa:4 -> 264        X a b d X a b a c
 *   ab:2 ties Xa:2, left 97 < 264 -> 265      X Y d X Y a c
 *   (264,265):2 -> 266 Z d Z a c      all pairs 1 now
 *   (97,99) ac -> 267  (smallest left) Z d Z W
 *   (100,266) dZ -> 268               Z V W
 *   (266,268) -> 269, (269,267) -> 270; then nothing is left. */
static void test_hand_example_plain(void) {
    static const int want[] = { 97, 97, 97, 98, 264, 265, 97, 99, 100, 266, 266, 268, 269, 267 };
    Tokenizer t = train_str("aaabdaaabac", 10, 0);
    int ids[16], i;
    size_t n;
    CHECK(t.n_merges == 7, "learned %d merges, want 7", t.n_merges);
    for (i = 0; i < 14 && i < 2 * t.n_merges; i++) CHECK(t.merges[i] == want[i], "merge %d side %d: %d != %d", i / 2, i % 2, t.merges[i], want[i]);
    n = tok_encode(&t, (const uint8_t *)"aaabdaaabac", 11, ids);
    CHECK(n == 1 && ids[0] == 270, "whole corpus should be id 270 (n=%d id=%d)", (int)n, ids[0]);
    n = tok_encode(&t, (const uint8_t *)"aaab", 4, ids);      /* (aa) a b -> (aa)(ab) -> 266 */
    CHECK(n == 1 && ids[0] == 266, "aaab -> 266 (n=%d id=%d)", (int)n, ids[0]);
    n = tok_encode(&t, (const uint8_t *)"abaa", 4, ids);      /* a b (aa) -> (ab)(aa) = 265 264 */
    CHECK(n == 2 && ids[0] == 265 && ids[1] == 264, "abaa -> 265 264 (n=%d)", (int)n);
    n = tok_encode(&t, (const uint8_t *)"aaa", 3, ids);       /* leftmost first: (aa) a */
    CHECK(n == 2 && ids[0] == 264 && ids[1] == 97, "aaa -> 264 97 (n=%d)", (int)n);
    tok_free(&t);
}

/* "the cat the hat\n" with presplit: chunks the | " cat" | " the" | " hat" | \n.
 *   count 2: (a,t) (h,e) (t,h); smallest left 'a' -> 264 "at"
 *   count 2: (h,e) before (t,h) -> 265 "he"; then (t,265) -> 266 "the"
 *   all 1 now: (32,99) -> 267 " c"; (32,104) -> 268 " h"; (32,266) -> 269 " the";
 *   (267,264) -> 270 " cat"; (268,264) -> 271 " hat". Eight merges, then none. */
static void test_hand_example_presplit(void) {
    static const int want[] = { 97, 116, 104, 101, 116, 265, 32, 99, 32, 104, 32, 266, 267, 264, 268, 264 };
    Tokenizer t = train_str("the cat the hat\n", 20, 1);
    int ids[16], i;
    size_t n;
    CHECK(t.n_merges == 8, "learned %d merges, want 8", t.n_merges);
    for (i = 0; i < 16 && i < 2 * t.n_merges; i++) CHECK(t.merges[i] == want[i], "merge %d side %d: %d != %d", i / 2, i % 2, t.merges[i], want[i]);
    n = tok_encode(&t, (const uint8_t *)" the cat", 8, ids);
    CHECK(n == 2 && ids[0] == 269 && ids[1] == 270, " the cat -> 269 270 (n=%d)", (int)n);
    n = tok_encode(&t, (const uint8_t *)"then", 4, ids);      /* t (he) n -> (the) n */
    CHECK(n == 2 && ids[0] == 266 && ids[1] == 'n', "then -> 266 110 (n=%d)", (int)n);
    n = tok_encode(&t, (const uint8_t *)"thecat", 6, ids);    /* one chunk: (the) c (at) */
    CHECK(n == 3 && ids[0] == 266 && ids[1] == 'c' && ids[2] == 264, "thecat -> 266 99 264 (n=%d)", (int)n);
    tok_free(&t);
}

static void test_train_matches_reference(void) {
    int trial, bad = 0;
    rng_state = 1;
    for (trial = 0; trial < 240; trial++) {
        size_t n = below(4) ? below(400) : below(3000);
        int style = trial % 4, presplit = (trial / 4) % 2, n_merges = (int)below(trial % 3 ? 60 : 400);
        uint8_t *text = malloc(n + 1);
        int *ref = malloc((2 * (size_t)n_merges + 1) * sizeof *ref), m, i;
        Tokenizer t;
        random_text(text, n, style);
        m = ref_train(text, n, n_merges, presplit, ref);
        tok_train(&t, text, n, n_merges, presplit);
        if (t.n_merges != m) { bad++; CHECK(0, "trial %d: %d merges vs reference %d", trial, t.n_merges, m); }
        for (i = 0; i < 2 * m && i < 2 * t.n_merges; i++)
            if (t.merges[i] != ref[i]) {
                bad++;
                CHECK(0, "trial %d (style %d presplit %d n %d): merge %d differs: (%d,%d) vs reference (%d,%d)", trial, style,
                      presplit, (int)n, i / 2, t.merges[i & ~1], t.merges[i | 1], ref[i & ~1], ref[i | 1]);
                break;
            }
        tok_free(&t);
        free(text); free(ref);
        if (bad > 3) break;
    }
}

/* Long runs: doubling merges reach exactly TOK_MAX_TOKEN_LEN and stop there. */
static void test_token_length_cap(void) {
    uint8_t *text = malloc(5000);
    int *ref = malloc(200 * sizeof *ref), m, i, longest = 0;
    Tokenizer t;
    memset(text, 'a', 5000);
    tok_train(&t, text, 5000, 100, 0);
    m = ref_train(text, 5000, 100, 0, ref);
    CHECK(m == t.n_merges, "%d merges vs reference %d", t.n_merges, m);
    for (i = 0; i < 2 * m && i < 2 * t.n_merges; i++) CHECK(t.merges[i] == ref[i], "merge %d differs", i / 2);
    for (i = 0; i < tok_vocab_size(&t); i++) {
        size_t len;
        tok_token_bytes(&t, i, &len);
        if ((int)len > longest) longest = (int)len;
    }
    CHECK(longest == TOK_MAX_TOKEN_LEN, "longest token %d, want %d", longest, TOK_MAX_TOKEN_LEN);
    CHECK(round_trips(&t, text, 5000), "run of 5000 'a' does not round-trip");
    tok_free(&t);
    free(text); free(ref);
}

static void test_encode_matches_reference(void) {
    int trial, bad = 0;
    rng_state = 2;
    for (trial = 0; trial < 40 && bad < 4; trial++) {
        size_t n = 500 + below(3000), k;
        uint8_t *corpus = malloc(n), *x = malloc(2000);
        int *a = malloc(2000 * sizeof *a), *b = malloc(2000 * sizeof *b);
        Tokenizer t;
        random_text(corpus, n, trial % 4);
        tok_train(&t, corpus, n, 20 + (int)below(300), trial % 2);
        for (k = 0; k < 25; k++) {
            size_t nx = below(k % 5 ? 60 : 2000), na, nb;
            random_text(x, nx, (int)below(4));
            na = tok_encode(&t, x, nx, a);
            nb = ref_encode(&t, x, nx, b);
            if (na != nb || memcmp(a, b, na * sizeof *a) != 0) {
                bad++;
                CHECK(0, "trial %d input %d (%d bytes): fast encoder gives %d ids, reference %d", trial, (int)k, (int)nx, (int)na, (int)nb);
                break;
            }
        }
        tok_free(&t);
        free(corpus); free(x); free(a); free(b);
    }
}

static void test_round_trip(void) {
    static const char *corpus_text =
        "<|user|> What is 12 + 30?<|eot|><|assistant|> 42.<|eot|>\n"
        "the cat sat on the mat. the cat sat. \xc3\xa9t\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac\n"
        "<|user|>again <|assistant|>again<|eos|>aaaaaaaaaaaaaaaaaaaaaaaa\n";
    Tokenizer tk[2];
    size_t n, k;
    int p, trial;
    uint8_t *x = malloc(300000);
    rng_state = 3;
    for (p = 0; p < 2; p++) {
        tk[p] = train_str(corpus_text, 150, p);
        CHECK(tk[p].n_merges > 20, "trained only %d merges", tk[p].n_merges);
    }
    for (p = 0; p < 2; p++) {
        const Tokenizer *t = &tk[p];
        CHECK(round_trips(t, (const uint8_t *)"", 0), "empty");
        CHECK(round_trips(t, (const uint8_t *)"\0\0a\0", 4), "NUL bytes");
        CHECK(round_trips(t, (const uint8_t *)"\xff\xfe\xc3\x28\xe2\x82\x80\x80\xed\xa0\x80", 11), "invalid UTF-8");
        n = strlen(corpus_text);
        CHECK(round_trips(t, (const uint8_t *)corpus_text, n), "the training text (marker spellings inside)");
        for (k = 0; k < 4; k++) {
            memset(x, "a \0\xff"[k], 300000);
            CHECK(round_trips(t, x, 300000), "300000 x byte %d", (int)(uint8_t)"a \0\xff"[k]);
        }
        for (trial = 0; trial < 300; trial++) {
            n = below(trial % 10 ? 300 : 20000);
            random_text(x, n, trial % 4);
            if (!round_trips(t, x, n)) { CHECK(0, "presplit %d trial %d: %d random bytes do not round-trip", p, trial, (int)n); break; }
        }
    }
    tok_free(&tk[0]);
    tok_free(&tk[1]);
    free(x);
}

/* Text that spells a marker is bytes; only ids the program writes are special. */
static void test_markers_are_text(void) {
    static const char *corpus_text = "<|user|>hi<|eot|><|assistant|>yo<|eot|><|user|>hi<|eot|><|bos|><|eos|>";
    Tokenizer t = train_str(corpus_text, 100, 1);
    const char *s = "<|user|>";
    int ids[64], prog[3] = { TOK_USER, 'h', TOK_EOT }, i;
    size_t n = tok_encode(&t, (const uint8_t *)s, strlen(s), ids), len;
    uint8_t out[64];
    const uint8_t *b;
    for (i = 0; i < (int)n; i++) CHECK(ids[i] < TOK_N_BYTES || ids[i] >= TOK_FIRST_MERGE, "encode produced special id %d", ids[i]);
    CHECK(n >= 2, "\"<|user|>\" encoded to %d ids (chunks <| user |> cannot be one)", (int)n);
    n = tok_encode(&t, (const uint8_t *)corpus_text, strlen(corpus_text), ids);
    for (i = 0; i < (int)n; i++) CHECK(ids[i] < TOK_N_BYTES || ids[i] >= TOK_FIRST_MERGE, "encode produced special id %d", ids[i]);
    /* the program's special ids decode to their spellings */
    len = tok_decode(&t, prog, 3, out, sizeof out);
    CHECK(len == 16 && memcmp(out, "<|user|>h<|eot|>", 16) == 0, "decode of specials: %d bytes", (int)len);
    for (i = TOK_N_BYTES; i < TOK_FIRST_MERGE; i++) {
        b = tok_token_bytes(&t, i, &len);
        CHECK(b && len == strlen(tok_special_name(i)) && memcmp(b, tok_special_name(i), len) == 0, "special %d bytes", i);
    }
    CHECK(strcmp(tok_special_name(TOK_ASSISTANT), "<|assistant|>") == 0 && strcmp(tok_special_name(263), "<|reserved_263|>") == 0
          && tok_special_name(255) == NULL && tok_special_name(264) == NULL, "special names");
    tok_free(&t);
}

static void test_decode_edges(void) {
    Tokenizer t = train_str("aaabdaaabac", 10, 0);
    int ids[] = { 'x', -5, 270, 100000, TOK_BOS, 277, 'y' };
    uint8_t out[64];
    size_t need, len;
    memset(out, '#', sizeof out);
    need = tok_decode(&t, ids, 7, out, sizeof out);
    CHECK(need == 1 + 11 + 7 + 1 && memcmp(out, "xaaabdaaabac<|bos|>y", need) == 0, "decode skips invalid ids (%d)", (int)need);
    CHECK(tok_count_invalid(&t, ids, 7) == 3, "3 invalid ids");
    memset(out, '#', sizeof out);
    need = tok_decode(&t, ids, 7, out, 5);
    CHECK(need == 20 && memcmp(out, "xaaab#", 6) == 0, "short buffer: need %d, wrote past cap?", (int)need);
    CHECK(tok_decode(&t, ids, 7, NULL, 0) == 20, "sizing call");
    CHECK(tok_token_bytes(&t, 271, &len) == NULL && len == 0, "id past vocab has no bytes");
    CHECK(tok_token_bytes(&t, -1, &len) == NULL && len == 0, "negative id has no bytes");
    tok_free(&t);
}

/* A fixed corpus of pseudo-words (skewed frequencies), digits, punctuation
 * and newlines: its tokenizer file digest pins training across runs,
 * compilers and machines. */
static uint8_t *fixed_corpus(size_t *n) {
    static const char *syl[] = { "ka", "re", "to", "mi", "sun", "the", "in", "al", "or", "es", "ing", "ou",
                                 "pr", "st", "\xc3\xa9", "ba", "lo", "ne", "qu", "ex" };
    char words[400][16];
    size_t cap = 120000, i = 0, k;
    uint8_t *s = malloc(cap);
    int w;
    rng_state = 4;
    for (w = 0; w < 400; w++) {
        int nsyl = 1 + (int)below(4), j;
        words[w][0] = 0;
        for (j = 0; j < nsyl; j++) strcat(words[w], syl[below(20)]);
    }
    while (i + 40 < cap) {
        const char *x = words[below(below(400) + 1)];  /* small indices far more often */
        if (i && below(11) == 0) s[i++] = (uint8_t)".,\n;"[below(4)];
        s[i++] = ' ';
        for (k = 0; x[k]; k++) s[i++] = (uint8_t)x[k];
        if (below(17) == 0) { s[i++] = ' '; s[i++] = (uint8_t)('0' + below(10)); s[i++] = (uint8_t)('0' + below(10)); }
    }
    *n = i;
    return s;
}

static void test_file_deterministic(void) {
    size_t n, n1, n2, i;
    uint8_t *corpus = fixed_corpus(&n), *f1, *f2, d[32];
    char hex[65];
    Tokenizer a, b, c;
    char err[256];
    int *ia = malloc(n * sizeof *ia), *ic = malloc(n * sizeof *ic);
    size_t na, nc;
    tok_train(&a, corpus, n, 400, 1);
    tok_train(&b, corpus, n, 400, 1);
    tok_serialize(&a, &f1, &n1);
    tok_serialize(&b, &f2, &n2);
    CHECK(n1 == n2 && memcmp(f1, f2, n1) == 0, "two trainings give different files");
    sha256(f1, n1, d);
    sha256_hex(d, hex);
    CHECK(strcmp(hex, "9d3e667413f7586da788eedaa1f89f753677192d8b5deb21687da13070941164") == 0, "tokenizer file digest %s (%d merges, %d bytes)", hex, a.n_merges, (int)n1);
    /* load gives the same tokenizer: same merges, same encoding, same bytes back */
    CHECK(tok_deserialize(&c, f1, n1, err, sizeof err) == 0, "reload failed: %s", err);
    CHECK(c.n_merges == a.n_merges && c.presplit == 1 && memcmp(c.merges, a.merges, 2 * (size_t)a.n_merges * sizeof *a.merges) == 0, "reloaded merges differ");
    na = tok_encode(&a, corpus, n, ia);
    nc = tok_encode(&c, corpus, n, ic);
    CHECK(na == nc && memcmp(ia, ic, na * sizeof *ia) == 0, "reloaded tokenizer encodes differently");
    CHECK(na < n / 3, "400 merges should compress this corpus 3x (%d ids for %d bytes)", (int)na, (int)n);
    for (i = 0; i < na; i++) if (ia[i] >= '0' && ia[i] <= '9') break;
    CHECK(i < na, "digits should appear as single byte ids");
    free(f2);
    tok_serialize(&c, &f2, &n2);
    CHECK(n1 == n2 && memcmp(f1, f2, n1) == 0, "save(load(file)) != file");
    tok_free(&a); tok_free(&b); tok_free(&c);
    free(f1); free(f2); free(corpus); free(ia); free(ic);
}

static void test_bad_files(void) {
    Tokenizer t = train_str("aaabdaaabac the cat the hat", 12, 1), u;
    uint8_t *f, *g;
    size_t n, k;
    char err[256];
    int rc;
    tok_serialize(&t, &f, &n);
    g = malloc(n + 8);
    CHECK(t.n_merges >= 4, "need a few merges (%d)", t.n_merges);
    /* every truncation is refused with a reason, never a crash */
    for (k = 0; k < n; k++) {
        err[0] = 0;
        rc = tok_deserialize(&u, f, k, err, sizeof err);
        CHECK(rc == -1 && err[0], "truncated to %d bytes was accepted", (int)k);
        if (rc == 0) tok_free(&u);
    }
    expect_refused(f, 10, "truncated", "10-byte file");
    expect_refused(f, n - 1, "truncated", "one byte short");
    memcpy(g, f, n); g[n] = 0;
    expect_refused(g, n + 1, "trailing", "one extra byte");
    memcpy(g, f, n); g[0] = 'X';
    expect_refused(g, n, "bad magic", "magic");
    memcpy(g, f, n); le_put_u32(g + 8, 2); rehash(g, n);
    expect_refused(g, n, "unsupported version 2 (this build reads 1)", "future version");
    memcpy(g, f, n); le_put_u32(g + 12, 6); rehash(g, n);
    expect_refused(g, n, "unknown flags", "flags");
    memcpy(g, f, n); le_put_u32(g + 16, 9); rehash(g, n);
    expect_refused(g, n, "n_special", "special count");
    memcpy(g, f, n); g[24 + 4 + 2] = 'B'; rehash(g, n);
    expect_refused(g, n, "special token 256", "special spelling");
    memcpy(g, f, n); g[n / 2] ^= 1;
    expect_refused(g, n, "checksum", "flipped bit");
    memcpy(g, f, n); le_put_u32(g + merge_offset(2) + 4, 5000); rehash(g, n);
    expect_refused(g, n, "merge 2 (id 266): right id 5000 is out of range", "merge id out of range");
    memcpy(g, f, n); le_put_u32(g + merge_offset(1), 266); rehash(g, n);
    expect_refused(g, n, "merge 1 (id 265): left id 266 is used before it is defined", "merge uses a later id");
    memcpy(g, f, n); le_put_u32(g + merge_offset(1), 265); rehash(g, n);
    expect_refused(g, n, "used before it is defined", "merge uses itself");
    memcpy(g, f, n); le_put_u32(g + merge_offset(0), TOK_EOT); rehash(g, n);
    expect_refused(g, n, "special token", "merge of a special id");
    memcpy(g, f, n); memcpy(g + merge_offset(3), g + merge_offset(0), 8); rehash(g, n);
    expect_refused(g, n, "merge 3 (id 267) repeats merge 0", "duplicate merge");
    /* the file itself still loads */
    rc = tok_deserialize(&u, f, n, err, sizeof err);
    CHECK(rc == 0, "good file refused: %s", err);
    if (rc == 0) tok_free(&u);
    tok_free(&t);
    free(f); free(g);
}

/* A hand-made file whose merges double 'a' nine times: the 512-byte token is refused. */
static void test_too_long_token_refused(void) {
    Tokenizer t;
    uint8_t *f;
    size_t n;
    int i;
    memset(&t, 0, sizeof t);
    t.n_merges = 9;
    t.merges = malloc(18 * sizeof *t.merges);
    t.merges[0] = t.merges[1] = 'a';
    for (i = 1; i < 9; i++) t.merges[2 * i] = t.merges[2 * i + 1] = TOK_FIRST_MERGE + i - 1;
    tok_serialize(&t, &f, &n);
    expect_refused(f, n, "merge 8 (id 272) makes a token of 512 bytes (limit 256)", "512-byte token");
    free(t.merges);
    free(f);
}

static void test_zero_merges_and_limits(void) {
    Tokenizer t;
    int ids[8];
    size_t n;
    CHECK(tok_train(&t, (const uint8_t *)"abc", 3, -1, 1) == -1, "negative merges accepted");
    CHECK(tok_train(&t, (const uint8_t *)"abc", 3, TOK_MAX_MERGES + 1, 1) == -1, "too many merges accepted");
    CHECK(tok_train(&t, NULL, 0, 100, 1) == 0, "empty corpus learns nothing");
    CHECK(tok_vocab_size(&t) == TOK_FIRST_MERGE, "vocab %d", tok_vocab_size(&t));
    n = tok_encode(&t, (const uint8_t *)"hi!\n", 4, ids);
    CHECK(n == 4 && ids[0] == 'h' && ids[3] == '\n', "zero merges: ids are bytes");
    tok_free(&t);
    CHECK(t.merges == NULL && t.n_merges == 0, "tok_free zeroes");
    tok_free(&t); /* twice is safe */
}

int main(void) {
    RUN(test_presplit_rule);
    RUN(test_presplit_equals_regex);
    RUN(test_hand_example_plain);
    RUN(test_hand_example_presplit);
    RUN(test_train_matches_reference);
    RUN(test_token_length_cap);
    RUN(test_encode_matches_reference);
    RUN(test_round_trip);
    RUN(test_markers_are_text);
    RUN(test_decode_edges);
    RUN(test_file_deterministic);
    RUN(test_bad_files);
    RUN(test_too_long_token_refused);
    RUN(test_zero_merges_and_limits);
    return check_summary();
}
