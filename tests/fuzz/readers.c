/* readers.c - libFuzzer targets for every reader of srlm (issue 23).
 *
 * One binary, eleven targets: the target is the name the binary is run as
 * (make fuzz links build/fuzz/NAME to build/fuzz/readers):
 *
 *   ckpt       a checkpoint file (via ckpt_load), and the one-pass reader against
 *              the careful parser (they must accept the same files, same numbers)
 *   tokfile    a tokenizer file (tok_deserialize; a valid one must serialize
 *              back to the same bytes and round-trip text)
 *   tokround   encode/decode with the shipped tokenizer: decode(encode(x)) == x
 *              for any bytes, and any id sequence decodes within its size
 *   jsonl      a JSONL data file: the record walk, load_field, SFT examples,
 *              DPO pairs; every string decoded is re-encoded and read back
 *   runjson    a JSON file the run reads back (rm_*.json, aiftN.stats.json)
 *   template   a judge template (load, then fill)
 *   score      the judge's score parser (a score is always in 0..5)
 *   hf         config.json + model.safetensors (the HF importer)
 *   llama2c    a llama2.c checkpoint (the llama2.c importer)
 *   gguf       a GGUF file (the GGUF importer)
 *   rundir     a run directory's own files: outputs.sha256 and the stage
 *              outputs resume checks, then the report that reads them all
 *
 * Inputs of the checksummed formats (ckpt, tokfile) start with one mode
 * byte: odd = the harness writes the correct SHA-256 trailer over the rest
 * (so the fuzzer gets past the checksum into the fields), even = as is.
 * hf: config.json bytes, one NUL, then the safetensors bytes. rundir: the
 * files of RUNDIR_FILES in that order, separated by NUL bytes (fewer pieces
 * = the later files are missing).
 *
 * srlm's readers end a bad input with die() -> exit(1). Here exit longjmps
 * back to the harness, which frees whatever srlm.c had allocated (every
 * malloc/calloc/realloc/free of srlm.c is tracked), so LeakSanitizer still
 * sees every real leak and none of the by-design exits. Messages go to
 * /dev/null (FUZZ_VERBOSE=1 keeps them on stderr).
 *
 * tests/fuzz/make_corpus.sh makes the seed corpus; tests/test_fuzz.sh
 * replays it; tests/README.md "Robustness" says how to run these for hours. */
#define _POSIX_C_SOURCE 200809L
#define SRLM_NO_MAIN
#include <setjmp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <time.h>
#include <math.h>
#include <dirent.h>
#include <fcntl.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- the escape from exit(): srlm.c's exits come back here ---- */
static jmp_buf fz_jump;
static int fz_in_target;
static FILE *fz_quiet;

static FILE *fz_err_out(void) { return stderr; } /* the real one, for the harness's own faults */

static void fz_exit(int code) {
    if (fz_in_target) longjmp(fz_jump, 1);
    exit(code);
}

/* ---- every allocation srlm.c makes: an open-addressing set of pointers ----
 * Not instrumented for coverage: its branches depend on heap addresses, which
 * would make a replay with a fixed -seed take another path. */
#if defined(__clang__)
#define FZ_UNCOVERED __attribute__((no_sanitize("coverage")))
#else
#define FZ_UNCOVERED
#endif
static void **fz_set;
static size_t fz_mask, fz_used;

FZ_UNCOVERED static size_t fz_hash(const void *p) {
    uint64_t h = (uint64_t)(uintptr_t)p;
    h ^= h >> 29; h *= 0xbf58476d1ce4e5b9ull; h ^= h >> 32;
    return (size_t)h & fz_mask;
}

FZ_UNCOVERED static void fz_insert(void *p) {
    size_t i;
    if (!fz_set || (fz_used + 1) * 2 > fz_mask + 1) {
        void **old = fz_set;
        size_t old_n = fz_set ? fz_mask + 1 : 0, k;
        fz_mask = old_n ? 2 * old_n - 1 : 1023;
        fz_set = calloc(fz_mask + 1, sizeof(void *));
        if (!fz_set) abort();
        fz_used = 0;
        for (k = 0; k < old_n; k++) if (old[k]) fz_insert(old[k]);
        free(old);
    }
    for (i = fz_hash(p); fz_set[i]; i = (i + 1) & fz_mask) {}
    fz_set[i] = p;
    fz_used++;
}

