#!/usr/bin/env python3
"""Regenerate every committed test fixture with one command:

    /work/venv/bin/python scripts/make_fixtures.py

Runs scripts/make_tokenizer_fixtures.py (tests/fixtures/tokenizer*/), then
scripts/make_model_fixtures.py (tests/fixtures/marian/tiny-*/), with the same interpreter.
Both are deterministic; the benchmark model (scripts/make_bench_model.py) is not a fixture.
"""

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

for script in ("make_tokenizer_fixtures.py", "make_model_fixtures.py"):
    print(f"== {script}", flush=True)
    subprocess.run([sys.executable, str(HERE / script)], check=True, cwd=HERE.parent)
