#!/usr/bin/env python3
"""Throughput of traduire against peer engines on the same work.

Every engine translates the same token ids (the workload written by
`traduire bench --write-workload`), in the same batches (sorted by length, longest first,
cut into chunks of N, exactly as traduire does), and with forced lengths generates the same
number of tokens: every row of a batch generates exactly L = round(R x longest source of the
batch) tokens (source lengths count the final EOS). So the numbers compare work for work, even
on the randomly initialised checkpoint made by scripts/make_bench_model.py.

Engines (each measurement runs in a fresh process, one warm-up batch excluded from timing):
  traduire       target/release/traduire bench ... --json  (f32)
  traduire-int8  the same with --dtype int8
  transformers   MarianMTModel.generate, fp32, eval, no_grad, torch.set_num_threads(T)
  ct2-float32    ctranslate2.Translator(compute_type="float32")
  ct2-int8       ctranslate2.Translator(compute_type="int8")
  stock-candle   candle-transformers' Marian driven as candle's marian-mt example does
                 (greedy, batch 1 only): scripts/stock_candle

Configurations: greedy and beam 4, at batch 32 and at batch 1. Batch-1 runs use the first
--sentences sentences of the length-sorted workload (the longest ones), the same for every
engine; the table says how many sentences each configuration used.

Setup on a fresh machine:
  python3 -m venv ../venv && ../venv/bin/pip install -r scripts/requirements.txt
  ../venv/bin/python scripts/make_bench_model.py          # the random checkpoint + CT2 copies
  cargo build --release
  cargo build --release -j 1 --manifest-path scripts/stock_candle/Cargo.toml
  ../venv/bin/python scripts/bench_peers.py --out bench_peers.json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_MODEL = Path.home() / ".cache" / "traduire" / "opus-mt-fr-en-random"
DEFAULT_TRADUIRE = REPO / "target" / "release" / "traduire"
DEFAULT_STOCK = REPO / "scripts" / "stock_candle" / "target" / "release" / "stock-candle-marian-bench"

ENGINES = ["traduire", "traduire-int8", "transformers", "ct2-float32", "ct2-int8", "stock-candle"]
# name -> (beams, batch sentences)
CONFIGS = {
    "greedy-b32": (1, 32),
    "beam4-b32": (4, 32),
    "greedy-b1": (1, 1),
    "beam4-b1": (4, 1),
}


def model_eos(model_dir) -> int:
    """The checkpoint's </s> id: 0 for opus-mt-fr-en, 43311 for opus-mt-tc-big-fr-en."""
    return json.loads((Path(model_dir) / "config.json").read_text()).get("eos_token_id", 0)


# ----------------------------------------------------------------------------------------------
# Shared workload logic (identical to traduire's batching::sorted_chunks and bench.rs)


def sorted_order(sentences: list[list[int]]) -> list[int]:
    """Indices sorted by length, longest first, ties by index (traduire's order)."""
    return sorted(range(len(sentences)), key=lambda i: (-len(sentences[i]), i))


def chunks(sentences: list[list[int]], n: int) -> list[list[int]]:
    order = sorted_order(sentences)
    return [order[i : i + n] for i in range(0, len(order), n)]


def f32(x: float) -> float:
    """x rounded to an f32, as traduire parses --force-length."""
    return struct.unpack("f", struct.pack("f", x))[0]


def forced_length(ratio: float, longest: int) -> int:
    """max(1, round(R x longest)) with Rust's rounding (half away from zero) on f32(R) as f64."""
    return max(1, int(math.floor(f32(ratio) * longest + 0.5)))


def load_workload(path: Path, eos: int) -> list[list[int]]:
    sentences = json.loads(path.read_text())["sentences"]
    for i, s in enumerate(sentences):
        if not s or s[-1] != eos:
            raise SystemExit(f"{path}: sentence {i} does not end with EOS ({eos})")
    return sentences


def plan(sentences, batch, ratio):
    """[(indices, L)] per batch."""
    out = []
    for b in chunks(sentences, batch):
        out.append((b, forced_length(ratio, max(len(sentences[i]) for i in b))))
    return out


# ----------------------------------------------------------------------------------------------
# Workers: one measurement in this (fresh) process; print one JSON line.


