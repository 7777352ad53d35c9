#!/usr/bin/env python3
"""The torch side of scripts/bench-gpu.sh: lucidrains' Feedback Transformer
(feedback-transformer-pytorch, exact: one token per chunk) and a pre-LN causal
torch Transformer of the same size, timed on one device (CUDA by default).

The phases and their protocol are those of the peer benchmark
(../shared/bench/peer_feedback.py) and of `mnemo bench`: tokens/s is
tokens per iteration / median iteration time after warm-up; each iteration
ends with the device synchronised. The sizes are `mnemo bench --size`'s:

    peer  D 256, 4 layers, 4 heads, FFN 1024, segment/memory 128, batch 8
    gpu   D 512, 6 layers, 8 heads, FFN 2048, segment/memory 128, batch 64

    python scripts/bench_torch_gpu.py --size gpu --out torch_gpu.json
    python scripts/bench_torch_gpu.py --device cpu --quick   # a smoke run without a GPU

Prints one JSON document (and writes it to --out).
"""
import argparse
import json
import statistics
import sys
import time

SIZES = {
    "peer": dict(vocab=256, d_model=256, n_layers=4, n_heads=4, d_ff=1024,
                 segment=128, memory=128, batch=8),
    "gpu": dict(vocab=256, d_model=512, n_layers=6, n_heads=8, d_ff=2048,
                segment=128, memory=128, batch=64),
}
PHASES = ["fb_train_chunk1", "fb_forward_chunk1", "fb_gen_b1", "fb_gen_b8", "tf_train"]
FULL = dict(train_warmup=2, train_iters=12, fwd_iters=10, gen_warmup=1, gen_iters=7,
            gen_tokens=256)
QUICK = dict(train_warmup=1, train_iters=2, fwd_iters=2, gen_warmup=1, gen_iters=2,
             gen_tokens=32)
LR = 3e-4


