#!/usr/bin/env python3
"""A PyTorch program of mnemo's own for the official Feedback Transformer and its baseline
TransformerSeq (Fan et al. 2020; facebookresearch/transformer-sequential), written from the
equations with the official parameter names, so that `mnemo import official` can be checked
against PyTorch live in CI, where the official code itself is not available (issue 18 §4).

    python3 scripts/official_reference.py check crates/mnemo-train/tests/fixtures/official
    python3 scripts/official_reference.py write DIR

`check` runs this program on the checkpoints the official code wrote (the fixtures of
scripts/make_official_parity.py) and fails unless it reproduces the official log-probabilities:
this program computes what the official code computes. `write` makes seeded random models of
its own (Feedback pre-norm with --share-proj-kv, Feedback post-norm, TransformerSeq pre- and
post-norm; sizes unlike the fixtures'), saves each as the official trainer does (`torch.save`
of {"epoch", "model": state_dict, ...}, tied tensors under every name they have) with the
log-probabilities of a fixed input over two blocks, the hidden cache carried between them, in
DIR/CASE/{checkpoint.pt,expected.json}; mnemo-train's ignored test
`official_parity::official_reference_cases` imports them.

The equations (B batch, M block, L = attn_lim, K heads of size D, H width):

Feedback, per step t of a block, h⁰ = in_emb(x_t):
  layer l: q = proj_query(n1(h)), keys/values of the window = the last L memories projected,
           a_i = softmax_i((q·k_i + q·key_pe[:, i]) / √D), h' = h + proj_out(Σ a_i v_i) (pre-norm:
           n1 = norm1_l, then h'' = h' + ff(norm2(h')); post-norm: n1 = identity,
           h' = norm1(h + …), h'' = norm2(h' + ff(h')))
  memory m_t = Σ_k softmax(single_memory_attn_params)_k hᵏ over the input and every layer's
           output; its keys/values kv_p(norm1_p(m_t)) (pre-norm) enter the window of step t+1;
           the carried cache stores norm1_0(m_t) under pre-norm (the official cache_postprocess),
           m_t under post-norm, and starts as L zeros. --share-proj-kv: one proj_key/proj_val
           (and, pre-norm, one norm1) for every layer.
TransformerSeq, per layer l over the block: context = cache_l ++ h (the layer inputs, the cache
  starting as L zeros), query m attends to the L context positions before it (not itself), slot
  i at distance L - i using key_pe[:, i]; keys/values from norm1_l(context) under pre-norm; the
  next cache_l is the last L of context.
key_pe is one tensor for all layers; ff = fc2(relu(fc1(·))); out = log_softmax(out_emb(out_norm(h)))
(out_norm with --pre-norm only).
--adapt-span (issue 19; `check` only): layer l's ratios z (size_ratio, one per head, or one
  with --adapt-span-layer) mask the attention of window slot i (i = 0 oldest … L-1) by
  m = clamp((i - (L-1) + z·L)/R + 1, 0, 1), R = --adapt-span-len, and a ← a·m / (Σ a·m + 1e-8)
  (the official trimming of keys the mask zeroes changes only the 1e-8).
"""
import json
import math
import pathlib
import sys

import torch
import torch.nn.functional as F


def layer_norm(x, p, name):
    return F.layer_norm(x, x.shape[-1:], p[name + ".weight"], p[name + ".bias"])


def ff(p, l, x):
    x = F.relu(F.linear(x, p[f"layers.{l}.ff.fc1.weight"], p[f"layers.{l}.ff.fc1.bias"]))
    return F.linear(x, p[f"layers.{l}.ff.fc2.weight"], p[f"layers.{l}.ff.fc2.bias"])


def heads(x, a):
    """[..., K·D] -> [..., K, D]"""
    return x.view(*x.shape[:-1], a["nheads"], a["head_dim"])


