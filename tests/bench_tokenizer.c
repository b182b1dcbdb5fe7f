/* bench_tokenizer.c - tokenizer speed (a benchmark, not a test).
 *
 * cc -std=c99 -O2 -ffp-contract=off tests/bench_tokenizer.c tokenizer.c tensor.c -lm -o bench_tokenizer
 *
 * Trains 4000 merges on a generated 10 MB English-like corpus, then encodes
 * and decodes a second 10 MB from the same generator. Targets: training
 * <= 20 s; encoding >= 20 MB/s on one thread.
 * Optional arguments: MB (corpus size, default 10) and --no-presplit.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../tensor.h"
#include "../tokenizer.h"

static uint64_t bench_rng = 1;
static uint32_t below(uint32_t n) { /* splitmix64: the corpus depends on nothing else */
    uint64_t z = (bench_rng += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return (uint32_t)((z ^ (z >> 31)) % n);
}

/* Pseudo-words from syllables; word k is drawn with weight 1/(k+1) (Zipf),
 * with sentence punctuation, capitals, numbers and paragraph breaks. */
#define N_WORDS 20000
static uint8_t *make_corpus(size_t n, uint64_t seed) {
    static const char *syl[] = { "the", "an", "re", "in", "con", "ter", "al", "ing", "ed", "or", "es", "ti", "on",
                                 "ma", "ne", "lo", "st", "pr", "qu", "ex", "ou", "ly", "ble", "ment", "ka", "so" };
    static char words[N_WORDS][24];
    static uint64_t cum[N_WORDS];
    uint8_t *s = malloc(n + 64);
    size_t i = 0, k;
    uint64_t total = 0;
    int w, cap_next = 1;
    bench_rng = 1; /* the same vocabulary every time; seed picks the text */
    for (w = 0; w < N_WORDS; w++) {
        int nsyl = 1 + (int)below(w < 100 ? 2 : 4), j;
        words[w][0] = 0;
        for (j = 0; j < nsyl; j++) strcat(words[w], syl[below(26)]);
        total += 100000000ull / (uint64_t)(w + 1);
        cum[w] = total;
    }
    bench_rng = seed;
    while (i < n) {
        uint64_t u = ((uint64_t)below(1u << 30) << 30 | below(1u << 30)) % total;
        int lo = 0, hi = N_WORDS - 1;
        while (lo < hi) { int mid = (lo + hi) / 2; if (cum[mid] > u) hi = mid; else lo = mid + 1; }
        if (i) s[i++] = ' ';
        for (k = 0; words[lo][k]; k++) s[i++] = (uint8_t)(k == 0 && cap_next ? words[lo][k] - 32 : words[lo][k]);
        cap_next = 0;
        if (below(25) == 0) { int d = 1 + (int)below(4); s[i++] = ' '; while (d--) s[i++] = (uint8_t)('0' + below(10)); }
        if (below(12) == 0) { s[i++] = (uint8_t)".,.;:!?"[below(7)]; cap_next = s[i - 1] != ',' && s[i - 1] != ';'; }
        if (cap_next && below(6) == 0) { s[i++] = '\n'; if (below(2)) s[i++] = '\n'; }
    }
    return s;
}

static double cpu_seconds(void) { return (double)clock() / CLOCKS_PER_SEC; }

int main(int argc, char **argv) {
    double mb = 10.0, t0, t_train, t_enc, t_dec;
    int presplit = 1, i, merges;
    size_t n, nids, nback;
    uint8_t *corpus, *text, *back, *file;
    size_t file_n;
    int *ids;
    uint8_t digest[32];
    char hex[65];
    Tokenizer tok;
    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--no-presplit") == 0) presplit = 0;
        else mb = atof(argv[i]);
    }
    n = (size_t)(mb * 1000000.0);
    corpus = make_corpus(n, 1);
    text = make_corpus(n, 2); /* held-out text from the same distribution */
    t0 = cpu_seconds();
    merges = tok_train(&tok, corpus, n, 4000, presplit);
    t_train = cpu_seconds() - t0;
    printf("tokenizer train: %d merges on %.1f MB in %.2f s%s\n", merges, (double)n / 1e6, t_train,
           presplit ? "" : " (no presplit)");
    tok_serialize(&tok, &file, &file_n);
    sha256(file, file_n, digest);
    sha256_hex(digest, hex);
    printf("tokenizer file: %lu bytes, sha256 %s\n", (unsigned long)file_n, hex);

    ids = malloc(n * sizeof *ids);
    back = malloc(n);
    t0 = cpu_seconds();
    nids = tok_encode(&tok, text, n, ids);
    t_enc = cpu_seconds() - t0;
    t0 = cpu_seconds();
    nback = tok_decode(&tok, ids, nids, back, n);
    t_dec = cpu_seconds() - t0;
    if (nback != n || memcmp(back, text, n) != 0) { printf("ROUND TRIP FAILED\n"); return 1; }
    printf("encode: %.1f MB/s, decode: %.1f MB/s (%.2f bytes per token)\n", (double)n / 1e6 / t_enc,
           (double)n / 1e6 / t_dec, (double)n / (double)nids);
    tok_free(&tok);
    free(corpus); free(text); free(back); free(ids); free(file);
    return 0;
}
