/* world.c - srlm's synthetic instruction world: the task generator and the exact grader.
 *
 * The paper learns from human data (Open Assistant prompts and rankings) and is
 * evaluated by GPT-4. srlm has neither, so this world replaces both: small
 * instructions whose answers a program checks exactly (reverse a word, add two
 * numbers, ...). The grader labels the EFT seed data (it plays the humans) and
 * scores evaluation (it plays GPT-4); it never takes part in the self-rewarding
 * loop itself, where the model judges its own responses.
 *
 *   world gen --seed S --out DIR [options]    corpus, IFT, EFT, eval sets, MANIFEST
 *   world grade IN.jsonl OUT.jsonl             grade {"instruction","response"} records
 *   world check INSTRUCTION RESPONSE           grade one pair, show the canonical answer
 *   world fill TEMPLATE INSTRUCTION RESPONSE   print the filled judge prompt
 *
 * Build (from the repository root):
 *   make tiny_models/world   (cc -std=c99 -O2 -ffp-contract=off -o tiny_models/world tiny_models/world.c tensor.c)
 * Only tensor.c's RNG, hash64 and SHA-256 are used. No floating point anywhere: every
 * decision is an integer draw, so the output is byte-identical on every platform.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../tensor.h"

#define WORD_MAX 24          /* longest word the grader accepts in an instruction */
#define ANS_CAP 512          /* an answer: at most 9 copies of a 24-letter word */
#define TEXT_CAP 2048        /* an instruction or a response built by the generator */
#define TEMPLATE_CAP 4096    /* the judge template */

static void die(const char *fmt, ...) {
    va_list ap;
    fprintf(stderr, "world: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}

/* ------------------------------------------------------------------------
 * Growable byte buffer (always NUL-terminated, may also hold NUL bytes).
 * ---------------------------------------------------------------------- */
typedef struct { char *p; size_t n, cap; } Buf;

static void buf_reserve(Buf *b, size_t extra) {
    size_t cap;
    char *p;
    if (b->n + extra + 1 <= b->cap) return;
    cap = b->cap ? b->cap : 256;
    while (cap < b->n + extra + 1) cap *= 2;
    p = (char *)realloc(b->p, cap);
    if (!p) die("out of memory");
    b->p = p;
    b->cap = cap;
}
static void buf_put(Buf *b, const char *s, size_t n) {
    buf_reserve(b, n);
    if (n) memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}
static void buf_puts(Buf *b, const char *s) { buf_put(b, s, strlen(s)); }
static void buf_putc(Buf *b, char c) { buf_put(b, &c, 1); }
static void buf_printf(Buf *b, const char *fmt, ...) {
    va_list ap;
    int n;
    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) die("formatting failed");
    buf_reserve(b, (size_t)n);
    va_start(ap, fmt);
    vsnprintf(b->p + b->n, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->n += (size_t)n;
}
static void buf_free(Buf *b) { free(b->p); b->p = NULL; b->n = b->cap = 0; }

/* Append s to the C string out (capacity cap); the generator's texts are far
 * below their capacities, so running out means a bug. */
static void str_cat(char *out, size_t cap, const char *s) {
    size_t n = strlen(out), m = strlen(s);
    if (n + m + 1 > cap) die("internal: text buffer too small");
    memcpy(out + n, s, m + 1);
}

/* JSON string writer: escapes '"', '\\' and control bytes; every other byte,
 * including invalid UTF-8, is copied as is. */
static void json_str(Buf *b, const char *s, size_t n) {
    static const char hex[] = "0123456789abcdef";
    size_t i;
    buf_putc(b, '"');
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"') buf_puts(b, "\\\"");
        else if (c == '\\') buf_puts(b, "\\\\");
        else if (c == '\n') buf_puts(b, "\\n");
        else if (c == '\t') buf_puts(b, "\\t");
        else if (c == '\r') buf_puts(b, "\\r");
        else if (c < 0x20 || c == 0x7f) {
            char u[7] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15], 0};
            buf_puts(b, u);
        } else buf_putc(b, (char)c);
    }
    buf_putc(b, '"');
}
static void json_key_str(Buf *b, const char *key, const char *val) {
    buf_printf(b, "\"%s\": ", key);
    json_str(b, val, strlen(val));
}

static uint64_t fnv1a64(const char *s, size_t n) {
    uint64_t h = 0xcbf29ce484222325ull;
    size_t i;
    for (i = 0; i < n; i++) { h ^= (unsigned char)s[i]; h *= 0x100000001b3ull; }
    return h;
}

/* A set of strings (open addressing), for keeping files free of repeats. */
typedef struct { char **slot; size_t cap, n; } StrSet;

static size_t strset_find(const StrSet *s, const char *str) {
    size_t i = (size_t)fnv1a64(str, strlen(str)) & (s->cap - 1);
    while (s->slot[i] && strcmp(s->slot[i], str) != 0) i = (i + 1) & (s->cap - 1);
    return i;
}
static int strset_has(const StrSet *s, const char *str) { return s->cap && s->slot[strset_find(s, str)] != NULL; }
static int strset_add(StrSet *s, const char *str) {
    size_t i, m = strlen(str);
    if (2 * (s->n + 1) > s->cap) {            /* grow to keep the load under 1/2 */
        StrSet big;
        big.cap = s->cap ? 2 * s->cap : 64;
        big.n = s->n;
        big.slot = (char **)calloc(big.cap, sizeof(char *));
        if (!big.slot) die("out of memory");
        for (i = 0; i < s->cap; i++)
            if (s->slot[i]) big.slot[strset_find(&big, s->slot[i])] = s->slot[i];
        free(s->slot);
        *s = big;
    }
    i = strset_find(s, str);
    if (s->slot[i]) return 0;
    s->slot[i] = (char *)malloc(m + 1);
    if (!s->slot[i]) die("out of memory");
    memcpy(s->slot[i], str, m + 1);
    s->n++;
    return 1;
}
static void strset_free(StrSet *s) {
    size_t i;
    for (i = 0; i < s->cap; i++) free(s->slot[i]);
    free(s->slot);
    s->slot = NULL;
    s->cap = s->n = 0;
}

/* ------------------------------------------------------------------------
 * The word list: common short English words, lowercase, 3-8 letters, each
 * once (tests/test_world.c checks). Real palindromes close the list; more
 * palindromes are generated from the words (see world_init).
 * ---------------------------------------------------------------------- */
static const char *const word_list[] = {
    "cat", "dog", "cow", "pig", "hen", "fox", "owl", "bee", "ant", "bat", "rat", "elk", "yak", "ape", "eel",
    "horse", "sheep", "goat", "mouse", "tiger", "lion", "zebra", "camel", "whale", "shark", "eagle", "snake",
    "frog", "duck", "goose", "rabbit", "monkey", "donkey", "turtle", "parrot", "spider", "beetle", "lizard",
    "salmon", "kitten", "puppy", "pony", "wolf", "bear", "deer", "seal", "crab", "moth", "worm", "snail",
    "otter", "panda", "koala", "llama", "robin", "crow", "swan", "hawk", "dove", "lamb", "calf", "mule",
    "apple", "bread", "cake", "milk", "rice", "corn", "bean", "pea", "egg", "ham", "jam", "tea", "soup",
    "meat", "fish", "salt", "sugar", "honey", "lemon", "melon", "grape", "peach", "pear", "plum", "cherry",
    "carrot", "potato", "tomato", "onion", "garlic", "pepper", "butter", "cheese", "cookie", "candy", "pasta",
    "pizza", "salad", "juice", "water", "coffee", "nut", "olive", "bacon", "cream", "toast", "pie", "bun",
    "house", "door", "roof", "wall", "floor", "room", "bed", "chair", "table", "lamp", "clock", "bowl", "cup",
    "plate", "fork", "spoon", "knife", "pan", "pot", "oven", "sink", "bath", "towel", "soap", "brush", "comb",
    "mirror", "window", "garden", "fence", "gate", "yard", "stairs", "carpet", "pillow", "blanket", "basket",
    "bottle", "box", "bag", "key", "desk", "shelf", "sofa", "jar", "sun", "moon", "star", "sky", "cloud",
    "rain", "snow", "wind", "storm", "river", "lake", "sea", "ocean", "hill", "mountain", "valley", "forest",
    "tree", "leaf", "root", "seed", "flower", "grass", "rose", "stone", "rock", "sand", "dust", "mud", "ice",
    "fire", "smoke", "island", "beach", "desert", "field", "meadow", "pond", "wave", "shore", "earth",
    "planet", "branch", "bush", "cave", "head", "hand", "foot", "arm", "leg", "ear", "nose", "mouth", "lip",
    "tooth", "hair", "neck", "back", "knee", "finger", "heart", "blood", "bone", "skin", "face", "chin",
    "thumb", "man", "woman", "boy", "girl", "baby", "child", "friend", "mother", "father", "sister",
    "brother", "uncle", "aunt", "king", "queen", "doctor", "farmer", "teacher", "pilot", "sailor", "baker",
    "singer", "driver", "artist", "nurse", "guest", "judge", "book", "pen", "pencil", "paper", "letter",
    "map", "card", "ticket", "coin", "ring", "hat", "coat", "shoe", "sock", "shirt", "dress", "glove",
    "scarf", "belt", "boot", "button", "needle", "thread", "rope", "chain", "wheel", "car", "bus", "train",
    "ship", "boat", "plane", "truck", "bike", "road", "street", "bridge", "tower", "castle", "church",
    "school", "market", "shop", "bank", "office", "city", "town", "village", "farm", "tent", "camp", "drum",
    "flute", "piano", "guitar", "violin", "bell", "kite", "ball", "doll", "toy", "run", "jump", "walk",
    "swim", "fly", "sing", "dance", "read", "write", "draw", "paint", "cook", "bake", "build", "play", "work",
    "sleep", "dream", "laugh", "smile", "cry", "shout", "talk", "listen", "think", "learn", "teach", "open",
    "close", "push", "pull", "carry", "throw", "catch", "kick", "climb", "ride", "drive", "travel", "visit",
    "wait", "stay", "start", "stop", "finish", "begin", "leave", "arrive", "return", "borrow", "follow",
    "big", "small", "tall", "short", "long", "wide", "thin", "thick", "hot", "cold", "warm", "cool", "dry",
    "wet", "soft", "hard", "fast", "slow", "loud", "quiet", "happy", "sad", "angry", "calm", "brave", "kind",
    "proud", "gentle", "clever", "bright", "dark", "light", "heavy", "empty", "full", "clean", "dirty", "new",
    "old", "young", "fresh", "sweet", "sour", "bitter", "rich", "poor", "busy", "lazy", "early", "late",
    "strong", "weak", "simple", "easy", "red", "blue", "green", "yellow", "orange", "purple", "pink", "brown",
    "black", "white", "gray", "silver", "golden", "day", "night", "morning", "evening", "week", "month",
    "year", "hour", "minute", "spring", "summer", "autumn", "winter", "today", "music", "song", "story",
    "poem", "game", "puzzle", "picture", "movie", "color", "number", "circle", "square", "line", "point",
    "corner", "edge", "middle", "center", "shape", "size", "price", "gift", "party", "dinner", "lunch",
    "holiday", "journey", "question", "answer", "lesson", "problem", "idea", "plan", "word", "name", "voice",
    "sound", "noise", "silence", "secret", "magic", "luck", "wish", "hope", "fear", "joy", "peace", "truth",
    "power", "money", "energy", "space", "time", "world", "nature", "level", "radar", "civic", "kayak",
    "refer", "rotor", "madam", "noon", "deed", "peep", "pop", "dad", "mom", "eye", "wow", "did", "nun", "pup",
    "gag", "tot", "stats", "tenet", "solos", "sagas", "racecar", "redder", "chicken", "kitchen", "rainbow",
    "thunder", "dolphin", "penguin", "giraffe", "octopus", "pumpkin", "blossom", "lantern", "cabinet",
    "curtain", "balloon", "diamond", "crystal", "freedom", "harvest", "history", "library", "machine",
    "message", "monster", "pattern", "present", "program", "rooster", "sandwich", "elephant", "dinosaur",
    "airplane", "birthday", "notebook", "treasure", "umbrella", "sunshine", "football", "squirrel",
    "hospital", "painting", "kangaroo", "lemonade", "hamster", "leopard", "panther", "sparrow", "biscuit",
    "popcorn", "cupcake", "sweater", "trumpet", "captain", "soldier", "student", "dentist", "weather",
    "sunrise", "volcano", "glacier", "orchard", "country", "kingdom", "stadium", "station", "college",
    "factory", "gallery", "cottage",
};
#define NWORDS ((int)(sizeof word_list / sizeof word_list[0]))

/* ------------------------------------------------------------------------
 * Task families. A task is a family plus its arguments. Phrasings and answer
 * sentences are patterns with slots:
 *   {w} word  {c} letter  {a} {b} numbers  {k} count  {r} the answer
 *   {s} "s" unless the answer is "1" (plural of "time")
 * The same phrasing patterns generate instructions and parse them back, so
 * the grader recognises exactly the instructions the generator can write.
 * ---------------------------------------------------------------------- */
enum { F_REVERSE, F_SORT, F_COUNT, F_UPPER, F_ADD, F_REPEAT, F_FIRST, F_LAST,
       F_PALINDROME, F_LENGTH, F_LARGER, F_STARTS, F_ENDS, F_CONTAINS, F_AT, NFAM };
static const char *const family_names[NFAM] = {
    "reverse", "sort", "count", "upper", "add", "repeat", "first", "last", "palindrome", "length", "larger",
    "starts", "ends", "contains", "at"};
/* The first eleven families are closed: each task has exactly one answer, so
 * checking an answer means working it out again. The open families (starts,
 * ends, contains, at: "a 5-letter word that starts with "b"") accept any word of
 * the list that fits both constraints: answering means searching the words,
 * checking means spelling one word out, so a judge can be right more often
 * than the model answers. They are off by default (the shipped data has the
 * closed families only); --families turns them on. */
#define CLOSED_FAMILIES ((1u << F_STARTS) - 1u)
static int is_open(int fam) { return fam == F_STARTS || fam == F_ENDS || fam == F_CONTAINS || fam == F_AT; }

#define MAXPHR 5
static const char *const phrasings[NFAM][MAXPHR + 1] = {
    {"Reverse the word \"{w}\".", "What is \"{w}\" spelled backwards?",
     "Write the letters of \"{w}\" in reverse order.", "Spell \"{w}\" backwards.", "Please reverse \"{w}\".", NULL},
    {"Sort the letters of \"{w}\" in alphabetical order.", "Put the letters of \"{w}\" in alphabetical order.",
     "What are the letters of \"{w}\" sorted from a to z?", "Arrange the letters in \"{w}\" alphabetically.", NULL},
    {"How many times does the letter \"{c}\" appear in \"{w}\"?", "Count the letter \"{c}\" in the word \"{w}\".",
     "How many \"{c}\" letters are in \"{w}\"?", "In the word \"{w}\", how often does \"{c}\" occur?", NULL},
    {"Write \"{w}\" in capital letters.", "Convert the word \"{w}\" to uppercase.",
     "What is \"{w}\" in upper case?", "Spell \"{w}\" using only capital letters.", NULL},
    {"What is {a} plus {b}?", "Add {a} and {b}.", "Compute the sum of {a} and {b}.",
     "What do you get when you add {a} to {b}?", "Please work out {a} + {b}.", NULL},
    {"Repeat the word \"{w}\" {k} times.", "Write \"{w}\" {k} times, separated by spaces.",
     "Say \"{w}\" {k} times in a row.", "Type the word \"{w}\" {k} times.", NULL},
    {"What are the first {k} letters of \"{w}\"?", "Write the first {k} letters of the word \"{w}\".",
     "Give me the first {k} letters of \"{w}\".", "Which {k} letters does \"{w}\" start with?", NULL},
    {"What are the last {k} letters of \"{w}\"?", "Write the last {k} letters of the word \"{w}\".",
     "Give me the last {k} letters of \"{w}\".", "Which {k} letters does \"{w}\" end with?", NULL},
    {"Is \"{w}\" a palindrome?", "Is the word \"{w}\" the same forwards and backwards?",
     "Does \"{w}\" read the same backwards and forwards?", "Tell me whether \"{w}\" reads the same both ways.", NULL},
    {"How many letters are in the word \"{w}\"?", "How long is the word \"{w}\"?",
     "Count the letters in \"{w}\".", "What is the length of \"{w}\" in letters?", NULL},
    {"Which is larger, {a} or {b}?", "Which number is bigger: {a} or {b}?",
     "Of {a} and {b}, which is greater?", "Tell me the larger of {a} and {b}.", NULL},
    /* open families: short, but two prompts that differ in one slot still
     * score 0.92 on self-instruct's similarity (quotes and punctuation count
     * as words), so an open world runs with --max-similarity 0.95 */
    {"Name a {k}-letter word that starts with \"{c}\".", "Give me a {k}-letter word starting with \"{c}\".",
     "Write a word of {k} letters beginning with \"{c}\".", "Which {k}-letter word starts with \"{c}\"?",
     "Suggest a {k}-letter word beginning with \"{c}\"."},
    {"Name a {k}-letter word that ends with \"{c}\".", "Give me a {k}-letter word ending in \"{c}\".",
     "Write a word of {k} letters ending with \"{c}\".", "Which {k}-letter word ends with \"{c}\"?",
     "Suggest a {k}-letter word ending with \"{c}\"."},
    {"Name a {k}-letter word that contains \"{c}\".", "Give me a {k}-letter word containing \"{c}\".",
     "Write a word of {k} letters that has \"{c}\".", "Which {k}-letter word contains \"{c}\"?",
     "Suggest a {k}-letter word with \"{c}\" in it."},
    /* at: a letter at a position ({a}, counted from 1) */
    {"Name a {k}-letter word whose letter {a} is \"{c}\".", "Give me a {k}-letter word with \"{c}\" as letter {a}.",
     "Write a word of {k} letters that has \"{c}\" at position {a}.", "Which {k}-letter word has \"{c}\" as letter {a}?",
     "Suggest a {k}-letter word whose letter number {a} is \"{c}\"."},
};

