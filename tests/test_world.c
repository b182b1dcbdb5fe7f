/* test_world.c - the synthetic world: phrasings, the exact grader, the
 * generated files (scores, balance, splits, determinism, sizes), the judge
 * template fill and the JSON Lines grading front end.
 *
 * Build from the repository root:
 *   cc -std=c99 -O2 -ffp-contract=off -o test_world tests/test_world.c tensor.c
 * The judge template is looked up as tiny_models/judge_template.txt from the
 * current directory, its parent, or beside this file.
 */
#define WORLD_NO_MAIN
#include "../tiny_models/world.c"
#include "check.h"

/* ------------------------------------------------------------------------
 * Helpers
 * ---------------------------------------------------------------------- */
static char g_tmpl[TEMPLATE_CAP];
static size_t g_tmpl_len;
static int g_tmpl_ok;

static void load_template(void) {
    char path[1024];
    const char *file = __FILE__, *slash = strrchr(file, '/');
    const char *cands[3] = {"tiny_models/judge_template.txt", "../tiny_models/judge_template.txt", path};
    int i;
    snprintf(path, sizeof path, "%.*s../tiny_models/judge_template.txt", slash ? (int)(slash - file + 1) : 0, file);
    for (i = 0; i < 3 && !g_tmpl_ok; i++)
        if (template_load(cands[i], g_tmpl, &g_tmpl_len) == NULL) g_tmpl_ok = 1;
}

static int grade_of(const char *ins, const char *resp) {
    return grade_response(ins, strlen(ins), resp, strlen(resp)).grade;
}

/* Generate the small preset with `seed` into files (world kept in *wd). */
static void gen_small(World *wd, uint64_t seed, WorldFiles *files) {
    WorldOptions o;
    const char *why;
    options_default(&o);
    options_small(&o);
    o.seed = seed;
    why = world_init(wd, &o, g_tmpl, g_tmpl_len);
    if (why) { printf("world_init: %s\n", why); exit(1); }
    world_generate(wd, files);
}

/* Iterate over the lines of a buffer: returns the next line (NUL-terminated copy in line) or 0 at the end. */
static int next_line(const Buf *b, size_t *pos, Buf *line) {
    size_t end;
    if (*pos >= b->n) return 0;
    end = *pos;
    while (end < b->n && b->p[end] != '\n') end++;
    line->n = 0;
    buf_put(line, b->p + *pos, end - *pos);
    *pos = end + 1;
    return 1;
}

/* Pull named string members out of a JSON line with the module's own reader. */
typedef struct { const char *name; Buf val; int found; } Member;

static int json_members(const char *s, size_t n, Member *m, int nm, int *score) {
    Json j;
    Buf key = {0, 0, 0};
    int q, ok = 0;
    j.s = s; j.n = n; j.i = 0; j.err = NULL;
    for (q = 0; q < nm; q++) { m[q].val.n = 0; buf_put(&m[q].val, "", 0); m[q].found = 0; }
    if (score) *score = -1;
    json_ws(&j);
    if (j.i >= j.n || j.s[j.i] != '{') goto done;
    j.i++;
    for (;;) {
        json_ws(&j);
        key.n = 0;
        if (j.i >= j.n || j.s[j.i] != '"' || !json_string(&j, &key)) goto done;
        buf_put(&key, "", 0);
        json_ws(&j);
        if (j.i >= j.n || j.s[j.i] != ':') goto done;
        j.i++;
        json_ws(&j);
        for (q = 0; q < nm; q++)
            if (strcmp(key.p, m[q].name) == 0) break;
        if (q < nm && j.s[j.i] == '"') {
            if (!json_string(&j, &m[q].val)) goto done;
            buf_put(&m[q].val, "", 0);
            m[q].found = 1;
        } else if (score && strcmp(key.p, "score") == 0 && is_digit((unsigned char)j.s[j.i])) {
            *score = j.s[j.i] - '0';
            if (!json_value(&j, 1)) goto done;
        } else if (!json_value(&j, 1)) goto done;
        json_ws(&j);
        if (j.i < j.n && j.s[j.i] == ',') { j.i++; continue; }
        if (j.i < j.n && j.s[j.i] == '}') { j.i++; break; }
        goto done;
    }
    json_ws(&j);
    ok = j.i == j.n;
done:
    buf_free(&key);
    return ok;
}

static int buf_contains(const Buf *b, const char *needle) { return b->p && strstr(b->p, needle) != NULL; }

/* ------------------------------------------------------------------------
 * Word list and phrasings
 * ---------------------------------------------------------------------- */
static void test_word_list(void) {
    int i, j, npal = 0;
    CHECK(NWORDS >= 300 && NWORDS <= 600, "word list has %d words", NWORDS);
    for (i = 0; i < NWORDS; i++) {
        size_t n = strlen(word_list[i]), q;
        int lower = 1;
        for (q = 0; q < n; q++) lower &= is_lower((unsigned char)word_list[i][q]);
        CHECK(n >= 3 && n <= 8 && lower, "bad word \"%s\"", word_list[i]);
        for (j = 0; j < i; j++) CHECK(strcmp(word_list[i], word_list[j]) != 0, "\"%s\" twice", word_list[i]);
        npal += word_is_palindrome(word_list[i]);
    }
    CHECK(npal >= 15, "only %d real palindromes", npal);
}

static void test_phrasings_parse_back(void) {
    World *wd = (World *)malloc(sizeof *wd);
    WorldOptions o;
    Rng r;
    int f, p, i;
    options_default(&o);
    o.word_max = 8;
    o.num_min = 0;
    o.num_max = 999999999;
    o.k_max = 7;
    o.repeat_max_chars = 200;
    CHECK(world_init(wd, &o, g_tmpl, g_tmpl_len) == NULL, "world_init");
    rng_init(&r, 7, RNG_STREAM_WORLD);
    for (f = 0; f < NFAM; f++) {
        const char *pat;
        CHECK(family_phrasing_count(f) >= 4, "%s has %d phrasings", family_names[f], family_phrasing_count(f));
        /* a slot is never followed by a character of its own class: the greedy match is the only one */
        for (p = 0; (pat = phrasings[f][p]) != NULL && p < MAXPHR; p++) {
            const char *q;
            for (q = pat; *q; q++)
                if (q[0] == '{' && q[1] && q[2] == '}') {
                    int next = (unsigned char)q[3];
                    int word_slot = q[1] == 'w' || q[1] == 'c';
                    CHECK(word_slot ? !is_lower(next) : !is_digit(next), "%s: slot followed by its class", pat);
                }
        }
        for (i = 0; i < 300; i++) {
            Task t, back;
            char ins[TEXT_CAP], k1[128], k2[128];
            int phr = (int)rng_below(&r, (uint32_t)family_phrasing_count(f)), got_phr = -1, matches = 0, ff, pp;
            sample_task(wd, &r, f, &t);
            task_instruction(&t, phr, ins, sizeof ins);
            CHECK(parse_instruction(ins, strlen(ins), &back, &got_phr), "no parse: %s", ins);
            task_key(&t, k1);
            task_key(&back, k2);
            CHECK(back.fam == f && got_phr == phr && strcmp(k1, k2) == 0 && back.a == t.a && back.b == t.b,
                  "parse changed the task: %s", ins);
            for (ff = 0; ff < NFAM; ff++)
                for (pp = 0; pp < MAXPHR && phrasings[ff][pp]; pp++) {
                    Task x;
                    memset(&x, 0, sizeof x);
                    matches += match_phrasing(phrasings[ff][pp], ins, strlen(ins), &x);
                }
            CHECK(matches == 1, "%d phrasings match: %s", matches, ins);
        }
    }
    free(wd);
}

static void test_instruction_edges(void) {
    Task t;
    CHECK(parse_instruction("  Reverse the word \"planet\".\n", 29, &t, NULL) && t.fam == F_REVERSE, "trimmed");
    CHECK(!parse_instruction("Reverse the word \"Planet\".", 26, &t, NULL), "capital in the word");
    CHECK(!parse_instruction("Reverse the word \"planet\"", 25, &t, NULL), "missing period");
    CHECK(!parse_instruction("Tell me a joke.", 15, &t, NULL), "unknown");
    CHECK(!parse_instruction("What is 012 plus 35?", 20, &t, NULL), "leading zero");
    CHECK(!parse_instruction("Which is larger, 35 or 35?", 26, &t, NULL), "equal numbers");
    CHECK(!parse_instruction("Repeat the word \"cat\" 1 times.", 30, &t, NULL), "k = 1");
    CHECK(!parse_instruction("What are the first 9 letters of \"planet\"?", 41, &t, NULL), "k > length");
    CHECK(!parse_instruction("Reverse the word \"a\".", 21, &t, NULL), "one-letter word");
    CHECK(!parse_instruction("", 0, &t, NULL), "empty");
    CHECK(parse_instruction("What is 0 plus 0?", 17, &t, NULL) && t.a == 0 && t.b == 0, "zeros");
    CHECK(grade_of("Tell me a joke.", "Why did the chicken cross the road?") == 0, "unknown task grade");
    CHECK(strcmp(grade_response("Tell me a joke.", 15, "x", 1).reason, "unknown task") == 0, "reason");
}

/* ------------------------------------------------------------------------
 * The grader, by hand: every family, every grade, the edge cases.
 * ---------------------------------------------------------------------- */
