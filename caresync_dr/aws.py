"""The one AWS client factory: explicit region, timeouts and retry budget, no global session.

``AWS_ENDPOINT_URL`` (honoured by botocore itself) points every client at an emulator for tests
and drills. Calls into a failed region must not stall a failover, so callers choose a budget:
``STANDBY`` for the region we are moving to, ``BEST_EFFORT`` for the region that may be gone.
"""

from __future__ import annotations

import os
import stat
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar, cast, overload

import botocore.session
from botocore.config import Config
from botocore.loaders import JSONFileLoader, Loader

from caresync_dr import botocore_names, model_trim
from caresync_dr.model_cache import (
    ModelCache,
    default_directory,
    parse_json_file,
    read_entry,
)
from caresync_dr.model_trim import trimmed_model

if TYPE_CHECKING:
    from typing import TypeAlias

    import boto3
    from botocore.hooks import BaseEventHooks
    from mypy_boto3_autoscaling import AutoScalingClient
    from mypy_boto3_backup import BackupClient
    from mypy_boto3_cloudtrail import CloudTrailClient
    from mypy_boto3_cloudwatch import CloudWatchClient
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_elbv2 import ElasticLoadBalancingv2Client
    from mypy_boto3_iam import IAMClient
    from mypy_boto3_kms import KMSClient
    from mypy_boto3_logs import CloudWatchLogsClient
    from mypy_boto3_rds import RDSClient
    from mypy_boto3_route53 import Route53Client
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_secretsmanager import SecretsManagerClient
    from mypy_boto3_sns import SNSClient
    from mypy_boto3_ssm import SSMClient
    from mypy_boto3_sts import STSClient

C = TypeVar("C")
if TYPE_CHECKING:
    # What the commands pass around: boto3's session, or botocore's (failover.py, which
    # does not import boto3: new_core_session).
    AwsSession: TypeAlias = boto3.Session | botocore.session.Session
# botocore's client creation is not thread-safe (a session's loader and event hooks are
# shared: each client copies the session's hooks, which a registration changes meanwhile),
# while the clients themselves are: one creation or registration at a time, process-wide.
# Reentrant: a ClientCache holds it around the AwsClients method that takes it again.
_CREATING = threading.RLock()


def session_hooks_lock() -> threading.RLock:
    """Held while a client is built; hold it to register handlers on a session others use."""
    return _CREATING


class ClientCache:
    """Clients built once and shared by a run's threads (one per name).

    A client already built is returned without waiting: a thread building another client
    (EC2's takes tens of milliseconds of CPU) never holds up a thread whose client is there.
    Building is serialised process-wide, as botocore requires."""

    def __init__(self) -> None:
        self._cache: dict[str, Any] = {}

    def _get(self, name: str, factory: Callable[[], C]) -> C:
        client = self._cache.get(name)
        if client is None:
            with _CREATING:
                client = self._cache.get(name)
                if client is None:
                    client = factory()
                    self._cache[name] = client
        return cast(C, client)

    def adopt(self, name: str, client: object) -> None:
        """Use ``client`` (built for the same region and budget elsewhere) as this ``name``."""
        with _CREATING:
            self._cache.setdefault(name, client)


@dataclass(frozen=True)
class CallBudget:
    """How long one AWS call may take, and how many attempts it gets (first try included)."""

    connect_timeout: float
    read_timeout: float
    total_max_attempts: int

    def config(self) -> Config:
        return Config(
            connect_timeout=self.connect_timeout,
            read_timeout=self.read_timeout,
            retries={"mode": "standard", "total_max_attempts": self.total_max_attempts},
        )


# The standby region must answer: retry throttling and transient errors through a burst.
STANDBY = CallBudget(connect_timeout=5, read_timeout=20, total_max_attempts=8)
# The failed region (and Route 53's us-east-1 control plane) may be gone: fail fast, never block.
BEST_EFFORT = CallBudget(connect_timeout=2, read_timeout=5, total_max_attempts=2)


