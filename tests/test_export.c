/* test_export.c - export and import (Hugging Face safetensors, llama2.c,
 * GGUF) and the reference-vectors pack: round trips give byte-identical
 * checkpoints, the HF q/k row permutation is the stated one, F16/BF16
 * import converts exactly, malformed safetensors and GGUF headers are
 * refused with the right reason (never a crash, also for every truncation
 * and thousands of flipped bytes), and the vectors pack is well formed and
 * agrees with the model. Includes srlm.c to reach its internals. */
#define SRLM_NO_MAIN
#include "../srlm.c"
#include "check.h"

static Config cfg_of(int vocab, int n_kv_heads, int tied, float theta, float eps) {
    Config c;
    c.dim = 8; c.n_layers = 2; c.n_heads = 2; c.n_kv_heads = n_kv_heads; c.hidden_dim = 12;
    c.vocab_size = vocab; c.max_seq_len = 16; c.tied = tied; c.rope_theta = theta; c.norm_eps = eps;
    return c;
}

/* A random model; with dyadic = 1 every weight is k/64 (|k| <= 32), exact in F16 and BF16. */
static void make_model(Model *m, Config c, uint64_t seed, int dyadic) {
    size_t i;
    Rng r;
    memset(m, 0, sizeof *m);
    m->cfg = c;
    model_init_buffers(m);
    model_init_random(m, seed);
    rng_init(&r, seed, 77);
    for (i = 0; i < m->n_params; i++) {
        if (dyadic) m->params[i] = (float)((int)rng_below(&r, 65) - 32) / 64.0f;
        else m->params[i] += 0.01f * rng_normal(&r); /* norms away from exactly 1 */
    }
}

static void ckpt_bytes(Buf *b, const Model *m, const char *meta) { memset(b, 0, sizeof *b); ckpt_serialize(b, m, meta); }

static int bufs_equal(const Buf *a, const Buf *b) { return a->n == b->n && memcmp(a->p, b->p, a->n) == 0; }

/* A small trained tokenizer whose vocabulary the models below use. */
static void small_tokenizer(Tokenizer *tok) {
    static const char *text = "the cat sat on the mat; the dog sat on the log. Über café naïve  \t spaced words 123\n";
    Buf b = {0, 0, 0};
    int i;
    for (i = 0; i < 20; i++) buf_str(&b, text);
    tok_train(tok, b.p, b.n, 30, 1);
    free(b.p);
}

/* ---------------------------------------------------------------- round trips */

static void roundtrip_hf(Config c, const char *meta) {
    Model m, back;
    Buf orig, st = {0, 0, 0}, cj = {0, 0, 0}, again;
    char *meta_back = NULL;
    const char *why;
    make_model(&m, c, 11, 0);
    ckpt_bytes(&orig, &m, meta);
    st_build(&st, &m, meta, XD_F32);
    hf_config_build(&cj, &m.cfg, XD_F32);
    why = hf_import(&back, &meta_back, (const char *)cj.p, cj.n, st.p, st.n, 0);
    CHECK(why == NULL, "hf import failed: %s", why ? why : "");
    if (!why) {
        ckpt_bytes(&again, &back, meta_back);
        CHECK(bufs_equal(&orig, &again), "hf round trip is not byte-identical (%lu vs %lu bytes)", (unsigned long)orig.n, (unsigned long)again.n);
        CHECK(strcmp(meta_back, meta) == 0, "meta came back as '%s'", meta_back);
        free(again.p); free(meta_back); model_free(&back);
    }
    free(orig.p); free(st.p); free(cj.p);
    model_free(&m);
}

static void test_roundtrip_hf_gqa(void) { roundtrip_hf(cfg_of(264, 1, 0, 10000.0f, 1e-5f), "srlm train steps=3 \"quoted\" \xc3\x9c\xe2\x82\xac"); }
static void test_roundtrip_hf_tied(void) { roundtrip_hf(cfg_of(300, 2, 1, 500.0f, 1e-6f), "tied model\twith a tab\nand a newline"); }

static void roundtrip_gguf(Config c, const Tokenizer *tok) {
    Model m, back;
    Buf orig, g = {0, 0, 0}, again;
    char *meta_back = NULL;
    const char *why, *meta = "gguf round trip meta";
    make_model(&m, c, 12, 0);
    ckpt_bytes(&orig, &m, meta);
    gguf_build(&g, &m, tok, meta, XD_F32);
    why = gguf_import(&back, &meta_back, g.p, g.n, 0);
    CHECK(why == NULL, "gguf import failed: %s", why ? why : "");
    if (!why) {
        ckpt_bytes(&again, &back, meta_back);
        CHECK(bufs_equal(&orig, &again), "gguf round trip is not byte-identical");
        free(again.p); free(meta_back); model_free(&back);
    }
    free(orig.p); free(g.p);
    model_free(&m);
}

static void test_roundtrip_gguf(void) {
    Tokenizer tok;
    small_tokenizer(&tok);
    roundtrip_gguf(cfg_of(tok_vocab_size(&tok), 1, 0, 10000.0f, 1e-5f), &tok);
    roundtrip_gguf(cfg_of(tok_vocab_size(&tok), 2, 1, 250.0f, 3e-6f), &tok);
    tok_free(&tok);
}

/* llama2.c has no room for meta: import writes "srlm import llama2c", so a
 * checkpoint carrying that meta comes back byte for byte. */
