#!/usr/bin/env python3
"""Build the tiny checkpoint with opus-mt-tc-big-fr-en's quirks, and its transformers reference:

    /work/venv/bin/python scripts/make_big_fixture.py       # writes tests/fixtures/marian/tiny-big/

Helsinki-NLP/opus-mt-tc-big-fr-en differs from opus-mt-fr-en in ways a loader can get wrong:
- `</s>` is not id 0 (43,311 of 53,017): the fixture's own vocab.json moves `</s>` to id EOS
  (the piece that was there goes to 0), so eos_token_id = forced_eos_token_id = EOS;
- pad = decoder start = the last id, as there;
- relu, more positions (1,024), and the weights stored in float16 safetensors.
At tiny size (d_model 32, 2+2 layers, 4 heads, ffn 128). The SentencePiece models are the shared
tokenizer fixture's; tests/common/mod.rs adds them to the folder (the folder's own vocab.json
and tokenizer_config.json take precedence).

reference.json: greedy and beam-4 outputs (ids and scores) of MarianMTModel.generate, in float32
on the float16 weights upcast (the model re-loaded from the folder, as traduire reads it), alone
and in padded batches. A seed is kept only if every greedy step and beam decision has a gap of
at least MIN_GAP, so no output depends on rounding. The weights are random: nonsense output.
"""

import json
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

torch.set_num_threads(1)
torch.use_deterministic_algorithms(True)

import transformers  # noqa: E402
from transformers import MarianMTModel, MarianTokenizer  # noqa: E402
from transformers.utils import logging as hf_logging  # noqa: E402

hf_logging.set_verbosity_error()

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_model_fixtures import (  # noqa: E402
    ATTN_IMPL,
    EXTRA_SENTENCES,
    MAX_NEW_TOKENS,
    MIN_GAP,
    NUM_BEAMS,
    OUT_DIR,
    TOK_DIR,
    f32,
    marian_config_from,
    opus_style_config,
    opus_style_generation_config,
    pad_batch,
    replay_beam,
    strip,
)

FOLDER = OUT_DIR / "tiny-big"
EOS = 1000
D_MODEL, LAYERS, HEADS, FFN, MAX_POS = 32, 2, 4, 128, 1024
SEEDS = range(3000, 3040)
EOS_BIAS = [20.0, 40.0, 60.0, 80.0, 100.0]


def permuted_vocab():
    vocab = json.loads((TOK_DIR / "vocab.json").read_text())
    assert vocab["</s>"] == 0
    by_id = {i: p for p, i in vocab.items()}
    moved = by_id[EOS]
    vocab["</s>"], vocab[moved] = EOS, 0
    return vocab


def tokenizer_dir(into, vocab):
    for f in ("source.spm", "target.spm"):
        shutil.copyfile(TOK_DIR / f, Path(into) / f)
    (Path(into) / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False, indent=1) + "\n")
    (Path(into) / "tokenizer_config.json").write_text(
        json.dumps({"source_lang": "fr", "target_lang": "en", "separate_vocabs": False}) + "\n")
    return Path(into)


def config(vocab_size, pad):
    cfg = opus_style_config(vocab_size, pad, D_MODEL, LAYERS, LAYERS, HEADS, FFN, "relu", MAX_POS)
    cfg.update({"_name_or_path": "traduire-tiny-big-fixture", "eos_token_id": EOS, "forced_eos_token_id": EOS,
                "torch_dtype": "float16"})
    gen = opus_style_generation_config(pad)
    gen.update({"eos_token_id": EOS, "forced_eos_token_id": EOS})
    return cfg, gen


@torch.no_grad()
def init(model, seed, eos_bias):
    g = torch.Generator().manual_seed(seed)
    for name, p in model.named_parameters():
        if "layer_norm" in name:
            p.copy_(1.0 + 0.1 * torch.randn(p.shape, generator=g) if name.endswith("weight")
                    else 0.1 * torch.randn(p.shape, generator=g))
        elif name.endswith("bias"):
            p.copy_(0.1 * torch.randn(p.shape, generator=g))
        else:
            p.copy_(torch.randn(p.shape, generator=g) / (p.shape[-1] ** 0.5 if p.dim() > 1 else 1.0))
    model.model.shared.weight.mul_(D_MODEL ** 0.5)  # embeddings of std ~1, as the other fixtures
    model.model.decoder.layers[-1].final_layer_norm.weight.mul_(6.0)
    bias = torch.randn(model.final_logits_bias.shape, generator=g)
    bias[0, EOS] += eos_bias
    model.final_logits_bias.copy_(bias)


def save(model, cfg, gen, vocab):
    if FOLDER.exists():
        shutil.rmtree(FOLDER)
    FOLDER.mkdir(parents=True)
    (FOLDER / "config.json").write_text(json.dumps(cfg, indent=2) + "\n")
    (FOLDER / "generation_config.json").write_text(json.dumps(gen, indent=2) + "\n")
    (FOLDER / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False, indent=1) + "\n")
    (FOLDER / "tokenizer_config.json").write_text(
        json.dumps({"source_lang": "fr", "target_lang": "en", "separate_vocabs": False}) + "\n")
    from safetensors.torch import save_file

    sd = {k: v.detach().to(torch.float16).contiguous() for k, v in model.state_dict().items()
          if "embed_positions" not in k and k not in
          ("model.encoder.embed_tokens.weight", "model.decoder.embed_tokens.weight", "lm_head.weight")}
    save_file(dict(sorted(sd.items())), str(FOLDER / "model.safetensors"), metadata={"format": "pt"})


