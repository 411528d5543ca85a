"""A programmatic client of a Dash page's callback API, for tests, the load run and benchmarks.

It sends what dash-renderer sends: request bodies are built from the app's own callback map
(`GET /_dash-dependencies`) and the initial props of its layout (`GET /_dash-layout`), so a
replayed request is a real one (same output string, inputs, state and changedPropIds).

    c = DashClient.http("http://127.0.0.1:8050")       # or DashClient.flask(app.server.test_client())
    cb = c.callback_for("heatmap-payload.data")        # the callback that writes this output
    body = c.body(cb, {"text-input.value": "The cat sat."}, changed=["run-button.n_clicks"])
    status, data = c.post(body)                        # data["response"][id][prop] on success
    c.call(cb, values, changed) -> (status, data)      # follows background callbacks to the end

Only plain string ids and wildcard-free dict ids are filled automatically; a pattern-matching
input (ALL / MATCH) gets the list of matching components of the layout.
"""
from __future__ import annotations

import html
import json
import re
import time
from dataclasses import dataclass, field
from typing import Any, Callable

_CONFIG_RE = re.compile(r'<script id="_dash-config" type="application/json">(.*?)</script>', re.S)


def split_outputs(output: str) -> list[tuple[Any, str]]:
    """'..a.children...b.figure..' or 'a.children' -> [(id, prop), ...] (dict ids parsed)."""
    if output.startswith("..") and output.endswith(".."):
        parts = output[2:-2].split("...")
    else:
        parts = [output]
    out = []
    for part in parts:
        if "." not in part:  # a no_output callback's id is a bare hash
            continue
        cid, prop = part.rsplit(".", 1)
        if cid.startswith("{"):
            cid = json.loads(cid)
        out.append((cid, prop))
    return out


def id_key(cid: Any) -> str:
    """The string form Dash uses in prop ids ('a' or the sorted compact JSON of a dict id)."""
    if isinstance(cid, dict):
        return json.dumps(cid, sort_keys=True, separators=(",", ":"))
    return str(cid)


def walk_layout(node: Any):
    """Yield every component dict ({"type", "namespace", "props"}) of a layout tree."""
    if isinstance(node, dict):
        if "props" in node and "type" in node:
            yield node
            for v in node["props"].values():
                yield from walk_layout(v)
        else:
            for v in node.values():
                yield from walk_layout(v)
    elif isinstance(node, list):
        for v in node:
            yield from walk_layout(v)


def _matches(pattern: dict, cid: Any) -> bool:
    if not isinstance(cid, dict) or set(cid) != set(pattern):
        return False
    for k, v in pattern.items():
        if isinstance(v, list) and len(v) == 1 and v[0] in ("ALL", "MATCH", "ALLSMALLER"):
            continue
        if cid[k] != v:
            return False
    return True


def _is_wild(cid: Any) -> bool:
    return isinstance(cid, dict) and any(isinstance(v, list) for v in cid.values())


@dataclass
class Callback:
    output: str
    outputs: list  # [(id, prop)]
    inputs: list  # [{"id", "property"}]
    state: list
    raw: dict = field(repr=False, default_factory=dict)

    @property
    def background(self) -> bool:
        return bool(self.raw.get("background") or self.raw.get("long"))

    @property
    def clientside(self) -> bool:
        return bool(self.raw.get("clientside_function"))

    def writes(self, prop_id: str) -> bool:
        return any(f"{id_key(c)}.{p.split('@')[0]}" == prop_id for c, p in self.outputs)

    def input_ids(self) -> list[str]:
        return [f"{id_key(d['id'])}.{d['property']}" for d in self.inputs]

    def reads(self, prop_id: str) -> bool:
        return any(f"{id_key(d['id'])}.{d['property']}" == prop_id for d in self.inputs + self.state)


