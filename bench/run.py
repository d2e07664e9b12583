#!/usr/bin/env python3
"""evhost's benchmark runner: throughput, latency and memory against the
plain hiredis + libuv limit, on a private redis-server.

Called by scripts/bench. The work is in the package next to this file,
bench/evhbench/ (see its __init__.py for which module does what); this is
only its entry point. Standard library only.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from evhbench.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
