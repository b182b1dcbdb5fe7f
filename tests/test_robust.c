/* test_robust.c - hostile input (issue 23): each test makes its own bad
 * input and checks the one-line refusal; each one failed (a crash, a
 * sanitizer report, a wrong or missing refusal, or an allocation far beyond
 * the input's size) before its fix. Includes srlm.c to reach its readers. */
#define SRLM_NO_MAIN
#include "../srlm.c"
#include "check.h"

#include <dirent.h>
#include <sys/resource.h>
#include <sys/wait.h>

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif
#ifndef UNDER_ASAN
#define UNDER_ASAN 0
#endif

static Config small_cfg(void) {
    Config c;
    c.dim = 8; c.n_layers = 1; c.n_heads = 2; c.n_kv_heads = 2; c.hidden_dim = 12;
    c.vocab_size = 264; c.max_seq_len = 16; c.tied = 0; c.rope_theta = 10000.0f; c.norm_eps = 1e-5f;
    return c;
}

static void small_model(Model *m) {
    memset(m, 0, sizeof *m);
    m->cfg = small_cfg();
    model_init_buffers(m);
    model_init_random(m, 5);
}

/* Run fn in a child whose address space is capped (not under ASan, whose
 * shadow memory needs terabytes of address space): an importer that
 * allocates from the header before checking the tensors runs out of memory
 * there and dies, instead of refusing. Returns the child's exit status. */
static int run_capped(void (*fn)(void), size_t cap_bytes) {
    pid_t pid;
    int st;
    fflush(stdout);
    pid = fork();
    if (pid == 0) {
        struct rlimit rl;
        rl.rlim_cur = rl.rlim_max = (rlim_t)cap_bytes;
        if (!UNDER_ASAN) setrlimit(RLIMIT_AS, &rl);
        fn();
        _exit(0);
    }
    if (pid < 0 || waitpid(pid, &st, 0) != pid) return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
}

/* ---- defect 1: a 7-dim shape of huge numbers in the HF importer's message ---- */
static void test_hf_shape_message_bounded(void) {
    Model m, out;
    Buf st = {0, 0, 0}, cfg = {0, 0, 0}, hdr = {0, 0, 0};
    const char *why;
    size_t i;
    small_model(&m);
    hf_config_build(&cfg, &m.cfg, XD_F32);
    /* one tensor named as the embedding, 7 dims of 16 digits after a 0 (so it has no bytes) */
    buf_str(&hdr, "{\"model.embed_tokens.weight\": {\"dtype\": \"F32\", \"shape\": [0, 9007199254740992, 9007199254740992, "
                  "9007199254740992, 9007199254740992, 9007199254740992, 9007199254740992], \"data_offsets\": [0, 0]}}");
    buf_u64(&st, hdr.n);
    buf_put(&st, hdr.p, hdr.n);
    why = hf_import(&out, NULL, (const char *)cfg.p, cfg.n, st.p, st.n, 0);
    CHECK(why != NULL, "accepted a 7-dim embedding");
    if (why) {
        CHECK(strstr(why, "...]") && strstr(why, "config.json needs [264, 8]"), "message: %s", why);
        for (i = 0; why[i]; i++) CHECK((unsigned char)why[i] >= 0x20 && (unsigned char)why[i] < 0x7f, "byte %lu of the message", (unsigned long)i);
    }
    free(st.p); free(cfg.p); free(hdr.p);
    model_free(&m);
}

/* ---- defect 2: json_get on a damaged (truncated) object ---- */
static void test_json_get_on_damaged_object(void) {
    static const char *damaged[] = {"{\"pairwise_accuracy\": 0.5, \"be", "{\"a", "{\"a\"", "{\"a\": ", "{\"a\" 1}", "{\"a\": [1, 2",
                                    "{\"a\": \"x", "{\"\\", "{\"a\": 1, \"b\"", "{\"a\": tru"};
    size_t i;
    for (i = 0; i < sizeof damaged / sizeof damaged[0]; i++) {
        JsonSpan v;
        const char *p = damaged[i];
        int found = json_get(p, p + strlen(p), "best5", &v);
        CHECK(!found, "found a key in damaged text %s", p);
        CHECK(!json_is_object(p, p + strlen(p)), "damaged text %s passed as an object", p);
    }
    {   /* a well-formed object still works */
        const char *p = "{\"a\": 1, \"best5\": 0.25}";
        JsonSpan v;
        double d = 0;
        CHECK(json_get(p, p + strlen(p), "best5", &v) && json_number(v, &d) && d == 0.25, "well-formed lookup");
    }
}

