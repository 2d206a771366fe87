"""The cyclic garbage collector paused over work that makes many objects and no cycles.

Decoding a page of a thousand records, or judging a few hundred thousand rows of a control,
makes hundreds of thousands of containers; the collections their allocation sets off find no
garbage (what they make holds no cycle and is freed by its reference count) and cost a third
of the decode, a quarter of a compliance run. One mechanism for every such place: pauses are
counted across threads (prefetched pages, a sync beside a compliance run), so the collector
resumes only when the last of them is done, and only if it was on before.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_pauses = 0
_was_enabled = False


@contextmanager
def collector_paused() -> Iterator[None]:
    """The collector off for the block (counted, see the module doc). When the last pause
    ends, what was made meanwhile joins the oldest generation at once (freeze, then
    unfreeze: two list splices) instead of one pass of the youngest over all of it; left
    alone when the process froze objects of its own."""
    global _pauses, _was_enabled
    with _lock:
        if _pauses == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _pauses += 1
    try:
        yield
    finally:
        with _lock:
            _pauses -= 1
            if _pauses == 0 and _was_enabled:
                if not gc.get_freeze_count():
                    gc.freeze()
                    gc.unfreeze()
                gc.enable()
