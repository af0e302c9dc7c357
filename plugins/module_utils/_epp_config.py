# This file is for internal use by the llmd.stack collection only.
# It may change or disappear in any release without notice.
"""Pure parsing of the EPP (endpoint picker) scheduling configuration.

The EPP reads an ``EndpointPickerConfig`` document: a list of ``plugins``
(``type``, optional ``name`` and ``parameters``) and ``schedulingProfiles``
that reference those plugins by name with an optional ``weight`` (default 1).
Nothing here does I/O or imports a YAML library: callers pass the loader
(for example ``yaml.safe_load``) so the core stays dependency free.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import shlex

CONFIG_KIND = "EndpointPickerConfig"
DEFAULT_WEIGHT = 1

# Profile handlers that split a request into a prefill and a decode pass.
PD_PROFILE_HANDLERS = ("pd-profile-handler", "disagg-profile-handler")

# Suffix of a plugin type -> the role it plays in a scheduling cycle.
_CATEGORY_SUFFIXES = (
    ("-profile-handler", "profile-handler"),
    ("-scorer", "scorer"),
    ("-picker", "picker"),
    ("-filter", "filter"),
    ("-decider", "decider"),
    ("-handler", "handler"),
)


def plugin_category(plugin_type):
    """Return scorer/picker/filter/profile-handler/decider/handler/other."""
    if not isinstance(plugin_type, str):
        return "other"
    for suffix, category in _CATEGORY_SUFFIXES:
        if plugin_type.endswith(suffix):
            return category
    return "other"


def _number(value):
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return None
        return int(number) if number.is_integer() else number
    return None


def _empty_summary():
    return {
        "valid": False,
        "api_version": None,
        "kind": None,
        "plugins": [],
        "profiles": [],
        "feature_gates": [],
        "pd": False,
        "errors": [],
    }


def summarize_epp_config(doc):
    """Normalize a loaded EndpointPickerConfig mapping.

    Returns ``plugins`` ({name, type, category, parameters}), ``profiles``
    ({name, plugins: [{ref, type, category, weight}]}), ``feature_gates``,
    ``pd`` (a prefill/decode profile handler is configured) and ``errors``
    (dangling references, missing types...). Never raises.
    """
    summary = _empty_summary()
    if not isinstance(doc, dict):
        summary["errors"].append("the scheduling config is not a mapping")
        return summary
    summary["api_version"] = doc.get("apiVersion") if isinstance(doc.get("apiVersion"), str) else None
    summary["kind"] = doc.get("kind") if isinstance(doc.get("kind"), str) else None
    if summary["kind"] not in (None, CONFIG_KIND):
        summary["errors"].append("kind is %s, expected %s" % (summary["kind"], CONFIG_KIND))

    by_name = {}
    raw_plugins = doc.get("plugins")
    if raw_plugins is not None and not isinstance(raw_plugins, list):
        summary["errors"].append("plugins is not a list")
        raw_plugins = []
    for index, raw in enumerate(raw_plugins or []):
        if not isinstance(raw, dict) or not isinstance(raw.get("type"), str) or not raw.get("type"):
            summary["errors"].append("plugins[%d] has no type" % index)
            continue
        name = raw.get("name") if isinstance(raw.get("name"), str) and raw.get("name") else raw["type"]
        if name in by_name:
            summary["errors"].append("plugin name %s is defined twice" % name)
        parameters = raw.get("parameters") if isinstance(raw.get("parameters"), dict) else {}
        plugin = {
            "name": name,
            "type": raw["type"],
            "category": plugin_category(raw["type"]),
            "parameters": parameters,
        }
        by_name[name] = plugin
        summary["plugins"].append(plugin)

    raw_profiles = doc.get("schedulingProfiles")
    if raw_profiles is not None and not isinstance(raw_profiles, list):
        summary["errors"].append("schedulingProfiles is not a list")
        raw_profiles = []
    for index, raw in enumerate(raw_profiles or []):
        if not isinstance(raw, dict):
            summary["errors"].append("schedulingProfiles[%d] is not a mapping" % index)
            continue
        profile_name = raw.get("name") if isinstance(raw.get("name"), str) and raw.get("name") else "profile-%d" % index
        refs = []
        raw_refs = raw.get("plugins") if isinstance(raw.get("plugins"), list) else []
        for ref_index, raw_ref in enumerate(raw_refs):
            ref = raw_ref.get("pluginRef") if isinstance(raw_ref, dict) else None
            if not isinstance(ref, str) or not ref:
                summary["errors"].append("profile %s plugins[%d] has no pluginRef" % (profile_name, ref_index))
                continue
            weight = _number(raw_ref.get("weight"))
            plugin = by_name.get(ref)
            if plugin is None:
                summary["errors"].append("profile %s references undefined plugin %s" % (profile_name, ref))
            refs.append({
                "ref": ref,
                "type": plugin["type"] if plugin else None,
                "category": plugin["category"] if plugin else "unknown",
                "weight": DEFAULT_WEIGHT if weight is None else weight,
            })
        summary["profiles"].append({"name": profile_name, "plugins": refs})
    if raw_profiles is None or not summary["profiles"]:
        summary["errors"].append("no schedulingProfiles defined")

    gates = doc.get("featureGates")
    if isinstance(gates, list):
        summary["feature_gates"] = [gate for gate in gates if isinstance(gate, str)]

    profile_names = set(profile["name"] for profile in summary["profiles"])
    summary["pd"] = (
        any(plugin["type"] in PD_PROFILE_HANDLERS for plugin in summary["plugins"])
        or set(("prefill", "decode")) <= profile_names
    )
    summary["valid"] = not summary["errors"]
    return summary


def parse_epp_config(text, load_yaml):
    """Load ``text`` with ``load_yaml`` and summarize it; never raises."""
    if not isinstance(text, str) or not text.strip():
        summary = _empty_summary()
        summary["errors"].append("the scheduling config is empty")
        return summary
    if load_yaml is None:
        summary = _empty_summary()
        summary["errors"].append("no YAML loader available to read the scheduling config")
        return summary
    try:
        doc = load_yaml(text)
    except Exception as exc:  # any loader error is reported, never raised
        summary = _empty_summary()
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        summary["errors"].append("invalid YAML: %s" % first_line)
        return summary
    return summarize_epp_config(doc)


def _split_args(args):
    """Flatten container args: a single shell-like string is split too."""
    flat = []
    for arg in args if isinstance(args, list) else []:
        if not isinstance(arg, str):
            continue
        flat.append(arg)
    if len(flat) == 1 and " " in flat[0]:
        try:
            return shlex.split(flat[0])
        except ValueError:
            return flat
    return flat


def flag_value(args, flag):
    """Value of ``--flag value`` or ``--flag=value`` in an argument list, else None."""
    flat = _split_args(args)
    for index, arg in enumerate(flat):
        if arg == flag and index + 1 < len(flat):
            return flat[index + 1]
        if arg.startswith(flag + "="):
            return arg[len(flag) + 1:]
    return None


def config_source(args):
    """Where an EPP container reads its scheduling config from.

    Returns ``{"file": basename}`` for ``--config-file``, ``{"text": str}`` for
    ``--config-text``, or ``{}`` when the EPP runs its built-in default.
    """
    text = flag_value(args, "--config-text")
    if text:
        return {"text": text}
    path = flag_value(args, "--config-file")
    if path:
        return {"file": path.rstrip("/").split("/")[-1], "path": path}
    return {}


def select_epp_config(args, configmaps, load_yaml):
    """Find and summarize the config an EPP with ``args`` uses.

    ``configmaps`` is a list of ``{"name", "data"}`` mounted into the EPP pod.
    The result adds ``source`` (``configmap <name>/<key>``, ``args`` or
    ``built-in default``) and ``available_files`` to the summary.
    """
    source = config_source(args)
    available = []
    for configmap in configmaps if isinstance(configmaps, list) else []:
        data = configmap.get("data") if isinstance(configmap, dict) else None
        if isinstance(data, dict):
            available.extend("%s/%s" % (configmap.get("name"), key) for key in sorted(data) if isinstance(key, str))
    if "text" in source:
        summary = parse_epp_config(source["text"], load_yaml)
        summary["source"] = "args (--config-text)"
    elif "file" in source:
        summary = None
        for configmap in configmaps if isinstance(configmaps, list) else []:
            data = configmap.get("data") if isinstance(configmap, dict) else None
            if isinstance(data, dict) and source["file"] in data:
                summary = parse_epp_config(data[source["file"]], load_yaml)
                summary["source"] = "configmap %s/%s" % (configmap.get("name"), source["file"])
                break
        if summary is None:
            summary = _empty_summary()
            summary["errors"].append("--config-file %s is in no mounted ConfigMap" % source["path"])
            summary["source"] = "file %s (not found)" % source["path"]
    else:
        summary = _empty_summary()
        summary["valid"] = True
        summary["source"] = "built-in default"
    summary["available_files"] = available
    return summary
