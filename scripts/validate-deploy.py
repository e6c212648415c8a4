#!/usr/bin/env python3
"""Validates deploy/ offline: every kustomization's resources against the Kubernetes schemas
(kubernetes-validate, strict: unknown fields are errors), the Prometheus Operator's ServiceMonitor
and PodMonitor against a minimal schema of our own (kubernetes-validate knows only core kinds),
and the references between them (selectors, port names, probes, config keys, RBAC scope, hostPath
types and mounts, the CRI socket and log files of the config against the mounts).

Kustomizations are resolved here (kustomize is not needed): resources, `images`, and `patches` in
JSON6902 form (add/remove/replace/test, target by kind and name). Strategic-merge patches and the
deprecated patchesStrategicMerge/patchesJson6902 keys are rejected with a message, not ignored.

    validate-deploy.py [--deploy DIR] [--kubernetes-version 1.31.0] [--podstart BINARY]

--podstart: the podstart binary whose `agent --help` lists the flags the ConfigMap may set.
Prints one line per finding; exits 1 when anything is wrong, 2 when it cannot run.
"""
import argparse
import copy
import os
import re
import subprocess
import sys

try:
    import jsonschema
    import kubernetes_validate
    import yaml
except ImportError as error:  # pragma: no cover
    print(f"cannot run: {error}; run scripts/install-deps.sh (pip install kubernetes-validate into "
          f"/opt/podstart-tools/venv) and use that venv's python", file=sys.stderr)
    sys.exit(2)

ERRORS = []


def error(where, message):
    line = f"{where}: {message}"
    if line not in ERRORS:  # a file shared by several kustomizations is reported once
        ERRORS.append(line)


# --- the Prometheus Operator's custom resources: the fields we use, nothing unknown allowed ---

LABEL_SELECTOR = {
    "type": "object", "additionalProperties": False,
    "properties": {
        "matchLabels": {"type": "object", "additionalProperties": {"type": "string"}},
        "matchExpressions": {"type": "array", "items": {
            "type": "object", "required": ["key", "operator"], "additionalProperties": False,
            "properties": {"key": {"type": "string"}, "operator": {"enum": ["In", "NotIn", "Exists", "DoesNotExist"]},
                           "values": {"type": "array", "items": {"type": "string"}}}}},
    },
}
DURATION = {"type": "string", "pattern": r"^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$"}
RELABELING = {
    "type": "object", "additionalProperties": False,
    "properties": {
        "action": {"enum": ["replace", "Replace", "keep", "Keep", "drop", "Drop", "hashmod", "HashMod", "labelmap",
                            "LabelMap", "labeldrop", "LabelDrop", "labelkeep", "LabelKeep", "lowercase", "Lowercase",
                            "uppercase", "Uppercase", "keepequal", "KeepEqual", "dropequal", "DropEqual"]},
        "sourceLabels": {"type": "array", "items": {"type": "string", "pattern": r"^[a-zA-Z_][a-zA-Z0-9_]*$"}},
        "separator": {"type": "string"}, "targetLabel": {"type": "string"}, "regex": {"type": "string"},
        "modulus": {"type": "integer"}, "replacement": {"type": "string"},
    },
}
ENDPOINT_COMMON = {
    "port": {"type": "string"}, "path": {"type": "string"}, "scheme": {"enum": ["http", "https"]},
    "interval": DURATION, "scrapeTimeout": DURATION, "honorLabels": {"type": "boolean"},
    "relabelings": {"type": "array", "items": RELABELING},
    "metricRelabelings": {"type": "array", "items": RELABELING},
}
METADATA = {
    "type": "object", "required": ["name", "namespace"],
    "properties": {"name": {"type": "string", "pattern": r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"},
                   "namespace": {"type": "string"}, "labels": {"type": "object"}},
}
NAMESPACE_SELECTOR = {"type": "object", "additionalProperties": False,
                      "properties": {"any": {"type": "boolean"}, "matchNames": {"type": "array", "items": {"type": "string"}}}}


def monitor_schema(kind, endpoints_key):
    return {
        "type": "object", "required": ["apiVersion", "kind", "metadata", "spec"], "additionalProperties": False,
        "properties": {
            "apiVersion": {"const": "monitoring.coreos.com/v1"}, "kind": {"const": kind}, "metadata": METADATA,
            "spec": {
                "type": "object", "required": ["selector", endpoints_key], "additionalProperties": False,
                "properties": {
                    "jobLabel": {"type": "string"}, "selector": LABEL_SELECTOR,
                    "namespaceSelector": NAMESPACE_SELECTOR,
                    endpoints_key: {"type": "array", "minItems": 1, "items": {
                        "type": "object", "additionalProperties": False, "properties": ENDPOINT_COMMON}},
                },
            },
        },
    }


CRD_SCHEMAS = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"): monitor_schema("ServiceMonitor", "endpoints"),
    ("monitoring.coreos.com/v1", "PodMonitor"): monitor_schema("PodMonitor", "podMetricsEndpoints"),
}