class PlainJSONFileLoader(JSONFileLoader):
    """botocore's model file loader, parsing into plain dicts: botocore's own asks ``json``
    for an ``OrderedDict`` per object, which makes building a client's service model about
    a third slower (EC2's model is 4 MB of JSON); dicts keep insertion order since Python
    3.7, and botocore builds its shapes from them the same way. With a ``cache``, a file
    parsed once is loaded from its parsed copy afterwards (:mod:`caresync_dr.model_cache`)."""

    def __init__(self, cache: ModelCache | None = None,
                 operations: Mapping[str, frozenset[str]] | None = None) -> None:
        self.cache = cache or ModelCache(None)
        self.operations = dict(operations or {})

    def load_file(self, file_path: str) -> Any:
        for extension in (".json", ".json.gz"):
            path = file_path + extension
            try:
                info = os.stat(path)
            except OSError:
                continue
            if not stat.S_ISREG(info.st_mode):
                continue
            parts = file_path.split(os.sep)
            if len(parts) >= 3 and parts[-1] == "service-2" and parts[-3] in self.operations:
                return self._trimmed(path, info, self.operations[parts[-3]])
            data = self.cache.load(path, info)
            return parse_json_file(path) if data is None else data
        return None

    def _trimmed(self, path: str, info: os.stat_result, operations: frozenset[str]) -> Any:
        """The service model at ``path`` cut to ``operations`` (:mod:`caresync_dr.model_trim`),
        kept in the cache by itself (at :meth:`ModelCache.flush`, as a miss is): a hit never
        loads the whole model."""
        try:    # the cut's own code is in the key: a changed trimming cuts afresh
            code = os.stat(model_trim.__file__)
            trimming = f"{code.st_mtime_ns}:{code.st_size}"
        except (OSError, TypeError):
            trimming = "unknown"
        entry = self.cache.entry(
            f"{path}#operations={','.join(sorted(operations))}#trim={trimming}", info)
        kept = None if entry is None else read_entry(entry)
        if _is_cut_model(kept, operations):
            return kept
        whole = self.cache.load(path, info)
        model = trimmed_model(parse_json_file(path) if whole is None else whole, operations)
        if entry is not None:
            self.cache.keep(entry, model)
        return model


def _is_cut_model(data: Any, operations: frozenset[str]) -> bool:
    """``data`` has a service model's parts (metadata, operations among ``operations``,
    shapes): an intact entry of another shape would fail botocore's client build."""
    return (isinstance(data, dict) and isinstance(data.get("metadata"), dict)
            and isinstance(data.get("shapes"), dict)
            and isinstance(data.get("operations"), dict)
            and {name.lower() for name in data["operations"]}
            <= {name.lower() for name in operations})


class KnownServices(Sequence[str]):
    """The sorted names of the services that have a ``type_name`` model, as botocore's
    ``Loader.list_available_services`` returns them, built only when iterated: botocore
    asks it before loading each kind of model just to check one name (``name in ...``), and
    listing every service's directories (~400, two kinds) costs ~15 ms of CPU at start-up.
    Membership reads only that service's directories: the same answer."""

    def __init__(self, loader: ModelLoader, type_name: str) -> None:
        self._loader = loader
        self._type_name = type_name
        self._names: list[str] | None = None

    def _all(self) -> list[str]:
        if self._names is None:
            self._names = Loader.list_available_services(self._loader, self._type_name)
        return self._names

    def __contains__(self, name: object) -> bool:
        if self._names is not None:
            return name in self._names
        if not isinstance(name, str) or not name or name in (".", "..") or "/" in name \
                or os.sep in name:
            return name in self._all()
        for root in self._loader.search_paths:
            directory = os.path.join(root, name)
            if not os.path.isdir(directory):
                continue
            for version in os.listdir(directory):
                if self._loader.file_loader.exists(
                        os.path.join(directory, version, self._type_name)):
                    return True
        return False

    @overload
    def __getitem__(self, index: int) -> str: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[str]: ...
    def __getitem__(self, index: int | slice) -> str | Sequence[str]:
        return self._all()[index]

    def __iter__(self) -> Iterator[str]:
        return iter(self._all())

    def __len__(self) -> int:
        return len(self._all())


