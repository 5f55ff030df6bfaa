"""The importable n8n workflows in examples/n8n: structure, node versions, naming, secrets, bounded loops,
and (where Node.js is installed) the behaviour of their Code nodes.

Node types, typeVersions, parameter names and credential types are checked against
tests/examples/n8n_node_versions.json, a snapshot of the released n8n-nodes-base package
(regenerate with scripts/n8n_node_versions.py), so no npm or network is needed here.
The structural checks port n8n-workflow's safeParseWorkflowStructure (2.41.0).
"""

from __future__ import annotations

import functools
import json
import re
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from autostop import cap, events
from gpu_autostop_cli import client

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
EXAMPLES = ROOT / "examples" / "n8n"
FILES = ("comfyui-on-demand.json", "comfyui-batch.json")
FIXTURES = ROOT / "tests" / "fixtures" / "comfyui"
SNAPSHOT = json.loads((HERE / "n8n_node_versions.json").read_text())
BASE = "n8n-nodes-base."
STICKY = BASE + "stickyNote"
NODE_KEYS = {
    "id", "name", "type", "typeVersion", "position", "parameters", "credentials", "webhookId", "onError",
    "alwaysOutputData", "retryOnFail", "maxTries", "waitBetweenTries", "notes", "notesInFlow", "disabled",
    "executeOnce",
}  # fmt: skip
#: Code nodes that must be the same in both workflows (the shared pipeline).
SHARED_CODE = ("Check start", "Check ready", "Check queued", "Check history", "Explain failure")


@functools.cache
def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((EXAMPLES / name).read_text())
    return data


