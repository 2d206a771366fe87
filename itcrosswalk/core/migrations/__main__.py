"""``python -m itcrosswalk.core.migrations "what changed"``: write the next store revision."""

from __future__ import annotations

import sys

from . import new_revision

if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit('usage: python -m itcrosswalk.core.migrations "what the revision changes"')
    print(new_revision(sys.argv[1]))
