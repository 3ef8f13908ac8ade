"""From what was asked to what runs: run specs, declared options, resolution, identities, matrix files."""
