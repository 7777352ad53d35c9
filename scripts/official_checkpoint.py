#!/usr/bin/env python3
"""Turn `mnemo export RUN --format official` output into a checkpoint of the Feedback Transformer's
official code (facebookresearch/transformer-sequential): `torch.save({"epoch": 0, "model":
state_dict, "optimizer": ..., "logger": {}})`, as its `utils/checkpoint.py` loads it.

    python3 scripts/official_checkpoint.py RUN/official.safetensors OUT.pt \
        [--tree TREE] [--optim adam|sgd] [--lr LR] [--momentum M] [--ddp]

The official model flags are in the file's `official.flags` metadata and printed here: pass
them to the official `main.py` with `--checkpoint OUT.pt`. Its loader also restores an optimizer,
whose state dict must list the model's parameters: with `--tree` (an extracted copy of the
repository; its code is CC-BY-NC, run here, nothing of it copied) the official model is built
from the flags, the state dict is loaded into it strictly (a mismatch fails here, naming the
tensor), and a fresh optimizer of `--optim` is saved beside it, as `main.py` makes it. Without
`--tree` only "epoch" and "model" are written (enough for `model.load_state_dict`).
`--ddp` prefixes every name with `module.`, as a model wrapped for distributed training
(the official scripts' `torch.distributed.launch`) expects.

Needs torch and safetensors (scripts/setup-tch.sh makes a venv with torch; `pip install
safetensors`).
"""
import argparse
import json
import sys
import types

import torch
from safetensors import safe_open


def official_model(tree, flags, vocab):
    sys.path.insert(0, tree)
    from models.feedback import FeedbackTransformer
    from models.transformer_seq import TransformerSeq

    # The flags mnemo writes override these defaults (the adaptive-span ones: issue 19).
    args = dict(
        vocab_sz=vocab, emb_dropout=0.0, device="cpu", adapt_span=False, adapt_span_cache=False,
        adapt_span_loss=0.0, adapt_span_len=32, adapt_span_init=0.0, adapt_span_trim_step=64,
        adapt_span_layer=False)
    args.update(flags)
    args = types.SimpleNamespace(**args)
    # Without --feedback the official model is the baseline TransformerSeq.
    return FeedbackTransformer(args) if flags["feedback"] else TransformerSeq(args)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("file")
    p.add_argument("out")
    p.add_argument("--tree")
    p.add_argument("--optim", default="adam", choices=["adam", "sgd"])
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--momentum", type=float, default=0.0)
    p.add_argument("--ddp", action="store_true")
    a = p.parse_args()
    state = {}
    with safe_open(a.file, framework="pt") as f:
        flags = json.loads(f.metadata()["official.flags"])
        for name in f.keys():
            state[name] = f.get_tensor(name)
    checkpoint = {"epoch": 0}
    if a.tree:
        model = official_model(a.tree, flags, state["in_emb.weight"].shape[0])
        model.load_state_dict(state, strict=True)
        params = [q for q in model.parameters() if q.requires_grad]
        if a.optim == "adam":
            optimizer = torch.optim.Adam(params, lr=a.lr)
        else:
            optimizer = torch.optim.SGD(params, lr=a.lr, momentum=a.momentum)
        checkpoint.update(optimizer=optimizer.state_dict(), logger={})
    if a.ddp:
        state = {"module." + k: v for k, v in state.items()}
    checkpoint["model"] = state
    torch.save(checkpoint, a.out)
    cli = " ".join(
        f"--{k.replace('_', '-')}" if v is True else f"--{k.replace('_', '-')} {v}"
        for k, v in flags.items()
        if v is not False and (flags.get("adapt_span") or not k.startswith("adapt_span_"))
    )
    print(f"wrote {a.out}; official flags: {cli}")


if __name__ == "__main__":
    main()
