//! The deployment files in `deploy/`: the Kubernetes manifests validate against the schemas of
//! a pinned Kubernetes version (`kubernetes-validate --strict`, installed by
//! `scripts/setup.sh`) and pass zeval's own lint ([`lint`]); the Containerfile, which no
//! container engine here can build, is checked statically ([`lint_containerfile`]); every
//! metric the server exposes is explained in `docs/operations.md`. Each check is also run on
//! a deliberately broken copy, which it must refuse.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Deserialize;
use serde_json::{Value, json};

/// The Kubernetes version the manifests are validated against (its schemas ship with
/// kubernetes-validate; 1.34 is the oldest minor release still supported upstream when this
/// was written).
const KUBERNETES_VERSION: &str = "1.34.0";

const REPO: &str = env!("CARGO_MANIFEST_DIR");

/// The one Secret the manifests read, and the keys it must have (docs/operations.md).
const SECRET: &str = "zeval";
const SECRET_KEYS: &[&str] = &[
    "database-url",
    "redis-url",
    "redis-key-secret",
    "evaluator-secret",
];

/// Environment variables zeval reads outside `Config::apply_env`.
const OTHER_ENV: &[&str] = &["ZEVAL_LOG"];

fn repo() -> PathBuf {
    PathBuf::from(REPO)
}

fn k8s_dir() -> PathBuf {
    repo().join("deploy/k8s")
}

/// A manifest file and its documents (as JSON values; empty documents skipped).
struct Manifest {
    path: PathBuf,
    docs: Vec<Value>,
}

fn parse_yaml(text: &str) -> Result<Vec<Value>, String> {
    let mut docs = Vec::new();
    for document in serde_yaml::Deserializer::from_str(text) {
        let value = serde_yaml::Value::deserialize(document).map_err(|e| e.to_string())?;
        if value.is_null() {
            continue;
        }
        docs.push(serde_json::to_value(value).map_err(|e| e.to_string())?);
    }
    Ok(docs)
}

/// Every `*.yaml` in `dir`, sorted, parsed.
fn read_manifests(dir: &Path) -> Vec<Manifest> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "yaml"))
        .collect();
    paths.sort();
    assert!(!paths.is_empty(), "no manifests in {}", dir.display());
    paths
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).unwrap();
            let docs = parse_yaml(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            Manifest { path, docs }
        })
        .collect()
}

/// Runs kubernetes-validate in strict mode on every manifest in `dir`. Passes only when it
/// exits 0, prints no warning or error (an unknown kind is only a warning to it), and reports
/// every document as passed.
fn validate(dir: &Path) -> Result<(), String> {
    let manifests = read_manifests(dir);
    let documents: usize = manifests.iter().map(|m| m.docs.len()).sum();
    let output = Command::new("kubernetes-validate")
        .args(["--strict", "--kubernetes-version", KUBERNETES_VERSION])
        .args(manifests.iter().map(|m| &m.path))
        .output()
        .map_err(|e| format!("kubernetes-validate: {e} (scripts/setup.sh installs it with pip)"))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let passed = text
        .lines()
        .filter(|l| l.contains(" passed for resource "))
        .count();
    let complaints: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("WARN") || l.starts_with("ERROR"))
        .collect();
    if !output.status.success() || !complaints.is_empty() || passed != documents {
        return Err(format!(
            "kubernetes-validate ({}; {passed} of {documents} documents passed):\n{text}",
            output.status
        ));
    }
    Ok(())
}

fn str_at<'a>(value: &'a Value, pointer: &str) -> Option<&'a str> {
    value.pointer(pointer).and_then(Value::as_str)
}

fn name_of(doc: &Value) -> String {
    format!(
        "{}/{}",
        str_at(doc, "/kind").unwrap_or("?"),
        str_at(doc, "/metadata/name").unwrap_or("?")
    )
}

/// Whether `selector` (a `matchLabels` map) selects pods labelled `labels`.
fn selects(selector: &Value, labels: &Value) -> bool {
    match selector.as_object() {
        Some(selector) if !selector.is_empty() => selector
            .iter()
            .all(|(key, value)| labels.get(key) == Some(value)),
        _ => false,
    }
}

fn env_value<'a>(container: &'a Value, name: &str) -> Option<&'a Value> {
    container
        .get("env")?
        .as_array()?
        .iter()
        .find(|e| e.get("name").and_then(Value::as_str) == Some(name))
}

/// The role a Deployment's zeval container runs (`ZEVAL_ROLE`).
fn role(deployment: &Value) -> Option<String> {
    let containers = deployment
        .pointer("/spec/template/spec/containers")?
        .as_array()?;
    containers.iter().find_map(|c| {
        env_value(c, "ZEVAL_ROLE")
            .and_then(|e| e.get("value"))
            .and_then(Value::as_str)
            .map(str::to_owned)
    })
}

