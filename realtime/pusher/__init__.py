"""The Pusher engine: protocol 7 (`protocol`), signatures (`signing`), sockets' sessions and
apps (`hub`), channel membership and fan-out for one node or several (`adapter`,
`redis_adapter`), the WebSocket transport (`transport`), the HTTP API's use cases
(`http_api`) and webhooks (`webhooks`).

It knows nothing of chats: who may join a channel and who a socket's caller is are given to
it (`hub.Hub`'s policy and `hub.Caller`); the chat use cases live beside it in `realtime`.
"""
