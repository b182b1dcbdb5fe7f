/* test_platform.c - srlm and the file system without a shell (srlm.c 1a):
 * --grader split into words, the grader started from an argument list with
 * paths full of shell syntax (an injection attempt that must not run),
 * make_dirs ("mkdir -p" in C), and the atomic write replacing a file that
 * exists (rename does not on Windows). Includes srlm.c. Built for Windows
 * too and run under wine by tests/test_windows.sh; argv[1] then names the
 * grader ("build/win/world grade").
 */
#define SRLM_NO_MAIN
#include "../srlm.c"
#include "check.h"

static const char *grader = "tiny_models/world grade";
static const char *base = "build/platformtest";

/* Shell syntax a file name may hold: quotes, ';', '$( )', '&', spaces. A
 * Windows file name cannot hold '"'; a POSIX one can. */
#ifdef _WIN32
#define NASTY "it's here; touch PWNED & echo $(touch PWNED) `touch PWNED`"
#else
#define NASTY "it's \"here\"; touch PWNED & echo $(touch PWNED) `touch PWNED` '"
#endif

static char *joined(const char *a, const char *b) {
    size_t n = strlen(a) + strlen(b) + 2;
    char *p = xmalloc(n);
    snprintf(p, n, "%s/%s", a, b);
    return p;
}

static int words(const char *cmd, const char *const *want, int n) {
    char **a = grader_argv(cmd, "IN", "OUT");
    int i, ok = 1;
    for (i = 0; i < n; i++) ok = ok && a[i] && strcmp(a[i], want[i]) == 0;
    ok = ok && a[n] && strcmp(a[n], "IN") == 0 && a[n + 1] && strcmp(a[n + 1], "OUT") == 0 && !a[n + 2];
    free(a[0]); free(a);
    return ok;
}

static void test_grader_split(void) {
    const char *w1[] = {"tiny_models/world", "grade"};
    const char *w2[] = {"C:/My Tools/grade.exe", "--strict"};
    const char *w3[] = {"ab cd", "it's", "$(x);"};
    const char *w4[] = {"g", ""};
    CHECK(words("tiny_models/world grade", w1, 2), "plain words");
    CHECK(words("  tiny_models/world \t grade  ", w1, 2), "runs of spaces and tabs");
    CHECK(words("\"C:/My Tools/grade.exe\" --strict", w2, 2), "a quoted word keeps its space");
    CHECK(words("a\"b c\"d it's $(x);", w3, 3), "quotes inside a word; nothing else is special");
    CHECK(words("g \"\"", w4, 2), "an empty quoted word");
}

static void test_make_dirs_parents(void) {
    char *deep = joined(base, "mk/a/b//c/");
    char *again = joined(base, "mk/a/b/c");
    char *f = joined(again, "f.txt");
    make_dirs(deep);
    make_dirs(deep); /* already there: fine */
    CHECK(platform_is_dir(again), "%s was not created", again);
    CHECK(write_file_atomic(f, "x", 1) == 0, "cannot write into the new directory");
    free(deep); free(again); free(f);
}

static void test_atomic_write_replaces(void) {
    char *p = joined(base, "replace.txt");
    uint8_t *d = NULL;
    size_t n = 0;
    CHECK(write_file_atomic(p, "first version", 13) == 0, "first write");
    CHECK(write_file_atomic(p, "second", 6) == 0, "the second write must replace the first");
    CHECK(read_file(p, &d, &n) == 0 && n == 6 && memcmp(d, "second", 6) == 0, "read back the second version");
    free(d); free(p);
}

/* The answers file and the grades go in a directory whose name is shell
 * syntax. Through a shell ("world grade 'DIR/in' 'DIR/out'") the quote
 * ends the word and "touch PWNED" runs; from an argument list the grader
 * just gets the two paths. */
static void test_grader_without_shell(void) {
    const char *rec = "{\"instruction\": \"Write a word of 3 letters beginning with \\\"c\\\".\", \"response\": \"The word \\\"cat\\\" has 3 letters and begins with \\\"c\\\".\"}\n"
                      "{\"instruction\": \"Write a word of 3 letters beginning with \\\"c\\\".\", \"response\": \"dog\"}\n";
    char *dir = joined(base, NASTY);
    char *in = joined(dir, "answers; touch PWNED.jsonl"), *out = joined(dir, "grades $(touch PWNED).jsonl");
    double g[2] = {-1, -1};
    int c[2] = {-1, -1};
    Jsonl j;
    make_dirs(dir);
    CHECK(platform_is_dir(dir), "make_dirs(%s)", dir);
    CHECK(write_file_atomic(in, rec, strlen(rec)) == 0, "write %s", in);
    remove("PWNED");
    grade_with(grader, in, out, 2, g);
    jsonl_load(&j, out);
    if (j.count == 2) { c[0] = grade_record_correct(j.line[0], j.len[0]); c[1] = grade_record_correct(j.line[1], j.len[1]); }
    jsonl_free(&j);
    CHECK(g[0] >= 4 && c[0] == 1, "the correct answer: grade %g, correct %d", g[0], c[0]);
    CHECK(g[1] < 5 && c[1] == 0, "the wrong answer: grade %g, correct %d", g[1], c[1]);
    CHECK(!path_exists("PWNED"), "a command in a path ran: PWNED exists");
    remove("PWNED");
    free(dir); free(in); free(out);
}

int main(int argc, char **argv) {
    if (argc > 1) grader = argv[1];
    make_dirs(base);
    RUN(test_grader_split);
    RUN(test_make_dirs_parents);
    RUN(test_atomic_write_replaces);
    RUN(test_grader_without_shell);
    return check_summary();
}
