#!/usr/bin/env python3
"""Build the tiny Marian model fixtures and their transformers reference outputs.

    /work/venv/bin/python scripts/make_model_fixtures.py

Needs the tokenizer fixture (tests/fixtures/tokenizer/, written by make_tokenizer_fixtures.py,
marker file READY). Writes, deterministically (fixed seeds, single thread, fp32, eval mode,
torch.use_deterministic_algorithms):

  tests/fixtures/marian/tiny-swish/   d_model 32, 2+3 layers, 4 heads, ffn 64, "swish",
                                      max_position_embeddings 512, model.safetensors (save_pretrained)
  tests/fixtures/marian/tiny-relu/    d_model 40, 3+2 layers, 5 heads, ffn 96, "relu",
                                      max_position_embeddings 128, pytorch_model.bin (torch.save of a
                                      state dict that holds the token embeddings only as
                                      model.encoder.embed_tokens.weight and lm_head.weight, no
                                      model.shared.weight / model.decoder.embed_tokens.weight)

Each folder holds the checkpoint's own files (the tokenizer files are stored once, in
tests/fixtures/tokenizer/; tests/common/mod.rs assembles complete folders): config.json and
generation_config.json laid out like Helsinki-NLP/opus-mt-fr-en's
(bad_words_ids [[pad]], decoder_start = pad, eos 0, forced_eos 0, max_length 512, num_beams 4,
renormalize_logits true), the weights, and reference.json (see build_reference()).
The references are computed on the model *re-loaded from the folder* with
MarianMTModel.from_pretrained, so they describe exactly what is on disk.

The weights are random. final_logits_bias is random with a positive bias on EOS, chosen from a fixed
grid so that about half of the greedy outputs end with a natural EOS (the rest reach
max_new_tokens, where EOS is forced). Seeds are tried in a fixed order until every greedy step and
every beam step has a gap > MIN_GAP (log-prob units) between each selected candidate and the next
one, so no decision depends on float rounding; the minimum gaps are recorded in reference.json.
"""

import json
import math
import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

torch.set_num_threads(1)
torch.use_deterministic_algorithms(True)

import transformers  # noqa: E402
from transformers import MarianConfig, MarianMTModel, MarianTokenizer  # noqa: E402
from transformers.utils import logging as hf_logging  # noqa: E402

hf_logging.set_verbosity_error()

ROOT = Path(__file__).resolve().parent.parent
TOK_DIR = ROOT / "tests" / "fixtures" / "tokenizer"
OUT_DIR = ROOT / "tests" / "fixtures" / "marian"
SEED_ARTICLE = ROOT / "seeds" / "000_63993c6b9a9c911d.txt"
SEED_ARTICLE_FALLBACK = Path("/work/shared/seeds/000_63993c6b9a9c911d.txt")
TOKENIZER_FILES = ["source.spm", "target.spm", "vocab.json", "tokenizer_config.json"]

MIN_GAP = 1e-3
# Beam gaps checked: at each step, between ranks nb-1/nb and 2nb-1/2nb of the accumulated candidates and
# between the nb-th and (nb+1)-th non-finished candidate (the decisions that change the result; the order
# inside those groups does not). Gaps between finished hypotheses (n-best order) are reported too.
MAX_NEW_TOKENS = 24
NUM_BEAMS = 4
ATTN_IMPL = "eager"

MODELS = {
    "tiny-swish": dict(
        d_model=32, encoder_layers=2, decoder_layers=3, heads=4, ffn=64, act="swish", max_pos=512,
        fmt="safetensors", seeds=list(range(1000, 1040)),
    ),
    "tiny-relu": dict(
        d_model=40, encoder_layers=3, decoder_layers=2, heads=5, ffn=96, act="relu", max_pos=128,
        fmt="bin", seeds=list(range(2000, 2040)),
    ),
}
# Initialisation scales (see init_weights). LAST_LN_GAIN scales the last decoder layer norm so the
# logits are spread widely (std ~ 15-20): top-2 gaps then rarely fall under MIN_GAP.
EMB_STD = 1.0
LAST_LN_GAIN = 6.0
EOS_BIAS_GRID = [0.0, 10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0, 100.0, 120.0]

