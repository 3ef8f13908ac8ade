"""Reports of result sets: Markdown, CSV, plots, the index of published sets."""