typedef struct { const char *ins, *resp; int grade; unsigned held; } Case;
#define R CRIT_RELEVANT
#define S CRIT_SUBSTANTIAL
#define U CRIT_USEFUL
#define C CRIT_CORRECT
#define I CRIT_IMPECCABLE
static const Case cases[] = {
    /* reverse */
    {"Reverse the word \"planet\".", "The word \"planet\" reversed is \"tenalp\".", 5, R|S|U|C|I},
    {"Reverse the word \"planet\".", "  The word \"planet\" reversed is \"tenalp\".\n", 5, R|S|U|C|I},
    {"Reverse the word \"planet\".", "The word \"planet\" reversed is \"tenalp\"", 4, R|S|U|C},
    {"Reverse the word \"planet\".", "the word \"planet\" reversed is \"tenalp\".", 4, R|S|U|C},
    {"Reverse the word \"planet\".", "The word \"planet\" reversed is \"tenalp\". The word \"planet\" reversed is \"tenalp\".", 4, R|S|U|C},
    {"Reverse the word \"planet\".", "The word \"planet\" reversed is \"tenalp\". Hope this helps!", 4, R|S|U|C},
    {"Reverse the word \"planet\".", "\"planet\" spelled backwards is \"tenalp\".", 4, R|S|U|C},
    {"Reverse the word \"planet\".", "The word \"planet\" reversed is \"tenalp\". Or \"tenalq\".", 3, R|S|U},
    {"Reverse the word \"planet\".", "The word \"planet\" reversed is \"tenalq\".", 3, R|S|U},
    {"Reverse the word \"planet\".", "The word \"planet\" reversed is \"tenapl\".", 3, R|S|U},
    {"Reverse the word \"planet\".", "The word \"planet\" reversed is \"tenxyz\".", 3, R|S|U},     /* exactly half */
    {"Reverse the word \"planet\".", "The word \"planet\" reversed is \"texyzq\".", 2, R|S},
    {"Reverse the word \"planet\".", "The word \"planet\" reversed is \"tenalp\"\nThe word \"planet\" reversed is \"tenalp\"", 4, R|S|U|C},
    {"Reverse the word \"planet\".", "The word \"planet\" reversed is \"tenalp\" and \"planet\" is \"tenalp\".", 3, R|S|U},
    {"Reverse the word \"planet\".", "The word \"planet\" reversed is \"planet\".", 2, R|S},
    {"Reverse the word \"planet\".", "The word \"planet\" reversed is \"tenal\".", 1, R},
    {"Reverse the word \"planet\".", "The word \"planet\" reversed is \"ten", 1, R},
    {"Reverse the word \"planet\".", "The word \"planet\" has 6 letters.", 1, R},           /* wrong family */
    {"Reverse the word \"planet\".", "The word \xe2\x80\x9cplanet\xe2\x80\x9d reversed is \xe2\x80\x9ctenalp\xe2\x80\x9d.", 1, R},
    {"Reverse the word \"planet\".", "\"tenalp\"", 0, S|U|C},                               /* bare answer */
    {"Reverse the word \"planet\".", "The word \"garden\" reversed is \"nedrag\".", 0, S},  /* another input */
    {"Reverse the word \"planet\".", "The word \"garden\" reversed is \"tenalp\".", 0, S},
    {"Reverse the word \"planet\".", "", 0, 0},
    {"Reverse the word \"planet\".", "I do not know.", 0, 0},
    {"Reverse the word \"level\".", "The word \"level\" reversed is \"level\".", 5, R|S|U|C|I},
    {"Reverse the word \"level\".", "The word \"level\" reversed is \"level\". The word \"level\" reversed is \"level\".", 4, R|S|U|C},
    {"Reverse the word \"level\".", "The word \"level\" reversed is \"levels\".", 1, R},
    /* sort */
    {"Sort the letters of \"planet\" in alphabetical order.", "The letters of \"planet\" in alphabetical order are \"aelnpt\".", 5, R|S|U|C|I},
    {"Sort the letters of \"planet\" in alphabetical order.", "Sorted, the letters of \"planet\" give \"aelnpt\".", 4, R|S|U|C},
    {"Sort the letters of \"planet\" in alphabetical order.", "The letters of \"planet\" in alphabetical order are \"aelntp\".", 3, R|S|U},
    {"Sort the letters of \"planet\" in alphabetical order.", "The letters of \"planet\" in alphabetical order are \"tenalp\".", 2, R|S},
    {"Put the letters of \"act\" in alphabetical order.", "The letters of \"act\" in alphabetical order are \"act\".", 5, R|S|U|C|I},
    /* count */
    {"How many times does the letter \"e\" appear in \"level\"?", "The letter \"e\" appears 2 times in \"level\".", 5, R|S|U|C|I},
    {"How many times does the letter \"e\" appear in \"level\"?", "The word \"level\" has 2 letters e.", 4, R|S|U|C},
    {"How many times does the letter \"e\" appear in \"level\"?", "The letter \"e\" appears 3 times in \"level\".", 3, R|S|U},
    {"How many times does the letter \"e\" appear in \"level\"?", "The letter \"e\" appears 1 time in \"level\".", 3, R|S|U},
    {"How many times does the letter \"e\" appear in \"level\"?", "The letter \"e\" appears 5 times in \"level\".", 2, R|S},
    {"How many times does the letter \"e\" appear in \"level\"?", "The letter \"e\" appears 4 times in \"level\".", 2, R|S},
    {"How many times does the letter \"e\" appear in \"level\"?", "The letter \"e\" appears 12 times in \"level\".", 2, R|S},
    {"How many times does the letter \"e\" appear in \"level\"?", "The letter \"e\" appears 100 times in \"level\".", 1, R},
    {"How many times does the letter \"e\" appear in \"level\"?", "\"level\" has 2.", 0, S|U|C},  /* letter not mentioned */
    {"Count the letter \"v\" in the word \"level\".", "The letter \"v\" appears 1 time in \"level\".", 5, R|S|U|C|I},
    {"Count the letter \"v\" in the word \"level\".", "The letter \"v\" appears 1 times in \"level\".", 4, R|S|U|C},
    {"Count the letter \"z\" in the word \"level\".", "The letter \"z\" appears 0 times in \"level\".", 5, R|S|U|C|I},
    /* upper */
    {"Write \"planet\" in capital letters.", "The word \"planet\" in capital letters is \"PLANET\".", 5, R|S|U|C|I},
    {"Write \"planet\" in capital letters.", "The word \"planet\" in capital letters is \"PLANEt\".", 3, R|S|U},
    {"Write \"planet\" in capital letters.", "The word \"planet\" in capital letters is \"Planet\".", 2, R|S},
    {"Write \"planet\" in capital letters.", "The word \"planet\" in capital letters is \"planet\".", 2, R|S},
    {"Write \"planet\" in capital letters.", "The word \"planet\" in capital letters is \"PLANETS\".", 1, R},
    {"Write \"planet\" in capital letters.", "\"PLANET\"", 0, S|U|C},
    /* add */
    {"What is 12 plus 35?", "12 plus 35 is 47.", 5, R|S|U|C|I},
    {"What is 12 plus 35?", "The sum of 12 and 35 is 47.", 4, R|S|U|C},
    {"What is 12 plus 35?", "35 plus 12 is 47.", 4, R|S|U|C},
    {"What is 12 plus 35?", "12 plus 35 is 47. 12 plus 35 is 47.", 4, R|S|U|C},
    {"What is 12 plus 35?", "12 plus 35 is 48.", 3, R|S|U},
    {"What is 12 plus 35?", "12 plus 35 is 7.", 3, R|S|U},
    {"What is 12 plus 35?", "12 plus 35 is 58.", 2, R|S},
    {"What is 12 plus 35?", "12 plus 35 is 4700.", 1, R},
    {"What is 12 plus 35?", "12 plus 35 is", 1, R},
    {"What is 12 plus 35?", "47.", 0, S|U|C},
    {"What is 58 plus 67?", "58 plus 67 is 115.", 3, R|S|U},
    {"What is 58 plus 67?", "58 plus 67 is 15.", 2, R|S},
    {"What is 12 plus 12?", "12 plus 12 is 24.", 5, R|S|U|C|I},
    {"What is 12 plus 12?", "12 plus 12 is 12.", 2, R|S},
    {"What is 12 plus 0?", "12 plus 0 is 12.", 5, R|S|U|C|I},
    /* repeat */
    {"Repeat the word \"cat\" 3 times.", "The word \"cat\" repeated 3 times is \"cat cat cat\".", 5, R|S|U|C|I},
    {"Repeat the word \"cat\" 3 times.", "The word \"cat\" repeated 3 times is \"cat cat\".", 3, R|S|U},
    {"Repeat the word \"cat\" 3 times.", "The word \"cat\" repeated 3 times is \"cat cat cat cat\".", 3, R|S|U},
    {"Repeat the word \"cat\" 3 times.", "The word \"cat\" repeated 3 times is \"cat dog dog\".", 2, R|S},
    {"Repeat the word \"cat\" 3 times.", "The word \"cat\" repeated 3 times is \"dog dog dog\".", 2, R|S},
    {"Repeat the word \"cat\" 3 times.", "The word \"cat\" repeated 3 times is \"cat  cat cat\".", 1, R},
    {"Repeat the word \"cat\" 3 times.", "The word \"cat\" repeated 3 times is \"cat cat cat cat cat\".", 1, R},
    {"Repeat the word \"cat\" 3 times.", "cat cat cat", 1, R},                               /* unquoted */
    {"Repeat the word \"cat\" 2 times.", "The word \"cat\" repeated 2 times is \"cat\".", 3, R|S|U},
    {"Repeat the word \"cat\" 2 times.", "The word \"cat\" repeated 2 times is \"cat dog\".", 3, R|S|U},
    {"Repeat the word \"cat\" 4 times.", "The word \"cat\" repeated 4 times is \"cat cat dog dog\".", 3, R|S|U},
    {"Repeat the word \"cat\" 4 times.", "The word \"cat\" repeated 4 times is \"cat dog dog dog\".", 2, R|S},
    /* first, last */
    {"What are the first 3 letters of \"planet\"?", "The first 3 letters of \"planet\" are \"pla\".", 5, R|S|U|C|I},
    {"What are the first 3 letters of \"planet\"?", "\"planet\" starts with \"pla\".", 4, R|S|U|C},
    {"What are the first 3 letters of \"planet\"?", "The first 3 letters of \"planet\" are \"plo\".", 3, R|S|U},
    {"What are the first 3 letters of \"planet\"?", "The first 3 letters of \"planet\" are \"net\".", 2, R|S},
    {"What are the first 3 letters of \"planet\"?", "The first 3 letters of \"planet\" are \"pl\".", 1, R},
    {"What are the first 2 letters of \"planet\"?", "The first 2 letters of \"planet\" are \"pz\".", 3, R|S|U},
    {"What are the first 2 letters of \"planet\"?", "The first 2 letters of \"planet\" are \"zz\".", 2, R|S},
    {"What are the last 3 letters of \"planet\"?", "The last 3 letters of \"planet\" are \"net\".", 5, R|S|U|C|I},
    {"What are the last 3 letters of \"planet\"?", "The last 3 letters of \"planet\" are \"pla\".", 2, R|S},
    {"What are the last 3 letters of \"planet\"?", "The last 3 letters of \"planet\" are \"nets\".", 1, R},
    {"What are the last 6 letters of \"planet\"?", "The last 6 letters of \"planet\" are \"planet\".", 5, R|S|U|C|I},
    /* palindrome */
    {"Is \"level\" a palindrome?", "Yes, \"level\" is a palindrome.", 5, R|S|U|C|I},
    {"Is \"level\" a palindrome?", "\"level\" is a palindrome.", 4, R|S|U|C},
    {"Is \"level\" a palindrome?", "Yes. \"level\" reads the same backwards.", 4, R|S|U|C},
    {"Is \"level\" a palindrome?", "Yes, \"level\" is a palindrome. Yes, \"level\" is a palindrome.", 4, R|S|U|C},
    {"Is \"level\" a palindrome?", "Yes, \"level\" is not a palindrome.", 3, R|S|U},
    {"Is \"level\" a palindrome?", "No, \"level\" is not a palindrome.", 2, R|S},
    {"Is \"level\" a palindrome?", "I am not sure about \"level\".", 1, R},
    {"Is \"level\" a palindrome?", "Yes.", 0, S|U|C},
    {"Is \"planet\" a palindrome?", "No, \"planet\" is not a palindrome.", 5, R|S|U|C|I},
    {"Is \"planet\" a palindrome?", "\"planet\" is not a palindrome, I know.", 4, R|S|U|C},
    {"Is \"planet\" a palindrome?", "NO, \"planet\" is not a palindrome.", 4, R|S|U|C},
    {"Is \"planet\" a palindrome?", "Is \"planet\" a palindrome?", 1, R},
    /* length */
    {"How long is the word \"planet\"?", "The word \"planet\" has 6 letters.", 5, R|S|U|C|I},
    {"How long is the word \"planet\"?", "The word \"planet\" has 7 letters.", 3, R|S|U},
    {"How long is the word \"planet\"?", "The word \"planet\" has 9 letters.", 2, R|S},
    {"How long is the word \"planet\"?", "The word \"planet\" has 600 letters.", 1, R},
    {"How long is the word \"planet\"?", "The word \"planet\" has six letters.", 1, R},
    /* larger */
    {"Which is larger, 35 or 47?", "The larger of 35 and 47 is 47.", 5, R|S|U|C|I},
    {"Which is larger, 35 or 47?", "47 is the larger of 35 and 47.", 4, R|S|U|C},
    {"Which is larger, 35 or 47?", "The larger of 35 and 47 is 47 or 35.", 3, R|S|U},
    {"Which is larger, 35 or 47?", "The larger of 35 and 47 is 47. Or maybe 35.", 3, R|S|U},
    {"Which is larger, 35 or 47?", "The larger of 35 and 47 is 35.", 2, R|S},
    {"Which is larger, 35 or 47?", "The larger of 35 and 47 is 50.", 1, R},
    {"Which is larger, 35 or 47?", "47 is larger than 35.", 1, R},
    {"Which is larger, 35 or 47?", "47.", 0, S|U|C},
};
#undef R
#undef S
#undef U
#undef C
#undef I

