#!/usr/bin/env python3
"""How far int8 log-probabilities are from transformers' float32 ones, for traduire and for
CTranslate2, on the same checkpoint and the same teacher-forced pairs.

    /work/venv/bin/python scripts/score_accuracy.py [--model-dir DIR] [--pairs N] [--json]

DIR defaults to the full-size random checkpoint of scripts/make_bench_model.py
(~/.cache/traduire/opus-mt-fr-en-random, with its ct2-int8/ and ct2-float32/ conversions); a
folder without them (a tiny test model assembled with its tokenizer) is converted with
CTranslate2's TransformersConverter into a temporary folder. The pairs are the first N lines of
scripts/corpus/{fr,en}.txt.

For every pair, the reference is transformers' log_softmax(logits)[target token] at every
target position, </s> included (MarianMTModel, float32, eval). Compared with it, per token:
  traduire-f32   target/release/traduire score --dtype f32 --format jsonl
  traduire-int8  target/release/traduire score --dtype int8 --format jsonl
  ct2-float32    ctranslate2.Translator.score_batch, compute_type float32
  ct2-int8       ctranslate2.Translator.score_batch, compute_type int8
Prints the largest, mean, median, 90th and 99th percentile absolute deviation per token, and
the int8 error alone (each engine's int8 against its own float32). Random weights: the
numbers measure arithmetic, not translation quality.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent
DEFAULT_MODEL = Path.home() / ".cache" / "traduire" / "opus-mt-fr-en-random"
TRADUIRE = REPO / "target" / "release" / "traduire"


def reference(model_dir: Path, pairs):
    from transformers import MarianMTModel, MarianTokenizer

    torch.set_num_threads(2)
    model = MarianMTModel.from_pretrained(str(model_dir), dtype=torch.float32, attn_implementation="eager").eval()
    tok = MarianTokenizer.from_pretrained(str(model_dir))
    start = model.config.decoder_start_token_id
    out = []
    with torch.no_grad():
        for fr, en in pairs:
            src = tok(fr).input_ids
            tgt = tok(text_target=en).input_ids
            logits = model(
                input_ids=torch.tensor([src]),
                attention_mask=torch.ones(1, len(src), dtype=torch.long),
                decoder_input_ids=torch.tensor([[start] + tgt[:-1]]),
            ).logits[0]
            lp = torch.log_softmax(logits.float(), dim=-1)
            out.append((src, tgt, [float(lp[t, i]) for t, i in enumerate(tgt)]))
    return tok, out


def ct2_scores(model_dir: Path, compute_type: str, tok, ref):
    import ctranslate2

    folder = model_dir / f"ct2-{compute_type}"
    tmp = None
    if not folder.exists():
        tmp = tempfile.TemporaryDirectory()
        folder = Path(tmp.name) / "ct2"
        ctranslate2.converters.TransformersConverter(str(model_dir)).convert(
            str(folder), quantization=compute_type, force=True
        )
    tr = ctranslate2.Translator(str(folder), device="cpu", compute_type=compute_type, intra_threads=2)
    scores = []
    for src, tgt, _ in ref:
        source = tok.convert_ids_to_tokens(src)
        # score_batch adds the end token itself: give the target without </s>.
        target = tok.convert_ids_to_tokens(tgt[:-1])
        result = tr.score_batch([source], [target])[0]
        scores.append(list(result.log_probs))
    return scores


def traduire_scores(model_dir: Path, dtype: str, pairs, binary: Path):
    with tempfile.TemporaryDirectory() as tmp:
        fr, en = Path(tmp) / "c.fr", Path(tmp) / "c.en"
        fr.write_text("".join(p[0] + "\n" for p in pairs), encoding="utf-8")
        en.write_text("".join(p[1] + "\n" for p in pairs), encoding="utf-8")
        out = subprocess.run(
            [str(binary), "score", "--model-dir", str(model_dir), "--src", str(fr), "--tgt", str(en),
             "--format", "jsonl", "--dtype", dtype, "--threads", "2", "--quiet"],
            check=True, capture_output=True, text=True,
        ).stdout
    return [json.loads(line)["token_logprobs"] for line in out.splitlines()]


def deviation(name, got, ref):
    diffs = []
    for scores, (_, _, want) in zip(got, ref):
        if len(scores) != len(want):
            raise SystemExit(f"{name}: {len(scores)} scores for {len(want)} target tokens")
        diffs += [abs(a - b) for a, b in zip(scores, want)]
    ranked = sorted(diffs)

    def quantile(q):
        # Nearest rank: the smallest deviation at least a fraction q of the tokens are within.
        return ranked[min(len(ranked) - 1, max(0, math.ceil(q * len(ranked)) - 1))]

    return {"max": ranked[-1], "mean": sum(diffs) / len(diffs), "p50": quantile(0.5),
            "p90": quantile(0.9), "p99": quantile(0.99), "tokens": len(diffs)}  # fmt: skip


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model-dir", type=Path, default=DEFAULT_MODEL)
    ap.add_argument("--pairs", type=int, default=40)
    ap.add_argument("--traduire", type=Path, default=TRADUIRE)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    fr = (REPO / "scripts/corpus/fr.txt").read_text(encoding="utf-8").splitlines()
    en = (REPO / "scripts/corpus/en.txt").read_text(encoding="utf-8").splitlines()
    pairs = list(zip(fr, en))[: a.pairs]
    tok, ref = reference(a.model_dir, pairs)
    scores = {
        "traduire-f32": traduire_scores(a.model_dir, "f32", pairs, a.traduire),
        "traduire-int8": traduire_scores(a.model_dir, "int8", pairs, a.traduire),
        "ct2-float32": ct2_scores(a.model_dir, "float32", tok, ref),
        "ct2-int8": ct2_scores(a.model_dir, "int8", tok, ref),
    }
    results = {name: deviation(name, s, ref) for name, s in scores.items()}
    # The int8 error alone: each engine's int8 against its own float32 (CTranslate2's
    # conversion of a checkpoint can differ from transformers in other ways, e.g. the decoder
    # start token of a vocabulary without <pad>).
    def own(name):
        return [(None, None, f) for f in scores[name]]
    results["traduire-int8 vs traduire-f32"] = deviation("traduire int8/f32", scores["traduire-int8"], own("traduire-f32"))
    results["ct2-int8 vs ct2-float32"] = deviation("ct2 int8/f32", scores["ct2-int8"], own("ct2-float32"))
    if a.json:
        print(json.dumps({"model_dir": str(a.model_dir), "pairs": len(pairs), "results": results}))
        return
    print(f"{a.model_dir}: {len(pairs)} pairs, {results['ct2-int8']['tokens']} target tokens, "
          "|log-prob - transformers float32| per token")
    print(f"{'engine':<30} {'max':>9} {'mean':>9} {'median':>9} {'p90':>9} {'p99':>9}")
    for name, r in results.items():
        print(f"{name:<30} {r['max']:>9.5f} {r['mean']:>9.5f} {r['p50']:>9.5f} {r['p90']:>9.5f} {r['p99']:>9.5f}")


if __name__ == "__main__":
    sys.exit(main())
