"""What a running process needs around the core: settings, logging, metrics."""
