"""Tests for gitend.secrets: corpus recall / false alarms, per-kind rules, API contracts."""
from __future__ import annotations

import binascii
import json
import random
import string
import sys
import time
import types
from collections import defaultdict
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gitend import secrets
from gitend.secrets import Finding, keyed_hash, redact, scan_file, scan_paths, scan_text

CORPUS = Path(__file__).parent / "data" / "secrets"
POSITIVES = [json.loads(line) for line in (CORPUS / "positives.jsonl").read_text().splitlines()]
NEGATIVES = [json.loads(line) for line in (CORPUS / "negatives.jsonl").read_text().splitlines()]
MIN_RECALL, MAX_FALSE_ALARM_RATE = 0.97, 0.03


@pytest.fixture(autouse=True)
def no_extra_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    """Built-in rules only, whether or not betterleaks happens to be installed."""
    monkeypatch.setattr(secrets, "USE_EXTRA_ENGINE", False)


def finding_for(case: dict[str, str]) -> Finding | None:
    for finding in scan_text(case["text"]):
        if case["secret"] in finding.secret or finding.secret in case["secret"]:
            return finding
    return None


# ---------------------------------------------------------------- corpus

def test_corpus_is_big_and_varied_enough() -> None:
    assert len(POSITIVES) >= 80 and len({case["kind"] for case in POSITIVES}) >= 25
    assert len({case["rule"] for case in POSITIVES}) >= 25
    assert len(NEGATIVES) >= 60


def test_corpus_github_tokens_fail_their_checksum() -> None:
    tokens = [c["secret"] for c in POSITIVES if c["rule"] == "github-token"]
    assert tokens and not any(secrets.github_checksum_ok(token) for token in tokens)


def test_recall_and_false_alarm_rate_on_corpus() -> None:
    missed = [case for case in POSITIVES if finding_for(case) is None]
    alarms = [case for case in NEGATIVES if scan_text(case["text"])]
    recall = 1 - len(missed) / len(POSITIVES)
    false_alarm_rate = len(alarms) / len(NEGATIVES)
    print(f"\nsecrets corpus: recall {recall:.3f} ({len(POSITIVES) - len(missed)}/{len(POSITIVES)}), "
          f"false alarms {false_alarm_rate:.3f} ({len(alarms)}/{len(NEGATIVES)})")
    for case in missed:
        print("  missed:", case["kind"], case["text"][:100])
    for case in alarms:
        print("  false alarm:", case["kind"], case["text"][:100])
    assert recall >= MIN_RECALL
    assert false_alarm_rate <= MAX_FALSE_ALARM_RATE


def _by_kind() -> dict[str, list[dict[str, str]]]:
    grouped: dict[str, list[dict[str, str]]] = defaultdict(list)
    for case in POSITIVES:
        grouped[case["kind"]].append(case)
    return grouped


@pytest.mark.parametrize("kind", sorted(_by_kind()))
def test_each_kind_is_found_by_its_rule(kind: str) -> None:
    for case in _by_kind()[kind]:
        finding = finding_for(case)
        assert finding is not None, case["text"]
        assert finding.rule == case["rule"], case["text"]
        assert finding.secret == case["secret"]


