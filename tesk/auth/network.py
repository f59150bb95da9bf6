"""The create-time URL check, under the name the composition root imports it by.

The checks belong to the filer (tesk/filer/network.py), whose HTTP sessions repeat them on every
request and redirect.
"""

from tesk.filer.network import check_url_host

__all__ = ["check_url_host"]
