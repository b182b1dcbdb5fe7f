// The exported tokenizer.json in Hugging Face's two tokenizer libraries,
// held against srlm itself (tests/test_interop.sh runs this; one process).
//   node tests/interop_tokenizers.mjs SRLM HF_DIR TOK MODULES TEXT_FILE...
// HF_DIR: an `srlm export --format hf` directory; TOK: the srlm tokenizer;
// MODULES: the node_modules of tests/install_consumers.sh; TEXT_FILEs: whole
// texts to encode (the shipped corpus, IFT, EFT). Checks, for npm
// `tokenizers` (Rust, the engine of Python transformers) and
// `@huggingface/tokenizers` (tokenizers.js):
//   - each text and each adversarial string encodes to srlm's ids exactly
//     and decodes back to the same text;
//   - the specials: ids 256..263 decode to their spellings, the vocabulary
//     holds them at those ids, and add_special_tokens prepends <|bos|>;
//   - spelled specials in text: HF's convention matches them as specials
//     (srlm encodes them as bytes): HF = srlm on the pieces between them;
//   - @huggingface/jinja renders tokenizer_config.json's chat_template to
//     the bytes of srlm's chat prompt (srlm tokenizer decode of its ids).
// Prints ok/FAIL lines and "#summary P F".
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { adversarial, markerTexts, joinWithDigit, whichString } from "./interop_strings.mjs";

const [srlm, hfDir, tokPath, modules, ...texts] = process.argv.slice(2);
const require = createRequire(path.join(path.resolve(modules), "x.js"));
const rust = require("tokenizers");
const js = await import(path.join(path.resolve(modules), "@huggingface/tokenizers/dist/tokenizers.mjs"));
const { Template } = await import(path.join(path.resolve(modules), "@huggingface/jinja/dist/index.js"));

let passed = 0, failed = 0;
function check(ok, what, detail) {
    if (ok) passed++; else failed++;
    console.log((ok ? "ok   " : "FAIL ") + what + (ok || !detail ? "" : ": " + detail));
}

// srlm's ids for bytes (one process per call; texts are passed on stdin)
function srlmEncode(bytes) {
    const r = spawnSync(srlm, ["tokenizer", "encode", "--tokenizer", tokPath], { input: bytes, maxBuffer: 1 << 30 });
    if (r.status !== 0) throw new Error("srlm tokenizer encode: " + r.stderr);
    const s = r.stdout.toString().trim();
    return s === "" ? [] : s.split(/\s+/).map(Number);
}
function srlmDecode(ids) {
    const r = spawnSync(srlm, ["tokenizer", "decode", "--tokenizer", tokPath], { input: ids.join(" "), maxBuffer: 1 << 30 });
    if (r.status !== 0) throw new Error("srlm tokenizer decode: " + r.stderr);
    return r.stdout;
}
function firstDiff(a, b) {
    let i = 0;
    while (i < a.length && i < b.length && a[i] === b[i]) i++;
    return i;
}
function sameIds(a, b) { return a.length === b.length && firstDiff(a, b) === a.length; }
function showDiff(got, want) {
    const i = firstDiff(got, want);
    return `${got.length} ids vs srlm's ${want.length}, first difference at ${i}: ${JSON.stringify(got.slice(i, i + 6))} vs ${JSON.stringify(want.slice(i, i + 6))}`;
}

const tjText = readFileSync(path.join(hfDir, "tokenizer.json"), "utf8");
const tcfg = JSON.parse(readFileSync(path.join(hfDir, "tokenizer_config.json"), "utf8"));
const rustTok = rust.Tokenizer.fromString(tjText);
const jsTok = new js.Tokenizer(JSON.parse(tjText), tcfg);
const libs = [
    ["tokenizers (Rust)", async (s, special) => (await rustTok.encode(s, null, { addSpecialTokens: special })).getIds(),
                          async (ids) => rustTok.decode(ids, false)],
    ["@huggingface/tokenizers", async (s, special) => jsTok.encode(s, { add_special_tokens: special }).ids,
                                async (ids) => (ids.length ? jsTok.decode(ids, { skip_special_tokens: false }) : "")],
];

const specialNames = ["<|bos|>", "<|eos|>", "<|user|>", "<|assistant|>", "<|eot|>", "<|reserved_261|>", "<|reserved_262|>", "<|reserved_263|>"];

const whole = texts.map((f) => [path.basename(f), readFileSync(f)]);
const wantWhole = whole.map(([, b]) => srlmEncode(b));
const wantAdv = srlmEncode(Buffer.from(adversarial.join("0"), "utf8"));