@pytest.mark.parametrize("text", [
    "STRIPE_PUBLISHABLE_KEY=pk_live_51HqLyjWDarjtT1zdp7dcQ9x",
    "aws_access_key_id = AKIAIOSFODNN7EXAMPLE\naws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE3q9xLp4Rz8WvN3bT6yJcF1dS5gA0pLmK7Hq2\n"
    "M9xLp4Rz8WvN3bT6yJcF1dS5gA0pLmK7Hq2M9xLp4Rz8WvN3bT6yJcF1dS5gA0pLmK7Hq==\n-----END PUBLIC KEY-----",
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIK7Hq2M9xLp4Rz8WvN3bT6yJcF1dS5gA0pLmQ2w9x me@laptop",
    "DB_PASSWORD=$DB_PASSWORD", 'token = os.environ["TOKEN"]', "key = os.getenv('API_KEY')",
    "password: ", "password: changeme", "password: '********'", "token_url: https://x.io/token",
    "api_version: 2024-10-01", "public_key_id: 4f9a1c2e7b3d", "sha256:" + "a3f1" * 16,
    "commit " + "9c1e" * 10, "id: 123e4567-e89b-12d3-a456-426614174000",
    '"integrity": "sha512-Kq8vN2mX5pL9rT3wY6zA1bC4dE7fG0hJ2kM5nP8qR1sT4uV7wX0yZ3aB6cD9eF2gH5iJ8kL1mN4oP7qR0sT3uV6wX9=="',
    "![x](data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkK7Hq2M9xLp4Rz8Wv==)",
    "ANTHROPIC_API_KEY=sk-ant-api03-EXAMPLEKEYEXAMPLEKEYEXAMPLEKEYEXAMPLEKEYEXAMPLE",
    "npm install left-pad@1.3.0 && pip install 'django>=5.0.7,<6'",
    "See AbstractSingletonProxyFactoryBeanConfigurationProvider in UserAccountSettingsPanel.",
    "U2VlIHlvdSBhdCB0aGUgbWVldGluZyB0b21vcnJvdyBhdCBub29uLg==",
    "DB_PASSWORD=changeme", "password=password", "DB_PASSWORD=<password>", "DB_PASSWORD=$PASSWORD",
    "DB_PASSWORD=${DB_PASSWORD}", "POSTGRES_PASSWORD=mysecretpassword", "password: required",
    "The password is automatically rotated.", "docker login -u ci -p $DOCKER_PASSWORD ghcr.io",
    "docker login -u ci -p <password> ghcr.io", "docker login -u ci --password-stdin ghcr.io",
    "docker run -p 8080:80 nginx", "mysql -u root -p app", "mysql -uroot -p -h db app", "mysql -uroot -proot app",
    "mysql -uroot -p${MYSQL_PWD} app", "mysql -h db -P3306 -u app -p app", "mysql built with gcc -pthread",
])
def test_look_alikes_do_not_fire(text: str) -> None:
    assert scan_text(text) == []


@pytest.mark.parametrize("text, rule, secret", [
    ("docker login -p Kq8vN2mX5pL9rT registry.corp.io", "cli-password", "Kq8vN2mX5pL9rT"),
    ("docker login -u ci -p 'hunter2!' ghcr.io", "cli-password", "hunter2!"),
    ("podman login --username ci -p Tr0ub4dor3 quay.io", "cli-password", "Tr0ub4dor3"),
    ("docker login -u ci --password Kq8vN2mX5pL9rT ghcr.io", "secret-assignment", "Kq8vN2mX5pL9rT"),
    ("mysql -u root -pTr0ub4dor3 -h db.internal app", "cli-password", "Tr0ub4dor3"),
    ("`mysqldump -uapp -p'Tr0ub4dor&3' app > app.sql`", "cli-password", "Tr0ub4dor&3"),
    ("mariadb -uroot -pRootPass app", "cli-password", "RootPass"),
    ("mysql --user=app --password=Tr0ub4dor3 app", "secret-assignment", "Tr0ub4dor3"),
    ("DB_PASSWORD=correcthorsebatterystaple", "secret-assignment", "correcthorsebatterystaple"),
    ("The wifi password is correcthorsebatterystaple.", "secret-assignment", "correcthorsebatterystaple."),
])
def test_command_line_passwords_and_passphrases(text: str, rule: str, secret: str) -> None:
    assert [(f.rule, f.secret) for f in scan_text(text)] == [(rule, secret)]


# ---------------------------------------------------------------- API contracts

SAMPLE_TOKEN = "ghp_" + "Kq8vN2mX5pL9rT3wY6zA1bC4dE7fG0hJ2kM5"
SAMPLE = f"# notes\nexport GITHUB_TOKEN={SAMPLE_TOKEN}\nDB_PASSWORD=Tr0ub4dor&3\n"


