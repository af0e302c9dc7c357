#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright: llmd.stack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: llmd_stack_facts
short_description: Read an llm-d stack in one pass and check its success criteria
version_added: 0.1.0
author:
  - llmd.stack maintainers (@llmd-stack)
description:
  - Reads everything an llm-d inference stack is made of in one pass (one API discovery, then one LIST per kind,
    whatever the number of objects) and returns a normalized, linked model of it as C(ansible_facts.llmd_stack)
    (the Gateway, the HTTPRoute, the InferencePool, the endpoint picker (EPP) with its scheduling config, the
    model servers by role, the Helm releases, the CRD versions and the ways to reach the gateway).
  - Evaluates the documented success criteria on that model and returns them as O(checks) entries
    C({id, status, resource, detail, fix}). One root cause fails one check; checks that depend on a failed one
    report C(skip) and name it.
  - InferencePool C(inference.networking.x-k8s.io/v1alpha2) and C(inference.networking.k8s.io/v1), and both
    generations of the model-server label (C(llm-d.ai/inferenceServing), C(llm-d.ai/inference-serving)) are understood.
  - Names not given are discovered from the llm-d conventions (C(infra-<rn>-inference-gateway), C(gaie-<rn>),
    C(gaie-<rn>-epp), C(ms-<rn>-llm-d-modelservice-decode)) and from the links between the objects.
  - Read-only; never changes the cluster.
options:
  namespace:
    description:
      - Namespace of the llm-d stack (its Gateway, HTTPRoute, InferencePool, EPP and model servers).
    type: str
    required: true
  gateway_name:
    description:
      - Name of the Gateway. Discovered when omitted.
    type: str
  httproute_name:
    description:
      - Name of the HTTPRoute. Discovered when omitted (the route that targets the Gateway and the pool).
    type: str
  inferencepool_name:
    description:
      - Name of the InferencePool (either API version). Discovered when omitted.
    type: str
  release_postfix:
    description:
      - The helmfile release postfix C(<rn>) (releases C(infra-<rn>), C(gaie-<rn>), C(ms-<rn>)).
      - When set, the three releases are expected by the C(helm.releases) check. When omitted it is derived from
        the Gateway or InferencePool name where possible.
    type: str
  control_plane_namespaces:
    description:
      - Namespaces where the gateway control plane (istiod, kgateway, agentgateway) may run.
    type: list
    elements: str
    default: [istio-system, kgateway-system, agentgateway-system]
  checks:
    description:
      - Check ids or id prefixes to run, for example V(gateway) or V(httproute.backend_port). All checks when omitted.
      - Kinds that only unselected checks need (CRDs, control-plane namespaces, Helm Secrets, PVCs) are not read.
    type: list
    elements: str
  skip_checks:
    description:
      - Check ids or id prefixes not to run. Applied after O(checks).
    type: list
    elements: str
    default: []
  fail_on:
    description:
      - V(never) always returns the checks. V(fail) fails the task when a check fails, V(warn) also when one warns.
      - The failure message lists each failing check with its fix.
    type: str
    choices: [never, fail, warn]
    default: never
  expected:
    description:
      - What the stack should look like. Each key sharpens the checks that use it; unset keys are not checked.
    type: dict
    default: {}
    suboptions:
      decode_replicas:
        description: Replicas of each decode Deployment.
        type: int
      prefill_replicas:
        description: Replicas of each prefill Deployment.
        type: int
      pd_enabled:
        description:
          - Whether prefill/decode disaggregation is on. V(true) requires a prefill Deployment and the
            C(routing-proxy) sidecar in decode pods.
        type: bool
      chart_versions:
        description:
          - "Chart version per release name or chart name, for example C({ms-sim: v0.4.9, inferencepool: v1.4.0})."
        type: dict
      crd_versions:
        description: Expected CRD bundle versions.
        type: dict
        suboptions:
          gateway_api:
            description: Gateway API bundle version, for example V(v1.5.1).
            type: str
          gaie:
            description: Gateway API Inference Extension bundle version, for example V(v1.4.0).
            type: str
      model:
        description: The model name the vllm containers serve (C(--served-model-name)).
        type: str
      provider:
        description: The gateway provider.
        type: str
        choices: [istio, kgateway, agentgateway]
      pool_api_version:
        description: The InferencePool API version the stack uses.
        type: str
        choices: [v1, v1alpha2, inference.networking.k8s.io/v1, inference.networking.x-k8s.io/v1alpha2]
extends_documentation_fragment:
  - kubernetes.core.k8s_auth_options
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.facts
  - ansible.builtin.action_common_attributes.actiongroups
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  facts:
    support: full
  platform:
    platforms: posix
  action_group:
    support: full
    membership:
      - llmd.stack.llmd
