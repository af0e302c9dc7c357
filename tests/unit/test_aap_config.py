"""extensions/aap: AAP config-as-code (infra.aap_configuration data format).

No AAP controller runs here, so the data is checked against what it must agree
with: every survey variable is an argument-spec option of a role the template's
playbook runs, with a compatible type, choices and default; every object
referenced by name is defined (or built into AAP); every key is an option of
the awx.awx module infra.aap_configuration passes it to; Jinja meant for job
run time is marked !unsafe and Jinja meant for configuration time is defined.
"""
import ast
import glob
import importlib.util
import os
import re

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIGS = os.path.join(ROOT, "extensions", "aap", "configs")
BUILT_IN_CREDENTIAL_TYPES = {"OpenShift or Kubernetes API Bearer Token"}
BOOLEAN_ANSWERS = {"true", "false"}
JINJA_NAME = re.compile(r"{{\s*([A-Za-z_][A-Za-z0-9_]*)")


class Unsafe(str):
    """A value tagged !unsafe: Ansible does not template it when applying the config."""


class ConfigLoader(yaml.SafeLoader):
    pass


ConfigLoader.add_constructor("!unsafe", lambda loader, node: Unsafe(loader.construct_scalar(node)))


def load_configs():
    data = {}
    for path in sorted(glob.glob(os.path.join(CONFIGS, "*.yml"))):
        with open(path, encoding="utf-8") as handle:
            content = yaml.load(handle, Loader=ConfigLoader)  # noqa: S506 (SafeLoader subclass)
        overlap = set(data) & set(content)
        assert not overlap, "%s redefines %s" % (os.path.basename(path), overlap)
        data.update(content)
    return data


CONFIG = load_configs()
TEMPLATES = {template["name"]: template for template in CONFIG["controller_templates"]}
WORKFLOWS = {workflow["name"]: workflow for workflow in CONFIG["controller_workflows"]}


