"""Who owns each prefix, and how a node comes to own it.

`owners` holds the shared vocabulary: who owns a prefix (`OwnerInfo`,
`MemberInfo`), the redirect errors (`NotOwner`, `Fenced`), the callbacks an
owner makes into its store (`Owned`), the read-only view the router and the
inspection RPCs get (`OwnershipView`), the view with the node's own leases
that Watch asks (`NodeOwnership`) and the owner of a store alone on its
database (`SingleNodeOwnership`). `leases` is the owner shared by several
processes (`LeaseOwnership`): one lease per prefix, renewed by heartbeat,
taken over on expiry, handed over to balance; `lease_db` runs its
transactions in the cache's database, `membership` decides who should own
what (rendezvous hashing over the live members), `liveness` tells when a
process on this host has exited (its leases need not expire first) and
`lease_metrics` counts leases, members and forwarded calls; `lapsed` lets a
taker end the blocking database session of an owner whose lease has expired. What the store
asks of an owner is declared by the store (`services.cache.store.cache_store.Ownership`).
"""

from services.cache.ownership.lease_db import Incarnation, LeaseDb
from services.cache.ownership.lease_metrics import OwnershipMetrics
from services.cache.ownership.leases import LeaseOwnership
from services.cache.ownership.liveness import host_key
from services.cache.ownership.membership import preferred
from services.cache.ownership.owners import (
    ALL_PREFIXES,
    Fenced,
    MemberInfo,
    NodeOwnership,
    NotOwner,
    Owned,
    OwnerInfo,
    OwnershipView,
    SingleNodeOwnership,
)

__all__ = [
    "ALL_PREFIXES",
    "Fenced",
    "Incarnation",
    "LeaseDb",
    "LeaseOwnership",
    "MemberInfo",
    "NodeOwnership",
    "NotOwner",
    "Owned",
    "OwnerInfo",
    "OwnershipMetrics",
    "OwnershipView",
    "SingleNodeOwnership",
    "host_key",
    "preferred",
]