def make_feedback(c):
    from feedback_transformer_pytorch import FeedbackTransformer
    # The package's FFN is GEGLU with a fixed multiplier 4: F = 4 D (1024 / 2048 here).
    return FeedbackTransformer(
        num_tokens=c["vocab"], dim=c["d_model"], depth=c["n_layers"],
        mem_len=c["memory"], seq_len=1, heads=c["n_heads"],
        dim_head=c["d_model"] // c["n_heads"], attn_dropout=0.0, ff_dropout=0.0)


def make_transformer(c, torch):
    from torch import nn

    class TransformerLm(nn.Module):
        """The peer's vanilla LM: pre-LN nn.TransformerEncoder, causal mask, GELU."""

        def __init__(self):
            super().__init__()
            d = c["d_model"]
            self.tok = nn.Embedding(c["vocab"], d)
            self.pos = nn.Embedding(c["memory"], d)
            layer = nn.TransformerEncoderLayer(
                d, c["n_heads"], c["d_ff"], dropout=0.0, activation="gelu",
                batch_first=True, norm_first=True)
            self.enc = nn.TransformerEncoder(layer, c["n_layers"], enable_nested_tensor=False)
            self.norm = nn.LayerNorm(d)
            self.head = nn.Linear(d, c["vocab"])

        def forward(self, x):
            t = x.shape[1]
            mask = nn.Transformer.generate_square_subsequent_mask(t, device=x.device)
            h = self.tok(x) + self.pos(torch.arange(t, device=x.device))
            h = self.enc(h, mask=mask, is_causal=True)
            return self.head(self.norm(h))

    return TransformerLm()


def timed(fn, warmup, iters, sync):
    for _ in range(warmup):
        fn()
    sync()
    times = []
    for _ in range(iters):
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
    return times


def summarize(times, tokens_per_iter):
    med = statistics.median(times)
    return {"tokens_per_iter": tokens_per_iter, "iter_s": [round(t, 4) for t in times],
            "median_iter_s": round(med, 4), "tokens_per_s": round(tokens_per_iter / med, 1),
            "best_tokens_per_s": round(tokens_per_iter / min(times), 1)}


def phase(name, c, p, torch, device):
    import torch.nn.functional as F
    sync = (lambda: torch.cuda.synchronize()) if device.type == "cuda" else (lambda: None)
    torch.manual_seed(0)
    B, T, V = c["batch"], c["segment"], c["vocab"]
    if name in ("fb_train_chunk1", "tf_train"):
        fb = name.startswith("fb")
        model = (make_feedback(c) if fb else make_transformer(c, torch)).to(device).train()
        opt = torch.optim.Adam(model.parameters(), lr=LR)
        data = [torch.randint(0, V, (B, T + 1), device=device) for _ in range(4)]
        state = {"i": 0, "mem": None, "loss": float("nan")}

        def step():
            x = data[state["i"] % len(data)]
            state["i"] += 1
            if fb:
                logits, mem = model(x[:, :-1], memory=state["mem"], return_memory=True)
                state["mem"] = type(mem)(mem.keys.detach(), mem.values.detach())
            else:
                logits = model(x[:, :-1])
            loss = F.cross_entropy(logits.reshape(-1, V), x[:, 1:].reshape(-1))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            state["loss"] = loss.item()

        res = summarize(timed(step, p["train_warmup"], p["train_iters"], sync), B * T)
        res["last_loss"] = round(state["loss"], 4)
        return res
    if name == "fb_forward_chunk1":
        model = make_feedback(c).to(device).eval()
        data = [torch.randint(0, V, (B, T), device=device) for _ in range(4)]
        state = {"i": 0, "mem": None}

        def forward():
            with torch.inference_mode():
                x = data[state["i"] % len(data)]
                state["i"] += 1
                _, state["mem"] = model(x, memory=state["mem"], return_memory=True)

        return summarize(timed(forward, 1, p["fwd_iters"], sync), B * T)
    if name.startswith("fb_gen_b"):
        batch, n = int(name[len("fb_gen_b"):]), p["gen_tokens"]
        model = make_feedback(c).to(device).eval()
        gen = torch.Generator(device=device).manual_seed(0)

        def generate():
            with torch.inference_mode():
                tok = torch.randint(0, V, (batch, 1), device=device, generator=gen)
                mem = None
                for _ in range(n):
                    logits, mem = model(tok, memory=mem, return_memory=True)
                    probs = logits[:, -1].softmax(dim=-1)
                    tok = torch.multinomial(probs, 1, generator=gen)

        res = summarize(timed(generate, p["gen_warmup"], p["gen_iters"], sync), batch * n)
        res["batch"] = batch
        return res
    raise SystemExit(f"bench_torch_gpu: unknown phase {name}; phases: {','.join(PHASES)}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cuda", help="torch device (default cuda)")
    ap.add_argument("--size", default="peer", choices=sorted(SIZES))
    ap.add_argument("--only", default=",".join(PHASES), help="comma list of phases")
    ap.add_argument("--quick", action="store_true", help="short smoke run")
    ap.add_argument("--out", default="", help="also write the JSON here")
    args = ap.parse_args()
    import torch
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("bench_torch_gpu: --device cuda, but this torch sees no CUDA device "
                         f"(torch {torch.__version__}); use --device cpu for a smoke run")
    # Full f32 products, as mnemo computes them (no TF32).
    if hasattr(torch.backends.cuda.matmul, "fp32_precision"):
        torch.backends.cuda.matmul.fp32_precision = "ieee"
    else:
        torch.backends.cuda.matmul.allow_tf32 = False
    c, p = SIZES[args.size], QUICK if args.quick else FULL
    results = {}
    for name in [n.strip() for n in args.only.split(",") if n.strip()]:
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
        t0 = time.perf_counter()
        try:
            res = phase(name, c, p, torch, device)
        except torch.cuda.OutOfMemoryError as e:  # a size too large for this GPU
            res = {"error": f"out of memory: {e}".splitlines()[0]}
        if device.type == "cuda":
            res["peak_device_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
        res["phase_wall_s"] = round(time.perf_counter() - t0, 2)
        results[name] = res
        print(f"[torch {args.device}] {name}: {res.get('tokens_per_s', res)}", flush=True,
              file=sys.stderr)
    doc = {"benchmark": "torch_gpu", "device": args.device,
           "device_name": (torch.cuda.get_device_name(device) if device.type == "cuda"
                           else "cpu"),
           "torch": torch.__version__, "size": args.size, "config": c,
           "mode": "quick" if args.quick else "full", "tf32": False, "results": results}
    text = json.dumps(doc, indent=2)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