static void test_grader_cases(void) {
    size_t i;
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        Grade g = grade_response(cases[i].ins, strlen(cases[i].ins), cases[i].resp, strlen(cases[i].resp));
        CHECK(g.grade == cases[i].grade && g.held == cases[i].held, "case %lu: [%s] [%s] -> grade %d held %u, want %d %u",
              (unsigned long)i, cases[i].ins, cases[i].resp, g.grade, g.held, cases[i].grade, cases[i].held);
    }
}

static void test_grader_bytes(void) {
    /* NUL and invalid UTF-8 are just bytes: graded, never a crash */
    const char ins[] = "Reverse the word \"planet\".";
    const char with_nul[] = "The word \"planet\" reversed is \"tenalp\".\0";
    const char bad_utf8[] = "\xff\xfe The word \"planet\" reversed is \"tenalp\".";
    const char unclosed[] = "\"\"\"\"\"";
    Grade g = grade_response(ins, strlen(ins), with_nul, sizeof with_nul - 1);
    CHECK(g.grade == 4, "NUL at the end: grade %d", g.grade);
    g = grade_response(ins, strlen(ins), bad_utf8, strlen(bad_utf8));
    CHECK(g.grade == 4, "invalid UTF-8 prefix: grade %d", g.grade);
    g = grade_response(ins, strlen(ins), unclosed, strlen(unclosed));
    CHECK(g.grade == 0, "quotes only: grade %d", g.grade);
    {   /* a long hostile response */
        Buf b = {0, 0, 0};
        int i;
        for (i = 0; i < 20000; i++) buf_puts(&b, "\"planet\" 12 yes \"");
        g = grade_response(ins, strlen(ins), b.p, b.n);
        CHECK(g.grade >= 0 && g.grade <= 5, "long response");
        buf_free(&b);
    }
}

static void test_canonical_and_alternatives(void) {
    World *wd = (World *)malloc(sizeof *wd);
    WorldOptions o;
    Rng r;
    int f, i;
    options_default(&o);
    o.word_max = 8;
    o.num_min = 0;
    o.num_max = 999999999;
    o.k_max = 9;
    o.repeat_max_chars = 200;
    CHECK(world_init(wd, &o, g_tmpl, g_tmpl_len) == NULL, "world_init");
    rng_init(&r, 11, RNG_STREAM_WORLD);
    for (f = 0; f < NFAM; f++)
        for (i = 0; i < 400; i++) {
            Task t;
            char ans[ANS_CAP], canon[TEXT_CAP], alt[TEXT_CAP], twice[2 * TEXT_CAP];
            int a;
            sample_task(wd, &r, f, &t);
            task_answer(&t, ans);
            task_canonical(&t, canon, sizeof canon);
            CHECK(grade_task(&t, canon, strlen(canon)).grade == 5, "canonical: %s", canon);
            for (a = 0; a < 2; a++) {
                const char *pat = f == F_PALINDROME ? palindrome_alternative[strcmp(ans, "yes") == 0][a] : alternative_pattern[f][a];
                render(alt, sizeof alt, pat, &t, ans);
                CHECK(grade_task(&t, alt, strlen(alt)).grade == 4, "alternative: %s", alt);
            }
            sprintf(twice, "%s %s", canon, canon);
            CHECK(grade_task(&t, twice, strlen(twice)).grade == 4, "twice: %s", twice);
        }
    free(wd);
}

/* ------------------------------------------------------------------------
 * Generated files
 * ---------------------------------------------------------------------- */