def nodes(workflow: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {node["name"]: node for node in workflow["nodes"]}


def edges(workflow: dict[str, Any]) -> Iterator[tuple[str, int, str]]:
    for source, kinds in workflow["connections"].items():
        for output, bucket in enumerate(kinds.get("main", [])):
            for target in bucket or []:
                yield source, output, target["node"]


def code_of(workflow: dict[str, Any], name: str) -> str:
    code: str = nodes(workflow)[name]["parameters"]["jsCode"]
    return code


def of_type(workflow: dict[str, Any], short: str) -> list[dict[str, Any]]:
    return [node for node in workflow["nodes"] if node["type"] == BASE + short]


def output_count(node: dict[str, Any]) -> int:
    count = {"if": 2, "splitInBatches": 2, "stickyNote": 0}.get(node["type"].removeprefix(BASE), 1)
    return count + (1 if node.get("onError") == "continueErrorOutput" else 0)


all_files = pytest.mark.parametrize("name", FILES)


# --- the file as n8n imports it -----------------------------------------------------------------


@all_files
def test_top_level_fields(name: str) -> None:
    workflow = load(name)
    assert {"id", "name", "nodes", "connections", "settings"} <= set(workflow)
    assert re.fullmatch(r"[A-Za-z0-9]{16}", workflow["id"]), "n8n workflow ids are 16 alphanumerics"
    assert workflow["name"].startswith("gpu-autostop: ")
    assert workflow["active"] is False, "import inactive: the user adds credentials first"
    assert workflow["settings"]["executionOrder"] == "v1"
    assert 0 < workflow["settings"]["executionTimeout"] <= 3600, "an overall bound (n8n's default maximum)"


def test_ids_and_webhooks_differ_between_the_files() -> None:
    ids = [load(name)["id"] for name in FILES]
    assert len(set(ids)) == len(ids)
    hooks = [node for name in FILES for node in of_type(load(name), "webhook")]
    assert len({(n["parameters"]["httpMethod"], n["parameters"]["path"]) for n in hooks}) == len(hooks)
    assert len({n["webhookId"] for n in hooks}) == len(hooks)


@all_files
def test_structure_as_n8n_checks_it(name: str) -> None:
    """Port of n8n-workflow's safeParseWorkflowStructure, plus the fields n8n nodes may carry."""
    workflow = load(name)
    names: set[str] = set()
    ids: set[str] = set()
    for node in workflow["nodes"]:
        assert isinstance(node["name"], str), node
        assert node["name"], node
        assert isinstance(node["type"], str), node
        assert node["type"], node
        position = node["position"]
        assert isinstance(position, list), node["name"]
        assert len(position) == 2, node["name"]
        assert all(isinstance(v, int | float) for v in position), node["name"]
        assert isinstance(node.get("parameters", {}), dict), node["name"]
        assert isinstance(node["typeVersion"], int | float), node["name"]
        assert set(node) <= NODE_KEYS, f"{node['name']}: unexpected keys {set(node) - NODE_KEYS}"
        assert node["name"] not in names, f"duplicate node name {node['name']!r}"
        names.add(node["name"])
        assert str(uuid.UUID(node["id"])) == node["id"], node["name"]
        assert node["id"] not in ids, f"duplicate node id {node['id']}"
        ids.add(node["id"])
    for source, kinds in workflow["connections"].items():
        assert source in names, f"connection source {source!r} is not a node"
        assert set(kinds) == {"main"}, source
        for bucket in kinds["main"]:
            for target in bucket or []:
                assert target["node"] in names, f"{source} -> {target['node']!r}: not a node"
                assert target["type"] == "main"
                assert target["index"] == 0, "every node here has one input"


@all_files
def test_outputs_exist_and_every_branch_is_wired(name: str) -> None:
    workflow = load(name)
    by_name = nodes(workflow)
    for source, kinds in workflow["connections"].items():
        assert len(kinds["main"]) <= output_count(by_name[source]), (
            f"{source}: more outputs than the node has"
        )
    for node in workflow["nodes"]:
        if node["type"] == STICKY or node["type"] == BASE + "respondToWebhook":
            continue
        wired = workflow["connections"].get(node["name"], {}).get("main", [])
        for output in range(output_count(node)):
            assert output < len(wired), f"{node['name']}: output {output} leads nowhere"
            assert wired[output], f"{node['name']}: output {output} leads nowhere"


@all_files
def test_every_path_ends_in_a_webhook_response(name: str) -> None:
    workflow = load(name)
    by_name = nodes(workflow)
    (trigger,) = of_type(workflow, "webhook")
    reached, todo = {trigger["name"]}, [trigger["name"]]
    while todo:
        for source, _, target in edges(workflow):
            if source == todo[-1] and target not in reached:
                reached.add(target)
                todo.insert(0, target)
        todo.pop()
    functional = {n for n, node in by_name.items() if node["type"] != STICKY}
    assert reached == functional, f"unreachable: {functional - reached}"
    sinks = {n for n in functional if not workflow["connections"].get(n)}
    assert sinks, "no node answers the webhook"
    assert all(by_name[n]["type"] == BASE + "respondToWebhook" for n in sinks), sinks


# --- node types, versions and parameters exist in the released n8n ------------------------------


def test_snapshot_is_of_the_n8n_release_the_workflows_target() -> None:
    assert SNAPSHOT["package"] == "n8n-nodes-base"
    assert SNAPSHOT["version"].startswith("2.41.")
    assert SNAPSHOT["tarball"].startswith("https://registry.npmjs.org/n8n-nodes-base/-/")
    assert len(SNAPSHOT["nodes"]) > 400
    assert SNAPSHOT["sources"]["cross_checked_against_sources"] > 400


@all_files
def test_node_types_and_versions_exist(name: str) -> None:
    for node in load(name)["nodes"]:
        known = SNAPSHOT["nodes"].get(node["type"])
        assert known, (
            f"{node['name']}: node type {node['type']} is not in n8n-nodes-base {SNAPSHOT['version']}"
        )
        assert node["typeVersion"] in known["versions"], (
            f"{node['name']}: {node['type']} has versions {known['versions']}, not {node['typeVersion']}"
        )


def _check_parameters(
    params: dict[str, Any], schema: dict[str, Any], where: str, problems: list[str]
) -> None:
    for key, value in params.items():
        entry = schema.get(key)
        if entry is None:
            problems.append(f"{where}.{key}: no such parameter (known: {', '.join(sorted(schema))})")
            continue
        allowed = entry.get("values")
        literal = not (isinstance(value, str) and value.startswith("="))
        if allowed and literal and not isinstance(value, dict | list) and value not in allowed:
            problems.append(f"{where}.{key}: {value!r} is not one of {allowed}")
        children = entry.get("children")
        if children is None or not isinstance(value, dict):
            continue
        if entry["type"] == "fixedCollection":
            for group, content in value.items():
                if group not in children:
                    problems.append(f"{where}.{key}.{group}: no such group")
                    continue
                for item in content if isinstance(content, list) else [content]:
                    _check_parameters(item, children[group]["children"], f"{where}.{key}.{group}", problems)
        else:
            _check_parameters(value, children, f"{where}.{key}", problems)


@all_files
def test_parameters_exist_for_the_node_version(name: str) -> None:
    problems: list[str] = []
    for node in load(name)["nodes"]:
        schema = SNAPSHOT["parameters"].get(f"{node['type']}@{node['typeVersion']}")
        assert schema is not None, f"snapshot lacks {node['type']}@{node['typeVersion']}: regenerate it"
        _check_parameters(node.get("parameters", {}), schema, node["name"], problems)
    assert not problems, "\n".join(problems)


# --- Lambda functions, credentials, secrets -----------------------------------------------------

FUNCTION = re.compile(
    r"=\{\{ \(\$vars\.GPU_AUTOSTOP_NAME \|\| '([a-z0-9-]+)'\) \+ '-(start|status|stop)' \}\}"
)


def _terraform_default_name() -> str | None:
    variables = ROOT / "terraform" / "variables.tf"
    if not variables.exists():
        return None
    match = re.search(r'variable\s+"name"\s*\{.*?default\s*=\s*"([^"]+)"', variables.read_text(), re.S)
    return match.group(1) if match else None


@all_files
def test_lambda_function_names_follow_the_terraform_naming(name: str) -> None:
    lambdas = of_type(load(name), "awsLambda")
    actions = set()
    for node in lambdas:
        match = FUNCTION.fullmatch(node["parameters"]["function"])
        assert match, f"{node['name']}: function must be (GPU_AUTOSTOP_NAME or default) + '-<action>'"
        default, action = match.groups()
        assert default == client.DEFAULT_NAME == "gpu-autostop"
        assert f"{default}-{action}" == client.function_name(default, action)
        actions.add(action)
        assert node["parameters"]["invocationType"] == "RequestResponse"
        assert node["parameters"]["qualifier"] == "$LATEST"
    # n8n's IAM policy (Terraform n8n_access) allows start and status only
    assert actions == {"start", "status"}
    terraform = _terraform_default_name()
    if terraform is not None:
        assert terraform == client.DEFAULT_NAME


@all_files
def test_lambda_payloads_are_valid_events(name: str) -> None:
    for node in of_type(load(name), "awsLambda"):
        payload = json.loads(node["parameters"]["payload"])
        if node["parameters"]["function"].endswith("-start' }}"):
            assert events.parse_start(payload) == events.StartRequest(wait="none", timeout_s=0)
        else:
            events.parse_status(payload)  # raises on a bad event


def test_start_comes_before_every_prompt() -> None:
    for name in FILES:
        workflow = load(name)
        before = {source: target for source, _, target in edges(workflow)}
        # the node that feeds "Start GPU" is the per-prompt preparation, not a loop back-edge
        feeders = [source for source, _, target in edges(workflow) if target == "Start GPU"]
        assert feeders == ["Request valid?"] if name == FILES[0] else ["Prepare request"], feeders
        assert before["Start GPU"] == "Check start"
    batch = load(FILES[1])
    assert ("Loop prompts", 1, "Prepare request") in set(edges(batch))


@all_files
def test_credentials_are_references_only(name: str) -> None:
    seen = {}
    for node in load(name)["nodes"]:
        for kind, ref in node.get("credentials", {}).items():
            assert kind in SNAPSHOT["credentials"][node["type"]], f"{node['name']}: {kind} not accepted"
            assert set(ref) == {"id", "name"}, (
                f"{node['name']}: a credential reference holds only id and name"
            )
            seen[kind] = ref
    assert seen == {
        "aws": {"id": "awsGpuAutostop", "name": "AWS gpu-autostop"},
        "httpHeaderAuth": {"id": "gpuAutostopWebhookKey", "name": "gpu-autostop webhook key"},
    }


SECRET_KEY = re.compile(r"(secret|password|passwd|token|access_?key|api_?key|private_?key|session)", re.I)
SECRET_VALUE = [
    re.compile(r"\b(AKIA|ASIA|A3T[A-Z0-9])[A-Z0-9]{16}\b"),  # AWS access key id
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    re.compile(r"(?<![A-Za-z0-9/+=])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])"),  # AWS secret access key shape
    re.compile(r"\beyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\."),  # JWT
    re.compile(r"\b(sk|xox[abp]|ghp|glpat)[-_][A-Za-z0-9]{16,}"),
    re.compile(r"://[^/\s:@]+:[^/\s@]+@"),  # user:password in a URL
]


def _walk(value: Any, path: str) -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield f"{path}.{key}", item
            yield from _walk(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _walk(item, f"{path}[{index}]")


@all_files
def test_no_secrets_inside(name: str) -> None:
    workflow = load(name)
    for path, value in _walk(workflow, "workflow"):
        key = path.rsplit(".", 1)[-1]
        if SECRET_KEY.search(key) and not path.endswith("credentials"):
            assert value in (None, "", {}, []), f"{path} holds a value"
        if isinstance(value, str):
            for pattern in SECRET_VALUE:
                assert not pattern.search(value), f"{path} looks like a secret ({pattern.pattern})"
    for node in workflow["nodes"]:
        for entry in node["parameters"].get("options", {}).get("responseHeaders", {}).get("entries", []):
            assert not SECRET_KEY.search(entry["name"]), entry
            assert entry["name"].lower() != "authorization", entry


@all_files
def test_webhook_is_sane(name: str) -> None:
    (hook,) = of_type(load(name), "webhook")
    params = hook["parameters"]
    assert re.fullmatch(r"[a-z0-9]+(?:[-_/][a-z0-9]+)*", params["path"]), params["path"]
    assert params["path"].startswith("gpu-autostop/")
    assert params["httpMethod"] == "POST"
    assert params["responseMode"] == "responseNode", "the answer comes from a Respond to Webhook node"
    assert params["authentication"] == "headerAuth", "a GPU costs money: the webhook needs a key"
    assert "httpHeaderAuth" in hook["credentials"]
    assert str(uuid.UUID(hook["webhookId"])) == hook["webhookId"]


# --- bounded loops ------------------------------------------------------------------------------

SETTING = re.compile(r"(\w+): (?:Math\.floor\()?setting\('(\w+)', (\d+), (\d+)\)")


def settings_of(workflow: dict[str, Any]) -> dict[str, tuple[str, int, int]]:
    """settings key -> (variable, default, hard cap), from the node that reads the variables."""
    prepare = "Prepare request" if "Prepare batch" not in nodes(workflow) else "Prepare batch"
    code = code_of(workflow, prepare)
    found = {key: (var, int(default), int(cap)) for key, var, default, cap in SETTING.findall(code)}
    assert found, "no settings found"
    return found


def _cycles_without(workflow: dict[str, Any], removed: set[str]) -> list[set[str]]:
    """Strongly connected components with a cycle, after removing some nodes (Tarjan)."""
    graph: dict[str, list[str]] = {}
    for source, _, target in edges(workflow):
        if source not in removed and target not in removed:
            graph.setdefault(source, []).append(target)
            graph.setdefault(target, [])
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            if len(component) > 1 or node in graph[node]:
                found.append(component)

    for node in list(graph):
        if node not in index:
            visit(node)
    return found


@all_files
def test_every_loop_waits_and_counts_to_a_capped_maximum(name: str) -> None:
    workflow = load(name)
    by_name = nodes(workflow)
    settings = settings_of(workflow)
    batching = {n["name"] for n in of_type(workflow, "splitInBatches")}
    waits = {n["name"] for n in of_type(workflow, "wait")}
    # no hot loop: every cycle passes through a Wait node (or is the batch loop over a capped list)
    assert _cycles_without(workflow, waits | batching) == []
    loops = _cycles_without(workflow, batching)
    assert len(loops) == 2, "the ready loop and the history loop"
    for loop in loops:
        (wait,) = loop & waits
        params = by_name[wait]["parameters"]
        assert (params["resume"], params["unit"]) == ("timeInterval", "seconds")
        interval = re.fullmatch(r"=\{\{ \$json\.settings\.(\w+) \}\}", params["amount"])
        assert interval, params["amount"]
        assert settings[interval.group(1)][2] <= 60, "waits stay short (n8n keeps them in memory under 65 s)"
        counters = [
            n
            for n in loop
            if by_name[n]["type"] == BASE + "code"
            and re.search(r"(\w+) >= ctx\.settings\.(\w+_tries)", by_name[n]["parameters"]["jsCode"])
        ]
        assert len(counters) == 1, f"{sorted(loop)}: one Code node must count the tries"
        tries_key = re.search(r">= ctx\.settings\.(\w+_tries)", code_of(workflow, counters[0]))
        assert tries_key
        assert settings[tries_key.group(1)][2] <= 1200, "the number of tries has a hard cap"
    if batching:
        assert re.search(r"setting\('COMFYUI_BATCH_MAX', \d+, 50\)", code_of(workflow, "Prepare batch"))
        assert "list.length > maxItems" in code_of(workflow, "Prepare batch")


# --- the two files agree with each other and with the package -----------------------------------


def test_shared_code_nodes_are_identical() -> None:
    on_demand, batch = (load(name) for name in FILES)
    for name in SHARED_CODE:
        assert code_of(on_demand, name) == code_of(batch, name), name


@all_files
def test_default_graph_is_the_packaged_one(name: str) -> None:
    workflow = load(name)
    prepare = "Prepare batch" if "Prepare batch" in nodes(workflow) else "Prepare request"
    match = re.search(r"^const DEFAULT_GRAPH = (\{.*\});$", code_of(workflow, prepare), re.M)
    assert match
    assert json.loads(match.group(1)) == client.default_graph()


def hints_block(code: str) -> str:
    start = code.index("const HINTS = {")
    return code[start : code.index("\n};", start)]


def workflow_hints(name: str, node: str = "Explain failure") -> dict[str, str]:
    """The HINTS object of a Code node, code -> text (each entry is one quoted JS string)."""
    found = re.findall(
        r"^  (\w+): (?:'([^']*)'|\"((?:[^\"\\]|\\.)*)\"),$", hints_block(code_of(load(name), node)), re.M
    )
    return {key: single or json.loads(f'"{double}"') for key, single, double in found}


#: Error codes of the start function (RequestError in functions/autostop) that n8n passes on.
CONTROL_PLANE = {"NoCapacity", "InstanceStopping", "SpotInterrupted", "InstanceGone", "BudgetExceeded"}


def test_error_codes_have_hints_in_the_workflow_and_the_client() -> None:
    hints = set(workflow_hints(FILES[0]))
    used = set()
    for name in FILES:
        for node in of_type(load(name), "code"):
            used |= set(re.findall(r"code: '(\w+)'", node["parameters"]["jsCode"]))
    assert used | CONTROL_PLANE <= hints
    assert hints - {"BadRequest"} == set(client.HINTS) - {"InvalidWorkflow"}


def readme_failures() -> dict[str, list[str]]:
    """The README's table "What the failures mean": code -> [HTTP, what happened, what to do]."""
    text = (EXAMPLES / "README.md").read_text()
    table = text[text.index("## What the failures mean") :].split("\n\n")[1]
    rows = {}
    for line in table.splitlines()[2:]:
        cells = [cell.strip() for cell in line.strip("|").split(" | ")]
        rows[cells[0].strip("`")] = cells[1:]
    return rows


def test_budget_exceeded_has_one_wording_everywhere() -> None:
    """A tripped cap blocks starts until `make reset-cap`, whatever the month: one text, from cap.py."""
    advice = cap.BUDGET_EXCEEDED_ADVICE
    assert "make reset-cap" in advice
    for name in FILES:
        assert workflow_hints(name)["BudgetExceeded"] == advice, name
    assert workflow_hints(FILES[1], "Record failure")["BudgetExceeded"] == advice
    assert readme_failures()["BudgetExceeded"][2] == advice
    assert client.HINTS["BudgetExceeded"] == advice + "."  # the client's hints are sentences


def test_the_readme_table_lists_every_code_and_each_retry_after_s() -> None:
    rows = readme_failures()
    assert set(workflow_hints(FILES[0])) <= set(rows)
    with_retry = {"NoCapacity", "InstanceStopping", "SpotInterrupted"}  # the start function's answers
    for name in FILES:
        for node in of_type(load(name), "code"):
            code = node["parameters"]["jsCode"]
            with_retry |= set(re.findall(r"code: '(\w+)',(?:(?!code: ).){0,300}?retry_after_s", code, re.S))
    assert "InstanceStopped" in with_retry
    for failure in with_retry:
        assert "retry_after_s" in rows[failure][2], failure
    assert rows["SpotInterrupted"][0] == "503"


def test_the_record_failure_hints_are_the_explain_failure_hints() -> None:
    batch = load(FILES[1])
    assert hints_block(code_of(batch, "Record failure")) == hints_block(code_of(batch, "Explain failure"))


def test_the_readme_describes_the_real_missing_key_answer() -> None:
    """n8n 2.41's Webhook header auth answers 403, body "Authorization data is wrong!", Basic realm."""
    text = (EXAMPLES / "README.md").read_text()
    assert "`Authorization data is wrong!`" in text
    assert 'WWW-Authenticate: Basic realm="Webhook"' in text
    assert "empty body" not in text


# --- behaviour of the Code nodes (needs Node.js; n8n runs them the same way) --------------------

NODE = shutil.which("node")
needs_node = pytest.mark.skipif(NODE is None, reason="Node.js is not installed")
RUNNER = HERE / "n8n_code_runner.js"


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def run_code(
    workflow: str,
    node: str,
    items: list[dict[str, Any]],
    refs: dict[str, list[dict[str, Any]]] | None = None,
    variables: dict[str, str] | None = None,
    loop: dict[str, Any] | None = None,
) -> dict[str, Any]:
    assert NODE is not None
    request = {
        "code": code_of(load(workflow), node),
        "input": items,
        "nodes": refs or {},
        "vars": variables or {},
    }
    if loop:
        request["loop"] = loop
    done = subprocess.run(
        [NODE, str(RUNNER)], input=json.dumps(request), capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def out(result: dict[str, Any]) -> list[dict[str, Any]]:
    return [item["json"] for item in result["output"]]


def webhook_item(body: Any) -> dict[str, Any]:
    return {"json": {"headers": {}, "params": {}, "query": {}, "body": body}}


ON_DEMAND, BATCH = FILES
DEFAULTS = {"ready_tries": 40, "ready_wait_s": 15, "poll_tries": 200, "poll_wait_s": 3}


def ctx(**extra: Any) -> dict[str, Any]:
    settings = {**DEFAULTS, "comfyui_url": "", "checkpoint": client.DEFAULT_CHECKPOINT}
    base = {"outcome": "ok", "index": 0, "total": 1, "label": "x", "graph": {}, "settings": settings}
    return {"json": {**base, "attempt": 0, "poll": 0, "last_error": None, **extra}}


@needs_node
def test_prepare_request_builds_the_graph_from_text() -> None:
    (item,) = out(run_code(ON_DEMAND, "Prepare request", [webhook_item({"prompt": " a cat ", "seed": 5})]))
    assert item["outcome"] == "ok"
    assert item["label"] == "a cat"
    expected = client.txt2img("a cat", seed=5)
    assert item["graph"] == expected
    assert {k: item["settings"][k] for k in DEFAULTS} == DEFAULTS
    (random_seed,) = out(run_code(ON_DEMAND, "Prepare request", [webhook_item({"prompt": "a cat"})]))
    assert 0 <= random_seed["graph"]["3"]["inputs"]["seed"] < 2**32


@needs_node
def test_prepare_request_variables_are_capped() -> None:
    variables = {
        "GPU_AUTOSTOP_READY_TRIES": "1000000",
        "COMFYUI_POLL_WAIT_S": "abc",
        "COMFYUI_URL": "http://h:1/",
    }
    (item,) = out(
        run_code(ON_DEMAND, "Prepare request", [webhook_item({"prompt": "x"})], variables=variables)
    )
    assert item["settings"]["ready_tries"] == 120
    assert item["settings"]["poll_wait_s"] == 3
    assert item["settings"]["comfyui_url"] == "http://h:1"


@needs_node
def test_prepare_request_takes_a_graph_or_a_prompt_body() -> None:
    request = fixture("prompt_post_ok_request.json")
    for body in ({"workflow": request["prompt"]}, request, {"workflow": request}):
        (item,) = out(run_code(ON_DEMAND, "Prepare request", [webhook_item(body)]))
        assert item["outcome"] == "ok"
        assert item["graph"] == request["prompt"]


@needs_node
@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "'prompt' must be a non-empty text"),
        ({"prompt": "  "}, "'prompt' must be a non-empty text"),
        ({"workflow": {"nodes": [], "links": []}}, "editor (UI) format"),
        ({"workflow": {"1": {"inputs": {}}}}, "lack a class_type"),
        ({"workflow": {"1": {"class_type": "X"}}, "prompt": "x"}, "not both"),
        ({"prompt": "x", "seed": "abc"}, "'seed' must be a whole number"),
        ({"prompt": "x", "width": 10}, "'width' must be a whole number from 64 to 4096"),
    ],
)
def test_prepare_request_refuses_bad_input(body: dict[str, Any], message: str) -> None:
    (item,) = out(run_code(ON_DEMAND, "Prepare request", [webhook_item(body)]))
    assert item["outcome"] == "fail"
    assert item["failure"]["code"] == "BadRequest"
    assert message in item["failure"]["message"]


