"""Scan speed of gitend.secrets on 10 MB of realistic memory notes.

Builds markdown notes (prose, headings, lists, code blocks, .env and YAML snippets, git SHAs,
UUIDs, sha256 sums, URLs, a few planted fake secrets), scans them once and prints
MB, seconds and MB/s. Target: 10 MB in under 1 s.

    .venv/bin/python bench/scan_speed.py [MB]
"""
from __future__ import annotations

import random
import string
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gitend.secrets import scan_text  # noqa: E402

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


def main() -> None:
    megabytes = float(sys.argv[1]) if len(sys.argv) > 1 else 10.0
    text, planted = build_notes(int(megabytes * 1_000_000))
    started = time.perf_counter()
    findings = scan_text(text)
    elapsed = time.perf_counter() - started
    size = len(text.encode()) / 1_000_000
    print(f"{size:.1f} MB scanned in {elapsed:.3f} s = {size / elapsed:.1f} MB/s; "
          f"{len(findings)} findings for {planted} planted secrets")


if __name__ == "__main__":
    main()