static void test_generated_records(void) {
    World *wd = (World *)malloc(sizeof *wd);
    WorldFiles fs;
    Buf line = {0, 0, 0};
    Member m[5] = {{"instruction", {0, 0, 0}, 0}, {"response", {0, 0, 0}, 0}, {"task_instruction", {0, 0, 0}, 0},
                   {"task_response", {0, 0, 0}, 0}, {"id", {0, 0, 0}, 0}};
    int file, count[6], n, score, ift_count[6];
    size_t pos;
    gen_small(wd, 1, &fs);
    /* IFT: every stated score is the grader's, and the mix is as stated */
    memset(ift_count, 0, sizeof ift_count);
    pos = 0;
    n = 0;
    while (next_line(&fs.file[OUT_IFT], &pos, &line)) {
        Grade g;
        int ok = json_members(line.p, line.n, m, 5, &score);
        CHECK(ok && m[0].found && m[1].found && m[4].found && score >= 3, "ift line %d: %s", n, line.p);
        if (!ok || score < 0) { n++; continue; }
        g = grade_response(m[0].val.p, m[0].val.n, m[1].val.p, m[1].val.n);
        CHECK(g.grade == score, "ift line %d: stated %d, graded %d", n, score, g.grade);
        CHECK(m[0].val.n <= 70 && m[1].val.n <= 80, "ift line %d too long", n);
        ift_count[score]++;
        n++;
    }
    CHECK(n == wd->opt.n_ift, "ift has %d lines", n);
    CHECK(ift_count[5] == (wd->opt.n_ift * 85 + 50) / 100 && ift_count[4] + ift_count[3] + ift_count[5] == n &&
          ift_count[4] == (2 * (n - ift_count[5]) + 1) / 3, "ift mix %d %d %d", ift_count[5], ift_count[4], ift_count[3]);
    /* EFT: score = grade of (task_instruction, task_response); prompt = filled template; judgment ends "Score: N"; balanced */
    for (file = OUT_EFT_TRAIN; file <= OUT_EFT_EVAL; file++) {
        memset(count, 0, sizeof count);
        pos = 0;
        n = 0;
        while (next_line(&fs.file[file], &pos, &line)) {
            Grade g;
            Buf want = {0, 0, 0};
            char tail[16];
            int ok = json_members(line.p, line.n, m, 5, &score);
            CHECK(ok && m[0].found && m[1].found && m[2].found && m[3].found && m[4].found && score >= 0 && score <= 5,
                  "%s line %d", out_names[file], n);
            if (!ok || score < 0) { n++; continue; }
            g = grade_response(m[2].val.p, m[2].val.n, m[3].val.p, m[3].val.n);
            CHECK(g.grade == score, "%s line %d: stated %d, graded %d", out_names[file], n, score, g.grade);
            judge_fill(&want, g_tmpl, g_tmpl_len, m[2].val.p, m[2].val.n, m[3].val.p, m[3].val.n);
            CHECK(want.n == m[0].val.n && memcmp(want.p, m[0].val.p, want.n) == 0, "%s line %d: prompt is not the filled template", out_names[file], n);
            sprintf(tail, "Score: %d", score);
            CHECK(m[1].val.n > strlen(tail) && strcmp(m[1].val.p + m[1].val.n - strlen(tail), tail) == 0,
                  "%s line %d: judgment does not end with %s", out_names[file], n, tail);
            count[score]++;
            n++;
            buf_free(&want);
        }
        CHECK(n > 0 && n % 6 == 0 && count[0] == n / 6 && count[1] == n / 6 && count[2] == n / 6 && count[3] == n / 6 &&
              count[4] == n / 6 && count[5] == n / 6, "%s: %d lines, counts %d %d %d %d %d %d", out_names[file], n,
              count[0], count[1], count[2], count[3], count[4], count[5]);
    }
    /* test prompts: known tasks, balanced over families, unique */
    {
        int fam_count[NFAM];
        StrSet seen = {0, 0, 0};
        memset(fam_count, 0, sizeof fam_count);
        pos = 0;
        n = 0;
        while (next_line(&fs.file[OUT_TEST], &pos, &line)) {
            Task t;
            int ok = json_members(line.p, line.n, m, 5, NULL);
            CHECK(ok && m[0].found && m[4].found, "test line %d", n);
            CHECK(parse_instruction(m[0].val.p, m[0].val.n, &t, NULL), "test line %d unknown task", n);
            CHECK(strset_add(&seen, m[0].val.p), "test prompt twice: %s", m[0].val.p);
            fam_count[t.fam]++;
            n++;
        }
        CHECK(n == 256, "test has %d prompts", n);
        for (file = 0; file < NFAM; file++)  /* 256 over the 11 default families: 23 or 24 each, none elsewhere */
            CHECK((wd->opt.families & (1u << file)) ? fam_count[file] == 23 || fam_count[file] == 24 : fam_count[file] == 0,
                  "family %s has %d test prompts", family_names[file], fam_count[file]);
        strset_free(&seen);
    }
    /* ranked sets: 3-4 responses, distinct grades equal to the grader's */
    pos = 0;
    n = 0;
    while (next_line(&fs.file[OUT_RANKED], &pos, &line)) {
        Json j;
        const char *rs = strstr(line.p, "\"responses\": ["), *gs = strstr(line.p, "\"grades\": [");
        int k = 0, grades[8], seen_mask = 0;
        CHECK(json_members(line.p, line.n, m, 5, NULL) && m[0].found && rs && gs, "ranked line %d", n);
        if (!rs || !gs) break;
        for (gs += 11; *gs && *gs != ']'; gs++)
            if (is_digit((unsigned char)*gs) && k < 8) grades[k++] = *gs - '0';
        j.s = line.p; j.n = line.n; j.err = NULL;
        j.i = (size_t)(rs - line.p) + 14;
        CHECK(k >= 3 && k <= 4, "ranked line %d has %d grades", n, k);
        for (file = 0; file < k; file++) {
            Buf resp = {0, 0, 0};
            json_ws(&j);
            CHECK(j.s[j.i] == '"' && json_string(&j, &resp), "ranked line %d response %d", n, file);
            if (!resp.p) buf_put(&resp, "", 0);
            CHECK(grade_response(m[0].val.p, m[0].val.n, resp.p, resp.n).grade == grades[file],
                  "ranked line %d response %d: graded %d, stated %d", n, file,
                  grade_response(m[0].val.p, m[0].val.n, resp.p, resp.n).grade, grades[file]);
            CHECK(!(seen_mask & (1 << grades[file])), "ranked line %d: grade %d twice", n, grades[file]);
            seen_mask |= 1 << grades[file];
            json_ws(&j);
            if (j.i < j.n && j.s[j.i] == ',') j.i++;
            buf_free(&resp);
        }
        n++;
    }
    CHECK(n == wd->opt.n_ranked, "ranked has %d sets", n);
    for (file = 0; file < 5; file++) buf_free(&m[file].val);
    buf_free(&line);
    world_files_free(&fs);
    free(wd);
}

/* No held-out instruction (or its canonical answer) appears in any training text. */
static void test_splits_disjoint(void) {
    World *wd = (World *)malloc(sizeof *wd);
    WorldFiles fs;
    Buf line = {0, 0, 0};
    Member m[2] = {{"instruction", {0, 0, 0}, 0}, {"task_instruction", {0, 0, 0}, 0}};
    const int training[3] = {OUT_CORPUS, OUT_IFT, OUT_EFT_TRAIN};
    int file, q, n = 0;
    size_t pos;
    gen_small(wd, 1, &fs);
    for (file = OUT_EFT_EVAL; file <= OUT_RANKED; file++) {
        pos = 0;
        while (next_line(&fs.file[file], &pos, &line)) {
            const Buf *ins;
            char canon[TEXT_CAP];
            Task t;
            int want = file == OUT_EFT_EVAL ? B_EFT_EVAL : file == OUT_TEST ? B_TEST : B_RANKED;
            CHECK(json_members(line.p, line.n, m, 2, NULL), "%s: bad line", out_names[file]);
            ins = file == OUT_EFT_EVAL ? &m[1].val : &m[0].val;
            if (!ins->p) continue;
            CHECK(parse_instruction(ins->p, ins->n, &t, NULL), "%s: unknown task %s", out_names[file], ins->p);
            CHECK(task_bucket(wd, &t) == want, "%s: %s is in bucket %d", out_names[file], ins->p, task_bucket(wd, &t));
            task_canonical(&t, canon, sizeof canon);
            for (q = 0; q < 3; q++) {
                CHECK(!buf_contains(&fs.file[training[q]], ins->p), "held-out \"%s\" found in %s", ins->p, out_names[training[q]]);
                CHECK(!buf_contains(&fs.file[training[q]], canon), "held-out answer \"%s\" found in %s", canon, out_names[training[q]]);
            }
            if (file != OUT_EFT_EVAL) CHECK(!buf_contains(&fs.file[OUT_EFT_EVAL], ins->p), "\"%s\" found in eft_eval", ins->p);
            n++;
        }
    }
    CHECK(n == wd->opt.n_eft_eval - wd->opt.n_eft_eval % 6 + wd->opt.n_test + wd->opt.n_ranked, "checked %d lines", n);
    /* and the training files' tasks are all train-bucket tasks */
    for (file = OUT_IFT; file <= OUT_EFT_TRAIN; file++) {
        pos = 0;
        while (next_line(&fs.file[file], &pos, &line)) {
            Task t;
            const Buf *ins;
            json_members(line.p, line.n, m, 2, NULL);
            ins = file == OUT_IFT ? &m[0].val : &m[1].val;
            CHECK(ins->p && parse_instruction(ins->p, ins->n, &t, NULL) && task_bucket(wd, &t) == B_TRAIN,
                  "%s: not a train task", out_names[file]);
        }
    }
    for (q = 0; q < 2; q++) buf_free(&m[q].val);
    buf_free(&line);
    world_files_free(&fs);
    free(wd);
}

static void test_corpus_format(void) {
    World *wd = (World *)malloc(sizeof *wd);
    WorldFiles fs;
    const Buf *c;
    static const char *const banned[] = {"Score:", "Question:", "Response:", "points", "<|", "###", "User:", "Assistant:",
                                         "relevant", "criteri", "{instruction}", "{response}"};
    size_t i, pos = 0;
    Buf line = {0, 0, 0};
    int run = 0, blocks = 0, ok_blocks = 1;
    gen_small(wd, 1, &fs);
    c = &fs.file[OUT_CORPUS];
    CHECK((long)c->n >= wd->opt.corpus_bytes && (long)c->n < wd->opt.corpus_bytes + 2000, "corpus is %lu bytes", (unsigned long)c->n);
    for (i = 0; i < sizeof banned / sizeof banned[0]; i++) CHECK(!buf_contains(c, banned[i]), "corpus contains %s", banned[i]);
    for (i = 0; i < c->n; i++) {
        unsigned char ch = (unsigned char)c->p[i];
        if (ch != '\n' && (ch < 0x20 || ch > 0x7e)) { CHECK(0, "corpus byte %u at %lu", ch, (unsigned long)i); break; }
    }
    /* "Task:" blocks: 8-12 lines of known train-bucket tasks, then a blank line */
    while (next_line(c, &pos, &line)) {
        if (strncmp(line.p, "Task: ", 6) == 0) {
            Task t;
            CHECK(parse_instruction(line.p + 6, line.n - 6, &t, NULL) && task_bucket(wd, &t) == B_TRAIN, "corpus task: %s", line.p);
            run++;
        } else {
            if (run) { blocks++; ok_blocks &= run >= 8 && run <= 12 && line.n == 0; }
            run = 0;
        }
    }
    CHECK(blocks > 20 && ok_blocks, "%d task blocks, all 8-12 lines: %d", blocks, ok_blocks);
    buf_free(&line);
    world_files_free(&fs);
    free(wd);
}

/* Q&A pages: every "Q:" line is a train-bucket task; the next line is its
 * worked steps (exactly task_working's) or the answer, and the answer line
 * earns at least 4 points from the grader (a correct sentence). */
