"""Performance runs. Each prints its workload, its figure and its ratio to the raw storage operation measured
in the same run (`benchmarks/baseline.py`)."""
