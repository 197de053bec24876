#!/usr/bin/env python3
"""Train the copy model fixture: a tiny Marian that copies its French input, token for token,
with head 0 of its last decoder layer supervised toward the identity alignment.

    /work/venv/bin/python scripts/train_copy_model.py            # writes tests/fixtures/marian/copy/

Why: the random tiny models translate into nonsense, so their alignments say nothing about
where an inline tag belongs. A model that copies, and whose alignment head was trained the way
Marian's guided alignment trains opus-mt (a cross-entropy between head 0 of the last decoder
layer's cross-attention and a given alignment, here the diagonal), must give back every
document unchanged, with every alignment on the diagonal. That proves the whole markup
pipeline (alignment, projection, writers) end to end.

The model uses the shared tokenizer fixture (tests/fixtures/tokenizer/, joint vocabulary of
1,356 pieces), so text made of pieces the vocabulary lacks comes back as SentencePiece
normalizes and decodes it: <unk> pieces are dropped. Training data: sentences of
scripts/corpus/{fr,en}.txt, the seed article, and random id sequences (lengths 1 to
MAX_LEN), so that it copies any sequence of known pieces, not only the sentences it saw.

Deterministic for a given machine (fixed seed, fixed step count); the committed fixture is the
artifact, and copy.json records what it was checked against: exact copies with greedy and beam
search and diagonal alignments on held-out sentences and random sequences.
"""

import json
import math
import random
import sys
import tempfile
import time
from pathlib import Path

import torch

torch.manual_seed(20261207)
random.seed(20261207)
torch.set_num_threads(2)

import transformers  # noqa: E402
from transformers import MarianMTModel, MarianTokenizer  # noqa: E402
from transformers.utils import logging as hf_logging  # noqa: E402

hf_logging.set_verbosity_error()

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_model_fixtures import (  # noqa: E402
    ATTN_IMPL,
    OUT_DIR,
    TOK_DIR,
    full_folder,
    marian_config_from,
    opus_style_config,
    opus_style_generation_config,
    seed_sentences,
)

ROOT = Path(__file__).resolve().parent.parent
FOLDER = OUT_DIR / "copy"
D_MODEL, LAYERS, HEADS, FFN = 64, 2, 4, 256
MAX_POS = 256
MAX_LEN = 200  # longest training sequence, </s> included: traduire's default sentence limit
# A curriculum: sequences up to SHORT tokens first (copying is learnt fast there), then up to
# MAX_LEN, so that a sentence of any length traduire sends in one piece is copied.
SHORT = 96
STEPS = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
SHORT_STEPS = STEPS * 3 // 5
BATCH = 48
LR = 2e-3
ALIGN_WEIGHT = 1.0
# Held-out sentences: written for this check, never trained on.
HELD_OUT = [
    "Le président de la République a reçu les syndicats à l'Élysée.",
    "Selon le ministère, 3 500 personnes ont été évacuées dimanche soir.",
    "« Nous ne céderons pas », a déclaré la maire de Paris, Anne Hidalgo.",
    "La Russie et les États-Unis doivent interagir de manière constructive.",
    "Les prix de l'énergie ont augmenté de 12,5 % en un an.",
    "Il pleut.",
    "Voir aussi : notre dossier spécial sur les élections européennes de 2024.",
    "Cliquez ici pour lire l'article complet sur le site du journal.",
]


def corpus_sentences(tok):
    lines = []
    for name in ("fr.txt", "en.txt"):
        lines += [l.strip() for l in (ROOT / "scripts" / "corpus" / name).read_text(encoding="utf-8").splitlines()]
    lines += seed_sentences(tok, max_tokens=MAX_LEN)
    out = []
    for line in lines:
        if not line or line in HELD_OUT:
            continue
        ids = tok(line).input_ids
        if len(ids) <= MAX_LEN:
            out.append(ids)
        # Sentences cut into clauses too: more short examples with real statistics.
        for clause in line.split(", "):
            ids = tok(clause).input_ids
            if 2 <= len(ids) <= MAX_LEN:
                out.append(ids)
    return out


def random_sequence(vocab, specials, rng, max_len=MAX_LEN):
    n = rng.choice([rng.randint(1, 12), rng.randint(1, 40), rng.randint(1, max_len - 1)])
    ids = []
    while len(ids) < n:
        t = rng.randrange(vocab)
        if t not in specials:
            ids.append(t)
    return ids + [0]


def make_batch(examples, pad):
    src_len = max(len(e) for e in examples)
    ids = torch.full((len(examples), src_len), pad, dtype=torch.long)
    mask = torch.zeros((len(examples), src_len), dtype=torch.long)
    dec = torch.full((len(examples), src_len), pad, dtype=torch.long)
    labels = torch.full((len(examples), src_len), -100, dtype=torch.long)
    for b, e in enumerate(examples):
        ids[b, : len(e)] = torch.tensor(e)
        mask[b, : len(e)] = 1
        dec[b, : len(e)] = torch.tensor([pad] + e[:-1])
        labels[b, : len(e)] = torch.tensor(e)
    return ids, mask, dec, labels


