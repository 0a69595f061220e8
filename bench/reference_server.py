"""The framework ceiling: a trivial workers.status_report on quart-trio + hypercorn (trio worker).

It does the least a real handler must: read the body, decode it (orjson, as workerhub does), read
``worker``, and answer a ClearML envelope with a fresh call id. Same hypercorn settings as workerhub
(no access log). workerhub's real status_report is measured against this in the same run.

usage: python reference_server.py PORT
"""

from __future__ import annotations

import sys
import uuid

import orjson
import trio
from hypercorn.config import Config
from hypercorn.trio import serve
from quart import Response, request
from quart_trio import QuartTrio

app = QuartTrio("reference")


@app.post("/workers.status_report")
async def status_report() -> Response:
    body = orjson.loads(await request.get_data(cache=False))
    _ = body["worker"]
    call_id = uuid.uuid4().hex
    meta = {
        "id": call_id,
        "trx": call_id,
        "endpoint": {"name": "workers.status_report", "requested_version": "2.4", "actual_version": "2.4"},
        "result_code": 200,
        "result_subcode": 0,
        "result_msg": "OK",
        "error_stack": None,
        "error_data": {},
    }
    return Response(orjson.dumps({"meta": meta, "data": {}}), status=200, content_type="application/json")


def main() -> None:
    config = Config()
    config.bind = [f"127.0.0.1:{int(sys.argv[1])}"]
    config.accesslog = None
    trio.run(serve, app, config)


if __name__ == "__main__":
    main()
