"""kumo's dashboard (DESIGN.md section 7): HTML pages served at ``/``.

A client of kumo's public APIs only: every page calls the same Keystone, Nova, Glance,
Neutron and Cinder APIs as the openstack CLI (in process, with the signed-in user's token),
so the dashboard can do exactly what the CLI can and nothing else. It imports neither
kumo.core nor kumo.db nor kumo.api (an import-linter contract checks that). docs/dashboard.md
says why the stack is server-rendered Jinja2 with htmx.
"""