# --- kustomizations ---

def load_kustomization(directory, seen):
    """All resources of the kustomization in `directory`, recursively, as (file, document), with
    its JSON6902 `patches` and `images` applied in kustomize's order (resources, then patches,
    then images)."""
    path = os.path.join(directory, "kustomization.yaml")
    if not os.path.exists(path):
        error(directory, "no kustomization.yaml")
        return []
    with open(path) as f:
        kustomization = yaml.safe_load(f) or {}
    allowed = {"apiVersion", "kind", "resources", "images", "namespace", "commonLabels", "labels", "patches"}
    for key in kustomization:
        if key in ("patchesStrategicMerge", "patchesJson6902"):
            error(path, f"{key} is not supported by validate-deploy.py (and deprecated in kustomize): "
                        f"use `patches` with a JSON6902 patch file and a target")
        elif key not in allowed:
            error(path, f"unexpected kustomization key {key!r}")
    if kustomization.get("kind") != "Kustomization":
        error(path, "kind must be Kustomization")
    documents = []
    for resource in kustomization.get("resources", []):
        target = os.path.normpath(os.path.join(directory, resource))
        if os.path.isdir(target):
            documents += load_kustomization(target, seen)
        elif os.path.isfile(target):
            # kustomize refuses files outside the kustomization's own directory tree
            if not target.startswith(os.path.normpath(directory) + os.sep):
                error(path, f"{resource} is outside the kustomization's directory (kustomize refuses it)")
            with open(target) as f:
                for document in yaml.safe_load_all(f):
                    if document is not None:
                        documents.append((target, document))
            seen.add(target)
        else:
            error(path, f"resource {resource} does not exist")
    for number, patch in enumerate(kustomization.get("patches", [])):
        documents = apply_patch(path, directory, number, patch, documents, seen)
    for image in kustomization.get("images", []):
        used = [d for _, d in documents if d.get("kind") == "DaemonSet"
                and any(c.get("image") == image.get("name") for c in d["spec"]["template"]["spec"]["containers"])]
        if not used:
            error(path, f"images entry {image.get('name')!r} matches no container image")
    return documents


# --- patches: JSON6902 only (RFC 6902 operations on one targeted object) ---

class PatchFailed(Exception):
    pass


def pointer(path):
    """An RFC 6901 JSON pointer as a list of tokens."""
    if path == "":
        return []
    if not path.startswith("/"):
        raise PatchFailed(f"path {path!r} is not a JSON pointer (must start with /)")
    return [t.replace("~1", "/").replace("~0", "~") for t in path[1:].split("/")]