/// The environment a container would see, with sample values for Secret keys and the pod IP,
/// and `$(VAR)` references expanded as the kubelet does.
fn sample_env(container: &Value) -> Result<BTreeMap<String, String>, String> {
    let mut env: BTreeMap<String, String> = BTreeMap::new();
    for entry in container
        .get("env")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let name = str_at(entry, "/name").ok_or("an env entry has no name")?;
        let value = if let Some(value) = str_at(entry, "/value") {
            let mut expanded = value.to_owned();
            for (known, known_value) in &env {
                expanded = expanded.replace(&format!("$({known})"), known_value.as_str());
            }
            expanded
        } else if let Some(key) = str_at(entry, "/valueFrom/secretKeyRef/key") {
            match key {
                "database-url" => "postgres://zeval@db.example:5432/zeval".to_owned(),
                "redis-url" => "redis://redis.example:6379/0".to_owned(),
                "evaluator-secret" => "0123456789abcdef0123456789abcdef".to_owned(),
                "redis-key-secret" => "fedcba9876543210fedcba9876543210".to_owned(),
                other => return Err(format!("{name} reads an unknown Secret key {other:?}")),
            }
        } else if str_at(entry, "/valueFrom/fieldRef/fieldPath") == Some("status.podIP") {
            "10.1.2.3".to_owned()
        } else {
            return Err(format!("{name}: a value source the lint does not know"));
        };
        env.insert(name.to_owned(), value);
    }
    Ok(env)
}