def test_finding_position_and_fields() -> None:
    found = scan_text(SAMPLE, path="notes.md")
    assert [(f.rule, f.line, f.column, f.path) for f in found] == [
        ("github-token", 2, 21, "notes.md"), ("secret-assignment", 3, 13, "notes.md")]
    assert found[0].secret == SAMPLE_TOKEN and found[1].secret == "Tr0ub4dor&3"
    assert found[0].masked == "ghp_…M5" and found[1].masked == "*" * 11
    assert found[0].excerpt == "export GITHUB_TOKEN=ghp_…M5"


def test_redact_replaces_each_secret_with_its_rule() -> None:
    assert redact(SAMPLE) == ("# notes\nexport GITHUB_TOKEN=[REDACTED:github-token]\n"
                              "DB_PASSWORD=[REDACTED:secret-assignment]\n")
    assert redact("nothing to see here") == "nothing to see here"


def test_redacted_text_scans_clean() -> None:
    text = "\n\n".join(case["text"] for case in POSITIVES)
    assert scan_text(text) and scan_text(redact(text)) == []


def test_excerpts_and_dicts_never_hold_the_raw_secret() -> None:
    findings = [f for case in POSITIVES for f in scan_text(case["text"])]
    assert len(findings) >= len(POSITIVES)
    for finding in findings:
        assert finding.secret not in finding.excerpt
        as_json = json.dumps(finding.to_dict())
        assert finding.secret not in as_json and json.dumps(finding.secret)[1:-1] not in as_json
        assert "secret" not in finding.to_dict() and finding.to_dict()["masked"] == finding.masked


def test_two_secrets_on_one_line_are_both_masked_in_each_excerpt() -> None:
    key_id, secret_key = "AKIAQ7XK2M4N6P3R5T2V", "Kq8vN2mX5pL9rT3wY6zA1bC4dE7fG0hJ2kM5nP8q"
    found = scan_text(f"creds: {key_id},{secret_key} ({key_id} again)")
    assert {f.rule for f in found} == {"aws-access-key-id", "aws-secret-access-key"}
    for finding in found:
        assert key_id not in finding.excerpt and secret_key not in finding.excerpt


def test_long_lines_are_trimmed_around_the_secret() -> None:
    line = "word " * 200 + SAMPLE_TOKEN + " tail" * 200
    (finding,) = scan_text(line)
    assert len(finding.excerpt) <= 162 and "ghp_…M5" in finding.excerpt
    assert finding.excerpt.startswith("…") and finding.excerpt.endswith("…")


def test_multi_line_private_key_is_one_finding_on_its_begin_line() -> None:
    body = "\n".join("".join(random.Random(i).choice(string.ascii_letters + string.digits + "+/")
                             for _ in range(64)) for i in range(12))
    block = f"-----BEGIN RSA PRIVATE KEY-----\n{body}\n-----END RSA PRIVATE KEY-----"
    (finding,) = scan_text(f"Deploy key:\n\n    {block}\nmore notes\n")
    assert (finding.rule, finding.line, finding.column) == ("private-key", 3, 5)
    assert finding.secret == block
    assert redact(block) == "[REDACTED:private-key]"


def test_private_key_in_service_account_json() -> None:
    body = "\\n".join("MIIEvAIBADANBgkqhkiG9w0BAQEFAASCBKYwggSiAgEAAoIBAQ" + c * 14 for c in "AbCdEf")
    text = '{"type": "service_account",\n "private_key": "-----BEGIN PRIVATE KEY-----\\n' + body + \
           '\\n-----END PRIVATE KEY-----\\n",\n "client_email": "x@y.iam.gserviceaccount.com"}'
    (finding,) = scan_text(text)
    assert finding.rule == "gcp-service-account-key" and finding.line == 2


