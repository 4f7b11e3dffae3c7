"""`python -m benchmarks.load`: see benchmarks/load/__init__.py."""

from .cli import main

raise SystemExit(main())
