#!/usr/bin/env python3
"""Write crates/mnemo-train/tests/fixtures/official/: small Feedback Transformers and baseline
TransformerSeq models built and run by the paper's own code (facebookresearch/
transformer-sequential, models/feedback.py and models/transformer_seq.py; Fan et al. 2020),
saved as that code saves them, with the log-probabilities it computes, so mnemo's `import
official` can be checked against the official computation without PyTorch (issue 18).

    python3 scripts/make_official_parity.py TREE [CASE ...]

TREE is an extracted copy of that repository (its code is CC-BY-NC: it is run here, nothing of it
is copied). Needs torch (scripts/setup-tch.sh makes a venv with it). Writes:

- data/{train,valid,test}.txt and .txt.labels: a tiny code-execution-like labelled corpus (the
  official data format); the official `data.Corpus` builds its dictionary from it.
- CASE/checkpoint.pt for each case: `torch.save({"epoch", "model": state_dict, "optimizer",
  "logger"})` as the official trainer saves it (case `pre_shared` with the `module.` prefix of
  DistributedDataParallel).
- CASE/expected.json: the official flags, the official dictionary (`idx2word`), the input ids
  `[B, blocks * mem_sz]` (the valid split batchified as the official code does) and the official
  log-probabilities `[B, blocks * mem_sz, V]`, blocks run in order with the hidden cache carried
  (detached) between them as the official trainer does.

Cases (all, or the CASEs named): Feedback `pre_shared` (pre-norm, --share-proj-kv),
`pre_per_layer`, `post_per_layer`; TransformerSeq `seq_pre` (attn_lim 6 > mem_sz 4) and
`seq_post` (attn_lim 3 < mem_sz 4). Adaptive span (--adapt-span, issue 19), attn_lim 8,
--adapt-span-len 2, --adapt-span-trim-step 1 and span ratios set to different values per head
and layer (SPAN_RATIOS) so that the mask cuts and the official code trims its windows: Feedback
`span_pre_shared` (one span per head, pre-norm, --share-proj-kv) and `span_post_per_layer`
(post-norm), TransformerSeq `span_seq_pre` (one span per head) and `span_seq_layer`
(--adapt-span-layer: one span per layer).

Weights are random (seeded); LayerNorm gains/biases and the memory mixing logits are randomised
too, so that a mapping error shows. Sizes make head_dim differ from hid_sz / nheads.

On PyTorch >= 2.x BufferWrite.backward fails its saved-tensor check; the forward used here does
not run backward, so the tree needs no patch.
"""
import json
import pathlib
import sys
import types

import torch

TREE = pathlib.Path(sys.argv[1]).resolve()
sys.path.insert(0, str(TREE))
import data as official_data  # noqa: E402
from models.feedback import FeedbackTransformer  # noqa: E402
from models.transformer_seq import TransformerSeq  # noqa: E402

OUT = pathlib.Path(__file__).resolve().parent.parent / "crates/mnemo-train/tests/fixtures/official"

PROGRAMS = [
    ("a = 3 ; b = a + 1 ; print b ;", ["4"]),
    ("b = 2 ; a = b - 1 ; if a > 0 : print a ;", ["1"]),
    ("a = 5 ; print a ; b = a - 2 ; print b ;", ["5", "3"]),
    ("c = 1 ; c = c + 4 ; print c ;", ["5"]),
]


def labels_of(text, printed):
    """`_` for every token but the variable after `print`, labelled with the printed value."""
    tokens, values = text.split(), iter(printed)
    labels = [next(values) if i > 0 and tokens[i - 1] == "print" else "_"
              for i in range(len(tokens))]
    assert next(values, None) is None, text
    return " ".join(labels)


def write_data(dir_):
    dir_.mkdir(parents=True, exist_ok=True)
    splits = {"train": PROGRAMS * 3, "valid": PROGRAMS[1:] + PROGRAMS[:2], "test": PROGRAMS[::-1]}
    for split, programs in splits.items():
        (dir_ / f"{split}.txt").write_text("".join(t + "\n" for t, _ in programs))
        (dir_ / f"{split}.txt.labels").write_text(
            "".join(labels_of(t, p) + "\n" for t, p in programs))


def args_of(vocab, pre_norm, share, feedback=True, attn_lim=6, span=False, span_layer=False):
    return types.SimpleNamespace(
        vocab_sz=vocab, hid_sz=12, nlayers=2, nheads=2, head_dim=5, inner_hid_sz=20,
        mem_sz=4, attn_lim=attn_lim, dropout=0.0, pre_norm=pre_norm, share_proj_kv=share,
        feedback=feedback, adapt_span=span, adapt_span_cache=False,
        adapt_span_loss=0.5 if span else 0.0, adapt_span_len=2 if span else 32,
        adapt_span_init=0.0, adapt_span_trim_step=1 if span else 64,
        adapt_span_layer=span_layer, device="cpu", emb_dropout=0.0)