requirements:
  - python >= 3.9
  - kubernetes >= 24.2.0
  - PyYAML >= 3.11
notes:
  - Needs C(get)/C(list) on the namespace's objects; cluster-scoped reads (CRDs, GatewayClasses, ClusterVersion)
    and the control-plane namespaces can be avoided with O(skip_checks). A denied read fails with one line that names
    the verb, resource and namespace.
  - A kind the cluster does not serve (for example no GAIE CRDs) fails or skips the checks that need it; it is
    never an error of the module.
seealso:
  - name: llm-d
    description: The llm-d project and its well-lit paths.
    link: https://llm-d.ai/
"""

EXAMPLES = r"""
- name: Read the lab stack and fail on any failed check
  llmd.stack.llmd_stack_facts:
    namespace: llm-d-sim
    release_postfix: sim
    fail_on: fail
    expected:
      decode_replicas: 3
      pd_enabled: true
      provider: istio
      pool_api_version: v1
      crd_versions:
        gateway_api: v1.5.1
        gaie: v1.4.0

- name: Only the routing chain, with a kubeconfig and context
  llmd.stack.llmd_stack_facts:
    kubeconfig: ~/.kube/config
    context: gpu-cluster
    namespace: llm-d-inference-scheduling
    checks: [gateway, httproute, inferencepool]
  register: stack

- name: Show the failing checks with their fixes
  ansible.builtin.debug:
    msg: "{{ stack.checks | selectattr('status', 'equalto', 'fail') | list }}"

- name: Pick the first endpoint reachable from outside the cluster
  ansible.builtin.set_fact:
    gateway_url: "{{ (ansible_facts.llmd_stack.endpoints | selectattr('external') | first).url }}"
  when: ansible_facts.llmd_stack.endpoints | selectattr('external') | length > 0

- name: A namespace-scoped user skips the cluster-scoped reads
  llmd.stack.llmd_stack_facts:
    namespace: team-a
    skip_checks: [crds.installed, control_plane.ready, openshift.service_mesh]
"""

RETURN = r"""
checks:
  description: The success criteria, in catalogue order; one entry per object when several are checked.
  returned: always
  type: list
  elements: dict
  sample:
    - id: httproute.backend_port
      status: fail
      resource: HTTPRoute llm-d-sim/llm-d-sim
      detail: backendRef gaie-sim port 8001, but the pool targets [8000]
      fix: set the HTTPRoute backendRefs[].port to 8000
  contains:
    id:
      description: Check id from the catalogue in docs/development.md.
      type: str
      returned: always
      sample: gateway.programmed
    status:
      description: Outcome.
      type: str
      returned: always
      sample: pass
    resource:
      description: The object checked, as C(Kind namespace/name).
      type: str
      returned: always
      sample: Gateway llm-d-sim/infra-sim-inference-gateway
    detail:
      description: What was expected and what was found; for C(skip), which check blocked it.
      type: str
      returned: always
      sample: Programmed=True (Programmed)
    fix:
      description: What to do about a failure or warning; empty otherwise.
      type: str
      returned: always
      sample: ""
summary:
  description: Number of checks per status.
  returned: always
  type: dict
  sample: {pass: 25, fail: 0, warn: 0, skip: 3}
  contains:
    pass:
      description: Checks that passed.
      type: int
      returned: always
      sample: 25
    fail:
      description: Checks that failed.
      type: int
      returned: always
      sample: 0
    warn:
      description: Checks that warned.
      type: int
      returned: always
      sample: 0
    skip:
      description: Checks skipped (not applicable, or blocked by a failed check).
      type: int
      returned: always
      sample: 3
api_requests:
  description: Number of API requests the module sent (discovery, the namespace, one LIST per kind and namespace).
  returned: always
  type: int
  sample: 24
