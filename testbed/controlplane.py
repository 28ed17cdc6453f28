"""A real Kubernetes control plane for tests, envtest style: etcd + kube-apiserver, no kubelet.

Both run from the binaries ``scripts/provision.sh k8s`` built, on random loopback ports, with
certificates made here (one throwaway CA signs the serving cert and every client cert), an admin
kubeconfig (``CN=admin, O=system:masters``), and all state and logs in a temporary directory.

Everything that lives inside kube-apiserver works (CRDs with structural schemas, defaulting,
pruning, CEL, the status subresource, RBAC, server-side apply and dry-run); nothing that lives in
kube-controller-manager does (namespaces never finish deleting, no garbage collection).
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import json
import re
import shutil
import ssl
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

import urllib3
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from .polling import STARTUP, wait_for
from .process import ManagedProcess, free_port, retry_on_port_conflict
from .server import Server
from .tools import InfraError, k8s_binary, kubernetes_version

if TYPE_CHECKING:
    from kubernetes.client import ApiClient

FIELD_MANAGER = "charging-analytics-tests"
CLUSTER_NAME = "cha-test"

# --------------------------------------------------------------------------------------------
# Certificates
# --------------------------------------------------------------------------------------------


def _rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _key_pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


@dataclass(frozen=True)
class CertificateAuthority:
    """A throwaway CA; :meth:`issue` signs serving and client certificates."""

    key: rsa.RSAPrivateKey
    cert: x509.Certificate

    @classmethod
    def create(cls, common_name: str = "charging-analytics-test-ca") -> CertificateAuthority:
        key = _rsa_key()
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        now = dt.datetime.now(dt.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=7))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256())
        )
        return cls(key, cert)

    @property
    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def issue(
        self,
        common_name: str,
        *,
        organizations: Sequence[str] = (),
        dns_names: Sequence[str] = (),
        ip_addresses: Sequence[str] = (),
        server: bool = False,
    ) -> tuple[bytes, bytes]:
        """A leaf certificate and its key, PEM. Client auth unless ``server``."""
        key = _rsa_key()
        attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, org) for org in organizations]
        attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
        now = dt.datetime.now(dt.UTC)
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name(attrs))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=7))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=True,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=False,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(
                x509.ExtendedKeyUsage(
                    [ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH]
                ),
                critical=False,
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), critical=False
            )
        )
        sans: list[x509.GeneralName] = [x509.DNSName(n) for n in dns_names]
        sans += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ip_addresses]
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        cert = builder.sign(self.key, hashes.SHA256())
        return cert.public_bytes(serialization.Encoding.PEM), _key_pem(key)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def kubeconfig_document(
    server: str, ca_pem: bytes, user: str, cert_pem: bytes, key_pem: bytes, namespace: str = "default"
) -> dict[str, Any]:
    context = f"{user}@{CLUSTER_NAME}"
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": CLUSTER_NAME, "cluster": {"server": server, "certificate-authority-data": _b64(ca_pem)}}
        ],
        "users": [
            {
                "name": user,
                "user": {"client-certificate-data": _b64(cert_pem), "client-key-data": _b64(key_pem)},
            }
        ],
        "contexts": [
            {"name": context, "context": {"cluster": CLUSTER_NAME, "user": user, "namespace": namespace}}
        ],
        "current-context": context,
        "preferences": {},
    }


# --------------------------------------------------------------------------------------------
# A small REST client: exact status codes and Status bodies, no generated models
# --------------------------------------------------------------------------------------------


class KubeApiError(Exception):
    """A non-2xx answer from the API server, with its ``Status`` object."""

    def __init__(self, method: str, path: str, status: int, body: Any) -> None:
        self.method = method
        self.path = path
        self.status = status
        self.body: dict[str, Any] = body if isinstance(body, dict) else {"message": str(body)}
        self.reason: str = str(self.body.get("reason", ""))
        self.message: str = str(self.body.get("message", ""))
        super().__init__(f"{method} {path}: {status} {self.reason}: {self.message}")

    @property
    def causes(self) -> list[dict[str, str]]:
        details = self.body.get("details") or {}
        return list(details.get("causes") or [])

    @property
    def fields(self) -> list[str]:
        """The ``field`` of every cause (e.g. ``spec.kafka.eventsTopic``).

        Causes without a field (``<nil>``: "some validation rules were not checked because the
        object was invalid") are left out.
        """
        return [c["field"] for c in self.causes if c.get("field") and c["field"] != "<nil>"]


@dataclass(frozen=True)
class ApiResource:
    group_version: str
    kind: str
    plural: str
    namespaced: bool

    def path(
        self, namespace: str | None = None, name: str | None = None, subresource: str | None = None
    ) -> str:
        base = "/api/v1" if self.group_version == "v1" else f"/apis/{self.group_version}"
        if self.namespaced:
            if namespace is None:
                raise ValueError(f"{self.kind} is namespaced: a namespace is required")
            base += f"/namespaces/{quote(namespace, safe='')}"
        base += f"/{self.plural}"
        if name is not None:
            base += f"/{quote(name, safe='')}"
        if subresource is not None:
            base += f"/{subresource}"
        return base


_METRIC_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')

#: Verbs that change something (``apiserver_request_total``'s spelling).
WRITE_VERBS = frozenset({"POST", "PUT", "PATCH", "DELETE", "DELETECOLLECTION", "APPLY", "CREATE", "UPDATE"})


def request_delta(
    before: Mapping[tuple[str, str], int], after: Mapping[tuple[str, str], int]
) -> dict[tuple[str, str], int]:
    """The requests served between two :meth:`KubeRest.request_counts` readings (nonzero only)."""
    out = {key: n - before.get(key, 0) for key, n in after.items()}
    return {key: n for key, n in sorted(out.items()) if n}


class KubeRest:
    """Authenticated JSON over HTTPS against one API server, with kind discovery."""

    def __init__(
        self, server: str, ca_file: Path, cert_file: Path, key_file: Path, *, timeout: float = 30.0
    ) -> None:
        self.server = server.rstrip("/")
        ctx = ssl.create_default_context(cafile=str(ca_file))
        ctx.load_cert_chain(str(cert_file), str(key_file))
        self._pool = urllib3.PoolManager(
            ssl_context=ctx, retries=False, timeout=urllib3.Timeout(connect=5.0, read=timeout)
        )
        self._resources: dict[str, dict[str, ApiResource]] = {}

    @classmethod
    def from_kubeconfig(cls, path: Path) -> KubeRest:
        """A client for the current context of a kubeconfig with embedded ``*-data`` fields."""
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        ctx_name = doc["current-context"]
        ctx = next(c["context"] for c in doc["contexts"] if c["name"] == ctx_name)
        cluster = next(c["cluster"] for c in doc["clusters"] if c["name"] == ctx["cluster"])
        user = next(u["user"] for u in doc["users"] if u["name"] == ctx["user"])
        pem_dir = path.parent / f".{path.name}.pem"
        pem_dir.mkdir(mode=0o700, exist_ok=True)
        files = {}
        for key, data in (
            ("ca.crt", cluster["certificate-authority-data"]),
            ("client.crt", user["client-certificate-data"]),
            ("client.key", user["client-key-data"]),
        ):
            files[key] = pem_dir / key
            files[key].write_bytes(base64.b64decode(data))
            files[key].chmod(0o600)
        return cls(cluster["server"], files["ca.crt"], files["client.crt"], files["client.key"])

    def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        query: Mapping[str, str | int | bool] | None = None,
        content_type: str = "application/json",
        headers: Mapping[str, str] | None = None,
        raw: bool = False,
    ) -> Any:
        url = self.server + path
        if query:
            url += "?" + urlencode(
                {k: str(v).lower() if isinstance(v, bool) else v for k, v in query.items()}
            )
        hdrs = {"Accept": "application/json", **(headers or {})}
        payload = None
        if body is not None:
            payload = body if isinstance(body, bytes) else json.dumps(body).encode()
            hdrs["Content-Type"] = content_type
        resp = self._pool.request(method, url, body=payload, headers=hdrs)
        text = resp.data.decode("utf-8", errors="replace")
        if not 200 <= resp.status < 300:
            try:
                parsed: Any = json.loads(text)
            except ValueError:
                parsed = {"message": text}
            raise KubeApiError(method, path, resp.status, parsed)
        if raw:
            return text
        return json.loads(text) if text else None

    def watch(self, path: str, resource_version: str, *, timeout_seconds: int) -> Iterator[dict[str, Any]]:
        """The watch events of the collection at ``path`` after ``resource_version``, until the
        server ends the watch (after ``timeout_seconds``). An expired version comes as an
        ``ERROR`` event (410 Gone): list again."""
        query = urlencode(
            {"watch": "true", "resourceVersion": resource_version, "timeoutSeconds": timeout_seconds}
        )
        resp = self._pool.request(
            "GET",
            f"{self.server}{path}?{query}",
            headers={"Accept": "application/json"},
            preload_content=False,
            timeout=urllib3.Timeout(connect=5.0, read=timeout_seconds + 30.0),
        )
        try:
            if not 200 <= resp.status < 300:
                raise KubeApiError(
                    "WATCH", path, resp.status, {"message": resp.data.decode(errors="replace")}
                )
            buffer = b""
            for chunk in resp.stream(65536):
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                for line in lines:
                    if line.strip():
                        yield json.loads(line)
        finally:
            # the stream may be left unread (the caller stopped early): the connection goes
            resp.close()
            resp.release_conn()

    def get(self, path: str, **kw: Any) -> Any:
        return self.request("GET", path, **kw)

    def post(self, path: str, body: Any, **kw: Any) -> Any:
        return self.request("POST", path, body=body, **kw)

    def put(self, path: str, body: Any, **kw: Any) -> Any:
        return self.request("PUT", path, body=body, **kw)

    def delete(self, path: str, **kw: Any) -> Any:
        return self.request("DELETE", path, **kw)

    def merge_patch(self, path: str, body: Any, **kw: Any) -> Any:
        return self.request("PATCH", path, body=body, content_type="application/merge-patch+json", **kw)

    def request_counts(self) -> dict[tuple[str, str], int]:
        """Requests the API server has served since it started, by (verb, resource): its own
        ``apiserver_request_total`` counter from ``/metrics``, summed over codes and scopes.
        The resource carries its subresource (``chargingan.../status``); the verb is the
        server's (``LIST``, ``WATCH``, ``PATCH``...). Tests and benchmarks take differences."""
        counts: dict[tuple[str, str], int] = {}
        for line in self.request("GET", "/metrics", raw=True, headers={"Accept": "text/plain"}).splitlines():
            if not line.startswith("apiserver_request_total{"):
                continue
            labels_text, _, value = line[len("apiserver_request_total{") :].rpartition("} ")
            labels = dict(_METRIC_LABEL.findall(labels_text))
            resource = labels.get("resource", "")
            if labels.get("subresource"):
                resource += "/" + labels["subresource"]
            key = (labels.get("verb", ""), resource)
            counts[key] = counts.get(key, 0) + int(float(value))
        return counts

    # Discovery ---------------------------------------------------------------------------

    def _discover(self, group_version: str) -> dict[str, ApiResource]:
        path = "/api/v1" if group_version == "v1" else f"/apis/{group_version}"
        try:
            listing = self.get(path)
        except KubeApiError as exc:
            if exc.status == 404:
                return {}
            raise
        return {
            r["kind"]: ApiResource(group_version, r["kind"], r["name"], bool(r["namespaced"]))
            for r in listing.get("resources", [])
            if "/" not in r["name"]
        }

    def resource(self, api_version: str, kind: str) -> ApiResource:
        """The REST mapping of ``kind`` (re-discovered once if unknown, e.g. a new CRD)."""
        known = self._resources.get(api_version)
        if known is None or kind not in known:
            known = self._resources[api_version] = self._discover(api_version)
        if kind not in known:
            raise InfraError(f"the API server does not serve kind {kind} in {api_version}")
        return known[kind]

    # Objects -----------------------------------------------------------------------------

    def create(
        self,
        obj: Mapping[str, Any],
        namespace: str | None = None,
        *,
        dry_run: bool = False,
        field_validation: str = "Strict",
    ) -> dict[str, Any]:
        """POST one object (``namespace`` overrides its metadata.namespace)."""
        res = self.resource(obj["apiVersion"], obj["kind"])
        body = _with_namespace(obj, namespace if res.namespaced else None)
        query: dict[str, str | int | bool] = {
            "fieldValidation": field_validation,
            "fieldManager": FIELD_MANAGER,
        }
        if dry_run:
            query["dryRun"] = "All"
        out: dict[str, Any] = self.post(res.path(body["metadata"].get("namespace")), body, query=query)
        return out

    def apply(
        self,
        obj: Mapping[str, Any],
        namespace: str | None = None,
        *,
        dry_run: bool = False,
        field_validation: str = "Strict",
        force: bool = True,
    ) -> dict[str, Any]:
        """Server-side apply of one object (create or update)."""
        res = self.resource(obj["apiVersion"], obj["kind"])
        body = _with_namespace(obj, namespace if res.namespaced else None)
        name = body["metadata"]["name"]
        query: dict[str, str | int | bool] = {
            "fieldManager": FIELD_MANAGER,
            "fieldValidation": field_validation,
            "force": force,
        }
        if dry_run:
            query["dryRun"] = "All"
        out: dict[str, Any] = self.request(
            "PATCH",
            res.path(body["metadata"].get("namespace"), name),
            body=body,
            query=query,
            content_type="application/apply-patch+yaml",
        )
        return out

    def read(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> dict[str, Any]:
        out: dict[str, Any] = self.get(self.resource(api_version, kind).path(namespace, name))
        return out

    def version(self) -> dict[str, str]:
        out: dict[str, str] = self.get("/version")
        return out


def _with_namespace(obj: Mapping[str, Any], namespace: str | None) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(json.dumps(obj))  # deep copy, JSON-clean
    body.setdefault("metadata", {})
    if namespace is not None:
        body["metadata"]["namespace"] = namespace
    return body


def load_manifest(source: str | Path | Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Documents from a path, a YAML string, or an iterable of dicts (empty docs dropped)."""
    if isinstance(source, Path):
        source = source.read_text(encoding="utf-8")
    if isinstance(source, str):
        return [d for d in yaml.safe_load_all(source) if d]
    return [json.loads(json.dumps(d)) for d in source]


# --------------------------------------------------------------------------------------------
# The control plane
# --------------------------------------------------------------------------------------------


def _etcd_supports(etcd: Path, flag: str) -> bool:
    import subprocess

    out = subprocess.run([str(etcd), "--help"], capture_output=True, text=True, check=False, timeout=30)
    return flag in (out.stdout + out.stderr)


@dataclass
class ControlPlane(Server):
    """etcd + kube-apiserver in ``workdir`` (a fresh temporary directory if ``None``)."""

    workdir_prefix = "cha-k8s-"
    processes = ("_apiserver", "_etcd")
    start_timeout: float = 120.0
    etcd_port: int = 0
    etcd_peer_port: int = 0
    port: int = 0
    etcd_seconds: float | None = None
    apiserver_seconds: float | None = None
    ca: CertificateAuthority | None = field(default=None, repr=False)
    _etcd: ManagedProcess | None = field(default=None, repr=False)
    _apiserver: ManagedProcess | None = field(default=None, repr=False)
    _rest: KubeRest | None = field(default=None, repr=False)

    # Paths -----------------------------------------------------------------------------

    def _dir(self) -> Path:
        if self.workdir is None:
            raise InfraError("control plane not started")
        return self.workdir

    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def etcd_url(self) -> str:
        return f"http://127.0.0.1:{self.etcd_port}"

    @property
    def pki(self) -> Path:
        return self._dir() / "pki"

    @property
    def ca_file(self) -> Path:
        return self.pki / "ca.crt"

    @property
    def kubeconfig(self) -> Path:
        """The admin kubeconfig (``CN=admin, O=system:masters``)."""
        return self._dir() / "admin.kubeconfig"

    def log_files(self) -> list[Path]:
        return [self._dir() / "etcd.log", self._dir() / "kube-apiserver.log"]

    @property
    def rest(self) -> KubeRest:
        """An admin REST client."""
        if self._rest is None:
            self._rest = KubeRest(self.server, self.ca_file, self.pki / "admin.crt", self.pki / "admin.key")
        return self._rest

    # Lifecycle -------------------------------------------------------------------------

    def start(self) -> ControlPlane:
        etcd_bin = k8s_binary("etcd")
        apiserver_bin = k8s_binary("kube-apiserver")
        self.make_workdir()
        try:
            t0 = time.monotonic()
            self._write_pki()
            retry_on_port_conflict(lambda: self._start_etcd(etcd_bin), self._reset_etcd)
            t1 = time.monotonic()
            self.etcd_seconds = t1 - t0
            retry_on_port_conflict(lambda: self._start_apiserver(apiserver_bin), self._reset_apiserver)
            self.apiserver_seconds = time.monotonic() - t1
        except BaseException:
            self.stop(keep_workdir=True)
            raise
        return self

    def _write_pki(self) -> None:
        pki = self.pki
        pki.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.ca = ca = CertificateAuthority.create()
        self.ca_file.write_bytes(ca.cert_pem)
        crt, key = ca.issue(
            "kube-apiserver", dns_names=["localhost"], ip_addresses=["127.0.0.1"], server=True
        )
        (pki / "serving.crt").write_bytes(crt)
        (pki / "serving.key").write_bytes(key)
        crt, key = ca.issue("admin", organizations=["system:masters"])
        (pki / "admin.crt").write_bytes(crt)
        (pki / "admin.key").write_bytes(key)
        sa = _rsa_key()
        (pki / "sa.key").write_bytes(_key_pem(sa))
        (pki / "sa.pub").write_bytes(
            sa.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )

    def _start_etcd(self, etcd_bin: Path) -> None:
        work = self._dir()
        self.etcd_port, self.etcd_peer_port = free_port(), free_port()
        peer = f"http://127.0.0.1:{self.etcd_peer_port}"
        argv: list[str | Path] = [
            etcd_bin,
            "--name=default",
            f"--data-dir={work / 'etcd'}",
            f"--listen-client-urls={self.etcd_url}",
            f"--advertise-client-urls={self.etcd_url}",
            f"--listen-peer-urls={peer}",
            f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster=default={peer}",
            "--initial-cluster-state=new",
            "--log-level=warn",
        ]
        if _etcd_supports(etcd_bin, "--unsafe-no-fsync"):
            argv.append("--unsafe-no-fsync=true")
        self._etcd = ManagedProcess("etcd", argv, work / "etcd.log", cwd=work, stop_timeout=10)
        self._etcd.start()

        def healthy() -> bool:
            resp = urllib3.request("GET", f"{self.etcd_url}/health", timeout=2.0, retries=False)
            return resp.status == 200 and json.loads(resp.data).get("health") == "true"

        wait_for(
            healthy,
            self.start_timeout,
            f"etcd at {self.etcd_url}",
            poll=STARTUP.starting_every(0.05),
            check=self._etcd.check_running,
        )

    def _reset_etcd(self) -> None:
        if self._etcd is not None:
            self._etcd.stop()
            self._etcd = None
        shutil.rmtree(self._dir() / "etcd", ignore_errors=True)

    def _reset_apiserver(self) -> None:
        if self._apiserver is not None:
            self._apiserver.stop()
            self._apiserver = None
        self._rest = None  # bound to the old port

    def _start_apiserver(self, apiserver_bin: Path) -> None:
        work, pki = self._dir(), self.pki
        self.port = free_port()
        argv: list[str | Path] = [
            apiserver_bin,
            f"--etcd-servers={self.etcd_url}",
            "--etcd-prefix=/registry",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--secure-port={self.port}",
            f"--cert-dir={work / 'apiserver-certs'}",
            f"--tls-cert-file={pki / 'serving.crt'}",
            f"--tls-private-key-file={pki / 'serving.key'}",
            f"--client-ca-file={self.ca_file}",
            f"--service-account-issuer={self.server}",
            f"--service-account-key-file={pki / 'sa.pub'}",
            f"--service-account-signing-key-file={pki / 'sa.key'}",
            "--service-cluster-ip-range=10.0.0.0/24",
            "--authorization-mode=RBAC",
            "--disable-admission-plugins=ServiceAccount",
            "--allow-privileged=true",
            "--profiling=false",
        ]
        self._apiserver = ManagedProcess(
            "kube-apiserver", argv, work / "kube-apiserver.log", cwd=work, stop_timeout=15
        )
        self._apiserver.start()
        apiserver, etcd = self._apiserver, self._etcd
        assert etcd is not None

        def ready() -> bool:
            # CA pinned, admin client cert (anonymous access needs RBAC roles that are still
            # being bootstrapped). Non-200 raises and counts as "not yet".
            return bool(self.rest.request("GET", "/readyz", raw=True) == "ok")

        def check() -> None:
            apiserver.check_running()
            etcd.check_running()

        wait_for(
            ready,
            self.start_timeout,
            f"kube-apiserver {kubernetes_version()} /readyz at {self.server}",
            poll=STARTUP,
            check=check,
        )
        crt, key = (pki / "admin.crt").read_bytes(), (pki / "admin.key").read_bytes()
        self.kubeconfig.write_text(
            yaml.safe_dump(
                kubeconfig_document(self.server, self.ca.cert_pem if self.ca else b"", "admin", crt, key)
            ),
            encoding="utf-8",
        )
        self.kubeconfig.chmod(0o600)

    def stopped(self) -> None:
        self._rest = None

    # Helpers ---------------------------------------------------------------------------

    def install_crd(self, path: Path, timeout: float = 60.0) -> list[dict[str, Any]]:
        """Server-side apply every CRD in ``path``; wait until each is Established and served."""
        installed = []
        for doc in load_manifest(path):
            if doc.get("kind") != "CustomResourceDefinition":
                raise InfraError(f"{path}: expected only CustomResourceDefinitions, got {doc.get('kind')}")
            self.rest.apply(doc)
            installed.append(self.wait_crd_established(doc["metadata"]["name"], timeout))
        return installed

    def wait_crd_established(self, name: str, timeout: float = 60.0) -> dict[str, Any]:
        path = f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}"

        def established() -> dict[str, Any] | None:
            crd: dict[str, Any] = self.rest.get(path)
            conds = {c["type"]: c for c in crd.get("status", {}).get("conditions", [])}
            names = conds.get("NamesAccepted")
            if names and names["status"] == "False":
                raise InfraError(f"CRD {name} names not accepted: {names.get('message')}")
            if conds.get("Established", {}).get("status") != "True":
                return None
            group = crd["spec"]["group"]
            for version in (v["name"] for v in crd["spec"]["versions"] if v.get("served")):
                served = self.rest.get(f"/apis/{group}/{version}")
                if not any(r["name"] == crd["spec"]["names"]["plural"] for r in served["resources"]):
                    return None
            return crd

        return wait_for(established, timeout, f"CRD {name} Established and served", poll=STARTUP)

    def make_user_kubeconfig(self, user: str, groups: Sequence[str] = ()) -> Path:
        """A kubeconfig authenticating as ``user`` in ``groups`` (a client cert from the CA)."""
        if self.ca is None:
            raise InfraError("control plane not started")
        safe = re.sub(r"[^A-Za-z0-9_.-]", "_", user)
        crt, key = self.ca.issue(user, organizations=groups)
        path = self._dir() / "users" / f"{safe}.kubeconfig"
        path.parent.mkdir(mode=0o700, exist_ok=True)
        path.write_text(
            yaml.safe_dump(kubeconfig_document(self.server, self.ca.cert_pem, user, crt, key)),
            encoding="utf-8",
        )
        path.chmod(0o600)
        return path

    def rest_as(self, user: str, groups: Sequence[str] = ()) -> KubeRest:
        """A REST client authenticated as ``user`` (see :meth:`make_user_kubeconfig`)."""
        return KubeRest.from_kubeconfig(self.make_user_kubeconfig(user, groups))

    def create_namespace(self, name: str, labels: Mapping[str, str] | None = None) -> dict[str, Any]:
        body = {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": name, "labels": dict(labels or {})},
        }
        out: dict[str, Any] = self.rest.post("/api/v1/namespaces", body)
        return out

    def apply_manifest(
        self,
        docs: str | Path | Iterable[Mapping[str, Any]],
        namespace: str | None,
        dry_run: bool = False,
    ) -> list[dict[str, Any]]:
        """Server-side apply every document (strict field validation) into ``namespace``.

        Namespaced objects get ``namespace`` (overriding what the manifest says); cluster-scoped
        ones are applied as they are.  Returns the objects the server answered with.
        """
        return [self.rest.apply(doc, namespace, dry_run=dry_run) for doc in load_manifest(docs)]

    def api_client(self, kubeconfig: Path | None = None) -> ApiClient:
        """A ``kubernetes`` client bound to ``kubeconfig`` (default: the admin one)."""
        from kubernetes import config

        client: ApiClient = config.new_client_from_config(  # type: ignore[no-untyped-call]
            config_file=str(kubeconfig or self.kubeconfig)
        )
        return client