EXTRA_SENTENCES = [
    "",
    "Oui",
    "Non.",
    "Bonjour !",
    "Merci beaucoup.",
    "Le chat dort.",
    "Où est la gare ?",
    "Il fait beau aujourd'hui.",
    "Je ne sais pas.",
    "C'est la vie.",
    "Nous avons mangé des pommes et des poires.",
    "L'économie française a progressé de 0,7 % au troisième trimestre.",
    "Les enfants jouent dans le jardin pendant que leurs parents préparent le dîner.",
    "« Pourquoi pas ? », a-t-il demandé.",
    "Le train de 8 h 15 est annoncé avec vingt minutes de retard.",
    "Elle a écrit trois livres, deux pièces de théâtre et une centaine de poèmes.",
    "Ça coûte 12,50 € — trop cher !",
    "Après la réunion, le ministre a déclaré que le gouvernement présenterait un nouveau projet de loi sur l'énergie avant la fin du mois de janvier.",
]


# ----------------------------------------------------------------------------------------------
# inputs


def seed_sentences(tok, max_tokens=70):
    path = SEED_ARTICLE if SEED_ARTICLE.exists() else SEED_ARTICLE_FALLBACK
    out = []
    for para in path.read_text(encoding="utf-8").split("\n"):
        para = para.strip()
        if not para:
            continue
        # sentence split on ". " (keeps the article's sentences), then clause split if too long
        pieces, buf = [], ""
        for part in para.replace(". ", ".\u0000").split("\u0000"):
            pieces.append(part.strip())
        for s in pieces:
            if not s:
                continue
            if len(tok(s).input_ids) <= max_tokens:
                out.append(s)
                continue
            chunk = ""
            for clause in s.split(", "):
                cand = clause if not chunk else chunk + ", " + clause
                if len(tok(cand).input_ids) <= max_tokens:
                    chunk = cand
                else:
                    if chunk:
                        out.append(chunk)
                    chunk = clause
            if chunk:
                out.append(chunk)
    return out


def build_inputs(tok):
    texts = EXTRA_SENTENCES + seed_sentences(tok)
    ids = [tok(t).input_ids for t in texts]
    return texts, ids


# ----------------------------------------------------------------------------------------------
# model creation


def opus_style_config(vocab_size, pad, d_model, enc_layers, dec_layers, heads, ffn, act, max_pos):
    """config.json laid out like Helsinki-NLP/opus-mt-fr-en's (legacy generation keys included)."""
    return {
        "_name_or_path": "traduire-fixture",
        "_num_labels": 3,
        "activation_dropout": 0.0,
        "activation_function": act,
        "add_bias_logits": False,
        "add_final_layer_norm": False,
        "architectures": ["MarianMTModel"],
        "attention_dropout": 0.0,
        "bad_words_ids": [[pad]],
        "bos_token_id": 0,
        "classif_dropout": 0.0,
        "classifier_dropout": 0.0,
        "d_model": d_model,
        "decoder_attention_heads": heads,
        "decoder_ffn_dim": ffn,
        "decoder_layerdrop": 0.0,
        "decoder_layers": dec_layers,
        "decoder_start_token_id": pad,
        "decoder_vocab_size": vocab_size,
        "dropout": 0.1,
        "encoder_attention_heads": heads,
        "encoder_ffn_dim": ffn,
        "encoder_layerdrop": 0.0,
        "encoder_layers": enc_layers,
        "eos_token_id": 0,
        "forced_eos_token_id": 0,
        "gradient_checkpointing": False,
        "id2label": {"0": "LABEL_0", "1": "LABEL_1", "2": "LABEL_2"},
        "init_std": 0.02,
        "is_encoder_decoder": True,
        "label2id": {"LABEL_0": 0, "LABEL_1": 1, "LABEL_2": 2},
        "max_length": 512,
        "max_position_embeddings": max_pos,
        "model_type": "marian",
        "normalize_before": False,
        "normalize_embedding": False,
        "num_beams": NUM_BEAMS,
        "num_hidden_layers": enc_layers,
        "pad_token_id": pad,
        "scale_embedding": True,
        "share_encoder_decoder_embeddings": True,
        "static_position_embeddings": True,
        "tie_word_embeddings": True,
        "transformers_version": "4.32.0.dev0",
        "use_cache": True,
        "vocab_size": vocab_size,
    }