FZ_UNCOVERED static void fz_remove(void *p) {
    size_t i, j;
    if (!p || !fz_set) return;
    for (i = fz_hash(p); fz_set[i] != p; i = (i + 1) & fz_mask) if (!fz_set[i]) return; /* not tracked */
    fz_set[i] = NULL;
    fz_used--;
    for (j = (i + 1) & fz_mask; fz_set[j]; j = (j + 1) & fz_mask) { /* re-seat the rest of the probe run */
        void *q = fz_set[j];
        fz_set[j] = NULL;
        fz_used--;
        fz_insert(q);
    }
}

FZ_UNCOVERED static void *fz_malloc(size_t n) { void *p = malloc(n); if (p && fz_in_target) fz_insert(p); return p; }
FZ_UNCOVERED static void *fz_calloc(size_t n, size_t s) { void *p = calloc(n, s); if (p && fz_in_target) fz_insert(p); return p; }
FZ_UNCOVERED static void *fz_realloc(void *p, size_t n) {
    void *q = realloc(p, n);
    if (q && fz_in_target) { fz_remove(p); fz_insert(q); }
    return q;
}
FZ_UNCOVERED static void fz_free(void *p) { fz_remove(p); free(p); }

/* after an exit: free what srlm.c still held; after a return: forget (what is
 * left is a real leak, and LeakSanitizer must not find it through this set) */
FZ_UNCOVERED static void fz_release(int free_them) {
    size_t i;
    if (!fz_set) return;
    for (i = 0; i <= fz_mask; i++) {
        if (fz_set[i] && free_them) free(fz_set[i]);
        fz_set[i] = NULL;
    }
    fz_used = 0;
}

#define exit(c) fz_exit(c)
#define malloc(n) fz_malloc(n)
#define calloc(n, s) fz_calloc(n, s)
#define realloc(p, n) fz_realloc(p, n)
#define free(p) fz_free(p)
#undef stderr
#define stderr fz_quiet

#include "../../srlm.c"

#undef exit

/* ---- per-process scratch files (/dev/shm/srlm-fuzz-PID, removed at exit; the
 * PID has 10 digits: paths of one length make replays take the same branches) ---- */
static char fz_dir[64];

static char *fz_path(const char *name) {
    size_t n = strlen(fz_dir) + strlen(name) + 2;
    char *p = xmalloc(n);
    snprintf(p, n, "%s/%s", fz_dir, name);
    return p;
}

/* write bytes to the scratch file NAME (plain stdio: the harness, not srlm.c's writer) */
static char *fz_put(const char *name, const uint8_t *d, size_t n) {
    char *p = fz_path(name);
    FILE *f = fopen(p, "wb");
    if (!f || (n && fwrite(d, 1, n, f) != n) || fclose(f) != 0) { fputs("fuzz: cannot write a scratch file\n", fz_err_out()); abort(); }
    return p;
}

/* ---- the targets ---- */
typedef void (*FzBody)(const uint8_t *d, size_t n);

/* run body; 1 when it ended in srlm's exit() */
static int fz_try(FzBody body, const uint8_t *d, size_t n) {
    int died;
    fz_in_target = 1;
    if (setjmp(fz_jump) == 0) { body(d, n); died = 0; }
    else died = 1;
    fz_in_target = 0;
    fz_release(died);
    return died;
}

/* a copy of the input, its last 32 bytes made the SHA-256 of the bytes before them */
static uint8_t *fz_with_checksum(const uint8_t *d, size_t n) {
    uint8_t *c = xmalloc(n ? n : 1);
    memcpy(c, d, n);
    if (n >= 32) sha256(c, n - 32, c + n - 32);
    return c;
}