class ModelLoader(Loader):
    """botocore's loader with :class:`PlainJSONFileLoader` and :class:`KnownServices`."""

    def list_available_services(self, type_name: str) -> Any:
        return KnownServices(self, type_name)


def new_core_session(cache: ModelCache | None = None,
                     operations: Mapping[str, frozenset[str]] | None = None
                     ) -> botocore.session.Session:
    """A botocore session like ``botocore.session.Session()`` (same credentials, region and
    ``AWS_DATA_PATH`` search path), whose clients load their service models with
    :class:`ModelLoader`, from the parsed copies of :mod:`caresync_dr.model_cache` when
    earlier runs left them. Share one per process: the loader caches every model it parsed,
    so a second client of a service (another region) costs little. ``cache``: the default
    directory's unless given. ``operations``: services whose clients are built with only these
    operations (API names; :mod:`caresync_dr.model_trim`), e.g. a command's IAM grants.

    Its clients are the ones boto3 would build (``boto3.Session.client`` calls this session's
    ``create_client``); what boto3 adds is S3's managed transfers (``upload_file``) and
    resources, which failover.py does not use. Not importing boto3 saves failover.py ~16 ms of
    start-up (s3transfer, multiprocessing), on the way to its promotion request."""
    core = botocore.session.Session()
    data_path = core.get_config_variable("data_path")
    extra = ([os.path.expanduser(os.path.expandvars(p)) for p in data_path.split(os.pathsep)]
             if data_path else None)
    files = PlainJSONFileLoader(cache or ModelCache(default_directory()), operations)
    core.register_component("data_loader", ModelLoader(extra_search_paths=extra,
                                                       file_loader=files))
    botocore_names.preload(files.cache)
    return core


def new_session(cache: ModelCache | None = None) -> boto3.Session:
    """:func:`new_core_session` in a boto3 session (S3 transfers, resources)."""
    import boto3

    return boto3.Session(botocore_session=new_core_session(cache))


def create_client(session: AwsSession, service: str, **kwargs: Any) -> Any:
    """``service``'s client from a boto3 or a botocore session (the same client either way:
    boto3's ``Session.client`` is botocore's ``create_client``)."""
    if isinstance(session, botocore.session.Session):
        return session.create_client(service, **kwargs)
    return session.client(service, **kwargs)  # type: ignore[call-overload]


def event_hooks(session: AwsSession) -> BaseEventHooks:
    """The session's event emitter (boto3's ``Session.events``), where handlers that apply to
    every client the session builds are registered."""
    if isinstance(session, botocore.session.Session):
        return session.get_component("event_emitter")  # type: ignore[no-any-return]
    return session.events


def _default_session() -> AwsSession:
    import boto3

    return boto3.Session()


def warm_model_cache(services: Iterable[str],
                     operations: Mapping[str, frozenset[str]] | None = None) -> None:
    """Parse (and keep, :mod:`caresync_dr.model_cache`) what building these services'
    clients loads, as a command's earlier runs would have (failover.py's daily ``--check``):
    a drill does this before its outage. ``operations`` as for :func:`new_core_session` (the
    cut models are kept too). Building a client makes no AWS call."""
    cache = ModelCache(default_directory())
    session = new_core_session(cache, operations)
    for service in services:
        session.create_client(service, region_name="us-east-1",
                              aws_access_key_id="unused", aws_secret_access_key="unused")
    cache.flush()
    botocore_names.save(cache)