def attend(p, a, l, q, k, v):
    """q [B,K,D]; k, v [B,K,L,D] (oldest first) -> [B, K·D]"""
    pe = p["layers.0.attn.attn.key_pe"][0]  # [D, L]
    scores = torch.einsum("bkd,bkid->bki", q, k) + torch.einsum("bkd,di->bki", q, pe)
    w = torch.softmax(scores / math.sqrt(a["head_dim"]), dim=-1)
    if a.get("adapt_span"):
        z = p[f"layers.{l}.attn.attn.adaptive_span.mask.size_ratio"].reshape(1, -1, 1)
        lim = w.shape[-1]
        slot = torch.arange(lim, dtype=w.dtype) - (lim - 1)
        w = w * ((slot + z * lim) / a["adapt_span_len"] + 1).clamp(0, 1)
        w = w / (w.sum(-1, keepdim=True) + 1e-8)
    return torch.einsum("bki,bkid->bkd", w, v).reshape(q.shape[0], -1)


def residual_layer(p, a, l, h, attn):
    """One layer around its attention `attn(normed input) -> [B, H]`."""
    n1 = f"layers.{l}.norm1"
    if a["pre_norm"]:
        h = h + F.linear(attn(layer_norm(h, p, n1)), p[f"layers.{l}.attn.proj_out.weight"])
        return h + ff(p, l, layer_norm(h, p, f"layers.{l}.norm2"))
    h = layer_norm(h + F.linear(attn(h), p[f"layers.{l}.attn.proj_out.weight"]), p, n1)
    return layer_norm(h + ff(p, l, h), p, f"layers.{l}.norm2")


def output(p, a, h):
    if a["pre_norm"]:
        h = layer_norm(h, p, "out_norm")
    return torch.log_softmax(F.linear(h, p["out.out_emb.weight"], p["out.out_emb.bias"]), -1)


def feedback_block(p, a, x, cache):
    """x [B,M] ids; cache [B,L,H] -> log-probs [B,M,V], next cache."""
    n_proj = 1 if a["share_proj_kv"] else a["nlayers"]

    def project(i, m):  # m [B,N,H] -> keys, values [B,K,N,D]
        if a["pre_norm"]:
            m = layer_norm(m, p, f"layers.{i}.norm1")
        k = heads(F.linear(m, p[f"layers.{i}.attn.proj_key.weight"]), a).transpose(1, 2)
        v = heads(F.linear(m, p[f"layers.{i}.attn.proj_val.weight"]), a).transpose(1, 2)
        return k, v

    windows = [project(i, cache) for i in range(n_proj)]
    mix = torch.softmax(p["single_memory_attn_params"][0], -1)
    emb = p["in_emb.weight"][x]  # [B,M,H]
    outs, written = [], []
    for t in range(x.shape[1]):
        h = emb[:, t]
        states = [h]
        for l in range(a["nlayers"]):
            k, v = windows[0 if a["share_proj_kv"] else l]
            k, v = k[:, :, -a["attn_lim"]:], v[:, :, -a["attn_lim"]:]
            query = lambda n, l=l, k=k, v=v: attend(  # noqa: E731
                p, a, l, heads(F.linear(n, p[f"layers.{l}.attn.proj_query.weight"]), a), k, v)
            h = residual_layer(p, a, l, h, query)
            states.append(h)
        outs.append(h)
        m = sum(w * s for w, s in zip(mix, states)).unsqueeze(1)  # [B,1,H]
        for i in range(n_proj):
            k, v = project(i, m)
            windows[i] = (torch.cat([windows[i][0], k], 2), torch.cat([windows[i][1], v], 2))
        written.append(layer_norm(m, p, "layers.0.norm1") if a["pre_norm"] else m)
    carried = torch.cat([cache] + written, 1)[:, -a["attn_lim"]:]
    return output(p, a, torch.stack(outs, 1)), carried