def walk(document, tokens, op, path):
    """The container of the last token, and that token (an int for lists)."""
    node = document
    for token in tokens[:-1]:
        if isinstance(node, list):
            if not token.isdigit() or int(token) >= len(node):
                raise PatchFailed(f"{op} {path}: no element {token!r}")
            node = node[int(token)]
        elif isinstance(node, dict):
            if token not in node:
                raise PatchFailed(f"{op} {path}: no member {token!r}")
            node = node[token]
        else:
            raise PatchFailed(f"{op} {path}: {token!r} is inside a scalar")
    last = tokens[-1]
    if isinstance(node, list):
        if last == "-" and op == "add":
            return node, len(node)
        if not last.isdigit() or int(last) > len(node) or (op != "add" and int(last) == len(node)):
            raise PatchFailed(f"{op} {path}: no element {last!r}")
        return node, int(last)
    if not isinstance(node, dict):
        raise PatchFailed(f"{op} {path}: {last!r} is inside a scalar")
    if op != "add" and last not in node:
        raise PatchFailed(f"{op} {path}: no member {last!r}")
    return node, last


def apply_operations(document, operations):
    for operation in operations:
        if not isinstance(operation, dict) or "op" not in operation or "path" not in operation:
            raise PatchFailed(f"{operation!r} is not a JSON6902 operation (op, path)")
        op, path = operation["op"], operation["path"]
        if op not in ("add", "remove", "replace", "test"):
            raise PatchFailed(f"op {op!r} is not supported here (add, remove, replace, test)")
        if op in ("add", "replace", "test") and "value" not in operation:
            raise PatchFailed(f"{op} {path}: no value")
        tokens = pointer(path)
        if not tokens:
            raise PatchFailed(f"{op} on the whole object is not supported")
        parent, key = walk(document, tokens, op, path)
        if op == "test":
            if parent[key] != operation["value"]:
                raise PatchFailed(f"test {path}: is {parent[key]!r}, not {operation['value']!r}")
        elif op == "remove":
            del parent[key]
        elif op == "replace":
            parent[key] = copy.deepcopy(operation["value"])
        elif isinstance(parent, list):
            parent.insert(key, copy.deepcopy(operation["value"]))
        else:
            parent[key] = copy.deepcopy(operation["value"])


def apply_patch(kustomization, directory, number, patch, documents, seen):
    where = f"{kustomization} patches[{number}]"
    if not isinstance(patch, dict) or set(patch) - {"path", "patch", "target"}:
        error(where, "a patch must have path or patch, and target (options are not supported here)")
        return documents
    if "path" in patch:
        file = os.path.normpath(os.path.join(directory, patch["path"]))
        if not os.path.isfile(file):
            error(where, f"patch file {patch['path']} does not exist")
            return documents
        if not file.startswith(os.path.normpath(directory) + os.sep):
            error(where, f"{patch['path']} is outside the kustomization's directory (kustomize refuses it)")
        seen.add(file)
        with open(file) as f:
            text = f.read()
        where = f"{where} ({os.path.basename(file)})"
    elif "patch" in patch:
        text = patch["patch"]
    else:
        error(where, "a patch needs path or patch")
        return documents
    operations = yaml.safe_load(text)
    if not isinstance(operations, list):
        error(where, "strategic merge patches are not supported by validate-deploy.py: write a JSON6902 "
                     "patch (a list of {op, path, value}) with a target")
        return documents
    target = patch.get("target")
    if not isinstance(target, dict) or not target.get("kind") or not target.get("name"):
        error(where, "a JSON6902 patch needs a target with kind and name")
        return documents
    if set(target) - {"group", "version", "kind", "name", "namespace"}:
        error(where, f"target selectors beyond group/version/kind/name/namespace are not supported: {sorted(target)}")
        return documents
    patched, matched = [], 0
    for file, document in documents:
        api = document.get("apiVersion", "")
        group, _, version = api.rpartition("/")
        metadata = document.get("metadata", {})
        if (document.get("kind") == target["kind"] and metadata.get("name") == target["name"]
                and target.get("namespace", metadata.get("namespace")) == metadata.get("namespace")
                and target.get("group", group) == group and target.get("version", version) == version):
            matched += 1
            document = copy.deepcopy(document)
            try:
                apply_operations(document, operations)
            except PatchFailed as problem:
                error(where, f"{target['kind']}/{target['name']}: {problem} (kustomize fails the build)")
        patched.append((file, document))
    if matched == 0:
        error(where, f"target {target['kind']}/{target['name']} matches no object: the patch would change nothing")
    return patched