static void test_roundtrip_llama2c(void) {
    int tied;
    for (tied = 0; tied < 2; tied++) {
        Model m, back;
        Buf orig, l = {0, 0, 0}, again;
        const char *why;
        make_model(&m, cfg_of(264, 1, tied, 10000.0f, 1e-5f), 13, 0);
        ckpt_bytes(&orig, &m, "srlm import llama2c");
        why = l2c_build(&l, &m);
        CHECK(why == NULL, "llama2c export failed: %s", why ? why : "");
        /* header: dim, hidden, layers, heads, kv heads, +-vocab (negative: own classifier), seq_len */
        CHECK((int32_t)le_get_u32(l.p + 20) == (tied ? 264 : -264), "vocab field %d", (int)(int32_t)le_get_u32(l.p + 20));
        CHECK(l.n == 28 + 4 * (m.n_params + 2 * 16 * (4 / 2)), "file size %lu", (unsigned long)l.n); /* + cos, sin tables */
        why = l2c_parse(&back, l.p, l.n);
        CHECK(why == NULL, "llama2c import failed: %s", why ? why : "");
        if (!why) {
            ckpt_bytes(&again, &back, "srlm import llama2c");
            CHECK(bufs_equal(&orig, &again), "llama2c round trip (tied=%d) is not byte-identical", tied);
            free(again.p); model_free(&back);
        }
        /* the refusals */
        CHECK(l2c_parse(&back, l.p, l.n - 4) && strstr(xf_msg, "truncated"), "%s", xf_msg);
        buf_u32(&l, 0);
        CHECK(l2c_parse(&back, l.p, l.n) && strstr(xf_msg, "more than this config needs"), "%s", xf_msg);
        le_put_u32(l.p, 0x616b3432u);
        CHECK(l2c_parse(&back, l.p, l.n) && strstr(xf_msg, "ak42"), "%s", xf_msg);
        free(orig.p); free(l.p);
        model_free(&m);
    }
}

static void test_llama2c_refuses_other_rope(void) {
    Model m;
    Buf l = {0, 0, 0};
    make_model(&m, cfg_of(264, 1, 0, 500.0f, 1e-5f), 14, 0);
    CHECK(l2c_build(&l, &m) != NULL && strstr(xf_msg, "rope_theta 10000"), "%s", xf_msg);
    model_free(&m);
    make_model(&m, cfg_of(264, 1, 0, 10000.0f, 1e-6f), 14, 0);
    CHECK(l2c_build(&l, &m) != NULL && strstr(xf_msg, "norm_eps"), "%s", xf_msg);
    model_free(&m);
    free(l.p);
}

/* ---------------------------------------------------------------- the HF layout */

/* The exported q_proj / k_proj rows are srlm's rows permuted within each head:
 * HF row h*hd + a*hd/2 + i = srlm row h*hd + 2i + a; other tensors are copied. */
static void test_hf_rope_permutation(void) {
    Model m;
    Buf st = {0, 0, 0};
    StFile f;
    const char *why;
    int t, bad = 0, checked = 0;
    Config c = cfg_of(264, 1, 0, 10000.0f, 1e-5f);
    c.dim = 16; c.n_heads = 2; /* head_dim 8: four pairs per head */
    make_model(&m, c, 15, 0);
    st_build(&st, &m, "x", XD_F32);
    why = st_parse(&f, st.p, st.n);
    CHECK(why == NULL, "%s", why ? why : "");
    if (why) { free(st.p); model_free(&m); return; }
    for (t = 0; t < f.n; t++) {
        const StTensor *x = &f.t[t];
        int is_q = strstr(x->name, "q_proj") != NULL, is_k = strstr(x->name, "k_proj") != NULL, layer;
        size_t rows = x->shape[0], cols = x->ndim > 1 ? x->shape[1] : 1, hd = 8, r, k;
        const float *src;
        if (!is_q && !is_k && strcmp(x->name, "model.layers.1.mlp.down_proj.weight") != 0) continue;
        layer = x->name[13] - '0';
        src = is_q ? m.w.wq + (size_t)layer * rows * cols : is_k ? m.w.wk + (size_t)layer * rows * cols
                   : m.w.w2 + (size_t)layer * rows * cols;
        for (r = 0; r < rows; r++) {
            size_t h = r / hd, within = r % hd, a = within / (hd / 2), i = within % (hd / 2);
            size_t srow = (is_q || is_k) ? h * hd + 2 * i + a : r;
            for (k = 0; k < cols; k++) {
                checked++;
                if (le_get_f32(f.data + x->begin + 4 * (r * cols + k)) != src[srow * cols + k]) bad++;
            }
        }
    }
    CHECK(checked > 0 && bad == 0, "%d of %d entries not where the permutation puts them", bad, checked);
    st_free(&f);
    free(st.p);
    model_free(&m);
}

/* Rewrite an F32 safetensors image with dtype F16 or BF16 (values must be exact in it). */
static void to_half(Buf *out, const uint8_t *p, size_t n, int bf16) {
    StFile f;
    Buf h = {0, 0, 0};
    int i;
    size_t off = 0, j;
    if (st_parse(&f, p, n)) { fprintf(stderr, "%s\n", xf_msg); exit(1); }
    buf_str(&h, "{\"__metadata__\":{\"format\":\"pt\",\"srlm.meta\":\"half\"}");
    for (i = 0; i < f.n; i++) {
        size_t bytes = (f.t[i].end - f.t[i].begin) / 2;
        buf_printf(&h, ",\"%s\":{\"dtype\":\"%s\",\"shape\":[%lu", f.t[i].name, bf16 ? "BF16" : "F16", (unsigned long)f.t[i].shape[0]);
        if (f.t[i].ndim > 1) buf_printf(&h, ",%lu", (unsigned long)f.t[i].shape[1]);
        buf_printf(&h, "],\"data_offsets\":[%lu,%lu]}", (unsigned long)off, (unsigned long)(off + bytes));
        off += bytes;
    }
    buf_str(&h, "}");
    memset(out, 0, sizeof *out);
    buf_u64(out, h.n);
    buf_put(out, h.p, h.n);
    for (i = 0; i < f.n; i++) {
        for (j = f.t[i].begin; j < f.t[i].end; j += 4) {
            uint32_t u = le_get_u32(f.data + j), e = (u >> 23) & 255, half;
            uint8_t two[2];
            if (bf16) half = u >> 16;
            else if (e == 0) half = (u >> 16) & 0x8000u; /* only zero reaches here */
            else half = ((u >> 16) & 0x8000u) | ((e - 112u) << 10) | ((u >> 13) & 1023u);
            two[0] = (uint8_t)half; two[1] = (uint8_t)(half >> 8);
            buf_put(out, two, 2);
        }
    }
    st_free(&f);
    free(h.p);
}

