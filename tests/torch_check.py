#!/usr/bin/env python3
"""tests/torch_check.py - an independent PyTorch cross-check of srlm.

For two small configs (grouped-query attention with an untied head, and
multi-head attention with a tied head and non-default rope_theta/norm_eps)
this script
  1. makes checkpoints with ./srlm train and a reference pack with ./srlm vectors;
  2. reads the checkpoint and the pack with its own readers (checking both
     SHA-256 digests);
  3. builds the model in plain PyTorch (its own RMSNorm, interleaved RoPE,
     causal grouped-query attention, SwiGLU) and compares, tensor by tensor,
     the logits, per-token log-probs, loss, every parameter gradient, the
     weights after one AdamW step (torch.optim.AdamW + clip_grad_norm_), the
     DPO loss, log-probs and gradients against a reference model, and the
     sampling traces (a Python PCG32 must give the same draws, a Python
     sampler the same tokens, and the model the same per-step logits);
  4. exports the checkpoint (./srlm export) and loads model.safetensors by
     tensor name into a Hugging Face-layout model (half-split rotate_half
     RoPE, no un-permuting), the GGUF tensors into a Meta-layout model, and
     the llama2.c file bit for bit; checks config.json, the GGUF keys, and
     that a plain-Python BPE built from tokenizer.json encodes like srlm.

Error measure, per tensor: max_abs = max |srlm - torch| and
max_rel = max_abs / max |torch| (relative to the tensor's largest entry, so
near-zero entries do not blow it up). Tolerances, float32 vs float32:
TOL_REL below for max_rel. A float64 torch run is reported as a second
opinion (how far each float32 result is from the float64 one).

Uses torch and the Python standard library only. Prints "ok"/"FAIL" lines
and "#summary P F". Usage: torch_check.py [path/to/srlm]  (default ./srlm)
"""
import hashlib
import json
import os
import re
import struct
import subprocess
import sys
import tempfile

import torch

torch.manual_seed(0)
torch.set_num_threads(1)

# Tolerances on max_rel (see the docstring). Measured errors are ~1e-7..1e-6;
# these leave an order of magnitude and more of room while still catching any
# wrong term (which shows up at 1e-2 or worse).
TOL_REL = {
    "logits": 2e-5, "logprobs": 2e-5, "loss": 2e-5, "grad": 1e-4,
    "adamw_delta": 5e-5, "adamw_delta_all": 2e-2, "dpo": 1e-4, "dpo.grad": 2e-4, "sample_logits": 2e-5, "export_logits": 2e-5,
}

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SRLM = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else os.path.join(ROOT, "srlm")
PASSED = 0
FAILED = 0
REPORT = []  # (config, tensor, max_abs, max_rel, tol, f64 srlm max_rel, f64 torch max_rel)


def result(ok, name, detail=""):
    global PASSED, FAILED
    if ok:
        PASSED += 1
    else:
        FAILED += 1
    print("%s %s%s" % ("ok  " if ok else "FAIL", name, ("  " + detail) if detail else ""))
    sys.stdout.flush()


def srlm(*args):
    r = subprocess.run([SRLM] + [str(a) for a in args], capture_output=True)
    if r.returncode != 0:
        raise RuntimeError("srlm %s failed: %s" % (" ".join(map(str, args)), r.stderr.decode(errors="replace")))
    return r.stdout


# ---------------------------------------------------------------------------
# readers: srlm checkpoint, vectors pack, safetensors, GGUF, llama2.c

PARAM_NAMES = ["tok_embeddings", "attn_norm", "wq", "wk", "wv", "wo", "ffn_norm", "w1", "w2", "w3", "final_norm", "output"]


