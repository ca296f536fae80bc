"""Scan speed of gitend.secrets on 10 MB of realistic memory notes.

Builds markdown notes (prose, headings, lists, code blocks, .env and YAML snippets, git SHAs,
UUIDs, sha256 sums, URLs, a few planted fake secrets) and scans them two ways: as one 10 MB text,
and as ~4 KB notes one by one (what `gitend scan` does with a notes folder). Prints MB/s, the best
of a few rounds of CPU time (a busy machine stretches wall time, not this), and, as a yardstick
for this machine, how many plain regex searches of the text the scan costs. Target: 10 MB/s.

    .venv/bin/python bench/scan_speed.py [MB] [--other PATH/TO/ANOTHER/gitend-checkout]

`--other` times another checkout's scanner (its gitend/secrets.py) in the same run, interleaved.
"""
from __future__ import annotations

import argparse
import importlib.util
import random
import re
import string
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gitend import secrets

WORDS = ("the session memory note project build test deploy release branch commit merge user "
         "config token password secret key value api server client database cache query index "
         "request response error retry timeout module function class method migration schema "
         "review prefers uses runs before after always never remember that this with from for "
         "and to of in is on it as be by at was").split()
ALNUM = string.ascii_letters + string.digits


def _rand(rng: random.Random, alphabet: str, size: int) -> str:
    return "".join(rng.choice(alphabet) for _ in range(size))


def _prose(rng: random.Random) -> str:
    sentence = " ".join(rng.choice(WORDS) for _ in range(rng.randint(8, 30)))
    return sentence.capitalize() + "."


def _block(rng: random.Random) -> str:
    pick = rng.random()
    if pick < 0.45:
        return " ".join(_prose(rng) for _ in range(rng.randint(1, 5)))
    if pick < 0.55:
        return f"## {_prose(rng)[:40]}\n\n- {_prose(rng)}\n- {_prose(rng)}"
    if pick < 0.65:
        return ("```python\ndef load_settings(path: str) -> dict:\n    token = os.environ['API_TOKEN']\n"
                "    return yaml.safe_load(open(path))  # see config.yaml\n```")
    if pick < 0.72:
        return f"- commit {_rand(rng, '0123456789abcdef', 40)}: {_prose(rng)}"
    if pick < 0.78:
        uuid = "-".join(_rand(rng, "0123456789abcdef", n) for n in (8, 4, 4, 4, 12))
        return f"request_id: {uuid}\nsha256: {_rand(rng, '0123456789abcdef', 64)}"
    if pick < 0.84:
        return ("```env\nDATABASE_URL=postgres://app:${DB_PASSWORD}@db:5432/app\nAPI_KEY=YOUR_API_KEY\n"
                "token_url: https://auth.example.com/oauth/token\nmax_tokens: 4096\n```")
    if pick < 0.90:
        return (f"See https://github.com/acme/app/blob/main/src/{rng.choice(WORDS)}.py#L{rng.randint(1, 999)} "
                "and `getUserAccountSettingsHandler()` in AccountSettingsPanel.tsx.")
    if pick < 0.96:
        return f"    for item in items:\n        total += item.{rng.choice(WORDS)}_count  # {_prose(rng)}"
    return f"| {rng.choice(WORDS)} | {rng.randint(1, 99)} | {_prose(rng)[:30]} |"


def build_notes(size: int, seed: int = 7) -> tuple[str, int]:
    """About `size` characters of notes, and how many fake secrets were planted in them."""
    rng = random.Random(seed)
    parts, total, planted = [], 0, 0
    while total < size:
        if rng.random() < 0.002:
            planted += 1
            part = rng.choice([
                f"GITHUB_TOKEN=ghp_{_rand(rng, ALNUM, 36)}",
                f"The staging key is sk-ant-api03-{_rand(rng, ALNUM, 93)}AA",
                f"aws_access_key_id = AKIA{_rand(rng, string.ascii_uppercase + '234567', 16)}",
                f"DB_PASSWORD={_rand(rng, string.ascii_lowercase, 6)}{rng.randint(10, 99)}!",
            ])
        else:
            part = _block(rng)
        parts.append(part)
        total += len(part) + 2
    return "\n\n".join(parts), planted


def as_notes(text: str, size: int = 4000) -> list[str]:
    """The text cut at paragraph ends into notes of about `size` characters."""
    notes, at = [], 0
    while at < len(text):
        end = text.find("\n\n", at + size)
        end = len(text) if end < 0 else end
        notes.append(text[at:end])
        at = end + 2
    return notes


def cpu_seconds(scan: Callable[[str], object], texts: list[str], rounds: int) -> float:
    """The least CPU time of `rounds` scans of the texts, one by one."""
    best = float("inf")
    for _ in range(rounds):
        started = time.process_time()
        for text in texts:
            scan(text)
        best = min(best, time.process_time() - started)
    return best


def load_scanner(checkout: str) -> ModuleType:
    """Another checkout's gitend/secrets.py, under a name of its own."""
    spec = importlib.util.spec_from_file_location("other_secrets", Path(checkout) / "gitend" / "secrets.py")
    assert spec and spec.loader, f"no gitend/secrets.py in {checkout}"
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("megabytes", nargs="?", type=float, default=10.0)
    parser.add_argument("--other", help="another gitend checkout whose scanner to time in the same run")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    text, planted = build_notes(int(args.megabytes * 1_000_000))
    notes = as_notes(text)
    size = len(text.encode()) / 1_000_000
    scanners: list[tuple[str, Any]] = [("this gitend", secrets)]
    scanners += [(f"--other {args.other}", load_scanner(args.other))] if args.other else []
    for _, scanner in scanners:
        scanner.USE_EXTRA_ENGINE = False  # gitend's own rules: betterleaks, when installed, has its own speed
        scanner.scan_text(notes[0])  # compile what a first scan compiles
    yardstick = cpu_seconds(re.compile("ezqj").search, [text], args.rounds)
    print(f"{size:.1f} MB of notes, {len(notes)} notes of ~4 KB, {planted} planted secrets; one regex search of "
          f"the text takes {yardstick * 1000:.0f} ms here")
    for label, scanner in scanners:
        found = len(scanner.scan_text(text))
        whole = cpu_seconds(scanner.scan_text, [text], args.rounds)
        one_by_one = cpu_seconds(scanner.scan_text, notes, args.rounds)
        print(f"{label}: one text {size / whole:.1f} MB/s ({whole / yardstick:.0f} regex searches), "
              f"note by note {size / one_by_one:.1f} MB/s; {found} findings")


if __name__ == "__main__":
    main()
