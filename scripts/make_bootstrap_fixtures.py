#!/usr/bin/env python3
"""Record numpy's random streams and sacreBLEU's paired bootstrap results:

    /work/venv/bin/python scripts/make_bootstrap_fixtures.py

Writes tests/fixtures/eval/bootstrap.json, read by the tests of src/eval/rng.rs and
src/eval/bootstrap.rs, which reproduce `sacrebleu --paired-bs` (numpy's default_rng, the float32
resampling and sacreBLEU's p-value, mean and confidence interval) without Python.

Contents:
- "seed_sequence": SeedSequence(seed).generate_state(4, uint64), the words PCG64 is seeded from;
- "raw": PCG64(SeedSequence(seed)).random_raw(20), the generator's 64-bit outputs;
- "choice": default_rng(seed).choice(n, size=(rows, cols), replace=True) flattened in C order,
  for n in {1, 2, 3, 7, 124, 3003} plus ranges that take numpy's other code paths
  (2**31 + 5, 2**32, 2**32 + 1, 2**62 + 3); "then" is a second call on the same generator,
  which continues from the 32-bit half numpy keeps buffered;
- "mean": numpy's mean (pairwise summation) of float32 and float64 arrays;
- "sum0": float32 matrices and their .sum(0), the resampled rows' accumulation order;
- "paired": paired bootstrap cases run through sacreBLEU's own PairedTest (what the CLI runs),
  with the per-segment statistics of every system, the baseline's score, mean and CI, and
  each system's score, p-value, mean and CI, per metric. The systems are the English side of
  scripts/corpus/en.txt with deterministic damage (dropped, swapped, replaced words) scored
  against the undamaged text, so they differ by a few BLEU.

Every float that must be matched exactly is written as its Python repr string: Rust's
`str::parse::<f64>` reads it back exactly, which serde_json's default float parsing does not
promise. A float32 value is written as the float64 it converts to.
"""

import json
import os
from pathlib import Path

import numpy as np
import sacrebleu
from sacrebleu.metrics import BLEU, CHRF, TER
from sacrebleu.significance import PairedTest

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "fixtures" / "eval" / "bootstrap.json"

SEEDS = [0, 1, 42, 12345, 2**32 + 7, 2**64 - 1]


def exact(x) -> str:
    """A float as the string that parses back to exactly the same float64."""
    return repr(float(x))


def rng_streams():
    seed_sequence = [
        {"seed": s, "words": np.random.SeedSequence(s).generate_state(4, np.uint64).tolist()}
        for s in SEEDS
    ]
    raw = [{"seed": s, "values": np.random.PCG64(s).random_raw(20).tolist()} for s in SEEDS]
    choice = []
    for seed in [12345, 0, 2**64 - 1]:
        for n in [1, 2, 3, 7, 124, 3003, 2**31 + 5, 2**32, 2**32 + 1, 2**62 + 3]:
            rows, cols = 3, min(n, 40) if n > 3 else n
            rng = np.random.default_rng(seed)
            first = rng.choice(n, size=(rows, cols), replace=True)
            # An odd count leaves half of a 64-bit output buffered for the next call.
            then = rng.choice(n, size=7, replace=True)
            choice.append({
                "seed": seed, "n": n, "rows": rows, "cols": cols,
                "values": first.ravel().tolist(), "then": then.tolist(),
            })
    # The full matrix sacreBLEU draws for 124 segments would be 124,000 numbers: keep its first
    # and last rows, which pins the whole stream in between.
    full = np.random.default_rng(12345).choice(124, size=(1000, 124), replace=True)
    choice.append({
        "seed": 12345, "n": 124, "rows": 1000, "cols": 124,
        "first_row": full[0].tolist(), "last_row": full[-1].tolist(),
    })
    return seed_sequence, raw, choice


def numeric_cases():
    # float32 values are whole numbers below 2**24 (exact in float32, short in JSON) whose sums
    # pass 2**24 and round; float64 values have three decimals, so their sums round too.
    gen = np.random.default_rng(2024)
    means = []
    for n in [1, 5, 8, 9, 130, 1000]:
        ints = gen.integers(0, 2**24, size=n)
        for dtype, arr in [("float32", ints.astype("float32")), ("float64", ints / 1000)]:
            means.append({
                "dtype": dtype, "values": [exact(v) for v in arr], "mean": exact(arr.mean()),
            })
    sums = []
    for rows, cols in [(124, 1), (124, 2), (200, 4), (57, 18)]:
        m = gen.integers(0, 2**24, size=(rows, cols)).astype("float32")
        sums.append({
            "rows": [[exact(v) for v in row] for row in m], "sum": [exact(v) for v in m.sum(0)],
        })
    return means, sums