static void test_hf_import_f16_bf16(void) {
    Model m, back;
    Buf st = {0, 0, 0}, cj = {0, 0, 0}, half, want, got;
    int bf16;
    make_model(&m, cfg_of(264, 1, 0, 10000.0f, 1e-5f), 16, 1);
    st_build(&st, &m, "half", XD_F32);
    hf_config_build(&cj, &m.cfg, XD_F32);
    ckpt_bytes(&want, &m, "half");
    for (bf16 = 0; bf16 < 2; bf16++) {
        const char *why;
        char *meta = NULL;
        to_half(&half, st.p, st.n, bf16);
        why = hf_import(&back, &meta, (const char *)cj.p, cj.n, half.p, half.n, 0);
        CHECK(why == NULL, "%s import: %s", bf16 ? "BF16" : "F16", why ? why : "");
        if (!why) {
            ckpt_bytes(&got, &back, meta);
            CHECK(bufs_equal(&want, &got), "%s import did not give the exact weights", bf16 ? "BF16" : "F16");
            free(got.p); free(meta); model_free(&back);
        }
        free(half.p);
    }
    /* F16 corner cases: subnormals, infinities, signs */
    CHECK(f16_to_f32(0x0001) == 5.9604644775390625e-8f, "smallest subnormal");
    CHECK(f16_to_f32(0x3c00) == 1.0f && f16_to_f32(0xc000) == -2.0f && f16_to_f32(0x7bff) == 65504.0f, "normals");
    CHECK(!f32_isfinite(f16_to_f32(0x7c00)) && f16_to_f32(0x8000) == 0.0f, "inf and -0");
    free(st.p); free(cj.p); free(want.p);
    model_free(&m);
}

/* config.json refusals: other architectures and features srlm does not have */
static void test_hf_config_refusals(void) {
    static const struct { const char *json, *want; } cases[] = {
        {"{\"model_type\":\"mistral\",\"architectures\":[\"MistralForCausalLM\"]}", "model_type"},
        {"{\"architectures\":[\"GPT2LMHeadModel\"]}", "unsupported architecture"},
        {"{\"hidden_size\":8}", "cannot tell the architecture"},
        {"{\"model_type\":\"llama\",\"hidden_act\":\"gelu\"}", "hidden_act"},
        {"{\"model_type\":\"llama\",\"rope_scaling\":{\"type\":\"linear\",\"factor\":2}}", "rope_scaling"},
        {"{\"model_type\":\"llama\",\"attention_bias\":true}", "attention_bias"},
        {"{\"model_type\":\"llama\",\"hidden_size\":8}", "intermediate_size"},
        {"{\"model_type\":\"llama\",\"hidden_size\":8,\"intermediate_size\":12,\"num_hidden_layers\":1,\"num_attention_heads\":3,"
         "\"vocab_size\":10,\"max_position_embeddings\":8}", "n_heads must divide dim"},
        {"{\"model_type\":\"llama\",\"hidden_size\":8,\"intermediate_size\":12,\"num_hidden_layers\":1,\"num_attention_heads\":2,"
         "\"vocab_size\":10,\"max_position_embeddings\":8,\"head_dim\":16}", "head_dim"},
        {"{\"model_type\":\"llama\",\"hidden_size\":-8}", "non-negative integer"},
        {"{\"model_type\":\"llama\"", "well-formed"},
        {"\xff{}", "well-formed"},
    };
    size_t i;
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        Config c;
        const char *why = hf_config_parse(&c, cases[i].json, strlen(cases[i].json), 0);
        CHECK(why && strstr(why, cases[i].want), "case %lu: want '%s', got '%s'", (unsigned long)i, cases[i].want, why ? why : "accepted");
    }
}

/* ---------------------------------------------------------------- malformed safetensors */

static void st_image(Buf *b, const char *header, size_t header_len, size_t data_len) {
    memset(b, 0, sizeof *b);
    buf_u64(b, header_len);
    buf_put(b, header, header_len);
    buf_reserve(b, data_len);
    memset(b->p + b->n, 0, data_len);
    b->n += data_len;
}

static void test_safetensors_malformed(void) {
    static const struct { const char *header; size_t data; const char *want; } cases[] = {
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, NULL},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12, "overlap"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[12,16]}}", 16, "hole"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12, "hole"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 12, "after the last tensor"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8, "needs 12"},
        {"{\"a\":{\"dtype\":\"F16\",\"shape\":[2,2],\"data_offsets\":[0,16]}}", 16, "needs 8"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,800]}}", 8, "past the end of the data"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", 8, "backwards"},
        {"{\"a\":{\"dtype\":\"Q4\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "unknown dtype"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2.5],\"data_offsets\":[0,8]}}", 8, "non-negative integer"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8, "non-negative integer"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0]}}", 8, "two non-negative"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2]}}", 8, "data_offsets"},
        {"{\"a\":{\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "dtype"},
        {"{\"a\":[1,2]}", 8, "not an object"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}", 16, "appears twice"},
        {"{\"__metadata__\":{\"format\":1}}", 0, "must be strings"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}", 8, "well-formed"},   /* unterminated */
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}}", 8, "well-formed"}, /* extra brace */
        {"{\"a\xff\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "UTF-8"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}} \xc0\xaf", 8, "UTF-8"},   /* overlong */
        {"[1,2]", 0, "well-formed"},
        {"", 0, "well-formed"},
    };
    size_t i;
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        Buf b;
        StFile f;
        const char *why;
        st_image(&b, cases[i].header, strlen(cases[i].header), cases[i].data);
        why = st_parse(&f, b.p, b.n);
        if (!cases[i].want) { CHECK(why == NULL, "case %lu refused: %s", (unsigned long)i, why); if (!why) st_free(&f); }
        else CHECK(why && strstr(why, cases[i].want), "case %lu: want '%s', got '%s'", (unsigned long)i, cases[i].want, why ? why : "accepted");
        free(b.p);
    }
    {   /* header length past the end of the file, and absurd */
        Buf b;
        StFile f;
        st_image(&b, "{}", 2, 0);
        le_put_u64(b.p, 3);
        CHECK(st_parse(&f, b.p, b.n) && strstr(xf_msg, "runs past the end"), "%s", xf_msg);
        le_put_u64(b.p, UINT64_MAX);
        CHECK(st_parse(&f, b.p, b.n) && strstr(xf_msg, "runs past the end"), "%s", xf_msg);
        CHECK(st_parse(&f, b.p, 5) && strstr(xf_msg, "too short"), "%s", xf_msg);
        free(b.p);
    }
}

