"""Running resolved cells: one cell (runner), a matrix (planner and executors), Ray, throughput."""