class AwsClients:
    """Creates typed boto3 clients for one region from one explicit session."""

    def __init__(self, region: str, budget: CallBudget = STANDBY,
                 session: AwsSession | None = None) -> None:
        self.region = region
        self.budget = budget
        self.session = session if session is not None else _default_session()
        self._config = budget.config()

    def _client(self, service: str) -> Any:
        with _CREATING:     # also when not cached (the notifier's, the inventory reader)
            return create_client(self.session, service, region_name=self.region,
                                 config=self._config)

    def rds(self) -> RDSClient:
        return self._client("rds")  # type: ignore[no-any-return]

    def autoscaling(self) -> AutoScalingClient:
        return self._client("autoscaling")  # type: ignore[no-any-return]

    def ec2(self) -> EC2Client:
        return self._client("ec2")  # type: ignore[no-any-return]

    def elbv2(self) -> ElasticLoadBalancingv2Client:
        return self._client("elbv2")  # type: ignore[no-any-return]

    def s3(self) -> S3Client:
        return self._client("s3")  # type: ignore[no-any-return]

    def ssm(self) -> SSMClient:
        return self._client("ssm")  # type: ignore[no-any-return]

    def sns(self) -> SNSClient:
        return self._client("sns")  # type: ignore[no-any-return]

    def cloudwatch(self) -> CloudWatchClient:
        return self._client("cloudwatch")  # type: ignore[no-any-return]

    def route53(self) -> Route53Client:
        return self._client("route53")  # type: ignore[no-any-return]

    def kms(self) -> KMSClient:
        return self._client("kms")  # type: ignore[no-any-return]

    def backup(self) -> BackupClient:
        return self._client("backup")  # type: ignore[no-any-return]

    def iam(self) -> IAMClient:
        """IAM is global; its endpoint answers in any region's session (us-east-1 behind)."""
        return self._client("iam")  # type: ignore[no-any-return]

    def sts(self) -> STSClient:
        return self._client("sts")  # type: ignore[no-any-return]

    def secretsmanager(self) -> SecretsManagerClient:
        return self._client("secretsmanager")  # type: ignore[no-any-return]

    def logs(self) -> CloudWatchLogsClient:
        return self._client("logs")  # type: ignore[no-any-return]

    def cloudtrail(self) -> CloudTrailClient:
        return self._client("cloudtrail")  # type: ignore[no-any-return]


class RegionClients(ClientCache):
    """:class:`AwsClients`' clients for one region and budget, each built once and shared by
    a run's threads (:class:`ClientCache`)."""

    def __init__(self, aws: AwsClients) -> None:
        super().__init__()
        self.aws = aws
        self.region = aws.region

    def rds(self) -> RDSClient:
        return self._get("rds", self.aws.rds)

    def autoscaling(self) -> AutoScalingClient:
        return self._get("autoscaling", self.aws.autoscaling)

    def elbv2(self) -> ElasticLoadBalancingv2Client:
        return self._get("elbv2", self.aws.elbv2)

    def ec2(self) -> EC2Client:
        return self._get("ec2", self.aws.ec2)

    def s3(self) -> S3Client:
        return self._get("s3", self.aws.s3)

    def ssm(self) -> SSMClient:
        return self._get("ssm", self.aws.ssm)

    def sns(self) -> SNSClient:
        return self._get("sns", self.aws.sns)

    def cloudwatch(self) -> CloudWatchClient:
        return self._get("cloudwatch", self.aws.cloudwatch)

    def route53(self) -> Route53Client:
        return self._get("route53", self.aws.route53)

    def iam(self) -> IAMClient:
        return self._get("iam", self.aws.iam)

    def sts(self) -> STSClient:
        return self._get("sts", self.aws.sts)

    def secretsmanager(self) -> SecretsManagerClient:
        return self._get("secretsmanager", self.aws.secretsmanager)

    def logs(self) -> CloudWatchLogsClient:
        return self._get("logs", self.aws.logs)

    def cloudtrail(self) -> CloudTrailClient:
        return self._get("cloudtrail", self.aws.cloudtrail)

    def kms(self) -> KMSClient:
        return self._get("kms", self.aws.kms)

    def backup(self) -> BackupClient:
        return self._get("backup", self.aws.backup)