/* Every truncation of a real export is refused; flipped header bytes never crash. */
static void test_safetensors_truncation_and_flips(void) {
    Model m;
    Buf st = {0, 0, 0}, cj = {0, 0, 0};
    size_t cut, hlen;
    int refused = 0, total = 0, k;
    Rng r;
    make_model(&m, cfg_of(264, 1, 0, 10000.0f, 1e-5f), 17, 0);
    st_build(&st, &m, "t", XD_F32);
    hf_config_build(&cj, &m.cfg, XD_F32);
    for (cut = 0; cut < st.n; cut += cut < 2000 ? 1 : 97) {
        StFile f;
        total++;
        if (st_parse(&f, st.p, cut)) refused++;
        else st_free(&f);
    }
    CHECK(refused == total, "%d of %d truncations accepted", total - refused, total);
    hlen = (size_t)le_get_u64(st.p);
    rng_init(&r, 5, 9);
    for (k = 0; k < 3000; k++) {
        Buf b = {0, 0, 0};
        Model back;
        char *meta = NULL;
        size_t at = 8 + rng_below(&r, (uint32_t)hlen);
        buf_put(&b, st.p, st.n);
        b.p[at] = (uint8_t)rng_below(&r, 256);
        if (!hf_import(&back, &meta, (const char *)cj.p, cj.n, b.p, b.n, 0)) { free(meta); model_free(&back); }
        free(b.p);
    }
    CHECK(1, "no crash");
    free(st.p); free(cj.p);
    model_free(&m);
}

static void test_hf_import_tensor_refusals(void) {
    Model m, back;
    Buf st = {0, 0, 0}, cj = {0, 0, 0}, b;
    char *meta = NULL;
    const char *why;
    static const char *extra = "{\"model.layers.0.self_attn.q_proj.bias\":{\"dtype\":\"F32\",\"shape\":[8],\"data_offsets\":[0,32]}}";
    static const char *i64 = "{\"a\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[0,8]}}";
    make_model(&m, cfg_of(264, 1, 0, 10000.0f, 1e-5f), 18, 0);
    hf_config_build(&cj, &m.cfg, XD_F32);
    st_image(&b, extra, strlen(extra), 32);
    why = hf_import(&back, &meta, (const char *)cj.p, cj.n, b.p, b.n, 0);
    CHECK(why && strstr(why, "no tensor \"model.embed_tokens.weight\""), "%s", why ? why : "accepted");
    free(b.p);
    /* a full export plus one unexpected tensor */
    st_build(&st, &m, "x", XD_F32);
    {
        StFile f;
        Buf h = {0, 0, 0};
        size_t hl = (size_t)le_get_u64(st.p), dl;
        st_parse(&f, st.p, st.n);
        dl = f.data_len;
        buf_put(&h, st.p + 8, hl);
        while (h.n && h.p[h.n - 1] == ' ') h.n--;
        h.n--; /* drop the closing brace */
        buf_printf(&h, ",\"model.layers.0.self_attn.q_proj.bias\":{\"dtype\":\"F32\",\"shape\":[8],\"data_offsets\":[%lu,%lu]}}",
                   (unsigned long)dl, (unsigned long)(dl + 32));
        memset(&b, 0, sizeof b);
        buf_u64(&b, h.n); buf_put(&b, h.p, h.n); buf_put(&b, f.data, dl);
        buf_reserve(&b, 32); memset(b.p + b.n, 0, 32); b.n += 32;
        why = hf_import(&back, &meta, (const char *)cj.p, cj.n, b.p, b.n, 0);
        CHECK(why && strstr(why, "unexpected tensor"), "%s", why ? why : "accepted");
        st_free(&f); free(h.p); free(b.p);
    }
    /* a wrong shape */
    {
        Config c2 = m.cfg;
        Buf cj2 = {0, 0, 0};
        c2.hidden_dim = 16;
        hf_config_build(&cj2, &c2, XD_F32);
        why = hf_import(&back, &meta, (const char *)cj2.p, cj2.n, st.p, st.n, 0);
        CHECK(why && strstr(why, "has shape [12, 8], config.json needs [16, 8]"), "%s", why ? why : "accepted");
        free(cj2.p);
    }
    /* an unsupported dtype (valid file) */
    {
        StFile f;
        st_image(&b, i64, strlen(i64), 8);
        why = st_parse(&f, b.p, b.n);
        CHECK(why == NULL, "a valid I64 file must parse: %s", why ? why : "");
        if (!why) {
            float out[1];
            CHECK(st_read_floats(&f, &f.t[0], out) && strstr(xf_msg, "imports F32, F16 and BF16"), "%s", xf_msg);
            st_free(&f);
        }
        free(b.p);
    }
    free(st.p); free(cj.p);
    model_free(&m);
}

/* ---------------------------------------------------------------- malformed GGUF */