static void body_ckpt(const uint8_t *d, size_t n) {
    Model m, r;
    char hex[65], *path;
    uint8_t *c = NULL, dg[32];
    const char *why;
    int streamed;
    if (n == 0) return;
    if (d[0] & 1) c = fz_with_checksum(d + 1, n - 1);
    path = fz_put("x.ckpt", c ? c : d + 1, n - 1);
    /* differential: ckpt_load's one-pass reader accepts exactly what the careful
     * parser accepts, with the same parameters and the same file digest */
    why = ckpt_parse(&r, c ? c : d + 1, n - 1, NULL);
    streamed = ckpt_load_stream(&m, path, dg) == 0;
    if (streamed != (why == NULL)) abort();
    if (streamed) {
        uint8_t whole[32];
        sha256(c ? c : d + 1, n - 1, whole);
        if (m.n_params != r.n_params || memcmp(m.params, r.params, r.n_params * sizeof(float)) != 0 ||
            memcmp(dg, whole, 32) != 0) abort();
        model_free(&m); model_free(&r);
    }
    free(c);
    ckpt_load(&m, path, hex);
    if (strlen(hex) != 64) abort();
    model_free(&m);
    free(path);
}

static void fz_check_roundtrip(const Tokenizer *tok, const uint8_t *text, size_t n) {
    size_t k, back;
    int *ids = encode_text(tok, text, n, &k);
    char *s = decode_ids(tok, ids, k, &back);
    if (back != n || memcmp(s, text, n) != 0) { fputs("fuzz: decode(encode(x)) != x\n", fz_err_out()); abort(); }
    if (tok_count_invalid(tok, ids, k) != 0) abort();
    free(ids); free(s);
}

static void body_tokfile(const uint8_t *d, size_t n) {
    Tokenizer tok;
    char err[200];
    uint8_t *c = NULL, *again;
    const uint8_t *file;
    size_t fn, an;
    static const uint8_t text[] = "Spell cat backwards.\n<|eot|> \xc3\xa9t\xc3\xa9 \xff\x00 tab\tand  spaces";
    if (n == 0) return;
    if (d[0] & 1) c = fz_with_checksum(d + 1, n - 1);
    file = c ? c : d + 1; fn = n - 1;
    memset(&tok, 0, sizeof tok);
    if (tok_deserialize(&tok, file, fn, err, sizeof err) == 0) {
        /* a tokenizer file is its own serialization */
        if (tok_serialize(&tok, &again, &an) != 0 || an != fn || memcmp(again, file, fn) != 0) {
            fputs("fuzz: a valid tokenizer file does not serialize back to itself\n", fz_err_out()); abort();
        }
        free(again);
        fz_check_roundtrip(&tok, text, sizeof text - 1);
        tok_free(&tok);
    } else if (err[0] == 0) abort(); /* a refusal always says why */
    free(c);
}

static Tokenizer fz_tok; /* the shipped tokenizer, loaded once */

static void body_tokround(const uint8_t *d, size_t n) {
    size_t k = n / 3, i, need, got;
    int *ids;
    uint8_t *out;
    int V = tok_vocab_size(&fz_tok);
    fz_check_roundtrip(&fz_tok, d, n);
    /* the same bytes as ids (3 bytes each, some out of range): decode never fails */
    ids = xmalloc((k ? k : 1) * sizeof(int));
    for (i = 0; i < k; i++) ids[i] = (int)((uint32_t)d[3 * i] | (uint32_t)d[3 * i + 1] << 8 | (uint32_t)d[3 * i + 2] << 16) % (V + 64) - 32;
    need = tok_decode(&fz_tok, ids, k, NULL, 0);
    out = xmalloc(need + 1);
    got = tok_decode(&fz_tok, ids, k, out, need);
    if (got != need) abort();
    free(out); free(ids);
}

