# ruff: noqa: F821 - metadata() and package() are provided by the MicroPython manifest loader.
# Freeze or mip-install the self-test: `require`s nothing beyond the firmware's own modules.
# Frozen into a MicroPython build with FROZEN_MANIFEST, or installed with `mpremote mip install`.
metadata(description="authprobe device self-test for AWS IoT Core custom authentication", version="0.1.0")

package("selftest", base_path=".")