/// zeval's lint of a set of manifests: what `kubernetes-validate` cannot know. Returns every
/// problem found (empty: clean). `volumes` are the Containerfile's VOLUMEs, the only paths a
/// read-only root file system leaves writable.
fn lint(docs: &[Value], volumes: &BTreeSet<String>) -> Vec<String> {
    let mut problems = Vec::new();
    let known_env: BTreeSet<&str> = zeval_server::config::ENV_VARS
        .iter()
        .map(|(name, _)| *name)
        .chain(OTHER_ENV.iter().copied())
        .collect();
    let kind = |doc: &Value| str_at(doc, "/kind").unwrap_or("").to_owned();
    let deployments: Vec<&Value> = docs.iter().filter(|d| kind(d) == "Deployment").collect();
    let services: Vec<&Value> = docs.iter().filter(|d| kind(d) == "Service").collect();

    for doc in docs {
        if str_at(doc, "/metadata/name").is_none() {
            problems.push(format!("{}: no metadata.name", name_of(doc)));
        }
        if doc.pointer("/metadata/namespace").is_some() {
            problems.push(format!(
                "{}: names a namespace (apply with -n instead)",
                name_of(doc)
            ));
        }
    }

    for deployment in &deployments {
        let what = name_of(deployment);
        let pod = deployment
            .pointer("/spec/template/spec")
            .cloned()
            .unwrap_or(Value::Null);
        let labels = deployment
            .pointer("/spec/template/metadata/labels")
            .cloned()
            .unwrap_or(Value::Null);
        if !selects(
            deployment
                .pointer("/spec/selector/matchLabels")
                .unwrap_or(&Value::Null),
            &labels,
        ) {
            problems.push(format!("{what}: its selector does not select its own pods"));
        }
        if pod.get("automountServiceAccountToken") != Some(&json!(false)) {
            problems.push(format!(
                "{what}: automountServiceAccountToken must be false"
            ));
        }
        if pod.pointer("/securityContext/runAsNonRoot") != Some(&json!(true)) {
            problems.push(format!("{what}: the pod must set runAsNonRoot: true"));
        }
        if str_at(&pod, "/securityContext/seccompProfile/type") != Some("RuntimeDefault") {
            problems.push(format!(
                "{what}: the pod's seccompProfile must be RuntimeDefault"
            ));
        }
        let declared: BTreeSet<&str> = pod
            .get("volumes")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|v| str_at(v, "/name"))
            .collect();
        let containers: Vec<&Value> = ["containers", "initContainers"]
            .iter()
            .filter_map(|key| pod.get(*key).and_then(Value::as_array))
            .flatten()
            .collect();
        if containers.is_empty() {
            problems.push(format!("{what}: no containers"));
        }
        for container in containers {
            let what = format!(
                "{what} container {}",
                str_at(container, "/name").unwrap_or("?")
            );
            match str_at(container, "/image") {
                None => problems.push(format!("{what}: no image")),
                Some(image) => {
                    let last = image.rsplit('/').next().unwrap_or(image);
                    let tag = last.split_once(':').map(|(_, tag)| tag);
                    if !image.contains("@sha256:")
                        && tag.is_none_or(|t| t.is_empty() || t == "latest")
                    {
                        problems.push(format!("{what}: image {image:?} is not pinned (a tag other than latest, or a digest)"));
                    }
                }
            }
            for pointer in [
                "/resources/requests/cpu",
                "/resources/requests/memory",
                "/resources/limits/cpu",
                "/resources/limits/memory",
            ] {
                if container.pointer(pointer).is_none() {
                    problems.push(format!("{what}: no {}", &pointer[1..].replace('/', ".")));
                }
            }
            let ports: BTreeSet<String> = container
                .get("ports")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .flat_map(|p| {
                    [
                        str_at(p, "/name").map(str::to_owned),
                        p.get("containerPort").map(|n| n.to_string()),
                    ]
                })
                .flatten()
                .collect();
            for probe in ["readinessProbe", "livenessProbe"] {
                match container.get(probe) {
                    None => problems.push(format!("{what}: no {probe}")),
                    Some(p) => {
                        let port = p
                            .pointer("/httpGet/port")
                            .or_else(|| p.pointer("/tcpSocket/port"))
                            .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned));
                        if port.is_none_or(|port| !ports.contains(&port)) {
                            problems
                                .push(format!("{what}: {probe} does not probe a declared port"));
                        }
                    }
                }
            }
            let security = container
                .get("securityContext")
                .cloned()
                .unwrap_or(Value::Null);
            if security.get("readOnlyRootFilesystem") != Some(&json!(true)) {
                problems.push(format!("{what}: readOnlyRootFilesystem must be true"));
            }
            if security.get("allowPrivilegeEscalation") != Some(&json!(false)) {
                problems.push(format!("{what}: allowPrivilegeEscalation must be false"));
            }
            if security.get("runAsNonRoot") == Some(&json!(false))
                || security.get("runAsUser") == Some(&json!(0))
                || security.get("privileged") == Some(&json!(true))
            {
                problems.push(format!("{what}: must not run as root or privileged"));
            }
            let dropped = security
                .pointer("/capabilities/drop")
                .and_then(Value::as_array)
                .is_some_and(|d| d.contains(&json!("ALL")));
            if !dropped || security.pointer("/capabilities/add").is_some() {
                problems.push(format!("{what}: must drop ALL capabilities and add none"));
            }
            let mounts: BTreeSet<String> = container
                .get("volumeMounts")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|m| {
                    let name = str_at(m, "/name")?;
                    if !declared.contains(name) {
                        problems.push(format!("{what}: mounts an undeclared volume {name:?}"));
                    }
                    str_at(m, "/mountPath").map(str::to_owned)
                })
                .collect();
            if &mounts != volumes {
                problems.push(format!(
                    "{what}: mounts {mounts:?}, but the image's writable paths (VOLUME) are {volumes:?}"
                ));
            }
            for entry in container
                .get("env")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let name = str_at(entry, "/name").unwrap_or("");
                if name.starts_with("ZEVAL_") && !known_env.contains(name) {
                    problems.push(format!("{what}: zeval reads no variable {name}"));
                }
                if let Some(secret) = str_at(entry, "/valueFrom/secretKeyRef/name") {
                    let key = str_at(entry, "/valueFrom/secretKeyRef/key").unwrap_or("");
                    if secret != SECRET || !SECRET_KEYS.contains(&key) {
                        problems.push(format!(
                            "{what}: {name} reads Secret {secret:?} key {key:?}; the documented ones are {SECRET:?} {SECRET_KEYS:?}"
                        ));
                    }
                }
            }
            // The environment must make a configuration zeval accepts.
            match sample_env(container) {
                Err(e) => problems.push(format!("{what}: {e}")),
                Ok(env) => {
                    let mut config = zeval_server::Config::default();
                    if let Err(e) = config
                        .apply_env(|name| env.get(name).cloned())
                        .and_then(|()| config.check())
                    {
                        problems.push(format!("{what}: zeval would refuse this environment: {e}"));
                    }
                    // The kubelet kills what is still running after the grace period: it
                    // must outlast an evaluator's drain, and an orchestrator's longest call
                    // after its preStop pause.
                    let grace_ms = deployment
                        .pointer("/spec/template/spec/terminationGracePeriodSeconds")
                        .and_then(Value::as_u64)
                        .unwrap_or(30)
                        * 1000;
                    let pause_ms = container
                        .pointer("/lifecycle/preStop/sleep/seconds")
                        .and_then(Value::as_u64)
                        .unwrap_or(0)
                        * 1000;
                    let needed_ms = match config.role {
                        zeval_server::config::Role::Evaluator => config.failover.drain_timeout_ms,
                        _ => config.limits.call_timeout_ms,
                    } + pause_ms;
                    if grace_ms <= needed_ms {
                        problems.push(format!(
                            "{what}: terminationGracePeriodSeconds ({grace_ms} ms) does not outlast the drain or the longest call ({needed_ms} ms)"
                        ));
                    }
                    if let Some(url) = env.get("ZEVAL_EVALUATOR_URL") {
                        for url in url.split(',') {
                            let host = url
                                .trim()
                                .trim_start_matches("http://")
                                .split([':', '/'])
                                .next()
                                .unwrap_or("");
                            if !services
                                .iter()
                                .any(|s| str_at(s, "/metadata/name") == Some(host))
                            {
                                problems.push(format!("{what}: ZEVAL_EVALUATOR_URL names {host:?}, which is no Service here"));
                            }
                        }
                    }
                }
            }
        }
    }

    // Services select a Deployment's pods and target a port its container declares.
    for service in &services {
        let what = name_of(service);
        let selector = service
            .pointer("/spec/selector")
            .cloned()
            .unwrap_or(Value::Null);
        let Some(target) = deployments.iter().find(|d| {
            selects(
                &selector,
                d.pointer("/spec/template/metadata/labels")
                    .unwrap_or(&Value::Null),
            )
        }) else {
            problems.push(format!("{what}: selects no Deployment's pods"));
            continue;
        };
        let container_ports: Vec<&Value> = target
            .pointer("/spec/template/spec/containers")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .flat_map(|c| {
                c.get("ports")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
            })
            .collect();
        for port in service
            .pointer("/spec/ports")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let target_port = port.get("targetPort").or_else(|| port.get("port"));
            let found = container_ports.iter().any(|p| {
                Some(&p["name"]) == target_port || Some(&p["containerPort"]) == target_port
            });
            if !found {
                problems.push(format!(
                    "{what}: targetPort {target_port:?} is no container port"
                ));
            }
        }
    }

    // Disruption budgets protect pods that exist.
    for budget in docs.iter().filter(|d| kind(d) == "PodDisruptionBudget") {
        let selector = budget
            .pointer("/spec/selector/matchLabels")
            .unwrap_or(&Value::Null);
        let selected = deployments.iter().any(|d| {
            selects(
                selector,
                d.pointer("/spec/template/metadata/labels")
                    .unwrap_or(&Value::Null),
            )
        });
        if !selected {
            problems.push(format!("{}: selects no Deployment's pods", name_of(budget)));
        }
    }

    // Every evaluator Deployment: scaled on CPU, and fenced by a NetworkPolicy that admits
    // only orchestrators and lets it reach only the orchestrators' port (reentrant calls).
    let pods_of = |role_name: &str| -> Vec<(Value, BTreeSet<u64>)> {
        deployments
            .iter()
            .filter(|d| role(d).as_deref() == Some(role_name))
            .map(|d| {
                let labels = d
                    .pointer("/spec/template/metadata/labels")
                    .cloned()
                    .unwrap_or(Value::Null);
                let ports = d
                    .pointer("/spec/template/spec/containers")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .flat_map(|c| {
                        c.get("ports")
                            .and_then(Value::as_array)
                            .into_iter()
                            .flatten()
                    })
                    .filter_map(|p| p.get("containerPort").and_then(Value::as_u64))
                    .collect();
                (labels, ports)
            })
            .collect()
    };
    let orchestrators = pods_of("orchestrator");
    let peer_rules_ok = |rules: Option<&Value>, peer_key: &str| -> bool {
        let Some(rules) = rules.and_then(Value::as_array) else {
            return true; // no rule of this direction: nothing allowed
        };
        rules.iter().all(|rule| {
            let peers = rule.get(peer_key).and_then(Value::as_array);
            let peers_ok = peers.is_some_and(|peers| {
                !peers.is_empty()
                    && peers.iter().all(|peer| {
                        peer.as_object().is_some_and(|p| p.len() == 1)
                            && orchestrators.iter().any(|(labels, _)| {
                                selects(
                                    peer.pointer("/podSelector/matchLabels")
                                        .unwrap_or(&Value::Null),
                                    labels,
                                )
                            })
                    })
            });
            let ports = rule.get("ports").and_then(Value::as_array);
            let ports_ok = ports.is_some_and(|ports| !ports.is_empty());
            peers_ok && ports_ok
        })
    };
    for deployment in deployments
        .iter()
        .filter(|d| role(d).as_deref() == Some("evaluator"))
    {
        let what = name_of(deployment);
        let name = str_at(deployment, "/metadata/name");
        let labels = deployment
            .pointer("/spec/template/metadata/labels")
            .cloned()
            .unwrap_or(Value::Null);
        let scaled = docs.iter().any(|d| {
            kind(d) == "HorizontalPodAutoscaler"
                && str_at(d, "/spec/scaleTargetRef/kind") == Some("Deployment")
                && str_at(d, "/spec/scaleTargetRef/name") == name
                && d.pointer("/spec/metrics")
                    .and_then(Value::as_array)
                    .is_some_and(|m| m.iter().any(|m| str_at(m, "/resource/name") == Some("cpu")))
        });
        if !scaled {
            problems.push(format!(
                "{what}: no HorizontalPodAutoscaler on CPU targets it"
            ));
        }
        let own_ports: BTreeSet<u64> = pods_of("evaluator")
            .into_iter()
            .find(|(l, _)| *l == labels)
            .map(|(_, p)| p)
            .unwrap_or_default();
        let orchestrator_ports: BTreeSet<u64> = orchestrators
            .iter()
            .flat_map(|(_, p)| p.iter().copied())
            .collect();
        let policies: Vec<&Value> = docs
            .iter()
            .filter(|d| kind(d) == "NetworkPolicy")
            .filter(|d| {
                selects(
                    d.pointer("/spec/podSelector/matchLabels")
                        .unwrap_or(&Value::Null),
                    &labels,
                )
            })
            .collect();
        if policies.is_empty() {
            problems.push(format!("{what}: no NetworkPolicy selects its pods"));
        }
        for policy in policies {
            let pwhat = name_of(policy);
            let types = policy
                .pointer("/spec/policyTypes")
                .cloned()
                .unwrap_or(Value::Null);
            if !(types
                .as_array()
                .is_some_and(|t| t.contains(&json!("Ingress")) && t.contains(&json!("Egress"))))
            {
                problems.push(format!("{pwhat}: policyTypes must list Ingress and Egress"));
            }
            if !peer_rules_ok(policy.pointer("/spec/ingress"), "from") {
                problems.push(format!(
                    "{pwhat}: ingress must come only from orchestrator pods, on named ports"
                ));
            }
            if !peer_rules_ok(policy.pointer("/spec/egress"), "to") {
                problems.push(format!(
                    "{pwhat}: egress must go only to orchestrator pods, on named ports"
                ));
            }
            let port_set = |direction: &str| -> BTreeSet<u64> {
                policy
                    .pointer(&format!("/spec/{direction}"))
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .flat_map(|r| {
                        r.get("ports")
                            .and_then(Value::as_array)
                            .into_iter()
                            .flatten()
                    })
                    .filter_map(|p| p.get("port").and_then(Value::as_u64))
                    .collect()
            };
            if port_set("ingress") != own_ports {
                problems.push(format!(
                    "{pwhat}: ingress ports {:?} are not the evaluator's {own_ports:?}",
                    port_set("ingress")
                ));
            }
            if !port_set("egress").is_subset(&orchestrator_ports) {
                problems.push(format!(
                    "{pwhat}: egress ports {:?} go beyond the orchestrators' {orchestrator_ports:?}",
                    port_set("egress")
                ));
            }
        }
    }
    problems
}

