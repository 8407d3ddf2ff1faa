"""Side-by-side benchmarks: `make bench` runs them and writes docs/benchmarks.md."""
