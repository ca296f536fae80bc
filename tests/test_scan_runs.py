"""How gitend.secrets finds matches fast, held to the plain way: every pattern over the whole text.

The fast way searches the token rules only in the runs of run characters, tries each from the
literals a trie regex finds, and starts keyword patterns at their rarest letter (`_pivoted`). Each
is checked here against its definition and, on real and generated texts, against the plain way.
"""
from __future__ import annotations

import dataclasses
import importlib
import re
import string
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gitend import secrets
from gitend.secrets import scan_text
from tests.data.secrets.corpus import lookalikes, positives

# What `re` parses a pattern into, to prove which characters it can match (sre_parse before 3.11).
parser: Any = importlib.import_module("re._parser" if sys.version_info >= (3, 11) else "sre_parse")
ops: Any = importlib.import_module("re._constants" if sys.version_info >= (3, 11) else "sre_constants")
WORD = set(string.ascii_letters + string.digits + "_")


@pytest.fixture(autouse=True)
def no_extra_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(secrets, "USE_EXTRA_ENGINE", False)


def characters(items: Any) -> set[str] | None:
    """Every character the parsed pattern (lookarounds included) can match; None: any at all."""
    found: set[str] = set()
    for op, arg in items:
        if op is ops.LITERAL:
            found.add(chr(arg))
        elif op is ops.IN:
            for kind, value in arg:
                if kind is ops.LITERAL:
                    found.add(chr(value))
                elif kind is ops.RANGE:
                    found |= {chr(code) for code in range(value[0], value[1] + 1)}
                elif kind is ops.CATEGORY and value in (ops.CATEGORY_WORD, ops.CATEGORY_DIGIT):
                    found |= WORD if value is ops.CATEGORY_WORD else set(string.digits)
                else:
                    return None  # negated class, \s, …
        elif op in (ops.MAX_REPEAT, ops.MIN_REPEAT, ops.SUBPATTERN, ops.ASSERT, ops.ASSERT_NOT, ops.BRANCH):
            parts = arg[1] if op is ops.BRANCH else [arg[-1]]
            for part in parts:
                inner = characters(part)
                if inner is None:
                    return None
                found |= inner
        elif op not in (ops.AT, ops.GROUPREF):  # anchors match no character; a group ref, its group's
            return None
    return found


def provably_in_runs(rule: secrets._Rule) -> bool:
    """Every pattern (and lookaround, and anchor) matches only run characters, and at least
    _RUN_MIN of them: so each match lies inside one run, and the runs' newlines change nothing."""
    regexes = [secrets._pivoted(source) for source in rule.sources] + [rule.anchor_source or ""]
    for regex in regexes:
        parsed = parser.parse(regex, re.ASCII)
        chars = characters(parsed)
        if chars is None or not chars <= set(secrets._RUN_CHARS):
            return False
    return all(parser.parse(secrets._pivoted(s), re.ASCII).getwidth()[0] >= secrets._RUN_MIN for s in rule.sources)


def test_the_prover_tells_run_patterns_from_others() -> None:
    token = secrets._Rule("t", "", (r"tok_[A-Za-z0-9]{20}(?![\w-])",))
    assert provably_in_runs(token)
    assert not provably_in_runs(dataclasses.replace(token, sources=(r"tok_[A-Za-z0-9]{10}",)))  # too short
    assert not provably_in_runs(dataclasses.replace(token, sources=(r"tok [A-Za-z0-9]{20}",)))  # a space
    assert not provably_in_runs(dataclasses.replace(token, sources=(r"tok_[^\s]{20}",)))  # any character
    assert not provably_in_runs(dataclasses.replace(token, sources=(r"(?<=\s)tok_[a-z]{20}",)))  # looks at a space


@pytest.mark.parametrize("rule", secrets._RULES, ids=lambda rule: rule.id)
def test_a_rule_searches_only_runs_exactly_when_it_provably_matches_only_in_them(rule: secrets._Rule) -> None:
    assert rule.in_runs == provably_in_runs(rule), f"set in_runs={not rule.in_runs} on {rule.id}"
    assert not (rule.in_runs and rule.lower), "run rules are case-sensitive: the runs are cut from the text"


# ---------------------------------------------------------------- the fast way equals the plain way

def plainly(rule: secrets._Rule, started: bool) -> secrets._Rule:
    """The rule searched the plain way. The fast way tries a started rule only at word starts (its
    secret may not follow a letter, digit or _): said here by a lookbehind. (Without one, a match
    that does follow one, rejected, hides a token inside it: `_xoxe.xoxp-…` hides `xoxp-…`.)"""
    word_start = r"(?<![A-Za-z0-9_])" if started else ""
    return dataclasses.replace(rule, in_runs=False, sources=tuple(word_start + s for s in rule.sources))


@contextmanager
def plain_way() -> Iterator[None]:
    """The plain way: no runs, no pivots, no hints: every pattern over the whole text."""
    started = {trigger.priority for triggers in secrets._run_rules()[0].values() for trigger in triggers}
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(secrets, "_RULES", tuple(plainly(rule, at in started) for at, rule in enumerate(secrets._RULES)))
        patch.setattr(secrets, "_pivoted", lambda source: source)
        patch.setattr(secrets, "_GATED_UP_TO", -1)
        secrets._compiled.cache_clear()
        secrets._run_rules.cache_clear()
        try:
            yield
        finally:
            secrets._compiled.cache_clear()
            secrets._run_rules.cache_clear()