def opus_style_generation_config(pad):
    return {
        "bad_words_ids": [[pad]],
        "bos_token_id": 0,
        "decoder_start_token_id": pad,
        "eos_token_id": 0,
        "forced_eos_token_id": 0,
        "max_length": 512,
        "num_beams": NUM_BEAMS,
        "pad_token_id": pad,
        "renormalize_logits": True,
        "transformers_version": "4.32.0.dev0",
    }


def marian_config_from(cfg_json):
    keep = {
        k: v
        for k, v in cfg_json.items()
        if k
        not in ("_name_or_path", "architectures", "transformers_version", "id2label", "label2id", "_num_labels",
                "bad_words_ids", "max_length", "num_beams")
    }
    return MarianConfig(**keep)


@torch.no_grad()
def init_weights(model, spec, seed, eos_bias):
    g = torch.Generator().manual_seed(seed)

    def normal_(t, std, mean=0.0):
        t.copy_(torch.randn(t.shape, generator=g) * std + mean)

    d = spec["d_model"]
    normal_(model.model.shared.weight, EMB_STD)
    for name, mod in model.named_modules():
        if isinstance(mod, torch.nn.Linear) and not name.endswith("lm_head"):
            normal_(mod.weight, 1.0 / math.sqrt(mod.in_features))
            normal_(mod.bias, 0.1)
        elif isinstance(mod, torch.nn.LayerNorm):
            normal_(mod.weight, 0.1, 1.0)
            normal_(mod.bias, 0.1)
    last_ln = model.model.decoder.layers[-1].final_layer_norm
    last_ln.weight.mul_(LAST_LN_GAIN)
    bias = torch.randn(model.final_logits_bias.shape, generator=g) * 1.0
    bias[0, 0] += eos_bias
    model.final_logits_bias.copy_(bias)
    # keep tied weights tied
    model.model.encoder.embed_tokens.weight = model.model.shared.weight
    model.model.decoder.embed_tokens.weight = model.model.shared.weight
    model.lm_head.weight = model.model.shared.weight
    assert d % spec["heads"] == 0


def write_folder(folder, spec, cfg_json, gen_json, model):
    """Writes the checkpoint's own files. The tokenizer files are stored once, in TOK_DIR:
    tests/common/mod.rs (and full_folder below) add them to make a complete model folder."""
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps(cfg_json, indent=2) + "\n")
    (folder / "generation_config.json").write_text(json.dumps(gen_json, indent=2) + "\n")
    sd = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items() if "embed_positions" not in k}
    if spec["fmt"] == "safetensors":
        from safetensors.torch import save_file

        # one copy of the tied embedding, like save_pretrained writes it
        for k in ("model.encoder.embed_tokens.weight", "model.decoder.embed_tokens.weight", "lm_head.weight"):
            sd.pop(k, None)
        save_file(dict(sorted(sd.items())), str(folder / "model.safetensors"), metadata={"format": "pt"})
    else:
        # embeddings only under model.encoder.embed_tokens.weight and lm_head.weight
        emb = sd.pop("model.shared.weight")
        sd.pop("model.decoder.embed_tokens.weight", None)
        sd["model.encoder.embed_tokens.weight"] = emb.clone()
        sd["lm_head.weight"] = emb.clone()
        torch.save(dict(sorted(sd.items())), folder / "pytorch_model.bin")
    return sorted(sd.keys())


def full_folder(folder, into):
    """A complete model folder in `into`: the checkpoint's files plus the shared tokenizer."""
    for f in folder.iterdir():
        if f.suffix in (".json", ".safetensors", ".bin") and not f.name.startswith(("reference", "score", "guards", "alignment", "copy")):
            shutil.copyfile(f, Path(into) / f.name)
    for f in TOKENIZER_FILES:
        shutil.copyfile(TOK_DIR / f, Path(into) / f)
    return Path(into)


def load_folder(folder):
    with tempfile.TemporaryDirectory() as full:
        model = MarianMTModel.from_pretrained(str(full_folder(folder, full)), attn_implementation=ATTN_IMPL,
                                              dtype=torch.float32)
    model.eval()
    return model


# ----------------------------------------------------------------------------------------------
# generation helpers


def f32(x):
    """Shortest decimal that round-trips the float32 value."""
    return float(np.format_float_scientific(np.float32(x), unique=True))


def flist(t):
    return [f32(v) for v in t.reshape(-1).tolist()]


