#!/usr/bin/env python3
"""Real clients against kbindex's MCP and HTTP faces.

Run by scripts/test-python.sh (which makes the virtualenv and builds the binary); by hand:

    .venv-tests/bin/python Tests/Python/test_clients.py --kbindex .build/debug/kbindex

It builds a small index with the default model, then:
  1. MCP over stdio (`kbindex mcp`) with the official MCP Python SDK: list the tools, call
     search and fetch, and check real answers (the fetched text holds what search showed, ids
     round-trip, bad arguments are tool errors); and a raw session piped in at once, whose
     every answer must come back on stdout before the process exits 0.
  2. MCP over streamable HTTP (`kbindex serve --port 0`, /mcp): the same checks, the HTTP
     statuses of the endpoint (405, 403 for a foreign Origin, 413, 400), and the token case
     (no token or a wrong one: refused; the right one: works).
  3. schemathesis against the served /openapi.json: no 5xx, every response as the document
     says.
  4. deploy/kubernetes/ run locally (test_kubernetes.py): the Indexed Job's pods as concurrent
     processes with the pods' environment, then the merge Job, against moto's S3 server.

Every check prints one line (ok/FAIL); the last line is "python: N passed, N failed"; the
exit status is 1 when any check failed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import traceback
import urllib.error
import urllib.request
from pathlib import Path

from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

TOOLS = {"search", "fetch", "status"}

CORPUS = {
    "soup.md": "# Lentil soup\n\nRinse the lentils and simmer them with onions for half an hour. "
    "Season the soup with cumin and a little lemon juice before serving.\n",
    "tea.md": "# Green tea\n\nGreen tea wants water below boiling, about eighty degrees, "
    "and steeps for two minutes; longer makes it bitter.\n",
    "ops/logs.md": "# Rotating logs\n\nLogrotate rotates the service logs every week and keeps "
    "four compressed copies; the postrotate script reloads the daemon.\n",
    "ops/backup.md": "# Backups\n\nThe nightly backup copies the database to the NAS with rsync "
    "and prunes copies older than thirty days.\n",
}


class Checks:
    """Counts checks; each prints one line."""

    def __init__(self) -> None:
        self.passed = 0
        self.failed: list[str] = []

    def check(self, name: str, ok: bool, detail: object = "") -> bool:
        if ok:
            self.passed += 1
            print(f"ok    {name}", flush=True)
        else:
            self.failed.append(name)
            print(f"FAIL  {name}: {str(detail)[:600]}", flush=True)
        return ok

    def crashed(self, name: str, error: BaseException) -> None:
        self.failed.append(name)
        print(f"FAIL  {name}: raised {type(error).__name__}: {error}", flush=True)
        traceback.print_exc(limit=6)


def text_of(result) -> str:
    return "".join(getattr(c, "text", "") for c in result.content)


def collapsed(text: str) -> str:
    return " ".join(text.split())


async def tool_suite(checks: Checks, client: Client, label: str) -> None:
    """The checks every MCP transport must pass, on a connected client."""
    tools = await client.list_tools()
    names = {t.name for t in tools.tools}
    checks.check(f"{label}: tools/list gives search, fetch, status", names == TOOLS, names)
    search_tool = next((t for t in tools.tools if t.name == "search"), None)
    schema = search_tool.input_schema if search_tool else {}
    checks.check(
        f"{label}: search's input schema requires query and has k, mode, path, index",
        schema.get("required") == ["query"]
        and {"query", "k", "mode", "path", "index"} <= set(schema.get("properties", {})),
        schema,
    )

    # A real search: the soup document answers a question about lentils.
    result = await client.call_tool("search", {"query": "how long should the lentils simmer?", "k": 2})
    payload = json.loads(text_of(result)) if not result.is_error else {}
    hits = payload.get("results", [])
    checks.check(f"{label}: search succeeds", not result.is_error, text_of(result))
    checks.check(f"{label}: search returns 1 or 2 results (k=2)", 1 <= len(hits) <= 2, payload)
    checks.check(f"{label}: the best result is soup.md", bool(hits) and hits[0].get("path") == "soup.md", hits)
    checks.check(
        f"{label}: results carry id, title, text, path, lines, score",
        all({"id", "title", "text", "path", "line_start", "line_end", "score"} <= set(h) for h in hits) and bool(hits),
        hits,
    )
    checks.check(f"{label}: structured content equals the JSON text", result.structured_content == payload,
                 result.structured_content)
    if not hits:
        return
    first = hits[0]

    # fetch round-trips the id and returns the whole chunk, which holds the snippet.
    fetched = await client.call_tool("fetch", {"id": first["id"]})
    doc = json.loads(text_of(fetched)) if not fetched.is_error else {}
    checks.check(f"{label}: fetch succeeds", not fetched.is_error, text_of(fetched))
    checks.check(f"{label}: fetch returns the id search gave", doc.get("id") == first["id"], doc)
    snippet = first["text"].rstrip("…").strip()
    checks.check(
        f"{label}: the fetched text holds the search snippet",
        bool(snippet) and collapsed(doc.get("text", "")).startswith(snippet) and "lentils" in doc.get("text", ""),
        (snippet, doc.get("text")),
    )
    meta = doc.get("metadata", {})
    checks.check(
        f"{label}: fetch metadata names the path and lines search gave",
        meta.get("path") == first["path"]
        and meta.get("line_start") == first["line_start"]
        and meta.get("line_end") == first["line_end"]
        and isinstance(meta.get("document"), dict),
        meta,
    )

    # Options: path globs and the lexical mode.
    result = await client.call_tool("search", {"query": "lentils simmer soup", "path": ["ops/*"], "k": 5})
    hits = json.loads(text_of(result)).get("results", []) if not result.is_error else None
    checks.check(
        f"{label}: path ['ops/*'] keeps only ops/ documents",
        hits is not None and bool(hits) and all(h["path"].startswith("ops/") for h in hits),
        text_of(result),
    )
    result = await client.call_tool("search", {"query": "logrotate postrotate", "mode": "lexical", "k": 1})
    payload = json.loads(text_of(result)) if not result.is_error else {}
    checks.check(
        f"{label}: lexical mode finds the exact words",
        payload.get("mode") == "lexical" and [h["path"] for h in payload.get("results", [])] == ["ops/logs.md"],
        payload or text_of(result),
    )

    # Bad arguments: a tool error (isError) with one line, never a crash.
    bad = [
        ("search", {"query": ""}),
        ("search", {"query": "soup", "k": 0}),
        ("search", {"query": "soup", "k": 101}),
        ("search", {"query": "soup", "k": "five"}),
        ("search", {"query": "soup", "mode": "fuzzy"}),
        ("search", {"query": "soup", "colour": "red"}),
        ("search", {"query": "x" * 5000}),
        ("search", {"query": "soup", "index": "no-such-index"}),
        ("search", {"query": "soup", "path": ["[unclosed"]}),
        ("fetch", {}),
        ("fetch", {"id": "0000000000000000-0"}),
        ("fetch", {"id": "not an id"}),
        ("fetch", {"id": first["id"], "neighbours": -1}),
        ("status", {"verbose": True}),
    ]
    for name, args in bad:
        shown = json.dumps(args)[:60]
        try:
            r = await client.call_tool(name, args)
            message = text_of(r)
            checks.check(f"{label}: {name} {shown} is a one-line tool error",
                         r.is_error and message.strip() != "" and "\n" not in message.strip(), message)
        except Exception as error:  # a protocol error is not what the brief asks for
            checks.check(f"{label}: {name} {shown} is a one-line tool error", False, repr(error))

    # An unknown tool is a protocol error (as the MCP specification says), and the server lives on.
    try:
        r = await client.call_tool("no_such_tool", {})
        checks.check(f"{label}: an unknown tool is refused", r.is_error, text_of(r))
    except Exception:
        checks.check(f"{label}: an unknown tool is refused", True)

    status = await client.call_tool("status", {})
    info = json.loads(text_of(status)) if not status.is_error else {}
    indexes = info.get("indexes", [])
    checks.check(
        f"{label}: status lists the index with its chunks",
        len(indexes) == 1 and indexes[0].get("chunks", 0) >= len(CORPUS) and "model" in info,
        info or text_of(status),
    )


async def stdio_suite(checks: Checks, kbindex: str, index: Path) -> None:
    params = StdioServerParameters(command=kbindex, args=["mcp", "--index", str(index)])
    async with Client(params) as client:
        await tool_suite(checks, client, "stdio")


async def reload_suite(checks: Checks, kbindex: str, index: Path) -> None:
    """A build of the served index while `kbindex mcp` runs is picked up: a new document is
    found, under a new generation. (Polls a bounded number of times; the time is not checked.)"""
    corpus = index.parent
    params = StdioServerParameters(command=kbindex, args=["mcp", "--index", str(index)])
    added = corpus / "bread.md"
    async with Client(params) as client:
        query = {"query": "sourdough starter levain", "mode": "lexical", "k": 1}
        before = json.loads(text_of(await client.call_tool("search", query)))
        checks.check("reload: the new words are not in the index yet", before["results"] == [], before)
        added.write_text("# Bread\n\nFeed the sourdough starter (the levain) the night before baking.\n")
        try:
            p = subprocess.run([kbindex, "build", str(corpus), "--quiet"], capture_output=True, text=True, timeout=600)
            checks.check("reload: kbindex build while served succeeds", p.returncode == 0, p.stderr)
            after = before
            for _ in range(240):
                after = json.loads(text_of(await client.call_tool("search", query)))
                if after["results"]:
                    break
                await asyncio.sleep(0.25)
            checks.check("reload: the served index answers with the new document, in a new generation",
                         [h["path"] for h in after["results"]] == ["bread.md"] and after["generation"] > before["generation"],
                         after)
        finally:
            added.unlink()
            subprocess.run([kbindex, "build", str(corpus), "--quiet"], capture_output=True, timeout=600)


def raw_stdio(checks: Checks, kbindex: str, index: Path) -> None:
    """A whole session written at once, stdin then closed: every request is answered, stdout
    holds only JSON-RPC lines, and the process exits 0."""
    lines = [
        {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "raw", "version": "0"}}},
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
        {"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "search", "arguments": {"query": "green tea water temperature", "k": 1}}},
        {"jsonrpc": "2.0", "id": "four", "method": "tools/call", "params": {"name": "fetch", "arguments": {"id": "nope"}}},
    ]
    stdin = "\n".join(json.dumps(m) for m in lines[:3]) + "\nthis line is not JSON\n" + \
        "\n".join(json.dumps(m) for m in lines[3:]) + "\n"
    p = subprocess.run([kbindex, "mcp", "--index", str(index)], input=stdin.encode(),
                       capture_output=True, timeout=300)
    checks.check("raw stdio: exits 0 when stdin closes", p.returncode == 0, p.stderr.decode(errors="replace")[-500:])
    out = p.stdout.decode(errors="replace").splitlines()
    messages = []
    for line in out:
        try:
            messages.append(json.loads(line))
        except ValueError:
            messages.append(None)
    checks.check("raw stdio: stdout holds only JSON-RPC messages",
                 bool(messages) and all(isinstance(m, dict) and m.get("jsonrpc") == "2.0" for m in messages), out[:5])
    by_id = {m.get("id"): m for m in messages if isinstance(m, dict)}
    checks.check("raw stdio: every request is answered before the exit", {1, 2, 3, "four"} <= set(by_id), list(by_id))
    hit = by_id.get(3, {}).get("result", {})
    found = json.loads(hit["content"][0]["text"]).get("results", []) if hit.get("content") else []
    checks.check("raw stdio: the search finds tea.md", [h["path"] for h in found] == ["tea.md"], hit)
    checks.check("raw stdio: a bad fetch is a tool error", by_id.get("four", {}).get("result", {}).get("isError") is True,
                 by_id.get("four"))
    checks.check("raw stdio: the line that is not JSON gets a parse error",
                 any(isinstance(m, dict) and m.get("error", {}).get("code") == -32700 for m in messages), messages)


class Served:
    """`kbindex serve --port 0 ...`, its URL read from the line it prints on stderr."""

    def __init__(self, kbindex: str, index: Path, extra: list[str]):
        self.proc = subprocess.Popen([kbindex, "serve", "--index", str(index), "--port", "0", *extra],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.url: str | None = None
        self.log: list[str] = []
        found = threading.Event()

        def read() -> None:
            for raw in self.proc.stderr:
                line = raw.decode(errors="replace")
                self.log.append(line)
                m = re.search(r"(https?://[^\s()]+)", line)
                if m and self.url is None:
                    self.url = m.group(1).rstrip("/")
                    found.set()
            found.set()

        threading.Thread(target=read, daemon=True).start()
        found.wait(timeout=300)
        if self.url is None:
            self.stop()
            raise RuntimeError("kbindex serve printed no URL: " + "".join(self.log)[-800:])

    def stop(self) -> int | None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def post(url: str, body: bytes, headers: dict[str, str] | None = None, method: str = "POST") -> tuple[int, bytes]:
    base = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
    base.update(headers or {})
    request = urllib.request.Request(url, data=body if method == "POST" else None, headers=base, method=method)
    try:
        with urllib.request.urlopen(request, timeout=120) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


LIST = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}).encode()


async def http_suite(checks: Checks, url: str) -> None:
    async with Client(streamable_http_client(url + "/mcp")) as client:
        await tool_suite(checks, client, "http")

    # Eight clients at once (each numbers its requests from the same start): every one gets
    # its own answers.
    questions = ["how long should the lentils simmer?", "green tea water temperature",
                 "rotate the service logs", "nightly database backup"] * 2
    expected = ["soup.md", "tea.md", "ops/logs.md", "ops/backup.md"] * 2

    async def one(question: str) -> str:
        async with Client(streamable_http_client(url + "/mcp")) as client:
            r = await client.call_tool("search", {"query": question, "k": 1})
            return json.loads(text_of(r))["results"][0]["path"] if not r.is_error else text_of(r)

    got = await asyncio.gather(*(one(q) for q in questions), return_exceptions=True)
    checks.check("http: eight concurrent clients each get their own answer", list(got) == expected, got)


def raw_http(checks: Checks, url: str) -> None:
    status, body = post(url + "/mcp", LIST)
    tools = {t["name"] for t in json.loads(body).get("result", {}).get("tools", [])} if status == 200 else set()
    checks.check("http: tools/list without initialize is answered (stateless)", tools == TOOLS, (status, body[:200]))
    status, _ = post(url + "/mcp", b"", method="GET")
    checks.check("http: GET /mcp is 405 (no SSE stream)", status == 405, status)
    status, _ = post(url + "/mcp", LIST, {"Origin": "http://evil.example"})
    checks.check("http: a foreign Origin is refused (403)", status == 403, status)
    status, _ = post(url + "/mcp", b"{" + b" " * (2 << 20) + b"}")
    checks.check("http: a body over 1 MiB is refused (413)", status == 413, status)
    status, body = post(url + "/mcp", b"{not json")
    checks.check("http: malformed JSON is a 400", status == 400, (status, body[:200]))
    status, _ = post(url + "/mcp", LIST, {"Accept": "text/html"})
    checks.check("http: an Accept without application/json is a 406", status == 406, status)


async def token_suite(checks: Checks, url: str, token: str) -> None:
    status, _ = post(url + "/mcp", LIST)
    checks.check("token: /mcp without a token is 401", status == 401, status)
    status, _ = post(url + "/mcp", LIST, {"Authorization": "Bearer wrong-" + token})
    checks.check("token: /mcp with a wrong token is 401", status == 401, status)
    try:
        async with Client(streamable_http_client(url + "/mcp")) as client:
            await client.list_tools()
        checks.check("token: the MCP client without the token cannot connect", False, "it connected")
    except Exception:
        checks.check("token: the MCP client without the token cannot connect", True)
    http = create_mcp_http_client(headers={"Authorization": f"Bearer {token}"})
    async with Client(streamable_http_client(url + "/mcp", http_client=http)) as client:
        result = await client.call_tool("search", {"query": "nightly database backup", "k": 1})
        hits = json.loads(text_of(result)).get("results", []) if not result.is_error else []
        checks.check("token: with the token, search finds ops/backup.md",
                     [h["path"] for h in hits] == ["ops/backup.md"], text_of(result))


def schemathesis_suite(checks: Checks, url: str, venv_bin: Path, workdir: Path) -> None:
    status, body = post(url + "/openapi.json", b"", method="GET")
    if not checks.check("schemathesis: GET /openapi.json is an OpenAPI document",
                        status == 200 and b'"openapi"' in body, (status, body[:200])):
        return
    exe = venv_bin / "schemathesis"
    report = workdir / "schemathesis.xml"
    cmd = [str(exe), "run", url + "/openapi.json",
           "--checks", "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
           "--max-examples", "30", "--seed", "20261202", "--workers", "1",
           "--request-timeout", "60", "--report", "junit", "--report-junit-path", str(report)]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=1200, cwd=workdir)
    tail = (p.stdout + p.stderr)[-3000:]
    print(tail)
    checks.check("schemathesis: no 5xx, every response as openapi.json says", p.returncode == 0, tail[-800:])
    tested = len(re.findall(r"<testcase ", report.read_text())) if report.exists() else 0
    checks.check("schemathesis: tested every operation of the document (more than 5)", tested > 5,
                 f"{tested} operations in the report")


def build_index(kbindex: str, root: Path) -> Path:
    corpus = root / "corpus"
    for name, text in CORPUS.items():
        path = corpus / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    p = subprocess.run([kbindex, "build", str(corpus), "--quiet"], capture_output=True, text=True, timeout=600)
    if p.returncode != 0:
        raise RuntimeError(f"kbindex build failed ({p.returncode}): {p.stderr.strip()}")
    return corpus / ".kbindex"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--kbindex", default=".build/debug/kbindex", help="the kbindex binary")
    parser.add_argument("--only", choices=["stdio", "http", "schemathesis", "kubernetes"], action="append",
                        help="run only these parts (repeatable)")
    args = parser.parse_args()
    kbindex = str(Path(args.kbindex).resolve())
    parts = set(args.only or ["stdio", "http", "schemathesis", "kubernetes"])
    venv_bin = Path(sys.executable).parent
    checks = Checks()
    root = Path(tempfile.mkdtemp(prefix="kbindex-pytests-"))
    try:
        index = build_index(kbindex, root)
        if "stdio" in parts:
            for name, run in [("stdio: MCP client session", lambda: asyncio.run(stdio_suite(checks, kbindex, index))),
                              ("raw stdio session", lambda: raw_stdio(checks, kbindex, index)),
                              ("reload", lambda: asyncio.run(reload_suite(checks, kbindex, index)))]:
                try:
                    run()
                except Exception as error:
                    checks.crashed(name, error)
        if parts & {"http", "schemathesis"}:
            served = None
            try:
                served = Served(kbindex, index, [])
                if "http" in parts:
                    try:
                        asyncio.run(http_suite(checks, served.url))
                    except Exception as error:
                        checks.crashed("http: MCP client session", error)
                    try:
                        raw_http(checks, served.url)
                    except Exception as error:
                        checks.crashed("http: raw requests", error)
                if "schemathesis" in parts:
                    try:
                        schemathesis_suite(checks, served.url, venv_bin, root)
                    except Exception as error:
                        checks.crashed("schemathesis", error)
                code = served.stop()
                checks.check("serve: SIGTERM stops it with status 0", code == 0, f"status {code}: {''.join(served.log)[-400:]}")
            except Exception as error:
                checks.crashed("serve", error)
                if served:
                    served.stop()
        if "http" in parts:
            token = "s3cret-" + os.urandom(8).hex()
            served = None
            try:
                served = Served(kbindex, index, ["--token", token])
                asyncio.run(token_suite(checks, served.url, token))
            except Exception as error:
                checks.crashed("token", error)
            finally:
                if served:
                    served.stop()
        if "kubernetes" in parts:
            try:
                import test_kubernetes
                test_kubernetes.run(checks, kbindex, sys.executable, root)
            except Exception as error:
                checks.crashed("kubernetes", error)
    except Exception as error:
        checks.crashed("setup", error)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    if checks.failed:
        print("failed: " + "; ".join(checks.failed))
    print(f"python: {checks.passed} passed, {len(checks.failed)} failed")
    return 1 if checks.failed else 0


if __name__ == "__main__":
    sys.exit(main())