/* every member of an object, recursively; every string decoded, re-encoded, decoded again */
static void fz_walk(JsonSpan v, int depth) {
    if (depth > 40 || v.p >= v.end) return;
    if (*v.p == '"') {
        size_t len, len2;
        char *s = json_string_why(v, &len, NULL);
        if (s) {
            Buf b = {0, 0, 0};
            JsonSpan w;
            char *t;
            json_put_string(&b, s, len);
            w.p = (const char *)b.p; w.end = (const char *)b.p + b.n;
            t = json_string(w, &len2);
            if (!t || len2 != len || memcmp(s, t, len) != 0) { fputs("fuzz: a JSON string does not read back\n", fz_err_out()); abort(); }
            free(t); free(b.p); free(s);
        }
    } else if (*v.p == '{') {
        const char *it = NULL;
        JsonSpan k, x;
        while (json_object_next(v, &it, &k, &x)) { fz_walk(k, depth + 1); fz_walk(x, depth + 1); }
    } else if (*v.p == '[') {
        const char *it = NULL;
        JsonSpan x;
        while (json_array_next(v, &it, &x)) fz_walk(x, depth + 1);
    } else {
        double x;
        uint64_t u;
        json_number(v, &x);
        json_uint(v, &u);
    }
}

static const char *fz_keys[] = {"instruction", "response", "prompt", "chosen", "rejected", "grade", "correct",
                                "category", "tokens", "index", "sample", "mean", "loss", "rewards/accuracies"};

static void body_jsonl_walk(const uint8_t *d, size_t n) {
    Jsonl j;
    int i;
    size_t k;
    char *path = fz_put("x.jsonl", d, n);
    jsonl_load(&j, path);
    for (i = 0; i < j.count; i++) {
        JsonSpan rec, v;
        rec.p = j.line[i]; rec.end = j.line[i] + j.len[i];
        if (!json_is_object(rec.p, rec.end)) abort(); /* jsonl_load keeps objects only */
        fz_walk(rec, 0);
        for (k = 0; k < sizeof fz_keys / sizeof fz_keys[0]; k++) if (json_get(rec.p, rec.end, fz_keys[k], &v)) fz_walk(v, 0);
        grade_record_correct(j.line[i], j.len[i]);
    }
    jsonl_free(&j);
    free(path);
}

static void body_jsonl_field(const uint8_t *d, size_t n) {
    int k;
    char *path = fz_put("x.jsonl", d, n);
    char **s = load_field(path, "instruction", &k);
    free_strings(s, k);
    free(path);
}

static void body_jsonl_sft(const uint8_t *d, size_t n) {
    int k, dropped;
    char *path = fz_put("x.jsonl", d, n);
    Example *ex = sft_load_examples(path, &fz_tok, 64, &k, &dropped);
    examples_free(ex, k);
    free(path);
}

static void body_jsonl_pairs(const uint8_t *d, size_t n) {
    int k, dropped;
    char *path = fz_put("x.jsonl", d, n);
    PrefPair *pp = pairs_load(path, &fz_tok, 64, &k, &dropped);
    pairs_free(pp, k);
    free(path);
}

static void body_jsonl(const uint8_t *d, size_t n) {
    fz_try(body_jsonl_walk, d, n);
    fz_try(body_jsonl_field, d, n);
    fz_try(body_jsonl_sft, d, n);
    fz_try(body_jsonl_pairs, d, n);
}

static const char *fz_run_keys[] = {"pairwise_accuracy", "best5", "exact_match", "spearman", "kendall", "judgments",
                                    "parse_failures", "prompts_generated", "prompts_kept", "pairs", "low_confidence"};
static const char *fz_run_key;

static void body_runjson_file(const uint8_t *d, size_t n) {
    char *path = fz_put("x.json", d, n);
    json_file_number(path, fz_run_key);
    free(path);
}

static void body_runjson_walk(const uint8_t *d, size_t n) {
    JsonSpan v;
    v.p = (const char *)d; v.end = (const char *)d + n;
    v.p = json_ws(v.p, v.end);
    if (json_is_object(v.p, v.end)) fz_walk(v, 0);
}

static void body_runjson(const uint8_t *d, size_t n) {
    size_t k;
    fz_try(body_runjson_walk, d, n);
    for (k = 0; k < sizeof fz_run_keys / sizeof fz_run_keys[0]; k++) { /* each key on its own: a missing one ends json_file_number */
        fz_run_key = fz_run_keys[k];
        fz_try(body_runjson_file, d, n);
    }
}

