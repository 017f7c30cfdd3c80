"""The chat domain: the use cases of visitors, agents and their conversations.

Built on the Pusher engine (`realtime.pusher`) and the store (`store`); the engine knows
nothing of this package. Each module holds one feature's rules; `docs/architecture.md` maps
URLs to the modules here.
"""
