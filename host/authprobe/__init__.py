"""authprobe: find out, with evidence from the device and the cloud, why a board cannot connect to
AWS IoT Core with custom authentication."""

__version__ = "0.1.0"