def damage(lines, every, mode):
    """Deterministic damage to every `every`-th word (counted across the corpus)."""
    out, k = [], 0
    for line in lines:
        words = line.split()
        kept = []
        for i, w in enumerate(words):
            k += 1
            if k % every:
                kept.append(w)
            elif mode == "drop":
                continue
            elif mode == "swap" and kept:
                kept.insert(len(kept) - 1, w)
            elif mode == "replace":
                kept.append("the")
            else:
                kept.append(w)
        out.append(" ".join(kept))
    return out


def paired_case(name, refs, systems, metrics, seed, n_samples):
    """Runs sacreBLEU's PairedTest (what `sacrebleu --paired-bs` runs) and records everything."""
    os.environ["SACREBLEU_SEED"] = str(seed)
    named = list(systems.items())
    test = PairedTest(named, metrics, references=[refs], test_type="bs", n_samples=n_samples)
    sigs, scores = test()
    out_metrics = []
    for key, metric in test.metrics.items():
        per_system = []
        for sys_name, hyps in named:
            stats = metric._extract_corpus_statistics(hyps, [refs])
            per_system.append({"name": sys_name, "stats": stats})
        results = scores[key]
        base = results[0]
        per_system[0].update(score=exact(base.score), mean=exact(base.mean), ci=exact(base.ci))
        for entry, res in zip(per_system[1:], results[1:]):
            entry.update(
                score=exact(res.score), p_value=exact(res.p_value),
                mean=exact(res.mean), ci=exact(res.ci),
                # float32 when sacreBLEU's resampled scores are float32 (chrF, TER).
                mean_dtype=type(res.mean).__name__,
            )
        out_metrics.append({
            "name": key, "signature": metric.get_signature().format(),
            "baseline": per_system[0], "systems": per_system[1:],
        })
    return {"name": name, "seed": seed, "n_samples": n_samples, "n_segments": len(refs),
            "metrics": out_metrics}


def main():
    assert sacrebleu.__version__ == "2.6.0", sacrebleu.__version__
    refs = (ROOT / "scripts" / "corpus" / "en.txt").read_text(encoding="utf-8").splitlines()
    systems = {
        "baseline": damage(refs, 7, "drop"),
        "swapped": damage(refs, 8, "swap"),
        "replaced": damage(refs, 7, "replace"),
        "dropped": damage(refs, 8, "drop"),
    }
    seed_sequence, raw, choice = rng_streams()
    means, sums = numeric_cases()
    paired = [
        paired_case("bleu-chrf-ter-124", refs, systems,
                    {"BLEU": BLEU(), "chrF": CHRF(), "TER": TER()}, 12345, 1000),
        paired_case("bleu-chrfpp-57-seed7", refs[:57], {k: v[:57] for k, v in systems.items()},
                    {"BLEU": BLEU(), "chrF": CHRF(word_order=2)}, 7, 300),
        # Three segments: resamples often miss every 4-gram, taking BLEU's smoothing path.
        paired_case("bleu-chrf-3", refs[10:13], {k: v[10:13] for k, v in systems.items()},
                    {"BLEU": BLEU(), "chrF": CHRF()}, 12345, 100),
    ]
    fixture = {
        "numpy_version": np.__version__, "sacrebleu_version": sacrebleu.__version__,
        "seed_sequence": seed_sequence, "raw": raw, "choice": choice,
        "mean": means, "sum0": sums, "paired": paired,
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(fixture, separators=(",", ":")) + "\n", encoding="utf-8")
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes)")
    for case in paired:
        for m in case["metrics"]:
            line = ", ".join(
                f"{s['name']} {float(s['score']):.2f} p={float(s['p_value']):.4f}"
                for s in m["systems"])
            print(f"  {case['name']} {m['name']}: baseline {float(m['baseline']['score']):.2f}; {line}")


if __name__ == "__main__":
    main()