def worker_transformers(a, sentences, batches):
    import torch
    from transformers import MarianMTModel
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    torch.set_num_threads(a.threads)
    t0 = time.perf_counter()
    model = MarianMTModel.from_pretrained(a.model_dir, dtype=torch.float32).eval()
    load_s = time.perf_counter() - t0
    pad = model.config.pad_token_id

    inputs = []
    for idx, L in batches:
        width = max(len(sentences[i]) for i in idx)
        rows = [sentences[i] + [pad] * (width - len(sentences[i])) for i in idx]
        ids = torch.tensor(rows, dtype=torch.long)
        inputs.append((ids, (ids != pad).long(), L))

    def run(ids, mask, L):
        out = model.generate(
            input_ids=ids,
            attention_mask=mask,
            num_beams=a.beams,
            min_new_tokens=L,
            max_new_tokens=L,
            do_sample=False,
        )
        # out = [decoder start] + L new tokens per row (the last one the forced EOS).
        new = out[:, 1:]
        eos = model.config.eos_token_id
        if new.shape != (ids.shape[0], L) or (new == pad).any() or (new[:, -1] != eos).any():
            raise RuntimeError(f"transformers generated {tuple(new.shape)}, expected {ids.shape[0]}x{L}")
        return new.numel()

    with torch.no_grad():
        run(*inputs[0])  # warm-up
        tokens = 0
        t = time.perf_counter()
        for x in inputs:
            tokens += run(*x)
        total = time.perf_counter() - t
    return {"load_s": load_s, "total_s": total, "target_tokens": tokens}


def worker_ct2(a, sentences, batches, compute_type):
    import ctranslate2

    ct2_dir = Path(a.model_dir) / f"ct2-{compute_type}"
    vocab = json.loads((Path(a.model_dir) / "vocab.json").read_text())
    inv = {v: k for k, v in vocab.items()}
    t0 = time.perf_counter()
    tr = ctranslate2.Translator(
        str(ct2_dir), device="cpu", inter_threads=1, intra_threads=a.threads, compute_type=compute_type
    )
    load_s = time.perf_counter() - t0
    inputs = [([[inv[t] for t in sentences[i]] for i in idx], L) for idx, L in batches]

    def run(tokens, L):
        # CTranslate2 counts generated tokens without the end token: with
        # min_decoding_length = max_decoding_length = L it runs L decoder steps and returns L
        # tokens, none of them </s> (EOS is masked until step L, and decoding stops at L). The
        # other engines run the same L steps, the last one producing the forced EOS.
        res = tr.translate_batch(
            tokens, beam_size=a.beams, min_decoding_length=L, max_decoding_length=L, return_scores=False
        )
        n = 0
        for r in res:
            h = r.hypotheses[0]
            if len(h) != L:
                raise RuntimeError(f"ctranslate2 generated {len(h)} tokens, expected {L}")
            n += len(h)
        return n

    run(*inputs[0])  # warm-up
    tokens = 0
    t = time.perf_counter()
    for x in inputs:
        tokens += run(*x)
    total = time.perf_counter() - t
    return {"load_s": load_s, "total_s": total, "target_tokens": tokens}