@needs_node
def test_prepare_batch_makes_one_item_per_prompt() -> None:
    body = {"prompts": ["a", {"prompt": "b", "seed": 99}, "c"], "seed": 10, "steps": 7}
    items = out(run_code(BATCH, "Prepare batch", [webhook_item(body)]))
    assert [(i["index"], i["total"], i["label"]) for i in items] == [(0, 3, "a"), (1, 3, "b"), (2, 3, "c")]
    assert [i["graph"]["3"]["inputs"]["seed"] for i in items] == [10, 99, 12]
    assert {i["graph"]["3"]["inputs"]["steps"] for i in items} == {7}
    too_many = out(run_code(BATCH, "Prepare batch", [webhook_item({"prompts": ["x"] * 11})]))
    assert (
        too_many[0]["failure"]["message"]
        == "at most 10 prompts per batch (variable COMFYUI_BATCH_MAX); got 11"
    )
    bad = out(run_code(BATCH, "Prepare batch", [webhook_item({"prompts": ["x", ""]})]))
    assert bad[0]["failure"]["message"].startswith("prompts[1]: 'prompt' must be a non-empty text")


@needs_node
def test_check_start_outcomes() -> None:
    refs = {"Prepare request": [ctx()]}
    pending = out(
        run_code(ON_DEMAND, "Check start", [{"json": {"result": {"ok": True, "ready": False}}}], refs)
    )
    assert pending[0]["outcome"] == "wait"
    warm = {"ok": True, "ready": True, "comfyui_url": "http://1.2.3.4:8188", "state": "running"}
    ready = out(run_code(ON_DEMAND, "Check start", [{"json": {"result": warm}}], refs))
    assert (ready[0]["outcome"], ready[0]["comfyui_url"]) == ("ready", "http://1.2.3.4:8188")
    no_capacity = {"ok": False, "error": {"code": "NoCapacity", "message": "none left"}, "retry_after_s": 300}
    failed = out(run_code(ON_DEMAND, "Check start", [{"json": {"result": no_capacity}}], refs))
    assert failed[0]["failure"] == {"code": "NoCapacity", "message": "none left", "retry_after_s": 300}
    node_error = {"json": {"error": "The security token included in the request is invalid."}}
    broken = out(run_code(ON_DEMAND, "Check start", [node_error], refs, {"GPU_AUTOSTOP_NAME": "team"}))
    assert broken[0]["failure"] == {
        "code": "ControlPlaneError",
        "message": "could not invoke team-start: The security token included in the request is invalid.",
    }


