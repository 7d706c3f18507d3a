"""Compute API (Nova v2.1 shapes with microversions), served under /compute."""
