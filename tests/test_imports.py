"""Starting the app must not import `transformers` (bertviz's `__init__` pulls it in: seconds of startup).

Checked in a fresh interpreter, since this test process may have imported anything already.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("transformers", "bertviz")

PROBE = """
import importlib, json, pkgutil, sys
import model, viz.bertviz_html
packages = ["model", "viz"]
if importlib.util.find_spec("app_lib") is not None:
    import app_lib
    packages.append("app_lib")
for package in packages:  # every module of the packages the app is built from
    for info in pkgutil.iter_modules(importlib.import_module(package).__path__):
        importlib.import_module(f"{package}.{info.name}")
# building a bertviz view reads bertviz's JavaScript files without importing the package
viz.bertviz_html.head_view_html([[[[0.5, 0.5], [0.5, 0.5]]]], ["a", "b"])
print(json.dumps(sorted({m.split(".")[0] for m in sys.modules})))
"""


def test_app_modules_do_not_import_transformers_or_bertviz():
    done = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True, text=True, timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    loaded = set(json.loads(done.stdout.strip().splitlines()[-1]))
    assert not loaded & set(HEAVY), f"imported at app start: {sorted(loaded & set(HEAVY))}"