@needs_node
def test_ready_loop_stops_after_the_configured_tries() -> None:
    not_ready = {"json": {"result": {"ok": True, "state": "pending", "ready": False, "agent": "missing"}}}
    refs = {"Wait for boot": [ctx(settings={**ctx()["json"]["settings"], "ready_tries": 7})]}
    result = run_code(
        ON_DEMAND, "Check ready", [], refs, loop={"feed": "Wait for boot", "reply": not_ready, "max": 500}
    )
    assert result["iterations"] == 7
    (item,) = out(result)
    assert item["failure"]["code"] == "ReadyTimeout"
    assert item["failure"]["message"] == (
        "ComfyUI was not ready after 7 status checks (about 105 s; instance pending, agent missing)"
    )


@needs_node
def test_ready_loop_keeps_the_last_status_error() -> None:
    refused = {"json": {"result": {"ok": False, "error": {"code": "InvalidEvent", "message": "nope"}}}}
    refs = {"Wait for boot": [ctx(settings={**ctx()["json"]["settings"], "ready_tries": 2})]}
    result = run_code(
        ON_DEMAND, "Check ready", [], refs, loop={"feed": "Wait for boot", "reply": refused, "max": 50}
    )
    assert result["iterations"] == 2
    assert out(result)[0]["failure"]["message"].endswith("; last status error: InvalidEvent: nope")


