"""Control loops. One controller is active at a time, by lease (DESIGN.md section 2)."""
