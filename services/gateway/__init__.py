"""The gateway: BinderHub's HTTP API and event streams over the event log.

Rooms, each with one reason to change (imports point down this list):
`app` assembles the application; `launches` (/build, /launches/<id>/events),
`logs`, `health`, `api`, `badges` and `web` add routes; `streaming` sends one
launch as SSE, through the `fanout` (one log follower per watched launch);
`sse` owns the wire (heartbeats, event JSON, resumable ids); `admission` and
`bans` apply BinderHub's rules on who may launch; `provider_config` shows the
provider catalogue; `state` is what handlers share; `paths` and `tokens` are
pure helpers; `metrics` and `launch_metrics` are BinderHub's metrics.
"""