def train(model, tok, pad):
    data = corpus_sentences(tok)
    specials = {0, 1, pad}
    vocab = model.config.vocab_size
    rng = random.Random(7)
    opt = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=0.0)
    warmup = 300
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min((s + 1) / warmup, 0.5 * (1 + math.cos(math.pi * min(s, STEPS) / STEPS))))
    model.train()
    started = time.time()
    for step in range(STEPS):
        short = step < SHORT_STEPS
        max_len = SHORT if short else MAX_LEN
        pool = [e for e in data if len(e) <= max_len] if short else data
        # Long batches cost more: fewer rows, about the same tokens per step.
        rows = BATCH if short else BATCH // 2
        examples = [rng.choice(pool) if rng.random() < 0.5 else random_sequence(vocab, specials, rng, max_len)
                    for _ in range(rows)]
        ids, mask, dec, labels = make_batch(examples, pad)
        out = model(input_ids=ids, attention_mask=mask, decoder_input_ids=dec, labels=labels,
                    output_attentions=True)
        att = out.cross_attentions[-1][:, 0]  # (batch, tgt, src): row t should sit on source t
        diag = torch.diagonal(att, dim1=1, dim2=2)  # (batch, len)
        valid = (labels != -100).float()
        align_loss = -(torch.log(diag.clamp_min(1e-9)) * valid).sum() / valid.sum()
        loss = out.loss + ALIGN_WEIGHT * align_loss
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        if step % 250 == 0 or step == STEPS - 1:
            print(f"step {step}: loss {out.loss.item():.4f} align {align_loss.item():.4f} "
                  f"({time.time() - started:.0f} s)", flush=True)
    model.eval()
    return time.time() - started


@torch.no_grad()
def check(model, tok, pad, sequences):
    """Exact copies (greedy and beam 4) and diagonal hard alignments, as traduire computes them."""
    greedy_ok = beam_ok = diagonal = tokens = 0
    for ids in sequences:
        src = torch.tensor([ids])
        for beams in (1, 4):
            out = model.generate(src, attention_mask=torch.ones_like(src), num_beams=beams,
                                 max_new_tokens=len(ids) + 10, do_sample=False)
            got = out[0, 1:].tolist()
            ok = got == ids
            greedy_ok += ok and beams == 1
            beam_ok += ok and beams == 4
        dec = torch.tensor([[pad] + ids[:-1]])
        att = model(input_ids=src, decoder_input_ids=dec, output_attentions=True).cross_attentions[-1][0, 0]
        for t in range(len(ids) - 1):  # </s> excluded on both sides, as traduire's hard alignment
            tokens += 1
            diagonal += int(att[t, : len(ids) - 1].argmax().item() == t)
    return {"sequences": len(sequences), "greedy_exact": greedy_ok, "beam4_exact": beam_ok,
            "alignment_tokens": tokens, "alignment_diagonal": diagonal}


def main():
    tok = MarianTokenizer.from_pretrained(str(TOK_DIR))
    pad = tok.pad_token_id
    vocab = len(tok.get_vocab())
    cfg_json = opus_style_config(vocab, pad, D_MODEL, LAYERS, LAYERS, HEADS, FFN, "swish", MAX_POS)
    cfg_json["_name_or_path"] = "traduire-copy-fixture"
    cfg_json["dropout"] = 0.0
    # Generation may not run past the positions: max_length is the model's positions.
    cfg_json["max_length"] = MAX_POS
    gen_json = opus_style_generation_config(pad)
    gen_json["max_length"] = MAX_POS
    model = MarianMTModel._from_config(marian_config_from(cfg_json), attn_implementation=ATTN_IMPL)
    seconds = train(model, tok, pad)

    FOLDER.mkdir(parents=True, exist_ok=True)
    (FOLDER / "config.json").write_text(json.dumps(cfg_json, indent=2) + "\n")
    (FOLDER / "generation_config.json").write_text(json.dumps(gen_json, indent=2) + "\n")
    from safetensors.torch import save_file

    sd = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()
          if "embed_positions" not in k and k not in
          ("model.encoder.embed_tokens.weight", "model.decoder.embed_tokens.weight", "lm_head.weight")}
    save_file(dict(sorted(sd.items())), str(FOLDER / "model.safetensors"), metadata={"format": "pt"})

    # Check the model as saved, reloaded like any checkpoint.
    with tempfile.TemporaryDirectory() as full:
        saved = MarianMTModel.from_pretrained(str(full_folder(FOLDER, full)), attn_implementation=ATTN_IMPL,
                                              dtype=torch.float32)
    saved.eval()
    rng = random.Random(99)
    held_out = [tok(s).input_ids for s in HELD_OUT]
    randoms = [random_sequence(vocab, {0, 1, pad}, rng) for _ in range(40)]
    # The longest sequences it must copy.
    randoms += [random_sequence(vocab, {0, 1, pad}, rng, MAX_LEN)[: MAX_LEN - 1] + [0] for _ in range(4)]
    report = {
        "description": "copy model trained by scripts/train_copy_model.py: copies its input; head 0 of the "
                       "last decoder layer trained toward the identity alignment",
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__},
        "settings": {"d_model": D_MODEL, "layers": LAYERS, "heads": HEADS, "ffn": FFN, "steps": STEPS,
                     "short_steps": SHORT_STEPS, "short_len": SHORT, "batch": BATCH, "lr": LR, "align_weight": ALIGN_WEIGHT, "max_len": MAX_LEN,
                     "train_seconds": round(seconds, 1)},
        "held_out_sentences": HELD_OUT,
        "held_out": check(saved, tok, pad, held_out),
        "random_sequences": check(saved, tok, pad, randoms),
    }
    (FOLDER / "copy.json").write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    print(json.dumps(report["held_out"]), json.dumps(report["random_sequences"]))


if __name__ == "__main__":
    main()