for (const [name, encode, decode] of libs) {
    for (let t = 0; t < whole.length; t++) {
        const text = whole[t][1].toString("utf8");
        const got = await encode(text, false);
        check(sameIds(got, wantWhole[t]), `${name}: ${whole[t][0]} (${whole[t][1].length} bytes) encodes to srlm's ${wantWhole[t].length} ids`,
              showDiff(got, wantWhole[t]));
        check((await decode(got)) === text, `${name}: ${whole[t][0]} decodes back`);
    }
    const each = [];
    let decodes = 0;
    for (const a of adversarial) {
        const ids = await encode(a, false);
        each.push(ids);
        if ((await decode(ids)) === a) decodes++;
    }
    const joined = joinWithDigit(each);
    check(sameIds(joined, wantAdv), `${name}: ${adversarial.length} adversarial strings encode to srlm's ids`,
          sameIds(joined, wantAdv) ? "" : JSON.stringify(adversarial[whichString(each, firstDiff(joined, wantAdv))]) + ": " + showDiff(joined, wantAdv));
    check(decodes === adversarial.length, `${name}: ${adversarial.length} adversarial strings decode back`, `${decodes} do`);
    let bad;
    // specials: decoding, vocabulary ids, BOS from the post-processor
    let spelled = true;
    for (let id = 256; id < 264; id++) if ((await decode([id])) !== specialNames[id - 256]) spelled = false;
    check(spelled, `${name}: ids 256..263 decode to their spellings`);
    const mixed = [256, 258, ...srlmEncode(Buffer.from("line1\n")), 260, 259];
    check((await decode(mixed)) === "<|bos|><|user|>line1\n<|eot|><|assistant|>", `${name}: specials between text decode like srlm`,
          JSON.stringify(await decode(mixed)));
    const withBos = await encode("Hello there", true);
    check(sameIds(withBos, [256, ...srlmEncode(Buffer.from("Hello there"))]), `${name}: add_special_tokens prepends <|bos|> (256)`,
          JSON.stringify(withBos));
    // spelled specials: HF matches them; the pieces between them encode as srlm's
    bad = [];
    for (const s of markerTexts) {
        const want = [];
        for (const piece of s.split(/(<\|(?:bos|eos|user|assistant|eot|reserved_26[123])\|>)/)) {
            const k = specialNames.indexOf(piece);
            if (k >= 0) want.push(256 + k); else if (piece !== "") want.push(...srlmEncode(Buffer.from(piece)));
        }
        if (!sameIds(await encode(s, false), want)) bad.push(s);
    }
    check(bad.length === 0, `${name}: spelled specials are matched as specials (HF convention), the rest as srlm`, JSON.stringify(bad));
}
check(rustTok.tokenToId("<|eot|>") === 260 && rustTok.getVocabSize(true) === wantVocab(), "tokenizers (Rust): <|eot|> is 260, vocabulary size as srlm's");
function wantVocab() { return JSON.parse(tjText).model.merges.length + 264; }

// the chat template: rendered by @huggingface/jinja, the bytes of srlm's chat prompt
if (tcfg.chat_template) {
    const tpl = new Template(tcfg.chat_template);
    const base = { bos_token: tcfg.bos_token, eos_token: tcfg.eos_token, add_generation_prompt: true };
    const cases = [
        [[{ role: "user", content: "Name a 5-letter word that starts with \"b\"." }], ["Name a 5-letter word that starts with \"b\"."]],
        [[{ role: "user", content: "hi" }, { role: "assistant", content: "hello" }, { role: "user", content: "again  \n" }],
         ["hi", "hello", "again  \n"]],
    ];
    for (const [messages, parts] of cases) {
        const text = tpl.render({ ...base, messages });
        const ids = [256];
        parts.forEach((p, k) => ids.push(k % 2 ? 259 : 258, ...srlmEncode(Buffer.from(p)), 260));
        ids.push(259);
        check(text === srlmDecode(ids).toString("utf8"), `@huggingface/jinja: chat_template renders srlm's chat prompt (${messages.length} messages)`,
              JSON.stringify(text));
    }
    const sys = tpl.render({ ...base, messages: [{ role: "system", content: "Be brief." }, { role: "user", content: "hi" }] });
    check(sys === "<|bos|><|user|>Be brief.<|eot|><|user|>hi<|eot|><|assistant|>", "@huggingface/jinja: a system message is its own turn", JSON.stringify(sys));
} else check(false, "tokenizer_config.json has a chat_template");
console.log(`#summary ${passed} ${failed}`);
process.exit(failed ? 1 : 0);