def load_yaml(path):
    with open(path, encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def role_specs():
    """role -> {option name: spec} over all entry points."""
    specs = {}
    for path in glob.glob(os.path.join(ROOT, "roles", "*", "meta", "argument_specs.yml")):
        role = path.split(os.sep)[-3]
        options = {}
        for entry_point in (load_yaml(path) or {}).get("argument_specs", {}).values():
            options.update((entry_point or {}).get("options") or {})
        specs[role] = options
    return specs


SPECS = role_specs()
ROLE_REFERENCE = re.compile(r"llmd\.stack\.([a-z_]+)")


def roles_run_by(playbook):
    """Roles a playbook runs: the ones it names, their meta dependencies and the roles their tasks include."""
    with open(os.path.join(ROOT, playbook), encoding="utf-8") as handle:
        pending = set(ROLE_REFERENCE.findall(handle.read()))
    found = set()
    while pending:
        role = pending.pop()
        if role in found or role not in SPECS:
            continue
        found.add(role)
        role_dir = os.path.join(ROOT, "roles", role)
        for path in glob.glob(os.path.join(role_dir, "tasks", "*.yml")) + [os.path.join(role_dir, "meta", "main.yml")]:
            with open(path, encoding="utf-8") as handle:
                pending.update(ROLE_REFERENCE.findall(handle.read()))
    return found


def options_of(roles):
    options = {}
    for role in sorted(roles):
        options.update(SPECS[role])
    return options


def playbooks_of(unified_job_template):
    if unified_job_template in TEMPLATES:
        return [TEMPLATES[unified_job_template]["playbook"]]
    return [TEMPLATES[node["unified_job_template"]]["playbook"]
            for node in WORKFLOWS[unified_job_template]["simplified_workflow_nodes"]]


def surveys():
    for kind, objects in (("template", TEMPLATES), ("workflow", WORKFLOWS)):
        for name, item in objects.items():
            if item.get("survey_enabled"):
                for question in item["survey_spec"]["spec"]:
                    yield pytest.param(name, question, id="%s:%s" % (name, question["variable"]))


def literal_default(option):
    """The spec default when it is a plain value (not a Jinja expression), else None."""
    default = option.get("default")
    if isinstance(default, str) and "{{" in default:
        return None
    return default


@pytest.mark.parametrize("owner, question", list(surveys()))
def test_survey_question_matches_the_argument_spec(owner, question):
    variable = question["variable"]
    roles = set().union(*(roles_run_by(playbook) for playbook in playbooks_of(owner)))
    options = options_of(roles)
    assert variable in options, "%s: survey variable %s is no option of the roles its playbooks run (%s)" % (
        owner, variable, ", ".join(sorted(roles)))
    option = options[variable]
    spec_type, survey_type = option.get("type", "str"), question["type"]
    default = question.get("default")
    choices = [str(choice) for choice in question.get("choices", [])]
    if option.get("no_log"):
        assert survey_type == "password", "%s: %s is no_log in the spec, so the survey type must be password" % (
            owner, variable)
    elif spec_type in ("str", "path"):
        assert survey_type in ("text", "textarea", "multiplechoice"), "%s: %s is %s, survey type %s" % (
            owner, variable, spec_type, survey_type)
    elif spec_type == "int":
        assert survey_type == "integer"
    elif spec_type == "float":
        assert survey_type == "float"
    elif spec_type == "bool":
        assert survey_type == "multiplechoice" and set(choices) <= BOOLEAN_ANSWERS and len(choices) == 2, (
            "%s: %s is a bool: ask it as multiplechoice true/false" % (owner, variable))
    elif spec_type == "list":
        assert survey_type == "multiselect" and option.get("choices"), (
            "%s: %s is a list; only lists with choices can be surveyed (multiselect)" % (owner, variable))
    else:
        pytest.fail("%s: %s is a %s; pass it as extra vars, not as a survey question" % (owner, variable, spec_type))

    if option.get("choices"):
        assert survey_type in ("multiplechoice", "multiselect"), "%s: %s has choices in the spec" % (owner, variable)
        assert set(choices) <= {str(choice) for choice in option["choices"]}, (
            "%s: %s survey choices %s are not all in the spec's %s" % (owner, variable, choices, option["choices"]))
    if survey_type == "multiplechoice":
        assert default in choices
    if survey_type == "multiselect":
        assert set(default.split("\n")) <= set(choices)
    if survey_type in ("integer", "float"):
        assert question["min"] <= default <= question["max"]

    spec_default = literal_default(option)
    if "default" in option and spec_default is not None and not option.get("no_log"):
        if spec_type == "bool":
            assert default == str(spec_default).lower()
        elif spec_type == "list":
            assert default.split("\n") == [str(item) for item in spec_default]
        else:
            assert default == spec_default, "%s: survey default %r of %s differs from the spec default %r" % (
                owner, default, variable, spec_default)
    if option.get("required"):
        assert question["required"], "%s: %s is required by the spec" % (owner, variable)


def test_every_template_runs_an_existing_playbook_from_the_project():
    projects = {project["name"] for project in CONFIG["controller_projects"]}
    for name, template in TEMPLATES.items():
        assert os.path.isfile(os.path.join(ROOT, template["playbook"])), "%s: no %s" % (name, template["playbook"])
        assert template["project"] in projects
    assert {template["playbook"] for template in TEMPLATES.values()} >= {
        "playbooks/deploy.yml", "playbooks/verify.yml", "playbooks/cleanup.yml", "playbooks/diagnose.yml"}


def test_references_between_objects_resolve():
    environments = {ee["name"] for ee in CONFIG["controller_execution_environments"]}
    inventories = {inventory["name"] for inventory in CONFIG["controller_inventories"]}
    credentials = {credential["name"]: credential for credential in CONFIG["controller_credentials"]}
    types = {kind["name"] for kind in CONFIG["controller_credential_types"]} | BUILT_IN_CREDENTIAL_TYPES
    for credential in credentials.values():
        assert credential["credential_type"] in types
    for project in CONFIG["controller_projects"]:
        assert project["default_environment"] in environments
    for host in CONFIG["controller_hosts"]:
        assert host["inventory"] in inventories
    for name, template in TEMPLATES.items():
        assert template["execution_environment"] in environments, name
        assert template["inventory"] in inventories, name
        assert set(template.get("credentials", [])) <= set(credentials), name
    for workflow in WORKFLOWS.values():
        nodes = {node["identifier"]: node for node in workflow["simplified_workflow_nodes"]}
        for node in nodes.values():
            assert node["unified_job_template"] in TEMPLATES
            for link in ("success_nodes", "failure_nodes", "always_nodes"):
                assert set(node.get(link, [])) <= set(nodes)


def test_deploy_then_verify_workflow():
    [workflow] = [workflow for workflow in WORKFLOWS.values() if workflow["name"] == "llm-d | deploy and verify"]
    nodes = {node["identifier"]: node for node in workflow["simplified_workflow_nodes"]}
    deploy = [node for node in nodes.values() if TEMPLATES[node["unified_job_template"]]["playbook"] == "playbooks/deploy.yml"]
    assert len(deploy) == 1
    [verify] = [nodes[name] for name in deploy[0]["success_nodes"]]
    assert TEMPLATES[verify["unified_job_template"]]["playbook"] == "playbooks/verify.yml"
    [diagnose] = [nodes[name] for name in verify["failure_nodes"]]
    assert TEMPLATES[diagnose["unified_job_template"]]["playbook"] == "playbooks/diagnose.yml"


def test_workflow_steps_get_every_variable_they_template_and_every_required_answer():
    for workflow in WORKFLOWS.values():
        workflow_vars = {question["variable"] for question in workflow["survey_spec"]["spec"]}
        for node in workflow["simplified_workflow_nodes"]:
            template = TEMPLATES[node["unified_job_template"]]
            provided = workflow_vars | {question["variable"] for question in
                                        (template.get("survey_spec") or {}).get("spec", [])}
            for key, value in (template.get("extra_vars") or {}).items():
                assert set(JINJA_NAME.findall(str(value))) <= provided, (
                    "%s: %s uses variables the workflow %s does not ask for" % (template["name"], key, workflow["name"]))
            for question in (template.get("survey_spec") or {}).get("spec", []):
                assert not question["required"] or "default" in question or question["variable"] in workflow_vars, (
                    "%s: required question %s has no default and the workflow does not answer it"
                    % (template["name"], question["variable"]))


def test_template_extra_vars_are_role_options_and_templated_only_at_job_run_time():
    for name, template in TEMPLATES.items():
        options = options_of(roles_run_by(template["playbook"]))
        provided = {question["variable"] for question in (template.get("survey_spec") or {}).get("spec", [])}
        for key, value in (template.get("extra_vars") or {}).items():
            assert key in options, "%s: extra var %s is no option of the roles %s runs" % (name, key, template["playbook"])
            if "{{" in str(value):
                assert isinstance(value, Unsafe), "%s: %s must be !unsafe so AAP, not the config run, templates it" % (
                    name, key)
            if not template.get("survey_enabled"):
                continue
            assert set(JINJA_NAME.findall(str(value))) <= provided, "%s: %s uses an unanswered variable" % (name, key)


def test_credential_types_inject_only_their_own_inputs():
    for kind in CONFIG["controller_credential_types"]:
        fields = {field["id"] for field in kind["inputs"]["fields"]}
        assert set(kind["inputs"].get("required", [])) <= fields
        files = {key.split(".", 1)[1] for key in kind["injectors"].get("file", {})}
        for section in ("file", "env", "extra_vars"):
            for key, template in kind["injectors"].get(section, {}).items():
                assert isinstance(template, Unsafe), "%s: injector %s must be !unsafe" % (kind["name"], key)
                for reference in re.findall(r"{{\s*([A-Za-z_.]+)\s*}}", template):
                    if reference.startswith("tower.filename."):
                        assert reference.split(".", 2)[2] in files
                    else:
                        assert reference in fields, "%s: %s references %s" % (kind["name"], key, reference)
        for field in kind["inputs"]["fields"]:
            if field["id"] in ("kubeconfig", "hf_token", "bearer_token", "token"):
                assert field.get("secret") is True, "%s: %s must be secret" % (kind["name"], field["id"])
    [kubeconfig] = [kind for kind in CONFIG["controller_credential_types"] if "kubeconfig" in
                    {field["id"] for field in kind["inputs"]["fields"]}]
    assert kubeconfig["injectors"]["env"]["K8S_AUTH_KUBECONFIG"] == "{{ tower.filename.kubeconfig }}"
    assert any(credential["credential_type"] == "OpenShift or Kubernetes API Bearer Token"
               for credential in CONFIG["controller_credentials"])


def test_configuration_time_variables_are_defined_in_settings():
    settings = set(load_yaml(os.path.join(CONFIGS, "settings.yml")))

    def walk(value):
        if isinstance(value, dict):
            for item in value.values():
                yield from walk(item)
        elif isinstance(value, list):
            for item in value:
                yield from walk(item)
        elif isinstance(value, str) and not isinstance(value, Unsafe):
            yield from JINJA_NAME.findall(value)

    used = set()
    for key, value in CONFIG.items():
        if key.startswith("controller_"):
            used.update(walk(value))
    assert used, "the configs reference no settings; the test would check nothing"
    assert used <= settings, "undefined in settings.yml: %s" % sorted(used - settings)


def awx_module_options(module):
    """Option names and aliases of an awx.awx module, read from its DOCUMENTATION."""
    spec = importlib.util.find_spec("ansible_collections.awx.awx")
    if spec is None:
        pytest.skip("awx.awx is not installed (it comes with the ansible package)")
    path = os.path.join(list(spec.submodule_search_locations)[0], "plugins", "modules", module + ".py")
    with open(path, encoding="utf-8") as handle:
        tree = ast.parse(handle.read())
    [documentation] = [node.value.value for node in tree.body if isinstance(node, ast.Assign)
                       and getattr(node.targets[0], "id", "") == "DOCUMENTATION"]
    options = yaml.safe_load(documentation)["options"]
    return set(options) | {alias for option in options.values() for alias in option.get("aliases", [])}


# infra.aap_configuration variable -> awx.awx module its role passes each item to; keys the role
# itself consumes (not passed to the module) listed second.
MODULES = {
    "controller_credential_types": ("credential_type", set()),
    "controller_credentials": ("credential", set()),
    "controller_execution_environments": ("execution_environment", set()),
    "controller_projects": ("project", set()),
    "controller_inventories": ("inventory", set()),
    "controller_hosts": ("host", set()),
    "controller_templates": ("job_template", set()),
    "controller_workflows": ("workflow_job_template", {"simplified_workflow_nodes"}),
}


@pytest.mark.parametrize("variable", sorted(MODULES))
def test_every_key_is_an_option_of_the_awx_module(variable):
    module, role_keys = MODULES[variable]
    allowed = awx_module_options(module) | role_keys
    for item in CONFIG[variable]:
        assert set(item) <= allowed, "%s %s: unknown keys %s" % (variable, item.get("name"), set(item) - allowed)
    if variable == "controller_workflows":
        node_options = awx_module_options("workflow_job_template_node")
        for workflow in CONFIG[variable]:
            for node in workflow["simplified_workflow_nodes"]:
                assert set(node) <= node_options


def test_every_config_variable_is_known():
    assert set(CONFIG) - set(MODULES) == set(load_yaml(os.path.join(CONFIGS, "settings.yml")))