/* A hand-made GGUF: one string key, then tensors given as (name, n_dims, ne0, type, offset), then data_len bytes. */
typedef struct { const char *name; uint32_t n_dims; uint64_t ne0; uint32_t type; uint64_t offset; } GgSpec;

static void gg_image(Buf *b, uint32_t version, const GgSpec *t, int nt, size_t data_len) {
    int i;
    memset(b, 0, sizeof *b);
    buf_put(b, "GGUF", 4);
    buf_u32(b, version);
    buf_u64(b, (uint64_t)nt);
    buf_u64(b, 1);
    gg_key(b, "general.architecture", GG_STR);
    gg_str(b, "llama", 5);
    for (i = 0; i < nt; i++) {
        uint32_t d;
        gg_str(b, t[i].name, strlen(t[i].name));
        buf_u32(b, t[i].n_dims);
        for (d = 0; d < t[i].n_dims && d < 8; d++) buf_u64(b, d == 0 ? t[i].ne0 : 1);
        buf_u32(b, t[i].type);
        buf_u64(b, t[i].offset);
    }
    gg_pad(b, 0);
    buf_reserve(b, data_len);
    memset(b->p + b->n, 0, data_len);
    b->n += data_len;
}

static void expect_gguf(const Buf *b, const char *want, const char *label) {
    GgFile g;
    const char *why = gguf_parse(&g, b->p, b->n);
    if (!want) { CHECK(why == NULL, "%s: refused: %s", label, why); if (!why) gg_free(&g); }
    else CHECK(why && strstr(why, want), "%s: want '%s', got '%s'", label, want, why ? why : "accepted");
}

static void test_gguf_malformed(void) {
    GgSpec ok2[2] = {{"a", 1, 4, 0, 0}, {"b", 1, 4, 0, 32}};
    GgSpec overlap[2] = {{"a", 1, 16, 0, 0}, {"b", 1, 4, 0, 32}};
    GgSpec hole[2] = {{"a", 1, 4, 0, 0}, {"b", 1, 4, 0, 64}};
    GgSpec misaligned[1] = {{"a", 1, 4, 0, 4}};
    GgSpec dims5[1] = {{"a", 5, 4, 0, 0}};
    GgSpec q4[1] = {{"a", 1, 32, 3, 0}}, q4ok[1] = {{"a", 1, 32, 2, 0}}, q8odd[1] = {{"a", 1, 16, 8, 0}};
    GgSpec dup[2] = {{"a", 1, 4, 0, 0}, {"a", 1, 4, 0, 32}};
    GgSpec badname[1] = {{"a\xff", 1, 4, 0, 0}};
    Buf b;
    gg_image(&b, 3, ok2, 2, 48); expect_gguf(&b, NULL, "valid"); free(b.p);
    gg_image(&b, 2, ok2, 2, 48); expect_gguf(&b, NULL, "valid v2"); free(b.p);
    gg_image(&b, 1, ok2, 2, 48); expect_gguf(&b, "unsupported GGUF version 1", "v1"); free(b.p);
    gg_image(&b, 3, ok2, 2, 40); expect_gguf(&b, "runs past the end", "data too short"); free(b.p);
    gg_image(&b, 3, ok2, 2, 48 + 64); expect_gguf(&b, "after the last tensor", "trailing"); free(b.p);
    gg_image(&b, 3, overlap, 2, 96); expect_gguf(&b, "overlap", "overlap"); free(b.p);
    gg_image(&b, 3, hole, 2, 80); expect_gguf(&b, "hole", "hole"); free(b.p);
    gg_image(&b, 3, misaligned, 1, 48); expect_gguf(&b, "not a multiple of the alignment", "misaligned"); free(b.p);
    gg_image(&b, 3, dims5, 1, 48); expect_gguf(&b, "dimensions", "5 dims"); free(b.p);
    gg_image(&b, 3, q4, 1, 48); expect_gguf(&b, "Q4_0 (2)", "Q4_1 (type 3) refused"); free(b.p);
    gg_image(&b, 3, q4ok, 1, 48); expect_gguf(&b, NULL, "Q4_0 accepted"); free(b.p);
    gg_image(&b, 3, q8odd, 1, 48); expect_gguf(&b, "blocks hold 32", "Q8_0 row of 16"); free(b.p);
    gg_image(&b, 3, dup, 2, 48); expect_gguf(&b, "appears twice", "duplicate tensor"); free(b.p);
    gg_image(&b, 3, badname, 1, 16); expect_gguf(&b, "UTF-8", "non-UTF-8 name"); free(b.p);
    gg_image(&b, 3, ok2, 2, 48); memcpy(b.p, "GGML", 4); expect_gguf(&b, "bad magic", "magic"); free(b.p);
    gg_image(&b, 3, ok2, 2, 48); le_put_u64(b.p + 16, 1ull << 40); expect_gguf(&b, "cannot fit", "kv count"); free(b.p);
    gg_image(&b, 3, ok2, 2, 48); le_put_u64(b.p + 8, UINT64_MAX); expect_gguf(&b, "cannot fit", "tensor count"); free(b.p);
    gg_image(&b, 3, ok2, 2, 48); le_put_u64(b.p + 24, 1ull << 50); expect_gguf(&b, "runs past the end", "key length"); free(b.p);
    gg_image(&b, 3, ok2, 2, 48); b.p[32] = 0xff; expect_gguf(&b, "UTF-8", "non-UTF-8 key"); free(b.p);
    gg_image(&b, 3, ok2, 2, 48); le_put_u32(b.p + 24 + 8 + 20, 13); expect_gguf(&b, "unknown value type 13", "value type"); free(b.p);
    gg_image(&b, 3, ok2, 2, 48); le_put_u64(b.p + 24 + 8 + 20 + 4, 1ull << 60); expect_gguf(&b, "runs past the end", "value length"); free(b.p);
    {   /* a duplicate key, a bad bool, an endless array, deep nesting */
        Buf k = {0, 0, 0};
        int kind;
        for (kind = 0; kind < 4; kind++) {
            int i;
            k.n = 0;
            buf_put(&k, "GGUF", 4); buf_u32(&k, 3); buf_u64(&k, 0); buf_u64(&k, kind == 0 ? 2 : 1);
            if (kind == 0) for (i = 0; i < 2; i++) { gg_key(&k, "x", GG_U32); buf_u32(&k, 1); }
            if (kind == 1) { gg_key(&k, "x", GG_BOOL); buf_put(&k, "\x02", 1); }
            if (kind == 2) { gg_key(&k, "x", GG_ARR); buf_u32(&k, GG_U32); buf_u64(&k, 1ull << 61); }
            if (kind == 3) { gg_key(&k, "x", GG_ARR); for (i = 0; i < 4; i++) { buf_u32(&k, GG_ARR); buf_u64(&k, 1); } buf_u32(&k, GG_U8); buf_u64(&k, 1); buf_put(&k, "", 1); }
            buf_reserve(&k, 64); memset(k.p + k.n, 0, 64); k.n += 8;
            expect_gguf(&k, kind == 0 ? "appears twice" : kind == 1 ? "bool" : kind == 2 ? "runs past the end" : "nested", "kv");
        }
        free(k.p);
    }
}