/// The Containerfile's instructions, continuation lines joined, comments dropped.
fn instructions(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('#') || (trimmed.is_empty() && current.is_empty()) {
            continue;
        }
        if let Some(stripped) = trimmed.strip_suffix('\\') {
            current.push_str(stripped);
            current.push(' ');
            continue;
        }
        current.push_str(trimmed);
        let (keyword, rest) = current.split_once(' ').unwrap_or((&current, ""));
        out.push((keyword.to_ascii_uppercase(), rest.trim().to_owned()));
        current.clear();
    }
    out
}

/// The static checks of a Containerfile against the tree at `root`: returns its VOLUMEs and
/// every problem found.
fn lint_containerfile(text: &str, root: &Path) -> (BTreeSet<String>, Vec<String>) {
    let mut problems = Vec::new();
    let mut stages: Vec<String> = Vec::new();
    let mut volumes = BTreeSet::new();
    let mut user: Option<String> = None;
    let mut entrypoint = false;
    let toolchain = std::fs::read_to_string(root.join("rust-toolchain.toml")).unwrap_or_default();
    let channel = toolchain
        .lines()
        .find_map(|l| l.trim().strip_prefix("channel = "))
        .map(|c| c.trim_matches('"').to_owned())
        .unwrap_or_default();
    for (keyword, rest) in instructions(text) {
        let words: Vec<&str> = rest.split_whitespace().collect();
        match keyword.as_str() {
            "FROM" => {
                let image = words.first().copied().unwrap_or("");
                let tag = image
                    .rsplit('/')
                    .next()
                    .and_then(|l| l.split_once(':'))
                    .map(|(_, t)| t);
                if tag.is_none_or(|t| t.is_empty() || t == "latest") && !image.contains("@sha256:")
                {
                    problems.push(format!(
                        "FROM {image}: not pinned (a tag other than latest)"
                    ));
                }
                let stage = match words.as_slice() {
                    [_, as_, name] if as_.eq_ignore_ascii_case("as") => name.to_string(),
                    _ => String::new(),
                };
                if stages.is_empty() {
                    let expected = format!("rust:{channel}-bookworm");
                    if !image.ends_with(&expected) {
                        problems.push(format!(
                            "FROM {image}: the build stage must be {expected} (rust-toolchain.toml's channel on Debian bookworm)"
                        ));
                    }
                }
                stages.push(stage);
                user = None;
                entrypoint = false;
            }
            "COPY" | "ADD" => {
                let from = words.iter().find_map(|w| w.strip_prefix("--from="));
                let args: Vec<&str> = words
                    .iter()
                    .copied()
                    .filter(|w| !w.starts_with("--"))
                    .collect();
                match from {
                    Some(stage) => {
                        if !stages[..stages.len().saturating_sub(1)]
                            .iter()
                            .any(|s| s == stage)
                        {
                            problems.push(format!(
                                "COPY --from={stage}: no earlier stage of that name"
                            ));
                        }
                    }
                    None => {
                        if args.len() < 2 {
                            problems.push(format!(
                                "{keyword} {rest}: needs a source and a destination"
                            ));
                        }
                        for source in &args[..args.len().saturating_sub(1)] {
                            if source.starts_with('/')
                                || source.contains("..")
                                || !root.join(source).exists()
                            {
                                problems.push(format!(
                                    "{keyword} {source}: no such path in the repository"
                                ));
                            }
                        }
                    }
                }
            }
            "USER" => user = words.first().map(|u| u.to_string()),
            "ENTRYPOINT" => entrypoint = true,
            "VOLUME" => match serde_json::from_str::<Vec<String>>(&rest) {
                Ok(paths) => volumes.extend(paths),
                Err(e) => problems.push(format!("VOLUME {rest}: not a JSON list: {e}")),
            },
            _ => {}
        }
    }
    if stages.len() < 2 {
        problems.push("not a multi-stage build".to_owned());
    }
    match user.as_deref() {
        None => problems.push("the final stage sets no USER (it would run as root)".to_owned()),
        Some(u) if u == "root" || u == "0" || u.starts_with("0:") || u.starts_with("root:") => {
            problems.push(format!("USER {u}: the final stage must not run as root"));
        }
        Some(_) => {}
    }
    if !entrypoint {
        problems.push("the final stage has no ENTRYPOINT".to_owned());
    }
    if volumes.is_empty() {
        problems.push("no VOLUME: nothing would be writable on a read-only root".to_owned());
    }
    (volumes, problems)
}

