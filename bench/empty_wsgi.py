"""An empty WSGI app: the HTTP server's own ceiling on this machine (bench/api.py baseline)."""


def application(environ, start_response):
    environ["wsgi.input"].read()
    start_response("202 Accepted", [("Content-Type", "application/json"), ("Content-Length", "2")])
    return [b"{}"]