static void test_gguf_truncation_and_import_refusals(void) {
    Tokenizer tok;
    Model m, back;
    Buf g = {0, 0, 0};
    size_t cut;
    int accepted_early = 0, k;
    char *meta = NULL;
    Rng r;
    small_tokenizer(&tok);
    make_model(&m, cfg_of(tok_vocab_size(&tok), 1, 0, 10000.0f, 1e-5f), 19, 0);
    gguf_build(&g, &m, &tok, "t", XD_F32);
    for (cut = 0; cut + GGUF_ALIGN < g.n; cut += cut < 3000 ? 1 : 61) {
        GgFile f;
        if (!gguf_parse(&f, g.p, cut)) { accepted_early++; gg_free(&f); }
    }
    CHECK(accepted_early == 0, "%d truncations accepted", accepted_early);
    rng_init(&r, 6, 9);
    for (k = 0; k < 3000; k++) { /* flipped bytes in the metadata and tensor infos: never a crash */
        Buf b = {0, 0, 0};
        buf_put(&b, g.p, g.n);
        b.p[rng_below(&r, (uint32_t)(g.n < 6000 ? g.n : 6000))] = (uint8_t)rng_below(&r, 256);
        if (!gguf_import(&back, &meta, b.p, b.n, 0)) { free(meta); model_free(&back); }
        free(b.p);
    }
    {   /* a valid file of another architecture */
        Buf b = {0, 0, 0};
        size_t at = 24;
        buf_put(&b, g.p, g.n);
        while (at + 5 < b.n && memcmp(b.p + at, "llama", 5) != 0) at++; /* the general.architecture value */
        memcpy(b.p + at, "gpt2x", 5);
        CHECK(gguf_import(&back, &meta, b.p, b.n, 0) && strstr(xf_msg, "srlm imports \"llama\""), "%s", xf_msg);
        free(b.p);
    }
    free(g.p);
    tok_free(&tok);
    model_free(&m);
}

/* ---------------------------------------------------------------- tokenizers */

static void test_tokenizer_exports(void) {
    Tokenizer tok;
    Buf b = {0, 0, 0}, j = {0, 0, 0};
    size_t at = 4, len;
    int V, i, bad = 0, first = -1;
    small_tokenizer(&tok);
    V = tok_vocab_size(&tok);
    l2c_tokenizer_build(&b, &tok);
    for (i = 0; i < V && at + 8 <= b.n; i++) {
        const uint8_t *s = tok_token_bytes(&tok, i, &len);
        uint32_t n = le_get_u32(b.p + at + 4);
        float score = le_get_f32(b.p + at);
        if (i == 0) bad += n != 6 || memcmp(b.p + at + 8, "<0x00>", 6) != 0;
        else bad += n != len || memcmp(b.p + at + 8, s, len) != 0;
        bad += i >= TOK_FIRST_MERGE ? score != -(float)(i - TOK_FIRST_MERGE) : score != -1e10f;
        at += 8 + n;
    }
    CHECK(bad == 0 && i == V && at == b.n, "tokenizer.bin: %d bad entries, %d of %d ids, %lu of %lu bytes", bad, i, V,
          (unsigned long)at, (unsigned long)b.n);
    hf_tokenizer_build(&j, &tok);
    CHECK(json_is_object((const char *)j.p, (const char *)j.p + j.n) && utf8_valid((const char *)j.p, j.n), "tokenizer.json is not one JSON object");
    CHECK(strstr((const char *)j.p, "\"\xc4\xa0\":32,") != NULL, "the space byte is not spelled U+0120 in the vocab");
    CHECK(duplicate_spelling(&tok, &first) < 0, "a trained tokenizer with a duplicate spelling?");
    free(b.p); free(j.p);
    tok_free(&tok);
    {   /* two merge paths to "abc": (ab)c and a(bc) */
        Tokenizer d, back;
        uint8_t *img;
        size_t n;
        char err[128];
        int merges[8] = {'a', 'b', 'b', 'c', 264, 'c', 'a', 265}, second;
        memset(&d, 0, sizeof d);
        d.n_merges = 4; d.presplit = 0; d.merges = merges;
        tok_serialize(&d, &img, &n);
        CHECK(tok_deserialize(&back, img, n, err, sizeof err) == 0, "%s", err);
        second = duplicate_spelling(&back, &first);
        CHECK(second == 267 && first == 266, "duplicate spelling found %d/%d", first, second);
        free(img);
        tok_free(&back);
    }
    CHECK(byte_cp(' ') == 0x120 && byte_cp('A') == 'A' && byte_cp(0) == 0x100 && byte_cp(0xad) == 0x143 && byte_cp(0xff) == 0xff,
          "GPT-2 byte map");
}

