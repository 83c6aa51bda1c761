"""Watch: what the near caches of clients hear of commits.

- `positions`: where each prefix's history stands (lease epoch, commit sequence);
- `invalidations`: one change per commit group and prefix, queued to watchers;
- `stream`: the Watch stream (positions, invalidations, heartbeats, resets).
"""
