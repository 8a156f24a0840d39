"""`rag-stores migrate SOURCE TARGET`: copy a collection between any two engine modes.

An endpoint is `ENGINE:COLLECTION[?option=value&...]`, the options being the backend's own
keyword arguments, each given once (`%xx` escapes decoded; `true` / `false` and numbers are
converted for the options the backend types as bool / int / float, so a tenant or a key such
as 2024 stays a string):

    qdrant:docs?path=./qdrant                      embedded Qdrant on disk (Edge; local mode
                                                   for folders it wrote)
    qdrant:docs?path=./qdrant&engine=local         qdrant-client's local mode
    qdrant:docs?url=http://127.0.0.1:6333&prefer_grpc=true
    weaviate:Docs                                  embedded Weaviate (the default folder)
    weaviate:Docs?url=http://127.0.0.1:8080&grpc_port=50051

Ids, text, metadata, LlamaIndex fields and vectors move without re-embedding (sparse vectors
where both sides store them), one batch in memory at a time, with a progress bar. A re-run
skips what the target already holds, so an interrupted migration resumes; at the end counts
and a random sample of records are compared. Collections written by langchain-qdrant or
llama-index-vector-stores-qdrant are read in their own layout and written in ours.

Multi-tenant collections (Qdrant stores opened with tenant=, Weaviate multi-tenant
collections): without tenant= on the source, every tenant is copied on its own, into the same
tenant of the target (a multi-tenant collection there too), then verified; a Qdrant
collection's records without a tenant go along as they are (a Weaviate target refuses them).
With tenant= on the source, that tenant only is copied.

API keys are better given by environment (RAG_STORES_QDRANT_API_KEY,
RAG_STORES_WEAVIATE_API_KEY) than in an endpoint, where they show in `ps`: they are never
printed either way, nor are passwords in URLs (http://user:password@host).
"""

from __future__ import annotations

import functools
import inspect
import os
import re
import time
from typing import Any
from urllib.parse import parse_qsl, unquote_plus

ENGINES = ("qdrant", "weaviate")
_ENDPOINT = re.compile(r"^(?P<engine>[a-z]+):(?P<collection>[^?]+)(?:\?(?P<options>.*))?$")
_KEY_ENV = {"qdrant": "RAG_STORES_QDRANT_API_KEY", "weaviate": "RAG_STORES_WEAVIATE_API_KEY"}
# Option names whose values are never printed, and a URL's user:password@.
_SECRET = re.compile(r"key|pass|secret|token|auth|header|cred", re.IGNORECASE)
_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)[^/\s]*@")


@functools.cache
def _option_types(engine: str) -> dict[str, set[str]]:
    """Option name -> the type names in its annotation (the backend's, then qdrant-client's
    for the client options a QdrantBackend passes on); Any: {"Any"}."""
    from .backends.qdrant import QdrantBackend
    from .backends.weaviate import WeaviateBackend

    functions: list[Any] = [QdrantBackend.__init__] if engine == "qdrant" else [
        WeaviateBackend.__init__]
    if engine == "qdrant":
        from qdrant_client import QdrantClient

        functions.insert(0, QdrantClient.__init__)
    types: dict[str, set[str]] = {}
    for function in functions:
        for name, param in inspect.signature(function).parameters.items():
            if param.kind is param.KEYWORD_ONLY or param.kind is param.POSITIONAL_OR_KEYWORD:
                types[name] = set(re.findall(r"\w+", str(param.annotation)))
    return types


def _value(engine: str, name: str, text: str) -> Any:
    """An option's value: a string, unless the backend types the parameter bool / int / float
    and not str (an untyped one, Any, converts true / false and integers as before)."""
    types = _option_types(engine).get(name)
    if types is None or "str" in types:  # a string, or unknown (the backend will say so)
        return text
    lenient = "Any" in types
    if lenient:
        types = types | {"bool", "int"}
    if "bool" in types and text in ("true", "false"):
        return text == "true"
    if "int" in types and re.fullmatch(r"-?\d+", text):
        return int(text)
    if "float" in types and re.fullmatch(r"-?(\d+\.?\d*|\.\d+)([eE]-?\d+)?", text):
        return float(text)
    expected = [what for kind, what in (("bool", "true or false"), ("int", "an integer"),
                                        ("float", "a number")) if kind in types]
    if lenient or not expected:
        return text
    raise ValueError(f"option {name!r} of a {engine} endpoint must be {' or '.join(expected)}, "
                     f"got {text!r}")


