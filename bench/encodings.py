"""Peak memory of the validator per tiktoken encoding (the README's figures).

    python bench/encodings.py [--mb 20]

For each encoding, a fresh process (so ru_maxrss is its own) reports its peak RSS after importing the
validator, after building the encoding's tables, and after validating a generated chat file of
--mb megabytes for a model of that encoding (gpt-3.5-turbo-0125: cl100k_base, gpt-4o-mini: o200k_base).
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODELS = {"cl100k_base": "gpt-3.5-turbo-0125", "o200k_base": "gpt-4o-mini-2024-07-18"}


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def child(encoding: str, path: str) -> None:
    sys.path.insert(0, str(ROOT))
    from bot.datasets.tokens import get_encoding
    from bot.datasets.validate import validate_file

    imported = _peak_mb()
    get_encoding(encoding)
    tables = _peak_mb()
    report = validate_file(path, model=MODELS[encoding])
    assert report.tokens is not None and report.tokens.encoding == encoding
    print(json.dumps({"imported": imported, "tables": tables, "validated": _peak_mb(), "examples": report.examples}))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mb", type=float, default=20)
    p.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        child(*args.child)
        return
    sys.path.insert(0, str(ROOT))
    from bench.validate import generate  # the same deterministic chat data as bench/validate.py

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "train.jsonl"
        generate(path, int(args.mb * 1024 * 1024))
        print(f"machine: {platform.machine()}, Python {platform.python_version()}; file {path.stat().st_size / 1e6:.1f} MB")
        print(f"{'encoding':<12} {'after import':>13} {'+ tables':>10} {'tables alone':>13} {'peak validating':>16}")
        for enc in MODELS:
            out = subprocess.run([sys.executable, __file__, "--child", enc, str(path)], capture_output=True, text=True, check=True)
            r = json.loads(out.stdout)
            print(f"{enc:<12} {r['imported']:>10.0f} MB {r['tables']:>7.0f} MB {r['tables'] - r['imported']:>10.0f} MB {r['validated']:>13.0f} MB")


if __name__ == "__main__":
    main()