/* ---------------------------------------------------------------- dtypes */

/* F16 and BF16: every finite half / bfloat comes back from float unchanged;
 * rounding is to nearest, ties to even; overflow to inf; tiny to 0. */
static void test_export_dtype_rounding(void) {
    uint32_t h;
    int bad16 = 0, badbf = 0;
    for (h = 0; h < 65536; h++) {
        float v = f16_to_f32((uint16_t)h), w = f32_from_bits(h << 16);
        if (((h >> 10) & 31) != 31 && f32_to_f16(v) != h) bad16++;
        if (((h >> 7) & 255) != 255 && f32_to_bf16(w) != h) badbf++;
    }
    CHECK(bad16 == 0 && badbf == 0, "%d halves, %d bfloats do not round-trip", bad16, badbf);
    CHECK(f32_to_f16(1.0f + 1.0f / 2048) == 0x3c00 && f32_to_f16(1.0f + 3.0f / 2048) == 0x3c02, "f16 ties to even");
    CHECK(f32_to_f16(65504.0f) == 0x7bff && f32_to_f16(65519.0f) == 0x7bff && f32_to_f16(65520.0f) == 0x7c00, "f16 overflow");
    CHECK(f32_to_f16(5.9604644775390625e-8f) == 1 && f32_to_f16(2.98023223876953125e-8f) == 0 && f32_to_f16(-1e-30f) == 0x8000,
          "f16 subnormals");
    CHECK(f32_to_bf16(f32_from_bits(0x3f808000u)) == 0x3f80 && f32_to_bf16(f32_from_bits(0x3f818000u)) == 0x3f82 &&
          f32_to_bf16(f32_from_bits(0x3f808001u)) == 0x3f81, "bf16 ties to even");
}

/* Export F16/BF16 GGUF and HF, import: the weights are the rounded ones
 * (GGUF norms stay F32); exporting the import again gives the same file. */
static void test_export_dtype_roundtrip(void) {
    Tokenizer tok;
    Model m, back;
    int dt;
    small_tokenizer(&tok);
    make_model(&m, cfg_of(tok_vocab_size(&tok), 1, 0, 10000.0f, 1e-5f), 21, 0);
    for (dt = XD_F16; dt <= XD_BF16; dt++) {
        Buf g = {0, 0, 0}, g2 = {0, 0, 0}, st = {0, 0, 0}, cj = {0, 0, 0};
        char *meta = NULL;
        const char *why;
        size_t i, bad = 0;
        gguf_build(&g, &m, &tok, "d", dt);
        why = gguf_import(&back, &meta, g.p, g.n, 0);
        CHECK(why == NULL, "%s gguf import: %s", dtype_name[dt], why ? why : "");
        if (!why) {
            for (i = 0; i < m.n_params; i++) {
                float w = m.params[i], r = dt == XD_F16 ? f16_to_f32(f32_to_f16(w)) : f32_from_bits((uint32_t)f32_to_bf16(w) << 16);
                if (f32_bits(back.params[i]) != f32_bits(r) && f32_bits(back.params[i]) != f32_bits(w)) bad++;
            }
            CHECK(bad == 0, "%s gguf: %lu weights are neither rounded nor (norms) exact", dtype_name[dt], (unsigned long)bad);
            gguf_build(&g2, &back, &tok, "d", dt);
            CHECK(bufs_equal(&g, &g2), "%s gguf: export of the import differs", dtype_name[dt]);
            free(meta); model_free(&back);
        }
        st_build(&st, &m, "d", dt);
        hf_config_build(&cj, &m.cfg, dt);
        why = hf_import(&back, &meta, (const char *)cj.p, cj.n, st.p, st.n, 0);
        CHECK(why == NULL, "%s hf import: %s", dtype_name[dt], why ? why : "");
        if (!why) {
            for (i = 0, bad = 0; i < m.n_params; i++) {
                float w = m.params[i], r = dt == XD_F16 ? f16_to_f32(f32_to_f16(w)) : f32_from_bits((uint32_t)f32_to_bf16(w) << 16);
                if (f32_bits(back.params[i]) != f32_bits(r)) bad++;
            }
            CHECK(bad == 0, "%s hf: %lu weights are not the rounded ones", dtype_name[dt], (unsigned long)bad);
            free(meta); model_free(&back);
        }
        free(g.p); free(g2.p); free(st.p); free(cj.p);
    }
    model_free(&m);
    tok_free(&tok);
}

/* Q8_0 and Q4_0 blocks worked by hand: d = 0.5 (F16 0x3800). */
static void test_gguf_dequantize(void) {
    uint8_t q8[34], q4[18];
    int k, bad = 0;
    q8[0] = 0x00; q8[1] = 0x38;
    for (k = 0; k < 32; k++) q8[2 + k] = (uint8_t)(k < 16 ? k : 256 - k);   /* 0..15, then -16..-31 */
    q4[0] = 0x00; q4[1] = 0x38;
    for (k = 0; k < 16; k++) q4[2 + k] = (uint8_t)(k | (15 - k) << 4);       /* low nibble k, high 15-k */
    for (k = 0; k < 32; k++) {
        float want8 = 0.5f * (float)(k < 16 ? k : -k), want4 = 0.5f * (float)((k < 16 ? k : 15 - (k - 16)) - 8);
        bad += gg_tensor_value(8, q8, (size_t)k) != want8;
        bad += gg_tensor_value(2, q4, (size_t)k) != want4;
    }
    CHECK(bad == 0, "%d dequantized values wrong", bad);
    CHECK(gg_tensor_value(30, (const uint8_t *)"\x80\x3f", 0) == 1.0f, "BF16 0x3f80 is 1");
}

/* ---------------------------------------------------------------- the vectors pack */

