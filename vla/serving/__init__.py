"""Policy serving over ZeroMQ: transport only, numpy + pyzmq + msgpack (no torch here).

The server hosts one Policy for many clients; the client is light enough for the robot side.
"""
