// The exported GGUF in llama.cpp, through node-llama-cpp (which ships
// llama.cpp's binaries), held against srlm (tests/test_interop.sh runs this;
// one process).
//   node tests/interop_llama.mjs SRLM GGUF CKPT TOK MODULES TEXT_FILE...
// GGUF is `srlm export --format gguf` of the checkpoint CKPT. Checks:
//   - tokenizer.ggml.pre = refact: each text and each adversarial string
//     (tests/interop_strings.mjs) tokenizes to srlm's ids, specials never
//     read from text, and detokenizes back; ids 256..263 detokenize to their
//     spellings;
//   - greedy generation from <|bos|> + the raw prompt gives srlm's tokens;
//   - a LlamaChatSession (its chat wrapper built from tokenizer.chat_template)
//     answers the instruction with srlm's tokens and stops at <|eot|>.
// Prints ok/FAIL lines and "#summary P F".
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import path from "node:path";
import { adversarial, markerTexts, joinWithDigit, whichString } from "./interop_strings.mjs";

const [srlm, gguf, ckpt, tokPath, modules, ...texts] = process.argv.slice(2);
const { getLlama, LlamaChatSession } = await import(path.join(path.resolve(modules), "node-llama-cpp/dist/index.js"));

let passed = 0, failed = 0;
const t0 = Date.now();
function check(ok, what, detail) {
    if (process.env.INTEROP_TIMES) console.log(`(${((Date.now() - t0) / 1000).toFixed(1)} s)`);
    if (ok) passed++; else failed++;
    console.log((ok ? "ok   " : "FAIL ") + what + (ok || !detail ? "" : ": " + detail));
}
function srlmEncode(bytes) {
    const r = spawnSync(srlm, ["tokenizer", "encode", "--tokenizer", tokPath], { input: bytes, maxBuffer: 1 << 30 });
    if (r.status !== 0) throw new Error("srlm tokenizer encode: " + r.stderr);
    const s = r.stdout.toString().trim();
    return s === "" ? [] : s.split(/\s+/).map(Number);
}
function firstDiff(a, b) { let i = 0; while (i < a.length && i < b.length && a[i] === b[i]) i++; return i; }
function sameIds(a, b) { return a.length === b.length && firstDiff(a, b) === a.length; }
function showDiff(got, want) {
    const i = firstDiff(got, want);
    return `${got.length} ids vs srlm's ${want.length}, first difference at ${i}: ${JSON.stringify(got.slice(i, i + 6))} vs ${JSON.stringify(want.slice(i, i + 6))}`;
}

// srlm's own greedy tokens: a raw continuation (srlm sample) and a chat turn (srlm chat)
function srlmRun(args, input) {
    const r = spawnSync(srlm, args, { input: input ?? "", maxBuffer: 1 << 26 });
    if (r.status !== 0) throw new Error(`srlm ${args[0]}: ${r.stderr}`);
    return r.stdout.toString();
}
const n = 48, common = ["--model", ckpt, "--tokenizer", tokPath, "--max-new", String(n)];
const rawPrompt = "Q: Name a 5-letter word that starts with \"b\".\nA: The word \"";
const instruction = "Which 6-letter word ends with \"r\"?";
const expect = {
    n,
    raw: { prompt: rawPrompt, ids: srlmRun(["sample", ...common, "--prompt", rawPrompt, "--temperature", "0", "--ids"]).trim().split(" ").map(Number) },
    chat: { instruction, ids: srlmRun(["chat", ...common, "--ids"], instruction + "\n").trim().split(" ").map(Number),
            text: srlmRun(["chat", ...common], instruction + "\n").replace(/\n$/, "") },
};

const llama = await getLlama({ gpu: false, build: "never", logLevel: "error", progressLogs: false, maxThreads: 1 });
const model = await llama.loadModel({ modelPath: gguf });
const name = "node-llama-cpp (llama.cpp)";