@needs_node
@pytest.mark.parametrize(
    ("answer", "outcome", "code"),
    [
        ({"ok": True, "state": "running", "ready": True, "comfyui_url": "http://h:8188"}, "ready", None),
        ({"ok": True, "state": "running", "ready": True, "comfyui_url": None}, "fail", "NoComfyUIUrl"),
        ({"ok": True, "state": "terminated", "ready": False}, "fail", "InstanceGone"),
        ({"ok": True, "state": "stopping", "ready": False}, "fail", "InstanceStopped"),
        ({"ok": True, "state": "pending", "ready": False}, "wait", None),
    ],
)
def test_check_ready_outcomes(answer: dict[str, Any], outcome: str, code: str | None) -> None:
    (item,) = out(
        run_code(ON_DEMAND, "Check ready", [{"json": {"result": answer}}], {"Wait for boot": [ctx()]})
    )
    assert item["outcome"] == outcome
    assert item["attempt"] == 1
    assert (item.get("failure") or {}).get("code") == code


def _full(status: int, body: Any) -> dict[str, Any]:
    return {"json": {"body": body, "headers": {}, "statusCode": status, "statusMessage": "x"}}


@needs_node
def test_check_queued_matches_the_client() -> None:
    refs = {"ComfyUI ready": [ctx(comfyui_url="http://h:8188")]}
    (queued,) = out(run_code(ON_DEMAND, "Check queued", [_full(200, fixture("prompt_post_ok.json"))], refs))
    assert (queued["outcome"], queued["prompt_id"], queued["warnings"]) == (
        "queued",
        "d679c91a-c7aa-4f30-82af-b8c2e3555f03",
        [],
    )
    partial = fixture("prompt_post_partial_node_errors.json")
    (warned,) = out(run_code(ON_DEMAND, "Check queued", [_full(200, partial)], refs))
    assert warned["warnings"] == client.summarize_node_errors(partial["node_errors"])
    for name in ("prompt_post_invalid_missing_model.json", "prompt_post_invalid.json"):
        body = fixture(name)
        (failed,) = out(run_code(ON_DEMAND, "Check queued", [_full(400, json.dumps(body))], refs))
        expected = client.prompt_rejection(400, body)
        assert failed["failure"]["code"] == expected.code == "ComfyUIInvalidPrompt"
        assert failed["failure"]["message"] == expected.message
    (down,) = out(
        run_code(ON_DEMAND, "Check queued", [{"json": {"error": {"message": "connect ECONNREFUSED"}}}], refs)
    )
    assert down["failure"] == {
        "code": "ComfyUIUnreachable",
        "message": "POST http://h:8188/prompt failed: connect ECONNREFUSED",
    }