def test_github_checksum_raises_confidence_but_is_not_required() -> None:
    body = "Kq8vN2mX5pL9rT3wY6zA1bC4dE7fG0"
    number, digits = binascii.crc32(body.encode()), ""
    while number:
        number, rest = divmod(number, 62)
        digits = secrets._B62[rest] + digits
    valid = f"ghp_{body}{digits.rjust(6, '0')}"
    assert secrets.github_checksum_ok(valid)
    (good,) = scan_text(f"token {valid}")
    (bad,) = scan_text(f"token {valid[:-1]}{'A' if valid[-1] != 'A' else 'B'}")
    assert good.description.endswith("(checksum valid)") and good.rule == bad.rule == "github-token"
    assert "checksum" not in bad.description


def test_keyed_hash_is_stable_and_key_dependent() -> None:
    (finding,) = scan_text(f"token {SAMPLE_TOKEN}")
    first = keyed_hash(b"k1", finding)
    assert first == keyed_hash(b"k1", finding) == keyed_hash(b"k1", SAMPLE_TOKEN, rule="github-token")
    assert len(first) == 64 and int(first, 16) >= 0
    assert first != keyed_hash(b"k2", finding)
    assert first != keyed_hash(b"k1", SAMPLE_TOKEN)  # different rule id ("")
    assert SAMPLE_TOKEN not in first


def test_results_are_sorted_by_line_and_column() -> None:
    text = "\n".join(case["text"] for case in POSITIVES[:40])
    found = scan_text(text)
    assert [(f.line, f.column) for f in found] == sorted((f.line, f.column) for f in found)


def test_rules_still_work_when_lowercasing_changes_length() -> None:
    # "İ".lower() is two characters, so the case-folded fallback path must be used.
    found = scan_text("İstanbul notes\nSECRET_KEY=Kq8vN2mX5pL9rT3wY6zA1bC4\n")
    assert [(f.rule, f.line, f.column, f.secret) for f in found] == [
        ("secret-assignment", 2, 12, "Kq8vN2mX5pL9rT3wY6zA1bC4")]


# ---------------------------------------------------------------- files and directories

def test_scan_paths_walks_directories_skips_git_and_sorts(tmp_path: Path) -> None:
    (tmp_path / "b").mkdir()
    (tmp_path / ".git").mkdir()
    (tmp_path / "b" / "z.md").write_text(f"second {SAMPLE_TOKEN}\n")
    (tmp_path / "a.md").write_text(f"x\nfirst {SAMPLE_TOKEN}\n")
    (tmp_path / ".git" / "config").write_text(f"token {SAMPLE_TOKEN}\n")
    (tmp_path / "clean.md").write_text("nothing here\n")
    found = scan_paths([tmp_path])
    assert [(Path(f.path).relative_to(tmp_path).as_posix(), f.line) for f in found] == [
        ("a.md", 2), ("b/z.md", 1)]
    assert scan_paths([tmp_path / "b" / "z.md"])[0].path == str(tmp_path / "b" / "z.md")


def test_binary_files_are_skipped(tmp_path: Path) -> None:
    binary = tmp_path / "blob.bin"
    binary.write_bytes(b"\x89PNG\0\0" + SAMPLE_TOKEN.encode())
    assert scan_file(binary) == [] and scan_paths([tmp_path]) == []


def test_invalid_utf8_is_tolerated(tmp_path: Path) -> None:
    path = tmp_path / "notes.md"
    path.write_bytes(b"caf\xe9 \xff\xfe\n" + f"token {SAMPLE_TOKEN}\n".encode())
    (finding,) = scan_file(path)
    assert (finding.line, finding.secret) == (2, SAMPLE_TOKEN)


def test_large_files_are_read_only_up_to_the_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "big.md"
    path.write_text("x" * 1000 + f"\ntoken {SAMPLE_TOKEN}\n")
    assert len(scan_file(path)) == 1
    monkeypatch.setattr(secrets, "MAX_FILE_BYTES", 500)
    assert scan_file(path) == []


def test_missing_file_raises_oserror(tmp_path: Path) -> None:
    with pytest.raises(OSError):
        scan_file(tmp_path / "missing.md")


# ---------------------------------------------------------------- robustness and speed