def pad_batch(id_lists, pad):
    n = max(len(x) for x in id_lists)
    ids = torch.tensor([x + [pad] * (n - len(x)) for x in id_lists], dtype=torch.long)
    mask = torch.tensor([[1] * len(x) + [0] * (n - len(x)) for x in id_lists], dtype=torch.long)
    return ids, mask


def strip(seq, pad):
    """generated ids without the decoder start token and without trailing padding"""
    seq = list(seq[1:])
    while seq and seq[-1] == pad:
        seq.pop()
    return seq


@torch.no_grad()
def greedy_one(model, ids, pad, lp=1.0):
    out = model.generate(
        input_ids=torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long),
        num_beams=1, do_sample=False, max_new_tokens=MAX_NEW_TOKENS,
        return_dict_in_generate=True, output_scores=True,
    )
    seq = strip(out.sequences[0].tolist(), pad)
    total, gaps = 0.0, []
    for step, tokid in enumerate(seq):
        s = out.scores[step][0]
        total += float(s[tokid])
        top2 = torch.topk(s, 2)
        assert int(top2.indices[0]) == tokid
        if torch.isfinite(top2.values[1]):
            gaps.append(float(top2.values[0] - top2.values[1]))
    return seq, total / (len(seq) ** lp), gaps


def replay_beam(step_scores, nb, eos, max_length, lp, early_stopping):
    """Re-run transformers' beam-search selection (generation/utils.py _beam_search, batch 1) on the
    processed per-step log-probs it recorded (output_scores). Returns the final hyps and the gaps
    between adjacent candidates at every decision point."""
    ninf = np.float32(-1e9)
    V = step_scores[0].shape[-1]
    running = np.array([0.0] + [-1e9] * (nb - 1), dtype=np.float32)
    running_seqs = [[] for _ in range(nb)]
    fin_scores = np.full(nb, -1e9, dtype=np.float32)
    fin_seqs = [None] * nb
    fin_flag = np.zeros(nb, dtype=bool)
    unsatisfied = True
    cur_len = 1
    cand_gaps, final_gaps, heur_margins = [], [], []
    for S in step_scores:
        acc = (S.astype(np.float32) + running[:, None]).reshape(-1)
        order = np.argsort(-acc, kind="stable")[: 2 * nb + 1]
        vals = acc[order]
        # decision boundaries: top-nb (may finish) vs rest, top-2nb vs rest
        for r in (nb - 1, 2 * nb - 1):
            a, b = vals[r], vals[r + 1]
            if np.isfinite(a) and np.isfinite(b) and a > -1e8 and b > -1e8:
                cand_gaps.append(float(a - b))
        top = order[: 2 * nb]
        top_scores = acc[top]
        beams, toks = top // V, top % V
        seqs = [running_seqs[b] + [int(t)] for b, t in zip(beams, toks)]
        hits = np.array([(t == eos) or (cur_len + 1 >= max_length) for t in toks])
        run_scores = (top_scores + hits.astype(np.float32) * ninf).astype(np.float32)
        sel_all = np.argsort(-run_scores, kind="stable")
        sel = sel_all[:nb]
        a, b = run_scores[sel_all[nb - 1]], run_scores[sel_all[nb]]
        if np.isfinite(a) and np.isfinite(b) and a > -1e8 and b > -1e8:
            cand_gaps.append(float(a - b))  # which running beams survive
        new_running = run_scores[sel]
        new_running_seqs = [seqs[i] for i in sel]
        norm = (top_scores / np.float32(cur_len ** lp)).astype(np.float32)
        full = bool(fin_flag.all()) and early_stopping is True
        did = hits & (np.arange(2 * nb) < nb)
        norm = norm + np.float32(full) * ninf + np.float32(not unsatisfied) * ninf + (~did).astype(np.float32) * ninf
        merged = np.concatenate([fin_scores, norm]).astype(np.float32)
        mseqs = fin_seqs + seqs
        mflag = np.concatenate([fin_flag, did])
        morder = np.argsort(-merged, kind="stable")
        for r in range(nb):
            a, b = merged[morder[r]], merged[morder[r + 1]]
            if a > -1e8 and b > -1e8 and mflag[morder[r]] and mflag[morder[r + 1]]:
                final_gaps.append(float(a - b))
        keep = morder[:nb]
        fin_scores, fin_seqs, fin_flag = merged[keep], [mseqs[i] for i in keep], mflag[keep]
        running, running_seqs = new_running, new_running_seqs
        cur_len += 1
        # early-stop heuristic
        if early_stopping == "never" and lp > 0.0:
            best_len = max_length - 1
        else:
            best_len = cur_len - 1
        best_possible = np.float32(running[0] / np.float32(best_len ** lp))
        worst = np.float32(fin_scores.min()) if fin_flag.all() else np.float32(-1e9)
        if fin_flag.all() and unsatisfied:
            heur_margins.append(abs(float(best_possible - worst)))
        unsatisfied = unsatisfied and bool(best_possible > worst)
        if not unsatisfied or (early_stopping is True and fin_flag.all()) or hits.all():
            break
    hyps = [(fin_seqs[i], float(fin_scores[i])) for i in range(nb) if fin_flag[i]]
    return hyps, cand_gaps, final_gaps, heur_margins


