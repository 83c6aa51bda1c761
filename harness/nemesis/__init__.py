"""Faults to inflict on real marketcache processes, and a runner that keeps inflicting them.

A map of the package:

- `proxy`: `BlackholeProxy`, a userspace TCP proxy that cuts a link one way or
  both, between requests or mid-request, and heals it, with every socket left open;
- `netns`: partitions between processes in network namespaces (veth pairs on a
  bridge, `iptables` DROP rules); needs root; namespaces are uniquely named and
  always removed, and those of a run killed before its clean-up by the next;
- `signals`: SIGSTOP/SIGCONT and kill -9 of a process group;
- `faults`: the fault classes the runner knows, in a small registry
  (`register`), so other modules plug theirs in;
- `clock`: libfaketime clocks per process (an offset changed while it runs, or a rate);
- `disk`: a size-limited tmpfs for a full disk, and a stopped holder of SQLite's write lock;
- `kernel_cut`: `netns-partition`, a node in a namespace of its own cut off by
  iptables from its peers, clients and PostgreSQL, with what must hold checked;
- `cluster`: three cache processes on PostgreSQL or SQLite, each with its
  database link behind a proxy, one of them in a network namespace when a run needs it;
- `workload`: clients through the library (with and without the near cache) and
  raw stubs, recording a history;
- `checks`: the checkers run over every history (linearizability per key,
  bounded staleness, acknowledged never lost, epochs never backwards);
- `runner`: `make nemesis`, random faults for `NEMESIS_SECONDS`, and the bounded
  version (each fault class once) that `make test` runs.
"""
