"""``python -m bench`` (``make bench``): scratch against torch.nn on the CPU.

See ``python -m bench --help`` and docs/performance.md.
"""

from bench.cli import main

raise SystemExit(main())
