"""Benchmarks: run on demand, print a table and write JSON under bench/results/."""