# Span ratios per layer and head (attn_lim 8, ramp 2): spans 2 and 3.6, 4 and 2.4 positions;
# the widest plus the ramp is under 8, so the official code trims 2 keys.
SPAN_RATIOS = [[0.25, 0.45], [0.5, 0.3]]


def flags(a):
    out = {"hid_sz": a.hid_sz, "nlayers": a.nlayers, "nheads": a.nheads, "head_dim": a.head_dim,
           "inner_hid_sz": a.inner_hid_sz, "mem_sz": a.mem_sz, "attn_lim": a.attn_lim,
           "pre_norm": a.pre_norm, "share_proj_kv": a.share_proj_kv, "feedback": a.feedback}
    if a.adapt_span:
        out.update({"adapt_span": True, "adapt_span_loss": a.adapt_span_loss,
                    "adapt_span_len": float(a.adapt_span_len),
                    "adapt_span_init": a.adapt_span_init,
                    "adapt_span_trim_step": a.adapt_span_trim_step,
                    "adapt_span_layer": a.adapt_span_layer})
    return out


def randomise(model, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name and name.endswith("weight"):
                p.copy_(1.0 + 0.3 * torch.randn(p.shape, generator=g))
            elif "norm" in name and name.endswith("bias"):
                p.copy_(0.3 * torch.randn(p.shape, generator=g))
            elif name == "single_memory_attn_params":
                p.copy_(torch.randn(p.shape, generator=g))
            elif name.endswith("adaptive_span.mask.size_ratio"):
                ratios = SPAN_RATIOS[int(name.split(".")[1])]
                p.copy_(torch.tensor(ratios if p.numel() > 1 else ratios[:1]).view(p.shape))


def main():
    torch.manual_seed(0)
    data_dir = OUT / "data"
    write_data(data_dir)
    corpus = official_data.Corpus(str(data_dir))
    (data_dir / "corpus.pt").unlink(missing_ok=True)
    vocab = len(corpus.dictionary)
    batch, blocks = 2, 3
    cases = [("pre_shared", args_of(vocab, True, True)),
             ("pre_per_layer", args_of(vocab, True, False)),
             ("post_per_layer", args_of(vocab, False, False)),
             ("seq_pre", args_of(vocab, True, False, feedback=False)),
             ("seq_post", args_of(vocab, False, False, feedback=False, attn_lim=3)),
             ("span_pre_shared", args_of(vocab, True, True, attn_lim=8, span=True)),
             ("span_post_per_layer", args_of(vocab, False, False, attn_lim=8, span=True)),
             ("span_seq_pre", args_of(vocab, True, False, feedback=False, attn_lim=8, span=True)),
             ("span_seq_layer", args_of(vocab, False, False, feedback=False, attn_lim=8,
                                        span=True, span_layer=True))]
    wanted = sys.argv[2:]
    for i, (case, a) in enumerate(cases):
        if wanted and case not in wanted:
            continue
        torch.manual_seed(100 + i)
        model = FeedbackTransformer(a) if a.feedback else TransformerSeq(a)
        randomise(model, 200 + i)
        model.eval()
        stream = official_data.batchify(corpus.valid, batch)[:, : blocks * a.mem_sz].long()
        assert stream.size(1) == blocks * a.mem_sz, "valid split too short"
        cache = model.init_hid_cache(batch)
        outs = []
        with torch.no_grad():
            for b in range(blocks):
                x = stream[:, b * a.mem_sz : (b + 1) * a.mem_sz]
                out, cache, _ = model(x, cache)
                cache = [h.detach() for h in cache]
                outs.append(out)
        log_probs = torch.cat(outs, dim=1)
        state = model.state_dict()
        if case == "pre_shared":
            state = {"module." + k: v for k, v in state.items()}
        dir_ = OUT / case
        dir_.mkdir(parents=True, exist_ok=True)
        torch.save({"epoch": 1, "model": state, "optimizer": {}, "logger": {}},
                   dir_ / "checkpoint.pt")
        expected = {
            "flags": flags(a),
            "idx2word": corpus.dictionary.idx2word,
            "input": stream.tolist(),
            "log_probs": [[[round(float(v), 7) for v in row] for row in seq]
                          for seq in log_probs.tolist()],
        }
        (dir_ / "expected.json").write_text(json.dumps(expected) + "\n")
        print(f"wrote {dir_} (vocab {vocab}, {sum(p.numel() for p in model.parameters())} params)")


if __name__ == "__main__":
    main()
