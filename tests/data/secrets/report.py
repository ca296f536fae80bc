"""Recall per syntax and per provider, false alarms per look-alike kind, on the wide corpus.

    python -m tests.data.secrets.report            # the tables
    python -m tests.data.secrets.report --misses   # and each missed secret / false alarm
"""
from __future__ import annotations

import sys
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from gitend.secrets import Finding, scan_text
from tests.data.secrets.corpus import Case, lookalikes, positives

Scan = Callable[[str], list[Finding]]


def _spans(text: str, findings: Iterable[Finding]) -> list[tuple[int, int]]:
    starts = [0] + [i + 1 for i, c in enumerate(text) if c == "\n"]
    return [(starts[f.line - 1] + f.column - 1, starts[f.line - 1] + f.column - 1 + len(f.secret)) for f in findings]


def found(case: Case, findings: list[Finding]) -> bool:
    """A finding covers a good part of where the secret is written (all of it, when it is short)."""
    need = min(8, case.end - case.start)
    return any(min(end, case.end) - max(start, case.start) >= need for start, end in _spans(case.text, findings))


@dataclass
class Results:
    by_syntax: dict[str, list[int]] = field(default_factory=lambda: defaultdict(lambda: [0, 0]))  # [found, total]
    by_provider: dict[str, list[int]] = field(default_factory=lambda: defaultdict(lambda: [0, 0]))
    alarms_by_kind: dict[str, list[int]] = field(default_factory=lambda: defaultdict(lambda: [0, 0]))  # [fired, total]
    missed: list[Case] = field(default_factory=list)
    alarms: list[tuple[Case, list[Finding]]] = field(default_factory=list)

    @staticmethod
    def rate(counts: Iterable[list[int]]) -> float:
        hits, total = map(sum, zip(*counts))
        return hits / total

    @property
    def recall(self) -> float:
        return self.rate(self.by_syntax.values())

    @property
    def false_alarm_rate(self) -> float:
        return self.rate(self.alarms_by_kind.values())


def evaluate(scan: Scan = scan_text) -> Results:
    results = Results()
    for case in positives():
        hit = found(case, scan(case.text))
        for table in (results.by_syntax[case.syntax], results.by_provider[case.group]):
            table[0] += hit
            table[1] += 1
        if not hit:
            results.missed.append(case)
    for case in lookalikes():
        findings = scan(case.text)
        results.alarms_by_kind[case.group][0] += bool(findings)
        results.alarms_by_kind[case.group][1] += 1
        if findings:
            results.alarms.append((case, findings))
    return results


def _table(title: str, rows: dict[str, list[int]], worst_first: bool = False) -> str:
    ordered = sorted(rows.items(), key=lambda kv: (kv[1][0] / kv[1][1], kv[0]) if worst_first else kv[0])
    width = max(map(len, rows)) + 2
    lines = [title] + [f"  {name:<{width}} {hits / total:6.3f}  ({hits}/{total})" for name, (hits, total) in ordered]
    return "\n".join(lines)


def main(argv: list[str]) -> None:
    results = evaluate()
    positives_total = sum(total for _, total in results.by_syntax.values())
    print(f"recall {results.recall:.3f} over {positives_total} samples; "
          f"false alarms {results.false_alarm_rate:.3f} over "
          f"{sum(t for _, t in results.alarms_by_kind.values())} look-alikes\n")
    print(_table("recall per syntax", results.by_syntax, worst_first=True), "\n")
    imperfect = {k: v for k, v in results.by_provider.items() if v[0] < v[1]}
    print(_table(f"recall per provider ({len(results.by_provider)} providers; "
                 f"{len(results.by_provider) - len(imperfect)} at 1.000, the others:)", imperfect, worst_first=True)
          if imperfect else f"recall per provider: all {len(results.by_provider)} providers at 1.000", "\n")
    print(_table("false alarms per kind", results.alarms_by_kind))
    if "--misses" in argv:
        for case in results.missed:
            print(f"\nMISSED {case.group} / {case.syntax}:\n{case.text[:300]}")
        for case, findings in results.alarms:
            print(f"\nFALSE ALARM {case.group} / {case.syntax} ({', '.join(f.rule for f in findings)}):\n{case.text[:300]}")


if __name__ == "__main__":
    main(sys.argv[1:])