def reload():
    with tempfile.TemporaryDirectory() as full:
        for f in FOLDER.iterdir():
            shutil.copyfile(f, Path(full) / f.name)
        for f in ("source.spm", "target.spm"):
            shutil.copyfile(TOK_DIR / f, Path(full) / f)
        model = MarianMTModel.from_pretrained(full, attn_implementation=ATTN_IMPL, dtype=torch.float32)
    return model.eval()


@torch.no_grad()
def greedy(model, ids, pad):
    out = model.generate(input_ids=torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                         num_beams=1, do_sample=False, max_new_tokens=MAX_NEW_TOKENS,
                         return_dict_in_generate=True, output_scores=True)
    seq = strip(out.sequences[0].tolist(), pad)
    total, gaps = 0.0, []
    for step, t in enumerate(seq):
        s = out.scores[step][0]
        total += float(s[t])
        top = torch.topk(s, 2)
        if torch.isfinite(top.values[1]):
            gaps.append(float(top.values[0] - top.values[1]))
    return seq, total / len(seq), gaps


@torch.no_grad()
def beam(model, ids, pad):
    out = model.generate(input_ids=torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                         num_beams=NUM_BEAMS, num_return_sequences=NUM_BEAMS, max_new_tokens=MAX_NEW_TOKENS,
                         do_sample=False, return_dict_in_generate=True, output_scores=True)
    hyps = [{"ids": strip(out.sequences[k].tolist(), pad), "score": f32(out.sequences_scores[k])}
            for k in range(NUM_BEAMS)]
    replayed, cand_gaps, _, _ = replay_beam([s.numpy() for s in out.scores], NUM_BEAMS, EOS, MAX_NEW_TOKENS + 1,
                                            1.0, False)
    assert replayed[0][0] == hyps[0]["ids"], (replayed[0], hyps[0])
    return hyps, cand_gaps


@torch.no_grad()
def batched(model, inputs, pad, beams):
    res = []
    for start in range(0, len(inputs), 6):
        chunk = inputs[start:start + 6]
        ids, mask = pad_batch(chunk, pad)
        out = model.generate(input_ids=ids, attention_mask=mask, num_beams=beams, do_sample=False,
                             max_new_tokens=MAX_NEW_TOKENS)
        res += [strip(out[r].tolist(), pad) for r in range(len(chunk))]
    return res


def main():
    vocab = permuted_vocab()
    pad = len(vocab) - 1
    assert vocab["<pad>"] == pad
    with tempfile.TemporaryDirectory() as d:
        tok = MarianTokenizer.from_pretrained(str(tokenizer_dir(d, vocab)))
    assert tok.eos_token_id == EOS
    texts = EXTRA_SENTENCES[:24]
    inputs = [tok(t).input_ids for t in texts]
    assert all(i[-1] == EOS for i in inputs)
    cfg, gen = config(len(vocab), pad)
    for seed in SEEDS:
        for eos_bias in EOS_BIAS:
            model = MarianMTModel._from_config(marian_config_from(cfg), attn_implementation=ATTN_IMPL).eval()
            init(model, seed, eos_bias)
            save(model, cfg, gen, vocab)
            model = reload()
            model.generation_config = transformers.GenerationConfig(
                **{k: v for k, v in gen.items() if k != "transformers_version"})
            greedy_out = [greedy(model, ids, pad) for ids in inputs]
            natural = sum(len(s) < MAX_NEW_TOKENS for s, _, _ in greedy_out)
            if natural < len(inputs) // 3:
                continue
            beam_out = [beam(model, ids, pad) for ids in inputs]
            min_greedy = min(g for _, _, gaps in greedy_out for g in gaps)
            min_beam = min(g for _, gaps in beam_out for g in gaps)
            print(f"seed {seed} bias {eos_bias}: natural EOS {natural}/{len(inputs)}, "
                  f"gaps {min_greedy:.4f} {min_beam:.4f}", flush=True)
            if min_greedy > MIN_GAP and min_beam > MIN_GAP:
                break
        else:
            continue
        break
    else:
        sys.exit("no seed satisfied the gap condition")
    ref = {
        "description": "transformers reference for tests/fixtures/marian/tiny-big (scripts/make_big_fixture.py): "
                       "tc-big quirks at tiny size (eos != 0, relu, 1024 positions, float16 weights)",
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__, "numpy": np.__version__},
        "settings": {"seed": seed, "eos_bias": eos_bias, "eos_token_id": EOS, "pad_token_id": pad,
                     "max_new_tokens": MAX_NEW_TOKENS, "num_beams": NUM_BEAMS, "dtype": "float32 on float16 weights",
                     "min_greedy_gap": min_greedy, "min_beam_gap": min_beam},
        "texts": texts,
        "inputs": inputs,
        "greedy": [{"ids": s, "score": f32(score)} for s, score, _ in greedy_out],
        "beam": [hyps for hyps, _ in beam_out],
        "greedy_batched": batched(model, inputs, pad, 1),
        "beam_batched": batched(model, inputs, pad, NUM_BEAMS),
    }
    (FOLDER / "reference.json").write_text(json.dumps(ref, separators=(",", ":")) + "\n")
    print({p.name: p.stat().st_size for p in sorted(FOLDER.iterdir())})


if __name__ == "__main__":
    main()