class DashClient:
    """See the module docstring. `send(method, path, body|None, query|None) -> (status, bytes, headers)`."""

    def __init__(self, send: Callable[..., tuple[int, bytes, dict]]):
        self._send = send
        self.last_bytes = self.last_wire_bytes = 0
        self.last_encoding = "identity"
        self._deps: list[Callback] | None = None
        self._layout: Any = None
        self._config: dict | None = None
        self.bytes_received = 0

    # ---- transports ------------------------------------------------------------------------
    @classmethod
    def http(cls, base_url: str, timeout: float = 120.0, session=None) -> "DashClient":
        import requests

        sess = session or requests.Session()
        base = base_url.rstrip("/")

        def send(method, path, body=None, query=None, raw_body=None):
            data = raw_body if raw_body is not None else (None if body is None else json.dumps(body))
            headers = {"Content-Type": "application/json"} if data is not None else {}
            r = sess.request(method, base + path, data=data, params=query, headers=headers, timeout=timeout)
            return r.status_code, r.content, dict(r.headers)

        c = cls(send)
        c.session = sess
        return c

    @classmethod
    def flask(cls, test_client) -> "DashClient":
        def send(method, path, body=None, query=None, raw_body=None):
            data = raw_body if raw_body is not None else (None if body is None else json.dumps(body))
            r = test_client.open(path, method=method, data=data, query_string=query,
                                 content_type="application/json" if data is not None else None)
            return r.status_code, r.get_data(), dict(r.headers)

        return cls(send)

    def share_page(self, other: "DashClient") -> "DashClient":
        """Reuse another client's parsed callback map, layout and config (load-test threads)."""
        self._deps, self._layout, self._config = other.dependencies(), other.layout(), other.config()
        return self

    # ---- what the page is ------------------------------------------------------------------
    def get(self, path: str) -> tuple[int, bytes]:
        status, content, _ = self._send("GET", path)
        return status, content

    def dependencies(self) -> list[Callback]:
        if self._deps is None:
            status, content = self.get("/_dash-dependencies")
            if status != 200:
                raise RuntimeError(f"/_dash-dependencies answered {status}")
            self._deps = [Callback(output=d["output"],
                                   outputs=[] if d.get("no_output") else split_outputs(d["output"]),
                                   inputs=d.get("inputs", []), state=d.get("state", []), raw=d)
                          for d in json.loads(content)]
        return self._deps

    def layout(self) -> Any:
        if self._layout is None:
            status, content = self.get("/_dash-layout")
            if status != 200:
                raise RuntimeError(f"/_dash-layout answered {status}")
            self._layout = json.loads(content)
        return self._layout

    def config(self) -> dict:
        """The page's _dash-config (holds end_id, needed by background callbacks)."""
        if self._config is None:
            status, content = self.get("/")
            m = _CONFIG_RE.search(content.decode("utf-8", "replace"))
            self._config = json.loads(html.unescape(m.group(1))) if m else {}
        return self._config

    def components(self) -> dict[str, dict]:
        """{id key: component} of every component with an id in the initial layout."""
        if getattr(self, "_components", None) is None or self._components[0] is not self.layout():
            comps = {id_key(c["props"]["id"]): c for c in walk_layout(self.layout()) if "id" in c["props"]}
            self._components = (self.layout(), comps)
        return self._components[1]

    def initial(self, cid: Any, prop: str, default: Any = None) -> Any:
        comp = self.components().get(id_key(cid))
        return default if comp is None else comp["props"].get(prop, default)

    def server_callbacks(self) -> list[Callback]:
        return [cb for cb in self.dependencies() if not cb.clientside]

    def callback_for(self, prop_id: str, *, serverside: bool = True) -> Callback:
        """The callback writing `id.prop` (a serverside one by default)."""
        found = [cb for cb in self.dependencies() if cb.writes(prop_id) and (not serverside or not cb.clientside)]
        if not found:
            raise LookupError(f"no {'serverside ' if serverside else ''}callback writes {prop_id}")
        # the primary writer: the callback with the fewest outputs that is not allow_duplicate
        found.sort(key=lambda cb: len(cb.outputs))
        return found[0]

    def callbacks_reading(self, prop_id: str) -> list[Callback]:
        return [cb for cb in self.server_callbacks() if cb.reads(prop_id)]

    # ---- requests --------------------------------------------------------------------------
    def _value(self, dep: dict, values: dict) -> Any:
        cid, prop = dep["id"], dep["property"]
        if _is_wild(cid):
            return [{"id": c["props"]["id"], "property": prop,
                     "value": values.get(f"{id_key(c['props']['id'])}.{prop}", c["props"].get(prop))}
                    for c in walk_layout(self.layout()) if "id" in c["props"] and _matches(cid, c["props"]["id"])]
        key = f"{id_key(cid)}.{prop}"
        value = values[key] if key in values else self.initial(cid, prop)
        return {"id": cid, "property": prop, "value": value}

    def body(self, cb: Callback, values: dict | None = None, changed: list[str] | None = None) -> dict:
        """The request body dash-renderer would send for `cb` with these prop values
        ({"id.prop": value}; others from the initial layout) after `changed` props changed."""
        values = values or {}
        outputs = []
        for cid, prop in cb.outputs:
            if _is_wild(cid):
                outputs.append([{"id": c["props"]["id"], "property": prop.split("@")[0]}
                                for c in walk_layout(self.layout())
                                if "id" in c["props"] and _matches(cid, c["props"]["id"])])
            else:
                outputs.append({"id": cid, "property": prop.split("@")[0]})
        if changed is None:
            changed = [f"{id_key(d['id'])}.{d['property']}" for d in cb.inputs[:1]]
        return {"output": cb.output,
                "outputs": outputs if len(outputs) != 1 or cb.output.startswith("..") else outputs[0],
                "inputs": [self._value(d, values) for d in cb.inputs],
                "state": [self._value(d, values) for d in cb.state],
                "changedPropIds": changed}

    def post(self, body: dict | None, query: dict | None = None, raw_body: bytes | str | None = None
             ) -> tuple[int, Any]:
        """POST /_dash-update-component; (status, parsed JSON or None)."""
        status, content, headers = self._send("POST", "/_dash-update-component", body, query, raw_body)
        self.bytes_received += len(content)
        self.last_bytes = len(content)  # decoded body
        # what crossed the wire (compressed when the server compressed it)
        self.last_wire_bytes = int(headers.get("Content-Length") or len(content))
        self.last_encoding = headers.get("Content-Encoding", "identity")
        try:
            return status, json.loads(content) if content else None
        except ValueError:
            return status, {"_raw": content[:2000].decode("utf-8", "replace")}

    def call(self, cb: Callback, values: dict | None = None, changed: list[str] | None = None,
             *, timeout: float = 120.0, poll: float = 0.1) -> tuple[int, Any]:
        """Run a callback to its end: a background callback is polled as dash-renderer does."""
        body = self.body(cb, values, changed)
        if not cb.background:
            return self.post(body)
        end_id = self.config().get("end_id")
        query = {"endId": end_id} if end_id else {}
        status, data = self.post(body, query=query)
        if status != 200 or not isinstance(data, dict) or "cacheKey" not in data:
            return status, data
        poll_body = json.loads(json.dumps(body))
        for group in ("inputs", "state"):
            for item in poll_body[group]:
                if isinstance(item, dict):
                    item["value"] = None
        q = {**query, "cacheKey": data["cacheKey"], "job": data["job"]}
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status, data = self.post(poll_body, query=q)
            if status != 200 or (isinstance(data, dict) and "response" in data):
                return status, data
            time.sleep(poll)
        raise TimeoutError(f"background callback {cb.output} did not finish in {timeout:.0f} s")