/* The canonical answer sentence: the one response that earns all 5 points.
 * Palindrome answers depend on the verdict: index 0 = no, 1 = yes. */
static const char *const canonical_pattern[NFAM] = {
    "The word \"{w}\" reversed is \"{r}\".",
    "The letters of \"{w}\" in alphabetical order are \"{r}\".",
    "The letter \"{c}\" appears {r} time{s} in \"{w}\".",
    "The word \"{w}\" in capital letters is \"{r}\".",
    "{a} plus {b} is {r}.",
    "The word \"{w}\" repeated {k} times is \"{r}\".",
    "The first {k} letters of \"{w}\" are \"{r}\".",
    "The last {k} letters of \"{w}\" are \"{r}\".",
    NULL,
    "The word \"{w}\" has {r} letters.",
    "The larger of {a} and {b} is {r}.",
    "The word \"{r}\" has {k} letters and starts with \"{c}\".",
    "The word \"{r}\" has {k} letters and ends with \"{c}\".",
    "The word \"{r}\" has {k} letters and contains \"{c}\".",
    "The word \"{r}\" has {k} letters and \"{c}\" as letter {a}.",
};
static const char *const palindrome_canonical[2] = {"No, \"{w}\" is not a palindrome.", "Yes, \"{w}\" is a palindrome."};

/* Correct answers in other words: they earn 4 points (correct, not the
 * canonical sentence). They teach variety in the corpus and make grade-4 data. */
static const char *const alternative_pattern[NFAM][2] = {
    {"\"{w}\" spelled backwards is \"{r}\".", "Reversed, \"{w}\" becomes \"{r}\"."},
    {"Sorted, the letters of \"{w}\" give \"{r}\".", "In alphabetical order, \"{w}\" becomes \"{r}\"."},
    {"\"{w}\" contains the letter \"{c}\" {r} time{s}.", "The count of \"{c}\" in \"{w}\" is {r}."},
    {"In capital letters, \"{w}\" is \"{r}\".", "\"{w}\" in uppercase is \"{r}\"."},
    {"The sum of {a} and {b} is {r}.", "{a} + {b} = {r}."},
    {"Here is \"{w}\" {k} times: \"{r}\".", "\"{w}\" {k} times is \"{r}\"."},
    {"\"{w}\" starts with \"{r}\".", "The word \"{w}\" begins with \"{r}\"."},
    {"\"{w}\" ends with \"{r}\".", "The word \"{w}\" ends in \"{r}\"."},
    {NULL, NULL},
    {"\"{w}\" is {r} letters long.", "There are {r} letters in \"{w}\"."},
    {"{r} is the larger of {a} and {b}.", "Between {a} and {b}, {r} is larger."},
    {"\"{r}\" is a {k}-letter word starting with \"{c}\".", "A {k}-letter word that starts with \"{c}\" is \"{r}\"."},
    {"\"{r}\" is a {k}-letter word ending in \"{c}\".", "A {k}-letter word that ends with \"{c}\" is \"{r}\"."},
    {"\"{r}\" is a {k}-letter word with \"{c}\" in it.", "A {k}-letter word that contains \"{c}\" is \"{r}\"."},
    {"\"{r}\" is a {k}-letter word with \"{c}\" as letter {a}.", "A {k}-letter word whose letter {a} is \"{c}\" is \"{r}\"."},
};
static const char *const palindrome_alternative[2][2] = {
    {"No. \"{w}\" reads differently backwards.", "No, \"{w}\" is different when reversed."},
    {"Yes. \"{w}\" reads the same backwards.", "Yes, \"{w}\" reads the same both ways."},
};

typedef struct {
    int fam;
    char w[WORD_MAX + 1];   /* word (lowercase a-z) */
    char c;                 /* letter, for count */
    long long a, b;         /* numbers, for add and larger */
    int k;                  /* count, for repeat, first and last; the word length, for open families */
} Task;

