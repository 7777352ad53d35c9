#!/usr/bin/env python3
"""Write crates/mnemo-train/tests/fixtures/official_feedback.pt: a checkpoint in the format of the
Feedback Transformer's official code (facebookresearch/transformer-sequential, Fan et al. 2020,
"Addressing Some Limitations of Transformers with Feedback Memory"): `torch.save` of a dict whose
"model" entry is the model's state dict, its keys prefixed `module.` as DistributedDataParallel
writes them, beside "epoch", "optimizer" and "logger"; and official_feedback_state_dict.pt, the same state dict saved alone.

The state dict has the official parameter names and shapes for --nlayers 2 --hid-sz 8 --nheads 2
--head-dim 4 --inner-hid-sz 12 --attn-lim 3 --pre-norm --share-proj-kv --feedback, vocabulary 11:
tied tensors (key_pe of every layer, and with --share-proj-kv the key/value projections and norm1)
are one storage, as in the official model. Tensor number i (in the order below) holds
i + 0.001 * arange(n), so a reader can check every value.

    in_emb.weight [V, H]; layers.{l}.attn.attn.key_pe [1, D, attn_lim];
    layers.{l}.attn.proj_{query,out,val,key}.weight [K*D, H] / [H, K*D] (no bias);
    layers.{l}.ff.fc1.{weight,bias} [inner, H], [inner]; layers.{l}.ff.fc2.{weight,bias};
    layers.{l}.norm1.{weight,bias}, layers.{l}.norm2.{weight,bias} [H];
    out.out_emb.{weight,bias} [V, H], [V]; out_norm.{weight,bias} [H];
    single_memory_attn_params [1, L+1]; single_memory_attn_buf [1, L+1] (a buffer)
"""
import pathlib

import torch

V, H, K, D, INNER, LIM, L = 11, 8, 2, 4, 12, 3, 2


def names_and_shapes():
    out = [("in_emb.weight", (V, H))]
    for l in range(L):
        p = f"layers.{l}."
        out += [
            (p + "attn.attn.key_pe", (1, D, LIM)),
            (p + "attn.proj_query.weight", (K * D, H)),
            (p + "attn.proj_out.weight", (H, K * D)),
            (p + "attn.proj_val.weight", (K * D, H)),
            (p + "attn.proj_key.weight", (K * D, H)),
            (p + "ff.fc1.weight", (INNER, H)),
            (p + "ff.fc1.bias", (INNER,)),
            (p + "ff.fc2.weight", (H, INNER)),
            (p + "ff.fc2.bias", (H,)),
            (p + "norm1.weight", (H,)),
            (p + "norm1.bias", (H,)),
            (p + "norm2.weight", (H,)),
            (p + "norm2.bias", (H,)),
        ]
    out += [
        ("out.out_emb.weight", (V, H)),
        ("out.out_emb.bias", (V,)),
        ("out_norm.weight", (H,)),
        ("out_norm.bias", (H,)),
        ("single_memory_attn_params", (1, L + 1)),
        ("single_memory_attn_buf", (1, L + 1)),
    ]
    return out


def tied(name):
    """The layer-0 name a tensor is tied to (key_pe always; K/V and norm1 by --share-proj-kv)."""
    parts = name.split(".")
    if parts[0] == "layers" and parts[1] != "0":
        rest = ".".join(parts[2:])
        if rest in ("attn.attn.key_pe", "attn.proj_key.weight", "attn.proj_val.weight",
                    "norm1.weight", "norm1.bias"):
            return "layers.0." + rest
    return None


def main():
    state = {}
    for i, (name, shape) in enumerate(names_and_shapes()):
        source = tied(name)
        if source is not None:
            state[name] = state[source]
            continue
        n = 1
        for s in shape:
            n *= s
        state[name] = (i + 0.001 * torch.arange(n, dtype=torch.float32)).reshape(shape)
    checkpoint = {
        "epoch": 3,
        "model": {"module." + k: v for k, v in state.items()},
        "optimizer": {"state": {}, "param_groups": [{"lr": 0.1, "params": [0, 1]}]},
        "logger": {"loss": [1.5, 1.25]},
    }
    out = pathlib.Path(__file__).resolve().parent.parent / "crates/mnemo-train/tests/fixtures"
    out.mkdir(parents=True, exist_ok=True)
    torch.save(checkpoint, out / "official_feedback.pt")
    # A bare state dict (model.state_dict() saved alone, no DDP prefix), also read.
    torch.save(state, out / "official_feedback_state_dict.pt")
    print(out / "official_feedback.pt", out / "official_feedback_state_dict.pt")


if __name__ == "__main__":
    main()
