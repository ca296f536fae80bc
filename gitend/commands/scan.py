"""`gitend scan`: the secret scanner on files and folders."""
from __future__ import annotations

import json
import os
import sys

from gitend import secrets
from gitend.errors import GitendError
from gitend.output import paint, safe


def run(targets: list[str], *, as_json: bool) -> int:
    for target in targets:
        if not os.path.exists(target):
            raise GitendError(f"{target} does not exist")
    try:
        findings = secrets.scan_paths(targets)
    except OSError as exc:
        raise GitendError(f"cannot read {exc.filename}: {exc.strerror}") from None
    if as_json:
        print(json.dumps([f.to_dict() for f in findings], indent=2))
    else:
        for f in findings:
            print(f"{safe(f.path)}:{f.line}:{f.column}: {paint(f.rule, 'red')} {f.masked}  {safe(f.excerpt.strip())}")
        engines = secrets.engines()  # named when betterleaks adds its findings to gitend's
        using = f" (engines: {', '.join(engines)})" if len(engines) > 1 else ""
        print(f"{len(findings)} possible secret(s) found{using}" if findings else f"no secrets found{using}",
              file=sys.stderr if findings else sys.stdout)
    return 1 if findings else 0