class Session:
    """One browser tab, without the browser: the page's prop values and the serverside callbacks
    a change sets off, fired wave by wave as dash-renderer does (clientside ones are skipped:
    they never reach the server).

        s = Session(client)                                   # props from the initial layout
        s.change({"text-input.value": "...", "run-button.n_clicks": 1}, trigger=["run-button.n_clicks"])
        s.change({"head-dropdown.value": "3"})                # a head switch: every callback it sets off
        s.calls -> [(output, status, bytes, seconds)]; s.values["heatmap-payload.data"]
    """

    def __init__(self, client: DashClient, values: dict | None = None, max_calls: int = 40):
        self.client = client
        self.values: dict = {}
        for key, comp in client.components().items():
            for prop, v in comp["props"].items():
                self.values[f"{key}.{prop}"] = v
        self.values.update(values or {})
        self.max_calls = max_calls
        self.calls: list = []
        self.errors: list = []

    def change(self, values: dict, trigger: list[str] | None = None) -> list:
        """Set props and fire what they set off; returns this action's [(output, status, bytes, s)]."""
        self.values.update(values)
        changed = list(trigger if trigger is not None else values)
        done = []
        while changed and len(done) < self.max_calls:
            wave = [cb for cb in self.client.server_callbacks()
                    if any(p in changed for p in cb.input_ids())]
            next_changed: list[str] = []
            for cb in wave:
                t0 = time.perf_counter()
                body = self.client.body(cb, self.values, [p for p in cb.input_ids() if p in changed])
                status, data = self.client.post(body)
                row = (cb.output, status, self.client.last_bytes, time.perf_counter() - t0)
                done.append(row)
                self.calls.append(row)
                if status == 204:
                    continue
                if status != 200 or not isinstance(data, dict):
                    self.errors.append((cb.output, status, data))
                    continue
                for cid, props in data.get("response", {}).items():
                    for prop, value in props.items():
                        if not (isinstance(value, dict) and "__dash_patch_update" in value):
                            self.values[f"{cid}.{prop}"] = value  # (a Patch edits what the browser has)
                        next_changed.append(f"{cid}.{prop}")
                for cid, props in (data.get("sideUpdate") or {}).items():
                    for prop, value in props.items():
                        self.values[f"{cid}.{prop}"] = value
            changed = next_changed
        return done


def response_value(data: Any, cid: Any, prop: str, default: Any = None) -> Any:
    """data["response"][id][prop] of a callback response (dict ids as their JSON key)."""
    if not isinstance(data, dict):
        return default
    return data.get("response", {}).get(id_key(cid), {}).get(prop, default)
