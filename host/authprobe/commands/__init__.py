"""authprobe command modules, one per CLI command (see authprobe.cli.COMMANDS)."""
