// The fixed string set of tests/interop_*.mjs: adversarial strings for the
// pre-split rule, and texts that spell special tokens.
// Adversarial strings: digits, runs of spaces and newlines (before letters,
// digits, punctuation and the end), punctuation runs, contractions, control
// bytes and NUL, UTF-8 letters, marker look-alikes that are not specials.
export const adversarial = [
    "", " ", "  ", "\n", "\n\n\n", "   \n\n  ", "a  b   c    d", "x \n y \n\n z", "1", "12 345", "  12", "a1b2c3",
    "3.14159 + 2,718 = 5.86", " 0 00  000", "1\n\n2  \n 3", "x  1", "\t\t\tindent", "\r\n\r\nCRLF\r\n", " \t \t x",
    "end with spaces   ", "!!!??? ... ---", " (a) [b] {c} <d>", "a!!b??c", "'s 't 're 've 'm 'll 'd", "it's don't we'll I'd",
    "'S 'LL ''s x''ll", "she said \"hi\" and \"bye\"", "\"b\".\n", "The word \"", "\u0000", "a\u0000b \u0000\u0000 c",
    "\u0001\u0002\u001f\u007f", "tab\tsep\tvalues", "\u000b\u000c", "caf\u00e9 na\u00efve \u00dcber", "\u65e5\u672c\u8a9e",
    " \u00e9t\u00e9  \u00e0 la", "emoji \u{1F600}\u{1F600} ok", "<|user|", "|>", "<|bos", "< |eot| >", "<||>",
    "Q: Name a 5-letter word that starts with \"b\".\nA: The word \"", "    def f(x):\n        return x  # c\n",
    "a".repeat(300), " ".repeat(200) + "x", "\n".repeat(50) + "7", "-".repeat(120), "9".repeat(40),
];
for (let i = 0; i < 200; i++) {                 // deterministic random mixes of the same pieces
    let s = "", x = (i + 1) * 2654435761 >>> 0;
    const alphabet = ["a", "Z", "s", "'", "t", " ", "  ", "\n", "\t", "\r", ".", "!", "(", "_", "0", "7", "\u0000", "\u00e9", "ll", "<|"];
    for (let k = 0; k < 24; k++) { x = (x * 1103515245 + 12345) >>> 0; s += alphabet[(x >>> 8) % alphabet.length]; }
    adversarial.push(s);
}
export const markerTexts = ["<|user|>", "say <|eot|> now", "<|bos|><|user|>hi<|eot|><|assistant|>", "a<|reserved_263|>  b", "x <|eos|>\n"];

// srlm's ids for many strings in one process: the strings joined by the digit
// "0". A digit is a chunk of its own and ends the segments on both sides
// exactly as the start and end of a text do (tokenizer.c section 2), so the
// joined text encodes to encode(s1), 48, encode(s2), ... A consumer's ids for
// the strings one by one, joined the same way, must equal these.
export function joinWithDigit(idLists) {
    const out = [];
    idLists.forEach((ids, k) => { if (k) out.push(48); out.push(...ids); });
    return out;
}
export function whichString(idLists, at) {   // the string where position `at` of the joined ids falls
    let pos = 0;
    for (let k = 0; k < idLists.length; k++) { pos += idLists[k].length + 1; if (at < pos) return k; }
    return idLists.length - 1;
}
