#!/usr/bin/env python3
"""Plain PyTorch implementations of mnemo's Feedback Transformer LM and causal Transformer LM,
loading the safetensors files `mnemo export --format safetensors` writes, and checking that they
reproduce the logits mnemo computed.

Papers: Fan et al. 2020, "Addressing Some Limitations of Transformers with Feedback Memory"
(Feedback Transformer); Vaswani et al. 2017, "Attention Is All You Need" (Transformer), with the
learned relative-position term of the Feedback code (Shaw et al. 2018). The equations, as mnemo
computes them (crates/mnemo-models/src/feedback/{core,layer,lm}.rs, crates/mnemo-core/src/
{attention,relative_position,residual,feed_forward,norm}.rs):

    sublayer  pre-norm  x + f(N(x))        post-norm  N(x + f(x))
    N         LayerNorm(eps 1e-5, biased variance) or RMSNorm x / sqrt(mean(x^2) + 1e-5) * g
    FF(x)     down(gelu(up(x)))            exact (erf) GELU
    Transformer attention, query t, key i, head size Dh, span S:
              a_ti = softmax_i((q_t.k_i + q_t.p_{t-i}) / sqrt(Dh)) over 0 <= t-i < S
              p_d = pos[d] (row d is distance d)
    Feedback step t (memories m_{t-S..t-1}, oldest first; S zero memories at the start):
              h^0 = Emb(x_t)
              h^l = FF_l(Attn_l(h^{l-1}, K, V))  keys/values of the S memories only
              K = k(N_kv(m)), V = v(N_kv(m))     one projection shared, or one per layer
              a_tj = softmax_j((q.k_j + q.p_{S-j}) / sqrt(Dh)), slot j = 0..S-1
              p_d = pos[d-1] (row 0 is distance 1)
              m_t = sum_l softmax(mix)_l h^l       ("top" memory: m_t = h^L)
    logits    head(N_final(h^L))   (pre-norm; post-norm has no final norm)

Tensor names and layouts are those of docs/models.md, "Weights in PyTorch": a Linear weight is
PyTorch's [out, in].

Usage: torch_reference.py DIR. DIR holds, per case, CASE.safetensors (with the model config in
its `mnemo.config` metadata) and CASE.json ({"batch", "tokens": [B*2T], "logits": [[...], [...]]},
the logits of two segments of T tokens, the state carried between them). Exits 1 if any logit
differs by more than 1e-5 relative (to the largest logit of the case) from mnemo's.
"""
import json
import math
import pathlib
import sys

import torch
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import load_file

TOLERANCE = 1e-5
EPS = 1e-5


def norm(w, prefix, x, kind):
    """LayerNorm or RMSNorm with weight (and bias) `prefix.weight`, `prefix.bias`."""
    if kind == "layer":
        d = x.shape[-1]
        return F.layer_norm(x, (d,), w[prefix + ".weight"], w[prefix + ".bias"], EPS)
    return x / torch.sqrt((x * x).mean(-1, keepdim=True) + EPS) * w[prefix + ".weight"]


def linear(w, prefix, x):
    return F.linear(x, w[prefix + ".weight"], w[prefix + ".bias"])


def residual(w, prefix, x, f, cfg):
    """One sublayer with its norm `prefix`: pre- or post-norm."""
    if cfg.get("placement", "pre") == "pre":
        return x + f(norm(w, prefix, x, cfg.get("norm", "layer")))
    return norm(w, prefix, x + f(x), cfg.get("norm", "layer"))


def feed_forward(w, layer, x):
    return linear(w, f"layers.{layer}.ff.down", F.gelu(linear(w, f"layers.{layer}.ff.up", x)))


def output(w, h, cfg):
    if cfg.get("placement", "pre") == "pre":
        h = norm(w, "final_norm", h, cfg.get("norm", "layer"))
    return linear(w, "head", h)


