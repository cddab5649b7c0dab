"""MedDistill's tests: a package, so that ``tests.*`` imports resolve here even where another distribution installs
a top-level ``tests`` package (iterative-stratification's wheel does)."""
