"""GET /api/openapi.json describes every HTTP function the app registers, with error schemas."""

from __future__ import annotations

import httpx

from devtools.stack import MASTER_KEY, FunctionHost


def test_every_http_route_and_method_is_documented(service_host: FunctionHost) -> None:
    doc = httpx.get(f"{service_host.base_url}/api/openapi.json", timeout=10).json()
    assert doc["openapi"].startswith("3.1")
    keys = {"x-functions-key": MASTER_KEY}
    functions = httpx.get(f"{service_host.base_url}/admin/functions", headers=keys, timeout=10).json()
    routes = []
    for entry in functions:
        if entry["trigger"] != "httpTrigger":
            continue
        [trigger] = httpx.get(f"{service_host.base_url}/admin/functions/{entry['name']}", headers=keys,
                              timeout=10).json()["config"]["bindings"]
        for method in trigger.get("methods") or []:
            routes.append((f"/api/{trigger['route']}", method.lower()))
    assert routes, "the app registers no HTTP function"
    missing = [r for r in routes if r[1] not in doc["paths"].get(r[0], {})]
    assert not missing, f"undocumented operations: {missing}"


def test_errors_are_documented_as_problem_json(service_host: FunctionHost) -> None:
    doc = httpx.get(f"{service_host.base_url}/api/openapi.json", timeout=10).json()
    audit = doc["paths"]["/api/manage/audit"]["get"]
    assert audit["security"] == [{"entraToken": []}]
    for status in ("400", "401", "403"):
        schema = audit["responses"][status]["content"]["application/problem+json"]["schema"]
        assert schema == {"$ref": "#/components/schemas/Problem"}
    refs = {v["$ref"].rsplit("/", 1)[1] for p in doc["paths"].values() for op in p.values()
            for r in op["responses"].values() for c in r.get("content", {}).values() for v in [c["schema"]]}
    assert refs <= set(doc["components"]["schemas"]), "a response names a schema the document lacks"
