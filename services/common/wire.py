"""Metadata names the cache nodes and the cache client agree on.

Both sides import them from here: the server must not import the client to
learn its own protocol.
"""

from __future__ import annotations

# Trailing metadata of a forwarded reply: "<prefix>=<owner address>", one per prefix.
# The client learns from it where to call a prefix's owner directly next time.
OWNER_HEADER = "x-marketcache-owner"
# Metadata of a call one node forwarded to another (the value: the forwarding node's
# id). A node never forwards such a call again, so a call cannot bounce between two
# nodes that each believe the other owns its prefix during a handover.
FORWARDED_BY = "x-marketcache-forwarded-by"
