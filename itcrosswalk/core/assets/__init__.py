"""Hardware lifecycle planning over the store: the refresh forecast (:mod:`.forecast`)."""