/* ---- defect 3: importers allocate the claimed model before checking a tensor ---- */
static void hf_huge_claim(void) {
    /* 185 bytes of config claiming a big model, and a safetensors with no tensors */
    const char *cfg = "{\"architectures\": [\"LlamaForCausalLM\"], \"model_type\": \"llama\", \"hidden_size\": 8192, "
                      "\"intermediate_size\": 65536, \"num_hidden_layers\": 64, \"num_attention_heads\": 1, "
                      "\"vocab_size\": 65536, \"max_position_embeddings\": 65536}";
    uint8_t st[10] = {2, 0, 0, 0, 0, 0, 0, 0, '{', '}'};
    Model m;
    const char *why = hf_import(&m, NULL, cfg, strlen(cfg), st, sizeof st, 0);
    _exit(why && strstr(why, "no tensor \"model.embed_tokens.weight\"") ? 0 : 3);
}

static void gguf_huge_claim(void) {
    Model m, out;
    Tokenizer tok;
    Buf g = {0, 0, 0};
    const char *why;
    size_t i, klen = strlen("llama.block_count");
    small_model(&m);
    if (tok_train(&tok, (const uint8_t *)"", 0, 0, 0) != 0) _exit(4);
    gguf_build(&g, &m, &tok, "x", XD_F32);
    for (i = 0; i + klen < g.n; i++)  /* the key, then its u32 type, then the value */
        if (memcmp(g.p + i, "llama.block_count", klen) == 0) { le_put_u32(g.p + i + klen + 4, 256); break; }
    for (i = 0; i + 22 < g.n; i++)
        if (memcmp(g.p + i, "llama.context_length", 20) == 0) { le_put_u32(g.p + i + 20 + 4, 65536); break; }
    for (i = 0; i + 22 < g.n; i++)
        if (memcmp(g.p + i, "llama.feed_forward_length", 25) == 0) { le_put_u32(g.p + i + 25 + 4, 65536); break; }
    why = gguf_import(&out, NULL, g.p, g.n, 0);
    if (!(why && strstr(why, "the config needs [8, 65536]"))) { fprintf(stderr, "gguf: %s\n", why ? why : "accepted"); _exit(3); }
    _exit(0);
}

static void test_importers_check_tensors_before_allocating(void) {
    int rc = run_capped(hf_huge_claim, (size_t)512 << 20);
    CHECK(rc == 0, "HF: a 185-byte claim of a big model was not refused cheaply (child status %d)", rc);
    rc = run_capped(gguf_huge_claim, (size_t)512 << 20);
    CHECK(rc == 0, "GGUF: a small file claiming 256 layers was not refused cheaply (child status %d)", rc);
}

/* ---- defect 4: head_dim x n_heads overflows an int ---- */
static void test_head_dim_overflow_refused(void) {
    const char *cfg = "{\"architectures\": [\"LlamaForCausalLM\"], \"model_type\": \"llama\", \"hidden_size\": 16, "
                      "\"intermediate_size\": 8, \"num_hidden_layers\": 1, \"num_attention_heads\": 8, \"head_dim\": 536870914, "
                      "\"vocab_size\": 264, \"max_position_embeddings\": 16}";
    Config c;
    const char *why = hf_config_parse(&c, cfg, strlen(cfg), 0);
    CHECK(why && strstr(why, "head_dim 536870914 x 8 heads != hidden_size 16"), "%s", why ? why : "accepted");
}

/* ---- defect 5: an empty put into an empty buffer ---- */
static void test_buf_put_empty(void) {
    Buf b = {0, 0, 0};
    buf_put(&b, "", 0);
    CHECK(b.n == 0 && b.p == NULL, "n %lu", (unsigned long)b.n);
    buf_put(&b, "ab", 2);
    buf_put(&b, "", 0);
    CHECK(b.n == 2 && memcmp(b.p, "ab", 2) == 0, "n %lu", (unsigned long)b.n);
    free(b.p);
}