def param_shapes(c):
    C, L, F, V = c["dim"], c["n_layers"], c["hidden_dim"], c["vocab_size"]
    KVC = c["n_kv_heads"] * (C // c["n_heads"])
    shapes = {"tok_embeddings": (V, C), "attn_norm": (L, C), "wq": (L, C, C), "wk": (L, KVC, C), "wv": (L, KVC, C),
              "wo": (L, C, C), "ffn_norm": (L, C), "w1": (L, F, C), "w2": (L, C, F), "w3": (L, F, C),
              "final_norm": (C,), "output": (V, C)}
    if c["tied"]:
        del shapes["output"]
    return shapes


def read_checkpoint(path):
    """srlm checkpoint v1 (srlm.c section 3), read independently."""
    b = open(path, "rb").read()
    assert b[:8] == b"SRLMCKPT", "bad magic"
    assert hashlib.sha256(b[:-32]).digest() == b[-32:], "checksum"
    version, = struct.unpack_from("<I", b, 8)
    assert version == 1
    keys = ["dim", "n_layers", "n_heads", "n_kv_heads", "hidden_dim", "vocab_size", "max_seq_len", "tied"]
    c = dict(zip(keys, struct.unpack_from("<8I", b, 12)))
    c["rope_theta"], c["norm_eps"] = struct.unpack_from("<2f", b, 44)
    mlen, = struct.unpack_from("<I", b, 52)
    meta = b[56:56 + mlen].decode()
    off = 56 + mlen
    n, = struct.unpack_from("<Q", b, off)
    off += 8
    flat = torch.frombuffer(bytearray(b[off:off + 4 * n]), dtype=torch.float32)
    params, at = {}, 0
    for name, shape in param_shapes(c).items():
        k = 1
        for d in shape:
            k *= d
        params[name] = flat[at:at + k].reshape(shape).clone()
        at += k
    assert at == n
    return c, meta, params, hashlib.sha256(b).hexdigest()


def read_pack(prefix):
    """The vectors pack: NAME.txt manifest + NAME.bin data (README "Reference vectors")."""
    lines = open(prefix + ".txt").read().split("\n")
    assert lines[0] == "srlm-vectors 1", lines[0]
    data = open(prefix + ".bin", "rb").read()
    tensors, params = {}, {}
    for line in lines[1:]:
        f = line.split(" ")
        if f[0] == "data":
            assert int(f[2]) == len(data) and hashlib.sha256(data).hexdigest() == f[4]
        elif f[0] == "param":
            params[f[1]] = " ".join(f[2:])
        elif f[0] == "tensor":
            dtype = torch.int32 if f[2] == "i32" else torch.float32
            off, shape = int(f[3]), [int(x) for x in f[4:]]
            count = 1
            for d in shape:
                count *= d
            t = torch.frombuffer(bytearray(data[off:off + 4 * count]), dtype=dtype)
            tensors[f[1]] = t.reshape(shape) if shape else t.reshape(())
    assert lines[-2] == "end"
    return tensors, params


def read_safetensors(path):
    b = open(path, "rb").read()
    n, = struct.unpack_from("<Q", b, 0)
    header = json.loads(b[8:8 + n].decode("utf-8"))
    meta = header.pop("__metadata__", {})
    data = b[8 + n:]
    out = {}
    for name, e in header.items():
        assert e["dtype"] == "F32"
        s, t = e["data_offsets"]
        out[name] = torch.frombuffer(bytearray(data[s:t]), dtype=torch.float32).reshape(e["shape"])
    return meta, out, list(header.keys())


def read_gguf(path):
    b = open(path, "rb").read()
    assert b[:4] == b"GGUF"
    version, n_t, n_kv = struct.unpack_from("<IQQ", b, 4)
    at = 24
    scalar = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}

    def string():
        nonlocal at
        n, = struct.unpack_from("<Q", b, at)
        s = b[at + 8:at + 8 + n].decode("utf-8")
        at += 8 + n
        return s

    def value(t):
        nonlocal at
        if t == 8:
            return string()
        if t == 9:
            et, cnt = struct.unpack_from("<IQ", b, at)
            at += 12
            return [value(et) for _ in range(cnt)]
        v, = struct.unpack_from(scalar[t], b, at)
        at += struct.calcsize(scalar[t])
        return v

    kv = {}
    for _ in range(n_kv):
        k = string()
        t, = struct.unpack_from("<I", b, at)
        at += 4
        kv[k] = value(t)
    infos = []
    for _ in range(n_t):
        name = string()
        nd, = struct.unpack_from("<I", b, at)
        ne = struct.unpack_from("<%dQ" % nd, b, at + 4)
        typ, off = struct.unpack_from("<IQ", b, at + 4 + 8 * nd)
        at += 4 + 8 * nd + 12
        infos.append((name, ne, typ, off))
    align = kv.get("general.alignment", 32)
    start = (at + align - 1) // align * align
    tensors = {}
    for name, ne, typ, off in infos:
        assert typ == 0
        count = 1
        for d in ne:
            count *= d
        shape = list(reversed(ne))
        tensors[name] = torch.frombuffer(bytearray(b[start + off:start + off + 4 * count]), dtype=torch.float32).reshape(shape)
    return version, kv, tensors


