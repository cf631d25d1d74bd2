"""Checks the rendered manifests keep afk's deploy promises (run by deploy/check.sh).

Usage: policy.py base|armed FILE. Prints each violation and exits 1 if there is any.
"""

import sys

import yaml

TICK_DEADLINE_SECONDS = 4 * 60
SECRET_KEYS = {"tracker-token", "t3-token", "ntfy-token", "slack-webhook", "woodpecker-token"}
# A GitHub App's private key is the tracker credential in place of the token.
TRACKER_ALTERNATIVE = ("tracker-token", "app-private-key")
# The secret files each tick reads (crates/afk/src): afk-poll talks to the tracker (and git) and
# T3 only; afk-watch also reads Woodpecker and rings ntfy and Slack.
SECRETS_OF = {
    "afk-poll": {"tracker-token", "t3-token"},
    "afk-watch": SECRET_KEYS,
}
# What afk's pods carry and its NetworkPolicies select.
AFK_POD_LABEL = ("app.kubernetes.io/name", "afk")
# The only Kubernetes API call afk makes (crates/afk-remotes/src/kube.rs): GET one Deployment.
ROLE_RULE = {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get"]}
# Public-only HTTPS must leave out these ranges (private networks, the cloud metadata endpoint).
MUST_EXCEPT = {"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16"}


def check(kind_of_render, docs):
    bad = []
    kinds = [d["kind"] for d in docs]
    for forbidden in ("ClusterRole", "ClusterRoleBinding", "Secret"):
        if forbidden in kinds:
            bad.append(f"renders a {forbidden}: nothing cluster-wide and no secret values")
    for role in (d for d in docs if d["kind"] == "Role"):
        name = role["metadata"]["name"]
        for rule in role.get("rules", []):
            if "secrets" in rule.get("resources", []) or "*" in rule.get("resources", []):
                bad.append(f"Role {name} reaches secrets")
            if set(rule.get("verbs", [])) - {"get", "list", "watch"}:
                bad.append(f"Role {name} grants more than get/list/watch")
            shape = {k: rule.get(k) for k in ROLE_RULE}
            if shape != ROLE_RULE:
                bad.append(f"Role {name} grants {shape}; afk only calls {ROLE_RULE}")
            if not rule.get("resourceNames"):
                bad.append(f"Role {name} must name the deploy targets' Deployments (resourceNames)")
    bad += check_network(kind_of_render, docs)
    for sa in (d for d in docs if d["kind"] == "ServiceAccount"):
        if sa.get("automountServiceAccountToken") is not False:
            bad.append(f"ServiceAccount {sa['metadata']['name']}: token must not be mounted by default")
    has_roles = any(k in ("Role", "RoleBinding") for k in kinds)
    if kind_of_render == "base" and has_roles:
        bad.append("the base enrols no repo, so it must grant no Role in any namespace")
    if kind_of_render == "armed" and not has_roles:
        bad.append("the armed overlay enrols a deploy target but grants no rollout reads")
    cronjobs = {d["metadata"]["name"]: d for d in docs if d["kind"] == "CronJob"}
    if set(cronjobs) != {"afk-poll", "afk-watch"}:
        bad.append(f"expected CronJobs afk-poll and afk-watch, found {sorted(cronjobs)}")
    for name, cj in cronjobs.items():
        spec = cj["spec"]
        job = spec["jobTemplate"]["spec"]
        pod = job["template"]["spec"]
        where = f"CronJob {name}"
        if spec.get("concurrencyPolicy") != "Forbid":
            bad.append(f"{where}: concurrencyPolicy must be Forbid")
        if "startingDeadlineSeconds" not in spec:
            bad.append(f"{where}: no startingDeadlineSeconds")
        if job.get("backoffLimit") != 0:
            bad.append(f"{where}: backoffLimit must be 0")
        if job.get("activeDeadlineSeconds", 0) <= TICK_DEADLINE_SECONDS:
            bad.append(f"{where}: activeDeadlineSeconds must exceed the 4m tick deadline")
        if "ttlSecondsAfterFinished" not in job:
            bad.append(f"{where}: no ttlSecondsAfterFinished")
        labels = job["template"].get("metadata", {}).get("labels", {})
        if labels.get(AFK_POD_LABEL[0]) != AFK_POD_LABEL[1]:
            bad.append(f"{where}: pods must carry {AFK_POD_LABEL[0]}={AFK_POD_LABEL[1]} (NetworkPolicy)")
        if name == "afk-poll" and pod.get("automountServiceAccountToken") is not False:
            bad.append(f"{where}: afk-poll never calls the Kubernetes API; set automountServiceAccountToken: false")
        psc = pod.get("securityContext", {})
        if psc.get("runAsNonRoot") is not True:
            bad.append(f"{where}: pod must set runAsNonRoot")
        if psc.get("seccompProfile", {}).get("type") != "RuntimeDefault":
            bad.append(f"{where}: pod seccompProfile must be RuntimeDefault")
        volumes = {v["name"]: v for v in pod.get("volumes", [])}
        secret_vols = [v["secret"] for v in volumes.values() if "secret" in v]
        for s in secret_vols:
            if s.get("secretName") != "afk-secrets":
                bad.append(f"{where}: unexpected Secret {s.get('secretName')}")
            keys = {i["key"] for i in s.get("items", [])}
            wanted = SECRETS_OF.get(name, set())
            token, app_key = TRACKER_ALTERNATIVE
            if app_key in keys and token not in keys and token in wanted:
                wanted = (wanted - {token}) | {app_key}
            if keys != wanted:
                bad.append(f"{where}: Secret items {sorted(keys)} != what it uses {sorted(wanted)}")
        if not secret_vols:
            bad.append(f"{where}: mounts no Secret")
        for c in pod["containers"]:
            csc = c.get("securityContext", {})
            cwhere = f"{where} container {c['name']}"
            if csc.get("readOnlyRootFilesystem") is not True:
                bad.append(f"{cwhere}: readOnlyRootFilesystem must be true")
            if csc.get("allowPrivilegeEscalation") is not False:
                bad.append(f"{cwhere}: allowPrivilegeEscalation must be false")
            if csc.get("capabilities", {}).get("drop") != ["ALL"]:
                bad.append(f"{cwhere}: must drop ALL capabilities")
            res = c.get("resources", {})
            for part in ("requests", "limits"):
                if not {"cpu", "memory"} <= set(res.get(part, {})):
                    bad.append(f"{cwhere}: resources.{part} needs cpu and memory")
            mounts = {m["mountPath"]: m["name"] for m in c.get("volumeMounts", [])}
            if "emptyDir" not in volumes.get(mounts.get("/tmp", ""), {}):
                bad.append(f"{cwhere}: /tmp must be an emptyDir")
            if "persistentVolumeClaim" not in volumes.get(mounts.get("/data/afk", ""), {}):
                bad.append(f"{cwhere}: the workspace volume must be mounted at /data/afk")
            if "/data/afk" in mounts and ("fsGroup" in psc or "fsGroupChangePolicy" in psc):
                bad.append(f"{cwhere}: no fsGroup on a pod that mounts the workspace (the kubelet would make the mirrors group-writable)")
            env = {e["name"]: e.get("value") for e in c.get("env", [])}
            if env.get("AFK_CONFIG") != "/etc/afk/config.toml":
                bad.append(f"{cwhere}: AFK_CONFIG must be /etc/afk/config.toml")
            armed = env.get("AFK_KILL_SWITCH") == "false"
            if kind_of_render == "base" and "AFK_KILL_SWITCH" in env:
                bad.append(f"{cwhere}: the base must not touch the kill switch")
            if kind_of_render == "armed" and not armed:
                bad.append(f"{cwhere}: the armed overlay must set AFK_KILL_SWITCH=false")
    for pvc in (d for d in docs if d["kind"] == "PersistentVolumeClaim"):
        if pvc["spec"].get("accessModes") != ["ReadWriteMany"]:
            bad.append(f"PVC {pvc['metadata']['name']} must be ReadWriteMany")
    return bad


def selects_afk(policy):
    labels = policy["spec"].get("podSelector", {}).get("matchLabels", {})
    return labels.get(AFK_POD_LABEL[0]) == AFK_POD_LABEL[1] and not policy["spec"][
        "podSelector"
    ].get("matchExpressions")


def check_network(kind_of_render, docs):
    """No ingress; egress only to named peers on named ports; DNS reachable; in the armed
    overlay, no "every address" block left."""
    bad = []
    policies = [d for d in docs if d["kind"] == "NetworkPolicy"]
    main_policies = [
        p
        for p in policies
        if selects_afk(p)
        and {"Ingress", "Egress"} <= set(p["spec"].get("policyTypes", []))
        and set(p["spec"]["podSelector"]["matchLabels"]) == {AFK_POD_LABEL[0]}
    ]
    if not main_policies:
        bad.append("no NetworkPolicy isolates every afk pod for both ingress and egress")
    dns = False
    for p in policies:
        name = f"NetworkPolicy {p['metadata']['name']}"
        spec = p["spec"]
        if spec.get("ingress"):
            bad.append(f"{name}: allows ingress; afk serves nothing")
        if "podSelector" not in spec or not spec["podSelector"]:
            bad.append(f"{name}: selects every pod of the namespace")
        for i, rule in enumerate(spec.get("egress", [])):
            where = f"{name} egress[{i}]"
            if not rule.get("ports"):
                bad.append(f"{where}: no ports (every port allowed)")
            if not rule.get("to"):
                bad.append(f"{where}: no destination (everywhere allowed)")
            if any(port.get("port") == 53 for port in rule.get("ports", [])):
                dns = True
            for peer in rule.get("to", []):
                if not peer:
                    bad.append(f"{where}: an empty peer allows everywhere")
                block = peer.get("ipBlock")
                if not block:
                    continue
                if block.get("cidr") in ("0.0.0.0/0", "::/0"):
                    if kind_of_render == "armed":
                        bad.append(f"{where}: every address allowed; narrow it to the real endpoints")
                    missing = MUST_EXCEPT - set(block.get("except", []))
                    if missing:
                        bad.append(f"{where}: every address allowed without excepting {sorted(missing)}")
    if not dns:
        bad.append("no NetworkPolicy lets afk resolve names (port 53)")
    return bad


def main():
    kind_of_render, path = sys.argv[1], sys.argv[2]
    with open(path, encoding="utf-8") as f:
        docs = [d for d in yaml.safe_load_all(f) if d]
    bad = check(kind_of_render, docs)
    for b in bad:
        print(f"policy: {path}: {b}")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