static void test_corpus_qa(void) {
    World *wd = (World *)malloc(sizeof *wd);
    WorldFiles fs;
    Buf line = {0, 0, 0};
    size_t pos = 0;
    int nq = 0, nworked = 0, bad = 0;
    Task t;
    char q[TEXT_CAP], work[TEXT_CAP];
    gen_small(wd, 2, &fs);
    while (next_line(&fs.file[OUT_CORPUS], &pos, &line)) {
        if (strncmp(line.p, "Q: ", 3) != 0) continue;
        nq++;
        if (!parse_instruction(line.p + 3, line.n - 3, &t, NULL) || task_bucket(wd, &t) != B_TRAIN) { bad++; continue; }
        snprintf(q, sizeof q, "%s", line.p + 3);
        if (!next_line(&fs.file[OUT_CORPUS], &pos, &line)) { bad++; break; }
        if (strncmp(line.p, "Working: ", 9) == 0) {
            nworked++;
            task_working(&t, work, sizeof work);
            strcat(work, ".");
            if (strcmp(line.p + 9, work) != 0) { bad++; continue; }
            if (!next_line(&fs.file[OUT_CORPUS], &pos, &line)) { bad++; break; }
        }
        if (strncmp(line.p, "A: ", 3) != 0 || grade_response(q, strlen(q), line.p + 3, line.n - 3).grade < 4) bad++;
    }
    printf("  corpus Q&A: %d questions, %d worked, %d bad\n", nq, nworked, bad);
    CHECK(nq > 50 && nworked > nq / 4 && nworked < nq / 2 && bad == 0, "Q&A pages: %d questions, %d worked, %d bad", nq, nworked, bad);
    buf_free(&line);
    world_files_free(&fs);
    free(wd);
}

/* Review pages (--corpus-review-pct): each is "Q: <train task>", "A: <response>",
 * "Review: <judgment> Score: N" with N the grader's grade of that response;
 * every grade 0..5 occurs; about the asked share of blocks; the judge
 * template's own words never appear; at 0 there is no review at all. */
static void test_corpus_reviews(void) {
    World *wd = (World *)malloc(sizeof *wd);
    WorldFiles fs;
    WorldOptions o;
    Buf line = {0, 0, 0};
    size_t pos = 0;
    int nrev = 0, bad = 0, blocks = 0, rblocks = 0, in_review_block = 0, seen_grade[6] = {0, 0, 0, 0, 0, 0}, g;
    const char *why;
    Task t;
    char q[TEXT_CAP], a[TEXT_CAP];
    options_default(&o);
    options_small(&o);
    o.families = (1u << F_STARTS) | (1u << F_ENDS) | (1u << F_CONTAINS) | (1u << F_AT);
    o.corpus_review_pct = 24;
    o.seed = 5;
    why = world_init(wd, &o, g_tmpl, g_tmpl_len);
    if (why) { printf("world_init: %s\n", why); exit(1); }
    world_generate(wd, &fs);
    CHECK(!buf_contains(&fs.file[OUT_CORPUS], "Judge the response") && !buf_contains(&fs.file[OUT_CORPUS], "Question:") &&
          !buf_contains(&fs.file[OUT_CORPUS], "{instruction}"), "the judge template leaked into the corpus");
    CHECK(buf_contains(&fs.file[OUT_MANIFEST], "corpus-review-pct 24\n"), "MANIFEST names the review share");
    while (next_line(&fs.file[OUT_CORPUS], &pos, &line)) {
        if (line.n == 0) { blocks++; rblocks += in_review_block; in_review_block = 0; continue; }
        if (strncmp(line.p, "Q: ", 3) != 0) continue;
        snprintf(q, sizeof q, "%s", line.p + 3);
        if (!next_line(&fs.file[OUT_CORPUS], &pos, &line)) break;
        if (strncmp(line.p, "Working: ", 9) == 0) continue;      /* a worked Q&A page */
        snprintf(a, sizeof a, "%s", line.p);
        {   /* the next line decides: a review, or the next question / a blank line of a Q&A page */
            size_t save = pos;
            const char *sc;
            if (!next_line(&fs.file[OUT_CORPUS], &pos, &line)) break;
            if (strncmp(line.p, "Review: ", 8) != 0) { pos = save; continue; }
            nrev++;
            in_review_block = 1;
            if (!parse_instruction(q, strlen(q), &t, NULL) || task_bucket(wd, &t) != B_TRAIN || strncmp(a, "A: ", 3) != 0) { bad++; continue; }
            sc = strstr(line.p, "Score: ");
            g = grade_response(q, strlen(q), a + 3, strlen(a + 3)).grade;
            if (!sc || sc[7] - '0' != g || sc[8] != '\0') { bad++; continue; }
            seen_grade[g]++;
        }
    }
    printf("  corpus reviews: %d in %d of %d blocks, %d bad, grades 0..5: %d %d %d %d %d %d\n", nrev, rblocks, blocks, bad,
           seen_grade[0], seen_grade[1], seen_grade[2], seen_grade[3], seen_grade[4], seen_grade[5]);
    CHECK(bad == 0 && nrev > 100, "%d reviews, %d bad", nrev, bad);
    for (g = 0; g < 6; g++) CHECK(seen_grade[g] > nrev / 12, "grade %d reviewed %d times of %d", g, seen_grade[g], nrev);
    CHECK(rblocks * 100 > blocks * 18 && rblocks * 100 < blocks * 30, "%d review blocks of %d", rblocks, blocks);
    world_files_free(&fs);
    o.corpus_review_pct = 0;
    why = world_init(wd, &o, g_tmpl, g_tmpl_len);
    if (why) { printf("world_init: %s\n", why); exit(1); }
    world_generate(wd, &fs);
    CHECK(!buf_contains(&fs.file[OUT_CORPUS], "Review:") && !buf_contains(&fs.file[OUT_MANIFEST], "corpus-review-pct"),
          "no reviews at 0");
    buf_free(&line);
    world_files_free(&fs);
    free(wd);
}

/* The worked steps: hand cases for every family, and for every pair of
 * numbers 0..999 the column sums spell the sum (the last column's sum, then
 * each earlier column's units digit). */
static void test_working(void) {
    static const struct { int fam; const char *w; char c; long long a, b; int k; const char *want; } cases[] = {
        {F_REVERSE, "planet", 0, 0, 0, 0, "p-l-a-n-e-t backwards is t-e-n-a-l-p"},
        {F_SORT, "planet", 0, 0, 0, 0, "p-l-a-n-e-t sorted is a-e-l-n-p-t"},
        {F_UPPER, "duck", 0, 0, 0, 0, "d-u-c-k in capitals is D-U-C-K"},
        {F_PALINDROME, "noon", 0, 0, 0, 0, "n-o-o-n backwards is n-o-o-n, the same"},
        {F_PALINDROME, "dog", 0, 0, 0, 0, "d-o-g backwards is g-o-d, not the same"},
        {F_COUNT, "teacher", 'e', 0, 0, 0, "t-[e]-a-c-h-[e]-r"},
        {F_COUNT, "cat", 'z', 0, 0, 0, "c-a-t"},
        {F_LENGTH, "cloud", 0, 0, 0, 0, "c1 l2 o3 u4 d5"},
        {F_FIRST, "tower", 0, 0, 0, 2, "t1 o2 w3 e4 r5, first 2 is t-o"},
        {F_LAST, "toast", 0, 0, 0, 3, "t1 o2 a3 s4 t5, last 3 is a-s-t"},
        {F_REPEAT, "pig", 0, 0, 0, 3, "1 pig, 2 pig, 3 pig"},
        {F_ADD, "", 0, 37, 58, 0, "7 + 8 = 15, 3 + 5 + 1 = 9"},
        {F_ADD, "", 0, 95, 7, 0, "5 + 7 = 12, 9 + 1 = 10"},
        {F_ADD, "", 0, 40, 20, 0, "0 + 0 = 0, 4 + 2 = 6"},
        {F_LARGER, "", 0, 61, 39, 0, "6 > 3"},
        {F_LARGER, "", 0, 64, 68, 0, "6 = 6, 4 < 8"},
        {F_LARGER, "", 0, 123, 45, 0, "123 has more digits"},
    };
    size_t i;
    int a, b, bad = 0;
    char out[TEXT_CAP];
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        Task t;
        memset(&t, 0, sizeof t);
        t.fam = cases[i].fam; strcpy(t.w, cases[i].w); t.c = cases[i].c; t.a = cases[i].a; t.b = cases[i].b; t.k = cases[i].k;
        task_working(&t, out, sizeof out);
        CHECK(strcmp(out, cases[i].want) == 0, "%s: got \"%s\", want \"%s\"", family_names[t.fam], out, cases[i].want);
    }
    for (a = 1; a < 1000; a++)
        for (b = 1; b < 1000; b++) {
            Task t;
            char digits[32], *p, want[32];
            int nd = 0, last = 0;
            memset(&t, 0, sizeof t);
            t.fam = F_ADD; t.a = a; t.b = b;
            task_working(&t, out, sizeof out);
            for (p = strstr(out, "= "); p; p = strstr(p + 2, "= ")) { last = atoi(p + 2); digits[nd++] = (char)('0' + last % 10); }
            sprintf(want, "%d", a + b);
            {   /* the sum = last column's sum, then the earlier columns' units digits, last to first */
                char got[40];
                int j, len = sprintf(got, "%d", last);
                for (j = nd - 2; j >= 0; j--) got[len++] = digits[j];
                got[len] = 0;
                if (strcmp(got, want) != 0) bad++;
            }
        }
    CHECK(bad == 0, "%d sums not spelled by their column working", bad);
}

/* --open-check letters: contains compares every letter with the asked one
 * and ends names its last letter through the count; the other open families
 * and the default (summary) working are unchanged. */