@settings(max_examples=300, deadline=2000, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=3000) | st.text(alphabet="-BEGIN PRIVATEKY:=@/_ghp0aAQ~.\n\"'", max_size=3000))
def test_scan_text_never_raises_and_is_fast(text: str) -> None:
    started = time.perf_counter()
    for finding in scan_text(text):
        assert finding.line >= 1 and finding.column >= 1 and finding.secret
    assert redact(text).count("[REDACTED:") >= 0
    assert time.perf_counter() - started < 1.0


@pytest.mark.parametrize("text", [
    "a" * 2_000_000,
    "=" * 1_000_000,
    "-----BEGIN PRIVATE KEY-----" * 20_000,
    "-----BEGIN RSA PRIVATE KEY-----\n" + "A" * 1_000_000,
    "password=" * 100_000,
    "://a:" * 100_000 + "@",
    "Authorization: Bearer " * 50_000,
    ("x" * 31 + " ") * 60_000,
    "Q~" * 200_000 + ":AA" * 100_000,
    "-p" * 1_000_000,
    "mysql -u root -p " * 100_000,
    "docker login -u ci " + "x " * 500_000 + "-p",
])
def test_adversarial_inputs_stay_fast(text: str) -> None:
    started = time.process_time()  # the CPU the scan used: a busy machine stretches wall time, not this
    scan_text(text)
    assert time.process_time() - started < 5.0


# ---------------------------------------------------------------- optional extra engine

def _fake_engine(secret: str, line: int, column: int) -> types.ModuleType:
    module = types.ModuleType("betterleaks")
    item = types.SimpleNamespace(secret=secret, rule_id="demo-rule", description="demo",
                                 location=types.SimpleNamespace(start_line=line, start_column=column))
    module.scan_string = lambda text: [item]  # type: ignore[attr-defined]
    return module


def test_extra_engine_absent_costs_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(secrets, "_extra_engine", secrets._NOT_LOADED)
    monkeypatch.setitem(sys.modules, "betterleaks", None)  # makes the import fail
    monkeypatch.setattr(secrets, "USE_EXTRA_ENGINE", True)
    assert [f for f in scan_text(SAMPLE) if f.rule.startswith("betterleaks:")] == []
    assert secrets._extra_engine is None
    assert [f.rule for f in scan_text(SAMPLE)] == ["github-token", "secret-assignment"]


def test_extra_engine_findings_are_added_never_replacing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(secrets, "USE_EXTRA_ENGINE", True)
    text = "note: custom-credential QWxhZGRpbjpvcGVuIHNlc2FtZQ\n" + SAMPLE
    monkeypatch.setattr(secrets, "_extra_engine", _fake_engine("custom-credential", 1, 7))
    assert [(f.rule, f.line, f.column) for f in scan_text(text)] == [
        ("betterleaks:demo-rule", 1, 7), ("github-token", 3, 21), ("secret-assignment", 4, 13)]
    # on a span a built-in rule already reported, the built-in finding wins
    monkeypatch.setattr(secrets, "_extra_engine", _fake_engine(SAMPLE_TOKEN, 3, 21))
    assert [f.rule for f in scan_text(text)] == ["github-token", "secret-assignment"]


def test_extra_engine_errors_are_contained(monkeypatch: pytest.MonkeyPatch) -> None:
    broken = types.ModuleType("betterleaks")
    broken.scan_string = lambda text: 1 / 0  # type: ignore[attr-defined]
    monkeypatch.setattr(secrets, "USE_EXTRA_ENGINE", True)
    monkeypatch.setattr(secrets, "_extra_engine", broken)
    assert [f.rule for f in scan_text(SAMPLE)] == ["github-token", "secret-assignment"]


def test_real_betterleaks_when_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("betterleaks")
    monkeypatch.setattr(secrets, "_extra_engine", secrets._NOT_LOADED)
    monkeypatch.setattr(secrets, "USE_EXTRA_ENGINE", True)
    extra = [f for f in scan_text(SAMPLE, "notes.md") if f.rule.startswith("betterleaks:")]
    assert extra and all(f.rule.startswith("betterleaks:") for f in extra)
    assert any(f.secret == SAMPLE_TOKEN and f.line == 2 for f in extra)