fn containerfile() -> String {
    std::fs::read_to_string(repo().join("deploy/Containerfile")).unwrap()
}

fn all_docs(dir: &Path) -> Vec<Value> {
    read_manifests(dir)
        .into_iter()
        .flat_map(|m| m.docs)
        .collect()
}

#[test]
fn manifests_pass_the_kubernetes_schemas() {
    validate(&k8s_dir()).unwrap();
}

#[test]
fn manifests_and_the_containerfile_pass_the_lint() {
    let (volumes, problems) = lint_containerfile(&containerfile(), &repo());
    assert!(problems.is_empty(), "Containerfile: {problems:#?}");
    assert_eq!(
        volumes,
        ["/tmp", "/var/cache/zeval", "/var/lib/zeval"]
            .map(String::from)
            .into(),
    );
    let docs = all_docs(&k8s_dir());
    let problems = lint(&docs, &volumes);
    assert!(problems.is_empty(), "{problems:#?}");
    // What the lint looked at: both roles, both Services, the autoscaler and the policy.
    let kinds: Vec<String> = docs.iter().map(name_of).collect();
    for expected in [
        "Deployment/zeval-orchestrator",
        "Service/zeval-orchestrator",
        "Deployment/zeval-evaluator",
        "Service/zeval-evaluator",
        "HorizontalPodAutoscaler/zeval-evaluator",
        "NetworkPolicy/zeval-evaluator",
        "PodDisruptionBudget/zeval-orchestrator",
        "PodDisruptionBudget/zeval-evaluator",
    ] {
        assert!(
            kinds.iter().any(|k| k == expected),
            "{expected} missing from {kinds:?}"
        );
    }
}

