"""Runner, CLI, measurement and reporting."""
