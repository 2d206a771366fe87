"""``python -m itcrosswalk.cli``: the same as the ``crosswalk`` console script."""

from . import main

main()
