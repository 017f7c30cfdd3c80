"""Realtime: the Pusher protocol, channels and fan-out, presence, and the chat use cases.

Nothing here imports `tornado.web` or `handlers/`: connections arrive through the small
`adapter.Connection` interface, so the hub runs under tests with a fake connection.
"""