@torch.no_grad()
def beam_one(model, ids, pad, nret, lp=1.0, early_stopping=False, min_new_tokens=None):
    kw = dict(num_beams=NUM_BEAMS, num_return_sequences=nret, max_new_tokens=MAX_NEW_TOKENS,
              length_penalty=lp, early_stopping=early_stopping, do_sample=False,
              return_dict_in_generate=True, output_scores=True)
    if min_new_tokens is not None:
        kw["min_new_tokens"] = min_new_tokens
    out = model.generate(input_ids=torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long), **kw)
    hyps = [{"ids": strip(out.sequences[k].tolist(), pad), "score": f32(out.sequences_scores[k])} for k in range(nret)]
    step_scores = [s.numpy() for s in out.scores]
    rhyps, cg, fg, hm = replay_beam(step_scores, NUM_BEAMS, 0, MAX_NEW_TOKENS + 1, lp, early_stopping)
    for k, h in enumerate(hyps):
        assert rhyps[k][0] == h["ids"], ("beam replay mismatch", rhyps[k], h)
        assert abs(rhyps[k][1] - h["score"]) <= 1e-5 * max(1.0, abs(h["score"])), ("score mismatch", rhyps[k], h)
    return hyps, cg, fg, hm


@torch.no_grad()
def greedy_batched(model, inputs, pad):
    res = []
    for start in range(0, len(inputs), 8):
        chunk = list(range(start, min(start + 8, len(inputs))))
        ids, mask = pad_batch([inputs[i] for i in chunk], pad)
        out = model.generate(input_ids=ids, attention_mask=mask, num_beams=1, do_sample=False,
                             max_new_tokens=MAX_NEW_TOKENS)
        for r, i in enumerate(chunk):
            res.append({"input": i, "ids": strip(out[r].tolist(), pad)})
    return res


@torch.no_grad()
def beam_batched(model, inputs, pad):
    res = []
    for start in range(0, len(inputs), 8):
        chunk = list(range(start, min(start + 8, len(inputs))))
        ids, mask = pad_batch([inputs[i] for i in chunk], pad)
        out = model.generate(input_ids=ids, attention_mask=mask, num_beams=NUM_BEAMS, num_return_sequences=NUM_BEAMS,
                             max_new_tokens=MAX_NEW_TOKENS, length_penalty=1.0, do_sample=False,
                             return_dict_in_generate=True, output_scores=True)
        for r, i in enumerate(chunk):
            hyps = []
            for k in range(NUM_BEAMS):
                row = r * NUM_BEAMS + k
                hyps.append({"ids": strip(out.sequences[row].tolist(), pad), "score": f32(out.sequences_scores[row])})
            res.append({"input": i, "hyps": hyps})
    return res


# ----------------------------------------------------------------------------------------------