/* ---- defect 14: JSON strings that a C string cannot hold faithfully ---- */
static void test_json_strings_strict(void) {
    static const struct { const char *text; const char *why; } bad[] = {
        {"\"a\\u0000b\"", "\\u0000"}, {"\"\\ud800\"", "unpaired surrogate"}, {"\"\\udc00x\"", "unpaired surrogate"},
        {"\"\\ud800\\u0041\"", "unpaired surrogate"}, {"\"a\xff" "b\"", "not valid UTF-8"}, {"\"\xc0\xaf\"", "not valid UTF-8"},
        {"\"\xed\xa0\x80\"", "not valid UTF-8"}, {"\"\\x41\"", "unknown escape"}, {"\"\\u12\"", "four hex digits"}};
    size_t i;
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        JsonSpan v;
        const char *why = NULL;
        char *s;
        v.p = bad[i].text; v.end = bad[i].text + strlen(bad[i].text);
        s = json_string_why(v, NULL, &why);
        CHECK(!s && why && strstr(why, bad[i].why), "case %lu: %s", (unsigned long)i, s ? s : why ? why : "?");
        free(s);
    }
    {
        JsonSpan v;
        size_t len;
        char *s;
        const char *ok = "\"\\ud83d\\ude00 \xc3\xa9\\n\\/\"";
        v.p = ok; v.end = ok + strlen(ok);
        s = json_string(v, &len);
        CHECK(s && len == 9 && memcmp(s, "\xf0\x9f\x98\x80 \xc3\xa9\n/", 9) == 0, "good string decoded");
        free(s);
    }
    /* a JSONL line with a bad escape is not an object (json_skip checks escapes too) */
    CHECK(!json_is_object("{\"a\": \"\\q\"}", "{\"a\": \"\\q\"}" + 11), "bad escape accepted by json_skip");
}

/* ---- defect 8: temp files are unique and never left behind by a write ---- */
static int count_tmp(const char *dir) {
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;
    if (!d) return -1;
    while ((e = readdir(d)) != NULL) {
        size_t l = strlen(e->d_name);
        if (l > 4 && strcmp(e->d_name + l - 4, ".tmp") == 0) n++;
    }
    closedir(d);
    return n;
}

static void test_atomic_write_temp_files(void) {
    char dir[] = "/tmp/srlm_robust_XXXXXX", path[128], stale[160], bad[160];
    uint8_t *data;
    size_t n;
    FILE *f;
    if (!mkdtemp(dir)) { CHECK(0, "mkdtemp"); return; }
    snprintf(path, sizeof path, "%s/out.bin", dir);
    snprintf(stale, sizeof stale, "%s/out.bin.tmp", dir);   /* what an old srlm left after a kill */
    f = fopen(stale, "wb"); fputs("stale half", f); fclose(f);
    CHECK(write_file_atomic(path, "hello", 5) == 0, "write");
    CHECK(read_file(path, &data, &n) == 0 && n == 5 && memcmp(data, "hello", 5) == 0, "content");
    free(data);
    CHECK(count_tmp(dir) == 1, "%d temp files (only the stale one may remain)", count_tmp(dir));
    /* a failing write (the target is a directory: the rename fails) removes its temp file */
    snprintf(bad, sizeof bad, "%s/sub", dir);
    mkdir(bad, 0777);
    CHECK(write_file_atomic(bad, "x", 1) != 0, "rename over a directory succeeded");
    CHECK(count_tmp(dir) == 1, "a failed write left a temp file (%d)", count_tmp(dir));
    CHECK(run_clean_tmp(dir) == 1 && count_tmp(dir) == 0, "stale temp files cleaned");
    remove(path); remove(bad); rmdir(dir);
}

/* ---- defect 15/16: reading a device or a directory ---- */
static void test_read_bounds(void) {
    uint8_t *data = NULL;
    size_t n = 0;
    CHECK(read_file("/tmp", &data, &n) != 0, "read a directory");
    CHECK(ckpt_read("/dev/zero", &data, &n) == 0 && n <= CKPT_HEADER_BYTES + 4 + 1, "ckpt_read of /dev/zero read %lu bytes",
          (unsigned long)n);
    free(data);
}

int main(void) {
    RUN(test_hf_shape_message_bounded);
    RUN(test_json_get_on_damaged_object);
    RUN(test_importers_check_tensors_before_allocating);
    RUN(test_head_dim_overflow_refused);
    RUN(test_buf_put_empty);
    RUN(test_json_strings_strict);
    RUN(test_atomic_write_temp_files);
    RUN(test_read_bounds);
    return check_summary();
}
