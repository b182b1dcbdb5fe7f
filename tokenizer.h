/* tokenizer.h - byte-level BPE: train, encode, decode, special tokens, a
 * versioned file. No file I/O here: srlm.c reads and writes the bytes.
 *
 * Ids:  0..255          the 256 bytes
 *       256..263        special tokens (fixed ids, never produced by encode)
 *       264 + i         merge i (0-based), in the order training learned it
 * vocab_size = 264 + n_merges.
 *
 * Text is always encoded as plain bytes: a string that merely spells
 * "<|user|>" becomes ordinary byte/merge tokens. Only the program inserts
 * special ids, by writing them into the id sequence itself.
 */
#ifndef SRLM_TOKENIZER_H
#define SRLM_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

enum {
    TOK_BOS = 256,            /* "<|bos|>"       begin of text */
    TOK_EOS = 257,            /* "<|eos|>"       end of text */
    TOK_USER = 258,           /* "<|user|>"      a user turn begins */
    TOK_ASSISTANT = 259,      /* "<|assistant|>" an assistant turn begins */
    TOK_EOT = 260,            /* "<|eot|>"       end of turn */
    TOK_RESERVED_261 = 261,   /* "<|reserved_261|>" .. "<|reserved_263|>": decodable, unused */
    TOK_RESERVED_262 = 262,
    TOK_RESERVED_263 = 263,
    TOK_N_BYTES = 256,
    TOK_N_SPECIAL = 8,
    TOK_FIRST_MERGE = 264     /* id of merge 0 */
};

#define TOK_FILE_VERSION 1
#define TOK_MAX_MERGES ((1 << 18) - TOK_FIRST_MERGE) /* vocab_size <= 2^18 */
#define TOK_MAX_TOKEN_LEN 256     /* training never makes a longer token; the loader refuses one */
#define TOK_MAX_CHUNK (1u << 30)  /* longer chunks are cut here (merges never cross the cut) */

typedef struct {
    int n_merges;
    int presplit;         /* 1: text is cut into chunks first and merges never cross a chunk */
    int *merges;          /* (n_merges, 2): merge i joins ids merges[2i], merges[2i+1] into id 264+i */
    /* derived from merges (rebuilt by train and deserialize, never stored) */
    uint32_t *tok_off;    /* (vocab) where each id's bytes start in tok_bytes */
    uint32_t *tok_len;    /* (vocab) how many bytes each id decodes to */
    uint8_t *tok_bytes;
    uint64_t *rank_key;   /* open-addressing table: pair (left<<32 | right) -> merge index */
    int *rank_val;
    size_t rank_mask;     /* table size - 1 (a power of two) */
} Tokenizer;

/* Train: learn up to n_merges merges from text (see tokenizer.c for the
 * exact rules). t need not be initialised; it is overwritten. Returns the
 * number of merges learned (fewer when no pair is left to merge), or -1 if
 * n_merges is outside [0, TOK_MAX_MERGES] or text is too long (>= 2^31
 * bytes after removing repeated chunks). */
int tok_train(Tokenizer *t, const uint8_t *text, size_t n, int n_merges, int presplit);

/* Encode n bytes into ids; returns how many ids were written. n ids of room
 * in out always suffice. Exact for any bytes: decode(encode(x)) == x. */
size_t tok_encode(const Tokenizer *t, const uint8_t *text, size_t n, int *out);

/* Decode ids into bytes. Writes at most cap bytes and returns how many bytes
 * the whole sequence needs (call with cap 0 to size a buffer). Never fails:
 * specials and reserved ids decode to their spellings; ids outside
 * [0, vocab_size) decode to nothing (count them with tok_count_invalid). */
size_t tok_decode(const Tokenizer *t, const int *ids, size_t n, uint8_t *out, size_t cap);
size_t tok_count_invalid(const Tokenizer *t, const int *ids, size_t n);

/* The bytes of one id (not NUL-terminated), or NULL with *len = 0 when the
 * id is outside [0, vocab_size). */
const uint8_t *tok_token_bytes(const Tokenizer *t, int id, size_t *len);
int tok_vocab_size(const Tokenizer *t);
const char *tok_special_name(int id);  /* "<|bos|>" for 256 etc.; NULL when not 256..263 */

/* The pre-split rule (stated in tokenizer.c, section 2): length of the first
 * chunk of text[0..n), n > 0. */
size_t tok_chunk_len(const uint8_t *text, size_t n);

/* File format (all integers little-endian u32):
 *   "SRLMTOK\0" | version = 1 | flags (bit 0: presplit) | n_special = 8 | n_merges
 *   | 8 x (length, spelling bytes) | n_merges x (left id, right id)
 *   | SHA-256 of every byte before it (32 bytes)
 * tok_serialize: *buf is malloc'd; returns 0. tok_deserialize: returns 0, or
 * -1 with a one-line reason in err (the caller prefixes the file name) and
 * t left empty. t need not be initialised. */
int tok_serialize(const Tokenizer *t, uint8_t **buf, size_t *n);
int tok_deserialize(Tokenizer *t, const uint8_t *buf, size_t n, char *err, size_t errlen);

void tok_free(Tokenizer *t);   /* frees and zeroes; safe on a zeroed struct */

#endif
