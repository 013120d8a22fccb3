"""A WebSocket bot and server in Python (the websockets library), for
rca-connect's WebSocket tests.

usage: websocket.py serve PORT
    Serves plain ws:// on 127.0.0.1:PORT (behind rca-proxy): each connection
    first gets "path=P;x5t=T" (the identity headers its handshake carried),
    then every message back.
usage: websocket.py connect URL MESSAGE [ORIGIN]
    Opens URL (through HTTPS_PROXY for wss://, its CA from SSL_CERT_FILE, as
    the guide's recipe does; ws:// goes direct), sends MESSAGE, and prints one
    JSON object: the server's first message, the echo, the 101's headers; or
    the status of a refused handshake. With WS_HOLD_SECS set, it prints that
    as soon as the echo came, keeps the WebSocket open that long, and then
    prints {"closed": true} if the other side closed it meanwhile (at once),
    else {"closed": false}.
"""
import asyncio
import json
import os
import ssl
import sys


def serve(port):
    from websockets.sync.server import serve as websocket_server

    def handler(connection):
        headers = connection.request.headers
        connection.send("path={};x5t={}".format(
            headers.get("x-client-auth-path", ""),
            headers.get("x-client-cert-x5t-s256", ""),
        ))
        for message in connection:
            connection.send(message)

    with websocket_server(handler, "127.0.0.1", port) as server:
        server.serve_forever()


def connect(url, message, origin):
    """The asyncio client, not the sync one: the sync client reads its
    socket in a thread of its own while the caller's thread writes the
    handshake, and Python's TLS sockets are not safe for that. Over wss://
    about one handshake in two hundred was lost on this machine, also
    straight to the server with no rca-connect between (cpython's ssl
    shares one OpenSSL connection between the two threads)."""
    asyncio.run(connect_async(url, message, origin))


async def connect_async(url, message, origin):
    from websockets.asyncio.client import connect as websocket_client
    from websockets.exceptions import InvalidStatus

    options = {"open_timeout": 30, "proxy": None}
    if url.startswith("wss://"):
        options["proxy"] = os.environ["HTTPS_PROXY"]
        options["ssl"] = ssl.create_default_context(cafile=os.environ["SSL_CERT_FILE"])
    if origin:
        options["origin"] = origin
    try:
        async with websocket_client(url, **options) as connection:
            first = await asyncio.wait_for(connection.recv(), 30)
            await connection.send(message)
            echo = await asyncio.wait_for(connection.recv(), 30)
            headers = {name.lower(): value for name, value in connection.response.headers.raw_items()}
            result = {"status": connection.response.status_code, "first": first, "echo": echo, "headers": headers}
            hold = float(os.environ.get("WS_HOLD_SECS", "0"))
            if hold:
                print(json.dumps(result), flush=True)
                try:
                    await asyncio.wait_for(connection.wait_closed(), hold)
                    closed = True
                except asyncio.TimeoutError:
                    closed = False
                print(json.dumps({"closed": closed}), flush=True)
                return
    except InvalidStatus as refused:
        response = refused.response
        result = {"status": response.status_code, "body": response.body.decode("utf-8", "replace")}
    print(json.dumps(result))


if sys.argv[1] == "serve":
    serve(int(sys.argv[2]))
else:
    connect(sys.argv[2], sys.argv[3], sys.argv[4] if len(sys.argv) > 4 else None)
