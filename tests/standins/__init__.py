"""Stand-ins for the public services binderflow's providers talk to, on 127.0.0.1.

The internet is unreachable here, so each module serves one service's HTTP API
the way the real service answers (status codes, redirects, JSON field names
taken from recorded answers): api.github.com, GitLab, doi.org, Zenodo, Figshare,
HydroShare, Dataverse and CKAN.
"""