@needs_node
def test_check_history_outcomes_match_the_client() -> None:
    ok_id = "d679c91a-c7aa-4f30-82af-b8c2e3555f03"
    failing_id = "9e336449-ca94-4cd6-9fd8-ab154a62ff92"
    interrupted_id = "742552c1-acca-4ba3-99f7-436fe4cadb05"

    def check(prompt_id: str, body: Any) -> list[dict[str, Any]]:
        refs = {"Wait for image": [ctx(prompt_id=prompt_id, poll=3)]}
        return out(run_code(ON_DEMAND, "Check history", [_full(200, body)], refs))

    (pending,) = check(ok_id, fixture("history_unknown_id.json"))
    assert (pending["outcome"], pending["poll"]) == ("wait", 4)
    (done,) = check(ok_id, fixture("history_prompt_id.json"))
    assert done["outcome"] == "done"
    assert done["image"] == client.output_images(fixture("history_prompt_id.json")[ok_id])[0]
    for prompt_id, name in (
        (failing_id, "history_runtime_error.json"),
        (interrupted_id, "history_interrupted.json"),
    ):
        (failed,) = check(prompt_id, fixture(name))
        expected = client.history_failure(fixture(name)[prompt_id])
        assert expected is not None
        assert (failed["failure"]["code"], failed["failure"]["message"]) == (expected.code, expected.message)


