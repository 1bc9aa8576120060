#!/usr/bin/env python3
"""An S3-compatible server for kbindex's object-store tests: moto's S3 (server mode) on
127.0.0.1, with real credential and signature checks, plus a small control API for the tests.

Run from the test virtualenv (scripts/python-venv.sh makes it):

    .venv-tests/bin/python Tests/Python/s3_server.py [--part-min-size BYTES]

stdout, one line each, then nothing more:
    1. the port it listens on (an ephemeral one)
    2. JSON: {"access_key", "secret_key", "session": {"access_key", "secret_key", "token"}}

Credentials: moto enforces IAM authentication for every request (INITIAL_NO_AUTH_ACTION_COUNT
is 0), so an unknown access key gets 403 InvalidAccessKeyId and a wrong secret gets 403
SignatureDoesNotMatch: moto recomputes each request's AWS Signature V4 with botocore from the
request as it arrived (method, path, query, signed headers, x-amz-content-sha256) and compares.
The server creates one IAM user with an access key allowed s3:*, and one role assumed through
STS, whose temporary credentials need their x-amz-security-token.

Control API (unsigned, under /_kbtest/, never reaching moto):
    POST /_kbtest/buckets/NAME          create a bucket
    POST /_kbtest/faults                add a fault, JSON:
        {"status": 503, "code": "SlowDown", "count": 2, "method": "PUT", "key_suffix": ".kbseg",
         "query_contains": "partNumber"}   answer the next `count` matching requests with this error
        {"drop_after_bytes": N, "count": 1, ...}   read N bytes of the matching request's body,
                                                   then cut the connection without an answer
        {"corrupt_body": true, ...}        answer as moto does, with one byte of the body flipped
        {"drop_response": true, ...}       let moto handle the request, then cut the connection
                                           without its answer (the write happened, the client
                                           does not know)
        {"truncate_body": N, ...}          let moto answer, announce its Content-Length, send
                                           only the first N bytes of the body, then close
    DELETE /_kbtest/faults              remove every fault
    GET /_kbtest/requests               JSON list of every S3 request seen so far:
        {"method", "path", "query", "fault", "security_token"} (fault: what was injected, or null)
    GET /_kbtest/uploads/NAME           JSON list of the bucket's unfinished multipart uploads
    GET /_kbtest/health                 "ok"

Conditional writes (If-Match / If-None-Match on PUT and CompleteMultipartUpload) are
serialized, as S3 decides them atomically and moto alone does not.

The minimum multipart part size (S3: 5 MiB except the last part) is lowered with
--part-min-size (moto's S3_UPLOAD_PART_MIN_SIZE), so tests can use small parts.
"""
import argparse
import json
import os
import socket
import sys
import threading


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--part-min-size", type=int, default=64 * 1024)
    args = parser.parse_args()
    # moto reads both at import time.
    os.environ["INITIAL_NO_AUTH_ACTION_COUNT"] = "0"
    os.environ["S3_UPLOAD_PART_MIN_SIZE"] = str(args.part_min_size)
    os.environ.setdefault("MOTO_ALLOW_NONEXISTENT_REGION", "true")

    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.iam.models import iam_backends
    from moto.s3.models import s3_backends
    from moto.sts.models import sts_backends
    from moto.moto_server.werkzeug_app import create_backend_app
    from werkzeug.serving import make_server

    account = DEFAULT_ACCOUNT_ID
    iam = iam_backends[account]["aws"]
    allow_s3 = json.dumps({"Version": "2012-10-17",
                           "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]})
    iam.create_user(region_name="us-east-1", user_name="kbindex-test")
    iam.put_user_policy("kbindex-test", "s3", allow_s3)
    key = iam.create_access_key("kbindex-test")
    trust = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{account}:root"}, "Action": "sts:AssumeRole"}]})
    role = iam.create_role("kbindex-test-role", trust, "/", None, "", [], None)
    iam.put_role_policy("kbindex-test-role", "s3", allow_s3)
    assumed = sts_backends[account]["aws"].assume_role(
        region_name="us-east-1", role_session_name="kbindex-test", role_arn=role.arn,
        policy="", duration=3600, external_id="")

    s3 = s3_backends[account]["aws"]
    moto_app = create_backend_app("s3")

    lock = threading.Lock()
    conditional_write_lock = threading.Lock()
    faults: list[dict] = []
    requests: list[dict] = []

    def reply(start_response, status: str, body: bytes, ctype: str = "application/json"):
        start_response(status, [("Content-Type", ctype), ("Content-Length", str(len(body)))])
        return [body]

    def control(environ, start_response):
        method = environ["REQUEST_METHOD"]
        path = environ.get("PATH_INFO", "")[len("/_kbtest"):]
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        with lock:
            if path == "/health":
                return reply(start_response, "200 OK", b"ok", "text/plain")
            if path.startswith("/buckets/") and method == "POST":
                s3.create_bucket(path[len("/buckets/"):], "us-east-1")
                return reply(start_response, "200 OK", b"{}")
            if path.startswith("/uploads/") and method == "GET":
                bucket = s3.get_bucket(path[len("/uploads/"):])
                uploads = [{"key": m.key_name, "upload_id": m.id} for m in bucket.multiparts.values()]
                return reply(start_response, "200 OK", json.dumps(uploads).encode())
            if path == "/faults" and method == "POST":
                fault = json.loads(body or b"{}")
                fault.setdefault("count", 1)
                faults.append(fault)
                return reply(start_response, "200 OK", b"{}")
            if path == "/faults" and method == "DELETE":
                faults.clear()
                return reply(start_response, "200 OK", b"{}")
            if path == "/requests" and method == "GET":
                return reply(start_response, "200 OK", json.dumps(requests).encode())
        return reply(start_response, "404 Not Found", b'{"error":"unknown control call"}')

    def matching_fault(method: str, path: str, query: str):
        for fault in faults:
            if fault["count"] <= 0:
                continue
            if "method" in fault and fault["method"].upper() != method:
                continue
            if "key_suffix" in fault and not path.endswith(fault["key_suffix"]):
                continue
            if "query_contains" in fault and fault["query_contains"] not in query:
                continue
            fault["count"] -= 1
            return fault
        return None

    def app(environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path.startswith("/_kbtest/"):
            return control(environ, start_response)
        method = environ["REQUEST_METHOD"]
        query = environ.get("QUERY_STRING", "")
        with lock:
            fault = matching_fault(method, path, query)
            requests.append({"method": method, "path": path, "query": query,
                             "fault": dict(fault) if fault else None,
                             "security_token": environ.get("HTTP_X_AMZ_SECURITY_TOKEN")})
        if fault and ("drop_after_bytes" in fault or fault.get("drop_response")):
            if fault.get("drop_response"):
                # The request takes effect; its answer is lost with the connection.
                list(moto_app(environ, lambda *args, **kwargs: None))
            else:
                environ["wsgi.input"].read(int(fault["drop_after_bytes"]))
            sock = environ.get("werkzeug.socket")
            if sock is not None:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                sock.close()
            raise ConnectionAbortedError("kbtest: connection dropped on purpose")
        if fault and "truncate_body" in fault:
            # A body shorter than announced: the status line and headers as moto sent them
            # (its Content-Length), then N bytes, then the connection closes.
            captured = {}
            def capture_headers(status, headers, exc_info=None):
                captured["status"], captured["headers"] = status, headers
            body = b"".join(moto_app(environ, capture_headers))
            head = f"HTTP/1.1 {captured['status']}\r\n"
            headers = [(k, v) for k, v in captured["headers"] if k.lower() not in ("content-length", "connection")]
            head += "".join(f"{k}: {v}\r\n" for k, v in headers)
            head += f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
            sock = environ.get("werkzeug.socket")
            if sock is not None:
                try:
                    sock.sendall(head.encode("latin-1") + body[:int(fault["truncate_body"])])
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                sock.close()
            raise ConnectionAbortedError("kbtest: body truncated on purpose")
        if fault and fault.get("corrupt_body"):
            captured = {}
            def capture(status, headers, exc_info=None):
                captured["status"], captured["headers"] = status, headers
            body = bytearray(b"".join(moto_app(environ, capture)))
            if body:
                body[len(body) // 2] ^= 0xFF
            start_response(captured["status"], captured["headers"])
            return [bytes(body)]
        if fault and "status" in fault:
            code = fault.get("code", "InternalError")
            xml = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code>'
                   f'<Message>injected by the test server</Message></Error>').encode()
            length = int(environ.get("CONTENT_LENGTH") or 0)
            if length:
                environ["wsgi.input"].read(length)
            return reply(start_response, f'{fault["status"]} Injected', xml, "application/xml")
        if method in ("PUT", "POST") and ("HTTP_IF_MATCH" in environ or "HTTP_IF_NONE_MATCH" in environ):
            # moto checks the condition and then writes without a lock, so two racing writers
            # could both win; S3 decides atomically. One conditional write at a time here.
            with conditional_write_lock:
                return list(moto_app(environ, start_response))
        return moto_app(environ, start_response)

    server = make_server("127.0.0.1", 0, app, threaded=True)
    print(server.server_port, flush=True)
    print(json.dumps({"access_key": key.access_key_id, "secret_key": key.secret_access_key,
                      "session": {"access_key": assumed.access_key_id,
                                  "secret_key": assumed.secret_access_key,
                                  "token": assumed.session_token}}), flush=True)
    # Exit when the parent goes away (stdin closes), so no server outlives its tests.
    threading.Thread(target=lambda: (sys.stdin.read(), os._exit(0)), daemon=True).start()
    server.serve_forever()


if __name__ == "__main__":
    main()