def parse_endpoint(spec: str) -> tuple[str, str, dict[str, Any]]:
    """(engine, collection, backend options) of `ENGINE:COLLECTION[?k=v&...]`."""
    match = _ENDPOINT.match(spec)
    if match is None or match["engine"] not in ENGINES:
        raise ValueError(f"endpoint {redact(spec)!r} is not ENGINE:COLLECTION[?option=value&...] "
                         f"with ENGINE one of {ENGINES} (e.g. qdrant:docs?path=./qdrant)")
    engine = match["engine"]
    options: dict[str, Any] = {}
    for key, value in parse_qsl(match["options"] or "", keep_blank_values=True):
        if key in options:
            raise ValueError(f"option {key!r} is given more than once in endpoint "
                             f"{redact(spec)!r}: give it once")
        options[key] = _value(engine, key, value)
    return engine, match["collection"], options


def open_backend(spec: str, **overrides: Any) -> Any:
    """The backend an endpoint names (a misspelled option is an error naming it); `overrides`
    replace options of the endpoint."""
    engine, collection, options = parse_endpoint(spec)
    options.update(overrides)
    if "api_key" not in options and os.environ.get(_KEY_ENV[engine]) and (
            "url" in options or "host" in options):
        options["api_key"] = os.environ[_KEY_ENV[engine]]
    if engine == "qdrant":
        from .backends.qdrant import QdrantBackend

        if "url" in options or "host" in options:
            options.setdefault("check_compatibility", False)
        return QdrantBackend(collection, **options)
    from .backends.weaviate import WeaviateBackend

    return WeaviateBackend(collection, **options)


def _unquoted(text: str) -> str:
    while (decoded := unquote_plus(text)) != text:
        text = decoded
    return text


def redact(spec: str) -> str:
    """An endpoint as it can be printed: the values of key, password, token, auth and header
    options and a URL's user:password@ (however escaped) are shown as ***."""
    head, sep, query = spec.partition("?")
    parts = []
    for piece in query.split("&") if query else []:
        key, eq, value = piece.partition("=")
        name = _unquoted(key)
        value = "***" if _SECRET.search(name) else _USERINFO.sub(r"\g<scheme>***@",
                                                                   _unquoted(value))
        parts.append(f"{name}{eq}{value}")
    return _USERINFO.sub(r"\g<scheme>***@", head) + sep + "&".join(parts)


def scrub(text: str, *specs: str) -> str:
    """`text` (an error message) without the secrets of the endpoints or the environment."""
    secrets = {os.environ.get(var, "") for var in _KEY_ENV.values()}
    for spec in specs:
        for piece in spec.partition("?")[2].split("&"):
            key, _, value = piece.partition("=")
            for form in {value, unquote_plus(value), _unquoted(value)}:
                if _SECRET.search(_unquoted(key)):
                    secrets.add(form)
                secrets.update(m[0][len(m["scheme"]):-1] for m in _USERINFO.finditer(form))
    for secret in sorted(secrets - {""}, key=len, reverse=True):
        text = text.replace(secret, "***")
    return _USERINFO.sub(r"\g<scheme>***@", text)


