"""Faults for tests and the long randomized run (`make nemesis`)."""
