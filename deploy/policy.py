"""Checks the rendered manifests keep afk's deploy promises (run by deploy/check.sh).

Usage: policy.py base|armed FILE. Prints each violation and exits 1 if there is any.
"""

import sys

import yaml

TICK_DEADLINE_SECONDS = 4 * 60
SECRET_KEYS = {"tracker-token", "t3-token", "ntfy-token", "slack-webhook", "woodpecker-token"}


def check(kind_of_render, docs):
    bad = []
    kinds = [d["kind"] for d in docs]
    for forbidden in ("ClusterRole", "ClusterRoleBinding", "Secret"):
        if forbidden in kinds:
            bad.append(f"renders a {forbidden}: nothing cluster-wide and no secret values")
    for role in (d for d in docs if d["kind"] == "Role"):
        for rule in role.get("rules", []):
            if "secrets" in rule.get("resources", []) or "*" in rule.get("resources", []):
                bad.append(f"Role {role['metadata']['name']} reaches secrets")
            if set(rule.get("verbs", [])) - {"get", "list", "watch"}:
                bad.append(f"Role {role['metadata']['name']} grants more than get/list/watch")
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
            if keys != SECRET_KEYS:
                bad.append(f"{where}: Secret items {sorted(keys)} != {sorted(SECRET_KEYS)}")
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
