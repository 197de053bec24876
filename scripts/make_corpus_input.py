#!/usr/bin/env python3
"""Write N lines of French for `traduire corpus` benchmarks (no dependency beyond Python):

    python3 scripts/make_corpus_input.py N OUT.fr

Lines are drawn (seed 7) from scripts/corpus/fr.txt and the seed article's lines, with a number
appended to most of them so that the sentences are mostly distinct (as in a real corpus, where
the cache catches only true repeats); every 37th line is empty (kept as an empty pair).
"""

import random
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main():
    n, out = int(sys.argv[1]), Path(sys.argv[2])
    pool = (ROOT / "scripts" / "corpus" / "fr.txt").read_text(encoding="utf-8").splitlines()
    for seed in sorted((ROOT / "seeds").glob("*.txt")):
        pool += [l.strip() for l in seed.read_text(encoding="utf-8").splitlines() if len(l.split()) > 3]
    rng = random.Random(7)
    with out.open("w", encoding="utf-8") as f:
        for i in range(n):
            if i % 37 == 36:
                f.write("\n")
                continue
            line = rng.choice(pool)
            if rng.random() < 0.9:
                line = f"{line} ({rng.randrange(1_000_000)})"
            f.write(line + "\n")


if __name__ == "__main__":
    main()