/// A copy of the manifests with one field misspelt: the schemas refuse it.
#[test]
fn a_manifest_the_schemas_refuse_fails_validation() {
    let scratch = tempfile::tempdir().unwrap();
    for manifest in read_manifests(&k8s_dir()) {
        let mut text = std::fs::read_to_string(&manifest.path).unwrap();
        if manifest.path.ends_with("evaluator.yaml") {
            assert!(text.contains("\n  minReplicas: 2\n"));
            text = text.replace("\n  minReplicas: 2\n", "\n  minReplica: 2\n");
        }
        std::fs::write(
            scratch.path().join(manifest.path.file_name().unwrap()),
            text,
        )
        .unwrap();
    }
    let error = validate(scratch.path()).unwrap_err();
    assert!(error.contains("'minReplica' was unexpected"), "{error}");

    // A kind unknown to the schemas is only a warning to kubernetes-validate; not to us.
    std::fs::write(
        scratch.path().join("unknown.yaml"),
        "apiVersion: example.org/v1\nkind: Gadget\nmetadata:\n  name: x\n",
    )
    .unwrap();
    std::fs::copy(
        k8s_dir().join("evaluator.yaml"),
        scratch.path().join("evaluator.yaml"),
    )
    .unwrap();
    let error = validate(scratch.path()).unwrap_err();
    assert!(error.contains("Gadget"), "{error}");
}