def transformer_seq_block(p, a, x, caches):
    """x [B,M] ids; caches: per layer [B,L,H] -> log-probs [B,M,V], next caches."""
    h = p["in_emb.weight"][x]  # [B,M,H]
    lim, nxt = a["attn_lim"], []
    for l in range(a["nlayers"]):
        context = torch.cat([caches[l], h], 1)  # [B,L+M,H]
        nxt.append(context[:, -lim:])
        normed = layer_norm(context, p, f"layers.{l}.norm1") if a["pre_norm"] else context
        k = heads(F.linear(normed, p[f"layers.{l}.attn.proj_key.weight"]), a).transpose(1, 2)
        v = heads(F.linear(normed, p[f"layers.{l}.attn.proj_val.weight"]), a).transpose(1, 2)
        rows = []
        for m in range(h.shape[1]):
            query = lambda n, l=l, m=m: attend(  # noqa: E731
                p, a, l, heads(F.linear(n, p[f"layers.{l}.attn.proj_query.weight"]), a),
                k[:, :, m:m + lim], v[:, :, m:m + lim])
            rows.append(residual_layer(p, a, l, h[:, m], query))
        h = torch.stack(rows, 1)
    return output(p, a, h), nxt


def run(p, a, stream, blocks):
    """Log-probabilities [B, blocks·M, V] of `stream` [B, ≥ blocks·M], blocks in order."""
    b, mem, lim, width = stream.shape[0], a["mem_sz"], a["attn_lim"], a["hid_sz"]
    outs = []
    with torch.no_grad():
        if a["feedback"]:
            cache = torch.zeros(b, lim, width)
            for i in range(blocks):
                out, cache = feedback_block(p, a, stream[:, i * mem:(i + 1) * mem], cache)
                outs.append(out)
        else:
            caches = [torch.zeros(b, lim, width) for _ in range(a["nlayers"])]
            for i in range(blocks):
                out, caches = transformer_seq_block(p, a, stream[:, i * mem:(i + 1) * mem], caches)
                outs.append(out)
    return torch.cat(outs, 1)


def state_dict_names(a):
    """The official state dict's names, in its order."""
    names = ["in_emb.weight"]
    for l in range(a["nlayers"]):
        names += [f"layers.{l}.{n}" for n in [
            "attn.attn.key_pe", "attn.proj_query.weight", "attn.proj_out.weight",
            "attn.proj_val.weight", "attn.proj_key.weight", "ff.fc1.weight", "ff.fc1.bias",
            "ff.fc2.weight", "ff.fc2.bias", "norm1.weight", "norm1.bias", "norm2.weight",
            "norm2.bias"]]
    names += ["out.out_emb.weight", "out.out_emb.bias"]
    if a["pre_norm"]:
        names += ["out_norm.weight", "out_norm.bias"]
    if a["feedback"]:
        names += ["single_memory_attn_params", "single_memory_attn_buf"]
    return names


def tied_to(name, a):
    """The name a tied official tensor takes its values from (itself when untied)."""
    parts = name.split(".")
    if parts[0] != "layers" or parts[1] == "0":
        return name
    rest = ".".join(parts[2:])
    shared = rest == "attn.attn.key_pe"
    if a["feedback"] and a["share_proj_kv"]:
        shared |= rest in ("attn.proj_key.weight", "attn.proj_val.weight")
        shared |= a["pre_norm"] and rest.startswith("norm1.")
    return f"layers.0.{rest}" if shared else name