@needs_node
def test_history_loop_stops_after_the_configured_tries() -> None:
    settings = {**ctx()["json"]["settings"], "poll_tries": 5, "poll_wait_s": 2}
    refs = {"Wait for image": [ctx(prompt_id="p1", settings=settings)]}
    loop = {"feed": "Wait for image", "reply": _full(200, {}), "max": 500}
    result = run_code(ON_DEMAND, "Check history", [], refs, loop=loop)
    assert result["iterations"] == 5
    assert out(result)[0]["failure"] == {
        "code": "GenerationTimeout",
        "message": "prompt p1 did not finish after 5 checks (about 10 s)",
    }


@needs_node
def test_history_with_several_images_gives_one_item_each() -> None:
    entry = fixture("history_prompt_id.json")
    (record,) = entry.values()
    record["outputs"]["5"] = {"images": [{"filename": "p.png", "subfolder": "", "type": "temp"}]}
    record["outputs"]["2"]["images"].append({"filename": "b.png", "subfolder": "s", "type": "output"})
    refs = {"Wait for image": [ctx(prompt_id=next(iter(entry)))]}
    items = out(run_code(ON_DEMAND, "Check history", [_full(200, entry)], refs))
    assert [i["image"]["filename"] for i in items] == ["fixture_00002_.png", "b.png", "p.png"]
    assert {i["image_count"] for i in items} == {3}


