"""Run small dense linear algebra on one BLAS thread.

The optimizer's tiny (5x5) matrix work is dominated by thread start-up when BLAS is
multi-threaded; limiting BLAS to one thread makes a fit several times faster. Uses
``threadpoolctl`` when installed, otherwise does nothing.
"""

from __future__ import annotations

from contextlib import nullcontext

try:
    from threadpoolctl import threadpool_limits
except ImportError:  # pragma: no cover - optional
    threadpool_limits = None


def single_thread_blas():
    return threadpool_limits(limits=1, user_api="blas") if threadpool_limits else nullcontext()
