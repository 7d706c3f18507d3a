"""HTTP only: one module per service; the domain lives in kumo.core."""
