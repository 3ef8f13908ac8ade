"""Where a run executes: device and precision, runs across processes, fault injection, checkpoints."""
