#!/usr/bin/env python3
"""Create a randomly initialised checkpoint with the exact Helsinki-NLP/opus-mt-fr-en architecture,
for benchmarks when the Hugging Face Hub is unreachable. Never written into the repository.

    /work/venv/bin/python scripts/make_bench_model.py [OUT_DIR]
    /work/venv/bin/python scripts/make_bench_model.py --tc-big [OUT_DIR]

--tc-big makes Helsinki-NLP/opus-mt-tc-big-fr-en's architecture instead (d_model 1024, 6+6
layers, 16 heads, ffn 4096, relu, vocab 53017, </s> = 43311, pad = decoder start = 53016, 1024
positions), stored in float16 like that checkpoint (~460 MB), into
${TRADUIRE_CACHE:-$HOME/.cache/traduire}/opus-mt-tc-big-fr-en-random/.

OUT_DIR defaults to ${TRADUIRE_CACHE:-$HOME/.cache/traduire}/opus-mt-fr-en-random/ and gets:
  config.json, generation_config.json   the real opus-mt-fr-en fields (d_model 512, 6+6 layers, 8 heads,
                                        ffn 2048, swish, vocab 59514, pad = decoder_start = 59513, eos 0,
                                        bad_words_ids [[59513]], num_beams 4, max_length 512,
                                        renormalize_logits true)
  model.safetensors                     fp32, ~300 MB, seed 0 (one copy of the tied embedding)
  source.spm, target.spm, tokenizer_config.json
                                        from tests/fixtures/tokenizer/ (the tiny test tokenizer)
  vocab.json                            the tiny vocabulary's pieces at their ids, filler entries
                                        "<filler_N>" up to 59512, "<pad>" = 59513
  ct2-float32/, ct2-int8/               CTranslate2 conversions (TransformersConverter)
Translations are meaningless (random weights); only speed matters.
"""

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

import torch

torch.set_num_threads(int(os.environ.get("TORCH_THREADS", "1")))

from transformers import MarianConfig, MarianMTModel  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_model_fixtures import opus_style_config, opus_style_generation_config, marian_config_from  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
TOK_DIR = ROOT / "tests" / "fixtures" / "tokenizer"
ARCHITECTURES = {
    # name: vocab, eos, d_model, layers, heads, ffn, activation, positions, storage dtype
    "opus-mt-fr-en": dict(vocab=59514, eos=0, d=512, layers=6, heads=8, ffn=2048, act="swish", pos=512,
                          dtype=torch.float32),
    "opus-mt-tc-big-fr-en": dict(vocab=53017, eos=43311, d=1024, layers=6, heads=16, ffn=4096, act="relu",
                                 pos=1024, dtype=torch.float16),
}


def default_out(name):
    base = os.environ.get("TRADUIRE_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "traduire")
    return Path(base) / f"{name}-random"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out_dir", nargs="?", type=Path,
                        help="where the checkpoint goes (default: under $TRADUIRE_CACHE or ~/.cache/traduire)")
    parser.add_argument("--tc-big", action="store_true",
                        help="Helsinki-NLP/opus-mt-tc-big-fr-en's architecture instead of opus-mt-fr-en's")
    args = parser.parse_args()
    name = "opus-mt-tc-big-fr-en" if args.tc_big else "opus-mt-fr-en"
    arch = ARCHITECTURES[name]
    VOCAB, EOS = arch["vocab"], arch["eos"]
    PAD = VOCAB - 1
    out = args.out_dir or default_out(name)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    cfg = opus_style_config(VOCAB, PAD, arch["d"], arch["layers"], arch["layers"], arch["heads"], arch["ffn"],
                            arch["act"], arch["pos"])
    cfg["_name_or_path"] = f"traduire-random-{name}"
    gen = opus_style_generation_config(PAD)
    for c in (cfg, gen):
        c["eos_token_id"] = c["forced_eos_token_id"] = EOS
    torch.manual_seed(0)
    model = MarianMTModel(marian_config_from(cfg)).eval()
    with torch.no_grad():
        # the default init (std 0.02, zero final_logits_bias) gives near-uniform outputs; fine for speed,
        # but a larger embedding std makes greedy/beam paths less degenerate.
        model.model.shared.weight.normal_(0.0, 0.05)
    t1 = time.time()
    from safetensors.torch import save_file

    sd = {k: v.detach().to(arch["dtype"]).contiguous() for k, v in model.state_dict().items()
          if "embed_positions" not in k and k not in ("model.encoder.embed_tokens.weight",
                                                      "model.decoder.embed_tokens.weight", "lm_head.weight")}
    save_file(dict(sorted(sd.items())), str(out / "model.safetensors"), metadata={"format": "pt"})
    (out / "config.json").write_text(json.dumps(cfg, indent=2) + "\n")
    (out / "generation_config.json").write_text(json.dumps(gen, indent=2) + "\n")
    for f in ("source.spm", "target.spm", "tokenizer_config.json"):
        shutil.copyfile(TOK_DIR / f, out / f)
    tiny = json.loads((TOK_DIR / "vocab.json").read_text())
    tiny_pad = tiny["<pad>"]
    by_id = {i: p for p, i in tiny.items() if i != tiny_pad}
    # </s> at the architecture's id (the piece there moves to 0).
    if EOS != 0:
        by_id[0], by_id[EOS] = by_id.get(EOS, f"<filler_{EOS}>"), "</s>"
    vocab = {}
    for i in range(PAD):
        vocab[by_id.get(i, f"<filler_{i}>")] = i
    vocab["<pad>"] = PAD
    assert len(vocab) == VOCAB, len(vocab)
    (out / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False, indent=2) + "\n")
    t2 = time.time()
    print(f"created model in {t1 - t0:.1f}s, saved in {t2 - t1:.1f}s -> {out}", flush=True)

    import ctranslate2

    for quant, sub in (("float32", "ct2-float32"), ("int8", "ct2-int8")):
        t = time.time()
        conv = ctranslate2.converters.TransformersConverter(str(out))
        conv.convert(str(out / sub), quantization=quant, force=True)
        print(f"ctranslate2 {sub}: {time.time() - t:.1f}s", flush=True)

    for p in sorted(out.rglob("*")):
        if p.is_file():
            print(f"{p.stat().st_size:>12}  {p.relative_to(out)}")


if __name__ == "__main__":
    main()