def try_build(name, spec, tok, texts, inputs, seed):
    vocab = json.loads((TOK_DIR / "vocab.json").read_text())
    V = len(vocab)
    pad = V - 1
    assert vocab["</s>"] == 0 and vocab["<unk>"] == 1 and vocab["<pad>"] == pad
    cfg_json = opus_style_config(V, pad, spec["d_model"], spec["encoder_layers"], spec["decoder_layers"],
                                 spec["heads"], spec["ffn"], spec["act"], spec["max_pos"])
    gen_json = opus_style_generation_config(pad)
    folder = OUT_DIR / name

    # 1. pick the EOS bias: ~half of the greedy outputs should end with a natural EOS
    best = None
    for eos_bias in EOS_BIAS_GRID:
        torch.manual_seed(seed)
        model = MarianMTModel(marian_config_from(cfg_json)).eval()
        init_weights(model, spec, seed, eos_bias)
        model.generation_config = transformers.GenerationConfig(**{k: v for k, v in gen_json.items() if k != "transformers_version"})
        natural = 0
        for ids in inputs:
            seq, _, _ = greedy_one(model, ids, pad)
            natural += len(seq) < MAX_NEW_TOKENS
        frac = natural / len(inputs)
        if best is None or abs(frac - 0.5) < abs(best[1] - 0.5):
            best = (eos_bias, frac)
        if frac >= 0.5:
            break
    eos_bias = best[0]
    torch.manual_seed(seed)
    model = MarianMTModel(marian_config_from(cfg_json)).eval()
    init_weights(model, spec, seed, eos_bias)
    keys = write_folder(folder, spec, cfg_json, gen_json, model)

    # 2. reload from disk and check it is the same model
    model = load_folder(folder)
    assert torch.equal(model.final_logits_bias, torch.as_tensor(model.final_logits_bias))
    return build_reference(name, spec, model, tok, texts, inputs, pad, seed, eos_bias, keys)


