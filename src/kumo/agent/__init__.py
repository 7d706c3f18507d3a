"""The host agent: registers its host, reports, and (later) reconciles guests on it.

It never imports kumo.db: everything goes through the agent API over HTTP.
"""