def heads(x, n):
    """[..., D] -> [..., H, Dh]."""
    return x.reshape(*x.shape[:-1], n, x.shape[-1] // n)


def transformer_segment(w, cfg, tokens):
    """Logits [B, T, V] of the causal Transformer LM over one segment (it carries nothing)."""
    n_heads, span = cfg["n_heads"], cfg["span"]
    x = F.embedding(tokens, w["embed.weight"])
    b, t, d = x.shape
    dh = d // n_heads
    dist = torch.arange(t)[:, None] - torch.arange(t)[None, :]  # [T, T]: t - i
    allowed = (dist >= 0) & (dist < span)
    for layer in range(cfg["n_layers"]):
        a = f"layers.{layer}.attn"

        def attend(h):
            q = heads(linear(w, a + ".q", h), n_heads).transpose(1, 2)  # [B,H,T,Dh]
            k = heads(linear(w, a + ".k", h), n_heads).transpose(1, 2)
            v = heads(linear(w, a + ".v", h), n_heads).transpose(1, 2)
            pos = w[a + ".pos"][dist.clamp(0, span - 1)]  # [T, T, Dh]
            scores = q @ k.transpose(2, 3) + torch.einsum("bhtd,tid->bhti", q, pos)
            scores = (scores / math.sqrt(dh)).masked_fill(~allowed, float("-inf"))
            o = torch.softmax(scores, -1) @ v  # [B,H,T,Dh]
            return linear(w, a + ".o", o.transpose(1, 2).reshape(b, t, d))

        x = residual(w, f"layers.{layer}.attn_norm", x, attend, cfg)
        x = residual(w, f"layers.{layer}.ff_norm", x, lambda h: feed_forward(w, layer, h), cfg)
    return output(w, x, cfg)


def feedback_segment(w, cfg, tokens, memories):
    """Logits [B, T, V] of the Feedback LM over one segment from the S carried memories
    [B, S, D] (oldest first), and the memories after it."""
    n_heads, span, n_layers = cfg["n_heads"], cfg["span"], cfg["n_layers"]
    shared = cfg.get("share_kv", True)
    top_only = cfg.get("memory", "mix") == "top"
    kind = cfg.get("norm", "layer")
    x = F.embedding(tokens, w["embed.weight"])
    b, t_len, d = x.shape
    dh = d // n_heads
    mix = torch.softmax(w["mix"], 0)
    window = list(memories.unbind(1))  # S tensors [B, D]
    tops = []
    for t in range(t_len):
        m = torch.stack(window[-span:], 1)  # [B, S, D]
        kv = {}
        for p in range(1 if shared else n_layers):
            mn = norm(w, f"kv.{p}.norm", m, kind)
            kv[p] = (
                heads(linear(w, f"kv.{p}.k", mn), n_heads).transpose(1, 2),  # [B,H,S,Dh]
                heads(linear(w, f"kv.{p}.v", mn), n_heads).transpose(1, 2),
            )
        h = x[:, t]
        states = [h]
        for layer in range(n_layers):
            a = f"layers.{layer}.attn"
            k, v = kv[0 if shared else layer]

            def attend(z):
                q = heads(linear(w, a + ".q", z), n_heads)[:, :, None, :]  # [B,H,1,Dh]
                # Slot j (oldest first) is at distance S - j: table row S - j - 1.
                pos = w[a + ".pos"].flip(0)  # [S, Dh], row j = distance S - j
                scores = (q @ k.transpose(2, 3) + q @ pos.T) / math.sqrt(dh)  # [B,H,1,S]
                o = torch.softmax(scores, -1) @ v  # [B,H,1,Dh]
                return linear(w, a + ".o", o.reshape(b, d))

            h = residual(w, f"layers.{layer}.attn_norm", h, attend, cfg)
            h = residual(w, f"layers.{layer}.ff_norm", h, lambda z: feed_forward(w, layer, z), cfg)
            states.append(h)
        new = states[-1] if top_only else sum(mix[i] * s for i, s in enumerate(states))
        window.append(new)
        tops.append(h)
    return output(w, torch.stack(tops, 1), cfg), torch.stack(window[-span:], 1)


def run_case(weights_path, case_path):
    with safe_open(str(weights_path), "pt") as f:
        metadata = f.metadata()
    cfg = json.loads(metadata["mnemo.config"])
    w = {k: v.double() for k, v in load_file(str(weights_path)).items()}
    case = json.loads(case_path.read_text())
    batch = case["batch"]
    tokens = torch.tensor(case["tokens"]).reshape(batch, -1)
    seg = tokens.shape[1] // 2
    got = []
    if cfg["kind"] == "feedback":
        memories = torch.zeros(batch, cfg["span"], cfg["d_model"], dtype=torch.float64)
        for s in range(2):
            logits, memories = feedback_segment(w, cfg, tokens[:, s * seg:(s + 1) * seg], memories)
            got.append(logits)
    elif cfg["kind"] == "transformer":
        for s in range(2):
            got.append(transformer_segment(w, cfg, tokens[:, s * seg:(s + 1) * seg]))
    else:
        raise SystemExit(f"{weights_path}: no PyTorch reference for kind {cfg['kind']!r}")
    worst = 0.0
    for s, (mine, theirs) in enumerate(zip(got, case["logits"])):
        want = torch.tensor(theirs, dtype=torch.float64).reshape(mine.shape)
        scale = want.abs().max().item()
        worst = max(worst, ((mine - want).abs().max() / scale).item())
    return cfg["kind"], worst


def main():
    if len(sys.argv) != 2:
        raise SystemExit("usage: torch_reference.py DIR")
    cases = sorted(pathlib.Path(sys.argv[1]).glob("*.json"))
    if not cases:
        raise SystemExit(f"{sys.argv[1]}: no cases (CASE.json + CASE.safetensors)")
    failed = 0
    for case in cases:
        kind, worst = run_case(case.with_suffix(".safetensors"), case)
        ok = worst <= TOLERANCE
        failed += not ok
        print(f"torch_reference: {case.stem} ({kind}): max relative difference {worst:.2e} "
              f"{'ok' if ok else 'FAILED'} (tolerance {TOLERANCE:.0e})")
    if failed:
        raise SystemExit(f"torch_reference: {failed} of {len(cases)} cases differ from mnemo")
    print(f"torch_reference: all {len(cases)} cases match mnemo's logits")


if __name__ == "__main__":
    main()