for (const f of texts) {
    const bytes = readFileSync(f), text = bytes.toString("utf8"), want = srlmEncode(bytes);
    const got = Array.from(model.tokenize(text, false));
    check(sameIds(got, want), `${name}: ${path.basename(f)} (${bytes.length} bytes) tokenizes to srlm's ${want.length} ids`, showDiff(got, want));
}
{
    const all = [...adversarial, ...markerTexts], want = srlmEncode(Buffer.from(all.join("0"), "utf8"));
    const each = all.map((s) => Array.from(model.tokenize(s, false))), joined = joinWithDigit(each);
    check(sameIds(joined, want), `${name}: ${all.length} adversarial strings (spelled specials as plain text) tokenize to srlm's ids`,
          sameIds(joined, want) ? "" : JSON.stringify(all[whichString(each, firstDiff(joined, want))]) + ": " + showDiff(joined, want));
}
// decoding: llama.cpp streams token pieces (exact); its whole-sequence
// detokenize also removes a space before . , ! ? and in contractions
// (clean_spaces, on for "refact" with no GGUF key to turn it off)
for (const f of texts) {
    const bytes = readFileSync(f), piece = new Map();
    const parts = srlmEncode(bytes).map((id) => {
        if (!piece.has(id)) piece.set(id, Buffer.from(model.detokenize([id], true), "utf8"));
        return piece.get(id);
    });
    check(Buffer.concat(parts).equals(bytes), `${name}: ${path.basename(f)}: the pieces of srlm's ids (${piece.size} distinct) spell the text`);
}
const spell = ["<|bos|>", "<|eos|>", "<|user|>", "<|assistant|>", "<|eot|>", "<|reserved_261|>", "<|reserved_262|>", "<|reserved_263|>"];
check(spell.every((sp, k) => model.detokenize([256 + k], true) === sp), `${name}: ids 256..263 detokenize to their spellings`);
check(model.tokens.bos === 256 && model.tokens.eos === 257 && model.tokens.eot === 260, `${name}: bos 256, eos 257, eot 260`,
      JSON.stringify([model.tokens.bos, model.tokens.eos, model.tokens.eot]));

// greedy continuation of a raw prompt
{
    const context = await model.createContext({ contextSize: 320, sequences: 1, threads: 1 });
    const seq = context.getSequence();
    const got = [];
    for await (const t of seq.evaluate([256, ...srlmEncode(Buffer.from(expect.raw.prompt))], { temperature: 0 })) {
        if (t === 257 || t === 260 || got.length >= expect.n) break;   // evaluate() ends at <|eot|> too
        got.push(t);
    }
    if (expect.raw.ids.includes(260)) expect.raw.ids = expect.raw.ids.slice(0, expect.raw.ids.indexOf(260));
    check(sameIds(got, expect.raw.ids), `${name}: greedy continuation of a raw prompt = srlm sample's ${expect.raw.ids.length} tokens`,
          showDiff(got, expect.raw.ids));
    await context.dispose();
}
// a chat turn through the chat session and the GGUF's chat template
{
    const context = await model.createContext({ contextSize: 320, sequences: 1, threads: 1 });
    const session = new LlamaChatSession({ contextSequence: context.getSequence(), systemPrompt: "" });
    const got = [];
    const text = await session.prompt(expect.chat.instruction, { temperature: 0, maxTokens: expect.n, onToken: (t) => got.push(...t) });
    check(sameIds(got, expect.chat.ids), `${name}: LlamaChatSession (${session.chatWrapper.wrapperName}) answers with srlm chat's ${expect.chat.ids.length} tokens`,
          showDiff(got, expect.chat.ids));
    check(expect.chat.ids.length < expect.n && !got.includes(260) && text === expect.chat.text,
          `${name}: the chat reply stops at <|eot|> and reads as srlm's`, JSON.stringify(text));
    await context.dispose();
}
await model.dispose();
await llama.dispose();
console.log(`#summary ${passed} ${failed}`);
process.exit(failed ? 1 : 0);
