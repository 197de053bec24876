#!/usr/bin/env python3
"""Record what transformers generates with its repetition guards on the tiny model fixtures:

    /work/venv/bin/python scripts/make_guard_fixtures.py

For each of tests/fixtures/marian/tiny-swish and tiny-relu (loaded as make_model_fixtures.py
loads them), writes guards.json: for several settings of `no_repeat_ngram_size` and
`repetition_penalty` (alone and together, greedy and beam 4 with 2 returned sequences), the
generated ids and scores of MarianMTModel.generate for the first inputs of reference.json, each
input alone. Greedy scores are the sum of the processed (renormalised) log-probs of the chosen
tokens divided by the length, as in reference.json; beam scores are `sequences_scores`.

The tiny random models loop ("228 228 228 ..."), which is exactly what these guards act on.
Inputs whose greedy steps have a near-tie (top-2 gap of the processed scores under 1e-4) are
left out, so that float rounding cannot flip a token; their count is recorded.
"""

import json
import sys
from pathlib import Path

import torch

torch.set_num_threads(1)
torch.use_deterministic_algorithms(True)

import transformers  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_model_fixtures import MAX_NEW_TOKENS, OUT_DIR, f32, load_folder, strip  # noqa: E402

INPUTS = 16
MIN_GAP = 1e-4
SETTINGS = [
    {"num_beams": 1, "no_repeat_ngram_size": 2},
    {"num_beams": 1, "no_repeat_ngram_size": 3},
    {"num_beams": 1, "repetition_penalty": 1.3},
    {"num_beams": 1, "repetition_penalty": 0.8},
    {"num_beams": 1, "repetition_penalty": 1.2, "no_repeat_ngram_size": 3},
    {"num_beams": 4, "num_return_sequences": 2, "no_repeat_ngram_size": 3},
    {"num_beams": 4, "num_return_sequences": 2, "repetition_penalty": 1.3},
    {"num_beams": 4, "num_return_sequences": 2, "repetition_penalty": 1.2, "no_repeat_ngram_size": 2},
]


@torch.no_grad()
def run(model, ids, settings, pad):
    kw = dict(settings)
    beams = kw.get("num_beams", 1)
    out = model.generate(
        input_ids=torch.tensor([ids]),
        attention_mask=torch.ones(1, len(ids), dtype=torch.long),
        do_sample=False,
        max_new_tokens=MAX_NEW_TOKENS,
        length_penalty=1.0,
        return_dict_in_generate=True,
        output_scores=True,
        **kw,
    )
    if beams == 1:
        seq = strip(out.sequences[0].tolist(), pad)
        total, gap = 0.0, float("inf")
        for step, token in enumerate(seq):
            s = out.scores[step][0]
            total += float(s[token])
            top2 = torch.topk(s, 2)
            assert int(top2.indices[0]) == token
            if torch.isfinite(top2.values[1]):
                gap = min(gap, float(top2.values[0] - top2.values[1]))
        return [{"ids": seq, "score": f32(total / len(seq))}], gap
    n = kw.get("num_return_sequences", 1)
    hyps = [{"ids": strip(out.sequences[k].tolist(), pad), "score": f32(out.sequences_scores[k])} for k in range(n)]
    return hyps, float("inf")


def main():
    for name in ["tiny-swish", "tiny-relu"]:
        folder = OUT_DIR / name
        reference = json.loads((folder / "reference.json").read_text())
        inputs = reference["inputs"]
        model = load_folder(folder)
        pad = model.config.pad_token_id
        groups = []
        for settings in SETTINGS:
            results, skipped = [], 0
            for i, ids in enumerate(inputs[:INPUTS]):
                hyps, gap = run(model, ids, settings, pad)
                if gap < MIN_GAP:
                    skipped += 1
                    continue
                results.append({"input": i, "hyps": hyps})
            full = {"max_new_tokens": MAX_NEW_TOKENS, "length_penalty": 1.0, **settings}
            groups.append({"settings": full, "results": results, "near_ties_left_out": skipped})
            print(f"{name} {settings}: {len(results)} inputs, {skipped} left out", flush=True)
        out = {
            "description": "transformers generate with no_repeat_ngram_size / repetition_penalty on the tiny "
            "random model (nonsense output; the ids and scores are the reference)",
            "versions": {"transformers": transformers.__version__, "torch": torch.__version__},
            "groups": groups,
        }
        (folder / "guards.json").write_text(json.dumps(out, separators=(",", ":")) + "\n")


if __name__ == "__main__":
    main()
