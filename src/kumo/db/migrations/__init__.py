"""Alembic migrations: an append-only list of small steps (DESIGN.md section 5).

Each revision module sets ``PHASE`` to ``"expand"`` (safe while old code still runs) or
``"contract"`` (destructive, run by ``kumo db contract`` once no old service remains).
"""
