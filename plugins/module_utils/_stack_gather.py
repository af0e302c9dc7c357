# This file is for internal use by the llmd.stack collection only.
# It may change or disappear in any release without notice.
"""Thin I/O shell of llmd_stack_facts: one discovery, then one LIST per kind.

What to read is planned by the pure core (``_stack_model.plan_requests``);
this file only sends the GETs through the kubernetes.core client, counts
them, and turns API errors into one line a user can act on.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import re

from ansible_collections.llmd.stack.plugins.module_utils._stack_model import (
    AGGREGATED_DISCOVERY_ACCEPT,
    CORE_KINDS,
    KINDS,
    KINDS_FOR_CHECK,
    parse_discovery,
    plan_requests,
)

# (connect, read) seconds for each request; a LIST of many objects takes a while.
REQUEST_TIMEOUT = (10, 120)


class GatherError(Exception):
    """A read failed in a way the user must fix; the message is one line."""


class Transport(object):
    """GETs JSON through a kubernetes.core K8SClient and counts the requests."""

    def __init__(self, k8s_client):
        self._client = k8s_client.client
        self.host = getattr(getattr(k8s_client, "configuration", None), "host", None) or "the configured host"
        self.requests = []

    @property
    def count(self):
        return len(self.requests)

    def get(self, path, query=None, accept="application/json"):
        self.requests.append(path)
        response = self._client.request(
            "GET", path,
            query_params=sorted((query or {}).items()),
            header_params={"Accept": accept},
            serialize=False,
            _request_timeout=REQUEST_TIMEOUT,
        )
        data = response.data
        return json.loads(data.decode("utf-8") if isinstance(data, bytes) else data)


def _status(exc):
    status = getattr(exc, "status", None)
    return status if isinstance(status, int) else None


def _server_message(exc):
    body = getattr(exc, "body", None)
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    if isinstance(body, str):
        try:
            message = json.loads(body).get("message")
        except (ValueError, AttributeError):
            message = None
        if isinstance(message, str) and message:
            return message
    return str(getattr(exc, "reason", "") or "").strip()


def short_reason(exc):
    """A connection error as a short phrase ('[Errno 111] Connection refused')."""
    text = str(getattr(exc, "reason", None) or exc)
    found = re.search(r"\[Errno[^\]]*\][^'\")]*", text)
    if found:
        return found.group(0).strip()
    if "CERTIFICATE_VERIFY_FAILED" in text or "certificate verify failed" in text:
        return "TLS certificate verify failed (set ca_cert, or validate_certs: false for a test cluster)"
    if "timed out" in text.lower():
        return "timed out"
    text = re.sub(r"<[^>]*>:?\s*", "", text)
    return text.strip()[:200] or type(exc).__name__


def _checks_needing(key):
    if key in CORE_KINDS:
        return None
    return [check for check, keys in sorted(KINDS_FOR_CHECK.items()) if key in keys]


def describe_error(exc, host, verb, key=None, namespace=None, path=None):
    """One line for a failed request: denied verb/resource/namespace, or why the API is unreachable."""
    status = _status(exc)
    if key in KINDS:
        group, plural = KINDS[key][0], KINDS[key][1]
        resource = "%s.%s" % (plural, group) if group else plural
    else:
        resource = path or "the API"
    where = "in namespace %s" % namespace if namespace else "(cluster-scoped)"
    if status == 401:
        return ("unauthorized (401) to %s %s %s at %s: the credentials were rejected; "
                "check kubeconfig/context or api_key" % (verb, resource, where, host))
    if status == 403:
        checks = _checks_needing(key)
        advice = ("skip the checks that need it: skip_checks: [%s]" % ", ".join(checks) if checks
                  else "a RoleBinding to the view ClusterRole in the namespace is enough")
        return ("forbidden (403): cannot %s %s %s at %s (%s); grant %s on it, or %s"
                % (verb, resource, where, host, _server_message(exc), verb, advice))
    if status is not None:
        return "the API at %s answered %s to %s %s %s: %s" % (host, status, verb, resource, where, _server_message(exc))
    return "cannot reach the Kubernetes API at %s: %s" % (host, short_reason(exc))


def describe_client_error(exc, host):
    """One line for a failure while building the client (kubeconfig, TLS, reachability)."""
    if type(exc).__name__ in ("CoreException", "ConfigException") or isinstance(exc, (IOError, OSError)) and _status(exc) is None \
            and "Errno" not in str(exc) and "Max retries" not in str(exc):
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return ("cannot load the Kubernetes client configuration: %s; set kubeconfig/context, host/api_key "
                "or the K8S_AUTH_* environment variables" % first)
    return describe_error(exc, host, "connect to", path="the API")


def gather(transport, namespace, control_plane_namespaces, keys):
    """Read everything in one pass. Returns the ``raw`` dict the core normalizes.

    Raises GatherError with one line for 401/403, other API errors and
    connection failures; a kind the API does not serve (or answers 404 for)
    is recorded as not installed.
    """
    host = transport.host
    try:
        discovery = parse_discovery(transport.get("/apis", accept=AGGREGATED_DISCOVERY_ACCEPT))
    except Exception as exc:  # any failure of the first request: bad host, TLS, auth
        raise GatherError(describe_error(exc, host, "get", path="/apis (discovery)"))

    namespace_object = None
    try:
        namespace_object = transport.get("/api/v1/namespaces/%s" % namespace)
    except Exception as exc:  # the namespace object is optional: only its UID range is used
        status = _status(exc)
        if status == 404:
            namespace_object = False
        elif status not in (403,):
            raise GatherError(describe_error(exc, host, "get", path="namespace %s" % namespace))

    lists = {}
    for request in plan_requests(discovery, namespace, control_plane_namespaces, keys):
        slot = lists.setdefault(request["key"], {"served": request["served"], "api_version": request["api_version"]})
        if not request["served"]:
            continue
        try:
            doc = transport.get(request["path"], request["query"], request["accept"])
        except Exception as exc:  # mapped to one line below
            if _status(exc) == 404:
                # Unserved after all (a CRD removed since discovery): not installed.
                slot["served"] = False
                slot.pop("items", None)
                continue
            raise GatherError(describe_error(exc, host, "list", request["key"], request["namespace"]))
        items = doc.get("items") if isinstance(doc, dict) else None
        slot.setdefault("items", []).extend(items if isinstance(items, list) else [])
    return {
        "namespace": namespace,
        "namespace_object": namespace_object,
        "discovery": discovery,
        "lists": lists,
    }