def build_reference(name, spec, model, tok, texts, inputs, pad, seed, eos_bias, keys):
    d = spec["d_model"]
    ref = {
        "description": f"transformers reference outputs for tests/fixtures/marian/{name} (scripts/make_model_fixtures.py)",
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__, "numpy": np.__version__},
        "settings": {
            "dtype": "float32", "attn_implementation": ATTN_IMPL, "deterministic_algorithms": True,
            "seed": seed, "eos_logit_bias": eos_bias, "emb_std": EMB_STD, "last_ln_gain": LAST_LN_GAIN,
            "checkpoint_keys": keys, "pad_token_id": pad, "decoder_start_token_id": pad, "eos_token_id": 0,
            "generation_config.json": "num_beams 4, max_length 512, bad_words_ids [[pad]], forced_eos 0, renormalize_logits true",
            "greedy": {"num_beams": 1, "do_sample": False, "max_new_tokens": MAX_NEW_TOKENS,
                       "score": "sum of processed (renormalised) log-probs of the chosen tokens incl. EOS / len(ids)**1.0"},
            "beam": {"num_beams": NUM_BEAMS, "num_return_sequences": NUM_BEAMS, "max_new_tokens": MAX_NEW_TOKENS,
                     "length_penalty": 1.0, "early_stopping": False, "score": "sequences_scores"},
            "batched": "padded batches of 8 consecutive inputs (right padding with pad id, attention_mask)",
            "ids": "generated ids, without the decoder start token, with the final EOS, without padding",
        },
        "texts": texts,
        "inputs": inputs,
    }
    enc_sel = [i for i in range(len(inputs)) if 8 <= len(inputs[i]) <= 30][:4]
    with torch.no_grad():
        enc = model.get_encoder()
        ref["encoder"] = []
        for i in enc_sel:
            h = enc(input_ids=torch.tensor([inputs[i]]), attention_mask=torch.ones(1, len(inputs[i]), dtype=torch.long)).last_hidden_state[0]
            ref["encoder"].append({"input": i, "shape": [len(inputs[i]), d], "hidden": flist(h)})
        trio = enc_sel[:3]
        ids, mask = pad_batch([inputs[i] for i in trio], pad)
        h = enc(input_ids=ids, attention_mask=mask).last_hidden_state
        ref["encoder_batch"] = {"inputs": trio, "shape": list(h.shape), "attention_mask": mask.tolist(), "hidden": flist(h)}
        ref["first_step_logits"] = []
        for i in enc_sel:
            out = model(input_ids=torch.tensor([inputs[i]]), attention_mask=torch.ones(1, len(inputs[i]), dtype=torch.long),
                        decoder_input_ids=torch.tensor([[pad]]))
            ref["first_step_logits"].append({"input": i, "logits": flist(out.logits[0, 0])})

    greedy_gaps, beam_gaps, final_gaps, heur = [], [], [], []
    ref["greedy"] = []
    natural = 0
    for i, ids in enumerate(inputs):
        seq, score, gaps = greedy_one(model, ids, pad)
        greedy_gaps += gaps
        natural += len(seq) < MAX_NEW_TOKENS
        ref["greedy"].append({"input": i, "ids": seq, "score": f32(score)})
    ref["greedy_batched"] = greedy_batched(model, inputs, pad)
    gb_equal = all(a["ids"] == b["ids"] for a, b in zip(ref["greedy"], ref["greedy_batched"]))
    ref["greedy_batched_equals_unbatched"] = gb_equal

    ref["beam"] = []
    for i, ids in enumerate(inputs):
        hyps, cg, fg, hm = beam_one(model, ids, pad, NUM_BEAMS)
        beam_gaps += cg
        final_gaps += fg
        heur += hm
        ref["beam"].append({"input": i, "hyps": hyps})
    ref["beam_batched"] = beam_batched(model, inputs, pad)
    bb_equal = all(a["hyps"] == b["hyps"] for a, b in zip(ref["beam"], ref["beam_batched"]))
    bb_ids_equal = all([h["ids"] for h in a["hyps"]] == [h["ids"] for h in b["hyps"]]
                       for a, b in zip(ref["beam"], ref["beam_batched"]))
    max_bb_diff = max(abs(x["score"] - y["score"]) for a, b in zip(ref["beam"], ref["beam_batched"])
                      for x, y in zip(a["hyps"], b["hyps"]))
    ref["beam_batched_ids_equal_unbatched"] = bb_ids_equal
    ref["beam_batched_scores_max_abs_diff"] = max_bb_diff

    n = len(inputs)
    sel_a = list(range(0, n, max(1, n // 10)))[:10]
    sel_b = list(range(1, n, max(1, n // 10)))[:10]
    ref["beam_options"] = []
    opt_a = {"num_beams": NUM_BEAMS, "num_return_sequences": 2, "max_new_tokens": MAX_NEW_TOKENS,
             "length_penalty": 0.6, "min_new_tokens": 5, "early_stopping": False}
    opt_b = {"num_beams": NUM_BEAMS, "num_return_sequences": NUM_BEAMS, "max_new_tokens": MAX_NEW_TOKENS,
             "length_penalty": 1.0, "early_stopping": True}
    for opts, sel in ((opt_a, sel_a), (opt_b, sel_b)):
        results = []
        for i in sel:
            hyps, cg, fg, hm = beam_one(model, inputs[i], pad, opts["num_return_sequences"], lp=opts["length_penalty"],
                                        early_stopping=opts["early_stopping"], min_new_tokens=opts.get("min_new_tokens"))
            beam_gaps += cg
            final_gaps += fg
            heur += hm
            results.append({"input": i, "hyps": hyps})
        ref["beam_options"].append({"settings": opts, "results": results})

    stats = {
        "min_greedy_gap": min(greedy_gaps),
        "min_beam_candidate_gap": min(beam_gaps),
        "min_finished_order_gap": min(final_gaps) if final_gaps else None,
        "min_early_stop_margin": min(heur) if heur else None,
        "greedy_natural_eos": natural,
        "greedy_hit_limit": n - natural,
        "greedy_batched_equals_unbatched": gb_equal,
        "beam_batched_ids_equal_unbatched": bb_ids_equal,
        "beam_batched_exactly_equal": bb_equal,
        "beam_batched_scores_max_abs_diff": max_bb_diff,
    }
    ref["stats"] = stats
    ok = stats["min_greedy_gap"] > MIN_GAP and stats["min_beam_candidate_gap"] > MIN_GAP
    return ok, ref, stats


def main():
    if not (TOK_DIR / "READY").exists():
        sys.exit(f"{TOK_DIR}/READY missing: run scripts/make_tokenizer_fixtures.py first")
    tok = MarianTokenizer.from_pretrained(str(TOK_DIR))
    texts, inputs = build_inputs(tok)
    only = sys.argv[1:] or list(MODELS)
    for name in only:
        spec = MODELS[name]
        for seed in spec["seeds"]:
            ok, ref, stats = try_build(name, spec, tok, texts, inputs, seed)
            print(f"{name} seed {seed}: {json.dumps(stats)}", flush=True)
            if ok:
                break
        else:
            sys.exit(f"{name}: no seed satisfied the gap > {MIN_GAP} condition")
        (OUT_DIR / name / "reference.json").write_text(json.dumps(ref, separators=(",", ":")) + "\n")
        sizes = {p.name: p.stat().st_size for p in sorted((OUT_DIR / name).iterdir())}
        print(f"{name}: {len(inputs)} inputs, files {sizes}", flush=True)


if __name__ == "__main__":
    main()