ansible_facts:
  description: Facts set for the host.
  returned: always
  type: dict
  sample: {}
  contains:
    llmd_stack:
      description: The normalized and linked stack model.
      returned: always
      type: dict
      sample:
        namespace: llm-d-sim
        release_postfix: sim
        provider: istio
        selected:
          gateway: infra-sim-inference-gateway
          httproute: llm-d-sim
          inferencepool: gaie-sim
          inferencepool_api_version: inference.networking.k8s.io/v1
          epp_service: gaie-sim-epp
          epp_deployment: gaie-sim-epp
          gateway_service: infra-sim-inference-gateway-istio
        endpoints:
          - type: service
            url: http://infra-sim-inference-gateway-istio.llm-d-sim.svc.cluster.local:80
            external: false
            namespace: llm-d-sim
            service: infra-sim-inference-gateway-istio
            port: 80
      contains:
        namespace:
          description: The namespace read.
          type: str
          returned: always
          sample: llm-d-sim
        release_postfix:
          description: The release postfix given or derived, or null.
          type: str
          returned: always
          sample: sim
        provider:
          description: Gateway provider (istio, kgateway, agentgateway, gke, unknown) or null.
          type: str
          returned: always
          sample: istio
        selected:
          description: Names of the objects that make up the stack (null when not found).
          type: dict
          returned: always
          sample: {gateway: infra-sim-inference-gateway, httproute: llm-d-sim, inferencepool: gaie-sim}
        platform:
          description: OpenShift detection, version, namespace UID range and ServiceMeshControlPlanes.
          type: dict
          returned: always
          sample: {openshift: false, openshift_version: null, namespace_uid_range: null, service_mesh_control_planes: []}
        crds:
          description: Gateway API and GAIE CRD bundles with their versions, channel and managers.
          type: dict
          returned: always
          sample: {gateway_api: {version: v1.5.1, channel: standard}, gaie: {version: v1.4.0, pool_api_versions: [inference.networking.k8s.io/v1]}}
        control_plane:
          description: istiod / kgateway / agentgateway Deployments found.
          type: list
          returned: always
          sample: [{name: istiod, namespace: istio-system, provider: istio, available: true, replicas: 1, ready_replicas: 1}]
        gateway_classes:
          description: GatewayClasses with their controller and provider.
          type: list
          returned: always
          sample: [{name: istio, controller: istio.io/gateway-controller, provider: istio}]
        gateways:
          description: Gateways in the namespace (listeners with attachedRoutes, addresses, conditions, parametersRef).
          type: list
          returned: always
          sample: [{name: infra-sim-inference-gateway, class_name: istio, addresses: [{type: IPAddress, value: 10.96.0.20}]}]
        httproutes:
          description: HTTPRoutes (parentRefs, backendRefs, timeouts, parent status).
          type: list
          returned: always
          sample: [{name: llm-d-sim, parent_refs: [{name: infra-sim-inference-gateway}]}]
        inferencepools:
          description: InferencePools of both API versions in one shape (selector, target_ports, epp, parents).
          type: list
          returned: always
          sample: [{name: gaie-sim, api_version: inference.networking.k8s.io/v1, target_ports: [8000]}]
        objectives:
          description: InferenceObjectives and InferenceModels.
          type: list
          returned: always
          sample: []
        epp:
          description: The EPP Service, Deployment (with pods) and parsed scheduling config (plugins, profiles, weights).
          type: dict
          returned: always
          sample: {config: {source: configmap gaie-sim-epp/default-plugins.yaml, profiles: [{name: default}]}}
        model_servers:
          description: Model-server Deployments by role (decode, prefill) with their pods.
          type: dict
          returned: always
          sample: {decode: [{name: ms-sim-llm-d-modelservice-decode, replicas: 3, ready_replicas: 3}], prefill: []}
        pool_pods:
          description: Pods the InferencePool selector matches.
          type: list
          returned: always
          sample: [{name: ms-sim-llm-d-modelservice-decode-6c9f-x2k4p, ready: true, role: decode}]
        services:
          description: Services in the namespace with their type and ports.
          type: list
          returned: always
          sample: [{name: gaie-sim-epp, type: ClusterIP, ports: [{name: grpc-ext-proc, port: 9002}]}]
        helm_releases:
          description: Latest revision of each Helm release (namespace and control-plane namespaces).
          type: list
          returned: always
          sample: [{name: ms-sim, chart: llm-d-modelservice, chart_version: v0.4.9, status: deployed, revision: 1}]
        pvcs:
          description: PersistentVolumeClaims in the namespace (when storage.model_pvc runs).
          type: list
          returned: always
          sample: []
        endpoints:
          description:
            - Ways to reach the gateway, best first (external before in-cluster).
            - Each is C({type, url, external, namespace, service, port}); type is C(gateway-address), C(ingress),
              C(openshift-route) or C(service).
          type: list
          returned: always
          sample: [{type: service, url: "http://infra-sim-inference-gateway-istio.llm-d-sim.svc.cluster.local:80", external: false}]
        api:
          description: Served API groups, whether aggregated discovery was used, and how each kind was read.
          type: dict
          returned: always
          sample: {aggregated_discovery: true, groups: [apps, gateway.networking.k8s.io]}
        notes:
          description: How ambiguous choices were made (for example several Gateways in the namespace).
          type: list
          returned: always
          sample: []