def name_of(document):
    return f"{document.get('kind')}/{document.get('metadata', {}).get('name')}"


def validate_schema(file, document, version):
    key = (document.get("apiVersion"), document.get("kind"))
    if key in CRD_SCHEMAS:
        validator = jsonschema.Draft7Validator(CRD_SCHEMAS[key])
        for problem in sorted(validator.iter_errors(document), key=lambda e: list(e.path)):
            where = ".".join(str(p) for p in problem.path)
            error(f"{file} {name_of(document)}", f"{where}: {problem.message}")
        return
    try:
        kubernetes_validate.validate(document, version, strict=True)
    except kubernetes_validate.ValidationError as problem:
        where = ".".join(str(p) for p in problem.path)
        error(f"{file} {name_of(document)}", f"{where}: {problem.message}")
    except Exception as problem:  # unknown kind or version
        error(f"{file} {name_of(document)}", f"cannot validate: {problem}")


def selects(selector, labels):
    match = selector.get("matchLabels", {})
    return bool(match) and all(labels.get(k) == v for k, v in match.items())


def agent_flags(binary):
    output = subprocess.run([binary, "agent", "--help"], capture_output=True, text=True, check=False)
    return set(re.findall(r"--([a-z][a-z0-9-]*)", output.stdout + output.stderr))


ALLOWED_CAPABILITIES = {"BPF", "PERFMON", "SYS_PTRACE", "DAC_READ_SEARCH"}
# hostPaths that DirectoryOrCreate may make on a node: the agent's own state, and the volatile
# journal's directory (an empty directory on a tmpfs)
CREATABLE = {"/var/lib/podstart", "/run/log/journal"}


def host_mount(pod, container, path):
    """The hostPath volumeMount of `container` under which the container path `path` lies, as
    (mount, volume), or None."""
    best = None
    for mount in container.get("volumeMounts", []):
        root = mount["mountPath"].rstrip("/") or "/"
        if path == root or path.startswith(root + "/"):
            volume = next((v for v in pod.get("volumes", []) if v["name"] == mount["name"]), None)
            if volume and "hostPath" in volume and (best is None or len(root) > len(best[0]["mountPath"])):
                best = (mount, volume)
    return best


def check_host_file(cw, pod, container, key, path):
    """A host file the agent opens (CRI socket, log) must be visible at that same path."""
    found = host_mount(pod, container, path)
    if found is None:
        error(cw, f"{key} {path} is not under any hostPath mount of the agent")
        return None
    mount, volume = found
    if mount["mountPath"] == path:
        # a socket or file mounted itself: a restarted containerd (or a rotated log) is a new
        # inode the bind mount never sees
        error(cw, f"{key} {path} is mounted as a file: mount its directory")
    return mount


# An overlay that leaves out mountPropagation (nodes whose / is a private mount) says so on the
# DaemonSet with this annotation; any other DaemonSet must propagate the runtime's mounts.
NO_PROPAGATION = "podstart.dev/mount-propagation"