static void test_open_check_letters(void) {
    static const struct { int fam; const char *w; char c; int a, letters; const char *want; } cases[] = {
        {F_CONTAINS, "heavy", 'v', 0, 1, "h1 e2 a3 v4 y5: 5 letters, h v!, e v!, a v!, v v, y v!: has v"},
        {F_CONTAINS, "cry", 't', 0, 1, "c1 r2 y3: 3 letters, c t!, r t!, y t!: has no t"},
        {F_CONTAINS, "cry", 't', 0, 0, "c1 r2 y3: 3 letters, has no t"},
        {F_ENDS, "milk", 'k', 0, 1, "m1 i2 l3 k4: 4 letters, letter 4 is k, ends with k"},
        {F_ENDS, "milk", 'k', 0, 0, "m1 i2 l3 k4: 4 letters, ends with k"},
        {F_STARTS, "bread", 'b', 0, 1, "b1 r2 e3 a4 d5: 5 letters, starts with b"},
        {F_AT, "cream", 'e', 3, 1, "c1 r2 e3 a4 m5: 5 letters, letter 3 is e"},
    };
    size_t i;
    char out[TEXT_CAP];
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        Task t;
        memset(&t, 0, sizeof t);
        t.fam = cases[i].fam; t.c = cases[i].c; t.a = cases[i].a; t.k = (int)strlen(cases[i].w);
        open_check_letters = cases[i].letters;
        open_working(&t, cases[i].w, out, sizeof out);
        CHECK(strcmp(out, cases[i].want) == 0, "%s: got \"%s\", want \"%s\"", family_names[t.fam], out, cases[i].want);
    }
    open_check_letters = 0;
}

/* The check step of EFT judgments: a unit pair is marked "!" exactly when
 * it differs, and the verdict is "No match." exactly when some pair is
 * marked, and "A match." otherwise; judgments without a given answer have
 * no check. */
static void test_judgment_check(void) {
    World *wd = (World *)malloc(sizeof *wd);
    WorldFiles fs;
    Buf line = {0, 0, 0};
    Member m[1] = {{"response", {0, 0, 0}, 0}};
    size_t pos = 0;
    int n = 0, checked = 0, bad = 0;
    gen_small(wd, 4, &fs);
    while (next_line(&fs.file[OUT_EFT_TRAIN], &pos, &line)) {
        const char *j, *c, *end;
        json_members(line.p, line.n, m, 1, NULL);
        j = m[0].val.p;
        n++;
        c = strstr(j, ". Check: ");
        if (strncmp(j, "Given nothing.", 14) == 0) { bad += c != NULL; continue; }
        if (!c) { bad++; continue; }
        checked++;
        c += 9;
        end = strstr(c, ". A match. ");
        if (!end) end = strstr(c, ". No match. ");
        if (!end) { bad++; continue; }
        {   /* walk the pairs "x y" or "x y!" separated by ", " */
            int any = 0;
            const char *q = c;
            while (q < end) {
                const char *sp = strchr(q, ' '), *stop = strstr(q, ", ");
                size_t lx, ly;
                int marked;
                if (!stop || stop > end) stop = end;
                if (!sp || sp >= stop) { bad++; break; }
                lx = (size_t)(sp - q);
                marked = stop[-1] == '!';
                ly = (size_t)(stop - sp - 1) - (size_t)marked;
                if (marked != !(lx == ly && memcmp(q, sp + 1, lx) == 0)) bad++;
                any |= marked;
                q = stop == end ? end : stop + 2;
            }
            if (any != (strncmp(end, ". No match. ", 12) == 0)) bad++;
        }
    }
    printf("  judgments: %d, with a check %d, bad %d\n", n, checked, bad);
    CHECK(n > 0 && checked > n / 2 && bad == 0, "%d judgments, %d checked, %d bad", n, checked, bad);
    buf_free(&m[0].val);
    buf_free(&line);
    world_files_free(&fs);
    free(wd);
}

static void test_determinism(void) {
    World *wd = (World *)malloc(sizeof *wd);
    WorldFiles a, b, c;
    int i;
    gen_small(wd, 1, &a);
    gen_small(wd, 1, &b);
    gen_small(wd, 2, &c);
    for (i = 0; i < NOUT; i++) {
        char ha[65], hb[65], hc[65];
        hex_digest(a.file[i].p, a.file[i].n, ha);
        hex_digest(b.file[i].p, b.file[i].n, hb);
        hex_digest(c.file[i].p, c.file[i].n, hc);
        CHECK(strcmp(ha, hb) == 0, "%s differs between two runs with seed 1", out_names[i]);
        CHECK(strcmp(ha, hc) != 0, "%s is the same for seeds 1 and 2", out_names[i]);
    }
    /* the manifest names every file with its digest */
    for (i = 0; i < OUT_MANIFEST; i++) {
        char h[65], want[200];
        hex_digest(a.file[i].p, a.file[i].n, h);
        sprintf(want, "file %s lines %lu bytes %lu sha256 %s\n", out_names[i], (unsigned long)count_lines(&a.file[i]),
                (unsigned long)a.file[i].n, h);
        CHECK(buf_contains(&a.file[OUT_MANIFEST], want), "manifest lacks: %s", want);
    }
    /* a different size of one file leaves the others' bytes alone (own streams) */
    {
        WorldOptions o;
        WorldFiles d;
        options_default(&o);
        options_small(&o);
        o.n_ift = 100;
        CHECK(world_init(wd, &o, g_tmpl, g_tmpl_len) == NULL, "init");
        world_generate(wd, &d);
        CHECK(d.file[OUT_CORPUS].n == a.file[OUT_CORPUS].n && memcmp(d.file[OUT_CORPUS].p, a.file[OUT_CORPUS].p, d.file[OUT_CORPUS].n) == 0,
              "corpus changed with the IFT size");
        CHECK(d.file[OUT_TEST].n == a.file[OUT_TEST].n && memcmp(d.file[OUT_TEST].p, a.file[OUT_TEST].p, d.file[OUT_TEST].n) == 0,
              "test prompts changed with the IFT size");
        world_files_free(&d);
    }
    world_files_free(&a);
    world_files_free(&b);
    world_files_free(&c);
    free(wd);
}

/* ------------------------------------------------------------------------
 * Template fill and size limits
 * ---------------------------------------------------------------------- */
static void test_fill_literal(void) {
    const char *tmpl = "Q: {instruction}\nA: {response}\nEnd.";
    const char *ins = "Say \"{response}\" {instruction} now.", *resp = "{instruction}{response}\\n";
    const char *want = "Q: Say \"{response}\" {instruction} now.\nA: {instruction}{response}\\n\nEnd.";
    Buf out = {0, 0, 0};
    judge_fill(&out, tmpl, strlen(tmpl), ins, strlen(ins), resp, strlen(resp));
    CHECK(out.n == strlen(want) && strcmp(out.p, want) == 0, "fill: %s", out.p);
    out.n = 0;
    judge_fill(&out, "{response} before {instruction}", 31, "I", 1, "R", 1);
    CHECK(strcmp(out.p, "R before I") == 0, "order: %s", out.p);
    out.n = 0;
    judge_fill(&out, "{instruction}{response}", 23, "a\0b", 3, "", 0);
    CHECK(out.n == 3 && memcmp(out.p, "a\0b", 3) == 0, "NUL inside");
    buf_free(&out);
    CHECK(template_check(tmpl, strlen(tmpl)) == NULL, "valid template");
    CHECK(template_check("{instruction} {instruction} {response}", 38) != NULL, "instruction twice");
    CHECK(template_check("{instruction}", 13) != NULL, "no response");
    CHECK(template_check("{instruction}\t{response}", 24) != NULL, "tab");
    CHECK(template_check("{instruction}{response}\xc3\xa9", 25) != NULL, "non-ASCII");
    CHECK(template_check("", 0) != NULL, "empty");
}

static void test_size_limits(void) {
    World *wd = (World *)malloc(sizeof *wd);
    WorldFiles fs;
    Buf line = {0, 0, 0};
    Member m[4] = {{"instruction", {0, 0, 0}, 0}, {"response", {0, 0, 0}, 0}, {"task_instruction", {0, 0, 0}, 0},
                   {"task_response", {0, 0, 0}, 0}};
    size_t pos, max_total = 0, max_judgment = 0, max_ins = 0, max_resp = 0;
    int file, f, p, q;
    CHECK(g_tmpl_len <= 330, "judge template is %lu bytes", (unsigned long)g_tmpl_len);
    CHECK(g_tmpl_len > 24 && strcmp(g_tmpl + g_tmpl_len - 24, "\"Score: <total points>\".") == 0,
          "the template must end with the Score request (and no newline)");
    gen_small(wd, 3, &fs);
    for (file = OUT_EFT_TRAIN; file <= OUT_EFT_EVAL; file++) {
        pos = 0;
        while (next_line(&fs.file[file], &pos, &line)) {
            json_members(line.p, line.n, m, 4, NULL);
            if (m[0].val.n + m[1].val.n > max_total) max_total = m[0].val.n + m[1].val.n;
            if (m[1].val.n > max_judgment) max_judgment = m[1].val.n;
            if (m[2].val.n > max_ins) max_ins = m[2].val.n;
            if (m[3].val.n > max_resp) max_resp = m[3].val.n;
        }
    }
    printf("  sizes: max filled prompt + judgment %lu, judgment %lu, instruction %lu, response %lu bytes\n",
           (unsigned long)max_total, (unsigned long)max_judgment, (unsigned long)max_ins, (unsigned long)max_resp);
    CHECK(max_total <= 700, "prompt + judgment %lu bytes", (unsigned long)max_total);
    CHECK(max_judgment <= 320 && max_ins <= 70 && max_resp <= 80, "limits (the judgment includes the working and the check)");
    /* worst cases by construction at the default knobs: 8-letter word, 2-digit numbers, k 4 */
    for (f = 0; f < NFAM; f++)
        for (p = 0; p < MAXPHR && phrasings[f][p]; p++) {
            Task t;
            char ins[TEXT_CAP], canon[TEXT_CAP];
            memset(&t, 0, sizeof t);
            t.fam = f;
            strcpy(t.w, "abcdefgh");
            t.c = 'a';
            t.a = 98;
            t.b = 99;
            t.k = 4;
            task_instruction(&t, p, ins, sizeof ins);
            CHECK(strlen(ins) <= 70, "instruction %lu bytes: %s", (unsigned long)strlen(ins), ins);
            if (f == F_REPEAT) strcpy(t.w, "abcde");  /* 4 copies of 5 letters is repeat-max-chars 24's limit */
            task_canonical(&t, canon, sizeof canon);
            CHECK(strlen(canon) <= 80, "canonical %lu bytes: %s", (unsigned long)strlen(canon), canon);
        }
    for (q = 0; q < 4; q++) buf_free(&m[q].val);
    buf_free(&line);
    world_files_free(&fs);
    free(wd);
}