static void test_vectors_pack(void) {
    Model m, fresh;
    Pack k;
    VectorsConfig vc;
    const char *p, *end;
    size_t expect_off = 0;
    int n_tensors = 0, bad = 0, count = 0, n;
    float *saved;
    double sum = 0.0;
    int have_logits = 0, have_dpo = 0, have_sample = 0, have_adamw = 0, grads = 0;
    char tmpl[] = "/tmp/srlm_vectors_XXXXXX", path[96];
    make_model(&m, cfg_of(264, 1, 0, 10000.0f, 1e-5f), 20, 0);
    make_model(&fresh, cfg_of(264, 1, 0, 10000.0f, 1e-5f), 20, 0);
    saved = xmalloc(m.n_params * sizeof(float));
    memcpy(saved, m.params, m.n_params * sizeof(float));
    vc.batch = 2; vc.seq = 6; vc.seed = 3; vc.lr = 1e-3f; vc.beta = 0.1f; vc.label_smoothing = 0.0f;
    memset(&k, 0, sizeof k);
    vectors_build(&k, &m, NULL, &vc, "sha", "sha");
    CHECK(memcmp(saved, m.params, m.n_params * sizeof(float)) == 0, "vectors_build left the weights changed");
    buf_put(&k.text, "", 1);
    p = (const char *)k.text.p;
    CHECK(strncmp(p, "srlm-vectors 1\n", 15) == 0, "first line");
    for (; *p; p = end + 1) {
        char name[64], dtype[8];
        unsigned long off;
        int used, d, dims[4], nd = 0;
        size_t elems = 1;
        end = strchr(p, '\n');
        if (!end) break;
        if (strncmp(p, "tensor ", 7) != 0) continue;
        if (sscanf(p, "tensor %63s %7s %lu%n", name, dtype, &off, &used) != 3) { bad++; continue; }
        p += used;
        while (p < end && nd < 4 && sscanf(p, " %d%n", &d, &used) == 1) { dims[nd++] = d; elems *= (size_t)d; p += used; }
        bad += off != expect_off || (strcmp(dtype, "f32") != 0 && strcmp(dtype, "i32") != 0);
        expect_off = off + 4 * elems;
        n_tensors++;
        have_logits += strcmp(name, "logits") == 0 && nd == 3 && dims[0] == 2 && dims[1] == 6 && dims[2] == 264;
        have_dpo += strcmp(name, "dpo.loss") == 0 && nd == 0;
        have_sample += strcmp(name, "sample.3.tokens") == 0;
        have_adamw += strcmp(name, "adamw.wq") == 0 && nd == 3;
        grads += strncmp(name, "grad.", 5) == 0;
    }
    CHECK(bad == 0 && expect_off == k.data.n, "offsets not contiguous (%d bad, %lu vs %lu bytes)", bad, (unsigned long)expect_off, (unsigned long)k.data.n);
    CHECK(have_logits && have_dpo && have_sample && have_adamw && grads == N_PTENSORS, "missing tensors (%d grads)", grads);
    /* logits are the model's, bit for bit; the loss is the mean of the kept -logprobs */
    {
        int inputs[12], targets[12];
        vectors_batch(&vc, 264, inputs, targets);
        model_forward(&fresh, inputs, targets, 2, 6, 0);
        for (n = 0; n < 12 * 264; n++) bad += le_get_f32(k.data.p + 96 + 4 * (size_t)n) != fresh.a.logits[n];
        for (n = 0; n < 12; n++) if (targets[n] >= 0) { sum -= le_get_f32(k.data.p + 96 + 4 * 12 * 264 + 4 * (size_t)n); count++; }
        CHECK(bad == 0, "%d logits differ from model_forward", bad);
        CHECK((float)(sum / count) == le_get_f32(k.data.p + 96 + 4 * 12 * 264 + 48), "loss is not the mean of the log-probs");
    }
    CHECK(mkdtemp(tmpl) != NULL, "mkdtemp");
    snprintf(path, sizeof path, "%s/vec", tmpl);
    k.text.n--; /* drop the NUL added above */
    CHECK(vectors_write(&k, path) == 0, "write");
    {
        uint8_t *txt, *bin;
        size_t tn, bn;
        char want[200], hex[65], bpath[100], tpath[100];
        uint8_t dg[32];
        snprintf(tpath, sizeof tpath, "%s.txt", path);
        snprintf(bpath, sizeof bpath, "%s.bin", path);
        if (read_file(tpath, &txt, &tn) == 0 && read_file(bpath, &bin, &bn) == 0) {
            sha256(bin, bn, dg);
            sha256_hex(dg, hex);
            snprintf(want, sizeof want, "srlm-vectors 1\ndata vec.bin %lu sha256 %s\n", (unsigned long)bn, hex);
            CHECK(tn > strlen(want) && memcmp(txt, want, strlen(want)) == 0, "manifest head");
            CHECK(tn >= 4 && memcmp(txt + tn - 4, "end\n", 4) == 0, "manifest ends with 'end'");
            free(txt); free(bin);
        } else CHECK(0, "files not written");
        remove(tpath); remove(bpath); remove(tmpl);
    }
    free(k.text.p); free(k.data.p); free(saved);
    model_free(&m); model_free(&fresh);
}

int main(void) {
    RUN(test_roundtrip_hf_gqa);
    RUN(test_roundtrip_hf_tied);
    RUN(test_roundtrip_gguf);
    RUN(test_roundtrip_llama2c);
    RUN(test_llama2c_refuses_other_rope);
    RUN(test_hf_rope_permutation);
    RUN(test_hf_import_f16_bf16);
    RUN(test_hf_config_refusals);
    RUN(test_hf_import_tensor_refusals);
    RUN(test_safetensors_malformed);
    RUN(test_safetensors_truncation_and_flips);
    RUN(test_gguf_malformed);
    RUN(test_gguf_truncation_and_import_refusals);
    RUN(test_tokenizer_exports);
    RUN(test_vectors_pack);
    RUN(test_export_dtype_rounding);
    RUN(test_export_dtype_roundtrip);
    RUN(test_gguf_dequantize);
    return check_summary();
}