static void body_template(const uint8_t *d, size_t n) {
    JudgeTemplate jt;
    char *path = fz_put("x.txt", d, n), *filled;
    static const char inst[] = "Spell {response} backwards", resp[] = "tac {instruction}";
    judge_template_load(&jt, path);
    filled = judge_template_fill(&jt, inst, resp);
    /* exactly one of each placeholder, replaced literally */
    if (strlen(filled) != jt.n - 13 - 10 + strlen(inst) + strlen(resp) && !memchr(jt.text, 0, jt.n)) {
        fputs("fuzz: a filled template has the wrong length\n", fz_err_out()); abort();
    }
    free(filled); free(jt.text); free(path);
}

static void body_score(const uint8_t *d, size_t n) {
    float s = -1.0f;
    if (judge_score_parse((const char *)d, n, &s) && !(s >= 0.0f && s <= 5.0f)) {
        fputs("fuzz: a parsed score outside 0..5\n", fz_err_out()); abort();
    }
}

static void body_hf(const uint8_t *d, size_t n) {
    const uint8_t *nul = memchr(d, 0, n);
    size_t cn = nul ? (size_t)(nul - d) : n;
    Model m;
    char *meta = NULL;
    if (!hf_import(&m, &meta, (const char *)d, cn, nul ? nul + 1 : d + n, nul ? n - cn - 1 : 0, 0)) {
        free(meta);
        model_free(&m);
    }
}

static void body_llama2c(const uint8_t *d, size_t n) {
    Model m;
    if (!l2c_parse(&m, d, n)) model_free(&m);
}

static void body_gguf(const uint8_t *d, size_t n) {
    Model m;
    char *meta = NULL;
    if (!gguf_import(&m, &meta, d, n, 0)) { free(meta); model_free(&m); }
}

/* the run directory: the files run_report and resume read back */
static const char *RUNDIR_FILES[] = {
    "outputs.sha256", "rm_sft.json", "rm_m1.json", "rm_m2.json", "rm_m3.json", "rm_m2pos.json",
    "aift1.stats.json", "aift2.stats.json",
    "answers_sft.jsonl", "grades_sft.jsonl", "answers_m1.jsonl", "grades_m1.jsonl", "answers_m2.jsonl", "grades_m2.jsonl",
    "answers_m3.jsonl", "grades_m3.jsonl", "answers_m2pos.jsonl", "grades_m2pos.jsonl",
    "bestof_m1.jsonl", "bestof_grades_m1.jsonl", "audit_aift1.jsonl", "audit_aift2.jsonl",
    "m2.dpo.jsonl", "m3.dpo.jsonl", "aift1.candidates.jsonl"};
#define N_RUNDIR_FILES ((int)(sizeof RUNDIR_FILES / sizeof RUNDIR_FILES[0]))

static RunConfig fz_rc;

/* resume's check of three stage outputs (a JSON file, a JSONL file and the last piece):
 * each call parses all of outputs.sha256 and hashes the file,
 * so checking all 24 would cost ten times the rest of the target and add no branch */
static void body_rundir_verify(const uint8_t *d, size_t n) {
    static const char *names[] = {"rm_sft.json", "answers_m1.jsonl", "aift1.candidates.jsonl"};
    int i;
    (void)d; (void)n;
    for (i = 0; i < 3; i++) {
        char *p = run_path(&fz_rc, names[i]);
        run_verified(&fz_rc, p, "fuzz");
        free(p);
    }
}

static void body_rundir_report(const uint8_t *d, size_t n) {
    Buf summary = {0, 0, 0};
    (void)d; (void)n;
    run_report(&fz_rc, 5, &summary);
    free(summary.p);
}

static void body_rundir(const uint8_t *d, size_t n) {
    size_t at = 0;
    int i;
    for (i = 0; i < N_RUNDIR_FILES; i++) {
        char *p = fz_path(RUNDIR_FILES[i]);
        if (at <= n) {
            const uint8_t *nul = memchr(d + at, 0, n - at);
            size_t len = nul ? (size_t)(nul - (d + at)) : n - at;
            free(fz_put(RUNDIR_FILES[i], d + at, len));
            at += len + 1;
        } else {
            remove(p);
        }
        free(p);
    }
    fz_try(body_rundir_verify, d, n);
    fz_try(body_rundir_report, d, n);
}