def check_config_paths(cw, pod, container, values, propagation_optional):
    """The CRI socket and the log files the config names are where the agent can open them."""
    endpoint = values.get("cri-endpoint")
    if not isinstance(endpoint, str) or not endpoint.startswith("unix:///"):
        error(cw, f"cri-endpoint {endpoint!r} must be set to a unix:/// socket (each distribution has its own)")
    else:
        mount = check_host_file(cw, pod, container, "cri-endpoint", endpoint[len("unix://"):])
        # the socket's directory is containerd's state directory on most distributions, holding
        # the rootfs mounts; without HostToContainer the agent sees none made after it started
        if mount is not None and mount.get("mountPropagation") != "HostToContainer" \
                and not propagation_optional:
            error(cw, f"the CRI socket's mount {mount['name']} has no mountPropagation: HostToContainer "
                      f"(only an overlay for nodes without shared mounts may leave it out, annotated {NO_PROPAGATION}: none)")
    for key in ["kubelet-log", "containerd-log"]:
        if key in values:
            check_host_file(cw, pod, container, key, str(values[key]))
    # journal: true reads the node's journal files where journald keeps them (journalctl
    # --root=/), or journal-directory: each must be the node's, seen through a hostPath mount
    if values.get("journal") is True:
        directory = values.get("journal-directory")
        for path in [str(directory)] if directory else ["/var/log/journal", "/run/log/journal"]:
            if host_mount(pod, container, path) is None:
                error(cw, f"journal: true reads {path}, which is not under any hostPath mount of the agent")
    elif "journal-directory" in values or "journal-kubelet-unit" in values or "journal-containerd-unit" in values:
        error(cw, "journal-directory and journal-*-unit are read only with journal: true")


def flag_value(container, values, name):
    """A flag's value as the agent sees it: the container's args win over the config file."""
    args = container.get("args", [])
    for i, arg in enumerate(args):
        if arg == f"--{name}" and i + 1 < len(args):
            return str(args[i + 1])
        if arg.startswith(f"--{name}="):
            return arg.split("=", 1)[1]
    value = values.get(name)
    return None if value is None else str(value)


def check_api_auth(where, container, values, by_kind, sa, namespace):
    """/v1 (every start's file paths and byte ranges) must not be open to the pod network."""
    listen = flag_value(container, values, "listen") or "0.0.0.0:9464"
    loopback = listen.startswith("127.") or listen.startswith("[::1]") or listen.startswith("localhost:")
    mode = flag_value(container, values, "api-auth")
    if mode is None and flag_value(container, values, "api-token-file"):
        mode = "token"
    if mode == "none" and not loopback:
        error(where, f"api-auth none on {listen}: /v1 served without authentication to the pod network "
                     f"(use api-auth: delegated)")
    if mode == "token" and not (flag_value(container, values, "tls-cert") and flag_value(container, values, "tls-key")):
        error(where, "api-auth token without tls-cert/tls-key: the token would cross the network in clear text")
    if mode == "delegated":
        bound = any(b.get("roleRef", {}).get("name") == "system:auth-delegator"
                    and any(s.get("kind") == "ServiceAccount" and s.get("name") == sa and s.get("namespace") == namespace
                            for s in b.get("subjects", []))
                    for _, b in by_kind.get("ClusterRoleBinding", []))
        if not bound:
            error(where, "api-auth delegated needs the agent's service account bound to ClusterRole system:auth-delegator "
                         "(create tokenreviews and subjectaccessreviews)")