def peak_rss_mb() -> float | None:
    """VmHWM of this process (the same measure traduire bench reports)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def worker_main(a):
    sentences = load_workload(Path(a.workload), model_eos(a.model_dir))
    batches = plan(sentences, a.batch, a.force_length)
    if a.worker == "transformers":
        r = worker_transformers(a, sentences, batches)
    elif a.worker in ("ct2-float32", "ct2-int8"):
        r = worker_ct2(a, sentences, batches, a.worker[4:])
    else:
        raise SystemExit(f"unknown worker {a.worker}")
    expected = sum(len(idx) * L for idx, L in batches)
    if r["target_tokens"] != expected:
        raise SystemExit(f"{a.worker}: {r['target_tokens']} tokens, expected {expected}")
    r["target_tokens_per_s"] = r["target_tokens"] / r["total_s"]
    r["peak_rss_mb"] = peak_rss_mb()
    print(json.dumps(r))


# ----------------------------------------------------------------------------------------------
# Orchestrator


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def versions() -> dict:
    v = {"python": platform.python_version()}
    for mod in ("torch", "transformers", "ctranslate2"):
        try:
            v[mod] = __import__(mod).__version__
        except Exception as e:  # noqa: BLE001
            v[mod] = f"unavailable ({e.__class__.__name__})"
    return v


def run_json(cmd, env) -> dict:
    p = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd))} failed ({p.returncode}):\n{p.stderr[-3000:]}")
    lines = [l for l in p.stdout.splitlines() if l.strip().startswith("{")]
    if not lines:
        raise RuntimeError(f"{' '.join(map(str, cmd))}: no JSON on stdout:\n{p.stdout[-2000:]}")
    return json.loads(lines[-1])


def measure(engine, a, workload_file: Path, sentences, beams, batch, env) -> dict:
    expected = sum(len(idx) * L for idx, L in plan(sentences, batch, a.force_length))
    if engine in ("traduire", "traduire-int8"):
        dtype = "int8" if engine == "traduire-int8" else "f32"
        cmd = [
            a.traduire, "bench", "--model-dir", a.model_dir, "--workload", workload_file,
            "--beams", beams, "--max-batch-sentences", batch, "--threads", a.threads,
            "--force-length", a.force_length, "--repeat", 1, "--json", "--dtype", dtype,
            "--kernels", a.kernels,
        ]  # fmt: skip
        r = run_json([str(c) for c in cmd], env)
        # traduire names what ran it ("cpu int8 (avx512)"); the record's engine is ours.
        r["engine_detail"] = r.pop("engine", None)
        tokens = r["target_tokens_per_s"] * r["total_s"]
        if abs(tokens - expected) > 0.5 + 1e-6 * expected:
            raise RuntimeError(f"traduire generated {tokens:.1f} tokens, expected {expected}")
        if r.get("threads") != a.threads:
            print(f"  note: traduire reports {r.get('threads')} threads", file=sys.stderr)
        r["target_tokens"] = round(tokens)
        return r
    if engine == "stock-candle":
        cmd = [a.stock_candle, "--model-dir", a.model_dir, "--workload", workload_file,
               "--force-length", a.force_length]  # fmt: skip
        r = run_json([str(c) for c in cmd], env)
        if r["target_tokens"] != expected:
            raise RuntimeError(f"stock candle generated {r['target_tokens']} tokens, expected {expected}")
        return r
    cmd = [sys.executable, __file__, "--worker", engine, "--model-dir", a.model_dir,
           "--workload", workload_file, "--beams", beams, "--batch", batch,
           "--threads", a.threads, "--force-length", a.force_length]  # fmt: skip
    return run_json([str(c) for c in cmd], env)


def summarize(runs, configs, engines, n_sentences):
    rows = []
    for c in configs:
        base = None
        for e in engines:
            ok = [r for r in runs if r["config"] == c and r["engine"] == e and "error" not in r]
            v = [r["target_tokens_per_s"] for r in ok]
            if not v:
                continue
            med = statistics.median(v)
            if e == "traduire":
                base = med
            rss = [r["peak_rss_mb"] for r in ok if r.get("peak_rss_mb")]
            rows.append({"config": c, "engine": e, "sentences": n_sentences[c], "runs": len(v),
                         "median": med, "min": min(v), "max": max(v),
                         "peak_rss_mb": max(rss) if rss else None})  # fmt: skip
        for row in rows:
            if row["config"] == c:
                row["ratio_to_traduire"] = row["median"] / base if base else None
    return rows


def ct2_backend(a, env) -> str:
    """What CTranslate2 chose on this CPU (ISA and GEMM backend), from its verbose log."""
    code = ("import ctranslate2, sys; ctranslate2.Translator(sys.argv[1], device='cpu', intra_threads=1, "
            "compute_type='int8')")
    path = Path(a.model_dir) / "ct2-int8"
    if not path.exists():
        return "n/a"
    p = subprocess.run([sys.executable, "-c", code, str(path)], env=env, capture_output=True, text=True)
    lines = [l.split("]", 1)[-1].strip() for l in (p.stdout + p.stderr).splitlines()
             if "CPU" in l or "ISA" in l or "backend" in l.lower() or "GEMM" in l]
    return "; ".join(lines[:4]) or "unknown"


def write_chart(rows, meta, path: Path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    configs = list(dict.fromkeys(r["config"] for r in rows))
    engines = list(dict.fromkeys(r["engine"] for r in rows))
    fig, ax = plt.subplots(figsize=(10, 4.6))
    width = 0.8 / max(1, len(engines))
    for k, e in enumerate(engines):
        xs, ys = [], []
        for c_index, c in enumerate(configs):
            for r in rows:
                if r["engine"] == e and r["config"] == c:
                    xs.append(c_index + (k - (len(engines) - 1) / 2) * width)
                    ys.append(r["median"])
        bars = ax.bar(xs, ys, width, label=e)
        ax.bar_label(bars, fmt="%.0f", fontsize=7, padding=1)
    ax.set_xticks(range(len(configs)))
    ax.set_xticklabels([c.replace("-b", ", batch ").replace("beam4", "beam 4") for c in configs])
    ax.set_ylabel("target tokens/s (median)")
    ax.set_title(f"{meta['model']} on {meta['cpu']}, {meta['threads']} threads, kernels {meta['kernels']}, "
                 f"{meta['rounds']} interleaved rounds", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, format="svg")


def table(rows, meta) -> str:
    out = [
        f"CPU: {meta['cpu']}; {meta['threads']} threads; model {meta['model']}; traduire kernels "
        f"{meta['kernels']}; CTranslate2 ISA {meta['ct2_isa']} ({meta['ct2_backend']}); "
        f"forced length R = {meta['force_length']}; "
        f"{meta['rounds']} round(s), engines interleaved; fp32 unless noted.",
        "",
        "| engine | configuration | sentences | target tokens/s, median (min–max) | ratio to traduire | peak RSS MB |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        beams, batch = CONFIGS[r["config"]]
        conf = f"{'greedy' if beams == 1 else f'beam {beams}'}, batch {batch}"
        ratio = f"{r['ratio_to_traduire']:.2f}" if r.get("ratio_to_traduire") else "n/a"
        rss = f"{r['peak_rss_mb']:.0f}" if r.get("peak_rss_mb") else "n/a"
        out.append(
            f"| {r['engine']} | {conf} | {r['sentences']} | "
            f"{r['median']:.1f} ({r['min']:.1f}–{r['max']:.1f}) | {ratio} | {rss} |"
        )
    return "\n".join(out)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model-dir", default=str(DEFAULT_MODEL))
    p.add_argument("--traduire", default=str(DEFAULT_TRADUIRE), help="the traduire binary")
    p.add_argument("--stock-candle", default=str(DEFAULT_STOCK), help="the scripts/stock_candle binary")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--force-length", type=float, default=1.0, help="R: rows generate round(R x longest source)")
    p.add_argument("--rounds", type=int, default=3, help="interleaved measurements per engine and configuration")
    p.add_argument("--sentences", type=int, default=64,
                   help="batch-1 configurations use the first N sentences of the sorted workload")
    p.add_argument("--batched-sentences", type=int, default=256,
                   help="batch-32 configurations use the first N sentences of the sorted workload")
    p.add_argument("--engines", default=",".join(ENGINES), help="comma-separated subset of " + ",".join(ENGINES))
    p.add_argument("--configs", default=",".join(CONFIGS), help="comma-separated subset of " + ",".join(CONFIGS))
    p.add_argument("--quick", action="store_true", help="smoke test: 64 / 16 sentences, 1 round")
    p.add_argument("--out", help="write raw results and the summary as JSON")
    p.add_argument("--chart", help="write a chart of the summary (SVG, matplotlib): tokens/s per engine and configuration")
    p.add_argument("--kernels", default="auto", help="traduire's --kernels (auto, avx512, avx2, portable)")
    p.add_argument("--ct2-isa", help="CT2_FORCE_CPU_ISA for CTranslate2 (e.g. AVX2 with --kernels avx2)")
    # worker mode (internal)
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--workload", help=argparse.SUPPRESS)
    p.add_argument("--beams", type=int, default=1, help=argparse.SUPPRESS)
    p.add_argument("--batch", type=int, default=32, help=argparse.SUPPRESS)
    a = p.parse_args()

    if a.worker:
        return worker_main(a)

    if a.quick:
        a.rounds, a.sentences, a.batched_sentences = 1, 16, 64
    engines = [e.strip() for e in a.engines.split(",") if e.strip()]
    configs = [c.strip() for c in a.configs.split(",") if c.strip()]
    for e in engines:
        if e not in ENGINES:
            p.error(f"unknown engine {e}")
    for c in configs:
        if c not in CONFIGS:
            p.error(f"unknown configuration {c}")
    for path, what in ((a.traduire, "traduire (cargo build --release)"),
                       (a.stock_candle, "stock candle (see scripts/stock_candle/Cargo.toml)")):  # fmt: skip
        if (what.startswith("traduire") or "stock-candle" in engines) and not Path(path).exists():
            p.error(f"{path} not found: build {what}")

    env = dict(os.environ)
    for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "RAYON_NUM_THREADS"):
        env[k] = str(a.threads)
    if a.ct2_isa:
        env["CT2_FORCE_CPU_ISA"] = a.ct2_isa
    # CTranslate2 prints which backend and ISA it uses at verbose level.
    env.setdefault("CT2_VERBOSE", "1")

    tmp = Path(tempfile.mkdtemp(prefix="bench_peers_"))
    full = tmp / "workload.json"
    subprocess.run([a.traduire, "bench", "--model-dir", a.model_dir, "--write-workload", str(full)], check=True)
    sentences = load_workload(full, model_eos(a.model_dir))
    order = sorted_order(sentences)

    files, subsets, n_sentences = {}, {}, {}
    for c in configs:
        beams, batch = CONFIGS[c]
        n = min(len(sentences), a.sentences if batch == 1 else a.batched_sentences)
        n_sentences[c] = n
        subset = [sentences[i] for i in order[:n]]
        f = tmp / f"workload-{n}.json"
        if not f.exists():
            f.write_text(json.dumps({"sentences": subset}) + "\n")
        files[c], subsets[c] = f, subset

    meta = {
        "model": Path(a.model_dir).name,
        "kernels": a.kernels,
        "ct2_isa": a.ct2_isa or "default",
        "ct2_backend": ct2_backend(a, env),
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "threads": a.threads,
        "force_length": a.force_length,
        "rounds": a.rounds,
        "sentences": n_sentences,
        "versions": versions(),
        "workload_sentences": len(sentences),
        "note": "stock-candle runs greedy batch 1 only; CTranslate2's vocabulary has no <pad> row",
    }
    print(f"CPU {meta['cpu']}, {a.threads} threads, workdir {tmp}", file=sys.stderr)
    for c in configs:
        beams, batch = CONFIGS[c]
        tok = sum(len(idx) * L for idx, L in plan(subsets[c], batch, a.force_length))
        print(f"  {c}: {n_sentences[c]} sentences, {tok} target tokens per pass", file=sys.stderr)

    runs = []
    started = time.time()
    for rnd in range(1, a.rounds + 1):
        for c in configs:
            beams, batch = CONFIGS[c]
            for e in engines:
                if e == "stock-candle" and (beams, batch) != (1, 1):
                    continue
                t = time.time()
                rec = {"round": rnd, "config": c, "engine": e, "beams": beams, "batch": batch,
                       "sentences": n_sentences[c]}  # fmt: skip
                try:
                    rec.update(measure(e, a, files[c], subsets[c], beams, batch, env))
                    msg = f"{rec['target_tokens_per_s']:.1f} tok/s"
                except Exception as ex:  # noqa: BLE001  (one failing engine should not end the run)
                    rec["error"] = str(ex)
                    msg = "FAILED: " + str(ex).splitlines()[0]
                rec["wall_s"] = time.time() - t
                runs.append(rec)
                print(f"[{time.time() - started:7.0f}s] round {rnd} {c:11} {e:13} {msg} "
                      f"({rec['wall_s']:.0f}s)", file=sys.stderr, flush=True)  # fmt: skip
                if a.out:  # keep partial results
                    Path(a.out).write_text(json.dumps({"meta": meta, "runs": runs}, indent=1) + "\n")

    rows = summarize(runs, configs, engines, n_sentences)
    meta["elapsed_s"] = time.time() - started
    print(table(rows, meta))
    if a.chart:
        write_chart(rows, meta, Path(a.chart))
    if a.out:
        Path(a.out).write_text(json.dumps({"meta": meta, "runs": runs, "summary": rows}, indent=1) + "\n")
    if any("error" in r for r in runs):
        print("some runs failed: see the JSON / stderr", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main() or 0)