# ---------------------------------------------------------------------------
# the model in plain PyTorch

def rmsnorm(x, w, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def rope_tables(T, hd, theta, dtype):
    i = torch.arange(hd // 2, dtype=torch.float64)
    freq = torch.exp(-(2.0 * i / hd) * torch.log(torch.tensor(float(theta), dtype=torch.float64)))
    ang = torch.arange(T, dtype=torch.float64)[:, None] * freq[None, :]
    return torch.cos(ang).to(torch.float32).to(dtype), torch.sin(ang).to(torch.float32).to(dtype)


def rope_interleaved(x, cos, sin):
    """Meta / llama2.c / srlm: pairs (2i, 2i+1). x (B, T, H, hd)."""
    x0, x1 = x[..., 0::2], x[..., 1::2]
    c, s = cos[None, :, None, :], sin[None, :, None, :]
    return torch.stack((x0 * c - x1 * s, x0 * s + x1 * c), dim=-1).flatten(-2)


def rope_half(x, cos, sin):
    """Hugging Face Llama: rotate_half, pairs (i, i + hd/2)."""
    h = x.shape[-1] // 2
    c = torch.cat((cos, cos), dim=-1)[None, :, None, :]
    s = torch.cat((sin, sin), dim=-1)[None, :, None, :]
    rot = torch.cat((-x[..., h:], x[..., :h]), dim=-1)
    return x * c + rot * s


def forward(P, c, ids, rope=rope_interleaved):
    """P: srlm-named parameters (layers stacked). ids (B, T) -> logits (B, T, V)."""
    B, T = ids.shape
    C, H, KVH = c["dim"], c["n_heads"], c["n_kv_heads"]
    hd = C // H
    dtype = P["tok_embeddings"].dtype
    cos, sin = rope_tables(T, hd, c["rope_theta"], dtype)
    eps = c["norm_eps"]
    mask = torch.full((T, T), float("-inf"), dtype=dtype).triu(1)
    x = P["tok_embeddings"][ids.long()]
    for l in range(c["n_layers"]):
        h = rmsnorm(x, P["attn_norm"][l], eps)
        q = (h @ P["wq"][l].T).view(B, T, H, hd)
        k = (h @ P["wk"][l].T).view(B, T, KVH, hd)
        v = (h @ P["wv"][l].T).view(B, T, KVH, hd)
        q, k = rope(q, cos, sin), rope(k, cos, sin)
        k = k.repeat_interleave(H // KVH, dim=2)  # query head h reads kv head h // (H / KVH)
        v = v.repeat_interleave(H // KVH, dim=2)
        att = (q.transpose(1, 2) @ k.transpose(1, 2).transpose(-1, -2)) / (hd ** 0.5) + mask
        y = (torch.softmax(att, dim=-1) @ v.transpose(1, 2)).transpose(1, 2).reshape(B, T, C)
        x = x + y @ P["wo"][l].T
        h = rmsnorm(x, P["ffn_norm"][l], eps)
        x = x + (torch.nn.functional.silu(h @ P["w1"][l].T) * (h @ P["w3"][l].T)) @ P["w2"][l].T
    x = rmsnorm(x, P["final_norm"], eps)
    out = P["tok_embeddings"] if c["tied"] else P["output"]
    return x @ out.T


def token_logps(logits, targets):
    lp = torch.log_softmax(logits, dim=-1)
    t = targets.long()
    keep = t >= 0
    picked = lp.gather(-1, t.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return torch.where(keep, picked, torch.zeros_like(picked)), keep


def leaf(params, dtype):
    return {k: v.detach().clone().to(dtype).requires_grad_(True) for k, v in params.items()}


# ---------------------------------------------------------------------------
# comparisons

def compare(cfg_name, name, srlm_t, torch_t, tol, f64=None):
    a, b = srlm_t.double(), torch_t.detach().double()
    max_abs = (a - b).abs().max().item() if a.numel() else 0.0
    scale = b.abs().max().item() if b.numel() else 0.0
    max_rel = max_abs / scale if scale > 0 else max_abs
    extra = ""
    f64s = f64t = None
    if f64 is not None:
        c = f64.detach().double()
        cs = c.abs().max().item() or 1.0
        f64s = (a - c).abs().max().item() / cs
        f64t = (b - c).abs().max().item() / cs
        extra = "  [vs float64: srlm %.2e, torch-f32 %.2e]" % (f64s, f64t)
    REPORT.append((cfg_name, name, max_abs, max_rel, tol, f64s, f64t))
    result(max_rel <= tol and a.shape == b.shape and a.numel() > 0, "%s %s" % (cfg_name, name),
           "max_abs %.3e max_rel %.3e (tol %.0e)%s" % (max_abs, max_rel, tol, extra))


def loss_and_grads(P, c, inputs, targets):
    logits = forward(P, c, inputs)
    lp, keep = token_logps(logits, targets)
    loss = -(lp.sum() / keep.sum())
    grads = torch.autograd.grad(loss, list(P.values()))
    return logits, lp, loss, dict(zip(P.keys(), grads))


# --- sampling: srlm's RNG (tensor.c) and sample_token (srlm.c section 5) in Python ---

M64 = (1 << 64) - 1
GAMMA = 0x9E3779B97F4A7C15


def mix64(z):
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return z ^ (z >> 31)


class Pcg32:
    def __init__(self, seed, stream):
        sm = mix64((mix64(seed) + (stream + 1) * GAMMA) & M64)
        sm = (sm + GAMMA) & M64
        self.state = mix64(sm)
        sm = (sm + GAMMA) & M64
        self.inc = mix64(sm) | 1

    def u32(self):
        old = self.state
        self.state = (old * 6364136223846793005 + self.inc) & M64
        xs = (((old >> 18) ^ old) >> 27) & 0xFFFFFFFF
        rot = old >> 59
        return ((xs >> rot) | (xs << ((32 - rot) & 31))) & 0xFFFFFFFF

    def uniform(self):
        return (self.u32() >> 8) * 2.0 ** -24


def sample_py(logits, temperature, top_p, u):
    """srlm's rule: softmax(logits/T); top-p keeps the smallest prefix by
    probability (ties: lower index first) reaching top_p; the first kept token
    whose running mass exceeds u * kept mass is chosen."""
    x = logits.double()
    if temperature <= 0:
        return int(torch.argmax(x).item())  # torch.argmax returns the first maximum
    p = torch.softmax(x / temperature, dim=0)
    order = sorted(range(len(p)), key=lambda i: (-p[i].item(), i)) if top_p < 1 else list(range(len(p)))
    kept, cum = [], 0.0
    for i in order:
        kept.append(i)
        cum += p[i].item()
        if top_p < 1 and cum >= top_p:
            break
    acc, target = 0.0, u * cum
    for i in kept:
        acc += p[i].item()
        if acc > target:
            return i
    return kept[-1]


# --- a byte-level BPE from tokenizer.json, in plain Python ---

def bytes_to_unicode():
    bs = list(range(33, 127)) + list(range(161, 173)) + list(range(174, 256))
    cs, n = bs[:], 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


def hf_bpe_encode(tj, text):
    b2u = bytes_to_unicode()
    vocab = tj["model"]["vocab"]
    ranks = {tuple(m.split(" ")): i for i, m in enumerate(tj["model"]["merges"])}
    pre = tj["pre_tokenizer"]
    pieces = [text]
    if pre["type"] == "Sequence":
        # Digits(individual_digits) then ByteLevel's GPT-2 regex within each
        # segment; Python's re has no \p{L}: letters are [^\W\d_], other is
        # neither space nor letter nor digit (the test text is ASCII + Latin letters)
        assert [p["type"] for p in pre["pretokenizers"]] == ["Digits", "ByteLevel"]
        gpt2 = re.compile(r"'s|'t|'re|'ve|'m|'ll|'d| ?[^\W\d_]+| ?\d+| ?(?:[^\s\w]|_)+|\s+(?!\S)|\s+")
        pieces = []
        for seg in re.split(r"(\d)", text):
            pieces += [m.group(0) for m in gpt2.finditer(seg)]
        assert "".join(pieces) == text, "the split must cover every character"
    ids = []
    for piece in pieces:
        sym = [b2u[b] for b in piece.encode("utf-8")]
        while len(sym) > 1:
            best = min(range(len(sym) - 1), key=lambda i: (ranks.get((sym[i], sym[i + 1]), 1 << 60), i))
            if (sym[best], sym[best + 1]) not in ranks:
                break
            sym[best:best + 2] = [sym[best] + sym[best + 1]]
        ids += [vocab[s] for s in sym]
    return ids


# ---------------------------------------------------------------------------
# one config, end to end

def check_config(name, tmp, model_opts, tokenizer, dpo_opts=()):
    d = os.path.join(tmp, name)
    os.makedirs(d)
    text = os.path.join(d, "text.txt")
    with open(text, "w") as f:
        for i in range(80):
            f.write("the cat sat on the mat, %d dogs sat on logs; Über café naïve\t\t word  spaced\n" % i)
    tok_args = []
    if tokenizer:
        srlm("tokenizer", "train", "--input", text, "--merges", 60, "--out", os.path.join(d, "tok.bin"))
        tok_args = ["--tokenizer", os.path.join(d, "tok.bin")]
    common = ["--data", text] + tok_args + model_opts + ["--batch", 2, "--seq", 16, "--lr", "1e-2", "--warmup", 0, "--log-every", 0]
    policy, ref = os.path.join(d, "policy.ckpt"), os.path.join(d, "ref.ckpt")
    srlm("train", *(common + ["--steps", 5, "--seed", 1, "--out", policy]))
    srlm("train", *(common + ["--steps", 3, "--seed", 2, "--out", ref]))
    srlm("vectors", "--model", policy, "--ref", ref, "--out", os.path.join(d, "vec"), "--batch", 3, "--seq", 12, "--seed", 5,
         *dpo_opts)

    c, meta, params, sha = read_checkpoint(policy)
    rc, _, rparams, rsha = read_checkpoint(ref)
    V, pk = read_pack(os.path.join(d, "vec"))
    result(pk["checkpoint.sha256"] == sha and pk["reference.sha256"] == rsha, name + " pack names the checkpoints")
    result(all(int(pk["model." + k]) == c[k] for k in ["dim", "n_layers", "n_heads", "n_kv_heads", "hidden_dim",
                                                        "vocab_size", "max_seq_len", "tied"]), name + " pack config")
    inputs, targets = V["inputs"], V["targets"]

    # forward, loss, gradients in float32 and float64
    P32, P64 = leaf(params, torch.float32), leaf(params, torch.float64)
    logits, lp, loss, grads = loss_and_grads(P32, c, inputs, targets)
    logits64, lp64, loss64, grads64 = loss_and_grads(P64, c, inputs, targets)
    compare(name, "logits", V["logits"], logits, TOL_REL["logits"], logits64)
    compare(name, "logprobs", V["logprobs"], lp, TOL_REL["logprobs"], lp64)
    compare(name, "loss", V["loss"], loss, TOL_REL["loss"], loss64)
    for k in params:
        compare(name, "grad." + k, V["grad." + k], grads[k], TOL_REL["grad"], grads64[k])
    result(all(("grad." + k in V) == (k in params) for k in PARAM_NAMES), name + " pack has every gradient")

    # one AdamW step: torch.optim.AdamW, norms without weight decay, global-norm clipping
    W = leaf(params, torch.float32)
    for k in W:
        W[k].grad = grads[k].detach().clone()
    groups = [{"params": [W[k] for k in W if "norm" not in k], "weight_decay": float(pk["adamw.weight_decay"])},
              {"params": [W[k] for k in W if "norm" in k], "weight_decay": 0.0}]
    opt = torch.optim.AdamW(groups, lr=float(pk["adamw.lr"]), betas=(float(pk["adamw.beta1"]), float(pk["adamw.beta2"])),
                            eps=float(pk["adamw.eps"]))
    norm = torch.nn.utils.clip_grad_norm_(list(W.values()), float(pk["adamw.clip"]))
    result(abs(norm.item() - float(pk["adamw.grad_norm"])) <= 1e-5 * norm.item(), name + " adamw grad_norm",
           "srlm %s torch %.9g" % (pk["adamw.grad_norm"], norm.item()))
    opt.step()
    # Compare the step itself (after - before), relative to its largest entry (~lr). On entries whose
    # gradient is near AdamW's eps (1e-8) the update g / (|g| + eps) turns gradient rounding noise of
    # ~1e-11 into ~lr * 1e-3, so the tight tolerance covers |g| >= 1e-6 and all entries get a loose one.
    for k in W:
        big = grads[k].abs() >= 1e-6
        ds, dt_ = V["adamw." + k] - params[k], W[k].detach() - params[k]
        compare(name, "adamw_delta." + k, ds[big], dt_[big], TOL_REL["adamw_delta"])
        compare(name, "adamw_delta_all." + k, ds, dt_, TOL_REL["adamw_delta_all"])

    # DPO: one pair, reference model, beta
    beta, ls = float(pk["dpo.beta"]), float(pk["dpo.label_smoothing"])
    alpha = float(pk.get("dpo.nll_weight", 0.0))  # RPO: + alpha * NLL(chosen) / |chosen|
    di, dt = V["dpo.inputs"], V["dpo.targets"]

    def dpo(Pp, Pr):
        lpp, _ = token_logps(forward(Pp, c, di), dt)
        with torch.no_grad():
            lpr, _ = token_logps(forward(Pr, rc, di), dt)
        lpp, lpr = lpp.sum(1), lpr.sum(1)
        z = beta * ((lpp[0] - lpr[0]) - (lpp[1] - lpr[1]))
        lossd = -(1 - ls) * torch.nn.functional.logsigmoid(z) - ls * torch.nn.functional.logsigmoid(-z)
        lossd = lossd + alpha * (-lpp[0]) / (dt[0] >= 0).sum()
        return lpp, lpr, lossd, dict(zip(Pp.keys(), torch.autograd.grad(lossd, list(Pp.values()))))

    D32 = dpo(leaf(params, torch.float32), leaf(rparams, torch.float32))
    D64 = dpo(leaf(params, torch.float64), leaf(rparams, torch.float64))
    compare(name, "dpo.logps", V["dpo.logps"], D32[0], TOL_REL["dpo"], D64[0])
    compare(name, "dpo.ref_logps", V["dpo.ref_logps"], D32[1], TOL_REL["dpo"], D64[1])
    compare(name, "dpo.loss", V["dpo.loss"], D32[2], TOL_REL["dpo"], D64[2])
    for k in params:
        compare(name, "dpo.grad." + k, V["dpo.grad." + k], D32[3][k], TOL_REL["dpo.grad"], D64[3][k])

    # sampling traces
    prompt = V["sample.prompt"]
    for s in range(4):
        if "sample.%d.tokens" % s not in V:
            break
        T, P, seed = float(pk["sample.%d.temperature" % s]), float(pk["sample.%d.top_p" % s]), int(pk["sample.%d.seed" % s])
        toks, draws, slog = V["sample.%d.tokens" % s], V["sample.%d.draws" % s], V["sample.%d.logits" % s]
        rng = Pcg32(seed, 4)  # RNG_STREAM_SAMPLE
        want = [rng.uniform() if T > 0 else -1.0 for _ in range(len(toks))]
        result(all(abs(a - b) == 0 for a, b in zip(want, draws.tolist())), "%s sample.%d draws = Python PCG32" % (name, s))
        picks = [sample_py(slog[i], T, P, draws[i].item()) for i in range(len(toks))]
        result(picks == toks.tolist(), "%s sample.%d tokens = Python sampler (T=%g, top_p=%g)" % (name, s, T, P),
               "srlm %s python %s" % (toks.tolist(), picks))
        seq = torch.cat((prompt, toks[:-1])).unsqueeze(0)
        with torch.no_grad():
            full = forward(leaf(params, torch.float32), c, seq)[0, len(prompt) - 1:]
        compare(name, "sample.%d.logits" % s, slog, full, TOL_REL["sample_logits"])

    # exports
    check_exports(name, d, policy, c, meta, params, inputs, V["logits"], tok_args)


def check_exports(name, d, policy, c, meta, params, inputs, ref_logits, tok_args):
    hf = os.path.join(d, "hf")
    srlm("export", "--model", policy, "--format", "hf", "--out", hf, *tok_args)
    smeta, st, order = read_safetensors(os.path.join(hf, "model.safetensors"))
    cfg = json.load(open(os.path.join(hf, "config.json")))
    result(smeta.get("format") == "pt" and smeta.get("srlm.meta") == meta, name + " safetensors __metadata__")
    result(cfg["architectures"] == ["LlamaForCausalLM"] and cfg["hidden_size"] == c["dim"] and
           cfg["intermediate_size"] == c["hidden_dim"] and cfg["num_hidden_layers"] == c["n_layers"] and
           cfg["num_attention_heads"] == c["n_heads"] and cfg["num_key_value_heads"] == c["n_kv_heads"] and
           cfg["vocab_size"] == c["vocab_size"] and cfg["max_position_embeddings"] == c["max_seq_len"] and
           cfg["tie_word_embeddings"] == bool(c["tied"]) and
           struct.unpack("<f", struct.pack("<f", cfg["rope_theta"]))[0] == c["rope_theta"] and
           struct.unpack("<f", struct.pack("<f", cfg["rms_norm_eps"]))[0] == c["norm_eps"] and
           cfg["bos_token_id"] == 256 and cfg["eos_token_id"] == 257, name + " config.json fields")
    result(("lm_head.weight" in st) == (not c["tied"]) and order[0] == "model.embed_tokens.weight", name + " safetensors tensor set")
    # load by HF tensor names into a half-split (rotate_half) model; nothing is un-permuted here
    L = c["n_layers"]

    def stack(fmt):
        return torch.stack([st[fmt % l] for l in range(L)])
    H = {"tok_embeddings": st["model.embed_tokens.weight"], "final_norm": st["model.norm.weight"],
         "attn_norm": stack("model.layers.%d.input_layernorm.weight"), "wq": stack("model.layers.%d.self_attn.q_proj.weight"),
         "wk": stack("model.layers.%d.self_attn.k_proj.weight"), "wv": stack("model.layers.%d.self_attn.v_proj.weight"),
         "wo": stack("model.layers.%d.self_attn.o_proj.weight"), "ffn_norm": stack("model.layers.%d.post_attention_layernorm.weight"),
         "w1": stack("model.layers.%d.mlp.gate_proj.weight"), "w3": stack("model.layers.%d.mlp.up_proj.weight"),
         "w2": stack("model.layers.%d.mlp.down_proj.weight")}
    if not c["tied"]:
        H["output"] = st["lm_head.weight"]
    hc = {"dim": cfg["hidden_size"], "n_heads": cfg["num_attention_heads"], "n_kv_heads": cfg["num_key_value_heads"],
          "n_layers": cfg["num_hidden_layers"], "rope_theta": cfg["rope_theta"], "norm_eps": cfg["rms_norm_eps"],
          "tied": cfg["tie_word_embeddings"]}
    with torch.no_grad():
        compare(name, "hf_safetensors.logits", ref_logits, forward(H, hc, inputs, rope=rope_half), TOL_REL["export_logits"])
        # and the permutation is really needed: the same weights with interleaved RoPE must disagree
        wrong = forward(H, hc, inputs, rope=rope_interleaved)
    result((wrong - ref_logits).abs().max().item() > 1e-3, name + " hf layout differs from interleaved (permutation applied)")
    if os.path.exists(os.path.join(hf, "tokenizer.json")) and tok_args:
        tj = json.load(open(os.path.join(hf, "tokenizer.json")))
        sample = ("the cat sat on the mat, 12 dogs   sat\ton\t\t logs;\n  Über café naïve!! x  \r\n y  z\t" * 3)
        p = os.path.join(d, "sample.txt")
        open(p, "w", encoding="utf-8").write(sample)
        want = [int(x) for x in srlm("tokenizer", "encode", "--input", p, *tok_args).split()]
        got = hf_bpe_encode(tj, sample)
        result(got == want, name + " tokenizer.json (regex split + merges) encodes like srlm", "" if got == want else "%s vs %s" % (got[:20], want[:20]))

    gg = os.path.join(d, "gguf")
    srlm("export", "--model", policy, "--format", "gguf", "--out", gg, *tok_args)
    version, kv, gt = read_gguf(os.path.join(gg, "model.gguf"))
    result(version == 3 and kv["general.architecture"] == "llama" and kv["llama.block_count"] == L and
           kv["llama.embedding_length"] == c["dim"] and kv["llama.feed_forward_length"] == c["hidden_dim"] and
           kv["llama.attention.head_count"] == c["n_heads"] and kv["llama.attention.head_count_kv"] == c["n_kv_heads"] and
           kv["llama.context_length"] == c["max_seq_len"] and kv["llama.rope.dimension_count"] == c["dim"] // c["n_heads"] and
           kv["llama.attention.layer_norm_rms_epsilon"] == c["norm_eps"] and kv["llama.rope.freq_base"] == c["rope_theta"] and
           kv["tokenizer.ggml.model"] == "gpt2" and len(kv["tokenizer.ggml.tokens"]) == c["vocab_size"] and
           kv["tokenizer.ggml.bos_token_id"] == 256 and kv["srlm.meta"] == meta, name + " gguf keys")
    G = {"tok_embeddings": gt["token_embd.weight"], "final_norm": gt["output_norm.weight"]}
    for ours, theirs in [("attn_norm", "attn_norm"), ("wq", "attn_q"), ("wk", "attn_k"), ("wv", "attn_v"), ("wo", "attn_output"),
                         ("ffn_norm", "ffn_norm"), ("w1", "ffn_gate"), ("w3", "ffn_up"), ("w2", "ffn_down")]:
        G[ours] = torch.stack([gt["blk.%d.%s.weight" % (l, theirs)] for l in range(L)])
    if not c["tied"]:
        G["output"] = gt["output.weight"]
    result(("output.weight" in gt) == (not c["tied"]), name + " gguf tensor set")
    with torch.no_grad():
        compare(name, "gguf.logits", ref_logits, forward(G, c, inputs, rope=rope_interleaved), TOL_REL["export_logits"])

    if c["rope_theta"] == 10000.0 and c["norm_eps"] == struct.unpack("<f", struct.pack("<f", 1e-5))[0]:
        l2 = os.path.join(d, "l2c")
        srlm("export", "--model", policy, "--format", "llama2c", "--out", l2, *tok_args)
        b = open(os.path.join(l2, "model.bin"), "rb").read()
        hdr = struct.unpack_from("<7i", b, 0)
        flat = torch.frombuffer(bytearray(b[28:]), dtype=torch.float32)
        body = [params[k].flatten() for k in PARAM_NAMES[:11]]
        nb = sum(t.numel() for t in body)
        rope = c["max_seq_len"] * (c["dim"] // c["n_heads"])
        ok = hdr == (c["dim"], c["hidden_dim"], L, c["n_heads"], c["n_kv_heads"], c["vocab_size"] * (1 if c["tied"] else -1), c["max_seq_len"])
        ok = ok and torch.equal(flat[:nb], torch.cat(body))
        if not c["tied"]:
            ok = ok and torch.equal(flat[nb + rope:], params["output"].flatten())
        result(ok and len(flat) == nb + rope + (0 if c["tied"] else params["output"].numel()), name + " llama2c model.bin layout and weights (bitwise)")
    else:
        r = subprocess.run([SRLM, "export", "--model", policy, "--format", "llama2c", "--out", os.path.join(d, "l2c")], capture_output=True)
        result(r.returncode == 1 and b"rope_theta 10000" in r.stderr, name + " llama2c export refuses non-default rope_theta/norm_eps")


def main():
    if not os.path.exists(SRLM):
        print("FAIL %s not built" % SRLM)
        print("#summary 0 1")
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        check_config("gqa", tmp, ["--dim", 32, "--layers", 2, "--heads", 4, "--kv-heads", 2, "--hidden", 48, "--context", 32], True)
        check_config("tied", tmp, ["--dim", 24, "--layers", 2, "--heads", 3, "--kv-heads", 3, "--hidden", 40, "--context", 24,
                                   "--tied", 1, "--rope-theta", 500, "--norm-eps", "1e-6"], False,
                 ["--label-smoothing", "0.1", "--nll-weight", "0.7"])
    print("\nmax errors per tensor (float32 srlm vs float32 torch; max_rel = max_abs / max|torch|):")
    print("%-6s %-26s %10s %10s %8s %12s %12s" % ("config", "tensor", "max_abs", "max_rel", "tol", "srlm-vs-f64", "torch-vs-f64"))
    for r in REPORT:
        print("%-6s %-26s %10.2e %10.2e %8.0e %12s %12s" % (r[0], r[1], r[2], r[3], r[4],
              "%.2e" % r[5] if r[5] is not None else "-", "%.2e" % r[6] if r[6] is not None else "-"))
    print("#summary %d %d" % (PASSED, FAILED))
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