static const struct { const char *name; FzBody body; } fz_targets[] = {
    {"ckpt", body_ckpt}, {"tokfile", body_tokfile}, {"tokround", body_tokround}, {"jsonl", body_jsonl},
    {"runjson", body_runjson}, {"template", body_template}, {"score", body_score}, {"hf", body_hf},
    {"llama2c", body_llama2c}, {"gguf", body_gguf}, {"rundir", body_rundir}};
static FzBody fz_body;
static int fz_nested; /* jsonl, runjson, rundir: their steps run under fz_try themselves */

static void fz_cleanup(void) {
    int i;
    const char *scratch[] = {"x.ckpt", "x.jsonl", "x.json", "x.txt", "sft.ckpt", "m1.ckpt", "m2.ckpt", "m3.ckpt", "m2pos.ckpt",
                             "report.md", "winrate.svg", "rm_by_model.svg", "eval.jsonl", "dpo_curves.svg"};
    char p[160];
    for (i = 0; i < (int)(sizeof scratch / sizeof scratch[0]); i++) { snprintf(p, sizeof p, "%s/%s", fz_dir, scratch[i]); remove(p); }
    for (i = 0; i < N_RUNDIR_FILES; i++) { snprintf(p, sizeof p, "%s/%s", fz_dir, RUNDIR_FILES[i]); remove(p); }
    run_clean_tmp(fz_dir);
    rmdir(fz_dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    const char *self = (*argv)[0], *base = strrchr(self, '/'), *tok_path;
    size_t i;
    base = base ? base + 1 : self;
    for (i = 0; i < sizeof fz_targets / sizeof fz_targets[0]; i++)
        if (strcmp(base, fz_targets[i].name) == 0) fz_body = fz_targets[i].body;
    if (!fz_body) {
        fprintf(fz_err_out(), "fuzz: run this binary as one of:");
        for (i = 0; i < sizeof fz_targets / sizeof fz_targets[0]; i++) fprintf(fz_err_out(), " %s", fz_targets[i].name);
        fprintf(fz_err_out(), " (make fuzz links them)\n");
        exit(2);
    }
    fz_nested = fz_body == body_jsonl || fz_body == body_runjson || fz_body == body_rundir;
    fz_quiet = getenv("FUZZ_VERBOSE") ? fz_err_out() : fopen("/dev/null", "w");
    if (!fz_quiet) fz_quiet = fz_err_out();
    /* scratch files in memory where there is a tmpfs (a disk write costs milliseconds) */
    snprintf(fz_dir, sizeof fz_dir, "%s/srlm-fuzz-%010lu", platform_is_dir("/dev/shm") ? "/dev/shm" : "/tmp", (unsigned long)getpid());
    if (mkdir(fz_dir, 0700) != 0 && errno != EEXIST) { fprintf(fz_err_out(), "fuzz: cannot make %s\n", fz_dir); exit(2); }
    atexit(fz_cleanup);
    /* the shipped tokenizer (run from the repository's top directory, or set SRLM_FUZZ_TOKENIZER) */
    tok_path = getenv("SRLM_FUZZ_TOKENIZER") ? getenv("SRLM_FUZZ_TOKENIZER") : "tiny_models/tokenizer.tok";
    {
        uint8_t *data;
        size_t n;
        char err[200];
        if (read_file(tok_path, &data, &n) != 0 || tok_deserialize(&fz_tok, data, n, err, sizeof err) != 0) {
            fprintf(fz_err_out(), "fuzz: cannot load %s (run from the repository's top directory)\n", tok_path);
            exit(2);
        }
        free(data);
    }
    run_defaults(&fz_rc, "tiny");
    fz_rc.dir = fz_dir;
    {   /* the models' files exist (the report prints their digests); their bytes do not matter */
        const char *models[] = {"sft.ckpt", "m1.ckpt", "m2.ckpt", "m3.ckpt", "m2pos.ckpt"};
        for (i = 0; i < 5; i++) free(fz_put(models[i], (const uint8_t *)"model", 5));
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) {
    if (fz_nested) fz_body(d, n);
    else fz_try(fz_body, d, n);
    return 0;
}