/// One deliberate mistake at a time, each of which the lint must name.
#[test]
fn broken_manifests_fail_the_lint() {
    let (volumes, _) = lint_containerfile(&containerfile(), &repo());
    let docs = all_docs(&k8s_dir());
    let find = |docs: &[Value], name: &str| {
        docs.iter()
            .position(|d| name_of(d) == name)
            .unwrap_or_else(|| panic!("no {name}"))
    };
    let orchestrator = find(&docs, "Deployment/zeval-orchestrator");
    let evaluator = find(&docs, "Deployment/zeval-evaluator");
    let policy = find(&docs, "NetworkPolicy/zeval-evaluator");
    let hpa = find(&docs, "HorizontalPodAutoscaler/zeval-evaluator");
    type Breakage = Box<dyn Fn(&mut Vec<Value>)>;
    let container = "/spec/template/spec/containers/0";
    let cases: Vec<(&str, Breakage, &str)> = vec![
        (
            "latest image",
            Box::new(move |d| {
                d[orchestrator]
                    .pointer_mut(&format!("{container}/image"))
                    .map(|v| *v = json!("zeval:latest"))
                    .unwrap()
            }),
            "not pinned",
        ),
        (
            "untagged image",
            Box::new(move |d| {
                d[evaluator]
                    .pointer_mut(&format!("{container}/image"))
                    .map(|v| *v = json!("registry.example:5000/zeval"))
                    .unwrap()
            }),
            "not pinned",
        ),
        (
            "no limits",
            Box::new(move |d| {
                d[evaluator]
                    .pointer_mut(&format!("{container}/resources"))
                    .unwrap()
                    .as_object_mut()
                    .unwrap()
                    .remove("limits");
            }),
            "no resources.limits.cpu",
        ),
        (
            "no liveness probe",
            Box::new(move |d| {
                d[orchestrator]
                    .pointer_mut(container)
                    .unwrap()
                    .as_object_mut()
                    .unwrap()
                    .remove("livenessProbe");
            }),
            "no livenessProbe",
        ),
        (
            "writable root",
            Box::new(move |d| {
                d[evaluator]
                    .pointer_mut(&format!(
                        "{container}/securityContext/readOnlyRootFilesystem"
                    ))
                    .map(|v| *v = json!(false))
                    .unwrap()
            }),
            "readOnlyRootFilesystem",
        ),
        (
            "escalation",
            Box::new(move |d| {
                d[evaluator]
                    .pointer_mut(&format!("{container}/securityContext"))
                    .unwrap()
                    .as_object_mut()
                    .unwrap()
                    .remove("allowPrivilegeEscalation");
            }),
            "allowPrivilegeEscalation",
        ),
        (
            "root pod",
            Box::new(move |d| {
                d[orchestrator]
                    .pointer_mut("/spec/template/spec/securityContext/runAsNonRoot")
                    .map(|v| *v = json!(false))
                    .unwrap()
            }),
            "runAsNonRoot",
        ),
        (
            "added capability",
            Box::new(move |d| {
                d[evaluator]
                    .pointer_mut(&format!("{container}/securityContext/capabilities"))
                    .unwrap()
                    .as_object_mut()
                    .unwrap()
                    .insert("add".into(), json!(["SYS_ADMIN"]));
            }),
            "capabilities",
        ),
        (
            "misspelt variable",
            Box::new(move |d| {
                let env = d[orchestrator]
                    .pointer_mut(&format!("{container}/env"))
                    .unwrap()
                    .as_array_mut()
                    .unwrap();
                let e = env
                    .iter_mut()
                    .find(|e| e["name"] == "ZEVAL_CACHE_REDIS_URL")
                    .unwrap();
                e["name"] = json!("ZEVAL_CACHE_REDIS_URI");
            }),
            "ZEVAL_CACHE_REDIS_URI",
        ),
        (
            "evaluator without secret",
            Box::new(move |d| {
                let env = d[evaluator]
                    .pointer_mut(&format!("{container}/env"))
                    .unwrap()
                    .as_array_mut()
                    .unwrap();
                env.retain(|e| e["name"] != "ZEVAL_EVALUATOR_SECRET");
            }),
            "would refuse",
        ),
        (
            "short grace period",
            Box::new(move |d| {
                d[evaluator]
                    .pointer_mut("/spec/template/spec/terminationGracePeriodSeconds")
                    .map(|v| *v = json!(20))
                    .unwrap()
            }),
            "does not outlast the drain",
        ),
        (
            "tmp not mounted",
            Box::new(move |d| {
                d[evaluator]
                    .pointer_mut(&format!("{container}/volumeMounts"))
                    .unwrap()
                    .as_array_mut()
                    .unwrap()
                    .retain(|m| m["mountPath"] != "/tmp");
            }),
            "writable paths",
        ),
        (
            "egress to the world",
            Box::new(move |d| {
                d[policy]
                    .pointer_mut("/spec/egress")
                    .unwrap()
                    .as_array_mut()
                    .unwrap()
                    .push(json!({"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]}));
            }),
            "egress must go only to orchestrator pods",
        ),
        (
            "egress on another port",
            Box::new(move |d| {
                d[policy]
                    .pointer_mut("/spec/egress/0/ports/0/port")
                    .map(|v| *v = json!(5432))
                    .unwrap()
            }),
            "egress ports",
        ),
        (
            "ingress from anyone",
            Box::new(move |d| {
                d[policy]
                    .pointer_mut("/spec/ingress/0")
                    .unwrap()
                    .as_object_mut()
                    .unwrap()
                    .remove("from");
            }),
            "ingress must come only from orchestrator pods",
        ),
        (
            "no egress type",
            Box::new(move |d| {
                d[policy]
                    .pointer_mut("/spec/policyTypes")
                    .map(|v| *v = json!(["Ingress"]))
                    .unwrap()
            }),
            "policyTypes",
        ),
        (
            "autoscaler on another target",
            Box::new(move |d| {
                d[hpa]
                    .pointer_mut("/spec/scaleTargetRef/name")
                    .map(|v| *v = json!("zeval-evaluators"))
                    .unwrap()
            }),
            "HorizontalPodAutoscaler",
        ),
        (
            "service selects nothing",
            Box::new(move |d| {
                let i = find(d, "Service/zeval-evaluator");
                d[i].pointer_mut("/spec/selector/app.kubernetes.io~1component")
                    .map(|v| *v = json!("evaluators"))
                    .unwrap()
            }),
            "selects no Deployment",
        ),
        (
            "orchestrator grace period shorter than a call",
            Box::new(move |d| {
                d[orchestrator]
                    .pointer_mut("/spec/template/spec/terminationGracePeriodSeconds")
                    .map(|v| *v = json!(24))
                    .unwrap()
            }),
            "does not outlast the drain or the longest call (25000 ms)",
        ),
        (
            "budget for no pods",
            Box::new(move |d| {
                let i = find(d, "PodDisruptionBudget/zeval-evaluator");
                d[i].pointer_mut("/spec/selector/matchLabels/app.kubernetes.io~1component")
                    .map(|v| *v = json!("evaluators"))
                    .unwrap()
            }),
            "PodDisruptionBudget/zeval-evaluator: selects no Deployment",
        ),
        (
            "evaluator URL to nowhere",
            Box::new(move |d| {
                let env = d[orchestrator]
                    .pointer_mut(&format!("{container}/env"))
                    .unwrap()
                    .as_array_mut()
                    .unwrap();
                let e = env
                    .iter_mut()
                    .find(|e| e["name"] == "ZEVAL_EVALUATOR_URL")
                    .unwrap();
                e["value"] = json!("http://zeval-evaluators:6927/");
            }),
            "no Service here",
        ),
    ];
    for (label, breakage, expected) in cases {
        let mut broken = docs.clone();
        breakage(&mut broken);
        let problems = lint(&broken, &volumes);
        assert!(
            problems.iter().any(|p| p.contains(expected)),
            "{label}: expected a problem containing {expected:?}, got {problems:#?}"
        );
    }
}

#[test]
fn a_broken_containerfile_fails_the_lint() {
    let good = containerfile();
    let cases = [
        (
            "COPY deploy/entrypoint.sh",
            "COPY deploy/entrypoint.bash",
            "no such path",
        ),
        (
            "FROM docker.io/library/debian:bookworm-slim",
            "FROM docker.io/library/debian:latest",
            "not pinned",
        ),
        (
            "FROM docker.io/library/debian:bookworm-slim",
            "FROM docker.io/library/debian",
            "not pinned",
        ),
        (
            "rust:1.95.0-bookworm",
            "rust:1.94.0-bookworm",
            "rust-toolchain.toml",
        ),
        ("USER 65532:65532", "USER root", "must not run as root"),
        (
            "COPY --from=build /opt/rust",
            "COPY --from=builder /opt/rust",
            "no earlier stage",
        ),
    ];
    for (from, to, expected) in cases {
        assert!(good.contains(from), "{from:?} is not in the Containerfile");
        let broken = good.replacen(from, to, 1);
        let (_, problems) = lint_containerfile(&broken, &repo());
        assert!(
            problems.iter().any(|p| p.contains(expected)),
            "{to:?}: expected {expected:?}, got {problems:#?}"
        );
    }
}

/// Every metric name the server's code exposes (a string literal `"zeval_…"` or a name
/// written into a `# HELP`/format string) under crates/server/src.
fn metric_names_in_code() -> BTreeSet<String> {
    fn walk(dir: &Path, names: &mut BTreeSet<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, names);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                for (at, _) in text.match_indices("zeval_") {
                    let before = &text[..at];
                    let name: String = text[at..]
                        .chars()
                        .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')
                        .collect();
                    let after = &text[at + name.len()..];
                    let quoted = before.ends_with('"') && after.starts_with('"');
                    let exposed = before.ends_with("# HELP ")
                        || before.ends_with("# TYPE ")
                        || (before.ends_with('"') && after.starts_with("{{"));
                    if quoted || exposed {
                        names.insert(name);
                    }
                }
            }
        }
    }
    let mut names = BTreeSet::new();
    walk(&repo().join("crates/server/src"), &mut names);
    names
}