"""

import copy

from ansible_collections.kubernetes.core.plugins.module_utils.args_common import AUTH_ARG_SPEC
from ansible_collections.kubernetes.core.plugins.module_utils.k8s.core import AnsibleK8SModule
from ansible_collections.llmd.stack.plugins.module_utils._stack_checks import (
    failing,
    failure_message,
    run_checks,
    select_checks,
    summarize,
)
from ansible_collections.llmd.stack.plugins.module_utils._stack_model import (
    facts,
    kinds_for_checks,
    link,
    normalize,
)
from ansible_collections.llmd.stack.plugins.module_utils._stack_gather import (
    GatherError,
    Transport,
    describe_client_error,
    gather,
)

try:
    from ansible_collections.kubernetes.core.plugins.module_utils.k8s.client import get_api_client
except ImportError:
    get_api_client = None  # kubernetes missing: AnsibleK8SModule reports it with missing_required_lib

try:
    import yaml
except ImportError:
    yaml = None  # AnsibleK8SModule reports it with missing_required_lib

DEFAULT_CONTROL_PLANE_NAMESPACES = ["istio-system", "kgateway-system", "agentgateway-system"]


def argument_spec():
    spec = copy.deepcopy(AUTH_ARG_SPEC)
    spec.update(
        namespace=dict(type="str", required=True),
        gateway_name=dict(type="str"),
        httproute_name=dict(type="str"),
        inferencepool_name=dict(type="str"),
        release_postfix=dict(type="str"),
        control_plane_namespaces=dict(type="list", elements="str", default=list(DEFAULT_CONTROL_PLANE_NAMESPACES)),
        checks=dict(type="list", elements="str"),
        skip_checks=dict(type="list", elements="str", default=[]),
        fail_on=dict(type="str", choices=["never", "fail", "warn"], default="never"),
        expected=dict(
            type="dict",
            default={},
            options=dict(
                decode_replicas=dict(type="int"),
                prefill_replicas=dict(type="int"),
                pd_enabled=dict(type="bool"),
                chart_versions=dict(type="dict"),
                crd_versions=dict(type="dict", options=dict(gateway_api=dict(type="str"), gaie=dict(type="str"))),
                model=dict(type="str"),
                provider=dict(type="str", choices=["istio", "kgateway", "agentgateway"]),
                pool_api_version=dict(
                    type="str",
                    choices=["v1", "v1alpha2", "inference.networking.k8s.io/v1", "inference.networking.x-k8s.io/v1alpha2"],
                ),
            ),
        ),
    )
    return spec


def _configured_host():
    """The API host the loaded kubeconfig points at, for error messages."""
    try:
        from kubernetes.client import Configuration
        return Configuration.get_default_copy().host
    except Exception:  # only used to word an error; never fatal itself
        return "the configured cluster"


def _validate(module):
    """Early, one-line errors for input the argument spec cannot express."""
    params = module.params
    if not params["namespace"].strip():
        module.fail_json(msg="namespace: must not be empty; set it to the namespace of the llm-d stack")
    expected = params["expected"] or {}
    for key in ("decode_replicas", "prefill_replicas"):
        if expected.get(key) is not None and expected[key] < 0:
            module.fail_json(msg="expected.%s: must be >= 0, got %d" % (key, expected[key]))
    for release, version in (expected.get("chart_versions") or {}).items():
        if not isinstance(version, str) or not version.strip():
            module.fail_json(msg="expected.chart_versions.%s: must be a version string such as v0.4.9" % release)
    selected, error = select_checks(params["checks"], params["skip_checks"])
    if error:
        module.fail_json(msg=error)
    return selected


def main():
    module = AnsibleK8SModule(argument_spec=argument_spec(), supports_check_mode=True)
    selected = _validate(module)
    params = module.params
    control_plane_namespaces = [ns for ns in params["control_plane_namespaces"] if ns]

    try:
        client = get_api_client(module)
    except Exception as exc:  # bad kubeconfig/context, unreachable host on a cold discovery cache
        module.fail_json(msg=describe_client_error(exc, params.get("host") or _configured_host()))

    transport = Transport(client)
    try:
        raw = gather(transport, params["namespace"], control_plane_namespaces, kinds_for_checks(selected))
    except GatherError as exc:
        module.fail_json(msg=str(exc), api_requests=transport.count)

    check_params = dict(
        namespace=params["namespace"],
        gateway_name=params["gateway_name"],
        httproute_name=params["httproute_name"],
        inferencepool_name=params["inferencepool_name"],
        release_postfix=params["release_postfix"],
        control_plane_namespaces=control_plane_namespaces,
        expected=dict((k, v) for k, v in (params["expected"] or {}).items() if v is not None),
    )
    model = link(normalize(raw), check_params, yaml.safe_load if yaml else None)
    checks = run_checks(model, check_params, selected)
    result = dict(
        changed=False,
        ansible_facts=dict(llmd_stack=facts(model)),
        checks=checks,
        summary=summarize(checks),
        api_requests=transport.count,
    )
    bad = failing(checks, params["fail_on"])
    if bad:
        module.fail_json(msg=failure_message(bad), **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
