#!/usr/bin/env python3
"""Record transformers' teacher-forced log-probabilities on the tiny model fixtures:

    /work/venv/bin/python scripts/make_score_fixtures.py

For each of tests/fixtures/marian/tiny-swish and tiny-relu (loaded from their folders plus the
shared tokenizer, as tests/common/mod.rs assembles them), writes score.json with, for every pair
(French, English): the source ids (MarianTokenizer), the target ids (text_target=, ending with
</s>), and log_softmax(logits)[target token] at every target position, </s> included, from
MarianMTModel(input_ids, decoder_input_ids=[decoder_start] + target[:-1]) in float32. These are
the raw log-probabilities (no generation-time processors), what `traduire score` reports.

It also records CTranslate2's own scores of the same pairs (ctranslate2.Translator.score_batch
on a TransformersConverter conversion, compute types float32 and int8): tests/score.rs holds
traduire's int8 error (int8 against its own float32) to CTranslate2's on the same checkpoint.
(CTranslate2's float32 itself differs from transformers on these checkpoints, whose vocabulary
it converts differently; int8 against float32 within one engine is the fair comparison.)

The pairs are the first lines of scripts/corpus/{fr,en}.txt plus edge cases (empty sides, a
long sentence). The models are random: the numbers are meaningless as translation quality and
exist to prove the arithmetic.
"""

import json
import sys
import tempfile
from pathlib import Path

import torch

torch.set_num_threads(1)
torch.use_deterministic_algorithms(True)

import transformers  # noqa: E402
from transformers import MarianMTModel, MarianTokenizer  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_model_fixtures import OUT_DIR, f32, full_folder  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "scripts" / "corpus"
EDGE_CASES = [
    ("", ""),
    ("Oui", ""),
    ("", "Yes."),
    ("Le chat dort.", "The cat is sleeping."),
    ("« Pourquoi pas ? », a-t-il demandé.", "\"Why not?\" he asked."),
]


def pairs():
    fr = (CORPUS / "fr.txt").read_text(encoding="utf-8").splitlines()
    en = (CORPUS / "en.txt").read_text(encoding="utf-8").splitlines()
    assert len(fr) == len(en)
    return EDGE_CASES + list(zip(fr[:30], en[:30]))


def ct2_scores(full, tok, records, compute_type):
    import ctranslate2

    with tempfile.TemporaryDirectory() as out:
        ctranslate2.converters.TransformersConverter(full).convert(out, quantization=compute_type, force=True)
        tr = ctranslate2.Translator(out, device="cpu", compute_type=compute_type, intra_threads=1)
        scores = []
        for r in records:
            source = tok.convert_ids_to_tokens(r["source_ids"])
            # score_batch adds the end token itself: the target without </s>.
            target = tok.convert_ids_to_tokens(r["target_ids"][:-1])
            scores.append([f32(x) for x in tr.score_batch([source], [target])[0].log_probs])
    return scores


@torch.no_grad()
def score(model, tok, fr, en):
    src = tok(fr).input_ids
    tgt = tok(text_target=en).input_ids
    start = model.config.decoder_start_token_id
    out = model(
        input_ids=torch.tensor([src]),
        attention_mask=torch.ones(1, len(src), dtype=torch.long),
        decoder_input_ids=torch.tensor([[start] + tgt[:-1]]),
    )
    lp = torch.log_softmax(out.logits[0].float(), dim=-1)
    return src, tgt, [f32(lp[t, tok_id]) for t, tok_id in enumerate(tgt)]


def main():
    for name in ("tiny-swish", "tiny-relu"):
        folder = OUT_DIR / name
        with tempfile.TemporaryDirectory() as full:
            full_folder(folder, full)
            model = MarianMTModel.from_pretrained(full, attn_implementation="eager", dtype=torch.float32).eval()
            tok = MarianTokenizer.from_pretrained(full)
            records = []
            for fr, en in pairs():
                src, tgt, lps = score(model, tok, fr, en)
                records.append({"fr": fr, "en": en, "source_ids": src, "target_ids": tgt, "token_logprobs": lps})
            for compute_type in ("float32", "int8"):
                for r, s in zip(records, ct2_scores(full, tok, records, compute_type)):
                    assert len(s) == len(r["target_ids"])
                    r[f"ct2_{compute_type}_token_logprobs"] = s
        out = {
            "description": f"transformers teacher-forced log-probabilities for tests/fixtures/marian/{name} "
            "(scripts/make_score_fixtures.py)",
            "versions": {"torch": torch.__version__, "transformers": transformers.__version__,
                         "ctranslate2": __import__("ctranslate2").__version__},
            "pairs": records,
        }
        (folder / "score.json").write_text(json.dumps(out, ensure_ascii=False, separators=(",", ":")) + "\n")
        print(f"{name}: {len(records)} pairs, {sum(len(r['target_ids']) for r in records)} target tokens")


if __name__ == "__main__":
    main()