/// The names in `names` that `guide` never writes as code (`` `name` `` or `` `name{labels}` ``).
fn undocumented<'a>(names: &'a BTreeSet<String>, guide: &str) -> Vec<&'a str> {
    names
        .iter()
        .map(String::as_str)
        .filter(|name| {
            !guide.contains(&format!("`{name}`")) && !guide.contains(&format!("`{name}{{"))
        })
        .collect()
}

#[test]
fn every_metric_is_explained_in_the_operations_guide() {
    let names = metric_names_in_code();
    // The scan must see the metrics of each part: calls, the result cache, ranking, the
    // remote evaluators, the gauges written by hand.
    for sure in [
        "zeval_calls_total",
        "zeval_calls_in_flight",
        "zeval_result_cache_hits_total",
        "zeval_ranking_leader_changes_total",
        "zeval_implementation_rank",
        "zeval_evaluator_healthy",
    ] {
        assert!(names.contains(sure), "the scan missed {sure}: {names:?}");
    }
    let guide = std::fs::read_to_string(repo().join("docs/operations.md")).unwrap();
    let missing = undocumented(&names, &guide);
    assert!(
        missing.is_empty(),
        "docs/operations.md does not explain {missing:?}"
    );
    // The check notices a metric that lost its row.
    let row = guide
        .lines()
        .find(|l| l.starts_with("| `zeval_result_cache_skipped_total`"))
        .expect("no row for zeval_result_cache_skipped_total");
    let without = guide.replace(row, "");
    assert_eq!(
        undocumented(&names, &without),
        ["zeval_result_cache_skipped_total"]
    );
    for key in SECRET_KEYS {
        assert!(
            guide.contains(&format!("`{key}`")),
            "docs/operations.md does not name the Secret key {key}"
        );
    }
}