@needs_node
@pytest.mark.parametrize(
    ("failure", "status"),
    [
        ({"code": "BadRequest", "message": "m"}, 400),
        ({"code": "BudgetExceeded", "message": "m"}, 402),
        ({"code": "ComfyUIInvalidPrompt", "message": "m"}, 422),
        ({"code": "NoCapacity", "message": "m", "retry_after_s": 300}, 503),
        ({"code": "SpotInterrupted", "message": "m", "retry_after_s": 300}, 503),
        ({"code": "InstanceStopped", "message": "m", "retry_after_s": 30}, 503),
        ({"code": "ReadyTimeout", "message": "m"}, 504),
        ({"code": "GenerationTimeout", "message": "m"}, 504),
        ({"code": "ComfyUIExecutionError", "message": "m"}, 502),
        ({"code": "SomethingNew", "message": "m"}, 502),
    ],
)
def test_explain_failure(failure: dict[str, Any], status: int) -> None:
    (item,) = out(run_code(ON_DEMAND, "Explain failure", [{"json": {"failure": failure}}]))
    assert item["ok"] is False
    assert item["http_status"] == status
    assert item["error"]["code"] == failure["code"]
    assert item["error"].get("retry_after_s") == failure.get("retry_after_s")
    assert ("hint" in item["error"]) == (failure["code"] != "SomethingNew")


@needs_node
def test_explain_failure_of_a_download_error_output() -> None:
    (item,) = out(
        run_code(ON_DEMAND, "Explain failure", [{"json": {"error": {"message": '404 - "Not Found"'}}}])
    )
    assert item["error"]["code"] == "ComfyUIUnreachable"
    assert item["error"]["message"] == 'downloading the image failed: 404 - "Not Found"'


@needs_node
def test_batch_collects_images_and_summarises() -> None:
    image = ctx(index=1, label="b", prompt_id="p", warnings=[], image={"filename": "a.png"})
    image["binary"] = {"data": {"data": "iVBORw0KGgo=", "mimeType": "image/png", "fileName": "a.png"}}
    (result,) = out(run_code(BATCH, "Collect result", [image]))
    assert result == {
        "index": 1,
        "label": "b",
        "ok": True,
        "prompt_id": "p",
        "warnings": [],
        "images": [{"filename": "a.png", "mime_type": "image/png", "data_base64": "iVBORw0KGgo="}],
    }
    failed = ctx(index=0, label="a", failure={"code": "ComfyUIInvalidPrompt", "message": "m"})
    (recorded,) = out(run_code(BATCH, "Record failure", [failed]))
    assert recorded == {
        "index": 0,
        "label": "a",
        "ok": False,
        "prompt_id": None,
        "error": {
            "code": "ComfyUIInvalidPrompt",
            "message": "m",
            "hint": workflow_hints(BATCH)["ComfyUIInvalidPrompt"],
            "prompt_index": 0,
        },
    }
    (summary,) = out(run_code(BATCH, "Summarize batch", [{"json": result}, {"json": recorded}]))
    assert (summary["ok"], summary["total"], summary["succeeded"], summary["failed"]) == (False, 2, 1, 1)
    assert [r["index"] for r in summary["results"]] == [0, 1]


@needs_node
def test_batch_records_a_download_failure_with_hint_and_prompt_index() -> None:
    refs = {"Check history": [ctx(index=2, total=3, label="c", prompt_id="p3")]}
    error_output = {"json": {"error": {"message": '404 - "Not Found"'}}}
    (recorded,) = out(run_code(BATCH, "Record failure", [error_output], refs))
    assert recorded["index"] == 2
    assert recorded["prompt_id"] == "p3"
    assert recorded["error"] == {
        "code": "ComfyUIUnreachable",
        "message": 'downloading the image failed: 404 - "Not Found"',
        "hint": workflow_hints(BATCH)["ComfyUIUnreachable"],
        "prompt_index": 2,
    }
