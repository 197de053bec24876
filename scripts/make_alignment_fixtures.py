#!/usr/bin/env python3
"""Record transformers' alignment weights on the tiny model fixtures:

    /work/venv/bin/python scripts/make_alignment_fixtures.py

The alignment of a translation is the last decoder layer's cross-attention, head 0 (opus-mt
models were trained as Marian's transformer-align, whose guided alignment supervises that
head; Marian's --alignment and CTranslate2's return_attention report it). For each of
tests/fixtures/marian/tiny-swish and tiny-relu (loaded from their folders plus the shared
tokenizer, as tests/common/mod.rs assembles them), writes alignment.json with, for every pair
(source ids, target ids): the weights
`cross_attentions[-1][0, 0]` of MarianMTModel(input_ids, decoder_input_ids=[decoder_start] +
target[:-1], output_attentions=True) in float32, eager attention: one row per target token
(</s> included) over the source tokens (</s> included). Row t is the attention of the decoder
position that predicts target token t.

The targets are the recorded greedy outputs and best beam hypotheses (reference.json), so the
same pairs also check the weights read during generation. "batched" holds the same pairs
teacher-forced in padded batches of 5 (sources and targets right-padded), unpadded again.
The models are random: these weights say nothing about real word alignment.
"""

import json
import sys
import tempfile
from pathlib import Path

import torch

torch.set_num_threads(1)
torch.use_deterministic_algorithms(True)

import transformers  # noqa: E402
from transformers import MarianMTModel  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_model_fixtures import ATTN_IMPL, OUT_DIR, f32, full_folder  # noqa: E402

MODELS = ["tiny-swish", "tiny-relu"]
PAIRS = 14
BATCH = 5


def weights(model, pairs, pad, start):
    """Alignment rows of each (source, target) pair, the pairs run as one padded batch."""
    src_len = max(len(s) for s, _ in pairs)
    tgt_len = max(len(t) for _, t in pairs)
    ids = torch.tensor([s + [pad] * (src_len - len(s)) for s, _ in pairs])
    mask = torch.tensor([[1] * len(s) + [0] * (src_len - len(s)) for s, _ in pairs])
    dec = torch.tensor([([start] + t[:-1]) + [pad] * (tgt_len - len(t)) for _, t in pairs])
    with torch.no_grad():
        out = model(input_ids=ids, attention_mask=mask, decoder_input_ids=dec, output_attentions=True)
    att = out.cross_attentions[-1][:, 0]  # (batch, tgt_len, src_len)
    return [[[f32(w) for w in att[b, t, : len(s)].tolist()] for t in range(len(tgt))]
            for b, (s, tgt) in enumerate(pairs)]


def main():
    for name in MODELS:
        folder = OUT_DIR / name
        ref = json.loads((folder / "reference.json").read_text())
        config = json.loads((folder / "config.json").read_text())
        pad, start = config["pad_token_id"], config["decoder_start_token_id"]
        with tempfile.TemporaryDirectory() as full:
            model = MarianMTModel.from_pretrained(str(full_folder(folder, full)), attn_implementation=ATTN_IMPL,
                                                  dtype=torch.float32)
        model.eval()
        inputs = ref["inputs"]
        # Varied lengths: non-trivial sources, greedy outputs and best beam hypotheses.
        chosen = [i for i in range(len(inputs)) if len(inputs[i]) >= 3][:PAIRS]
        pairs = []
        for i in chosen:
            pairs.append({"input": i, "kind": "greedy", "source": inputs[i], "target": ref["greedy"][i]["ids"]})
            pairs.append({"input": i, "kind": "beam", "source": inputs[i], "target": ref["beam"][i]["hyps"][0]["ids"]})
        for p in pairs:
            p["weights"] = weights(model, [(p["source"], p["target"])], pad, start)[0]
        batched = []
        for k in range(0, len(pairs), BATCH):
            group = pairs[k:k + BATCH]
            batched += weights(model, [(p["source"], p["target"]) for p in group], pad, start)
        doc = {
            "description": f"transformers alignment weights (last decoder layer, cross-attention head 0) for "
                           f"tests/fixtures/marian/{name} (scripts/make_alignment_fixtures.py)",
            "versions": {"torch": torch.__version__, "transformers": transformers.__version__},
            "settings": {"dtype": "float32", "attn_implementation": ATTN_IMPL, "batch": BATCH,
                         "decoder_input_ids": "[decoder_start] + target[:-1]"},
            "pairs": pairs,
            "batched": batched,
        }
        path = folder / "alignment.json"
        path.write_text(json.dumps(doc, separators=(",", ":")) + "\n")
        print(f"{path}: {len(pairs)} pairs, {path.stat().st_size} bytes")


if __name__ == "__main__":
    main()