def list_tenants(engine: str, backend: Any) -> tuple[list[str], int]:
    """(the tenants of a collection, how many of its records carry no tenant).

    Qdrant: the values of the `tenant` payload field that tenant= stores write (rag layout),
    one request per tenant; Weaviate: the tenants of a multi-tenant collection.
    """
    from .core.query import CollectionNotFoundError

    if engine == "weaviate":
        collections = backend.client.collections
        if not collections.exists(backend.collection_name):
            raise CollectionNotFoundError(
                f"collection {backend.collection_name!r} does not exist")
        handle = collections.get(backend.collection_name)
        if not handle.config.get().multi_tenancy_config.enabled:
            return [], 0
        return sorted(handle.tenants.get()), 0
    from qdrant_client import models

    from .backends.qdrant import TENANT_KEY

    if backend.dimension() is None:
        raise CollectionNotFoundError(f"collection {backend.collection_name!r} does not exist")
    if backend.layout != "rag":  # langchain / llama layouts: no tenants
        return [], 0
    none = models.IsEmptyCondition(is_empty=models.PayloadField(key=TENANT_KEY))
    tenants: list[str] = []
    while True:
        seen = [models.FieldCondition(key=TENANT_KEY, match=models.MatchAny(any=tenants))]
        points, _ = backend.client.scroll(
            backend.collection_name, limit=1, with_payload=[TENANT_KEY], with_vectors=False,
            scroll_filter=models.Filter(must_not=[none, *(seen if tenants else [])]))
        if not points:
            break
        tenant = (points[0].payload or {}).get(TENANT_KEY)
        if not isinstance(tenant, str) or not tenant:
            raise ValueError(f"collection {backend.collection_name!r} has a record whose "
                             f"{TENANT_KEY!r} field is {tenant!r}, not a tenant name: copy it "
                             "with tenant=<name> on the source, or remove that field")
        tenants.append(tenant)
    return sorted(tenants), backend.count(models.Filter(must=[none])) if tenants else 0


def _parts(source_spec: str, target_spec: str) -> tuple[list[str], list[str | None]]:
    """(the source's tenants, the parts to copy: each tenant, and None for the records
    without one); a refusal where tenants cannot be carried over."""
    engine, _, options = parse_endpoint(source_spec)
    target_engine, _, target_options = parse_endpoint(target_spec)
    if "tenant" in options:
        return [], [None]
    source = open_backend(source_spec)
    try:
        tenants, untenanted = list_tenants(engine, source)
    finally:
        source.close()
    if not tenants:
        return [], [None]
    if "tenant" in target_options:
        raise ValueError(
            f"the source is multi-tenant (tenants {tenants}), the target names one "
            f"tenant={target_options['tenant']!r}: give tenant= to the source too to copy one "
            "tenant, or leave it out of both to copy every tenant into its own")
    if untenanted and target_engine == "weaviate":
        raise ValueError(
            f"the source holds {untenanted} records without a tenant beside those of tenants "
            f"{tenants}, and a multi-tenant Weaviate collection holds only tenants' records: "
            "copy to a Qdrant target, or copy one tenant at a time with tenant=<name> on both")
    if target_engine == "weaviate":  # check every tenant name before anything is written
        for tenant in tenants:
            open_backend(target_spec, tenant=tenant).close()
    return tenants, [*tenants, *([None] if untenanted else [])]


def migrate(source_spec: str, target_spec: str, batch_size: int = 256, sample: int = 20,
            progress: bool = True) -> dict[str, Any]:
    """Copy, resumably, then verify (each tenant on its own); returns the figures the command
    prints."""
    from qdrant_client import models

    from .backends.qdrant import TENANT_KEY
    from .core.copy import copy_collection, verify_copy

    tenants, parts = _parts(source_spec, target_spec)
    report: dict[str, Any] = {"written": 0, "source_count": 0, "target_count": 0,
                              "seconds": 0.0, "problems": [], "tenants": tenants}
    for tenant in parts:
        extra = {"tenant": tenant} if tenant is not None else {}
        # The records without a tenant of a multi-tenant Qdrant collection (both sides).
        flt = models.Filter(must=[models.IsEmptyCondition(
            is_empty=models.PayloadField(key=TENANT_KEY))]) if tenant is None and tenants else None
        source = open_backend(source_spec, **extra)
        try:
            target = open_backend(target_spec, **extra)
            try:
                start = time.perf_counter()
                report["written"] += copy_collection(
                    source, target, batch_size, skip_existing=True, progress=progress,
                    filter=flt, desc="copying" if not tenants else f"tenant {tenant!r}"
                    if tenant is not None else "no tenant")
                report["seconds"] += time.perf_counter() - start
                where = "" if not tenants else f"tenant {tenant!r}: " if tenant is not None \
                    else "records without a tenant: "
                report["problems"] += [where + p for p in verify_copy(source, target,
                                                                      sample=sample, filter=flt)]
                report["source_count"] += source.count(flt)
                report["target_count"] += target.count(flt)
            finally:
                target.close()
        finally:
            source.close()
    return report