/* ------------------------------------------------------------------------
 * JSON Lines grading front end
 * ---------------------------------------------------------------------- */
static void test_json_reader(void) {
    GradeRecord g;
    Json j;
    const char *ok_line = "{\"id\": {\"n\": [1, 2.5e3, true, null]}, \"x\": -0.5, \"instruction\": \"Reverse the word \\\"planet\\\".\","
                          " \"response\": \"a\\\\b\\n\\t\\u00e9\\ud83d\\ude00\\ud800x\\/\xff\"}";
    memset(&g, 0, sizeof g);
    j.s = ok_line; j.n = strlen(ok_line); j.i = 0; j.err = NULL;
    CHECK(json_grade_record(&j, &g), "parse: %s", j.err ? j.err : "");
    CHECK(g.has_id && g.id_len == strlen("{\"n\": [1, 2.5e3, true, null]}") && memcmp(ok_line + g.id_start, "{\"n\"", 4) == 0, "id span");
    CHECK(strcmp(g.instruction.p, "Reverse the word \"planet\".") == 0, "instruction: %s", g.instruction.p);
    CHECK(g.response.n == 17 && memcmp(g.response.p, "a\\b\n\t\xc3\xa9\xf0\x9f\x98\x80\xed\xa0\x80x/\xff", 17) == 0,
          "response decoded to %lu bytes", (unsigned long)g.response.n);
    {
        static const char *const bad[] = {
            "{\"instruction\": \"x\"}", "{\"response\": \"x\"}", "{\"instruction\": 3, \"response\": \"x\"}",
            "{\"instruction\": \"x\", \"response\": \"y\"} z", "{\"instruction\": \"x\", \"response\": \"\\q\"}",
            "{\"instruction\": \"x\", \"response\": \"\\u12\"}", "{\"instruction\": \"x\", \"response\": \"y", "[1]",
            "{\"instruction\": \"x\", \"instruction\": \"x\", \"response\": \"y\"}", "{\"instruction\": \"x\" \"response\": \"y\"}",
            "{\"instruction\": \"x\", \"response\": \"a\tb\"}", "{\"id\": 01, \"instruction\": \"x\", \"response\": \"y\"}",
            "{\"id\": tru, \"instruction\": \"x\", \"response\": \"y\"}", "{\"instruction\": \"x\", \"response\": \"y\",}"};
        size_t i;
        for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
            j.s = bad[i]; j.n = strlen(bad[i]); j.i = 0; j.err = NULL;
            CHECK(!json_grade_record(&j, &g) && j.err != NULL, "accepted bad record: %s", bad[i]);
        }
    }
    buf_free(&g.instruction);
    buf_free(&g.response);
}

static void test_grade_jsonl(void) {
    const char *in =
        "{\"id\": \"a1\", \"instruction\": \"What is 12 plus 35?\", \"response\": \"12 plus 35 is 48.\", \"extra\": [1]}\n"
        "\n"
        "{\"instruction\": \"Tell me a joke.\", \"response\": \"\"}\r\n"
        "{\"id\": 7, \"instruction\": \"Is \\\"level\\\" a palindrome?\", \"response\": \"Yes, \\\"level\\\" is a palindrome.\"}";
    const char *want =
        "{\"id\": \"a1\", \"grade\": 3, \"criteria\": \"relevant,substantial,useful\", \"reason\": \"answer not exactly right\", \"category\": \"add\"}\n"
        "{\"id\": null, \"grade\": 0, \"criteria\": \"\", \"reason\": \"unknown task\"}\n"
        "{\"id\": 7, \"grade\": 5, \"criteria\": \"relevant,substantial,useful,correct,impeccable\", \"reason\": \"all criteria met\", \"category\": \"palindrome\"}\n";
    Buf out = {0, 0, 0};
    char err[256];
    CHECK(grade_jsonl("in.jsonl", in, strlen(in), &out, err, sizeof err) == 0, "grade_jsonl: %s", err);
    CHECK(out.p && strcmp(out.p, want) == 0, "output:\n%s", out.p ? out.p : "");
    out.n = 0;
    err[0] = 0;
    in = "{\"instruction\": \"x\", \"response\": \"y\"}\n\n{\"instruction\": \"x\"}\n";
    CHECK(grade_jsonl("in.jsonl", in, strlen(in), &out, err, sizeof err) != 0, "missing response accepted");
    CHECK(strcmp(err, "in.jsonl:3: missing \"response\"") == 0, "error names file and line: %s", err);
    buf_free(&out);
}

/* The open families: the grader's ladder on hand-made cases, and a generated
 * open world whose stated scores are the grader's, whose judgments agree
 * with it, and whose test prompts are unique and held out by task key. */
static void test_open_families(void) {
    static const struct { const char *ins, *resp; int grade; } cases[] = {
        {"Name a 5-letter word that starts with \"b\".", "The word \"bread\" has 5 letters and starts with \"b\".", 5},
        {"Name a 5-letter word that starts with \"b\".", "\"bread\" is a 5-letter word starting with \"b\".", 4},
        {"Name a 5-letter word that starts with \"b\".", "The word \"bread\" has 5 letters and starts with \"b\"", 4},
        {"Name a 5-letter word that starts with \"b\".", "The word \"bear\" has 5 letters and starts with \"b\".", 3},
        {"Name a 5-letter word that starts with \"b\".", "The word \"tiger\" has 5 letters and starts with \"b\".", 3},
        {"Name a 5-letter word that starts with \"b\".", "The word \"bread\" has 5 letters, or \"brown\", starting with \"b\".", 3},
        {"Name a 5-letter word that starts with \"b\".", "The word \"brexd\" has 5 letters and starts with \"b\".", 2},
        {"Name a 5-letter word that starts with \"b\".", "The word \"cat\" has 5 letters and starts with \"b\".", 2},
        {"Name a 5-letter word that starts with \"b\".", "I know a 5-letter word with \"b\".", 1},
        {"Name a 5-letter word that starts with \"b\".", "The answer is \"bread\".", 0},
        {"Name a 5-letter word that starts with \"b\".", "The word \"bread\" has 5 letters and starts with \"r\".", 4},
        {"Name a 5-letter word that starts with \"b\".", "The word \"tiger\" has 5 letters and starts with \"t\".", 3},
        {"Name a 5-letter word that starts with \"b\".", "The word \"cat\" has 3 letters and starts with \"c\".", 0},
        {"Which 4-letter word ends with \"k\"?", "The word \"milk\" has 4 letters and ends with \"k\".", 5},
        {"Which 4-letter word ends with \"k\"?", "The word \"kite\" has 4 letters and ends with \"k\".", 3},
        {"Write a word of 6 letters that has \"z\".", "The word \"puzzle\" has 6 letters and contains \"z\".", 5},
        {"Write a word of 6 letters that has \"z\".", "The word \"zebra\" has 6 letters and contains \"z\".", 3},
        {"Name a 5-letter word whose letter 3 is \"e\".", "The word \"cream\" has 5 letters and \"e\" as letter 3.", 5},
        {"Which 5-letter word has \"e\" as letter 3?", "\"sheep\" is a 5-letter word with \"e\" as letter 3.", 4},
        {"Give me a 5-letter word with \"e\" as letter 3.", "The word \"tiger\" has 5 letters and \"e\" as letter 3.", 3},
        {"Suggest a 5-letter word whose letter number 3 is \"e\".", "The word \"queen\" has 4 letters and \"e\" as letter 3.", 4},
        {"Write a word of 4 letters that has \"t\" at position 4.", "The word \"goat\" has 4 letters and \"t\" as letter 4.", 5},
        {"Write a word of 4 letters that has \"t\" at position 4.", "The word \"town\" has 4 letters and \"t\" as letter 4.", 3},
        {"Write a word of 4 letters that has \"t\" at position 4.", "The word \"carx\" has 4 letters and \"t\" as letter 4.", 2},
    };
    World *wd = (World *)malloc(sizeof *wd);
    WorldOptions o;
    WorldFiles fs;
    Buf line = {0, 0, 0};
    Member m[5] = {{"instruction", {0, 0, 0}, 0}, {"response", {0, 0, 0}, 0}, {"task_instruction", {0, 0, 0}, 0},
                   {"task_response", {0, 0, 0}, 0}, {"id", {0, 0, 0}, 0}};
    int i, n, score, fam_count[NFAM], judged = 0;
    size_t pos;
    StrSet seen = {0, 0, 0};
    for (i = 0; i < (int)(sizeof cases / sizeof cases[0]); i++)
        CHECK(grade_of(cases[i].ins, cases[i].resp) == cases[i].grade, "%s | %s: grade %d, want %d", cases[i].ins,
              cases[i].resp, grade_of(cases[i].ins, cases[i].resp), cases[i].grade);
    options_default(&o);
    options_small(&o);
    o.families = (1u << F_STARTS) | (1u << F_ENDS) | (1u << F_CONTAINS) | (1u << F_AT);
    o.n_eft_train = 600;
    CHECK(world_init(wd, &o, g_tmpl, g_tmpl_len) == NULL, "world_init");
    world_generate(wd, &fs);
    pos = 0;
    while (next_line(&fs.file[OUT_IFT], &pos, &line)) {
        CHECK(json_members(line.p, line.n, m, 5, &score), "ift line");
        CHECK(grade_of(m[0].val.p, m[1].val.p) == score, "ift: %s | %s stated %d", m[0].val.p, m[1].val.p, score);
    }
    pos = 0;
    while (next_line(&fs.file[OUT_EFT_TRAIN], &pos, &line)) {
        char tail[16];
        CHECK(json_members(line.p, line.n, m, 5, &score), "eft line");
        CHECK(grade_of(m[2].val.p, m[3].val.p) == score, "eft: %s | %s stated %d", m[2].val.p, m[3].val.p, score);
        sprintf(tail, "Score: %d", score);
        CHECK(m[1].val.n > strlen(tail) && strcmp(m[1].val.p + m[1].val.n - strlen(tail), tail) == 0, "eft judgment tail");
        judged += strstr(m[1].val.p, ". Check: ") != NULL;
    }
    CHECK(judged > 200, "only %d of 600 judgments check a word", judged);
    memset(fam_count, 0, sizeof fam_count);
    pos = 0;
    n = 0;
    while (next_line(&fs.file[OUT_TEST], &pos, &line)) {
        Task t;
        CHECK(json_members(line.p, line.n, m, 5, NULL) && m[0].found, "test line");
        CHECK(parse_instruction(m[0].val.p, m[0].val.n, &t, NULL) && is_open(t.fam), "test: %s", m[0].val.p);
        CHECK(task_bucket(wd, &t) == B_TEST, "test prompt outside the test split: %s", m[0].val.p);
        CHECK(strset_add(&seen, m[0].val.p), "test prompt twice: %s", m[0].val.p);
        fam_count[t.fam]++;
        n++;
    }
    CHECK(n == 256 && fam_count[F_STARTS] >= 50 && fam_count[F_ENDS] >= 50 && fam_count[F_CONTAINS] >= 50 &&
          fam_count[F_AT] >= 50, "test: %d prompts, %d %d %d %d", n, fam_count[F_STARTS], fam_count[F_ENDS],
          fam_count[F_CONTAINS], fam_count[F_AT]);
    strset_free(&seen);
    buf_free(&line);
    for (i = 0; i < 5; i++) buf_free(&m[i].val);
    world_files_free(&fs);
    free(wd);
}

