"""Benchmarks: scripts that print performance tables (ours vs a peer, measured in one run). See RESULTS.md."""
