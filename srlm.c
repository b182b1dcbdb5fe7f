/* srlm.c - Self-Rewarding Language Models (Yuan et al. 2024, arXiv 2401.10020)
 * as one readable, bit-reproducible C99 program.
 *
 * Read top to bottom; sections follow the data flow and then the paper's loop:
 *   1. utilities: errors, the platform (1a: all of POSIX vs Windows), files
 *      (atomic writes), command-line options
 *   2. the model: config, parameters, activations, forward, backward
 *   3. checkpoints: a versioned little-endian file with a SHA-256 trailer
 *   4. training: AdamW, learning-rate schedule, gradient clipping, the loop
 *   5. generation: KV cache, batched decode steps, sampling
 *   6. data files: JSON Lines
 *   7. the chat format
 *   8. LLM-as-a-Judge: the template and the score parser
 *   9. seed fine-tuning (SFT baseline, M1)
 *  10. judging a response three times
 *  11. reward-model metrics
 *  12. AIFT(Mt): self-instruct prompts, candidates, self-judging, pairs
 *  13. DPO
 *  14. evaluation with an external grader
 *  15. SVG charts for the report
 *  16. the loop (srlm run), resumable stage by stage, and its report
 *  17. the command line (18: reference vectors, export, import)
 *
 * Numerics (math, RNG, ops) live in tensor.c, BPE in tokenizer.c.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <math.h> /* sqrt, sqrtf only: IEEE-exact */
#include <sys/stat.h> /* fstat: a file's real size and kind before it is read (MinGW has it too) */
#include <dirent.h>   /* opendir: a run directory's stale temp files (MinGW has it too) */
#ifdef _WIN32      /* for section 1a only: Windows (MinGW-w64, MSVC) */
#include <windows.h>
#include <direct.h>  /* _mkdir */
#include <fcntl.h>   /* _O_BINARY */
#include <io.h>      /* _setmode */
#include <process.h> /* _spawnvp */
#else              /* for section 1a only: POSIX (Linux, macOS, BSDs) */
#include <fcntl.h>   /* open, fcntl: the run lock */
#include <spawn.h>   /* posix_spawnp: the grader */
#include <sys/resource.h> /* getrusage: peak memory, reported per run stage */
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>
#endif

#include "tensor.h"
#include "tokenizer.h"

/* ==========================================================================
 * 1. Utilities: fatal errors, checked allocation, growable buffers, files
 *    read whole and written atomically (stdout checked too), the platform
 *    (1a), directories, and "--name value" command-line options.
 *    Paper step: none; the plumbing every step below stands on.
 * ========================================================================== */

static void die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("srlm: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

static void *xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) die("out of memory (%lu bytes)", (unsigned long)n);
    return p;
}

static void *xcalloc(size_t n, size_t size) {
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p) die("out of memory (%lu x %lu bytes)", (unsigned long)n, (unsigned long)size);
    return p;
}

/* --------------------------------------------------------------------------
 * 1a. Platform: the only code that differs between POSIX and Windows
 *
 *   now_seconds            a monotonic clock (timings in logs, never in results)
 *   platform_mkdir         create one directory (make_dirs below is "mkdir -p")
 *   platform_is_dir        is PATH an existing directory
 *   platform_replace       rename TMP over PATH (Windows' rename refuses to)
 *   platform_lock          hold an exclusive lock on a file until the process ends
 *   platform_spawn_wait    run a program from an argument list, no shell; wait
 *   platform_binary_stdout stdout without Windows' "\n" -> "\r\n" translation
 *   platform_create_new    open a file for writing that must not exist yet (a unique temp name)
 *   platform_pid           this process's id (part of a temp file's name)
 *
 * Failures return -1 with errno set (Windows errors mapped to the nearest
 * errno), so callers print one line with strerror as anywhere else.
 * -------------------------------------------------------------------------- */
#ifdef _WIN32

static void win_errno(void) {
    DWORD e = GetLastError();
    errno = e == ERROR_FILE_NOT_FOUND || e == ERROR_PATH_NOT_FOUND ? ENOENT
          : e == ERROR_ACCESS_DENIED || e == ERROR_SHARING_VIOLATION || e == ERROR_LOCK_VIOLATION ? EACCES
          : e == ERROR_ALREADY_EXISTS || e == ERROR_FILE_EXISTS ? EEXIST : EIO;
}

static double now_seconds(void) {
    LARGE_INTEGER t, hz;
    QueryPerformanceCounter(&t);
    QueryPerformanceFrequency(&hz);
    return (double)t.QuadPart / (double)hz.QuadPart;
}

static int platform_mkdir(const char *path) { return _mkdir(path); }

static int platform_is_dir(const char *path) {
    DWORD a = GetFileAttributesA(path);
    return a != INVALID_FILE_ATTRIBUTES && (a & FILE_ATTRIBUTE_DIRECTORY);
}

static int platform_replace(const char *tmp, const char *path) {
    if (MoveFileExA(tmp, path, MOVEFILE_REPLACE_EXISTING | MOVEFILE_WRITE_THROUGH)) return 0;
    win_errno();
    return -1;
}

/* The file opened with no sharing: a second process cannot open it while we
 * live, and Windows closes the handle however we end. 0 = held, 1 = another
 * process holds it, -1 = cannot open it. */
static int platform_lock(const char *path) {
    HANDLE h = CreateFileA(path, GENERIC_READ | GENERIC_WRITE, 0, NULL, OPEN_ALWAYS, FILE_ATTRIBUTE_NORMAL, NULL);
    if (h != INVALID_HANDLE_VALUE) return 0; /* the handle stays open, on purpose */
    if (GetLastError() == ERROR_SHARING_VIOLATION) return 1;
    win_errno();
    return -1;
}

/* Windows has no argument vector: a program gets one command line, which
 * the C runtime splits again. _spawnvp joins argv with spaces as they are,
 * so each argument is quoted here by the Microsoft C runtime's rules (in
 * "...", a '"' escaped as \", backslashes doubled only before a '"'). No
 * shell (cmd.exe) is involved. Returns the exit status, or -1. */
static char *win_quote(const char *a) {
    size_t n = strlen(a), i, k = 0;
    char *q = xmalloc(2 * n + 3);
    q[k++] = '"';
    for (i = 0; i <= n; i++) {
        size_t bs = 0;
        while (i < n && a[i] == '\\') { bs++; i++; }
        if (i == n) { while (bs--) { q[k++] = '\\'; q[k++] = '\\'; } break; }
        if (a[i] == '"') { while (bs--) { q[k++] = '\\'; q[k++] = '\\'; } q[k++] = '\\'; q[k++] = '"'; }
        else { while (bs--) q[k++] = '\\'; q[k++] = a[i]; }
    }
    q[k++] = '"';
    q[k] = 0;
    return q;
}

static int platform_spawn_wait(char *const *argv) {
    int n = 0, i;
    const char **q;
    intptr_t rc;
    while (argv[n]) n++;
    q = xcalloc((size_t)n + 1, sizeof *q);
    for (i = 0; i < n; i++) q[i] = win_quote(argv[i]);
    fflush(stdout); fflush(stderr);
    rc = _spawnvp(_P_WAIT, argv[0], q);
    for (i = 0; i < n; i++) free((void *)q[i]);
    free(q);
    return rc < 0 ? -1 : (int)rc;
}

static void platform_binary_stdout(void) { _setmode(_fileno(stdout), _O_BINARY); }

static FILE *platform_create_new(const char *path) {
    int fd = _open(path, _O_WRONLY | _O_CREAT | _O_EXCL | _O_BINARY, _S_IREAD | _S_IWRITE);
    FILE *f;
    if (fd < 0) return NULL;
    if (!(f = _fdopen(fd, "wb"))) { _close(fd); remove(path); }
    return f;
}

static unsigned long platform_pid(void) { return (unsigned long)_getpid(); }

/* Peak resident memory: not measured on Windows (it would need psapi); -1. */
static double platform_peak_rss_mb(void) { return -1.0; }

#else /* POSIX */

extern char **environ;

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int platform_mkdir(const char *path) { return mkdir(path, 0777); }

static int platform_is_dir(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static int platform_replace(const char *tmp, const char *path) { return rename(tmp, path); }

/* A POSIX record lock on the whole file, released by the kernel however the
 * process ends (SIGKILL too), so a killed run leaves no stale lock. 0 = held,
 * 1 = another process holds it, -1 = cannot open it, -2 = the file system
 * cannot lock (errno says why). */
static int platform_lock(const char *path) {
    struct flock fl;
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
    if (fd < 0) return -1;
    memset(&fl, 0, sizeof fl);
    fl.l_type = F_WRLCK; fl.l_whence = SEEK_SET; fl.l_start = 0; fl.l_len = 0;
    if (fcntl(fd, F_SETLK, &fl) == 0) return 0; /* fd stays open, and the lock held */
    if (errno == EACCES || errno == EAGAIN) return 1;
    return -2;
}

/* posix_spawnp: argv[0] is looked up on PATH when it has no '/', like a
 * shell would, but nothing in any argument is interpreted. Returns the exit
 * status, 256 + N if signal N ended the program, or -1 if it did not start. */
static int platform_spawn_wait(char *const *argv) {
    pid_t pid;
    int status, err;
    fflush(stdout); fflush(stderr);
    err = posix_spawnp(&pid, argv[0], NULL, NULL, argv, environ);
    if (err != 0) { errno = err; return -1; }
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) return -1;
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    return WIFSIGNALED(status) ? 256 + WTERMSIG(status) : 255;
}

static void platform_binary_stdout(void) {}

static FILE *platform_create_new(const char *path) {
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    FILE *f;
    if (fd < 0) return NULL;
    if (!(f = fdopen(fd, "wb"))) { int e = errno; close(fd); remove(path); errno = e; }
    return f;
}

static unsigned long platform_pid(void) { return (unsigned long)getpid(); }

/* Peak resident memory of this process so far (getrusage's ru_maxrss: kilobytes
 * on Linux and the BSDs, bytes on macOS); -1 where it cannot be read. */
static double platform_peak_rss_mb(void) {
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0) return -1.0;
#ifdef __APPLE__
    return (double)ru.ru_maxrss / (1024.0 * 1024.0);
#else
    return (double)ru.ru_maxrss / 1024.0;
#endif
}

#endif

/* "mkdir -p" in C: every missing directory of PATH, parents first. Dies with
 * one line naming the directory that could not be made. */
static void make_dirs(const char *path) {
    size_t n = strlen(path), i;
    char *p = xmalloc(n + 1);
    memcpy(p, path, n + 1);
    for (i = 1; i <= n; i++) {
        int sep = p[i] == '/';
#ifdef _WIN32
        sep = sep || p[i] == '\\';
        if (sep && i == 2 && p[1] == ':') continue; /* "C:/": the drive itself */
#endif
        if (!sep && p[i] != 0) continue;
        if (p[i - 1] == '/' || p[i - 1] == '\\') continue; /* "a//b" */
        p[i] = 0;
        if (platform_mkdir(p) != 0) {
            int err = errno;
            if (!platform_is_dir(p))
                die("%s: cannot create directory %s: %s", path, p, err == EEXIST ? "a file of that name exists" : strerror(err));
        }
        p[i] = path[i];
    }
    free(p);
}

/* Read a whole file. Returns 0, or -1 after printing "srlm: PATH: reason".
 * A regular file is read in one allocation of its real size; anything else
 * (a pipe, a device such as /dev/zero) is read only up to READ_MAX_STREAM
 * bytes, so no input can cost memory without bound. */
#define READ_MAX_STREAM ((size_t)256 << 20)
/* Open a file to read, or print why not: a directory is named as one. */
static FILE *open_read(const char *path, struct stat *st) {
    FILE *f = fopen(path, "rb");
    if (!f) { fprintf(stderr, "srlm: %s: cannot open: %s\n", path, strerror(errno)); return NULL; }
    if (fstat(fileno(f), st) != 0) memset(st, 0, sizeof *st);
    else if (S_ISDIR(st->st_mode)) { fclose(f); fprintf(stderr, "srlm: %s: is a directory, not a file\n", path); return NULL; }
    return f;
}

static int read_file(const char *path, uint8_t **data, size_t *n) {
    size_t cap = 1 << 16, len = 0, limit = READ_MAX_STREAM;
    uint8_t *buf;
    struct stat st;
    FILE *f = open_read(path, &st);
    if (!f) return -1;
    {
        if (S_ISREG(st.st_mode)) {
            if ((uintmax_t)st.st_size >= (uintmax_t)SIZE_MAX / 2) { fclose(f); fprintf(stderr, "srlm: %s: too large to read\n", path); return -1; }
            cap = (size_t)st.st_size + 1; /* + 1: the read that finds the end */
            limit = SIZE_MAX / 2;         /* a regular file may still grow while read */
        }
    }
    buf = malloc(cap);
    if (!buf) { fclose(f); fprintf(stderr, "srlm: %s: out of memory (%lu bytes)\n", path, (unsigned long)cap); return -1; }
    for (;;) {
        size_t got;
        if (len == cap) {
            uint8_t *nb;
            if (cap >= limit) {
                free(buf); fclose(f);
                fprintf(stderr, "srlm: %s: not a regular file and longer than %lu MiB; refusing to read more\n", path,
                        (unsigned long)(READ_MAX_STREAM >> 20));
                return -1;
            }
            cap = cap > limit / 2 ? limit : cap * 2;
            nb = realloc(buf, cap);
            if (!nb) { free(buf); fclose(f); fprintf(stderr, "srlm: %s: out of memory\n", path); return -1; }
            buf = nb;
        }
        got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (got == 0) break;
    }
    if (ferror(f)) {
        int e = errno;
        free(buf); fclose(f);
        fprintf(stderr, "srlm: %s: read error: %s\n", path, e ? strerror(e) : "unknown");
        return -1;
    }
    fclose(f);
    *data = buf;
    *n = len;
    return 0;
}

/* Write atomically: a temp file with a unique name (PATH.PID.N.tmp, created
 * exclusively, in PATH's directory) is written, flushed, closed and renamed
 * over PATH, so a reader (or a resumed run) sees the old file or the new
 * one, never half. Every failure removes the temp file. A temp file left by
 * a killed process never collides with a later one; srlm run removes stale
 * ones from its directory (run_clean_tmp). */
static int write_file_atomic(const char *path, const void *data, size_t n) {
    static unsigned long counter;
    size_t plen = strlen(path);
    char *tmp = xmalloc(plen + 64);
    FILE *f = NULL;
    int tries;
    for (tries = 0; tries < 100 && !f; tries++) {
        snprintf(tmp, plen + 64, "%s.%lu.%lu.tmp", path, platform_pid(), counter++);
        f = platform_create_new(tmp);
        if (!f && errno != EEXIST) break;
    }
    if (!f) { fprintf(stderr, "srlm: %s: cannot create: %s\n", tmp, strerror(errno)); free(tmp); return -1; }
    if ((n && fwrite(data, 1, n, f) != n) || fflush(f) != 0) {
        fprintf(stderr, "srlm: %s: write failed: %s\n", tmp, strerror(errno));
        fclose(f); remove(tmp); free(tmp); return -1;
    }
    if (fclose(f) != 0) { fprintf(stderr, "srlm: %s: close failed: %s\n", tmp, strerror(errno)); remove(tmp); free(tmp); return -1; }
    if (platform_replace(tmp, path) != 0) {
        fprintf(stderr, "srlm: %s: rename failed: %s\n", path, strerror(errno));
        remove(tmp); free(tmp); return -1;
    }
    free(tmp);
    return 0;
}

/* Remove the temp files (NAME.tmp, NAME.PID.N.tmp) a killed srlm left in dir.
 * Only for a directory no other srlm writes to (srlm run holds run.lock
 * there). Returns how many were removed. */
static int run_clean_tmp(const char *dir) {
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;
    if (!d) return 0;
    while ((e = readdir(d)) != NULL) {
        size_t l = strlen(e->d_name), dl = strlen(dir);
        char *p;
        if (l <= 4 || strcmp(e->d_name + l - 4, ".tmp") != 0) continue;
        p = xmalloc(dl + l + 2);
        snprintf(p, dl + l + 2, "%s/%s", dir, e->d_name);
        if (remove(p) == 0) n++;
        free(p);
    }
    closedir(d);
    return n;
}

/* Standard output is a file too: a full disk or a closed pipe must not end
 * in exit status 0. Every command's output passes this check before exit. */
static int stdout_finish(void) {
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "srlm: writing to standard output failed: %s\n", errno ? strerror(errno) : "write error");
        return 1;
    }
    return 0;
}

/* File names without their directories ("a/b/m1.ckpt,c/d.jsonl" -> "m1.ckpt,d.jsonl"),
 * for provenance text: the same run in another directory writes the same bytes. */
static void base_names(const char *paths, char *out, size_t cap) {
    size_t n = 0;
    const char *p = paths;
    while (*p && n + 1 < cap) {
        const char *start = p, *slash = NULL;
        while (*p && *p != ',') { if (*p == '/') slash = p; p++; }
        if (slash) start = slash + 1;
        while (start < p && n + 1 < cap) out[n++] = *start++;
        if (*p == ',' && n + 1 < cap) { out[n++] = ','; p++; }
    }
    out[n] = 0;
}

/* A growable byte buffer for building files in memory before the atomic write. */
typedef struct { uint8_t *p; size_t n, cap; } Buf;

static void buf_reserve(Buf *b, size_t extra) {
    if (b->n + extra > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + extra) cap *= 2;
        b->p = realloc(b->p, cap);
        if (!b->p) die("out of memory");
        b->cap = cap;
    }
}
static void buf_put(Buf *b, const void *data, size_t n) {
    if (!n) return; /* an empty put into an empty buffer has no memory to copy to */
    buf_reserve(b, n); memcpy(b->p + b->n, data, n); b->n += n;
}
static void buf_u32(Buf *b, uint32_t v) { buf_reserve(b, 4); le_put_u32(b->p + b->n, v); b->n += 4; }
static void buf_u64(Buf *b, uint64_t v) { buf_reserve(b, 8); le_put_u64(b->p + b->n, v); b->n += 8; }
static void buf_f32(Buf *b, float v) { buf_reserve(b, 4); le_put_f32(b->p + b->n, v); b->n += 4; }
static void buf_str(Buf *b, const char *s) { buf_put(b, s, strlen(s)); }
static void buf_printf(Buf *b, const char *fmt, ...) {
    va_list ap;
    int need;
    va_start(ap, fmt);
    need = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (need < 0) die("internal: bad format");
    buf_reserve(b, (size_t)need + 1);
    va_start(ap, fmt);
    vsnprintf((char *)b->p + b->n, (size_t)need + 1, fmt, ap);
    va_end(ap);
    b->n += (size_t)need;
}

/* --- command-line options: "--name value" pairs after the subcommand --- */
typedef struct { int argc; char **argv; char *used; const char *cmd; } Opts;

static Opts opts_make(int argc, char **argv, const char *cmd) {
    Opts o;
    o.argc = argc; o.argv = argv; o.cmd = cmd;
    o.used = xcalloc((size_t)argc + 1, 1);
    return o;
}
static const char *opt_str(Opts *o, const char *name, const char *def) {
    int i;
    const char *found = NULL;
    for (i = 0; i < o->argc; i++) {
        if (strcmp(o->argv[i], name) == 0) {
            if (i + 1 >= o->argc) die("%s: option %s needs a value", o->cmd, name);
            if (found) die("%s: option %s is given twice", o->cmd, name);
            o->used[i] = o->used[i + 1] = 1;
            found = o->argv[i + 1];
            i++; /* a value that looks like an option name is still a value */
        }
    }
    return found ? found : def;
}
static int opt_flag(Opts *o, const char *name) {
    int i;
    int found = 0;
    for (i = 0; i < o->argc; i++)
        if (strcmp(o->argv[i], name) == 0) {
            if (found) die("%s: option %s is given twice", o->cmd, name);
            o->used[i] = 1; found = 1;
        }
    return found;
}
static long opt_long(Opts *o, const char *name, long def) {
    const char *s = opt_str(o, name, NULL);
    char *end;
    long v;
    if (!s) return def;
    errno = 0;
    v = strtol(s, &end, 10);
    if (errno || *end || end == s) die("%s: option %s wants an integer, got '%s'", o->cmd, name, s);
    return v;
}
static int opt_int(Opts *o, const char *name, int def, int lo, int hi) {
    long v;
    if (!opt_str(o, name, NULL)) return def; /* a default is not range-checked (it may mean "unset") */
    v = opt_long(o, name, def);
    if (v < lo || v > hi) die("%s: option %s must be in [%d, %d], got %ld", o->cmd, name, lo, hi, v);
    return (int)v;
}
static uint64_t opt_u64(Opts *o, const char *name, uint64_t def) {
    const char *s = opt_str(o, name, NULL);
    char *end;
    unsigned long long v;
    if (!s) return def;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno || *end || end == s || s[0] == '-') die("%s: option %s wants a non-negative integer, got '%s'", o->cmd, name, s);
    return (uint64_t)v;
}
/* Floats are parsed by strtod (correctly rounded on every libc we know), then
 * rounded once to float: the same text gives the same bits everywhere. */
static float opt_float(Opts *o, const char *name, float def, float lo, float hi) {
    const char *s = opt_str(o, name, NULL);
    char *end;
    double v;
    if (!s) return def;
    errno = 0;
    v = strtod(s, &end);
    if (errno || *end || end == s || !(v >= lo && v <= hi))
        die("%s: option %s must be a number in [%g, %g], got '%s'", o->cmd, name, (double)lo, (double)hi, s);
    return (float)v;
}
/* After all options were read: anything left over is a typo the user must hear about. */
static void opts_done(Opts *o) {
    int i;
    for (i = 0; i < o->argc; i++)
        if (!o->used[i]) die("%s: unknown argument '%s' (see 'srlm %s --help')", o->cmd, o->argv[i], o->cmd);
    free(o->used);
}
static int wants_help(int argc, char **argv) {
    int i;
    for (i = 0; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) return 1;
    return 0;
}

/* ==========================================================================
 * 2. The model: a Llama-style decoder
 *    token embedding -> L x [RMSNorm, attention (RoPE, GQA), residual,
 *    RMSNorm, SwiGLU FFN, residual] -> RMSNorm -> output head.
 *    Config, parameter layout, activations, the forward pass with its loss,
 *    and the hand-written backward pass.
 *    Paper step: the base model (Llama 2 70B there, M0 here: a tiny model of
 *    the same architecture).
 * ========================================================================== */

typedef struct {
    int dim;          /* C: residual width */
    int n_layers;     /* L */
    int n_heads;      /* H; head_dim = dim / n_heads */
    int n_kv_heads;   /* KVH: grouped-query attention when < n_heads */
    int hidden_dim;   /* F: SwiGLU inner width */
    int vocab_size;   /* V */
    int max_seq_len;  /* longest sequence (RoPE table and KV cache size) */
    int tied;         /* 1: the output head is the token embedding */
    float rope_theta;
    float norm_eps;
} Config;

/* Parameter tensors, in the order they are stored (llama2.c's order). */
enum { P_TOK_EMB, P_ATTN_NORM, P_WQ, P_WK, P_WV, P_WO, P_FFN_NORM, P_W1, P_W2, P_W3, P_FINAL_NORM, P_OUTPUT, N_PTENSORS };
static const char *param_names[N_PTENSORS] = {
    "tok_embeddings", "attn_norm", "wq", "wk", "wv", "wo", "ffn_norm", "w1", "w2", "w3", "final_norm", "output" };

typedef struct {
    float *tok_emb;     /* (V, C) */
    float *attn_norm;   /* (L, C) */
    float *wq;          /* (L, C, C)   rows are H*head_dim = C */
    float *wk;          /* (L, KVC, C) KVC = KVH*head_dim */
    float *wv;          /* (L, KVC, C) */
    float *wo;          /* (L, C, C) */
    float *ffn_norm;    /* (L, C) */
    float *w1;          /* (L, F, C)  gate */
    float *w2;          /* (L, C, F)  down */
    float *w3;          /* (L, F, C)  up */
    float *final_norm;  /* (C) */
    float *output;      /* (V, C); points at tok_emb when tied */
} Weights;

static int cfg_head_dim(const Config *c) { return c->dim / c->n_heads; }
static int cfg_kv_dim(const Config *c) { return c->n_kv_heads * cfg_head_dim(c); }

/* Sizes of the tensors in storage order; the tied output has size 0. */
static void param_sizes(const Config *c, size_t sizes[N_PTENSORS]) {
    size_t C = (size_t)c->dim, L = (size_t)c->n_layers, F = (size_t)c->hidden_dim, V = (size_t)c->vocab_size;
    size_t KVC = (size_t)cfg_kv_dim(c);
    sizes[P_TOK_EMB] = V * C;
    sizes[P_ATTN_NORM] = L * C;
    sizes[P_WQ] = L * C * C;
    sizes[P_WK] = L * KVC * C;
    sizes[P_WV] = L * KVC * C;
    sizes[P_WO] = L * C * C;
    sizes[P_FFN_NORM] = L * C;
    sizes[P_W1] = L * F * C;
    sizes[P_W2] = L * C * F;
    sizes[P_W3] = L * F * C;
    sizes[P_FINAL_NORM] = C;
    sizes[P_OUTPUT] = c->tied ? 0 : V * C;
}

static size_t param_count(const Config *c) {
    size_t sizes[N_PTENSORS], n = 0;
    int i;
    param_sizes(c, sizes);
    for (i = 0; i < N_PTENSORS; i++) n += sizes[i];
    return n;
}

/* Point the named views into one contiguous block (params, grads and Adam moments share this layout). */
static void weights_views(Weights *w, float *base, const Config *c) {
    size_t sizes[N_PTENSORS];
    float **ptrs[N_PTENSORS];
    int i;
    ptrs[P_TOK_EMB] = &w->tok_emb; ptrs[P_ATTN_NORM] = &w->attn_norm; ptrs[P_WQ] = &w->wq; ptrs[P_WK] = &w->wk;
    ptrs[P_WV] = &w->wv; ptrs[P_WO] = &w->wo; ptrs[P_FFN_NORM] = &w->ffn_norm; ptrs[P_W1] = &w->w1;
    ptrs[P_W2] = &w->w2; ptrs[P_W3] = &w->w3; ptrs[P_FINAL_NORM] = &w->final_norm; ptrs[P_OUTPUT] = &w->output;
    param_sizes(c, sizes);
    for (i = 0; i < N_PTENSORS; i++) { *ptrs[i] = base; base += sizes[i]; }
    if (c->tied) w->output = w->tok_emb;
}

/* Why a config is unusable, or NULL. Loaders and the CLI share this check. */
static const char *config_invalid(const Config *c) {
    if (c->dim < 2 || c->dim > 8192) return "dim out of range [2, 8192]";
    if (c->n_layers < 1 || c->n_layers > 256) return "n_layers out of range [1, 256]";
    if (c->n_heads < 1 || c->dim % c->n_heads) return "n_heads must divide dim";
    if (cfg_head_dim(c) % 2) return "head_dim (dim / n_heads) must be even for RoPE";
    if (c->n_kv_heads < 1 || c->n_heads % c->n_kv_heads) return "n_kv_heads must divide n_heads";
    if (c->hidden_dim < 1 || c->hidden_dim > 65536) return "hidden_dim out of range [1, 65536]";
    if (c->vocab_size < 1 || c->vocab_size > 1 << 20) return "vocab_size out of range [1, 2^20]";
    if (c->max_seq_len < 1 || c->max_seq_len > 1 << 16) return "max_seq_len out of range [1, 65536]";
    if (c->tied != 0 && c->tied != 1) return "tied must be 0 or 1";
    if (!(c->rope_theta > 1.0f) || !f32_isfinite(c->rope_theta)) return "rope_theta must be a finite number > 1";
    if (!(c->norm_eps > 0.0f) || !(c->norm_eps < 1.0f)) return "norm_eps must be in (0, 1)";
    return NULL;
}

/* Activations of one training forward pass, kept for backward.
 * N = B*T rows; per-layer tensors are stacked with the layer outermost. */
typedef struct {
    float *x0;      /* (N, C) embeddings */
    float *rstd1;   /* (L, N) */
    float *ln1;     /* (L, N, C) the norm's output, when kept (Model.keep; else backward recomputes it) */
    float *q;       /* (L, N, C)   after RoPE */
    float *k;       /* (L, N, KVC) after RoPE */
    float *v;       /* (L, N, KVC) */
    float *atty;    /* (L, N, C) attention output before wo */
    float *mask1;   /* (L, N, C) dropout mask after wo (allocated only when dropout > 0) */
    float *res1;    /* (L, N, C) x + dropout(atty @ wo^T) */
    float *rstd2;   /* (L, N) */
    float *ln2;     /* (L, N, C) likewise */
    float *h1;      /* (L, N, F) gate pre-activation */
    float *h3;      /* (L, N, F) up */
    float *hg;      /* (L, N, F) silu(h1) * h3, likewise */
    float *sig;     /* (L, N, F) sigmoid(h1), kept with hg (computed from the same exponential) */
    float *att;     /* (L, B, H, T, T) attention probabilities, likewise (attention_forward) */
    float *mask2;   /* (L, N, C) dropout mask after w2 (likewise) */
    float *res2;    /* (L, N, C) block output */
    float *lnf;     /* (N, C) */
    float *rstdf;   /* (N) */
    float *logits;  /* (N, V) */
    float *probs;   /* (N, V); in training (lm_rows_only) the packed rows' logits, overwritten in place */
    float *losses;  /* (N) per-token -log p(target) */
    float *lnf_t;   /* (N, C) lnf of the rows with a target, packed (lm_rows_only) */
    float *loss_t;  /* (N) their losses, then their dlosses in backward */
} Acts;

/* Gradient scratch for backward: one layer's worth, reused layer by layer. */
typedef struct {
    float *dx;      /* (N, C) gradient flowing down the residual stream */
    float *dln;     /* (N, C) */
    float *dq, *dqr;/* (N, C) before / after RoPE */
    float *dk, *dkr;/* (N, KVC) */
    float *dv;      /* (N, KVC) */
    float *datty;   /* (N, C) */
    float *dproj;   /* (N, C) gradient of a sublayer output before dropout */
    float *dh1, *dh3, *dhg; /* (N, F) */
    float *dlogits; /* (N, V) */
    float *datt_buf;/* (2, T, T) attention scratch: forward's probabilities (not kept), backward's
                       dscores, and the recomputed probabilities (not kept) */
} Grads;

typedef struct {
    Config cfg;
    size_t n_params;
    float *params;   Weights w;     /* the parameters, one block */
    float *grads;    Weights g;     /* same layout */
    float *adam_m, *adam_v;         /* AdamW moments, same layout, allocated on first step */
    float *rope_cos, *rope_sin;     /* (max_seq_len, head_dim/2) */
    /* training state */
    float dropout;                  /* probability; used only when training */
    uint64_t dropout_seed;          /* set per step by the trainer */
    int B, T;                       /* shape the activations are allocated for */
    Acts a; float *acts_mem; size_t acts_cap;
    int keep;                       /* the last forward kept ln1, ln2, hg, sig and att for backward */
    int keep_ok;                    /* train_model sets it: its micro-batches bound what is kept */
    Grads d; float *grads_mem; size_t grads_cap;
    int *pos, *inputs, *targets; size_t rows_cap;
    int has_probs;                  /* forward computed probs/losses */
    /* Training sets this: logits, probs and the output layer's backward only
     * for rows with a target (an SFT prompt has none), packed in row order.
     * Rows without a target add exact zeros to the output layer's gradient
     * and nothing to the loss, so the bytes are the same, and a judge
     * example, two thirds prompt, trains about 10% faster. */
    int lm_rows_only;
    int *rows_t, *targets_t;        /* (N) the packed rows and their targets */
    int n_rows_t;                   /* rows packed by the last forward; -1: all rows, unpacked */
    /* Micro-batches (train_model): row0 is the first row of this forward's
     * rows in the whole step (dropout masks are indexed by it); emb_dx, when
     * set, receives backward's gradient at the embeddings (N, C) instead of
     * the embedding gradient, which the trainer adds once for the whole step. */
    int row0;
    float *emb_dx;
} Model;

static void model_init_buffers(Model *m) {
    const Config *c = &m->cfg;
    const char *why = config_invalid(c);
    if (why) die("invalid model config: %s", why);
    m->n_params = param_count(c);
    m->params = xcalloc(m->n_params, sizeof(float));
    weights_views(&m->w, m->params, c);
    m->grads = NULL; m->adam_m = m->adam_v = NULL;
    m->rope_cos = xmalloc((size_t)c->max_seq_len * (size_t)(cfg_head_dim(c) / 2) * sizeof(float));
    m->rope_sin = xmalloc((size_t)c->max_seq_len * (size_t)(cfg_head_dim(c) / 2) * sizeof(float));
    rope_tables(m->rope_cos, m->rope_sin, c->max_seq_len, cfg_head_dim(c), c->rope_theta);
    m->dropout = 0.0f; m->dropout_seed = 0;
    m->B = m->T = 0; m->acts_mem = NULL; m->grads_mem = NULL; m->pos = m->inputs = m->targets = NULL;
    m->acts_cap = m->grads_cap = m->rows_cap = 0;
    m->keep = 0; m->keep_ok = 0;
    m->has_probs = 0;
    m->lm_rows_only = 0; m->rows_t = m->targets_t = NULL; m->n_rows_t = -1;
    m->row0 = 0; m->emb_dx = NULL;
}

/* Initialisation (GPT-2 style): N(0, 0.02) for matrices, the two residual
 * output projections scaled by 1/sqrt(2L), norms at 1. One RNG stream, drawn
 * in storage order, so the same seed gives the same model everywhere. */
static void model_init_random(Model *m, uint64_t seed) {
    const Config *c = &m->cfg;
    size_t sizes[N_PTENSORS], i;
    float *p = m->params;
    float resid_scale = 0.02f / sqrtf(2.0f * (float)c->n_layers);
    Rng r;
    int t;
    rng_init(&r, seed, RNG_STREAM_INIT);
    param_sizes(c, sizes);
    for (t = 0; t < N_PTENSORS; t++) {
        int is_norm = (t == P_ATTN_NORM || t == P_FFN_NORM || t == P_FINAL_NORM);
        float std = (t == P_WO || t == P_W2) ? resid_scale : 0.02f;
        for (i = 0; i < sizes[t]; i++) p[i] = is_norm ? 1.0f : std * rng_normal(&r);
        p += sizes[t];
    }
}

static void model_free(Model *m) {
    free(m->params); free(m->grads); free(m->adam_m); free(m->adam_v);
    free(m->rope_cos); free(m->rope_sin); free(m->acts_mem); free(m->grads_mem);
    free(m->pos); free(m->inputs); free(m->targets); free(m->rows_t); free(m->targets_t);
    memset(m, 0, sizeof(*m));
}

/* Values backward would otherwise recompute (the norms' outputs, the gate,
 * the attention probabilities) are kept in train_model's micro-batches when
 * they fit in this many floats: 512 rows at M0's shape need 4.0M (16 MB).
 * Recomputing gives the same floats, so the choice never changes a byte; it
 * saves a third of the attention work and a tenth of a training step. DPO,
 * whose batch of pairs is one forward, recomputes (its stages take seconds;
 * keeping there raised make run's peak from 103 to 121 MB). */
#define KEEP_MAX_FLOATS ((size_t)8 << 20)
static size_t keep_max_floats = KEEP_MAX_FLOATS;  /* tests set 0 to check the recomputing path */

/* Carve the activation and gradient-scratch blocks for a (B, T) batch. The
 * blocks only grow: a smaller batch reuses them, so SFT batches of varying
 * length cost no allocation. */
static void model_alloc_acts(Model *m, int B, int T) {
    const Config *c = &m->cfg;
    size_t N = (size_t)B * (size_t)T, C = (size_t)c->dim, L = (size_t)c->n_layers, F = (size_t)c->hidden_dim;
    size_t V = (size_t)c->vocab_size, KVC = (size_t)cfg_kv_dim(c), H = (size_t)c->n_heads;
    size_t total, gtotal, off = 0;
    float *base;
    if (T > c->max_seq_len) die("sequence length %d exceeds the model's max_seq_len %d", T, c->max_seq_len);
    /* Not kept, to bound memory (the floats are the same either way): dropout masks when
     * there is no dropout, in training the probabilities beside their logits, and, unless
     * train_model's micro-batch fits them in KEEP_MAX_FLOATS, the attention probabilities
     * (recomputed per head in backward: attention_*_lean), the norms' outputs ln1, ln2
     * and the gate's silu(h1)*h3 (recomputed by the same functions in backward). */
    size_t NM = m->dropout > 0.0f ? L*N*C : 0, NP = m->lm_rows_only ? 0 : N*V;
    size_t NA = L * (size_t)B * H * (size_t)T * (size_t)T;
    m->keep = m->keep_ok && m->grads && 2*L*N*C + 2*L*N*F + NA <= keep_max_floats;
    size_t NL = m->keep ? L*N*C : 0, NG = m->keep ? L*N*F : 0;
    if (!m->keep) NA = 0;
    total = N*C + L*N + NL + L*N*C + 2*L*N*KVC + L*N*C + NM + L*N*C
          + L*N + NL + 2*L*N*F + 2*NG + NA + NM + L*N*C + N*C + N + N*V + NP + N + N*C + N;
    gtotal = 6*N*C + 3*N*KVC + 3*N*F + N*V + 2*(size_t)T*(size_t)T;
    if (total > m->acts_cap) {
        free(m->acts_mem);
        m->acts_mem = xcalloc(total, sizeof(float));
        m->acts_cap = total;
    }
    if (gtotal > m->grads_cap) {
        free(m->grads_mem);
        m->grads_mem = xcalloc(gtotal, sizeof(float));
        m->grads_cap = gtotal;
    }
    if (N > m->rows_cap) {
        free(m->pos); free(m->inputs); free(m->targets); free(m->rows_t); free(m->targets_t);
        m->rows_t = xmalloc(N * sizeof(int));
        m->targets_t = xmalloc(N * sizeof(int));
        m->pos = xmalloc(N * sizeof(int));
        m->inputs = xmalloc(N * sizeof(int));
        m->targets = xmalloc(N * sizeof(int));
        m->rows_cap = N;
    }
    base = m->acts_mem;
#define CARVE(field, count) do { m->a.field = base + off; off += (count); } while (0)
    CARVE(x0, N*C); CARVE(rstd1, L*N); CARVE(ln1, NL); CARVE(q, L*N*C); CARVE(k, L*N*KVC); CARVE(v, L*N*KVC);
    CARVE(atty, L*N*C); CARVE(mask1, NM); CARVE(res1, L*N*C);
    CARVE(rstd2, L*N); CARVE(ln2, NL); CARVE(h1, L*N*F); CARVE(h3, L*N*F); CARVE(hg, NG); CARVE(sig, NG); CARVE(att, NA);
    CARVE(mask2, NM); CARVE(res2, L*N*C); CARVE(lnf, N*C); CARVE(rstdf, N); CARVE(logits, N*V);
    CARVE(probs, NP); CARVE(losses, N); CARVE(lnf_t, N*C); CARVE(loss_t, N);
    if (!NP) m->a.probs = m->a.logits;
#undef CARVE
    if (off != total) die("internal: activation layout mismatch");
    base = m->grads_mem;
    off = 0;
#define CARVE(field, count) do { m->d.field = base + off; off += (count); } while (0)
    CARVE(dx, N*C); CARVE(dln, N*C); CARVE(dq, N*C); CARVE(dqr, N*C); CARVE(datty, N*C); CARVE(dproj, N*C);
    CARVE(dk, N*KVC); CARVE(dkr, N*KVC); CARVE(dv, N*KVC); CARVE(dh1, N*F); CARVE(dh3, N*F); CARVE(dhg, N*F);
    CARVE(dlogits, N*V); CARVE(datt_buf, 2*(size_t)T*(size_t)T);
#undef CARVE
    if (off != gtotal) die("internal: gradient layout mismatch");
    m->B = B; m->T = T;
}

/* Forward pass over a batch: inputs (B,T) token ids, targets (B,T) next ids
 * or -1 (no loss at that position; NULL = no loss at all: logits only).
 * Fills m->a.losses[n] = -log p(target) for every row with a target.
 * When training and m->dropout > 0, residual-branch dropout uses masks
 * derived from m->dropout_seed, layer and site (never from call order). */
static void model_forward(Model *m, const int *inputs, const int *targets, int B, int T, int training) {
    const Config *c = &m->cfg;
    const Weights *w = &m->w;
    Acts *a = &m->a;
    int C = c->dim, F = c->hidden_dim, V = c->vocab_size, H = c->n_heads, KVH = c->n_kv_heads;
    int hd = cfg_head_dim(c), KVC = cfg_kv_dim(c), N = B * T, l, n;
    int use_dropout = training && m->dropout > 0.0f;
    uint64_t first = (uint64_t)m->row0 * (uint64_t)C; /* this micro-batch's first element in the step's masks */
    const float *x;

    model_alloc_acts(m, B, T);
    for (n = 0; n < N; n++) {
        if (inputs[n] < 0 || inputs[n] >= V) die("token id %d out of range [0, %d)", inputs[n], V);
        m->pos[n] = n % T;
        m->inputs[n] = inputs[n];
        m->targets[n] = targets ? targets[n] : -1;
    }
    embedding_forward(a->x0, m->inputs, w->tok_emb, N, C);
    x = a->x0;
    for (l = 0; l < c->n_layers; l++) {
        size_t NC = (size_t)N * C, NK = (size_t)N * KVC, NF = (size_t)N * F;
        float *rstd1 = a->rstd1 + (size_t)l * N;
        float *q = a->q + l * NC, *k = a->k + l * NK, *v = a->v + l * NK;
        float *atty = a->atty + l * NC;
        float *mask1 = use_dropout ? a->mask1 + l * NC : NULL, *res1 = a->res1 + l * NC;
        float *rstd2 = a->rstd2 + (size_t)l * N;
        float *h1 = a->h1 + l * NF, *h3 = a->h3 + l * NF;
        /* values backward uses: kept, or (not kept, backward recomputes them) in gradient
         * scratch that is free until then */
        float *ln1 = m->keep ? a->ln1 + l * NC : m->d.dln, *ln2 = m->keep ? a->ln2 + l * NC : m->d.dln;
        float *hg = m->keep ? a->hg + l * NF : m->d.dh1;
        float *mask2 = use_dropout ? a->mask2 + l * NC : NULL, *res2 = a->res2 + l * NC;
        float *proj = m->d.dproj; /* scratch for a sublayer's output before the residual add */

        /* attention block */
        rmsnorm_forward(ln1, rstd1, x, w->attn_norm + (size_t)l * C, N, C, c->norm_eps);
        matmul_forward(q, ln1, w->wq + (size_t)l * C * C, N, C, C);
        matmul_forward(k, ln1, w->wk + (size_t)l * KVC * C, N, C, KVC);
        matmul_forward(v, ln1, w->wv + (size_t)l * KVC * C, N, C, KVC);
        rope_forward(q, q, m->pos, m->rope_cos, m->rope_sin, N, H, hd);
        rope_forward(k, k, m->pos, m->rope_cos, m->rope_sin, N, KVH, hd);
        if (m->keep) attention_forward(atty, a->att + (size_t)l * B * H * T * T, q, k, v, B, T, H, KVH, hd);
        else attention_forward_lean(atty, m->d.datt_buf, q, k, v, B, T, H, KVH, hd);
        matmul_forward(proj, atty, w->wo + (size_t)l * C * C, N, C, C);
        if (use_dropout) dropout_forward(proj, mask1, proj, NC, m->dropout, hash64(m->dropout_seed, (uint64_t)(2 * l)), first);
        residual_forward(res1, x, proj, NC);

        /* feed-forward block */
        rmsnorm_forward(ln2, rstd2, res1, w->ffn_norm + (size_t)l * C, N, C, c->norm_eps);
        matmul_forward(h1, ln2, w->w1 + (size_t)l * F * C, N, C, F);
        matmul_forward(h3, ln2, w->w3 + (size_t)l * F * C, N, C, F);
        if (m->keep) swiglu_forward_sig(hg, a->sig + l * NF, h1, h3, NF);
        else swiglu_forward(hg, h1, h3, NF);
        matmul_forward(proj, hg, w->w2 + (size_t)l * C * F, N, F, C);
        if (use_dropout) dropout_forward(proj, mask2, proj, NC, m->dropout, hash64(m->dropout_seed, (uint64_t)(2 * l + 1)), first);
        residual_forward(res2, res1, proj, NC);
        x = res2;
    }
    rmsnorm_forward(a->lnf, a->rstdf, x, w->final_norm, N, C, c->norm_eps);
    m->has_probs = 0;
    m->n_rows_t = -1;
    if (targets && m->lm_rows_only) {   /* logits (n_rows_t, V) of the packed rows only */
        int nt = 0, j;
        for (n = 0; n < N; n++) {
            a->losses[n] = 0.0f;
            if (m->targets[n] < 0) continue;
            m->rows_t[nt] = n; m->targets_t[nt] = m->targets[n];
            memcpy(a->lnf_t + (size_t)nt * C, a->lnf + (size_t)n * C, (size_t)C * sizeof(float));
            nt++;
        }
        matmul_forward(a->logits, a->lnf_t, w->output, nt, C, V);
        softmax_crossentropy_forward(a->loss_t, a->probs, a->logits, m->targets_t, nt, V);
        for (j = 0; j < nt; j++) a->losses[m->rows_t[j]] = a->loss_t[j];
        m->n_rows_t = nt;
        m->has_probs = 1;
        return;
    }
    matmul_forward(a->logits, a->lnf, w->output, N, C, V);
    if (targets) {
        softmax_crossentropy_forward(a->losses, a->probs, a->logits, m->targets, N, V);
        m->has_probs = 1;
    }
}

/* Backward pass after model_forward(..., targets, training). dlosses[n] is
 * dLoss/dlosses[n] (0 where a row does not count); gradients ACCUMULATE into
 * m->grads (the caller zeroes them once per optimizer step). */
static void model_backward(Model *m, const float *dlosses, int training) {
    const Config *c = &m->cfg;
    const Weights *w = &m->w;
    Weights *g = &m->g;
    Acts *a = &m->a;
    Grads *d = &m->d;
    int B = m->B, T = m->T, N = B * T, C = c->dim, F = c->hidden_dim, V = c->vocab_size;
    int H = c->n_heads, KVH = c->n_kv_heads, hd = cfg_head_dim(c), KVC = cfg_kv_dim(c), l;
    int use_dropout = training && m->dropout > 0.0f;
    size_t NC = (size_t)N * C, NK = (size_t)N * KVC, NF = (size_t)N * F;

    if (!m->grads) die("internal: backward without gradient buffers");
    if (!m->has_probs) die("internal: backward needs a forward pass with targets");
    if (m->n_rows_t >= 0) {           /* the packed rows of lm_rows_only; the others' dln stays 0 */
        int nt = m->n_rows_t, j;
        for (j = 0; j < nt; j++) a->loss_t[j] = dlosses[m->rows_t[j]];
        memset(d->dlogits, 0, (size_t)nt * V * sizeof(float));
        softmax_crossentropy_backward(d->dlogits, a->loss_t, a->probs, m->targets_t, nt, V);
        /* dq is free until the attention block */
        matmul_backward_set(d->dq, g->output, d->dlogits, a->lnf_t, w->output, nt, C, V);
        memset(d->dln, 0, NC * sizeof(float));
        for (j = 0; j < nt; j++)
            memcpy(d->dln + (size_t)m->rows_t[j] * C, d->dq + (size_t)j * C, (size_t)C * sizeof(float));
    } else {
        memset(d->dlogits, 0, (size_t)N * V * sizeof(float));
        softmax_crossentropy_backward(d->dlogits, dlosses, a->probs, m->targets, N, V);
        matmul_backward_set(d->dln, g->output, d->dlogits, a->lnf, w->output, N, C, V);
    }
    memset(d->dx, 0, NC * sizeof(float));
    rmsnorm_backward(d->dx, g->final_norm, d->dln, c->n_layers ? a->res2 + (size_t)(c->n_layers - 1) * NC : a->x0,
                     w->final_norm, a->rstdf, N, C);

    for (l = c->n_layers - 1; l >= 0; l--) {
        const float *x_in = l == 0 ? a->x0 : a->res2 + (size_t)(l - 1) * NC;
        float *rstd1 = a->rstd1 + (size_t)l * N;
        float *q = a->q + l * NC, *k = a->k + l * NK, *v = a->v + l * NK;
        float *atty = a->atty + l * NC;
        float *res1 = a->res1 + l * NC, *rstd2 = a->rstd2 + (size_t)l * N;
        float *h1 = a->h1 + l * NF, *h3 = a->h3 + l * NF;
        /* kept by forward, or recomputed by the forward's own calls (the same floats; rstd is
         * rewritten unchanged), each into a scratch buffer that is free while it is needed */
        float *hg = m->keep ? a->hg + l * NF : d->dh1;
        float *ln2 = m->keep ? a->ln2 + l * NC : d->datty, *ln1 = m->keep ? a->ln1 + l * NC : d->datty;
        const float *dsub; /* gradient of the sublayer output before dropout */

        /* feed-forward block: res2 = res1 + dropout(hg @ w2^T); d->dx holds dres2 */
        if (use_dropout) {
            memset(d->dproj, 0, NC * sizeof(float));
            dropout_backward(d->dproj, d->dx, a->mask2 + l * NC, NC);
            dsub = d->dproj;
        } else {
            dsub = d->dx;
        }
        if (!m->keep) swiglu_forward(hg, h1, h3, NF);
        matmul_backward_set(d->dhg, g->w2 + (size_t)l * C * F, dsub, hg, w->w2 + (size_t)l * C * F, N, F, C);
        memset(d->dh1, 0, NF * sizeof(float));
        memset(d->dh3, 0, NF * sizeof(float));
        if (m->keep) swiglu_backward_sig(d->dh1, d->dh3, d->dhg, h1, h3, a->sig + l * NF, NF);
        else swiglu_backward(d->dh1, d->dh3, d->dhg, h1, h3, NF);
        if (!m->keep) rmsnorm_forward(ln2, rstd2, res1, w->ffn_norm + (size_t)l * C, N, C, c->norm_eps);
        matmul_backward_set(d->dln, g->w1 + (size_t)l * F * C, d->dh1, ln2, w->w1 + (size_t)l * F * C, N, C, F);
        matmul_backward(d->dln, g->w3 + (size_t)l * F * C, d->dh3, ln2, w->w3 + (size_t)l * F * C, N, C, F);
        /* dres1 = dres2 (the skip path) + the norm's contribution: accumulate in place */
        rmsnorm_backward(d->dx, g->ffn_norm + (size_t)l * C, d->dln, res1, w->ffn_norm + (size_t)l * C, rstd2, N, C);

        /* attention block: res1 = x_in + dropout(atty @ wo^T); d->dx holds dres1 */
        if (use_dropout) {
            memset(d->dproj, 0, NC * sizeof(float));
            dropout_backward(d->dproj, d->dx, a->mask1 + l * NC, NC);
            dsub = d->dproj;
        } else {
            dsub = d->dx;
        }
        matmul_backward_set(d->datty, g->wo + (size_t)l * C * C, dsub, atty, w->wo + (size_t)l * C * C, N, C, C);
        memset(d->dqr, 0, NC * sizeof(float));
        memset(d->dkr, 0, NK * sizeof(float));
        memset(d->dv, 0, NK * sizeof(float));
        if (m->keep)
            attention_backward(d->dqr, d->dkr, d->dv, d->datt_buf, d->datty, a->att + (size_t)l * B * H * T * T,
                               q, k, v, B, T, H, KVH, hd);
        else
            attention_backward_lean(d->dqr, d->dkr, d->dv, d->datt_buf, d->datty, q, k, v, B, T, H, KVH, hd);
        memset(d->dq, 0, NC * sizeof(float));
        memset(d->dk, 0, NK * sizeof(float));
        rope_backward(d->dq, d->dqr, m->pos, m->rope_cos, m->rope_sin, N, H, hd);
        rope_backward(d->dk, d->dkr, m->pos, m->rope_cos, m->rope_sin, N, KVH, hd);
        if (!m->keep) rmsnorm_forward(ln1, rstd1, x_in, w->attn_norm + (size_t)l * C, N, C, c->norm_eps);
        matmul_backward_set(d->dln, g->wq + (size_t)l * C * C, d->dq, ln1, w->wq + (size_t)l * C * C, N, C, C);
        matmul_backward(d->dln, g->wk + (size_t)l * KVC * C, d->dk, ln1, w->wk + (size_t)l * KVC * C, N, C, KVC);
        matmul_backward(d->dln, g->wv + (size_t)l * KVC * C, d->dv, ln1, w->wv + (size_t)l * KVC * C, N, C, KVC);
        rmsnorm_backward(d->dx, g->attn_norm + (size_t)l * C, d->dln, x_in, w->attn_norm + (size_t)l * C, rstd1, N, C);
    }
    if (m->emb_dx) memcpy(m->emb_dx, d->dx, NC * sizeof(float));
    else embedding_backward(g->tok_emb, d->dx, m->inputs, N, C);
}

static void model_alloc_grads(Model *m) {
    if (!m->grads) {
        m->grads = xcalloc(m->n_params, sizeof(float));
        weights_views(&m->g, m->grads, &m->cfg);
    }
}

/* ==========================================================================
 * 3. Checkpoints
 *
 * File layout, version 1, all little-endian (README "Checkpoint"):
 *   magic "SRLMCKPT" (8 bytes), u32 version = 1,
 *   u32 dim, n_layers, n_heads, n_kv_heads, hidden_dim, vocab_size, max_seq_len, tied,
 *   f32 rope_theta, f32 norm_eps,
 *   u32 meta_len, meta_len bytes of UTF-8 provenance text (no NUL),
 *   u64 n_params, n_params x f32 parameters in storage order,
 *   32 bytes: SHA-256 of every byte before it.
 * The provenance text is free UTF-8 naming what made the file (README
 * "Checkpoint"); the loader checks every field and the digest before use.
 * Paper step: none; how M0, M1, M2, M3 are kept between steps.
 * ========================================================================== */

#define CKPT_MAGIC "SRLMCKPT"
#define CKPT_VERSION 1u
#define CKPT_HEADER_BYTES (8 + 4 + 8 * 4 + 2 * 4)

static void ckpt_serialize(Buf *b, const Model *m, const char *meta) {
    const Config *c = &m->cfg;
    size_t i;
    uint8_t digest[32];
    size_t mlen = meta ? strlen(meta) : 0;
    buf_put(b, CKPT_MAGIC, 8);
    buf_u32(b, CKPT_VERSION);
    buf_u32(b, (uint32_t)c->dim); buf_u32(b, (uint32_t)c->n_layers); buf_u32(b, (uint32_t)c->n_heads);
    buf_u32(b, (uint32_t)c->n_kv_heads); buf_u32(b, (uint32_t)c->hidden_dim); buf_u32(b, (uint32_t)c->vocab_size);
    buf_u32(b, (uint32_t)c->max_seq_len); buf_u32(b, (uint32_t)c->tied);
    buf_f32(b, c->rope_theta); buf_f32(b, c->norm_eps);
    buf_u32(b, (uint32_t)mlen);
    if (mlen) buf_put(b, meta, mlen);
    buf_u64(b, (uint64_t)m->n_params);
    buf_reserve(b, m->n_params * 4 + 32);
    for (i = 0; i < m->n_params; i++) { le_put_f32(b->p + b->n, m->params[i]); b->n += 4; }
    sha256(b->p, b->n, digest);
    buf_put(b, digest, 32);
}

/* Write a checkpoint atomically; prints "<path>  sha256 <hex>" style digest into hex_out if given. */
static int ckpt_save(const char *path, const Model *m, const char *meta, char hex_out[65]) {
    Buf b = {0, 0, 0};
    int rc;
    ckpt_serialize(&b, m, meta);
    if (hex_out) { uint8_t dg[32]; sha256(b.p, b.n, dg); sha256_hex(dg, hex_out); }
    rc = write_file_atomic(path, b.p, b.n);
    free(b.p);
    return rc;
}

/* Parse a checkpoint image. Returns NULL and the model filled, or a static
 * description of the fault (the caller names the file). meta_out (optional)
 * receives a malloc'd copy of the provenance text. */
static const char *ckpt_parse_sha(Model *m, const uint8_t *p, size_t n, char **meta_out, uint8_t file_sha[32]);

/* The config in a checkpoint's fixed header (at least CKPT_HEADER_BYTES).
 * u32 fields above 2^31 become negative ints and fail config_invalid. */
static Config ckpt_header_config(const uint8_t *h) {
    Config c;
    c.dim = (int)le_get_u32(h + 12); c.n_layers = (int)le_get_u32(h + 16); c.n_heads = (int)le_get_u32(h + 20);
    c.n_kv_heads = (int)le_get_u32(h + 24); c.hidden_dim = (int)le_get_u32(h + 28); c.vocab_size = (int)le_get_u32(h + 32);
    c.max_seq_len = (int)le_get_u32(h + 36); c.tied = (int)le_get_u32(h + 40);
    c.rope_theta = le_get_f32(h + 44); c.norm_eps = le_get_f32(h + 48);
    return c;
}
static const char *ckpt_parse(Model *m, const uint8_t *p, size_t n, char **meta_out) {
    return ckpt_parse_sha(m, p, n, meta_out, NULL);
}

/* ckpt_parse, and (file_sha not NULL) the SHA-256 of the whole file from the
 * same pass: the checksum's state after n - 32 bytes, continued over them. */
static const char *ckpt_parse_sha(Model *m, const uint8_t *p, size_t n, char **meta_out, uint8_t file_sha[32]) {
    static char msg[160];
    Config c;
    uint32_t version, mlen;
    uint64_t np;
    size_t off, i, need;
    uint8_t digest[32];
    uint32_t nonfinite = 0;
    Sha256 st, whole;
    if (n == 0) return "empty file";
    if (n < 8 || memcmp(p, CKPT_MAGIC, 8) != 0) return "not an srlm checkpoint (bad magic)";
    if (n < 12) return "truncated in the header";
    version = le_get_u32(p + 8);
    if (version != CKPT_VERSION) {
        snprintf(msg, sizeof msg, "unsupported checkpoint version %lu (this build reads %u)", (unsigned long)version, CKPT_VERSION);
        return msg;
    }
    if (n < CKPT_HEADER_BYTES + 4) return "truncated in the header";
    c = ckpt_header_config(p);
    if (config_invalid(&c)) { snprintf(msg, sizeof msg, "invalid config: %s", config_invalid(&c)); return msg; }
    mlen = le_get_u32(p + CKPT_HEADER_BYTES);
    off = CKPT_HEADER_BYTES + 4;
    if (mlen > n - off) return "truncated in the metadata";
    off += mlen;
    if (n - off < 8) return "truncated before the parameter count";
    np = le_get_u64(p + off);
    off += 8;
    if (np != (uint64_t)param_count(&c)) {
        snprintf(msg, sizeof msg, "parameter count %llu does not match the config (%lu)",
                 (unsigned long long)np, (unsigned long)param_count(&c));
        return msg;
    }
    need = off + (size_t)np * 4 + 32;
    if (n < need) return "truncated in the parameters or checksum";
    if (n > need) return "trailing bytes after the checksum";
    sha256_init(&st);
    sha256_update(&st, p, n - 32);
    whole = st;
    sha256_final(&st, digest);
    if (memcmp(digest, p + n - 32, 32) != 0) return "checksum mismatch (file corrupted)";
    /* one branch-free pass that vectorises; the index is searched only for the message */
    for (i = 0; i < (size_t)np; i++) nonfinite |= (le_get_u32(p + off + 4 * i) & 0x7f800000u) == 0x7f800000u;
    if (nonfinite) {
        for (i = 0; f32_isfinite(le_get_f32(p + off + 4 * i)); i++) {}
        snprintf(msg, sizeof msg, "non-finite parameter at index %lu", (unsigned long)i);
        return msg;
    }
    if (file_sha) { sha256_update(&whole, p + n - 32, 32); sha256_final(&whole, file_sha); }
    memset(m, 0, sizeof(*m));
    m->cfg = c;
    model_init_buffers(m);
    for (i = 0; i < (size_t)np; i++) m->params[i] = le_get_f32(p + off + 4 * i);
    if (meta_out) {
        *meta_out = xmalloc(mlen + 1);
        memcpy(*meta_out, p + CKPT_HEADER_BYTES + 4, mlen);
        (*meta_out)[mlen] = 0;
    }
    return NULL;
}

/* Read a checkpoint file, but never more than its header implies: the fixed
 * header first, then (if it is a valid one) exactly the metadata, the
 * parameters and the checksum it announces, plus one byte to notice
 * trailing garbage. A file that is not a checkpoint costs 56 bytes. */
static int ckpt_read(const char *path, uint8_t **data, size_t *n) {
    struct stat st;
    FILE *f = open_read(path, &st);
    uint8_t head[CKPT_HEADER_BYTES + 4], *buf;
    size_t got, need = sizeof head, cap;
    if (!f) return -1;
    got = fread(head, 1, sizeof head, f);
    if (got == sizeof head && memcmp(head, CKPT_MAGIC, 8) == 0 && le_get_u32(head + 8) == CKPT_VERSION) {
        Config c;
        c = ckpt_header_config(head);
        if (!config_invalid(&c) && param_count(&c) < SIZE_MAX / 8)
            need += (size_t)le_get_u32(head + CKPT_HEADER_BYTES) + 8 + 4 * param_count(&c) + 32;
    }
    /* the buffer grows with what actually arrives: a header that claims more
     * than the file holds costs no more than the file */
    cap = S_ISREG(st.st_mode) && (uintmax_t)st.st_size < (uintmax_t)need ? (size_t)st.st_size + 1 : need + 1;
    if (cap > ((size_t)1 << 20) && !S_ISREG(st.st_mode)) cap = (size_t)1 << 20;
    if (cap < sizeof head) cap = sizeof head;
    buf = malloc(cap);
    if (!buf) { fclose(f); fprintf(stderr, "srlm: %s: out of memory (%lu bytes)\n", path, (unsigned long)cap); return -1; }
    memcpy(buf, head, got);
    while (got == sizeof head || (got > sizeof head && got < need + 1)) {
        size_t k;
        if (got == cap) {
            uint8_t *nb;
            if (cap >= need + 1) break;
            cap = cap > (need + 1) / 2 ? need + 1 : cap * 2;
            nb = realloc(buf, cap);
            if (!nb) { free(buf); fclose(f); fprintf(stderr, "srlm: %s: out of memory\n", path); return -1; }
            buf = nb;
        }
        k = fread(buf + got, 1, cap - got, f);
        got += k;
        if (k == 0) break;
    }
    if (ferror(f)) {
        int e = errno;
        free(buf); fclose(f);
        fprintf(stderr, "srlm: %s: read error: %s\n", path, e ? strerror(e) : "unknown");
        return -1;
    }
    fclose(f);
    *data = buf;
    *n = got;
    return 0;
}

/* The fast way to load a sound checkpoint: a regular file exactly as long as
 * its header announces is read straight into the parameter block, 1 MB at a
 * time, and each chunk is hashed, checked for non-finite values and decoded
 * from little-endian while it is still in cache: one pass over the bytes and
 * one buffer, where ckpt_read + ckpt_parse take three passes and two. Any
 * fault returns -1 with nothing printed and nothing kept; ckpt_load then
 * reads the file the careful way, which names the fault. */
static int ckpt_load_stream(Model *m, const char *path, uint8_t file_sha[32]) {
    enum { CHUNK = 1 << 18 };  /* floats per chunk: 1 MB, fits in L2 */
    uint8_t head[CKPT_HEADER_BYTES + 4], tail[33], meta[4096];
    FILE *f = fopen(path, "rb");
    struct stat st;
    Config c;
    Sha256 sha, before_sum;
    uint32_t mlen, nonfinite = 0;
    size_t np, i, k, got;
    int ok = 0;
    const uint32_t one = 1;
    const int host_little_endian = *(const uint8_t *)&one == 1;
    if (!f) return -1;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode) || fread(head, 1, sizeof head, f) != sizeof head ||
        memcmp(head, CKPT_MAGIC, 8) != 0 || le_get_u32(head + 8) != CKPT_VERSION) { fclose(f); return -1; }
    c = ckpt_header_config(head);
    mlen = le_get_u32(head + CKPT_HEADER_BYTES);
    if (config_invalid(&c) || param_count(&c) >= SIZE_MAX / 8) { fclose(f); return -1; }
    np = param_count(&c);
    /* the size must be exact before anything the header announces is allocated */
    if ((uintmax_t)st.st_size != (uintmax_t)sizeof head + mlen + 8 + (uintmax_t)np * 4 + 32) { fclose(f); return -1; }
    sha256_init(&sha);
    sha256_update(&sha, head, sizeof head);
    for (got = 0; got < mlen; got += k) {
        k = mlen - got < sizeof meta ? mlen - got : sizeof meta;
        if (fread(meta, 1, k, f) != k) { fclose(f); return -1; }
        sha256_update(&sha, meta, k);
    }
    if (fread(meta, 1, 8, f) != 8 || le_get_u64(meta) != (uint64_t)np) { fclose(f); return -1; }
    sha256_update(&sha, meta, 8);
    memset(m, 0, sizeof(*m));
    m->cfg = c;
    model_init_buffers(m);
    for (i = 0; i < np; i += k) {
        float *p = m->params + i;
        uint8_t *b = (uint8_t *)p;
        size_t j;
        k = np - i < CHUNK ? np - i : CHUNK;
        if (fread(b, 4, k, f) != k) break;
        sha256_update(&sha, b, 4 * k);
        for (j = 0; j < k; j++) nonfinite |= (le_get_u32(b + 4 * j) & 0x7f800000u) == 0x7f800000u;
        if (!host_little_endian)  /* elsewhere each float already is its own bytes */
            for (j = 0; j < k; j++) p[j] = le_get_f32(b + 4 * j);
    }
    if (i >= np && !nonfinite && fread(tail, 1, sizeof tail, f) == 32) {
        uint8_t digest[32];
        before_sum = sha;
        sha256_final(&sha, digest);
        if (memcmp(digest, tail, 32) == 0) {
            ok = 1;
            if (file_sha) { sha256_update(&before_sum, tail, 32); sha256_final(&before_sum, file_sha); }
        }
    }
    if (ferror(f)) ok = 0;
    fclose(f);
    if (!ok) { model_free(m); return -1; }
    return 0;
}

/* Load a checkpoint or die with one line naming the file and the fault.
 * sha_hex (optional) receives the SHA-256 of the whole file. */
static void ckpt_load(Model *m, const char *path, char sha_hex[65]) {
    uint8_t *data;
    size_t n;
    const char *why;
    uint8_t dg[32];
    if (ckpt_load_stream(m, path, dg) == 0) {
        if (sha_hex) sha256_hex(dg, sha_hex);
        return;
    }
    if (ckpt_read(path, &data, &n) != 0) exit(1);
    why = ckpt_parse_sha(m, data, n, NULL, dg);
    if (why) { free(data); die("%s: %s", path, why); }
    if (sha_hex) sha256_hex(dg, sha_hex);
    free(data);
}

/* ==========================================================================
 * 4. Training: AdamW with decoupled weight decay, warm-up + cosine/linear
 *    decay to a floor, global-norm clipping, dropout on its own stream,
 *    and the plain next-token loop that `srlm train` (pretraining M0) runs.
 *    Paper step: "Training Details" (the optimizer and schedules every
 *    fine-tuning step uses); pretraining M0 stands in for Llama 2's.
 * ========================================================================== */

/* Rows per forward/backward in training (TrainConfig.micro_rows): bounds the
 * stored activations (about 27 KB a row at M0's shape, 54 KB at T = 256 with
 * the values kept for backward, KEEP_MAX_FLOATS) without changing a byte.
 * 512 rows also train fastest here: at M0's width a row's activations of one
 * layer stay in the L2 cache between forward and backward (make bench, 16 x
 * 256: 256, 512, 1024, 2048 rows 9,006, 8,983, 8,869, 8,172 tok/s at dim 128;
 * 512 rows 2,884 at dim 256, 1024 rows 2,807). */
#define TRAIN_MICRO_ROWS 512

typedef struct {
    int steps;          /* optimizer steps */
    int batch;          /* sequences per step (B) */
    int seq;            /* tokens per sequence (T) */
    float lr, lr_min;   /* peak and floor */
    int warmup;         /* linear warm-up steps */
    int linear;         /* 1: linear decay; 0: cosine */
    float b1, b2, eps, weight_decay, clip;
    float dropout;
    uint64_t seed;
    int log_every;      /* 0 = quiet */
    int micro_rows;     /* at most this many rows (sequences x tokens) per forward/backward;
                           0: the whole batch at once. The bytes are the same either way. */
} TrainConfig;

static TrainConfig train_config_default(void) {
    TrainConfig t;
    t.steps = 200; t.batch = 16; t.seq = 128; t.lr = 3e-3f; t.lr_min = 3e-4f; t.warmup = 20; t.linear = 0;
    t.b1 = 0.9f; t.b2 = 0.95f; t.eps = 1e-8f; t.weight_decay = 0.1f; t.clip = 1.0f; t.dropout = 0.0f;
    t.seed = 1; t.log_every = 10; t.micro_rows = TRAIN_MICRO_ROWS;
    return t;
}

/* Learning rate at optimizer step s (0-based). Cosine uses our own ts_cos in
 * double, rounded once to float, so every build agrees. */
static float lr_at(const TrainConfig *t, int s) {
    double progress;
    if (t->warmup > 0 && s < t->warmup) return t->lr * (float)(s + 1) / (float)t->warmup;
    if (t->steps <= t->warmup) return t->lr;
    progress = (double)(s - t->warmup) / (double)(t->steps - t->warmup);
    if (progress > 1.0) progress = 1.0;
    if (t->linear) return (float)((double)t->lr_min + ((double)t->lr - (double)t->lr_min) * (1.0 - progress));
    return (float)((double)t->lr_min + 0.5 * ((double)t->lr - (double)t->lr_min) * (1.0 + ts_cos(3.14159265358979323846 * progress)));
}

/* Optimizer state that must travel with a resumed run. */
typedef struct { int step; double b1_pow, b2_pow; } OptState;

/* One AdamW step over all parameters from the accumulated gradients.
 * Norm weights (1-D gains) get no weight decay; matrices do.
 * Returns the gradient norm before clipping. */
static float optimizer_step(Model *m, OptState *os, const TrainConfig *t, float lr) {
    size_t sizes[N_PTENSORS];
    double sumsq = sum_squares(m->grads, m->n_params);
    float norm = (float)sqrt(sumsq);
    float bc1, bc2;
    size_t off = 0, i;
    int k;
    if (!m->adam_m) {
        m->adam_m = xcalloc(m->n_params, sizeof(float));
        m->adam_v = xcalloc(m->n_params, sizeof(float));
    }
    if (t->clip > 0.0f && norm > t->clip) {
        float scale = t->clip / norm;
        for (i = 0; i < m->n_params; i++) m->grads[i] *= scale;
    }
    /* bias corrections: the powers advance once per step, not per parameter */
    os->step += 1;
    os->b1_pow *= (double)t->b1;
    os->b2_pow *= (double)t->b2;
    bc1 = (float)(1.0 - os->b1_pow);
    bc2 = (float)(1.0 - os->b2_pow);
    param_sizes(&m->cfg, sizes);
    for (k = 0; k < N_PTENSORS; k++) {
        int is_norm = (k == P_ATTN_NORM || k == P_FFN_NORM || k == P_FINAL_NORM);
        adamw_update(m->params + off, m->grads + off, m->adam_m + off, m->adam_v + off, sizes[k],
                     lr, t->b1, t->b2, t->eps, is_norm ? 0.0f : t->weight_decay, bc1, bc2);
        off += sizes[k];
    }
    return norm;
}

/* A source of training batches: fills inputs/targets (B*T each, target -1 =
 * no loss) for optimizer step s. Pretraining and SFT/DPO provide their own. */
typedef struct Batcher {
    /* fill B rows of at most T_cap tokens; returns the row length T used */
    int (*next)(struct Batcher *self, int step, int *inputs, int *targets, int B, int T_cap);
    void *ctx;
} Batcher;

/* Pretraining batches: windows of T+1 tokens at positions drawn from the
 * data stream seeded by (seed, step) — reproducible and resumable anywhere. */
typedef struct { const int *tokens; size_t n; uint64_t seed; } StreamData;

static int stream_next(Batcher *self, int step, int *inputs, int *targets, int B, int T) {
    const StreamData *sd = self->ctx;
    Rng r;
    int b, t;
    rng_init(&r, hash64(sd->seed, (uint64_t)step), RNG_STREAM_DATA);
    for (b = 0; b < B; b++) {
        size_t start = 0, span = sd->n > (size_t)T ? sd->n - (size_t)T : 1;
        if (span > 1) {
            /* two 32-bit draws make a 64-bit offset; modulo bias is < 2^-32 here */
            uint64_t u = ((uint64_t)rng_u32(&r) << 32) | rng_u32(&r);
            start = (size_t)(u % (uint64_t)span);
        }
        for (t = 0; t < T; t++) {
            size_t i = start + (size_t)t;
            inputs[b * T + t] = i < sd->n ? sd->tokens[i] : 0;
            targets[b * T + t] = i + 1 < sd->n ? sd->tokens[i + 1] : -1;
        }
    }
    return T;
}

/* The training loop: for each step, draw a batch, forward, backward with the
 * loss averaged over rows that have a target, clip, AdamW.
 * A batch longer than t->micro_rows rows runs as micro-batches of whole
 * sequences, one forward/backward each, into the same gradients: activation
 * memory follows the micro-batch, and the bytes do not change, because every
 * gradient sum already runs over the rows in order, starting from the
 * gradient's value (matmul_backward, rmsnorm_backward), dropout masks are
 * indexed by the row in the whole step (Model.row0), and the embedding
 * gradient, which a tied output head also adds to, gets every row's
 * contribution after the last micro-batch, as it would after one big
 * backward (Model.emb_dx). test_micro_batches checks the bytes. */
static float train_model(Model *m, const TrainConfig *t, Batcher *batcher, const char *label) {
    int B = t->batch, T_cap = t->seq, s, n;
    int *inputs = xmalloc((size_t)B * T_cap * sizeof(int)), *targets = xmalloc((size_t)B * T_cap * sizeof(int));
    float *dlosses = xmalloc((size_t)B * T_cap * sizeof(float)), *emb_dx = NULL;
    double tokens_seen = 0.0;
    OptState os = {0, 1.0, 1.0};
    double t0 = now_seconds(), ema = 0.0;
    float last = 0.0f;
    model_alloc_grads(m);
    m->dropout = t->dropout;
    m->lm_rows_only = 1;
    m->keep_ok = 1;
    for (s = 0; s < t->steps; s++) {
        int count = 0, T, N;
        double loss = 0.0;
        float lr = lr_at(t, s), norm;
        T = batcher->next(batcher, s, inputs, targets, B, T_cap);
        N = B * T;
        tokens_seen += N;
        for (n = 0; n < N; n++) count += targets[n] >= 0;
        if (count == 0) continue; /* nothing to learn from this batch */
        m->dropout_seed = hash64(t->seed ^ 0x64726f706f7574ull, (uint64_t)s); /* "dropout" */
        for (n = 0; n < N; n++) dlosses[n] = targets[n] >= 0 ? 1.0f / (float)count : 0.0f;
        memset(m->grads, 0, m->n_params * sizeof(float));
        {
            int per = t->micro_rows > 0 ? t->micro_rows / T : B, b0, nb;
            if (per < 1) per = 1;
            if (per > B) per = B;
            nb = (B + per - 1) / per;   /* micro-batches, as even as whole sequences allow */
            per = (B + nb - 1) / nb;
            if (nb > 1 && !emb_dx) emb_dx = xmalloc((size_t)B * T_cap * (size_t)m->cfg.dim * sizeof(float));
            for (b0 = 0; b0 < B; b0 += per) {
                int bm = B - b0 < per ? B - b0 : per;
                size_t r0 = (size_t)b0 * T;
                m->row0 = (int)r0;
                m->emb_dx = nb > 1 ? emb_dx + r0 * (size_t)m->cfg.dim : NULL;
                model_forward(m, inputs + r0, targets + r0, bm, T, 1);
                for (n = 0; n < bm * T; n++) if (targets[r0 + n] >= 0) loss += m->a.losses[n];
                model_backward(m, dlosses + r0, 1);
            }
            if (nb > 1) embedding_backward(m->g.tok_emb, emb_dx, inputs, N, m->cfg.dim);
            m->row0 = 0; m->emb_dx = NULL;
        }
        loss /= count;
        norm = optimizer_step(m, &os, t, lr);
        last = (float)loss;
        ema = s == 0 ? loss : 0.9 * ema + 0.1 * loss;
        if (t->log_every > 0 && (s % t->log_every == 0 || s == t->steps - 1)) {
            double el = now_seconds() - t0;
            fprintf(stderr, "%s step %d/%d loss %.4f (avg %.4f) lr %.3e gnorm %.3f | %.0f tok/s, ETA %.0fs\n",
                    label, s + 1, t->steps, loss, ema, (double)lr, (double)norm,
                    tokens_seen / (el > 0 ? el : 1e-9), el / (s + 1) * (t->steps - s - 1));
        }
    }
    m->dropout = 0.0f;
    m->lm_rows_only = 0;
    m->keep_ok = 0;
    free(inputs); free(targets); free(dlosses); free(emb_dx);
    return last;
}

/* ==========================================================================
 * 5. Generation: a KV cache and batched decode steps.
 *
 * A decode step takes R rows; row i feeds token tok[i] at position pos[i]
 * of sequence slot slot[i]. Rows of the same slot must come in increasing
 * position order: every row's keys and values are written to the cache
 * before any attention is computed, so a whole prompt can be prefilled in
 * one step and several sequences decoded together. Each output element
 * uses the same summation order as the training forward pass, so logits
 * are bit-identical to model_forward's (tests check it). Sampling
 * (temperature, top-p) draws from each sequence's own RNG stream.
 * Paper step: every sampled text: new prompts, candidate responses, judgments,
 * and the evaluation answers.
 * ========================================================================== */

typedef struct {
    int slots, max_rows;
    int tcap;                 /* positions per sequence: max_seq_len rounded up to ATT_BLOCK */
    float *kcache;            /* (L, slots, KVH, tcap/ATT_BLOCK, hd, ATT_BLOCK): keys in blocks, position fastest */
    float *vcache;            /* (L, slots, KVH, tcap, hd) (attention_row_forward's layout, tensor.h) */
    /* Where each slot reads its cache (tensor.h, AttCache): positions below
     * upto[0] from slot from[0], below upto[1] from slot from[1], the rest
     * from its own. generate() points the slots that share a prompt at the
     * one that holds it; otherwise both are the slot itself. */
    int (*from)[2], (*upto)[2];
    float *x, *ln, *rstd, *q, *k, *v, *atty, *proj, *h1, *h3, *hg, *att; /* per-row scratch */
    float *logits;            /* (max_rows, V) */
    /* Every weight matrix packed for matmul_forward_packed, made by
     * decoder_pack at the start of each generate() (and by the first step of
     * a decoder used directly): [P_WQ..P_W3] per layer, then the output. */
    float *wpack;
    size_t wpack_off[N_PTENSORS], wpack_layer[N_PTENSORS]; /* tensor's first layer, and the step per layer */
    const Model *packed_for;
} Decoder;

/* Every slot reads only its own cache. */
static void decoder_own_caches(Decoder *d) {
    int i;
    for (i = 0; i < d->slots; i++) { d->from[i][0] = d->from[i][1] = i; d->upto[i][0] = d->upto[i][1] = 0; }
}

static void decoder_init(Decoder *d, const Config *c, int slots, int max_rows) {
    size_t R = (size_t)max_rows, C = (size_t)c->dim, F = (size_t)c->hidden_dim, KVC = (size_t)cfg_kv_dim(c);
    size_t cache;
    d->tcap = (c->max_seq_len + ATT_BLOCK - 1) / ATT_BLOCK * ATT_BLOCK;
    cache = (size_t)c->n_layers * (size_t)slots * (size_t)d->tcap * KVC;
    d->slots = slots; d->max_rows = max_rows;
    d->from = xmalloc((size_t)slots * sizeof *d->from);
    d->upto = xmalloc((size_t)slots * sizeof *d->upto);
    decoder_own_caches(d);
    d->kcache = xcalloc(cache, sizeof(float));
    d->vcache = xcalloc(cache, sizeof(float));
    d->x = xmalloc(R * C * sizeof(float)); d->ln = xmalloc(R * C * sizeof(float)); d->rstd = xmalloc(R * sizeof(float));
    d->q = xmalloc(R * C * sizeof(float)); d->k = xmalloc(R * KVC * sizeof(float)); d->v = xmalloc(R * KVC * sizeof(float));
    d->atty = xmalloc(R * C * sizeof(float)); d->proj = xmalloc(R * C * sizeof(float));
    d->h1 = xmalloc(R * F * sizeof(float)); d->h3 = xmalloc(R * F * sizeof(float)); d->hg = xmalloc(R * F * sizeof(float));
    d->att = xmalloc((size_t)c->max_seq_len * sizeof(float));
    d->logits = xmalloc(R * (size_t)c->vocab_size * sizeof(float));
    d->wpack = NULL; d->packed_for = NULL;
}

/* The rows x cols matrices a decode step multiplies by, and their shapes. */
static int decoder_matrix(const Config *c, int p, int *rows, int *cols) {
    int C = c->dim, F = c->hidden_dim, KVC = cfg_kv_dim(c);
    switch (p) {
    case P_WQ: case P_WO: *rows = C; *cols = C; return 1;
    case P_WK: case P_WV: *rows = KVC; *cols = C; return 1;
    case P_W1: case P_W3: *rows = F; *cols = C; return 1;
    case P_W2: *rows = C; *cols = F; return 1;
    case P_OUTPUT: *rows = c->vocab_size; *cols = C; return 1;
    default: return 0;
    }
}

/* Pack m's weights into d (see Decoder.wpack). generate() calls it every
 * time, so a decoder never decodes with an older copy of the weights. */
static void decoder_pack(Decoder *d, const Model *m) {
    const Config *c = &m->cfg;
    const float *src[N_PTENSORS];
    size_t total = 0;
    int p, l, rows, cols;
    src[P_WQ] = m->w.wq; src[P_WK] = m->w.wk; src[P_WV] = m->w.wv; src[P_WO] = m->w.wo;
    src[P_W1] = m->w.w1; src[P_W2] = m->w.w2; src[P_W3] = m->w.w3; src[P_OUTPUT] = m->w.output;
    for (p = 0; p < N_PTENSORS; p++) {
        if (!decoder_matrix(c, p, &rows, &cols)) continue;
        d->wpack_off[p] = total;
        d->wpack_layer[p] = matmul_packed_size(cols, rows);
        total += d->wpack_layer[p] * (p == P_OUTPUT ? 1 : (size_t)c->n_layers);
    }
    if (!d->wpack) d->wpack = xmalloc(total * sizeof(float));
    for (p = 0; p < N_PTENSORS; p++) {
        if (!decoder_matrix(c, p, &rows, &cols)) continue;
        for (l = 0; l < (p == P_OUTPUT ? 1 : c->n_layers); l++)
            matmul_pack(d->wpack + d->wpack_off[p] + (size_t)l * d->wpack_layer[p],
                        src[p] + (size_t)l * (size_t)rows * (size_t)cols, cols, rows);
    }
    d->packed_for = m;
}

/* The packed copy of tensor p of layer l. */
static const float *decoder_w(const Decoder *d, int p, int l) {
    return d->wpack + d->wpack_off[p] + (size_t)l * d->wpack_layer[p];
}

static void decoder_free(Decoder *d) {
    free(d->kcache); free(d->vcache); free(d->from); free(d->upto); free(d->x); free(d->ln); free(d->rstd); free(d->q); free(d->k); free(d->v);
    free(d->atty); free(d->proj); free(d->h1); free(d->h3); free(d->hg); free(d->att); free(d->logits);
    free(d->wpack);
    memset(d, 0, sizeof(*d));
}

/* One decode step over R rows; logits land in d->logits (R, V). */
static void decoder_step(const Model *m, Decoder *d, const int *tok, const int *pos, const int *slot, int R) {
    const Config *c = &m->cfg;
    const Weights *w = &m->w;
    int C = c->dim, F = c->hidden_dim, V = c->vocab_size, H = c->n_heads, KVH = c->n_kv_heads;
    int hd = cfg_head_dim(c), KVC = cfg_kv_dim(c), T = c->max_seq_len, Tc = d->tcap, l, i;
    if (R > d->max_rows) die("internal: decoder step with %d rows > %d", R, d->max_rows);
    for (i = 0; i < R; i++) {
        if (tok[i] < 0 || tok[i] >= V) die("token id %d out of range [0, %d)", tok[i], V);
        if (pos[i] < 0 || pos[i] >= T) die("position %d beyond max_seq_len %d", pos[i], T);
        if (slot[i] < 0 || slot[i] >= d->slots) die("internal: bad decoder slot %d", slot[i]);
    }
    if (d->packed_for != m) decoder_pack(d, m);
    embedding_forward(d->x, tok, w->tok_emb, R, C);
    for (l = 0; l < c->n_layers; l++) {
        size_t layer_off = (size_t)l * (size_t)d->slots * (size_t)Tc * (size_t)KVC;
        rmsnorm_forward(d->ln, d->rstd, d->x, w->attn_norm + (size_t)l * C, R, C, c->norm_eps);
        matmul_forward_packed(d->q, d->ln, decoder_w(d, P_WQ, l), R, C, C);
        matmul_forward_packed(d->k, d->ln, decoder_w(d, P_WK, l), R, C, KVC);
        matmul_forward_packed(d->v, d->ln, decoder_w(d, P_WV, l), R, C, KVC);
        rope_forward(d->q, d->q, pos, m->rope_cos, m->rope_sin, R, H, hd);
        rope_forward(d->k, d->k, pos, m->rope_cos, m->rope_sin, R, KVH, hd);
        for (i = 0; i < R; i++) { /* each kv head: key j of position p at block p/ATT_BLOCK, row j, column p%ATT_BLOCK */
            size_t base = layer_off + (size_t)slot[i] * Tc * KVC, p = (size_t)pos[i];
            size_t kblock = p / ATT_BLOCK * (size_t)hd * ATT_BLOCK + p % ATT_BLOCK;
            int h, j;
            for (h = 0; h < KVH; h++) {
                size_t head = base + (size_t)h * Tc * hd;
                const float *kr = d->k + (size_t)i * KVC + (size_t)h * hd;
                for (j = 0; j < hd; j++) d->kcache[head + kblock + (size_t)j * ATT_BLOCK] = kr[j];
                memcpy(d->vcache + head + p * hd, d->v + (size_t)i * KVC + (size_t)h * hd, (size_t)hd * sizeof(float));
            }
        }
        for (i = 0; i < R; i++) {
            AttCache ac;
            int part, sl = slot[i];
            for (part = 0; part < 3; part++) {
                size_t base = layer_off + (size_t)(part < 2 ? d->from[sl][part] : sl) * Tc * KVC;
                ac.k[part] = d->kcache + base; ac.v[part] = d->vcache + base;
            }
            ac.upto[0] = d->upto[sl][0]; ac.upto[1] = d->upto[sl][1];
            attention_row_forward(d->atty + (size_t)i * C, d->att, d->q + (size_t)i * C, &ac, pos[i] + 1, Tc, H, KVH, hd);
        }
        matmul_forward_packed(d->proj, d->atty, decoder_w(d, P_WO, l), R, C, C);
        residual_forward(d->x, d->x, d->proj, (size_t)R * C);
        rmsnorm_forward(d->ln, d->rstd, d->x, w->ffn_norm + (size_t)l * C, R, C, c->norm_eps);
        matmul_forward_packed(d->h1, d->ln, decoder_w(d, P_W1, l), R, C, F);
        matmul_forward_packed(d->h3, d->ln, decoder_w(d, P_W3, l), R, C, F);
        swiglu_forward(d->hg, d->h1, d->h3, (size_t)R * F);
        matmul_forward_packed(d->proj, d->hg, decoder_w(d, P_W2, l), R, F, C);
        residual_forward(d->x, d->x, d->proj, (size_t)R * C);
    }
    rmsnorm_forward(d->ln, d->rstd, d->x, w->final_norm, R, C, c->norm_eps);
    matmul_forward_packed(d->logits, d->ln, decoder_w(d, P_OUTPUT, 0), R, C, V);
}

/* Sampling from one row of logits.
 * temperature 0: greedy (lowest index among equal maxima), no draw.
 * Otherwise p = softmax(logits / temperature) (max-subtracted, sum sequential
 * in index order). With top_p < 1 the smallest prefix of tokens sorted by
 * probability descending (index ascending on ties) whose mass reaches top_p
 * is kept; with top_p >= 1 all tokens are kept in index order. One uniform
 * draw u per token: the first kept token whose running mass exceeds u times
 * the kept mass is chosen. probs and idx are scratch of V entries, keys of
 * 2V. */

/* The kept prefix, the plain way: sort every token (argsort_desc's total
 * order: non-NaN before NaN, larger first, then smaller index), then add up
 * the sorted probabilities in order until their float sum reaches top_p.
 * Returns the number kept; idx[0..kept) are the tokens in that order. */
static int top_p_prefix_sorted(const float *probs, int V, float top_p, int *idx) {
    int kept;
    float cum = 0.0f;
    argsort_desc(idx, probs, V);
    for (kept = 0; kept < V; ) { cum += probs[idx[kept++]]; if (cum >= top_p) break; }
    return kept;
}

/* The same prefix, fast (a fifth of judging time went to the sort above).
 * The tokens whose probability has float exponent >= e are a prefix of that
 * order (ties share an exponent, so they are all in or all out). One pass
 * adds each exponent's mass (in double, for the decision only); e is the
 * highest exponent whose tokens' mass passes top_p with room for the float
 * sum's rounding. Only those tokens are sorted: with the probability's bits
 * inverted above the token index as a 64-bit key, ascending keys are
 * descending probabilities, ties by index, and the keys are gathered in index
 * order, so a stable radix sort on the upper 32 bits is the whole sort. The
 * in-order float sum then decides as above; if the candidates fall short
 * (they cannot, but the sum is checked, not assumed) or a probability is
 * NaN or negative, the plain way answers. The result is the same either way:
 * tests compare them. keys: 2V entries. */
static int top_p_prefix(const float *probs, int V, float top_p, int *idx, uint64_t *keys) {
    double mass[256] = {0.0}, above = 0.0;
    uint64_t *a = keys, *b = keys + V, *t;
    int i, e, n = 0, kept, shift;
    float cum = 0.0f;
    for (i = 0; i < V; i++) {
        uint32_t u = f32_bits(probs[i]);
        if (u >= 0x7f800000u) return top_p_prefix_sorted(probs, V, top_p, idx); /* NaN, inf or negative */
        mass[u >> 23] += (double)probs[i];
    }
    for (e = 254; e > 0; e--) {
        above += mass[e];
        if (above >= (double)top_p + 1e-3) break;
    }
    for (i = 0; i < V; i++) {
        uint32_t u = f32_bits(probs[i]);
        if ((int)(u >> 23) >= e) a[n++] = (uint64_t)(0xffffffffu - u) << 32 | (uint32_t)i;
    }
    for (shift = 32; shift < 64; shift += 8) {   /* least significant byte of the key first */
        int count[256] = {0}, pos = 0, d;
        for (i = 0; i < n; i++) count[(a[i] >> shift) & 255]++;
        if (count[(a[0] >> shift) & 255] == n) continue;   /* one digit for all: nothing to move */
        for (d = 0; d < 256; d++) { int c = count[d]; count[d] = pos; pos += c; }
        for (i = 0; i < n; i++) b[count[(a[i] >> shift) & 255]++] = a[i];
        t = a; a = b; b = t;
    }
    for (kept = 0; kept < n; ) {
        idx[kept] = (int)(a[kept] & 0xffffffffu);
        cum += probs[idx[kept++]];
        if (cum >= top_p) return kept;
    }
    if (n == V) return kept;
    return top_p_prefix_sorted(probs, V, top_p, idx);
}

static int sample_token(const float *logits, int V, float temperature, float top_p, Rng *r, float *probs, int *idx,
                        uint64_t *keys) {
    int i, best = 0, kept;
    float maxv, sum = 0.0f, cum = 0.0f, target, acc = 0.0f;
    for (i = 1; i < V; i++) if (logits[i] > logits[best]) best = i;
    if (temperature <= 0.0f) return best;
    maxv = logits[best];
    for (i = 0; i < V; i++) { probs[i] = ts_expf((logits[i] - maxv) / temperature); sum += probs[i]; }
    for (i = 0; i < V; i++) probs[i] /= sum;
    if (top_p < 1.0f) {
        kept = top_p_prefix(probs, V, top_p, idx, keys);
        for (i = 0; i < kept; i++) cum += probs[idx[i]];
    } else {
        for (i = 0; i < V; i++) { idx[i] = i; cum += probs[i]; }
        kept = V;
    }
    target = rng_uniform(r) * cum;
    for (i = 0; i < kept; i++) {
        acc += probs[idx[i]];
        if (acc > target) return idx[i];
    }
    return idx[kept - 1]; /* rounding left the draw past the end: take the last kept token */
}

/* Generate continuations of n prompts, d->slots sequences at a time.
 * Sequence i samples from its own stream rng_init(seeds[i], RNG_STREAM_SAMPLE),
 * so its text does not depend on which others share its batch.
 * Generation stops at any of the stop ids (not included in the output), after
 * max_new tokens, or at the model's context end. out[i] is malloc'd. */
typedef struct {
    int max_new;
    float temperature, top_p;
    const int *stops; int n_stops;
} GenConfig;

/* Streaming (srlm chat): when set, generate() hands each token it emits to
 * gen_stream as soon as it is chosen (sequence index, id). NULL elsewhere. */
static void (*gen_stream)(int seq, int id, void *ctx);
static void *gen_stream_ctx;

static int is_stop(const GenConfig *g, int tok) {
    int i;
    for (i = 0; i < g->n_stops; i++) if (g->stops[i] == tok) return 1;
    return 0;
}

/* Run a decode step over R rows and sample the next token of every row that
 * ends its sequence's known text (last[slot] == pos); slots that share that
 * sequence's prompt (leader[k] == slot) sample from the same logits with
 * their own streams. */
static void step_and_sample(const Model *m, Decoder *d, const int *rtok, const int *rpos, const int *rslot, int R,
                            const int *last, const int *leader, int nb, const GenConfig *g, Rng *rng, int *next,
                            float *probs, int *idx, uint64_t *keys) {
    int V = m->cfg.vocab_size, r, k;
    decoder_step(m, d, rtok, rpos, rslot, R);
    for (r = 0; r < R; r++) {
        int j = rslot[r];
        const float *lg = d->logits + (size_t)r * V;
        if (rpos[r] != last[j]) continue;
        next[j] = sample_token(lg, V, g->temperature, g->top_p, &rng[j], probs, idx, keys);
        if (leader) for (k = j + 1; k < nb && leader[k] == j; k++)
            next[k] = sample_token(lg, V, g->temperature, g->top_p, &rng[k], probs, idx, keys);
    }
}

/* Copy one slot's cached keys/values for positions lo..len-1 to another slot
 * (lo a multiple of ATT_BLOCK: the positions below it the slot reads from
 * elsewhere, Decoder.from/upto). Keys go as whole blocks: the positions past
 * len in the last one are never read before they are written. */
static void decoder_copy_prefix(const Model *m, Decoder *d, int from, int to, int lo, int len) {
    const Config *c = &m->cfg;
    size_t Tc = (size_t)d->tcap, hd = (size_t)cfg_head_dim(c), KVC = (size_t)cfg_kv_dim(c), l, h;
    size_t k0 = (size_t)lo * hd, kfloats = ((size_t)len + ATT_BLOCK - 1) / ATT_BLOCK * hd * ATT_BLOCK;
    if (lo >= len) return;
    for (l = 0; l < (size_t)c->n_layers; l++) {
        size_t layer_off = l * (size_t)d->slots * Tc * KVC;
        for (h = 0; h < (size_t)c->n_kv_heads; h++) {
            size_t src = layer_off + (size_t)from * Tc * KVC + h * Tc * hd, dst = layer_off + (size_t)to * Tc * KVC + h * Tc * hd;
            memcpy(d->kcache + dst + k0, d->kcache + src + k0, (kfloats - k0) * sizeof(float));
            memcpy(d->vcache + dst + k0, d->vcache + src + k0, ((size_t)len - (size_t)lo) * hd * sizeof(float));
        }
    }
}

/* Generate continuations of n prompts, d->slots sequences at a time.
 * Sequence i samples from its own stream rng_init(seeds[i], RNG_STREAM_SAMPLE),
 * so its text does not depend on which others share its batch. Consecutive
 * sequences given the same prompt array are prefilled once and share the
 * cache prefix (judging samples 3 judgments of one prompt, AIFT 4 responses),
 * and the opening a prompt shares with the batch's first prompt is copied from
 * that slot: the cached numbers are the same ones recomputation would give.
 * Generation stops at any stop id (not included in the output), after
 * max_new tokens, or at the model's context end. out[i] is malloc'd. */
static void generate(const Model *m, Decoder *d, int n, int *const *prompts, const int *prompt_len,
                     const uint64_t *seeds, const GenConfig *g, int **out, int *out_len) {
    int V = m->cfg.vocab_size, T = m->cfg.max_seq_len, first, i, p, R, phase;
    float *probs = xmalloc((size_t)V * sizeof(float));
    int *idx = xmalloc((size_t)V * sizeof(int));
    uint64_t *keys = xmalloc(2 * (size_t)V * sizeof(uint64_t));
    int *rtok = xmalloc((size_t)d->max_rows * sizeof(int)), *rpos = xmalloc((size_t)d->max_rows * sizeof(int));
    int *rslot = xmalloc((size_t)d->max_rows * sizeof(int));
    int *last = xmalloc((size_t)d->slots * sizeof(int)), *next = xmalloc((size_t)d->slots * sizeof(int));
    int *done = xmalloc((size_t)d->slots * sizeof(int)), *leader = xmalloc((size_t)d->slots * sizeof(int));
    int *shared = xmalloc((size_t)d->slots * sizeof(int));
    Rng *rng = xmalloc((size_t)d->slots * sizeof(Rng));
    decoder_pack(d, m);
    for (first = 0; first < n; first += d->slots) {
        int nb = n - first < d->slots ? n - first : d->slots;
        decoder_own_caches(d);
        /* prefill: every prompt token of every leader as a row, in chunks of max_rows */
        for (i = 0; i < nb; i++) {
            int len = prompt_len[first + i];
            if (len < 1) die("internal: empty prompt");
            if (len >= T) die("prompt of %d tokens does not fit the context (%d)", len, T);
            rng_init(&rng[i], seeds[first + i], RNG_STREAM_SAMPLE);
            out[first + i] = xmalloc((size_t)(g->max_new + 1) * sizeof(int));
            out_len[first + i] = 0;
            last[i] = len - 1;
            done[i] = 0;
            leader[i] = (i > 0 && prompts[first + i] == prompts[first + i - 1] && len == prompt_len[first + i - 1])
                        ? leader[i - 1] : i;
        }
        /* Prompts that open like slot 0's (every judge prompt opens with the
         * rubric) take that opening from slot 0's cache: slot 0 is prefilled
         * first, then the other leaders from where they part from it (at
         * least their last token, whose logits are sampled). */
        for (i = 0; i < nb; i++) {
            const int *a = prompts[first], *b = prompts[first + i];
            int cap = prompt_len[first + i] - 1 < prompt_len[first] ? prompt_len[first + i] - 1 : prompt_len[first];
            shared[i] = 0;
            if (i > 0 && leader[i] == i) while (shared[i] < cap && a[shared[i]] == b[shared[i]]) shared[i]++;
        }
        R = 0;
        for (phase = 0; phase < 2; phase++) {
            for (i = 0; i < nb; i++) {
                if (leader[i] != i || (phase == 0) != (i == 0)) continue;
                for (p = shared[i]; p < prompt_len[first + i]; p++) {
                    rtok[R] = prompts[first + i][p]; rpos[R] = p; rslot[R] = i; R++;
                    if (R == d->max_rows) {
                        step_and_sample(m, d, rtok, rpos, rslot, R, last, leader, nb, g, rng, next, probs, idx, keys);
                        R = 0;
                    }
                }
            }
            if (R) step_and_sample(m, d, rtok, rpos, rslot, R, last, leader, nb, g, rng, next, probs, idx, keys);
            R = 0;
            if (phase == 0)
                for (i = 1; i < nb; i++) if (shared[i] > 0) {
                    /* the opening's whole blocks are read from slot 0 itself (the same numbers,
                     * still in the CPU cache); only the rest is copied */
                    d->from[i][0] = 0;
                    d->upto[i][0] = d->upto[i][1] = shared[i] / ATT_BLOCK * ATT_BLOCK;
                    decoder_copy_prefix(m, d, 0, i, d->upto[i][0], shared[i]);
                }
        }
        for (i = 0; i < nb; i++)
            if (leader[i] != i) {
                int l = leader[i];
                d->from[i][0] = d->from[l][0]; d->upto[i][0] = d->upto[l][0];
                d->from[i][1] = l; d->upto[i][1] = prompt_len[first + i] / ATT_BLOCK * ATT_BLOCK;
                decoder_copy_prefix(m, d, l, i, d->upto[i][1], prompt_len[first + i]);
            }
        /* decode: one row per unfinished sequence per step */
        for (;;) {
            R = 0;
            for (i = 0; i < nb; i++) {
                int *o = out[first + i], *ol = &out_len[first + i];
                if (done[i]) continue;
                if (is_stop(g, next[i]) || *ol >= g->max_new) { done[i] = 1; continue; }
                o[(*ol)++] = next[i];
                if (gen_stream) gen_stream(first + i, next[i], gen_stream_ctx);
                if (last[i] + 1 >= T) { done[i] = 1; continue; } /* context full */
                last[i]++;
                rtok[R] = next[i]; rpos[R] = last[i]; rslot[R] = i; R++;
            }
            if (R == 0) break;
            step_and_sample(m, d, rtok, rpos, rslot, R, last, NULL, nb, g, rng, next, probs, idx, keys);
        }
    }
    decoder_own_caches(d);
    free(probs); free(idx); free(keys); free(rtok); free(rpos); free(rslot); free(last); free(next); free(done); free(leader); free(shared); free(rng);
}

/* generate() for prompts of which some may not fit the context: those get
 * an empty output and too_long[i] = 1 (the caller reports them); the others
 * are generated exactly as generate() would (same seeds, same order). */
static void generate_fit(const Model *m, Decoder *d, int n, int *const *prompts, const int *prompt_len,
                         const uint64_t *seeds, const GenConfig *g, int **out, int *out_len, int *too_long) {
    int **fp = xcalloc((size_t)(n ? n : 1), sizeof(int *)), *fl = xcalloc((size_t)(n ? n : 1), sizeof(int));
    int **fo = xcalloc((size_t)(n ? n : 1), sizeof(int *)), *fol = xcalloc((size_t)(n ? n : 1), sizeof(int));
    int *at = xcalloc((size_t)(n ? n : 1), sizeof(int)), i, k = 0;
    uint64_t *fs = xcalloc((size_t)(n ? n : 1), sizeof(uint64_t));
    for (i = 0; i < n; i++) {
        too_long[i] = prompt_len[i] >= m->cfg.max_seq_len;
        if (too_long[i]) { out[i] = xmalloc(sizeof(int)); out_len[i] = 0; continue; }
        fp[k] = prompts[i]; fl[k] = prompt_len[i]; fs[k] = seeds[i]; at[k] = i; k++;
    }
    generate(m, d, k, fp, fl, fs, g, fo, fol);
    for (i = 0; i < k; i++) { out[at[i]] = fo[i]; out_len[at[i]] = fol[i]; }
    free(fp); free(fl); free(fo); free(fol); free(at); free(fs);
}

/* Text -> ids: with a tokenizer, BPE; without, one id per byte (vocab >= 256). */
static int *encode_text(const Tokenizer *tok, const uint8_t *text, size_t n, size_t *n_out) {
    int *ids = xmalloc((n ? n : 1) * sizeof(int));
    size_t i;
    if (tok) *n_out = tok_encode(tok, text, n, ids);
    else { for (i = 0; i < n; i++) ids[i] = text[i]; *n_out = n; }
    return ids;
}

/* ids -> bytes (NUL-terminated; special tokens appear as their spelling). */
static char *decode_ids(const Tokenizer *tok, const int *ids, size_t n, size_t *n_out) {
    size_t need, i;
    char *s;
    if (!tok) {
        s = xmalloc(n + 1);
        for (i = 0; i < n; i++) s[i] = (char)(ids[i] < 256 && ids[i] >= 0 ? ids[i] : '?');
        s[n] = 0;
        if (n_out) *n_out = n;
        return s;
    }
    need = tok_decode(tok, ids, n, NULL, 0);
    s = xmalloc(need + 1);
    tok_decode(tok, ids, n, (uint8_t *)s, need);
    s[need] = 0;
    if (n_out) *n_out = need;
    return s;
}

static void tokenizer_load(Tokenizer *tok, const char *path) {
    uint8_t *data;
    size_t n;
    char err[200];
    if (read_file(path, &data, &n) != 0) exit(1);
    if (tok_deserialize(tok, data, n, err, sizeof err) != 0) { free(data); die("%s: %s", path, err); }
    free(data);
}

/* A tokenizer's identity: the SHA-256 of its file (a tokenizer file is its
 * own serialization, byte for byte, so this is also what sha256sum prints). */
static void tokenizer_sha_hex(const Tokenizer *tok, char hex[65]) {
    uint8_t *file, dg[32];
    size_t n;
    tok_serialize(tok, &file, &n);
    sha256(file, n, dg);
    sha256_hex(dg, hex);
    free(file);
}

/* Which tokenizer a checkpoint was written with is recorded beside it, in
 * CKPT.tokenizer ("tokenizer sha256 HEX"), not inside it: the checkpoint's
 * bytes, and so every recorded model digest, stay what they were. A
 * checkpoint without that file (older ones, byte-level models) loads with
 * any tokenizer of its vocabulary size. */
static char *tokenizer_note_path(const char *ckpt_path) {
    size_t n = strlen(ckpt_path) + 11;
    char *p = xmalloc(n);
    snprintf(p, n, "%s.tokenizer", ckpt_path);
    return p;
}

static int tokenizer_note_write(const char *ckpt_path, const Tokenizer *tok) {
    char *p = tokenizer_note_path(ckpt_path), hex[65], text[96];
    int rc = 0;
    if (tok) {
        tokenizer_sha_hex(tok, hex);
        snprintf(text, sizeof text, "tokenizer sha256 %s\n", hex);
        rc = write_file_atomic(p, text, strlen(text));
    } else {
        remove(p); /* a byte-level model has no tokenizer: no stale note from an older file */
    }
    free(p);
    return rc;
}

/* A model and a tokenizer belong together only when their vocabularies agree
 * and, where the checkpoint's tokenizer is recorded, it is this one. */
static void tokenizer_check_model(const Tokenizer *tok, const char *tok_path, const Model *m, const char *model_path) {
    char *note = tokenizer_note_path(model_path), hex[65];
    FILE *f;
    if (tok_vocab_size(tok) != m->cfg.vocab_size)
        die("%s: tokenizer vocab %d does not match the model %s (%d)", tok_path ? tok_path : "tokenizer",
            tok_vocab_size(tok), model_path, m->cfg.vocab_size);
    if ((f = fopen(note, "rb")) != NULL) {
        char line[128] = {0}, want[65];
        size_t got = fread(line, 1, sizeof line - 1, f);
        fclose(f);
        if (got < 81 || memcmp(line, "tokenizer sha256 ", 17) != 0 || line[81] != '\n')
            die("%s: damaged (want one line \"tokenizer sha256 HEX\")", note);
        memcpy(want, line + 17, 64); want[64] = 0;
        tokenizer_sha_hex(tok, hex);
        if (strcmp(hex, want) != 0)
            die("%s: not the tokenizer %s was trained with (sha256 %.12s..., %s records %.12s...)", tok_path ? tok_path : "tokenizer",
                model_path, hex, note, want);
    }
    free(note);
}

/* ==========================================================================
 * 6. Data files: JSON Lines
 *
 * Every data file is JSONL: one JSON object per line. The reader is small and
 * strict: a line that is not an object, or a wanted field of the wrong type,
 * is an error naming the file and line. Strings are returned as bytes with
 * escapes decoded (\uXXXX to UTF-8, surrogate pairs joined).
 * Paper step: the seed data (IFT, EFT), the AIFT pairs and the evaluation
 * sets are all read and written here.
 * ========================================================================== */

typedef struct { const char *p, *end; } JsonSpan;

static const char *json_ws(const char *p, const char *e) {
    while (p < e && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')) p++;
    return p;
}

static int hex4(const char *p, const char *e, uint32_t *v) {
    int i;
    *v = 0;
    if (e - p < 4) return 0;
    for (i = 0; i < 4; i++) {
        char ch = p[i];
        *v <<= 4;
        if (ch >= '0' && ch <= '9') *v |= (uint32_t)(ch - '0');
        else if (ch >= 'a' && ch <= 'f') *v |= (uint32_t)(ch - 'a' + 10);
        else if (ch >= 'A' && ch <= 'F') *v |= (uint32_t)(ch - 'A' + 10);
        else return 0;
    }
    return 1;
}

static size_t utf8_seq_len(const uint8_t *s, size_t n); /* below, with the writer */

/* Skip one JSON value; returns the byte after it, or NULL if malformed. */
static const char *json_skip(const char *p, const char *e, int depth) {
    p = json_ws(p, e);
    if (p >= e || depth > 64) return NULL;
    if (*p == '"') {
        for (p++; p < e; p++) {
            if (*p == '\\') {
                if (++p >= e || !strchr("\"\\/bfnrtu", *p) || !*p) return NULL;
                if (*p == 'u') { uint32_t cp; if (!hex4(p + 1, e, &cp)) return NULL; }
            }
            else if (*p == '"') return p + 1;
            else if ((unsigned char)*p < 0x20) return NULL;
        }
        return NULL;
    }
    if (*p == '{' || *p == '[') {
        char close = *p == '{' ? '}' : ']';
        int first = 1;
        p = json_ws(p + 1, e);
        if (p < e && *p == close) return p + 1;
        for (;;) {
            if (!first) {
                p = json_ws(p, e);
                if (p < e && *p == close) return p + 1;
                if (p >= e || *p != ',') return NULL;
                p++;
            }
            first = 0;
            if (close == '}') {
                p = json_ws(p, e);
                if (p >= e || *p != '"') return NULL;
                p = json_skip(p, e, depth + 1);
                if (!p) return NULL;
                p = json_ws(p, e);
                if (p >= e || *p != ':') return NULL;
                p++;
            }
            p = json_skip(p, e, depth + 1);
            if (!p) return NULL;
        }
    }
    if (*p == '-' || (*p >= '0' && *p <= '9')) {
        const char *s = p;
        if (*p == '-') p++;
        while (p < e && ((*p >= '0' && *p <= '9') || *p == '.' || *p == 'e' || *p == 'E' || *p == '+' || *p == '-')) p++;
        return p > s ? p : NULL;
    }
    if (e - p >= 4 && (memcmp(p, "true", 4) == 0 || memcmp(p, "null", 4) == 0)) return p + 4;
    if (e - p >= 5 && memcmp(p, "false", 5) == 0) return p + 5;
    return NULL;
}

/* Is [p,e) one well-formed object (and nothing else)? */
static int json_is_object(const char *p, const char *e) {
    const char *q;
    p = json_ws(p, e);
    if (p >= e || *p != '{') return 0;
    q = json_skip(p, e, 0);
    return q && json_ws(q, e) == e;
}

/* Find a top-level key of a well-formed object; 1 if found. */
static int json_get(const char *p, const char *e, const char *key, JsonSpan *out) {
    size_t klen = strlen(key);
    p = json_ws(p, e);
    if (p >= e || *p != '{') return 0;
    p = json_ws(p + 1, e);
    while (p < e && *p == '"') {
        const char *ks = p + 1, *ke = json_skip(p, e, 1), *vs, *ve;
        if (!ke) return 0;   /* a malformed object has no keys to find (callers that */
        ke--;                /* must tell "absent" from "malformed" check json_is_object) */
        p = json_ws(ke + 1, e);
        if (p >= e || *p != ':') return 0;
        vs = json_ws(p + 1, e);
        ve = json_skip(vs, e, 1);
        if (!ve) return 0;
        if ((size_t)(ke - ks) == klen && memcmp(ks, key, klen) == 0) { out->p = vs; out->end = ve; return 1; }
        p = json_ws(ve, e);
        if (p < e && *p == ',') p = json_ws(p + 1, e);
    }
    return 0;
}

static void utf8_put(Buf *b, uint32_t cp) {
    uint8_t u[4];
    if (cp < 0x80) { u[0] = (uint8_t)cp; buf_put(b, u, 1); }
    else if (cp < 0x800) { u[0] = (uint8_t)(0xc0 | cp >> 6); u[1] = (uint8_t)(0x80 | (cp & 63)); buf_put(b, u, 2); }
    else if (cp < 0x10000) { u[0] = (uint8_t)(0xe0 | cp >> 12); u[1] = (uint8_t)(0x80 | ((cp >> 6) & 63)); u[2] = (uint8_t)(0x80 | (cp & 63)); buf_put(b, u, 3); }
    else { u[0] = (uint8_t)(0xf0 | cp >> 18); u[1] = (uint8_t)(0x80 | ((cp >> 12) & 63)); u[2] = (uint8_t)(0x80 | ((cp >> 6) & 63)); u[3] = (uint8_t)(0x80 | (cp & 63)); buf_put(b, u, 4); }
}


/* Decode a JSON string value to a NUL-terminated malloc'd byte string; NULL
 * if it is not a string or not one this reader accepts: raw bytes must be
 * valid UTF-8, escapes well formed, surrogates paired, and no \u0000 (a C
 * string would silently end there). *why (optional) says which. */
static char *json_string_why(JsonSpan v, size_t *len, const char **why) {
    Buf b = {0, 0, 0};
    const char *p = v.p, *e = v.end, *fault = NULL;
    if (p >= e || *p != '"' || e - p < 2 || e[-1] != '"') { if (why) *why = "not a string"; return NULL; }
    e--; /* the closing quote */
    for (p++; p < e && !fault; p++) {
        if (*p != '\\') {
            size_t l = utf8_seq_len((const uint8_t *)p, (size_t)(e - p));
            if (!l) { fault = "a string holds bytes that are not valid UTF-8"; break; }
            buf_put(&b, p, l); p += l - 1;
            continue;
        }
        if (++p >= e) { fault = "a string ends inside an escape"; break; }
        switch (*p) {
        case 'n': buf_put(&b, "\n", 1); break;
        case 't': buf_put(&b, "\t", 1); break;
        case 'r': buf_put(&b, "\r", 1); break;
        case 'b': buf_put(&b, "\b", 1); break;
        case 'f': buf_put(&b, "\f", 1); break;
        case '"': case '\\': case '/': buf_put(&b, p, 1); break;
        case 'u': {
            uint32_t cp, lo;
            if (!hex4(p + 1, e, &cp)) { fault = "a \\u escape without four hex digits"; break; }
            p += 4;
            if (cp >= 0xd800 && cp < 0xdc00) {
                if (e - p > 6 && p[1] == '\\' && p[2] == 'u' && hex4(p + 3, e, &lo) && lo >= 0xdc00 && lo < 0xe000) {
                    cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                    p += 6;
                } else { fault = "a string holds an unpaired surrogate escape"; break; }
            } else if (cp >= 0xdc00 && cp < 0xe000) { fault = "a string holds an unpaired surrogate escape"; break; }
            if (cp == 0) { fault = "a string holds \\u0000 (a NUL byte)"; break; }
            utf8_put(&b, cp);
            break;
        }
        default: fault = "a string holds an unknown escape"; break;
        }
    }
    if (fault) { free(b.p); if (why) *why = fault; return NULL; }
    buf_reserve(&b, 1);
    b.p[b.n] = 0;
    if (len) *len = b.n;
    return (char *)b.p;
}

static char *json_string(JsonSpan v, size_t *len) { return json_string_why(v, len, NULL); }

static int json_number(JsonSpan v, double *out) {
    char tmp[64], *end;
    size_t n = (size_t)(v.end - v.p);
    if (n == 0 || n >= sizeof tmp) return 0;
    memcpy(tmp, v.p, n);
    tmp[n] = 0;
    *out = strtod(tmp, &end);
    return *end == 0 && (tmp[0] == '-' || (tmp[0] >= '0' && tmp[0] <= '9'));
}

/* Iterate over an array's elements: *it starts at the span; returns 1 and the next element. */
static int json_array_next(JsonSpan arr, const char **it, JsonSpan *elem) {
    const char *p = *it ? *it : arr.p, *q;
    if (!*it) { if (p >= arr.end || *p != '[') return 0; p++; }
    p = json_ws(p, arr.end);
    if (p < arr.end && *p == ',') p = json_ws(p + 1, arr.end);
    if (p >= arr.end || *p == ']') return 0;
    q = json_skip(p, arr.end, 1);
    if (!q) return 0;
    elem->p = p; elem->end = q;
    *it = q;
    return 1;
}

/* Write bytes as a JSON string. Valid UTF-8 passes through; control bytes are
 * escaped; a byte that is not part of valid UTF-8 (JSON cannot carry it)
 * becomes U+FFFD — callers that must not lose bytes check utf8_valid first. */
static size_t utf8_seq_len(const uint8_t *s, size_t n) {
    uint8_t c = s[0];
    size_t len, i;
    uint32_t cp;
    if (c < 0x80) return 1;
    if (c >= 0xc2 && c <= 0xdf) len = 2;
    else if (c >= 0xe0 && c <= 0xef) len = 3;
    else if (c >= 0xf0 && c <= 0xf4) len = 4;
    else return 0;
    if (n < len) return 0;
    for (i = 1; i < len; i++) if ((s[i] & 0xc0) != 0x80) return 0;
    cp = len == 2 ? (uint32_t)(c & 0x1f) : len == 3 ? (uint32_t)(c & 0x0f) : (uint32_t)(c & 0x07);
    for (i = 1; i < len; i++) cp = cp << 6 | (s[i] & 0x3f);
    if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp < 0xe000))) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff))) return 0;
    return len;
}

static int utf8_valid(const char *s, size_t n) {
    size_t i = 0, l;
    while (i < n) { l = utf8_seq_len((const uint8_t *)s + i, n - i); if (!l) return 0; i += l; }
    return 1;
}

static void json_put_string(Buf *b, const char *s, size_t n) {
    size_t i = 0;
    buf_put(b, "\"", 1);
    while (i < n) {
        uint8_t c = (uint8_t)s[i];
        size_t l;
        if (c == '"') { buf_str(b, "\\\""); i++; }
        else if (c == '\\') { buf_str(b, "\\\\"); i++; }
        else if (c == '\n') { buf_str(b, "\\n"); i++; }
        else if (c == '\t') { buf_str(b, "\\t"); i++; }
        else if (c == '\r') { buf_str(b, "\\r"); i++; }
        else if (c < 0x20 || c == 0x7f) { buf_printf(b, "\\u%04x", c); i++; }
        else if ((l = utf8_seq_len((const uint8_t *)s + i, n - i)) > 0) { buf_put(b, s + i, l); i += l; }
        else { buf_str(b, "\xef\xbf\xbd"); i++; }
    }
    buf_put(b, "\"", 1);
}

/* A JSONL file split into lines; each line checked to be one object. */
typedef struct { char *data; size_t n; char **line; size_t *len; int count; const char *path; } Jsonl;

static void jsonl_load(Jsonl *j, const char *path) {
    uint8_t *data;
    size_t n, i, start = 0;
    int cap = 64, lineno = 0;
    if (read_file(path, &data, &n) != 0) exit(1);
    j->data = (char *)data; j->n = n; j->path = path; j->count = 0;
    j->line = xmalloc((size_t)cap * sizeof(char *)); j->len = xmalloc((size_t)cap * sizeof(size_t));
    for (i = 0; i <= n; i++) {
        if (i == n || data[i] == '\n') {
            size_t len = i - start;
            lineno++;
            if (json_ws((char *)data + start, (char *)data + i) != (char *)data + i) {
                if (!json_is_object((char *)data + start, (char *)data + i))
                    die("%s:%d: not a JSON object", path, lineno);
                if (j->count == cap) {
                    cap *= 2;
                    j->line = realloc(j->line, (size_t)cap * sizeof(char *));
                    j->len = realloc(j->len, (size_t)cap * sizeof(size_t));
                    if (!j->line || !j->len) die("out of memory");
                }
                j->line[j->count] = (char *)data + start;
                j->len[j->count] = len;
                j->count++;
            }
            start = i + 1;
        }
    }
}

static void jsonl_free(Jsonl *j) { free(j->data); free(j->line); free(j->len); memset(j, 0, sizeof *j); }

/* A required string field of record i, or die naming the file and record. */
static char *jsonl_str(const Jsonl *j, int i, const char *key) {
    JsonSpan v;
    char *s;
    const char *why = NULL;
    if (!json_get(j->line[i], j->line[i] + j->len[i], key, &v)) die("%s: record %d has no \"%s\"", j->path, i + 1, key);
    s = json_string_why(v, NULL, &why);
    if (!s) die("%s: record %d: \"%s\": %s", j->path, i + 1, key, why);
    return s;
}

/* ==========================================================================
 * 7. The chat format (one layout for training, generation and judging)
 *
 *   <|bos|> <|user|> instruction <|eot|> <|assistant|> response <|eot|>
 *
 * The text parts are BPE-encoded as plain bytes, so a user who types
 * "<|eot|>" gets ordinary tokens; only this function inserts special ids.
 * The loss of SFT covers the response tokens and the final <|eot|> (the
 * model must learn to stop); generation feeds everything up to
 * <|assistant|> and stops at <|eot|>.
 * Paper step: none of its own; the one-turn chat layout every step that
 * trains or samples uses (the paper trains on first turns only).
 * ========================================================================== */

/* Encode the prompt part; returns malloc'd ids and *n. */
static int *chat_prompt(const Tokenizer *tok, const char *instruction, int *n) {
    size_t len = strlen(instruction), k;
    int *ids = xmalloc((len + 4) * sizeof(int));
    ids[0] = TOK_BOS; ids[1] = TOK_USER;
    k = tok_encode(tok, (const uint8_t *)instruction, len, ids + 2);
    ids[2 + k] = TOK_EOT; ids[3 + k] = TOK_ASSISTANT;
    *n = (int)k + 4;
    return ids;
}

/* A training example: ids (prompt + response + <|eot|>) and where the response starts. */
typedef struct { int *ids; int n; int resp_start; } Example;

static Example chat_example(const Tokenizer *tok, const char *instruction, const char *response) {
    Example ex;
    size_t rlen = strlen(response), k;
    int np, *prompt = chat_prompt(tok, instruction, &np);
    ex.ids = xmalloc(((size_t)np + rlen + 1) * sizeof(int));
    memcpy(ex.ids, prompt, (size_t)np * sizeof(int));
    free(prompt);
    k = tok_encode(tok, (const uint8_t *)response, rlen, ex.ids + np);
    ex.ids[np + (int)k] = TOK_EOT;
    ex.n = np + (int)k + 1;
    ex.resp_start = np;
    return ex;
}

/* ==========================================================================
 * 8. LLM-as-a-Judge: the template, literal filling, the score parser
 *
 * The judge prompt (the paper's additive 5-point rubric, our wording) is a
 * file with exactly one {instruction} and one {response}. Filling is
 * literal: the template is scanned once and the inserted texts are never
 * scanned again, so a response that contains "{instruction}" stays as typed.
 * The parser takes the last "score" statement of the judge's reply (0..5);
 * an invalid last statement means no score, never a number.
 * Paper step: "LLM-as-a-Judge" (the additive 5-point prompt of the paper's
 * Figure 2), used to build EFT data, AIFT pairs and the reward-model metrics.
 * ========================================================================== */

typedef struct { char *text; size_t n; char path[512]; } JudgeTemplate;

/* Load and check a template: the file's bytes less one final newline. A
 * placeholder is "{name}" with name of letters and underscores; only
 * instruction and response are known, each exactly once. */
static void judge_template_load(JudgeTemplate *jt, const char *path) {
    uint8_t *data;
    size_t n, i;
    int n_inst = 0, n_resp = 0;
    if (read_file(path, &data, &n) != 0) exit(1);
    if (n > 0 && data[n - 1] == '\n') n--; /* the file's one final newline is not part of the template */
    snprintf(jt->path, sizeof jt->path, "%s", path);
    for (i = 0; i < n; i++) {
        size_t j = i + 1;
        if (data[i] != '{') continue;
        while (j < n && ((data[j] >= 'a' && data[j] <= 'z') || (data[j] >= 'A' && data[j] <= 'Z') || data[j] == '_')) j++;
        if (j < n && data[j] == '}' && j > i + 1) {
            size_t len = j - i - 1;
            if (len == 11 && memcmp(data + i + 1, "instruction", 11) == 0) n_inst++;
            else if (len == 8 && memcmp(data + i + 1, "response", 8) == 0) n_resp++;
            else die("%s: unknown placeholder {%.*s} (known: {instruction}, {response})", path, (int)len, data + i + 1);
            i = j;
        }
    }
    if (n_inst != 1) die("%s: placeholder {instruction} must appear exactly once (found %d)", path, n_inst);
    if (n_resp != 1) die("%s: placeholder {response} must appear exactly once (found %d)", path, n_resp);
    jt->text = (char *)data;
    jt->n = n;
}

/* Fill literally; returns a malloc'd NUL-terminated string. */
static char *judge_template_fill(const JudgeTemplate *jt, const char *instruction, const char *response) {
    Buf b = {0, 0, 0};
    size_t i = 0;
    while (i < jt->n) {
        if (jt->text[i] == '{' && jt->n - i >= 13 && memcmp(jt->text + i, "{instruction}", 13) == 0) {
            buf_str(&b, instruction); i += 13;
        } else if (jt->text[i] == '{' && jt->n - i >= 10 && memcmp(jt->text + i, "{response}", 10) == 0) {
            buf_str(&b, response); i += 10;
        } else {
            buf_put(&b, jt->text + i, 1); i++;
        }
    }
    buf_put(&b, "", 1);
    return (char *)b.p;
}

/* Is s[i..] one of the separators allowed between "score" and its number?
 * Returns its length in bytes, 0 if not. ASCII: space, tab, ':', '=', '-',
 * '*', quotes, '(' ; UTF-8: typographic quotes, en/em dash, full-width colon. */
static size_t score_sep_len(const char *s, size_t n) {
    static const char *multi[] = {"\xe2\x80\x9c", "\xe2\x80\x9d", "\xe2\x80\x98", "\xe2\x80\x99", "\xc2\xab", "\xc2\xbb",
                                  "\xe2\x80\x93", "\xe2\x80\x94", "\xef\xbc\x9a"};
    size_t k;
    if (n == 0) return 0;
    if (strchr(" \t:=-*\"'`(", s[0]) && s[0] != 0) return 1;
    for (k = 0; k < sizeof multi / sizeof multi[0]; k++) {
        size_t l = strlen(multi[k]);
        if (n >= l && memcmp(s, multi[k], l) == 0) return l;
    }
    return 0;
}

static int is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
static int is_digit(char c) { return c >= '0' && c <= '9'; }

/* Parse a judgment's score. Rule: every case-insensitive word "score" (not
 * part of a longer word) followed by separators and a number is a score
 * statement; the LAST statement decides. The number is digits with an
 * optional ".digits"; it may be followed by "/5" or "out of 5" (another
 * denominator invalidates the statement). A minus sign glued to the digits,
 * or a value outside 0..5, makes the statement invalid — and an invalid last
 * statement means "no score": we never fall back to an earlier one, and a
 * failed parse is never turned into a number. Returns 1 and *score, or 0. */
static int judge_score_parse(const char *text, size_t n, float *score) {
    size_t i;
    int found = 0, valid = 0;
    double value = 0.0;
    for (i = 0; i + 5 <= n; i++) {
        size_t j, sep;
        double v = 0.0;
        int neg = 0, nd = 0, ok = 1;
        if ((text[i] | 32) != 's' || (text[i + 1] | 32) != 'c' || (text[i + 2] | 32) != 'o' ||
            (text[i + 3] | 32) != 'r' || (text[i + 4] | 32) != 'e') continue;
        if (i > 0 && is_alpha(text[i - 1])) continue;
        j = i + 5;
        if (j < n && is_alpha(text[j])) continue;
        while (j < n && (sep = score_sep_len(text + j, n - j)) > 0) {
            if (text[j] == '-' && j + 1 < n && is_digit(text[j + 1])) { neg = 1; j++; break; }
            j += sep;
        }
        if (j >= n || !is_digit(text[j])) continue; /* "score" without a number: not a statement */
        while (j < n && is_digit(text[j])) { if (nd < 12) v = v * 10.0 + (text[j] - '0'); nd++; j++; }
        if (j + 1 < n && text[j] == '.' && is_digit(text[j + 1])) {
            double num = 0.0, den = 1.0; /* exact integers: one correctly rounded division */
            j++;
            while (j < n && is_digit(text[j])) {
                if (den < 1e9) { num = num * 10.0 + (text[j] - '0'); den *= 10.0; }
                j++;
            }
            v += num / den;
        }
        if (nd > 6) ok = 0; /* huge numbers are out of range, without overflow */
        {   /* optional denominator */
            size_t k = j;
            while (k < n && text[k] == ' ') k++;
            if (k < n && text[k] == '/') {
                k++;
                while (k < n && text[k] == ' ') k++;
                if (k < n && text[k] == '5' && (k + 1 >= n || !is_digit(text[k + 1]))) j = k + 1;
                else ok = 0;
            } else if (n - k >= 6 && memcmp(text + k, "out of", 6) == 0) {
                k += 6;
                while (k < n && text[k] == ' ') k++;
                if (k < n && text[k] == '5' && (k + 1 >= n || !is_digit(text[k + 1]))) j = k + 1;
                else ok = 0;
            }
        }
        if (neg || v > 5.0) ok = 0;
        found = 1;
        valid = ok;
        value = v;
        i = j - 1;
    }
    if (!found || !valid) return 0;
    *score = (float)value;
    return 1;
}

/* ==========================================================================
 * 9. Seed fine-tuning (SFT): M0 + IFT -> SFT baseline; M0 + IFT + EFT -> M1
 *
 * One example per batch row, padded after its end; the loss covers only the
 * response and its closing <|eot|>. Examples are visited epoch by epoch in an
 * order drawn from the data stream seeded by (seed, epoch), so step s always
 * sees the same rows — a restarted run is the same run.
 * Paper step: "Initialization": supervised fine-tuning on the IFT and EFT
 * seed data (the SFT baseline and M1).
 * ========================================================================== */

/* A permutation of 0..n-1 drawn from the data stream seeded by (seed, salt). */
static void shuffle_ints(int *a, int n, uint64_t seed, uint64_t salt) {
    Rng r;
    int i;
    rng_init(&r, hash64(seed, salt), RNG_STREAM_DATA);
    for (i = 0; i < n; i++) a[i] = i;
    for (i = n - 1; i > 0; i--) { int j = (int)rng_below(&r, (uint32_t)i + 1), t = a[i]; a[i] = a[j]; a[j] = t; }
}

/* Rows from examples: input ids, targets on response positions only (the
 * prompt is masked), padding after each example's end; returns the row length T. */
static int examples_to_rows(const Example *const *rows, int B, int *inputs, int *targets) {
    int b, t, T = 1;
    for (b = 0; b < B; b++) if (rows[b]->n - 1 > T) T = rows[b]->n - 1;
    for (b = 0; b < B; b++) {
        const Example *ex = rows[b];
        for (t = 0; t < T; t++) {
            inputs[b * T + t] = t < ex->n ? ex->ids[t] : TOK_EOS;
            targets[b * T + t] = (t + 1 < ex->n && t + 1 >= ex->resp_start) ? ex->ids[t + 1] : -1;
        }
    }
    return T;
}

/* Batches of similar length waste little on padding: each epoch the examples
 * are shuffled, the order padded to whole batches with its own first
 * examples, cut into pools of 8 batches, each pool sorted by length (ties
 * keep shuffled order), and the epoch's batches shuffled again. */
typedef struct {
    Example *ex; int n, batch;
    uint64_t seed;
    int *plan; int plan_epoch;   /* (batches_per_epoch * batch) example indices */
} SftData;

static int sft_batches_per_epoch(const SftData *sd) { return (sd->n + sd->batch - 1) / sd->batch; }

typedef struct { const Example *ex; } LenCtx;
static int cmp_by_length(const void *a, const void *b, void *ctx) {
    const Example *ex = ((const LenCtx *)ctx)->ex;
    int la = ex[*(const int *)a].n, lb = ex[*(const int *)b].n;
    return (la > lb) - (la < lb);
}

static void sft_plan_epoch(SftData *sd, int epoch) {
    int nb = sft_batches_per_epoch(sd), B = sd->batch, total = nb * B, pool = 8 * B, i, p;
    int *order = xmalloc((size_t)sd->n * sizeof(int)), *border = xmalloc((size_t)nb * sizeof(int));
    int *tmp = xmalloc((size_t)total * sizeof(int));
    LenCtx lc;
    lc.ex = sd->ex;
    shuffle_ints(order, sd->n, sd->seed, (uint64_t)epoch);
    for (i = 0; i < total; i++) tmp[i] = order[i % sd->n];
    for (p = 0; p < total; p += pool)
        stable_sort(tmp + p, (size_t)(total - p < pool ? total - p : pool), sizeof(int), cmp_by_length, &lc);
    shuffle_ints(border, nb, sd->seed, 0x6261746368ull + (uint64_t)epoch); /* "batch" */
    for (i = 0; i < nb; i++) memcpy(sd->plan + (size_t)i * B, tmp + (size_t)border[i] * B, (size_t)B * sizeof(int));
    sd->plan_epoch = epoch;
    free(order); free(border); free(tmp);
}

static int sft_next(Batcher *self, int step, int *inputs, int *targets, int B, int T_cap) {
    SftData *sd = self->ctx;
    int nb = sft_batches_per_epoch(sd), b, T;
    const Example **rows;
    if (B != sd->batch) die("internal: SFT batch size mismatch");
    if (step / nb != sd->plan_epoch) sft_plan_epoch(sd, step / nb);
    rows = xmalloc((size_t)B * sizeof *rows);
    for (b = 0; b < B; b++) rows[b] = &sd->ex[sd->plan[(size_t)(step % nb) * B + b]];
    T = examples_to_rows(rows, B, inputs, targets);
    free(rows);
    if (T > T_cap) die("internal: example longer than the context");
    return T;
}

static void sft_data_init(SftData *sd, Example *ex, int n, int batch, uint64_t seed) {
    sd->ex = ex; sd->n = n; sd->batch = batch; sd->seed = seed; sd->plan_epoch = -1;
    sd->plan = xmalloc((size_t)sft_batches_per_epoch(sd) * (size_t)batch * sizeof(int));
}

/* Read instruction/response records from JSONL files (comma-separated list)
 * into chat examples; examples longer than the context are dropped and counted. */
static Example *sft_load_examples(const char *paths, const Tokenizer *tok, int context, int *n_out, int *dropped) {
    char *list = xmalloc(strlen(paths) + 1), *path, *save = NULL;
    Example *ex = NULL;
    int n = 0, cap = 0, i;
    strcpy(list, paths);
    *dropped = 0;
    for (path = strtok_r(list, ",", &save); path; path = strtok_r(NULL, ",", &save)) {
        Jsonl j;
        jsonl_load(&j, path);
        for (i = 0; i < j.count; i++) {
            char *inst = jsonl_str(&j, i, "instruction"), *resp = jsonl_str(&j, i, "response");
            Example e = chat_example(tok, inst, resp);
            free(inst); free(resp);
            if (e.n - 1 > context) { free(e.ids); (*dropped)++; continue; }
            if (n == cap) { cap = cap ? cap * 2 : 256; ex = realloc(ex, (size_t)cap * sizeof(Example)); if (!ex) die("out of memory"); }
            ex[n++] = e;
        }
        jsonl_free(&j);
    }
    free(list);
    *n_out = n;
    return ex;
}

static void examples_free(Example *ex, int n) {
    int i;
    for (i = 0; i < n; i++) free(ex[i].ids);
    free(ex);
}

/* SFT of the checkpoint `init` on `data` (comma-separated JSONL files of
 * instruction/response records), written atomically to `out`. t.steps < 0
 * means `epochs` passes over the data; t.warmup < 0 means steps/20. The
 * rows are as long as the longest example of each batch. */
static void sft_checkpoint(const char *init, const Tokenizer *tok, const char *data, TrainConfig t, int epochs,
                           const char *out, const char *label) {
    Model m;
    SftData sd;
    Batcher bt;
    int n, dropped, i, longest = 0;
    long resp_tokens = 0;
    char hex[65], meta[1024], names_init[256], names_data[512];
    ckpt_load(&m, init, NULL);
    tokenizer_check_model(tok, NULL, &m, init);
    sd.ex = sft_load_examples(data, tok, m.cfg.max_seq_len, &n, &dropped);
    if (n == 0) die("%s: no usable examples", data);
    for (i = 0; i < n; i++) { if (sd.ex[i].n > longest) longest = sd.ex[i].n; resp_tokens += sd.ex[i].n - sd.ex[i].resp_start; }
    sft_data_init(&sd, sd.ex, n, t.batch, t.seed);
    if (t.steps < 0) t.steps = epochs * sft_batches_per_epoch(&sd);
    if (t.warmup < 0) t.warmup = t.steps / 20;
    t.seq = longest - 1;
    fprintf(stderr, "[%s] SFT of %s on %s: %d examples (%d longer than the context dropped), %ld response tokens, "
            "longest %d; %d steps of %d\n", label, init, data, n, dropped, resp_tokens, longest, t.steps, t.batch);
    bt.next = sft_next; bt.ctx = &sd;
    train_model(&m, &t, &bt, label);
    base_names(init, names_init, sizeof names_init);
    base_names(data, names_data, sizeof names_data);
    snprintf(meta, sizeof meta, "srlm sft of %s on %s: %d steps of %d, lr %g, seed %llu", names_init, names_data, t.steps,
             t.batch, (double)t.lr, (unsigned long long)t.seed);
    if (ckpt_save(out, &m, meta, hex) != 0 || tokenizer_note_write(out, tok) != 0) exit(1);
    fprintf(stderr, "[%s] %s  sha256 %s\n", label, out, hex);
    examples_free(sd.ex, n); free(sd.plan);
    model_free(&m);
}

/* ==========================================================================
 * 10. Judging: the model grades a response in text, three times
 *
 * The filled judge prompt is a user turn; the model's reply is sampled
 * (T=0.7, top-p 0.9 as the paper) `samples` times and each reply parsed.
 * The response's score is the mean of the valid parses; with none valid it
 * has no score. Sample j of item i draws from seed hash64(item_seed_i, j),
 * independent of batching and of the other items.
 * Paper step: "Self-Instruction Creation", evaluating candidates: each
 * response judged 3 times and the scores averaged.
 * ========================================================================== */

typedef struct { int samples; float temperature, top_p; int max_new; } JudgeConfig;

static JudgeConfig judge_config_default(void) {
    JudgeConfig jc;
    jc.samples = 3; jc.temperature = 0.7f; jc.top_p = 0.9f; jc.max_new = 192; /* a judgment works the answer out and checks it letter by letter */
    return jc;
}

typedef struct {
    float score;      /* mean of the valid parses */
    float score_sum;  /* their sum, in sample order */
    int has_score;    /* 0: every sample failed to parse (or the prompt did not fit) */
    int n_valid, n_failed, too_long;
    char **judgments; /* samples texts (when kept) */
    float *sample_score;        /* per sample, when kept: its parsed score ... */
    unsigned char *sample_flag; /* ... bit 1: parsed; bit 2: text is valid UTF-8 without NUL, so JSON carries it exactly */
} Judgment;

static void judge_many(const Model *m, Decoder *d, const Tokenizer *tok, const JudgeTemplate *jt, int n,
                       char *const *instructions, char *const *responses, const uint64_t *item_seeds,
                       const JudgeConfig *jc, int keep_text, Judgment *out) {
    int S = jc->samples, total = n * S, i, j, k = 0, stops[2] = {TOK_EOT, TOK_EOS};
    int **prompts = xcalloc((size_t)total, sizeof(int *)), *plen = xcalloc((size_t)total, sizeof(int));
    int **gen = xcalloc((size_t)total, sizeof(int *)), *glen = xcalloc((size_t)total, sizeof(int));
    uint64_t *seeds = xcalloc((size_t)total, sizeof(uint64_t));
    int *item = xcalloc((size_t)total, sizeof(int));
    GenConfig g;
    g.max_new = jc->max_new; g.temperature = jc->temperature; g.top_p = jc->top_p; g.stops = stops; g.n_stops = 2;
    for (i = 0; i < n; i++) {
        char *filled = judge_template_fill(jt, instructions[i], responses[i]);
        int np, *ids = chat_prompt(tok, filled, &np);
        free(filled);
        memset(&out[i], 0, sizeof out[i]);
        if (keep_text) {
            out[i].judgments = xcalloc((size_t)S, sizeof(char *));
            out[i].sample_score = xcalloc((size_t)S, sizeof(float));
            out[i].sample_flag = xcalloc((size_t)S, 1);
        }
        if (np + 8 > m->cfg.max_seq_len) { out[i].too_long = 1; free(ids); continue; }
        for (j = 0; j < S; j++) {
            prompts[k] = ids; plen[k] = np; seeds[k] = hash64(item_seeds[i], (uint64_t)j); item[k] = i; k++;
        }
    }
    generate(m, d, k, prompts, plen, seeds, &g, gen, glen);
    for (j = 0; j < k; j++) {
        Judgment *o = &out[item[j]];
        size_t tl;
        char *text = decode_ids(tok, gen[j], (size_t)glen[j], &tl);
        float s;
        int parsed = judge_score_parse(text, tl, &s), at = o->n_valid + o->n_failed;
        if (parsed) { o->score_sum += s; o->n_valid++; }
        else o->n_failed++;
        if (keep_text) {
            o->judgments[at] = text;
            o->sample_score[at] = parsed ? s : 0.0f;
            o->sample_flag[at] = (unsigned char)((parsed ? 1 : 0) | (memchr(text, 0, tl) == NULL && utf8_valid(text, tl) ? 2 : 0));
        } else free(text);
        free(gen[j]);
        if (j + 1 == k || prompts[j + 1] != prompts[j]) free(prompts[j]);
    }
    for (i = 0; i < n; i++) {
        out[i].has_score = out[i].n_valid > 0;
        /* mean in a fixed order: the sum above runs over samples 0..S-1 */
        if (out[i].has_score) out[i].score = out[i].score_sum / (float)out[i].n_valid;
    }
    free(prompts); free(plen); free(gen); free(glen); free(seeds); free(item);
}

static void judgment_free(Judgment *j, int samples) {
    int s;
    if (j->judgments) for (s = 0; s < samples; s++) free(j->judgments[s]);
    free(j->judgments); free(j->sample_score); free(j->sample_flag);
}

/* ==========================================================================
 * 11. Reward-model metrics (the paper's Table 4), over ranked sets: an
 * instruction, k responses, their true grades (from the data file; srlm only
 * compares) and the model's judge scores.
 *   pairwise accuracy: over pairs with different true grades, the share the
 *     model orders the same way; a model tie counts 1/2; a pair where either
 *     response has no score counts 0.
 *   5-best %: sets where every response with the model's highest score has
 *     the highest true grade (a set with no scored response fails).
 *   exact match %: sets where every pair is ordered as the true grades order
 *     it (ties must match ties); any unscored response fails the set.
 *   Spearman rho and Kendall tau-b: per set (average ranks for ties; a set
 *     where either side is constant contributes 0), averaged over sets.
 *     Unscored responses take the lowest score, -1.
 * Paper step: "Reward Modeling Ability" (evaluation only; Table 4).
 * ========================================================================== */

typedef struct { double pair_acc, best5, exact, spearman, kendall; int sets, pairs; } RmMetrics;

static void avg_ranks(const double *x, int k, double *rank) {
    int i, j;
    for (i = 0; i < k; i++) {
        double less = 0.0, equal = 0.0;
        for (j = 0; j < k; j++) { if (x[j] < x[i]) less += 1.0; else if (x[j] == x[i]) equal += 1.0; }
        rank[i] = less + (equal + 1.0) / 2.0;
    }
}

static double pearson(const double *a, const double *b, int k) {
    double ma = 0, mb = 0, sab = 0, saa = 0, sbb = 0;
    int i;
    for (i = 0; i < k; i++) { ma += a[i]; mb += b[i]; }
    ma /= k; mb /= k;
    for (i = 0; i < k; i++) { sab += (a[i] - ma) * (b[i] - mb); saa += (a[i] - ma) * (a[i] - ma); sbb += (b[i] - mb) * (b[i] - mb); }
    if (saa == 0.0 || sbb == 0.0) return 0.0;
    return sab / sqrt(saa * sbb);
}

static double kendall_tau_b(const double *a, const double *b, int k) {
    double conc = 0, disc = 0, ta = 0, tb = 0;
    int i, j;
    for (i = 0; i < k; i++)
        for (j = i + 1; j < k; j++) {
            double da = a[i] - a[j], db = b[i] - b[j];
            if (da == 0 && db == 0) continue;
            if (da == 0) ta += 1; else if (db == 0) tb += 1;
            else if ((da > 0) == (db > 0)) conc += 1; else disc += 1;
        }
    if (conc + disc + ta == 0 || conc + disc + tb == 0) return 0.0;
    return (conc - disc) / sqrt((conc + disc + ta) * (conc + disc + tb));
}

/* grades[s][i], scores[s][i] (has[s][i] = 0: no score), k[s] responses in set s */
static RmMetrics rm_metrics(int n_sets, const int *k, double *const *grades, double *const *scores, int *const *has) {
    RmMetrics r;
    double pair_ok = 0, best_ok = 0, exact_ok = 0, sp = 0, kt = 0;
    int s, i, j, pairs = 0;
    memset(&r, 0, sizeof r);
    for (s = 0; s < n_sets; s++) {
        double top_grade = -1e300, top_score = -1e300, sc[16], ra[16], rb[16];
        int exact = 1, best = 1, any = 0;
        if (k[s] > 16) die("internal: ranked set larger than 16");
        for (i = 0; i < k[s]; i++) {
            sc[i] = has[s][i] ? scores[s][i] : -1.0;
            if (grades[s][i] > top_grade) top_grade = grades[s][i];
            if (has[s][i]) { any = 1; if (scores[s][i] > top_score) top_score = scores[s][i]; }
            if (!has[s][i]) exact = 0;
        }
        for (i = 0; i < k[s]; i++)
            for (j = i + 1; j < k[s]; j++) {
                double dg = grades[s][i] - grades[s][j], ds = sc[i] - sc[j];
                if ((dg > 0) != (ds > 0) || (dg < 0) != (ds < 0)) exact = 0;
                if (dg == 0) continue;
                pairs++;
                if (!has[s][i] || !has[s][j]) continue;
                if (ds == 0) pair_ok += 0.5;
                else if ((dg > 0) == (ds > 0)) pair_ok += 1.0;
            }
        if (!any) best = 0;
        for (i = 0; i < k[s] && any; i++)
            if (has[s][i] && scores[s][i] == top_score && grades[s][i] != top_grade) best = 0;
        best_ok += best;
        exact_ok += exact;
        avg_ranks(grades[s], k[s], ra);
        avg_ranks(sc, k[s], rb);
        sp += pearson(ra, rb, k[s]);
        kt += kendall_tau_b(grades[s], sc, k[s]);
    }
    r.sets = n_sets; r.pairs = pairs;
    r.pair_acc = pairs ? pair_ok / pairs : 0.0;
    r.best5 = n_sets ? best_ok / n_sets : 0.0;
    r.exact = n_sets ? exact_ok / n_sets : 0.0;
    r.spearman = n_sets ? sp / n_sets : 0.0;
    r.kendall = n_sets ? kt / n_sets : 0.0;
    return r;
}


/* Judge every response of every ranked set and compute the metrics. */
typedef struct { RmMetrics m; int judgments, failures, unscored, responses; } RmResult;

static RmResult eval_reward_model(const Model *m, const Tokenizer *tok, const JudgeTemplate *jt, const char *path,
                                  const JudgeConfig *jc, uint64_t seed, int limit) {
    Jsonl j;
    Decoder d;
    RmResult r;
    int i, s, total = 0, at = 0;
    int *k;
    double **grades, **scores;
    int **has;
    char **inst, **resp;
    uint64_t *seeds;
    Judgment *res;
    memset(&r, 0, sizeof r);
    jsonl_load(&j, path);
    if (limit > 0 && j.count > limit) j.count = limit; /* the first `limit` sets */
    if (j.count == 0) die("%s: no ranked sets", path);
    k = xcalloc((size_t)j.count, sizeof(int));
    grades = xcalloc((size_t)j.count, sizeof(double *)); scores = xcalloc((size_t)j.count, sizeof(double *));
    has = xcalloc((size_t)j.count, sizeof(int *));
    for (s = 0; s < j.count; s++) {
        JsonSpan rv, gv, e;
        const char *it = NULL;
        if (!json_get(j.line[s], j.line[s] + j.len[s], "responses", &rv) ||
            !json_get(j.line[s], j.line[s] + j.len[s], "grades", &gv))
            die("%s: record %d needs \"responses\" and \"grades\" arrays", path, s + 1);
        while (json_array_next(rv, &it, &e)) k[s]++;
        if (k[s] < 2 || k[s] > 16) die("%s: record %d: a ranked set needs 2..16 responses, has %d", path, s + 1, k[s]);
        grades[s] = xcalloc((size_t)k[s], sizeof(double)); scores[s] = xcalloc((size_t)k[s], sizeof(double));
        has[s] = xcalloc((size_t)k[s], sizeof(int));
        it = NULL; i = 0;
        while (json_array_next(gv, &it, &e)) {
            if (i >= k[s] || !json_number(e, &grades[s][i])) die("%s: record %d: \"grades\" must be %d numbers", path, s + 1, k[s]);
            i++;
        }
        if (i != k[s]) die("%s: record %d: %d grades for %d responses", path, s + 1, i, k[s]);
        total += k[s];
    }
    inst = xcalloc((size_t)total, sizeof(char *)); resp = xcalloc((size_t)total, sizeof(char *));
    seeds = xcalloc((size_t)total, sizeof(uint64_t)); res = xcalloc((size_t)total, sizeof(Judgment));
    for (s = 0; s < j.count; s++) {
        JsonSpan rv, e;
        const char *it = NULL;
        char *instruction = jsonl_str(&j, s, "instruction");
        json_get(j.line[s], j.line[s] + j.len[s], "responses", &rv);
        for (i = 0; json_array_next(rv, &it, &e); i++) {
            inst[at] = instruction;
            resp[at] = json_string(e, NULL);
            if (!resp[at]) die("%s: record %d: response %d is not a string", path, s + 1, i + 1);
            seeds[at] = hash64(seed, (uint64_t)at);
            at++;
        }
    }
    decoder_init(&d, &m->cfg, 64, 1024);
    judge_many(m, &d, tok, jt, total, inst, resp, seeds, jc, 0, res);
    at = 0;
    for (s = 0; s < j.count; s++) {
        for (i = 0; i < k[s]; i++, at++) {
            scores[s][i] = res[at].score; has[s][i] = res[at].has_score;
            r.judgments += res[at].n_valid + res[at].n_failed;
            r.failures += res[at].n_failed;
            r.unscored += !res[at].has_score;
            free(resp[at]);
        }
        free(inst[at - 1]);
    }
    r.responses = total;
    r.m = rm_metrics(j.count, k, grades, scores, has);
    for (s = 0; s < j.count; s++) { free(grades[s]); free(scores[s]); free(has[s]); }
    free(k); free(grades); free(scores); free(has); free(inst); free(resp); free(seeds); free(res);
    decoder_free(&d);
    jsonl_free(&j);
    return r;
}

/* ==========================================================================
 * 12. AIFT(Mt): the model writes its own preference data
 *
 *   (a) new prompts by few-shot self-instruct with a fixed model,
 *   (b) N candidate responses per prompt from Mt,
 *   (c) Mt judges every candidate (section 10),
 *   (d) pair = (highest mean score, lowest mean score); ties dropped.
 *       Optionally (not in the paper) only confident pairs are kept: a mean
 *       score gap of at least min_margin and a chosen mean of at least
 *       min_chosen, both judged by Mt itself (aift_pair_confident).
 * The world's grader is nowhere here: every reward is Mt's own parsed text.
 * Paper step: "Self-Instruction Creation" (new prompts, candidate
 * responses, self-judging) and the pair rule of "AI Feedback Training".
 * ========================================================================== */

typedef struct {
    int n_prompts;          /* new prompts wanted */
    int n_candidates;       /* N = 4 responses per prompt */
    float resp_temperature, resp_top_p;     /* 0.7, 0.9 */
    float prompt_temperature, prompt_top_p; /* 0.6, 0.9 */
    int max_prompt_tokens, max_response_tokens;
    int min_prompt_bytes, max_prompt_bytes;
    float max_similarity;   /* drop a prompt this similar (ROUGE-L F on words) to a seed or kept prompt */
    float min_margin;       /* keep a pair only if chosen - rejected mean score >= this (0: any untied pair, the paper) */
    float min_chosen;       /* ... and the chosen mean score >= this (0: no bound, the paper) */
    JudgeConfig judge;
    uint64_t seed;
} AiftConfig;

static AiftConfig aift_config_default(void) {
    AiftConfig a;
    a.n_prompts = 1000; a.n_candidates = 4;
    a.resp_temperature = 0.7f; a.resp_top_p = 0.9f;
    a.prompt_temperature = 0.6f; a.prompt_top_p = 0.9f;
    a.max_prompt_tokens = 48; a.max_response_tokens = 64;
    a.min_prompt_bytes = 8; a.max_prompt_bytes = 160;
    a.max_similarity = 0.9f;
    a.min_margin = 0.0f; a.min_chosen = 0.0f;
    a.judge = judge_config_default();
    a.seed = 1;
    return a;
}

/* Words for similarity: runs of letters/digits, lowercased, each other
 * non-space byte a word of its own. Returns the count; words are hashed. */
static int sim_words(const char *s, uint64_t *w, int cap) {
    int n = 0;
    while (*s && n < cap) {
        uint64_t h = 1469598103934665603ull;
        if (*s == ' ' || *s == '\t' || *s == '\n') { s++; continue; }
        if (is_alpha(*s) || is_digit(*s)) {
            while (is_alpha(*s) || is_digit(*s)) { h = (h ^ (uint64_t)(unsigned char)(*s | (is_alpha(*s) ? 32 : 0))) * 1099511628211ull; s++; }
        } else {
            h = (h ^ (uint64_t)(unsigned char)*s) * 1099511628211ull; s++;
        }
        w[n++] = h;
    }
    return n;
}

/* ROUGE-L F-measure between word sequences (LCS by dynamic programming). */
static float rouge_l(const uint64_t *a, int na, const uint64_t *b, int nb) {
    int prev[65], cur[65], i, j, lcs;
    if (na == 0 || nb == 0) return na == nb ? 1.0f : 0.0f;
    if (nb > 64) nb = 64;
    for (j = 0; j <= nb; j++) prev[j] = 0;
    for (i = 1; i <= na; i++) {
        cur[0] = 0;
        for (j = 1; j <= nb; j++)
            cur[j] = a[i - 1] == b[j - 1] ? prev[j - 1] + 1 : (prev[j] > cur[j - 1] ? prev[j] : cur[j - 1]);
        memcpy(prev, cur, sizeof(int) * (size_t)(nb + 1));
    }
    lcs = prev[nb];
    if (lcs == 0) return 0.0f;
    {
        float p = (float)lcs / (float)nb, r = (float)lcs / (float)na;
        return 2.0f * p * r / (p + r);
    }
}

/* A set of prompts with their word hashes, for the similarity filter. */
typedef struct { char **text; uint64_t (*words)[64]; int *nw; int n, cap; } PromptSet;

static void pset_add(PromptSet *ps, const char *text) {
    if (ps->n == ps->cap) {
        ps->cap = ps->cap ? ps->cap * 2 : 256;
        ps->text = realloc(ps->text, (size_t)ps->cap * sizeof(char *));
        ps->words = realloc(ps->words, (size_t)ps->cap * sizeof(*ps->words));
        ps->nw = realloc(ps->nw, (size_t)ps->cap * sizeof(int));
        if (!ps->text || !ps->words || !ps->nw) die("out of memory");
    }
    ps->text[ps->n] = xmalloc(strlen(text) + 1);
    strcpy(ps->text[ps->n], text);
    ps->nw[ps->n] = sim_words(text, ps->words[ps->n], 64);
    ps->n++;
}

static float pset_max_similarity(const PromptSet *ps, const char *text) {
    uint64_t w[64];
    int n = sim_words(text, w, 64), i;
    float best = 0.0f;
    for (i = 0; i < ps->n; i++) {
        float s = rouge_l(w, n, ps->words[i], ps->nw[i]);
        if (s > best) best = s;
    }
    return best;
}

static int pset_contains(const PromptSet *ps, const char *text) {
    int i;
    for (i = 0; i < ps->n; i++) if (strcmp(ps->text[i], text) == 0) return 1;
    return 0;
}

static void pset_free(PromptSet *ps) {
    int i;
    for (i = 0; i < ps->n; i++) free(ps->text[i]);
    free(ps->text); free(ps->words); free(ps->nw);
    memset(ps, 0, sizeof *ps);
}

/* Trim spaces at both ends, in place. */
static char *trim(char *s) {
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r')) s[--n] = 0;
    while (*s == ' ' || *s == '\t') s++;
    return s;
}

typedef struct {
    int generated, kept, too_short_or_long, special_or_bad_utf8, similar, heldout, surplus, rounds;
} PromptStats;

/* Few-shot self-instruct. Each request is raw text (no chat format):
 *   <|bos|>Task: e1\nTask: e2\n ... Task: e8\nTask:
 * with e1..e6 drawn from the seed instructions and e7, e8 from prompts kept
 * in earlier rounds (all 8 from the seed until two exist), and the model's
 * line up to the newline is the candidate. Requests go in rounds of
 * `per_round`; a round only sees prompts kept before it began, so the result
 * does not depend on batching. */
static char **self_instruct(const Model *pm, const Tokenizer *tok, char *const *seed_inst, int n_seed,
                            const PromptSet *heldout, const AiftConfig *cfg, int *n_out, PromptStats *st) {
    PromptSet known = {0}, kept = {0};
    Decoder d;
    GenConfig g;
    int stops[3] = {'\n', TOK_EOS, TOK_EOT}, per_round = 64, i, r;
    memset(st, 0, sizeof *st);
    for (i = 0; i < n_seed; i++) pset_add(&known, seed_inst[i]);
    g.max_new = cfg->max_prompt_tokens; g.temperature = cfg->prompt_temperature; g.top_p = cfg->prompt_top_p;
    g.stops = stops; g.n_stops = 3;
    decoder_init(&d, &pm->cfg, per_round, 2048);
    for (r = 0; kept.n < cfg->n_prompts && r < 4 * (cfg->n_prompts / per_round + 4); r++) {
        int **prompts = xcalloc((size_t)per_round, sizeof(int *)), *plen = xcalloc((size_t)per_round, sizeof(int));
        int **out = xcalloc((size_t)per_round, sizeof(int *)), *olen = xcalloc((size_t)per_round, sizeof(int));
        uint64_t *seeds = xcalloc((size_t)per_round, sizeof(uint64_t));
        int kept_before = kept.n;
        Rng rng;
        rng_init(&rng, hash64(cfg->seed, (uint64_t)r), RNG_STREAM_AIFT);
        for (i = 0; i < per_round; i++) {
            Buf b = {0, 0, 0};
            int e;
            size_t n_ids;
            int *ids;
            buf_put(&b, "", 0);
            for (e = 0; e < 8; e++) {
                const char *ex = (e >= 6 && kept_before >= 2) ? kept.text[rng_below(&rng, (uint32_t)kept_before)]
                                                              : seed_inst[rng_below(&rng, (uint32_t)n_seed)];
                buf_str(&b, "Task: "); buf_str(&b, ex); buf_str(&b, "\n");
            }
            buf_str(&b, "Task:");
            ids = encode_text(tok, b.p, b.n, &n_ids);
            prompts[i] = xmalloc((n_ids + 1) * sizeof(int));
            prompts[i][0] = TOK_BOS;
            memcpy(prompts[i] + 1, ids, n_ids * sizeof(int));
            plen[i] = (int)n_ids + 1;
            if (plen[i] + g.max_new >= pm->cfg.max_seq_len) { /* too long: keep <|bos|> and the tail ("... Task:") */
                int keep = pm->cfg.max_seq_len - g.max_new - 2;
                memmove(prompts[i] + 1, prompts[i] + plen[i] - keep, (size_t)keep * sizeof(int));
                plen[i] = keep + 1;
            }
            seeds[i] = hash64(hash64(cfg->seed, 0x70726f6d7074ull), (uint64_t)r * (uint64_t)per_round + (uint64_t)i);
            free(ids); free(b.p);
        }
        generate(pm, &d, per_round, prompts, plen, seeds, &g, out, olen);
        for (i = 0; i < per_round; i++) {
            int k, special = 0;
            char *text, *t;
            size_t tl;
            st->generated++;
            for (k = 0; k < olen[i]; k++) if (out[i][k] >= TOK_N_BYTES && out[i][k] < TOK_FIRST_MERGE) special = 1;
            text = decode_ids(tok, out[i], (size_t)olen[i], &tl);
            t = trim(text);
            if (special || memchr(text, 0, tl) != NULL || !utf8_valid(t, strlen(t)))
                st->special_or_bad_utf8++;
            else if ((int)strlen(t) < cfg->min_prompt_bytes || (int)strlen(t) > cfg->max_prompt_bytes)
                st->too_short_or_long++;
            else if (pset_contains(heldout, t))
                st->heldout++;
            else if (kept.n >= cfg->n_prompts)
                st->surplus++;
            else if (pset_max_similarity(&known, t) >= cfg->max_similarity)
                st->similar++;
            else {
                pset_add(&kept, t);
                pset_add(&known, t);
            }
            free(text); free(out[i]); free(prompts[i]);
        }
        free(prompts); free(plen); free(out); free(olen); free(seeds);
        st->rounds++;
        fprintf(stderr, "\r  self-instruct: %d/%d prompts kept of %d generated", kept.n, cfg->n_prompts, st->generated);
    }
    fprintf(stderr, "\n");
    decoder_free(&d);
    st->kept = kept.n;
    *n_out = kept.n;
    {
        char **res = kept.text;
        free(kept.words); free(kept.nw);
        pset_free(&known);
        return res;
    }
}

typedef struct {
    PromptStats prompts;
    int candidates, bad_utf8, judgments, parse_failures, unscored, pairs, ties, identical;
    int filter_on;          /* min_margin or min_chosen set */
    int low_confidence;     /* untied pairs dropped by them */
} AiftStats;

/* Is a (chosen, rejected) pair of mean self-judged scores confident enough to
 * train on? With the defaults (0, 0) every untied pair is, as in the paper. A
 * small model's judge is right about its own near-identical candidates barely
 * more often than not (tiny_models/PROBES.md, probes 1 and 7); a wide
 * gap with a high chosen score is where its judgments are most often right. */
static int aift_pair_confident(float chosen, float rejected, const AiftConfig *cfg) {
    return chosen - rejected >= cfg->min_margin && chosen >= cfg->min_chosen;
}
/* Is the filter on at all? It shows in run.cfg, the stats and the report only then. */
static int aift_filter_on(const AiftConfig *cfg) { return cfg->min_margin > 0.0f || cfg->min_chosen > 0.0f; }

/* One line of aiftN.candidates.jsonl: a kept prompt, its N candidates in
 * sample order with Mt's judgments of each and their parsed scores, the mean
 * that ranked it (pooled over candidates with identical text), and what became
 * of the prompt. chosen/rejected name the first candidate of each text. */
static void aift_candidates_line(Buf *b, const char *prompt, char *const *resp, const int *resp_ok,
                                 const Judgment *jud, const float *mean_of, const int *scored, int N, int samples,
                                 const char *outcome, int chosen, int rejected) {
    int j, k;
    buf_str(b, "{\"prompt\": ");
    json_put_string(b, prompt, strlen(prompt));
    buf_str(b, ", \"candidates\": [");
    for (j = 0; j < N; j++) {
        buf_str(b, j ? ", {\"response\": " : "{\"response\": ");
        if (resp_ok[j]) json_put_string(b, resp[j], strlen(resp[j]));
        else buf_str(b, "null"); /* not valid UTF-8 (or a NUL): dropped from AIFT, counted in candidates_bad_utf8 */
        buf_str(b, ", \"judgments\": [");
        for (k = 0; k < jud[j].n_valid + jud[j].n_failed && k < samples; k++) {
            if (k) buf_str(b, ", ");
            if (jud[j].sample_flag[k] & 2) json_put_string(b, jud[j].judgments[k], strlen(jud[j].judgments[k]));
            else buf_str(b, "null"); /* JSON could not carry it exactly */
        }
        buf_str(b, "], \"scores\": [");
        for (k = 0; k < jud[j].n_valid + jud[j].n_failed && k < samples; k++) {
            if (k) buf_str(b, ", ");
            if (jud[j].sample_flag[k] & 1) buf_printf(b, "%.9g", (double)jud[j].sample_score[k]); else buf_str(b, "null");
        }
        if (scored[j]) buf_printf(b, "], \"mean\": %.9g}", (double)mean_of[j]); else buf_str(b, "], \"mean\": null}");
    }
    buf_printf(b, "], \"outcome\": \"%s\"", outcome);
    if (chosen >= 0) buf_printf(b, ", \"chosen\": %d, \"rejected\": %d", chosen, rejected);
    buf_str(b, "}\n");
}

/* (b) N candidate responses per prompt from Mt, candidate j of prompt i drawn
 * from seed hash64(hash64(seed, "cand"), i*N + j). Fills resp_ids/resp_len
 * (total = n_prompts * N rows); the prompt ids stay in *pids_out (one per prompt,
 * shared by its N rows). */
static void aift_sample_candidates(const Model *mt, Decoder *d, const Tokenizer *tok, char *const *prompts, int n_prompts,
                                   const AiftConfig *cfg, int **pids, int **resp_ids, int *resp_len) {
    int N = cfg->n_candidates, total = n_prompts * N, i, j, stops[2] = {TOK_EOT, TOK_EOS};
    int *plen = xcalloc((size_t)total, sizeof(int));
    uint64_t *seeds = xcalloc((size_t)total, sizeof(uint64_t));
    GenConfig g;
    for (i = 0; i < n_prompts; i++) {
        int np, *ids = chat_prompt(tok, prompts[i], &np);
        for (j = 0; j < N; j++) {
            pids[i * N + j] = ids; plen[i * N + j] = np;
            seeds[i * N + j] = hash64(hash64(cfg->seed, 0x63616e64ull), (uint64_t)(i * N + j));
        }
    }
    g.max_new = cfg->max_response_tokens; g.temperature = cfg->resp_temperature; g.top_p = cfg->resp_top_p;
    g.stops = stops; g.n_stops = 2;
    fprintf(stderr, "  candidates: %d prompts x %d responses\n", n_prompts, N);
    generate(mt, d, total, pids, plen, seeds, &g, resp_ids, resp_len);
    free(plen); free(seeds);
}

/* (c) Mt judges each candidate (section 10), judgment sample set of candidate
 * k seeded by hash64(hash64(seed, "judge"), k). resp receives the decoded
 * texts; resp_ok marks those JSON can carry exactly (valid UTF-8, no NUL). */
static void aift_judge_candidates(const Model *mt, Decoder *d, const Tokenizer *tok, const JudgeTemplate *jt,
                                  char *const *prompts, int total, int *const *resp_ids, const int *resp_len,
                                  const AiftConfig *cfg, int keep_text, char **resp, int *resp_ok, Judgment *jud) {
    int N = cfg->n_candidates, i;
    char **inst = xcalloc((size_t)total, sizeof(char *));
    uint64_t *seeds = xcalloc((size_t)total, sizeof(uint64_t));
    for (i = 0; i < total; i++) {
        size_t rl;
        inst[i] = prompts[i / N];
        resp[i] = decode_ids(tok, resp_ids[i], (size_t)resp_len[i], &rl);
        resp_ok[i] = memchr(resp[i], 0, rl) == NULL && utf8_valid(resp[i], rl);
        seeds[i] = hash64(hash64(cfg->seed, 0x6a75646765ull), (uint64_t)i);
    }
    fprintf(stderr, "  self-judging: %d candidates x %d samples\n", total, cfg->judge.samples);
    judge_many(mt, d, tok, jt, total, inst, resp, seeds, &cfg->judge, keep_text, jud);
    free(inst); free(seeds);
}

/* One prompt's candidates grouped into distinct texts, each with its pooled mean score. */
typedef struct {
    int distinct;                 /* distinct valid texts */
    int rep[64], grp[64], cnt[64];/* first candidate of each text; text of each candidate; valid scores per text */
    float mean[64];               /* mean of the text's valid scores (when cnt > 0) */
    int best, worst;              /* texts with the highest / lowest mean, -1 if none scored */
    const char *outcome;          /* pair, identical, tie, unscored or low_confidence */
} AiftPrompt;

/* (d) The pair for one prompt: (highest mean, lowest mean). Candidates with
 * identical text are one response: their judgments are pooled (all valid
 * scores averaged, in candidate order), so sampling noise cannot make a text
 * preferred to itself. Counts go to st. */
static void aift_rank_prompt(AiftPrompt *a, char *const *resp, const int *resp_ok, const Judgment *jud, int N,
                             const AiftConfig *cfg, AiftStats *st) {
    float sum[64];
    int j, r;
    if (N > 64) die("internal: at most 64 candidates per prompt");
    a->distinct = 0; a->best = -1; a->worst = -1; a->outcome = "pair";
    for (j = 0; j < N; j++) {
        st->judgments += jud[j].n_valid + jud[j].n_failed;
        st->parse_failures += jud[j].n_failed;
        if (!resp_ok[j]) { st->bad_utf8++; continue; } /* JSON could not carry it exactly */
        for (r = 0; r < a->distinct && strcmp(resp[a->rep[r]], resp[j]) != 0; r++) {}
        if (r == a->distinct) { a->rep[r] = j; sum[r] = 0.0f; a->cnt[r] = 0; a->distinct++; }
        sum[r] += jud[j].score_sum;
        a->cnt[r] += jud[j].n_valid;
        a->grp[j] = r;
    }
    for (r = 0; r < a->distinct; r++) {
        if (a->cnt[r] == 0) { st->unscored++; continue; }
        a->mean[r] = sum[r] / (float)a->cnt[r];
        if (a->best < 0 || a->mean[r] > a->mean[a->best]) a->best = r;
        if (a->worst < 0 || a->mean[r] < a->mean[a->worst]) a->worst = r;
    }
    if (a->distinct == 1) { st->identical++; a->outcome = "identical"; }
    else if (a->best < 0 || a->best == a->worst) { if (a->best >= 0) st->ties++; a->outcome = a->best >= 0 ? "tie" : "unscored"; }
    else if (a->mean[a->best] == a->mean[a->worst]) { st->ties++; a->outcome = "tie"; }
    else if (!aift_pair_confident(a->mean[a->best], a->mean[a->worst], cfg)) { st->low_confidence++; a->outcome = "low_confidence"; }
}

/* The prompt's line of the candidates file (aift_candidates_line) from its ranking. */
static void aift_candidates_record(Buf *cands, const AiftPrompt *a, const char *prompt, char *const *resp,
                                   const int *resp_ok, const Judgment *jud, int N, int samples) {
    float mean_of[64];
    int scored[64], j, c = -1, w = -1;
    for (j = 0; j < N; j++) {
        scored[j] = resp_ok[j] && a->cnt[a->grp[j]] > 0;
        mean_of[j] = scored[j] ? a->mean[a->grp[j]] : 0.0f;
    }
    if (strcmp(a->outcome, "pair") == 0 || strcmp(a->outcome, "low_confidence") == 0) { c = a->rep[a->best]; w = a->rep[a->worst]; }
    aift_candidates_line(cands, prompt, resp, resp_ok, jud, mean_of, scored, N, samples, a->outcome, c, w);
}

/* One TRL-style preference line: prompt, chosen, rejected and their mean scores. */
static void aift_pair_line(Buf *out, const char *prompt, const char *chosen, const char *rejected, float s_chosen,
                           float s_rejected) {
    buf_str(out, "{\"prompt\": ");
    json_put_string(out, prompt, strlen(prompt));
    buf_str(out, ", \"chosen\": ");
    json_put_string(out, chosen, strlen(chosen));
    buf_str(out, ", \"rejected\": ");
    json_put_string(out, rejected, strlen(rejected));
    buf_printf(out, ", \"score_chosen\": %.9g, \"score_rejected\": %.9g}\n", (double)s_chosen, (double)s_rejected);
}

/* Build AIFT(Mt) and write it as TRL-style preference JSONL; with cands,
 * also every prompt's candidates, judgments and outcome (candidates file). */
static void aift_build(const Model *mt, const Model *prompt_model, const Tokenizer *tok, const JudgeTemplate *jt,
                       char *const *seed_inst, int n_seed, const PromptSet *heldout, const AiftConfig *cfg,
                       Buf *out, Buf *cands, AiftStats *st) {
    int n_prompts, N = cfg->n_candidates, i, total;
    char **prompts, **resp;
    int **pids, **resp_ids, *resp_len, *resp_ok;
    Judgment *jud;
    Decoder d;
    memset(st, 0, sizeof *st);
    st->filter_on = aift_filter_on(cfg);
    /* (a) prompts */
    prompts = self_instruct(prompt_model, tok, seed_inst, n_seed, heldout, cfg, &n_prompts, &st->prompts);
    /* (b) N candidates per prompt from Mt */
    total = n_prompts * N;
    pids = xcalloc((size_t)total, sizeof(int *));
    resp_ids = xcalloc((size_t)total, sizeof(int *)); resp_len = xcalloc((size_t)total, sizeof(int));
    decoder_init(&d, &mt->cfg, 64, 2048);
    aift_sample_candidates(mt, &d, tok, prompts, n_prompts, cfg, pids, resp_ids, resp_len);
    /* (c) Mt judges each candidate */
    resp = xcalloc((size_t)total, sizeof(char *));
    jud = xcalloc((size_t)total, sizeof(Judgment));
    resp_ok = xcalloc((size_t)total, sizeof(int));
    aift_judge_candidates(mt, &d, tok, jt, prompts, total, resp_ids, resp_len, cfg, cands != NULL, resp, resp_ok, jud);
    /* (d) pairs */
    st->candidates = total;
    for (i = 0; i < n_prompts; i++) {
        AiftPrompt a;
        aift_rank_prompt(&a, resp + i * N, resp_ok + i * N, jud + i * N, N, cfg, st);
        if (cands) aift_candidates_record(cands, &a, prompts[i], resp + i * N, resp_ok + i * N, jud + i * N, N, cfg->judge.samples);
        if (strcmp(a.outcome, "pair") != 0) continue;
        aift_pair_line(out, prompts[i], resp[i * N + a.rep[a.best]], resp[i * N + a.rep[a.worst]], a.mean[a.best], a.mean[a.worst]);
        st->pairs++;
    }
    for (i = 0; i < n_prompts; i++) { free(pids[i * N]); free(prompts[i]); }
    for (i = 0; i < total; i++) { free(resp_ids[i]); free(resp[i]); judgment_free(&jud[i], cfg->judge.samples); }
    free(prompts); free(pids); free(resp_ids); free(resp_len); free(resp); free(jud); free(resp_ok);
    decoder_free(&d);
}

/* ==========================================================================
 * 13. DPO: M(t+1) from Mt on AIFT(Mt)
 *
 *   L = -log sigmoid( beta [ (log pi(yw|x) - log ref(yw|x)) - (log pi(yl|x) - log ref(yl|x)) ] )
 * with log pi(y|x) the sum of the response tokens' log-probabilities (prompt
 * masked, the closing <|eot|> included) and ref = Mt frozen, whose
 * log-probabilities are computed once before training. Optional label
 * smoothing eps (cDPO): L = (1-eps) softplus(-z) + eps softplus(z). Optional
 * RPO term (Pang et al. 2024): + alpha * (-log pi(yw|x)) / |yw|.
 * A batch of P pairs is one forward pass over 2P rows: chosen rows first,
 * then rejected rows.
 * Paper step: "Instruction Following Training": Mt+1 = DPO(Mt, AIFT(Mt)).
 * ========================================================================== */

typedef struct { Example chosen, rejected; double ref_chosen, ref_rejected; } PrefPair;

typedef struct { float beta, label_smoothing, nll_weight; } DpoConfig;

/* After model_forward: per-row sum of target log-probs, in position order. */
static void row_logps(const Model *m, const int *targets, int B, int T, double *out) {
    int b, t;
    for (b = 0; b < B; b++) {
        double s = 0.0;
        for (t = 0; t < T; t++) if (targets[b * T + t] >= 0) s -= m->a.losses[b * T + t];
        out[b] = s;
    }
}

static double softplus_d(double x) { return x > 0 ? x + ts_log(1.0 + ts_exp(-x)) : ts_log(1.0 + ts_exp(x)); }
static double sigmoid_d(double x) { return x >= 0 ? 1.0 / (1.0 + ts_exp(-x)) : ts_exp(x) / (1.0 + ts_exp(x)); }

/* Reference log-probs, once, in eval mode, 16 pairs at a time. */
static void dpo_reference(Model *ref, PrefPair *pairs, int n) {
    int P = 16, i, b;
    const Example *rows[32];
    int *inputs = xmalloc((size_t)32 * ref->cfg.max_seq_len * sizeof(int));
    int *targets = xmalloc((size_t)32 * ref->cfg.max_seq_len * sizeof(int));
    double lp[32];
    for (i = 0; i < n; i += P) {
        int np = n - i < P ? n - i : P, T;
        for (b = 0; b < np; b++) { rows[b] = &pairs[i + b].chosen; rows[np + b] = &pairs[i + b].rejected; }
        T = examples_to_rows(rows, 2 * np, inputs, targets);
        ref->lm_rows_only = 1;
        model_forward(ref, inputs, targets, 2 * np, T, 0);
        ref->lm_rows_only = 0;
        row_logps(ref, targets, 2 * np, T, lp);
        for (b = 0; b < np; b++) { pairs[i + b].ref_chosen = lp[b]; pairs[i + b].ref_rejected = lp[np + b]; }
    }
    free(inputs); free(targets);
}

/* Per-step metrics, named as TRL names them. */
typedef struct { int step; double loss, chosen, rejected, accuracy, margin; float lr; } DpoLog;

static void dpo_train(Model *m, PrefPair *pairs, int n, const TrainConfig *t, const DpoConfig *dc, DpoLog *log) {
    int P = t->batch, s, b, T, N;
    int *order = xmalloc((size_t)n * sizeof(int)), order_epoch = -1;
    const Example *rows[2 * 4096];
    int *inputs = xmalloc((size_t)2 * P * m->cfg.max_seq_len * sizeof(int));
    int *targets = xmalloc((size_t)2 * P * m->cfg.max_seq_len * sizeof(int));
    float *dlosses = xmalloc((size_t)2 * P * m->cfg.max_seq_len * sizeof(float));
    double *lp = xmalloc((size_t)2 * P * sizeof(double));
    const PrefPair **batch = xmalloc((size_t)P * sizeof(PrefPair *));
    OptState os = {0, 1.0, 1.0};
    double t0 = now_seconds();
    if (P > 4096) die("dpo: batch too large");
    model_alloc_grads(m);
    m->dropout = t->dropout;
    m->lm_rows_only = 1;
    for (s = 0; s < t->steps; s++) {
        double loss = 0, rc = 0, rr = 0, acc = 0;
        float lr = lr_at(t, s);
        for (b = 0; b < P; b++) {
            long idx = (long)s * P + b;
            int epoch = (int)(idx / n);
            if (epoch != order_epoch) { shuffle_ints(order, n, t->seed, (uint64_t)epoch); order_epoch = epoch; }
            batch[b] = &pairs[order[idx % n]];
            rows[b] = &batch[b]->chosen;
            rows[P + b] = &batch[b]->rejected;
        }
        T = examples_to_rows(rows, 2 * P, inputs, targets);
        N = 2 * P * T;
        m->dropout_seed = hash64(t->seed ^ 0x64706f64726f70ull, (uint64_t)s);
        model_forward(m, inputs, targets, 2 * P, T, 1);
        row_logps(m, targets, 2 * P, T, lp);
        for (b = 0; b < N; b++) dlosses[b] = 0.0f;
        for (b = 0; b < P; b++) {
            double rw = dc->beta * (lp[b] - batch[b]->ref_chosen), rl = dc->beta * (lp[P + b] - batch[b]->ref_rejected);
            double z = rw - rl, eps = dc->label_smoothing;
            double dz = (-(1.0 - eps) * sigmoid_d(-z) + eps * sigmoid_d(z)) / P; /* dL/dz, batch mean */
            float g_chosen, g_rejected = (float)(dc->beta * dz); /* dL/d(token loss) */
            int tt, len = 0;
            for (tt = 0; tt < T; tt++) len += targets[b * T + tt] >= 0;
            /* RPO: + alpha * NLL(yw|x) / |yw|, each chosen token's loss weighted alpha / (|yw| P) */
            g_chosen = (float)(-dc->beta * dz + (double)dc->nll_weight / ((double)len * P));
            loss += ((1.0 - eps) * softplus_d(-z) + eps * softplus_d(z)) / P;
            if (dc->nll_weight > 0.0f) loss += (double)dc->nll_weight * (-lp[b]) / ((double)len * P);
            rc += rw / P; rr += rl / P; acc += (rw > rl ? 1.0 : 0.0) / P;
            for (tt = 0; tt < T; tt++) {
                if (targets[b * T + tt] >= 0) dlosses[b * T + tt] = g_chosen;
                if (targets[(P + b) * T + tt] >= 0) dlosses[(P + b) * T + tt] = g_rejected;
            }
        }
        memset(m->grads, 0, m->n_params * sizeof(float));
        model_backward(m, dlosses, 1);
        optimizer_step(m, &os, t, lr);
        if (log) { log[s].step = s + 1; log[s].loss = loss; log[s].chosen = rc; log[s].rejected = rr;
                   log[s].accuracy = acc; log[s].margin = rc - rr; log[s].lr = lr; }
        if (t->log_every > 0 && (s % t->log_every == 0 || s == t->steps - 1)) {
            double el = now_seconds() - t0;
            fprintf(stderr, "dpo step %d/%d loss %.4f rewards/chosen %.3f rewards/rejected %.3f rewards/accuracies %.2f "
                    "rewards/margins %.3f lr %.2e | ETA %.0fs\n", s + 1, t->steps, loss, rc, rr, acc, rc - rr, (double)lr,
                    el / (s + 1) * (t->steps - s - 1));
        }
    }
    m->dropout = 0.0f;
    m->lm_rows_only = 0;
    free(order); free(inputs); free(targets); free(dlosses); free(lp); free(batch);
}

/* Load TRL-style pairs {"prompt","chosen","rejected"} into chat examples;
 * pairs that do not fit the context are dropped and counted. */
static PrefPair *pairs_load(const char *path, const Tokenizer *tok, int context, int *n_out, int *dropped) {
    Jsonl j;
    PrefPair *pp;
    int i, n = 0;
    jsonl_load(&j, path);
    pp = xcalloc((size_t)(j.count ? j.count : 1), sizeof(PrefPair));
    *dropped = 0;
    for (i = 0; i < j.count; i++) {
        char *p = jsonl_str(&j, i, "prompt"), *c = jsonl_str(&j, i, "chosen"), *r = jsonl_str(&j, i, "rejected");
        PrefPair x;
        x.chosen = chat_example(tok, p, c);
        x.rejected = chat_example(tok, p, r);
        x.ref_chosen = x.ref_rejected = 0.0;
        free(p); free(c); free(r);
        if (x.chosen.n - 1 > context || x.rejected.n - 1 > context) {
            free(x.chosen.ids); free(x.rejected.ids); (*dropped)++; continue;
        }
        pp[n++] = x;
    }
    jsonl_free(&j);
    *n_out = n;
    return pp;
}

static void pairs_free(PrefPair *pp, int n) {
    int i;
    for (i = 0; i < n; i++) { free(pp[i].chosen.ids); free(pp[i].rejected.ids); }
    free(pp);
}

/* DPO of the checkpoint `init` on the pairs in `pairs_path` (the reference is
 * `init` itself, frozen), written atomically to `out`, with the per-step log
 * in `log_path` (JSONL, TRL's metric names; NULL: no log). t.steps < 0 means
 * `epochs` passes; t.warmup < 0 means steps/10; a batch never exceeds the
 * number of pairs. */
static void dpo_checkpoint(const char *init, const Tokenizer *tok, const char *pairs_path, TrainConfig t, int epochs,
                           const DpoConfig *dc, const char *out, const char *log_path, const char *label) {
    Model m;
    PrefPair *pp;
    int n, dropped, s;
    DpoLog *log;
    Buf lb = {0, 0, 0};
    char hex[65], meta[1024], names_init[256], names_pairs[256];
    ckpt_load(&m, init, NULL);
    tokenizer_check_model(tok, NULL, &m, init);
    pp = pairs_load(pairs_path, tok, m.cfg.max_seq_len, &n, &dropped);
    if (n == 0) die("%s: no preference pairs to train on (the judge gave every candidate the same score?)", pairs_path);
    if (t.batch > n) t.batch = n;
    if (t.steps < 0) t.steps = (int)(((long)epochs * n + t.batch - 1) / t.batch);
    if (t.warmup < 0) t.warmup = t.steps / 10;
    fprintf(stderr, "[%s] DPO of %s on %d pairs (%d too long dropped), %d steps of %d pairs, beta %g\n", label, init, n,
            dropped, t.steps, t.batch, (double)dc->beta);
    dpo_reference(&m, pp, n);
    log = xcalloc((size_t)t.steps + 1, sizeof(DpoLog));
    dpo_train(&m, pp, n, &t, dc, log);
    for (s = 0; s < t.steps; s++)
        buf_printf(&lb, "{\"step\": %d, \"loss\": %.6f, \"rewards/chosen\": %.6f, \"rewards/rejected\": %.6f, "
                        "\"rewards/accuracies\": %.4f, \"rewards/margins\": %.6f, \"lr\": %.6g}\n",
                   log[s].step, log[s].loss, log[s].chosen, log[s].rejected, log[s].accuracy, log[s].margin, (double)log[s].lr);
    if (log_path && write_file_atomic(log_path, lb.p ? lb.p : (uint8_t *)"", lb.n) != 0) exit(1);
    base_names(init, names_init, sizeof names_init);
    base_names(pairs_path, names_pairs, sizeof names_pairs);
    snprintf(meta, sizeof meta, "srlm dpo of %s on %s: beta %g, label smoothing %g, %d steps of %d, lr %g, seed %llu",
             names_init, names_pairs, (double)dc->beta, (double)dc->label_smoothing, t.steps, t.batch, (double)t.lr,
             (unsigned long long)t.seed);
    if (ckpt_save(out, &m, meta, hex) != 0 || tokenizer_note_write(out, tok) != 0) exit(1);
    fprintf(stderr, "[%s] %s  sha256 %s\n", label, out, hex);
    free(lb.p); free(log);
    pairs_free(pp, n);
    model_free(&m);
}

/* ==========================================================================
 * 14. Evaluation: answers on held-out prompts, graded outside the loop
 *
 * Each model answers the test prompts greedily. The answers go to an
 * external grader command (in the default setup, the synthetic world's exact
 * grader standing in for GPT-4), which writes one {"grade": g} line per
 * answer. srlm only compares grades: head-to-head win/tie/loss with a
 * two-sided sign test, mean grade, exact-correct rate, response length.
 * Correctness is the grader's verdict, read from its record: per pair, a
 * sign test on it and the grade wins split into correctness and form. Best
 * of N (after the loop) asks what a model could gain by choosing among its
 * own samples with its own judge, against choosing with the grader.
 * Paper step: "Instruction Following Ability" (head-to-head on held-out
 * prompts, GPT-4 as the judge there; Figure 3). Evaluation only.
 * ========================================================================== */

/* Answers in chat format; returns malloc'd strings and token counts. Greedy
 * when temperature is 0 (the evaluation's default); otherwise prompt i
 * samples with its own stream, hash64(hash64(seed, "answer"), i). */
static char **answer_prompts(const Model *m, const Tokenizer *tok, char *const *inst, int n, int max_new,
                             float temperature, float top_p, uint64_t seed, int *ntok) {
    int **pids = xcalloc((size_t)n, sizeof(int *)), *plen = xcalloc((size_t)n, sizeof(int));
    int **out = xcalloc((size_t)n, sizeof(int *)), *olen = xcalloc((size_t)n, sizeof(int));
    uint64_t *seeds = xcalloc((size_t)n, sizeof(uint64_t));
    char **ans = xcalloc((size_t)n, sizeof(char *));
    int stops[2] = {TOK_EOT, TOK_EOS}, i, *too_long = xcalloc((size_t)(n ? n : 1), sizeof(int));
    GenConfig g;
    Decoder d;
    g.max_new = max_new; g.temperature = temperature; g.top_p = top_p; g.stops = stops; g.n_stops = 2;
    for (i = 0; i < n; i++) {
        pids[i] = chat_prompt(tok, inst[i], &plen[i]);
        seeds[i] = hash64(hash64(seed, 0x616e73776572ull), (uint64_t)i);
    }
    decoder_init(&d, &m->cfg, 64, 2048);
    generate_fit(m, &d, n, pids, plen, seeds, &g, out, olen, too_long);
    for (i = 0; i < n; i++) {
        ans[i] = decode_ids(tok, out[i], (size_t)olen[i], NULL);
        if (ntok) ntok[i] = too_long[i] ? -plen[i] : olen[i];
        free(out[i]); free(pids[i]);
    }
    decoder_free(&d);
    free(pids); free(plen); free(out); free(olen); free(seeds); free(too_long);
    return ans;
}

/* Answers as JSONL, one {"index", "instruction", "response", "tokens"} per
 * line: the input a grader reads. A prompt too long for the context
 * (ntok[i] < 0: minus its length) has an empty response and "too_long": true;
 * it is named on stderr with its file and record. */
static void answers_jsonl(Buf *b, char *const *inst, char *const *ans, const int *ntok, int n, const char *src, int context) {
    int i;
    for (i = 0; i < n; i++) {
        buf_printf(b, "{\"index\": %d, \"instruction\": ", i);
        json_put_string(b, inst[i], strlen(inst[i]));
        buf_str(b, ", \"response\": ");
        json_put_string(b, ans[i], strlen(ans[i]));
        if (ntok[i] < 0) {
            buf_str(b, ", \"tokens\": 0, \"too_long\": true}\n");
            fprintf(stderr, "srlm: warning: %s: record %d: prompt of %d tokens does not fit the context (%d); "
                            "answered empty, marked too_long\n", src, i + 1, -ntok[i], context);
        } else {
            buf_printf(b, ", \"tokens\": %d}\n", ntok[i]);
        }
    }
}

/* Raw-text continuation (no chat format) of each text up to the end of its
 * line, greedy; returns text + continuation. Probes what M0 knows. */
static char **continue_lines(const Model *m, const Tokenizer *tok, char *const *text, int n, int max_new, int *ntok) {
    int **pids = xcalloc((size_t)n, sizeof(int *)), *plen = xcalloc((size_t)n, sizeof(int));
    int **out = xcalloc((size_t)n, sizeof(int *)), *olen = xcalloc((size_t)n, sizeof(int));
    uint64_t *seeds = xcalloc((size_t)n, sizeof(uint64_t));
    char **res = xcalloc((size_t)n, sizeof(char *));
    int stops[3] = {'\n', TOK_EOS, TOK_EOT}, i, *too_long = xcalloc((size_t)(n ? n : 1), sizeof(int));
    GenConfig g;
    Decoder d;
    g.max_new = max_new; g.temperature = 0.0f; g.top_p = 1.0f; g.stops = stops; g.n_stops = 3;
    for (i = 0; i < n; i++) {
        size_t k, len = strlen(text[i]);
        int *ids = encode_text(tok, (const uint8_t *)text[i], len, &k);
        pids[i] = xmalloc((k + 1) * sizeof(int));
        pids[i][0] = TOK_BOS;
        memcpy(pids[i] + 1, ids, k * sizeof(int));
        plen[i] = (int)k + 1;
        free(ids);
    }
    decoder_init(&d, &m->cfg, 64, 2048);
    generate_fit(m, &d, n, pids, plen, seeds, &g, out, olen, too_long);
    for (i = 0; i < n; i++) {
        char *cont = decode_ids(tok, out[i], (size_t)olen[i], NULL);
        res[i] = xmalloc(strlen(text[i]) + strlen(cont) + 1);
        strcpy(res[i], text[i]);
        strcat(res[i], cont);
        if (ntok) ntok[i] = too_long[i] ? -plen[i] : olen[i];
        free(cont); free(out[i]); free(pids[i]);
    }
    decoder_free(&d);
    free(pids); free(plen); free(out); free(olen); free(seeds); free(too_long);
    return res;
}

/* The grader is a program, never a shell command line. --grader is split
 * into words: spaces and tabs separate them, and a stretch in double quotes
 * belongs to the word, spaces and all ("C:/My Tools/grade.exe" --strict); no
 * other character is special. The input and output paths follow as two more
 * arguments, exactly as they are: a quote, a space or a ';' in --dir is just a
 * character. IN and OUT may be NULL (only check that GRADER splits). Returns
 * a NULL-terminated vector; free(argv[0]) then free(argv). */
static char **grader_argv(const char *grader, const char *in_path, const char *out_path) {
    size_t n = strlen(grader), words = 0, k = 0;
    char **argv = xcalloc(n / 2 + 4, sizeof(char *)), *buf = xmalloc(n + 1);
    const char *p = grader;
    for (;;) {
        int quoted = 0;
        while (*p == ' ' || *p == '\t') p++;
        if (!*p) break;
        argv[words++] = buf + k;
        for (; *p && (quoted || (*p != ' ' && *p != '\t')); p++) {
            if (*p == '"') quoted = !quoted;
            else buf[k++] = *p;
        }
        if (quoted) die("--grader: a \" is not closed in '%s'", grader);
        buf[k++] = 0;
    }
    if (words == 0) die("--grader is empty");
    if (in_path) { argv[words++] = (char *)in_path; argv[words++] = (char *)out_path; }
    return argv;
}

/* Run the grader: GRADER IN OUT; check that it wrote n numeric grades (the
 * readers of OUT take correctness from each record with grade_record_correct).
 * Dies on any mismatch. */
static void grade_with(const char *grader, const char *in_path, const char *out_path, int n, double *grades) {
    char **argv = grader_argv(grader, in_path, out_path);
    Jsonl j;
    int i, rc = platform_spawn_wait(argv);
    if (rc < 0) die("grader %s: cannot start: %s", argv[0], strerror(errno));
    if (rc > 256) die("grader %s: ended by signal %d (%s %s %s)", argv[0], rc - 256, grader, in_path, out_path);
    if (rc != 0) die("grader %s failed (exit status %d): %s %s %s", argv[0], rc, grader, in_path, out_path);
    free(argv[0]); free(argv);
    jsonl_load(&j, out_path);
    if (j.count != n) die("%s: %d grades for %d answers", out_path, j.count, n);
    for (i = 0; i < n; i++) {
        JsonSpan v;
        if (!json_get(j.line[i], j.line[i] + j.len[i], "grade", &v) || !json_number(v, &grades[i]))
            die("%s: record %d has no numeric \"grade\"", out_path, i + 1);
    }
    jsonl_free(&j);
}

/* Two-sided sign test: P(X <= min(w,l)) * 2 under Binomial(w+l, 1/2), capped at 1.
 * Terms by exact recurrence in double (2^-256 is still a normal double). */
static double sign_test_p(int wins, int losses) {
    int n = wins + losses, k, lo = wins < losses ? wins : losses;
    double term = 1.0, sum = 0.0, p;
    if (n == 0) return 1.0;
    for (k = 0; k < n; k++) term *= 0.5;
    for (k = 0; k <= lo; k++) { sum += term; term = term * (double)(n - k) / (double)(k + 1); }
    p = 2.0 * sum;
    return p > 1.0 ? 1.0 : p;
}

typedef struct { int win, tie, loss; double p; } HeadToHead;

static HeadToHead head_to_head(const double *a, const double *b, int n) {
    HeadToHead h = {0, 0, 0, 1.0};
    int i;
    for (i = 0; i < n; i++) { if (a[i] > b[i]) h.win++; else if (a[i] < b[i]) h.loss++; else h.tie++; }
    h.p = sign_test_p(h.win, h.loss);
    return h;
}

/* --- correctness beside form ---
 * A grade mixes two things: is the answer right, and how is it put. The
 * grader says which answers are right: its record's "criteria" list names
 * "correct" then (README, "JSONL data"). srlm never decides correctness
 * itself; it reads that name, as a whole item of the comma-separated list. */
static int comma_list_has(const char *list, const char *name) {
    size_t n = strlen(name);
    const char *p = list;
    while (*p) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == n && memcmp(p, name, n) == 0) return 1;
        if (!e) break;
        p = e + 1;
    }
    return 0;
}

/* Is the answer of one grade record correct (the grader's verdict)? */
static int grade_record_correct(const char *line, size_t len) {
    JsonSpan v;
    char *c;
    int ok;
    if (!json_get(line, line + len, "criteria", &v) || (c = json_string(v, NULL)) == NULL) return 0;
    ok = comma_list_has(c, "correct");
    free(c);
    return ok;
}

/* Per-prompt correctness of a against b: a paired sign test on "only a is
 * right" vs "only b is right", and the grade wins and losses split by what
 * moved. A correctness win: only the winner is right. A form win: both right
 * or both wrong, so the grade moved on form alone. "other": the winner is
 * wrong and the loser right (a grader whose grade can disagree with its
 * verdict). */
typedef struct {
    int only_a, only_b; double p;            /* the correctness sign test */
    int win_correct, win_form, win_other;    /* grade wins of a, split */
    int loss_correct, loss_form, loss_other; /* grade losses of a, split */
} CorrectSplit;

static CorrectSplit correctness_split(const double *ga, const int *ca, const double *gb, const int *cb, int n) {
    CorrectSplit s;
    int i;
    memset(&s, 0, sizeof s);
    for (i = 0; i < n; i++) {
        int a = ca[i] != 0, b = cb[i] != 0;
        if (a && !b) s.only_a++;
        if (b && !a) s.only_b++;
        if (ga[i] > gb[i]) { if (a && !b) s.win_correct++; else if (a == b) s.win_form++; else s.win_other++; }
        if (ga[i] < gb[i]) { if (b && !a) s.loss_correct++; else if (a == b) s.loss_form++; else s.loss_other++; }
    }
    s.p = sign_test_p(s.only_a, s.only_b);
    return s;
}

/* --- best of N: what choosing among its own samples could buy a model ---
 * Self-judge best of k: among samples 0..k-1 the one with the highest mean
 * self-judged score; the earliest on ties; sample 0 when none has a score.
 * Means are compared as stored (float), so a reader of the stored means
 * picks the same sample. The grader (oracle) best of k: any of samples
 * 0..k-1 is correct. */
static int bestof_pick(const float *mean, const int *scored, int k) {
    int j, best = -1;
    for (j = 0; j < k; j++)
        if (scored[j] && (best < 0 || mean[j] > mean[best])) best = j;
    return best < 0 ? 0 : best;
}

static int bestof_oracle(const int *correct, int k) {
    int j;
    for (j = 0; j < k; j++) if (correct[j]) return 1;
    return 0;
}

/* N samples per prompt at (T, top-p), each judged by the model itself as in
 * AIFT (section 10, texts kept). Sample j of prompt i draws from
 * hash64(hash64(seed, "bestof"), i*N + j), its judgments from
 * hash64(hash64(seed, "bojudge"), i*N + j): the same streams whichever
 * models are evaluated, and independent of batching. */
static void bestof_sample(const Model *m, const Tokenizer *tok, const JudgeTemplate *jt, char *const *inst, int n, int N,
                          int max_new, float temperature, float top_p, const JudgeConfig *jc, uint64_t seed,
                          char **resp, int *ntok, Judgment *jud) {
    int total = n * N, i, stops[2] = {TOK_EOT, TOK_EOS};
    int **pids = xcalloc((size_t)total, sizeof(int *)), *plen = xcalloc((size_t)total, sizeof(int));
    int **out = xcalloc((size_t)total, sizeof(int *)), *olen = xcalloc((size_t)total, sizeof(int));
    uint64_t *seeds = xcalloc((size_t)total, sizeof(uint64_t));
    char **ins = xcalloc((size_t)total, sizeof(char *));
    GenConfig g;
    Decoder d;
    g.max_new = max_new; g.temperature = temperature; g.top_p = top_p; g.stops = stops; g.n_stops = 2;
    for (i = 0; i < total; i++) {
        if (i % N == 0) pids[i] = chat_prompt(tok, inst[i / N], &plen[i]);
        else { pids[i] = pids[i - 1]; plen[i] = plen[i - 1]; }
        seeds[i] = hash64(hash64(seed, 0x626573746f66ull), (uint64_t)i);
        ins[i] = inst[i / N];
    }
    decoder_init(&d, &m->cfg, 64, 2048);
    generate(m, &d, total, pids, plen, seeds, &g, out, olen);
    for (i = 0; i < total; i++) {
        resp[i] = decode_ids(tok, out[i], (size_t)olen[i], NULL);
        ntok[i] = olen[i];
        free(out[i]);
        if (i % N == 0) free(pids[i]);
        seeds[i] = hash64(hash64(seed, 0x626f6a75646765ull), (uint64_t)i);
    }
    judge_many(m, &d, tok, jt, total, ins, resp, seeds, jc, 1, jud);
    decoder_free(&d);
    free(pids); free(plen); free(out); free(olen); free(seeds); free(ins);
}

/* ==========================================================================
 * 15. Charts for the report: SVG drawn here (plain SVG 1.1, no scripts, no
 * fonts beyond the default): head-to-head bars and line plots. The report
 * itself (run_report, end of section 16) reads the run directory's files back
 * and writes its markdown tables beside the paper's numbers.
 * Paper step: none; the paper's Figure 3 and Table 4 drawn for this run.
 * ========================================================================== */

static void svg_begin(Buf *b, int w, int h, const char *title) {
    buf_printf(b, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
                  "font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n"
                  "<text x=\"%d\" y=\"20\" text-anchor=\"middle\" font-size=\"14\" font-weight=\"bold\">%s</text>\n",
               w, h, w, h, w / 2, title);
}

/* Horizontal stacked bars of win/tie/loss percentages, one per comparison. */
static void svg_winrate(Buf *b, int n, const char *const *labels, const HeadToHead *h) {
    int i, W = 680, rowh = 28, top = 40, left = 180, barw = 470;
    svg_begin(b, W, top + n * rowh + 40, "Head-to-head on held-out prompts (win / tie / loss)");
    for (i = 0; i < n; i++) {
        int tot = h[i].win + h[i].tie + h[i].loss, y = top + i * rowh;
        double fw = tot ? (double)h[i].win / tot : 0, ft = tot ? (double)h[i].tie / tot : 0;
        int ww = (int)(fw * barw + 0.5), wt = (int)(ft * barw + 0.5);
        buf_printf(b, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">%s</text>\n", left - 8, y + 17, labels[i]);
        buf_printf(b, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"20\" fill=\"#2e7d32\"/>\n", left, y + 3, ww);
        buf_printf(b, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"20\" fill=\"#bdbdbd\"/>\n", left + ww, y + 3, wt);
        buf_printf(b, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"20\" fill=\"#c62828\"/>\n", left + ww + wt, y + 3, barw - ww - wt);
        buf_printf(b, "<text x=\"%d\" y=\"%d\" fill=\"white\">%.0f%%</text>\n", left + 4, y + 17, 100 * fw);
    }
    buf_printf(b, "<text x=\"%d\" y=\"%d\">green: left model wins, grey: tie, red: left model loses</text>\n</svg>\n",
               left, top + n * rowh + 20);
}

/* Line chart of several series over x = 0..n-1 (values in [lo, hi]). */
static void svg_lines(Buf *b, const char *title, int n, int n_series, const char *const *names, const double *const *ys,
                      double lo, double hi, const char *const *xlabels) {
    static const char *colors[] = {"#1565c0", "#c62828", "#2e7d32", "#6a1b9a", "#ef6c00"};
    int W = 640, H = 360, L = 60, R = 20, T = 40, Bm = 60, i, s;
    svg_begin(b, W, H, title);
    buf_printf(b, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" stroke=\"#999\"/>\n", L, T, W - L - R, H - T - Bm);
    for (i = 0; i <= 4; i++) {
        double v = lo + (hi - lo) * i / 4.0;
        int y = T + (int)((H - T - Bm) * (1.0 - i / 4.0));
        buf_printf(b, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">%.3g</text>\n", L - 4, y + 4, v);
    }
    for (s = 0; s < n_series; s++) {
        buf_printf(b, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\" points=\"", colors[s % 5]);
        for (i = 0; i < n; i++) {
            double fx = n > 1 ? (double)i / (n - 1) : 0.5, fy = (ys[s][i] - lo) / (hi - lo);
            if (fy < 0) fy = 0;
            if (fy > 1) fy = 1;
            buf_printf(b, "%d,%d ", L + (int)(fx * (W - L - R)), T + (int)((1.0 - fy) * (H - T - Bm)));
        }
        buf_str(b, "\"/>\n");
        buf_printf(b, "<text x=\"%d\" y=\"%d\" fill=\"%s\">%s</text>\n", L + 10 + 150 * s, H - 12, colors[s % 5], names[s]);
    }
    if (xlabels)
        for (i = 0; i < n; i++)
            buf_printf(b, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">%s</text>\n",
                       L + (int)((n > 1 ? (double)i / (n - 1) : 0.5) * (W - L - R)), H - Bm + 16, xlabels[i]);
    buf_str(b, "</svg>\n");
}

/* ==========================================================================
 * 16. The loop: M0 -> SFT baseline, M1 -> AIFT(M1) -> M2 -> AIFT(M2) -> M3,
 * then evaluation and the report (srlm run).
 *
 * Every stage writes its output atomically into the run directory and is
 * skipped when that output exists, so an interrupted run, rerun, redoes only
 * the unfinished stage — from its start, with the same seeds — and reaches
 * the same bytes. run.cfg records the settings and input digests; a run
 * directory made with other settings is refused rather than mixed.
 * Paper step: "Overall Self-Alignment Algorithm" (iterative training,
 * M1 -> M2 -> M3), with the positive-only ablation and the evaluation.
 * ========================================================================== */

typedef struct {
    const char *dir, *m0, *tokenizer, *template_path, *ift, *eft, *test, *ranked, *grader, *preset;
    uint64_t seed;
    int sft_epochs, sft_batch; float sft_lr, sft_lr_min, dropout;
    int dpo_epochs, dpo_batch; float dpo_lr, dpo_lr_min, beta, label_smoothing, nll_weight;
    AiftConfig aift;
    int prompt_model_current, ablation, answer_max_new, eval_limit, rm_limit;
    int bestof_n; const char *bestof_models; /* the best-of-N stage (evaluation only): N, and which models */
} RunConfig;

static void run_defaults(RunConfig *rc, const char *preset) {
    memset(rc, 0, sizeof *rc);
    rc->preset = preset;
    rc->seed = 1;
    rc->sft_epochs = 2; rc->sft_batch = 16; rc->sft_lr = 1e-3f; rc->sft_lr_min = 1e-4f; rc->dropout = 0.1f;
    rc->dpo_epochs = 2; rc->dpo_batch = 16; rc->dpo_lr = 2e-4f; rc->dpo_lr_min = 2e-5f; rc->beta = 0.1f;
    rc->label_smoothing = 0.0f;
    rc->aift = aift_config_default();
    rc->aift.n_prompts = 512;
    rc->ablation = 1; rc->answer_max_new = 64; rc->eval_limit = 0;
    rc->bestof_n = 8; rc->bestof_models = "m1";
    if (strcmp(preset, "tiny") == 0) {
        rc->sft_epochs = 1; rc->aift.n_prompts = 16; rc->dpo_epochs = 1; rc->dpo_batch = 4; rc->sft_batch = 8;
        rc->eval_limit = 16; rc->rm_limit = 12; rc->answer_max_new = 32; rc->aift.max_response_tokens = 32; rc->sft_epochs = 3;
        rc->aift.max_prompt_tokens = 24;
    } else if (strcmp(preset, "paper") == 0) {
        rc->aift.n_prompts = 4000;
    } else if (strcmp(preset, "default") != 0) {
        die("run: unknown preset '%s' (tiny, default, paper)", preset);
    }
}

static char *run_path(const RunConfig *rc, const char *name) {
    size_t n = strlen(rc->dir) + strlen(name) + 2;
    char *p = xmalloc(n);
    snprintf(p, n, "%s/%s", rc->dir, name);
    return p;
}

/* One srlm run per directory: two would write the same stages and temp
 * files and race. DIR/run.lock is held locked for the process's life
 * (platform_lock); the system releases it however the process ends, so a
 * killed run never leaves a stale lock behind. Where the file system cannot
 * lock, say so and go on unlocked. */
static void run_dir_lock(const RunConfig *rc) {
    char *path = run_path(rc, "run.lock");
    int held = platform_lock(path);
    if (held == 1) die("%s: another srlm run is working in this directory; wait for it to end or use another --dir", rc->dir);
    if (held == -1) die("%s: cannot open the run lock: %s", path, strerror(errno));
    if (held == -2) fprintf(stderr, "srlm: warning: %s: cannot lock (%s); make sure no other run uses %s\n", path, strerror(errno), rc->dir);
    free(path);
}

static int path_exists(const char *path) {
    FILE *f = fopen(path, "rb");
    if (f) fclose(f);
    return f != NULL;
}

static void file_sha_hex(const char *path, char hex[65]) {
    uint8_t *data, dg[32];
    size_t n;
    if (read_file(path, &data, &n) != 0) exit(1);
    sha256(data, n, dg);
    sha256_hex(dg, hex);
    free(data);
}

/* DIR/outputs.sha256 records the digest of every stage output when it is
 * written ("HEX  NAME" lines, sha256sum's format: `sha256sum -c` checks
 * them). A stage is skipped only when each of its outputs exists and matches
 * its record; an output without a record (an older run directory, or a kill
 * between the write and the record) or with another digest (damaged,
 * truncated, replaced) is said so and its stage is redone, which gives the
 * same bytes again (every stage is seeded). */
static char *run_path(const RunConfig *rc, const char *name);

static const char *base_name(const char *path) {
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

/* The recorded digest of NAME into hex; 0 if none. */
static int run_recorded(const RunConfig *rc, const char *name, char hex[65]) {
    char *rp = run_path(rc, "outputs.sha256");
    uint8_t *data;
    size_t n, i = 0, nl = strlen(name);
    int found = 0;
    FILE *f = fopen(rp, "rb");
    if (!f) { free(rp); return 0; }
    fclose(f);
    if (read_file(rp, &data, &n) != 0) exit(1);
    while (i < n) {
        size_t e = i;
        while (e < n && data[e] != '\n') e++;
        if (e - i == 66 + nl && data[i + 64] == ' ' && data[i + 65] == ' ' && memcmp(data + i + 66, name, nl) == 0) {
            memcpy(hex, data + i, 64); hex[64] = 0;
            found = 1;
        }
        i = e + 1;
    }
    free(data); free(rp);
    return found;
}

static void run_record(const RunConfig *rc, const char *path) {
    char *rp = run_path(rc, "outputs.sha256"), hex[65];
    const char *name = base_name(path);
    size_t nl = strlen(name), i = 0, n = 0;
    uint8_t *data = NULL;
    Buf b = {0, 0, 0};
    FILE *f = fopen(rp, "rb");
    file_sha_hex(path, hex);
    if (f) { fclose(f); if (read_file(rp, &data, &n) != 0) exit(1); }
    while (i < n) { /* every other line as it was, in order; this name's line last */
        size_t e = i;
        while (e < n && data[e] != '\n') e++;
        if (!(e - i == 66 + nl && memcmp(data + i + 66, name, nl) == 0)) { buf_put(&b, data + i, e - i); buf_put(&b, "\n", 1); }
        i = e + 1;
    }
    buf_printf(&b, "%s  %s\n", hex, name);
    if (write_file_atomic(rp, b.p, b.n) != 0) exit(1);
    free(b.p); free(data); free(rp);
    if (platform_peak_rss_mb() >= 0.0)  /* the process's high-water mark: the stage that raises it is the one */
        fprintf(stderr, "[run] %s written; peak RSS so far %.0f MB\n", name, platform_peak_rss_mb());
}

/* Does the stage output at path exist and match its record? Says why not. */
static int run_verified(const RunConfig *rc, const char *path, const char *label) {
    char want[65], got[65];
    if (!path_exists(path)) return 0;
    if (!run_recorded(rc, base_name(path), want)) {
        fprintf(stderr, "[%s] %s has no recorded digest (an older run directory, or a write cut short): redoing it\n", label, path);
        return 0;
    }
    file_sha_hex(path, got);
    if (strcmp(got, want) != 0) {
        fprintf(stderr, "[%s] %s does not match its recorded digest (damaged or replaced): redoing it\n", label, path);
        return 0;
    }
    return 1;
}

/* The settings text; two runs with equal text compute the same bytes. */
static void run_fingerprint(const RunConfig *rc, Buf *b) {
    const char *inputs[7], *names[7] = {"m0", "tokenizer", "template", "ift", "eft", "test", "ranked"};
    int i;
    inputs[0] = rc->m0; inputs[1] = rc->tokenizer; inputs[2] = rc->template_path; inputs[3] = rc->ift;
    inputs[4] = rc->eft; inputs[5] = rc->test; inputs[6] = rc->ranked;
    buf_printf(b, "srlm run settings (format 1)\npreset %s\nseed %llu\n", rc->preset, (unsigned long long)rc->seed);
    buf_printf(b, "sft epochs=%d batch=%d lr=%a lr_min=%a dropout=%a\n", rc->sft_epochs, rc->sft_batch,
               (double)rc->sft_lr, (double)rc->sft_lr_min, (double)rc->dropout);
    buf_printf(b, "dpo epochs=%d batch=%d lr=%a lr_min=%a beta=%a label_smoothing=%a", rc->dpo_epochs, rc->dpo_batch,
               (double)rc->dpo_lr, (double)rc->dpo_lr_min, (double)rc->beta, (double)rc->label_smoothing);
    if (rc->nll_weight > 0.0f) buf_printf(b, " nll_weight=%a", (double)rc->nll_weight); /* absent when 0: older run dirs stay valid */
    buf_printf(b, "\n");
    buf_printf(b, "aift prompts=%d candidates=%d resp_T=%a resp_p=%a prompt_T=%a prompt_p=%a max_prompt=%d max_resp=%d "
                  "bytes=%d..%d sim=%a judge_samples=%d judge_T=%a judge_p=%a judge_max=%d prompt_model=%s\n",
               rc->aift.n_prompts, rc->aift.n_candidates, (double)rc->aift.resp_temperature, (double)rc->aift.resp_top_p,
               (double)rc->aift.prompt_temperature, (double)rc->aift.prompt_top_p, rc->aift.max_prompt_tokens,
               rc->aift.max_response_tokens, rc->aift.min_prompt_bytes, rc->aift.max_prompt_bytes,
               (double)rc->aift.max_similarity, rc->aift.judge.samples, (double)rc->aift.judge.temperature,
               (double)rc->aift.judge.top_p, rc->aift.judge.max_new, rc->prompt_model_current ? "current" : "m0");
    if (aift_filter_on(&rc->aift))  /* absent when off: older run dirs stay valid */
        buf_printf(b, "aift-filter min_margin=%a min_chosen=%a\n", (double)rc->aift.min_margin, (double)rc->aift.min_chosen);
    buf_printf(b, "eval answer_max_new=%d limit=%d rm_limit=%d ablation=%d grader=%s\n", rc->answer_max_new, rc->eval_limit,
               rc->rm_limit, rc->ablation, rc->grader);
    if (rc->bestof_n != 8) buf_printf(b, "bestof n=%d\n", rc->bestof_n); /* absent at the default: older run dirs stay valid */
    for (i = 0; i < 7; i++) {
        char hex[65];
        file_sha_hex(inputs[i], hex);
        buf_printf(b, "input %s sha256 %s\n", names[i], hex);
    }
}

/* run.cfg is the settings text, then one evaluation-only line naming the
 * models the best-of stage evaluates ("bestof-models m1"), as the last
 * report shows them. The settings must match to resume; the last line may
 * change (make run BESTOF=all adds models to a finished run, and nothing the
 * loop trains depends on it): run.cfg is then rewritten, so it always names
 * what report.md and eval.jsonl hold. A run.cfg from before this line
 * resumes the same way. */
static int run_cfg_check(const RunConfig *rc, const char *cfg_path, const Buf *settings) {
    static const char key[] = "bestof-models ";
    Buf want = {0, 0, 0};
    uint8_t *old = NULL;
    size_t n = 0, body;
    int rc_write = 0;
    buf_put(&want, settings->p, settings->n);
    buf_printf(&want, "%s%s\n", key, rc->bestof_n > 0 ? rc->bestof_models : "none");
    if (!path_exists(cfg_path)) {
        rc_write = write_file_atomic(cfg_path, want.p, want.n);
        free(want.p);
        return rc_write;
    }
    if (read_file(cfg_path, &old, &n) != 0) { free(want.p); return 1; }
    body = n;  /* the settings part: everything before a last "bestof-models" line */
    if (n > 0 && old[n - 1] == '\n') {
        size_t start = n - 1;
        while (start > 0 && old[start - 1] != '\n') start--;
        if (n - start > sizeof key - 1 && memcmp(old + start, key, sizeof key - 1) == 0) body = start;
    }
    if (body != settings->n || memcmp(old, settings->p, body) != 0)
        die("%s: this run directory was made with other settings or inputs; use a new --dir (or delete it)", cfg_path);
    fprintf(stderr, "[run] resuming in %s\n", rc->dir);
    if (n != want.n || memcmp(old, want.p, n) != 0) {
        fprintf(stderr, "[run] best-of models now %s (evaluation only): run.cfg updated\n",
                rc->bestof_n > 0 ? rc->bestof_models : "none");
        rc_write = write_file_atomic(cfg_path, want.p, want.n);
    }
    free(old); free(want.p);
    return rc_write;
}

/* SFT stage: out = SFT(init) on the given example files. */
static void stage_sft(const RunConfig *rc, const Tokenizer *tok, const char *init, const char *data, const char *out,
                      uint64_t seed, const char *label) {
    TrainConfig t = train_config_default();
    if (run_verified(rc, out, label)) { fprintf(stderr, "[%s] reusing %s\n", label, out); return; }
    t.batch = rc->sft_batch; t.lr = rc->sft_lr; t.lr_min = rc->sft_lr_min; t.dropout = rc->dropout;
    t.weight_decay = 0.0f; t.seed = seed; t.log_every = 50; t.steps = -1; t.warmup = -1;
    sft_checkpoint(init, tok, data, t, rc->sft_epochs, out, label);
    run_record(rc, out);
}

/* Seed instructions (for few-shot) and held-out prompts (contamination check). */
static char **load_field(const char *path, const char *field, int *n) {
    Jsonl j;
    char **out;
    int i;
    jsonl_load(&j, path);
    out = xcalloc((size_t)(j.count ? j.count : 1), sizeof(char *));
    for (i = 0; i < j.count; i++) out[i] = jsonl_str(&j, i, field);
    *n = j.count;
    jsonl_free(&j);
    return out;
}

static void free_strings(char **s, int n) { int i; for (i = 0; i < n; i++) free(s[i]); free(s); }

static void aift_stats_json(Buf *b, const AiftStats *s) {
    buf_printf(b, "{\"prompts_generated\": %d, \"prompts_kept\": %d, \"dropped_length\": %d, \"dropped_special_or_utf8\": %d, "
                  "\"dropped_similar\": %d, \"dropped_heldout\": %d, \"surplus\": %d, \"candidates\": %d, \"candidates_bad_utf8\": %d, "
                  "\"judgments\": %d, \"parse_failures\": %d, \"unscored\": %d, \"identical\": %d, \"pairs\": %d, \"ties\": %d",
               s->prompts.generated, s->prompts.kept, s->prompts.too_short_or_long, s->prompts.special_or_bad_utf8,
               s->prompts.similar, s->prompts.heldout, s->prompts.surplus, s->candidates, s->bad_utf8, s->judgments, s->parse_failures,
               s->unscored, s->identical, s->pairs, s->ties);
    if (s->filter_on) buf_printf(b, ", \"low_confidence\": %d", s->low_confidence); /* absent when off: older files keep their bytes */
    buf_str(b, "}\n");
}

static void stage_aift(const RunConfig *rc, const Tokenizer *tok, const JudgeTemplate *jt, const char *mt_path,
                       const char *out, const char *stats_path, const char *cands_path, uint64_t seed, const char *label) {
    Model mt, pm;
    AiftConfig cfg = rc->aift;
    char **seed_inst, **held;
    int n_seed, n_held, n_rank, i;
    PromptSet heldout = {0};
    AiftStats st;
    Buf b = {0, 0, 0}, sb = {0, 0, 0}, cb = {0, 0, 0};
    if (run_verified(rc, out, label) && run_verified(rc, stats_path, label) && run_verified(rc, cands_path, label)) {
        fprintf(stderr, "[%s] reusing %s\n", label, out);
        return;
    }
    fprintf(stderr, "[%s] building AIFT(%s): %d prompts x %d candidates, self-judged\n", label, mt_path,
            cfg.n_prompts, cfg.n_candidates);
    ckpt_load(&mt, mt_path, NULL);
    ckpt_load(&pm, rc->prompt_model_current ? mt_path : rc->m0, NULL);
    seed_inst = load_field(rc->ift, "instruction", &n_seed);
    held = load_field(rc->test, "instruction", &n_held);
    for (i = 0; i < n_held; i++) pset_add(&heldout, held[i]);
    free_strings(held, n_held);
    held = load_field(rc->ranked, "instruction", &n_rank);
    for (i = 0; i < n_rank; i++) pset_add(&heldout, held[i]);
    free_strings(held, n_rank);
    cfg.seed = seed;
    aift_build(&mt, &pm, tok, jt, seed_inst, n_seed, &heldout, &cfg, &b, &cb, &st);
    aift_stats_json(&sb, &st);
    /* the pairs file goes last: its presence marks the stage done */
    if (write_file_atomic(cands_path, cb.p ? cb.p : (uint8_t *)"", cb.n) != 0) exit(1);
    run_record(rc, cands_path);
    if (write_file_atomic(stats_path, sb.p, sb.n) != 0) exit(1);
    run_record(rc, stats_path);
    if (write_file_atomic(out, b.p ? b.p : (uint8_t *)"", b.n) != 0) exit(1);
    run_record(rc, out);
    fprintf(stderr, "[%s] %d pairs from %d prompts (%d ties, %d unscored, %d/%d judge parse failures)\n", label,
            st.pairs, st.prompts.kept, st.ties, st.unscored, st.parse_failures, st.judgments);
    free(b.p); free(sb.p); free(cb.p);
    free_strings(seed_inst, n_seed);
    pset_free(&heldout);
    model_free(&mt); model_free(&pm);
}

static void stage_dpo(const RunConfig *rc, const Tokenizer *tok, const char *init, const char *pairs_path,
                      const char *out, const char *log_path, uint64_t seed, const char *label) {
    TrainConfig t = train_config_default();
    DpoConfig dc;
    if (run_verified(rc, out, label) && run_verified(rc, log_path, label)) { fprintf(stderr, "[%s] reusing %s\n", label, out); return; }
    t.batch = rc->dpo_batch; t.lr = rc->dpo_lr; t.lr_min = rc->dpo_lr_min; t.dropout = rc->dropout;
    t.weight_decay = 0.0f; t.seed = seed; t.steps = -1; t.warmup = -1; t.log_every = 10;
    dc.beta = rc->beta; dc.label_smoothing = rc->label_smoothing; dc.nll_weight = rc->nll_weight;
    dpo_checkpoint(init, tok, pairs_path, t, rc->dpo_epochs, &dc, out, log_path, label);
    run_record(rc, log_path);
    run_record(rc, out);
}

/* One {"instruction", "response"} line: the record SFT and the grader read. */
static void put_instruction_response(Buf *b, const char *ins, const char *resp) {
    buf_str(b, "{\"instruction\": "); json_put_string(b, ins, strlen(ins));
    buf_str(b, ", \"response\": "); json_put_string(b, resp, strlen(resp));
    buf_str(b, "}\n");
}

/* Positive-only ablation data: (prompt, chosen) as instruction/response records. */
static void stage_positive_data(const RunConfig *rc, const char *pairs_path, const char *out) {
    Jsonl j;
    Buf b = {0, 0, 0};
    int i;
    if (run_verified(rc, out, "7/9 M2 positive-only")) return;
    jsonl_load(&j, pairs_path);
    for (i = 0; i < j.count; i++) {
        char *p = jsonl_str(&j, i, "prompt"), *c = jsonl_str(&j, i, "chosen");
        put_instruction_response(&b, p, c);
        free(p); free(c);
    }
    if (write_file_atomic(out, b.p ? b.p : (uint8_t *)"", b.n) != 0) exit(1);
    run_record(rc, out);
    free(b.p);
    jsonl_free(&j);
}

/* Answers of one model on the test prompts, graded by the external grader. */
static void stage_answers(const RunConfig *rc, const Tokenizer *tok, const char *model_path, const char *name) {
    char fn[64], *ans_path, *grade_path;
    Model m;
    char **inst, **ans;
    int n, n_all, *ntok;
    Buf b = {0, 0, 0};
    snprintf(fn, sizeof fn, "answers_%s.jsonl", name); ans_path = run_path(rc, fn);
    snprintf(fn, sizeof fn, "grades_%s.jsonl", name); grade_path = run_path(rc, fn);
    if (!run_verified(rc, ans_path, "eval")) {
        fprintf(stderr, "[eval] %s answers the test prompts\n", name);
        ckpt_load(&m, model_path, NULL);
        inst = load_field(rc->test, "instruction", &n_all);
        n = rc->eval_limit > 0 && n_all > rc->eval_limit ? rc->eval_limit : n_all;
        ntok = xcalloc((size_t)n, sizeof(int));
        ans = answer_prompts(&m, tok, inst, n, rc->answer_max_new, 0.0f, 1.0f, 0, ntok);
        answers_jsonl(&b, inst, ans, ntok, n, rc->test, m.cfg.max_seq_len);
        if (write_file_atomic(ans_path, b.p, b.n) != 0) exit(1);
        run_record(rc, ans_path);
        free(b.p); free(ntok);
        free_strings(ans, n);
        free_strings(inst, n_all);
        model_free(&m);
        remove(grade_path); /* grades always follow their answers */
    }
    if (!run_verified(rc, grade_path, "eval")) {
        Jsonl j;
        double *g;
        jsonl_load(&j, ans_path);
        g = xcalloc((size_t)j.count + 1, sizeof(double));
        grade_with(rc->grader, ans_path, grade_path, j.count, g);
        run_record(rc, grade_path);
        free(g);
        jsonl_free(&j);
    }
    free(ans_path); free(grade_path);
}

/* Evaluation only, after the loop: best of N on the test prompts. The model
 * samples N answers per prompt (the loop's candidate T and top-p) and judges
 * each 3 times with its own judge, as AIFT does (bestof_X.jsonl, one line per
 * sample, prompt-major); the grader grades every sample
 * (bestof_grades_X.jsonl). It measures how far choosing by its own judgments
 * could take a model, against choosing by the grader; nothing here flows
 * back into training. */
static void stage_bestof(const RunConfig *rc, const Tokenizer *tok, const JudgeTemplate *jt, const char *model_path,
                         const char *name, uint64_t seed) {
    char fn[64], *s_path, *g_path;
    int N = rc->bestof_n;
    snprintf(fn, sizeof fn, "bestof_%s.jsonl", name); s_path = run_path(rc, fn);
    snprintf(fn, sizeof fn, "bestof_grades_%s.jsonl", name); g_path = run_path(rc, fn);
    if (!run_verified(rc, s_path, "eval")) {
        Model m;
        char **inst, **resp;
        int n, n_all, *ntok, i, k, S = rc->aift.judge.samples;
        Judgment *jud;
        Buf b = {0, 0, 0};
        double t0 = now_seconds();
        fprintf(stderr, "[eval] %s: best of %d on the test prompts, self-judged\n", name, N);
        ckpt_load(&m, model_path, NULL);
        inst = load_field(rc->test, "instruction", &n_all);
        n = rc->eval_limit > 0 && n_all > rc->eval_limit ? rc->eval_limit : n_all;
        resp = xcalloc((size_t)(n * N + 1), sizeof(char *)); ntok = xcalloc((size_t)(n * N + 1), sizeof(int));
        jud = xcalloc((size_t)(n * N + 1), sizeof(Judgment));
        bestof_sample(&m, tok, jt, inst, n, N, rc->answer_max_new, rc->aift.resp_temperature, rc->aift.resp_top_p,
                      &rc->aift.judge, seed, resp, ntok, jud);
        for (i = 0; i < n * N; i++) {
            const Judgment *jd = &jud[i];
            int nj = jd->n_valid + jd->n_failed;
            buf_printf(&b, "{\"index\": %d, \"sample\": %d, \"instruction\": ", i / N, i % N);
            json_put_string(&b, inst[i / N], strlen(inst[i / N]));
            buf_str(&b, ", \"response\": ");
            json_put_string(&b, resp[i], strlen(resp[i]));
            buf_printf(&b, ", \"tokens\": %d, \"judgments\": [", ntok[i]);
            for (k = 0; k < nj; k++) {
                if (k) buf_str(&b, ", ");
                if (jd->sample_flag[k] & 2) json_put_string(&b, jd->judgments[k], strlen(jd->judgments[k]));
                else buf_str(&b, "null"); /* JSON could not carry it exactly */
            }
            buf_str(&b, "], \"scores\": [");
            for (k = 0; k < nj; k++) {
                if (k) buf_str(&b, ", ");
                if (jd->sample_flag[k] & 1) buf_printf(&b, "%.9g", (double)jd->sample_score[k]);
                else buf_str(&b, "null");
            }
            if (jd->has_score) buf_printf(&b, "], \"mean\": %.9g}\n", (double)jd->score);
            else buf_str(&b, "], \"mean\": null}\n");
        }
        if (write_file_atomic(s_path, b.p ? b.p : (uint8_t *)"", b.n) != 0) exit(1);
        run_record(rc, s_path);
        fprintf(stderr, "[eval] %s: %d samples and %d self-judgments in %.0f s\n", name, n * N, n * N * S, now_seconds() - t0);
        for (i = 0; i < n * N; i++) { free(resp[i]); judgment_free(&jud[i], S); }
        free(resp); free(ntok); free(jud); free(b.p);
        free_strings(inst, n_all);
        model_free(&m);
        remove(g_path); /* grades always follow their samples */
    }
    if (!run_verified(rc, g_path, "eval")) {
        Jsonl j;
        double *g;
        jsonl_load(&j, s_path);
        g = xcalloc((size_t)j.count + 1, sizeof(double));
        if (j.count > 0) grade_with(rc->grader, s_path, g_path, j.count, g);
        else if (write_file_atomic(g_path, (const uint8_t *)"", 0) != 0) exit(1);
        run_record(rc, g_path);
        free(g);
        jsonl_free(&j);
    }
    free(s_path); free(g_path);
}

/* Evaluation only, after the loop: the grader grades the chosen and the
 * rejected response of every AIFT pair (audit_aiftN.jsonl, chosen then
 * rejected per pair). This measures the paper's premise directly, whether
 * the model's own judgments prefer the better of its own responses; nothing
 * here flows back into training. */
static void stage_pair_audit(const RunConfig *rc, const char *pairs_path, int iter) {
    char fn[64], *in_path, *out_path;
    snprintf(fn, sizeof fn, "audit_aift%d.in.jsonl", iter); in_path = run_path(rc, fn);
    snprintf(fn, sizeof fn, "audit_aift%d.jsonl", iter); out_path = run_path(rc, fn);
    if (!run_verified(rc, out_path, "eval")) {
        Jsonl j;
        Buf b = {0, 0, 0};
        int i;
        double *g;
        fprintf(stderr, "[eval] the grader audits the AIFT(M%d) pairs\n", iter);
        jsonl_load(&j, pairs_path);
        for (i = 0; i < j.count; i++) {
            char *pr = jsonl_str(&j, i, "prompt"), *ch = jsonl_str(&j, i, "chosen"), *rj = jsonl_str(&j, i, "rejected");
            put_instruction_response(&b, pr, ch);
            put_instruction_response(&b, pr, rj);
            free(pr); free(ch); free(rj);
        }
        if (write_file_atomic(in_path, b.p ? b.p : (uint8_t *)"", b.n) != 0) exit(1);
        g = xcalloc((size_t)(2 * j.count + 1), sizeof(double));
        if (j.count > 0) grade_with(rc->grader, in_path, out_path, 2 * j.count, g);
        else if (write_file_atomic(out_path, (const uint8_t *)"", 0) != 0) exit(1);
        run_record(rc, out_path);
        free(g); free(b.p);
        jsonl_free(&j);
    }
    free(in_path); free(out_path);
}

/* Counts from an audit file: pairs whose chosen response the grader grades
 * higher / lower / equal to the rejected one. */
static void pair_audit_counts(const RunConfig *rc, int iter, int *better, int *worse, int *equal) {
    char fn[64], *path;
    Jsonl j;
    int i;
    *better = *worse = *equal = 0;
    snprintf(fn, sizeof fn, "audit_aift%d.jsonl", iter); path = run_path(rc, fn);
    jsonl_load(&j, path);
    for (i = 0; i + 1 < j.count; i += 2) {
        JsonSpan v;
        double a = 0, b = 0;
        if (!json_get(j.line[i], j.line[i] + j.len[i], "grade", &v) || !json_number(v, &a) ||
            !json_get(j.line[i + 1], j.line[i + 1] + j.len[i + 1], "grade", &v) || !json_number(v, &b))
            die("%s: pair %d has no numeric \"grade\"", path, i / 2 + 1);
        if (a > b) (*better)++;
        else if (a < b) (*worse)++;
        else (*equal)++;
    }
    jsonl_free(&j);
    free(path);
}

static void stage_rm(const RunConfig *rc, const Tokenizer *tok, const JudgeTemplate *jt, const char *model_path,
                     const char *name, uint64_t seed) {
    char fn[64], *path;
    Model m;
    RmResult r;
    Buf b = {0, 0, 0};
    snprintf(fn, sizeof fn, "rm_%s.json", name); path = run_path(rc, fn);
    if (!run_verified(rc, path, "eval")) {
        fprintf(stderr, "[eval] %s judges the ranked sets\n", name);
        ckpt_load(&m, model_path, NULL);
        r = eval_reward_model(&m, tok, jt, rc->ranked, &rc->aift.judge, seed, rc->rm_limit);
        buf_printf(&b, "{\"pairwise_accuracy\": %.6f, \"best5\": %.6f, \"exact_match\": %.6f, \"spearman\": %.6f, "
                        "\"kendall\": %.6f, \"sets\": %d, \"pairs\": %d, \"judgments\": %d, \"parse_failures\": %d, "
                        "\"unscored\": %d}\n", r.m.pair_acc, r.m.best5, r.m.exact, r.m.spearman, r.m.kendall, r.m.sets,
                   r.m.pairs, r.judgments, r.failures, r.unscored);
        if (write_file_atomic(path, b.p, b.n) != 0) exit(1);
        run_record(rc, path);
        free(b.p);
        model_free(&m);
    }
    free(path);
}

/* --- reading results back for the report --- */
static double json_file_number(const char *path, const char *key) {
    uint8_t *data;
    size_t n;
    JsonSpan v;
    double x = 0.0;
    if (read_file(path, &data, &n) != 0) exit(1);
    if (!json_is_object((char *)data, (char *)data + n)) die("%s: not one well-formed JSON object (damaged?)", path);
    if (!json_get((char *)data, (char *)data + n, key, &v) || !json_number(v, &x)) die("%s: no number \"%s\"", path, key);
    free(data);
    return x;
}

typedef struct {
    int n, n_correct;
    double *grade; int *correct; /* per prompt: the grader's grade and its verdict (grade_record_correct) */
    char **category;             /* per prompt: the grader's optional "category" (NULL when absent) */
    double mean_grade, correct_rate, mean_bytes, mean_tokens;
} ModelEval;

static ModelEval load_eval(const RunConfig *rc, const char *name) {
    ModelEval e;
    Jsonl a, g;
    char fn[64], *ap, *gp;
    int i;
    memset(&e, 0, sizeof e);
    snprintf(fn, sizeof fn, "answers_%s.jsonl", name); ap = run_path(rc, fn);
    snprintf(fn, sizeof fn, "grades_%s.jsonl", name); gp = run_path(rc, fn);
    jsonl_load(&a, ap); jsonl_load(&g, gp);
    if (a.count != g.count) die("%s and %s disagree in length", ap, gp);
    e.n = a.count;
    e.grade = xcalloc((size_t)e.n + 1, sizeof(double)); e.correct = xcalloc((size_t)e.n + 1, sizeof(int));
    e.category = xcalloc((size_t)e.n + 1, sizeof(char *));
    for (i = 0; i < e.n; i++) {
        JsonSpan v;
        double tk = 0;
        char *r = jsonl_str(&a, i, "response");
        e.mean_bytes += (double)strlen(r) / e.n;
        free(r);
        if (json_get(a.line[i], a.line[i] + a.len[i], "tokens", &v) && json_number(v, &tk)) e.mean_tokens += tk / e.n;
        if (!json_get(g.line[i], g.line[i] + g.len[i], "grade", &v) || !json_number(v, &e.grade[i])) die("%s: bad grade", gp);
        e.mean_grade += e.grade[i] / e.n;
        e.correct[i] = grade_record_correct(g.line[i], g.len[i]);
        e.n_correct += e.correct[i];
        if (json_get(g.line[i], g.line[i] + g.len[i], "category", &v) && !(v.end - v.p == 4 && memcmp(v.p, "null", 4) == 0) &&
            (e.category[i] = json_string(v, NULL)) == NULL)
            die("%s: record %d: \"category\" is not a string", gp, i + 1);
        e.correct_rate += (double)e.correct[i] / e.n;
    }
    jsonl_free(&a); jsonl_free(&g);
    free(ap); free(gp);
    return e;
}

/* DPO curves: loss and reward accuracy per step. */
static int load_dpo_log(const char *path, double **loss, double **acc) {
    Jsonl j;
    int i;
    jsonl_load(&j, path);
    *loss = xcalloc((size_t)j.count + 1, sizeof(double)); *acc = xcalloc((size_t)j.count + 1, sizeof(double));
    for (i = 0; i < j.count; i++) {
        JsonSpan v;
        if (json_get(j.line[i], j.line[i] + j.len[i], "loss", &v)) json_number(v, &(*loss)[i]);
        if (json_get(j.line[i], j.line[i] + j.len[i], "rewards/accuracies", &v)) json_number(v, &(*acc)[i]);
    }
    i = j.count;
    jsonl_free(&j);
    return i;
}

static void write_text(const RunConfig *rc, const char *name, const Buf *b) {
    char *p = run_path(rc, name);
    if (write_file_atomic(p, b->p ? b->p : (uint8_t *)"", b->n) != 0) exit(1);
    free(p);
}

static const char *model_names[] = {"sft", "m1", "m2", "m3", "m2pos"};
static const char *model_labels[] = {"SFT baseline", "M1", "M2", "M3", "M2 positive-only"};

/* --- correctness and best of N, read back for the report --- */

/* One model's best-of-N results: per sample (prompt-major) the stored mean
 * self-judged score (scored = 0 when none parsed), the grade and verdict. */
typedef struct { int n, N; float *mean; int *scored; double *grade; int *correct; } BestOf;

static void bestof_free(BestOf *bo) { free(bo->mean); free(bo->scored); free(bo->grade); free(bo->correct); }

static void bestof_load(const RunConfig *rc, const char *name, int n, BestOf *bo) {
    char fn[64], *sp, *gp;
    Jsonl s, g;
    int i, N = rc->bestof_n;
    snprintf(fn, sizeof fn, "bestof_%s.jsonl", name); sp = run_path(rc, fn);
    snprintf(fn, sizeof fn, "bestof_grades_%s.jsonl", name); gp = run_path(rc, fn);
    jsonl_load(&s, sp); jsonl_load(&g, gp);
    if (s.count != n * N) die("%s: %d samples, want %d prompts x %d", sp, s.count, n, N);
    if (g.count != s.count) die("%s: %d grades for %d samples in %s", gp, g.count, s.count, sp);
    bo->n = n; bo->N = N;
    bo->mean = xcalloc((size_t)s.count + 1, sizeof(float)); bo->scored = xcalloc((size_t)s.count + 1, sizeof(int));
    bo->grade = xcalloc((size_t)s.count + 1, sizeof(double)); bo->correct = xcalloc((size_t)s.count + 1, sizeof(int));
    for (i = 0; i < s.count; i++) {
        JsonSpan v;
        double x, ix, jx;
        if (!json_get(s.line[i], s.line[i] + s.len[i], "index", &v) || !json_number(v, &ix) ||
            !json_get(s.line[i], s.line[i] + s.len[i], "sample", &v) || !json_number(v, &jx) ||
            ix != (double)(i / N) || jx != (double)(i % N))
            die("%s: record %d is not prompt %d, sample %d", sp, i + 1, i / N, i % N);
        if (!json_get(s.line[i], s.line[i] + s.len[i], "mean", &v)) die("%s: record %d has no \"mean\"", sp, i + 1);
        if (json_number(v, &x)) { bo->mean[i] = (float)x; bo->scored[i] = 1; }
        else if (!(v.end - v.p == 4 && memcmp(v.p, "null", 4) == 0)) die("%s: record %d: \"mean\" is not a number or null", sp, i + 1);
        if (!json_get(g.line[i], g.line[i] + g.len[i], "grade", &v) || !json_number(v, &bo->grade[i]))
            die("%s: record %d has no numeric \"grade\"", gp, i + 1);
        bo->correct[i] = grade_record_correct(g.line[i], g.len[i]);
    }
    jsonl_free(&s); jsonl_free(&g);
    free(sp); free(gp);
}

/* k = 1, 2, 4, ... below N, then N: the best-of-k columns. */
static int bestof_ks(int N, int *ks) {
    int k, nk = 0;
    if (N <= 0) return 0; /* the stage is off */
    for (k = 1; k < N; k *= 2) ks[nk++] = k;
    ks[nk++] = N;
    return nk;
}

/* Correct counts over the prompts of one category (cat < 0: all): greedy,
 * self-judge best of ks[t], grader best of ks[t]. */
typedef struct { int prompts, greedy, self[8], oracle[8]; } BestOfCounts;

static BestOfCounts bestof_count(const BestOf *bo, const int *greedy_correct, const int *cat_of, int cat, const int *ks, int nk) {
    BestOfCounts c;
    int i, t, N = bo->N;
    memset(&c, 0, sizeof c);
    for (i = 0; i < bo->n; i++) {
        if (cat >= 0 && cat_of[i] != cat) continue;
        c.prompts++;
        c.greedy += greedy_correct[i] != 0;
        for (t = 0; t < nk; t++) {
            c.self[t] += bo->correct[i * N + bestof_pick(bo->mean + i * N, bo->scored + i * N, ks[t])] != 0;
            c.oracle[t] += bestof_oracle(bo->correct + i * N, ks[t]);
        }
    }
    return c;
}

static double pct(int num, int den) { return den > 0 ? 100.0 * num / den : 0.0; }

/* Which models the best-of stage evaluates: --bestof-models, "all" or a
 * comma list of model file names (sft, m1, m2, m3, m2pos). */
static int bestof_wanted(const RunConfig *rc, const char *name) {
    return rc->bestof_n > 0 && (strcmp(rc->bestof_models, "all") == 0 || comma_list_has(rc->bestof_models, name));
}

/* eval.jsonl (format "srlm eval", version 1): every per-prompt number the
 * correctness and best-of tables are computed from, so that an outside
 * harness can recompute them (README, "Run directory"). */
static void eval_jsonl(Buf *b, const RunConfig *rc, const ModelEval *ev, int n_models, const BestOf *bo, const int *has_bo,
                       const int *ks, int nk) {
    int i, m, k, n = ev[0].n, N = rc->bestof_n;
    buf_printf(b, "{\"format\": \"srlm eval\", \"version\": 1, \"prompts\": %d, \"models\": [", n);
    for (m = 0; m < n_models; m++) buf_printf(b, "%s\"%s\"", m ? ", " : "", model_names[m]);
    buf_printf(b, "], \"bestof_n\": %d, \"bestof_ks\": [", N);
    for (k = 0; k < nk; k++) buf_printf(b, "%s%d", k ? ", " : "", ks[k]);
    buf_str(b, "], \"bestof_models\": [");
    for (m = 0, k = 0; m < n_models; m++) if (has_bo[m]) buf_printf(b, "%s\"%s\"", k++ ? ", " : "", model_names[m]);
    buf_str(b, "]}\n");
    for (i = 0; i < n; i++) {
        buf_printf(b, "{\"index\": %d, \"category\": ", i);
        if (ev[0].category[i]) json_put_string(b, ev[0].category[i], strlen(ev[0].category[i]));
        else buf_str(b, "null");
        buf_str(b, ", \"grade\": [");
        for (m = 0; m < n_models; m++) buf_printf(b, "%s%.17g", m ? ", " : "", ev[m].grade[i]);
        buf_str(b, "], \"correct\": [");
        for (m = 0; m < n_models; m++) buf_printf(b, "%s%d", m ? ", " : "", ev[m].correct[i]);
        buf_str(b, "], \"bestof\": {");
        for (m = 0, k = 0; m < n_models; m++) {
            const BestOf *o = &bo[m];
            int j;
            if (!has_bo[m]) continue;
            buf_printf(b, "%s\"%s\": {\"mean\": [", k++ ? ", " : "", model_names[m]);
            for (j = 0; j < N; j++) {
                if (j) buf_str(b, ", ");
                if (o->scored[i * N + j]) buf_printf(b, "%.9g", (double)o->mean[i * N + j]);
                else buf_str(b, "null");
            }
            buf_str(b, "], \"grade\": [");
            for (j = 0; j < N; j++) buf_printf(b, "%s%.17g", j ? ", " : "", o->grade[i * N + j]);
            buf_str(b, "], \"correct\": [");
            for (j = 0; j < N; j++) buf_printf(b, "%s%d", j ? ", " : "", o->correct[i * N + j]);
            buf_str(b, "]}");
        }
        buf_str(b, "}}\n");
    }
}

/* Correct % per model (and category), and every head-to-head pair split by
 * correctness: the sign test on per-prompt correctness, and grade wins and
 * losses split into correctness and form. */
static void report_correctness(Buf *r, const ModelEval *ev, int n_models, char lab[][48], const CorrectSplit *cs, int n_cmp,
                               const char *const *cats, int n_cat, const int *cat_of) {
    int i, k, c, n = ev[0].n;
    buf_printf(r, "\n## Correctness and form\n\nAn answer is correct when the grader says so (`correct` among its record's "
                  "`criteria`); a grade also scores form. Correct %% on the %d held-out prompts", n);
    buf_str(r, n_cat ? ", overall and per category (the grader's `category`):\n\n| model | correct | correct %" :
                       ":\n\n| model | correct | correct %");
    for (c = 0; c < n_cat; c++) buf_printf(r, " | %s %%", cats[c]);
    buf_str(r, " |\n|---|---|---|");
    for (c = 0; c < n_cat; c++) buf_str(r, "---|");
    buf_str(r, "\n");
    for (i = 0; i < n_models; i++) {
        buf_printf(r, "| %s | %d/%d | %.1f |", model_labels[i], ev[i].n_correct, n, pct(ev[i].n_correct, n));
        for (c = 0; c < n_cat; c++) {
            int num = 0, den = 0;
            for (k = 0; k < n; k++) if (cat_of[k] == c) { den++; num += ev[i].correct[k]; }
            buf_printf(r, " %.1f |", pct(num, den));
        }
        buf_str(r, "\n");
    }
    buf_str(r, "\nEach pair on correctness alone: prompts where only the left model's answer is correct against only the right "
               "model's, with the two-sided sign test; and its grade wins (losses) split into *correctness* (only the winner "
               "is correct) and *form* (both correct or both wrong: the grade moved on form). *Other*: the winner is wrong "
               "and the loser correct.\n\n"
               "| pair | only left correct / only right correct | p | grade wins: correctness / form / other | "
               "grade losses: correctness / form / other |\n|---|---|---|---|---|\n");
    for (k = 0; k < n_cmp; k++)
        buf_printf(r, "| %s | %d / %d | %.2g | %d / %d / %d | %d / %d / %d |\n", lab[k], cs[k].only_a, cs[k].only_b, cs[k].p,
                   cs[k].win_correct, cs[k].win_form, cs[k].win_other, cs[k].loss_correct, cs[k].loss_form, cs[k].loss_other);
}

/* The best-of-N tables: greedy / self-judge best of N / grader best of N
 * correct % per model and category, and best of k for each k. */
static void report_bestof(Buf *r, Buf *summary, const RunConfig *rc, const ModelEval *ev, int n_models, const BestOf *bo,
                          const int *has_bo, const int *ks, int nk, const char *const *cats, int n_cat, const int *cat_of) {
    int i, c, t, N = rc->bestof_n;
    buf_printf(r, "\n## Best of %d (evaluation only)\n\nEach model samples %d answers per held-out prompt (T %g, top-p %g, "
                  "as the loop's candidates) and judges each %d times with its own judge, as in the loop. *Self-judge best "
                  "of k*: the correct %% of the sample with the highest mean self-judged score among the first k (the "
                  "earliest on ties; the first when none has a score). *Grader best of k*: the %% of prompts where any of "
                  "the first k samples is correct (the oracle). Greedy: the answers above. Nothing here enters training.\n\n"
                  "| model | prompts | greedy %% | self-judge best of %d %% | grader best of %d %% |\n|---|---|---|---|---|\n",
               N, N, (double)rc->aift.resp_temperature, (double)rc->aift.resp_top_p, rc->aift.judge.samples, N, N);
    for (i = 0; i < n_models; i++) {
        if (!has_bo[i]) continue;
        for (c = -1; c < n_cat; c++) {
            int cat = c;
            BestOfCounts bc = bestof_count(&bo[i], ev[i].correct, cat_of, cat, ks, nk);
            buf_printf(r, "| %s %s | %d | %.1f | %.1f | %.1f |\n", model_labels[i], cat >= 0 ? cats[c] : "all", bc.prompts,
                       pct(bc.greedy, bc.prompts), pct(bc.self[nk - 1], bc.prompts), pct(bc.oracle[nk - 1], bc.prompts));
            if (cat >= 0) {
                buf_printf(summary, "  %-10s greedy %5.1f  self-judge %5.1f  grader %5.1f\n", cats[c], pct(bc.greedy, bc.prompts),
                           pct(bc.self[nk - 1], bc.prompts), pct(bc.oracle[nk - 1], bc.prompts));
                continue;
            }
            buf_printf(summary, "%s best of %d, correct %%: greedy %.1f, self-judge %.1f, grader %.1f | best of k =", model_labels[i],
                       N, pct(bc.greedy, bc.prompts), pct(bc.self[nk - 1], bc.prompts), pct(bc.oracle[nk - 1], bc.prompts));
            for (t = 0; t < nk; t++) buf_printf(summary, "%s%d", t ? "/" : " ", ks[t]);
            buf_str(summary, ": self-judge");
            for (t = 0; t < nk; t++) buf_printf(summary, "%s%.1f", t ? "/" : " ", pct(bc.self[t], bc.prompts));
            buf_str(summary, ", grader");
            for (t = 0; t < nk; t++) buf_printf(summary, "%s%.1f", t ? "/" : " ", pct(bc.oracle[t], bc.prompts));
            buf_str(summary, "\n");
        }
    }
    buf_str(r, "\nBest of k, all prompts, correct %:\n\n| model | chooser |");
    for (t = 0; t < nk; t++) buf_printf(r, " k = %d |", ks[t]);
    buf_str(r, "\n|---|---|");
    for (t = 0; t < nk; t++) buf_str(r, "---|");
    buf_str(r, "\n");
    for (i = 0; i < n_models; i++) {
        BestOfCounts bc;
        if (!has_bo[i]) continue;
        bc = bestof_count(&bo[i], ev[i].correct, cat_of, -1, ks, nk);
        buf_printf(r, "| %s | self-judge |", model_labels[i]);
        for (t = 0; t < nk; t++) buf_printf(r, " %.1f |", pct(bc.self[t], bc.prompts));
        buf_printf(r, "\n| %s | grader |", model_labels[i]);
        for (t = 0; t < nk; t++) buf_printf(r, " %.1f |", pct(bc.oracle[t], bc.prompts));
        buf_str(r, "\n");
    }
}

/* Categories in order of first appearance, from the grader's records of the
 * first model's answers. Returns cat_of[i] (-1: none) for each answer. */
static int *report_categories(const ModelEval *ev0, const char **cats, int *n_cat) {
    int *cat_of = xcalloc((size_t)ev0->n + 1, sizeof(int)), i, k;
    *n_cat = 0;
    for (i = 0; i < ev0->n; i++) {
        cat_of[i] = -1;
        if (!ev0->category[i]) continue;
        for (k = 0; k < *n_cat && strcmp(cats[k], ev0->category[i]) != 0; k++) {}
        if (k == *n_cat) { if (*n_cat == 64) die("grades_%s.jsonl: more than 64 categories", model_names[0]); cats[(*n_cat)++] = ev0->category[i]; }
        cat_of[i] = k;
    }
    return cat_of;
}

/* The models table: each checkpoint's file and SHA-256. */
static void report_models(Buf *r, Buf *summary, const RunConfig *rc, int n_models) {
    int i;
    buf_str(r, "## Models\n\n| model | file | sha256 |\n|---|---|---|\n");
    for (i = 0; i < n_models; i++) {
        char fn[32], hex[65], *p;
        snprintf(fn, sizeof fn, "%s.ckpt", model_names[i]);
        p = run_path(rc, fn);
        file_sha_hex(p, hex);
        buf_printf(r, "| %s | %s | `%s` |\n", model_labels[i], fn, hex);
        buf_printf(summary, "%-18s %s  sha256 %s\n", model_labels[i], p, hex);
        free(p);
    }
}

/* Head-to-head (the paper's Table 1 and Figure 3) beside the paper's numbers,
 * and winrate.svg. Fills h, cs and the pair labels; returns the pairs made. */
static int report_head_to_head(Buf *r, Buf *summary, const RunConfig *rc, const ModelEval *ev, int n_models, HeadToHead *h,
                               CorrectSplit *cs, char lab[][48]) {
    static const struct { int a, b; const char *paper; } cmp[] = {
        {1, 0, "30.5 / 38.7 / 30.9"}, {2, 0, "49.2 / 36.3 / 14.5"}, {3, 0, "62.5 / 27.7 / 9.8"},
        {2, 1, "55.5 / 32.8 / 11.7"}, {3, 2, "47.7 / 39.8 / 12.5"}, {3, 1, "68.8 / 22.7 / 8.6"},
        {4, 1, "(ablation: no gain)"}, {2, 4, "(ablation: DPO > positive-only)"}};
    const char *labels[8];
    Buf svg = {0, 0, 0};
    int i, k, n_cmp = 0;
    buf_printf(r, "\n## Head-to-head on %d held-out prompts\n\nThe grader scores each answer 0-5; the higher grade wins, "
                  "equal grades tie. p is the two-sided sign test on wins vs losses.\n\n"
                  "| pair | win %% | tie %% | loss %% | W/T/L | p | paper win / tie / loss %% |\n|---|---|---|---|---|---|---|\n", ev[0].n);
    buf_str(summary, "\ncorrect %:");
    for (i = 0; i < n_models; i++) buf_printf(summary, "%s %s %.1f", i ? "," : "", model_labels[i], pct(ev[i].n_correct, ev[i].n));
    buf_str(summary, "\n\nhead-to-head            win%   tie%  loss%   p        | correct: only-left/only-right  p        | grade wins: correctness/form\n");
    for (k = 0; k < (int)(sizeof cmp / sizeof cmp[0]); k++) {
        int a = cmp[k].a, b = cmp[k].b, n;
        if (a >= n_models || b >= n_models) continue;
        h[n_cmp] = head_to_head(ev[a].grade, ev[b].grade, ev[0].n);
        cs[n_cmp] = correctness_split(ev[a].grade, ev[a].correct, ev[b].grade, ev[b].correct, ev[0].n);
        n = ev[0].n ? ev[0].n : 1;
        snprintf(lab[n_cmp], 48, "%s vs %s", model_labels[a], model_labels[b]);
        labels[n_cmp] = lab[n_cmp];
        buf_printf(r, "| %s | %.1f | %.1f | %.1f | %d/%d/%d | %.2g | %s |\n", lab[n_cmp], 100.0 * h[n_cmp].win / n,
                   100.0 * h[n_cmp].tie / n, 100.0 * h[n_cmp].loss / n, h[n_cmp].win, h[n_cmp].tie, h[n_cmp].loss,
                   h[n_cmp].p, cmp[k].paper);
        buf_printf(summary, "%-22s %5.1f  %5.1f  %5.1f   %-8.2g |          %3d/%-3d          %-8.2g |         %3d/%d\n", lab[n_cmp],
                   100.0 * h[n_cmp].win / n, 100.0 * h[n_cmp].tie / n, 100.0 * h[n_cmp].loss / n, h[n_cmp].p,
                   cs[n_cmp].only_a, cs[n_cmp].only_b, cs[n_cmp].p, cs[n_cmp].win_correct, cs[n_cmp].win_form);
        n_cmp++;
    }
    svg_winrate(&svg, n_cmp, labels, h);
    write_text(rc, "winrate.svg", &svg);
    free(svg.p);
    return n_cmp;
}

static void report_instruction_following(Buf *r, const ModelEval *ev, int n_models) {
    int i;
    buf_str(r, "\n![head-to-head](winrate.svg)\n\n## Instruction following\n\n"
               "| model | mean grade (0-5) | correct % | mean response bytes | mean tokens |\n|---|---|---|---|---|\n");
    for (i = 0; i < n_models; i++)
        buf_printf(r, "| %s | %.3f | %.1f | %.1f | %.1f |\n", model_labels[i], ev[i].mean_grade, 100.0 * ev[i].correct_rate,
                   ev[i].mean_bytes, ev[i].mean_tokens);
    buf_str(r, "\nThe paper's responses grow with each iteration (M1 1,092, M2 1,552, M3 2,552, unit unverified).\n");
}

/* Reward modelling (the paper's Table 4) from rm_<model>.json, and rm_by_model.svg. */
static void report_reward_model(Buf *r, Buf *summary, const RunConfig *rc, int n_models) {
    static const char *paper_rm[] = {"65.1 / 39.6 / 10.1 / 0.253 / 0.233", "78.7 / 41.5 / 13.1 / 0.279 / 0.253",
                                     "80.4 / 44.3 / 14.3 / 0.331 / 0.315", "81.7 / 43.2 / 14.3 / 0.349 / 0.324", "-"};
    static const char *names[2] = {"pairwise accuracy", "5-best"};
    static const char *xl[4] = {"SFT", "M1", "M2", "M3"};
    double pacc[5], best[5];
    const double *ys[2];
    Buf svg = {0, 0, 0};
    int i;
    buf_str(r, "\n## Reward modelling on held-out ranked sets\n\n"
               "| model | pairwise acc % | 5-best % | exact match % | Spearman | Kendall tau | judge parse failures % | paper (acc / 5-best / exact / rho / tau) |\n"
               "|---|---|---|---|---|---|---|---|\n");
    buf_str(summary, "\nreward model      pair-acc%  5-best%  exact%  spearman  kendall  parse-fail%\n");
    for (i = 0; i < n_models; i++) {
        char fn[32], *p;
        double jn, pf;
        snprintf(fn, sizeof fn, "rm_%s.json", model_names[i]);
        p = run_path(rc, fn);
        pacc[i] = json_file_number(p, "pairwise_accuracy");
        best[i] = json_file_number(p, "best5");
        jn = json_file_number(p, "judgments");
        pf = jn > 0 ? json_file_number(p, "parse_failures") / jn : 0.0;
        buf_printf(r, "| %s | %.1f | %.1f | %.1f | %.3f | %.3f | %.2f | %s |\n", model_labels[i], 100 * pacc[i], 100 * best[i],
                   100 * json_file_number(p, "exact_match"), json_file_number(p, "spearman"),
                   json_file_number(p, "kendall"), 100 * pf, paper_rm[i]);
        buf_printf(summary, "%-17s %8.1f %8.1f %7.1f %9.3f %8.3f %10.2f\n", model_labels[i], 100 * pacc[i], 100 * best[i],
                   100 * json_file_number(p, "exact_match"), json_file_number(p, "spearman"),
                   json_file_number(p, "kendall"), 100 * pf);
        free(p);
    }
    ys[0] = pacc; ys[1] = best;
    svg_lines(&svg, "Judge quality by model (held-out ranked sets)", n_models < 4 ? n_models : 4, 2, names, ys, 0.0, 1.0, xl);
    write_text(rc, "rm_by_model.svg", &svg);
    free(svg.p);
}

/* The self-generated preference data (AIFT(M1), AIFT(M2)) from aiftN.stats.json. */
static void report_aift_data(Buf *r, Buf *summary, const RunConfig *rc) {
    int i;
    buf_printf(r, "\n![reward modelling](rm_by_model.svg)\n\n## Self-generated preference data\n\n"
                  "| data | prompts generated | kept | candidates | judgments | parse failures %% | unscored | all %d identical | ties | pairs | paper pairs |\n"
                  "|---|---|---|---|---|---|---|---|---|---|---|\n", rc->aift.n_candidates);
    for (i = 1; i <= 2; i++) {
        char fn[32], *p;
        double j;
        snprintf(fn, sizeof fn, "aift%d.stats.json", i);
        p = run_path(rc, fn);
        j = json_file_number(p, "judgments");
        buf_printf(r, "| AIFT(M%d) | %.0f | %.0f | %.0f | %.0f | %.2f | %.0f | %.0f | %.0f | %.0f | %s |\n", i,
                   json_file_number(p, "prompts_generated"), json_file_number(p, "prompts_kept"),
                   json_file_number(p, "candidates"), j, j > 0 ? 100 * json_file_number(p, "parse_failures") / j : 0.0,
                   json_file_number(p, "unscored"), json_file_number(p, "identical"), json_file_number(p, "ties"),
                   json_file_number(p, "pairs"),
                   i == 1 ? "3,964" : "6,942");
        buf_printf(summary, "%sAIFT(M%d): %.0f pairs from %.0f prompts, judge parse failures %.2f%%\n", i == 1 ? "\n" : "", i,
                   json_file_number(p, "pairs"), json_file_number(p, "prompts_kept"),
                   j > 0 ? 100 * json_file_number(p, "parse_failures") / j : 0.0);
        free(p);
    }
    if (aift_filter_on(&rc->aift)) {
        char *p1 = run_path(rc, "aift1.stats.json"), *p2 = run_path(rc, "aift2.stats.json");
        buf_printf(r, "\nConfidence filter on (not in the paper): a pair is kept only if its self-judged score gap is at least %g "
                      "and its chosen score at least %g. Untied pairs dropped by it: AIFT(M1) %.0f, AIFT(M2) %.0f.\n",
                   (double)rc->aift.min_margin, (double)rc->aift.min_chosen,
                   json_file_number(p1, "low_confidence"), json_file_number(p2, "low_confidence"));
        free(p1); free(p2);
    }
}

/* The same pairs graded afterwards by the grader: does the self-judge prefer
 * the better of its own responses more often than not? */
static void report_pair_audit(Buf *r, Buf *summary, const RunConfig *rc) {
    int i;
    buf_str(r, "\nThe same pairs graded afterwards by the grader (evaluation only; the loop never sees these grades). "
               "The paper's loop needs the model's own judgments to prefer the better of its own responses more often than not.\n\n"
               "| data | chosen graded better | worse | equal | better share of unequal | sign test p |\n|---|---|---|---|---|---|\n");
    for (i = 1; i <= 2; i++) {
        int bt, wr, eq;
        pair_audit_counts(rc, i, &bt, &wr, &eq);
        buf_printf(r, "| AIFT(M%d) | %d | %d | %d | %.1f%% | %.2g |\n", i, bt, wr, eq,
                   bt + wr > 0 ? 100.0 * bt / (bt + wr) : 0.0, sign_test_p(bt, wr));
        buf_printf(summary, "AIFT(M%d) pairs graded afterwards: chosen better %d, worse %d, equal %d\n", i, bt, wr, eq);
    }
}

/* DPO loss and reward accuracy per step for M2 and M3 (dpo_curves.svg). */
static void report_dpo_curves(Buf *r, const RunConfig *rc) {
    static const char *names[4] = {"M2 loss", "M2 reward acc", "M3 loss", "M3 reward acc"};
    double *l2, *a2, *l3, *a3;
    char *p2 = run_path(rc, "m2.dpo.jsonl"), *p3 = run_path(rc, "m3.dpo.jsonl");
    int n2 = load_dpo_log(p2, &l2, &a2), n3 = load_dpo_log(p3, &l3, &a3), n = n2 < n3 ? n2 : n3;
    const double *ys[4];
    Buf svg = {0, 0, 0};
    ys[0] = l2; ys[1] = a2; ys[2] = l3; ys[3] = a3;
    if (n > 1) {
        svg_lines(&svg, "DPO: loss and rewards/accuracies per step", n, 4, names, ys, 0.0, 1.0, NULL);
        write_text(rc, "dpo_curves.svg", &svg);
        buf_printf(r, "\n![DPO curves](dpo_curves.svg)\n\nDPO: M2 loss %.3f -> %.3f, M3 loss %.3f -> %.3f "
                      "(step logs: m2.dpo.jsonl, m3.dpo.jsonl, TRL metric names).\n", l2[0], l2[n2 - 1], l3[0], l3[n3 - 1]);
    }
    free(l2); free(a2); free(l3); free(a3); free(p2); free(p3); free(svg.p);
}

/* report.md, its SVG charts and eval.jsonl, recomputed from the run
 * directory's files; summary receives the lines srlm run prints. */
static void run_report(const RunConfig *rc, int n_models, Buf *summary) {
    ModelEval ev[5];
    HeadToHead h[8];
    CorrectSplit cs[8];
    BestOf bo[5];
    int has_bo[5], ks[8], nk = bestof_ks(rc->bestof_n, ks), *cat_of, n_cat = 0, any_bo = 0, i, n_cmp;
    const char *cats[64];
    char lab[8][48];
    Buf r = {0, 0, 0}, ej = {0, 0, 0};
    memset(ev, 0, sizeof ev);
    for (i = 0; i < n_models; i++) ev[i] = load_eval(rc, model_names[i]);
    for (i = 1; i < n_models; i++) if (ev[i].n != ev[0].n) die("answers_%s.jsonl: %d answers, answers_%s.jsonl %d", model_names[i], ev[i].n, model_names[0], ev[0].n);
    cat_of = report_categories(&ev[0], cats, &n_cat);
    for (i = 0; i < n_models; i++) {
        has_bo[i] = bestof_wanted(rc, model_names[i]);
        if (has_bo[i]) { bestof_load(rc, model_names[i], ev[0].n, &bo[i]); any_bo = 1; }
    }
    buf_printf(&r, "# srlm run report\n\nPreset `%s`, seed %llu. Settings and input digests: `run.cfg`. "
                   "Every number below is recomputed from the files in this directory.\n\n", rc->preset,
               (unsigned long long)rc->seed);
    report_models(&r, summary, rc, n_models);
    n_cmp = report_head_to_head(&r, summary, rc, ev, n_models, h, cs, lab);
    report_instruction_following(&r, ev, n_models);
    report_correctness(&r, ev, n_models, lab, cs, n_cmp, cats, n_cat, cat_of);
    if (any_bo) report_bestof(&r, summary, rc, ev, n_models, bo, has_bo, ks, nk, cats, n_cat, cat_of);
    eval_jsonl(&ej, rc, ev, n_models, bo, has_bo, ks, nk);
    write_text(rc, "eval.jsonl", &ej);
    report_reward_model(&r, summary, rc, n_models);
    report_aift_data(&r, summary, rc);
    report_pair_audit(&r, summary, rc);
    report_dpo_curves(&r, rc);
    write_text(rc, "report.md", &r);
    for (i = 0; i < n_models; i++) {
        free(ev[i].grade); free(ev[i].correct); free_strings(ev[i].category, ev[i].n);
        if (has_bo[i]) bestof_free(&bo[i]);
    }
    free(cat_of);
    free(r.p); free(ej.p);
}

static const char *run_help =
    "usage: srlm run --dir DIR --m0 CKPT --tokenizer TOK --template FILE --ift IFT.jsonl --eft EFT.jsonl\n"
    "                --test TEST.jsonl --ranked RANKED.jsonl --grader CMD [options]\n"
    "The whole loop: SFT baseline and M1 from M0, AIFT(M1) -> M2 -> AIFT(M2) -> M3\n"
    "(DPO), the positive-only ablation, evaluation and DIR/report.md. Finished\n"
    "stages are reused; an interrupted run continues where it stopped.\n"
    "  --grader CMD       run as 'CMD IN.jsonl OUT.jsonl' to grade answers (evaluation only)\n"
    "  --preset default   tiny | default | paper (sizes)\n"
    "  --seed 1           every stage's seeds derive from this\n"
    "  --prompts N        new prompts per AIFT iteration\n"
    "  --candidates 4     responses sampled per prompt (the paper's N)\n"
    "  --prompt-model m0  m0 (fixed, as the paper's fixed generator) | current (the paper's appendix)\n"
    "  --sft-epochs --sft-lr --dpo-epochs --dpo-lr --beta 0.1 --label-smoothing 0 --dropout 0.1\n"
    "  --nll-weight 0     RPO: DPO + alpha * NLL(chosen) / |chosen|\n"
    "  --max-similarity 0.9  drop a new prompt at least this similar (ROUGE-L F, words and\n"
    "                     punctuation) to a seed or kept prompt\n"
    "  --min-margin 0     keep a self-judged pair only if its score gap >= this (0 = the paper)\n"
    "  --min-chosen 0     ... and its chosen score >= this (0 = the paper)\n"
    "  --no-ablation      skip the positive-only ablation\n"
    "  --bestof 8         best of N (evaluation only): N samples per test prompt, each\n"
    "                     self-judged; 0 = off\n"
    "  --bestof-models m1 the models it evaluates: all, or a comma list of sft m1 m2 m3 m2pos\n";

/* Every name in --bestof-models must be a model the run makes. */
static void run_check_bestof_models(const RunConfig *rc) {
    const char *q = rc->bestof_models;
    if (strcmp(q, "all") == 0) return;
    for (;;) {
        const char *e = strchr(q, ',');
        size_t len = e ? (size_t)(e - q) : strlen(q);
        int m, known = 0;
        for (m = 0; m < 5; m++) if (strlen(model_names[m]) == len && memcmp(model_names[m], q, len) == 0) known = m + 1;
        if (!known) die("run: --bestof-models: unknown model \"%.*s\" (all, or a comma list of sft m1 m2 m3 m2pos)", (int)len, q);
        if (known == 5 && !rc->ablation) die("run: --bestof-models m2pos needs the ablation (drop --no-ablation)");
        if (!e) break;
        q = e + 1;
    }
}

/* The run's settings: the preset's defaults, then the command line. */
static void run_config_from_opts(RunConfig *rc, Opts *o) {
    const char *pm;
    run_defaults(rc, opt_str(o, "--preset", "default"));
    rc->dir = opt_str(o, "--dir", NULL); rc->m0 = opt_str(o, "--m0", NULL); rc->tokenizer = opt_str(o, "--tokenizer", NULL);
    rc->template_path = opt_str(o, "--template", NULL); rc->ift = opt_str(o, "--ift", NULL); rc->eft = opt_str(o, "--eft", NULL);
    rc->test = opt_str(o, "--test", NULL); rc->ranked = opt_str(o, "--ranked", NULL); rc->grader = opt_str(o, "--grader", NULL);
    rc->seed = opt_u64(o, "--seed", rc->seed);
    rc->aift.n_prompts = opt_int(o, "--prompts", rc->aift.n_prompts, 1, 1000000);
    rc->aift.n_candidates = opt_int(o, "--candidates", rc->aift.n_candidates, 2, 64);
    pm = opt_str(o, "--prompt-model", "m0");
    if (strcmp(pm, "m0") && strcmp(pm, "current")) die("run: --prompt-model must be m0 or current");
    rc->prompt_model_current = strcmp(pm, "current") == 0;
    rc->sft_epochs = opt_int(o, "--sft-epochs", rc->sft_epochs, 1, 1000);
    rc->sft_lr = opt_float(o, "--sft-lr", rc->sft_lr, 0.0f, 1.0f);
    rc->sft_lr_min = rc->sft_lr / 10.0f;
    rc->dpo_epochs = opt_int(o, "--dpo-epochs", rc->dpo_epochs, 1, 1000);
    rc->dpo_lr = opt_float(o, "--dpo-lr", rc->dpo_lr, 0.0f, 1.0f);
    rc->dpo_lr_min = rc->dpo_lr / 10.0f;
    rc->beta = opt_float(o, "--beta", rc->beta, 1e-6f, 100.0f);
    rc->label_smoothing = opt_float(o, "--label-smoothing", rc->label_smoothing, 0.0f, 0.49f);
    rc->nll_weight = opt_float(o, "--nll-weight", rc->nll_weight, 0.0f, 100.0f);
    rc->aift.max_similarity = opt_float(o, "--max-similarity", rc->aift.max_similarity, 0.1f, 1.0f);
    rc->aift.min_margin = opt_float(o, "--min-margin", rc->aift.min_margin, 0.0f, 5.0f);
    rc->aift.min_chosen = opt_float(o, "--min-chosen", rc->aift.min_chosen, 0.0f, 5.0f);
    rc->dropout = opt_float(o, "--dropout", rc->dropout, 0.0f, 0.9f);
    if (opt_flag(o, "--no-ablation")) rc->ablation = 0;
    rc->bestof_n = opt_int(o, "--bestof", rc->bestof_n, 0, 64);
    rc->bestof_models = opt_str(o, "--bestof-models", rc->bestof_models);
    opts_done(o);
    run_check_bestof_models(rc);
    if (!rc->dir || !rc->m0 || !rc->tokenizer || !rc->template_path || !rc->ift || !rc->eft || !rc->test || !rc->ranked || !rc->grader)
        die("run: --dir --m0 --tokenizer --template --ift --eft --test --ranked --grader are required (see --help)");
    {   /* a malformed --grader fails now, not after hours of training */
        char **g = grader_argv(rc->grader, NULL, NULL);
        free(g[0]); free(g);
    }
}

/* Make or reopen the run directory: lock it, clear an interrupted run's temp
 * files, and write run.cfg, or check that the existing one (settings and
 * input digests) is this run's. */
static void run_open_dir(RunConfig *rc) {
    Buf fp = {0, 0, 0};
    char *cfg_path;
    int n;
    make_dirs(rc->dir);
    run_dir_lock(rc);
    if ((n = run_clean_tmp(rc->dir)) > 0) fprintf(stderr, "[run] removed %d temp file(s) an interrupted run left in %s\n", n, rc->dir);
    run_fingerprint(rc, &fp);
    cfg_path = run_path(rc, "run.cfg");
    if (run_cfg_check(rc, cfg_path, &fp) != 0) exit(1);
    free(cfg_path); free(fp.p);
}

/* Paper steps: seed fine-tuning (stages 1-2), two self-rewarding iterations
 * (3-6: AIFT(Mt) then DPO), and the positive-only ablation (7). Returns the
 * number of models made (4, or 5 with the ablation). */
static int run_train_models(const RunConfig *rc, const Tokenizer *tok, const JudgeTemplate *jt) {
    char *p_sft = run_path(rc, "sft.ckpt"), *p_m1 = run_path(rc, "m1.ckpt");
    char *p_a1 = run_path(rc, "aift1.jsonl"), *p_a1s = run_path(rc, "aift1.stats.json"), *p_a1c = run_path(rc, "aift1.candidates.jsonl");
    char *p_m2 = run_path(rc, "m2.ckpt"), *p_l2 = run_path(rc, "m2.dpo.jsonl");
    char *p_a2 = run_path(rc, "aift2.jsonl"), *p_a2s = run_path(rc, "aift2.stats.json"), *p_a2c = run_path(rc, "aift2.candidates.jsonl");
    char *p_m3 = run_path(rc, "m3.ckpt"), *p_l3 = run_path(rc, "m3.dpo.jsonl");
    char *p_pos = run_path(rc, "positive1.jsonl"), *p_m2pos = run_path(rc, "m2pos.ckpt");
    char *data = xmalloc(strlen(rc->ift) + strlen(rc->eft) + 2);
    int n_models = 4;
    sprintf(data, "%s,%s", rc->ift, rc->eft);
    /* 1-2: seed fine-tuning */
    stage_sft(rc, tok, rc->m0, rc->ift, p_sft, hash64(rc->seed, 1), "1/9 SFT baseline");
    stage_sft(rc, tok, rc->m0, data, p_m1, hash64(rc->seed, 2), "2/9 M1");
    /* 3-6: two self-rewarding iterations */
    stage_aift(rc, tok, jt, p_m1, p_a1, p_a1s, p_a1c, hash64(rc->seed, 3), "3/9 AIFT(M1)");
    stage_dpo(rc, tok, p_m1, p_a1, p_m2, p_l2, hash64(rc->seed, 4), "4/9 M2");
    stage_aift(rc, tok, jt, p_m2, p_a2, p_a2s, p_a2c, hash64(rc->seed, 5), "5/9 AIFT(M2)");
    stage_dpo(rc, tok, p_m2, p_a2, p_m3, p_l3, hash64(rc->seed, 6), "6/9 M3");
    /* 7: ablation — SFT on the chosen responses only */
    if (rc->ablation) {
        stage_positive_data(rc, p_a1, p_pos);
        stage_sft(rc, tok, p_m1, p_pos, p_m2pos, hash64(rc->seed, 7), "7/9 M2 positive-only");
        n_models = 5;
    }
    free(data);
    free(p_sft); free(p_m1); free(p_a1); free(p_a1s); free(p_a1c); free(p_m2); free(p_l2); free(p_a2); free(p_a2s); free(p_a2c); free(p_m3); free(p_l3);
    free(p_pos); free(p_m2pos);
    return n_models;
}

/* Stage 8: every model answers the test prompts and judges the ranked sets,
 * both AIFT sets are graded afterwards, then best of N (evaluation only,
 * after everything the loop trains). */
static void run_evaluate(const RunConfig *rc, const Tokenizer *tok, const JudgeTemplate *jt, int n_models) {
    char *p_a1 = run_path(rc, "aift1.jsonl"), *p_a2 = run_path(rc, "aift2.jsonl");
    int i;
    for (i = 0; i < n_models; i++) {
        char fn[32], *p;
        snprintf(fn, sizeof fn, "%s.ckpt", model_names[i]);
        p = run_path(rc, fn);
        fprintf(stderr, "[8/9 eval] %s\n", model_labels[i]);
        stage_answers(rc, tok, p, model_names[i]);
        stage_rm(rc, tok, jt, p, model_names[i], hash64(rc->seed, 8));
        free(p);
    }
    stage_pair_audit(rc, p_a1, 1);
    stage_pair_audit(rc, p_a2, 2);
    for (i = 0; i < n_models; i++) {
        char fn[32], *p;
        if (!bestof_wanted(rc, model_names[i])) continue;
        snprintf(fn, sizeof fn, "%s.ckpt", model_names[i]);
        p = run_path(rc, fn);
        fprintf(stderr, "[8/9 eval] %s best of %d\n", model_labels[i], rc->bestof_n);
        stage_bestof(rc, tok, jt, p, model_names[i], hash64(rc->seed, 9));
        free(p);
    }
    free(p_a1); free(p_a2);
}

static int cmd_run(int argc, char **argv) {
    Opts o = opts_make(argc, argv, "run");
    RunConfig rc;
    Tokenizer tok;
    JudgeTemplate jt;
    Buf summary = {0, 0, 0};
    int n_models;
    double t0 = now_seconds();
    if (wants_help(argc, argv)) { free(o.used); fputs(run_help, stdout); return 0; }
    run_config_from_opts(&rc, &o);
    run_open_dir(&rc);
    tokenizer_load(&tok, rc.tokenizer);
    judge_template_load(&jt, rc.template_path);
    n_models = run_train_models(&rc, &tok, &jt);
    run_evaluate(&rc, &tok, &jt, n_models);
    /* 9: report */
    run_report(&rc, n_models, &summary);
    fprintf(stderr, "[9/9 report] %s/report.md (%.0f s)\n", rc.dir, now_seconds() - t0);
    fwrite(summary.p, 1, summary.n, stdout);
    free(summary.p);
    free(jt.text);
    tok_free(&tok);
    return 0;
}

/* ==========================================================================
 * 17. The command line: one cmd_* function per subcommand, each reading
 *     its "--name value" options and answering --help; the table `commands`
 *     at the end of the file lists them and main() dispatches.
 *     Paper step: each step runnable on its own (`srlm run` runs them all).
 * ========================================================================== */

static void config_from_opts(Config *c, Opts *o) {
    c->dim = opt_int(o, "--dim", 128, 2, 8192);
    c->n_layers = opt_int(o, "--layers", 4, 1, 256);
    c->n_heads = opt_int(o, "--heads", 4, 1, 8192);
    c->n_kv_heads = opt_int(o, "--kv-heads", c->n_heads, 1, 8192);
    c->hidden_dim = opt_int(o, "--hidden", 352, 1, 65536);
    c->max_seq_len = opt_int(o, "--context", 256, 1, 65536);
    c->tied = opt_int(o, "--tied", 0, 0, 1);
    c->rope_theta = opt_float(o, "--rope-theta", 10000.0f, 1.0001f, 1e9f);
    c->norm_eps = opt_float(o, "--norm-eps", 1e-5f, 1e-12f, 0.1f);
}

static void train_config_from_opts(TrainConfig *t, Opts *o) {
    t->steps = opt_int(o, "--steps", t->steps, 0, 100000000);
    t->batch = opt_int(o, "--batch", t->batch, 1, 65536);
    t->seq = opt_int(o, "--seq", t->seq, 2, 65536);
    t->lr = opt_float(o, "--lr", t->lr, 0.0f, 10.0f);
    t->lr_min = opt_float(o, "--lr-min", t->lr / 10.0f, 0.0f, 10.0f);
    t->warmup = opt_int(o, "--warmup", t->warmup, 0, 100000000);
    t->linear = opt_flag(o, "--linear");
    t->weight_decay = opt_float(o, "--wd", t->weight_decay, 0.0f, 10.0f);
    t->clip = opt_float(o, "--clip", t->clip, 0.0f, 1e9f);
    t->dropout = opt_float(o, "--dropout", t->dropout, 0.0f, 0.95f);
    t->seed = opt_u64(o, "--seed", t->seed);
    t->log_every = opt_int(o, "--log-every", t->log_every, 0, 100000000);
}

/* The provenance text of a trained checkpoint: "srlm train steps=S batch=B
 * seq=T seed=N", and with --init " init=NAME sha256=HEX" (the starting
 * checkpoint's file name without its directories, and the SHA-256 of its bytes). */
static void train_provenance(char *meta, size_t cap, const TrainConfig *t, const char *init_path) {
    int n = snprintf(meta, cap, "srlm train steps=%d batch=%d seq=%d seed=%llu", t->steps, t->batch, t->seq,
                     (unsigned long long)t->seed);
    if (init_path && n > 0 && (size_t)n < cap) {
        char name[128], hex[65];
        base_names(init_path, name, sizeof name);
        file_sha_hex(init_path, hex);
        snprintf(meta + n, cap - (size_t)n, " init=%s sha256=%s", name, hex);
    }
}

static const char *train_help =
    "usage: srlm train --data TEXT --out CKPT [options]\n"
    "Pretrain (or continue training) a model on a text file: random windows of\n"
    "--seq+1 tokens, next-token loss on every position.\n"
    "  --data FILE        training text (UTF-8 or any bytes)\n"
    "  --tokenizer FILE   BPE tokenizer (srlm tokenizer train); without it, one token per byte\n"
    "  --out FILE         checkpoint to write (atomically)\n"
    "  --init CKPT        start from this checkpoint instead of a random model\n"
    "model (new models only): --dim 128 --layers 4 --heads 4 --kv-heads H --hidden 352\n"
    "                         --context 256 --tied 0 --rope-theta 10000 --norm-eps 1e-5\n"
    "training: --steps 200 --batch 16 --seq 128 --lr 3e-3 --lr-min lr/10 --warmup 20\n"
    "          [--linear] --wd 0.1 --clip 1.0 --dropout 0 --seed 1 --log-every 10\n";

static int cmd_train(int argc, char **argv) {
    Opts o = opts_make(argc, argv, "train");
    const char *data_path, *out_path, *tok_path, *init_path;
    TrainConfig t = train_config_default();
    Model m;
    Tokenizer tok;
    uint8_t *text;
    size_t n_text, n_tokens;
    int *tokens;
    StreamData sd;
    Batcher batcher;
    char hex[65], meta[320];
    if (wants_help(argc, argv)) { free(o.used); fputs(train_help, stdout); return 0; }
    data_path = opt_str(&o, "--data", NULL);
    out_path = opt_str(&o, "--out", NULL);
    tok_path = opt_str(&o, "--tokenizer", NULL);
    init_path = opt_str(&o, "--init", NULL);
    if (!data_path || !out_path) die("train: --data and --out are required (see 'srlm train --help')");
    memset(&m, 0, sizeof m);
    if (init_path) {
        static const char *model_opts[] = {"--dim", "--layers", "--heads", "--kv-heads", "--hidden", "--context", "--tied",
                                           "--rope-theta", "--norm-eps"};
        size_t k;
        for (k = 0; k < sizeof model_opts / sizeof model_opts[0]; k++)
            if (opt_str(&o, model_opts[k], NULL))
                die("train: %s describes a new model; with --init the checkpoint's own config is used (leave %s out)",
                    model_opts[k], model_opts[k]);
        ckpt_load(&m, init_path, NULL);
    } else {
        config_from_opts(&m.cfg, &o);
    }
    train_config_from_opts(&t, &o);
    opts_done(&o);
    if (tok_path) tokenizer_load(&tok, tok_path);
    if (!init_path) {
        m.cfg.vocab_size = tok_path ? tok_vocab_size(&tok) : TOK_N_BYTES + TOK_N_SPECIAL;
        model_init_buffers(&m);
        model_init_random(&m, t.seed);
    } else if (tok_path) {
        tokenizer_check_model(&tok, tok_path, &m, init_path);
    }
    if (t.seq > m.cfg.max_seq_len) die("train: --seq %d exceeds the model context %d", t.seq, m.cfg.max_seq_len);
    if (read_file(data_path, &text, &n_text) != 0) return 1;
    tokens = encode_text(tok_path ? &tok : NULL, text, n_text, &n_tokens);
    free(text);
    if (n_tokens < 2) die("%s: too little text to train on (%lu tokens)", data_path, (unsigned long)n_tokens);
    fprintf(stderr, "train: %lu tokens, model %lu parameters, %d steps of %dx%d\n",
            (unsigned long)n_tokens, (unsigned long)m.n_params, t.steps, t.batch, t.seq);
    sd.tokens = tokens; sd.n = n_tokens; sd.seed = t.seed;
    batcher.next = stream_next; batcher.ctx = &sd;
    train_model(&m, &t, &batcher, "train");
    train_provenance(meta, sizeof meta, &t, init_path);
    if (ckpt_save(out_path, &m, meta, hex) != 0 || tokenizer_note_write(out_path, tok_path ? &tok : NULL) != 0) return 1;
    printf("%s  sha256 %s\n", out_path, hex);
    free(tokens);
    if (tok_path) tok_free(&tok);
    model_free(&m);
    return 0;
}

static const char *sample_help =
    "usage: srlm sample --model CKPT [options]\n"
    "Continue a text prompt (raw text, no chat format).\n"
    "  --tokenizer FILE   the model's tokenizer (without: one token per byte)\n"
    "  --prompt TEXT      text to continue (default: begin-of-text only)\n"
    "  --max-new 100      tokens to generate\n"
    "  --temperature 0.7  0 = greedy\n"
    "  --top-p 0.9        nucleus mass (1 = off)\n"
    "  --seed 1           sampling seed; sample i uses seed+i\n"
    "  --n 1              number of samples\n"
    "  --ids              print the generated token ids (one line per sample) instead of the text\n";

static int cmd_sample(int argc, char **argv) {
    Opts o = opts_make(argc, argv, "sample");
    const char *model_path, *tok_path, *prompt;
    Model m;
    Tokenizer tok;
    Decoder d;
    GenConfig g;
    uint64_t seed;
    int n, i, k, ids_out, stops[1] = {TOK_EOS};
    int **prompts, *plen, **out, *olen;
    uint64_t *seeds;
    size_t np;
    if (wants_help(argc, argv)) { free(o.used); fputs(sample_help, stdout); return 0; }
    model_path = opt_str(&o, "--model", NULL);
    tok_path = opt_str(&o, "--tokenizer", NULL);
    prompt = opt_str(&o, "--prompt", "");
    g.max_new = opt_int(&o, "--max-new", 100, 0, 1 << 20);
    g.temperature = opt_float(&o, "--temperature", 0.7f, 0.0f, 100.0f);
    g.top_p = opt_float(&o, "--top-p", 0.9f, 0.0f, 1.0f);
    seed = opt_u64(&o, "--seed", 1);
    n = opt_int(&o, "--n", 1, 1, 1 << 20);
    ids_out = opt_flag(&o, "--ids");
    opts_done(&o);
    if (!model_path) die("sample: --model is required (see 'srlm sample --help')");
    g.stops = stops; g.n_stops = 1;
    ckpt_load(&m, model_path, NULL);
    if (tok_path) {
        tokenizer_load(&tok, tok_path);
        tokenizer_check_model(&tok, tok_path, &m, model_path);
    }
    prompts = xcalloc((size_t)n, sizeof(int *));
    plen = xcalloc((size_t)n, sizeof(int));
    out = xcalloc((size_t)n, sizeof(int *));
    olen = xcalloc((size_t)n, sizeof(int));
    seeds = xcalloc((size_t)n, sizeof(uint64_t));
    {
        int *ids = encode_text(tok_path ? &tok : NULL, (const uint8_t *)prompt, strlen(prompt), &np);
        int *full = xmalloc((np + 1) * sizeof(int));
        full[0] = m.cfg.vocab_size > TOK_BOS ? TOK_BOS : 0; /* every text starts with begin-of-text */
        memcpy(full + 1, ids, np * sizeof(int));
        free(ids);
        for (i = 0; i < n; i++) { prompts[i] = full; plen[i] = (int)np + 1; seeds[i] = seed + (uint64_t)i; }
    }
    decoder_init(&d, &m.cfg, n < 16 ? n : 16, 512);
    generate(&m, &d, n, prompts, plen, seeds, &g, out, olen);
    for (i = 0; i < n; i++) {
        char *text = decode_ids(tok_path ? &tok : NULL, out[i], (size_t)olen[i], NULL);
        if (n > 1) printf("--- sample %d (seed %llu)\n", i, (unsigned long long)seeds[i]);
        if (ids_out) for (k = 0; k < olen[i]; k++) printf(k + 1 < olen[i] ? "%d " : "%d", out[i][k]);
        if (ids_out) printf("\n");
        else printf("%s%s\n", prompt, text);
        free(text);
        free(out[i]);
    }
    free(prompts[0]); free(prompts); free(plen); free(out); free(olen); free(seeds);
    decoder_free(&d);
    if (tok_path) tok_free(&tok);
    model_free(&m);
    return 0;
}

static const char *info_help =
    "usage: srlm info CKPT\n"
    "Validate a checkpoint and print its config, parameter count, provenance and the\n"
    "SHA-256 of the file's bytes.\n";

static int cmd_info(int argc, char **argv) {
    Model m;
    uint8_t *data, dg[32];
    size_t n, sizes[N_PTENSORS];
    char hex[65], *meta = NULL;
    const char *why;
    int i;
    if (wants_help(argc, argv) || argc != 1) { fputs(info_help, argc == 1 ? stdout : stderr); return argc == 1 ? 0 : 1; }
    if (ckpt_read(argv[0], &data, &n) != 0) return 1;
    why = ckpt_parse(&m, data, n, &meta);
    if (why) { free(data); die("%s: %s", argv[0], why); }
    sha256(data, n, dg);
    sha256_hex(dg, hex);
    printf("file         %s (%lu bytes, format version %u)\n", argv[0], (unsigned long)n, CKPT_VERSION);
    printf("dim          %d\nn_layers     %d\nn_heads      %d\nn_kv_heads   %d\nhidden_dim   %d\n"
           "vocab_size   %d\nmax_seq_len  %d\ntied         %d\nrope_theta   %.9g\nnorm_eps     %.9g\n",
           m.cfg.dim, m.cfg.n_layers, m.cfg.n_heads, m.cfg.n_kv_heads, m.cfg.hidden_dim, m.cfg.vocab_size,
           m.cfg.max_seq_len, m.cfg.tied, (double)m.cfg.rope_theta, (double)m.cfg.norm_eps);
    param_sizes(&m.cfg, sizes);
    for (i = 0; i < N_PTENSORS; i++)
        if (sizes[i]) printf("  %-15s %lu\n", param_names[i], (unsigned long)sizes[i]);
    printf("parameters   %lu\n", (unsigned long)m.n_params);
    printf("meta         %s\n", meta ? meta : "");
    printf("sha256 %s\n", hex);
    free(meta);
    free(data);
    model_free(&m);
    return 0;
}


static const char *sft_help =
    "usage: srlm sft --model CKPT --tokenizer TOK --data A.jsonl[,B.jsonl...] --out CKPT [options]\n"
    "Supervised fine-tuning on instruction/response records (IFT, and EFT judge\n"
    "examples, which use the same two fields). Loss on response tokens only.\n"
    "  --epochs 3         passes over the data (or --steps N)\n"
    "  --batch 16 --lr 1e-3 --lr-min 1e-4 --warmup 10 [--linear] --wd 0 --clip 1\n"
    "  --dropout 0.1 --seed 1 --log-every 20\n";

static int cmd_sft(int argc, char **argv) {
    Opts o = opts_make(argc, argv, "sft");
    const char *model_path, *tok_path, *data, *out_path;
    TrainConfig t = train_config_default();
    Tokenizer tok;
    int epochs;
    if (wants_help(argc, argv)) { free(o.used); fputs(sft_help, stdout); return 0; }
    model_path = opt_str(&o, "--model", NULL);
    tok_path = opt_str(&o, "--tokenizer", NULL);
    data = opt_str(&o, "--data", NULL);
    out_path = opt_str(&o, "--out", NULL);
    epochs = opt_int(&o, "--epochs", 3, 1, 100000);
    t.lr = 1e-3f; t.warmup = 10; t.weight_decay = 0.0f; t.dropout = 0.1f; t.log_every = 20; t.steps = -1;
    train_config_from_opts(&t, &o);
    opts_done(&o);
    if (!model_path || !tok_path || !data || !out_path) die("sft: --model, --tokenizer, --data and --out are required");
    tokenizer_load(&tok, tok_path);
    sft_checkpoint(model_path, &tok, data, t, epochs, out_path, "sft");
    tok_free(&tok);
    return 0;
}

static const char *dpo_help =
    "usage: srlm dpo --model CKPT --tokenizer TOK --pairs PAIRS.jsonl --out CKPT [options]\n"
    "DPO on preference pairs {\"prompt\", \"chosen\", \"rejected\"} (TRL's format); the\n"
    "reference model is --model itself, frozen. Summed response-token log-probs.\n"
    "  --beta 0.1 --label-smoothing 0 (cDPO) --epochs 2 (or --steps N)\n"
    "  --nll-weight 0     RPO: + alpha * NLL(chosen) / |chosen| (Pang et al. 2024 use 1)\n"
    "  --batch 16 (pairs) --lr 2e-4 --lr-min lr/10 --warmup steps/10 --dropout 0.1 --seed 1\n"
    "  --log FILE         per-step JSONL: loss, rewards/chosen, rewards/rejected,\n"
    "                     rewards/accuracies, rewards/margins, lr\n";

static int cmd_dpo(int argc, char **argv) {
    Opts o = opts_make(argc, argv, "dpo");
    const char *model_path, *tok_path, *pairs, *out_path, *log_path;
    TrainConfig t = train_config_default();
    DpoConfig dc;
    Tokenizer tok;
    int epochs;
    if (wants_help(argc, argv)) { free(o.used); fputs(dpo_help, stdout); return 0; }
    model_path = opt_str(&o, "--model", NULL);
    tok_path = opt_str(&o, "--tokenizer", NULL);
    pairs = opt_str(&o, "--pairs", NULL);
    out_path = opt_str(&o, "--out", NULL);
    log_path = opt_str(&o, "--log", NULL);
    epochs = opt_int(&o, "--epochs", 2, 1, 100000);
    dc.beta = opt_float(&o, "--beta", 0.1f, 1e-6f, 100.0f);
    dc.label_smoothing = opt_float(&o, "--label-smoothing", 0.0f, 0.0f, 0.49f);
    dc.nll_weight = opt_float(&o, "--nll-weight", 0.0f, 0.0f, 100.0f);
    t.lr = 2e-4f; t.warmup = -1; t.weight_decay = 0.0f; t.dropout = 0.1f; t.log_every = 10; t.steps = -1;
    train_config_from_opts(&t, &o);
    opts_done(&o);
    if (!model_path || !tok_path || !pairs || !out_path) die("dpo: --model, --tokenizer, --pairs and --out are required");
    tokenizer_load(&tok, tok_path);
    dpo_checkpoint(model_path, &tok, pairs, t, epochs, &dc, out_path, log_path, "dpo");
    tok_free(&tok);
    return 0;
}

static void judge_config_from_opts(JudgeConfig *jc, Opts *o) {
    jc->samples = opt_int(o, "--samples", jc->samples, 1, 64);
    jc->temperature = opt_float(o, "--temperature", jc->temperature, 0.0f, 100.0f);
    jc->top_p = opt_float(o, "--top-p", jc->top_p, 0.0f, 1.0f);
    jc->max_new = opt_int(o, "--max-new", jc->max_new, 1, 65536);
}

static const char *judge_help =
    "usage: srlm judge --model CKPT --tokenizer TOK --template FILE --input PAIRS.jsonl [options]\n"
    "The model judges each {\"instruction\", \"response\"} record with the judge\n"
    "template; prints one JSON line per record: the judgments, the parsed scores,\n"
    "and their mean (null when no judgment had a valid score).\n"
    "  --out FILE         write the JSONL here (atomically) instead of stdout\n"
    "  --samples 3 --temperature 0.7 --top-p 0.9 --max-new 192 --seed 1\n";

static int cmd_judge(int argc, char **argv) {
    Opts o = opts_make(argc, argv, "judge");
    const char *model_path, *tok_path, *tpl_path, *in_path, *out_path;
    JudgeConfig jc = judge_config_default();
    uint64_t seed;
    Model m;
    Tokenizer tok;
    JudgeTemplate jt;
    Jsonl j;
    Decoder d;
    Judgment *res;
    char **inst, **resp;
    uint64_t *seeds;
    Buf b = {0, 0, 0};
    int i, s, fails = 0, samples = 0, unscored = 0;
    if (wants_help(argc, argv)) { free(o.used); fputs(judge_help, stdout); return 0; }
    model_path = opt_str(&o, "--model", NULL);
    tok_path = opt_str(&o, "--tokenizer", NULL);
    tpl_path = opt_str(&o, "--template", NULL);
    in_path = opt_str(&o, "--input", NULL);
    out_path = opt_str(&o, "--out", NULL);
    seed = opt_u64(&o, "--seed", 1);
    judge_config_from_opts(&jc, &o);
    opts_done(&o);
    if (!model_path || !tok_path || !tpl_path || !in_path) die("judge: --model, --tokenizer, --template and --input are required");
    judge_template_load(&jt, tpl_path);
    ckpt_load(&m, model_path, NULL);
    tokenizer_load(&tok, tok_path);
    tokenizer_check_model(&tok, tok_path, &m, model_path);
    jsonl_load(&j, in_path);
    inst = xcalloc((size_t)j.count, sizeof(char *)); resp = xcalloc((size_t)j.count, sizeof(char *));
    seeds = xcalloc((size_t)j.count, sizeof(uint64_t));
    res = xcalloc((size_t)j.count, sizeof(Judgment));
    for (i = 0; i < j.count; i++) {
        inst[i] = jsonl_str(&j, i, "instruction"); resp[i] = jsonl_str(&j, i, "response");
        seeds[i] = hash64(seed, (uint64_t)i);
    }
    decoder_init(&d, &m.cfg, 64, 1024);
    judge_many(&m, &d, &tok, &jt, j.count, inst, resp, seeds, &jc, 1, res);
    for (i = 0; i < j.count; i++) {
        int shown = res[i].n_valid + res[i].n_failed;
        buf_printf(&b, "{\"index\": %d, \"score\": ", i);
        if (res[i].has_score) buf_printf(&b, "%.9g", (double)res[i].score); else buf_str(&b, "null");
        buf_printf(&b, ", \"valid\": %d, \"failed\": %d, \"too_long\": %s, \"judgments\": [", res[i].n_valid,
                   res[i].n_failed, res[i].too_long ? "true" : "false");
        for (s = 0; s < shown; s++) {
            float sc;
            if (s) buf_str(&b, ", ");
            buf_str(&b, "{\"text\": ");
            json_put_string(&b, res[i].judgments[s], strlen(res[i].judgments[s]));
            if (judge_score_parse(res[i].judgments[s], strlen(res[i].judgments[s]), &sc)) buf_printf(&b, ", \"score\": %.9g}", (double)sc);
            else buf_str(&b, ", \"score\": null}");
        }
        buf_str(&b, "]}\n");
        fails += res[i].n_failed; samples += shown; unscored += !res[i].has_score;
        judgment_free(&res[i], jc.samples);
        free(inst[i]); free(resp[i]);
    }
    if (out_path) { if (write_file_atomic(out_path, b.p, b.n) != 0) return 1; }
    else fwrite(b.p, 1, b.n, stdout);
    fprintf(stderr, "judge: %d records, %d judgments, %d parse failures (%.1f%%), %d records without a score\n",
            j.count, samples, fails, samples ? 100.0 * fails / samples : 0.0, unscored);
    free(b.p); free(inst); free(resp); free(seeds); free(res); free(jt.text);
    jsonl_free(&j); decoder_free(&d); tok_free(&tok); model_free(&m);
    return 0;
}

static const char *chat_help =
    "usage: srlm chat --model CKPT --tokenizer TOK [options]\n"
    "Talk to a model in the terminal, in srlm's chat format. Each line typed is a\n"
    "user turn; the reply streams as it is generated and ends at <|eot|>.\n"
    "/reset forgets the conversation; /quit or the end of input ends the chat.\n"
    "  --temperature 0    0 = greedy (like srlm answer); else sample with --top-p 1,\n"
    "                     turn t drawing from seed --seed + t\n"
    "  --max-new 256      longest reply in tokens\n"
    "  --system TEXT      a system message, kept as its own first turn (<|user|>TEXT<|eot|>,\n"
    "                     as the exported chat templates render it)\n"
    "  --ids              print each reply as token ids (one line) instead of text\n"
    "srlm chat --judge --model CKPT --tokenizer TOK --template FILE [--samples 3\n"
    "          --temperature 0.7 --top-p 0.9 --max-new 192 --seed 1]\n"
    "  reads an instruction line, then a response line; prints each judgment and\n"
    "  its parsed score, then the mean (as srlm judge), and repeats\n";

/* One line of stdin without its line end (\n or \r\n); NULL at the end of input. */
static char *read_line(void) {
    Buf b = {0, 0, 0};
    int c;
    while ((c = getchar()) != EOF && c != '\n') { char ch = (char)c; buf_put(&b, &ch, 1); }
    if (c == EOF && b.n == 0) { free(b.p); return NULL; }
    if (b.n && b.p[b.n - 1] == '\r') b.n--;
    buf_put(&b, "", 1);
    return (char *)b.p;
}

typedef struct { const Tokenizer *tok; int ids; int count; } ChatStream;

/* Print each reply token as it comes: its bytes, or its id. */
static void chat_stream_token(int seq, int id, void *ctx) {
    ChatStream *cs = ctx;
    size_t len;
    const uint8_t *b = tok_token_bytes(cs->tok, id, &len);
    (void)seq;
    if (cs->ids) printf(cs->count ? " %d" : "%d", id);
    else if (b && len && fwrite(b, 1, len, stdout) != len) die("stdout: write failed");
    cs->count++;
    if (fflush(stdout) != 0) die("stdout: write failed");
}

static void chat_judge(const Model *m, const Tokenizer *tok, const JudgeTemplate *jt, const JudgeConfig *jc, uint64_t seed) {
    Decoder d;
    int turn = 0, s;
    char *inst, *resp;
    decoder_init(&d, &m->cfg, jc->samples, 1024);
    for (;;) {
        Judgment res;
        uint64_t item_seed = hash64(seed, (uint64_t)turn);
        fputs("instruction> ", stderr);
        if (!(inst = read_line())) break;
        fputs("response> ", stderr);
        if (!(resp = read_line())) { free(inst); break; }
        judge_many(m, &d, tok, jt, 1, &inst, &resp, &item_seed, jc, 1, &res);
        if (res.too_long) printf("the judge prompt does not fit the context (%d tokens)\n", m->cfg.max_seq_len);
        for (s = 0; s < res.n_valid + res.n_failed; s++) {
            printf("--- judgment %d\n%s\n", s + 1, res.judgments[s]);
            if (res.sample_flag[s] & 1) printf("parsed score: %.9g\n", (double)res.sample_score[s]);
            else printf("parsed score: none (no \"Score: N\" line)\n");
        }
        if (res.has_score) printf("=== score %.9g (mean of %d valid of %d)\n", (double)res.score, res.n_valid, jc->samples);
        else printf("=== no score (no judgment parsed)\n");
        if (fflush(stdout) != 0) die("stdout: write failed");
        judgment_free(&res, jc->samples);
        free(inst); free(resp);
        turn++;
    }
    decoder_free(&d);
}

/* The conversation is one id sequence in the chat format: <|bos|>, then
 * <|user|>text<|eot|><|assistant|>reply<|eot|> per turn. A single turn is
 * exactly chat_prompt's prompt, so the reply equals srlm answer's. */
static void chat_talk(const Model *m, const Tokenizer *tok, const char *system, int max_new, float temperature,
                      float top_p, uint64_t seed, int ids_out) {
    int T = m->cfg.max_seq_len, n = 0, cap = T + 8, turn = 0, *conv = xmalloc((size_t)cap * sizeof(int));
    int stops[2] = {TOK_EOT, TOK_EOS}, *out = NULL, olen = 0;
    GenConfig g;
    Decoder d;
    ChatStream cs;
    char *line;
    g.max_new = max_new; g.temperature = temperature; g.top_p = top_p; g.stops = stops; g.n_stops = 2;
    cs.tok = tok; cs.ids = ids_out;
    decoder_init(&d, &m->cfg, 1, 512);
    for (;;) {
        size_t len, k, room;
        int *text;
        if (n == 0) {   /* a fresh conversation */
            conv[n++] = TOK_BOS;
            if (system) {
                text = encode_text(tok, (const uint8_t *)system, strlen(system), &len);
                if (len + 3 >= (size_t)T) die("chat: the system message (%lu tokens) does not fit the context (%d)", (unsigned long)len, T);
                conv[n++] = TOK_USER;
                for (k = 0; k < len; k++) conv[n++] = text[k];
                conv[n++] = TOK_EOT;
                free(text);
            }
        }
        fputs("> ", stderr);
        if (!(line = read_line())) break;
        if (strcmp(line, "/quit") == 0) { free(line); break; }
        if (strcmp(line, "/reset") == 0) { free(line); n = 0; fputs("(conversation reset)\n", stderr); continue; }
        text = encode_text(tok, (const uint8_t *)line, strlen(line), &len);
        free(line);
        room = (size_t)(T - n);
        if (len + 4 >= room) {
            fprintf(stderr, "srlm: chat: this turn (%lu tokens) does not fit the rest of the context (%d of %d used); "
                            "/reset to start over\n", (unsigned long)len, n, T);
            free(text);
            continue;
        }
        conv[n++] = TOK_USER;
        for (k = 0; k < len; k++) conv[n++] = text[k];
        conv[n++] = TOK_EOT;
        conv[n++] = TOK_ASSISTANT;
        free(text);
        cs.count = 0;
        gen_stream = chat_stream_token; gen_stream_ctx = &cs;
        {
            uint64_t s = seed + (uint64_t)turn;
            int *p = conv;
            generate(m, &d, 1, &p, &n, &s, &g, &out, &olen);
        }
        gen_stream = NULL; gen_stream_ctx = NULL;
        printf("\n");
        if (fflush(stdout) != 0) die("stdout: write failed");
        /* the reply and its <|eot|> join the conversation (as far as the context holds them) */
        for (k = 0; k < (size_t)olen && n < T; k++) conv[n++] = out[k];
        if (n < T) conv[n++] = TOK_EOT;
        free(out);
        turn++;
    }
    decoder_free(&d);
    free(conv);
}

static int cmd_chat(int argc, char **argv) {
    Opts o = opts_make(argc, argv, "chat");
    const char *model_path, *tok_path, *tpl_path = NULL, *system = NULL;
    int judge, ids_out = 0, max_new = 256;
    float temperature = 0.0f, top_p = 1.0f;
    uint64_t seed;
    JudgeConfig jc = judge_config_default();
    Model m;
    Tokenizer tok;
    if (wants_help(argc, argv)) { free(o.used); fputs(chat_help, stdout); return 0; }
    model_path = opt_str(&o, "--model", NULL);
    tok_path = opt_str(&o, "--tokenizer", NULL);
    judge = opt_flag(&o, "--judge");
    seed = opt_u64(&o, "--seed", 1);
    if (judge) {
        tpl_path = opt_str(&o, "--template", NULL);
        judge_config_from_opts(&jc, &o);
        opts_done(&o);
        if (!model_path || !tok_path || !tpl_path) die("chat --judge: --model, --tokenizer and --template are required");
    } else {
        system = opt_str(&o, "--system", NULL);
        max_new = opt_int(&o, "--max-new", 256, 1, 65536);
        temperature = opt_float(&o, "--temperature", 0.0f, 0.0f, 100.0f);
        top_p = opt_float(&o, "--top-p", 1.0f, 0.0f, 1.0f);
        ids_out = opt_flag(&o, "--ids");
        opts_done(&o);
        if (!model_path || !tok_path) die("chat: --model and --tokenizer are required (see 'srlm chat --help')");
    }
    ckpt_load(&m, model_path, NULL);
    tokenizer_load(&tok, tok_path);
    tokenizer_check_model(&tok, tok_path, &m, model_path);
    if (judge) {
        JudgeTemplate jt;
        judge_template_load(&jt, tpl_path);
        chat_judge(&m, &tok, &jt, &jc, seed);
        free(jt.text);
    } else chat_talk(&m, &tok, system, max_new, temperature, top_p, seed, ids_out);
    tok_free(&tok);
    model_free(&m);
    return 0;
}

static const char *answer_help =
    "usage: srlm answer --model CKPT --tokenizer TOK --input PROMPTS.jsonl [--out ANSWERS.jsonl] [options]\n"
    "The model answers each {\"instruction\"} record in the chat format; writes\n"
    "{\"index\", \"instruction\", \"response\", \"tokens\"} lines (the input to a grader).\n"
    "  --max-new 64       longest answer in tokens\n"
    "  --temperature 0    0 = greedy (as the run's evaluation); else sample with --top-p 1 --seed 1\n"
    "  --raw FIELD        no chat format: continue the raw text of FIELD (after <|bos|>) up to the\n"
    "                     end of the line; the response is that text plus the continuation\n";

static int cmd_answer(int argc, char **argv) {
    Opts o = opts_make(argc, argv, "answer");
    const char *model_path, *tok_path, *in_path, *out_path, *raw;
    int max_new, n, *ntok;
    float temperature, top_p;
    uint64_t seed;
    Model m;
    Tokenizer tok;
    char **inst, **ans;
    Buf b = {0, 0, 0};
    if (wants_help(argc, argv)) { free(o.used); fputs(answer_help, stdout); return 0; }
    model_path = opt_str(&o, "--model", NULL);
    tok_path = opt_str(&o, "--tokenizer", NULL);
    in_path = opt_str(&o, "--input", NULL);
    out_path = opt_str(&o, "--out", NULL);
    max_new = opt_int(&o, "--max-new", 64, 1, 65536);
    temperature = opt_float(&o, "--temperature", 0.0f, 0.0f, 10.0f);
    top_p = opt_float(&o, "--top-p", 1.0f, 0.0f, 1.0f);
    seed = opt_u64(&o, "--seed", 1);
    raw = opt_str(&o, "--raw", NULL);
    opts_done(&o);
    if (!model_path || !tok_path || !in_path) die("answer: --model, --tokenizer and --input are required");
    ckpt_load(&m, model_path, NULL);
    tokenizer_load(&tok, tok_path);
    tokenizer_check_model(&tok, tok_path, &m, model_path);
    inst = load_field(in_path, "instruction", &n);
    ntok = xcalloc((size_t)(n ? n : 1), sizeof(int));
    if (raw) {
        char **pre = load_field(in_path, raw, &n);
        ans = continue_lines(&m, &tok, pre, n, max_new, ntok);
        free_strings(pre, n);
    } else {
        ans = answer_prompts(&m, &tok, inst, n, max_new, temperature, top_p, seed, ntok);
    }
    answers_jsonl(&b, inst, ans, ntok, n, in_path, m.cfg.max_seq_len);
    if (out_path) { if (write_file_atomic(out_path, b.p ? b.p : (uint8_t *)"", b.n) != 0) return 1; }
    else fwrite(b.p, 1, b.n, stdout);
    free(b.p); free(ntok);
    free_strings(inst, n); free_strings(ans, n);
    tok_free(&tok);
    model_free(&m);
    return 0;
}

static const char *eval_rm_help =
    "usage: srlm eval-rm --model CKPT --tokenizer TOK --template FILE --data RANKED.jsonl [options]\n"
    "Reward-model metrics (the paper's Table 4): the model judges every response of\n"
    "every ranked set {\"instruction\", \"responses\": [...], \"grades\": [...]}.\n"
    "  --samples 3 --temperature 0.7 --top-p 0.9 --max-new 192 --seed 1\n"
    "  --limit N          judge only the first N sets\n";

static int cmd_eval_rm(int argc, char **argv) {
    Opts o = opts_make(argc, argv, "eval-rm");
    const char *model_path, *tok_path, *tpl_path, *data;
    JudgeConfig jc = judge_config_default();
    uint64_t seed;
    int limit;
    Model m;
    Tokenizer tok;
    JudgeTemplate jt;
    RmResult r;
    char hex[65];
    if (wants_help(argc, argv)) { free(o.used); fputs(eval_rm_help, stdout); return 0; }
    model_path = opt_str(&o, "--model", NULL);
    tok_path = opt_str(&o, "--tokenizer", NULL);
    tpl_path = opt_str(&o, "--template", NULL);
    data = opt_str(&o, "--data", NULL);
    seed = opt_u64(&o, "--seed", 1);
    limit = opt_int(&o, "--limit", 0, 0, 1 << 30);
    judge_config_from_opts(&jc, &o);
    opts_done(&o);
    if (!model_path || !tok_path || !tpl_path || !data) die("eval-rm: --model, --tokenizer, --template and --data are required");
    judge_template_load(&jt, tpl_path);
    ckpt_load(&m, model_path, hex);
    tokenizer_load(&tok, tok_path);
    tokenizer_check_model(&tok, tok_path, &m, model_path);
    r = eval_reward_model(&m, &tok, &jt, data, &jc, seed, limit);
    printf("model %s (sha256 %.16s...)\n", model_path, hex);
    printf("ranked sets %d, responses %d, judgments %d, parse failures %d (%.2f%%), unscored responses %d\n",
           r.m.sets, r.responses, r.judgments, r.failures, r.judgments ? 100.0 * r.failures / r.judgments : 0.0, r.unscored);
    printf("| pairwise acc %% | 5-best %% | exact match %% | Spearman | Kendall tau |\n");
    printf("| %.1f | %.1f | %.1f | %.3f | %.3f |\n", 100.0 * r.m.pair_acc, 100.0 * r.m.best5, 100.0 * r.m.exact,
           r.m.spearman, r.m.kendall);
    free(jt.text);
    tok_free(&tok);
    model_free(&m);
    return 0;
}

/* --- srlm tokenizer train | encode | decode ---
 * cmd_tokenizer gets the arguments after "tokenizer" (argv[0] = subcommand). */

static const char *tokenizer_help =
    "usage: srlm tokenizer train  --input CORPUS (--merges N | --vocab V) --out TOK [--no-presplit]\n"
    "       srlm tokenizer encode --tokenizer TOK [--input TEXT]\n"
    "       srlm tokenizer decode --tokenizer TOK [--input IDS]\n"
    "Byte-level BPE. Ids 0..255 are bytes, 256..263 special tokens (<|bos|> <|eos|> <|user|>\n"
    "<|assistant|> <|eot|> and 3 reserved), 264+i is merge i. 'srlm tokenizer SUB --help' for each.\n";

static const char *tokenizer_train_help =
    "usage: srlm tokenizer train --input CORPUS (--merges N | --vocab V) --out TOK [--no-presplit]\n"
    "Learn byte-level BPE merges from the bytes of CORPUS and write the tokenizer file TOK.\n"
    "  --merges N      learn up to N merges (fewer if the corpus runs out of pairs)\n"
    "  --vocab V       the same as --merges V-264\n"
    "  --no-presplit   let merges cross word/digit/punctuation/newline boundaries\n"
    "Same corpus and options give a byte-identical file on every machine.\n";

static const char *tokenizer_encode_help =
    "usage: srlm tokenizer encode --tokenizer TOK [--input TEXT]\n"
    "Print the token ids of the bytes of TEXT (default: stdin), space-separated, one line.\n"
    "Text that spells a marker such as <|user|> is encoded as plain bytes.\n";

static const char *tokenizer_decode_help =
    "usage: srlm tokenizer decode --tokenizer TOK [--input IDS]\n"
    "Read decimal token ids separated by whitespace from IDS (default: stdin) and write\n"
    "their bytes to stdout. Special ids print as their spelling; ids outside the vocabulary\n"
    "are skipped with a warning.\n";

/* All of stdin, like read_file. */
static uint8_t *tokenizer_read_stdin(size_t *n) {
    size_t cap = 1 << 16, len = 0, got;
    uint8_t *buf = xmalloc(cap);
    while ((got = fread(buf + len, 1, cap - len, stdin)) > 0) {
        len += got;
        if (len == cap && cap >= READ_MAX_STREAM) die("stdin: longer than %lu MiB; give the text as a file", (unsigned long)(READ_MAX_STREAM >> 20));
        if (len == cap) {
            cap *= 2;
            buf = realloc(buf, cap);
            if (!buf) die("stdin: out of memory");
        }
    }
    if (ferror(stdin)) die("stdin: read error");
    *n = len;
    return buf;
}

static uint8_t *tokenizer_read_input(const char *path, size_t *n) {
    uint8_t *data;
    if (!path) return tokenizer_read_stdin(n);
    if (read_file(path, &data, n) != 0) exit(1);
    return data;
}

static int tokenizer_train_cmd(int argc, char **argv) {
    Opts o = opts_make(argc, argv, "tokenizer train");
    const char *in_path, *out_path;
    int merges, learned, presplit, has_merges, has_vocab;
    uint8_t *text, *file, digest[32];
    size_t n, file_n;
    char hex[65];
    double t0;
    Tokenizer tok;
    if (wants_help(argc, argv)) { free(o.used); fputs(tokenizer_train_help, stdout); return 0; }
    in_path = opt_str(&o, "--input", NULL);
    out_path = opt_str(&o, "--out", NULL);
    has_merges = opt_str(&o, "--merges", NULL) != NULL;
    has_vocab = opt_str(&o, "--vocab", NULL) != NULL;
    merges = has_merges ? opt_int(&o, "--merges", 0, 0, TOK_MAX_MERGES) : 0;
    if (has_vocab) merges = opt_int(&o, "--vocab", 0, TOK_FIRST_MERGE, TOK_FIRST_MERGE + TOK_MAX_MERGES) - TOK_FIRST_MERGE;
    presplit = !opt_flag(&o, "--no-presplit");
    opts_done(&o);
    if (!in_path || !out_path) die("tokenizer train: --input and --out are required (see 'srlm tokenizer train --help')");
    if (has_merges == has_vocab) die("tokenizer train: give exactly one of --merges N or --vocab V");
    text = tokenizer_read_input(in_path, &n);
    t0 = now_seconds();
    learned = tok_train(&tok, text, n, merges, presplit);
    if (learned < 0) die("%s: corpus too large to train on (distinct chunks must hold < 2^31 bytes)", in_path);
    tok_serialize(&tok, &file, &file_n);
    if (write_file_atomic(out_path, file, file_n) != 0) exit(1);
    sha256(file, file_n, digest);
    sha256_hex(digest, hex);
    fprintf(stderr, "srlm: tokenizer: %d merges (vocab %d) from %lu bytes in %.2f s%s -> %s sha256 %s\n",
            learned, tok_vocab_size(&tok), (unsigned long)n, now_seconds() - t0,
            learned < merges ? " (no pairs left)" : "", out_path, hex);
    tok_free(&tok);
    free(file);
    free(text);
    return 0;
}

static int tokenizer_encode_cmd(int argc, char **argv) {
    Opts o = opts_make(argc, argv, "tokenizer encode");
    const char *tok_path, *in_path;
    uint8_t *text;
    size_t n, nids, i;
    int *ids;
    Tokenizer tok;
    if (wants_help(argc, argv)) { free(o.used); fputs(tokenizer_encode_help, stdout); return 0; }
    tok_path = opt_str(&o, "--tokenizer", NULL);
    in_path = opt_str(&o, "--input", NULL);
    opts_done(&o);
    if (!tok_path) die("tokenizer encode: --tokenizer is required (see 'srlm tokenizer encode --help')");
    tokenizer_load(&tok, tok_path);
    text = tokenizer_read_input(in_path, &n);
    ids = xmalloc((n ? n : 1) * sizeof *ids);
    nids = tok_encode(&tok, text, n, ids);
    for (i = 0; i < nids; i++) printf(i ? " %d" : "%d", ids[i]);
    printf("\n");
    if (fflush(stdout) != 0) die("stdout: write failed");
    tok_free(&tok);
    free(ids);
    free(text);
    return 0;
}

static int tokenizer_is_space(uint8_t c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

/* Whitespace-separated decimal ids -> array; anything else is an error. */
static int *tokenizer_parse_ids(const uint8_t *text, size_t n, const char *source, size_t *n_ids) {
    int *ids = xmalloc((n / 2 + 1) * sizeof *ids); /* each id needs a digit and a separator */
    size_t i = 0, k = 0;
    while (i < n) {
        char num[24];
        size_t j = 0;
        long v;
        char *end;
        if (tokenizer_is_space(text[i])) { i++; continue; }
        while (i < n && !tokenizer_is_space(text[i])) {
            if (j + 1 < sizeof num) num[j] = (char)text[i];
            i++; j++;
        }
        if (j >= sizeof num) die("tokenizer decode: %s: token id too long", source);
        num[j] = 0;
        errno = 0;
        v = strtol(num, &end, 10);
        if (*end || end == num || errno || v < -2147483647L - 1 || v > 2147483647L)
            die("tokenizer decode: %s: '%s' is not a token id", source, num);
        ids[k++] = (int)v;
    }
    *n_ids = k;
    return ids;
}

static int tokenizer_decode_cmd(int argc, char **argv) {
    Opts o = opts_make(argc, argv, "tokenizer decode");
    const char *tok_path, *in_path;
    uint8_t *text, *out;
    size_t n, nids, need, bad;
    int *ids;
    Tokenizer tok;
    if (wants_help(argc, argv)) { free(o.used); fputs(tokenizer_decode_help, stdout); return 0; }
    tok_path = opt_str(&o, "--tokenizer", NULL);
    in_path = opt_str(&o, "--input", NULL);
    opts_done(&o);
    if (!tok_path) die("tokenizer decode: --tokenizer is required (see 'srlm tokenizer decode --help')");
    tokenizer_load(&tok, tok_path);
    text = tokenizer_read_input(in_path, &n);
    ids = tokenizer_parse_ids(text, n, in_path ? in_path : "stdin", &nids);
    bad = tok_count_invalid(&tok, ids, nids);
    if (bad) fprintf(stderr, "srlm: warning: skipped %lu ids outside [0, %d)\n", (unsigned long)bad, tok_vocab_size(&tok));
    need = tok_decode(&tok, ids, nids, NULL, 0);
    out = xmalloc(need);
    tok_decode(&tok, ids, nids, out, need);
    if ((need && fwrite(out, 1, need, stdout) != need) || fflush(stdout) != 0) die("stdout: write failed");
    tok_free(&tok);
    free(out);
    free(ids);
    free(text);
    return 0;
}

static int cmd_tokenizer(int argc, char **argv) {
    if (argc < 1) { fputs(tokenizer_help, stderr); return 1; }
    if (strcmp(argv[0], "train") == 0) return tokenizer_train_cmd(argc - 1, argv + 1);
    if (strcmp(argv[0], "encode") == 0) return tokenizer_encode_cmd(argc - 1, argv + 1);
    if (strcmp(argv[0], "decode") == 0) return tokenizer_decode_cmd(argc - 1, argv + 1);
    if (strcmp(argv[0], "--help") == 0 || strcmp(argv[0], "-h") == 0) { fputs(tokenizer_help, stdout); return 0; }
    fprintf(stderr, "srlm: tokenizer: unknown subcommand '%s'\n", argv[0]);
    fputs(tokenizer_help, stderr);
    return 1;
}

/* ==========================================================================
 * 18. Reference vectors for other backends; export and import
 *
 * `srlm vectors` writes what a faster backend or a port must reproduce, for
 * one checkpoint and one token batch with a loss mask: the logits, per-token
 * log-probs, the loss, every parameter gradient, the weights after one AdamW
 * step, one DPO pair's loss and gradients (against a reference model), and
 * seeded sampling traces (each step's logits, uniform draw and token). The
 * pack is a text manifest NAME.txt and little-endian data NAME.bin (README
 * "Reference vectors"); tests/torch_check.py recomputes it in PyTorch.
 *
 * `srlm export` writes a checkpoint in three other formats:
 *   hf       model.safetensors + config.json + tokenizer.json (+ tokenizer_config.json): LlamaForCausalLM
 *   llama2c  model.bin (llama2.c's legacy v0 layout, which run.c reads) + tokenizer.bin
 *   gguf     model.gguf (GGUF v3, F32 tensors, llama.* keys, gpt2-style BPE vocab)
 * and `srlm import` reads hf (F32, F16, BF16), llama2c and gguf (F32, F16, BF16, Q8_0, Q4_0).
 *
 * RoPE layout. srlm rotates interleaved pairs (2i, 2i+1) of each head, as
 * Meta's and llama2.c's code do and as GGUF files store them (llama.cpp's
 * converter permutes Hugging Face's q/k back to this layout). Hugging Face's
 * Llama rotates the halves (i, i + hd/2) instead. The two compute the same
 * attention when the rows of wq and wk are permuted within each head:
 *   HF row h*hd + a*hd/2 + i  =  srlm row h*hd + 2i + a      (a = 0, 1)
 * The HF exporter applies this and the HF importer undoes it; nothing else
 * in srlm knows about it.
 *
 * Round trips. export -> import reproduces a checkpoint byte for byte: the
 * config travels in each format's own fields (floats are printed so that
 * they parse back to the same bits) and the provenance text in the
 * safetensors "__metadata__" key "srlm.meta" or the GGUF key "srlm.meta".
 * llama2.c's file has no room for either: its run.c fixes rope_theta 10000
 * and norm_eps 1e-5 (export refuses other values) and import writes the
 * meta "srlm import llama2c" unless --meta says otherwise.
 *
 * Every reader below validates before it trusts: a malformed file gives one
 * line naming the fault, never a crash or an allocation sized by the file.
 * Paper step: none; what lets a faster port or another framework check itself
 * against srlm and carry its models.
 * ========================================================================== */

static char xf_msg[400];

/* Format a fault into a static buffer and return it (NULL means success). */
static const char *xf_fail(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(xf_msg, sizeof xf_msg, fmt, ap);
    va_end(ap);
    return xf_msg;
}

/* Where parameter tensor p (and layer, when >= 0) starts in the parameter block. */
static size_t param_offset(const Config *c, int p, int layer) {
    size_t sizes[N_PTENSORS], off = 0;
    int i;
    param_sizes(c, sizes);
    for (i = 0; i < p; i++) off += sizes[i];
    if (layer >= 0) off += (size_t)layer * (sizes[p] / (size_t)c->n_layers);
    return off;
}

/* A parameter tensor's shape as srlm stores it (layers outermost); returns ndim. */
static int param_shape(const Config *c, int p, int dims[3]) {
    int C = c->dim, F = c->hidden_dim, V = c->vocab_size, L = c->n_layers, KVC = cfg_kv_dim(c);
    switch (p) {
    case P_TOK_EMB: case P_OUTPUT: dims[0] = V; dims[1] = C; return 2;
    case P_ATTN_NORM: case P_FFN_NORM: dims[0] = L; dims[1] = C; return 2;
    case P_WQ: case P_WO: dims[0] = L; dims[1] = C; dims[2] = C; return 3;
    case P_WK: case P_WV: dims[0] = L; dims[1] = KVC; dims[2] = C; return 3;
    case P_W1: case P_W3: dims[0] = L; dims[1] = F; dims[2] = C; return 3;
    case P_W2: dims[0] = L; dims[1] = C; dims[2] = F; return 3;
    default: dims[0] = C; return 1; /* final_norm */
    }
}

/* Shortest decimal that reads back as the same float (for JSON and text). */
static void fmt_float_exact(char out[32], float v) {
    int prec;
    for (prec = 6; prec <= 9; prec++) {
        snprintf(out, 32, "%.*g", prec, (double)v);
        if ((float)strtod(out, NULL) == v) return;
    }
}

/* --------------------------------------------------------------------------
 * Reference vectors
 * ------------------------------------------------------------------------ */

typedef struct { Buf text, data; } Pack;

static void pack_tensor(Pack *k, const char *name, int is_int, const void *src, int ndim, const int *dims) {
    size_t count = 1, i;
    int d;
    for (d = 0; d < ndim; d++) count *= (size_t)dims[d];
    buf_printf(&k->text, "tensor %s %s %lu", name, is_int ? "i32" : "f32", (unsigned long)k->data.n);
    for (d = 0; d < ndim; d++) buf_printf(&k->text, " %d", dims[d]);
    buf_str(&k->text, "\n");
    for (i = 0; i < count; i++) {
        if (is_int) buf_u32(&k->data, (uint32_t)((const int *)src)[i]);
        else buf_f32(&k->data, ((const float *)src)[i]);
    }
}
static void pack_f32(Pack *k, const char *name, const float *x, int ndim, int d0, int d1, int d2) {
    int dims[3];
    dims[0] = d0; dims[1] = d1; dims[2] = d2;
    pack_tensor(k, name, 0, x, ndim, dims);
}
static void pack_i32(Pack *k, const char *name, const int *x, int ndim, int d0, int d1) {
    int dims[2];
    dims[0] = d0; dims[1] = d1;
    pack_tensor(k, name, 1, x, ndim, dims);
}

/* One tensor per parameter tensor: PREFIX.<name>, from a block in storage layout. */
/* A float setting, printed so that it reads back as the same float. */
static void pack_param_f(Pack *k, const char *name, float v) {
    char tmp[32];
    fmt_float_exact(tmp, v);
    buf_printf(&k->text, "param %s %s\n", name, tmp);
}

static void pack_params(Pack *k, const Config *c, const char *prefix, const float *block) {
    size_t sizes[N_PTENSORS], off = 0;
    int p, dims[3], nd;
    char name[80];
    param_sizes(c, sizes);
    for (p = 0; p < N_PTENSORS; p++) {
        if (sizes[p] == 0) continue; /* the tied output: its gradient is in tok_embeddings */
        nd = param_shape(c, p, dims);
        snprintf(name, sizeof name, "%s.%s", prefix, param_names[p]);
        pack_tensor(k, name, 0, block + off, nd, dims);
        off += sizes[p];
    }
}

typedef struct {
    int batch, seq;
    uint64_t seed;
    float lr, beta, label_smoothing, nll_weight;
} VectorsConfig;

/* The batch: random ids; targets are random ids too, ~1 in 4 masked (-1),
 * the last position of every row always kept so each row has a loss. */
static void vectors_batch(const VectorsConfig *vc, int V, int *inputs, int *targets) {
    Rng r;
    int n, N = vc->batch * vc->seq;
    rng_init(&r, vc->seed, RNG_STREAM_DATA);
    for (n = 0; n < N; n++) inputs[n] = (int)rng_below(&r, (uint32_t)V);
    for (n = 0; n < N; n++) {
        int masked = rng_below(&r, 4) == 0 && n % vc->seq != vc->seq - 1;
        int id = (int)rng_below(&r, (uint32_t)V);
        targets[n] = masked ? -1 : id;
    }
}

/* Seeded sampling trace: prefill the prompt, then per step record the logits,
 * the uniform draw sample_token takes (-1 when greedy: no draw) and the token.
 * The tokens are checked against generate(), so the trace is srlm's sampling. */
static void vectors_sampling(Pack *k, const Model *m, const int *prompt, int plen, int steps, float temperature,
                             float top_p, uint64_t seed, int which) {
    int V = m->cfg.vocab_size, s, i, slot0 = 0, pos;
    float *lg = xmalloc((size_t)steps * V * sizeof(float)), *draws = xmalloc((size_t)steps * sizeof(float));
    float *probs = xmalloc((size_t)V * sizeof(float));
    int *idx = xmalloc((size_t)V * sizeof(int)), *toks = xmalloc((size_t)steps * sizeof(int));
    uint64_t *keys = xmalloc(2 * (size_t)V * sizeof(uint64_t));
    int *rpos = xmalloc((size_t)plen * sizeof(int)), *rslot = xcalloc((size_t)plen, sizeof(int));
    int *out, olen;
    const float *cur;
    char name[64];
    Decoder d;
    GenConfig g;
    Rng r;
    decoder_init(&d, &m->cfg, 1, plen);
    rng_init(&r, seed, RNG_STREAM_SAMPLE);
    for (i = 0; i < plen; i++) rpos[i] = i;
    decoder_step(m, &d, prompt, rpos, rslot, plen);
    cur = d.logits + (size_t)(plen - 1) * V;
    for (s = 0; s < steps; s++) {
        memcpy(lg + (size_t)s * V, cur, (size_t)V * sizeof(float));
        if (temperature > 0.0f) { Rng peek = r; draws[s] = rng_uniform(&peek); }
        else draws[s] = -1.0f;
        toks[s] = sample_token(cur, V, temperature, top_p, &r, probs, idx, keys);
        if (s + 1 < steps) {
            pos = plen + s;
            decoder_step(m, &d, &toks[s], &pos, &slot0, 1);
            cur = d.logits;
        }
    }
    decoder_free(&d);
    g.max_new = steps; g.temperature = temperature; g.top_p = top_p; g.stops = NULL; g.n_stops = 0;
    decoder_init(&d, &m->cfg, 1, plen);
    {
        int *const prompts[1] = {(int *)prompt};
        generate(m, &d, 1, prompts, &plen, &seed, &g, &out, &olen);
    }
    decoder_free(&d);
    if (olen != steps || memcmp(out, toks, (size_t)steps * sizeof(int)) != 0)
        die("internal: sampling trace %d disagrees with generate()", which);
    snprintf(name, sizeof name, "sample.%d.temperature", which); pack_param_f(k, name, temperature);
    snprintf(name, sizeof name, "sample.%d.top_p", which); pack_param_f(k, name, top_p);
    buf_printf(&k->text, "param sample.%d.seed %llu\n", which, (unsigned long long)seed);
    snprintf(name, sizeof name, "sample.%d.logits", which); pack_f32(k, name, lg, 2, steps, V, 0);
    snprintf(name, sizeof name, "sample.%d.draws", which); pack_f32(k, name, draws, 1, steps, 0, 0);
    snprintf(name, sizeof name, "sample.%d.tokens", which); pack_i32(k, name, toks, 1, steps, 0);
    free(lg); free(draws); free(probs); free(idx); free(keys); free(toks); free(rpos); free(rslot); free(out);
}

/* One DPO pair, batch of 1, exactly the arithmetic of dpo_train: the
 * reference log-probs first (ref may be the policy itself), then the
 * policy's forward and backward with dL/d(token loss) on the response tokens. */
static void vectors_dpo(Pack *k, Model *m, Model *ref, const VectorsConfig *vc) {
    const Config *c = &m->cfg;
    int V = c->vocab_size, len_c = c->max_seq_len + 1 < 10 ? c->max_seq_len + 1 : 10, len_r = len_c - 1;
    int prompt_len = len_c / 3 > 0 ? len_c / 3 : 1, T, N, t, i, len_w;
    Example ex[2];
    const Example *rows[2];
    int *inputs = xmalloc((size_t)2 * c->max_seq_len * sizeof(int)), *targets = xmalloc((size_t)2 * c->max_seq_len * sizeof(int));
    float *dl, lp32[2], rp32[2], loss32;
    double lp[2], rp[2], rw, rl, z, dz, eps = vc->label_smoothing, loss;
    Rng r;
    rng_init(&r, hash64(vc->seed, 0x64706full), RNG_STREAM_DATA); /* "dpo" */
    ex[0].n = len_c; ex[1].n = len_r;
    for (i = 0; i < 2; i++) {
        ex[i].ids = xmalloc((size_t)ex[i].n * sizeof(int));
        ex[i].resp_start = prompt_len;
        for (t = 0; t < ex[i].n; t++) ex[i].ids[t] = (int)rng_below(&r, (uint32_t)V);
    }
    memcpy(ex[1].ids, ex[0].ids, (size_t)prompt_len * sizeof(int)); /* one prompt, two responses */
    rows[0] = &ex[0]; rows[1] = &ex[1];
    T = examples_to_rows(rows, 2, inputs, targets);
    N = 2 * T;
    model_forward(ref, inputs, targets, 2, T, 0);
    row_logps(ref, targets, 2, T, rp);
    model_forward(m, inputs, targets, 2, T, 0);
    row_logps(m, targets, 2, T, lp);
    rw = vc->beta * (lp[0] - rp[0]);
    rl = vc->beta * (lp[1] - rp[1]);
    z = rw - rl;
    dz = -(1.0 - eps) * sigmoid_d(-z) + eps * sigmoid_d(z);
    loss = (1.0 - eps) * softplus_d(-z) + eps * softplus_d(z);
    for (t = 0, len_w = 0; t < T; t++) len_w += targets[t] >= 0;
    if (vc->nll_weight > 0.0f) loss += (double)vc->nll_weight * (-lp[0]) / len_w; /* RPO, as dpo_train with P = 1 */
    dl = xcalloc((size_t)N, sizeof(float));
    for (t = 0; t < T; t++) {
        if (targets[t] >= 0) dl[t] = (float)(-vc->beta * dz + (double)vc->nll_weight / len_w);
        if (targets[T + t] >= 0) dl[T + t] = (float)(vc->beta * dz);
    }
    memset(m->grads, 0, m->n_params * sizeof(float));
    model_backward(m, dl, 0);
    pack_param_f(k, "dpo.beta", vc->beta);
    pack_param_f(k, "dpo.label_smoothing", vc->label_smoothing);
    if (vc->nll_weight > 0.0f) pack_param_f(k, "dpo.nll_weight", vc->nll_weight); /* absent when 0: older packs unchanged */
    buf_printf(&k->text, "param dpo.prompt_len %d\n", prompt_len);
    buf_printf(&k->text, "param dpo.loss %.17g\nparam dpo.logps %.17g %.17g\nparam dpo.ref_logps %.17g %.17g\n",
               loss, lp[0], lp[1], rp[0], rp[1]);
    pack_i32(k, "dpo.inputs", inputs, 2, 2, T);
    pack_i32(k, "dpo.targets", targets, 2, 2, T);
    lp32[0] = (float)lp[0]; lp32[1] = (float)lp[1]; rp32[0] = (float)rp[0]; rp32[1] = (float)rp[1];
    loss32 = (float)loss;
    pack_f32(k, "dpo.logps", lp32, 1, 2, 0, 0);
    pack_f32(k, "dpo.ref_logps", rp32, 1, 2, 0, 0);
    pack_f32(k, "dpo.loss", &loss32, 0, 0, 0, 0);
    pack_params(k, c, "dpo.grad", m->grads);
    free(ex[0].ids); free(ex[1].ids); free(inputs); free(targets); free(dl);
}

/* Build the whole pack in memory. m is restored to its loaded weights after
 * the AdamW step, so every part is computed from the checkpoint's weights. */
static void vectors_build(Pack *k, Model *m, Model *ref, const VectorsConfig *vc, const char *ckpt_sha,
                          const char *ref_sha) {
    const Config *c = &m->cfg;
    int B = vc->batch, T = vc->seq, N = B * T, V = c->vocab_size, n, count = 0, which, plen, steps;
    int *inputs = xcalloc((size_t)N, sizeof(int)), *targets = xcalloc((size_t)N, sizeof(int));
    float *logp = xmalloc((size_t)N * sizeof(float)), *dl = xmalloc((size_t)N * sizeof(float));
    float *saved = xmalloc(m->n_params * sizeof(float)), loss32, norm;
    double loss = 0.0;
    TrainConfig t = train_config_default();
    OptState os = {0, 1.0, 1.0};
    static const float settings[4][2] = {{1.0f, 1.0f}, {0.8f, 0.9f}, {0.7f, 0.5f}, {0.0f, 1.0f}};

    buf_str(&k->text, "srlm-vectors 1\n");
    buf_printf(&k->text, "param checkpoint.sha256 %s\nparam reference.sha256 %s\n", ckpt_sha, ref_sha);
    buf_printf(&k->text, "param model.dim %d\nparam model.n_layers %d\nparam model.n_heads %d\nparam model.n_kv_heads %d\n"
                         "param model.hidden_dim %d\nparam model.vocab_size %d\nparam model.max_seq_len %d\nparam model.tied %d\n",
               c->dim, c->n_layers, c->n_heads, c->n_kv_heads, c->hidden_dim, c->vocab_size, c->max_seq_len, c->tied);
    pack_param_f(k, "model.rope_theta", c->rope_theta);
    pack_param_f(k, "model.norm_eps", c->norm_eps);
    buf_printf(&k->text, "param batch.B %d\nparam batch.T %d\nparam batch.seed %llu\n", B, T, (unsigned long long)vc->seed);

    /* forward, log-probs, loss */
    vectors_batch(vc, V, inputs, targets);
    model_forward(m, inputs, targets, B, T, 0);
    for (n = 0; n < N; n++) {
        logp[n] = targets[n] >= 0 ? -m->a.losses[n] : 0.0f;
        if (targets[n] >= 0) { loss += m->a.losses[n]; count++; }
    }
    loss /= count;
    loss32 = (float)loss;
    pack_i32(k, "inputs", inputs, 2, B, T);
    pack_i32(k, "targets", targets, 2, B, T);
    pack_f32(k, "logits", m->a.logits, 3, B, T, V);
    pack_f32(k, "logprobs", logp, 2, B, T, 0);
    pack_f32(k, "loss", &loss32, 0, 0, 0, 0);
    buf_printf(&k->text, "param loss.count %d\nparam loss.value %.17g\n", count, loss);

    /* gradients of the mean loss, then one AdamW step */
    model_alloc_grads(m);
    memset(m->grads, 0, m->n_params * sizeof(float));
    for (n = 0; n < N; n++) dl[n] = targets[n] >= 0 ? 1.0f / (float)count : 0.0f;
    model_backward(m, dl, 0);
    pack_params(k, c, "grad", m->grads);
    memcpy(saved, m->params, m->n_params * sizeof(float));
    t.lr = vc->lr;
    norm = optimizer_step(m, &os, &t, t.lr);
    pack_param_f(k, "adamw.lr", t.lr);
    pack_param_f(k, "adamw.beta1", t.b1);
    pack_param_f(k, "adamw.beta2", t.b2);
    pack_param_f(k, "adamw.eps", t.eps);
    pack_param_f(k, "adamw.weight_decay", t.weight_decay);
    pack_param_f(k, "adamw.clip", t.clip);
    pack_param_f(k, "adamw.grad_norm", norm);
    pack_params(k, c, "adamw", m->params);
    memcpy(m->params, saved, m->n_params * sizeof(float));
    free(m->adam_m); free(m->adam_v);
    m->adam_m = m->adam_v = NULL;

    vectors_dpo(k, m, ref ? ref : m, vc);

    /* sampling: the first tokens of row 0 as the prompt */
    plen = T < 3 ? T : 3;
    steps = c->max_seq_len - plen < 8 ? c->max_seq_len - plen : 8;
    pack_i32(k, "sample.prompt", inputs, 1, plen, 0);
    if (steps > 0)
        for (which = 0; which < 4; which++)
            vectors_sampling(k, m, inputs, plen, steps, settings[which][0], settings[which][1], vc->seed, which);
    free(inputs); free(targets); free(logp); free(dl); free(saved);
}

/* Write NAME.bin and NAME.txt (the manifest names the data file, its size and SHA-256). */
static int vectors_write(Pack *k, const char *prefix) {
    size_t plen = strlen(prefix);
    char *bin = xmalloc(plen + 5), *txt = xmalloc(plen + 5), hex[65];
    const char *base = strrchr(prefix, '/');
    uint8_t dg[32];
    Buf head = {0, 0, 0};
    int rc;
    base = base ? base + 1 : prefix;
    snprintf(bin, plen + 5, "%s.bin", prefix);
    snprintf(txt, plen + 5, "%s.txt", prefix);
    sha256(k->data.p, k->data.n, dg);
    sha256_hex(dg, hex);
    buf_printf(&head, "data %s.bin %lu sha256 %s\n", base, (unsigned long)k->data.n, hex);
    /* the data line goes right after the first line */
    {
        uint8_t *nl = memchr(k->text.p, '\n', k->text.n);
        size_t first = (size_t)(nl - k->text.p) + 1;
        Buf all = {0, 0, 0};
        buf_put(&all, k->text.p, first);
        buf_put(&all, head.p, head.n);
        buf_put(&all, k->text.p + first, k->text.n - first);
        buf_str(&all, "end\n");
        rc = write_file_atomic(bin, k->data.p, k->data.n);
        if (rc == 0) rc = write_file_atomic(txt, all.p, all.n);
        free(all.p);
    }
    free(head.p); free(bin); free(txt);
    return rc;
}

static const char *vectors_help =
    "usage: srlm vectors --model CKPT --out NAME [options]\n"
    "Write reference vectors for checking another implementation: NAME.txt (a\n"
    "manifest: names, dtypes, byte offsets, shapes, settings) and NAME.bin\n"
    "(little-endian float32 / int32). README \"Reference vectors\" documents it.\n"
    "  --ref CKPT         DPO reference model (default: the model itself)\n"
    "  --batch 2 --seq 8  the token batch (B rows of T positions; seq <= context)\n"
    "  --seed 1           batch, DPO pair and sampling seed\n"
    "  --lr 1e-3          the AdamW step's learning rate (other settings: srlm's defaults)\n"
    "  --beta 0.1 --label-smoothing 0   DPO settings\n"
    "  --nll-weight 0     RPO's alpha (DPO + alpha * NLL(chosen) / |chosen|)\n";

static int cmd_vectors(int argc, char **argv) {
    Opts o = opts_make(argc, argv, "vectors");
    const char *model_path, *ref_path, *out;
    VectorsConfig vc;
    Model m, ref;
    Pack k;
    char sha[65], ref_sha[65];
    int rc;
    if (wants_help(argc, argv)) { free(o.used); fputs(vectors_help, stdout); return 0; }
    model_path = opt_str(&o, "--model", NULL);
    ref_path = opt_str(&o, "--ref", NULL);
    out = opt_str(&o, "--out", NULL);
    vc.batch = opt_int(&o, "--batch", 2, 1, 1024);
    vc.seq = opt_int(&o, "--seq", 8, 1, 65536);
    vc.seed = opt_u64(&o, "--seed", 1);
    vc.lr = opt_float(&o, "--lr", 1e-3f, 0.0f, 10.0f);
    vc.beta = opt_float(&o, "--beta", 0.1f, 0.0f, 1000.0f);
    vc.label_smoothing = opt_float(&o, "--label-smoothing", 0.0f, 0.0f, 0.5f);
    vc.nll_weight = opt_float(&o, "--nll-weight", 0.0f, 0.0f, 100.0f);
    opts_done(&o);
    if (!model_path || !out) die("vectors: --model and --out are required (see 'srlm vectors --help')");
    ckpt_load(&m, model_path, sha);
    if (m.cfg.max_seq_len < 2) die("vectors: %s: the context (%d) is too short", model_path, m.cfg.max_seq_len);
    if (vc.seq > m.cfg.max_seq_len) die("vectors: --seq %d exceeds the model context %d", vc.seq, m.cfg.max_seq_len);
    if (ref_path) {
        ckpt_load(&ref, ref_path, ref_sha);
        if (ref.cfg.vocab_size != m.cfg.vocab_size || ref.cfg.max_seq_len < m.cfg.max_seq_len)
            die("vectors: %s: the reference needs the model's vocabulary and at least its context", ref_path);
    } else {
        memcpy(ref_sha, sha, sizeof sha);
    }
    memset(&k, 0, sizeof k);
    vectors_build(&k, &m, ref_path ? &ref : NULL, &vc, sha, ref_sha);
    rc = vectors_write(&k, out);
    if (rc == 0) printf("%s.txt, %s.bin (%lu bytes)\n", out, out, (unsigned long)k.data.n);
    free(k.text.p); free(k.data.p);
    if (ref_path) model_free(&ref);
    model_free(&m);
    return rc ? 1 : 0;
}

/* --------------------------------------------------------------------------
 * The tensors of the Llama formats, by name
 * ------------------------------------------------------------------------ */

enum { XF_HF, XF_GGUF };

/* One exported tensor: where it lives in srlm's block and its (rows, cols). */
typedef struct {
    char name[80];
    int p, layer;        /* parameter tensor; layer, or -1 */
    size_t rows, cols;   /* cols == 0: a vector of rows entries */
    int rope_heads;      /* HF only: wq/wk rows hold RoPE pairs of this many heads */
} XTensor;

static void xt_set(XTensor *x, const char *name, int p, int layer, size_t rows, size_t cols, int rope_heads) {
    snprintf(x->name, sizeof x->name, "%s", name);
    x->p = p; x->layer = layer; x->rows = rows; x->cols = cols; x->rope_heads = rope_heads;
}
static size_t xt_count(const XTensor *x) { return x->rows * (x->cols ? x->cols : 1); }

/* The tensors of a config in file order: embeddings, each layer (attention
 * norm, q, k, v, o, FFN norm, gate, up, down), final norm, output (untied).
 * t needs room for 3 + 9 * n_layers entries. */
static int xt_list(const Config *c, int fmt, XTensor *t) {
    static const int order[9] = {P_ATTN_NORM, P_WQ, P_WK, P_WV, P_WO, P_FFN_NORM, P_W1, P_W3, P_W2};
    static const char *hf[9] = {"input_layernorm", "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj",
                                "self_attn.o_proj", "post_attention_layernorm", "mlp.gate_proj", "mlp.up_proj",
                                "mlp.down_proj"};
    static const char *gg[9] = {"attn_norm", "attn_q", "attn_k", "attn_v", "attn_output", "ffn_norm", "ffn_gate",
                                "ffn_up", "ffn_down"};
    size_t C = (size_t)c->dim, F = (size_t)c->hidden_dim, KVC = (size_t)cfg_kv_dim(c), V = (size_t)c->vocab_size;
    int n = 0, l, j, is_hf = fmt == XF_HF;
    char name[80];
    xt_set(&t[n++], is_hf ? "model.embed_tokens.weight" : "token_embd.weight", P_TOK_EMB, -1, V, C, 0);
    for (l = 0; l < c->n_layers; l++) {
        for (j = 0; j < 9; j++) {
            int p = order[j];
            size_t rows = p == P_WK || p == P_WV ? KVC : p == P_W1 || p == P_W3 ? F : C;
            size_t cols = p == P_ATTN_NORM || p == P_FFN_NORM ? 0 : p == P_W2 ? F : C;
            int heads = !is_hf ? 0 : p == P_WQ ? c->n_heads : p == P_WK ? c->n_kv_heads : 0;
            if (is_hf) snprintf(name, sizeof name, "model.layers.%d.%s.weight", l, hf[j]);
            else snprintf(name, sizeof name, "blk.%d.%s.weight", l, gg[j]);
            xt_set(&t[n++], name, p, l, rows, cols, heads);
        }
    }
    xt_set(&t[n++], is_hf ? "model.norm.weight" : "output_norm.weight", P_FINAL_NORM, -1, C, 0, 0);
    if (!c->tied) xt_set(&t[n++], is_hf ? "lm_head.weight" : "output.weight", P_OUTPUT, -1, V, C, 0);
    return n;
}

/* Copy a tensor between srlm's layout and the file's. For HF's wq/wk the
 * rows are permuted within each head (see the section comment). */
static void xt_copy(float *dst, const float *src, const XTensor *x, int to_file) {
    size_t cols = x->cols ? x->cols : 1, hd, h, i, a;
    if (!x->rope_heads) { memcpy(dst, src, xt_count(x) * sizeof(float)); return; }
    hd = x->rows / (size_t)x->rope_heads;
    for (h = 0; h < (size_t)x->rope_heads; h++)
        for (i = 0; i < hd / 2; i++)
            for (a = 0; a < 2; a++) {
                size_t srlm_row = h * hd + 2 * i + a, file_row = h * hd + a * (hd / 2) + i;
                if (to_file) memcpy(dst + file_row * cols, src + srlm_row * cols, cols * sizeof(float));
                else memcpy(dst + srlm_row * cols, src + file_row * cols, cols * sizeof(float));
            }
}

static const float *xt_src(const Model *m, const XTensor *x) { return m->params + param_offset(&m->cfg, x->p, x->layer); }

/* GPT-2's reversible byte -> printable code point map, which byte-level BPE
 * vocabularies (HF tokenizer.json, GGUF "gpt2") spell their tokens in. */
static uint32_t byte_cp(int b) {
    int i, k = 0;
    if ((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255)) return (uint32_t)b;
    for (i = 0; i < b; i++) if (!((i >= 33 && i <= 126) || (i >= 161 && i <= 172) || (i >= 174 && i <= 255))) k++;
    return 256u + (uint32_t)k;
}

/* A token as the byte-level vocab spells it (specials as themselves), appended to b. */
static void token_spelling(Buf *b, const Tokenizer *tok, int id) {
    size_t len, i;
    const uint8_t *s = tok_token_bytes(tok, id, &len);
    if (tok_special_name(id)) { buf_str(b, tok_special_name(id)); return; }
    for (i = 0; i < len; i++) utf8_put(b, byte_cp(s[i]));
}

/* The tokenizer an export writes: --tokenizer, or for a 264-id model the
 * byte-level vocabulary with no merges (srlm's "no tokenizer" mode). */
static void export_tokenizer(Tokenizer *tok, const char *path, int vocab) {
    if (path) {
        tokenizer_load(tok, path);
        if (tok_vocab_size(tok) != vocab) die("%s: tokenizer vocab %d does not match the model's %d", path, tok_vocab_size(tok), vocab);
    } else {
        if (vocab != TOK_FIRST_MERGE) die("export: the model's vocabulary (%d ids) needs its tokenizer: pass --tokenizer FILE", vocab);
        if (tok_train(tok, (const uint8_t *)"", 0, 0, 0) != 0) die("internal: empty tokenizer");
    }
}

/* Two ids with the same bytes (BPE can reach one string by two merge paths)
 * cannot both be keys of a string -> id vocabulary. Returns the later id or -1. */
typedef struct { const Tokenizer *tok; } TokCmpCtx;
static int cmp_token_bytes(const void *a, const void *b, void *ctx) {
    const Tokenizer *tok = ((const TokCmpCtx *)ctx)->tok;
    size_t la, lb;
    const uint8_t *sa = tok_token_bytes(tok, *(const int *)a, &la), *sb = tok_token_bytes(tok, *(const int *)b, &lb);
    int c = memcmp(sa, sb, la < lb ? la : lb);
    if (c) return c;
    return (la > lb) - (la < lb);
}
static int duplicate_spelling(const Tokenizer *tok, int *first) {
    int V = tok_vocab_size(tok), i, dup = -1, *ids = xmalloc((size_t)V * sizeof(int));
    TokCmpCtx cx;
    cx.tok = tok;
    for (i = 0; i < V; i++) ids[i] = i;
    stable_sort(ids, (size_t)V, sizeof(int), cmp_token_bytes, &cx);
    for (i = 1; i < V && dup < 0; i++)
        if (cmp_token_bytes(&ids[i - 1], &ids[i], &cx) == 0) { dup = ids[i]; *first = ids[i - 1]; }
    free(ids);
    return dup;
}

/* --------------------------------------------------------------------------
 * Hugging Face: model.safetensors, config.json, tokenizer.json
 *
 * safetensors: u64 header length N, N bytes of JSON (an object: per tensor
 * {"dtype", "shape", "data_offsets": [begin, end)} relative to the data,
 * plus "__metadata__" of string values), then the data. srlm writes F32 in
 * xt_list order, the header padded with spaces to a multiple of 8.
 * ------------------------------------------------------------------------ */

/* Export dtypes: F32 as stored, or rounded to F16 / BF16 (round to nearest,
 * ties to even, in integer arithmetic: the same bits on every machine). */
enum { XD_F32, XD_F16, XD_BF16 };

static uint16_t f32_to_bf16(float f) {
    uint32_t x = f32_bits(f);
    if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x40u);      /* NaN stays NaN */
    return (uint16_t)((x + 0x7fffu + ((x >> 16) & 1u)) >> 16);
}

static uint16_t f32_to_f16(float f) {
    uint32_t x = f32_bits(f), sign = (x >> 16) & 0x8000u, ax = x & 0x7fffffffu, e = ax >> 23, m, r, rem, half;
    if (ax > 0x7f800000u) return (uint16_t)(sign | 0x7e00u);                       /* NaN */
    if (ax >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u);                      /* >= 65520 rounds to inf */
    if (ax < 0x38800000u) {                                                        /* below 2^-14: subnormal or 0 */
        unsigned shift;
        if (ax <= 0x33000000u) return (uint16_t)sign;                              /* <= 2^-25 rounds to 0 */
        m = (ax & 0x7fffffu) | 0x800000u;
        shift = 126u - e;                                                          /* value / 2^-24 = m * 2^(e-126) */
        r = m >> shift; rem = m & ((1u << shift) - 1u); half = 1u << (shift - 1u);
        if (rem > half || (rem == half && (r & 1u))) r++;
        return (uint16_t)(sign | r);
    }
    r = ((e - 112u) << 10) | ((ax & 0x7fffffu) >> 13);
    rem = ax & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (r & 1u))) r++;                        /* a carry moves into the exponent */
    return (uint16_t)(sign | r);
}

static const char *dtype_name[3] = {"F32", "F16", "BF16"};

static void buf_value(Buf *b, float v, int dtype) {
    if (dtype == XD_F32) buf_f32(b, v);
    else {
        uint16_t h = dtype == XD_F16 ? f32_to_f16(v) : f32_to_bf16(v);
        uint8_t q[2];
        q[0] = (uint8_t)(h & 0xff); q[1] = (uint8_t)(h >> 8);
        buf_put(b, q, 2);
    }
}

static void st_build(Buf *out, const Model *m, const char *meta, int dtype) {
    XTensor *xt = xmalloc((size_t)(3 + 9 * m->cfg.n_layers) * sizeof(XTensor));
    int n = xt_list(&m->cfg, XF_HF, xt), i;
    Buf h = {0, 0, 0};
    size_t off = 0, j, most = 0;
    float *tmp;
    buf_str(&h, "{\"__metadata__\":{\"format\":\"pt\",\"srlm.meta\":");
    json_put_string(&h, meta, strlen(meta));
    buf_str(&h, "}");
    for (i = 0; i < n; i++) {
        size_t bytes = xt_count(&xt[i]) * (dtype == XD_F32 ? 4 : 2);
        buf_str(&h, ",");
        json_put_string(&h, xt[i].name, strlen(xt[i].name));
        buf_printf(&h, ":{\"dtype\":\"%s\",\"shape\":[%lu", dtype_name[dtype], (unsigned long)xt[i].rows);
        if (xt[i].cols) buf_printf(&h, ",%lu", (unsigned long)xt[i].cols);
        buf_printf(&h, "],\"data_offsets\":[%lu,%lu]}", (unsigned long)off, (unsigned long)(off + bytes));
        off += bytes;
        if (xt_count(&xt[i]) > most) most = xt_count(&xt[i]);
    }
    buf_str(&h, "}");
    while (h.n % 8) buf_put(&h, " ", 1);
    buf_u64(out, (uint64_t)h.n);
    buf_put(out, h.p, h.n);
    tmp = xmalloc(most * sizeof(float));
    buf_reserve(out, off);
    for (i = 0; i < n; i++) {
        xt_copy(tmp, xt_src(m, &xt[i]), &xt[i], 1);
        for (j = 0; j < xt_count(&xt[i]); j++) buf_value(out, tmp[j], dtype);
    }
    free(tmp); free(h.p); free(xt);
}

static void hf_config_build(Buf *b, const Config *c, int dtype) {
    char theta[32], eps[32];
    fmt_float_exact(theta, c->rope_theta);
    fmt_float_exact(eps, c->norm_eps);
    buf_printf(b, "{\n  \"architectures\": [\"LlamaForCausalLM\"],\n  \"model_type\": \"llama\",\n"
                  "  \"hidden_size\": %d,\n  \"intermediate_size\": %d,\n  \"num_hidden_layers\": %d,\n"
                  "  \"num_attention_heads\": %d,\n  \"num_key_value_heads\": %d,\n  \"head_dim\": %d,\n"
                  "  \"hidden_act\": \"silu\",\n  \"rms_norm_eps\": %s,\n  \"rope_theta\": %s,\n  \"rope_scaling\": null,\n"
                  "  \"max_position_embeddings\": %d,\n  \"vocab_size\": %d,\n  \"tie_word_embeddings\": %s,\n"
                  "  \"attention_bias\": false,\n  \"mlp_bias\": false,\n  \"bos_token_id\": %d,\n  \"eos_token_id\": %d,\n"
                  "  \"torch_dtype\": \"%s\",\n  \"initializer_range\": 0.02,\n  \"use_cache\": true\n}\n",
               c->dim, c->hidden_dim, c->n_layers, c->n_heads, c->n_kv_heads, cfg_head_dim(c), eps, theta,
               c->max_seq_len, c->vocab_size, c->tied ? "true" : "false", TOK_BOS, TOK_EOS,
               dtype == XD_F32 ? "float32" : dtype == XD_F16 ? "float16" : "bfloat16");
}

static void hf_tokenizer_build(Buf *b, const Tokenizer *tok) {
    /* srlm's pre-split rule (tokenizer.c section 2) is Hugging Face's Digits
     * (individual) then ByteLevel with GPT-2's regex; without pre-splitting,
     * ByteLevel alone without the regex. */
    static const char *bytelevel = "{\"type\":\"ByteLevel\",\"add_prefix_space\":false,\"trim_offsets\":false,\"use_regex\":false}";
    static const char *presplit = "{\"type\":\"Sequence\",\"pretokenizers\":[{\"type\":\"Digits\",\"individual_digits\":true},"
                                  "{\"type\":\"ByteLevel\",\"add_prefix_space\":false,\"trim_offsets\":false,\"use_regex\":true}]}";
    int V = tok_vocab_size(tok), i;
    buf_str(b, "{\"version\":\"1.0\",\"truncation\":null,\"padding\":null,\"added_tokens\":[");
    for (i = TOK_N_BYTES; i < TOK_FIRST_MERGE; i++)
        buf_printf(b, "%s{\"id\":%d,\"content\":\"%s\",\"single_word\":false,\"lstrip\":false,\"rstrip\":false,"
                      "\"normalized\":false,\"special\":true}", i > TOK_N_BYTES ? "," : "", i, tok_special_name(i));
    buf_str(b, "],\"normalizer\":null,\"pre_tokenizer\":");
    buf_str(b, tok->presplit ? presplit : bytelevel);
    /* every text begins with <|bos|>, as srlm's sequences do */
    buf_str(b, ",\"post_processor\":{\"type\":\"TemplateProcessing\",\"single\":[{\"SpecialToken\":{\"id\":\"<|bos|>\",\"type_id\":0}},"
               "{\"Sequence\":{\"id\":\"A\",\"type_id\":0}}],\"pair\":[{\"SpecialToken\":{\"id\":\"<|bos|>\",\"type_id\":0}},"
               "{\"Sequence\":{\"id\":\"A\",\"type_id\":0}},{\"SpecialToken\":{\"id\":\"<|bos|>\",\"type_id\":1}},"
               "{\"Sequence\":{\"id\":\"B\",\"type_id\":1}}],\"special_tokens\":{\"<|bos|>\":{\"id\":\"<|bos|>\",\"ids\":[256],"
               "\"tokens\":[\"<|bos|>\"]}}}");
    buf_printf(b, ",\"decoder\":%s,\"model\":{\"type\":\"BPE\",\"dropout\":null,\"unk_token\":null,"
                  "\"continuing_subword_prefix\":null,\"end_of_word_suffix\":null,\"fuse_unk\":false,\"byte_fallback\":false,"
                  "\"ignore_merges\":false,\"vocab\":{", bytelevel);
    for (i = 0; i < V; i++) {
        Buf s = {0, 0, 0};
        token_spelling(&s, tok, i);
        if (i) buf_str(b, ",");
        json_put_string(b, (const char *)s.p, s.n);
        buf_printf(b, ":%d", i);
        free(s.p);
    }
    buf_str(b, "},\"merges\":[");
    for (i = 0; i < tok->n_merges; i++) {
        Buf s = {0, 0, 0};
        token_spelling(&s, tok, tok->merges[2 * i]);
        buf_str(&s, " ");
        token_spelling(&s, tok, tok->merges[2 * i + 1]);
        if (i) buf_str(b, ",");
        json_put_string(b, (const char *)s.p, s.n);
        free(s.p);
    }
    buf_str(b, "]}}\n");
}

/* srlm's chat format (section 7) as a Jinja chat template, for
 * transformers' apply_chat_template, llama.cpp and node-llama-cpp:
 * <|bos|>, then per message <|user|>text<|eot|> or <|assistant|>text<|eot|>,
 * then <|assistant|> to prompt a reply. srlm models have no system role; a
 * system message is kept as its own turn, spelled as a user turn (srlm chat
 * --system does the same), never merged into the user's text. */
static const char *chat_template =
    "{{ bos_token }}{% for message in messages %}{% if message['role'] == 'assistant' %}"
    "{{ '<|assistant|>' + message['content'] + '<|eot|>' }}{% else %}"
    "{{ '<|user|>' + message['content'] + '<|eot|>' }}{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>' }}{% endif %}";

/* For transformers. Hugging Face's convention is that a special token's
 * spelling in text is that special token (the chat template relies on it);
 * srlm encodes such text as plain bytes (tests/README.md, Interoperability). Decoding
 * must give the bytes back unchanged, hence no clean-up of spaces. Pad is
 * <|eos|>; generation ends at <|eos|> or <|eot|>. */
static void hf_tokenizer_config_build(Buf *b, const Config *c) {
    buf_printf(b, "{\n  \"tokenizer_class\": \"PreTrainedTokenizerFast\",\n  \"bos_token\": \"<|bos|>\",\n"
                  "  \"eos_token\": \"<|eos|>\",\n  \"pad_token\": \"<|eos|>\",\n  \"add_bos_token\": true,\n"
                  "  \"add_eos_token\": false,\n  \"clean_up_tokenization_spaces\": false,\n  \"add_prefix_space\": false,\n"
                  "  \"model_max_length\": %d,\n  \"chat_template\": ", c->max_seq_len);
    json_put_string(b, chat_template, strlen(chat_template));
    buf_str(b, "\n}\n");
}

static void hf_special_tokens_map_build(Buf *b) {
    buf_str(b, "{\n  \"bos_token\": \"<|bos|>\",\n  \"eos_token\": \"<|eos|>\",\n  \"pad_token\": \"<|eos|>\",\n"
               "  \"additional_special_tokens\": [\"<|user|>\", \"<|assistant|>\", \"<|eot|>\"]\n}\n");
}

static void hf_generation_config_build(Buf *b) {
    buf_printf(b, "{\n  \"bos_token_id\": %d,\n  \"eos_token_id\": [%d, %d],\n  \"pad_token_id\": %d,\n"
                  "  \"do_sample\": false\n}\n", TOK_BOS, TOK_EOS, TOK_EOT, TOK_EOS);
}

/* --- reading safetensors: validate everything before any tensor is used --- */

typedef struct {
    char *name;
    int dtype;                 /* index into st_dtypes */
    int ndim;
    size_t shape[8], begin, end;
} StTensor;

typedef struct {
    StTensor *t; int n;
    char *srlm_meta;           /* "__metadata__" / "srlm.meta", or NULL */
    const uint8_t *data; size_t data_len;
} StFile;

static const struct { const char *name; size_t size; } st_dtypes[] = {
    {"F32", 4}, {"F16", 2}, {"BF16", 2}, {"F64", 8}, {"I64", 8}, {"I32", 4}, {"I16", 2}, {"I8", 1}, {"U8", 1},
    {"BOOL", 1}, {"U16", 2}, {"U32", 4}, {"U64", 8}, {"F8_E4M3", 1}, {"F8_E5M2", 1}};
enum { ST_F32, ST_F16, ST_BF16, ST_N_DTYPES = 15 };

static void st_free(StFile *f) {
    int i;
    for (i = 0; i < f->n; i++) free(f->t[i].name);
    free(f->t); free(f->srlm_meta);
    memset(f, 0, sizeof *f);
}

/* Members of a well-formed object, one per call; *it starts NULL. */
static int json_object_next(JsonSpan obj, const char **it, JsonSpan *key, JsonSpan *val) {
    const char *p = *it ? *it : json_ws(obj.p, obj.end) + 1;
    p = json_ws(p, obj.end);
    if (p < obj.end && *p == ',') p = json_ws(p + 1, obj.end);
    if (p >= obj.end || *p != '"') return 0;
    key->p = p;
    key->end = json_skip(p, obj.end, 1);
    if (!key->end) return 0;
    p = json_ws(key->end, obj.end);
    if (p >= obj.end || *p != ':') return 0;
    val->p = json_ws(p + 1, obj.end);
    val->end = json_skip(val->p, obj.end, 1);
    if (!val->end) return 0;
    *it = val->end;
    return 1;
}

/* A JSON number that is an integer in [0, 2^53]. */
static int json_uint(JsonSpan v, uint64_t *out) {
    double d;
    if (!json_number(v, &d) || !(d >= 0.0 && d <= 9007199254740992.0) || d != (double)(uint64_t)d) return 0;
    *out = (uint64_t)d;
    return 1;
}

static int json_is_literal(JsonSpan v, const char *lit) {
    size_t n = strlen(lit);
    return (size_t)(v.end - v.p) == n && memcmp(v.p, lit, n) == 0;
}

typedef struct { const StTensor *t; } StCmpCtx;
static int cmp_st_offset(const void *a, const void *b, void *ctx) {
    const StTensor *t = ((const StCmpCtx *)ctx)->t, *x = &t[*(const int *)a], *y = &t[*(const int *)b];
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    return (x->end > y->end) - (x->end < y->end);
}
static int cmp_st_name(const void *a, const void *b, void *ctx) {
    const StTensor *t = ((const StCmpCtx *)ctx)->t;
    return strcmp(t[*(const int *)a].name, t[*(const int *)b].name);
}

/* One tensor entry of the header. */
static const char *st_entry(StTensor *t, JsonSpan v, size_t data_len) {
    JsonSpan dt, sh, off, e;
    const char *it = NULL;
    char *dts;
    uint64_t u, b2[2];
    size_t count = 1;
    int i, k = 0;
    if (*v.p != '{') return xf_fail("tensor \"%s\": entry is not an object", t->name);
    if (!json_get(v.p, v.end, "dtype", &dt) || !(dts = json_string(dt, NULL)))
        return xf_fail("tensor \"%s\": no \"dtype\" string", t->name);
    for (i = 0; i < ST_N_DTYPES; i++) if (strcmp(dts, st_dtypes[i].name) == 0) break;
    if (i == ST_N_DTYPES) { xf_fail("tensor \"%s\": unknown dtype \"%.20s\"", t->name, dts); free(dts); return xf_msg; }
    free(dts);
    t->dtype = i;
    if (!json_get(v.p, v.end, "shape", &sh) || *sh.p != '[') return xf_fail("tensor \"%s\": no \"shape\" array", t->name);
    t->ndim = 0;
    while (json_array_next(sh, &it, &e)) {
        if (t->ndim == 8) return xf_fail("tensor \"%s\": more than 8 dimensions", t->name);
        if (!json_uint(e, &u)) return xf_fail("tensor \"%s\": a dimension is not a non-negative integer", t->name);
        t->shape[t->ndim++] = (size_t)u;
        if (u && count > SIZE_MAX / 16 / u) return xf_fail("tensor \"%s\": shape too large", t->name);
        count *= (size_t)u;
    }
    if (!json_get(v.p, v.end, "data_offsets", &off) || *off.p != '[')
        return xf_fail("tensor \"%s\": no \"data_offsets\" array", t->name);
    it = NULL;
    while (json_array_next(off, &it, &e)) {
        if (k == 2 || !json_uint(e, &b2[k])) return xf_fail("tensor \"%s\": data_offsets must be two non-negative integers", t->name);
        k++;
    }
    if (k != 2) return xf_fail("tensor \"%s\": data_offsets must be two non-negative integers", t->name);
    if (b2[0] > b2[1]) return xf_fail("tensor \"%s\": data_offsets [%llu, %llu] run backwards", t->name,
                                      (unsigned long long)b2[0], (unsigned long long)b2[1]);
    if (b2[1] > data_len) return xf_fail("tensor \"%s\": data_offsets end %llu is past the end of the data (%lu bytes)",
                                         t->name, (unsigned long long)b2[1], (unsigned long)data_len);
    t->begin = (size_t)b2[0]; t->end = (size_t)b2[1];
    if (t->end - t->begin != count * st_dtypes[t->dtype].size)
        return xf_fail("tensor \"%s\": data_offsets span %lu bytes but its shape x %s needs %lu", t->name,
                       (unsigned long)(t->end - t->begin), st_dtypes[t->dtype].name, (unsigned long)(count * st_dtypes[t->dtype].size));
    return NULL;
}

/* Parse and validate a safetensors image; f points into p (keep p alive). */
static const char *st_parse(StFile *f, const uint8_t *p, size_t n) {
    uint64_t hlen;
    JsonSpan obj, key, val;
    const char *it = NULL, *why = NULL, *hp;
    int cap = 16, i, *order;
    StCmpCtx cx;
    memset(f, 0, sizeof *f);
    if (n < 8) return xf_fail("too short for a safetensors header (%lu bytes)", (unsigned long)n);
    hlen = le_get_u64(p);
    if (hlen > n - 8) return xf_fail("header length %llu runs past the end of the file (%lu bytes)", (unsigned long long)hlen, (unsigned long)n);
    if (hlen > 100000000) return xf_fail("header length %llu exceeds 100 MB", (unsigned long long)hlen);
    hp = (const char *)p + 8;
    if (!utf8_valid(hp, (size_t)hlen)) return xf_fail("header is not valid UTF-8");
    if (!json_is_object(hp, hp + hlen)) return xf_fail("header is not one well-formed JSON object (unterminated or malformed)");
    f->data = p + 8 + hlen;
    f->data_len = n - 8 - (size_t)hlen;
    obj.p = json_ws(hp, hp + hlen); obj.end = hp + hlen;
    f->t = xmalloc((size_t)cap * sizeof(StTensor));
    while (!why && json_object_next(obj, &it, &key, &val)) {
        size_t klen;
        char *k = json_string(key, &klen);
        if (!k || strlen(k) != klen) { free(k); why = xf_fail("a header key is not a clean string"); break; }
        if (strcmp(k, "__metadata__") == 0) {
            JsonSpan mk, mv;
            const char *mit = NULL;
            free(k);
            if (*val.p != '{') { why = xf_fail("\"__metadata__\" is not an object"); break; }
            while (json_object_next(val, &mit, &mk, &mv)) {
                char *mks = json_string(mk, NULL);
                int is_meta = mks && strcmp(mks, "srlm.meta") == 0;
                free(mks);
                if (*mv.p != '"') { why = xf_fail("\"__metadata__\" values must be strings"); break; }
                if (is_meta) { free(f->srlm_meta); f->srlm_meta = json_string(mv, NULL); }
            }
            continue;
        }
        if (f->n == cap) { cap *= 2; f->t = realloc(f->t, (size_t)cap * sizeof(StTensor)); if (!f->t) die("out of memory"); }
        f->t[f->n].name = k;
        f->n++;
        why = st_entry(&f->t[f->n - 1], val, f->data_len);
    }
    if (why) { st_free(f); return why; }
    /* names unique; data laid out without holes or overlaps, covering all of it */
    order = xmalloc((size_t)(f->n ? f->n : 1) * sizeof(int));
    cx.t = f->t;
    for (i = 0; i < f->n; i++) order[i] = i;
    stable_sort(order, (size_t)f->n, sizeof(int), cmp_st_name, &cx);
    for (i = 1; i < f->n && !why; i++)
        if (strcmp(f->t[order[i - 1]].name, f->t[order[i]].name) == 0) why = xf_fail("tensor \"%s\" appears twice", f->t[order[i]].name);
    for (i = 0; i < f->n; i++) order[i] = i;
    stable_sort(order, (size_t)f->n, sizeof(int), cmp_st_offset, &cx);
    for (i = 0; i < f->n && !why; i++) {
        size_t prev_end = i ? f->t[order[i - 1]].end : 0;
        const StTensor *t = &f->t[order[i]];
        if (t->begin < prev_end)
            why = xf_fail("tensors \"%s\" and \"%s\" overlap (bytes %lu..%lu)", f->t[order[i - 1]].name, t->name,
                          (unsigned long)t->begin, (unsigned long)prev_end);
        else if (t->begin > prev_end)
            why = xf_fail("hole in the data: bytes %lu..%lu before tensor \"%s\" belong to no tensor",
                          (unsigned long)prev_end, (unsigned long)t->begin, t->name);
    }
    if (!why && (f->n ? f->t[order[f->n - 1]].end : 0) != f->data_len)
        why = xf_fail("%lu bytes after the last tensor belong to no tensor",
                      (unsigned long)(f->data_len - (f->n ? f->t[order[f->n - 1]].end : 0)));
    free(order);
    if (why) st_free(f);
    return why;
}

/* IEEE half -> float, exactly. */
static float f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h >> 15) << 31, e = (h >> 10) & 31u, mant = h & 1023u;
    if (e == 0) { float v = (float)mant * 5.9604644775390625e-8f; return sign ? -v : v; } /* mant * 2^-24 */
    if (e == 31) return f32_from_bits(sign | 0x7f800000u | (mant << 13));
    return f32_from_bits(sign | ((e + 112u) << 23) | (mant << 13));
}

/* A tensor's values as floats (count of them), from F32, F16 or BF16. */
static const char *st_read_floats(const StFile *f, const StTensor *t, float *out) {
    size_t i, count = (t->end - t->begin) / st_dtypes[t->dtype].size;
    const uint8_t *q = f->data + t->begin;
    if (t->dtype != ST_F32 && t->dtype != ST_F16 && t->dtype != ST_BF16)
        return xf_fail("tensor \"%s\" has dtype %s; srlm imports F32, F16 and BF16", t->name, st_dtypes[t->dtype].name);
    for (i = 0; i < count; i++) {
        float v = t->dtype == ST_F32 ? le_get_f32(q + 4 * i)
                : t->dtype == ST_F16 ? f16_to_f32((uint16_t)(q[2 * i] | q[2 * i + 1] << 8))
                : f32_from_bits((uint32_t)(q[2 * i] | q[2 * i + 1] << 8) << 16);
        if (!f32_isfinite(v)) return xf_fail("tensor \"%s\": non-finite value at index %lu", t->name, (unsigned long)i);
        out[i] = v;
    }
    return NULL;
}

static const char *json_int_field(JsonSpan obj, const char *key, int required, int def, int *out) {
    JsonSpan v;
    uint64_t u;
    if (!json_get(obj.p, obj.end, key, &v)) {
        if (required) return xf_fail("config.json: no \"%s\"", key);
        *out = def;
        return NULL;
    }
    if (!json_uint(v, &u) || u > 1u << 30) return xf_fail("config.json: \"%s\" is not a non-negative integer", key);
    *out = (int)u;
    return NULL;
}

static const char *json_float_field(JsonSpan obj, const char *key, float def, float *out) {
    JsonSpan v;
    double d;
    if (!json_get(obj.p, obj.end, key, &v)) { *out = def; return NULL; }
    if (!json_number(v, &d)) return xf_fail("config.json: \"%s\" is not a number", key);
    *out = (float)d;
    return NULL;
}

/* A string-valued key equal to want (absent: ok when !required). */
static const char *json_expect_string(JsonSpan obj, const char *key, const char *want) {
    JsonSpan v;
    char *s;
    if (!json_get(obj.p, obj.end, key, &v)) return NULL;
    s = json_string(v, NULL);
    if (!s || strcmp(s, want) != 0) {
        xf_fail("config.json: \"%s\" is %.40s%s%s, srlm imports only \"%s\"", key, s ? "\"" : "", s ? s : "not a string",
                s ? "\"" : "", want);
        free(s);
        return xf_msg;
    }
    free(s);
    return NULL;
}

/* "[d0, d1, ...]" of a tensor shape for an error message, cut with "..." to
 * fit out (never past it: a shape may have 8 dims of 20 digits each). */
static void shape_text(char *out, size_t cap, const uint64_t *dims, int n) {
    size_t at = 0;
    int d;
    char one[32];
    out[0] = 0;
    if (cap < 8) return;
    out[at++] = '[';
    for (d = 0; d < n; d++) {
        size_t l = (size_t)snprintf(one, sizeof one, "%s%llu", d ? ", " : "", (unsigned long long)dims[d]);
        if (at + l + 5 > cap) { memcpy(out + at, "...", 3); at += 3; break; }
        memcpy(out + at, one, l); at += l;
    }
    out[at++] = ']';
    out[at] = 0;
}

/* config.json of a LlamaForCausalLM -> Config; context > 0 overrides max_position_embeddings. */
static const char *hf_config_parse(Config *c, const char *p, size_t n, int context) {
    JsonSpan obj, v, e;
    const char *why, *it = NULL;
    int head_dim, found = 0;
    if (!utf8_valid(p, n) || !json_is_object(p, p + n)) return xf_fail("config.json: not one well-formed JSON object");
    obj.p = p; obj.end = p + n;
    if (!json_get(p, p + n, "model_type", &v) && !json_get(p, p + n, "architectures", &v))
        return xf_fail("config.json: names no model_type or architectures: cannot tell the architecture");
    if ((why = json_expect_string(obj, "model_type", "llama"))) return why;
    if (json_get(p, p + n, "architectures", &v)) {
        while (json_array_next(v, &it, &e)) {
            char *s = json_string(e, NULL);
            if (s && strcmp(s, "LlamaForCausalLM") == 0) found = 1;
            free(s);
        }
        if (!found) return xf_fail("config.json: architectures does not list LlamaForCausalLM (unsupported architecture)");
    }
    if ((why = json_expect_string(obj, "hidden_act", "silu"))) return why;
    if (json_get(p, p + n, "rope_scaling", &v) && !json_is_literal(v, "null"))
        return xf_fail("config.json: rope_scaling is set; srlm supports plain RoPE only");
    if (json_get(p, p + n, "attention_bias", &v) && !json_is_literal(v, "false"))
        return xf_fail("config.json: attention_bias is set; srlm's layers have no biases");
    if (json_get(p, p + n, "mlp_bias", &v) && !json_is_literal(v, "false"))
        return xf_fail("config.json: mlp_bias is set; srlm's layers have no biases");
    if ((why = json_int_field(obj, "hidden_size", 1, 0, &c->dim)) || (why = json_int_field(obj, "intermediate_size", 1, 0, &c->hidden_dim)) ||
        (why = json_int_field(obj, "num_hidden_layers", 1, 0, &c->n_layers)) ||
        (why = json_int_field(obj, "num_attention_heads", 1, 0, &c->n_heads)) ||
        (why = json_int_field(obj, "num_key_value_heads", 0, c->n_heads, &c->n_kv_heads)) ||
        (why = json_int_field(obj, "vocab_size", 1, 0, &c->vocab_size)) ||
        (why = json_int_field(obj, "max_position_embeddings", 1, 0, &c->max_seq_len)))
        return why;
    if ((why = json_float_field(obj, "rms_norm_eps", 1e-6f, &c->norm_eps)) || (why = json_float_field(obj, "rope_theta", 10000.0f, &c->rope_theta)))
        return why;
    c->tied = 0;
    if (json_get(p, p + n, "tie_word_embeddings", &v)) {
        if (json_is_literal(v, "true")) c->tied = 1;
        else if (!json_is_literal(v, "false")) return xf_fail("config.json: tie_word_embeddings is not true or false");
    }
    if (context > 0) c->max_seq_len = context;
    if (config_invalid(c)) return xf_fail("config.json: %s%s", config_invalid(c),
                                          c->max_seq_len > 65536 ? " (use --context to shorten it)" : "");
    if ((why = json_int_field(obj, "head_dim", 0, c->dim / c->n_heads, &head_dim))) return why;
    if ((uint64_t)head_dim * (uint64_t)c->n_heads != (uint64_t)c->dim) /* in 64 bits: 2^30 x 2^13 overflows an int */
        return xf_fail("config.json: head_dim %d x %d heads != hidden_size %d (unsupported)", head_dim, c->n_heads, c->dim);
    return NULL;
}

/* config.json + model.safetensors images -> model (initialised here). */
static const char *hf_import(Model *m, char **meta_out, const char *cfg_json, size_t cfg_n, const uint8_t *st, size_t st_n,
                             int context) {
    Config c;
    StFile f;
    XTensor *xt;
    const char *why;
    float *tmp = NULL;
    int n, i, j, *used, *tensor_of;
    if ((why = hf_config_parse(&c, cfg_json, cfg_n, context))) return why;
    if ((why = st_parse(&f, st, st_n))) return why;
    /* Every tensor the config needs is present with its shape before anything
     * is allocated from the config: st_parse has checked that each tensor's
     * bytes are in the file, so the model is no larger than the file says. */
    xt = xmalloc((size_t)(3 + 9 * c.n_layers) * sizeof(XTensor));
    n = xt_list(&c, XF_HF, xt);
    used = xcalloc((size_t)(f.n ? f.n : 1), sizeof(int));
    tensor_of = xcalloc((size_t)n, sizeof(int));
    for (i = 0; i < n && !why; i++) {
        const StTensor *t = NULL;
        size_t want1 = xt[i].rows, want2 = xt[i].cols;
        for (j = 0; j < f.n; j++) if (strcmp(f.t[j].name, xt[i].name) == 0) { t = &f.t[j]; used[j] = 1; tensor_of[i] = j; break; }
        if (!t) { why = xf_fail("no tensor \"%s\"", xt[i].name); break; }
        if (t->ndim != (want2 ? 2 : 1) || t->shape[0] != want1 || (want2 && t->shape[1] != want2)) {
            char have[96], need[48];
            uint64_t dims[8] = {0};
            int d;
            for (d = 0; d < t->ndim; d++) dims[d] = t->shape[d];
            shape_text(have, sizeof have, dims, t->ndim);
            if (want2) snprintf(need, sizeof need, "[%lu, %lu]", (unsigned long)want1, (unsigned long)want2);
            else snprintf(need, sizeof need, "[%lu]", (unsigned long)want1);
            why = xf_fail("tensor \"%s\" has shape %s, config.json needs %s", t->name, have, need);
            break;
        }
    }
    if (why) { free(tensor_of); free(used); free(xt); st_free(&f); return why; }
    memset(m, 0, sizeof *m);
    m->cfg = c;
    model_init_buffers(m);
    for (i = 0; i < n && !why; i++) {
        const StTensor *t = &f.t[tensor_of[i]];
        free(tmp);
        tmp = xmalloc(xt_count(&xt[i]) * sizeof(float));
        if ((why = st_read_floats(&f, t, tmp))) break;
        xt_copy(m->params + param_offset(&c, xt[i].p, xt[i].layer), tmp, &xt[i], 0);
    }
    for (j = 0; j < f.n && !why; j++) {
        size_t len = strlen(f.t[j].name), k;
        if (used[j]) continue;
        if (len >= 19 && strcmp(f.t[j].name + len - 19, "rotary_emb.inv_freq") == 0) continue; /* old HF buffers */
        if (c.tied && strcmp(f.t[j].name, "lm_head.weight") == 0 && f.t[j].ndim == 2 &&
            f.t[j].shape[0] == (size_t)c.vocab_size && f.t[j].shape[1] == (size_t)c.dim) {
            free(tmp);
            tmp = xmalloc((size_t)c.vocab_size * (size_t)c.dim * sizeof(float));
            if ((why = st_read_floats(&f, &f.t[j], tmp))) break;
            for (k = 0; k < (size_t)c.vocab_size * (size_t)c.dim; k++)
                if (f32_bits(tmp[k]) != f32_bits(m->w.tok_emb[k])) break;
            if (k < (size_t)c.vocab_size * (size_t)c.dim)
                why = xf_fail("tie_word_embeddings is true but lm_head.weight differs from the embeddings");
            continue;
        }
        why = xf_fail("unexpected tensor \"%s\" (not part of a plain Llama: unsupported architecture?)", f.t[j].name);
    }
    if (!why && meta_out) {
        const char *meta = f.srlm_meta ? f.srlm_meta : "srlm import hf";
        *meta_out = xmalloc(strlen(meta) + 1);
        strcpy(*meta_out, meta);
    }
    free(tmp); free(used); free(xt); free(tensor_of);
    st_free(&f);
    if (why) model_free(m);
    return why;
}

/* --------------------------------------------------------------------------
 * llama2.c: the legacy (v0) checkpoint run.c reads, and its tokenizer.bin
 *
 *   7 x i32: dim, hidden_dim, n_layers, n_heads, n_kv_heads,
 *            vocab_size (negative: the classifier is NOT shared), seq_len
 *   f32 tensors in srlm's own storage order up to final_norm, then
 *   seq_len x head_dim/2 RoPE cosines and as many sines (run.c skips them),
 *   then the classifier when not shared.
 * tokenizer.bin: i32 max_token_length, then per id: f32 score, i32 length,
 * the bytes. run.c merges the adjacent pair whose concatenation has the
 * highest score, so merge i scores -i; bytes and specials score -1e10,
 * which run.c never prefers. Byte 0 is spelled "<0x00>" (run.c decodes it
 * to the byte; a C string cannot hold it raw).
 * ------------------------------------------------------------------------ */

static const char *l2c_build(Buf *out, const Model *m) {
    const Config *c = &m->cfg;
    size_t i, body = param_offset(c, P_OUTPUT, -1), rope = (size_t)c->max_seq_len * (size_t)(cfg_head_dim(c) / 2);
    if (c->rope_theta != 10000.0f || c->norm_eps != 1e-5f)
        return xf_fail("llama2.c's run.c fixes rope_theta 10000 and norm_eps 1e-5; this model has %g and %g",
                       (double)c->rope_theta, (double)c->norm_eps);
    buf_u32(out, (uint32_t)c->dim); buf_u32(out, (uint32_t)c->hidden_dim); buf_u32(out, (uint32_t)c->n_layers);
    buf_u32(out, (uint32_t)c->n_heads); buf_u32(out, (uint32_t)c->n_kv_heads);
    buf_u32(out, (uint32_t)(c->tied ? c->vocab_size : -c->vocab_size)); buf_u32(out, (uint32_t)c->max_seq_len);
    buf_reserve(out, 4 * (m->n_params + 2 * rope));
    for (i = 0; i < body; i++) buf_f32(out, m->params[i]);
    for (i = 0; i < rope; i++) buf_f32(out, m->rope_cos[i]);
    for (i = 0; i < rope; i++) buf_f32(out, m->rope_sin[i]);
    for (i = body; i < m->n_params; i++) buf_f32(out, m->params[i]);
    return NULL;
}

static const char *l2c_parse(Model *m, const uint8_t *p, size_t n) {
    Config c;
    int32_t v[7];
    size_t i, body, rope, need, np;
    if (n < 28) return xf_fail("too short for a llama2.c header (%lu bytes)", (unsigned long)n);
    if (le_get_u32(p) == 0x616b3432u)
        return xf_fail("a llama2.c version-%lu export (magic \"ak42\"); srlm reads the legacy v0 layout (export.py --version 0)",
                       (unsigned long)le_get_u32(p + 4));
    for (i = 0; i < 7; i++) v[i] = (int32_t)le_get_u32(p + 4 * i);
    c.dim = v[0]; c.hidden_dim = v[1]; c.n_layers = v[2]; c.n_heads = v[3]; c.n_kv_heads = v[4];
    c.vocab_size = v[5] < 0 ? (v[5] == INT32_MIN ? 0 : -v[5]) : v[5];
    c.tied = v[5] > 0; c.max_seq_len = v[6];
    c.rope_theta = 10000.0f; c.norm_eps = 1e-5f;
    if (config_invalid(&c)) return xf_fail("not a usable llama2.c header: %s", config_invalid(&c));
    np = param_count(&c);
    body = param_offset(&c, P_OUTPUT, -1);
    rope = (size_t)c.max_seq_len * (size_t)(cfg_head_dim(&c) / 2);
    need = 28 + 4 * (np + 2 * rope);
    if (n < need) return xf_fail("truncated: this config needs %lu bytes, the file has %lu", (unsigned long)need, (unsigned long)n);
    if (n > need) return xf_fail("%lu bytes more than this config needs (not a v0 file, or a wrong header)", (unsigned long)(n - need));
    for (i = 0; i < np; i++) {
        size_t at = 28 + 4 * (i < body ? i : i + 2 * rope);
        if (!f32_isfinite(le_get_f32(p + at))) return xf_fail("non-finite weight at parameter %lu", (unsigned long)i);
    }
    memset(m, 0, sizeof *m);
    m->cfg = c;
    model_init_buffers(m);
    for (i = 0; i < np; i++) m->params[i] = le_get_f32(p + 28 + 4 * (i < body ? i : i + 2 * rope));
    return NULL;
}

static void l2c_tokenizer_build(Buf *b, const Tokenizer *tok) {
    int V = tok_vocab_size(tok), i;
    size_t longest = 6;
    for (i = 0; i < V; i++) { size_t len; tok_token_bytes(tok, i, &len); if (len > longest) longest = len; }
    buf_u32(b, (uint32_t)longest);
    for (i = 0; i < V; i++) {
        size_t len;
        const uint8_t *s = tok_token_bytes(tok, i, &len);
        buf_f32(b, i >= TOK_FIRST_MERGE ? -(float)(i - TOK_FIRST_MERGE) : -1e10f);
        if (i == 0) { buf_u32(b, 6); buf_str(b, "<0x00>"); continue; }
        buf_u32(b, (uint32_t)len);
        buf_put(b, s, len);
    }
}

/* --------------------------------------------------------------------------
 * GGUF v3 (ggml's docs/gguf.md): "GGUF", u32 version, u64 tensor count,
 * u64 key/value count; key/values (string key, u32 type, value); tensor
 * infos (string name, u32 n_dims, u64 ne[n_dims] with ne[0] the contiguous
 * dimension, u32 ggml type, u64 offset into the data); padding to the
 * alignment (general.alignment, default 32); the data, each tensor at an
 * aligned offset. Strings are u64 length + UTF-8 bytes, no NUL.
 * srlm writes F32 tensors in xt_list order with llama.cpp's names and the
 * interleaved RoPE layout srlm already uses, plus the tokenizer as a
 * gpt2-style byte-level BPE vocabulary with merges.
 * ------------------------------------------------------------------------ */

enum { GG_U8, GG_I8, GG_U16, GG_I16, GG_U32, GG_I32, GG_F32, GG_BOOL, GG_STR, GG_ARR, GG_U64, GG_I64, GG_F64, GG_N_TYPES };
#define GGUF_ALIGN 32

static void gg_str(Buf *b, const char *s, size_t n) { buf_u64(b, (uint64_t)n); buf_put(b, s, n); }
static void gg_key(Buf *b, const char *k, uint32_t type) { gg_str(b, k, strlen(k)); buf_u32(b, type); }
static void gg_kv_u32(Buf *b, int *n, const char *k, uint32_t v) { gg_key(b, k, GG_U32); buf_u32(b, v); (*n)++; }
static void gg_kv_bool(Buf *b, int *n, const char *k, int v) { uint8_t x = (uint8_t)(v != 0); gg_key(b, k, GG_BOOL); buf_put(b, &x, 1); (*n)++; }
static void gg_kv_f32(Buf *b, int *n, const char *k, float v) { gg_key(b, k, GG_F32); buf_f32(b, v); (*n)++; }
static void gg_kv_str(Buf *b, int *n, const char *k, const char *v, size_t len) { gg_key(b, k, GG_STR); gg_str(b, v, len); (*n)++; }

static void gg_pad(Buf *b, size_t base) { while ((b->n - base) % GGUF_ALIGN) buf_put(b, "", 1); }

/* GGUF: 2-D tensors in the export dtype (ggml types 0 F32, 1 F16, 30 BF16),
 * 1-D norm weights always F32, as llama.cpp's own converter writes them. */
static const uint32_t ggml_type_of[3] = {0, 1, 30}, ggml_file_type_of[3] = {0, 1, 32};

static void gguf_build(Buf *out, const Model *m, const Tokenizer *tok, const char *meta, int dtype) {
    const Config *c = &m->cfg;
    Buf kv = {0, 0, 0}, s = {0, 0, 0};
    XTensor *xt = xmalloc((size_t)(3 + 9 * c->n_layers) * sizeof(XTensor));
    int n_kv = 0, nt = xt_list(c, XF_GGUF, xt), V = tok_vocab_size(tok), i;
    const char *pre;
    size_t off = 0, j, start;
    gg_kv_str(&kv, &n_kv, "general.architecture", "llama", 5);
    gg_kv_str(&kv, &n_kv, "general.name", "srlm", 4);
    gg_kv_u32(&kv, &n_kv, "general.file_type", ggml_file_type_of[dtype]); /* 0 all F32, 1 mostly F16, 32 mostly BF16 */
    gg_kv_u32(&kv, &n_kv, "general.alignment", GGUF_ALIGN);
    gg_kv_u32(&kv, &n_kv, "llama.context_length", (uint32_t)c->max_seq_len);
    gg_kv_u32(&kv, &n_kv, "llama.embedding_length", (uint32_t)c->dim);
    gg_kv_u32(&kv, &n_kv, "llama.block_count", (uint32_t)c->n_layers);
    gg_kv_u32(&kv, &n_kv, "llama.feed_forward_length", (uint32_t)c->hidden_dim);
    gg_kv_u32(&kv, &n_kv, "llama.attention.head_count", (uint32_t)c->n_heads);
    gg_kv_u32(&kv, &n_kv, "llama.attention.head_count_kv", (uint32_t)c->n_kv_heads);
    gg_kv_f32(&kv, &n_kv, "llama.attention.layer_norm_rms_epsilon", c->norm_eps);
    gg_kv_f32(&kv, &n_kv, "llama.rope.freq_base", c->rope_theta);
    gg_kv_u32(&kv, &n_kv, "llama.rope.dimension_count", (uint32_t)cfg_head_dim(c));
    gg_kv_u32(&kv, &n_kv, "llama.vocab_size", (uint32_t)c->vocab_size);
    gg_kv_str(&kv, &n_kv, "tokenizer.ggml.model", "gpt2", 4);
    /* llama.cpp's "refact" is srlm's pre-split rule (tokenizer.c section 2);
     * it has no pre-tokenizer that leaves text whole, "default" is the nearest */
    pre = tok->presplit ? "refact" : "default";
    gg_kv_str(&kv, &n_kv, "tokenizer.ggml.pre", pre, strlen(pre));
    gg_key(&kv, "tokenizer.ggml.tokens", GG_ARR); buf_u32(&kv, GG_STR); buf_u64(&kv, (uint64_t)V);
    for (i = 0; i < V; i++) { s.n = 0; token_spelling(&s, tok, i); gg_str(&kv, (const char *)s.p, s.n); }
    n_kv++;
    gg_key(&kv, "tokenizer.ggml.token_type", GG_ARR); buf_u32(&kv, GG_I32); buf_u64(&kv, (uint64_t)V);
    for (i = 0; i < V; i++) buf_u32(&kv, tok_special_name(i) ? 3u : 1u); /* 3 control, 1 normal */
    n_kv++;
    gg_key(&kv, "tokenizer.ggml.merges", GG_ARR); buf_u32(&kv, GG_STR); buf_u64(&kv, (uint64_t)tok->n_merges);
    for (i = 0; i < tok->n_merges; i++) {
        s.n = 0;
        token_spelling(&s, tok, tok->merges[2 * i]);
        buf_str(&s, " ");
        token_spelling(&s, tok, tok->merges[2 * i + 1]);
        gg_str(&kv, (const char *)s.p, s.n);
    }
    n_kv++;
    gg_kv_u32(&kv, &n_kv, "tokenizer.ggml.bos_token_id", TOK_BOS);
    gg_kv_u32(&kv, &n_kv, "tokenizer.ggml.eos_token_id", TOK_EOS);
    gg_kv_u32(&kv, &n_kv, "tokenizer.ggml.eot_token_id", TOK_EOT);
    gg_kv_u32(&kv, &n_kv, "tokenizer.ggml.padding_token_id", TOK_EOS);
    gg_kv_bool(&kv, &n_kv, "tokenizer.ggml.add_bos_token", 1);
    gg_kv_bool(&kv, &n_kv, "tokenizer.ggml.add_eos_token", 0);
    gg_kv_str(&kv, &n_kv, "tokenizer.chat_template", chat_template, strlen(chat_template));
    gg_kv_str(&kv, &n_kv, "srlm.meta", meta, strlen(meta));

    buf_put(out, "GGUF", 4);
    buf_u32(out, 3);
    buf_u64(out, (uint64_t)nt);
    buf_u64(out, (uint64_t)n_kv);
    buf_put(out, kv.p, kv.n);
    for (i = 0; i < nt; i++) {
        gg_str(out, xt[i].name, strlen(xt[i].name));
        buf_u32(out, xt[i].cols ? 2u : 1u);
        if (xt[i].cols) { buf_u64(out, (uint64_t)xt[i].cols); buf_u64(out, (uint64_t)xt[i].rows); }
        else buf_u64(out, (uint64_t)xt[i].rows);
        buf_u32(out, ggml_type_of[xt[i].cols ? dtype : XD_F32]);
        buf_u64(out, (uint64_t)off);
        off += (xt_count(&xt[i]) * (xt[i].cols && dtype != XD_F32 ? 2 : 4) + GGUF_ALIGN - 1) / GGUF_ALIGN * GGUF_ALIGN;
    }
    gg_pad(out, 0);
    start = out->n;
    buf_reserve(out, off);
    for (i = 0; i < nt; i++) {
        const float *src = xt_src(m, &xt[i]);
        for (j = 0; j < xt_count(&xt[i]); j++) buf_value(out, src[j], xt[i].cols ? dtype : XD_F32);
        gg_pad(out, start);
    }
    free(kv.p); free(s.p); free(xt);
}

/* --- reading GGUF --- */

typedef struct {
    char *key;
    uint32_t type, arr_type;
    uint64_t arr_n;
    size_t at;                 /* file offset of the value (of the first element for arrays) */
} GgKv;

typedef struct {
    char *name;
    uint32_t n_dims, type;
    uint64_t ne[4], offset;
    size_t bytes;
} GgTensor;

typedef struct {
    GgKv *kv; size_t n_kv;
    GgTensor *t; size_t n_t;
    const uint8_t *p; size_t n, data_at;
    uint32_t alignment;
} GgFile;

typedef struct { const uint8_t *p; size_t n, at; } GgRd;

static void gg_free(GgFile *g) {
    size_t i;
    for (i = 0; i < g->n_kv; i++) free(g->kv[i].key);
    for (i = 0; i < g->n_t; i++) free(g->t[i].name);
    free(g->kv); free(g->t);
    memset(g, 0, sizeof *g);
}

static int gg_need(GgRd *r, size_t k) { return r->n - r->at >= k; }
static int gg_u32(GgRd *r, uint32_t *v) { if (!gg_need(r, 4)) return 0; *v = le_get_u32(r->p + r->at); r->at += 4; return 1; }
static int gg_u64(GgRd *r, uint64_t *v) { if (!gg_need(r, 8)) return 0; *v = le_get_u64(r->p + r->at); r->at += 8; return 1; }

/* A string: length within the file and valid UTF-8; *out (optional) gets a malloc'd copy. */
static const char *gg_string(GgRd *r, const char *what, char **out) {
    uint64_t len;
    if (!gg_u64(r, &len)) return xf_fail("truncated in %s (string length)", what);
    if (len > r->n - r->at) return xf_fail("%s: string length %llu runs past the end of the file", what, (unsigned long long)len);
    if (!utf8_valid((const char *)r->p + r->at, (size_t)len)) return xf_fail("%s: string is not valid UTF-8", what);
    if (out) {
        *out = xmalloc((size_t)len + 1);
        memcpy(*out, r->p + r->at, (size_t)len);
        (*out)[len] = 0;
        if (strlen(*out) != (size_t)len) { free(*out); *out = NULL; return xf_fail("%s: string holds a NUL byte", what); }
    }
    r->at += (size_t)len;
    return NULL;
}

/* An array's string, skipped: only its length is checked. Import needs the
 * weights, not the vocabulary, and converters write vocabularies whose
 * strings are raw bytes (llama.cpp's llama2.c converter). */
static const char *gg_skip_string(GgRd *r, const char *what) {
    uint64_t len;
    if (!gg_u64(r, &len)) return xf_fail("truncated in %s (string length)", what);
    if (len > r->n - r->at) return xf_fail("%s: string length %llu runs past the end of the file", what, (unsigned long long)len);
    r->at += (size_t)len;
    return NULL;
}

static size_t gg_scalar_size(uint32_t type) {
    static const size_t sizes[GG_N_TYPES] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
    return type < GG_N_TYPES ? sizes[type] : 0;
}

/* Skip (validating) one value of the given type; depth bounds nested arrays. */
static const char *gg_value(GgRd *r, uint32_t type, const char *key, int depth, uint32_t *arr_type, uint64_t *arr_n) {
    uint32_t et;
    uint64_t cnt, i;
    const char *why;
    if (type >= GG_N_TYPES) return xf_fail("key \"%s\": unknown value type %lu", key, (unsigned long)type);
    if (type == GG_STR && depth > 0) return gg_skip_string(r, key);   /* array elements (a vocabulary): not read */
    if (type == GG_STR) return gg_string(r, key, NULL);
    if (type != GG_ARR) {
        if (!gg_need(r, gg_scalar_size(type))) return xf_fail("key \"%s\": value runs past the end of the file", key);
        if (type == GG_BOOL && r->p[r->at] > 1) return xf_fail("key \"%s\": bool is neither 0 nor 1", key);
        r->at += gg_scalar_size(type);
        return NULL;
    }
    if (depth > 2) return xf_fail("key \"%s\": arrays nested too deeply", key);
    if (!gg_u32(r, &et) || !gg_u64(r, &cnt)) return xf_fail("key \"%s\": truncated array header", key);
    if (et >= GG_N_TYPES) return xf_fail("key \"%s\": unknown array element type %lu", key, (unsigned long)et);
    if (arr_type) { *arr_type = et; *arr_n = cnt; }
    if (et != GG_STR && et != GG_ARR) {
        if (cnt > (r->n - r->at) / gg_scalar_size(et)) return xf_fail("key \"%s\": array of %llu runs past the end of the file", key, (unsigned long long)cnt);
        r->at += (size_t)cnt * gg_scalar_size(et);
        return NULL;
    }
    if (cnt > (r->n - r->at) / 8) return xf_fail("key \"%s\": array of %llu runs past the end of the file", key, (unsigned long long)cnt);
    for (i = 0; i < cnt; i++) if ((why = gg_value(r, et, key, depth + 1, NULL, NULL))) return why;
    return NULL;
}

typedef struct { const GgFile *g; } GgCmpCtx;
static int cmp_gg_key(const void *a, const void *b, void *ctx) {
    const GgFile *g = ((const GgCmpCtx *)ctx)->g;
    return strcmp(g->kv[*(const size_t *)a].key, g->kv[*(const size_t *)b].key);
}
static int cmp_gg_name(const void *a, const void *b, void *ctx) {
    const GgFile *g = ((const GgCmpCtx *)ctx)->g;
    return strcmp(g->t[*(const size_t *)a].name, g->t[*(const size_t *)b].name);
}
static int cmp_gg_offset(const void *a, const void *b, void *ctx) {
    const GgFile *g = ((const GgCmpCtx *)ctx)->g;
    uint64_t x = g->t[*(const size_t *)a].offset, y = g->t[*(const size_t *)b].offset;
    return (x > y) - (x < y);
}

/* Names unique: sort indices by name and compare neighbours. */
static const char *gg_unique(GgFile *g, int keys) {
    size_t n = keys ? g->n_kv : g->n_t, i, *idx = xmalloc((n ? n : 1) * sizeof(size_t));
    GgCmpCtx cx;
    const char *why = NULL;
    cx.g = g;
    for (i = 0; i < n; i++) idx[i] = i;
    stable_sort(idx, n, sizeof(size_t), keys ? cmp_gg_key : cmp_gg_name, &cx);
    for (i = 1; i < n && !why; i++) {
        const char *a = keys ? g->kv[idx[i - 1]].key : g->t[idx[i - 1]].name, *b = keys ? g->kv[idx[i]].key : g->t[idx[i]].name;
        if (strcmp(a, b) == 0) why = xf_fail("%s \"%s\" appears twice", keys ? "key" : "tensor", b);
    }
    free(idx);
    return why;
}

static const GgKv *gg_find(const GgFile *g, const char *key) {
    size_t i;
    for (i = 0; i < g->n_kv; i++) if (strcmp(g->kv[i].key, key) == 0) return &g->kv[i];
    return NULL;
}

/* Element j of a tensor of ggml type: F32, F16, BF16 exactly; Q8_0 and Q4_0
 * dequantized as llama.cpp does (blocks of 32: an F16 scale d, then 32
 * signed bytes q, or 16 bytes of two 4-bit q - 8, low nibbles first; value
 * d * q, exact in float). Sizes were checked by gguf_parse. */
static float gg_tensor_value(uint32_t type, const uint8_t *q, size_t j) {
    const uint8_t *b;
    unsigned k = (unsigned)(j % 32);
    int v;
    if (type == 0) return le_get_f32(q + 4 * j);
    if (type == 1) return f16_to_f32((uint16_t)(q[2 * j] | q[2 * j + 1] << 8));
    if (type == 30) return f32_from_bits((uint32_t)(q[2 * j] | q[2 * j + 1] << 8) << 16);
    if (type == 8) {
        b = q + (j / 32) * 34;
        v = b[2 + k] < 128 ? b[2 + k] : b[2 + k] - 256;
    } else {
        b = q + (j / 32) * 18;
        v = (k < 16 ? (b[2 + k] & 15) : (b[2 + k - 16] >> 4)) - 8;
    }
    return f16_to_f32((uint16_t)(b[0] | b[1] << 8)) * (float)v;
}

/* Parse and validate a GGUF image (versions 2 and 3). */
static const char *gguf_parse(GgFile *g, const uint8_t *p, size_t n) {
    GgRd r;
    uint32_t version;
    uint64_t n_t, n_kv, i, d;
    const char *why = NULL;
    const GgKv *al;
    size_t *idx, k, data_len;
    GgCmpCtx cx;
    memset(g, 0, sizeof *g);
    g->p = p; g->n = n;
    if (n < 24) return xf_fail("too short for a GGUF header (%lu bytes)", (unsigned long)n);
    if (memcmp(p, "GGUF", 4) != 0) return xf_fail("not a GGUF file (bad magic)");
    version = le_get_u32(p + 4);
    if (version != 2 && version != 3) return xf_fail("unsupported GGUF version %lu (srlm reads 2 and 3)", (unsigned long)version);
    n_t = le_get_u64(p + 8);
    n_kv = le_get_u64(p + 16);
    /* the smallest key/value takes 13 bytes and the smallest tensor info 32: bound the counts by the file */
    if (n_kv > (n - 24) / 13) return xf_fail("key/value count %llu cannot fit in a %lu-byte file", (unsigned long long)n_kv, (unsigned long)n);
    if (n_t > (n - 24) / 32) return xf_fail("tensor count %llu cannot fit in a %lu-byte file", (unsigned long long)n_t, (unsigned long)n);
    r.p = p; r.n = n; r.at = 24;
    g->kv = xcalloc((size_t)(n_kv ? n_kv : 1), sizeof(GgKv));
    g->t = xcalloc((size_t)(n_t ? n_t : 1), sizeof(GgTensor));
    for (i = 0; i < n_kv && !why; i++) {
        GgKv *kv = &g->kv[i];
        g->n_kv++;
        if ((why = gg_string(&r, "a metadata key", &kv->key))) break;
        if (!kv->key[0]) { why = xf_fail("an empty metadata key"); break; }
        if (!gg_u32(&r, &kv->type)) { why = xf_fail("key \"%s\": truncated before its type", kv->key); break; }
        kv->at = r.at;
        why = gg_value(&r, kv->type, kv->key, 0, &kv->arr_type, &kv->arr_n);
    }
    if (!why) why = gg_unique(g, 1);
    g->alignment = GGUF_ALIGN;
    if (!why && (al = gg_find(g, "general.alignment"))) {
        if (al->type != GG_U32) why = xf_fail("general.alignment is not a u32");
        else {
            g->alignment = le_get_u32(p + al->at);
            if (g->alignment == 0 || (g->alignment & (g->alignment - 1)))
                why = xf_fail("general.alignment %lu is not a power of two", (unsigned long)g->alignment);
        }
    }
    for (i = 0; i < n_t && !why; i++) {
        GgTensor *t = &g->t[i];
        uint64_t count = 1;
        size_t esize;
        g->n_t++;
        if ((why = gg_string(&r, "a tensor name", &t->name))) break;
        if (!gg_u32(&r, &t->n_dims)) { why = xf_fail("tensor \"%s\": truncated info", t->name); break; }
        if (t->n_dims < 1 || t->n_dims > 4) { why = xf_fail("tensor \"%s\": %lu dimensions (GGUF allows 1..4)", t->name, (unsigned long)t->n_dims); break; }
        for (d = 0; d < t->n_dims && !why; d++) {
            if (!gg_u64(&r, &t->ne[d])) why = xf_fail("tensor \"%s\": truncated info", t->name);
            else if (t->ne[d] && count > ((uint64_t)1 << 40) / t->ne[d]) why = xf_fail("tensor \"%s\": shape too large", t->name);
            else count *= t->ne[d];
        }
        if (why) break;
        if (!gg_u32(&r, &t->type) || !gg_u64(&r, &t->offset)) { why = xf_fail("tensor \"%s\": truncated info", t->name); break; }
        esize = t->type == 0 ? 4 : t->type == 1 || t->type == 30 ? 2 : t->type == 8 || t->type == 2 ? 1 : 0;
        if (!esize) { why = xf_fail("tensor \"%s\": ggml type %lu; srlm reads F32 (0), F16 (1), BF16 (30), Q8_0 (8) and Q4_0 (2)",
                                    t->name, (unsigned long)t->type); break; }
        if (esize == 1 && (t->ne[0] % 32 || count % 32)) { why = xf_fail("tensor \"%s\": quantized rows of %llu values (blocks hold 32)",
                                                                        t->name, (unsigned long long)t->ne[0]); break; }
        if (t->offset % g->alignment) { why = xf_fail("tensor \"%s\": offset %llu is not a multiple of the alignment %lu", t->name,
                                                      (unsigned long long)t->offset, (unsigned long)g->alignment); break; }
        t->bytes = esize > 1 ? (size_t)count * esize : (size_t)(count / 32) * (t->type == 8 ? 34 : 18);
    }
    if (!why) why = gg_unique(g, 0);
    if (why) { gg_free(g); return why; }
    g->data_at = (r.at + g->alignment - 1) / g->alignment * g->alignment;
    if (g->data_at > n) { gg_free(g); return xf_fail("the tensor data would start past the end of the file"); }
    data_len = n - g->data_at;
    /* in offset order every tensor starts where the previous one ends, rounded up to the alignment */
    idx = xmalloc((g->n_t ? g->n_t : 1) * sizeof(size_t));
    cx.g = g;
    for (k = 0; k < g->n_t; k++) idx[k] = k;
    stable_sort(idx, g->n_t, sizeof(size_t), cmp_gg_offset, &cx);
    {
        uint64_t expect = 0, end = 0;
        for (k = 0; k < g->n_t && !why; k++) {
            const GgTensor *t = &g->t[idx[k]];
            if (t->offset < expect)
                why = xf_fail("tensors \"%s\" and \"%s\" overlap", g->t[idx[k - 1]].name, t->name);
            else if (t->offset > expect)
                why = xf_fail("hole in the data: bytes %llu..%llu before tensor \"%s\" belong to no tensor",
                              (unsigned long long)expect, (unsigned long long)t->offset, t->name);
            else if (t->offset > data_len || t->bytes > data_len - t->offset)
                why = xf_fail("tensor \"%s\" (%lu bytes at %llu) runs past the end of the file", t->name, (unsigned long)t->bytes,
                              (unsigned long long)t->offset);
            end = t->offset + t->bytes;
            expect = (end + g->alignment - 1) / g->alignment * g->alignment;
        }
        if (!why && data_len - end >= g->alignment)
            why = xf_fail("%llu bytes after the last tensor belong to no tensor", (unsigned long long)(data_len - end));
    }
    free(idx);
    if (why) gg_free(g);
    return why;
}

/* An unsigned integer / float / string value of a key (type-flexible like llama.cpp's readers). */
static int gg_get_uint(const GgFile *g, const char *key, uint64_t *out) {
    const GgKv *kv = gg_find(g, key);
    const uint8_t *q;
    if (!kv) return 0;
    q = g->p + kv->at;
    switch (kv->type) {
    case GG_U8: *out = q[0]; return 1;
    case GG_U16: *out = (uint64_t)(q[0] | q[1] << 8); return 1;
    case GG_U32: *out = le_get_u32(q); return 1;
    case GG_U64: *out = le_get_u64(q); return 1;
    case GG_I32: if ((int32_t)le_get_u32(q) < 0) return -1; *out = le_get_u32(q); return 1;
    case GG_I64: if ((int64_t)le_get_u64(q) < 0) return -1; *out = le_get_u64(q); return 1;
    default: return -1;
    }
}
static int gg_get_float(const GgFile *g, const char *key, float *out) {
    const GgKv *kv = gg_find(g, key);
    if (!kv) return 0;
    if (kv->type == GG_F32) { *out = le_get_f32(g->p + kv->at); return 1; }
    if (kv->type == GG_F64) { uint64_t b = le_get_u64(g->p + kv->at); double d; memcpy(&d, &b, 8); *out = (float)d; return 1; }
    return -1;
}
static char *gg_get_string(const GgFile *g, const char *key) {
    const GgKv *kv = gg_find(g, key);
    uint64_t len;
    char *s;
    if (!kv || kv->type != GG_STR) return NULL;
    len = le_get_u64(g->p + kv->at);
    s = xmalloc((size_t)len + 1);
    memcpy(s, g->p + kv->at + 8, (size_t)len);
    s[len] = 0;
    return s;
}

static const char *gg_int_field(const GgFile *g, const char *key, int required, int def, int *out) {
    uint64_t u = 0; /* gcc -O1 cannot see that rc > 0 sets it */
    int rc = gg_get_uint(g, key, &u);
    if (rc == 0) { if (required) return xf_fail("no \"%s\"", key); *out = def; return NULL; }
    if (rc < 0 || u > 1u << 30) return xf_fail("\"%s\" is not a usable non-negative integer", key);
    *out = (int)u;
    return NULL;
}

/* GGUF image -> model. */
static const char *gguf_import(Model *m, char **meta_out, const uint8_t *p, size_t n, int context) {
    GgFile g;
    Config c;
    XTensor *xt;
    const char *why;
    char *arch, *meta;
    const GgTensor *emb = NULL, *out = NULL;
    size_t i, j, k, *tensor_of;
    int nt, rope_dim, *used;
    if ((why = gguf_parse(&g, p, n))) return why;
    arch = gg_get_string(&g, "general.architecture");
    if (!arch || strcmp(arch, "llama") != 0) {
        why = xf_fail("general.architecture is %s%.40s%s; srlm imports \"llama\"", arch ? "\"" : "", arch ? arch : "missing", arch ? "\"" : "");
        free(arch); gg_free(&g); return why;
    }
    free(arch);
    for (i = 0; i < g.n_t; i++) {
        if (strcmp(g.t[i].name, "token_embd.weight") == 0) emb = &g.t[i];
        if (strcmp(g.t[i].name, "output.weight") == 0) out = &g.t[i];
    }
    if (!emb || emb->n_dims != 2) { gg_free(&g); return xf_fail("no 2-D tensor \"token_embd.weight\""); }
    c.vocab_size = emb->ne[1] > 1u << 30 ? 0 : (int)emb->ne[1];
    c.tied = out == NULL;
    if ((why = gg_int_field(&g, "llama.embedding_length", 1, 0, &c.dim)) || (why = gg_int_field(&g, "llama.block_count", 1, 0, &c.n_layers)) ||
        (why = gg_int_field(&g, "llama.feed_forward_length", 1, 0, &c.hidden_dim)) ||
        (why = gg_int_field(&g, "llama.attention.head_count", 1, 0, &c.n_heads)) ||
        (why = gg_int_field(&g, "llama.attention.head_count_kv", 0, c.n_heads, &c.n_kv_heads)) ||
        (why = gg_int_field(&g, "llama.context_length", 1, 0, &c.max_seq_len))) { gg_free(&g); return why; }
    if (gg_get_float(&g, "llama.attention.layer_norm_rms_epsilon", &c.norm_eps) != 1) { gg_free(&g); return xf_fail("no f32 \"llama.attention.layer_norm_rms_epsilon\""); }
    c.rope_theta = 10000.0f;
    if (gg_get_float(&g, "llama.rope.freq_base", &c.rope_theta) < 0) { gg_free(&g); return xf_fail("\"llama.rope.freq_base\" is not a float"); }
    if (context > 0) c.max_seq_len = context;
    if (config_invalid(&c)) { why = xf_fail("unusable config: %s", config_invalid(&c)); gg_free(&g); return why; }
    if ((why = gg_int_field(&g, "llama.rope.dimension_count", 0, cfg_head_dim(&c), &rope_dim))) { gg_free(&g); return why; }
    if (rope_dim != cfg_head_dim(&c)) { gg_free(&g); return xf_fail("llama.rope.dimension_count %d != head size %d (partial RoPE is unsupported)", rope_dim, cfg_head_dim(&c)); }
    /* every tensor present with its shape (and so its bytes in the file, which
     * gguf_parse checked) before anything is allocated from the config */
    xt = xmalloc((size_t)(3 + 9 * c.n_layers) * sizeof(XTensor));
    nt = xt_list(&c, XF_GGUF, xt);
    used = xcalloc(g.n_t ? g.n_t : 1, sizeof(int));
    tensor_of = xcalloc((size_t)nt, sizeof(size_t));
    for (k = 0; k < (size_t)nt && !why; k++) {
        const GgTensor *t = NULL;
        for (i = 0; i < g.n_t; i++) if (strcmp(g.t[i].name, xt[k].name) == 0) { t = &g.t[i]; used[i] = 1; tensor_of[k] = i; break; }
        if (!t) { why = xf_fail("no tensor \"%s\"", xt[k].name); break; }
        if (xt[k].cols ? (t->n_dims != 2 || t->ne[0] != xt[k].cols || t->ne[1] != xt[k].rows) : (t->n_dims != 1 || t->ne[0] != xt[k].rows)) {
            char have[96], need[48];
            shape_text(have, sizeof have, t->ne, (int)t->n_dims);
            if (xt[k].cols) snprintf(need, sizeof need, "[%lu, %lu]", (unsigned long)xt[k].cols, (unsigned long)xt[k].rows);
            else snprintf(need, sizeof need, "[%lu]", (unsigned long)xt[k].rows);
            why = xf_fail("tensor \"%s\" has ne %s, the config needs %s", t->name, have, need);
            break;
        }
    }
    if (why) { free(xt); free(used); free(tensor_of); gg_free(&g); return why; }
    memset(m, 0, sizeof *m);
    m->cfg = c;
    model_init_buffers(m);
    for (k = 0; k < (size_t)nt && !why; k++) {
        const GgTensor *t = &g.t[tensor_of[k]];
        float *dst = m->params + param_offset(&c, xt[k].p, xt[k].layer);
        const uint8_t *q = p + g.data_at + t->offset;
        for (j = 0; j < xt_count(&xt[k]); j++) {
            float v = gg_tensor_value(t->type, q, j);
            if (!f32_isfinite(v)) { why = xf_fail("tensor \"%s\": non-finite value at index %lu", t->name, (unsigned long)j); break; }
            dst[j] = v;
        }
    }
    for (i = 0; i < g.n_t && !why; i++)
        if (!used[i]) why = xf_fail("unexpected tensor \"%s\" (not part of a plain Llama: unsupported architecture?)", g.t[i].name);
    if (!why && meta_out) {
        meta = gg_get_string(&g, "srlm.meta");
        if (!meta) { meta = xmalloc(32); strcpy(meta, "srlm import gguf"); }
        *meta_out = meta;
    }
    free(xt); free(used); free(tensor_of);
    gg_free(&g);
    if (why) model_free(m);
    return why;
}

/* --------------------------------------------------------------------------
 * The export and import commands
 * ------------------------------------------------------------------------ */

static char *path_join(const char *dir, const char *name) {
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = xmalloc(n);
    snprintf(p, n, "%s/%s", dir, name);
    return p;
}

/* Write b to DIR/NAME (atomically) and print the path; frees b. */
static void export_write(const char *dir, const char *name, Buf *b) {
    char *path = path_join(dir, name);
    if (write_file_atomic(path, b->p, b->n) != 0) exit(1);
    printf("%s (%lu bytes)\n", path, (unsigned long)b->n);
    free(path); free(b->p);
    memset(b, 0, sizeof *b);
}

static const char *export_help =
    "usage: srlm export --model CKPT --format hf|llama2c|gguf --out DIR [--tokenizer FILE] [--dtype f32|f16|bf16]\n"
    "Write a checkpoint in another format, into DIR (created if missing):\n"
    "  hf       model.safetensors (F32, or --dtype) + config.json (LlamaForCausalLM) + tokenizer.json\n"
    "           + tokenizer_config.json (chat template) + special_tokens_map.json + generation_config.json\n"
    "  llama2c  model.bin (llama2.c's legacy v0 layout, read by its run.c) + tokenizer.bin\n"
    "  gguf     model.gguf (GGUF v3, F32 or --dtype, llama.* keys, the tokenizer, the chat template)\n"
    "--tokenizer is the model's BPE file; it may be left out for a byte-level (264-id) model.\n"
    "--dtype f16|bf16 rounds the weights (to nearest even) for hf and gguf (GGUF keeps the\n"
    "norm weights F32); F32 (the default) is exact.\n"
    "The checkpoint's config and provenance text travel along, so 'srlm import' of an F32\n"
    "export gives back the same bytes (llama2.c: needs rope_theta 10000, norm_eps 1e-5; see README).\n";

static int cmd_export(int argc, char **argv) {
    Opts o = opts_make(argc, argv, "export");
    const char *model_path, *format, *dir, *tok_path, *dtype_s, *why;
    int dtype;
    Model m;
    Tokenizer tok;
    Buf b = {0, 0, 0};
    uint8_t *data;
    size_t n;
    char *meta = NULL;
    int first, second;
    if (wants_help(argc, argv)) { free(o.used); fputs(export_help, stdout); return 0; }
    model_path = opt_str(&o, "--model", NULL);
    format = opt_str(&o, "--format", NULL);
    dir = opt_str(&o, "--out", NULL);
    tok_path = opt_str(&o, "--tokenizer", NULL);
    dtype_s = opt_str(&o, "--dtype", "f32");
    opts_done(&o);
    if (!model_path || !format || !dir) die("export: --model, --format and --out are required (see 'srlm export --help')");
    dtype = strcmp(dtype_s, "f32") == 0 ? XD_F32 : strcmp(dtype_s, "f16") == 0 ? XD_F16 : strcmp(dtype_s, "bf16") == 0 ? XD_BF16 : -1;
    if (dtype < 0) die("export: unknown --dtype '%s' (f32, f16, bf16)", dtype_s);
    if (dtype != XD_F32 && strcmp(format, "llama2c") == 0) die("export: llama2c files are F32 only (--dtype f32)");
    if (strcmp(format, "hf") != 0 && strcmp(format, "llama2c") != 0 && strcmp(format, "gguf") != 0)
        die("export: unknown --format '%s' (hf, llama2c, gguf)", format);
    if (ckpt_read(model_path, &data, &n) != 0) return 1;
    if ((why = ckpt_parse(&m, data, n, &meta))) die("%s: %s", model_path, why);
    free(data);
    export_tokenizer(&tok, tok_path, m.cfg.vocab_size);
    if (!utf8_valid(meta, strlen(meta)))
        fprintf(stderr, "srlm: export: warning: the provenance text is not valid UTF-8; it is stored with U+FFFD\n");
    make_dirs(dir);
    if (strcmp(format, "hf") == 0) {
        st_build(&b, &m, meta, dtype);
        export_write(dir, "model.safetensors", &b);
        hf_config_build(&b, &m.cfg, dtype);
        export_write(dir, "config.json", &b);
        hf_generation_config_build(&b);
        export_write(dir, "generation_config.json", &b);
        if ((second = duplicate_spelling(&tok, &first)) >= 0)
            fprintf(stderr, "srlm: export: tokenizer.json not written: ids %d and %d spell the same bytes, which a "
                            "string -> id vocabulary cannot hold\n", first, second);
        else {
            hf_tokenizer_build(&b, &tok);
            export_write(dir, "tokenizer.json", &b);
            hf_tokenizer_config_build(&b, &m.cfg);
            export_write(dir, "tokenizer_config.json", &b);
            hf_special_tokens_map_build(&b);
            export_write(dir, "special_tokens_map.json", &b);
        }
    } else if (strcmp(format, "llama2c") == 0) {
        if ((why = l2c_build(&b, &m))) die("export: %s", why);
        export_write(dir, "model.bin", &b);
        l2c_tokenizer_build(&b, &tok);
        export_write(dir, "tokenizer.bin", &b);
    } else {
        gguf_build(&b, &m, &tok, meta, dtype);
        export_write(dir, "model.gguf", &b);
    }
    free(meta);
    tok_free(&tok);
    model_free(&m);
    return 0;
}

static const char *import_help =
    "usage: srlm import --format hf|llama2c|gguf --from PATH --out CKPT [--meta TEXT] [--context N]\n"
    "Read another format into an srlm checkpoint:\n"
    "  hf       PATH is a directory with config.json and model.safetensors (F32, F16 or BF16)\n"
    "           of a LlamaForCausalLM; wq/wk rows are permuted back to interleaved RoPE\n"
    "  llama2c  PATH is a legacy (v0) llama2.c checkpoint (rope_theta 10000, norm_eps 1e-5)\n"
    "  gguf     PATH is a GGUF v2/v3 file of architecture llama with F32, F16, BF16, Q8_0 or Q4_0\n"
    "           tensors (quantized ones dequantized)\n"
    "  --meta TEXT     provenance text (default: the file's srlm.meta, else \"srlm import FORMAT\")\n"
    "  --context N     max_seq_len to use instead of the file's\n";

static int cmd_import(int argc, char **argv) {
    Opts o = opts_make(argc, argv, "import");
    const char *format, *from, *out, *meta_opt, *why;
    int context;
    Model m;
    uint8_t *data = NULL, *cfg = NULL;
    size_t n, cn;
    char *meta = NULL, hex[65];
    if (wants_help(argc, argv)) { free(o.used); fputs(import_help, stdout); return 0; }
    format = opt_str(&o, "--format", NULL);
    from = opt_str(&o, "--from", NULL);
    out = opt_str(&o, "--out", NULL);
    meta_opt = opt_str(&o, "--meta", NULL);
    context = opt_int(&o, "--context", 0, 1, 65536);
    opts_done(&o);
    if (!format || !from || !out) die("import: --format, --from and --out are required (see 'srlm import --help')");
    if (strcmp(format, "hf") == 0) {
        char *cp = path_join(from, "config.json"), *sp = path_join(from, "model.safetensors"), *ip = path_join(from, "model.safetensors.index.json");
        FILE *f = fopen(ip, "rb");
        if (f) { fclose(f); die("%s: sharded safetensors are not supported (merge the shards into model.safetensors)", ip); }
        if (read_file(cp, &cfg, &cn) != 0 || read_file(sp, &data, &n) != 0) return 1;
        why = hf_import(&m, &meta, (const char *)cfg, cn, data, n, context);
        if (why && strncmp(why, "config.json: ", 13) == 0) die("%s: %s", cp, why + 13);
        if (why) die("%s: %s", sp, why);
        free(cp); free(sp); free(ip); free(cfg);
    } else if (strcmp(format, "llama2c") == 0) {
        if (read_file(from, &data, &n) != 0) return 1;
        if ((why = l2c_parse(&m, data, n))) die("%s: %s", from, why);
        if (context > 0) die("import: --context is not supported for llama2c (the file's seq_len is the context)");
        meta = xmalloc(32);
        strcpy(meta, "srlm import llama2c");
    } else if (strcmp(format, "gguf") == 0) {
        if (read_file(from, &data, &n) != 0) return 1;
        if ((why = gguf_import(&m, &meta, data, n, context))) die("%s: %s", from, why);
    } else {
        die("import: unknown --format '%s' (hf, llama2c, gguf)", format);
    }
    free(data);
    if (ckpt_save(out, &m, meta_opt ? meta_opt : meta, hex) != 0 || tokenizer_note_write(out, NULL) != 0) return 1;
    printf("%s  sha256 %s\n", out, hex);
    free(meta);
    model_free(&m);
    return 0;
}


/* The commands, in the order of the paper's loop; help text comes from here. */
static const struct { const char *name; int (*run)(int, char **); const char *what; } commands[] = {
    {"tokenizer", cmd_tokenizer, "train | encode | decode a byte-level BPE tokenizer"},
    {"train", cmd_train, "pretrain a model on text (M0)"},
    {"sample", cmd_sample, "continue a prompt with a checkpoint"},
    {"info", cmd_info, "validate a checkpoint, print its config and SHA-256"},
    {"sft", cmd_sft, "supervised fine-tuning on instruction/response JSONL (IFT, EFT)"},
    {"judge", cmd_judge, "the model judges instruction/response pairs (LLM-as-a-Judge)"},
    {"dpo", cmd_dpo, "DPO on preference pairs (TRL format), reference = the starting model"},
    {"chat", cmd_chat, "talk to a model in the terminal (chat format, streamed); --judge: judge a pair"},
    {"answer", cmd_answer, "the model answers instruction JSONL (greedy), for a grader"},
    {"eval-rm", cmd_eval_rm, "reward-model metrics on ranked sets"},
    {"run", cmd_run, "the whole self-rewarding loop, evaluation and report"},
    {"vectors", cmd_vectors, "reference vectors (logits, loss, gradients, AdamW, DPO, sampling) for ports"},
    {"export", cmd_export, "write a checkpoint as Hugging Face safetensors, llama2.c or GGUF"},
    {"import", cmd_import, "read Hugging Face safetensors, llama2.c or GGUF into a checkpoint"},
};
#define N_COMMANDS ((int)(sizeof commands / sizeof commands[0]))

static void print_usage(FILE *f) {
    int i;
    fputs("srlm - Self-Rewarding Language Models, a bit-reproducible reference in C99\n"
          "usage: srlm COMMAND [options]   ('srlm COMMAND --help' for each)\n", f);
    for (i = 0; i < N_COMMANDS; i++) fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].what);
}

/* External linkage so that tests, which include this file without main, compile warning-free. */
int srlm_main(int argc, char **argv) {
    int i;
    platform_binary_stdout(); /* the bytes srlm prints are the bytes it means, on Windows too */
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
        print_usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 1 : stdout_finish();
    }
    for (i = 0; i < N_COMMANDS; i++)
        if (strcmp(argv[1], commands[i].name) == 0) {
            int rc = commands[i].run(argc - 2, argv + 2);
            return stdout_finish() ? 1 : rc;
        }
    fprintf(stderr, "srlm: unknown command '%s'\n", argv[1]);
    print_usage(stderr);
    return 1;
}

#ifndef SRLM_NO_MAIN
int main(int argc, char **argv) { return srlm_main(argc, argv); }
#endif
