"""Standard PMO and service templates, defined once and meaning the same on every platform.

``loader`` gathers them (the standard YAML in ``standard/``, plugins, the City's folders);
``check`` holds records to what their stage requires; ``render`` writes Markdown and HTML
from any platform's records; ``apply`` creates a form's record through a platform's writer.
"""