/* --ift-habit-pct: that share of IFT ends with the one habit, graded 4 by
 * the grader (stated score agrees); the rest of the data is unchanged, and
 * the manifest says so. */
static void test_ift_habit(void) {
    World *wa = calloc(1, sizeof(World)), *wb = calloc(1, sizeof(World));
    WorldFiles fa, fb;
    WorldOptions o;
    Buf line = {0, 0, 0};
    Member m[2] = {{"instruction", {0, 0, 0}, 0}, {"response", {0, 0, 0}, 0}};
    int n = 0, habit = 0, score, k;
    size_t pos = 0;
    const size_t hl = strlen(IFT_HABIT);
    options_default(&o);
    options_small(&o);
    CHECK(world_init(wa, &o, g_tmpl, g_tmpl_len) == NULL, "world_init");
    world_generate(wa, &fa);
    o.ift_habit_pct = 60;
    CHECK(world_init(wb, &o, g_tmpl, g_tmpl_len) == NULL, "world_init habit");
    world_generate(wb, &fb);
    while (next_line(&fb.file[OUT_IFT], &pos, &line)) {
        CHECK(json_members(line.p, line.n, m, 2, &score), "ift line");
        CHECK(grade_of(m[0].val.p, m[1].val.p) == score, "ift: %s | %s stated %d", m[0].val.p, m[1].val.p, score);
        if (m[1].val.n > hl && strcmp(m[1].val.p + m[1].val.n - hl, IFT_HABIT) == 0) {
            habit++;
            CHECK(score == 4, "habit answer graded %d: %s", score, m[1].val.p);
        }
        n++;
    }
    /* 60% carry the habit; grade-4 variants of the rest may end with it too (1 in 28 of them) */
    CHECK(n == o.n_ift && habit >= (n * 60 + 50) / 100 && habit <= (n * 60 + 50) / 100 + n / 20,
          "%d of %d IFT answers end with the habit", habit, n);
    for (k = 0; k < NOUT; k++)
        if (k != OUT_IFT && k != OUT_MANIFEST)
            CHECK(fa.file[k].n == fb.file[k].n && memcmp(fa.file[k].p, fb.file[k].p, fa.file[k].n) == 0,
                  "%s changed with the habit", out_names[k]);
    CHECK(strstr(fb.file[OUT_MANIFEST].p, "\nift-habit-pct 60 ") != NULL && strstr(fa.file[OUT_MANIFEST].p, "habit") == NULL,
          "manifest names the habit only when it is on");
    o.ift_habit_pct = 90;
    CHECK(options_check(&o) != NULL, "habit above ift-good-pct accepted");
    buf_free(&line); buf_free(&m[0].val); buf_free(&m[1].val);
    world_files_free(&fa); world_files_free(&fb);
    free(wa); free(wb);
}

/* --ift-habit-pcts: each family's seeds carry its own habit (correct_suffix
 * in family order) at its own rate, graded 4; no family carries another's;
 * the rest of the data is what the uniform habit world writes; the manifest
 * names every rate; the options are checked. */
static void test_ift_habit_per_family(void) {
    static const int pct[4] = {60, 70, 80, 90};
    World *wa = calloc(1, sizeof(World)), *wb = calloc(1, sizeof(World));
    WorldFiles fa, fb;
    WorldOptions o;
    Buf line = {0, 0, 0};
    Member m[2] = {{"instruction", {0, 0, 0}, 0}, {"response", {0, 0, 0}, 0}};
    int n = 0, score, k, s, fam_n[4] = {0, 0, 0, 0}, own[4] = {0, 0, 0, 0}, other = 0;
    size_t pos = 0;
    options_default(&o);
    options_small(&o);
    o.families = (1u << F_STARTS) | (1u << F_ENDS) | (1u << F_CONTAINS) | (1u << F_AT);
    o.ift_good_pct = 95;
    o.ift_habit_pct = 60;
    CHECK(world_init(wa, &o, g_tmpl, g_tmpl_len) == NULL, "world_init");
    world_generate(wa, &fa);
    o.ift_habit_pct = 0;
    o.n_habit_fam_pct = 4;
    for (k = 0; k < 4; k++) o.habit_fam_pct[k] = pct[k];
    CHECK(options_check(&o) == NULL, "per-family habits rejected");
    CHECK(world_init(wb, &o, g_tmpl, g_tmpl_len) == NULL, "world_init per-family habits");
    world_generate(wb, &fb);
    while (next_line(&fb.file[OUT_IFT], &pos, &line)) {
        Task t;
        CHECK(json_members(line.p, line.n, m, 2, &score), "ift line");
        CHECK(grade_of(m[0].val.p, m[1].val.p) == score, "ift: %s | %s stated %d", m[0].val.p, m[1].val.p, score);
        CHECK(parse_instruction(m[0].val.p, m[0].val.n, &t, NULL), "ift instruction: %s", m[0].val.p);
        for (s = 0; s < 4 && wb->fams[s] != t.fam; s++) {}
        CHECK(s < 4, "ift family %d not enabled", t.fam);
        if (s == 4) continue;
        fam_n[s]++;
        for (k = 0; k < 4; k++) {
            size_t hl = strlen(correct_suffix[k]);
            if (m[1].val.n > hl && strcmp(m[1].val.p + m[1].val.n - hl, correct_suffix[k]) == 0) {
                CHECK(score == 4, "habit answer graded %d: %s", score, m[1].val.p);
                if (k == s) own[s]++; else other++;
            }
        }
        n++;
    }
    CHECK(n == o.n_ift, "%d of %d IFT lines", n, o.n_ift);
    /* grade-4 variants of the non-habit seeds may end with a suffix too (1 in 7 x 1/4 of them) */
    for (s = 0; s < 4; s++)
        CHECK(own[s] >= (fam_n[s] * pct[s] + 50) / 100 && own[s] <= (fam_n[s] * pct[s] + 50) / 100 + fam_n[s] / 20,
              "family %s: %d of %d end with its habit (%d%%)", family_names[wb->fams[s]], own[s], fam_n[s], pct[s]);
    CHECK(other <= n / 20, "%d answers end with another family's habit", other);
    for (k = 0; k < NOUT; k++)
        if (k != OUT_IFT && k != OUT_MANIFEST)
            CHECK(fa.file[k].n == fb.file[k].n && memcmp(fa.file[k].p, fb.file[k].p, fa.file[k].n) == 0,
                  "%s changed with per-family habits", out_names[k]);
    CHECK(strstr(fb.file[OUT_MANIFEST].p, "\nift-habit-pcts starts 60 (\"Hope this helps!\"), ends 70 ") != NULL,
          "manifest names the per-family habits");
    o.habit_fam_pct[3] = 96;
    CHECK(options_check(&o) != NULL, "a habit above ift-good-pct accepted");
    o.habit_fam_pct[3] = 90;
    o.n_habit_fam_pct = 3;
    CHECK(options_check(&o) != NULL, "three rates for four families accepted");
    o.n_habit_fam_pct = 4;
    o.ift_habit_pct = 50;
    CHECK(options_check(&o) != NULL, "both habit options accepted");
    buf_free(&line); buf_free(&m[0].val); buf_free(&m[1].val);
    world_files_free(&fa); world_files_free(&fb);
    free(wa); free(wb);
}

int main(void) {
    load_template();
    if (!g_tmpl_ok) {
        printf("FAIL cannot find tiny_models/judge_template.txt (run from the repository root or tests/)\n");
        printf("#summary 0 1\n");
        return 1;
    }
    RUN(test_word_list);
    RUN(test_phrasings_parse_back);
    RUN(test_instruction_edges);
    RUN(test_grader_cases);
    RUN(test_grader_bytes);
    RUN(test_canonical_and_alternatives);
    RUN(test_generated_records);
    RUN(test_open_families);
    RUN(test_ift_habit);
    RUN(test_ift_habit_per_family);
    RUN(test_splits_disjoint);
    RUN(test_corpus_format);
    RUN(test_corpus_qa);
    RUN(test_corpus_reviews);
    RUN(test_working);
    RUN(test_open_check_letters);
    RUN(test_judgment_check);
    RUN(test_determinism);
    RUN(test_fill_literal);
    RUN(test_size_limits);
    RUN(test_json_reader);
    RUN(test_grade_jsonl);
    return check_summary();
}