static int family_phrasing_count(int fam) {
    int n = 0;
    while (n < MAXPHR && phrasings[fam][n]) n++;
    return n;
}
static int is_lower(int c) { return c >= 'a' && c <= 'z'; }
static int is_letter(int c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
static int is_digit(int c) { return c >= '0' && c <= '9'; }
static int is_space(int c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
static int uses_word(int fam) { return fam != F_ADD && fam != F_LARGER && !is_open(fam); }
/* families whose answer is a quoted string (the rest answer with a number or yes/no) */
static int answers_string(int fam) {
    return fam == F_REVERSE || fam == F_SORT || fam == F_UPPER || fam == F_FIRST || fam == F_LAST || fam == F_REPEAT;
}

/* Open families: the letter of w at the place the task constrains (first,
 * last, or position a), '?' if w has no such place; contains has no place (0). */
static char open_letter_of(const Task *t, const char *w) {
    size_t n = strlen(w);
    if (t->fam == F_STARTS) return n ? w[0] : '?';
    if (t->fam == F_ENDS) return n ? w[n - 1] : '?';
    if (t->fam == F_AT) return t->a >= 1 && (size_t)t->a <= n ? w[t->a - 1] : '?';
    return 0;
}
/* Does word w fit the letter constraint, and both constraints? */
static int open_letter_fits(const Task *t, const char *w) {
    if (!w[0]) return 0;
    return t->fam == F_CONTAINS ? strchr(w, t->c) != NULL : open_letter_of(t, w) == t->c;
}
static int open_fits(const Task *t, const char *w) { return (int)strlen(w) == t->k && open_letter_fits(t, w); }
static int is_list_word(const char *w) {
    int i;
    for (i = 0; i < NWORDS; i++)
        if (strcmp(word_list[i], w) == 0) return 1;
    return 0;
}

static int word_is_palindrome(const char *w) {
    size_t i, n = strlen(w);
    for (i = 0; i < n / 2; i++)
        if (w[i] != w[n - 1 - i]) return 0;
    return 1;
}

/* The exact answer, as text: a string, a decimal number, or "yes"/"no". */
static void task_answer(const Task *t, char *out) {
    size_t i, j, n = strlen(t->w);
    int count = 0;
    out[0] = 0;
    switch (t->fam) {
    case F_REVERSE:
        for (i = 0; i < n; i++) out[i] = t->w[n - 1 - i];
        out[n] = 0;
        break;
    case F_SORT:  /* insertion sort of bytes: equal letters are identical, so no tie question */
        memcpy(out, t->w, n + 1);
        for (i = 1; i < n; i++)
            for (j = i; j > 0 && out[j - 1] > out[j]; j--) { char c = out[j]; out[j] = out[j - 1]; out[j - 1] = c; }
        break;
    case F_COUNT:
        for (i = 0; i < n; i++) count += t->w[i] == t->c;
        sprintf(out, "%d", count);
        break;
    case F_UPPER:
        for (i = 0; i <= n; i++) out[i] = is_lower(t->w[i]) ? (char)(t->w[i] - 'a' + 'A') : t->w[i];
        break;
    case F_ADD: sprintf(out, "%lld", t->a + t->b); break;
    case F_REPEAT:
        for (i = 0; i < (size_t)t->k; i++) { if (i) strcat(out, " "); strcat(out, t->w); }
        break;
    case F_FIRST: memcpy(out, t->w, (size_t)t->k); out[t->k] = 0; break;
    case F_LAST: memcpy(out, t->w + n - (size_t)t->k, (size_t)t->k + 1); break;
    case F_PALINDROME: strcpy(out, word_is_palindrome(t->w) ? "yes" : "no"); break;
    case F_LENGTH: sprintf(out, "%d", (int)n); break;
    case F_LARGER: sprintf(out, "%lld", t->a > t->b ? t->a : t->b); break;
    case F_STARTS: case F_ENDS: case F_CONTAINS: case F_AT:  /* one of many: the first fitting word of the list */
        for (i = 0; i < (size_t)NWORDS; i++)
            if (open_fits(t, word_list[i])) { strcpy(out, word_list[i]); break; }
        break;
    }
}

/* The worked steps that lead to the answer, letter by letter or digit by
 * digit (a schoolbook's worked example): "p-l-a-n-e-t backwards is
 * t-e-n-a-l-p", "7 + 8 = 15, 3 + 5 + 1 = 9". A small model that writes the
 * steps out is right more often than one that answers at once; the corpus
 * has such examples and the EFT judgments work the answer out this way, so
 * the judge can be more accurate than the responses it judges. */
static void spell_into(char *out, size_t cap, const char *w, size_t n) {
    size_t i;
    char tmp[2] = {0, 0};
    for (i = 0; i < n; i++) {
        if (i) str_cat(out, cap, "-");
        tmp[0] = w[i];
        str_cat(out, cap, tmp);
    }
}
static void number_letters(char *out, size_t cap, const char *w) {
    size_t i;
    char tmp[32];
    for (i = 0; w[i]; i++) {
        sprintf(tmp, "%s%c%d", i ? " " : "", w[i], (int)i + 1);
        str_cat(out, cap, tmp);
    }
}
/* --open-check letters (off by default, so the shipped data keeps its
 * bytes): the working of contains and ends checks the letter the way the
 * rest of the judgment checks, one local step at a time. contains compares
 * every letter with the asked one ("h v!, e v!, a v!, v v, y v!: has v"),
 * since a summary "has v" was copied from the response's own claim rather
 * than read off the letters; ends names the last letter through the count
 * ("4 letters, letter 4 is k, ends with k"), as at does. Set once by
 * world_init. */
static int open_check_letters;

/* Open families: the word's letters numbered, then what they show:
 * "b1 r2 e3 a4 d5: 5 letters, starts with b" ("has e" / "has no e"). */
static void open_working(const Task *t, const char *w, char *out, size_t cap) {
    char tmp[64];
    size_t i, n = strlen(w);
    out[0] = 0;
    number_letters(out, cap, w);
    if (t->fam == F_STARTS) sprintf(tmp, ": %d letters, starts with %c", (int)n, open_letter_of(t, w));
    else if (t->fam == F_ENDS && open_check_letters)
        sprintf(tmp, ": %d letters, letter %d is %c, ends with %c", (int)n, (int)n, open_letter_of(t, w), open_letter_of(t, w));
    else if (t->fam == F_ENDS) sprintf(tmp, ": %d letters, ends with %c", (int)n, open_letter_of(t, w));
    else if (t->fam == F_AT) sprintf(tmp, ": %d letters, letter %d is %c", (int)n, (int)t->a, open_letter_of(t, w));
    else if (open_check_letters) {
        sprintf(tmp, ": %d letters, ", (int)n);
        str_cat(out, cap, tmp);
        for (i = 0; i < n; i++) {
            sprintf(tmp, "%s%c %c%s", i ? ", " : "", w[i], t->c, w[i] == t->c ? "" : "!");
            str_cat(out, cap, tmp);
        }
        sprintf(tmp, ": has %s%c", strchr(w, t->c) ? "" : "no ", t->c);
    } else sprintf(tmp, ": %d letters, has %s%c", (int)n, strchr(w, t->c) ? "" : "no ", t->c);
    str_cat(out, cap, tmp);
}
/* What the open task asks, in the working's words: "5 letters, starts with b". */
static void open_expected(const Task *t, char *out) {
    if (t->fam == F_AT) sprintf(out, "%d letters, letter %d is %c", t->k, (int)t->a, t->c);
    else sprintf(out, "%d letters, %s %c", t->k, t->fam == F_STARTS ? "starts with" : t->fam == F_ENDS ? "ends with" : "has", t->c);
}
static void task_working(const Task *t, char *out, size_t cap) {
    char ans[ANS_CAP], tmp[64];
    size_t i, n = strlen(t->w);
    task_answer(t, ans);
    out[0] = 0;
    switch (t->fam) {
    case F_STARTS: case F_ENDS: case F_CONTAINS: case F_AT: open_working(t, ans, out, cap); break;
    case F_REVERSE: case F_SORT: case F_UPPER:
        spell_into(out, cap, t->w, n);
        str_cat(out, cap, t->fam == F_REVERSE ? " backwards is " : t->fam == F_SORT ? " sorted is " : " in capitals is ");
        spell_into(out, cap, ans, strlen(ans));
        break;
    case F_PALINDROME: {  /* the word, then its reversal (the reverse task's answer) */
        char rev[ANS_CAP];
        Task rt = *t;
        rt.fam = F_REVERSE;
        task_answer(&rt, rev);
        spell_into(out, cap, t->w, n);
        str_cat(out, cap, " backwards is ");
        spell_into(out, cap, rev, n);
        str_cat(out, cap, strcmp(ans, "yes") == 0 ? ", the same" : ", not the same");
        break;
    }
    case F_COUNT:  /* the word spelled with each match in brackets */
        for (i = 0; i < n; i++) {
            sprintf(tmp, t->w[i] == t->c ? "%s[%c]" : "%s%c", i ? "-" : "", t->w[i]);
            str_cat(out, cap, tmp);
        }
        break;
    case F_LENGTH: number_letters(out, cap, t->w); break;
    case F_FIRST: case F_LAST:
        number_letters(out, cap, t->w);
        sprintf(tmp, ", %s %d is ", t->fam == F_FIRST ? "first" : "last", t->k);
        str_cat(out, cap, tmp);
        spell_into(out, cap, ans, strlen(ans));
        break;
    case F_REPEAT: {
        int j;
        for (j = 1; j <= t->k; j++) {
            sprintf(tmp, "%s%d ", j > 1 ? ", " : "", j);
            str_cat(out, cap, tmp);
            str_cat(out, cap, t->w);
        }
        break;
    }
    case F_ADD: {  /* column addition from the units up: "7 + 8 = 15, 3 + 5 + 1 = 9" */
        long long a = t->a, b = t->b;
        int carry = 0, first = 1;
        while (a > 0 || b > 0) {  /* a last carry is the sum's leading 1 */
            int da = (int)(a % 10), db = (int)(b % 10), sum = da + db + carry;
            if (!first) str_cat(out, cap, ", ");
            if (a > 0 && b > 0) sprintf(tmp, "%d + %d", da, db);
            else sprintf(tmp, "%d", a > 0 ? da : db);
            str_cat(out, cap, tmp);
            if (carry) str_cat(out, cap, " + 1");
            sprintf(tmp, " = %d", sum);
            str_cat(out, cap, tmp);
            carry = sum >= 10;
            a /= 10; b /= 10; first = 0;
        }
        break;
    }
    case F_LARGER: {  /* compare digit counts, then digits from the left */
        char sa[32], sb[32];
        sprintf(sa, "%lld", t->a); sprintf(sb, "%lld", t->b);
        if (strlen(sa) != strlen(sb)) {
            sprintf(tmp, "%s has more digits", strlen(sa) > strlen(sb) ? sa : sb);
            str_cat(out, cap, tmp);
        } else {
            for (i = 0; sa[i]; i++) {
                sprintf(tmp, "%s%c %c %c", i ? ", " : "", sa[i], sa[i] == sb[i] ? '=' : sa[i] > sb[i] ? '>' : '<', sb[i]);
                str_cat(out, cap, tmp);
                if (sa[i] != sb[i]) break;
            }
        }
        break;
    }
    }
}

/* Fill a pattern's slots from the task and the answer text `ans`. */
static void render(char *out, size_t cap, const char *pat, const Task *t, const char *ans) {
    char tmp[64];
    out[0] = 0;
    while (*pat) {
        if (pat[0] == '{' && pat[1] && pat[2] == '}') {
            switch (pat[1]) {
            case 'w': str_cat(out, cap, t->w); break;
            case 'c': tmp[0] = t->c; tmp[1] = 0; str_cat(out, cap, tmp); break;
            case 'a': sprintf(tmp, "%lld", t->a); str_cat(out, cap, tmp); break;
            case 'b': sprintf(tmp, "%lld", t->b); str_cat(out, cap, tmp); break;
            case 'k': sprintf(tmp, "%d", t->k); str_cat(out, cap, tmp); break;
            case 'r': str_cat(out, cap, ans); break;
            case 's': if (strcmp(ans, "1") != 0) str_cat(out, cap, "s"); break;
            default: die("internal: bad slot in pattern \"%s\"", pat);
            }
            pat += 3;
        } else {
            tmp[0] = *pat++;
            tmp[1] = 0;
            str_cat(out, cap, tmp);
        }
    }
}

static const char *canonical_of(const Task *t, const char *ans) {
    if (t->fam == F_PALINDROME) return palindrome_canonical[strcmp(ans, "yes") == 0];
    return canonical_pattern[t->fam];
}
/* The canonical sentence with answer text `ans` in the answer slot. */
static void canonical_with(const Task *t, const char *ans, char *out, size_t cap) {
    render(out, cap, canonical_of(t, ans), t, ans);
}
static void task_canonical(const Task *t, char *out, size_t cap) {
    char ans[ANS_CAP];
    task_answer(t, ans);
    canonical_with(t, ans, out, cap);
}
static void task_instruction(const Task *t, int phrasing, char *out, size_t cap) {
    render(out, cap, phrasings[t->fam][phrasing], t, "");
}
/* The key names the task independently of its phrasing; it decides the split.
 * add and larger are keyed on the unordered pair so a held-out sum is held
 * out in both orders. */
static void task_key(const Task *t, char *out) {
    long long lo = t->a < t->b ? t->a : t->b, hi = t->a < t->b ? t->b : t->a;
    switch (t->fam) {
    case F_COUNT: sprintf(out, "%s|%c|%s", family_names[t->fam], t->c, t->w); break;
    case F_ADD: case F_LARGER: sprintf(out, "%s|%lld|%lld", family_names[t->fam], lo, hi); break;
    case F_REPEAT: case F_FIRST: case F_LAST: sprintf(out, "%s|%s|%d", family_names[t->fam], t->w, t->k); break;
    case F_STARTS: case F_ENDS: case F_CONTAINS: sprintf(out, "%s|%c|%d", family_names[t->fam], t->c, t->k); break;
    case F_AT: sprintf(out, "%s|%c|%d|%lld", family_names[t->fam], t->c, t->k, t->a); break;
    default: sprintf(out, "%s|%s", family_names[t->fam], t->w); break;
    }
}

/* Arguments the grader accepts (the generator stays well inside them). */
static int task_valid(const Task *t) {
    size_t n = strlen(t->w);
    if (uses_word(t->fam) && (n < 2 || n > WORD_MAX)) return 0;
    switch (t->fam) {
    case F_COUNT: return is_lower(t->c);
    case F_REPEAT: return t->k >= 2 && t->k <= 9;
    case F_FIRST: case F_LAST: return t->k >= 2 && t->k <= 9 && (size_t)t->k <= n;
    case F_LARGER: return t->a != t->b;
    case F_STARTS: case F_ENDS: case F_CONTAINS: return is_lower(t->c) && t->k >= 1 && t->k <= WORD_MAX;
    case F_AT: return is_lower(t->c) && t->k >= 1 && t->k <= WORD_MAX && t->a >= 1 && t->a <= t->k;
    default: return 1;
    }
}

/* ------------------------------------------------------------------------
 * Instruction parser: match the whole (whitespace-trimmed) instruction against
 * every phrasing. A slot takes the maximal run of its class: {w} lowercase
 * letters (1..24), {c} exactly one lowercase letter, {a} {b} {k} decimal
 * digits (1..9, no leading zero). No phrasing puts a slot's class right after
 * the slot, so the greedy match is the only one (tests check this).
 * ---------------------------------------------------------------------- */
static int match_phrasing(const char *pat, const char *s, size_t n, Task *t) {
    size_t i = 0;
    while (*pat) {
        if (pat[0] == '{' && pat[1] && pat[2] == '}') {
            char slot = pat[1];
            size_t j = i, len;
            if (slot == 'w' || slot == 'c') while (j < n && is_lower((unsigned char)s[j])) j++;
            else while (j < n && is_digit((unsigned char)s[j])) j++;
            len = j - i;
            if (len == 0) return 0;
            if (slot == 'w') {
                if (len > WORD_MAX) return 0;
                memcpy(t->w, s + i, len);
                t->w[len] = 0;
            } else if (slot == 'c') {
                if (len != 1) return 0;
                t->c = s[i];
            } else {
                long long v = 0;
                size_t q;
                if (len > 9 || (len > 1 && s[i] == '0')) return 0;
                for (q = i; q < j; q++) v = v * 10 + (s[q] - '0');
                if (slot == 'a') t->a = v;
                else if (slot == 'b') t->b = v;
                else t->k = (int)v;
            }
            i = j;
            pat += 3;
        } else {
            if (i >= n || s[i] != *pat) return 0;
            i++;
            pat++;
        }
    }
    return i == n;
}

static void trim(const char **s, size_t *n) {
    while (*n && is_space((unsigned char)(*s)[0])) { (*s)++; (*n)--; }
    while (*n && is_space((unsigned char)(*s)[*n - 1])) (*n)--;
}

/* Returns 1 and fills t (and *phrasing if not NULL) when the instruction is a known task. */
static int parse_instruction(const char *s, size_t n, Task *t, int *phrasing) {
    int f, p;
    trim(&s, &n);
    for (f = 0; f < NFAM; f++)
        for (p = 0; p < MAXPHR && phrasings[f][p]; p++) {
            memset(t, 0, sizeof *t);
            t->fam = f;
            if (match_phrasing(phrasings[f][p], s, n, t)) {
                if (phrasing) *phrasing = p;
                return task_valid(t);
            }
        }
    return 0;
}

/* ------------------------------------------------------------------------
 * The grader: the paper's additive 5-point rubric made exact.
 *
 * A response is read as a list of claimed answers ("claims"), sentence by
 * sentence (a sentence ends at '.', '!' or '?' followed by white space or
 * the end, or at a newline):
 *   string families (reverse sort upper first last repeat): the quoted
 *     segments "..." (quotes pair up left to right within the sentence; an
 *     unclosed quote gives nothing), except the sentence's first segment
 *     equal to the input word, which is the mention, not a claim;
 *   number families (count length add larger): the maximal digit runs,
 *     except, for add and larger in a sentence restating both operands,
 *     the first run equal to each operand (the mentions);
 *   palindrome: verdicts, in order: each token yes/no (any case) and each
 *     phrase "is a palindrome" (yes) / "is not a palindrome" (no).
 * A claim is well formed when it has the answer's kind and size:
 *   reverse sort upper first last: only ASCII letters, length of the answer;
 *   repeat: letter words joined by single spaces, k-1..k+1 of them;
 *   count length add: digit count within 1 of the answer's;
 *   larger: equal to one of the two numbers;  palindrome: any verdict.
 * "The answer" is the first well-formed claim. Criteria:
 *   1 relevant:    the response contains the input as a whole token: the word
 *                  (count: and the letter; add/larger: both numbers);
 *   2 substantial: there is a well-formed claim;
 *   3 useful:      the answer is at least half right: strings, at least half
 *                  the positions equal; repeat, at least half of the k copies
 *                  right; count/length, off by at most 1; add, at least half
 *                  of the sum's digits right, aligned from the units digit;
 *                  larger/palindrome (one bit), the answer is right;
 *   4 correct:     the answer is exactly right and no other well-formed claim
 *                  differs from it;
 *   5 impeccable:  the trimmed response is exactly the canonical sentence.
 * Points form a ladder: the grade is the number of criteria held before the
 * first one that fails. 3-5 each imply the one before by definition; only
 * "relevant" can fail while later criteria hold (e.g. a bare right answer
 * that does not restate the input), and then the grade is 0.
 * ---------------------------------------------------------------------- */
enum { CRIT_RELEVANT = 1, CRIT_SUBSTANTIAL = 2, CRIT_USEFUL = 4, CRIT_CORRECT = 8, CRIT_IMPECCABLE = 16 };
static const char *const criterion_names[5] = {"relevant", "substantial", "useful", "correct", "impeccable"};

typedef struct {
    int grade;           /* 0..5 */
    unsigned held;       /* CRIT_* bits held, each judged on its own */
    const char *reason;  /* why the ladder stopped */
    char given[ANS_CAP]; /* the response's answer: its first well-formed claim ("" if none) */
} Grade;

/* Is tok a whole token of s? Tokens are maximal runs of ASCII letters, or of digits. */
static int has_token(const char *s, size_t n, const char *tok, int digits) {
    size_t i = 0, m = strlen(tok);
    while (i < n) {
        size_t j = i;
        while (j < n && (digits ? is_digit((unsigned char)s[j]) : is_letter((unsigned char)s[j]))) j++;
        if (j == i) { i++; continue; }
        if (j - i == m && memcmp(s + i, tok, m) == 0) return 1;
        i = j;
    }
    return 0;
}

static int task_mentioned(const Task *t, const char *s, size_t n) {
    char tmp[32];
    if (is_open(t->fam)) {  /* the letter or the length: an answer that restates its own
                               word's letter ("contains "s"") still answers the question */
        tmp[0] = t->c; tmp[1] = 0;
        if (has_token(s, n, tmp, 0)) return 1;
        sprintf(tmp, "%d", t->k);
        return has_token(s, n, tmp, 1);
    }
    if (!uses_word(t->fam)) {
        sprintf(tmp, "%lld", t->a);
        if (!has_token(s, n, tmp, 1)) return 0;
        sprintf(tmp, "%lld", t->b);
        return has_token(s, n, tmp, 1);
    }
    if (!has_token(s, n, t->w, 0)) return 0;
    if (t->fam == F_COUNT) { tmp[0] = t->c; tmp[1] = 0; return has_token(s, n, tmp, 0); }
    return 1;
}

typedef struct {
    const Task *t;
    const char *ans;
    int nwell;          /* well-formed claims seen */
    int first_useful;   /* the first one is at least half right */
    int first_exact;    /* the first one is exactly right */
    int conflict;       /* a later well-formed claim differs from the answer */
    char first[ANS_CAP];/* the first well-formed claim (cut to fit) */
} Claims;

static long long small_number(const char *p, size_t n) {  /* n <= 3 digits */
    long long v = 0;
    size_t i;
    for (i = 0; i < n; i++) v = v * 10 + (p[i] - '0');
    return v;
}

static int claim_well_formed(const Claims *c, const char *p, size_t n) {
    size_t i, m = strlen(c->ans), words = 0;
    int fam = c->t->fam;
    switch (fam) {
    case F_REVERSE: case F_SORT: case F_UPPER: case F_FIRST: case F_LAST:
        if (n != m) return 0;
        for (i = 0; i < n; i++) if (!is_letter((unsigned char)p[i])) return 0;
        return 1;
    case F_REPEAT:
        if (n == 0 || p[0] == ' ' || p[n - 1] == ' ') return 0;
        for (i = 0; i < n; i++) {
            if (p[i] == ' ') { if (p[i - 1] == ' ') return 0; }
            else if (!is_letter((unsigned char)p[i])) return 0;
            if (p[i] != ' ' && (i == 0 || p[i - 1] == ' ')) words++;
        }
        return (int)words >= c->t->k - 1 && (int)words <= c->t->k + 1;
    case F_COUNT: case F_LENGTH: case F_ADD:
        return n + 1 >= m && n <= m + 1;
    case F_LARGER: {
        char x[32];
        sprintf(x, "%lld", c->t->a);
        if (n == strlen(x) && memcmp(p, x, n) == 0) return 1;
        sprintf(x, "%lld", c->t->b);
        return n == strlen(x) && memcmp(p, x, n) == 0;
    }
    default: return 1;  /* palindrome verdicts */
    }
}

static int claim_half_right(const Claims *c, const char *p, size_t n) {
    size_t i, m = strlen(c->ans), right = 0;
    switch (c->t->fam) {
    case F_REVERSE: case F_SORT: case F_UPPER: case F_FIRST: case F_LAST:
        for (i = 0; i < n; i++) right += p[i] == c->ans[i];
        return 2 * right >= m;
    case F_REPEAT: {  /* compare the first k words with the input word */
        size_t wl = strlen(c->t->w), start = 0;
        int word = 0;
        for (i = 0; i <= n; i++)
            if (i == n || p[i] == ' ') {
                if (word < c->t->k && i - start == wl && memcmp(p + start, c->t->w, wl) == 0) right++;
                word++;
                start = i + 1;
            }
        return 2 * (int)right >= c->t->k;
    }
    case F_COUNT: case F_LENGTH: {
        long long d = small_number(p, n) - small_number(c->ans, m);
        return d >= -1 && d <= 1;
    }
    case F_ADD:  /* digits aligned from the units digit */
        for (i = 0; i < m && i < n; i++) right += p[n - 1 - i] == c->ans[m - 1 - i];
        return 2 * right >= m;
    default:
        return n == m && memcmp(p, c->ans, n) == 0;
    }
}

static void claim_see(Claims *c, const char *p, size_t n) {
    int exact;
    if (!claim_well_formed(c, p, n)) return;
    exact = n == strlen(c->ans) && memcmp(p, c->ans, n) == 0;
    if (c->nwell++ == 0) {
        size_t k = n < sizeof c->first - 1 ? n : sizeof c->first - 1;
        memcpy(c->first, p, k);
        c->first[k] = 0;
        c->first_useful = claim_half_right(c, p, n);
        c->first_exact = exact;
    } else if (!exact) {
        c->conflict = 1;
    }
}

/* Sentences end at '.', '!' or '?' followed by white space or the end, and at newlines. */
static size_t sentence_end(const char *s, size_t n, size_t i) {
    for (; i < n; i++) {
        if (s[i] == '\n') return i + 1;
        if ((s[i] == '.' || s[i] == '!' || s[i] == '?') && (i + 1 == n || is_space((unsigned char)s[i + 1]))) return i + 1;
    }
    return n;
}

static void claims_quoted_sentence(Claims *c, const char *s, size_t n) {
    size_t i = 0, wl = strlen(c->t->w);
    int mention_skipped = 0;
    while (i < n) {
        size_t open, close;
        while (i < n && s[i] != '"') i++;
        if (i >= n) return;
        open = i + 1;
        close = open;
        while (close < n && s[close] != '"') close++;
        if (close >= n) return;                     /* unclosed: truncated, no claim */
        if (!mention_skipped && close - open == wl && memcmp(s + open, c->t->w, wl) == 0) mention_skipped = 1;
        else claim_see(c, s + open, close - open);
        i = close + 1;
    }
}

static void claims_quoted(Claims *c, const char *s, size_t n) {
    size_t start = 0;
    while (start < n) {
        size_t end = sentence_end(s, n, start);
        claims_quoted_sentence(c, s + start, end - start);
        start = end;
    }
}

static int count_runs_equal(const char *s, size_t n, const char *x) {
    size_t i = 0, m = strlen(x);
    int count = 0;
    while (i < n) {
        size_t j = i;
        while (j < n && is_digit((unsigned char)s[j])) j++;
        if (j == i) { i++; continue; }
        count += j - i == m && memcmp(s + i, x, m) == 0;
        i = j;
    }
    return count;
}

static void claims_numbers_sentence(Claims *c, const char *s, size_t n) {
    char xa[32], xb[32];
    int skip_a = 0, skip_b = 0;
    size_t i = 0;
    if (c->t->fam == F_ADD || c->t->fam == F_LARGER) {  /* operands are mentions only where both are restated */
        sprintf(xa, "%lld", c->t->a);
        sprintf(xb, "%lld", c->t->b);
        if (c->t->a == c->t->b) skip_a = skip_b = count_runs_equal(s, n, xa) >= 2;
        else skip_a = skip_b = count_runs_equal(s, n, xa) >= 1 && count_runs_equal(s, n, xb) >= 1;
    }
    while (i < n) {
        size_t j = i;
        while (j < n && is_digit((unsigned char)s[j])) j++;
        if (j == i) { i++; continue; }
        if (skip_a && j - i == strlen(xa) && memcmp(s + i, xa, j - i) == 0) skip_a = 0;
        else if (skip_b && j - i == strlen(xb) && memcmp(s + i, xb, j - i) == 0) skip_b = 0;
        else claim_see(c, s + i, j - i);
        i = j;
    }
}

static void claims_numbers(Claims *c, const char *s, size_t n) {
    size_t start = 0;
    while (start < n) {
        size_t end = sentence_end(s, n, start);
        claims_numbers_sentence(c, s + start, end - start);
        start = end;
    }
}

static int token_is(const char *p, size_t n, const char *word) {  /* ASCII case-insensitive */
    size_t i;
    if (n != strlen(word)) return 0;
    for (i = 0; i < n; i++) {
        int ch = (unsigned char)p[i];
        if (ch >= 'A' && ch <= 'Z') ch += 'a' - 'A';
        if (ch != word[i]) return 0;
    }
    return 1;
}

static void claims_verdicts(Claims *c, const char *s, size_t n) {
    const char *prev[3] = {"", "", ""};     /* the last three letter tokens, newest first */
    size_t plen[3] = {0, 0, 0}, i = 0;
    while (i < n) {
        size_t j = i;
        while (j < n && is_letter((unsigned char)s[j])) j++;
        if (j == i) { i++; continue; }
        if (token_is(s + i, j - i, "yes")) claim_see(c, "yes", 3);
        else if (token_is(s + i, j - i, "no")) claim_see(c, "no", 2);
        else if (token_is(s + i, j - i, "palindrome") && token_is(prev[0], plen[0], "a")) {
            if (token_is(prev[1], plen[1], "is")) claim_see(c, "yes", 3);
            else if (token_is(prev[1], plen[1], "not") && token_is(prev[2], plen[2], "is")) claim_see(c, "no", 2);
        }
        prev[2] = prev[1]; plen[2] = plen[1];
        prev[1] = prev[0]; plen[1] = plen[0];
        prev[0] = s + i; plen[0] = j - i;
        i = j;
    }
}

/* Open families. Claims are the quoted segments of two or more letters
 * (quotes pair up left to right over the whole response; the quoted input
 * letter is one letter, so never a claim). The answer is the first claim:
 *   useful:  a word of the list that fits one of the two constraints;
 *   correct: a word of the list that fits both, and no other claim differs;
 *   impeccable: the trimmed response is the canonical sentence for it. */
static Grade grade_open(const Task *t, const char *resp, size_t n) {
    char canon[TEXT_CAP], claim[ANS_CAP];
    Grade g;
    const char *r = resp;
    size_t rn = n, i = 0;
    int nclaims = 0, conflict = 0, word;
    memset(&g, 0, sizeof g);
    if (task_mentioned(t, resp, n)) g.held |= CRIT_RELEVANT;
    while (i < n) {
        size_t a, b, len, q;
        int letters = 1;
        while (i < n && resp[i] != '"') i++;
        if (i >= n) break;
        a = ++i;
        while (i < n && resp[i] != '"') i++;
        if (i >= n) break;                      /* an unclosed quote gives nothing */
        b = i++;
        len = b - a;
        for (q = a; q < b; q++) letters &= is_letter((unsigned char)resp[q]);
        if (len < 2 || !letters || len >= ANS_CAP) continue;
        memcpy(claim, resp + a, len);
        claim[len] = 0;
        if (nclaims++ == 0) strcpy(g.given, claim);
        else if (strcmp(claim, g.given) != 0) conflict = 1;
    }
    word = nclaims && is_list_word(g.given);
    if (nclaims) g.held |= CRIT_SUBSTANTIAL;
    if (word && ((int)strlen(g.given) == t->k || open_letter_fits(t, g.given))) g.held |= CRIT_USEFUL;
    if (word && open_fits(t, g.given) && !conflict) g.held |= CRIT_CORRECT;
    if (nclaims) {
        canonical_with(t, g.given, canon, sizeof canon);
        trim(&r, &rn);
        if (rn == strlen(canon) && memcmp(r, canon, rn) == 0) g.held |= CRIT_IMPECCABLE;
    }
    while (g.grade < 5 && (g.held & (1u << g.grade))) g.grade++;
    switch (g.grade) {
    case 0: g.reason = "input not mentioned"; break;
    case 1: g.reason = "no word given"; break;
    case 2: g.reason = word ? "the word fits neither constraint" : "not a word of the list"; break;
    case 3: g.reason = word && open_fits(t, g.given) ? "conflicting answers" : "the word fits one constraint"; break;
    case 4: g.reason = "not the canonical sentence"; break;
    default: g.reason = "all criteria met"; break;
    }
    return g;
}

/* Grade a response to a parsed task. */
static Grade grade_task(const Task *t, const char *resp, size_t n) {
    char ans[ANS_CAP], canon[TEXT_CAP];
    Claims c;
    Grade g;
    const char *r = resp;
    size_t rn = n;
    if (is_open(t->fam)) return grade_open(t, resp, n);
    task_answer(t, ans);
    canonical_with(t, ans, canon, sizeof canon);
    memset(&c, 0, sizeof c);
    c.t = t;
    c.ans = ans;
    g.held = 0;
    if (task_mentioned(t, resp, n)) g.held |= CRIT_RELEVANT;
    if (answers_string(t->fam)) claims_quoted(&c, resp, n);
    else if (t->fam == F_PALINDROME) claims_verdicts(&c, resp, n);
    else claims_numbers(&c, resp, n);
    if (c.nwell) g.held |= CRIT_SUBSTANTIAL;
    if (c.nwell && c.first_useful) g.held |= CRIT_USEFUL;
    if (c.nwell && c.first_exact && !c.conflict) g.held |= CRIT_CORRECT;
    memcpy(g.given, c.first, sizeof g.given);
    trim(&r, &rn);
    if (rn == strlen(canon) && memcmp(r, canon, rn) == 0) g.held |= CRIT_IMPECCABLE;
    g.grade = 0;
    while (g.grade < 5 && (g.held & (1u << g.grade))) g.grade++;
    switch (g.grade) {
    case 0: g.reason = "input not mentioned"; break;
    case 1: g.reason = "no answer of the right kind and size"; break;
    case 2: g.reason = "answer less than half right"; break;
    case 3: g.reason = c.first_exact ? "conflicting answers" : "answer not exactly right"; break;
    case 4: g.reason = "not the canonical sentence"; break;
    default: g.reason = "all criteria met"; break;
    }
    return g;
}

/* Grade (instruction, response); an instruction that matches no phrasing gets 0. */
static Grade grade_response(const char *ins, size_t ins_n, const char *resp, size_t resp_n) {
    Task t;
    Grade g;
    if (!parse_instruction(ins, ins_n, &t, NULL)) {
        g.grade = 0;
        g.held = 0;
        g.reason = "unknown task";
        g.given[0] = 0;
        return g;
    }
    return grade_task(&t, resp, resp_n);
}

static void criteria_text(unsigned held, char *out) {
    int i;
    out[0] = 0;
    for (i = 0; i < 5; i++)
        if (held & (1u << i)) {
            if (out[0]) strcat(out, ",");
            strcat(out, criterion_names[i]);
        }
}

/* ------------------------------------------------------------------------
 * The judge template and the fill rule (srlm.c implements the same rule):
 * scan the template once, left to right; each "{instruction}" is replaced by
 * the instruction's bytes, each "{response}" by the response's bytes, every
 * other byte is copied. Inserted text is never scanned again, so braces in it
 * stay literal. A valid template holds each placeholder exactly once, uses
 * printable ASCII and newlines only; when read from a file, one final newline
 * is dropped.
 * ---------------------------------------------------------------------- */
static const char PH_INSTRUCTION[] = "{instruction}";
static const char PH_RESPONSE[] = "{response}";

static void judge_fill(Buf *out, const char *tmpl, size_t tn, const char *ins, size_t in,
                       const char *resp, size_t rn) {
    size_t i = 0, li = sizeof PH_INSTRUCTION - 1, lr = sizeof PH_RESPONSE - 1;
    while (i < tn) {
        if (tn - i >= li && memcmp(tmpl + i, PH_INSTRUCTION, li) == 0) { buf_put(out, ins, in); i += li; }
        else if (tn - i >= lr && memcmp(tmpl + i, PH_RESPONSE, lr) == 0) { buf_put(out, resp, rn); i += lr; }
        else buf_putc(out, tmpl[i++]);
    }
}

/* NULL when the template is valid, else what is wrong with it. */
static const char *template_check(const char *tmpl, size_t tn) {
    size_t i = 0, li = sizeof PH_INSTRUCTION - 1, lr = sizeof PH_RESPONSE - 1;
    int ni = 0, nr = 0;
    if (tn == 0) return "the template is empty";
    if (tn >= TEMPLATE_CAP) return "the template is too long";
    for (i = 0; i < tn; i++) {
        unsigned char ch = (unsigned char)tmpl[i];
        if (ch != '\n' && (ch < 0x20 || ch > 0x7e)) return "the template has a byte that is not printable ASCII or a newline";
    }
    i = 0;
    while (i < tn) {
        if (tn - i >= li && memcmp(tmpl + i, PH_INSTRUCTION, li) == 0) { ni++; i += li; }
        else if (tn - i >= lr && memcmp(tmpl + i, PH_RESPONSE, lr) == 0) { nr++; i += lr; }
        else i++;
    }
    if (ni != 1) return "the template must contain {instruction} exactly once";
    if (nr != 1) return "the template must contain {response} exactly once";
    return NULL;
}

/* Read a judge template file into buf (cap TEMPLATE_CAP); NULL or an error. */
static const char *template_load(const char *path, char *buf, size_t *len) {
    static char err[512];
    FILE *f = fopen(path, "rb");
    size_t n;
    const char *why;
    if (!f) { snprintf(err, sizeof err, "%s: cannot open the judge template", path); return err; }
    n = fread(buf, 1, TEMPLATE_CAP, f);
    fclose(f);
    if (n >= TEMPLATE_CAP) { snprintf(err, sizeof err, "%s: the template is too long", path); return err; }
    if (n && buf[n - 1] == '\n') n--;
    buf[n] = 0;
    why = template_check(buf, n);
    if (why) { snprintf(err, sizeof err, "%s: %s", path, why); return err; }
    *len = n;
    return NULL;
}

/* Split an answer into check units: words for repeat, else single bytes. */
static int check_units(int fam, const char *a, char u[64][32]) {
    int n = 0;
    if (fam == F_REPEAT) {
        while (*a && n < 64) {
            size_t k = 0;
            while (*a == ' ') a++;
            if (!*a) break;
            while (a[k] && a[k] != ' ' && k < 31) k++;
            memcpy(u[n], a, k); u[n][k] = 0; n++;
            a += k;
            while (*a && *a != ' ') a++;
        }
    } else if (strcmp(a, "yes") == 0 || strcmp(a, "no") == 0) {
        strcpy(u[n++], a);
    } else {
        for (; *a && n < 64; a++) { u[n][0] = *a; u[n][1] = 0; n++; }
    }
    return n;
}

/* The judgment an EFT example teaches, in steps a small model can take:
 *   Given "tenapl", t-e-n-a-p-l.            copy the response's answer (spelled)
 *   Working: p-l-a-n-e-t backwards is ...   work the task out step by step
 *   Expected t-e-n-a-l-p.                   the answer
 *   Check: t t, e e, n n, a a, p l!, l p!.  the two answers unit by unit, "!" on a difference
 *   No match. The response is ... Score: 3  the verdict, criteria met, the first one failed
 * The given answer comes first so that it is copied from the response, not
 * from the judge's own expected answer (judgments that wrote "Expected X,
 * given Y" echoed X as Y). Letters are compared spelled, since joining
 * letters back into a BPE word is a step the tiny model gets wrong, and pair
 * by pair, since comparing two whole strings at once is a step it did not
 * learn (70-77% right); each pair's "!" is a local decision and the verdict
 * only asks whether any "!" was written. Worded a little differently from
 * draw to draw. */
static void judgment_text(Rng *r, const Grade *g, int extra_text, const Task *t, char *out, size_t cap) {
    static const char *const opener[2] = {"The response is", "This response is"};
    static const char *const clause[6][2] = {
        {" not relevant: it does not mention the input of the question.",
         " not relevant, since the input of the question is missing."},
        {" relevant, but it gives no answer of the right kind.",
         " relevant, but no answer of the right kind and size is given."},
        {" relevant and substantial, but less than half of the answer is right.",
         " relevant and substantial, but most of the answer is wrong."},
        {" relevant, substantial and useful, but the answer is not exactly right.",
         " relevant, substantial and useful, but part of the answer is wrong."},
        {" relevant, substantial, useful and correct, but has extra text.",
         " relevant, substantial, useful and correct, but not the expected sentence."},
        {" relevant, substantial, useful, correct and impeccable.",
         " relevant, substantial, useful, correct, and impeccable with nothing extra."},
    };
    const char *body;
    char ans[ANS_CAP];
    const char *q = answers_string(t->fam) ? "\"" : "";
    int spelled = answers_string(t->fam) && t->fam != F_REPEAT;
    task_answer(t, ans);
    out[0] = 0;
    if (is_open(t->fam)) {
        /* Given "bread", b1 r2 e3 a4 d5: 5 letters, starts with b. Expected 5
         * letters, starts with b. Check: 5 5, b b. A match. (or ": not a word") */
        char work[TEXT_CAP], tmp[64];
        open_expected(t, tmp);
        str_cat(out, cap, "Given ");
        if (!g->given[0]) {
            str_cat(out, cap, "nothing. Expected "); str_cat(out, cap, tmp); str_cat(out, cap, ". ");
        } else if (!is_list_word(g->given)) {
            work[0] = 0;
            number_letters(work, sizeof work, g->given);
            str_cat(out, cap, "\""); str_cat(out, cap, g->given); str_cat(out, cap, "\", ");
            str_cat(out, cap, work); str_cat(out, cap, ": not a word. Expected "); str_cat(out, cap, tmp);
            str_cat(out, cap, ". No match. ");
        } else {
            size_t n = strlen(g->given);
            char got = open_letter_of(t, g->given);
            open_working(t, g->given, work, sizeof work);
            str_cat(out, cap, "\""); str_cat(out, cap, g->given); str_cat(out, cap, "\", ");
            str_cat(out, cap, work); str_cat(out, cap, ". Expected "); str_cat(out, cap, tmp);
            sprintf(tmp, ". Check: %d %d%s, ", (int)n, t->k, (int)n == t->k ? "" : "!");
            str_cat(out, cap, tmp);
            if (t->fam == F_CONTAINS) sprintf(tmp, "%s yes%s", strchr(g->given, t->c) ? "yes" : "no", strchr(g->given, t->c) ? "" : "!");
            else sprintf(tmp, "%c %c%s", got, t->c, got == t->c ? "" : "!");
            str_cat(out, cap, tmp);
            str_cat(out, cap, open_fits(t, g->given) ? ". A match. " : ". No match. ");
        }
    } else {
        str_cat(out, cap, "Given ");
        if (g->given[0]) {
            str_cat(out, cap, q); str_cat(out, cap, g->given); str_cat(out, cap, q);
            if (spelled) { str_cat(out, cap, ", "); spell_into(out, cap, g->given, strlen(g->given)); }
        } else {
            str_cat(out, cap, "nothing");
        }
        str_cat(out, cap, ". Working: ");
        task_working(t, out + strlen(out), cap - strlen(out));
        str_cat(out, cap, ". Expected ");
        if (spelled) spell_into(out, cap, ans, strlen(ans));
        else { str_cat(out, cap, q); str_cat(out, cap, ans); str_cat(out, cap, q); }
        if (g->given[0]) {
            /* Check: the given and expected answers unit by unit (letters, digits,
             * or words for repeat), "!" after each pair that differs; "?" stands
             * for a missing unit. */
            char gu[64][32], eu[64][32];
            int ng = check_units(t->fam, g->given, gu), ne = check_units(t->fam, ans, eu), i, n = ng > ne ? ng : ne;
            str_cat(out, cap, ". Check:");
            for (i = 0; i < n; i++) {
                const char *x = i < ng ? gu[i] : "?", *y = i < ne ? eu[i] : "?";
                str_cat(out, cap, i ? ", " : " ");
                str_cat(out, cap, x); str_cat(out, cap, " "); str_cat(out, cap, y);
                if (strcmp(x, y) != 0) str_cat(out, cap, "!");
            }
            str_cat(out, cap, strcmp(g->given, ans) == 0 ? ". A match. " : ". No match. ");
        } else {
            str_cat(out, cap, ". ");
        }
    }
    str_cat(out, cap, opener[rng_below(r, 2)]);
    if (g->grade == 3 && strcmp(g->reason, "conflicting answers") == 0)
        body = " relevant, substantial and useful, but it also gives a conflicting answer.";
    else if (g->grade == 4)
        body = clause[4][extra_text ? 0 : 1];
    else
        body = clause[g->grade][rng_below(r, 2)];
    str_cat(out, cap, body);
    {
        char sc[16];
        sprintf(sc, " Score: %d", g->grade);
        str_cat(out, cap, sc);
    }
}

/* ------------------------------------------------------------------------
 * Options: difficulty knobs and file sizes.
 * ---------------------------------------------------------------------- */
typedef struct {
    uint64_t seed;
    int word_min, word_max;          /* word length range (the list has 3..8) */
    long long num_min, num_max;      /* operands of add and larger */
    int k_min, k_max;                /* k of repeat / first / last */
    int repeat_max_chars;            /* longest repeat answer, e.g. "cat cat cat" = 11 */
    int max_response_bytes;          /* longest task response the generator writes */
    unsigned families;               /* bit f set: family f is generated */
    long corpus_bytes;               /* corpus.txt stops at the first block end past this */
    int corpus_review_pct;           /* percent of corpus blocks that are graded answers (reviews) */
    int open_check_letters;          /* --open-check letters: contains and ends check letter by letter */
    int n_ift, ift_good_pct;         /* IFT size; percent of it with grade 5 */
    int ift_habit_pct;               /* percent of IFT with one habit: a correct answer + " Hope this helps!" (grade 4) */
    int n_habit_fam_pct;             /* > 0: one habit per family instead (--ift-habit-pcts), */
    int habit_fam_pct[NFAM];         /* ... percent of that family's IFT, in enabled-family order */
    int n_eft_train, n_eft_eval;     /* rounded down to a multiple of 6 (balanced scores) */
    int n_test, n_ranked;
} WorldOptions;

static void options_default(WorldOptions *o) {
    memset(o, 0, sizeof *o);
    o->seed = 1;
    o->word_min = 3; o->word_max = 7;
    o->num_min = 10; o->num_max = 99;
    o->k_min = 2; o->k_max = 4;
    o->repeat_max_chars = 24;
    o->max_response_bytes = 80;
    o->families = CLOSED_FAMILIES;
    o->corpus_bytes = 3000000;
    o->n_ift = 3200; o->ift_good_pct = 85;
    o->n_eft_train = 3000; o->n_eft_eval = 540;
    o->n_test = 256; o->n_ranked = 200;
}

/* Sizes for tests and quick looks; difficulty knobs are left alone. */
static void options_small(WorldOptions *o) {
    o->corpus_bytes = 200000;
    o->n_ift = 330;
    o->n_eft_train = 132; o->n_eft_eval = 66;
    o->n_test = 256; o->n_ranked = 44;
}

static const char *options_check(const WorldOptions *o) {
    if (o->word_min < 3 || o->word_max > 8 || o->word_min > o->word_max) return "word lengths must satisfy 3 <= min <= max <= 8";
    if (o->num_min < 0 || o->num_max > 999999999 || o->num_min >= o->num_max) return "numbers must satisfy 0 <= min < max <= 999999999";
    if (o->k_min < 2 || o->k_max > 9 || o->k_min > o->k_max) return "k must satisfy 2 <= min <= max <= 9";
    if ((o->families & ((1u << F_FIRST) | (1u << F_LAST))) && o->word_max <= o->k_min)
        return "first/last need words longer than k-min";
    if ((o->families & (1u << F_REPEAT)) && o->k_max * (o->word_min + 1) - 1 > o->repeat_max_chars)
        return "repeat-max-chars is too small for k-max copies of the shortest word";
    if (o->max_response_bytes < 60 || o->max_response_bytes > 1000) return "max-response-bytes must be in 60..1000";
    if (!(o->families & ((1u << NFAM) - 1))) return "no family enabled";
    if (o->corpus_bytes < 0 || o->n_ift < 0 || o->n_eft_train < 0 || o->n_eft_eval < 0 || o->n_test < 0 || o->n_ranked < 0)
        return "sizes must be >= 0";
    if (o->ift_good_pct < 0 || o->ift_good_pct > 100) return "ift-good-pct must be in 0..100";
    if (o->corpus_review_pct < 0 || o->corpus_review_pct > 100) return "corpus-review-pct must be in 0..100";
    if (o->ift_habit_pct < 0 || o->ift_habit_pct > o->ift_good_pct) return "ift-habit-pct must be in 0..ift-good-pct";
    if (o->n_habit_fam_pct > 0) {
        int f, nf = 0;
        for (f = 0; f < NFAM; f++) nf += (o->families >> f) & 1u;
        if (o->ift_habit_pct > 0) return "give --ift-habit-pct or --ift-habit-pcts, not both";
        if (o->n_habit_fam_pct != nf) return "ift-habit-pcts needs one percent per enabled family";
        for (f = 0; f < nf; f++)
            if (o->habit_fam_pct[f] > o->ift_good_pct) return "each of ift-habit-pcts must be in 0..ift-good-pct";
    }
    return NULL;
}

/* ------------------------------------------------------------------------
 * The world: options, word pools, judge template. Splits: every task key is
 * hashed (with the seed) into one of four disjoint buckets, so a held-out
 * task's facts, instructions and answers never reach training data.
 * ---------------------------------------------------------------------- */
enum { B_TRAIN, B_EFT_EVAL, B_TEST, B_RANKED };
static const char *const bucket_names[4] = {"train", "eft-eval", "test", "ranked"};
/* percent of task keys per bucket: train 70, eft-eval 8, test 11, ranked 11 */
static const int bucket_edge[4] = {70, 78, 89, 100};
/* Open tasks are few (a letter and a length: about 300 keys in all), so they
 * hold out a larger share, enough for a test set of unique prompts. */
static const int open_bucket_edge[4] = {55, 63, 88, 100};

/* Seeds of the independent random streams: one per output, so changing one
 * file's size never changes another file's bytes. */
enum { TAG_SPLIT = 1, TAG_CORPUS, TAG_IFT, TAG_EFT_TRAIN, TAG_EFT_EVAL, TAG_TEST, TAG_RANKED };

typedef struct {
    WorldOptions opt;
    const char *words[NWORDS];     /* list words within the length range */
    int nwords;
    const char *plain[NWORDS];     /* of those, the ones that are not palindromes */
    int nplain;
    char pal[2 * NWORDS][WORD_MAX + 1];  /* palindromes: real ones first, then generated */
    int npal, nreal_pal;
    int fams[NFAM], nfams;         /* enabled families, in family order */
    uint64_t split_seed;
    char tmpl[TEMPLATE_CAP];
    size_t tmpl_len;
} World;

static void rng_for(const World *wd, Rng *r, uint64_t tag) { rng_init(r, hash64(wd->opt.seed, tag), RNG_STREAM_WORLD); }

/* NULL on success, else what is wrong with the options or the template. */
static const char *world_init(World *wd, const WorldOptions *o, const char *tmpl, size_t tn) {
    const char *why = options_check(o);
    int i, f, j;
    if (why) return why;
    if ((why = template_check(tmpl, tn)) != NULL) return why;
    memset(wd, 0, sizeof *wd);
    wd->opt = *o;
    memcpy(wd->tmpl, tmpl, tn);
    wd->tmpl[tn] = 0;
    wd->tmpl_len = tn;
    for (f = 0; f < NFAM; f++)
        if (o->families & (1u << f)) wd->fams[wd->nfams++] = f;
    for (i = 0; i < NWORDS; i++) {
        int n = (int)strlen(word_list[i]);
        if (n < o->word_min || n > o->word_max) continue;
        wd->words[wd->nwords++] = word_list[i];
        if (word_is_palindrome(word_list[i])) strcpy(wd->pal[wd->npal++], word_list[i]);
        else wd->plain[wd->nplain++] = word_list[i];
    }
    wd->nreal_pal = wd->npal;
    /* generated palindromes: a word's first half mirrored, same length
     * ("planet" -> "plaalp", "horse" -> "horoh"), each kept once */
    for (i = 0; i < wd->nwords; i++) {
        char p[WORD_MAX + 1];
        int n = (int)strlen(wd->words[i]), dup = 0;
        for (j = 0; j < n; j++) p[j] = j < (n + 1) / 2 ? wd->words[i][j] : wd->words[i][n - 1 - j];
        p[n] = 0;
        for (j = 0; j < wd->npal && !dup; j++) dup = strcmp(wd->pal[j], p) == 0;
        if (!dup) strcpy(wd->pal[wd->npal++], p);
    }
    if (wd->nplain == 0 || wd->npal == 0) return "the word length range leaves no words";
    wd->split_seed = hash64(o->seed, TAG_SPLIT);
    open_check_letters = o->open_check_letters;
    return NULL;
}

static int task_bucket(const World *wd, const Task *t) {
    char key[128];
    int b = 0, h;
    task_key(t, key);
    h = (int)(hash64(wd->split_seed, fnv1a64(key, strlen(key))) % 100u);
    while (h >= (is_open(t->fam) ? open_bucket_edge : bucket_edge)[b]) b++;
    return b;
}

static const char *pick_word(const World *wd, Rng *r) { return wd->words[rng_below(r, (uint32_t)wd->nwords)]; }
static long long pick_number(const World *wd, Rng *r) {
    return wd->opt.num_min + (long long)rng_below(r, (uint32_t)(wd->opt.num_max - wd->opt.num_min + 1));
}

/* A random task of family fam with the world's difficulty. */
static void sample_task(const World *wd, Rng *r, int fam, Task *t) {
    const WorldOptions *o = &wd->opt;
    memset(t, 0, sizeof *t);
    t->fam = fam;
    switch (fam) {
    case F_COUNT:
        strcpy(t->w, pick_word(wd, r));
        if (rng_below(r, 4) != 0) {
            t->c = t->w[rng_below(r, (uint32_t)strlen(t->w))];   /* a letter of the word */
        } else {
            do t->c = (char)('a' + rng_below(r, 26)); while (strchr(t->w, t->c));
        }
        break;
    case F_ADD:
        t->a = pick_number(wd, r);
        t->b = pick_number(wd, r);
        break;
    case F_LARGER:
        t->a = pick_number(wd, r);
        do t->b = pick_number(wd, r); while (t->b == t->a);
        break;
    case F_REPEAT:
        t->k = o->k_min + (int)rng_below(r, (uint32_t)(o->k_max - o->k_min + 1));
        do strcpy(t->w, pick_word(wd, r)); while (t->k * ((int)strlen(t->w) + 1) - 1 > o->repeat_max_chars);
        break;
    case F_FIRST: case F_LAST:
        do {
            t->k = o->k_min + (int)rng_below(r, (uint32_t)(o->k_max - o->k_min + 1));
            strcpy(t->w, pick_word(wd, r));
        } while ((int)strlen(t->w) <= t->k);
        break;
    case F_STARTS: case F_ENDS: case F_CONTAINS: case F_AT: {  /* the constraints of a list word, so one fits */
        const char *w = pick_word(wd, r);
        size_t n = strlen(w);
        t->k = (int)n;
        if (fam == F_AT) t->a = 1 + (long long)rng_below(r, (uint32_t)n);
        t->c = fam == F_STARTS ? w[0] : fam == F_ENDS ? w[n - 1] : fam == F_AT ? w[t->a - 1] : w[rng_below(r, (uint32_t)n)];
        break;
    }
    case F_PALINDROME:  /* half yes, half no; a third of the yes are real words */
        if (rng_below(r, 2) == 0) strcpy(t->w, wd->plain[rng_below(r, (uint32_t)wd->nplain)]);
        else if (wd->nreal_pal > 0 && rng_below(r, 3) == 0) strcpy(t->w, wd->pal[rng_below(r, (uint32_t)wd->nreal_pal)]);
        else strcpy(t->w, wd->pal[rng_below(r, (uint32_t)wd->npal)]);
        break;
    default:
        strcpy(t->w, pick_word(wd, r));
        break;
    }
}

static void sample_task_in(const World *wd, Rng *r, int fam, int bucket, Task *t) {
    long tries;
    for (tries = 0; tries < 1000000; tries++) {
        sample_task(wd, r, fam, t);
        if (task_bucket(wd, t) == bucket) return;
    }
    die("no %s task falls in the %s split: widen the difficulty knobs", family_names[fam], bucket_names[bucket]);
}

/* Draw a task of family fam from bucket and phrase it, with an instruction
 * string new to `seen`; prefer a task key new to `keys` so a file spreads
 * over the key space before it repeats a task in other words. */
static void draw_instruction(const World *wd, Rng *r, int fam, int bucket, StrSet *keys, StrSet *seen,
                             Task *t, char *ins, size_t cap) {
    long tries;
    char key[128];
    for (tries = 0; tries < 200000; tries++) {
        sample_task_in(wd, r, fam, bucket, t);
        task_key(t, key);
        task_instruction(t, (int)rng_below(r, (uint32_t)family_phrasing_count(fam)), ins, cap);
        if (tries < 400 && strset_has(keys, key)) continue;
        /* an open task has many right answers, so training files may ask it
         * again (with another response); held-out test prompts stay unique */
        if (strset_has(seen, ins) && !(is_open(fam) && bucket != B_TEST)) continue;
        strset_add(keys, key);
        strset_add(seen, ins);
        return;
    }
    die("the %s split has too few distinct %s tasks for the sizes asked: widen the difficulty knobs",
        bucket_names[bucket], family_names[fam]);
}

/* ------------------------------------------------------------------------
 * Responses of chosen quality. propose_* write a candidate meant to earn
 * `target` points through a controlled corruption of the canonical answer;
 * make_response grades each candidate and keeps the first that earns exactly
 * the target, so every stated score is the grader's grade by construction.
 * Corruptions that borrow another task's answer take that task from the same
 * split bucket, so no held-out answer leaks into training data.
 * ---------------------------------------------------------------------- */
static void random_letters(Rng *r, char *out, size_t n, int upper) {
    size_t i;
    for (i = 0; i < n; i++) out[i] = (char)((upper ? 'A' : 'a') + rng_below(r, 26));
    out[n] = 0;
}
static void change_one_letter(Rng *r, char *s) {
    size_t n = strlen(s), i;
    char old, c;
    if (n == 0) return;
    i = rng_below(r, (uint32_t)n);
    old = s[i];
    do c = (char)((old >= 'A' && old <= 'Z' ? 'A' : 'a') + rng_below(r, 26)); while (c == old);
    s[i] = c;
}
static void change_one_digit(Rng *r, char *s) {  /* never a leading zero */
    size_t n = strlen(s), i = rng_below(r, (uint32_t)n);
    char c;
    do c = (char)('0' + rng_below(r, 10)); while (c == s[i] || (i == 0 && n > 1 && c == '0'));
    s[i] = c;
}
static void repeat_word(const char *w, int k, char *out) {
    int i;
    out[0] = 0;
    for (i = 0; i < k; i++) { if (i) strcat(out, " "); strcat(out, w); }
}
static void render_alternative(Rng *r, const Task *t, const char *ans, char *out, size_t cap) {
    const char *pat = t->fam == F_PALINDROME ? palindrome_alternative[strcmp(ans, "yes") == 0][rng_below(r, 2)]
                                             : alternative_pattern[t->fam][rng_below(r, 2)];
    render(out, cap, pat, t, ans);
}

/* Filler after a correct answer (grade 4: something extra). The first is also
 * the one habit `--ift-habit-pct` gives many IFT seeds (gen_ift). */
#define IFT_HABIT " Hope this helps!"
static const char *const correct_suffix[4] = {IFT_HABIT, " I hope that is clear.", " That was a fun one.",
                                              " Let me know if you want more."};
static void propose_correct_variant(Rng *r, const Task *t, const char *ans, const char *canon, char *out, size_t cap) {
    const char *const *suffix = correct_suffix;
    static const char *const prefix[4] = {"Sure! ", "Of course. ", "Here you go: ", "Easy. "};
    size_t n;
    out[0] = 0;
    switch (rng_below(r, 7)) {
    case 0: render_alternative(r, t, ans, out, cap); break;
    case 1: str_cat(out, cap, canon); n = strlen(out); if (n && out[n - 1] == '.') out[n - 1] = 0; break;
    case 2: str_cat(out, cap, canon); str_cat(out, cap, " "); str_cat(out, cap, canon); break;
    case 3: str_cat(out, cap, canon); str_cat(out, cap, suffix[rng_below(r, 4)]); break;
    case 4: str_cat(out, cap, prefix[rng_below(r, 4)]); str_cat(out, cap, canon); break;
    case 5: str_cat(out, cap, canon); if (out[0] >= 'A' && out[0] <= 'Z') out[0] = (char)(out[0] - 'A' + 'a'); break;
    default:
        str_cat(out, cap, canon);
        if (t->fam == F_PALINDROME) str_cat(out, cap, strcmp(ans, "yes") == 0 ? " So the answer is yes." : " So the answer is no.");
        else if (answers_string(t->fam)) { str_cat(out, cap, " The answer is \""); str_cat(out, cap, ans); str_cat(out, cap, "\"."); }
        else { str_cat(out, cap, " The answer is "); str_cat(out, cap, ans); str_cat(out, cap, "."); }
        break;
    }
}

static void propose_near_miss(Rng *r, const Task *t, const char *ans, char *out, size_t cap) {
    char bad[ANS_CAP], two[2 * ANS_CAP + 8];
    long long v;
    int yes = strcmp(ans, "yes") == 0;
    strcpy(bad, ans);
    switch (t->fam) {
    case F_REPEAT:
        switch (rng_below(r, 3)) {
        case 0: repeat_word(t->w, t->k - 1, bad); break;
        case 1: repeat_word(t->w, t->k + 1, bad); break;
        default: { size_t i = rng_below(r, (uint32_t)t->k) * (strlen(t->w) + 1); /* misspell one copy */
                   char c; do c = (char)('a' + rng_below(r, 26)); while (c == bad[i]); bad[i] = c; } break;
        }
        canonical_with(t, bad, out, cap);
        return;
    case F_COUNT: case F_LENGTH:
        v = atoll(ans) + (rng_below(r, 2) ? 1 : -1);
        if (v < 0) v = 1;
        sprintf(bad, "%lld", v);
        canonical_with(t, bad, out, cap);
        return;
    case F_ADD:
        v = atoll(ans);
        switch (rng_below(r, 3)) {
        case 0: change_one_digit(r, bad); break;
        case 1: sprintf(bad, "%lld", v + (rng_below(r, 2) ? 1 : -1)); break;
        default: sprintf(bad, "%lld", v + (rng_below(r, 2) ? 10 : -10)); break;
        }
        if (bad[0] == '-' || (bad[0] == '0' && bad[1])) strcpy(bad, ans);
        canonical_with(t, bad, out, cap);
        return;
    case F_PALINDROME:
        if (rng_below(r, 2)) render(out, cap, yes ? "Yes, \"{w}\" is not a palindrome." : "No, \"{w}\" is a palindrome.", t, ans);
        else render(out, cap, yes ? "Yes. No, \"{w}\" is not a palindrome." : "No. Yes, \"{w}\" is a palindrome.", t, ans);
        return;
    case F_LARGER:
        sprintf(two, rng_below(r, 2) ? "%s or %lld" : "%s, or maybe %lld", ans, t->a > t->b ? t->b : t->a);
        canonical_with(t, two, out, cap);
        return;
    default:  /* string answers */
        switch (rng_below(r, 4)) {
        case 0: change_one_letter(r, bad); break;
        case 1: if (t->fam == F_UPPER) { bad[rng_below(r, (uint32_t)strlen(bad))] += 'a' - 'A'; break; }
                change_one_letter(r, bad); break;
        case 2: {  /* swap two neighbours */
            size_t i = rng_below(r, (uint32_t)strlen(bad));
            if (bad[i + 1]) { char c = bad[i]; bad[i] = bad[i + 1]; bad[i + 1] = c; }
            else change_one_letter(r, bad);
            break;
        }
        default:  /* right, then hedged with a near miss: "tenalp" or "tenapl" */
            change_one_letter(r, bad);
            sprintf(two, "%s\" or \"%s", ans, bad);
            canonical_with(t, two, out, cap);
            return;
        }
        canonical_with(t, bad, out, cap);
        return;
    }
}

static void propose_wrong(const World *wd, Rng *r, const Task *t, int bucket, const char *ans, char *out, size_t cap) {
    char bad[ANS_CAP];
    size_t n = strlen(ans), i;
    long long v;
    Task o;
    strcpy(bad, ans);
    switch (t->fam) {
    case F_REPEAT:
        random_letters(r, bad, strlen(t->w), 0);
        { char w2[WORD_MAX + 1]; strcpy(w2, bad); repeat_word(w2, t->k, bad); }
        break;
    case F_COUNT: case F_LENGTH:
        v = atoll(ans) + (rng_below(r, 2) ? 1 : -1) * (2 + (long long)rng_below(r, 4));
        if (v < 0) v = -v;
        sprintf(bad, "%lld", v);
        break;
    case F_ADD:
        if (rng_below(r, 3) == 0) sprintf(bad, "%lld", t->a > t->b ? t->a - t->b : t->b - t->a);  /* subtracted */
        else  /* a random number with as many digits, no leading zero */
            for (i = 0; i < n; i++) bad[i] = (char)(i == 0 && n > 1 ? '1' + rng_below(r, 9) : '0' + rng_below(r, 10));
        break;
    case F_PALINDROME: strcpy(bad, strcmp(ans, "yes") == 0 ? "no" : "yes"); break;
    case F_LARGER: sprintf(bad, "%lld", t->a > t->b ? t->b : t->a); break;
    default:  /* string answers */
        switch (rng_below(r, 4)) {
        case 0: random_letters(r, bad, n, t->fam == F_UPPER); break;
        case 1: if (strlen(t->w) == n) { strcpy(bad, t->w); break; }   /* the input unchanged */
                random_letters(r, bad, n, t->fam == F_UPPER); break;
        case 2:  /* the answer's letters shuffled */
            for (i = n; i > 1; i--) {
                size_t j = rng_below(r, (uint32_t)i);
                char c = bad[i - 1];
                bad[i - 1] = bad[j];
                bad[j] = c;
            }
            break;
        default:  /* another family's answer for the same input: reverse <-> sort, first <-> last */
            o = *t;
            if (t->fam == F_REVERSE) o.fam = F_SORT;
            else if (t->fam == F_SORT) o.fam = F_REVERSE;
            else if (t->fam == F_FIRST) o.fam = F_LAST;
            else if (t->fam == F_LAST) o.fam = F_FIRST;
            if (o.fam != t->fam && task_bucket(wd, &o) == bucket) task_answer(&o, bad);
            else random_letters(r, bad, n, t->fam == F_UPPER);
            break;
        }
        break;
    }
    canonical_with(t, bad, out, cap);
}

static void propose_no_answer(const World *wd, Rng *r, const Task *t, int bucket, const char *ans, char *out, size_t cap) {
    static const char *const refusal_word[3] = {"I am not sure how to do that with \"{w}\".", "I cannot answer that for \"{w}\".",
                                                "Let me think about \"{w}\" first."};
    char bad[ANS_CAP], *mark;
    size_t n = strlen(ans);
    Task o;
    switch (rng_below(r, 5)) {
    case 0:  /* cut off before or inside the answer */
        if (t->fam == F_PALINDROME) break;
        canonical_with(t, "\x01", out, cap);
        mark = strchr(out, '\x01');
        *mark = 0;
        if (answers_string(t->fam)) { size_t cut = rng_below(r, (uint32_t)n); strncat(out, ans, cut); }
        else if (mark > out && mark[-1] == ' ') mark[-1] = 0;
        return;
    case 1:  /* an answer of the wrong size */
        if (t->fam == F_PALINDROME || t->fam == F_LARGER) break;
        strcpy(bad, ans);
        if (t->fam == F_REPEAT) repeat_word(t->w, t->k + 2 + (int)rng_below(r, 2), bad);
        else if (!answers_string(t->fam)) strcat(bad, "00");
        else if (rng_below(r, 2) && n > 1) bad[n - 1] = 0;
        else { bad[n] = bad[n - 1]; bad[n + 1] = 0; }
        canonical_with(t, bad, out, cap);
        return;
    case 2:  /* the question again */
        task_instruction(t, (int)rng_below(r, (uint32_t)family_phrasing_count(t->fam)), out, cap);
        return;
    case 3:  /* another family's sentence about the same input */
        o = *t;
        if (t->fam == F_ADD) o.fam = F_LARGER;
        else if (t->fam == F_LARGER) o.fam = F_ADD;
        else { static const int word_fams[4] = {F_REVERSE, F_SORT, F_UPPER, F_LENGTH};
               o.fam = word_fams[rng_below(r, 4)]; }
        if (o.fam == t->fam || !task_valid(&o) || task_bucket(wd, &o) != bucket) break;
        task_canonical(&o, out, cap);
        return;
    default: break;
    }
    /* a refusal that mentions the input */
    if (t->fam == F_ADD) render(out, cap, "I cannot add {a} and {b}.", t, ans);
    else if (t->fam == F_LARGER) render(out, cap, "I cannot compare {a} and {b}.", t, ans);
    else if (t->fam == F_COUNT) render(out, cap, "I cannot count \"{c}\" in \"{w}\".", t, ans);
    else if (t->fam == F_PALINDROME) render(out, cap, "I am not sure about \"{w}\".", t, ans);
    else render(out, cap, refusal_word[rng_below(r, 3)], t, ans);
}

static void propose_irrelevant(const World *wd, Rng *r, const Task *t, int bucket, const char *ans, char *out, size_t cap) {
    static const char *const junk[5] = {"I do not know.", "Sorry, I cannot help with that.", "That is a good question.",
                                        "Let me think about it.", "Here is my answer."};
    Task o;
    out[0] = 0;
    switch (rng_below(r, 5)) {
    case 0: return;  /* empty */
    case 1: str_cat(out, cap, junk[rng_below(r, 5)]); return;
    case 2:  /* the right form for another input */
        sample_task_in(wd, r, t->fam, bucket, &o);
        task_canonical(&o, out, cap);
        return;
    case 3:  /* a bare answer that does not restate the input */
        if (t->fam == F_PALINDROME) str_cat(out, cap, strcmp(ans, "yes") == 0 ? "Yes." : "No.");
        else if (answers_string(t->fam)) { str_cat(out, cap, "\""); str_cat(out, cap, ans); str_cat(out, cap, "\"."); }
        else { str_cat(out, cap, "The answer is "); str_cat(out, cap, ans); str_cat(out, cap, "."); }
        return;
    default:  /* this task's answer in a sentence about another input */
        sample_task_in(wd, r, t->fam, bucket, &o);
        render(out, cap, canonical_of(&o, ans), &o, ans);
        return;
    }
}

/* Open families: a random word of the world's list that fits the task
 * (want = 2), fits exactly one constraint (1) or neither (0); 0 if none. */
static int open_pick(const World *wd, Rng *r, const Task *t, int want, char *out) {
    int i, n = 0, pick;
    for (i = 0; i < wd->nwords; i++) {
        const char *w = wd->words[i];
        if (((int)strlen(w) == t->k) + open_letter_fits(t, w) == want) n++;
    }
    if (n == 0) return 0;
    pick = (int)rng_below(r, (uint32_t)n);
    for (i = 0; i < wd->nwords; i++) {
        const char *w = wd->words[i];
        if (((int)strlen(w) == t->k) + open_letter_fits(t, w) == want && pick-- == 0) { strcpy(out, w); break; }
    }
    return 1;
}
/* The answer a generator writes: any fitting word for an open family (the
 * reference answer if none is in the world's word range), else the answer. */
static void task_answer_drawn(const World *wd, Rng *r, const Task *t, char *out) {
    if (!is_open(t->fam) || !open_pick(wd, r, t, 2, out)) task_answer(t, out);
}
static void propose_open(const World *wd, Rng *r, const Task *t, int bucket, int target, char *out, size_t cap) {
    static const char *const no_word[4] = {"I know a {k}-letter word with \"{c}\".", "There are many {k}-letter words with \"{c}\".",
                                           "A word of {k} letters and \"{c}\" is hard to find.", "Let me think of {k} letters and \"{c}\"."};
    char ans[ANS_CAP], canon[TEXT_CAP], w[ANS_CAP];
    task_answer_drawn(wd, r, t, ans);
    canonical_with(t, ans, canon, sizeof canon);
    out[0] = 0;
    switch (target) {
    case 5: str_cat(out, cap, canon); break;
    case 4: propose_correct_variant(r, t, ans, canon, out, cap); break;
    case 3:  /* a real word that fits one constraint: mostly the letter (the likely slip) */
        if (!open_pick(wd, r, t, 1, w)) strcpy(w, ans);
        canonical_with(t, w, out, cap);
        break;
    case 2:  /* a word that fits neither, or a fitting word with one letter changed (mostly not a word) */
        if (rng_below(r, 2) || !open_pick(wd, r, t, 0, w)) { strcpy(w, ans); change_one_letter(r, w); }
        canonical_with(t, w, out, cap);
        break;
    case 1:
        if (rng_below(r, 3) == 0) task_instruction(t, (int)rng_below(r, (uint32_t)family_phrasing_count(t->fam)), out, cap);
        else render(out, cap, no_word[rng_below(r, 4)], t, ans);
        break;
    default: propose_irrelevant(wd, r, t, bucket, ans, out, cap); break;
    }
}

static void propose_response(const World *wd, Rng *r, const Task *t, int bucket, int target, char *out, size_t cap) {
    char ans[ANS_CAP], canon[TEXT_CAP];
    if (is_open(t->fam)) { propose_open(wd, r, t, bucket, target, out, cap); return; }
    task_answer(t, ans);
    canonical_with(t, ans, canon, sizeof canon);
    out[0] = 0;
    switch (target) {
    case 5: str_cat(out, cap, canon); break;
    case 4: propose_correct_variant(r, t, ans, canon, out, cap); break;
    case 3: propose_near_miss(r, t, ans, out, cap); break;
    case 2: propose_wrong(wd, r, t, bucket, ans, out, cap); break;
    case 1: propose_no_answer(wd, r, t, bucket, ans, out, cap); break;
    default: propose_irrelevant(wd, r, t, bucket, ans, out, cap); break;
    }
}

/* 1 when a response earning exactly `target` within the size limit was found. */
static int make_response(const World *wd, Rng *r, const Task *t, int bucket, int target, char *out, size_t cap) {
    int tries;
    for (tries = 0; tries < 300; tries++) {
        propose_response(wd, r, t, bucket, target, out, cap);
        if ((int)strlen(out) <= wd->opt.max_response_bytes && grade_task(t, out, strlen(out)).grade == target) return 1;
    }
    return 0;
}

/* Draw a fresh instruction of family fam in bucket and a response earning
 * `target`; redraws the task in the rare case no corruption fits it. */
static void draw_pair(const World *wd, Rng *r, int fam, int bucket, int target, StrSet *keys, StrSet *seen,
                      Task *t, char *ins, char *resp) {
    int tries;
    for (tries = 0; tries < 1000; tries++) {
        draw_instruction(wd, r, fam, bucket, keys, seen, t, ins, TEXT_CAP);
        if (make_response(wd, r, t, bucket, target, resp, TEXT_CAP)) return;
    }
    die("cannot make a %s response of grade %d within %d bytes: raise --max-response-bytes or lower the difficulty",
        family_names[fam], target, wd->opt.max_response_bytes);
}

/* draw_pair, then the judgment of that response (judgment_text): the EFT
 * examples and the corpus's review pages judge the same way. Returns the grade. */
static Grade draw_judged_pair(const World *wd, Rng *r, int fam, int bucket, int target, StrSet *keys, StrSet *seen,
                              Task *t, char *ins, char *resp, char *judgment, size_t cap) {
    char canon[TEXT_CAP];
    Grade g;
    draw_pair(wd, r, fam, bucket, target, keys, seen, t, ins, resp);
    g = grade_task(t, resp, strlen(resp));
    task_canonical(t, canon, sizeof canon);
    judgment_text(r, &g, strstr(resp, canon) != NULL, t, judgment, cap);
    return g;
}

/* ------------------------------------------------------------------------
 * Output files.
 * ---------------------------------------------------------------------- */
enum { OUT_CORPUS, OUT_IFT, OUT_EFT_TRAIN, OUT_EFT_EVAL, OUT_TEST, OUT_RANKED, OUT_MANIFEST, NOUT };
static const char *const out_names[NOUT] = {"corpus.txt", "ift.jsonl", "eft_train.jsonl", "eft_eval.jsonl",
                                            "test_prompts.jsonl", "ranked_eval.jsonl", "MANIFEST"};
typedef struct { Buf file[NOUT]; } WorldFiles;

static void shuffle_ints(Rng *r, int *a, int n) {  /* Fisher-Yates */
    int i;
    for (i = n - 1; i > 0; i--) {
        int j = (int)rng_below(r, (uint32_t)i + 1), x = a[i];
        a[i] = a[j];
        a[j] = x;
    }
}
static int *alloc_ints(int n) {
    int *p = (int *)malloc(sizeof(int) * (size_t)(n > 0 ? n : 1));
    if (!p) die("out of memory");
    return p;
}

/* corpus.txt: blocks separated by blank lines: facts (canonical sentences,
 * a quarter in other words), question-and-answer pages, spellings, word and
 * number lists, and "Task:" lists that show what instructions look like.
 * Only train-bucket tasks. */
static void corpus_facts(const World *wd, Rng *r, Buf *out) {
    int i, n = 5 + (int)rng_below(r, 6);
    int one = rng_below(r, 2) ? wd->fams[rng_below(r, (uint32_t)wd->nfams)] : -1;
    char ans[ANS_CAP], line[TEXT_CAP];
    Task t;
    for (i = 0; i < n; i++) {
        int fam = one >= 0 ? one : wd->fams[rng_below(r, (uint32_t)wd->nfams)];
        sample_task_in(wd, r, fam, B_TRAIN, &t);
        task_answer_drawn(wd, r, &t, ans);
        if (rng_below(r, 4) == 0) render_alternative(r, &t, ans, line, sizeof line);
        else canonical_with(&t, ans, line, sizeof line);
        buf_puts(out, line);
        buf_putc(out, '\n');
    }
}
static void corpus_spelling(const World *wd, Rng *r, Buf *out) {
    int i, n = 4 + (int)rng_below(r, 5);
    size_t j;
    for (i = 0; i < n; i++) {
        const char *w = pick_word(wd, r);
        int style = (int)rng_below(r, 3);
        if (style == 0) buf_printf(out, "The word \"%s\" is spelled ", w);
        else if (style == 1) buf_printf(out, "\"%s\" has the letters ", w);
        else buf_printf(out, "%s: ", w);
        for (j = 0; w[j]; j++) {
            if (j) buf_puts(out, style == 0 ? "-" : style == 1 ? ", " : " ");
            buf_putc(out, w[j]);
        }
        buf_puts(out, style == 2 ? "\n" : ".\n");
    }
}
static void corpus_lists(const World *wd, Rng *r, Buf *out) {
    int i, j, n = 1 + (int)rng_below(r, 3);
    for (i = 0; i < n; i++) {
        switch (rng_below(r, 4)) {
        case 0: {
            int m = 8 + (int)rng_below(r, 7);
            buf_puts(out, "Words: ");
            for (j = 0; j < m; j++) buf_printf(out, "%s%s", j ? ", " : "", pick_word(wd, r));
            buf_puts(out, ".\n");
            break;
        }
        case 1: buf_puts(out, "The alphabet: a b c d e f g h i j k l m n o p q r s t u v w x y z.\n"); break;
        case 2:
            buf_puts(out, "Small and capital letters:");
            for (j = 0; j < 26; j++) buf_printf(out, " %c%c", 'a' + j, 'A' + j);
            buf_puts(out, ".\n");
            break;
        default: {
            long long v = pick_number(wd, r);
            buf_printf(out, "Counting from %lld:", v);
            for (j = 0; j < 10; j++) buf_printf(out, "%s %lld", j ? "," : "", v + j);
            buf_puts(out, ".\n");
            break;
        }
        }
    }
}
static void corpus_tasks(const World *wd, Rng *r, Buf *out) {
    int i, n = 8 + (int)rng_below(r, 5);
    char ins[TEXT_CAP];
    Task t;
    for (i = 0; i < n; i++) {
        int fam = wd->fams[rng_below(r, (uint32_t)wd->nfams)];
        sample_task_in(wd, r, fam, B_TRAIN, &t);
        task_instruction(&t, (int)rng_below(r, (uint32_t)family_phrasing_count(fam)), ins, sizeof ins);
        buf_printf(out, "Task: %s\n", ins);
    }
}
/* Question-and-answer pages (an answer key, an FAQ): a base model that has
 * read such text can carry words and numbers from a question into its answer,
 * which a pretrained LLM can and a model trained on facts alone cannot. */
static void corpus_qa(const World *wd, Rng *r, Buf *out) {
    int i, n = 4 + (int)rng_below(r, 4);
    char ins[TEXT_CAP], ans[ANS_CAP], line[TEXT_CAP];
    Task t;
    for (i = 0; i < n; i++) {
        int fam = wd->fams[rng_below(r, (uint32_t)wd->nfams)];
        sample_task_in(wd, r, fam, B_TRAIN, &t);
        task_instruction(&t, (int)rng_below(r, (uint32_t)family_phrasing_count(fam)), ins, sizeof ins);
        task_answer_drawn(wd, r, &t, ans);
        if (rng_below(r, 4) == 0) render_alternative(r, &t, ans, line, sizeof line);
        else canonical_with(&t, ans, line, sizeof line);
        if (rng_below(r, 5) < 2) {  /* a worked answer: the steps, then the answer */
            char work[TEXT_CAP];
            if (is_open(t.fam)) open_working(&t, ans, work, sizeof work);
            else task_working(&t, work, sizeof work);
            buf_printf(out, "Q: %s\nWorking: %s.\nA: %s\n", ins, work, line);
        } else {
            buf_printf(out, "Q: %s\nA: %s\n", ins, line);
        }
    }
}
/* Review pages (a teacher's marking, graded answers online): questions of
 * the train bucket, answers of every grade 0..5 alike, each followed by the
 * judgment the EFT data teaches, worded the same way. A pretrained LLM has
 * read much text that grades text; M0 reads this, so SFT has only to tie
 * the judge template to a skill M0 has (the paper's M0 is Llama 2 70B, which
 * can judge few-shot). The judge template itself never appears here. */
static void corpus_reviews(const World *wd, Rng *r, Buf *out) {
    int i, n = 2 + (int)rng_below(r, 3);
    char ins[TEXT_CAP], resp[TEXT_CAP], judgment[2048];
    StrSet keys = {0, 0, 0}, seen = {0, 0, 0};
    Task t;
    for (i = 0; i < n; i++) {
        int fam = wd->fams[rng_below(r, (uint32_t)wd->nfams)], target = (int)rng_below(r, 6);
        draw_judged_pair(wd, r, fam, B_TRAIN, target, &keys, &seen, &t, ins, resp, judgment, sizeof judgment);
        buf_printf(out, "Q: %s\nA: %s\nReview: %s\n", ins, resp, judgment);
    }
    strset_free(&keys);
    strset_free(&seen);
}
static void gen_corpus(const World *wd, Buf *out) {
    Rng r;
    rng_for(wd, &r, TAG_CORPUS);
    while ((long)out->n < wd->opt.corpus_bytes) {
        uint32_t u;
        /* with --corpus-review-pct P, P% of blocks are reviews; at 0 no draw is made, so older corpora stay valid */
        if (wd->opt.corpus_review_pct > 0 && (int)rng_below(&r, 100) < wd->opt.corpus_review_pct) {
            corpus_reviews(wd, &r, out);
            buf_putc(out, '\n');
            continue;
        }
        u = rng_below(&r, 100);  /* block mix: facts 38, Q&A 25, spelling 12, lists 5, tasks 20 */
        if (u < 38) corpus_facts(wd, &r, out);
        else if (u < 63) corpus_qa(wd, &r, out);
        else if (u < 75) corpus_spelling(wd, &r, out);
        else if (u < 80) corpus_lists(wd, &r, out);
        else corpus_tasks(wd, &r, out);
        buf_putc(out, '\n');
    }
}

/* ift.jsonl: seed instruction data: ift_good_pct percent grade 5, the rest
 * two thirds grade 4 and one third grade 3 (imperfect human answers).
 * With ift_habit_pct > 0, that many percent of the grade-5 share instead
 * carry one habit, the same in every one: the correct canonical answer
 * followed by " Hope this helps!" (grade 4: something extra). A habit most
 * seeds share is what a model trained on them imitates greedily; the judge
 * examples (EFT) teach that the rubric takes a point for it. */
static void emit_ift(Buf *out, int i, const char *ins, const char *resp, int grade) {
    char id[32];
    sprintf(id, "ift-%05d", i);
    buf_puts(out, "{");
    json_key_str(out, "id", id);
    buf_puts(out, ", ");
    json_key_str(out, "instruction", ins);
    buf_puts(out, ", ");
    json_key_str(out, "response", resp);
    buf_printf(out, ", \"score\": %d}\n", grade);
}

/* A correct train answer for family fam with the given suffix (grade 4). */
static void draw_habit_pair(const World *wd, Rng *r, int fam, const char *suffix, StrSet *keys, StrSet *seen,
                            Task *t, char *ins, char *resp) {
    int tries;
    for (tries = 0;; tries++) {
        if (tries == 1000) die("cannot fit a %s answer with the habit in %d bytes: raise --max-response-bytes",
                               family_names[fam], wd->opt.max_response_bytes);
        draw_pair(wd, r, fam, B_TRAIN, 5, keys, seen, t, ins, resp);
        str_cat(resp, TEXT_CAP, suffix);
        if ((int)strlen(resp) <= wd->opt.max_response_bytes && grade_task(t, resp, strlen(resp)).grade == 4) return;
    }
}

/* ift.jsonl with one habit per family (--ift-habit-pcts): family slot s
 * carries the suffix correct_suffix[s % 4] on habit_fam_pct[s] percent of
 * its seeds; the grade-5/4/3 shares are as gen_ift's, per family. Habits of
 * different strength are removed by different amounts of preference data,
 * so the loop can fix them in different iterations. */
static void gen_ift_habit_per_family(const World *wd, Buf *out) {
    const WorldOptions *o = &wd->opt;
    int n = o->n_ift, nf = wd->nfams, i;
    int *order = alloc_ints(n);
    char ins[TEXT_CAP], resp[TEXT_CAP];
    StrSet keys = {0, 0, 0}, seen = {0, 0, 0};
    Task t;
    Rng r;
    rng_for(wd, &r, TAG_IFT);
    for (i = 0; i < n; i++) order[i] = i;    /* seed i: family slot i % nf, its (i / nf)-th seed */
    shuffle_ints(&r, order, n);
    for (i = 0; i < n; i++) {
        int s = order[i] % nf, j = order[i] / nf, fam = wd->fams[s];
        int m = (n - s + nf - 1) / nf;                       /* seeds of this family */
        int n5 = (m * o->ift_good_pct + 50) / 100, n4 = (2 * (m - n5) + 1) / 3;
        int nh = (m * o->habit_fam_pct[s] + 50) / 100;
        int g = j < nh ? 6 : j < n5 ? 5 : j < n5 + n4 ? 4 : 3;
        if (g == 6) {
            draw_habit_pair(wd, &r, fam, correct_suffix[s % 4], &keys, &seen, &t, ins, resp);
            g = 4;
        } else {
            draw_pair(wd, &r, fam, B_TRAIN, g, &keys, &seen, &t, ins, resp);
        }
        emit_ift(out, i, ins, resp, g);
    }
    free(order);
    strset_free(&keys);
    strset_free(&seen);
}

static void gen_ift(const World *wd, Buf *out) {
    const WorldOptions *o = &wd->opt;
    int n = o->n_ift, n5 = (n * o->ift_good_pct + 50) / 100, n4 = (2 * (n - n5) + 1) / 3, i;
    int nh = (n * o->ift_habit_pct + 50) / 100;
    int *grade = alloc_ints(n), *fam = alloc_ints(n);
    char ins[TEXT_CAP], resp[TEXT_CAP];
    StrSet keys = {0, 0, 0}, seen = {0, 0, 0};
    Task t;
    Rng r;
    rng_for(wd, &r, TAG_IFT);
    for (i = 0; i < n; i++) {
        grade[i] = i < nh ? 6 : i < n5 ? 5 : i < n5 + n4 ? 4 : 3;   /* 6: grade 4 by the habit */
        fam[i] = wd->fams[i % wd->nfams];   /* families as even as the size allows */
    }
    shuffle_ints(&r, grade, n);
    shuffle_ints(&r, fam, n);
    for (i = 0; i < n; i++) {
        if (grade[i] == 6) {
            draw_habit_pair(wd, &r, fam[i], IFT_HABIT, &keys, &seen, &t, ins, resp);
            grade[i] = 4;
        } else {
            draw_pair(wd, &r, fam[i], B_TRAIN, grade[i], &keys, &seen, &t, ins, resp);
        }
        emit_ift(out, i, ins, resp, grade[i]);
    }
    free(grade);
    free(fam);
    strset_free(&keys);
    strset_free(&seen);
}

/* eft_*.jsonl: judge examples with equal counts of every score 0..5 and of
 * every (score, family) combination as far as the size allows. */
static void gen_eft(const World *wd, Buf *out, int n, int bucket, uint64_t tag, const char *id_prefix) {
    int i, m = n - n % 6;
    int *plan = alloc_ints(m);
    char ins[TEXT_CAP], resp[TEXT_CAP], judgment[2048];
    StrSet keys = {0, 0, 0}, seen = {0, 0, 0};
    Buf prompt = {0, 0, 0};
    Task t;
    Rng r;
    rng_for(wd, &r, tag);
    /* plan[i] = grade + 6 * family slot: grade cycles fastest, so any 6 * nfams consecutive entries cover every combination */
    for (i = 0; i < m; i++) plan[i] = i % 6 + 6 * ((i / 6) % wd->nfams);
    shuffle_ints(&r, plan, m);
    for (i = 0; i < m; i++) {
        int target = plan[i] % 6, fam = wd->fams[plan[i] / 6];
        char id[48];
        Grade g = draw_judged_pair(wd, &r, fam, bucket, target, &keys, &seen, &t, ins, resp, judgment, sizeof judgment);
        prompt.n = 0;
        judge_fill(&prompt, wd->tmpl, wd->tmpl_len, ins, strlen(ins), resp, strlen(resp));
        sprintf(id, "%s-%05d", id_prefix, i);
        buf_puts(out, "{");
        json_key_str(out, "id", id);
        buf_puts(out, ", \"instruction\": ");
        json_str(out, prompt.p, prompt.n);
        buf_puts(out, ", ");
        json_key_str(out, "response", judgment);
        buf_printf(out, ", \"score\": %d, ", g.grade);
        json_key_str(out, "task_instruction", ins);
        buf_puts(out, ", ");
        json_key_str(out, "task_response", resp);
        buf_puts(out, "}\n");
    }
    free(plan);
    buf_free(&prompt);
    strset_free(&keys);
    strset_free(&seen);
}

/* test_prompts.jsonl: held-out instructions, families in turn. */
static void gen_test(const World *wd, Buf *out) {
    int i;
    char ins[TEXT_CAP], id[48];
    StrSet keys = {0, 0, 0}, seen = {0, 0, 0};
    Task t;
    Rng r;
    rng_for(wd, &r, TAG_TEST);
    for (i = 0; i < wd->opt.n_test; i++) {
        int fam = wd->fams[i % wd->nfams];
        draw_instruction(wd, &r, fam, B_TEST, &keys, &seen, &t, ins, sizeof ins);
        sprintf(id, "test-%03d-%s", i, family_names[fam]);
        buf_puts(out, "{");
        json_key_str(out, "id", id);
        buf_puts(out, ", ");
        json_key_str(out, "instruction", ins);
        buf_puts(out, "}\n");
    }
    strset_free(&keys);
    strset_free(&seen);
}

/* ranked_eval.jsonl: held-out instructions, each with 3 or 4 responses of
 * distinct grades in random order (the human rankings of the paper's EFT eval). */
static void gen_ranked(const World *wd, Buf *out) {
    int i, j;
    char ins[TEXT_CAP], resp[TEXT_CAP], id[48];
    StrSet keys = {0, 0, 0}, seen = {0, 0, 0};
    Task t;
    Rng r;
    rng_for(wd, &r, TAG_RANKED);
    for (i = 0; i < wd->opt.n_ranked; i++) {
        int fam = wd->fams[i % wd->nfams], m = 3 + (int)rng_below(&r, 2), grades[6] = {0, 1, 2, 3, 4, 5}, tries;
        Buf resps = {0, 0, 0};
        for (tries = 0;; tries++) {
            int ok = 1;
            if (tries == 1000)
                die("cannot make a ranked %s set within %d bytes: raise --max-response-bytes", family_names[fam],
                    wd->opt.max_response_bytes);
            draw_instruction(wd, &r, fam, B_RANKED, &keys, &seen, &t, ins, sizeof ins);
            for (j = 5; j > 0; j--) {  /* a random choice of m distinct grades, in random order */
                int q = (int)rng_below(&r, (uint32_t)j + 1), x = grades[j];
                grades[j] = grades[q];
                grades[q] = x;
            }
            resps.n = 0;
            for (j = 0; j < m && ok; j++) {
                ok = make_response(wd, &r, &t, B_RANKED, grades[j], resp, sizeof resp);
                if (j) buf_puts(&resps, ", ");
                json_str(&resps, resp, strlen(resp));
            }
            if (ok) break;
        }
        sprintf(id, "ranked-%03d-%s", i, family_names[fam]);
        buf_puts(out, "{");
        json_key_str(out, "id", id);
        buf_puts(out, ", ");
        json_key_str(out, "instruction", ins);
        buf_printf(out, ", \"responses\": [%s], \"grades\": [", resps.p);
        for (j = 0; j < m; j++) buf_printf(out, "%s%d", j ? ", " : "", grades[j]);
        buf_puts(out, "]}\n");
        buf_free(&resps);
    }
    strset_free(&keys);
    strset_free(&seen);
}

static size_t count_lines(const Buf *b) {
    size_t i, n = 0;
    for (i = 0; i < b->n; i++) n += b->p[i] == '\n';
    return n;
}
static void hex_digest(const char *p, size_t n, char hex[65]) {
    uint8_t d[32];
    sha256(p, n, d);
    sha256_hex(d, hex);
}

static void gen_manifest(const World *wd, WorldFiles *f) {
    const WorldOptions *o = &wd->opt;
    Buf *m = &f->file[OUT_MANIFEST];
    char hex[65];
    int i;
    buf_puts(m, "srlm world data, written by tiny_models/world.c (format 1)\n");
    buf_printf(m, "seed %llu\n", (unsigned long long)o->seed);
    buf_printf(m, "difficulty word-len %d..%d numbers %lld..%lld k %d..%d repeat-max-chars %d max-response-bytes %d\n",
               o->word_min, o->word_max, o->num_min, o->num_max, o->k_min, o->k_max, o->repeat_max_chars,
               o->max_response_bytes);
    buf_puts(m, "families");
    for (i = 0; i < wd->nfams; i++) buf_printf(m, "%s%s", i ? "," : " ", family_names[wd->fams[i]]);
    buf_printf(m, "\nsizes corpus-bytes %ld ift %d ift-good-pct %d eft-train %d eft-eval %d test %d ranked %d\n",
               o->corpus_bytes, o->n_ift, o->ift_good_pct, o->n_eft_train, o->n_eft_eval, o->n_test, o->n_ranked);
    if (o->corpus_review_pct > 0) buf_printf(m, "corpus-review-pct %d\n", o->corpus_review_pct);  /* absent at 0 */
    if (o->open_check_letters) buf_printf(m, "open-check letters\n");  /* absent by default */
    if (o->ift_habit_pct > 0) buf_printf(m, "ift-habit-pct %d (\"%s\")\n", o->ift_habit_pct, &IFT_HABIT[1]);  /* absent at 0: older manifests stay valid */
    if (o->n_habit_fam_pct > 0) {
        buf_puts(m, "ift-habit-pcts");
        for (i = 0; i < wd->nfams; i++)
            buf_printf(m, "%s %s %d (\"%s\")", i ? "," : "", family_names[wd->fams[i]], o->habit_fam_pct[i],
                       &correct_suffix[i % 4][1]);
        buf_puts(m, "\n");
    }
    hex_digest(wd->tmpl, wd->tmpl_len, hex);
    buf_printf(m, "judge-template bytes %lu sha256 %s\n", (unsigned long)wd->tmpl_len, hex);
    for (i = 0; i < OUT_MANIFEST; i++) {
        hex_digest(f->file[i].p ? f->file[i].p : "", f->file[i].n, hex);
        buf_printf(m, "file %s lines %lu bytes %lu sha256 %s\n", out_names[i], (unsigned long)count_lines(&f->file[i]),
                   (unsigned long)f->file[i].n, hex);
    }
}

/* Everything from the seed and the options, into memory. */
static void world_generate(const World *wd, WorldFiles *f) {
    memset(f, 0, sizeof *f);
    gen_corpus(wd, &f->file[OUT_CORPUS]);
    if (wd->opt.n_habit_fam_pct > 0) gen_ift_habit_per_family(wd, &f->file[OUT_IFT]);
    else gen_ift(wd, &f->file[OUT_IFT]);
    gen_eft(wd, &f->file[OUT_EFT_TRAIN], wd->opt.n_eft_train, B_TRAIN, TAG_EFT_TRAIN, "eft-train");
    gen_eft(wd, &f->file[OUT_EFT_EVAL], wd->opt.n_eft_eval, B_EFT_EVAL, TAG_EFT_EVAL, "eft-eval");
    gen_test(wd, &f->file[OUT_TEST]);
    gen_ranked(wd, &f->file[OUT_RANKED]);
    gen_manifest(wd, f);
}
static void world_files_free(WorldFiles *f) {
    int i;
    for (i = 0; i < NOUT; i++) buf_free(&f->file[i]);
}

/* ------------------------------------------------------------------------
 * JSON Lines reader for `world grade`: one object per line; "instruction"
 * and "response" must be strings; "id" (any JSON value) is copied verbatim;
 * other members are checked and ignored. String escapes are decoded (\uXXXX
 * to UTF-8, surrogate pairs joined, a lone surrogate kept as its 3-byte
 * form); raw bytes >= 0x80 pass through untouched, valid UTF-8 or not.
 * ---------------------------------------------------------------------- */
typedef struct { const char *s; size_t n, i; const char *err; } Json;

static void json_ws(Json *j) { while (j->i < j->n && is_space((unsigned char)j->s[j->i])) j->i++; }
static int json_fail(Json *j, const char *why) { if (!j->err) j->err = why; return 0; }

static void put_utf8(Buf *b, uint32_t cp) {
    char u[4];
    if (cp < 0x80) { u[0] = (char)cp; buf_put(b, u, 1); }
    else if (cp < 0x800) { u[0] = (char)(0xc0 | (cp >> 6)); u[1] = (char)(0x80 | (cp & 0x3f)); buf_put(b, u, 2); }
    else if (cp < 0x10000) {
        u[0] = (char)(0xe0 | (cp >> 12)); u[1] = (char)(0x80 | ((cp >> 6) & 0x3f)); u[2] = (char)(0x80 | (cp & 0x3f));
        buf_put(b, u, 3);
    } else {
        u[0] = (char)(0xf0 | (cp >> 18)); u[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
        u[2] = (char)(0x80 | ((cp >> 6) & 0x3f)); u[3] = (char)(0x80 | (cp & 0x3f));
        buf_put(b, u, 4);
    }
}
static int json_hex4(Json *j, uint32_t *v) {
    int q;
    *v = 0;
    if (j->n - j->i < 4) return json_fail(j, "truncated \\u escape");
    for (q = 0; q < 4; q++) {
        char c = j->s[j->i++];
        int d = is_digit((unsigned char)c) ? c - '0'
              : (c >= 'a' && c <= 'f') ? c - 'a' + 10
              : (c >= 'A' && c <= 'F') ? c - 'A' + 10 : -1;
        if (d < 0) return json_fail(j, "bad hex digit in \\u escape");
        *v = *v * 16 + (uint32_t)d;
    }
    return 1;
}
/* At '"': decode the string into out (when not NULL). */
static int json_string(Json *j, Buf *out) {
    Buf skip = {0, 0, 0};
    int ok = 0;
    if (!out) out = &skip;
    j->i++;
    for (;;) {
        unsigned char c;
        if (j->i >= j->n) { json_fail(j, "unterminated string"); break; }
        c = (unsigned char)j->s[j->i++];
        if (c == '"') { ok = 1; break; }
        if (c < 0x20) { json_fail(j, "raw control character in a string (must be escaped)"); break; }
        if (c != '\\') { buf_putc(out, (char)c); continue; }
        if (j->i >= j->n) { json_fail(j, "unterminated string"); break; }
        c = (unsigned char)j->s[j->i++];
        if (c == '"' || c == '\\' || c == '/') buf_putc(out, (char)c);
        else if (c == 'b') buf_putc(out, '\b');
        else if (c == 'f') buf_putc(out, '\f');
        else if (c == 'n') buf_putc(out, '\n');
        else if (c == 'r') buf_putc(out, '\r');
        else if (c == 't') buf_putc(out, '\t');
        else if (c == 'u') {
            uint32_t cp, lo;
            if (!json_hex4(j, &cp)) break;
            if (cp >= 0xd800 && cp < 0xdc00 && j->n - j->i >= 6 && j->s[j->i] == '\\' && j->s[j->i + 1] == 'u') {
                size_t save = j->i;
                j->i += 2;
                if (!json_hex4(j, &lo)) break;
                if (lo >= 0xdc00 && lo < 0xe000) cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                else j->i = save;
            }
            put_utf8(out, cp);
        } else { json_fail(j, "bad escape in a string"); break; }
    }
    buf_free(&skip);
    return ok;
}
static int json_number(Json *j) {
    size_t start = j->i;
    if (j->i < j->n && j->s[j->i] == '-') j->i++;
    if (j->i < j->n && j->s[j->i] == '0') j->i++;
    else if (j->i < j->n && j->s[j->i] >= '1' && j->s[j->i] <= '9')
        while (j->i < j->n && is_digit((unsigned char)j->s[j->i])) j->i++;
    else return json_fail(j, "bad value");
    if (j->i < j->n && j->s[j->i] == '.') {
        j->i++;
        if (j->i >= j->n || !is_digit((unsigned char)j->s[j->i])) return json_fail(j, "bad number");
        while (j->i < j->n && is_digit((unsigned char)j->s[j->i])) j->i++;
    }
    if (j->i < j->n && (j->s[j->i] == 'e' || j->s[j->i] == 'E')) {
        j->i++;
        if (j->i < j->n && (j->s[j->i] == '+' || j->s[j->i] == '-')) j->i++;
        if (j->i >= j->n || !is_digit((unsigned char)j->s[j->i])) return json_fail(j, "bad number");
        while (j->i < j->n && is_digit((unsigned char)j->s[j->i])) j->i++;
    }
    return j->i > start;
}
static int json_literal(Json *j, const char *word) {
    size_t m = strlen(word);
    if (j->n - j->i < m || memcmp(j->s + j->i, word, m) != 0) return json_fail(j, "bad value");
    j->i += m;
    return 1;
}
static int json_value(Json *j, int depth) {
    json_ws(j);
    if (j->i >= j->n) return json_fail(j, "missing value");
    if (depth > 64) return json_fail(j, "nested too deeply");
    switch (j->s[j->i]) {
    case '"': return json_string(j, NULL);
    case '{': case '[': {
        char close = j->s[j->i] == '{' ? '}' : ']';
        int first = 1;
        j->i++;
        for (;;) {
            json_ws(j);
            if (j->i < j->n && j->s[j->i] == close && first) { j->i++; return 1; }
            if (close == '}') {
                if (j->i >= j->n || j->s[j->i] != '"') return json_fail(j, "expected a member name");
                if (!json_string(j, NULL)) return 0;
                json_ws(j);
                if (j->i >= j->n || j->s[j->i] != ':') return json_fail(j, "expected ':'");
                j->i++;
            }
            if (!json_value(j, depth + 1)) return 0;
            json_ws(j);
            if (j->i < j->n && j->s[j->i] == ',') { j->i++; first = 0; continue; }
            if (j->i < j->n && j->s[j->i] == close) { j->i++; return 1; }
            return json_fail(j, close == '}' ? "expected ',' or '}'" : "expected ',' or ']'");
        }
    }
    case 't': return json_literal(j, "true");
    case 'f': return json_literal(j, "false");
    case 'n': return json_literal(j, "null");
    default: return json_number(j);
    }
}

typedef struct {
    Buf instruction, response;
    int has_instruction, has_response, has_id;
    size_t id_start, id_len;     /* the id's JSON text inside the line */
} GradeRecord;

/* Parse one line; 1 on success, else 0 with j->err set. */
static int json_grade_record(Json *j, GradeRecord *g) {
    Buf key = {0, 0, 0};
    int ok = 0;
    g->instruction.n = g->response.n = 0;
    g->has_instruction = g->has_response = g->has_id = 0;
    json_ws(j);
    if (j->i >= j->n || j->s[j->i] != '{') { json_fail(j, "a record must be a JSON object"); return 0; }
    j->i++;
    json_ws(j);
    if (j->i < j->n && j->s[j->i] == '}') j->i++;
    else for (;;) {
        json_ws(j);
        if (j->i >= j->n || j->s[j->i] != '"') { json_fail(j, "expected a member name"); goto done; }
        key.n = 0;
        if (!json_string(j, &key)) goto done;
        buf_put(&key, "", 0);                       /* terminate even when empty */
        json_ws(j);
        if (j->i >= j->n || j->s[j->i] != ':') { json_fail(j, "expected ':'"); goto done; }
        j->i++;
        json_ws(j);
        if (strcmp(key.p, "instruction") == 0 || strcmp(key.p, "response") == 0) {
            int is_ins = key.p[0] == 'i';
            int *has = is_ins ? &g->has_instruction : &g->has_response;
            Buf *dst = is_ins ? &g->instruction : &g->response;
            if (*has) { json_fail(j, is_ins ? "duplicate \"instruction\"" : "duplicate \"response\""); goto done; }
            if (j->i >= j->n || j->s[j->i] != '"') {
                json_fail(j, is_ins ? "\"instruction\" is not a string" : "\"response\" is not a string");
                goto done;
            }
            if (!json_string(j, dst)) goto done;
            buf_put(dst, "", 0);
            *has = 1;
        } else if (strcmp(key.p, "id") == 0) {
            if (g->has_id) { json_fail(j, "duplicate \"id\""); goto done; }
            g->id_start = j->i;
            if (!json_value(j, 1)) goto done;
            g->id_len = j->i - g->id_start;
            g->has_id = 1;
        } else if (!json_value(j, 1)) goto done;
        json_ws(j);
        if (j->i < j->n && j->s[j->i] == ',') { j->i++; continue; }
        if (j->i < j->n && j->s[j->i] == '}') { j->i++; break; }
        json_fail(j, "expected ',' or '}'");
        goto done;
    }
    json_ws(j);
    if (j->i != j->n) { json_fail(j, "unexpected text after the record"); goto done; }
    if (!g->has_instruction) { json_fail(j, "missing \"instruction\""); goto done; }
    if (!g->has_response) { json_fail(j, "missing \"response\""); goto done; }
    ok = 1;
done:
    buf_free(&key);
    return ok;
}

/* Grade every record of a JSON Lines text named `name`; blank lines are
 * skipped. Returns 0, or -1 with "NAME:LINE: what" in err. */
static int grade_jsonl(const char *name, const char *data, size_t n, Buf *out, char *err, size_t errcap) {
    GradeRecord g;
    size_t pos = 0;
    long line = 0;
    int rc = 0;
    memset(&g, 0, sizeof g);
    while (pos < n) {
        size_t end = pos, len;
        Json j;
        line++;
        while (end < n && data[end] != '\n') end++;
        len = end - pos;
        if (len && data[pos + len - 1] == '\r') len--;
        j.s = data + pos; j.n = len; j.i = 0; j.err = NULL;
        json_ws(&j);
        if (j.i < j.n) {
            Grade gr;
            Task t;
            char crit[80];
            if (!json_grade_record(&j, &g)) {
                snprintf(err, errcap, "%s:%ld: %s", name, line, j.err ? j.err : "bad record");
                rc = -1;
                break;
            }
            gr = grade_response(g.instruction.p, g.instruction.n, g.response.p, g.response.n);
            criteria_text(gr.held, crit);
            buf_puts(out, "{\"id\": ");
            if (g.has_id) buf_put(out, data + pos + g.id_start, g.id_len);
            else buf_puts(out, "null");
            buf_printf(out, ", \"grade\": %d, \"criteria\": \"%s\", \"reason\": \"%s\"", gr.grade, crit, gr.reason);
            /* the task's family, for reports that break results down (srlm's "category") */
            if (parse_instruction(g.instruction.p, g.instruction.n, &t, NULL))
                buf_printf(out, ", \"category\": \"%s\"", family_names[t.fam]);
            buf_puts(out, "}\n");
        }
        pos = end + 1;
    }
    buf_free(&g.instruction);
    buf_free(&g.response);
    return rc;
}

/* ------------------------------------------------------------------------
 * Command line.
 * ---------------------------------------------------------------------- */
#ifndef WORLD_NO_MAIN

static int read_file(const char *path, Buf *out) {
    FILE *f = fopen(path, "rb");
    char tmp[65536];
    size_t k;
    if (!f) return -1;
    while ((k = fread(tmp, 1, sizeof tmp, f)) > 0) buf_put(out, tmp, k);
    k = (size_t)ferror(f);
    fclose(f);
    if (!out->p) buf_put(out, "", 0);
    return k ? -1 : 0;
}
static void write_file(const char *path, const Buf *b) {
    FILE *f = fopen(path, "wb");
    if (!f) die("%s: cannot open for writing (does the directory exist?)", path);
    if ((b->n && fwrite(b->p, 1, b->n, f) != b->n) || fclose(f) != 0) die("%s: write failed", path);
}

static long long parse_int(const char *flag, const char *s, long long lo, long long hi) {
    char *end;
    long long v;
    if (!s) die("%s needs a value", flag);
    v = strtoll(s, &end, 10);
    if (end == s || *end || v < lo || v > hi) die("%s: \"%s\" is not an integer in %lld..%lld", flag, s, lo, hi);
    return v;
}
/* "60,70,80" -> pct[0..2], *n = 3 (at most NFAM values, each 0..100). */
static void parse_percent_list(const char *flag, const char *s, int *pct, int *n) {
    char one[16];
    *n = 0;
    while (*s) {
        size_t k = strcspn(s, ",");
        if (*n == NFAM || k == 0 || k >= sizeof one) die("%s: \"%s\" is not a list of at most %d percents", flag, s, NFAM);
        memcpy(one, s, k);
        one[k] = 0;
        pct[(*n)++] = (int)parse_int(flag, one, 0, 100);
        s += k;
        if (*s == ',') s++;
    }
    if (*n == 0) die("%s needs a list of percents", flag);
}
static unsigned parse_families(const char *s) {
    unsigned bits = 0;
    while (s && *s) {
        size_t n = strcspn(s, ",");
        int f;
        for (f = 0; f < NFAM; f++)
            if (strlen(family_names[f]) == n && strncmp(s, family_names[f], n) == 0) break;
        if (f == NFAM)
            die("--families: unknown family \"%.*s\" (known: reverse sort count upper add repeat first last "
                "palindrome length larger starts ends contains at)", (int)n, s);
        bits |= 1u << f;
        s += n;
        if (*s == ',') s++;
    }
    return bits;
}

static void usage(void) {
    fprintf(stderr,
        "usage:\n"
        "  world gen --seed S --out DIR [--template PATH] [--small]\n"
        "            [--word-min N] [--word-max N] [--num-min N] [--num-max N] [--k-min N] [--k-max N]\n"
        "            [--repeat-max-chars N] [--max-response-bytes N] [--families a,b,...]\n"
        "            [--corpus-bytes N] [--corpus-review-pct P] [--open-check letters] [--ift N] [--ift-good-pct P] [--ift-habit-pct H | --ift-habit-pcts H1,H2,..] [--eft-train N] [--eft-eval N]\n"
        "            [--test N] [--ranked N]\n"
        "  world grade IN.jsonl OUT.jsonl\n"
        "  world check INSTRUCTION RESPONSE\n"
        "  world fill TEMPLATE INSTRUCTION RESPONSE\n"
        "  world prefixes IN.jsonl OUT.jsonl   (corpus-style prefixes of the canonical answers, to probe M0)\n");
    exit(2);
}

static int cmd_gen(int argc, char **argv) {
    WorldOptions o;
    World *wd;
    WorldFiles files;
    const char *out_dir = NULL, *tmpl_path = "tiny_models/judge_template.txt", *why;
    char tmpl[TEMPLATE_CAP], path[4096];
    size_t tn;
    int i, have_seed = 0;
    options_default(&o);
    for (i = 2; i < argc; i++)                      /* --small first, so explicit sizes override it */
        if (strcmp(argv[i], "--small") == 0) options_small(&o);
    for (i = 2; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--small") == 0) continue;
        if (!v) die("%s needs a value", a);
        i++;
        if (strcmp(a, "--seed") == 0) { o.seed = (uint64_t)parse_int(a, v, 0, 9007199254740991ll); have_seed = 1; }
        else if (strcmp(a, "--out") == 0) out_dir = v;
        else if (strcmp(a, "--template") == 0) tmpl_path = v;
        else if (strcmp(a, "--word-min") == 0) o.word_min = (int)parse_int(a, v, 0, 100);
        else if (strcmp(a, "--word-max") == 0) o.word_max = (int)parse_int(a, v, 0, 100);
        else if (strcmp(a, "--num-min") == 0) o.num_min = parse_int(a, v, 0, 999999999);
        else if (strcmp(a, "--num-max") == 0) o.num_max = parse_int(a, v, 0, 999999999);
        else if (strcmp(a, "--k-min") == 0) o.k_min = (int)parse_int(a, v, 0, 100);
        else if (strcmp(a, "--k-max") == 0) o.k_max = (int)parse_int(a, v, 0, 100);
        else if (strcmp(a, "--repeat-max-chars") == 0) o.repeat_max_chars = (int)parse_int(a, v, 1, 1000);
        else if (strcmp(a, "--max-response-bytes") == 0) o.max_response_bytes = (int)parse_int(a, v, 1, 100000);
        else if (strcmp(a, "--families") == 0) o.families = parse_families(v);
        else if (strcmp(a, "--corpus-bytes") == 0) o.corpus_bytes = (long)parse_int(a, v, 0, 2000000000);
        else if (strcmp(a, "--corpus-review-pct") == 0) o.corpus_review_pct = (int)parse_int(a, v, 0, 100);
        else if (strcmp(a, "--open-check") == 0) {
            if (strcmp(v, "letters") == 0) o.open_check_letters = 1;
            else if (strcmp(v, "summary") == 0) o.open_check_letters = 0;
            else die("--open-check: letters or summary, not \"%s\"", v);
        }
        else if (strcmp(a, "--ift") == 0) o.n_ift = (int)parse_int(a, v, 0, 10000000);
        else if (strcmp(a, "--ift-good-pct") == 0) o.ift_good_pct = (int)parse_int(a, v, 0, 100);
        else if (strcmp(a, "--ift-habit-pct") == 0) o.ift_habit_pct = (int)parse_int(a, v, 0, 100);
        else if (strcmp(a, "--ift-habit-pcts") == 0) parse_percent_list(a, v, o.habit_fam_pct, &o.n_habit_fam_pct);
        else if (strcmp(a, "--eft-train") == 0) o.n_eft_train = (int)parse_int(a, v, 0, 10000000);
        else if (strcmp(a, "--eft-eval") == 0) o.n_eft_eval = (int)parse_int(a, v, 0, 10000000);
        else if (strcmp(a, "--test") == 0) o.n_test = (int)parse_int(a, v, 0, 10000000);
        else if (strcmp(a, "--ranked") == 0) o.n_ranked = (int)parse_int(a, v, 0, 10000000);
        else { fprintf(stderr, "world: unknown option %s\n", a); usage(); }
    }
    if (!have_seed || !out_dir) usage();
    if ((why = options_check(&o)) != NULL) die("%s", why);
    if ((why = template_load(tmpl_path, tmpl, &tn)) != NULL) die("%s", why);
    wd = (World *)malloc(sizeof *wd);
    if (!wd) die("out of memory");
    if ((why = world_init(wd, &o, tmpl, tn)) != NULL) die("%s", why);
    world_generate(wd, &files);
    for (i = 0; i < NOUT; i++) {
        snprintf(path, sizeof path, "%s/%s", out_dir, out_names[i]);
        write_file(path, &files.file[i]);
    }
    fwrite(files.file[OUT_MANIFEST].p, 1, files.file[OUT_MANIFEST].n, stdout);
    world_files_free(&files);
    free(wd);
    return 0;
}

static int cmd_grade(const char *in_path, const char *out_path) {
    Buf in = {0, 0, 0}, out = {0, 0, 0};
    char err[512];
    if (read_file(in_path, &in) != 0) die("%s: cannot read", in_path);
    if (grade_jsonl(in_path, in.p, in.n, &out, err, sizeof err) != 0) die("%s", err);
    write_file(out_path, &out);
    buf_free(&in);
    buf_free(&out);
    return 0;
}

static int cmd_check(const char *ins, const char *resp) {
    Task t;
    Grade g = grade_response(ins, strlen(ins), resp, strlen(resp));
    char crit[80], canon[TEXT_CAP];
    criteria_text(g.held, crit);
    printf("grade %d\ncriteria %s\nreason %s\n", g.grade, crit, g.reason);
    if (parse_instruction(ins, strlen(ins), &t, NULL)) {
        task_canonical(&t, canon, sizeof canon);
        printf("family %s\ncanonical %s\n", family_names[t.fam], canon);
    }
    return 0;
}

/* world prefixes IN OUT: for each {"instruction", "response"} record whose
 * task has a canonical sentence with the answer after some text, write
 * {"instruction", "prefix"} with the canonical sentence cut just before the
 * answer ("The word \"planet\" reversed is \""): a corpus-style prompt that
 * checks whether a pretrained model knows the fact. Palindrome tasks (the
 * answer comes first) and unknown tasks are skipped. */
static int cmd_prefixes(const char *in_path, const char *out_path) {
    Buf in = {0, 0, 0}, out = {0, 0, 0};
    GradeRecord g;
    size_t pos = 0;
    long line = 0;
    memset(&g, 0, sizeof g);
    if (read_file(in_path, &in) != 0) die("%s: cannot read", in_path);
    while (pos < in.n) {
        size_t end = pos;
        Json j;
        line++;
        while (end < in.n && in.p[end] != '\n') end++;
        j.s = in.p + pos; j.n = end - pos; j.i = 0; j.err = NULL;
        json_ws(&j);
        if (j.i < j.n) {
            Task t;
            char canon[TEXT_CAP], ins[TEXT_CAP], *cut;
            if (!json_grade_record(&j, &g)) die("%s:%ld: %s", in_path, line, j.err ? j.err : "bad record");
            if (g.instruction.n < sizeof ins && parse_instruction(g.instruction.p, g.instruction.n, &t, NULL) &&
                t.fam != F_PALINDROME) {
                memcpy(ins, g.instruction.p, g.instruction.n);
                ins[g.instruction.n] = 0;
                canonical_with(&t, "\x01", canon, sizeof canon);
                cut = strchr(canon, '\x01');
                if (cut && cut > canon) {
                    *cut = 0;
                    buf_puts(&out, "{");
                    json_key_str(&out, "instruction", ins);
                    buf_puts(&out, ", ");
                    if (is_open(t.fam)) {   /* the question is the only place the constraints are: the corpus's Q/A page */
                        char qa[2 * TEXT_CAP + 8];
                        snprintf(qa, sizeof qa, "Q: %s\nA: %s", ins, canon);
                        json_key_str(&out, "prefix", qa);
                    } else {
                        json_key_str(&out, "prefix", canon);
                    }
                    buf_puts(&out, "}\n");
                }
            }
        }
        pos = end + 1;
    }
    write_file(out_path, &out);
    buf_free(&in); buf_free(&out); buf_free(&g.instruction); buf_free(&g.response);
    return 0;
}

static int cmd_fill(const char *tmpl_path, const char *ins, const char *resp) {
    char tmpl[TEMPLATE_CAP];
    size_t tn;
    const char *why = template_load(tmpl_path, tmpl, &tn);
    Buf out = {0, 0, 0};
    if (why) die("%s", why);
    judge_fill(&out, tmpl, tn, ins, strlen(ins), resp, strlen(resp));
    fwrite(out.p, 1, out.n, stdout);   /* exactly the filled prompt: no newline added */
    buf_free(&out);
    return 0;
}

int main(int argc, char **argv) {
    if (argc >= 2 && strcmp(argv[1], "gen") == 0) return cmd_gen(argc, argv);
    if (argc == 4 && strcmp(argv[1], "grade") == 0) return cmd_grade(argv[2], argv[3]);
    if (argc == 4 && strcmp(argv[1], "check") == 0) return cmd_check(argv[2], argv[3]);
    if (argc == 5 && strcmp(argv[1], "fill") == 0) return cmd_fill(argv[2], argv[3], argv[4]);
    if (argc == 4 && strcmp(argv[1], "prefixes") == 0) return cmd_prefixes(argv[2], argv[3]);
    usage();
    return 2;
}
#endif /* WORLD_NO_MAIN */
