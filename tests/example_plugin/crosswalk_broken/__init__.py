"""A plugin that fails to import, to prove one broken plugin is reported, not fatal."""

raise ImportError("crosswalk_broken needs a vendor SDK that is not installed")