def random_model(a, vocab, seed):
    g = torch.Generator().manual_seed(seed)
    h, inner, kd = a["hid_sz"], a["inner_hid_sz"], a["nheads"] * a["head_dim"]
    shapes = {"in_emb.weight": (vocab, h), "out.out_emb.weight": (vocab, h),
              "out.out_emb.bias": (vocab,), "out_norm.weight": (h,), "out_norm.bias": (h,),
              "single_memory_attn_params": (1, a["nlayers"] + 1)}
    per_layer = {"attn.attn.key_pe": (1, a["head_dim"], a["attn_lim"]),
                 "attn.proj_query.weight": (kd, h), "attn.proj_out.weight": (h, kd),
                 "attn.proj_val.weight": (kd, h), "attn.proj_key.weight": (kd, h),
                 "ff.fc1.weight": (inner, h), "ff.fc1.bias": (inner,),
                 "ff.fc2.weight": (h, inner), "ff.fc2.bias": (h,), "norm1.weight": (h,),
                 "norm1.bias": (h,), "norm2.weight": (h,), "norm2.bias": (h,)}
    p = {}
    for name in state_dict_names(a):
        if name == "single_memory_attn_buf":
            continue
        source = tied_to(name, a)
        if source != name:
            p[name] = p[source]
            continue
        shape = shapes.get(name) or per_layer[name.split(".", 2)[2]]
        x = torch.randn(shape, generator=g)
        if name.endswith("norm1.weight") or name.endswith("norm2.weight") or name == "out_norm.weight":
            x = 1.0 + 0.3 * x
        elif "norm" in name or name.endswith("bias"):
            x = 0.3 * x
        elif name.endswith("weight") and name != "in_emb.weight" and x.dim() == 2:
            x = x / math.sqrt(shape[1])
        p[name] = x
    if a["feedback"]:
        p["single_memory_attn_buf"] = torch.softmax(p["single_memory_attn_params"], -1)
    return p


def flags(**kw):
    a = {"hid_sz": 16, "inner_hid_sz": 24, "nlayers": 3, "nheads": 2, "head_dim": 6,
         "mem_sz": 3, "attn_lim": 5, "dropout": 0.0, "pre_norm": True, "share_proj_kv": False,
         "feedback": True}
    a.update(kw)
    return a


CASES = {
    "feedback_pre_shared": flags(share_proj_kv=True),
    "feedback_post": flags(pre_norm=False),
    "seq_pre": flags(feedback=False),
    "seq_post": flags(feedback=False, pre_norm=False, attn_lim=2),
}


def write(out):
    vocab, batch, blocks = 13, 2, 2
    for i, (case, a) in enumerate(CASES.items()):
        p = random_model(a, vocab, 300 + i)
        g = torch.Generator().manual_seed(400 + i)
        stream = torch.randint(0, vocab, (batch, blocks * a["mem_sz"]), generator=g)
        log_probs = run(p, a, stream, blocks)
        d = pathlib.Path(out) / case
        d.mkdir(parents=True, exist_ok=True)
        state = {n: p[n].clone() for n in state_dict_names(a)}
        torch.save({"epoch": 1, "model": state, "optimizer": {}, "logger": {}},
                   d / "checkpoint.pt")
        (d / "expected.json").write_text(json.dumps({
            "flags": a, "idx2word": [f"w{j}" for j in range(vocab)],
            "input": stream.tolist(), "log_probs": log_probs.tolist()}) + "\n")
        print(f"official-reference: wrote {d}")


def check(fixtures):
    worst = 0.0
    for expected in sorted(pathlib.Path(fixtures).glob("*/expected.json")):
        want = json.loads(expected.read_text())
        ckpt = torch.load(expected.parent / "checkpoint.pt", weights_only=False)["model"]
        p = {k.removeprefix("module."): v.float() for k, v in ckpt.items()}
        a = dict(want["flags"], dropout=0.0)
        stream = torch.tensor(want["input"])
        blocks = stream.shape[1] // a["mem_sz"]
        got = run(p, a, stream, blocks)
        diff = (got - torch.tensor(want["log_probs"])).abs().max().item()
        print(f"official-reference: {expected.parent.name}: max |Δ| = {diff:.2e}")
        worst = max(worst, diff)
    if worst > 1e-5:
        sys.exit(f"official-reference: this program differs from the official code by {worst}")


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in ("check", "write"):
        sys.exit(__doc__.split("\n\n")[1])
    {"check": check, "write": write}[sys.argv[1]](sys.argv[2])