def findings(text: str) -> list[tuple[str, int, int, str, str]]:
    return [(f.rule, f.line, f.column, f.secret, f.excerpt) for f in scan_text(text)]


def test_the_corpus_gets_the_same_findings_both_ways() -> None:
    texts = [case.text for case in positives()][::17] + [case.text for case in lookalikes()]
    fast = [findings(text) for text in texts]
    with plain_way():
        plain = [findings(text) for text in texts]
    assert sum(map(bool, fast)) > 1000  # the sample holds secrets of every kind
    differ = [text for text, a, b in zip(texts, fast, plain) if a != b]
    assert not differ, differ[:3]


TOKENS = list({case.group: case.text[case.start:case.end] for case in positives()}.values())  # one per provider


@pytest.mark.parametrize("before", [" ", ".", "-", "=", ":", "/", "_", "x", "é", "(", "'", "AccountKey=", "/bot"])
def test_each_kind_of_token_after_and_before_anything_is_found_both_ways(before: str) -> None:
    text = "\n".join(f"{before}{token}{after}" for token in TOKENS for after in ("", ".", "-", "x", "é", "==", ")"))
    fast = findings(text)
    with plain_way():
        assert findings(text) == fast


PIECES = st.sampled_from(TOKENS) | st.text(alphabet=secrets._RUN_CHARS + " \n\t\"'é", max_size=40) | st.sampled_from(
    ["API_KEY=", "token: ", "\n", " ", "=", "-", ".", "|", "AccountKey=", "?sv=1&sig=", "/bot", "AAAAAAAAAA",
     "-----BEGIN PRIVATE KEY-----\n", "eyJ", "_mmk", "Q~", ":AA", "ghp_", "x", "é", "İ"])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(PIECES, max_size=30).map("".join))
def test_generated_texts_get_the_same_findings_both_ways(text: str) -> None:
    fast = findings(text)
    with plain_way():
        assert findings(text) == fast


# ---------------------------------------------------------------- the parts

@given(st.text(alphabet=secrets._RUN_CHARS[::3] + " \n'é\ud800", max_size=300))
def test_runs_are_every_long_run_and_map_back_to_the_text(text: str) -> None:
    runs = secrets._runs(text)
    expected = [m.group() for m in re.finditer(f"[{re.escape(secrets._RUN_CHARS)}é\ud800]{{16,}}", text)]
    assert runs.joined.split("\n") == (expected or [""])
    for start, run in zip(runs.starts, expected):
        assert text[runs.origin(start):runs.origin(start) + len(run)] == run


@given(st.lists(st.text(alphabet="ab_-", min_size=1, max_size=5), min_size=1, max_size=12),
       st.text(alphabet="ab_-", max_size=12))
def test_the_trie_finds_the_longest_literal_starting_here(literals: list[str], text: str) -> None:
    finder = re.compile(f"(?=({secrets._trie(literals)}))")
    found = {m.start(): m.group(1) for m in finder.finditer(text)}
    for at in range(len(text) + 1):
        starting = [literal for literal in literals if text.startswith(literal, at)]
        assert found.get(at) == (max(starting, key=len) if starting else None)


@pytest.mark.parametrize(("source", "pivoted"), [
    ("token=(?P<s>x)", "ken(?<=token)=(?P<s>x)"),
    ("key=(?P<s>x)", "key=(?P<s>x)"),          # its first letter is its rarest
    ("tokens?=(?P<s>x)", "ken(?<=token)s?=(?P<s>x)"),  # s? is no part of the literal
    ("token|x(?P<s>x)", "token|x(?P<s>x)"),    # an alternative: no required literal
    ("token=x", "token=x"),                    # the whole match is the secret: its start must stay
])
def test_pivoted_starts_at_the_rarest_letter(source: str, pivoted: str) -> None:
    assert secrets._pivoted(source) == pivoted
    text = "a token=x tokens=x keys"
    assert [m.span("s") for m in re.finditer(pivoted, text) if "(?P<s>" in pivoted] == [
        m.span("s") for m in re.finditer(source, text) if "(?P<s>" in source]


def test_slow_a_fresh_process_scanning_a_short_text_compiles_only_the_literals_it_holds(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # The hook scans a few short texts per process: the trie of every literal cost ~6 ms to compile, more
    # than the scan, for any text with one long run (a URL, a path).
    compiled: list[str] = []
    real = re.compile
    monkeypatch.setattr(re, "compile", lambda pattern, flags=0: compiled.append(pattern) or real(pattern, flags))
    monkeypatch.setattr(secrets, "_run_characters_scanned", [0])  # as in a fresh process
    secrets._run_rules.cache_clear()
    secrets._finder.cache_clear()
    token = TOKENS[0]
    assert findings(f"Fixed the build, see https://github.com/acme/app/pull/123\n{token}\n")[0][3] == token
    tries = [p for p in compiled if isinstance(p, str) and p.startswith("(?<![A-Za-z0-9_])(?=(")]
    assert tries and max(map(len, tries)) < 100, tries


def test_importing_the_scanner_compiles_and_works_out_nothing() -> None:
    """Every hook imports gitend.secrets: regexes compile and literal starts are worked out on first use."""
    code = ("import gitend.secrets as s; print(s._compiled.cache_info().currsize, s._prefixes.cache_info().currsize, "
            "s._run_rules.cache_info().currsize, sum('hints' in vars(rule) for rule in s._RULES))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["0", "0", "0", "0"]