def check_references(documents, flags):
    by_kind = {}
    for file, document in documents:
        by_kind.setdefault(document.get("kind"), []).append((file, document))
    daemonsets = by_kind.get("DaemonSet", [])
    if len(daemonsets) != 1:
        error("kustomization", f"expected one DaemonSet, found {len(daemonsets)}")
        return
    file, ds = daemonsets[0]
    where = f"{file} {name_of(ds)}"
    pod = ds["spec"]["template"]["spec"]
    pod_labels = ds["spec"]["template"]["metadata"].get("labels", {})
    namespace = ds["metadata"].get("namespace")
    if not selects(ds["spec"]["selector"], pod_labels):
        error(where, "selector does not select the pod template's labels")
    if pod.get("hostPID") is not True:
        error(where, "hostPID must be true (the kernel reports host pids)")
    if not any(t.get("operator") == "Exists" and "key" not in t and "effect" not in t for t in pod.get("tolerations", [])):
        error(where, "needs a toleration {operator: Exists} to run on every node")
    if pod.get("nodeSelector", {}).get("kubernetes.io/os") != "linux":
        error(where, "nodeSelector kubernetes.io/os: linux missing")
    sa = pod.get("serviceAccountName")
    if not any(d["metadata"]["name"] == sa for _, d in by_kind.get("ServiceAccount", [])):
        error(where, f"serviceAccountName {sa!r} is not defined")
    host_paths = {v["hostPath"]["path"]: v["name"] for v in pod.get("volumes", []) if "hostPath" in v}
    for path in ["/sys/kernel/btf", "/sys/kernel/tracing", "/var/lib/podstart"]:
        if path not in host_paths:
            error(where, f"no hostPath volume for {path}")
    for v in pod.get("volumes", []):
        if "hostPath" not in v:
            continue
        path, kind = v["hostPath"]["path"], v["hostPath"].get("type", "")
        # a type check that fails fails the whole pod (MountVolume.SetUp failed): only the
        # kernel's own interfaces, which no type would make appear, may be checked as Directory
        if kind == "Directory" and not path.startswith("/sys/"):
            error(where, f"volume {v['name']}: hostPath {path} has type Directory: the pod cannot start on a "
                         f"node without it (leave the type empty)")
        elif kind == "DirectoryOrCreate" and path not in CREATABLE:
            error(where, f"volume {v['name']}: hostPath {path} is DirectoryOrCreate: only {sorted(CREATABLE)} "
                         f"are harmless to create (leave the type empty)")
        elif kind not in ("", "Directory", "DirectoryOrCreate"):
            error(where, f"volume {v['name']}: hostPath {path} has type {kind}: the pod cannot start on a node "
                         f"without it (leave the type empty)")
    volume_names = {v["name"] for v in pod.get("volumes", [])}
    configmaps = {d["metadata"]["name"]: d for _, d in by_kind.get("ConfigMap", [])}
    for v in pod.get("volumes", []):
        if "configMap" in v and v["configMap"]["name"] not in configmaps:
            error(where, f"volume {v['name']} names ConfigMap {v['configMap']['name']!r}, which is not defined")
    containers = pod.get("containers", [])
    ports = {}
    for c in containers:
        cw = f"{where} container {c['name']}"
        sc = c.get("securityContext", {})
        if sc.get("privileged"):
            error(cw, "privileged: true (no mount here needs it)")
        if sc.get("readOnlyRootFilesystem") is not True:
            error(cw, "readOnlyRootFilesystem must be true")
        caps = sc.get("capabilities", {})
        if caps.get("drop") != ["ALL"]:
            error(cw, "capabilities must drop ALL")
        extra = set(caps.get("add", [])) - ALLOWED_CAPABILITIES
        if extra:
            error(cw, f"capabilities beyond the justified set: {sorted(extra)}")
        for port in c.get("ports", []):
            ports[port.get("name")] = port["containerPort"]
        for probe, path in [("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")]:
            get = c.get(probe, {}).get("httpGet", {})
            if get.get("path") != path:
                error(cw, f"{probe} must GET {path}")
            if get.get("port") not in ports and get.get("port") not in ports.values():
                error(cw, f"{probe} port {get.get('port')!r} is not a container port")
        env = {e["name"]: e for e in c.get("env", [])}
        if env.get("NODE_NAME", {}).get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") != "spec.nodeName":
            error(cw, "NODE_NAME must come from the downward API (fieldRef spec.nodeName)")
        if env.get("HOST_IP", {}).get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") != "status.hostIP":
            error(cw, "HOST_IP (the kubelet's address) must come from the downward API (fieldRef status.hostIP)")
        resources = c.get("resources", {})
        # the schemas allow any string for a quantity; the API server does not
        quantity = re.compile(r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+|[numkMGTPE]|[KMGTPE]i)?$")
        for part in ["requests", "limits"]:
            for resource, value in resources.get(part, {}).items():
                if not quantity.match(str(value)):
                    error(cw, f"resources.{part}.{resource} {value!r} is not a quantity")
        for part in ["requests", "limits"]:
            if "memory" not in resources.get(part, {}):
                error(cw, f"resources.{part}.memory missing")
        if "cpu" not in resources.get("requests", {}):
            error(cw, "resources.requests.cpu missing")
        for mount in c.get("volumeMounts", []):
            if mount["name"] not in volume_names:
                error(cw, f"volumeMount {mount['name']} has no volume")
            volume = next((v for v in pod.get("volumes", []) if v["name"] == mount["name"]), {})
            # the agent opens the host paths the kernel's mount table (overlay lowerdir/upperdir)
            # and the logs name, as they are: each host directory at its own path
            if "hostPath" in volume and volume["hostPath"]["path"].rstrip("/") != mount["mountPath"].rstrip("/"):
                error(cw, f"volumeMount {mount['name']} puts hostPath {volume['hostPath']['path']} at "
                          f"{mount['mountPath']}: mount host paths at the same path")
            if "hostPath" in volume and mount.get("readOnly") is not True and volume["hostPath"]["path"] != "/var/lib/podstart":
                error(cw, f"volumeMount {mount['name']} ({volume['hostPath']['path']}) must be readOnly")
            if mount.get("mountPropagation") not in (None, "None", "HostToContainer"):
                error(cw, f"volumeMount {mount['name']}: mountPropagation {mount['mountPropagation']} "
                          f"(Bidirectional needs a privileged container and the agent mounts nothing)")
        # --config FILE must be a mounted ConfigMap key whose keys are agent flags
        args = c.get("args", [])
        if "--config" in args:
            config_path = args[args.index("--config") + 1]
            directory, key = os.path.split(config_path)
            mount = next((m for m in c.get("volumeMounts", []) if m["mountPath"] == directory), None)
            volume = next((v for v in pod.get("volumes", []) if mount and v["name"] == mount["name"]), None)
            config = configmaps.get((volume or {}).get("configMap", {}).get("name"))
            if config is None or key not in config.get("data", {}):
                error(cw, f"--config {config_path} is not a key of a mounted ConfigMap")
            else:
                values = yaml.safe_load(config["data"][key]) or {}
                if not isinstance(values, dict):
                    error(cw, f"{config_path} must be a mapping of flag names to values")
                else:
                    if flags is not None:
                        for name in values:
                            if name not in flags:
                                error(f"ConfigMap/{config['metadata']['name']}", f"{name!r} is not a flag of podstart agent")
                    optional = ds["metadata"].get("annotations", {}).get(NO_PROPAGATION) == "none"
                    check_config_paths(cw, pod, c, values, optional)
                    check_api_auth(cw, c, values, by_kind, sa, namespace)
    for file, svc in by_kind.get("Service", []):
        sw = f"{file} {name_of(svc)}"
        if not all(pod_labels.get(k) == v for k, v in svc["spec"].get("selector", {}).items()) or not svc["spec"].get("selector"):
            error(sw, "selector does not select the agent pods")
        for port in svc["spec"].get("ports", []):
            target = port.get("targetPort", port["port"])
            if target not in ports and target not in ports.values():
                error(sw, f"targetPort {target!r} is not a container port of the agent")
        for _, sm in by_kind.get("ServiceMonitor", []):
            smw = f"{name_of(sm)}"
            if not selects(sm["spec"]["selector"], svc["metadata"].get("labels", {})):
                error(smw, f"selector does not select {name_of(svc)}")
            names = {p.get("name") for p in svc["spec"].get("ports", [])}
            for endpoint in sm["spec"]["endpoints"]:
                if endpoint.get("port") not in names:
                    error(smw, f"endpoint port {endpoint.get('port')!r} is not a port name of {name_of(svc)}")
            if svc["metadata"].get("namespace") not in sm["spec"].get("namespaceSelector", {}).get("matchNames", [namespace]):
                error(smw, "namespaceSelector does not include the Service's namespace")
    for _, pm in by_kind.get("PodMonitor", []):
        pmw = name_of(pm)
        if not selects(pm["spec"]["selector"], pod_labels):
            error(pmw, "selector does not select the agent pods")
        for endpoint in pm["spec"]["podMetricsEndpoints"]:
            if endpoint.get("port") not in ports:
                error(pmw, f"port {endpoint.get('port')!r} is not a container port name of the agent")
    for kind in ["ServiceMonitor", "PodMonitor"]:
        for _, monitor in by_kind.get(kind, []):
            endpoints = monitor["spec"].get("endpoints") or monitor["spec"].get("podMetricsEndpoints") or []
            for endpoint in endpoints:
                if not any(r.get("targetLabel") == "node" and r.get("sourceLabels") == ["__meta_kubernetes_pod_node_name"]
                           for r in endpoint.get("relabelings", [])):
                    error(name_of(monitor), "must relabel __meta_kubernetes_pod_node_name to node (dashboards and alerts use it)")
    if by_kind.get("ServiceMonitor") and by_kind.get("PodMonitor"):
        error("kustomization", "both a ServiceMonitor and a PodMonitor: every series would be scraped twice")
    for file, role in by_kind.get("ClusterRole", []) + by_kind.get("Role", []):
        for rule in role.get("rules", []):
            if "nonResourceURLs" in rule:
                # the role clients are bound to for the agent's /v1 (docs/deployment.md): get, /v1 only
                urls = rule.get("nonResourceURLs", [])
                if rule.get("resources") or any(u != "/v1" and not u.startswith("/v1/") for u in urls):
                    error(f"{file} {name_of(role)}", f"nonResourceURLs beyond the agent's /v1: {urls}")
                if set(rule.get("verbs", [])) != {"get"}:
                    error(f"{file} {name_of(role)}", f"verbs beyond get for the agent's /v1: {rule.get('verbs')}")
                continue
            # what the agent calls: list + watch of pods; list of a pod's events (one per start);
            # GET on the kubelet (/metrics, /pods)
            resources = set(rule.get("resources", []))
            if resources - {"pods", "events", "nodes/metrics", "nodes/proxy"}:
                error(f"{file} {name_of(role)}", f"resources beyond pods, events and the kubelet's nodes/metrics, nodes/proxy: {rule.get('resources')}")
            allowed = {"list", "watch"} if resources <= {"pods"} else {"list"} if resources <= {"events"} else {"get"}
            if set(rule.get("verbs", [])) - allowed:
                error(f"{file} {name_of(role)}", f"verbs beyond {'/'.join(sorted(allowed))} for {sorted(resources)}: {rule.get('verbs')}")
    for file, binding in by_kind.get("ClusterRoleBinding", []):
        for subject in binding.get("subjects", []):
            if subject.get("kind") == "ServiceAccount" and subject.get("name") != sa:
                error(f"{file} {name_of(binding)}", f"binds {subject.get('name')!r}, not the agent's service account")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--deploy", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "deploy"))
    parser.add_argument("--kubernetes-version", default="1.31.0")
    parser.add_argument("--podstart", help="podstart binary: check ConfigMap keys against `podstart agent --help`")
    arguments = parser.parse_args()
    deploy = os.path.normpath(arguments.deploy)
    flags = agent_flags(arguments.podstart) if arguments.podstart else None
    if flags is not None and "cri-endpoint" not in flags:
        print(f"cannot run: {arguments.podstart} agent --help lists no flags", file=sys.stderr)
        return 2
    roots = sorted({os.path.dirname(os.path.join(d, f)) for d, _, files in os.walk(deploy)
                    for f in files if f == "kustomization.yaml"})
    every_file = {os.path.join(d, f) for d, _, files in os.walk(deploy) for f in files
                  if f.endswith((".yaml", ".yml")) and f != "kustomization.yaml"}
    used = set()
    for root in roots:
        documents = load_kustomization(root, used)
        for file, document in documents:
            validate_schema(file, document, arguments.kubernetes_version)
        check_references(documents, flags)
        print(f"checked {os.path.relpath(root, deploy) or '.'}: {len(documents)} objects "
              f"({', '.join(sorted(name_of(d) for _, d in documents))})")
    for orphan in sorted(every_file - used):
        error(orphan, "not part of any kustomization")
    for line in ERRORS:
        print(f"error: {line}")
    return 1 if ERRORS else 0


if __name__ == "__main__":
    sys.exit(main())
